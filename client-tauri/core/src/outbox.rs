//! The outbox: messages the user wrote that the server has not acknowledged yet, kept in
//! a local SQLite file so that neither a lost connection nor a restart loses one.
//!
//! A message's idempotency key (`client_id`, a v4 UUID) is made once and written to disk
//! before the first attempt, and every retry, also after a restart, sends the same key:
//! the server stores one message per key and answers a repeat with the original, so a
//! message whose acknowledgement was lost is never stored twice. A message leaves the
//! outbox when the server acknowledges it or refuses it for good (a 4xx other than
//! 429/408: the room is gone, the body is invalid, we may no longer write there).
//!
//! [`Outbox`] is the storage; [`run`] is the sending loop, driven through a [`Courier`]
//! (the connection sends over the WebSocket, or over REST when it is down) and reporting
//! through a callback, so the retry policy can be tested without a server.

use async_trait::async_trait;
use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use shared::api::Message;
use shared::{ErrorDetail, MessageId, RoomId, UploadId, UserId};
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// What can go wrong with the outbox file.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The file could not be opened, created or written.
    #[error("outbox {path}: {source}")]
    Storage {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },
    /// A stored row does not parse (the file was edited by hand, or is corrupt).
    #[error("outbox {path}: a stored message is unreadable: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

/// A message waiting to be acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingMessage {
    /// The idempotency key, sent with every attempt.
    pub client_id: String,
    /// Whose message it is: only that user's connection sends it.
    pub user_id: UserId,
    pub room_id: RoomId,
    pub body: String,
    pub reply_to: Option<MessageId>,
    /// Unix milliseconds, when it was written.
    pub created_at: i64,
    /// Attempts made so far.
    pub attempts: u32,
    /// Uploads it carries (uploaded before it was written here), in order.
    pub attachments: Vec<UploadId>,
}

impl PendingMessage {
    /// A new message with a fresh key (a v4 UUID), not yet written anywhere.
    pub fn new(user_id: UserId, room_id: RoomId, body: &str, reply_to: Option<MessageId>) -> Self {
        Self {
            client_id: uuid::Uuid::new_v4().to_string(),
            user_id,
            room_id,
            body: body.to_owned(),
            reply_to,
            created_at: now_ms(),
            attempts: 0,
            attachments: Vec::new(),
        }
    }

    /// The same message carrying these uploads.
    #[must_use]
    pub fn with_attachments(mut self, attachments: Vec<UploadId>) -> Self {
        self.attachments = attachments;
        self
    }
}

/// The outbox file. Cheap to clone (clones share the pool).
#[derive(Clone, Debug)]
pub struct Outbox {
    pool: SqlitePool,
    path: PathBuf,
}

