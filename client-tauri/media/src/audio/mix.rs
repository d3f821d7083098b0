//! The playback mixing buffer: any number of remote streams in, one mono stream out.
//!
//! The buffer is a ring of atomic 32-bit accumulators indexed by absolute sample time.
//! Each remote stream ([`MixInput`]) adds its samples at its own write position, a little
//! ahead of the playback position; the speaker callback ([`MixOutput`]) swaps each slot
//! back to zero as it reads and clips the sum to 16 bits. So:
//!
//! - mixing is summing, done as the samples arrive, with clipping only at the output;
//! - nothing queued means the slots are zero: an underrun plays silence by construction;
//! - the reader never blocks or allocates (one atomic swap per sample), and streams can
//!   come and go without telling the reader.
//!
//! A stream that falls behind the playback position (late packets, a new stream) is
//! re-placed [`TARGET_LEAD`] ahead of it; one that gets more than [`MAX_LEAD`] ahead
//! (bursts, a fast sender clock) has frames dropped, which bounds the latency.
//!
//! One benign race remains: if a writer is preempted for longer than [`GUARD`] between
//! reading the playback position and adding its samples, a few of them can land in a slot
//! that was just played and sound one lap (about 340 ms) late. That is a tick in the
//! audio, never memory unsafety, and it needs a 20 ms stall of the decoding thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

/// Ring size in samples (about 341 ms at 48 kHz); a power of two so indexing is a mask.
const CAPACITY: usize = 16_384;
/// Where a new or late stream is placed, ahead of the playback position: 40 ms, enough to
/// absorb the speaker callback's period and the decoding thread's scheduling jitter.
pub const TARGET_LEAD: u64 = 1_920;
/// A stream closer than this to the playback position is treated as late and re-placed
/// (20 ms: twice the largest chunk the reader takes at once).
pub const GUARD: u64 = 960;
/// A stream further ahead than this (200 ms) has frames dropped.
pub const MAX_LEAD: u64 = 9_600;
/// Largest chunk [`MixOutput::pull`] reads at once; bigger requests are split.
const MAX_CHUNK: usize = 480;

const _: () = assert!(CAPACITY.is_power_of_two());
const _: () = assert!(MAX_LEAD as usize + MAX_CHUNK < CAPACITY);
const _: () = assert!(GUARD as usize >= 2 * MAX_CHUNK);

struct Shared {
    slots: Box<[AtomicI32]>,
    /// Absolute sample index of the next sample the reader plays.
    read_pos: AtomicU64,
    /// One past the furthest sample any stream has written, to tell silence from underrun.
    written_until: AtomicU64,
}

/// Creates a mixing buffer: the [`Mixer`] hands out inputs, the [`MixOutput`] goes to the
/// speaker callback.
pub fn mix_buffer() -> (Mixer, MixOutput) {
    let shared = Arc::new(Shared {
        slots: (0..CAPACITY).map(|_| AtomicI32::new(0)).collect(),
        read_pos: AtomicU64::new(0),
        written_until: AtomicU64::new(0),
    });
    (
        Mixer {
            shared: Arc::clone(&shared),
        },
        MixOutput { shared },
    )
}

/// Hands out one [`MixInput`] per remote stream. Cheap to clone.
#[derive(Clone)]
pub struct Mixer {
    shared: Arc<Shared>,
}

impl Mixer {
    /// A new input for one remote stream; drop it when the stream ends.
    pub fn add_input(&self) -> MixInput {
        MixInput {
            shared: Arc::clone(&self.shared),
            write_pos: None,
        }
    }
}

impl std::fmt::Debug for Mixer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mixer").finish_non_exhaustive()
    }
}

/// What happened to pushed samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Queued right after the stream's previous samples.
    Queued,
    /// The stream was new or late; queued [`TARGET_LEAD`] ahead of playback.
    Placed,
    /// The stream is already [`MAX_LEAD`] ahead; the samples were dropped.
    Dropped,
}

/// One remote stream's way into the mix (owned by that stream's decoding task).
pub struct MixInput {
    shared: Arc<Shared>,
    write_pos: Option<u64>,
}

impl MixInput {
    /// Adds 48 kHz mono samples to the mix after this stream's previous ones.
    pub fn push(&mut self, samples: &[i16]) -> PushOutcome {
        let len = samples.len() as u64;
        let read = self.shared.read_pos.load(Ordering::Acquire);
        let (start, outcome) = match self.write_pos {
            Some(pos) if pos >= read + GUARD && pos + len <= read + MAX_LEAD => {
                (pos, PushOutcome::Queued)
            }
            Some(pos) if pos >= read + GUARD => return PushOutcome::Dropped,
            _ if len > MAX_LEAD - TARGET_LEAD => return PushOutcome::Dropped,
            _ => (read + TARGET_LEAD, PushOutcome::Placed),
        };
        for (offset, &sample) in samples.iter().enumerate() {
            let slot = &self.shared.slots[(start as usize + offset) & (CAPACITY - 1)];
            // Each slot is an independent accumulator; no ordering with other memory needed.
            slot.fetch_add(i32::from(sample), Ordering::Relaxed);
        }
        self.write_pos = Some(start + len);
        self.shared
            .written_until
            .fetch_max(start + len, Ordering::Release);
        outcome
    }
}

