//! The signaling client: one WebSocket to the server's `/ws` that speaks the typed
//! [`shared::signal`] messages and keeps itself up.
//!
//! [`SignalingClient::start`] returns the client (to send) and [`SignalingEvents`] (to
//! receive). Behind them, one task connects, authenticates, reads and reconnects (the
//! reader), and each connection gets a writer task that drains a bounded queue into the
//! socket. The reader owns the writer and joins it before it reconnects; the client owns
//! the reader and joins it on [`SignalingClient::close`] (after livekit's
//! `signal_client/signal_stream.rs`). Reading never waits for a write, so the pongs that
//! tungstenite queues for the server's pings always go out (`docs/protocol.md` §7.6).
//!
//! What the client does on its own, following `docs/protocol.md`:
//! - authenticates with an `auth` first message (§2.2);
//! - sends `reauth` with a fresh token before the access token expires (§2.5);
//! - reconnects with exponential backoff and jitter after a network loss or a close that
//!   allows it, and stops for good on 4003, 4004 and a 4001 that a renewed token also
//!   gets (§8);
//! - after a reconnect, re-joins the call the application was in (§5.8).

use async_trait::async_trait;
use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, Stream, StreamExt};
use shared::signal::{
    ClientMsg, MAX_MESSAGE_BYTES, PROTOCOL_VERSION, SUBPROTOCOL, ServerMsg, close,
};
use shared::{ParticipantId, RoomId, UserId};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_PROTOCOL;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type TokenFuture = Pin<Box<dyn Future<Output = Result<String, TokenError>> + Send>>;

/// After sending its close frame, how long the client waits for the server's (the
/// server waits as long for ours, `docs/protocol.md` §8).
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// A write that takes longer than this means the connection is dead; the server uses
/// the same limit.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// 4005 asks for "a backoff of at least a few seconds".
const RATE_LIMITED_FLOOR: Duration = Duration::from_secs(5);
/// Relayed messages are slightly bigger than what their sender may send; the server's
/// own hard limit is four times [`MAX_MESSAGE_BYTES`], so nothing legitimate is bigger.
const MAX_INBOUND_BYTES: usize = 4 * MAX_MESSAGE_BYTES;
/// The reauth schedule never fires sooner than this, so that a token that seems already
/// expired (a skewed clock) cannot make the client loop.
const MIN_REAUTH_DELAY: Duration = Duration::from_millis(200);
/// When the token seems to have expired already, our clock is ahead of the server's and
/// the real remaining lifetime is unknown: try again after this long.
const SKEWED_CLOCK_REAUTH: Duration = Duration::from_secs(10);

/// Why the client asks its [`TokenProvider`] for a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenRequest {
    /// To open a connection: any access token that is still valid will do.
    Connect,
    /// The token in use expires soon or was refused: the provider must return one that
    /// expires later (refreshing it with `POST /api/auth/refresh` if needed).
    Renew,
}

/// Why a [`TokenProvider`] could not give a token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The session is over (the refresh token was refused): stop and go to login. The
    /// client does not reconnect after this.
    #[error("signed out: {0}")]
    SignedOut(String),
    /// A passing failure (the API was unreachable): the client retries with backoff.
    #[error("no access token for now: {0}")]
    Unavailable(String),
}

/// Gives the client access tokens; the API client implements it.
#[async_trait]
pub trait TokenProvider: Send + Sync {
    /// An access token for this user.
    async fn access_token(&self, request: TokenRequest) -> Result<String, TokenError>;
}

/// A [`TokenProvider`] made of an async closure; see [`token_provider_fn`].
pub struct FnTokenProvider<F>(F);

impl<F> fmt::Debug for FnTokenProvider<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnTokenProvider")
    }
}

/// Wraps an async closure as a [`TokenProvider`] (handy in tests and small tools).
pub fn token_provider_fn<F, Fut>(f: F) -> Arc<FnTokenProvider<F>>
where
    F: Fn(TokenRequest) -> Fut + Send + Sync,
    Fut: Future<Output = Result<String, TokenError>> + Send,
{
    Arc::new(FnTokenProvider(f))
}

#[async_trait]
impl<F, Fut> TokenProvider for FnTokenProvider<F>
where
    F: Fn(TokenRequest) -> Fut + Send + Sync,
    Fut: Future<Output = Result<String, TokenError>> + Send,
{
    async fn access_token(&self, request: TokenRequest) -> Result<String, TokenError> {
        (self.0)(request).await
    }
}

