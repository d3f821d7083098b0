//! Sessions, their rotating refresh tokens, and the access-token denylist.

use super::{at, now, uuid};
use shared::api::SessionInfo;
use shared::{SessionId, UserId};
use sqlx::{AnyPool, FromRow};

#[derive(FromRow, Debug)]
struct SessionRow {
    id: String,
    created_at: i64,
    last_used_at: i64,
    expires_at: i64,
    user_agent: Option<String>,
    ip: Option<String>,
}

/// Creates a session with its first refresh token (given as its hash).
pub async fn create(
    pool: &AnyPool,
    user_id: UserId,
    token_hash: &str,
    ttl_secs: i64,
    user_agent: Option<&str>,
    ip: Option<&str>,
) -> sqlx::Result<SessionId> {
    let id = SessionId::new();
    let ts = now();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "insert into sessions (id, user_id, created_at, last_used_at, expires_at, user_agent, ip) \
         values ($1, $2, $3, $3, $4, $5, $6)",
    )
    .bind(id.to_string())
    .bind(user_id.to_string())
    .bind(ts)
    .bind(ts + ttl_secs)
    .bind(user_agent)
    .bind(ip)
    .execute(&mut *tx)
    .await?;
    insert_token(&mut tx, id, token_hash, ts, ttl_secs).await?;
    tx.commit().await?;
    Ok(id)
}

async fn insert_token(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    session: SessionId,
    token_hash: &str,
    ts: i64,
    ttl_secs: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into refresh_tokens (token_hash, session_id, created_at, expires_at) \
         values ($1, $2, $3, $4)",
    )
    .bind(token_hash)
    .bind(session.to_string())
    .bind(ts)
    .bind(ts + ttl_secs)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A refresh token with its session's state.
#[derive(FromRow, Debug)]
struct TokenRow {
    session: String,
    user_id: String,
    token_expires: i64,
    revoked_at: Option<i64>,
    session_expires: i64,
}

/// What became of a refresh-token exchange.
#[derive(Debug)]
pub enum Rotation {
    /// The token was valid; the new one is stored.
    Rotated { session: SessionId, user: UserId },
    /// Unknown, expired, or its session is revoked or expired.
    Invalid,
    /// Already exchanged once: the whole session has now been revoked.
    Reused(SessionId),
}

/// Exchanges a refresh token for a new one in the same session. A second exchange of the
/// same token revokes the session (reuse detection, RFC 9700 section 4.14.2).
pub async fn rotate(
    pool: &AnyPool,
    old_hash: &str,
    new_hash: &str,
    ttl_secs: i64,
) -> sqlx::Result<Rotation> {
    let ts = now();
    let mut tx = pool.begin().await?;
    // Marking the token used comes first: it is conditional, so of two concurrent
    // exchanges only one marks it and the other is treated as reuse; and a SQLite
    // transaction that writes first waits for the write lock instead of failing with
    // "database is locked" as one that read first would.
    let marked = sqlx::query(
        "update refresh_tokens set used_at = $2 where token_hash = $1 and used_at is null",
    )
    .bind(old_hash)
    .bind(ts)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let row: Option<TokenRow> = sqlx::query_as(
        "select t.session_id as session, s.user_id, t.used_at, t.expires_at as token_expires, \
                s.revoked_at, s.expires_at as session_expires \
         from refresh_tokens t join sessions s on s.id = t.session_id \
         where t.token_hash = $1",
    )
    .bind(old_hash)
    .fetch_optional(&mut *tx)
    .await?;
    // Dropping the transaction below rolls the mark back.
    let Some(TokenRow {
        session,
        user_id: user,
        token_expires,
        revoked_at,
        session_expires,
        ..
    }) = row
    else {
        return Ok(Rotation::Invalid);
    };
    if revoked_at.is_some() || token_expires <= ts || session_expires <= ts {
        return Ok(Rotation::Invalid);
    }
    let session_id = SessionId(uuid(&session).map_err(|e| sqlx::Error::Decode(e.into()))?);
    if marked == 0 {
        revoke_in(&mut tx, session_id, ts).await?;
        tx.commit().await?;
        return Ok(Rotation::Reused(session_id));
    }
    insert_token(&mut tx, session_id, new_hash, ts, ttl_secs).await?;
    sqlx::query("update sessions set last_used_at = $2, expires_at = $3 where id = $1")
        .bind(&session)
        .bind(ts)
        .bind(ts + ttl_secs)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Rotation::Rotated {
        session: session_id,
        user: UserId(uuid(&user).map_err(|e| sqlx::Error::Decode(e.into()))?),
    })
}

