//! `--repeat N`: the same run N times, every figure reported as its median
//! and a 95% confidence interval over the repeats.
//!
//! The interval is the distribution-free one for a median: the order
//! statistics `x(k)` and `x(n+1−k)` with the largest `k` for which the
//! binomial tail `P(B(n, ½) < k)` stays within 2.5 % on each side. It
//! assumes nothing about the shape of the figures (latency percentiles are
//! not normal), and with few repeats it cannot reach 95 %: then it is the
//! whole range, and `confidence` says what it does reach (93.75 % for 5
//! repeats, 98.4 % for 7). Gates read the medians.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::report::Report;

/// One figure over the repeats.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    pub median: f64,
    /// The interval's ends (order statistics of `values`).
    pub low: f64,
    pub high: f64,
    /// What the interval reaches: 0.95 or more when there are enough
    /// repeats, otherwise the whole range's confidence.
    pub confidence: f64,
    /// Each repeat's value, in run order.
    pub values: Vec<f64>,
}

/// Every figure a gate can name (`deltasPerSecond`, `ttfd.p99`, …).
pub type Repeats = BTreeMap<String, Figure>;

/// P(B(n, ½) ≤ k).
fn binomial_cdf(n: usize, k: usize) -> f64 {
    let mut term = 0.5f64.powi(n as i32); // C(n, 0) / 2^n
    let mut sum = term;
    for i in 1..=k.min(n) {
        term *= (n + 1 - i) as f64 / i as f64;
        sum += term;
    }
    sum
}

/// The median of `values` and its confidence interval.
pub fn figure(values: Vec<f64>) -> Option<Figure> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    // The largest k (1-based) with P(B < k) <= 2.5 %, at least 1.
    let k = (1..=n.div_ceil(2))
        .take_while(|&k| binomial_cdf(n, k - 1) <= 0.025)
        .last()
        .unwrap_or(1);
    let confidence = 1.0 - 2.0 * binomial_cdf(n, k - 1);
    Some(Figure {
        median,
        low: sorted[k - 1],
        high: sorted[n - k],
        confidence,
        values,
    })
}

/// Every figure of the reports, over the repeats.
pub fn summarize(reports: &[Report]) -> Repeats {
    let mut by_name: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in reports {
        for (name, value) in crate::gates::every_metric(r) {
            by_name.entry(name).or_default().push(value);
        }
    }
    by_name
        .into_iter()
        .filter_map(|(name, values)| figure(values).map(|f| (name, f)))
        .collect()
}

/// The figures the terminal and the page show (all are in the JSON).
pub const SHOWN: [&str; 8] = [
    "deltasPerSecond",
    "ttfd.p50",
    "ttfd.p99",
    "tpot.p50",
    "tpot.p99",
    "gap.p99",
    "sloAttainment",
    "goodput",
];

#[cfg(test)]
mod tests {
    use super::figure;

    #[test]
    fn few_repeats_give_the_range_and_say_what_it_reaches() {
        let f = figure(vec![3.0, 1.0, 2.0, 5.0, 4.0]).unwrap();
        assert_eq!((f.median, f.low, f.high), (3.0, 1.0, 5.0));
        assert!((f.confidence - 0.9375).abs() < 1e-9, "{}", f.confidence);
        assert_eq!(f.values, [3.0, 1.0, 2.0, 5.0, 4.0], "in run order");
    }

    #[test]
    fn enough_repeats_narrow_the_interval_to_95_percent() {
        // n = 10: k = 2 (P(B <= 1) = 1.07 %; P(B <= 2) = 5.5 %): x(2), x(9).
        let f = figure((1..=10).map(f64::from).collect()).unwrap();
        assert_eq!((f.median, f.low, f.high), (5.5, 2.0, 9.0));
        assert!(
            f.confidence >= 0.95 && f.confidence < 0.99,
            "{}",
            f.confidence
        );
        assert!(figure(vec![f64::NAN]).is_none());
    }
}
