//! An existing database upgrades in place, on SQLite and PostgreSQL: a database with
//! only the first schema (`migrations/0001_init.sql`, applied by sqlx just as the
//! previous release applied it) and rows written the way that release wrote them, then
//! the new server started on it.
//!
//! The server here is started on a database the test also writes to directly, which
//! `common::TestServer` does not offer; so the unread cap, which needs more messages than
//! a test could send through the rate limit, is tested here too.

#![allow(clippy::unwrap_used)]

mod common;

use clap::Parser;
use common::{Db, PASSWORD};
use reqwest::StatusCode;
use serde_json::{Value, json};
use signal_server::Server;
use signal_server::auth::{password, tokens};
use signal_server::config::Config;
use sqlx::AnyPool;
use std::path::{Path, PathBuf};

on_both_databases!(an_old_database_upgrades_in_place, counts_stop_at_the_cap);

fn postgres_admin_url() -> String {
    std::env::var("CONFAB_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

async fn admin_exec(sql: &str) {
    use sqlx::Executor;
    let pool = AnyPool::connect(&postgres_admin_url()).await.unwrap();
    pool.execute(sqlx::AssertSqlSafe(sql.to_owned()))
        .await
        .unwrap();
    pool.close().await;
}

/// A fresh, empty database; returns its URL and, on PostgreSQL, its name.
async fn fresh_database(db: Db, dir: &Path) -> (String, Option<String>) {
    match db {
        Db::Sqlite => (
            format!("sqlite://{}?mode=rwc", dir.join("confab.db").display()),
            None,
        ),
        Db::Postgres => {
            let name = format!("confab_upgrade_{}", uuid::Uuid::new_v4().simple());
            admin_exec(&format!("create database {name}")).await;
            let admin = postgres_admin_url();
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
            (format!("{base}/{name}"), Some(name))
        }
    }
}

/// Applies the first migration only, through a migrator that sees nothing else, so
/// `_sqlx_migrations` holds exactly what the previous release left there.
async fn first_schema(pool: &AnyPool, dir: &Path) {
    let migrations = dir.join("migrations");
    std::fs::create_dir_all(&migrations).unwrap();
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../migrations/0001_init.sql");
    std::fs::copy(source, migrations.join("0001_init.sql")).unwrap();
    let migrator = sqlx::migrate::Migrator::new(migrations.as_path())
        .await
        .unwrap();
    assert_eq!(migrator.iter().count(), 1);
    migrator.run(pool).await.unwrap();
}

/// What the previous release wrote: one user row per account, a session with its
/// refresh token, rooms with member rows and invites (no kinds, roles or timelines).
struct OldData {
    ann: String,
    ben: String,
    standup: String,
    solo: String,
    ann_refresh: String,
    invite: String,
}

/// A room as the previous release created it: the room row, then its owner's member row.
async fn old_room(pool: &AnyPool, title: &str, owner: &str, max: i64, at: i64) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "insert into rooms (id, title, owner_id, max_participants, member_count, created_at) \
         values ($1, $2, $3, $4, 1, $5)",
    )
    .bind(&id)
    .bind(title)
    .bind(owner)
    .bind(max)
    .bind(at)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("insert into room_members (room_id, user_id, joined_at) values ($1, $2, $3)")
        .bind(&id)
        .bind(owner)
        .bind(at)
        .execute(pool)
        .await
        .unwrap();
    id
}

async fn old_rows(pool: &AnyPool) -> OldData {
    let t0 = signal_server::db::now() - 3600;
    let hash = password::hash(PASSWORD.to_owned()).await.unwrap();
    let mut ids = Vec::new();
    for (i, name) in ["ann", "ben", "cat", "dan"].into_iter().enumerate() {
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "insert into users (id, username, email, password_hash, created_at, updated_at) \
             values ($1, $2, $3, $4, $5, $5)",
        )
        .bind(&id)
        .bind(name)
        .bind(format!("{name}@example.com"))
        .bind(&hash)
        .bind(t0 + i64::try_from(i).unwrap())
        .execute(pool)
        .await
        .unwrap();
        ids.push(id);
    }
    let (ann, ben) = (ids[0].clone(), ids[1].clone());

    let ann_refresh = tokens::random_token();
    let session = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "insert into sessions (id, user_id, created_at, last_used_at, expires_at, user_agent, ip) \
         values ($1, $2, $3, $3, $4, $5, $6)",
    )
    .bind(&session)
    .bind(&ann)
    .bind(t0)
    .bind(t0 + 30 * 24 * 3600)
    .bind("confab-cli/0.1")
    .bind("127.0.0.1")
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "insert into refresh_tokens (token_hash, session_id, created_at, expires_at) \
         values ($1, $2, $3, $4)",
    )
    .bind(tokens::hash_token(&ann_refresh))
    .bind(&session)
    .bind(t0)
    .bind(t0 + 30 * 24 * 3600)
    .execute(pool)
    .await
    .unwrap();

    // Ann's room, full by the old rules (max_participants 2), that Ben joined later;
    // and Ben's room of one.
    let standup = old_room(pool, "Old standup", &ann, 2, t0 + 10).await;
    let solo = old_room(pool, "Ben alone", &ben, 8, t0 + 20).await;
    sqlx::query("update rooms set member_count = member_count + 1 where id = $1")
        .bind(&standup)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "insert into room_members (room_id, user_id, joined_at) \
         select $1, $2, $3 where exists (select 1 from rooms where id = $1) \
         on conflict do nothing",
    )
    .bind(&standup)
    .bind(&ben)
    .bind(t0 + 30)
    .execute(pool)
    .await
    .unwrap();

    let invite = tokens::random_token();
    sqlx::query(
        "insert into room_invites (token_hash, room_id, created_by, created_at, expires_at, max_uses) \
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tokens::hash_token(&invite))
    .bind(&standup)
    .bind(&ann)
    .bind(t0 + 40)
    .bind(t0 + 7 * 24 * 3600)
    .bind(Some(1_i64))
    .execute(pool)
    .await
    .unwrap();

    OldData {
        ann,
        ben,
        standup,
        solo,
        ann_refresh,
        invite,
    }
}

