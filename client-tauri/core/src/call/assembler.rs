//! Reassembles VP8 frames from RTP packets, in decoding order, the moment a frame's last
//! packet arrives: the receive (jitter) buffer of the video path.
//!
//! A frame is handed on only when it is complete and follows the previous one without a
//! gap in sequence numbers, so a lost packet holds back the frames after it while its
//! retransmission (NACK, see `nack.rs`) is on its way. The buffer waits at most
//! [`Vp8Assembler::set_wait`] (a few round trips) for a missing packet; then it gives the
//! frame up and flags the next one (`after_loss`: the decoder needs a keyframe). A complete
//! keyframe further on ends any wait at once: nothing before it is needed any more.
//!
//! Hand-written because rtc's `SampleBuilder` holds every frame until a packet of the
//! *next* frame arrives (to know the frame's duration): a whole frame interval, 33 ms at
//! 30 fps, of latency that a real-time call does not need.

use bytes::{Bytes, BytesMut};
use rtc::rtp::Packet;
use rtc::rtp::codec::vp8::Vp8Packet;
use rtc::rtp::packetizer::Depacketizer;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Packets kept at most (a burst of reordering or a very large keyframe).
const MAX_PENDING_PACKETS: usize = 2048;
/// How long a missing packet is waited for, until [`Vp8Assembler::set_wait`] says otherwise.
pub(crate) const DEFAULT_WAIT: Duration = Duration::from_millis(200);

/// One reassembled frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct AssembledFrame {
    pub data: Bytes,
    /// Frames were lost before this one: the decoder needs a keyframe.
    pub after_loss: bool,
    /// A VP8 keyframe (RFC 6386, 9.1: bit 0 of the frame tag is 0).
    pub is_keyframe: bool,
}

struct Pending {
    packet: Packet,
    arrived: Instant,
}

pub(crate) struct Vp8Assembler {
    /// Pending packets by extended (unwrapped) sequence number.
    packets: BTreeMap<u64, Pending>,
    /// The sequence number the next frame must start at (`None`: any frame start will do,
    /// at the beginning and after a loss).
    next_expected: Option<u64>,
    /// RTP timestamp of the last frame emitted or given up: older packets are late.
    last_ts: Option<u32>,
    lost: bool,
    wait: Duration,
    /// Frames given up, for the stats.
    pub given_up: u64,
}

impl Default for Vp8Assembler {
    fn default() -> Self {
        Self {
            packets: BTreeMap::new(),
            next_expected: None,
            last_ts: None,
            lost: false,
            wait: DEFAULT_WAIT,
            given_up: 0,
        }
    }
}

/// Whether RTP timestamp `a` is after `b` (modulo wrap-around).
fn is_newer(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < u32::MAX / 2
}

fn is_partition_head(p: &Packet) -> bool {
    Vp8Packet::default().is_partition_head(&p.payload)
}

fn is_partition_tail(p: &Packet) -> bool {
    Vp8Packet::default().is_partition_tail(p.header.marker, &p.payload)
}

impl Vp8Assembler {
    /// How long to wait for a missing packet before giving its frame up.
    pub fn set_wait(&mut self, wait: Duration) {
        self.wait = wait;
    }

    /// The sequence number before which nothing is wanted any more (for the NACK tracker).
    pub fn wanted_from(&self) -> Option<u64> {
        match self.next_expected {
            Some(n) => Some(n),
            None => self.packets.keys().next().copied(),
        }
    }

    /// Adds a packet (`ext`: its extended sequence number); returns the frames that are now
    /// ready, oldest first.
    pub fn push(&mut self, ext: u64, packet: Packet, now: Instant) -> Vec<AssembledFrame> {
        if self.next_expected.is_some_and(|n| ext < n)
            || self
                .last_ts
                .is_some_and(|ts| !is_newer(packet.header.timestamp, ts))
        {
            return Vec::new(); // a late packet of a frame already emitted or given up
        }
        self.packets.entry(ext).or_insert(Pending {
            packet,
            arrived: now,
        });
        self.poll(now)
    }

    /// When the oldest waiting frame is given up if nothing arrives.
    pub fn deadline(&self) -> Option<Instant> {
        self.packets.values().next().map(|p| p.arrived + self.wait)
    }

