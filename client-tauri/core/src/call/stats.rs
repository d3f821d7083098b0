//! Per-participant call statistics, computed once a second from the peer connection's
//! stats report and the receive path's own counters.

use crate::call::feedback::SendSnapshot;
use crate::call::local::SendingVideo;
use crate::call::remote::FREEZE;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use serde::Serialize;
use shared::{ParticipantId, UserId};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use webrtc::peer_connection::{RTCStatsReport, RTCStatsReportEntry};

/// What the decoders saw, updated from the receive tasks.
#[derive(Debug, Default)]
pub(crate) struct ReceiveCounters {
    inner: Mutex<Counts>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    frames_decoded: u64,
    keyframes_decoded: u64,
    audio_frames_decoded: u64,
    audio_concealed: u64,
    audio_recovered: u64,
    width: u32,
    height: u32,
    nacks_sent: u64,
    packets_repaired: u64,
    frames_given_up: u64,
    keyframe_requests_sent: u64,
    freezes: u64,
    freeze_ms: u64,
    longest_freeze_ms: u64,
    /// The longest freeze since the last stats report.
    recent_freeze_ms: u64,
    /// The test pattern's frame counter in the first and the last decoded frame.
    first_counter: Option<u32>,
    last_counter: u32,
}

impl ReceiveCounters {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A frame was decoded, `gap` after the one before.
    pub fn frame_decoded(
        &self,
        width: u32,
        height: u32,
        gap: Option<Duration>,
        keyframe: bool,
        counter: Option<u32>,
    ) {
        let mut c = self.lock();
        if let Some(counter) = counter {
            c.first_counter.get_or_insert(counter);
            c.last_counter = counter;
        }
        c.frames_decoded += 1;
        c.keyframes_decoded += u64::from(keyframe);
        c.width = width;
        c.height = height;
        if let Some(gap) = gap.filter(|g| *g > FREEZE) {
            let ms = gap.as_millis() as u64;
            c.freezes += 1;
            c.freeze_ms += ms;
            c.longest_freeze_ms = c.longest_freeze_ms.max(ms);
            c.recent_freeze_ms = c.recent_freeze_ms.max(ms);
        }
    }

    /// 20 ms of audio decoded; `concealed` of them invented by PLC, `recovered` rebuilt
    /// from FEC.
    pub fn audio_decoded(&self, concealed: u64, recovered: u64) {
        let mut c = self.lock();
        c.audio_frames_decoded += 1;
        c.audio_concealed += concealed;
        c.audio_recovered += recovered;
    }

    pub fn nacks_sent(&self, packets: u64) {
        self.lock().nacks_sent += packets;
    }

    pub fn packet_repaired(&self) {
        self.lock().packets_repaired += 1;
    }

    pub fn frames_given_up(&self, total: u64) {
        self.lock().frames_given_up = total;
    }

    pub fn keyframe_requested(&self) {
        self.lock().keyframe_requests_sent += 1;
    }

    /// The counts, and the longest freeze since the last call starts over.
    fn snapshot(&self) -> Counts {
        let mut c = self.lock();
        let counts = *c;
        c.recent_freeze_ms = 0;
        counts
    }
}

/// One second of one remote participant's connection.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct PeerStats {
    pub participant_id: ParticipantId,
    pub user_id: UserId,
    /// ICE round-trip time of the selected candidate pair, milliseconds.
    pub rtt_ms: Option<f64>,
    /// Media bitrate sent to / received from this participant, kbit/s.
    pub send_kbps: f64,
    pub recv_kbps: f64,
    /// Packets lost on the way to us (cumulative, all streams).
    pub packets_lost: i64,
    /// Interarrival jitter of their video (or audio) stream, milliseconds.
    pub jitter_ms: f64,
    /// Video frames decoded so far, and in the last second.
    pub frames_decoded: u64,
    pub fps: f64,
    /// Resolution of the last decoded frame.
    pub width: u32,
    pub height: u32,
    /// Audio frames (20 ms) decoded so far.
    pub audio_frames_decoded: u64,
    /// Of the audio frames, how many were lost and invented by Opus's loss concealment, and
    /// how many were rebuilt from the next packet's in-band FEC.
    pub audio_concealed: u64,
    pub audio_recovered: u64,
    /// Video packets we asked them to retransmit (NACK), and lost packets that arrived
    /// after all (retransmitted or reordered).
    pub nacks_sent: u64,
    pub packets_repaired: u64,
    /// Video frames the receive buffer gave up on (a gap not repaired in time).
    pub frames_given_up: u64,
    /// Keyframe requests (PLI, FIR) we sent them, and keyframes decoded.
    pub keyframe_requests_sent: u64,
    pub keyframes_decoded: u64,
    /// Gaps of over 200 ms between two decoded frames: how many, their total and the
    /// longest, milliseconds.
    pub freezes: u64,
    pub freeze_ms: u64,
    pub longest_freeze_ms: u64,
    /// The longest freeze that ended since the last report (the second before).
    pub recent_freeze_ms: u64,
    /// With the test pattern: frames the sender made from our first decoded frame to the
    /// last (from its frame counter), to compare `frames_decoded` with.
    pub pattern_frames_sent: u64,
    /// Keyframe requests they sent us.
    pub keyframe_requests_received: u64,
    /// Packets we retransmitted to them on the RTX stream (answering their NACKs).
    pub retransmitted_packets_sent: u64,
    /// The loss they report for what we send (smoothed fraction, 0..1).
    pub send_loss: f64,
    /// Our send-side bandwidth estimate towards them (TWCC + GCC), kbit/s, when running.
    pub estimate_kbps: Option<f64>,
    /// Their receiver-side estimate (REMB), kbit/s, when they send one.
    pub remb_kbps: Option<f64>,
    /// What our video encoder sends now (to every peer): target bitrate, resolution and
    /// frame rate.
    pub send_target_kbps: u32,
    pub send_width: u32,
    pub send_height: u32,
    pub send_fps: u32,
}

