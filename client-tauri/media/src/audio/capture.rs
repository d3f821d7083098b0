//! Microphone capture: fixed 10 ms, 48 kHz mono frames through a bounded channel.
//!
//! The cpal data callback runs on the audio driver's realtime thread, so it follows the
//! realtime rules: it never blocks, never allocates and never logs. Everything it touches
//! is preallocated in `FrameAssembler`; finished frames are `try_send`-ed into a
//! `std::sync::mpsc::sync_channel`, whose bounded form preallocates its slots and never
//! allocates on send. When the consumer is behind, the new frame is dropped and counted
//! (the gap shows in [`AudioFrame::seq`]): the callback cannot wait, and dropping the
//! oldest frame instead would mean taking from the consumer's end of the channel.
//!
//! The consumer, usually the Opus encoding thread (or a `spawn_blocking` task), blocks on
//! the receiver and joins two 10 ms frames into each 20 ms Opus frame.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use cpal::traits::{DeviceTrait, StreamTrait};
use cpal::{FromSample, Sample, SizedSample};

use super::device::{
    AudioError, DeviceFormat, Direction, choose_config, dispatch_sample_format, open_device,
};
use super::resample::LinearResampler;
use super::{AUDIO_FRAME_SAMPLES, AudioFrame, SAMPLE_RATE};

/// A running microphone stream. Capture stops when this is dropped.
pub struct MicCapture {
    _stream: cpal::Stream,
    format: DeviceFormat,
    stats: Arc<CaptureStats>,
}

#[derive(Debug, Default)]
struct CaptureStats {
    sent: AtomicU64,
    dropped: AtomicU64,
}

impl MicCapture {
    /// Starts capturing from the device with `device_id` (or the default microphone).
    /// Frames arrive on the returned receiver; at most `queue_frames` wait there before
    /// new ones are dropped (5 = 50 ms is plenty for an encoder that keeps up).
    pub fn start(
        device_id: Option<&str>,
        queue_frames: usize,
    ) -> Result<(Self, Receiver<AudioFrame>), AudioError> {
        let device = open_device(device_id, Direction::Input)?;
        let config = choose_config(&device, Direction::Input)?;
        let format = DeviceFormat::from(&config);
        let (sender, receiver) = sync_channel(queue_frames.max(1));
        let stats = Arc::new(CaptureStats::default());
        let assembler = FrameAssembler::new(format, sender, Arc::clone(&stats));
        let stream = dispatch_sample_format!(
            format.sample_format,
            build_stream(&device, config.config(), assembler)
        )?;
        stream.play()?;
        tracing::info!(?format, "microphone capture started");
        Ok((
            Self {
                _stream: stream,
                format,
                stats,
            },
            receiver,
        ))
    }

    /// The format the device runs at (frames are always 48 kHz mono regardless).
    pub fn format(&self) -> DeviceFormat {
        self.format
    }

    /// Frames delivered to the channel so far.
    pub fn frames_sent(&self) -> u64 {
        self.stats.sent.load(Ordering::Relaxed)
    }

    /// Frames dropped because the channel was full (or its receiver gone).
    pub fn frames_dropped(&self) -> u64 {
        self.stats.dropped.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for MicCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MicCapture")
            .field("format", &self.format)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn build_stream<T>(
    device: &cpal::Device,
    config: cpal::StreamConfig,
    mut assembler: FrameAssembler,
) -> Result<cpal::Stream, AudioError>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    Ok(device.build_input_stream::<T, _, _>(
        config,
        move |data: &[T], _: &cpal::InputCallbackInfo| assembler.process(data),
        // Not the realtime path: errors are rare, so logging here is fine.
        |error| tracing::warn!(%error, "microphone stream error"),
        None,
    )?)
}

/// The callback's state: downmix, resample, cut into 10 ms frames, send. All buffers are
/// allocated before the stream starts.
pub(crate) struct FrameAssembler {
    channels: usize,
    resampler: LinearResampler,
    frame: [i16; AUDIO_FRAME_SAMPLES],
    filled: usize,
    seq: u64,
    sender: SyncSender<AudioFrame>,
    stats: Arc<CaptureStats>,
}

impl FrameAssembler {
    fn new(format: DeviceFormat, sender: SyncSender<AudioFrame>, stats: Arc<CaptureStats>) -> Self {
        Self {
            channels: usize::from(format.channels.max(1)),
            resampler: LinearResampler::new(format.sample_rate, SAMPLE_RATE),
            frame: [0; AUDIO_FRAME_SAMPLES],
            filled: 0,
            seq: 0,
            sender,
            stats,
        }
    }

