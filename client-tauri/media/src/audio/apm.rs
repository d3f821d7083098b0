//! Voice processing on the microphone path: echo cancellation, noise suppression and
//! gain control by libwebrtc's audio processing module (APM), through the
//! `webrtc-audio-processing` crate.
//!
//! Two streams go in, in 10 ms frames of 48 kHz mono:
//!
//! - the **far end** (the "reverse stream"): what the speaker plays. The playback callback
//!   hands each 10 ms it pulls from the mix to a [`FarEndTap`]: one `try_send` of a fixed
//!   array into a bounded channel, so the realtime callback neither blocks nor allocates.
//! - the **near end**: the microphone's frames, processed in place by
//!   [`VoiceProcessor::process`] on the encoding thread (never in the capture callback: the
//!   APM allocates, and takes locks of its own). Before each near-end frame it takes every
//!   far-end frame queued since, so the canceller has heard what the echo in that frame
//!   came from.
//!
//! The echo canceller estimates the delay between the two streams itself (libwebrtc's
//! "delay-agnostic" mode with the extended filter), so neither device's latency has to be
//! known. Which parts run is a [`VoiceProcessing`]; everything is on by default.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use cpal::Sample;
use webrtc_audio_processing as wap;

use super::AUDIO_FRAME_SAMPLES;

const _: () = assert!(wap::NUM_SAMPLES_PER_FRAME as usize == AUDIO_FRAME_SAMPLES);

/// Which parts of voice processing run on the microphone. All on by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VoiceProcessing {
    /// Remove the far end's echo (what the speaker plays, picked up again by the mic).
    pub echo_cancellation: bool,
    /// Suppress stationary background noise (fans, hum, hiss).
    pub noise_suppression: bool,
    /// Bring the voice to a steady level (adaptive digital gain with a limiter).
    pub gain_control: bool,
}

impl Default for VoiceProcessing {
    fn default() -> Self {
        Self::ON
    }
}

impl VoiceProcessing {
    /// Everything on: what calls use unless told otherwise.
    pub const ON: Self = Self {
        echo_cancellation: true,
        noise_suppression: true,
        gain_control: true,
    };

    /// Nothing: the microphone's frames go to the encoder as captured.
    pub const OFF: Self = Self {
        echo_cancellation: false,
        noise_suppression: false,
        gain_control: false,
    };

    /// Whether any part is on (if none is, the APM is not even created).
    pub fn any(self) -> bool {
        self.echo_cancellation || self.noise_suppression || self.gain_control
    }

    /// The APM configuration for these settings: libwebrtc's own defaults for a call
    /// (Chromium's for this APM version), plus the high-pass filter whenever anything runs.
    fn apm_config(self) -> wap::Config {
        wap::Config {
            echo_cancellation: self.echo_cancellation.then_some(wap::EchoCancellation {
                suppression_level: wap::EchoCancellationSuppressionLevel::Moderate,
                // Device latencies are unknown and change with the devices: let the
                // canceller find the delay, and give it a filter long enough for rooms.
                enable_extended_filter: true,
                enable_delay_agnostic: true,
                stream_delay_ms: None,
            }),
            gain_control: self.gain_control.then_some(wap::GainControl {
                mode: wap::GainControlMode::AdaptiveDigital,
                target_level_dbfs: 3,
                compression_gain_db: 9,
                enable_limiter: true,
            }),
            noise_suppression: self.noise_suppression.then_some(wap::NoiseSuppression {
                suppression_level: wap::NoiseSuppressionLevel::High,
            }),
            voice_detection: None,
            enable_transient_suppressor: false,
            enable_high_pass_filter: self.any(),
        }
    }
}

