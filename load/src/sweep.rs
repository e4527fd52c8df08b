//! `proteus-load sweep`: one short run per offered rate, to find where
//! latency breaks (the knee).
//!
//! The rates go from `--from` to `--to` in `--steps` steps evenly spaced on
//! a log scale (a knee may sit anywhere across orders of magnitude), or,
//! with `--double`, double from `--from` until a step misses the target.
//! The **knee** is the highest rate up to which every step kept its SLO
//! attainment at or above `--attainment` and lost nothing: the last good
//! step before the first bad one. The report (`--json`, `--html`) shows
//! throughput, goodput and TTFD/TPOT percentiles against the offered rate,
//! and the generator's own CPU per delivered delta at each step, so a knee
//! caused by the generator would show.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use proteus_conformance::profile::Profile;
use serde::Serialize;

use crate::report::Report;
use crate::scenario::Plan;
use crate::{Fatal, RunArgs, html, measure};

/// The sweep report's schema version (`schemas/report/sweep.json`).
pub const VERSION: u32 = 1;

#[derive(clap::Args, Debug)]
pub struct SweepArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// The first offered rate (streams per second).
    #[arg(long, value_name = "RATE", help_heading = "Sweep")]
    pub from: f64,
    /// The last offered rate (with --double: the highest to try).
    #[arg(long, value_name = "RATE", help_heading = "Sweep")]
    pub to: f64,
    /// How many rates, --from to --to evenly spaced on a log scale.
    #[arg(long, default_value_t = 5, value_name = "N", help_heading = "Sweep")]
    pub steps: usize,
    /// Double the rate from --from until a step misses --attainment or loses
    /// anything (or --to is passed), instead of --steps.
    #[arg(long, help_heading = "Sweep")]
    pub double: bool,
    /// The SLO attainment a rate must keep to be below the knee (0 to 1).
    #[arg(
        long,
        default_value_t = 0.99,
        value_name = "SHARE",
        help_heading = "Sweep"
    )]
    pub attainment: f64,
}

/// A percentile pair, in ms (null when not measured).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Pair {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
}

/// One offered rate's outcome.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub offered_rate: f64,
    pub seconds: f64,
    pub started: u64,
    pub completed: u64,
    /// Completed streams per second of the run.
    pub streams_per_second: f64,
    pub deltas_per_second: f64,
    pub ttfd_ms: Pair,
    pub tpot_ms: Pair,
    pub gap_ms: Pair,
    pub slo_attainment: f64,
    pub goodput: f64,
    pub missing_segments: u64,
    pub errors: u64,
    pub generator_cpu_seconds: Option<f64>,
    /// The generator's CPU per delivered delta, in µs.
    pub generator_us_per_delta: Option<f64>,
    /// Attainment at or above the target, nothing lost, no error.
    pub good: bool,
}

impl Step {
    fn of(rate: f64, r: &Report, target: f64) -> Step {
        let c = &r.counters;
        let pair = |h: Option<&crate::report::Summary>| Pair {
            p50: h.map(|s| s.p50),
            p99: h.map(|s| s.p99),
        };
        let cpu = r.cpu.as_ref().and_then(|c| c.generator_seconds);
        Step {
            offered_rate: rate,
            seconds: r.seconds,
            started: c.started,
            completed: c.completed,
            streams_per_second: if r.seconds > 0.0 {
                c.completed as f64 / r.seconds
            } else {
                0.0
            },
            deltas_per_second: c.deltas_per_second,
            ttfd_ms: pair(r.latency_ms.ttfd.as_ref()),
            tpot_ms: pair(r.latency_ms.tpot.as_ref()),
            gap_ms: pair(r.latency_ms.gap.as_ref()),
            slo_attainment: c.slo_attainment,
            goodput: c.goodput,
            missing_segments: c.missing_segments,
            errors: c.errors,
            generator_cpu_seconds: cpu,
            generator_us_per_delta: cpu
                .filter(|_| c.deltas > 0)
                .map(|s| s * 1e6 / c.deltas as f64),
            good: c.slo_attainment >= target
                && c.missing_segments == 0
                && c.errors == 0
                && c.started > 0,
        }
    }
}

/// The sweep's report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    pub version: u32,
    pub tool: &'static str,
    pub tool_version: &'static str,
    pub target: String,
    pub scenario: &'static str,
    /// The plan of every step (its `rate` is the last step's).
    pub settings: Plan,
    pub attainment_target: f64,
    pub steps: Vec<Step>,
    /// The highest offered rate below the knee; null when the first step
    /// already missed.
    pub knee: Option<f64>,
}

