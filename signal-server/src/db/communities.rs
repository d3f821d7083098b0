//! Communities, their members, bans, invite links and channels.
//!
//! A channel is a `rooms` row of kind `channel` with `community_id` set; every member of
//! the community has a `room_members` row for every channel, carrying their community
//! role, so the rooms and messages code (reads, writes, moderation, unread counts, calls)
//! works for channels unchanged. Every change to membership, roles or channels happens in
//! one transaction that starts by taking the community row's lock (a write that changes
//! nothing, or the capacity claim of a join), for the reason db/rooms.rs's module comment
//! gives: one lock order, and on SQLite a first statement that waits for the write lock.

use super::users::PublicUserRow;
use super::{at, now, uuid};
use shared::api::{ROOM_DEFAULT_PARTICIPANTS, RoomKind, RoomRole, UNREAD_COUNT_CAP};
use shared::communities::{
    CHANNELS_MAX, Channel, CommunityBan, CommunityInvite, CommunityVisibility,
};
use shared::{CommunityId, CommunityInviteId, RoomId, UserId};
use sqlx::{Any, AnyPool, FromRow, Transaction};

/// The name of the channel every new community starts with.
pub const FIRST_CHANNEL: &str = "general";

fn parse_role(s: &str) -> anyhow::Result<RoomRole> {
    RoomRole::parse(s).ok_or_else(|| anyhow::anyhow!("bad community role {s:?}"))
}

fn parse_visibility(s: &str) -> anyhow::Result<CommunityVisibility> {
    CommunityVisibility::parse(s).ok_or_else(|| anyhow::anyhow!("bad visibility {s:?}"))
}

/// What the `?q=` filter and the name/description are compared as: lowercase, on both
/// databases alike (SQLite's `lower` knows only ASCII).
pub fn search_text(name: &str, description: &str) -> String {
    format!("{}\n{}", name.to_lowercase(), description.to_lowercase())
}

/// `user`'s role in `community`, None when they are not a member (or there is no such
/// community).
pub async fn role(
    pool: &AnyPool,
    community: CommunityId,
    user: UserId,
) -> anyhow::Result<Option<RoomRole>> {
    let row: Option<(String,)> = sqlx::query_as(
        "select role from community_members where community_id = $1 and user_id = $2",
    )
    .bind(community.to_string())
    .bind(user.to_string())
    .fetch_optional(pool)
    .await?;
    row.map(|(r,)| parse_role(&r)).transpose()
}

/// Whether `user` is banned from `community`.
pub async fn is_banned(pool: &AnyPool, community: CommunityId, user: UserId) -> sqlx::Result<bool> {
    let row: Option<(i64,)> =
        sqlx::query_as("select 1 from community_bans where community_id = $1 and user_id = $2")
            .bind(community.to_string())
            .bind(user.to_string())
            .fetch_optional(pool)
            .await?;
    Ok(row.is_some())
}

/// A community row, with the viewer's role when the query asked for one.
#[derive(FromRow, Debug, Clone)]
pub struct CommunityRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub icon_file_id: Option<String>,
    pub visibility: String,
    pub owner_id: String,
    pub member_count: i64,
    pub created_at: i64,
    /// The viewer's role; None when not a member.
    pub my_role: Option<String>,
}

const COLUMNS: &str = "c.id, c.name, c.description, c.icon_file_id, c.visibility, c.owner_id, \
                       c.member_count, c.created_at, me.role as my_role";

impl CommunityRow {
    pub fn community_id(&self) -> anyhow::Result<CommunityId> {
        Ok(CommunityId(uuid(&self.id)?))
    }

    pub fn owner(&self) -> anyhow::Result<UserId> {
        Ok(UserId(uuid(&self.owner_id)?))
    }

    pub fn visibility(&self) -> anyhow::Result<CommunityVisibility> {
        parse_visibility(&self.visibility)
    }

    pub fn my_role(&self) -> anyhow::Result<Option<RoomRole>> {
        self.my_role.as_deref().map(parse_role).transpose()
    }

    /// Whether the viewer may see it at all: public, or they are a member.
    pub fn visible(&self) -> bool {
        self.visibility == CommunityVisibility::Public.as_str() || self.my_role.is_some()
    }
}

/// The community as `viewer` sees it (their role filled in), visible or not: the caller
/// decides with [`CommunityRow::visible`].
pub async fn by_id(
    pool: &AnyPool,
    id: CommunityId,
    viewer: UserId,
) -> sqlx::Result<Option<CommunityRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from communities c \
         left join community_members me on me.community_id = c.id and me.user_id = $2 \
         where c.id = $1"
    )))
    .bind(id.to_string())
    .bind(viewer.to_string())
    .fetch_optional(pool)
    .await
}

/// The filters of the community list; see [`list`].
#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    /// Only communities this user is a member of.
    pub member: Option<UserId>,
    pub id: Option<CommunityId>,
    /// Lowercase text to find in the name or description.
    pub text: Option<String>,
    pub visibility: Option<CommunityVisibility>,
    /// After this (created_at, id), exclusive.
    pub after: Option<(i64, String)>,
    pub limit: u32,
}

