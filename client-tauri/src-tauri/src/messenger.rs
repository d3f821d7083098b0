//! The messenger of a signed-in session: one [`Connection`] (the one WebSocket, the
//! model, the outbox) for as long as the session lasts, the commands' views of it, and
//! one task that turns its events into [`MessengerEvent`]s and [`Notice`]s for an
//! [`Outlet`] (the window and the OS notifications in the app; a channel in tests).

pub mod cache;
pub mod communities;
pub mod files;
pub mod search;

use crate::error::AppError;
use crate::events::MessengerEvent;
use crate::views::{
    BlockedView, ConnectionState, ContactsView, ConversationView, MemberView, MessageView,
    PageAnchor, ReactionView, ReceiptsView, RingView, TimelinePage, UserView, rfc3339,
};
use confab_core::api::ApiClient;
use confab_core::connection::{Connection, ConnectionConfig, ConnectionError, ConnectionEvent};
use confab_core::outbox::PendingMessage;
use shared::api::{
    CreateRoomRequest, Message, PublicUser, RECEIPTS_MAX_MEMBERS, RoomKind, RoomSummary,
    UpdateProfileRequest, UpdateRoomRequest,
};
use shared::signal::OwnPresence;
use shared::{ContactRequestId, MessageId, RoomId, UserId};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

/// Messages a conversation opens with (from the model when it has them).
pub const PAGE: u32 = 50;
/// Messages older than this (found by a catch-up) do not notify.
const NOTIFY_WITHIN_SECS: i64 = 120;

/// Something worth an OS notification (the outlet decides whether to show it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    Message {
        room_id: RoomId,
        /// The room is muted.
        muted: bool,
        /// The sender, or "sender in group".
        title: String,
        body: String,
    },
    ContactRequest {
        from: String,
    },
    Ringing {
        room_id: RoomId,
        from: String,
        video: bool,
    },
    /// Unread messages in all rooms (window title, tray).
    Unread {
        total: u32,
    },
}

/// Where the messenger's events go.
pub trait Outlet: Send + Sync + 'static {
    fn event(&self, event: MessengerEvent);
    fn notice(&self, notice: Notice);
    /// Upload and download progress (nothing by default).
    fn transfer(&self, _event: crate::events::TransferEvent) {}
}

/// The messenger. See the module documentation.
pub struct Messenger {
    inner: Arc<Inner>,
    pump: Option<AbortOnDrop>,
    /// Loads the open room's members' markers (one at a time: a newer open replaces it).
    markers_task: Mutex<Option<AbortOnDrop>>,
    /// Writes the rooms' cached pages behind the events (`cache.rs`).
    flusher: Option<AbortOnDrop>,
}

impl std::fmt::Debug for Messenger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messenger")
            .field("conn", &self.inner.conn)
            .finish_non_exhaustive()
    }
}

/// Read and delivered markers of one room, as the room's detail last said.
#[derive(Debug, Default)]
struct Markers {
    read: HashMap<UserId, u64>,
    delivered: HashMap<UserId, u64>,
}

