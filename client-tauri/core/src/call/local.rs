//! Local media: source -> encoder on a capture thread, then one async fan-out that writes
//! each encoded frame to every peer's track. Encoding happens once per local track, not
//! once per peer; only RTP packetization is per peer.

use bytes::Bytes;
use confab_media::audio::apm::{FarEnd, VoiceProcessing, VoiceProcessor};
use confab_media::audio::capture::MicCapture;
use confab_media::audio::opus::OpusEncoder;
use confab_media::audio::tone::{FrameDuration, ToneSource};
use confab_media::video::camera::{Camera, CaptureRequest};
use confab_media::video::pattern::{MIN_HEIGHT, MIN_WIDTH, SyntheticVideoSource};
use confab_media::video::vp8::{EncodedFrame, Vp8Config, Vp8Encoder};
use confab_media::{AUDIO_FRAME_SAMPLES, AudioFrame, I420Frame};
use rtc::media::Sample;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use shared::ParticipantId;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, watch};
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;

/// Where local video comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VideoSource {
    /// The moving test pattern with a frame counter and capture timestamp ("test call").
    TestPattern { width: u32, height: u32, fps: u32 },
    /// A camera, by index in `confab_media::video::camera::list_cameras()`.
    Camera {
        index: u32,
        width: u32,
        height: u32,
        fps: u32,
    },
}

/// Where local audio comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum AudioSource {
    /// A sine tone at this frequency (Hz).
    Tone { frequency: f64 },
    /// A microphone, by cpal device id (`None`: the default one).
    Microphone { device: Option<String> },
}

/// Encoded media on its way to the peers.
pub(crate) struct EncodedMedia {
    pub kind: RtpCodecKind,
    pub data: Bytes,
    pub duration: Duration,
    /// When the source produced it, for the packetizer's send-time extension.
    pub captured: Instant,
}

/// A peer's track, to be fed by the fan-out.
struct Outlet {
    participant: ParticipantId,
    /// Only once DTLS is up: before that the packets could not be encrypted anyway.
    connected: bool,
    kind: RtpCodecKind,
    track: Arc<TrackLocalStaticSample>,
    ssrc: u32,
    payload_type: u8,
}

/// The tracks encoded media is written to. Peers add theirs when their connection is
/// built and remove them when it closes.
#[derive(Default)]
pub(crate) struct Fanout {
    outlets: Mutex<Vec<Outlet>>,
}

impl Fanout {
    pub fn add(
        &self,
        participant: ParticipantId,
        kind: RtpCodecKind,
        track: Arc<TrackLocalStaticSample>,
        ssrc: u32,
        payload_type: u8,
    ) {
        self.lock().push(Outlet {
            participant,
            connected: false,
            kind,
            track,
            ssrc,
            payload_type,
        });
    }

    /// Starts feeding a participant's tracks (its connection is up).
    pub fn connected(&self, participant: ParticipantId) {
        for outlet in self
            .lock()
            .iter_mut()
            .filter(|o| o.participant == participant)
        {
            outlet.connected = true;
        }
    }

