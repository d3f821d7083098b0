//! The connection: one per signed-in session, for as long as the session lasts. It owns
//! the API client and the one WebSocket ([`SignalingClient`]) whether or not a call
//! runs, keeps the local model of rooms, messages, contacts, requests, unread counts,
//! typing and presence current from the server's events, catches up after every
//! reconnect, sends messages through the on-disk [`Outbox`], and lets calls borrow its
//! socket ([`Connection::start_call`]) instead of opening their own.
//!
//! Tasks: a driver (`driver.rs`) reads the WebSocket's events, feeds the
//! [`model::Model`] and runs the catch-up; the outbox task sends pending messages.
//! Both belong to the [`Connection`] and end in [`Connection::close`].
//!
//! # Catch-up
//! After every `welcome` the driver resyncs: `GET /api/rooms` (rooms added, removed,
//! changed; counts as of each room's `rev`), then for every room whose `rev` is past the
//! model's cursor it pages `GET /changes?since=cursor`, then it reloads contacts and
//! requests, and reports [`ConnectionEvent::Synced`]. Live events carry the rev of their
//! change and are applied by the same rule as catch-up pages (see [`model`]), so events
//! that arrive during a resync are neither lost nor applied twice.

mod communities;
mod driver;
pub mod model;

pub use model::{CommunityState, Ringing, RoomState};

