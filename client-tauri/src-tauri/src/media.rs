//! The local preview and the call: starting and stopping them, moving their frames to
//! the frame board, and turning the core's call events into UI events.

use crate::error::{AppError, DeviceKind};
use crate::events::{CallEvent, MicLevel};
use crate::frames::{FrameBoard, LOCAL, Picture, WebviewVideo, screen_key};
use crate::screens::ScreenView;
use crate::views::{AudioChoice, CallSettings, ParticipantView, PeerState, VideoChoice};
use confab_core::call::setup;
use confab_core::call::{
    Call, CallConfig, CallEvent as CoreEvent, EncodedVideoFrame, I420Frame, LocalEncodedFrame,
    Preview, RemoteVideoFrame, VideoKind,
};
use confab_core::connection::Connection;
use shared::RoomId;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tauri::{AppHandle, Runtime};
use tauri_specta::Event;
use tokio::sync::{Mutex, broadcast, watch};
use tokio::task::JoinHandle;

/// The level meter is updated this often.
const LEVEL_INTERVAL: Duration = Duration::from_millis(100);
/// Target video bitrate of a call, kbit/s.
const VIDEO_KBPS: u32 = 800;

/// Tasks that die with what they serve.
#[derive(Debug, Default)]
struct Tasks(Vec<JoinHandle<()>>);

