//! The stream view: how one streamed reply must misbehave, distilled once
//! when the stream starts, then read as plain fields before every delta.
//!
//! The random faults draw their positions here, from their seed and the
//! stream id (which the mock's seeded id generator makes the same on every
//! run), so a failing run is replayed exactly by giving the same seed.

use std::time::Duration;

use crate::seeded::{SplitMix, fnv1a};

/// How the stream task must misbehave, distilled from the active faults.
#[derive(Debug, Default, Clone)]
pub struct StreamFaults {
    pub first_delay: Option<Duration>,
    /// Added to the first delta's wait once for every other reply in
    /// flight when the stream starts (timing only: the fast path stays).
    pub per_load_delay: Option<Duration>,
    pub stall: Option<(usize, Duration)>,
    pub drop: Vec<usize>,
    pub duplicate: Vec<usize>,
    pub reorder: Vec<usize>,
    pub omit_done: bool,
    pub double_done: bool,
    pub delta_after_done: bool,
    pub wrong_content: Vec<usize>,
    pub wrong_stream_id: Vec<usize>,
    pub disconnect_after: Option<usize>,
    pub plain_message: bool,
    pub delta_not_streaming: bool,
    pub done_still_streaming: bool,
    pub done_content_wrong: bool,
}

impl StreamFaults {
    /// No stream fault at all: the normal, fastest path.
    pub fn is_clean(&self) -> bool {
        self.first_delay.is_none()
            && self.stall.is_none()
            && self.drop.is_empty()
            && self.duplicate.is_empty()
            && self.reorder.is_empty()
            && !self.omit_done
            && !self.double_done
            && !self.delta_after_done
            && self.wrong_content.is_empty()
            && self.wrong_stream_id.is_empty()
            && self.disconnect_after.is_none()
            && !self.plain_message
            && !self.delta_not_streaming
            && !self.done_still_streaming
            && !self.done_content_wrong
    }
}

/// What a random delta fault does to the deltas it draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RandomAction {
    Drop,
    Duplicate,
    Reorder,
}

/// Draws the deltas a random fault hits in one stream of `deltas` deltas;
/// returns how many it hit.
pub(super) fn draw(
    s: &mut StreamFaults,
    action: RandomAction,
    every: u64,
    seed: u64,
    stream_id: &str,
    deltas: usize,
) -> u64 {
    let mut rng = SplitMix::new(seed ^ fnv1a(stream_id));
    // The last delta has no successor to swap with.
    let last = if action == RandomAction::Reorder {
        deltas.saturating_sub(1)
    } else {
        deltas
    };
    let mut hits = 0;
    let mut swapped_last = false;
    for n in 1..=last {
        // A delta just swapped forward is not swapped again.
        let skip = std::mem::take(&mut swapped_last);
        if rng.next_u64().is_multiple_of(every) && !skip {
            swapped_last = action == RandomAction::Reorder;
            hits += 1;
            match action {
                RandomAction::Drop => s.drop.push(n),
                RandomAction::Duplicate => s.duplicate.push(n),
                RandomAction::Reorder => s.reorder.push(n),
            }
        }
    }
    hits
}
