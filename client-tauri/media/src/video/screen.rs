//! Screen capture for screen sharing: the monitors and windows there are to share (with
//! small thumbnails for a picker), and frames of one of them as [`I420Frame`]s for VP8.
//!
//! Capture goes through the `xcap` crate: on X11 an XCB `GetImage` of the root window (a
//! monitor's rectangle of it) or of one window; on Wayland xcap asks the desktop's
//! screenshot portal, GNOME Shell or wlroots' screencopy for each picture (see the README
//! for what was tried where). Windows are listed from the window manager's
//! `_NET_CLIENT_LIST_STACKING`, so without a window manager (a bare Xvfb) there are none.
//!
//! Frames are cropped to even sizes (VP8's 4:2:0 chroma needs it for a clean edge), halved
//! until they fit the capture's cap (1920x1080 for calls) and converted RGBA -> I420 with
//! BT.601 studio range, as [`super::convert`] does, by the `yuv` crate's SIMD code.

use super::frame::I420Frame;
use image::RgbaImage;
use std::io::Cursor;
use yuv::{YuvConversionMode, YuvPlanarImageMut, YuvRange, YuvStandardMatrix};

/// What can be shared: a whole monitor or one window, by xcap's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScreenTarget {
    Monitor(u32),
    Window(u32),
}

/// `monitor:ID` or `window:ID`, as [`std::str::FromStr`] reads it back.
impl std::fmt::Display for ScreenTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Monitor(id) => write!(f, "monitor:{id}"),
            Self::Window(id) => write!(f, "window:{id}"),
        }
    }
}

impl std::str::FromStr for ScreenTarget {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, id) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?}: expected monitor:ID or window:ID"))?;
        let id = id.parse::<u32>().map_err(|e| format!("{s:?}: {e}"))?;
        match kind {
            "monitor" => Ok(Self::Monitor(id)),
            "window" => Ok(Self::Window(id)),
            _ => Err(format!("{s:?}: expected monitor:ID or window:ID")),
        }
    }
}

/// One monitor or window on offer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScreenSource {
    pub target: ScreenTarget,
    /// The monitor's name or the window's title (its app's name when it has none).
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub primary: bool,
}

/// Why screen capture failed.
#[derive(Debug, thiserror::Error)]
pub enum ScreenError {
    #[error("screen capture: {0}")]
    Capture(#[from] xcap::XCapError),
    #[error("no {0} to capture (it closed, or the display changed)")]
    NotFound(ScreenTarget),
    #[error("{0} has nothing to capture (minimized or zero-sized)")]
    Empty(ScreenTarget),
    #[error("pixel conversion: {0}")]
    Convert(String),
    #[error("thumbnail encoding: {0}")]
    Encode(#[from] image::ImageError),
}

/// Every monitor, then every window that is not minimized, in the window manager's
/// stacking order. A window that vanishes while being listed is left out.
pub fn list_sources() -> Result<Vec<ScreenSource>, ScreenError> {
    let mut sources = Vec::new();
    for m in xcap::Monitor::all()? {
        sources.push(ScreenSource {
            target: ScreenTarget::Monitor(m.id()?),
            name: m.friendly_name().or_else(|_| m.name())?,
            width: m.width()?,
            height: m.height()?,
            primary: m.is_primary().unwrap_or(false),
        });
    }
    // No window manager: no window list. That is not an error for a picker of screens.
    let windows = match xcap::Window::all() {
        Ok(w) => w,
        Err(e) => {
            tracing::debug!(error = %e, "no window list (no window manager?)");
            Vec::new()
        }
    };
    for w in windows {
        let Ok(id) = w.id() else { continue };
        if w.is_minimized().unwrap_or(false) {
            continue;
        }
        let (Ok(width), Ok(height)) = (w.width(), w.height()) else {
            continue;
        };
        if width < 2 || height < 2 {
            continue;
        }
        let title = w.title().unwrap_or_default();
        let name = if title.trim().is_empty() {
            w.app_name().unwrap_or_default()
        } else {
            title
        };
        sources.push(ScreenSource {
            target: ScreenTarget::Window(id),
            name,
            width,
            height,
            primary: false,
        });
    }
    Ok(sources)
}

/// A picture of `target` scaled to fit `max_width` x `max_height` (never up), as PNG.
pub fn thumbnail_png(
    target: ScreenTarget,
    max_width: u32,
    max_height: u32,
) -> Result<Vec<u8>, ScreenError> {
    let picture = grab(target)?;
    let (w, h) = fit(picture.width(), picture.height(), max_width, max_height);
    let small = image::imageops::thumbnail(&picture, w, h);
    let mut png = Vec::new();
    small.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)?;
    Ok(png)
}

/// `width` x `height` scaled down (never up) to fit the box, aspect kept, at least 1x1.
fn fit(width: u32, height: u32, max_width: u32, max_height: u32) -> (u32, u32) {
    if width <= max_width && height <= max_height {
        return (width.max(1), height.max(1));
    }
    let scale = f64::min(
        f64::from(max_width) / f64::from(width),
        f64::from(max_height) / f64::from(height),
    );
    (
        ((f64::from(width) * scale) as u32).max(1),
        ((f64::from(height) * scale) as u32).max(1),
    )
}

/// One RGBA picture of a monitor or a window.
fn grab(target: ScreenTarget) -> Result<RgbaImage, ScreenError> {
    match target {
        ScreenTarget::Monitor(id) => {
            let monitor = xcap::Monitor::all()?
                .into_iter()
                .find(|m| m.id().is_ok_and(|m| m == id))
                .ok_or(ScreenError::NotFound(target))?;
            Ok(monitor.capture_image()?)
        }
        ScreenTarget::Window(id) => {
            let window = xcap::Window::all()?
                .into_iter()
                .find(|w| w.id().is_ok_and(|w| w == id))
                .ok_or(ScreenError::NotFound(target))?;
            Ok(window.capture_image()?)
        }
    }
}

/// Frames of one monitor or window, each captured when asked for (the caller paces).
#[derive(Debug)]
pub struct ScreenCapture {
    target: ScreenTarget,
    max_width: u32,
    max_height: u32,
}

impl ScreenCapture {
    /// Checks that `target` exists and can be captured, and keeps frames within
    /// `max_width` x `max_height` (halving larger ones).
    pub fn open(
        target: ScreenTarget,
        max_width: u32,
        max_height: u32,
    ) -> Result<Self, ScreenError> {
        let capture = Self {
            target,
            max_width: max_width.max(2),
            max_height: max_height.max(2),
        };
        capture.capture()?;
        Ok(capture)
    }