impl Tasks {
    fn spawn(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.0.push(tokio::spawn(task));
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

#[derive(Debug)]
struct RunningPreview {
    preview: Preview,
    _tasks: Tasks,
}

#[derive(Debug)]
struct RunningCall {
    room_id: RoomId,
    call: Call,
    /// Set when the call ended by itself (the room was deleted, the session ended).
    ended: Arc<AtomicBool>,
    _tasks: Tasks,
}

/// The preview or the call (never both: they would fight over the camera).
#[derive(Debug, Default)]
pub struct Media {
    board: Arc<FrameBoard>,
    /// Remote VP8 frames for the tiles that decode them in the webview.
    video: Arc<WebviewVideo>,
    preview: Mutex<Option<RunningPreview>>,
    call: Mutex<Option<RunningCall>>,
}

impl Media {
    pub fn board(&self) -> &FrameBoard {
        &self.board
    }

    pub fn video(&self) -> &WebviewVideo {
        &self.video
    }

    /// The same, to keep (the video socket serves it).
    pub fn video_handle(&self) -> Arc<WebviewVideo> {
        Arc::clone(&self.video)
    }

    /// (Re)starts the preview with these sources.
    pub async fn start_preview<R: Runtime>(
        &self,
        app: AppHandle<R>,
        video: VideoChoice,
        audio: AudioChoice,
    ) -> Result<(), AppError> {
        if self.call.lock().await.is_some() {
            return Err(AppError::call("A call is running; leave it first."));
        }
        let mut slot = self.preview.lock().await;
        stop_preview(slot.take(), &self.board).await;
        let (video, audio) = (video.source(), audio.source());
        let preview = tokio::task::spawn_blocking(move || Preview::start(video, audio))
            .await
            .map_err(|e| AppError::device(DeviceKind::Other, e))??;
        let mut tasks = Tasks::default();
        tasks.spawn(pump_local(preview.frames(), Arc::clone(&self.board)));
        tasks.spawn(pump_level(app, preview.level()));
        *slot = Some(RunningPreview {
            preview,
            _tasks: tasks,
        });
        Ok(())
    }

    pub async fn stop_preview(&self) {
        let running = self.preview.lock().await.take();
        stop_preview(running, &self.board).await;
    }

    /// Joins the room's call on the messenger connection's WebSocket (answering it
    /// when it rings, ringing the other person in a direct room). The preview stops
    /// first, handing the devices over.
    pub async fn join_call<R: Runtime>(
        &self,
        app: AppHandle<R>,
        conn: &Connection,
        room_id: RoomId,
        settings: CallSettings,
    ) -> Result<(), AppError> {
        let mut slot = self.call.lock().await;
        if let Some(running) = slot.take_if(|c| c.ended.load(Ordering::Relaxed)) {
            self.video.detach();
            running.call.leave().await;
        }
        if slot.is_some() {
            return Err(AppError::call("You are already in a call."));
        }
        self.stop_preview().await;
        let config = CallConfig {
            room_id,
            video: settings.video.source(),
            audio: settings.audio.source(),
            speaker: Some(settings.speaker.clone()),
            voice_processing: settings.voice_processing.into(),
            video_kbps: VIDEO_KBPS,
            ice_servers: Vec::new(),
            udp_addrs: vec!["0.0.0.0:0".to_owned()],
        };
        let (call, mut events) = setup::start_on(conn, config).await?;
        call.set_microphone_muted(settings.muted);
        call.set_camera_off(settings.camera_off);
        let mut tasks = Tasks::default();
        tasks.spawn(pump_local(call.local_video(), Arc::clone(&self.board)));
        tasks.spawn(pump_remote(call.video_frames(), Arc::clone(&self.board)));
        self.video.attach(
            call.remote_video().clone(),
            call.local_video_control().clone(),
        );
        tasks.spawn(pump_encoded(
            call.remote_video().encoded_frames(),
            Arc::clone(&self.video),
        ));
        tasks.spawn(pump_local_encoded(
            call.local_encoded_frames(),
            Arc::clone(&self.video),
        ));
        tasks.spawn(pump_level(app.clone(), call.microphone_level()));
        let board = Arc::clone(&self.board);
        let ended_flag = Arc::new(AtomicBool::new(false));
        let ended_by_itself = Arc::clone(&ended_flag);
        tasks.spawn(async move {
            while let Some(event) = events.recv().await {
                match &event {
                    CoreEvent::ParticipantLeft { participant_id, .. } => {
                        board.remove(&participant_id.to_string());
                        board.remove(&screen_key(participant_id));
                    }
                    CoreEvent::RemoteScreen {
                        participant_id,
                        sharing: false,
                        ..
                    } => board.remove(&screen_key(participant_id)),
                    _ => {}
                }
                let ended = matches!(event, CoreEvent::Ended { .. });
                if let Err(e) = call_event(event, room_id).emit(&app) {
                    tracing::warn!(error = %e, "cannot send a call event to the window");
                }
                if ended {
                    ended_by_itself.store(true, Ordering::Relaxed);
                    break;
                }
            }
        });
        *slot = Some(RunningCall {
            room_id,
            call,
            ended: ended_flag,
            _tasks: tasks,
        });
        Ok(())
    }

    /// Hangs up. Leaving when not in a call is fine (the call may have ended by itself).
    pub async fn leave_call(&self) {
        let running = self.call.lock().await.take();
        if let Some(running) = running {
            tracing::info!(room = %running.room_id, "leaving the call");
            running.call.leave().await;
        }
        self.video.detach();
        self.board.clear();
    }

    /// The room of the running call, if one runs.
    pub async fn call_room(&self) -> Option<RoomId> {
        self.call
            .lock()
            .await
            .as_ref()
            .filter(|c| !c.ended.load(Ordering::Relaxed))
            .map(|c| c.room_id)
    }

    /// Runs `f` on the current call.
    pub async fn with_call(&self, f: impl FnOnce(&Call)) -> Result<(), AppError> {
        let slot = self.call.lock().await;
        let running = slot
            .as_ref()
            .ok_or_else(|| AppError::call("You are not in a call."))?;
        f(&running.call);
        Ok(())
    }
}

/// The monitors and windows to share, with thumbnails (capturing each takes a moment:
/// off the async threads).
pub async fn list_screens() -> Result<Vec<ScreenView>, AppError> {
    tokio::task::spawn_blocking(ScreenView::list_all)
        .await
        .map_err(|e| AppError::device(DeviceKind::Other, e))?
}

async fn stop_preview(running: Option<RunningPreview>, board: &FrameBoard) {
    if let Some(RunningPreview { preview, _tasks }) = running {
        drop(_tasks);
        let _ = tokio::task::spawn_blocking(move || preview.stop()).await;
    }
    board.remove(LOCAL);
}

async fn pump_local(mut frames: broadcast::Receiver<Arc<I420Frame>>, board: Arc<FrameBoard>) {
    loop {
        match frames.recv().await {
            Ok(frame) => board.publish(LOCAL, Picture::Local(frame)),
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
}

async fn pump_remote(
    mut frames: broadcast::Receiver<Arc<RemoteVideoFrame>>,
    board: Arc<FrameBoard>,
) {
    loop {
        match frames.recv().await {
            Ok(remote) => {
                let key = match remote.kind {
                    VideoKind::Camera => remote.participant_id.to_string(),
                    VideoKind::Screen => screen_key(remote.participant_id),
                };
                board.publish(&key, Picture::Remote(remote));
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
}

/// Encoded remote frames to the webview's decoders; once a second it re-decides whether
/// Rust still decodes (an RGBA tile may have stopped asking).
async fn pump_encoded(
    mut frames: broadcast::Receiver<Arc<EncodedVideoFrame>>,
    video: Arc<WebviewVideo>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            frame = frames.recv() => match frame {
                Ok(frame) => video.deliver(&frame),
                Err(broadcast::error::RecvError::Lagged(_)) => video.lagged(),
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = tick.tick() => video.tick(),
        }
    }
}

/// Our own encoded frames to the self-view's decoder (in the webview).
async fn pump_local_encoded(
    mut frames: broadcast::Receiver<Arc<LocalEncodedFrame>>,
    video: Arc<WebviewVideo>,
) {
    loop {
        match frames.recv().await {
            Ok(frame) => video.deliver_local(&frame),
            Err(broadcast::error::RecvError::Lagged(_)) => video.local_lagged(),
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
}

async fn pump_level<R: Runtime>(app: AppHandle<R>, level: watch::Receiver<f32>) {
    let mut tick = tokio::time::interval(LEVEL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        if level.has_changed().is_err() {
            break;
        }
        let value = *level.borrow();
        if (MicLevel { level: value }).emit(&app).is_err() {
            break;
        }
    }
}

/// The window's view of a call event in `room_id`'s call.
fn call_event(event: CoreEvent, room_id: RoomId) -> CallEvent {
    CallEvent::from_core(event, room_id)
}

impl CallEvent {
    fn from_core(event: CoreEvent, room_id: RoomId) -> Self {
        match event {
            CoreEvent::Joining => Self::Joining,
            CoreEvent::Joined {
                participant_id,
                participants,
            } => Self::Joined {
                room_id,
                participant_id: participant_id.to_string(),
                participants: participants
                    .into_iter()
                    .map(ParticipantView::from)
                    .collect(),
            },
            CoreEvent::ParticipantJoined(p) => Self::ParticipantJoined {
                participant: p.into(),
            },
            CoreEvent::ParticipantLeft {
                participant_id,
                user_id,
            } => Self::ParticipantLeft {
                participant_id: participant_id.to_string(),
                user_id: user_id.to_string(),
            },
            CoreEvent::MediaState {
                participant_id,
                audio_muted,
                video_muted,
            } => Self::MediaState {
                participant_id: participant_id.to_string(),
                audio_muted,
                video_muted,
            },
            CoreEvent::PeerState {
                participant_id,
                state,
            } => Self::PeerState {
                participant_id: participant_id.to_string(),
                state: PeerState::parse(&state),
            },
            CoreEvent::Stats(stats) => Self::Stats {
                stats: stats.into(),
            },
            CoreEvent::RemoteScreen {
                participant_id,
                sharing,
                ..
            } => Self::ScreenShare {
                participant_id: participant_id.to_string(),
                sharing,
            },
            CoreEvent::LocalScreen { target, error } => Self::LocalScreen {
                source: target.map(|t| t.to_string()),
                error,
            },
            CoreEvent::Reconnecting { attempt } => Self::Reconnecting { attempt },
            CoreEvent::Error { message, .. } => Self::Error { message },
            CoreEvent::Ended { reason } => Self::Ended { reason },
        }
    }
}
