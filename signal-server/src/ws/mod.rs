//! `GET /ws`: the one WebSocket per client for everything real-time.

pub mod hub;
pub mod session;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::get;
use shared::signal::{BEARER_SUBPROTOCOL_PREFIX, MAX_MESSAGE_BYTES, SUBPROTOCOL};

/// tungstenite's read buffer is allocated up front for every connection and defaults to
/// 128 KiB; signaling messages are a few hundred bytes, and the buffer grows when a
/// larger one arrives.
const READ_BUFFER_BYTES: usize = 1024;

/// Queued messages are gathered up to this size before a write (see
/// `Session::write_queued`); the buffer is allocated only when first used.
const WRITE_BUFFER_BYTES: usize = 16 * 1024;

/// Frames above this are cut off by tungstenite (the connection then closes with 1009);
/// between [`MAX_MESSAGE_BYTES`] and this, the server answers with an error and keeps
/// the connection.
const HARD_FRAME_LIMIT: usize = 4 * MAX_MESSAGE_BYTES;

/// Bytes a write may buffer when the client does not read, before the write fails.
const MAX_WRITE_BUFFER_BYTES: usize = 4 * MAX_MESSAGE_BYTES;

pub fn router() -> Router<AppState> {
    Router::new().route("/ws", get(upgrade))
}

async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let allowed = origin
            .to_str()
            .is_ok_and(|o| state.config.allowed_origins.iter().any(|a| a == o));
        if !allowed {
            return Err(ApiError::Forbidden(
                "this origin may not open the WebSocket",
            ));
        }
    }
    // A browser cannot set headers on a WebSocket, so it may carry the access token as a
    // second subprotocol; the token never appears in the URL (or in access logs).
    let bearer = ws
        .requested_protocols()
        .filter_map(|p| p.to_str().ok())
        .flat_map(|p| p.split(','))
        .find_map(|p| {
            p.trim()
                .strip_prefix(BEARER_SUBPROTOCOL_PREFIX)
                .map(str::to_owned)
        });
    if bearer.is_some() {
        // With the token in the subprotocol there is no auth message to carry the
        // protocol version: the client must offer this version's subprotocol.
        let offers_version = ws
            .requested_protocols()
            .filter_map(|p| p.to_str().ok())
            .flat_map(|p| p.split(','))
            .any(|p| p.trim() == SUBPROTOCOL);
        if !offers_version {
            return Err(ApiError::UnsupportedVersion);
        }
    }
    let pre_auth = match bearer {
        Some(token) => Some(AuthUser::from_token(&state, &token).await?),
        None => None,
    };
    let tasks = state.tasks.clone();
    Ok(ws
        .protocols([SUBPROTOCOL])
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES)
        .max_message_size(HARD_FRAME_LIMIT)
        .max_frame_size(HARD_FRAME_LIMIT)
        .on_upgrade(move |socket| tasks.track_future(session::run(socket, state, pre_auth))))
}