    pub fn target(&self) -> ScreenTarget {
        self.target
    }

    /// Captures the target now. A window that changes size gives frames of its new size.
    pub fn capture(&self) -> Result<I420Frame, ScreenError> {
        let picture = grab(self.target)?;
        let mut frame = rgba_to_i420(&picture, self.target)?;
        while frame.width() > self.max_width || frame.height() > self.max_height {
            frame = frame.downscale_half();
        }
        Ok(frame)
    }
}

/// RGBA -> I420 (BT.601 studio range), cropped to even width and height.
fn rgba_to_i420(picture: &RgbaImage, target: ScreenTarget) -> Result<I420Frame, ScreenError> {
    let (width, height) = (picture.width() & !1, picture.height() & !1);
    if width == 0 || height == 0 {
        return Err(ScreenError::Empty(target));
    }
    let mut frame = I420Frame::black(width, height, crate::unix_time_us())
        .map_err(|e| ScreenError::Convert(e.to_string()))?;
    let chroma_width = frame.chroma_width();
    let (y, u, v) = frame.planes_mut();
    let mut planar = YuvPlanarImageMut {
        y_plane: yuv::BufferStoreMut::Borrowed(y),
        y_stride: width,
        u_plane: yuv::BufferStoreMut::Borrowed(u),
        u_stride: chroma_width,
        v_plane: yuv::BufferStoreMut::Borrowed(v),
        v_stride: chroma_width,
        width,
        height,
    };
    // The source rows keep their full stride; the odd last column (if any) is skipped.
    let stride = picture.width() * 4;
    let rows = picture.as_raw().len().min((stride * height) as usize);
    yuv::rgba_to_yuv420(
        &mut planar,
        &picture.as_raw()[..rows],
        stride,
        YuvRange::Limited,
        YuvStandardMatrix::Bt601,
        YuvConversionMode::Balanced,
    )
    .map_err(|e| ScreenError::Convert(e.to_string()))?;
    Ok(frame)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn targets_read_back_what_they_print() {
        for t in [ScreenTarget::Monitor(60), ScreenTarget::Window(4_194_305)] {
            assert_eq!(t.to_string().parse::<ScreenTarget>(), Ok(t));
        }
        assert!("monitor".parse::<ScreenTarget>().is_err());
        assert!("tab:3".parse::<ScreenTarget>().is_err());
        assert!("window:-1".parse::<ScreenTarget>().is_err());
    }

    #[test]
    fn thumbnails_fit_their_box_and_keep_the_aspect() {
        assert_eq!(fit(1920, 1080, 320, 180), (320, 180));
        assert_eq!(fit(1080, 1920, 320, 180), (101, 180));
        assert_eq!(fit(200, 100, 320, 180), (200, 100));
    }

    #[test]
    fn rgba_becomes_even_sized_i420_with_the_colours_of_convert() {
        // 5x3 of pure red: cropped to 4x2, every Y and chroma sample red's.
        let red = RgbaImage::from_pixel(5, 3, image::Rgba([255, 0, 0, 255]));
        let frame = rgba_to_i420(&red, ScreenTarget::Monitor(1)).unwrap();
        assert_eq!((frame.width(), frame.height()), (4, 2));
        let (y, u, v) = super::super::convert::rgb_to_yuv(255, 0, 0);
        for (plane, want) in [(frame.y(), y), (frame.u(), u), (frame.v(), v)] {
            assert!(
                plane.iter().all(|s| s.abs_diff(want) <= 2),
                "{plane:?} vs {want}"
            );
        }
    }
}
