//! The messenger end to end, on SQLite and PostgreSQL: the real server binary killed with
//! SIGKILL while clients send, unread counts across devices, ringing direct calls, group
//! calls, and what a block does in a shared group.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Db, TestServer, TestUser, Ws};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared::RoomId;
use shared::api::Message;
use shared::signal::{ClientMsg, RingEnd, ServerMsg};
use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

on_both_databases!(
    acknowledged_messages_survive_kill_9,
    unread_counts_follow_the_read_marker_on_every_device,
    a_direct_call_rings_until_answered_declined_or_missed,
    group_members_see_a_call_running,
    a_blocked_author_is_flagged_and_never_notifies,
    contacts_see_each_other_online_idle_and_offline,
);

async fn send(
    server: &TestServer,
    user: &TestUser,
    room: &str,
    key: &str,
    body: &str,
) -> reqwest::Result<(StatusCode, Value)> {
    server.try_send_message(user, room, key, body).await
}

async fn post(server: &TestServer, user: &TestUser, room: &str, body: &str) -> Message {
    server.post_message(user, room, body).await
}

/// The real `confab-server` binary on `port`.
fn spawn_server(server: &TestServer, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_confab-server"))
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(server.data_dir())
        .args(["--database-url", server.database_url()])
        .args([
            "--auth-rate-per-ip",
            "100000",
            "--auth-rate-per-account",
            "100000",
        ])
        .args(["--message-rate", "100000"])
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_healthy(base: &str) {
    for _ in 0..200 {
        if let Ok(r) = reqwest::get(format!("{base}/readyz")).await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not come up");
}

async fn acknowledged_messages_survive_kill_9(db: Db) {
    let mut server = TestServer::unstarted(db, &[]).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    server.base = format!("http://127.0.0.1:{port}");
    let mut child = spawn_server(&server, port);
    wait_healthy(&server.base).await;
    let ann = server.user("ann").await;
    let room = server.room(&ann, 8).await;

    // Four senders, 40 messages each, every one retried with its own key until it is
    // acknowledged: through the crash and the restart.
    let acked: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let server = Arc::new(server);
    let mut senders = Vec::new();
    for s in 0..4 {
        let (server, ann, room, acked) = (server.clone(), ann.clone(), room.clone(), acked.clone());
        senders.push(tokio::spawn(async move {
            for n in 0..40 {
                let key = format!("s{s}-m{n}");
                loop {
                    match send(&server, &ann, &room, &key, &key).await {
                        Ok((status, m)) if status.is_success() => {
                            acked
                                .lock()
                                .unwrap()
                                .insert(key.clone(), m["id"].as_str().unwrap().to_owned());
                            break;
                        }
                        Ok((status, m)) => {
                            assert!(
                                status.is_server_error()
                                    || status == StatusCode::SERVICE_UNAVAILABLE,
                                "{status}: {m}"
                            );
                        }
                        Err(_) => {}
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }));
    }
    // Kill it mid-way, without any chance to clean up.
    while acked.lock().unwrap().len() < 40 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before_crash: HashMap<String, String> = acked.lock().unwrap().clone();
    assert!(before_crash.len() < 160, "the crash came mid-way");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut child = spawn_server(&server, port);
    wait_healthy(&server.base).await;
    for s in senders {
        s.await.unwrap();
    }

    let messages = server.all_messages(&ann, &room).await;
    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), 160);
    // Every message acknowledged before the crash is there, with the id it was given.
    let by_key: HashMap<String, &Message> = messages
        .iter()
        .map(|m| (m.client_id.clone().unwrap(), m))
        .collect();
    for (key, id) in &before_crash {
        assert_eq!(by_key[key].id.to_string(), *id, "{key} kept its id");
    }
    // None twice, none missing, seqs still dense.
    assert_eq!(messages.len(), 160, "each key stored exactly once");
    let keys: HashSet<&String> = by_key.keys().collect();
    assert_eq!(keys.len(), 160);
    assert_eq!(
        messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=160).collect::<Vec<_>>()
    );
    child.kill().unwrap();
    child.wait().unwrap();
    Arc::into_inner(server).unwrap().stop().await;
}

async fn summary(server: &TestServer, user: &TestUser, room: &str) -> Value {
    let (status, rooms) = server.get("/api/rooms", Some(&user.token)).await;
    assert_eq!(status, StatusCode::OK, "{rooms}");
    rooms
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == room)
        .cloned()
        .unwrap_or_else(|| panic!("{room} not in {rooms}"))
}

async fn unread_counts_follow_the_read_marker_on_every_device(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let room = server.room(&ann, 8).await;
    server.join(&bob, &room).await;
    let bob_phone = server.sign_in("bob").await;
    let mut phone_ws = server.ws(&bob_phone).await;

    let mut sent = Vec::new();
    for i in 0..5 {
        sent.push(post(&server, &ann, &room, &format!("m{i} @bob")).await);
    }
    post(&server, &bob, &room, "my own message does not count").await;
    let s = summary(&server, &bob, &room).await;
    assert_eq!(
        s["unread_count"], 0,
        "sending moved my marker past everything: {s}"
    );
    for i in 5..8 {
        sent.push(post(&server, &ann, &room, &format!("m{i}")).await);
    }
    let s = summary(&server, &bob_phone, &room).await;
    assert_eq!(s["unread_count"], 3, "{s}");
    assert_eq!(s["mention_count"], 0, "the mentions were read: {s}");
    assert_eq!(s["last_message"]["body"], "m7");
    let s = summary(&server, &ann, &room).await;
    assert_eq!(s["unread_count"], 0, "{s}");

    // A deleted message no longer counts; reading on the laptop clears the phone's count.
    server
        .delete(
            &format!("/api/rooms/{room}/messages/{}", sent[7].id),
            Some(&ann.token),
        )
        .await;
    let s = summary(&server, &bob_phone, &room).await;
    assert_eq!(s["unread_count"], 2, "{s}");
    assert_eq!(
        s["last_message"]["body"], "m6",
        "the preview skips the tombstone"
    );
    phone_ws.drain().await;
    let (status, _) = server
        .post(
            &format!("/api/rooms/{room}/read"),
            Some(&bob.token),
            json!({"seq": sent[6].seq}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let msg = phone_ws
        .recv_until(|m| matches!(m, ServerMsg::Read { .. }))
        .await;
    assert!(matches!(msg, ServerMsg::Read { seq, .. } if seq == sent[6].seq));
    let s = summary(&server, &bob_phone, &room).await;
    assert_eq!(s["unread_count"], 0, "{s}");
    assert_eq!(s["last_read_seq"], sent[6].seq);
    server.stop().await;
}

/// Makes two users contacts and opens their direct room.
async fn direct_room(server: &TestServer, a: &TestUser, b: &TestUser) -> String {
    server.befriend(a, b).await;
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

fn join(room_id: RoomId, video: bool) -> ClientMsg {
    ClientMsg::JoinCall { room_id, video }
}

async fn a_direct_call_rings_until_answered_declined_or_missed(db: Db) {
    let server = TestServer::start_with(db, &["--ring-timeout", "2"]).await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let room = direct_room(&server, &ann, &bob).await;
    let room_id: RoomId = room.parse().unwrap();
    let bob_second = server.sign_in("bob").await;
    let mut ann_ws = server.ws(&ann).await;
    let mut bob_laptop = server.ws(&bob).await;
    let mut bob_phone = server.ws(&bob_second).await;
    for ws in [&mut ann_ws, &mut bob_laptop, &mut bob_phone] {
        ws.drain().await;
    }
    let ringing = |m: &ServerMsg| matches!(m, ServerMsg::CallRinging { .. });
    let stopped = |m: &ServerMsg| matches!(m, ServerMsg::CallRingStopped { .. });

    // Answered on one device: the ring stops on the other.
    ann_ws.send(&join(room_id, false)).await;
    for ws in [&mut bob_laptop, &mut bob_phone] {
        let msg = ws.recv_until(ringing).await;
        assert!(
            matches!(&msg, ServerMsg::CallRinging { room_id: r, from, video: false } if *r == room_id && from.to_string() == ann.id),
            "{msg:?}"
        );
    }
    bob_laptop.send(&join(room_id, true)).await;
    let msg = bob_phone.recv_until(stopped).await;
    assert!(matches!(
        msg,
        ServerMsg::CallRingStopped {
            reason: RingEnd::Answered,
            ..
        }
    ));
    bob_laptop.send(&ClientMsg::LeaveCall { room_id }).await;
    ann_ws.send(&ClientMsg::LeaveCall { room_id }).await;
    for ws in [&mut ann_ws, &mut bob_laptop, &mut bob_phone] {
        ws.drain().await;
    }

    // Declined: the caller hears it, every callee device stops.
    ann_ws.send(&join(room_id, true)).await;
    bob_phone.recv_until(ringing).await;
    bob_laptop.recv_until(ringing).await;
    bob_phone.send(&ClientMsg::DeclineCall { room_id }).await;
    let msg = ann_ws
        .recv_until(|m| matches!(m, ServerMsg::CallDeclined { .. }))
        .await;
    assert!(matches!(msg, ServerMsg::CallDeclined { by, .. } if by.to_string() == bob.id));
    let msg = bob_laptop.recv_until(stopped).await;
    assert!(matches!(
        msg,
        ServerMsg::CallRingStopped {
            reason: RingEnd::Declined,
            ..
        }
    ));
    // Declining again: nothing rings any more.
    bob_phone.send(&ClientMsg::DeclineCall { room_id }).await;
    let msg = bob_phone
        .recv_until(|m| matches!(m, ServerMsg::Error { .. }))
        .await;
    assert!(matches!(msg, ServerMsg::Error { .. }));
    ann_ws.send(&ClientMsg::LeaveCall { room_id }).await;
    for ws in [&mut ann_ws, &mut bob_laptop, &mut bob_phone] {
        ws.drain().await;
    }

    // Nobody answers: both sides get call_missed and the timeline a missed-call message.
    ann_ws.send(&join(room_id, true)).await;
    bob_laptop.recv_until(ringing).await;
    for ws in [&mut ann_ws, &mut bob_laptop] {
        let msg = ws
            .recv_until(|m| matches!(m, ServerMsg::CallMissed { .. }))
            .await;
        assert!(matches!(msg, ServerMsg::CallMissed { room_id: r } if r == room_id));
    }
    let msg = bob_phone
        .recv_until(|m| matches!(m, ServerMsg::MessageCreated { .. }))
        .await;
    let ServerMsg::MessageCreated { message } = msg else {
        unreachable!()
    };
    assert_eq!(message.kind, shared::api::MessageKind::MissedCall);
    assert_eq!(message.body, "Missed video call");
    assert_eq!(message.author.map(|a| a.to_string()), Some(ann.id.clone()));
    let s = summary(&server, &bob, &room).await;
    assert_eq!(
        s["unread_count"], 1,
        "a missed call is unread for the callee: {s}"
    );

    // Once they are no longer contacts, the old room cannot be called (or written to).
    ann_ws.send(&ClientMsg::LeaveCall { room_id }).await;
    let (status, _) = server
        .delete(&format!("/api/contacts/{}", bob.id), Some(&ann.token))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    ann_ws.drain().await;
    ann_ws.send(&join(room_id, true)).await;
    let msg = ann_ws
        .recv_until(|m| matches!(m, ServerMsg::Error { .. }))
        .await;
    assert!(
        matches!(&msg, ServerMsg::Error { error, .. } if error.code == shared::ErrorCode::CannotMessageUser),
        "{msg:?}"
    );
    let (status, body) = send(&server, &ann, &room, "after", "hello?").await.unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "cannot_message_user");
    let history = server.all_messages(&bob, &room).await;
    assert_eq!(history.len(), 1, "the history stays readable");
    server.stop().await;
}

async fn group_members_see_a_call_running(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let room = server.room(&ann, 8).await;
    server.join(&bob, &room).await;
    let room_id: RoomId = room.parse().unwrap();
    let mut ann_ws = server.ws(&ann).await;
    let mut bob_ws: Ws = server.ws(&bob).await;
    ann_ws.drain().await;
    bob_ws.drain().await;

    ann_ws.send(&join(room_id, true)).await;
    let msg = bob_ws.recv().await;
    assert!(
        matches!(msg, ServerMsg::CallStarted { room_id: r, participant_count: 1 } if r == room_id),
        "a group call does not ring; members see it running: {msg:?}"
    );
    let s = summary(&server, &bob, &room).await;
    assert_eq!(s["call_participants"], 1);
    ann_ws.send(&ClientMsg::LeaveCall { room_id }).await;
    let msg = bob_ws.recv().await;
    assert!(
        matches!(msg, ServerMsg::CallEnded { room_id: r } if r == room_id),
        "{msg:?}"
    );
    bob_ws.expect_silence().await;
    server.stop().await;
}

async fn a_blocked_author_is_flagged_and_never_notifies(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let cat = server.user("cat").await;
    let room = server.room(&ann, 8).await;
    server.join(&bob, &room).await;
    server.join(&cat, &room).await;
    let (status, _) = server
        .request(
            Method::PUT,
            &format!("/api/blocks/{}", bob.id),
            Some(&ann.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let mut ann_ws = server.ws(&ann).await;
    let mut cat_ws = server.ws(&cat).await;
    ann_ws.drain().await;
    cat_ws.drain().await;

    // Bob's message is stored and delivered to both; Ann's copy is flagged.
    let m = post(&server, &bob, &room, "hey @ann and @cat").await;
    let ServerMsg::MessageCreated { message: for_ann } = ann_ws.recv().await else {
        panic!("expected the message")
    };
    let ServerMsg::MessageCreated { message: for_cat } = cat_ws.recv().await else {
        panic!("expected the message")
    };
    assert_eq!(for_ann.id, m.id);
    assert!(for_ann.author_blocked);
    assert!(!for_cat.author_blocked);
    // It gives Ann no unread or mention count; Cat gets both.
    let s = summary(&server, &ann, &room).await;
    assert_eq!(
        (s["unread_count"].as_u64(), s["mention_count"].as_u64()),
        (Some(0), Some(0)),
        "{s}"
    );
    let s = summary(&server, &cat, &room).await;
    assert_eq!(
        (s["unread_count"].as_u64(), s["mention_count"].as_u64()),
        (Some(1), Some(1)),
        "{s}"
    );
    // Pages flag it for Ann too.
    let (_, page) = server
        .get(&format!("/api/rooms/{room}/messages"), Some(&ann.token))
        .await;
    assert_eq!(page["messages"][0]["author_blocked"], true);
    let (_, page) = server
        .get(&format!("/api/rooms/{room}/messages"), Some(&cat.token))
        .await;
    assert_eq!(page["messages"][0]["author_blocked"], false);

    // Bob's typing never reaches Ann; Cat sees it.
    let mut bob_ws = server.ws(&bob).await;
    ann_ws.drain().await;
    cat_ws.drain().await;
    bob_ws
        .send(&ClientMsg::Typing {
            room_id: room.parse().unwrap(),
        })
        .await;
    assert!(matches!(cat_ws.recv().await, ServerMsg::Typing { .. }));
    ann_ws.expect_silence().await;
    server.stop().await;
}

async fn contacts_see_each_other_online_idle_and_offline(db: Db) {
    use shared::api::PresenceStatus;
    use shared::signal::OwnPresence;
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    // Contacts who share no room.
    server.befriend(&ann, &bob).await;
    let mut ann_ws = server.ws(&ann).await;
    ann_ws.drain().await;
    let presence = |m: &ServerMsg| matches!(m, ServerMsg::Presence { .. });

    let mut bob_ws = server.ws(&bob).await;
    let msg = ann_ws.recv_until(presence).await;
    assert!(
        matches!(
            msg,
            ServerMsg::Presence {
                status: PresenceStatus::Online,
                ..
            }
        ),
        "{msg:?}"
    );
    bob_ws
        .send(&ClientMsg::SetPresence {
            status: OwnPresence::Idle,
        })
        .await;
    let msg = ann_ws.recv_until(presence).await;
    assert!(
        matches!(
            msg,
            ServerMsg::Presence {
                status: PresenceStatus::Idle,
                ..
            }
        ),
        "{msg:?}"
    );
    // A second device that is active makes Bob online again.
    let bob2 = server.sign_in("bob").await;
    let _bob_phone = server.ws(&bob2).await;
    let msg = ann_ws.recv_until(presence).await;
    assert!(
        matches!(
            msg,
            ServerMsg::Presence {
                status: PresenceStatus::Online,
                ..
            }
        ),
        "{msg:?}"
    );
    bob_ws
        .send(&ClientMsg::SetPresence {
            status: OwnPresence::Idle,
        })
        .await;
    ann_ws.expect_silence().await;
    let (_, contacts) = server.get("/api/contacts", Some(&ann.token)).await;
    assert_eq!(contacts[0]["presence"], "online", "{contacts}");
    drop(_bob_phone);
    let msg = ann_ws.recv_until(presence).await;
    assert!(
        matches!(
            msg,
            ServerMsg::Presence {
                status: PresenceStatus::Idle,
                ..
            }
        ),
        "{msg:?}"
    );
    bob_ws.stream.close(None).await.unwrap();
    let msg = ann_ws.recv_until(presence).await;
    assert!(
        matches!(
            msg,
            ServerMsg::Presence {
                status: PresenceStatus::Offline,
                ..
            }
        ),
        "{msg:?}"
    );

    // A fresh connection's snapshot lists contacts who are around.
    let _bob_again = server.ws(&bob).await;
    let mut ws = Ws::connect(&server.ws_url).await;
    ws.send(&ClientMsg::Auth {
        token: ann.token.clone(),
        protocol_version: shared::signal::PROTOCOL_VERSION,
    })
    .await;
    assert!(matches!(ws.recv().await, ServerMsg::Welcome { .. }));
    let ServerMsg::PresenceSnapshot { online } = ws.recv().await else {
        panic!("expected the snapshot")
    };
    assert_eq!(online.len(), 1);
    assert_eq!(online[0].user_id.to_string(), bob.id);
    server.stop().await;
}
