//! HdrHistogram interval logs, so a run spread over several generator
//! processes (or machines) can be merged: `--hlog FILE` writes one, and
//! `proteus-load merge a.hlog b.hlog` adds them up.
//!
//! The file is a standard interval log (the Java `HistogramLogReader` and
//! `HdrHistogram` plotting tools read it): one tagged interval per latency
//! histogram (`connect`, `ack`, `ttfd`, `gap`, `stream`), V2-deflate encoded,
//! in microseconds. The counters ride along in one comment line,
//! `#proteus-load-counters {json}`, which the merge sums.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use serde_json::{Value, json};

use crate::metrics::Metrics;

const COUNTERS: &str = "#proteus-load-counters ";

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
        let counters = json!({
            "started": m.streams_started, "completed": m.streams_completed, "failed": m.streams_failed,
            "deltas": m.deltas, "bytes": m.bytes, "loss": m.checks.lost, "duplicates": m.checks.duplicates,
            "out_of_order": m.checks.out_of_order, "content_violations": m.checks.content_violations,
            "disconnects": m.disconnects, "errors": m.errors, "seconds": elapsed.as_secs_f64(),
        });
        log.write_comment(&format!("{}{counters}", &COUNTERS[1..]))
            .map_err(|e| e.to_string())?;
        for (name, h) in &m.hist {
            let tag = Tag::new(name);
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
        let counters: Value = text
            .lines()
            .find_map(|l| l.strip_prefix(COUNTERS))
            .and_then(|j| serde_json::from_str(j).ok())
            .ok_or_else(|| {
                format!("{shown}: no {COUNTERS:?} line (not written by proteus-load --hlog?)")
            })?;
        let n = |k: &str| counters[k].as_u64().unwrap_or(0);
        part.streams_started = n("started");
        part.streams_completed = n("completed");
        part.streams_failed = n("failed");
        part.deltas = n("deltas");
        part.bytes = n("bytes");
        part.checks.lost = n("loss");
        part.checks.duplicates = n("duplicates");
        part.checks.out_of_order = n("out_of_order");
        part.checks.content_violations = n("content_violations");
        part.disconnects = n("disconnects");
        part.errors = n("errors");
        seconds = seconds.max(counters["seconds"].as_f64().unwrap_or(0.0));
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
            if let Some(name) = crate::metrics::histogram_name(&name) {
                part.hist
                    .entry(name)
                    .or_insert_with(crate::metrics::histogram)
                    .add(&h)
                    .map_err(|e| format!("{shown}: {name}: {e:?}"))?;
            }
        }
        total.merge(&part);
    }
    Ok((total, seconds))
}
