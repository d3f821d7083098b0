//! `/api/rooms/{id}/messages`, `/changes` and `/read`: a room's timeline over REST. The
//! rules live in `chat.rs`, shared with the WebSocket.

use super::json::JsonBody;
use crate::auth::AuthUser;
use crate::chat;
use crate::db::messages::{self as store, Anchor};
use crate::db::{self};
use crate::error::{ApiError, FieldErrors};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use shared::api::{
    CHANGES_PAGE_MAX, ChangesPage, EditMessageRequest, MESSAGE_PAGE_DEFAULT, MESSAGE_PAGE_MAX,
    Message, MessagePage, ReadRequest, SendMessageRequest,
};
use shared::{ErrorBody, MessageId, RoomId};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const NO_SUCH_ROOM: ApiError = ApiError::NotFound("no such room");

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(send_message, list_messages))
        .routes(routes!(edit_message, delete_message))
        .routes(routes!(add_reaction, remove_reaction))
        .routes(routes!(changes))
        .routes(routes!(mark_read))
}

/// Sends a message. The `Idempotency-Key` header (required, 1-64 characters, made by the
/// client) makes retries safe: the same key again answers 200 with the original message,
/// never a second one; the same key with another body is refused with 422.
#[utoipa::path(post, path = "/api/rooms/{id}/messages", tag = "messages", request_body = SendMessageRequest, security(("bearer" = [])),
    params(
        ("id" = RoomId, Path, description = "room id"),
        ("Idempotency-Key" = String, Header, description = "the client's key for this message"),
    ),
    responses(
        (status = 201, body = Message, description = "stored"),
        (status = 200, body = Message, description = "a retry: the message stored for this key"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "a direct room with someone who is no longer a contact (`cannot_message_user`)"),
        (status = 404, body = ErrorBody, description = "no such room, or you are not a member"),
        (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "too many messages; see Retry-After"),
    ))]
async fn send_message(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<RoomId>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<SendMessageRequest>,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    let key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        Some(Ok(key)) => key.to_owned(),
        Some(Err(_)) => {
            return Err(ApiError::field(
                "idempotency_key",
                "must be visible ASCII characters",
            ));
        }
        None => return Err(ApiError::field("idempotency_key", "is required")),
    };
    let mut errors = FieldErrors::new();
    chat::validate_client_id(&key, "idempotency_key", &mut errors);
    chat::validate_content(&req.body, &req.attachments, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let (message, created) = chat::send(
        &state,
        auth.user_id,
        id,
        &key,
        &req.body,
        req.reply_to,
        &req.attachments,
        None,
    )
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(message)))
}

/// Which page of the timeline; at most one of `before`, `after` and `around`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
struct PageQuery {
    /// Messages with seq below this.
    #[param(maximum = 9223372036854775807_u64)]
    before: Option<u64>,
    /// Messages with seq above this.
    #[param(maximum = 9223372036854775807_u64)]
    after: Option<u64>,
    /// Messages around this seq, it included.
    #[param(maximum = 9223372036854775807_u64)]
    around: Option<u64>,
    /// 1-100; 20 when absent.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
}

