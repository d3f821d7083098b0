//! `confab-server admin ...` and `confab-server backup`: the operator's tools, run
//! against the server's database (the same `--database-url` / `--data-dir` as the
//! server), beside a running server.
//!
//! They change the database; the running servers act on it at once: a revoked session's
//! tokens are refused from the next request, and its open WebSockets close within
//! [`REVOCATION_CHECK`], because every node looks for sessions revoked (and users
//! disabled) since its last look (see [`watch_revocations`]). With `--redis-url` the
//! command also tells every node on the bus, which closes the sockets without waiting.

use crate::auth::{password, tokens, validate};
use crate::cluster;
use crate::config::{AdminCommand, Command, Config};
use crate::db::users::UserRow;
use crate::error::FieldErrors;
use crate::state::AppState;
use crate::{auth, db};
use anyhow::Context;
use shared::signal::close;
use shared::{SessionId, UserId};
use sqlx::AnyPool;
use std::path::Path;
use std::time::Duration;

/// Runs one command; its result goes to stdout, notes to stderr.
pub async fn run(config: &Config, command: &Command) -> anyhow::Result<()> {
    let url = config.database_url();
    if matches!(command, Command::Backup { .. }) {
        anyhow::ensure!(
            url.starts_with("sqlite:"),
            "backup copies an SQLite database; for PostgreSQL use pg_dump (see docs/deploy.md)"
        );
    }
    let pool = db::connect(&url, 1).await?;
    // Ok(Some(user)): the user's sessions were signed out, which the nodes hear of.
    let result: anyhow::Result<Option<UserId>> = match command {
        Command::Backup { path } => backup(&pool, path).await.map(|()| None),
        Command::Admin(admin) => match admin {
            AdminCommand::ResetLink { user } => {
                reset_link(&pool, config, user).await.map(|()| None)
            }
            AdminCommand::CreateUser {
                username,
                email,
                password_stdin,
            } => create_user(&pool, config, username, email, *password_stdin)
                .await
                .map(|()| None),
            AdminCommand::ListUsers => list_users(&pool).await.map(|()| None),
            AdminCommand::DisableUser { user } => set_disabled(&pool, user, true).await,
            AdminCommand::EnableUser { user } => set_disabled(&pool, user, false).await,
            AdminCommand::RevokeSessions { user } => revoke_sessions(&pool, user).await,
        },
    };
    pool.close().await;
    if let Ok(Some(user)) = &result {
        tell_nodes(config, *user).await;
    }
    result.map(|_| ())
}

/// With `--redis-url`: closes the user's sockets on every node now. Redis being away is
/// no failure: the nodes' own check closes them within [`REVOCATION_CHECK`].
async fn tell_nodes(config: &Config, user: UserId) {
    let Some(url) = &config.redis_url else {
        return;
    };
    let event = cluster::Event::KickUser {
        user,
        code: close::SESSION_REVOKED,
    };
    if let Err(e) = cluster::publish_once(url, &config.redis_prefix, &event).await {
        eprintln!(
            "Could not tell the nodes over Redis ({e}); they close the sockets within {} s.",
            REVOCATION_CHECK.as_secs()
        );
    }
}

/// How often every node looks for sessions revoked and users disabled by another
/// process (`confab-server admin`, or another node whose Redis message was lost).
pub const REVOCATION_CHECK: Duration = Duration::from_secs(2);

/// Closes this node's sockets of sessions revoked and users disabled since the last
/// look, until shutdown. Two indexed-free queries every [`REVOCATION_CHECK`] over rows
/// changed since then; timestamps are whole seconds, so each look reaches one second
/// back (closing a socket twice is harmless).
pub async fn watch_revocations(state: AppState) {
    let mut tick = tokio::time::interval(REVOCATION_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut since = db::now();
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = db::now();
        match revoked_since(&state.pool, since - 1).await {
            Ok((sessions, users)) => {
                for session in sessions {
                    state.hub.kick_session_here(session, close::SESSION_REVOKED);
                }
                for user in users {
                    state.hub.kick_user_here(user, close::SESSION_REVOKED);
                }
                since = now;
            }
            Err(e) => tracing::warn!(error = %e, "looking for revoked sessions"),
        }
    }
}

async fn revoked_since(pool: &AnyPool, since: i64) -> sqlx::Result<(Vec<SessionId>, Vec<UserId>)> {
    let sessions: Vec<(String,)> = sqlx::query_as("select id from sessions where revoked_at >= $1")
        .bind(since)
        .fetch_all(pool)
        .await?;
    let users: Vec<(String,)> = sqlx::query_as("select id from users where disabled_at >= $1")
        .bind(since)
        .fetch_all(pool)
        .await?;
    Ok((
        sessions
            .into_iter()
            .filter_map(|(s,)| s.parse().ok())
            .collect(),
        users
            .into_iter()
            .filter_map(|(u,)| u.parse().ok())
            .collect(),
    ))
}

