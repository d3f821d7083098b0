//! Calls across a lossy link: two `confab-cli` processes, one inside a network namespace
//! joined by a veth pair, with random loss on both ends of the link (nftables), changed
//! while the call runs. One test, run once (it takes about a minute):
//!
//! 1. 5 % loss each way: video keeps flowing in both directions (most frames decoded, no
//!    long freeze), thanks to NACK retransmission and the receive buffer.
//! 2. A burst of 30 % loss for 2 s: the call recovers, frames resume.
//! 3. The link goes dark for 3 s: the frames in flight are lost beyond repair, the
//!    receiver asks for a keyframe (PLI/FIR), the sender answers with one, video resumes.
//!
//! Needs root, `ip netns` and nftables (CI runs as root); elsewhere it says why and skips.

#![allow(clippy::unwrap_used)]

mod common;
mod lossy;

use common::{Db, PASSWORD, TestServer, unique};
use confab_core::api::ApiClient;
use confab_core::keystore::MemoryStore;
use lossy::Namespace;
use serde_json::Value;
use shared::api::{CreateRoomRequest, RegisterRequest};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Child;

/// A running `confab-cli call` and the newest stats line it printed.
struct CliCall {
    side: &'static str,
    child: Child,
    latest: Arc<Mutex<Option<Value>>>,
    stderr: Arc<Mutex<String>>,
}

impl CliCall {
    fn start(side: &'static str, mut cmd: tokio::process::Command) -> Self {
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap();
        let latest = Arc::new(Mutex::new(None));
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let l = Arc::clone(&latest);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    *l.lock().unwrap() = Some(v);
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let e = Arc::clone(&stderr);
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                e.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Self {
            side,
            child,
            latest,
            stderr,
        }
    }

    fn stats(&self) -> Value {
        self.latest.lock().unwrap().clone().unwrap_or(Value::Null)
    }

    fn get(&self, key: &str) -> u64 {
        self.stats()[key].as_u64().unwrap_or(0)
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Panics with the context of both sides.
    fn context(&self) -> String {
        format!(
            "{} side, last stats: {}\nits log:\n{}",
            self.side,
            self.stats(),
            self.log()
        )
    }
}

/// What a side decoded over a phase.
struct Phase {
    decoded: u64,
    sent: u64,
}

/// Frames decoded and frames the sender made (its test pattern's counter) between two
/// stats snapshots.
fn phase(before: &Value, after: &Value) -> Phase {
    let d = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0);
    Phase {
        decoded: d(after, "frames_decoded").saturating_sub(d(before, "frames_decoded")),
        sent: d(after, "pattern_frames_sent").saturating_sub(d(before, "pattern_frames_sent")),
    }
}

