//! The hub: who is connected, who is in which call, and fan-out to their queues.
//!
//! One mutex guards all of it, never held across an `.await`. Membership events are
//! queued while it is held, so every client sees joins and leaves in one order (a
//! `call_joined` always before the `participant_joined` of a later joiner). Relayed
//! messages, the hot path, are serialized after it is released.
//!
//! With `--redis-url` a call lives in the hub of one node, its home (see
//! `crate::cluster`): participants connected to other nodes are guests there, a
//! [`Conn`] whose [`Route`] names their node, and what the home sends them travels over
//! Redis to that node, which hands it to the connection. A node whose connection is in a
//! call homed elsewhere forwards that connection's leaves and media states there, and
//! sends its relays straight to the addressee's node, as the home last listed the call's
//! participants to it ([`Event::Peers`]).

use crate::cluster::{Event, Link};
use axum::extract::ws::Utf8Bytes;
use serde::{Deserialize, Serialize};
use shared::api::PresenceStatus;
use shared::signal::{
    OwnPresence, Participant, PresenceEntry, RingEnd, ServerMsg, TYPING_EXPIRY_MS,
    TYPING_INTERVAL_MS, close,
};
use shared::{ParticipantId, RoomId, SessionId, UserId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};

/// Tells a session task to close its connection with a code.
#[derive(Debug, Default)]
pub struct Kick {
    notify: Notify,
    code: AtomicU16,
}

impl Kick {
    /// Asks the session to close with `code`; the first code asked for wins.
    pub fn kick(&self, code: u16) {
        let _ = self
            .code
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
        self.notify.notify_one();
    }

    /// Resolves once kicked; returns the close code.
    pub async fn kicked(&self) -> u16 {
        self.notify.notified().await;
        self.code.load(Ordering::Acquire)
    }
}

/// Where to deliver one connection's messages.
#[derive(Clone, Debug)]
pub struct Outlet {
    pub tx: mpsc::Sender<Utf8Bytes>,
    pub kick: Arc<Kick>,
}

impl Outlet {
    /// Queues a message; a client whose queue is full is too slow and gets disconnected,
    /// so a client that does not read cannot make the server's memory grow.
    fn deliver(&self, msg: Utf8Bytes) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(msg) {
            self.kick.kick(close::SLOW_CONSUMER);
        }
    }
}

/// Where a participant's messages go: a connection of this node, or a guest's node.
#[derive(Clone, Debug)]
enum Route {
    Local(Outlet),
    Remote { node: Arc<str>, id: ParticipantId },
}

#[derive(Debug)]
struct Conn {
    session: SessionId,
    route: Route,
    call: Option<RoomId>,
    /// For this node's connection in a call homed on another node: that node.
    home: Option<Arc<str>>,
    info: Participant,
    presence: OwnPresence,
}

impl Conn {
    fn outlet(&self) -> Option<&Outlet> {
        match &self.route {
            Route::Local(outlet) => Some(outlet),
            Route::Remote { .. } => None,
        }
    }
}

/// A running call: who is in it, and which members hear that it runs.
#[derive(Debug, Default)]
struct CallState {
    participants: Vec<ParticipantId>,
    /// The room's members when the call started: they get `call_started` / `call_ended`.
    members: Vec<UserId>,
}

/// A direct call ringing for its callee.
#[derive(Debug, Clone)]
struct Ring {
    caller: UserId,
    callee: UserId,
    video: bool,
    deadline: Instant,
}

/// Someone typing in a room, until `deadline`.
#[derive(Debug)]
struct TypingState {
    deadline: Instant,
    /// When the last `typing` went out: repeats within the client's interval refresh the
    /// deadline without another broadcast.
    announced: Instant,
    /// The connection that typed: its disconnect clears it.
    conn: ParticipantId,
    /// Who was told (and so is told when it stops).
    audience: Vec<UserId>,
}

#[derive(Debug, Default)]
struct HubState {
    conns: HashMap<ParticipantId, Conn>,
    users: HashMap<UserId, Vec<ParticipantId>>,
    calls: HashMap<RoomId, CallState>,
    rings: HashMap<RoomId, Ring>,
    typing: HashMap<(RoomId, UserId), TypingState>,
    /// With `--redis-url`: the presence of users connected to the other nodes, by node.
    remote: HashMap<String, HashMap<UserId, PresenceStatus>>,
    /// With `--redis-url`: the size of calls homed on other nodes, as they announce it,
    /// and their home.
    remote_calls: HashMap<RoomId, (String, usize)>,
    /// With `--redis-url`, for calls homed elsewhere that this node's connections are in:
    /// each participant's node, as the home last told (where their relays go).
    peers: HashMap<RoomId, HashMap<ParticipantId, Arc<str>>>,
}

/// The better of two presences (online over idle over offline).
fn best(a: PresenceStatus, b: PresenceStatus) -> PresenceStatus {
    match (a, b) {
        (PresenceStatus::Online, _) | (_, PresenceStatus::Online) => PresenceStatus::Online,
        (PresenceStatus::Idle, _) | (_, PresenceStatus::Idle) => PresenceStatus::Idle,
        _ => PresenceStatus::Offline,
    }
}

impl HubState {
    /// Forgets where the participants of `room`'s call are once none of this node's
    /// connections is in it as a guest.
    fn prune_peers(&mut self, room: RoomId) {
        if self.peers.contains_key(&room)
            && !self
                .conns
                .values()
                .any(|c| c.call == Some(room) && c.home.is_some())
        {
            self.peers.remove(&room);
        }
    }

    /// A user's presence over this node's connections only.
    fn local_status(&self, user: UserId) -> PresenceStatus {
        let mut status = PresenceStatus::Offline;
        for id in self.users.get(&user).into_iter().flatten() {
            match self.conns.get(id).map(|c| c.presence) {
                Some(OwnPresence::Online) => return PresenceStatus::Online,
                Some(OwnPresence::Idle) => status = PresenceStatus::Idle,
                None => {}
            }
        }
        status
    }

    /// A user's presence over every node's connections.
    fn status(&self, user: UserId) -> PresenceStatus {
        let local = self.local_status(user);
        if local == PresenceStatus::Online || self.remote.is_empty() {
            return local;
        }
        self.remote
            .values()
            .filter_map(|users| users.get(&user))
            .fold(local, |acc, s| best(acc, *s))
    }

    /// Every connection of these users on this node.
    fn outlets_of<'a>(&'a self, users: impl IntoIterator<Item = &'a UserId>) -> Vec<Outlet> {
        users
            .into_iter()
            .filter_map(|u| self.users.get(u))
            .flatten()
            .filter_map(|p| self.conns.get(p))
            .filter_map(Conn::outlet)
            .cloned()
            .collect()
    }
}

