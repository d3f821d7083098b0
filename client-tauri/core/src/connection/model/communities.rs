//! Communities in the model. A community's channels are rooms of kind `channel`, kept in
//! the model's room map like any room (so their timelines, unread counts, read markers,
//! catch-up by rev and calls are the room ones); the community itself keeps its summary
//! (with my role) and the channel list in order. Its unread and mention counts are the
//! sums over its channel rooms, counted when asked, so they never drift from them.

use super::{Model, RoomState};
use crate::connection::ConnectionEvent;
use shared::api::{RoomKind, RoomRole, RoomSummary};
use shared::communities::{
    Channel, ChannelSummary, Community, CommunityExit, CommunityMember, CommunitySummary,
};
use shared::{CommunityId, RoomId, UserId};

/// A community of mine: its summary (counts summed over its channels) and its channels
/// in their order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommunityState {
    pub summary: CommunitySummary,
    pub channels: Vec<Channel>,
}

/// A channel's room summary, from what the community API says of it. `last_message` is
/// filled by the model as messages arrive (the channel list carries no preview).
fn channel_room(channel: &Channel, community: &CommunitySummary) -> shared::api::Room {
    shared::api::Room {
        id: channel.id,
        kind: RoomKind::Channel,
        title: channel.name.clone(),
        owner_id: community.community.owner_id,
        max_participants: channel.max_participants,
        member_count: community.community.member_count,
        created_at: channel.created_at,
    }
}

fn my_role(community: &CommunitySummary) -> RoomRole {
    community.my_role.unwrap_or(RoomRole::Member)
}

impl Model {
    // --- reading ------------------------------------------------------------------------

    /// My communities, oldest first, with their counts summed over their channels.
    pub fn communities(&self) -> Vec<CommunityState> {
        let mut all: Vec<CommunityState> = self
            .communities
            .keys()
            .filter_map(|id| self.community(*id))
            .collect();
        all.sort_by(|a, b| {
            (a.summary.community.created_at, a.summary.community.id)
                .cmp(&(b.summary.community.created_at, b.summary.community.id))
        });
        all
    }

    /// One community of mine.
    pub fn community(&self, id: CommunityId) -> Option<CommunityState> {
        let state = self.communities.get(&id)?;
        let mut state = state.clone();
        let (mut unread, mut mentions) = (0u32, 0u32);
        for channel in &state.channels {
            if let Some(room) = self.rooms.get(&channel.id) {
                unread = unread.saturating_add(room.summary.unread_count);
                mentions = mentions.saturating_add(room.summary.mention_count);
            }
        }
        state.summary.unread_count = unread;
        state.summary.mention_count = mentions;
        Some(state)
    }

    /// The community a channel room belongs to.
    pub fn community_of(&self, room: RoomId) -> Option<CommunityId> {
        self.communities
            .iter()
            .find(|(_, c)| c.channels.iter().any(|ch| ch.id == room))
            .map(|(id, _)| *id)
    }

    fn changed(&self, id: CommunityId, out: &mut Vec<ConnectionEvent>) {
        if let Some(state) = self.community(id) {
            out.push(ConnectionEvent::CommunityChanged(state));
        }
    }

    // --- changes ------------------------------------------------------------------------

    /// A community with its channels (`community_added`, the list at a resync, or a REST
    /// answer): stored, its channels upserted as rooms, channels it no longer has dropped.
    /// Returns the channel rooms the server has changes in that the model has not
    /// applied (page `/changes` for them).
    pub fn upsert_community(
        &mut self,
        summary: CommunitySummary,
        channels: Vec<ChannelSummary>,
        out: &mut Vec<ConnectionEvent>,
    ) -> Vec<RoomId> {
        let id = summary.community.id;
        let keep: Vec<RoomId> = channels.iter().map(|c| c.channel.id).collect();
        if let Some(old) = self.communities.get(&id) {
            let gone: Vec<RoomId> = old
                .channels
                .iter()
                .map(|c| c.id)
                .filter(|c| !keep.contains(c))
                .collect();
            for room in gone {
                self.remove_room(room, out);
            }
        }
        let mut behind = Vec::new();
        for c in &channels {
            let last_message = self
                .rooms
                .get(&c.channel.id)
                .and_then(|r| r.summary.last_message.clone());
            let room = RoomSummary {
                room: channel_room(&c.channel, &summary),
                other_user: None,
                other_presence: None,
                my_role: my_role(&summary),
                last_message,
                unread_count: c.unread_count,
                mention_count: c.mention_count,
                last_read_seq: c.last_read_seq,
                last_seq: c.last_seq,
                rev: c.rev,
                muted: c.muted,
                call_participants: c.call_participants,
            };
            if self.upsert_summary(room, out) {
                behind.push(c.channel.id);
            }
        }
        let mut ordered: Vec<Channel> = channels.into_iter().map(|c| c.channel).collect();
        ordered.sort_by_key(|c| c.position);
        self.communities.insert(
            id,
            CommunityState {
                summary,
                channels: ordered,
            },
        );
        self.changed(id, out);
        behind
    }

