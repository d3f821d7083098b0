//! Rooms, their members and invite links.
//!
//! Every transaction that changes who is in a room, or their roles, takes the room row
//! first ([`lock_room`], or the capacity claim of a join): they queue behind one lock in
//! one order, so they cannot deadlock on PostgreSQL, and on SQLite the first statement is
//! a write (a SQLite transaction that reads before it writes cannot wait for the write
//! lock: it fails with "database is locked" at once, while one that writes first waits
//! its turn).

use super::users::PublicUserRow;
use super::{at, now, uuid};
use shared::api::{
    MessageKind, MessagePreview, PREVIEW_CHARS, PublicUser, Room, RoomKind, RoomMember, RoomRole,
    RoomSummary, UNREAD_COUNT_CAP,
};
use shared::{MessageId, RoomId, UserId};
use sqlx::{Any, AnyPool, FromRow, Transaction};

#[derive(FromRow, Debug)]
pub struct RoomRow {
    pub id: String,
    pub kind: String,
    pub title: String,
    pub owner_id: String,
    pub max_participants: i64,
    pub member_count: i64,
    pub created_at: i64,
}

/// The columns of a `RoomRow`, with the `rooms` table aliased as `r`.
pub const ROOM_COLUMNS: &str =
    "r.id, r.kind, r.title, r.owner_id, r.max_participants, r.member_count, r.created_at";

impl RoomRow {
    pub fn room_id(&self) -> anyhow::Result<RoomId> {
        Ok(RoomId(uuid(&self.id)?))
    }

    pub fn kind(&self) -> anyhow::Result<RoomKind> {
        RoomKind::parse(&self.kind).ok_or_else(|| anyhow::anyhow!("bad room kind {:?}", self.kind))
    }

    pub fn room(&self) -> anyhow::Result<Room> {
        Ok(Room {
            id: RoomId(uuid(&self.id)?),
            kind: self.kind()?,
            title: self.title.clone(),
            owner_id: UserId(uuid(&self.owner_id)?),
            max_participants: u32::try_from(self.max_participants)?,
            member_count: u32::try_from(self.member_count)?,
            created_at: at(self.created_at),
        })
    }
}

/// Creates a group with its owner as the first member.
pub async fn create(
    pool: &AnyPool,
    owner: UserId,
    title: &str,
    max_participants: u32,
) -> sqlx::Result<RoomRow> {
    let row = RoomRow {
        id: RoomId::new().to_string(),
        kind: RoomKind::Group.as_str().to_owned(),
        title: title.to_owned(),
        owner_id: owner.to_string(),
        max_participants: i64::from(max_participants),
        member_count: 1,
        created_at: now(),
    };
    let mut tx = pool.begin().await?;
    sqlx::query(
        "insert into rooms (id, kind, title, owner_id, max_participants, member_count, created_at) \
         values ($1, $2, $3, $4, $5, 1, $6)",
    )
    .bind(&row.id)
    .bind(&row.kind)
    .bind(&row.title)
    .bind(&row.owner_id)
    .bind(row.max_participants)
    .bind(row.created_at)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "insert into room_members (room_id, user_id, joined_at, role) values ($1, $2, $3, 'owner')",
    )
    .bind(&row.id)
    .bind(&row.owner_id)
    .bind(row.created_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row)
}

pub async fn by_id(pool: &AnyPool, id: RoomId) -> sqlx::Result<Option<RoomRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {ROOM_COLUMNS} from rooms r where r.id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(pool)
    .await
}

/// The room if `user` is a member of it.
pub async fn for_member(pool: &AnyPool, id: RoomId, user: UserId) -> sqlx::Result<Option<RoomRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {ROOM_COLUMNS} from rooms r join room_members m on m.room_id = r.id \
         where r.id = $1 and m.user_id = $2"
    )))
    .bind(id.to_string())
    .bind(user.to_string())
    .fetch_optional(pool)
    .await
}