/// A page of the timeline in ascending seq: the newest messages without an anchor.
#[utoipa::path(get, path = "/api/rooms/{id}/messages", tag = "messages", security(("bearer" = [])),
    params(("id" = RoomId, Path, description = "room id"), PageQuery),
    responses(
        (status = 200, body = MessagePage),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
async fn list_messages(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<RoomId>,
    Query(q): Query<PageQuery>,
) -> Result<Json<MessagePage>, ApiError> {
    let mut errors = FieldErrors::new();
    let limit = q.limit.unwrap_or(MESSAGE_PAGE_DEFAULT);
    if !(1..=MESSAGE_PAGE_MAX).contains(&limit) {
        errors.insert(
            "limit".into(),
            format!("must be between 1 and {MESSAGE_PAGE_MAX}"),
        );
    }
    let seq = |v: u64, name: &str, errors: &mut FieldErrors| match i64::try_from(v) {
        Ok(s) => s,
        Err(_) => {
            errors.insert(name.into(), "is too large".into());
            0
        }
    };
    let anchor = match (q.before, q.after, q.around) {
        (None, None, None) => Anchor::Latest,
        (Some(b), None, None) => Anchor::Before(seq(b, "before", &mut errors)),
        (None, Some(a), None) => Anchor::After(seq(a, "after", &mut errors)),
        (None, None, Some(c)) => Anchor::Around(seq(c, "around", &mut errors)),
        _ => {
            errors.insert(
                "before".into(),
                "give at most one of before, after and around".into(),
            );
            Anchor::Latest
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let pos = store::position(&state.pool, id, auth.user_id)
        .await?
        .ok_or(NO_SUCH_ROOM)?;
    let rows = store::page(&state.pool, id, anchor, i64::from(limit)).await?;
    // Seqs are dense from 1, so what lies beyond a page is known from its ends.
    let (has_more_before, has_more_after) = match (rows.first(), rows.last()) {
        (Some(first), Some(last)) => (first.seq > 1, last.seq < pos.last_seq),
        _ => match anchor {
            Anchor::Latest => (false, false),
            Anchor::Before(s) => (false, s <= pos.last_seq),
            Anchor::After(s) | Anchor::Around(s) => (s > 1 && pos.last_seq > 0, false),
        },
    };
    let blocked = db::contacts::blocked_by(&state.pool, auth.user_id).await?;
    let messages = store::decorate(&state.pool, &rows, &blocked).await?;
    Ok(Json(MessagePage {
        messages,
        has_more_before,
        has_more_after,
    }))
}

/// Catch-up from a cursor.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
struct ChangesQuery {
    /// The rev you are up to date with (0: from the beginning).
    #[param(maximum = 9223372036854775807_u64)]
    since: u64,
    /// 1-1000; 1000 when absent.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Every message created or changed (edited, deleted, reacted to) after rev `since`, each
/// once as it is now, in ascending rev. Apply them, then ask again from `rev` while
/// `has_more`: after any time offline this brings a client to exactly the server's state.
#[utoipa::path(get, path = "/api/rooms/{id}/changes", tag = "messages", security(("bearer" = [])),
    params(("id" = RoomId, Path, description = "room id"), ChangesQuery),
    responses(
        (status = 200, body = ChangesPage),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
async fn changes(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<RoomId>,
    Query(q): Query<ChangesQuery>,
) -> Result<Json<ChangesPage>, ApiError> {
    let limit = q.limit.unwrap_or(CHANGES_PAGE_MAX);
    if !(1..=CHANGES_PAGE_MAX).contains(&limit) {
        return Err(ApiError::field(
            "limit",
            format!("must be between 1 and {CHANGES_PAGE_MAX}"),
        ));
    }
    let since = i64::try_from(q.since).map_err(|_| ApiError::field("since", "is too large"))?;
    let pos = store::position(&state.pool, id, auth.user_id)
        .await?
        .ok_or(NO_SUCH_ROOM)?;
    // One more than asked for tells whether there is more.
    let mut rows = store::changes(&state.pool, id, since, i64::from(limit) + 1).await?;
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let rev = match (has_more, rows.last()) {
        (true, Some(last)) => last.rev,
        // Everything up to the room's rev as read with the membership: a change committed
        // after that read comes with a higher rev and is found next time.
        _ => pos.last_rev.max(rows.last().map_or(since, |r| r.rev)),
    };
    let blocked = db::contacts::blocked_by(&state.pool, auth.user_id).await?;
    let messages = store::decorate(&state.pool, &rows, &blocked).await?;
    Ok(Json(ChangesPage {
        messages,
        rev: u64::try_from(rev).unwrap_or(0),
        has_more,
        last_read_seq: u64::try_from(pos.last_read_seq).unwrap_or(0),
    }))
}

/// Edits your message (sets `edited_at`).
#[utoipa::path(patch, path = "/api/rooms/{id}/messages/{message_id}", tag = "messages", request_body = EditMessageRequest, security(("bearer" = [])),
    params(("id" = RoomId, Path, description = "room id"), ("message_id" = MessageId, Path, description = "message id")),
    responses(
        (status = 200, body = Message),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "someone else's message (`forbidden`), or a direct room with someone who is no longer a contact (`cannot_message_user`)"),
        (status = 404, body = ErrorBody, description = "no such room or message"),
        (status = 422, body = ErrorBody),
    ))]
async fn edit_message(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, message_id)): Path<(RoomId, MessageId)>,
    JsonBody(req): JsonBody<EditMessageRequest>,
) -> Result<Json<Message>, ApiError> {
    Ok(Json(
        chat::edit(&state, auth.user_id, id, message_id, &req.body).await?,
    ))
}

