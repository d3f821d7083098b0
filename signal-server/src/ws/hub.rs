//! The hub: who is connected, who is in which call, and fan-out to their queues.
//!
//! One mutex guards all of it, never held across an `.await`. Membership events are
//! queued while it is held, so every client sees joins and leaves in one order (a
//! `call_joined` always before the `participant_joined` of a later joiner). Relayed
//! messages, the hot path, are serialized after it is released.

use crate::cluster::{Event, Link};
use axum::extract::ws::Utf8Bytes;
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

#[derive(Debug)]
struct Conn {
    session: SessionId,
    outlet: Outlet,
    call: Option<RoomId>,
    info: Participant,
    presence: OwnPresence,
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

    /// Every connection of these users.
    fn outlets_of<'a>(&'a self, users: impl IntoIterator<Item = &'a UserId>) -> Vec<Outlet> {
        users
            .into_iter()
            .filter_map(|u| self.users.get(u))
            .flatten()
            .filter_map(|p| self.conns.get(p))
            .map(|c| c.outlet.clone())
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
#[derive(Debug, Default)]
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
/// Events for users go to the other nodes too (with `--redis-url`); call events stay on
/// this node, whose hub alone knows its calls.
#[derive(Default)]
struct Outbox {
    local: Vec<(Vec<Outlet>, ServerMsg)>,
    users: Vec<(Vec<UserId>, ServerMsg)>,
}

impl Outbox {
    fn push(&mut self, to: Vec<Outlet>, msg: ServerMsg) {
        if !to.is_empty() {
            self.local.push((to, msg));
        }
    }

    /// A message for every connection of `users`, on this node and the others.
    fn push_users(&mut self, users: &[UserId], msg: ServerMsg) {
        if !users.is_empty() {
            self.users.push((users.to_vec(), msg));
        }
    }

    fn flush(self, s: &HubState, link: Option<&Link>) {
        for (outlets, msg) in self.local {
            let bytes = encode(&msg);
            for outlet in outlets {
                outlet.deliver(bytes.clone());
            }
        }
        for (users, msg) in self.users {
            let bytes = encode(&msg);
            for outlet in s.outlets_of(&users) {
                outlet.deliver(bytes.clone());
            }
            if let Some(link) = link {
                link.publish(&Event::Users {
                    users,
                    except: None,
                    msg: bytes.to_string(),
                });
            }
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

    fn lock(&self) -> MutexGuard<'_, HubState> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than refusing every later connection would, so keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Open connections and the users they belong to (for the metrics).
    pub fn counts(&self) -> (usize, usize) {
        let s = self.lock();
        (s.conns.len(), s.users.len())
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
                outlet,
                call: None,
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
                .map(|c| c.outlet.clone())
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
                msg: bytes.to_string(),
            });
        }
    }

