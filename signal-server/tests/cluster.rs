//! Several nodes as one server (`--redis-url`): two or three servers on one PostgreSQL
//! database and one Redis key prefix, with clients on different nodes. Chat, typing,
//! receipts, contact and room events, presence and session revocation cross nodes; a node
//! killed with SIGKILL takes its users offline for the others; Redis restarted under the
//! nodes (a `redis-server` of the test's own) leaves them degraded but serving their own
//! users, then they resubscribe and resync presence. Calls span nodes: a direct call
//! rings a user's devices on two nodes and the answer on one stops the other; offers,
//! answers, candidates and media states cross between participants on different nodes;
//! a SIGKILLed node's participants leave the calls homed elsewhere, and the calls it was
//! home to end for the others. An operator's `admin disable-user` / `revoke-sessions`,
//! run as a process of its own, closes the user's sockets on every node (over Redis,
//! and without Redis on a single SQLite node, through the nodes' periodic check). Every
//! metric carries the node's id. User events go only to the nodes of their recipients'
//! connections, and a device connecting while messages flow misses none of them.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Db, TestServer, TestUser, Ws};
use serde_json::{Value, json};
use shared::api::PresenceStatus;
use shared::signal::{ClientMsg, RingEnd, ServerMsg, close};
use shared::{ParticipantId, RoomId, UserId};
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
    spawn_node_with(server, port, dir, &[])
}

