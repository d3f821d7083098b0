//! Pixel format conversions into [`I420Frame`] (what cameras give -> what VP8 takes).
//!
//! All conversions use BT.601 studio range: VP8 carries no colour metadata and both
//! libwebrtc and browsers assume BT.601 for it, so anything else would shift colours.

use super::frame::{FrameError, I420Frame};

/// Why a buffer could not be converted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConvertError {
    /// The buffer is shorter than its format and size require.
    #[error("{format} buffer for {width}x{height} needs {expected} bytes, got {got}")]
    ShortBuffer {
        /// Source pixel format name.
        format: &'static str,
        /// Frame width.
        width: u32,
        /// Frame height.
        height: u32,
        /// Bytes needed.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// Packed 4:2:2 formats store two pixels per sample pair, so the width must be even.
    #[error("YUYV needs an even width, got {0}")]
    OddWidth(u32),
    /// The size is not a valid frame size.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// Converts one RGB pixel to BT.601 studio-range Y, U, V (integer form used by libyuv).
pub fn rgb_to_yuv(r: u8, g: u8, b: u8) -> (u8, u8, u8) {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    let y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16;
    let u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
    let v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
    (clamp_u8(y), clamp_u8(u), clamp_u8(v))
}

/// Converts packed RGB888 (R, G, B, R, G, B, ...) to I420, averaging each 2x2 block's chroma.
pub fn rgb_to_i420(
    rgb: &[u8],
    width: u32,
    height: u32,
    timestamp_us: u64,
) -> Result<I420Frame, ConvertError> {
    let mut frame = I420Frame::black(width, height, timestamp_us)?;
    let (w, h) = (width as usize, height as usize);
    check_len("RGB", rgb, w * h * 3, width, height)?;
    let cw = frame.chroma_width() as usize;
    let (y_plane, u_plane, v_plane) = frame.planes_mut();
    for (row, y_row) in y_plane.chunks_exact_mut(w).enumerate() {
        for (col, y) in y_row.iter_mut().enumerate() {
            let p = (row * w + col) * 3;
            *y = rgb_to_yuv(rgb[p], rgb[p + 1], rgb[p + 2]).0;
        }
    }
    for (i, (u, v)) in u_plane.iter_mut().zip(v_plane.iter_mut()).enumerate() {
        let (cx, cy) = (i % cw, i / cw);
        let (mut su, mut sv, mut n) = (0u32, 0u32, 0u32);
        for row in 2 * cy..(2 * cy + 2).min(h) {
            for col in 2 * cx..(2 * cx + 2).min(w) {
                let p = (row * w + col) * 3;
                let (_, pu, pv) = rgb_to_yuv(rgb[p], rgb[p + 1], rgb[p + 2]);
                su += u32::from(pu);
                sv += u32::from(pv);
                n += 1;
            }
        }
        *u = avg(su, n);
        *v = avg(sv, n);
    }
    Ok(frame)
}

/// Converts packed YUYV 4:2:2 (Y0 U Y1 V per pixel pair) to I420 by averaging chroma of
/// each pair of rows.
pub fn yuyv_to_i420(
    yuyv: &[u8],
    width: u32,
    height: u32,
    timestamp_us: u64,
) -> Result<I420Frame, ConvertError> {
    if !width.is_multiple_of(2) {
        return Err(ConvertError::OddWidth(width));
    }
    let mut frame = I420Frame::black(width, height, timestamp_us)?;
    let (w, h) = (width as usize, height as usize);
    check_len("YUYV", yuyv, w * h * 2, width, height)?;
    let cw = frame.chroma_width() as usize;
    let (y_plane, u_plane, v_plane) = frame.planes_mut();
    for (y, pair) in y_plane.chunks_exact_mut(2).zip(yuyv.chunks_exact(4)) {
        y[0] = pair[0];
        y[1] = pair[2];
    }
    for (i, (u, v)) in u_plane.iter_mut().zip(v_plane.iter_mut()).enumerate() {
        let (cx, cy) = (i % cw, i / cw);
        let (mut su, mut sv, mut n) = (0u32, 0u32, 0u32);
        for row in 2 * cy..(2 * cy + 2).min(h) {
            let p = row * w * 2 + cx * 4;
            su += u32::from(yuyv[p + 1]);
            sv += u32::from(yuyv[p + 3]);
            n += 1;
        }
        *u = avg(su, n);
        *v = avg(sv, n);
    }
    Ok(frame)
}

/// Converts NV12 (a Y plane, then one plane of interleaved U, V at half resolution) to I420.
pub fn nv12_to_i420(
    nv12: &[u8],
    width: u32,
    height: u32,
    timestamp_us: u64,
) -> Result<I420Frame, ConvertError> {
    let mut frame = I420Frame::black(width, height, timestamp_us)?;
    let luma = width as usize * height as usize;
    let chroma = frame.chroma_width() as usize * frame.chroma_height() as usize;
    check_len("NV12", nv12, luma + 2 * chroma, width, height)?;
    let (y_plane, u_plane, v_plane) = frame.planes_mut();
    y_plane.copy_from_slice(&nv12[..luma]);
    let uv = &nv12[luma..luma + 2 * chroma];
    for ((u, v), pair) in u_plane
        .iter_mut()
        .zip(v_plane.iter_mut())
        .zip(uv.chunks_exact(2))
    {
        *u = pair[0];
        *v = pair[1];
    }
    Ok(frame)
}

fn check_len(
    format: &'static str,
    buf: &[u8],
    expected: usize,
    width: u32,
    height: u32,
) -> Result<(), ConvertError> {
    // Longer is fine: some drivers pad the end of the buffer.
    if buf.len() < expected {
        return Err(ConvertError::ShortBuffer {
            format,
            width,
            height,
            expected,
            got: buf.len(),
        });
    }
    Ok(())
}

fn clamp_u8(x: i32) -> u8 {
    x.clamp(0, 255) as u8
}

fn avg(sum: u32, n: u32) -> u8 {
    // n is 1..=4 and each term is <= 255, so the rounded mean fits in a u8.
    ((sum + n / 2) / n.max(1)) as u8
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn primary_colours_match_bt601() {
        assert_eq!(rgb_to_yuv(0, 0, 0), (16, 128, 128));
        assert_eq!(rgb_to_yuv(255, 255, 255), (235, 128, 128));
        // Red: Y 82, Cb 90, Cr 240 in BT.601 studio range.
        assert_eq!(rgb_to_yuv(255, 0, 0), (82, 90, 240));
    }

    #[test]
    fn rgb_frame_converts_per_pixel_and_per_block() {
        // 2x2 block: left column red, right column blue.
        let rgb = [255, 0, 0, 0, 0, 255, 255, 0, 0, 0, 0, 255];
        let frame = rgb_to_i420(&rgb, 2, 2, 5).unwrap();
        let (red, blue) = (rgb_to_yuv(255, 0, 0), rgb_to_yuv(0, 0, 255));
        assert_eq!(frame.y(), &[red.0, blue.0, red.0, blue.0]);
        assert_eq!(
            frame.u(),
            &[avg(u32::from(red.1) * 2 + u32::from(blue.1) * 2, 4)]
        );
        assert_eq!(frame.timestamp_us(), 5);
    }

    #[test]
    fn yuyv_and_nv12_round_trip_an_i420_frame() {
        let (w, h) = (6u32, 4u32);
        let y: Vec<u8> = (0..w * h).map(|i| (i * 7) as u8).collect();
        let u: Vec<u8> = (0..(w / 2) * (h / 2)).map(|i| 100 + i as u8).collect();
        let v: Vec<u8> = (0..(w / 2) * (h / 2)).map(|i| 200 - i as u8).collect();
        let original = I420Frame::from_planes(w, h, y, u, v, 9).unwrap();

        // Build YUYV by repeating each chroma row for both luma rows it covers.
        let mut yuyv = Vec::new();
        for row in 0..h as usize {
            for pair in 0..(w / 2) as usize {
                let c = (row / 2) * (w / 2) as usize + pair;
                let l = row * w as usize + pair * 2;
                yuyv.extend([
                    original.y()[l],
                    original.u()[c],
                    original.y()[l + 1],
                    original.v()[c],
                ]);
            }
        }
        assert_eq!(yuyv_to_i420(&yuyv, w, h, 9).unwrap(), original);

        let mut nv12 = original.y().to_vec();
        for (u, v) in original.u().iter().zip(original.v()) {
            nv12.extend([*u, *v]);
        }
        assert_eq!(nv12_to_i420(&nv12, w, h, 9).unwrap(), original);
    }

    #[test]
    fn short_buffers_and_odd_yuyv_are_errors() {
        assert!(matches!(
            nv12_to_i420(&[0; 10], 4, 4, 0),
            Err(ConvertError::ShortBuffer { expected: 24, .. })
        ));
        assert_eq!(
            yuyv_to_i420(&[0; 30], 3, 2, 0),
            Err(ConvertError::OddWidth(3))
        );
    }
}
