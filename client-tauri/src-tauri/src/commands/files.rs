//! The file commands: uploads (from a path or pasted bytes), their progress and cancel,
//! signed links and downloads. Each hands over to the messenger (`messenger/files.rs`).

use super::Result;
use crate::AppState;
use crate::messenger::files::{AttachmentView, FileLinksView};
use shared::UploadId;
use std::path::PathBuf;
use tauri::State;

/// Uploads the file at `path` (from the dialog or a drop); progress comes as
/// `transfer-event`s with `transfer_id`, which `cancel_transfer` takes.
#[tauri::command]
#[specta::specta]
pub async fn upload_file(
    state: State<'_, AppState>,
    transfer_id: String,
    path: String,
) -> Result<AttachmentView> {
    let m = state.session.messenger().await?;
    m.upload_file(&transfer_id, &PathBuf::from(path)).await
}

/// Uploads pasted bytes as `name`.
#[tauri::command]
#[specta::specta]
pub async fn upload_bytes(
    state: State<'_, AppState>,
    transfer_id: String,
    name: String,
    data: Vec<u8>,
) -> Result<AttachmentView> {
    let m = state.session.messenger().await?;
    m.upload_bytes(&transfer_id, &name, data).await
}

#[tauri::command]
#[specta::specta]
pub async fn cancel_transfer(state: State<'_, AppState>, transfer_id: String) -> Result<()> {
    state
        .session
        .messenger()
        .await?
        .cancel_transfer(&transfer_id);
    Ok(())
}

/// Signed links to a file's bytes, preview and thumbnail (absolute, short-lived).
#[tauri::command]
#[specta::specta]
pub async fn file_links(state: State<'_, AppState>, upload_id: UploadId) -> Result<FileLinksView> {
    state.session.messenger().await?.file_links(upload_id).await
}

/// Saves a file to `path` (from the "save as" dialog); answers the bytes written.
#[tauri::command]
#[specta::specta]
pub async fn download_file(
    state: State<'_, AppState>,
    transfer_id: String,
    upload_id: UploadId,
    path: String,
) -> Result<u64> {
    let m = state.session.messenger().await?;
    m.download_file(&transfer_id, upload_id, PathBuf::from(path))
        .await
}

/// Makes the picture at `path` my avatar; answers its path on the server.
#[tauri::command]
#[specta::specta]
pub async fn set_avatar(state: State<'_, AppState>, path: String) -> Result<String> {
    let m = state.session.messenger().await?;
    m.set_avatar(&PathBuf::from(path)).await
}

#[tauri::command]
#[specta::specta]
pub async fn clear_avatar(state: State<'_, AppState>) -> Result<()> {
    state.session.messenger().await?.clear_avatar().await
}

/// Sets (or with no path, removes) a community's icon.
#[tauri::command]
#[specta::specta]
pub async fn set_community_icon(
    state: State<'_, AppState>,
    community_id: shared::CommunityId,
    path: Option<String>,
) -> Result<crate::messenger::communities::CommunityView> {
    let m = state.session.messenger().await?;
    m.set_community_icon(community_id, path.as_deref().map(std::path::Path::new))
        .await
}
