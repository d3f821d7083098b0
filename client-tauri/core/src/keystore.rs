//! Where the refresh token lives between runs: the operating system's keyring (macOS
//! Keychain, Windows Credential Manager, the Secret Service on Linux), never a file in
//! clear.
//!
//! [`open_default`] picks the keyring when one answers and otherwise falls back to a
//! [`MemoryStore`], with a reason the UI can show: the app still works, the user just
//! signs in again next time.
//!
//! The stores are synchronous because the keyring APIs are: a call may block on IPC (or,
//! on a desktop, on an unlock prompt). Async callers run them on the blocking pool, as
//! [`crate::api::ApiClient`] does.

use reqwest::Url;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

/// The keyring "service" every Confab entry is filed under.
pub const KEYRING_SERVICE: &str = "confab";

/// Which stored token: one per account per server, so a user signed in to two servers
/// (or as two users) keeps both sessions.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AccountKey {
    /// The server's base URL, normalized by [`AccountKey::new`] (no trailing slash).
    pub server: String,
    /// The username as the server spells it (lowercase), not the login the user typed:
    /// logging in by email or by username must find the same entry.
    pub username: String,
}

impl AccountKey {
    /// The key for `username` on `server`. The URL is normalized so that
    /// `https://chat.example.com` and `https://chat.example.com/` are the same account.
    pub fn new(server: &Url, username: &str) -> Self {
        Self {
            server: server.as_str().trim_end_matches('/').to_owned(),
            username: username.trim().to_lowercase(),
        }
    }

    /// The keyring "user" of this entry: `alice@https://chat.example.com`.
    pub fn keyring_user(&self) -> String {
        format!("{}@{}", self.username, self.server)
    }
}

impl fmt::Display for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.keyring_user())
    }
}

/// A token store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No keyring could be set up on this system (no Secret Service on the session bus,
    /// no session bus at all, an unsupported platform): the platform's own words.
    #[error("{0}")]
    Unavailable(String),
    /// The system keyring refused or failed the operation.
    #[error("system keyring: {0}")]
    Keyring(#[from] keyring::Error),
}

impl StoreError {
    /// The platform's own words, for messages that already say "keyring".
    fn detail(&self) -> String {
        match self {
            Self::Unavailable(detail) => detail.clone(),
            Self::Keyring(e) => e.to_string(),
        }
    }
}

/// Saves, loads and deletes refresh tokens by account. Calls may block (keyring IPC);
/// call them from a blocking context.
pub trait TokenStore: Send + Sync + fmt::Debug {
    /// The stored token, or `None` when there is none.
    fn load(&self, account: &AccountKey) -> Result<Option<String>, StoreError>;

    /// Stores `token`, replacing any earlier one.
    fn save(&self, account: &AccountKey, token: &str) -> Result<(), StoreError>;

    /// Forgets the token; succeeds when there was none.
    fn delete(&self, account: &AccountKey) -> Result<(), StoreError>;

    /// Whether tokens outlive the process (so the next start can resume the session).
    fn is_persistent(&self) -> bool;
}

/// Refresh tokens in the OS keyring, through the `keyring` crate.
///
/// keyring 4 keeps one process-wide default store, set up on first use (its `v1` API
/// does this for us, picking the native store of the platform). The first attempt's
/// outcome sticks for the life of the process, which is why [`KeyringStore::open`] checks
/// it once and callers fall back to memory instead of retrying.
#[derive(Debug)]
pub struct KeyringStore {
    _private: (),
}

impl KeyringStore {
    /// Connects to the system keyring and checks that it can keep a secret, by saving,
    /// reading back and deleting a probe entry. Merely connecting is not enough: a
    /// Secret Service whose default collection is locked with no one to unlock it (a
    /// headless session) answers lookups but refuses to store. Blocks on IPC (and, on a
    /// desktop with a locked keyring, on the unlock prompt).
    pub fn open() -> Result<Self, StoreError> {
        if let Err(e) = keyring::Entry::store_status() {
            // The error itself belongs to the keyring crate's static; keep its words.
            return Err(StoreError::Unavailable(e.to_string()));
        }
        let store = Self { _private: () };
        // Unique per call, so two app instances starting together do not trip over each
        // other's probe.
        let probe = AccountKey {
            server: "keyring-probe".into(),
            username: uuid::Uuid::new_v4().to_string(),
        };
        store.save(&probe, "probe")?;
        let kept = store.load(&probe);
        store.delete(&probe)?;
        if kept?.as_deref() != Some("probe") {
            return Err(StoreError::Unavailable(
                "the keyring did not keep a test entry".into(),
            ));
        }
        Ok(store)
    }