/// How the client connects and retries. [`SignalingConfig::new`] gives the defaults.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SignalingConfig {
    /// The WebSocket URL, e.g. `ws://127.0.0.1:8080/ws`.
    pub url: String,
    /// First reconnect delay. Every failed attempt doubles it; jitter adds up to as much
    /// again, so that clients cut off together do not come back together.
    pub min_backoff: Duration,
    /// Longest delay between two attempts, before jitter.
    pub max_backoff: Duration,
    /// A connection that stayed up this long resets the backoff; one that failed sooner
    /// (a server that accepts and then drops us) keeps backing off.
    pub stable_after: Duration,
    /// Limit for TCP connect + upgrade + `auth` + `welcome`.
    pub handshake_timeout: Duration,
    /// `reauth` is sent this long before the token expires...
    pub reauth_lead: Duration,
    /// ...or at this fraction of the token's remaining lifetime when that is later (a
    /// short-lived token): the margin is the smaller of the two.
    pub reauth_fraction: f64,
    /// Messages [`SignalingClient::send`] may queue before it reports
    /// [`SendError::Full`].
    pub send_capacity: usize,
    /// Events buffered for the application. When it is full, reading pauses: the server
    /// then queues for us, and closes with 4006 if we stay behind (we reconnect).
    pub event_capacity: usize,
}

impl SignalingConfig {
    /// The defaults for `url`: backoff from 1 s to 30 s, reauth 60 s before expiry.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            stable_after: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(15),
            reauth_lead: Duration::from_secs(60),
            reauth_fraction: 0.8,
            send_capacity: 256,
            event_capacity: 1024,
        }
    }

    fn backoff(&self) -> ExponentialBackoff {
        ExponentialBuilder::default()
            .with_min_delay(self.min_backoff)
            .with_max_delay(self.max_backoff.max(self.min_backoff))
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
    }
}

/// What the client reports, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignalingEvent {
    /// Authenticated (the server's `welcome`). After a reconnect the participant id is a
    /// new one and the client is in no call until the re-join's `call_joined` arrives:
    /// drop the peer connections of the old id and renegotiate.
    Connected {
        participant_id: ParticipantId,
        user_id: UserId,
        /// Unix seconds; the client renews the token on its own.
        token_expires_at: i64,
    },
    /// A server message, in the order the server sent it (every one but `welcome`, which
    /// becomes [`SignalingEvent::Connected`]). Boxed: protocol v2's messages (a room
    /// summary, a message with its reactions) are far larger than the other events.
    Message(Box<ServerMsg>),
    /// The connection ended. `code` is the server's close code (`shared::signal::close`),
    /// or `None` when the connection ended without a close frame (what browsers call
    /// 1006). When `terminal` is true this is the last event: the client will not
    /// reconnect (4003 session revoked, 4004 unsupported version, a refused renewed
    /// token, the token provider's [`TokenError::SignedOut`], or [`SignalingClient::close`]).
    Disconnected {
        code: Option<u16>,
        reason: String,
        terminal: bool,
    },
    /// The next connection attempt starts after `delay`. `attempt` counts from 1 since the
    /// last successful connection; `error` says why the previous one failed.
    Reconnecting {
        attempt: u32,
        delay: Duration,
        error: String,
    },
}

/// Why [`SignalingClient::send`] refused a message.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The client is closed, or stopped after a terminal disconnect.
    #[error("the signaling client is closed")]
    Closed,
    /// Not connected right now (reconnecting). `join_call` and `leave_call` are never
    /// refused for this: the client remembers them and acts on them when it reconnects.
    #[error("not connected to the server")]
    NotConnected,
    /// The send queue is full: the connection is stalled or the caller sends too fast.
    #[error("the send queue is full")]
    Full,
    /// Over the server's limit of `MAX_MESSAGE_BYTES`; the server would refuse it.
    #[error("message of {0} bytes is over the {MAX_MESSAGE_BYTES}-byte limit")]
    TooLarge(usize),
    /// The message could not be serialized.
    #[error("could not encode the message: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Which call the application wants to be in, so a reconnect can put it back.
#[derive(Debug, Default)]
struct CallIntent {
    /// The room of the last `join_call` sent and not left since.
    wanted: Option<RoomId>,
    /// Whether that join was a video call (a reconnect re-joins the same way).
    wanted_video: bool,
    /// The call the server last confirmed on this connection.
    confirmed: Option<RoomId>,
}

/// State shared by the senders and the reader task.
#[derive(Debug, Default)]
struct Shared {
    call: Mutex<CallIntent>,
    /// A connection is up: messages can be queued for it.
    connected: AtomicBool,
    /// The client stopped for good.
    stopped: AtomicBool,
}

