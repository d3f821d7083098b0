//! The messenger's communities: views of the connection's communities and channels, and
//! the calls the community screens make (discover, join/leave, settings, members, roles,
//! bans, invites, channels). Channels are rooms: their conversations are the room ones.

use super::{Messenger, Result};
use crate::error::AppError;
use crate::views::{UserView, rfc3339};
use confab_core::api::CommunityQuery;
use confab_core::connection::CommunityState;
use serde::{Deserialize, Serialize};
use shared::api::{CreateInviteRequest, PresenceStatus, RoomRole};
use shared::communities::{
    Channel, ChannelPlace, CommunityBan, CommunityInvite, CommunityMember, CommunitySummary,
    CommunityVisibility, CreateChannelRequest, CreateCommunityRequest, UpdateChannelRequest,
    UpdateCommunityRequest,
};
use shared::{CommunityId, CommunityInviteId, RoomId, UserId};
use specta::Type;

/// How long a community invite link made from the app works: a week.
const INVITE_TTL_SECS: u64 = 7 * 24 * 3600;

/// A channel of a community.
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ChannelView {
    /// Its room id (open it as a conversation).
    pub id: RoomId,
    pub community_id: CommunityId,
    pub name: String,
    pub topic: Option<String>,
    /// The category it is listed under; None: above every category.
    pub category: Option<String>,
    pub position: u32,
    /// Only admins write in it.
    pub announcement: bool,
    pub max_participants: u32,
}

impl From<Channel> for ChannelView {
    fn from(c: Channel) -> Self {
        Self {
            id: c.id,
            community_id: c.community_id,
            name: c.name,
            topic: c.topic,
            category: c.category,
            position: c.position,
            announcement: c.announcement,
            max_participants: c.max_participants,
        }
    }
}

/// A community: mine (with its channels, in order) or one found in discover (no
/// channels; `my_role` None when I am not a member).
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct CommunityView {
    pub id: CommunityId,
    pub name: String,
    pub description: String,
    /// The icon's address on the server; None when it has none.
    pub icon_url: Option<String>,
    pub visibility: CommunityVisibility,
    pub owner_id: UserId,
    pub member_count: u32,
    pub my_role: Option<RoomRole>,
    /// Summed over my channels.
    pub unread: u32,
    pub mentions: u32,
    pub created_at: String,
    pub channels: Vec<ChannelView>,
}

impl CommunityView {
    fn new(summary: CommunitySummary, channels: Vec<Channel>, server: &url::Url) -> Self {
        let c = summary.community;
        Self {
            id: c.id,
            name: c.name,
            description: c.description,
            icon_url: c
                .icon_url
                .and_then(|u| server.join(&u).ok())
                .map(|u| u.to_string()),
            visibility: c.visibility,
            owner_id: c.owner_id,
            member_count: c.member_count,
            my_role: summary.my_role,
            unread: summary.unread_count,
            mentions: summary.mention_count,
            created_at: rfc3339(c.created_at),
            channels: channels.into_iter().map(ChannelView::from).collect(),
        }
    }

    pub fn of_state(state: CommunityState, server: &url::Url) -> Self {
        Self::new(state.summary, state.channels, server)
    }
}

/// A page of discover's results.
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct DiscoverPage {
    pub communities: Vec<CommunityView>,
    /// Pass back for the next page; None on the last one.
    pub next_cursor: Option<String>,
}

/// A member of a community.
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct CommunityMemberView {
    pub user: UserView,
    pub role: RoomRole,
    pub joined_at: String,
    pub presence: PresenceStatus,
}

impl From<CommunityMember> for CommunityMemberView {
    fn from(m: CommunityMember) -> Self {
        Self {
            user: m.user.into(),
            role: m.role,
            joined_at: rfc3339(m.joined_at),
            presence: m.presence,
        }
    }
}

/// A page of members: owner and admins first, then by join time.
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct MemberPage {
    pub members: Vec<CommunityMemberView>,
    pub next_cursor: Option<String>,
}

/// A ban.
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct BanView {
    pub user: UserView,
    pub reason: Option<String>,
    pub created_at: String,
}

impl From<CommunityBan> for BanView {
    fn from(b: CommunityBan) -> Self {
        Self {
            user: b.user.into(),
            reason: b.reason,
            created_at: rfc3339(b.created_at),
        }
    }
}

