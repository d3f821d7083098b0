//! `/api/rooms/*` and `/api/invites/*`: the room list, groups and their management,
//! membership and invite links.
//!
//! Direct rooms are opened through `POST /api/contacts/{id}/direct` (http/contacts.rs)
//! and always hold their two users: joining, leaving, deleting, inviting and managing
//! members are for groups only (409 on a direct room). Every change to a room is told to
//! its members on the WebSocket after it is committed: `room_added` to whoever came in,
//! `room_removed` to whoever went, `room_updated` to the rest.

use super::json::JsonBody;
use crate::auth::AuthUser;
use crate::auth::tokens::{hash_token, random_token};
use crate::db;
use crate::db::rooms::{AddMember, InviteJoin, Join, Leave, MemberChange, RoomRow, SummaryRow};
use crate::error::{ApiError, FieldErrors};
use crate::http::users::text_field;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use shared::api::{
    AddMemberRequest, CreateInviteRequest, CreateRoomRequest, Invite, PresenceStatus,
    ROOM_DEFAULT_PARTICIPANTS, ROOM_MAX_PARTICIPANTS, ROOM_MIN_PARTICIPANTS, ROOM_TITLE_MAX, Room,
    RoomDetail, RoomKind, RoomMember, RoomRole, RoomSettingsRequest, RoomSummary,
    UpdateMemberRequest, UpdateRoomRequest,
};
use shared::signal::ServerMsg;
use shared::{ErrorBody, RoomId, UserId};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Default and longest lifetime of an invite link.
const INVITE_DEFAULT_TTL: u64 = 7 * 24 * 3600;
const INVITE_MAX_TTL: u64 = 30 * 24 * 3600;
const INVITE_MIN_TTL: u64 = 60;

const NO_SUCH_ROOM: ApiError = ApiError::NotFound("no such room");
const NO_SUCH_MEMBER: ApiError = ApiError::NotFound("no such member in this room");

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_room, list_rooms))
        .routes(routes!(get_room, update_room, delete_room))
        .routes(routes!(join_room))
        .routes(routes!(leave_room))
        .routes(routes!(add_member))
        .routes(routes!(update_member, remove_member))
        .routes(routes!(update_settings))
        .routes(routes!(create_invite))
        .routes(routes!(accept_invite))
}

/// One room of `user` as their room list shows it (and as `room_added` carries it).
/// 404 when they are not a member.
pub async fn room_summary(
    state: &AppState,
    room: RoomId,
    user: UserId,
) -> Result<RoomSummary, ApiError> {
    summary_of(state, room, user).await?.ok_or(NO_SUCH_ROOM)
}

async fn summary_of(
    state: &AppState,
    room: RoomId,
    user: UserId,
) -> anyhow::Result<Option<RoomSummary>> {
    let rows = db::rooms::summaries(&state.pool, user, Some(room)).await?;
    rows.first().map(|r| complete(state, r)).transpose()
}

/// Adds what lives in the hub, not the database: presence and the call's size.
fn complete(state: &AppState, row: &SummaryRow) -> anyhow::Result<RoomSummary> {
    let mut summary = row.summary()?;
    if let Some(other) = &summary.other_user {
        // A block hides presence both ways.
        summary.other_presence = Some(if row.other_blocked() {
            PresenceStatus::Offline
        } else {
            state.hub.status(other.id)
        });
    }
    summary.call_participants =
        u32::try_from(state.hub.call_size(summary.room.id)).unwrap_or(u32::MAX);
    Ok(summary)
}

/// Refuses what only groups have (members to manage, a title, invite links). A channel's
/// members and settings are its community's (`/api/communities`).
fn group_only(row: &RoomRow, message: &'static str) -> Result<(), ApiError> {
    match row.kind()? {
        RoomKind::Group => Ok(()),
        RoomKind::Channel => Err(CHANNEL),
        RoomKind::Direct => Err(ApiError::Conflict {
            message,
            fields: None,
        }),
    }
}

const CHANNEL: ApiError = ApiError::Conflict {
    message: "a channel is managed through its community (/api/communities)",
    fields: None,
};

/// Runs the WebSocket side of a committed change. A failure here is logged, not
/// answered: the change happened, and clients catch up from the database anyway.
async fn announce(what: &str, work: impl Future<Output = anyhow::Result<()>>) {
    if let Err(e) = work.await {
        tracing::warn!(error = %format!("{e:#}"), "{what}: events not sent");
    }
}