async fn sleep(secs: f64) {
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_survives_loss_bursts_and_a_blackout() {
    if let Some(reason) = Namespace::skip_reason() {
        eprintln!("SKIPPED video_survives_loss_bursts_and_a_blackout: {reason}");
        return;
    }
    let ns = Namespace::create(1);
    let mut server = TestServer::unstarted(Db::Sqlite, &[]).await;
    server.addr = SocketAddr::from((ns.outer, 0));
    server.start_again().await;

    let owner = ApiClient::new(&server.base, Arc::new(MemoryStore::new())).unwrap();
    let name = unique("lossy");
    owner
        .register(&RegisterRequest {
            username: name.clone(),
            email: format!("{name}@example.com"),
            password: PASSWORD.to_owned(),
            confirm_password: PASSWORD.to_owned(),
        })
        .await
        .unwrap();
    owner.login(&name, PASSWORD).await.unwrap();
    let room = owner
        .create_room(&CreateRoomRequest {
            title: "loss".into(),
            max_participants: None,
        })
        .await
        .unwrap();

    let cli = env!("CARGO_BIN_EXE_confab-cli");
    let command = |inside: bool, user: &str, register: bool| {
        let mut cmd = if inside {
            ns.exec(cli)
        } else {
            tokio::process::Command::new(cli)
        };
        cmd.args([
            "call",
            "--server",
            &server.base,
            "--room",
            &room.id.to_string(),
            "--user",
            user,
            "--synthetic",
            "--json",
            "--duration",
            "120",
        ])
        .env("CONFAB_PASSWORD", PASSWORD)
        .env(
            "RUST_LOG",
            std::env::var("CONFAB_TEST_LOG").unwrap_or_else(|_| "warn".to_owned()),
        );
        if register {
            cmd.arg("--register");
        }
        cmd
    };
    let mut inside = CliCall::start("inside", command(true, &name, false));
    let mut outside = CliCall::start("outside", command(false, &unique("peer"), true));
    let sides = [&inside, &outside];

    // Connected: both decode the other's video.
    for _ in 0..60 {
        if sides.iter().all(|s| s.get("frames_decoded") >= 30) {
            break;
        }
        sleep(0.5).await;
    }
    for s in sides {
        assert!(
            s.get("frames_decoded") >= 30,
            "the call is up before the loss starts\n{}",
            s.context()
        );
    }

    // 1. 5 % loss each way for 12 s.
    ns.set_loss(5);
    sleep(2.0).await; // let the stats catch up with the new link
    let before: Vec<Value> = sides.iter().map(|s| s.stats()).collect();
    let mut stalled = [0u32; 2];
    for _ in 0..12 {
        let at: Vec<u64> = sides.iter().map(|s| s.get("frames_decoded")).collect();
        sleep(1.0).await;
        for (i, s) in sides.iter().enumerate() {
            if s.get("frames_decoded") == at[i] {
                stalled[i] += 1;
            }
        }
    }
    for (i, s) in sides.iter().enumerate() {
        let p = phase(&before[i], &s.stats());
        assert!(
            p.sent > 100 && p.decoded * 10 >= p.sent * 6,
            "at 5 % loss most frames are decoded: {} of {}\n{}",
            p.decoded,
            p.sent,
            s.context()
        );
        assert!(
            stalled[i] <= 2,
            "at 5 % loss the frame counter keeps advancing ({} of 12 seconds without a new frame)\n{}",
            stalled[i],
            s.context()
        );
        assert!(
            s.get("nacks_sent") > 0 && s.get("packets_repaired") > 0,
            "lost packets are asked for and retransmitted\n{}",
            s.context()
        );
        assert!(
            s.get("longest_freeze_ms") < 3000,
            "no freeze of 3 s or more\n{}",
            s.context()
        );
    }

    // 2. A burst of 30 % for 2 s, then 5 % again: frames resume.
    ns.set_loss(30);
    sleep(2.0).await;
    ns.set_loss(5);
    let after_burst: Vec<u64> = sides.iter().map(|s| s.get("frames_decoded")).collect();
    sleep(6.0).await;
    for (i, s) in sides.iter().enumerate() {
        assert!(
            s.get("frames_decoded") >= after_burst[i] + 60,
            "video resumes after the 30 % burst: {} frames in 6 s\n{}",
            s.get("frames_decoded") - after_burst[i],
            s.context()
        );
    }

    // 3. The link goes dark for 3 s: a keyframe request, a keyframe, video again.
    ns.set_loss(0);
    sleep(2.0).await;
    let requests: Vec<u64> = sides
        .iter()
        .map(|s| s.get("keyframe_requests_sent"))
        .collect();
    let answered: Vec<u64> = sides
        .iter()
        .map(|s| s.get("keyframe_requests_received"))
        .collect();
    let keyframes: Vec<u64> = sides.iter().map(|s| s.get("keyframes_decoded")).collect();
    ns.set_loss(100);
    sleep(3.0).await;
    ns.set_loss(0);
    let after_dark: Vec<u64> = sides.iter().map(|s| s.get("frames_decoded")).collect();
    sleep(6.0).await;
    for (i, s) in sides.iter().enumerate() {
        let other = sides[1 - i];
        assert!(
            s.get("keyframe_requests_sent") > requests[i],
            "after the blackout the receiver asks for a keyframe\n{}",
            s.context()
        );
        assert!(
            other.get("keyframe_requests_received") > answered[1 - i],
            "the sender hears the keyframe request\n{}",
            other.context()
        );
        assert!(
            s.get("keyframes_decoded") > keyframes[i],
            "the sender answers with a keyframe and it is decoded\n{}",
            s.context()
        );
        assert!(
            s.get("frames_decoded") >= after_dark[i] + 60,
            "video resumes after the blackout: {} frames in 6 s\n{}",
            s.get("frames_decoded") - after_dark[i],
            s.context()
        );
        assert!(
            s.get("audio_frames_decoded") > 500,
            "audio flows too\n{}",
            s.context()
        );
    }

    inside.child.start_kill().unwrap();
    outside.child.start_kill().unwrap();
    let _ = inside.child.wait().await;
    let _ = outside.child.wait().await;
    drop(server);
    drop(ns);
}