struct Inner {
    conn: Connection,
    me: UserId,
    my_name: String,
    /// My messages not yet stored, by client id: pending, or failed with the reason.
    unsent: Mutex<HashMap<String, (PendingMessage, Option<String>)>>,
    /// Markers from rooms' details (the model only hears the live ones).
    markers: Mutex<HashMap<RoomId, Markers>>,
    /// The room list as of the last catch-up, kept beside the outbox: shown from start-up
    /// until the first catch-up of this run replaces it.
    rooms_file: PathBuf,
    saved_rooms: Mutex<Option<Vec<RoomSummary>>>,
    /// Rooms whose cached page (in the outbox file) is behind the model.
    cache: cache::PageCache,
    outlet: Arc<dyn Outlet>,
    files: files::Files,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl From<ConnectionError> for AppError {
    fn from(e: ConnectionError) -> Self {
        match e {
            ConnectionError::Api(e) => e.into(),
            ConnectionError::Invalid(message) => Self::Invalid {
                fields: [("body".to_owned(), message.clone())].into(),
                message,
            },
            ConnectionError::NoSuchUser(_) | ConnectionError::NoSuchRequest(_) => Self::NotFound {
                message: e.to_string(),
            },
            ConnectionError::NotConnected => Self::Unreachable {
                message: "Not connected to the server.".into(),
            },
            ConnectionError::Closed => Self::signed_out(),
            ConnectionError::Call(e) => Self::call(e.to_string()),
            ConnectionError::Refused(detail) => Self::Conflict {
                message: detail.message,
                fields: detail.fields.unwrap_or_default(),
            },
            ConnectionError::Outbox(_) | ConnectionError::Send(_) => Self::Server {
                message: e.to_string(),
            },
        }
    }
}

type Result<T> = std::result::Result<T, AppError>;

impl Messenger {
    /// Opens the connection for the signed-in `api` (outbox at `outbox`) and starts
    /// forwarding its events to `outlet`. Messages an earlier run left in the outbox
    /// show as pending and are sent.
    pub async fn open(api: ApiClient, outbox: PathBuf, outlet: Arc<dyn Outlet>) -> Result<Self> {
        if let Some(dir) = outbox.parent() {
            std::fs::create_dir_all(dir).map_err(|e| AppError::Server {
                message: format!("cannot create {}: {e}", dir.display()),
            })?;
        }
        let rooms_file = outbox.with_extension("rooms.json");
        let saved_rooms = std::fs::read(&rooms_file)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Vec<RoomSummary>>(&bytes).ok());
        let (conn, events) = Connection::open(api, ConnectionConfig::new(outbox)).await?;
        let me = conn.me().clone();
        let unsent = conn
            .pending_messages()
            .await?
            .into_iter()
            .map(|p| (p.client_id.clone(), (p, None)))
            .collect();
        let inner = Arc::new(Inner {
            my_name: me.display_name.clone().unwrap_or(me.username.clone()),
            me: me.id,
            conn,
            unsent: Mutex::new(unsent),
            markers: Mutex::new(HashMap::new()),
            rooms_file,
            saved_rooms: Mutex::new(saved_rooms),
            cache: cache::PageCache::default(),
            outlet,
            files: files::Files::default(),
        });
        let pump = tokio::spawn(pump(Arc::clone(&inner), events));
        let flusher = tokio::spawn(cache::flusher(Arc::clone(&inner)));
        Ok(Self {
            inner,
            pump: Some(AbortOnDrop(pump)),
            markers_task: Mutex::new(None),
            flusher: Some(AbortOnDrop(flusher)),
        })
    }

    /// Stops forwarding and closes the connection (pending messages stay in the outbox).
    pub async fn close(mut self) {
        let markers = lock(&self.markers_task).take();
        if let Some(mut task) = markers {
            task.0.abort();
            let _ = (&mut task.0).await;
        }
        for mut task in [self.pump.take(), self.flusher.take()]
            .into_iter()
            .flatten()
        {
            task.0.abort();
            let _ = (&mut task.0).await;
        }
        // What the flusher had not written yet.
        self.inner.flush_cache().await;
        match Arc::try_unwrap(self.inner) {
            Ok(inner) => inner.conn.close().await,
            Err(_) => tracing::warn!("the messenger is still in use; closing it on drop"),
        }
    }

    pub fn connection(&self) -> &Connection {
        &self.inner.conn
    }

    pub fn me(&self) -> UserId {
        self.inner.me
    }

    pub async fn wait_synced(&self) {
        self.inner.conn.wait_synced().await;
    }

    pub fn connection_state(&self) -> ConnectionState {
        if self.inner.conn.is_connected() {
            ConnectionState::Online
        } else {
            ConnectionState::Offline
        }
    }

    // --- conversations ----------------------------------------------------------------

    /// The rail: the model's rooms, or before this run's first catch-up the ones saved by
    /// the last (a `synced` event follows).
    pub fn conversations(&self) -> Vec<ConversationView> {
        let me = self.inner.me;
        self.inner
            .rooms()
            .into_iter()
            .map(|s| ConversationView::new(s, me))
            .collect()
    }

    pub fn conversation(&self, room: RoomId) -> Result<ConversationView> {
        self.inner
            .rooms()
            .into_iter()
            .find(|s| s.room.id == room)
            .map(|s| ConversationView::new(s, self.inner.me))
            .ok_or_else(|| AppError::NotFound {
                message: "No such conversation.".into(),
            })
    }