    pub fn remove(&self, participant: ParticipantId) {
        self.lock().retain(|o| o.participant != participant);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Outlet>> {
        self.outlets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes one encoded frame to every track of its kind.
    async fn write(&self, media: &EncodedMedia) {
        let targets: Vec<(Arc<TrackLocalStaticSample>, u32, u8)> = self
            .lock()
            .iter()
            .filter(|o| o.connected && o.kind == media.kind)
            .map(|o| (Arc::clone(&o.track), o.ssrc, o.payload_type))
            .collect();
        let sample = Sample {
            data: media.data.clone(),
            duration: media.duration,
            ..Sample::new(media.captured)
        };
        for (track, ssrc, pt) in targets {
            if let Err(e) = track.sample_writer(ssrc, pt).write_sample(&sample).await {
                tracing::debug!(error = %e, "writing a sample");
            }
        }
    }
}

/// Moves encoded media from the capture threads to the tracks, until both threads end.
pub(crate) async fn run_fanout(fanout: Arc<Fanout>, mut rx: mpsc::Receiver<EncodedMedia>) {
    while let Some(media) = rx.recv().await {
        fanout.write(&media).await;
    }
}

/// Commands for the video thread.
#[derive(Debug)]
pub(crate) enum VideoControl {
    /// A new peer (or a PLI) needs a frame it can start decoding from.
    ForceKeyframe,
    /// Camera off (false) or on (true): while off, nothing is captured or sent.
    SetEnabled(bool),
    /// Capture from another source from the next frame on.
    Switch(VideoSource),
    /// Encode at this bitrate (kbit/s) from the next frame on (congestion control).
    TargetBitrate(u32),
}

/// The least time between keyframes forced for the self-view (each one also goes to the
/// peers, several times the size of a delta frame).
pub(crate) const SELF_VIEW_KEYFRAME_GAP: Duration = Duration::from_millis(500);

/// Commands for the audio thread.
#[derive(Debug)]
pub(crate) enum AudioControl {
    /// Muted (false) or not (true): while muted, nothing is sent.
    SetEnabled(bool),
    Switch(AudioSource),
    /// The packet loss (percent) the receivers report: Opus plans its in-band FEC for it.
    ExpectedLoss(u8),
    /// Echo cancellation, noise suppression and gain control on or off.
    VoiceProcessing(VoiceProcessing),
}

/// The microphone's voice processing: what runs, and the far end (what the speaker plays)
/// it cancels.
pub(crate) struct VoiceSetup {
    pub settings: VoiceProcessing,
    pub far_end: FarEnd,
}

/// Starts the video capture thread. It stops when the control sender is dropped.
pub(crate) fn spawn_video(
    source: VideoSource,
    bitrate_kbps: u32,
    out: mpsc::Sender<EncodedMedia>,
    tap: LocalTap,
) -> std::io::Result<(std_mpsc::Sender<VideoControl>, thread::JoinHandle<()>)> {
    let (tx, rx) = std_mpsc::channel();
    let handle = thread::Builder::new()
        .name("confab-video".into())
        .spawn(move || video_thread(source, bitrate_kbps, rx, out, tap))?;
    Ok((tx, handle))
}

/// A fixed-rate clock for sources that are not paced by hardware (the test pattern, the
/// tone, a paused camera).
pub(crate) struct Pacer {
    interval: Duration,
    next_at: Instant,
}

impl Pacer {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            next_at: Instant::now(),
        }
    }

    /// Sleeps until the next tick. When it fell behind (a loaded machine) it skips ahead
    /// rather than bursting.
    pub fn wait(&mut self) {
        self.next_at += self.interval;
        let now = Instant::now();
        if self.next_at > now {
            thread::sleep(self.next_at - now);
        } else {
            self.next_at = now;
        }
    }
}

/// Where the local media is shown to the user: captured frames before encoding (shared
/// with the encoder, and sent only while someone is subscribed) and the microphone's level.
#[derive(Clone, Debug)]
pub(crate) struct LocalTap {
    pub video: broadcast::Sender<Arc<I420Frame>>,
    /// The same frames as encoded for the peers, sent only while someone is subscribed.
    pub encoded: broadcast::Sender<Arc<LocalEncodedFrame>>,
    /// A self-view decoder needs a keyframe: one comes within [`SELF_VIEW_KEYFRAME_GAP`]
    /// of the last keyframe, and a keyframe the encoder makes anyway answers it.
    pub self_view_keyframe: Arc<AtomicBool>,
    pub level: Arc<watch::Sender<f32>>,
    /// What the video encoder currently sends.
    pub sending: Arc<watch::Sender<SendingVideo>>,
}

/// The video encoder's current settings, for the stats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SendingVideo {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
}

impl LocalTap {
    pub fn new() -> Self {
        Self {
            video: broadcast::channel(2).0,
            encoded: broadcast::channel(LOCAL_ENCODED_FRAMES).0,
            self_view_keyframe: Arc::default(),
            level: Arc::new(watch::channel(0.0).0),
            sending: Arc::new(watch::channel(SendingVideo::default()).0),
        }
    }

