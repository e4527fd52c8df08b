//! The run's report: one typed value that the JSON file
//! (`schemas/report/load.json`), the `--ensure` gates, the terminal summary
//! and the HTML page all read.
//!
//! Why typed: when the report was a `serde_json::Value` re-read by string
//! keys, a renamed field was a silent `null` in whichever reader was not
//! updated. Now a rename is a compile error everywhere but in the schema and
//! the scripts, and the schema test catches those.
//!
//! Keys are camelCase throughout. Version 2 renamed three counters
//! (`deltas_per_s` → `deltasPerSecond`, `out_of_order` → `outOfOrder`,
//! `content_violations` → `contentViolations`), added `settings.graceS`,
//! `curvesMs.ack` and `ttfdHistogramMs`; version 3 added the per-stream
//! measures (`ttsd`, `tpot`, gaps by position, stream rates, SLO counters);
//! docs/LOAD.md has the table.

use std::fmt::Write as _;
use std::path::Path;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::cpu::Verdict;
use crate::gates::{Counter, Gate, Stat};
use crate::metrics::{Hist, Metrics};
use crate::scenario::Plan;

mod streams;
pub use streams::{PositionGap, RateSummary};

/// The schema version (`version`); bumped when a key changes meaning or
/// name, not when one is added.
pub const VERSION: u32 = 3;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub version: u32,
    pub tool: &'static str,
    pub tool_version: &'static str,
    pub target: String,
    /// A scenario's name, or `merged`.
    pub scenario: &'static str,
    pub settings: Settings,
    /// Wall-clock seconds of the run, setup included.
    pub seconds: f64,
    pub counters: Counters,
    pub latency_ms: Latencies,
    pub curves_ms: Curves,
    /// Gap percentiles by the later delta's position in its stream.
    pub gap_by_position_ms: Vec<PositionGap>,
    /// Each stream's deltas per second; null when no stream had two deltas.
    pub stream_rate_per_second: Option<RateSummary>,
    /// Time to first delta in 30 log-spaced buckets: `[from ms, streams]`.
    pub ttfd_histogram_ms: Vec<(f64, u64)>,
    pub per_second: PerSecond,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    pub gates: Vec<GateResult>,
    /// With `--repeat N`: every figure's median and 95% confidence interval
    /// over the repeats (the rest of the report is the last repeat's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeats: Option<crate::repeat::Repeats>,
}

/// What was asked: a run's plan, or the files a merge added up.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Settings {
    Run(Box<Plan>),
    Merged { files: Vec<String> },
}

/// Exact counts over the run. Also the `#proteus-load-counters` line of an
/// hlog (which adds `seconds`), read back by `merge`; the aliases read hlogs
/// written before version 2.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Counters {
    pub started: u64,
    pub completed: u64,
    pub failed: u64,
    pub deltas: u64,
    pub bytes: u64,
    /// Over the active window (first to last delta), not the setup.
    pub deltas_per_second: f64,
    /// Missing segments: holes in the streams' text, one per run of
    /// adjacent lost deltas (the wire cannot tell how many deltas a run
    /// was). `loss` is the same figure under its first name, for gates.
    pub missing_segments: u64,
    pub loss: u64,
    /// Characters of text never delivered (exact, from the cumulative
    /// `content` after each hole).
    pub missing_chars: u64,
    pub duplicates: u64,
    #[serde(alias = "out_of_order")]
    pub out_of_order: u64,
    #[serde(alias = "content_violations")]
    pub content_violations: u64,
    pub disconnects: u64,
    pub errors: u64,
    /// thenvoi: pushes that reached a mentioned agent, and per second over
    /// the active window (first to last delivery).
    pub deliveries: u64,
    pub deliveries_per_second: f64,
    /// thenvoi: pushes an agent must not get (unmentioned, or its own).
    pub misdeliveries: u64,
    /// thenvoi: claim round trips done, and per second of the schedule.
    pub claims: u64,
    pub claims_per_second: f64,
    /// Streams that completed undamaged and met every `--slo`.
    pub good_streams: u64,
    /// Streams left out by `--warmup` / `--cooldown`.
    pub excluded_streams: u64,
    /// Good streams over counted streams (started minus excluded).
    pub slo_attainment: f64,
    /// Good streams per second of the schedule.
    pub goodput: f64,
}

