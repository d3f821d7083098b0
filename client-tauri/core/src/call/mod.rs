//! A call: one mesh of peer connections, one per other participant of a room's call,
//! fed by one local capture/encode pipeline and feeding decoded remote media to sinks.
//!
//! [`Call::start`] takes a [`SignalingClient`] of its own; [`Call::start_borrowed`] runs
//! on a socket someone else owns (the session's [`crate::connection::Connection`]), fed
//! the signaling events by its owner. Either way the call task then joins the room's
//! call, creates a peer for everyone already there (we offer to them) and for everyone
//! who joins later (they offer to us), routes signaling to the right peer, and
//! starts over with new peers after the signaling client reconnects (the server gives
//! the new connection a new participant id, so the old peer connections are dead).

mod assembler;
mod bwe;
mod codecs;
mod feedback;
mod local;
mod nack;
mod peer;
mod preview;
mod remote;
pub mod screen;
pub mod setup;
mod stats;

pub use confab_media::I420Frame;
pub use confab_media::audio::apm::VoiceProcessing;
pub use confab_media::video::screen::{ScreenSource, ScreenTarget};
pub use local::{AudioSource, LocalEncodedFrame, LocalVideoControl, VideoSource};
pub use preview::{Preview, PreviewError};
pub use remote::{
    EncodedVideoFrame, RemoteAudio, RemoteVideoControl, RemoteVideoFrame, VideoKind,
    vp8_keyframe_size,
};
pub use stats::PeerStats;
pub use webrtc::peer_connection::RTCIceServer;

use crate::negotiation::{Input, PeerIdentity, SessionDescription};
use crate::signaling::{SignalingClient, SignalingEvent, SignalingEvents, SignalingSender};
use confab_media::audio::apm::{FarEndTap, far_end_channel};
use confab_media::audio::mix::{Mixer, mix_buffer};
use confab_media::audio::playback::Playback;
use feedback::SendFeedback;
use local::{AudioControl, EncodedMedia, Fanout, LocalTap, VideoControl};
use peer::{PeerHandle, PeerInput, PeerSetup};
use remote::Sinks;
use shared::signal::{ClientMsg, Participant, ServerMsg};
use shared::{ParticipantId, RoomId, UserId};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::thread;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// The server's ICE servers (`GET /api/ice-servers`) in the form peer connections take.
pub fn rtc_ice_servers(servers: Vec<shared::api::IceServer>) -> Vec<RTCIceServer> {
    servers
        .into_iter()
        .map(|s| RTCIceServer {
            urls: s.urls,
            username: s.username.unwrap_or_default(),
            credential: s.credential.unwrap_or_default(),
        })
        .collect()
}

/// How a call is set up.
#[derive(Clone, Debug)]
pub struct CallConfig {
    pub room_id: RoomId,
    /// `None`: send no video.
    pub video: Option<VideoSource>,
    /// `None`: send no audio.
    pub audio: Option<AudioSource>,
    /// Play remote audio on this output device (`Some(None)`: the default one); `None`:
    /// decode it but play nothing (tests, load runs).
    pub speaker: Option<Option<String>>,
    /// Target video bitrate.
    pub video_kbps: u32,
    /// STUN/TURN servers (from `GET /api/ice-servers`).
    pub ice_servers: Vec<RTCIceServer>,
    /// Local addresses the peer connections bind to (`0.0.0.0:0`: any interface).
    pub udp_addrs: Vec<String>,
    /// Echo cancellation, noise suppression and gain control on a microphone (a tone is
    /// sent as it is).
    pub voice_processing: VoiceProcessing,
}

impl CallConfig {
    /// A call in `room_id` with the test pattern (640x480, 30 fps) and a 440 Hz tone,
    /// playing nothing: what tests and `confab-cli --synthetic` use.
    pub fn synthetic(room_id: RoomId) -> Self {
        Self {
            room_id,
            video: Some(VideoSource::TestPattern {
                width: 640,
                height: 480,
                fps: 30,
            }),
            audio: Some(AudioSource::Tone { frequency: 440.0 }),
            speaker: None,
            video_kbps: 800,
            ice_servers: Vec::new(),
            udp_addrs: vec!["0.0.0.0:0".to_owned()],
            voice_processing: VoiceProcessing::ON,
        }
    }
}

