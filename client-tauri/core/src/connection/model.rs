//! The local model of a signed-in session, as a state machine without I/O: server
//! events, catch-up pages and room lists go in, [`ConnectionEvent`]s come out. The
//! connection's driver feeds it (`driver.rs`); tests feed it directly.
//!
//! # Catch-up by rev
//! Every change in a room (a message, an edit, a deletion, a reaction) takes the room's
//! next `rev`. Each room keeps a cursor: every change up to it has been applied. A live
//! change with rev `cursor + 1` is applied at once; an older one is skipped (it was
//! applied, or a newer state of the same message was); a newer one waits in the room's
//! buffer for the missing revs, which usually arrive a moment later (two senders'
//! events can cross), and when they do not within a grace period the driver pages
//! `GET /changes?since=cursor` and the buffer drains. So every change is applied once
//! and in order whatever the network does.
//!
//! # Unread counts
//! The server's count in a room summary is exact as of the summary's `rev` (the basis).
//! Each change applied after the basis adjusts it by what the message contributed before
//! and after (a new message from someone else after my read marker adds one, its
//! deletion takes it back). Moving my read marker recounts from the loaded messages when
//! they cover the range, and otherwise asks the driver for a fresh room list
//! ([`Model::take_stale`]).

mod communities;

pub use communities::CommunityState;

use super::ConnectionEvent;
use shared::api::{
    Contact, ContactRequest, ContactRequests, Me, Message, MessagePreview, PREVIEW_CHARS,
    PresenceStatus, PublicUser, Reaction, Room, RoomSummary, UNREAD_COUNT_CAP,
};
use shared::signal::{PresenceEntry, RingEnd};
use shared::{ContactRequestId, MessageId, RoomId, UserId};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// One ordered change of a room's timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A message as it is after the change (created, edited, deleted, or acknowledged).
    Message(Message),
    /// A message's reactions changed.
    Reaction {
        message_id: MessageId,
        rev: u64,
        reactions: Vec<Reaction>,
    },
}

impl Change {
    fn rev(&self) -> u64 {
        match self {
            Self::Message(m) => m.rev,
            Self::Reaction { rev, .. } => *rev,
        }
    }
}

/// What [`Model::apply_live`] did with a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Live {
    /// Applied (with any buffered changes it unblocked).
    Applied,
    /// Already applied; skipped.
    Old,
    /// Ahead of the cursor: buffered until the gap fills.
    Buffered,
    /// A room the model does not know: the room list needs a refresh.
    UnknownRoom,
}

/// A ringing direct call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ringing {
    pub room_id: RoomId,
    pub from: UserId,
    pub video: bool,
}

/// One room in the model.
#[derive(Clone, Debug)]
pub struct RoomState {
    /// The room as the room list shows it, kept current.
    pub summary: RoomSummary,
    /// Every change up to this rev has been applied.
    pub cursor: u64,
    /// The summary's counts are exact as of this rev ...
    basis_rev: u64,
    /// ... when the newest message had this seq.
    basis_last_seq: u64,
    /// The newest seq reported as created (messages after it are news).
    seen_seq: u64,
    /// Messages loaded so far (from events, catch-up and history), by seq.
    messages: BTreeMap<u64, Message>,
    by_id: HashMap<MessageId, u64>,
    /// Changes ahead of the cursor, by rev.
    pending: BTreeMap<u64, Change>,
    /// Since when the room has waited for a missing rev.
    gap_since: Option<Instant>,
    /// Other members' read markers and delivery markers (from receipts).
    pub read_markers: HashMap<UserId, u64>,
    pub delivered: HashMap<UserId, u64>,
}

impl RoomState {
    fn new(summary: RoomSummary) -> Self {
        Self {
            cursor: summary.rev,
            basis_rev: summary.rev,
            basis_last_seq: summary.last_seq,
            seen_seq: summary.last_seq,
            summary,
            messages: BTreeMap::new(),
            by_id: HashMap::new(),
            pending: BTreeMap::new(),
            gap_since: None,
            read_markers: HashMap::new(),
            delivered: HashMap::new(),
        }
    }

    /// Loaded messages, ascending seq.
    pub fn messages(&self) -> impl Iterator<Item = &Message> {
        self.messages.values()
    }

    /// Whether every seq in `from..=to` is loaded.
    fn covers(&self, from: u64, to: u64) -> bool {
        from > to || self.messages.range(from..=to).count() as u64 == to - from + 1
    }
}

/// The session's local model. See the module documentation.
#[derive(Debug)]
pub struct Model {
    me: UserId,
    rooms: HashMap<RoomId, RoomState>,
    contacts: HashMap<UserId, Contact>,
    incoming: Vec<ContactRequest>,
    outgoing: Vec<ContactRequest>,
    presence: HashMap<UserId, PresenceStatus>,
    typing: HashMap<RoomId, HashMap<UserId, Instant>>,
    ringing: HashMap<RoomId, Ringing>,
    /// Everyone whose name we have seen, for message previews.
    users: HashMap<UserId, PublicUser>,
    /// The highest seq per room received from others and not yet confirmed as delivered.
    delivered_due: HashMap<RoomId, u64>,
    /// The room list should be fetched again (counts or previews could not be kept
    /// exact locally, or an event named an unknown room).
    stale: bool,
    /// My communities (their channels are rooms in `rooms`).
    communities: HashMap<shared::CommunityId, CommunityState>,
}