impl Shared {
    fn call(&self) -> MutexGuard<'_, CallIntent> {
        // The lock is only held for plain field updates, so a poisoned lock still holds
        // consistent data.
        self.call.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A cheap, cloneable handle that sends through a [`SignalingClient`]'s connection.
#[derive(Clone, Debug)]
pub struct SignalingSender {
    outbound: mpsc::Sender<String>,
    shared: Arc<Shared>,
}

impl SignalingSender {
    /// Queues a message for the server without waiting.
    ///
    /// Messages are sent in order on the current connection. What is still queued when a
    /// connection drops is discarded (it was addressed to participant ids of that
    /// connection); `join_call`/`leave_call` are remembered and replayed after a
    /// reconnect.
    pub fn send(&self, msg: ClientMsg) -> Result<(), SendError> {
        let text = serde_json::to_string(&msg)?;
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(SendError::TooLarge(text.len()));
        }
        // The intent is updated under the lock while the message is queued, so the reader
        // cannot see the server's reply (an error for this join) before the intent.
        let mut call = self.shared.call();
        let is_membership = matches!(
            msg,
            ClientMsg::JoinCall { .. } | ClientMsg::LeaveCall { .. }
        );
        if self.shared.stopped.load(Ordering::Acquire) || self.outbound.is_closed() {
            return Err(SendError::Closed);
        }
        if self.shared.connected.load(Ordering::Acquire) {
            self.outbound.try_send(text).map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => SendError::Full,
                mpsc::error::TrySendError::Closed(_) => SendError::Closed,
            })?;
        } else if !is_membership {
            return Err(SendError::NotConnected);
        }
        match msg {
            ClientMsg::JoinCall { room_id, video } => {
                call.wanted = Some(room_id);
                call.wanted_video = video;
            }
            ClientMsg::LeaveCall { room_id } if call.wanted == Some(room_id) => call.wanted = None,
            _ => {}
        }
        Ok(())
    }
}

/// The application's end of the event stream; also a [`Stream`].
#[derive(Debug)]
pub struct SignalingEvents {
    rx: mpsc::Receiver<SignalingEvent>,
}

impl SignalingEvents {
    /// The next event; `None` once the client has stopped and every event was read.
    pub async fn recv(&mut self) -> Option<SignalingEvent> {
        self.rx.recv().await
    }
}

impl Stream for SignalingEvents {
    type Item = SignalingEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// One signaling connection to the server that reconnects on its own. See the module
/// documentation.
#[derive(Debug)]
pub struct SignalingClient {
    sender: SignalingSender,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl SignalingClient {
    /// Starts connecting in the background and returns at once; the first event is
    /// [`SignalingEvent::Connected`] or [`SignalingEvent::Reconnecting`]. Must be called
    /// from within a Tokio runtime (it spawns, like `tokio::spawn`).
    pub fn start(
        config: SignalingConfig,
        tokens: Arc<dyn TokenProvider>,
    ) -> (SignalingClient, SignalingEvents) {
        let (outbound_tx, outbound_rx) = mpsc::channel(config.send_capacity.max(1));
        let (events_tx, events_rx) = mpsc::channel(config.event_capacity.max(1));
        let shared = Arc::new(Shared::default());
        let cancel = CancellationToken::new();
        let reader = Reader {
            backoff: config.backoff(),
            config: Arc::new(config),
            tokens,
            events: events_tx,
            shared: shared.clone(),
            root: cancel.clone(),
            attempt: 0,
        };
        let task = tokio::spawn(reader.run(outbound_rx));
        let client = SignalingClient {
            sender: SignalingSender {
                outbound: outbound_tx,
                shared,
            },
            cancel,
            task: Some(task),
        };
        (client, SignalingEvents { rx: events_rx })
    }

    /// Queues a message for the server; see [`SignalingSender::send`].
    pub fn send(&self, msg: ClientMsg) -> Result<(), SendError> {
        self.sender.send(msg)
    }

    /// A handle for sending from other tasks.
    pub fn sender(&self) -> SignalingSender {
        self.sender.clone()
    }

    /// Closes the connection (close code 1000) and waits for the tasks to end. The last
    /// event is a terminal [`SignalingEvent::Disconnected`] if the application still
    /// reads events.
    pub async fn close(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take()
            && let Err(e) = task.await
        {
            warn!(error = %e, "signaling task failed");
        }
    }
}

impl Drop for SignalingClient {
    /// Best effort: the tasks are told to close and finish on their own.
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// What `welcome` told us.
struct Welcome {
    participant_id: ParticipantId,
    user_id: UserId,
    token_expires_at: i64,
    /// How long without any frame from the server means the connection is dead.
    liveness: Duration,
}

/// How a connection attempt or a connection ended.
#[derive(Debug)]
struct Ended {
    code: Option<u16>,
    reason: String,
    /// Retrying cannot help (a bad URL, a server that does not speak our version).
    fatal: bool,
}

impl Ended {
    fn new(code: Option<u16>, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
            fatal: false,
        }
    }
}

/// What to do after a connection (attempt) ended.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    Stop,
    Retry {
        /// Ask the provider for a newer token first.
        renew: bool,
        /// Skip the backoff: the cause is known and fixed by the new token.
        immediately: bool,
        /// The delay is at least this.
        floor: Duration,
    },
}

/// The reconnect policy of `docs/protocol.md` §8.
fn after_close(code: Option<u16>, token_was_renewed: bool, protocol_errors: &mut u32) -> Next {
    let retry = Next::Retry {
        renew: false,
        immediately: false,
        floor: Duration::ZERO,
    };
    match code {
        // REPLACED: a newer connection of this session took our place in the call;
        // reconnecting would only take it back and start a tug of war.
        Some(close::SESSION_REVOKED | close::UNSUPPORTED_VERSION | close::REPLACED) => Next::Stop,
        // A refused token gets one more try with a renewed one; a refused renewed token
        // means the session is gone.
        Some(close::AUTH_FAILED) if token_was_renewed => Next::Stop,
        Some(close::AUTH_FAILED | close::TOKEN_EXPIRED) => Next::Retry {
            renew: true,
            immediately: true,
            floor: Duration::ZERO,
        },
        // A client (or network) bug: reconnect once, do not loop.
        Some(close::PROTOCOL_ERROR | close::MESSAGE_TOO_BIG) => {
            *protocol_errors += 1;
            if *protocol_errors > 1 {
                Next::Stop
            } else {
                retry
            }
        }
        Some(close::RATE_LIMITED) => Next::Retry {
            renew: false,
            immediately: false,
            floor: RATE_LIMITED_FLOOR,
        },
        _ => retry,
    }
}

/// When to send `reauth`, given the seconds the token has left by our clock.
fn reauth_delay(remaining_secs: f64, lead: Duration, fraction: f64) -> Duration {
    if !remaining_secs.is_finite() || remaining_secs <= 0.0 {
        warn!(
            remaining_secs,
            "the access token seems already expired; is the clock ahead of the server's?"
        );
        return SKEWED_CLOCK_REAUTH;
    }
    let by_lead = remaining_secs - lead.as_secs_f64();
    let by_fraction = remaining_secs * fraction.clamp(0.0, 1.0);
    Duration::try_from_secs_f64(by_lead.max(by_fraction))
        .unwrap_or(SKEWED_CLOCK_REAUTH)
        .max(MIN_REAUTH_DELAY)
}

/// When to try `reauth` again after it failed: well before the expiry if there is time.
fn reauth_retry_delay(remaining_secs: f64) -> Duration {
    Duration::try_from_secs_f64(remaining_secs / 4.0)
        .unwrap_or(Duration::ZERO)
        .clamp(MIN_REAUTH_DELAY, Duration::from_secs(5))
}

/// Seconds until `unix_secs` by our clock (negative when past).
fn secs_until(unix_secs: i64) -> f64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    unix_secs as f64 - now
}

