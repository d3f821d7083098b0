//! What the receivers of our media tell us, and what the encoders do about it.
//!
//! Each peer connection's [`FeedbackInterceptor`] reads the RTCP the remote end sends about
//! our streams: keyframe requests (PLI, FIR) make the VP8 encoder's next frame a keyframe
//! at once; the loss in receiver reports tells the Opus encoder how much in-band FEC to
//! plan for; REMB and our own send-side estimate (`bwe.rs`) set the video bitrate. One
//! [`SendFeedback`] per call: the encoders are shared by every peer, so it combines the
//! peers (the worst loss, the lowest estimate).

use crate::call::local::{AudioControl, VideoControl};
use crate::call::screen::{MIN_SCREEN_KBPS, SCREEN_KBPS, ScreenControl};
use rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::reception_report::ReceptionReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::sansio;
use shared::ParticipantId;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Per-peer state of what they report.
#[derive(Debug, Default, Clone, Copy)]
struct PeerFeedback {
    /// Smoothed fraction of our audio (or, without audio reports, video) packets lost.
    loss: f64,
    /// Their receiver-side estimate (REMB), bit/s.
    remb_bps: Option<f64>,
    /// Our send-side estimate towards them (TWCC + GCC), bit/s.
    estimate_bps: Option<f64>,
    keyframe_requests: u64,
}

/// The call's combination of every peer's feedback.
#[derive(Debug)]
pub(crate) struct SendFeedback {
    video: Option<std_mpsc::Sender<VideoControl>>,
    audio: Option<std_mpsc::Sender<AudioControl>>,
    inner: Mutex<Inner>,
    screen: Mutex<ScreenFeedback>,
}

/// The screen share's encoder (while we share) and its streams' SSRCs, whose keyframe
/// requests go to it rather than to the camera's.
#[derive(Debug, Default)]
struct ScreenFeedback {
    control: Option<std_mpsc::Sender<ScreenControl>>,
    ssrcs: HashSet<u32>,
}

#[derive(Debug, Default)]
struct Inner {
    peers: HashMap<ParticipantId, PeerFeedback>,
    /// The expected loss (percent) the Opus encoder was last told.
    told_loss: Option<u8>,
    /// The video bitrate (kbit/s) the encoder was last told.
    told_kbps: Option<u32>,
}

/// What the stats show about the sending side for one peer.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct SendSnapshot {
    pub loss: f64,
    pub remb_bps: Option<f64>,
    pub estimate_bps: Option<f64>,
    pub keyframe_requests: u64,
}

/// Loss changes below this (percentage points) do not retune the Opus encoder.
const LOSS_STEP: u8 = 2;
/// Smoothing of reported loss (weight of the newest report).
const LOSS_ALPHA: f64 = 0.3;

impl SendFeedback {
    pub fn new(
        video: Option<std_mpsc::Sender<VideoControl>>,
        audio: Option<std_mpsc::Sender<AudioControl>>,
    ) -> Self {
        Self {
            video,
            audio,
            inner: Mutex::new(Inner::default()),
            screen: Mutex::new(ScreenFeedback::default()),
        }
    }

    fn screen(&self) -> std::sync::MutexGuard<'_, ScreenFeedback> {
        self.screen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The screen share's encoder from now on (`None`: sharing stopped).
    pub fn set_screen(&self, control: Option<std_mpsc::Sender<ScreenControl>>) {
        self.screen().control = control;
        self.lock().told_kbps = None;
        self.retune_video();
    }

    pub fn add_screen_ssrc(&self, ssrc: u32) {
        self.screen().ssrcs.insert(ssrc);
    }

    pub fn remove_screen_ssrc(&self, ssrc: u32) {
        self.screen().ssrcs.remove(&ssrc);
    }

    fn is_screen(&self, ssrc: u32) -> bool {
        self.screen().ssrcs.contains(&ssrc)
    }

