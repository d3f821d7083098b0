//! Camera capture through nokhwa (Video4Linux, AVFoundation or Media Foundation).
//!
//! [`list_cameras`] enumerates devices, [`Camera::open`] picks the mode closest to what
//! the call wants and [`Camera::capture`] returns each frame as an [`I420Frame`], whatever
//! the camera delivers (YUYV, NV12, MJPEG or raw RGB).
//!
//! `nokhwa::Camera::frame` blocks until the camera delivers, so run a camera on its own
//! thread and hand frames to the encoder through a bounded channel that drops the oldest.

use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType,
    Resolution,
};

use super::convert::{ConvertError, nv12_to_i420, rgb_to_i420, yuyv_to_i420};
use super::frame::I420Frame;

/// Errors from camera enumeration and capture.
#[derive(Debug, thiserror::Error)]
pub enum CameraError {
    /// nokhwa (or the OS camera API under it) failed.
    #[error("camera: {0}")]
    Backend(#[from] nokhwa::NokhwaError),
    /// The camera offers no mode in a pixel format we can convert.
    #[error("camera offers no usable mode (YUYV, NV12, MJPEG or RGB)")]
    NoUsableMode,
    /// A captured buffer could not be converted to I420.
    #[error(transparent)]
    Convert(#[from] ConvertError),
}

/// A camera found by [`list_cameras`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraInfo {
    /// Index to pass to [`Camera::open`].
    pub index: u32,
    /// Human-readable name.
    pub name: String,
    /// Backend-specific description (driver, bus).
    pub description: String,
}

/// Pixel formats we know how to turn into I420, in order of preference: uncompressed first
/// (no decode cost), then MJPEG (what most USB cameras need for 720p30 and above).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PixelFormat {
    /// Semi-planar 4:2:0.
    Nv12,
    /// Packed 4:2:2.
    Yuyv,
    /// Packed 8-bit RGB.
    Rgb,
    /// Motion JPEG, decoded to RGB by nokhwa (mozjpeg) and then converted.
    Mjpeg,
}

/// One capture mode a camera offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CameraMode {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Pixel format of the delivered buffers.
    pub format: PixelFormat,
}

/// The mode a caller would like; [`choose_mode`] finds the closest one offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureRequest {
    /// Desired width.
    pub width: u32,
    /// Desired height.
    pub height: u32,
    /// Desired frame rate.
    pub fps: u32,
}

/// Picks the offered mode closest to `request`: nearest size first (squared distance of
/// width and height), then nearest frame rate, then the cheapest pixel format.
///
/// Hand-written because nokhwa's `RequestedFormatType::Closest` requires an exact
/// resolution match before it compares frame rates.
pub fn choose_mode(modes: &[CameraMode], request: CaptureRequest) -> Option<CameraMode> {
    modes.iter().copied().min_by_key(|mode| {
        let dw = i64::from(mode.width) - i64::from(request.width);
        let dh = i64::from(mode.height) - i64::from(request.height);
        (
            dw * dw + dh * dh,
            mode.fps.abs_diff(request.fps),
            mode.format,
        )
    })
}

/// Lists the cameras on this machine. An empty list (no camera, or a VM) is not an error.
pub fn list_cameras() -> Result<Vec<CameraInfo>, CameraError> {
    let cameras = nokhwa::query(ApiBackend::Auto)?;
    Ok(cameras
        .into_iter()
        .filter_map(|info| {
            // String indices are IP cameras, which the native backends never return.
            let index = info.index().as_index().ok()?;
            Some(CameraInfo {
                index,
                name: info.human_name(),
                description: info.description().to_owned(),
            })
        })
        .collect())
}

/// An open camera streaming in one [`CameraMode`].
pub struct Camera {
    inner: nokhwa::Camera,
    mode: CameraMode,
}

impl Camera {
    /// Opens camera `index` in the mode closest to `request` and starts streaming.
    pub fn open(index: u32, request: CaptureRequest) -> Result<Self, CameraError> {
        // Open with any convertible format first: nokhwa needs an open device to list the
        // modes, and only then can we choose among all of them.
        let mut inner = nokhwa::Camera::new(
            CameraIndex::Index(index),
            RequestedFormat::with_formats(RequestedFormatType::None, CONVERTIBLE),
        )?;
        let modes: Vec<CameraMode> = inner
            .compatible_camera_formats()?
            .into_iter()
            .filter_map(mode_from_nokhwa)
            .collect();
        let mode = choose_mode(&modes, request).ok_or(CameraError::NoUsableMode)?;
        let exact = CameraFormat::new(
            Resolution::new(mode.width, mode.height),
            frame_format(mode.format),
            mode.fps,
        );
        inner.set_camera_requset(RequestedFormat::with_formats(
            RequestedFormatType::Exact(exact),
            CONVERTIBLE,
        ))?;
        inner.open_stream()?;
        tracing::info!(index, ?mode, "camera opened");
        Ok(Self { inner, mode })
    }

