//! The WebSocket: authentication, call membership, the relay and its authorization rules,
//! presence, limits and close codes, between real clients over real sockets.

#![allow(clippy::unwrap_used)]

mod common;

use shared::api::PresenceStatus;

use common::{Db, TestServer, Ws};
use futures_util::SinkExt;
use reqwest::StatusCode;
use serde_json::json;
use shared::signal::{ClientMsg, IceCandidate, ServerMsg, close};
use shared::{ErrorCode, ParticipantId, RoomId};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

on_both_databases!(
    offers_answers_and_candidates_are_relayed_within_a_call,
    nothing_is_relayed_outside_the_call,
    presence_reaches_users_who_share_a_room,
    leaving_or_deleting_the_room_ends_the_call_for_that_user,
);

fn room_id(s: &str) -> RoomId {
    s.parse().unwrap()
}

fn pid(s: &str) -> ParticipantId {
    s.parse().unwrap()
}

fn error_code(msg: &ServerMsg) -> Option<ErrorCode> {
    match msg {
        ServerMsg::Error { error, .. } => Some(error.code),
        _ => None,
    }
}

async fn offers_answers_and_candidates_are_relayed_within_a_call(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let ben = server.user("ben").await;
    let room = server.room(&ann, 4).await;
    server.join(&ben, &room).await;
    let mut a = server.ws(&ann).await;
    let mut b = server.ws(&ben).await;

    a.send(&ClientMsg::JoinCall {
        room_id: room_id(&room),
        video: true,
    })
    .await;
    let ServerMsg::CallJoined {
        participants,
        participant_count,
        ..
    } = a
        .recv_until(|m| matches!(m, ServerMsg::CallJoined { .. }))
        .await
    else {
        unreachable!()
    };
    assert!(participants.is_empty());
    assert_eq!(participant_count, 1);

    b.send(&ClientMsg::JoinCall {
        room_id: room_id(&room),
        video: true,
    })
    .await;
    let ServerMsg::CallJoined {
        participants,
        participant_count,
        ..
    } = b
        .recv_until(|m| matches!(m, ServerMsg::CallJoined { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(participant_count, 2);
    assert_eq!(participants.len(), 1);
    assert_eq!(participants[0].participant_id.to_string(), a.participant);
    assert_eq!(participants[0].username, "ann");
    let joined = a
        .recv_until(|m| matches!(m, ServerMsg::ParticipantJoined { .. }))
        .await;
    let ServerMsg::ParticipantJoined {
        participant,
        participant_count,
        ..
    } = joined
    else {
        unreachable!()
    };
    assert_eq!(
        (participant.participant_id.to_string(), participant_count),
        (b.participant.clone(), 2)
    );

    a.send(&ClientMsg::Offer {
        room_id: room_id(&room),
        to: pid(&b.participant),
        sdp: "v=0 offer".into(),
    })
    .await;
    match b.recv().await {
        ServerMsg::Offer {
            from,
            from_user,
            sdp,
            ..
        } => {
            assert_eq!(from.to_string(), a.participant);
            assert_eq!(from_user.to_string(), ann.id);
            assert_eq!(sdp, "v=0 offer");
        }
        other => panic!("expected the offer, got {other:?}"),
    }
    b.send(&ClientMsg::Answer {
        room_id: room_id(&room),
        to: pid(&a.participant),
        sdp: "v=0 answer".into(),
    })
    .await;
    assert!(matches!(a.recv().await, ServerMsg::Answer { sdp, .. } if sdp == "v=0 answer"));
    let candidate = IceCandidate {
        candidate: "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host".into(),
        sdp_mid: Some("0".into()),
        sdp_mline_index: Some(0),
        username_fragment: None,
    };
    b.send(&ClientMsg::IceCandidate {
        room_id: room_id(&room),
        to: pid(&a.participant),
        candidate: candidate.clone(),
    })
    .await;
    assert!(
        matches!(a.recv().await, ServerMsg::IceCandidate { candidate: c, .. } if c == candidate)
    );

    b.send(&ClientMsg::MediaState {
        room_id: room_id(&room),
        audio_muted: true,
        video_muted: false,
    })
    .await;
    assert!(matches!(
        a.recv().await,
        ServerMsg::MediaState {
            audio_muted: true,
            video_muted: false,
            ..
        }
    ));

    b.send(&ClientMsg::LeaveCall {
        room_id: room_id(&room),
    })
    .await;
    assert!(matches!(b.recv().await, ServerMsg::CallLeft { .. }));
    let left = a.recv().await;
    assert!(
        matches!(
            left,
            ServerMsg::ParticipantLeft {
                participant_count: 1,
                ..
            }
        ),
        "{left:?}"
    );
    server.stop().await;
}

async fn nothing_is_relayed_outside_the_call(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let ben = server.user("ben").await;
    let cat = server.user("cat").await; // member of the room, not in the call
    let dan = server.user("dan").await; // not a member at all
    let room = server.room(&ann, 4).await;
    let other_room = server.room(&dan, 4).await;
    server.join(&ben, &room).await;
    server.join(&cat, &room).await;
    let mut a = server.ws(&ann).await;
    let mut b = server.ws(&ben).await;
    let mut c = server.ws(&cat).await;
    let mut d = server.ws(&dan).await;
    for ws in [&mut a, &mut b] {
        ws.send(&ClientMsg::JoinCall {
            room_id: room_id(&room),
            video: true,
        })
        .await;
        ws.recv_until(|m| matches!(m, ServerMsg::CallJoined { .. }))
            .await;
    }
    // Presence and join notices arrive in no fixed order; clear them for quiet asserts.
    for ws in [&mut a, &mut b, &mut c, &mut d] {
        ws.drain().await;
    }

    // Not in the call: refused, and never forwarded.
    c.send(&ClientMsg::Offer {
        room_id: room_id(&room),
        to: pid(&a.participant),
        sdp: "x".into(),
    })
    .await;
    let reply = c.recv_until(|m| matches!(m, ServerMsg::Error { .. })).await;
    assert_eq!(error_code(&reply), Some(ErrorCode::NotInCall));
    assert!(matches!(reply, ServerMsg::Error { in_reply_to: Some(ref t), .. } if t == "offer"));

    // In the call, but the addressee is not: refused.
    a.send(&ClientMsg::Offer {
        room_id: room_id(&room),
        to: pid(&c.participant),
        sdp: "x".into(),
    })
    .await;
    assert_eq!(
        error_code(&a.recv().await),
        Some(ErrorCode::UnknownParticipant)
    );
    c.expect_silence().await;

    // Naming another room does not help: the sender is not in that call.
    a.send(&ClientMsg::Offer {
        room_id: room_id(&other_room),
        to: pid(&b.participant),
        sdp: "x".into(),
    })
    .await;
    assert_eq!(error_code(&a.recv().await), Some(ErrorCode::NotInCall));

    // A non-member cannot join the call, and cannot reach anyone in it.
    d.send(&ClientMsg::JoinCall {
        room_id: room_id(&room),
        video: true,
    })
    .await;
    assert_eq!(error_code(&d.recv().await), Some(ErrorCode::NotFound));
    d.send(&ClientMsg::IceCandidate {
        room_id: room_id(&room),
        to: pid(&a.participant),
        candidate: IceCandidate {
            candidate: "x".into(),
            sdp_mid: None,
            sdp_mline_index: None,
            username_fragment: None,
        },
    })
    .await;
    assert_eq!(error_code(&d.recv().await), Some(ErrorCode::NotInCall));
    a.expect_silence().await;
    b.expect_silence().await;
    server.stop().await;
}

async fn presence_reaches_users_who_share_a_room(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let ben = server.user("ben").await;
    let stranger = server.user("stranger").await;
    let room = server.room(&ann, 4).await;
    server.join(&ben, &room).await;

    let mut laptop = server.ws(&ann).await;
    let mut phone = server.ws(&ann).await; // a second device of the same user
    let mut s = server.ws(&stranger).await;

    let mut b = Ws::connect(&server.ws_url).await;
    b.send(&ClientMsg::Auth {
        token: ben.token.clone(),
        protocol_version: shared::signal::PROTOCOL_VERSION,
    })
    .await;
    assert!(matches!(b.recv().await, ServerMsg::Welcome { .. }));
    let ServerMsg::PresenceSnapshot { online } = b.recv().await else {
        panic!("expected the snapshot")
    };
    assert_eq!(
        online
            .iter()
            .map(|e| e.user_id.to_string())
            .collect::<Vec<_>>(),
        std::slice::from_ref(&ann.id)
    );

    for device in [&mut laptop, &mut phone] {
        let msg = device.recv().await;
        assert!(
            matches!(&msg, ServerMsg::Presence { user_id, status: PresenceStatus::Online } if user_id.to_string() == ben.id),
            "{msg:?}"
        );
    }
    s.expect_silence().await;

    b.stream.close(None).await.unwrap();
    for device in [&mut laptop, &mut phone] {
        let msg = device.recv().await;
        assert!(
            matches!(&msg, ServerMsg::Presence { user_id, status: PresenceStatus::Offline } if user_id.to_string() == ben.id),
            "{msg:?}"
        );
    }
    server.stop().await;
}

async fn leaving_or_deleting_the_room_ends_the_call_for_that_user(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let ben = server.user("ben").await;
    let room = server.room(&ann, 4).await;
    server.join(&ben, &room).await;
    let mut a = server.ws(&ann).await;
    let mut b = server.ws(&ben).await;
    for ws in [&mut a, &mut b] {
        ws.send(&ClientMsg::JoinCall {
            room_id: room_id(&room),
            video: true,
        })
        .await;
        ws.recv_until(|m| matches!(m, ServerMsg::CallJoined { .. }))
            .await;
    }
    assert_eq!(
        server
            .post(
                &format!("/api/rooms/{room}/leave"),
                Some(&ben.token),
                json!({})
            )
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    b.recv_until(|m| matches!(m, ServerMsg::CallLeft { .. }))
        .await;
    a.recv_until(|m| matches!(m, ServerMsg::ParticipantLeft { .. }))
        .await;

    assert_eq!(
        server
            .delete(&format!("/api/rooms/{room}"), Some(&ann.token))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    a.recv_until(|m| matches!(m, ServerMsg::CallLeft { .. }))
        .await;
    server.stop().await;
}

/// Authentication: by message, by subprotocol, failures, timeout, origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_authentication() {
    let server = TestServer::start(Db::Sqlite).await;
    let ann = server.user("ann").await;

    // Token as a subprotocol: the server selects confab.v2 and never echoes the token.
    let mut req = server.ws_url.as_str().into_client_request().unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        format!("confab.v2, confab.bearer.{}", ann.token)
            .parse()
            .unwrap(),
    );
    let (stream, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(resp.headers()["sec-websocket-protocol"], "confab.v2");
    let mut ws = Ws {
        stream,
        participant: String::new(),
    };
    assert!(matches!(
        ws.recv().await,
        ServerMsg::Welcome {
            protocol_version: 2,
            ..
        }
    ));

    // A bad token in the subprotocol is refused before the upgrade.
    let mut req = server.ws_url.as_str().into_client_request().unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "confab.v2, confab.bearer.garbage".parse().unwrap(),
    );
    assert!(tokio_tungstenite::connect_async(req).await.is_err());

    // A bad token in the auth message: an error, then close 4001.
    let mut ws = Ws::connect(&server.ws_url).await;
    ws.send(&ClientMsg::Auth {
        token: "garbage".into(),
        protocol_version: shared::signal::PROTOCOL_VERSION,
    })
    .await;
    assert_eq!(error_code(&ws.recv().await), Some(ErrorCode::Unauthorized));
    assert_eq!(ws.closed().await, close::AUTH_FAILED);

    // Another protocol version: close 4004.
    let mut ws = Ws::connect(&server.ws_url).await;
    ws.send(&ClientMsg::Auth {
        token: ann.token.clone(),
        protocol_version: 99,
    })
    .await;
    assert_eq!(
        error_code(&ws.recv().await),
        Some(ErrorCode::UnsupportedVersion)
    );
    assert_eq!(ws.closed().await, close::UNSUPPORTED_VERSION);

    // Anything before auth is refused but the connection waits for auth...
    let mut ws = Ws::connect(&server.ws_url).await;
    ws.send(&ClientMsg::Ping { nonce: 1 }).await;
    assert_eq!(error_code(&ws.recv().await), Some(ErrorCode::AuthState));
    // ...for five seconds.
    assert_eq!(ws.closed().await, close::AUTH_TIMEOUT);

    // Origins outside the allow-list are refused with the JSON error shape.
    let resp = server
        .http
        .get(format!("{}/ws", server.base))
        .header("origin", "https://evil.example")
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    let mut req = server.ws_url.as_str().into_client_request().unwrap();
    req.headers_mut()
        .insert("origin", "tauri://localhost".parse().unwrap());
    assert!(
        tokio_tungstenite::connect_async(req).await.is_ok(),
        "the desktop app's origin is allowed"
    );
    server.stop().await;
}

/// Malformed, unknown, binary and oversized messages get an error; the connection stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_get_errors_not_disconnects() {
    let server = TestServer::start(Db::Sqlite).await;
    let ann = server.user("ann").await;
    let mut ws = server.ws(&ann).await;

    ws.send_text("not json at all").await;
    assert_eq!(
        error_code(&ws.recv().await),
        Some(ErrorCode::InvalidMessage)
    );
    ws.send_json(json!({"type": "launch_missiles"})).await;
    let reply = ws.recv().await;
    assert_eq!(error_code(&reply), Some(ErrorCode::InvalidMessage));
    assert!(
        matches!(reply, ServerMsg::Error { in_reply_to: Some(ref t), .. } if t == "launch_missiles")
    );
    ws.send_json(json!({"type": "join_call", "room_id": "not-a-uuid"}))
        .await;
    assert_eq!(
        error_code(&ws.recv().await),
        Some(ErrorCode::InvalidMessage)
    );
    ws.stream
        .send(Message::binary(vec![1u8, 2, 3]))
        .await
        .unwrap();
    assert_eq!(
        error_code(&ws.recv().await),
        Some(ErrorCode::InvalidMessage)
    );
    ws.send_json(json!({"type": "offer", "room_id": uuid::Uuid::new_v4(), "to": uuid::Uuid::new_v4(), "sdp": "x".repeat(70 * 1024)})).await;
    assert_eq!(
        error_code(&ws.recv().await),
        Some(ErrorCode::PayloadTooLarge)
    );
    ws.send(&ClientMsg::Auth {
        token: ann.token.clone(),
        protocol_version: shared::signal::PROTOCOL_VERSION,
    })
    .await;
    assert_eq!(error_code(&ws.recv().await), Some(ErrorCode::AuthState));

    ws.send(&ClientMsg::Ping { nonce: 42 }).await;
    assert_eq!(
        ws.recv().await,
        ServerMsg::Pong { nonce: 42 },
        "still connected and served"
    );

    // Far beyond the limit, tungstenite stops reading: close 1009.
    ws.send_text(&"y".repeat(1024 * 1024)).await;
    assert_eq!(ws.closed().await, close::MESSAGE_TOO_BIG);
    server.stop().await;
}

/// Messages beyond the per-connection rate are dropped with an error; a client that
/// keeps going is disconnected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_connection_rate_limit() {
    let server = TestServer::start_with(Db::Sqlite, &["--ws-rate", "5"]).await;
    let ann = server.user("ann").await;
    let mut ws = server.ws(&ann).await;
    for nonce in 0..20 {
        ws.send(&ClientMsg::Ping { nonce }).await;
    }
    let mut pongs = 0;
    let mut limited = 0;
    for _ in 0..20 {
        match ws.recv().await {
            ServerMsg::Pong { .. } => pongs += 1,
            m if error_code(&m) == Some(ErrorCode::RateLimited) => limited += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        pongs >= 10 && limited >= 1,
        "burst of 10 passes, the rest is refused: {pongs} pongs, {limited} refused"
    );
    for nonce in 0..100 {
        ws.send(&ClientMsg::Ping { nonce }).await;
    }
    assert_eq!(ws.closed().await, close::RATE_LIMITED);
    server.stop().await;
}

/// Logging out, or a password change elsewhere, closes the session's sockets with 4003.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_sessions_lose_their_sockets() {
    let server = TestServer::start(Db::Sqlite).await;
    let ann = server.user("ann").await;
    let other_device = server.sign_in("ann").await;
    let mut ws = server.ws(&ann).await;
    let mut other_ws = server.ws(&other_device).await;
    let (status, _) = server
        .post(
            "/api/auth/logout",
            Some(&ann.token),
            json!({"refresh_token": ann.refresh}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(ws.closed().await, close::SESSION_REVOKED);
    other_ws.send(&ClientMsg::Ping { nonce: 7 }).await;
    assert_eq!(
        other_ws
            .recv_until(|m| matches!(m, ServerMsg::Pong { .. }))
            .await,
        ServerMsg::Pong { nonce: 7 },
        "the other device stays"
    );
    server.stop().await;
}

/// An access token expiring closes the socket with 4002 unless the client re-authenticates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_expiry_and_reauth() {
    let server = TestServer::start_with(Db::Sqlite, &["--access-token-ttl", "3"]).await;
    let ann = server.user("ann").await;
    let mut ws = server.ws(&ann).await;

    // A fresh token (via refresh) extends the connection.
    let (_, fresh) = server
        .post(
            "/api/auth/refresh",
            None,
            json!({"refresh_token": ann.refresh}),
        )
        .await;
    ws.send(&ClientMsg::Reauth {
        token: fresh["access_token"].as_str().unwrap().to_owned(),
    })
    .await;
    assert!(matches!(ws.recv().await, ServerMsg::Reauthenticated { .. }));
    // Someone else's token is refused.
    let ben = server.user("ben").await;
    ws.send(&ClientMsg::Reauth {
        token: ben.token.clone(),
    })
    .await;
    assert_eq!(error_code(&ws.recv().await), Some(ErrorCode::Forbidden));

    assert_eq!(ws.closed().await, close::TOKEN_EXPIRED);
    server.stop().await;
}

/// The server pings; a client that answers nothing is closed after the idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_clients_are_closed() {
    let server = TestServer::start_with(
        Db::Sqlite,
        &["--ws-heartbeat", "1", "--ws-idle-timeout", "2"],
    )
    .await;
    let ann = server.user("ann").await;
    let mut ws = server.ws(&ann).await;
    // Not reading means tungstenite never answers the server's pings.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    assert_eq!(ws.closed().await, close::IDLE_TIMEOUT);
    server.stop().await;
}

/// A client that stops reading is cut off once its queue fills; the sender is unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumers_are_disconnected() {
    let server =
        TestServer::start_with(Db::Sqlite, &["--ws-queue", "8", "--ws-rate", "100000"]).await;
    let ann = server.user("ann").await;
    let ben = server.user("ben").await;
    let room = server.room(&ann, 2).await;
    server.join(&ben, &room).await;
    let mut a = server.ws(&ann).await;
    let mut b = server.ws(&ben).await;
    for ws in [&mut a, &mut b] {
        ws.send(&ClientMsg::JoinCall {
            room_id: room_id(&room),
            video: true,
        })
        .await;
        ws.recv_until(|m| matches!(m, ServerMsg::CallJoined { .. }))
            .await;
    }
    // ann floods ben, who reads nothing: socket buffers fill, then ben's queue.
    let sdp = "s".repeat(60 * 1024);
    for _ in 0..400 {
        let offer = ClientMsg::Offer {
            room_id: room_id(&room),
            to: pid(&b.participant),
            sdp: sdp.clone(),
        };
        if tokio::time::timeout(
            std::time::Duration::from_secs(5),
            a.stream
                .send(Message::text(serde_json::to_string(&offer).unwrap())),
        )
        .await
        .is_err()
        {
            panic!("the sender was blocked by a slow receiver");
        }
    }
    assert_eq!(b.closed().await, close::SLOW_CONSUMER);
    a.send(&ClientMsg::Ping { nonce: 1 }).await;
    a.recv_until(|m| matches!(m, ServerMsg::Pong { .. })).await;
    server.stop().await;
}

