//! Database access. One code path for SQLite and PostgreSQL through sqlx's `Any` driver:
//! queries use `$n` placeholders (both databases accept them), ids are UUID strings and
//! times are unix seconds, the subset of types both backends share.

pub mod communities;
pub mod contacts;
pub mod email_verifications;
pub mod files;
pub mod mail_tokens;
pub mod messages;
pub mod password_resets;
pub mod rooms;
pub mod search;
pub mod sessions;
pub mod users;

use anyhow::Context;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};
use std::time::Duration;
use time::OffsetDateTime;

/// The migrations in `migrations/` at the top of the repository, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Opens the pool and brings the schema up to date.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<AnyPool> {
    install_default_drivers();
    let is_sqlite = url.starts_with("sqlite:");
    let pool = AnyPoolOptions::new()
        .max_connections(max_connections)
        // A ping before every use is a round trip to the connection's worker thread per
        // query; an SQLite file does not go away like a network peer does.
        .test_before_acquire(!is_sqlite)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if is_sqlite {
                    // WAL lets readers run beside the one writer; a busy timeout makes
                    // concurrent writers wait instead of failing with SQLITE_BUSY.
                    conn.execute(
                        "pragma journal_mode = wal; pragma synchronous = normal; \
                         pragma busy_timeout = 5000; pragma foreign_keys = on;",
                    )
                    .await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await
        .with_context(|| format!("connecting to {}", redact(url)))?;
    MIGRATOR.run(&pool).await.context("running migrations")?;
    // The message search index differs per backend (FTS5 or tsvector and pg_trgm), so it
    // is not a migration: created if missing, existing messages indexed (see search.rs).
    search::ensure(&pool)
        .await
        .context("creating the search index")?;
    Ok(pool)
}

/// The URL without its password, for logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..scheme_end], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Unix seconds now.
pub fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Unix seconds as a timestamp.
pub fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Whether an error is a unique-constraint violation (both backends).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

/// Parses a UUID column; the schema only ever stores valid ones.
pub fn uuid(s: &str) -> anyhow::Result<uuid::Uuid> {
    uuid::Uuid::parse_str(s).with_context(|| format!("bad uuid in database: {s:?}"))
}
