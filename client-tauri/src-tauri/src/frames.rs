//! Video for the webview. Capture and decoding keep the newest frame per source (the
//! local camera, each remote participant) on a board; the UI pulls each tile's next
//! frame with `next_frame` when it is ready to draw it. Pulling is the flow control: a
//! busy webview simply asks less often, frames it never asks for are never converted,
//! and nothing queues up. The reader also says how large it shows the picture, and a
//! larger frame is scaled down to that first: moving a pixel from here into the webview
//! costs far more than scaling it away (see the README's performance section). A frame
//! goes out as a 40-byte header plus RGBA pixels (`ui/src/media/frames.ts` reads it):
//!
//! | bytes  | field                                                        |
//! |--------|--------------------------------------------------------------|
//! | 0      | source: 0 local, 1 remote camera, 2 remote shared screen     |
//! | 1..4   | reserved, 0                                                  |
//! | 4..8   | width (u32 LE)                                               |
//! | 8..12  | height (u32 LE)                                              |
//! | 12..16 | test-pattern frame counter (u32 LE), `u32::MAX` when none    |
//! | 16..24 | sequence number of the frame for its source (u64 LE)         |
//! | 24..40 | participant id (UUID bytes), zero for local                  |
//!
//! Remote video can skip all of that: a tile whose webview decodes VP8 itself (WebCodecs'
//! `VideoDecoder`) connects to the video socket (`video_socket.rs`), or else calls
//! `watch_video(source, channel)`, and gets the remote track's reassembled VP8 frames
//! pushed down that WebSocket or Tauri `Channel` ([`FrameSink`]), a few KB each instead
//! of a picture, as raw bytes (an `ArrayBuffer`): a 48-byte header, then the VP8 frame
//! (`ui/src/media/decoder.ts` reads it). While every remote tile decodes for itself,
//! the call stops decoding video in Rust ([`WebviewVideo`]).
//!
//! | bytes  | field                                                        |
//! |--------|--------------------------------------------------------------|
//! | 0      | source: 0 local camera, 1 remote camera, 2 remote screen     |
//! | 1      | flags: bit 0 keyframe                                        |
//! | 2..4   | reserved, 0                                                  |
//! | 4..8   | width (u32 LE), from the last keyframe                       |
//! | 8..12  | height (u32 LE)                                              |
//! | 12..16 | reserved, 0                                                  |
//! | 16..24 | sequence number for this watcher (u64 LE); a jump: dropped   |
//! | 24..40 | participant id (UUID bytes), zero for local                  |
//! | 40..48 | when Rust reassembled it (local: captured), µs since epoch   |
//!
//! The self-view in a call takes the same path (source `local`): our
//! own frames as the encoder made them for the peers, so no picture crosses the IPC at
//! all while every tile decodes in the webview. The pre-join preview does not encode and
//! stays on the RGBA pull.

use crate::error::AppError;
use confab_core::call::{
    EncodedVideoFrame, I420Frame, LocalEncodedFrame, LocalVideoControl, RemoteVideoControl,
    RemoteVideoFrame, VideoKind,
};
use confab_media::video::pattern::read_marker;
use specta::Type;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tauri::ipc::{Channel, InvokeResponseBody, IpcResponse};
use tokio::sync::watch;
use uuid::Uuid;
use yuv::{YuvPlanarImage, YuvRange, YuvStandardMatrix};

/// Header size in bytes.
pub const HEADER_LEN: usize = 40;
/// The board key of the local preview.
pub const LOCAL: &str = "local";

/// The board key of a participant's shared screen (their camera's is their id).
pub fn screen_key(participant_id: impl std::fmt::Display) -> String {
    format!("screen:{participant_id}")
}
/// How long `next_frame` waits for a new frame before answering "nothing yet".
pub const WAIT: Duration = Duration::from_secs(1);

/// A picture on the board: our own capture or a decoded remote frame, shared with the
/// pipeline that made it rather than copied.
#[derive(Clone, Debug)]
pub enum Picture {
    Local(Arc<I420Frame>),
    Remote(Arc<RemoteVideoFrame>),
}

