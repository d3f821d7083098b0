//! Message timelines: sends, edits, deletions, reactions, pages, catch-up, read markers.
//!
//! Every change to a room takes the room's next `rev` under the room row's lock, in the
//! transaction that makes the change; a new message also takes the next `seq`. Both are
//! dense per room, and on PostgreSQL the row lock orders them by commit, so a reader never
//! sees rev 101 before rev 100 (a global sequence would not give that). Each transaction
//! starts with that update, so on SQLite it waits for the write lock instead of failing.

use super::{at, now, uuid};
use shared::api::{Message, MessageKind, Reaction};
use shared::{MessageId, RoomId, UserId};
use sqlx::{Any, AnyConnection, AnyPool, FromRow, Transaction};
use std::collections::{HashMap, HashSet};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The stored columns of a message.
#[derive(FromRow, Debug, Clone)]
pub struct MessageRow {
    pub id: String,
    pub room_id: String,
    pub seq: i64,
    pub rev: i64,
    pub kind: String,
    pub author_id: Option<String>,
    pub body: String,
    pub reply_to: Option<String>,
    pub client_id: Option<String>,
    pub created_at: i64,
    pub edited_at: Option<i64>,
    pub deleted_at: Option<i64>,
    /// Set when `@everyone` from a channel admin mentions every member (see
    /// `insert_mentions`).
    pub mentions_everyone_at: Option<i64>,
}

const COLUMNS: &str = "id, room_id, seq, rev, kind, author_id, body, reply_to, client_id, \
                       created_at, edited_at, deleted_at, mentions_everyone_at";

impl MessageRow {
    /// The message as the API shows it, with its reactions and mentions.
    pub fn message(
        &self,
        reactions: Vec<Reaction>,
        mentions: Vec<UserId>,
    ) -> anyhow::Result<Message> {
        let id = |s: &String| uuid(s);
        Ok(Message {
            id: MessageId(id(&self.id)?),
            room_id: RoomId(id(&self.room_id)?),
            seq: u64::try_from(self.seq)?,
            rev: u64::try_from(self.rev)?,
            kind: MessageKind::parse(&self.kind)
                .ok_or_else(|| anyhow::anyhow!("bad message kind {:?}", self.kind))?,
            author: self.author_id.as_ref().map(id).transpose()?.map(UserId),
            body: self.body.clone(),
            reply_to: self.reply_to.as_ref().map(id).transpose()?.map(MessageId),
            reactions,
            mentions,
            mentions_everyone: self.mentions_everyone_at.is_some(),
            attachments: Vec::new(),
            created_at: at(self.created_at),
            edited_at: self.edited_at.map(at),
            deleted: self.deleted_at.is_some(),
            client_id: self.client_id.clone(),
            author_blocked: false,
        })
    }
}

/// A user may write in a room: a member, and in a direct room still a contact of the
/// other (the history of a pair that is no longer contacts stays readable, read-only).
/// `$1` is the room, `$2` the user; used in the `where` of the update on `rooms`.
const WRITABLE: &str = "exists (select 1 from room_members m where m.room_id = rooms.id and m.user_id = $2) \
     and (rooms.kind <> 'direct' or exists (select 1 from contacts c \
          where c.user_a = substr(rooms.direct_key, 1, 36) and c.user_b = substr(rooms.direct_key, 38, 36)))";

/// A new message in an announcement channel is for its admins (and owner) only; `$2` is
/// the author. Reactions and edits of one's own messages are not new messages.
const ANNOUNCEMENT: &str = "(rooms.announcement_at is null or exists (select 1 from room_members a \
     where a.room_id = rooms.id and a.user_id = $2 and a.role in ('owner', 'admin')))";

/// Why a write to a room was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No such room, or not a member: the same answer, so rooms cannot be probed.
    NotFound,
    /// A direct room whose pair is no longer contacts.
    ReadOnly,
    /// An announcement channel, and the author is not one of its admins.
    AdminsOnly,
}

/// Takes the room's next rev (and, for a new message, its next seq) if `user` may write
/// there. The first statement of every writing transaction.
async fn claim(
    conn: &mut AnyConnection,
    room: RoomId,
    user: UserId,
    new_message: bool,
) -> sqlx::Result<Option<(i64, i64)>> {
    let bump = if new_message { 1 } else { 0 };
    let announcement = if new_message {
        format!("and {ANNOUNCEMENT}")
    } else {
        String::new()
    };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update rooms set last_seq = last_seq + {bump}, last_rev = last_rev + 1 \
         where id = $1 and {WRITABLE} {announcement} returning last_seq, last_rev"
    )))
    .bind(room.to_string())
    .bind(user.to_string())
    .fetch_optional(conn)
    .await
}

/// Why `claim` refused.
pub async fn refusal(pool: &AnyPool, room: RoomId, user: UserId) -> sqlx::Result<Refusal> {
    refusal_on(&mut *pool.acquire().await?, room, user).await
}

async fn refusal_on(conn: &mut AnyConnection, room: RoomId, user: UserId) -> sqlx::Result<Refusal> {
    let member: Option<(Option<i64>,)> = sqlx::query_as(
        "select r.announcement_at from room_members m join rooms r on r.id = m.room_id \
         where m.room_id = $1 and m.user_id = $2",
    )
    .bind(room.to_string())
    .bind(user.to_string())
    .fetch_optional(conn)
    .await?;
    Ok(match member {
        None => Refusal::NotFound,
        Some((Some(_),)) => Refusal::AdminsOnly,
        Some((None,)) => Refusal::ReadOnly,
    })
}