/// `user` came into `room`: `room_added` to their devices, `room_updated` to the others.
async fn announce_joined(state: &AppState, room: RoomId, user: UserId) -> anyhow::Result<()> {
    let Some(summary) = summary_of(state, room, user).await? else {
        return Ok(());
    };
    let others: Vec<UserId> = db::rooms::member_ids(&state.pool, room)
        .await?
        .into_iter()
        .filter(|u| *u != user)
        .collect();
    state.hub.send_to_users(
        &others,
        &ServerMsg::RoomUpdated {
            room: summary.room.clone(),
        },
        None,
    );
    state
        .hub
        .send_to_users(&[user], &ServerMsg::RoomAdded { room: summary }, None);
    // Co-members see each other's presence from now on (never across a block).
    let hidden = db::contacts::block_relations(&state.pool, user).await?;
    let visible: Vec<UserId> = others.into_iter().filter(|u| !hidden.contains(u)).collect();
    state.hub.announce_presence(user, &visible);
    let around: Vec<ServerMsg> = state
        .hub
        .online(&visible)
        .into_iter()
        .map(|e| ServerMsg::Presence {
            user_id: e.user_id,
            status: e.status,
        })
        .collect();
    state
        .hub
        .send_each(around.into_iter().map(|m| (user, m)).collect());
    Ok(())
}

/// `room_updated` to every member.
async fn announce_updated(state: &AppState, room: RoomId) -> anyhow::Result<()> {
    let Some(row) = db::rooms::by_id(&state.pool, room).await? else {
        return Ok(());
    };
    let members = db::rooms::member_ids(&state.pool, room).await?;
    state.hub.send_to_users(
        &members,
        &ServerMsg::RoomUpdated { room: row.room()? },
        None,
    );
    Ok(())
}

/// `user` is out of `room`: out of its call on every device, and `room_removed`.
fn announce_removed(state: &AppState, room: RoomId, user: UserId) {
    state.hub.remove_user_from_call(room, user);
    state
        .hub
        .send_to_users(&[user], &ServerMsg::RoomRemoved { room_id: room }, None);
}

/// A title and call capacity, checked as create and update both want them. `title` is
/// None when absent from an update (a create passes `Some`); `blank` says what is wrong
/// with an empty one.
fn room_fields(
    title: Option<&str>,
    blank: &str,
    max_participants: Option<u32>,
) -> Result<(Option<String>, Option<u32>), ApiError> {
    let mut errors = FieldErrors::new();
    let title = title.and_then(|t| {
        let value = text_field(t, "title", ROOM_TITLE_MAX, &mut errors);
        if value.is_none() && !errors.contains_key("title") {
            errors.insert("title".into(), blank.into());
        }
        value
    });
    if let Some(max) = max_participants
        && !(ROOM_MIN_PARTICIPANTS..=ROOM_MAX_PARTICIPANTS).contains(&max)
    {
        errors.insert(
            "max_participants".into(),
            format!("must be between {ROOM_MIN_PARTICIPANTS} and {ROOM_MAX_PARTICIPANTS}"),
        );
    }
    if errors.is_empty() {
        Ok((title, max_participants))
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// Creates a group; you own it and are its first member. `max_participants` is the
/// capacity of its call, not a limit on members.
#[utoipa::path(post, path = "/api/rooms", tag = "rooms", request_body = CreateRoomRequest, security(("bearer" = [])), responses(
    (status = 201, body = Room),
    (status = 401, body = ErrorBody),
    (status = 422, body = ErrorBody),
))]
async fn create_room(
    State(state): State<AppState>,
    auth: AuthUser,
    JsonBody(req): JsonBody<CreateRoomRequest>,
) -> Result<(StatusCode, Json<Room>), ApiError> {
    let (title, max) = room_fields(
        Some(&req.title),
        "is required",
        Some(req.max_participants.unwrap_or(ROOM_DEFAULT_PARTICIPANTS)),
    )?;
    let (Some(title), Some(max)) = (title, max) else {
        return Err(ApiError::field("title", "is required"));
    };
    let row = db::rooms::create(&state.pool, auth.user_id, &title, max).await?;
    let room = row.room()?;
    // The creator's other devices learn of it as of any room they come into.
    announce("create room", async {
        if let Some(summary) = summary_of(&state, room.id, auth.user_id).await? {
            state.hub.send_to_users(
                &[auth.user_id],
                &ServerMsg::RoomAdded { room: summary },
                None,
            );
        }
        Ok(())
    })
    .await;
    Ok((StatusCode::CREATED, Json(room)))
}

