//! Message search: a hand-over to the messenger (`messenger/search.rs`).

use super::Result;
use crate::AppState;
use crate::messenger::search::{SearchFilters, SearchResults};
use tauri::State;

/// Messages with every word of `q` in my rooms, narrowed by `filters` (room, author,
/// days, order), newest first unless they ask for the best match.
#[tauri::command]
#[specta::specta]
pub async fn search_messages(
    state: State<'_, AppState>,
    q: String,
    filters: SearchFilters,
    cursor: Option<String>,
) -> Result<SearchResults> {
    let m = state.session.messenger().await?;
    m.search(&q, filters, cursor).await
}