    /// Drops the communities not in `keep` (after a fresh list), with their channels.
    pub fn retain_communities(&mut self, keep: &[CommunityId], out: &mut Vec<ConnectionEvent>) {
        let gone: Vec<CommunityId> = self
            .communities
            .keys()
            .filter(|id| !keep.contains(id))
            .copied()
            .collect();
        for id in gone {
            self.remove_community(id, CommunityExit::Left, out);
        }
    }

    /// Every channel room of every community, for the room list's `retain`.
    pub fn channel_rooms(&self) -> Vec<RoomId> {
        self.communities
            .values()
            .flat_map(|c| c.channels.iter().map(|ch| ch.id))
            .collect()
    }

    /// `community_updated`: name, description, icon, visibility or owner.
    pub fn community_updated(&mut self, community: Community, out: &mut Vec<ConnectionEvent>) {
        let id = community.id;
        let Some(state) = self.communities.get_mut(&id) else {
            self.stale = true;
            return;
        };
        state.summary.community = community;
        let summary = state.summary.clone();
        let channels = state.channels.clone();
        for channel in &channels {
            self.refresh_channel_room(channel, &summary, out);
        }
        self.changed(id, out);
    }

    /// `community_removed`, or my own `community_member_left`: the community and its
    /// channel rooms are gone.
    pub fn remove_community(
        &mut self,
        id: CommunityId,
        reason: CommunityExit,
        out: &mut Vec<ConnectionEvent>,
    ) {
        if let Some(state) = self.communities.remove(&id) {
            for channel in state.channels {
                self.remove_room(channel.id, out);
            }
            out.push(ConnectionEvent::CommunityRemoved {
                community_id: id,
                reason,
            });
        }
    }

    /// `community_member_joined`.
    pub fn member_joined(
        &mut self,
        id: CommunityId,
        member: CommunityMember,
        member_count: u32,
        out: &mut Vec<ConnectionEvent>,
    ) {
        self.users.insert(member.user.id, member.user.clone());
        self.presence.insert(member.user.id, member.presence);
        self.set_member_count(id, member_count, out);
        out.push(ConnectionEvent::CommunityMemberJoined {
            community_id: id,
            member,
        });
    }

    /// `community_member_left`; when it is me, the community goes.
    pub fn member_left(
        &mut self,
        id: CommunityId,
        user: UserId,
        reason: CommunityExit,
        member_count: u32,
        out: &mut Vec<ConnectionEvent>,
    ) {
        if user == self.me {
            self.remove_community(id, reason, out);
            return;
        }
        self.set_member_count(id, member_count, out);
        out.push(ConnectionEvent::CommunityMemberLeft {
            community_id: id,
            user_id: user,
            reason,
        });
    }

    fn set_member_count(&mut self, id: CommunityId, count: u32, out: &mut Vec<ConnectionEvent>) {
        let Some(state) = self.communities.get_mut(&id) else {
            return;
        };
        state.summary.community.member_count = count;
        let summary = state.summary.clone();
        let channels = state.channels.clone();
        for channel in &channels {
            self.refresh_channel_room(channel, &summary, out);
        }
        self.changed(id, out);
    }

    /// `community_role_changed`: mine changes what I may do in every channel.
    pub fn role_changed(
        &mut self,
        id: CommunityId,
        user: UserId,
        role: RoomRole,
        out: &mut Vec<ConnectionEvent>,
    ) {
        if user == self.me
            && let Some(state) = self.communities.get_mut(&id)
        {
            state.summary.my_role = Some(role);
            let summary = state.summary.clone();
            let channels = state.channels.clone();
            for channel in &channels {
                self.refresh_channel_room(channel, &summary, out);
            }
            self.changed(id, out);
        }
        out.push(ConnectionEvent::CommunityRoleChanged {
            community_id: id,
            user_id: user,
            role,
        });
    }

