//! What every handler shares.

use crate::auth::ratelimit::AuthLimiter;
use crate::auth::tokens::Jwt;
use crate::config::Config;
use crate::mail::Mailer;
use crate::ws::hub::{Hub, MissedCall};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use shared::UserId;
use sqlx::AnyPool;
use std::num::NonZeroU32;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Shared server state; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub pool: AnyPool,
    pub config: Arc<Config>,
    pub jwt: Arc<Jwt>,
    pub auth_limiter: Arc<AuthLimiter>,
    /// Password-reset requests and confirmations, per address and per account, per hour.
    pub reset_limiter: Arc<AuthLimiter>,
    /// Password-reset mail (unconfigured: nothing is sent).
    pub mailer: Mailer,
    pub hub: Arc<Hub>,
    /// Uploads, their storage and signed links (`crate::files`).
    pub files: Arc<crate::files::Files>,
    /// On SQLite: the one task that writes sends, in batches (see `db::messages::Writer`).
    pub message_writer: Option<crate::db::messages::Writer>,
    /// Chat sends per user, REST and WebSocket together.
    pub message_limiter: Arc<DefaultKeyedRateLimiter<UserId>>,
    /// Cancelled when the server shuts down; WebSocket sessions then close with 1001.
    pub shutdown: CancellationToken,
    /// Tracks WebSocket session tasks, so shutdown can wait for their close frames.
    pub tasks: TaskTracker,
}

impl AppState {
    /// The state and the hub's missed-call queue (see `chat::record_missed_calls`).
    pub fn new(
        pool: AnyPool,
        config: Config,
        jwt_secret: &[u8],
        mailer: Mailer,
        files: crate::files::Files,
    ) -> (Self, mpsc::UnboundedReceiver<MissedCall>) {
        let (hub, missed) = Hub::new(std::time::Duration::from_secs(config.ring_timeout));
        let rate = NonZeroU32::new(config.message_rate.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = rate.saturating_mul(NonZeroU32::new(3).unwrap_or(NonZeroU32::MIN));
        let state = Self {
            pool,
            jwt: Arc::new(Jwt::new(jwt_secret, config.access_token_ttl)),
            auth_limiter: Arc::new(AuthLimiter::new(
                config.auth_rate_per_ip,
                config.auth_rate_per_account,
            )),
            reset_limiter: Arc::new(AuthLimiter::per_period(
                config.reset_rate_per_ip,
                config.reset_rate_per_account,
                std::time::Duration::from_secs(3600),
            )),
            mailer,
            hub: Arc::new(hub),
            files: Arc::new(files),
            message_writer: None,
            message_limiter: Arc::new(RateLimiter::keyed(
                Quota::per_second(rate).allow_burst(burst),
            )),
            config: Arc::new(config),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        };
        (state, missed)
    }
}