/// A call is limited to the room's size, even counting one user's several devices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_limited_to_the_room_size() {
    let server = TestServer::start(Db::Sqlite).await;
    let ann = server.user("ann").await;
    let ben = server.user("ben").await;
    let room = server.room(&ann, 2).await;
    server.join(&ben, &room).await;
    let ann_elsewhere = server.sign_in("ann").await; // a second device: another session
    let mut a1 = server.ws(&ann).await;
    let mut a2 = server.ws(&ann_elsewhere).await;
    let mut b = server.ws(&ben).await;
    for ws in [&mut a1, &mut a2] {
        ws.send(&ClientMsg::JoinCall {
            room_id: room_id(&room),
            video: true,
        })
        .await;
        ws.recv_until(|m| matches!(m, ServerMsg::CallJoined { .. }))
            .await;
    }
    b.send(&ClientMsg::JoinCall {
        room_id: room_id(&room),
        video: true,
    })
    .await;
    let reply = b
        .recv_until(|m| matches!(m, ServerMsg::Error { .. } | ServerMsg::CallJoined { .. }))
        .await;
    assert_eq!(error_code(&reply), Some(ErrorCode::RoomFull));
    server.stop().await;
}

/// A client that closes gets its close frame echoed, as RFC 6455 asks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_close_is_echoed() {
    let server = TestServer::start(Db::Sqlite).await;
    let ann = server.user("ann").await;
    let mut ws = server.ws(&ann).await;
    let frame = tokio_tungstenite::tungstenite::protocol::CloseFrame {
        code: close::NORMAL.into(),
        reason: "bye".into(),
    };
    ws.stream.send(Message::Close(Some(frame))).await.unwrap();
    assert_eq!(ws.closed().await, close::NORMAL);
    server.stop().await;
}

