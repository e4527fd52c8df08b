//! What a run measures: latency histograms (microseconds) and exact counters.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use hdrhistogram::Histogram;
use proteus_conformance::stream::Counters;

/// Live totals for the progress view, published by the readers in batches
/// (one shared atomic per delta would make every reader contend for one
/// cache line). One run per process, so one set.
pub struct Live {
    pub deltas: AtomicU64,
    pub completed: AtomicU64,
}

pub static LIVE: Live = Live {
    deltas: AtomicU64::new(0),
    completed: AtomicU64::new(0),
};

/// A latency a run measures. The names are the report's `latencyMs` keys,
/// the gates' metric prefixes and the hlog tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hist {
    /// Websocket open → `success`.
    Connect,
    /// Emit → its ack.
    Ack,
    /// Intended start → first delta.
    Ttfd,
    /// Intended start → second delta.
    Ttsd,
    /// Between two deltas of a stream.
    Gap,
    /// A stream's mean gap (first to last delta over the gaps): its time
    /// per output token, one sample per stream of two deltas or more.
    Tpot,
    /// Intended start → `message:done`.
    Stream,
    /// thenvoi: a message's intended send time → its `message_created` at
    /// a mentioned agent's socket.
    Delivery,
    /// thenvoi: `/processing` sent → `/processed` answered.
    Claim,
    /// A gap whose later delta is at a position of bucket `i` (see
    /// [`POSITIONS`]); not a gate metric, shown by position.
    GapAt(u8),
    /// A stream's deltas per second, first to last delta (a rate, not a
    /// latency: one sample per stream of two deltas or more).
    StreamRate,
}

/// Delta positions (1-based, inclusive) of the gap-by-position buckets:
/// the gap before delta 2, 3–4, 5–8, … , 129 and later.
pub const POSITIONS: [(u32, u32); 8] = [
    (2, 2),
    (3, 4),
    (5, 8),
    (9, 16),
    (17, 32),
    (33, 64),
    (65, 128),
    (129, u32::MAX),
];

/// The bucket of the gap before delta `position` (≥ 2).
pub fn position_bucket(position: u32) -> u8 {
    POSITIONS
        .iter()
        .position(|(_, to)| position <= *to)
        .unwrap_or(POSITIONS.len() - 1) as u8
}

/// Names of [`Hist::GapAt`] in hlogs.
const GAP_AT: [&str; 8] = [
    "gapAt2",
    "gapAt3to4",
    "gapAt5to8",
    "gapAt9to16",
    "gapAt17to32",
    "gapAt33to64",
    "gapAt65to128",
    "gapAt129up",
];

impl Hist {
    /// The latencies (report's `latencyMs`, gates).
    pub const ALL: [Hist; 9] = [
        Hist::Connect,
        Hist::Ack,
        Hist::Ttfd,
        Hist::Ttsd,
        Hist::Gap,
        Hist::Tpot,
        Hist::Stream,
        Hist::Delivery,
        Hist::Claim,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Hist::Connect => "connect",
            Hist::Ack => "ack",
            Hist::Ttfd => "ttfd",
            Hist::Ttsd => "ttsd",
            Hist::Gap => "gap",
            Hist::Tpot => "tpot",
            Hist::Stream => "stream",
            Hist::Delivery => "delivery",
            Hist::Claim => "claim",
            Hist::GapAt(i) => GAP_AT[usize::from(i).min(GAP_AT.len() - 1)],
            Hist::StreamRate => "streamRate",
        }
    }

    /// The latency spelled `name` (gates come as strings).
    pub fn from_name(name: &str) -> Option<Hist> {
        Hist::ALL.into_iter().find(|h| h.name() == name)
    }

    /// Any histogram spelled `name`, the positional and rate ones too
    /// (hlog tags, read back by `merge`).
    pub fn from_tag(name: &str) -> Option<Hist> {
        Hist::from_name(name)
            .or_else(|| (name == "streamRate").then_some(Hist::StreamRate))
            .or_else(|| {
                GAP_AT
                    .iter()
                    .position(|n| *n == name)
                    .map(|i| Hist::GapAt(i as u8))
            })
    }
}

pub fn histogram() -> Histogram<u64> {
    // 1 µs to 10 minutes at 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds")
}

/// Latency histograms shared by many per-connection tasks. A histogram of
/// this range holds ~170 KB of counts: one set per connection made a
/// 1,000-user run allocate ~1 GB at start (and the page faults delayed the
/// first sends by ~250 ms, counted as server latency). Tasks buffer samples
/// and record them here in batches, so memory grows with the shards, not
/// with the users.
#[derive(Debug, Clone, Default)]
pub struct SharedHistograms(Arc<Mutex<BTreeMap<Hist, Histogram<u64>>>>);

impl SharedHistograms {
    /// `n` shards, to hand out round-robin.
    pub fn shards(n: usize) -> Vec<SharedHistograms> {
        (0..n.max(1)).map(|_| SharedHistograms::default()).collect()
    }

    fn record_all(&self, samples: &[(Hist, u64)]) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for (name, micros) in samples {
            let _ = map
                .entry(*name)
                .or_insert_with(histogram)
                .record((*micros).clamp(1, 600_000_000));
        }
    }
}

/// Samples a task keeps before recording them into its shared shard.
const BATCH: usize = 256;

