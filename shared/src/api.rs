//! REST request and response bodies.
//!
//! Request fields default to empty when missing so the server can answer a missing field
//! with a field error ("is required") instead of a generic parse error.

use crate::ids::{ContactRequestId, MessageId, RoomId, SessionId, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Username rules, shared so clients can validate before asking the server.
pub const USERNAME_MIN: usize = 3;
/// Longest username.
pub const USERNAME_MAX: usize = 32;
/// Longest email address, in bytes (RFC 5321's path limit less the brackets).
pub const EMAIL_MAX: usize = 254;
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
/// Most members a group holds unless the server is configured otherwise.
pub const GROUP_DEFAULT_MAX_MEMBERS: u32 = 250;
/// Longest message body, in characters.
pub const MESSAGE_BODY_MAX: usize = 4000;
/// Longest `Idempotency-Key` / `client_id`, in characters.
pub const CLIENT_ID_MAX: usize = 64;
/// Messages in a page when the client asks for no number.
pub const MESSAGE_PAGE_DEFAULT: u32 = 20;
/// Most messages in one page.
pub const MESSAGE_PAGE_MAX: u32 = 100;
/// Most messages (or changed messages) in one catch-up page.
pub const CHANGES_PAGE_MAX: u32 = 1000;
/// Characters of a message body shown in a room's last-message preview.
pub const PREVIEW_CHARS: usize = 100;
/// Most distinct reactions on one message.
pub const REACTIONS_MAX: usize = 20;
/// Groups of at most this many members send read and delivery receipts.
pub const RECEIPTS_MAX_MEMBERS: u32 = 25;
/// Most pending outgoing contact requests per user.
pub const PENDING_REQUESTS_MAX: u32 = 20;
/// Fewest characters of a user search.
pub const USER_SEARCH_MIN: usize = 2;
/// Most users a search returns.
pub const USER_SEARCH_MAX: usize = 20;
/// Unread and mention counts stop counting here (the client shows "9999+").
pub const UNREAD_COUNT_CAP: u32 = 9999;

/// `POST /api/auth/register`
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct RegisterRequest {
    /// 3-32 characters of `[a-z0-9_.-]`; compared without regard to case.
    #[cfg_attr(
        feature = "openapi",
        schema(
            required = true,
            min_length = 3,
            max_length = 32,
            pattern = "^[A-Za-z0-9_.-]+$"
        )
    )]
    pub username: String,
    #[cfg_attr(
        feature = "openapi",
        schema(required = true, min_length = 1, max_length = 254)
    )]
    pub email: String,
    /// 8-128 characters, not a common password.
    #[cfg_attr(
        feature = "openapi",
        schema(required = true, min_length = 8, max_length = 128)
    )]
    pub password: String,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub confirm_password: String,
}

/// `POST /api/auth/login`
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct LoginRequest {
    /// Email address or username.
    #[cfg_attr(feature = "openapi", schema(required = true, min_length = 1))]
    pub login: String,
    #[cfg_attr(feature = "openapi", schema(required = true, min_length = 1))]
    pub password: String,
}

/// `POST /api/auth/refresh` and `POST /api/auth/logout`
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct RefreshRequest {
    #[cfg_attr(feature = "openapi", schema(required = true, min_length = 1))]
    pub refresh_token: String,
}

/// `POST /api/auth/password`
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ChangePasswordRequest {
    #[cfg_attr(feature = "openapi", schema(required = true, min_length = 1))]
    pub current_password: String,
    #[cfg_attr(
        feature = "openapi",
        schema(required = true, min_length = 8, max_length = 128)
    )]
    pub new_password: String,
    #[cfg_attr(feature = "openapi", schema(required = true))]
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
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub display_name: Option<String>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub status_text: Option<String>,
    /// Whether others see when you have read their messages (`read` events). Your own
    /// devices always learn of your read marker.
    #[serde(default = "yes")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub share_read_receipts: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Where your avatar is served (a path on the server); None without one.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub avatar_url: Option<String>,
}

/// Another user, as anyone signed in may see them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicUser {
    pub id: UserId,
    pub username: String,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub display_name: Option<String>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub status_text: Option<String>,
    /// Where their avatar is served (a path on the server); None without one.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub avatar_url: Option<String>,
}

/// `PATCH /api/users/me`: absent fields stay as they are; an empty string clears one.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct UpdateProfileRequest {
    #[cfg_attr(feature = "openapi", schema(max_length = 64))]
    pub display_name: Option<String>,
    #[cfg_attr(feature = "openapi", schema(max_length = 140))]
    pub status_text: Option<String>,
    pub share_read_receipts: Option<bool>,
}

fn yes() -> bool {
    true
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
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub user_agent: Option<String>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
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
    #[cfg_attr(
        feature = "openapi",
        schema(required = true, min_length = 1, max_length = 100)
    )]
    pub title: String,
    /// 2-16; 8 when absent.
    #[cfg_attr(feature = "openapi", schema(minimum = 2, maximum = 16))]
    pub max_participants: Option<u32>,
}