/// Escapes `%`, `_` and `\` for a `like ... escape '\'` pattern.
fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Communities `viewer` may see (public ones, and private ones they are a member of)
/// that pass `filter`, oldest first, at most `filter.limit + 1` (one more than a page
/// tells whether there is a next one).
pub async fn list(
    pool: &AnyPool,
    viewer: UserId,
    filter: &ListFilter,
) -> sqlx::Result<Vec<CommunityRow>> {
    let mut sql = format!(
        "select {COLUMNS} from communities c \
         left join community_members me on me.community_id = c.id and me.user_id = $1 "
    );
    let mut binds: Vec<String> = vec![viewer.to_string()];
    let next = |value: String, binds: &mut Vec<String>| {
        binds.push(value);
        format!("${}", binds.len())
    };
    if let Some(member) = filter.member {
        let p = next(member.to_string(), &mut binds);
        sql.push_str(&format!(
            "join community_members t on t.community_id = c.id and t.user_id = {p} "
        ));
    }
    sql.push_str("where (c.visibility = 'public' or me.user_id is not null) ");
    if let Some(id) = filter.id {
        let p = next(id.to_string(), &mut binds);
        sql.push_str(&format!("and c.id = {p} "));
    }
    if let Some(text) = &filter.text {
        let p = next(like_pattern(text), &mut binds);
        sql.push_str(&format!("and c.search_text like {p} escape '\\' "));
    }
    if let Some(v) = filter.visibility {
        let p = next(v.as_str().to_owned(), &mut binds);
        sql.push_str(&format!("and c.visibility = {p} "));
    }
    let after = filter.after.clone();
    if let Some((_, id)) = &after {
        let p = next(id.clone(), &mut binds);
        // created_at is bound as a number below, after the strings.
        let n = binds.len() + 1;
        sql.push_str(&format!(
            "and (c.created_at > ${n} or (c.created_at = ${n} and c.id > {p})) "
        ));
    }
    sql.push_str(&format!(
        "order by c.created_at, c.id limit {}",
        u64::from(filter.limit) + 1
    ));
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
    for b in binds {
        query = query.bind(b);
    }
    if let Some((created_at, _)) = after {
        query = query.bind(created_at);
    }
    query.fetch_all(pool).await
}

/// Creates a community with its owner as the first member and one channel,
/// [`FIRST_CHANNEL`].
pub async fn create(
    pool: &AnyPool,
    owner: UserId,
    name: &str,
    description: &str,
    visibility: CommunityVisibility,
) -> anyhow::Result<CommunityId> {
    // Time-ordered, so the list's (created_at, id) order is creation order also within
    // one second.
    let id = CommunityId(uuid::Uuid::now_v7());
    let created_at = now();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "insert into communities (id, name, description, search_text, visibility, owner_id, \
                                  member_count, created_at) \
         values ($1, $2, $3, $4, $5, $6, 1, $7)",
    )
    .bind(id.to_string())
    .bind(name)
    .bind(description)
    .bind(search_text(name, description))
    .bind(visibility.as_str())
    .bind(owner.to_string())
    .bind(created_at)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "insert into community_members (community_id, user_id, role, joined_at) \
         values ($1, $2, 'owner', $3)",
    )
    .bind(id.to_string())
    .bind(owner.to_string())
    .bind(created_at)
    .execute(&mut *tx)
    .await?;
    let first = NewChannel {
        name: FIRST_CHANNEL.to_owned(),
        topic: None,
        category: None,
        announcement: false,
        max_participants: ROOM_DEFAULT_PARTICIPANTS,
    };
    insert_channel(&mut tx, &id.to_string(), &first).await?;
    tx.commit().await?;
    Ok(id)
}

/// Takes the community row's lock. Returns false when there is no such community.
async fn lock(tx: &mut Transaction<'_, Any>, community: &str) -> sqlx::Result<bool> {
    let locked = sqlx::query("update communities set member_count = member_count where id = $1")
        .bind(community)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(locked > 0)
}

/// `user`'s role, read inside a transaction that holds the community's lock.
async fn role_in(
    tx: &mut Transaction<'_, Any>,
    community: &str,
    user: &str,
) -> anyhow::Result<Option<RoomRole>> {
    let row: Option<(String,)> = sqlx::query_as(
        "select role from community_members where community_id = $1 and user_id = $2",
    )
    .bind(community)
    .bind(user)
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|(r,)| parse_role(&r)).transpose()
}

/// Changes to name, description, visibility (None leaves a field). `actor` must be an
/// admin, and the owner to change the visibility; returns false when they are not.
pub async fn update(
    pool: &AnyPool,
    community: CommunityId,
    actor: UserId,
    name: Option<&str>,
    description: Option<&str>,
    visibility: Option<CommunityVisibility>,
) -> anyhow::Result<bool> {
    let id = community.to_string();
    let mut tx = pool.begin().await?;
    if !lock(&mut tx, &id).await? {
        return Ok(false);
    }
    let role = role_in(&mut tx, &id, &actor.to_string()).await?;
    let allowed = match role {
        Some(RoomRole::Owner) => true,
        Some(RoomRole::Admin) => visibility.is_none(),
        _ => false,
    };
    if !allowed {
        return Ok(false);
    }
    let (old_name, old_description): (String, String) =
        sqlx::query_as("select name, description from communities where id = $1")
            .bind(&id)
            .fetch_one(&mut *tx)
            .await?;
    let name = name.unwrap_or(&old_name);
    let description = description.unwrap_or(&old_description);
    sqlx::query(
        "update communities set name = $2, description = $3, search_text = $4, \
           visibility = case when $5 = 1 then $6 else visibility end where id = $1",
    )
    .bind(&id)
    .bind(name)
    .bind(description)
    .bind(search_text(name, description))
    .bind(i64::from(visibility.is_some()))
    .bind(visibility.unwrap_or_default().as_str())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// A deleted community's members and channels, for the events and the calls to end.
#[derive(Debug, Default)]
pub struct Gone {
    pub members: Vec<UserId>,
    pub channels: Vec<RoomId>,
}

/// Deletes a community (its channels and their timelines with it) if `owner` owns it.
/// None when they do not.
pub async fn delete(
    pool: &AnyPool,
    community: CommunityId,
    owner: UserId,
) -> anyhow::Result<Option<Gone>> {
    let id = community.to_string();
    let mut tx = pool.begin().await?;
    let locked = sqlx::query(
        "update communities set member_count = member_count where id = $1 and owner_id = $2",
    )
    .bind(&id)
    .bind(owner.to_string())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if locked == 0 {
        return Ok(None);
    }
    let members = user_ids_in(&mut tx, &id).await?;
    let channels = channel_ids_in(&mut tx, &id).await?;
    // The channels go explicitly rather than by the cascade alone: a SQLite connection
    // without `foreign_keys = on` would leave them behind.
    sqlx::query("delete from rooms where community_id = $1")
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("delete from communities where id = $1")
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(Gone { members, channels }))
}

