//! The per-stream part of the report: gaps by delta position, each
//! stream's delivery rate, and the SLO verdicts (attainment, goodput).

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::metrics::{Hist, Metrics, POSITIONS};

/// The gaps before deltas at positions `from..=to` (1-based; `to` null: and
/// later), in ms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PositionGap {
    pub from: u32,
    pub to: Option<u32>,
    pub count: u64,
    pub p50: f64,
    pub p99: f64,
}

/// Gap percentiles for each position bucket that has samples.
pub fn gaps_by_position(hist: &BTreeMap<Hist, Histogram<u64>>) -> Vec<PositionGap> {
    POSITIONS
        .iter()
        .enumerate()
        .filter_map(|(i, (from, to))| {
            let h = hist.get(&Hist::GapAt(i as u8)).filter(|h| !h.is_empty())?;
            Some(PositionGap {
                from: *from,
                to: (*to != u32::MAX).then_some(*to),
                count: h.len(),
                p50: h.value_at_quantile(0.5) as f64 / 1000.0,
                p99: h.value_at_quantile(0.99) as f64 / 1000.0,
            })
        })
        .collect()
}

/// Each stream's deltas per second (first to last delta), as a
/// distribution over the streams.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RateSummary {
    pub count: u64,
    pub min: f64,
    pub p1: f64,
    pub p10: f64,
    pub p50: f64,
    pub p90: f64,
    pub max: f64,
    pub mean: f64,
}

pub fn stream_rate(hist: &BTreeMap<Hist, Histogram<u64>>) -> Option<RateSummary> {
    let h = hist.get(&Hist::StreamRate).filter(|h| !h.is_empty())?;
    let q = |q: f64| h.value_at_quantile(q) as f64;
    Some(RateSummary {
        count: h.len(),
        min: h.min() as f64,
        p1: q(0.01),
        p10: q(0.1),
        p50: q(0.5),
        p90: q(0.9),
        max: h.max() as f64,
        mean: h.mean().round(),
    })
}

/// Good streams over the streams that count: started minus those the
/// measuring window left out (1 when none count).
pub fn attainment(m: &Metrics) -> f64 {
    let counted = m.streams_started.saturating_sub(m.excluded_streams);
    if counted == 0 {
        return 1.0;
    }
    (m.good_streams as f64 / counted as f64).min(1.0)
}