/// An invite link as admins list it (its token is shown only when it is made).
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct CommunityInviteView {
    pub id: CommunityInviteId,
    pub created_at: String,
    pub expires_at: String,
    pub max_uses: Option<u32>,
    pub uses: u32,
}

impl From<CommunityInvite> for CommunityInviteView {
    fn from(i: CommunityInvite) -> Self {
        Self {
            id: i.id,
            created_at: rfc3339(i.created_at),
            expires_at: rfc3339(i.expires_at),
            max_uses: i.max_uses,
            uses: i.uses,
        }
    }
}

/// A new invite: the token to hand out (the "join" box takes it), once.
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct NewInviteView {
    pub token: String,
    pub invite: CommunityInviteView,
}

/// A channel's fields as the settings form sends them; absent ones stay (on update).
#[derive(Clone, Debug, Default, Deserialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ChannelForm {
    pub name: Option<String>,
    /// Empty clears it.
    pub topic: Option<String>,
    /// Empty clears it.
    pub category: Option<String>,
    pub announcement: Option<bool>,
}

/// One channel's place in a new order.
#[derive(Clone, Debug, Deserialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ChannelPlaceForm {
    pub channel_id: RoomId,
    pub category: Option<String>,
}

/// The token in what the user pasted: the token itself, or a link ending in it.
pub fn invite_token(input: &str) -> Result<String> {
    let token = input
        .trim()
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .trim();
    if token.is_empty() {
        return Err(AppError::field(
            "invite",
            "Paste an invite link or its code.",
        ));
    }
    Ok(token.to_owned())
}

fn trimmed(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned())
}

impl Messenger {
    fn community_view(&self, state: CommunityState) -> CommunityView {
        CommunityView::of_state(state, self.inner.conn.api().server_url())
    }

    /// My communities with their channels.
    pub fn communities(&self) -> Vec<CommunityView> {
        self.inner
            .conn
            .communities()
            .into_iter()
            .map(|c| self.community_view(c))
            .collect()
    }

    /// Public communities, optionally matching `q`, a page at a time.
    pub async fn discover(
        &self,
        q: Option<String>,
        cursor: Option<String>,
    ) -> Result<DiscoverPage> {
        let mut query = CommunityQuery::discover(q);
        query.cursor = cursor;
        let page = self.inner.conn.find_communities(&query).await?;
        let server = self.inner.conn.api().server_url();
        Ok(DiscoverPage {
            communities: page
                .communities
                .into_iter()
                .map(|c| CommunityView::new(c, Vec::new(), server))
                .collect(),
            next_cursor: page.next_cursor,
        })
    }

    pub async fn create_community(
        &self,
        name: &str,
        description: Option<String>,
        visibility: CommunityVisibility,
    ) -> Result<CommunityView> {
        let state = self
            .inner
            .conn
            .create_community(&CreateCommunityRequest {
                name: name.trim().to_owned(),
                description: trimmed(description),
                visibility: Some(visibility),
            })
            .await?;
        Ok(self.community_view(state))
    }

    pub async fn update_community(
        &self,
        id: CommunityId,
        name: Option<String>,
        description: Option<String>,
        visibility: Option<CommunityVisibility>,
    ) -> Result<CommunityView> {
        self.inner
            .conn
            .update_community(
                id,
                &UpdateCommunityRequest {
                    name: trimmed(name),
                    description: trimmed(description),
                    visibility,
                },
            )
            .await?;
        self.mine(id)
    }

    fn mine(&self, id: CommunityId) -> Result<CommunityView> {
        self.inner
            .conn
            .community(id)
            .map(|c| self.community_view(c))
            .ok_or_else(|| AppError::NotFound {
                message: "You are not in this community.".into(),
            })
    }

    pub async fn delete_community(&self, id: CommunityId) -> Result<()> {
        Ok(self.inner.conn.delete_community(id).await?)
    }

    pub async fn join_community(&self, id: CommunityId) -> Result<CommunityView> {
        let state = self.inner.conn.join_community(id).await?;
        Ok(self.community_view(state))
    }

    /// Joins by an invite link or its code.
    pub async fn join_community_invite(&self, invite: &str) -> Result<CommunityView> {
        let token = invite_token(invite)?;
        let state = self.inner.conn.accept_community_invite(&token).await?;
        Ok(self.community_view(state))
    }

