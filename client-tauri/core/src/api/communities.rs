//! `/api/communities/*`: communities, their members, roles, bans, invite links and
//! channels. A channel is a room: its timeline, read marker and call are the room calls.

use super::{ApiClient, ApiError, NO_BODY, json};
use reqwest::Method;
use shared::api::{CreateInviteRequest, RoomRole};
use shared::communities::{
    BanRequest, Channel, ChannelPlace, ChannelSummary, CommunityBan, CommunityInvite,
    CommunityMember, CommunityMemberPage, CommunityPage, CommunitySummary, CommunityVisibility,
    CreateChannelRequest, CreateCommunityRequest, NewCommunityInvite, ReorderChannelsRequest,
    UpdateChannelRequest, UpdateCommunityMemberRequest, UpdateCommunityRequest,
};
use shared::{CommunityId, CommunityInviteId, RoomId, UserId};

/// The filters of `GET /api/communities` (absent ones are not sent).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommunityQuery {
    /// Communities of this user; with neither `member` nor `visibility`, mine.
    pub member: Option<UserId>,
    pub id: Option<CommunityId>,
    /// Text in the name or description.
    pub q: Option<String>,
    /// `Public` without `member`: every public community (discover).
    pub visibility: Option<CommunityVisibility>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl CommunityQuery {
    /// Discover: public communities, optionally matching `q`.
    pub fn discover(q: Option<String>) -> Self {
        Self {
            visibility: Some(CommunityVisibility::Public),
            q,
            ..Self::default()
        }
    }

    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(m) = self.member {
            out.push(("member", m.to_string()));
        }
        if let Some(id) = self.id {
            out.push(("id", id.to_string()));
        }
        if let Some(q) = self.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            out.push(("q", q.to_owned()));
        }
        if let Some(v) = self.visibility {
            out.push(("visibility", v.as_str().to_owned()));
        }
        if let Some(l) = self.limit {
            out.push(("limit", l.to_string()));
        }
        if let Some(c) = self.cursor.as_deref().filter(|c| !c.is_empty()) {
            out.push(("cursor", c.to_owned()));
        }
        out
    }
}

impl ApiClient {
    /// Creates a community owned by me, with one channel (`general`).
    pub async fn create_community(
        &self,
        req: &CreateCommunityRequest,
    ) -> Result<CommunitySummary, ApiError> {
        self.authed_json(Method::POST, &["api", "communities"], Some(req))
            .await
    }

    /// One page of communities by the query's filters.
    pub async fn communities(&self, query: &CommunityQuery) -> Result<CommunityPage, ApiError> {
        let resp = self
            .authed_with(
                Method::GET,
                &["api", "communities"],
                &query.pairs(),
                None,
                NO_BODY,
            )
            .await?;
        json(resp).await
    }

    /// Every community I am a member of (all pages).
    pub async fn my_communities(&self) -> Result<Vec<CommunitySummary>, ApiError> {
        let mut query = CommunityQuery {
            limit: Some(shared::communities::COMMUNITY_PAGE_MAX),
            ..CommunityQuery::default()
        };
        let mut all = Vec::new();
        loop {
            let page = self.communities(&query).await?;
            all.extend(page.communities);
            match page.next_cursor {
                Some(c) if query.cursor.as_deref() != Some(c.as_str()) => query.cursor = Some(c),
                _ => return Ok(all),
            }
        }
    }

    pub async fn community(&self, id: CommunityId) -> Result<CommunitySummary, ApiError> {
        let id = id.to_string();
        self.authed_json(Method::GET, &["api", "communities", &id], NO_BODY)
            .await
    }

    /// Changes name, description (admins) or visibility (the owner).
    pub async fn update_community(
        &self,
        id: CommunityId,
        req: &UpdateCommunityRequest,
    ) -> Result<CommunitySummary, ApiError> {
        let id = id.to_string();
        self.authed_json(Method::PATCH, &["api", "communities", &id], Some(req))
            .await
    }

    /// Deletes a community with its channels (the owner).
    pub async fn delete_community(&self, id: CommunityId) -> Result<(), ApiError> {
        let id = id.to_string();
        self.authed_empty(Method::DELETE, &["api", "communities", &id], NO_BODY)
            .await
    }

    /// Joins a public community (succeeds for a member too).
    pub async fn join_community(&self, id: CommunityId) -> Result<CommunitySummary, ApiError> {
        let id = id.to_string();
        self.authed_json(Method::POST, &["api", "communities", &id, "join"], NO_BODY)
            .await
    }

    pub async fn leave_community(&self, id: CommunityId) -> Result<(), ApiError> {
        let id = id.to_string();
        self.authed_empty(Method::POST, &["api", "communities", &id, "leave"], NO_BODY)
            .await
    }

    /// A new invite link (admins); the token is shown only in this answer.
    pub async fn create_community_invite(
        &self,
        id: CommunityId,
        req: &CreateInviteRequest,
    ) -> Result<NewCommunityInvite, ApiError> {
        let id = id.to_string();
        self.authed_json(
            Method::POST,
            &["api", "communities", &id, "invites"],
            Some(req),
        )
        .await
    }

    pub async fn community_invites(
        &self,
        id: CommunityId,
    ) -> Result<Vec<CommunityInvite>, ApiError> {
        let id = id.to_string();
        self.authed_json(
            Method::GET,
            &["api", "communities", &id, "invites"],
            NO_BODY,
        )
        .await
    }