    /// Emits what is ready and gives up frames waited for too long.
    pub fn poll(&mut self, now: Instant) -> Vec<AssembledFrame> {
        let mut frames = Vec::new();
        while let Some((&first_ext, first)) = self.packets.iter().next() {
            let contiguous = match self.next_expected {
                Some(n) => first_ext == n,
                None => is_partition_head(&first.packet),
            };
            if contiguous && let Some(end) = self.complete_end(first_ext) {
                if let Some(frame) = self.take(first_ext, end) {
                    frames.push(frame);
                }
                continue;
            }
            // Not ready. A complete keyframe further on makes everything before it moot.
            if let Some((start, end)) = self.later_keyframe(first_ext) {
                self.packets = self.packets.split_off(&start);
                self.given_up += 1;
                if let Some(frame) = self.take(start, end) {
                    frames.push(frame);
                }
                continue;
            }
            let waited = now.saturating_duration_since(first.arrived);
            if waited >= self.wait || self.packets.len() > MAX_PENDING_PACKETS {
                self.give_up(contiguous, first_ext);
                continue;
            }
            break;
        }
        frames
    }

    /// Gives up the oldest frame (or, when the gap is before it, the frames lost there).
    fn give_up(&mut self, contiguous: bool, first_ext: u64) {
        self.given_up += 1;
        self.lost = true;
        self.next_expected = None;
        if contiguous || !is_partition_head(&self.packets[&first_ext].packet) {
            let ts = self.packets[&first_ext].packet.header.timestamp;
            self.last_ts = Some(ts);
            let rest: Vec<u64> = self
                .packets
                .iter()
                .take_while(|(_, p)| p.packet.header.timestamp == ts)
                .map(|(&k, _)| k)
                .collect();
            for k in rest {
                self.packets.remove(&k);
            }
        }
    }

    /// The last sequence number of the frame starting at `start`, if all its packets are here.
    fn complete_end(&self, start: u64) -> Option<u64> {
        let ts = self.packets.get(&start)?.packet.header.timestamp;
        // Packets of the frame must follow each other without a gap in sequence numbers.
        for (expected, (&ext, p)) in (start..).zip(self.packets.range(start..)) {
            if p.packet.header.timestamp != ts || ext != expected {
                return None;
            }
            if is_partition_tail(&p.packet) {
                return Some(ext);
            }
        }
        None
    }

    /// A complete keyframe after `after`: its first and last sequence numbers.
    fn later_keyframe(&self, after: u64) -> Option<(u64, u64)> {
        let mut last_ts = self.packets.get(&after).map(|p| p.packet.header.timestamp);
        for (&ext, p) in self.packets.range(after + 1..) {
            if Some(p.packet.header.timestamp) == last_ts {
                continue;
            }
            last_ts = Some(p.packet.header.timestamp);
            if !is_partition_head(&p.packet) {
                continue;
            }
            let is_key = Vp8Packet::default()
                .depacketize(&p.packet.payload)
                .ok()
                .and_then(|b| b.first().map(|b| b & 0x01 == 0))
                .unwrap_or(false);
            if is_key && let Some(end) = self.complete_end(ext) {
                return Some((ext, end));
            }
        }
        None
    }