/// What happens in a call, in order.
#[derive(Clone, Debug)]
pub enum CallEvent {
    /// `join_call` was sent on a fresh signaling connection.
    Joining,
    /// We are in the call, with these others.
    Joined {
        participant_id: ParticipantId,
        participants: Vec<Participant>,
    },
    ParticipantJoined(Participant),
    ParticipantLeft {
        participant_id: ParticipantId,
        user_id: UserId,
    },
    /// Someone muted or turned their camera off (or back on).
    MediaState {
        participant_id: ParticipantId,
        audio_muted: bool,
        video_muted: bool,
    },
    /// A peer connection changed state (`connecting`, `connected`, `failed`, ...).
    PeerState {
        participant_id: ParticipantId,
        state: String,
    },
    /// Once a second per remote participant.
    Stats(PeerStats),
    /// A participant started or stopped sharing a screen (their frames come as
    /// [`VideoKind::Screen`]).
    RemoteScreen {
        participant_id: ParticipantId,
        user_id: UserId,
        sharing: bool,
    },
    /// Our screen share started (`target`) or stopped (`None`); `error` when it could
    /// not start.
    LocalScreen {
        target: Option<ScreenTarget>,
        error: Option<String>,
    },
    /// The signaling connection dropped; it is being re-established.
    Reconnecting {
        attempt: u32,
    },
    /// The server refused something (e.g. `room_full`, `not_found` on join).
    Error {
        code: shared::ErrorCode,
        message: String,
    },
    /// The call is over for us (left, the room was deleted, or signed out).
    Ended {
        reason: String,
    },
}

/// Why a call could not start.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("cannot start a capture thread: {0}")]
    Thread(#[from] std::io::Error),
}

enum CallCommand {
    MicrophoneMuted(bool),
    CameraOff(bool),
    SwitchVideo(VideoSource),
    SwitchAudio(AudioSource),
    SwitchSpeaker(Option<String>),
    SetVoiceProcessing(VoiceProcessing),
    /// Share this screen or window (`None`: stop sharing).
    ShareScreen(Option<ScreenTarget>),
    Leave(oneshot::Sender<()>),
}

/// A running call. Drop it or call [`Call::leave`] to hang up.
#[derive(Debug)]
pub struct Call {
    commands: mpsc::UnboundedSender<CallCommand>,
    task: Option<tokio::task::JoinHandle<()>>,
    video: broadcast::Sender<Arc<RemoteVideoFrame>>,
    audio: broadcast::Sender<Arc<RemoteAudio>>,
    local: LocalTap,
    local_video: LocalVideoControl,
    remote_video: RemoteVideoControl,
}

/// Remote frames a slow consumer may fall behind by before it skips the oldest.
const VIDEO_SINK_FRAMES: usize = 4;
const AUDIO_SINK_FRAMES: usize = 50;

impl Call {
    /// Starts the call: capture and encoding begin, and the call is joined as soon as the
    /// signaling client is connected. Must be called inside a Tokio runtime.
    pub fn start(
        signaling: SignalingClient,
        events: SignalingEvents,
        config: CallConfig,
    ) -> Result<(Self, mpsc::UnboundedReceiver<CallEvent>), CallError> {
        let sender = signaling.sender();
        Self::spawn(sender, Some(signaling), Feed::Owned(events), config)
    }

    /// Starts the call on a signaling connection it does not own: `sender` sends on it
    /// and `events` brings its events (its current `Connected` first, if it is up). The
    /// call leaves the room's call when it ends but leaves the connection open.
    pub fn start_borrowed(
        sender: SignalingSender,
        events: mpsc::UnboundedReceiver<SignalingEvent>,
        config: CallConfig,
    ) -> Result<(Self, mpsc::UnboundedReceiver<CallEvent>), CallError> {
        Self::spawn(sender, None, Feed::Borrowed(events), config)
    }