use crate::api::{ApiClient, ApiError, PageAnchor};
use crate::call::{Call, CallConfig, CallError, CallEvent};
use crate::outbox::{
    self, Courier, Outbox, OutboxError, PendingMessage, Report, RetryPolicy, Undelivered,
};
use crate::signaling::{
    SendError, SignalingClient, SignalingConfig, SignalingEvent, SignalingSender,
};
use async_trait::async_trait;
use driver::{Command, Driver};
use model::Model;
use shared::api::{
    BlockedUser, Contact, ContactRequestOutcome, ContactRequests, MESSAGE_BODY_MAX, Me, Message,
    MessagePage, PresenceStatus, PublicUser, Reaction, Room, RoomRole, RoomSettingsRequest,
    RoomSummary, SendMessageRequest,
};
use shared::communities::{CommunityExit, CommunityMember};
use shared::files::ATTACHMENTS_MAX;
use shared::signal::{ClientMsg, OwnPresence, RingEnd, TYPING_INTERVAL_MS};
use shared::{
    CommunityId, ContactRequestId, ErrorCode, ErrorDetail, MessageId, RoomId, UploadId, UserId,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How a [`Connection`] runs. [`ConnectionConfig::new`] gives the defaults.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConnectionConfig {
    /// The outbox file (the app passes a file in its data directory).
    pub outbox_path: PathBuf,
    /// The WebSocket's reconnect and reauth settings; `None`: the defaults for the API
    /// client's server.
    pub signaling: Option<SignalingConfig>,
    /// Outbox retry timing.
    pub retry: RetryPolicy,
    /// How long a message sent over the WebSocket waits for its `message_ack` before the
    /// outbox tries REST (with the same key).
    pub ack_timeout: Duration,
    /// How long a live change ahead of the cursor waits for the missing revs before the
    /// driver pages `/changes` (events of two senders can cross on the way).
    pub gap_grace: Duration,
    /// Resync retry timing after a failed resync.
    pub resync_retry: RetryPolicy,
    /// Messages per `/changes` page during catch-up; `None`: the server's most (1000).
    pub changes_page: Option<u32>,
    /// Tell the server which messages this device received (`delivered` receipts).
    pub send_delivered: bool,
    /// Events buffered per subscriber; a slower one misses the oldest
    /// (`RecvError::Lagged`) and should read the snapshots again.
    pub event_capacity: usize,
}

impl ConnectionConfig {
    /// Defaults with the outbox at `outbox_path`.
    pub fn new(outbox_path: impl Into<PathBuf>) -> Self {
        Self {
            outbox_path: outbox_path.into(),
            signaling: None,
            retry: RetryPolicy::default(),
            ack_timeout: Duration::from_secs(10),
            gap_grace: Duration::from_millis(300),
            resync_retry: RetryPolicy {
                min_delay: Duration::from_secs(1),
                max_delay: Duration::from_secs(30),
            },
            changes_page: None,
            send_delivered: true,
            event_capacity: 4096,
        }
    }
}

/// What the connection reports, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectionEvent {
    /// The WebSocket is up (a resync follows).
    Connected,
    /// The WebSocket dropped; `terminal` when it will not come back (signed out, session
    /// revoked, or closed).
    Disconnected {
        code: Option<u16>,
        reason: String,
        terminal: bool,
    },
    /// The next connection attempt starts after `delay`.
    Reconnecting {
        attempt: u32,
        delay: Duration,
    },
    /// A resync finished: the model matches the server as of now.
    Synced,
    RoomAdded(RoomSummary),
    /// Anything in a room's summary changed: title, counts, read marker, preview, call.
    RoomUpdated(RoomSummary),
    RoomRemoved(RoomId),
    /// A message new to this session (live, or found by a catch-up).
    MessageCreated(Message),
    /// A message changed (edited, reacted to) or was loaded changed by a catch-up.
    MessageUpdated(Message),
    /// A message became a tombstone.
    MessageDeleted(Message),
    ReactionChanged {
        room_id: RoomId,
        message_id: MessageId,
        reactions: Vec<Reaction>,
    },
    /// My outbox message is stored on the server.
    MessageSent {
        client_id: String,
        message: Message,
    },
    /// The server refused my outbox message for good; it was dropped.
    MessageFailed {
        client_id: String,
        room_id: RoomId,
        error: ErrorDetail,
    },
    /// Someone else's read marker moved.
    Read {
        room_id: RoomId,
        user_id: UserId,
        seq: u64,
    },
    /// Someone's device received messages up to `seq`.
    Delivered {
        room_id: RoomId,
        user_id: UserId,
        seq: u64,
    },
    /// Someone started or stopped typing (stopping includes running out).
    Typing {
        room_id: RoomId,
        user_id: UserId,
        typing: bool,
    },
    Presence {
        user_id: UserId,
        status: PresenceStatus,
    },
    ContactAdded(Contact),
    ContactRemoved(UserId),
    /// A pending request to or from me.
    ContactRequest(shared::api::ContactRequest),
    ContactRequestRemoved(ContactRequestId),
    /// A direct call rings for me.
    CallRinging(Ringing),
    /// The ring on this device stopped.
    CallRingStopped {
        room_id: RoomId,
        reason: RingEnd,
    },
    /// The user I called declined.
    CallDeclined {
        room_id: RoomId,
        by: UserId,
    },
    /// A direct call went unanswered (caller and callee both hear).
    CallMissed {
        room_id: RoomId,
    },
    /// A call runs in a room of mine (or its participant count changed).
    CallStarted {
        room_id: RoomId,
        participant_count: usize,
    },
    CallEnded {
        room_id: RoomId,
    },
    /// A community of mine is new or changed: its summary (counts summed over its
    /// channels), its channels in order. Its channels' rooms come as room events.
    CommunityChanged(CommunityState),
    /// I am no longer in this community (its channel rooms were removed first).
    CommunityRemoved {
        community_id: CommunityId,
        reason: CommunityExit,
    },
    /// Someone joined a community of mine.
    CommunityMemberJoined {
        community_id: CommunityId,
        member: CommunityMember,
    },
    /// Someone else left a community of mine (or was kicked or banned).
    CommunityMemberLeft {
        community_id: CommunityId,
        user_id: UserId,
        reason: CommunityExit,
    },
    /// A member's role changed.
    CommunityRoleChanged {
        community_id: CommunityId,
        user_id: UserId,
        role: RoomRole,
    },
}

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// The server refused a message for good (it left the outbox).
    #[error("the server refused the message: {}", .0.message)]
    Refused(ErrorDetail),
    /// Refused before sending; the server would refuse it too.
    #[error("{0}")]
    Invalid(String),
    /// This needs the WebSocket and it is not connected.
    #[error("not connected to the server")]
    NotConnected,
    #[error(transparent)]
    Send(#[from] SendError),
    /// The connection was closed before the operation finished.
    #[error("the connection is closed")]
    Closed,
    #[error(transparent)]
    Call(#[from] CallError),
    /// A user name that matches nobody (or nobody visible to me).
    #[error("no such user: {0}")]
    NoSuchUser(String),
    /// No pending request from that user.
    #[error("no pending contact request from {0}")]
    NoSuchRequest(String),
}

impl ConnectionError {
    /// The error as the server's JSON error shape: the server's own body when it
    /// answered, otherwise a code that says where it failed.
    pub fn detail(&self) -> ErrorDetail {
        let local = |code: ErrorCode| ErrorDetail {
            code,
            message: self.to_string(),
            fields: None,
        };
        match self {
            Self::Api(ApiError::Server { detail, .. }) | Self::Refused(detail) => detail.clone(),
            Self::Api(ApiError::Transport(_)) | Self::NotConnected => local(ErrorCode::Unavailable),
            Self::Api(e) if e.needs_sign_in() => local(ErrorCode::Unauthorized),
            Self::Invalid(_) => local(ErrorCode::ValidationFailed),
            Self::NoSuchUser(_) | Self::NoSuchRequest(_) => local(ErrorCode::NotFound),
            _ => local(ErrorCode::Internal),
        }
    }
}

/// The long-lived connection of a signed-in session. See the module documentation.
#[derive(Debug)]
pub struct Connection {
    shared: Arc<Shared>,
    cancel: CancellationToken,
    driver: Option<JoinHandle<()>>,
    sender_task: Option<JoinHandle<()>>,
    signaling: Option<SignalingClient>,
}

/// The state the public API, the driver and the outbox task share.
struct Shared {
    api: ApiClient,
    me: Me,
    model: Mutex<Model>,
    events: broadcast::Sender<ConnectionEvent>,
    sender: SignalingSender,
    outbox: Outbox,
    wake_outbox: Arc<Notify>,
    /// `send_message` callers waiting for their message, by client id.
    waiters: Mutex<HashMap<String, oneshot::Sender<Result<Message, ConnectionError>>>>,
    /// Outbox sends on the WebSocket waiting for `message_ack`, by client id.
    acks: Mutex<HashMap<String, oneshot::Sender<Result<Message, ErrorDetail>>>>,
    connected: AtomicBool,
    commands: mpsc::UnboundedSender<Command>,
    /// Counts finished resyncs.
    synced: watch::Sender<u64>,
    typing_sent: Mutex<HashMap<RoomId, Instant>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("me", &self.me.id)
            .field("outbox", &self.outbox.path())
            .finish_non_exhaustive()
    }
}