/// What a room is for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    /// Exactly two users, at most one per pair, opened from a contact.
    Direct,
    /// A titled room with an owner, admins and members.
    #[default]
    Group,
    /// A room inside a community (not created by this version).
    Channel,
}

impl RoomKind {
    /// The name stored in the database and used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Group => "group",
            Self::Channel => "channel",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "direct" => Some(Self::Direct),
            "group" => Some(Self::Group),
            "channel" => Some(Self::Channel),
            _ => None,
        }
    }
}

/// A room, as its members see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Room {
    pub id: RoomId,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub kind: RoomKind,
    /// A group's title; empty for a direct room (show the other user instead).
    pub title: String,
    pub owner_id: UserId,
    /// The call's capacity (2-16); not a membership limit.
    pub max_participants: u32,
    pub member_count: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A member's standing in a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum RoomRole {
    /// One per group: manages admins; leaving hands the room to the oldest admin.
    Owner,
    /// Adds and removes members, renames the room, deletes others' messages.
    Admin,
    Member,
}

impl RoomRole {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(Self::Owner),
            "admin" => Some(Self::Admin),
            "member" => Some(Self::Member),
            _ => None,
        }
    }

    /// Owner or admin.
    pub fn is_admin(self) -> bool {
        matches!(self, Self::Owner | Self::Admin)
    }
}

/// Whether someone is around.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    Online,
    /// Connected, but the user has been away from the device for a while.
    Idle,
    #[default]
    Offline,
}

/// The last message of a room, as the room list shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessagePreview {
    pub message_id: MessageId,
    pub seq: u64,
    /// None for a system message.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub author: Option<PublicUser>,
    pub kind: MessageKind,
    /// The first [`PREVIEW_CHARS`] characters of the body.
    pub body: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The author is someone you block (collapse it, as in the timeline).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub author_blocked: bool,
}

/// `GET /api/rooms`: one room of mine with what the room list shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoomSummary {
    #[serde(flatten)]
    pub room: Room,
    /// For a direct room: the other user.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub other_user: Option<PublicUser>,
    /// For a direct room: the other user's presence (offline when hidden from you).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub other_presence: Option<PresenceStatus>,
    pub my_role: RoomRole,
    /// The newest message that is not deleted.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub last_message: Option<MessagePreview>,
    /// Messages after my read marker, not mine, not deleted, not from users I block
    /// (at most [`UNREAD_COUNT_CAP`]).
    pub unread_count: u32,
    /// Unread messages that mention me (at most [`UNREAD_COUNT_CAP`]).
    pub mention_count: u32,
    /// My read marker: the seq of the last message I have read.
    pub last_read_seq: u64,
    /// The seq of the newest message.
    pub last_seq: u64,
    /// The room's change counter: every change (message, edit, delete, reaction) takes
    /// the next one. A client that has seen every change up to `rev` is up to date.
    pub rev: u64,
    /// I muted this room: no notifications (unread counts still count).
    pub muted: bool,
    /// People in the room's call right now (0: no call).
    pub call_participants: u32,
}

/// A member of a room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoomMember {
    pub user: PublicUser,
    pub role: RoomRole,
    #[serde(with = "time::serde::rfc3339")]
    pub joined_at: OffsetDateTime,
    /// Their read marker, where receipts are shown (direct rooms and groups of up to
    /// [`RECEIPTS_MAX_MEMBERS`], members who share read receipts): what the `read`
    /// events said, for a client that was away when they came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_seq: Option<u64>,
    /// The highest seq one of their devices received, under the same size rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_seq: Option<u64>,
}

/// `GET /api/rooms/{id}`: the room and its members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoomDetail {
    #[serde(flatten)]
    pub room: Room,
    pub members: Vec<RoomMember>,
}

/// `PATCH /api/rooms/{id}` (admins): absent fields stay as they are.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct UpdateRoomRequest {
    #[cfg_attr(feature = "openapi", schema(max_length = 100))]
    pub title: Option<String>,
    #[cfg_attr(feature = "openapi", schema(minimum = 2, maximum = 16))]
    pub max_participants: Option<u32>,
}

/// `PATCH /api/rooms/{id}/settings`: my own settings for a room.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct RoomSettingsRequest {
    pub muted: Option<bool>,
}

/// `POST /api/rooms/{id}/members` (admins add one of their contacts).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddMemberRequest {
    pub user_id: UserId,
}

/// `PATCH /api/rooms/{id}/members/{user_id}` (the owner makes or unmakes admins).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateMemberRequest {
    /// `admin` or `member`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^(admin|member)$"))]
    pub role: RoomRole,
}

/// `POST /api/rooms/{id}/read`: moves my read marker forward (never back).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReadRequest {
    #[cfg_attr(feature = "openapi", schema(maximum = 9223372036854775807_u64))]
    pub seq: u64,
}

/// What kind of timeline entry a message is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// Written by a user.
    #[default]
    Text,
    /// System: a direct call nobody answered. `author` is the caller; `body` says
    /// "Missed call" or "Missed video call".
    MissedCall,
}