async fn user_ids_in(
    tx: &mut Transaction<'_, Any>,
    community: &str,
) -> anyhow::Result<Vec<UserId>> {
    let rows: Vec<(String,)> =
        sqlx::query_as("select user_id from community_members where community_id = $1")
            .bind(community)
            .fetch_all(&mut **tx)
            .await?;
    rows.into_iter().map(|(s,)| Ok(UserId(uuid(&s)?))).collect()
}

async fn channel_ids_in(
    tx: &mut Transaction<'_, Any>,
    community: &str,
) -> anyhow::Result<Vec<RoomId>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "select id from rooms where community_id = $1 order by position, created_at, id",
    )
    .bind(community)
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter().map(|(s,)| Ok(RoomId(uuid(&s)?))).collect()
}

/// The ids of a community's members (the audience of its events).
pub async fn member_ids(pool: &AnyPool, community: CommunityId) -> anyhow::Result<Vec<UserId>> {
    let rows: Vec<(String,)> =
        sqlx::query_as("select user_id from community_members where community_id = $1")
            .bind(community.to_string())
            .fetch_all(pool)
            .await?;
    rows.into_iter().map(|(s,)| Ok(UserId(uuid(&s)?))).collect()
}

/// The ids of a community's channels, in order.
pub async fn channel_ids(pool: &AnyPool, community: CommunityId) -> anyhow::Result<Vec<RoomId>> {
    let mut tx = pool.begin().await?;
    let ids = channel_ids_in(&mut tx, &community.to_string()).await?;
    tx.rollback().await?;
    Ok(ids)
}

/// What became of a join.
#[derive(Debug, PartialEq, Eq)]
pub enum Join {
    Joined,
    AlreadyMember,
    Full,
    Banned,
    /// A private community, joined by id rather than by an invite.
    Private,
    NoSuchCommunity,
}

/// Adds `user` unless the community holds `limit` members, they are banned, or (with
/// `open`: a join by id) it is private. The capacity claim is the first statement and a
/// write, conditional on all of that, so two racing joins cannot both take the last place
/// and a ban committed first cannot be joined past. The caller commits on `Joined` only.
async fn join_in(
    tx: &mut Transaction<'_, Any>,
    community: &str,
    user: &str,
    limit: u32,
    open: bool,
) -> anyhow::Result<Join> {
    let claimed = sqlx::query(sqlx::AssertSqlSafe(format!(
        "update communities set member_count = member_count + 1 \
         where id = $1 and member_count < $2 {} \
           and not exists (select 1 from community_bans b \
                           where b.community_id = $1 and b.user_id = $3)",
        if open {
            "and visibility = 'public'"
        } else {
            ""
        }
    )))
    .bind(community)
    .bind(i64::from(limit))
    .bind(user)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let inserted = if claimed == 1 {
        sqlx::query(
            "insert into community_members (community_id, user_id, role, joined_at) \
             values ($1, $2, 'member', $3) on conflict do nothing",
        )
        .bind(community)
        .bind(user)
        .bind(now())
        .execute(&mut **tx)
        .await?
        .rows_affected()
    } else {
        0
    };
    if inserted == 1 {
        // A ban committed while the claim waited for the row's lock is not seen by the
        // claim's own subquery on PostgreSQL (it keeps the statement's snapshot); a new
        // statement, under the lock now held, sees it.
        let banned: Option<(i64,)> =
            sqlx::query_as("select 1 from community_bans where community_id = $1 and user_id = $2")
                .bind(community)
                .bind(user)
                .fetch_optional(&mut **tx)
                .await?;
        if banned.is_some() {
            return Ok(Join::Banned);
        }
        // A new member's read markers start at each channel's newest message, as for a
        // group: joining a busy community does not bring its history in as unread.
        sqlx::query(
            "insert into room_members (room_id, user_id, joined_at, role, last_read_seq) \
             select r.id, $2, $3, 'member', r.last_seq from rooms r where r.community_id = $1 \
             on conflict do nothing",
        )
        .bind(community)
        .bind(user)
        .bind(now())
        .execute(&mut **tx)
        .await?;
        sqlx::query("update rooms set member_count = member_count + 1 where community_id = $1")
            .bind(community)
            .execute(&mut **tx)
            .await?;
        return Ok(Join::Joined);
    }
    let row: Option<(String, i64)> =
        sqlx::query_as("select visibility, member_count from communities where id = $1")
            .bind(community)
            .fetch_optional(&mut **tx)
            .await?;
    let Some((visibility, _)) = row else {
        return Ok(Join::NoSuchCommunity);
    };
    let member: Option<(i64,)> =
        sqlx::query_as("select 1 from community_members where community_id = $1 and user_id = $2")
            .bind(community)
            .bind(user)
            .fetch_optional(&mut **tx)
            .await?;
    if member.is_some() {
        return Ok(Join::AlreadyMember);
    }
    let banned: Option<(i64,)> =
        sqlx::query_as("select 1 from community_bans where community_id = $1 and user_id = $2")
            .bind(community)
            .bind(user)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(if banned.is_some() {
        Join::Banned
    } else if open && visibility != CommunityVisibility::Public.as_str() {
        Join::Private
    } else {
        Join::Full
    })
}

