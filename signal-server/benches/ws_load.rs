//! `ws_load`: a load generator for the signaling WebSocket (`GET /ws`).
//!
//! Two scenarios, picked by a subcommand (cargo appends `--bench`, which is ignored):
//!
//! ```text
//! cargo bench -p signal-server --bench ws_load -- idle  [--connections 10000] [--users 100]
//! cargo bench -p signal-server --bench ws_load -- relay [--rooms 100] [--per-room 5]
//!     [--rate 80] [--duration 20] [--warmup 3]
//! ```
//!
//! * `idle` opens many authenticated connections that do nothing and reports the server's
//!   resident memory per connection.
//! * `relay` puts clients in calls of `--per-room` participants, has each send
//!   `ice_candidate` messages round-robin to the others at `--rate` messages per second,
//!   and reports delivered throughput, latency percentiles, losses and the server's CPU.
//!
//! By default it spawns the `confab-server` binary built with this bench (fresh data
//! folder, free port on 127.0.0.1, rate limits lifted) and sets up users and rooms through
//! the REST API. With `--peer-ws-url` it instead targets another server speaking the same
//! WebSocket messages: access tokens are minted here as HS256 JWTs (`--peer-secret`) and
//! rooms are random ids, and `--peer-pid` names the process (tree) to measure.
//!
//! `--server-bin` spawns another build instead (to measure a change); the spawned server
//! inherits the environment except `CONFAB_*` and `DATABASE_URL`, so allocator settings
//! such as `MALLOC_ARENA_MAX` reach it.
//!
//! The tool shares the machine with the server, so `relay` also reports its own CPU and
//! how much other work ran during the measured window: figures taken while something
//! else (a build) was running are not comparable. Linux only (/proc).
//!
//! The results are printed for people, then as one `RESULT {json}` line for scripts.

use anyhow::{Context, Result, bail, ensure};
use clap::{Args, CommandFactory, Parser, Subcommand};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt, TryStreamExt};
use hdrhistogram::Histogram;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use shared::api::{
    AuthResponse, CreateRoomRequest, LoginRequest, Me, ROOM_MAX_PARTICIPANTS,
    ROOM_MIN_PARTICIPANTS, RegisterRequest, Room,
};
use shared::signal::{ClientMsg, IceCandidate, PROTOCOL_VERSION, ServerMsg};
use shared::{ParticipantId, RoomId, UserId};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async_with_config};
use tokio_util::sync::CancellationToken;

/// Password of every load-test account: long and unusual enough for the strength check.
const PASSWORD: &str = "Load-test-pass-1234!";

/// REST calls in flight during setup. Register and login each cost the server one Argon2id
/// hash (tens of ms of CPU), so more in flight only queues them behind the cores.
const REST_CONCURRENCY: usize = 8;

/// A WebSocket handshake plus `auth` plus `welcome` must finish within this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// File descriptors the tool needs besides its WebSockets (runtime, stdio, HTTP client).
const FD_MARGIN: u64 = 256;

/// How long the clients of `relay` get between the go signal and their first message, so
/// that every one of them is waiting on the same schedule when it starts.
const START_DELAY: Duration = Duration::from_millis(500);

/// After the senders stop, how long to wait for messages still in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Each ice_candidate's `candidate` string ends with this stamp; both numbers have a fixed
/// width, so every message of a run has the same length and the template can be split once.
const STAMP_LEN: usize = "seq=".len() + 20 + " t=".len() + 20;

#[derive(Parser, Debug)]
#[command(
    name = "ws_load",
    about = "Load generator for confab-server's WebSocket signaling",
    after_help = "Run with: cargo bench -p signal-server --bench ws_load -- <idle|relay> [OPTIONS]"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Option<Scenario>,

    /// Tokio worker threads for the load clients. They share the machine with the server,
    /// so more threads than cores only takes CPU away from what is being measured.
    #[arg(long, global = true, default_value_t = 2)]
    client_threads: usize,

    /// Passed by `cargo bench`; ignored.
    #[arg(long, global = true, hide = true)]
    bench: bool,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    /// Open many idle authenticated connections; report server memory per connection.
    Idle(IdleArgs),
    /// Relay ice_candidate messages inside calls; report throughput, latency and CPU.
    Relay(RelayArgs),
}

#[derive(Args, Debug)]
struct IdleArgs {
    /// WebSocket connections to open.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,

    /// Accounts the connections are spread over (each costs two password hashes).
    #[arg(long, default_value_t = 100)]
    users: usize,

    /// Connections being opened at the same time.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,

    /// Seconds to wait after the last `welcome` before measuring memory.
    #[arg(long, default_value_t = 3)]
    settle: u64,

    #[command(flatten)]
    target: TargetArgs,
}

#[derive(Args, Debug)]
struct RelayArgs {
    /// Rooms, each holding one call.
    #[arg(long, default_value_t = 100)]
    rooms: usize,

    /// Participants per call (each a separate user and connection).
    #[arg(long, default_value_t = 5)]
    per_room: usize,

    /// Messages per second each client sends, in total over the others in its call.
    #[arg(long, default_value_t = 80)]
    rate: u32,

    /// Seconds measured, after the warm-up.
    #[arg(long, default_value_t = 20)]
    duration: u64,

    /// Seconds of sending before measuring starts.
    #[arg(long, default_value_t = 3)]
    warmup: u64,

    /// Approximate size of each sent ice_candidate message, in bytes of JSON.
    #[arg(long, default_value_t = 300)]
    message_bytes: usize,

    /// Connections being opened at the same time.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,

    #[command(flatten)]
    target: TargetArgs,
}

/// Which server to load.
#[derive(Args, Debug, Clone)]
struct TargetArgs {
    /// WebSocket URL of another server speaking the same messages (e.g.
    /// ws://127.0.0.1:8000/ws) to load instead of a spawned confab-server. Loopback only.
    #[arg(long)]
    peer_ws_url: Option<String>,

    /// HS256 secret the --peer-ws-url server verifies access tokens with (the variable is
    /// the one bench/django-peer reads too). Required with --peer-ws-url.
    #[arg(long, env = "PEER_JWT_SECRET", hide_env_values = true)]
    peer_secret: Option<String>,

    /// Process of the --peer-ws-url server whose memory and CPU are measured, together with
    /// all its descendant processes.
    #[arg(long, requires = "peer_ws_url")]
    peer_pid: Option<u32>,