#[derive(FromRow, Debug)]
struct MembershipRow {
    #[sqlx(flatten)]
    room: RoomRow,
    role: String,
}

/// The room and `user`'s role in it, if they are a member.
pub async fn membership(
    pool: &AnyPool,
    id: RoomId,
    user: UserId,
) -> anyhow::Result<Option<(RoomRow, RoomRole)>> {
    let row: Option<MembershipRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {ROOM_COLUMNS}, m.role from rooms r join room_members m on m.room_id = r.id \
         where r.id = $1 and m.user_id = $2"
    )))
    .bind(id.to_string())
    .bind(user.to_string())
    .fetch_optional(pool)
    .await?;
    row.map(|r| Ok((r.room, parse_role(&r.role)?))).transpose()
}

fn parse_role(s: &str) -> anyhow::Result<RoomRole> {
    RoomRole::parse(s).ok_or_else(|| anyhow::anyhow!("bad room role {s:?}"))
}

/// One room of a member, with what the room list shows; see [`summaries`].
#[derive(FromRow, Debug)]
pub struct SummaryRow {
    #[sqlx(flatten)]
    pub room: RoomRow,
    pub last_seq: i64,
    pub last_rev: i64,
    pub role: String,
    pub last_read_seq: i64,
    pub muted_at: Option<i64>,
    pub joined_at: i64,
    pub unread_count: i64,
    pub mention_count: i64,
    pub lm_id: Option<String>,
    pub lm_seq: Option<i64>,
    pub lm_kind: Option<String>,
    pub lm_body: Option<String>,
    pub lm_created_at: Option<i64>,
    pub lm_author_id: Option<String>,
    pub lm_author_username: Option<String>,
    pub lm_author_display_name: Option<String>,
    pub lm_author_status_text: Option<String>,
    pub lm_author_avatar_file_id: Option<String>,
    /// 1 when the member blocks the last message's author.
    pub lm_author_blocked: i64,
    pub other_id: Option<String>,
    pub other_username: Option<String>,
    pub other_display_name: Option<String>,
    pub other_status_text: Option<String>,
    pub other_avatar_file_id: Option<String>,
    /// 1 when the member and the other user of a direct room block one another (either way).
    pub other_blocked: i64,
}

fn public_user(
    id: Option<&String>,
    username: Option<&String>,
    display_name: Option<&String>,
    status_text: Option<&String>,
    avatar_file_id: Option<&String>,
) -> anyhow::Result<Option<PublicUser>> {
    let (Some(id), Some(username)) = (id, username) else {
        return Ok(None);
    };
    Ok(Some(PublicUser {
        id: UserId(uuid(id)?),
        username: username.clone(),
        display_name: display_name.cloned(),
        status_text: status_text.cloned(),
        avatar_url: super::users::avatar_url(avatar_file_id),
    }))
}

impl SummaryRow {
    /// Whether the member and the other user of a direct room block one another.
    pub fn other_blocked(&self) -> bool {
        self.other_blocked != 0
    }