/// Joins a public community by its id.
pub async fn join(
    pool: &AnyPool,
    community: CommunityId,
    user: UserId,
    limit: u32,
) -> anyhow::Result<Join> {
    let mut tx = pool.begin().await?;
    let outcome = join_in(
        &mut tx,
        &community.to_string(),
        &user.to_string(),
        limit,
        true,
    )
    .await?;
    if outcome == Join::Joined {
        tx.commit().await?;
    }
    Ok(outcome)
}

/// Takes `user` out of the community and every channel of it, inside `tx` (which holds
/// the community's lock). Returns false when they were not a member.
async fn remove_in(
    tx: &mut Transaction<'_, Any>,
    community: &str,
    user: &str,
) -> anyhow::Result<bool> {
    let removed =
        sqlx::query("delete from community_members where community_id = $1 and user_id = $2")
            .bind(community)
            .bind(user)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    if removed == 0 {
        return Ok(false);
    }
    let channels = sqlx::query(
        "delete from room_members where user_id = $2 \
           and room_id in (select id from rooms where community_id = $1)",
    )
    .bind(community)
    .bind(user)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if channels > 0 {
        sqlx::query("update rooms set member_count = member_count - 1 where community_id = $1")
            .bind(community)
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query("update communities set member_count = member_count - 1 where id = $1")
        .bind(community)
        .execute(&mut **tx)
        .await?;
    Ok(true)
}

/// What became of leaving, kicking or banning.
#[derive(Debug, PartialEq, Eq)]
pub enum Removal {
    /// Done; these are the channels they are out of now.
    Done {
        channels: Vec<RoomId>,
        was_member: bool,
    },
    /// They are not a member (leave, kick).
    NotMember,
    /// The owner cannot leave (hand the community over, or delete it).
    Owner,
    /// `actor`'s role does not allow it: admins remove members, the owner removes
    /// admins, nobody removes the owner.
    NotAllowed,
    NoSuchCommunity,
}

/// `user` leaves.
pub async fn leave(
    pool: &AnyPool,
    community: CommunityId,
    user: UserId,
) -> anyhow::Result<Removal> {
    let id = community.to_string();
    let user = user.to_string();
    let mut tx = pool.begin().await?;
    if !lock(&mut tx, &id).await? {
        return Ok(Removal::NoSuchCommunity);
    }
    match role_in(&mut tx, &id, &user).await? {
        None => return Ok(Removal::NotMember),
        Some(RoomRole::Owner) => return Ok(Removal::Owner),
        Some(_) => {}
    }
    let channels = channel_ids_in(&mut tx, &id).await?;
    remove_in(&mut tx, &id, &user).await?;
    tx.commit().await?;
    Ok(Removal::Done {
        channels,
        was_member: true,
    })
}

/// Whether `actor` (of role `actor_role`) may remove or ban someone of `target_role`
/// (None: not a member, which only a ban can meet).
fn may_remove(actor_role: Option<RoomRole>, target_role: Option<RoomRole>) -> bool {
    matches!(
        (actor_role, target_role),
        (
            Some(RoomRole::Owner),
            Some(RoomRole::Admin | RoomRole::Member) | None
        ) | (Some(RoomRole::Admin), Some(RoomRole::Member) | None)
    )
}

/// `actor` removes `user` (kick). Both roles are read under the community's lock.
pub async fn kick(
    pool: &AnyPool,
    community: CommunityId,
    actor: UserId,
    user: UserId,
) -> anyhow::Result<Removal> {
    let id = community.to_string();
    let user = user.to_string();
    let mut tx = pool.begin().await?;
    if !lock(&mut tx, &id).await? {
        return Ok(Removal::NoSuchCommunity);
    }
    let actor_role = role_in(&mut tx, &id, &actor.to_string()).await?;
    let target_role = role_in(&mut tx, &id, &user).await?;
    if !actor_role.is_some_and(RoomRole::is_admin) {
        return Ok(Removal::NotAllowed);
    }
    if target_role.is_none() {
        return Ok(Removal::NotMember);
    }
    if !may_remove(actor_role, target_role) {
        return Ok(Removal::NotAllowed);
    }
    let channels = channel_ids_in(&mut tx, &id).await?;
    remove_in(&mut tx, &id, &user).await?;
    tx.commit().await?;
    Ok(Removal::Done {
        channels,
        was_member: true,
    })
}

/// `actor` bans `user` (a member, who is removed at once, or anyone else). Banning again
/// updates nothing and answers `Done` (idempotent).
pub async fn ban(
    pool: &AnyPool,
    community: CommunityId,
    actor: UserId,
    user: UserId,
    reason: Option<&str>,
) -> anyhow::Result<Removal> {
    let id = community.to_string();
    let target = user.to_string();
    let mut tx = pool.begin().await?;
    if !lock(&mut tx, &id).await? {
        return Ok(Removal::NoSuchCommunity);
    }
    let actor_role = role_in(&mut tx, &id, &actor.to_string()).await?;
    let target_role = role_in(&mut tx, &id, &target).await?;
    if !may_remove(actor_role, target_role) {
        return Ok(Removal::NotAllowed);
    }
    sqlx::query(
        "insert into community_bans (community_id, user_id, banned_by, reason, created_at) \
         values ($1, $2, $3, $4, $5) on conflict do nothing",
    )
    .bind(&id)
    .bind(&target)
    .bind(actor.to_string())
    .bind(reason)
    .bind(now())
    .execute(&mut *tx)
    .await?;
    let channels = channel_ids_in(&mut tx, &id).await?;
    let was_member = remove_in(&mut tx, &id, &target).await?;
    tx.commit().await?;
    Ok(Removal::Done {
        channels,
        was_member,
    })
}

/// Lifts a ban (admins). Returns None when `actor` is not an admin, else whether there
/// was a ban.
pub async fn unban(
    pool: &AnyPool,
    community: CommunityId,
    actor: UserId,
    user: UserId,
) -> anyhow::Result<Option<bool>> {
    let id = community.to_string();
    let mut tx = pool.begin().await?;
    if !lock(&mut tx, &id).await? {
        return Ok(None);
    }
    if !role_in(&mut tx, &id, &actor.to_string())
        .await?
        .is_some_and(RoomRole::is_admin)
    {
        return Ok(None);
    }
    let removed =
        sqlx::query("delete from community_bans where community_id = $1 and user_id = $2")
            .bind(&id)
            .bind(user.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
    tx.commit().await?;
    Ok(Some(removed > 0))
}

#[derive(FromRow, Debug)]
struct BanRow {
    banned_by: Option<String>,
    reason: Option<String>,
    created_at: i64,
    #[sqlx(flatten)]
    user: PublicUserRow,
}

/// A community's bans, newest first.
pub async fn bans(pool: &AnyPool, community: CommunityId) -> anyhow::Result<Vec<CommunityBan>> {
    let rows: Vec<BanRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select b.banned_by, b.reason, b.created_at, {} \
         from community_bans b join users u on u.id = b.user_id \
         where b.community_id = $1 order by b.created_at desc, u.username",
        PublicUserRow::columns("u")
    )))
    .bind(community.to_string())
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(CommunityBan {
                user: r.user.public()?,
                banned_by: r.banned_by.as_deref().map(uuid).transpose()?.map(UserId),
                reason: r.reason.clone(),
                created_at: at(r.created_at),
            })
        })
        .collect()
}