/// A new message to store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub room: RoomId,
    pub author: UserId,
    pub kind: MessageKind,
    pub body: String,
    pub reply_to: Option<MessageId>,
    /// The idempotency key; None for system messages.
    pub client_id: Option<String>,
    /// Usernames the body mentions (lowercase, without `@`).
    pub mentions: Vec<String>,
    /// Uploads to attach (see `db::files::attach_in`). Sends with attachments take
    /// [`send`], never the SQLite writer's batches.
    pub attachments: Vec<shared::UploadId>,
}

/// What became of a send.
#[derive(Debug)]
pub enum Sent {
    /// Stored now.
    Created(MessageRow, Vec<UserId>),
    /// The key was used before for this same message: the original.
    Replayed(MessageRow),
    /// The key was used before for a different message.
    KeyReused,
    Refused(Refusal),
    /// An attachment is not the author's, not an attachment upload, or attached already.
    BadAttachments,
}

/// Stores a message: one transaction takes the next seq and rev, inserts it (unless the
/// author's key was used: the unique index decides, also between racing retries), records
/// its mentions and moves the author's read marker to it.
pub async fn send(pool: &AnyPool, new: &NewMessage) -> anyhow::Result<Sent> {
    let mut tx = pool.begin().await?;
    let sent = send_in(&mut tx, new).await?;
    if matches!(sent, Sent::Created(..)) {
        tx.commit().await?;
    } else {
        tx.rollback().await?;
    }
    Ok(sent)
}

/// The statements of one send, inside a transaction the caller owns and commits. The
/// first is the write that claims the seq and rev (see the module comment). A key that
/// was used before gives the claimed seq and rev back at once, so a batch of sends in one
/// transaction (the SQLite writer) leaves no gap either.
async fn send_in(conn: &mut AnyConnection, new: &NewMessage) -> anyhow::Result<Sent> {
    let Some((seq, rev)) = claim(conn, new.room, new.author, true).await? else {
        if let Some(client_id) = &new.client_id
            && let Some(original) = by_client_id_on(conn, new.author, client_id).await?
        {
            return Ok(replay_or_reuse(original, new));
        }
        return Ok(Sent::Refused(refusal_on(conn, new.room, new.author).await?));
    };
    let mut row = MessageRow {
        id: MessageId::new().to_string(),
        room_id: new.room.to_string(),
        seq,
        rev,
        kind: new.kind.as_str().to_owned(),
        author_id: Some(new.author.to_string()),
        body: new.body.clone(),
        reply_to: new.reply_to.map(|m| m.to_string()),
        client_id: new.client_id.clone(),
        created_at: now(),
        edited_at: None,
        deleted_at: None,
        mentions_everyone_at: None,
    };
    let inserted = sqlx::query(
        "insert into messages (id, room_id, seq, rev, kind, author_id, body, reply_to, client_id, created_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         on conflict (author_id, client_id) do nothing",
    )
    .bind(&row.id)
    .bind(&row.room_id)
    .bind(row.seq)
    .bind(row.rev)
    .bind(&row.kind)
    .bind(&row.author_id)
    .bind(&row.body)
    .bind(&row.reply_to)
    .bind(&row.client_id)
    .bind(row.created_at)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        // The room row is still locked by this transaction: nobody claimed after us.
        sqlx::query(
            "update rooms set last_seq = last_seq - 1, last_rev = last_rev - 1 where id = $1",
        )
        .bind(&row.room_id)
        .execute(&mut *conn)
        .await?;
        let original = match &new.client_id {
            Some(key) => by_client_id_on(conn, new.author, key).await?,
            None => None,
        };
        return Ok(match original {
            Some(original) => replay_or_reuse(original, new),
            None => anyhow::bail!("a message insert conflicted without an original"),
        });
    }
    let mentions = insert_mentions(conn, &mut row, &new.mentions).await?;
    if !new.attachments.is_empty() {
        let attached =
            super::files::attach_in(conn, &row.id, &row.room_id, new.author, &new.attachments)
                .await?;
        if attached != new.attachments.len() {
            // The caller rolls the whole send back.
            return Ok(Sent::BadAttachments);
        }
    }
    sqlx::query(
        "update room_members set last_read_seq = $3, delivered_seq = $3 \
         where room_id = $1 and user_id = $2 and last_read_seq < $3",
    )
    .bind(&row.room_id)
    .bind(new.author.to_string())
    .bind(seq)
    .execute(&mut *conn)
    .await?;
    Ok(Sent::Created(row, mentions))
}