    /// Shows a frame to the subscribers, if there are any (shared, not copied).
    pub fn frame(&self, frame: &Arc<I420Frame>) {
        if self.video.receiver_count() > 0 {
            let _ = self.video.send(Arc::clone(frame));
        }
    }

    fn wants_encoded(&self) -> bool {
        self.encoded.receiver_count() > 0
    }
}

/// Encoded frames a slow self-view consumer may fall behind by (a second at 30 fps)
/// before it loses the oldest and needs a keyframe.
const LOCAL_ENCODED_FRAMES: usize = 30;

/// Our own video as the encoder made it for the peers: for a consumer that decodes it
/// itself (the desktop app's self-view is drawn by its webview from these, a few KB each,
/// instead of from pictures). It shows what the others get, at the size and quality the
/// bandwidth allows.
#[derive(Debug)]
pub struct LocalEncodedFrame {
    /// The VP8 frame (RFC 6386).
    pub data: Bytes,
    pub is_keyframe: bool,
    pub width: u32,
    pub height: u32,
    /// When it was captured, microseconds since the Unix epoch.
    pub captured_at_us: u64,
}

/// Keyframe requests for the self-view of a call ([`crate::call::Call::local_video_control`],
/// its frames come from [`crate::call::Call::local_encoded_frames`]). Cheap to clone, and
/// holding one keeps nothing of the call alive. The default one goes nowhere.
#[derive(Clone, Debug, Default)]
pub struct LocalVideoControl {
    pub(crate) keyframe: Arc<AtomicBool>,
}

impl LocalVideoControl {
    /// Asks the encoder for a keyframe soon (at most one every half second is forced).
    pub fn request_keyframe(&self) {
        self.keyframe.store(true, Ordering::Relaxed);
    }
}

pub(crate) enum Capture {
    Pattern(SyntheticVideoSource),
    Camera(Box<Camera>),
}

impl Capture {
    pub fn open(source: &VideoSource) -> Result<(Self, u32, u32, u32), String> {
        match *source {
            VideoSource::TestPattern { width, height, fps } => {
                let src =
                    SyntheticVideoSource::new(width, height, fps).map_err(|e| e.to_string())?;
                Ok((Self::Pattern(src), width, height, fps))
            }
            VideoSource::Camera {
                index,
                width,
                height,
                fps,
            } => {
                let camera = Camera::open(index, CaptureRequest { width, height, fps })
                    .map_err(|e| e.to_string())?;
                let mode = camera.mode();
                Ok((
                    Self::Camera(Box::new(camera)),
                    mode.width,
                    mode.height,
                    mode.fps.max(1),
                ))
            }
        }
    }

    pub fn next(&mut self) -> Result<I420Frame, String> {
        match self {
            Self::Pattern(src) => Ok(src.next_frame()),
            // A camera paces itself: capture blocks until its next frame.
            Self::Camera(camera) => camera.capture().map_err(|e| e.to_string()),
        }
    }

    pub fn paced_by_us(&self) -> bool {
        matches!(self, Self::Pattern(_))
    }
}

/// What a bitrate affords: the capture size and rate, half the size, or half the size at
/// half the rate. Like libwebrtc's quality scaler, but driven by the bitrate alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SendLevel {
    Full,
    Half,
    HalfSlow,
}

/// Bits per pixel VP8 needs for a watchable picture in a call (about 415 kbit/s for
/// 640x480 at 30 fps, 1.25 Mbit/s for 1280x720 at 30).
const BITS_PER_PIXEL: f64 = 0.045;
/// Going back up needs this much more than the threshold, so an estimate that hovers
/// near it does not flip the resolution (each flip costs a keyframe).
const UP_HYSTERESIS: f64 = 1.25;