/// A direct call that rang out unanswered (or that its caller hung up on): the server
/// writes a "missed call" message for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissedCall {
    pub room: RoomId,
    pub caller: UserId,
    pub callee: UserId,
    pub video: bool,
}

/// What a joining connection asks of a call besides joining it.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct CallContext {
    /// The room's members, told that a call runs.
    pub members: Vec<UserId>,
    /// In a direct room: the other member, rung when this join starts the call.
    pub ring: Option<UserId>,
    /// Whether the caller's camera is on (an audio call otherwise).
    pub video: bool,
}

/// Membership events gathered under the lock, each serialized once and queued to all its
/// recipients before the lock is released.
/// Events for users go to the other nodes too (with `--redis-url`); call events go to
/// the participants' routes (a guest's through its node).
#[derive(Default)]
struct Outbox {
    /// For other nodes, before any message: a guest entering or leaving a call.
    nodes: Vec<(Arc<str>, Event)>,
    local: Vec<(Vec<Route>, ServerMsg)>,
    /// Users, and participants of theirs who are not told.
    users: Vec<(Vec<UserId>, Vec<ParticipantId>, ServerMsg)>,
    /// Call sizes changed here, for the other nodes' room lists.
    sizes: Vec<(RoomId, usize)>,
    /// Calls homed here whose participants changed: their guests' nodes get the list.
    peers: Vec<RoomId>,
}

impl Outbox {
    fn push(&mut self, to: Vec<Route>, msg: ServerMsg) {
        if !to.is_empty() {
            self.local.push((to, msg));
        }
    }

    /// A message for every connection of `users`, on this node and the others.
    fn push_users(&mut self, users: &[UserId], msg: ServerMsg) {
        self.push_users_but(users, Vec::new(), msg);
    }

    /// As [`Outbox::push_users`], leaving out the connections `skip`.
    fn push_users_but(&mut self, users: &[UserId], skip: Vec<ParticipantId>, msg: ServerMsg) {
        if !users.is_empty() {
            self.users.push((users.to_vec(), skip, msg));
        }
    }

    fn flush(self, s: &HubState, link: Option<&Link>) {
        if let Some(link) = link {
            for (node, event) in self.nodes {
                link.send_to(&node, &event);
            }
            let mut rooms = self.peers;
            rooms.sort_unstable_by_key(|r| r.to_string());
            rooms.dedup();
            for room in rooms {
                send_peers(s, room, link);
            }
            for (room, count) in self.sizes {
                link.publish(&Event::CallSize { room, count });
                if count == 0 {
                    link.release_home(room);
                }
            }
        }
        for (routes, msg) in self.local {
            deliver_all(&routes, &encode(&msg), link);
        }
        for (users, skip, msg) in self.users {
            let bytes = encode(&msg);
            for outlet in users
                .iter()
                .filter_map(|u| s.users.get(u))
                .flatten()
                .filter(|p| !skip.contains(p))
                .filter_map(|p| s.conns.get(p))
                .filter_map(Conn::outlet)
            {
                outlet.deliver(bytes.clone());
            }
            if let Some(link) = link {
                link.publish(&Event::Users {
                    users,
                    except: None,
                    skip,
                    msg: bytes,
                });
            }
        }
    }
}

/// Tells the nodes of a call's guests who is in it and where, before the messages about
/// the change that this follows, so their relays go straight to the addressee's node.
fn send_peers(s: &HubState, room: RoomId, link: &Link) {
    let Some(call) = s.calls.get(&room) else {
        return;
    };
    let mut nodes: Vec<&Arc<str>> = Vec::new();
    let mut peers = Vec::with_capacity(call.participants.len());
    for (id, conn) in call
        .participants
        .iter()
        .filter_map(|p| Some((*p, s.conns.get(p)?)))
    {
        match &conn.route {
            Route::Local(_) => peers.push((id, link.node.clone())),
            Route::Remote { node, .. } => {
                if !nodes.contains(&node) {
                    nodes.push(node);
                }
                peers.push((id, node.to_string()));
            }
        }
    }
    if nodes.is_empty() {
        return;
    }
    let event = Event::Peers { room, peers };
    for node in nodes {
        link.send_to(node, &event);
    }
}

/// Delivers one serialized message to routes: this node's connections at once, guests
/// in one event per node.
fn deliver_all(routes: &[Route], bytes: &Utf8Bytes, link: Option<&Link>) {
    let mut remote: Vec<(&Arc<str>, Vec<ParticipantId>)> = Vec::new();
    for route in routes {
        match route {
            Route::Local(outlet) => outlet.deliver(bytes.clone()),
            Route::Remote { node, id } => match remote.iter_mut().find(|(n, _)| *n == node) {
                Some((_, ids)) => ids.push(*id),
                None => remote.push((node, vec![*id])),
            },
        }
    }
    if let Some(link) = link {
        for (node, to) in remote {
            link.send_to(
                node,
                &Event::Deliver {
                    to,
                    msg: bytes.clone(),
                },
            );
        }
    }
}

/// Serializes a message once, for any number of recipients.
pub fn encode(msg: &ServerMsg) -> Utf8Bytes {
    // ServerMsg holds only strings, numbers and ids: serializing it cannot fail.
    Utf8Bytes::from(serde_json::to_string(msg).unwrap_or_default())
}

/// Why a relayed message was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum RelayError {
    /// The sender is not in that room's call.
    NotInCall,
    /// The addressee is not in the sender's call.
    UnknownParticipant,
}

/// The call is at its participant limit.
#[derive(Debug, PartialEq, Eq)]
pub struct CallFull;

/// Connection registry and call membership.
#[derive(Debug)]
pub struct Hub {
    state: Mutex<HubState>,
    missed: mpsc::UnboundedSender<MissedCall>,
    ring_timeout: Duration,
    /// With `--redis-url`: where events for users on other nodes go.
    link: OnceLock<Arc<Link>>,
    /// This node's id (random per process start).
    node: String,
}

impl Hub {
    /// A hub and the receiving end of its missed calls, which the server turns into
    /// timeline messages.
    /// A direct call rings for `ring_timeout` before it is missed.
    pub fn new(ring_timeout: Duration) -> (Self, mpsc::UnboundedReceiver<MissedCall>) {
        let (missed, rx) = mpsc::unbounded_channel();
        let hub = Self {
            state: Mutex::default(),
            missed,
            ring_timeout,
            link: OnceLock::new(),
            node: uuid::Uuid::new_v4().simple().to_string(),
        };
        (hub, rx)
    }