/// A system message (a missed call) from `author`'s side; no key, no read marker moved.
pub async fn send_system(
    pool: &AnyPool,
    room: RoomId,
    author: UserId,
    kind: MessageKind,
    body: &str,
) -> anyhow::Result<Option<MessageRow>> {
    let mut tx = pool.begin().await?;
    // A system message does not need the pair to still be contacts, only membership.
    let claimed: Option<(i64, i64)> = sqlx::query_as(
        "update rooms set last_seq = last_seq + 1, last_rev = last_rev + 1 \
         where id = $1 and exists (select 1 from room_members where room_id = $1 and user_id = $2) \
         returning last_seq, last_rev",
    )
    .bind(room.to_string())
    .bind(author.to_string())
    .fetch_optional(&mut *tx)
    .await?;
    let Some((seq, rev)) = claimed else {
        return Ok(None);
    };
    let row = MessageRow {
        id: MessageId::new().to_string(),
        room_id: room.to_string(),
        seq,
        rev,
        kind: kind.as_str().to_owned(),
        author_id: Some(author.to_string()),
        body: body.to_owned(),
        reply_to: None,
        client_id: None,
        created_at: now(),
        edited_at: None,
        deleted_at: None,
        mentions_everyone_at: None,
    };
    sqlx::query(
        "insert into messages (id, room_id, seq, rev, kind, author_id, body, created_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&row.id)
    .bind(&row.room_id)
    .bind(row.seq)
    .bind(row.rev)
    .bind(&row.kind)
    .bind(&row.author_id)
    .bind(&row.body)
    .bind(row.created_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(row))
}

fn replay_or_reuse(original: MessageRow, new: &NewMessage) -> Sent {
    // Once edited or deleted, the stored body no longer tells what was first sent: a
    // retry of the key is taken as the retry it almost surely is.
    let changed = original.edited_at.is_some() || original.deleted_at.is_some();
    let same_content =
        original.body == new.body && original.reply_to == new.reply_to.map(|m| m.to_string());
    if original.room_id == new.room.to_string() && (changed || same_content) {
        Sent::Replayed(original)
    } else {
        Sent::KeyReused
    }
}

pub async fn by_client_id(
    pool: &AnyPool,
    author: UserId,
    client_id: &str,
) -> sqlx::Result<Option<MessageRow>> {
    by_client_id_on(&mut *pool.acquire().await?, author, client_id).await
}

async fn by_client_id_on(
    conn: &mut AnyConnection,
    author: UserId,
    client_id: &str,
) -> sqlx::Result<Option<MessageRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from messages where author_id = $1 and client_id = $2"
    )))
    .bind(author.to_string())
    .bind(client_id)
    .fetch_optional(conn)
    .await
}

/// Records which members `usernames` are (not the author) and returns their ids. In a
/// channel, `@everyone` from one of its admins marks the message as mentioning every
/// member (`mentions_everyone_at`, set on `row` too; one update, not a row per member);
/// from anyone else (or in a group) it is plain text, or a user named so.
async fn insert_mentions(
    conn: &mut AnyConnection,
    row: &mut MessageRow,
    usernames: &[String],
) -> anyhow::Result<Vec<UserId>> {
    if usernames.is_empty() {
        return Ok(Vec::new());
    }
    if usernames.iter().any(|n| n == "everyone") {
        let at = now();
        let marked = sqlx::query(
            "update messages set mentions_everyone_at = $3 where id = $1 and exists ( \
               select 1 from rooms r join room_members a on a.room_id = r.id \
               where r.id = $2 and r.kind = 'channel' and a.user_id = $4 \
                 and a.role in ('owner', 'admin'))",
        )
        .bind(&row.id)
        .bind(&row.room_id)
        .bind(at)
        .bind(row.author_id.clone().unwrap_or_default())
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if marked > 0 {
            row.mentions_everyone_at = Some(at);
        }
    }
    let placeholders: Vec<String> = (0..usernames.len())
        .map(|i| format!("${}", i + 3))
        .collect();
    let sql = format!(
        "select m.user_id from room_members m join users u on u.id = m.user_id \
         where m.room_id = $1 and m.user_id <> $2 and u.username in ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query_as::<_, (String,)>(sqlx::AssertSqlSafe(sql))
        .bind(&row.room_id)
        .bind(row.author_id.clone().unwrap_or_default());
    for name in usernames {
        query = query.bind(name);
    }
    let ids = query.fetch_all(&mut *conn).await?;
    let mut out = Vec::with_capacity(ids.len());
    for (user,) in ids {
        sqlx::query(
            "insert into message_mentions (message_id, room_id, user_id, seq) values ($1, $2, $3, $4)",
        )
        .bind(&row.id)
        .bind(&row.room_id)
        .bind(&user)
        .bind(row.seq)
        .execute(&mut *conn)
        .await?;
        out.push(UserId(uuid(&user)?));
    }
    Ok(out)
}

pub async fn by_id(
    pool: &AnyPool,
    room: RoomId,
    id: MessageId,
) -> sqlx::Result<Option<MessageRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from messages where id = $1 and room_id = $2"
    )))
    .bind(id.to_string())
    .bind(room.to_string())
    .fetch_optional(pool)
    .await
}

/// What became of an edit, deletion or reaction.
#[derive(Debug)]
pub enum Changed {
    Done(MessageRow),
    /// Nothing to change (the reaction was already there or already gone).
    Unchanged(MessageRow),
    NoSuchMessage,
    /// Someone else's message.
    NotYours,
    TooManyReactions,
    Refused(Refusal),
}

