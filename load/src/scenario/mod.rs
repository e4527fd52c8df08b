//! The scenarios (`chat`, `fanout`, `connect`, `firehose`) and what they
//! share.
//!
//! Every run is bounded (a duration and/or a stream count, then a grace
//! period for streams in flight) and talks only to the target it is given.
//! Latencies are measured from the *intended* send time of an open-model
//! schedule (`--rate` streams per second), so a slow server shows up as
//! latency instead of silently lowering the rate (coordinated omission).
//!
//! # Layout
//! - this file: [`Scenario`], the descriptor each scenario fills in, and
//!   [`ALL`], the one table of them; [`Plan`], the settings (declared once:
//!   the `run` flags, the scenarios' input and the report's `settings`).
//!   The CLI reads everything scenario-specific from the descriptor (how
//!   many sockets, whether `--rate 0` means unpaced, what the live view's
//!   bar measures), so it never names a scenario.
//! - `chat.rs`, `fanout.rs`, `connect.rs`, `firehose.rs`: one scenario each.
//! - `schedule.rs`: the open-model arrival times and the run's time zero.
//! - `reader.rs`: per-frame counting, checking and timing of streams.
//! - `setup.rs`: sockets, chats and send bodies, before the clock starts.
//! - `subscriber.rs`: sockets in a room that check every stream they see
//!   (fan-out and firehose).

mod chat;
mod connect;
mod fanout;
mod firehose;
mod reader;
mod schedule;
mod setup;
mod split;
mod subscriber;
mod thenvoi;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use proteus_conformance::profile::Profile;
use serde::Serialize;

use crate::metrics::Metrics;

/// Why a run could not be carried out (exit 3).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot reach {0}: {1}")]
    Unreachable(String, String),
    #[error("the target refused the token: {0}")]
    Refused(String),
    #[error("the run could not be set up: {0}")]
    Setup(String),
}

/// What a scenario's run returns.
pub type Outcome = Pin<Box<dyn Future<Output = Result<Metrics, RunError>> + Send>>;

/// A scenario, described for the CLI: the one place that knows what is
/// particular to it.
pub struct Scenario {
    /// `--scenario NAME` and the report's `scenario`.
    pub name: &'static str,
    /// One line for `--help`.
    pub about: &'static str,
    /// Which flag counts the sockets it opens.
    pub sockets: Sockets,
    /// What `--rate` counts, and whether 0 is allowed.
    pub rate: Rate,
    /// What the live view's bar measures.
    pub progress: fn(&Plan) -> Progress,
    /// Whether the run is about streams: then a run in which none completed
    /// failed (exit 1). `connect` opens sockets and streams nothing.
    pub streams: bool,
    run: fn(Arc<Profile>, Plan) -> Outcome,
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Every scenario; the order is `--help`'s.
pub const ALL: &[&Scenario] = &[
    &chat::SCENARIO,
    &fanout::SCENARIO,
    &connect::SCENARIO,
    &firehose::SCENARIO,
    &thenvoi::SCENARIO,
];

/// `--scenario`: one of [`ALL`] by name, with each one's line in `--help`.
pub fn parser() -> impl clap::builder::TypedValueParser<Value = &'static Scenario> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new(ALL.iter().map(|s| PossibleValue::new(s.name).help(s.about))).try_map(
        |name| {
            ALL.iter()
                .copied()
                .find(|s| s.name == name)
                .ok_or_else(|| format!("no scenario {name:?}"))
        },
    )
}

/// The flag that says how many sockets a scenario opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sockets {
    Users,
    Subscribers,
    Connections,
    Agents,
}

impl Sockets {
    pub fn count(self, plan: &Plan) -> usize {
        match self {
            Sockets::Users => plan.users,
            Sockets::Subscribers => plan.subscribers,
            Sockets::Connections => plan.connections,
            Sockets::Agents => plan.agents,
        }
        .max(1)
    }

    /// The websocket read buffer for each socket: large when a few
    /// connections drain many frames each, small when many connections each
    /// receive a frame at a time (see `client::READ_BUFFER`).
    pub fn read_buffer(self, plan: &Plan) -> usize {
        if self.count(plan) <= 8 {
            proteus_conformance::client::LARGE_READ_BUFFER
        } else {
            proteus_conformance::client::READ_BUFFER
        }
    }
}

/// What `--rate` means for a scenario.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    /// What it counts per second ("streams", "connections", "deltas").
    pub counts: &'static str,
    /// Whether 0 is allowed, meaning as fast as the server goes.
    pub zero_is_unpaced: bool,
}

/// What the live view's bar fills up with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Progress {
    /// The schedule's duration.
    Elapsed(Duration),
    /// This many deltas expected in all.
    Deltas(u64),
}

