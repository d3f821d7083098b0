//! Opus encoder and decoder (system libopus through audiopus): 48 kHz mono, 20 ms frames.
//!
//! The encoder runs in VOIP mode with in-band FEC: each packet also carries a coarse copy
//! of the previous frame, so one lost packet can be rebuilt from the next one
//! ([`OpusDecoder::recover`]). When nothing arrives in time, [`OpusDecoder::conceal`]
//! asks libopus to extrapolate (packet-loss concealment) instead of playing a click of
//! silence.

use audiopus::coder::{Decoder, Encoder};
use audiopus::{Application, Bitrate, Channels, SampleRate};

/// Samples in one 20 ms Opus frame at 48 kHz mono (two microphone frames).
pub const OPUS_FRAME_SAMPLES: usize = 960;

/// Largest Opus packet for one frame (RFC 6716, section 3.4), plus headroom.
const MAX_PACKET: usize = 1500;

/// Errors from the Opus wrappers.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpusError {
    /// libopus (or audiopus's argument checks) rejected the call.
    #[error("opus: {0}")]
    Codec(#[from] audiopus::Error),
    /// The encoder only takes whole 20 ms frames.
    #[error("Opus frames must be {OPUS_FRAME_SAMPLES} samples, got {0}")]
    FrameSize(usize),
}

/// A 48 kHz mono VOIP encoder with in-band FEC.
#[derive(Debug)]
pub struct OpusEncoder {
    inner: Encoder,
    packet: Vec<u8>,
}

impl OpusEncoder {
    /// An encoder at `bitrate_bps` (e.g. 32 000 for good wideband speech) that expects
    /// `expected_loss_percent` packet loss. libopus only spends bits on FEC when the
    /// expected loss is above zero, so pass the loss the network reports (or a few percent).
    pub fn new(bitrate_bps: i32, expected_loss_percent: u8) -> Result<Self, OpusError> {
        let mut inner = Encoder::new(SampleRate::Hz48000, Channels::Mono, Application::Voip)?;
        inner.set_bitrate(Bitrate::BitsPerSecond(bitrate_bps))?;
        inner.set_inband_fec(true)?;
        inner.set_packet_loss_perc(expected_loss_percent.min(100))?;
        Ok(Self {
            inner,
            packet: vec![0; MAX_PACKET],
        })
    }

    /// Updates the packet loss the encoder plans FEC for (from RTCP receiver reports).
    pub fn set_expected_loss_percent(&mut self, percent: u8) -> Result<(), OpusError> {
        Ok(self.inner.set_packet_loss_perc(percent.min(100))?)
    }

    /// Encodes exactly [`OPUS_FRAME_SAMPLES`] samples into one packet.
    pub fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, OpusError> {
        if pcm.len() != OPUS_FRAME_SAMPLES {
            return Err(OpusError::FrameSize(pcm.len()));
        }
        let len = self.inner.encode(pcm, &mut self.packet)?;
        Ok(self.packet[..len].to_vec())
    }
}

/// A 48 kHz mono decoder with loss concealment and FEC recovery.
#[derive(Debug)]
pub struct OpusDecoder {
    inner: Decoder,
}

impl OpusDecoder {
    /// A decoder for the packets an [`OpusEncoder`] makes.
    pub fn new() -> Result<Self, OpusError> {
        Ok(Self {
            inner: Decoder::new(SampleRate::Hz48000, Channels::Mono)?,
        })
    }

    /// Decodes one packet into its samples (960 for our encoder's 20 ms frames).
    pub fn decode(&mut self, packet: &[u8]) -> Result<Vec<i16>, OpusError> {
        self.run(Some(packet), false)
    }

    /// Invents 20 ms for a packet that never arrived (packet-loss concealment).
    pub fn conceal(&mut self) -> Result<Vec<i16>, OpusError> {
        self.run(None, false)
    }