/// The task that connects, reads and reconnects; owns each connection's writer.
struct Reader {
    config: Arc<SignalingConfig>,
    tokens: Arc<dyn TokenProvider>,
    events: mpsc::Sender<SignalingEvent>,
    shared: Arc<Shared>,
    root: CancellationToken,
    backoff: ExponentialBackoff,
    attempt: u32,
}

impl Reader {
    async fn run(mut self, mut outbound: mpsc::Receiver<String>) {
        let mut token_request = TokenRequest::Connect;
        let mut protocol_errors = 0;
        let last = loop {
            let token = tokio::select! {
                () = self.root.cancelled() => break None,
                token = fetch_token(self.tokens.clone(), token_request, self.config.handshake_timeout) => token,
            };
            let token = match token {
                Ok(token) => token,
                Err(TokenError::SignedOut(reason)) => break Some((None, reason)),
                Err(e @ TokenError::Unavailable(_)) => {
                    if !self.pause(e.to_string(), Duration::ZERO, false).await {
                        break None;
                    }
                    continue;
                }
            };
            let attempt = tokio::select! {
                () = self.root.cancelled() => break None,
                attempt = timeout(self.config.handshake_timeout, handshake(&self.config.url, token)) => attempt,
            };
            let (ws, welcome) = match attempt {
                Ok(Ok(connected)) => connected,
                Ok(Err(ended)) => {
                    if ended.fatal {
                        break Some((ended.code, ended.reason));
                    }
                    match after_close(
                        ended.code,
                        token_request == TokenRequest::Renew,
                        &mut protocol_errors,
                    ) {
                        Next::Stop => break Some((ended.code, ended.reason)),
                        Next::Retry {
                            renew,
                            immediately,
                            floor,
                        } => {
                            if renew {
                                token_request = TokenRequest::Renew;
                            }
                            if !self.pause(describe(&ended), floor, immediately).await {
                                break None;
                            }
                            continue;
                        }
                    }
                }
                Err(_) => {
                    let reason = format!(
                        "no welcome within {} s",
                        self.config.handshake_timeout.as_secs_f64()
                    );
                    if !self.pause(reason, Duration::ZERO, false).await {
                        break None;
                    }
                    continue;
                }
            };

            token_request = TokenRequest::Connect;
            self.attempt = 0;
            let connected_at = Instant::now();
            let (ended, returned) = self.serve(ws, welcome, outbound).await;
            self.shared.connected.store(false, Ordering::Release);
            self.shared.call().confirmed = None;
            let Some(returned) = returned else {
                break Some((None, "internal error: the writer task failed".to_owned()));
            };
            outbound = returned;
            if self.root.is_cancelled() {
                break None;
            }
            if connected_at.elapsed() >= self.config.stable_after {
                self.backoff = self.config.backoff();
                protocol_errors = 0;
            }
            info!(code = ?ended.code, reason = %ended.reason, "signaling connection lost");
            let next = if ended.fatal {
                Next::Stop
            } else {
                after_close(ended.code, false, &mut protocol_errors)
            };
            match next {
                Next::Stop => break Some((ended.code, ended.reason)),
                Next::Retry {
                    renew,
                    immediately,
                    floor,
                } => {
                    self.emit(SignalingEvent::Disconnected {
                        code: ended.code,
                        reason: ended.reason.clone(),
                        terminal: false,
                    })
                    .await;
                    if renew {
                        token_request = TokenRequest::Renew;
                    }
                    if !self.pause(describe(&ended), floor, immediately).await {
                        break None;
                    }
                }
            }
        };
        // Refuse sends from now on, before the application hears that we stopped.
        self.shared.stopped.store(true, Ordering::Release);
        let (code, reason) =
            last.unwrap_or((Some(close::NORMAL), "closed by the client".to_owned()));
        info!(?code, %reason, "signaling stopped");
        let last = SignalingEvent::Disconnected {
            code,
            reason,
            terminal: true,
        };
        if self.root.is_cancelled() {
            // After close() nobody may be reading any more and the queue may be full:
            // drop the event rather than wait for a reader that will not come.
            let _ = self.events.try_send(last);
        } else {
            self.emit(last).await;
        }
    }