    fn spawn(
        sender: SignalingSender,
        signaling: Option<SignalingClient>,
        events: Feed,
        config: CallConfig,
    ) -> Result<(Self, mpsc::UnboundedReceiver<CallEvent>), CallError> {
        let (encoded_tx, encoded_rx) = mpsc::channel::<EncodedMedia>(16);
        let tap = LocalTap::new();
        let video = match config.video.clone() {
            Some(source) => Some(local::spawn_video(
                source,
                config.video_kbps,
                encoded_tx.clone(),
                tap.clone(),
            )?),
            None => None,
        };
        // What the speaker plays goes to the microphone's echo canceller.
        let (far_end_tap, far_end) = far_end_channel();
        let audio = match config.audio.clone() {
            Some(source) => Some(local::spawn_audio(
                source,
                local::VoiceSetup {
                    settings: config.voice_processing,
                    far_end,
                },
                encoded_tx.clone(),
                tap.clone(),
            )?),
            None => None,
        };
        drop(encoded_tx);
        let fanout = Arc::new(Fanout::default());
        let feedback = Arc::new(SendFeedback::new(
            video.as_ref().map(|(c, _)| c.clone()),
            audio.as_ref().map(|(c, _)| c.clone()),
        ));
        let fanout_task = tokio::spawn(local::run_fanout(Arc::clone(&fanout), encoded_rx));
        let speaker = Speaker::start(config.speaker.clone(), far_end_tap.clone())?;
        let (mixer_tx, mixer_rx) = watch::channel(speaker.mixer.clone());
        let (video_tx, _) = broadcast::channel(VIDEO_SINK_FRAMES);
        let (audio_tx, _) = broadcast::channel(AUDIO_SINK_FRAMES);
        let remote_video = RemoteVideoControl::default();
        let local_video = LocalVideoControl {
            keyframe: Arc::clone(&tap.self_view_keyframe),
        };
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        let (command_tx, command_rx) = mpsc::unbounded_channel();
        let task = CallTask {
            sender,
            signaling,
            config,
            fanout,
            feedback,
            local_tap: tap.clone(),
            sinks: Sinks {
                video: video_tx.clone(),
                audio: audio_tx.clone(),
                mixer: mixer_rx,
                control: remote_video.clone(),
            },
            events: event_tx,
            local: None,
            in_call: false,
            peers: HashMap::new(),
            audio_muted: false,
            video_muted: false,
            video_control: video.as_ref().map(|(c, _)| c.clone()),
            audio_control: audio.as_ref().map(|(c, _)| c.clone()),
            speaker: Some(speaker),
            mixer: mixer_tx,
            far_end: far_end_tap,
            screen: None,
            screen_tracks: watch::channel(None).0,
        };
        let handle = tokio::spawn(async move {
            let speaker = task.run(events, command_rx).await;
            // Dropping the controls ends the capture threads; then the fan-out drains.
            let threads = [video.map(|(_, t)| t), audio.map(|(_, t)| t)];
            let _ = tokio::task::spawn_blocking(move || {
                for t in threads.into_iter().flatten() {
                    let _ = t.join();
                }
            })
            .await;
            let _ = fanout_task.await;
            if let Some(speaker) = speaker {
                let _ = tokio::task::spawn_blocking(move || speaker.stop()).await;
            }
        });
        Ok((
            Self {
                commands: command_tx,
                task: Some(handle),
                video: video_tx,
                audio: audio_tx,
                local: tap,
                local_video,
                remote_video,
            },
            event_rx,
        ))
    }

    /// Decoded remote video, newest frames first to go to a slow consumer.
    pub fn video_frames(&self) -> broadcast::Receiver<Arc<RemoteVideoFrame>> {
        self.video.subscribe()
    }

    /// Remote video before decoding, and whether the call decodes it itself (see
    /// [`RemoteVideoControl`]).
    pub fn remote_video(&self) -> &RemoteVideoControl {
        &self.remote_video
    }

