//! Authentication: JWT access tokens, opaque refresh and password-reset tokens, Argon2id
//! password hashing, the `AuthUser` extractor and the login/register/reset rate limits.

pub mod password;
pub mod ratelimit;
pub mod reset;
pub mod tokens;
pub mod validate;

use crate::db;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use shared::{SessionId, UserId};

/// The caller of an authenticated endpoint, from a valid, unrevoked access token.
#[derive(Clone, Debug)]
pub struct AuthUser {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub jti: String,
    /// Unix seconds.
    pub expires_at: i64,
}

impl AuthUser {
    /// Verifies an access token: signature, claims, and that neither it nor its session
    /// was revoked.
    pub async fn from_token(state: &AppState, token: &str) -> Result<Self, ApiError> {
        let claims = state
            .jwt
            .verify(token)
            .map_err(|_| ApiError::Unauthorized("the access token is invalid or expired"))?;
        let user = Self {
            user_id: claims.sub,
            session_id: claims.sid,
            jti: claims.jti,
            expires_at: claims.exp,
        };
        if !db::sessions::access_allowed(&state.pool, user.session_id, &user.jti).await? {
            return Err(ApiError::Unauthorized("the session was signed out"));
        }
        Ok(user)
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .ok_or(ApiError::Unauthorized(
                "an access token is required (Authorization: Bearer)",
            ))?;
        Self::from_token(state, token.trim()).await
    }
}
