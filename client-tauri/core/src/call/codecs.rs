//! What this client sends: VP8 video and Opus audio, nothing else, so every offer and
//! answer negotiates exactly those (see `confab_media::video::vp8` for why VP8).

use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RTCRtpRtxParameters, RtpCodecKind,
};
use std::sync::Arc;
use std::time::Instant;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::peer_connection::MediaEngine;

/// RTP payload types we offer. Chromium and Firefox use the same numbers by default, which
/// keeps SDP munging unnecessary.
pub(crate) const VP8_PAYLOAD_TYPE: u8 = 96;
/// Retransmissions of VP8 (RFC 4588 RTX, `apt=96`).
pub(crate) const RTX_PAYLOAD_TYPE: u8 = 97;
pub(crate) const OPUS_PAYLOAD_TYPE: u8 = 111;

fn feedback(typ: &str, parameter: &str) -> RTCPFeedback {
    RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    }
}

/// VP8 with retransmission (nack), keyframe requests (pli, fir) and receiver bandwidth
/// estimates (goog-remb).
pub(crate) fn vp8() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: "video/VP8".to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![
            feedback("goog-remb", ""),
            feedback("ccm", "fir"),
            feedback("nack", ""),
            feedback("nack", "pli"),
        ],
    }
}

/// RTX for VP8 (RFC 4588): what the sender's NACK responder retransmits on, a stream of
/// its own (own SSRC, `a=ssrc-group:FID`), so a retransmission is never mistaken for a
/// duplicate (SRTP replay protection, receive statistics). rtc negotiates it, sends on it
/// and turns it back into the original packet before the track sees it.
pub(crate) fn rtx() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: "video/rtx".to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: format!("apt={VP8_PAYLOAD_TYPE}"),
        rtcp_feedback: vec![],
    }
}

/// Opus as every browser offers it: always "2 channels" in SDP (RFC 7587), in-band FEC on.
pub(crate) fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: "audio/opus".to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

/// A media engine that knows only our two codecs (and VP8's retransmission format).
pub(crate) fn media_engine() -> webrtc::error::Result<MediaEngine> {
    let mut engine = MediaEngine::default();
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: vp8(),
            payload_type: VP8_PAYLOAD_TYPE,
        },
        RtpCodecKind::Video,
    )?;
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: rtx(),
            payload_type: RTX_PAYLOAD_TYPE,
        },
        RtpCodecKind::Video,
    )?;
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: opus(),
            payload_type: OPUS_PAYLOAD_TYPE,
        },
        RtpCodecKind::Audio,
    )?;
    Ok(engine)
}

/// A local track of `kind` with a fresh random SSRC, for one peer connection.
pub(crate) fn local_track(
    kind: RtpCodecKind,
    stream_id: &str,
) -> webrtc::error::Result<(Arc<TrackLocalStaticSample>, u32)> {
    let ssrc = rand::random::<u32>();
    let (codec, name, rtx) = match kind {
        RtpCodecKind::Audio => (opus(), "audio", None),
        _ => (
            vp8(),
            "video",
            Some(RTCRtpRtxParameters {
                ssrc: rand::random::<u32>(),
            }),
        ),
    };
    let track = MediaStreamTrack::new(
        stream_id.to_owned(),
        format!("{stream_id}-{name}"),
        name.to_owned(),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                rtx,
                ..Default::default()
            },
            codec,
            ..Default::default()
        }],
    );
    Ok((
        Arc::new(TrackLocalStaticSample::new(Instant::now(), track)?),
        ssrc,
    ))
}