    /// The summary as far as the database knows it: the caller fills in the other user's
    /// presence and the call's size, which live in the hub.
    pub fn summary(&self) -> anyhow::Result<RoomSummary> {
        let count = |n: i64| u32::try_from(n.clamp(0, i64::from(UNREAD_COUNT_CAP)));
        let last_message = match (&self.lm_id, self.lm_seq, self.lm_created_at) {
            (Some(id), Some(seq), Some(created_at)) => Some(MessagePreview {
                message_id: MessageId(uuid(id)?),
                seq: u64::try_from(seq)?,
                author: public_user(
                    self.lm_author_id.as_ref(),
                    self.lm_author_username.as_ref(),
                    self.lm_author_display_name.as_ref(),
                    self.lm_author_status_text.as_ref(),
                    self.lm_author_avatar_file_id.as_ref(),
                )?,
                // A kind this version does not know yet still shows as text.
                kind: self
                    .lm_kind
                    .as_deref()
                    .and_then(MessageKind::parse)
                    .unwrap_or_default(),
                body: self
                    .lm_body
                    .as_deref()
                    .unwrap_or_default()
                    .chars()
                    .take(PREVIEW_CHARS)
                    .collect(),
                created_at: at(created_at),
                author_blocked: self.lm_author_blocked != 0,
            }),
            _ => None,
        };
        Ok(RoomSummary {
            room: self.room.room()?,
            other_user: public_user(
                self.other_id.as_ref(),
                self.other_username.as_ref(),
                self.other_display_name.as_ref(),
                self.other_status_text.as_ref(),
                self.other_avatar_file_id.as_ref(),
            )?,
            other_presence: None,
            my_role: parse_role(&self.role)?,
            last_message,
            unread_count: count(self.unread_count)?,
            mention_count: count(self.mention_count)?,
            last_read_seq: u64::try_from(self.last_read_seq)?,
            last_seq: u64::try_from(self.last_seq)?,
            rev: u64::try_from(self.last_rev)?,
            muted: self.muted_at.is_some(),
            call_participants: 0,
        })
    }
}

/// The mention count of the member `me` (a `room_members` alias) as a scalar subquery:
/// unread messages naming them (`message_mentions`) or marked as mentioning everyone
/// (`messages.mentions_everyone_at`, not their own), counted once each. Each part walks
/// one index range from the read marker and stops at [`UNREAD_COUNT_CAP`], as does the
/// whole. `not_blocked` is the condition that `me` does not block `m.author_id`.
pub fn mention_count_sql(not_blocked: &str) -> String {
    format!(
        "(select count(*) from ( \
            select seq from ( \
                select mm.seq from message_mentions mm join messages m on m.id = mm.message_id \
                where mm.user_id = me.user_id and mm.room_id = me.room_id \
                  and mm.seq > me.last_read_seq and m.deleted_at is null \
                  and (m.author_id is null or {not_blocked}) \
                limit {UNREAD_COUNT_CAP}) named \
            union \
            select seq from ( \
                select m.seq from messages m \
                where m.room_id = me.room_id and m.seq > me.last_read_seq \
                  and m.mentions_everyone_at is not null and m.deleted_at is null \
                  and m.author_id <> me.user_id and {not_blocked} \
                limit {UNREAD_COUNT_CAP}) everyone \
            limit {UNREAD_COUNT_CAP}) mentions)"
    )
}

