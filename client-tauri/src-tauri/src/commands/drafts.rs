//! Drafts kept across restarts: a hand-over to the messenger (`messenger/cache.rs`).

use super::Result;
use crate::AppState;
use crate::messenger::cache::DraftView;
use shared::RoomId;
use tauri::State;

/// My drafts, by room (kept in the outbox file, so also those of an earlier run).
#[tauri::command]
#[specta::specta]
pub async fn drafts(state: State<'_, AppState>) -> Result<Vec<DraftView>> {
    state.session.messenger().await?.drafts().await
}

/// Keeps the composer's text of a room (empty: no draft).
#[tauri::command]
#[specta::specta]
pub async fn set_draft(state: State<'_, AppState>, room_id: RoomId, body: String) -> Result<()> {
    state
        .session
        .messenger()
        .await?
        .set_draft(room_id, &body)
        .await
}