    /// `channel_created`: an empty channel I am a member of.
    pub fn channel_created(&mut self, channel: Channel, out: &mut Vec<ConnectionEvent>) {
        let id = channel.community_id;
        let Some(state) = self.communities.get_mut(&id) else {
            self.stale = true;
            return;
        };
        if state.channels.iter().any(|c| c.id == channel.id) {
            return;
        }
        state.channels.push(channel.clone());
        state.channels.sort_by_key(|c| c.position);
        let summary = state.summary.clone();
        if let std::collections::hash_map::Entry::Vacant(slot) = self.rooms.entry(channel.id) {
            let room = RoomSummary {
                room: channel_room(&channel, &summary),
                other_user: None,
                other_presence: None,
                my_role: my_role(&summary),
                last_message: None,
                unread_count: 0,
                mention_count: 0,
                last_read_seq: 0,
                last_seq: 0,
                rev: 0,
                muted: false,
                call_participants: 0,
            };
            let state = slot.insert(RoomState::new(room));
            out.push(ConnectionEvent::RoomAdded(state.summary.clone()));
        }
        self.changed(id, out);
    }

    /// `channel_updated`: name, topic, category, announcement flag or call capacity.
    pub fn channel_updated(&mut self, channel: Channel, out: &mut Vec<ConnectionEvent>) {
        let id = channel.community_id;
        let Some(state) = self.communities.get_mut(&id) else {
            self.stale = true;
            return;
        };
        match state.channels.iter_mut().find(|c| c.id == channel.id) {
            Some(c) => *c = channel.clone(),
            None => state.channels.push(channel.clone()),
        }
        state.channels.sort_by_key(|c| c.position);
        let summary = state.summary.clone();
        self.refresh_channel_room(&channel, &summary, out);
        self.changed(id, out);
    }

    /// `channel_deleted`.
    pub fn channel_deleted(
        &mut self,
        id: CommunityId,
        channel: RoomId,
        out: &mut Vec<ConnectionEvent>,
    ) {
        if let Some(state) = self.communities.get_mut(&id) {
            state.channels.retain(|c| c.id != channel);
        }
        self.remove_room(channel, out);
        self.changed(id, out);
    }

    /// `channels_reordered`: all of them in their new order.
    pub fn channels_reordered(
        &mut self,
        id: CommunityId,
        channels: Vec<Channel>,
        out: &mut Vec<ConnectionEvent>,
    ) {
        let Some(state) = self.communities.get_mut(&id) else {
            self.stale = true;
            return;
        };
        let mut ordered = channels;
        ordered.sort_by_key(|c| c.position);
        state.channels = ordered;
        self.changed(id, out);
    }

