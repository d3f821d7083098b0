//! The hub: who is connected, who is in which call, and fan-out to their queues.
//!
//! One mutex guards all of it, never held across an `.await`. Membership events are
//! queued while it is held, so every client sees joins and leaves in one order (a
//! `call_joined` always before the `participant_joined` of a later joiner). Relayed
//! messages, the hot path, are serialized after it is released.

use axum::extract::ws::Utf8Bytes;
use shared::signal::{Participant, ServerMsg, close};
use shared::{ParticipantId, RoomId, SessionId, UserId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
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
}

#[derive(Debug, Default)]
struct HubState {
    conns: HashMap<ParticipantId, Conn>,
    users: HashMap<UserId, Vec<ParticipantId>>,
    calls: HashMap<RoomId, Vec<ParticipantId>>,
}

/// Membership events gathered under the lock, each serialized once and queued to all its
/// recipients before the lock is released.
#[derive(Default)]
struct Outbox(Vec<(Vec<Outlet>, ServerMsg)>);

impl Outbox {
    fn push(&mut self, to: Vec<Outlet>, msg: ServerMsg) {
        if !to.is_empty() {
            self.0.push((to, msg));
        }
    }

    fn flush(self) {
        for (outlets, msg) in self.0 {
            let bytes = encode(&msg);
            for outlet in outlets {
                outlet.deliver(bytes.clone());
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
#[derive(Debug, Default)]
pub struct Hub {
    state: Mutex<HubState>,
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, HubState> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than refusing every later connection would, so keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
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
        s.conns.insert(
            id,
            Conn {
                session,
                outlet,
                call: None,
                info,
            },
        );
        let conns = s.users.entry(user).or_default();
        conns.push(id);
        conns.len() == 1
    }

    /// Removes a connection, taking it out of its call. Returns true if it was the user's
    /// last (they just went offline).
    pub fn unregister(&self, id: ParticipantId) -> bool {
        let mut s = self.lock();
        let mut outbox = Outbox::default();
        leave_call_locked(&mut s, id, &mut outbox);
        outbox.flush();
        let Some(conn) = s.conns.remove(&id) else {
            return false;
        };
        let user = conn.info.user_id;
        let now_empty = s.users.get_mut(&user).is_some_and(|list| {
            list.retain(|p| *p != id);
            list.is_empty()
        });
        if now_empty {
            s.users.remove(&user);
        }
        now_empty
    }

    /// Records the session of a connection's new access token (after `reauth`).
    pub fn set_session(&self, id: ParticipantId, session: SessionId) {
        if let Some(conn) = self.lock().conns.get_mut(&id) {
            conn.session = session;
        }
    }

    /// Which of `users` have at least one connection.
    pub fn online(&self, users: &[UserId]) -> Vec<UserId> {
        let s = self.lock();
        users
            .iter()
            .copied()
            .filter(|u| s.users.contains_key(u))
            .collect()
    }

    /// Tells every connection of `to` whether `user` is online, as the hub sees it now.
    /// Deciding and queuing under one lock means that when a user drops and reconnects
    /// quickly, the last presence message anyone gets is the true one.
    pub fn announce_presence(&self, user: UserId, to: &[UserId]) {
        let s = self.lock();
        let online = s.users.contains_key(&user);
        let outlets: Vec<Outlet> = to
            .iter()
            .filter_map(|u| s.users.get(u))
            .flatten()
            .filter_map(|p| s.conns.get(p))
            .map(|c| c.outlet.clone())
            .collect();
        let mut outbox = Outbox::default();
        outbox.push(
            outlets,
            ServerMsg::Presence {
                user_id: user,
                online,
            },
        );
        outbox.flush();
    }

    /// Puts a connection in a room's call (leaving any other call first). The joiner is
    /// sent `call_joined` with everyone already there; they are sent `participant_joined`.
    pub fn join_call(&self, id: ParticipantId, room: RoomId, max: usize) -> Result<(), CallFull> {
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
                .flatten()
                .copied()
                .filter(|p| *p != id && s.conns.get(p).map(|c| c.session) == session)
                .collect();
            for old in stale {
                leave_call_locked(&mut s, old, &mut outbox);
                if let Some(conn) = s.conns.get(&old) {
                    conn.outlet.kick.kick(close::REPLACED);
                }
            }
            // Full is checked first so that a refused join keeps the caller's current call.
            if s.calls.get(&room).map_or(0, Vec::len) >= max {
                outbox.flush();
                return Err(CallFull);
            }
            leave_call_locked(&mut s, id, &mut outbox);
        }
        let others = others_in_call(&s, room, id);
        let Some(conn) = s.conns.get_mut(&id) else {
            return Ok(());
        };
        if !already_in {
            // A new call starts unmuted; the client sends media_state if it is not.
            conn.info.audio_muted = false;
            conn.info.video_muted = false;
        }
        conn.call = Some(room);
        let own = conn.outlet.clone();
        let info = conn.info.clone();
        let participant_count = others.len() + 1;
        if !already_in {
            s.calls.entry(room).or_default().push(id);
            let msg = ServerMsg::ParticipantJoined {
                room_id: room,
                participant: info,
                participant_count,
            };
            outbox.push(others.iter().map(|(o, _)| o.clone()).collect(), msg);
        }
        let participants = others.into_iter().map(|(_, p)| p).collect();
        outbox.push(
            vec![own],
            ServerMsg::CallJoined {
                room_id: room,
                participants,
                participant_count,
            },
        );
        outbox.flush();
        Ok(())
    }

    /// Takes a connection out of `room`'s call. Returns false if it was not in it.
    pub fn leave_call(&self, id: ParticipantId, room: RoomId) -> bool {
        let mut s = self.lock();
        if s.conns.get(&id).and_then(|c| c.call) != Some(room) {
            return false;
        }
        let mut outbox = Outbox::default();
        leave_call_locked(&mut s, id, &mut outbox);
        outbox.flush();
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
            outbox.flush();
        }
        Ok(())
    }

    /// Closes every connection authenticated through `session`.
    pub fn kick_session(&self, session: SessionId, code: u16) {
        let s = self.lock();
        for conn in s.conns.values().filter(|c| c.session == session) {
            conn.outlet.kick.kick(code);
        }
    }

    /// Closes every connection of `user`.
    pub fn kick_user(&self, user: UserId, code: u16) {
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
            let ids: Vec<ParticipantId> = s
                .calls
                .get(&room)
                .into_iter()
                .flatten()
                .copied()
                .filter(|p| s.conns.get(p).is_some_and(|c| c.info.user_id == user))
                .collect();
            for id in ids {
                leave_call_locked(&mut s, id, &mut outbox);
            }
            outbox.flush();
        }
    }

