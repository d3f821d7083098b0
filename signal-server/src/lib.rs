//! Confab's server as a library: `app` builds the router, `Server::start` runs it. The
//! `confab-server` binary and the black-box tests both go through `Server::start`.

pub mod admin;
pub mod auth;
pub mod chat;
pub mod client_ip;
pub mod cluster;
pub mod config;
pub mod db;
pub mod error;
pub mod files;
pub mod http;
pub mod mail;
pub mod metrics;
pub mod state;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;
pub mod ws;

use anyhow::Context;
use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request};
use axum::http::{HeaderValue, Method, header};
use axum::serve::ListenerExt;
use config::Config;
use state::AppState;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::task::JoinHandle;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

/// Largest REST request body.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// The whole HTTP surface: REST API, WebSocket, health checks, API docs, and the pages
/// links lead to (`/reset-password`, `/invite/TOKEN`).
pub fn app(state: AppState) -> Router {
    let origins: Vec<HeaderValue> = state
        .config
        .allowed_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    let trusted = state.config.trusted_proxies.clone();
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("idempotency-key"),
        ]);
    http::router()
        .merge(ws::router())
        .merge(http::pages::router())
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(axum::middleware::from_fn(error::json_errors))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(cors)
        .layer(
            TraceLayer::new_for_http().make_span_with(move |req: &Request| {
                // The path only: a query may carry a token (the reset link's).
                let client = req
                    .extensions()
                    .get::<ConnectInfo<SocketAddr>>()
                    .map_or_else(
                        || "-".to_owned(),
                        |ConnectInfo(peer)| {
                            client_ip::resolve(peer.ip(), req.headers(), &trusted).to_string()
                        },
                    );
                tracing::info_span!(
                    "request",
                    method = %req.method(),
                    path = %req.uri().path(),
                    %client,
                )
            }),
        )
        .with_state(state)
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    /// The address it listens on (useful with port 0).
    pub addr: SocketAddr,
    /// Where `GET /metrics` is served, with `--metrics-bind`.
    pub metrics_addr: Option<SocketAddr>,
    pub state: AppState,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Server {
    /// Connects to the database (creating and migrating it), binds, and starts serving.
    pub async fn start(mut config: Config) -> anyhow::Result<Self> {
        let mailer = mail::Mailer::from_config(&config)?;
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
        let secret =
            auth::tokens::load_or_create_secret(config.jwt_secret.as_deref(), &config.data_dir)?;
        let url = config.database_url();
        let pool = db::connect(&url, config.db_max_connections).await?;
        tracing::info!(database = %db::redact(&url), "database ready");
        let listener = tokio::net::TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("binding {}", config.bind))?;
        let addr = listener.local_addr()?;
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone(), tls::load(cert, key)?)),
            _ => None,
        };
        if config.public_url.is_none() {
            // The bound address: with port 0 the configured one would name no port.
            let scheme = if tls.is_some() { "https" } else { "http" };
            config.public_url = Some(format!("{scheme}://{addr}"));
        }
        if !mailer.is_configured() {
            tracing::info!(
                "no SMTP server configured (--smtp-url): password-reset mail is not sent; \
                 hand out links with `confab-server admin reset-link USER`"
            );
        }
        let files = files::Files::new(&config, &secret).context("setting up file storage")?;
        let (mut state, missed_calls) = AppState::new(pool, config, &secret, mailer, files);
        if url.starts_with("sqlite:") {
            state.message_writer = Some(db::messages::Writer::spawn(
                state.pool.clone(),
                state.shutdown.clone(),
                &state.tasks,
            ));
        }
        if let Some(url) = state.config.redis_url.clone() {
            cluster::start(&state, &url, &state.config.redis_prefix.clone())
                .context("--redis-url")?;
        }
        spawn_housekeeping(state.clone());
        state.tasks.spawn(admin::watch_revocations(state.clone()));
        state
            .tasks
            .spawn(chat::record_missed_calls(state.clone(), missed_calls));
        let metrics_addr = match state.config.metrics_bind {
            Some(bind) => Some(serve_metrics(&state, bind).await?),
            None => None,
        };
        let router = app(state.clone());
        let shutdown = state.shutdown.clone();
        let task = match tls {
            Some((cert, key, tls_config)) => {
                let tls_config = axum_server::tls_rustls::RustlsConfig::from_config(tls_config);
                state.tasks.spawn(tls::watch(
                    tls_config.clone(),
                    cert,
                    key,
                    Duration::from_secs(state.config.tls_reload_interval),
                    shutdown.clone(),
                ));
                // axum-server's acceptor sets TCP_NODELAY on every connection.
                let server = axum_server::from_tcp_rustls(listener.into_std()?, tls_config)?;
                let handle = axum_server::Handle::new();
                let stop = handle.clone();
                tokio::spawn(async move {
                    let serving = server
                        .handle(handle)
                        .serve(router.into_make_service_with_connect_info::<SocketAddr>());
                    tokio::pin!(serving);
                    tokio::select! {
                        result = &mut serving => return result.context("serving"),
                        () = shutdown.cancelled() => {}
                    }
                    // As axum::serve's graceful shutdown: no new connections, requests in
                    // flight finish (WebSocket sessions close on the same signal).
                    stop.graceful_shutdown(Some(Duration::from_secs(10)));
                    serving.await.context("serving")
                })
            }
            None => {
                // Signaling is small messages that must leave at once: without
                // TCP_NODELAY, Nagle's algorithm holds a reply back until the previous
                // one is acknowledged, which with delayed ACKs costs ~40 ms a round trip.
                let listener = listener.tap_io(|tcp| {
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
                    }
                });
                tokio::spawn(async move {
                    axum::serve(
                        listener,
                        router.into_make_service_with_connect_info::<SocketAddr>(),
                    )
                    .with_graceful_shutdown(async move { shutdown.cancelled().await })
                    .await
                    .context("serving")
                })
            }
        };
        tracing::info!(%addr, tls = state.config.tls_cert.is_some(), "confab-server listening");
        Ok(Self {
            addr,
            metrics_addr,
            state,
            task,
        })
    }

    /// Stops accepting, closes every WebSocket with 1001, waits for requests in flight.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.state.shutdown.cancel();
        self.state.tasks.close();
        if tokio::time::timeout(Duration::from_secs(10), self.state.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("some WebSocket sessions did not close within 10 s");
        }
        let result = self.task.await.context("server task")?;
        self.state.pool.close().await;
        result
    }

    /// Runs until the server task ends on its own (it only does on error).
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        (&mut self.task).await.context("server task")?
    }
}

