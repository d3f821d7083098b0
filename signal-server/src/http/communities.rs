//! `/api/communities/*`: communities, their members, roles, bans, invite links and
//! channels.
//!
//! Who sees what: a public community is visible to everyone signed in (its summary, in
//! discover); a private one only to its members, and to anyone else it does not exist
//! (404, as for rooms). Everything inside a community (members, channels, invites, bans)
//! is for members: a non-member gets 404 where the community is invisible to them and 403
//! where it is visible (public). Admins manage channels, members and invites; only the
//! owner manages admins, changes the visibility, hands the community over or deletes it.
//!
//! A channel is a room of kind `channel` (db/communities.rs): its timeline, read marker,
//! typing and call are the room endpoints and WebSocket messages. Every change here is
//! told to the community's members on the WebSocket after it is committed, through the
//! hub's user events (so the cluster bus carries them to the other nodes too).

use super::json::JsonBody;
use crate::auth::AuthUser;
use crate::auth::tokens::{hash_token, random_token};
use crate::db;
use crate::db::communities::{
    ChannelChange, ChannelRow, ChannelStateRow, ChannelUpdate, CommunityRow, InviteJoin, Join,
    ListFilter, MemberRow, NewChannel, Removal, RoleChange,
};
use crate::error::{ApiError, FieldErrors};
use crate::http::users::text_field;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use shared::api::{
    CreateInviteRequest, PresenceStatus, ROOM_DEFAULT_PARTICIPANTS, ROOM_MAX_PARTICIPANTS,
    ROOM_MIN_PARTICIPANTS, RoomRole, UNREAD_COUNT_CAP,
};
use shared::communities::{
    BAN_REASON_MAX, BanRequest, CATEGORY_NAME_MAX, CHANNEL_NAME_MAX, CHANNEL_TOPIC_MAX,
    COMMUNITY_DESCRIPTION_MAX, COMMUNITY_NAME_MAX, COMMUNITY_PAGE_DEFAULT, COMMUNITY_PAGE_MAX,
    COMMUNITY_QUERY_MAX, Channel, ChannelSummary, Community, CommunityBan, CommunityExit,
    CommunityInvite, CommunityMember, CommunityMemberPage, CommunityPage, CommunitySummary,
    CommunityVisibility, CreateChannelRequest, CreateCommunityRequest, NewCommunityInvite,
    ReorderChannelsRequest, UpdateChannelRequest, UpdateCommunityMemberRequest,
    UpdateCommunityRequest,
};
use shared::signal::ServerMsg;
use shared::{CommunityId, CommunityInviteId, ErrorBody, RoomId, UserId};
use std::collections::{HashMap, HashSet};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const NO_SUCH_COMMUNITY: ApiError = ApiError::NotFound("no such community");
const NO_SUCH_CHANNEL: ApiError = ApiError::NotFound("no such channel in this community");
const NO_SUCH_MEMBER: ApiError = ApiError::NotFound("no such member in this community");
const NOT_MEMBER: ApiError = ApiError::Forbidden("you are not a member of this community");
const NOT_ADMIN: ApiError = ApiError::Forbidden("only admins can do this");
const NOT_OWNER: ApiError = ApiError::Forbidden("only the owner can do this");
const FULL: ApiError = ApiError::Conflict {
    message: "the community is full",
    fields: None,
};
const BANNED: ApiError = ApiError::Forbidden("you are banned from this community");

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_community, list_communities))
        .routes(routes!(get_community, update_community, delete_community))
        .routes(routes!(join_community))
        .routes(routes!(leave_community))
        .routes(routes!(create_invite, list_invites))
        .routes(routes!(revoke_invite))
        .routes(routes!(accept_invite))
        .routes(routes!(list_members))
        .routes(routes!(update_member, kick_member))
        .routes(routes!(list_bans, ban_user))
        .routes(routes!(unban_user))
        .routes(routes!(list_channels, create_channel))
        .routes(routes!(update_channel, delete_channel))
        .routes(routes!(reorder_channels))
}

/// The one place a community's API shape is built from its row, for every viewer and
/// every event (`Community` is this without the viewer's part). `icon_url` is where
/// `row.icon_file_id` is served (`PUT /api/communities/{id}/icon`, http/files.rs).
pub fn community_summary(
    _state: &AppState,
    row: &CommunityRow,
    unread_count: u32,
    mention_count: u32,
) -> anyhow::Result<CommunitySummary> {
    Ok(CommunitySummary {
        community: Community {
            id: row.community_id()?,
            name: row.name.clone(),
            description: row.description.clone(),
            icon_url: row
                .icon_file_id
                .as_deref()
                .and_then(|f| f.parse().ok())
                .map(shared::files::picture_url),
            visibility: row.visibility()?,
            owner_id: row.owner()?,
            member_count: u32::try_from(row.member_count)?,
            created_at: db::at(row.created_at),
        },
        my_role: row.my_role()?,
        unread_count,
        mention_count,
    })
}

fn cap(n: i64) -> u32 {
    u32::try_from(n.clamp(0, i64::from(UNREAD_COUNT_CAP))).unwrap_or(UNREAD_COUNT_CAP)
}

/// A channel with my unread state, and the call's size from the hub.
fn channel_summary(state: &AppState, row: &ChannelStateRow) -> anyhow::Result<ChannelSummary> {
    let channel = row.channel.channel()?;
    let call_participants = u32::try_from(state.hub.call_size(channel.id)).unwrap_or(u32::MAX);
    Ok(ChannelSummary {
        channel,
        unread_count: cap(row.unread_count),
        mention_count: cap(row.mention_count),
        last_read_seq: u64::try_from(row.last_read_seq)?,
        last_seq: u64::try_from(row.last_seq)?,
        rev: u64::try_from(row.last_rev)?,
        muted: row.muted_at.is_some(),
        call_participants,
    })
}

