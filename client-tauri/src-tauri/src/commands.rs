//! The commands the window may call (each also needs its `allow-*` permission in
//! build.rs and capabilities/main.json). Each one only hands over to the session or the
//! media state.

use crate::error::{AppError, DeviceKind};
use crate::frames::{self, FrameBytes};
use crate::screens::ScreenView;
use crate::session::parse_room_id;
use crate::views::{
    AppInfo, AudioChoice, BlockedView, CallSettings, CallStatusView, ConnectionState, ContactsView,
    ConversationView, Devices, InviteLink, MeView, MemberView, MessageView, PageAnchor, RingView,
    RoomView, ServerPick, SignUpForm, TimelinePage, UserView, VideoChoice, VoiceProcessingChoice,
};
use crate::{AppState, devices, media};
use confab_core::call::ScreenTarget;
use shared::signal::OwnPresence;
use shared::{ContactRequestId, MessageId, RoomId, UserId};
use tauri::{AppHandle, State};

type Result<T> = std::result::Result<T, AppError>;

pub mod auth;
pub mod call;
pub mod communities;
pub mod drafts;
pub mod files;
pub mod search;

#[tauri::command]
#[specta::specta]
pub fn app_info(state: State<'_, AppState>) -> AppInfo {
    state.session.app_info()
}

#[tauri::command]
#[specta::specta]
pub async fn set_server(state: State<'_, AppState>, url: String) -> Result<ServerPick> {
    state.session.set_server(&url).await
}

#[tauri::command]
#[specta::specta]
pub async fn restore_session(state: State<'_, AppState>) -> Result<Option<MeView>> {
    state.session.restore().await
}

#[tauri::command]
#[specta::specta]
pub async fn sign_up(state: State<'_, AppState>, form: SignUpForm) -> Result<MeView> {
    state.session.sign_up(form).await
}

#[tauri::command]
#[specta::specta]
pub async fn log_in(state: State<'_, AppState>, login: String, password: String) -> Result<MeView> {
    state.session.log_in(&login, &password).await
}

#[tauri::command]
#[specta::specta]
pub async fn request_password_reset(state: State<'_, AppState>, email: String) -> Result<()> {
    state.session.request_password_reset(&email).await
}

/// `code`: the code from the reset mail, or the whole link.
#[tauri::command]
#[specta::specta]
pub async fn confirm_password_reset(
    state: State<'_, AppState>,
    code: String,
    password: String,
    confirm_password: String,
) -> Result<()> {
    state
        .session
        .confirm_password_reset(&code, &password, &confirm_password)
        .await
}

#[tauri::command]
#[specta::specta]
pub async fn log_out(state: State<'_, AppState>) -> Result<()> {
    state.media.leave_call().await;
    state.session.log_out().await
}

#[tauri::command]
#[specta::specta]
pub async fn list_rooms(state: State<'_, AppState>) -> Result<Vec<RoomView>> {
    state.session.list_rooms().await
}

#[tauri::command]
#[specta::specta]
pub async fn create_room(
    state: State<'_, AppState>,
    title: String,
    max_participants: Option<u32>,
) -> Result<RoomView> {
    state.session.create_room(&title, max_participants).await
}

#[tauri::command]
#[specta::specta]
pub async fn join_room(state: State<'_, AppState>, target: String) -> Result<RoomView> {
    state.session.join_room(&target).await
}

#[tauri::command]
#[specta::specta]
pub async fn leave_room(state: State<'_, AppState>, room_id: String) -> Result<()> {
    state.session.leave_room(&room_id).await
}

#[tauri::command]
#[specta::specta]
pub async fn create_invite(state: State<'_, AppState>, room_id: String) -> Result<InviteLink> {
    state.session.create_invite(&room_id).await
}

#[tauri::command]
#[specta::specta]
pub async fn list_devices() -> Result<Devices> {
    tokio::task::spawn_blocking(devices::list)
        .await
        .map_err(|e| AppError::device(DeviceKind::Other, e))
}