impl Model {
    /// An empty model for the signed-in user.
    pub fn new(me: &Me) -> Self {
        let mut users = HashMap::new();
        users.insert(
            me.id,
            PublicUser {
                id: me.id,
                username: me.username.clone(),
                display_name: me.display_name.clone(),
                status_text: me.status_text.clone(),
                avatar_url: me.avatar_url.clone(),
            },
        );
        Self {
            me: me.id,
            rooms: HashMap::new(),
            contacts: HashMap::new(),
            incoming: Vec::new(),
            outgoing: Vec::new(),
            presence: HashMap::new(),
            typing: HashMap::new(),
            ringing: HashMap::new(),
            users,
            delivered_due: HashMap::new(),
            stale: false,
            communities: HashMap::new(),
        }
    }

    // --- reading ------------------------------------------------------------------------

    /// A room, if I am a member.
    pub fn room(&self, id: RoomId) -> Option<&RoomState> {
        self.rooms.get(&id)
    }

    /// Every room, most recent activity first.
    pub fn rooms(&self) -> Vec<RoomSummary> {
        let mut rooms: Vec<RoomSummary> = self.rooms.values().map(|r| r.summary.clone()).collect();
        rooms.sort_by_key(|r| {
            std::cmp::Reverse(
                r.last_message
                    .as_ref()
                    .map_or(r.room.created_at, |m| m.created_at),
            )
        });
        rooms
    }

    /// My contacts, by username.
    pub fn contacts(&self) -> Vec<Contact> {
        let mut contacts: Vec<Contact> = self.contacts.values().cloned().collect();
        contacts.sort_by(|a, b| a.user.username.cmp(&b.user.username));
        contacts
    }

    /// Pending contact requests.
    pub fn requests(&self) -> ContactRequests {
        ContactRequests {
            incoming: self.incoming.clone(),
            outgoing: self.outgoing.clone(),
        }
    }

    /// Who is typing in a room now.
    pub fn typing(&self, room: RoomId, now: Instant) -> Vec<UserId> {
        self.typing.get(&room).map_or_else(Vec::new, |t| {
            t.iter()
                .filter(|(_, until)| **until > now)
                .map(|(u, _)| *u)
                .collect()
        })
    }

    /// Someone's presence as last heard (offline when never heard).
    pub fn presence(&self, user: UserId) -> PresenceStatus {
        self.presence.get(&user).copied().unwrap_or_default()
    }

    /// Calls ringing for me.
    pub fn ringing(&self) -> Vec<Ringing> {
        self.ringing.values().cloned().collect()
    }

    /// A user seen anywhere in the model.
    pub fn user(&self, id: UserId) -> Option<&PublicUser> {
        self.users.get(&id)
    }

    /// A user by username (case-insensitive), among those seen.
    pub fn user_named(&self, name: &str) -> Option<&PublicUser> {
        self.users
            .values()
            .find(|u| u.username.eq_ignore_ascii_case(name))
    }

    /// True once; set when the room list should be fetched again.
    pub fn take_stale(&mut self) -> bool {
        std::mem::take(&mut self.stale)
    }

    /// Asks for a fresh room list.
    pub fn mark_stale(&mut self) {
        self.stale = true;
    }

    /// Delivery markers to send: room -> highest seq received from others.
    pub fn take_delivered(&mut self) -> Vec<(RoomId, u64)> {
        self.delivered_due.drain().collect()
    }

    /// Whether delivery markers wait to be sent.
    pub fn has_delivered_due(&self) -> bool {
        !self.delivered_due.is_empty()
    }

    // --- rooms --------------------------------------------------------------------------

    /// A room summary from the room list or `room_added`. Returns true when the server
    /// has changes the model has not applied (page `/changes` from the cursor).
    pub fn upsert_summary(&mut self, summary: RoomSummary, out: &mut Vec<ConnectionEvent>) -> bool {
        self.learn_summary_users(&summary);
        let id = summary.room.id;
        match self.rooms.get_mut(&id) {
            Some(room) => {
                room.basis_rev = summary.rev;
                room.basis_last_seq = summary.last_seq;
                let behind = summary.rev > room.cursor;
                room.summary = summary;
                out.push(ConnectionEvent::RoomUpdated(room.summary.clone()));
                behind
            }
            None => {
                let room = RoomState::new(summary);
                out.push(ConnectionEvent::RoomAdded(room.summary.clone()));
                self.rooms.insert(id, room);
                false
            }
        }
    }

    /// Drops the rooms not in `keep` (after a fresh room list).
    pub fn retain_rooms(&mut self, keep: &[RoomId], out: &mut Vec<ConnectionEvent>) {
        let gone: Vec<RoomId> = self
            .rooms
            .keys()
            .filter(|id| !keep.contains(id))
            .copied()
            .collect();
        for id in gone {
            self.remove_room(id, out);
        }
    }

    /// `room_updated`: title, members, capacity or owner changed.
    /// My own settings for a room changed (here or on another device).
    pub fn room_settings(&mut self, room: RoomId, muted: bool, out: &mut Vec<ConnectionEvent>) {
        if let Some(state) = self.rooms.get_mut(&room)
            && state.summary.muted != muted
        {
            state.summary.muted = muted;
            out.push(ConnectionEvent::RoomUpdated(state.summary.clone()));
        }
    }

