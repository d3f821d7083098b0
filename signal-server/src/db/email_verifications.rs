//! Email-confirmation tokens (stored as their SHA-256), for `--require-email-verification`.

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
    let ts = now();
    sqlx::query(
        "insert into email_verifications (token_hash, user_id, created_at, expires_at) \
         values ($1, $2, $3, $4)",
    )
    .bind(token_hash)
    .bind(user.to_string())
    .bind(ts)
    .bind(ts.saturating_add(ttl_secs))
    .execute(pool)
    .await?;
    Ok(())
}

/// Uses a token up and marks its account's address confirmed, in one transaction.
/// Returns the account's username, or `None` for an unknown, used or expired token.
pub async fn redeem(pool: &AnyPool, token_hash: &str) -> sqlx::Result<Option<String>> {
    let ts = now();
    let mut tx = pool.begin().await?;
    let row: Option<(String,)> = sqlx::query_as(
        "update email_verifications set used_at = $2 \
         where token_hash = $1 and used_at is null and expires_at > $2 returning user_id",
    )
    .bind(token_hash)
    .bind(ts)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((user,)) = row else {
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
    Ok(
        sqlx::query("delete from email_verifications where expires_at <= $1")
            .bind(now() - 24 * 3600)
            .execute(pool)
            .await?
            .rows_affected(),
    )
}
