//! `ws_load`: a load generator for the signaling WebSocket (`GET /ws`), and the timeline's
//! history figures.
//!
//! Four scenarios, picked by a subcommand (cargo appends `--bench`, which is ignored):
//!
//! ```text
//! cargo bench -p signal-server --bench ws_load -- idle  [--connections 10000] [--users 100]
//! cargo bench -p signal-server --bench ws_load -- relay [--rooms 100] [--per-room 5]
//!     [--rate 80] [--duration 20] [--warmup 3] [--database sqlite|postgres]
//!     [--nodes N --redis-url redis://127.0.0.1:6379]   (N nodes: with --database postgres)
//! cargo bench -p signal-server --bench ws_load -- chat  [--rooms 100] [--per-room 5]
//!     [--rate 10] [--duration 20] [--warmup 3] [--database sqlite|postgres]
//!     [--nodes N --redis-url redis://127.0.0.1:6379]
//! cargo bench -p signal-server --bench ws_load -- history [--catchup-messages 10000]
//!     [--fill 1000000] [--pages 1000] [--database sqlite|postgres]
//! ```
//!
//! * `idle` opens many authenticated connections that do nothing and reports the server's
//!   resident memory per connection.
//! * `relay` puts clients in calls of `--per-room` participants, has each send
//!   `ice_candidate` messages round-robin to the others at `--rate` messages per second,
//!   and reports delivered throughput, latency percentiles, losses and the server's CPU.
//!   With `--nodes N`, client i connects to node i mod N, so a call's participants are
//!   spread over the nodes and most relays cross them (through the call's home node).
//! * `chat` puts clients in group rooms of `--per-room` members, has each send
//!   `send_message` at `--rate` messages per second over its one WebSocket, and reports
//!   acknowledged (persisted) messages per second, `message_created` deliveries per second,
//!   send-to-ack and send-to-delivery latency, and a loss check: every client's received
//!   seqs (its acks and the others' messages) against the room's timeline as the server's
//!   REST API pages it out of the database afterwards.
//! * `history` times a catch-up (`GET /changes?since=0` through `--catchup-messages`
//!   messages sent through the API) and random pages of 50 (`?before=SEQ&limit=50`) in a
//!   room holding `--fill` messages written straight into the database.
//!
//! By default it spawns the `confab-server` binary built with this bench (fresh data
//! folder, free port on 127.0.0.1, rate limits lifted; `--database postgres` gives it a
//! fresh PostgreSQL database, dropped afterwards) and sets up users and rooms through the
//! REST API. With `--peer-ws-url` it instead targets another server speaking the same
//! WebSocket messages: access tokens are minted here as HS256 JWTs (`--peer-secret`) and
//! rooms are random ids, and `--peer-pid` names the process (tree) to measure. In `chat`
//! the peer's URL gets `/<room id>` appended (a connection per room, as Django Channels'
//! chat apps route it) and its `GET /api/rooms/{id}/messages?after=` pages the loss check.
//!
//! `--server-bin` spawns another build instead (to measure a change); the spawned server
//! inherits the environment except `CONFAB_*` and `DATABASE_URL`, so allocator settings
//! such as `MALLOC_ARENA_MAX` reach it.
//!
//! The tool shares the machine with the server, so `relay` and `chat` also report their
//! own CPU and how much other work ran during the measured window: figures taken while
//! something else (a build) was running are not comparable. Linux only (/proc).
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
    AuthResponse, ChangesPage, CreateRoomRequest, LoginRequest, MESSAGE_BODY_MAX, MESSAGE_PAGE_MAX,
    Me, MessagePage, ROOM_MAX_PARTICIPANTS, ROOM_MIN_PARTICIPANTS, RegisterRequest, Room,
    SendMessageRequest,
};
use shared::signal::{ClientMsg, IceCandidate, PROTOCOL_VERSION, ServerMsg};
use shared::{ParticipantId, RoomId, UserId};
use std::collections::HashMap;
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
    after_help = "Run with: cargo bench -p signal-server --bench ws_load -- \
                  <idle|relay|chat|history> [OPTIONS]"
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
    /// Send chat messages in group rooms; report persisted messages/s, deliveries/s,
    /// latency, CPU and a loss check against the database.
    Chat(ChatArgs),
    /// Time a catch-up through /changes and random pages of a very long timeline.
    History(HistoryArgs),
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

#[derive(Args, Debug)]
struct ChatArgs {
    /// Group rooms.
    #[arg(long, default_value_t = 100)]
    rooms: usize,

    /// Members per room (each a separate user and connection).
    #[arg(long, default_value_t = 5)]
    per_room: usize,

    /// Messages per second each client sends to its room; fractions are allowed (0.2 is
    /// one message every 5 s).
    #[arg(long, default_value_t = 10.0)]
    rate: f64,

    /// Seconds measured, after the warm-up.
    #[arg(long, default_value_t = 20)]
    duration: u64,

    /// Seconds of sending before measuring starts.
    #[arg(long, default_value_t = 3)]
    warmup: u64,

    /// Characters in each message body (a send-time stamp, then padding).
    #[arg(long, default_value_t = 100)]
    body_chars: usize,

    /// Connections being opened at the same time.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,

    #[command(flatten)]
    target: TargetArgs,
}

#[derive(Args, Debug)]
struct HistoryArgs {
    /// Messages sent (through the REST API) for the catch-up to read back.
    #[arg(long, default_value_t = 10_000)]
    catchup_messages: usize,

    /// Times the catch-up is timed, from rev 0 each time.
    #[arg(long, default_value_t = 5)]
    catchup_runs: usize,

    /// Messages written straight into the database for the page test (0: skip it).
    #[arg(long, default_value_t = 1_000_000)]
    fill: u64,

    /// Random pages timed in the filled room.
    #[arg(long, default_value_t = 1_000)]
    pages: usize,

    /// Messages per page (the API allows 1-100).
    #[arg(long, default_value_t = 50)]
    page_size: u32,

    #[command(flatten)]
    target: TargetArgs,
}

/// The database a spawned confab-server uses.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Database {
    /// A SQLite file in the server's temporary data folder (the server's default).
    Sqlite,
    /// A fresh database on --postgres-url, created for the run and dropped after it.
    Postgres,
}

/// Which server to load.
#[derive(Args, Debug, Clone)]
struct TargetArgs {
    /// Database of the spawned confab-server.
    #[arg(long, value_enum, default_value_t = Database::Sqlite, conflicts_with = "peer_ws_url")]
    database: Database,

    /// PostgreSQL server for --database postgres, without a database name; the tool
    /// connects to its `postgres` database to create and drop `confab_bench_*` ones.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    postgres_url: String,

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

    /// An extra flag for the spawned server, after the tool's own (repeat for more), e.g.
    /// `--server-arg=--db-max-connections=1` to see what a setting changes.
    #[arg(long, allow_hyphen_values = true, conflicts_with = "peer_ws_url")]
    server_arg: Vec<String>,

    /// Spawned nodes on one database and one Redis: client i connects to node i mod N,
    /// so most deliveries cross nodes. Needs `--database postgres`.
    #[arg(long, default_value_t = 1, conflicts_with = "peer_ws_url")]
    nodes: usize,

