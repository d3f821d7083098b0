//! What the UI sees: plain data in the UI's (camelCase) shape, converted from the
//! server's types. Ids travel as strings; no token ever appears here.

use confab_core::call::{AudioSource, PeerStats, VideoSource, VoiceProcessing};
use confab_core::outbox::PendingMessage;
use serde::{Deserialize, Serialize};
use shared::api::{
    Contact, ContactRequest, ContactRequests, Me, Message, MessageKind, PresenceStatus, PublicUser,
    Reaction, Room, RoomKind, RoomRole, RoomSummary,
};
use shared::signal::Participant;
use shared::{ContactRequestId, MessageId, RoomId, UserId};
use specta::Type;
use time::format_description::well_known::Rfc3339;

/// The app's own facts, for the first screen.
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct AppInfo {
    pub version: String,
    /// The server picked earlier; `None` on first run.
    pub server_url: Option<String>,
    /// Whether sessions are kept in the OS keyring (else only until the app quits).
    pub secure_storage: bool,
    /// Why not, in words for the user.
    pub storage_note: Option<String>,
    /// The picked server is reached over plain `http://` across a public network: the
    /// UI warns that passwords and messages travel unencrypted.
    pub insecure: bool,
    /// Where the webview loads the server's picture paths from: the server, or the app's
    /// own `confab-media:` scheme when only the app trusts the server's CA.
    pub picture_base: Option<String>,
}

/// The server just picked: its normalized address and whether to warn (as in `AppInfo`).
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ServerPick {
    pub url: String,
    pub insecure: bool,
    pub picture_base: String,
}

/// The signed-in user.
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct MeView {
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub display_name: Option<String>,
    pub status_text: Option<String>,
    /// My avatar's path on the server; None without one.
    pub avatar_url: Option<String>,
}

impl From<Me> for MeView {
    fn from(me: Me) -> Self {
        Self {
            id: me.id,
            username: me.username,
            email: me.email,
            display_name: me.display_name,
            status_text: me.status_text,
            avatar_url: me.avatar_url,
        }
    }
}

/// The sign-up form, as typed.
#[derive(Clone, Debug, Deserialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct SignUpForm {
    pub username: String,
    pub email: String,
    pub password: String,
    pub confirm_password: String,
}

/// A room the user is a member of.
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct RoomView {
    pub id: String,
    pub title: String,
    pub owner_id: String,
    pub is_owner: bool,
    pub max_participants: u32,
    pub member_count: u32,
    pub created_at: String,
}

impl RoomView {
    pub fn new(room: Room, me: UserId) -> Self {
        Self {
            id: room.id.to_string(),
            is_owner: room.owner_id == me,
            owner_id: room.owner_id.to_string(),
            title: room.title,
            max_participants: room.max_participants,
            member_count: room.member_count,
            created_at: rfc3339(room.created_at),
        }
    }
}

/// A link that lets someone join a room.
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct InviteLink {
    pub url: String,
    pub token: String,
    pub expires_at: String,
}

pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// Cameras, microphones and speakers, plus notes on what is missing.
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct Devices {
    pub cameras: Vec<CameraDevice>,
    pub microphones: Vec<AudioDevice>,
    pub speakers: Vec<AudioDevice>,
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct CameraDevice {
    pub index: u32,
    pub name: String,
}

#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct AudioDevice {
    pub id: String,
    pub name: String,
    pub is_default: bool,
}

/// Where local video comes from.
#[derive(Clone, Debug, Deserialize, Type)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum VideoChoice {
    /// The moving test pattern with a frame counter ("test call").
    TestPattern,
    Camera {
        index: u32,
    },
    Off,
}

/// The size and rate the app captures at.
const VIDEO: (u32, u32, u32) = (640, 480, 30);

impl VideoChoice {
    pub fn source(&self) -> Option<VideoSource> {
        let (width, height, fps) = VIDEO;
        match *self {
            Self::TestPattern => Some(VideoSource::TestPattern { width, height, fps }),
            Self::Camera { index } => Some(VideoSource::Camera {
                index,
                width,
                height,
                fps,
            }),
            Self::Off => None,
        }
    }
}

/// Where local audio comes from.
#[derive(Clone, Debug, Deserialize, Type)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum AudioChoice {
    /// A 440 Hz tone ("test call").
    Tone,
    /// A microphone by id (`None`: the system default).
    Microphone {
        id: Option<String>,
    },
    Off,
}