    /// Joins a cluster: from now on events for users also go to the other nodes.
    pub fn attach(&self, link: Arc<Link>) {
        let _ = self.link.set(link);
    }

    /// The cluster link, with `--redis-url`.
    pub fn link(&self) -> Option<&Link> {
        self.link.get().map(|l| &**l)
    }

    /// The cluster link, to keep.
    pub fn link_arc(&self) -> Option<Arc<Link>> {
        self.link.get().cloned()
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than refusing every later connection would, so keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// This node's open connections and the users they belong to (for the metrics).
    pub fn counts(&self) -> (usize, usize) {
        let s = self.lock();
        let local = s.conns.values().filter(|c| c.outlet().is_some()).count();
        (local, s.users.len())
    }

    /// The id this node goes by in the cluster and in its metrics.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Adds a connection. Returns true if it is the user's first (they just came online).
    pub fn register(
        &self,
        id: ParticipantId,
        session: SessionId,
        info: Participant,
        outlet: Outlet,
    ) -> bool {
        let mut s = self.lock();
        let user = info.user_id;
        let before = s.local_status(user);
        s.conns.insert(
            id,
            Conn {
                session,
                route: Route::Local(outlet),
                call: None,
                home: None,
                info,
                presence: OwnPresence::Online,
            },
        );
        let conns = s.users.entry(user).or_default();
        conns.push(id);
        let first = conns.len() == 1;
        self.publish_presence(&s, user, before);
        first
    }

    /// Tells the other nodes this node's presence of `user`, if it changed from `before`.
    fn publish_presence(&self, s: &HubState, user: UserId, before: PresenceStatus) {
        if let Some(link) = self.link() {
            let now = s.local_status(user);
            if now != before {
                link.presence(user, now);
            }
        }
    }

    /// Removes a connection, taking it out of its call. Returns true if it was the user's
    /// last (they just went offline).
    pub fn unregister(&self, id: ParticipantId) -> bool {
        let mut s = self.lock();
        let mut outbox = Outbox::default();
        leave_call_locked(&mut s, id, &mut outbox, &self.missed);
        let typed: Vec<(RoomId, UserId)> = s
            .typing
            .iter()
            .filter(|(_, t)| t.conn == id)
            .map(|(k, _)| *k)
            .collect();
        for key in typed {
            stop_typing_locked(&mut s, key, &mut outbox);
        }
        outbox.flush(&s, self.link());
        let Some(user) = s.conns.get(&id).map(|c| c.info.user_id) else {
            return false;
        };
        let before = s.local_status(user);
        s.conns.remove(&id);
        let now_empty = s.users.get_mut(&user).is_some_and(|list| {
            list.retain(|p| *p != id);
            list.is_empty()
        });
        if now_empty {
            s.users.remove(&user);
        }
        self.publish_presence(&s, user, before);
        now_empty
    }

    /// Records the session of a connection's new access token (after `reauth`).
    pub fn set_session(&self, id: ParticipantId, session: SessionId) {
        if let Some(conn) = self.lock().conns.get_mut(&id) {
            conn.session = session;
        }
    }

    /// Which of `users` are online or idle, and which.
    pub fn online(&self, users: &[UserId]) -> Vec<PresenceEntry> {
        let s = self.lock();
        users
            .iter()
            .map(|u| PresenceEntry {
                user_id: *u,
                status: s.status(*u),
            })
            .filter(|e| e.status != PresenceStatus::Offline)
            .collect()
    }

    /// One user's presence.
    pub fn status(&self, user: UserId) -> PresenceStatus {
        self.lock().status(user)
    }

    /// Tells every connection of `to` the presence of `user`, as the hub sees it now.
    /// Deciding and queuing under one lock means that when a user drops and reconnects
    /// quickly, the last presence message anyone gets is the true one.
    pub fn announce_presence(&self, user: UserId, to: &[UserId]) {
        let s = self.lock();
        let status = s.status(user);
        let mut outbox = Outbox::default();
        outbox.push_users(
            to,
            ServerMsg::Presence {
                user_id: user,
                status,
            },
        );
        outbox.flush(&s, self.link());
    }

    /// A change of `user`'s own presence, told to `to`. Alone, as [`Hub::announce_presence`];
    /// in a cluster, to this node's connections only: every other node announces the
    /// change to its own once its mirror of this node has it (`crate::cluster`), from its
    /// own view. (Told from here to everyone, a status computed from a mirror one event
    /// behind could arrive last and stay: Bob's last two devices on two nodes closing at
    /// once left him online to Ann.)
    pub fn announce_presence_change(&self, user: UserId, to: &[UserId]) {
        if self.link().is_some() {
            self.announce_presence_here(user, to);
        } else {
            self.announce_presence(user, to);
        }
    }

    /// As [`Hub::announce_presence`], to this node's connections only: for a change every
    /// node sees for itself (another node's users gone with it, or resynced).
    pub fn announce_presence_here(&self, user: UserId, to: &[UserId]) {
        let s = self.lock();
        let msg = ServerMsg::Presence {
            user_id: user,
            status: s.status(user),
        };
        let outlets = s.outlets_of(to);
        if !outlets.is_empty() {
            let bytes = encode(&msg);
            for outlet in outlets {
                outlet.deliver(bytes.clone());
            }
        }
    }

    /// Sets one connection's own presence. Returns true when the user's presence (over
    /// all their connections) changed, so the caller announces it.
    pub fn set_presence(&self, id: ParticipantId, presence: OwnPresence) -> bool {
        let mut s = self.lock();
        let Some(user) = s.conns.get(&id).map(|c| c.info.user_id) else {
            return false;
        };
        let before = s.status(user);
        let local_before = s.local_status(user);
        if let Some(conn) = s.conns.get_mut(&id) {
            conn.presence = presence;
        }
        self.publish_presence(&s, user, local_before);
        s.status(user) != before
    }

    /// Queues one message, serialized once, to every connection of `users` except
    /// `except` (the sender's own connection, when it got a direct reply instead).
    pub fn send_to_users(&self, users: &[UserId], msg: &ServerMsg, except: Option<ParticipantId>) {
        let outlets: Vec<Outlet> = {
            let s = self.lock();
            users
                .iter()
                .filter_map(|u| s.users.get(u))
                .flatten()
                .filter(|p| Some(**p) != except)
                .filter_map(|p| s.conns.get(p))
                .filter_map(Conn::outlet)
                .cloned()
                .collect()
        };
        let link = self.link();
        if outlets.is_empty() && link.is_none() {
            return;
        }
        let bytes = encode(msg);
        for outlet in outlets {
            outlet.deliver(bytes.clone());
        }
        if let Some(link) = link {
            link.publish(&Event::Users {
                users: users.to_vec(),
                except,
                skip: Vec::new(),
                msg: bytes,
            });
        }
    }

    /// Delivers an event another node published to this node's connections of `users`
    /// (but `except` and `skip`).
    pub fn deliver_here(
        &self,
        users: &[UserId],
        except: Option<ParticipantId>,
        skip: &[ParticipantId],
        msg: Utf8Bytes,
    ) {
        let s = self.lock();
        for outlet in users
            .iter()
            .filter_map(|u| s.users.get(u))
            .flatten()
            .filter(|p| Some(**p) != except && !skip.contains(p))
            .filter_map(|p| s.conns.get(p))
            .filter_map(Conn::outlet)
        {
            outlet.deliver(msg.clone());
        }
    }

    /// Queues a different message to each user (for per-recipient views such as
    /// `room_added`).
    pub fn send_each(&self, messages: Vec<(UserId, ServerMsg)>) {
        let mut outbox = Outbox::default();
        let s = self.lock();
        for (user, msg) in messages {
            outbox.push_users(&[user], msg);
        }
        outbox.flush(&s, self.link());
    }

    /// Whether any connection of `user` is in `room`'s call.
    pub fn in_call(&self, room: RoomId, user: UserId) -> bool {
        let s = self.lock();
        s.calls.get(&room).is_some_and(|c| {
            c.participants
                .iter()
                .any(|p| s.conns.get(p).is_some_and(|c| c.info.user_id == user))
        })
    }

    /// How many are in `room`'s call (homed here or, as announced, on another node).
    pub fn call_size(&self, room: RoomId) -> usize {
        let s = self.lock();
        match s.calls.get(&room) {
            Some(call) => call.participants.len(),
            None => s.remote_calls.get(&room).map_or(0, |(_, n)| *n),
        }
    }

    /// Whether `room`'s call is homed on this node.
    pub fn has_call(&self, room: RoomId) -> bool {
        self.lock().calls.contains_key(&room)
    }

    /// Records that `user` is typing in `room` and tells `audience` (the other members
    /// who may see it), unless this repeats a `typing` sent within the client's interval.
    pub fn typing(&self, id: ParticipantId, room: RoomId, user: UserId, audience: Vec<UserId>) {
        let now = Instant::now();
        let deadline = now + Duration::from_millis(TYPING_EXPIRY_MS);
        let mut s = self.lock();
        let mut outbox = Outbox::default();
        let repeat = s.typing.get(&(room, user)).is_some_and(|t| {
            now.duration_since(t.announced) < Duration::from_millis(TYPING_INTERVAL_MS)
        });
        if repeat {
            if let Some(t) = s.typing.get_mut(&(room, user)) {
                t.deadline = deadline;
                t.conn = id;
            }
            return;
        }
        outbox.push_users(
            &audience,
            ServerMsg::Typing {
                room_id: room,
                user_id: user,
                expires_in_ms: TYPING_EXPIRY_MS,
            },
        );
        s.typing.insert(
            (room, user),
            TypingState {
                deadline,
                announced: now,
                conn: id,
                audience,
            },
        );
        outbox.flush(&s, self.link());
    }

    /// `user` sent a message in `room` (or left it): they are no longer typing there.
    pub fn stop_typing(&self, room: RoomId, user: UserId) {
        let mut s = self.lock();
        let mut outbox = Outbox::default();
        stop_typing_locked(&mut s, (room, user), &mut outbox);
        outbox.flush(&s, self.link());
    }

    /// Ends what has run out: typing older than its expiry, rings nobody answered.
    /// Called about once a second.
    pub fn expire(&self, now: Instant) {
        let mut s = self.lock();
        let mut outbox = Outbox::default();
        let stale: Vec<(RoomId, UserId)> = s
            .typing
            .iter()
            .filter(|(_, t)| t.deadline <= now)
            .map(|(k, _)| *k)
            .collect();
        for key in stale {
            stop_typing_locked(&mut s, key, &mut outbox);
        }
        let rung_out: Vec<RoomId> = s
            .rings
            .iter()
            .filter(|(_, r)| r.deadline <= now)
            .map(|(k, _)| *k)
            .collect();
        for room in rung_out {
            end_ring_locked(&mut s, room, RingEnd::Missed, &mut outbox, &self.missed);
        }
        outbox.flush(&s, self.link());
    }

    /// The callee refuses a ringing call. Returns false if nothing rang for `user` there;
    /// with `--redis-url` a ring this node does not hold is looked for on the others
    /// (true: asked).
    pub fn decline_call(&self, room: RoomId, user: UserId) -> bool {
        if self.decline_call_here(room, user) {
            return true;
        }
        match self.link() {
            Some(link) => {
                link.publish(&Event::Decline { room, user });
                true
            }
            None => false,
        }
    }

    /// As [`Hub::decline_call`], for a ring held by this node.
    pub fn decline_call_here(&self, room: RoomId, user: UserId) -> bool {
        let mut s = self.lock();
        if s.rings.get(&room).is_none_or(|r| r.callee != user) {
            return false;
        }
        let mut outbox = Outbox::default();
        end_ring_locked(&mut s, room, RingEnd::Declined, &mut outbox, &self.missed);
        outbox.flush(&s, self.link());
        true
    }

    /// Puts a connection in a room's call (leaving any other call first). The joiner is
    /// sent `call_joined` with everyone already there; they are sent `participant_joined`.
    /// The room's members hear `call_started`; a join that starts a direct call rings the
    /// other member, and the callee joining answers the ring.
    pub fn join_call(
        &self,
        id: ParticipantId,
        room: RoomId,
        max: usize,
        context: CallContext,
        request_id: Option<u64>,
    ) -> Result<(), CallFull> {
        let mut s = self.lock();
        let mut outbox = Outbox::default();
        let result = self.join_locked(&mut s, id, room, max, context, request_id, &mut outbox);
        outbox.flush(&s, self.link());
        result
    }

    /// A connection of another node joins a call homed here, as a guest. A refused join
    /// answers the guest with an error.
    #[allow(clippy::too_many_arguments)]
    pub fn join_guest(
        &self,
        node: &str,
        session: SessionId,
        info: Participant,
        room: RoomId,
        max: usize,
        context: CallContext,
        request_id: Option<u64>,
    ) {
        let mut s = self.lock();
        let id = info.participant_id;
        let node: Arc<str> = Arc::from(node);
        let route = Route::Remote {
            node: node.clone(),
            id,
        };
        let already_in = s.conns.get(&id).is_some_and(|c| c.call == Some(room));
        if !already_in {
            // A guest is in one call at a time: a join to another replaces the old one.
            let mut outbox = Outbox::default();
            leave_call_locked(&mut s, id, &mut outbox, &self.missed);
            outbox.flush(&s, self.link());
            s.conns.insert(
                id,
                Conn {
                    session,
                    route: route.clone(),
                    call: None,
                    home: None,
                    info,
                    presence: OwnPresence::Online,
                },
            );
        }
        let mut outbox = Outbox::default();
        let joined = self.join_locked(&mut s, id, room, max, context, request_id, &mut outbox);
        if joined.is_err() {
            if !already_in {
                s.conns.remove(&id);
            }
            outbox.push(
                vec![route],
                ServerMsg::Error {
                    error: shared::ErrorDetail {
                        code: shared::ErrorCode::RoomFull,
                        message: "the call is full".into(),
                        fields: None,
                    },
                    in_reply_to: Some("join_call".into()),
                    request_id,
                    client_id: None,
                },
            );
        }
        outbox.flush(&s, self.link());
    }

    #[allow(clippy::too_many_arguments)]
    fn join_locked(
        &self,
        s: &mut HubState,
        id: ParticipantId,
        room: RoomId,
        max: usize,
        context: CallContext,
        request_id: Option<u64>,
        outbox: &mut Outbox,
    ) -> Result<(), CallFull> {
        let already_in = s.conns.get(&id).is_some_and(|c| c.call == Some(room));
        if !already_in {
            // A client that reconnected (same session, new connection) replaces its old
            // connection in the call: that one may be dead without the server knowing yet,
            // and the others would see a ghost participant until its idle timeout.
            let session = s.conns.get(&id).map(|c| c.session);
            let stale: Vec<ParticipantId> = s
                .calls
                .get(&room)
                .into_iter()
                .flat_map(|c| c.participants.iter())
                .copied()
                .filter(|p| *p != id && s.conns.get(p).map(|c| c.session) == session)
                .collect();
            for old in stale {
                let route = s.conns.get(&old).map(|c| c.route.clone());
                leave_call_locked(s, old, outbox, &self.missed);
                match route {
                    Some(Route::Local(outlet)) => outlet.kick.kick(close::REPLACED),
                    Some(Route::Remote { node, id }) => outbox.nodes.push((
                        node,
                        Event::KickParticipant {
                            participant: id,
                            code: close::REPLACED,
                        },
                    )),
                    None => {}
                }
            }
            // Full is checked first so that a refused join keeps the caller's current call.
            if s.calls.get(&room).map_or(0, |c| c.participants.len()) >= max {
                return Err(CallFull);
            }
            leave_call_locked(s, id, outbox, &self.missed);
        }
        let others = others_in_call(s, room, id);
        let Some(conn) = s.conns.get_mut(&id) else {
            return Ok(());
        };
        if !already_in {
            // A new call starts unmuted, and with the camera off when joined as an audio
            // call; the client sends media_state when it differs.
            conn.info.audio_muted = false;
            conn.info.video_muted = !context.video;
        }
        conn.call = Some(room);
        let own = conn.route.clone();
        let info = conn.info.clone();
        let user = info.user_id;
        let participant_count = others.len() + 1;
        if let Route::Remote { node, id } = &own {
            // The guest's node learns first, so the relays its client sends once told
            // it joined find it in the call.
            outbox.nodes.push((
                node.clone(),
                Event::Entered {
                    participant: *id,
                    room,
                },
            ));
        }
        if !already_in {
            let starts = !s.calls.contains_key(&room);
            let call = s.calls.entry(room).or_default();
            call.participants.push(id);
            outbox.peers.push(room);
            if starts {
                call.members = context.members;
            }
            let msg = ServerMsg::ParticipantJoined {
                room_id: room,
                participant: info,
                participant_count,
            };
            outbox.push(others.iter().map(|(o, _)| o.clone()).collect(), msg);
            announce_call_size(s, room, outbox);
            if s.rings.get(&room).is_some_and(|r| r.callee == user) {
                end_ring_locked(s, room, RingEnd::Answered, outbox, &self.missed);
            } else if let (true, Some(callee)) = (starts, context.ring) {
                s.rings.insert(
                    room,
                    Ring {
                        caller: user,
                        callee,
                        video: context.video,
                        deadline: Instant::now() + self.ring_timeout,
                    },
                );
                outbox.push_users(
                    &[callee],
                    ServerMsg::CallRinging {
                        room_id: room,
                        from: user,
                        video: context.video,
                    },
                );
            }
        }
        let participants = others.into_iter().map(|(_, p)| p).collect();
        outbox.push(
            vec![own],
            ServerMsg::CallJoined {
                room_id: room,
                participants,
                participant_count,
                request_id,
            },
        );
        Ok(())
    }

    /// Takes a connection out of `room`'s call. Returns false if it was not in it.
    pub fn leave_call(&self, id: ParticipantId, room: RoomId) -> bool {
        let mut s = self.lock();
        if s.conns.get(&id).and_then(|c| c.call) != Some(room) {
            return false;
        }
        let mut outbox = Outbox::default();
        leave_call_locked(&mut s, id, &mut outbox, &self.missed);
        outbox.flush(&s, self.link());
        true
    }

    /// Takes a connection out of whatever call it is in but `room`'s (before it joins
    /// `room`'s elsewhere).
    pub fn leave_other_call(&self, id: ParticipantId, room: RoomId) {
        let mut s = self.lock();
        if s.conns.get(&id).is_some_and(|c| c.call == Some(room)) {
            return;
        }
        let mut outbox = Outbox::default();
        leave_call_locked(&mut s, id, &mut outbox, &self.missed);
        outbox.flush(&s, self.link());
    }

    /// A guest left a call homed here (or its connection closed).
    pub fn leave_guest(&self, id: ParticipantId, room: RoomId) {
        let mut s = self.lock();
        let guest = s
            .conns
            .get(&id)
            .is_some_and(|c| c.outlet().is_none() && c.call == Some(room));
        if guest {
            let mut outbox = Outbox::default();
            leave_call_locked(&mut s, id, &mut outbox, &self.missed);
            outbox.flush(&s, self.link());
        }
    }

    /// Forwards a message to one participant, only if sender and addressee are both in
    /// `room`'s call. From a connection in a call homed on another node, the message goes
    /// there (or straight to the addressee when it is a connection of this node in the
    /// same call), and the home checks it.
    pub fn relay(
        &self,
        from: ParticipantId,
        room: RoomId,
        to: ParticipantId,
        msg: &ServerMsg,
    ) -> Result<(), RelayError> {
        let route = {
            let s = self.lock();
            let Some(sender) = s.conns.get(&from).filter(|c| c.call == Some(room)) else {
                return Err(RelayError::NotInCall);
            };
            match (s.conns.get(&to), &sender.home) {
                (Some(target), _) if to != from && target.call == Some(room) => {
                    target.route.clone()
                }
                (_, Some(home)) if to != from => {
                    // One hop: to the addressee's node as the home last listed it; to
                    // the home for anyone else, which answers the sender.
                    let node = s
                        .peers
                        .get(&room)
                        .and_then(|p| p.get(&to))
                        .filter(|n| ***n != *self.node)
                        .unwrap_or(home)
                        .clone();
                    drop(s);
                    if let Some(link) = self.link() {
                        link.send_to(
                            &node,
                            &Event::Relay {
                                room,
                                from,
                                to,
                                msg: encode(msg),
                            },
                        );
                    }
                    metrics::counter!("confab_relays_total").increment(1);
                    return Ok(());
                }
                _ => return Err(RelayError::UnknownParticipant),
            }
        };
        deliver_all(&[route], &encode(msg), self.link());
        metrics::counter!("confab_relays_total").increment(1);
        Ok(())
    }

    /// A relay a guest's node forwarded: at the call's home, delivered if both are in
    /// `room`'s call, else the sender is told; on another node (sent straight to the
    /// addressee's), delivered if that connection is still in the call.
    pub fn relay_guest(
        &self,
        from: ParticipantId,
        room: RoomId,
        to: ParticipantId,
        msg: Utf8Bytes,
    ) {
        let routes = {
            let s = self.lock();
            if !s.calls.contains_key(&room) {
                // The sender's node checked it against the home's list; one that just
                // left is not told (it hears of the leave itself).
                if let Some(outlet) = s
                    .conns
                    .get(&to)
                    .filter(|c| c.call == Some(room) && c.home.is_some())
                    .and_then(Conn::outlet)
                {
                    outlet.deliver(msg);
                }
                return;
            }
            let Some(sender) = s.conns.get(&from).filter(|c| c.call == Some(room)) else {
                return;
            };
            match s.conns.get(&to) {
                Some(target) if to != from && target.call == Some(room) => Ok(target.route.clone()),
                _ => Err(sender.route.clone()),
            }
        };
        match routes {
            Ok(route) => deliver_all(&[route], &msg, self.link()),
            Err(sender) => {
                let error = ServerMsg::Error {
                    error: shared::ErrorDetail {
                        code: shared::ErrorCode::UnknownParticipant,
                        message: "that participant is not in your call".into(),
                        fields: None,
                    },
                    in_reply_to: None,
                    request_id: None,
                    client_id: None,
                };
                deliver_all(&[sender], &encode(&error), self.link());
            }
        }
    }

    /// Records and announces a participant's mute / camera state (at the call's home).
    pub fn media_state(
        &self,
        id: ParticipantId,
        room: RoomId,
        audio_muted: bool,
        video_muted: bool,
    ) -> Result<(), RelayError> {
        let mut outbox = Outbox::default();
        {
            let mut s = self.lock();
            match s.conns.get_mut(&id) {
                Some(conn) if conn.call == Some(room) => {
                    conn.info.audio_muted = audio_muted;
                    conn.info.video_muted = video_muted;
                    if let Some(home) = conn.home.clone() {
                        drop(s);
                        if let Some(link) = self.link() {
                            link.send_to(
                                &home,
                                &Event::Media {
                                    room,
                                    participant: id,
                                    audio_muted,
                                    video_muted,
                                },
                            );
                        }
                        return Ok(());
                    }
                }
                _ => return Err(RelayError::NotInCall),
            }
            let others = others_in_call(&s, room, id)
                .into_iter()
                .map(|(o, _)| o)
                .collect();
            outbox.push(
                others,
                ServerMsg::MediaState {
                    room_id: room,
                    participant_id: id,
                    audio_muted,
                    video_muted,
                },
            );
            outbox.flush(&s, self.link());
        }
        Ok(())
    }

    /// Closes every connection authenticated through `session`.
    pub fn kick_session(&self, session: SessionId, code: u16) {
        if let Some(link) = self.link() {
            link.publish(&Event::KickSession { session, code });
        }
        self.kick_session_here(session, code);
    }

    /// Closes this node's connections authenticated through `session`.
    pub fn kick_session_here(&self, session: SessionId, code: u16) {
        let s = self.lock();
        for conn in s.conns.values().filter(|c| c.session == session) {
            if let Some(outlet) = conn.outlet() {
                outlet.kick.kick(code);
            }
        }
    }

    /// Closes every connection of `user`.
    pub fn kick_user(&self, user: UserId, code: u16) {
        if let Some(link) = self.link() {
            link.publish(&Event::KickUser { user, code });
        }
        self.kick_user_here(user, code);
    }

    /// Closes this node's connections of `user`.
    pub fn kick_user_here(&self, user: UserId, code: u16) {
        let s = self.lock();
        for id in s.users.get(&user).into_iter().flatten() {
            if let Some(outlet) = s.conns.get(id).and_then(Conn::outlet) {
                outlet.kick.kick(code);
            }
        }
    }

    /// Closes this node's connection `id` (a call's home replaced it).
    pub fn kick_here(&self, id: ParticipantId, code: u16) {
        if let Some(outlet) = self.lock().conns.get(&id).and_then(Conn::outlet) {
            outlet.kick.kick(code);
        }
    }

    /// Takes a user who left a room out of its call, on every device (on whichever node
    /// the call is homed).
    pub fn remove_user_from_call(&self, room: RoomId, user: UserId) {
        if let Some(link) = self.link()
            && !self.has_call(room)
        {
            link.publish(&Event::RemoveFromCall { room, user });
        }
        self.remove_user_from_call_here(room, user);
    }

    /// As [`Hub::remove_user_from_call`], for a call homed here.
    pub fn remove_user_from_call_here(&self, room: RoomId, user: UserId) {
        let mut outbox = Outbox::default();
        {
            let mut s = self.lock();
            // Nor do they hear of the call any more (`call_started` / `call_ended`).
            if let Some(call) = s.calls.get_mut(&room) {
                call.members.retain(|u| *u != user);
            }
            let ids: Vec<ParticipantId> = s
                .calls
                .get(&room)
                .into_iter()
                .flat_map(|c| c.participants.iter())
                .copied()
                .filter(|p| s.conns.get(p).is_some_and(|c| c.info.user_id == user))
                .collect();
            for id in ids {
                leave_call_locked(&mut s, id, &mut outbox, &self.missed);
            }
            outbox.flush(&s, self.link());
        }
    }

    /// Ends a call (its room was deleted): everyone in it gets `call_left`.
    pub fn end_call(&self, room: RoomId) {
        if let Some(link) = self.link()
            && !self.has_call(room)
        {
            link.publish(&Event::EndCall { room });
        }
        self.end_call_here(room);
    }

    /// As [`Hub::end_call`], for a call homed here.
    pub fn end_call_here(&self, room: RoomId) {
        let mut outbox = Outbox::default();
        {
            let mut s = self.lock();
            s.rings.remove(&room);
            let Some(call) = s.calls.remove(&room) else {
                return;
            };
            outbox.push_users(&call.members, ServerMsg::CallEnded { room_id: room });
            outbox.sizes.push((room, 0));
            for id in call.participants {
                let Some(conn) = s.conns.get_mut(&id) else {
                    continue;
                };
                conn.call = None;
                let route = conn.route.clone();
                if let Route::Remote { node, id } = &route {
                    outbox.nodes.push((
                        node.clone(),
                        Event::Left {
                            participant: *id,
                            room,
                        },
                    ));
                    s.conns.remove(id);
                }
                outbox.push(vec![route], ServerMsg::CallLeft { room_id: room });
            }
            outbox.flush(&s, self.link());
        }
    }
}

/// A node's side of calls homed on other nodes (see `crate::cluster`).
impl Hub {
    /// Delivers what a call's home sent to these connections of this node.
    pub fn deliver_to(&self, to: &[ParticipantId], msg: Utf8Bytes) {
        let s = self.lock();
        for outlet in to
            .iter()
            .filter_map(|p| s.conns.get(p))
            .filter_map(Conn::outlet)
        {
            outlet.deliver(msg.clone());
        }
    }

