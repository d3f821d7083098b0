//! What every handler shares.

use crate::auth::ratelimit::AuthLimiter;
use crate::auth::tokens::Jwt;
use crate::config::Config;
use crate::ws::hub::Hub;
use sqlx::AnyPool;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Shared server state; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub pool: AnyPool,
    pub config: Arc<Config>,
    pub jwt: Arc<Jwt>,
    pub auth_limiter: Arc<AuthLimiter>,
    pub hub: Arc<Hub>,
    /// Cancelled when the server shuts down; WebSocket sessions then close with 1001.
    pub shutdown: CancellationToken,
    /// Tracks WebSocket session tasks, so shutdown can wait for their close frames.
    pub tasks: TaskTracker,
}

impl AppState {
    pub fn new(pool: AnyPool, config: Config, jwt_secret: &[u8]) -> Self {
        Self {
            pool,
            jwt: Arc::new(Jwt::new(jwt_secret, config.access_token_ttl)),
            auth_limiter: Arc::new(AuthLimiter::new(
                config.auth_rate_per_ip,
                config.auth_rate_per_account,
            )),
            hub: Arc::new(Hub::default()),
            config: Arc::new(config),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        }
    }
}