    fn entry(account: &AccountKey) -> Result<keyring::Entry, StoreError> {
        Ok(keyring::Entry::new(
            KEYRING_SERVICE,
            &account.keyring_user(),
        )?)
    }
}

impl TokenStore for KeyringStore {
    fn load(&self, account: &AccountKey) -> Result<Option<String>, StoreError> {
        match Self::entry(account)?.get_password() {
            Ok(token) => Ok(Some(token)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn save(&self, account: &AccountKey, token: &str) -> Result<(), StoreError> {
        Ok(Self::entry(account)?.set_password(token)?)
    }

    fn delete(&self, account: &AccountKey) -> Result<(), StoreError> {
        match Self::entry(account)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn is_persistent(&self) -> bool {
        true
    }
}

/// Refresh tokens in process memory only: for tests, and the fallback when no keyring
/// is available (the session then lasts as long as the app runs).
#[derive(Default)]
pub struct MemoryStore {
    tokens: Mutex<HashMap<AccountKey, String>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn tokens(&self) -> std::sync::MutexGuard<'_, HashMap<AccountKey, String>> {
        // A panic while holding this lock cannot leave the map half-updated (every
        // operation is a single insert, get or remove), so poisoning carries no meaning.
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for MemoryStore {
    // Tokens are secrets: show which accounts are stored, never the tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let accounts: Vec<String> = self.tokens().keys().map(AccountKey::to_string).collect();
        f.debug_struct("MemoryStore")
            .field("accounts", &accounts)
            .finish()
    }
}

impl TokenStore for MemoryStore {
    fn load(&self, account: &AccountKey) -> Result<Option<String>, StoreError> {
        Ok(self.tokens().get(account).cloned())
    }

    fn save(&self, account: &AccountKey, token: &str) -> Result<(), StoreError> {
        self.tokens().insert(account.clone(), token.to_owned());
        Ok(())
    }

    fn delete(&self, account: &AccountKey) -> Result<(), StoreError> {
        self.tokens().remove(account);
        Ok(())
    }

    fn is_persistent(&self) -> bool {
        false
    }
}

/// What [`open_default`] found.
#[derive(Debug, Clone)]
pub struct OpenedStore {
    /// The store to hand to [`crate::api::ApiClient`].
    pub store: Arc<dyn TokenStore>,
    /// Why sessions will not be remembered, in words for the user, when the keyring was
    /// not available and `store` is in memory; `None` when the keyring is in use.
    pub fallback_reason: Option<String>,
}

/// The system keyring when it answers, otherwise a [`MemoryStore`] and the reason.
/// Blocks on IPC; call it from a blocking context.
pub fn open_default() -> OpenedStore {
    match KeyringStore::open() {
        Ok(store) => OpenedStore {
            store: Arc::new(store),
            fallback_reason: None,
        },
        Err(e) => {
            let reason = format!(
                "No system keyring is available ({}); you will need to sign in again next time.",
                e.detail()
            );
            tracing::warn!(error = %e, "no system keyring; refresh tokens are kept in memory only");
            OpenedStore {
                store: Arc::new(MemoryStore::new()),
                fallback_reason: Some(reason),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn account_keys_ignore_a_trailing_slash_and_case() {
        assert_eq!(
            AccountKey::new(&url("https://chat.example.com/"), "Alice"),
            AccountKey::new(&url("https://chat.example.com"), "alice"),
        );
        assert_eq!(
            AccountKey::new(&url("https://example.com/confab/"), "bob").keyring_user(),
            "bob@https://example.com/confab"
        );
    }

    #[test]
    fn the_memory_store_keeps_one_token_per_account_and_hides_them() -> Result<(), StoreError> {
        let store = MemoryStore::new();
        let alice = AccountKey::new(&url("http://a.test"), "alice");
        let bob = AccountKey::new(&url("http://a.test"), "bob");
        store.save(&alice, "secret-1")?;
        store.save(&alice, "secret-2")?;
        store.save(&bob, "secret-3")?;
        assert_eq!(store.load(&alice)?.as_deref(), Some("secret-2"));
        store.delete(&alice)?;
        store.delete(&alice)?;
        assert_eq!(store.load(&alice)?, None);
        assert!(!format!("{store:?}").contains("secret"));
        Ok(())
    }
}