impl Picture {
    pub fn image(&self) -> &I420Frame {
        match self {
            Self::Local(frame) => frame,
            Self::Remote(remote) => &remote.frame,
        }
    }

    /// The participant it comes from (`None`: ours).
    pub fn participant(&self) -> Option<Uuid> {
        match self {
            Self::Local(_) => None,
            Self::Remote(remote) => Some(remote.participant_id.0),
        }
    }

    /// The test pattern's frame counter painted into it, if any. Remote frames were
    /// already read on decoding.
    pub fn counter(&self) -> Option<u32> {
        match self {
            Self::Local(frame) => read_marker(frame).map(|m| m.counter),
            Self::Remote(remote) => remote.marker.map(|m| m.counter),
        }
    }
}

/// One frame as it sits on the board, not yet converted for the webview.
#[derive(Debug)]
pub struct BoardFrame {
    pub seq: u64,
    pub picture: Picture,
}

/// The newest frame of every source.
#[derive(Debug, Default)]
pub struct FrameBoard {
    sources: Mutex<HashMap<String, watch::Sender<Option<Arc<BoardFrame>>>>>,
}

impl FrameBoard {
    fn sender(&self, key: &str) -> watch::Sender<Option<Arc<BoardFrame>>> {
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        sources
            .entry(key.to_owned())
            .or_insert_with(|| watch::channel(None).0)
            .clone()
    }

    /// Puts a picture up as `key`'s newest.
    pub fn publish(&self, key: &str, picture: Picture) {
        self.sender(key).send_modify(|slot| {
            let seq = slot.as_ref().map_or(1, |f| f.seq + 1);
            *slot = Some(Arc::new(BoardFrame { seq, picture }));
        });
    }

