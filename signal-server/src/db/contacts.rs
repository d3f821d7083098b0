//! Contacts, contact requests and blocks.
//!
//! A contact pair is one row with the smaller id first ([`pair`]); a block is one row per
//! direction (`blocker_id` blocks `blocked_id`).

use super::rooms::{ROOM_COLUMNS, RoomRow};
use super::users::PublicUserRow;
use super::{at, now, uuid};
use shared::api::{ContactRequest, PENDING_REQUESTS_MAX, PublicUser};
use shared::{ContactRequestId, RoomId, UserId};
use sqlx::{AnyConnection, AnyPool, FromRow};
use std::collections::HashSet;

/// The canonical order of a pair: smaller id first.
pub fn pair(a: UserId, b: UserId) -> (String, String) {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

/// The `rooms.direct_key` of a pair.
pub fn direct_key(a: UserId, b: UserId) -> String {
    let (x, y) = pair(a, b);
    format!("{x}:{y}")
}

pub async fn are_contacts(pool: &AnyPool, a: UserId, b: UserId) -> sqlx::Result<bool> {
    let (x, y) = pair(a, b);
    let row: Option<(i64,)> =
        sqlx::query_as("select 1 from contacts where user_a = $1 and user_b = $2")
            .bind(x)
            .bind(y)
            .fetch_optional(pool)
            .await?;
    Ok(row.is_some())
}

/// Whether either of the two blocks the other.
pub async fn blocked_either(pool: &AnyPool, a: UserId, b: UserId) -> sqlx::Result<bool> {
    let row: Option<(i64,)> = sqlx::query_as(
        "select 1 from blocks where (blocker_id = $1 and blocked_id = $2) \
                                 or (blocker_id = $2 and blocked_id = $1)",
    )
    .bind(a.to_string())
    .bind(b.to_string())
    .fetch_optional(pool)
    .await?;
    Ok(row.is_some())
}

/// Everyone `user` blocks.
pub async fn blocked_by(pool: &AnyPool, user: UserId) -> anyhow::Result<HashSet<UserId>> {
    let rows: Vec<(String,)> =
        sqlx::query_as("select blocked_id from blocks where blocker_id = $1")
            .bind(user.to_string())
            .fetch_all(pool)
            .await?;
    rows.into_iter().map(|(s,)| Ok(UserId(uuid(&s)?))).collect()
}

/// Everyone in a block relation with `user`, in either direction.
pub async fn block_relations(pool: &AnyPool, user: UserId) -> anyhow::Result<HashSet<UserId>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "select blocked_id from blocks where blocker_id = $1 \
         union select blocker_id from blocks where blocked_id = $1",
    )
    .bind(user.to_string())
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(|(s,)| Ok(UserId(uuid(&s)?))).collect()
}

/// Who sees `user`'s presence and typing, and whose they see: contacts and everyone who
/// shares a group with them, except anyone in a block relation with them. A direct room
/// does not count: its pair sees each other while they are contacts, not after.
pub async fn presence_audience(pool: &AnyPool, user: UserId) -> anyhow::Result<Vec<UserId>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "select b.user_id from room_members a \
           join rooms r on r.id = a.room_id and r.kind <> 'direct' \
           join room_members b on b.room_id = a.room_id \
           where a.user_id = $1 and b.user_id <> $1 \
         union select user_b from contacts where user_a = $1 \
         union select user_a from contacts where user_b = $1",
    )
    .bind(user.to_string())
    .fetch_all(pool)
    .await?;
    let hidden = block_relations(pool, user).await?;
    let mut out = Vec::with_capacity(rows.len());
    for (s,) in rows {
        let id = UserId(uuid(&s)?);
        if !hidden.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// Takes both users' row locks, in id order, as the first statement of a transaction
/// that changes how the two relate (request, accept, block). Every such transaction of a
/// pair then runs one after the other, so "they had already asked you" cannot race with
/// a crossing request, nor an accept with a block; taking them in one global order
/// means two pairs sharing a user cannot deadlock. On SQLite the first write takes the
/// database's write lock, which serializes them all (see `rooms::join` for why it must
/// be the first statement).
async fn lock_pair(conn: &mut AnyConnection, a: UserId, b: UserId) -> sqlx::Result<()> {
    let (x, y) = pair(a, b);
    for id in [x, y] {
        sqlx::query("update users set updated_at = updated_at where id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// One contact of a viewer: the other user, since when, and their direct room if any.
#[derive(FromRow, Debug)]
pub struct ContactRow {
    pub since: i64,
    pub direct_room_id: Option<String>,
    #[sqlx(flatten)]
    pub user: PublicUserRow,
}

/// Selects `ContactRow`s of `$1`, the other user aliased `u`.
fn contact_query(filter: &str) -> String {
    format!(
        "select c.created_at as since, r.id as direct_room_id, {} \
         from contacts c \
         join users u on u.id = (case when c.user_a = $1 then c.user_b else c.user_a end) \
         left join rooms r on r.direct_key = c.user_a || ':' || c.user_b \
         where (c.user_a = $1 or c.user_b = $1) {filter} \
         order by u.username",
        PublicUserRow::columns("u")
    )
}

/// `user`'s contacts, by username.
pub async fn contacts_of(pool: &AnyPool, user: UserId) -> sqlx::Result<Vec<ContactRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(contact_query("")))
        .bind(user.to_string())
        .fetch_all(pool)
        .await
}

/// `other` as a contact of `viewer`, if they are contacts.
pub async fn contact(
    pool: &AnyPool,
    viewer: UserId,
    other: UserId,
) -> sqlx::Result<Option<ContactRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(contact_query("and u.id = $2")))
        .bind(viewer.to_string())
        .bind(other.to_string())
        .fetch_optional(pool)
        .await
}