    /// Emits `Reconnecting` and waits out the backoff. False when the client was closed.
    async fn pause(&mut self, error: String, floor: Duration, immediately: bool) -> bool {
        self.attempt = self.attempt.saturating_add(1);
        let delay = if immediately {
            Duration::ZERO
        } else {
            self.backoff
                .next()
                .unwrap_or(self.config.max_backoff)
                .max(floor)
        };
        debug!(attempt = self.attempt, ?delay, %error, "signaling reconnect scheduled");
        self.emit(SignalingEvent::Reconnecting {
            attempt: self.attempt,
            delay,
            error,
        })
        .await;
        tokio::select! {
            () = self.root.cancelled() => false,
            () = sleep(delay) => true,
        }
    }

    /// Hands an event to the application; waits while its queue is full (so reading
    /// pauses), but not past close().
    async fn emit(&self, event: SignalingEvent) {
        tokio::select! {
            () = self.root.cancelled() => {}
            // An error means the application dropped its receiver; keep running anyway.
            _ = self.events.send(event) => {}
        }
    }

    /// Runs one authenticated connection to its end: spawns its writer, reads until the
    /// socket ends, then joins the writer. Returns how it ended and the send queue (None
    /// if the writer task panicked).
    async fn serve(
        &mut self,
        ws: Ws,
        welcome: Welcome,
        mut outbound: mpsc::Receiver<String>,
    ) -> (Ended, Option<mpsc::Receiver<String>>) {
        // Whatever was queued for the previous connection named its participants.
        let mut stale = 0;
        while outbound.try_recv().is_ok() {
            stale += 1;
        }
        if stale > 0 {
            debug!(stale, "discarded messages queued before this connection");
        }
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        {
            let call = self.shared.call();
            if let Some(room_id) = call.wanted {
                info!(%room_id, "re-joining the call after connecting");
                let video = call.wanted_video;
                if let Ok(text) = serde_json::to_string(&ClientMsg::JoinCall { room_id, video }) {
                    let _ = control_tx.send(text);
                }
            }
            self.shared.connected.store(true, Ordering::Release);
        }
        let (sink, stream) = ws.split();
        let conn = CancellationToken::new();
        let writer = tokio::spawn(write_loop(
            sink,
            outbound,
            control_rx,
            conn.clone(),
            self.root.clone(),
        ));
        info!(participant_id = %welcome.participant_id, "signaling connected");
        self.emit(SignalingEvent::Connected {
            participant_id: welcome.participant_id,
            user_id: welcome.user_id,
            token_expires_at: welcome.token_expires_at,
        })
        .await;
        let ended = self.read_loop(stream, &welcome, &control_tx, &conn).await;
        conn.cancel();
        let outbound = match writer.await {
            Ok(outbound) => Some(outbound),
            Err(e) => {
                warn!(error = %e, "signaling writer task failed");
                None
            }
        };
        (ended, outbound)
    }

