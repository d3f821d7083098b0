//! Prometheus metrics (`metrics` + `metrics-exporter-prometheus`), served at `GET
//! /metrics` on `--metrics-bind`, an address of its own so the public port does not
//! expose them. Recorded: HTTP requests and their latency by route and status, errors by
//! code (rate-limit refusals are `rate_limited`), chat messages stored, call signaling
//! relayed; WebSocket messages by type and the time to handle each
//! (`confab_ws_handler_duration_seconds`: for a relay, from reading it to queuing it for
//! the addressee); with `--redis-url`, events published and received between nodes and
//! their transit time (`confab_cluster_transit_seconds`: sent on one node, received on
//! another); sampled at each scrape: WebSocket connections, users online, database pool.
//! Every series carries the node's id as the label `node`, as `/readyz` and the logs
//! name it, so several nodes' series can be told apart in one Prometheus.
//!
//! The recorder is process-wide: several servers in one process (tests) share it, and
//! the first one's node id labels it.

use crate::state::AppState;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

/// Buckets for request latency, in seconds: 1 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets for WebSocket handling and transit between nodes: 25 µs to 1 s.
const FAST_BUCKETS: &[f64] = &[
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 1.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder (once per process), labelling every series with `node`;
/// `None` if another recorder was installed first or the configuration is refused.
pub fn install(node: &str) -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .add_global_label("node", node)
                .set_buckets_for_metric(
                    Matcher::Full("confab_http_request_duration_seconds".into()),
                    LATENCY_BUCKETS,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Prefix("confab_ws_".into()), FAST_BUCKETS)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Prefix("confab_cluster_".into()),
                        FAST_BUCKETS,
                    )
                })
                .map_err(|e| tracing::warn!(error = %e, "metrics buckets refused"))
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "a metrics recorder is installed already");
                    None
                }
            }
        })
        .as_ref()
}

/// The `/metrics` endpoint, for the metrics listener.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(state)
}

async fn scrape(State(state): State<AppState>) -> Response {
    let Some(handle) = install(state.hub.node()) else {
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "metrics are not recorded",
        )
            .into_response();
    };
    let (connections, users) = state.hub.counts();
    metrics::gauge!("confab_ws_connections").set(connections as f64);
    metrics::gauge!("confab_users_online").set(users as f64);
    metrics::gauge!("confab_db_pool_connections").set(f64::from(state.pool.size()));
    metrics::gauge!("confab_db_pool_idle").set(state.pool.num_idle() as f64);
    handle.run_upkeep();
    let mut response = handle.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Middleware: counts every request and times it, by method, route (the pattern, so
/// ids do not multiply the series) and status.
pub async fn track(request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let start = Instant::now();
    let response = next.run(request).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("confab_http_requests_total", &labels).increment(1);
    metrics::histogram!("confab_http_request_duration_seconds", &labels)
        .record(start.elapsed().as_secs_f64());
    response
}
