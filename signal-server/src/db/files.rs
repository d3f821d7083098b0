//! The `uploads` table: uploads, their attachment to a message (once, by the uploader, in
//! the message's transaction), who may read them, avatars, and the sweep.

use super::{at, now, uuid};
use shared::files::{Attachment, FileKind};
use shared::{UploadId, UserId};
use sqlx::{AnyConnection, AnyPool, FromRow};
use std::collections::HashMap;

/// What an upload may be used for.
pub const ATTACHMENT: &str = "attachment";
pub const AVATAR: &str = "avatar";
pub const ICON: &str = "icon";

/// The stored columns of an upload.
#[derive(FromRow, Debug, Clone)]
pub struct UploadRow {
    pub id: String,
    pub uploader_id: String,
    pub purpose: String,
    pub name: String,
    pub content_type: String,
    pub kind: String,
    pub size: i64,
    pub sha256: String,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub placeholder: Option<String>,
    pub preview_size: Option<i64>,
    pub thumbnail_size: Option<i64>,
    pub created_at: i64,
    pub message_id: Option<String>,
    pub room_id: Option<String>,
    pub attached_at: Option<i64>,
}

const COLUMNS: &str = "id, uploader_id, purpose, name, content_type, kind, size, sha256, width, \
     height, placeholder, preview_size, thumbnail_size, created_at, message_id, room_id, attached_at";

impl UploadRow {
    pub fn upload_id(&self) -> anyhow::Result<UploadId> {
        Ok(UploadId(uuid(&self.id)?))
    }

    pub fn attachment(&self) -> anyhow::Result<Attachment> {
        let dim = |v: Option<i64>| v.and_then(|v| u32::try_from(v).ok());
        Ok(Attachment {
            id: self.upload_id()?,
            name: self.name.clone(),
            size: u64::try_from(self.size)?,
            content_type: self.content_type.clone(),
            kind: FileKind::parse(&self.kind).unwrap_or(FileKind::File),
            width: dim(self.width),
            height: dim(self.height),
            placeholder: self.placeholder.clone(),
        })
    }

    pub fn created(&self) -> time::OffsetDateTime {
        at(self.created_at)
    }
}

/// Stores a new upload's row (its bytes are in storage already).
pub async fn insert(pool: &AnyPool, row: &UploadRow) -> sqlx::Result<()> {
    sqlx::query(
        "insert into uploads (id, uploader_id, purpose, name, content_type, kind, size, sha256, \
         width, height, placeholder, preview_size, thumbnail_size, created_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&row.id)
    .bind(&row.uploader_id)
    .bind(&row.purpose)
    .bind(&row.name)
    .bind(&row.content_type)
    .bind(&row.kind)
    .bind(row.size)
    .bind(&row.sha256)
    .bind(row.width)
    .bind(row.height)
    .bind(&row.placeholder)
    .bind(row.preview_size)
    .bind(row.thumbnail_size)
    .bind(row.created_at)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn by_id(pool: &AnyPool, id: UploadId) -> sqlx::Result<Option<UploadRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from uploads where id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(pool)
    .await
}

/// The upload if `user` may read it: its uploader while no message carries it, else a
/// member of the room of the (not deleted) message that does. Everyone else gets `None`,
/// the same as for an upload that does not exist.
pub async fn readable(
    pool: &AnyPool,
    id: UploadId,
    user: UserId,
) -> sqlx::Result<Option<UploadRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from uploads u where u.id = $1 and u.purpose = 'attachment' and ( \
           (u.attached_at is null and u.uploader_id = $2) \
           or exists (select 1 from room_members m join messages g on g.room_id = m.room_id \
                      where m.room_id = u.room_id and m.user_id = $2 \
                        and g.id = u.message_id and g.deleted_at is null))"
    )))
    .bind(id.to_string())
    .bind(user.to_string())
    .fetch_optional(pool)
    .await
}

/// Attaches `ids` to a new message inside the send's transaction: only uploads of
/// `author`, for attachments, never attached before. Returns how many were attached:
/// fewer than `ids.len()` means the send must be refused (and rolled back).
pub async fn attach_in(
    conn: &mut AnyConnection,
    message_id: &str,
    room_id: &str,
    author: UserId,
    ids: &[UploadId],
) -> sqlx::Result<usize> {
    let mut attached = 0;
    let now = now();
    for (position, id) in ids.iter().enumerate() {
        attached += sqlx::query(
            "update uploads set message_id = $1, room_id = $2, attached_at = $3, position = $4 \
             where id = $5 and uploader_id = $6 and purpose = 'attachment' and attached_at is null",
        )
        .bind(message_id)
        .bind(room_id)
        .bind(now)
        .bind(position as i64)
        .bind(id.to_string())
        .bind(author.to_string())
        .execute(&mut *conn)
        .await?
        .rows_affected() as usize;
    }
    Ok(attached)
}