impl AudioChoice {
    pub fn source(&self) -> Option<AudioSource> {
        match self {
            Self::Tone => Some(AudioSource::Tone { frequency: 440.0 }),
            Self::Microphone { id } => Some(AudioSource::Microphone { device: id.clone() }),
            Self::Off => None,
        }
    }
}

/// How to join a call.
#[derive(Clone, Debug, Deserialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct CallSettings {
    pub video: VideoChoice,
    pub audio: AudioChoice,
    /// Speaker id (`None`: the system default).
    pub speaker: Option<String>,
    /// Join muted / with the camera off.
    pub muted: bool,
    pub camera_off: bool,
    /// Echo cancellation, noise suppression and gain control on the microphone (all on
    /// when left out).
    #[serde(default)]
    #[specta(optional)]
    pub voice_processing: VoiceProcessingChoice,
}

/// Which parts of voice processing run on the microphone (the pre-join screen's switches).
#[derive(Clone, Copy, Debug, Deserialize, Type, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VoiceProcessingChoice {
    pub echo_cancellation: bool,
    pub noise_suppression: bool,
    pub gain_control: bool,
}

impl Default for VoiceProcessingChoice {
    fn default() -> Self {
        VoiceProcessing::ON.into()
    }
}

impl From<VoiceProcessing> for VoiceProcessingChoice {
    fn from(v: VoiceProcessing) -> Self {
        Self {
            echo_cancellation: v.echo_cancellation,
            noise_suppression: v.noise_suppression,
            gain_control: v.gain_control,
        }
    }
}

impl From<VoiceProcessingChoice> for VoiceProcessing {
    fn from(v: VoiceProcessingChoice) -> Self {
        Self {
            echo_cancellation: v.echo_cancellation,
            noise_suppression: v.noise_suppression,
            gain_control: v.gain_control,
        }
    }
}

/// Someone in the call.
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantView {
    pub participant_id: String,
    pub user_id: String,
    pub username: String,
    pub audio_muted: bool,
    pub video_muted: bool,
}

impl From<Participant> for ParticipantView {
    fn from(p: Participant) -> Self {
        Self {
            participant_id: p.participant_id.to_string(),
            user_id: p.user_id.to_string(),
            username: p.display_name.unwrap_or(p.username),
            audio_muted: p.audio_muted,
            video_muted: p.video_muted,
        }
    }
}

/// One second of one remote participant's connection.
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct StatsView {
    pub participant_id: String,
    pub user_id: String,
    pub rtt_ms: Option<f64>,
    pub send_kbps: f64,
    pub recv_kbps: f64,
    pub packets_lost: f64,
    pub jitter_ms: f64,
    pub frames_decoded: f64,
    pub fps: f64,
    pub width: u32,
    pub height: u32,
    /// Our send-side bandwidth estimate towards them (TWCC + GCC), kbit/s.
    pub estimate_kbps: Option<f64>,
    /// What our video encoder sends now: target bitrate, resolution, frame rate.
    pub send_target_kbps: u32,
    pub send_width: u32,
    pub send_height: u32,
    pub send_fps: u32,
    /// Lost packets recovered by retransmission; freezes of their video (gaps over 200 ms).
    pub packets_repaired: f64,
    pub freezes: f64,
}

impl From<PeerStats> for StatsView {
    // JavaScript numbers are f64; counters this large never occur in one call.
    #[allow(clippy::cast_precision_loss)]
    fn from(s: PeerStats) -> Self {
        Self {
            participant_id: s.participant_id.to_string(),
            user_id: s.user_id.to_string(),
            rtt_ms: s.rtt_ms,
            send_kbps: s.send_kbps,
            recv_kbps: s.recv_kbps,
            packets_lost: s.packets_lost as f64,
            jitter_ms: s.jitter_ms,
            frames_decoded: s.frames_decoded as f64,
            fps: s.fps,
            width: s.width,
            height: s.height,
            estimate_kbps: s.estimate_kbps,
            send_target_kbps: s.send_target_kbps,
            send_width: s.send_width,
            send_height: s.send_height,
            send_fps: s.send_fps,
            packets_repaired: s.packets_repaired as f64,
            freezes: s.freezes as f64,
        }
    }
}

// --- the messenger ---------------------------------------------------------------------

