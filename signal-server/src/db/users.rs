//! The `users` table.

use super::{at, now, uuid};
use shared::UserId;
use shared::api::{Me, PublicUser};
use sqlx::{AnyPool, FromRow};

/// A user row, password hash included; never serialized as is.
#[derive(FromRow, Debug, Clone)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub display_name: Option<String>,
    pub status_text: Option<String>,
    pub created_at: i64,
    pub receipts_hidden_at: Option<i64>,
    /// Set while an operator has the account disabled.
    pub disabled_at: Option<i64>,
    /// Set while the account's email address awaits confirmation.
    pub email_unverified_at: Option<i64>,
    /// The avatar upload (`db::files::set_avatar`).
    pub avatar_file_id: Option<String>,
}

/// The public columns of a user, for listings that join `users` (members, contacts):
/// never the password hash or the email.
#[derive(FromRow, Debug, Clone)]
pub struct PublicUserRow {
    pub id: String,
    pub username: String,
    pub display_name: Option<String>,
    pub status_text: Option<String>,
    pub avatar_file_id: Option<String>,
}

/// Where an avatar upload is served.
pub fn avatar_url(file: Option<&String>) -> Option<String> {
    file.and_then(|f| f.parse().ok())
        .map(shared::files::picture_url)
}

impl PublicUserRow {
    /// The columns to select, prefixed with a table alias (`u.id, u.username, ...`).
    pub fn columns(alias: &str) -> String {
        [
            "id",
            "username",
            "display_name",
            "status_text",
            "avatar_file_id",
        ]
        .map(|c| format!("{alias}.{c}"))
        .join(", ")
    }

    pub fn public(&self) -> anyhow::Result<PublicUser> {
        Ok(PublicUser {
            id: UserId(uuid(&self.id)?),
            username: self.username.clone(),
            display_name: self.display_name.clone(),
            status_text: self.status_text.clone(),
            avatar_url: avatar_url(self.avatar_file_id.as_ref()),
        })
    }
}

impl UserRow {
    pub fn user_id(&self) -> anyhow::Result<UserId> {
        Ok(UserId(uuid(&self.id)?))
    }

    pub fn me(&self) -> anyhow::Result<Me> {
        Ok(Me {
            id: self.user_id()?,
            username: self.username.clone(),
            email: self.email.clone(),
            display_name: self.display_name.clone(),
            status_text: self.status_text.clone(),
            share_read_receipts: self.receipts_hidden_at.is_none(),
            created_at: at(self.created_at),
            avatar_url: avatar_url(self.avatar_file_id.as_ref()),
        })
    }

    pub fn public(&self) -> anyhow::Result<PublicUser> {
        Ok(PublicUser {
            id: self.user_id()?,
            username: self.username.clone(),
            display_name: self.display_name.clone(),
            status_text: self.status_text.clone(),
            avatar_url: avatar_url(self.avatar_file_id.as_ref()),
        })
    }
}

const COLUMNS: &str = "id, username, email, password_hash, display_name, status_text, created_at, \
                       receipts_hidden_at, disabled_at, email_unverified_at, avatar_file_id";

/// Inserts a user; fails with a unique violation when the username or email is taken.
/// `unverified`: the email address awaits confirmation (`--require-email-verification`).
pub async fn insert(
    pool: &AnyPool,
    username: &str,
    email: &str,
    password_hash: &str,
    unverified: bool,
) -> sqlx::Result<UserRow> {
    let id = UserId::new().to_string();
    let ts = now();
    let unverified_at = unverified.then_some(ts);
    sqlx::query(
        "insert into users (id, username, email, password_hash, created_at, updated_at, \
                            email_unverified_at) \
         values ($1, $2, $3, $4, $5, $5, $6)",
    )
    .bind(&id)
    .bind(username)
    .bind(email)
    .bind(password_hash)
    .bind(ts)
    .bind(unverified_at)
    .execute(pool)
    .await?;
    Ok(UserRow {
        id,
        username: username.to_owned(),
        email: email.to_owned(),
        password_hash: password_hash.to_owned(),
        display_name: None,
        status_text: None,
        created_at: ts,
        receipts_hidden_at: None,
        disabled_at: None,
        email_unverified_at: unverified_at,
        avatar_file_id: None,
    })
}