    pub fn room_updated(&mut self, room: Room, out: &mut Vec<ConnectionEvent>) {
        match self.rooms.get_mut(&room.id) {
            Some(state) => {
                state.summary.room = room;
                out.push(ConnectionEvent::RoomUpdated(state.summary.clone()));
            }
            None => self.stale = true,
        }
    }

    /// `room_removed`, or gone from the room list.
    pub fn remove_room(&mut self, id: RoomId, out: &mut Vec<ConnectionEvent>) {
        if self.rooms.remove(&id).is_some() {
            self.typing.remove(&id);
            self.ringing.remove(&id);
            self.delivered_due.remove(&id);
            out.push(ConnectionEvent::RoomRemoved(id));
        }
    }

    /// My own settings for a room changed (muted).
    pub fn set_muted(&mut self, id: RoomId, muted: bool, out: &mut Vec<ConnectionEvent>) {
        if let Some(room) = self.rooms.get_mut(&id)
            && room.summary.muted != muted
        {
            room.summary.muted = muted;
            out.push(ConnectionEvent::RoomUpdated(room.summary.clone()));
        }
    }

    // --- the timeline -------------------------------------------------------------------

    /// A live change (an event or my own acknowledged send). See the module docs.
    pub fn apply_live(
        &mut self,
        room_id: RoomId,
        change: Change,
        now: Instant,
        out: &mut Vec<ConnectionEvent>,
    ) -> Live {
        let Some(room) = self.rooms.get_mut(&room_id) else {
            self.stale = true;
            return Live::UnknownRoom;
        };
        let rev = change.rev();
        if rev <= room.cursor {
            return Live::Old;
        }
        if rev > room.cursor + 1 {
            room.pending.insert(rev, change);
            room.gap_since.get_or_insert(now);
            return Live::Buffered;
        }
        let base = room.seen_seq;
        self.apply_change(room_id, change, base, out);
        self.drain(room_id, out);
        Live::Applied
    }

    /// Rooms that have waited for a missing rev for `grace` or longer.
    pub fn gaps(&self, now: Instant, grace: Duration) -> Vec<RoomId> {
        self.rooms
            .iter()
            .filter(|(_, r)| r.gap_since.is_some_and(|t| now.duration_since(t) >= grace))
            .map(|(id, _)| *id)
            .collect()
    }

    /// When the oldest gap's grace runs out.
    pub fn next_gap_deadline(&self, grace: Duration) -> Option<Instant> {
        self.rooms
            .values()
            .filter_map(|r| r.gap_since)
            .min()
            .map(|t| t + grace)
    }

    /// Restarts a room's gap clock (its catch-up failed; try again after the grace).
    pub fn retry_gap(&mut self, room: RoomId, now: Instant) {
        if let Some(r) = self.rooms.get_mut(&room)
            && r.gap_since.is_some()
        {
            r.gap_since = Some(now);
        }
    }

    /// Where a catch-up of `room` starts: its cursor, and the seq after which messages
    /// are news (to pass to every [`Model::apply_changes`] of this catch-up).
    pub fn catch_up_from(&self, room: RoomId) -> Option<(u64, u64)> {
        self.rooms.get(&room).map(|r| (r.cursor, r.seen_seq))
    }

    /// One page of `GET /changes` (ascending rev, each message as it is now), `rev` the
    /// page's cursor and `last_read_seq` my marker now.
    pub fn apply_changes(
        &mut self,
        room_id: RoomId,
        messages: Vec<Message>,
        rev: u64,
        last_read_seq: u64,
        base_seq: u64,
        out: &mut Vec<ConnectionEvent>,
    ) {
        let Some(room) = self.rooms.get(&room_id) else {
            return;
        };
        let cursor = room.cursor;
        for message in messages {
            if message.rev > cursor {
                self.apply_change(room_id, Change::Message(message), base_seq, out);
            }
        }
        if let Some(room) = self.rooms.get_mut(&room_id) {
            room.cursor = room.cursor.max(rev);
            let cursor = room.cursor;
            room.pending.retain(|r, _| *r > cursor);
        }
        self.move_read_marker(room_id, last_read_seq, out);
        self.drain(room_id, out);
    }

    /// Applies buffered changes that follow the cursor.
    fn drain(&mut self, room_id: RoomId, out: &mut Vec<ConnectionEvent>) {
        loop {
            let Some(room) = self.rooms.get_mut(&room_id) else {
                return;
            };
            let next = room.cursor + 1;
            let Some(change) = room.pending.remove(&next) else {
                room.gap_since = if room.pending.is_empty() {
                    None
                } else {
                    room.gap_since
                };
                return;
            };
            let base = room.seen_seq;
            self.apply_change(room_id, change, base, out);
        }
    }

    /// Applies one change in rev order and moves the cursor to it.
    fn apply_change(
        &mut self,
        room_id: RoomId,
        change: Change,
        base_seq: u64,
        out: &mut Vec<ConnectionEvent>,
    ) {
        let rev = change.rev();
        match change {
            Change::Message(message) => self.apply_message(room_id, message, base_seq, out),
            Change::Reaction {
                message_id,
                rev,
                reactions,
            } => {
                if let Some(room) = self.rooms.get_mut(&room_id)
                    && let Some(seq) = room.by_id.get(&message_id)
                    && let Some(m) = room.messages.get_mut(seq)
                    && m.rev < rev
                {
                    m.rev = rev;
                    m.reactions = reactions.clone();
                }
                out.push(ConnectionEvent::ReactionChanged {
                    room_id,
                    message_id,
                    reactions,
                });
            }
        }
        if let Some(room) = self.rooms.get_mut(&room_id) {
            room.cursor = room.cursor.max(rev);
            room.summary.rev = room.summary.rev.max(room.cursor);
        }
    }

