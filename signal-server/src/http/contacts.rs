//! `/api/contacts/*`, `/api/blocks/*` and `/api/users/search`: finding people, contact
//! requests, contacts, blocks and the one direct room of a pair.
//!
//! A block is silent toward the blocked: their requests still look pending to them, and
//! opening a direct room with the blocker gets the very answer a non-contact gets.

use super::json::JsonBody;
use crate::auth::AuthUser;
use crate::db::contacts::{self as store, ContactRow, RequestRow, SendRequest};
use crate::db::{self, at, uuid};
use crate::error::ApiError;
use crate::http::rooms::room_summary;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use shared::api::{
    BlockedUser, Contact, ContactRequest, ContactRequestOutcome, ContactRequestStatus,
    ContactRequests, PENDING_REQUESTS_MAX, PresenceStatus, PublicUser, Room, SendContactRequest,
    USER_SEARCH_MAX, USER_SEARCH_MIN,
};
use shared::signal::ServerMsg;
use shared::{ContactRequestId, ErrorBody, RoomId, UserId};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Longest search text, in characters.
const USER_SEARCH_QUERY_MAX: usize = 64;

// The conflict message below spells the limit out, since `ApiError` messages are static.
const _: () = assert!(PENDING_REQUESTS_MAX == 20);
const TOO_MANY_REQUESTS: ApiError = ApiError::Conflict {
    message: "you have 20 pending contact requests, the most allowed; \
              wait for answers or cancel one first",
    fields: None,
};
const NO_SUCH_USER: ApiError = ApiError::NotFound("no such user");
const NO_SUCH_CONTACT: ApiError = ApiError::NotFound("this user is not your contact");
const NO_SUCH_REQUEST: ApiError = ApiError::NotFound("no such contact request");

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search_users))
        .routes(routes!(list_contacts))
        .routes(routes!(remove_contact))
        .routes(routes!(list_requests, send_request))
        .routes(routes!(cancel_request))
        .routes(routes!(accept_request))
        .routes(routes!(decline_request))
        .routes(routes!(list_blocks))
        .routes(routes!(block_user, unblock_user))
        .routes(routes!(open_direct))
}

/// `GET /api/users/search` parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default)]
struct SearchParams {
    /// 2-64 characters: a username prefix or part of a display name.
    #[param(required = true, min_length = 2, max_length = 64)]
    q: String,
}

/// Finds people to add: usernames starting with `q`, or display names containing it in
/// any case. The exact username comes first, then username matches, then display-name
/// matches; at most 20, never yourself, never anyone you block or who blocks you.
#[utoipa::path(get, path = "/api/users/search", tag = "contacts", params(SearchParams),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<PublicUser>),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "`q` is shorter than 2 or longer than 64 characters"),
    ))]
async fn search_users(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(params): Query<SearchParams>,
) -> Result<Json<Vec<PublicUser>>, ApiError> {
    let q = params.q.trim();
    let len = q.chars().count();
    // PostgreSQL text cannot hold NUL; no name holds a control character.
    if q.chars().any(char::is_control) {
        return Err(ApiError::field("q", "must not contain control characters"));
    }
    if len < USER_SEARCH_MIN {
        return Err(ApiError::field(
            "q",
            format!("must be at least {USER_SEARCH_MIN} characters long"),
        ));
    }
    if len > USER_SEARCH_QUERY_MAX {
        return Err(ApiError::field(
            "q",
            format!("must be at most {USER_SEARCH_QUERY_MAX} characters long"),
        ));
    }
    let rows = store::search_users(&state.pool, auth.user_id, q, USER_SEARCH_MAX).await?;
    Ok(Json(
        rows.iter()
            .map(db::users::PublicUserRow::public)
            .collect::<anyhow::Result<_>>()?,
    ))
}

/// A contact as `ContactRow` shows it, with their presence now.
fn contact_of(state: &AppState, row: &ContactRow) -> anyhow::Result<Contact> {
    let user = row.user.public()?;
    Ok(Contact {
        presence: state.hub.status(user.id),
        direct_room_id: row
            .direct_room_id
            .as_deref()
            .map(|id| Ok::<_, anyhow::Error>(RoomId(uuid(id)?)))
            .transpose()?,
        since: at(row.since),
        user,
    })
}

/// `other` as `viewer`'s contact.
async fn contact_view(state: &AppState, viewer: UserId, other: UserId) -> anyhow::Result<Contact> {
    let row = store::contact(&state.pool, viewer, other)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the new contact is not there"))?;
    contact_of(state, &row)
}