    async fn read_loop(
        &self,
        mut stream: SplitStream<Ws>,
        welcome: &Welcome,
        control: &mpsc::UnboundedSender<String>,
        conn: &CancellationToken,
    ) -> Ended {
        let mut expires_at = welcome.token_expires_at;
        let mut reauth_at = Some(Instant::now() + self.reauth_delay(expires_at));
        let mut pending_token: Option<TokenFuture> = None;
        let mut close_frame: Option<(u16, String)> = None;
        let mut closing_until: Option<Instant> = None;
        let mut last_frame = Instant::now();
        let ended = |close_frame: Option<(u16, String)>, fallback: String| match close_frame {
            Some((code, reason)) if reason.is_empty() => Ended::new(Some(code), fallback),
            Some((code, reason)) => Ended::new(Some(code), reason),
            None => Ended::new(None, fallback),
        };
        loop {
            let open = closing_until.is_none();
            tokio::select! {
                () = self.root.cancelled(), if open => {
                    // The writer sends our close frame; keep reading for the server's.
                    closing_until = Some(Instant::now() + CLOSE_WAIT);
                    pending_token = None;
                }
                () = sleep_until_opt(closing_until) => {
                    return ended(close_frame, "closed by the client".into());
                }
                () = conn.cancelled() => {
                    return ended(close_frame, "writing to the server failed".into());
                }
                () = sleep_until(last_frame + welcome.liveness), if open => {
                    let secs = welcome.liveness.as_secs();
                    return Ended::new(None, format!("nothing from the server for {secs} s"));
                }
                () = sleep_until_opt(reauth_at), if open => {
                    reauth_at = None;
                    pending_token = Some(Box::pin(fetch_token(
                        self.tokens.clone(),
                        TokenRequest::Renew,
                        self.config.handshake_timeout,
                    )));
                }
                token = poll_opt(&mut pending_token) => {
                    pending_token = None;
                    match token {
                        Ok(token) => match serde_json::to_string(&ClientMsg::Reauth { token }) {
                            Ok(text) => {
                                let _ = control.send(text);
                            }
                            Err(e) => warn!(error = %e, "encoding reauth"),
                        },
                        Err(TokenError::SignedOut(reason)) => {
                            // The server will close with 4003 or 4002; nothing to renew.
                            warn!(%reason, "no token to renew the connection with");
                        }
                        Err(e @ TokenError::Unavailable(_)) => {
                            warn!(error = %e, "renewing the access token");
                            reauth_at = Some(Instant::now() + reauth_retry_delay(secs_until(expires_at)));
                        }
                    }
                }
                frame = stream.next() => {
                    last_frame = Instant::now();
                    match frame {
                        Some(Ok(Message::Text(text))) if open => {
                            let Ok(msg) = serde_json::from_str::<ServerMsg>(text.as_str()) else {
                                // A newer server may send messages we do not know.
                                debug!(message = %text.as_str(), "ignoring an unknown server message");
                                continue;
                            };
                            match &msg {
                                ServerMsg::Reauthenticated { token_expires_at } => {
                                    expires_at = *token_expires_at;
                                    reauth_at = Some(Instant::now() + self.reauth_delay(expires_at));
                                }
                                ServerMsg::Error { error, in_reply_to: Some(kind), .. } if kind == "reauth" => {
                                    warn!(code = ?error.code, message = %error.message, "reauth refused");
                                    reauth_at = Some(Instant::now() + reauth_retry_delay(secs_until(expires_at)));
                                }
                                _ => {}
                            }
                            self.track_call(&msg);
                            self.emit(SignalingEvent::Message(Box::new(msg))).await;
                        }
                        Some(Ok(Message::Close(frame))) => {
                            // tungstenite answers it on the next read; keep reading until the
                            // server drops the connection.
                            close_frame = frame.map(|f| (u16::from(f.code), f.reason.as_str().to_owned()));
                        }
                        Some(Ok(Message::Binary(_))) => debug!("ignoring a binary frame"),
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return ended(close_frame, e.to_string()),
                        None => return ended(close_frame, "the server closed the connection".into()),
                    }
                }
            }
        }
    }

    fn reauth_delay(&self, expires_at: i64) -> Duration {
        reauth_delay(
            secs_until(expires_at),
            self.config.reauth_lead,
            self.config.reauth_fraction,
        )
    }

    /// Keeps [`CallIntent`] in step with what the server says about our call.
    fn track_call(&self, msg: &ServerMsg) {
        let mut call = self.shared.call();
        match msg {
            ServerMsg::CallJoined { room_id, .. } => call.confirmed = Some(*room_id),
            ServerMsg::CallLeft { room_id } => {
                if call.confirmed == Some(*room_id) {
                    call.confirmed = None;
                }
                // Left without asking (room deleted or left over REST, or another device's
                // action): do not re-join it after a reconnect.
                if call.wanted == Some(*room_id) {
                    call.wanted = None;
                }
            }
            ServerMsg::Error {
                in_reply_to: Some(kind),
                ..
            } if kind == "join_call" => {
                // The join was refused (not_found, room_full): we are still where the server
                // last put us.
                call.wanted = call.confirmed;
            }
            _ => {}
        }
    }
}

/// Asks the provider for a token, within `limit`: a provider that hangs must not stall
/// the client for good.
async fn fetch_token(
    tokens: Arc<dyn TokenProvider>,
    request: TokenRequest,
    limit: Duration,
) -> Result<String, TokenError> {
    timeout(limit, tokens.access_token(request))
        .await
        .unwrap_or_else(|_| {
            Err(TokenError::Unavailable(
                "the token provider timed out".into(),
            ))
        })
}