    /// Redis for `--nodes` above 1 (a fresh key prefix per run, deleted afterwards).
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
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
            Scenario::Chat(args) => chat(args, fd_limit).await,
            Scenario::History(args) => history(args).await,
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
        http: reqwest::Client,
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
                    http: http_client()?,
                })
            }
            _ => {
                let bin = args
                    .server_bin
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_confab-server")));
                let scratch = match args.database {
                    Database::Sqlite => None,
                    Database::Postgres => Some(ScratchDb::create(&args.postgres_url).await?),
                };
                ensure!(args.nodes >= 1, "--nodes must be at least 1");
                let mut extra = args.server_arg.clone();
                let prefix = format!("confab-bench-{}", uuid::Uuid::new_v4().simple());
                if args.nodes > 1 {
                    ensure!(
                        scratch.is_some(),
                        "--nodes needs --database postgres (one database for every node)"
                    );
                    let secret = uuid::Uuid::new_v4().simple().to_string().repeat(2);
                    extra.extend([
                        format!("--redis-url={}", args.redis_url),
                        format!("--redis-prefix={prefix}"),
                        format!("--jwt-secret={secret}"),
                    ]);
                }
                let mut server = ConfabServer::spawn(&bin, scratch, None, &extra).await?;
                for _ in 1..args.nodes {
                    let url = server.database_url.clone();
                    let node = ConfabServer::spawn(&bin, None, Some(url), &extra).await?;
                    server.nodes.push(node);
                }
                if args.nodes > 1 {
                    server.redis = Some((args.redis_url.clone(), prefix));
                    // Every node must be subscribed before the first message.
                    for base in server.bases() {
                        wait_node_ready(&server.http, &base).await?;
                    }
                }
                Ok(Self::Confab(Box::new(server)))
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Confab(server) => format!(
                "{} (pid {}) on {}",
                server.name,
                server.pid,
                server.database()
            ),
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

    /// Where relay client `client` connects: with `--nodes`, node `client` mod N.
    fn node_url(&self, client: usize) -> String {
        match self {
            Self::Confab(server) if !server.nodes.is_empty() => {
                match client % (server.nodes.len() + 1) {
                    0 => server.ws_url.clone(),
                    n => server.nodes[n - 1].ws_url.clone(),
                }
            }
            _ => self.ws_url().to_owned(),
        }
    }

    /// Where a chat client of `room` connects: Confab has one WebSocket for every room;
    /// a Django Channels chat app routes one connection per room, by path.
    fn chat_url(&self, room: RoomId, client: usize) -> String {
        match self {
            Self::Confab(server) if server.nodes.is_empty() => server.ws_url.clone(),
            Self::Confab(server) => match client % (server.nodes.len() + 1) {
                0 => server.ws_url.clone(),
                n => server.nodes[n - 1].ws_url.clone(),
            },
            Self::Peer { ws_url, .. } => format!("{}/{room}", ws_url.trim_end_matches('/')),
        }
    }

    /// Every seq of a room's timeline as the server's REST API pages it out of its
    /// database (`GET /api/rooms/{id}/messages?after=SEQ&limit=100`), in ascending order.
    async fn room_seqs(&self, room: RoomId, token: &str) -> Result<Vec<u64>> {
        let (http, base) = match self {
            Self::Confab(server) => (&server.http, server.base.clone()),
            Self::Peer { ws_url, http, .. } => {
                let uri: Uri = ws_url.parse().context("--peer-ws-url")?;
                let authority = uri.authority().context("--peer-ws-url has no host")?;
                (http, format!("http://{authority}"))
            }
        };
        /// What the loss check reads of a page.
        #[derive(serde::Deserialize)]
        struct Page {
            messages: Vec<Seq>,
            has_more_after: bool,
        }
        #[derive(serde::Deserialize)]
        struct Seq {
            seq: u64,
        }
        let mut seqs = Vec::new();
        let mut after = 0;
        loop {
            let url = format!("{base}/api/rooms/{room}/messages?after={after}&limit=100");
            let response = http
                .get(&url)
                .bearer_auth(token)
                .send()
                .await
                .with_context(|| format!("GET {url}"))?;
            let status = response.status();
            ensure!(status.is_success(), "GET {url}: {status}");
            let page: Page = response
                .json()
                .await
                .with_context(|| format!("GET {url}: unexpected response"))?;
            seqs.extend(page.messages.iter().map(|m| m.seq));
            match page.messages.last() {
                Some(last) if page.has_more_after => after = last.seq,
                _ => break,
            }
        }
        Ok(seqs)
    }

    /// Memory and CPU time of the server (with `--nodes`, summed over every node), when
    /// there is a process to read them from.
    fn sample(&self) -> Option<ProcSample> {
        let pids: Vec<u32> = match self {
            Self::Confab(server) => std::iter::once(server.pid)
                .chain(server.nodes.iter().map(|n| n.pid))
                .collect(),
            Self::Peer { pid, .. } => vec![(*pid)?],
        };
        let mut total = ProcSample {
            rss_kib: 0,
            cpu_secs: 0.0,
            processes: 0,
        };
        for pid in pids {
            match sample_process_tree(pid) {
                Ok(sample) => {
                    total.rss_kib += sample.rss_kib;
                    total.cpu_secs += sample.cpu_secs;
                    total.processes += sample.processes;
                }
                Err(e) => {
                    eprintln!("warning: cannot sample process {pid}: {e:#}");
                    return None;
                }
            }
        }
        Some(total)
    }

    /// With `--nodes`: Redis's own CPU seconds (user + system, from `INFO cpu`). The
    /// machine's Redis serves whatever else runs on it too.
    async fn redis_cpu(&self) -> Option<f64> {
        let Self::Confab(server) = self else {
            return None;
        };
        let (url, _) = server.redis.as_ref()?;
        let client = redis::Client::open(url.as_str()).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        let info: String = redis::cmd("INFO")
            .arg("cpu")
            .query_async(&mut conn)
            .await
            .ok()?;
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
        };
        Some(field("used_cpu_user:")? + field("used_cpu_sys:")?)
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
            // The peer has no REST API for rooms: a room exists as soon as someone joins
            // its call or connects to its chat.
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
    /// The database the server was given.
    database_url: String,
    /// The PostgreSQL database made for this run, dropped after the server stops.
    scratch: Option<ScratchDb>,
    /// With `--nodes`: the other nodes (on `database_url`), and the Redis and key
    /// prefix they share.
    nodes: Vec<ConfabServer>,
    redis: Option<(String, String)>,
    /// Deleted when the server is dropped (after it was killed).
    data: tempfile::TempDir,
}

impl ConfabServer {
    async fn spawn(
        bin: &Path,
        scratch: Option<ScratchDb>,
        database_url: Option<String>,
        extra: &[String],
    ) -> Result<Self> {
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
        let database_url = match (&scratch, database_url) {
            (_, Some(url)) => url,
            (Some(db), None) => db.url(),
            (None, None) => format!(
                "sqlite://{}?mode=rwc",
                data.path().join("confab.db").display()
            ),
        };
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
            .args(["--message-rate", "100000"])
            .args(["--ws-queue", "4096"])
            .arg("--database-url")
            .arg(&database_url)
            .args(extra)
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
        let http = http_client()?;
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
            database_url,
            scratch,
            nodes: Vec::new(),
            redis: None,
            data,
        })
    }

    /// Every node's base URL, this one's first.
    fn bases(&self) -> Vec<String> {
        std::iter::once(self.base.clone())
            .chain(self.nodes.iter().map(|n| n.base.clone()))
            .collect()
    }

    /// The database, for the report.
    fn database(&self) -> String {
        match &self.scratch {
            Some(db) => format!("PostgreSQL (fresh database {})", db.name),
            None => format!("SQLite ({})", self.data.path().join("confab.db").display()),
        }
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
            // The call's capacity (2-16), not the group's size: a chat room holds more.
            max_participants: Some(
                u32::try_from(members.len())?.clamp(ROOM_MIN_PARTICIPANTS, ROOM_MAX_PARTICIPANTS),
            ),
        };
        let room: Room = self.post("/api/rooms", Some(owner), &request).await?;
        for token in others {
            let path = format!("/api/rooms/{}/join", room.id);
            let _: Room = self.post(&path, Some(token), &json!({})).await?;
        }
        Ok(room.id)
    }

    async fn stop(mut self) -> Vec<String> {
        let mut logged = Vec::new();
        for node in std::mem::take(&mut self.nodes) {
            logged.extend(Box::pin(node.stop()).await);
        }
        if let Some((url, prefix)) = self.redis.take()
            && let Err(e) = clear_redis(&url, &prefix).await
        {
            eprintln!("could not delete the run's Redis keys ({prefix}:*): {e:#}");
        }
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        if let Some(db) = self.scratch.take() {
            db.drop_database().await;
        }
        logged.extend(
            std::fs::read_to_string(&self.log)
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned),
        );
        logged
    }
}

