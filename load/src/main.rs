//! `proteus-load`: streamed-delta throughput and latency for ProteusAI servers.
//!
//! # Layout
//! - this file: the CLI (flags declared once, grouped by heading), the run
//!   from profile to report, exit codes. It never names a scenario: what is
//!   particular to one comes from its [`scenario::Scenario`] descriptor.
//! - [`scenario`]: the scenarios and what they share.
//! - [`report`]: the typed report that the JSON file, the gates, the
//!   terminal summary and [`html`] all read; [`gates`]: `--ensure`.
//! - [`metrics`]: histograms and counters while a run goes; [`hlog`]: their
//!   interval log, for `merge`; [`cpu`]: the per-thread CPU watch;
//!   [`metronome`]: the open-model schedule's own thread.

mod cpu;
mod gates;
mod hlog;
mod html;
mod metrics;
mod metronome;
mod repeat;
mod report;
mod scenario;
mod slo;
mod sweep;

/// Every frame read allocates (the websocket message, the stream checker's
/// keys); mimalloc took glibc's malloc/free (~4% of the one-connection
/// ceiling's profile) out of the way, as it did for the mock.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use clap::{Parser, Subcommand};
use proteus_conformance::profile::{Profile, exit};

use crate::cpu::cpu_seconds;
use crate::gates::Gate;
use crate::report::{Cpu, Report, Settings};
use crate::scenario::{Plan, Progress, Scenario};

/// A run in which no stream completed.
pub(crate) const EXIT_FAILED: i32 = 1;
/// An `--ensure` threshold was crossed.
const EXIT_CROSSED: i32 = 99;

/// Measures what matters for a streaming chat backend: deltas delivered per
/// second, time to first delta, gaps between deltas, and loss, duplication
/// and reordering, under an open-model load.
///
/// Exit codes: 0 the run completed and every --ensure held; 1 the run failed
/// (no stream completed); 2 usage or profile error (a flag, a gate, the
/// --file or --profile file, a target without /__admin/profile and no
/// --profile); 3 target unreachable or token refused (or the run could not be
/// set up, or a report cannot be written); 99 an --ensure threshold was
/// crossed. proteus-conformance uses 2 and 3 the same way.
#[derive(Parser, Debug)]
#[command(
    name = "proteus-load",
    version,
    about,
    long_about,
    args_override_self = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a scenario against a target.
    #[command(
        after_help = "Examples:\n  proteus-load run --target http://127.0.0.1:4000 --users 50 --rate 100 --duration 10s\n  proteus-load run --scenario fanout --subscribers 100 --rate 20 --ensure 'loss==0' --ensure 'ttfd.p99<50ms'\n  proteus-load run --scenario connect --connections 500 --rate 200 --json connect.json\n  proteus-load run --scenario firehose --subscribers 10 --streams 20 --chunks 1000 --size 16 --rate 0\n  proteus-load run --file bench/scenarios/fanout.toml --duration 30s"
    )]
    Run(Box<RunArgs>),
    /// One short run per offered rate, to find the knee: the highest rate
    /// that keeps its SLO attainment and loses nothing.
    #[command(
        after_help = "Examples:\n  proteus-load sweep --from 10 --to 400 --steps 6 --duration 10s --slo 'ttfd<200ms' --html sweep.html\n  proteus-load sweep --from 10 --to 5000 --double --duration 5s --slo 'tpot<30ms' --json sweep.json"
    )]
    Sweep(Box<sweep::SweepArgs>),
    /// Add up HdrHistogram logs written by several `run --hlog` processes
    /// (a run spread over machines) and report them as one run.
    #[command(
        after_help = "Example:\n  proteus-load run --hlog a.hlog …   (on one machine)\n  proteus-load run --hlog b.hlog …   (on another)\n  proteus-load merge a.hlog b.hlog --ensure 'ttfd.p99<50ms'"
    )]
    Merge {
        #[arg(required = true, value_name = "HLOG")]
        files: Vec<PathBuf>,
        /// Fail with exit 99 unless this holds (as for run).
        #[arg(long = "ensure", value_name = "GATE", help_heading = "Gates", long_help = gates::HELP)]
        ensure: Vec<String>,
        /// Write the merged JSON report here.
        #[arg(long, value_name = "FILE", help_heading = "Output")]
        json: Option<PathBuf>,
    },
}