impl Scenario {
    /// Refuses a `--rate` this scenario cannot run, naming what would do.
    pub fn check_rate(&self, rate: f64) -> Result<(), String> {
        let ok = rate.is_finite() && (rate > 0.0 || (rate == 0.0 && self.rate.zero_is_unpaced));
        if ok {
            return Ok(());
        }
        let zero = if self.rate.zero_is_unpaced {
            ", or 0 for as fast as the server goes"
        } else {
            ""
        };
        Err(format!(
            "--rate {rate}: {} needs a positive number of {} per second{zero}",
            self.name, self.rate.counts
        ))
    }

    pub fn run(&self, profile: Arc<Profile>, plan: Plan) -> Outcome {
        (self.run)(profile, plan)
    }
}

/// What to run: the workload and its schedule. Declared once: these fields
/// are the `run` flags (flattened into the CLI, grouped by heading), what
/// the scenarios read, and the report's `settings`.
#[derive(Debug, Clone, clap::Args, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// chat: virtual users, each with its own chat.
    #[arg(long, default_value_t = 10, help_heading = "Workload")]
    pub users: usize,
    /// fanout, firehose: sockets subscribed to the one room.
    #[arg(long, default_value_t = 10, help_heading = "Workload")]
    pub subscribers: usize,
    /// connect: connections to open.
    #[arg(long, default_value_t = 100, help_heading = "Workload")]
    pub connections: usize,
    /// thenvoi: agent sockets, each joined to its room's chat_room topic.
    #[arg(long, default_value_t = 100, help_heading = "Workload")]
    pub agents: usize,
    /// thenvoi: agents mentioned by each message (all in one room).
    #[arg(long, default_value_t = 10, help_heading = "Workload")]
    pub mentions: usize,
    /// thenvoi: agents per room (rooms = agents / this, rounded up).
    #[arg(long, default_value_t = 100, help_heading = "Workload")]
    pub agents_per_room: usize,
    /// thenvoi: one message in N is claimed (`/processing`, `/processed`)
    /// by its first mentioned agent; 0 claims none.
    #[arg(long, default_value_t = 10, help_heading = "Workload")]
    pub claim_every: u64,
    /// thenvoi: the user API key that registers the agents and posts
    /// (default: the target's `/__admin/profile`). Never written to a report.
    #[arg(long, value_name = "KEY", help_heading = "Workload")]
    #[serde(skip)]
    pub thenvoi_key: Option<String>,
    /// Deltas per reply, when the target supports a stream override
    /// (proteus-mock does); firehose: per stream.
    #[arg(long, default_value_t = 50, help_heading = "Workload")]
    pub chunks: usize,
    /// Pause between deltas of a reply, in ms (stream override).
    #[arg(long, default_value_t = 0, help_heading = "Workload")]
    pub chunk_delay_ms: u64,
    /// firehose: bytes per delta.
    #[arg(long, default_value_t = 16, help_heading = "Workload")]
    pub size: usize,
    /// Streams started per second (connect: connections; firehose: deltas),
    /// on schedule whatever the server does.
    #[arg(long, default_value_t = 10.0, help_heading = "Schedule")]
    pub rate: f64,
    /// How long to keep starting streams (e.g. 10s, 500ms, 2m).
    #[arg(long, default_value = "10s", value_parser = parse_duration, help_heading = "Schedule")]
    #[serde(rename = "durationS", serialize_with = "seconds")]
    pub duration: Duration,
    /// Stop after this many streams, even before --duration (firehose: how
    /// many streams, default 1).
    #[arg(long = "streams", value_name = "N", help_heading = "Schedule")]
    #[serde(rename = "streams")]
    pub max_streams: Option<u64>,
    /// Grow the rate linearly from 0 to --rate over this long (e.g. 5s).
    #[arg(long, default_value = "0s", value_parser = parse_duration, help_heading = "Schedule")]
    #[serde(rename = "rampUpS", serialize_with = "seconds")]
    pub ramp_up: Duration,
    /// Leave streams whose first delta comes in this first part of the
    /// schedule out of the latency statistics and the SLO attainment.
    #[arg(long, default_value = "0s", value_parser = parse_duration, help_heading = "Judgement")]
    #[serde(rename = "warmupS", serialize_with = "seconds")]
    pub warmup: Duration,
    /// The same for the last part of the schedule (and the grace after it).
    #[arg(long, default_value = "0s", value_parser = parse_duration, help_heading = "Judgement")]
    #[serde(rename = "cooldownS", serialize_with = "seconds")]
    pub cooldown: Duration,
    /// A per-stream objective, e.g. ttfd<200ms or tpot<=30ms (repeatable).
    #[arg(long = "slo", value_name = "SLO", long_help = crate::slo::HELP,
          value_parser = parse_slo, help_heading = "Judgement")]
    #[serde(rename = "slo")]
    pub slos: Vec<String>,
    /// Split the run over N processes (see docs/LOAD.md, "Across
    /// machines"): this one takes its share of --users, --rate, --streams.
    #[arg(
        long,
        default_value_t = 1,
        value_name = "N",
        help_heading = "Across machines"
    )]
    pub workers: usize,
    /// Which share this process takes, 0 to N − 1.
    #[arg(
        long,
        default_value_t = 0,
        value_name = "I",
        help_heading = "Across machines"
    )]
    pub worker_index: usize,
    /// When every worker starts its schedule, in Unix seconds (all workers
    /// get the same value); the setup happens before it.
    #[arg(long, value_name = "UNIX_S", value_parser = split::parse_start_at, help_heading = "Across machines")]
    #[serde(rename = "startAtUnixS")]
    pub start_at: Option<f64>,
    /// Wait this long for streams in flight once sending stops.
    #[arg(long, default_value = "10s", value_parser = parse_duration, help_heading = "Schedule")]
    #[serde(rename = "graceS", serialize_with = "seconds")]
    pub grace: Duration,
}

