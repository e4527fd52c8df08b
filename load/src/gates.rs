//! `--ensure` thresholds: `ttfd.p99<50ms`, `loss==0`, `deltasPerSecond>=1000`.
//!
//! A gate is `METRIC OP VALUE[UNIT]`. Metrics: a histogram percentile
//! (`connect|ack|ttfd|gap|stream` . `min|p50|p90|p99|p999|max|mean`, in ms;
//! a value may carry `ms`, `us` or `s`), or a counter, named as in the
//! report's `counters` (`loss`, `duplicates`, `outOfOrder`,
//! `contentViolations`, `started`, `failed`, `completed`, `deltas`,
//! `deltasPerSecond`, `disconnects`, `errors`). Ops: `<`, `<=`, `>`, `>=`,
//! `==`, `!=`. Gates are checked before any socket opens (a typo fails fast)
//! and read the typed [`Report`], never a key by string.
//!
//! The three counters report version 2 renamed keep their old spelling
//! (`out_of_order`, `content_violations`, `deltas_per_s`): gates live in CI
//! scripts, and breaking them for a key style would help no one. Such a gate
//! carries a [`Gate::note`] naming the new key.

use crate::metrics::Hist;
use crate::report::Report;

/// A counter of the report a gate may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Started,
    Completed,
    Failed,
    Deltas,
    DeltasPerSecond,
    Loss,
    MissingSegments,
    MissingChars,
    Duplicates,
    OutOfOrder,
    ContentViolations,
    Disconnects,
    Errors,
    Deliveries,
    DeliveriesPerSecond,
    Misdeliveries,
    Claims,
    ClaimsPerSecond,
    GoodStreams,
    SloAttainment,
    Goodput,
}

/// Counter names (the report's keys), and the version 1 spelling where it
/// differs.
/// `--ensure`'s long help: the grammar and every metric name (a test keeps
/// the names in step with [`COUNTERS`], [`STATS`] and `Hist::ALL`).
pub const HELP: &str = "Fail with exit 99 unless this holds (repeatable): METRIC OP VALUE, \
OP one of < <= > >= == !=, e.g. 'ttfd.p99<50ms', 'loss==0', 'deliveriesPerSecond>=10000'.
Counters: loss (= missingSegments), missingSegments, missingChars, duplicates, outOfOrder, contentViolations, started, failed, completed, deltas, \
deltasPerSecond, disconnects, errors, deliveriesPerSecond, deliveries, misdeliveries, \
claimsPerSecond, claims, goodStreams, sloAttainment (0 to 1), goodput (good streams/s).
Latencies: <connect|ack|ttfd|ttsd|gap|tpot|stream|delivery|claim>.<min|p50|p90|p99|p999|max|mean>, \
in ms (a unit is optional: 50ms, 2s, 500us).";

const COUNTERS: &[(&str, Option<&str>, Counter)] = &[
    ("loss", None, Counter::Loss),
    ("missingSegments", None, Counter::MissingSegments),
    ("missingChars", None, Counter::MissingChars),
    ("duplicates", None, Counter::Duplicates),
    ("outOfOrder", Some("out_of_order"), Counter::OutOfOrder),
    (
        "contentViolations",
        Some("content_violations"),
        Counter::ContentViolations,
    ),
    ("started", None, Counter::Started),
    ("failed", None, Counter::Failed),
    ("completed", None, Counter::Completed),
    ("deltas", None, Counter::Deltas),
    (
        "deltasPerSecond",
        Some("deltas_per_s"),
        Counter::DeltasPerSecond,
    ),
    ("disconnects", None, Counter::Disconnects),
    ("errors", None, Counter::Errors),
    ("deliveriesPerSecond", None, Counter::DeliveriesPerSecond),
    ("deliveries", None, Counter::Deliveries),
    ("misdeliveries", None, Counter::Misdeliveries),
    ("claimsPerSecond", None, Counter::ClaimsPerSecond),
    ("claims", None, Counter::Claims),
    ("goodStreams", None, Counter::GoodStreams),
    ("sloAttainment", None, Counter::SloAttainment),
    ("goodput", None, Counter::Goodput),
];

/// A statistic of a latency summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    Min,
    P50,
    P90,
    P99,
    P999,
    Max,
    Mean,
}

