//! What the UI sees: plain data in the UI's (camelCase) shape, converted from the
//! server's types. Ids travel as strings; no token ever appears here.

use confab_core::call::{AudioSource, PeerStats, VideoSource};
use serde::{Deserialize, Serialize};
use shared::UserId;
use shared::api::{Me, Room};
use shared::signal::Participant;
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
}

/// The signed-in user.
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct MeView {
    pub id: String,
    pub username: String,
    pub email: String,
    pub display_name: Option<String>,
}

impl From<Me> for MeView {
    fn from(me: Me) -> Self {
        Self {
            id: me.id.to_string(),
            username: me.username,
            email: me.email,
            display_name: me.display_name,
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
        }
    }
}