    /// What a message adds to (unread, mentions) with my read marker at `read`.
    fn contribution(&self, m: &Message, read: u64) -> (i64, i64) {
        let counts = !m.deleted && m.author != Some(self.me) && !m.author_blocked && m.seq > read;
        if counts {
            (1, i64::from(m.mentions_user(self.me)))
        } else {
            (0, 0)
        }
    }

    fn apply_message(
        &mut self,
        room_id: RoomId,
        message: Message,
        base_seq: u64,
        out: &mut Vec<ConnectionEvent>,
    ) {
        let Some(room) = self.rooms.get(&room_id) else {
            return;
        };
        let prev = room.messages.get(&message.seq);
        if prev.is_some_and(|p| p.rev >= message.rev) {
            return;
        }
        let read = room.summary.last_read_seq;
        // How the change moves the counts, relative to the summary's basis.
        let delta = if message.rev <= room.basis_rev {
            (0, 0)
        } else {
            let after = self.contribution(&message, read);
            let before = match prev {
                Some(p) => self.contribution(p, read),
                // Created after the basis: it counted for nothing.
                None if message.seq > room.basis_last_seq => (0, 0),
                // An old message not loaded: tombstones never change again, so a
                // deletion seen now happened after the basis, when it still counted.
                None if message.deleted => {
                    let mut alive = message.clone();
                    alive.deleted = false;
                    self.contribution(&alive, read)
                }
                None => after,
            };
            (after.0 - before.0, after.1 - before.1)
        };
        let created = prev.is_none() && message.seq > base_seq;
        let deleted = message.deleted && !prev.is_some_and(|p| p.deleted);
        let author_unknown = message.author.is_some_and(|a| !self.users.contains_key(&a));
        let preview_author = message.author.and_then(|a| self.users.get(&a).cloned());
        let mine = message.author == Some(self.me);

        let Some(room) = self.rooms.get_mut(&room_id) else {
            return;
        };
        let summary = &mut room.summary;
        let cap = i64::from(UNREAD_COUNT_CAP);
        let adjust = |count: &mut u32, by: i64| {
            *count = u32::try_from((i64::from(*count) + by).clamp(0, cap)).unwrap_or(0);
        };
        adjust(&mut summary.unread_count, delta.0);
        adjust(&mut summary.mention_count, delta.1);
        summary.last_seq = summary.last_seq.max(message.seq);
        if created {
            room.seen_seq = room.seen_seq.max(message.seq);
        }

        // The last-message preview.
        let mut stale = false;
        let preview_seq = summary.last_message.as_ref().map(|p| p.seq);
        if !message.deleted && preview_seq.is_none_or(|s| s <= message.seq) {
            if author_unknown {
                stale = true;
            }
            summary.last_message = Some(MessagePreview {
                message_id: message.id,
                seq: message.seq,
                author: preview_author,
                kind: message.kind,
                body: message.body.chars().take(PREVIEW_CHARS).collect(),
                created_at: message.created_at,
                author_blocked: message.author_blocked,
            });
        } else if message.deleted && preview_seq == Some(message.seq) {
            // The newest message before it that is alive, if the loaded ones tell.
            let mut replacement = None;
            let mut known = false;
            let mut expect = message.seq;
            for (seq, m) in room.messages.range(..message.seq).rev() {
                if *seq + 1 != expect {
                    break;
                }
                expect = *seq;
                if !m.deleted {
                    replacement = Some(m.clone());
                    known = true;
                    break;
                }
            }
            if !known && expect == 1 {
                known = true;
            }
            match (known, replacement) {
                (true, Some(m)) => {
                    summary.last_message = Some(MessagePreview {
                        message_id: m.id,
                        seq: m.seq,
                        author: m.author.and_then(|a| self.users.get(&a).cloned()),
                        kind: m.kind,
                        body: m.body.chars().take(PREVIEW_CHARS).collect(),
                        created_at: m.created_at,
                        author_blocked: m.author_blocked,
                    });
                }
                (true, None) => summary.last_message = None,
                (false, _) => stale = true,
            }
        }
        room.by_id.insert(message.id, message.seq);
        room.messages.insert(message.seq, message.clone());
        if created && !mine && !message.deleted {
            let due = self.delivered_due.entry(room_id).or_default();
            *due = (*due).max(message.seq);
        }
        if stale {
            self.stale = true;
        }

        if created {
            if let Some(author) = message.author
                && let Some(typists) = self.typing.get_mut(&room_id)
                && typists.remove(&author).is_some()
            {
                out.push(ConnectionEvent::Typing {
                    room_id,
                    user_id: author,
                    typing: false,
                });
            }
            out.push(ConnectionEvent::MessageCreated(message.clone()));
        } else if deleted {
            out.push(ConnectionEvent::MessageDeleted(message.clone()));
        } else {
            out.push(ConnectionEvent::MessageUpdated(message.clone()));
        }
        if mine && created {
            // Sending moves my read marker on the server.
            self.move_read_marker(room_id, message.seq, out);
        }
        if let Some(room) = self.rooms.get(&room_id) {
            out.push(ConnectionEvent::RoomUpdated(room.summary.clone()));
        }
    }

