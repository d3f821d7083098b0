//! Echo cancellation without a sound card: the far end talks through a "room" into the
//! microphone, and libwebrtc's audio processing module has to take it out again.
//!
//! Speech comes from espeak-ng (two voices saying different things, generated at test
//! time). Each 10 ms, what the speaker plays goes through the real far-end channel
//! ([`FarEndTap`], as the playback callback hands it over) and the microphone frame is
//! that far end delayed by 40-120 ms, attenuated and smeared by a few reflections, plus a
//! little noise, plus (during double talk) the near-end talker. The story:
//!
//! 1. the far end talks alone for 10 s: after 2 s to converge, the echo must be at least
//!    20 dB down (ERLE, echo return loss enhancement), and with the canceller switched off
//!    it is not (so the figure measures the canceller, not the other stages);
//! 2. then both talk for 5 s: the near-end talker must come through (its level within a
//!    few dB of the clean voice, and the output must follow the clean voice, not the echo).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use confab_media::AUDIO_FRAME_SAMPLES;
use confab_media::audio::apm::{VoiceProcessing, VoiceProcessor, far_end_channel};

const RATE: usize = 48_000;
const MS: usize = RATE / 1000;

/// Far end alone from 0 to 10 s, both from 10 to 15 s.
const DOUBLE_TALK_START: usize = 10 * RATE;
const DOUBLE_TALK_END: usize = 15 * RATE;
/// ERLE is measured after this much single talk (the canceller converging).
const CONVERGED_AT: usize = 2 * RATE;

const FAR_TEXT: &str = "The quarterly report is almost finished. We moved the launch to the \
    second week of March, because the supplier needs more time for the new batteries. \
    Marketing wants a shorter video, about two minutes, and the support team asked for a \
    list of known problems before the release. Please send me your numbers by Thursday, \
    and tell me if anything is blocking you.";
const NEAR_TEXT: &str = "Sorry to interrupt, but I think the battery tests failed again \
    yesterday evening.";

/// Speaks `text` with espeak-ng and returns it as 48 kHz samples, peak-normalised to `peak`.
fn speech(dir: &Path, name: &str, voice: &str, text: &str, peak: f32) -> Vec<f32> {
    let wav = dir.join(format!("{name}.wav"));
    let status = Command::new("espeak-ng")
        .args(["-v", voice, "-s", "165", "-w"])
        .arg(&wav)
        .arg(text)
        .status()
        .expect(
            "espeak-ng makes the test's speech: apt-get install espeak-ng (scripts/test.sh does)",
        );
    assert!(status.success(), "espeak-ng failed");
    let mut reader = hound::WavReader::open(&wav).unwrap();
    let spec = reader.spec();
    assert_eq!((spec.channels, spec.bits_per_sample), (1, 16));
    let samples: Vec<f32> = reader
        .samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32_768.0)
        .collect();
    let resampled = resample(&samples, spec.sample_rate as usize, RATE);
    let max = resampled.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    resampled.iter().map(|s| s * peak / max).collect()
}

/// Linear interpolation: enough to bring espeak-ng's 22.05 kHz up to 48 kHz for a test.
fn resample(input: &[f32], from: usize, to: usize) -> Vec<f32> {
    let len = input.len() * to / from;
    (0..len)
        .map(|i| {
            let t = i as f64 * from as f64 / to as f64;
            let j = t as usize;
            let frac = (t - j as f64) as f32;
            let a = input[j.min(input.len() - 1)];
            let b = input[(j + 1).min(input.len() - 1)];
            a + (b - a) * frac
        })
        .collect()
}

/// The room between speaker and microphone: the direct path after `delay_ms`, attenuated
/// by 10 dB, and three weaker reflections.
fn room_echo(far: &[f32], delay_ms: usize) -> Vec<f32> {
    let taps = [(0, 0.32f32), (3, -0.12), (7, 0.06), (15, 0.03)];
    (0..far.len())
        .map(|i| {
            taps.iter()
                .filter_map(|&(extra_ms, gain)| {
                    let lag = (delay_ms + extra_ms) * MS;
                    (i >= lag).then(|| gain * far[i - lag])
                })
                .sum()
        })
        .collect()
}

/// Quiet white noise (about -60 dBFS), the same every run.
fn noise(len: usize) -> Vec<f32> {
    let mut state: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (f32::from((state >> 16) as u16) / 65_535.0 - 0.5) * 0.003
        })
        .collect()
}

fn to_i16(x: f32) -> i16 {
    (x.clamp(-1.0, 1.0) * 32_767.0) as i16
}

fn energy(x: &[f32]) -> f64 {
    x.iter().map(|&s| f64::from(s) * f64::from(s)).sum()
}

fn db(ratio: f64) -> f64 {
    10.0 * ratio.log10()
}

/// The normalised cross-correlation of `a` with `b` delayed by `lag` samples.
fn correlation_at(a: &[f32], b: &[f32], lag: usize) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for i in lag..a.len().min(b.len()) {
        let (x, y) = (f64::from(a[i]), f64::from(b[i - lag]));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    ab / (aa * bb).sqrt().max(f64::MIN_POSITIVE)
}

/// The largest normalised cross-correlation of `a` with `b` delayed by 0-20 ms, and that
/// delay (the APM delays its output by about 14 ms at 48 kHz).
fn best_correlation(a: &[f32], b: &[f32]) -> (f64, usize) {
    (0..=20 * MS)
        .map(|lag| (correlation_at(a, b, lag), lag))
        .fold((f64::MIN, 0), |best, c| if c.0 > best.0 { c } else { best })
}

