//! Single-use tokens sent by mail (password resets, address confirmations): stored as
//! their SHA-256 in tables of one shape (`token_hash`, `user_id`, `created_at`,
//! `expires_at`, `used_at`), issued for an account, redeemed once.

use super::now;
use shared::UserId;
// The table names come from `Kind`, never from input.
use sqlx::{AnyConnection, AnyPool, AssertSqlSafe};

/// Which kind of token, that is, which table.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    PasswordReset,
    EmailVerification,
}

impl Kind {
    fn table(self) -> &'static str {
        match self {
            Self::PasswordReset => "password_resets",
            Self::EmailVerification => "email_verifications",
        }
    }
}

/// Stores a new token (given as its hash) for `user`, valid `ttl_secs`.
pub async fn create(
    pool: &AnyPool,
    kind: Kind,
    user: UserId,
    token_hash: &str,
    ttl_secs: i64,
) -> sqlx::Result<()> {
    let ts = now();
    sqlx::query(AssertSqlSafe(format!(
        "insert into {} (token_hash, user_id, created_at, expires_at) values ($1, $2, $3, $4)",
        kind.table()
    )))
    .bind(token_hash)
    .bind(user.to_string())
    .bind(ts)
    .bind(ts.saturating_add(ttl_secs))
    .execute(pool)
    .await?;
    Ok(())
}

/// Uses a token up at `ts` inside the caller's transaction and returns its account's id
/// (as stored), or `None` when it is unknown, used or expired. The conditional update
/// lets exactly one of two concurrent redeemers through; writing first also makes an
/// SQLite transaction wait for the write lock instead of failing as one that read first
/// would (see sessions::rotate).
pub async fn claim(
    conn: &mut AnyConnection,
    kind: Kind,
    token_hash: &str,
    ts: i64,
) -> sqlx::Result<Option<String>> {
    let row: Option<(String,)> = sqlx::query_as(AssertSqlSafe(format!(
        "update {} set used_at = $2 \
         where token_hash = $1 and used_at is null and expires_at > $2 returning user_id",
        kind.table()
    )))
    .bind(token_hash)
    .bind(ts)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(u,)| u))
}

/// Deletes tokens that expired a day ago or more. Run periodically.
pub async fn purge_expired(pool: &AnyPool, kind: Kind) -> sqlx::Result<u64> {
    Ok(sqlx::query(AssertSqlSafe(format!(
        "delete from {} where expires_at <= $1",
        kind.table()
    )))
    .bind(now() - 24 * 3600)
    .execute(pool)
    .await?
    .rows_affected())
}