/// A short text for `Reconnecting.error`.
fn describe(ended: &Ended) -> String {
    match ended.code {
        Some(code) => format!("{} (close code {code})", ended.reason),
        None => ended.reason.clone(),
    }
}

/// Opens the socket, sends `auth` and waits for `welcome`.
async fn handshake(url: &str, token: String) -> Result<(Ws, Welcome), Ended> {
    let fatal = |reason: String| Ended {
        code: None,
        reason,
        fatal: true,
    };
    let mut request = url
        .into_client_request()
        .map_err(|e| fatal(format!("bad signaling URL {url}: {e}")))?;
    request.headers_mut().insert(
        SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(SUBPROTOCOL),
    );
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(MAX_INBOUND_BYTES))
        .max_frame_size(Some(MAX_INBOUND_BYTES));
    // wss:// is verified as the API client's https:// is (OS trust store plus the CA
    // file in effect); ws:// needs no TLS configuration at all.
    let connector = if request.uri().scheme_str() == Some("wss") {
        Some(tokio_tungstenite::Connector::Rustls(
            crate::api::tls_client_config().map_err(fatal)?,
        ))
    } else {
        None
    };
    let (mut ws, _) =
        tokio_tungstenite::connect_async_tls_with_config(request, Some(ws_config), true, connector)
            .await
            .map_err(|e| match e {
                tungstenite::Error::Url(_) => fatal(format!("cannot connect to {url}: {e}")),
                tungstenite::Error::Tls(_) => Ended::new(
                    None,
                    format!(
                        "cannot connect to {url}: {e} (the server's TLS certificate is not \
                     trusted here; for a private CA set {} or --ca-file)",
                        crate::api::CA_FILE_VAR
                    ),
                ),
                tungstenite::Error::Protocol(
                    tungstenite::error::ProtocolError::SecWebSocketSubProtocolError(_),
                ) => fatal(format!("the server does not speak {SUBPROTOCOL}: {e}")),
                e => Ended::new(None, format!("cannot connect to {url}: {e}")),
            })?;
    let auth = serde_json::to_string(&ClientMsg::Auth {
        token,
        protocol_version: PROTOCOL_VERSION,
    })
    .map_err(|e| fatal(format!("encoding auth: {e}")))?;
    ws.send(Message::text(auth))
        .await
        .map_err(|e| Ended::new(None, format!("sending auth: {e}")))?;
    let mut close_frame: Option<(u16, String)> = None;
    let mut refusal: Option<String> = None;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => match serde_json::from_str::<ServerMsg>(text.as_str())
            {
                Ok(ServerMsg::Welcome {
                    participant_id,
                    user_id,
                    token_expires_at,
                    heartbeat_secs,
                    idle_timeout_secs,
                    ..
                }) => {
                    // The server pings every heartbeat; missing a ping cycle on top of the
                    // server's own idle limit means the path is gone.
                    let liveness = Duration::from_secs(
                        idle_timeout_secs.saturating_add(heartbeat_secs).max(10),
                    );
                    let welcome = Welcome {
                        participant_id,
                        user_id,
                        token_expires_at,
                        liveness,
                    };
                    return Ok((ws, welcome));
                }
                Ok(ServerMsg::Error { error, .. }) => refusal = Some(error.message),
                Ok(other) => debug!(?other, "message before welcome"),
                Err(e) => debug!(error = %e, "unreadable message before welcome"),
            },
            Some(Ok(Message::Close(frame))) => {
                close_frame = frame.map(|f| (u16::from(f.code), f.reason.as_str().to_owned()));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                let reason = refusal.unwrap_or_else(|| e.to_string());
                return Err(Ended::new(close_frame.map(|(code, _)| code), reason));
            }
            None => {
                let (code, reason) = match close_frame {
                    Some((code, reason)) => (Some(code), reason),
                    None => (
                        None,
                        "the server closed the connection during auth".to_owned(),
                    ),
                };
                return Err(Ended::new(code, refusal.unwrap_or(reason)));
            }
        }
    }
}

/// The writer task: drains the control queue (reauth, re-join) first, then the
/// application's queue, into the socket. Returns the application's queue for the next
/// connection.
async fn write_loop(
    mut sink: SplitSink<Ws, Message>,
    mut outbound: mpsc::Receiver<String>,
    mut control: mpsc::UnboundedReceiver<String>,
    conn: CancellationToken,
    root: CancellationToken,
) -> mpsc::Receiver<String> {
    loop {
        let text = tokio::select! {
            biased;
            () = root.cancelled() => {
                let frame = CloseFrame {
                    code: CloseCode::Normal,
                    reason: "client closing".into(),
                };
                let _ = timeout(WRITE_TIMEOUT, sink.send(Message::Close(Some(frame)))).await;
                break;
            }
            () = conn.cancelled() => break,
            Some(text) = control.recv() => text,
            text = outbound.recv() => match text {
                Some(text) => text,
                None => break,
            },
        };
        match timeout(WRITE_TIMEOUT, sink.send(Message::text(text))).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                debug!(error = %e, "signaling write failed");
                conn.cancel();
                break;
            }
            Err(_) => {
                debug!("signaling write timed out");
                conn.cancel();
                break;
            }
        }
    }
    outbound
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Awaits the future if there is one, or waits forever.
async fn poll_opt<F: Future + Unpin>(fut: &mut Option<F>) -> F::Output {
    match fut {
        Some(fut) => fut.await,
        None => std::future::pending().await,
    }
}

