//! The community commands: each hands over to the messenger (`messenger/communities.rs`).

use super::Result;
use crate::AppState;
use crate::messenger::communities::{
    BanView, ChannelForm, ChannelPlaceForm, ChannelView, CommunityInviteView, CommunityView,
    DiscoverPage, MemberPage, NewInviteView,
};
use shared::api::RoomRole;
use shared::communities::CommunityVisibility;
use shared::{CommunityId, CommunityInviteId, RoomId, UserId};
use tauri::State;

#[tauri::command]
#[specta::specta]
pub async fn list_communities(state: State<'_, AppState>) -> Result<Vec<CommunityView>> {
    Ok(state.session.messenger().await?.communities())
}

/// Public communities matching `q` (all of them without it), a page at a time.
#[tauri::command]
#[specta::specta]
pub async fn discover_communities(
    state: State<'_, AppState>,
    q: Option<String>,
    cursor: Option<String>,
) -> Result<DiscoverPage> {
    state.session.messenger().await?.discover(q, cursor).await
}

#[tauri::command]
#[specta::specta]
pub async fn create_community(
    state: State<'_, AppState>,
    name: String,
    description: Option<String>,
    visibility: CommunityVisibility,
) -> Result<CommunityView> {
    let m = state.session.messenger().await?;
    m.create_community(&name, description, visibility).await
}

#[tauri::command]
#[specta::specta]
pub async fn update_community(
    state: State<'_, AppState>,
    community_id: CommunityId,
    name: Option<String>,
    description: Option<String>,
    visibility: Option<CommunityVisibility>,
) -> Result<CommunityView> {
    let m = state.session.messenger().await?;
    m.update_community(community_id, name, description, visibility)
        .await
}

#[tauri::command]
#[specta::specta]
pub async fn delete_community(state: State<'_, AppState>, community_id: CommunityId) -> Result<()> {
    let m = state.session.messenger().await?;
    m.delete_community(community_id).await
}

#[tauri::command]
#[specta::specta]
pub async fn join_community(
    state: State<'_, AppState>,
    community_id: CommunityId,
) -> Result<CommunityView> {
    let m = state.session.messenger().await?;
    m.join_community(community_id).await
}

/// `invite`: the invite's code, or a link ending in it.
#[tauri::command]
#[specta::specta]
pub async fn join_community_invite(
    state: State<'_, AppState>,
    invite: String,
) -> Result<CommunityView> {
    let m = state.session.messenger().await?;
    m.join_community_invite(&invite).await
}

#[tauri::command]
#[specta::specta]
pub async fn leave_community(state: State<'_, AppState>, community_id: CommunityId) -> Result<()> {
    let m = state.session.messenger().await?;
    m.leave_community(community_id).await
}

#[tauri::command]
#[specta::specta]
pub async fn community_members(
    state: State<'_, AppState>,
    community_id: CommunityId,
    cursor: Option<String>,
) -> Result<MemberPage> {
    let m = state.session.messenger().await?;
    m.community_members(community_id, cursor).await
}

#[tauri::command]
#[specta::specta]
pub async fn set_community_role(
    state: State<'_, AppState>,
    community_id: CommunityId,
    user_id: UserId,
    role: RoomRole,
) -> Result<()> {
    let m = state.session.messenger().await?;
    m.set_community_role(community_id, user_id, role).await
}

#[tauri::command]
#[specta::specta]
pub async fn kick_community_member(
    state: State<'_, AppState>,
    community_id: CommunityId,
    user_id: UserId,
) -> Result<()> {
    let m = state.session.messenger().await?;
    m.kick_community_member(community_id, user_id).await
}

#[tauri::command]
#[specta::specta]
pub async fn community_bans(
    state: State<'_, AppState>,
    community_id: CommunityId,
) -> Result<Vec<BanView>> {
    let m = state.session.messenger().await?;
    m.community_bans(community_id).await
}

#[tauri::command]
#[specta::specta]
pub async fn ban_community_member(
    state: State<'_, AppState>,
    community_id: CommunityId,
    user_id: UserId,
    reason: Option<String>,
) -> Result<BanView> {
    let m = state.session.messenger().await?;
    m.ban_community_member(community_id, user_id, reason).await
}

#[tauri::command]
#[specta::specta]
pub async fn unban_community_member(
    state: State<'_, AppState>,
    community_id: CommunityId,
    user_id: UserId,
) -> Result<()> {
    let m = state.session.messenger().await?;
    m.unban_community_member(community_id, user_id).await
}

#[tauri::command]
#[specta::specta]
pub async fn community_invites(
    state: State<'_, AppState>,
    community_id: CommunityId,
) -> Result<Vec<CommunityInviteView>> {
    let m = state.session.messenger().await?;
    m.community_invites(community_id).await
}

#[tauri::command]
#[specta::specta]
pub async fn create_community_invite(
    state: State<'_, AppState>,
    community_id: CommunityId,
) -> Result<NewInviteView> {
    let m = state.session.messenger().await?;
    m.create_community_invite(community_id).await
}

#[tauri::command]
#[specta::specta]
pub async fn revoke_community_invite(
    state: State<'_, AppState>,
    community_id: CommunityId,
    invite_id: CommunityInviteId,
) -> Result<()> {
    let m = state.session.messenger().await?;
    m.revoke_community_invite(community_id, invite_id).await
}

#[tauri::command]
#[specta::specta]
pub async fn create_channel(
    state: State<'_, AppState>,
    community_id: CommunityId,
    form: ChannelForm,
) -> Result<ChannelView> {
    let m = state.session.messenger().await?;
    m.create_channel(community_id, form).await
}

#[tauri::command]
#[specta::specta]
pub async fn update_channel(
    state: State<'_, AppState>,
    community_id: CommunityId,
    channel_id: RoomId,
    form: ChannelForm,
) -> Result<ChannelView> {
    let m = state.session.messenger().await?;
    m.update_channel(community_id, channel_id, form).await
}

#[tauri::command]
#[specta::specta]
pub async fn delete_channel(
    state: State<'_, AppState>,
    community_id: CommunityId,
    channel_id: RoomId,
) -> Result<()> {
    let m = state.session.messenger().await?;
    m.delete_channel(community_id, channel_id).await
}

/// Every channel once, in the new order, each with its category.
#[tauri::command]
#[specta::specta]
pub async fn reorder_channels(
    state: State<'_, AppState>,
    community_id: CommunityId,
    order: Vec<ChannelPlaceForm>,
) -> Result<Vec<ChannelView>> {
    let m = state.session.messenger().await?;
    m.reorder_channels(community_id, order).await
}
