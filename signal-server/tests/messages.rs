//! Room timelines over real HTTP and WebSocket, on SQLite and PostgreSQL: idempotent
//! sends, dense seqs, pages, edits, deletions, reactions, catch-up, receipts, typing.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Db, TestServer, TestUser, Ws};
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared::api::Message;
use shared::signal::{ClientMsg, ServerMsg};
use shared::{ErrorCode, RoomId};
use std::collections::HashSet;
use std::time::Duration;

on_both_databases!(
    sending_checks_membership_and_input,
    a_retried_send_is_stored_once,
    seqs_are_dense_under_concurrent_senders,
    pages_cover_the_timeline,
    who_may_edit_delete_and_react,
    changes_reach_the_room_on_the_websocket,
    read_markers_and_receipts,
    an_offline_client_catches_up_exactly,
    history_survives_a_restart,
    sends_are_rate_limited_per_user,
);

async fn send(
    server: &TestServer,
    user: &TestUser,
    room: &str,
    key: &str,
    body: &str,
) -> (StatusCode, Value) {
    server.send_message(user, room, key, body).await
}

async fn post(server: &TestServer, user: &TestUser, room: &str, body: &str) -> Message {
    server.post_message(user, room, body).await
}

/// A group owned by `owner` that `others` joined.
async fn group(server: &TestServer, owner: &TestUser, others: &[&TestUser]) -> String {
    let room = server.room(owner, 8).await;
    for u in others {
        let (status, body) = server.join(u, &room).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    room
}

async fn page(server: &TestServer, user: &TestUser, room: &str, query: &str) -> Value {
    let (status, body) = server
        .get(
            &format!("/api/rooms/{room}/messages{query}"),
            Some(&user.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    body
}

fn seqs(page: &Value) -> Vec<u64> {
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect()
}

async fn sending_checks_membership_and_input(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let room = group(&server, &ann, &[]).await;

    // Bob is not a member: the room does not exist for him.
    let (status, body) = send(&server, &bob, &room, "k1", "hi").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    let (status, _) = send(&server, &ann, &RoomId::new().to_string(), "k1", "hi").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = send(&server, &ann, "not-a-uuid", "k1", "hi").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["code"].is_string());

    // The key is required and bounded; the body must have content and a size.
    let resp = server
        .http
        .post(format!("{}/api/rooms/{room}/messages", server.base))
        .bearer_auth(&ann.token)
        .json(&json!({"body": "no key"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["fields"]["idempotency_key"].is_string(),
        "{body}"
    );
    for (key, text, field) in [
        ("k".repeat(65), "hi".to_owned(), "idempotency_key"),
        ("k2".to_owned(), "   \n\t ".to_owned(), "body"),
        ("k3".to_owned(), String::new(), "body"),
        ("k4".to_owned(), "x".repeat(4001), "body"),
        ("k5".to_owned(), "bell\u{7}".to_owned(), "body"),
    ] {
        let (status, body) = send(&server, &ann, &room, &key, &text).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{key}: {body}");
        assert!(body["error"]["fields"][field].is_string(), "{body}");
    }
    let (status, _) = send(&server, &ann, &room, "k6", &"é".repeat(4000)).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "4000 characters, more bytes, is fine"
    );

    // Wrong JSON types, a missing body and a reply to nothing: JSON errors, never a 500.
    for bad in [
        json!({"body": 5}),
        json!({"body": "x", "reply_to": "nope"}),
        json!("just a string"),
    ] {
        let resp = server
            .http
            .post(format!("{}/api/rooms/{room}/messages", server.base))
            .bearer_auth(&ann.token)
            .header("idempotency-key", "k7")
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_client_error(), "{bad}: {}", resp.status());
        let body: Value = resp.json().await.unwrap();
        assert!(body["error"]["code"].is_string(), "{body}");
    }
    let resp = server
        .http
        .post(format!("{}/api/rooms/{room}/messages", server.base))
        .bearer_auth(&ann.token)
        .header("idempotency-key", "k8")
        .json(&json!({"body": "a reply", "reply_to": uuid::Uuid::new_v4()}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // A body over the request limit is refused with the JSON shape.
    let (status, body) = send(&server, &ann, &room, "k9", &"x".repeat(70_000)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");

    // Pages: limits and anchors are checked.
    for q in [
        "?limit=0",
        "?limit=101",
        "?before=3&after=1",
        "?limit=abc",
        "?before=-1",
    ] {
        let (status, body) = server
            .get(&format!("/api/rooms/{room}/messages{q}"), Some(&ann.token))
            .await;
        assert!(status.is_client_error(), "{q}: {status}");
        assert!(body["error"]["code"].is_string(), "{q}: {body}");
    }
    let (status, _) = server
        .get(&format!("/api/rooms/{room}/messages"), Some(&bob.token))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

async fn a_retried_send_is_stored_once(db: Db) {
    let server = TestServer::start_with(db, &["--message-rate", "1000"]).await;
    let ann = server.user("ann").await;
    let room = group(&server, &ann, &[]).await;

    let (status, first) = send(&server, &ann, &room, "key-1", "hello").await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(first["seq"], 1);
    assert_eq!(first["client_id"], "key-1");
    let (status, again) = send(&server, &ann, &room, "key-1", "hello").await;
    assert_eq!(status, StatusCode::OK, "a retry answers 200");
    assert_eq!(again["id"], first["id"]);
    let (status, body) = send(&server, &ann, &room, "key-1", "something else").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // Ten retries of one key racing each other: one message, every answer the same id.
    let answers = futures_util::future::join_all(
        (0..10).map(|_| send(&server, &ann, &room, "key-race", "raced")),
    )
    .await;
    let ids: HashSet<String> = answers
        .iter()
        .map(|(status, m)| {
            assert!(status.is_success(), "{m}");
            m["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(
        answers
            .iter()
            .filter(|(s, _)| *s == StatusCode::CREATED)
            .count(),
        1
    );
    let all = page(&server, &ann, &room, "?limit=100").await;
    assert_eq!(
        seqs(&all),
        vec![1, 2],
        "no seq was lost to the refused retries"
    );

    // The same key over the WebSocket returns the original too.
    let mut ws = server.ws(&ann).await;
    ws.send(&ClientMsg::SendMessage {
        room_id: room.parse().unwrap(),
        client_id: "key-1".into(),
        body: "hello".into(),
        reply_to: None,
        attachments: Vec::new(),
    })
    .await;
    let ack = ws
        .recv_until(|m| matches!(m, ServerMsg::MessageAck { .. }))
        .await;
    let ServerMsg::MessageAck { message, .. } = ack else {
        unreachable!()
    };
    assert_eq!(message.id.to_string(), first["id"].as_str().unwrap());
    server.stop().await;
}

async fn seqs_are_dense_under_concurrent_senders(db: Db) {
    let server = TestServer::start_with(db, &["--message-rate", "1000"]).await;
    let owner = server.user("owner").await;
    let room = server.room(&owner, 8).await;
    let mut users = Vec::new();
    for i in 0..20 {
        let u = server.user(&format!("sender{i}")).await;
        server.join(&u, &room).await;
        users.push(u);
    }
    let sends = users.iter().enumerate().flat_map(|(i, u)| {
        let server = &server;
        let room = &room;
        (0..5).map(move |n| async move {
            let (status, m) =
                send(server, u, room, &format!("u{i}-m{n}"), &format!("{i}/{n}")).await;
            assert_eq!(status, StatusCode::CREATED, "{m}");
            m["seq"].as_u64().unwrap()
        })
    });
    let mut got = futures_util::future::join_all(sends).await;
    got.sort_unstable();
    assert_eq!(
        got,
        (1..=100).collect::<Vec<u64>>(),
        "1..100, no gap, no repeat"
    );
    server.stop().await;
}

async fn pages_cover_the_timeline(db: Db) {
    let server = TestServer::start_with(db, &["--message-rate", "1000"]).await;
    let ann = server.user("ann").await;
    let room = group(&server, &ann, &[]).await;

    let empty = page(&server, &ann, &room, "").await;
    assert_eq!(empty["messages"], json!([]));
    assert_eq!(empty["has_more_before"], false);
    assert_eq!(empty["has_more_after"], false);

    for i in 1..=45 {
        post(&server, &ann, &room, &format!("message {i}")).await;
    }
    let latest = page(&server, &ann, &room, "").await;
    assert_eq!(
        seqs(&latest),
        (26..=45).collect::<Vec<_>>(),
        "20 by default, ascending"
    );
    assert_eq!(latest["has_more_before"], true);
    assert_eq!(latest["has_more_after"], false);

    let older = page(&server, &ann, &room, "?before=26").await;
    assert_eq!(seqs(&older), (6..=25).collect::<Vec<_>>());
    let oldest = page(&server, &ann, &room, "?before=6").await;
    assert_eq!(seqs(&oldest), (1..=5).collect::<Vec<_>>());
    assert_eq!(oldest["has_more_before"], false);
    assert_eq!(oldest["has_more_after"], true);

    let newer = page(&server, &ann, &room, "?after=40&limit=100").await;
    assert_eq!(seqs(&newer), (41..=45).collect::<Vec<_>>());
    assert_eq!(newer["has_more_after"], false);
    let around = page(&server, &ann, &room, "?around=10&limit=5").await;
    assert_eq!(seqs(&around), vec![8, 9, 10, 11, 12]);
    assert_eq!(around["has_more_before"], true);
    assert_eq!(around["has_more_after"], true);
    let edge = page(&server, &ann, &room, "?after=45").await;
    assert_eq!(edge["messages"], json!([]));
    assert_eq!(edge["has_more_before"], true);
    let first = page(&server, &ann, &room, "?before=1").await;
    assert_eq!(first["messages"], json!([]));
    assert_eq!(first["has_more_after"], true);
    let all = page(&server, &ann, &room, "?limit=100").await;
    assert_eq!(seqs(&all), (1..=45).collect::<Vec<_>>());
    server.stop().await;
}

async fn who_may_edit_delete_and_react(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let eve = server.user("eve").await;
    let room = group(&server, &ann, &[&bob]).await;
    let by_bob = post(&server, &bob, &room, "bob's words").await;
    let path = format!("/api/rooms/{room}/messages/{}", by_bob.id);

    // Someone else's message: 403 to a member, 404 to an outsider.
    let edit = json!({"body": "changed"});
    let (status, _) = server
        .request(Method::PATCH, &path, Some(&ann.token), Some(edit.clone()))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = server
        .request(Method::PATCH, &path, Some(&eve.token), Some(edit.clone()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .request(
            Method::PATCH,
            &path,
            Some(&bob.token),
            Some(json!({"body": " "})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, edited) = server
        .request(Method::PATCH, &path, Some(&bob.token), Some(edit))
        .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["body"], "changed");
    assert!(edited["edited_at"].is_string());
    assert_eq!(edited["seq"], by_bob.seq, "an edit keeps the place");
    assert!(
        edited["rev"].as_u64().unwrap() > by_bob.rev,
        "but is a change"
    );

    // Reactions: one emoji each, idempotent, listed with who reacted.
    let react = |emoji: &str| format!("{path}/reactions/{}", urlencode(emoji));
    let (status, body) = server
        .request(Method::PUT, &react("not one"), Some(&ann.token), None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = server
        .request(Method::PUT, &react("👍"), Some(&eve.token), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for _ in 0..2 {
        let (status, body) = server
            .request(Method::PUT, &react("👍"), Some(&ann.token), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body["reactions"],
            json!([{"emoji": "👍", "users": [ann.id]}])
        );
    }
    let (_, body) = server
        .request(Method::PUT, &react("👍"), Some(&bob.token), None)
        .await;
    assert_eq!(body["reactions"][0]["users"], json!([ann.id, bob.id]));
    let (_, body) = server
        .request(Method::DELETE, &react("👍"), Some(&ann.token), None)
        .await;
    assert_eq!(body["reactions"][0]["users"], json!([bob.id]));
    // At most 20 different emoji on one message.
    let emoji: Vec<&str> = vec![
        "😀", "😁", "😂", "🤣", "😃", "😄", "😅", "😆", "😉", "😊", "😋", "😎", "😍", "😘", "🥰",
        "😗", "😙", "😚", "🙂",
    ];
    for e in &emoji {
        let (status, body) = server
            .request(Method::PUT, &react(e), Some(&ann.token), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{e}: {body}");
    }
    let (status, body) = server
        .request(Method::PUT, &react("🤗"), Some(&ann.token), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "the 21st: {body}");
    let (status, _) = server
        .request(Method::PUT, &react("😀"), Some(&bob.token), None)
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "an emoji already there still counts once"
    );

    // Deleting: a member cannot delete another's message; the group's owner can.
    let by_ann = post(&server, &ann, &room, "ann's words").await;
    let ann_path = format!("/api/rooms/{room}/messages/{}", by_ann.id);
    let (status, _) = server.delete(&ann_path, Some(&bob.token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, tomb) = server.delete(&path, Some(&ann.token)).await;
    assert_eq!(status, StatusCode::OK, "{tomb}");
    assert_eq!(tomb["deleted"], true);
    assert_eq!(tomb["body"], "");
    assert_eq!(tomb["reactions"], json!([]));
    assert_eq!(tomb["seq"], by_bob.seq);
    let (status, _) = server.delete(&path, Some(&bob.token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "already gone");
    let (status, _) = server
        .request(
            Method::PATCH,
            &path,
            Some(&bob.token),
            Some(json!({"body": "back"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a tombstone cannot be edited"
    );
    let (status, _) = server
        .request(Method::PUT, &react("👍"), Some(&bob.token), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nor reacted to");
    let (status, _) = server.delete(&ann_path, Some(&ann.token)).await;
    assert_eq!(status, StatusCode::OK, "authors delete their own");

    // The timeline keeps both seqs as tombstones.
    let all = page(&server, &bob, &room, "").await;
    assert_eq!(seqs(&all), vec![1, 2]);
    assert!(
        all["messages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["deleted"] == true)
    );
    let bad = format!("/api/rooms/{room}/messages/not-an-id");
    let (status, body) = server.delete(&bad, Some(&ann.token)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    server.stop().await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn changes_reach_the_room_on_the_websocket(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let room = group(&server, &ann, &[&bob]).await;
    let room_id: RoomId = room.parse().unwrap();
    let mut ann_phone = server.ws(&ann).await;
    let mut ann_laptop = server.ws(&ann).await;
    let mut bob_ws = server.ws(&bob).await;
    for ws in [&mut ann_phone, &mut ann_laptop, &mut bob_ws] {
        ws.drain().await;
    }

    // A send over the WebSocket is acknowledged to the sending connection (with its
    // request id) and delivered to everyone else, the sender's other devices included.
    ann_phone
        .send_json(json!({"type": "send_message", "room_id": room, "client_id": "c1", "body": "hi @bob", "request_id": 7}))
        .await;
    let ack = ann_phone.recv().await;
    let ServerMsg::MessageAck {
        client_id,
        message,
        request_id,
    } = ack
    else {
        panic!("expected an ack, got {ack:?}")
    };
    assert_eq!((client_id.as_str(), request_id), ("c1", Some(7)));
    assert_eq!(
        message
            .mentions
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        vec![bob.id.clone()]
    );
    for ws in [&mut ann_laptop, &mut bob_ws] {
        let ServerMsg::MessageCreated { message: m } = ws.recv().await else {
            panic!("expected message_created")
        };
        assert_eq!(m.id, message.id);
        assert_eq!(m.rev, 1);
    }
    ann_phone.expect_silence().await;

    // A refused send says which one, by client_id and request_id.
    ann_phone
        .send_json(json!({"type": "send_message", "room_id": RoomId::new(), "client_id": "c2", "body": "x", "request_id": 8}))
        .await;
    let ServerMsg::Error {
        error,
        client_id,
        request_id,
        in_reply_to,
    } = ann_phone.recv().await
    else {
        panic!("expected an error")
    };
    assert_eq!(error.code, ErrorCode::NotFound);
    assert_eq!(client_id.as_deref(), Some("c2"));
    assert_eq!(request_id, Some(8));
    assert_eq!(in_reply_to.as_deref(), Some("send_message"));
    ann_phone
        .send_json(json!({"type": "send_message", "room_id": room, "client_id": "", "body": ""}))
        .await;
    let ServerMsg::Error { error, .. } = ann_phone.recv().await else {
        panic!("expected an error")
    };
    assert_eq!(error.code, ErrorCode::ValidationFailed);
    assert!(error.fields.unwrap().contains_key("body"));
    ann_phone
        .send_json(
            json!({"type": "send_message", "room_id": 12, "client_id": "c3", "request_id": 9}),
        )
        .await;
    let ServerMsg::Error {
        error,
        client_id,
        request_id,
        ..
    } = ann_phone.recv().await
    else {
        panic!("expected an error")
    };
    assert_eq!(error.code, ErrorCode::InvalidMessage);
    assert_eq!(
        (client_id.as_deref(), request_id),
        (Some("c3"), Some(9)),
        "even a message that does not parse says which one it was"
    );

    // Edits, deletions and reactions follow, each with the next rev.
    let path = format!("/api/rooms/{room}/messages/{}", message.id);
    server
        .request(
            Method::PATCH,
            &path,
            Some(&ann.token),
            Some(json!({"body": "hello"})),
        )
        .await;
    let ServerMsg::MessageUpdated { message: m } = bob_ws.recv().await else {
        panic!("expected message_updated")
    };
    assert_eq!((m.body.as_str(), m.rev), ("hello", 2));
    server
        .request(
            Method::PUT,
            &format!("{path}/reactions/%F0%9F%91%8D"),
            Some(&bob.token),
            None,
        )
        .await;
    let ServerMsg::ReactionChanged {
        rev,
        reactions,
        room_id: r,
        ..
    } = ann_laptop
        .recv_until(|m| matches!(m, ServerMsg::ReactionChanged { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!((r, rev), (room_id, 3));
    assert_eq!(reactions[0].emoji, "👍");
    server.delete(&path, Some(&ann.token)).await;
    let ServerMsg::MessageDeleted { message: m } = bob_ws
        .recv_until(|m| matches!(m, ServerMsg::MessageDeleted { .. }))
        .await
    else {
        unreachable!()
    };
    assert!(m.deleted && m.body.is_empty());
    assert_eq!(m.rev, 4);

    // Typing: shown to the others, repeats within 3 s are not re-sent, a send clears it.
    bob_ws.drain().await;
    ann_laptop.drain().await;
    ann_phone.drain().await;
    bob_ws.send(&ClientMsg::Typing { room_id }).await;
    let msg = ann_phone.recv().await;
    assert!(
        matches!(&msg, ServerMsg::Typing { expires_in_ms, user_id, .. } if *expires_in_ms == 8000 && user_id.to_string() == bob.id),
        "{msg:?}"
    );
    ann_laptop.recv().await;
    bob_ws.send(&ClientMsg::Typing { room_id }).await;
    ann_phone.expect_silence().await;
    post(&server, &bob, &room, "done typing").await;
    let msg = ann_phone.recv().await;
    assert!(
        matches!(
            &msg,
            ServerMsg::Typing {
                expires_in_ms: 0,
                ..
            }
        ),
        "a send clears typing first: {msg:?}"
    );
    assert!(matches!(
        ann_phone.recv().await,
        ServerMsg::MessageCreated { .. }
    ));
    // Typing in a room that is not yours is refused.
    bob_ws
        .send(&ClientMsg::Typing {
            room_id: RoomId::new(),
        })
        .await;
    let msg = bob_ws
        .recv_until(|m| matches!(m, ServerMsg::Error { .. }))
        .await;
    assert!(matches!(msg, ServerMsg::Error { error, .. } if error.code == ErrorCode::NotFound));

    // A disconnect clears typing at once; otherwise it expires after 8 s.
    ann_laptop.drain().await;
    bob_ws.send(&ClientMsg::Typing { room_id }).await;
    assert!(matches!(
        ann_laptop.recv().await,
        ServerMsg::Typing {
            expires_in_ms: 8000,
            ..
        }
    ));
    bob_ws.stream.close(None).await.unwrap();
    let msg = ann_laptop
        .recv_until(|m| matches!(m, ServerMsg::Typing { .. }))
        .await;
    assert!(
        matches!(
            msg,
            ServerMsg::Typing {
                expires_in_ms: 0,
                ..
            }
        ),
        "{msg:?}"
    );
    let mut bob_ws = server.ws(&bob).await;
    ann_laptop.drain().await;
    bob_ws.send(&ClientMsg::Typing { room_id }).await;
    assert!(matches!(
        ann_laptop.recv().await,
        ServerMsg::Typing {
            expires_in_ms: 8000,
            ..
        }
    ));
    // Nothing for 7 s (the connection's reads time out after 5 s, so wait first)...
    tokio::time::sleep(Duration::from_secs(7)).await;
    let early = tokio::time::timeout(Duration::from_millis(10), ann_laptop.stream.next()).await;
    assert!(
        !matches!(
            early,
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(_))))
        ),
        "typing lasts 8 s: {early:?}"
    );
    // ...then it expires.
    let msg = ann_laptop
        .recv_until(|m| matches!(m, ServerMsg::Typing { .. }))
        .await;
    assert!(matches!(
        msg,
        ServerMsg::Typing {
            expires_in_ms: 0,
            ..
        }
    ));
    server.stop().await;
}

async fn read_markers_and_receipts(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let room = group(&server, &ann, &[&bob]).await;
    let room_id: RoomId = room.parse().unwrap();
    for i in 0..3 {
        post(&server, &ann, &room, &format!("m{i}")).await;
    }
    let bob_phone_token = server.sign_in("bob").await;
    let mut bob_laptop = server.ws(&bob).await;
    let mut bob_phone = server.ws(&bob_phone_token).await;
    let mut ann_ws = server.ws(&ann).await;
    for ws in [&mut bob_laptop, &mut bob_phone, &mut ann_ws] {
        ws.drain().await;
    }

    // Bob reads on his laptop: his phone and Ann learn the marker.
    bob_laptop.send(&ClientMsg::Read { room_id, seq: 2 }).await;
    for ws in [&mut bob_phone, &mut ann_ws, &mut bob_laptop] {
        let msg = ws.recv().await;
        assert!(
            matches!(&msg, ServerMsg::Read { seq: 2, user_id, .. } if user_id.to_string() == bob.id),
            "{msg:?}"
        );
    }
    // Never backwards, never past the newest message.
    bob_phone.send(&ClientMsg::Read { room_id, seq: 1 }).await;
    bob_phone.expect_silence().await;
    let (status, body) = server
        .post(
            &format!("/api/rooms/{room}/read"),
            Some(&bob.token),
            json!({"seq": 99}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["seq"], 3);
    let (_, changes) = server
        .get(
            &format!("/api/rooms/{room}/changes?since=3"),
            Some(&bob.token),
        )
        .await;
    assert_eq!(changes["last_read_seq"], 3);

    // Delivery receipts reach the author.
    ann_ws.drain().await;
    post(&server, &ann, &room, "m3").await;
    bob_phone.drain().await;
    bob_phone
        .send(&ClientMsg::Delivered { room_id, seq: 4 })
        .await;
    let msg = ann_ws
        .recv_until(|m| matches!(m, ServerMsg::Delivered { .. }))
        .await;
    assert!(matches!(msg, ServerMsg::Delivered { seq: 4, .. }));

    // A client that was away reads the markers from the member list.
    let (_, detail) = server
        .get(&format!("/api/rooms/{room}"), Some(&ann.token))
        .await;
    let bob_member = detail["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user"]["id"] == bob.id.as_str())
        .unwrap()
        .clone();
    assert_eq!(bob_member["read_seq"], 3, "{detail}");
    assert_eq!(bob_member["delivered_seq"], 4, "{detail}");

    // Bob stops sharing read receipts: Ann no longer learns, his devices still do.
    let (status, me) = server
        .request(
            Method::PATCH,
            "/api/users/me",
            Some(&bob.token),
            Some(json!({"share_read_receipts": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["share_read_receipts"], false);
    ann_ws.drain().await;
    bob_laptop.drain().await;
    bob_phone.send(&ClientMsg::Read { room_id, seq: 4 }).await;
    assert!(matches!(
        bob_laptop.recv().await,
        ServerMsg::Read { seq: 4, .. }
    ));
    ann_ws.expect_silence().await;
    let (_, detail) = server
        .get(&format!("/api/rooms/{room}"), Some(&ann.token))
        .await;
    let bob_member = detail["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user"]["id"] == bob.id.as_str())
        .unwrap()
        .clone();
    assert!(bob_member.get("read_seq").is_none(), "hidden now: {detail}");

    // Not a member, a bad seq: JSON errors.
    let outsider = server.user("olga").await;
    let (status, _) = server
        .post(
            &format!("/api/rooms/{room}/read"),
            Some(&outsider.token),
            json!({"seq": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = server
        .post(
            &format!("/api/rooms/{room}/read"),
            Some(&bob.token),
            json!({"seq": -1}),
        )
        .await;
    assert!(status.is_client_error(), "{body}");
    assert!(body["error"]["code"].is_string());
    server.stop().await;
}

async fn an_offline_client_catches_up_exactly(db: Db) {
    let server = TestServer::start_with(db, &["--message-rate", "100000"]).await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let mut rooms = Vec::new();
    for _ in 0..10 {
        rooms.push(group(&server, &ann, &[&bob]).await);
    }
    // Bob's client holds each room up to some rev, then goes offline.
    let mut held: Vec<(String, Vec<Message>, u64)> = Vec::new();
    for room in &rooms {
        let m = post(&server, &ann, room, "before").await;
        held.push((room.clone(), vec![m.clone()], m.rev));
    }
    // 500 changes while Bob is away: sends, edits, deletions, reactions in every room.
    let mut sent: Vec<(String, Message)> = Vec::new();
    for i in 0..500 {
        let room = &rooms[i % 10];
        match i % 5 {
            0..=2 => sent.push((
                room.clone(),
                post(&server, &ann, room, &format!("n{i}")).await,
            )),
            3 => {
                if let Some((r, m)) = sent.iter().rev().find(|(r, _)| r == room) {
                    let path = format!("/api/rooms/{r}/messages/{}", m.id);
                    server
                        .request(
                            Method::PATCH,
                            &path,
                            Some(&ann.token),
                            Some(json!({"body": format!("edited {i}")})),
                        )
                        .await;
                    server
                        .request(
                            Method::PUT,
                            &format!("{path}/reactions/%F0%9F%8E%89"),
                            Some(&bob.token),
                            None,
                        )
                        .await;
                }
            }
            _ => {
                if let Some((r, m)) = sent.iter().find(|(r, _)| r == room) {
                    server
                        .delete(
                            &format!("/api/rooms/{r}/messages/{}", m.id),
                            Some(&ann.token),
                        )
                        .await;
                }
            }
        }
    }
    // Bob comes back: for each room, the changes since his rev, page by page.
    for (room, messages, rev) in &mut held {
        loop {
            let (status, page) = server
                .get(
                    &format!("/api/rooms/{room}/changes?since={rev}&limit=7"),
                    Some(&bob.token),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let changed: Vec<Message> = serde_json::from_value(page["messages"].clone()).unwrap();
            let mut last = *rev;
            for m in changed {
                assert!(m.rev > last, "ascending rev");
                last = m.rev;
                match messages.iter_mut().find(|x| x.id == m.id) {
                    Some(x) => *x = m,
                    None => messages.push(m),
                }
            }
            *rev = page["rev"].as_u64().unwrap();
            if page["has_more"] == false {
                break;
            }
        }
        messages.sort_by_key(|m| m.seq);
        let truth = server.all_messages(&bob, room).await;
        assert_eq!(messages, &truth, "room {room} is exactly the server's");
    }
    let (status, body) = server
        .get(
            &format!("/api/rooms/{}/changes?since=0&limit=0", rooms[0]),
            Some(&bob.token),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    server.stop().await;
}

async fn history_survives_a_restart(db: Db) {
    let mut server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let room = group(&server, &ann, &[]).await;
    let first = post(&server, &ann, &room, "one").await;
    post(&server, &ann, &room, "two").await;
    server.restart().await;
    let (status, again) = send(
        &server,
        &ann,
        &room,
        first.client_id.as_deref().unwrap(),
        "one",
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a retry after a restart still finds the original"
    );
    assert_eq!(again["id"], first.id.to_string());
    let third = post(&server, &ann, &room, "three").await;
    assert_eq!(third.seq, 3);
    let mut ws: Ws = server.ws(&ann).await;
    ws.send(&ClientMsg::Ping { nonce: 1 }).await;
    assert!(matches!(ws.recv().await, ServerMsg::Pong { nonce: 1 }));
    server.stop().await;
}

async fn sends_are_rate_limited_per_user(db: Db) {
    let server = TestServer::start_with(db, &["--message-rate", "2"]).await;
    let ann = server.user("ann").await;
    let room = group(&server, &ann, &[]).await;
    // A burst of three times the rate passes, then 429 with Retry-After.
    let mut limited = None;
    for i in 0..20 {
        let resp = server
            .http
            .post(format!("{}/api/rooms/{room}/messages", server.base))
            .bearer_auth(&ann.token)
            .header("idempotency-key", format!("burst-{i}"))
            .json(&json!({"body": "spam"}))
            .send()
            .await
            .unwrap();
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            let retry: u64 = resp.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"]["code"], "rate_limited");
            limited = Some((i, retry));
            break;
        }
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    let (at, retry) = limited.expect("the burst ends");
    assert!((6..10).contains(&at), "burst of about 6: refused at {at}");
    assert!((1..=2).contains(&retry), "{retry}");
    // The WebSocket shares the limit and answers with the error, keeping the connection.
    let mut ws = server.ws(&ann).await;
    ws.send(&ClientMsg::SendMessage {
        room_id: room.parse().unwrap(),
        client_id: "ws-1".into(),
        body: "more".into(),
        reply_to: None,
        attachments: Vec::new(),
    })
    .await;
    let msg = ws.recv().await;
    assert!(
        matches!(&msg, ServerMsg::Error { error, client_id: Some(c), .. } if error.code == ErrorCode::RateLimited && c == "ws-1"),
        "{msg:?}"
    );
    // A refused send stored nothing, so the same key later succeeds.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _) = send(&server, &ann, &room, "ws-1", "more").await;
    assert_eq!(status, StatusCode::CREATED);
    server.stop().await;
}