#[derive(clap::Args, Debug)]
pub(crate) struct RunArgs {
    /// Base URL of the server (default: a local proteus-mock).
    #[arg(long, default_value = "http://127.0.0.1:4000", help_heading = "Target")]
    pub(crate) target: String,
    /// Profile file (tokens, streaming agent) when the target has no
    /// /__admin/profile.
    #[arg(long, value_name = "FILE", help_heading = "Target")]
    pub(crate) profile: Option<PathBuf>,
    /// Read settings from a TOML file (keys are the flags' names, e.g.
    /// `rate = 50`, `ramp_up = "5s"`, `ensure = ["loss==0"]`); flags given on
    /// the command line win.
    #[arg(long, value_name = "FILE", help_heading = "Workload")]
    pub(crate) file: Option<PathBuf>,
    /// What to run.
    #[arg(long, default_value = "chat", value_parser = scenario::parser(), help_heading = "Workload")]
    pub(crate) scenario: &'static Scenario,
    #[command(flatten)]
    pub(crate) plan: Plan,
    /// Fail with exit 99 unless this holds, e.g. 'ttfd.p99<50ms', 'loss==0'
    /// (repeatable; counters as named in the report's `counters`).
    #[arg(long = "ensure", value_name = "GATE", help_heading = "Gates", long_help = gates::HELP)]
    pub(crate) ensure: Vec<String>,
    /// Write the JSON report (schemas/report/load.json) here.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub(crate) json: Option<PathBuf>,
    /// Write a self-contained HTML page with plots (throughput over time,
    /// latency percentiles, time-to-first-delta histogram) here.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub(crate) html: Option<PathBuf>,
    /// Write the latency histograms and counters as an HdrHistogram interval
    /// log, for `proteus-load merge`.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub(crate) hlog: Option<PathBuf>,
    /// Run it N times; every figure is then reported as its median and 95%
    /// confidence interval over the repeats, and gates read the medians.
    #[arg(long, default_value_t = 1, value_name = "N", help_heading = "Schedule")]
    pub(crate) repeat: usize,
    /// Worker threads (1 = a single-threaded runtime, the cheapest for one
    /// or a few connections). Default: one per CPU.
    #[arg(long, value_name = "N", help_heading = "Runtime")]
    pub(crate) threads: Option<usize>,
    /// Sample this process's CPU (the server's), thread by thread: deltas per
    /// server core, and a note when one server thread was saturated.
    #[arg(long, value_name = "PID", help_heading = "Runtime")]
    pub(crate) server_pid: Option<u32>,
}

/// What ends the process early: an error and its exit code.
pub(crate) struct Fatal {
    code: i32,
    error: anyhow::Error,
}

impl Fatal {
    /// Exit 2: something the user typed or wrote must change.
    pub(crate) fn usage(error: impl Into<anyhow::Error>) -> Fatal {
        Fatal {
            code: exit::USAGE,
            error: error.into(),
        }
    }

    /// Exit 3: the target could not be measured (or the result not written).
    pub(crate) fn could_not_run(error: impl Into<anyhow::Error>) -> Fatal {
        Fatal {
            code: exit::UNREACHABLE,
            error: error.into(),
        }
    }
}

/// Parses the gates before anything runs, and says when one was read with
/// a version 1 counter name.
fn parse_gates(texts: &[String]) -> Result<Vec<Gate>, Fatal> {
    texts
        .iter()
        .map(|t| {
            let g = Gate::parse(t).map_err(|e| Fatal::usage(anyhow!("--ensure {e}")))?;
            if let Some(note) = &g.note {
                eprintln!("proteus-load: note: {note}");
            }
            Ok(g)
        })
        .collect()
}

