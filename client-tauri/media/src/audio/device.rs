//! Audio device discovery and stream configuration through cpal.

use cpal::traits::{DeviceTrait, HostTrait};
use cpal::{SampleFormat, SupportedStreamConfig, SupportedStreamConfigRange};

use super::SAMPLE_RATE;

/// Errors from audio devices.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// cpal (or the OS audio API under it) failed.
    #[error("audio backend: {0}")]
    Backend(#[from] cpal::Error),
    /// There is no default device in this direction.
    #[error("no default {0} device")]
    NoDefaultDevice(&'static str),
    /// No device has the given id.
    #[error("audio device {0:?} not found")]
    NotFound(String),
    /// The device offers no configuration we can stream with.
    #[error("the device offers no usable stream configuration")]
    NoUsableConfig,
    /// The device's sample format has no conversion here.
    #[error("sample format {0} is not supported")]
    UnsupportedFormat(SampleFormat),
}

/// A microphone or speaker found by [`list_input_devices`] or [`list_output_devices`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioDeviceInfo {
    /// Stable id (`host:device`) to pass to `MicCapture::start` or `Playback::start`.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Whether this is the system's default device for its direction.
    pub is_default: bool,
}

/// The format a device stream actually runs at (the pipeline converts to and from
/// 48 kHz mono around it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceFormat {
    /// Device sample rate in Hz.
    pub sample_rate: u32,
    /// Interleaved channels.
    pub channels: u16,
    /// Sample type of the device buffers.
    pub sample_format: SampleFormat,
}

impl From<&SupportedStreamConfig> for DeviceFormat {
    fn from(config: &SupportedStreamConfig) -> Self {
        Self {
            sample_rate: config.sample_rate(),
            channels: config.channels(),
            sample_format: config.sample_format(),
        }
    }
}

/// Lists microphones. A machine without audio hardware gives an empty list or an error,
/// depending on the backend.
pub fn list_input_devices() -> Result<Vec<AudioDeviceInfo>, AudioError> {
    list(Direction::Input)
}

/// Lists speakers and headphones.
pub fn list_output_devices() -> Result<Vec<AudioDeviceInfo>, AudioError> {
    list(Direction::Output)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Input,
    Output,
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Self::Input => "input",
            Self::Output => "output",
        }
    }
}

fn list(direction: Direction) -> Result<Vec<AudioDeviceInfo>, AudioError> {
    let host = cpal::default_host();
    let default_id = default_device(&host, direction).and_then(|device| device.id().ok());
    let devices: Vec<cpal::Device> = match direction {
        Direction::Input => host.input_devices()?.collect(),
        Direction::Output => host.output_devices()?.collect(),
    };
    Ok(devices
        .into_iter()
        .filter_map(|device| {
            // A device that vanished between listing and asking has no id: skip it.
            let id = device.id().ok()?;
            Some(AudioDeviceInfo {
                name: device
                    .description()
                    .map_or_else(|_| device.to_string(), |d| d.name().to_owned()),
                is_default: default_id.as_ref() == Some(&id),
                id: id.to_string(),
            })
        })
        .collect())
}

fn default_device(host: &cpal::Host, direction: Direction) -> Option<cpal::Device> {
    match direction {
        Direction::Input => host.default_input_device(),
        Direction::Output => host.default_output_device(),
    }
}

/// The device with `id`, or the default device when `id` is `None`.
pub(crate) fn open_device(
    id: Option<&str>,
    direction: Direction,
) -> Result<cpal::Device, AudioError> {
    let host = cpal::default_host();
    match id {
        None => {
            default_device(&host, direction).ok_or(AudioError::NoDefaultDevice(direction.name()))
        }
        Some(id) => {
            let parsed: cpal::DeviceId = id.parse()?;
            host.device_by_id(&parsed)
                .ok_or_else(|| AudioError::NotFound(id.to_owned()))
        }
    }
}

/// The stream configuration to open `device` with: [`pick_config`] over what it
/// supports, else its default.
pub(crate) fn choose_config(
    device: &cpal::Device,
    direction: Direction,
) -> Result<SupportedStreamConfig, AudioError> {
    let ranges: Vec<SupportedStreamConfigRange> = match direction {
        Direction::Input => device.supported_input_configs()?.collect(),
        Direction::Output => device.supported_output_configs()?.collect(),
    };
    if let Some(config) = pick_config(&ranges) {
        return Ok(config);
    }
    let config = match direction {
        Direction::Input => device.default_input_config()?,
        Direction::Output => device.default_output_config()?,
    };
    format_rank(config.sample_format())
        .map(|_| config)
        .ok_or(AudioError::NoUsableConfig)
}

