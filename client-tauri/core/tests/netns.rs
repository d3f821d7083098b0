//! A call on a host with no default route: one `confab-cli` inside a network namespace
//! that has only loopback and one veth with a /24 (a LAN-only network looks like that),
//! the other outside, the server on the veth's outer address. Both bind the default
//! wildcard address, and each must decode the other's video.
//!
//! Needs root, `ip` (iproute2) and nftables (tests/lossy builds the link); CI runs as
//! root. Without them the test fails, it does not skip.

#![allow(clippy::unwrap_used)]

mod common;
mod lossy;

use common::{Db, PASSWORD, TestServer, room_owner, unique};
use lossy::Namespace;
use std::net::SocketAddr;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_connects_into_a_namespace_without_a_default_route() {
    // The link of the loss tests, with no loss: `.1/24` outside, `.2/24` inside, nothing
    // else routable in the namespace, which is the point of this test.
    let ns = Namespace::create(0);
    let routes = std::process::Command::new("ip")
        .args(["-n", &ns.name, "route", "show", "default"])
        .output()
        .unwrap();
    assert!(
        routes.stdout.is_empty(),
        "the namespace has no default route"
    );
    let mut server = TestServer::unstarted(Db::Sqlite, &[]).await;
    server.addr = SocketAddr::from((ns.outer, 0));
    server.start_again().await;
    assert_eq!(server.addr.ip(), ns.outer);

    let (name, room) = room_owner(&server, "owner", "netns").await;

    let cli = env!("CARGO_BIN_EXE_confab-cli");
    let spawn = |inside: bool, user: String, register: bool, tone: &str| {
        let mut cmd = if inside {
            ns.exec(cli)
        } else {
            Command::new(cli)
        };
        // The default `--udp-addr` (0.0.0.0:0) on both sides.
        cmd.args([
            "call",
            "--server",
            &server.base,
            "--room",
            &room.id.to_string(),
            "--user",
            &user,
            "--synthetic",
            "--json",
            "--duration",
            "8",
            "--tone",
            tone,
        ])
        .env("CONFAB_PASSWORD", PASSWORD)
        .env("RUST_LOG", "warn,confab_core=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
        if register {
            cmd.arg("--register");
        }
        cmd.spawn().unwrap()
    };
    let inside = spawn(true, name.clone(), false, "440");
    let outside = spawn(false, unique("guest"), true, "660");

    for (side, child) in [("inside", inside), ("outside", outside)] {
        let output = child.wait_with_output().await.unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "confab-cli {side} the namespace failed: {:?}\n{stderr}",
            output.status
        );
        let mut lines = BufReader::new(&output.stdout[..]).lines();
        let mut best_frames = 0;
        while let Some(line) = lines.next_line().await.unwrap() {
            let stats: serde_json::Value = serde_json::from_str(&line).unwrap();
            best_frames = best_frames.max(stats["frames_decoded"].as_u64().unwrap());
        }
        assert!(
            best_frames >= 30,
            "{side} the namespace, the other's video is decoded ({best_frames} frames)\n{stderr}"
        );
        if side == "inside" {
            assert!(
                stderr.contains("mDNS"),
                "inside, the log says why mDNS is off:\n{stderr}"
            );
        }
    }
    drop(server);
    drop(ns);
}
