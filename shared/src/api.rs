//! REST request and response bodies.
//!
//! Request fields default to empty when missing so the server can answer a missing field
//! with a field error ("is required") instead of a generic parse error.

use crate::ids::{RoomId, SessionId, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Username rules, shared so clients can validate before asking the server.
pub const USERNAME_MIN: usize = 3;
/// Longest username.
pub const USERNAME_MAX: usize = 32;
/// Shortest password.
pub const PASSWORD_MIN: usize = 8;
/// Longest password.
pub const PASSWORD_MAX: usize = 128;
/// Longest display name.
pub const DISPLAY_NAME_MAX: usize = 64;
/// Longest status text.
pub const STATUS_TEXT_MAX: usize = 140;
/// Longest room title.
pub const ROOM_TITLE_MAX: usize = 100;
/// Fewest participants a room may be limited to.
pub const ROOM_MIN_PARTICIPANTS: u32 = 2;
/// Most participants a room may allow (calls are a mesh).
pub const ROOM_MAX_PARTICIPANTS: u32 = 16;
/// Participant limit when the creator gives none.
pub const ROOM_DEFAULT_PARTICIPANTS: u32 = 8;

/// `POST /api/auth/register`
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct RegisterRequest {
    /// 3-32 characters of `[a-z0-9_.-]`; compared without regard to case.
    pub username: String,
    pub email: String,
    /// 8-128 characters, not a common password.
    pub password: String,
    pub confirm_password: String,
}

/// `POST /api/auth/login`
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct LoginRequest {
    /// Email address or username.
    pub login: String,
    pub password: String,
}

/// `POST /api/auth/refresh` and `POST /api/auth/logout`
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// `POST /api/auth/password`
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
    pub confirm_password: String,
}

/// Answer to login and refresh: a fresh token pair.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthResponse {
    /// JWT for the `Authorization: Bearer` header and the WebSocket.
    pub access_token: String,
    /// Opaque; single use: every refresh returns a new one.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: u64,
    /// The session these tokens belong to.
    pub session_id: SessionId,
    pub user: Me,
}

/// The signed-in user, with private fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Me {
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub display_name: Option<String>,
    pub status_text: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Another user, as anyone signed in may see them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicUser {
    pub id: UserId,
    pub username: String,
    pub display_name: Option<String>,
    pub status_text: Option<String>,
}

/// `PATCH /api/users/me`: absent fields stay as they are; an empty string clears one.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct UpdateProfileRequest {
    pub display_name: Option<String>,
    pub status_text: Option<String>,
}

/// One login session of the signed-in user.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionInfo {
    pub id: SessionId,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_used_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// True for the session making this request.
    pub current: bool,
}

/// `POST /api/rooms`
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct CreateRoomRequest {
    /// 1-100 characters.
    pub title: String,
    /// 2-16; 8 when absent.
    pub max_participants: Option<u32>,
}

/// A room, as its members see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Room {
    pub id: RoomId,
    pub title: String,
    pub owner_id: UserId,
    pub max_participants: u32,
    pub member_count: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Whether a member owns the room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RoomRole {
    Owner,
    Member,
}

/// A member of a room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoomMember {
    pub user: PublicUser,
    pub role: RoomRole,
    #[serde(with = "time::serde::rfc3339")]
    pub joined_at: OffsetDateTime,
}

/// `GET /api/rooms/{id}`: the room and its members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoomDetail {
    #[serde(flatten)]
    pub room: Room,
    pub members: Vec<RoomMember>,
}

/// `POST /api/rooms/{id}/invites`; the body may be empty.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct CreateInviteRequest {
    /// Lifetime in seconds: 60 s to 30 days, 7 days when absent.
    pub expires_in: Option<u64>,
    /// How many people may accept it; unlimited when absent.
    pub max_uses: Option<u32>,
}

/// A new invite. The token is shown once; the server keeps only its hash.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Invite {
    pub token: String,
    pub room_id: RoomId,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub max_uses: Option<u32>,
}

/// `GET /api/ice-servers`: the STUN and TURN servers for a client's WebRTC peer
/// connections.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IceServersResponse {
    /// What goes into `RTCConfiguration.iceServers`. Empty when the server has none
    /// configured: on a LAN or loopback, host candidates suffice.
    pub ice_servers: Vec<IceServer>,
    /// Seconds the TURN credentials stay valid; ask again before they run out.
    pub ttl: u64,
}

/// One STUN or TURN server entry, shaped like WebRTC's `RTCIceServer`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IceServer {
    /// `stun:`, `stuns:`, `turn:` or `turns:` URLs of one server.
    pub urls: Vec<String>,
    /// TURN only: `<unix expiry>:<user id>`, the TURN REST API scheme of coturn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN only: base64 of HMAC-SHA1(shared secret, username).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// `GET /healthz` and `GET /readyz`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// `ok`
    pub status: String,
}