impl SweepReport {
    /// The last good step before the first bad one.
    fn knee(steps: &[Step]) -> Option<f64> {
        steps
            .iter()
            .take_while(|s| s.good)
            .last()
            .map(|s| s.offered_rate)
    }
}

/// The rates of a sweep without `--double`: log-spaced, ends included.
pub fn rates(from: f64, to: f64, steps: usize) -> Vec<f64> {
    if steps <= 1 || to <= from {
        return vec![from];
    }
    let ratio = (to / from).powf(1.0 / (steps - 1) as f64);
    (0..steps)
        .map(|i| {
            let r = from * ratio.powi(i as i32);
            (r * 1000.0).round() / 1000.0
        })
        .collect()
}

pub async fn sweep(s: SweepArgs) -> Result<i32, Fatal> {
    let a = &s.run;
    if !a.ensure.is_empty() || a.hlog.is_some() || a.plan.workers > 1 {
        return Err(Fatal::usage(anyhow!(
            "sweep takes no --ensure, --hlog or --workers: it judges each rate by \
             --attainment and its SLOs (--slo); run one rate with `proteus-load run` for those"
        )));
    }
    if !(s.from > 0.0 && s.to >= s.from && (0.0..=1.0).contains(&s.attainment)) {
        return Err(Fatal::usage(anyhow!(
            "sweep needs 0 < --from <= --to and 0 <= --attainment <= 1 (got {}, {}, {})",
            s.from,
            s.to,
            s.attainment
        )));
    }
    let planned = if s.double {
        std::iter::successors(Some(s.from), |r| Some(r * 2.0))
            .take_while(|r| *r <= s.to * 1.000_001)
            .take(20)
            .collect()
    } else {
        rates(s.from, s.to, s.steps)
    };
    for r in &planned {
        a.scenario
            .check_rate(*r)
            .map_err(|e| Fatal::usage(anyhow!(e)))?;
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let profile = Arc::new(
        Profile::load(&http, &a.target, a.profile.as_deref())
            .await
            .map_err(|e| Fatal {
                code: e.exit_code(),
                error: e.into(),
            })?,
    );
    let mut steps = Vec::new();
    let mut plan = a.plan.clone();
    for rate in planned {
        plan.rate = rate;
        let measured = measure(a, profile.clone(), plan.clone()).await?;
        let step = Step::of(rate, &measured.report, s.attainment);
        println!(
            "rate {rate:>9.3}/s: {:.1} streams/s done, ttfd p50 {} p99 {} ms, tpot p99 {} ms, attainment {:.2}%, missing {}{}",
            step.streams_per_second,
            ms(step.ttfd_ms.p50),
            ms(step.ttfd_ms.p99),
            ms(step.tpot_ms.p99),
            step.slo_attainment * 100.0,
            step.missing_segments,
            if step.good { "" } else { "  <- misses" }
        );
        let stop = s.double && !step.good;
        steps.push(step);
        if stop {
            break;
        }
    }
    let report = SweepReport {
        version: VERSION,
        tool: "proteus-load",
        tool_version: env!("CARGO_PKG_VERSION"),
        target: a.target.clone(),
        scenario: a.scenario.name,
        settings: plan,
        attainment_target: s.attainment,
        knee: SweepReport::knee(&steps),
        steps,
    };
    match report.knee {
        Some(k) => println!(
            "knee: {k}/s (the highest rate keeping attainment >= {:.2}% with nothing lost)",
            s.attainment * 100.0
        ),
        None => println!("knee: none (the first rate already missed the target)"),
    }
    write(&report, a.json.as_ref(), a.html.as_ref())?;
    Ok(if report.steps.iter().all(|s| s.completed == 0) {
        crate::EXIT_FAILED
    } else {
        0
    })
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.1}"))
}

fn write(
    report: &SweepReport,
    json: Option<&PathBuf>,
    page: Option<&PathBuf>,
) -> Result<(), Fatal> {
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(report)
            .context("cannot serialize the sweep report")
            .map_err(Fatal::could_not_run)?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))
            .map_err(Fatal::could_not_run)?;
    }
    if let Some(path) = page {
        std::fs::write(path, html::sweep_page(report))
            .with_context(|| format!("cannot write {}", path.display()))
            .map_err(Fatal::could_not_run)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::rates;

    #[test]
    fn rates_are_log_spaced_with_both_ends() {
        assert_eq!(rates(5.0, 80.0, 3), [5.0, 20.0, 80.0]);
        assert_eq!(rates(10.0, 10.0, 4), [10.0]);
        assert_eq!(rates(1.0, 1000.0, 4), [1.0, 10.0, 100.0, 1000.0]);
    }
}