/// A small HTTP client for the upgraded server.
struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    /// Logs in with the old password hash; returns the access token.
    async fn login(&self, name: &str) -> String {
        let (status, body) = self
            .post(
                "/api/auth/login",
                None,
                json!({"login": name, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        body["access_token"].as_str().unwrap().to_owned()
    }
}

/// Starts the server of this build on the database at `url`.
async fn start(dir: &Path, url: &str) -> (Server, Client) {
    let config = Config::parse_from([
        "confab-server",
        "--bind",
        "127.0.0.1:0",
        "--data-dir",
        &dir.display().to_string(),
        "--database-url",
        url,
        "--db-max-connections",
        "4",
        "--auth-rate-per-ip",
        "100000",
        "--auth-rate-per-account",
        "100000",
    ]);
    let server = Server::start(config).await.unwrap();
    let client = Client {
        base: format!("http://{}", server.addr),
        http: reqwest::Client::new(),
    };
    (server, client)
}

async fn finish(server: Server, dir: &Path, pg_name: Option<String>) {
    server.shutdown().await.unwrap();
    if let Some(name) = pg_name {
        admin_exec(&format!("drop database if exists {name} with (force)")).await;
    }
    std::fs::remove_dir_all(dir).ok();
}

fn entry<'a>(list: &'a Value, room: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == room)
        .unwrap_or_else(|| panic!("{room} not in {list}"))
}