/// Summaries of these rows for `viewer`: the unread and mention counts are the sums over
/// the viewer's channels of each (two queries for any number of communities).
async fn summaries(
    state: &AppState,
    viewer: UserId,
    rows: &[CommunityRow],
) -> anyhow::Result<Vec<CommunitySummary>> {
    let mine: Vec<CommunityId> = rows
        .iter()
        .filter(|r| r.my_role.is_some())
        .map(CommunityRow::community_id)
        .collect::<anyhow::Result<_>>()?;
    let mut sums: HashMap<String, (i64, i64)> = HashMap::new();
    for ch in db::communities::channel_states(&state.pool, viewer, &mine).await? {
        let e = sums.entry(ch.channel.community_id.clone()).or_default();
        e.0 += ch.unread_count;
        e.1 += ch.mention_count;
    }
    rows.iter()
        .map(|r| {
            let (u, m) = sums.get(&r.id).copied().unwrap_or_default();
            community_summary(state, r, cap(u), cap(m))
        })
        .collect()
}

async fn summary_for(
    state: &AppState,
    id: CommunityId,
    viewer: UserId,
) -> Result<CommunitySummary, ApiError> {
    let row = visible(state, id, viewer).await?;
    Ok(summaries(state, viewer, std::slice::from_ref(&row))
        .await?
        .remove(0))
}

/// My channels of a community with their unread state, in order.
async fn my_channels(
    state: &AppState,
    id: CommunityId,
    user: UserId,
) -> anyhow::Result<Vec<ChannelSummary>> {
    db::communities::channel_states(&state.pool, user, &[id])
        .await?
        .iter()
        .map(|r| channel_summary(state, r))
        .collect()
}

/// The community if `user` may see it; 404 otherwise.
async fn visible(
    state: &AppState,
    id: CommunityId,
    user: UserId,
) -> Result<CommunityRow, ApiError> {
    match db::communities::by_id(&state.pool, id, user).await? {
        Some(row) if row.visible() => Ok(row),
        _ => Err(NO_SUCH_COMMUNITY),
    }
}

/// The community and `user`'s role: 404 where it is invisible to them, 403 where it is
/// visible but they are not a member.
async fn membership(
    state: &AppState,
    id: CommunityId,
    user: UserId,
) -> Result<(CommunityRow, RoomRole), ApiError> {
    let row = visible(state, id, user).await?;
    let role = row.my_role()?.ok_or(NOT_MEMBER)?;
    Ok((row, role))
}

/// As [`membership`], and the user must be an admin (or the owner).
async fn admin(state: &AppState, id: CommunityId, user: UserId) -> Result<CommunityRow, ApiError> {
    let (row, role) = membership(state, id, user).await?;
    if role.is_admin() {
        Ok(row)
    } else {
        Err(NOT_ADMIN)
    }
}

/// Runs the WebSocket side of a committed change. A failure here is logged, not
/// answered: the change happened, and clients can read it back.
async fn announce(what: &str, work: impl Future<Output = anyhow::Result<()>>) {
    if let Err(e) = work.await {
        tracing::warn!(error = %format!("{e:#}"), "{what}: events not sent");
    }
}

/// One message to every member of the community (every device, every node).
async fn tell_members(state: &AppState, id: CommunityId, msg: &ServerMsg) -> anyhow::Result<()> {
    let members = db::communities::member_ids(&state.pool, id).await?;
    state.hub.send_to_users(&members, msg, None);
    Ok(())
}

/// `community_updated` to every member, as the community is now.
pub async fn announce_updated(state: &AppState, id: CommunityId) -> anyhow::Result<()> {
    // Seen by nobody in particular: the viewer part of the summary is dropped.
    let Some(row) = db::communities::by_id(&state.pool, id, UserId(uuid::Uuid::nil())).await?
    else {
        return Ok(());
    };
    let community = community_summary(state, &row, 0, 0)?.community;
    tell_members(state, id, &ServerMsg::CommunityUpdated { community }).await
}

/// A member as the member list shows them to `viewer`.
fn member_view(
    state: &AppState,
    row: &MemberRow,
    hidden: &HashSet<UserId>,
) -> anyhow::Result<CommunityMember> {
    let user = row.user.public()?;
    let presence = if hidden.contains(&user.id) {
        PresenceStatus::Offline
    } else {
        state.hub.status(user.id)
    };
    Ok(CommunityMember {
        role: row.role()?,
        joined_at: db::at(row.joined_at),
        presence,
        user,
    })
}

/// `user` came in: `community_added` with its channels to their devices,
/// `community_member_joined` to the others, and presence both ways (never across a block).
async fn announce_joined(state: &AppState, id: CommunityId, user: UserId) -> anyhow::Result<()> {
    let summary = summary_for(state, id, user).await.map_err(anyhow_of)?;
    let channels = my_channels(state, id, user).await?;
    let member_count = summary.community.member_count;
    state.hub.send_to_users(
        &[user],
        &ServerMsg::CommunityAdded {
            community: summary,
            channels,
        },
        None,
    );
    let Some(row) = db::communities::member(&state.pool, id, user).await? else {
        return Ok(());
    };
    let others: Vec<UserId> = db::communities::member_ids(&state.pool, id)
        .await?
        .into_iter()
        .filter(|u| *u != user)
        .collect();
    let hidden = db::contacts::block_relations(&state.pool, user).await?;
    let mut member = member_view(state, &row, &HashSet::new())?;
    // Others see the newcomer's presence unless a block stands between them; the event
    // is one for all, so it carries what everyone may see: offline for a blocked pair
    // is sent separately below as the usual presence message.
    member.presence = state.hub.status(user);
    let (blocked, plain): (Vec<UserId>, Vec<UserId>) =
        others.iter().partition(|u| hidden.contains(u));
    state.hub.send_to_users(
        &plain,
        &ServerMsg::CommunityMemberJoined {
            community_id: id,
            member: member.clone(),
            member_count,
        },
        None,
    );
    if !blocked.is_empty() {
        member.presence = PresenceStatus::Offline;
        state.hub.send_to_users(
            &blocked,
            &ServerMsg::CommunityMemberJoined {
                community_id: id,
                member,
                member_count,
            },
            None,
        );
    }
    state.hub.announce_presence(user, &plain);
    let around: Vec<(UserId, ServerMsg)> = state
        .hub
        .online(&plain)
        .into_iter()
        .map(|e| {
            (
                user,
                ServerMsg::Presence {
                    user_id: e.user_id,
                    status: e.status,
                },
            )
        })
        .collect();
    state.hub.send_each(around);
    Ok(())
}

