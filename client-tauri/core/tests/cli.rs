//! `confab-cli` as a user runs it: two processes join one room's call with synthetic media
//! and report, every second, statistics of the media they decode from each other; the
//! messenger commands (`chat`, `contacts`, `dm`) script a conversation between two users.

#![allow(clippy::unwrap_used)]

mod common;

// SQLite only (see tests/common): calls are CPU-heavy, and one database is enough here.
use common::{Db, PASSWORD, TestServer, register, room_owner, unique};
use shared::api::{Contact, Me, Message};
use std::process::{Output, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// `confab-cli ARGS --server .. --user USER --outbox <temp>`, ready to run.
fn cli(server: &TestServer, user: &str, args: &[&str]) -> Command {
    let outbox =
        std::env::temp_dir().join(format!("confab-cli-test-{}.sqlite", uuid::Uuid::new_v4()));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_confab-cli"));
    cmd.args(args)
        .args(["--server", &server.base, "--user", user])
        .arg("--outbox")
        .arg(outbox)
        .env("CONFAB_PASSWORD", PASSWORD)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

async fn run(server: &TestServer, user: &str, args: &[&str]) -> Output {
    tokio::time::timeout(Duration::from_secs(60), cli(server, user, args).output())
        .await
        .expect("confab-cli finishes")
        .unwrap()
}

/// Runs a command that must succeed; its stdout.
async fn ok(server: &TestServer, user: &str, args: &[&str]) -> String {
    let output = run(server, user, args).await;
    assert!(
        output.status.success(),
        "confab-cli {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Runs a command that must fail; the error code of its JSON error.
async fn fails(server: &TestServer, user: &str, args: &[&str]) -> String {
    let output = run(server, user, args).await;
    assert!(!output.status.success(), "confab-cli {args:?} succeeded");
    let stderr = String::from_utf8(output.stderr).unwrap();
    let line = stderr.lines().last().unwrap_or_default();
    let error: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON error ({e}): {stderr}"));
    error["error"]["code"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_are_made_and_listed_from_the_command_line() {
    let server = TestServer::start(Db::Sqlite).await;
    let (_, alice) = register(&server, "alice").await;
    let (_, bob) = register(&server, "bob").await;

    let asked = ok(&server, &alice, &["contacts", "add", &bob]).await;
    assert!(asked.contains("asked"), "{asked}");
    assert_eq!(
        fails(&server, &bob, &["contacts", "accept", "nobody_at_all"]).await,
        "not_found"
    );
    let accepted = ok(&server, &bob, &["contacts", "accept", &alice, "--json"]).await;
    let contact: Contact = serde_json::from_str(accepted.trim()).unwrap();
    assert_eq!(contact.user.username, alice);

    let listed = ok(&server, &alice, &["contacts", "list", "--json"]).await;
    let contacts: Vec<Contact> = serde_json::from_str(listed.trim()).unwrap();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].user.username, bob);
    let found = ok(&server, &alice, &["contacts", "search", &bob[..6]]).await;
    assert!(found.contains(&bob), "{found}");

    // The direct room is one per pair, whoever opens it.
    let from_alice = ok(&server, &alice, &["dm", &bob]).await;
    let from_bob = ok(&server, &bob, &["dm", &contact.user.id.to_string()]).await;
    assert_eq!(from_alice.trim(), from_bob.trim());
    assert!(from_alice.trim().parse::<shared::RoomId>().is_ok());

    ok(&server, &alice, &["contacts", "block", &bob]).await;
    let listed = ok(&server, &alice, &["contacts", "list", "--json"]).await;
    assert_eq!(listed.trim(), "[]");
    ok(&server, &alice, &["contacts", "unblock", &bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_are_sent_followed_and_read_back_from_the_command_line() {
    let server = TestServer::start(Db::Sqlite).await;
    let (alice_api, alice) = register(&server, "alice").await;
    let (bob_api, bob) = register(&server, "bob").await;
    let alice_me: Me = alice_api.login(&alice, PASSWORD).await.unwrap();
    let bob_me: Me = bob_api.login(&bob, PASSWORD).await.unwrap();
    alice_api.send_contact_request(bob_me.id).await.unwrap();
    let request = bob_api.contact_requests().await.unwrap().incoming[0].id;
    bob_api.accept_contact_request(request).await.unwrap();
    let room = alice_api
        .open_direct(bob_me.id)
        .await
        .unwrap()
        .id
        .to_string();

    // Bob follows the room while Alice writes.
    let mut tail = cli(
        &server,
        &bob,
        &["chat", "tail", &room, "--json", "--count", "2"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stderr = BufReader::new(tail.stderr.take().unwrap()).lines();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            if line.starts_with("following room") {
                return;
            }
        }
        panic!("chat tail ended before following");
    })
    .await
    .expect("chat tail starts following");

    let sent = ok(
        &server,
        &alice,
        &["chat", "send", &room, "hello from the shell"],
    )
    .await;
    assert!(sent.starts_with("sent #1"), "{sent}");
    let sent = ok(
        &server,
        &alice,
        &["chat", "send", &room, "second line", "--json"],
    )
    .await;
    let second: Message = serde_json::from_str(sent.trim()).unwrap();
    assert_eq!((second.seq, second.author), (2, Some(alice_me.id)));

    let followed = tokio::time::timeout(Duration::from_secs(30), tail.wait_with_output())
        .await
        .expect("chat tail stops after two messages")
        .unwrap();
    assert!(followed.status.success());
    let followed: Vec<Message> = String::from_utf8(followed.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        followed.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["hello from the shell", "second line"]
    );

    let history = ok(
        &server,
        &bob,
        &["chat", "history", &room, "--json", "--limit", "10"],
    )
    .await;
    let history: Vec<Message> = history
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(history, followed, "history holds exactly what was followed");
    let text = ok(&server, &bob, &["chat", "history", &room, "--limit", "1"]).await;
    assert_eq!(text.trim(), format!("[#2] {alice}: second line"));

    // Refusals are JSON errors with the server's code.
    let nowhere = shared::RoomId::new().to_string();
    assert_eq!(
        fails(&server, &alice, &["chat", "send", &nowhere, "hello?"]).await,
        "not_found"
    );
    assert_eq!(
        fails(&server, &alice, &["chat", "send", &room, "   "]).await,
        "validation_failed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_cli_participants_call_each_other() {
    let server = TestServer::start(Db::Sqlite).await;
    let (name, room) = room_owner(&server, "owner", "cli").await;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ring_from_the_command_line_is_missed_then_answered() {
    let server = TestServer::start_with(Db::Sqlite, &["--ring-timeout", "2"]).await;
    let (alice_api, alice) = register(&server, "alice").await;
    let (bob_api, bob) = register(&server, "bob").await;
    alice_api.login(&alice, PASSWORD).await.unwrap();
    let bob_me = bob_api.login(&bob, PASSWORD).await.unwrap();
    alice_api.send_contact_request(bob_me.id).await.unwrap();
    let request = bob_api.contact_requests().await.unwrap().incoming[0].id;
    bob_api.accept_contact_request(request).await.unwrap();
    let media = [
        "--udp-addr",
        "127.0.0.1:0",
        "--duration",
        "1",
        "--timeout",
        "30",
    ];
    let events = |out: &str| -> Vec<String> {
        out.lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["event"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };

    // Nobody answers.
    let mut args = vec!["ring", bob.as_str(), "--audio", "--json"];
    args.extend(media);
    let rang = ok(&server, &alice, &args).await;
    assert_eq!(events(&rang), ["ringing", "missed"]);

    // Bob waits for the call and answers it.
    let mut answer_args = vec!["answer", "--json"];
    answer_args.extend(media);
    let mut answer = cli(&server, &bob, &answer_args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(answer.stderr.take().unwrap()).lines();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            if line.starts_with("waiting for a call") {
                return;
            }
        }
        panic!("answer ended before waiting");
    })
    .await
    .expect("answer starts waiting");
    let rang = ok(&server, &alice, &args).await;
    assert_eq!(events(&rang), ["ringing", "answered"]);
    let answered = tokio::time::timeout(Duration::from_secs(30), answer.wait_with_output())
        .await
        .expect("answer ends")
        .unwrap();
    assert!(answered.status.success());
    assert_eq!(
        events(&String::from_utf8(answered.stdout).unwrap()),
        ["answered"]
    );
}