/// Every room of yours with what the room list shows (kind, title or the other user,
/// last message, unread and mention counts, read marker, muted), newest activity first.
#[utoipa::path(get, path = "/api/rooms", tag = "rooms", security(("bearer" = [])), responses(
    (status = 200, body = Vec<RoomSummary>),
    (status = 401, body = ErrorBody),
))]
async fn list_rooms(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<Vec<RoomSummary>>, ApiError> {
    let rows = db::rooms::summaries(&state.pool, auth.user_id, None).await?;
    Ok(Json(
        rows.iter()
            .map(|r| complete(&state, r))
            .collect::<anyhow::Result<_>>()?,
    ))
}

/// A room and its members with their roles. Only members see it; for anyone else it
/// does not exist.
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

/// Renames a group or changes its call capacity (admins). Absent fields stay.
#[utoipa::path(patch, path = "/api/rooms/{id}", tag = "rooms", request_body = UpdateRoomRequest, security(("bearer" = [])),
    params(("id" = RoomId, Path, description = "room id")),
    responses(
        (status = 200, body = Room),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "you are not an admin"),
        (status = 404, body = ErrorBody, description = "no such room, or you are not a member"),
        (status = 409, body = ErrorBody, description = "a direct room"),
        (status = 422, body = ErrorBody),
    ))]
async fn update_room(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<RoomId>,
    JsonBody(req): JsonBody<UpdateRoomRequest>,
) -> Result<Json<Room>, ApiError> {
    let (title, max) = room_fields(
        req.title.as_deref(),
        "must not be empty",
        req.max_participants,
    )?;
    let (row, role) = db::rooms::membership(&state.pool, id, auth.user_id)
        .await?
        .ok_or(NO_SUCH_ROOM)?;
    group_only(
        &row,
        "a direct room has no title or call settings to change",
    )?;
    if !role.is_admin() {
        return Err(ApiError::Forbidden("only admins can change the room"));
    }
    if title.is_none() && max.is_none() {
        return Ok(Json(row.room()?));
    }
    if !db::rooms::update(&state.pool, id, auth.user_id, title.as_deref(), max).await? {
        return Err(ApiError::Forbidden("only admins can change the room"));
    }
    let row = db::rooms::by_id(&state.pool, id)
        .await?
        .ok_or(NO_SUCH_ROOM)?;
    announce("update room", announce_updated(&state, id)).await;
    Ok(Json(row.room()?))
}

/// Joins a group by id.
#[utoipa::path(post, path = "/api/rooms/{id}/join", tag = "rooms", security(("bearer" = [])),
    params(("id" = RoomId, Path, description = "room id")),
    responses(
        (status = 200, body = Room, description = "joined (or already a member)"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the group is full (`room_full`), or a direct room"),
    ))]
async fn join_room(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<RoomId>,
) -> Result<Json<Room>, ApiError> {
    let row = db::rooms::by_id(&state.pool, id)
        .await?
        .ok_or(NO_SUCH_ROOM)?;
    if row.kind()? != RoomKind::Group {
        // A direct room does not exist for anyone but its two users.
        return Err(
            if db::rooms::is_member(&state.pool, id, auth.user_id).await? {
                if row.kind()? == RoomKind::Channel {
                    CHANNEL
                } else {
                    ApiError::Conflict {
                        message: "a direct room cannot be joined",
                        fields: None,
                    }
                }
            } else {
                NO_SUCH_ROOM
            },
        );
    }
    match db::rooms::join(
        &state.pool,
        id,
        auth.user_id,
        state.config.max_group_members,
    )
    .await?
    {
        Join::Joined => announce("join", announce_joined(&state, id, auth.user_id)).await,
        Join::AlreadyMember => {}
        Join::Full => return Err(ApiError::RoomFull),
        Join::NotGroup | Join::NoSuchRoom => return Err(NO_SUCH_ROOM),
    }
    let row = db::rooms::by_id(&state.pool, id)
        .await?
        .ok_or(NO_SUCH_ROOM)?;
    Ok(Json(row.room()?))
}