    /// Removes the packets `start..=end` and depacketizes them into one frame.
    fn take(&mut self, start: u64, end: u64) -> Option<AssembledFrame> {
        let mut data = BytesMut::new();
        let mut broken = false;
        self.last_ts = self.packets.get(&start).map(|p| p.packet.header.timestamp);
        for ext in start..=end {
            if let Some(p) = self.packets.remove(&ext) {
                // A fresh depacketizer per packet: Vp8Packet keeps per-packet fields that
                // are not all reset when the next packet lacks them.
                match Vp8Packet::default().depacketize(&p.packet.payload) {
                    Ok(part) => data.extend_from_slice(&part),
                    Err(_) => broken = true,
                }
            }
        }
        self.next_expected = Some(end + 1);
        if broken || data.is_empty() {
            self.lost = true;
            self.next_expected = None;
            return None;
        }
        let is_keyframe = data[0] & 0x01 == 0;
        let after_loss = std::mem::take(&mut self.lost) && !is_keyframe;
        Some(AssembledFrame {
            data: data.freeze(),
            after_loss,
            is_keyframe,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtp::header::Header;

    /// A VP8 RTP packet: a one-byte payload descriptor (S bit on the first packet of a
    /// frame) followed by `body` (whose first byte's bit 0 is 0 for a keyframe).
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

    /// Pushes with the sequence number as the extended one.
    fn push(a: &mut Vp8Assembler, p: Packet, now: Instant) -> Vec<AssembledFrame> {
        let ext = 1000 + u64::from(p.header.sequence_number);
        a.push(ext, p, now)
    }

    #[test]
    fn a_frame_is_emitted_with_its_last_packet() {
        let now = Instant::now();
        let mut a = Vp8Assembler::default();
        assert!(push(&mut a, packet(10, 3000, true, false, b"abcd"), now).is_empty());
        let frames = push(&mut a, packet(11, 3000, false, true, b"efgh"), now);
        assert_eq!(
            frames,
            vec![AssembledFrame {
                data: Bytes::from_static(b"abcdefgh"),
                after_loss: false,
                is_keyframe: false,
            }]
        );
    }

    #[test]
    fn reordered_packets_complete_a_frame() {
        let now = Instant::now();
        let mut a = Vp8Assembler::default();
        assert!(push(&mut a, packet(5, 100, true, false, b"aaa"), now).is_empty());
        assert!(push(&mut a, packet(7, 100, false, true, b"ccc"), now).is_empty());
        let frames = push(&mut a, packet(6, 100, false, false, b"bbb"), now);
        assert_eq!(frames[0].data, Bytes::from_static(b"aaabbbccc"));
    }

    #[test]
    fn frames_after_a_gap_wait_for_the_retransmission() {
        let t0 = Instant::now();
        let mut a = Vp8Assembler::default();
        assert_eq!(
            push(&mut a, packet(1, 100, true, true, b"kkk"), t0).len(),
            1
        );
        // Frame 200 (seq 2) is lost; 300 and 400 arrive complete and wait behind it.
        assert!(push(&mut a, packet(3, 300, true, true, b"aaa"), t0).is_empty());
        assert!(push(&mut a, packet(4, 400, true, true, b"eee"), t0).is_empty());
        assert_eq!(a.wanted_from(), Some(1002));
        let later = t0 + Duration::from_millis(50);
        let frames = push(&mut a, packet(2, 200, true, true, b"ccc"), later);
        let data: Vec<_> = frames.iter().map(|f| f.data.clone()).collect();
        assert_eq!(data, vec![&b"ccc"[..], b"aaa", b"eee"]);
        assert!(frames.iter().all(|f| !f.after_loss));
    }

    #[test]
    fn a_lost_packet_gives_up_the_frame_after_the_wait_and_flags_the_next() {
        let t0 = Instant::now();
        let mut a = Vp8Assembler::default();
        a.set_wait(Duration::from_millis(100));
        assert_eq!(
            push(&mut a, packet(1, 100, true, true, b"kkk"), t0).len(),
            1
        );
        push(&mut a, packet(2, 200, true, false, b"xxx"), t0); // its tail (seq 3) never comes
        assert!(push(&mut a, packet(4, 300, true, true, b"yyy"), t0).is_empty());
        assert_eq!(a.deadline(), Some(t0 + Duration::from_millis(100)));
        assert!(a.poll(t0 + Duration::from_millis(99)).is_empty());
        let frames = a.poll(t0 + Duration::from_millis(100));
        assert_eq!(frames.len(), 1);
        assert!(frames[0].after_loss, "the loss is reported: {frames:?}");
        assert_eq!(a.given_up, 1);
        // A late packet of the given-up frame is ignored.
        let late = t0 + Duration::from_millis(120);
        assert!(push(&mut a, packet(3, 200, false, true, b"zzz"), late).is_empty());
        assert_eq!(
            push(&mut a, packet(5, 400, true, true, b"www"), late).len(),
            1
        );
    }

    #[test]
    fn a_complete_keyframe_ends_the_wait() {
        let t0 = Instant::now();
        let mut a = Vp8Assembler::default();
        assert_eq!(
            push(&mut a, packet(1, 100, true, true, b"\x00kk"), t0).len(),
            1
        );
        assert!(push(&mut a, packet(3, 300, true, true, b"\x01dd"), t0).is_empty());
        // The keyframe answering the PLI arrives in two packets.
        assert!(push(&mut a, packet(4, 400, true, false, b"\x00aa"), t0).is_empty());
        let frames = push(&mut a, packet(5, 400, false, true, b"bbb"), t0);
        assert_eq!(frames.len(), 1);
        assert!(frames[0].is_keyframe && !frames[0].after_loss);
        assert_eq!(frames[0].data, Bytes::from_static(b"\x00aabbb"));
    }
}
