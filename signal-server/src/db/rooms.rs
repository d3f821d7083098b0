//! Rooms, their members and invite links.

use super::users::PublicUserRow;
use super::{at, now, uuid};
use shared::api::{Room, RoomKind, RoomMember, RoomRole};
use shared::{RoomId, UserId};
use sqlx::{AnyPool, FromRow};

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

/// Creates a room with its owner as the first member.
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
        "insert into rooms (id, title, owner_id, max_participants, member_count, created_at) \
         values ($1, $2, $3, $4, 1, $5)",
    )
    .bind(&row.id)
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

/// Rooms a user owns or joined, newest first.
pub async fn of_user(pool: &AnyPool, user: UserId) -> sqlx::Result<Vec<RoomRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {ROOM_COLUMNS} from rooms r join room_members m on m.room_id = r.id \
         where m.user_id = $1 order by m.joined_at desc, r.id"
    )))
    .bind(user.to_string())
    .fetch_all(pool)
    .await
}

#[derive(FromRow, Debug)]
struct MemberRow {
    joined_at: i64,
    #[sqlx(flatten)]
    user: PublicUserRow,
}

/// The members of a room, owner first, then by join time.
pub async fn members(pool: &AnyPool, room: &RoomRow) -> anyhow::Result<Vec<RoomMember>> {
    let rows: Vec<MemberRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select m.joined_at, {} \
         from room_members m join users u on u.id = m.user_id \
         where m.room_id = $1 order by m.joined_at, u.username",
        PublicUserRow::columns("u")
    )))
    .bind(&room.id)
    .fetch_all(pool)
    .await?;
    let mut members = rows
        .into_iter()
        .map(|r| {
            let role = if r.user.id == room.owner_id {
                RoomRole::Owner
            } else {
                RoomRole::Member
            };
            Ok(RoomMember {
                user: r.user.public()?,
                role,
                joined_at: at(r.joined_at),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    members.sort_by_key(|m| m.role != RoomRole::Owner);
    Ok(members)
}

/// What became of a join.
#[derive(Debug, PartialEq, Eq)]
pub enum Join {
    Joined,
    AlreadyMember,
    Full,
    NoSuchRoom,
}

/// Adds a member unless the room is full. Capacity is claimed with a conditional update
/// of the room row, so two concurrent joins cannot both take the last place.
///
/// Every statement of the transaction writes, starting with the first: a SQLite
/// transaction that reads before it writes cannot wait for the write lock (it fails with
/// "database is locked" at once), while one that writes first waits its turn.
pub async fn join(pool: &AnyPool, room: RoomId, user: UserId) -> sqlx::Result<Join> {
    let mut tx = pool.begin().await?;
    let claimed = sqlx::query(
        "update rooms set member_count = member_count + 1 \
         where id = $1 and member_count < max_participants",
    )
    .bind(room.to_string())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let inserted = sqlx::query(
        "insert into room_members (room_id, user_id, joined_at) \
         select $1, $2, $3 where exists (select 1 from rooms where id = $1) \
         on conflict do nothing",
    )
    .bind(room.to_string())
    .bind(user.to_string())
    .bind(now())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    match (claimed, inserted) {
        (1, 1) => {
            tx.commit().await?;
            Ok(Join::Joined)
        }
        // Dropping the transaction rolls back the claimed place or the stray insert.
        (_, 0) => {
            let exists: Option<(i64,)> = sqlx::query_as("select 1 from rooms where id = $1")
                .bind(room.to_string())
                .fetch_optional(&mut *tx)
                .await?;
            Ok(if exists.is_some() {
                Join::AlreadyMember
            } else {
                Join::NoSuchRoom
            })
        }
        _ => Ok(Join::Full),
    }
}

/// Removes a member. Returns false if they were not one.
pub async fn leave(pool: &AnyPool, room: RoomId, user: UserId) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    let removed = sqlx::query("delete from room_members where room_id = $1 and user_id = $2")
        .bind(room.to_string())
        .bind(user.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if removed > 0 {
        sqlx::query("update rooms set member_count = member_count - 1 where id = $1")
            .bind(room.to_string())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(removed > 0)
}

pub async fn delete(pool: &AnyPool, room: RoomId) -> sqlx::Result<()> {
    sqlx::query("delete from rooms where id = $1")
        .bind(room.to_string())
        .execute(pool)
        .await?;
    Ok(())
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

/// Everyone who shares at least one room with `user` (not `user`).
pub async fn co_members(pool: &AnyPool, user: UserId) -> anyhow::Result<Vec<UserId>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "select distinct b.user_id from room_members a \
         join room_members b on b.room_id = a.room_id \
         where a.user_id = $1 and b.user_id <> $1",
    )
    .bind(user.to_string())
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(|(s,)| Ok(UserId(uuid(&s)?))).collect()
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

/// What an invite token leads to.
#[derive(Debug, PartialEq, Eq)]
pub enum InviteLookup {
    Valid(RoomId),
    Unknown,
    ExpiredOrUsedUp,
}

pub async fn find_invite(pool: &AnyPool, token_hash: &str) -> anyhow::Result<InviteLookup> {
    let row: Option<(String, i64, Option<i64>, i64)> = sqlx::query_as(
        "select room_id, expires_at, max_uses, uses from room_invites where token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        None => InviteLookup::Unknown,
        Some((_, expires, max, uses)) if expires <= now() || max.is_some_and(|m| uses >= m) => {
            InviteLookup::ExpiredOrUsedUp
        }
        Some((room, ..)) => InviteLookup::Valid(RoomId(uuid(&room)?)),
    })
}

/// Counts one use of an invite, unless it was used up meanwhile.
pub async fn use_invite(pool: &AnyPool, token_hash: &str) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "update room_invites set uses = uses + 1 \
         where token_hash = $1 and (max_uses is null or uses < max_uses)",
    )
    .bind(token_hash)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}