/// The attachments of these messages, in their order, by message id.
pub async fn for_messages(
    pool: &AnyPool,
    message_ids: &[&str],
) -> anyhow::Result<HashMap<String, Vec<Attachment>>> {
    let mut out: HashMap<String, Vec<Attachment>> = HashMap::new();
    // Chunked so one statement never has more parameters than SQLite allows.
    for chunk in message_ids.chunks(500) {
        let list: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let mut q = sqlx::query_as::<_, UploadRow>(sqlx::AssertSqlSafe(format!(
            "select {COLUMNS} from uploads where message_id in ({}) order by position",
            list.join(", ")
        )));
        for id in chunk {
            q = q.bind(*id);
        }
        for row in q.fetch_all(pool).await? {
            if let Some(message) = row.message_id.clone() {
                out.entry(message).or_default().push(row.attachment()?);
            }
        }
    }
    Ok(out)
}

/// Uploads the sweep removes (see `files::sweep`), at most `limit`: attachments as said
/// there, and pictures made before `cutoff` that no user or community shows (their
/// community was deleted; a replaced or removed one is deleted at once).
pub async fn sweepable(pool: &AnyPool, cutoff: i64, limit: i64) -> anyhow::Result<Vec<UploadId>> {
    let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select id from uploads u where (u.purpose = 'attachment' and ( \
           (u.attached_at is null and u.created_at < $1) \
           or (u.attached_at is not null and (u.message_id is null or u.room_id is null)) \
           or exists (select 1 from messages g where g.id = u.message_id and g.deleted_at is not null))) \
         or (u.purpose = 'avatar' and u.created_at < $1 \
             and not exists (select 1 from users x where x.avatar_file_id = u.id)) \
         or (u.purpose = 'icon' and u.created_at < $1 \
             and not exists (select 1 from communities c where c.icon_file_id = u.id)) \
         limit {limit}"
    )))
    .bind(cutoff)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(id,)| Ok(UploadId(uuid(&id)?)))
        .collect()
}

pub async fn delete(pool: &AnyPool, id: UploadId) -> sqlx::Result<()> {
    sqlx::query("delete from uploads where id = $1")
        .bind(id.to_string())
        .execute(pool)
        .await?;
    Ok(())
}

/// Sets (or clears) a user's avatar; returns the one it replaced.
pub async fn set_avatar(
    pool: &AnyPool,
    user: UserId,
    avatar: Option<UploadId>,
) -> sqlx::Result<Option<UploadId>> {
    let mut tx = pool.begin().await?;
    let old: Option<(Option<String>,)> = sqlx::query_as(
        "update users set avatar_file_id = avatar_file_id where id = $1 returning avatar_file_id",
    )
    .bind(user.to_string())
    .fetch_optional(&mut *tx)
    .await?;
    sqlx::query("update users set avatar_file_id = $2 where id = $1")
        .bind(user.to_string())
        .bind(avatar.map(|a| a.to_string()))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(old
        .and_then(|(o,)| o)
        .and_then(|o| uuid::Uuid::parse_str(&o).ok())
        .map(UploadId))
}

/// Sets (or clears) a community's icon; returns the one it replaced, and `None` as the
/// outer value when there is no such community.
pub async fn set_icon(
    pool: &AnyPool,
    community: shared::CommunityId,
    icon: Option<UploadId>,
) -> sqlx::Result<Option<Option<UploadId>>> {
    let mut tx = pool.begin().await?;
    // The no-op update takes the row's lock first, so two icon changes cannot both
    // read the same old icon (and one of them leak it).
    let old: Option<(Option<String>,)> = sqlx::query_as(
        "update communities set icon_file_id = icon_file_id where id = $1 returning icon_file_id",
    )
    .bind(community.to_string())
    .fetch_optional(&mut *tx)
    .await?;
    let Some((old,)) = old else {
        return Ok(None);
    };
    sqlx::query("update communities set icon_file_id = $2 where id = $1")
        .bind(community.to_string())
        .bind(icon.map(|a| a.to_string()))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(
        old.and_then(|o| uuid::Uuid::parse_str(&o).ok())
            .map(UploadId),
    ))
}

/// An avatar or icon by id (pictures are served to anyone holding their URL).
pub async fn picture(pool: &AnyPool, id: UploadId) -> sqlx::Result<Option<UploadRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from uploads where id = $1 and purpose in ('avatar', 'icon')"
    )))
    .bind(id.to_string())
    .fetch_optional(pool)
    .await
}
