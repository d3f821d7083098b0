//! A real call across two server nodes: two `confab-cli call --synthetic` processes, one
//! connected to each node of a cluster on one PostgreSQL database and one Redis key
//! prefix, exchange their offers, answers and candidates through the call's home node and
//! decode each other's test pattern.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Db, PASSWORD, TestServer, room_owner, unique};
use signal_server::testing::{clear_redis, redis_prefix, redis_url};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Waits until a node is subscribed to the cluster's bus (`/readyz` says "ok").
async fn wait_ready(base: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = reqwest::get(format!("{base}/readyz")).await
            && let Ok(body) = r.json::<serde_json::Value>().await
            && body["status"] == "ok"
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{base} never joined the cluster"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_cli_participants_on_different_nodes_call_each_other() {
    let redis = redis_url();
    let prefix = redis_prefix();
    let a = TestServer::start_with(
        Db::Postgres,
        &[
            "--redis-url",
            &redis,
            "--redis-prefix",
            &prefix,
            "--jwt-secret",
            "a-cluster-call-test-secret-of-at-least-32-bytes",
        ],
    )
    .await;
    let b = a.another_node(&[]).await;
    wait_ready(&a.base).await;
    wait_ready(&b.base).await;
    let (owner, room) = room_owner(&a, "owner", "across nodes").await;

    let spawn = |server: &str, user: String, register: bool, tone: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_confab-cli"));
        cmd.args(["call", "--server", server, "--room", &room.id.to_string()])
            .args(["--user", &user, "--synthetic", "--json", "--duration", "8"])
            .args(["--udp-addr", "127.0.0.1:0", "--tone", tone])
            .env("CONFAB_PASSWORD", PASSWORD)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if register {
            cmd.arg("--register");
        }
        cmd.spawn().unwrap()
    };
    // The owner joins through node A first (A becomes the call's home), the guest
    // through node B.
    let first = spawn(&a.base, owner, false, "440");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = spawn(&b.base, unique("guest"), true, "660");

    for (node, child) in [("A", first), ("B", second)] {
        let output = child.wait_with_output().await.unwrap();
        assert!(
            output.status.success(),
            "confab-cli on node {node} failed: {:?}",
            output.status
        );
        let mut lines = BufReader::new(&output.stdout[..]).lines();
        let mut best_frames = 0;
        while let Some(line) = lines.next_line().await.unwrap() {
            let stats: serde_json::Value = serde_json::from_str(&line).unwrap();
            best_frames = best_frames.max(stats["frames_decoded"].as_u64().unwrap_or(0));
        }
        assert!(
            best_frames >= 30,
            "the participant on node {node} decodes the other's video ({best_frames} frames)"
        );
    }

    drop(b);
    drop(a);
    clear_redis(&redis, &prefix).await.unwrap();
}
