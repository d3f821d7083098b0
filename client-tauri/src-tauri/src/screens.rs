//! The screen-share picker's data: every monitor and window with a small thumbnail.

use crate::error::{AppError, DeviceKind};
use base64::Engine as _;
use confab_core::call::screen::{list_sources, thumbnail_png};
use confab_core::call::{ScreenSource, ScreenTarget};
use serde::Serialize;
use specta::Type;

/// Thumbnails fit this box (device pixels; the picker shows them at half that).
const THUMB_WIDTH: u32 = 320;
const THUMB_HEIGHT: u32 = 180;

/// One monitor or window the user may share.
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ScreenView {
    /// What `share_screen` takes: `monitor:<id>` or `window:<id>`.
    pub id: String,
    pub kind: ScreenKind,
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub primary: bool,
    /// A `data:image/png;base64,...` picture of it; `None` when it could not be taken.
    pub thumbnail: Option<String>,
}

#[derive(Clone, Copy, Debug, Serialize, Type, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum ScreenKind {
    Monitor,
    Window,
}

impl ScreenView {
    /// Lists and photographs everything on offer. Blocking: call it off the async threads.
    pub fn list_all() -> Result<Vec<Self>, AppError> {
        let sources = list_sources().map_err(|e| AppError::device(DeviceKind::Other, e))?;
        Ok(sources.into_iter().map(Self::from_source).collect())
    }

    fn from_source(s: ScreenSource) -> Self {
        let thumbnail = match thumbnail_png(s.target, THUMB_WIDTH, THUMB_HEIGHT) {
            Ok(png) => Some(format!(
                "data:image/png;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(png)
            )),
            Err(e) => {
                tracing::debug!(error = %e, target = %s.target, "no thumbnail");
                None
            }
        };
        Self {
            id: s.target.to_string(),
            kind: match s.target {
                ScreenTarget::Monitor(_) => ScreenKind::Monitor,
                ScreenTarget::Window(_) => ScreenKind::Window,
            },
            name: s.name,
            width: s.width,
            height: s.height,
            primary: s.primary,
            thumbnail,
        }
    }
}
