//! Several nodes as one server (`--redis-url`): two or three servers on one PostgreSQL
//! database and one Redis key prefix, with clients on different nodes. Chat, typing,
//! receipts, contact and room events, presence and session revocation cross nodes; a node
//! killed with SIGKILL takes its users offline for the others; Redis restarted under the
//! nodes (a `redis-server` of the test's own) leaves them degraded but serving their own
//! users, then they resubscribe and resync presence. Calls do not span nodes yet.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Db, TestServer, TestUser, Ws};
use serde_json::{Value, json};
use shared::api::PresenceStatus;
use shared::signal::{ClientMsg, ServerMsg, close};
use shared::{RoomId, UserId};
use signal_server::testing::{clear_redis, redis_prefix, redis_url};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const SECRET: &str = "a-cluster-test-secret-of-at-least-32-bytes";

/// Every node's flags: one JWT secret (a token from one node is good on all), pings
/// every second (so a long wait for an event is no silence), no tight rate limits.
fn node_flags<'a>(redis: &'a str, prefix: &'a str) -> Vec<&'a str> {
    vec![
        "--redis-url",
        redis,
        "--redis-prefix",
        prefix,
        "--jwt-secret",
        SECRET,
        "--ws-heartbeat",
        "1",
        "--message-rate",
        "1000",
    ]
}

