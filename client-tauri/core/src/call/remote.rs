//! Remote media: track -> depacketizer -> decoder -> sink, one task per remote track.
//! Sinks are broadcast channels, which keep the newest frames and make a slow consumer
//! skip the oldest.

use crate::call::assembler::Vp8Assembler;
use crate::call::nack::{NackTracker, SeqUnwrapper};
use crate::call::stats::ReceiveCounters;
use bytes::Bytes;
use confab_media::audio::mix::{MixInput, Mixer};
use confab_media::audio::opus::OpusDecoder;
use confab_media::video::pattern::{Marker, read_marker};
use confab_media::video::vp8::Vp8Decoder;
use confab_media::{I420Frame, unix_time_us};
use rtc::rtcp::payload_feedbacks::full_intra_request::{FirEntry, FullIntraRequest};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
    TransportLayerNack, nack_pairs_from_sequence_numbers,
};
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
    /// Their camera or their shared screen.
    pub kind: VideoKind,
}

/// A remote VP8 frame as reassembled from its packets, before decoding: for a consumer
/// that decodes it itself (the desktop app hands these to its webview, a few KB each
/// instead of a decoded picture). Only frames the decoder could use are sent: the
/// stream restarts at a keyframe after a loss, so a consumer that saw every frame since
/// a keyframe can decode each one.
#[derive(Debug)]
pub struct EncodedVideoFrame {
    pub participant_id: ParticipantId,
    pub user_id: UserId,
    pub kind: VideoKind,
    /// The VP8 frame (RFC 6386), as the encoder made it.
    pub data: Bytes,
    pub is_keyframe: bool,
    /// The picture's size, from the last keyframe's header.
    pub width: u32,
    pub height: u32,
    /// When it was reassembled, microseconds since the Unix epoch.
    pub received_at_us: u64,
}

/// How the call's video receivers work, shared by all of them: whether they decode
/// (a consumer that decodes the encoded frames itself turns it off) and keyframe
/// requests on a consumer's behalf. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RemoteVideoControl {
    decode: Arc<watch::Sender<bool>>,
    keyframes: broadcast::Sender<(ParticipantId, VideoKind)>,
    encoded: broadcast::Sender<Arc<EncodedVideoFrame>>,
}

/// Encoded frames a slow consumer may fall behind by (two seconds at 30 fps) before it
/// loses the oldest and must wait for a keyframe.
const ENCODED_SINK_FRAMES: usize = 60;

impl Default for RemoteVideoControl {
    fn default() -> Self {
        Self {
            decode: Arc::new(watch::channel(true).0),
            keyframes: broadcast::channel(16).0,
            encoded: broadcast::channel(ENCODED_SINK_FRAMES).0,
        }
    }
}

impl RemoteVideoControl {
    /// Decode remote video (the default) or only pass the encoded frames on. While it is
    /// off the stats still count every frame that would have been decoded, its size
    /// (from the keyframes' headers) and the gaps between them (freezes), but not the
    /// test pattern's counter, which needs the picture.
    pub fn set_decoding(&self, on: bool) {
        self.decode
            .send_if_modified(|v| std::mem::replace(v, on) != on);
    }

    pub fn decoding(&self) -> bool {
        *self.decode.borrow()
    }

    /// Asks `participant`'s sender for a keyframe of that video (a PLI, at the usual
    /// limited rate), for a consumer that starts decoding or lost its decoder's state.
    pub fn request_keyframe(&self, participant: ParticipantId, kind: VideoKind) {
        let _ = self.keyframes.send((participant, kind));
    }

    /// The keyframe requests consumers make (for a test to see them).
    #[doc(hidden)]
    pub fn keyframes_for_tests(&self) -> broadcast::Receiver<(ParticipantId, VideoKind)> {
        self.keyframes.subscribe()
    }

    /// Remote video before decoding (see [`EncodedVideoFrame`]).
    pub fn encoded_frames(&self) -> broadcast::Receiver<Arc<EncodedVideoFrame>> {
        self.encoded.subscribe()
    }
}

/// The size in a VP8 keyframe's header (RFC 6386, 9.1), `None` for another frame.
pub fn vp8_keyframe_size(data: &[u8]) -> Option<(u32, u32)> {
    let header = data.get(..10)?;
    let keyframe = header[0] & 1 == 0;
    if !keyframe || header[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let dim = |lo: u8, hi: u8| u32::from(u16::from_le_bytes([lo, hi]) & 0x3fff);
    Some((dim(header[6], header[7]), dim(header[8], header[9])))
}

/// Which of a participant's video tracks a frame comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum VideoKind {
    #[default]
    Camera,
    /// A screen or window they share (`call::screen`).
    Screen,
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
    /// Encoded frames, whether to decode, keyframe requests from consumers.
    pub control: RemoteVideoControl,
}

