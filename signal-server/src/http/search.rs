//! `GET /api/search`: the messages of every room you can read, found by words.
//!
//! Validation is here; the finding is `db::search` (one interface over SQLite FTS5 and
//! PostgreSQL full-text search), and the matching rule is `shared::search`'s.

use crate::auth::AuthUser;
use crate::db::search::{self as store, Cursor, Filter};
use crate::db::{at, uuid};
use crate::error::{ApiError, FieldErrors};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use shared::search::{
    SEARCH_PAGE_DEFAULT, SEARCH_PAGE_MAX, SEARCH_QUERY_MAX, SEARCH_TERMS_MAX, SearchHit,
    SearchOrder, SearchPage, terms,
};
use shared::{ErrorBody, MessageId, RoomId, UserId};
use time::{Date, Time};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(search_messages))
}

/// `GET /api/search` parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default)]
struct SearchParams {
    /// The words to find, 1-200 characters, at most 10 words; every word must occur,
    /// in any case. A word of letters or digits matches at the start of a word
    /// ("meet" finds "meeting"); Chinese, Japanese or Thai text, or a word with
    /// punctuation, matches anywhere. Quotes and operators are plain text.
    #[param(required = true, min_length = 1, max_length = 200)]
    q: String,
    /// Only this room's messages.
    room: Option<RoomId>,
    /// Only this user's messages.
    author: Option<UserId>,
    /// Only messages sent on or after this day (UTC), `YYYY-MM-DD`.
    #[param(value_type = Option<String>, format = Date)]
    after: Option<String>,
    /// Only messages sent before this day (UTC), `YYYY-MM-DD`.
    #[param(value_type = Option<String>, format = Date)]
    before: Option<String>,
    /// `newest` (the default) or `best`.
    #[param(inline)]
    order: Option<SearchOrder>,
    /// 1-50; 20 when absent.
    #[param(minimum = 1, maximum = 50)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page, with the same other parameters.
    #[param(max_length = 200)]
    cursor: Option<String>,
}

/// A `YYYY-MM-DD` day as the unix second it starts at.
fn day_start(s: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let day = Date::parse(s, &format).ok()?;
    Some(day.with_time(Time::MIDNIGHT).assume_utc().unix_timestamp())
}

/// Finds messages in the rooms you are a member of now (direct, groups, community
/// channels). Deleted messages and messages of people you block never show; an edit
/// is found by its new text only. Each hit says where its words are (`highlights`).
/// `order=best` ranks 100 of the newest matches at a time, then the next 100.
#[utoipa::path(get, path = "/api/search", tag = "search", params(SearchParams),
    security(("bearer" = [])),
    responses(
        (status = 200, body = SearchPage),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "`q` is blank, too long, holds control characters or too many words; a bad `limit`, day or `cursor`; `after` not before `before`"),
    ))]
async fn search_messages(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(params): Query<SearchParams>,
) -> Result<Json<SearchPage>, ApiError> {
    let mut errors = FieldErrors::new();
    let q = params.q.trim();
    let terms = terms(q);
    if q.chars().any(char::is_control) {
        // PostgreSQL text cannot hold NUL, and no message holds other control characters
        // but line breaks and tabs, which split words anyway.
        errors.insert("q".into(), "must not contain control characters".into());
    } else if terms.is_empty() {
        errors.insert("q".into(), "must not be blank".into());
    } else if q.chars().count() > SEARCH_QUERY_MAX {
        errors.insert(
            "q".into(),
            format!("must be at most {SEARCH_QUERY_MAX} characters long"),
        );
    } else if terms.len() > SEARCH_TERMS_MAX {
        errors.insert(
            "q".into(),
            format!("must have at most {SEARCH_TERMS_MAX} words"),
        );
    }
    let limit = params.limit.unwrap_or(SEARCH_PAGE_DEFAULT);
    if !(1..=SEARCH_PAGE_MAX).contains(&limit) {
        errors.insert(
            "limit".into(),
            format!("must be between 1 and {SEARCH_PAGE_MAX}"),
        );
    }
    let mut day = |name: &str, value: Option<&String>| {
        let parsed = value.map(|v| day_start(v));
        if let Some(None) = parsed {
            errors.insert(name.into(), "must be a day as YYYY-MM-DD".into());
        }
        parsed.flatten()
    };
    let after = day("after", params.after.as_ref());
    let before = day("before", params.before.as_ref());
    if let (Some(a), Some(b)) = (after, before)
        && a >= b
    {
        errors.insert("after".into(), "must be a day before `before`".into());
    }
    let best = params.order == Some(SearchOrder::Best);
    let cursor = match params.cursor.as_deref() {
        None => None,
        Some(c) => match Cursor::parse(c) {
            Some(c) if matches!(c, Cursor::Best { .. }) == best => Some(c),
            _ => {
                errors.insert(
                    "cursor".into(),
                    "is not a cursor this search gave (with this order)".into(),
                );
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let filter = Filter {
        user: auth.user_id,
        terms: &terms,
        room: params.room,
        author: params.author,
        after,
        before,
    };
    let page = store::search(&state.pool, &filter, best, limit as usize, cursor).await?;
    let hits = page
        .hits
        .into_iter()
        .map(|hit| {
            let row = hit.row;
            Ok(SearchHit {
                id: MessageId(uuid(&row.id)?),
                room_id: RoomId(uuid(&row.room_id)?),
                seq: u64::try_from(row.seq)?,
                author: row
                    .author_id
                    .as_deref()
                    .map(|a| Ok::<_, anyhow::Error>(UserId(uuid(a)?)))
                    .transpose()?,
                body: row.body,
                created_at: at(row.created_at),
                edited_at: row.edited_at.map(at),
                highlights: hit.highlights,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Json(SearchPage {
        hits,
        next_cursor: page.next.map(|c| c.encode()),
    }))
}