/// Replaces a message's body (author only; not a deleted or system message).
pub async fn edit(
    pool: &AnyPool,
    room: RoomId,
    user: UserId,
    id: MessageId,
    body: &str,
    mentions: &[String],
) -> anyhow::Result<Changed> {
    let mut tx = pool.begin().await?;
    let Some((_, rev)) = claim(&mut tx, room, user, false).await? else {
        tx.rollback().await?;
        return Ok(Changed::Refused(refusal(pool, room, user).await?));
    };
    let updated = sqlx::query(
        "update messages set body = $4, edited_at = $5, rev = $6, mentions_everyone_at = null \
         where id = $1 and room_id = $2 and author_id = $3 and deleted_at is null and kind = 'text'",
    )
    .bind(id.to_string())
    .bind(room.to_string())
    .bind(user.to_string())
    .bind(body)
    .bind(now())
    .bind(rev)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated == 0 {
        tx.rollback().await?;
        return Ok(why_unchangeable(pool, room, user, id).await?);
    }
    sqlx::query("delete from message_mentions where message_id = $1")
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
    let mut row = fetch_in(&mut tx, id).await?;
    insert_mentions(&mut tx, &mut row, mentions).await?;
    tx.commit().await?;
    Ok(Changed::Done(row))
}

async fn why_unchangeable(
    pool: &AnyPool,
    room: RoomId,
    user: UserId,
    id: MessageId,
) -> sqlx::Result<Changed> {
    Ok(match by_id(pool, room, id).await? {
        None => Changed::NoSuchMessage,
        Some(m) if m.deleted_at.is_some() => Changed::NoSuchMessage,
        Some(m) if m.author_id != Some(user.to_string()) || m.kind != "text" => Changed::NotYours,
        Some(m) => Changed::Unchanged(m),
    })
}

async fn fetch_in(tx: &mut Transaction<'static, Any>, id: MessageId) -> sqlx::Result<MessageRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from messages where id = $1"
    )))
    .bind(id.to_string())
    .fetch_one(&mut **tx)
    .await
}

/// Deletes a message, leaving a tombstone with its seq: the author may, and in a group
/// so may an admin (`moderator`). Its reactions and mentions go with the body.
pub async fn delete(
    pool: &AnyPool,
    room: RoomId,
    user: UserId,
    id: MessageId,
    moderator: bool,
) -> anyhow::Result<Changed> {
    let mut tx = pool.begin().await?;
    let Some((_, rev)) = claim(&mut tx, room, user, false).await? else {
        tx.rollback().await?;
        return Ok(Changed::Refused(refusal(pool, room, user).await?));
    };
    let updated = sqlx::query(
        "update messages set body = '', deleted_at = $4, rev = $5, mentions_everyone_at = null \
         where id = $1 and room_id = $2 and deleted_at is null and (author_id = $3 or $6 = 1)",
    )
    .bind(id.to_string())
    .bind(room.to_string())
    .bind(user.to_string())
    .bind(now())
    .bind(rev)
    .bind(i64::from(moderator))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated == 0 {
        tx.rollback().await?;
        return Ok(match by_id(pool, room, id).await? {
            None => Changed::NoSuchMessage,
            Some(m) if m.deleted_at.is_some() => Changed::NoSuchMessage,
            Some(_) => Changed::NotYours,
        });
    }
    for table in ["message_reactions", "message_mentions"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "delete from {table} where message_id = $1"
        )))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
    }
    let row = fetch_in(&mut tx, id).await?;
    tx.commit().await?;
    Ok(Changed::Done(row))
}

/// Adds (`add`) or removes `user`'s `emoji` on a message; at most
/// [`shared::api::REACTIONS_MAX`] distinct emoji per message.
pub async fn react(
    pool: &AnyPool,
    room: RoomId,
    user: UserId,
    id: MessageId,
    emoji: &str,
    add: bool,
) -> anyhow::Result<Changed> {
    let mut tx = pool.begin().await?;
    let Some((_, rev)) = claim(&mut tx, room, user, false).await? else {
        tx.rollback().await?;
        return Ok(Changed::Refused(refusal(pool, room, user).await?));
    };
    let exists: Option<(Option<i64>,)> =
        sqlx::query_as("select deleted_at from messages where id = $1 and room_id = $2")
            .bind(id.to_string())
            .bind(room.to_string())
            .fetch_optional(&mut *tx)
            .await?;
    if !matches!(exists, Some((None,))) {
        tx.rollback().await?;
        return Ok(Changed::NoSuchMessage);
    }
    let changed = if add {
        let (distinct, has_it): (i64, i64) = sqlx::query_as(
            "select count(distinct emoji), \
                    coalesce(sum(case when emoji = $2 then 1 else 0 end), 0) \
             from message_reactions where message_id = $1",
        )
        .bind(id.to_string())
        .bind(emoji)
        .fetch_one(&mut *tx)
        .await?;
        if has_it == 0 && distinct >= i64::try_from(shared::api::REACTIONS_MAX)? {
            tx.rollback().await?;
            return Ok(Changed::TooManyReactions);
        }
        sqlx::query(
            "insert into message_reactions (message_id, user_id, emoji, created_at, rev) \
             values ($1, $2, $3, $4, $5) on conflict do nothing",
        )
        .bind(id.to_string())
        .bind(user.to_string())
        .bind(emoji)
        .bind(now())
        .bind(rev)
        .execute(&mut *tx)
        .await?
        .rows_affected()
    } else {
        sqlx::query(
            "delete from message_reactions where message_id = $1 and user_id = $2 and emoji = $3",
        )
        .bind(id.to_string())
        .bind(user.to_string())
        .bind(emoji)
        .execute(&mut *tx)
        .await?
        .rows_affected()
    };
    if changed == 0 {
        // Rolling back returns the rev: an idempotent repeat is not a change.
        tx.rollback().await?;
        return Ok(match by_id(pool, room, id).await? {
            Some(m) => Changed::Unchanged(m),
            None => Changed::NoSuchMessage,
        });
    }
    sqlx::query("update messages set rev = $2 where id = $1")
        .bind(id.to_string())
        .bind(rev)
        .execute(&mut *tx)
        .await?;
    let row = fetch_in(&mut tx, id).await?;
    tx.commit().await?;
    Ok(Changed::Done(row))
}

