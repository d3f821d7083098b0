//! Test harness: a real server on an ephemeral port over a real database (a fresh SQLite
//! file, or a fresh PostgreSQL database), with real HTTP and WebSocket clients. The
//! server's and the database's lifecycle is `signal_server::testing`, which the client's
//! suites share; the clients are this file's.

#![allow(dead_code, clippy::unwrap_used)]

use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared::api::Message as ChatMessage;
use shared::signal::{ClientMsg, ServerMsg};
pub use signal_server::testing::Db;
use signal_server::testing::TestServer as Harness;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Runs each listed scenario `async fn NAME(db: Db)` once on SQLite and once on
/// PostgreSQL, as `NAME::sqlite` and `NAME::postgres` (`signal_server::on_both_databases`
/// under the name every suite here calls it by).
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        signal_server::on_both_databases!($($name),*);
    };
}

/// A password the server accepts.
pub const PASSWORD: &str = "Correct-Horse-Battery-9";

/// A server over a database of its own (`signal_server::testing::TestServer`) and an
/// HTTP client for it. Dropping it removes the database too, also when a test fails.
pub struct TestServer {
    pub base: String,
    pub ws_url: String,
    pub http: reqwest::Client,
    harness: Harness,
}

/// A signed-in user.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: String,
    pub name: String,
    pub token: String,
    pub refresh: String,
    pub session: String,
}

impl TestServer {
    /// A server with lifted login rate limits (tests log in many users from one address).
    pub async fn start(db: Db) -> Self {
        Self::start_with(db, &[]).await
    }

    /// A server with extra command-line flags, e.g. `["--ws-rate", "5"]`.
    pub async fn start_with(db: Db, flags: &[&str]) -> Self {
        Self::new(Harness::start_with(db, flags).await)
    }

    /// A fresh database and data folder with no server running on them yet: for tests
    /// that run the real `confab-server` binary themselves (set `base` and `ws_url` to
    /// where it listens). `stop` still removes the database.
    pub async fn unstarted(db: Db, flags: &[&str]) -> Self {
        Self::new(Harness::unstarted(db, flags).await)
    }

    fn new(harness: Harness) -> Self {
        Self {
            base: harness.base.clone(),
            ws_url: harness.ws_url.clone(),
            http: reqwest::Client::new(),
            harness,
        }
    }

    /// Another node on this server's database (see `Harness::another_node`).
    pub async fn another_node(&self, flags: &[&str]) -> Self {
        Self::new(self.harness.another_node(flags).await)
    }

    /// The server's command line, for running the real binary on it.
    pub fn args(&self) -> Vec<String> {
        self.harness.args()
    }

    /// The database URL the server runs on.
    pub fn database_url(&self) -> &str {
        self.harness.database_url()
    }

    /// The server's data folder.
    pub fn data_dir(&self) -> &std::path::Path {
        self.harness.data_dir()
    }

    /// `http://ADDR/metrics`, with `--metrics-bind`.
    pub fn metrics_url(&self) -> Option<String> {
        self.harness
            .server()
            .metrics_addr
            .map(|a| format!("http://{a}/metrics"))
    }

    /// The running server's database pool, for a test that must reach past the API
    /// (say, to age a token).
    pub fn pool(&self) -> &sqlx::AnyPool {
        &self.harness.server().state.pool
    }

    /// The running server's file service (storage, link signing), for the sweep and
    /// for links a client could not make (an expired one).
    pub fn files(&self) -> &std::sync::Arc<signal_server::files::Files> {
        &self.harness.server().state.files
    }

    /// Shuts down gracefully and starts again on the same database, data dir and port.
    pub async fn restart(&mut self) {
        self.harness.restart().await;
    }

    /// Shuts down gracefully (WebSockets get 1001), keeping the database.
    pub async fn shutdown_only(&mut self) {
        self.harness.stop().await;
    }

    /// Shuts down and deletes the database.
    pub async fn stop(self) {
        self.harness.remove().await;
    }