    /// Messages from a REST answer (a history page, a send or an edit): merged only when
    /// they are no newer than the cursor, so the ordered stream stays the one way news
    /// and counts arrive (a newer one comes through it shortly).
    pub fn merge(&mut self, room_id: RoomId, messages: &[Message]) {
        let Some(room) = self.rooms.get_mut(&room_id) else {
            return;
        };
        for m in messages {
            if m.rev > room.cursor || m.seq > room.basis_last_seq.max(room.seen_seq) {
                continue;
            }
            if room.messages.get(&m.seq).is_some_and(|p| p.rev >= m.rev) {
                continue;
            }
            room.by_id.insert(m.id, m.seq);
            room.messages.insert(m.seq, m.clone());
        }
    }

    /// My read marker moved (here, on another device, or by my own send).
    pub fn move_read_marker(&mut self, room_id: RoomId, seq: u64, out: &mut Vec<ConnectionEvent>) {
        let Some(room) = self.rooms.get(&room_id) else {
            return;
        };
        let old = room.summary.last_read_seq;
        if seq <= old {
            return;
        }
        let last = room.summary.last_seq;
        let counts = if seq >= last {
            Some((0, 0))
        } else if room.covers(seq + 1, last) {
            let (u, m) = room
                .messages
                .range(seq + 1..=last)
                .map(|(_, m)| self.contribution(m, seq))
                .fold((0, 0), |a, c| (a.0 + c.0, a.1 + c.1));
            Some((u, m))
        } else if room.covers(old + 1, seq) {
            let (u, m) = room
                .messages
                .range(old + 1..=seq)
                .map(|(_, m)| self.contribution(m, old))
                .fold((0, 0), |a, c| (a.0 + c.0, a.1 + c.1));
            Some((
                i64::from(room.summary.unread_count) - u,
                i64::from(room.summary.mention_count) - m,
            ))
        } else {
            None
        };
        let Some(room) = self.rooms.get_mut(&room_id) else {
            return;
        };
        room.summary.last_read_seq = seq;
        match counts {
            Some((u, m)) => {
                let cap = i64::from(UNREAD_COUNT_CAP);
                room.summary.unread_count = u32::try_from(u.clamp(0, cap)).unwrap_or(0);
                room.summary.mention_count = u32::try_from(m.clamp(0, cap)).unwrap_or(0);
            }
            None => self.stale = true,
        }
        out.push(ConnectionEvent::RoomUpdated(room.summary.clone()));
    }

    /// A `read` receipt: someone's marker, or mine from another device.
    pub fn read(
        &mut self,
        room_id: RoomId,
        user: UserId,
        seq: u64,
        out: &mut Vec<ConnectionEvent>,
    ) {
        if user == self.me {
            self.move_read_marker(room_id, seq, out);
            return;
        }
        if let Some(room) = self.rooms.get_mut(&room_id) {
            let marker = room.read_markers.entry(user).or_default();
            *marker = (*marker).max(seq);
            out.push(ConnectionEvent::Read {
                room_id,
                user_id: user,
                seq,
            });
        }
    }

    /// A `delivered` receipt.
    pub fn delivered(
        &mut self,
        room_id: RoomId,
        user: UserId,
        seq: u64,
        out: &mut Vec<ConnectionEvent>,
    ) {
        if let Some(room) = self.rooms.get_mut(&room_id) {
            let marker = room.delivered.entry(user).or_default();
            *marker = (*marker).max(seq);
            out.push(ConnectionEvent::Delivered {
                room_id,
                user_id: user,
                seq,
            });
        }
    }

    // --- typing and presence ------------------------------------------------------------

    /// A `typing` event: started (for `expires_in_ms`) or stopped (0).
    pub fn typing_event(
        &mut self,
        room_id: RoomId,
        user: UserId,
        expires_in_ms: u64,
        now: Instant,
        out: &mut Vec<ConnectionEvent>,
    ) {
        let typists = self.typing.entry(room_id).or_default();
        let was = typists.get(&user).is_some_and(|t| *t > now);
        if expires_in_ms > 0 {
            typists.insert(user, now + Duration::from_millis(expires_in_ms));
            if !was {
                out.push(ConnectionEvent::Typing {
                    room_id,
                    user_id: user,
                    typing: true,
                });
            }
        } else if typists.remove(&user).is_some() && was {
            out.push(ConnectionEvent::Typing {
                room_id,
                user_id: user,
                typing: false,
            });
        }
    }

    /// Ends the typing indicators that ran out.
    pub fn expire_typing(&mut self, now: Instant, out: &mut Vec<ConnectionEvent>) {
        for (room_id, typists) in &mut self.typing {
            typists.retain(|user, until| {
                let alive = *until > now;
                if !alive {
                    out.push(ConnectionEvent::Typing {
                        room_id: *room_id,
                        user_id: *user,
                        typing: false,
                    });
                }
                alive
            });
        }
        self.typing.retain(|_, t| !t.is_empty());
    }

    /// When the next typing indicator runs out.
    pub fn next_typing_deadline(&self) -> Option<Instant> {
        self.typing.values().flat_map(|t| t.values()).min().copied()
    }