impl Outbox {
    /// Opens the outbox at `path`, creating the file (and its table) if needed.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, OutboxError> {
        let path = path.as_ref().to_path_buf();
        let storage = |source| OutboxError::Storage {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| storage(sqlx::Error::Io(e)))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Two processes may share the file for a moment (an app restarting while
            // the old one still flushes); wait for the other's write instead of failing.
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .map_err(storage)?;
        sqlx::query(
            "create table if not exists outbox (
                client_id text primary key,
                user_id text not null,
                room_id text not null,
                body text not null,
                reply_to text,
                created_at integer not null,
                attempts integer not null default 0,
                attachments text not null default ''
            )",
        )
        .execute(&pool)
        .await
        .map_err(storage)?;
        // A file from before attachments: add the column (upload ids, comma-separated).
        let has_attachments: Option<i64> = sqlx::query_scalar(
            "select 1 from pragma_table_info('outbox') where name = 'attachments'",
        )
        .fetch_optional(&pool)
        .await
        .map_err(storage)?;
        if has_attachments.is_none() {
            sqlx::query("alter table outbox add column attachments text not null default ''")
                .execute(&pool)
                .await
                .map_err(storage)?;
        }
        // The last state shown, for the next start before the network answers: each
        // room's newest messages (as the server sent them, JSON) and the composer's drafts.
        // Only a cache: the first catch-up of a run replaces what it shows.
        for table in [
            "create table if not exists cached_messages (
                user_id text not null,
                room_id text not null,
                seq integer not null,
                message text not null,
                primary key (user_id, room_id, seq)
            )",
            "create table if not exists drafts (
                user_id text not null,
                room_id text not null,
                body text not null,
                updated_at integer not null,
                primary key (user_id, room_id)
            )",
        ] {
            sqlx::query(table).execute(&pool).await.map_err(storage)?;
        }
        Ok(Self { pool, path })
    }

    /// The file this outbox lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a new message with a fresh key, before anything is sent.
    pub async fn enqueue(
        &self,
        user_id: UserId,
        room_id: RoomId,
        body: &str,
        reply_to: Option<MessageId>,
    ) -> Result<PendingMessage, OutboxError> {
        let message = PendingMessage::new(user_id, room_id, body, reply_to);
        self.insert(&message).await?;
        Ok(message)
    }

    /// Writes a message made with [`PendingMessage::new`].
    pub async fn insert(&self, message: &PendingMessage) -> Result<(), OutboxError> {
        sqlx::query(
            "insert into outbox \
             (client_id, user_id, room_id, body, reply_to, created_at, attempts, attachments) \
             values ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&message.client_id)
        .bind(message.user_id.to_string())
        .bind(message.room_id.to_string())
        .bind(&message.body)
        .bind(message.reply_to.map(|m| m.to_string()))
        .bind(message.created_at)
        .bind(i64::from(message.attempts))
        .bind(
            message
                .attachments
                .iter()
                .map(UploadId::to_string)
                .collect::<Vec<_>>()
                .join(","),
        )
        .execute(&self.pool)
        .await
        .map_err(|e| self.storage(e))?;
        Ok(())
    }

    /// `user`'s waiting messages, oldest first.
    pub async fn pending(&self, user: UserId) -> Result<Vec<PendingMessage>, OutboxError> {
        let rows = sqlx::query(
            "select client_id, user_id, room_id, body, reply_to, created_at, attempts, \
             attachments from outbox where user_id = $1 order by created_at, rowid",
        )
        .bind(user.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.storage(e))?;
        rows.iter().map(|row| self.parse(row)).collect()
    }

    /// Counts an attempt.
    pub async fn record_attempt(&self, client_id: &str) -> Result<(), OutboxError> {
        sqlx::query("update outbox set attempts = attempts + 1 where client_id = $1")
            .bind(client_id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.storage(e))?;
        Ok(())
    }

    /// Removes a message (acknowledged, or refused for good).
    pub async fn remove(&self, client_id: &str) -> Result<(), OutboxError> {
        sqlx::query("delete from outbox where client_id = $1")
            .bind(client_id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.storage(e))?;
        Ok(())
    }

    /// Keeps `messages` (a room's newest, ascending seq) as `user`'s cached page of the
    /// room, replacing the one kept before.
    pub async fn cache_page(
        &self,
        user: UserId,
        room: RoomId,
        messages: &[Message],
    ) -> Result<(), OutboxError> {
        let (user, room) = (user.to_string(), room.to_string());
        let mut tx = self.pool.begin().await.map_err(|e| self.storage(e))?;
        sqlx::query("delete from cached_messages where user_id = $1 and room_id = $2")
            .bind(&user)
            .bind(&room)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.storage(e))?;
        for m in messages {
            let json = serde_json::to_string(m).map_err(|e| OutboxError::Corrupt {
                path: self.path.clone(),
                reason: e.to_string(),
            })?;
            sqlx::query(
                "insert or replace into cached_messages (user_id, room_id, seq, message) \
                 values ($1, $2, $3, $4)",
            )
            .bind(&user)
            .bind(&room)
            .bind(i64::try_from(m.seq).unwrap_or(i64::MAX))
            .bind(json)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.storage(e))?;
        }
        tx.commit().await.map_err(|e| self.storage(e))?;
        Ok(())
    }

    /// `user`'s cached page of `room`, ascending seq (empty if none). A row that no
    /// longer parses (an older app's format) is skipped: it is only a cache.
    pub async fn cached_page(
        &self,
        user: UserId,
        room: RoomId,
    ) -> Result<Vec<Message>, OutboxError> {
        let rows: Vec<String> = sqlx::query_scalar(
            "select message from cached_messages where user_id = $1 and room_id = $2 \
             order by seq",
        )
        .bind(user.to_string())
        .bind(room.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.storage(e))?;
        Ok(rows
            .iter()
            .filter_map(|json| serde_json::from_str::<Message>(json).ok())
            .filter(|m| m.room_id == room)
            .collect())
    }

    /// Forgets `user`'s cached page and draft of a room (it is gone, or I left it).
    pub async fn forget_room(&self, user: UserId, room: RoomId) -> Result<(), OutboxError> {
        for delete in [
            "delete from cached_messages where user_id = $1 and room_id = $2",
            "delete from drafts where user_id = $1 and room_id = $2",
        ] {
            sqlx::query(delete)
                .bind(user.to_string())
                .bind(room.to_string())
                .execute(&self.pool)
                .await
                .map_err(|e| self.storage(e))?;
        }
        Ok(())
    }

    /// Keeps `user`'s draft of `room` (an empty one is deleted).
    pub async fn set_draft(
        &self,
        user: UserId,
        room: RoomId,
        body: &str,
    ) -> Result<(), OutboxError> {
        let query = if body.is_empty() {
            sqlx::query("delete from drafts where user_id = $1 and room_id = $2")
        } else {
            sqlx::query(
                "insert into drafts (user_id, room_id, body, updated_at) values ($1, $2, $3, $4) \
                 on conflict (user_id, room_id) do update \
                 set body = excluded.body, updated_at = excluded.updated_at",
            )
        };
        query
            .bind(user.to_string())
            .bind(room.to_string())
            .bind(body)
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(|e| self.storage(e))?;
        Ok(())
    }

    /// `user`'s drafts, by room (rows whose room id does not parse are skipped).
    pub async fn drafts(&self, user: UserId) -> Result<Vec<(RoomId, String)>, OutboxError> {
        let rows = sqlx::query(
            "select room_id, body from drafts where user_id = $1 order by updated_at, room_id",
        )
        .bind(user.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.storage(e))?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                let room: String = row.try_get("room_id").ok()?;
                let body: String = row.try_get("body").ok()?;
                Some((room.parse().ok()?, body))
            })
            .collect())
    }

    /// Closes the file; pending messages stay in it for the next [`Outbox::open`].
    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn storage(&self, source: sqlx::Error) -> OutboxError {
        OutboxError::Storage {
            path: self.path.clone(),
            source,
        }
    }

    fn parse(&self, row: &sqlx::sqlite::SqliteRow) -> Result<PendingMessage, OutboxError> {
        let corrupt = |reason: String| OutboxError::Corrupt {
            path: self.path.clone(),
            reason,
        };
        let text = |name: &str| -> Result<String, OutboxError> {
            row.try_get::<String, _>(name)
                .map_err(|e| corrupt(e.to_string()))
        };
        let reply_to: Option<String> = row
            .try_get("reply_to")
            .map_err(|e| corrupt(e.to_string()))?;
        let attempts: i64 = row
            .try_get("attempts")
            .map_err(|e| corrupt(e.to_string()))?;
        Ok(PendingMessage {
            client_id: text("client_id")?,
            user_id: text("user_id")?
                .parse()
                .map_err(|e: uuid::Error| corrupt(e.to_string()))?,
            room_id: text("room_id")?
                .parse()
                .map_err(|e: uuid::Error| corrupt(e.to_string()))?,
            body: text("body")?,
            reply_to: reply_to
                .map(|r| r.parse())
                .transpose()
                .map_err(|e: uuid::Error| corrupt(e.to_string()))?,
            created_at: row
                .try_get("created_at")
                .map_err(|e| corrupt(e.to_string()))?,
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            attachments: text("attachments")?
                .split(',')
                .filter(|a| !a.is_empty())
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|e: uuid::Error| corrupt(e.to_string()))?,
        })
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// How one attempt to deliver a message ended, short of success.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Undelivered {
    /// Try again later (no connection, a timeout, 5xx, 429, 408), not before `after` if
    /// the server said so.
    Retry { after: Option<Duration> },
    /// The server will never take this message: drop it and tell the user why.
    Refused(ErrorDetail),
}