/// Locks a mutex that only guards plain data: a poisoned one still holds it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Changes the model and publishes what changed, in order (under the lock: sending
    /// on a broadcast channel never blocks).
    fn update<R>(&self, f: impl FnOnce(&mut Model, &mut Vec<ConnectionEvent>) -> R) -> R {
        let mut model = lock(&self.model);
        let mut out = Vec::new();
        let result = f(&mut model, &mut out);
        for event in out {
            let _ = self.events.send(event);
        }
        result
    }

    fn read<R>(&self, f: impl FnOnce(&Model) -> R) -> R {
        f(&lock(&self.model))
    }

    fn emit(&self, event: ConnectionEvent) {
        self.update(|_, out| out.push(event));
    }

    fn on_report(&self, report: Report) {
        match report {
            Report::Delivered { client_id, message } => {
                if let Some(waiter) = lock(&self.waiters).remove(&client_id) {
                    let _ = waiter.send(Ok(message.clone()));
                }
                self.emit(ConnectionEvent::MessageSent { client_id, message });
            }
            Report::Refused {
                client_id,
                room_id,
                error,
            } => {
                if let Some(waiter) = lock(&self.waiters).remove(&client_id) {
                    let _ = waiter.send(Err(ConnectionError::Refused(error.clone())));
                }
                self.emit(ConnectionEvent::MessageFailed {
                    client_id,
                    room_id,
                    error,
                });
            }
        }
    }
}