impl SendLevel {
    /// The level for `kbps` when sending `width` x `height` at `fps`, now at `current`.
    pub fn for_bitrate(kbps: u32, width: u32, height: u32, fps: u32, current: Self) -> Self {
        let full = f64::from(width) * f64::from(height) * f64::from(fps) * BITS_PER_PIXEL / 1000.0;
        // Half the size is a quarter of the pixels; below that, half the rate as well.
        let half = full / 3.0;
        let kbps = f64::from(kbps);
        let rank = |l: Self| match l {
            Self::Full => 2,
            Self::Half => 1,
            Self::HalfSlow => 0,
        };
        let wanted = if kbps >= full {
            Self::Full
        } else if kbps >= half {
            Self::Half
        } else {
            Self::HalfSlow
        };
        if rank(wanted) <= rank(current) {
            return wanted;
        }
        // Up only with headroom.
        let up = if kbps >= full * UP_HYSTERESIS {
            Self::Full
        } else if kbps >= half * UP_HYSTERESIS {
            Self::Half
        } else {
            Self::HalfSlow
        };
        if rank(up) > rank(current) {
            up
        } else {
            current
        }
    }

    /// The encoded size and rate at this level for a capture of `width` x `height` at `fps`.
    /// The test pattern is never drawn below its minimum size (its marker must stay
    /// readable).
    fn apply(self, width: u32, height: u32, fps: u32, pattern: bool) -> (u32, u32, u32) {
        let halve = |v: u32, min: u32| {
            let h = (v / 2) & !1;
            if pattern { h.max(min).min(v) } else { h.max(2) }
        };
        match self {
            Self::Full => (width, height, fps),
            Self::Half => (halve(width, MIN_WIDTH), halve(height, MIN_HEIGHT), fps),
            Self::HalfSlow => (
                halve(width, MIN_WIDTH),
                halve(height, MIN_HEIGHT),
                (fps / 2).max(1),
            ),
        }
    }
}

/// Holds back going up a level after going up failed: a level left for a lower one within
/// [`LevelBackoff::FAILED_WITHIN`] of reaching it is not tried again for a hold time that
/// doubles each time (5 s to a minute). Without it, an estimate that overshoots (rtc's GCC
/// climbs ~25 % a second) takes the encoder back to a size the link cannot carry every
/// few seconds, and each attempt costs a stall and a keyframe.
#[derive(Debug, Default)]
struct LevelBackoff {
    went_up: Option<Instant>,
    hold: Duration,
    blocked_until: Option<Instant>,
}

impl LevelBackoff {
    const FAILED_WITHIN: Duration = Duration::from_secs(10);
    const FIRST_HOLD: Duration = Duration::from_secs(5);
    const MAX_HOLD: Duration = Duration::from_secs(60);

    fn rank(level: SendLevel) -> u8 {
        match level {
            SendLevel::Full => 2,
            SendLevel::Half => 1,
            SendLevel::HalfSlow => 0,
        }
    }

    /// The level to send at, given the current one and what the bitrate alone would pick.
    fn decide(&mut self, current: SendLevel, wanted: SendLevel, now: Instant) -> SendLevel {
        let (from, to) = (Self::rank(current), Self::rank(wanted));
        if to > from {
            if self.blocked_until.is_some_and(|t| now < t) {
                return current;
            }
            self.went_up = Some(now);
        } else if to < from
            && self
                .went_up
                .take()
                .is_some_and(|t| now.saturating_duration_since(t) < Self::FAILED_WITHIN)
        {
            self.hold = (self.hold * 2).clamp(Self::FIRST_HOLD, Self::MAX_HOLD);
            self.blocked_until = Some(now + self.hold);
        }
        wanted
    }
}

/// Keyframes the self-view asked for: forced at most every [`SELF_VIEW_KEYFRAME_GAP`]
/// after the last keyframe of any cause, so a burst of requests costs one.
#[derive(Debug, Default)]
struct SelfViewKeyframes {
    wanted: bool,
    last: Option<Instant>,
}

impl SelfViewKeyframes {
    /// Whether to force a keyframe for the frame captured at `now`.
    fn due(&self, now: Instant) -> bool {
        self.wanted
            && self
                .last
                .is_none_or(|t| now.saturating_duration_since(t) >= SELF_VIEW_KEYFRAME_GAP)
    }