impl Counters {
    pub fn of(m: &Metrics, seconds: f64) -> Counters {
        let deltas_per_second = if m.first_delta.is_some() {
            m.active_rate()
        } else if seconds > 0.0 {
            m.deltas as f64 / seconds
        } else {
            0.0
        };
        Counters {
            started: m.streams_started,
            completed: m.streams_completed,
            failed: m.streams_failed,
            deltas: m.deltas,
            bytes: m.bytes,
            deltas_per_second,
            missing_segments: m.checks.lost,
            loss: m.checks.lost,
            missing_chars: m.checks.missing_chars,
            duplicates: m.checks.duplicates,
            out_of_order: m.checks.out_of_order,
            content_violations: m.checks.content_violations,
            disconnects: m.disconnects,
            errors: m.errors,
            deliveries: m.deliveries,
            deliveries_per_second: if m.deliveries > 0 {
                m.active_rate_of(m.deliveries)
            } else {
                0.0
            },
            misdeliveries: m.misdeliveries,
            claims: m.claims,
            claims_per_second: if seconds > 0.0 {
                m.claims as f64 / seconds
            } else {
                0.0
            },
            good_streams: m.good_streams,
            excluded_streams: m.excluded_streams,
            slo_attainment: streams::attainment(m),
            goodput: if seconds > 0.0 {
                m.good_streams as f64 / seconds
            } else {
                0.0
            },
        }
    }

    /// Back into metrics (an hlog's counters, for `merge`).
    pub fn add_to(&self, m: &mut Metrics) {
        m.streams_started += self.started;
        m.streams_completed += self.completed;
        m.streams_failed += self.failed;
        m.deltas += self.deltas;
        m.bytes += self.bytes;
        m.checks.lost += self.loss.max(self.missing_segments);
        m.checks.missing_chars += self.missing_chars;
        m.checks.duplicates += self.duplicates;
        m.checks.out_of_order += self.out_of_order;
        m.checks.content_violations += self.content_violations;
        m.disconnects += self.disconnects;
        m.errors += self.errors;
        m.deliveries += self.deliveries;
        m.misdeliveries += self.misdeliveries;
        m.claims += self.claims;
        m.good_streams += self.good_streams;
        m.excluded_streams += self.excluded_streams;
    }

    pub fn get(&self, c: Counter) -> f64 {
        match c {
            Counter::Started => self.started as f64,
            Counter::Completed => self.completed as f64,
            Counter::Failed => self.failed as f64,
            Counter::Deltas => self.deltas as f64,
            Counter::DeltasPerSecond => self.deltas_per_second,
            Counter::Loss | Counter::MissingSegments => self.missing_segments.max(self.loss) as f64,
            Counter::MissingChars => self.missing_chars as f64,
            Counter::Duplicates => self.duplicates as f64,
            Counter::OutOfOrder => self.out_of_order as f64,
            Counter::ContentViolations => self.content_violations as f64,
            Counter::Disconnects => self.disconnects as f64,
            Counter::Errors => self.errors as f64,
            Counter::Deliveries => self.deliveries as f64,
            Counter::DeliveriesPerSecond => self.deliveries_per_second,
            Counter::Misdeliveries => self.misdeliveries as f64,
            Counter::Claims => self.claims as f64,
            Counter::ClaimsPerSecond => self.claims_per_second,
            Counter::GoodStreams => self.good_streams as f64,
            Counter::SloAttainment => self.slo_attainment,
            Counter::Goodput => self.goodput,
        }
    }
}

