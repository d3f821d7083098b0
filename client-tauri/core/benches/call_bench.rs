//! Call benchmark: setup time, glass-to-glass latency and CPU per client of 1:1 calls on
//! loopback, with the same measurement for two headless Chromium peers in the same run.
//!
//! ```text
//! cargo bench -p confab-core --bench call_bench -- [--runs 30] [--latency-secs 2] [--cpu-secs 15] [--mesh 5] [--no-chromium]
//! ```
//!
//! - setup: from the joiner sending `join_call` to its first decoded frame of the other
//!   side (signaling, ICE, DTLS, the first keyframe and its decode);
//! - glass-to-glass: from the capture timestamp the sender paints into the test pattern to
//!   the receiver's decode of that frame (both clients share this machine's clock);
//! - CPU: two `confab-cli` processes in a 640x480 30 fps call; user+system time of each
//!   over the measured window, as a share of one core; with `--mesh N`, the same for N
//!   `confab-cli` in one mesh call (each sends its 640x480 stream to every other).
//!
//! Figures are printed, never asserted.

use clap::Parser;
use confab_core::api::ApiClient;
use confab_core::call::{Call, CallConfig, CallEvent};
use confab_core::keystore::MemoryStore;
use confab_core::signaling::{SignalingClient, SignalingConfig};
use shared::UserId;
use shared::api::{CreateRoomRequest, RegisterRequest};
use signal_server::Server;
use signal_server::config::Config;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

#[derive(Parser, Debug)]
struct Args {
    /// Calls to set up.
    #[arg(long, default_value_t = 30)]
    runs: usize,
    /// Seconds of each call spent collecting glass-to-glass samples.
    #[arg(long, default_value_t = 2)]
    latency_secs: u64,
    /// Seconds of the CPU measurement (after 5 s of warm-up).
    #[arg(long, default_value_t = 15)]
    cpu_secs: u64,
    /// Also measure CPU per client in a mesh call of this many `confab-cli` (e.g. 5; 0 skips).
    #[arg(long, default_value_t = 0)]
    mesh: usize,
    /// Skip the Chromium reference.
    #[arg(long)]
    no_chromium: bool,
    /// cargo bench passes --bench; ignore it.
    #[arg(long, hide = true)]
    bench: bool,
}