    /// The connection dropped: nobody is known to be typing any more.
    pub fn disconnected(&mut self, out: &mut Vec<ConnectionEvent>) {
        for (room_id, typists) in self.typing.drain() {
            for user_id in typists.into_keys() {
                out.push(ConnectionEvent::Typing {
                    room_id,
                    user_id,
                    typing: false,
                });
            }
        }
    }

    /// The presence snapshot after connecting: everyone not in it is offline.
    pub fn presence_snapshot(
        &mut self,
        online: Vec<PresenceEntry>,
        out: &mut Vec<ConnectionEvent>,
    ) {
        let mut now: HashMap<UserId, PresenceStatus> =
            online.into_iter().map(|e| (e.user_id, e.status)).collect();
        let known: Vec<UserId> = self
            .presence
            .keys()
            .chain(self.contacts.keys())
            .copied()
            .collect();
        for user in known {
            now.entry(user).or_insert(PresenceStatus::Offline);
        }
        for (user, status) in now {
            self.set_presence(user, status, out);
        }
    }

    /// A contact or co-member's presence.
    pub fn set_presence(
        &mut self,
        user: UserId,
        status: PresenceStatus,
        out: &mut Vec<ConnectionEvent>,
    ) {
        let old = self.presence.insert(user, status);
        if let Some(contact) = self.contacts.get_mut(&user) {
            contact.presence = status;
        }
        for room in self.rooms.values_mut() {
            if room
                .summary
                .other_user
                .as_ref()
                .is_some_and(|u| u.id == user)
            {
                room.summary.other_presence = Some(status);
            }
        }
        if old.unwrap_or_default() != status {
            out.push(ConnectionEvent::Presence {
                user_id: user,
                status,
            });
        }
    }

    // --- contacts -----------------------------------------------------------------------

    /// The contact list from the server, replacing the model's.
    pub fn replace_contacts(&mut self, contacts: Vec<Contact>, out: &mut Vec<ConnectionEvent>) {
        let keep: Vec<UserId> = contacts.iter().map(|c| c.user.id).collect();
        let gone: Vec<UserId> = self
            .contacts
            .keys()
            .filter(|u| !keep.contains(u))
            .copied()
            .collect();
        for user in gone {
            self.remove_contact(user, out);
        }
        for contact in contacts {
            self.add_contact(contact, out);
        }
    }

    /// A contact, new or changed.
    pub fn add_contact(&mut self, contact: Contact, out: &mut Vec<ConnectionEvent>) {
        let user = contact.user.id;
        self.users.insert(user, contact.user.clone());
        self.presence.insert(user, contact.presence);
        self.incoming.retain(|r| r.from.id != user);
        self.outgoing.retain(|r| r.to.id != user);
        if self.contacts.get(&user) != Some(&contact) {
            self.contacts.insert(user, contact.clone());
            out.push(ConnectionEvent::ContactAdded(contact));
        }
    }

    /// A contact is gone.
    pub fn remove_contact(&mut self, user: UserId, out: &mut Vec<ConnectionEvent>) {
        if self.contacts.remove(&user).is_some() {
            out.push(ConnectionEvent::ContactRemoved(user));
        }
    }

    /// Pending requests from the server, replacing the model's.
    pub fn replace_requests(&mut self, requests: ContactRequests, out: &mut Vec<ConnectionEvent>) {
        let ids: Vec<ContactRequestId> = requests
            .incoming
            .iter()
            .chain(&requests.outgoing)
            .map(|r| r.id)
            .collect();
        let gone: Vec<ContactRequestId> = self
            .incoming
            .iter()
            .chain(&self.outgoing)
            .map(|r| r.id)
            .filter(|id| !ids.contains(id))
            .collect();
        for id in gone {
            self.remove_request(id, out);
        }
        for request in requests.incoming.into_iter().chain(requests.outgoing) {
            self.add_request(request, out);
        }
    }

    /// A request to or from me.
    pub fn add_request(&mut self, request: ContactRequest, out: &mut Vec<ConnectionEvent>) {
        self.users.insert(request.from.id, request.from.clone());
        self.users.insert(request.to.id, request.to.clone());
        let list = if request.to.id == self.me {
            &mut self.incoming
        } else {
            &mut self.outgoing
        };
        if !list.iter().any(|r| r.id == request.id) {
            list.push(request.clone());
            out.push(ConnectionEvent::ContactRequest(request));
        }
    }

    /// A request went away (accepted, declined, cancelled).
    pub fn remove_request(&mut self, id: ContactRequestId, out: &mut Vec<ConnectionEvent>) {
        let before = self.incoming.len() + self.outgoing.len();
        self.incoming.retain(|r| r.id != id);
        self.outgoing.retain(|r| r.id != id);
        if self.incoming.len() + self.outgoing.len() != before {
            out.push(ConnectionEvent::ContactRequestRemoved(id));
        }
    }

    /// Users from a search: remembered for names.
    pub fn learn_users(&mut self, users: &[PublicUser]) {
        for u in users {
            self.users.insert(u.id, u.clone());
        }
    }

    fn learn_summary_users(&mut self, summary: &RoomSummary) {
        if let Some(u) = &summary.other_user {
            self.users.insert(u.id, u.clone());
            if let Some(p) = summary.other_presence {
                self.presence.insert(u.id, p);
            }
        }
        if let Some(u) = summary
            .last_message
            .as_ref()
            .and_then(|m| m.author.as_ref())
        {
            self.users.insert(u.id, u.clone());
        }
    }