/// Ends a contact. Returns false if they were not contacts.
pub async fn remove_contact(pool: &AnyPool, a: UserId, b: UserId) -> sqlx::Result<bool> {
    let (x, y) = pair(a, b);
    let removed = sqlx::query("delete from contacts where user_a = $1 and user_b = $2")
        .bind(x)
        .bind(y)
        .execute(pool)
        .await?
        .rows_affected();
    Ok(removed > 0)
}

async fn insert_contact(conn: &mut AnyConnection, a: UserId, b: UserId) -> sqlx::Result<()> {
    let (x, y) = pair(a, b);
    sqlx::query(
        "insert into contacts (user_a, user_b, created_at) values ($1, $2, $3) \
         on conflict do nothing",
    )
    .bind(x)
    .bind(y)
    .bind(now())
    .execute(conn)
    .await?;
    Ok(())
}

/// A pending contact request with both users' public columns.
#[derive(FromRow, Debug)]
pub struct RequestRow {
    pub id: String,
    pub created_at: i64,
    /// Set when the recipient blocks the sender: only the sender ever sees it.
    pub silenced_at: Option<i64>,
    pub from_id: String,
    pub from_username: String,
    pub from_display_name: Option<String>,
    pub from_status_text: Option<String>,
    pub from_avatar_file_id: Option<String>,
    pub to_id: String,
    pub to_username: String,
    pub to_display_name: Option<String>,
    pub to_status_text: Option<String>,
    pub to_avatar_file_id: Option<String>,
}

impl RequestRow {
    pub fn request_id(&self) -> anyhow::Result<ContactRequestId> {
        Ok(ContactRequestId(uuid(&self.id)?))
    }

    pub fn from_user(&self) -> anyhow::Result<UserId> {
        Ok(UserId(uuid(&self.from_id)?))
    }

    pub fn to_user(&self) -> anyhow::Result<UserId> {
        Ok(UserId(uuid(&self.to_id)?))
    }

    pub fn request(&self) -> anyhow::Result<ContactRequest> {
        Ok(ContactRequest {
            id: self.request_id()?,
            from: PublicUser {
                id: self.from_user()?,
                username: self.from_username.clone(),
                display_name: self.from_display_name.clone(),
                status_text: self.from_status_text.clone(),
                avatar_url: super::users::avatar_url(self.from_avatar_file_id.as_ref()),
            },
            to: PublicUser {
                id: self.to_user()?,
                username: self.to_username.clone(),
                display_name: self.to_display_name.clone(),
                status_text: self.to_status_text.clone(),
                avatar_url: super::users::avatar_url(self.to_avatar_file_id.as_ref()),
            },
            created_at: at(self.created_at),
        })
    }
}

const REQUEST_SELECT: &str = "select q.id, q.created_at, q.silenced_at, \
       f.id as from_id, f.username as from_username, \
       f.display_name as from_display_name, f.status_text as from_status_text, f.avatar_file_id as from_avatar_file_id, \
       t.id as to_id, t.username as to_username, \
       t.display_name as to_display_name, t.status_text as to_status_text, t.avatar_file_id as to_avatar_file_id \
     from contact_requests q join users f on f.id = q.from_id join users t on t.id = q.to_id";