    /// Ends a call (its room was deleted): everyone in it gets `call_left`.
    pub fn end_call(&self, room: RoomId) {
        let mut outbox = Outbox::default();
        {
            let mut s = self.lock();
            for id in s.calls.remove(&room).unwrap_or_default() {
                if let Some(conn) = s.conns.get_mut(&id) {
                    conn.call = None;
                    outbox.push(
                        vec![conn.outlet.clone()],
                        ServerMsg::CallLeft { room_id: room },
                    );
                }
            }
            outbox.flush();
        }
    }
}

fn others_in_call(s: &HubState, room: RoomId, except: ParticipantId) -> Vec<(Outlet, Participant)> {
    s.calls
        .get(&room)
        .into_iter()
        .flatten()
        .filter(|p| **p != except)
        .filter_map(|p| s.conns.get(p))
        .map(|c| (c.outlet.clone(), c.info.clone()))
        .collect()
}

/// Takes `id` out of its call, queuing `participant_left` for the others and `call_left`
/// for itself.
fn leave_call_locked(s: &mut HubState, id: ParticipantId, outbox: &mut Outbox) {
    let Some(conn) = s.conns.get_mut(&id) else {
        return;
    };
    let Some(room) = conn.call.take() else { return };
    let user_id = conn.info.user_id;
    let own = conn.outlet.clone();
    let remaining = match s.calls.get_mut(&room) {
        Some(list) => {
            list.retain(|p| *p != id);
            list.clone()
        }
        None => Vec::new(),
    };
    if remaining.is_empty() {
        s.calls.remove(&room);
    }
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
}
