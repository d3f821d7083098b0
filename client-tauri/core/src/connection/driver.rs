//! The connection's driver task: reads the WebSocket's events in order, feeds the model,
//! hands call signaling to the calls that borrow the socket, and runs the catch-up (a
//! resync after every `welcome`, `/changes` paging for a gap that does not fill).
//!
//! REST calls for catch-up run inline: while one runs, events wait in the signaling
//! client's queue and are applied after it by the rev rule, so nothing is applied out of
//! order and nothing twice.

use super::{ConnectionConfig, ConnectionEvent, Shared, lock};
use crate::outbox::RetryPolicy;
use crate::signaling::{SignalingEvent, SignalingEvents};
use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use reqwest::StatusCode;
use shared::RoomId;
use shared::communities::{ChannelSummary, CommunitySummary};
use shared::signal::{ClientMsg, ServerMsg};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::model::{Change, Ringing};

/// How long delivery receipts are gathered before they go out (one per room).
const DELIVERED_BATCH: Duration = Duration::from_millis(300);

/// What the public API asks of the driver.
pub(super) enum Command {
    /// A call borrows the socket: forward call signaling to it.
    AttachCall(mpsc::UnboundedSender<SignalingEvent>),
    /// The model asks for a fresh room list.
    Refresh,
}

pub(super) struct Driver {
    shared: Arc<Shared>,
    gap_grace: Duration,
    changes_page: Option<u32>,
    send_delivered: bool,
    resync_policy: RetryPolicy,
    resync_backoff: ExponentialBackoff,
    /// When to try a failed resync again (only while connected).
    resync_at: Option<Instant>,
    deliver_at: Option<Instant>,
    calls: Vec<mpsc::UnboundedSender<SignalingEvent>>,
    /// The `Connected` of the current connection, for calls that attach later.
    connected: Option<SignalingEvent>,
}

fn backoff(policy: &RetryPolicy) -> ExponentialBackoff {
    ExponentialBuilder::default()
        .with_min_delay(policy.min_delay)
        .with_max_delay(policy.max_delay.max(policy.min_delay))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
}

