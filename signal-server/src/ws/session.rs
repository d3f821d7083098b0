//! One WebSocket session: authenticate, then one loop that reads the client's messages,
//! writes its queue, pings it and watches its token, until either side closes.
//!
//! The loop is generic over `Sink`/`Stream`, so tests can drive it without a socket.

use crate::auth::AuthUser;
use crate::chat;
use crate::db;
use crate::error::ApiError;
use crate::state::AppState;
use crate::ws::hub::{Kick, Outlet, RelayError, encode};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use shared::api::RoomKind;
use shared::signal::{
    AUTH_TIMEOUT_SECS, ClientMsg, MAX_MESSAGE_BYTES, PROTOCOL_VERSION, Participant, ServerMsg,
    close,
};
use shared::{ErrorCode, ErrorDetail, ParticipantId, RoomId};
use std::fmt::Display;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep, sleep_until};

/// A write that takes longer than this means the client stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Most queued messages written with one flush.
const WRITE_BATCH: usize = 64;

/// How long a closing connection waits for the client's close frame.
const CLOSE_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Messages refused in a row for the rate limit before the connection is closed.
const RATE_STRIKES: u32 = 50;

/// Runs a session to its end.
pub async fn run<S, E>(mut socket: S, state: AppState, pre_auth: Option<AuthUser>)
where
    S: Stream<Item = Result<Message, E>> + Sink<Message, Error = E> + Unpin,
    E: Display,
{
    let auth = match pre_auth {
        Some(auth) => auth,
        None => match authenticate(&mut socket, &state).await {
            Some(auth) => auth,
            None => return,
        },
    };
    let user = match db::users::by_id(&state.pool, auth.user_id).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            return close_with(
                &mut socket,
                close::AUTH_FAILED,
                "the account no longer exists",
            )
            .await;
        }
        Err(e) => {
            tracing::error!(error = %e, "loading user for WebSocket");
            return close_with(&mut socket, close::GOING_AWAY, "server error; retry").await;
        }
    };
    let id = ParticipantId::new();
    let info = Participant {
        participant_id: id,
        user_id: auth.user_id,
        username: user.username.clone(),
        display_name: user.display_name.clone(),
        audio_muted: false,
        video_muted: false,
    };
    let (tx, rx) = mpsc::channel(state.config.ws_queue.max(1));
    let kick = Arc::new(Kick::default());
    // A user's presence is the best of their connections': a new one can turn "idle"
    // into "online", and closing one can leave only idle ones behind.
    let before = state.hub.status(auth.user_id);
    state.hub.register(
        id,
        auth.session_id,
        info,
        Outlet {
            tx,
            kick: kick.clone(),
        },
    );
    // With `--redis-url`: events for the user reach this node before the client is
    // welcomed (and catches up), so none falls between the two (see `cluster`).
    crate::cluster::settle(&state).await;
    let mut session = Session::new(state.clone(), id, auth, rx, kick);
    let changed = state.hub.status(session.auth.user_id) != before;
    session.start(&mut socket, changed).await;
    session.serve(&mut socket).await;
    let before = state.hub.status(session.auth.user_id);
    state.hub.unregister(id);
    if state.hub.status(session.auth.user_id) != before {
        session.announce_presence().await;
    }
}