/// Prefers, in order: a rate as close to 48 kHz as possible (so nothing is resampled),
/// the fewest channels (mono needs no downmix), then the cheapest sample format.
pub(crate) fn pick_config(ranges: &[SupportedStreamConfigRange]) -> Option<SupportedStreamConfig> {
    ranges
        .iter()
        .filter(|range| range.channels() > 0 && format_rank(range.sample_format()).is_some())
        .filter_map(|range| {
            let rate = SAMPLE_RATE
                .max(range.min_sample_rate())
                .min(range.max_sample_rate());
            range.try_with_sample_rate(rate)
        })
        .min_by_key(|config| {
            (
                config.sample_rate().abs_diff(SAMPLE_RATE),
                config.channels(),
                format_rank(config.sample_format()),
            )
        })
}

/// Sample formats we convert, best first; `None` for the ones we do not.
fn format_rank(format: SampleFormat) -> Option<u8> {
    Some(match format {
        SampleFormat::F32 => 0,
        SampleFormat::I16 => 1,
        SampleFormat::I32 => 2,
        SampleFormat::I24 => 3,
        SampleFormat::F64 => 4,
        SampleFormat::U16 => 5,
        SampleFormat::U8 => 6,
        SampleFormat::I8 => 7,
        SampleFormat::U32 => 8,
        _ => return None,
    })
}

/// Calls `$build::<T>($args)` with `T` the Rust type of `$format`, or returns
/// `Err(AudioError::UnsupportedFormat)`. Keeps the format list in one place for capture
/// and playback (it matches `format_rank`).
macro_rules! dispatch_sample_format {
    ($format:expr, $build:ident($($arg:expr),* $(,)?)) => {
        match $format {
            cpal::SampleFormat::F32 => $build::<f32>($($arg),*),
            cpal::SampleFormat::I16 => $build::<i16>($($arg),*),
            cpal::SampleFormat::I32 => $build::<i32>($($arg),*),
            cpal::SampleFormat::I24 => $build::<cpal::I24>($($arg),*),
            cpal::SampleFormat::F64 => $build::<f64>($($arg),*),
            cpal::SampleFormat::U16 => $build::<u16>($($arg),*),
            cpal::SampleFormat::U8 => $build::<u8>($($arg),*),
            cpal::SampleFormat::I8 => $build::<i8>($($arg),*),
            cpal::SampleFormat::U32 => $build::<u32>($($arg),*),
            other => Err($crate::audio::device::AudioError::UnsupportedFormat(other)),
        }
    };
}
pub(crate) use dispatch_sample_format;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use cpal::SupportedBufferSize;

    fn range(
        channels: u16,
        min: u32,
        max: u32,
        format: SampleFormat,
    ) -> SupportedStreamConfigRange {
        SupportedStreamConfigRange::new(channels, min, max, SupportedBufferSize::Unknown, format)
    }

    #[test]
    fn prefers_48k_then_mono_then_float() {
        let ranges = [
            range(2, 8_000, 192_000, SampleFormat::I16),
            range(1, 8_000, 192_000, SampleFormat::I16),
            range(1, 8_000, 192_000, SampleFormat::F32),
            range(1, 44_100, 44_100, SampleFormat::F32),
            range(1, 8_000, 192_000, SampleFormat::DsdU8),
        ];
        let config = pick_config(&ranges).unwrap();
        assert_eq!(
            DeviceFormat::from(&config),
            DeviceFormat {
                sample_rate: 48_000,
                channels: 1,
                sample_format: SampleFormat::F32
            }
        );
    }

    #[test]
    fn falls_back_to_the_nearest_rate_and_skips_unknown_formats() {
        let ranges = [
            range(2, 44_100, 44_100, SampleFormat::I16),
            range(2, 96_000, 96_000, SampleFormat::F32),
            range(1, 48_000, 48_000, SampleFormat::DsdU8),
        ];
        let config = pick_config(&ranges).unwrap();
        assert_eq!((config.sample_rate(), config.channels()), (44_100, 2));
        assert_eq!(pick_config(&[]), None);
    }
}
