//! The connection's community calls: REST through the API client, with the answer applied
//! to the model at once (the WebSocket event that follows is applied by the same rules,
//! so nothing happens twice), and the community snapshots.

use super::{CommunityState, Connection, ConnectionError};
use crate::api::CommunityQuery;
use shared::api::{CreateInviteRequest, RoomRole};
use shared::communities::{
    BanRequest, Channel, ChannelPlace, CommunityBan, CommunityExit, CommunityInvite,
    CommunityMemberPage, CommunityPage, CommunitySummary, CreateChannelRequest,
    CreateCommunityRequest, NewCommunityInvite, UpdateChannelRequest, UpdateCommunityRequest,
};
use shared::{CommunityId, CommunityInviteId, RoomId, UserId};

impl Connection {
    // --- snapshots ----------------------------------------------------------------------

    /// My communities, oldest first (counts summed over their channels).
    pub fn communities(&self) -> Vec<CommunityState> {
        self.shared.read(super::Model::communities)
    }

    pub fn community(&self, id: CommunityId) -> Option<CommunityState> {
        self.shared.read(|m| m.community(id))
    }

    /// The community a channel room belongs to (None for other rooms).
    pub fn community_of(&self, room: RoomId) -> Option<CommunityId> {
        self.shared.read(|m| m.community_of(room))
    }

    // --- membership ---------------------------------------------------------------------

    /// Loads a community I am in with its channels into the model (after creating or
    /// joining it, before its `community_added` arrives).
    async fn load_community(
        &self,
        summary: CommunitySummary,
    ) -> Result<CommunityState, ConnectionError> {
        let id = summary.community.id;
        let channels = self.shared.api.channels(id).await?;
        self.shared
            .update(|m, out| m.upsert_community(summary, channels, out));
        self.community(id).ok_or(ConnectionError::Closed)
    }

    pub async fn create_community(
        &self,
        req: &CreateCommunityRequest,
    ) -> Result<CommunityState, ConnectionError> {
        let summary = self.shared.api.create_community(req).await?;
        self.load_community(summary).await
    }

    /// Joins a public community.
    pub async fn join_community(&self, id: CommunityId) -> Result<CommunityState, ConnectionError> {
        let summary = self.shared.api.join_community(id).await?;
        self.load_community(summary).await
    }

    /// Joins the community an invite token leads to.
    pub async fn accept_community_invite(
        &self,
        token: &str,
    ) -> Result<CommunityState, ConnectionError> {
        let summary = self.shared.api.accept_community_invite(token).await?;
        self.load_community(summary).await
    }

    pub async fn leave_community(&self, id: CommunityId) -> Result<(), ConnectionError> {
        self.shared.api.leave_community(id).await?;
        self.shared
            .update(|m, out| m.remove_community(id, CommunityExit::Left, out));
        Ok(())
    }

    /// Deletes a community (the owner).
    pub async fn delete_community(&self, id: CommunityId) -> Result<(), ConnectionError> {
        self.shared.api.delete_community(id).await?;
        self.shared
            .update(|m, out| m.remove_community(id, CommunityExit::Deleted, out));
        Ok(())
    }

    /// A page of communities by any filters (discover: [`CommunityQuery::discover`]).
    pub async fn find_communities(
        &self,
        query: &CommunityQuery,
    ) -> Result<CommunityPage, ConnectionError> {
        Ok(self.shared.api.communities(query).await?)
    }

    pub async fn update_community(
        &self,
        id: CommunityId,
        req: &UpdateCommunityRequest,
    ) -> Result<CommunitySummary, ConnectionError> {
        let summary = self.shared.api.update_community(id, req).await?;
        self.shared
            .update(|m, out| m.community_updated(summary.community.clone(), out));
        Ok(summary)
    }

    // --- members, bans, invites ---------------------------------------------------------

    pub async fn community_members(
        &self,
        id: CommunityId,
        cursor: Option<&str>,
    ) -> Result<CommunityMemberPage, ConnectionError> {
        let page = self
            .shared
            .api
            .community_members(id, Some(shared::communities::COMMUNITY_PAGE_MAX), cursor)
            .await?;
        let users: Vec<_> = page.members.iter().map(|m| m.user.clone()).collect();
        self.shared.update(|m, _| m.learn_users(&users));
        Ok(page)
    }

    pub async fn set_community_role(
        &self,
        id: CommunityId,
        user: UserId,
        role: RoomRole,
    ) -> Result<(), ConnectionError> {
        self.shared.api.set_community_role(id, user, role).await?;
        Ok(())
    }

    pub async fn kick_community_member(
        &self,
        id: CommunityId,
        user: UserId,
    ) -> Result<(), ConnectionError> {
        Ok(self.shared.api.kick_community_member(id, user).await?)
    }

    pub async fn community_bans(
        &self,
        id: CommunityId,
    ) -> Result<Vec<CommunityBan>, ConnectionError> {
        Ok(self.shared.api.community_bans(id).await?)
    }

    pub async fn ban_from_community(
        &self,
        id: CommunityId,
        user: UserId,
        reason: Option<String>,
    ) -> Result<CommunityBan, ConnectionError> {
        let req = BanRequest {
            user_id: user,
            reason: reason.filter(|r| !r.trim().is_empty()),
        };
        Ok(self.shared.api.ban_from_community(id, &req).await?)
    }

    pub async fn unban_from_community(
        &self,
        id: CommunityId,
        user: UserId,
    ) -> Result<(), ConnectionError> {
        Ok(self.shared.api.unban_from_community(id, user).await?)
    }

    pub async fn create_community_invite(
        &self,
        id: CommunityId,
        req: &CreateInviteRequest,
    ) -> Result<NewCommunityInvite, ConnectionError> {
        Ok(self.shared.api.create_community_invite(id, req).await?)
    }

    pub async fn community_invites(
        &self,
        id: CommunityId,
    ) -> Result<Vec<CommunityInvite>, ConnectionError> {
        Ok(self.shared.api.community_invites(id).await?)
    }

    pub async fn revoke_community_invite(
        &self,
        id: CommunityId,
        invite: CommunityInviteId,
    ) -> Result<(), ConnectionError> {
        Ok(self.shared.api.revoke_community_invite(id, invite).await?)
    }

    // --- channels -----------------------------------------------------------------------

    pub async fn create_channel(
        &self,
        id: CommunityId,
        req: &CreateChannelRequest,
    ) -> Result<Channel, ConnectionError> {
        let channel = self.shared.api.create_channel(id, req).await?;
        self.shared
            .update(|m, out| m.channel_created(channel.clone(), out));
        Ok(channel)
    }

    pub async fn update_channel(
        &self,
        id: CommunityId,
        channel: RoomId,
        req: &UpdateChannelRequest,
    ) -> Result<Channel, ConnectionError> {
        let channel = self.shared.api.update_channel(id, channel, req).await?;
        self.shared
            .update(|m, out| m.channel_updated(channel.clone(), out));
        Ok(channel)
    }

    pub async fn delete_channel(
        &self,
        id: CommunityId,
        channel: RoomId,
    ) -> Result<(), ConnectionError> {
        self.shared.api.delete_channel(id, channel).await?;
        self.shared
            .update(|m, out| m.channel_deleted(id, channel, out));
        Ok(())
    }

    pub async fn reorder_channels(
        &self,
        id: CommunityId,
        order: Vec<ChannelPlace>,
    ) -> Result<Vec<Channel>, ConnectionError> {
        let channels = self.shared.api.reorder_channels(id, order).await?;
        self.shared
            .update(|m, out| m.channels_reordered(id, channels.clone(), out));
        Ok(channels)
    }
}
