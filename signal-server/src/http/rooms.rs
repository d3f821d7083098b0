//! `/api/rooms/*` and `/api/invites/*`: rooms, membership and invite links.

use crate::auth::AuthUser;
use crate::auth::tokens::{hash_token, random_token};
use crate::db::{self, rooms::InviteLookup, rooms::Join};
use crate::error::{ApiError, FieldErrors};
use crate::http::users::text_field;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use shared::api::{
    CreateInviteRequest, CreateRoomRequest, Invite, ROOM_DEFAULT_PARTICIPANTS,
    ROOM_MAX_PARTICIPANTS, ROOM_MIN_PARTICIPANTS, ROOM_TITLE_MAX, Room, RoomDetail,
};
use shared::{ErrorBody, RoomId};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Default and longest lifetime of an invite link.
const INVITE_DEFAULT_TTL: u64 = 7 * 24 * 3600;
const INVITE_MAX_TTL: u64 = 30 * 24 * 3600;
const INVITE_MIN_TTL: u64 = 60;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_room, list_rooms))
        .routes(routes!(get_room, delete_room))
        .routes(routes!(join_room))
        .routes(routes!(leave_room))
        .routes(routes!(create_invite))
        .routes(routes!(accept_invite))
}

/// Creates a room; you own it and are its first member.
#[utoipa::path(post, path = "/api/rooms", tag = "rooms", request_body = CreateRoomRequest, security(("bearer" = [])), responses(
    (status = 201, body = Room),
    (status = 401, body = ErrorBody),
    (status = 422, body = ErrorBody),
))]
async fn create_room(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(req): Json<CreateRoomRequest>,
) -> Result<(StatusCode, Json<Room>), ApiError> {
    let mut errors = FieldErrors::new();
    let title = text_field(&req.title, "title", ROOM_TITLE_MAX, &mut errors);
    if title.is_none() && !errors.contains_key("title") {
        errors.insert("title".into(), "is required".into());
    }
    let max = req.max_participants.unwrap_or(ROOM_DEFAULT_PARTICIPANTS);
    if !(ROOM_MIN_PARTICIPANTS..=ROOM_MAX_PARTICIPANTS).contains(&max) {
        errors.insert(
            "max_participants".into(),
            format!("must be between {ROOM_MIN_PARTICIPANTS} and {ROOM_MAX_PARTICIPANTS}"),
        );
    }
    let Some(title) = title.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let room = db::rooms::create(&state.pool, auth.user_id, &title, max).await?;
    Ok((StatusCode::CREATED, Json(room.room()?)))
}

/// Rooms you own or joined, most recently joined first.
#[utoipa::path(get, path = "/api/rooms", tag = "rooms", security(("bearer" = [])), responses(
    (status = 200, body = Vec<Room>),
    (status = 401, body = ErrorBody),
))]
async fn list_rooms(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<Vec<Room>>, ApiError> {
    let rows = db::rooms::of_user(&state.pool, auth.user_id).await?;
    Ok(Json(
        rows.iter()
            .map(db::rooms::RoomRow::room)
            .collect::<anyhow::Result<_>>()?,
    ))
}

/// A room and its members. Only members see it; for anyone else it does not exist.
#[utoipa::path(get, path = "/api/rooms/{id}", tag = "rooms", security(("bearer" = [])),
    params(("id" = RoomId, Path, description = "room id")),
    responses(
        (status = 200, body = RoomDetail),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such room, or you are not a member"),
    ))]
async fn get_room(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<RoomId>,
) -> Result<Json<RoomDetail>, ApiError> {
    let row = db::rooms::for_member(&state.pool, id, auth.user_id)
        .await?
        .ok_or(NO_SUCH_ROOM)?;
    let members = db::rooms::members(&state.pool, &row).await?;
    Ok(Json(RoomDetail {
        room: row.room()?,
        members,
    }))
}

const NO_SUCH_ROOM: ApiError = ApiError::NotFound("no such room");

/// Joins a room by id.
#[utoipa::path(post, path = "/api/rooms/{id}/join", tag = "rooms", security(("bearer" = [])),
    params(("id" = RoomId, Path, description = "room id")),
    responses(
        (status = 200, body = Room, description = "joined (or already a member)"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the room is full (`room_full`)"),
    ))]
async fn join_room(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<RoomId>,
) -> Result<Json<Room>, ApiError> {
    join(&state, &auth, id).await
}

async fn join(state: &AppState, auth: &AuthUser, id: RoomId) -> Result<Json<Room>, ApiError> {
    match db::rooms::join(&state.pool, id, auth.user_id).await? {
        Join::Joined | Join::AlreadyMember => {}
        Join::Full => return Err(ApiError::RoomFull),
        Join::NoSuchRoom => return Err(NO_SUCH_ROOM),
    }
    let row = db::rooms::by_id(&state.pool, id)
        .await?
        .ok_or(NO_SUCH_ROOM)?;
    Ok(Json(row.room()?))
}

