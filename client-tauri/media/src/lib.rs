//! Media pieces for Confab's client: capture, synthetic sources, codecs and playback.
//!
//! The modules read as the two halves of a media pipeline:
//!
//! ```text
//! video:  camera / pattern  ->  I420Frame  ->  vp8::Vp8Encoder  ->  EncodedFrame (packets)
//!         EncodedFrame      ->  vp8::Vp8Decoder  ->  I420Frame  ->  renderer
//! audio:  microphone / tone ->  10 ms i16 frames -> opus::OpusEncoder -> Opus packets
//!         Opus packets      ->  opus::OpusDecoder -> mix::Mixer -> playback (speaker)
//! ```
//!
//! Everything here is transport-agnostic: packets are plain bytes plus a timestamp, so the
//! RTP/WebRTC layer (in `confab-core`) can packetize them however it likes.
//!
//! Two synthetic sources exist so the pipeline can be proven end to end on machines without
//! a camera or a sound card: [`video::pattern`] stamps a frame counter and a capture
//! timestamp into each frame in a form that survives lossy VP8 compression, and
//! [`audio::tone`] makes a sine tone that a Goertzel detector can find after Opus.
//!
//! Only [`video::vp8`] uses `unsafe` (libvpx has no maintained safe binding that exposes the
//! realtime knobs we need); every block there carries a `SAFETY` comment.

pub mod audio;
pub mod video;

pub use audio::{AUDIO_FRAME_SAMPLES, AudioFrame, SAMPLE_RATE};
pub use video::frame::I420Frame;

/// The current wall-clock time in microseconds since the Unix epoch, the unit of every
/// capture timestamp in this crate (comparable across machines with synced clocks, which is
/// what glass-to-glass latency measurements need).
pub fn unix_time_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        // A clock set before 1970 is a broken machine; report 0 rather than panic.
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}