#[tauri::command]
#[specta::specta]
pub async fn start_preview(
    app: AppHandle,
    state: State<'_, AppState>,
    video: VideoChoice,
    audio: AudioChoice,
) -> Result<()> {
    state.media.start_preview(app, video, audio).await
}

#[tauri::command]
#[specta::specta]
pub async fn stop_preview(state: State<'_, AppState>) -> Result<()> {
    state.media.stop_preview().await;
    Ok(())
}

/// The next frame of `source` ("local" or a participant id) newer than `after`, scaled
/// to fit `max_width` x `max_height` device pixels (0: full size); empty when none came
/// within a second.
#[tauri::command]
#[specta::specta]
pub async fn next_frame(
    state: State<'_, AppState>,
    source: String,
    after: u32,
    max_width: u32,
    max_height: u32,
) -> Result<FrameBytes> {
    state.media.video().rgba_pulled(&source);
    let frame = state
        .media
        .board()
        .next(&source, u64::from(after), frames::WAIT)
        .await;
    Ok(frame.map_or(FrameBytes(Vec::new()), |f| {
        frames::encode(&f, max_width, max_height)
    }))
}

#[tauri::command]
#[specta::specta]
pub async fn join_call(
    app: AppHandle,
    state: State<'_, AppState>,
    room_id: String,
    settings: CallSettings,
) -> Result<()> {
    let messenger = state.session.messenger().await?;
    state
        .media
        .join_call(
            app,
            messenger.connection(),
            parse_room_id(&room_id)?,
            settings,
        )
        .await
}

#[tauri::command]
#[specta::specta]
pub async fn leave_call(state: State<'_, AppState>) -> Result<()> {
    state.media.leave_call().await;
    Ok(())
}

#[tauri::command]
#[specta::specta]
pub async fn set_muted(state: State<'_, AppState>, muted: bool) -> Result<()> {
    state
        .media
        .with_call(|c| c.set_microphone_muted(muted))
        .await
}

#[tauri::command]
#[specta::specta]
pub async fn set_camera_off(state: State<'_, AppState>, off: bool) -> Result<()> {
    state.media.with_call(|c| c.set_camera_off(off)).await
}

#[tauri::command]
#[specta::specta]
pub async fn switch_video(state: State<'_, AppState>, video: VideoChoice) -> Result<()> {
    let source = video
        .source()
        .ok_or_else(|| AppError::field("video", "Turn the camera off instead."))?;
    state.media.with_call(|c| c.switch_video(source)).await
}

/// The monitors and windows that can be shared, with thumbnails.
#[tauri::command]
#[specta::specta]
pub async fn list_screens() -> Result<Vec<ScreenView>> {
    media::list_screens().await
}

/// Shares a monitor or window (`monitor:<id>` / `window:<id>` from `list_screens`) in
/// the running call; a `localScreen` call event says whether it started.
#[tauri::command]
#[specta::specta]
pub async fn share_screen(state: State<'_, AppState>, source: String) -> Result<()> {
    let target = source
        .parse::<ScreenTarget>()
        .map_err(|e| AppError::field("source", e))?;
    state.media.with_call(|c| c.share_screen(target)).await
}

#[tauri::command]
#[specta::specta]
pub async fn stop_screen_share(state: State<'_, AppState>) -> Result<()> {
    state.media.with_call(|c| c.stop_screen_share()).await
}

/// Switches echo cancellation, noise suppression and gain control in the running call,
/// from the microphone's next frame.
#[tauri::command]
#[specta::specta]
pub async fn set_voice_processing(
    state: State<'_, AppState>,
    settings: VoiceProcessingChoice,
) -> Result<()> {
    state
        .media
        .with_call(|c| c.set_voice_processing(settings.into()))
        .await
}

#[tauri::command]
#[specta::specta]
pub async fn switch_audio(state: State<'_, AppState>, audio: AudioChoice) -> Result<()> {
    let source = audio
        .source()
        .ok_or_else(|| AppError::field("audio", "Mute instead."))?;
    state.media.with_call(|c| c.switch_audio(source)).await
}