    /// Takes a source down (a participant left); its waiting readers get nothing.
    pub fn remove(&self, key: &str) {
        self.sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// Takes every source down (the call or preview ended).
    pub fn clear(&self) {
        self.sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// `key`'s first frame newer than `after`, waiting up to `wait` for it.
    pub async fn next(&self, key: &str, after: u64, wait: Duration) -> Option<Arc<BoardFrame>> {
        let mut rx = self.sender(key).subscribe();
        let newer = |f: &Option<Arc<BoardFrame>>| f.as_ref().is_some_and(|f| f.seq > after);
        match tokio::time::timeout(wait, rx.wait_for(newer)).await {
            Ok(Ok(frame)) => frame.clone(),
            _ => None,
        }
    }
}

/// Bytes for the webview, sent as a raw (binary) IPC answer rather than JSON. Empty
/// means "no new frame yet". The bindings type it `unknown`: it arrives as an
/// `ArrayBuffer`, which the UI checks.
#[derive(Debug)]
pub struct FrameBytes(pub Vec<u8>);

impl IpcResponse for FrameBytes {
    fn body(self) -> tauri::Result<InvokeResponseBody> {
        Ok(InvokeResponseBody::Raw(self.0))
    }
}

impl Type for FrameBytes {
    fn definition(types: &mut specta::Types) -> specta::datatype::DataType {
        specta_typescript::Unknown::<()>::definition(types)
    }
}

/// The size to send a `width` x `height` frame at when it is shown in at most
/// `max_width` x `max_height` pixels (0: no limit): scaled down to fit, aspect kept,
/// never up.
pub fn fit(width: u32, height: u32, max_width: u32, max_height: u32) -> (u32, u32) {
    let limit = |max: u32| if max == 0 { u32::MAX } else { max.max(2) };
    let (max_width, max_height) = (limit(max_width), limit(max_height));
    if width <= max_width && height <= max_height {
        return (width, height);
    }
    let scale = f64::min(
        f64::from(max_width) / f64::from(width),
        f64::from(max_height) / f64::from(height),
    );
    // Both results are below the original u32 sizes. Even, so chroma halves exactly.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let scaled = |v: u32| (((f64::from(v) * scale) as u32) & !1).max(2);
    (scaled(width), scaled(height))
}

/// Header plus RGBA pixels of a board frame, scaled down to fit `max_width` x
/// `max_height` (0: no limit).
pub fn encode(frame: &BoardFrame, max_width: u32, max_height: u32) -> FrameBytes {
    let image = frame.picture.image();
    let (full_width, full_height) = (image.width(), image.height());
    let (width, height) = fit(full_width, full_height, max_width, max_height);
    let rgba_len = width as usize * height as usize * 4;
    let mut out = vec![0u8; HEADER_LEN + rgba_len];
    let participant = frame.picture.participant();
    out[0] = match &frame.picture {
        Picture::Local(_) => 0,
        Picture::Remote(r) if r.kind == VideoKind::Screen => 2,
        Picture::Remote(_) => 1,
    };
    out[4..8].copy_from_slice(&width.to_le_bytes());
    out[8..12].copy_from_slice(&height.to_le_bytes());
    let counter = frame.picture.counter().unwrap_or(u32::MAX);
    out[12..16].copy_from_slice(&counter.to_le_bytes());
    out[16..24].copy_from_slice(&frame.seq.to_le_bytes());
    if let Some(id) = participant {
        out[24..40].copy_from_slice(id.as_bytes());
    }
    if (width, height) == (full_width, full_height) {
        to_rgba(image, &mut out[HEADER_LEN..]);
    } else {
        // Scaling the planes first moves 1.5 bytes per pixel instead of 4.
        match scale_i420(image, width, height) {
            Ok(small) => to_rgba(&small, &mut out[HEADER_LEN..]),
            Err(e) => tracing::warn!(error = %e, "cannot scale a frame for display"),
        }
    }
    FrameBytes(out)
}

/// Header size of an encoded-frame message.
pub const ENCODED_HEADER_LEN: usize = 48;

/// The channel message for one encoded remote frame: header plus the VP8 bytes.
pub fn encode_vp8(frame: &EncodedVideoFrame, seq: u64) -> FrameBytes {
    let source = match frame.kind {
        VideoKind::Camera => 1,
        VideoKind::Screen => 2,
    };
    encoded_message(
        EncodedHeader {
            source,
            is_keyframe: frame.is_keyframe,
            width: frame.width,
            height: frame.height,
            seq,
            participant: Some(frame.participant_id.0),
            at_us: frame.received_at_us,
        },
        &frame.data,
    )
}

/// The channel message for one frame of our own encoded video (source 0, no
/// participant, the capture time).
pub fn encode_local_vp8(frame: &LocalEncodedFrame, seq: u64) -> FrameBytes {
    encoded_message(
        EncodedHeader {
            source: 0,
            is_keyframe: frame.is_keyframe,
            width: frame.width,
            height: frame.height,
            seq,
            participant: None,
            at_us: frame.captured_at_us,
        },
        &frame.data,
    )
}

struct EncodedHeader {
    source: u8,
    is_keyframe: bool,
    width: u32,
    height: u32,
    seq: u64,
    participant: Option<Uuid>,
    at_us: u64,
}

fn encoded_message(h: EncodedHeader, data: &[u8]) -> FrameBytes {
    let mut out = Vec::with_capacity(ENCODED_HEADER_LEN + data.len());
    out.push(h.source);
    out.push(u8::from(h.is_keyframe));
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&h.width.to_le_bytes());
    out.extend_from_slice(&h.height.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&h.seq.to_le_bytes());
    out.extend_from_slice(h.participant.unwrap_or(Uuid::nil()).as_bytes());
    out.extend_from_slice(&h.at_us.to_le_bytes());
    out.extend_from_slice(data);
    FrameBytes(out)
}

/// The participant and track a remote board key names (`<id>` or `screen:<id>`).
pub fn parse_remote_key(key: &str) -> Option<(shared::ParticipantId, VideoKind)> {
    let (id, kind) = match key.strip_prefix("screen:") {
        Some(id) => (id, VideoKind::Screen),
        None => (key, VideoKind::Camera),
    };
    Some((shared::ParticipantId(Uuid::parse_str(id).ok()?), kind))
}

/// A remote tile is still drawn from RGBA frames (its webview cannot decode) if it
/// asked for one this recently: Rust keeps decoding for it.
const RGBA_HOLD: Duration = Duration::from_secs(3);

/// Routes the call's encoded remote frames to the tiles that decode them in the
/// webview, and decides whether Rust still decodes: only while some remote tile is
/// drawn from RGBA (it pulled a frame within [`RGBA_HOLD`]) or none takes encoded
/// frames. `CONFAB_WEBVIEW_DECODE=0` turns the encoded path off (tiles fall back).
pub struct WebviewVideo {
    enabled: bool,
    route: Mutex<Route>,
}

#[derive(Default)]
struct Route {
    control: Option<RemoteVideoControl>,
    /// Remote tiles that decode for themselves.
    watchers: HashMap<String, Watcher>,
    last_rgba_pull: Option<Instant>,
    /// The call's own encoded video, and the self-view that decodes it.
    local: Option<LocalVideoControl>,
    local_watcher: Option<Watcher>,
}

/// Where a watcher's frames go: a Tauri channel (each frame an IPC call of its own: a
/// script run in the webview, which then fetches the bytes) or a connection of the video
/// socket (`video_socket.rs`: each frame one WebSocket message on loopback).
pub enum FrameSink {
    Channel(Channel<FrameBytes>),
    /// The connection's queue; a full one drops the frame (the tile sees the gap in the
    /// sequence numbers and asks for a keyframe).
    Socket(tokio::sync::mpsc::Sender<Vec<u8>>),
}

impl std::fmt::Debug for FrameSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Channel(_) => "FrameSink::Channel",
            Self::Socket(_) => "FrameSink::Socket",
        })
    }
}

