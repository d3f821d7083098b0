//! Email-confirmation tokens (see [`super::mail_tokens`]), for
//! `--require-email-verification`.

use super::mail_tokens::{self, Kind};
use super::now;
use shared::UserId;
use sqlx::AnyPool;

/// Stores a new confirmation token (given as its hash) for `user`, valid `ttl_secs`.
pub async fn create(
    pool: &AnyPool,
    user: UserId,
    token_hash: &str,
    ttl_secs: i64,
) -> sqlx::Result<()> {
    mail_tokens::create(pool, Kind::EmailVerification, user, token_hash, ttl_secs).await
}

/// Uses a token up and marks its account's address confirmed, in one transaction.
/// Returns the account's username, or `None` for an unknown, used or expired token.
pub async fn redeem(pool: &AnyPool, token_hash: &str) -> sqlx::Result<Option<String>> {
    let mut tx = pool.begin().await?;
    let Some(user) =
        mail_tokens::claim(&mut tx, Kind::EmailVerification, token_hash, now()).await?
    else {
        return Ok(None);
    };
    let name: Option<(String,)> = sqlx::query_as(
        "update users set email_unverified_at = null where id = $1 returning username",
    )
    .bind(&user)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(name.map(|(n,)| n))
}

/// Deletes tokens that expired a day ago or more. Run periodically.
pub async fn purge_expired(pool: &AnyPool) -> sqlx::Result<u64> {
    mail_tokens::purge_expired(pool, Kind::EmailVerification).await
}