/// Starts the metrics listener; it stops with the server.
async fn serve_metrics(state: &AppState, bind: SocketAddr) -> anyhow::Result<SocketAddr> {
    metrics::install(state.hub.node())
        .context("cannot record metrics: another recorder is installed")?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("binding the metrics address {bind}"))?;
    let addr = listener.local_addr()?;
    let router = metrics::router(state.clone());
    let shutdown = state.shutdown.clone();
    state.tasks.spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the metrics listener failed");
        }
    });
    tracing::info!(%addr, "metrics at /metrics");
    Ok(addr)
}

/// Purges expired tokens and idle rate-limit keys every few minutes, and ends typing
/// and rings that ran out every half second, until shutdown.
fn spawn_housekeeping(state: AppState) {
    let tasks = state.tasks.clone();
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(300));
        let mut expiry = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = state.shutdown.cancelled() => break,
                _ = expiry.tick() => state.hub.expire(std::time::Instant::now()),
                _ = tick.tick() => {
                    state.auth_limiter.purge();
                    state.reset_limiter.purge();
                    state.message_limiter.retain_recent();
                    if let Err(e) = db::sessions::purge_expired(&state.pool).await {
                        tracing::warn!(error = %e, "purging expired sessions failed");
                    }
                    if let Err(e) = db::password_resets::purge_expired(&state.pool).await {
                        tracing::warn!(error = %e, "purging expired password resets failed");
                    }
                    if let Err(e) = db::email_verifications::purge_expired(&state.pool).await {
                        tracing::warn!(error = %e, "purging expired email verifications failed");
                    }
                    let cutoff = db::now() - files::UNATTACHED_TTL;
                    if let Err(e) = files::sweep(&state.pool, &state.files, cutoff).await {
                        tracing::warn!(error = %format!("{e:#}"), "sweeping unattached uploads failed");
                    }
                }
            }
        }
    });
}