    /// A peer needs a screen keyframe (it connected, or asked with a PLI or FIR).
    pub fn screen_keyframe_requested(&self) {
        if let Some(control) = &self.screen().control {
            let _ = control.send(ScreenControl::ForceKeyframe);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A PLI or FIR from `peer`: the next video frame is a keyframe.
    pub fn keyframe_requested(&self, peer: ParticipantId) {
        self.lock().peers.entry(peer).or_default().keyframe_requests += 1;
        if let Some(video) = &self.video {
            let _ = video.send(VideoControl::ForceKeyframe);
        }
    }

    /// A reception report from `peer` about one of our streams (`fraction_lost` / 256).
    pub fn loss_reported(&self, peer: ParticipantId, fraction_lost: u8) {
        let fraction = f64::from(fraction_lost) / 256.0;
        let mut inner = self.lock();
        let entry = inner.peers.entry(peer).or_default();
        entry.loss = entry.loss * (1.0 - LOSS_ALPHA) + fraction * LOSS_ALPHA;
        let worst = inner.peers.values().map(|p| p.loss).fold(0.0, f64::max);
        // libopus plans FEC for the loss it is told; tell it a little more than measured
        // (at least 1 % while anything is lost) so the FEC is there for the next loss.
        let percent = if worst > 0.002 {
            ((worst * 100.0).ceil() as u8 + 1).min(30)
        } else {
            0
        };
        if inner
            .told_loss
            .is_none_or(|t| t.abs_diff(percent) >= LOSS_STEP || (percent == 0) != (t == 0))
        {
            inner.told_loss = Some(percent);
            if let Some(audio) = &self.audio {
                let _ = audio.send(AudioControl::ExpectedLoss(percent));
            }
        }
    }

    /// The remote's own bandwidth estimate for our streams (REMB).
    pub fn remb_reported(&self, peer: ParticipantId, bps: f64) {
        self.lock().peers.entry(peer).or_default().remb_bps = Some(bps);
        self.retune_video();
    }

    /// Our send-side estimate towards `peer` changed.
    pub fn estimate_changed(&self, peer: ParticipantId, bps: f64) {
        self.lock().peers.entry(peer).or_default().estimate_bps = Some(bps);
        self.retune_video();
    }

    pub fn remove(&self, peer: ParticipantId) {
        self.lock().peers.remove(&peer);
        self.retune_video();
    }

    pub fn snapshot(&self, peer: ParticipantId) -> SendSnapshot {
        let inner = self.lock();
        let p = inner.peers.get(&peer).copied().unwrap_or_default();
        SendSnapshot {
            loss: p.loss,
            remb_bps: p.remb_bps,
            estimate_bps: p.estimate_bps,
            keyframe_requests: p.keyframe_requests,
        }
    }

    /// Sets the video encoder to what the most constrained peer can take.
    fn retune_video(&self) {
        let mut inner = self.lock();
        let available = inner
            .peers
            .values()
            .filter_map(|p| match (p.estimate_bps, p.remb_bps) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            })
            .fold(None, |acc: Option<f64>, x| {
                Some(acc.map_or(x, |a| a.min(x)))
            });
        let Some(available) = available else {
            return;
        };
        let mut kbps = video_kbps_for(available);
        if let Some(screen) = &self.screen().control {
            // While sharing, the screen gets most of the video budget (detail matters
            // more there), the camera what is left, each within its own range.
            let screen_kbps = ((f64::from(kbps) * 0.6) as u32).clamp(MIN_SCREEN_KBPS, SCREEN_KBPS);
            let _ = screen.send(ScreenControl::TargetBitrate(screen_kbps));
            kbps = kbps.saturating_sub(screen_kbps).max(MIN_VIDEO_KBPS);
        }
        if inner
            .told_kbps
            .is_none_or(|t| t.abs_diff(kbps) * 20 >= t.max(1))
        {
            inner.told_kbps = Some(kbps);
            if let Some(video) = &self.video {
                let _ = video.send(VideoControl::TargetBitrate(kbps));
            }
        }
    }
}

/// Audio's share of an estimate: Opus at 32 kbit/s plus RTP/SRTP/UDP overhead (50
/// packets a second), kept out of what video may use so audio is never starved.
pub(crate) const AUDIO_RESERVE_BPS: f64 = 60_000.0;
/// The video bitrate range.
pub(crate) const MIN_VIDEO_KBPS: u32 = 100;
pub(crate) const MAX_VIDEO_KBPS: u32 = 2_500;

/// The video encoder's target for an estimate of `available` bit/s: what is left after
/// audio, less headroom for packet overhead, retransmissions and keyframes.
pub(crate) fn video_kbps_for(available: f64) -> u32 {
    let video = (available - AUDIO_RESERVE_BPS).max(0.0) * 0.85;
    ((video / 1000.0) as u32).clamp(MIN_VIDEO_KBPS, MAX_VIDEO_KBPS)
}

/// An interceptor that reads the RTCP the remote sends about our streams (keyframe
/// requests, reception reports, REMB) and hands it to the call's [`SendFeedback`].
///
/// An interceptor because that is where rtc 0.21 lets inbound RTCP be seen: its chain ends
/// in a terminus that drops every RTCP packet no interceptor marked for the application,
/// so `TrackLocal::poll` never sees a PLI; and a compound packet is routed to a track by
/// its first packet's SSRC, so a sender report (which names its sender's own stream) would
/// reach the receiving track rather than ours. Here every packet is seen, and passed on.
pub(crate) struct FeedbackInterceptor {
    peer: ParticipantId,
    feedback: Arc<SendFeedback>,
    /// Our streams on this connection: SSRC -> is it video.
    local: HashMap<u32, bool>,
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl FeedbackInterceptor {
    pub fn new(peer: ParticipantId, feedback: Arc<SendFeedback>) -> Self {
        Self {
            peer,
            feedback,
            local: HashMap::new(),
            read_queue: VecDeque::new(),
            write_queue: VecDeque::new(),
        }
    }

    fn is_ours(&self, ssrc: u32) -> bool {
        self.local.contains_key(&ssrc)
    }

    fn is_our_video(&self, ssrc: u32) -> bool {
        self.local.get(&ssrc).copied().unwrap_or(false)
    }

    fn read_reports(&self, reports: &[ReceptionReport]) {
        for r in reports.iter().filter(|r| self.is_ours(r.ssrc)) {
            self.feedback.loss_reported(self.peer, r.fraction_lost);
        }
    }

    #[allow(clippy::borrowed_box)]
    fn read(&self, packet: &Box<dyn rtc::rtcp::Packet>) {
        let any = packet.as_any();
        if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
            if self.feedback.is_screen(pli.media_ssrc) {
                self.feedback.screen_keyframe_requested();
            } else if self.is_our_video(pli.media_ssrc) {
                self.feedback.keyframe_requested(self.peer);
            }
        } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
            if fir.fir.iter().any(|e| self.feedback.is_screen(e.ssrc)) {
                self.feedback.screen_keyframe_requested();
            } else if fir.fir.iter().any(|e| self.is_our_video(e.ssrc)) {
                self.feedback.keyframe_requested(self.peer);
            }
        } else if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
            self.read_reports(&rr.reports);
        } else if let Some(sr) = any.downcast_ref::<SenderReport>() {
            self.read_reports(&sr.reports);
        } else if let Some(remb) = any.downcast_ref::<ReceiverEstimatedMaximumBitrate>()
            && remb.ssrcs.iter().any(|s| self.is_ours(*s))
        {
            self.feedback
                .remb_reported(self.peer, f64::from(remb.bitrate));
        }
    }
}

