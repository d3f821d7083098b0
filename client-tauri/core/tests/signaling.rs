//! `SignalingClient` against a real server: two clients meet in a call and trade offer,
//! answer and candidates; a short-lived token is renewed with `reauth` and the connection
//! outlives it; after a server restart both clients come back by themselves, with new
//! participant ids, in the same call; a revoked session, or a token refused twice, ends
//! the client for good.
//!
//! The machine running these is loaded: every wait is long, and nothing asserts on speed.

#![allow(clippy::unwrap_used)]

mod common;

use async_trait::async_trait;
use common::{Db, PASSWORD, TestServer, on_both_databases, unique};
use confab_core::signaling::{
    SendError, SignalingClient, SignalingConfig, SignalingEvent, SignalingEvents, TokenError,
    TokenProvider, TokenRequest, token_provider_fn,
};
use reqwest::StatusCode;
use shared::api::{
    AuthResponse, CreateRoomRequest, LoginRequest, RefreshRequest, RegisterRequest, Room,
};
use shared::signal::{ClientMsg, IceCandidate, ServerMsg, close};
use shared::{ParticipantId, RoomId, UserId};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Mutex;
use tokio::time::timeout;

on_both_databases!(
    two_clients_meet_in_a_call_and_trade_offer_answer_and_candidates,
    a_short_lived_token_is_renewed_and_the_connection_outlives_it,
    a_quiet_connection_stays_open_because_the_server_pings_are_answered,
    after_a_server_restart_both_clients_reconnect_and_rejoin_the_call,
    a_revoked_session_ends_the_client_without_reconnecting,
    a_token_refused_even_after_renewal_stops_the_client,
    a_refused_fresh_token_is_renewed_through_the_api_client,
);

/// How long to wait for something that should happen.
const WAIT: Duration = Duration::from_secs(60);

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A signed-in user, and a token provider that renews through `/api/auth/refresh`.
#[derive(Debug)]
struct Account {
    http: reqwest::Client,
    base: String,
    user_id: UserId,
    tokens: Mutex<(String, String)>,
    connects: AtomicUsize,
    renewals: AtomicUsize,
}

impl Account {
    async fn sign_up(server: &TestServer, prefix: &str) -> Arc<Self> {
        let http = reqwest::Client::new();
        let name = unique(prefix);
        let response = http
            .post(format!("{}/api/auth/register", server.base))
            .json(&RegisterRequest {
                username: name.clone(),
                email: format!("{name}@example.com"),
                password: PASSWORD.to_owned(),
                confirm_password: PASSWORD.to_owned(),
            })
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "{}",
            response.text().await.unwrap()
        );
        let auth: AuthResponse = http
            .post(format!("{}/api/auth/login", server.base))
            .json(&LoginRequest {
                login: name,
                password: PASSWORD.to_owned(),
            })
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        Arc::new(Self {
            http,
            base: server.base.clone(),
            user_id: auth.user.id,
            tokens: Mutex::new((auth.access_token, auth.refresh_token)),
            connects: AtomicUsize::new(0),
            renewals: AtomicUsize::new(0),
        })
    }

    async fn access(&self) -> String {
        self.tokens.lock().await.0.clone()
    }

    async fn create_room(&self) -> RoomId {
        let room: Room = self
            .http
            .post(format!("{}/api/rooms", self.base))
            .bearer_auth(self.access().await)
            .json(&CreateRoomRequest {
                title: "Standup".to_owned(),
                max_participants: Some(4),
            })
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        room.id
    }

    async fn join_room(&self, room: RoomId) {
        self.http
            .post(format!("{}/api/rooms/{room}/join", self.base))
            .bearer_auth(self.access().await)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }

    async fn logout(&self) {
        let (access, refresh) = self.tokens.lock().await.clone();
        let response = self
            .http
            .post(format!("{}/api/auth/logout", self.base))
            .bearer_auth(access)
            .json(&RefreshRequest {
                refresh_token: refresh,
            })
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
}