fn anyhow_of(e: ApiError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// `user` is out (left, kicked, banned): out of the channels' calls and typing at once,
/// `community_removed` to their devices, `community_member_left` to the rest.
async fn announce_removed(
    state: &AppState,
    id: CommunityId,
    user: UserId,
    channels: &[RoomId],
    reason: CommunityExit,
) -> anyhow::Result<()> {
    for room in channels {
        state.hub.remove_user_from_call(*room, user);
        state.hub.stop_typing(*room, user);
    }
    state.hub.send_to_users(
        &[user],
        &ServerMsg::CommunityRemoved {
            community_id: id,
            reason,
        },
        None,
    );
    let member_count = db::communities::by_id(&state.pool, id, user)
        .await?
        .map_or(0, |r| u32::try_from(r.member_count).unwrap_or(0));
    tell_members(
        state,
        id,
        &ServerMsg::CommunityMemberLeft {
            community_id: id,
            user_id: user,
            reason,
            member_count,
        },
    )
    .await
}

/// A name, checked as create and update want it: trimmed, 1..=max characters.
fn name_field(raw: &str, field: &str, max: usize, errors: &mut FieldErrors) -> Option<String> {
    let value = text_field(raw, field, max, errors);
    if value.is_none() && !errors.contains_key(field) {
        errors.insert(field.into(), "must not be blank".into());
    }
    value
}

/// Free text that may be cleared: None when absent, Some(None) when empty.
fn optional_text(
    raw: Option<&str>,
    field: &str,
    max: usize,
    errors: &mut FieldErrors,
) -> Option<Option<String>> {
    raw.map(|t| text_field(t, field, max, errors))
}

fn participants_field(max: Option<u32>, errors: &mut FieldErrors) -> Option<u32> {
    if let Some(n) = max
        && !(ROOM_MIN_PARTICIPANTS..=ROOM_MAX_PARTICIPANTS).contains(&n)
    {
        errors.insert(
            "max_participants".into(),
            format!("must be between {ROOM_MIN_PARTICIPANTS} and {ROOM_MAX_PARTICIPANTS}"),
        );
    }
    max
}

fn checked(errors: FieldErrors) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// Creates a community: you own it, and it starts with one channel, `general`.
#[utoipa::path(post, path = "/api/communities", tag = "communities", request_body = CreateCommunityRequest, security(("bearer" = [])), responses(
    (status = 201, body = CommunitySummary),
    (status = 401, body = ErrorBody),
    (status = 422, body = ErrorBody),
))]
async fn create_community(
    State(state): State<AppState>,
    auth: AuthUser,
    JsonBody(req): JsonBody<CreateCommunityRequest>,
) -> Result<(StatusCode, Json<CommunitySummary>), ApiError> {
    let mut errors = FieldErrors::new();
    let name = name_field(&req.name, "name", COMMUNITY_NAME_MAX, &mut errors);
    let description = optional_text(
        req.description.as_deref(),
        "description",
        COMMUNITY_DESCRIPTION_MAX,
        &mut errors,
    )
    .flatten()
    .unwrap_or_default();
    checked(errors)?;
    let name = name.ok_or_else(|| ApiError::field("name", "is required"))?;
    let id = db::communities::create(
        &state.pool,
        auth.user_id,
        &name,
        &description,
        req.visibility.unwrap_or_default(),
    )
    .await?;
    let summary = summary_for(&state, id, auth.user_id).await?;
    announce("create community", async {
        let channels = my_channels(&state, id, auth.user_id).await?;
        state.hub.send_to_users(
            &[auth.user_id],
            &ServerMsg::CommunityAdded {
                community: summary.clone(),
                channels,
            },
            None,
        );
        Ok(())
    })
    .await;
    Ok((StatusCode::CREATED, Json(summary)))
}

/// The community list's filters. Without `member`, `visibility=public` lists every
/// public community (discover); otherwise the list is the communities of `member` (you
/// when absent) that you may see: public ones, and private ones you are in too.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
struct ListQuery {
    /// Communities this user is a member of (default: you).
    member: Option<UserId>,
    /// Only this community.
    id: Option<CommunityId>,
    /// Text to find in the name or description (any case), 1-100 characters.
    #[param(max_length = 100)]
    q: Option<String>,
    /// `public` or `private`.
    visibility: Option<CommunityVisibility>,
    /// 1-200; 50 when absent.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// `next_cursor` of the page before.
    #[param(max_length = 100)]
    cursor: Option<String>,
}

/// Parses a cursor made by [`cursor_of`]: `<number>.<number>...:<id>` parts.
fn parse_cursor(raw: &str, numbers: usize) -> Option<(Vec<i64>, String)> {
    let (nums, id) = raw.rsplit_once(':')?;
    let nums: Vec<i64> = nums
        .split('.')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let id = uuid::Uuid::parse_str(id).ok()?;
    (nums.len() == numbers).then(|| (nums, id.to_string()))
}

fn cursor_of(nums: &[i64], id: &str) -> String {
    let nums: Vec<String> = nums.iter().map(i64::to_string).collect();
    format!("{}:{id}", nums.join("."))
}

fn page_limit(limit: Option<u32>, errors: &mut FieldErrors) -> u32 {
    let limit = limit.unwrap_or(COMMUNITY_PAGE_DEFAULT);
    if !(1..=COMMUNITY_PAGE_MAX).contains(&limit) {
        errors.insert(
            "limit".into(),
            format!("must be between 1 and {COMMUNITY_PAGE_MAX}"),
        );
    }
    limit
}