/// Tells both users of a new contact (each gets the other) and shows each the other's
/// presence. Returns `a`'s view of `b`.
async fn announce_contact(state: &AppState, a: UserId, b: UserId) -> anyhow::Result<Contact> {
    let for_a = contact_view(state, a, b).await?;
    let for_b = contact_view(state, b, a).await?;
    state.hub.send_each(vec![
        (
            a,
            ServerMsg::ContactAdded {
                contact: for_a.clone(),
            },
        ),
        (b, ServerMsg::ContactAdded { contact: for_b }),
    ]);
    state.hub.announce_presence(a, &[b]);
    state.hub.announce_presence(b, &[a]);
    Ok(for_a)
}

/// Tells both users that their contact ended (each gets the other's id).
fn announce_contact_removed(state: &AppState, a: UserId, b: UserId) {
    state.hub.send_each(vec![
        (a, ServerMsg::ContactRemoved { user_id: b }),
        (b, ServerMsg::ContactRemoved { user_id: a }),
    ]);
}

/// The other user of a pair request: exists and is not you.
async fn other_user(state: &AppState, me: UserId, other: UserId) -> Result<(), ApiError> {
    if other == me {
        return Err(ApiError::field("user_id", "cannot be yourself"));
    }
    db::users::by_id(&state.pool, other)
        .await?
        .ok_or(NO_SUCH_USER)?;
    Ok(())
}

/// Your contacts, by username, each with their presence and your direct room if any.
#[utoipa::path(get, path = "/api/contacts", tag = "contacts", security(("bearer" = [])), responses(
    (status = 200, body = Vec<Contact>),
    (status = 401, body = ErrorBody),
))]
async fn list_contacts(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<Vec<Contact>>, ApiError> {
    let rows = store::contacts_of(&state.pool, auth.user_id).await?;
    Ok(Json(
        rows.iter()
            .map(|r| contact_of(&state, r))
            .collect::<anyhow::Result<_>>()?,
    ))
}

/// Ends a contact, for both. The direct room stays (its history readable, read-only).
#[utoipa::path(delete, path = "/api/contacts/{user_id}", tag = "contacts", security(("bearer" = [])),
    params(("user_id" = UserId, Path, description = "the contact's user id")),
    responses(
        (status = 204, description = "no longer contacts"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "not your contact"),
    ))]
async fn remove_contact(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(user_id): Path<UserId>,
) -> Result<StatusCode, ApiError> {
    if !store::remove_contact(&state.pool, auth.user_id, user_id).await? {
        return Err(NO_SUCH_CONTACT);
    }
    announce_contact_removed(&state, auth.user_id, user_id);
    Ok(StatusCode::NO_CONTENT)
}

fn requests(rows: &[RequestRow]) -> anyhow::Result<Vec<ContactRequest>> {
    rows.iter().map(RequestRow::request).collect()
}

/// Requests to you (`incoming`) and from you (`outgoing`), newest first.
#[utoipa::path(get, path = "/api/contacts/requests", tag = "contacts", security(("bearer" = [])), responses(
    (status = 200, body = ContactRequests),
    (status = 401, body = ErrorBody),
))]
async fn list_requests(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<ContactRequests>, ApiError> {
    let (incoming, outgoing) = store::requests_of(&state.pool, auth.user_id).await?;
    Ok(Json(ContactRequests {
        incoming: requests(&incoming)?,
        outgoing: requests(&outgoing)?,
    }))
}

/// Asks someone to become your contact. When they had already asked you, you are
/// contacts at once (200, `accepted`); asking again returns your pending request (200).
#[utoipa::path(post, path = "/api/contacts/requests", tag = "contacts", request_body = SendContactRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, body = ContactRequestOutcome, description = "`pending`, with the new request"),
        (status = 200, body = ContactRequestOutcome, description = "`accepted` with the contact, or `pending` with the request you had already sent"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such user"),
        (status = 409, body = ErrorBody, description = "already contacts, you block them, or 20 requests pending"),
        (status = 422, body = ErrorBody, description = "`user_id` is yourself"),
    ))]
