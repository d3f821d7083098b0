//! A call that loses the interface its media runs on. One `confab-cli` inside a network
//! namespace with two veth links into this one (two /24s, A and B) and a third link that
//! carries only the signaling (UDP dropped on it, so no media can run there), the other
//! `confab-cli` outside. Once video flows, the link that carries it is deleted
//! (`ip link del`): both ends of that veth and their addresses are gone. The call must
//! come back on the other link through an ICE restart (new sockets, candidates gathered
//! on the interfaces that are left), and both sides' frame counters must move again.
//!
//! Needs root, `ip` (iproute2) and nftables, like tests/netns.rs; CI runs as root.
//! Without them the test fails, it does not skip.

#![allow(clippy::unwrap_used)]

mod common;
mod lossy;

use common::{Db, PASSWORD, TestServer, room_owner, unique};
use lossy::Namespace;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command as StdCommand, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

/// Generous: an ICE restart follows 5 s of `disconnected` (negotiation.rs), then a round of
/// checks; this only bounds a test that would otherwise hang.
const RECOVERY_DEADLINE: Duration = Duration::from_secs(60);
const START_DEADLINE: Duration = Duration::from_secs(30);

fn run(program: &str, args: &[&str]) -> std::process::Output {
    let output = StdCommand::new(program).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "`{program} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// One more veth between this namespace and `ns`: `.1/24` outside, `.2/24` inside.
/// Deleted on drop if the test has not deleted it.
struct Link {
    ns: String,
    inner_link: String,
    outer_link: String,
    outer: Ipv4Addr,
}

impl Link {
    fn add(ns: &Namespace, tag: &str, second_octet: u8) -> Self {
        let pid = std::process::id();
        let net = [10, second_octet, ((pid / 50) % 256) as u8];
        let this = Self {
            ns: ns.name.clone(),
            inner_link: format!("cn{tag}i{pid}"),
            outer_link: format!("cn{tag}o{pid}"),
            outer: Ipv4Addr::new(net[0], net[1], net[2], 1),
        };
        let inner = Ipv4Addr::new(net[0], net[1], net[2], 2);
        run(
            "ip",
            &[
                "link",
                "add",
                &this.outer_link,
                "type",
                "veth",
                "peer",
                "name",
                &this.inner_link,
            ],
        );
        run("ip", &["link", "set", &this.inner_link, "netns", &this.ns]);
        run(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/24", this.outer),
                "dev",
                &this.outer_link,
            ],
        );
        run("ip", &["link", "set", &this.outer_link, "up"]);
        run(
            "ip",
            &[
                "-n",
                &this.ns,
                "addr",
                "add",
                &format!("{inner}/24"),
                "dev",
                &this.inner_link,
            ],
        );
        run(
            "ip",
            &["-n", &this.ns, "link", "set", &this.inner_link, "up"],
        );
        this
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        let _ = StdCommand::new("ip")
            .args(["link", "del", &self.outer_link])
            .stderr(Stdio::null())
            .status();
    }
}

/// Bytes through an interface inside the namespace, both ways (`None`: it is gone).
fn link_bytes(ns: &str, link: &str) -> Option<u64> {
    let output = StdCommand::new("ip")
        .args(["-n", ns, "-s", "-j", "link", "show", "dev", link])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    if !output.status.success() {
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let stats = &json[0]["stats64"];
    Some(stats["rx"]["bytes"].as_u64()? + stats["tx"]["bytes"].as_u64()?)
}

/// Bytes through each of `links` over `window`.
async fn traffic(ns: &str, links: &[&str], window: Duration) -> Vec<u64> {
    let before: Vec<u64> = links
        .iter()
        .map(|l| link_bytes(ns, l).unwrap_or(0))
        .collect();
    tokio::time::sleep(window).await;
    links
        .iter()
        .zip(before)
        .map(|(l, b)| link_bytes(ns, l).unwrap_or(0).saturating_sub(b))
        .collect()
}

/// One running `confab-cli`: the other's video frames decoded so far (the highest count
/// its per-second stats lines gave) and its log.
struct Participant {
    side: &'static str,
    frames: watch::Receiver<u64>,
    log: Arc<Mutex<String>>,
    _child: Child,
}

impl Participant {
    fn watch(side: &'static str, mut child: Child) -> Self {
        let (tx, frames) = watch::channel(0);
        let stdout = child.stdout.take().unwrap();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let stats: serde_json::Value = serde_json::from_str(&line).unwrap();
                let n = stats["frames_decoded"].as_u64().unwrap();
                tx.send_if_modified(|best| {
                    let more = n > *best;
                    *best = (*best).max(n);
                    more
                });
            }
        });
        let log = Arc::new(Mutex::new(String::new()));
        collect(child.stderr.take().unwrap(), Arc::clone(&log));
        Self {
            side,
            frames,
            log,
            _child: child,
        }
    }

    fn frames(&self) -> u64 {
        *self.frames.borrow()
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the other's video has reached `frames` decoded frames.
    async fn wait_for_frames(&mut self, frames: u64, deadline: Duration, what: &str) {
        let reached = tokio::time::timeout(deadline, self.frames.wait_for(|n| *n >= frames))
            .await
            .is_ok_and(|r| r.is_ok());
        assert!(
            reached,
            "{}: {what}: {} of {frames} frames decoded\n{}",
            self.side,
            self.frames(),
            self.log()
        );
    }
}

fn collect(stream: impl AsyncRead + Unpin + Send + 'static, log: Arc<Mutex<String>>) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut log = log.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
}