/// The direct rooms and groups of `user` (or the one room `only`, of any kind, if they
/// are a member of it) with what the room list shows, newest activity first: the last message's time, else when they
/// joined.
///
/// One query for all rooms. The unread and mention counts count from a subquery that
/// stops at [`UNREAD_COUNT_CAP`] rows, so a room with a million unread messages costs no
/// more than one with ten thousand; both walk an index range from the read marker.
pub async fn summaries(
    pool: &AnyPool,
    user: UserId,
    only: Option<RoomId>,
) -> sqlx::Result<Vec<SummaryRow>> {
    let not_blocked = "not exists (select 1 from blocks b \
                                   where b.blocker_id = me.user_id and b.blocked_id = m.author_id)";
    let sql = format!(
        "select {ROOM_COLUMNS}, r.last_seq, r.last_rev, \
                me.role, me.last_read_seq, me.muted_at, me.joined_at, \
                (select count(*) from ( \
                    select 1 from messages m \
                    where m.room_id = me.room_id and m.seq > me.last_read_seq \
                      and m.deleted_at is null \
                      and (m.author_id is null or (m.author_id <> me.user_id and {not_blocked})) \
                    limit {UNREAD_COUNT_CAP}) unread) as unread_count, \
                {} as mention_count, \
                lm.id as lm_id, lm.seq as lm_seq, lm.kind as lm_kind, \
                substr(lm.body, 1, {PREVIEW_CHARS}) as lm_body, lm.created_at as lm_created_at, \
                au.id as lm_author_id, au.username as lm_author_username, \
                au.display_name as lm_author_display_name, au.status_text as lm_author_status_text, \
                au.avatar_file_id as lm_author_avatar_file_id, \
                case when exists (select 1 from blocks b \
                    where b.blocker_id = me.user_id and b.blocked_id = lm.author_id) \
                then 1 else 0 end as lm_author_blocked, \
                ou.id as other_id, ou.username as other_username, \
                ou.display_name as other_display_name, ou.status_text as other_status_text, \
                ou.avatar_file_id as other_avatar_file_id, \
                case when exists (select 1 from blocks b \
                    where (b.blocker_id = me.user_id and b.blocked_id = o.user_id) \
                       or (b.blocker_id = o.user_id and b.blocked_id = me.user_id)) \
                then 1 else 0 end as other_blocked \
         from room_members me \
         join rooms r on r.id = me.room_id \
         left join messages lm on lm.room_id = me.room_id and lm.seq = ( \
             select m2.seq from messages m2 \
             where m2.room_id = me.room_id and m2.deleted_at is null \
             order by m2.seq desc limit 1) \
         left join users au on au.id = lm.author_id \
         left join room_members o on r.kind = 'direct' and o.room_id = me.room_id \
                                 and o.user_id <> me.user_id \
         left join users ou on ou.id = o.user_id \
         where me.user_id = $1 {} \
         order by coalesce(lm.created_at, me.joined_at) desc, r.id desc",
        mention_count_sql(not_blocked),
        // Channels are listed with their community (db/communities.rs), not here.
        if only.is_some() {
            "and me.room_id = $2"
        } else {
            "and r.kind <> 'channel'"
        }
    );
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(user.to_string());
    if let Some(room) = only {
        query = query.bind(room.to_string());
    }
    let mut rows: Vec<SummaryRow> = query.fetch_all(pool).await?;
    // A direct room has exactly two members; should it ever have more, list it once.
    let mut seen = std::collections::HashSet::new();
    rows.retain(|r| seen.insert(r.room.id.clone()));
    Ok(rows)
}

#[derive(FromRow, Debug)]
struct MemberRow {
    joined_at: i64,
    role: String,
    last_read_seq: i64,
    delivered_seq: i64,
    receipts_hidden_at: Option<i64>,
    #[sqlx(flatten)]
    user: PublicUserRow,
}

impl MemberRow {
    fn member(&self) -> anyhow::Result<RoomMember> {
        Ok(RoomMember {
            user: self.user.public()?,
            role: parse_role(&self.role)?,
            joined_at: at(self.joined_at),
            read_seq: None,
            delivered_seq: None,
        })
    }
}

/// The members of a room, owner first, then by join time.
pub async fn members(pool: &AnyPool, room: &RoomRow) -> anyhow::Result<Vec<RoomMember>> {
    let rows: Vec<MemberRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select m.joined_at, m.role, m.last_read_seq, m.delivered_seq, u.receipts_hidden_at, {} \
         from room_members m join users u on u.id = m.user_id \
         where m.room_id = $1 order by m.joined_at, u.username",
        PublicUserRow::columns("u")
    )))
    .bind(&room.id)
    .fetch_all(pool)
    .await?;
    // Receipts are shown where `read` and `delivered` events are sent: small rooms.
    let receipts = room.member_count <= i64::from(shared::api::RECEIPTS_MAX_MEMBERS);
    let mut members = rows
        .iter()
        .map(|r| {
            let mut m = r.member()?;
            if receipts {
                m.delivered_seq = u64::try_from(r.delivered_seq).ok();
                if r.receipts_hidden_at.is_none() {
                    m.read_seq = u64::try_from(r.last_read_seq).ok();
                }
            }
            Ok(m)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    members.sort_by_key(|m| m.role != RoomRole::Owner);
    Ok(members)
}

/// One member of a room.
pub async fn member(
    pool: &AnyPool,
    room: RoomId,
    user: UserId,
) -> anyhow::Result<Option<RoomMember>> {
    let row: Option<MemberRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select m.joined_at, m.role, m.last_read_seq, m.delivered_seq, u.receipts_hidden_at, {} \
         from room_members m join users u on u.id = m.user_id \
         where m.room_id = $1 and m.user_id = $2",
        PublicUserRow::columns("u")
    )))
    .bind(room.to_string())
    .bind(user.to_string())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(MemberRow::member).transpose()
}