    /// Any request; returns the status and the JSON body (Null when empty).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, json)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.request(Method::POST, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.request(Method::DELETE, path, token, None).await
    }

    pub async fn register(&self, name: &str) -> (StatusCode, Value) {
        self.post(
            "/api/auth/register",
            None,
            json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD, "confirm_password": PASSWORD}),
        )
        .await
    }

    pub async fn login(&self, login: &str, password: &str) -> (StatusCode, Value) {
        self.post(
            "/api/auth/login",
            None,
            json!({"login": login, "password": password}),
        )
        .await
    }

    /// Registers and logs in.
    pub async fn user(&self, name: &str) -> TestUser {
        let (status, body) = self.register(name).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        self.sign_in(name).await
    }

    /// Logs in an existing user (a new session).
    pub async fn sign_in(&self, name: &str) -> TestUser {
        let (status, body) = self.login(name, PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        TestUser {
            id: body["user"]["id"].as_str().unwrap().to_owned(),
            name: name.to_owned(),
            token: body["access_token"].as_str().unwrap().to_owned(),
            refresh: body["refresh_token"].as_str().unwrap().to_owned(),
            session: body["session_id"].as_str().unwrap().to_owned(),
        }
    }

    /// Creates a room owned by `owner`; returns its id.
    pub async fn room(&self, owner: &TestUser, max: u32) -> String {
        let (status, body) = self
            .post(
                "/api/rooms",
                Some(&owner.token),
                json!({"title": "Standup", "max_participants": max}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    pub async fn join(&self, user: &TestUser, room: &str) -> (StatusCode, Value) {
        self.post(
            &format!("/api/rooms/{room}/join"),
            Some(&user.token),
            json!({}),
        )
        .await
    }

    /// Makes two users contacts: `a` asks, `b` asks back (which accepts at once).
    pub async fn befriend(&self, a: &TestUser, b: &TestUser) {
        let (status, body) = self
            .post(
                "/api/contacts/requests",
                Some(&a.token),
                json!({"user_id": b.id}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = self
            .post(
                "/api/contacts/requests",
                Some(&b.token),
                json!({"user_id": a.id}),
            )
            .await;
        assert_eq!(
            (status, body["status"].as_str()),
            (StatusCode::OK, Some("accepted")),
            "asking back accepts: {body}"
        );
    }

    /// Sends a chat message over REST with an idempotency key; errors (a server that is
    /// down) come back as they are.
    pub async fn try_send_message(
        &self,
        user: &TestUser,
        room: &str,
        key: &str,
        body: &str,
    ) -> reqwest::Result<(StatusCode, Value)> {
        let resp = self
            .http
            .post(format!("{}/api/rooms/{room}/messages", self.base))
            .bearer_auth(&user.token)
            .header("idempotency-key", key)
            .json(&json!({ "body": body }))
            .timeout(Duration::from_secs(5))
            .send()
            .await?;
        let status = resp.status();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    /// Sends a chat message over REST with an idempotency key.
    pub async fn send_message(
        &self,
        user: &TestUser,
        room: &str,
        key: &str,
        body: &str,
    ) -> (StatusCode, Value) {
        self.try_send_message(user, room, key, body).await.unwrap()
    }

    /// Sends a chat message with a fresh key and expects it stored.
    pub async fn post_message(&self, user: &TestUser, room: &str, body: &str) -> ChatMessage {
        let key = uuid::Uuid::new_v4().to_string();
        let (status, msg) = self.send_message(user, room, &key, body).await;
        assert_eq!(status, StatusCode::CREATED, "{msg}");
        serde_json::from_value(msg).unwrap()
    }

    /// A room's whole timeline as `user` pages it, oldest first.
    pub async fn all_messages(&self, user: &TestUser, room: &str) -> Vec<ChatMessage> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let (status, page) = self
                .get(
                    &format!("/api/rooms/{room}/messages?after={after}&limit=100"),
                    Some(&user.token),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let msgs: Vec<ChatMessage> = serde_json::from_value(page["messages"].clone()).unwrap();
            let Some(last) = msgs.last() else { break };
            after = last.seq;
            out.extend(msgs);
            if page["has_more_after"] == false {
                break;
            }
        }
        out
    }

    /// A WebSocket that authenticated with an `auth` message and got `welcome` and the
    /// presence snapshot.
    pub async fn ws(&self, user: &TestUser) -> Ws {
        let mut ws = Ws::connect(&self.ws_url).await;
        ws.send(&ClientMsg::Auth {
            token: user.token.clone(),
            protocol_version: shared::signal::PROTOCOL_VERSION,
        })
        .await;
        let welcome = ws.recv().await;
        let ServerMsg::Welcome { participant_id, .. } = welcome else {
            panic!("expected welcome, got {welcome:?}")
        };
        ws.participant = participant_id.to_string();
        assert!(matches!(
            ws.recv().await,
            ServerMsg::PresenceSnapshot { .. }
        ));
        ws
    }
}

/// How long a test waits for a message that should come.
pub const WAIT: Duration = Duration::from_secs(5);

/// A WebSocket client speaking the typed protocol.
pub struct Ws {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// This connection's participant id (after `welcome`).
    pub participant: String,
}

impl Ws {
    pub async fn connect(url: &str) -> Self {
        let (stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Self {
            stream,
            participant: String::new(),
        }
    }

    pub async fn send(&mut self, msg: &ClientMsg) {
        self.send_text(&serde_json::to_string(msg).unwrap()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream.send(Message::text(text)).await.unwrap();
    }

    pub async fn send_json(&mut self, value: Value) {
        self.send_text(&value.to_string()).await;
    }

    /// The next protocol message (pings and pongs skipped); panics on close or timeout.
    pub async fn recv(&mut self) -> ServerMsg {
        loop {
            let frame = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("timed out waiting for a message")
                .expect("connection ended")
                .expect("read failed");
            match frame {
                Message::Text(t) => {
                    return serde_json::from_str(&t)
                        .unwrap_or_else(|e| panic!("bad message {t}: {e}"));
                }
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a message, got {other:?}"),
            }
        }
    }

    /// Skips messages until one matches.
    pub async fn recv_until(&mut self, pred: impl Fn(&ServerMsg) -> bool) -> ServerMsg {
        loop {
            let msg = self.recv().await;
            if pred(&msg) {
                return msg;
            }
        }
    }

    /// Reads and drops whatever arrives until things are quiet for a moment.
    pub async fn drain(&mut self) {
        while let Ok(Some(Ok(_))) =
            tokio::time::timeout(Duration::from_millis(300), self.stream.next()).await
        {}
    }

    /// Asserts nothing arrives for a short while.
    pub async fn expect_silence(&mut self) {
        match tokio::time::timeout(Duration::from_millis(300), self.stream.next()).await {
            Err(_) => {}
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
            Ok(other) => panic!("expected nothing, got {other:?}"),
        }
    }

    /// Reads until the server closes; returns the close code.
    pub async fn closed(&mut self) -> u16 {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(15), self.stream.next())
                .await
                .expect("timed out waiting for close");
            match frame {
                Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
                Some(Ok(Message::Close(None))) => return u16::from(CloseCode::Status),
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("read failed before a close frame: {e}"),
                None => panic!("connection ended without a close frame"),
            }
        }
    }
}