/// Waits until a node says it is ready and subscribed to the cluster (`"ok"`).
async fn wait_node_ready(http: &reqwest::Client, base: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = http.get(format!("{base}/readyz")).send().await;
        if let Ok(r) = ready
            && let Ok(body) = r.json::<serde_json::Value>().await
            && body["status"] == "ok"
        {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "{base} did not join the cluster within 20 s (is Redis running?)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Deletes a run's Redis keys.
async fn clear_redis(url: &str, prefix: &str) -> Result<()> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await?;
    if !keys.is_empty() {
        redis::cmd("DEL")
            .arg(&keys)
            .query_async::<()>(&mut conn)
            .await?;
    }
    Ok(())
}

/// The HTTP client for REST calls: loopback only, so no proxy.
fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        // A proxy from the environment must not see (or reroute) the test traffic.
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")
}

/// A PostgreSQL database made for one run.
struct ScratchDb {
    /// The server's URL without a database name.
    server: String,
    name: String,
}

impl ScratchDb {
    async fn create(server: &str) -> Result<Self> {
        let server = server.trim_end_matches('/').to_owned();
        let name = format!("confab_bench_{}", uuid::Uuid::new_v4().simple());
        let mut admin = Self::admin(&server).await?;
        // The name is ours (a prefix and hex digits), so formatting it in is safe.
        sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
            .execute(&mut admin)
            .await
            .with_context(|| format!("creating database {name}"))?;
        let _ = sqlx::Connection::close(admin).await;
        Ok(Self { server, name })
    }

    async fn admin(server: &str) -> Result<sqlx::PgConnection> {
        let url = format!("{server}/postgres");
        <sqlx::PgConnection as sqlx::Connection>::connect(&url)
            .await
            .with_context(|| {
                format!(
                    "connecting to {} (--postgres-url)",
                    signal_server::db::redact(&url)
                )
            })
    }

    fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }

    /// CPU seconds so far of each backend connected to this database (None if
    /// PostgreSQL cannot be asked, or runs where /proc cannot see it).
    async fn backend_cpu(&self) -> Option<HashMap<u32, f64>> {
        let mut admin = Self::admin(&self.server).await.ok()?;
        let pids: Vec<(i32,)> =
            sqlx::query_as("select pid from pg_stat_activity where datname = $1")
                .bind(&self.name)
                .fetch_all(&mut admin)
                .await
                .ok()?;
        let _ = sqlx::Connection::close(admin).await;
        let cpu: HashMap<u32, f64> = pids
            .into_iter()
            .filter_map(|(pid,)| {
                let pid = u32::try_from(pid).ok()?;
                Some((pid, sample_processes(pid, false).ok()?.cpu_secs))
            })
            .collect();
        (!cpu.is_empty()).then_some(cpu)
    }

    /// Drops the database; a failure is only reported (the run's figures stand).
    async fn drop_database(self) {
        let dropped = async {
            let mut admin = Self::admin(&self.server).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "drop database if exists {} with (force)",
                self.name
            )))
            .execute(&mut admin)
            .await?;
            anyhow::Ok(())
        };
        if let Err(e) = dropped.await {
            eprintln!("warning: could not drop database {}: {e:#}", self.name);
        }
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

/// The server's, this tool's and the whole machine's CPU counters at one instant, and
/// on PostgreSQL those of the backends serving the run's database (CPU seconds by pid).
#[derive(Clone, Debug)]
struct CpuSnapshot {
    server: Option<ProcSample>,
    tool: Option<ProcSample>,
    machine: Option<MachineSample>,
    database: Option<HashMap<u32, f64>>,
    redis: Option<f64>,
}

impl CpuSnapshot {
    async fn take(target: &Target) -> Self {
        let database = match target {
            Target::Confab(server) => match &server.scratch {
                Some(db) => db.backend_cpu().await,
                None => None,
            },
            Target::Peer { .. } => None,
        };
        Self {
            server: target.sample(),
            tool: sample_self(),
            machine: machine_sample(),
            database,
            redis: target.redis_cpu().await,
        }
    }
}

/// CPU seconds spent during a measured window, by whom.
#[derive(Clone, Copy, Debug)]
struct WindowCpu {
    secs: f64,
    server: Option<f64>,
    tool: Option<f64>,
    /// PostgreSQL's backends for the run's database (a separate process tree).
    database: Option<f64>,
    /// Redis, with `--nodes` (all of its work, this run's and anyone else's).
    redis: Option<f64>,
    /// Whatever else ran meanwhile: the figures are only clean if this is small.
    other: Option<f64>,
    interrupts: Option<f64>,
    steal: Option<f64>,
}

impl WindowCpu {
    fn between(start: &CpuSnapshot, stop: &CpuSnapshot, secs: f64) -> Self {
        let cpu = |a: Option<ProcSample>, b: Option<ProcSample>| {
            a.zip(b).map(|(a, b)| b.cpu_secs - a.cpu_secs)
        };
        let server = cpu(start.server, stop.server);
        let tool = cpu(start.tool, stop.tool);
        // A backend that started inside the window counts from zero.
        let database = start
            .database
            .as_ref()
            .zip(stop.database.as_ref())
            .map(|(a, b)| {
                b.iter()
                    .map(|(pid, cpu)| cpu - a.get(pid).copied().unwrap_or(0.0))
                    .sum::<f64>()
            });
        let machine = start.machine.zip(stop.machine).map(|(a, b)| MachineSample {
            processes: b.processes - a.processes,
            interrupts: b.interrupts - a.interrupts,
            steal: b.steal - a.steal,
        });
        // Interrupts count as busy too: the kernel charges part of the loopback TCP work
        // done in softirq context to the process it interrupted (server or tool), part
        // to no process. /proc/stat is sampled at each tick, so expect +-15 % of noise.
        let redis = start.redis.zip(stop.redis).map(|(a, b)| b - a);
        let other = machine
            .map(|m| m.processes + m.interrupts)
            .zip(server)
            .zip(tool)
            .map(|((all, server), tool)| {
                all - server - tool - database.unwrap_or(0.0) - redis.unwrap_or(0.0)
            });
        Self {
            secs,
            server,
            tool,
            database,
            redis,
            other,
            interrupts: machine.map(|m| m.interrupts),
            steal: machine.map(|m| m.steal),
        }
    }

    /// Percent of one core over the window.
    fn pct(&self, cpu: Option<f64>) -> Option<f64> {
        cpu.map(|c| 100.0 * c / self.secs)
    }

    /// The server's CPU, its memory at the end, the tool's CPU and the other work.
    fn print(&self, server_rss_kib: Option<u64>) {
        println!(
            "server CPU        {} in the {:.0} s window = {} of one core (every node)",
            fmt_opt(self.server, "s"),
            self.secs,
            fmt_opt(self.pct(self.server), "%")
        );
        println!("server RSS        {} at the end", fmt_kib(server_rss_kib));
        if self.database.is_some() {
            println!(
                "PostgreSQL CPU    {} = {} of one core (the backends of the run's database)",
                fmt_opt(self.database, "s"),
                fmt_opt(self.pct(self.database), "%")
            );
        }
        if self.redis.is_some() {
            println!(
                "Redis CPU         {} = {} of one core (the machine's Redis, all its clients)",
                fmt_opt(self.redis, "s"),
                fmt_opt(self.pct(self.redis), "%")
            );
        }
        println!(
            "load tool CPU     {} = {} of one core (same window)",
            fmt_opt(self.tool, "s"),
            fmt_opt(self.pct(self.tool), "%")
        );
        println!(
            "other work        {} of one core (machine busy time less server, database, Redis and tool; \
             ~0 when quiet); interrupts {}, steal {}",
            fmt_opt(self.pct(self.other), "%"),
            fmt_opt(self.pct(self.interrupts), "%"),
            fmt_opt(self.pct(self.steal), "%"),
        );
        if self.other.is_some_and(|c| c > 0.2 * self.secs) {
            println!(
                "                  WARNING: other work ran during the window; rerun when quiet"
            );
        }
    }