    /// The mode the camera streams in.
    pub fn mode(&self) -> CameraMode {
        self.mode
    }

    /// Waits for the next frame and converts it to I420, stamped with the wall-clock time
    /// it was received (microseconds since the Unix epoch).
    pub fn capture(&mut self) -> Result<I420Frame, CameraError> {
        let buffer = self.inner.frame()?;
        let timestamp_us = crate::unix_time_us();
        let resolution = buffer.resolution();
        let (width, height) = (resolution.width(), resolution.height());
        let data = buffer.buffer();
        let frame = match buffer.source_frame_format() {
            FrameFormat::YUYV => yuyv_to_i420(data, width, height, timestamp_us)?,
            FrameFormat::NV12 => nv12_to_i420(data, width, height, timestamp_us)?,
            FrameFormat::RAWRGB => rgb_to_i420(data, width, height, timestamp_us)?,
            FrameFormat::MJPEG => {
                let rgb = nokhwa::utils::mjpeg_to_rgb(data, false)?;
                rgb_to_i420(&rgb, width, height, timestamp_us)?
            }
            // We never ask for these (see CONVERTIBLE), so the backend should not send them.
            FrameFormat::GRAY | FrameFormat::RAWBGR => return Err(CameraError::NoUsableMode),
        };
        Ok(frame)
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        if let Err(error) = self.inner.stop_stream() {
            tracing::warn!(%error, "could not stop the camera stream");
        }
    }
}

impl std::fmt::Debug for Camera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Camera")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

const CONVERTIBLE: &[FrameFormat] = &[
    FrameFormat::NV12,
    FrameFormat::YUYV,
    FrameFormat::RAWRGB,
    FrameFormat::MJPEG,
];

fn mode_from_nokhwa(format: CameraFormat) -> Option<CameraMode> {
    let pixel = match format.format() {
        FrameFormat::NV12 => PixelFormat::Nv12,
        FrameFormat::YUYV => PixelFormat::Yuyv,
        FrameFormat::RAWRGB => PixelFormat::Rgb,
        FrameFormat::MJPEG => PixelFormat::Mjpeg,
        FrameFormat::GRAY | FrameFormat::RAWBGR => return None,
    };
    Some(CameraMode {
        width: format.width(),
        height: format.height(),
        fps: format.frame_rate(),
        format: pixel,
    })
}

fn frame_format(format: PixelFormat) -> FrameFormat {
    match format {
        PixelFormat::Nv12 => FrameFormat::NV12,
        PixelFormat::Yuyv => FrameFormat::YUYV,
        PixelFormat::Rgb => FrameFormat::RAWRGB,
        PixelFormat::Mjpeg => FrameFormat::MJPEG,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn mode(width: u32, height: u32, fps: u32, format: PixelFormat) -> CameraMode {
        CameraMode {
            width,
            height,
            fps,
            format,
        }
    }

    #[test]
    fn chooses_nearest_size_then_fps_then_cheapest_format() {
        let modes = [
            mode(1280, 720, 30, PixelFormat::Mjpeg),
            mode(1280, 720, 10, PixelFormat::Yuyv),
            mode(640, 480, 15, PixelFormat::Yuyv),
            mode(640, 480, 30, PixelFormat::Mjpeg),
            mode(640, 480, 30, PixelFormat::Yuyv),
            mode(320, 240, 30, PixelFormat::Yuyv),
        ];
        let want = |width, height, fps| CaptureRequest { width, height, fps };
        assert_eq!(
            choose_mode(&modes, want(640, 480, 30)),
            Some(mode(640, 480, 30, PixelFormat::Yuyv))
        );
        assert_eq!(
            choose_mode(&modes, want(1280, 720, 30)),
            Some(mode(1280, 720, 30, PixelFormat::Mjpeg))
        );
        // No exact size: 800x600 is nearer 640x480 than 1280x720.
        assert_eq!(
            choose_mode(&modes, want(800, 600, 24)),
            Some(mode(640, 480, 30, PixelFormat::Yuyv))
        );
        assert_eq!(choose_mode(&[], want(640, 480, 30)), None);
    }

    #[test]
    fn enumeration_does_not_fail_without_cameras() {
        let cameras = list_cameras().expect("enumeration must not fail");
        // Machines without a video device (CI, this VM) see an empty list, not an error.
        if !std::path::Path::new("/dev/video0").exists() {
            assert!(cameras.is_empty(), "{cameras:?}");
        }
    }
}
