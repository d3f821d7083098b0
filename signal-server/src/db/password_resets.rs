//! Password-reset tokens (see [`super::mail_tokens`]): issued for an account, redeemed once.

use super::mail_tokens::{self, Kind};
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
    mail_tokens::create(pool, Kind::PasswordReset, user, token_hash, ttl_secs).await
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
    let Some(user) = mail_tokens::claim(&mut tx, Kind::PasswordReset, token_hash, ts).await? else {
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
    mail_tokens::purge_expired(pool, Kind::PasswordReset).await
}

fn parse_user(s: &str) -> sqlx::Result<UserId> {
    Ok(UserId(uuid(s).map_err(|e| sqlx::Error::Decode(e.into()))?))
}