async fn an_old_database_upgrades_in_place(db: Db) {
    sqlx::any::install_default_drivers();
    let dir = std::env::temp_dir().join(format!("confab-upgrade-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (url, pg_name) = fresh_database(db, &dir).await;
    let pool = AnyPool::connect(&url).await.unwrap();
    first_schema(&pool, &dir).await;
    let old = old_rows(&pool).await;
    pool.close().await;

    // The new server migrates the old database as it starts.
    let (server, client) = start(&dir, &url).await;
    let applied: Vec<(i64,)> =
        sqlx::query_as("select version from _sqlx_migrations order by version")
            .fetch_all(&server.state.pool)
            .await
            .unwrap();
    // Every migration of this release, in order (0002 onwards ran on the old data).
    let ours: Vec<(i64,)> = signal_server::db::MIGRATOR
        .iter()
        .map(|m| (m.version,))
        .collect();
    assert_eq!(applied, ours);
    assert!(applied.len() >= 6 && applied[0] == (1,), "{applied:?}");

    // Old accounts still sign in, and the old session still refreshes.
    let ann = client.login("ann").await;
    let ben = client.login("ben").await;
    let cat = client.login("cat").await;
    let dan = client.login("dan").await;
    let (status, body) = client
        .post(
            "/api/auth/refresh",
            None,
            json!({"refresh_token": old.ann_refresh}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["id"], old.ann.as_str());

    // Old rooms are groups; their owners own them, the others are members.
    let (status, list) = client.get("/api/rooms", &ann).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1);
    let standup = entry(&list, &old.standup);
    assert_eq!(standup["kind"], "group");
    assert_eq!(standup["title"], "Old standup");
    assert_eq!(standup["my_role"], "owner");
    assert_eq!(standup["owner_id"], old.ann.as_str());
    assert_eq!(standup["member_count"], 2);
    assert_eq!(standup["max_participants"], 2);
    assert!(standup["last_message"].is_null());
    for field in [
        "unread_count",
        "mention_count",
        "last_read_seq",
        "last_seq",
        "rev",
    ] {
        assert_eq!(standup[field], 0, "{field}: {standup}");
    }
    assert_eq!(standup["muted"], false);
    let (_, bens) = client.get("/api/rooms", &ben).await;
    assert_eq!(entry(&bens, &old.standup)["my_role"], "member");
    assert_eq!(entry(&bens, &old.solo)["my_role"], "owner");
    let (status, detail) = client
        .get(&format!("/api/rooms/{}", old.standup), &ben)
        .await;
    assert_eq!(status, StatusCode::OK);
    let roles: Vec<(&str, &str)> = detail["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["user"]["username"].as_str().unwrap(),
                m["role"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(roles, [("ann", "owner"), ("ben", "member")]);

    // Messages go into an old room, with seq 1 and an unread count for the others.
    let resp = client
        .http
        .post(format!(
            "{}/api/rooms/{}/messages",
            client.base, old.standup
        ))
        .bearer_auth(&ben)
        .header("idempotency-key", "first-after-upgrade")
        .json(&json!({"body": "we made it"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let message: Value = resp.json().await.unwrap();
    assert_eq!(message["seq"], 1);
    let (_, list) = client.get("/api/rooms", &ann).await;
    let standup = entry(&list, &old.standup);
    assert_eq!(standup["unread_count"], 1);
    assert_eq!(standup["last_message"]["body"], "we made it");
    assert_eq!(standup["last_message"]["author"]["id"], old.ben.as_str());

    // The old invite still works, once; the old call limit no longer caps members.
    let (status, joined) = client
        .post(
            &format!("/api/invites/{}/accept", old.invite),
            Some(&cat),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{joined}");
    assert_eq!(joined["member_count"], 3);
    let (status, _) = client
        .post(
            &format!("/api/invites/{}/accept", old.invite),
            Some(&dan),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::GONE);

    // The old owner may leave now: Ben, the oldest member, takes over.
    let (status, _) = client
        .post(
            &format!("/api/rooms/{}/leave", old.standup),
            Some(&ann),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, detail) = client
        .get(&format!("/api/rooms/{}", old.standup), &cat)
        .await;
    assert_eq!(detail["owner_id"], old.ben.as_str());
    assert_eq!(detail["members"][0]["role"], "owner");

    finish(server, &dir, pg_name).await;
}

/// Unread and mention counts stop at `UNREAD_COUNT_CAP` however many messages wait.
async fn counts_stop_at_the_cap(db: Db) {
    sqlx::any::install_default_drivers();
    let dir = std::env::temp_dir().join(format!("confab-cap-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (url, pg_name) = fresh_database(db, &dir).await;
    let (server, client) = start(&dir, &url).await;
    for name in ["ann", "ben"] {
        let (status, body) = client
            .post(
                "/api/auth/register",
                None,
                json!({"username": name, "email": format!("{name}@example.com"),
                       "password": PASSWORD, "confirm_password": PASSWORD}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let ann = client.login("ann").await;
    let ben = client.login("ben").await;
    let (_, room) = client
        .post("/api/rooms", Some(&ann), json!({"title": "Busy"}))
        .await;
    let room = room["id"].as_str().unwrap().to_owned();
    let (status, _) = client
        .post(&format!("/api/rooms/{room}/join"), Some(&ben), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, me) = client.get("/api/users/me", &ben).await;
    let ben_id = me["id"].as_str().unwrap().to_owned();
    let (_, me) = client.get("/api/users/me", &ann).await;
    let ann_id = me["id"].as_str().unwrap().to_owned();

    // Ben's messages, each mentioning Ann, written straight into the timeline.
    let cap = u64::from(shared::api::UNREAD_COUNT_CAP);
    let total = cap + 51;
    let pool = &server.state.pool;
    let now = signal_server::db::now();
    let mut seq = 0;
    while seq < total {
        let batch: Vec<(String, i64)> = (seq + 1..=(seq + 500).min(total))
            .map(|s| (uuid::Uuid::new_v4().to_string(), i64::try_from(s).unwrap()))
            .collect();
        seq += batch.len() as u64;
        let rows = (0..batch.len())
            .map(|i| {
                format!(
                    "(${}, $1, ${}, ${}, 'text', $2, 'hey @ann', $3)",
                    2 * i + 4,
                    2 * i + 5,
                    2 * i + 5
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "insert into messages (id, room_id, seq, rev, kind, author_id, body, created_at) values {rows}"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&room)
            .bind(&ben_id)
            .bind(now);
        for (id, s) in &batch {
            query = query.bind(id).bind(*s);
        }
        query.execute(pool).await.unwrap();
        let rows = (0..batch.len())
            .map(|i| format!("(${}, $1, $2, ${})", 2 * i + 3, 2 * i + 4))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "insert into message_mentions (message_id, room_id, user_id, seq) values {rows}"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&room)
            .bind(&ann_id);
        for (id, s) in &batch {
            query = query.bind(id).bind(*s);
        }
        query.execute(pool).await.unwrap();
    }
    let total = i64::try_from(total).unwrap();
    sqlx::query("update rooms set last_seq = $2, last_rev = $2 where id = $1")
        .bind(&room)
        .bind(total)
        .execute(pool)
        .await
        .unwrap();

    let (_, list) = client.get("/api/rooms", &ann).await;
    let busy = entry(&list, &room);
    assert_eq!(busy["unread_count"], cap);
    assert_eq!(busy["mention_count"], cap);
    assert_eq!(busy["last_seq"], total);
    assert_eq!(busy["last_message"]["seq"], total);
    let (_, list) = client.get("/api/rooms", &ben).await;
    assert_eq!(entry(&list, &room)["unread_count"], 0, "his own");
    finish(server, &dir, pg_name).await;
}