impl MessageKind {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::MissedCall => "missed_call",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "text" => Some(Self::Text),
            "missed_call" => Some(Self::MissedCall),
            _ => None,
        }
    }
}

/// One emoji on a message and who put it there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reaction {
    pub emoji: String,
    /// In the order they reacted.
    pub users: Vec<UserId>,
}

/// A message in a room's timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Message {
    pub id: MessageId,
    pub room_id: RoomId,
    /// Its place in the room: 1, 2, 3 ... with no gaps.
    pub seq: u64,
    /// The room change (`rev`) that last touched it: its creation, edit, deletion or
    /// latest reaction.
    pub rev: u64,
    pub kind: MessageKind,
    /// None only for system messages without a user behind them.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub author: Option<UserId>,
    /// Empty once deleted.
    pub body: String,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub reply_to: Option<MessageId>,
    pub reactions: Vec<Reaction>,
    /// Members the body mentions with `@username` (the author never).
    pub mentions: Vec<UserId>,
    /// `@everyone` from a channel's admin or owner: it mentions every member but its
    /// author (ids are not listed in `mentions`). False for `@everyone` written by a
    /// plain member or in a group, where it is plain text.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub mentions_everyone: bool,
    /// Files attached to it (at most 10), in order; none once it is deleted.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub attachments: Vec<crate::files::Attachment>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub edited_at: Option<OffsetDateTime>,
    /// A tombstone: the seq stays, the body is gone.
    pub deleted: bool,
    /// The author's idempotency key.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub client_id: Option<String>,
    /// True when the author is someone you block: clients collapse it. Never true in
    /// what other users receive.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub author_blocked: bool,
}

impl Message {
    /// Whether it mentions `user`: by name, or through `@everyone` (never its author).
    pub fn mentions_user(&self, user: UserId) -> bool {
        self.mentions.contains(&user) || (self.mentions_everyone && self.author != Some(user))
    }
}

/// `POST /api/rooms/{id}/messages` (with an `Idempotency-Key` header).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct SendMessageRequest {
    /// Up to 4000 characters, not blank, except that a message with attachments may
    /// have an empty body.
    #[cfg_attr(
        feature = "openapi",
        schema(required = true, min_length = 0, max_length = 4000)
    )]
    pub body: String,
    pub reply_to: Option<MessageId>,
    /// Uploads to attach (`POST /api/uploads`): at most 10, your own, none attached
    /// to a message before.
    #[cfg_attr(feature = "openapi", schema(max_items = 10))]
    pub attachments: Vec<crate::UploadId>,
}

/// `PATCH /api/rooms/{id}/messages/{message_id}`
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct EditMessageRequest {
    #[cfg_attr(
        feature = "openapi",
        schema(required = true, min_length = 1, max_length = 4000)
    )]
    pub body: String,
}

/// `GET /api/rooms/{id}/messages`: messages in ascending seq.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessagePage {
    pub messages: Vec<Message>,
    pub has_more_before: bool,
    pub has_more_after: bool,
}

/// `GET /api/rooms/{id}/changes?since=REV`: every message created or changed after
/// `since`, in ascending `rev` (each message once, as it is now). Apply them, then ask
/// again from `rev` while `has_more`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangesPage {
    pub messages: Vec<Message>,
    /// The rev these messages bring you up to (ask again from here).
    pub rev: u64,
    pub has_more: bool,
    /// My read marker now.
    pub last_read_seq: u64,
}

/// A contact (friend).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Contact {
    pub user: PublicUser,
    pub presence: PresenceStatus,
    /// Our direct room, once either of us opened it.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub direct_room_id: Option<RoomId>,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
}

/// A pending contact request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContactRequest {
    pub id: ContactRequestId,
    pub from: PublicUser,
    pub to: PublicUser,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// `GET /api/contacts/requests`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContactRequests {
    pub incoming: Vec<ContactRequest>,
    pub outgoing: Vec<ContactRequest>,
}

/// `POST /api/contacts/requests`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SendContactRequest {
    pub user_id: UserId,
}

/// Answer to `POST /api/contacts/requests`: 201 with `pending` and the request, or 200
/// with `accepted` and the contact when they had already asked you.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContactRequestOutcome {
    pub status: ContactRequestStatus,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub request: Option<ContactRequest>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub contact: Option<Contact>,
}

/// See [`ContactRequestOutcome`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ContactRequestStatus {
    Pending,
    Accepted,
}

/// `GET /api/blocks`: someone I block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlockedUser {
    pub user: PublicUser,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
}

/// `POST /api/rooms/{id}/invites`; the body may be empty.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct CreateInviteRequest {
    /// Lifetime in seconds: 60 s to 30 days, 7 days when absent.
    #[cfg_attr(feature = "openapi", schema(minimum = 60, maximum = 2592000))]
    pub expires_in: Option<u64>,
    /// How many people may accept it; unlimited when absent.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 2147483647))]
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
    #[cfg_attr(feature = "openapi", schema(required = true))]
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