    /// The newest page: the model's messages when it holds a whole page (or the whole
    /// room); before this run's first catch-up, the page cached by the last run (marked
    /// `cached`); else the server's. The members' read markers follow as a `receipts`
    /// event.
    pub async fn open_room(&self, room: RoomId) -> Result<TimelinePage> {
        let summary = self.conversation(room)?;
        let cached = self.inner.conn.messages(room);
        let tail: Vec<Message> = cached
            .iter()
            .rev()
            .take(PAGE as usize)
            .rev()
            .cloned()
            .collect();
        let whole = tail.last().map(|m| m.seq) == Some(summary.last_seq)
            && contiguous(&tail)
            && (tail.len() == PAGE as usize || tail.first().is_some_and(|m| m.seq <= 1));
        // The members' markers come from the server; the page does not wait for them.
        let inner = Arc::clone(&self.inner);
        let task = tokio::spawn(async move {
            inner.load_markers(room).await;
            inner.outlet.event(MessengerEvent::Receipts {
                receipts: inner.receipts(room),
            });
        });
        *lock(&self.markers_task) = Some(AbortOnDrop(task));
        if whole || summary.last_seq == 0 {
            let has_more_before = tail.first().is_some_and(|m| m.seq > 1);
            return Ok(self.page(room, tail, has_more_before, false));
        }
        let cached = self.inner.cached_page(room).await;
        if !cached.is_empty() {
            let has_more_before = cached.first().is_some_and(|m| m.seq > 1);
            let mut page = self.page(room, cached, has_more_before, false);
            page.cached = true;
            return Ok(page);
        }
        self.load(room, PageAnchor::Latest, Some(PAGE)).await
    }

    /// A page before, after or around a seq (or the newest), from the model when it has
    /// the whole page, else from the server.
    pub async fn load(
        &self,
        room: RoomId,
        anchor: PageAnchor,
        limit: Option<u32>,
    ) -> Result<TimelinePage> {
        let limit = limit
            .unwrap_or(PAGE)
            .clamp(1, shared::api::MESSAGE_PAGE_MAX);
        if let PageAnchor::Before { seq } = anchor {
            let cached: Vec<Message> = self
                .inner
                .conn
                .messages(room)
                .into_iter()
                .filter(|m| m.seq < seq)
                .collect();
            let tail: Vec<Message> = cached
                .iter()
                .rev()
                .take(limit as usize)
                .rev()
                .cloned()
                .collect();
            let reaches = tail.last().is_some_and(|m| m.seq + 1 == seq)
                && contiguous(&tail)
                && (tail.len() == limit as usize || tail.first().is_some_and(|m| m.seq <= 1));
            if reaches {
                let more = tail.first().is_some_and(|m| m.seq > 1);
                return Ok(self.page(room, tail, more, true));
            }
        }
        let page = self
            .inner
            .conn
            .history(room, anchor.into(), Some(limit))
            .await?;
        if matches!(anchor, PageAnchor::Latest) {
            self.inner.cache_latest(room, &page.messages);
        }
        Ok(self.page(
            room,
            page.messages,
            page.has_more_before,
            page.has_more_after,
        ))
    }

    fn page(
        &self,
        room: RoomId,
        messages: Vec<Message>,
        has_more_before: bool,
        has_more_after: bool,
    ) -> TimelinePage {
        let mut views: Vec<MessageView> = messages.into_iter().map(|m| self.view(m)).collect();
        if !has_more_after {
            // Stored already (the event saying so may still be on its way): once.
            let stored: std::collections::HashSet<String> =
                views.iter().filter_map(|v| v.client_id.clone()).collect();
            let mut unsent: Vec<MessageView> = lock(&self.inner.unsent)
                .values()
                .filter(|(p, _)| p.room_id == room && !stored.contains(&p.client_id))
                .map(|(p, e)| self.inner.unsent_view(p, e.clone()))
                .collect();
            unsent.sort_by(|a, b| a.created_at.cmp(&b.created_at));
            views.extend(unsent);
        }
        TimelinePage {
            room_id: room,
            messages: views,
            has_more_before,
            has_more_after,
            receipts: self.inner.receipts(room),
            typing: self.inner.typing(room),
            cached: false,
        }
    }

