//! The WebSocket protocol of `GET /ws`: one typed enum per direction, tagged by `type`.
//! `docs/protocol.md` documents every message and close code.

use crate::api::{
    Contact, ContactRequest, Message, PresenceStatus, Reaction, Room, RoomRole, RoomSummary,
};
use crate::communities::{
    Channel, ChannelSummary, Community, CommunityExit, CommunityMember, CommunitySummary,
};
use crate::error::ErrorDetail;
use crate::ids::{CommunityId, ContactRequestId, MessageId, ParticipantId, RoomId, UserId};
use serde::{Deserialize, Serialize};

/// Bumped on every incompatible change to [`ClientMsg`] or [`ServerMsg`].
pub const PROTOCOL_VERSION: u32 = 2;

/// The `Sec-WebSocket-Protocol` a client offers (and the server selects) for this version.
pub const SUBPROTOCOL: &str = "confab.v2";

/// A client sends `typing` at most this often per room.
pub const TYPING_INTERVAL_MS: u64 = 3000;

/// The server forgets a `typing` after this long without another.
pub const TYPING_EXPIRY_MS: u64 = 8000;

/// A direct call rings this long before it counts as missed.
pub const RING_TIMEOUT_SECS: u64 = 30;

/// A client that cannot send an `auth` message (a browser) may instead offer a second
/// subprotocol `confab.bearer.<access token>`; the server never echoes it back.
pub const BEARER_SUBPROTOCOL_PREFIX: &str = "confab.bearer.";

/// The largest text message a client may send, in bytes. A relayed message can be a few
/// dozen bytes longer (the server adds `from` and `from_user`).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Seconds a new connection has to authenticate.
pub const AUTH_TIMEOUT_SECS: u64 = 5;

/// WebSocket close codes the server uses. 1000-1011 are RFC 6455's; 4000-4999 are ours.
pub mod close {
    /// Echoed when the client closes (the server never starts a close with it).
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down; reconnect later.
    pub const GOING_AWAY: u16 = 1001;
    /// The client broke the WebSocket framing rules (or the stream failed).
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A frame so large (over four times [`super::MAX_MESSAGE_BYTES`]) that the server
    /// stopped reading it. Messages above the limit but below this get an error reply.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// No `auth` message within [`super::AUTH_TIMEOUT_SECS`].
    pub const AUTH_TIMEOUT: u16 = 4000;
    /// The access token was invalid, or its user no longer exists.
    pub const AUTH_FAILED: u16 = 4001;
    /// The access token expired and no `reauth` arrived in time.
    pub const TOKEN_EXPIRED: u16 = 4002;
    /// The session was revoked (logout, logout-all, password change, session deleted).
    pub const SESSION_REVOKED: u16 = 4003;
    /// The client asked for a protocol version the server does not speak.
    pub const UNSUPPORTED_VERSION: u16 = 4004;
    /// The client kept sending faster than the per-connection rate limit allows.
    pub const RATE_LIMITED: u16 = 4005;
    /// The client did not read its messages fast enough; its queue overflowed.
    pub const SLOW_CONSUMER: u16 = 4006;
    /// Nothing (not even a pong) was received for the idle timeout.
    pub const IDLE_TIMEOUT: u16 = 4007;
    /// A newer connection of the same session joined the same call (the client
    /// reconnected); this one is closed. Do not reconnect from it.
    pub const REPLACED: u16 = 4008;
}

/// An ICE candidate: the fields of the browser's `RTCIceCandidateInit`, in snake_case like
/// the rest of the protocol (`sdp_mid`, not `sdpMid`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mline_index: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_fragment: Option<String>,
}

/// A participant in a call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub participant_id: ParticipantId,
    pub user_id: UserId,
    pub username: String,
    pub display_name: Option<String>,
    pub audio_muted: bool,
    pub video_muted: bool,
}

/// Someone's presence, as a snapshot entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceEntry {
    pub user_id: UserId,
    pub status: PresenceStatus,
}

