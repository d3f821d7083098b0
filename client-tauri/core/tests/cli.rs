//! `confab-cli` as a user runs it: two processes join one room's call with synthetic media
//! and report, every second, statistics of the media they decode from each other.

#![allow(clippy::unwrap_used)]

mod common;

use common::{PASSWORD, TestServer, unique};
use confab_core::api::ApiClient;
use confab_core::keystore::MemoryStore;
use shared::api::{CreateRoomRequest, RegisterRequest};
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_cli_participants_call_each_other() {
    let server = TestServer::start().await;
    let owner = ApiClient::new(&server.base, Arc::new(MemoryStore::new())).unwrap();
    let name = unique("owner");
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
            title: "cli".into(),
            max_participants: None,
        })
        .await
        .unwrap();

    let spawn = |user: String, register: bool, tone: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_confab-cli"));
        cmd.args([
            "call",
            "--server",
            &server.base,
            "--room",
            &room.id.to_string(),
            "--user",
            &user,
        ])
        .args([
            "--synthetic",
            "--json",
            "--duration",
            "8",
            "--udp-addr",
            "127.0.0.1:0",
            "--tone",
            tone,
        ])
        .env("CONFAB_PASSWORD", PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
        if register {
            cmd.arg("--register");
        }
        cmd.spawn().unwrap()
    };
    let first = spawn(name.clone(), false, "440");
    let second = spawn(unique("guest"), true, "660");

    for child in [first, second] {
        let output = child.wait_with_output().await.unwrap();
        assert!(
            output.status.success(),
            "confab-cli failed: {:?}",
            output.status
        );
        let mut lines = BufReader::new(&output.stdout[..]).lines();
        let mut best_frames = 0;
        let mut latency = None;
        while let Some(line) = lines.next_line().await.unwrap() {
            let stats: serde_json::Value = serde_json::from_str(&line).unwrap();
            best_frames = best_frames.max(stats["frames_decoded"].as_u64().unwrap());
            if let Some(ms) = stats["glass_to_glass_ms"].as_f64() {
                latency = Some(ms);
                assert_eq!(
                    (stats["width"].as_u64(), stats["height"].as_u64()),
                    (Some(640), Some(480))
                );
            }
        }
        assert!(
            best_frames >= 30,
            "each side decodes the other's video ({best_frames} frames)"
        );
        assert!(
            latency.is_some_and(|ms| ms > 0.0),
            "the test pattern's capture time is read back"
        );
    }
}