    /// `home` took this node's connection `id` into `room`'s call. Returns false when the
    /// connection is gone or has moved on, so the home lets it go again.
    pub fn entered(&self, id: ParticipantId, room: RoomId, home: &str) -> bool {
        let mut s = self.lock();
        match s.conns.get_mut(&id) {
            Some(conn)
                if conn.outlet().is_some()
                    && (conn.call.is_none()
                        || (conn.call == Some(room) && conn.home.as_deref() == Some(home))) =>
            {
                conn.call = Some(room);
                conn.home = Some(Arc::from(home));
                true
            }
            _ => false,
        }
    }

    /// `home` took this node's connection `id` out of `room`'s call.
    pub fn left(&self, id: ParticipantId, room: RoomId, home: &str) {
        let mut s = self.lock();
        if let Some(conn) = s.conns.get_mut(&id)
            && conn.call == Some(room)
            && conn.home.as_deref() == Some(home)
        {
            conn.call = None;
            conn.home = None;
            s.prune_peers(room);
        }
    }

    /// `home` listed who is in `room`'s call and on which node; kept while this node's
    /// connections are in it there.
    pub fn set_peers(&self, room: RoomId, home: &str, peers: Vec<(ParticipantId, String)>) {
        let mut s = self.lock();
        let ours = s
            .conns
            .values()
            .any(|c| c.call == Some(room) && c.home.as_deref() == Some(home));
        if !ours {
            return;
        }
        let mut nodes: Vec<Arc<str>> = Vec::new();
        let map = peers
            .into_iter()
            .map(|(id, node)| {
                let node = match nodes.iter().find(|n| ***n == *node) {
                    Some(n) => n.clone(),
                    None => {
                        let n: Arc<str> = Arc::from(node);
                        nodes.push(n.clone());
                        n
                    }
                };
                (id, node)
            })
            .collect();
        s.peers.insert(room, map);
    }

