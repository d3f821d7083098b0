//! Communities (`/api/communities/*`): REST bodies and what the WebSocket events carry.
//!
//! A community has members with roles (the rooms' [`RoomRole`]: owner, admin, member),
//! bans, invite links and channels. A channel is a room of kind `channel`: its timeline,
//! read marker, unread counts, typing and call are the room ones (`/api/rooms/{id}/...`
//! and the WebSocket's room messages, with the channel's id as the room id); who may read
//! and write it follows the community's membership.

use crate::api::{PresenceStatus, PublicUser, RoomRole};
use crate::ids::{CommunityId, CommunityInviteId, RoomId, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Longest community name, in characters.
pub const COMMUNITY_NAME_MAX: usize = 100;
/// Longest community description, in characters.
pub const COMMUNITY_DESCRIPTION_MAX: usize = 1000;
/// Most members a community holds unless the server is configured otherwise
/// (`--max-community-members`). Groups stop at 250; a community is meant to be larger.
pub const COMMUNITY_DEFAULT_MAX_MEMBERS: u32 = 10_000;
/// Most channels in one community.
pub const CHANNELS_MAX: usize = 200;
/// Longest channel name, in characters.
pub const CHANNEL_NAME_MAX: usize = 100;
/// Longest channel topic, in characters.
pub const CHANNEL_TOPIC_MAX: usize = 1000;
/// Longest category name, in characters.
pub const CATEGORY_NAME_MAX: usize = 100;
/// Longest ban reason, in characters.
pub const BAN_REASON_MAX: usize = 500;
/// Longest `?q=` of the community list, in characters.
pub const COMMUNITY_QUERY_MAX: usize = 100;
/// Communities (or members) in one page when the client asks for no number.
pub const COMMUNITY_PAGE_DEFAULT: u32 = 50;
/// Most communities (or members) in one page.
pub const COMMUNITY_PAGE_MAX: u32 = 200;

/// Who can find and join a community.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum CommunityVisibility {
    /// Listed in discover; anyone signed in can join (unless banned).
    #[default]
    Public,
    /// Unlisted; joined through an invite link only.
    Private,
}

impl CommunityVisibility {
    /// The name stored in the database and used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "public" => Some(Self::Public),
            "private" => Some(Self::Private),
            _ => None,
        }
    }
}

/// A community as anyone who may see it sees it (the same for every viewer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Community {
    pub id: CommunityId,
    pub name: String,
    /// May be empty.
    pub description: String,
    /// Where its icon is served; None when it has none.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub icon_url: Option<String>,
    pub visibility: CommunityVisibility,
    pub owner_id: UserId,
    pub member_count: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// `GET /api/communities[/{id}]`: a community and where I stand in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommunitySummary {
    #[serde(flatten)]
    pub community: Community,
    /// My role; None when I am not a member.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub my_role: Option<RoomRole>,
    /// The sum of my channels' unread counts (0 when not a member).
    pub unread_count: u32,
    /// The sum of my channels' mention counts (0 when not a member).
    pub mention_count: u32,
}

/// `GET /api/communities`: one page, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommunityPage {
    pub communities: Vec<CommunitySummary>,
    /// Pass as `?cursor=` for the next page; None on the last one.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub next_cursor: Option<String>,
}

/// `POST /api/communities`
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct CreateCommunityRequest {
    /// 1-100 characters.
    #[cfg_attr(
        feature = "openapi",
        schema(required = true, min_length = 1, max_length = 100)
    )]
    pub name: String,
    /// At most 1000 characters; empty when absent.
    #[cfg_attr(feature = "openapi", schema(max_length = 1000))]
    pub description: Option<String>,
    /// `public` when absent.
    pub visibility: Option<CommunityVisibility>,
}

/// `PATCH /api/communities/{id}` (admins): absent fields stay as they are.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct UpdateCommunityRequest {
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 100))]
    pub name: Option<String>,
    /// An empty string clears it.
    #[cfg_attr(feature = "openapi", schema(max_length = 1000))]
    pub description: Option<String>,
    /// Only the owner changes it.
    pub visibility: Option<CommunityVisibility>,
}

/// A member of a community.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommunityMember {
    pub user: PublicUser,
    pub role: RoomRole,
    #[serde(with = "time::serde::rfc3339")]
    pub joined_at: OffsetDateTime,
    /// Offline when they block you or you block them.
    pub presence: PresenceStatus,
}