/// The ids of a room's members.
pub async fn member_ids(pool: &AnyPool, room: RoomId) -> anyhow::Result<Vec<UserId>> {
    let rows: Vec<(String,)> =
        sqlx::query_as("select user_id from room_members where room_id = $1")
            .bind(room.to_string())
            .fetch_all(pool)
            .await?;
    rows.into_iter().map(|(s,)| Ok(UserId(uuid(&s)?))).collect()
}

/// Takes the room row's lock: a write that changes nothing. Returns false when there is
/// no such room. See the module comment for why every membership change starts here.
async fn lock_room(tx: &mut Transaction<'_, Any>, room: &str) -> sqlx::Result<bool> {
    let locked = sqlx::query("update rooms set member_count = member_count where id = $1")
        .bind(room)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(locked > 0)
}

/// What became of a join.
#[derive(Debug, PartialEq, Eq)]
pub enum Join {
    Joined,
    AlreadyMember,
    Full,
    /// A direct room (or a channel): it has no members to add.
    NotGroup,
    NoSuchRoom,
}

/// Adds `user` to a group unless it holds `limit` members already, inside `tx` (the
/// caller commits on `Joined` only; dropping the transaction rolls back the claimed place
/// or the stray insert). Capacity is claimed with a conditional update of the room row,
/// so two concurrent joins cannot both take the last place. The claim is this function's
/// first statement and a write (see the module comment).
///
/// A new member's read marker starts at the room's newest message: joining a busy group
/// does not bring its whole history in as unread.
async fn join_in(
    tx: &mut Transaction<'_, Any>,
    room: &str,
    user: &str,
    limit: u32,
) -> sqlx::Result<Join> {
    let claimed = sqlx::query(
        "update rooms set member_count = member_count + 1 \
         where id = $1 and kind = 'group' and member_count < $2",
    )
    .bind(room)
    .bind(i64::from(limit))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let inserted = sqlx::query(
        "insert into room_members (room_id, user_id, joined_at, role, last_read_seq) \
         select r.id, $2, $3, 'member', r.last_seq from rooms r where r.id = $1 \
         on conflict do nothing",
    )
    .bind(room)
    .bind(user)
    .bind(now())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if (claimed, inserted) == (1, 1) {
        return Ok(Join::Joined);
    }
    let kind: Option<(String,)> = sqlx::query_as("select kind from rooms where id = $1")
        .bind(room)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(match kind {
        None => Join::NoSuchRoom,
        Some((kind,)) if kind != RoomKind::Group.as_str() => Join::NotGroup,
        Some(_) if inserted == 0 => Join::AlreadyMember,
        Some(_) => Join::Full,
    })
}

/// Joins a group by its id, unless it holds `limit` members.
pub async fn join(pool: &AnyPool, room: RoomId, user: UserId, limit: u32) -> sqlx::Result<Join> {
    let mut tx = pool.begin().await?;
    let outcome = join_in(&mut tx, &room.to_string(), &user.to_string(), limit).await?;
    if outcome == Join::Joined {
        tx.commit().await?;
    }
    Ok(outcome)
}

/// What became of an admin adding someone to a group.
#[derive(Debug, PartialEq, Eq)]
pub enum AddMember {
    Added,
    Refused(Join),
    /// `actor` is not (or no longer) an admin of the room.
    NotAllowed,
}