/// Communities, filtered by member, id, text and visibility, oldest first, a page at a
/// time. Unread and mention counts are the sums over your channels (0 where you are not
/// a member).
#[utoipa::path(get, path = "/api/communities", tag = "communities", security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, body = CommunityPage),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "a limit out of range, a cursor that is not one, a query too long or with control characters"),
    ))]
async fn list_communities(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(q): Query<ListQuery>,
) -> Result<Json<CommunityPage>, ApiError> {
    let mut errors = FieldErrors::new();
    let limit = page_limit(q.limit, &mut errors);
    let text =
        q.q.as_deref()
            .and_then(|t| text_field(t, "q", COMMUNITY_QUERY_MAX, &mut errors))
            .map(|t| t.to_lowercase());
    let after = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(raw) => match parse_cursor(raw, 1) {
            Some((nums, id)) => Some((nums[0], id)),
            None => {
                errors.insert("cursor".into(), "is not a cursor this server made".into());
                None
            }
        },
    };
    checked(errors)?;
    let discover = q.member.is_none() && q.visibility == Some(CommunityVisibility::Public);
    let filter = ListFilter {
        member: if discover {
            None
        } else {
            Some(q.member.unwrap_or(auth.user_id))
        },
        id: q.id,
        text,
        visibility: q.visibility,
        after,
        limit,
    };
    let mut rows = db::communities::list(&state.pool, auth.user_id, &filter).await?;
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = more
        .then(|| rows.last().map(|r| cursor_of(&[r.created_at], &r.id)))
        .flatten();
    Ok(Json(CommunityPage {
        communities: summaries(&state, auth.user_id, &rows).await?,
        next_cursor,
    }))
}

/// One community: public ones for anyone, private ones for their members.
#[utoipa::path(get, path = "/api/communities/{id}", tag = "communities", security(("bearer" = [])),
    params(("id" = CommunityId, Path, description = "community id")),
    responses(
        (status = 200, body = CommunitySummary),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such community, or a private one you are not in"),
    ))]
async fn get_community(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<CommunityId>,
) -> Result<Json<CommunitySummary>, ApiError> {
    Ok(Json(summary_for(&state, id, auth.user_id).await?))
}

/// Renames, describes (admins) or changes the visibility (the owner). Absent fields stay.
#[utoipa::path(patch, path = "/api/communities/{id}", tag = "communities", request_body = UpdateCommunityRequest, security(("bearer" = [])),
    params(("id" = CommunityId, Path, description = "community id")),
    responses(
        (status = 200, body = CommunitySummary),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "not a member, not an admin, or not the owner for the visibility"),
        (status = 404, body = ErrorBody, description = "no such community, or a private one you are not in"),
        (status = 422, body = ErrorBody),
    ))]
async fn update_community(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<CommunityId>,
    JsonBody(req): JsonBody<UpdateCommunityRequest>,
) -> Result<Json<CommunitySummary>, ApiError> {
    let mut errors = FieldErrors::new();
    let name = req
        .name
        .as_deref()
        .and_then(|n| name_field(n, "name", COMMUNITY_NAME_MAX, &mut errors));
    let description = optional_text(
        req.description.as_deref(),
        "description",
        COMMUNITY_DESCRIPTION_MAX,
        &mut errors,
    )
    .map(Option::unwrap_or_default);
    checked(errors)?;
    let (_, role) = membership(&state, id, auth.user_id).await?;
    if !role.is_admin() {
        return Err(NOT_ADMIN);
    }
    if req.visibility.is_some() && role != RoomRole::Owner {
        return Err(ApiError::Forbidden(
            "only the owner can change the visibility",
        ));
    }
    if name.is_some() || description.is_some() || req.visibility.is_some() {
        if !db::communities::update(
            &state.pool,
            id,
            auth.user_id,
            name.as_deref(),
            description.as_deref(),
            req.visibility,
        )
        .await?
        {
            return Err(NOT_ADMIN);
        }
        announce("update community", announce_updated(&state, id)).await;
    }
    Ok(Json(summary_for(&state, id, auth.user_id).await?))
}

/// Deletes a community with its channels and their timelines, ending their calls. The
/// owner only.
#[utoipa::path(delete, path = "/api/communities/{id}", tag = "communities", security(("bearer" = [])),
    params(("id" = CommunityId, Path, description = "community id")),
    responses(
        (status = 204, description = "deleted"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "you are not the owner"),
        (status = 404, body = ErrorBody, description = "no such community, or a private one you are not in"),
    ))]
async fn delete_community(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<CommunityId>,
) -> Result<StatusCode, ApiError> {
    let (_, role) = membership(&state, id, auth.user_id).await?;
    if role != RoomRole::Owner {
        return Err(NOT_OWNER);
    }
    let gone = db::communities::delete(&state.pool, id, auth.user_id)
        .await?
        .ok_or(NOT_OWNER)?;
    for room in &gone.channels {
        state.hub.end_call(*room);
    }
    state.hub.send_to_users(
        &gone.members,
        &ServerMsg::CommunityRemoved {
            community_id: id,
            reason: CommunityExit::Deleted,
        },
        None,
    );
    Ok(StatusCode::NO_CONTENT)
}

/// Joins a public community (private ones take an invite link).
#[utoipa::path(post, path = "/api/communities/{id}/join", tag = "communities", security(("bearer" = [])),
    params(("id" = CommunityId, Path, description = "community id")),
    responses(
        (status = 200, body = CommunitySummary, description = "joined (or already a member)"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "you are banned from it"),
        (status = 404, body = ErrorBody, description = "no such community, or a private one"),
        (status = 409, body = ErrorBody, description = "the community is full"),
    ))]
async fn join_community(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<CommunityId>,
) -> Result<Json<CommunitySummary>, ApiError> {
    visible(&state, id, auth.user_id).await?;
    let limit = state.config.max_community_members;
    match db::communities::join(&state.pool, id, auth.user_id, limit).await? {
        Join::Joined => announce("join", announce_joined(&state, id, auth.user_id)).await,
        Join::AlreadyMember => {}
        Join::Banned => return Err(BANNED),
        Join::Full => return Err(FULL),
        Join::Private | Join::NoSuchCommunity => return Err(NO_SUCH_COMMUNITY),
    }
    Ok(Json(summary_for(&state, id, auth.user_id).await?))
}

