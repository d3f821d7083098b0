//! Receiver-side loss detection for video: which RTP sequence numbers to ask the sender to
//! retransmit (RTCP generic NACK, RFC 4585 6.2.1), and when.
//!
//! Hand-written instead of rtc's `NackGeneratorInterceptor`, which asks on a fixed 100 ms
//! tick with no notion of the round trip: a packet is asked for the moment the gap is seen
//! (the next packet arrives), asked again only when its retransmission is overdue (about
//! one and a half round trips), a bounded number of times, and forgotten once the jitter
//! buffer has given up on its frame. The sender's `NackResponderInterceptor` answers.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Sequence numbers tracked at most.
const MAX_MISSING: usize = 500;
/// A gap longer than this (about half a second of video at 2 Mbit/s) is an outage: the
/// frames in it are stale by the time they could be repaired, and a keyframe repairs
/// faster, so nothing in it is asked for.
const MAX_GAP: u64 = 150;
/// Silence longer than this before a gap is an outage too (the link went away), however
/// few packets were lost in it: repairing it would replay stale frames.
const OUTAGE: Duration = Duration::from_millis(400);
/// Times one packet is asked for before it is left to the keyframe request.
const MAX_TRIES: u8 = 10;
/// Shortest wait before asking again for the same packet (a LAN's round trip is far less,
/// but the sender needs a moment to answer).
const MIN_RETRY: Duration = Duration::from_millis(15);

/// Extends 16-bit RTP sequence numbers into a monotonic 64-bit space.
#[derive(Debug, Default)]
pub(crate) struct SeqUnwrapper {
    highest: Option<u64>,
}

impl SeqUnwrapper {
    pub fn unwrap(&mut self, seq: u16) -> u64 {
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
}

#[derive(Debug)]
struct Missing {
    noticed: Instant,
    asked: Option<Instant>,
    tries: u8,
}

/// The packets that are missing and when each was last asked for.
#[derive(Debug, Default)]
pub(crate) struct NackTracker {
    highest: Option<u64>,
    last_arrival: Option<Instant>,
    missing: BTreeMap<u64, Missing>,
    /// Retransmission requests sent, for the stats.
    pub requested: u64,
}

impl NackTracker {
    /// Notes an arrival (`ext` from [`SeqUnwrapper`]). Returns true when it filled a gap
    /// (a retransmission, or a reordered packet).
    pub fn on_packet(&mut self, ext: u64, now: Instant) -> bool {
        let silent = self
            .last_arrival
            .replace(now)
            .is_some_and(|t| now.saturating_duration_since(t) > OUTAGE);
        match self.highest {
            None => self.highest = Some(ext),
            Some(h) if ext > h + 1 && (ext > h + 1 + MAX_GAP || silent) => {
                self.missing.clear();
                self.highest = Some(ext);
            }
            Some(h) if ext > h => {
                for seq in h + 1..ext {
                    self.missing.insert(
                        seq,
                        Missing {
                            noticed: now,
                            asked: None,
                            tries: 0,
                        },
                    );
                }
                while self.missing.len() > MAX_MISSING {
                    self.missing.pop_first();
                }
                self.highest = Some(ext);
            }
            Some(_) => return self.missing.remove(&ext).is_some(),
        }
        false
    }

    /// Stops asking for everything before `ext` (its frames were decoded or given up).
    pub fn forget_before(&mut self, ext: u64) {
        self.missing = self.missing.split_off(&ext);
    }

    fn retry_after(rtt: Duration) -> Duration {
        (rtt + rtt / 2 + Duration::from_millis(5)).max(MIN_RETRY)
    }

    /// The sequence numbers to ask for now (first requests and overdue ones), marked as
    /// asked. Packets noticed missing longer than `give_up` ago are dropped.
    pub fn due(&mut self, now: Instant, rtt: Duration, give_up: Duration) -> Vec<u16> {
        let retry = Self::retry_after(rtt);
        self.missing.retain(|_, m| {
            now.saturating_duration_since(m.noticed) < give_up && m.tries < MAX_TRIES
        });
        let mut due = Vec::new();
        for (&seq, m) in &mut self.missing {
            if m.asked
                .is_none_or(|at| now.saturating_duration_since(at) >= retry)
            {
                m.asked = Some(now);
                m.tries += 1;
                due.push(seq as u16);
            }
        }
        self.requested += due.len() as u64;
        due
    }

    /// When [`Self::due`] next has something to ask for.
    pub fn deadline(&self, rtt: Duration) -> Option<Instant> {
        let retry = Self::retry_after(rtt);
        self.missing
            .values()
            .map(|m| m.asked.map_or(m.noticed, |at| at + retry))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwrapping_follows_wraparound_and_reordering() {
        let mut u = SeqUnwrapper::default();
        let a = u.unwrap(65534);
        assert_eq!(u.unwrap(65535), a + 1);
        assert_eq!(u.unwrap(1), a + 3);
        assert_eq!(u.unwrap(0), a + 2);
    }

    #[test]
    fn a_gap_is_asked_for_at_once_then_again_only_when_overdue() {
        let t0 = Instant::now();
        let rtt = Duration::from_millis(40);
        let give_up = Duration::from_millis(500);
        let mut n = NackTracker::default();
        n.on_packet(100, t0);
        n.on_packet(103, t0);
        assert_eq!(n.due(t0, rtt, give_up), vec![101, 102]);
        assert!(
            n.due(t0 + Duration::from_millis(10), rtt, give_up)
                .is_empty()
        );
        // 101 comes back; 102 is asked for again once 1.5 RTT have passed.
        assert!(n.on_packet(101, t0 + Duration::from_millis(20)));
        assert_eq!(n.deadline(rtt), Some(t0 + Duration::from_millis(65)));
        assert_eq!(
            n.due(t0 + Duration::from_millis(70), rtt, give_up),
            vec![102]
        );
        // A frame given up: nothing more to ask for.
        n.forget_before(103);
        assert!(
            n.due(t0 + Duration::from_millis(200), rtt, give_up)
                .is_empty()
        );
        assert_eq!(n.requested, 3);
    }

    #[test]
    fn old_gaps_are_given_up() {
        let t0 = Instant::now();
        let mut n = NackTracker::default();
        n.on_packet(1, t0);
        n.on_packet(3, t0);
        let later = t0 + Duration::from_secs(1);
        assert!(
            n.due(later, Duration::ZERO, Duration::from_millis(300))
                .is_empty()
        );
        assert_eq!(n.deadline(Duration::ZERO), None);
        // An outage is left to a keyframe: a long gap, or a short one after a silence.
        n.on_packet(1000, later);
        let wait = Duration::from_secs(1);
        assert!(n.due(later, Duration::ZERO, wait).is_empty());
        let after_silence = later + Duration::from_millis(500);
        n.on_packet(1003, after_silence);
        assert!(n.due(after_silence, Duration::ZERO, wait).is_empty());
        n.on_packet(1005, after_silence);
        assert_eq!(n.due(after_silence, Duration::ZERO, wait), vec![1004]);
    }
}