#[tauri::command]
#[specta::specta]
pub async fn switch_speaker(state: State<'_, AppState>, speaker: Option<String>) -> Result<()> {
    state.media.with_call(|c| c.switch_speaker(speaker)).await
}

// --- the messenger (each one hands over to the session's messenger) ----------------------

#[tauri::command]
#[specta::specta]
pub async fn list_conversations(state: State<'_, AppState>) -> Result<Vec<ConversationView>> {
    Ok(state.session.messenger().await?.conversations())
}

/// The newest page of a room; also the room the user now looks at (no notifications
/// for it while the window has focus).
#[tauri::command]
#[specta::specta]
pub async fn open_conversation(
    state: State<'_, AppState>,
    room_id: RoomId,
) -> Result<TimelinePage> {
    state.attention.set_open_room(Some(room_id));
    state.session.messenger().await?.open_room(room_id).await
}

#[tauri::command]
#[specta::specta]
pub fn close_conversation(state: State<'_, AppState>) {
    state.attention.set_open_room(None);
}

#[tauri::command]
#[specta::specta]
pub async fn load_messages(
    state: State<'_, AppState>,
    room_id: RoomId,
    anchor: PageAnchor,
    limit: Option<u32>,
) -> Result<TimelinePage> {
    state
        .session
        .messenger()
        .await?
        .load(room_id, anchor, limit)
        .await
}

#[tauri::command]
#[specta::specta]
pub async fn send_message(
    state: State<'_, AppState>,
    room_id: RoomId,
    body: String,
    reply_to: Option<MessageId>,
    attachments: Vec<shared::UploadId>,
) -> Result<MessageView> {
    state
        .session
        .messenger()
        .await?
        .send(room_id, &body, reply_to, attachments)
        .await
}

#[tauri::command]
#[specta::specta]
pub async fn retry_message(state: State<'_, AppState>, client_id: String) -> Result<MessageView> {
    state.session.messenger().await?.retry(&client_id).await
}

#[tauri::command]
#[specta::specta]
pub async fn discard_message(state: State<'_, AppState>, client_id: String) -> Result<()> {
    state.session.messenger().await?.discard(&client_id)
}

#[tauri::command]
#[specta::specta]
pub async fn edit_message(
    state: State<'_, AppState>,
    room_id: RoomId,
    message_id: MessageId,
    body: String,
) -> Result<MessageView> {
    state
        .session
        .messenger()
        .await?
        .edit(room_id, message_id, &body)
        .await
}

#[tauri::command]
#[specta::specta]
pub async fn delete_message(
    state: State<'_, AppState>,
    room_id: RoomId,
    message_id: MessageId,
) -> Result<MessageView> {
    state
        .session
        .messenger()
        .await?
        .delete(room_id, message_id)
        .await
}

#[tauri::command]
#[specta::specta]
pub async fn react(
    state: State<'_, AppState>,
    room_id: RoomId,
    message_id: MessageId,
    emoji: String,
) -> Result<MessageView> {
    let messenger = state.session.messenger().await?;
    messenger.react(room_id, message_id, &emoji, true).await
}

#[tauri::command]
#[specta::specta]
pub async fn unreact(
    state: State<'_, AppState>,
    room_id: RoomId,
    message_id: MessageId,
    emoji: String,
) -> Result<MessageView> {
    let messenger = state.session.messenger().await?;
    messenger.react(room_id, message_id, &emoji, false).await
}

/// Moves my read marker forward to `seq`; returns the marker now.
#[tauri::command]
#[specta::specta]
pub async fn mark_read(state: State<'_, AppState>, room_id: RoomId, seq: u64) -> Result<u64> {
    state
        .session
        .messenger()
        .await?
        .mark_read(room_id, seq)
        .await
}

/// Call on every keystroke in the composer (sent at most every few seconds).
#[tauri::command]
#[specta::specta]
pub async fn typing(state: State<'_, AppState>, room_id: RoomId) -> Result<()> {
    state.session.messenger().await?.typing(room_id)
}

#[tauri::command]
#[specta::specta]
pub async fn set_presence(state: State<'_, AppState>, status: OwnPresence) -> Result<()> {
    state.session.messenger().await?.set_presence(status)
}