/// Waits for the `auth` message. Returns `None` when the connection is over.
async fn authenticate<S, E>(socket: &mut S, state: &AppState) -> Option<AuthUser>
where
    S: Stream<Item = Result<Message, E>> + Sink<Message, Error = E> + Unpin,
    E: Display,
{
    let deadline = Instant::now() + Duration::from_secs(AUTH_TIMEOUT_SECS);
    loop {
        let next = tokio::select! {
            () = sleep_until(deadline) => {
                close_with(socket, close::AUTH_TIMEOUT, "no auth message in time").await;
                return None;
            }
            () = state.shutdown.cancelled() => {
                close_with(socket, close::GOING_AWAY, "server shutting down").await;
                return None;
            }
            next = socket.next() => next,
        };
        let text = match next {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
            Some(Ok(_)) => continue,
        };
        match serde_json::from_str::<ClientMsg>(&text) {
            Ok(ClientMsg::Auth {
                token,
                protocol_version,
            }) => {
                if protocol_version != PROTOCOL_VERSION {
                    let message = format!("this server speaks protocol version {PROTOCOL_VERSION}");
                    send_error(socket, ErrorCode::UnsupportedVersion, message, Some("auth")).await;
                    close_with(
                        socket,
                        close::UNSUPPORTED_VERSION,
                        "unsupported protocol version",
                    )
                    .await;
                    return None;
                }
                match AuthUser::from_token(state, &token).await {
                    Ok(auth) => return Some(auth),
                    Err(e @ ApiError::Unauthorized(_)) => {
                        send_error(socket, ErrorCode::Unauthorized, e.to_string(), Some("auth"))
                            .await;
                        close_with(socket, close::AUTH_FAILED, "authentication failed").await;
                        return None;
                    }
                    Err(e) => {
                        // A server fault, not a bad token: the client should retry, not
                        // send its user back to the login screen.
                        tracing::error!(error = ?e, "checking a WebSocket token");
                        send_error(
                            socket,
                            ErrorCode::Internal,
                            "server error; retry",
                            Some("auth"),
                        )
                        .await;
                        close_with(socket, close::GOING_AWAY, "server error; retry").await;
                        return None;
                    }
                }
            }
            Ok(other) => {
                let message = "authenticate first: send an auth message";
                send_error(socket, ErrorCode::AuthState, message, Some(other.kind())).await;
            }
            Err(e) => {
                let kind = Meta::of(&text).kind;
                send_error(
                    socket,
                    ErrorCode::InvalidMessage,
                    e.to_string(),
                    kind.as_deref(),
                )
                .await;
            }
        }
    }
}

struct Session {
    state: AppState,
    id: ParticipantId,
    auth: AuthUser,
    rx: mpsc::Receiver<Utf8Bytes>,
    kick: Arc<Kick>,
    limiter: DefaultDirectRateLimiter,
    strikes: u32,
    expiry: Pin<Box<Sleep>>,
    last_seen: Instant,
}