/// When the second link comes up.
#[derive(Clone, Copy, PartialEq)]
enum SecondLink {
    /// Both links from the start: candidates on both were gathered when the call began.
    FromTheStart,
    /// Only once the call runs on the first (a handover: the new network appears, then the
    /// old one goes): its address can only be a candidate if the restart gathers anew.
    MidCall,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_moves_to_the_other_link_when_its_link_goes_away() {
    link_goes_away(7, SecondLink::FromTheStart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_moves_to_a_link_that_came_up_after_it_started() {
    link_goes_away(8, SecondLink::MidCall).await;
}

async fn link_goes_away(tag: u8, second: SecondLink) {
    // Link A comes with the namespace; B is the second way in. S carries the signaling
    // (the server listens on its outer address) and drops UDP arriving inside, so media
    // can only run over A or B, and deleting one of them leaves the signaling alone.
    let ns = Namespace::create(tag);
    let pid = std::process::id();
    let octet = |base: u32| (base + (pid + u32::from(tag)) % 50) as u8;
    let add_b = || Link::add(&ns, &format!("b{tag}"), octet(150));
    let mut b = (second == SecondLink::FromTheStart).then(add_b);
    let s = Link::add(&ns, &format!("s{tag}"), octet(100));
    let table = format!("confab_netchange_{pid}_{tag}");
    let nft = |args: &[&str]| {
        let mut all = vec!["netns", "exec", ns.name.as_str(), "nft"];
        all.extend_from_slice(args);
        run("ip", &all);
    };
    nft(&["add", "table", "inet", &table]);
    nft(&[
        "add", "chain", "inet", &table, "in", "{", "type", "filter", "hook", "input", "priority",
        "0", ";", "}",
    ]);
    nft(&[
        "add",
        "rule",
        "inet",
        &table,
        "in",
        "iifname",
        &s.inner_link,
        "meta",
        "l4proto",
        "udp",
        "drop",
    ]);

    let mut server = TestServer::unstarted(Db::Sqlite, &[]).await;
    server.addr = SocketAddr::from((s.outer, 0));
    server.start_again().await;
    let (name, room) = room_owner(&server, "owner", "netchange").await;

    let cli = env!("CARGO_BIN_EXE_confab-cli");
    let spawn = |inside: bool, user: String, register: bool, tone: &str| {
        let mut cmd = if inside {
            ns.exec(cli)
        } else {
            Command::new(cli)
        };
        // The default `--udp-addr` (0.0.0.0:0): every interface there is, at each bind.
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
            "150",
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
    let mut inside = Participant::watch("inside", spawn(true, name, false, "440"));
    let mut outside = Participant::watch("outside", spawn(false, unique("guest"), true, "660"));

    // Both see each other's video.
    for p in [&mut inside, &mut outside] {
        p.wait_for_frames(30, START_DEADLINE, "video before the change")
            .await;
    }

    if b.is_none() {
        // The new network appears; the call stays where it is until the old one goes.
        b = Some(add_b());
    }
    let b = b.unwrap();

    // Which link carries the media: the one with the traffic (video is ~800 kbit/s,
    // the other link sees only the odd connectivity check).
    let links = [ns.inner_link.as_str(), b.inner_link.as_str()];
    let bytes = traffic(&ns.name, &links, Duration::from_secs(2)).await;
    if second == SecondLink::MidCall {
        assert!(bytes[0] > bytes[1], "the media runs over A ({bytes:?})");
    }
    let (media, other) = if bytes[0] >= bytes[1] {
        (links[0], links[1])
    } else {
        (links[1], links[0])
    };
    assert!(
        bytes.iter().max().unwrap() > &(20 * 1000),
        "the media runs over A or B (bytes in 2 s: {bytes:?})"
    );

    eprintln!("the media runs over {media} ({bytes:?} bytes in 2 s over {links:?}): deleting it");
    // The link goes away (both ends of the veth and their addresses with it).
    run("ip", &["-n", &ns.name, "link", "del", media]);
    let deleted = std::time::Instant::now();
    assert_eq!(link_bytes(&ns.name, media), None, "{media} is gone");
    let at_change = [inside.frames(), outside.frames()];

    // Video comes back: each side decodes another 60 frames (2 s at 30 fps) beyond what it
    // had when the link went away, which frames already on the way cannot account for.
    for (p, at) in [&mut inside, &mut outside].into_iter().zip(at_change) {
        p.wait_for_frames(at + 60, RECOVERY_DEADLINE, "video after the link went away")
            .await;
    }
    // Narration only (timed figures are not asserted): how long the video was away.
    eprintln!("video back {:.1?} after {media} went", deleted.elapsed());
    // And it runs over the link that is left.
    let left = traffic(&ns.name, &[other], Duration::from_secs(2)).await;
    assert!(
        left[0] > 20 * 1000,
        "the media now runs over {other} ({} bytes in 2 s)",
        left[0]
    );

    eprintln!(
        "recovered on {other}; the logs:\n{}\n{}",
        inside.log(),
        outside.log()
    );
    // The logs say what happened: the restart, and why loopback is no candidate.
    let logs = format!("{}{}", inside.log(), outside.log());
    assert!(
        logs.contains("restarting ICE"),
        "a side restarted ICE:\n{logs}"
    );
    let inside_log = inside.log();
    assert!(
        inside_log.contains("candidate gathering skips the interface")
            && inside_log.contains("loopback"),
        "inside, the log says loopback is skipped and why:\n{inside_log}"
    );
    drop(inside);
    drop(outside);
    drop(server);
    drop(s);
    drop(b);
    drop(ns);
}