/// One ban.
pub async fn ban_of(
    pool: &AnyPool,
    community: CommunityId,
    user: UserId,
) -> anyhow::Result<Option<CommunityBan>> {
    Ok(bans(pool, community)
        .await?
        .into_iter()
        .find(|b| b.user.id == user))
}

/// What became of a role change.
#[derive(Debug, PartialEq, Eq)]
pub enum RoleChange {
    Done,
    /// A hand-over: `user` owns it now, the former owner is an admin.
    HandedOver,
    NotMember,
    /// Only the owner changes roles.
    NotAllowed,
    NoSuchCommunity,
}

/// `actor` (the owner) makes `user` an admin or a member, or (with `Owner`) hands the
/// community over to them. Roles are copied onto their channel rows.
pub async fn set_role(
    pool: &AnyPool,
    community: CommunityId,
    actor: UserId,
    user: UserId,
    role: RoomRole,
) -> anyhow::Result<RoleChange> {
    let id = community.to_string();
    let target = user.to_string();
    let actor = actor.to_string();
    let mut tx = pool.begin().await?;
    if !lock(&mut tx, &id).await? {
        return Ok(RoleChange::NoSuchCommunity);
    }
    if role_in(&mut tx, &id, &actor).await? != Some(RoomRole::Owner) {
        return Ok(RoleChange::NotAllowed);
    }
    if role_in(&mut tx, &id, &target).await?.is_none() {
        return Ok(RoleChange::NotMember);
    }
    if target == actor {
        return Ok(RoleChange::NotAllowed);
    }
    set_role_in(&mut tx, &id, &target, role).await?;
    if role == RoomRole::Owner {
        set_role_in(&mut tx, &id, &actor, RoomRole::Admin).await?;
        sqlx::query("update communities set owner_id = $2 where id = $1")
            .bind(&id)
            .bind(&target)
            .execute(&mut *tx)
            .await?;
        sqlx::query("update rooms set owner_id = $2 where community_id = $1")
            .bind(&id)
            .bind(&target)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        return Ok(RoleChange::HandedOver);
    }
    tx.commit().await?;
    Ok(RoleChange::Done)
}