/// One latency histogram in milliseconds (µs resolution).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub count: u64,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Summary {
    fn of(h: &Histogram<u64>) -> Summary {
        let ms = |micros: u64| micros as f64 / 1000.0;
        let q = |q: f64| ms(h.value_at_quantile(q));
        Summary {
            count: h.len(),
            min: ms(h.min()),
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            max: ms(h.max()),
            mean: h.mean().round() / 1000.0,
        }
    }

    pub fn get(&self, s: Stat) -> f64 {
        match s {
            Stat::Min => self.min,
            Stat::P50 => self.p50,
            Stat::P90 => self.p90,
            Stat::P99 => self.p99,
            Stat::P999 => self.p999,
            Stat::Max => self.max,
            Stat::Mean => self.mean,
        }
    }
}

/// Every latency the run measures; `null` when nothing was.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latencies {
    pub connect: Option<Summary>,
    pub ack: Option<Summary>,
    pub ttfd: Option<Summary>,
    pub ttsd: Option<Summary>,
    pub gap: Option<Summary>,
    pub tpot: Option<Summary>,
    pub stream: Option<Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim: Option<Summary>,
}

impl Latencies {
    pub fn get(&self, h: Hist) -> Option<&Summary> {
        match h {
            Hist::Connect => self.connect.as_ref(),
            Hist::Ack => self.ack.as_ref(),
            Hist::Ttfd => self.ttfd.as_ref(),
            Hist::Ttsd => self.ttsd.as_ref(),
            Hist::Gap => self.gap.as_ref(),
            Hist::Tpot => self.tpot.as_ref(),
            Hist::Stream => self.stream.as_ref(),
            Hist::Delivery => self.delivery.as_ref(),
            Hist::Claim => self.claim.as_ref(),
            Hist::GapAt(_) | Hist::StreamRate => None,
        }
    }
}

/// Latency by percentile, `[quantile, ms]`, on a "nines" grid (15 points per
/// nine: 0, …, 90%, …, 99%, … 99.99%), as far as the sample count resolves.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Curves {
    pub ttfd: Vec<(f64, f64)>,
    pub gap: Vec<(f64, f64)>,
    pub ack: Vec<(f64, f64)>,
}

/// How many nines a quantile has (0.99 → 2).
pub fn nines(q: f64) -> f64 {
    -(1.0 - q).max(1e-6).log10()
}

fn curve(h: Option<&Histogram<u64>>) -> Vec<(f64, f64)> {
    let Some(h) = h.filter(|h| !h.is_empty()) else {
        return Vec::new();
    };
    let top = nines(1.0 - 1.0 / h.len() as f64).min(4.0);
    (0..=60)
        .map(|i| 1.0 - 10f64.powf(-f64::from(i) / 15.0))
        .filter(|q| nines(*q) <= top)
        .map(|q| (q, h.value_at_quantile(q) as f64 / 1000.0))
        .collect()
}