    /// Consumes one callback's worth of interleaved device samples.
    fn process<T>(&mut self, data: &[T])
    where
        T: Sample,
        f32: FromSample<T>,
    {
        let Self {
            channels,
            resampler,
            frame,
            filled,
            seq,
            sender,
            stats,
        } = self;
        let scale = 1.0 / *channels as f32;
        for device_frame in data.chunks_exact(*channels) {
            // Downmix by averaging, so a mono source duplicated on both channels of a
            // stereo device keeps its level.
            let mono: f32 = device_frame
                .iter()
                .map(|s| s.to_sample::<f32>())
                .sum::<f32>()
                * scale;
            resampler.push(mono, |sample| {
                frame[*filled] = sample.clamp(-1.0, 1.0).to_sample::<i16>();
                *filled += 1;
                if *filled == AUDIO_FRAME_SAMPLES {
                    *filled = 0;
                    let out = AudioFrame {
                        seq: *seq,
                        samples: *frame,
                    };
                    *seq += 1;
                    // try_send: never block the audio thread. Full or disconnected both
                    // mean nobody can use this frame now.
                    let counter = match sender.try_send(out) {
                        Ok(()) => &stats.sent,
                        Err(_) => &stats.dropped,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::audio::tone::{dominant_tone, tone_level};
    use cpal::SampleFormat;

    fn assembler(
        rate: u32,
        channels: u16,
        queue: usize,
    ) -> (FrameAssembler, Receiver<AudioFrame>, Arc<CaptureStats>) {
        let (sender, receiver) = sync_channel(queue);
        let stats = Arc::new(CaptureStats::default());
        let format = DeviceFormat {
            sample_rate: rate,
            channels,
            sample_format: SampleFormat::F32,
        };
        (
            FrameAssembler::new(format, sender, Arc::clone(&stats)),
            receiver,
            stats,
        )
    }

    #[test]
    fn a_44k_stereo_device_becomes_48k_mono_10ms_frames() {
        let (mut assembler, receiver, stats) = assembler(44_100, 2, 200);
        // One second of a 1 kHz tone at half scale on both channels, in odd-sized callbacks
        // the way a driver would deliver it.
        let samples: Vec<f32> = (0..44_100)
            .flat_map(|i| {
                let s = 0.5 * (std::f32::consts::TAU * 1000.0 * i as f32 / 44_100.0).sin();
                [s, s]
            })
            .collect();
        for callback in samples.chunks(2 * 441 + 6) {
            assembler.process(callback);
        }
        let frames: Vec<AudioFrame> = receiver.try_iter().collect();
        assert!(
            (99..=100).contains(&frames.len()),
            "{} frames",
            frames.len()
        );
        assert!(frames.iter().enumerate().all(|(i, f)| f.seq == i as u64));
        assert_eq!(stats.sent.load(Ordering::Relaxed), frames.len() as u64);

        let audio: Vec<i16> = frames[10..].iter().flat_map(|f| f.samples).collect();
        assert_eq!(
            dominant_tone(&audio, &[500.0, 1000.0, 1102.5], SAMPLE_RATE),
            Some(1000.0)
        );
        let level = tone_level(&audio, 1000.0, SAMPLE_RATE);
        assert!((0.45..0.55).contains(&level), "level {level}");
    }

    #[test]
    fn a_full_channel_drops_frames_instead_of_blocking() {
        let (mut assembler, receiver, stats) = assembler(48_000, 1, 2);
        assembler.process(&[0i16; 48_00]);
        assert_eq!(stats.sent.load(Ordering::Relaxed), 2);
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 8);
        // The frames kept are the oldest; the gap in `seq` shows the consumer what was lost.
        let seqs: Vec<u64> = receiver.try_iter().map(|f| f.seq).collect();
        assert_eq!(seqs, [0, 1]);
        assembler.process(&[0i16; 480]);
        assert_eq!(receiver.try_recv().map(|f| f.seq), Ok(10));
    }
}
