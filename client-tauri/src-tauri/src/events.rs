//! Events the window listens to (typed in the generated bindings).

use crate::views::{ParticipantView, StatsView};
use serde::Serialize;
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
    /// In the call as `participant_id`, with these others.
    Joined {
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
    /// A peer connection's state: connecting, connected, disconnected, failed, closed.
    PeerState {
        participant_id: String,
        state: String,
    },
    /// Once a second per remote participant.
    Stats {
        stats: StatsView,
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

/// The microphone's peak level, 0..1, ten times a second (`mic-level`).
#[derive(Clone, Debug, Serialize, Type, tauri_specta::Event)]
pub struct MicLevel {
    pub level: f32,
}
