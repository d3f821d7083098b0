//! `GET /healthz` (the process is alive) and `GET /readyz` (the database answers).

use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use shared::api::Health;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// Liveness: answers as long as the process serves requests.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Readiness: the database is reachable.
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, body = Health),
    (status = 503, body = shared::ErrorBody, description = "database unreachable"),
))]
async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    sqlx::query("select 1")
        .execute(&state.pool)
        .await
        .map_err(|_| ApiError::Unavailable)?;
    // With `--redis-url` and Redis away, this node still serves its own users.
    let degraded = state.hub.link().is_some_and(|l| !l.healthy());
    Ok(Json(Health {
        status: if degraded { "degraded" } else { "ok" }.into(),
    }))
}
