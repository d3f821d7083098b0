//! Screen sharing: a second local video track, started and stopped mid-call.
//!
//! Pipeline: [`ScreenCapture`] (a monitor or a window, full resolution up to
//! [`MAX_WIDTH`] x [`MAX_HEIGHT`]) at [`SCREEN_FPS`] -> a VP8 encoder of its own, tuned for
//! detail (many more bits per frame than the camera's, at a low rate) -> its own
//! [`Fanout`] -> one extra track per peer, whose stream id starts with
//! [`SCREEN_STREAM_PREFIX`] so the receiving side knows it from the camera. Each peer adds
//! that track (and renegotiates) when sharing starts and removes it when it stops, see
//! `peer.rs`.

use crate::call::local::{EncodedMedia, Fanout, Pacer};
use bytes::Bytes;
use confab_media::video::screen::{ScreenCapture, ScreenError, ScreenTarget};
pub use confab_media::video::screen::{list_sources, thumbnail_png};
use confab_media::video::vp8::{EncodedFrame, Vp8Config, Vp8Encoder};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::thread;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Frames a second of a shared screen: text and slides need detail, not motion.
pub const SCREEN_FPS: u32 = 5;
/// The largest frame sent; bigger screens are halved until they fit.
pub const MAX_WIDTH: u32 = 1920;
pub const MAX_HEIGHT: u32 = 1080;
/// The screen's bitrate when the link allows: 300 kbit per frame at 5 fps, ten times the
/// camera's bits per frame, so small text stays sharp after the first frames.
pub const SCREEN_KBPS: u32 = 1_500;
/// The least the screen encoder is given when the estimate is low.
pub const MIN_SCREEN_KBPS: u32 = 200;
/// Stream ids of screen tracks start with this (the rest tells one share from the next).
pub const SCREEN_STREAM_PREFIX: &str = "screen-";

/// Commands for the screen thread.
#[derive(Debug)]
pub(crate) enum ScreenControl {
    /// A peer's decoder needs a frame to start from (a new peer, a PLI or FIR).
    ForceKeyframe,
    /// Encode at this bitrate (kbit/s) from the next frame on.
    TargetBitrate(u32),
}

/// A running share: the capture thread and the task that writes to the peers' tracks.
/// Dropping the control sender ends the thread; [`ScreenShare::stop`] waits for both.
pub(crate) struct ScreenShare {
    pub control: std_mpsc::Sender<ScreenControl>,
    /// The screen tracks of every peer.
    pub fanout: Arc<Fanout>,
    thread: thread::JoinHandle<()>,
    writer: tokio::task::JoinHandle<()>,
}

impl ScreenShare {
    /// Opens `target` and starts capturing; fails when it cannot be captured.
    pub async fn start(target: ScreenTarget, kbps: u32) -> Result<Self, String> {
        let (out_tx, out_rx) = mpsc::channel::<EncodedMedia>(4);
        let (control, control_rx) = std_mpsc::channel();
        let (opened_tx, opened_rx) = oneshot::channel();
        let thread = thread::Builder::new()
            .name("confab-screen".into())
            .spawn(move || screen_thread(target, kbps, control_rx, out_tx, opened_tx))
            .map_err(|e| e.to_string())?;
        match opened_rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = tokio::task::spawn_blocking(move || thread.join()).await;
                return Err(e.to_string());
            }
            Err(_) => return Err("the screen capture thread ended".to_owned()),
        }
        let fanout = Arc::new(Fanout::default());
        let writer = tokio::spawn(crate::call::local::run_fanout(Arc::clone(&fanout), out_rx));
        Ok(Self {
            control,
            fanout,
            thread,
            writer,
        })
    }

    /// Ends capture and waits for the thread and the writer.
    pub async fn stop(self) {
        drop(self.control);
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        let _ = self.writer.await;
    }
}

/// The encoder settings for a screen of `width` x `height`.
fn encoder_config(width: u32, height: u32, kbps: u32) -> Vp8Config {
    let mut config = Vp8Config::new(width, height, SCREEN_FPS, kbps);
    // A full-HD frame every 200 ms is cheap enough on two threads at libvpx's realtime
    // speed 8, and the next frames refine what the first one blurred.
    config.cpu_used = -8;
    config.threads = if width * height > 1280 * 720 { 2 } else { 1 };
    config
}