/// Which part of the timeline a page covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    /// The newest messages.
    Latest,
    /// Messages with seq below this.
    Before(i64),
    /// Messages with seq above this.
    After(i64),
    /// Messages around this seq (it included).
    Around(i64),
}

/// A page of a room's timeline in ascending seq, and the room's newest seq.
pub async fn page(
    pool: &AnyPool,
    room: RoomId,
    anchor: Anchor,
    limit: i64,
) -> sqlx::Result<Vec<MessageRow>> {
    let room = room.to_string();
    let select = |cond: &str, order: &str, n: i64| {
        sqlx::query_as::<_, MessageRow>(sqlx::AssertSqlSafe(format!(
            "select {COLUMNS} from messages where room_id = $1 and {cond} order by seq {order} limit {n}"
        )))
    };
    let mut rows = match anchor {
        Anchor::Latest => {
            select("seq > 0", "desc", limit)
                .bind(&room)
                .fetch_all(pool)
                .await?
        }
        Anchor::Before(s) => {
            select("seq < $2", "desc", limit)
                .bind(&room)
                .bind(s)
                .fetch_all(pool)
                .await?
        }
        Anchor::After(s) => {
            select("seq > $2", "asc", limit)
                .bind(&room)
                .bind(s)
                .fetch_all(pool)
                .await?
        }
        Anchor::Around(s) => {
            let before = limit / 2;
            let mut older = select("seq < $2", "desc", before)
                .bind(&room)
                .bind(s)
                .fetch_all(pool)
                .await?;
            let newer = select("seq >= $2", "asc", limit - before)
                .bind(&room)
                .bind(s)
                .fetch_all(pool)
                .await?;
            older.reverse();
            older.extend(newer);
            return Ok(older);
        }
    };
    if !matches!(anchor, Anchor::After(_)) {
        rows.reverse();
    }
    Ok(rows)
}

/// Messages of a room created or changed after `since_rev`, in ascending rev, at most
/// `limit`.
pub async fn changes(
    pool: &AnyPool,
    room: RoomId,
    since_rev: i64,
    limit: i64,
) -> sqlx::Result<Vec<MessageRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from messages where room_id = $1 and rev > $2 order by rev limit {limit}"
    )))
    .bind(room.to_string())
    .bind(since_rev)
    .fetch_all(pool)
    .await
}

/// The reactions and mentions of these messages, for building API messages.
pub async fn decorate(
    pool: &AnyPool,
    rows: &[MessageRow],
    blocked_by_viewer: &HashSet<UserId>,
) -> anyhow::Result<Vec<Message>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut reactions: HashMap<String, Vec<Reaction>> = HashMap::new();
    let mut mentions: HashMap<String, Vec<UserId>> = HashMap::new();
    // Chunked so one statement never has more parameters than SQLite allows.
    for chunk in rows.chunks(500) {
        let list: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let list = list.join(", ");
        let mut q = sqlx::query_as::<_, (String, String, String)>(sqlx::AssertSqlSafe(format!(
            "select message_id, emoji, user_id from message_reactions \
             where message_id in ({list}) order by rev, user_id"
        )));
        for r in chunk {
            q = q.bind(&r.id);
        }
        for (message, emoji, user) in q.fetch_all(pool).await? {
            let list = reactions.entry(message).or_default();
            let user = UserId(uuid(&user)?);
            match list.iter_mut().find(|r| r.emoji == emoji) {
                Some(r) => r.users.push(user),
                None => list.push(Reaction {
                    emoji,
                    users: vec![user],
                }),
            }
        }
        let mut q = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(format!(
            "select message_id, user_id from message_mentions where message_id in ({list}) order by user_id"
        )));
        for r in chunk {
            q = q.bind(&r.id);
        }
        for (message, user) in q.fetch_all(pool).await? {
            mentions
                .entry(message)
                .or_default()
                .push(UserId(uuid(&user)?));
        }
    }
    let live: Vec<&str> = rows
        .iter()
        .filter(|r| r.deleted_at.is_none())
        .map(|r| r.id.as_str())
        .collect();
    let mut attachments = super::files::for_messages(pool, &live).await?;
    rows.iter()
        .map(|r| {
            let mut m = r.message(
                reactions.remove(&r.id).unwrap_or_default(),
                mentions.remove(&r.id).unwrap_or_default(),
            )?;
            if r.deleted_at.is_none() {
                m.attachments = attachments.remove(&r.id).unwrap_or_default();
            }
            m.author_blocked = m.author.is_some_and(|a| blocked_by_viewer.contains(&a));
            Ok(m)
        })
        .collect()
}