/// Requests to `user` that they may see (not silenced) and requests from `user` (all of
/// them: a silenced one must look pending to its sender), newest first.
pub async fn requests_of(
    pool: &AnyPool,
    user: UserId,
) -> sqlx::Result<(Vec<RequestRow>, Vec<RequestRow>)> {
    let incoming = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{REQUEST_SELECT} where q.to_id = $1 and q.silenced_at is null \
         order by q.created_at desc, q.id"
    )))
    .bind(user.to_string())
    .fetch_all(pool)
    .await?;
    let outgoing = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{REQUEST_SELECT} where q.from_id = $1 order by q.created_at desc, q.id"
    )))
    .bind(user.to_string())
    .fetch_all(pool)
    .await?;
    Ok((incoming, outgoing))
}

async fn request_between(
    conn: &mut AnyConnection,
    from: UserId,
    to: UserId,
) -> sqlx::Result<Option<RequestRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{REQUEST_SELECT} where q.from_id = $1 and q.to_id = $2"
    )))
    .bind(from.to_string())
    .bind(to.to_string())
    .fetch_optional(conn)
    .await
}

/// What `send_request` did.
#[derive(Debug)]
pub enum SendRequest {
    /// A new pending request (silenced when the recipient blocks the sender).
    Created(RequestRow),
    /// The sender had already asked: the same request.
    Existing(RequestRow),
    /// The recipient had already asked the sender: their request (this id) is gone and
    /// the two are contacts now.
    Accepted(ContactRequestId),
    AlreadyContacts,
    /// The sender blocks the recipient.
    SenderBlocks,
    /// The sender has `PENDING_REQUESTS_MAX` pending requests already.
    TooMany,
}

/// Asks `to` to become `from`'s contact, all under the pair's lock (see [`lock_pair`]).
/// The pending limit counts silenced requests too, so it never hints at a block.
pub async fn send_request(pool: &AnyPool, from: UserId, to: UserId) -> anyhow::Result<SendRequest> {
    let mut tx = pool.begin().await?;
    lock_pair(&mut tx, from, to).await?;
    let (x, y) = pair(from, to);
    let contacts: Option<(i64,)> =
        sqlx::query_as("select 1 from contacts where user_a = $1 and user_b = $2")
            .bind(x)
            .bind(y)
            .fetch_optional(&mut *tx)
            .await?;
    if contacts.is_some() {
        return Ok(SendRequest::AlreadyContacts);
    }
    let blockers: Vec<(String,)> = sqlx::query_as(
        "select blocker_id from blocks where (blocker_id = $1 and blocked_id = $2) \
                                          or (blocker_id = $2 and blocked_id = $1)",
    )
    .bind(from.to_string())
    .bind(to.to_string())
    .fetch_all(&mut *tx)
    .await?;
    let sender_blocks = blockers.iter().any(|(b,)| *b == from.to_string());
    let recipient_blocks = blockers.iter().any(|(b,)| *b == to.to_string());
    if sender_blocks {
        return Ok(SendRequest::SenderBlocks);
    }
    if !recipient_blocks && let Some(theirs) = request_between(&mut tx, to, from).await? {
        sqlx::query("delete from contact_requests where id = $1")
            .bind(&theirs.id)
            .execute(&mut *tx)
            .await?;
        insert_contact(&mut tx, from, to).await?;
        tx.commit().await?;
        return Ok(SendRequest::Accepted(theirs.request_id()?));
    }
    if let Some(mine) = request_between(&mut tx, from, to).await? {
        return Ok(SendRequest::Existing(mine));
    }
    let (pending,): (i64,) =
        sqlx::query_as("select count(*) from contact_requests where from_id = $1")
            .bind(from.to_string())
            .fetch_one(&mut *tx)
            .await?;
    if pending >= i64::from(PENDING_REQUESTS_MAX) {
        return Ok(SendRequest::TooMany);
    }
    let ts = now();
    sqlx::query(
        "insert into contact_requests (id, from_id, to_id, created_at, silenced_at) \
         values ($1, $2, $3, $4, $5)",
    )
    .bind(ContactRequestId::new().to_string())
    .bind(from.to_string())
    .bind(to.to_string())
    .bind(ts)
    .bind(recipient_blocks.then_some(ts))
    .execute(&mut *tx)
    .await?;
    let row = request_between(&mut tx, from, to)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the new contact request is not there"))?;
    tx.commit().await?;
    Ok(SendRequest::Created(row))
}

/// The sender of a request to `to` that `to` may see.
async fn visible_sender(
    pool: &AnyPool,
    id: ContactRequestId,
    to: UserId,
) -> anyhow::Result<Option<UserId>> {
    let row: Option<(String,)> = sqlx::query_as(
        "select from_id from contact_requests \
         where id = $1 and to_id = $2 and silenced_at is null",
    )
    .bind(id.to_string())
    .bind(to.to_string())
    .fetch_optional(pool)
    .await?;
    row.map(|(s,)| Ok(UserId(uuid(&s)?))).transpose()
}