/// Deletes a message: yours, or any in a group you administer. A tombstone keeps its seq.
#[utoipa::path(delete, path = "/api/rooms/{id}/messages/{message_id}", tag = "messages", security(("bearer" = [])),
    params(("id" = RoomId, Path, description = "room id"), ("message_id" = MessageId, Path, description = "message id")),
    responses(
        (status = 200, body = Message, description = "the tombstone"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
async fn delete_message(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, message_id)): Path<(RoomId, MessageId)>,
) -> Result<Json<Message>, ApiError> {
    Ok(Json(
        chat::delete(&state, auth.user_id, id, message_id).await?,
    ))
}

/// Adds your reaction (one emoji; at most 20 different ones per message). Idempotent.
#[utoipa::path(put, path = "/api/rooms/{id}/messages/{message_id}/reactions/{emoji}", tag = "messages", security(("bearer" = [])),
    params(
        ("id" = RoomId, Path, description = "room id"),
        ("message_id" = MessageId, Path, description = "message id"),
        ("emoji" = String, Path, description = "one emoji, percent-encoded"),
    ),
    responses(
        (status = 200, body = Message),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "a direct room with someone who is no longer a contact (`cannot_message_user`)"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "20 different reactions already"),
        (status = 422, body = ErrorBody),
    ))]
async fn add_reaction(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, message_id, emoji)): Path<(RoomId, MessageId, String)>,
) -> Result<Json<Message>, ApiError> {
    Ok(Json(
        chat::react(&state, auth.user_id, id, message_id, &emoji, true).await?,
    ))
}

/// Removes your reaction. Idempotent.
#[utoipa::path(delete, path = "/api/rooms/{id}/messages/{message_id}/reactions/{emoji}", tag = "messages", security(("bearer" = [])),
    params(
        ("id" = RoomId, Path, description = "room id"),
        ("message_id" = MessageId, Path, description = "message id"),
        ("emoji" = String, Path, description = "one emoji, percent-encoded"),
    ),
    responses(
        (status = 200, body = Message),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "a direct room with someone who is no longer a contact (`cannot_message_user`)"),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
async fn remove_reaction(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, message_id, emoji)): Path<(RoomId, MessageId, String)>,
) -> Result<Json<Message>, ApiError> {
    Ok(Json(
        chat::react(&state, auth.user_id, id, message_id, &emoji, false).await?,
    ))
}

/// Moves your read marker forward to `seq` (never back, never past the newest message);
/// answers with the marker now.
#[utoipa::path(post, path = "/api/rooms/{id}/read", tag = "messages", request_body = ReadRequest, security(("bearer" = [])),
    params(("id" = RoomId, Path, description = "room id")),
    responses(
        (status = 200, body = ReadRequest, description = "the marker now"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
async fn mark_read(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<RoomId>,
    JsonBody(req): JsonBody<ReadRequest>,
) -> Result<Json<ReadRequest>, ApiError> {
    let seq = chat::mark(&state, auth.user_id, id, req.seq, true).await?;
    Ok(Json(ReadRequest { seq }))
}