async fn run(mut a: RunArgs) -> Result<i32, Fatal> {
    let gates = parse_gates(&a.ensure)?;
    a.plan = a
        .plan
        .slice(a.scenario.name)
        .map_err(|e| Fatal::usage(anyhow!(e)))?;
    a.scenario
        .check_rate(a.plan.rate)
        .map_err(|e| Fatal::usage(anyhow!(e)))?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let profile = Profile::load(&http, &a.target, a.profile.as_deref())
        .await
        .map_err(|e| Fatal {
            code: e.exit_code(),
            error: e.into(),
        })?;
    let terminal = std::io::stderr().is_terminal();
    if terminal {
        eprintln!(
            "proteus-load: {} against {} for up to {:?} at {}/s …",
            a.scenario.name, a.target, a.plan.duration, a.plan.rate
        );
    }
    if a.repeat == 0 || (a.repeat > 1 && a.hlog.is_some()) {
        return Err(Fatal::usage(anyhow!(
            "--repeat needs N >= 1, and takes no --hlog (merge separate runs' logs instead)"
        )));
    }
    let profile = Arc::new(profile);
    let mut reports = Vec::new();
    let mut measured = measure(&a, profile.clone(), a.plan.clone()).await?;
    for i in 1..a.repeat {
        eprintln!("proteus-load: repeat {} of {} done", i, a.repeat);
        reports.push(measured.report);
        measured = measure(&a, profile.clone(), a.plan.clone()).await?;
    }
    let (mut report, m) = (measured.report, measured.metrics);
    if a.repeat > 1 {
        reports.push(report.clone());
        report.repeats = Some(repeat::summarize(&reports));
    }
    if let Some(path) = &a.hlog {
        hlog::write(path, &m, measured.started_wall, measured.elapsed)
            .map_err(|e| Fatal::could_not_run(anyhow!(e)))?;
    }
    let crossed = finish(&mut report, &gates, a.json.as_deref())?;
    if let Some(path) = &a.html {
        std::fs::write(path, html::page(&report))
            .with_context(|| format!("cannot write the HTML page to {}", path.display()))
            .map_err(Fatal::could_not_run)?;
    }
    if a.scenario.streams && m.streams_completed == 0 {
        eprintln!("proteus-load: no stream completed");
        return Ok(EXIT_FAILED);
    }
    Ok(if crossed { EXIT_CROSSED } else { 0 })
}

/// One measured run: its report (CPU included, gates not yet checked), its
/// metrics, and when it started and how long it took (for `--hlog`).
pub(crate) struct Measured {
    pub report: Report,
    pub metrics: metrics::Metrics,
    pub started_wall: std::time::SystemTime,
    pub elapsed: Duration,
}

/// Runs `plan` once with the scenario and target of `a`, watching the
/// generator's CPU (and the server's, with `--server-pid`): what `run` does
/// once and `sweep` once per offered rate.
pub(crate) async fn measure(
    a: &RunArgs,
    profile: Arc<Profile>,
    plan: Plan,
) -> Result<Measured, Fatal> {
    let terminal = std::io::stderr().is_terminal();
    let server = a.server_pid.map(|p| p.to_string());
    let (cpu0, srv0) = (cpu_seconds("self"), server.as_deref().and_then(cpu_seconds));
    cpu::watch_server(server.clone());
    let started = Instant::now();
    let started_wall = std::time::SystemTime::now();
    metrics::LIVE
        .deltas
        .store(0, std::sync::atomic::Ordering::Relaxed);
    metrics::LIVE
        .completed
        .store(0, std::sync::atomic::Ordering::Relaxed);
    let view = tokio::spawn(live_view(terminal, (a.scenario.progress)(&plan), started));
    let watch = cpu::Watch::start("self".into(), Duration::from_secs(1));
    let server_watch = server
        .clone()
        .map(|pid| cpu::Watch::start(pid, Duration::from_secs(1)));
    let outcome = a.scenario.run(profile, plan.clone()).await;
    let own_threads = watch.stop();
    let server_threads = server_watch.map(cpu::Watch::stop);
    view.abort();
    if terminal {
        eprint!("\r\x1b[2K");
    }
    let m = outcome.map_err(Fatal::could_not_run)?;
    let elapsed = started.elapsed().as_secs_f64();
    let (cpu1, srv1) = (cpu_seconds("self"), server.as_deref().and_then(cpu_seconds));
    let server_cpu = srv1.zip(srv0).map(|(a, b)| a - b);
    let server_measured = srv1.zip(cpu::server_at_clock()).map(|(a, b)| a - b);
    let mut report = Report::new(
        &m,
        elapsed,
        a.target.clone(),
        a.scenario.name,
        Settings::Run(Box::new(plan.clone())),
    );
    // The generator must not be the bottleneck it measures: say so when a
    // thread of it was saturated or it took the machine's cores.
    for warning in own_threads.warnings() {
        eprintln!("proteus-load: warning: {warning}");
    }
    if let Some(note) = server_threads.as_ref().and_then(cpu::Verdict::server_note) {
        eprintln!("proteus-load: note: {note}");
    }
    report.cpu = Some(Cpu {
        generator_seconds: cpu1.zip(cpu0).map(|(a, b)| a - b),
        server_seconds: server_cpu,
        server_seconds_measured: server_measured,
        deltas_per_server_core: server_cpu.filter(|s| *s > 0.0).map(|s| m.deltas as f64 / s),
        generator: own_threads,
        server: server_threads,
    });
    Ok(Measured {
        report,
        elapsed: started.elapsed(),
        started_wall,
        metrics: m,
    })
}

