//! The raw video frame that flows between sources, codecs and sinks.

use std::fmt;

/// Largest width or height we accept. Well above any camera or screen we target, and small
/// enough that `width * height` can never overflow on any platform.
pub const MAX_DIMENSION: u32 = 16_384;

/// Why a frame could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// Width or height is zero or larger than [`MAX_DIMENSION`].
    #[error("frame size {width}x{height} is not supported")]
    BadSize {
        /// Requested width in pixels.
        width: u32,
        /// Requested height in pixels.
        height: u32,
    },
    /// A plane buffer does not hold exactly the bytes its dimensions need.
    #[error("plane {plane} holds {got} bytes, expected {expected}")]
    PlaneSize {
        /// `'Y'`, `'U'` or `'V'`.
        plane: char,
        /// Bytes given.
        got: usize,
        /// Bytes needed.
        expected: usize,
    },
}

/// An 8-bit YUV 4:2:0 frame with three tightly packed planes (stride == plane width).
///
/// I420 is what libvpx, libwebrtc and most camera converters speak natively, so keeping one
/// frame type end to end avoids conversions between every stage. Chroma planes are
/// `ceil(width / 2) x ceil(height / 2)`, so odd sizes are representable.
#[derive(Clone, PartialEq, Eq)]
pub struct I420Frame {
    width: u32,
    height: u32,
    timestamp_us: u64,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
}

impl I420Frame {
    /// A black frame (studio-range black: Y = 16, U = V = 128).
    pub fn black(width: u32, height: u32, timestamp_us: u64) -> Result<Self, FrameError> {
        check_size(width, height)?;
        let (luma, chroma) = plane_sizes(width, height);
        Ok(Self {
            width,
            height,
            timestamp_us,
            y: vec![16; luma],
            u: vec![128; chroma],
            v: vec![128; chroma],
        })
    }

    /// Builds a frame from three tightly packed planes, checking their sizes.
    pub fn from_planes(
        width: u32,
        height: u32,
        y: Vec<u8>,
        u: Vec<u8>,
        v: Vec<u8>,
        timestamp_us: u64,
    ) -> Result<Self, FrameError> {
        check_size(width, height)?;
        let (luma, chroma) = plane_sizes(width, height);
        for (plane, got, expected) in [
            ('Y', y.len(), luma),
            ('U', u.len(), chroma),
            ('V', v.len(), chroma),
        ] {
            if got != expected {
                return Err(FrameError::PlaneSize {
                    plane,
                    got,
                    expected,
                });
            }
        }
        Ok(Self {
            width,
            height,
            timestamp_us,
            y,
            u,
            v,
        })
    }

    /// Width of the luma plane in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height of the luma plane in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Width of each chroma plane: `ceil(width / 2)`.
    pub fn chroma_width(&self) -> u32 {
        self.width.div_ceil(2)
    }

    /// Height of each chroma plane: `ceil(height / 2)`.
    pub fn chroma_height(&self) -> u32 {
        self.height.div_ceil(2)
    }

    /// Capture time in microseconds since the Unix epoch.
    pub fn timestamp_us(&self) -> u64 {
        self.timestamp_us
    }

    /// Replaces the capture time (microseconds since the Unix epoch).
    pub fn set_timestamp_us(&mut self, timestamp_us: u64) {
        self.timestamp_us = timestamp_us;
    }

    /// The luma plane, `width * height` bytes, row after row.
    pub fn y(&self) -> &[u8] {
        &self.y
    }

    /// The U (Cb) plane, `chroma_width * chroma_height` bytes.
    pub fn u(&self) -> &[u8] {
        &self.u
    }

    /// The V (Cr) plane, `chroma_width * chroma_height` bytes.
    pub fn v(&self) -> &[u8] {
        &self.v
    }