impl sansio::Protocol<TaggedPacket, TaggedPacket, ()> for FeedbackInterceptor {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            for packet in packets {
                self.read(packet);
            }
        }
        self.read_queue.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write_queue.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write_queue.pop_front()
    }
}

impl Interceptor for FeedbackInterceptor {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        let video = info.mime_type.to_ascii_lowercase().starts_with("video/");
        self.local.insert(info.ssrc, video);
    }
    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.local.remove(&info.ssrc);
    }
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn loss_reaches_the_audio_encoder_in_steps_and_keyframe_requests_the_video_encoder() {
        let (vtx, vrx) = std_mpsc::channel();
        let (atx, arx) = std_mpsc::channel();
        let f = SendFeedback::new(Some(vtx), Some(atx));
        let a = ParticipantId::new();
        f.keyframe_requested(a);
        assert!(matches!(vrx.try_recv(), Ok(VideoControl::ForceKeyframe)));
        // 5 % loss reported again and again converges on telling Opus about 6 %.
        for _ in 0..30 {
            f.loss_reported(a, 13);
        }
        let told: Vec<u8> = arx
            .try_iter()
            .map(|c| match c {
                AudioControl::ExpectedLoss(p) => p,
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(told.len() >= 2 && told.len() < 10, "{told:?}");
        assert!((5..=7).contains(told.last().unwrap()), "{told:?}");
        assert_eq!(f.snapshot(a).keyframe_requests, 1);
    }

    #[test]
    fn the_lowest_estimate_sets_the_video_bitrate_with_audio_kept_out() {
        let (vtx, vrx) = std_mpsc::channel();
        let f = SendFeedback::new(Some(vtx), None);
        let (a, b) = (ParticipantId::new(), ParticipantId::new());
        f.estimate_changed(a, 2_000_000.0);
        f.estimate_changed(b, 500_000.0);
        let last = vrx.try_iter().last().unwrap();
        assert!(
            matches!(last, VideoControl::TargetBitrate(kbps) if kbps == video_kbps_for(500_000.0))
        );
        assert_eq!(video_kbps_for(500_000.0), 374);
        assert_eq!(video_kbps_for(50_000.0), MIN_VIDEO_KBPS);
        assert_eq!(video_kbps_for(10e6), MAX_VIDEO_KBPS);
        f.remove(b);
        let last = vrx.try_iter().last().unwrap();
        assert!(matches!(last, VideoControl::TargetBitrate(kbps) if kbps == video_kbps_for(2e6)));
    }
}