/// Someone, as lists and messages name them.
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub id: UserId,
    pub username: String,
    pub display_name: Option<String>,
    pub status_text: Option<String>,
    /// The display name, else the username.
    pub name: String,
    /// Their avatar's path on the server (the window puts the server's address before
    /// it); None without one.
    pub avatar_url: Option<String>,
}

impl From<PublicUser> for UserView {
    fn from(u: PublicUser) -> Self {
        Self {
            id: u.id,
            name: u.display_name.clone().unwrap_or_else(|| u.username.clone()),
            username: u.username,
            display_name: u.display_name,
            status_text: u.status_text,
            avatar_url: u.avatar_url,
        }
    }
}

/// The last message of a conversation, for the rail.
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct PreviewView {
    pub message_id: MessageId,
    pub seq: u64,
    pub author_id: Option<UserId>,
    pub author_name: Option<String>,
    pub kind: MessageKind,
    pub body: String,
    pub created_at: String,
    pub mine: bool,
    pub author_blocked: bool,
}

/// One row of the rail: a direct room or a group.
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ConversationView {
    pub id: RoomId,
    pub kind: RoomKind,
    /// The group's title, or the other person's name in a direct room.
    pub title: String,
    pub other_user: Option<UserView>,
    /// The other person's presence (direct rooms only).
    pub presence: Option<PresenceStatus>,
    pub my_role: RoomRole,
    pub unread: u32,
    pub mentions: u32,
    pub last_message: Option<PreviewView>,
    /// The last message's time, else the room's creation: the rail sorts by it.
    pub last_activity: String,
    pub last_read_seq: u64,
    pub last_seq: u64,
    pub muted: bool,
    /// People in the room's call now (0: no call).
    pub call_participants: u32,
    pub member_count: u32,
}

impl ConversationView {
    pub fn new(s: RoomSummary, me: UserId) -> Self {
        let other_user = s.other_user.clone().map(UserView::from);
        let title = match (&s.room.kind, &other_user) {
            (RoomKind::Direct, Some(u)) => u.name.clone(),
            _ => s.room.title.clone(),
        };
        let last_activity = rfc3339(
            s.last_message
                .as_ref()
                .map_or(s.room.created_at, |m| m.created_at),
        );
        Self {
            id: s.room.id,
            kind: s.room.kind,
            title,
            other_user,
            presence: s.other_presence,
            my_role: s.my_role,
            unread: s.unread_count,
            mentions: s.mention_count,
            last_message: s.last_message.map(|m| PreviewView {
                message_id: m.message_id,
                seq: m.seq,
                mine: m.author.as_ref().is_some_and(|a| a.id == me),
                author_id: m.author.as_ref().map(|a| a.id),
                author_name: m.author.map(|a| a.display_name.unwrap_or(a.username)),
                kind: m.kind,
                body: m.body,
                created_at: rfc3339(m.created_at),
                author_blocked: m.author_blocked,
            }),
            last_activity,
            last_read_seq: s.last_read_seq,
            last_seq: s.last_seq,
            muted: s.muted,
            call_participants: s.call_participants,
            member_count: s.room.member_count,
        }
    }
}

/// Where a message stands, as the sender sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub enum DeliveryState {
    /// In the outbox, not yet stored by the server.
    Pending,
    /// Stored by the server.
    Sent,
    /// Refused by the server for good (retry or discard it).
    Failed,
}

/// One emoji on a message.
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ReactionView {
    pub emoji: String,
    pub count: u32,
    pub mine: bool,
    pub user_ids: Vec<UserId>,
}

impl ReactionView {
    pub fn list(reactions: Vec<Reaction>, me: UserId) -> Vec<Self> {
        reactions
            .into_iter()
            .map(|r| Self {
                count: u32::try_from(r.users.len()).unwrap_or(u32::MAX),
                mine: r.users.contains(&me),
                emoji: r.emoji,
                user_ids: r.users,
            })
            .collect()
    }
}

