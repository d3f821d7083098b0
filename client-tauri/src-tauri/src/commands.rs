//! The commands the window may call (each also needs its `allow-*` permission in
//! build.rs and capabilities/main.json). Each one only hands over to the session or the
//! media state.

use crate::error::{AppError, DeviceKind};
use crate::frames::{self, FrameBytes};
use crate::session::parse_room_id;
use crate::views::{
    AppInfo, AudioChoice, CallSettings, Devices, InviteLink, MeView, RoomView, SignUpForm,
    VideoChoice,
};
use crate::{AppState, devices};
use tauri::{AppHandle, State};

type Result<T> = std::result::Result<T, AppError>;

#[tauri::command]
#[specta::specta]
pub fn app_info(state: State<'_, AppState>) -> AppInfo {
    state.session.app_info()
}

#[tauri::command]
#[specta::specta]
pub async fn set_server(state: State<'_, AppState>, url: String) -> Result<String> {
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
    let client = state.session.client().await?;
    state
        .media
        .join_call(app, client, parse_room_id(&room_id)?, settings)
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