    /// Brings a channel's room in line with its channel and community.
    fn refresh_channel_room(
        &mut self,
        channel: &Channel,
        community: &CommunitySummary,
        out: &mut Vec<ConnectionEvent>,
    ) {
        if let Some(room) = self.rooms.get_mut(&channel.id) {
            let next = channel_room(channel, community);
            let role = my_role(community);
            if room.summary.room != next || room.summary.my_role != role {
                room.summary.room = next;
                room.summary.my_role = role;
                out.push(ConnectionEvent::RoomUpdated(room.summary.clone()));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use shared::api::{Me, Message, PublicUser};
    use shared::communities::CommunityVisibility;
    use shared::{MessageId, UserId};
    use std::time::Instant;
    use time::OffsetDateTime;

    use super::super::Change;

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

    fn community(owner: UserId, role: RoomRole) -> CommunitySummary {
        CommunitySummary {
            community: Community {
                id: CommunityId::new(),
                name: "Rustaceans".into(),
                description: String::new(),
                icon_url: None,
                visibility: CommunityVisibility::Public,
                owner_id: owner,
                member_count: 3,
                created_at: OffsetDateTime::UNIX_EPOCH,
            },
            my_role: Some(role),
            unread_count: 0,
            mention_count: 0,
        }
    }

    fn channel(community: CommunityId, name: &str, position: u32) -> Channel {
        Channel {
            id: RoomId::new(),
            community_id: community,
            name: name.into(),
            topic: None,
            category: None,
            position,
            announcement: false,
            max_participants: 8,
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn summary(channel: &Channel, unread: u32, rev: u64) -> ChannelSummary {
        ChannelSummary {
            channel: channel.clone(),
            unread_count: unread,
            mention_count: 0,
            last_read_seq: 0,
            last_seq: u64::from(unread),
            rev,
            muted: false,
            call_participants: 0,
        }
    }

    /// Through JSON, as the server sends it (fields added later take their defaults).
    fn message(room: RoomId, author: UserId, seq: u64, rev: u64) -> Message {
        serde_json::from_value(serde_json::json!({
            "id": MessageId::new(), "room_id": room, "seq": seq, "rev": rev,
            "kind": "text", "author": author, "body": format!("message {seq}"),
            "reply_to": null, "reactions": [], "mentions": [],
            "created_at": "2026-01-01T00:00:00Z", "edited_at": null, "deleted": false,
        }))
        .unwrap()
    }

    #[test]
    fn channels_are_rooms_and_the_community_sums_their_unread_counts() {
        let me = me();
        let mut model = Model::new(&me);
        let owner = UserId::new();
        let c = community(owner, RoomRole::Member);
        let id = c.community.id;
        let general = channel(id, "general", 0);
        let random = channel(id, "random", 1);
        let mut out = Vec::new();
        let behind = model.upsert_community(
            c,
            vec![summary(&random, 0, 0), summary(&general, 2, 2)],
            &mut out,
        );
        assert!(behind.is_empty(), "new rooms start at the server's rev");
        let state = model.community(id).unwrap();
        assert_eq!(
            state
                .channels
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["general", "random"],
            "channels come in position order"
        );
        assert_eq!(state.summary.unread_count, 2);
        let room = model.room(random.id).unwrap();
        assert_eq!(room.summary.room.kind, RoomKind::Channel);
        assert_eq!(model.community_of(random.id), Some(id));

        // A message in #random from someone else counts there and in the community.
        model.users.insert(
            owner,
            PublicUser {
                id: owner,
                username: "ana".into(),
                display_name: None,
                status_text: None,
                avatar_url: None,
            },
        );
        let live = model.apply_live(
            random.id,
            Change::Message(message(random.id, owner, 1, 1)),
            Instant::now(),
            &mut out,
        );
        assert_eq!(live, super::super::Live::Applied);
        assert_eq!(model.community(id).unwrap().summary.unread_count, 3);
    }

    #[test]
    fn deleted_channels_kicks_and_resyncs_take_the_rooms_away() {
        let me = me();
        let mut model = Model::new(&me);
        let c = community(UserId::new(), RoomRole::Admin);
        let id = c.community.id;
        let general = channel(id, "general", 0);
        let mut out = Vec::new();
        model.upsert_community(c.clone(), vec![summary(&general, 0, 0)], &mut out);

        let news = channel(id, "news", 1);
        model.channel_created(news.clone(), &mut out);
        assert!(model.room(news.id).is_some());
        model.channel_deleted(id, news.id, &mut out);
        assert!(model.room(news.id).is_none());
        assert!(out.contains(&ConnectionEvent::RoomRemoved(news.id)));

        // A resync that no longer lists a channel drops its room.
        let other = channel(id, "other", 1);
        model.upsert_community(c, vec![summary(&other, 0, 0)], &mut out);
        assert!(model.room(general.id).is_none());
        assert!(model.room(other.id).is_some());

        // Someone else leaving only changes the count; me being kicked removes it all.
        model.member_left(id, UserId::new(), CommunityExit::Left, 2, &mut out);
        assert_eq!(
            model.community(id).unwrap().summary.community.member_count,
            2
        );
        assert_eq!(model.room(other.id).unwrap().summary.room.member_count, 2);
        out.clear();
        model.member_left(id, me.id, CommunityExit::Kicked, 1, &mut out);
        assert!(model.community(id).is_none());
        assert!(model.room(other.id).is_none());
        assert!(out.contains(&ConnectionEvent::CommunityRemoved {
            community_id: id,
            reason: CommunityExit::Kicked
        }));
    }

    #[test]
    fn my_new_role_reaches_every_channel_room() {
        let me = me();
        let mut model = Model::new(&me);
        let c = community(UserId::new(), RoomRole::Member);
        let id = c.community.id;
        let general = channel(id, "general", 0);
        let mut out = Vec::new();
        model.upsert_community(c, vec![summary(&general, 0, 0)], &mut out);
        model.role_changed(id, me.id, RoomRole::Admin, &mut out);
        assert_eq!(
            model.room(general.id).unwrap().summary.my_role,
            RoomRole::Admin
        );
        assert_eq!(
            model.community(id).unwrap().summary.my_role,
            Some(RoomRole::Admin)
        );
    }
}
