//! What a run measures: latency histograms (microseconds) and exact counters.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use hdrhistogram::Histogram;
use proteus_conformance::stream::Counters;
use serde_json::{Value, json};

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

/// The latency histograms, by name.
pub const HISTOGRAMS: &[&str] = &["connect", "ack", "ttfd", "gap", "stream"];

pub fn histogram() -> Histogram<u64> {
    // 1 µs to 10 minutes at 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds")
}

/// The name in [`HISTOGRAMS`] spelled `name` (hlog tags come back as strings).
pub fn histogram_name(name: &str) -> Option<&'static str> {
    HISTOGRAMS.iter().copied().find(|n| *n == name)
}

/// Latency histograms shared by many per-connection tasks. A histogram of
/// this range holds ~170 KB of counts: one set per connection made a
/// 1,000-user run allocate ~1 GB at start (and the page faults delayed the
/// first sends by ~250 ms, counted as server latency). Tasks buffer samples
/// and record them here in batches, so memory grows with the shards, not
/// with the users.
#[derive(Debug, Clone, Default)]
pub struct SharedHistograms(Arc<Mutex<BTreeMap<&'static str, Histogram<u64>>>>);

impl SharedHistograms {
    /// `n` shards, to hand out round-robin.
    pub fn shards(n: usize) -> Vec<SharedHistograms> {
        (0..n.max(1)).map(|_| SharedHistograms::default()).collect()
    }

    fn record_all(&self, samples: &[(&'static str, u64)]) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for (name, micros) in samples {
            let _ = map
                .entry(name)
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
    pub hist: BTreeMap<&'static str, Histogram<u64>>,
    /// When set, samples go to these shared histograms in batches instead
    /// of `hist`; [`Metrics::flush`] before the task ends.
    shared: Option<(SharedHistograms, Vec<(&'static str, u64)>)>,
    pub streams_started: u64,
    pub streams_completed: u64,
    pub streams_failed: u64,
    pub deltas: u64,
    pub bytes: u64,
    pub disconnects: u64,
    pub errors: u64,
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

    pub fn record(&mut self, name: &'static str, micros: u64) {
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
                let _ = self.hist.entry(name).or_insert_with(histogram).add(h);
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
            let _ = self.hist.entry(name).or_insert_with(histogram).add(h);
        }
        if let Some((_, buffer)) = &other.shared {
            for (name, micros) in buffer {
                self.record(name, *micros);
            }
        }
        self.streams_started += other.streams_started;
        self.streams_completed += other.streams_completed;
        self.streams_failed += other.streams_failed;
        self.deltas += other.deltas;
        self.bytes += other.bytes;
        self.disconnects += other.disconnects;
        self.errors += other.errors;
        self.checks.deltas += other.checks.deltas;
        self.checks.duplicates += other.checks.duplicates;
        self.checks.out_of_order += other.checks.out_of_order;
        self.checks.lost += other.checks.lost;
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
        match (self.first_delta, self.last_delta) {
            (Some(a), Some(b)) if b > a => self.deltas as f64 / (b - a).as_secs_f64(),
            _ => 0.0,
        }
    }

    /// Summary of one histogram in milliseconds.
    pub fn summary(&self, name: &str) -> Value {
        let Some(h) = self.hist.get(name).filter(|h| !h.is_empty()) else {
            return Value::Null;
        };
        let ms = |v: u64| (v as f64 / 1000.0 * 1000.0).round() / 1000.0;
        json!({
            "count": h.len(), "min": ms(h.min()), "p50": ms(h.value_at_quantile(0.5)), "p90": ms(h.value_at_quantile(0.9)),
            "p99": ms(h.value_at_quantile(0.99)), "p999": ms(h.value_at_quantile(0.999)), "max": ms(h.max()), "mean": (h.mean() / 1000.0 * 1000.0).round() / 1000.0
        })
    }

    /// Percentile curve points (for plots): quantile → ms.
    pub fn curve(&self, name: &str) -> Value {
        let Some(h) = self.hist.get(name).filter(|h| !h.is_empty()) else {
            return json!([]);
        };
        let qs = [0.0, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9999, 1.0];
        json!(
            qs.iter()
                .map(|q| json!([q, h.value_at_quantile(*q) as f64 / 1000.0]))
                .collect::<Vec<_>>()
        )
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
            a.record("gap", 1000 + i);
        }
        a.flush();
        b.record("ttfd", 5000);
        b.record("ttfd", 7000);
        // b is not flushed: merge takes its buffered samples.
        let mut total = Metrics::default();
        total.merge(&a);
        total.merge(&b);
        total.absorb(&shards);
        assert_eq!(total.hist["gap"].len(), BATCH as u64 * 2 + 10);
        assert_eq!(total.hist["ttfd"].len(), 2);
        assert_eq!(total.hist["ttfd"].max(), 7003); // within 3 significant digits
        assert!(!total.hist.contains_key("connect"));
    }
}
