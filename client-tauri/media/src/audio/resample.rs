//! A streaming linear-interpolation resampler for the device edges of the pipeline.
//!
//! Why linear and hand-written: it runs inside realtime audio callbacks, one sample at a
//! time, with no buffers, no allocation and no added latency, which a windowed-sinc
//! resampler such as rubato (block-based, with its own buffers and delay) does not give.
//! It only runs when a device refuses 48 kHz, which is rare (ALSA's `plug`, PulseAudio,
//! PipeWire, CoreAudio and WASAPI all convert for us). Its weakness, some aliasing near
//! Nyquist, matters little for speech that Opus's VOIP mode band-limits anyway.

/// Converts a stream from one rate to another, either pushed (capture) or pulled
/// (playback).
#[derive(Debug, Clone)]
pub(crate) struct LinearResampler {
    /// Input samples consumed per output sample.
    step: f64,
    /// Position of the next output sample between `prev` (0.0) and `cur` (1.0).
    t: f64,
    prev: f32,
    cur: f32,
}

impl LinearResampler {
    /// A resampler from `from_rate` Hz to `to_rate` Hz (both must be non-zero).
    pub(crate) fn new(from_rate: u32, to_rate: u32) -> Self {
        Self {
            step: f64::from(from_rate.max(1)) / f64::from(to_rate.max(1)),
            t: 0.0,
            prev: 0.0,
            cur: 0.0,
        }
    }

    /// Feeds one input sample and emits the output samples that are now due (zero or more).
    pub(crate) fn push(&mut self, sample: f32, mut emit: impl FnMut(f32)) {
        self.prev = self.cur;
        self.cur = sample;
        while self.t < 1.0 {
            emit(self.interpolate());
            self.t += self.step;
        }
        self.t -= 1.0;
    }

    /// Produces one output sample, pulling as many input samples as that needs.
    pub(crate) fn pull(&mut self, mut next_input: impl FnMut() -> f32) -> f32 {
        while self.t >= 1.0 {
            self.prev = self.cur;
            self.cur = next_input();
            self.t -= 1.0;
        }
        let out = self.interpolate();
        self.t += self.step;
        out
    }

    fn interpolate(&self) -> f32 {
        self.prev + (self.cur - self.prev) * self.t as f32
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn same_rate_is_identity_with_one_sample_delay() {
        let mut resampler = LinearResampler::new(48_000, 48_000);
        let mut out = Vec::new();
        for x in [0.1, 0.2, 0.3] {
            resampler.push(x, |y| out.push(y));
        }
        assert_eq!(out, [0.0, 0.1, 0.2]);
    }

    #[test]
    fn push_and_pull_produce_the_rate_ratio() {
        let mut up = LinearResampler::new(44_100, 48_000);
        let mut count = 0;
        for _ in 0..44_100 {
            up.push(0.5, |_| count += 1);
        }
        assert!((47_999..=48_001).contains(&count), "{count}");

        let mut down = LinearResampler::new(48_000, 16_000);
        let mut pulled = 0;
        for _ in 0..16_000 {
            down.pull(|| {
                pulled += 1;
                0.5
            });
        }
        assert!((47_997..=48_000).contains(&pulled), "{pulled}");
    }

    #[test]
    fn interpolates_between_samples() {
        let mut resampler = LinearResampler::new(1, 2);
        let mut out = Vec::new();
        for x in [1.0, 3.0] {
            resampler.push(x, |y| out.push(y));
        }
        assert_eq!(out, [0.0, 0.5, 1.0, 2.0]);
    }
}