/// Checks the gates into the report, prints the summary and writes the
/// JSON; true when a gate was crossed.
fn finish(report: &mut Report, gates: &[Gate], json: Option<&Path>) -> Result<bool, Fatal> {
    let crossed = report.check(gates);
    print!("{}", report.summary());
    if let Some(path) = json {
        report.write(path).map_err(Fatal::could_not_run)?;
    }
    Ok(crossed)
}

/// While a run goes: on a terminal, a progress bar and the current rates on
/// one line of stderr, redrawn four times a second; otherwise a quiet line
/// every 5 s (for CI logs).
async fn live_view(terminal: bool, progress: Progress, started: Instant) {
    use std::sync::atomic::Ordering::Relaxed;
    let every = Duration::from_millis(if terminal { 250 } else { 5000 });
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let (mut last_deltas, mut last_at) = (0u64, Instant::now());
    loop {
        tick.tick().await;
        let (deltas, done) = (
            metrics::LIVE.deltas.load(Relaxed),
            metrics::LIVE.completed.load(Relaxed),
        );
        let now = Instant::now();
        let rate = (deltas - last_deltas) as f64 / (now - last_at).as_secs_f64().max(1e-3);
        (last_deltas, last_at) = (deltas, now);
        let elapsed = started.elapsed().as_secs_f64();
        let share = match progress {
            Progress::Elapsed(d) => elapsed / d.as_secs_f64().max(1e-3),
            Progress::Deltas(n) => deltas as f64 / n.max(1) as f64,
        };
        let width = 24;
        let filled = (share.clamp(0.0, 1.0) * width as f64) as usize;
        let line = format!(
            "[{}{}] {elapsed:>6.1}s  {done} streams done  {deltas} deltas  {rate:>9.0} deltas/s now",
            "#".repeat(filled),
            "-".repeat(width - filled)
        );
        if terminal {
            eprint!("\r\x1b[2K{line}");
        } else {
            eprintln!("proteus-load: {line}");
        }
    }
}

/// `proteus-load merge`: several --hlog files as one run.
fn merge(files: &[PathBuf], ensure: &[String], json: Option<&Path>) -> Result<i32, Fatal> {
    let gates = parse_gates(ensure)?;
    let (m, seconds) = hlog::merge(files).map_err(|e| Fatal::usage(anyhow!(e)))?;
    let files = files.iter().map(|f| f.display().to_string()).collect();
    let mut report = Report::new(
        &m,
        seconds,
        "(merged)".into(),
        "merged",
        Settings::Merged { files },
    );
    let crossed = finish(&mut report, &gates, json)?;
    Ok(if crossed { EXIT_CROSSED } else { 0 })
}

