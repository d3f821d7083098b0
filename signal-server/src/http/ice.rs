//! `GET /api/ice-servers`: the STUN and TURN servers a client puts in its WebRTC
//! configuration, with short-lived TURN credentials.
//!
//! The credentials follow the "TURN REST API" scheme that coturn implements with
//! `use-auth-secret` (draft-uberti-behave-turn-rest): the username is
//! `<unix expiry>:<user id>` and the password is base64(HMAC-SHA1(shared secret,
//! username)). The TURN server recomputes the HMAC and checks the expiry itself, so it
//! needs no database of ours, and a leaked credential dies on its own.

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;
use anyhow::anyhow;
use axum::Json;
use axum::extract::State;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use shared::ErrorBody;
use shared::api::{IceServer, IceServersResponse};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(ice_servers))
}

/// The ICE servers for your calls. TURN entries carry credentials valid for `ttl`
/// seconds; the list is empty when the server has none configured.
#[utoipa::path(get, path = "/api/ice-servers", tag = "calls", security(("bearer" = [])), responses(
    (status = 200, body = IceServersResponse),
    (status = 401, body = ErrorBody),
))]
async fn ice_servers(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<IceServersResponse>, ApiError> {
    let config = &state.config;
    let mut ice_servers = Vec::new();
    if !config.stun_urls.is_empty() {
        ice_servers.push(IceServer {
            urls: config.stun_urls.clone(),
            username: None,
            credential: None,
        });
    }
    if !config.turn_urls.is_empty() {
        // clap refuses TURN URLs without a secret at startup.
        let secret = config
            .turn_secret
            .as_deref()
            .ok_or_else(|| anyhow!("TURN URLs are configured without a TURN secret"))?;
        let ttl = i64::try_from(config.turn_credential_ttl).unwrap_or(i64::MAX);
        let expires_at = crate::db::now().saturating_add(ttl);
        let username = format!("{expires_at}:{}", auth.user_id);
        let credential = turn_credential(secret.as_bytes(), &username)?;
        ice_servers.push(IceServer {
            urls: config.turn_urls.clone(),
            username: Some(username),
            credential: Some(credential),
        });
    }
    Ok(Json(IceServersResponse {
        ice_servers,
        ttl: config.turn_credential_ttl,
    }))
}

/// base64(HMAC-SHA1(secret, username)), the password coturn expects for `username`.
fn turn_credential(secret: &[u8], username: &str) -> Result<String, ApiError> {
    // HMAC takes keys of any length, so this cannot fail; the API still returns a Result.
    let mut mac = Hmac::<Sha1>::new_from_slice(secret)
        .map_err(|e| anyhow!("HMAC-SHA1 refused the TURN secret: {e}"))?;
    mac.update(username.as_bytes());
    Ok(STANDARD.encode(mac.finalize().into_bytes()))
}