    /// The encoder made a keyframe: it answers any request.
    fn made(&mut self, now: Instant) {
        self.wanted = false;
        self.last = Some(now);
    }
}

/// The encoder and what it sends, rebuilt when the level changes.
struct Sending {
    encoder: Vp8Encoder,
    width: u32,
    height: u32,
    fps: u32,
    level: SendLevel,
}

impl Sending {
    fn new(
        capture: &mut Capture,
        (width, height, fps): (u32, u32, u32),
        level: SendLevel,
        bitrate_kbps: u32,
        tap: &LocalTap,
    ) -> Result<Self, String> {
        let pattern = capture.paced_by_us();
        let (w, h, f) = level.apply(width, height, fps, pattern);
        if let Capture::Pattern(src) = capture {
            src.resize(w, h).map_err(|e| e.to_string())?;
        }
        let encoder =
            Vp8Encoder::new(Vp8Config::new(w, h, f, bitrate_kbps)).map_err(|e| e.to_string())?;
        tap.sending.send_replace(SendingVideo {
            width: w,
            height: h,
            fps: f,
            bitrate_kbps,
        });
        if level != SendLevel::Full {
            tracing::info!(
                width = w,
                height = h,
                fps = f,
                bitrate_kbps,
                "sending video at a lower level"
            );
        }
        Ok(Self {
            encoder,
            width: w,
            height: h,
            fps: f,
            level,
        })
    }
}

fn video_thread(
    source: VideoSource,
    bitrate_kbps: u32,
    control: std_mpsc::Receiver<VideoControl>,
    out: mpsc::Sender<EncodedMedia>,
    tap: LocalTap,
) {
    let mut current = source;
    let mut enabled = true;
    let mut bitrate_kbps = bitrate_kbps;
    'sources: loop {
        let (mut capture, width, height, fps) = match Capture::open(&current) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, source = ?current, "cannot open the video source");
                // Wait for another source (or the end of the call).
                match control.recv() {
                    Ok(VideoControl::Switch(next)) => {
                        current = next;
                        continue 'sources;
                    }
                    Ok(VideoControl::TargetBitrate(kbps)) => {
                        bitrate_kbps = kbps;
                        continue 'sources;
                    }
                    Ok(_) => continue 'sources,
                    Err(_) => return,
                }
            }
        };
        let captured_mode = (width, height, fps);
        let level = SendLevel::for_bitrate(bitrate_kbps, width, height, fps, SendLevel::Full);
        let mut sending = match Sending::new(&mut capture, captured_mode, level, bitrate_kbps, &tap)
        {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot create the VP8 encoder");
                return;
            }
        };
        let mut interval = Duration::from_secs(1) / sending.fps;
        let mut pacer = Pacer::new(interval);
        // With a camera at half rate, every other captured frame is skipped.
        let mut skip_next = false;
        let mut backoff = LevelBackoff::default();
        let mut self_view = SelfViewKeyframes::default();
        loop {
            loop {
                match control.try_recv() {
                    Ok(VideoControl::ForceKeyframe) => sending.encoder.force_keyframe(),
                    Ok(VideoControl::SetEnabled(on)) => {
                        if on && !enabled {
                            // The peers' decoders lost the reference chain while we were off.
                            sending.encoder.force_keyframe();
                        }
                        enabled = on;
                    }
                    Ok(VideoControl::Switch(next)) => {
                        current = next;
                        continue 'sources;
                    }
                    Ok(VideoControl::TargetBitrate(kbps)) => {
                        bitrate_kbps = kbps;
                        let wanted =
                            SendLevel::for_bitrate(kbps, width, height, fps, sending.level);
                        let level = backoff.decide(sending.level, wanted, Instant::now());
                        if level != sending.level {
                            // A new size needs a new encoder; its first frame is a keyframe.
                            match Sending::new(&mut capture, captured_mode, level, kbps, &tap) {
                                Ok(s) => {
                                    sending = s;
                                    interval = Duration::from_secs(1) / sending.fps;
                                    pacer = Pacer::new(interval);
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, "cannot change the video size")
                                }
                            }
                        } else {
                            match sending.encoder.set_bitrate_kbps(kbps) {
                                Ok(()) => tap.sending.send_modify(|s| s.bitrate_kbps = kbps),
                                Err(e) => {
                                    tracing::warn!(error = %e, kbps, "cannot change the video bitrate")
                                }
                            }
                        }
                    }
                    Err(std_mpsc::TryRecvError::Empty) => break,
                    Err(std_mpsc::TryRecvError::Disconnected) => return,
                }
            }
            if capture.paced_by_us() || !enabled {
                pacer.wait();
            }
            if !enabled {
                continue;
            }
            let frame = match capture.next() {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(error = %e, "video capture failed");
                    thread::sleep(interval);
                    continue;
                }
            };
            if !capture.paced_by_us() && sending.fps < fps {
                skip_next = !skip_next;
                if !skip_next {
                    continue;
                }
            }
            let frame = if (frame.width(), frame.height()) == (sending.width, sending.height) {
                Arc::new(frame)
            } else {
                let half = frame.downscale_half();
                if (half.width(), half.height()) == (sending.width, sending.height) {
                    Arc::new(half)
                } else {
                    Arc::new(frame) // a camera that changed its mode: the encoder says so
                }
            };
            let captured = Instant::now();
            tap.frame(&frame);
            if tap.self_view_keyframe.swap(false, Ordering::Relaxed) {
                self_view.wanted = true;
            }
            if self_view.due(captured) {
                sending.encoder.force_keyframe();
            }
            match sending.encoder.encode(&frame) {
                Ok(Some(EncodedFrame {
                    data,
                    is_keyframe,
                    timestamp_us,
                })) => {
                    let data = Bytes::from(data);
                    if is_keyframe {
                        self_view.made(captured);
                    }
                    if tap.wants_encoded() {
                        let _ = tap.encoded.send(Arc::new(LocalEncodedFrame {
                            data: data.clone(),
                            is_keyframe,
                            width: sending.width,
                            height: sending.height,
                            captured_at_us: timestamp_us,
                        }));
                    }
                    let media = EncodedMedia {
                        kind: RtpCodecKind::Video,
                        data,
                        duration: interval,
                        captured,
                    };
                    if out.try_send(media).is_err() {
                        if out.is_closed() {
                            return;
                        }
                        // A dropped frame breaks every decoder's reference chain: restart
                        // it with a keyframe.
                        sending.encoder.force_keyframe();
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "VP8 encoding failed"),
            }
        }
    }
}