    /// A node is gone (its liveness expired): its guests leave the calls homed here, and
    /// this node's connections in calls homed there are out of them (`call_left`); the
    /// next join makes a new home.
    pub fn node_gone(&self, node: &str) {
        let mut s = self.lock();
        let mut outbox = Outbox::default();
        let guests: Vec<ParticipantId> = s
            .conns
            .iter()
            .filter(|(_, c)| matches!(&c.route, Route::Remote { node: n, .. } if &**n == node))
            .map(|(id, _)| *id)
            .collect();
        for id in guests {
            leave_call_locked(&mut s, id, &mut outbox, &self.missed);
            s.conns.remove(&id);
        }
        s.remote_calls.retain(|_, (home, _)| home != node);
        let mut gone_calls = Vec::new();
        for conn in s.conns.values_mut() {
            if conn.home.as_deref() == Some(node) {
                conn.home = None;
                if let (Some(room), Some(outlet)) = (conn.call.take(), conn.outlet()) {
                    gone_calls.push(room);
                    outbox.push(
                        vec![Route::Local(outlet.clone())],
                        ServerMsg::CallLeft { room_id: room },
                    );
                }
            }
        }
        for room in gone_calls {
            s.prune_peers(room);
        }
        outbox.flush(&s, self.link());
    }