/// The command line with a `--file` TOML scenario expanded in front of the
/// flags given (so the flags win: later values override).
fn expand_scenario_file(args: Vec<String>) -> anyhow::Result<Vec<String>> {
    let Some(at) = args
        .iter()
        .position(|a| a == "--file" || a.starts_with("--file="))
    else {
        return Ok(args);
    };
    let path = match args[at].strip_prefix("--file=") {
        Some(p) => p.to_string(),
        None => args
            .get(at + 1)
            .cloned()
            .ok_or_else(|| anyhow!("--file needs a FILE"))?,
    };
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{path} is not valid TOML"))?;
    let command = <Cli as clap::CommandFactory>::command();
    let run = command
        .find_subcommand("run")
        .ok_or_else(|| anyhow!("internal: no run subcommand"))?;
    let known: Vec<String> = run
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_string))
        .collect();
    let mut expanded = Vec::new();
    for (key, value) in &table {
        let flag = key.replace('_', "-");
        if flag == "file" || !known.contains(&flag) {
            return Err(anyhow!(
                "{path}: unknown setting {key:?} (settings are the flags of `proteus-load run --help`, with _ or -)"
            ));
        }
        let values = match value {
            toml::Value::Array(items) => items.clone(),
            other => vec![other.clone()],
        };
        for v in values {
            let text = match v {
                toml::Value::String(s) => s,
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => return Err(anyhow!("{path}: {key} = {other} is not a plain value")),
            };
            expanded.push(format!("--{flag}={text}"));
        }
    }
    // argv[0], then `run`, then the file's settings, then the given flags.
    let mut out = Vec::with_capacity(args.len() + expanded.len());
    let run_at = args.iter().position(|a| a == "run").unwrap_or(0);
    out.extend(args[..=run_at].iter().cloned());
    out.extend(expanded);
    out.extend(args[run_at + 1..].iter().cloned());
    Ok(out)
}

fn main() -> ExitCode {
    let code = match try_main() {
        Ok(code) => code,
        Err(Fatal { code, error }) => {
            eprintln!("proteus-load: {error:#}");
            code
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(u8::MAX))
}

fn try_main() -> Result<i32, Fatal> {
    let args = expand_scenario_file(std::env::args().collect()).map_err(Fatal::usage)?;
    let cli = Cli::parse_from(args);
    let threads = match &cli.command {
        Command::Run(a) => a.threads,
        Command::Sweep(s) => s.run.threads,
        Command::Merge { .. } => Some(1),
    }
    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
    .context("cannot start the runtime")
    .map_err(Fatal::could_not_run)?;
    match cli.command {
        Command::Run(a) => rt.block_on(run(*a)),
        Command::Sweep(s) => rt.block_on(sweep::sweep(*s)),
        Command::Merge {
            files,
            ensure,
            json,
        } => merge(&files, &ensure, json.as_deref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<RunArgs, clap::Error> {
        let mut all = vec!["proteus-load", "run"];
        all.extend(args);
        match Cli::try_parse_from(all)?.command {
            Command::Run(a) => Ok(*a),
            Command::Merge { .. } | Command::Sweep(_) => unreachable!("run was given"),
        }
    }

    #[test]
    fn scenario_takes_any_name_in_the_table_and_refuses_others() {
        for s in scenario::ALL {
            let a = parse(&["--scenario", s.name]).expect("a listed scenario");
            assert_eq!(a.scenario.name, s.name);
        }
        assert_eq!(parse(&[]).expect("defaults").scenario.name, "chat");
        let e = parse(&["--scenario", "fanot"]).expect_err("a typo");
        assert!(e.to_string().contains("fanout"), "{e}");
    }

    #[test]
    fn the_last_value_of_a_flag_wins_so_the_command_line_beats_the_file() {
        let a = parse(&["--rate=5", "--subscribers", "3", "--rate", "7"]).expect("valid");
        assert_eq!((a.plan.rate, a.plan.subscribers), (7.0, 3));
    }

    #[test]
    fn run_help_groups_flags_under_headings() {
        let mut cmd = <Cli as clap::CommandFactory>::command();
        let run = cmd.find_subcommand_mut("run").expect("run");
        let help = run.render_long_help().to_string();
        let at = |h: &str| help.find(h).unwrap_or_else(|| panic!("no {h} in\n{help}"));
        let order = [
            "Target:",
            "Workload:",
            "Schedule:",
            "Gates:",
            "Output:",
            "Runtime:",
        ]
        .map(at);
        assert!(order.is_sorted(), "{help}");
        assert!(at("--scenario <") > at("Workload:") && at("--rate <") > at("Schedule:"));
        for s in scenario::ALL {
            assert!(
                help.contains(&format!("{}: ", s.name)),
                "{} in\n{help}",
                s.name
            );
        }
    }

    #[test]
    fn the_help_documents_the_shared_exit_codes() {
        let help = <Cli as clap::CommandFactory>::command()
            .render_long_help()
            .to_string();
        let help = help.replace('\n', " ");
        assert!(help.contains("2 usage or profile error"), "{help}");
        assert!(help.contains("3 target unreachable"), "{help}");
        assert_eq!((exit::USAGE, exit::UNREACHABLE), (2, 3));
    }
}
