//! `confab-server admin ...`: the operator's tools, run against the server's database
//! (the same `--database-url` / `--data-dir` as the server), beside a running server.

use crate::config::{AdminCommand, Config};
use crate::{auth, db};
use anyhow::Context;

/// Runs one admin command; its result goes to stdout, notes to stderr.
pub async fn run(config: &Config, command: &AdminCommand) -> anyhow::Result<()> {
    let url = config.database_url();
    let pool = db::connect(&url, 1).await?;
    let result = match command {
        AdminCommand::ResetLink { user } => reset_link(&pool, config, user).await,
    };
    pool.close().await;
    result
}

async fn reset_link(pool: &sqlx::AnyPool, config: &Config, user: &str) -> anyhow::Result<()> {
    let login = user.trim().to_lowercase();
    let user = db::users::by_login(pool, &login)
        .await?
        .with_context(|| format!("no account has the username or email {login:?}"))?;
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