impl Connection {
    /// Opens the connection for the signed-in `api` client: opens the outbox (pending
    /// messages from an earlier run resume), starts the WebSocket and returns at once,
    /// with a first event receiver (more from [`Connection::subscribe`]). The model fills
    /// with the first [`ConnectionEvent::Synced`] ([`Connection::wait_synced`]).
    pub async fn open(
        api: ApiClient,
        config: ConnectionConfig,
    ) -> Result<(Self, broadcast::Receiver<ConnectionEvent>), ConnectionError> {
        let me = api.current_user().await.ok_or(ApiError::NotSignedIn)?;
        let outbox = Outbox::open(&config.outbox_path).await?;
        let signaling_config = config
            .signaling
            .clone()
            .unwrap_or_else(|| SignalingConfig::new(api.ws_url().to_string()));
        let (signaling, signaling_events) =
            SignalingClient::start(signaling_config, Arc::new(api.clone()));
        let (events, first) = broadcast::channel(config.event_capacity.max(16));
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            model: Mutex::new(Model::new(&me)),
            api,
            me,
            events,
            sender: signaling.sender(),
            outbox: outbox.clone(),
            wake_outbox: Arc::new(Notify::new()),
            waiters: Mutex::new(HashMap::new()),
            acks: Mutex::new(HashMap::new()),
            connected: AtomicBool::new(false),
            commands: commands_tx,
            synced: watch::channel(0).0,
            typing_sent: Mutex::new(HashMap::new()),
        });
        let cancel = CancellationToken::new();
        let driver = Driver::new(Arc::clone(&shared), &config);
        let driver = tokio::spawn(driver.run(signaling_events, commands_rx, cancel.clone()));
        let courier = Arc::new(WireCourier {
            shared: Arc::clone(&shared),
            ack_timeout: config.ack_timeout,
        });
        let sender_task = tokio::spawn({
            let shared = Arc::clone(&shared);
            let user = shared.me.id;
            let wake = Arc::clone(&shared.wake_outbox);
            let cancel = cancel.clone();
            let retry = config.retry;
            async move {
                let report_to = Arc::clone(&shared);
                outbox::run(outbox, user, courier, retry, wake, cancel, move |r| {
                    report_to.on_report(r)
                })
                .await;
            }
        });
        Ok((
            Self {
                shared,
                cancel,
                driver: Some(driver),
                sender_task: Some(sender_task),
                signaling: Some(signaling),
            },
            first,
        ))
    }

    /// Another receiver of the events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ConnectionEvent> {
        self.shared.events.subscribe()
    }

    /// The API client (shared: refreshes by either side are seen by both).
    pub fn api(&self) -> &ApiClient {
        &self.shared.api
    }

    /// The signed-in user.
    pub fn me(&self) -> &Me {
        &self.shared.me
    }

    /// The outbox file, which also keeps the app's cached pages and drafts.
    pub fn outbox(&self) -> &Outbox {
        &self.shared.outbox
    }

    /// Whether the WebSocket is up.
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Acquire)
    }

    /// Waits for the first finished resync.
    pub async fn wait_synced(&self) {
        self.wait_synced_past(0).await;
    }

    /// How many resyncs have finished.
    pub fn resyncs(&self) -> u64 {
        *self.shared.synced.borrow()
    }

    /// Waits until more than `count` resyncs have finished.
    pub async fn wait_synced_past(&self, count: u64) {
        let mut rx = self.shared.synced.subscribe();
        let _ = rx.wait_for(|n| *n > count).await;
    }

    // --- messages -----------------------------------------------------------------------

    /// Writes a message to the outbox and returns at once; the outbox sends it (and
    /// retries it with the same key) until the server has it.
    pub async fn queue_message(
        &self,
        room: RoomId,
        body: &str,
        reply_to: Option<MessageId>,
    ) -> Result<PendingMessage, ConnectionError> {
        self.enqueue(room, body, reply_to, Vec::new(), None).await
    }

    /// [`Connection::queue_message`] carrying uploads (`ApiClient::upload_file`); the
    /// body may then be empty.
    pub async fn queue_message_with(
        &self,
        room: RoomId,
        body: &str,
        reply_to: Option<MessageId>,
        attachments: Vec<UploadId>,
    ) -> Result<PendingMessage, ConnectionError> {
        self.enqueue(room, body, reply_to, attachments, None).await
    }

    /// Sends a message through the outbox and returns once the server has stored it. If
    /// this future is dropped first, the message stays in the outbox and is still sent.
    pub async fn send_message(
        &self,
        room: RoomId,
        body: &str,
        reply_to: Option<MessageId>,
    ) -> Result<Message, ConnectionError> {
        let (tx, rx) = oneshot::channel();
        self.enqueue(room, body, reply_to, Vec::new(), Some(tx))
            .await?;
        rx.await.map_err(|_| ConnectionError::Closed)?
    }

    /// [`Connection::send_message`] carrying uploads.
    pub async fn send_message_with(
        &self,
        room: RoomId,
        body: &str,
        reply_to: Option<MessageId>,
        attachments: Vec<UploadId>,
    ) -> Result<Message, ConnectionError> {
        let (tx, rx) = oneshot::channel();
        self.enqueue(room, body, reply_to, attachments, Some(tx))
            .await?;
        rx.await.map_err(|_| ConnectionError::Closed)?
    }

    async fn enqueue(
        &self,
        room: RoomId,
        body: &str,
        reply_to: Option<MessageId>,
        attachments: Vec<UploadId>,
        waiter: Option<oneshot::Sender<Result<Message, ConnectionError>>>,
    ) -> Result<PendingMessage, ConnectionError> {
        if attachments.len() > ATTACHMENTS_MAX {
            return Err(ConnectionError::Invalid(format!(
                "a message carries at most {ATTACHMENTS_MAX} files"
            )));
        }
        if body.trim().is_empty() && attachments.is_empty() {
            return Err(ConnectionError::Invalid(
                "a message must not be blank".into(),
            ));
        }
        if body.chars().count() > MESSAGE_BODY_MAX {
            return Err(ConnectionError::Invalid(format!(
                "a message is at most {MESSAGE_BODY_MAX} characters long"
            )));
        }
        let message = PendingMessage::new(self.shared.me.id, room, body, reply_to)
            .with_attachments(attachments);
        // Registered before the row exists, so the outbox cannot finish it unseen.
        if let Some(waiter) = waiter {
            lock(&self.shared.waiters).insert(message.client_id.clone(), waiter);
        }
        if let Err(e) = self.shared.outbox.insert(&message).await {
            lock(&self.shared.waiters).remove(&message.client_id);
            return Err(e.into());
        }
        self.shared.wake_outbox.notify_one();
        Ok(message)
    }

    /// My messages still waiting in the outbox, oldest first.
    pub async fn pending_messages(&self) -> Result<Vec<PendingMessage>, ConnectionError> {
        Ok(self.shared.outbox.pending(self.shared.me.id).await?)
    }

    /// Edits my message.
    pub async fn edit_message(
        &self,
        room: RoomId,
        message: MessageId,
        body: &str,
    ) -> Result<Message, ConnectionError> {
        let edited = self.shared.api.edit_message(room, message, body).await?;
        self.merge(room, std::slice::from_ref(&edited));
        Ok(edited)
    }

    /// Deletes a message (mine, or any in a group I administer).
    pub async fn delete_message(
        &self,
        room: RoomId,
        message: MessageId,
    ) -> Result<Message, ConnectionError> {
        let tombstone = self.shared.api.delete_message(room, message).await?;
        self.merge(room, std::slice::from_ref(&tombstone));
        Ok(tombstone)
    }

    /// Adds my reaction.
    pub async fn react(
        &self,
        room: RoomId,
        message: MessageId,
        emoji: &str,
    ) -> Result<Message, ConnectionError> {
        Ok(self.shared.api.react(room, message, emoji, true).await?)
    }

    /// Removes my reaction.
    pub async fn unreact(
        &self,
        room: RoomId,
        message: MessageId,
        emoji: &str,
    ) -> Result<Message, ConnectionError> {
        Ok(self.shared.api.react(room, message, emoji, false).await?)
    }

    /// Moves my read marker forward to `seq` (my other devices follow); returns the
    /// marker now.
    pub async fn mark_read(&self, room: RoomId, seq: u64) -> Result<u64, ConnectionError> {
        let marker = self.shared.api.mark_read(room, seq).await?;
        let stale = self.shared.update(|m, out| {
            m.move_read_marker(room, marker, out);
            m.take_stale()
        });
        if stale {
            let _ = self.shared.commands.send(Command::Refresh);
        }
        Ok(marker)
    }

    /// Says I am typing in `room`; call it on every keystroke: it sends at most every
    /// 3 s, and not at all while disconnected (typing is not worth queueing). True when
    /// it sent.
    pub fn typing(&self, room: RoomId) -> Result<bool, ConnectionError> {
        if !self.is_connected() {
            return Ok(false);
        }
        let now = Instant::now();
        {
            let mut sent = lock(&self.shared.typing_sent);
            let interval = Duration::from_millis(TYPING_INTERVAL_MS);
            if sent
                .get(&room)
                .is_some_and(|t| now.duration_since(*t) < interval)
            {
                return Ok(false);
            }
            sent.insert(room, now);
        }
        match self.shared.sender.send(ClientMsg::Typing { room_id: room }) {
            Ok(()) => Ok(true),
            Err(SendError::NotConnected) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Online, or idle (away from the device).
    pub fn set_presence(&self, status: OwnPresence) -> Result<(), ConnectionError> {
        Ok(self.shared.sender.send(ClientMsg::SetPresence { status })?)
    }

    /// A page of a room's timeline from the server, also merged into the model.
    pub async fn history(
        &self,
        room: RoomId,
        anchor: PageAnchor,
        limit: Option<u32>,
    ) -> Result<MessagePage, ConnectionError> {
        let page = self.shared.api.messages(room, anchor, limit).await?;
        self.merge(room, &page.messages);
        Ok(page)
    }

    fn merge(&self, room: RoomId, messages: &[Message]) {
        self.shared.update(|m, _| m.merge(room, messages));
    }

    /// Mutes a room (no notifications; counts still count) or unmutes it.
    pub async fn set_muted(
        &self,
        room: RoomId,
        muted: bool,
    ) -> Result<RoomSummary, ConnectionError> {
        let summary = self
            .shared
            .api
            .room_settings(room, &RoomSettingsRequest { muted: Some(muted) })
            .await?;
        self.shared
            .update(|m, out| m.set_muted(room, summary.muted, out));
        Ok(summary)
    }

    // --- contacts -----------------------------------------------------------------------

    /// Finds users to add (2+ characters).
    pub async fn search_users(&self, q: &str) -> Result<Vec<PublicUser>, ConnectionError> {
        let users = self.shared.api.search_users(q).await?;
        self.shared.update(|m, _| m.learn_users(&users));
        Ok(users)
    }

    /// A user by id or by exact username (case-insensitive): someone already in the
    /// model, else the server's search.
    pub async fn resolve_user(&self, who: &str) -> Result<UserId, ConnectionError> {
        let who = who.trim();
        if let Ok(id) = who.parse::<UserId>() {
            return Ok(id);
        }
        if let Some(user) = self.shared.read(|m| m.user_named(who).map(|u| u.id)) {
            return Ok(user);
        }
        if who.chars().count() >= shared::api::USER_SEARCH_MIN {
            let found = self.search_users(who).await?;
            if let Some(user) = found.iter().find(|u| u.username.eq_ignore_ascii_case(who)) {
                return Ok(user.id);
            }
        }
        Err(ConnectionError::NoSuchUser(who.to_owned()))
    }

    /// Asks `user` to become my contact (`accepted` at once when they had asked me).
    pub async fn add_contact(
        &self,
        user: UserId,
    ) -> Result<ContactRequestOutcome, ConnectionError> {
        let outcome = self.shared.api.send_contact_request(user).await?;
        self.shared.update(|m, out| {
            if let Some(contact) = &outcome.contact {
                m.add_contact(contact.clone(), out);
            }
            if let Some(request) = &outcome.request {
                m.add_request(request.clone(), out);
            }
        });
        Ok(outcome)
    }

    /// Accepts a request to me.
    pub async fn accept_request(&self, id: ContactRequestId) -> Result<Contact, ConnectionError> {
        let contact = self.shared.api.accept_contact_request(id).await?;
        self.shared.update(|m, out| {
            m.remove_request(id, out);
            m.add_contact(contact.clone(), out);
        });
        Ok(contact)
    }

    /// Declines a request to me.
    pub async fn decline_request(&self, id: ContactRequestId) -> Result<(), ConnectionError> {
        self.shared.api.decline_contact_request(id).await?;
        self.shared.update(|m, out| m.remove_request(id, out));
        Ok(())
    }

    /// Withdraws a request I sent.
    pub async fn cancel_request(&self, id: ContactRequestId) -> Result<(), ConnectionError> {
        self.shared.api.cancel_contact_request(id).await?;
        self.shared.update(|m, out| m.remove_request(id, out));
        Ok(())
    }

    /// The pending request from `user` to me, asking the server if the model has none.
    pub async fn request_from(
        &self,
        user: UserId,
    ) -> Result<Option<shared::api::ContactRequest>, ConnectionError> {
        let find = |r: &ContactRequests| r.incoming.iter().find(|r| r.from.id == user).cloned();
        if let Some(found) = self.shared.read(|m| find(&m.requests())) {
            return Ok(Some(found));
        }
        let requests = self.shared.api.contact_requests().await?;
        let found = find(&requests);
        self.shared
            .update(|m, out| m.replace_requests(requests, out));
        Ok(found)
    }

    /// Ends a contact.
    pub async fn remove_contact(&self, user: UserId) -> Result<(), ConnectionError> {
        self.shared.api.remove_contact(user).await?;
        self.shared.update(|m, out| m.remove_contact(user, out));
        Ok(())
    }

    /// Blocks a user (ends the contact too).
    pub async fn block(&self, user: UserId) -> Result<(), ConnectionError> {
        self.shared.api.block(user).await?;
        self.shared.update(|m, out| {
            m.remove_contact(user, out);
            // Their messages stop counting as unread: only the server can recount.
            m.mark_stale();
        });
        let _ = self.shared.commands.send(Command::Refresh);
        Ok(())
    }

    /// Unblocks a user (we do not become contacts again).
    pub async fn unblock(&self, user: UserId) -> Result<(), ConnectionError> {
        self.shared.api.unblock(user).await?;
        self.shared.update(|m, _| m.mark_stale());
        let _ = self.shared.commands.send(Command::Refresh);
        Ok(())
    }

    /// The users I block.
    pub async fn blocks(&self) -> Result<Vec<BlockedUser>, ConnectionError> {
        Ok(self.shared.api.blocks().await?)
    }

    /// The direct room with a contact (created on first use).
    pub async fn open_direct(&self, user: UserId) -> Result<Room, ConnectionError> {
        Ok(self.shared.api.open_direct(user).await?)
    }

    // --- calls --------------------------------------------------------------------------

    /// Starts a call on this connection's WebSocket (no socket of its own): joins
    /// `config.room_id`'s call with the camera on when `config.video` is set, off
    /// otherwise (an audio call).
    pub fn start_call(
        &self,
        config: CallConfig,
    ) -> Result<(Call, mpsc::UnboundedReceiver<CallEvent>), ConnectionError> {
        let (tx, rx) = mpsc::unbounded_channel::<SignalingEvent>();
        self.shared
            .commands
            .send(Command::AttachCall(tx))
            .map_err(|_| ConnectionError::Closed)?;
        Ok(Call::start_borrowed(
            self.shared.sender.clone(),
            rx,
            config,
        )?)
    }

    /// Rings a contact: opens our direct room and joins its call, which rings their
    /// devices. `config.room_id` is replaced by the direct room's id (returned).
    pub async fn ring(
        &self,
        user: UserId,
        mut config: CallConfig,
    ) -> Result<(RoomId, Call, mpsc::UnboundedReceiver<CallEvent>), ConnectionError> {
        let room = self.open_direct(user).await?;
        config.room_id = room.id;
        let (call, events) = self.start_call(config)?;
        Ok((room.id, call, events))
    }

    /// Answers a ringing call: joins the call of `room` (the ring stops on all my
    /// devices).
    pub fn answer(
        &self,
        room: RoomId,
        mut config: CallConfig,
    ) -> Result<(Call, mpsc::UnboundedReceiver<CallEvent>), ConnectionError> {
        config.room_id = room;
        self.start_call(config)
    }

    /// Declines a ringing call on all my devices (the caller hears `call_declined`).
    pub fn decline(&self, room: RoomId) -> Result<(), ConnectionError> {
        Ok(self
            .shared
            .sender
            .send(ClientMsg::DeclineCall { room_id: room })?)
    }

    // --- snapshots ----------------------------------------------------------------------

    /// Every room, most recent activity first.
    pub fn rooms(&self) -> Vec<RoomSummary> {
        self.shared.read(Model::rooms)
    }

    /// Adds a room the server has just answered for (one this client created, say) when
    /// the model has not heard of it yet, so it is listed and opens at once, offline too;
    /// the live `room_added` then updates it as usual.
    pub fn learn_room(&self, summary: RoomSummary) {
        self.shared.update(|m, out| {
            if m.room(summary.room.id).is_none() {
                m.upsert_summary(summary, out);
            }
        });
    }

    /// One room's summary.
    pub fn room(&self, id: RoomId) -> Option<RoomSummary> {
        self.shared.read(|m| m.room(id).map(|r| r.summary.clone()))
    }

    /// The rev up to which a room's changes are applied.
    pub fn cursor(&self, id: RoomId) -> Option<u64> {
        self.shared.read(|m| m.room(id).map(|r| r.cursor))
    }

    /// A room's loaded messages, ascending seq.
    pub fn messages(&self, id: RoomId) -> Vec<Message> {
        self.shared
            .read(|m| m.room(id).map(|r| r.messages().cloned().collect()))
            .unwrap_or_default()
    }

    /// Other members' read markers in a room.
    pub fn read_markers(&self, id: RoomId) -> HashMap<UserId, u64> {
        self.shared
            .read(|m| m.room(id).map(|r| r.read_markers.clone()))
            .unwrap_or_default()
    }

    /// Other members' delivery markers in a room (how far their devices received).
    pub fn delivered_markers(&self, id: RoomId) -> HashMap<UserId, u64> {
        self.shared
            .read(|m| m.room(id).map(|r| r.delivered.clone()))
            .unwrap_or_default()
    }

    /// My contacts.
    pub fn contacts(&self) -> Vec<Contact> {
        self.shared.read(Model::contacts)
    }

    /// Pending contact requests.
    pub fn requests(&self) -> ContactRequests {
        self.shared.read(Model::requests)
    }

    /// Who is typing in a room.
    pub fn typing_in(&self, room: RoomId) -> Vec<UserId> {
        self.shared.read(|m| m.typing(room, Instant::now()))
    }

    /// Someone's presence.
    pub fn presence(&self, user: UserId) -> PresenceStatus {
        self.shared.read(|m| m.presence(user))
    }

    /// Calls ringing for me.
    pub fn ringing(&self) -> Vec<Ringing> {
        self.shared.read(Model::ringing)
    }

    /// A user seen anywhere in the model (contacts, requests, rooms, searches).
    pub fn user(&self, id: UserId) -> Option<PublicUser> {
        self.shared.read(|m| m.user(id).cloned())
    }

    /// Closes the WebSocket and ends every task. Messages still in the outbox stay there
    /// for the next [`Connection::open`] on the same file; `send_message` callers still
    /// waiting get [`ConnectionError::Closed`].
    pub async fn close(mut self) {
        self.cancel.cancel();
        for task in [self.driver.take(), self.sender_task.take()]
            .into_iter()
            .flatten()
        {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "connection task failed");
            }
        }
        if let Some(signaling) = self.signaling.take() {
            signaling.close().await;
        }
        lock(&self.shared.waiters).clear();
        self.shared.outbox.close().await;
    }
}

