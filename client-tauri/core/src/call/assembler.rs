//! Reassembles VP8 frames from RTP packets the moment a frame's last packet arrives.
//!
//! Hand-written because rtc's `SampleBuilder` holds every frame until a packet of the
//! *next* frame arrives (to know the frame's duration): a whole frame interval, 33 ms at
//! 30 fps, of latency that a real-time call does not need.

use bytes::{Bytes, BytesMut};
use rtc::rtp::Packet;
use rtc::rtp::codec::vp8::Vp8Packet;
use rtc::rtp::packetizer::Depacketizer;
use std::collections::BTreeMap;

/// Incomplete frames kept while newer ones arrive, before the oldest is given up as lost.
const MAX_PENDING_FRAMES: usize = 4;
/// Packets kept at most (a burst of reordering or a very large keyframe).
const MAX_PENDING_PACKETS: usize = 2048;

/// One reassembled frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct AssembledFrame {
    pub data: Bytes,
    /// Frames were lost before this one: the decoder needs a keyframe.
    pub after_loss: bool,
}

#[derive(Default)]
pub(crate) struct Vp8Assembler {
    /// Pending packets by extended (unwrapped) sequence number.
    packets: BTreeMap<u64, Packet>,
    highest: Option<u64>,
    last_emitted: Option<u32>,
    lost: bool,
    depacketizer: Vp8Packet,
}

/// Whether RTP timestamp `a` is after `b` (modulo wrap-around).
fn is_newer(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < u32::MAX / 2
}

impl Vp8Assembler {
    fn extend(&mut self, seq: u16) -> u64 {
        let ext = match self.highest {
            // Start high enough that reordered packets just before the first still fit.
            None => (1u64 << 32) + u64::from(seq),
            Some(highest) => {
                let delta = i64::from(seq.wrapping_sub(highest as u16) as i16);
                highest.saturating_add_signed(delta)
            }
        };
        if self.highest.is_none_or(|h| ext > h) {
            self.highest = Some(ext);
        }
        ext
    }

    /// Adds a packet; returns the frames it completed, oldest first.
    pub fn push(&mut self, packet: Packet) -> Vec<AssembledFrame> {
        if self
            .last_emitted
            .is_some_and(|ts| !is_newer(packet.header.timestamp, ts))
        {
            return Vec::new(); // a late packet of a frame already emitted or given up
        }
        let ext = self.extend(packet.header.sequence_number);
        self.packets.insert(ext, packet);
        while self.packets.len() > MAX_PENDING_PACKETS {
            self.drop_oldest_frame();
        }
        let mut frames = Vec::new();
        loop {
            match self.oldest_frame() {
                Some(Ok(frame)) => frames.push(frame),
                Some(Err(())) if self.pending_timestamps() > MAX_PENDING_FRAMES => {
                    self.drop_oldest_frame()
                }
                _ => break,
            }
        }
        frames
    }

    fn pending_timestamps(&self) -> usize {
        let mut count = 0;
        let mut last = None;
        for p in self.packets.values() {
            if last != Some(p.header.timestamp) {
                count += 1;
                last = Some(p.header.timestamp);
            }
        }
        count
    }

    fn drop_oldest_frame(&mut self) {
        let Some(ts) = self.packets.values().next().map(|p| p.header.timestamp) else {
            return;
        };
        self.packets.retain(|_, p| p.header.timestamp != ts);
        self.last_emitted = Some(ts);
        self.lost = true;
    }

    /// The oldest pending frame if it is complete (`Err` if it is not yet).
    fn oldest_frame(&mut self) -> Option<Result<AssembledFrame, ()>> {
        let (&first_ext, first) = self.packets.iter().next()?;
        let ts = first.header.timestamp;
        if !self.depacketizer.is_partition_head(&first.payload) {
            return Some(Err(()));
        }
        let mut end = None;
        // Packets of the frame must follow each other without a gap in sequence numbers.
        for (expected, (&ext, p)) in (first_ext..).zip(self.packets.range(first_ext..)) {
            if p.header.timestamp != ts || ext != expected {
                break;
            }
            if self
                .depacketizer
                .is_partition_tail(p.header.marker, &p.payload)
            {
                end = Some(ext);
                break;
            }
        }
        let end = match end {
            Some(end) => end,
            None => return Some(Err(())),
        };
        let mut data = BytesMut::new();
        let mut broken = false;
        for ext in first_ext..=end {
            if let Some(p) = self.packets.remove(&ext) {
                // A fresh depacketizer per packet: Vp8Packet keeps per-packet fields that
                // are not all reset when the next packet lacks them.
                match Vp8Packet::default().depacketize(&p.payload) {
                    Ok(part) => data.extend_from_slice(&part),
                    Err(_) => broken = true,
                }
            }
        }
        self.last_emitted = Some(ts);
        if broken {
            self.lost = true;
            return Some(Err(()));
        }
        let after_loss = std::mem::take(&mut self.lost);
        Some(Ok(AssembledFrame {
            data: data.freeze(),
            after_loss,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtp::header::Header;

    /// A VP8 RTP packet: a one-byte payload descriptor (S bit on the first packet of a
    /// frame) followed by `body`.
    fn packet(seq: u16, ts: u32, first: bool, last: bool, body: &[u8]) -> Packet {
        let mut payload = vec![if first { 0x10 } else { 0x00 }];
        payload.extend_from_slice(body);
        Packet {
            header: Header {
                sequence_number: seq,
                timestamp: ts,
                marker: last,
                ..Default::default()
            },
            payload: Bytes::from(payload),
        }
    }

    #[test]
    fn a_frame_is_emitted_with_its_last_packet() {
        let mut a = Vp8Assembler::default();
        assert!(a.push(packet(10, 3000, true, false, b"abcd")).is_empty());
        let frames = a.push(packet(11, 3000, false, true, b"efgh"));
        assert_eq!(
            frames,
            vec![AssembledFrame {
                data: Bytes::from_static(b"abcdefgh"),
                after_loss: false
            }]
        );
    }

    #[test]
    fn reordered_packets_and_sequence_wraparound() {
        let mut a = Vp8Assembler::default();
        assert!(a.push(packet(65535, 100, true, false, b"aaa")).is_empty());
        assert!(a.push(packet(1, 100, false, true, b"ccc")).is_empty());
        let frames = a.push(packet(0, 100, false, false, b"bbb"));
        assert_eq!(frames[0].data, Bytes::from_static(b"aaabbbccc"));
    }

    #[test]
    fn a_lost_packet_gives_up_the_frame_and_flags_the_next() {
        let mut a = Vp8Assembler::default();
        a.push(packet(1, 100, true, false, b"xxx")); // its tail (seq 2) never comes
        let mut out = Vec::new();
        for (i, ts) in [200u32, 300, 400, 500, 600].into_iter().enumerate() {
            out.extend(a.push(packet(3 + i as u16, ts, true, true, b"yyy")));
        }
        assert!(
            out.iter().any(|f| f.after_loss),
            "the loss is reported: {out:?}"
        );
        assert!(out.len() >= 4);
        // A late packet of the given-up frame is ignored.
        assert!(a.push(packet(2, 100, false, true, b"zzz")).is_empty());
    }
}