async fn set_role_in(
    tx: &mut Transaction<'_, Any>,
    community: &str,
    user: &str,
    role: RoomRole,
) -> sqlx::Result<()> {
    sqlx::query("update community_members set role = $3 where community_id = $1 and user_id = $2")
        .bind(community)
        .bind(user)
        .bind(role.as_str())
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "update room_members set role = $3 where user_id = $2 \
           and room_id in (select id from rooms where community_id = $1)",
    )
    .bind(community)
    .bind(user)
    .bind(role.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// One member as the member list shows it (presence is the hub's).
#[derive(FromRow, Debug)]
pub struct MemberRow {
    pub role: String,
    pub joined_at: i64,
    pub rank: i64,
    #[sqlx(flatten)]
    pub user: PublicUserRow,
}

impl MemberRow {
    pub fn role(&self) -> anyhow::Result<RoomRole> {
        parse_role(&self.role)
    }
}

const RANK: &str = "cast(case m.role when 'owner' then 0 when 'admin' then 1 else 2 end as bigint)";

/// Members, owner first, then admins, then by join time; after `after` (rank, joined_at,
/// user id), at most `limit + 1`.
pub async fn members(
    pool: &AnyPool,
    community: CommunityId,
    after: Option<(i64, i64, String)>,
    limit: u32,
) -> sqlx::Result<Vec<MemberRow>> {
    let cursor = if after.is_some() {
        format!(
            "and ({RANK} > $2 or ({RANK} = $2 and (m.joined_at > $3 \
               or (m.joined_at = $3 and m.user_id > $4)))) "
        )
    } else {
        String::new()
    };
    let sql = format!(
        "select m.role, m.joined_at, {RANK} as rank, {} \
         from community_members m join users u on u.id = m.user_id \
         where m.community_id = $1 {cursor} \
         order by rank, m.joined_at, m.user_id limit {}",
        PublicUserRow::columns("u"),
        u64::from(limit) + 1
    );
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(community.to_string());
    if let Some((rank, joined_at, user)) = after {
        query = query.bind(rank).bind(joined_at).bind(user);
    }
    query.fetch_all(pool).await
}

/// One member.
pub async fn member(
    pool: &AnyPool,
    community: CommunityId,
    user: UserId,
) -> sqlx::Result<Option<MemberRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select m.role, m.joined_at, {RANK} as rank, {} \
         from community_members m join users u on u.id = m.user_id \
         where m.community_id = $1 and m.user_id = $2",
        PublicUserRow::columns("u")
    )))
    .bind(community.to_string())
    .bind(user.to_string())
    .fetch_optional(pool)
    .await
}

#[derive(FromRow, Debug)]
struct InviteRow {
    id: String,
    community_id: String,
    created_by: String,
    created_at: i64,
    expires_at: i64,
    max_uses: Option<i64>,
    uses: i64,
}

impl InviteRow {
    fn invite(&self) -> anyhow::Result<CommunityInvite> {
        Ok(CommunityInvite {
            id: CommunityInviteId(uuid(&self.id)?),
            community_id: CommunityId(uuid(&self.community_id)?),
            created_by: UserId(uuid(&self.created_by)?),
            created_at: at(self.created_at),
            expires_at: at(self.expires_at),
            max_uses: self.max_uses.map(u32::try_from).transpose()?,
            uses: u32::try_from(self.uses)?,
        })
    }
}

const INVITE_COLUMNS: &str = "id, community_id, created_by, created_at, expires_at, max_uses, uses";

/// Stores an invite (the caller has checked that `creator` is an admin).
pub async fn create_invite(
    pool: &AnyPool,
    community: CommunityId,
    creator: UserId,
    token_hash: &str,
    expires_at: i64,
    max_uses: Option<u32>,
) -> anyhow::Result<CommunityInvite> {
    let row = InviteRow {
        id: CommunityInviteId::new().to_string(),
        community_id: community.to_string(),
        created_by: creator.to_string(),
        created_at: now(),
        expires_at,
        max_uses: max_uses.map(i64::from),
        uses: 0,
    };
    sqlx::query(
        "insert into community_invites (id, token_hash, community_id, created_by, created_at, \
                                        expires_at, max_uses) \
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&row.id)
    .bind(token_hash)
    .bind(&row.community_id)
    .bind(&row.created_by)
    .bind(row.created_at)
    .bind(row.expires_at)
    .bind(row.max_uses)
    .execute(pool)
    .await?;
    row.invite()
}

/// A community's invites that can still be used, newest first.
pub async fn invites(
    pool: &AnyPool,
    community: CommunityId,
) -> anyhow::Result<Vec<CommunityInvite>> {
    let rows: Vec<InviteRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {INVITE_COLUMNS} from community_invites \
         where community_id = $1 and expires_at > $2 and (max_uses is null or uses < max_uses) \
         order by created_at desc, id"
    )))
    .bind(community.to_string())
    .bind(now())
    .fetch_all(pool)
    .await?;
    rows.iter().map(InviteRow::invite).collect()
}