/// 30 log-spaced buckets from the fastest to the slowest sample; each
/// sample in exactly one.
fn buckets(h: Option<&Histogram<u64>>) -> Vec<(f64, u64)> {
    const N: usize = 30;
    let Some(h) = h.filter(|h| !h.is_empty()) else {
        return Vec::new();
    };
    let (lo, hi) = (h.min().max(1) as f64, h.max().max(2) as f64);
    let ratio = (hi / lo).powf(1.0 / N as f64).max(1.000_001);
    let mut counts = [0u64; N];
    for v in h.iter_recorded() {
        let at = (v.value_iterated_to().max(1) as f64 / lo).ln() / ratio.ln();
        counts[(at.max(0.0) as usize).min(N - 1)] += v.count_since_last_iteration();
    }
    counts
        .iter()
        .enumerate()
        .map(|(i, c)| (lo * ratio.powi(i as i32) / 1000.0, *c))
        .collect()
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PerSecond {
    /// Deltas received in each second of the run.
    pub deltas: Vec<u64>,
}

/// CPU used by the run (`--server-pid` for the server's).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cpu {
    pub generator_seconds: Option<f64>,
    pub server_seconds: Option<f64>,
    /// The server's CPU from the clock's start (setup done) to the end.
    pub server_seconds_measured: Option<f64>,
    pub deltas_per_server_core: Option<f64>,
    pub generator: Verdict,
    pub server: Option<Verdict>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateResult {
    /// As the user typed it.
    pub gate: String,
    /// The measured value; `null` when the run did not measure it.
    pub actual: Option<f64>,
    pub holds: bool,
}

impl Report {
    /// The report of metrics `m` over `seconds`, without CPU or gates.
    pub fn new(
        m: &Metrics,
        seconds: f64,
        target: String,
        scenario: &'static str,
        settings: Settings,
    ) -> Report {
        let summary = |h: Hist| m.hist.get(&h).filter(|h| !h.is_empty()).map(Summary::of);
        Report {
            version: VERSION,
            tool: "proteus-load",
            tool_version: env!("CARGO_PKG_VERSION"),
            target,
            scenario,
            settings,
            seconds,
            counters: Counters::of(m, seconds),
            latency_ms: Latencies {
                connect: summary(Hist::Connect),
                ack: summary(Hist::Ack),
                ttfd: summary(Hist::Ttfd),
                ttsd: summary(Hist::Ttsd),
                gap: summary(Hist::Gap),
                tpot: summary(Hist::Tpot),
                stream: summary(Hist::Stream),
                delivery: summary(Hist::Delivery),
                claim: summary(Hist::Claim),
            },
            curves_ms: Curves {
                ttfd: curve(m.hist.get(&Hist::Ttfd)),
                gap: curve(m.hist.get(&Hist::Gap)),
                ack: curve(m.hist.get(&Hist::Ack)),
            },
            ttfd_histogram_ms: buckets(m.hist.get(&Hist::Ttfd)),
            gap_by_position_ms: streams::gaps_by_position(&m.hist),
            stream_rate_per_second: streams::stream_rate(&m.hist),
            per_second: PerSecond {
                deltas: m.per_second.clone(),
            },
            cpu: None,
            gates: Vec::new(),
            repeats: None,
        }
    }

    /// Checks `gates` into the report; true when one was crossed.
    pub fn check(&mut self, gates: &[Gate]) -> bool {
        self.gates = gates
            .iter()
            .map(|g| {
                let (actual, holds) = g.check(self);
                GateResult {
                    gate: g.text.clone(),
                    actual,
                    holds,
                }
            })
            .collect();
        self.gates.iter().any(|g| !g.holds)
    }

    /// What the terminal shows after a run: the counters, one line per
    /// latency measured, one per gate.
    pub fn summary(&self) -> String {
        let c = &self.counters;
        // fanout: every send is a stream at each subscriber; say so.
        let per_send = match &self.settings {
            Settings::Run(plan) if self.scenario == "fanout" && plan.subscribers > 0 => {
                let subscribers = plan.subscribers as u64;
                format!(
                    "{} sends to {subscribers} subscribers: ",
                    c.started / subscribers
                )
            }
            _ => String::new(),
        };
        let mut s = String::new();
        // Thenvoi counts messages and deliveries, not streams: its own line.
        if self.scenario != "thenvoi" {
            let _ = writeln!(
                s,
                "{per_send}{} streams started, {} completed, {} failed; {} deltas ({:.0}/s); missing {} segments ({} characters), duplicates {}, out of order {}, content violations {}; disconnects {}",
                c.started,
                c.completed,
                c.failed,
                c.deltas,
                c.deltas_per_second,
                c.missing_segments,
                c.missing_chars,
                c.duplicates,
                c.out_of_order,
                c.content_violations,
                c.disconnects
            );
        }
        if self.scenario == "thenvoi" {
            let _ = writeln!(
                s,
                "{} messages sent; {} deliveries ({:.0}/s); {} missing; {} misdeliveries; {} claims ({:.1}/s); {} errors; {} disconnects",
                c.started,
                c.deliveries,
                c.deliveries_per_second,
                c.loss,
                c.misdeliveries,
                c.claims,
                c.claims_per_second,
                c.errors,
                c.disconnects
            );
        }
        for h in Hist::ALL {
            if let Some(l) = self.latency_ms.get(h) {
                let _ = writeln!(
                    s,
                    "{:<8} p50 {:>9.3} ms  p90 {:>9.3}  p99 {:>9.3}  max {:>9.3}  (n={})",
                    h.name(),
                    l.p50,
                    l.p90,
                    l.p99,
                    l.max,
                    l.count
                );
            }
        }
        if c.started > 0 && self.scenario != "thenvoi" && self.scenario != "connect" {
            let _ = writeln!(
                s,
                "streams  good {} of {} counted: SLO attainment {:.2}%, goodput {:.1}/s{}",
                c.good_streams,
                c.started.saturating_sub(c.excluded_streams),
                c.slo_attainment * 100.0,
                c.goodput,
                if c.excluded_streams > 0 {
                    format!(" ({} left out by --warmup/--cooldown)", c.excluded_streams)
                } else {
                    String::new()
                }
            );
        }
        if let Some(repeats) = &self.repeats {
            let n = repeats.values().map(|f| f.values.len()).max().unwrap_or(0);
            let _ = writeln!(s, "over {n} repeats: median [confidence interval]");
            for name in crate::repeat::SHOWN {
                if let Some(f) = repeats.get(name) {
                    let _ = writeln!(
                        s,
                        "  {name:<16} {:>12.3} [{:.3} .. {:.3}] ({:.1}%)",
                        f.median,
                        f.low,
                        f.high,
                        f.confidence * 100.0
                    );
                }
            }
        }
        if let Some(cpu) = &self.cpu {
            let secs = |v: Option<f64>| v.map_or_else(|| "?".into(), |v| format!("{v:.2} s"));
            let _ = write!(s, "cpu      generator {}", secs(cpu.generator_seconds));
            if cpu.server.is_some() || cpu.server_seconds.is_some() {
                let _ = write!(s, ", server {}", secs(cpu.server_seconds));
                if let Some(after) = cpu.server_seconds_measured {
                    let _ = write!(s, " ({after:.2} s after setup)");
                }
                if let Some(per) = cpu.deltas_per_server_core.filter(|p| *p > 0.0) {
                    let _ = write!(s, " ({per:.0} deltas per server CPU-second)");
                }
            }
            let saturated = cpu.generator.saturated_intervals;
            if saturated > 0 {
                let _ = write!(
                    s,
                    "; the generator was saturated {saturated} s of {} (figures may be its limit, not the server's)",
                    cpu.generator.intervals
                );
            }
            s.push('\n');
        }
        for g in &self.gates {
            let actual = g.actual.map_or_else(|| "null".into(), |a| a.to_string());
            let _ = writeln!(
                s,
                "ensure {:<24} {} (actual {actual})",
                g.gate,
                if g.holds { "ok" } else { "CROSSED" }
            );
        }
        s
    }

    /// Writes the JSON report to `path`.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        use anyhow::Context as _;
        let text = serde_json::to_string_pretty(self).context("cannot encode the report")?;
        std::fs::write(path, text)
            .with_context(|| format!("cannot write the report to {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proteus_conformance::schema::SchemaSet;

    fn metrics() -> Metrics {
        let mut m = Metrics::default();
        for (i, micros) in [800u64, 1200, 1500, 9000].into_iter().enumerate() {
            m.record(Hist::Ttfd, micros);
            m.record(Hist::Gap, 100 * (i as u64 + 1));
        }
        m.streams_started = 4;
        m.streams_completed = 4;
        m.deltas = 40;
        m.checks.out_of_order = 2;
        m.per_second = vec![10, 30];
        m
    }

    fn report() -> Report {
        Report::new(
            &metrics(),
            2.0,
            "http://127.0.0.1:4000".into(),
            "merged",
            Settings::Merged {
                files: vec!["a.hlog".into()],
            },
        )
    }

    #[test]
    fn the_report_matches_its_schema_and_every_key_is_camel_case() {
        let mut r = report();
        r.check(&[Gate::parse("ttfd.p99<5ms").expect("gate")]);
        let v = serde_json::to_value(&r).expect("serializes");
        if let Err(e) = SchemaSet::embedded().check("report/load", &v) {
            panic!("schemas/report/load.json refuses the report: {e:?}\n{v:#}");
        }
        fn keys(v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(o) => o.iter().for_each(|(k, v)| {
                    out.push(k.clone());
                    keys(v, out)
                }),
                serde_json::Value::Array(a) => a.iter().for_each(|v| keys(v, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        keys(&v, &mut all);
        let snake: Vec<&String> = all.iter().filter(|k| k.contains('_')).collect();
        assert!(snake.is_empty(), "snake_case keys: {snake:?}");
        assert_eq!(v["version"], 3);
        assert_eq!(v["counters"]["outOfOrder"], 2);
        assert_eq!(v["latencyMs"]["connect"], serde_json::Value::Null);
    }

    #[test]
    fn a_schema_for_version_1_keys_is_refused() {
        let mut v = serde_json::to_value(report()).expect("serializes");
        v["counters"]["out_of_order"] = serde_json::json!(0);
        assert!(
            SchemaSet::embedded().check("report/load", &v).is_err(),
            "a stray snake_case counter must not validate"
        );
    }

    #[test]
    fn gates_read_the_same_numbers_the_summary_prints() {
        let mut r = report();
        let crossed = r.check(&[
            Gate::parse("ttfd.p99<5ms").expect("gate"),
            Gate::parse("outOfOrder==0").expect("gate"),
            Gate::parse("ack.p50<1ms").expect("gate"),
        ]);
        assert!(crossed);
        let ttfd = r.latency_ms.ttfd.expect("measured");
        assert_eq!(r.gates[0].actual, Some(ttfd.p99));
        assert!(!r.gates[0].holds, "p99 {} ms", ttfd.p99);
        assert_eq!((r.gates[1].actual, r.gates[1].holds), (Some(2.0), false));
        assert_eq!(
            (r.gates[2].actual, r.gates[2].holds),
            (None, false),
            "a latency not measured fails its gate"
        );
        let text = r.summary();
        assert!(text.contains("out of order 2"), "{text}");
        assert!(text.contains(&format!("p99 {:>9.3}", ttfd.p99)), "{text}");
        assert!(
            text.contains("ensure ack.p50<1ms") && text.contains("(actual null)"),
            "{text}"
        );
    }

    #[test]
    fn counters_read_hlog_lines_of_either_version() {
        let old: Counters = serde_json::from_str(
            r#"{"started":3,"out_of_order":2,"content_violations":1,"seconds":4.0}"#,
        )
        .expect("a version 1 line");
        let new: Counters =
            serde_json::from_str(r#"{"started":3,"outOfOrder":2,"contentViolations":1}"#)
                .expect("a version 2 line");
        assert_eq!(old, new);
        assert_eq!((old.out_of_order, old.content_violations), (2, 1));
    }

    #[test]
    fn curves_stop_where_the_samples_do() {
        let r = report();
        // 4 samples resolve quantiles up to 75% (0.6 nines).
        assert!(!r.curves_ms.ttfd.is_empty());
        assert!(
            r.curves_ms
                .ttfd
                .iter()
                .all(|(q, _)| nines(*q) <= nines(0.75) + 1e-9)
        );
        assert!(r.curves_ms.ack.is_empty());
        assert_eq!(r.ttfd_histogram_ms.len(), 30);
        assert_eq!(r.ttfd_histogram_ms.iter().map(|b| b.1).sum::<u64>(), 4);
    }
}