/// [`spawn_node`] with `extra` flags.
fn spawn_node_with(
    server: &TestServer,
    port: u16,
    dir: &std::path::Path,
    extra: &[String],
) -> Reaped {
    let mut args = server.args();
    // Bind and data folder of its own; the rest (database, Redis, secret) shared.
    for (flag, value) in [
        ("--bind", format!("127.0.0.1:{port}")),
        ("--data-dir", dir.display().to_string()),
    ] {
        let i = args.iter().position(|a| a == flag).unwrap();
        args[i + 1] = value;
    }
    args.extend_from_slice(extra);
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

fn candidate(text: &str) -> shared::signal::IceCandidate {
    shared::signal::IceCandidate {
        candidate: text.to_owned(),
        sdp_mid: None,
        sdp_mline_index: None,
        username_fragment: None,
    }
}

fn join(room_id: RoomId, video: bool) -> ClientMsg {
    ClientMsg::JoinCall { room_id, video }
}

/// Waits for `call_joined` in `room`; returns who was already there.
async fn joined(ws: &mut Ws, room: RoomId) -> Vec<ParticipantId> {
    match ws
        .recv_until(|m| matches!(m, ServerMsg::CallJoined { room_id, .. } if *room_id == room))
        .await
    {
        ServerMsg::CallJoined { participants, .. } => {
            participants.iter().map(|p| p.participant_id).collect()
        }
        _ => unreachable!(),
    }
}

/// Waits for someone to join `room`'s call; returns their participant id.
async fn someone_joined(ws: &mut Ws, room: RoomId) -> ParticipantId {
    match ws
        .recv_until(
            |m| matches!(m, ServerMsg::ParticipantJoined { room_id, .. } if *room_id == room),
        )
        .await
    {
        ServerMsg::ParticipantJoined { participant, .. } => participant.participant_id,
        _ => unreachable!(),
    }
}

/// Waits (up to a minute: a dead node takes ~10 s to notice) for `who` to leave `room`.
async fn expect_left(ws: &mut Ws, room: RoomId, who: ParticipantId) {
    let wait = ws.recv_until(|m| {
        matches!(m, ServerMsg::ParticipantLeft { room_id, participant_id, .. }
            if *room_id == room && *participant_id == who)
    });
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .unwrap_or_else(|_| panic!("{who} never left {room}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_rings_signals_and_ends_across_nodes() {
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
    a.befriend(&ann, &bob).await;
    let room: RoomId = direct_room(&a, &ann, &bob).await.parse().unwrap();
    let mut ann_ws = a.ws(&ann).await;
    // Bob has two devices: a laptop on node B and a phone on node C.
    let mut laptop = b.ws(&bob).await;
    let bob_phone = c.sign_in("bob").await;
    let mut phone = c.ws(&bob_phone).await;
    for ws in [&mut ann_ws, &mut laptop, &mut phone] {
        ws.drain().await;
    }

    // Ann calls from node A (which becomes the call's home): both of Bob's devices ring.
    ann_ws.send(&join(room, true)).await;
    assert!(joined(&mut ann_ws, room).await.is_empty());
    let ringing =
        |m: &ServerMsg| matches!(m, ServerMsg::CallRinging { room_id, .. } if *room_id == room);
    for ws in [&mut laptop, &mut phone] {
        let msg = ws.recv_until(ringing).await;
        assert!(
            matches!(msg, ServerMsg::CallRinging { from, video: true, .. } if from == uid(&ann)),
            "{msg:?}"
        );
    }

    // Bob answers on the phone (node C): the laptop on node B stops ringing, and the
    // phone is told who is in the call.
    phone.send(&join(room, true)).await;
    let present = joined(&mut phone, room).await;
    assert_eq!(present.len(), 1, "Ann is in the call");
    let ann_id = present[0];
    let msg = laptop
        .recv_until(|m| matches!(m, ServerMsg::CallRingStopped { .. }))
        .await;
    assert!(
        matches!(
            msg,
            ServerMsg::CallRingStopped {
                reason: RingEnd::Answered,
                ..
            }
        ),
        "{msg:?}"
    );
    let phone_id = someone_joined(&mut ann_ws, room).await;

    // Signaling crosses nodes both ways, with the sender named.
    phone
        .send(&ClientMsg::Offer {
            room_id: room,
            to: ann_id,
            sdp: "v=0 offer from the phone".into(),
        })
        .await;
    let msg = ann_ws
        .recv_until(|m| matches!(m, ServerMsg::Offer { .. }))
        .await;
    assert!(
        matches!(&msg, ServerMsg::Offer { from, from_user, sdp, .. }
            if *from == phone_id && *from_user == uid(&bob) && sdp == "v=0 offer from the phone"),
        "{msg:?}"
    );
    ann_ws
        .send(&ClientMsg::Answer {
            room_id: room,
            to: phone_id,
            sdp: "v=0 answer from Ann".into(),
        })
        .await;
    let msg = phone
        .recv_until(|m| matches!(m, ServerMsg::Answer { .. }))
        .await;
    assert!(
        matches!(&msg, ServerMsg::Answer { from, sdp, .. } if *from == ann_id && sdp == "v=0 answer from Ann"),
        "{msg:?}"
    );
    for i in 0..20 {
        phone
            .send(&ClientMsg::IceCandidate {
                room_id: room,
                to: ann_id,
                candidate: candidate(&format!("candidate {i}")),
            })
            .await;
    }
    for i in 0..20 {
        let msg = ann_ws
            .recv_until(|m| matches!(m, ServerMsg::IceCandidate { .. }))
            .await;
        assert!(
            matches!(&msg, ServerMsg::IceCandidate { candidate, .. }
                if candidate.candidate == format!("candidate {i}")),
            "candidates arrive in order: {msg:?}"
        );
    }
    // A relay to someone not in the call is refused, also from a guest's node.
    phone
        .send(&ClientMsg::Offer {
            room_id: room,
            to: ParticipantId::new(),
            sdp: "v=0".into(),
        })
        .await;
    let msg = phone
        .recv_until(|m| matches!(m, ServerMsg::Error { .. }))
        .await;
    assert!(
        matches!(&msg, ServerMsg::Error { error, .. } if error.code == shared::ErrorCode::UnknownParticipant),
        "{msg:?}"
    );

    // Mute on the phone reaches Ann; Ann's camera off reaches the phone.
    phone
        .send(&ClientMsg::MediaState {
            room_id: room,
            audio_muted: true,
            video_muted: false,
        })
        .await;
    let msg = ann_ws
        .recv_until(|m| matches!(m, ServerMsg::MediaState { .. }))
        .await;
    assert!(
        matches!(msg, ServerMsg::MediaState { participant_id, audio_muted: true, video_muted: false, .. } if participant_id == phone_id),
        "{msg:?}"
    );
    ann_ws
        .send(&ClientMsg::MediaState {
            room_id: room,
            audio_muted: false,
            video_muted: true,
        })
        .await;
    let msg = phone
        .recv_until(|m| matches!(m, ServerMsg::MediaState { .. }))
        .await;
    assert!(
        matches!(msg, ServerMsg::MediaState { participant_id, video_muted: true, .. } if participant_id == ann_id),
        "{msg:?}"
    );
    // The room list on node B counts the call homed on node A.
    let (_, rooms) = b.get("/api/rooms", Some(&bob.token)).await;
    let listed = rooms
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == room.to_string())
        .unwrap();
    assert_eq!(listed["call_participants"], 2, "{listed}");

    // The phone hangs up: Ann sees it leave; the phone is told it is out.
    phone.send(&ClientMsg::LeaveCall { room_id: room }).await;
    phone
        .recv_until(|m| matches!(m, ServerMsg::CallLeft { .. }))
        .await;
    expect_left(&mut ann_ws, room, phone_id).await;
    // A relay from the phone now is refused on its own node.
    phone
        .send(&ClientMsg::Offer {
            room_id: room,
            to: ann_id,
            sdp: "v=0".into(),
        })
        .await;
    let msg = phone
        .recv_until(|m| matches!(m, ServerMsg::Error { .. }))
        .await;
    assert!(
        matches!(&msg, ServerMsg::Error { error, .. } if error.code == shared::ErrorCode::NotInCall),
        "{msg:?}"
    );

    // Ann hangs up, then calls again; Bob declines on the laptop (node B, while the ring
    // is held by node A): Ann hears it and the phone stops ringing.
    ann_ws.send(&ClientMsg::LeaveCall { room_id: room }).await;
    ann_ws
        .recv_until(|m| matches!(m, ServerMsg::CallLeft { .. }))
        .await;
    for ws in [&mut ann_ws, &mut laptop, &mut phone] {
        ws.drain().await;
    }
    ann_ws.send(&join(room, false)).await;
    laptop.recv_until(ringing).await;
    phone.recv_until(ringing).await;
    laptop.send(&ClientMsg::DeclineCall { room_id: room }).await;
    let msg = ann_ws
        .recv_until(|m| matches!(m, ServerMsg::CallDeclined { .. }))
        .await;
    assert!(matches!(msg, ServerMsg::CallDeclined { by, .. } if by == uid(&bob)));
    let msg = phone
        .recv_until(|m| matches!(m, ServerMsg::CallRingStopped { .. }))
        .await;
    assert!(
        matches!(
            msg,
            ServerMsg::CallRingStopped {
                reason: RingEnd::Declined,
                ..
            }
        ),
        "{msg:?}"
    );

    drop((ann_ws, laptop, phone));
    c.stop().await;
    b.stop().await;
    a.stop().await;
    clear_redis(&redis, &prefix).await.unwrap();
}

/// A group room of `owner` on `server` that `others` joined.
async fn group(server: &TestServer, owner: &TestUser, others: &[&TestUser]) -> RoomId {
    let room = server.room(owner, 8).await;
    for user in others {
        let (status, body) = server.join(user, &room).await;
        assert!(status.is_success(), "{body}");
    }
    room.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_nodes_call_participants_leave_and_its_calls_end() {
    let redis = redis_url();
    let prefix = redis_prefix();
    let flags = node_flags(&redis, &prefix);
    let a = TestServer::start_with(Db::Postgres, &flags).await;
    wait_readyz(&a.base, "ok").await;
    let dir = tempfile_dir();
    let port = free_port();
    let mut c = a.another_node(&[]).await;
    c.shutdown_only().await;
    c.base = format!("http://127.0.0.1:{port}");
    c.ws_url = format!("ws://127.0.0.1:{port}/ws");
    let mut child = spawn_node(&a, port, &dir);
    wait_readyz(&c.base, "ok").await;

    let ann = a.user("ann").await;
    let cat = a.user("cat").await;
    let bob = c.user("bob").await;
    // Two group calls: "here" homed on node A (Ann joins first), "there" homed on the
    // real node (Bob joins first).
    let here = group(&a, &ann, &[&bob, &cat]).await;
    let there = group(&a, &bob, &[&ann]).await;
    let mut ann_ws = a.ws(&ann).await;
    let mut cat_ws = a.ws(&cat).await;
    let mut bob_ws = c.ws(&bob).await;
    let mut ann_there = a.ws(&a.sign_in("ann").await).await;

    ann_ws.send(&join(here, true)).await;
    joined(&mut ann_ws, here).await;
    bob_ws.send(&join(here, true)).await;
    let before = joined(&mut bob_ws, here).await;
    assert_eq!(before.len(), 1);
    let bob_here = someone_joined(&mut ann_ws, here).await;
    cat_ws.send(&join(here, true)).await;
    assert_eq!(joined(&mut cat_ws, here).await.len(), 2, "Ann and Bob");

    let mut bob_there_ws = c.ws(&c.sign_in("bob").await).await;
    bob_there_ws.send(&join(there, true)).await;
    joined(&mut bob_there_ws, there).await;
    ann_there.send(&join(there, true)).await;
    assert_eq!(joined(&mut ann_there, there).await.len(), 1, "Bob");

    // SIGKILL the real node: nothing said, its liveness runs out.
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    // Its participant leaves the call homed on A, for everyone there.
    expect_left(&mut ann_ws, here, bob_here).await;
    expect_left(&mut cat_ws, here, bob_here).await;
    // The call it was home to ends for Ann's device in it.
    let wait =
        ann_there.recv_until(|m| matches!(m, ServerMsg::CallLeft { room_id } if *room_id == there));
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .expect("the call homed on the dead node ends");
    // The call on A goes on between Ann and Cat.
    let cat_id: ParticipantId = cat_ws.participant.parse().unwrap();
    ann_ws
        .send(&ClientMsg::Offer {
            room_id: here,
            to: cat_id,
            sdp: "v=0 still here".into(),
        })
        .await;
    cat_ws
        .recv_until(|m| matches!(m, ServerMsg::Offer { sdp, .. } if sdp == "v=0 still here"))
        .await;
    // The next join makes a new home for the other room's call.
    ann_there.send(&join(there, true)).await;
    assert!(joined(&mut ann_there, there).await.is_empty());

    drop((ann_ws, cat_ws, bob_ws, ann_there, bob_there_ws));
    drop(c);
    a.stop().await;
    std::fs::remove_dir_all(&dir).ok();
    clear_redis(&redis, &prefix).await.unwrap();
}

/// `confab-server admin ARGS` against `server`'s database, as an operator runs it
/// beside the running servers (with `extra` flags, e.g. Redis).
fn admin(server: &TestServer, extra: &[&str], args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_confab-server"))
        .args(["--database-url", server.database_url()])
        .args(["--data-dir", server.data_dir().to_str().unwrap()])
        .args(extra)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_close_sockets_on_every_node_at_once() {
    let redis = redis_url();
    let prefix = redis_prefix();
    let flags = node_flags(&redis, &prefix);
    let a = TestServer::start_with(Db::Postgres, &flags).await;
    let b = a.another_node(&[]).await;
    wait_readyz(&a.base, "ok").await;
    wait_readyz(&b.base, "ok").await;
    let eve = a.user("eve").await;
    let eve_tablet = b.sign_in("eve").await;
    let mut on_a = a.ws(&eve).await;
    let mut on_b = b.ws(&eve_tablet).await;

    // Disabling Eve from another process closes her sockets on both nodes.
    admin(
        &a,
        &["--redis-url", &redis, "--redis-prefix", &prefix],
        &["admin", "disable-user", "eve"],
    );
    assert_eq!(on_a.closed().await, close::SESSION_REVOKED);
    assert_eq!(on_b.closed().await, close::SESSION_REVOKED);
    let (status, _) = a.get("/api/users/me", Some(&eve_tablet.token)).await;
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED);

    // Revoking sessions, the operator's command given without Redis: the nodes find
    // the revocation in the database themselves.
    admin(&a, &[], &["admin", "enable-user", "eve"]);
    let eve = b.sign_in("eve").await;
    let mut on_b = b.ws(&eve).await;
    admin(&a, &[], &["admin", "revoke-sessions", "eve"]);
    assert_eq!(on_b.closed().await, close::SESSION_REVOKED);

    b.stop().await;
    a.stop().await;
    clear_redis(&redis, &prefix).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_close_sockets_of_a_single_sqlite_node() {
    // No Redis: one node on SQLite, which looks for revocations every few seconds.
    let server = TestServer::start(Db::Sqlite).await;
    let eve = server.user("eve").await;
    let mut ws = server.ws(&eve).await;
    admin(&server, &[], &["admin", "revoke-sessions", "eve"]);
    assert_eq!(ws.closed().await, close::SESSION_REVOKED);

    let eve = server.sign_in("eve").await;
    let mut ws = server.ws(&eve).await;
    admin(&server, &[], &["admin", "disable-user", "eve"]);
    assert_eq!(ws.closed().await, close::SESSION_REVOKED);
    let (status, _) = server.login("eve", common::PASSWORD).await;
    assert!(
        status.is_client_error(),
        "a disabled account cannot sign in"
    );
    server.stop().await;
}

/// One metrics scrape of a node.
async fn scrape(url: &str) -> String {
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

/// The `node` label of every sample in a scrape (each sample must have one).
fn node_labels(text: &str) -> Vec<String> {
    let mut nodes: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let start = l
                .find("node=\"")
                .unwrap_or_else(|| panic!("a sample without a node label: {l}"))
                + 6;
            l[start..start + l[start..].find('"').unwrap()].to_owned()
        })
        .collect();
    nodes.sort();
    nodes.dedup();
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_name_their_node_and_time_the_websocket() {
    let redis = redis_url();
    let prefix = redis_prefix();
    let mut flags = node_flags(&redis, &prefix);
    flags.extend(["--metrics-bind", "127.0.0.1:0"]);
    let a = TestServer::start_with(Db::Postgres, &flags).await;
    wait_readyz(&a.base, "ok").await;
    // The other node is the real binary, a process of its own (the recorder is one per
    // process), with its metrics on a port the test picks.
    let dir = tempfile_dir();
    let port = free_port();
    let metrics_port = free_port();
    let mut c = a.another_node(&[]).await;
    c.shutdown_only().await;
    c.base = format!("http://127.0.0.1:{port}");
    c.ws_url = format!("ws://127.0.0.1:{port}/ws");
    let mut args = a.args();
    for (flag, value) in [
        ("--bind", format!("127.0.0.1:{port}")),
        ("--data-dir", dir.display().to_string()),
        ("--metrics-bind", format!("127.0.0.1:{metrics_port}")),
    ] {
        let i = args.iter().position(|x| x == flag).unwrap();
        args[i + 1] = value;
    }
    let _child = Reaped(
        Command::new(env!("CARGO_BIN_EXE_confab-server"))
            .args(&args)
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_readyz(&c.base, "ok").await;

    // A call across the two nodes, with a few relays.
    let ann = a.user("ann").await;
    let bob = c.user("bob").await;
    let room = group(&a, &ann, &[&bob]).await;
    let mut ann_ws = a.ws(&ann).await;
    let mut bob_ws = c.ws(&bob).await;
    ann_ws.send(&join(room, true)).await;
    joined(&mut ann_ws, room).await;
    bob_ws.send(&join(room, true)).await;
    let ann_id = joined(&mut bob_ws, room).await[0];
    for _ in 0..5 {
        bob_ws
            .send(&ClientMsg::IceCandidate {
                room_id: room,
                to: ann_id,
                candidate: candidate("c"),
            })
            .await;
        ann_ws
            .recv_until(|m| matches!(m, ServerMsg::IceCandidate { .. }))
            .await;
    }

    let ours = scrape(&a.metrics_url().unwrap()).await;
    let theirs = scrape(&format!("http://127.0.0.1:{metrics_port}/metrics")).await;
    // Every sample names its node, one per process, and the two differ.
    let (ours_nodes, theirs_nodes) = (node_labels(&ours), node_labels(&theirs));
    assert_eq!(ours_nodes.len(), 1, "{ours_nodes:?}");
    assert_eq!(theirs_nodes.len(), 1, "{theirs_nodes:?}");
    assert_ne!(ours_nodes, theirs_nodes);
    // The guest's node timed its relays and forwarded them; the home received them
    // and timed their transit.
    for needle in [
        "confab_ws_handler_duration_seconds_bucket{",
        "type=\"ice_candidate\"",
        "confab_relays_total{",
        "confab_cluster_published_total{",
    ] {
        assert!(theirs.contains(needle), "{needle} missing from:\n{theirs}");
    }
    for needle in [
        "confab_cluster_transit_seconds_bucket{",
        "kind=\"relay\"",
        "confab_ws_handler_duration_seconds_count{",
        "type=\"join_call\"",
    ] {
        assert!(ours.contains(needle), "{needle} missing from:\n{ours}");
    }

    drop((ann_ws, bob_ws));
    drop(c);
    a.stop().await;
    std::fs::remove_dir_all(&dir).ok();
    clear_redis(&redis, &prefix).await.unwrap();
}

/// How many events of `kind` a node's metrics say it received from the other nodes.
fn received(text: &str, kind: &str) -> f64 {
    let label = format!("kind=\"{kind}\"");
    text.lines()
        .filter(|l| l.starts_with("confab_cluster_received_total{") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// How many relays a node's metrics say it received from the other nodes.
fn relays_received(text: &str) -> f64 {
    received(text, "relay")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_between_guests_of_a_third_nodes_call_go_in_one_hop() {
    let redis = redis_url();
    let prefix = redis_prefix();
    let flags = node_flags(&redis, &prefix);
    let a = TestServer::start_with(Db::Postgres, &flags).await;
    let b = a.another_node(&[]).await;
    // The call's home is the real binary, a process of its own, so its metrics count
    // only what reached it.
    let dir = tempfile_dir();
    let (_child, home, metrics) = spawn_metered_node(&a, &dir).await;
    for node in [&a.base, &b.base] {
        wait_readyz(node, "ok").await;
    }

    // Hal starts the call on the home node; Ann (node A) and Bob (node B) are guests.
    let hal = a.user("hal").await;
    let ann = a.user("ann").await;
    let bob = a.user("bob").await;
    let room = group(&a, &hal, &[&ann, &bob]).await;
    let mut hal_ws = home.ws(&hal).await;
    let mut ann_ws = a.ws(&ann).await;
    let mut bob_ws = b.ws(&bob).await;
    hal_ws.send(&join(room, true)).await;
    joined(&mut hal_ws, room).await;
    ann_ws.send(&join(room, true)).await;
    let hal_id = joined(&mut ann_ws, room).await[0];
    bob_ws.send(&join(room, true)).await;
    assert_eq!(joined(&mut bob_ws, room).await.len(), 2, "Hal and Ann");
    let bob_id = someone_joined(&mut ann_ws, room).await;
    let ann_id: ParticipantId = ann_ws.participant.parse().unwrap();
    let before = relays_received(&scrape(&metrics).await);

    // Ann and Bob signal each other, in order, and none of it passes through the home.
    for i in 0..20 {
        ann_ws
            .send(&ClientMsg::IceCandidate {
                room_id: room,
                to: bob_id,
                candidate: candidate(&format!("from ann {i}")),
            })
            .await;
    }
    for i in 0..20 {
        let msg = bob_ws
            .recv_until(|m| matches!(m, ServerMsg::IceCandidate { .. }))
            .await;
        assert!(
            matches!(&msg, ServerMsg::IceCandidate { from, candidate, .. }
                if *from == ann_id && candidate.candidate == format!("from ann {i}")),
            "{msg:?}"
        );
    }
    bob_ws
        .send(&ClientMsg::Answer {
            room_id: room,
            to: ann_id,
            sdp: "v=0 answer from Bob".into(),
        })
        .await;
    let msg = ann_ws
        .recv_until(|m| matches!(m, ServerMsg::Answer { .. }))
        .await;
    assert!(
        matches!(&msg, ServerMsg::Answer { from, sdp, .. } if *from == bob_id && sdp == "v=0 answer from Bob"),
        "{msg:?}"
    );
    assert_eq!(
        relays_received(&scrape(&metrics).await),
        before,
        "the home received none of the guests' relays"
    );
    // A relay to the home's own participant is received there (what the count counts).
    ann_ws
        .send(&ClientMsg::Offer {
            room_id: room,
            to: hal_id,
            sdp: "v=0 offer to Hal".into(),
        })
        .await;
    hal_ws
        .recv_until(|m| matches!(m, ServerMsg::Offer { sdp, .. } if sdp == "v=0 offer to Hal"))
        .await;
    assert_eq!(relays_received(&scrape(&metrics).await), before + 1.0);

    // Bob hangs up: Ann's node learns it with the leave, so her relay to him goes to the
    // home, which refuses it.
    bob_ws.send(&ClientMsg::LeaveCall { room_id: room }).await;
    expect_left(&mut ann_ws, room, bob_id).await;
    ann_ws
        .send(&ClientMsg::Offer {
            room_id: room,
            to: bob_id,
            sdp: "v=0".into(),
        })
        .await;
    let msg = ann_ws
        .recv_until(|m| matches!(m, ServerMsg::Error { .. }))
        .await;
    assert!(
        matches!(&msg, ServerMsg::Error { error, .. } if error.code == shared::ErrorCode::UnknownParticipant),
        "{msg:?}"
    );
    // Bob comes back: the relays find him on his node again.
    bob_ws.send(&join(room, true)).await;
    joined(&mut bob_ws, room).await;
    let bob_again = someone_joined(&mut ann_ws, room).await;
    ann_ws
        .send(&ClientMsg::Offer {
            room_id: room,
            to: bob_again,
            sdp: "v=0 welcome back".into(),
        })
        .await;
    bob_ws
        .recv_until(|m| matches!(m, ServerMsg::Offer { sdp, .. } if sdp == "v=0 welcome back"))
        .await;

    drop((hal_ws, ann_ws, bob_ws));
    drop(home);
    b.stop().await;
    a.stop().await;
    std::fs::remove_dir_all(&dir).ok();
    clear_redis(&redis, &prefix).await.unwrap();
}

/// The real `confab-server` binary as another node of `server`'s cluster, with its own
/// metrics (the recorder is one per process, so they count only what reached it).
/// Returns the process, the test's client for it and its metrics URL.
async fn spawn_metered_node(
    server: &TestServer,
    dir: &std::path::Path,
) -> (Reaped, TestServer, String) {
    let (port, metrics_port) = (free_port(), free_port());
    let mut node = server.another_node(&[]).await;
    node.shutdown_only().await;
    node.base = format!("http://127.0.0.1:{port}");
    node.ws_url = format!("ws://127.0.0.1:{port}/ws");
    let child = spawn_node_with(
        server,
        port,
        dir,
        &["--metrics-bind".into(), format!("127.0.0.1:{metrics_port}")],
    );
    wait_readyz(&node.base, "ok").await;
    (
        child,
        node,
        format!("http://127.0.0.1:{metrics_port}/metrics"),
    )
}

/// The user events `node_metrics` counts, once `ws` got the message `body` (a marker sent
/// after everything to count: one node's events reach another in the order sent).
async fn users_received_after(ws: &mut Ws, body: &str, node_metrics: &str) -> f64 {
    expect_message(ws, body).await;
    received(&scrape(node_metrics).await, "users")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_events_go_only_to_the_nodes_of_their_recipients() {
    let redis = redis_url();
    let prefix = redis_prefix();
    let flags = node_flags(&redis, &prefix);
    let a = TestServer::start_with(Db::Postgres, &flags).await;
    let b = a.another_node(&[]).await;
    let dir = tempfile_dir();
    let (_child, c, c_metrics) = spawn_metered_node(&a, &dir).await;
    for node in [&a.base, &b.base] {
        wait_readyz(node, "ok").await;
    }

    // Ann (node A) and Bob (node B) share a room; Cyril (Cy), alone on node C, shares another
    // room with Ann only.
    let ann = a.user("ann").await;
    let bob = a.user("bob").await;
    let cy = a.user("cyril").await;
    let room = group(&a, &ann, &[&bob]).await;
    let cy_room = group(&a, &ann, &[&cy]).await;
    let mut ann_ws = a.ws(&ann).await;
    let mut bob_ws = b.ws(&bob).await;
    let mut cy_ws = c.ws(&cy).await;

    // What node C receives between two of Ann's messages to Cy's room, with nothing
    // else in between: what one such message costs it.
    say(&mut ann_ws, cy_room, "marker 1").await;
    let first = users_received_after(&mut cy_ws, "marker 1", &c_metrics).await;
    say(&mut ann_ws, cy_room, "marker 2").await;
    let second = users_received_after(&mut cy_ws, "marker 2", &c_metrics).await;
    let per_marker = second - first;
    assert!(per_marker >= 1.0, "node C received Ann's message to Cy");

    // Ann and Bob talk (messages, typing, receipts, an edit): Bob gets all of it...
    let room_str = room.to_string();
    let mut seqs = Vec::new();
    for i in 0..10 {
        ann_ws.send(&ClientMsg::Typing { room_id: room }).await;
        seqs.push(say(&mut ann_ws, room, &format!("to Bob {i}")).await);
    }
    for (i, seq) in seqs.iter().enumerate() {
        assert_eq!(
            expect_message(&mut bob_ws, &format!("to Bob {i}")).await,
            *seq
        );
    }
    bob_ws
        .send(&ClientMsg::Read {
            room_id: room,
            seq: seqs[9],
        })
        .await;
    ann_ws
        .recv_until(|m| matches!(m, ServerMsg::Read { seq, .. } if *seq == seqs[9]))
        .await;
    say(&mut bob_ws, room, "to Ann").await;
    expect_message(&mut ann_ws, "to Ann").await;
    // ...and node C, with none of their connections, none of it.
    say(&mut ann_ws, cy_room, "marker 3").await;
    let third = users_received_after(&mut cy_ws, "marker 3", &c_metrics).await;
    assert_eq!(
        third - second,
        per_marker,
        "node C received only Ann's message to Cy, none of Ann and Bob's events"
    );

    // Bob's phone connects to node C while Ann keeps writing: whatever its catch-up
    // (after the welcome) does not have comes live, so it misses nothing.
    let bob_phone = c.sign_in("bob").await;
    let (sent, (mut phone_ws, caught)) = tokio::join!(
        async {
            let mut sent = Vec::new();
            for i in 0..30 {
                sent.push(
                    a.post_message(&ann, &room_str, &format!("race {i}"))
                        .await
                        .seq,
                );
            }
            sent
        },
        async {
            let ws = c.ws(&bob_phone).await;
            let caught: Vec<u64> = c
                .all_messages(&bob_phone, &room_str)
                .await
                .iter()
                .map(|m| m.seq)
                .collect();
            (ws, caught)
        }
    );
    let mut missing: Vec<u64> = sent.into_iter().filter(|s| !caught.contains(s)).collect();
    eprintln!(
        "{} of 30 messages came live to the new device",
        missing.len()
    );
    while !missing.is_empty() {
        let msg = phone_ws
            .recv_until(|m| matches!(m, ServerMsg::MessageCreated { .. }))
            .await;
        if let ServerMsg::MessageCreated { message } = msg {
            missing.retain(|s| *s != message.seq);
        }
    }
    // Node C now gets Bob's events, and Bob's first device still does.
    let before = received(&scrape(&c_metrics).await, "users");
    say(&mut ann_ws, room, "to both devices").await;
    expect_message(&mut phone_ws, "to both devices").await;
    expect_message(&mut bob_ws, "to both devices").await;
    assert!(received(&scrape(&c_metrics).await, "users") > before);

    drop((ann_ws, bob_ws, cy_ws, phone_ws));
    drop(c);
    b.stop().await;
    a.stop().await;
    std::fs::remove_dir_all(&dir).ok();
    clear_redis(&redis, &prefix).await.unwrap();
}