    /// What a call's home needs of this node's connection `id` to take it in as a guest.
    pub fn card(&self, id: ParticipantId) -> Option<(SessionId, Participant)> {
        let s = self.lock();
        s.conns.get(&id).map(|c| (c.session, c.info.clone()))
    }

    /// The calls homed here (rewritten to Redis after it was away).
    pub fn home_calls(&self) -> Vec<RoomId> {
        self.lock().calls.keys().copied().collect()
    }

    /// The call in `room` homed on `node` now has `count` participants.
    pub fn set_remote_call_size(&self, node: &str, room: RoomId, count: usize) {
        let mut s = self.lock();
        if count == 0 {
            s.remote_calls.remove(&room);
        } else {
            s.remote_calls.insert(room, (node.to_owned(), count));
        }
    }
}

/// The other nodes' presence, as this node mirrors it (see `crate::cluster`).
impl Hub {
    /// This node's users and their presence here (for the node's entry in Redis).
    pub fn local_presence(&self) -> Vec<(UserId, PresenceStatus)> {
        let s = self.lock();
        s.users
            .keys()
            .map(|u| (*u, s.local_status(*u)))
            .filter(|(_, p)| *p != PresenceStatus::Offline)
            .collect()
    }

    /// Hands the publisher a snapshot of this node's presence under the lock, so that
    /// no change made since is left out of it or overwritten by it.
    pub fn resync(&self) {
        if let Some(link) = self.link() {
            let s = self.lock();
            let snapshot = s
                .users
                .keys()
                .map(|u| (*u, s.local_status(*u)))
                .filter(|(_, p)| *p != PresenceStatus::Offline)
                .collect();
            link.resync(snapshot, s.calls.keys().copied().collect());
        }
    }