/// What the loop does after handling a message.
enum Flow {
    Continue,
    /// The server closes with this code.
    Close(u16, &'static str),
    /// The client sent a close frame; tungstenite has queued the echo RFC 6455 asks for.
    ClientClosed,
}

impl Session {
    fn new(
        state: AppState,
        id: ParticipantId,
        auth: AuthUser,
        rx: mpsc::Receiver<Utf8Bytes>,
        kick: Arc<Kick>,
    ) -> Self {
        let rate = NonZeroU32::new(state.config.ws_rate.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = rate.saturating_mul(NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN));
        let expiry = Box::pin(sleep_until(instant_at(auth.expires_at)));
        Self {
            state,
            id,
            auth,
            rx,
            kick,
            limiter: RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)),
            strikes: 0,
            expiry,
            last_seen: Instant::now(),
        }
    }

    /// Sends `welcome` and the presence snapshot; tells contacts and co-members when this
    /// connection changed the user's presence.
    async fn start<S, E>(&mut self, socket: &mut S, presence_changed: bool)
    where
        S: Sink<Message, Error = E> + Unpin,
    {
        let config = &self.state.config;
        let welcome = ServerMsg::Welcome {
            protocol_version: PROTOCOL_VERSION,
            user_id: self.auth.user_id,
            participant_id: self.id,
            token_expires_at: self.auth.expires_at,
            heartbeat_secs: config.ws_heartbeat,
            idle_timeout_secs: config.ws_idle_timeout,
            max_message_bytes: MAX_MESSAGE_BYTES,
        };
        send(socket, &welcome).await;
        let co_members =
            match db::contacts::presence_audience(&self.state.pool, self.auth.user_id).await {
                Ok(users) => users,
                Err(e) => {
                    tracing::warn!(error = %e, "loading contacts and co-members for presence");
                    Vec::new()
                }
            };
        let online = self.state.hub.online(&co_members);
        send(socket, &ServerMsg::PresenceSnapshot { online }).await;
        if presence_changed {
            self.state
                .hub
                .announce_presence_change(self.auth.user_id, &co_members);
        }
    }

    /// Tells contacts and co-members the user's presence changed (online, idle, or
    /// offline after their last connection closed).
    async fn announce_presence(&self) {
        match db::contacts::presence_audience(&self.state.pool, self.auth.user_id).await {
            Ok(audience) => self
                .state
                .hub
                .announce_presence_change(self.auth.user_id, &audience),
            Err(e) => tracing::warn!(error = %e, "loading contacts and co-members for presence"),
        }
    }

    async fn serve<S, E>(&mut self, socket: &mut S)
    where
        S: Stream<Item = Result<Message, E>> + Sink<Message, Error = E> + Unpin,
        E: Display,
    {
        let heartbeat = Duration::from_secs(self.state.config.ws_heartbeat.max(1));
        let idle_timeout = Duration::from_secs(self.state.config.ws_idle_timeout.max(1));
        let mut ticker = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
        let shutdown = self.state.shutdown.clone();
        let kick = self.kick.clone();
        let flow = loop {
            let flow = tokio::select! {
                () = shutdown.cancelled() => Flow::Close(close::GOING_AWAY, "server shutting down"),
                code = kick.kicked() => Flow::Close(code, kick_reason(code)),
                () = &mut self.expiry => Flow::Close(close::TOKEN_EXPIRED, "access token expired; reconnect"),
                _ = ticker.tick() => {
                    if self.last_seen.elapsed() > idle_timeout {
                        Flow::Close(close::IDLE_TIMEOUT, "idle timeout")
                    } else if write(socket, Message::Ping(Default::default())).await {
                        Flow::Continue
                    } else {
                        break None;
                    }
                }
                queued = self.rx.recv() => match queued {
                    Some(text) => if self.write_queued(socket, text).await { Flow::Continue } else { break None },
                    None => break None,
                },
                inbound = socket.next() => match inbound {
                    Some(Ok(msg)) => {
                        self.last_seen = Instant::now();
                        self.on_frame(socket, msg).await
                    }
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, participant = %self.id, "WebSocket read failed");
                        read_error_close(&e)
                    }
                    None => break None,
                },
            };
            match flow {
                Flow::Continue => {}
                Flow::Close(code, reason) => break Some((code, reason)),
                Flow::ClientClosed => {
                    let _ = tokio::time::timeout(WRITE_TIMEOUT, socket.flush()).await;
                    break None;
                }
            }
        };
        if let Some((code, reason)) = flow {
            close_with(socket, code, reason).await;
        }
    }

    /// Writes a queued message and whatever else is already queued behind it, then
    /// flushes once: under load one system call carries many messages.
    async fn write_queued<S, E>(&mut self, socket: &mut S, first: Utf8Bytes) -> bool
    where
        S: Sink<Message, Error = E> + Unpin,
    {
        let batch = async {
            socket.feed(Message::Text(first)).await?;
            for _ in 1..WRITE_BATCH {
                match self.rx.try_recv() {
                    Ok(text) => socket.feed(Message::Text(text)).await?,
                    Err(_) => break,
                }
            }
            socket.flush().await
        };
        matches!(tokio::time::timeout(WRITE_TIMEOUT, batch).await, Ok(Ok(())))
    }

    async fn on_frame<S, E>(&mut self, socket: &mut S, msg: Message) -> Flow
    where
        S: Sink<Message, Error = E> + Unpin,
    {
        if matches!(msg, Message::Text(_) | Message::Binary(_)) {
            if self.limiter.check().is_err() {
                self.strikes += 1;
                if self.strikes >= RATE_STRIKES {
                    return Flow::Close(close::RATE_LIMITED, "too many messages");
                }
                return reply_error(
                    socket,
                    ErrorCode::RateLimited,
                    "too many messages; this one was dropped",
                    None,
                )
                .await;
            }
            self.strikes = 0;
        }
        match msg {
            Message::Text(text) => self.on_text(socket, text).await,
            Message::Binary(_) => {
                reply_error(
                    socket,
                    ErrorCode::InvalidMessage,
                    "binary frames are not supported; send JSON text",
                    None,
                )
                .await
            }
            Message::Close(_) => Flow::ClientClosed,
            Message::Ping(_) | Message::Pong(_) => Flow::Continue,
        }
    }

    async fn on_text<S, E>(&mut self, socket: &mut S, text: Utf8Bytes) -> Flow
    where
        S: Sink<Message, Error = E> + Unpin,
    {
        if text.len() > MAX_MESSAGE_BYTES {
            let message = format!("messages are limited to {MAX_MESSAGE_BYTES} bytes");
            return reply_error(socket, ErrorCode::PayloadTooLarge, message, None).await;
        }
        let msg = match serde_json::from_str::<ClientMsg>(&text) {
            Ok(msg) => msg,
            Err(e) => {
                // Whatever of it can be read says which request failed.
                let meta = Meta::of(&text);
                let msg = ServerMsg::Error {
                    error: detail(ErrorCode::InvalidMessage, e.to_string()),
                    in_reply_to: meta.kind,
                    request_id: meta.request_id,
                    client_id: meta.client_id,
                };
                send(socket, &msg).await;
                return Flow::Continue;
            }
        };
        let kind = msg.kind();
        // Only messages that carry one pay for a second look.
        let request_id = if text.contains("\"request_id\"") {
            request_id(&text)
        } else {
            None
        };
        let client_id = match &msg {
            ClientMsg::SendMessage { client_id, .. } => Some(client_id.clone()),
            _ => None,
        };
        let started = std::time::Instant::now();
        let handled = self.on_message(msg, request_id).await;
        // Time to handle one message, by type: for a relay, from reading it to queuing
        // it for the addressee (or the call's home).
        metrics::histogram!("confab_ws_handler_duration_seconds", "type" => kind)
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("confab_ws_messages_total", "type" => kind).increment(1);
        match handled {
            Ok(Some(reply)) => {
                send(socket, &reply).await;
                Flow::Continue
            }
            Ok(None) => Flow::Continue,
            Err(error) => {
                let msg = ServerMsg::Error {
                    error,
                    in_reply_to: Some(kind.to_owned()),
                    request_id,
                    client_id,
                };
                send(socket, &msg).await;
                Flow::Continue
            }
        }
    }

    /// Handles one message. Returns a direct reply, if any, or an error to send back.
    async fn on_message(
        &mut self,
        msg: ClientMsg,
        request_id: Option<u64>,
    ) -> Result<Option<ServerMsg>, ErrorDetail> {
        let from_user = self.auth.user_id;
        let api = |e: ApiError| e.detail();
        match msg {
            ClientMsg::SendMessage {
                room_id,
                client_id,
                body,
                reply_to,
                attachments,
            } => {
                let (message, _) = chat::send(
                    &self.state,
                    from_user,
                    room_id,
                    &client_id,
                    &body,
                    reply_to,
                    &attachments,
                    Some(self.id),
                )
                .await
                .map_err(api)?;
                Ok(Some(ServerMsg::MessageAck {
                    client_id,
                    message,
                    request_id,
                }))
            }
            ClientMsg::Typing { room_id } => {
                chat::typing(&self.state, self.id, from_user, room_id)
                    .await
                    .map_err(api)?;
                Ok(None)
            }
            ClientMsg::Read { room_id, seq } => {
                chat::mark(&self.state, from_user, room_id, seq, true)
                    .await
                    .map_err(api)?;
                Ok(None)
            }
            ClientMsg::Delivered { room_id, seq } => {
                chat::mark(&self.state, from_user, room_id, seq, false)
                    .await
                    .map_err(api)?;
                Ok(None)
            }
            ClientMsg::SetPresence { status } => {
                if self.state.hub.set_presence(self.id, status) {
                    self.announce_presence().await;
                }
                Ok(None)
            }
            ClientMsg::DeclineCall { room_id } => {
                if self.state.hub.decline_call(room_id, from_user) {
                    Ok(None)
                } else {
                    Err(detail(
                        ErrorCode::NotFound,
                        "no call is ringing for you in this room",
                    ))
                }
            }
            other => self
                .on_call_message(other, request_id)
                .await
                .map_err(|(code, message)| detail(code, message)),
        }
    }

    /// Call signaling (and the session messages of protocol v1).
    async fn on_call_message(
        &mut self,
        msg: ClientMsg,
        request_id: Option<u64>,
    ) -> Result<Option<ServerMsg>, (ErrorCode, String)> {
        let from_user = self.auth.user_id;
        match msg {
            ClientMsg::Auth { .. } => Err((ErrorCode::AuthState, "already authenticated".into())),
            ClientMsg::Reauth { token } => {
                let auth =
                    AuthUser::from_token(&self.state, &token)
                        .await
                        .map_err(|e| match e {
                            ApiError::Unauthorized(_) => (ErrorCode::Unauthorized, e.to_string()),
                            other => {
                                tracing::error!(error = ?other, "checking a reauth token");
                                (ErrorCode::Internal, "server error; retry".to_owned())
                            }
                        })?;
                if auth.user_id != self.auth.user_id {
                    return Err((
                        ErrorCode::Forbidden,
                        "the token belongs to another user".into(),
                    ));
                }
                self.expiry.as_mut().reset(instant_at(auth.expires_at));
                self.state.hub.set_session(self.id, auth.session_id);
                let token_expires_at = auth.expires_at;
                self.auth = auth;
                Ok(Some(ServerMsg::Reauthenticated { token_expires_at }))
            }
            ClientMsg::Ping { nonce } => Ok(Some(ServerMsg::Pong { nonce })),
            ClientMsg::JoinCall { room_id, video } => {
                let room = db::rooms::for_member(&self.state.pool, room_id, self.auth.user_id)
                    .await
                    .map_err(|e| {
                        tracing::error!(error = %e, "loading room for join_call");
                        (ErrorCode::Internal, "internal error".to_owned())
                    })?
                    .ok_or((ErrorCode::NotFound, "no such room".to_owned()))?;
                let kind = room.kind().unwrap_or(RoomKind::Group);
                let context = chat::call_context(&self.state, room_id, from_user, kind, video)
                    .await
                    .map_err(|e| {
                        let d = e.detail();
                        (d.code, d.message)
                    })?;
                let max = usize::try_from(room.max_participants).unwrap_or(0);
                // With `--redis-url` the call may be homed on another node (see `cluster`).
                crate::cluster::join_call(&self.state, self.id, room_id, max, context, request_id)
                    .await
                    .map_err(|_| (ErrorCode::RoomFull, "the call is full".to_owned()))?;
                Ok(None)
            }
            ClientMsg::LeaveCall { room_id } => {
                if self.state.hub.leave_call(self.id, room_id) {
                    Ok(None)
                } else {
                    Err(not_in_call(RelayError::NotInCall))
                }
            }
            ClientMsg::Offer { room_id, to, sdp } => self.relay(
                room_id,
                to,
                ServerMsg::Offer {
                    room_id,
                    from: self.id,
                    from_user,
                    sdp,
                },
            ),
            ClientMsg::Answer { room_id, to, sdp } => self.relay(
                room_id,
                to,
                ServerMsg::Answer {
                    room_id,
                    from: self.id,
                    from_user,
                    sdp,
                },
            ),
            ClientMsg::IceCandidate {
                room_id,
                to,
                candidate,
            } => self.relay(
                room_id,
                to,
                ServerMsg::IceCandidate {
                    room_id,
                    from: self.id,
                    from_user,
                    candidate,
                },
            ),
            ClientMsg::MediaState {
                room_id,
                audio_muted,
                video_muted,
            } => self
                .state
                .hub
                .media_state(self.id, room_id, audio_muted, video_muted)
                .map(|()| None)
                .map_err(not_in_call),
            // Handled by `on_message`.
            ClientMsg::SendMessage { .. }
            | ClientMsg::Typing { .. }
            | ClientMsg::Read { .. }
            | ClientMsg::Delivered { .. }
            | ClientMsg::SetPresence { .. }
            | ClientMsg::DeclineCall { .. } => Ok(None),
        }
    }

    fn relay(
        &self,
        room: RoomId,
        to: ParticipantId,
        msg: ServerMsg,
    ) -> Result<Option<ServerMsg>, (ErrorCode, String)> {
        self.state
            .hub
            .relay(self.id, room, to, &msg)
            .map(|()| None)
            .map_err(not_in_call)
    }
}