/// `GET /api/communities/{id}/members`: one page, owner and admins first, then by
/// join time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommunityMemberPage {
    pub members: Vec<CommunityMember>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub next_cursor: Option<String>,
}

/// `PATCH /api/communities/{id}/members/{user_id}` (the owner): `admin` or `member`;
/// `owner` hands the community over (the old owner becomes an admin).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateCommunityMemberRequest {
    pub role: RoomRole,
}

/// A ban.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommunityBan {
    pub user: PublicUser,
    /// The admin who banned them (None once that account is gone).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub banned_by: Option<UserId>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// `POST /api/communities/{id}/bans` (admins; only the owner bans an admin).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BanRequest {
    pub user_id: UserId,
    /// At most 500 characters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 500))]
    pub reason: Option<String>,
}

/// An invite link, as admins list it (the token is shown only when it is created).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommunityInvite {
    pub id: CommunityInviteId,
    pub community_id: CommunityId,
    pub created_by: UserId,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// None: unlimited.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub max_uses: Option<u32>,
    pub uses: u32,
}

/// `POST /api/communities/{id}/invites`: the new link. `POST
/// /api/communities/join/{token}` accepts it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewCommunityInvite {
    pub token: String,
    #[serde(flatten)]
    pub invite: CommunityInvite,
}

/// A channel: a room of kind `channel` in a community.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Channel {
    /// The room id: timelines, read markers and calls are the room ones.
    pub id: RoomId,
    pub community_id: CommunityId,
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub topic: Option<String>,
    /// The category it is listed under; None: above every category.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub category: Option<String>,
    /// Its place in the community's channel list (0 first).
    pub position: u32,
    /// Only admins and the owner write new messages.
    pub announcement: bool,
    /// The capacity of its call (2-16).
    pub max_participants: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// `GET /api/communities/{id}/channels`: a channel with my unread state in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelSummary {
    #[serde(flatten)]
    pub channel: Channel,
    /// As a room's: after my read marker, not mine, not deleted, not from users I block.
    pub unread_count: u32,
    pub mention_count: u32,
    pub last_read_seq: u64,
    pub last_seq: u64,
    /// The room's change counter (for `/api/rooms/{id}/changes?since=`).
    pub rev: u64,
    pub muted: bool,
    /// People in its call right now.
    pub call_participants: u32,
}

/// `POST /api/communities/{id}/channels` (admins).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct CreateChannelRequest {
    /// 1-100 characters.
    #[cfg_attr(
        feature = "openapi",
        schema(required = true, min_length = 1, max_length = 100)
    )]
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(max_length = 1000))]
    pub topic: Option<String>,
    #[cfg_attr(feature = "openapi", schema(max_length = 100))]
    pub category: Option<String>,
    /// False when absent.
    pub announcement: Option<bool>,
    /// 2-16; 8 when absent.
    #[cfg_attr(feature = "openapi", schema(minimum = 2, maximum = 16))]
    pub max_participants: Option<u32>,
}

/// `PATCH /api/communities/{id}/channels/{channel_id}` (admins): absent fields stay; an
/// empty topic or category clears it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct UpdateChannelRequest {
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 100))]
    pub name: Option<String>,
    #[cfg_attr(feature = "openapi", schema(max_length = 1000))]
    pub topic: Option<String>,
    #[cfg_attr(feature = "openapi", schema(max_length = 100))]
    pub category: Option<String>,
    pub announcement: Option<bool>,
    #[cfg_attr(feature = "openapi", schema(minimum = 2, maximum = 16))]
    pub max_participants: Option<u32>,
}

/// One entry of [`ReorderChannelsRequest`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelPlace {
    pub channel_id: RoomId,
    /// The category it goes under; None or empty: none.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 100))]
    pub category: Option<String>,
}

/// `PUT /api/communities/{id}/channels/order` (admins): every channel of the community
/// once, in the new order; positions become 0, 1, 2 ...
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ReorderChannelsRequest {
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub channels: Vec<ChannelPlace>,
}

/// Why someone is no longer a member of a community.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum CommunityExit {
    /// They left.
    Left,
    /// An admin removed them.
    Kicked,
    /// An admin banned them.
    Banned,
    /// The owner deleted the community.
    Deleted,
}