/// Leaves a room (and its call). The owner cannot leave; they delete the room instead.
#[utoipa::path(post, path = "/api/rooms/{id}/leave", tag = "rooms", security(("bearer" = [])),
    params(("id" = RoomId, Path, description = "room id")),
    responses(
        (status = 204, description = "left"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such room, or you are not a member"),
        (status = 409, body = ErrorBody, description = "you own the room"),
    ))]
async fn leave_room(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<RoomId>,
) -> Result<StatusCode, ApiError> {
    let row = db::rooms::for_member(&state.pool, id, auth.user_id)
        .await?
        .ok_or(NO_SUCH_ROOM)?;
    if row.owner_id == auth.user_id.to_string() {
        return Err(ApiError::Conflict {
            message: "the owner cannot leave the room; delete it instead",
            fields: None,
        });
    }
    db::rooms::leave(&state.pool, id, auth.user_id).await?;
    state.hub.remove_user_from_call(id, auth.user_id);
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a room, ending its call. Owner only.
#[utoipa::path(delete, path = "/api/rooms/{id}", tag = "rooms", security(("bearer" = [])),
    params(("id" = RoomId, Path, description = "room id")),
    responses(
        (status = 204, description = "deleted"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "you are a member but not the owner"),
        (status = 404, body = ErrorBody),
    ))]
async fn delete_room(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<RoomId>,
) -> Result<StatusCode, ApiError> {
    let row = db::rooms::for_member(&state.pool, id, auth.user_id)
        .await?
        .ok_or(NO_SUCH_ROOM)?;
    if row.owner_id != auth.user_id.to_string() {
        return Err(ApiError::Forbidden("only the owner can delete the room"));
    }
    db::rooms::delete(&state.pool, id).await?;
    state.hub.end_call(id);
    Ok(StatusCode::NO_CONTENT)
}

/// Creates an invite link for a room you are a member of. The body may be omitted.
#[utoipa::path(post, path = "/api/rooms/{id}/invites", tag = "rooms", request_body(content = Option<CreateInviteRequest>), security(("bearer" = [])),
    params(("id" = RoomId, Path, description = "room id")),
    responses(
        (status = 201, body = Invite),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
async fn create_invite(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<RoomId>,
    body: Option<Json<CreateInviteRequest>>,
) -> Result<(StatusCode, Json<Invite>), ApiError> {
    let req = body.map(|Json(r)| r).unwrap_or_default();
    let mut errors = FieldErrors::new();
    let ttl = req.expires_in.unwrap_or(INVITE_DEFAULT_TTL);
    if !(INVITE_MIN_TTL..=INVITE_MAX_TTL).contains(&ttl) {
        errors.insert(
            "expires_in".into(),
            format!("must be between {INVITE_MIN_TTL} and {INVITE_MAX_TTL} seconds"),
        );
    }
    if req.max_uses == Some(0) {
        errors.insert("max_uses".into(), "must be at least 1".into());
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    if !db::rooms::is_member(&state.pool, id, auth.user_id).await? {
        return Err(NO_SUCH_ROOM);
    }
    let token = random_token();
    let expires_at = db::now() + i64::try_from(ttl).unwrap_or(0);
    db::rooms::create_invite(
        &state.pool,
        id,
        auth.user_id,
        &hash_token(&token),
        expires_at,
        req.max_uses,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(Invite {
            token,
            room_id: id,
            expires_at: db::at(expires_at),
            max_uses: req.max_uses,
        }),
    ))
}

/// Joins the room an invite link leads to.
#[utoipa::path(post, path = "/api/invites/{token}/accept", tag = "rooms", security(("bearer" = [])),
    params(("token" = String, Path, description = "invite token")),
    responses(
        (status = 200, body = Room, description = "joined (or already a member)"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "unknown invite"),
        (status = 409, body = ErrorBody, description = "the room is full (`room_full`)"),
        (status = 410, body = ErrorBody, description = "the invite expired or was used up"),
    ))]
async fn accept_invite(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(token): Path<String>,
) -> Result<Json<Room>, ApiError> {
    let hash = hash_token(&token);
    let room = match db::rooms::find_invite(&state.pool, &hash).await? {
        InviteLookup::Valid(room) => room,
        InviteLookup::Unknown => return Err(ApiError::NotFound("no such invite")),
        InviteLookup::ExpiredOrUsedUp => {
            return Err(ApiError::Gone("this invite has expired or was used up"));
        }
    };
    if db::rooms::is_member(&state.pool, room, auth.user_id).await? {
        return join(&state, &auth, room).await;
    }
    if !db::rooms::use_invite(&state.pool, &hash).await? {
        return Err(ApiError::Gone("this invite has expired or was used up"));
    }
    join(&state, &auth, room).await
}