/// Revokes an invite of this community. Returns whether there was one.
pub async fn revoke_invite(
    pool: &AnyPool,
    community: CommunityId,
    invite: CommunityInviteId,
) -> sqlx::Result<bool> {
    let done = sqlx::query("delete from community_invites where id = $1 and community_id = $2")
        .bind(invite.to_string())
        .bind(community.to_string())
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// What became of accepting an invite.
#[derive(Debug, PartialEq, Eq)]
pub enum InviteJoin {
    /// Joined (or was a member already: `joined` false, no use counted).
    Joined {
        community: CommunityId,
        joined: bool,
    },
    Unknown,
    ExpiredOrUsedUp,
    Banned,
    Full,
}

/// Accepts an invite: counts one use (the first statement, conditional on the invite
/// still being valid) and joins, in one transaction, so that a refused join uses nothing.
pub async fn accept_invite(
    pool: &AnyPool,
    token_hash: &str,
    user: UserId,
    limit: u32,
) -> anyhow::Result<InviteJoin> {
    let mut tx = pool.begin().await?;
    let counted = sqlx::query(
        "update community_invites set uses = uses + 1 \
         where token_hash = $1 and expires_at > $2 and (max_uses is null or uses < max_uses)",
    )
    .bind(token_hash)
    .bind(now())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let row: Option<(String,)> =
        sqlx::query_as("select community_id from community_invites where token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((community,)) = row else {
        return Ok(InviteJoin::Unknown);
    };
    let community_id = CommunityId(uuid(&community)?);
    if counted == 0 {
        return Ok(InviteJoin::ExpiredOrUsedUp);
    }
    Ok(
        match join_in(&mut tx, &community, &user.to_string(), limit, false).await? {
            Join::Joined => {
                tx.commit().await?;
                InviteJoin::Joined {
                    community: community_id,
                    joined: true,
                }
            }
            Join::AlreadyMember => InviteJoin::Joined {
                community: community_id,
                joined: false,
            },
            Join::Banned => InviteJoin::Banned,
            Join::Full => InviteJoin::Full,
            Join::Private | Join::NoSuchCommunity => InviteJoin::Unknown,
        },
    )
}

/// A channel row.
#[derive(FromRow, Debug, Clone)]
pub struct ChannelRow {
    pub id: String,
    pub community_id: String,
    pub title: String,
    pub topic: Option<String>,
    pub category: Option<String>,
    pub position: i64,
    pub announcement_at: Option<i64>,
    pub max_participants: i64,
    pub created_at: i64,
}

const CHANNEL_COLUMNS: &str = "r.id, r.community_id, r.title, r.topic, r.category, r.position, \
                               r.announcement_at, r.max_participants, r.created_at";

impl ChannelRow {
    pub fn channel(&self) -> anyhow::Result<Channel> {
        Ok(Channel {
            id: RoomId(uuid(&self.id)?),
            community_id: CommunityId(uuid(&self.community_id)?),
            name: self.title.clone(),
            topic: self.topic.clone(),
            category: self.category.clone(),
            position: u32::try_from(self.position)?,
            announcement: self.announcement_at.is_some(),
            max_participants: u32::try_from(self.max_participants)?,
            created_at: at(self.created_at),
        })
    }
}

/// A channel with one member's unread state in it.
#[derive(FromRow, Debug)]
pub struct ChannelStateRow {
    #[sqlx(flatten)]
    pub channel: ChannelRow,
    pub last_seq: i64,
    pub last_rev: i64,
    pub last_read_seq: i64,
    pub muted_at: Option<i64>,
    pub unread_count: i64,
    pub mention_count: i64,
}

/// The channels of these communities that `user` is in, with their unread and mention
/// counts (counted as the room list counts them, each capped at [`UNREAD_COUNT_CAP`]),
/// by community, then position.
pub async fn channel_states(
    pool: &AnyPool,
    user: UserId,
    communities: &[CommunityId],
) -> sqlx::Result<Vec<ChannelStateRow>> {
    if communities.is_empty() {
        return Ok(Vec::new());
    }
    let not_blocked = "not exists (select 1 from blocks b \
                                   where b.blocker_id = me.user_id and b.blocked_id = m.author_id)";
    let list: Vec<String> = (0..communities.len())
        .map(|i| format!("${}", i + 2))
        .collect();
    let sql = format!(
        "select {CHANNEL_COLUMNS}, r.last_seq, r.last_rev, me.last_read_seq, me.muted_at, \
                (select count(*) from ( \
                    select 1 from messages m \
                    where m.room_id = me.room_id and m.seq > me.last_read_seq \
                      and m.deleted_at is null \
                      and (m.author_id is null or (m.author_id <> me.user_id and {not_blocked})) \
                    limit {UNREAD_COUNT_CAP}) unread) as unread_count, \
                {} as mention_count \
         from room_members me join rooms r on r.id = me.room_id \
         where me.user_id = $1 and r.kind = 'channel' and r.community_id in ({}) \
         order by r.community_id, r.position, r.created_at, r.id",
        super::rooms::mention_count_sql(not_blocked),
        list.join(", ")
    );
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(user.to_string());
    for c in communities {
        query = query.bind(c.to_string());
    }
    query.fetch_all(pool).await
}

/// A community's channels, in order.
pub async fn channels(pool: &AnyPool, community: CommunityId) -> sqlx::Result<Vec<ChannelRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {CHANNEL_COLUMNS} from rooms r where r.community_id = $1 \
         order by r.position, r.created_at, r.id"
    )))
    .bind(community.to_string())
    .fetch_all(pool)
    .await
}

/// One channel of this community.
pub async fn channel(
    pool: &AnyPool,
    community: CommunityId,
    channel: RoomId,
) -> sqlx::Result<Option<ChannelRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {CHANNEL_COLUMNS} from rooms r where r.id = $1 and r.community_id = $2"
    )))
    .bind(channel.to_string())
    .bind(community.to_string())
    .fetch_optional(pool)
    .await
}

/// A channel's fields, checked by the caller.
#[derive(Debug, Clone)]
pub struct NewChannel {
    pub name: String,
    pub topic: Option<String>,
    pub category: Option<String>,
    pub announcement: bool,
    pub max_participants: u32,
}

/// Inserts a channel at the end of the list with every member of the community in it
/// (their roles copied), inside a transaction that holds the community's lock.
async fn insert_channel(
    tx: &mut Transaction<'_, Any>,
    community: &str,
    new: &NewChannel,
) -> anyhow::Result<RoomId> {
    let id = RoomId::new();
    let created_at = now();
    sqlx::query(
        "insert into rooms (id, kind, title, owner_id, max_participants, member_count, created_at, \
                            community_id, topic, category, position, announcement_at) \
         select $1, $2, $3, c.owner_id, $4, c.member_count, $5, c.id, $6, $7, \
                coalesce((select max(position) + 1 from rooms where community_id = c.id), 0), $8 \
         from communities c where c.id = $9",
    )
    .bind(id.to_string())
    .bind(RoomKind::Channel.as_str())
    .bind(&new.name)
    .bind(i64::from(new.max_participants))
    .bind(created_at)
    .bind(&new.topic)
    .bind(&new.category)
    .bind(new.announcement.then_some(created_at))
    .bind(community)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "insert into room_members (room_id, user_id, joined_at, role) \
         select $1, m.user_id, $2, m.role from community_members m where m.community_id = $3",
    )
    .bind(id.to_string())
    .bind(created_at)
    .bind(community)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// What became of a channel change.