async fn leave(state: &AppState, id: CommunityId, user: UserId) -> Result<StatusCode, ApiError> {
    membership(state, id, user).await?;
    match db::communities::leave(&state.pool, id, user).await? {
        Removal::Done { channels, .. } => {
            announce(
                "leave",
                announce_removed(state, id, user, &channels, CommunityExit::Left),
            )
            .await;
            Ok(StatusCode::NO_CONTENT)
        }
        Removal::Owner => Err(ApiError::Conflict {
            message: "the owner cannot leave: hand the community over first, or delete it",
            fields: None,
        }),
        Removal::NotMember | Removal::NotAllowed => Err(NOT_MEMBER),
        Removal::NoSuchCommunity => Err(NO_SUCH_COMMUNITY),
    }
}

/// Leaves a community (its channels and their calls). The owner hands it over first.
#[utoipa::path(post, path = "/api/communities/{id}/leave", tag = "communities", security(("bearer" = [])),
    params(("id" = CommunityId, Path, description = "community id")),
    responses(
        (status = 204, description = "left"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "you are not a member"),
        (status = 404, body = ErrorBody, description = "no such community, or a private one you are not in"),
        (status = 409, body = ErrorBody, description = "you are the owner"),
    ))]
async fn leave_community(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<CommunityId>,
) -> Result<StatusCode, ApiError> {
    leave(&state, id, auth.user_id).await
}

/// Creates an invite link (admins). The body may be omitted.
#[utoipa::path(post, path = "/api/communities/{id}/invites", tag = "communities", request_body(content = Option<CreateInviteRequest>), security(("bearer" = [])),
    params(("id" = CommunityId, Path, description = "community id")),
    responses(
        (status = 201, body = NewCommunityInvite),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "not a member, or not an admin"),
        (status = 404, body = ErrorBody, description = "no such community, or a private one you are not in"),
        (status = 422, body = ErrorBody),
    ))]
async fn create_invite(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<CommunityId>,
    body: Option<JsonBody<Option<CreateInviteRequest>>>,
) -> Result<(StatusCode, Json<NewCommunityInvite>), ApiError> {
    let req = body.and_then(|JsonBody(r)| r).unwrap_or_default();
    let ttl = super::rooms::invite_ttl(&req)?;
    admin(&state, id, auth.user_id).await?;
    let token = random_token();
    let expires_at = db::now() + i64::try_from(ttl).unwrap_or(0);
    let invite = db::communities::create_invite(
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
        Json(NewCommunityInvite { token, invite }),
    ))
}

/// The invite links that can still be used (admins), newest first; tokens are not shown.
#[utoipa::path(get, path = "/api/communities/{id}/invites", tag = "communities", security(("bearer" = [])),
    params(("id" = CommunityId, Path, description = "community id")),
    responses(
        (status = 200, body = Vec<CommunityInvite>),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "not a member, or not an admin"),
        (status = 404, body = ErrorBody, description = "no such community, or a private one you are not in"),
    ))]
async fn list_invites(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<CommunityId>,
) -> Result<Json<Vec<CommunityInvite>>, ApiError> {
    admin(&state, id, auth.user_id).await?;
    Ok(Json(db::communities::invites(&state.pool, id).await?))
}

/// Revokes an invite link (admins).
#[utoipa::path(delete, path = "/api/communities/{id}/invites/{invite_id}", tag = "communities", security(("bearer" = [])),
    params(
        ("id" = CommunityId, Path, description = "community id"),
        ("invite_id" = CommunityInviteId, Path, description = "invite id"),
    ),
    responses(
        (status = 204, description = "revoked"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "not a member, or not an admin"),
        (status = 404, body = ErrorBody, description = "no such community (or a private one you are not in), or no such invite"),
    ))]
async fn revoke_invite(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, invite)): Path<(CommunityId, CommunityInviteId)>,
) -> Result<StatusCode, ApiError> {
    admin(&state, id, auth.user_id).await?;
    if db::communities::revoke_invite(&state.pool, id, invite).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("no such invite"))
    }
}

/// Joins the community an invite link leads to (public or private). A use is counted
/// only when you join.
#[utoipa::path(post, path = "/api/communities/join/{token}", tag = "communities", security(("bearer" = [])),
    params(("token" = String, Path, description = "invite token")),
    responses(
        (status = 200, body = CommunitySummary, description = "joined (or already a member)"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "you are banned from it"),
        (status = 404, body = ErrorBody, description = "unknown (or revoked) invite"),
        (status = 409, body = ErrorBody, description = "the community is full"),
        (status = 410, body = ErrorBody, description = "the invite expired or was used up"),
    ))]
async fn accept_invite(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(token): Path<String>,
) -> Result<Json<CommunitySummary>, ApiError> {
    let hash = hash_token(&token);
    let limit = state.config.max_community_members;
    let id = match db::communities::accept_invite(&state.pool, &hash, auth.user_id, limit).await? {
        InviteJoin::Joined { community, joined } => {
            if joined {
                announce(
                    "accept invite",
                    announce_joined(&state, community, auth.user_id),
                )
                .await;
            }
            community
        }
        InviteJoin::Unknown => return Err(ApiError::NotFound("no such invite")),
        InviteJoin::ExpiredOrUsedUp => {
            return Err(ApiError::Gone("this invite has expired or was used up"));
        }
        InviteJoin::Banned => return Err(BANNED),
        InviteJoin::Full => return Err(FULL),
    };
    Ok(Json(summary_for(&state, id, auth.user_id).await?))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
struct MembersQuery {
    /// 1-200; 50 when absent.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// `next_cursor` of the page before.
    #[param(max_length = 100)]
    cursor: Option<String>,
}

/// The members with their roles and presence (members only): owner, admins, then by
/// join time, a page at a time.
#[utoipa::path(get, path = "/api/communities/{id}/members", tag = "communities", security(("bearer" = [])),
    params(("id" = CommunityId, Path, description = "community id"), MembersQuery),
    responses(
        (status = 200, body = CommunityMemberPage),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "you are not a member"),
        (status = 404, body = ErrorBody, description = "no such community, or a private one you are not in"),
        (status = 422, body = ErrorBody, description = "a limit out of range, or a cursor that is not one"),
    ))]