    /// Server binary to spawn instead of the confab-server built with this bench (say, a
    /// build with an experimental change); it must accept the same flags.
    #[arg(long, conflicts_with = "peer_ws_url")]
    server_bin: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(scenario) = cli.scenario else {
        // `cargo bench` for the whole workspace runs every bench without arguments; a load
        // test of a minute or more is not something to start by surprise.
        println!("ws_load: no scenario given; nothing to do.\n");
        let _ = Cli::command().print_help();
        return ExitCode::SUCCESS;
    };
    // Raised before the server is spawned, so that it inherits the higher limit too.
    let fd_limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            eprintln!("ws_load: cannot raise the open-file limit: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.client_threads.max(1))
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("ws_load: cannot start the Tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match scenario {
            Scenario::Idle(args) => idle(args, fd_limit).await,
            Scenario::Relay(args) => relay(args, fd_limit).await,
        }
    });
    // Dropping the runtime drops the spawned server's handle, which kills it (kill_on_drop)
    // on the error path as well.
    drop(runtime);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ws_load: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------
// The server under test
// ---------------------------------------------------------------------------------------

/// The server being loaded.
enum Target {
    /// A confab-server spawned by this tool, set up through its REST API.
    Confab(Box<ConfabServer>),
    /// Another server speaking the same WebSocket messages; tokens are minted here.
    Peer {
        ws_url: String,
        secret: String,
        pid: Option<u32>,
    },
}

