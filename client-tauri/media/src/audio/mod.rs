//! Audio: devices (cpal), a synthetic tone, the Opus codec and the playback mixer.
//!
//! Pipeline: [`capture::MicCapture`] or [`tone::ToneSource`] -> 10 ms [`AudioFrame`]s ->
//! (microphone only) [`apm::VoiceProcessor`] (echo cancellation against what playback
//! played, noise suppression, gain control) -> (two per packet) [`opus::OpusEncoder`] ->
//! Opus packets -> (network) -> [`opus::OpusDecoder`] -> [`mix::MixInput`] (one per remote peer) -> [`mix::MixOutput`]
//! -> [`playback::Playback`] (speaker).
//!
//! Inside this crate audio is always 48 kHz mono `i16`: Opus's native rate, so nothing is
//! resampled between the codec and the devices unless a device cannot run at 48 kHz.

pub mod apm;
pub mod capture;
pub mod device;
pub mod mix;
pub mod opus;
pub mod playback;
mod resample;
pub mod tone;

/// Sample rate of every audio frame in this crate.
pub const SAMPLE_RATE: u32 = 48_000;

/// Samples in one 10 ms frame at [`SAMPLE_RATE`], the unit the microphone delivers.
pub const AUDIO_FRAME_SAMPLES: usize = 480;

/// 10 ms of mono audio from the microphone.
///
/// A fixed-size array, not a `Vec`, so the realtime callback can send it through a bounded
/// channel without allocating.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AudioFrame {
    /// Frame number since capture started; a gap means frames were dropped because the
    /// consumer was slow.
    pub seq: u64,
    /// 480 samples at 48 kHz.
    pub samples: [i16; AUDIO_FRAME_SAMPLES],
}

impl std::fmt::Debug for AudioFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioFrame")
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}