    /// The same figures as fields of a `RESULT` object.
    fn add_to(&self, result: &mut serde_json::Value, server_rss_kib: Option<u64>) {
        let round3 = |c: Option<f64>| c.map(|c| round(c, 3));
        let round1 = |c: Option<f64>| c.map(|c| round(c, 1));
        let fields = json!({
            "server_cpu_secs": round3(self.server),
            "server_cpu_pct_of_core": round1(self.pct(self.server)),
            "server_rss_end_kib": server_rss_kib,
            "tool_cpu_secs": round3(self.tool),
            "tool_cpu_pct_of_core": round1(self.pct(self.tool)),
            "database_cpu_pct_of_core": round1(self.pct(self.database)),
            "redis_cpu_pct_of_core": round1(self.pct(self.redis)),
            "other_cpu_pct_of_core": round1(self.pct(self.other)),
            "interrupt_cpu_pct_of_core": round1(self.pct(self.interrupts)),
            "steal_cpu_pct_of_core": round1(self.pct(self.steal)),
        });
        if let (Some(result), serde_json::Value::Object(fields)) = (result.as_object_mut(), fields)
        {
            result.extend(fields);
        }
    }
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
    wait_ready(
        &mut ready_rx,
        args.connections,
        Duration::from_millis(10),
        "not every connection got its welcome in time",
    )
    .await?;
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

/// What every client of a relay or chat run shares: one clock and the running totals.
/// In `chat`, `received` counts `message_created` deliveries and `latency` is send to
/// delivery; the acks of the senders' own messages are counted apart.
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
    /// `chat`: acks received in all, acks that arrived inside the window (the persisted
    /// throughput), and send-to-ack latency of the messages sent inside it.
    acked: AtomicU64,
    window_acked: AtomicU64,
    ack_latency: Mutex<Histogram<u64>>,
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
            acked: AtomicU64::new(0),
            window_acked: AtomicU64::new(0),
            ack_latency: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
            first_problem: Mutex::new(None),
        })
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Records a latency from `sent_ns` to `received_ns`.
    fn record(histogram: &Mutex<Histogram<u64>>, sent_ns: u64, received_ns: u64) {
        let micros = received_ns.saturating_sub(sent_ns) / 1000;
        histogram
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .saturating_record(micros.max(1));
    }

    fn histogram(histogram: &Mutex<Histogram<u64>>) -> Histogram<u64> {
        histogram.lock().unwrap_or_else(|e| e.into_inner()).clone()
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
    /// Sending starts [`START_DELAY`] from now, one message per `period`; the measured
    /// window follows `warmup` seconds of it and lasts `duration` seconds. Also returns
    /// when the window starts.
    fn from_now(origin: Instant, warmup: u64, duration: u64, period: Duration) -> (Self, Instant) {
        let start = Instant::now() + START_DELAY;
        let window_start = start + Duration::from_secs(warmup);
        let end = window_start + Duration::from_secs(duration);
        let ns = |at: Instant| u64::try_from((at - origin).as_nanos()).unwrap_or(u64::MAX);
        let schedule = Self {
            start,
            end,
            period,
            window_start_ns: ns(window_start),
            window_end_ns: ns(end),
        };
        (schedule, window_start)
    }

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
    cpu: WindowCpu,
    server_end: Option<ProcSample>,
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
            url: target.node_url(i),
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
    wait_ready(
        &mut ready_rx,
        clients,
        Duration::from_millis(20),
        "not every client joined its call in time",
    )
    .await?;
    let setup_secs = setup_started.elapsed().as_secs_f64();

    let (schedule, window_start) = Schedule::from_now(
        shared.origin,
        args.warmup,
        args.duration,
        Duration::from_secs(1) / args.rate,
    );
    let end = schedule.end;
    eprintln!(
        "all {clients} clients in their calls after {setup_secs:.1} s; sending for {} s + {} s...",
        args.warmup, args.duration
    );
    shared.writers_running.store(clients, Relaxed);
    go_tx.send_replace(Some(schedule));

    tokio::time::sleep_until(window_start.into()).await;
    let cpu_start = CpuSnapshot::take(target).await;
    tokio::time::sleep_until(end.into()).await;
    let cpu_stop = CpuSnapshot::take(target).await;
    let cpu = WindowCpu::between(&cpu_start, &cpu_stop, args.duration as f64);

    wait_for_writers(&shared, end).await;
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
    let latency = Shared::histogram(&shared.latency);
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
        cpu,
        server_end,
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
        let Some(schedule) = wait_for_go(&mut go, &self.stop).await else {
            return Ok(());
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

/// Waits for the main task's go signal; None if the run was stopped first.
async fn wait_for_go(
    go: &mut watch::Receiver<Option<Schedule>>,
    stop: &CancellationToken,
) -> Option<Schedule> {
    loop {
        if let Some(schedule) = *go.borrow_and_update() {
            return Some(schedule);
        }
        tokio::select! {
            () = stop.cancelled() => return None,
            changed = go.changed() => changed.ok()?,
        }
    }
}

/// Counts a writer out however it ends, so the main task never waits for it in vain.
struct Running<'a>(&'a AtomicUsize);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
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
                    Shared::record(&shared.latency, sent_ns, received_ns);
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
        let nodes = args.target.nodes.max(1);
        let per_node = delivered / nodes as f64;
        let lost = self.sent.saturating_sub(self.received);
        let ms = |q: f64| self.latency.value_at_quantile(q) as f64 / 1000.0;
        let (p50, p95, p99, p999) = (ms(0.50), ms(0.95), ms(0.99), ms(0.999));
        let max = self.latency.max() as f64 / 1000.0;
        let server_rss = self.server_end.map(|s| s.rss_kib);
        let met = |ok: bool| if ok { "met" } else { "MISSED" };
        println!();
        println!(
            "== relay: {} rooms x {} clients, {} msg/s each (offered {offered:.0} msg/s), \
             {} s warm-up + {} s measured ==",
            args.rooms, args.per_room, args.rate, args.warmup, args.duration
        );
        println!("target            {target}");
        if nodes > 1 {
            println!(
                "nodes             {nodes} (client i on node i mod {nodes}): \
                 {per_node:.0} relayed msg/s per node"
            );
        }
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
        self.cpu.print(server_rss);
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
        if nodes > 1 {
            println!(
                "                  >= 20000 relayed msg/s per node: {} (p99 added over one \
                 node: compare with a --nodes 1 run of the same load)",
                met(per_node >= 20_000.0 * 0.995)
            );
        }
        print_log(log);
        let mut result = json!({
            "scenario": "relay",
            "target": kind,
            "nodes": nodes,
            "delivered_msgs_per_sec_per_node": round(per_node, 1),
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
            "out_of_order": self.out_of_order,
            "server_errors": self.server_errors,
            "failed_clients": self.client_failures,
            "first_problem": self.first_problem,
            "server_log_lines": log.len(),
        });
        self.cpu.add_to(&mut result, server_rss);
        println!("RESULT {result}");
    }
}

// ---------------------------------------------------------------------------------------
// Scenario 3: chat in group rooms
// ---------------------------------------------------------------------------------------

/// Every chat body starts with its send time: `t=` and nanoseconds since
/// `Shared::origin` in 20 digits. The ack and every delivery carry the body back, so both
/// latencies are read from the message itself.
const BODY_STAMP_LEN: usize = "t=".len() + 20;

/// After the senders stop, how long acks and deliveries may make no progress before the
/// run stops waiting for them: a server behind its load first works off a backlog.
const CHAT_DRAIN_STALL: Duration = Duration::from_secs(5);

/// The longest the run waits for that backlog in all.
const CHAT_DRAIN_MAX: Duration = Duration::from_secs(120);

async fn chat(args: ChatArgs, fd_limit: u64) -> Result<()> {
    ensure!(args.rooms >= 1, "--rooms must be at least 1");
    ensure!(
        args.per_room >= 2,
        "--per-room must be at least 2: someone has to receive"
    );
    ensure!(
        args.rate.is_finite() && args.rate > 0.0 && args.rate <= 1000.0,
        "--rate must be more than 0 and at most 1000"
    );
    ensure!(args.duration >= 1, "--duration must be at least 1");
    ensure!(
        (BODY_STAMP_LEN + 2..=MESSAGE_BODY_MAX).contains(&args.body_chars),
        "--body-chars must be between {} and {MESSAGE_BODY_MAX}",
        BODY_STAMP_LEN + 2
    );
    let clients = args.rooms * args.per_room;
    ensure_fds(clients, fd_limit)?;
    let target = Target::start(&args.target).await?;
    let outcome = run_chat(&target, &args).await;
    let kind = target.kind();
    let described = target.describe();
    let log = target.stop().await;
    let report = outcome.inspect_err(|_| print_log(&log))?;
    report.print(&args, &kind, &described, &log);
    Ok(())
}