/// A room's current seq and rev, and `user`'s read marker, if they are a member.
#[derive(Debug, FromRow)]
pub struct Position {
    pub last_seq: i64,
    pub last_rev: i64,
    pub last_read_seq: i64,
    pub kind: String,
    pub role: String,
    pub member_count: i64,
}

pub async fn position(
    pool: &AnyPool,
    room: RoomId,
    user: UserId,
) -> sqlx::Result<Option<Position>> {
    sqlx::query_as(
        "select r.last_seq, r.last_rev, m.last_read_seq, r.kind, m.role, r.member_count \
         from rooms r join room_members m on m.room_id = r.id \
         where r.id = $1 and m.user_id = $2",
    )
    .bind(room.to_string())
    .bind(user.to_string())
    .fetch_optional(pool)
    .await
}

/// Moves a member's read marker (`read`) or delivery marker forward, never back and never
/// past the room's newest message. Returns the new marker if it moved.
pub async fn advance_marker(
    pool: &AnyPool,
    room: RoomId,
    user: UserId,
    seq: i64,
    read: bool,
) -> sqlx::Result<Option<i64>> {
    let column = if read {
        "last_read_seq"
    } else {
        "delivered_seq"
    };
    let moved: Option<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update room_members set {column} = \
           (select case when r.last_seq < $3 then r.last_seq else $3 end from rooms r where r.id = $1) \
         where room_id = $1 and user_id = $2 and {column} < $3 \
           and {column} < (select r.last_seq from rooms r where r.id = $1) \
         returning {column}"
    )))
    .bind(room.to_string())
    .bind(user.to_string())
    .bind(seq)
    .fetch_optional(pool)
    .await?;
    Ok(moved.map(|(s,)| s))
}

/// The members of a room, and of those, who block `author` (their copies are flagged).
pub async fn audience(
    pool: &AnyPool,
    room: RoomId,
    author: Option<UserId>,
) -> anyhow::Result<(Vec<UserId>, HashSet<UserId>)> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "select m.user_id, case when b.blocker_id is null then 0 else 1 end \
         from room_members m left join blocks b on b.blocker_id = m.user_id and b.blocked_id = $2 \
         where m.room_id = $1",
    )
    .bind(room.to_string())
    .bind(author.map(|a| a.to_string()).unwrap_or_default())
    .fetch_all(pool)
    .await?;
    let mut members = Vec::with_capacity(rows.len());
    let mut blocking = HashSet::new();
    for (user, blocks) in rows {
        let id = UserId(uuid(&user)?);
        if blocks == 1 {
            blocking.insert(id);
        }
        members.push(id);
    }
    Ok((members, blocking))
}

/// Most sends one writer transaction carries.
const WRITER_BATCH: usize = 128;

type WriterJob = (NewMessage, oneshot::Sender<anyhow::Result<Sent>>);

/// SQLite's group commit for sends. SQLite lets one connection write at a time; with
/// several pooled connections trying, the others sleep in its busy handler (1, 2, 5 ms
/// ...), and every statement of every transaction is a round trip to a connection's
/// worker thread. One writer task instead takes whatever sends are queued, runs them in
/// one `begin immediate` transaction on its own connection and commits once, and only
/// then answers each: a send is acknowledged after it is durable, as before, and
/// concurrent senders share the commit instead of queueing for the lock.
#[derive(Debug, Clone)]
pub struct Writer {
    jobs: mpsc::Sender<WriterJob>,
}

impl Writer {
    /// Starts the writer task on `tasks`; it ends at `shutdown`.
    pub fn spawn(pool: AnyPool, shutdown: CancellationToken, tasks: &TaskTracker) -> Self {
        let (jobs, rx) = mpsc::channel(4 * WRITER_BATCH);
        tasks.spawn(run_writer(pool, rx, shutdown));
        Self { jobs }
    }