    fn view(&self, m: Message) -> MessageView {
        self.inner.view(m)
    }

    // --- messages ---------------------------------------------------------------------

    /// Queues a message (shown pending at once); the outbox sends it.
    pub async fn send(
        &self,
        room: RoomId,
        body: &str,
        reply_to: Option<MessageId>,
        attachments: Vec<shared::UploadId>,
    ) -> Result<MessageView> {
        let pending = self
            .inner
            .conn
            .queue_message_with(room, body, reply_to, attachments)
            .await?;
        let view = self.inner.unsent_view(&pending, None);
        lock(&self.inner.unsent).insert(pending.client_id.clone(), (pending, None));
        Ok(view)
    }

    /// Sends a failed message again (a new client id: the old one was refused).
    pub async fn retry(&self, client_id: &str) -> Result<MessageView> {
        let failed = lock(&self.inner.unsent)
            .get(client_id)
            .filter(|(_, e)| e.is_some())
            .map(|(p, _)| p.clone());
        let failed = failed.ok_or_else(|| AppError::NotFound {
            message: "No such failed message.".into(),
        })?;
        let view = self
            .send(
                failed.room_id,
                &failed.body,
                failed.reply_to,
                failed.attachments.clone(),
            )
            .await?;
        lock(&self.inner.unsent).remove(client_id);
        Ok(view)
    }

    /// Forgets a failed message.
    pub fn discard(&self, client_id: &str) -> Result<()> {
        let mut unsent = lock(&self.inner.unsent);
        match unsent.get(client_id) {
            Some((_, Some(_))) => {
                unsent.remove(client_id);
                Ok(())
            }
            _ => Err(AppError::NotFound {
                message: "No such failed message.".into(),
            }),
        }
    }

    pub async fn edit(&self, room: RoomId, message: MessageId, body: &str) -> Result<MessageView> {
        let m = self.inner.conn.edit_message(room, message, body).await?;
        Ok(self.view(m))
    }

    pub async fn delete(&self, room: RoomId, message: MessageId) -> Result<MessageView> {
        let m = self.inner.conn.delete_message(room, message).await?;
        Ok(self.view(m))
    }

    pub async fn react(
        &self,
        room: RoomId,
        message: MessageId,
        emoji: &str,
        on: bool,
    ) -> Result<MessageView> {
        let m = if on {
            self.inner.conn.react(room, message, emoji).await?
        } else {
            self.inner.conn.unreact(room, message, emoji).await?
        };
        Ok(self.view(m))
    }

    pub async fn mark_read(&self, room: RoomId, seq: u64) -> Result<u64> {
        Ok(self.inner.conn.mark_read(room, seq).await?)
    }

    pub fn typing(&self, room: RoomId) -> Result<()> {
        self.inner.conn.typing(room)?;
        Ok(())
    }

    pub fn set_presence(&self, status: OwnPresence) -> Result<()> {
        Ok(self.inner.conn.set_presence(status)?)
    }

    pub async fn set_muted(&self, room: RoomId, muted: bool) -> Result<ConversationView> {
        let summary = self.inner.conn.set_muted(room, muted).await?;
        Ok(ConversationView::new(summary, self.inner.me))
    }

    // --- profile and groups -------------------------------------------------------------

    pub async fn update_profile(
        &self,
        display_name: Option<String>,
        status_text: Option<String>,
    ) -> Result<shared::api::Me> {
        let request = UpdateProfileRequest {
            display_name: display_name.map(|s| s.trim().to_owned()),
            status_text: status_text.map(|s| s.trim().to_owned()),
            share_read_receipts: None,
        };
        Ok(self.inner.conn.api().update_me(&request).await?)
    }

    /// Creates a group and adds these contacts to it.
    pub async fn create_group(&self, title: &str, members: &[UserId]) -> Result<ConversationView> {
        let api = self.inner.conn.api();
        let room = api
            .create_room(&CreateRoomRequest {
                title: title.trim().to_owned(),
                max_participants: None,
            })
            .await?;
        for user in members {
            api.add_member(room.id, *user).await?;
        }
        self.summary_soon(room.id).await
    }