/// Which of username and email are taken (to say which field conflicts).
pub async fn taken(pool: &AnyPool, username: &str, email: &str) -> sqlx::Result<(bool, bool)> {
    let (u, e): (i64, i64) = sqlx::query_as(
        "select (select count(*) from users where username = $1), \
                (select count(*) from users where email = $2)",
    )
    .bind(username)
    .bind(email)
    .fetch_one(pool)
    .await?;
    Ok((u > 0, e > 0))
}

pub async fn by_id(pool: &AnyPool, id: UserId) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from users where id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(pool)
    .await
}

/// Finds a user by username or email (both stored lowercased).
pub async fn by_login(pool: &AnyPool, login: &str) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from users where username = $1 or email = $1"
    )))
    .bind(login)
    .fetch_optional(pool)
    .await
}

/// Sets the profile fields; `None` leaves a field unchanged, `Some(None)` clears it.
pub async fn update_profile(
    pool: &AnyPool,
    id: UserId,
    display_name: Option<Option<String>>,
    status_text: Option<Option<String>>,
    share_read_receipts: Option<bool>,
) -> sqlx::Result<()> {
    // `case when $n then ...` would need a boolean parameter; the flags are 0/1 integers so
    // the statement stays portable.
    sqlx::query(
        "update users set \
           display_name = case when $2 = 1 then $3 else display_name end, \
           status_text = case when $4 = 1 then $5 else status_text end, \
           receipts_hidden_at = case when $7 = 1 then null \
                                     when $7 = 0 then coalesce(receipts_hidden_at, $6) \
                                     else receipts_hidden_at end, \
           updated_at = $6 \
         where id = $1",
    )
    .bind(id.to_string())
    .bind(i64::from(display_name.is_some()))
    .bind(display_name.flatten())
    .bind(i64::from(status_text.is_some()))
    .bind(status_text.flatten())
    .bind(now())
    // 1: share, 0: hide, -1: unchanged
    .bind(share_read_receipts.map_or(-1_i64, i64::from))
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn set_password_hash(pool: &AnyPool, id: UserId, hash: &str) -> sqlx::Result<()> {
    sqlx::query("update users set password_hash = $2, updated_at = $3 where id = $1")
        .bind(id.to_string())
        .bind(hash)
        .bind(now())
        .execute(pool)
        .await?;
    Ok(())
}

/// Disables (`true`) or enables an account. Returns false when nothing changed.
pub async fn set_disabled(pool: &AnyPool, id: UserId, disabled: bool) -> sqlx::Result<bool> {
    let sql = if disabled {
        "update users set disabled_at = $2, updated_at = $2 where id = $1 and disabled_at is null"
    } else {
        "update users set disabled_at = null, updated_at = $2 where id = $1 and disabled_at is not null"
    };
    let done = sqlx::query(sql)
        .bind(id.to_string())
        .bind(now())
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// One line of `confab-server admin list-users`.
#[derive(FromRow, Debug, Clone)]
pub struct AdminUserRow {
    pub id: String,
    pub username: String,
    pub email: String,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
    /// Live (unrevoked, unexpired) sessions.
    pub sessions: i64,
}

/// Every account, oldest first, with its live session count.
pub async fn list_for_admin(pool: &AnyPool) -> sqlx::Result<Vec<AdminUserRow>> {
    sqlx::query_as(
        "select u.id, u.username, u.email, u.created_at, u.disabled_at, \
                (select count(*) from sessions s \
                 where s.user_id = u.id and s.revoked_at is null and s.expires_at > $1) as sessions \
         from users u order by u.created_at, u.username",
    )
    .bind(now())
    .fetch_all(pool)
    .await
}