/// `actor` adds `user` to a group unless it is full. The actor's role is checked under
/// the room's lock, so a concurrent demotion cannot let the add through.
pub async fn add_member(
    pool: &AnyPool,
    room: RoomId,
    actor: UserId,
    user: UserId,
    limit: u32,
) -> anyhow::Result<AddMember> {
    let mut tx = pool.begin().await?;
    let room = room.to_string();
    let outcome = join_in(&mut tx, &room, &user.to_string(), limit).await?;
    if outcome != Join::Joined {
        return Ok(AddMember::Refused(outcome));
    }
    let role: Option<(String,)> =
        sqlx::query_as("select role from room_members where room_id = $1 and user_id = $2")
            .bind(&room)
            .bind(actor.to_string())
            .fetch_optional(&mut *tx)
            .await?;
    match role {
        Some((role,)) if parse_role(&role)?.is_admin() => {
            tx.commit().await?;
            Ok(AddMember::Added)
        }
        _ => Ok(AddMember::NotAllowed),
    }
}

/// What became of leaving a room.
#[derive(Debug, PartialEq, Eq)]
pub enum Leave {
    NotMember,
    /// Left; when the owner left, `new_owner` took over.
    Left {
        new_owner: Option<UserId>,
    },
    /// The last member left, and the room is gone.
    RoomDeleted,
}

/// `user` leaves a room. When the owner leaves, the oldest admin becomes the owner, else
/// the oldest member; when the last member leaves, the room is deleted. All in one
/// transaction.
pub async fn leave(pool: &AnyPool, room: RoomId, user: UserId) -> anyhow::Result<Leave> {
    let room = room.to_string();
    let mut tx = pool.begin().await?;
    if !lock_room(&mut tx, &room).await? {
        return Ok(Leave::NotMember);
    }
    let role: Option<(String,)> = sqlx::query_as(
        "delete from room_members where room_id = $1 and user_id = $2 returning role",
    )
    .bind(&room)
    .bind(user.to_string())
    .fetch_optional(&mut *tx)
    .await?;
    let Some((role,)) = role else {
        return Ok(Leave::NotMember);
    };
    let (left,): (i64,) = sqlx::query_as(
        "update rooms set member_count = member_count - 1 where id = $1 returning member_count",
    )
    .bind(&room)
    .fetch_one(&mut *tx)
    .await?;
    if left <= 0 {
        sqlx::query("delete from rooms where id = $1")
            .bind(&room)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        return Ok(Leave::RoomDeleted);
    }
    let mut new_owner = None;
    if role == RoomRole::Owner.as_str() {
        let (heir,): (String,) = sqlx::query_as(
            "select user_id from room_members where room_id = $1 \
             order by case when role = 'admin' then 0 else 1 end, joined_at, user_id limit 1",
        )
        .bind(&room)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("update room_members set role = 'owner' where room_id = $1 and user_id = $2")
            .bind(&room)
            .bind(&heir)
            .execute(&mut *tx)
            .await?;
        sqlx::query("update rooms set owner_id = $2 where id = $1")
            .bind(&room)
            .bind(&heir)
            .execute(&mut *tx)
            .await?;
        new_owner = Some(UserId(uuid(&heir)?));
    }
    tx.commit().await?;
    Ok(Leave::Left { new_owner })
}

/// What became of removing a member or changing their role.
#[derive(Debug, PartialEq, Eq)]
pub enum MemberChange {
    Done,
    /// The user is not a member (or there is no such room).
    NotMember,
    /// Only admins remove members, only the owner removes admins or changes roles, and
    /// nobody removes the owner or changes the owner's role.
    NotAllowed,
}