/// What a client may set its own presence to (offline is having no connection).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum OwnPresence {
    Online,
    Idle,
}

/// Why a ring stopped on a device that was ringing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum RingEnd {
    /// Answered (on this or another of the callee's devices).
    Answered,
    /// Declined (on this or another of the callee's devices).
    Declined,
    /// The caller hung up first.
    Cancelled,
    /// Nobody answered in time.
    Missed,
}

fn yes() -> bool {
    true
}

/// Client -> server. Any client message may also carry `"request_id": <u64>`; the
/// server's direct reply to it (`error`, `message_ack`, `call_joined`) carries it back,
/// so a client with several requests in flight can match replies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    /// First message when the token was not given as a subprotocol.
    Auth {
        token: String,
        protocol_version: u32,
    },
    /// A fresh access token before the current one expires.
    Reauth { token: String },
    /// Application-level ping; answered with `pong` carrying the same nonce.
    Ping { nonce: u64 },
    /// Join the call of a room you are a member of (leaves any other call first). In a
    /// direct room, starting the call rings the other user; `video: false` is an audio
    /// call (joined with the camera off).
    JoinCall {
        room_id: RoomId,
        #[serde(default = "yes")]
        video: bool,
    },
    /// Refuse a ringing direct call (on every one of your devices).
    DeclineCall { room_id: RoomId },
    /// Leave the call.
    LeaveCall { room_id: RoomId },
    /// SDP offer for one participant of the same call.
    Offer {
        room_id: RoomId,
        to: ParticipantId,
        sdp: String,
    },
    /// SDP answer for one participant of the same call.
    Answer {
        room_id: RoomId,
        to: ParticipantId,
        sdp: String,
    },
    /// Trickled ICE candidate for one participant of the same call.
    IceCandidate {
        room_id: RoomId,
        to: ParticipantId,
        candidate: IceCandidate,
    },
    /// Mute / camera state, told to everyone in the call.
    MediaState {
        room_id: RoomId,
        audio_muted: bool,
        video_muted: bool,
    },
    /// Send a message; answered with `message_ack` (or an `error` carrying `client_id`).
    /// `client_id` is the idempotency key: sending it again returns the same message.
    SendMessage {
        room_id: RoomId,
        client_id: String,
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<MessageId>,
        /// Uploads to attach, as on `POST /api/rooms/{id}/messages`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<crate::UploadId>,
    },
    /// I am typing in this room (at most every [`TYPING_INTERVAL_MS`]).
    Typing { room_id: RoomId },
    /// I have read up to `seq`: moves my read marker forward.
    Read { room_id: RoomId, seq: u64 },
    /// This device has received messages up to `seq`.
    Delivered { room_id: RoomId, seq: u64 },
    /// Online, or idle (away from the device).
    SetPresence { status: OwnPresence },
}

impl ClientMsg {
    /// The `type` tag, for error replies.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Auth { .. } => "auth",
            Self::Reauth { .. } => "reauth",
            Self::Ping { .. } => "ping",
            Self::JoinCall { .. } => "join_call",
            Self::DeclineCall { .. } => "decline_call",
            Self::SendMessage { .. } => "send_message",
            Self::Typing { .. } => "typing",
            Self::Read { .. } => "read",
            Self::Delivered { .. } => "delivered",
            Self::SetPresence { .. } => "set_presence",
            Self::LeaveCall { .. } => "leave_call",
            Self::Offer { .. } => "offer",
            Self::Answer { .. } => "answer",
            Self::IceCandidate { .. } => "ice_candidate",
            Self::MediaState { .. } => "media_state",
        }
    }
}

