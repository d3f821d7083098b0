//! `/api/users/*`: your own profile and other users' public fields.

use super::json::JsonBody;
use crate::auth::AuthUser;
use crate::db;
use crate::error::{ApiError, FieldErrors};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use shared::api::{DISPLAY_NAME_MAX, Me, PublicUser, STATUS_TEXT_MAX, UpdateProfileRequest};
use shared::{ErrorBody, UserId};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me, update_me))
        .routes(routes!(user))
}

/// Your profile.
#[utoipa::path(get, path = "/api/users/me", tag = "users", security(("bearer" = [])), responses(
    (status = 200, body = Me),
    (status = 401, body = ErrorBody),
))]
async fn me(State(state): State<AppState>, auth: AuthUser) -> Result<Json<Me>, ApiError> {
    let user = db::users::by_id(&state.pool, auth.user_id)
        .await?
        .ok_or(ApiError::Unauthorized("the account no longer exists"))?;
    Ok(Json(user.me()?))
}

/// Changes your display name and status text. An absent field stays; an empty one clears.
#[utoipa::path(patch, path = "/api/users/me", tag = "users", request_body = UpdateProfileRequest, security(("bearer" = [])), responses(
    (status = 200, body = Me),
    (status = 401, body = ErrorBody),
    (status = 422, body = ErrorBody),
))]
async fn update_me(
    State(state): State<AppState>,
    auth: AuthUser,
    JsonBody(req): JsonBody<UpdateProfileRequest>,
) -> Result<Json<Me>, ApiError> {
    let mut errors = FieldErrors::new();
    let display_name = req
        .display_name
        .map(|v| text_field(&v, "display_name", DISPLAY_NAME_MAX, &mut errors));
    let status_text = req
        .status_text
        .map(|v| text_field(&v, "status_text", STATUS_TEXT_MAX, &mut errors));
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    db::users::update_profile(
        &state.pool,
        auth.user_id,
        display_name,
        status_text,
        req.share_read_receipts,
    )
    .await?;
    me(State(state), auth).await
}

/// Trims a free-text field; empty means "clear".
pub fn text_field(raw: &str, name: &str, max: usize, errors: &mut FieldErrors) -> Option<String> {
    let value = raw.trim();
    if value.chars().count() > max {
        errors.insert(
            name.into(),
            format!("must be at most {max} characters long"),
        );
    } else if value.chars().any(char::is_control) {
        errors.insert(name.into(), "must not contain control characters".into());
    }
    (!value.is_empty()).then(|| value.to_owned())
}

/// Another user's public profile.
#[utoipa::path(get, path = "/api/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = UserId, Path, description = "user id")),
    responses(
        (status = 200, body = PublicUser),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
async fn user(
    State(state): State<AppState>,
    _auth: AuthUser,
    Path(id): Path<UserId>,
) -> Result<Json<PublicUser>, ApiError> {
    let user = db::users::by_id(&state.pool, id)
        .await?
        .ok_or(ApiError::NotFound("no such user"))?;
    Ok(Json(user.public()?))
}