    pub async fn rename_group(&self, room: RoomId, title: &str) -> Result<ConversationView> {
        self.inner
            .conn
            .api()
            .update_room(
                room,
                &UpdateRoomRequest {
                    title: Some(title.trim().to_owned()),
                    max_participants: None,
                },
            )
            .await?;
        self.summary_soon(room).await
    }

    /// The room's summary from the server, which the model learns if it has not heard of
    /// the room yet (the live event may come after the answer).
    async fn summary_soon(&self, room: RoomId) -> Result<ConversationView> {
        let summaries = self.inner.conn.api().room_summaries().await?;
        let summary = summaries
            .into_iter()
            .find(|s| s.room.id == room)
            .ok_or_else(|| AppError::NotFound {
                message: "No such conversation.".into(),
            })?;
        self.inner.conn.learn_room(summary.clone());
        Ok(ConversationView::new(summary, self.inner.me))
    }

    pub async fn members(&self, room: RoomId) -> Result<Vec<MemberView>> {
        let detail = self.inner.conn.api().room(room).await?;
        Ok(detail
            .members
            .into_iter()
            .map(|m| MemberView {
                user: m.user.into(),
                role: m.role,
                joined_at: rfc3339(m.joined_at),
            })
            .collect())
    }

    pub async fn add_member(&self, room: RoomId, user: UserId) -> Result<Vec<MemberView>> {
        self.inner.conn.api().add_member(room, user).await?;
        self.members(room).await
    }

    pub async fn remove_member(&self, room: RoomId, user: UserId) -> Result<Vec<MemberView>> {
        self.inner.conn.api().remove_member(room, user).await?;
        self.members(room).await
    }

    // --- contacts -----------------------------------------------------------------------

    pub async fn search_users(&self, q: &str) -> Result<Vec<UserView>> {
        let q = q.trim();
        if q.chars().count() < shared::api::USER_SEARCH_MIN {
            return Ok(Vec::new());
        }
        let me = self.inner.me;
        Ok(self
            .inner
            .conn
            .search_users(q)
            .await?
            .into_iter()
            .filter(|u| u.id != me)
            .map(UserView::from)
            .collect())
    }

    pub fn contacts(&self) -> ContactsView {
        self.inner.contacts()
    }

    pub async fn send_request(&self, user: UserId) -> Result<ContactsView> {
        self.inner.conn.add_contact(user).await?;
        Ok(self.contacts())
    }

    pub async fn accept_request(&self, id: ContactRequestId) -> Result<ContactsView> {
        self.inner.conn.accept_request(id).await?;
        Ok(self.contacts())
    }

    pub async fn decline_request(&self, id: ContactRequestId) -> Result<ContactsView> {
        self.inner.conn.decline_request(id).await?;
        Ok(self.contacts())
    }

    pub async fn cancel_request(&self, id: ContactRequestId) -> Result<ContactsView> {
        self.inner.conn.cancel_request(id).await?;
        Ok(self.contacts())
    }

    pub async fn remove_contact(&self, user: UserId) -> Result<ContactsView> {
        self.inner.conn.remove_contact(user).await?;
        Ok(self.contacts())
    }

    pub async fn block(&self, user: UserId) -> Result<ContactsView> {
        self.inner.conn.block(user).await?;
        Ok(self.contacts())
    }

    pub async fn unblock(&self, user: UserId) -> Result<ContactsView> {
        self.inner.conn.unblock(user).await?;
        Ok(self.contacts())
    }

    pub async fn blocked(&self) -> Result<Vec<BlockedView>> {
        Ok(self
            .inner
            .conn
            .blocks()
            .await?
            .into_iter()
            .map(|b| BlockedView {
                user: b.user.into(),
                since: rfc3339(b.since),
            })
            .collect())
    }

    pub async fn open_direct(&self, user: UserId) -> Result<ConversationView> {
        let room = self.inner.conn.open_direct(user).await?;
        if let Ok(view) = self.conversation(room.id) {
            return Ok(view);
        }
        self.summary_soon(room.id).await
    }

    // --- ringing ------------------------------------------------------------------------

    pub fn ringing(&self) -> Vec<RingView> {
        self.inner
            .conn
            .ringing()
            .into_iter()
            .map(|r| self.inner.ring_view(r))
            .collect()
    }

    pub fn decline(&self, room: RoomId) -> Result<()> {
        Ok(self.inner.conn.decline(room)?)
    }
}

