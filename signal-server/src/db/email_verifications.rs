//! Email-confirmation tokens (see [`super::mail_tokens`]), for
//! `--require-email-verification`.

use super::mail_tokens::{self, Kind};
use super::now;
use shared::UserId;
use sqlx::AnyPool;

/// Stores a new confirmation token (given as its hash) for `user`, valid `ttl_secs`, and
/// uses up every earlier unused one of the account (a resent mail supersedes the ones
/// before it), in one transaction.
pub async fn create(
    pool: &AnyPool,
    user: UserId,
    token_hash: &str,
    ttl_secs: i64,
) -> sqlx::Result<()> {
    let ts = now();
    let mut tx = pool.begin().await?;
    // The account's row first, written to take its lock: two resends at once then run one
    // after the other, so the later one sees (and uses up) the token the earlier one
    // stored. Without it, on PostgreSQL neither saw the other's new row and both links
    // stayed valid. Writing first also makes an SQLite transaction wait for the write
    // lock (see sessions::rotate).
    sqlx::query("update users set id = id where id = $1")
        .bind(user.to_string())
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "update email_verifications set used_at = $2 where user_id = $1 and used_at is null",
    )
    .bind(user.to_string())
    .bind(ts)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "insert into email_verifications (token_hash, user_id, created_at, expires_at) \
         values ($1, $2, $3, $4)",
    )
    .bind(token_hash)
    .bind(user.to_string())
    .bind(ts)
    .bind(ts.saturating_add(ttl_secs))
    .execute(&mut *tx)
    .await?;
    tx.commit().await
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