    /// Another node's user changed presence there. Returns whether it changed overall.
    pub fn set_remote(&self, node: &str, user: UserId, status: PresenceStatus) -> bool {
        let mut s = self.lock();
        let before = s.status(user);
        let users = s.remote.entry(node.to_owned()).or_default();
        if status == PresenceStatus::Offline {
            users.remove(&user);
        } else {
            users.insert(user, status);
        }
        s.status(user) != before
    }

    /// Replaces another node's presence (`None`: the node is gone). Returns the users
    /// whose presence changed overall.
    pub fn replace_remote(
        &self,
        node: &str,
        users: Option<HashMap<UserId, PresenceStatus>>,
    ) -> Vec<UserId> {
        let mut s = self.lock();
        let old = s.remote.get(node).cloned().unwrap_or_default();
        let touched: Vec<UserId> = old
            .keys()
            .chain(users.iter().flat_map(|u| u.keys()))
            .copied()
            .collect();
        let before: Vec<PresenceStatus> = touched.iter().map(|u| s.status(*u)).collect();
        match users {
            Some(users) => {
                s.remote.insert(node.to_owned(), users);
            }
            None => {
                s.remote.remove(node);
            }
        }
        let mut changed: Vec<UserId> = touched
            .iter()
            .zip(before)
            .filter(|(u, b)| s.status(**u) != *b)
            .map(|(u, _)| *u)
            .collect();
        changed.sort_unstable_by_key(|u| u.to_string());
        changed.dedup();
        changed
    }