async fn send_request(
    State(state): State<AppState>,
    auth: AuthUser,
    JsonBody(req): JsonBody<SendContactRequest>,
) -> Result<(StatusCode, Json<ContactRequestOutcome>), ApiError> {
    let me = auth.user_id;
    other_user(&state, me, req.user_id).await?;
    let pending = |request: ContactRequest| ContactRequestOutcome {
        status: ContactRequestStatus::Pending,
        request: Some(request),
        contact: None,
    };
    match store::send_request(&state.pool, me, req.user_id).await? {
        SendRequest::Created(row) => {
            let request = row.request()?;
            // A silenced request is never shown to its recipient; the sender's devices
            // learn of it either way (their outgoing list).
            let to: &[shared::UserId] = if row.silenced_at.is_none() {
                &[req.user_id, me]
            } else {
                &[me]
            };
            state.hub.send_to_users(
                to,
                &ServerMsg::ContactRequest {
                    request: request.clone(),
                },
                None,
            );
            Ok((StatusCode::CREATED, Json(pending(request))))
        }
        SendRequest::Existing(row) => Ok((StatusCode::OK, Json(pending(row.request()?)))),
        SendRequest::Accepted(_) => {
            let contact = announce_contact(&state, me, req.user_id).await?;
            Ok((
                StatusCode::OK,
                Json(ContactRequestOutcome {
                    status: ContactRequestStatus::Accepted,
                    request: None,
                    contact: Some(contact),
                }),
            ))
        }
        SendRequest::AlreadyContacts => Err(ApiError::Conflict {
            message: "you are already contacts",
            fields: None,
        }),
        SendRequest::SenderBlocks => Err(ApiError::Conflict {
            message: "you block this user; unblock them first",
            fields: None,
        }),
        SendRequest::TooMany => Err(TOO_MANY_REQUESTS),
    }
}

/// Accepts a request to you: you are contacts now.
#[utoipa::path(post, path = "/api/contacts/requests/{id}/accept", tag = "contacts", security(("bearer" = [])),
    params(("id" = ContactRequestId, Path, description = "request id")),
    responses(
        (status = 200, body = Contact, description = "your new contact"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such request to you"),
    ))]
async fn accept_request(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<ContactRequestId>,
) -> Result<Json<Contact>, ApiError> {
    let from = store::accept_request(&state.pool, id, auth.user_id)
        .await?
        .ok_or(NO_SUCH_REQUEST)?;
    Ok(Json(announce_contact(&state, auth.user_id, from).await?))
}

/// Declines a request to you; its sender learns that it is gone.
#[utoipa::path(post, path = "/api/contacts/requests/{id}/decline", tag = "contacts", security(("bearer" = [])),
    params(("id" = ContactRequestId, Path, description = "request id")),
    responses(
        (status = 204, description = "declined"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such request to you"),
    ))]
async fn decline_request(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<ContactRequestId>,
) -> Result<StatusCode, ApiError> {
    let from = store::decline_request(&state.pool, id, auth.user_id)
        .await?
        .ok_or(NO_SUCH_REQUEST)?;
    // Your other devices drop it from their incoming list too.
    state.hub.send_to_users(
        &[from, auth.user_id],
        &ServerMsg::ContactRequestRemoved { request_id: id },
        None,
    );
    Ok(StatusCode::NO_CONTENT)
}

/// Cancels a request you sent.
#[utoipa::path(delete, path = "/api/contacts/requests/{id}", tag = "contacts", security(("bearer" = [])),
    params(("id" = ContactRequestId, Path, description = "request id")),
    responses(
        (status = 204, description = "cancelled"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such request from you"),
    ))]
async fn cancel_request(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<ContactRequestId>,
) -> Result<StatusCode, ApiError> {
    let (to, silenced) = store::cancel_request(&state.pool, id, auth.user_id)
        .await?
        .ok_or(NO_SUCH_REQUEST)?;
    let mut audience = vec![auth.user_id];
    if !silenced {
        audience.push(to);
    }
    state.hub.send_to_users(
        &audience,
        &ServerMsg::ContactRequestRemoved { request_id: id },
        None,
    );
    Ok(StatusCode::NO_CONTENT)
}

/// Everyone you block, by username.
#[utoipa::path(get, path = "/api/blocks", tag = "contacts", security(("bearer" = [])), responses(
    (status = 200, body = Vec<BlockedUser>),
    (status = 401, body = ErrorBody),
))]
async fn list_blocks(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<Vec<BlockedUser>>, ApiError> {
    let rows = store::blocks_of(&state.pool, auth.user_id).await?;
    Ok(Json(
        rows.iter()
            .map(|r| {
                Ok(BlockedUser {
                    user: r.user.public()?,
                    since: at(r.since),
                })
            })
            .collect::<anyhow::Result<_>>()?,
    ))
}

/// Blocks a user: ends your contact, drops your pending request to them and silences
/// theirs to you, and hides each one's presence from the other. They are not told.
#[utoipa::path(put, path = "/api/blocks/{user_id}", tag = "contacts", security(("bearer" = [])),
    params(("user_id" = UserId, Path, description = "the user to block")),
    responses(
        (status = 204, description = "blocked (or already)"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such user"),
        (status = 422, body = ErrorBody, description = "yourself"),
    ))]