async fn list_members(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<CommunityId>,
    Query(q): Query<MembersQuery>,
) -> Result<Json<CommunityMemberPage>, ApiError> {
    let mut errors = FieldErrors::new();
    let limit = page_limit(q.limit, &mut errors);
    let after = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(raw) => match parse_cursor(raw, 2) {
            Some((nums, user)) => Some((nums[0], nums[1], user)),
            None => {
                errors.insert("cursor".into(), "is not a cursor this server made".into());
                None
            }
        },
    };
    checked(errors)?;
    membership(&state, id, auth.user_id).await?;
    let mut rows = db::communities::members(&state.pool, id, after, limit).await?;
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let hidden = db::contacts::block_relations(&state.pool, auth.user_id).await?;
    let next_cursor = more
        .then(|| {
            rows.last()
                .map(|r| cursor_of(&[r.rank, r.joined_at], &r.user.id))
        })
        .flatten();
    Ok(Json(CommunityMemberPage {
        members: rows
            .iter()
            .map(|r| member_view(&state, r, &hidden))
            .collect::<anyhow::Result<_>>()?,
        next_cursor,
    }))
}

/// Changes a member's role (the owner): `admin` or `member`, or `owner` to hand the
/// community over (you become an admin).
#[utoipa::path(patch, path = "/api/communities/{id}/members/{user_id}", tag = "communities", request_body = UpdateCommunityMemberRequest, security(("bearer" = [])),
    params(
        ("id" = CommunityId, Path, description = "community id"),
        ("user_id" = UserId, Path, description = "the member"),
    ),
    responses(
        (status = 200, body = CommunityMember),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "not a member, or not the owner"),
        (status = 404, body = ErrorBody, description = "no such community (or a private one you are not in), or they are not a member"),
        (status = 409, body = ErrorBody, description = "your own role"),
    ))]
async fn update_member(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, user)): Path<(CommunityId, UserId)>,
    JsonBody(req): JsonBody<UpdateCommunityMemberRequest>,
) -> Result<Json<CommunityMember>, ApiError> {
    let (_, role) = membership(&state, id, auth.user_id).await?;
    if role != RoomRole::Owner {
        return Err(ApiError::Forbidden("only the owner can change roles"));
    }
    if user == auth.user_id {
        return Err(ApiError::Conflict {
            message: "you own this community: hand it over to another member instead",
            fields: None,
        });
    }
    match db::communities::set_role(&state.pool, id, auth.user_id, user, req.role).await? {
        RoleChange::Done => {
            announce(
                "change role",
                tell_members(
                    &state,
                    id,
                    &ServerMsg::CommunityRoleChanged {
                        community_id: id,
                        user_id: user,
                        role: req.role,
                    },
                ),
            )
            .await;
        }
        RoleChange::HandedOver => {
            announce("hand over", async {
                for (who, role) in [(user, RoomRole::Owner), (auth.user_id, RoomRole::Admin)] {
                    tell_members(
                        &state,
                        id,
                        &ServerMsg::CommunityRoleChanged {
                            community_id: id,
                            user_id: who,
                            role,
                        },
                    )
                    .await?;
                }
                announce_updated(&state, id).await
            })
            .await;
        }
        RoleChange::NotMember => return Err(NO_SUCH_MEMBER),
        RoleChange::NotAllowed => {
            return Err(ApiError::Forbidden("only the owner can change roles"));
        }
        RoleChange::NoSuchCommunity => return Err(NO_SUCH_COMMUNITY),
    }
    let row = db::communities::member(&state.pool, id, user)
        .await?
        .ok_or(NO_SUCH_MEMBER)?;
    let hidden = db::contacts::block_relations(&state.pool, auth.user_id).await?;
    Ok(Json(member_view(&state, &row, &hidden)?))
}

/// Removes a member (admins remove members, the owner also admins; nobody the owner).
/// They can join again unless banned. Removing yourself is leaving.
#[utoipa::path(delete, path = "/api/communities/{id}/members/{user_id}", tag = "communities", security(("bearer" = [])),
    params(
        ("id" = CommunityId, Path, description = "community id"),
        ("user_id" = UserId, Path, description = "the member to remove"),
    ),
    responses(
        (status = 204, description = "removed"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "not a member, or your role does not allow it"),
        (status = 404, body = ErrorBody, description = "no such community (or a private one you are not in), or they are not a member"),
        (status = 409, body = ErrorBody, description = "yourself, as the owner"),
    ))]
async fn kick_member(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, user)): Path<(CommunityId, UserId)>,
) -> Result<StatusCode, ApiError> {
    if user == auth.user_id {
        return leave(&state, id, user).await;
    }
    let (_, role) = membership(&state, id, auth.user_id).await?;
    if !role.is_admin() {
        return Err(NOT_ADMIN);
    }
    match db::communities::kick(&state.pool, id, auth.user_id, user).await? {
        Removal::Done { channels, .. } => {
            announce(
                "kick",
                announce_removed(&state, id, user, &channels, CommunityExit::Kicked),
            )
            .await;
            Ok(StatusCode::NO_CONTENT)
        }
        Removal::NotMember => Err(NO_SUCH_MEMBER),
        Removal::NotAllowed | Removal::Owner => Err(ApiError::Forbidden(
            "only the owner can remove an admin, and the owner cannot be removed",
        )),
        Removal::NoSuchCommunity => Err(NO_SUCH_COMMUNITY),
    }
}

/// The bans (admins), newest first.
#[utoipa::path(get, path = "/api/communities/{id}/bans", tag = "communities", security(("bearer" = [])),
    params(("id" = CommunityId, Path, description = "community id")),
    responses(
        (status = 200, body = Vec<CommunityBan>),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "not a member, or not an admin"),
        (status = 404, body = ErrorBody, description = "no such community, or a private one you are not in"),
    ))]