/// One worker's measurements; workers' are merged at the end.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Created on first use (see [`SharedHistograms`] for why that matters).
    pub hist: BTreeMap<Hist, Histogram<u64>>,
    /// When set, samples go to these shared histograms in batches instead
    /// of `hist`; [`Metrics::flush`] before the task ends.
    shared: Option<(SharedHistograms, Vec<(Hist, u64)>)>,
    pub streams_started: u64,
    pub streams_completed: u64,
    pub streams_failed: u64,
    pub deltas: u64,
    pub bytes: u64,
    pub disconnects: u64,
    pub errors: u64,
    /// thenvoi: `message_created` pushes that reached a mentioned agent.
    pub deliveries: u64,
    /// thenvoi: pushes an agent must not get (not mentioned, or its own).
    pub misdeliveries: u64,
    /// thenvoi: claim round trips (`/processing` then `/processed`) done.
    pub claims: u64,
    /// Streams that completed undamaged and met every `--slo`, among those
    /// the measuring window counts.
    pub good_streams: u64,
    /// Streams whose first delta came in `--warmup` or `--cooldown`: out of
    /// the latency statistics and of the SLO attainment.
    pub excluded_streams: u64,
    /// Loss, duplicates, reordering and content-rule violations (stream checker).
    pub checks: Counters,
    /// Deltas received per second of the run.
    pub per_second: Vec<u64>,
    /// When the first and the last delta arrived (the active window, over
    /// which deltas per second are computed).
    pub first_delta: Option<std::time::Instant>,
    pub last_delta: Option<std::time::Instant>,
}

impl Metrics {
    /// Metrics of one connection's task whose latencies go to `shared`.
    pub fn sharing(shared: SharedHistograms) -> Metrics {
        Metrics {
            shared: Some((shared, Vec::with_capacity(BATCH))),
            ..Metrics::default()
        }
    }

    pub fn record(&mut self, name: Hist, micros: u64) {
        match &mut self.shared {
            Some((shared, buffer)) => {
                buffer.push((name, micros));
                if buffer.len() >= BATCH {
                    shared.record_all(buffer);
                    buffer.clear();
                }
            }
            None => {
                let _ = self
                    .hist
                    .entry(name)
                    .or_insert_with(histogram)
                    .record(micros.clamp(1, 600_000_000));
            }
        }
    }

    /// Records buffered samples into the shared histograms.
    pub fn flush(&mut self) {
        if let Some((shared, buffer)) = &mut self.shared {
            shared.record_all(buffer);
            buffer.clear();
        }
    }

    /// Adds the histograms of shared shards (after their tasks flushed).
    pub fn absorb(&mut self, shards: &[SharedHistograms]) {
        for shard in shards {
            let map = shard.0.lock().unwrap_or_else(|p| p.into_inner());
            for (name, h) in map.iter() {
                let _ = self.hist.entry(*name).or_insert_with(histogram).add(h);
            }
        }
    }

    pub fn tick(&mut self, second: usize) {
        if self.per_second.len() <= second {
            self.per_second.resize(second + 1, 0);
        }
        self.per_second[second] += 1;
    }

    pub fn merge(&mut self, other: &Metrics) {
        for (name, h) in &other.hist {
            let _ = self.hist.entry(*name).or_insert_with(histogram).add(h);
        }
        if let Some((_, buffer)) = &other.shared {
            for (name, micros) in buffer {
                self.record(*name, *micros);
            }
        }
        self.streams_started += other.streams_started;
        self.streams_completed += other.streams_completed;
        self.streams_failed += other.streams_failed;
        self.deltas += other.deltas;
        self.bytes += other.bytes;
        self.disconnects += other.disconnects;
        self.errors += other.errors;
        self.deliveries += other.deliveries;
        self.misdeliveries += other.misdeliveries;
        self.claims += other.claims;
        self.good_streams += other.good_streams;
        self.excluded_streams += other.excluded_streams;
        self.checks.deltas += other.checks.deltas;
        self.checks.duplicates += other.checks.duplicates;
        self.checks.out_of_order += other.checks.out_of_order;
        self.checks.lost += other.checks.lost;
        self.checks.missing_chars += other.checks.missing_chars;
        self.checks.content_violations += other.checks.content_violations;
        self.first_delta = match (self.first_delta, other.first_delta) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_delta = self.last_delta.max(other.last_delta);
        if self.per_second.len() < other.per_second.len() {
            self.per_second.resize(other.per_second.len(), 0);
        }
        for (i, n) in other.per_second.iter().enumerate() {
            self.per_second[i] += n;
        }
    }

    /// Deltas per second between the first and the last delta (0 with fewer than two).
    pub fn active_rate(&self) -> f64 {
        self.active_rate_of(self.deltas)
    }

    /// `n` per second over the active window (the thenvoi scenario marks
    /// deliveries as the window's ends).
    pub fn active_rate_of(&self, n: u64) -> f64 {
        match (self.first_delta, self.last_delta) {
            (Some(a), Some(b)) if b > a => n as f64 / (b - a).as_secs_f64(),
            _ => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Samples of tasks sharing a shard reach the totals exactly once,
    /// whether flushed in batches, at the end, or still buffered at merge.
    #[test]
    fn shared_samples_are_counted_once() {
        let shards = SharedHistograms::shards(2);
        let mut a = Metrics::sharing(shards[0].clone());
        let mut b = Metrics::sharing(shards[1].clone());
        for i in 0..(BATCH as u64 * 2 + 10) {
            a.record(Hist::Gap, 1000 + i);
        }
        a.flush();
        b.record(Hist::Ttfd, 5000);
        b.record(Hist::Ttfd, 7000);
        // b is not flushed: merge takes its buffered samples.
        let mut total = Metrics::default();
        total.merge(&a);
        total.merge(&b);
        total.absorb(&shards);
        assert_eq!(total.hist[&Hist::Gap].len(), BATCH as u64 * 2 + 10);
        assert_eq!(total.hist[&Hist::Ttfd].len(), 2);
        assert_eq!(total.hist[&Hist::Ttfd].max(), 7003); // within 3 significant digits
        assert!(!total.hist.contains_key(&Hist::Connect));
    }
}
