//! Microphone capture and speaker playback through cpal on ALSA's `null` device.
//!
//! Machines without a sound card (CI, this VM) have no working ALSA default device. An
//! `.asoundrc` that routes `default` to the `null` plugin gives cpal a device that accepts
//! and produces audio, so the real stream code runs end to end. The `null` plugin has no
//! clock, though: it runs as fast as the CPU allows (measured here: about 360x realtime),
//! so this test checks framing, sequencing and that both streams run, not their pace.
//!
//! This file holds exactly one test on purpose: it points `HOME` at a temporary `.asoundrc`
//! before any other thread of this test binary exists, which is what makes changing the
//! environment sound (each integration test file is its own process).
#![allow(clippy::unwrap_used)]
#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use confab_media::audio::capture::MicCapture;
use confab_media::audio::device::{list_input_devices, list_output_devices};
use confab_media::audio::mix::PushOutcome;
use confab_media::audio::playback::Playback;
use confab_media::audio::tone::{FrameDuration, ToneSource};

#[test]
#[allow(unsafe_code)]
fn microphone_and_speaker_run_on_the_alsa_null_device() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join(".asoundrc"),
        "pcm.!default { type plug slave.pcm \"null\" }\n",
    )
    .unwrap();
    // SAFETY: this is the only test in this binary and it has not started any thread
    // yet, so nothing can read the environment concurrently.
    unsafe { std::env::set_var("HOME", home.path()) };

    // Enumeration works and finds the default devices.
    let inputs = list_input_devices().unwrap();
    let outputs = list_output_devices().unwrap();
    println!("inputs: {inputs:?}\noutputs: {outputs:?}");
    assert!(inputs.iter().any(|d| d.is_default), "{inputs:?}");
    assert!(outputs.iter().any(|d| d.is_default), "{outputs:?}");

    // The microphone delivers numbered 10 ms frames (silence, from the null device). The
    // unpaced device outruns this loop, so frames are dropped at the full channel and
    // `seq` has gaps, exactly as with a stalled encoder.
    let (capture, frames) = MicCapture::start(None, 50).unwrap();
    println!("capture format: {:?}", capture.format());
    let started = Instant::now();
    let mut seqs = Vec::new();
    while seqs.len() < 30 {
        let frame = frames
            .recv_timeout(Duration::from_secs(2))
            .expect("the null device keeps delivering");
        assert!(frame.samples.iter().all(|&s| s == 0));
        seqs.push(frame.seq);
    }
    let elapsed = started.elapsed();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    // The callback counts a frame just after sending it: once the next frame is here, the
    // count covers all 30.
    frames.recv_timeout(Duration::from_secs(2)).unwrap();
    assert!(capture.frames_sent() >= 30);
    println!(
        "30 capture frames in {elapsed:?}, {} dropped",
        capture.frames_dropped()
    );
    drop(capture);

    // Playback pulls the mix of a remote stream. The device consumes far faster than the
    // stream is fed, so each push finds the stream late and is re-placed ahead of the
    // playback position (never dropped), and most of what plays is underrun silence.
    let playback = Playback::start(None).unwrap();
    println!("playback format: {:?}", playback.format());
    let mut remote = playback.add_stream();
    let mut tone = ToneSource::new(440.0, 0.5, FrameDuration::Ms10);
    let mut outcomes = Vec::new();
    for _ in 0..10 {
        outcomes.push(remote.push(&tone.next_frame()));
        std::thread::sleep(Duration::from_millis(10));
    }
    let played = playback.samples_played();
    println!(
        "played {played} samples in 100 ms ({} as underrun silence)",
        playback.underrun_samples()
    );
    assert!(
        played >= 48_000 / 10,
        "the speaker stream stalled at {played}"
    );
    assert!(playback.underrun_samples() < played);
    assert!(
        outcomes.iter().all(|o| *o != PushOutcome::Dropped),
        "{outcomes:?}"
    );
}
