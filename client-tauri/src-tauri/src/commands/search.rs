//! Message search: a hand-over to the messenger (`messenger/search.rs`).

use super::Result;
use crate::AppState;
use crate::messenger::search::SearchResults;
use shared::RoomId;
use tauri::State;

/// Messages with every word of `q` in my rooms (or in `room_id`), newest first.
#[tauri::command]
#[specta::specta]
pub async fn search_messages(
    state: State<'_, AppState>,
    q: String,
    room_id: Option<RoomId>,
    cursor: Option<String>,
) -> Result<SearchResults> {
    let m = state.session.messenger().await?;
    m.search(&q, room_id, cursor).await
}