/// What the receive path needs to know about the connection, from the peer task.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct LinkInfo {
    /// Round-trip time (ICE candidate pair), or a guess until it is measured.
    pub rtt: Duration,
}

impl Default for LinkInfo {
    fn default() -> Self {
        Self {
            rtt: Duration::from_millis(50),
        }
    }
}

impl LinkInfo {
    /// How long the jitter buffer waits for a missing packet: long enough for a gap to be
    /// noticed (up to a frame interval), asked for and answered a few times, short enough
    /// that giving up and asking for a keyframe is not slower than waiting.
    fn receive_wait(&self) -> Duration {
        (self.rtt * 3 + Duration::from_millis(100))
            .clamp(Duration::from_millis(150), Duration::from_millis(600))
    }

    /// Least time between two keyframe requests: one round trip plus the encode and send
    /// of a keyframe, so a storm of losses asks a few times a second at most.
    fn keyframe_request_interval(&self) -> Duration {
        (self.rtt * 2 + Duration::from_millis(150))
            .clamp(Duration::from_millis(250), Duration::from_secs(2))
    }
}

/// Every this many unanswered keyframe requests, ask with a FIR instead of a PLI (a
/// sender may ignore one or the other).
const FIR_EVERY: u32 = 3;

/// A gap between two decoded frames longer than this is a freeze (the measure).
pub(crate) const FREEZE: Duration = Duration::from_millis(200);