/// Leaves a group (and its call). When the owner leaves, the oldest admin becomes the
/// owner, else the oldest member; when the last member leaves, the group is deleted.
#[utoipa::path(post, path = "/api/rooms/{id}/leave", tag = "rooms", security(("bearer" = [])),
    params(("id" = RoomId, Path, description = "room id")),
    responses(
        (status = 204, description = "left"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such room, or you are not a member"),
        (status = 409, body = ErrorBody, description = "a direct room"),
    ))]
async fn leave_room(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<RoomId>,
) -> Result<StatusCode, ApiError> {
    leave(&state, auth.user_id, id).await
}

async fn leave(state: &AppState, user: UserId, id: RoomId) -> Result<StatusCode, ApiError> {
    let row = db::rooms::for_member(&state.pool, id, user)
        .await?
        .ok_or(NO_SUCH_ROOM)?;
    group_only(&row, "a direct room cannot be left")?;
    match db::rooms::leave(&state.pool, id, user).await? {
        Leave::NotMember => return Err(NO_SUCH_ROOM),
        Leave::Left { .. } => announce("leave", announce_updated(state, id)).await,
        Leave::RoomDeleted => state.hub.end_call(id),
    }
    announce_removed(state, id, user);
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a group, ending its call. Owner only.
#[utoipa::path(delete, path = "/api/rooms/{id}", tag = "rooms", security(("bearer" = [])),
    params(("id" = RoomId, Path, description = "room id")),
    responses(
        (status = 204, description = "deleted"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "you are a member but not the owner"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "a direct room"),
    ))]
async fn delete_room(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<RoomId>,
) -> Result<StatusCode, ApiError> {
    let (row, role) = db::rooms::membership(&state.pool, id, auth.user_id)
        .await?
        .ok_or(NO_SUCH_ROOM)?;
    group_only(&row, "a direct room cannot be deleted")?;
    const NOT_OWNER: ApiError = ApiError::Forbidden("only the owner can delete the room");
    if role != RoomRole::Owner {
        return Err(NOT_OWNER);
    }
    let members = db::rooms::delete(&state.pool, id, auth.user_id)
        .await?
        .ok_or(NOT_OWNER)?;
    state.hub.end_call(id);
    state
        .hub
        .send_to_users(&members, &ServerMsg::RoomRemoved { room_id: id }, None);
    Ok(StatusCode::NO_CONTENT)
}

/// Adds one of your contacts to a group (admins).
#[utoipa::path(post, path = "/api/rooms/{id}/members", tag = "rooms", request_body = AddMemberRequest, security(("bearer" = [])),
    params(("id" = RoomId, Path, description = "room id")),
    responses(
        (status = 201, body = RoomMember),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "you are not an admin (`forbidden`), or they are not your contact (`cannot_message_user`)"),
        (status = 404, body = ErrorBody, description = "no such room (or you are not a member), or no such user"),
        (status = 409, body = ErrorBody, description = "already a member, the group is full (`room_full`), or a direct room"),
    ))]
async fn add_member(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<RoomId>,
    JsonBody(req): JsonBody<AddMemberRequest>,
) -> Result<(StatusCode, Json<RoomMember>), ApiError> {
    const ALREADY: ApiError = ApiError::Conflict {
        message: "already a member of this room",
        fields: None,
    };
    const NOT_ADMIN: ApiError = ApiError::Forbidden("only admins can add members");
    let (row, role) = db::rooms::membership(&state.pool, id, auth.user_id)
        .await?
        .ok_or(NO_SUCH_ROOM)?;
    group_only(&row, "a direct room has exactly its two users")?;
    if !role.is_admin() {
        return Err(NOT_ADMIN);
    }
    let target = req.user_id;
    if target == auth.user_id {
        return Err(ALREADY);
    }
    if db::users::by_id(&state.pool, target).await?.is_none() {
        return Err(ApiError::NotFound("no such user"));
    }
    // Not a contact and blocked (either way) get the same answer, so a block cannot be
    // told apart.
    if !db::contacts::are_contacts(&state.pool, auth.user_id, target).await?
        || db::contacts::blocked_either(&state.pool, auth.user_id, target).await?
    {
        return Err(ApiError::CannotMessageUser);
    }
    let limit = state.config.max_group_members;
    match db::rooms::add_member(&state.pool, id, auth.user_id, target, limit).await? {
        AddMember::Added => {}
        AddMember::NotAllowed => return Err(NOT_ADMIN),
        AddMember::Refused(Join::AlreadyMember) => return Err(ALREADY),
        AddMember::Refused(Join::Full) => return Err(ApiError::RoomFull),
        AddMember::Refused(_) => return Err(NO_SUCH_ROOM),
    }
    announce("add member", announce_joined(&state, id, target)).await;
    let member = db::rooms::member(&state.pool, id, target)
        .await?
        .ok_or(NO_SUCH_MEMBER)?;
    Ok((StatusCode::CREATED, Json(member)))
}

