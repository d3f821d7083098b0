//! Synthetic video source: a moving test pattern that carries a machine-readable marker.
//!
//! Each frame shows colour bars, a scrolling luma ramp and a bouncing textured box, so an
//! encoder has real detail and real motion to work on. The top-left corner holds a marker
//! band: a 20 x 6 grid of 16 x 16 px black or white luma cells (320 x 96 px) that encodes
//! a 32-bit frame counter, a 64-bit capture timestamp, a CRC-8 over both and a fixed sync
//! word. Cells are aligned to VP8's 16 x 16 macroblocks and the reader only looks at the
//! inner 8 x 8 pixels of each, so the band survives lossy compression at modest bitrates;
//! the sync word and the CRC let [`read_marker`] tell a valid read from garbage (a camera
//! frame, a half-decoded frame).
//!
//! Tests use it to prove that frames arrive intact and in order, and to measure
//! glass-to-glass latency on a loopback call.

use std::time::Duration;

use super::convert::rgb_to_yuv;
use super::frame::{FrameError, I420Frame};

/// Smallest frame the pattern can be rendered into.
pub const MIN_WIDTH: u32 = 320;
/// Smallest frame height the pattern can be rendered into.
pub const MIN_HEIGHT: u32 = 240;

/// Side of one marker cell in pixels: one VP8 macroblock.
const CELL: usize = 16;
const COLUMNS: usize = 20;
const ROWS: usize = 6;
/// Height of the marker band in pixels.
const BAND_HEIGHT: usize = CELL * ROWS;
/// Marker bits: counter (32) + timestamp (64) + CRC-8 (8) + sync word (16) = 120 cells.
const SYNC: u16 = 0xA5C3;
/// Cells whose mean luma is this close to mid-grey are unreadable, so the whole read fails
/// instead of guessing a bit.
const AMBIGUITY: f64 = 30.0;
const BLACK: u8 = 16;
const WHITE: u8 = 235;

/// What the marker band carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// Frame number since the source started (wraps at `u32::MAX`).
    pub counter: u32,
    /// Capture time in microseconds since the Unix epoch.
    pub timestamp_us: u64,
}

/// Why a pattern could not be set up.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PatternError {
    /// The pattern and its marker need at least [`MIN_WIDTH`] x [`MIN_HEIGHT`].
    #[error("test pattern needs at least {MIN_WIDTH}x{MIN_HEIGHT}, got {width}x{height}")]
    TooSmall {
        /// Requested width.
        width: u32,
        /// Requested height.
        height: u32,
    },
    /// Frame rate must be at least 1.
    #[error("frame rate must be at least 1 fps")]
    ZeroFps,
    /// The size is not a valid frame size at all.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// Renders the test pattern for `marker` at any size of at least [`MIN_WIDTH`] x
/// [`MIN_HEIGHT`].
pub fn render_pattern(width: u32, height: u32, marker: Marker) -> Result<I420Frame, PatternError> {
    if width < MIN_WIDTH || height < MIN_HEIGHT {
        return Err(PatternError::TooSmall { width, height });
    }
    let mut frame = I420Frame::black(width, height, marker.timestamp_us)?;
    draw(&mut frame, marker);
    Ok(frame)
}

/// Reads the marker back from a frame, or `None` if the band is missing, unreadable or
/// fails its checks.
pub fn read_marker(frame: &I420Frame) -> Option<Marker> {
    let width = frame.width() as usize;
    if width < CELL * COLUMNS || (frame.height() as usize) < BAND_HEIGHT {
        return None;
    }
    let mut bits = [false; COLUMNS * ROWS];
    for (index, bit) in bits.iter_mut().enumerate() {
        let (x0, y0) = ((index % COLUMNS) * CELL, (index / COLUMNS) * CELL);
        // The inner 8 x 8 is untouched by VP8's loop filter at the cell edges.
        let sum: u32 = (y0 + 4..y0 + 12)
            .flat_map(|y| &frame.y()[y * width + x0 + 4..y * width + x0 + 12])
            .map(|&p| u32::from(p))
            .sum();
        let mean = f64::from(sum) / 64.0;
        let mid = (f64::from(BLACK) + f64::from(WHITE)) / 2.0;
        if (mean - mid).abs() < AMBIGUITY {
            return None;
        }
        *bit = mean > mid;
    }
    let counter = bits_to_u64(&bits[0..32]) as u32;
    let timestamp_us = bits_to_u64(&bits[32..96]);
    let crc = bits_to_u64(&bits[96..104]) as u8;
    let sync = bits_to_u64(&bits[104..120]) as u16;
    let marker = Marker {
        counter,
        timestamp_us,
    };
    (sync == SYNC && crc == crc8(&payload(marker))).then_some(marker)
}

/// A paced-by-the-caller source of pattern frames with an increasing counter.
///
/// The source does not sleep: the caller ticks it every [`frame_interval`], the same way a
/// camera callback would deliver frames.
///
/// [`frame_interval`]: SyntheticVideoSource::frame_interval
#[derive(Debug, Clone)]
pub struct SyntheticVideoSource {
    blank: I420Frame,
    fps: u32,
    counter: u32,
}