pub(crate) async fn receive_video(
    track: Arc<dyn TrackRemote>,
    who: (ParticipantId, UserId),
    sinks: Sinks,
    counters: Arc<ReceiveCounters>,
    mut link: watch::Receiver<LinkInfo>,
    kind: VideoKind,
) {
    let mut decoder = match Vp8Decoder::new() {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "cannot create the VP8 decoder");
            return;
        }
    };
    let mut info = *link.borrow_and_update();
    let mut assembler = Vp8Assembler::default();
    assembler.set_wait(info.receive_wait());
    let mut unwrapper = SeqUnwrapper::default();
    let mut nacks = NackTracker::default();
    let sender_ssrc = rand::random::<u32>();
    let mut media_ssrc = None;
    let mut last_request: Option<Instant> = None;
    let mut unanswered_requests = 0u32;
    let mut fir_seq = 0u8;
    let mut need_keyframe = true;
    let mut last_decoded: Option<Instant> = None;
    let control = sinks.control.clone();
    let mut keyframe_wanted = control.keyframes.subscribe();
    // A consumer of the encoded frames asked for a keyframe (it is starting, or its own
    // decoder failed); and our decoder was off, so it must start over at a keyframe.
    let mut asked_for_keyframe = false;
    let mut decoder_behind = false;
    let mut size = (0, 0);
    loop {
        let deadline = [assembler.deadline(), nacks.deadline(info.rtt)]
            .into_iter()
            .flatten()
            .min();
        let mut frames = Vec::new();
        tokio::select! {
            event = track.poll() => {
                let Some(event) = event else { break };
                let TrackRemoteEvent::OnRtpPacket(packet) = event else {
                    continue;
                };
                let now = Instant::now();
                media_ssrc = Some(packet.header.ssrc);
                let ext = unwrapper.unwrap(packet.header.sequence_number);
                if nacks.on_packet(ext, now) {
                    counters.packet_repaired();
                }
                frames = assembler.push(ext, packet, now);
            }
            () = async { match deadline { Some(d) => tokio::time::sleep_until(d.into()).await, None => std::future::pending().await } } => {
                frames = assembler.poll(Instant::now());
            }
            Ok(()) = link.changed() => {
                info = *link.borrow_and_update();
                assembler.set_wait(info.receive_wait());
            }
            wanted = keyframe_wanted.recv() => match wanted {
                Ok(wanted) => asked_for_keyframe |= wanted == (who.0, kind),
                Err(broadcast::error::RecvError::Lagged(_)) => asked_for_keyframe = true,
                Err(broadcast::error::RecvError::Closed) => {}
            },
        }
        for frame in frames {
            // A gap means the frames that follow reference something we never decoded.
            if frame.after_loss {
                need_keyframe = true;
            }
            if need_keyframe && !frame.is_keyframe {
                continue;
            }
            if let Some(s) = frame
                .is_keyframe
                .then(|| vp8_keyframe_size(&frame.data))
                .flatten()
            {
                size = s;
            }
            if frame.is_keyframe {
                asked_for_keyframe = false;
            }
            if control.encoded.receiver_count() > 0 {
                let _ = control.encoded.send(Arc::new(EncodedVideoFrame {
                    participant_id: who.0,
                    user_id: who.1,
                    kind,
                    data: frame.data.clone(),
                    is_keyframe: frame.is_keyframe,
                    width: size.0,
                    height: size.1,
                    received_at_us: unix_time_us(),
                }));
            }
            if !control.decoding() {
                // Someone else decodes: count the frame as ours would have been.
                decoder_behind = true;
                need_keyframe = false;
                if frame.is_keyframe {
                    unanswered_requests = 0;
                }
                let now = Instant::now();
                let gap = last_decoded.map(|t| now.duration_since(t));
                last_decoded = Some(now);
                counters.frame_decoded(size.0, size.1, gap, frame.is_keyframe, None);
                continue;
            }
            if decoder_behind {
                if !frame.is_keyframe {
                    continue;
                }
                decoder_behind = false;
            }
            match decoder.decode(&frame.data, 0) {
                Ok(Some(decoded)) => {
                    if frame.is_keyframe {
                        unanswered_requests = 0;
                    }
                    need_keyframe = false;
                    let now = Instant::now();
                    let gap = last_decoded.map(|t| now.duration_since(t));
                    last_decoded = Some(now);
                    let decoded_at_us = unix_time_us();
                    let marker = read_marker(&decoded);
                    counters.frame_decoded(
                        decoded.width(),
                        decoded.height(),
                        gap,
                        frame.is_keyframe,
                        marker.map(|m| m.counter),
                    );
                    // No receivers is fine: nobody is watching this participant right now.
                    let _ = sinks.video.send(Arc::new(RemoteVideoFrame {
                        participant_id: who.0,
                        user_id: who.1,
                        frame: decoded,
                        marker,
                        decoded_at_us,
                        kind,
                    }));
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "VP8 decoding failed; waiting for a keyframe");
                    need_keyframe = true;
                }
            }
        }
        counters.frames_given_up(assembler.given_up);
        if let Some(from) = assembler.wanted_from() {
            nacks.forget_before(from);
        }
        let Some(media_ssrc) = media_ssrc else {
            continue;
        };
        let now = Instant::now();
        let mut rtcp: Vec<Box<dyn rtc::rtcp::Packet>> = Vec::new();
        let due = nacks.due(now, info.rtt, info.receive_wait());
        if !due.is_empty() {
            counters.nacks_sent(due.len() as u64);
            rtcp.push(Box::new(TransportLayerNack {
                sender_ssrc,
                media_ssrc,
                nacks: nack_pairs_from_sequence_numbers(&due),
            }));
        }
        if (need_keyframe || asked_for_keyframe || (decoder_behind && control.decoding()))
            && last_request
                .is_none_or(|t| now.duration_since(t) >= info.keyframe_request_interval())
        {
            last_request = Some(now);
            unanswered_requests += 1;
            counters.keyframe_requested();
            if unanswered_requests.is_multiple_of(FIR_EVERY) {
                fir_seq = fir_seq.wrapping_add(1);
                rtcp.push(Box::new(FullIntraRequest {
                    sender_ssrc,
                    media_ssrc,
                    fir: vec![FirEntry {
                        ssrc: media_ssrc,
                        sequence_number: fir_seq,
                    }],
                }));
            } else {
                rtcp.push(Box::new(PictureLossIndication {
                    sender_ssrc,
                    media_ssrc,
                }));
            }
        }
        if !rtcp.is_empty() && track.write_rtcp(rtcp).await.is_err() {
            break;
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
        let (mut concealed, mut recovered) = (0, 0);
        if missing > 0 && missing <= MAX_CONCEALED {
            for i in 0..missing {
                // The packet after the gap carries FEC for the last lost one; the ones
                // before it are invented by loss concealment.
                let samples = if i + 1 == missing {
                    recovered += 1;
                    decoder.recover(&packet.payload)
                } else {
                    concealed += 1;
                    decoder.conceal()
                };
                if let Ok(samples) = samples {
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
        counters.audio_decoded(concealed, recovered);
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

#[cfg(test)]
mod tests {
    use super::*;
    use confab_media::video::pattern::SyntheticVideoSource;
    use confab_media::video::vp8::{Vp8Config, Vp8Encoder};

    #[test]
    fn a_keyframe_header_gives_the_picture_size_and_a_delta_frame_none() {
        let mut source = SyntheticVideoSource::new(640, 480, 30).expect("pattern");
        let mut encoder = Vp8Encoder::new(Vp8Config::new(640, 480, 30, 800)).expect("encoder");
        let mut frames = Vec::new();
        while frames.len() < 2 {
            if let Some(f) = encoder.encode(&source.next_frame()).expect("encode") {
                frames.push(f);
            }
        }
        assert!(frames[0].is_keyframe && !frames[1].is_keyframe);
        assert_eq!(vp8_keyframe_size(&frames[0].data), Some((640, 480)));
        assert_eq!(vp8_keyframe_size(&frames[1].data), None);
        assert_eq!(vp8_keyframe_size(&frames[0].data[..6]), None, "too short");
    }
}