/// One run of the story through the APM with `settings`: what the microphone picked up
/// (echo + noise + near end) and what came out, as floats.
struct Run {
    mic: Vec<f32>,
    out: Vec<f32>,
}

fn run(far: &[f32], echo: &[f32], near: &[f32], settings: VoiceProcessing) -> Run {
    let (tap, far_end) = far_end_channel();
    let mut processor = VoiceProcessor::new(settings, far_end).unwrap();
    let noise = noise(far.len());
    let frames = far.len() / AUDIO_FRAME_SAMPLES;
    let mut mic = Vec::with_capacity(frames * AUDIO_FRAME_SAMPLES);
    let mut out = Vec::with_capacity(frames * AUDIO_FRAME_SAMPLES);
    let mut played = [0i16; AUDIO_FRAME_SAMPLES];
    let mut frame = [0i16; AUDIO_FRAME_SAMPLES];
    for f in 0..frames {
        let range = f * AUDIO_FRAME_SAMPLES..(f + 1) * AUDIO_FRAME_SAMPLES;
        // The speaker plays this 10 ms now (and the playback callback hands it over)...
        for (p, &s) in played.iter_mut().zip(&far[range.clone()]) {
            *p = to_i16(s);
        }
        tap.push(&played);
        // ...and the microphone hears the room's echo of what played before, and the
        // near-end talker during double talk.
        for (i, m) in range.clone().zip(frame.iter_mut()) {
            let near = if (DOUBLE_TALK_START..DOUBLE_TALK_END).contains(&i) {
                near.get(i - DOUBLE_TALK_START).copied().unwrap_or(0.0)
            } else {
                0.0
            };
            *m = to_i16(echo[i] + noise[i] + near);
        }
        mic.extend(frame.iter().map(|&s| f32::from(s) / 32_768.0));
        processor.process(&mut frame);
        out.extend(frame.iter().map(|&s| f32::from(s) / 32_768.0));
    }
    Run { mic, out }
}

#[test]
fn the_far_ends_echo_is_removed_and_the_near_end_talker_still_comes_through() {
    let dir = tempfile::tempdir().unwrap();
    // The far end: a man reading a long message; the near end: a woman interrupting.
    let mut far = speech(dir.path(), "far", "en-us", FAR_TEXT, 0.5);
    let near = speech(dir.path(), "near", "en+f3", NEAR_TEXT, 0.5);
    assert!(
        far.len() > DOUBLE_TALK_END,
        "the far end talks for {} s",
        far.len() / RATE
    );
    assert!(near.len() > 3 * RATE && near.len() < DOUBLE_TALK_END - DOUBLE_TALK_START);
    far.truncate(DOUBLE_TALK_END);
    let single = CONVERGED_AT..DOUBLE_TALK_START;
    let double = DOUBLE_TALK_START..DOUBLE_TALK_START + near.len();

    for delay_ms in [40, 80, 120] {
        let echo = room_echo(&far, delay_ms);

        // 1. The far end alone, voice processing as calls run it (everything on).
        let on = run(&far, &echo, &near, VoiceProcessing::ON);
        let erle = db(energy(&on.mic[single.clone()]) / energy(&on.out[single.clone()]));
        // The same without the canceller (noise suppression and gain control still on).
        let without = run(
            &far,
            &echo,
            &near,
            VoiceProcessing {
                echo_cancellation: false,
                ..VoiceProcessing::ON
            },
        );
        let erle_without =
            db(energy(&without.mic[single.clone()]) / energy(&without.out[single.clone()]));
        // And the canceller alone (noise suppression and gain control off).
        let alone = run(
            &far,
            &echo,
            &near,
            VoiceProcessing {
                echo_cancellation: true,
                ..VoiceProcessing::OFF
            },
        );
        let erle_alone =
            db(energy(&alone.mic[single.clone()]) / energy(&alone.out[single.clone()]));
        println!(
            "echo delay {delay_ms} ms: ERLE {erle:.1} dB with everything on, \
             {erle_alone:.1} dB with echo cancellation alone, {erle_without:.1} dB without it"
        );
        assert!(
            erle >= 20.0,
            "echo delayed {delay_ms} ms: only {erle:.1} dB of echo removed"
        );
        assert!(
            erle_alone >= 20.0,
            "echo delayed {delay_ms} ms: the canceller alone removed only {erle_alone:.1} dB"
        );
        assert!(
            erle_without < 6.0,
            "without the canceller the echo should stay: {erle_without:.1} dB"
        );

        // 2. Double talk: the near-end voice survives. Its level within 6 dB of the clean
        //    voice (gain control may move it), and the output follows it, not the echo.
        let clean = &near[..double.len()];
        let level = db(energy(&on.out[double.clone()]) / energy(clean));
        let (follows_near, lag) = best_correlation(&on.out[double.clone()], clean);
        let follows_echo = correlation_at(&on.out[double.clone()], &echo[double.clone()], lag);
        println!(
            "  double talk: near-end level {level:+.1} dB against the clean voice, \
             correlation {follows_near:.2} with it, {follows_echo:.2} with the echo"
        );
        assert!(
            level > -6.0 && level < 6.0,
            "the near-end talker is {level:+.1} dB off during double talk"
        );
        assert!(
            follows_near > 0.6 && follows_near > 3.0 * follows_echo.abs(),
            "the output follows the near end {follows_near:.2}, the echo {follows_echo:.2}"
        );
    }
}
