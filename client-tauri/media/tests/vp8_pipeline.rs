//! The video pipeline end to end: pattern source -> VP8 encoder -> packets -> VP8 decoder
//! -> marker reader, at the size and bitrates a call uses.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use confab_media::video::pattern::{Marker, SyntheticVideoSource, read_marker};
use confab_media::video::vp8::{Vp8Config, Vp8Decoder, Vp8Encoder};

const WIDTH: u32 = 640;
const HEIGHT: u32 = 480;
const FPS: u32 = 30;
const FRAMES: u32 = 90;
/// A plausible capture time (2025-11-21) so the 64-bit timestamp uses its high bits.
const START_US: u64 = 1_763_700_000_000_000;

/// Runs `FRAMES` frames through encoder and decoder and returns every marker read back.
fn run(bitrate_kbps: u32) -> Vec<Option<Marker>> {
    let mut source = SyntheticVideoSource::new(WIDTH, HEIGHT, FPS).unwrap();
    let mut encoder = Vp8Encoder::new(Vp8Config::new(WIDTH, HEIGHT, FPS, bitrate_kbps)).unwrap();
    let mut decoder = Vp8Decoder::new().unwrap();
    let interval_us = 1_000_000 / u64::from(FPS);
    let (mut encode_time, mut decode_time, mut bytes) = (Duration::ZERO, Duration::ZERO, 0);
    let mut markers = Vec::new();

    for n in 0..u64::from(FRAMES) {
        // Timestamps advance at the nominal rate, as a paced camera's would, so rate
        // control budgets bits for 30 fps even though the test runs faster than realtime.
        let frame = source.next_frame_at(START_US + n * interval_us);

        let started = Instant::now();
        let packet = encoder
            .encode(&frame)
            .unwrap()
            .expect("frame dropping is off");
        encode_time += started.elapsed();
        bytes += packet.data.len();
        assert_eq!(packet.is_keyframe, n == 0, "frame {n}");
        assert_eq!(packet.timestamp_us, frame.timestamp_us());

        let started = Instant::now();
        let decoded = decoder
            .decode(&packet.data, packet.timestamp_us)
            .unwrap()
            .expect("one picture per packet");
        decode_time += started.elapsed();
        assert_eq!((decoded.width(), decoded.height()), (WIDTH, HEIGHT));
        assert_eq!(decoded.timestamp_us(), frame.timestamp_us());
        markers.push(read_marker(&decoded));
    }

    let kbps = bytes as f64 * 8.0 / (f64::from(FRAMES) / f64::from(FPS)) / 1000.0;
    println!(
        "VP8 {WIDTH}x{HEIGHT} @ {bitrate_kbps} kbps target: {kbps:.0} kbps actual, \
         encode {} us/frame, decode {} us/frame",
        encode_time.as_micros() / u128::from(FRAMES),
        decode_time.as_micros() / u128::from(FRAMES),
    );
    markers
}

fn expected() -> Vec<Option<Marker>> {
    (0..FRAMES)
        .map(|n| {
            Some(Marker {
                counter: n,
                timestamp_us: START_US + u64::from(n) * 33_333,
            })
        })
        .collect()
}

#[test]
fn every_marker_survives_vp8_at_300_kbps() {
    assert_eq!(run(300), expected());
}

#[test]
fn every_marker_survives_vp8_at_800_kbps() {
    assert_eq!(run(800), expected());
}
