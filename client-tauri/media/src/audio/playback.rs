//! Speaker playback of the mix of every remote stream.
//!
//! The cpal data callback pulls 48 kHz mono samples from a [`MixOutput`] in 10 ms chunks,
//! resamples them to the device rate if needed and copies each to every device channel.
//! Like capture, the callback never blocks, allocates or logs; when no stream has queued
//! audio the mix is zeros, so an underrun plays silence. With a [`FarEndTap`], each 10 ms
//! chunk pulled from the mix is also handed to the echo canceller (a `try_send` of a fixed
//! array), as the far end it removes from the microphone.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cpal::traits::{DeviceTrait, StreamTrait};
use cpal::{FromSample, Sample, SizedSample};

use super::apm::FarEndTap;
use super::device::{
    AudioError, DeviceFormat, Direction, choose_config, dispatch_sample_format, open_device,
};
use super::mix::{MixInput, MixOutput, Mixer, mix_buffer};
use super::resample::LinearResampler;
use super::{AUDIO_FRAME_SAMPLES, SAMPLE_RATE};

/// A running speaker stream. Playback stops when this is dropped.
pub struct Playback {
    _stream: cpal::Stream,
    format: DeviceFormat,
    mixer: Mixer,
    stats: Arc<PlaybackStats>,
}

#[derive(Debug, Default)]
struct PlaybackStats {
    played: AtomicU64,
    underrun: AtomicU64,
}

impl Playback {
    /// Starts playing the (initially silent) mix on the device with `device_id`, or the
    /// default output.
    pub fn start(device_id: Option<&str>) -> Result<Self, AudioError> {
        Self::start_with_far_end(device_id, None)
    }

    /// Like [`Playback::start`], handing what it plays to `far_end` too (the echo
    /// canceller's reference).
    pub fn start_with_far_end(
        device_id: Option<&str>,
        far_end: Option<FarEndTap>,
    ) -> Result<Self, AudioError> {
        let device = open_device(device_id, Direction::Output)?;
        let config = choose_config(&device, Direction::Output)?;
        let format = DeviceFormat::from(&config);
        let (mixer, output) = mix_buffer();
        let stats = Arc::new(PlaybackStats::default());
        let mut renderer = Renderer::new(output, format, Arc::clone(&stats));
        renderer.far_end = far_end;
        let stream = dispatch_sample_format!(
            format.sample_format,
            build_stream(&device, config.config(), renderer)
        )?;
        stream.play()?;
        tracing::info!(?format, "playback started");
        Ok(Self {
            _stream: stream,
            format,
            mixer,
            stats,
        })
    }

    /// A new input for one remote stream's decoded audio.
    pub fn add_stream(&self) -> MixInput {
        self.mixer.add_input()
    }

    /// A handle that can add streams from elsewhere (cheap to clone, `Send`).
    pub fn mixer(&self) -> Mixer {
        self.mixer.clone()
    }

    /// The format the device runs at.
    pub fn format(&self) -> DeviceFormat {
        self.format
    }

    /// 48 kHz samples taken from the mix so far (shows the device is consuming).
    pub fn samples_played(&self) -> u64 {
        self.stats.played.load(Ordering::Relaxed)
    }