/// The API client hands out its access tokens, refreshing them shortly before they
/// expire; a session the server ended means the user must sign in again.
#[async_trait]
impl TokenProvider for crate::api::ApiClient {
    async fn access_token(&self, request: TokenRequest) -> Result<String, TokenError> {
        let token = match request {
            TokenRequest::Connect => crate::api::ApiClient::access_token(self).await,
            TokenRequest::Renew => self.renew_access_token().await,
        };
        token.map_err(|e| {
            if e.needs_sign_in() {
                TokenError::SignedOut(e.to_string())
            } else {
                TokenError::Unavailable(e.to_string())
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reauth_leaves_a_minute_for_long_tokens_and_a_fifth_for_short_ones() {
        let lead = Duration::from_secs(60);
        assert_eq!(reauth_delay(900.0, lead, 0.8), Duration::from_secs(840));
        assert_eq!(reauth_delay(100.0, lead, 0.8), Duration::from_secs(80));
        let short = reauth_delay(3.0, lead, 0.8);
        assert!(short > Duration::from_secs(2) && short < Duration::from_secs(3));
    }

    #[test]
    fn a_token_expired_by_our_clock_does_not_make_reauth_spin() {
        let lead = Duration::from_secs(60);
        assert_eq!(reauth_delay(-5.0, lead, 0.8), SKEWED_CLOCK_REAUTH);
        assert_eq!(reauth_delay(0.01, lead, 0.8), MIN_REAUTH_DELAY);
        assert!(reauth_retry_delay(-1.0) >= MIN_REAUTH_DELAY);
        assert!(reauth_retry_delay(600.0) <= Duration::from_secs(5));
    }

    #[test]
    fn revoked_and_unsupported_are_terminal() {
        let mut errors = 0;
        assert_eq!(
            after_close(Some(close::SESSION_REVOKED), false, &mut errors),
            Next::Stop
        );
        assert_eq!(
            after_close(Some(close::UNSUPPORTED_VERSION), false, &mut errors),
            Next::Stop
        );
        assert_eq!(
            after_close(Some(close::REPLACED), false, &mut errors),
            Next::Stop
        );
    }

    #[test]
    fn auth_failure_gets_one_more_try_with_a_renewed_token() {
        let mut errors = 0;
        assert!(matches!(
            after_close(Some(close::AUTH_FAILED), false, &mut errors),
            Next::Retry { renew: true, .. }
        ));
        assert_eq!(
            after_close(Some(close::AUTH_FAILED), true, &mut errors),
            Next::Stop
        );
        assert!(matches!(
            after_close(Some(close::TOKEN_EXPIRED), false, &mut errors),
            Next::Retry { renew: true, .. }
        ));
    }

    #[test]
    fn network_losses_back_off_and_protocol_errors_do_not_loop() {
        let mut errors = 0;
        for code in [
            None,
            Some(close::GOING_AWAY),
            Some(close::IDLE_TIMEOUT),
            Some(close::SLOW_CONSUMER),
        ] {
            assert!(matches!(
                after_close(code, false, &mut errors),
                Next::Retry {
                    renew: false,
                    immediately: false,
                    ..
                }
            ));
        }
        assert!(matches!(
            after_close(Some(close::RATE_LIMITED), false, &mut errors),
            Next::Retry { floor, .. } if floor >= RATE_LIMITED_FLOOR
        ));
        assert!(matches!(
            after_close(Some(close::PROTOCOL_ERROR), false, &mut errors),
            Next::Retry { .. }
        ));
        assert_eq!(
            after_close(Some(close::MESSAGE_TOO_BIG), false, &mut errors),
            Next::Stop
        );
    }

    #[test]
    fn backoff_grows_with_jitter_up_to_the_cap() {
        let mut config = SignalingConfig::new("ws://127.0.0.1:1/ws");
        config.min_backoff = Duration::from_secs(1);
        config.max_backoff = Duration::from_secs(8);
        let delays: Vec<_> = config.backoff().take(8).collect();
        assert!(delays[0] >= Duration::from_secs(1) && delays[0] < Duration::from_secs(2));
        assert!(delays[1] >= Duration::from_secs(2) && delays[1] < Duration::from_secs(4));
        assert!(delays.iter().all(|d| *d < Duration::from_secs(16)));
    }
}