async fn list_bans(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<CommunityId>,
) -> Result<Json<Vec<CommunityBan>>, ApiError> {
    admin(&state, id, auth.user_id).await?;
    Ok(Json(db::communities::bans(&state.pool, id).await?))
}

/// Bans a user (admins; only the owner bans an admin, nobody the owner). A member is
/// removed at once, out of the channels and their calls; a banned user cannot join again,
/// by id or by link, until the ban is lifted. Banning again changes nothing.
#[utoipa::path(post, path = "/api/communities/{id}/bans", tag = "communities", request_body = BanRequest, security(("bearer" = [])),
    params(("id" = CommunityId, Path, description = "community id")),
    responses(
        (status = 201, body = CommunityBan),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "not a member, or your role does not allow it"),
        (status = 404, body = ErrorBody, description = "no such community (or a private one you are not in), or no such user"),
        (status = 409, body = ErrorBody, description = "yourself"),
        (status = 422, body = ErrorBody),
    ))]
async fn ban_user(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<CommunityId>,
    JsonBody(req): JsonBody<BanRequest>,
) -> Result<(StatusCode, Json<CommunityBan>), ApiError> {
    let mut errors = FieldErrors::new();
    let reason =
        optional_text(req.reason.as_deref(), "reason", BAN_REASON_MAX, &mut errors).flatten();
    checked(errors)?;
    let (_, role) = membership(&state, id, auth.user_id).await?;
    if !role.is_admin() {
        return Err(NOT_ADMIN);
    }
    if req.user_id == auth.user_id {
        return Err(ApiError::Conflict {
            message: "you cannot ban yourself",
            fields: None,
        });
    }
    if db::users::by_id(&state.pool, req.user_id).await?.is_none() {
        return Err(ApiError::NotFound("no such user"));
    }
    match db::communities::ban(
        &state.pool,
        id,
        auth.user_id,
        req.user_id,
        reason.as_deref(),
    )
    .await?
    {
        Removal::Done {
            channels,
            was_member,
        } => {
            if was_member {
                announce(
                    "ban",
                    announce_removed(&state, id, req.user_id, &channels, CommunityExit::Banned),
                )
                .await;
            }
        }
        Removal::NotAllowed | Removal::Owner | Removal::NotMember => {
            return Err(ApiError::Forbidden(
                "only the owner can ban an admin, and the owner cannot be banned",
            ));
        }
        Removal::NoSuchCommunity => return Err(NO_SUCH_COMMUNITY),
    }
    let ban = db::communities::ban_of(&state.pool, id, req.user_id)
        .await?
        .ok_or(ApiError::NotFound("no such ban"))?;
    Ok((StatusCode::CREATED, Json(ban)))
}

/// Lifts a ban (admins).
#[utoipa::path(delete, path = "/api/communities/{id}/bans/{user_id}", tag = "communities", security(("bearer" = [])),
    params(
        ("id" = CommunityId, Path, description = "community id"),
        ("user_id" = UserId, Path, description = "the banned user"),
    ),
    responses(
        (status = 204, description = "lifted"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "not a member, or not an admin"),
        (status = 404, body = ErrorBody, description = "no such community (or a private one you are not in), or no such ban"),
    ))]
async fn unban_user(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, user)): Path<(CommunityId, UserId)>,
) -> Result<StatusCode, ApiError> {
    admin(&state, id, auth.user_id).await?;
    match db::communities::unban(&state.pool, id, auth.user_id, user).await? {
        Some(true) => Ok(StatusCode::NO_CONTENT),
        Some(false) => Err(ApiError::NotFound("no such ban")),
        None => Err(NOT_ADMIN),
    }
}

/// The channels (members only), in order, with your unread and mention counts in each.
#[utoipa::path(get, path = "/api/communities/{id}/channels", tag = "communities", security(("bearer" = [])),
    params(("id" = CommunityId, Path, description = "community id")),
    responses(
        (status = 200, body = Vec<ChannelSummary>),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "you are not a member"),
        (status = 404, body = ErrorBody, description = "no such community, or a private one you are not in"),
    ))]
async fn list_channels(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<CommunityId>,
) -> Result<Json<Vec<ChannelSummary>>, ApiError> {
    membership(&state, id, auth.user_id).await?;
    Ok(Json(my_channels(&state, id, auth.user_id).await?))
}

async fn channel_of(state: &AppState, id: CommunityId, room: RoomId) -> Result<Channel, ApiError> {
    let row: ChannelRow = db::communities::channel(&state.pool, id, room)
        .await?
        .ok_or(NO_SUCH_CHANNEL)?;
    Ok(row.channel()?)
}

fn channel_change<T>(change: ChannelChange<T>) -> Result<T, ApiError> {
    match change {
        ChannelChange::Done(t) => Ok(t),
        ChannelChange::NotAllowed => Err(NOT_ADMIN),
        ChannelChange::NoSuchChannel => Err(NO_SUCH_CHANNEL),
        ChannelChange::TooMany => Err(ApiError::Conflict {
            message: "the community has as many channels as it may",
            fields: None,
        }),
        ChannelChange::NotEveryChannel => Err(ApiError::field(
            "channels",
            "must name every channel of the community exactly once",
        )),
    }
}

/// Creates a channel at the end of the list (admins); every member is in it.
#[utoipa::path(post, path = "/api/communities/{id}/channels", tag = "communities", request_body = CreateChannelRequest, security(("bearer" = [])),
    params(("id" = CommunityId, Path, description = "community id")),
    responses(
        (status = 201, body = Channel),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "not a member, or not an admin"),
        (status = 404, body = ErrorBody, description = "no such community, or a private one you are not in"),
        (status = 409, body = ErrorBody, description = "the community has 200 channels"),
        (status = 422, body = ErrorBody),
    ))]
