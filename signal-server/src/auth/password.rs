//! Argon2id password hashing at OWASP's parameters (19 MiB, 2 passes, 1 lane: the
//! crate's defaults), always on the blocking pool so the async runtime keeps serving.

use anyhow::Context;
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use std::sync::OnceLock;

/// Hashes a password into a PHC string.
pub async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
    })
    .await
    .context("hashing task")?
}

/// Checks a password against a stored hash. With no hash (unknown account) a dummy hash
/// is checked instead, so the answer takes as long whether or not the account exists.
pub async fn verify(password: String, stored: Option<String>) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let (hash, real) = match stored {
            Some(h) => (h, true),
            None => (dummy_hash()?, false),
        };
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok();
        Ok(ok && real)
    })
    .await
    .context("verifying task")?
}

fn dummy_hash() -> anyhow::Result<String> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(h) = DUMMY.get() {
        return Ok(h.clone());
    }
    let h = Argon2::default()
        .hash_password(b"confab-dummy-password")
        .map_err(|e| anyhow::anyhow!("hashing dummy password: {e}"))?
        .to_string();
    Ok(DUMMY.get_or_init(|| h).clone())
}