const PASSWORD: &str = "Bench-Password-4321!";
const PATIENCE: Duration = Duration::from_secs(20);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("confab-call-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let server = Server::start(Config::try_parse_from([
        "confab-server",
        "--bind",
        "127.0.0.1:0",
        "--data-dir",
        &dir.display().to_string(),
        "--auth-rate-per-ip",
        "100000",
        "--auth-rate-per-account",
        "100000",
    ])?)
    .await?;
    let base = format!("http://{}", server.addr);
    let alice = account(&base, "alice").await?;
    let bob = account(&base, "bob").await?;

    let mut setups = Vec::new();
    let mut latencies = Vec::new();
    let mut failures = 0;
    for run in 0..args.runs {
        match one_call(&alice, &bob, args.latency_secs).await {
            Ok((setup, mut lat)) => {
                println!(
                    "call {:>2}: setup {:6.1} ms, glass-to-glass p50 {:5.1} ms",
                    run + 1,
                    setup,
                    percentile(&mut lat.clone(), 50.0)
                );
                setups.push(setup);
                latencies.append(&mut lat);
            }
            Err(e) => {
                failures += 1;
                println!("call {:>2}: FAILED: {e:#}", run + 1);
            }
        }
    }
    let cpu = cpu_per_client(&base, &[&alice, &bob], args.cpu_secs).await?;
    let cpu = (cpu[0], cpu[1]);
    let mut mesh = Vec::new();
    if args.mesh > 2 {
        let mut others = Vec::new();
        for i in 2..args.mesh {
            others.push(account(&base, &format!("peer{i}")).await?);
        }
        let mut all = vec![&alice, &bob];
        all.extend(others.iter());
        mesh = cpu_per_client(&base, &all, args.cpu_secs).await?;
    }
    server.shutdown().await?;
    std::fs::remove_dir_all(&dir).ok();

    let chromium = if args.no_chromium {
        None
    } else {
        chromium_reference(args.runs).await
    };

    let setup_p50 = percentile(&mut setups.clone(), 50.0);
    let setup_p95 = percentile(&mut setups.clone(), 95.0);
    let g2g_p50 = percentile(&mut latencies.clone(), 50.0);
    let g2g_p95 = percentile(&mut latencies.clone(), 95.0);
    println!();
    println!(
        "Confab, {} of {} calls (1:1, loopback, 640x480 30 fps VP8 + Opus):",
        setups.len(),
        args.runs
    );
    println!(
        "  setup (join_call -> first decoded frame): p50 {setup_p50:.1} ms, p95 {setup_p95:.1} ms"
    );
    println!(
        "  glass-to-glass ({} frames):              p50 {g2g_p50:.1} ms, p95 {g2g_p95:.1} ms",
        latencies.len()
    );
    println!(
        "  CPU per client over {} s:                 {:.1}% and {:.1}% of one core",
        args.cpu_secs, cpu.0, cpu.1
    );
    if !mesh.is_empty() {
        let list: Vec<String> = mesh.iter().map(|c| format!("{c:.1}%")).collect();
        println!(
            "  CPU per client, {}-person mesh, over {} s: {} of one core",
            mesh.len(),
            args.cpu_secs,
            list.join(", ")
        );
    }
    if let Some(c) = &chromium {
        println!(
            "Chromium reference, {} calls (two peers in one browser, fake camera, loopback):",
            c["runs"]
        );
        println!(
            "  setup (createOffer -> first decoded frame): p50 {} ms, p95 {} ms",
            c["setup_p50_ms"], c["setup_p95_ms"]
        );
    }
    let result = serde_json::json!({
        "runs": args.runs,
        "failed": failures,
        "setup_p50_ms": setup_p50,
        "setup_p95_ms": setup_p95,
        "glass_to_glass_p50_ms": g2g_p50,
        "glass_to_glass_p95_ms": g2g_p95,
        "glass_to_glass_samples": latencies.len(),
        "cpu_percent_per_client": [cpu.0, cpu.1],
        "mesh_cpu_percent_per_client": mesh,
        "chromium": chromium,
    });
    println!("RESULT {result}");
    Ok(())
}

struct Account {
    api: ApiClient,
    name: String,
    id: UserId,
}

async fn account(base: &str, name: &str) -> anyhow::Result<Account> {
    let api = ApiClient::new(base, Arc::new(MemoryStore::new()))?;
    api.register(&RegisterRequest {
        username: name.to_owned(),
        email: format!("{name}@example.com"),
        password: PASSWORD.to_owned(),
        confirm_password: PASSWORD.to_owned(),
    })
    .await?;
    let me = api.login(name, PASSWORD).await?;
    Ok(Account {
        api,
        name: name.to_owned(),
        id: me.id,
    })
}

fn start(
    account: &Account,
    config: CallConfig,
) -> anyhow::Result<(Call, mpsc::UnboundedReceiver<CallEvent>)> {
    let (client, events) = SignalingClient::start(
        SignalingConfig::new(account.api.ws_url().to_string()),
        Arc::new(account.api.clone()),
    );
    Ok(Call::start(client, events, config)?)
}

async fn next_matching(
    events: &mut mpsc::UnboundedReceiver<CallEvent>,
    pred: impl Fn(&CallEvent) -> bool,
) -> anyhow::Result<()> {
    tokio::time::timeout(PATIENCE, async {
        while let Some(e) = events.recv().await {
            if pred(&e) {
                return Ok(());
            }
        }
        anyhow::bail!("call events ended")
    })
    .await?
}