    /// Stores a message like [`send`], batched with whatever else is being sent.
    pub async fn send(&self, new: NewMessage) -> anyhow::Result<Sent> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send((new, reply))
            .await
            .map_err(|_| anyhow::anyhow!("the message writer has stopped"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the message writer stopped before answering"))?
    }
}

async fn run_writer(pool: AnyPool, mut rx: mpsc::Receiver<WriterJob>, shutdown: CancellationToken) {
    let mut conn = None;
    loop {
        let first = tokio::select! {
            () = shutdown.cancelled() => return,
            job = rx.recv() => match job {
                Some(job) => job,
                None => return,
            },
        };
        let mut batch = vec![first];
        while batch.len() < WRITER_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        match write_batch(&pool, &mut conn, &batch).await {
            Ok(results) => {
                for ((_, reply), sent) in batch.into_iter().zip(results) {
                    // The sender may have given up (its request was cancelled).
                    let _ = reply.send(Ok(sent));
                }
            }
            Err(e) => {
                // Nothing of the batch was committed: send each on its own, so one bad
                // send cannot fail the others.
                tracing::warn!(error = %format!("{e:#}"), "a batch of sends failed; retrying one by one");
                conn = None;
                for (new, reply) in batch {
                    let _ = reply.send(send(&pool, &new).await);
                }
            }
        }
    }
}

async fn write_batch(
    pool: &AnyPool,
    conn: &mut Option<sqlx::pool::PoolConnection<Any>>,
    batch: &[WriterJob],
) -> anyhow::Result<Vec<Sent>> {
    let c = match conn {
        Some(c) => c,
        None => conn.insert(pool.acquire().await?),
    };
    sqlx::query("begin immediate").execute(&mut **c).await?;
    let jobs: Vec<&NewMessage> = batch.iter().map(|(new, _)| new).collect();
    let out = match send_batch_in(c, &jobs).await {
        Ok(out) => out,
        Err(e) => {
            let _ = sqlx::query("rollback").execute(&mut **c).await;
            return Err(e);
        }
    };
    if let Err(e) = sqlx::query("commit").execute(&mut **c).await {
        let _ = sqlx::query("rollback").execute(&mut **c).await;
        return Err(e.into());
    }
    Ok(out)
}

/// `$first, $first+1, ...` for `n` parameters.
fn params(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The statements of a batch of sends in the writer's transaction: a handful of
/// statements for the whole batch instead of three round trips per message (each one a
/// hop to SQLite's worker thread and back). The writer holds the write lock from `begin
/// immediate`, so what it reads first cannot change before it writes: it checks who may
/// write where and which keys were used before, then claims every room's seqs in one
/// update, inserts every message in one statement, and moves the authors' read markers
/// in one more. Mentions (rare) are written per message.
async fn send_batch_in(
    conn: &mut AnyConnection,
    jobs: &[&NewMessage],
) -> anyhow::Result<Vec<Sent>> {
    // Who may write where: distinct (room, author) pairs.
    let mut pairs: Vec<(String, String)> = Vec::new();
    for j in jobs {
        let pair = (j.room.to_string(), j.author.to_string());
        if !pairs.contains(&pair) {
            pairs.push(pair);
        }
    }
    let cond: Vec<String> = (0..pairs.len())
        .map(|i| format!("(r.id = ${} and m.user_id = ${})", 2 * i + 1, 2 * i + 2))
        .collect();
    let sql = format!(
        "select r.id, m.user_id from rooms r join room_members m on m.room_id = r.id \
         where ({}) and (r.kind <> 'direct' or exists (select 1 from contacts c \
             where c.user_a = substr(r.direct_key, 1, 36) and c.user_b = substr(r.direct_key, 38, 36))) \
           and (r.announcement_at is null or m.role in ('owner', 'admin'))",
        cond.join(" or ")
    );
    let mut q = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql));
    for (room, user) in &pairs {
        q = q.bind(room).bind(user);
    }
    let writable: HashSet<(String, String)> = q.fetch_all(&mut *conn).await?.into_iter().collect();

    // Keys used before (by earlier batches).
    let keyed: Vec<(String, String)> = jobs
        .iter()
        .filter_map(|j| j.client_id.clone().map(|k| (j.author.to_string(), k)))
        .collect();
    let mut originals: HashMap<(String, String), MessageRow> = HashMap::new();
    if !keyed.is_empty() {
        let cond: Vec<String> = (0..keyed.len())
            .map(|i| {
                format!(
                    "(author_id = ${} and client_id = ${})",
                    2 * i + 1,
                    2 * i + 2
                )
            })
            .collect();
        let sql = format!("select {COLUMNS} from messages where {}", cond.join(" or "));
        let mut q = sqlx::query_as::<_, MessageRow>(sqlx::AssertSqlSafe(sql));
        for (author, key) in &keyed {
            q = q.bind(author).bind(key);
        }
        for row in q.fetch_all(&mut *conn).await? {
            if let (Some(a), Some(k)) = (row.author_id.clone(), row.client_id.clone()) {
                originals.insert((a, k), row);
            }
        }
    }