impl From<Channel<FrameBytes>> for FrameSink {
    fn from(channel: Channel<FrameBytes>) -> Self {
        Self::Channel(channel)
    }
}

impl FrameSink {
    /// False when the other end is gone.
    fn send(&self, frame: FrameBytes) -> bool {
        match self {
            Self::Channel(channel) => match channel.send(frame) {
                Ok(()) => true,
                Err(e) => {
                    tracing::debug!(error = %e, "a video channel closed");
                    false
                }
            },
            Self::Socket(queue) => match queue.try_send(frame.0) {
                Ok(()) => true,
                Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {
                    tracing::debug!("a video socket fell behind: a frame dropped");
                    true
                }
                Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => false,
            },
        }
    }
}

struct Watcher {
    sink: FrameSink,
    seq: u64,
    /// Nothing but a keyframe helps it now (it is new, or frames were lost on the way).
    waiting_for_keyframe: bool,
}

impl Watcher {
    fn new(sink: FrameSink) -> Self {
        Self {
            sink,
            seq: 0,
            waiting_for_keyframe: true,
        }
    }

    /// Sends the frame `message` makes unless this watcher waits for a keyframe and it is
    /// none; false when the channel is gone.
    fn offer(&mut self, is_keyframe: bool, message: impl FnOnce(u64) -> FrameBytes) -> bool {
        if self.waiting_for_keyframe && !is_keyframe {
            return true;
        }
        self.waiting_for_keyframe = false;
        self.seq += 1;
        self.sink.send(message(self.seq))
    }
}

impl Default for WebviewVideo {
    fn default() -> Self {
        Self {
            enabled: std::env::var("CONFAB_WEBVIEW_DECODE").map_or(true, |v| v != "0"),
            route: Mutex::default(),
        }
    }
}