/// Opus frames are 20 ms: two of the microphone's 10 ms frames.
const OPUS_FRAME: usize = 2 * AUDIO_FRAME_SAMPLES;
const OPUS_DURATION: Duration = Duration::from_millis(20);

/// An open audio source, read 20 ms at a time.
pub(crate) enum AudioInput {
    Tone {
        tone: ToneSource,
        pacer: Pacer,
    },
    // The microphone stream is not Send (cpal): it lives and dies on the thread that
    // opened it.
    Mic {
        _capture: MicCapture,
        frames: std_mpsc::Receiver<AudioFrame>,
    },
}

/// What reading 20 ms of audio gave.
pub(crate) enum AudioRead {
    /// `pcm` holds the next 20 ms.
    Frame,
    /// Nothing this time (the microphone was late); try again.
    Late,
    /// The source is gone (the device went away).
    Ended,
}

impl AudioInput {
    pub fn open(source: &AudioSource) -> Result<Self, String> {
        match source {
            AudioSource::Tone { frequency } => Ok(Self::Tone {
                tone: ToneSource::new(*frequency, 0.5, FrameDuration::Ms20),
                pacer: Pacer::new(OPUS_DURATION),
            }),
            AudioSource::Microphone { device } => {
                let (capture, frames) =
                    MicCapture::start(device.as_deref(), 10).map_err(|e| e.to_string())?;
                Ok(Self::Mic {
                    _capture: capture,
                    frames,
                })
            }
        }
    }