/// `on` (everything), `off` (nothing), or a comma list of `aec` (echo cancellation), `ns`
/// (noise suppression) and `agc` (gain control): the form flags take.
impl std::str::FromStr for VoiceProcessing {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "on" | "all" => return Ok(Self::ON),
            "off" | "none" => return Ok(Self::OFF),
            _ => {}
        }
        let mut settings = Self::OFF;
        for part in s.split(',').map(str::trim) {
            match part {
                "aec" => settings.echo_cancellation = true,
                "ns" => settings.noise_suppression = true,
                "agc" => settings.gain_control = true,
                other => {
                    return Err(format!(
                        "unknown voice processing {other:?}: use on, off, or a list of aec, ns, agc"
                    ));
                }
            }
        }
        Ok(settings)
    }
}

impl std::fmt::Display for VoiceProcessing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Self::ON => f.write_str("on"),
            Self::OFF => f.write_str("off"),
            _ => {
                let parts = [
                    (self.echo_cancellation, "aec"),
                    (self.noise_suppression, "ns"),
                    (self.gain_control, "agc"),
                ];
                let on: Vec<&str> = parts.iter().filter(|p| p.0).map(|p| p.1).collect();
                f.write_str(&on.join(","))
            }
        }
    }
}

/// Why voice processing could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot create the audio processing module: {0}")]
pub struct ApmError(#[from] wap::Error);

/// One 10 ms far-end frame.
type FarEndFrame = [i16; AUDIO_FRAME_SAMPLES];

/// Far-end frames queued at most (500 ms): more means nobody is processing the microphone,
/// and newer frames are dropped until someone drains the queue.
pub const FAR_END_QUEUE: usize = 50;

/// A channel for what the speaker plays: the [`FarEndTap`] goes to the playback callback,
/// the [`FarEnd`] to the [`VoiceProcessor`]'s thread.
pub fn far_end_channel() -> (FarEndTap, FarEnd) {
    let (sender, receiver) = sync_channel(FAR_END_QUEUE);
    (FarEndTap { sender }, FarEnd { receiver })
}

/// The playback side of the far-end channel. Cheap to clone (one per speaker stream).
#[derive(Clone, Debug)]
pub struct FarEndTap {
    sender: SyncSender<FarEndFrame>,
}

impl FarEndTap {
    /// Hands 10 ms of played audio to the echo canceller. Realtime-safe: never blocks or
    /// allocates (a full queue or a gone receiver drops the frame).
    pub fn push(&self, frame: &FarEndFrame) {
        let _ = self.sender.try_send(*frame);
    }
}

/// The processing side of the far-end channel.
#[derive(Debug)]
pub struct FarEnd {
    receiver: Receiver<FarEndFrame>,
}

impl FarEnd {
    /// Drops everything queued (a microphone that starts now has no echo of it).
    pub fn clear(&self) {
        while self.receiver.try_recv().is_ok() {}
    }

    pub(crate) fn try_next(&self) -> Option<FarEndFrame> {
        // Empty and disconnected alike mean nothing to take now.
        self.receiver.try_recv().ok()
    }
}

/// What the APM reports about the last processed frame.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct VoiceStats {
    /// The canceller's own echo return loss enhancement estimate, in dB.
    pub erle_db: Option<f64>,
    /// The delay between the streams the canceller has found, in ms.
    pub delay_ms: Option<i32>,
    /// Whether the last frame held echo.
    pub has_echo: Option<bool>,
}

/// The APM on the microphone path, with its far-end feed. Lives on the encoding thread.
pub struct VoiceProcessor {
    processor: wap::Processor,
    far_end: FarEnd,
    settings: VoiceProcessing,
    buffer: [f32; AUDIO_FRAME_SAMPLES],
}

impl VoiceProcessor {
    /// An APM running `settings` (at least one part should be on), fed the far end from
    /// `far_end`.
    pub fn new(settings: VoiceProcessing, far_end: FarEnd) -> Result<Self, ApmError> {
        let mut processor = wap::Processor::new(&wap::InitializationConfig {
            num_capture_channels: 1,
            num_render_channels: 1,
            enable_experimental_agc: false,
            enable_intelligibility_enhancer: false,
        })?;
        processor.set_config(settings.apm_config());
        far_end.clear();
        Ok(Self {
            processor,
            far_end,
            settings,
            buffer: [0.0; AUDIO_FRAME_SAMPLES],
        })
    }