    pub async fn revoke_community_invite(
        &self,
        id: CommunityId,
        invite: CommunityInviteId,
    ) -> Result<(), ApiError> {
        let (id, invite) = (id.to_string(), invite.to_string());
        self.authed_empty(
            Method::DELETE,
            &["api", "communities", &id, "invites", &invite],
            NO_BODY,
        )
        .await
    }

    /// Joins the community an invite token leads to.
    pub async fn accept_community_invite(&self, token: &str) -> Result<CommunitySummary, ApiError> {
        self.authed_json(
            Method::POST,
            &["api", "communities", "join", token],
            NO_BODY,
        )
        .await
    }

    /// One page of members: owner and admins first, then by join time.
    pub async fn community_members(
        &self,
        id: CommunityId,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<CommunityMemberPage, ApiError> {
        let id = id.to_string();
        let mut query = Vec::new();
        if let Some(l) = limit {
            query.push(("limit", l.to_string()));
        }
        if let Some(c) = cursor {
            query.push(("cursor", c.to_owned()));
        }
        let resp = self
            .authed_with(
                Method::GET,
                &["api", "communities", &id, "members"],
                &query,
                None,
                NO_BODY,
            )
            .await?;
        json(resp).await
    }

    /// Changes a member's role (the owner); `Owner` hands the community over.
    pub async fn set_community_role(
        &self,
        id: CommunityId,
        user: UserId,
        role: RoomRole,
    ) -> Result<CommunityMember, ApiError> {
        let (id, user) = (id.to_string(), user.to_string());
        self.authed_json(
            Method::PATCH,
            &["api", "communities", &id, "members", &user],
            Some(&UpdateCommunityMemberRequest { role }),
        )
        .await
    }

    /// Removes a member (admins); they may join again.
    pub async fn kick_community_member(
        &self,
        id: CommunityId,
        user: UserId,
    ) -> Result<(), ApiError> {
        let (id, user) = (id.to_string(), user.to_string());
        self.authed_empty(
            Method::DELETE,
            &["api", "communities", &id, "members", &user],
            NO_BODY,
        )
        .await
    }

    pub async fn community_bans(&self, id: CommunityId) -> Result<Vec<CommunityBan>, ApiError> {
        let id = id.to_string();
        self.authed_json(Method::GET, &["api", "communities", &id, "bans"], NO_BODY)
            .await
    }

    /// Bans a user (and removes them if they are a member).
    pub async fn ban_from_community(
        &self,
        id: CommunityId,
        req: &BanRequest,
    ) -> Result<CommunityBan, ApiError> {
        let id = id.to_string();
        self.authed_json(
            Method::POST,
            &["api", "communities", &id, "bans"],
            Some(req),
        )
        .await
    }

    pub async fn unban_from_community(
        &self,
        id: CommunityId,
        user: UserId,
    ) -> Result<(), ApiError> {
        let (id, user) = (id.to_string(), user.to_string());
        self.authed_empty(
            Method::DELETE,
            &["api", "communities", &id, "bans", &user],
            NO_BODY,
        )
        .await
    }

    /// The channels with my unread state in each, in order.
    pub async fn channels(&self, id: CommunityId) -> Result<Vec<ChannelSummary>, ApiError> {
        let id = id.to_string();
        self.authed_json(
            Method::GET,
            &["api", "communities", &id, "channels"],
            NO_BODY,
        )
        .await
    }

    pub async fn create_channel(
        &self,
        id: CommunityId,
        req: &CreateChannelRequest,
    ) -> Result<Channel, ApiError> {
        let id = id.to_string();
        self.authed_json(
            Method::POST,
            &["api", "communities", &id, "channels"],
            Some(req),
        )
        .await
    }

    pub async fn update_channel(
        &self,
        id: CommunityId,
        channel: RoomId,
        req: &UpdateChannelRequest,
    ) -> Result<Channel, ApiError> {
        let (id, channel) = (id.to_string(), channel.to_string());
        self.authed_json(
            Method::PATCH,
            &["api", "communities", &id, "channels", &channel],
            Some(req),
        )
        .await
    }

    pub async fn delete_channel(&self, id: CommunityId, channel: RoomId) -> Result<(), ApiError> {
        let (id, channel) = (id.to_string(), channel.to_string());
        self.authed_empty(
            Method::DELETE,
            &["api", "communities", &id, "channels", &channel],
            NO_BODY,
        )
        .await
    }

    /// Puts every channel in this order (and under these categories).
    pub async fn reorder_channels(
        &self,
        id: CommunityId,
        channels: Vec<ChannelPlace>,
    ) -> Result<Vec<Channel>, ApiError> {
        let id = id.to_string();
        self.authed_json(
            Method::PUT,
            &["api", "communities", &id, "channels", "order"],
            Some(&ReorderChannelsRequest { channels }),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discover_sends_visibility_and_a_trimmed_query_only() {
        let q = CommunityQuery::discover(Some("  rust  ".into()));
        assert_eq!(
            q.pairs(),
            [
                ("q", "rust".to_owned()),
                ("visibility", "public".to_owned())
            ]
        );
        let blank = CommunityQuery::discover(Some("   ".into()));
        assert_eq!(blank.pairs(), [("visibility", "public".to_owned())]);
    }
}