    /// Fills `pcm` (20 ms) from the source, paced in real time. A microphone's frames go
    /// through `voice` (echo cancellation, noise suppression, gain control) 10 ms at a
    /// time; a tone is sent as it is.
    pub fn read(
        &mut self,
        pcm: &mut [i16; OPUS_FRAME],
        voice: Option<&mut VoiceProcessor>,
    ) -> AudioRead {
        match self {
            Self::Tone { tone, pacer } => {
                pacer.wait();
                tone.fill(pcm);
                if let Some(voice) = voice {
                    // Nothing to cancel from a tone: keep the far-end queue fresh.
                    voice.skip_far_end();
                }
                AudioRead::Frame
            }
            Self::Mic { frames, .. } => {
                // The microphone paces us: wait for two 10 ms frames.
                let mut voice = voice;
                let mut filled = 0;
                while filled < OPUS_FRAME {
                    match frames.recv_timeout(Duration::from_millis(200)) {
                        Ok(mut frame) => {
                            if let Some(voice) = voice.as_deref_mut() {
                                voice.process(&mut frame.samples);
                            }
                            pcm[filled..filled + AUDIO_FRAME_SAMPLES]
                                .copy_from_slice(&frame.samples);
                            filled += AUDIO_FRAME_SAMPLES;
                        }
                        Err(std_mpsc::RecvTimeoutError::Timeout) => return AudioRead::Late,
                        Err(std_mpsc::RecvTimeoutError::Disconnected) => return AudioRead::Ended,
                    }
                }
                AudioRead::Frame
            }
        }
    }
}

/// The peak level (0..1) of 20 ms of audio, for a level meter.
pub(crate) fn peak_level(pcm: &[i16]) -> f32 {
    let peak = pcm.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
    f32::from(peak) / 32768.0
}

/// Starts the audio capture thread. It stops when the control sender is dropped.
pub(crate) fn spawn_audio(
    source: AudioSource,
    voice: VoiceSetup,
    out: mpsc::Sender<EncodedMedia>,
    tap: LocalTap,
) -> std::io::Result<(std_mpsc::Sender<AudioControl>, thread::JoinHandle<()>)> {
    let (tx, rx) = std_mpsc::channel();
    let handle = thread::Builder::new()
        .name("confab-audio".into())
        .spawn(move || audio_thread(source, voice, rx, out, tap))?;
    Ok((tx, handle))
}