/// A task that ends with its owner.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// No seq missing between the first and the last.
fn contiguous(messages: &[Message]) -> bool {
    messages.windows(2).all(|w| w[1].seq == w[0].seq + 1)
}

impl Inner {
    /// A message of mine still in the outbox, with the files uploaded for it.
    fn unsent_view(&self, p: &PendingMessage, error: Option<String>) -> MessageView {
        let mut view = MessageView::unsent(p, &self.my_name, error);
        view.attachments = self.files.uploaded(&p.attachments);
        view
    }

    async fn load_markers(&self, room: RoomId) {
        match self.conn.api().room(room).await {
            Ok(detail) => {
                let mut markers = Markers::default();
                for member in detail.members {
                    if member.user.id == self.me {
                        continue;
                    }
                    if let Some(seq) = member.read_seq {
                        markers.read.insert(member.user.id, seq);
                    }
                    if let Some(seq) = member.delivered_seq {
                        markers.delivered.insert(member.user.id, seq);
                    }
                }
                lock(&self.markers).insert(room, markers);
            }
            Err(e) => tracing::debug!(error = %e, %room, "no read markers for the room"),
        }
    }

    fn rooms(&self) -> Vec<RoomSummary> {
        if self.conn.resyncs() == 0
            && let Some(saved) = lock(&self.saved_rooms).as_ref()
        {
            return saved.clone();
        }
        self.conn.rooms()
    }

    /// Keeps the room list for the next start (a failure only costs that).
    fn save_rooms(&self) {
        lock(&self.saved_rooms).take();
        let write = serde_json::to_vec(&self.conn.rooms())
            .map_err(std::io::Error::other)
            .and_then(|bytes| {
                let tmp = self.rooms_file.with_extension("json.tmp");
                std::fs::write(&tmp, bytes)?;
                std::fs::rename(&tmp, &self.rooms_file)
            });
        if let Err(e) = write {
            tracing::warn!(error = %e, "cannot save the room list");
        }
    }

    fn name(&self, user: UserId) -> Option<String> {
        if user == self.me {
            return Some(self.my_name.clone());
        }
        self.conn
            .user(user)
            .map(|u| u.display_name.unwrap_or(u.username))
    }

    fn user_view(&self, user: UserId) -> UserView {
        self.conn.user(user).map_or_else(
            || UserView {
                id: user,
                username: String::new(),
                display_name: None,
                status_text: None,
                name: "Someone".into(),
                avatar_url: None,
            },
            UserView::from,
        )
    }

    fn view(&self, m: Message) -> MessageView {
        let mut view = MessageView::stored(m, self.me, |u| self.name(u));
        view.author_avatar_url = view.author_id.and_then(|a| self.avatar(a));
        view
    }

    /// Someone's avatar path, when the model knows them and they have one.
    fn avatar(&self, user: UserId) -> Option<String> {
        self.conn.user(user).and_then(|u| u.avatar_url)
    }

    fn typing(&self, room: RoomId) -> Vec<UserView> {
        self.conn
            .typing_in(room)
            .into_iter()
            .filter(|u| *u != self.me)
            .map(|u| self.user_view(u))
            .collect()
    }

    fn contacts(&self) -> ContactsView {
        ContactsView::new(self.conn.contacts(), self.conn.requests())
    }

    fn ring_view(&self, r: confab_core::connection::Ringing) -> RingView {
        RingView {
            room_id: r.room_id,
            from: self.user_view(r.from),
            video: r.video,
        }
    }

    /// The lowest marker among the other members (a member without one counts as 0);
    /// `None` where receipts are not shown.
    fn receipts(&self, room: RoomId) -> ReceiptsView {
        let none = ReceiptsView {
            room_id: room,
            read_up_to: None,
            delivered_up_to: None,
        };
        let Some(summary) = self.conn.room(room) else {
            return none;
        };
        let members = summary.room.member_count;
        if !(2..=RECEIPTS_MAX_MEMBERS).contains(&members) {
            return none;
        }
        let others = (members - 1) as usize;
        let markers = lock(&self.markers);
        let known = markers.get(&room);
        let lowest = |live: HashMap<UserId, u64>, known: Option<&HashMap<UserId, u64>>| {
            let mut all = known.cloned().unwrap_or_default();
            for (user, seq) in live {
                let entry = all.entry(user).or_default();
                *entry = (*entry).max(seq);
            }
            all.remove(&self.me);
            if all.len() < others {
                0
            } else {
                all.values().copied().min().unwrap_or(0)
            }
        };
        let read = lowest(self.conn.read_markers(room), known.map(|m| &m.read));
        let delivered = lowest(
            self.conn.delivered_markers(room),
            known.map(|m| &m.delivered),
        );
        ReceiptsView {
            room_id: room,
            read_up_to: Some(read),
            // Read implies received.
            delivered_up_to: Some(delivered.max(read)),
        }
    }