    /// Rebuilds the frame before `next_packet` from the FEC data it carries: call this for
    /// a lost packet when its successor has arrived, then `decode(next_packet)` as usual.
    /// Falls back to concealment inside libopus if `next_packet` carries no FEC.
    pub fn recover(&mut self, next_packet: &[u8]) -> Result<Vec<i16>, OpusError> {
        self.run(Some(next_packet), true)
    }

    fn run(&mut self, packet: Option<&[u8]>, fec: bool) -> Result<Vec<i16>, OpusError> {
        // The output length tells libopus how much to conceal or recover: one frame.
        let mut pcm = vec![0i16; OPUS_FRAME_SAMPLES];
        let samples = self.inner.decode(packet, &mut pcm, fec)?;
        pcm.truncate(samples);
        Ok(pcm)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::SAMPLE_RATE;
    use crate::audio::tone::{FrameDuration, ToneSource, dominant_tone, tone_level};

    const CANDIDATES: [f64; 4] = [300.0, 440.0, 1000.0, 2500.0];

    fn tone_packets(freq: f64, count: usize) -> Vec<Vec<u8>> {
        let mut source = ToneSource::new(freq, 0.5, FrameDuration::Ms20);
        let mut encoder = OpusEncoder::new(32_000, 10).unwrap();
        (0..count)
            .map(|_| encoder.encode(&source.next_frame()).unwrap())
            .collect()
    }

    #[test]
    fn a_tone_survives_encode_and_decode() {
        for freq in [440.0, 1000.0] {
            let mut decoder = OpusDecoder::new().unwrap();
            let mut decoded = Vec::new();
            for packet in tone_packets(freq, 25) {
                assert!(packet.len() < 200, "{} bytes at 32 kbps", packet.len());
                decoded.extend(decoder.decode(&packet).unwrap());
            }
            assert_eq!(decoded.len(), 25 * OPUS_FRAME_SAMPLES);
            // Skip the first 100 ms: the codec's look-ahead delays and fades in the start.
            let steady = &decoded[5 * OPUS_FRAME_SAMPLES..];
            assert_eq!(dominant_tone(steady, &CANDIDATES, SAMPLE_RATE), Some(freq));
            let level = tone_level(steady, freq, SAMPLE_RATE);
            assert!(
                (0.35..0.65).contains(&level),
                "{freq} Hz came out at {level}"
            );
        }
    }

    #[test]
    fn concealment_and_fec_fill_a_lost_packet_with_the_tone() {
        let packets = tone_packets(440.0, 20);
        let lost = 12;

        let mut decoder = OpusDecoder::new().unwrap();
        for packet in &packets[..lost] {
            decoder.decode(packet).unwrap();
        }
        let concealed = decoder.conceal().unwrap();
        assert_eq!(concealed.len(), OPUS_FRAME_SAMPLES);
        assert_eq!(
            dominant_tone(&concealed, &CANDIDATES, SAMPLE_RATE),
            Some(440.0)
        );
        let level = tone_level(&concealed, 440.0, SAMPLE_RATE);
        assert!(level > 0.1, "concealment faded to {level}");

        let mut decoder = OpusDecoder::new().unwrap();
        for packet in &packets[..lost] {
            decoder.decode(packet).unwrap();
        }
        let recovered = decoder.recover(&packets[lost + 1]).unwrap();
        assert_eq!(recovered.len(), OPUS_FRAME_SAMPLES);
        assert_eq!(
            dominant_tone(&recovered, &CANDIDATES, SAMPLE_RATE),
            Some(440.0)
        );
        let after = decoder.decode(&packets[lost + 1]).unwrap();
        assert_eq!(dominant_tone(&after, &CANDIDATES, SAMPLE_RATE), Some(440.0));
    }

    #[test]
    fn wrong_frame_sizes_and_garbage_are_errors() {
        let mut encoder = OpusEncoder::new(32_000, 5).unwrap();
        assert_eq!(encoder.encode(&[0; 480]), Err(OpusError::FrameSize(480)));
        let mut decoder = OpusDecoder::new().unwrap();
        assert!(decoder.decode(&[0xff, 0xff, 0xff]).is_err());
    }
}