    /// Decoded remote audio (20 ms chunks), as mixed into the speaker.
    pub fn remote_audio(&self) -> broadcast::Receiver<Arc<RemoteAudio>> {
        self.audio.subscribe()
    }

    /// Our own captured video (before encoding), for the local preview tile. Frames are
    /// only copied while a receiver exists.
    pub fn local_video(&self) -> broadcast::Receiver<Arc<I420Frame>> {
        self.local.video.subscribe()
    }

    /// Our video as encoded for the peers, for a self-view that decodes it itself. Frames
    /// are only passed on while a receiver exists; the first may not be decodable until a
    /// keyframe ([`LocalVideoControl::request_keyframe`]).
    pub fn local_encoded_frames(&self) -> broadcast::Receiver<Arc<LocalEncodedFrame>> {
        self.local.encoded.subscribe()
    }

    /// Keyframe requests for that self-view.
    pub fn local_video_control(&self) -> &LocalVideoControl {
        &self.local_video
    }

    /// Our microphone's peak level (0..1) over the last 20 ms; 0 while muted.
    pub fn microphone_level(&self) -> watch::Receiver<f32> {
        self.local.level.subscribe()
    }

    /// Stops sending audio (and tells the others), or resumes.
    pub fn set_microphone_muted(&self, muted: bool) {
        let _ = self.commands.send(CallCommand::MicrophoneMuted(muted));
    }

    /// Stops sending video (and tells the others), or resumes.
    pub fn set_camera_off(&self, off: bool) {
        let _ = self.commands.send(CallCommand::CameraOff(off));
    }

    /// Switches the camera (or to the test pattern) without leaving the call.
    pub fn switch_video(&self, source: VideoSource) {
        let _ = self.commands.send(CallCommand::SwitchVideo(source));
    }

    /// Switches the microphone (or to a tone) without leaving the call.
    pub fn switch_audio(&self, source: AudioSource) {
        let _ = self.commands.send(CallCommand::SwitchAudio(source));
    }

    /// Plays remote audio on another output device (`None`: the default one).
    pub fn switch_speaker(&self, device: Option<String>) {
        let _ = self.commands.send(CallCommand::SwitchSpeaker(device));
    }

    /// Switches echo cancellation, noise suppression and gain control on or off from the
    /// microphone's next frame.
    pub fn set_voice_processing(&self, settings: VoiceProcessing) {
        let _ = self
            .commands
            .send(CallCommand::SetVoiceProcessing(settings));
    }

    /// Shares a monitor or a window with everyone in the call, as a track of its own
    /// (replacing a share already running); [`CallEvent::LocalScreen`] says whether it
    /// started.
    pub fn share_screen(&self, target: ScreenTarget) {
        let _ = self.commands.send(CallCommand::ShareScreen(Some(target)));
    }

    /// Stops sharing the screen; the camera goes on.
    pub fn stop_screen_share(&self) {
        let _ = self.commands.send(CallCommand::ShareScreen(None));
    }