    // --- calls --------------------------------------------------------------------------

    /// `call_ringing`.
    pub fn ringing_started(&mut self, ring: Ringing, out: &mut Vec<ConnectionEvent>) {
        self.ringing.insert(ring.room_id, ring.clone());
        out.push(ConnectionEvent::CallRinging(ring));
    }

    /// `call_ring_stopped`.
    pub fn ringing_stopped(
        &mut self,
        room_id: RoomId,
        reason: RingEnd,
        out: &mut Vec<ConnectionEvent>,
    ) {
        self.ringing.remove(&room_id);
        out.push(ConnectionEvent::CallRingStopped { room_id, reason });
    }

    /// `call_started` / `call_ended` (count 0).
    pub fn call_participants(
        &mut self,
        room_id: RoomId,
        count: usize,
        out: &mut Vec<ConnectionEvent>,
    ) {
        if let Some(room) = self.rooms.get_mut(&room_id) {
            room.summary.call_participants = u32::try_from(count).unwrap_or(u32::MAX);
            out.push(ConnectionEvent::RoomUpdated(room.summary.clone()));
        }
        if count == 0 {
            self.ringing.remove(&room_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::api::{MessageKind, RoomKind, RoomRole};
    use time::OffsetDateTime;

    fn me() -> Me {
        Me {
            id: UserId::new(),
            username: "me".into(),
            email: "me@example.com".into(),
            display_name: None,
            status_text: None,
            share_read_receipts: true,
            created_at: OffsetDateTime::UNIX_EPOCH,
            avatar_url: None,
        }
    }

    fn summary(id: RoomId, rev: u64, last_seq: u64, unread: u32) -> RoomSummary {
        RoomSummary {
            room: Room {
                id,
                kind: RoomKind::Group,
                title: "t".into(),
                owner_id: UserId::new(),
                max_participants: 8,
                member_count: 3,
                created_at: OffsetDateTime::UNIX_EPOCH,
            },
            other_user: None,
            other_presence: None,
            my_role: RoomRole::Member,
            last_message: None,
            unread_count: unread,
            mention_count: 0,
            last_read_seq: 0,
            last_seq,
            rev,
            muted: false,
            call_participants: 0,
        }
    }

    fn msg(room: RoomId, seq: u64, rev: u64, author: UserId) -> Message {
        Message {
            id: MessageId(uuid::Uuid::from_u128(u128::from(seq))),
            room_id: room,
            seq,
            rev,
            kind: MessageKind::Text,
            author: Some(author),
            body: format!("m{seq}"),
            reply_to: None,
            reactions: Vec::new(),
            mentions: Vec::new(),
            mentions_everyone: false,
            attachments: Vec::new(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            edited_at: None,
            deleted: false,
            client_id: None,
            author_blocked: false,
        }
    }

    fn setup() -> (Model, RoomId, UserId, Instant) {
        let me = me();
        let mut model = Model::new(&me);
        let room = RoomId::new();
        model.upsert_summary(summary(room, 0, 0, 0), &mut Vec::new());
        let other = PublicUser {
            id: UserId::new(),
            username: "other".into(),
            display_name: None,
            status_text: None,
            avatar_url: None,
        };
        model.learn_users(std::slice::from_ref(&other));
        (model, room, other.id, Instant::now())
    }

    fn created(out: &[ConnectionEvent]) -> Vec<u64> {
        out.iter()
            .filter_map(|e| match e {
                ConnectionEvent::MessageCreated(m) => Some(m.seq),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn changes_apply_once_and_in_order_even_when_events_cross() {
        let (mut model, room, other, now) = setup();
        let mut out = Vec::new();
        let m = |seq| Change::Message(msg(room, seq, seq, other));
        assert_eq!(model.apply_live(room, m(2), now, &mut out), Live::Buffered);
        assert!(created(&out).is_empty());
        assert_eq!(model.apply_live(room, m(1), now, &mut out), Live::Applied);
        assert_eq!(created(&out), [1, 2]);
        assert_eq!(model.apply_live(room, m(2), now, &mut out), Live::Old);
        let state = model.room(room).expect("room");
        assert_eq!(state.cursor, 2);
        assert_eq!(state.summary.unread_count, 2);
        assert!(
            model
                .gaps(now + Duration::from_secs(9), Duration::ZERO)
                .is_empty()
        );
    }

    #[test]
    fn a_gap_that_does_not_fill_is_caught_up_from_the_cursor() {
        let (mut model, room, other, now) = setup();
        let mut out = Vec::new();
        model.apply_live(room, Change::Message(msg(room, 3, 3, other)), now, &mut out);
        let grace = Duration::from_millis(300);
        assert!(model.gaps(now, grace).is_empty());
        assert_eq!(model.gaps(now + grace, grace), [room]);
        let (since, base) = model.catch_up_from(room).expect("room");
        assert_eq!(since, 0);
        // Seq 2 was edited after seq 3 was written: the page lists it last.
        let mut two = msg(room, 2, 4, other);
        two.edited_at = Some(OffsetDateTime::UNIX_EPOCH);
        let page = vec![msg(room, 1, 1, other), msg(room, 3, 3, other), two];
        model.apply_changes(room, page, 4, 0, base, &mut out);
        let mut seqs = created(&out);
        seqs.sort_unstable();
        assert_eq!(seqs, [1, 2, 3], "each message is news exactly once");
        let state = model.room(room).expect("room");
        assert_eq!((state.cursor, state.summary.unread_count), (4, 3));
        assert!(model.gaps(now + grace * 10, grace).is_empty());
    }

    #[test]
    fn deletions_and_read_markers_keep_the_unread_count_exact() {
        let (mut model, room, other, now) = setup();
        let mut out = Vec::new();
        for seq in 1..=4 {
            model.apply_live(
                room,
                Change::Message(msg(room, seq, seq, other)),
                now,
                &mut out,
            );
        }
        let mut gone = msg(room, 2, 5, other);
        gone.deleted = true;
        gone.body.clear();
        model.apply_live(room, Change::Message(gone), now, &mut out);
        assert_eq!(model.room(room).map(|r| r.summary.unread_count), Some(3));
        model.read(room, model.me, 3, &mut out);
        assert_eq!(model.room(room).map(|r| r.summary.unread_count), Some(1));
        // My own message moves my marker past everything.
        let mine = msg(room, 5, 6, model.me);
        model.apply_live(room, Change::Message(mine), now, &mut out);
        let state = model.room(room).expect("room");
        assert_eq!(
            (state.summary.unread_count, state.summary.last_read_seq),
            (0, 5)
        );
        assert_eq!(state.summary.last_message.as_ref().map(|p| p.seq), Some(5));
        assert!(!model.take_stale());
    }

    #[test]
    fn everyone_counts_as_a_mention_of_every_member_but_its_author() {
        let (mut model, room, other, now) = setup();
        let mut out = Vec::new();
        let mention_count = |model: &Model| model.room(room).map(|r| r.summary.mention_count);
        // An admin's @everyone lists nobody in `mentions`, and still mentions me.
        let mut everyone = msg(room, 1, 1, other);
        everyone.mentions_everyone = true;
        model.apply_live(room, Change::Message(everyone.clone()), now, &mut out);
        assert_eq!(mention_count(&model), Some(1));
        // Edited without it: no longer a mention, still unread.
        let mut edited = everyone;
        edited.rev = 2;
        edited.mentions_everyone = false;
        edited.edited_at = Some(OffsetDateTime::UNIX_EPOCH);
        model.apply_live(room, Change::Message(edited), now, &mut out);
        assert_eq!(mention_count(&model), Some(0));
        assert_eq!(model.room(room).map(|r| r.summary.unread_count), Some(1));
        // My own @everyone mentions everyone else, not me.
        let mut mine = msg(room, 2, 3, model.me);
        mine.mentions_everyone = true;
        assert!(!mine.mentions_user(model.me) && mine.mentions_user(other));
        model.apply_live(room, Change::Message(mine), now, &mut out);
        assert_eq!(mention_count(&model), Some(0));
    }

    #[test]
    fn a_deleted_old_message_the_model_never_loaded_leaves_the_count() {
        let me = me();
        let mut model = Model::new(&me);
        let room = RoomId::new();
        let other = UserId::new();
        // The server counted 5 unread as of rev 10.
        model.upsert_summary(summary(room, 10, 5, 5), &mut Vec::new());
        let mut out = Vec::new();
        let mut gone = msg(room, 4, 11, other);
        gone.deleted = true;
        model.apply_live(room, Change::Message(gone), Instant::now(), &mut out);
        assert_eq!(model.room(room).map(|r| r.summary.unread_count), Some(4));
        // Reading up to 2 of 5 with 1..=3 never loaded: only the server can tell.
        model.read(room, me.id, 2, &mut out);
        assert!(model.take_stale());
    }

    #[test]
    fn history_never_overtakes_the_stream() {
        let (mut model, room, other, now) = setup();
        let mut out = Vec::new();
        model.apply_live(room, Change::Message(msg(room, 1, 1, other)), now, &mut out);
        // A page fetched a moment later already holds seq 2, whose event is on its way.
        model.merge(room, &[msg(room, 1, 1, other), msg(room, 2, 2, other)]);
        model.apply_live(room, Change::Message(msg(room, 2, 2, other)), now, &mut out);
        assert_eq!(created(&out), [1, 2]);
        assert_eq!(model.room(room).map(|r| r.summary.unread_count), Some(2));
    }

    #[test]
    fn typing_runs_out_and_stops_when_the_typist_sends() {
        let (mut model, room, other, now) = setup();
        let mut out = Vec::new();
        model.typing_event(room, other, 8000, now, &mut out);
        model.typing_event(room, other, 8000, now, &mut out);
        assert_eq!(out.len(), 1, "a renewal is not news");
        assert_eq!(model.typing(room, now), [other]);
        model.apply_live(room, Change::Message(msg(room, 1, 1, other)), now, &mut out);
        assert!(model.typing(room, now).is_empty());
        model.typing_event(room, other, 100, now, &mut out);
        assert_eq!(
            model.next_typing_deadline(),
            Some(now + Duration::from_millis(100))
        );
        out.clear();
        model.expire_typing(now + Duration::from_millis(100), &mut out);
        assert!(matches!(
            out[..],
            [ConnectionEvent::Typing { typing: false, .. }]
        ));
    }
}