impl Plan {
    /// The run's SLOs and measuring window, for its readers.
    pub fn judge(&self) -> std::sync::Arc<crate::slo::Judge> {
        std::sync::Arc::new(crate::slo::Judge {
            slos: self.slos.iter().filter_map(|s| s.parse().ok()).collect(),
            warmup: self.warmup,
            cooldown: self.cooldown,
            duration: self.duration,
        })
    }
}

/// Checks an `--slo` as clap reads it (the text is kept for the report).
fn parse_slo(s: &str) -> Result<String, String> {
    s.parse::<crate::slo::Slo>().map(|_| s.to_string())
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// `10s`, `500ms`, `2m`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (n, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (try 10s, 500ms, 2m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is not a duration we can wait"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            users: 3,
            subscribers: 20,
            connections: 100,
            agents: 100,
            mentions: 10,
            agents_per_room: 100,
            claim_every: 10,
            thenvoi_key: None,
            chunks: 50,
            chunk_delay_ms: 0,
            size: 16,
            rate: 10.0,
            duration: Duration::from_secs(10),
            max_streams: None,
            ramp_up: Duration::ZERO,
            warmup: Duration::ZERO,
            cooldown: Duration::ZERO,
            slos: Vec::new(),
            workers: 1,
            worker_index: 0,
            start_at: None,
            grace: Duration::from_secs(10),
        }
    }

    #[test]
    fn every_scenario_is_listed_once_under_its_own_name() {
        let mut names: Vec<&str> = ALL.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names, ["chat", "connect", "fanout", "firehose", "thenvoi"]);
    }

    #[test]
    fn only_a_scenario_that_says_so_accepts_rate_zero() {
        for s in ALL {
            assert_eq!(s.check_rate(0.0).is_ok(), s.rate.zero_is_unpaced, "{s:?}");
            assert!(s.check_rate(5.0).is_ok(), "{s:?}");
            for bad in [-1.0, f64::NAN, f64::INFINITY] {
                let e = s.check_rate(bad).expect_err("refused");
                assert!(e.contains("--rate") && e.contains(s.name), "{e}");
            }
        }
        assert!(firehose::SCENARIO.check_rate(0.0).is_ok());
        assert!(
            chat::SCENARIO
                .check_rate(0.0)
                .is_err_and(|e| e.contains("positive number of streams"))
        );
    }

    #[test]
    fn the_socket_count_picks_the_read_buffer() {
        let p = plan();
        assert_eq!(
            Sockets::Users.read_buffer(&p),
            proteus_conformance::client::LARGE_READ_BUFFER,
            "3 users"
        );
        assert_eq!(
            Sockets::Subscribers.read_buffer(&p),
            proteus_conformance::client::READ_BUFFER,
            "20 subscribers"
        );
    }

    #[test]
    fn the_settings_serialize_in_camel_case_with_seconds() {
        let v = serde_json::to_value(plan()).expect("serializes");
        assert_eq!(v["durationS"], 10.0);
        assert_eq!(v["chunkDelayMs"], 0);
        assert_eq!(v["graceS"], 10.0);
        assert!(v["streams"].is_null());
        assert!(
            v.as_object()
                .is_some_and(|o| o.keys().all(|k| !k.contains('_'))),
            "{v}"
        );
    }

    #[test]
    fn durations_take_ms_s_m_or_bare_seconds() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("3h").is_err_and(|e| e.contains("unknown unit")));
        assert!(parse_duration("fast").is_err_and(|e| e.contains("try 10s")));
    }
}