/// Removes a member from a group (admins; only the owner removes admins, and nobody the
/// owner). Removing yourself is leaving.
#[utoipa::path(delete, path = "/api/rooms/{id}/members/{user_id}", tag = "rooms", security(("bearer" = [])),
    params(
        ("id" = RoomId, Path, description = "room id"),
        ("user_id" = UserId, Path, description = "the member to remove"),
    ),
    responses(
        (status = 204, description = "removed"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "your role does not allow it"),
        (status = 404, body = ErrorBody, description = "no such room (or you are not a member), or they are not a member"),
        (status = 409, body = ErrorBody, description = "a direct room"),
    ))]
async fn remove_member(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, user)): Path<(RoomId, UserId)>,
) -> Result<StatusCode, ApiError> {
    if user == auth.user_id {
        return leave(&state, auth.user_id, id).await;
    }
    let (row, role) = db::rooms::membership(&state.pool, id, auth.user_id)
        .await?
        .ok_or(NO_SUCH_ROOM)?;
    group_only(&row, "a direct room has exactly its two users")?;
    if !role.is_admin() {
        return Err(ApiError::Forbidden("only admins can remove members"));
    }
    match db::rooms::remove_member(&state.pool, id, auth.user_id, user).await? {
        MemberChange::Done => {}
        MemberChange::NotMember => return Err(NO_SUCH_MEMBER),
        MemberChange::NotAllowed => {
            return Err(ApiError::Forbidden(
                "only the owner can remove an admin, and the owner cannot be removed",
            ));
        }
    }
    announce_removed(&state, id, user);
    announce("remove member", announce_updated(&state, id)).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Makes a member an admin, or an admin a member again (the owner only).
#[utoipa::path(patch, path = "/api/rooms/{id}/members/{user_id}", tag = "rooms", request_body = UpdateMemberRequest, security(("bearer" = [])),
    params(
        ("id" = RoomId, Path, description = "room id"),
        ("user_id" = UserId, Path, description = "the member"),
    ),
    responses(
        (status = 200, body = RoomMember),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "you are not the owner"),
        (status = 404, body = ErrorBody, description = "no such room (or you are not a member), or they are not a member"),
        (status = 409, body = ErrorBody, description = "your own role, or a direct room"),
        (status = 422, body = ErrorBody, description = "role `owner`: ownership passes only when the owner leaves"),
    ))]
async fn update_member(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, user)): Path<(RoomId, UserId)>,
    JsonBody(req): JsonBody<UpdateMemberRequest>,
) -> Result<Json<RoomMember>, ApiError> {
    const NOT_OWNER: ApiError = ApiError::Forbidden("only the owner can change roles");
    if req.role == RoomRole::Owner {
        return Err(ApiError::field(
            "role",
            "must be admin or member: ownership passes only when the owner leaves",
        ));
    }
    let (row, role) = db::rooms::membership(&state.pool, id, auth.user_id)
        .await?
        .ok_or(NO_SUCH_ROOM)?;
    group_only(&row, "a direct room has no roles")?;
    if role != RoomRole::Owner {
        return Err(NOT_OWNER);
    }
    if user == auth.user_id {
        return Err(ApiError::Conflict {
            message: "you own this room: your role changes only when you leave it",
            fields: None,
        });
    }
    match db::rooms::set_role(&state.pool, id, auth.user_id, user, req.role).await? {
        MemberChange::Done => {}
        MemberChange::NotMember => return Err(NO_SUCH_MEMBER),
        MemberChange::NotAllowed => return Err(NOT_OWNER),
    }
    announce("change role", announce_updated(&state, id)).await;
    let member = db::rooms::member(&state.pool, id, user)
        .await?
        .ok_or(NO_SUCH_MEMBER)?;
    Ok(Json(member))
}

/// Your own settings for a room (any member, any kind): mute it.
#[utoipa::path(patch, path = "/api/rooms/{id}/settings", tag = "rooms", request_body = RoomSettingsRequest, security(("bearer" = [])),
    params(("id" = RoomId, Path, description = "room id")),
    responses(
        (status = 200, body = RoomSummary),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such room, or you are not a member"),
    ))]