impl std::fmt::Debug for WebviewVideo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let route = self.lock();
        f.debug_struct("WebviewVideo")
            .field("enabled", &self.enabled)
            .field("watchers", &route.watchers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Route {
    fn apply(&self) {
        let Some(control) = &self.control else { return };
        let rgba = self.last_rgba_pull.is_some_and(|t| t.elapsed() < RGBA_HOLD);
        control.set_decoding(rgba || self.watchers.is_empty());
    }
}

impl WebviewVideo {
    fn lock(&self) -> std::sync::MutexGuard<'_, Route> {
        self.route.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A call started: its frames go to the tiles that watch from now on.
    pub fn attach(&self, control: RemoteVideoControl, local: LocalVideoControl) {
        let mut route = self.lock();
        *route = Route {
            control: Some(control),
            local: Some(local),
            ..Route::default()
        };
        route.apply();
    }

    /// The call ended: every watcher's channel closes.
    pub fn detach(&self) {
        *self.lock() = Route::default();
    }

    /// `key`'s encoded frames go to `sink` from its next keyframe on (one is asked for);
    /// a second watch of the same key replaces the first.
    pub fn watch(&self, key: &str, sink: impl Into<FrameSink>) -> Result<(), AppError> {
        let sink = sink.into();
        if !self.enabled {
            return Err(AppError::call("Decoding in the window is turned off."));
        }
        if key == LOCAL {
            let mut route = self.lock();
            let local = route
                .local
                .clone()
                .ok_or_else(|| AppError::call("You are not in a call."))?;
            route.local_watcher = Some(Watcher::new(sink));
            local.request_keyframe();
            return Ok(());
        }
        let (participant, kind) = parse_remote_key(key)
            .ok_or_else(|| AppError::field("source", "Not a remote video."))?;
        let mut route = self.lock();
        let control = route
            .control
            .clone()
            .ok_or_else(|| AppError::call("You are not in a call."))?;
        route.watchers.insert(key.to_owned(), Watcher::new(sink));
        route.apply();
        control.request_keyframe(participant, kind);
        Ok(())
    }

    pub fn unwatch(&self, key: &str) {
        let mut route = self.lock();
        if key == LOCAL {
            route.local_watcher = None;
            return;
        }
        route.watchers.remove(key);
        route.apply();
    }

    /// The tile's decoder needs a keyframe (it failed, or lost frames).
    pub fn request_keyframe(&self, key: &str) -> Result<(), AppError> {
        if key == LOCAL {
            let route = self.lock();
            let local = route
                .local
                .as_ref()
                .ok_or_else(|| AppError::call("You are not in a call."))?;
            local.request_keyframe();
            return Ok(());
        }
        let (participant, kind) = parse_remote_key(key)
            .ok_or_else(|| AppError::field("source", "Not a remote video."))?;
        let route = self.lock();
        let control = route
            .control
            .as_ref()
            .ok_or_else(|| AppError::call("You are not in a call."))?;
        control.request_keyframe(participant, kind);
        Ok(())
    }

    /// A tile pulled `key`'s next RGBA frame: a remote one needs Rust to decode.
    pub fn rgba_pulled(&self, key: &str) {
        if key == LOCAL {
            return;
        }
        let mut route = self.lock();
        route.last_rgba_pull = Some(Instant::now());
        route.apply();
    }

    /// Re-decides whether Rust decodes (an RGBA reader may have gone quiet).
    pub fn tick(&self) {
        self.lock().apply();
    }

    /// Sends a frame to its watcher, if any. A watcher whose window is gone is dropped.
    pub fn deliver(&self, frame: &EncodedVideoFrame) {
        let key = match frame.kind {
            VideoKind::Camera => frame.participant_id.to_string(),
            VideoKind::Screen => screen_key(frame.participant_id),
        };
        let mut route = self.lock();
        let Some(watcher) = route.watchers.get_mut(&key) else {
            return;
        };
        if !watcher.offer(frame.is_keyframe, |seq| encode_vp8(frame, seq)) {
            route.watchers.remove(&key);
            route.apply();
        }
    }

    /// Sends a frame of our own video to the self-view's watcher, if any.
    pub fn deliver_local(&self, frame: &LocalEncodedFrame) {
        let mut route = self.lock();
        let Some(watcher) = route.local_watcher.as_mut() else {
            return;
        };
        if !watcher.offer(frame.is_keyframe, |seq| encode_local_vp8(frame, seq)) {
            route.local_watcher = None;
        }
    }

    /// Our own frames were lost on the way to the self-view: it waits for a keyframe.
    pub fn local_lagged(&self) {
        let mut route = self.lock();
        let Route {
            local,
            local_watcher,
            ..
        } = &mut *route;
        if let (Some(local), Some(watcher)) = (local.as_ref(), local_watcher.as_mut()) {
            watcher.waiting_for_keyframe = true;
            local.request_keyframe();
        }
    }

    /// Frames were lost before reaching us (this reader fell behind): every watcher
    /// waits for a keyframe, and one is asked for each.
    pub fn lagged(&self) {
        let mut route = self.lock();
        let Route {
            control, watchers, ..
        } = &mut *route;
        let control = &*control;
        for (key, watcher) in watchers.iter_mut() {
            watcher.waiting_for_keyframe = true;
            if let (Some(control), Some((participant, kind))) =
                (control.as_ref(), parse_remote_key(key))
            {
                control.request_keyframe(participant, kind);
            }
        }
    }
}

fn to_rgba(image: &I420Frame, rgba: &mut [u8]) {
    let planar = YuvPlanarImage {
        y_plane: image.y(),
        y_stride: image.width(),
        u_plane: image.u(),
        u_stride: image.chroma_width(),
        v_plane: image.v(),
        v_stride: image.chroma_width(),
        width: image.width(),
        height: image.height(),
    };
    // Our frames are BT.601 studio range (what libvpx and the capture conversion use).
    if let Err(e) = yuv::yuv420_to_rgba(
        &planar,
        rgba,
        image.width() * 4,
        YuvRange::Limited,
        YuvStandardMatrix::Bt601,
    ) {
        tracing::warn!(error = %e, "cannot convert a frame for display");
    }
}

/// `image` scaled to `width` x `height` (both even), plane by plane.
fn scale_i420(image: &I420Frame, width: u32, height: u32) -> Result<I420Frame, String> {
    use fast_image_resize::images::{Image, ImageRef};
    use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
    let mut small =
        I420Frame::black(width, height, image.timestamp_us()).map_err(|e| e.to_string())?;
    let (cw, ch) = (small.chroma_width(), small.chroma_height());
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    let mut resizer = Resizer::new();
    let (y, u, v) = small.planes_mut();
    let planes = [
        (image.y(), image.width(), image.height(), y, width, height),
        (
            image.u(),
            image.chroma_width(),
            image.chroma_height(),
            u,
            cw,
            ch,
        ),
        (
            image.v(),
            image.chroma_width(),
            image.chroma_height(),
            v,
            cw,
            ch,
        ),
    ];
    for (src, sw, sh, dst, dw, dh) in planes {
        let from = ImageRef::new(sw, sh, src, PixelType::U8).map_err(|e| e.to_string())?;
        let mut to = Image::from_slice_u8(dw, dh, dst, PixelType::U8).map_err(|e| e.to_string())?;
        resizer
            .resize(&from, &mut to, &options)
            .map_err(|e| e.to_string())?;
    }
    Ok(small)
}

/// One of our own encoded frames, 320x240, captured at 77 µs, for tests.
#[cfg(test)]
pub(crate) fn local_frame(is_keyframe: bool, data: &'static [u8]) -> LocalEncodedFrame {
    LocalEncodedFrame {
        data: data.to_vec().into(),
        is_keyframe,
        width: 320,
        height: 240,
        captured_at_us: 77,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_media::video::pattern::SyntheticVideoSource;

    #[tokio::test]
    async fn a_reader_gets_the_newest_frame_and_waits_for_the_next() {
        let board = Arc::new(FrameBoard::default());
        let mut source = SyntheticVideoSource::new(320, 240, 30).expect("pattern");
        assert!(
            board
                .next("p", 0, Duration::from_millis(20))
                .await
                .is_none()
        );
        for _ in 0..3 {
            board.publish("p", Picture::Local(Arc::new(source.next_frame())));
        }
        let newest = board.next("p", 0, WAIT).await.expect("a frame");
        assert_eq!(newest.seq, 3, "older frames are skipped, not queued");
        let waiter = {
            let board = Arc::clone(&board);
            tokio::spawn(async move { board.next("p", 3, WAIT).await.map(|f| f.seq) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        board.publish("p", Picture::Local(Arc::new(source.next_frame())));
        assert_eq!(waiter.await.expect("join"), Some(4));
    }

    #[test]
    fn the_encoded_frame_carries_its_header_and_real_colours() {
        let mut source = SyntheticVideoSource::new(320, 240, 30).expect("pattern");
        source.next_frame();
        let frame = source.next_frame();
        let marker = read_marker(&frame).expect("marker");
        let id = Uuid::new_v4();
        let remote = RemoteVideoFrame {
            participant_id: shared::ParticipantId(id),
            user_id: shared::UserId(Uuid::new_v4()),
            frame,
            marker: Some(marker),
            decoded_at_us: 0,
            kind: VideoKind::Camera,
        };
        let board_frame = BoardFrame {
            seq: 7,
            picture: Picture::Remote(Arc::new(remote)),
        };
        let bytes = encode(&board_frame, 0, 0).0;
        assert_eq!(bytes.len(), HEADER_LEN + 320 * 240 * 4);
        assert_eq!(bytes[0], 1);
        assert_eq!(u32::from_le_bytes(bytes[4..8].try_into().expect("4")), 320);
        assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().expect("4")), 240);
        assert_eq!(
            u32::from_le_bytes(bytes[12..16].try_into().expect("4")),
            marker.counter
        );
        assert_eq!(u64::from_le_bytes(bytes[16..24].try_into().expect("8")), 7);
        assert_eq!(&bytes[24..40], id.as_bytes());
        // Opaque pixels, and a picture rather than one flat colour.
        let pixels = &bytes[HEADER_LEN..];
        assert!(pixels.chunks(4).all(|p| p[3] == 255));
        let distinct: std::collections::HashSet<&[u8]> = pixels.chunks(4).collect();
        assert!(distinct.len() > 8, "{} colours", distinct.len());

        // Shown in a 160x160 box: sent at 160x120, the same picture smaller.
        let small = encode(&board_frame, 160, 160).0;
        assert_eq!(small.len(), HEADER_LEN + 160 * 120 * 4);
        assert_eq!(u32::from_le_bytes(small[4..8].try_into().expect("4")), 160);
        assert_eq!(u32::from_le_bytes(small[8..12].try_into().expect("4")), 120);
        let centre = |bytes: &[u8], w: usize, h: usize| {
            let i = HEADER_LEN + ((h / 2) * w + w / 2) * 4;
            bytes[i..i + 3].to_vec()
        };
        let (a, b) = (centre(&bytes, 320, 240), centre(&small, 160, 120));
        assert!(
            a.iter().zip(&b).all(|(x, y)| x.abs_diff(*y) < 40),
            "centre pixel {a:?} vs {b:?}"
        );
    }

    type Recorded = Arc<Mutex<Vec<Vec<u8>>>>;

    /// A channel that keeps the raw messages sent down it.
    fn recording_channel() -> (Channel<FrameBytes>, Recorded) {
        let got = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
        let sink = Arc::clone(&got);
        let channel = Channel::new(move |body| {
            if let InvokeResponseBody::Raw(bytes) = body {
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(bytes);
            }
            Ok(())
        });
        (channel, got)
    }

    #[test]
    fn a_watcher_gets_vp8_frames_from_a_keyframe_on_and_rust_stops_decoding() {
        let video = WebviewVideo::default();
        let control = RemoteVideoControl::default();
        let mut keyframe_requests = control.keyframes_for_tests();
        let id = Uuid::new_v4();
        let key = id.to_string();
        let (channel, got) = recording_channel();
        assert!(video.watch(&key, channel.clone()).is_err(), "no call yet");
        video.attach(control.clone(), LocalVideoControl::default());
        assert!(control.decoding(), "nobody decodes for us yet");
        assert!(
            video.watch("screen:nobody", channel.clone()).is_err(),
            "not a participant"
        );
        video.watch(LOCAL, channel.clone()).expect("the self-view");
        assert!(control.decoding(), "the self-view is not a remote tile");
        video.watch(&key, channel).expect("watch");
        assert!(!control.decoding(), "the webview decodes it");
        assert_eq!(
            keyframe_requests.try_recv().ok(),
            Some((shared::ParticipantId(id), VideoKind::Camera))
        );
        let frame = |is_keyframe: bool, data: &'static [u8]| EncodedVideoFrame {
            participant_id: shared::ParticipantId(id),
            user_id: shared::UserId(Uuid::new_v4()),
            kind: VideoKind::Camera,
            data: data.to_vec().into(),
            is_keyframe,
            width: 640,
            height: 480,
            received_at_us: 1_234,
        };
        video.deliver(&frame(false, b"delta"));
        assert!(
            got.lock().expect("lock").is_empty(),
            "useless before a keyframe"
        );
        video.deliver(&frame(true, b"key"));
        video.deliver(&frame(false, b"next"));
        let messages = got.lock().expect("lock").clone();
        assert_eq!(messages.len(), 2);
        let m = &messages[0];
        assert_eq!((m[0], m[1]), (1, 1), "camera, keyframe");
        assert_eq!(u32::from_le_bytes(m[4..8].try_into().expect("4")), 640);
        assert_eq!(u32::from_le_bytes(m[8..12].try_into().expect("4")), 480);
        assert_eq!(u64::from_le_bytes(m[16..24].try_into().expect("8")), 1);
        assert_eq!(&m[24..40], id.as_bytes());
        assert_eq!(u64::from_le_bytes(m[40..48].try_into().expect("8")), 1_234);
        assert_eq!(&m[ENCODED_HEADER_LEN..], b"key");
        assert_eq!(messages[1][1], 0);
        assert_eq!(
            u64::from_le_bytes(messages[1][16..24].try_into().expect("8")),
            2
        );

        // A tile that falls back to RGBA needs Rust's decoder again.
        video.rgba_pulled(&key);
        assert!(control.decoding());
        video.unwatch(&key);
        assert!(control.decoding());
        video.detach();
        assert!(video.request_keyframe(&key).is_err());
    }

    #[test]
    fn the_self_view_gets_our_encoded_frames_from_a_keyframe_on() {
        let video = WebviewVideo::default();
        let (channel, got) = recording_channel();
        assert!(video.watch(LOCAL, channel.clone()).is_err(), "no call yet");
        assert!(video.request_keyframe(LOCAL).is_err(), "no call yet");
        let control = RemoteVideoControl::default();
        video.attach(control.clone(), LocalVideoControl::default());
        video.watch(LOCAL, channel).expect("watch");
        video.request_keyframe(LOCAL).expect("a keyframe");
        let frame = local_frame;
        video.deliver_local(&frame(false, b"delta"));
        video.deliver_local(&frame(true, b"key"));
        video.deliver_local(&frame(false, b"next"));
        video.local_lagged();
        video.deliver_local(&frame(false, b"after a gap"));
        video.deliver_local(&frame(true, b"key again"));
        let messages = got.lock().expect("lock").clone();
        let payloads: Vec<&[u8]> = messages.iter().map(|m| &m[ENCODED_HEADER_LEN..]).collect();
        assert_eq!(payloads, [&b"key"[..], b"next", b"key again"]);
        let m = &messages[0];
        assert_eq!((m[0], m[1]), (0, 1), "local, keyframe");
        assert_eq!(u32::from_le_bytes(m[4..8].try_into().expect("4")), 320);
        assert_eq!(u32::from_le_bytes(m[8..12].try_into().expect("4")), 240);
        assert_eq!(&m[24..40], Uuid::nil().as_bytes());
        assert_eq!(u64::from_le_bytes(m[40..48].try_into().expect("8")), 77);
        let seqs: Vec<u64> = messages
            .iter()
            .map(|m| u64::from_le_bytes(m[16..24].try_into().expect("8")))
            .collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert!(
            control.decoding(),
            "remote decoding is not the self-view's business"
        );
        video.unwatch(LOCAL);
        video.deliver_local(&frame(true, b"nobody watches"));
        assert_eq!(got.lock().expect("lock").len(), 3);
    }

    #[test]
    fn frames_are_scaled_down_to_fit_and_never_up() {
        assert_eq!(fit(640, 480, 0, 0), (640, 480));
        assert_eq!(fit(640, 480, 1280, 960), (640, 480));
        assert_eq!(fit(640, 480, 320, 480), (320, 240));
        assert_eq!(fit(640, 480, 800, 240), (320, 240));
        assert_eq!(fit(640, 480, 1, 1), (2, 2));
        assert_eq!(fit(640, 480, 397, 297), (396, 296), "even sizes");
    }
}