#[async_trait]
impl TokenProvider for Account {
    async fn access_token(&self, request: TokenRequest) -> Result<String, TokenError> {
        let mut tokens = self.tokens.lock().await;
        match request {
            TokenRequest::Connect => {
                self.connects.fetch_add(1, Ordering::SeqCst);
                Ok(tokens.0.clone())
            }
            TokenRequest::Renew => {
                self.renewals.fetch_add(1, Ordering::SeqCst);
                let response = self
                    .http
                    .post(format!("{}/api/auth/refresh", self.base))
                    .json(&RefreshRequest {
                        refresh_token: tokens.1.clone(),
                    })
                    .send()
                    .await
                    .map_err(|e| TokenError::Unavailable(e.to_string()))?;
                if response.status() == StatusCode::UNAUTHORIZED {
                    return Err(TokenError::SignedOut("refresh refused".into()));
                }
                let auth: AuthResponse = response
                    .error_for_status()
                    .map_err(|e| TokenError::Unavailable(e.to_string()))?
                    .json()
                    .await
                    .map_err(|e| TokenError::Unavailable(e.to_string()))?;
                *tokens = (auth.access_token.clone(), auth.refresh_token);
                Ok(auth.access_token)
            }
        }
    }
}

/// Quick reconnects: the tests restart servers, and backing off for 30 s helps nobody.
fn config(server: &TestServer) -> SignalingConfig {
    let mut config = SignalingConfig::new(server.ws_url.clone());
    config.min_backoff = Duration::from_millis(200);
    config.max_backoff = Duration::from_secs(2);
    config
}