    /// The frame at half the width and height (rounded down, at least 1), each pixel the
    /// mean of a 2 x 2 block: the cheap scaler for sending a camera at a lower resolution.
    pub fn downscale_half(&self) -> Self {
        let (w, h) = ((self.width / 2).max(1), (self.height / 2).max(1));
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let half = |plane: &[u8], src_w: u32, src_h: u32, dst_w: u32, dst_h: u32| {
            let (sw, sh) = (src_w as usize, src_h as usize);
            let mut out = Vec::with_capacity(dst_w as usize * dst_h as usize);
            for y in 0..dst_h as usize {
                let (y0, y1) = ((2 * y).min(sh - 1), (2 * y + 1).min(sh - 1));
                for x in 0..dst_w as usize {
                    let (x0, x1) = ((2 * x).min(sw - 1), (2 * x + 1).min(sw - 1));
                    let sum = u16::from(plane[y0 * sw + x0])
                        + u16::from(plane[y0 * sw + x1])
                        + u16::from(plane[y1 * sw + x0])
                        + u16::from(plane[y1 * sw + x1]);
                    out.push(((sum + 2) / 4) as u8);
                }
            }
            out
        };
        let (scw, sch) = (self.chroma_width(), self.chroma_height());
        Self {
            width: w,
            height: h,
            timestamp_us: self.timestamp_us,
            y: half(&self.y, self.width, self.height, w, h),
            u: half(&self.u, scw, sch, cw, ch),
            v: half(&self.v, scw, sch, cw, ch),
        }
    }

    /// All three planes, mutably, for sources that draw into a frame in place.
    pub fn planes_mut(&mut self) -> (&mut [u8], &mut [u8], &mut [u8]) {
        (&mut self.y, &mut self.u, &mut self.v)
    }
}

impl fmt::Debug for I420Frame {
    // The planes are hundreds of kilobytes: print the shape, not the pixels.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("I420Frame")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("timestamp_us", &self.timestamp_us)
            .finish_non_exhaustive()
    }
}

fn check_size(width: u32, height: u32) -> Result<(), FrameError> {
    if width == 0 || height == 0 || width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(FrameError::BadSize { width, height });
    }
    Ok(())
}

/// Bytes in the luma plane and in each chroma plane.
fn plane_sizes(width: u32, height: u32) -> (usize, usize) {
    let (w, h) = (width as usize, height as usize);
    (w * h, w.div_ceil(2) * h.div_ceil(2))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn odd_sizes_round_chroma_up() {
        let frame = I420Frame::black(5, 3, 7).unwrap();
        assert_eq!((frame.chroma_width(), frame.chroma_height()), (3, 2));
        assert_eq!(frame.y().len(), 15);
        assert_eq!(frame.u().len(), 6);
        assert_eq!(frame.timestamp_us(), 7);
    }

    #[test]
    fn downscaling_halves_and_averages() {
        let y: Vec<u8> = (0..16).map(|i| i * 10).collect();
        let frame = I420Frame::from_planes(4, 4, y, vec![100; 4], vec![200; 4], 9).unwrap();
        let half = frame.downscale_half();
        assert_eq!(
            (half.width(), half.height(), half.timestamp_us()),
            (2, 2, 9)
        );
        // Top-left block: 0, 10, 40, 50.
        assert_eq!(half.y(), &[25, 45, 105, 125]);
        assert_eq!((half.u(), half.v()), (&[100][..], &[200][..]));
        let odd = I420Frame::black(5, 3, 0).unwrap().downscale_half();
        assert_eq!((odd.width(), odd.height()), (2, 1));
        assert_eq!(odd.u().len(), 1);
    }

    #[test]
    fn from_planes_checks_sizes() {
        let err = I420Frame::from_planes(4, 4, vec![0; 16], vec![0; 4], vec![0; 3], 0);
        assert_eq!(
            err,
            Err(FrameError::PlaneSize {
                plane: 'V',
                got: 3,
                expected: 4
            })
        );
        assert!(I420Frame::black(0, 10, 0).is_err());
        assert!(I420Frame::black(MAX_DIMENSION + 1, 10, 0).is_err());
    }
}