impl SyntheticVideoSource {
    /// A source of `width` x `height` frames meant to be pulled `fps` times a second.
    pub fn new(width: u32, height: u32, fps: u32) -> Result<Self, PatternError> {
        if fps == 0 {
            return Err(PatternError::ZeroFps);
        }
        // Render once to validate the size; later frames reuse the allocation shape.
        let blank = render_pattern(
            width,
            height,
            Marker {
                counter: 0,
                timestamp_us: 0,
            },
        )?;
        Ok(Self {
            blank,
            fps,
            counter: 0,
        })
    }

    /// Draws later frames at `width` x `height` (at least [`MIN_WIDTH`] x [`MIN_HEIGHT`], so
    /// the marker stays readable), keeping the counter running: what a sender that lowers
    /// its resolution under congestion does, where a camera's frames would be scaled.
    pub fn resize(&mut self, width: u32, height: u32) -> Result<(), PatternError> {
        self.blank = render_pattern(
            width,
            height,
            Marker {
                counter: 0,
                timestamp_us: 0,
            },
        )?;
        Ok(())
    }

    /// Time between two frames at the configured rate.
    pub fn frame_interval(&self) -> Duration {
        Duration::from_secs(1) / self.fps
    }

    /// Frame rate the source was configured for.
    pub fn fps(&self) -> u32 {
        self.fps
    }

    /// The next frame, stamped with the current wall-clock time.
    pub fn next_frame(&mut self) -> I420Frame {
        self.next_frame_at(crate::unix_time_us())
    }

    /// The next frame, stamped with `timestamp_us` (for deterministic tests and for
    /// callers that already hold a capture time).
    pub fn next_frame_at(&mut self, timestamp_us: u64) -> I420Frame {
        let mut frame = self.blank.clone();
        frame.set_timestamp_us(timestamp_us);
        draw(
            &mut frame,
            Marker {
                counter: self.counter,
                timestamp_us,
            },
        );
        self.counter = self.counter.wrapping_add(1);
        frame
    }
}

/// Draws background, moving box and marker band. The frame is at least MIN_WIDTH x
/// MIN_HEIGHT (checked by the callers).
fn draw(frame: &mut I420Frame, marker: Marker) {
    let (width, height) = (frame.width() as usize, frame.height() as usize);
    let chroma_width = frame.chroma_width() as usize;
    let scene = Scene::new(width, height, marker.counter);
    let bits = marker_bits(marker);
    let (y_plane, u_plane, v_plane) = frame.planes_mut();

    for (y, row) in y_plane.chunks_exact_mut(width).enumerate() {
        for (x, luma) in row.iter_mut().enumerate() {
            *luma = if x < CELL * COLUMNS && y < BAND_HEIGHT {
                if bits[(y / CELL) * COLUMNS + x / CELL] {
                    WHITE
                } else {
                    BLACK
                }
            } else {
                scene.yuv(x, y).0
            };
        }
    }
    // Chroma is sampled at the top-left pixel of each 2 x 2 block; every edge in the scene
    // sits on even coordinates, so this is exact.
    for (i, (u, v)) in u_plane.iter_mut().zip(v_plane.iter_mut()).enumerate() {
        let (x, y) = ((i % chroma_width) * 2, (i / chroma_width) * 2);
        (*u, *v) = if x < CELL * COLUMNS && y < BAND_HEIGHT {
            (128, 128)
        } else {
            let (_, pu, pv) = scene.yuv(x, y);
            (pu, pv)
        };
    }
}

/// The moving part of the pattern for one frame.
struct Scene {
    width: usize,
    height: usize,
    counter: usize,
    box_size: usize,
    box_x: usize,
    box_y: usize,
}

/// 75 % colour bars: white, yellow, cyan, green, magenta, red, blue.
const BARS: [(u8, u8, u8); 7] = [
    (191, 191, 191),
    (191, 191, 0),
    (0, 191, 191),
    (0, 191, 0),
    (191, 0, 191),
    (191, 0, 0),
    (0, 0, 191),
];

impl Scene {
    fn new(width: usize, height: usize, counter: u32) -> Self {
        let counter = counter as usize;
        let box_size = (height / 6) & !1;
        // The box bounces below the marker band so it never covers it.
        let top = BAND_HEIGHT + 8;
        let box_x = triangle(counter * 6, width - box_size) & !1;
        let box_y = top + (triangle(counter * 4, height - box_size - top) & !1);
        Self {
            width,
            height,
            counter,
            box_size,
            box_x,
            box_y,
        }
    }