async fn update_settings(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<RoomId>,
    JsonBody(req): JsonBody<RoomSettingsRequest>,
) -> Result<Json<RoomSummary>, ApiError> {
    if !db::rooms::is_member(&state.pool, id, auth.user_id).await? {
        return Err(NO_SUCH_ROOM);
    }
    if let Some(muted) = req.muted {
        db::rooms::set_muted(&state.pool, id, auth.user_id, muted).await?;
        // The setting is mine on every device.
        state.hub.send_to_users(
            &[auth.user_id],
            &ServerMsg::RoomSettings { room_id: id, muted },
            None,
        );
    }
    Ok(Json(room_summary(&state, id, auth.user_id).await?))
}

/// Creates an invite link for a group you are a member of. The body may be omitted.
#[utoipa::path(post, path = "/api/rooms/{id}/invites", tag = "rooms", request_body(content = Option<CreateInviteRequest>), security(("bearer" = [])),
    params(("id" = RoomId, Path, description = "room id")),
    responses(
        (status = 201, body = Invite),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "a direct room"),
        (status = 422, body = ErrorBody),
    ))]
async fn create_invite(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<RoomId>,
    body: Option<JsonBody<Option<CreateInviteRequest>>>,
) -> Result<(StatusCode, Json<Invite>), ApiError> {
    // No body, or a JSON `null` one: the defaults.
    let req = body.and_then(|JsonBody(r)| r).unwrap_or_default();
    let ttl = invite_ttl(&req)?;
    let row = db::rooms::for_member(&state.pool, id, auth.user_id)
        .await?
        .ok_or(NO_SUCH_ROOM)?;
    group_only(&row, "a direct room has no invite links")?;
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

/// Joins the group an invite link leads to. A use is counted only when you join.
#[utoipa::path(post, path = "/api/invites/{token}/accept", tag = "rooms", security(("bearer" = [])),
    params(("token" = String, Path, description = "invite token")),
    responses(
        (status = 200, body = Room, description = "joined (or already a member)"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "unknown invite"),
        (status = 409, body = ErrorBody, description = "the group is full (`room_full`)"),
        (status = 410, body = ErrorBody, description = "the invite expired or was used up"),
    ))]
async fn accept_invite(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(token): Path<String>,
) -> Result<Json<Room>, ApiError> {
    const UNKNOWN: ApiError = ApiError::NotFound("no such invite");
    let hash = hash_token(&token);
    let limit = state.config.max_group_members;
    let room = match db::rooms::accept_invite(&state.pool, &hash, auth.user_id, limit).await? {
        InviteJoin::Joined { room, joined } => {
            if joined {
                announce("accept invite", announce_joined(&state, room, auth.user_id)).await;
            }
            room
        }
        InviteJoin::Unknown => return Err(UNKNOWN),
        InviteJoin::ExpiredOrUsedUp => {
            return Err(ApiError::Gone("this invite has expired or was used up"));
        }
        InviteJoin::Refused(Join::Full) => return Err(ApiError::RoomFull),
        InviteJoin::Refused(_) => return Err(UNKNOWN),
    };
    let row = db::rooms::by_id(&state.pool, room)
        .await?
        .ok_or(NO_SUCH_ROOM)?;
    Ok(Json(row.room()?))
}

/// Checks an invite request (of a group or a community) and returns its lifetime in
/// seconds, the default when it names none.
pub(crate) fn invite_ttl(req: &CreateInviteRequest) -> Result<u64, ApiError> {
    let mut errors = FieldErrors::new();
    let ttl = req.expires_in.unwrap_or(INVITE_DEFAULT_TTL);
    if !(INVITE_MIN_TTL..=INVITE_MAX_TTL).contains(&ttl) {
        errors.insert(
            "expires_in".into(),
            format!("must be between {INVITE_MIN_TTL} and {INVITE_MAX_TTL} seconds"),
        );
    }
    match req.max_uses {
        Some(0) => {
            errors.insert("max_uses".into(), "must be at least 1".into());
        }
        // The document calls it an `int32`; nobody needs more uses than that.
        Some(n) if i32::try_from(n).is_err() => {
            errors.insert("max_uses".into(), format!("must be at most {}", i32::MAX));
        }
        _ => {}
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    Ok(ttl)
}
