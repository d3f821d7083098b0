//! A lossy link for call tests and the loss benchmark: a network namespace joined to this
//! one by a veth pair, with random loss (nftables `numgen random`, this kernel has no
//! netem) and an optional rate cap (`tc tbf`) on both ends, changeable while a call runs.
//!
//! Needs root, iproute2 (`ip netns`) and nftables. [`Namespace::skip_reason`] says why a
//! test cannot run here; a test prints it and returns (it never passes silently).

#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

/// Runs a command, panicking with its stderr if it fails.
fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running `{program} {}`: {e}", args.join(" ")));
    assert!(
        output.status.success(),
        "`{program} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A namespace with a veth pair, `.1/24` outside and `.2/24` inside. Removed on drop, also
/// when the test panics.
pub struct Namespace {
    pub name: String,
    pub outer_link: String,
    pub inner_link: String,
    pub outer: Ipv4Addr,
    pub inner: Ipv4Addr,
    table: String,
}

impl Namespace {
    /// Why the lossy link cannot be built here (`None`: it can).
    pub fn skip_reason() -> Option<String> {
        let uid = Command::new("id").arg("-u").output().ok()?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return Some("not root: network namespaces need root".to_owned());
        }
        match Command::new("ip").args(["netns", "list"]).output() {
            Ok(o) if o.status.success() => None,
            Ok(o) => Some(format!(
                "`ip netns` does not work here: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => Some(format!("no `ip` (iproute2): {e}")),
        }
    }

    /// Creates the namespace and link (`tag` keeps concurrent tests apart).
    pub fn create(tag: u8) -> Self {
        let pid = std::process::id();
        let name = format!("confab-loss-{pid}-{tag}");
        let outer_link = format!("clo{pid}{tag}");
        let inner_link = format!("cli{pid}{tag}");
        // A /24 of its own per process and tag: 10.(200..250).x.0/24.
        let net = [
            10,
            200 + ((pid + u32::from(tag)) % 50) as u8,
            ((pid / 50) % 256) as u8,
        ];
        let outer = Ipv4Addr::new(net[0], net[1], net[2], 1);
        let inner = Ipv4Addr::new(net[0], net[1], net[2], 2);
        run("ip", &["netns", "add", &name]);
        let this = Self {
            table: format!("confab_loss_{pid}_{tag}"),
            name,
            outer_link,
            inner_link,
            outer,
            inner,
        };
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
        run(
            "ip",
            &["link", "set", &this.inner_link, "netns", &this.name],
        );
        run(
            "ip",
            &[
                "addr",
                "add",
                &format!("{outer}/24"),
                "dev",
                &this.outer_link,
            ],
        );
        run("ip", &["link", "set", &this.outer_link, "up"]);
        let ns = this.name.as_str();
        run(
            "ip",
            &[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{inner}/24"),
                "dev",
                &this.inner_link,
            ],
        );
        run("ip", &["-n", ns, "link", "set", &this.inner_link, "up"]);
        run("ip", &["-n", ns, "link", "set", "lo", "up"]);
        for inside in [false, true] {
            let table = this.table.clone();
            this.nft(inside, &["add", "table", "inet", &table]);
            this.nft(
                inside,
                &[
                    "add", "chain", "inet", &table, "lossy", "{", "type", "filter", "hook",
                    "input", "priority", "0", ";", "}",
                ],
            );
        }
        this
    }

    fn nft(&self, inside: bool, args: &[&str]) {
        if inside {
            let mut all = vec!["netns", "exec", self.name.as_str(), "nft"];
            all.extend_from_slice(args);
            run("ip", &all);
        } else {
            run("nft", args);
        }
    }

    /// Drops `percent` % of the packets crossing the link, each way, at random (0: none).
    /// They are dropped as they arrive (input hook): dropped on output, the sender's
    /// `sendmsg` would fail with EPERM instead of the packet vanishing on the way.
    pub fn set_loss(&self, percent: u32) {
        for inside in [false, true] {
            let link = if inside {
                &self.inner_link
            } else {
                &self.outer_link
            };
            self.nft(inside, &["flush", "chain", "inet", &self.table, "lossy"]);
            if percent > 0 {
                let rule = if percent >= 100 {
                    format!("iifname {link} drop")
                } else {
                    format!("iifname {link} numgen random mod 100 < {percent} drop")
                };
                let mut args = vec!["add", "rule", "inet", &self.table, "lossy"];
                args.extend(rule.split(' '));
                self.nft(inside, &args);
            }
        }
    }

    /// Caps each direction at `kbit` kbit/s with a token bucket (`None`: no cap).
    pub fn set_rate(&self, kbit: Option<u32>) {
        for inside in [false, true] {
            let link = if inside {
                &self.inner_link
            } else {
                &self.outer_link
            };
            let mut args: Vec<String> = Vec::new();
            if inside {
                args.extend(["-n".to_owned(), self.name.clone()]);
            }
            // `replace` installs or changes; deleting a missing qdisc fails, so ignore that.
            match kbit {
                Some(kbit) => {
                    args.extend(
                        [
                            "qdisc",
                            "replace",
                            "dev",
                            link,
                            "root",
                            "tbf",
                            "rate",
                            &format!("{kbit}kbit"),
                            "burst",
                            "32kbit",
                            "latency",
                            "200ms",
                        ]
                        .map(str::to_owned),
                    );
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    run("tc", &args);
                }
                None => {
                    args.extend(["qdisc", "del", "dev", link, "root"].map(str::to_owned));
                    let _ = Command::new("tc")
                        .args(&args)
                        .stderr(Stdio::null())
                        .status();
                }
            }
        }
    }

    /// `ip netns exec NAME PROGRAM`, to run a program inside.
    pub fn exec(&self, program: &str) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // Deleting the namespace deletes the inner end (and its nft table), and with it
        // the outer end; the outer table goes separately.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.outer_link])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &self.table])
            .stderr(Stdio::null())
            .status();
    }
}