struct ChatReport {
    setup_secs: f64,
    drain_secs: f64,
    sent: u64,
    acked: u64,
    delivered: u64,
    window_sent: u64,
    window_acked: u64,
    window_received: u64,
    window_delivered: u64,
    server_errors: u64,
    client_failures: usize,
    first_problem: Option<String>,
    ack_latency: Histogram<u64>,
    latency: Histogram<u64>,
    cpu: WindowCpu,
    server_end: Option<ProcSample>,
    loss: LossCheck,
}

/// Every client's received seqs against the rooms' timelines in the database.
#[derive(Debug, Default)]
struct LossCheck {
    /// Messages the database holds, all rooms together.
    stored: u64,
    /// Stored messages a member never got (neither as its ack nor as message_created),
    /// summed over the members.
    missing: u64,
    /// Seqs a member got more than once.
    duplicated: u64,
    /// Seqs a member got that the database does not hold.
    unknown: u64,
    /// Holes in a room's seqs (Confab's are dense from 1; not checked on the peer, whose
    /// seq is a table-wide id).
    gaps: Option<u64>,
}

impl LossCheck {
    fn clean(&self) -> bool {
        self.missing == 0
            && self.duplicated == 0
            && self.unknown == 0
            && self.gaps.unwrap_or(0) == 0
    }
}