/// Delivers one message to the server.
#[async_trait]
pub trait Courier: Send + Sync {
    /// Sends `message` with its key; the stored message on success.
    async fn deliver(&self, message: &PendingMessage) -> Result<Message, Undelivered>;
}

/// What happened to a message, for the connection to pass on.
#[derive(Clone, Debug)]
pub enum Report {
    /// The server has it.
    Delivered { client_id: String, message: Message },
    /// Refused for good and removed from the outbox.
    Refused {
        client_id: String,
        room_id: RoomId,
        error: ErrorDetail,
    },
}

/// Retry timing of [`run`].
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// First delay after a failed attempt; it doubles (with jitter) each time.
    pub min_delay: Duration,
    /// Longest delay between attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    fn backoff(&self) -> ExponentialBackoff {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay.max(self.min_delay))
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
    }
}

/// Sends `user`'s pending messages in the order they were written, one at a time, until
/// `cancel`: each until it is delivered or refused, retrying with backoff (the same key
/// every time). `wake` starts the next attempt at once and resets the backoff: notify it
/// after enqueueing and when the connection comes back.
pub async fn run(
    outbox: Outbox,
    user: UserId,
    courier: Arc<dyn Courier>,
    policy: RetryPolicy,
    wake: Arc<Notify>,
    cancel: CancellationToken,
    report: impl Fn(Report) + Send,
) {
    let mut backoff = policy.backoff();
    loop {
        let pending = match outbox.pending(user).await {
            Ok(pending) => pending,
            Err(e) => {
                tracing::warn!(error = %e, "reading the outbox");
                let delay = backoff.next().unwrap_or(policy.max_delay);
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                    () = wake.notified() => {}
                }
                continue;
            }
        };
        let mut delay = None;
        if pending.is_empty() {
            backoff = policy.backoff();
        }
        for message in &pending {
            if cancel.is_cancelled() {
                return;
            }
            if let Err(e) = outbox.record_attempt(&message.client_id).await {
                tracing::warn!(error = %e, "counting an outbox attempt");
            }
            let outcome = tokio::select! {
                () = cancel.cancelled() => return,
                outcome = courier.deliver(message) => outcome,
            };
            match outcome {
                Ok(stored) => {
                    backoff = policy.backoff();
                    remove(&outbox, &message.client_id).await;
                    report(Report::Delivered {
                        client_id: message.client_id.clone(),
                        message: stored,
                    });
                }
                Err(Undelivered::Refused(error)) => {
                    tracing::info!(client_id = %message.client_id, code = ?error.code, "the server refused a message for good");
                    remove(&outbox, &message.client_id).await;
                    report(Report::Refused {
                        client_id: message.client_id.clone(),
                        room_id: message.room_id,
                        error,
                    });
                }
                Err(Undelivered::Retry { after }) => {
                    let next = backoff.next().unwrap_or(policy.max_delay);
                    delay = Some(after.map_or(next, |a| a.max(next)));
                    tracing::debug!(client_id = %message.client_id, ?delay, "message not delivered yet");
                    // Later messages wait: they must not overtake this one.
                    break;
                }
            }
        }
        match delay {
            Some(delay) => {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                    () = wake.notified() => backoff = policy.backoff(),
                }
            }
            None if pending.is_empty() => {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = wake.notified() => {}
                }
            }
            // Everything read was sent; look again for what came in meanwhile.
            None => {}
        }
    }
}

