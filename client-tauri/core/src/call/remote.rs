//! Remote media: track -> depacketizer -> decoder -> sink, one task per remote track.
//! Sinks are broadcast channels, which keep the newest frames and make a slow consumer
//! skip the oldest.

use crate::call::assembler::Vp8Assembler;
use crate::call::stats::ReceiveCounters;
use confab_media::audio::mix::{MixInput, Mixer};
use confab_media::audio::opus::OpusDecoder;
use confab_media::video::pattern::{Marker, read_marker};
use confab_media::video::vp8::Vp8Decoder;
use confab_media::{I420Frame, unix_time_us};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use shared::{ParticipantId, UserId};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

/// A decoded frame from a remote participant.
#[derive(Debug)]
pub struct RemoteVideoFrame {
    pub participant_id: ParticipantId,
    pub user_id: UserId,
    pub frame: I420Frame,
    /// The test pattern's frame counter and capture time, when the sender sends it.
    pub marker: Option<Marker>,
    /// When it was decoded, microseconds since the Unix epoch.
    pub decoded_at_us: u64,
}

/// 20 ms of decoded audio from a remote participant (48 kHz mono).
#[derive(Debug)]
pub struct RemoteAudio {
    pub participant_id: ParticipantId,
    pub user_id: UserId,
    pub samples: Vec<i16>,
}

/// Where decoded media goes.
#[derive(Clone)]
pub(crate) struct Sinks {
    pub video: broadcast::Sender<Arc<RemoteVideoFrame>>,
    pub audio: broadcast::Sender<Arc<RemoteAudio>>,
    /// Remote audio is mixed into the current speaker's mixer (it changes when the user
    /// switches speakers).
    pub mixer: watch::Receiver<Mixer>,
}

/// Ask for a keyframe at most this often while the decoder cannot decode.
const PLI_INTERVAL: Duration = Duration::from_millis(500);

pub(crate) async fn receive_video(
    track: Arc<dyn TrackRemote>,
    who: (ParticipantId, UserId),
    sinks: Sinks,
    counters: Arc<ReceiveCounters>,
) {
    let mut decoder = match Vp8Decoder::new() {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "cannot create the VP8 decoder");
            return;
        }
    };
    let mut assembler = Vp8Assembler::default();
    let mut last_pli: Option<Instant> = None;
    let mut need_keyframe = true;
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(packet) = event else {
            continue;
        };
        let media_ssrc = packet.header.ssrc;
        for frame in assembler.push(packet) {
            // A gap means the frames that follow reference something we never decoded.
            if frame.after_loss {
                need_keyframe = true;
            }
            // Bit 0 of a VP8 frame header is 0 for a keyframe (RFC 6386, 9.1).
            let is_keyframe = frame.data.first().is_some_and(|b| b & 0x01 == 0);
            if need_keyframe && !is_keyframe {
                continue;
            }
            match decoder.decode(&frame.data, 0) {
                Ok(Some(frame)) => {
                    need_keyframe = false;
                    let decoded_at_us = unix_time_us();
                    counters.frame_decoded(frame.width(), frame.height());
                    let marker = read_marker(&frame);
                    // No receivers is fine: nobody is watching this participant right now.
                    let _ = sinks.video.send(Arc::new(RemoteVideoFrame {
                        participant_id: who.0,
                        user_id: who.1,
                        frame,
                        marker,
                        decoded_at_us,
                    }));
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "VP8 decoding failed; waiting for a keyframe");
                    need_keyframe = true;
                }
            }
        }
        if need_keyframe && last_pli.is_none_or(|t| t.elapsed() >= PLI_INTERVAL) {
            last_pli = Some(Instant::now());
            let pli = PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc,
            };
            if track.write_rtcp(vec![Box::new(pli)]).await.is_err() {
                break;
            }
        }
    }
}

/// Frames of packet loss concealed at most before decoding resumes (100 ms).
const MAX_CONCEALED: u16 = 5;

pub(crate) async fn receive_audio(
    track: Arc<dyn TrackRemote>,
    who: (ParticipantId, UserId),
    sinks: Sinks,
    counters: Arc<ReceiveCounters>,
) {
    let mut decoder = match OpusDecoder::new() {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "cannot create the Opus decoder");
            return;
        }
    };
    let mut mixer = sinks.mixer.clone();
    let mut speaker: MixInput = mixer.borrow_and_update().add_input();
    let mut last_seq: Option<u16> = None;
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(packet) = event else {
            continue;
        };
        let seq = packet.header.sequence_number;
        let missing = last_seq.map_or(0, |last| seq.wrapping_sub(last).wrapping_sub(1));
        if last_seq.is_some_and(|last| seq.wrapping_sub(last) > u16::MAX / 2) {
            continue; // a late duplicate or reordered packet: already concealed
        }
        last_seq = Some(seq);
        let mut pcm = Vec::new();
        if missing > 0 && missing <= MAX_CONCEALED {
            for i in 0..missing {
                // The packet after the gap carries FEC for the last lost one.
                let recovered = if i + 1 == missing {
                    decoder.recover(&packet.payload)
                } else {
                    decoder.conceal()
                };
                if let Ok(samples) = recovered {
                    pcm.extend_from_slice(&samples);
                }
            }
        }
        match decoder.decode(&packet.payload) {
            Ok(samples) => pcm.extend_from_slice(&samples),
            Err(e) => {
                tracing::debug!(error = %e, "Opus decoding failed");
                continue;
            }
        }
        counters.audio_decoded();
        if mixer.has_changed().unwrap_or(false) {
            speaker = mixer.borrow_and_update().add_input();
        }
        speaker.push(&pcm);
        let _ = sinks.audio.send(Arc::new(RemoteAudio {
            participant_id: who.0,
            user_id: who.1,
            samples: pcm,
        }));
    }
}