fn detail(code: ErrorCode, message: impl Into<String>) -> ErrorDetail {
    ErrorDetail {
        code,
        message: message.into(),
        fields: None,
    }
}

/// The `request_id` of a client message, if it has one.
fn request_id(text: &str) -> Option<u64> {
    Meta::of(text).request_id
}

/// What can be read of a client message that may not parse as a whole.
#[derive(Debug, Default)]
struct Meta {
    kind: Option<String>,
    request_id: Option<u64>,
    client_id: Option<String>,
}

impl Meta {
    fn of(text: &str) -> Self {
        let Ok(serde_json::Value::Object(map)) = serde_json::from_str(text) else {
            return Self::default();
        };
        let short = |key: &str| {
            map.get(key)
                .and_then(|v| v.as_str())
                .map(|s| s.chars().take(64).collect::<String>())
        };
        Self {
            kind: short("type"),
            request_id: map.get("request_id").and_then(serde_json::Value::as_u64),
            client_id: short("client_id"),
        }
    }
}

fn not_in_call(e: RelayError) -> (ErrorCode, String) {
    match e {
        RelayError::NotInCall => (
            ErrorCode::NotInCall,
            "you are not in this room's call".into(),
        ),
        RelayError::UnknownParticipant => (
            ErrorCode::UnknownParticipant,
            "that participant is not in your call".into(),
        ),
    }
}