    /// The other nodes this node mirrors.
    pub fn remote_nodes(&self) -> Vec<String> {
        self.lock().remote.keys().cloned().collect()
    }
}

fn others_in_call(s: &HubState, room: RoomId, except: ParticipantId) -> Vec<(Route, Participant)> {
    s.calls
        .get(&room)
        .into_iter()
        .flat_map(|c| c.participants.iter())
        .filter(|p| **p != except)
        .filter_map(|p| s.conns.get(p))
        .map(|c| (c.route.clone(), c.info.clone()))
        .collect()
}

/// Tells the room's members, those not in the call (on any node), how many are in it now.
fn announce_call_size(s: &HubState, room: RoomId, outbox: &mut Outbox) {
    let Some(call) = s.calls.get(&room) else {
        return;
    };
    outbox.push_users_but(
        &call.members,
        call.participants.clone(),
        ServerMsg::CallStarted {
            room_id: room,
            participant_count: call.participants.len(),
        },
    );
    outbox.sizes.push((room, call.participants.len()));
}

/// Takes `id` out of its call, queuing `participant_left` for the others and `call_left`
/// for itself; the last one out ends the call (and a ring its caller gave up on).
fn leave_call_locked(
    s: &mut HubState,
    id: ParticipantId,
    outbox: &mut Outbox,
    missed: &mpsc::UnboundedSender<MissedCall>,
) {
    let Some(conn) = s.conns.get_mut(&id) else {
        return;
    };
    let Some(room) = conn.call.take() else { return };
    if let Some(home) = conn.home.take() {
        // The call lives on another node: it tells the others, and this connection.
        outbox.nodes.push((
            home,
            Event::Leave {
                room,
                participant: id,
            },
        ));
        s.prune_peers(room);
        return;
    }
    let user_id = conn.info.user_id;
    let own = conn.route.clone();
    if let Route::Remote { node, .. } = &own {
        outbox.nodes.push((
            node.clone(),
            Event::Left {
                participant: id,
                room,
            },
        ));
        s.conns.remove(&id);
    }
    let remaining = match s.calls.get_mut(&room) {
        Some(call) => {
            call.participants.retain(|p| *p != id);
            call.participants.clone()
        }
        None => Vec::new(),
    };
    outbox.peers.push(room);
    let routes = remaining
        .iter()
        .filter_map(|p| s.conns.get(p))
        .map(|c| c.route.clone())
        .collect();
    outbox.push(
        routes,
        ServerMsg::ParticipantLeft {
            room_id: room,
            participant_id: id,
            user_id,
            participant_count: remaining.len(),
        },
    );
    outbox.push(vec![own], ServerMsg::CallLeft { room_id: room });
    let caller_gave_up = s.rings.get(&room).is_some_and(|r| {
        r.caller == user_id
            && !remaining
                .iter()
                .any(|p| s.conns.get(p).is_some_and(|c| c.info.user_id == user_id))
    });
    if caller_gave_up {
        end_ring_locked(s, room, RingEnd::Cancelled, outbox, missed);
    }
    if remaining.is_empty() {
        if let Some(call) = s.calls.remove(&room) {
            outbox.push_users(&call.members, ServerMsg::CallEnded { room_id: room });
            outbox.sizes.push((room, 0));
        }
    } else {
        announce_call_size(s, room, outbox);
    }
}

/// Stops a ring: the callee's devices stop ringing; a decline tells the caller; a ring
/// nobody answered (or the caller hung up on) is a missed call for both.
fn end_ring_locked(
    s: &mut HubState,
    room: RoomId,
    reason: RingEnd,
    outbox: &mut Outbox,
    missed: &mpsc::UnboundedSender<MissedCall>,
) {
    let Some(ring) = s.rings.remove(&room) else {
        return;
    };
    outbox.push_users(
        &[ring.callee],
        ServerMsg::CallRingStopped {
            room_id: room,
            reason,
        },
    );
    match reason {
        RingEnd::Answered => {}
        RingEnd::Declined => outbox.push_users(
            &[ring.caller],
            ServerMsg::CallDeclined {
                room_id: room,
                by: ring.callee,
            },
        ),
        RingEnd::Missed | RingEnd::Cancelled => {
            outbox.push_users(
                &[ring.caller, ring.callee],
                ServerMsg::CallMissed { room_id: room },
            );
            // The receiver lives as long as the server; if it is gone, so is the server.
            let _ = missed.send(MissedCall {
                room,
                caller: ring.caller,
                callee: ring.callee,
                video: ring.video,
            });
        }
    }
}

fn stop_typing_locked(s: &mut HubState, key: (RoomId, UserId), outbox: &mut Outbox) {
    let Some(t) = s.typing.remove(&key) else {
        return;
    };
    outbox.push_users(
        &t.audience,
        ServerMsg::Typing {
            room_id: key.0,
            user_id: key.1,
            expires_in_ms: 0,
        },
    );
}