impl std::fmt::Debug for MixInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MixInput")
            .field("write_pos", &self.write_pos)
            .finish_non_exhaustive()
    }
}

/// The reading end, for the speaker callback. There is exactly one.
pub struct MixOutput {
    shared: Arc<Shared>,
}

impl MixOutput {
    /// Fills `out` with the next mixed samples, clipped to 16 bits, and returns how many
    /// of them were silence because nothing was queued (underrun). Never blocks or
    /// allocates.
    pub fn pull(&mut self, out: &mut [i16]) -> usize {
        out.chunks_mut(MAX_CHUNK)
            .map(|chunk| self.pull_chunk(chunk))
            .sum()
    }

    fn pull_chunk(&mut self, out: &mut [i16]) -> usize {
        let start = self.shared.read_pos.load(Ordering::Relaxed);
        let end = start + out.len() as u64;
        // Claim the range before reading it, so writers that look now stay clear of it.
        self.shared.read_pos.store(end, Ordering::Release);
        for (offset, sample) in out.iter_mut().enumerate() {
            let slot = &self.shared.slots[(start as usize + offset) & (CAPACITY - 1)];
            let sum = slot.swap(0, Ordering::Relaxed);
            *sample = sum.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
        }
        let written = self.shared.written_until.load(Ordering::Acquire);
        (end - written.clamp(start, end)) as usize
    }
}

impl std::fmt::Debug for MixOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MixOutput").finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Pulls `n` samples and returns them with the underrun count.
    fn pull(output: &mut MixOutput, n: usize) -> (Vec<i16>, usize) {
        let mut out = vec![0; n];
        let silent = output.pull(&mut out);
        (out, silent)
    }

    #[test]
    fn streams_are_summed_and_clipped_at_target_latency() {
        let (mixer, mut output) = mix_buffer();
        let mut a = mixer.add_input();
        let mut b = mixer.add_input();
        assert_eq!(a.push(&[1000; 480]), PushOutcome::Placed);
        assert_eq!(a.push(&[1000; 480]), PushOutcome::Queued);
        assert_eq!(b.push(&[20_000; 960]), PushOutcome::Placed);
        let mut c = mixer.add_input();
        c.push(&[20_000; 960]);

        // Nothing plays before the target latency: that first stretch is silence, but
        // the samples are queued, so it does not count as underrun.
        let (lead, silent) = pull(&mut output, TARGET_LEAD as usize);
        assert!(lead.iter().all(|&s| s == 0));
        assert_eq!(silent, 0);

        // 1000 + 20000 + 20000 clips to i16::MAX.
        let (mixed, silent) = pull(&mut output, 960);
        assert!(mixed.iter().all(|&s| s == i16::MAX), "{:?}", &mixed[..4]);
        assert_eq!(silent, 0);

        // Then nothing is queued: silence, reported as underrun.
        let (rest, silent) = pull(&mut output, 480);
        assert!(rest.iter().all(|&s| s == 0));
        assert_eq!(silent, 480);
    }

    #[test]
    fn negative_sums_clip_too_and_slots_are_reused_after_reading() {
        let (mixer, mut output) = mix_buffer();
        let mut a = mixer.add_input();
        let mut b = mixer.add_input();
        for _ in 0..50 {
            // Many laps around the ring: a slot that was read must start from zero again.
            a.push(&[-30_000; 480]);
            b.push(&[-30_000; 480]);
            let (out, _) = pull(&mut output, 480);
            assert!(out.iter().all(|&s| s == 0 || s == i16::MIN));
        }
        let (out, _) = pull(&mut output, TARGET_LEAD as usize);
        assert!(out.iter().all(|&s| s == i16::MIN));
    }

    #[test]
    fn late_streams_are_replaced_and_runaway_streams_dropped() {
        let (mixer, mut output) = mix_buffer();
        let mut input = mixer.add_input();
        input.push(&[5; 480]);
        // Playback runs on for 100 ms with no new samples: the stream is now late.
        pull(&mut output, 4_800);
        assert_eq!(input.push(&[7; 480]), PushOutcome::Placed);
        let (out, _) = pull(&mut output, TARGET_LEAD as usize + 480);
        assert!(out[..TARGET_LEAD as usize].iter().all(|&s| s == 0));
        assert!(out[TARGET_LEAD as usize..].iter().all(|&s| s == 7));

        // A burst fills up to MAX_LEAD; everything beyond is dropped.
        let mut outcomes = Vec::new();
        for _ in 0..30 {
            outcomes.push(input.push(&[1; 480]));
        }
        let queued = outcomes
            .iter()
            .filter(|&&o| o != PushOutcome::Dropped)
            .count();
        assert_eq!(queued as u64, (MAX_LEAD - TARGET_LEAD) / 480);
        assert_eq!(outcomes.last(), Some(&PushOutcome::Dropped));
    }
}