    /// What runs now.
    pub fn settings(&self) -> VoiceProcessing {
        self.settings
    }

    /// Switches parts on or off from the next frame on (the canceller keeps what it learnt).
    pub fn set_settings(&mut self, settings: VoiceProcessing) {
        self.settings = settings;
        self.processor.set_config(settings.apm_config());
    }

    /// Processes one microphone frame in place, after feeding the canceller every far-end
    /// frame that arrived since the last one.
    pub fn process(&mut self, frame: &mut [i16; AUDIO_FRAME_SAMPLES]) {
        while let Some(far) = self.far_end.try_next() {
            to_float(&far, &mut self.buffer);
            if let Err(error) = self.processor.process_render_frame(&mut self.buffer) {
                tracing::debug!(%error, "APM far-end frame");
            }
        }
        if !self.settings.any() {
            return;
        }
        to_float(frame, &mut self.buffer);
        match self.processor.process_capture_frame(&mut self.buffer) {
            Ok(()) => {
                for (out, &sample) in frame.iter_mut().zip(&self.buffer) {
                    *out = sample.clamp(-1.0, 1.0).to_sample::<i16>();
                }
            }
            // The frame goes on unprocessed rather than as silence.
            Err(error) => tracing::debug!(%error, "APM capture frame"),
        }
    }

    /// Drops queued far-end frames without processing them (the microphone is not in use).
    pub fn skip_far_end(&self) {
        self.far_end.clear();
    }

    /// The APM's view of the last frame.
    pub fn stats(&self) -> VoiceStats {
        let stats = self.processor.get_stats();
        VoiceStats {
            erle_db: stats.echo_return_loss_enhancement,
            delay_ms: stats.delay_median_ms,
            has_echo: stats.has_echo,
        }
    }
}

impl std::fmt::Debug for VoiceProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceProcessor")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn to_float(samples: &[i16; AUDIO_FRAME_SAMPLES], out: &mut [f32; AUDIO_FRAME_SAMPLES]) {
    for (out, &sample) in out.iter_mut().zip(samples) {
        *out = sample.to_sample::<f32>();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_and_print_as_flags_do() {
        assert_eq!("on".parse::<VoiceProcessing>(), Ok(VoiceProcessing::ON));
        assert_eq!("off".parse::<VoiceProcessing>(), Ok(VoiceProcessing::OFF));
        let aec_agc: VoiceProcessing = "agc, aec".parse().unwrap();
        assert_eq!(
            aec_agc,
            VoiceProcessing {
                echo_cancellation: true,
                noise_suppression: false,
                gain_control: true,
            }
        );
        assert_eq!(aec_agc.to_string(), "aec,agc");
        assert_eq!(
            "aec,ns,agc".parse::<VoiceProcessing>().unwrap().to_string(),
            "on"
        );
        assert!("aec,echo".parse::<VoiceProcessing>().is_err());
    }

    #[test]
    fn with_everything_off_the_microphone_passes_untouched_and_the_far_end_drains() {
        let (tap, far_end) = far_end_channel();
        let mut processor = VoiceProcessor::new(VoiceProcessing::OFF, far_end).unwrap();
        for _ in 0..FAR_END_QUEUE {
            tap.push(&[500; AUDIO_FRAME_SAMPLES]);
        }
        let mut frame = [0i16; AUDIO_FRAME_SAMPLES];
        for (i, s) in frame.iter_mut().enumerate() {
            *s = (i as i16 - 240) * 50;
        }
        let captured = frame;
        processor.process(&mut frame);
        assert_eq!(frame, captured);
        // The queue was emptied, so the playback side can hand over again.
        assert!(processor.far_end.try_next().is_none());
    }
}