/// The close for a failed read. tungstenite reports an over-long frame as a capacity
/// error ("Space limit exceeded"); axum hides the error type, so only its text tells.
fn read_error_close(e: &impl Display) -> Flow {
    if e.to_string().contains("Space limit exceeded") {
        Flow::Close(close::MESSAGE_TOO_BIG, "message too big")
    } else {
        Flow::Close(close::PROTOCOL_ERROR, "WebSocket protocol error")
    }
}

fn kick_reason(code: u16) -> &'static str {
    match code {
        close::SESSION_REVOKED => "session revoked",
        close::SLOW_CONSUMER => "too slow to read messages",
        close::REPLACED => "replaced by a newer connection of this session",
        _ => "closed by server",
    }
}

/// The `Instant` at a unix time (seconds).
fn instant_at(unix_secs: i64) -> Instant {
    let remaining = unix_secs.saturating_sub(db::now()).max(0);
    Instant::now() + Duration::from_secs(u64::try_from(remaining).unwrap_or(0))
}

async fn write<S, E>(socket: &mut S, msg: Message) -> bool
where
    S: Sink<Message, Error = E> + Unpin,
{
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, socket.send(msg)).await,
        Ok(Ok(()))
    )
}

async fn send<S, E>(socket: &mut S, msg: &ServerMsg) -> bool
where
    S: Sink<Message, Error = E> + Unpin,
{
    write(socket, Message::Text(encode(msg))).await
}

