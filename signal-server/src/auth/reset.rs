//! Password-reset and address-confirmation tokens: 256 random bits handed to the user (in
//! a link), only their SHA-256 stored, redeemed once within their lifetime.

use super::tokens::{hash_token, random_token};
use crate::config::Config;
use crate::db;
use shared::UserId;
use sqlx::AnyPool;

/// A freshly issued reset token and the link that carries it.
#[derive(Debug)]
pub struct ResetLink {
    pub token: String,
    pub link: String,
}

/// Issues a reset token for `user`, valid for the configured lifetime.
pub async fn issue(pool: &AnyPool, config: &Config, user: UserId) -> sqlx::Result<ResetLink> {
    let token = random_token();
    let ttl = i64::try_from(config.password_reset_ttl).unwrap_or(i64::MAX / 4);
    db::password_resets::create(pool, user, &hash_token(&token), ttl).await?;
    // The token is URL-safe base64, so it needs no escaping in a query string.
    let link = format!("{}/reset-password?token={token}", config.public_url());
    Ok(ResetLink { token, link })
}

/// How long an address-confirmation link works.
pub const VERIFICATION_TTL_SECS: i64 = 24 * 3600;

/// Issues an address-confirmation token for `user`; returns the link that carries it.
pub async fn issue_verification(
    pool: &AnyPool,
    config: &Config,
    user: UserId,
) -> sqlx::Result<String> {
    let token = random_token();
    db::email_verifications::create(pool, user, &hash_token(&token), VERIFICATION_TTL_SECS).await?;
    Ok(format!(
        "{}/verify-email?token={token}",
        config.public_url()
    ))
}