/// `actor` removes `user` (not themselves: that is [`leave`]). The roles of both are
/// checked in the delete itself, under the room's lock.
pub async fn remove_member(
    pool: &AnyPool,
    room: RoomId,
    actor: UserId,
    user: UserId,
) -> sqlx::Result<MemberChange> {
    let room = room.to_string();
    let user = user.to_string();
    let mut tx = pool.begin().await?;
    if !lock_room(&mut tx, &room).await? {
        return Ok(MemberChange::NotMember);
    }
    let removed = sqlx::query(
        "delete from room_members where room_id = $1 and user_id = $2 and ( \
           (role = 'member' and exists (select 1 from room_members a \
              where a.room_id = $1 and a.user_id = $3 and a.role in ('owner', 'admin'))) \
           or (role = 'admin' and exists (select 1 from room_members a \
              where a.room_id = $1 and a.user_id = $3 and a.role = 'owner')))",
    )
    .bind(&room)
    .bind(&user)
    .bind(actor.to_string())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if removed == 0 {
        let member: Option<(i64,)> =
            sqlx::query_as("select 1 from room_members where room_id = $1 and user_id = $2")
                .bind(&room)
                .bind(&user)
                .fetch_optional(&mut *tx)
                .await?;
        return Ok(if member.is_some() {
            MemberChange::NotAllowed
        } else {
            MemberChange::NotMember
        });
    }
    sqlx::query("update rooms set member_count = member_count - 1 where id = $1")
        .bind(&room)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(MemberChange::Done)
}

/// `actor` (who must be the owner) makes `user` an admin or a member again. The owner's
/// own row never changes here: ownership passes only when the owner leaves.
pub async fn set_role(
    pool: &AnyPool,
    room: RoomId,
    actor: UserId,
    user: UserId,
    role: RoomRole,
) -> sqlx::Result<MemberChange> {
    let room = room.to_string();
    let user = user.to_string();
    let mut tx = pool.begin().await?;
    if !lock_room(&mut tx, &room).await? {
        return Ok(MemberChange::NotMember);
    }
    let updated = sqlx::query(
        "update room_members set role = $3 \
         where room_id = $1 and user_id = $2 and role <> 'owner' \
           and exists (select 1 from room_members a \
                       where a.room_id = $1 and a.user_id = $4 and a.role = 'owner')",
    )
    .bind(&room)
    .bind(&user)
    .bind(role.as_str())
    .bind(actor.to_string())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated == 0 {
        let member: Option<(i64,)> =
            sqlx::query_as("select 1 from room_members where room_id = $1 and user_id = $2")
                .bind(&room)
                .bind(&user)
                .fetch_optional(&mut *tx)
                .await?;
        return Ok(if member.is_some() {
            MemberChange::NotAllowed
        } else {
            MemberChange::NotMember
        });
    }
    tx.commit().await?;
    Ok(MemberChange::Done)
}