    fn yuv(&self, x: usize, y: usize) -> (u8, u8, u8) {
        if (self.box_x..self.box_x + self.box_size).contains(&x)
            && (self.box_y..self.box_y + self.box_size).contains(&y)
        {
            // A checkerboard gives motion search something to lock onto.
            let checker = ((x - self.box_x) / 8 + (y - self.box_y) / 8).is_multiple_of(2);
            return if checker {
                rgb_to_yuv(255, 128, 0)
            } else {
                rgb_to_yuv(20, 20, 90)
            };
        }
        if y < self.height * 2 / 3 {
            let bar = (x * BARS.len() / self.width).min(BARS.len() - 1);
            let (r, g, b) = BARS[bar];
            rgb_to_yuv(r, g, b)
        } else {
            // A ramp that scrolls left four pixels per frame.
            let ramp = ((x + self.counter * 4) % self.width) * 219 / self.width;
            (16 + ramp as u8, 128, 128)
        }
    }
}

/// Position on a 0..=max..=0 triangle wave, for bouncing motion.
fn triangle(t: usize, max: usize) -> usize {
    if max == 0 {
        return 0;
    }
    let phase = t % (2 * max);
    if phase <= max { phase } else { 2 * max - phase }
}

fn payload(marker: Marker) -> [u8; 12] {
    let mut bytes = [0u8; 12];
    bytes[..4].copy_from_slice(&marker.counter.to_be_bytes());
    bytes[4..].copy_from_slice(&marker.timestamp_us.to_be_bytes());
    bytes
}

fn marker_bits(marker: Marker) -> [bool; COLUMNS * ROWS] {
    let mut bits = [false; COLUMNS * ROWS];
    let fields = [
        (u64::from(marker.counter), 32),
        (marker.timestamp_us, 64),
        (u64::from(crc8(&payload(marker))), 8),
        (u64::from(SYNC), 16),
    ];
    let mut at = 0;
    for (value, width) in fields {
        for i in (0..width).rev() {
            bits[at] = (value >> i) & 1 == 1;
            at += 1;
        }
    }
    bits
}

fn bits_to_u64(bits: &[bool]) -> u64 {
    bits.iter().fold(0, |acc, &b| (acc << 1) | u64::from(b))
}

/// CRC-8 (polynomial 0x07, as in ATM HEC / SMBus). Ten lines: not worth a dependency.
fn crc8(bytes: &[u8]) -> u8 {
    let mut crc = 0u8;
    for &byte in bytes {
        crc ^= byte;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x07
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MARKER: Marker = Marker {
        counter: 0xDEAD_BEEF,
        timestamp_us: 1_763_700_000_123_456,
    };

    #[test]
    fn crc8_matches_the_standard_check_value() {
        // CRC-8/SMBUS check value for "123456789".
        assert_eq!(crc8(b"123456789"), 0xF4);
    }

    #[test]
    fn marker_round_trips_at_several_sizes() {
        for (w, h) in [(320, 240), (321, 241), (640, 480), (1280, 720)] {
            let frame = render_pattern(w, h, MARKER).unwrap();
            assert_eq!(read_marker(&frame), Some(MARKER), "{w}x{h}");
            assert_eq!(frame.timestamp_us(), MARKER.timestamp_us);
        }
        assert_eq!(
            render_pattern(319, 240, MARKER),
            Err(PatternError::TooSmall {
                width: 319,
                height: 240
            })
        );
    }

    #[test]
    fn corrupted_or_foreign_frames_read_as_none() {
        assert_eq!(read_marker(&I420Frame::black(640, 480, 0).unwrap()), None);

        // Flip one cell (the counter's lowest bit): the CRC no longer matches.
        let mut frame = render_pattern(640, 480, MARKER).unwrap();
        let (col, row) = (31 % COLUMNS, 31 / COLUMNS);
        let (y_plane, _, _) = frame.planes_mut();
        for y in row * CELL..(row + 1) * CELL {
            for p in &mut y_plane[y * 640 + col * CELL..y * 640 + (col + 1) * CELL] {
                *p = if *p == WHITE { BLACK } else { WHITE };
            }
        }
        assert_eq!(read_marker(&frame), None);

        // A mid-grey cell is ambiguous: refuse rather than guess.
        let mut frame = render_pattern(640, 480, MARKER).unwrap();
        for row in 4..12 {
            frame.planes_mut().0[row * 640 + 4..row * 640 + 12].fill(125);
        }
        assert_eq!(read_marker(&frame), None);
    }

    #[test]
    fn source_counts_frames_and_moves_the_box() {
        let mut source = SyntheticVideoSource::new(640, 480, 30).unwrap();
        assert_eq!(source.frame_interval(), Duration::from_nanos(33_333_333));
        let first = source.next_frame_at(1_000);
        let second = source.next_frame_at(34_333);
        assert_eq!(read_marker(&first).map(|m| m.counter), Some(0));
        assert_eq!(
            read_marker(&second),
            Some(Marker {
                counter: 1,
                timestamp_us: 34_333
            })
        );
        // Below the band, the picture changes between frames (motion for the encoder).
        let below_band = BAND_HEIGHT * 640;
        assert_ne!(first.y()[below_band..], second.y()[below_band..]);
        assert!(source.next_frame().timestamp_us() > 1_700_000_000_000_000);
        assert_eq!(
            SyntheticVideoSource::new(640, 480, 0).err(),
            Some(PatternError::ZeroFps)
        );
    }
}