async fn run_chat(target: &Target, args: &ChatArgs) -> Result<ChatReport> {
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
    eprintln!("connecting {clients} clients...");
    let mut tasks = JoinSet::new();
    for (i, token) in tokens.iter().enumerate() {
        let room = rooms[i / args.per_room];
        let client = ChatClient {
            index: i,
            clients,
            url: target.chat_url(room, i),
            token: token.clone(),
            room,
            body_chars: args.body_chars,
            shared: shared.clone(),
            stop: stop.clone(),
        };
        tasks.spawn(client.run(limit.clone(), ready_tx.clone(), go_rx.clone()));
    }
    drop(ready_tx);
    wait_ready(
        &mut ready_rx,
        clients,
        Duration::from_millis(20),
        "not every client connected in time",
    )
    .await?;
    let setup_secs = setup_started.elapsed().as_secs_f64();

    let (schedule, window_start) = Schedule::from_now(
        shared.origin,
        args.warmup,
        args.duration,
        Duration::from_secs_f64(1.0 / args.rate),
    );
    let end = schedule.end;
    eprintln!(
        "all {clients} clients connected after {setup_secs:.1} s; sending for {} s + {} s...",
        args.warmup, args.duration
    );
    shared.writers_running.store(clients, Relaxed);
    go_tx.send_replace(Some(schedule));

    tokio::time::sleep_until(window_start.into()).await;
    let cpu_start = CpuSnapshot::take(target).await;
    tokio::time::sleep_until(end.into()).await;
    let cpu_stop = CpuSnapshot::take(target).await;
    let cpu = WindowCpu::between(&cpu_start, &cpu_stop, args.duration as f64);

    wait_for_writers(&shared, end).await;
    // Every send ends in an ack or an error; every ack in a delivery to each other member.
    let drain_started = Instant::now();
    let others = (args.per_room - 1) as u64;
    let mut last = (0, 0);
    let mut last_progress = Instant::now();
    loop {
        let (sent, errors) = (
            shared.sent.load(Relaxed),
            shared.server_errors.load(Relaxed),
        );
        let (acked, delivered) = (shared.acked.load(Relaxed), shared.received.load(Relaxed));
        if acked + errors >= sent && delivered >= acked * others {
            break;
        }
        if (acked, delivered) != last {
            last = (acked, delivered);
            last_progress = Instant::now();
        }
        if last_progress.elapsed() > CHAT_DRAIN_STALL || drain_started.elapsed() > CHAT_DRAIN_MAX {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drain_secs = drain_started.elapsed().as_secs_f64();
    let server_end = target.sample();
    stop.cancel();
    let mut outcomes = Vec::with_capacity(clients);
    let mut client_failures = 0;
    let joined = async {
        while let Some(outcome) = tasks.join_next().await {
            match outcome {
                Ok(outcome) => {
                    if let Some(failure) = &outcome.failure {
                        client_failures += 1;
                        shared.problem(|| failure.clone());
                    }
                    outcomes.push(outcome);
                }
                Err(e) => {
                    client_failures += 1;
                    shared.problem(|| format!("client task: {e}"));
                }
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), joined)
        .await
        .is_err()
    {
        tasks.abort_all();
    }
    eprintln!("checking every client's messages against the database...");
    let loss = check_losses(target, &rooms, &tokens, args.per_room, &outcomes).await?;
    let first_problem = shared
        .first_problem
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    Ok(ChatReport {
        setup_secs,
        drain_secs,
        sent: shared.sent.load(Relaxed),
        acked: shared.acked.load(Relaxed),
        delivered: shared.received.load(Relaxed),
        window_sent: shared.window_sent.load(Relaxed),
        window_acked: shared.window_acked.load(Relaxed),
        window_received: shared.window_received.load(Relaxed),
        window_delivered: shared.window_delivered.load(Relaxed),
        server_errors: shared.server_errors.load(Relaxed),
        client_failures,
        first_problem,
        ack_latency: Shared::histogram(&shared.ack_latency),
        latency: Shared::histogram(&shared.latency),
        cpu,
        server_end,
        loss,
    })
}

/// Writers stop by themselves at `end`; one stuck on a full socket is given a while.
async fn wait_for_writers(shared: &Shared, end: Instant) {
    let deadline = end + Duration::from_secs(10);
    while shared.writers_running.load(Relaxed) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Pages every room's timeline out of the server and compares each member's seqs with it.
async fn check_losses(
    target: &Target,
    rooms: &[RoomId],
    tokens: &[String],
    per_room: usize,
    outcomes: &[ChatOutcome],
) -> Result<LossCheck> {
    let stored: Vec<Vec<u64>> = futures_util::stream::iter(rooms.iter().enumerate())
        .map(|(i, room)| target.room_seqs(*room, &tokens[i * per_room]))
        .buffered(REST_CONCURRENCY)
        .try_collect()
        .await?;
    let mut check = LossCheck {
        stored: stored.iter().map(|s| s.len() as u64).sum(),
        gaps: matches!(target, Target::Confab(_)).then(|| {
            stored
                .iter()
                .map(|seqs| (1..).zip(seqs).filter(|(want, got)| want != *got).count() as u64)
                .sum()
        }),
        ..LossCheck::default()
    };
    for outcome in outcomes {
        let mut got = outcome.seqs.clone();
        got.sort_unstable();
        let all = got.len();
        got.dedup();
        check.duplicated += (all - got.len()) as u64;
        let (missing, unknown) = differences(&stored[outcome.index / per_room], &got);
        check.missing += missing;
        check.unknown += unknown;
    }
    // A client whose task failed to return at all lost everything.
    for index in 0..tokens.len() {
        if !outcomes.iter().any(|o| o.index == index) {
            check.missing += stored[index / per_room].len() as u64;
        }
    }
    Ok(check)
}

/// How many of `want` are not in `got`, and how many of `got` not in `want` (both sorted
/// and without repeats).
fn differences(want: &[u64], got: &[u64]) -> (u64, u64) {
    let (mut i, mut j, mut missing, mut unknown) = (0, 0, 0, 0);
    while i < want.len() || j < got.len() {
        match (want.get(i), got.get(j)) {
            (Some(w), Some(g)) if w == g => (i, j) = (i + 1, j + 1),
            (Some(w), Some(g)) if w < g => (i, missing) = (i + 1, missing + 1),
            (Some(_), None) => (i, missing) = (i + 1, missing + 1),
            _ => (j, unknown) = (j + 1, unknown + 1),
        }
    }
    (missing, unknown)
}

/// One member of a chat run.
struct ChatClient {
    index: usize,
    clients: usize,
    url: String,
    token: String,
    room: RoomId,
    body_chars: usize,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

/// What a chat client brings back: the seqs it received, and why it stopped early if it
/// did (its seqs up to then still count).
struct ChatOutcome {
    index: usize,
    seqs: Vec<u64>,
    failure: Option<String>,
}

impl ChatClient {
    /// Connects, waits for everyone, then sends and receives until stopped.
    async fn run(
        self,
        limit: Arc<Semaphore>,
        ready: mpsc::Sender<Result<()>>,
        mut go: watch::Receiver<Option<Schedule>>,
    ) -> ChatOutcome {
        let mut outcome = ChatOutcome {
            index: self.index,
            seqs: Vec::new(),
            failure: None,
        };
        let connected = async {
            let _permit = limit.acquire().await?;
            let (ws, _) = connect(&self.url, &self.token).await?;
            let template = ChatTemplate::new(self.index, self.room, self.body_chars)?;
            anyhow::Ok((ws, template))
        };
        let (ws, template) = match connected.await {
            Ok(connected) => connected,
            Err(e) => {
                let _ = ready
                    .send(Err(e.context(format!("client {}", self.index))))
                    .await;
                return outcome;
            }
        };
        let _ = ready.send(Ok(())).await;
        drop(ready);
        let Some(schedule) = wait_for_go(&mut go, &self.stop).await else {
            return outcome;
        };
        let (sink, stream) = ws.split();
        let offset = schedule
            .period
            .mul_f64(self.index as f64 / self.clients as f64);
        let mut writer = tokio::spawn(chat_write_loop(
            sink,
            template,
            schedule,
            offset,
            self.shared.clone(),
        ));
        let read = chat_read_loop(
            stream,
            schedule,
            &self.shared,
            &self.stop,
            &mut outcome.seqs,
        )
        .await;
        let written = match tokio::time::timeout(Duration::from_secs(1), &mut writer).await {
            Ok(Ok(written)) => written,
            Ok(Err(e)) => Err(e).context("writer task"),
            Err(_) => {
                writer.abort();
                Ok(())
            }
        };
        if let Err(e) = read.and(written) {
            outcome.failure = Some(format!("client {}: {e:#}", self.index));
        }
        outcome
    }
}

/// A client's `send_message`, pre-serialized up to its counter: sending costs a few
/// copies and two number formats, not a serialization.
struct ChatTemplate {
    head: String,
    padding: String,
}

impl ChatTemplate {
    fn new(client: usize, room: RoomId, body_chars: usize) -> Result<Self> {
        let template = Self {
            head: format!(r#"{{"type":"send_message","room_id":"{room}","client_id":"c{client}-"#),
            padding: format!(" {}", "x".repeat(body_chars - BODY_STAMP_LEN - 1)),
        };
        // Checked once per client (a bench has no test harness): what is sent must be a
        // valid client message whose stamp reads back.
        let probe = template.render(7, 1_234_567_890);
        let ok = match serde_json::from_str(&probe)? {
            ClientMsg::SendMessage {
                room_id,
                client_id,
                body,
                reply_to: None,
                ..
            } => {
                room_id == room
                    && client_id == format!("c{client}-7")
                    && body.chars().count() == body_chars
                    && parse_body_stamp(&body) == Some(1_234_567_890)
            }
            _ => false,
        };
        ensure!(ok, "the send_message template does not round-trip: {probe}");
        Ok(template)
    }

    fn render(&self, n: u64, sent_ns: u64) -> String {
        let mut text = String::with_capacity(self.head.len() + 64 + self.padding.len());
        text.push_str(&self.head);
        // Writing to a String cannot fail.
        let _ = write!(text, r#"{n}","body":"t={sent_ns:020}"#);
        text.push_str(&self.padding);
        text.push_str(r#""}"#);
        text
    }
}

/// The send time at the start of a chat body.
fn parse_body_stamp(body: &str) -> Option<u64> {
    body.strip_prefix("t=")?.get(..20)?.parse().ok()
}

/// Sends one stamped message per tick to the client's room, until `end`.
async fn chat_write_loop(
    mut sink: SplitSink<Ws, Message>,
    template: ChatTemplate,
    schedule: Schedule,
    offset: Duration,
    shared: Arc<Shared>,
) -> Result<()> {
    let _running = Running(&shared.writers_running);
    let end = tokio::time::Instant::from(schedule.end);
    let mut ticker = tokio::time::interval_at((schedule.start + offset).into(), schedule.period);
    // As in relay: the offered load stays what was asked for; a server that cannot keep
    // up shows it as latency.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    for n in 0u64.. {
        if ticker.tick().await >= end {
            break;
        }
        let sent_ns = shared.now_ns();
        sink.send(Message::text(template.render(n, sent_ns)))
            .await
            .context("sending send_message")?;
        shared.sent.fetch_add(1, Relaxed);
        if schedule.in_window(sent_ns) {
            shared.window_sent.fetch_add(1, Relaxed);
        }
    }
    Ok(())
}

/// What the chat clients read of a server message: a full `ServerMsg` parse (timestamps
/// and all) for each of the many deliveries would take CPU from the server measured.
#[derive(serde::Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    message: Option<IncomingMessage<'a>>,
}

#[derive(serde::Deserialize)]
struct IncomingMessage<'a> {
    seq: u64,
    #[serde(borrow)]
    body: std::borrow::Cow<'a, str>,
}

/// Receives acks and other members' messages, records their latency and keeps their
/// seqs, until `stop`.
async fn chat_read_loop(
    mut stream: SplitStream<Ws>,
    schedule: Schedule,
    shared: &Shared,
    stop: &CancellationToken,
    seqs: &mut Vec<u64>,
) -> Result<()> {
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
        let incoming = match serde_json::from_str::<Incoming>(&text) {
            Ok(incoming) => incoming,
            Err(e) => {
                shared.problem(|| format!("unreadable message ({e}): {}", clip(&text, 300)));
                continue;
            }
        };
        let ack = match incoming.kind.as_ref() {
            "message_ack" => true,
            "message_created" => false,
            "error" => {
                shared.server_errors.fetch_add(1, Relaxed);
                shared.problem(|| format!("server error: {}", clip(&text, 300)));
                continue;
            }
            // Presence and room news are not part of the measurement.
            _ => continue,
        };
        let Some((message, sent_ns)) = incoming
            .message
            .and_then(|m| parse_body_stamp(&m.body).map(|sent| (m, sent)))
        else {
            shared.problem(|| format!("unstamped message: {}", clip(&text, 300)));
            continue;
        };
        seqs.push(message.seq);
        let (total, window, histogram) = if ack {
            (&shared.acked, &shared.window_acked, &shared.ack_latency)
        } else {
            (&shared.received, &shared.window_delivered, &shared.latency)
        };
        total.fetch_add(1, Relaxed);
        if schedule.in_window(received_ns) {
            window.fetch_add(1, Relaxed);
        }
        if schedule.in_window(sent_ns) {
            if !ack {
                shared.window_received.fetch_add(1, Relaxed);
            }
            Shared::record(histogram, sent_ns, received_ns);
        }
    }
}

/// p50, p95, p99, max of a latency histogram (µs), in ms.
fn quantiles_ms(h: &Histogram<u64>) -> [f64; 4] {
    let ms = |us: u64| us as f64 / 1000.0;
    [
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.95)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max()),
    ]
}

fn latency_json(h: &Histogram<u64>) -> serde_json::Value {
    let [p50, p95, p99, max] = quantiles_ms(h);
    json!({
        "p50": round(p50, 3),
        "p95": round(p95, 3),
        "p99": round(p99, 3),
        "max": round(max, 3),
        "mean": round(h.mean() / 1000.0, 3),
        "samples": h.len(),
    })
}

fn fmt_latency(h: &Histogram<u64>) -> String {
    let [p50, p95, p99, max] = quantiles_ms(h);
    format!(
        "p50 {p50:.2} ms, p95 {p95:.2} ms, p99 {p99:.2} ms, max {max:.2} ms ({} samples)",
        h.len()
    )
}

impl ChatReport {
    fn print(&self, args: &ChatArgs, kind: &str, target: &str, log: &[String]) {
        let clients = args.rooms * args.per_room;
        let secs = args.duration as f64;
        let others = (args.per_room - 1) as f64;
        let offered = clients as f64 * args.rate;
        let persisted = self.window_acked as f64 / secs;
        let deliveries = self.window_delivered as f64 / secs;
        let server_rss = self.server_end.map(|s| s.rss_kib);
        let p99 = quantiles_ms(&self.latency)[2];
        let met = |ok: bool| if ok { "met" } else { "MISSED" };
        println!();
        println!(
            "== chat: {} rooms x {} members, {} msg/s each (offered {offered:.0} msg/s, \
             {:.0} deliveries/s), {} s warm-up + {} s measured ==",
            args.rooms,
            args.per_room,
            args.rate,
            offered * others,
            args.warmup,
            args.duration
        );
        println!("target            {target}");
        println!(
            "setup             {:.1} s ({clients} users, {} rooms, {clients} WebSockets)",
            self.setup_secs, args.rooms
        );
        println!(
            "persisted         {persisted:.0} msg/s acknowledged in the measured window \
             ({} acks arrived in it; {} messages sent in it)",
            self.window_acked, self.window_sent
        );
        println!(
            "deliveries        {deliveries:.0} message_created/s in the measured window \
             ({} arrived in it; of the messages sent in it, {} of {:.0} expected arrived)",
            self.window_delivered,
            self.window_received,
            self.window_sent as f64 * others
        );
        println!("send to ack       {}", fmt_latency(&self.ack_latency));
        println!("send to delivery  {}", fmt_latency(&self.latency));
        println!(
            "totals            sent {}, acked {}, delivered {} of {:.0} expected \
             (acked x {others}); drained in {:.1} s",
            self.sent,
            self.acked,
            self.delivered,
            self.acked as f64 * others,
            self.drain_secs
        );
        let gaps = self
            .loss
            .gaps
            .map_or_else(|| "not checked".to_owned(), |g| g.to_string());
        println!(
            "loss check        {} messages stored in {} rooms; against them, over every \
             member: missing {}, duplicated {}, unknown {}; seq gaps {gaps}",
            self.loss.stored,
            args.rooms,
            self.loss.missing,
            self.loss.duplicated,
            self.loss.unknown
        );
        self.cpu.print(server_rss);
        println!(
            "checks            server errors {}, failed clients {}",
            self.server_errors, self.client_failures
        );
        if let Some(problem) = &self.first_problem {
            println!("first problem     {problem}");
        }
        // Timer jitter at the window's two edges moves a few messages in or out: 0.5 %.
        let throughput = if offered >= 5_000.0 {
            met(persisted >= 5_000.0 * 0.995)
        } else {
            "n/a (offered less)"
        };
        let fan_out = if args.per_room != 5 {
            "n/a (not 5-member rooms)"
        } else if offered * others >= 20_000.0 {
            met(deliveries >= 20_000.0 * 0.995)
        } else {
            "n/a (offered less)"
        };
        let tail = if self.latency.is_empty() {
            "n/a (no samples)"
        } else {
            met(p99 <= 50.0)
        };
        let lost = !self.loss.clean()
            || self.server_errors > 0
            || self.client_failures > 0
            || self.acked < self.sent;
        println!(
            "goals             >= 5000 persisted msg/s: {throughput}, >= 20000 deliveries/s: \
             {fan_out}, delivery p99 <= 50 ms: {tail}, nothing lost: {}",
            met(!lost)
        );
        print_log(log);
        let mut result = json!({
            "scenario": "chat",
            "target": kind,
            "rooms": args.rooms,
            "per_room": args.per_room,
            "rate_per_client": args.rate,
            "offered_msgs_per_sec": offered,
            "warmup_secs": args.warmup,
            "duration_secs": args.duration,
            "body_chars": args.body_chars,
            "setup_secs": round(self.setup_secs, 3),
            "drain_secs": round(self.drain_secs, 3),
            "persisted_msgs_per_sec": round(persisted, 1),
            "deliveries_per_sec": round(deliveries, 1),
            "window_sent": self.window_sent,
            "window_acked": self.window_acked,
            "window_received": self.window_received,
            "window_delivered": self.window_delivered,
            "sent": self.sent,
            "acked": self.acked,
            "delivered": self.delivered,
            "ack_latency_ms": latency_json(&self.ack_latency),
            "delivery_latency_ms": latency_json(&self.latency),
            "stored": self.loss.stored,
            "missing": self.loss.missing,
            "duplicated": self.loss.duplicated,
            "unknown": self.loss.unknown,
            "seq_gaps": self.loss.gaps,
            "server_errors": self.server_errors,
            "failed_clients": self.client_failures,
            "first_problem": self.first_problem,
            "server_log_lines": log.len(),
        });
        self.cpu.add_to(&mut result, server_rss);
        println!("RESULT {result}");
    }
}

// ---------------------------------------------------------------------------------------
// Scenario 4: history (catch-up and pages)
// ---------------------------------------------------------------------------------------

/// Pages fetched before the timed ones, so that the timings start from a warm cache.
const PAGE_WARMUP: usize = 50;

/// Rows per `insert` when filling a room: five parameters each, far under SQLite's limit
/// of 32766 per statement (and PostgreSQL's 65535).
const FILL_ROWS_PER_INSERT: u64 = 1_000;

/// Rows per transaction when filling a room.
const FILL_ROWS_PER_TX: u64 = 50_000;

async fn history(args: HistoryArgs) -> Result<()> {
    ensure!(
        args.target.peer_ws_url.is_none(),
        "history measures a spawned confab-server only"
    );
    ensure!(
        (1..=MESSAGE_PAGE_MAX).contains(&args.page_size),
        "--page-size must be between 1 and {MESSAGE_PAGE_MAX}"
    );
    ensure!(
        args.catchup_messages >= 1 && args.catchup_runs >= 1 && args.pages >= 1,
        "--catchup-messages, --catchup-runs and --pages must be at least 1"
    );
    let target = Target::start(&args.target).await?;
    let outcome = match &target {
        Target::Confab(server) => run_history(&target, server, &args).await,
        Target::Peer { .. } => Err(anyhow::anyhow!("history needs a spawned confab-server")),
    };
    let described = target.describe();
    let log = target.stop().await;
    let report = outcome.inspect_err(|_| print_log(&log))?;
    report.print(&args, &described, &log);
    Ok(())
}

struct HistoryReport {
    send_secs: f64,
    catchup_secs: Vec<f64>,
    catchup_pages: usize,
    /// Seconds the direct fill took, the page timings (µs) and the CPU spent while they
    /// ran, when --fill > 0.
    fill: Option<(f64, Histogram<u64>, WindowCpu, Option<u64>)>,
}

async fn run_history(
    target: &Target,
    server: &ConfabServer,
    args: &HistoryArgs,
) -> Result<HistoryReport> {
    let tokens = target.tokens(2).await?;
    let (writer, reader) = (&tokens[0], &tokens[1]);
    let room = server.room_with(0, &tokens).await?;
    eprintln!(
        "sending {} messages through the REST API...",
        args.catchup_messages
    );
    let started = Instant::now();
    futures_util::stream::iter(0..args.catchup_messages)
        .map(|i| server.send_message(room, writer, i))
        .buffer_unordered(REST_CONCURRENCY)
        .try_collect::<()>()
        .await?;
    let send_secs = started.elapsed().as_secs_f64();

    // The reader went offline before the first message: it catches up from rev 0.
    let mut catchup_secs = Vec::with_capacity(args.catchup_runs);
    let mut catchup_pages = 0;
    for run in 0..args.catchup_runs {
        let started = Instant::now();
        let (mut since, mut pages) = (0u64, 0);
        let mut seqs = std::collections::HashSet::new();
        loop {
            let path = format!("/api/rooms/{room}/changes?since={since}&limit=1000");
            let page: ChangesPage = server.get(&path, reader).await?;
            pages += 1;
            seqs.extend(page.messages.iter().map(|m| m.seq));
            since = page.rev;
            if !page.has_more {
                break;
            }
        }
        let secs = started.elapsed().as_secs_f64();
        ensure!(
            seqs.len() == args.catchup_messages,
            "catch-up run {run} brought {} distinct messages, not {}",
            seqs.len(),
            args.catchup_messages
        );
        catchup_secs.push(secs);
        catchup_pages = pages;
    }

    let fill = if args.fill > 0 {
        let room = server.room_with(1, &tokens[..1]).await?;
        eprintln!("writing {} messages into the database...", args.fill);
        let fill_secs = fill_room(server, room, args.fill).await?;
        eprintln!("timing {} random pages...", args.pages);
        let mut timings = Histogram::new_with_bounds(1, 60_000_000, 3)?;
        let mut rng = rand::rng();
        let mut cpu_start = None;
        for i in 0..PAGE_WARMUP + args.pages {
            if i == PAGE_WARMUP {
                cpu_start = Some((CpuSnapshot::take(target).await, Instant::now()));
            }
            let before = rand::Rng::random_range(&mut rng, 2..=args.fill + 1);
            let path = format!(
                "/api/rooms/{room}/messages?before={before}&limit={}",
                args.page_size
            );
            let started = Instant::now();
            let page: MessagePage = server.get(&path, writer).await?;
            let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            let want = u64::from(args.page_size).min(before - 1);
            let first = before - want;
            let seqs: Vec<u64> = page.messages.iter().map(|m| m.seq).collect();
            ensure!(
                seqs.iter().copied().eq(first..before),
                "the page before {before} holds seqs {}..{} ({} messages), not {first}..{}",
                seqs.first().unwrap_or(&0),
                seqs.last().unwrap_or(&0),
                seqs.len(),
                before - 1
            );
            if i >= PAGE_WARMUP {
                timings.saturating_record(micros.max(1));
            }
        }
        let cpu = match cpu_start {
            Some((start, at)) => {
                let stop = CpuSnapshot::take(target).await;
                WindowCpu::between(&start, &stop, at.elapsed().as_secs_f64())
            }
            None => bail!("no page was timed"),
        };
        let rss = target.sample().map(|s| s.rss_kib);
        Some((fill_secs, timings, cpu, rss))
    } else {
        None
    };
    Ok(HistoryReport {
        send_secs,
        catchup_secs,
        catchup_pages,
        fill,
    })
}

/// Writes `n` messages (seq = rev = 1..=n) into `room` straight through the server's
/// database in large transactions, as the schema of migrations/0002_messenger.sql has
/// them, and moves the room's counters past them. Through the API this would take hours.
async fn fill_room(server: &ConfabServer, room: RoomId, n: u64) -> Result<f64> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&server.database_url)
        .await
        .context("opening the server's database")?;
    let room = room.to_string();
    let (author,): (String,) = sqlx::query_as("select owner_id from rooms where id = $1")
        .bind(&room)
        .fetch_one(&pool)
        .await?;
    let created_at = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs(),
    )?;
    let started = Instant::now();
    let mut next = 1;
    while next <= n {
        let mut tx = pool.begin().await?;
        let tx_end = (next + FILL_ROWS_PER_TX).min(n + 1);
        while next < tx_end {
            let rows = FILL_ROWS_PER_INSERT.min(tx_end - next);
            // $1-$3 are the room, the author and the time; then id, seq, rev, body a row.
            let values: Vec<String> = (0..rows)
                .map(|k| {
                    let p = 4 + 4 * k;
                    format!(
                        "(${p}, $1, ${}, ${}, 'text', $2, ${}, $3)",
                        p + 1,
                        p + 2,
                        p + 3
                    )
                })
                .collect();
            let sql = format!(
                "insert into messages (id, room_id, seq, rev, kind, author_id, body, created_at) \
                 values {}",
                values.join(", ")
            );
            let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&room)
                .bind(&author)
                .bind(created_at);
            for seq in next..next + rows {
                let seq = i64::try_from(seq)?;
                insert = insert
                    .bind(uuid::Uuid::new_v4().to_string())
                    .bind(seq)
                    .bind(seq)
                    .bind(format!("history message {seq}: some words to fill a line"));
            }
            insert.execute(&mut *tx).await?;
            next += rows;
        }
        tx.commit().await?;
    }
    let last = i64::try_from(n)?;
    sqlx::query("update rooms set last_seq = $2, last_rev = $2 where id = $1")
        .bind(&room)
        .bind(last)
        .execute(&pool)
        .await?;
    // Leave the database as a long-running server would have it: SQLite's WAL folded
    // back into the file, PostgreSQL's statistics up to date (autovacuum would).
    let settle = if server.scratch.is_some() {
        "analyze messages"
    } else {
        "pragma wal_checkpoint(truncate)"
    };
    sqlx::query(settle).execute(&pool).await?;
    pool.close().await;
    Ok(started.elapsed().as_secs_f64())
}