/// `to` accepts a request they may see: it is gone and the two are contacts. Returns
/// the sender, or None when there is no such request for `to`.
pub async fn accept_request(
    pool: &AnyPool,
    id: ContactRequestId,
    to: UserId,
) -> anyhow::Result<Option<UserId>> {
    let Some(from) = visible_sender(pool, id, to).await? else {
        return Ok(None);
    };
    let mut tx = pool.begin().await?;
    lock_pair(&mut tx, from, to).await?;
    // Under the lock: a block (which silences the request) or a cancel may have come
    // between the look-up and here.
    let deleted = sqlx::query(
        "delete from contact_requests where id = $1 and to_id = $2 and silenced_at is null",
    )
    .bind(id.to_string())
    .bind(to.to_string())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if deleted == 0 {
        return Ok(None);
    }
    insert_contact(&mut tx, from, to).await?;
    tx.commit().await?;
    Ok(Some(from))
}

/// `to` declines a request they may see. Returns its sender.
pub async fn decline_request(
    pool: &AnyPool,
    id: ContactRequestId,
    to: UserId,
) -> anyhow::Result<Option<UserId>> {
    let Some(from) = visible_sender(pool, id, to).await? else {
        return Ok(None);
    };
    let deleted = sqlx::query(
        "delete from contact_requests where id = $1 and to_id = $2 and silenced_at is null",
    )
    .bind(id.to_string())
    .bind(to.to_string())
    .execute(pool)
    .await?
    .rows_affected();
    Ok((deleted > 0).then_some(from))
}

/// A request's sender cancels it. Returns its recipient and whether it was silenced
/// (then the recipient never knew of it).
pub async fn cancel_request(
    pool: &AnyPool,
    id: ContactRequestId,
    from: UserId,
) -> anyhow::Result<Option<(UserId, bool)>> {
    let row: Option<(String, Option<i64>)> = sqlx::query_as(
        "select to_id, silenced_at from contact_requests where id = $1 and from_id = $2",
    )
    .bind(id.to_string())
    .bind(from.to_string())
    .fetch_optional(pool)
    .await?;
    let Some((to, silenced_at)) = row else {
        return Ok(None);
    };
    let deleted = sqlx::query("delete from contact_requests where id = $1 and from_id = $2")
        .bind(id.to_string())
        .bind(from.to_string())
        .execute(pool)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Ok(None);
    }
    Ok(Some((UserId(uuid(&to)?), silenced_at.is_some())))
}

/// What a new block changed.
#[derive(Debug, Default)]
pub struct Blocked {
    /// False when the block already existed (nothing else changed then).
    pub new: bool,
    pub contact_removed: bool,
    /// The blocker's own pending request to the blocked, now deleted.
    pub request_deleted: Option<ContactRequestId>,
    /// The blocked's pending request to the blocker, now silenced.
    pub request_silenced: Option<ContactRequestId>,
}

/// `blocker` blocks `blocked`: the block, and in the same transaction the end of their
/// contact, of the blocker's pending request, and the silencing of the blocked's.
pub async fn block(pool: &AnyPool, blocker: UserId, blocked: UserId) -> anyhow::Result<Blocked> {
    let mut tx = pool.begin().await?;
    lock_pair(&mut tx, blocker, blocked).await?;
    let inserted = sqlx::query(
        "insert into blocks (blocker_id, blocked_id, created_at) values ($1, $2, $3) \
         on conflict do nothing",
    )
    .bind(blocker.to_string())
    .bind(blocked.to_string())
    .bind(now())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(Blocked::default());
    }
    let (x, y) = pair(blocker, blocked);
    let contact_removed = sqlx::query("delete from contacts where user_a = $1 and user_b = $2")
        .bind(x)
        .bind(y)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        > 0;
    let mine = request_between(&mut tx, blocker, blocked).await?;
    if let Some(mine) = &mine {
        sqlx::query("delete from contact_requests where id = $1")
            .bind(&mine.id)
            .execute(&mut *tx)
            .await?;
    }
    let theirs = request_between(&mut tx, blocked, blocker)
        .await?
        .filter(|r| r.silenced_at.is_none());
    if let Some(theirs) = &theirs {
        sqlx::query("update contact_requests set silenced_at = $2 where id = $1")
            .bind(&theirs.id)
            .bind(now())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(Blocked {
        new: true,
        contact_removed,
        request_deleted: mine.map(|r| r.request_id()).transpose()?,
        request_silenced: theirs.map(|r| r.request_id()).transpose()?,
    })
}