/// One 1:1 call: alice is in first, bob joins. Returns bob's setup time and the
/// glass-to-glass samples of both directions.
async fn one_call(
    alice: &Account,
    bob: &Account,
    latency_secs: u64,
) -> anyhow::Result<(f64, Vec<f64>)> {
    let room = alice
        .api
        .create_room(&CreateRoomRequest {
            title: "bench".into(),
            max_participants: Some(2),
        })
        .await?;
    bob.api.join_room(room.id).await?;
    let mut config = CallConfig::synthetic(room.id);
    config.udp_addrs = vec!["127.0.0.1:0".to_owned()];
    let (a, mut a_events) = start(alice, config.clone())?;
    next_matching(&mut a_events, |e| matches!(e, CallEvent::Joined { .. })).await?;

    let (b, mut b_events) = start(bob, config)?;
    let mut b_frames = b.video_frames();
    let mut a_frames = a.video_frames();
    next_matching(&mut b_events, |e| matches!(e, CallEvent::Joining)).await?;
    let joining = Instant::now();
    let setup = tokio::time::timeout(PATIENCE, async {
        loop {
            match b_frames.recv().await {
                Ok(f) if f.user_id == alice.id => return Ok(joining.elapsed()),
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => anyhow::bail!("bob's video sink closed"),
            }
        }
    })
    .await??;

    let mut samples = Vec::new();
    let until = Instant::now() + Duration::from_secs(latency_secs);
    while Instant::now() < until {
        tokio::select! {
            f = a_frames.recv() => if let Ok(f) = f { samples.extend(g2g(&f)) },
            f = b_frames.recv() => if let Ok(f) = f { samples.extend(g2g(&f)) },
            () = tokio::time::sleep_until(until.into()) => break,
        }
    }
    a.leave().await;
    b.leave().await;
    Ok((setup.as_secs_f64() * 1000.0, samples))
}

fn g2g(frame: &confab_core::call::RemoteVideoFrame) -> Option<f64> {
    frame
        .marker
        .map(|m| frame.decoded_at_us.saturating_sub(m.timestamp_us) as f64 / 1000.0)
}

/// Runs one `confab-cli` process per account in one call (two: 1:1; more: a mesh, each
/// sending to every other) and measures each one's CPU time.
async fn cpu_per_client(base: &str, accounts: &[&Account], secs: u64) -> anyhow::Result<Vec<f64>> {
    let room = accounts[0]
        .api
        .create_room(&CreateRoomRequest {
            title: "cpu".into(),
            max_participants: Some(accounts.len() as u32),
        })
        .await?;
    let duration = (secs + 8).to_string();
    let spawn = |user: &str| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_confab-cli"))
            .args([
                "call",
                "--server",
                base,
                "--room",
                &room.id.to_string(),
                "--user",
                user,
            ])
            .args([
                "--synthetic",
                "--duration",
                &duration,
                "--udp-addr",
                "127.0.0.1:0",
            ])
            .env("CONFAB_PASSWORD", PASSWORD)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
    };
    let mut children = Vec::new();
    for a in accounts {
        children.push(spawn(&a.name)?);
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let pids: Vec<u32> = children.iter().map(|c| c.id().unwrap_or(0)).collect();
    let before: Vec<f64> = pids
        .iter()
        .map(|p| cpu_ticks(*p))
        .collect::<anyhow::Result<_>>()?;
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let after: Vec<f64> = pids
        .iter()
        .map(|p| cpu_ticks(*p))
        .collect::<anyhow::Result<_>>()?;
    let wall = t0.elapsed().as_secs_f64();
    for c in &mut children {
        let _ = c.wait().await;
    }
    let tick = 100.0; // USER_HZ on Linux
    Ok(before
        .iter()
        .zip(&after)
        .map(|(b, a)| (a - b) / tick / wall * 100.0)
        .collect())
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11).unwrap_or(&"0").parse()?;
    let stime: f64 = fields.get(12).unwrap_or(&"0").parse()?;
    Ok(utime + stime)
}

/// The Chromium reference (bench/chromium-peer), if node and chromium are installed.
async fn chromium_reference(runs: usize) -> Option<serde_json::Value> {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/chromium-peer/run.mjs");
    let output = tokio::process::Command::new("node")
        .arg(&script)
        .args(["--runs", &runs.to_string(), "--quiet"])
        .stderr(Stdio::inherit())
        .output()
        .await;
    let output = match output {
        Ok(o) => o,
        Err(e) => {
            println!("Chromium reference skipped: {e}");
            return None;
        }
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().rev().find_map(|l| l.strip_prefix("RESULT "));
    match line.and_then(|l| serde_json::from_str(l).ok()) {
        Some(v) => Some(v),
        None => {
            println!(
                "Chromium reference produced no result (run `npm ci` in bench/chromium-peer and install chromium)"
            );
            None
        }
    }
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}