async fn send_error<S, E>(
    socket: &mut S,
    code: ErrorCode,
    message: impl Into<String>,
    in_reply_to: Option<&str>,
) -> bool
where
    S: Sink<Message, Error = E> + Unpin,
{
    let msg = ServerMsg::Error {
        error: detail(code, message),
        in_reply_to: in_reply_to.map(str::to_owned),
        request_id: None,
        client_id: None,
    };
    send(socket, &msg).await
}

async fn reply_error<S, E>(
    socket: &mut S,
    code: ErrorCode,
    message: impl Into<String>,
    in_reply_to: Option<&str>,
) -> Flow
where
    S: Sink<Message, Error = E> + Unpin,
{
    send_error(socket, code, message, in_reply_to).await;
    Flow::Continue
}

/// Sends a close frame, then reads (and drops) what the client still sends until its own
/// close frame, as RFC 6455 asks: dropping a socket with unread input makes the kernel
/// send a reset, which can destroy the close frame before the client reads it.
async fn close_with<S, E>(socket: &mut S, code: u16, reason: &'static str)
where
    S: Stream<Item = Result<Message, E>> + Sink<Message, Error = E> + Unpin,
{
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    if !matches!(
        tokio::time::timeout(WRITE_TIMEOUT, socket.send(Message::Close(Some(frame)))).await,
        Ok(Ok(()))
    ) {
        return;
    }
    let drain = async {
        while let Some(Ok(msg)) = socket.next().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_DRAIN_TIMEOUT, drain).await;
}