#[derive(Debug, PartialEq, Eq)]
pub enum ChannelChange<T> {
    Done(T),
    /// `actor` is not an admin.
    NotAllowed,
    NoSuchChannel,
    /// The community has [`CHANNELS_MAX`] channels.
    TooMany,
    /// A reorder that does not name every channel exactly once.
    NotEveryChannel,
}

/// Locks the community and checks that `actor` is an admin of it.
async fn admin_tx<'a>(
    pool: &'a AnyPool,
    community: &str,
    actor: UserId,
) -> anyhow::Result<Option<Transaction<'a, Any>>> {
    let mut tx = pool.begin().await?;
    if !lock(&mut tx, community).await? {
        return Ok(None);
    }
    if !role_in(&mut tx, community, &actor.to_string())
        .await?
        .is_some_and(RoomRole::is_admin)
    {
        return Ok(None);
    }
    Ok(Some(tx))
}

/// `actor` (an admin) creates a channel.
pub async fn create_channel(
    pool: &AnyPool,
    community: CommunityId,
    actor: UserId,
    new: &NewChannel,
) -> anyhow::Result<ChannelChange<RoomId>> {
    let id = community.to_string();
    let Some(mut tx) = admin_tx(pool, &id, actor).await? else {
        return Ok(ChannelChange::NotAllowed);
    };
    let (count,): (i64,) = sqlx::query_as("select count(*) from rooms where community_id = $1")
        .bind(&id)
        .fetch_one(&mut *tx)
        .await?;
    if count >= i64::try_from(CHANNELS_MAX)? {
        return Ok(ChannelChange::TooMany);
    }
    let room = insert_channel(&mut tx, &id, new).await?;
    tx.commit().await?;
    Ok(ChannelChange::Done(room))
}

/// Changes to a channel (None leaves a field; `Some(None)` clears topic or category).
#[derive(Debug, Default, Clone)]
pub struct ChannelUpdate {
    pub name: Option<String>,
    pub topic: Option<Option<String>>,
    pub category: Option<Option<String>>,
    pub announcement: Option<bool>,
    pub max_participants: Option<u32>,
}

/// `actor` (an admin) changes a channel.
pub async fn update_channel(
    pool: &AnyPool,
    community: CommunityId,
    actor: UserId,
    channel: RoomId,
    change: &ChannelUpdate,
) -> anyhow::Result<ChannelChange<()>> {
    let id = community.to_string();
    let Some(mut tx) = admin_tx(pool, &id, actor).await? else {
        return Ok(ChannelChange::NotAllowed);
    };
    // Flags are 0/1 integers so the statement stays portable (see users::update_profile).
    let flag = |b: bool| i64::from(b);
    let done = sqlx::query(
        "update rooms set \
           title = case when $3 = 1 then $4 else title end, \
           topic = case when $5 = 1 then $6 else topic end, \
           category = case when $7 = 1 then $8 else category end, \
           announcement_at = case when $9 = 1 then $10 else announcement_at end, \
           max_participants = case when $11 = 1 then $12 else max_participants end \
         where id = $1 and community_id = $2",
    )
    .bind(channel.to_string())
    .bind(&id)
    .bind(flag(change.name.is_some()))
    .bind(change.name.clone().unwrap_or_default())
    .bind(flag(change.topic.is_some()))
    .bind(change.topic.clone().flatten())
    .bind(flag(change.category.is_some()))
    .bind(change.category.clone().flatten())
    .bind(flag(change.announcement.is_some()))
    .bind(change.announcement.unwrap_or(false).then_some(now()))
    .bind(flag(change.max_participants.is_some()))
    .bind(i64::from(change.max_participants.unwrap_or_default()))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if done == 0 {
        return Ok(ChannelChange::NoSuchChannel);
    }
    tx.commit().await?;
    Ok(ChannelChange::Done(()))
}

/// `actor` (an admin) deletes a channel with its timeline.
pub async fn delete_channel(
    pool: &AnyPool,
    community: CommunityId,
    actor: UserId,
    channel: RoomId,
) -> anyhow::Result<ChannelChange<()>> {
    let id = community.to_string();
    let Some(mut tx) = admin_tx(pool, &id, actor).await? else {
        return Ok(ChannelChange::NotAllowed);
    };
    let done = sqlx::query("delete from rooms where id = $1 and community_id = $2")
        .bind(channel.to_string())
        .bind(&id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if done == 0 {
        return Ok(ChannelChange::NoSuchChannel);
    }
    tx.commit().await?;
    Ok(ChannelChange::Done(()))
}

/// `actor` (an admin) puts the channels in this order, each under its category.
pub async fn reorder_channels(
    pool: &AnyPool,
    community: CommunityId,
    actor: UserId,
    order: &[(RoomId, Option<String>)],
) -> anyhow::Result<ChannelChange<()>> {
    let id = community.to_string();
    let Some(mut tx) = admin_tx(pool, &id, actor).await? else {
        return Ok(ChannelChange::NotAllowed);
    };
    let mut existing = channel_ids_in(&mut tx, &id).await?;
    let mut asked: Vec<RoomId> = order.iter().map(|(r, _)| *r).collect();
    existing.sort();
    asked.sort();
    if existing != asked {
        return Ok(ChannelChange::NotEveryChannel);
    }
    for (position, (room, category)) in order.iter().enumerate() {
        sqlx::query(
            "update rooms set position = $3, category = $4 where id = $1 and community_id = $2",
        )
        .bind(room.to_string())
        .bind(&id)
        .bind(i64::try_from(position)?)
        .bind(category)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(ChannelChange::Done(()))
}