/// Call signaling: what a borrowed call needs to see.
fn for_calls(msg: &ServerMsg) -> bool {
    match msg {
        ServerMsg::CallJoined { .. }
        | ServerMsg::CallLeft { .. }
        | ServerMsg::ParticipantJoined { .. }
        | ServerMsg::ParticipantLeft { .. }
        | ServerMsg::Offer { .. }
        | ServerMsg::Answer { .. }
        | ServerMsg::IceCandidate { .. }
        | ServerMsg::MediaState { .. } => true,
        ServerMsg::Error {
            in_reply_to: Some(kind),
            ..
        } => matches!(
            kind.as_str(),
            "join_call" | "leave_call" | "offer" | "answer" | "ice_candidate" | "media_state"
        ),
        _ => false,
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

impl Driver {
    pub(super) fn new(shared: Arc<Shared>, config: &ConnectionConfig) -> Self {
        Self {
            shared,
            gap_grace: config.gap_grace,
            changes_page: config.changes_page,
            send_delivered: config.send_delivered,
            resync_policy: config.resync_retry,
            resync_backoff: backoff(&config.resync_retry),
            resync_at: None,
            deliver_at: None,
            calls: Vec::new(),
            connected: None,
        }
    }

    pub(super) async fn run(
        mut self,
        mut signaling: SignalingEvents,
        mut commands: mpsc::UnboundedReceiver<Command>,
        cancel: CancellationToken,
    ) {
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                event = signaling.recv() => match event {
                    Some(event) => self.on_signaling(event).await,
                    // The signaling client stopped for good; REST still works, but
                    // nothing will arrive any more.
                    None => {
                        cancel.cancelled().await;
                        break;
                    }
                },
                Some(command) = commands.recv() => match command {
                    Command::AttachCall(tx) => {
                        if let Some(connected) = &self.connected
                            && tx.send(connected.clone()).is_err()
                        {
                            continue;
                        }
                        self.calls.push(tx);
                    }
                    Command::Refresh => self.shared.update(|m, _| m.mark_stale()),
                },
                () = sleep_until_opt(deadline) => self.on_timer().await,
            }
            if self.shared.update(|m, _| m.take_stale()) && self.connected.is_some() {
                self.resync().await;
            }
            if self.send_delivered
                && self.deliver_at.is_none()
                && self.shared.read(|m| m.has_delivered_due())
            {
                self.deliver_at = Some(Instant::now() + DELIVERED_BATCH);
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let (gap, typing) = self.shared.read(|m| {
            (
                m.next_gap_deadline(self.gap_grace),
                m.next_typing_deadline(),
            )
        });
        let resync = self.resync_at.filter(|_| self.connected.is_some());
        [gap, typing, resync, self.deliver_at]
            .into_iter()
            .flatten()
            .min()
    }

    async fn on_timer(&mut self) {
        let now = Instant::now();
        self.shared.update(|m, out| m.expire_typing(now, out));
        let gaps = self.shared.read(|m| m.gaps(now, self.gap_grace));
        for room in gaps {
            if !self.catch_up(room).await {
                self.schedule_resync();
            }
        }
        if self.resync_at.is_some_and(|t| t <= now) && self.connected.is_some() {
            self.resync().await;
        }
        if self.deliver_at.is_some_and(|t| t <= now) {
            self.deliver_at = None;
            let due = self.shared.update(|m, _| m.take_delivered());
            for (room_id, seq) in due {
                // Best effort: a lost receipt only delays the sender's tick.
                let _ = self
                    .shared
                    .sender
                    .send(ClientMsg::Delivered { room_id, seq });
            }
        }
    }

    fn forward(&mut self, event: &SignalingEvent) {
        self.calls.retain(|tx| tx.send(event.clone()).is_ok());
    }

    async fn on_signaling(&mut self, event: SignalingEvent) {
        match &event {
            SignalingEvent::Connected { .. } => {
                self.forward(&event);
                self.connected = Some(event);
                self.shared.connected.store(true, Ordering::Release);
                self.shared.emit(ConnectionEvent::Connected);
                self.shared.wake_outbox.notify_one();
                self.resync().await;
            }
            SignalingEvent::Disconnected {
                code,
                reason,
                terminal,
            } => {
                self.forward(&event);
                self.connected = None;
                self.shared.connected.store(false, Ordering::Release);
                // Sends waiting for an ack go over REST now (same key).
                lock(&self.shared.acks).clear();
                let event = ConnectionEvent::Disconnected {
                    code: *code,
                    reason: reason.clone(),
                    terminal: *terminal,
                };
                self.shared.update(|m, out| {
                    m.disconnected(out);
                    out.push(event);
                });
            }
            SignalingEvent::Reconnecting { attempt, delay, .. } => {
                self.forward(&event);
                self.shared.emit(ConnectionEvent::Reconnecting {
                    attempt: *attempt,
                    delay: *delay,
                });
            }
            SignalingEvent::Message(msg) => {
                if for_calls(msg) {
                    self.forward(&event);
                }
                if let SignalingEvent::Message(msg) = event {
                    self.on_server_msg(*msg).await;
                }
            }
        }
    }

    fn live(&self, room: RoomId, change: Change) {
        let now = Instant::now();
        self.shared
            .update(|m, out| m.apply_live(room, change, now, out));
    }

    async fn on_server_msg(&mut self, msg: ServerMsg) {
        let now = Instant::now();
        match msg {
            ServerMsg::MessageCreated { message }
            | ServerMsg::MessageUpdated { message }
            | ServerMsg::MessageDeleted { message } => {
                self.live(message.room_id, Change::Message(message));
            }
            ServerMsg::MessageAck {
                client_id, message, ..
            } => {
                self.live(message.room_id, Change::Message(message.clone()));
                if let Some(ack) = lock(&self.shared.acks).remove(&client_id) {
                    let _ = ack.send(Ok(message));
                }
            }
            ServerMsg::Error {
                client_id: Some(client_id),
                error,
                ..
            } => {
                if let Some(ack) = lock(&self.shared.acks).remove(&client_id) {
                    let _ = ack.send(Err(error));
                }
            }
            ServerMsg::Error {
                error, in_reply_to, ..
            } => {
                tracing::debug!(code = ?error.code, message = %error.message, ?in_reply_to, "the server refused a message");
            }
            ServerMsg::ReactionChanged {
                room_id,
                message_id,
                rev,
                reactions,
            } => self.live(
                room_id,
                Change::Reaction {
                    message_id,
                    rev,
                    reactions,
                },
            ),
            ServerMsg::Typing {
                room_id,
                user_id,
                expires_in_ms,
            } => self
                .shared
                .update(|m, out| m.typing_event(room_id, user_id, expires_in_ms, now, out)),
            ServerMsg::Read {
                room_id,
                user_id,
                seq,
            } => self
                .shared
                .update(|m, out| m.read(room_id, user_id, seq, out)),
            ServerMsg::Delivered {
                room_id,
                user_id,
                seq,
            } => self
                .shared
                .update(|m, out| m.delivered(room_id, user_id, seq, out)),
            ServerMsg::RoomAdded { room } => {
                let id = room.room.id;
                if self.shared.update(|m, out| m.upsert_summary(room, out)) {
                    self.catch_up(id).await;
                }
            }
            ServerMsg::RoomUpdated { room } => {
                self.shared.update(|m, out| m.room_updated(room, out))
            }
            ServerMsg::RoomRemoved { room_id } => {
                self.shared.update(|m, out| m.remove_room(room_id, out));
            }
            ServerMsg::RoomSettings { room_id, muted } => {
                self.shared
                    .update(|m, out| m.room_settings(room_id, muted, out));
            }
            ServerMsg::ContactRequest { request } => {
                self.shared.update(|m, out| m.add_request(request, out));
            }
            ServerMsg::ContactRequestRemoved { request_id } => {
                self.shared
                    .update(|m, out| m.remove_request(request_id, out));
            }
            ServerMsg::ContactAdded { contact } => {
                self.shared.update(|m, out| m.add_contact(contact, out));
            }
            ServerMsg::ContactRemoved { user_id } => {
                self.shared.update(|m, out| m.remove_contact(user_id, out));
            }
            ServerMsg::Presence { user_id, status } => {
                self.shared
                    .update(|m, out| m.set_presence(user_id, status, out));
            }
            ServerMsg::PresenceSnapshot { online } => {
                self.shared
                    .update(|m, out| m.presence_snapshot(online, out));
            }
            ServerMsg::CallRinging {
                room_id,
                from,
                video,
            } => self.shared.update(|m, out| {
                m.ringing_started(
                    Ringing {
                        room_id,
                        from,
                        video,
                    },
                    out,
                );
            }),
            ServerMsg::CallRingStopped { room_id, reason } => {
                self.shared
                    .update(|m, out| m.ringing_stopped(room_id, reason, out));
            }
            ServerMsg::CallDeclined { room_id, by } => {
                self.shared
                    .emit(ConnectionEvent::CallDeclined { room_id, by });
            }
            ServerMsg::CallMissed { room_id } => self.shared.update(|m, out| {
                out.push(ConnectionEvent::CallMissed { room_id });
                m.ringing_stopped(room_id, shared::signal::RingEnd::Missed, out);
            }),
            ServerMsg::CallStarted {
                room_id,
                participant_count,
            } => self.shared.update(|m, out| {
                m.call_participants(room_id, participant_count, out);
                out.push(ConnectionEvent::CallStarted {
                    room_id,
                    participant_count,
                });
            }),
            ServerMsg::CallEnded { room_id } => self.shared.update(|m, out| {
                m.call_participants(room_id, 0, out);
                out.push(ConnectionEvent::CallEnded { room_id });
            }),
            ServerMsg::CommunityAdded {
                community,
                channels,
            } => {
                let behind = self
                    .shared
                    .update(|m, out| m.upsert_community(community, channels, out));
                for room in behind {
                    self.catch_up(room).await;
                }
            }
            ServerMsg::CommunityUpdated { community } => self
                .shared
                .update(|m, out| m.community_updated(community, out)),
            ServerMsg::CommunityRemoved {
                community_id,
                reason,
            } => self
                .shared
                .update(|m, out| m.remove_community(community_id, reason, out)),
            ServerMsg::CommunityMemberJoined {
                community_id,
                member,
                member_count,
            } => self
                .shared
                .update(|m, out| m.member_joined(community_id, member, member_count, out)),
            ServerMsg::CommunityMemberLeft {
                community_id,
                user_id,
                reason,
                member_count,
            } => self.shared.update(|m, out| {
                m.member_left(community_id, user_id, reason, member_count, out);
            }),
            ServerMsg::CommunityRoleChanged {
                community_id,
                user_id,
                role,
            } => self
                .shared
                .update(|m, out| m.role_changed(community_id, user_id, role, out)),
            ServerMsg::ChannelCreated { channel } => {
                self.shared.update(|m, out| m.channel_created(channel, out));
            }
            ServerMsg::ChannelUpdated { channel } => {
                self.shared.update(|m, out| m.channel_updated(channel, out));
            }
            ServerMsg::ChannelDeleted {
                community_id,
                channel_id,
            } => self
                .shared
                .update(|m, out| m.channel_deleted(community_id, channel_id, out)),
            ServerMsg::ChannelsReordered {
                community_id,
                channels,
            } => self
                .shared
                .update(|m, out| m.channels_reordered(community_id, channels, out)),
            _ => {}
        }
    }

    fn schedule_resync(&mut self) {
        if self.resync_at.is_none() {
            let delay = self
                .resync_backoff
                .next()
                .unwrap_or(self.resync_policy.max_delay);
            self.resync_at = Some(Instant::now() + delay);
        }
    }

    /// Brings the model to the server's state: rooms, then every room's missed changes,
    /// then contacts and requests. Retried with backoff when it fails.
    async fn resync(&mut self) {
        self.resync_at = None;
        let ok = self.try_resync().await;
        if ok {
            self.resync_backoff = backoff(&self.resync_policy);
            self.shared.synced.send_modify(|n| *n += 1);
            self.shared.emit(ConnectionEvent::Synced);
        } else {
            self.schedule_resync();
        }
    }

    async fn try_resync(&mut self) -> bool {
        let api = self.shared.api.clone();
        let rooms = match api.room_summaries().await {
            Ok(rooms) => rooms,
            Err(e) => {
                tracing::warn!(error = %e, "resync: loading the room list");
                return false;
            }
        };
        // Channels are not in the room list: they come with their communities.
        let communities = match self.communities().await {
            Ok(communities) => communities,
            Err(e) => {
                tracing::warn!(error = %e, "resync: loading communities");
                return false;
            }
        };
        let mut ids: Vec<RoomId> = rooms.iter().map(|r| r.room.id).collect();
        for (_, channels) in &communities {
            ids.extend(channels.iter().map(|c| c.channel.id));
        }
        let community_ids: Vec<shared::CommunityId> =
            communities.iter().map(|(c, _)| c.community.id).collect();
        let now = Instant::now();
        let behind: Vec<RoomId> = self.shared.update(|m, out| {
            m.retain_communities(&community_ids, out);
            m.retain_rooms(&ids, out);
            let mut behind: Vec<RoomId> = Vec::new();
            for (community, channels) in communities {
                behind.extend(m.upsert_community(community, channels, out));
            }
            behind.extend(rooms.into_iter().filter_map(|summary| {
                let id = summary.room.id;
                m.upsert_summary(summary, out).then_some(id)
            }));
            // Rooms waiting out a gap are caught up now too.
            for id in m.gaps(now, Duration::ZERO) {
                if !behind.contains(&id) {
                    behind.push(id);
                }
            }
            behind
        });
        let mut ok = true;
        for room in behind {
            ok &= self.catch_up(room).await;
        }
        match api.contacts().await {
            Ok(contacts) => self
                .shared
                .update(|m, out| m.replace_contacts(contacts, out)),
            Err(e) => {
                tracing::warn!(error = %e, "resync: loading contacts");
                ok = false;
            }
        }
        match api.contact_requests().await {
            Ok(requests) => self
                .shared
                .update(|m, out| m.replace_requests(requests, out)),
            Err(e) => {
                tracing::warn!(error = %e, "resync: loading contact requests");
                ok = false;
            }
        }
        ok
    }

    /// My communities, each with its channels.
    async fn communities(
        &self,
    ) -> Result<Vec<(CommunitySummary, Vec<ChannelSummary>)>, crate::api::ApiError> {
        let api = &self.shared.api;
        let mut all = Vec::new();
        for community in api.my_communities().await? {
            match api.channels(community.community.id).await {
                Ok(channels) => all.push((community, channels)),
                // Left (or removed) between the two calls: `community_removed` follows.
                Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => {}
                Err(e) if e.status() == Some(StatusCode::FORBIDDEN) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(all)
    }

    /// Pages `/changes` from the room's cursor until it is current. False when the
    /// server could not be asked (the gap stays and is retried).
    async fn catch_up(&mut self, room: RoomId) -> bool {
        let Some((mut since, base)) = self.shared.read(|m| m.catch_up_from(room)) else {
            return true;
        };
        loop {
            match self
                .shared
                .api
                .changes(room, since, self.changes_page)
                .await
            {
                Ok(page) => {
                    let (rev, more) = (page.rev, page.has_more);
                    self.shared.update(|m, out| {
                        m.apply_changes(
                            room,
                            page.messages,
                            page.rev,
                            page.last_read_seq,
                            base,
                            out,
                        );
                    });
                    if !more || rev <= since {
                        return true;
                    }
                    since = rev;
                }
                Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => {
                    // No longer a member; `room_removed` may still be on its way.
                    self.shared.update(|m, out| m.remove_room(room, out));
                    return true;
                }
                Err(e) => {
                    tracing::warn!(%room, error = %e, "catching up a room");
                    let now = Instant::now();
                    self.shared.update(|m, _| m.retry_gap(room, now));
                    return false;
                }
            }
        }
    }
}
