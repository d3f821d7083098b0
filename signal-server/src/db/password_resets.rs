//! Password-reset tokens (stored as their SHA-256): issued for an account, redeemed once.

use super::{now, uuid};
use shared::UserId;
use sqlx::AnyPool;

/// Stores a new reset token (given as its hash) for `user`, valid `ttl_secs`.
pub async fn create(
    pool: &AnyPool,
    user: UserId,
    token_hash: &str,
    ttl_secs: i64,
) -> sqlx::Result<()> {
    let ts = now();
    sqlx::query(
        "insert into password_resets (token_hash, user_id, created_at, expires_at) \
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

/// The account a token would reset, if it is unused and unexpired. Does not use it up.
pub async fn peek(pool: &AnyPool, token_hash: &str) -> sqlx::Result<Option<UserId>> {
    let row: Option<(String,)> = sqlx::query_as(
        "select user_id from password_resets \
         where token_hash = $1 and used_at is null and expires_at > $2",
    )
    .bind(token_hash)
    .bind(now())
    .fetch_optional(pool)
    .await?;
    row.map(|(u,)| parse_user(&u)).transpose()
}

/// Redeems a token and sets the account's password hash in one transaction. Returns the
/// account, or `None` when the token is unknown, used or expired (or was just redeemed by
/// a concurrent request: the conditional update lets exactly one through). Every other
/// outstanding token of the account is used up with it.
pub async fn redeem(
    pool: &AnyPool,
    token_hash: &str,
    password_hash: &str,
) -> sqlx::Result<Option<UserId>> {
    let ts = now();
    let mut tx = pool.begin().await?;
    // Writing first: on SQLite the transaction then waits for the write lock instead of
    // failing as one that read first would (see sessions::rotate).
    let row: Option<(String,)> = sqlx::query_as(
        "update password_resets set used_at = $2 \
         where token_hash = $1 and used_at is null and expires_at > $2 returning user_id",
    )
    .bind(token_hash)
    .bind(ts)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((user,)) = row else {
        return Ok(None);
    };
    sqlx::query("update password_resets set used_at = $2 where user_id = $1 and used_at is null")
        .bind(&user)
        .bind(ts)
        .execute(&mut *tx)
        .await?;
    // The mailed link proves the address too.
    sqlx::query(
        "update users set password_hash = $2, updated_at = $3, email_unverified_at = null \
         where id = $1",
    )
    .bind(&user)
    .bind(password_hash)
    .bind(ts)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    parse_user(&user).map(Some)
}

/// Deletes tokens that expired a day ago or more. Run periodically.
pub async fn purge_expired(pool: &AnyPool) -> sqlx::Result<u64> {
    Ok(
        sqlx::query("delete from password_resets where expires_at <= $1")
            .bind(now() - 24 * 3600)
            .execute(pool)
            .await?
            .rows_affected(),
    )
}

fn parse_user(s: &str) -> sqlx::Result<UserId> {
    Ok(UserId(uuid(s).map_err(|e| sqlx::Error::Decode(e.into()))?))
}