/// Turns successive reports into rates.
#[derive(Debug)]
pub(crate) struct StatsTracker {
    participant_id: ParticipantId,
    user_id: UserId,
    last: Option<(Instant, u64, u64, u64)>,
}

impl StatsTracker {
    pub fn new(participant_id: ParticipantId, user_id: UserId) -> Self {
        Self {
            participant_id,
            user_id,
            last: None,
        }
    }

    pub fn update(
        &mut self,
        now: Instant,
        report: &RTCStatsReport,
        counters: &ReceiveCounters,
        send: &SendSnapshot,
        sending: &SendingVideo,
    ) -> PeerStats {
        let mut bytes_sent = 0u64;
        let mut retransmitted = 0u64;
        let mut bytes_received = 0u64;
        let mut packets_lost = 0i64;
        let mut jitter_s: f64 = 0.0;
        let mut rtt_s = None;
        let mut remote_rtt_s = None;
        for entry in report.iter() {
            match entry {
                RTCStatsReportEntry::OutboundRtp(s) => {
                    bytes_sent += s.sent_rtp_stream_stats.bytes_sent;
                    retransmitted += s.retransmitted_packets_sent;
                }
                RTCStatsReportEntry::InboundRtp(s) => {
                    bytes_received += s.bytes_received;
                    let received = &s.received_rtp_stream_stats;
                    packets_lost += received.packets_lost;
                    // rtc reports jitter in RTP timestamp units, not the seconds of the
                    // W3C definition: divide by the codec's clock rate.
                    let clock_rate = match received.rtp_stream_stats.kind {
                        RtpCodecKind::Audio => 48_000.0,
                        _ => 90_000.0,
                    };
                    jitter_s = jitter_s.max(received.jitter / clock_rate);
                }
                RTCStatsReportEntry::IceCandidatePair(p)
                    if p.nominated && p.current_round_trip_time > 0.0 =>
                {
                    rtt_s = Some(p.current_round_trip_time);
                }
                RTCStatsReportEntry::RemoteInboundRtp(r) if r.round_trip_time > 0.0 => {
                    remote_rtt_s = Some(r.round_trip_time);
                }
                _ => {}
            }
        }
        let counts = counters.snapshot();
        let (send_kbps, recv_kbps, fps) = match self.last {
            Some((at, sent, received, frames)) => {
                let secs = now.duration_since(at).as_secs_f64().max(1e-3);
                (
                    bytes_sent.saturating_sub(sent) as f64 * 8.0 / 1000.0 / secs,
                    bytes_received.saturating_sub(received) as f64 * 8.0 / 1000.0 / secs,
                    counts.frames_decoded.saturating_sub(frames) as f64 / secs,
                )
            }
            None => (0.0, 0.0, 0.0),
        };
        self.last = Some((now, bytes_sent, bytes_received, counts.frames_decoded));
        PeerStats {
            participant_id: self.participant_id,
            user_id: self.user_id,
            rtt_ms: rtt_s.or(remote_rtt_s).map(|s| s * 1000.0),
            send_kbps,
            recv_kbps,
            packets_lost,
            jitter_ms: jitter_s * 1000.0,
            frames_decoded: counts.frames_decoded,
            fps,
            width: counts.width,
            height: counts.height,
            audio_frames_decoded: counts.audio_frames_decoded,
            audio_concealed: counts.audio_concealed,
            audio_recovered: counts.audio_recovered,
            nacks_sent: counts.nacks_sent,
            packets_repaired: counts.packets_repaired,
            frames_given_up: counts.frames_given_up,
            keyframe_requests_sent: counts.keyframe_requests_sent,
            keyframes_decoded: counts.keyframes_decoded,
            freezes: counts.freezes,
            freeze_ms: counts.freeze_ms,
            longest_freeze_ms: counts.longest_freeze_ms,
            recent_freeze_ms: counts.recent_freeze_ms,
            pattern_frames_sent: counts.first_counter.map_or(0, |first| {
                u64::from(counts.last_counter.wrapping_sub(first)) + 1
            }),
            keyframe_requests_received: send.keyframe_requests,
            retransmitted_packets_sent: retransmitted,
            send_loss: send.loss,
            estimate_kbps: send.estimate_bps.map(|b| b / 1000.0),
            remb_kbps: send.remb_bps.map(|b| b / 1000.0),
            send_target_kbps: sending.bitrate_kbps,
            send_width: sending.width,
            send_height: sending.height,
            send_fps: sending.fps,
        }
    }
}