fn audio_thread(
    source: AudioSource,
    voice: VoiceSetup,
    control: std_mpsc::Receiver<AudioControl>,
    out: mpsc::Sender<EncodedMedia>,
    tap: LocalTap,
) {
    let mut encoder = match OpusEncoder::new(32_000, 5) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "cannot create the Opus encoder");
            return;
        }
    };
    // The APM runs here, on the encoding side of the microphone's bounded channel, never
    // in the capture callback: it allocates and locks. Created even with everything off,
    // so switching it on mid-call keeps the far end flowing.
    let mut voice = match VoiceProcessor::new(voice.settings, voice.far_end) {
        Ok(v) => {
            tracing::info!(settings = ?v.settings(), "voice processing ready");
            Some(v)
        }
        Err(e) => {
            tracing::warn!(error = %e, "no voice processing: the microphone is sent as captured");
            None
        }
    };
    let mut current = source;
    let mut enabled = true;
    let mut pcm = [0i16; OPUS_FRAME];
    'sources: loop {
        let mut input = match AudioInput::open(&current) {
            Ok(input) => {
                if let Some(v) = &voice {
                    // A microphone that starts now has no echo of what played before.
                    v.skip_far_end();
                }
                input
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot open the microphone");
                tap.level.send_replace(0.0);
                match control.recv() {
                    Ok(AudioControl::Switch(next)) => {
                        current = next;
                        continue 'sources;
                    }
                    Ok(AudioControl::SetEnabled(on)) => {
                        enabled = on;
                        continue 'sources;
                    }
                    Ok(AudioControl::ExpectedLoss(percent)) => {
                        let _ = encoder.set_expected_loss_percent(percent);
                        continue 'sources;
                    }
                    Ok(AudioControl::VoiceProcessing(settings)) => {
                        if let Some(v) = voice.as_mut() {
                            v.set_settings(settings);
                        }
                        continue 'sources;
                    }
                    Err(_) => return,
                }
            }
        };
        loop {
            loop {
                match control.try_recv() {
                    Ok(AudioControl::SetEnabled(on)) => enabled = on,
                    Ok(AudioControl::ExpectedLoss(percent)) => {
                        if let Err(e) = encoder.set_expected_loss_percent(percent) {
                            tracing::warn!(error = %e, "cannot tell Opus the loss");
                        }
                    }
                    Ok(AudioControl::VoiceProcessing(settings)) => {
                        if let Some(v) = voice.as_mut() {
                            tracing::info!(?settings, "voice processing switched");
                            v.set_settings(settings);
                        }
                    }
                    Ok(AudioControl::Switch(next)) => {
                        current = next;
                        continue 'sources;
                    }
                    Err(std_mpsc::TryRecvError::Empty) => break,
                    Err(std_mpsc::TryRecvError::Disconnected) => return,
                }
            }
            match input.read(&mut pcm, voice.as_mut()) {
                AudioRead::Frame => {}
                AudioRead::Late => continue,
                AudioRead::Ended => {
                    tracing::warn!("the microphone stream ended");
                    continue 'sources;
                }
            }
            let captured = Instant::now();
            tap.level
                .send_replace(if enabled { peak_level(&pcm) } else { 0.0 });
            if !enabled {
                continue;
            }
            match encoder.encode(&pcm) {
                Ok(packet) => {
                    let media = EncodedMedia {
                        kind: RtpCodecKind::Audio,
                        data: Bytes::from(packet),
                        duration: OPUS_DURATION,
                        captured,
                    };
                    if out.try_send(media).is_err() && out.is_closed() {
                        return;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "Opus encoding failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SendLevel::{self, *};

    #[test]
    fn going_up_again_after_a_failed_step_up_waits_longer_each_time() {
        let t0 = std::time::Instant::now();
        let s = std::time::Duration::from_secs;
        let mut b = super::LevelBackoff::default();
        assert_eq!(b.decide(Half, Full, t0), Full);
        // Down again 3 s later: held at Half for 5 s.
        assert_eq!(b.decide(Full, Half, t0 + s(3)), Half);
        assert_eq!(b.decide(Half, Full, t0 + s(6)), Half);
        assert_eq!(b.decide(Half, Full, t0 + s(9)), Full);
        // Failing again doubles the hold.
        assert_eq!(b.decide(Full, Half, t0 + s(10)), Half);
        assert_eq!(b.decide(Half, Full, t0 + s(19)), Half);
        assert_eq!(b.decide(Half, Full, t0 + s(21)), Full);
        // A step up that holds for a while is not a failure.
        assert_eq!(b.decide(Full, Half, t0 + s(60)), Half);
        assert_eq!(b.decide(Half, Full, t0 + s(61)), Full);
    }

    #[test]
    fn the_send_level_follows_the_bitrate_with_hysteresis_going_up() {
        let level = |kbps, current| SendLevel::for_bitrate(kbps, 640, 480, 30, current);
        assert_eq!(level(800, Full), Full);
        assert_eq!(level(400, Full), Half);
        assert_eq!(level(130, Full), HalfSlow);
        // Back up only with 25 % to spare over the threshold (415 kbit/s for VGA at 30).
        assert_eq!(level(450, Half), Half);
        assert_eq!(level(600, Half), Full);
        assert_eq!(level(150, HalfSlow), HalfSlow);
        assert_eq!(level(200, HalfSlow), Half);
        assert_eq!(HalfSlow.apply(640, 480, 30, true), (320, 240, 15));
        // The pattern is never drawn below 320x240; a camera's frames are just halved.
        assert_eq!(Half.apply(320, 240, 30, true), (320, 240, 30));
        assert_eq!(Half.apply(1280, 720, 30, false), (640, 360, 30));
    }
}