/// Waits until a node reports `status` ("ok": subscribed to the bus; "degraded").
async fn wait_readyz(base: &str, status: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = reqwest::get(format!("{base}/readyz")).await
            && let Ok(body) = r.json::<Value>().await
            && body["status"] == status
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{base}/readyz never said {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn uid(user: &TestUser) -> UserId {
    user.id.parse().unwrap()
}

/// Waits (up to a minute) for `user`'s presence to be `status` on `ws`.
async fn expect_presence(ws: &mut Ws, user: &TestUser, status: PresenceStatus) {
    let id = uid(user);
    let wait = ws.recv_until(|m| {
        matches!(m, ServerMsg::Presence { user_id, status: s } if *user_id == id && *s == status)
    });
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .unwrap_or_else(|_| panic!("{} never became {status:?}", user.name));
}

async fn direct_room(server: &TestServer, a: &TestUser, b: &TestUser) -> String {
    let (status, room) = server
        .post(
            &format!("/api/contacts/{}/direct", b.id),
            Some(&a.token),
            json!({}),
        )
        .await;
    assert!(status.is_success(), "{room}");
    room["id"].as_str().unwrap().to_owned()
}

/// Sends a chat message over the socket; returns its seq from the ack.
async fn say(ws: &mut Ws, room: RoomId, body: &str) -> u64 {
    let client_id = uuid::Uuid::new_v4().to_string();
    ws.send(&ClientMsg::SendMessage {
        room_id: room,
        client_id: client_id.clone(),
        body: body.to_owned(),
        reply_to: None,
        attachments: Vec::new(),
    })
    .await;
    match ws
        .recv_until(|m| matches!(m, ServerMsg::MessageAck { client_id: c, .. } if *c == client_id))
        .await
    {
        ServerMsg::MessageAck { message, .. } => message.seq,
        _ => unreachable!(),
    }
}

async fn expect_message(ws: &mut Ws, body: &str) -> u64 {
    match ws
        .recv_until(|m| matches!(m, ServerMsg::MessageCreated { message } if message.body == body))
        .await
    {
        ServerMsg::MessageCreated { message } => message.seq,
        _ => unreachable!(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_presence_and_revocation_cross_nodes() {
    let redis = redis_url();
    let prefix = redis_prefix();
    let flags = node_flags(&redis, &prefix);
    let a = TestServer::start_with(Db::Postgres, &flags).await;
    let b = a.another_node(&[]).await;
    let c = a.another_node(&[]).await;
    for node in [&a, &b, &c] {
        wait_readyz(&node.base, "ok").await;
    }

    let ann = a.user("ann").await;
    let bob = b.user("bob").await;
    let mut ann_ws = a.ws(&ann).await;
    let mut bob_ws = b.ws(&bob).await;

    // Contact events: a request made on node A reaches Bob on node B, and the accept
    // on B reaches Ann on A, who sees Bob (connected to B) online.
    let (status, body) = a
        .post(
            "/api/contacts/requests",
            Some(&ann.token),
            json!({"user_id": bob.id}),
        )
        .await;
    assert!(status.is_success(), "{body}");
    bob_ws
        .recv_until(|m| matches!(m, ServerMsg::ContactRequest { .. }))
        .await;
    let (status, body) = b
        .post(
            "/api/contacts/requests",
            Some(&bob.token),
            json!({"user_id": ann.id}),
        )
        .await;
    assert!(status.is_success(), "{body}");
    ann_ws
        .recv_until(|m| matches!(m, ServerMsg::ContactAdded { .. }))
        .await;
    expect_presence(&mut ann_ws, &bob, PresenceStatus::Online).await;
    // What the REST API says about presence comes from the other node too.
    let (_, contacts) = a.get("/api/contacts", Some(&ann.token)).await;
    assert_eq!(contacts[0]["presence"], "online", "{contacts}");

    // Room events, chat, typing and receipts both ways.
    let room = direct_room(&a, &ann, &bob).await;
    let room_id: RoomId = room.parse().unwrap();
    bob_ws
        .recv_until(|m| matches!(m, ServerMsg::RoomAdded { .. }))
        .await;
    ann_ws.send(&ClientMsg::Typing { room_id }).await;
    let typing = bob_ws
        .recv_until(|m| matches!(m, ServerMsg::Typing { .. }))
        .await;
    assert!(
        matches!(typing, ServerMsg::Typing { user_id, expires_in_ms, .. } if user_id == uid(&ann) && expires_in_ms > 0),
        "{typing:?}"
    );
    let seq = say(&mut ann_ws, room_id, "hello from node A").await;
    // Sending stops the typing, on the other node too.
    let stopped = bob_ws
        .recv_until(|m| {
            matches!(
                m,
                ServerMsg::Typing { .. } | ServerMsg::MessageCreated { .. }
            )
        })
        .await;
    let got = match stopped {
        ServerMsg::Typing { expires_in_ms, .. } => {
            assert_eq!(expires_in_ms, 0);
            expect_message(&mut bob_ws, "hello from node A").await
        }
        ServerMsg::MessageCreated { message } => {
            assert_eq!(message.body, "hello from node A");
            message.seq
        }
        _ => unreachable!(),
    };
    assert_eq!(got, seq);
    bob_ws.send(&ClientMsg::Read { room_id, seq }).await;
    let read = ann_ws
        .recv_until(|m| matches!(m, ServerMsg::Read { .. }))
        .await;
    assert!(
        matches!(read, ServerMsg::Read { user_id, seq: s, .. } if user_id == uid(&bob) && s == seq),
        "{read:?}"
    );
    say(&mut bob_ws, room_id, "hello from node B").await;
    expect_message(&mut ann_ws, "hello from node B").await;

    // Presence over three nodes: Bob idle on B, then a second device on C.
    bob_ws
        .send(&ClientMsg::SetPresence {
            status: shared::signal::OwnPresence::Idle,
        })
        .await;
    expect_presence(&mut ann_ws, &bob, PresenceStatus::Idle).await;
    let bob_phone = c.sign_in("bob").await;
    let mut bob_phone_ws = c.ws(&bob_phone).await;
    expect_presence(&mut ann_ws, &bob, PresenceStatus::Online).await;
    bob_phone_ws.stream.close(None).await.unwrap();
    expect_presence(&mut ann_ws, &bob, PresenceStatus::Idle).await;
    bob_ws.stream.close(None).await.unwrap();
    expect_presence(&mut ann_ws, &bob, PresenceStatus::Offline).await;

    // A session revoked through node A closes its socket on node B.
    let mut bob_ws = b.ws(&bob).await;
    expect_presence(&mut ann_ws, &bob, PresenceStatus::Online).await;
    let (status, body) = a
        .delete(
            &format!("/api/auth/sessions/{}", bob.session),
            Some(&bob.token),
        )
        .await;
    assert!(status.is_success(), "{body}");
    assert_eq!(bob_ws.closed().await, close::SESSION_REVOKED);
    expect_presence(&mut ann_ws, &bob, PresenceStatus::Offline).await;

    drop(ann_ws);
    c.stop().await;
    b.stop().await;
    a.stop().await;
    clear_redis(&redis, &prefix).await.unwrap();
}

/// A free TCP port on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills a child process when dropped (also when the test fails).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The real `confab-server` binary as another node of `server`'s cluster.
fn spawn_node(server: &TestServer, port: u16, dir: &std::path::Path) -> Reaped {
    let mut args = server.args();
    // Bind and data folder of its own; the rest (database, Redis, secret) shared.
    for (flag, value) in [
        ("--bind", format!("127.0.0.1:{port}")),
        ("--data-dir", dir.display().to_string()),
    ] {
        let i = args.iter().position(|a| a == flag).unwrap();
        args[i + 1] = value;
    }
    Reaped(
        Command::new(env!("CARGO_BIN_EXE_confab-server"))
            .args(&args)
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_nodes_users_go_offline_for_the_others() {
    let redis = redis_url();
    let prefix = redis_prefix();
    let flags = node_flags(&redis, &prefix);
    let a = TestServer::start_with(Db::Postgres, &flags).await;
    wait_readyz(&a.base, "ok").await;
    let dir = tempfile_dir();
    let port = free_port();
    let mut c = a.another_node(&[]).await;
    // `c` is only this test's client for the real binary's port.
    c.shutdown_only().await;
    c.base = format!("http://127.0.0.1:{port}");
    c.ws_url = format!("ws://127.0.0.1:{port}/ws");
    let mut child = spawn_node(&a, port, &dir);
    wait_readyz(&c.base, "ok").await;

    let ann = a.user("ann").await;
    let bob = c.user("bob").await;
    a.befriend(&ann, &bob).await;
    let mut ann_ws = a.ws(&ann).await;
    let mut bob_ws = c.ws(&bob).await;
    expect_presence(&mut ann_ws, &bob, PresenceStatus::Online).await;

    // SIGKILL: the node says nothing; its liveness key runs out.
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let killed = std::time::Instant::now();
    expect_presence(&mut ann_ws, &bob, PresenceStatus::Offline).await;
    eprintln!("offline {:?} after the kill", killed.elapsed());
    let (_, contacts) = a.get("/api/contacts", Some(&ann.token)).await;
    assert_eq!(contacts[0]["presence"], "offline", "{contacts}");

    // Bob reconnects to the surviving node and is online again.
    let _ = bob_ws.stream.close(None).await;
    let _bob_ws = a.ws(&bob).await;
    expect_presence(&mut ann_ws, &bob, PresenceStatus::Online).await;

    drop(ann_ws);
    drop(c);
    a.stop().await;
    std::fs::remove_dir_all(&dir).ok();
    clear_redis(&redis, &prefix).await.unwrap();
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("confab-node-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A `redis-server` of the test's own on `port`, without persistence.
fn spawn_redis(port: u16) -> Reaped {
    Reaped(
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server) must be installed"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_survive_redis_going_away_and_resync_when_it_returns() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let mut redis = spawn_redis(port);
    let prefix = redis_prefix();
    let flags = node_flags(&url, &prefix);
    let a = TestServer::start_with(Db::Postgres, &flags).await;
    let b = a.another_node(&[]).await;
    wait_readyz(&a.base, "ok").await;
    wait_readyz(&b.base, "ok").await;

    let ann = a.user("ann").await;
    let bob = b.user("bob").await;
    a.befriend(&ann, &bob).await;
    let room = direct_room(&a, &ann, &bob).await;
    let room_id: RoomId = room.parse().unwrap();
    let mut ann_ws = a.ws(&ann).await;
    let mut bob_ws = b.ws(&bob).await;
    expect_presence(&mut ann_ws, &bob, PresenceStatus::Online).await;
    say(&mut ann_ws, room_id, "before").await;
    expect_message(&mut bob_ws, "before").await;

    // Redis goes away: both nodes say they are degraded, and keep serving their own
    // users (Ann's other device on A hears her message; it is stored).
    drop(redis);
    wait_readyz(&a.base, "degraded").await;
    wait_readyz(&b.base, "degraded").await;
    let ann_tablet = a.sign_in("ann").await;
    let mut tablet_ws = a.ws(&ann_tablet).await;
    let during = say(&mut ann_ws, room_id, "during the outage").await;
    expect_message(&mut tablet_ws, "during the outage").await;
    // Bob leaves while the nodes cannot tell each other.
    bob_ws.stream.close(None).await.unwrap();

    // Redis returns (empty): the nodes resubscribe and rewrite what they share, so Ann
    // learns that Bob left, and messages cross again.
    redis = spawn_redis(port);
    wait_readyz(&a.base, "ok").await;
    wait_readyz(&b.base, "ok").await;
    expect_presence(&mut ann_ws, &bob, PresenceStatus::Offline).await;
    let mut bob_ws = b.ws(&bob).await;
    expect_presence(&mut ann_ws, &bob, PresenceStatus::Online).await;
    // Nothing acknowledged was lost: what was sent during the outage is in the room.
    let all = b.all_messages(&bob, &room).await;
    assert!(all.iter().any(|m| m.seq == during), "{all:?}");
    say(&mut ann_ws, room_id, "after").await;
    expect_message(&mut bob_ws, "after").await;

    drop((ann_ws, bob_ws, tablet_ws));
    b.stop().await;
    a.stop().await;
    drop(redis);
}