    fn unread_total(&self) -> u32 {
        self.conn
            .rooms()
            .iter()
            .map(|r| r.unread_count)
            .fold(0u32, u32::saturating_add)
    }

    /// The events (and notices) one connection event makes.
    fn translate(&self, event: ConnectionEvent, outlet: &dyn Outlet) {
        use MessengerEvent as E;
        let emit = |e: MessengerEvent| outlet.event(e);
        match event {
            ConnectionEvent::Connected => emit(E::Connection {
                state: ConnectionState::Online,
                attempt: None,
            }),
            ConnectionEvent::Disconnected { .. } => emit(E::Connection {
                state: ConnectionState::Offline,
                attempt: None,
            }),
            ConnectionEvent::Reconnecting { attempt, .. } => emit(E::Connection {
                state: ConnectionState::Reconnecting,
                attempt: Some(attempt),
            }),
            ConnectionEvent::Synced => {
                self.save_rooms();
                self.cache
                    .touch_all(self.conn.rooms().into_iter().map(|s| s.room.id));
                emit(E::Synced);
                emit(E::ContactsChanged {
                    contacts: self.contacts(),
                });
                outlet.notice(Notice::Unread {
                    total: self.unread_total(),
                });
            }
            ConnectionEvent::RoomAdded(s) | ConnectionEvent::RoomUpdated(s) => {
                self.cache.touch(s.room.id);
                emit(E::RoomUpserted {
                    room: ConversationView::new(s, self.me),
                });
                outlet.notice(Notice::Unread {
                    total: self.unread_total(),
                });
            }
            ConnectionEvent::RoomRemoved(room_id) => {
                self.cache.touch(room_id);
                emit(E::RoomRemoved { room_id });
                outlet.notice(Notice::Unread {
                    total: self.unread_total(),
                });
            }
            ConnectionEvent::MessageCreated(m) => {
                self.cache.touch(m.room_id);
                if let Some(notice) = self.message_notice(&m) {
                    outlet.notice(notice);
                }
                emit(E::MessageCreated {
                    message: self.view(m),
                });
            }
            ConnectionEvent::MessageUpdated(m) => {
                self.cache.touch(m.room_id);
                emit(E::MessageUpdated {
                    message: self.view(m),
                })
            }
            ConnectionEvent::MessageDeleted(m) => {
                self.cache.touch(m.room_id);
                emit(E::MessageDeleted {
                    message: self.view(m),
                })
            }
            ConnectionEvent::ReactionChanged {
                room_id,
                message_id,
                reactions,
            } => {
                self.cache.touch(room_id);
                emit(E::Reactions {
                    room_id,
                    message_id,
                    reactions: ReactionView::list(reactions, self.me),
                })
            }
            ConnectionEvent::MessageSent { client_id, message } => {
                lock(&self.unsent).remove(&client_id);
                emit(E::MessageSent {
                    client_id,
                    message: self.view(message),
                });
            }
            ConnectionEvent::MessageFailed {
                client_id, error, ..
            } => {
                let failed = {
                    let mut unsent = lock(&self.unsent);
                    unsent.get_mut(&client_id).map(|(p, e)| {
                        *e = Some(error.message.clone());
                        self.unsent_view(p, e.clone())
                    })
                };
                if let Some(message) = failed {
                    emit(E::MessageFailed { message });
                }
            }
            ConnectionEvent::Read { room_id, .. } | ConnectionEvent::Delivered { room_id, .. } => {
                emit(E::Receipts {
                    receipts: self.receipts(room_id),
                });
            }
            ConnectionEvent::Typing { room_id, .. } => emit(E::Typing {
                room_id,
                typing: self.typing(room_id),
            }),
            ConnectionEvent::Presence { user_id, status } => {
                emit(E::Presence { user_id, status });
            }
            ConnectionEvent::ContactRequest(request) => {
                if request.to.id == self.me {
                    outlet.notice(Notice::ContactRequest {
                        from: display(&request.from),
                    });
                }
                emit(E::ContactsChanged {
                    contacts: self.contacts(),
                });
            }
            ConnectionEvent::ContactAdded(_)
            | ConnectionEvent::ContactRemoved(_)
            | ConnectionEvent::ContactRequestRemoved(_) => emit(E::ContactsChanged {
                contacts: self.contacts(),
            }),
            ConnectionEvent::CallRinging(ring) => {
                let ring = self.ring_view(ring);
                outlet.notice(Notice::Ringing {
                    room_id: ring.room_id,
                    from: ring.from.name.clone(),
                    video: ring.video,
                });
                emit(E::Ringing { ring });
            }
            ConnectionEvent::CallRingStopped { room_id, reason } => {
                emit(E::RingStopped { room_id, reason });
            }
            ConnectionEvent::CallDeclined { room_id, by } => {
                emit(E::CallDeclined { room_id, by });
            }
            ConnectionEvent::CallMissed { room_id } => emit(E::CallMissed { room_id }),
            ConnectionEvent::CallStarted {
                room_id,
                participant_count,
            } => emit(E::CallStarted {
                room_id,
                participant_count: u32::try_from(participant_count).unwrap_or(u32::MAX),
            }),
            ConnectionEvent::CallEnded { room_id } => emit(E::CallEnded { room_id }),
            ConnectionEvent::CommunityChanged(state) => emit(E::CommunityUpserted {
                community: communities::CommunityView::of_state(
                    state,
                    self.conn.api().server_url(),
                ),
            }),
            ConnectionEvent::CommunityRemoved {
                community_id,
                reason,
            } => emit(E::CommunityRemoved {
                community_id,
                reason,
            }),
            ConnectionEvent::CommunityMemberJoined {
                community_id,
                member,
            } => emit(E::CommunityMemberJoined {
                community_id,
                member: member.into(),
            }),
            ConnectionEvent::CommunityMemberLeft {
                community_id,
                user_id,
                reason,
            } => emit(E::CommunityMemberLeft {
                community_id,
                user_id,
                reason,
            }),
            ConnectionEvent::CommunityRoleChanged {
                community_id,
                user_id,
                role,
            } => emit(E::CommunityRoleChanged {
                community_id,
                user_id,
                role,
            }),
        }
    }