impl Target {
    async fn start(args: &TargetArgs) -> Result<Self> {
        match (&args.peer_ws_url, &args.peer_secret) {
            (Some(_), None) => bail!("--peer-ws-url needs --peer-secret (or PEER_JWT_SECRET)"),
            (Some(url), Some(secret)) => {
                ensure_loopback(url)?;
                if let Some(pid) = args.peer_pid {
                    sample_process_tree(pid)
                        .with_context(|| format!("cannot read /proc/{pid} (--peer-pid)"))?;
                }
                Ok(Self::Peer {
                    ws_url: url.clone(),
                    secret: secret.clone(),
                    pid: args.peer_pid,
                })
            }
            _ => {
                let bin = args
                    .server_bin
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_confab-server")));
                Ok(Self::Confab(Box::new(ConfabServer::spawn(&bin).await?)))
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Confab(server) => format!("{} (pid {})", server.name, server.pid),
            Self::Peer { ws_url, pid, .. } => match pid {
                Some(pid) => format!("peer {ws_url} (pid {pid} and descendants)"),
                None => format!("peer {ws_url} (no --peer-pid: memory and CPU not measured)"),
            },
        }
    }

    /// The server's name in the `RESULT` line.
    fn kind(&self) -> String {
        match self {
            Self::Confab(server) => server.name.clone(),
            Self::Peer { .. } => "peer".into(),
        }
    }

    fn ws_url(&self) -> &str {
        match self {
            Self::Confab(server) => &server.ws_url,
            Self::Peer { ws_url, .. } => ws_url,
        }
    }

    /// Memory and CPU time of the server, when there is a process to read them from.
    fn sample(&self) -> Option<ProcSample> {
        let pid = match self {
            Self::Confab(server) => server.pid,
            Self::Peer { pid, .. } => (*pid)?,
        };
        match sample_process_tree(pid) {
            Ok(sample) => Some(sample),
            Err(e) => {
                eprintln!("warning: cannot sample process {pid}: {e:#}");
                None
            }
        }
    }

    /// One access token for each of `n` distinct users.
    async fn tokens(&self, n: usize) -> Result<Vec<String>> {
        match self {
            Self::Confab(server) => {
                eprintln!("registering and logging in {n} users...");
                futures_util::stream::iter(0..n)
                    .map(|i| server.register_and_login(i))
                    .buffered(REST_CONCURRENCY)
                    .try_collect()
                    .await
            }
            Self::Peer { secret, .. } => (0..n).map(|_| mint_token(secret)).collect(),
        }
    }

    /// A room for each group of users (given by their tokens), every member of the group in
    /// it. The first token of a group owns the room.
    async fn rooms(&self, groups: &[&[String]]) -> Result<Vec<RoomId>> {
        match self {
            Self::Confab(server) => {
                eprintln!("creating {} rooms...", groups.len());
                // One room at a time: on SQLite, concurrent `POST /api/rooms/{id}/join`
                // calls fail with 500 "database is locked" (the join transaction reads
                // before it writes, so SQLite cannot let it wait for the write lock).
                let mut rooms = Vec::with_capacity(groups.len());
                for (i, members) in groups.iter().enumerate() {
                    rooms.push(server.room_with(i, members).await?);
                }
                Ok(rooms)
            }
            // The peer has no REST API: a room exists as soon as someone joins its call.
            Self::Peer { .. } => Ok(groups.iter().map(|_| RoomId::new()).collect()),
        }
    }

    /// Stops the spawned server; returns what it logged at warning level or above.
    async fn stop(self) -> Vec<String> {
        match self {
            Self::Confab(server) => server.stop().await,
            Self::Peer { .. } => Vec::new(),
        }
    }
}

/// Refuses any URL that does not point at this machine: the tool must only ever load a
/// server on the loopback interface.
fn ensure_loopback(url: &str) -> Result<()> {
    let uri: Uri = url
        .parse()
        .with_context(|| format!("--peer-ws-url {url} is not a URL"))?;
    ensure!(
        uri.scheme_str() == Some("ws"),
        "--peer-ws-url must be a ws:// URL"
    );
    let host = uri.host().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    ensure!(
        loopback,
        "--peer-ws-url must point at 127.0.0.1, not {host}"
    );
    Ok(())
}

/// The claims the comparison server checks: who, and until when.
#[derive(Serialize)]
struct PeerClaims {
    sub: UserId,
    exp: u64,
}

/// An access token for a new random user, as the comparison server expects it.
fn mint_token(secret: &str) -> Result<String> {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("system clock before 1970")?
        .as_secs()
        + 3600;
    let claims = PeerClaims {
        sub: UserId::new(),
        exp,
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .context("signing a peer access token")
}

/// A `confab-server` child process with its own data folder.
struct ConfabServer {
    child: tokio::process::Child,
    pid: u32,
    /// The binary's file name, for the report.
    name: String,
    base: String,
    ws_url: String,
    http: reqwest::Client,
    log: PathBuf,
    /// Deleted when the server is dropped (after it was killed).
    _data: tempfile::TempDir,
}

impl ConfabServer {
    async fn spawn(bin: &Path) -> Result<Self> {
        let data = tempfile::Builder::new()
            .prefix("confab-ws-load-")
            .tempdir()
            .context("creating a temporary data folder")?;
        let log = data.path().join("server.log");
        let log_file = std::fs::File::create(&log).context("creating the server log")?;
        // Ask the OS for a free port, then hand it to the server. Another process could
        // take it in between, in which case the server fails to bind and we say so.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("finding a free port")?;
        let mut cmd = tokio::process::Command::new(bin);
        // Settings from the caller's environment (a DATABASE_URL above all) must not leak
        // into the run: every setting of the server comes from the flags below.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("CONFAB_") || key == "DATABASE_URL" {
                cmd.env_remove(key.as_ref());
            }
        }
        cmd.arg("--bind")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(data.path())
            // Every client comes from 127.0.0.1 and logs in as fast as it can, and each
            // relay client sends far more than a person would: lift the limits that exist
            // to stop abuse, or they would be what the test measures.
            .args(["--auth-rate-per-ip", "1000000"])
            .args(["--auth-rate-per-account", "1000000"])
            .args(["--ws-rate", "100000"])
            .args(["--ws-queue", "4096"])
            // Per-request logging would be measured as server CPU; warnings still show.
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(
                log_file.try_clone().context("opening the server log")?,
            ))
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", bin.display()))?;
        let pid = child.id().context("confab-server exited at once")?;
        let http = reqwest::Client::builder()
            // A proxy from the environment must not see (or reroute) the test traffic.
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .context("building the HTTP client")?;
        let base = format!("http://{addr}");
        // Wait until it answers: it creates and migrates its database first.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "confab-server exited with {status}:\n{}",
                    tail(&log, 20).join("\n")
                );
            }
            let health = http.get(format!("{base}/healthz")).send().await;
            if health.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "confab-server did not answer /healthz within 20 s:\n{}",
                    tail(&log, 20).join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self {
            child,
            pid,
            name: bin
                .file_name()
                .map_or_else(|| bin.display().to_string(), |n| n.to_string_lossy().into()),
            ws_url: format!("ws://{addr}/ws"),
            base,
            http,
            log,
            _data: data,
        })
    }

    async fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        token: Option<&str>,
        body: &B,
    ) -> Result<R> {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            bail!("POST {path}: {status}: {body}");
        }
        response
            .json()
            .await
            .with_context(|| format!("POST {path}: unexpected response"))
    }

    async fn register_and_login(&self, i: usize) -> Result<String> {
        let username = format!("load{i:06}");
        let register = RegisterRequest {
            username: username.clone(),
            email: format!("{username}@example.com"),
            password: PASSWORD.into(),
            confirm_password: PASSWORD.into(),
        };
        let _: Me = self.post("/api/auth/register", None, &register).await?;
        let login = LoginRequest {
            login: username,
            password: PASSWORD.into(),
        };
        let auth: AuthResponse = self.post("/api/auth/login", None, &login).await?;
        Ok(auth.access_token)
    }

    async fn room_with(&self, i: usize, members: &[String]) -> Result<RoomId> {
        let (owner, others) = members.split_first().context("a room needs members")?;
        let request = CreateRoomRequest {
            title: format!("load room {i}"),
            max_participants: Some(u32::try_from(members.len())?),
        };
        let room: Room = self.post("/api/rooms", Some(owner), &request).await?;
        for token in others {
            let path = format!("/api/rooms/{}/join", room.id);
            let _: Room = self.post(&path, Some(token), &json!({})).await?;
        }
        Ok(room.id)
    }

    async fn stop(mut self) -> Vec<String> {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// The last `n` lines of a file, for error messages.
fn tail(path: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

// ---------------------------------------------------------------------------------------
// Process statistics from /proc
// ---------------------------------------------------------------------------------------

/// Resident memory and CPU time used so far by a process tree.
#[derive(Clone, Copy, Debug)]
struct ProcSample {
    rss_kib: u64,
    cpu_secs: f64,
    processes: usize,
}

/// Sums RSS and user+system CPU time over `pid` and all its descendants. Read by hand
/// rather than with the `procfs` crate, whose build script fails on anything but Linux:
/// as a dev-dependency it would break `cargo test` on a developer's Mac.
fn sample_process_tree(pid: u32) -> Result<ProcSample> {
    sample_processes(pid, true)
}

/// This tool alone: the server it spawned is its child, and must not count as the tool.
fn sample_self() -> Option<ProcSample> {
    sample_processes(std::process::id(), false).ok()
}

fn sample_processes(pid: u32, descendants: bool) -> Result<ProcSample> {
    let ticks = clock_ticks_per_second();
    let mut total = ProcSample {
        rss_kib: 0,
        cpu_secs: 0.0,
        processes: 0,
    };
    let mut pending = vec![pid];
    // Bounded even if /proc were to report a cycle.
    while let Some(p) = pending.pop() {
        if total.processes >= 10_000 {
            break;
        }
        let status = std::fs::read_to_string(format!("/proc/{p}/status"));
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat"));
        let (status, stat) = match (status, stat) {
            (Ok(status), Ok(stat)) => (status, stat),
            // A descendant may exit while we walk the tree; the root must be there.
            _ if p != pid => continue,
            (Err(e), _) | (_, Err(e)) => return Err(e).context(format!("reading /proc/{p}")),
        };
        total.rss_kib += vm_rss_kib(&status).unwrap_or(0);
        total.cpu_secs += cpu_ticks(&stat).context("parsing /proc/PID/stat")? as f64 / ticks;
        total.processes += 1;
        if descendants {
            pending.extend(children(p));
        }
    }
    Ok(total)
}

/// `VmRSS` from /proc/PID/status, in KiB (the kernel writes "kB" but means KiB).
fn vm_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime from /proc/PID/stat. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from the last `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11); // field 3 (state) is index 0
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The child processes of every thread of `pid`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// CPU time the whole machine has spent since boot, from /proc/stat: the tool shares the
/// cores with the server, and other work (someone's build) skews both.
#[derive(Clone, Copy, Debug)]
struct MachineSample {
    /// user + nice + system: time charged to some process.
    processes: f64,
    /// irq + softirq: not charged to any process. On loopback most of it is the TCP
    /// receive path of this very test.
    interrupts: f64,
    /// Time the hypervisor gave to other guests.
    steal: f64,
}

fn machine_sample() -> Option<MachineSample> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let [user, nice, system, _idle, _iowait, irq, softirq, steal, ..] = ticks[..] else {
        return None;
    };
    let secs = |t: u64| t as f64 / clock_ticks_per_second();
    Some(MachineSample {
        processes: secs(user + nice + system),
        interrupts: secs(irq + softirq),
        steal: secs(steal),
    })
}

fn clock_ticks_per_second() -> f64 {
    #[cfg(unix)]
    let ticks = rustix::param::clock_ticks_per_second();
    #[cfg(not(unix))]
    let ticks = 100;
    ticks as f64
}

// ---------------------------------------------------------------------------------------
// WebSocket client
// ---------------------------------------------------------------------------------------

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn ws_config() -> WebSocketConfig {
    // Ten thousand idle clients with tungstenite's default 128 KiB read buffer would cost
    // the tool over a gigabyte; signaling messages are a few hundred bytes.
    WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
}

/// Opens a WebSocket and authenticates; returns it with this connection's participant id.
async fn connect(url: &str, token: &str) -> Result<(Ws, ParticipantId)> {
    let handshake = async {
        // TCP_NODELAY: a client sends one small frame at a time and wants it on the wire.
        let (mut ws, _) = connect_async_with_config(url, Some(ws_config()), true)
            .await
            .with_context(|| format!("WebSocket handshake with {url}"))?;
        let auth = ClientMsg::Auth {
            token: token.to_owned(),
            protocol_version: PROTOCOL_VERSION,
        };
        ws.send(Message::text(serde_json::to_string(&auth)?))
            .await
            .context("sending auth")?;
        loop {
            match next_server_msg(&mut ws).await? {
                ServerMsg::Welcome { participant_id, .. } => return Ok((ws, participant_id)),
                ServerMsg::Error { error, .. } => bail!("auth refused: {}", error.message),
                _ => {}
            }
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, handshake)
        .await
        .context("no welcome in time")?
}

/// The next message from the server, skipping control frames.
async fn next_server_msg(ws: &mut Ws) -> Result<ServerMsg> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                return serde_json::from_str(&text)
                    .with_context(|| format!("unexpected message: {}", clip(&text, 300)));
            }
            Some(Ok(Message::Close(frame))) => bail!("the server closed the connection: {frame:?}"),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e).context("reading the WebSocket"),
            None => bail!("the connection ended"),
        }
    }
}

fn clip(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// Fails early, with advice, when the open-file limit cannot hold `connections` sockets.
fn ensure_fds(connections: usize, fd_limit: u64) -> Result<()> {
    let needed = connections as u64 + FD_MARGIN;
    ensure!(
        needed <= fd_limit,
        "{connections} connections need about {needed} open files, but the limit is \
         {fd_limit} (raise the hard limit: ulimit -Hn)"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Scenario 1: idle connections
// ---------------------------------------------------------------------------------------

async fn idle(args: IdleArgs, fd_limit: u64) -> Result<()> {
    ensure!(
        args.connections >= 1 && args.users >= 1,
        "--connections and --users must be at least 1"
    );
    ensure_fds(args.connections, fd_limit)?;
    let target = Target::start(&args.target).await?;
    let outcome = run_idle(&target, &args).await;
    let kind = target.kind();
    let described = target.describe();
    let log = target.stop().await;
    let report = outcome.inspect_err(|_| print_log(&log))?;
    report.print(&args, &kind, &described, &log);
    Ok(())
}

struct IdleReport {
    before: Option<ProcSample>,
    after: Option<ProcSample>,
    connect_secs: f64,
    dropped: usize,
}

async fn run_idle(target: &Target, args: &IdleArgs) -> Result<IdleReport> {
    let tokens = target.tokens(args.users).await?;
    // Let the server give back what registration used before the baseline: each login
    // hashes on a blocking-pool thread, and those threads (with the allocator's memory
    // for their 19 MiB Argon2 buffers) exit after tokio's 10 s idle keep-alive.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let before = target.sample();
    eprintln!("opening {} connections...", args.connections);
    let started = Instant::now();
    let limit = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let stop = CancellationToken::new();
    let dropped = Arc::new(AtomicUsize::new(0));
    let (ready_tx, mut ready_rx) = mpsc::channel::<Result<()>>(args.connections);
    let mut conns = JoinSet::new();
    for i in 0..args.connections {
        conns.spawn(idle_connection(
            target.ws_url().to_owned(),
            tokens[i % tokens.len()].clone(),
            limit.clone(),
            ready_tx.clone(),
            stop.clone(),
            dropped.clone(),
        ));
    }
    drop(ready_tx);
    // Generous, yet bounded: a server that stalls makes the run fail, not hang.
    let deadline = tokio::time::Instant::now()
        + Duration::from_secs(30)
        + Duration::from_millis(10) * u32::try_from(args.connections).unwrap_or(u32::MAX);
    for _ in 0..args.connections {
        match tokio::time::timeout_at(deadline, ready_rx.recv()).await {
            Ok(Some(Ok(()))) => {}
            Ok(Some(Err(e))) => return Err(e),
            Ok(None) => bail!("connection tasks ended early"),
            Err(_) => bail!("not every connection got its welcome in time"),
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{} connections welcomed in {connect_secs:.1} s; settling {} s...",
        args.connections, args.settle
    );
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    let after = target.sample();
    let dropped = dropped.load(Relaxed);
    // Close politely (the peer server may be long-lived), but do not wait for ever.
    stop.cancel();
    let closing = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(10), closing)
        .await
        .is_err()
    {
        conns.abort_all();
    }
    Ok(IdleReport {
        before,
        after,
        connect_secs,
        dropped,
    })
}

/// One idle client: connects (holding a permit, so only so many handshakes run at once),
/// reports its welcome, then reads (so pings are answered) until told to stop.
async fn idle_connection(
    url: String,
    token: String,
    limit: Arc<Semaphore>,
    ready: mpsc::Sender<Result<()>>,
    stop: CancellationToken,
    dropped: Arc<AtomicUsize>,
) {
    let connected = {
        let Ok(_permit) = limit.acquire().await else {
            return;
        };
        connect(&url, &token).await
    };
    let mut ws = match connected {
        Ok((ws, _)) => {
            let _ = ready.send(Ok(())).await;
            ws
        }
        Err(e) => {
            let _ = ready.send(Err(e)).await;
            return;
        }
    };
    drop(ready);
    loop {
        tokio::select! {
            () = stop.cancelled() => {
                let _ = tokio::time::timeout(Duration::from_secs(5), ws.close(None)).await;
                return;
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Close(_)) | Err(_)) | None => {
                    dropped.fetch_add(1, Relaxed);
                    return;
                }
                Some(Ok(_)) => {}
            },
        }
    }
}

impl IdleReport {
    fn print(&self, args: &IdleArgs, kind: &str, target: &str, log: &[String]) {
        let n = args.connections as f64;
        let per_conn = match (self.before, self.after) {
            (Some(b), Some(a)) => Some((a.rss_kib as f64 - b.rss_kib as f64) / n),
            _ => None,
        };
        println!();
        println!(
            "== idle: {} connections over {} users ==",
            args.connections, args.users
        );
        println!("target            {target}");
        println!(
            "connect           {:.1} s for all welcomes ({:.0} connections/s), then {} s settle",
            self.connect_secs,
            n / self.connect_secs.max(1e-9),
            args.settle
        );
        println!(
            "server RSS        before {} / after {}",
            fmt_kib(self.before.map(|s| s.rss_kib)),
            fmt_kib(self.after.map(|s| s.rss_kib))
        );
        match per_conn {
            Some(k) => println!(
                "per connection    {k:.2} KiB (goal <= 8 KiB: {})",
                if k <= 8.0 { "met" } else { "MISSED" }
            ),
            None => println!("per connection    n/a"),
        }
        println!(
            "dropped           {} connections closed early",
            self.dropped
        );
        print_log(log);
        let result = json!({
            "scenario": "idle",
            "target": kind,
            "connections": args.connections,
            "users": args.users,
            "connect_secs": round(self.connect_secs, 3),
            "server_rss_before_kib": self.before.map(|s| s.rss_kib),
            "server_rss_after_kib": self.after.map(|s| s.rss_kib),
            "kib_per_connection": per_conn.map(|k| round(k, 3)),
            "dropped": self.dropped,
            "server_log_lines": log.len(),
        });
        println!("RESULT {result}");
    }
}

// ---------------------------------------------------------------------------------------
// Scenario 2: relay inside calls
// ---------------------------------------------------------------------------------------

/// What every client of a relay run shares: one clock and the running totals.
struct Shared {
    /// Timestamps in messages are nanoseconds since this; all clients are in one process,
    /// so one monotonic origin serves senders and receivers alike.
    origin: Instant,
    sent: AtomicU64,
    received: AtomicU64,
    /// Sent / received messages whose embedded send time is inside the measured window:
    /// the ones whose latency is recorded.
    window_sent: AtomicU64,
    window_received: AtomicU64,
    /// Messages that arrived inside the measured window, whenever sent: the throughput.
    /// Counted by arrival so that a server that falls behind shows a lower rate.
    window_delivered: AtomicU64,
    out_of_order: AtomicU64,
    server_errors: AtomicU64,
    writers_running: AtomicUsize,
    /// Latency in microseconds of each message sent inside the measured window.
    latency: Mutex<Histogram<u64>>,
    first_problem: Mutex<Option<String>>,
}

impl Shared {
    fn new(origin: Instant) -> Result<Self> {
        Ok(Self {
            origin,
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            window_sent: AtomicU64::new(0),
            window_received: AtomicU64::new(0),
            window_delivered: AtomicU64::new(0),
            out_of_order: AtomicU64::new(0),
            server_errors: AtomicU64::new(0),
            writers_running: AtomicUsize::new(0),
            // 1 µs to 60 s at 3 significant digits.
            latency: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
            first_problem: Mutex::new(None),
        })
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Keeps the first problem seen, to show it in the report.
    fn problem(&self, what: impl FnOnce() -> String) {
        let mut first = self.first_problem.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(what());
        }
    }
}

/// When clients send. Instants for the timers, the same moments in nanoseconds since
/// `Shared::origin` to compare with message stamps.
#[derive(Clone, Copy, Debug)]
struct Schedule {
    start: Instant,
    end: Instant,
    period: Duration,
    window_start_ns: u64,
    window_end_ns: u64,
}

impl Schedule {
    fn in_window(&self, sent_ns: u64) -> bool {
        (self.window_start_ns..self.window_end_ns).contains(&sent_ns)
    }
}

/// A pre-serialized `ice_candidate` for one addressee, split around the stamp, so sending
/// costs two copies and two number formats instead of a serialization: the tool shares
/// the CPU with the server it measures.
struct Template {
    head: String,
    tail: String,
}

impl Template {
    fn new(room_id: RoomId, to: ParticipantId, message_bytes: usize) -> Result<Self> {
        let placeholder = "#".repeat(STAMP_LEN);
        let serialize = |pad: usize| {
            let msg = ClientMsg::IceCandidate {
                room_id,
                to,
                candidate: IceCandidate {
                    candidate: format!(
                        "candidate:1 1 udp 2122260223 127.0.0.1 9 typ host generation 0 \
                         ufrag load network-id 1 {}{placeholder}",
                        "x".repeat(pad)
                    ),
                    sdp_mid: Some("0".into()),
                    sdp_mline_index: Some(0),
                    username_fragment: None,
                },
            };
            serde_json::to_string(&msg)
        };
        let unpadded = serialize(0)?;
        let json = serialize(message_bytes.saturating_sub(unpadded.len()))?;
        let (head, tail) = json
            .split_once(&placeholder)
            .context("the stamp placeholder is missing from the serialized message")?;
        let template = Self {
            head: head.to_owned(),
            tail: tail.to_owned(),
        };
        // Checked once per template (a bench has no test harness): what is sent must be a
        // valid client message whose stamp reads back.
        let probe = template.render(42, 1_234_567_890);
        let stamp = match serde_json::from_str(&probe)? {
            ClientMsg::IceCandidate { candidate, .. } => parse_stamp(&candidate.candidate),
            _ => None,
        };
        ensure!(
            stamp == Some((42, 1_234_567_890)),
            "the ice_candidate template does not round-trip: {probe}"
        );
        Ok(template)
    }

    fn render(&self, seq: u64, sent_ns: u64) -> String {
        let mut text = String::with_capacity(self.head.len() + STAMP_LEN + self.tail.len());
        text.push_str(&self.head);
        // Writing to a String cannot fail.
        let _ = write!(text, "seq={seq:020} t={sent_ns:020}");
        text.push_str(&self.tail);
        text
    }
}

/// The sequence number and send time at the end of a stamped candidate.
fn parse_stamp(candidate: &str) -> Option<(u64, u64)> {
    let stamp = candidate.get(candidate.len().checked_sub(STAMP_LEN)?..)?;
    let (seq, sent) = stamp.strip_prefix("seq=")?.split_once(" t=")?;
    Some((seq.parse().ok()?, sent.parse().ok()?))
}

async fn relay(args: RelayArgs, fd_limit: u64) -> Result<()> {
    ensure!(args.rooms >= 1, "--rooms must be at least 1");
    let (min, max) = (ROOM_MIN_PARTICIPANTS, ROOM_MAX_PARTICIPANTS);
    ensure!(
        u32::try_from(args.per_room).is_ok_and(|p| (min..=max).contains(&p)),
        "--per-room must be between {min} and {max}: a room's limit"
    );
    ensure!(
        args.rate >= 1 && args.duration >= 1,
        "--rate and --duration must be at least 1"
    );
    let clients = args.rooms * args.per_room;
    ensure_fds(clients, fd_limit)?;
    let target = Target::start(&args.target).await?;
    let outcome = run_relay(&target, &args).await;
    let kind = target.kind();
    let described = target.describe();
    let log = target.stop().await;
    let report = outcome.inspect_err(|_| print_log(&log))?;
    report.print(&args, &kind, &described, &log);
    Ok(())
}

struct RelayReport {
    setup_secs: f64,
    schedule: Schedule,
    sent: u64,
    received: u64,
    window_sent: u64,
    window_received: u64,
    window_delivered: u64,
    out_of_order: u64,
    server_errors: u64,
    client_failures: usize,
    first_problem: Option<String>,
    latency: Histogram<u64>,
    server_window: Option<(ProcSample, ProcSample)>,
    server_end: Option<ProcSample>,
    tool_window: Option<(ProcSample, ProcSample)>,
    machine_window: Option<(MachineSample, MachineSample)>,
}

async fn run_relay(target: &Target, args: &RelayArgs) -> Result<RelayReport> {
    let setup_started = Instant::now();
    let clients = args.rooms * args.per_room;
    let tokens = target.tokens(clients).await?;
    let groups: Vec<&[String]> = tokens.chunks(args.per_room).collect();
    let rooms = target.rooms(&groups).await?;
    let shared = Arc::new(Shared::new(Instant::now())?);
    let limit = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let stop = CancellationToken::new();
    let (ready_tx, mut ready_rx) = mpsc::channel::<Result<()>>(clients);
    let (go_tx, go_rx) = watch::channel(None);
    eprintln!("connecting {clients} clients and joining their calls...");
    let mut tasks = JoinSet::new();
    for (i, token) in tokens.iter().enumerate() {
        let client = RelayClient {
            index: i,
            clients,
            url: target.ws_url().to_owned(),
            token: token.clone(),
            room: rooms[i / args.per_room],
            peers: args.per_room - 1,
            message_bytes: args.message_bytes,
            shared: shared.clone(),
            stop: stop.clone(),
        };
        tasks.spawn(client.run(limit.clone(), ready_tx.clone(), go_rx.clone()));
    }
    drop(ready_tx);
    let deadline = tokio::time::Instant::now()
        + Duration::from_secs(30)
        + Duration::from_millis(20) * u32::try_from(clients).unwrap_or(u32::MAX);
    for _ in 0..clients {
        match tokio::time::timeout_at(deadline, ready_rx.recv()).await {
            Ok(Some(Ok(()))) => {}
            Ok(Some(Err(e))) => return Err(e),
            Ok(None) => bail!("client tasks ended early"),
            Err(_) => bail!("not every client joined its call in time"),
        }
    }
    let setup_secs = setup_started.elapsed().as_secs_f64();

    let start = Instant::now() + START_DELAY;
    let window_start = start + Duration::from_secs(args.warmup);
    let end = window_start + Duration::from_secs(args.duration);
    let ns = |at: Instant| u64::try_from((at - shared.origin).as_nanos()).unwrap_or(u64::MAX);
    let schedule = Schedule {
        start,
        end,
        period: Duration::from_secs(1) / args.rate,
        window_start_ns: ns(window_start),
        window_end_ns: ns(end),
    };
    eprintln!(
        "all {clients} clients in their calls after {setup_secs:.1} s; sending for {} s + {} s...",
        args.warmup, args.duration
    );
    shared.writers_running.store(clients, Relaxed);
    go_tx.send_replace(Some(schedule));

    tokio::time::sleep_until(window_start.into()).await;
    let server_start = target.sample();
    let tool_start = sample_self();
    let machine_start = machine_sample();
    tokio::time::sleep_until(end.into()).await;
    let server_stop = target.sample();
    let tool_stop = sample_self();
    let machine_stop = machine_sample();

    // Writers stop by themselves at `end`; one stuck on a full socket is given a while.
    let writers_deadline = end + Duration::from_secs(10);
    while shared.writers_running.load(Relaxed) > 0 && Instant::now() < writers_deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drain_deadline = Instant::now() + DRAIN_TIMEOUT;
    while shared.received.load(Relaxed) < shared.sent.load(Relaxed)
        && Instant::now() < drain_deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let server_end = target.sample();
    stop.cancel();
    let mut client_failures = 0;
    let joined = async {
        while let Some(outcome) = tasks.join_next().await {
            let failure = match outcome {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => format!("{e:#}"),
                Err(e) => format!("client task: {e}"),
            };
            client_failures += 1;
            shared.problem(|| failure);
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), joined)
        .await
        .is_err()
    {
        tasks.abort_all();
    }
    let latency = shared
        .latency
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let first_problem = shared
        .first_problem
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    Ok(RelayReport {
        setup_secs,
        schedule,
        sent: shared.sent.load(Relaxed),
        received: shared.received.load(Relaxed),
        window_sent: shared.window_sent.load(Relaxed),
        window_received: shared.window_received.load(Relaxed),
        window_delivered: shared.window_delivered.load(Relaxed),
        out_of_order: shared.out_of_order.load(Relaxed),
        server_errors: shared.server_errors.load(Relaxed),
        client_failures,
        first_problem,
        latency,
        server_window: server_start.zip(server_stop),
        server_end,
        tool_window: tool_start.zip(tool_stop),
        machine_window: machine_start.zip(machine_stop),
    })
}

/// One participant of a relay run.
struct RelayClient {
    index: usize,
    clients: usize,
    url: String,
    token: String,
    room: RoomId,
    /// Other participants to wait for before sending.
    peers: usize,
    message_bytes: usize,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl RelayClient {
    /// Connects, joins the call, waits for everyone, then sends and receives until stopped.
    async fn run(
        self,
        limit: Arc<Semaphore>,
        ready: mpsc::Sender<Result<()>>,
        mut go: watch::Receiver<Option<Schedule>>,
    ) -> Result<()> {
        let joined = tokio::time::timeout(Duration::from_secs(60), self.join(&limit)).await;
        let (ws, others) = match joined {
            Ok(Ok(joined)) => joined,
            Ok(Err(e)) => {
                let _ = ready.send(Err(e)).await;
                return Ok(());
            }
            Err(_) => {
                let e = anyhow::anyhow!("client {}: joining the call timed out", self.index);
                let _ = ready.send(Err(e)).await;
                return Ok(());
            }
        };
        let templates = others
            .iter()
            .map(|to| Template::new(self.room, *to, self.message_bytes))
            .collect::<Result<Vec<_>>>()?;
        let _ = ready.send(Ok(())).await;
        drop(ready);
        let schedule = loop {
            if let Some(schedule) = *go.borrow_and_update() {
                break schedule;
            }
            tokio::select! {
                () = self.stop.cancelled() => return Ok(()),
                changed = go.changed() => if changed.is_err() { return Ok(()) },
            }
        };
        let (sink, stream) = ws.split();
        // Spread the clients' first messages over one period, as independent people would
        // be, instead of all of them firing on the same timer tick.
        let offset = schedule
            .period
            .mul_f64(self.index as f64 / self.clients as f64);
        let mut writer = tokio::spawn(write_loop(
            sink,
            templates,
            schedule,
            offset,
            self.shared.clone(),
        ));
        let read = read_loop(stream, &others, schedule, &self.shared, &self.stop).await;
        let written = match tokio::time::timeout(Duration::from_secs(1), &mut writer).await {
            Ok(Ok(written)) => written,
            Ok(Err(e)) => Err(e).context("writer task"),
            Err(_) => {
                writer.abort();
                Ok(())
            }
        };
        read.and(written)
            .with_context(|| format!("client {}", self.index))
    }

    /// Connects and joins the call; returns once all other participants are known.
    async fn join(&self, limit: &Semaphore) -> Result<(Ws, Vec<ParticipantId>)> {
        let (mut ws, me) = {
            let _permit = limit.acquire().await?;
            connect(&self.url, &self.token).await?
        };
        let join = ClientMsg::JoinCall {
            room_id: self.room,
            video: true,
        };
        ws.send(Message::text(serde_json::to_string(&join)?))
            .await
            .context("sending join_call")?;
        let mut others: Vec<ParticipantId> = Vec::with_capacity(self.peers);
        let add = |others: &mut Vec<ParticipantId>, p: ParticipantId| {
            if p != me && !others.contains(&p) {
                others.push(p);
            }
        };
        let mut joined = false;
        while !joined || others.len() < self.peers {
            match next_server_msg(&mut ws).await? {
                ServerMsg::CallJoined { participants, .. } => {
                    joined = true;
                    participants
                        .iter()
                        .for_each(|p| add(&mut others, p.participant_id));
                }
                ServerMsg::ParticipantJoined { participant, .. } => {
                    add(&mut others, participant.participant_id);
                }
                ServerMsg::Error { error, .. } => bail!("join_call refused: {}", error.message),
                _ => {}
            }
        }
        Ok((ws, others))
    }
}

/// Sends one stamped ice_candidate per tick, round-robin over the others, until `end`.
async fn write_loop(
    mut sink: SplitSink<Ws, Message>,
    templates: Vec<Template>,
    schedule: Schedule,
    offset: Duration,
    shared: Arc<Shared>,
) -> Result<()> {
    /// Counts this writer out however it ends, so the main task never waits for it in vain.
    struct Running<'a>(&'a AtomicUsize);
    impl Drop for Running<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Relaxed);
        }
    }
    let _running = Running(&shared.writers_running);
    let end = tokio::time::Instant::from(schedule.end);
    let mut ticker = tokio::time::interval_at((schedule.start + offset).into(), schedule.period);
    // A writer that falls behind catches up, so the offered load stays what was asked
    // for; if the server cannot take it, that shows as latency, not as fewer sends.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    for (seq, template) in (0u64..).zip(templates.iter().cycle()) {
        if ticker.tick().await >= end {
            break;
        }
        let sent_ns = shared.now_ns();
        sink.send(Message::text(template.render(seq, sent_ns)))
            .await
            .context("sending ice_candidate")?;
        shared.sent.fetch_add(1, Relaxed);
        if schedule.in_window(sent_ns) {
            shared.window_sent.fetch_add(1, Relaxed);
        }
    }
    Ok(())
}

/// Receives relayed candidates and records their latency, until `stop`.
async fn read_loop(
    mut stream: SplitStream<Ws>,
    others: &[ParticipantId],
    schedule: Schedule,
    shared: &Shared,
    stop: &CancellationToken,
) -> Result<()> {
    // Each sender numbers its messages in one sequence, so what one receiver gets from one
    // sender must arrive in increasing order: a repeat or a step back is a relay bug.
    let mut last_seq: Vec<Option<u64>> = vec![None; others.len()];
    loop {
        let msg = tokio::select! {
            biased;
            () = stop.cancelled() => return Ok(()),
            msg = stream.next() => msg,
        };
        let text = match msg {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => bail!("the server closed the connection: {frame:?}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e).context("reading the WebSocket"),
            None => bail!("the connection ended"),
        };
        let received_ns = shared.now_ns();
        match serde_json::from_str::<ServerMsg>(&text) {
            Ok(ServerMsg::IceCandidate {
                from, candidate, ..
            }) => {
                let Some((seq, sent_ns)) = parse_stamp(&candidate.candidate) else {
                    shared.problem(|| format!("unstamped candidate: {}", clip(&text, 300)));
                    continue;
                };
                shared.received.fetch_add(1, Relaxed);
                if schedule.in_window(received_ns) {
                    shared.window_delivered.fetch_add(1, Relaxed);
                }
                if schedule.in_window(sent_ns) {
                    shared.window_received.fetch_add(1, Relaxed);
                    let micros = received_ns.saturating_sub(sent_ns) / 1000;
                    shared
                        .latency
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .saturating_record(micros.max(1));
                }
                match others.iter().position(|p| *p == from) {
                    Some(i) => {
                        if last_seq[i].is_some_and(|last| seq <= last) {
                            shared.out_of_order.fetch_add(1, Relaxed);
                        }
                        last_seq[i] = Some(seq);
                    }
                    None => shared.problem(|| format!("candidate from a stranger: {from}")),
                }
            }
            Ok(ServerMsg::Error {
                error, in_reply_to, ..
            }) => {
                shared.server_errors.fetch_add(1, Relaxed);
                shared.problem(|| {
                    format!(
                        "server error {:?} ({}) in reply to {}",
                        error.code,
                        error.message,
                        in_reply_to.as_deref().unwrap_or("?")
                    )
                });
            }
            // Presence and membership news are not part of the measurement.
            Ok(_) => {}
            Err(e) => shared.problem(|| format!("unreadable message ({e}): {}", clip(&text, 300))),
        }
    }
}

impl RelayReport {
    fn print(&self, args: &RelayArgs, kind: &str, target: &str, log: &[String]) {
        let clients = args.rooms * args.per_room;
        let secs = args.duration as f64;
        let offered = clients as f64 * f64::from(args.rate);
        let delivered = self.window_delivered as f64 / secs;
        let lost = self.sent.saturating_sub(self.received);
        let ms = |q: f64| self.latency.value_at_quantile(q) as f64 / 1000.0;
        let (p50, p95, p99, p999) = (ms(0.50), ms(0.95), ms(0.99), ms(0.999));
        let max = self.latency.max() as f64 / 1000.0;
        let cpu = |w: Option<(ProcSample, ProcSample)>| w.map(|(a, b)| b.cpu_secs - a.cpu_secs);
        let server_cpu = cpu(self.server_window);
        let tool_cpu = cpu(self.tool_window);
        let machine = self.machine_window.map(|(a, b)| MachineSample {
            processes: b.processes - a.processes,
            interrupts: b.interrupts - a.interrupts,
            steal: b.steal - a.steal,
        });
        // Whatever else ran meanwhile: the figures above are only clean if this is small.
        // Interrupts count as busy too: the kernel charges part of the loopback TCP work
        // done in softirq context to the process it interrupted (server or tool), part
        // to no process. /proc/stat is sampled at each tick, so expect +-15 % of noise.
        let other_cpu = machine
            .map(|m| m.processes + m.interrupts)
            .zip(server_cpu)
            .zip(tool_cpu)
            .map(|((all, server), tool)| all - server - tool);
        let interrupts = machine.map(|m| m.interrupts);
        let steal = machine.map(|m| m.steal);
        let pct = |c: Option<f64>| c.map(|c| 100.0 * c / secs);
        let met = |ok: bool| if ok { "met" } else { "MISSED" };
        println!();
        println!(
            "== relay: {} rooms x {} clients, {} msg/s each (offered {offered:.0} msg/s), \
             {} s warm-up + {} s measured ==",
            args.rooms, args.per_room, args.rate, args.warmup, args.duration
        );
        println!("target            {target}");
        println!(
            "setup             {:.1} s ({clients} users, {} rooms, {clients} WebSockets in calls)",
            self.setup_secs, args.rooms
        );
        println!(
            "delivered         {delivered:.0} msg/s in the measured window ({} arrived in it; \
             of the {} sent in it, {} arrived)",
            self.window_delivered, self.window_sent, self.window_received
        );
        println!(
            "latency           p50 {p50:.2} ms, p95 {p95:.2} ms, p99 {p99:.2} ms, \
             p99.9 {p999:.2} ms, max {max:.2} ms ({} samples)",
            self.latency.len()
        );
        println!(
            "sent / received   {} / {} in total (lost {lost})",
            self.sent, self.received
        );
        println!(
            "server CPU        {} in the {secs:.0} s window = {} of one core",
            fmt_opt(server_cpu, "s"),
            fmt_opt(pct(server_cpu), "%")
        );
        println!(
            "server RSS        {} at the end",
            fmt_kib(self.server_end.map(|s| s.rss_kib))
        );
        println!(
            "load tool CPU     {} = {} of one core (same window)",
            fmt_opt(tool_cpu, "s"),
            fmt_opt(pct(tool_cpu), "%")
        );
        println!(
            "other work        {} of one core (machine busy time less server and tool; \
             ~0 when quiet); interrupts {}, steal {}",
            fmt_opt(pct(other_cpu), "%"),
            fmt_opt(pct(interrupts), "%"),
            fmt_opt(pct(steal), "%"),
        );
        if other_cpu.is_some_and(|c| c > 0.2 * secs) {
            println!(
                "                  WARNING: other work ran during the window; rerun when quiet"
            );
        }
        println!(
            "checks            out of order {}, server errors {}, failed clients {}",
            self.out_of_order, self.server_errors, self.client_failures
        );
        if let Some(problem) = &self.first_problem {
            println!("first problem     {problem}");
        }
        // The goals are for the default load. At exactly the offered 40000 msg/s, timer
        // jitter at the window's two edges moves a few messages in or out: allow 0.5 %.
        let throughput = if offered >= 40_000.0 {
            met(delivered >= 40_000.0 * 0.995)
        } else {
            "n/a (offered less)"
        };
        let tail = if self.latency.is_empty() {
            "n/a (no samples)"
        } else {
            met(p99 <= 20.0)
        };
        println!(
            "goals             >= 40000 msg/s (less 0.5 % for window edges): {throughput}, \
             p99 <= 20 ms: {tail}, nothing lost: {}",
            met(lost == 0)
        );
        print_log(log);
        let result = json!({
            "scenario": "relay",
            "target": kind,
            "rooms": args.rooms,
            "per_room": args.per_room,
            "rate_per_client": args.rate,
            "offered_msgs_per_sec": offered,
            "warmup_secs": args.warmup,
            "duration_secs": args.duration,
            "message_bytes": args.message_bytes,
            "period_ns": u64::try_from(self.schedule.period.as_nanos()).unwrap_or(u64::MAX),
            "setup_secs": round(self.setup_secs, 3),
            "delivered_msgs_per_sec": round(delivered, 1),
            "window_sent": self.window_sent,
            "window_received": self.window_received,
            "window_delivered": self.window_delivered,
            "sent": self.sent,
            "received": self.received,
            "lost": lost,
            "latency_ms": {
                "p50": round(p50, 3),
                "p95": round(p95, 3),
                "p99": round(p99, 3),
                "p999": round(p999, 3),
                "max": round(max, 3),
                "mean": round(self.latency.mean() / 1000.0, 3),
                "samples": self.latency.len(),
            },
            "server_cpu_secs": server_cpu.map(|c| round(c, 3)),
            "server_cpu_pct_of_core": pct(server_cpu).map(|p| round(p, 1)),
            "server_rss_end_kib": self.server_end.map(|s| s.rss_kib),
            "tool_cpu_secs": tool_cpu.map(|c| round(c, 3)),
            "tool_cpu_pct_of_core": pct(tool_cpu).map(|p| round(p, 1)),
            "other_cpu_pct_of_core": pct(other_cpu).map(|p| round(p, 1)),
            "interrupt_cpu_pct_of_core": pct(interrupts).map(|p| round(p, 1)),
            "steal_cpu_pct_of_core": pct(steal).map(|p| round(p, 1)),
            "out_of_order": self.out_of_order,
            "server_errors": self.server_errors,
            "failed_clients": self.client_failures,
            "first_problem": self.first_problem,
            "server_log_lines": log.len(),
        });
        println!("RESULT {result}");
    }
}

// ---------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------

fn print_log(log: &[String]) {
    if log.is_empty() {
        println!("server log        nothing at warning level or above");
        return;
    }
    println!("server log        {} lines, first ones:", log.len());
    for line in log.iter().take(5) {
        println!("                  {}", clip(line, 400));
    }
}

fn fmt_kib(kib: Option<u64>) -> String {
    match kib {
        Some(kib) => format!("{:.1} MiB", kib as f64 / 1024.0),
        None => "n/a".into(),
    }
}

fn fmt_opt(value: Option<f64>, unit: &str) -> String {
    match value {
        Some(v) => format!("{v:.2} {unit}"),
        None => "n/a".into(),
    }
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}