/// `None` leaves a field as it is; an empty string clears it.
#[tauri::command]
#[specta::specta]
pub async fn update_profile(
    state: State<'_, AppState>,
    display_name: Option<String>,
    status_text: Option<String>,
) -> Result<MeView> {
    let messenger = state.session.messenger().await?;
    Ok(messenger
        .update_profile(display_name, status_text)
        .await?
        .into())
}

#[tauri::command]
#[specta::specta]
pub async fn set_room_muted(
    state: State<'_, AppState>,
    room_id: RoomId,
    muted: bool,
) -> Result<ConversationView> {
    state
        .session
        .messenger()
        .await?
        .set_muted(room_id, muted)
        .await
}

#[tauri::command]
#[specta::specta]
pub async fn create_group(
    state: State<'_, AppState>,
    title: String,
    members: Vec<UserId>,
) -> Result<ConversationView> {
    state
        .session
        .messenger()
        .await?
        .create_group(&title, &members)
        .await
}

#[tauri::command]
#[specta::specta]
pub async fn rename_group(
    state: State<'_, AppState>,
    room_id: RoomId,
    title: String,
) -> Result<ConversationView> {
    state
        .session
        .messenger()
        .await?
        .rename_group(room_id, &title)
        .await
}

#[tauri::command]
#[specta::specta]
pub async fn room_members(state: State<'_, AppState>, room_id: RoomId) -> Result<Vec<MemberView>> {
    state.session.messenger().await?.members(room_id).await
}

#[tauri::command]
#[specta::specta]
pub async fn add_member(
    state: State<'_, AppState>,
    room_id: RoomId,
    user_id: UserId,
) -> Result<Vec<MemberView>> {
    state
        .session
        .messenger()
        .await?
        .add_member(room_id, user_id)
        .await
}

#[tauri::command]
#[specta::specta]
pub async fn remove_member(
    state: State<'_, AppState>,
    room_id: RoomId,
    user_id: UserId,
) -> Result<Vec<MemberView>> {
    state
        .session
        .messenger()
        .await?
        .remove_member(room_id, user_id)
        .await
}

#[tauri::command]
#[specta::specta]
pub async fn search_users(state: State<'_, AppState>, q: String) -> Result<Vec<UserView>> {
    state.session.messenger().await?.search_users(&q).await
}

#[tauri::command]
#[specta::specta]
pub async fn contacts(state: State<'_, AppState>) -> Result<ContactsView> {
    Ok(state.session.messenger().await?.contacts())
}

#[tauri::command]
#[specta::specta]
pub async fn send_contact_request(
    state: State<'_, AppState>,
    user_id: UserId,
) -> Result<ContactsView> {
    state.session.messenger().await?.send_request(user_id).await
}

#[tauri::command]
#[specta::specta]
pub async fn accept_request(
    state: State<'_, AppState>,
    request_id: ContactRequestId,
) -> Result<ContactsView> {
    state
        .session
        .messenger()
        .await?
        .accept_request(request_id)
        .await
}

#[tauri::command]
#[specta::specta]
pub async fn decline_request(
    state: State<'_, AppState>,
    request_id: ContactRequestId,
) -> Result<ContactsView> {
    state
        .session
        .messenger()
        .await?
        .decline_request(request_id)
        .await
}

#[tauri::command]
#[specta::specta]
pub async fn cancel_request(
    state: State<'_, AppState>,
    request_id: ContactRequestId,
) -> Result<ContactsView> {
    state
        .session
        .messenger()
        .await?
        .cancel_request(request_id)
        .await
}

#[tauri::command]
#[specta::specta]
pub async fn remove_contact(state: State<'_, AppState>, user_id: UserId) -> Result<ContactsView> {
    state
        .session
        .messenger()
        .await?
        .remove_contact(user_id)
        .await
}

#[tauri::command]
#[specta::specta]
pub async fn block(state: State<'_, AppState>, user_id: UserId) -> Result<ContactsView> {
    state.session.messenger().await?.block(user_id).await
}