/// A client that reconnects (same session, new connection) and re-joins replaces its old
/// connection in the call, which the others see leave at once instead of after the idle
/// timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnected_client_replaces_its_old_connection() {
    let server = TestServer::start(Db::Sqlite).await;
    let ann = server.user("ann").await;
    let ben = server.user("ben").await;
    let room = server.room(&ann, 2).await;
    server.join(&ben, &room).await;
    let mut b = server.ws(&ben).await;
    let mut old = server.ws(&ann).await;
    for ws in [&mut b, &mut old] {
        ws.send(&ClientMsg::JoinCall {
            room_id: room_id(&room),
            video: true,
        })
        .await;
        ws.recv_until(|m| matches!(m, ServerMsg::CallJoined { .. }))
            .await;
    }
    // The old connection is silently dead (it reads nothing more); a new one joins.
    let mut new = server.ws(&ann).await;
    new.send(&ClientMsg::JoinCall {
        room_id: room_id(&room),
        video: true,
    })
    .await;
    let joined = new
        .recv_until(|m| matches!(m, ServerMsg::CallJoined { .. } | ServerMsg::Error { .. }))
        .await;
    assert!(
        matches!(
            joined,
            ServerMsg::CallJoined {
                participant_count: 2,
                ..
            }
        ),
        "the full call took it: {joined:?}"
    );
    let left = b
        .recv_until(|m| matches!(m, ServerMsg::ParticipantLeft { .. }))
        .await;
    assert!(
        matches!(left, ServerMsg::ParticipantLeft { participant_id, .. } if participant_id.to_string() == old.participant)
    );
    assert!(matches!(
        b.recv().await,
        ServerMsg::ParticipantJoined { .. }
    ));
    assert_eq!(old.closed().await, close::REPLACED);
    server.stop().await;
}

/// Shutdown closes open sockets with 1001 "going away".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_sends_going_away() {
    let mut server = TestServer::start(Db::Sqlite).await;
    let ann = server.user("ann").await;
    let mut ws = server.ws(&ann).await;
    server.shutdown_only().await;
    assert_eq!(ws.closed().await, close::GOING_AWAY);
    server.stop().await;
}
