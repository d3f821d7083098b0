//! A call on a host with no default route: one `confab-cli` inside a network namespace
//! that has only loopback and one veth with a /24 (a LAN-only network looks like that),
//! the other outside, the server on the veth's outer address. Both bind the default
//! wildcard address, and each must decode the other's video.
//!
//! Needs root and `ip` (iproute2); CI runs as root. Without them the test fails, it does
//! not skip.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Db, PASSWORD, TestServer, room_owner, unique};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Runs `ip ARGS`, failing the test if it fails.
fn ip(args: &[&str]) {
    let output = std::process::Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running `ip {}` (iproute2 is needed): {e}", args.join(" ")));
    assert!(
        output.status.success(),
        "`ip {}` failed (this test needs root): {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A namespace joined to this one by a veth pair, `.1/24` outside and `.2/24` inside, with no default route in it. Removed on drop, also when the test panics.
struct Namespace {
    name: String,
    outer_link: String,
    outer: Ipv4Addr,
}

impl Namespace {
    fn create() -> Self {
        let pid = std::process::id();
        let name = format!("confab-netns-{pid}");
        let outer_link = format!("cfo{pid}");
        let inner_link = format!("cfi{pid}");
        // A /24 of its own per process: 10.(100..200).(0..256).0/24.
        let net = [10, 100 + (pid % 100) as u8, ((pid / 100) % 256) as u8];
        let outer = Ipv4Addr::new(net[0], net[1], net[2], 1);
        let inner = Ipv4Addr::new(net[0], net[1], net[2], 2);
        ip(&["netns", "add", &name]);
        let this = Self {
            name,
            outer_link,
            outer,
        };
        ip(&[
            "link",
            "add",
            &this.outer_link,
            "type",
            "veth",
            "peer",
            "name",
            &inner_link,
        ]);
        ip(&["link", "set", &inner_link, "netns", &this.name]);
        ip(&[
            "addr",
            "add",
            &format!("{outer}/24"),
            "dev",
            &this.outer_link,
        ]);
        ip(&["link", "set", &this.outer_link, "up"]);
        let ns = ["-n", this.name.as_str()];
        ip(&[
            &ns[..],
            &["addr", "add", &format!("{inner}/24"), "dev", &inner_link],
        ]
        .concat());
        ip(&[&ns[..], &["link", "set", &inner_link, "up"]].concat());
        ip(&[&ns[..], &["link", "set", "lo", "up"]].concat());
        // The point of the test: nothing but the /24 is routable inside.
        let routes = std::process::Command::new("ip")
            .args(["-n", &this.name, "route", "show", "default"])
            .output()
            .unwrap();
        assert!(
            routes.stdout.is_empty(),
            "the namespace has no default route"
        );
        this
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // Deleting the namespace deletes the inner end, and with it the outer end; the
        // second command is for a namespace that never got its link.
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.outer_link])
            .stderr(Stdio::null())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_connects_into_a_namespace_without_a_default_route() {
    let ns = Namespace::create();
    let mut server = TestServer::unstarted(Db::Sqlite, &[]).await;
    server.addr = SocketAddr::from((ns.outer, 0));
    server.start_again().await;
    assert_eq!(server.addr.ip(), ns.outer);

    let (name, room) = room_owner(&server, "owner", "netns").await;

    let cli = env!("CARGO_BIN_EXE_confab-cli");
    let spawn = |inside: bool, user: String, register: bool, tone: &str| {
        let mut cmd = if inside {
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", &ns.name, cli]);
            cmd
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