/// Lifts a block. Returns false if there was none. The contact is not restored.
pub async fn unblock(pool: &AnyPool, blocker: UserId, blocked: UserId) -> sqlx::Result<bool> {
    let removed = sqlx::query("delete from blocks where blocker_id = $1 and blocked_id = $2")
        .bind(blocker.to_string())
        .bind(blocked.to_string())
        .execute(pool)
        .await?
        .rows_affected();
    Ok(removed > 0)
}

/// Someone `user` blocks, since when.
#[derive(FromRow, Debug)]
pub struct BlockRow {
    pub since: i64,
    #[sqlx(flatten)]
    pub user: PublicUserRow,
}

/// Everyone `user` blocks, by username.
pub async fn blocks_of(pool: &AnyPool, user: UserId) -> sqlx::Result<Vec<BlockRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select b.created_at as since, {} from blocks b join users u on u.id = b.blocked_id \
         where b.blocker_id = $1 order by u.username",
        PublicUserRow::columns("u")
    )))
    .bind(user.to_string())
    .fetch_all(pool)
    .await
}

/// Whether the two are members of a common room.
pub async fn share_a_room(pool: &AnyPool, a: UserId, b: UserId) -> sqlx::Result<bool> {
    let row: Option<(i64,)> = sqlx::query_as(
        "select 1 from room_members m join room_members n on n.room_id = m.room_id \
         where m.user_id = $1 and n.user_id = $2 limit 1",
    )
    .bind(a.to_string())
    .bind(b.to_string())
    .fetch_optional(pool)
    .await?;
    Ok(row.is_some())
}

/// `LIKE` pattern text matching `s` literally (with `escape '\'`).
fn like_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Users whose username starts with `query` or whose display name contains it (any
/// case), at most `limit`: the exact username first, then username prefixes, then
/// display-name matches, each by username. Never `me`, never anyone in a block relation
/// with `me`. `lower()` folds ASCII only on SQLite, so there a display name's non-ASCII
/// letters match in their own case only.
pub async fn search_users(
    pool: &AnyPool,
    me: UserId,
    query: &str,
    limit: usize,
) -> sqlx::Result<Vec<PublicUserRow>> {
    let q = query.to_lowercase();
    let literal = like_literal(&q);
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {} from users u \
         where u.id <> $1 \
           and (u.username like $2 escape '\\' or lower(u.display_name) like $3 escape '\\') \
           and not exists (select 1 from blocks b \
                where (b.blocker_id = $1 and b.blocked_id = u.id) \
                   or (b.blocker_id = u.id and b.blocked_id = $1)) \
         order by case when u.username = $4 then 0 \
                       when u.username like $2 escape '\\' then 1 else 2 end, u.username \
         limit $5",
        PublicUserRow::columns("u")
    )))
    .bind(me.to_string())
    .bind(format!("{literal}%"))
    .bind(format!("%{literal}%"))
    .bind(q)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await
}

/// The direct room of a pair, created on first use; `true` when this call created it.
///
/// One transaction whose first statement is the write that claims the pair's
/// `direct_key` (unique): of concurrent callers from both sides exactly one inserts, the
/// others wait for it (PostgreSQL on the index entry, SQLite on the write lock), insert
/// nothing, and then read the winner's room.
pub async fn open_direct(pool: &AnyPool, a: UserId, b: UserId) -> anyhow::Result<(RoomRow, bool)> {
    let (x, y) = pair(a, b);
    let key = direct_key(a, b);
    let id = RoomId::new().to_string();
    let ts = now();
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        "insert into rooms (id, kind, title, owner_id, max_participants, member_count, \
                            created_at, direct_key, last_seq, last_rev) \
         values ($1, 'direct', '', $2, 2, 2, $3, $4, 0, 0) \
         on conflict (direct_key) do nothing",
    )
    .bind(&id)
    .bind(&x)
    .bind(ts)
    .bind(&key)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        > 0;
    if inserted {
        for user in [&x, &y] {
            sqlx::query(
                "insert into room_members (room_id, user_id, joined_at, role) \
                 values ($1, $2, $3, 'member')",
            )
            .bind(&id)
            .bind(user)
            .bind(ts)
            .execute(&mut *tx)
            .await?;
        }
    }
    let room: RoomRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {ROOM_COLUMNS} from rooms r where r.direct_key = $1"
    )))
    .bind(&key)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((room, inserted))
}