/// Removes a message, retrying a failed write a few times: a delivered message left in
/// the file is sent again later, which the server answers with the original (harmless),
/// so this only logs when it cannot.
async fn remove(outbox: &Outbox, client_id: &str) {
    for attempt in 0..3 {
        match outbox.remove(client_id).await {
            Ok(()) => return,
            Err(e) if attempt == 2 => {
                tracing::warn!(error = %e, %client_id, "cannot remove a message from the outbox")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::ErrorCode;
    use std::sync::Mutex;

    fn temp_path() -> PathBuf {
        std::env::temp_dir().join(format!("confab-outbox-{}.db", uuid::Uuid::new_v4()))
    }

    fn stored(p: &PendingMessage) -> Message {
        Message {
            id: MessageId::new(),
            room_id: p.room_id,
            seq: 1,
            rev: 1,
            kind: shared::api::MessageKind::Text,
            author: Some(p.user_id),
            body: p.body.clone(),
            reply_to: p.reply_to,
            reactions: Vec::new(),
            mentions: Vec::new(),
            mentions_everyone: false,
            attachments: Vec::new(),
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            edited_at: None,
            deleted: false,
            client_id: Some(p.client_id.clone()),
            author_blocked: false,
        }
    }

    /// Fails the first `failures` attempts of every message with a retry, refuses
    /// bodies starting with "bad", and records every key it saw.
    struct Flaky {
        failures: u32,
        seen: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Courier for Flaky {
        async fn deliver(&self, p: &PendingMessage) -> Result<Message, Undelivered> {
            self.seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(p.client_id.clone());
            if p.body.starts_with("bad") {
                return Err(Undelivered::Refused(ErrorDetail {
                    code: ErrorCode::ValidationFailed,
                    message: "no".into(),
                    fields: None,
                }));
            }
            if p.attempts < self.failures {
                return Err(Undelivered::Retry { after: None });
            }
            Ok(stored(p))
        }
    }

    #[tokio::test]
    async fn messages_survive_reopening_and_keep_their_key() -> Result<(), OutboxError> {
        let path = temp_path();
        let user = UserId::new();
        let room = RoomId::new();
        let outbox = Outbox::open(&path).await?;
        let first = outbox.enqueue(user, room, "one", None).await?;
        let second = outbox.enqueue(user, room, "two", None).await?;
        outbox
            .enqueue(UserId::new(), room, "someone else's", None)
            .await?;
        outbox.record_attempt(&first.client_id).await?;
        outbox.close().await;

        let outbox = Outbox::open(&path).await?;
        let pending = outbox.pending(user).await?;
        assert_eq!(pending.len(), 2);
        assert_eq!(pending[0].client_id, first.client_id);
        assert_eq!(pending[0].attempts, 1);
        assert_eq!(pending[1], second);
        outbox.remove(&first.client_id).await?;
        assert_eq!(outbox.pending(user).await?, vec![second]);
        outbox.close().await;
        let _ = std::fs::remove_file(&path);
        Ok(())
    }

    #[tokio::test]
    async fn retries_keep_the_order_and_the_key_and_refusals_are_dropped() -> Result<(), OutboxError>
    {
        let path = temp_path();
        let user = UserId::new();
        let room = RoomId::new();
        let outbox = Outbox::open(&path).await?;
        let a = outbox.enqueue(user, room, "a", None).await?;
        let bad = outbox.enqueue(user, room, "bad body", None).await?;
        let b = outbox.enqueue(user, room, "b", None).await?;
        let courier = Arc::new(Flaky {
            failures: 2,
            seen: Mutex::new(Vec::new()),
        });
        let reports = Arc::new(Mutex::new(Vec::new()));
        let cancel = CancellationToken::new();
        let policy = RetryPolicy {
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        };
        let task = tokio::spawn({
            let (outbox, courier, reports, cancel) = (
                outbox.clone(),
                courier.clone(),
                reports.clone(),
                cancel.clone(),
            );
            async move {
                run(
                    outbox,
                    user,
                    courier,
                    policy,
                    Arc::new(Notify::new()),
                    cancel,
                    move |r| reports.lock().unwrap_or_else(|e| e.into_inner()).push(r),
                )
                .await
            }
        });
        for _ in 0..500 {
            if reports.lock().unwrap_or_else(|e| e.into_inner()).len() == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        cancel.cancel();
        let _ = task.await;
        let reports = reports.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let order: Vec<&str> = reports
            .iter()
            .map(|r| match r {
                Report::Delivered { client_id, .. } | Report::Refused { client_id, .. } => {
                    client_id.as_str()
                }
            })
            .collect();
        assert_eq!(order, [&a.client_id, &bad.client_id, &b.client_id]);
        assert!(
            matches!(&reports[1], Report::Refused { error, .. } if error.code == ErrorCode::ValidationFailed)
        );
        let seen = courier
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        // a: 3 attempts; bad: 1; b: 3. Never another key, never b before a.
        assert_eq!(seen.iter().filter(|k| **k == a.client_id).count(), 3);
        assert_eq!(seen.iter().filter(|k| **k == b.client_id).count(), 3);
        let first_b = seen.iter().position(|k| *k == b.client_id);
        let last_a = seen.iter().rposition(|k| *k == a.client_id);
        assert!(first_b > last_a);
        assert!(outbox.pending(user).await?.is_empty());
        outbox.close().await;
        let _ = std::fs::remove_file(&path);
        Ok(())
    }

    #[tokio::test]
    async fn cached_pages_and_drafts_survive_reopening_per_user_and_room() -> Result<(), OutboxError>
    {
        let path = temp_path();
        let (me, other) = (UserId::new(), UserId::new());
        let (room, quiet) = (RoomId::new(), RoomId::new());
        let page = |bodies: &[&str], first_seq: u64| -> Vec<Message> {
            bodies
                .iter()
                .zip(first_seq..)
                .map(|(body, seq)| {
                    let mut p = PendingMessage::new(me, room, body, None);
                    p.client_id = format!("c{seq}");
                    Message { seq, ..stored(&p) }
                })
                .collect()
        };
        let outbox = Outbox::open(&path).await?;
        outbox
            .cache_page(me, room, &page(&["one", "two"], 1))
            .await?;
        // A newer page replaces the older one whole (no rows of it left behind).
        let newer = page(&["three", "four", "five"], 3);
        outbox.cache_page(me, room, &newer).await?;
        outbox
            .cache_page(other, room, &page(&["theirs"], 9))
            .await?;
        outbox.set_draft(me, room, "half a thought").await?;
        outbox.set_draft(me, quiet, "to delete").await?;
        outbox.set_draft(me, quiet, "").await?;
        outbox.set_draft(other, room, "their draft").await?;
        outbox.close().await;

        let outbox = Outbox::open(&path).await?;
        let cached = outbox.cached_page(me, room).await?;
        let bodies: Vec<_> = cached.iter().map(|m| (m.seq, m.body.as_str())).collect();
        assert_eq!(bodies, vec![(3, "three"), (4, "four"), (5, "five")]);
        assert_eq!(cached, newer, "kept as sent");
        assert!(outbox.cached_page(me, quiet).await?.is_empty());
        assert_eq!(
            outbox.drafts(me).await?,
            vec![(room, "half a thought".to_owned())]
        );
        outbox.set_draft(me, room, "a whole thought").await?;
        assert_eq!(
            outbox.drafts(me).await?,
            vec![(room, "a whole thought".to_owned())]
        );

        // Leaving the room forgets its page and its draft, only mine.
        outbox.forget_room(me, room).await?;
        assert!(outbox.cached_page(me, room).await?.is_empty());
        assert!(outbox.drafts(me).await?.is_empty());
        assert_eq!(outbox.cached_page(other, room).await?.len(), 1);
        assert_eq!(outbox.drafts(other).await?.len(), 1);
        outbox.close().await;
        let _ = std::fs::remove_file(&path);
        Ok(())
    }
}