    // Decide each job: a replay, a refusal, or new (counted per room, in order).
    enum Plan {
        /// Answered without writing (boxed: a `Sent` is large, the other plans small).
        Done(Box<Sent>),
        New {
            room: String,
            nth: i64,
        },
        /// The same key as an earlier job of this batch.
        Repeat(usize),
    }
    let mut plans: Vec<Plan> = Vec::with_capacity(jobs.len());
    let mut per_room: Vec<(String, i64)> = Vec::new();
    let mut first_of_key: HashMap<(String, String), usize> = HashMap::new();
    for (i, j) in jobs.iter().enumerate() {
        let key = j.client_id.clone().map(|k| (j.author.to_string(), k));
        if let Some(key) = &key {
            if let Some(original) = originals.get(key) {
                plans.push(Plan::Done(Box::new(replay_or_reuse(original.clone(), j))));
                continue;
            }
            if let Some(first) = first_of_key.get(key) {
                plans.push(Plan::Repeat(*first));
                continue;
            }
        }
        let room = j.room.to_string();
        if !writable.contains(&(room.clone(), j.author.to_string())) {
            plans.push(Plan::Done(Box::new(Sent::Refused(
                refusal_on(conn, j.room, j.author).await?,
            ))));
            continue;
        }
        if let Some(key) = key {
            first_of_key.insert(key, i);
        }
        let nth = match per_room.iter_mut().find(|(r, _)| *r == room) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                per_room.push((room.clone(), 1));
                1
            }
        };
        plans.push(Plan::New { room, nth });
    }

    // Claim every room's seqs and revs in one update.
    let mut last: HashMap<String, (i64, i64)> = HashMap::new();
    if !per_room.is_empty() {
        let cases: Vec<String> = (0..per_room.len())
            .map(|i| format!("when ${} then ${}", 2 * i + 1, 2 * i + 2))
            .collect();
        let ids = (0..per_room.len())
            .map(|i| format!("${}", 2 * i + 1))
            .collect::<Vec<_>>()
            .join(", ");
        let case = format!("(case id {} end)", cases.join(" "));
        let sql = format!(
            "update rooms set last_seq = last_seq + {case}, last_rev = last_rev + {case} \
             where id in ({ids}) returning id, last_seq, last_rev"
        );
        let mut q = sqlx::query_as::<_, (String, i64, i64)>(sqlx::AssertSqlSafe(sql));
        for (room, n) in &per_room {
            q = q.bind(room).bind(*n);
        }
        for (id, seq, rev) in q.fetch_all(&mut *conn).await? {
            last.insert(id, (seq, rev));
        }
    }

    // The new rows, numbered from the claimed ranges.
    let now = now();
    let mut rows: Vec<Option<MessageRow>> = Vec::with_capacity(jobs.len());
    for (plan, j) in plans.iter().zip(jobs) {
        rows.push(match plan {
            Plan::New { room, nth } => {
                let count = per_room
                    .iter()
                    .find(|(r, _)| r == room)
                    .map_or(0, |(_, n)| *n);
                let (seq, rev) = last
                    .get(room)
                    .copied()
                    .ok_or_else(|| anyhow::anyhow!("a claimed room vanished"))?;
                Some(MessageRow {
                    id: MessageId::new().to_string(),
                    room_id: room.clone(),
                    seq: seq - count + nth,
                    rev: rev - count + nth,
                    kind: j.kind.as_str().to_owned(),
                    author_id: Some(j.author.to_string()),
                    body: j.body.clone(),
                    reply_to: j.reply_to.map(|m| m.to_string()),
                    client_id: j.client_id.clone(),
                    created_at: now,
                    edited_at: None,
                    deleted_at: None,
                    mentions_everyone_at: None,
                })
            }
            _ => None,
        });
    }
    let new_rows: Vec<&MessageRow> = rows.iter().flatten().collect();
    if !new_rows.is_empty() {
        let values: Vec<String> = (0..new_rows.len())
            .map(|i| format!("({})", params(10 * i + 1, 10)))
            .collect();
        let sql = format!(
            "insert into messages (id, room_id, seq, rev, kind, author_id, body, reply_to, client_id, created_at) \
             values {}",
            values.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in &new_rows {
            q = q
                .bind(&r.id)
                .bind(&r.room_id)
                .bind(r.seq)
                .bind(r.rev)
                .bind(&r.kind)
                .bind(&r.author_id)
                .bind(&r.body)
                .bind(&r.reply_to)
                .bind(&r.client_id)
                .bind(r.created_at);
        }
        q.execute(&mut *conn).await?;

        // Each author's read marker to their newest message of the batch in the room.
        let mut markers: Vec<(String, String, i64)> = Vec::new();
        for r in &new_rows {
            let author = r.author_id.clone().unwrap_or_default();
            match markers
                .iter_mut()
                .find(|(room, a, _)| *room == r.room_id && *a == author)
            {
                Some(m) => m.2 = m.2.max(r.seq),
                None => markers.push((r.room_id.clone(), author, r.seq)),
            }
        }
        let cases: Vec<String> = (0..markers.len())
            .map(|i| {
                format!(
                    "when room_id = ${} and user_id = ${} then ${}",
                    3 * i + 1,
                    3 * i + 2,
                    3 * i + 3
                )
            })
            .collect();
        let which: Vec<String> = (0..markers.len())
            .map(|i| format!("(room_id = ${} and user_id = ${})", 3 * i + 1, 3 * i + 2))
            .collect();
        let case = format!("(case {} else 0 end)", cases.join(" "));
        let sql = format!(
            "update room_members set last_read_seq = max(last_read_seq, {case}), \
                                     delivered_seq = max(delivered_seq, {case}) \
             where {}",
            which.join(" or ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (room, author, seq) in &markers {
            q = q.bind(room).bind(author).bind(*seq);
        }
        q.execute(&mut *conn).await?;
    }

    // Mentions, and the answers in job order.
    let mut out: Vec<Sent> = Vec::with_capacity(jobs.len());
    let mut created: Vec<Option<MessageRow>> = vec![None; jobs.len()];
    for (i, (plan, row)) in plans.into_iter().zip(rows).enumerate() {
        out.push(match (plan, row) {
            (Plan::New { .. }, Some(mut row)) => {
                let mentions = insert_mentions(conn, &mut row, &jobs[i].mentions).await?;
                created[i] = Some(row.clone());
                Sent::Created(row, mentions)
            }
            (Plan::Repeat(first), _) => match &created[first] {
                Some(original) => replay_or_reuse(original.clone(), jobs[i]),
                None => anyhow::bail!("a repeated key without its first send"),
            },
            (Plan::Done(sent), _) => *sent,
            (Plan::New { .. }, None) => anyhow::bail!("a new message without its row"),
        });
    }
    Ok(out)
}