/// A message in a conversation, stored or still in the outbox.
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    /// The list key: the client id when there is one (the same from pending to sent),
    /// else the message id.
    pub key: String,
    /// `None` while pending or failed.
    pub id: Option<MessageId>,
    pub client_id: Option<String>,
    pub room_id: RoomId,
    /// `None` while pending or failed.
    pub seq: Option<u64>,
    pub kind: MessageKind,
    pub author_id: Option<UserId>,
    pub author_name: Option<String>,
    /// The author's avatar path on the server, when the model knows one (mine: the
    /// window uses my own).
    pub author_avatar_url: Option<String>,
    pub mine: bool,
    /// Empty once deleted.
    pub body: String,
    pub reply_to: Option<MessageId>,
    pub reactions: Vec<ReactionView>,
    pub mentions_me: bool,
    pub created_at: String,
    pub edited_at: Option<String>,
    pub deleted: bool,
    pub author_blocked: bool,
    pub state: DeliveryState,
    /// Why the server refused it (failed only).
    pub error: Option<String>,
    /// Its files, in order (none once deleted).
    pub attachments: Vec<crate::messenger::files::AttachmentView>,
}

impl MessageView {
    /// A stored message; `name` names its author.
    pub fn stored(m: Message, me: UserId, name: impl Fn(UserId) -> Option<String>) -> Self {
        let mentions_me = m.mentions_user(me);
        Self {
            key: m.client_id.clone().unwrap_or_else(|| m.id.to_string()),
            id: Some(m.id),
            client_id: m.client_id,
            room_id: m.room_id,
            seq: Some(m.seq),
            kind: m.kind,
            author_name: m.author.and_then(&name),
            author_avatar_url: None,
            mine: m.author == Some(me),
            author_id: m.author,
            body: m.body,
            reply_to: m.reply_to,
            reactions: ReactionView::list(m.reactions, me),
            mentions_me,
            created_at: rfc3339(m.created_at),
            edited_at: m.edited_at.map(rfc3339),
            deleted: m.deleted,
            author_blocked: m.author_blocked,
            state: DeliveryState::Sent,
            error: None,
            attachments: m.attachments.into_iter().map(Into::into).collect(),
        }
    }

    /// A message of mine still in the outbox (`error`: refused for good).
    pub fn unsent(p: &PendingMessage, my_name: &str, error: Option<String>) -> Self {
        let created =
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(p.created_at) * 1_000_000)
                .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
        Self {
            key: p.client_id.clone(),
            id: None,
            client_id: Some(p.client_id.clone()),
            room_id: p.room_id,
            seq: None,
            kind: MessageKind::Text,
            author_id: Some(p.user_id),
            author_name: Some(my_name.to_owned()),
            author_avatar_url: None,
            mine: true,
            body: p.body.clone(),
            reply_to: p.reply_to,
            reactions: Vec::new(),
            mentions_me: false,
            created_at: rfc3339(created),
            edited_at: None,
            deleted: false,
            author_blocked: false,
            state: if error.is_some() {
                DeliveryState::Failed
            } else {
                DeliveryState::Pending
            },
            error,
            attachments: Vec::new(),
        }
    }
}

/// How far the others have read and received my messages in a room (ticks): my
/// message with `seq <= read_up_to` is read, `<= delivered_up_to` delivered, else sent.
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptsView {
    pub room_id: RoomId,
    /// `None`: the room is too big for receipts.
    pub read_up_to: Option<u64>,
    pub delivered_up_to: Option<u64>,
}

/// A page of a conversation.
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct TimelinePage {
    pub room_id: RoomId,
    /// Ascending seq; my pending and failed messages of the room last.
    pub messages: Vec<MessageView>,
    pub has_more_before: bool,
    pub has_more_after: bool,
    pub receipts: ReceiptsView,
    pub typing: Vec<UserView>,
    /// Kept from an earlier run, shown before this run's catch-up: the UI replaces it
    /// with the newest page when `synced` arrives.
    pub cached: bool,
}

/// Which page to load.
#[derive(Clone, Copy, Debug, Deserialize, Type)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum PageAnchor {
    Latest,
    Before { seq: u64 },
    After { seq: u64 },
    Around { seq: u64 },
}

impl From<PageAnchor> for confab_core::api::PageAnchor {
    fn from(a: PageAnchor) -> Self {
        match a {
            PageAnchor::Latest => Self::Latest,
            PageAnchor::Before { seq } => Self::Before(seq),
            PageAnchor::After { seq } => Self::After(seq),
            PageAnchor::Around { seq } => Self::Around(seq),
        }
    }
}

/// A contact (friend).
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ContactView {
    pub user: UserView,
    pub presence: PresenceStatus,
    pub direct_room_id: Option<RoomId>,
    pub since: String,
}