#[tauri::command]
#[specta::specta]
pub async fn unblock(state: State<'_, AppState>, user_id: UserId) -> Result<ContactsView> {
    state.session.messenger().await?.unblock(user_id).await
}

#[tauri::command]
#[specta::specta]
pub async fn blocked_users(state: State<'_, AppState>) -> Result<Vec<BlockedView>> {
    state.session.messenger().await?.blocked().await
}

#[tauri::command]
#[specta::specta]
pub async fn open_direct(state: State<'_, AppState>, user_id: UserId) -> Result<ConversationView> {
    state.session.messenger().await?.open_direct(user_id).await
}

#[tauri::command]
#[specta::specta]
pub async fn connection_state(state: State<'_, AppState>) -> Result<ConnectionState> {
    Ok(state.session.messenger().await?.connection_state())
}

#[tauri::command]
#[specta::specta]
pub fn set_notifications_muted(app: AppHandle, state: State<'_, AppState>, muted: bool) {
    crate::notify::set_muted(&app, &state.attention, muted);
}

#[tauri::command]
#[specta::specta]
pub fn notifications_muted(state: State<'_, AppState>) -> bool {
    state.attention.muted()
}

/// The `confab://` link opened last and not yet taken (crate::links), once.
#[tauri::command]
#[specta::specta]
pub fn take_invite_link(pending: State<'_, crate::links::PendingLink>) -> Option<String> {
    pending.take()
}

// --- ringing calls -----------------------------------------------------------------------

/// Calls a contact: opens our direct room and joins its call, which rings them.
#[tauri::command]
#[specta::specta]
pub async fn ring_user(
    app: AppHandle,
    state: State<'_, AppState>,
    user_id: UserId,
    settings: CallSettings,
) -> Result<RoomId> {
    let messenger = state.session.messenger().await?;
    let room = messenger.open_direct(user_id).await?.id;
    state
        .media
        .join_call(app, messenger.connection(), room, settings)
        .await?;
    Ok(room)
}

/// Answers a ringing call (audio only: `settings.video` off).
#[tauri::command]
#[specta::specta]
pub async fn answer_call(
    app: AppHandle,
    state: State<'_, AppState>,
    room_id: RoomId,
    settings: CallSettings,
) -> Result<()> {
    let messenger = state.session.messenger().await?;
    state
        .media
        .join_call(app, messenger.connection(), room_id, settings)
        .await
}

/// Declines a ringing call on all my devices.
#[tauri::command]
#[specta::specta]
pub async fn decline_call(state: State<'_, AppState>, room_id: RoomId) -> Result<()> {
    state.session.messenger().await?.decline(room_id)
}

#[tauri::command]
#[specta::specta]
pub async fn ringing(state: State<'_, AppState>) -> Result<Vec<RingView>> {
    Ok(state.session.messenger().await?.ringing())
}

/// The running call, if any (for the call bar).
#[tauri::command]
#[specta::specta]
pub async fn call_status(state: State<'_, AppState>) -> Result<Option<CallStatusView>> {
    let Some(room_id) = state.media.call_room().await else {
        return Ok(None);
    };
    let title = state
        .session
        .messenger()
        .await
        .ok()
        .and_then(|m| m.conversation(room_id).ok())
        .map(|c| c.title)
        .unwrap_or_default();
    Ok(Some(CallStatusView { room_id, title }))
}

/// Opens a link from a message in the OS browser or mail app: `http`, `https` and
/// `mailto` only (the window itself may open nothing).
#[tauri::command]
#[specta::specta]
pub fn open_link(app: AppHandle, url: String) -> Result<()> {
    use tauri_plugin_opener::OpenerExt;
    let parsed = url::Url::parse(url.trim()).map_err(|_| AppError::field("url", "Not a link."))?;
    if !matches!(parsed.scheme(), "http" | "https" | "mailto") {
        return Err(AppError::field("url", "Only web and mail links open."));
    }
    app.opener()
        .open_url(parsed.as_str(), None::<&str>)
        .map_err(|e| AppError::Server {
            message: format!("cannot open the link: {e}"),
        })
}
