//! HdrHistogram interval logs, so a run spread over several generator
//! processes (or machines) can be merged: `--hlog FILE` writes one, and
//! `proteus-load merge a.hlog b.hlog` adds them up.
//!
//! The file is a standard interval log (the Java `HistogramLogReader` and
//! `HdrHistogram` plotting tools read it): one tagged interval per latency
//! histogram (`connect`, `ack`, `ttfd`, `gap`, `stream`), V2-deflate encoded,
//! in microseconds. The counters ride along in one comment line,
//! `#proteus-load-counters {json}` (the report's `counters` plus `seconds`),
//! which the merge sums; lines written before report version 2 (snake_case
//! keys) are read too.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

use crate::metrics::{Hist, Metrics};
use crate::report::Counters;

const COUNTERS: &str = "#proteus-load-counters ";

/// The counters line as written.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    counters: &'a Counters,
    seconds: f64,
}

/// The run's seconds, read from the counters line.
#[derive(Deserialize)]
struct Seconds {
    #[serde(default)]
    seconds: f64,
}

/// Writes `m` as an interval log covering `started`..`started + elapsed`.
pub fn write(
    path: &std::path::Path,
    m: &Metrics,
    started: SystemTime,
    elapsed: Duration,
) -> Result<(), String> {
    let mut out = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    let start = started
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    {
        let mut log = IntervalLogWriterBuilder::new()
            .add_comment(
                "proteus-load: latency histograms in microseconds, one interval per metric",
            )
            .with_start_time(started)
            .begin_log_with(&mut out, &mut serializer)
            .map_err(|e| e.to_string())?;
        let seconds = elapsed.as_secs_f64();
        let line = Line {
            counters: &Counters::of(m, seconds),
            seconds,
        };
        let json = serde_json::to_string(&line).map_err(|e| e.to_string())?;
        log.write_comment(&format!("{}{json}", &COUNTERS[1..]))
            .map_err(|e| e.to_string())?;
        for (name, h) in &m.hist {
            let tag = Tag::new(name.name());
            log.write_histogram(h, start, elapsed, tag)
                .map_err(|e| format!("{e:?}"))?;
        }
    }
    std::fs::write(path, out).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Reads and adds up interval logs; returns the merged metrics and the
/// longest run's seconds.
pub fn merge(paths: &[std::path::PathBuf]) -> Result<(Metrics, f64), String> {
    let mut total = Metrics::default();
    let mut seconds: f64 = 0.0;
    let mut deserializer = Deserializer::new();
    for path in paths {
        let shown = path.display();
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
        let text = String::from_utf8_lossy(&bytes);
        let mut part = Metrics::default();
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(COUNTERS))
            .ok_or_else(|| {
                format!("{shown}: no {COUNTERS:?} line (not written by proteus-load --hlog?)")
            })?;
        let counters: Counters = serde_json::from_str(line)
            .map_err(|e| format!("{shown}: the {COUNTERS:?} line is not its JSON: {e}"))?;
        let Seconds { seconds: s } = serde_json::from_str(line)
            .map_err(|e| format!("{shown}: the {COUNTERS:?} line is not its JSON: {e}"))?;
        counters.add_to(&mut part);
        seconds = seconds.max(s);
        for entry in IntervalLogIterator::new(&bytes) {
            let LogEntry::Interval(interval) = entry.map_err(|e| format!("{shown}: {e:?}"))? else {
                continue;
            };
            let Some(name) = interval.tag().map(|t| t.as_str().to_string()) else {
                continue;
            };
            let raw = base64::engine::general_purpose::STANDARD
                .decode(interval.encoded_histogram())
                .map_err(|e| format!("{shown}: interval {name}: {e}"))?;
            let h: hdrhistogram::Histogram<u64> = deserializer
                .deserialize(&mut raw.as_slice())
                .map_err(|e| format!("{shown}: interval {name}: {e:?}"))?;
            if let Some(hist) = Hist::from_tag(&name) {
                part.hist
                    .entry(hist)
                    .or_insert_with(crate::metrics::histogram)
                    .add(&h)
                    .map_err(|e| format!("{shown}: {name}: {e:?}"))?;
            }
        }
        total.merge(&part);
    }
    Ok((total, seconds))
}