    /// A notice for someone else's fresh message.
    fn message_notice(&self, m: &Message) -> Option<Notice> {
        let author = m.author?;
        let fresh =
            (time::OffsetDateTime::now_utc() - m.created_at).whole_seconds() < NOTIFY_WITHIN_SECS;
        if author == self.me || m.deleted || m.author_blocked || !fresh {
            return None;
        }
        let summary = self.conn.room(m.room_id)?;
        let sender = self.name(author).unwrap_or_else(|| "Someone".into());
        let title = match summary.room.kind {
            RoomKind::Direct => sender,
            RoomKind::Channel => format!("{sender} in #{}", summary.room.title),
            _ => format!("{sender} in {}", summary.room.title),
        };
        let body: String = m.body.chars().take(shared::api::PREVIEW_CHARS).collect();
        Some(Notice::Message {
            room_id: m.room_id,
            muted: summary.muted,
            title,
            body,
        })
    }
}

fn display(u: &PublicUser) -> String {
    u.display_name.clone().unwrap_or_else(|| u.username.clone())
}

/// Forwards the connection's events until the connection closes.
async fn pump(inner: Arc<Inner>, mut events: tokio::sync::broadcast::Receiver<ConnectionEvent>) {
    let outlet = Arc::clone(&inner.outlet);
    loop {
        match events.recv().await {
            Ok(event) => inner.translate(event, outlet.as_ref()),
            // Fell behind: the UI reads everything again, as after a catch-up.
            Err(RecvError::Lagged(_)) => inner.translate(ConnectionEvent::Synced, outlet.as_ref()),
            Err(RecvError::Closed) => break,
        }
    }
}