    /// Delivers an event another node published to this node's connections of `users`.
    pub fn deliver_here(&self, users: &[UserId], except: Option<ParticipantId>, msg: Utf8Bytes) {
        let s = self.lock();
        for outlet in users
            .iter()
            .filter_map(|u| s.users.get(u))
            .flatten()
            .filter(|p| Some(**p) != except)
            .filter_map(|p| s.conns.get(p))
            .map(|c| &c.outlet)
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

    /// How many are in `room`'s call.
    pub fn call_size(&self, room: RoomId) -> usize {
        self.lock()
            .calls
            .get(&room)
            .map_or(0, |c| c.participants.len())
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

    /// The callee refuses a ringing call. Returns false if nothing rang for `user` there.
    pub fn decline_call(&self, room: RoomId, user: UserId) -> bool {
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
                leave_call_locked(&mut s, old, &mut outbox, &self.missed);
                if let Some(conn) = s.conns.get(&old) {
                    conn.outlet.kick.kick(close::REPLACED);
                }
            }
            // Full is checked first so that a refused join keeps the caller's current call.
            if s.calls.get(&room).map_or(0, |c| c.participants.len()) >= max {
                outbox.flush(&s, self.link());
                return Err(CallFull);
            }
            leave_call_locked(&mut s, id, &mut outbox, &self.missed);
        }
        let others = others_in_call(&s, room, id);
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
        let own = conn.outlet.clone();
        let info = conn.info.clone();
        let user = info.user_id;
        let participant_count = others.len() + 1;
        if !already_in {
            let starts = !s.calls.contains_key(&room);
            let call = s.calls.entry(room).or_default();
            call.participants.push(id);
            if starts {
                call.members = context.members;
            }
            let msg = ServerMsg::ParticipantJoined {
                room_id: room,
                participant: info,
                participant_count,
            };
            outbox.push(others.iter().map(|(o, _)| o.clone()).collect(), msg);
            announce_call_size(&s, room, &mut outbox);
            if s.rings.get(&room).is_some_and(|r| r.callee == user) {
                end_ring_locked(&mut s, room, RingEnd::Answered, &mut outbox, &self.missed);
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
                outbox.push(
                    s.outlets_of([&callee]),
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
        outbox.flush(&s, self.link());
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

    /// Forwards a message to one participant, only if sender and addressee are both in
    /// `room`'s call.
    pub fn relay(
        &self,
        from: ParticipantId,
        room: RoomId,
        to: ParticipantId,
        msg: &ServerMsg,
    ) -> Result<(), RelayError> {
        let outlet = {
            let s = self.lock();
            if s.conns.get(&from).and_then(|c| c.call) != Some(room) {
                return Err(RelayError::NotInCall);
            }
            match s.conns.get(&to) {
                Some(target) if to != from && target.call == Some(room) => target.outlet.clone(),
                _ => return Err(RelayError::UnknownParticipant),
            }
        };
        outlet.deliver(encode(msg));
        metrics::counter!("confab_relays_total").increment(1);
        Ok(())
    }

    /// Records and announces a participant's mute / camera state.
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
            conn.outlet.kick.kick(code);
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
            if let Some(conn) = s.conns.get(id) {
                conn.outlet.kick.kick(code);
            }
        }
    }

    /// Takes a user who left a room out of its call, on every device.
    pub fn remove_user_from_call(&self, room: RoomId, user: UserId) {
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
        let mut outbox = Outbox::default();
        {
            let mut s = self.lock();
            s.rings.remove(&room);
            let call = s.calls.remove(&room).unwrap_or_default();
            outbox.push(
                s.outlets_of(&call.members),
                ServerMsg::CallEnded { room_id: room },
            );
            for id in call.participants {
                if let Some(conn) = s.conns.get_mut(&id) {
                    conn.call = None;
                    outbox.push(
                        vec![conn.outlet.clone()],
                        ServerMsg::CallLeft { room_id: room },
                    );
                }
            }
            outbox.flush(&s, self.link());
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
            link.resync(snapshot);
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

fn others_in_call(s: &HubState, room: RoomId, except: ParticipantId) -> Vec<(Outlet, Participant)> {
    s.calls
        .get(&room)
        .into_iter()
        .flat_map(|c| c.participants.iter())
        .filter(|p| **p != except)
        .filter_map(|p| s.conns.get(p))
        .map(|c| (c.outlet.clone(), c.info.clone()))
        .collect()
}

/// Tells the room's members, those not in the call, how many are in it now.
fn announce_call_size(s: &HubState, room: RoomId, outbox: &mut Outbox) {
    let Some(call) = s.calls.get(&room) else {
        return;
    };
    let outlets = call
        .members
        .iter()
        .filter_map(|u| s.users.get(u))
        .flatten()
        .filter(|p| !call.participants.contains(p))
        .filter_map(|p| s.conns.get(p))
        .map(|c| c.outlet.clone())
        .collect();
    outbox.push(
        outlets,
        ServerMsg::CallStarted {
            room_id: room,
            participant_count: call.participants.len(),
        },
    );
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
    let user_id = conn.info.user_id;
    let own = conn.outlet.clone();
    let remaining = match s.calls.get_mut(&room) {
        Some(call) => {
            call.participants.retain(|p| *p != id);
            call.participants.clone()
        }
        None => Vec::new(),
    };
    let outlets = remaining
        .iter()
        .filter_map(|p| s.conns.get(p))
        .map(|c| c.outlet.clone())
        .collect();
    outbox.push(
        outlets,
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
            outbox.push(
                s.outlets_of(&call.members),
                ServerMsg::CallEnded { room_id: room },
            );
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
    outbox.push(
        s.outlets_of([&ring.callee]),
        ServerMsg::CallRingStopped {
            room_id: room,
            reason,
        },
    );
    match reason {
        RingEnd::Answered => {}
        RingEnd::Declined => outbox.push(
            s.outlets_of([&ring.caller]),
            ServerMsg::CallDeclined {
                room_id: room,
                by: ring.callee,
            },
        ),
        RingEnd::Missed | RingEnd::Cancelled => {
            outbox.push(
                s.outlets_of([&ring.caller, &ring.callee]),
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