async fn find(pool: &AnyPool, user: &str) -> anyhow::Result<UserRow> {
    let login = user.trim().to_lowercase();
    db::users::by_login(pool, &login)
        .await?
        .with_context(|| format!("no account has the username or email {login:?}"))
}

async fn reset_link(pool: &AnyPool, config: &Config, user: &str) -> anyhow::Result<()> {
    let user = find(pool, user).await?;
    print_reset_link(pool, config, &user).await
}

async fn print_reset_link(pool: &AnyPool, config: &Config, user: &UserRow) -> anyhow::Result<()> {
    let reset = auth::reset::issue(pool, config, user.user_id()?).await?;
    println!("{}", reset.link);
    eprintln!(
        "A password-reset link for {} <{}>: it works once, for {} minutes.",
        user.username,
        user.email,
        config.password_reset_ttl / 60
    );
    if config.public_url.is_none() {
        eprintln!(
            "The link names {}: set --public-url (CONFAB_PUBLIC_URL) to the address users reach the server at.",
            config.public_url()
        );
    }
    Ok(())
}

async fn create_user(
    pool: &AnyPool,
    config: &Config,
    username: &str,
    email: &str,
    password_stdin: bool,
) -> anyhow::Result<()> {
    let mut errors = FieldErrors::new();
    let username = validate::username(username, &mut errors);
    let email = validate::email(email, &mut errors);
    let chosen = if password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        let line = line.trim_end_matches(['\n', '\r']).to_owned();
        validate::new_password(&line, &line, "password", &[&username, &email], &mut errors);
        Some(line)
    } else {
        None
    };
    if !errors.is_empty() {
        let list: Vec<String> = errors.iter().map(|(f, m)| format!("{f} {m}")).collect();
        anyhow::bail!("{}", list.join("; "));
    }
    let (username_taken, email_taken) = db::users::taken(pool, &username, &email).await?;
    anyhow::ensure!(!username_taken, "the username {username:?} is taken");
    anyhow::ensure!(!email_taken, "the email {email:?} is already registered");
    let has_password = chosen.is_some();
    // Without a chosen password: a random one nobody knows, until the reset link is used.
    let hash = password::hash(chosen.unwrap_or_else(tokens::random_token)).await?;
    // An operator vouches for the address: no confirmation asked.
    let user = db::users::insert(pool, &username, &email, &hash, false).await?;
    println!("{}", user.id);
    eprintln!("Created {username} <{email}>.");
    if !has_password {
        print_reset_link(pool, config, &user).await?;
    }
    Ok(())
}

async fn list_users(pool: &AnyPool) -> anyhow::Result<()> {
    let format = time::format_description::well_known::Rfc3339;
    println!("id\tusername\temail\tcreated\tdisabled\tsessions");
    for u in db::users::list_for_admin(pool).await? {
        let created = db::at(u.created_at).format(&format)?;
        let disabled = match u.disabled_at {
            Some(t) => db::at(t).format(&format)?,
            None => "-".to_owned(),
        };
        println!(
            "{}\t{}\t{}\t{created}\t{disabled}\t{}",
            u.id, u.username, u.email, u.sessions
        );
    }
    Ok(())
}

async fn set_disabled(
    pool: &AnyPool,
    user: &str,
    disabled: bool,
) -> anyhow::Result<Option<UserId>> {
    let user = find(pool, user).await?;
    let id = user.user_id()?;
    let changed = db::users::set_disabled(pool, id, disabled).await?;
    if disabled {
        let revoked = db::sessions::revoke_all(pool, id, None).await?;
        eprintln!(
            "{} {}; {} session(s) signed out.",
            user.username,
            if changed {
                "disabled"
            } else {
                "was already disabled"
            },
            revoked.len()
        );
        Ok(Some(id))
    } else {
        eprintln!(
            "{} {}.",
            user.username,
            if changed {
                "enabled"
            } else {
                "was not disabled"
            }
        );
        Ok(None)
    }
}

async fn revoke_sessions(pool: &AnyPool, user: &str) -> anyhow::Result<Option<UserId>> {
    let user = find(pool, user).await?;
    let id = user.user_id()?;
    let revoked = db::sessions::revoke_all(pool, id, None).await?;
    eprintln!(
        "{}: {} session(s) signed out.",
        user.username,
        revoked.len()
    );
    Ok(Some(id))
}

/// `VACUUM INTO`: SQLite writes a consistent copy from one read transaction, while the
/// server keeps reading and writing (WAL mode).
async fn backup(pool: &AnyPool, path: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        !path.exists(),
        "{} exists; a backup never overwrites",
        path.display()
    );
    let target = path
        .to_str()
        .with_context(|| format!("{} is not valid UTF-8", path.display()))?;
    sqlx::query("vacuum into $1")
        .bind(target)
        .execute(pool)
        .await
        .with_context(|| format!("backing up into {}", path.display()))?;
    eprintln!("Backed up to {}.", path.display());
    Ok(())
}