const STATS: &[(&str, Stat)] = &[
    ("min", Stat::Min),
    ("p50", Stat::P50),
    ("p90", Stat::P90),
    ("p99", Stat::P99),
    ("p999", Stat::P999),
    ("max", Stat::Max),
    ("mean", Stat::Mean),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metric {
    Counter(Counter),
    Latency(Hist, Stat),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

const OPS: &[(&str, Op)] = &[
    ("<=", Op::Le),
    (">=", Op::Ge),
    ("==", Op::Eq),
    ("!=", Op::Ne),
    ("<", Op::Lt),
    (">", Op::Gt),
];

/// Every metric a gate can name, with its value in `report` (latencies
/// the run did not measure are left out).
pub fn every_metric(report: &Report) -> Vec<(String, f64)> {
    let mut all: Vec<(String, f64)> = COUNTERS
        .iter()
        .filter(|(name, _, _)| *name != "loss")
        .map(|(name, _, c)| (name.to_string(), report.counters.get(*c)))
        .collect();
    for h in Hist::ALL {
        if let Some(l) = report.latency_ms.get(h) {
            for (stat, s) in STATS {
                all.push((format!("{}.{stat}", h.name()), l.get(*s)));
            }
        }
    }
    all
}

#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    /// As the user typed it (the report and the summary show it so).
    pub text: String,
    /// Something to tell the user about how the gate was read.
    pub note: Option<String>,
    metric: Metric,
    op: Op,
    value: f64,
}

impl Gate {
    pub fn parse(text: &str) -> Result<Gate, String> {
        let t = text.replace(' ', "");
        let (op_text, op) = OPS
            .iter()
            .copied()
            .find(|(o, _)| t.contains(o))
            .ok_or_else(|| format!("{text:?}: no comparison (use <, <=, >, >=, == or !=)"))?;
        let (name, value) = t.split_once(op_text).unwrap_or((&t, ""));
        let mut note = None;
        let metric = if let Some((h, s)) = name.split_once('.') {
            let hist = Hist::from_name(h);
            let stat = STATS.iter().find(|(n, _)| *n == s).map(|(_, s)| *s);
            match (hist, stat) {
                (Some(h), Some(s)) => Metric::Latency(h, s),
                _ => return Err(unknown(text, name)),
            }
        } else {
            let (new, old, c) = COUNTERS
                .iter()
                .find(|(new, old, _)| *new == name || *old == Some(name))
                .copied()
                .ok_or_else(|| unknown(text, name))?;
            if old == Some(name) {
                note = Some(format!(
                    "--ensure {text:?}: the report calls {name} `{new}` since version 2; \
                     the old name still works, the new one is what the JSON shows"
                ));
            }
            Metric::Counter(c)
        };
        let latency = matches!(metric, Metric::Latency(..));
        let (number, scale) = if let Some(n) = value.strip_suffix("ms") {
            (n, 1.0)
        } else if let Some(n) = value.strip_suffix("us") {
            (n, 0.001)
        } else if let Some(n) = value.strip_suffix('s').filter(|_| latency) {
            (n, 1000.0)
        } else {
            (value, 1.0)
        };
        let value = number
            .parse::<f64>()
            .map_err(|_| format!("{text:?}: {value:?} is not a number"))?
            * scale;
        Ok(Gate {
            text: text.to_string(),
            note,
            metric,
            op,
            value,
        })
    }

    /// The metric's name as the report and `every_metric` spell it.
    fn key(&self) -> String {
        match self.metric {
            Metric::Counter(c) => COUNTERS
                .iter()
                .find(|(_, _, k)| *k == c)
                .map_or_else(String::new, |(n, _, _)| n.to_string()),
            Metric::Latency(h, s) => {
                let stat = STATS.iter().find(|(_, k)| *k == s).map_or("", |(n, _)| n);
                format!("{}.{stat}", h.name())
            }
        }
    }

    /// The measured value in the report (the median over `--repeat`s when
    /// there were several), and whether the gate holds (a latency the run
    /// did not measure fails it).
    pub fn check(&self, report: &Report) -> (Option<f64>, bool) {
        let median = report
            .repeats
            .as_ref()
            .and_then(|r| r.get(&self.key()))
            .map(|f| f.median);
        let actual = median.or_else(|| match self.metric {
            Metric::Counter(c) => Some(report.counters.get(c)),
            Metric::Latency(h, s) => report.latency_ms.get(h).map(|l| l.get(s)),
        });
        let Some(a) = actual else {
            return (None, false);
        };
        let holds = match self.op {
            Op::Lt => a < self.value,
            Op::Le => a <= self.value,
            Op::Gt => a > self.value,
            Op::Ge => a >= self.value,
            Op::Eq => a == self.value,
            Op::Ne => a != self.value,
        };
        (Some(a), holds)
    }
}

/// "unknown metric", with every name a gate may use, and the camelCase
/// spelling when the user wrote a snake_case one.
fn unknown(text: &str, name: &str) -> String {
    let camel: String = name
        .split('_')
        .enumerate()
        .map(|(i, w)| {
            let mut c = w.chars();
            match c.next() {
                Some(f) if i > 0 => f.to_uppercase().chain(c).collect(),
                _ => w.to_string(),
            }
        })
        .collect();
    let hint = if camel != name && COUNTERS.iter().any(|(n, _, _)| *n == camel) {
        format!(" (report keys are camelCase: did you mean {camel}?)")
    } else {
        String::new()
    };
    let hists: Vec<&str> = Hist::ALL.iter().map(|h| h.name()).collect();
    let stats: Vec<&str> = STATS.iter().map(|(n, _)| *n).collect();
    let counters: Vec<&str> = COUNTERS.iter().map(|(n, _, _)| *n).collect();
    format!(
        "{text:?}: unknown metric {name:?}{hint}; counters: {}; latencies: <{}>.<{}>",
        counters.join(", "),
        hists.join("|"),
        stats.join("|")
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_ensure_help_names_every_counter_latency_and_statistic() {
        for (name, _, _) in super::COUNTERS {
            assert!(
                super::HELP.contains(name),
                "{name} missing from --ensure help"
            );
        }
        for h in crate::metrics::Hist::ALL {
            assert!(super::HELP.contains(h.name()), "{} missing", h.name());
        }
        for (s, _) in super::STATS {
            assert!(super::HELP.contains(s), "{s} missing");
        }
    }

    use super::*;
    use crate::metrics::Metrics;
    use crate::report::{Report, Settings};

    fn report() -> Report {
        let mut m = Metrics::default();
        m.record(Hist::Ttfd, 12_500);
        m.deltas = 900;
        m.checks.out_of_order = 3;
        let mut r = Report::new(
            &m,
            1.0,
            "t".into(),
            "merged",
            Settings::Merged { files: vec![] },
        );
        r.counters.deltas_per_second = 900.0;
        r
    }

    fn holds(gate: &str) -> bool {
        Gate::parse(gate).expect("a valid gate").check(&report()).1
    }

    #[test]
    fn gates_compare_latencies_in_ms_with_units() {
        assert!(holds("ttfd.p99<50ms"));
        assert!(!holds("ttfd.p99 < 10"));
        assert!(holds("ttfd.p99<0.02s"));
        assert!(holds("ttfd.max>=12000us"));
        assert!(!holds("deltasPerSecond>=1000"));
        assert!(holds("loss==0"));
    }

    #[test]
    fn version_1_counter_names_still_work_with_a_note_naming_the_new_key() {
        for (old, new) in [
            ("out_of_order", "outOfOrder"),
            ("content_violations", "contentViolations"),
            ("deltas_per_s", "deltasPerSecond"),
        ] {
            let g = Gate::parse(&format!("{old}>=0")).expect("the old spelling");
            let note = g.note.clone().expect("a note");
            assert!(note.contains(new) && note.contains(old), "{note}");
            let same = Gate::parse(&format!("{new}>=0")).expect("the new spelling");
            assert_eq!(same.note, None);
            assert_eq!(g.check(&report()), same.check(&report()));
        }
        assert_eq!(
            Gate::parse("out_of_order==0")
                .expect("gate")
                .check(&report()),
            (Some(3.0), false)
        );
    }

    #[test]
    fn every_counter_a_gate_names_is_a_key_of_the_report() {
        let v = serde_json::to_value(report().counters).expect("serializes");
        for (name, _, _) in COUNTERS {
            assert!(
                v.get(*name).is_some(),
                "counters.{name} is not in the report"
            );
        }
    }

    #[test]
    fn typos_are_refused_naming_the_metrics_there_are() {
        let e = Gate::parse("ttfd.p98<1").expect_err("no p98");
        assert!(e.contains("unknown metric") && e.contains("p999"), "{e}");
        let e = Gate::parse("los==0").expect_err("a typo");
        assert!(
            e.contains("unknown metric") && e.contains("outOfOrder"),
            "{e}"
        );
        let e = Gate::parse("deltas_per_second>1").expect_err("snake case of a new key");
        assert!(e.contains("did you mean deltasPerSecond"), "{e}");
        assert!(
            Gate::parse("loss=0")
                .expect_err("one =")
                .contains("no comparison")
        );
        assert!(
            Gate::parse("loss==few")
                .expect_err("no number")
                .contains("not a number")
        );
        assert_eq!(
            Gate::parse("gap.p99<1").expect("gate").check(&report()).0,
            None,
            "a missing measure fails the gate"
        );
    }
}