async fn create_channel(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<CommunityId>,
    JsonBody(req): JsonBody<CreateChannelRequest>,
) -> Result<(StatusCode, Json<Channel>), ApiError> {
    let mut errors = FieldErrors::new();
    let name = name_field(&req.name, "name", CHANNEL_NAME_MAX, &mut errors);
    let topic = optional_text(
        req.topic.as_deref(),
        "topic",
        CHANNEL_TOPIC_MAX,
        &mut errors,
    )
    .flatten();
    let category = optional_text(
        req.category.as_deref(),
        "category",
        CATEGORY_NAME_MAX,
        &mut errors,
    )
    .flatten();
    let max = participants_field(req.max_participants, &mut errors);
    checked(errors)?;
    let name = name.ok_or_else(|| ApiError::field("name", "is required"))?;
    admin(&state, id, auth.user_id).await?;
    let new = NewChannel {
        name,
        topic,
        category,
        announcement: req.announcement.unwrap_or(false),
        max_participants: max.unwrap_or(ROOM_DEFAULT_PARTICIPANTS),
    };
    let room = channel_change(
        db::communities::create_channel(&state.pool, id, auth.user_id, &new).await?,
    )?;
    let channel = channel_of(&state, id, room).await?;
    announce(
        "create channel",
        tell_members(
            &state,
            id,
            &ServerMsg::ChannelCreated {
                channel: channel.clone(),
            },
        ),
    )
    .await;
    Ok((StatusCode::CREATED, Json(channel)))
}

/// Changes a channel (admins). Absent fields stay; an empty topic or category clears it.
#[utoipa::path(patch, path = "/api/communities/{id}/channels/{channel_id}", tag = "communities", request_body = UpdateChannelRequest, security(("bearer" = [])),
    params(
        ("id" = CommunityId, Path, description = "community id"),
        ("channel_id" = RoomId, Path, description = "channel id"),
    ),
    responses(
        (status = 200, body = Channel),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "not a member, or not an admin"),
        (status = 404, body = ErrorBody, description = "no such community (or a private one you are not in), or no such channel in it"),
        (status = 422, body = ErrorBody),
    ))]
async fn update_channel(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, room)): Path<(CommunityId, RoomId)>,
    JsonBody(req): JsonBody<UpdateChannelRequest>,
) -> Result<Json<Channel>, ApiError> {
    let mut errors = FieldErrors::new();
    let change = ChannelUpdate {
        name: req
            .name
            .as_deref()
            .and_then(|n| name_field(n, "name", CHANNEL_NAME_MAX, &mut errors)),
        topic: optional_text(
            req.topic.as_deref(),
            "topic",
            CHANNEL_TOPIC_MAX,
            &mut errors,
        ),
        category: optional_text(
            req.category.as_deref(),
            "category",
            CATEGORY_NAME_MAX,
            &mut errors,
        ),
        announcement: req.announcement,
        max_participants: participants_field(req.max_participants, &mut errors),
    };
    checked(errors)?;
    admin(&state, id, auth.user_id).await?;
    channel_change(
        db::communities::update_channel(&state.pool, id, auth.user_id, room, &change).await?,
    )?;
    let channel = channel_of(&state, id, room).await?;
    announce(
        "update channel",
        tell_members(
            &state,
            id,
            &ServerMsg::ChannelUpdated {
                channel: channel.clone(),
            },
        ),
    )
    .await;
    Ok(Json(channel))
}

/// Deletes a channel with its timeline, ending its call (admins).
#[utoipa::path(delete, path = "/api/communities/{id}/channels/{channel_id}", tag = "communities", security(("bearer" = [])),
    params(
        ("id" = CommunityId, Path, description = "community id"),
        ("channel_id" = RoomId, Path, description = "channel id"),
    ),
    responses(
        (status = 204, description = "deleted"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "not a member, or not an admin"),
        (status = 404, body = ErrorBody, description = "no such community (or a private one you are not in), or no such channel in it"),
    ))]
async fn delete_channel(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, room)): Path<(CommunityId, RoomId)>,
) -> Result<StatusCode, ApiError> {
    admin(&state, id, auth.user_id).await?;
    channel_change(db::communities::delete_channel(&state.pool, id, auth.user_id, room).await?)?;
    state.hub.end_call(room);
    announce(
        "delete channel",
        tell_members(
            &state,
            id,
            &ServerMsg::ChannelDeleted {
                community_id: id,
                channel_id: room,
            },
        ),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Puts the channels in a new order, each under its category (admins). The body names
/// every channel once; positions become 0, 1, 2 ... in that order.
#[utoipa::path(put, path = "/api/communities/{id}/channels/order", tag = "communities", request_body = ReorderChannelsRequest, security(("bearer" = [])),
    params(("id" = CommunityId, Path, description = "community id")),
    responses(
        (status = 200, body = Vec<Channel>),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "not a member, or not an admin"),
        (status = 404, body = ErrorBody, description = "no such community, or a private one you are not in"),
        (status = 422, body = ErrorBody, description = "not every channel exactly once, or a bad category"),
    ))]
async fn reorder_channels(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<CommunityId>,
    JsonBody(req): JsonBody<ReorderChannelsRequest>,
) -> Result<Json<Vec<Channel>>, ApiError> {
    let mut errors = FieldErrors::new();
    let order: Vec<(RoomId, Option<String>)> = req
        .channels
        .iter()
        .map(|p| {
            let category = p
                .category
                .as_deref()
                .and_then(|c| text_field(c, "category", CATEGORY_NAME_MAX, &mut errors));
            (p.channel_id, category)
        })
        .collect();
    checked(errors)?;
    admin(&state, id, auth.user_id).await?;
    channel_change(
        db::communities::reorder_channels(&state.pool, id, auth.user_id, &order).await?,
    )?;
    let channels: Vec<Channel> = db::communities::channels(&state.pool, id)
        .await?
        .iter()
        .map(ChannelRow::channel)
        .collect::<anyhow::Result<_>>()?;
    announce(
        "reorder channels",
        tell_members(
            &state,
            id,
            &ServerMsg::ChannelsReordered {
                community_id: id,
                channels: channels.clone(),
            },
        ),
    )
    .await;
    Ok(Json(channels))
}
