//! Service-level objectives per stream (`--slo 'ttfd<200ms'`) and the
//! measuring window (`--warmup`, `--cooldown`).
//!
//! What LLM-serving benchmarks call goodput, for delta streams: a stream is
//! **good** when it completed, nothing in it was lost, duplicated, reordered
//! or wrong (the stream checker's verdict for that stream), and it met every
//! SLO. **Attainment** is good streams over the streams that count: every
//! stream started, so errors, lost, incomplete and corrupted streams are in
//! the denominator as bad, minus the streams the window leaves out.
//! **Goodput** is good streams per second of the schedule.
//!
//! The window: a stream whose first delta arrives in the first `--warmup`
//! or the last `--cooldown` of the schedule is left out of the latency
//! histograms and of the attainment (counted in `excludedStreams`); the
//! exact counters (deltas, loss, …) still cover the whole run.

use std::str::FromStr;
use std::time::Duration;

use tokio::time::Instant;

/// What an SLO bounds, per stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Intended start → first delta.
    Ttfd,
    /// Intended start → second delta.
    Ttsd,
    /// Mean gap between the stream's deltas.
    Tpot,
    /// Intended start → `message:done`.
    Stream,
}

const MEASURES: [(&str, Measure); 4] = [
    ("ttfd", Measure::Ttfd),
    ("ttsd", Measure::Ttsd),
    ("tpot", Measure::Tpot),
    ("stream", Measure::Stream),
];

/// One objective: `MEASURE < LIMIT` or `MEASURE <= LIMIT`.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    pub text: String,
    measure: Measure,
    limit_us: u64,
    inclusive: bool,
}

pub const HELP: &str = "A per-stream objective, MEASURE<LIMIT or MEASURE<=LIMIT (repeatable): \
MEASURE one of ttfd, ttsd, tpot, stream; LIMIT with a unit (200ms, 1s, 500us). A stream is good \
when it completed undamaged and met every --slo; the report gives sloAttainment (good / counted \
streams) and goodput (good streams/s), both usable in --ensure.";

impl FromStr for Slo {
    type Err = String;

    fn from_str(text: &str) -> Result<Slo, String> {
        let t = text.replace(' ', "");
        let (name, inclusive, limit) = if let Some((n, l)) = t.split_once("<=") {
            (n, true, l)
        } else if let Some((n, l)) = t.split_once('<') {
            (n, false, l)
        } else {
            return Err(format!(
                "--slo {text:?}: an objective is an upper bound, MEASURE<LIMIT (e.g. ttfd<200ms)"
            ));
        };
        let measure = MEASURES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, m)| *m)
            .ok_or_else(|| {
                format!("--slo {text:?}: {name:?} is not a measure (ttfd, ttsd, tpot, stream)")
            })?;
        let (number, scale) = if let Some(n) = limit.strip_suffix("ms") {
            (n, 1_000.0)
        } else if let Some(n) = limit.strip_suffix("us") {
            (n, 1.0)
        } else if let Some(n) = limit.strip_suffix('s') {
            (n, 1_000_000.0)
        } else {
            return Err(format!(
                "--slo {text:?}: give the limit a unit (ms, s or us), e.g. {name}<200ms"
            ));
        };
        let value: f64 = number
            .parse()
            .map_err(|_| format!("--slo {text:?}: {number:?} is not a number"))?;
        Ok(Slo {
            text: text.to_string(),
            measure,
            limit_us: (value * scale).round() as u64,
            inclusive,
        })
    }
}

/// One finished stream's timings, in µs; `None` when not measured (a
/// subscriber that did not send has no intended start; a one-delta stream
/// has no second delta and no gaps).
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamTimes {
    pub ttfd: Option<u64>,
    pub ttsd: Option<u64>,
    pub tpot: Option<u64>,
    pub stream: Option<u64>,
}

impl Slo {
    /// Whether `t` meets this objective; a measure the stream does not have
    /// cannot miss it.
    pub fn met(&self, t: &StreamTimes) -> bool {
        let value = match self.measure {
            Measure::Ttfd => t.ttfd,
            Measure::Ttsd => t.ttsd,
            Measure::Tpot => t.tpot,
            Measure::Stream => t.stream,
        };
        value.is_none_or(|v| {
            if self.inclusive {
                v <= self.limit_us
            } else {
                v < self.limit_us
            }
        })
    }
}

/// The objectives and the window, shared by a run's readers.
#[derive(Debug, Clone, Default)]
pub struct Judge {
    pub slos: Vec<Slo>,
    pub warmup: Duration,
    pub cooldown: Duration,
    /// The schedule's length (the cooldown is its end).
    pub duration: Duration,
}

impl Judge {
    /// Whether a stream whose first delta came at `first` counts, for a run
    /// that started at `zero`.
    pub fn counts(&self, zero: Option<Instant>, first: Instant) -> bool {
        if self.warmup.is_zero() && self.cooldown.is_zero() {
            return true;
        }
        let Some(zero) = zero else { return true };
        let at = first.saturating_duration_since(zero);
        let before_cooldown = self.cooldown.is_zero() || at + self.cooldown < self.duration;
        at >= self.warmup && before_cooldown
    }

    /// Whether a completed stream is good: undamaged and within every SLO.
    pub fn good(&self, times: &StreamTimes, damaged: bool) -> bool {
        !damaged && self.slos.iter().all(|s| s.met(times))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objectives_parse_with_units_and_refuse_what_is_not_an_upper_bound() {
        let s: Slo = "ttfd<200ms".parse().unwrap();
        assert_eq!(
            (s.measure, s.limit_us, s.inclusive),
            (Measure::Ttfd, 200_000, false)
        );
        let s: Slo = "tpot <= 1.5s".parse().unwrap();
        assert_eq!(
            (s.measure, s.limit_us, s.inclusive),
            (Measure::Tpot, 1_500_000, true)
        );
        for bad in ["ttfd>200ms", "latency<2ms", "ttfd<200", "ttfd<fast"] {
            let e = bad.parse::<Slo>().unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn a_stream_is_good_only_undamaged_and_within_every_objective() {
        let judge = Judge {
            slos: vec!["ttfd<100ms".parse().unwrap(), "tpot<=10ms".parse().unwrap()],
            ..Judge::default()
        };
        let fast = StreamTimes {
            ttfd: Some(50_000),
            tpot: Some(10_000),
            ..StreamTimes::default()
        };
        assert!(judge.good(&fast, false));
        assert!(!judge.good(&fast, true), "a damaged stream is bad");
        let slow = StreamTimes {
            ttfd: Some(100_000),
            ..fast
        };
        assert!(!judge.good(&slow, false), "the bound is strict for <");
        let one_delta = StreamTimes {
            ttfd: Some(1),
            ..StreamTimes::default()
        };
        assert!(judge.good(&one_delta, false), "no gaps cannot miss tpot");
    }

    #[test]
    fn the_window_leaves_out_warmup_and_cooldown() {
        let judge = Judge {
            warmup: Duration::from_secs(2),
            cooldown: Duration::from_secs(3),
            duration: Duration::from_secs(10),
            ..Judge::default()
        };
        let zero = Instant::now();
        let at = |s: u64| zero + Duration::from_secs(s);
        assert!(!judge.counts(Some(zero), at(1)));
        assert!(judge.counts(Some(zero), at(2)));
        assert!(judge.counts(Some(zero), at(6)));
        assert!(!judge.counts(Some(zero), at(7)));
        assert!(
            !judge.counts(Some(zero), at(30)),
            "the grace is after the schedule"
        );
    }
}