    /// Leaves the call, closes every peer connection and the signaling connection (when
    /// the call owns it), and waits until capture has stopped.
    pub async fn leave(mut self) {
        let (done_tx, done_rx) = oneshot::channel();
        if self.commands.send(CallCommand::Leave(done_tx)).is_ok() {
            let _ = done_rx.await;
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Remote audio output: a real device, or a null sink that drains the mix in real time
/// when there is none (or none was asked for). A device also hands what it plays to the
/// echo canceller; the null sink plays nothing, so there is no echo of it.
struct Speaker {
    mixer: Mixer,
    stop: Option<std_mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Speaker {
    fn start(device: Option<Option<String>>, far_end: FarEndTap) -> std::io::Result<Self> {
        let (stop_tx, stop_rx) = std_mpsc::channel::<()>();
        let (mixer_tx, mixer_rx) = std_mpsc::channel::<Mixer>();
        // The cpal stream is not Send: it is created, kept and dropped on this thread.
        let thread = thread::Builder::new().name("confab-speaker".into()).spawn(move || {
            if let Some(device) = device {
                match Playback::start_with_far_end(device.as_deref(), Some(far_end)) {
                    Ok(playback) => {
                        let _ = mixer_tx.send(playback.mixer());
                        let _ = stop_rx.recv();
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "no speaker; remote audio is decoded but not played"),
                }
            }
            let (mixer, mut output) = mix_buffer();
            let _ = mixer_tx.send(mixer);
            let mut buf = vec![0i16; 480];
            loop {
                match stop_rx.recv_timeout(Duration::from_millis(10)) {
                    Err(std_mpsc::RecvTimeoutError::Timeout) => {
                        output.pull(&mut buf);
                    }
                    _ => return,
                }
            }
        })?;
        let mixer = mixer_rx
            .recv()
            .map_err(|_| std::io::Error::other("the speaker thread ended before it started"))?;
        Ok(Self {
            mixer,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    fn stop(mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Where a call's signaling events come from.
enum Feed {
    /// Its own client.
    Owned(SignalingEvents),
    /// A connection it borrows.
    Borrowed(mpsc::UnboundedReceiver<SignalingEvent>),
}

impl Feed {
    async fn recv(&mut self) -> Option<SignalingEvent> {
        match self {
            Self::Owned(events) => events.recv().await,
            Self::Borrowed(events) => events.recv().await,
        }
    }
}

struct CallTask {
    /// The signaling client, when the call owns it (closed when the call ends).
    signaling: Option<SignalingClient>,
    sender: SignalingSender,
    config: CallConfig,
    fanout: Arc<Fanout>,
    feedback: Arc<SendFeedback>,
    local_tap: LocalTap,
    sinks: Sinks,
    events: mpsc::UnboundedSender<CallEvent>,
    /// Our identity on the current signaling connection.
    local: Option<PeerIdentity>,
    in_call: bool,
    peers: HashMap<ParticipantId, PeerHandle>,
    audio_muted: bool,
    video_muted: bool,
    video_control: Option<std_mpsc::Sender<VideoControl>>,
    audio_control: Option<std_mpsc::Sender<AudioControl>>,
    speaker: Option<Speaker>,
    /// Tells the audio receivers which mixer feeds the current speaker.
    mixer: watch::Sender<Mixer>,
    /// Where every speaker hands what it plays (the echo canceller's far end).
    far_end: FarEndTap,
    /// Our screen share, while it runs.
    screen: Option<screen::ScreenShare>,
    /// Its tracks' fan-out, for the peers (`None`: not sharing).
    screen_tracks: watch::Sender<Option<Arc<Fanout>>>,
}

impl CallTask {
    /// Runs the call; returns the speaker for the caller to stop off the runtime.
    async fn run(
        mut self,
        mut signaling: Feed,
        mut commands: mpsc::UnboundedReceiver<CallCommand>,
    ) -> Option<Speaker> {
        let mut leave_done = None;
        let reason = loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(CallCommand::Leave(done)) => {
                        leave_done = Some(done);
                        break "left the call".to_owned();
                    }
                    Some(command) => self.on_command(command).await,
                    None => break "the call was dropped".to_owned(),
                },
                event = signaling.recv() => match event {
                    Some(event) => {
                        if let Some(reason) = self.on_signaling(event).await {
                            break reason;
                        }
                    }
                    None => break "signaling ended".to_owned(),
                },
            }
        };
        if self.in_call {
            let _ = self.sender.send(ClientMsg::LeaveCall {
                room_id: self.config.room_id,
            });
        }
        self.close_peers().await;
        if let Some(share) = self.screen.take() {
            share.stop().await;
        }
        if let Some(client) = self.signaling.take() {
            client.close().await;
        }
        let _ = self.events.send(CallEvent::Ended { reason });
        if let Some(done) = leave_done {
            let _ = done.send(());
        }
        self.speaker.take()
    }

    async fn on_command(&mut self, command: CallCommand) {
        match command {
            CallCommand::MicrophoneMuted(muted) => {
                self.audio_muted = muted;
                if let Some(c) = &self.audio_control {
                    let _ = c.send(AudioControl::SetEnabled(!muted));
                }
                self.announce_media_state();
            }
            CallCommand::CameraOff(off) => {
                self.video_muted = off;
                if let Some(c) = &self.video_control {
                    let _ = c.send(VideoControl::SetEnabled(!off));
                }
                self.announce_media_state();
            }
            CallCommand::SwitchVideo(source) => {
                if let Some(c) = &self.video_control {
                    let _ = c.send(VideoControl::Switch(source));
                }
            }
            CallCommand::SwitchAudio(source) => {
                if let Some(c) = &self.audio_control {
                    let _ = c.send(AudioControl::Switch(source));
                }
            }
            CallCommand::SetVoiceProcessing(settings) => {
                if let Some(c) = &self.audio_control {
                    let _ = c.send(AudioControl::VoiceProcessing(settings));
                }
            }
            CallCommand::SwitchSpeaker(device) => {
                let far_end = self.far_end.clone();
                let started =
                    tokio::task::spawn_blocking(move || Speaker::start(Some(device), far_end))
                        .await;
                match started {
                    Ok(Ok(speaker)) => {
                        // Receivers move to the new mixer with their next packet.
                        self.mixer.send_replace(speaker.mixer.clone());
                        if let Some(old) = self.speaker.replace(speaker) {
                            let _ = tokio::task::spawn_blocking(move || old.stop()).await;
                        }
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "cannot switch the speaker"),
                    Err(e) => tracing::warn!(error = %e, "speaker switch task failed"),
                }
            }
            CallCommand::ShareScreen(target) => self.share_screen(target).await,
            CallCommand::Leave(_) => {}
        }
    }

    /// Starts, replaces or stops the screen share; the peers follow `screen_tracks`.
    async fn share_screen(&mut self, target: Option<ScreenTarget>) {
        if let Some(old) = self.screen.take() {
            self.screen_tracks.send_replace(None);
            self.feedback.set_screen(None);
            old.stop().await;
        }
        let Some(target) = target else {
            let _ = self.events.send(CallEvent::LocalScreen {
                target: None,
                error: None,
            });
            return;
        };
        match screen::ScreenShare::start(target, screen::SCREEN_KBPS).await {
            Ok(share) => {
                self.feedback.set_screen(Some(share.control.clone()));
                self.screen_tracks
                    .send_replace(Some(Arc::clone(&share.fanout)));
                self.screen = Some(share);
                let _ = self.events.send(CallEvent::LocalScreen {
                    target: Some(target),
                    error: None,
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, %target, "cannot share the screen");
                let _ = self.events.send(CallEvent::LocalScreen {
                    target: None,
                    error: Some(e),
                });
            }
        }
    }

    fn announce_media_state(&self) {
        if self.in_call {
            let _ = self.sender.send(ClientMsg::MediaState {
                room_id: self.config.room_id,
                audio_muted: self.audio_muted,
                video_muted: self.video_muted,
            });
        }
    }

    /// Handles a signaling event; returns a reason when the call is over.
    async fn on_signaling(&mut self, event: SignalingEvent) -> Option<String> {
        match event {
            SignalingEvent::Connected {
                participant_id,
                user_id,
                ..
            } => {
                // A new connection is a new participant: the old peers are gone on both
                // sides. The signaling client re-joins the call on its own after a
                // reconnect; the first time, we ask.
                self.close_peers().await;
                let first = self.local.is_none();
                self.local = Some(PeerIdentity {
                    user_id,
                    participant_id,
                });
                self.in_call = false;
                if first {
                    let _ = self.sender.send(ClientMsg::JoinCall {
                        room_id: self.config.room_id,
                        video: self.config.video.is_some(),
                    });
                }
                let _ = self.events.send(CallEvent::Joining);
            }
            SignalingEvent::Message(msg) => return self.on_server_msg(*msg).await,
            SignalingEvent::Reconnecting { attempt, .. } => {
                let _ = self.events.send(CallEvent::Reconnecting { attempt });
            }
            SignalingEvent::Disconnected {
                terminal: true,
                reason,
                ..
            } => return Some(reason),
            SignalingEvent::Disconnected { .. } => {
                self.in_call = false;
            }
        }
        None
    }

    async fn on_server_msg(&mut self, msg: ServerMsg) -> Option<String> {
        let room = self.config.room_id;
        match msg {
            ServerMsg::CallJoined {
                room_id,
                participants,
                ..
            } if room_id == room => {
                let local = self.local?;
                self.in_call = true;
                for p in &participants {
                    self.add_peer(p.clone(), true);
                }
                let _ = self.events.send(CallEvent::Joined {
                    participant_id: local.participant_id,
                    participants,
                });
                if self.audio_muted || self.video_muted {
                    self.announce_media_state();
                }
            }
            ServerMsg::ParticipantJoined {
                room_id,
                participant,
                ..
            } if room_id == room => {
                self.add_peer(participant.clone(), false);
                let _ = self.events.send(CallEvent::ParticipantJoined(participant));
            }
            ServerMsg::ParticipantLeft {
                room_id,
                participant_id,
                user_id,
                ..
            } if room_id == room => {
                if let Some(peer) = self.peers.remove(&participant_id) {
                    peer.close().await;
                }
                let _ = self.events.send(CallEvent::ParticipantLeft {
                    participant_id,
                    user_id,
                });
            }
            ServerMsg::Offer {
                room_id, from, sdp, ..
            } if room_id == room => {
                self.route(
                    from,
                    Input::RemoteDescription(SessionDescription::offer(sdp)),
                );
            }
            ServerMsg::Answer {
                room_id, from, sdp, ..
            } if room_id == room => {
                self.route(
                    from,
                    Input::RemoteDescription(SessionDescription::answer(sdp)),
                );
            }
            ServerMsg::IceCandidate {
                room_id,
                from,
                candidate,
                ..
            } if room_id == room => {
                self.route(from, Input::RemoteCandidate(candidate));
            }
            ServerMsg::MediaState {
                room_id,
                participant_id,
                audio_muted,
                video_muted,
            } if room_id == room => {
                let _ = self.events.send(CallEvent::MediaState {
                    participant_id,
                    audio_muted,
                    video_muted,
                });
            }
            ServerMsg::CallLeft { room_id } if room_id == room => {
                self.in_call = false;
                self.close_peers().await;
                return Some(
                    "removed from the call (left the room, or the room was deleted)".to_owned(),
                );
            }
            ServerMsg::Error { error, .. } => {
                let _ = self.events.send(CallEvent::Error {
                    code: error.code,
                    message: error.message,
                });
            }
            _ => {}
        }
        None
    }

    fn add_peer(&mut self, remote: Participant, offer_first: bool) {
        let Some(local) = self.local else { return };
        if remote.participant_id == local.participant_id
            || self.peers.contains_key(&remote.participant_id)
        {
            return;
        }
        let id = remote.participant_id;
        let handle = PeerHandle::spawn(PeerSetup {
            room: self.config.room_id,
            local,
            remote,
            offer_first,
            signaling: self.sender.clone(),
            ice_servers: self.config.ice_servers.clone(),
            udp_addrs: self.config.udp_addrs.clone(),
            fanout: Arc::clone(&self.fanout),
            video_control: self.video_control.clone(),
            feedback: Arc::clone(&self.feedback),
            sending: Arc::clone(&self.local_tap.sending),
            video_kbps: self.config.video_kbps,
            sinks: self.sinks.clone(),
            events: self.events.clone(),
            screen: self.screen_tracks.subscribe(),
        });
        self.peers.insert(id, handle);
    }

    fn route(&self, from: ParticipantId, input: Input) {
        match self.peers.get(&from) {
            Some(peer) => {
                let _ = peer.tx.send(PeerInput::Signal(input));
            }
            None => tracing::debug!(%from, "signaling from a participant we have no peer for"),
        }
    }

    async fn close_peers(&mut self) {
        for (_, peer) in self.peers.drain() {
            peer.close().await;
        }
    }
}