impl Drop for Connection {
    /// Best effort: the tasks are told to stop and finish on their own.
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Sends outbox messages over the WebSocket when it is up (matching `message_ack` or
/// `error` by client id) and over REST otherwise, or when the WebSocket fails midway.
struct WireCourier {
    shared: Arc<Shared>,
    ack_timeout: Duration,
}

#[async_trait]
impl Courier for WireCourier {
    async fn deliver(&self, p: &PendingMessage) -> Result<Message, Undelivered> {
        if self.shared.connected.load(Ordering::Acquire) {
            let (tx, rx) = oneshot::channel();
            lock(&self.shared.acks).insert(p.client_id.clone(), tx);
            let sent = self.shared.sender.send(ClientMsg::SendMessage {
                room_id: p.room_id,
                client_id: p.client_id.clone(),
                body: p.body.clone(),
                reply_to: p.reply_to,
                attachments: p.attachments.clone(),
            });
            if sent.is_ok() {
                match tokio::time::timeout(self.ack_timeout, rx).await {
                    Ok(Ok(Ok(message))) => return Ok(message),
                    Ok(Ok(Err(error))) => return Err(ws_refusal(error)),
                    // The connection dropped or the ack is late: REST, same key.
                    Ok(Err(_)) | Err(_) => {}
                }
            }
            lock(&self.shared.acks).remove(&p.client_id);
        }
        let req = SendMessageRequest {
            body: p.body.clone(),
            reply_to: p.reply_to,
            attachments: p.attachments.clone(),
        };
        match self
            .shared
            .api
            .send_message(p.room_id, &p.client_id, &req)
            .await
        {
            Ok((message, _)) => Ok(message),
            Err(e) => Err(rest_refusal(e)),
        }
    }
}

/// A WebSocket `error` for a `send_message`: transient or for good.
fn ws_refusal(error: ErrorDetail) -> Undelivered {
    match error.code {
        ErrorCode::RateLimited => Undelivered::Retry {
            after: Some(Duration::from_secs(1)),
        },
        ErrorCode::Internal
        | ErrorCode::Unavailable
        | ErrorCode::Unauthorized
        | ErrorCode::AuthState
        | ErrorCode::Unknown => Undelivered::Retry { after: None },
        _ => Undelivered::Refused(error),
    }
}

/// A REST failure: 4xx other than 401, 408 and 429 is for good; everything else
/// (unreachable, 5xx, rate limited, a session being renewed) is retried.
fn rest_refusal(e: ApiError) -> Undelivered {
    match e {
        ApiError::Server {
            status,
            detail,
            retry_after,
        } => {
            let code = status.as_u16();
            if (400..500).contains(&code) && !matches!(code, 401 | 408 | 429) {
                Undelivered::Refused(detail)
            } else {
                Undelivered::Retry { after: retry_after }
            }
        }
        _ => Undelivered::Retry { after: None },
    }
}