impl ConfabServer {
    async fn get<R: DeserializeOwned>(&self, path: &str, token: &str) -> Result<R> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            bail!("GET {path}: {status}: {body}");
        }
        response
            .json()
            .await
            .with_context(|| format!("GET {path}: unexpected response"))
    }

    /// Sends message number `i` through REST, with its own idempotency key.
    async fn send_message(&self, room: RoomId, token: &str, i: usize) -> Result<()> {
        let path = format!("/api/rooms/{room}/messages");
        let request = SendMessageRequest {
            body: format!("catch-up message {i}: some words to fill a line"),
            reply_to: None,
            attachments: Vec::new(),
        };
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("idempotency-key", format!("catch-up-{i}"))
            .json(&request)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        if status != reqwest::StatusCode::CREATED {
            let body = response.text().await.unwrap_or_default();
            bail!("POST {path}: {status}: {body}");
        }
        Ok(())
    }
}

impl HistoryReport {
    fn print(&self, args: &HistoryArgs, target: &str, log: &[String]) {
        let met = |ok: bool| if ok { "met" } else { "MISSED" };
        let mut sorted = self.catchup_secs.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
        println!();
        println!(
            "== history: catch-up of {} messages, pages of {} in a room of {} messages ==",
            args.catchup_messages, args.page_size, args.fill
        );
        println!("target            {target}");
        println!(
            "sent              {} messages through POST /api/rooms/{{id}}/messages in {:.1} s \
             ({:.0} msg/s, {REST_CONCURRENCY} in flight)",
            args.catchup_messages,
            self.send_secs,
            args.catchup_messages as f64 / self.send_secs.max(1e-9)
        );
        println!(
            "catch-up          /changes?since=0 to the end ({} pages of up to 1000): \
             min {min:.3} s, median {median:.3} s, max {max:.3} s over {} runs \
             (goal <= 1 s: {})",
            self.catchup_pages,
            sorted.len(),
            met(median <= 1.0)
        );
        let mut result = json!({
            "scenario": "history",
            "catchup_messages": args.catchup_messages,
            "catchup_pages": self.catchup_pages,
            "send_secs": round(self.send_secs, 3),
            "catchup_secs": sorted.iter().map(|s| round(*s, 4)).collect::<Vec<_>>(),
            "catchup_median_secs": round(median, 4),
            "fill": args.fill,
            "page_size": args.page_size,
            "server_log_lines": log.len(),
        });
        if let Some((fill_secs, pages, cpu, rss)) = &self.fill {
            let [p50, p95, p99, max] = quantiles_ms(pages);
            println!(
                "filled            {} messages written into the database in {fill_secs:.1} s",
                args.fill
            );
            println!(
                "pages             {} random ?before=SEQ&limit={}: p50 {p50:.2} ms, \
                 p95 {p95:.2} ms, p99 {p99:.2} ms, max {max:.2} ms (goal p99 <= 5 ms: {})",
                pages.len(),
                args.page_size,
                met(p99 <= 5.0)
            );
            println!("while paging:");
            cpu.print(*rss);
            cpu.add_to(&mut result, *rss);
            if let Some(result) = result.as_object_mut() {
                result.insert("fill_secs".into(), json!(round(*fill_secs, 3)));
                result.insert("page_latency_ms".into(), latency_json(pages));
            }
        }
        print_log(log);
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

/// Waits until `n` client tasks said they are ready (or one failed). Generous, yet
/// bounded (30 s plus `per_client` each): a server that stalls makes the run fail, not
/// hang.
async fn wait_ready(
    ready: &mut mpsc::Receiver<Result<()>>,
    n: usize,
    per_client: Duration,
    late: &str,
) -> Result<()> {
    let deadline = tokio::time::Instant::now()
        + Duration::from_secs(30)
        + per_client * u32::try_from(n).unwrap_or(u32::MAX);
    for _ in 0..n {
        match tokio::time::timeout_at(deadline, ready.recv()).await {
            Ok(Some(Ok(()))) => {}
            Ok(Some(Err(e))) => return Err(e),
            Ok(None) => bail!("client tasks ended early"),
            Err(_) => bail!("{late}"),
        }
    }
    Ok(())
}
