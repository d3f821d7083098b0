//! Events the window listens to (typed in the generated bindings).

use crate::messenger::communities::{CommunityMemberView, CommunityView};
use crate::views::ConnectionState;
use crate::views::{
    ContactsView, ConversationView, MessageView, ParticipantView, PeerState, ReactionView,
    ReceiptsView, RingView, StatsView, UserView,
};
use serde::Serialize;
use shared::CommunityId;
use shared::api::PresenceStatus;
use shared::api::RoomRole;
use shared::communities::CommunityExit;
use shared::signal::RingEnd;
use shared::{MessageId, RoomId, UserId};
use specta::Type;

/// What happens in the call, in order (`call-event`).
#[derive(Clone, Debug, Serialize, Type, tauri_specta::Event)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum CallEvent {
    /// Connected to the server; joining.
    Joining,
    /// In the call of `room_id` as `participant_id`, with these others.
    Joined {
        room_id: RoomId,
        participant_id: String,
        participants: Vec<ParticipantView>,
    },
    ParticipantJoined {
        participant: ParticipantView,
    },
    ParticipantLeft {
        participant_id: String,
        user_id: String,
    },
    MediaState {
        participant_id: String,
        audio_muted: bool,
        video_muted: bool,
    },
    /// A peer connection's state.
    PeerState {
        participant_id: String,
        state: PeerState,
    },
    /// Once a second per remote participant.
    Stats {
        stats: StatsView,
    },
    /// A participant started or stopped sharing a screen (its frames are the board's
    /// `screen:<participant id>`).
    ScreenShare {
        participant_id: String,
        sharing: bool,
    },
    /// Our screen share started (`source`, e.g. `monitor:60`) or stopped (null); `error`
    /// when it could not start.
    LocalScreen {
        source: Option<String>,
        error: Option<String>,
    },
    /// The connection to the server dropped; reconnecting.
    Reconnecting {
        attempt: u32,
    },
    /// The server refused something.
    Error {
        message: String,
    },
    /// The call is over for us.
    Ended {
        reason: String,
    },
}

/// How far an upload or download got (`transfer-event`), by the id the window gave it.
#[derive(Clone, Debug, Serialize, Type, tauri_specta::Event)]
#[serde(rename_all = "camelCase")]
pub struct TransferEvent {
    pub transfer_id: String,
    /// Bytes moved so far.
    pub done: u64,
    /// Bytes in all, when known.
    pub total: Option<u64>,
}

/// The microphone's peak level, 0..1, ten times a second (`mic-level`).
#[derive(Clone, Debug, Serialize, Type, tauri_specta::Event)]
pub struct MicLevel {
    pub level: f32,
}

/// What happens in the messenger (`messenger-event`): the connection, rooms, messages,
/// contacts and ringing, as views.
#[derive(Clone, Debug, Serialize, Type, tauri_specta::Event)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum MessengerEvent {
    /// The connection went up, down, or is about to retry (`attempt`).
    Connection {
        state: ConnectionState,
        attempt: Option<u32>,
    },
    /// A catch-up finished: the model matches the server.
    Synced,
    /// A conversation is new or changed (counts, preview, title, call, mute).
    RoomUpserted {
        room: ConversationView,
    },
    RoomRemoved {
        room_id: RoomId,
    },
    MessageCreated {
        message: MessageView,
    },
    /// Edited, or its reactions changed.
    MessageUpdated {
        message: MessageView,
    },
    /// Now a tombstone.
    MessageDeleted {
        message: MessageView,
    },
    /// My pending message `client_id` is stored (same `key`).
    MessageSent {
        client_id: String,
        message: MessageView,
    },
    /// My message was refused for good (`message.state` failed, `message.error` why).
    MessageFailed {
        message: MessageView,
    },
    Reactions {
        room_id: RoomId,
        message_id: MessageId,
        reactions: Vec<ReactionView>,
    },
    /// Who is typing in the room now (the whole list).
    Typing {
        room_id: RoomId,
        typing: Vec<UserView>,
    },
    /// Read and delivered markers moved (ticks).
    Receipts {
        receipts: ReceiptsView,
    },
    Presence {
        user_id: UserId,
        status: PresenceStatus,
    },
    /// Contacts or requests changed: the whole lists.
    ContactsChanged {
        contacts: ContactsView,
    },
    /// A direct call rings for me.
    Ringing {
        ring: RingView,
    },
    /// The ring stopped on this device.
    RingStopped {
        room_id: RoomId,
        reason: RingEnd,
    },
    /// A direct call went unanswered.
    CallMissed {
        room_id: RoomId,
    },
    /// The person I rang declined.
    CallDeclined {
        room_id: RoomId,
        by: UserId,
    },
    /// A call runs in a room of mine (or its size changed).
    CallStarted {
        room_id: RoomId,
        participant_count: u32,
    },
    CallEnded {
        room_id: RoomId,
    },
    /// Notifications were muted or unmuted (here or from the tray).
    NotificationsMuted {
        muted: bool,
    },
    /// Show this room (asked by the tray or a notification).
    OpenRoom {
        room_id: RoomId,
    },
    /// A `confab://invite/…` link was opened (by the OS, or a second start of the app): the
    /// window takes it with `take_invite_link` and joins (crate::links).
    InviteLinkOpened,
    /// A community of mine is new or changed (its channels, in order, included; their
    /// conversations come as `roomUpserted`).
    CommunityUpserted {
        community: CommunityView,
    },
    /// I am no longer in this community (left, kicked, banned, or it was deleted).
    CommunityRemoved {
        community_id: CommunityId,
        reason: CommunityExit,
    },
    /// Someone joined a community of mine.
    CommunityMemberJoined {
        community_id: CommunityId,
        member: CommunityMemberView,
    },
    /// Someone left a community of mine, or was kicked or banned.
    CommunityMemberLeft {
        community_id: CommunityId,
        user_id: UserId,
        reason: CommunityExit,
    },
    /// A member's role changed.
    CommunityRoleChanged {
        community_id: CommunityId,
        user_id: UserId,
        role: RoomRole,
    },
}
