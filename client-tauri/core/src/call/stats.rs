//! Per-participant call statistics, computed once a second from the peer connection's
//! stats report and the receive path's own counters.

use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use serde::Serialize;
use shared::{ParticipantId, UserId};
use std::sync::Mutex;
use std::time::Instant;
use webrtc::peer_connection::{RTCStatsReport, RTCStatsReportEntry};

/// What the decoders saw, updated from the receive tasks.
#[derive(Debug, Default)]
pub(crate) struct ReceiveCounters {
    inner: Mutex<Counts>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    frames_decoded: u64,
    audio_frames_decoded: u64,
    width: u32,
    height: u32,
}

impl ReceiveCounters {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn frame_decoded(&self, width: u32, height: u32) {
        let mut c = self.lock();
        c.frames_decoded += 1;
        c.width = width;
        c.height = height;
    }

    pub fn audio_decoded(&self) {
        self.lock().audio_frames_decoded += 1;
    }

    fn snapshot(&self) -> Counts {
        *self.lock()
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
    ) -> PeerStats {
        let mut bytes_sent = 0u64;
        let mut bytes_received = 0u64;
        let mut packets_lost = 0i64;
        let mut jitter_s: f64 = 0.0;
        let mut rtt_s = None;
        let mut remote_rtt_s = None;
        for entry in report.iter() {
            match entry {
                RTCStatsReportEntry::OutboundRtp(s) => {
                    bytes_sent += s.sent_rtp_stream_stats.bytes_sent
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
        }
    }
}