/// Waits for the first event that `pick` maps to something; fails on a terminal
/// disconnect or when the client stops.
async fn until<T>(
    events: &mut SignalingEvents,
    what: &str,
    mut pick: impl FnMut(&SignalingEvent) -> Option<T>,
) -> T {
    let wait = async {
        loop {
            let event = events
                .recv()
                .await
                .unwrap_or_else(|| panic!("client stopped while waiting for {what}"));
            if let Some(found) = pick(&event) {
                return found;
            }
            if let SignalingEvent::Disconnected { terminal: true, .. } = event {
                panic!("terminal disconnect while waiting for {what}: {event:?}");
            }
        }
    };
    timeout(WAIT, wait)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

async fn connected(events: &mut SignalingEvents) -> ParticipantId {
    until(events, "Connected", |e| match e {
        SignalingEvent::Connected { participant_id, .. } => Some(*participant_id),
        _ => None,
    })
    .await
}

async fn message<T>(
    events: &mut SignalingEvents,
    what: &str,
    mut pick: impl FnMut(&ServerMsg) -> Option<T>,
) -> T {
    until(events, what, |e| match e {
        SignalingEvent::Message(msg) => pick(msg),
        _ => None,
    })
    .await
}

/// Waits until `peer` is known to be in our call, whichever way we learn it
/// (`call_joined` if they were there first, `participant_joined` otherwise).
async fn sees_in_call(events: &mut SignalingEvents, room: RoomId, peer: ParticipantId) {
    message(events, "the peer in our call", |m| match m {
        ServerMsg::CallJoined {
            room_id,
            participants,
            ..
        } if *room_id == room && participants.iter().any(|p| p.participant_id == peer) => Some(()),
        ServerMsg::ParticipantJoined {
            room_id,
            participant,
            ..
        } if *room_id == room && participant.participant_id == peer => Some(()),
        _ => None,
    })
    .await
}

/// Every event until the client stops (the stream ends).
async fn rest(events: &mut SignalingEvents) -> Vec<SignalingEvent> {
    let mut all = Vec::new();
    timeout(WAIT, async {
        while let Some(event) = events.recv().await {
            all.push(event);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the client did not stop; events so far: {all:?}"));
    all
}

fn candidate(n: u8) -> IceCandidate {
    IceCandidate {
        candidate: format!("candidate:{n} 1 udp 2122260223 192.168.1.{n} 5000{n} typ host"),
        sdp_mid: Some("0".into()),
        sdp_mline_index: Some(0),
        username_fragment: Some("ufrag".into()),
    }
}

/// `from` sends an offer to `to`, `to` answers, and each trickles a candidate; each side
/// checks what it receives and who it is from.
async fn exchange(
    room: RoomId,
    (a, a_events, a_id): (&SignalingClient, &mut SignalingEvents, ParticipantId),
    (b, b_events, b_id): (&SignalingClient, &mut SignalingEvents, ParticipantId),
) {
    let offer = format!("v=0\r\no=- {a_id} 1 IN IP4 127.0.0.1\r\n");
    a.send(ClientMsg::Offer {
        room_id: room,
        to: b_id,
        sdp: offer.clone(),
    })
    .unwrap();
    let got = message(b_events, "the offer", |m| match m {
        ServerMsg::Offer { from, sdp, .. } if *from == a_id => Some(sdp.clone()),
        _ => None,
    })
    .await;
    assert_eq!(got, offer);

    let answer = format!("v=0\r\no=- {b_id} 1 IN IP4 127.0.0.1\r\n");
    b.send(ClientMsg::Answer {
        room_id: room,
        to: a_id,
        sdp: answer.clone(),
    })
    .unwrap();
    let got = message(a_events, "the answer", |m| match m {
        ServerMsg::Answer { from, sdp, .. } if *from == b_id => Some(sdp.clone()),
        _ => None,
    })
    .await;
    assert_eq!(got, answer);

    a.send(ClientMsg::IceCandidate {
        room_id: room,
        to: b_id,
        candidate: candidate(1),
    })
    .unwrap();
    b.send(ClientMsg::IceCandidate {
        room_id: room,
        to: a_id,
        candidate: candidate(2),
    })
    .unwrap();
    let got = message(b_events, "a's candidate", |m| match m {
        ServerMsg::IceCandidate {
            from, candidate, ..
        } if *from == a_id => Some(candidate.clone()),
        _ => None,
    })
    .await;
    assert_eq!(got, candidate(1));
    let got = message(a_events, "b's candidate", |m| match m {
        ServerMsg::IceCandidate {
            from, candidate, ..
        } if *from == b_id => Some(candidate.clone()),
        _ => None,
    })
    .await;
    assert_eq!(got, candidate(2));
}

/// Alice and Bob, members of one room, both connected and in its call.
struct Call {
    room: RoomId,
    alice: SignalingClient,
    alice_events: SignalingEvents,
    alice_id: ParticipantId,
    bob: SignalingClient,
    bob_events: SignalingEvents,
    bob_id: ParticipantId,
}

async fn meet_in_call(server: &TestServer) -> Call {
    let alice_account = Account::sign_up(server, "alice").await;
    let bob_account = Account::sign_up(server, "bob").await;
    let room = alice_account.create_room().await;
    bob_account.join_room(room).await;

    let (alice, mut alice_events) = SignalingClient::start(config(server), alice_account);
    let (bob, mut bob_events) = SignalingClient::start(config(server), bob_account);
    let alice_id = connected(&mut alice_events).await;
    let bob_id = connected(&mut bob_events).await;

    alice
        .send(ClientMsg::JoinCall {
            room_id: room,
            video: true,
        })
        .unwrap();
    message(&mut alice_events, "alice's call_joined", |m| {
        matches!(m, ServerMsg::CallJoined { room_id, .. } if *room_id == room).then_some(())
    })
    .await;
    bob.send(ClientMsg::JoinCall {
        room_id: room,
        video: true,
    })
    .unwrap();
    sees_in_call(&mut bob_events, room, alice_id).await;
    sees_in_call(&mut alice_events, room, bob_id).await;
    Call {
        room,
        alice,
        alice_events,
        alice_id,
        bob,
        bob_events,
        bob_id,
    }
}

async fn two_clients_meet_in_a_call_and_trade_offer_answer_and_candidates(db: Db) {
    init_logs();
    let server = TestServer::start(db).await;
    let Call {
        room,
        alice,
        mut alice_events,
        alice_id,
        bob,
        mut bob_events,
        bob_id,
    } = meet_in_call(&server).await;

    exchange(
        room,
        (&alice, &mut alice_events, alice_id),
        (&bob, &mut bob_events, bob_id),
    )
    .await;

    // Closing ends the stream with a terminal disconnect, and later sends are refused.
    let sender = alice.sender();
    alice.close().await;
    let last = rest(&mut alice_events).await;
    assert!(
        matches!(
            last.last(),
            Some(SignalingEvent::Disconnected { terminal: true, .. })
        ),
        "{last:?}"
    );
    assert!(matches!(
        sender.send(ClientMsg::Ping { nonce: 1 }),
        Err(SendError::Closed)
    ));
    // Bob sees Alice leave the call.
    message(&mut bob_events, "alice leaving", |m| match m {
        ServerMsg::ParticipantLeft { participant_id, .. } if *participant_id == alice_id => {
            Some(())
        }
        _ => None,
    })
    .await;
    bob.close().await;
}

async fn a_short_lived_token_is_renewed_and_the_connection_outlives_it(db: Db) {
    init_logs();
    let server = TestServer::start_with(db, &["--access-token-ttl", "3"]).await;
    let account = Account::sign_up(&server, "carol").await;
    let mut config = config(&server);
    // Renew at half the lifetime: a loaded machine needs the margin.
    config.reauth_fraction = 0.5;
    let (client, mut events) = SignalingClient::start(config, account.clone());
    let (user_id, first_expiry) = until(&mut events, "Connected", |e| match e {
        SignalingEvent::Connected {
            user_id,
            token_expires_at,
            ..
        } => Some((*user_id, *token_expires_at)),
        _ => None,
    })
    .await;
    assert_eq!(user_id, account.user_id);

    // Keep going until well past the first token's expiry, with at least two renewals.
    let mut renewed = 0;
    let outlived = async {
        loop {
            let event = events.recv().await.unwrap();
            match event {
                SignalingEvent::Message(msg) => {
                    if let ServerMsg::Reauthenticated { token_expires_at } = *msg {
                        assert!(token_expires_at >= first_expiry);
                        renewed += 1;
                    }
                }
                other => panic!("the connection did not survive: {other:?}"),
            }
            if renewed >= 2 && unix_now() > first_expiry + 2 {
                return;
            }
        }
    };
    timeout(WAIT, outlived)
        .await
        .expect("timed out waiting for renewals");
    assert!(account.renewals.load(Ordering::SeqCst) >= 2);
    assert_eq!(account.connects.load(Ordering::SeqCst), 1, "it reconnected");

    // Still the same connection, and it still works.
    client.send(ClientMsg::Ping { nonce: 7 }).unwrap();
    message(&mut events, "pong", |m| {
        matches!(m, ServerMsg::Pong { nonce: 7 }).then_some(())
    })
    .await;
    client.close().await;
}

async fn a_quiet_connection_stays_open_because_the_server_pings_are_answered(db: Db) {
    init_logs();
    // The server pings every second and drops a client silent for two.
    let server =
        TestServer::start_with(db, &["--ws-heartbeat", "1", "--ws-idle-timeout", "2"]).await;
    let account = Account::sign_up(&server, "erin").await;
    let (client, mut events) = SignalingClient::start(config(&server), account.clone());
    connected(&mut events).await;

    // The application sends nothing for several idle timeouts.
    let quiet = timeout(Duration::from_secs(8), async {
        while let Some(event) = events.recv().await {
            if !matches!(event, SignalingEvent::Message(_)) {
                return Some(event);
            }
        }
        None
    })
    .await;
    assert!(quiet.is_err(), "the quiet connection ended: {quiet:?}");

    client.send(ClientMsg::Ping { nonce: 9 }).unwrap();
    message(&mut events, "pong", |m| {
        matches!(m, ServerMsg::Pong { nonce: 9 }).then_some(())
    })
    .await;
    assert_eq!(account.connects.load(Ordering::SeqCst), 1);
    client.close().await;
}

fn unix_now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    i64::try_from(secs).unwrap()
}

async fn after_a_server_restart_both_clients_reconnect_and_rejoin_the_call(db: Db) {
    init_logs();
    let mut server = TestServer::start(db).await;
    let Call {
        room,
        alice,
        mut alice_events,
        alice_id,
        bob,
        mut bob_events,
        bob_id,
    } = meet_in_call(&server).await;

    // The server goes away while the port stays closed for a moment, then comes back on
    // the same port and database.
    server.stop().await;
    for events in [&mut alice_events, &mut bob_events] {
        let code = until(events, "the disconnect", |e| match e {
            SignalingEvent::Disconnected {
                code,
                terminal: false,
                ..
            } => Some(*code),
            _ => None,
        })
        .await;
        assert_eq!(code, Some(close::GOING_AWAY));
    }
    // While down, only calls the client can replay are accepted.
    assert!(matches!(
        alice.send(ClientMsg::Ping { nonce: 1 }),
        Err(SendError::NotConnected)
    ));
    // Both keep trying while the port refuses connections.
    for events in [&mut alice_events, &mut bob_events] {
        until(events, "a second reconnect attempt", |e| {
            matches!(e, SignalingEvent::Reconnecting { attempt: 2.., .. }).then_some(())
        })
        .await;
    }
    server.start_again().await;

    let alice_new = connected(&mut alice_events).await;
    let bob_new = connected(&mut bob_events).await;
    assert_ne!(alice_new, alice_id);
    assert_ne!(bob_new, bob_id);
    // Both re-joined on their own; each sees the other's new connection in the call.
    sees_in_call(&mut alice_events, room, bob_new).await;
    sees_in_call(&mut bob_events, room, alice_new).await;

    exchange(
        room,
        (&bob, &mut bob_events, bob_new),
        (&alice, &mut alice_events, alice_new),
    )
    .await;
    alice.close().await;
    bob.close().await;
}

async fn a_revoked_session_ends_the_client_without_reconnecting(db: Db) {
    init_logs();
    let server = TestServer::start(db).await;
    let account = Account::sign_up(&server, "dave").await;
    let (client, mut events) = SignalingClient::start(config(&server), account.clone());
    connected(&mut events).await;

    account.logout().await;

    let rest = rest(&mut events).await;
    let disconnects: Vec<_> = rest
        .iter()
        .filter(|e| !matches!(e, SignalingEvent::Message(_)))
        .collect();
    assert!(
        matches!(
            disconnects.as_slice(),
            [SignalingEvent::Disconnected {
                code: Some(close::SESSION_REVOKED),
                terminal: true,
                ..
            }]
        ),
        "{rest:?}"
    );
    assert_eq!(account.connects.load(Ordering::SeqCst), 1);
    assert_eq!(account.renewals.load(Ordering::SeqCst), 0);
    assert!(matches!(
        client.send(ClientMsg::Ping { nonce: 1 }),
        Err(SendError::Closed)
    ));
    client.close().await;
}

async fn a_token_refused_even_after_renewal_stops_the_client(db: Db) {
    init_logs();
    let server = TestServer::start(db).await;
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    let tokens = token_provider_fn(move |_request| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Ok("not-a-valid-token".to_owned()) }
    });
    let (client, mut events) = SignalingClient::start(config(&server), tokens);

    let all = rest(&mut events).await;
    assert!(
        matches!(
            all.as_slice(),
            [
                SignalingEvent::Reconnecting { attempt: 1, .. },
                SignalingEvent::Disconnected {
                    code: Some(close::AUTH_FAILED),
                    terminal: true,
                    ..
                },
            ]
        ),
        "{all:?}"
    );
    // Once as it was, once renewed; then it gave up.
    assert_eq!(asked.load(Ordering::SeqCst), 2);
    client.close().await;
}

/// With the API client as its token provider, a client whose still-fresh token is refused
/// (here: the server restarted with a new signing secret) renews it through a refresh and
/// reconnects, instead of giving up.
async fn a_refused_fresh_token_is_renewed_through_the_api_client(db: Db) {
    let mut server = TestServer::start_with(
        db,
        &["--jwt-secret", "first-secret-0123456789abcdef0123456789"],
    )
    .await;
    let api = confab_core::api::ApiClient::new(
        &server.base,
        Arc::new(confab_core::keystore::MemoryStore::new()),
    )
    .expect("client");
    let name = unique("renew");
    api.register(&RegisterRequest {
        username: name.clone(),
        email: format!("{name}@example.com"),
        password: PASSWORD.to_owned(),
        confirm_password: PASSWORD.to_owned(),
    })
    .await
    .expect("register");
    api.login(&name, PASSWORD).await.expect("login");
    let (client, mut events) = SignalingClient::start(config(&server), Arc::new(api.clone()));
    let first = connected(&mut events).await;

    server
        .restart_with(&["--jwt-secret", "second-secret-0123456789abcdef012345678"])
        .await;

    let again = connected(&mut events).await;
    assert_ne!(
        again, first,
        "a new connection, authenticated with a renewed token"
    );
    client.close().await;
}
