//! `confab-server admin ...` and `confab-server backup`: the operator's tools, run
//! against the server's database (the same `--database-url` / `--data-dir` as the
//! server), beside a running server.
//!
//! They change the database only: a running server refuses a revoked session's tokens
//! at once, and its open WebSockets close when their access token expires
//! (`--access-token-ttl`), not instantly, since this process cannot reach them.

use crate::auth::{password, tokens, validate};
use crate::config::{AdminCommand, Command, Config};
use crate::db::users::UserRow;
use crate::error::FieldErrors;
use crate::{auth, db};
use anyhow::Context;
use sqlx::AnyPool;
use std::path::Path;

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
    let result = match command {
        Command::Backup { path } => backup(&pool, path).await,
        Command::Admin(admin) => match admin {
            AdminCommand::ResetLink { user } => reset_link(&pool, config, user).await,
            AdminCommand::CreateUser {
                username,
                email,
                password_stdin,
            } => create_user(&pool, config, username, email, *password_stdin).await,
            AdminCommand::ListUsers => list_users(&pool).await,
            AdminCommand::DisableUser { user } => set_disabled(&pool, user, true).await,
            AdminCommand::EnableUser { user } => set_disabled(&pool, user, false).await,
            AdminCommand::RevokeSessions { user } => revoke_sessions(&pool, user).await,
        },
    };
    pool.close().await;
    result
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

async fn set_disabled(pool: &AnyPool, user: &str, disabled: bool) -> anyhow::Result<()> {
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
    }
    Ok(())
}

async fn revoke_sessions(pool: &AnyPool, user: &str) -> anyhow::Result<()> {
    let user = find(pool, user).await?;
    let revoked = db::sessions::revoke_all(pool, user.user_id()?, None).await?;
    eprintln!(
        "{}: {} session(s) signed out.",
        user.username,
        revoked.len()
    );
    Ok(())
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