/// A pending contact request, to or from me.
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct RequestView {
    pub id: ContactRequestId,
    /// The other person.
    pub user: UserView,
    /// From them to me.
    pub incoming: bool,
    pub created_at: String,
}

/// Contacts and pending requests.
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ContactsView {
    pub contacts: Vec<ContactView>,
    pub incoming: Vec<RequestView>,
    pub outgoing: Vec<RequestView>,
}

impl ContactsView {
    pub fn new(contacts: Vec<Contact>, requests: ContactRequests) -> Self {
        let request = |r: ContactRequest, incoming: bool| RequestView {
            id: r.id,
            user: if incoming { r.from } else { r.to }.into(),
            incoming,
            created_at: rfc3339(r.created_at),
        };
        Self {
            contacts: contacts
                .into_iter()
                .map(|c| ContactView {
                    user: c.user.into(),
                    presence: c.presence,
                    direct_room_id: c.direct_room_id,
                    since: rfc3339(c.since),
                })
                .collect(),
            incoming: requests
                .incoming
                .into_iter()
                .map(|r| request(r, true))
                .collect(),
            outgoing: requests
                .outgoing
                .into_iter()
                .map(|r| request(r, false))
                .collect(),
        }
    }
}

/// Someone I block.
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct BlockedView {
    pub user: UserView,
    pub since: String,
}

/// A member of a room.
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    pub user: UserView,
    pub role: RoomRole,
    pub joined_at: String,
}

/// A call ringing for me.
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct RingView {
    pub room_id: RoomId,
    pub from: UserView,
    pub video: bool,
}

/// The call that runs now.
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct CallStatusView {
    pub room_id: RoomId,
    pub title: String,
}

/// The messenger connection, for the offline banner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub enum ConnectionState {
    Online,
    Offline,
    Reconnecting,
}

/// A peer connection's state, as `call-event` `peerState` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub enum PeerState {
    New,
    Connecting,
    Connected,
    Disconnected,
    Failed,
    Closed,
}

impl PeerState {
    /// From webrtc's `RTCPeerConnectionState` names (its "unspecified" is `New`).
    pub fn parse(s: &str) -> Self {
        match s {
            "connecting" => Self::Connecting,
            "connected" => Self::Connected,
            "disconnected" => Self::Disconnected,
            "failed" => Self::Failed,
            "closed" => Self::Closed,
            _ => Self::New,
        }
    }
}

/// The inputs' limits, the server's own constants (bindings.ts exports them as `LIMITS`).
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    pub username_min: usize,
    pub username_max: usize,
    pub email_max: usize,
    pub password_min: usize,
    pub password_max: usize,
    pub display_name_max: usize,
    pub status_text_max: usize,
    pub room_title_max: usize,
    pub room_min_participants: u32,
    pub room_max_participants: u32,
    pub message_body_max: usize,
    pub message_page_max: u32,
    pub user_search_min: usize,
    pub reactions_max: usize,
    pub receipts_max_members: u32,
    pub unread_count_cap: u32,
    pub typing_interval_ms: u64,
    pub typing_expiry_ms: u64,
    pub ring_timeout_secs: u64,
}

pub const LIMITS: Limits = {
    use shared::api as a;
    Limits {
        username_min: a::USERNAME_MIN,
        username_max: a::USERNAME_MAX,
        email_max: a::EMAIL_MAX,
        password_min: a::PASSWORD_MIN,
        password_max: a::PASSWORD_MAX,
        display_name_max: a::DISPLAY_NAME_MAX,
        status_text_max: a::STATUS_TEXT_MAX,
        room_title_max: a::ROOM_TITLE_MAX,
        room_min_participants: a::ROOM_MIN_PARTICIPANTS,
        room_max_participants: a::ROOM_MAX_PARTICIPANTS,
        message_body_max: a::MESSAGE_BODY_MAX,
        message_page_max: a::MESSAGE_PAGE_MAX,
        user_search_min: a::USER_SEARCH_MIN,
        reactions_max: a::REACTIONS_MAX,
        receipts_max_members: a::RECEIPTS_MAX_MEMBERS,
        unread_count_cap: a::UNREAD_COUNT_CAP,
        typing_interval_ms: shared::signal::TYPING_INTERVAL_MS,
        typing_expiry_ms: shared::signal::TYPING_EXPIRY_MS,
        ring_timeout_secs: shared::signal::RING_TIMEOUT_SECS,
    }
};