/// Renames a group or changes its call capacity (`None` leaves a field as it is), if
/// `actor` is one of its admins. Returns false when they are not.
pub async fn update(
    pool: &AnyPool,
    room: RoomId,
    actor: UserId,
    title: Option<&str>,
    max_participants: Option<u32>,
) -> sqlx::Result<bool> {
    // The flags are 0/1 integers rather than nullable parameters so that the statement
    // stays portable (see users::update_profile).
    let done = sqlx::query(
        "update rooms set \
           title = case when $3 = 1 then $4 else title end, \
           max_participants = case when $5 = 1 then $6 else max_participants end \
         where id = $1 and kind = 'group' \
           and exists (select 1 from room_members a where a.room_id = $1 and a.user_id = $2 \
                       and a.role in ('owner', 'admin'))",
    )
    .bind(room.to_string())
    .bind(actor.to_string())
    .bind(i64::from(title.is_some()))
    .bind(title.unwrap_or_default())
    .bind(i64::from(max_participants.is_some()))
    .bind(i64::from(max_participants.unwrap_or_default()))
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Mutes or unmutes a room for one member.
pub async fn set_muted(
    pool: &AnyPool,
    room: RoomId,
    user: UserId,
    muted: bool,
) -> sqlx::Result<()> {
    sqlx::query(
        "update room_members set muted_at = case when $3 = 1 then coalesce(muted_at, $4) end \
         where room_id = $1 and user_id = $2",
    )
    .bind(room.to_string())
    .bind(user.to_string())
    .bind(i64::from(muted))
    .bind(now())
    .execute(pool)
    .await?;
    Ok(())
}

/// Deletes a group if `owner` owns it. Returns the members it had, or None when `owner`
/// is not its owner (or it is not a group).
pub async fn delete(
    pool: &AnyPool,
    room: RoomId,
    owner: UserId,
) -> anyhow::Result<Option<Vec<UserId>>> {
    let room = room.to_string();
    let mut tx = pool.begin().await?;
    // Takes the room's lock only if the owner asks, so the member list read under it is
    // the one the deletion removes.
    let locked = sqlx::query(
        "update rooms set member_count = member_count \
         where id = $1 and owner_id = $2 and kind = 'group'",
    )
    .bind(&room)
    .bind(owner.to_string())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if locked == 0 {
        return Ok(None);
    }
    let rows: Vec<(String,)> =
        sqlx::query_as("select user_id from room_members where room_id = $1")
            .bind(&room)
            .fetch_all(&mut *tx)
            .await?;
    sqlx::query("delete from rooms where id = $1")
        .bind(&room)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    rows.into_iter()
        .map(|(s,)| Ok(UserId(uuid(&s)?)))
        .collect::<anyhow::Result<_>>()
        .map(Some)
}

pub async fn is_member(pool: &AnyPool, room: RoomId, user: UserId) -> sqlx::Result<bool> {
    let row: Option<(i64,)> =
        sqlx::query_as("select 1 from room_members where room_id = $1 and user_id = $2")
            .bind(room.to_string())
            .bind(user.to_string())
            .fetch_optional(pool)
            .await?;
    Ok(row.is_some())
}

pub async fn create_invite(
    pool: &AnyPool,
    room: RoomId,
    creator: UserId,
    token_hash: &str,
    expires_at: i64,
    max_uses: Option<u32>,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into room_invites (token_hash, room_id, created_by, created_at, expires_at, max_uses) \
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(token_hash)
    .bind(room.to_string())
    .bind(creator.to_string())
    .bind(now())
    .bind(expires_at)
    .bind(max_uses.map(i64::from))
    .execute(pool)
    .await?;
    Ok(())
}

/// What became of accepting an invite.
#[derive(Debug, PartialEq, Eq)]
pub enum InviteJoin {
    /// Joined `room` (or was a member already): `joined` is false in that case, and the
    /// use was not counted.
    Joined {
        room: RoomId,
        joined: bool,
    },
    Unknown,
    ExpiredOrUsedUp,
    Refused(Join),
}

/// Accepts an invite: counts one use and joins its room, in one transaction, so that a
/// join that fails (a full room) or that was not needed (already a member) uses nothing.
/// Counting the use is the first statement, conditional on the invite still being valid,
/// so two people racing for an invite's last use cannot both get it.
pub async fn accept_invite(
    pool: &AnyPool,
    token_hash: &str,
    user: UserId,
    limit: u32,
) -> anyhow::Result<InviteJoin> {
    let mut tx = pool.begin().await?;
    let counted = sqlx::query(
        "update room_invites set uses = uses + 1 \
         where token_hash = $1 and expires_at > $2 and (max_uses is null or uses < max_uses)",
    )
    .bind(token_hash)
    .bind(now())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let row: Option<(String,)> =
        sqlx::query_as("select room_id from room_invites where token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((room,)) = row else {
        return Ok(InviteJoin::Unknown);
    };
    if counted == 0 {
        return Ok(InviteJoin::ExpiredOrUsedUp);
    }
    let room_id = RoomId(uuid(&room)?);
    Ok(
        match join_in(&mut tx, &room, &user.to_string(), limit).await? {
            Join::Joined => {
                tx.commit().await?;
                InviteJoin::Joined {
                    room: room_id,
                    joined: true,
                }
            }
            Join::AlreadyMember => InviteJoin::Joined {
                room: room_id,
                joined: false,
            },
            other => InviteJoin::Refused(other),
        },
    )
}
