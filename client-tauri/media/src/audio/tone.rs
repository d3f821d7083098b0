//! Synthetic audio: a sine tone source and a Goertzel detector to find it again.
//!
//! Tests send a tone through a pipeline (Opus, a network, a mixer) and then check with
//! [`dominant_tone`] that the tone at the right frequency is what came out.

use std::f64::consts::TAU;

use super::SAMPLE_RATE;

/// Length of the frames a [`ToneSource`] produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameDuration {
    /// 10 ms: 480 samples, the microphone's frame.
    Ms10,
    /// 20 ms: 960 samples, one Opus packet.
    Ms20,
}

impl FrameDuration {
    /// Samples per frame at 48 kHz.
    pub fn samples(self) -> usize {
        match self {
            Self::Ms10 => 480,
            Self::Ms20 => 960,
        }
    }
}

/// A continuous 48 kHz mono sine tone, cut into frames with no phase jumps between them.
#[derive(Debug, Clone)]
pub struct ToneSource {
    phase: f64,
    step: f64,
    amplitude: f64,
    duration: FrameDuration,
}

impl ToneSource {
    /// A tone at `freq_hz` (clamped to 0..24 kHz) with peak `amplitude` as a fraction of
    /// full scale (clamped to 0..=1).
    pub fn new(freq_hz: f64, amplitude: f64, duration: FrameDuration) -> Self {
        let nyquist = f64::from(SAMPLE_RATE) / 2.0;
        Self {
            phase: 0.0,
            step: TAU * freq_hz.clamp(0.0, nyquist) / f64::from(SAMPLE_RATE),
            amplitude: amplitude.clamp(0.0, 1.0) * f64::from(i16::MAX),
            duration,
        }
    }

    /// Fills `out` with the next samples of the tone (any length, no allocation).
    pub fn fill(&mut self, out: &mut [i16]) {
        for sample in out {
            *sample = (self.phase.sin() * self.amplitude).round() as i16;
            // Keep the phase small so precision does not decay over a long run.
            self.phase = (self.phase + self.step) % TAU;
        }
    }

    /// The next frame of the configured duration.
    pub fn next_frame(&mut self) -> Vec<i16> {
        let mut frame = vec![0; self.duration.samples()];
        self.fill(&mut frame);
        frame
    }
}

/// Amplitude of the `freq_hz` component of `samples`, as a fraction of full scale: a
/// full-scale sine at that frequency reads about 1.0, silence 0.0.
///
/// A Goertzel filter (one DFT bin, any frequency) over a Hann-windowed block, so a
/// neighbouring tone leaks little into the measured one.
pub fn tone_level(samples: &[i16], freq_hz: f64, sample_rate: u32) -> f64 {
    let n = samples.len();
    if n < 2 || !(0.0..f64::from(sample_rate) / 2.0).contains(&freq_hz) {
        return 0.0;
    }
    let coefficient = 2.0 * (TAU * freq_hz / f64::from(sample_rate)).cos();
    let (mut s1, mut s2, mut window_sum) = (0.0f64, 0.0f64, 0.0f64);
    for (i, &x) in samples.iter().enumerate() {
        let window = 0.5 - 0.5 * (TAU * i as f64 / (n - 1) as f64).cos();
        window_sum += window;
        let s = f64::from(x) * window + coefficient * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = (s1 * s1 + s2 * s2 - coefficient * s1 * s2).max(0.0);
    // A sine of amplitude A gives |X| = A * sum(window) / 2.
    2.0 * power.sqrt() / window_sum / f64::from(i16::MAX)
}

/// The candidate frequency with the highest [`tone_level`] in `samples`, or `None` if
/// there are no candidates.
pub fn dominant_tone(samples: &[i16], candidates: &[f64], sample_rate: u32) -> Option<f64> {
    candidates
        .iter()
        .copied()
        .map(|freq| (freq, tone_level(samples, freq, sample_rate)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(freq, _)| freq)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn goertzel_measures_the_tone_it_is_tuned_to() {
        let mut source = ToneSource::new(1000.0, 0.5, FrameDuration::Ms20);
        let frame = source.next_frame();
        assert_eq!(frame.len(), 960);
        let level = tone_level(&frame, 1000.0, SAMPLE_RATE);
        assert!((level - 0.5).abs() < 0.02, "level {level}");
        assert!(tone_level(&frame, 1300.0, SAMPLE_RATE) < 0.01);
        assert_eq!(tone_level(&[0; 960], 1000.0, SAMPLE_RATE), 0.0);
        assert_eq!(
            dominant_tone(&frame, &[440.0, 1000.0, 2500.0], SAMPLE_RATE),
            Some(1000.0)
        );
        assert_eq!(dominant_tone(&frame, &[], SAMPLE_RATE), None);
    }

    #[test]
    fn frames_join_without_phase_jumps() {
        let mut split = ToneSource::new(440.0, 0.8, FrameDuration::Ms10);
        let mut whole = ToneSource::new(440.0, 0.8, FrameDuration::Ms20);
        let mut joined = split.next_frame();
        joined.extend(split.next_frame());
        assert_eq!(joined, whole.next_frame());
    }
}
