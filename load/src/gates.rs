//! `--ensure` thresholds: `ttfd.p99<50ms`, `loss==0`, `deltas_per_s>=1000`.
//!
//! A gate is `METRIC OP VALUE[UNIT]`. Metrics: a histogram percentile
//! (`connect|ack|ttfd|gap|stream` . `p50|p90|p99|p999|max|mean`, in ms; a
//! value may carry `ms`, `us` or `s`), or a counter (`loss`, `duplicates`,
//! `out_of_order`, `content_violations`, `failed`, `completed`, `deltas`,
//! `deltas_per_s`, `disconnects`, `errors`). Ops: `<`, `<=`, `>`, `>=`, `==`,
//! `!=`. Gates are checked before any socket opens (a typo fails fast).

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    pub text: String,
    metric: String,
    op: &'static str,
    value: f64,
}

const COUNTERS: &[&str] = &[
    "loss",
    "duplicates",
    "out_of_order",
    "content_violations",
    "failed",
    "completed",
    "deltas",
    "deltas_per_s",
    "disconnects",
    "errors",
];
const HISTS: &[&str] = &["connect", "ack", "ttfd", "gap", "stream"];
const STATS: &[&str] = &["min", "p50", "p90", "p99", "p999", "max", "mean"];

impl Gate {
    pub fn parse(text: &str) -> Result<Gate, String> {
        let t = text.replace(' ', "");
        let op = ["<=", ">=", "==", "!=", "<", ">"]
            .into_iter()
            .find(|op| t.contains(op))
            .ok_or_else(|| format!("{text:?}: no comparison (use <, <=, >, >=, == or !=)"))?;
        let (metric, value) = t.split_once(op).expect("found above");
        let valid = COUNTERS.contains(&metric)
            || metric
                .split_once('.')
                .is_some_and(|(h, s)| HISTS.contains(&h) && STATS.contains(&s));
        if !valid {
            return Err(format!(
                "{text:?}: unknown metric {metric:?} (counters: {}; latencies: <{}>.<{}>)",
                COUNTERS.join(", "),
                HISTS.join("|"),
                STATS.join("|")
            ));
        }
        let (number, scale) = if let Some(n) = value.strip_suffix("ms") {
            (n, 1.0)
        } else if let Some(n) = value.strip_suffix("us") {
            (n, 0.001)
        } else if let Some(n) = value.strip_suffix('s').filter(|_| metric.contains('.')) {
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
            metric: metric.to_string(),
            op,
            value,
        })
    }

    /// The measured value in the report, and whether the gate holds.
    pub fn check(&self, report: &Value) -> (Option<f64>, bool) {
        let actual = match self.metric.split_once('.') {
            Some((h, s)) => report["latencyMs"][h][s].as_f64(),
            None => report["counters"][self.metric.as_str()].as_f64(),
        };
        let Some(a) = actual else {
            return (None, false);
        };
        let holds = match self.op {
            "<" => a < self.value,
            "<=" => a <= self.value,
            ">" => a > self.value,
            ">=" => a >= self.value,
            "==" => a == self.value,
            _ => a != self.value,
        };
        (Some(a), holds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gates_parse_check_and_refuse_typos() {
        let report = json!({ "latencyMs": { "ttfd": { "p99": 12.5 } }, "counters": { "loss": 0, "deltas_per_s": 900.0 } });
        assert!(Gate::parse("ttfd.p99<50ms").expect("gate").check(&report).1);
        assert!(!Gate::parse("ttfd.p99 < 10").expect("gate").check(&report).1);
        assert!(
            Gate::parse("ttfd.p99<0.02s")
                .expect("gate")
                .check(&report)
                .1
        );
        assert!(Gate::parse("loss==0").expect("gate").check(&report).1);
        assert!(
            !Gate::parse("deltas_per_s>=1000")
                .expect("gate")
                .check(&report)
                .1
        );
        assert!(
            Gate::parse("ttfd.p98<1")
                .unwrap_err()
                .contains("unknown metric")
        );
        assert!(
            Gate::parse("los==0")
                .unwrap_err()
                .contains("unknown metric")
        );
        assert!(
            Gate::parse("loss=0").unwrap_err().contains("no comparison")
                || Gate::parse("loss=0").is_err()
        );
        assert_eq!(
            Gate::parse("gap.p99<1").expect("gate").check(&json!({})).0,
            None,
            "a missing measure fails the gate"
        );
    }
}
