//! Video for tiles that decode it in the webview (remote tiles and the self-view in a
//! call): hand-overs to the media state's `WebviewVideo` (`frames.rs`).

use super::Result;
use crate::AppState;
use crate::frames::FrameBytes;
use tauri::State;
use tauri::ipc::Channel;

/// Pushes `source`'s (`"local"`, a participant id, or `screen:<participant id>`) VP8
/// frames to `channel` from its next keyframe on, each a 48-byte header plus the frame
/// as an `ArrayBuffer` (see `frames.rs`). Fails when no call runs or decoding in the
/// window is turned off: the tile then pulls RGBA frames with `next_frame`.
#[tauri::command]
#[specta::specta]
pub async fn watch_video(
    state: State<'_, AppState>,
    source: String,
    channel: Channel<FrameBytes>,
) -> Result<()> {
    state.media.video().watch(&source, channel)
}

/// Where a tile takes the same frames over a WebSocket instead (`video_socket.rs`):
/// `ws://127.0.0.1:<port>/video/<token>`, to which it appends `/<source>`. Fails when the
/// socket does not run; the tile then uses `watch_video`.
#[tauri::command]
#[specta::specta]
pub async fn video_socket(state: State<'_, AppState>) -> Result<String> {
    state
        .video_socket
        .as_ref()
        .map(|socket| socket.base().to_owned())
        .ok_or_else(|| crate::error::AppError::call("The video socket is not running."))
}

/// Stops pushing `source`'s frames (its tile went away or fell back to RGBA).
#[tauri::command]
#[specta::specta]
pub async fn unwatch_video(state: State<'_, AppState>, source: String) -> Result<()> {
    state.media.video().unwatch(&source);
    Ok(())
}

/// Asks `source`'s sender (our own encoder for `"local"`) for a keyframe: the tile's
/// decoder starts or failed.
#[tauri::command]
#[specta::specta]
pub async fn request_keyframe(state: State<'_, AppState>, source: String) -> Result<()> {
    state.media.video().request_keyframe(&source)
}