/// Server -> client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// Authentication succeeded.
    Welcome {
        protocol_version: u32,
        user_id: UserId,
        /// This connection's id: what others address `offer`/`answer`/`ice_candidate` to.
        participant_id: ParticipantId,
        /// Unix time (seconds) at which the access token expires; send `reauth` before.
        token_expires_at: i64,
        /// The server pings this often; the connection is closed after `idle_timeout_secs`
        /// without any frame from the client.
        heartbeat_secs: u64,
        idle_timeout_secs: u64,
        max_message_bytes: usize,
    },
    /// `reauth` succeeded.
    Reauthenticated { token_expires_at: i64 },
    /// Answer to `ping`.
    Pong { nonce: u64 },
    /// Contacts and co-members who are online or idle, sent once after `welcome`.
    PresenceSnapshot { online: Vec<PresenceEntry> },
    /// A contact or co-member came online, went idle or went offline.
    Presence {
        user_id: UserId,
        status: PresenceStatus,
    },
    /// You joined a call: everyone already in it (not you).
    CallJoined {
        room_id: RoomId,
        participants: Vec<Participant>,
        participant_count: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<u64>,
    },
    /// You left a call (you asked, joined another, left the room, or the room was deleted).
    CallLeft { room_id: RoomId },
    /// Someone joined your call.
    ParticipantJoined {
        room_id: RoomId,
        participant: Participant,
        participant_count: usize,
    },
    /// Someone left your call.
    ParticipantLeft {
        room_id: RoomId,
        participant_id: ParticipantId,
        user_id: UserId,
        participant_count: usize,
    },
    /// Relayed SDP offer.
    Offer {
        room_id: RoomId,
        from: ParticipantId,
        from_user: UserId,
        sdp: String,
    },
    /// Relayed SDP answer.
    Answer {
        room_id: RoomId,
        from: ParticipantId,
        from_user: UserId,
        sdp: String,
    },
    /// Relayed ICE candidate.
    IceCandidate {
        room_id: RoomId,
        from: ParticipantId,
        from_user: UserId,
        candidate: IceCandidate,
    },
    /// A participant's mute / camera state changed.
    MediaState {
        room_id: RoomId,
        participant_id: ParticipantId,
        audio_muted: bool,
        video_muted: bool,
    },
    /// A message was refused; the connection stays open.
    Error {
        error: ErrorDetail,
        /// The `type` of the refused message, when it could be read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        in_reply_to: Option<String>,
        /// The refused message's `request_id`, when it had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<u64>,
        /// The refused `send_message`'s `client_id`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
    },
    /// Your `send_message` was stored (or had been: a retry gets the original).
    MessageAck {
        client_id: String,
        message: Message,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<u64>,
    },
    /// A new message in one of your rooms (`message.rev` is the room's change number).
    MessageCreated { message: Message },
    /// A message was edited.
    MessageUpdated { message: Message },
    /// A message was deleted: `message` is its tombstone.
    MessageDeleted { message: Message },
    /// A message's reactions changed; `rev` is the room's change number.
    ReactionChanged {
        room_id: RoomId,
        message_id: MessageId,
        rev: u64,
        reactions: Vec<Reaction>,
    },
    /// Someone is typing (`expires_in_ms` > 0) or stopped (0).
    Typing {
        room_id: RoomId,
        user_id: UserId,
        expires_in_ms: u64,
    },
    /// A member read up to `seq` (also sent to your own other devices for your marker).
    Read {
        room_id: RoomId,
        user_id: UserId,
        seq: u64,
    },
    /// A member's device received messages up to `seq`.
    Delivered {
        room_id: RoomId,
        user_id: UserId,
        seq: u64,
    },
    /// You became a member of a room.
    RoomAdded { room: RoomSummary },
    /// A room of yours changed (title, members, call capacity, owner).
    RoomUpdated { room: Room },
    /// You are no longer a member of this room (left, removed, or it was deleted).
    RoomRemoved { room_id: RoomId },
    /// Your own settings for a room changed (on any of your devices).
    RoomSettings { room_id: RoomId, muted: bool },
    /// Someone asked to become your contact.
    ContactRequest { request: ContactRequest },
    /// A contact request to or from you went away (declined, cancelled).
    ContactRequestRemoved { request_id: ContactRequestId },
    /// You have a new contact.
    ContactAdded { contact: Contact },
    /// A contact is gone (removed, or blocked by either side).
    ContactRemoved { user_id: UserId },
    /// A direct call is ringing for you.
    CallRinging {
        room_id: RoomId,
        from: UserId,
        video: bool,
    },
    /// A ring on this device stopped.
    CallRingStopped { room_id: RoomId, reason: RingEnd },
    /// The user you called declined.
    CallDeclined { room_id: RoomId, by: UserId },
    /// A direct call went unanswered (the caller and the callee both get it).
    CallMissed { room_id: RoomId },
    /// A call started in a room of yours, or its participant count changed.
    CallStarted {
        room_id: RoomId,
        participant_count: usize,
    },
    /// The call in a room of yours ended.
    CallEnded { room_id: RoomId },
    /// You became a member of a community (on every device): it and its channels. Its
    /// channels are rooms of kind `channel`; they are announced by these community
    /// events, never by `room_added` / `room_removed`.
    CommunityAdded {
        community: CommunitySummary,
        channels: Vec<ChannelSummary>,
    },
    /// A community of yours changed (name, description, icon, visibility, owner).
    CommunityUpdated { community: Community },
    /// You are no longer in this community (left, kicked, banned, or it was deleted): its
    /// channels are gone for you, and you were taken out of their calls.
    CommunityRemoved {
        community_id: CommunityId,
        reason: CommunityExit,
    },
    /// Someone joined a community of yours.
    CommunityMemberJoined {
        community_id: CommunityId,
        member: CommunityMember,
        member_count: u32,
    },
    /// Someone left a community of yours, or was kicked or banned from it.
    CommunityMemberLeft {
        community_id: CommunityId,
        user_id: UserId,
        reason: CommunityExit,
        member_count: u32,
    },
    /// A member's role changed (a hand-over sends one for each of the two).
    CommunityRoleChanged {
        community_id: CommunityId,
        user_id: UserId,
        role: RoomRole,
    },
    /// A channel was created in a community of yours (you are a member of it already).
    ChannelCreated { channel: Channel },
    /// A channel's name, topic, category, announcement flag or call capacity changed.
    ChannelUpdated { channel: Channel },
    /// A channel was deleted, with its timeline; its call ended.
    ChannelDeleted {
        community_id: CommunityId,
        channel_id: RoomId,
    },
    /// The community's channels were reordered: all of them, in their new order.
    ChannelsReordered {
        community_id: CommunityId,
        channels: Vec<Channel>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_are_tagged_snake_case() {
        let room_id = RoomId::new();
        let msg = ClientMsg::JoinCall {
            room_id,
            video: true,
        };
        let json = serde_json::to_value(&msg).expect("serializes");
        assert_eq!(json["type"], "join_call");
        assert_eq!(json["room_id"], room_id.to_string());
        let back: ClientMsg = serde_json::from_value(json).expect("parses");
        assert_eq!(back, msg);
    }

    #[test]
    fn a_join_without_video_is_a_video_call() {
        let msg: ClientMsg = serde_json::from_str(&format!(
            r#"{{"type":"join_call","room_id":"{}"}}"#,
            RoomId::new()
        ))
        .expect("parses");
        assert!(matches!(msg, ClientMsg::JoinCall { video: true, .. }));
    }

    #[test]
    fn error_codes_from_a_newer_server_still_parse() {
        let body: crate::ErrorBody =
            serde_json::from_str(r#"{"error":{"code":"brand_new_code","message":"m"}}"#)
                .expect("parses");
        assert_eq!(body.error.code, crate::ErrorCode::Unknown);
    }

    #[test]
    fn unknown_type_is_an_error_not_a_panic() {
        assert!(serde_json::from_str::<ClientMsg>(r#"{"type":"launch_missiles"}"#).is_err());
        assert!(serde_json::from_str::<ClientMsg>("not json").is_err());
    }
}