    /// Of those, samples played as silence because no stream had audio queued.
    pub fn underrun_samples(&self) -> u64 {
        self.stats.underrun.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for Playback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Playback")
            .field("format", &self.format)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn build_stream<T>(
    device: &cpal::Device,
    config: cpal::StreamConfig,
    mut renderer: Renderer,
) -> Result<cpal::Stream, AudioError>
where
    T: SizedSample + FromSample<f32>,
{
    Ok(device.build_output_stream::<T, _, _>(
        config,
        move |data: &mut [T], _: &cpal::OutputCallbackInfo| renderer.render(data),
        |error| tracing::warn!(%error, "playback stream error"),
        None,
    )?)
}

/// The callback's state; every buffer is allocated before the stream starts.
pub(crate) struct Renderer {
    output: MixOutput,
    channels: usize,
    resampler: LinearResampler,
    chunk: [i16; AUDIO_FRAME_SAMPLES],
    /// Next unread sample in `chunk`; `chunk.len()` means "pull a new chunk".
    position: usize,
    stats: Arc<PlaybackStats>,
    /// Where each chunk also goes, for echo cancellation.
    far_end: Option<FarEndTap>,
}

impl Renderer {
    fn new(output: MixOutput, format: DeviceFormat, stats: Arc<PlaybackStats>) -> Self {
        Self {
            output,
            channels: usize::from(format.channels.max(1)),
            resampler: LinearResampler::new(SAMPLE_RATE, format.sample_rate),
            chunk: [0; AUDIO_FRAME_SAMPLES],
            position: AUDIO_FRAME_SAMPLES,
            stats,
            far_end: None,
        }
    }

    /// Fills one callback's interleaved device buffer.
    fn render<T>(&mut self, data: &mut [T])
    where
        T: Sample + FromSample<f32>,
    {
        let Self {
            output,
            channels,
            resampler,
            chunk,
            position,
            stats,
            far_end,
        } = self;
        // The largest f32 that converts to i16::MAX without overflowing 24/32-bit types.
        const MAX: f32 = 32_767.0 / 32_768.0;
        for device_frame in data.chunks_exact_mut(*channels) {
            let sample = resampler.pull(|| {
                if *position == chunk.len() {
                    let silent = output.pull(chunk);
                    stats
                        .played
                        .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    stats.underrun.fetch_add(silent as u64, Ordering::Relaxed);
                    if let Some(tap) = far_end {
                        tap.push(chunk);
                    }
                    *position = 0;
                }
                let value = chunk[*position];
                *position += 1;
                f32::from(value) / 32_768.0
            });
            device_frame.fill(T::from_sample(sample.clamp(-1.0, MAX)));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::audio::tone::{FrameDuration, ToneSource, dominant_tone, tone_level};
    use cpal::SampleFormat;

    #[test]
    fn renders_the_mix_to_every_channel_at_the_device_rate() {
        let (mixer, output) = mix_buffer();
        let stats = Arc::new(PlaybackStats::default());
        let format = DeviceFormat {
            sample_rate: 44_100,
            channels: 2,
            sample_format: SampleFormat::F32,
        };
        let mut renderer = Renderer::new(output, format, Arc::clone(&stats));

        let mut tone = ToneSource::new(440.0, 0.5, FrameDuration::Ms10);
        let mut input = mixer.add_input();
        // 400 ms of stereo at 44.1 kHz in 10 ms callbacks, with the remote stream
        // delivering 10 ms between callbacks as a decoder would in realtime.
        let mut device = vec![0.0f32; 2 * 17_640];
        for callback in device.chunks_mut(2 * 441) {
            input.push(&tone.next_frame());
            renderer.render(callback);
        }
        let left: Vec<f32> = device.iter().step_by(2).copied().collect();
        let right: Vec<f32> = device.iter().skip(1).step_by(2).copied().collect();
        assert_eq!(left, right);

        // Back to 48 kHz i16 to measure the tone after the 40 ms lead-in.
        let mut back = LinearResampler::new(44_100, 48_000);
        let mut measured = Vec::new();
        for &s in &left[2_000..] {
            back.push(s, |y| measured.push(y.to_sample::<i16>()));
        }
        assert_eq!(
            dominant_tone(&measured, &[300.0, 440.0, 1000.0], SAMPLE_RATE),
            Some(440.0)
        );
        let level = tone_level(&measured, 440.0, SAMPLE_RATE);
        assert!((0.45..0.55).contains(&level), "level {level}");
        assert_eq!(stats.underrun.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn hands_what_it_plays_to_the_echo_canceller() {
        let (mixer, output) = mix_buffer();
        let stats = Arc::new(PlaybackStats::default());
        let format = DeviceFormat {
            sample_rate: 48_000,
            channels: 2,
            sample_format: SampleFormat::I16,
        };
        let mut renderer = Renderer::new(output, format, Arc::clone(&stats));
        let (tap, far_end) = crate::audio::apm::far_end_channel();
        renderer.far_end = Some(tap);
        let mut input = mixer.add_input();
        input.push(&[1_000; 480]);
        // 40 ms of lead-in silence, then the 10 ms pushed: five 10 ms chunks pulled.
        let mut device = vec![0i16; 2 * 2_400];
        renderer.render(&mut device);
        let handed: Vec<[i16; 480]> = std::iter::from_fn(|| far_end.try_next()).collect();
        assert_eq!(handed.len(), 5);
        assert!(handed[..4].iter().all(|f| f.iter().all(|&s| s == 0)));
        assert!(handed[4].iter().all(|&s| s == 1_000));
        // And plays it (the resampler, even at 48 kHz, a couple of samples late).
        assert!(device[2 * 1_922..].iter().all(|&s| s == 1_000));
    }

    #[test]
    fn plays_silence_on_underrun() {
        let (_mixer, output) = mix_buffer();
        let stats = Arc::new(PlaybackStats::default());
        let format = DeviceFormat {
            sample_rate: 48_000,
            channels: 1,
            sample_format: SampleFormat::I16,
        };
        let mut renderer = Renderer::new(output, format, Arc::clone(&stats));
        let mut device = vec![123i16; 960];
        renderer.render(&mut device);
        assert!(device.iter().all(|&s| s == 0));
        assert_eq!(stats.underrun.load(Ordering::Relaxed), 960);
    }
}