    pub async fn leave_community(&self, id: CommunityId) -> Result<()> {
        Ok(self.inner.conn.leave_community(id).await?)
    }

    pub async fn community_members(
        &self,
        id: CommunityId,
        cursor: Option<String>,
    ) -> Result<MemberPage> {
        let page = self
            .inner
            .conn
            .community_members(id, cursor.as_deref())
            .await?;
        Ok(MemberPage {
            members: page.members.into_iter().map(Into::into).collect(),
            next_cursor: page.next_cursor,
        })
    }

    pub async fn set_community_role(
        &self,
        id: CommunityId,
        user: UserId,
        role: RoomRole,
    ) -> Result<()> {
        Ok(self.inner.conn.set_community_role(id, user, role).await?)
    }

    pub async fn kick_community_member(&self, id: CommunityId, user: UserId) -> Result<()> {
        Ok(self.inner.conn.kick_community_member(id, user).await?)
    }

    pub async fn community_bans(&self, id: CommunityId) -> Result<Vec<BanView>> {
        Ok(self
            .inner
            .conn
            .community_bans(id)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    pub async fn ban_community_member(
        &self,
        id: CommunityId,
        user: UserId,
        reason: Option<String>,
    ) -> Result<BanView> {
        Ok(self
            .inner
            .conn
            .ban_from_community(id, user, trimmed(reason))
            .await?
            .into())
    }

    pub async fn unban_community_member(&self, id: CommunityId, user: UserId) -> Result<()> {
        Ok(self.inner.conn.unban_from_community(id, user).await?)
    }

    pub async fn community_invites(&self, id: CommunityId) -> Result<Vec<CommunityInviteView>> {
        Ok(self
            .inner
            .conn
            .community_invites(id)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    pub async fn create_community_invite(&self, id: CommunityId) -> Result<NewInviteView> {
        let new = self
            .inner
            .conn
            .create_community_invite(
                id,
                &CreateInviteRequest {
                    expires_in: Some(INVITE_TTL_SECS),
                    max_uses: None,
                },
            )
            .await?;
        Ok(NewInviteView {
            token: new.token,
            invite: new.invite.into(),
        })
    }

    pub async fn revoke_community_invite(
        &self,
        id: CommunityId,
        invite: CommunityInviteId,
    ) -> Result<()> {
        Ok(self.inner.conn.revoke_community_invite(id, invite).await?)
    }

    pub async fn create_channel(&self, id: CommunityId, form: ChannelForm) -> Result<ChannelView> {
        let req = CreateChannelRequest {
            name: form.name.unwrap_or_default().trim().to_owned(),
            topic: trimmed(form.topic).filter(|t| !t.is_empty()),
            category: trimmed(form.category).filter(|t| !t.is_empty()),
            announcement: form.announcement,
            max_participants: None,
        };
        Ok(self.inner.conn.create_channel(id, &req).await?.into())
    }

    pub async fn update_channel(
        &self,
        id: CommunityId,
        channel: RoomId,
        form: ChannelForm,
    ) -> Result<ChannelView> {
        let req = UpdateChannelRequest {
            name: trimmed(form.name),
            topic: trimmed(form.topic),
            category: trimmed(form.category),
            announcement: form.announcement,
            max_participants: None,
        };
        Ok(self
            .inner
            .conn
            .update_channel(id, channel, &req)
            .await?
            .into())
    }

    pub async fn delete_channel(&self, id: CommunityId, channel: RoomId) -> Result<()> {
        Ok(self.inner.conn.delete_channel(id, channel).await?)
    }

    pub async fn reorder_channels(
        &self,
        id: CommunityId,
        order: Vec<ChannelPlaceForm>,
    ) -> Result<Vec<ChannelView>> {
        let places = order
            .into_iter()
            .map(|p| ChannelPlace {
                channel_id: p.channel_id,
                category: trimmed(p.category).filter(|c| !c.is_empty()),
            })
            .collect();
        Ok(self
            .inner
            .conn
            .reorder_channels(id, places)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_invite_is_its_code_or_a_link_ending_in_it() {
        assert_eq!(invite_token("  abc123 ").unwrap(), "abc123");
        assert_eq!(
            invite_token("https://confab.example/api/communities/join/abc123/").unwrap(),
            "abc123"
        );
        assert!(invite_token("   ").is_err());
    }
}