fn screen_thread(
    target: ScreenTarget,
    kbps: u32,
    control: std_mpsc::Receiver<ScreenControl>,
    out: mpsc::Sender<EncodedMedia>,
    opened: oneshot::Sender<Result<(), ScreenError>>,
) {
    let capture = match ScreenCapture::open(target, MAX_WIDTH, MAX_HEIGHT) {
        Ok(c) => {
            let _ = opened.send(Ok(()));
            c
        }
        Err(e) => {
            let _ = opened.send(Err(e));
            return;
        }
    };
    let interval = Duration::from_secs(1) / SCREEN_FPS;
    let mut pacer = Pacer::new(interval);
    let mut kbps = kbps;
    let mut encoder: Option<Vp8Encoder> = None;
    let mut force_keyframe = false;
    loop {
        loop {
            match control.try_recv() {
                Ok(ScreenControl::ForceKeyframe) => force_keyframe = true,
                Ok(ScreenControl::TargetBitrate(k)) => {
                    kbps = k;
                    if let Some(e) = encoder.as_mut()
                        && let Err(err) = e.set_bitrate_kbps(k)
                    {
                        tracing::warn!(error = %err, k, "cannot change the screen bitrate");
                    }
                }
                Err(std_mpsc::TryRecvError::Empty) => break,
                Err(std_mpsc::TryRecvError::Disconnected) => return,
            }
        }
        let frame = match capture.capture() {
            Ok(f) => f,
            Err(e) => {
                // A window that closed or was minimized: keep trying, the user stops it.
                tracing::debug!(error = %e, %target, "screen capture failed");
                pacer.wait();
                continue;
            }
        };
        let size = (frame.width(), frame.height());
        if encoder
            .as_ref()
            .is_none_or(|e| (e.config().width, e.config().height) != size)
        {
            // First frame, or a window that changed size: a new encoder, a keyframe.
            match Vp8Encoder::new(encoder_config(size.0, size.1, kbps)) {
                Ok(e) => encoder = Some(e),
                Err(e) => {
                    tracing::error!(error = %e, "cannot create the screen's VP8 encoder");
                    return;
                }
            }
        }
        let Some(enc) = encoder.as_mut() else { return };
        if std::mem::take(&mut force_keyframe) {
            enc.force_keyframe();
        }
        let captured = Instant::now();
        match enc.encode(&frame) {
            Ok(Some(EncodedFrame { data, .. })) => {
                let media = EncodedMedia {
                    kind: RtpCodecKind::Video,
                    data: Bytes::from(data),
                    duration: interval,
                    captured,
                };
                if out.try_send(media).is_err() {
                    if out.is_closed() {
                        return;
                    }
                    enc.force_keyframe();
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "screen VP8 encoding failed"),
        }
        pacer.wait();
    }
}

/// Whether a session description says its sender sends a screen track: a media section
/// with a `screen-` stream id (`a=msid:`) whose direction includes sending.
pub(crate) fn sdp_sends_screen(sdp: &str) -> bool {
    sdp.split("\nm=").skip(1).any(|section| {
        let msid = format!("a=msid:{SCREEN_STREAM_PREFIX}");
        let has_screen = section.lines().any(|l| l.trim_end().starts_with(&msid));
        let sends = section.lines().any(|l| {
            let l = l.trim_end();
            l == "a=sendrecv" || l == "a=sendonly"
        });
        has_screen && sends
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_screen_section_counts_only_while_it_sends() {
        let head = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n";
        let camera = "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=msid:pid pid-video\r\na=sendrecv\r\n";
        let screen = |dir: &str| {
            format!(
                "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=msid:screen-7 screen-7-video\r\na={dir}\r\n"
            )
        };
        assert!(!sdp_sends_screen(&format!("{head}{camera}")));
        assert!(sdp_sends_screen(&format!(
            "{head}{camera}{}",
            screen("sendonly")
        )));
        assert!(sdp_sends_screen(&format!(
            "{head}{camera}{}",
            screen("sendrecv")
        )));
        assert!(!sdp_sends_screen(&format!(
            "{head}{camera}{}",
            screen("recvonly")
        )));
        assert!(!sdp_sends_screen(&format!(
            "{head}{camera}{}",
            screen("inactive")
        )));
    }
}
