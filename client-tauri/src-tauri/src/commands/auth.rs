//! Account requests the sign-in form makes before there is a session.

use super::Result;
use crate::AppState;
use tauri::State;

/// Mails the address-confirmation link to `email` again (offered when signing in is
/// refused with `emailUnverified`). The same answer whether or not an account waits
/// for confirmation at that address.
#[tauri::command]
#[specta::specta]
pub async fn resend_email_verification(state: State<'_, AppState>, email: String) -> Result<()> {
    state.session.resend_email_verification(&email).await
}