async fn block_user(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(user_id): Path<UserId>,
) -> Result<StatusCode, ApiError> {
    let me = auth.user_id;
    other_user(&state, me, user_id).await?;
    let saw_each_other = store::are_contacts(&state.pool, me, user_id).await?
        || store::share_a_room(&state.pool, me, user_id).await?;
    let blocked = store::block(&state.pool, me, user_id).await?;
    if !blocked.new {
        return Ok(StatusCode::NO_CONTENT);
    }
    if blocked.contact_removed {
        announce_contact_removed(&state, me, user_id);
    }
    if let Some(request_id) = blocked.request_deleted {
        // To them it looks like a cancelled request.
        state.hub.send_to_users(
            &[me, user_id],
            &ServerMsg::ContactRequestRemoved { request_id },
            None,
        );
    }
    if let Some(request_id) = blocked.request_silenced {
        state.hub.send_to_users(
            &[me],
            &ServerMsg::ContactRequestRemoved { request_id },
            None,
        );
    }
    if saw_each_other {
        // Not `announce_presence`, which would tell the real status: from now on each
        // sees the other as offline.
        state.hub.send_each(vec![
            (
                me,
                ServerMsg::Presence {
                    user_id,
                    status: PresenceStatus::Offline,
                },
            ),
            (
                user_id,
                ServerMsg::Presence {
                    user_id: me,
                    status: PresenceStatus::Offline,
                },
            ),
        ]);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Lifts a block. A contact it ended stays ended.
#[utoipa::path(delete, path = "/api/blocks/{user_id}", tag = "contacts", security(("bearer" = [])),
    params(("user_id" = UserId, Path, description = "the blocked user")),
    responses(
        (status = 204, description = "no longer blocked (or was not)"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such user"),
        (status = 422, body = ErrorBody, description = "yourself"),
    ))]
async fn unblock_user(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(user_id): Path<UserId>,
) -> Result<StatusCode, ApiError> {
    let me = auth.user_id;
    other_user(&state, me, user_id).await?;
    let removed = store::unblock(&state.pool, me, user_id).await?;
    // Co-members see each other's presence again, unless a block the other way remains.
    if removed
        && store::share_a_room(&state.pool, me, user_id).await?
        && !store::blocked_either(&state.pool, me, user_id).await?
    {
        state.hub.announce_presence(me, &[user_id]);
        state.hub.announce_presence(user_id, &[me]);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The one direct room with a contact, created on first use (201) and returned after
/// (200), also when both of you open it at the same moment. Anyone but a contact gets
/// `cannot_message_user`, whatever the reason.
#[utoipa::path(post, path = "/api/contacts/{user_id}/direct", tag = "contacts", security(("bearer" = [])),
    params(("user_id" = UserId, Path, description = "the contact's user id")),
    responses(
        (status = 201, body = Room, description = "created"),
        (status = 200, body = Room, description = "it existed"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "`cannot_message_user`: not a contact"),
        (status = 404, body = ErrorBody, description = "no such user"),
        (status = 422, body = ErrorBody, description = "yourself"),
    ))]
async fn open_direct(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(user_id): Path<UserId>,
) -> Result<(StatusCode, Json<Room>), ApiError> {
    let me = auth.user_id;
    other_user(&state, me, user_id).await?;
    // A block always ended the contact; checking both keeps it so if that ever changes.
    if !store::are_contacts(&state.pool, me, user_id).await?
        || store::blocked_either(&state.pool, me, user_id).await?
    {
        return Err(ApiError::CannotMessageUser);
    }
    let (row, created) = store::open_direct(&state.pool, me, user_id).await?;
    let room = row.room()?;
    if !created {
        return Ok((StatusCode::OK, Json(room)));
    }
    // Each of the two sees the new room in their list, with the other as `other_user`.
    let mut added = Vec::with_capacity(2);
    for user in [me, user_id] {
        let summary = room_summary(&state, room.id, user).await?;
        added.push((user, ServerMsg::RoomAdded { room: summary }));
    }
    state.hub.send_each(added);
    Ok((StatusCode::CREATED, Json(room)))
}