async fn revoke_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    session: SessionId,
    ts: i64,
) -> sqlx::Result<()> {
    sqlx::query("update sessions set revoked_at = $2 where id = $1 and revoked_at is null")
        .bind(session.to_string())
        .bind(ts)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The session a refresh token belongs to (the caller checks whose it is).
pub async fn session_of_token(pool: &AnyPool, token_hash: &str) -> sqlx::Result<Option<SessionId>> {
    let row: Option<(String,)> =
        sqlx::query_as("select session_id from refresh_tokens where token_hash = $1")
            .bind(token_hash)
            .fetch_optional(pool)
            .await?;
    Ok(row.and_then(|(s,)| s.parse().ok()))
}

/// Revokes one session of a user. Returns false when it is not theirs or already revoked.
pub async fn revoke(pool: &AnyPool, user: UserId, session: SessionId) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "update sessions set revoked_at = $3 where id = $1 and user_id = $2 and revoked_at is null",
    )
    .bind(session.to_string())
    .bind(user.to_string())
    .bind(now())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Revokes every session of a user except `keep`. Returns the revoked ids.
///
/// One statement: a session created while a logout-all runs is either revoked and
/// returned (so its connections are closed) or created after it, never left out of both.
pub async fn revoke_all(
    pool: &AnyPool,
    user: UserId,
    keep: Option<SessionId>,
) -> sqlx::Result<Vec<SessionId>> {
    let keep = keep.map(|s| s.to_string()).unwrap_or_default();
    let rows: Vec<(String,)> = sqlx::query_as(
        "update sessions set revoked_at = $3 \
         where user_id = $1 and revoked_at is null and id <> $2 returning id",
    )
    .bind(user.to_string())
    .bind(&keep)
    .bind(now())
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().filter_map(|(s,)| s.parse().ok()).collect())
}

/// Whether an access token may still be used: its session is live and its id was not
/// denylisted. One query per authenticated request.
pub async fn access_allowed(pool: &AnyPool, session: SessionId, jti: &str) -> sqlx::Result<bool> {
    let row: Option<(i64,)> = sqlx::query_as(
        "select 1 from sessions s where s.id = $1 and s.revoked_at is null and s.expires_at > $3 \
         and not exists (select 1 from denied_access_tokens d where d.jti = $2)",
    )
    .bind(session.to_string())
    .bind(jti)
    .bind(now())
    .fetch_optional(pool)
    .await?;
    Ok(row.is_some())
}

/// Refuses an access token until it expires.
pub async fn deny_access_token(pool: &AnyPool, jti: &str, expires_at: i64) -> sqlx::Result<()> {
    sqlx::query(
        "insert into denied_access_tokens (jti, expires_at) values ($1, $2) on conflict do nothing",
    )
    .bind(jti)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// The live sessions of a user, newest first.
pub async fn list(
    pool: &AnyPool,
    user: UserId,
    current: SessionId,
) -> anyhow::Result<Vec<SessionInfo>> {
    let rows: Vec<SessionRow> = sqlx::query_as(
        "select id, created_at, last_used_at, expires_at, user_agent, ip from sessions \
         where user_id = $1 and revoked_at is null and expires_at > $2 \
         order by last_used_at desc",
    )
    .bind(user.to_string())
    .bind(now())
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            let id = SessionId(uuid(&r.id)?);
            Ok(SessionInfo {
                id,
                created_at: at(r.created_at),
                last_used_at: at(r.last_used_at),
                expires_at: at(r.expires_at),
                user_agent: r.user_agent,
                ip: r.ip,
                current: id == current,
            })
        })
        .collect()
}

/// Deletes what can no longer be used: expired denylist entries, expired or long-revoked
/// sessions (their tokens cascade). Run periodically.
pub async fn purge_expired(pool: &AnyPool) -> sqlx::Result<u64> {
    let ts = now();
    let a = sqlx::query("delete from denied_access_tokens where expires_at <= $1")
        .bind(ts)
        .execute(pool)
        .await?
        .rows_affected();
    // Revoked sessions are kept a day so that reuse of their tokens is still recognised.
    let b = sqlx::query("delete from sessions where expires_at <= $1 or revoked_at <= $2")
        .bind(ts)
        .bind(ts - 24 * 3600)
        .execute(pool)
        .await?
        .rows_affected();
    Ok(a + b)
}
