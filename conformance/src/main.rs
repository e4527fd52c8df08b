//! `proteus-conformance`: check any ProteusAI implementation against the protocol.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use proteus_conformance::profile::{Profile, exit};
use proteus_conformance::runner::{self, Settings};
use proteus_conformance::schema::{SchemaSet, event_schema};
use proteus_conformance::stream::StreamChecker;
use proteus_conformance::{cases, report};

mod proxy_cli;
use serde_json::Value;

/// Checks a ProteusAI implementation (REST + socket.io) against the protocol's
/// schemas and rules, and says exactly what broke.
///
/// Exit codes: 0 all pass; 1 a MUST failed (or a SHOULD under --strict, or an
/// unexpected pass under --strict-expectations); 2 usage or profile error
/// (a flag, the --profile file, a target without /__admin/profile and no
/// --profile); 3 target unreachable (or the runner could not run: a report
/// it cannot write). proteus-load uses 2 and 3 the same way.
#[derive(Parser, Debug)]
#[command(
    name = "proteus-conformance",
    version,
    about,
    long_about,
    after_help = "Examples:\n  proteus-conformance run --target http://127.0.0.1:4000          # everything, against the mock\n  proteus-conformance run --target http://127.0.0.1:4000 --only thenvoi\n  proteus-conformance list --only stream                            # ids, levels, rules\n  proteus-conformance validate capture.jsonl                         # payloads captured elsewhere"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the cases against a target.
    #[command(
        after_help = "Examples:\n  proteus-conformance run --target http://127.0.0.1:4000\n  proteus-conformance run --target URL --only rt.join --only stream --junit report.xml\n  proteus-conformance run --target URL --profile profile.json --expectations known-failures.txt\n  proteus-conformance run --target URL --junit junit.xml --report-html report.html"
    )]
    Run {
        /// Base URL of the implementation (REST under /api, socket.io on /socket.io/).
        #[arg(long)]
        target: String,
        /// Profile file (users' tokens, agent ids), when the target has no /__admin/profile.
        #[arg(long, value_name = "FILE")]
        profile: Option<PathBuf>,
        #[command(flatten)]
        judging: Judging,
        /// Per-step timeout in milliseconds.
        #[arg(long, default_value_t = 3000, value_name = "N")]
        timeout_ms: u64,
    },
    /// Grade a client SDK: run an adapter (a small program driving the SDK
    /// through one task, see docs/CLIENTS.md) through the client scenarios
    /// against a running proteus-mock, every fault of each scenario set on
    /// it through its control plane.
    #[command(
        after_help = "Examples:\n  proteus-conformance client --target http://127.0.0.1:4000 --command 'node interop/clients/careful.mjs'\n  proteus-conformance client --command 'python3 my_adapter.py' --only client.stream --junit client.xml\n  proteus-conformance client --protocol thenvoi --command 'node interop/clients/thenvoi-careful.mjs'\n\nExit codes as for run: 0 every MUST passed, 1 a MUST failed, 2 usage, 3 the mock unreachable."
    )]
    Client {
        /// A running proteus-mock (its control plane is used to set each scenario up).
        #[arg(long, default_value = "http://127.0.0.1:4000")]
        target: String,
        /// The adapter, run with `sh -c` once per scenario.
        #[arg(long, value_name = "CMD")]
        command: String,
        #[command(flatten)]
        judging: Judging,
        /// How long the SDK waits for a reply before reporting a time-out
        /// (PROTEUS_TIMEOUT_MS); an adapter is killed 10 s after that.
        #[arg(long, default_value_t = 2000, value_name = "MS")]
        reply_timeout_ms: u64,
        /// Which clients: `proteus` (socket.io SDKs and apps) or `thenvoi`
        /// (Band agents on Phoenix channels).
        #[arg(long, value_enum, default_value = "proteus")]
        protocol: proteus_conformance::sdk::scenarios::Protocol,
    },
    /// Relay a real client's traffic to a real server and check it live:
    /// REST envelopes, socket.io events against their schemas, streams
    /// through the stream checker. Violations are printed as they happen;
    /// on Ctrl-C or after --duration a summary, exit 0 (clean) or 1.
    #[command(
        after_help = "Examples:\n  proteus-conformance proxy --listen 127.0.0.1:4001 --upstream http://127.0.0.1:4000\n  proteus-conformance proxy --upstream https://staging.example --upstream-ca staging-ca.pem --capture traffic.jsonl --duration 60s\n  proteus-conformance validate traffic.jsonl   # the capture, checked again offline\n  proteus-mock --replay traffic.jsonl          # the capture, served as a mock"
    )]
    Proxy(proxy_cli::ProxyArgs),
    /// List the cases: id, level, and the rule each checks.
    List {
        /// List only cases matching GLOB; repeatable.
        #[arg(long, value_name = "GLOB")]
        only: Vec<String>,
    },
    /// Validate captured payloads offline: JSON files or JSON lines of
    /// {event, payload}, or a recorded stream ({events: [{event, data}]},
    /// as in fixtures/streams/); REST bodies and plugin events are
    /// recognized too. Streams in the capture are checked for ordering.
    #[command(
        after_help = "Examples:\n  proteus-conformance validate capture.jsonl        # JSON lines: {\"event\": \"message:delta\", \"payload\": {...}}\n  proteus-conformance validate reply.json chat.json  # one payload per file\n  proteus-conformance validate fixtures/streams/gap.json  # a recorded stream: {\"events\": [{\"event\", \"data\"}]}\n\nExit codes: 0 every payload valid, 1 a payload or a stream broke a rule, 2 a file unreadable."
    )]
    Validate {
        /// Capture files: JSON, or JSON lines of {event, payload}.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Which cases run, how failures count, and the reports: the same for a
/// server (`run`) and a client (`client`).
#[derive(clap::Args, Debug)]
struct Judging {
    /// Run only cases (or client scenarios) matching GLOB: a prefix like
    /// rt.join, or with *; repeatable.
    #[arg(long, value_name = "GLOB")]
    only: Vec<String>,
    /// Skip cases matching GLOB; repeatable.
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// SHOULD (NON-STRICT) failures fail the run too.
    #[arg(long)]
    strict: bool,
    /// Known failures: lines `CASE-ID [SIGNATURE] [# reason]`.
    #[arg(long, value_name = "FILE")]
    expectations: Option<PathBuf>,
    /// A listed known failure that passes fails the run.
    #[arg(long)]
    strict_expectations: bool,
    /// Write the JSON report (schemas/report/conformance.json) here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a JUnit XML report here.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write a self-contained HTML report here (failures open, with wire logs).
    #[arg(long, value_name = "FILE")]
    report_html: Option<PathBuf>,
}

/// `30s`, `500ms`, `5m` or a bare number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let (n, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s.strip_suffix('s').unwrap_or(s), 1.0)
    };
    n.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(|v| Duration::from_secs_f64(v * scale))
        .ok_or_else(|| format!("{s:?} is not a duration (30s, 500ms, 5m)"))
}

fn fail(code: i32, message: &str) -> ! {
    eprintln!("proteus-conformance: {message}");
    std::process::exit(code)
}

/// Levenshtein distance (selectors are short).
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

fn unknown_selector_hint(patterns: &[String]) {
    let all = cases::all();
    for p in patterns {
        if !all.iter().any(|c| runner::selects(p, c.id)) {
            let stem = p.split('.').next().unwrap_or(p);
            let mut similar: Vec<&str> = all
                .iter()
                .map(|c| c.id)
                .filter(|id| id.starts_with(stem))
                .take(6)
                .collect();
            if similar.is_empty() {
                // A typo in the group itself (`strem`): the groups and
                // subgroups within two edits of it.
                let mut groups: Vec<&str> = all
                    .iter()
                    .flat_map(|c| {
                        let dots: Vec<usize> = c.id.match_indices('.').map(|(i, _)| i).collect();
                        dots.into_iter().take(2).map(|i| &c.id[..i])
                    })
                    .filter(|g| edits(g, p) <= 2)
                    .collect();
                groups.sort_unstable();
                groups.dedup();
                similar = groups.into_iter().take(6).collect();
            }
            let hint = if similar.is_empty() {
                String::new()
            } else {
                format!("\nsimilar ids: {}", similar.join(", "))
            };
            fail(
                exit::USAGE,
                &format!(
                    "no case matches {p:?}{hint}\n(`proteus-conformance list` prints every id)"
                ),
            );
        }
    }
}

async fn run(cmd: Command) -> i32 {
    match cmd {
        Command::List { only } => {
            unknown_selector_hint(&only);
            let all = cases::all();
            for c in runner::select(&all, &only, &[]) {
                println!(
                    "{:<18} {:<6} {}\n{:<25} -> {}",
                    c.id,
                    c.level.to_string(),
                    c.desc,
                    "",
                    c.requirement
                );
            }
            println!(
                "\nschema.<name>.1 rows are added after each run: one per schema that validated payloads."
            );
            0
        }
        Command::Validate { files } => validate(&files),
        Command::Client {
            target,
            command,
            judging:
                Judging {
                    only,
                    exclude,
                    strict,
                    expectations,
                    strict_expectations,
                    json,
                    junit,
                    report_html,
                },
            reply_timeout_ms,
            protocol,
        } => {
            use proteus_conformance::sdk;
            let ids: Vec<String> = sdk::scenarios::ALL
                .iter()
                .map(|s| s.id.to_string())
                .collect();
            let expectations = read_expectations(expectations.as_deref(), &ids);
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default();
            let profile = Profile::load(&http, &target, None)
                .await
                .unwrap_or_else(|e| fail(e.exit_code(), &e.to_string()));
            let selected: Vec<sdk::scenarios::Scenario> = sdk::scenarios::ALL
                .iter()
                .filter(|s| s.protocol() == protocol)
                .filter(|s| only.is_empty() || only.iter().any(|p| runner::selects(p, s.id)))
                .filter(|s| !exclude.iter().any(|p| runner::selects(p, s.id)))
                .copied()
                .collect();
            if selected.is_empty() {
                fail(
                    exit::USAGE,
                    "no scenario matches --only/--exclude (see docs/CLIENTS.md)",
                );
            }
            println!(
                "proteus-conformance: {} client scenarios with `{command}` against {target}",
                selected.len()
            );
            let settings = sdk::Settings {
                command,
                reply_timeout: Duration::from_millis(reply_timeout_ms),
                limit: Duration::from_millis(reply_timeout_ms) + Duration::from_secs(10),
                expectations,
            };
            let started = Instant::now();
            let terminal = std::io::stdout().is_terminal();
            let mut progress = Progress::new(selected.len(), terminal);
            let results = sdk::run(&target, &profile, &selected, &settings, |r| {
                progress.case(r)
            })
            .await;
            progress.finish();
            let code = runner::exit_code(&results, strict, strict_expectations);
            let outputs = Outputs {
                json,
                junit,
                report_html,
            };
            outputs.write(
                &results,
                &target,
                &profile.source,
                started,
                code,
                strict,
                strict_expectations,
            );
            code
        }
        Command::Proxy(args) => proxy_cli::proxy(args).await,
        Command::Run {
            target,
            profile,
            judging:
                Judging {
                    only,
                    exclude,
                    strict,
                    expectations,
                    strict_expectations,
                    json,
                    junit,
                    report_html,
                },
            timeout_ms,
        } => {
            unknown_selector_hint(&only);
            let mut ids: Vec<String> = cases::all().iter().map(|c| c.id.to_string()).collect();
            ids.extend(
                proteus_conformance::schema::SchemaSet::embedded()
                    .names()
                    .map(|n| format!("schema.{}.1", n.replace('/', "."))),
            );
            let expectations = read_expectations(expectations.as_deref(), &ids);
            let http = reqwest::Client::builder()
                .timeout(Duration::from_millis(timeout_ms))
                .build()
                .unwrap_or_default();
            let profile = Profile::load(&http, &target, profile.as_deref())
                .await
                .unwrap_or_else(|e| fail(e.exit_code(), &e.to_string()));
            // A target that accepts connections and never answers would
            // make every case wait out its timeout: ask once first.
            if let Err(e) = http.get(&target).send().await {
                let why = if e.is_timeout() {
                    format!(
                        "it accepted the connection but answered nothing within {timeout_ms} ms"
                    )
                } else {
                    e.to_string()
                };
                fail(
                    exit::UNREACHABLE,
                    &format!("{target} does not answer: {why}"),
                );
            }
            let all = cases::all();
            let selected = runner::select(&all, &only, &exclude);
            let settings = Settings {
                only,
                exclude,
                timeout: Duration::from_millis(timeout_ms),
                expectations,
            };
            let terminal = std::io::stdout().is_terminal();
            println!(
                "proteus-conformance: {} cases against {target} (profile: {})",
                selected.len(),
                profile.source
            );
            let started = Instant::now();
            let mut progress = Progress::new(selected.len(), terminal);
            let results = runner::run(&selected, Arc::new(profile.clone()), &settings, |r| {
                progress.case(r)
            })
            .await;
            progress.finish();
            let code = runner::exit_code(&results, strict, strict_expectations);
            let outputs = Outputs {
                json,
                junit,
                report_html,
            };
            outputs.write(
                &results,
                &target,
                &profile.source,
                started,
                code,
                strict,
                strict_expectations,
            );
            code
        }
    }
}

/// An expectations file, checked against the ids that exist (exit 2 on a
/// bad line or an unknown id).
fn read_expectations(path: Option<&std::path::Path>, ids: &[String]) -> Vec<runner::Expectation> {
    let Some(path) = path else { return Vec::new() };
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| fail(exit::USAGE, &format!("cannot read {}: {e}", path.display())));
    let parsed = runner::parse_expectations(&text)
        .unwrap_or_else(|e| fail(exit::USAGE, &format!("{}: {e}", path.display())));
    runner::check_expectations(&parsed, ids)
        .unwrap_or_else(|e| fail(exit::USAGE, &format!("{}: {e}", path.display())));
    parsed
}

/// The report files a run asked for.
struct Outputs {
    json: Option<PathBuf>,
    junit: Option<PathBuf>,
    report_html: Option<PathBuf>,
}

impl Outputs {
    /// Prints the summary and writes each report asked for (exit 3 when one
    /// cannot be written).
    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        results: &[runner::CaseResult],
        target: &str,
        source: &str,
        started: Instant,
        code: i32,
        strict: bool,
        strict_expectations: bool,
    ) {
        print!("{}", report::summary(results, strict));
        let took = started.elapsed().as_millis() as u64;
        let mut files: Vec<(&PathBuf, String)> = Vec::new();
        if let Some(path) = &self.json {
            let doc = report::json(results, target, source, took, code);
            files.push((path, serde_json::to_string_pretty(&doc).unwrap_or_default()));
        }
        if let Some(path) = &self.report_html {
            files.push((path, report::html(results, target, took, code)));
        }
        if let Some(path) = &self.junit {
            files.push((path, report::junit(results, strict, strict_expectations)));
        }
        for (path, text) in files {
            if let Err(e) = std::fs::write(path, text) {
                fail(
                    exit::UNREACHABLE,
                    &format!("cannot write {}: {e}", path.display()),
                );
            }
        }
    }
}

/// One line per case; on a terminal, a progress bar under them that is
/// redrawn after each case (and erased at the end).
struct Progress {
    total: usize,
    done: usize,
    failed: usize,
    terminal: bool,
    started: Instant,
}

impl Progress {
    fn new(total: usize, terminal: bool) -> Self {
        Progress {
            total,
            done: 0,
            failed: 0,
            terminal,
            started: Instant::now(),
        }
    }

    fn case(&mut self, r: &runner::CaseResult) {
        self.done += 1;
        if r.status == runner::Status::Fail {
            self.failed += 1;
        }
        if !self.terminal {
            println!("{}", report::line(r));
            return;
        }
        let width = 30;
        let filled = width * self.done / self.total.max(1);
        // Erase the bar, print the case, draw the bar again.
        print!(
            "\r\x1b[2K{}\n[{}{}] {}/{} {} failed  {:.1} s",
            report::line(r),
            "#".repeat(filled),
            "-".repeat(width - filled),
            self.done,
            self.total,
            self.failed,
            self.started.elapsed().as_secs_f64()
        );
        let _ = std::io::Write::flush(&mut std::io::stdout());
    }

    fn finish(&self) {
        if self.terminal {
            print!("\r\x1b[2K");
        }
    }
}

/// Validates captured payloads and the streams they contain.
/// How a captured REST exchange is named in `validate`'s output.
fn path_of(path: &str, item: &Value) -> String {
    format!("{} {path}", item["method"].as_str().unwrap_or("?"))
}

fn validate(files: &[PathBuf]) -> i32 {
    let set = SchemaSet::embedded();
    let mut problems = 0;
    // Streams by connection (a capture's `conn`; files without one are one
    // connection): ten subscribers of a chat see each stream ten times.
    let mut frames: std::collections::BTreeMap<Option<u64>, Vec<(String, Value)>> =
        std::collections::BTreeMap::new();
    for path in files {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| fail(exit::USAGE, &format!("cannot read {}: {e}", path.display())));
        let items: Vec<Value> = match serde_json::from_str::<Value>(&text) {
            // A recorded stream (fixtures/streams/*.json): its events, each
            // `{event, data}`, as `{event, payload}`.
            Ok(Value::Object(o)) if o.get("events").is_some_and(Value::is_array) => o["events"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| serde_json::json!({ "event": e["event"], "payload": e["data"] }))
                .collect(),
            Ok(v) => vec![v],
            Err(_) => text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(i, l)| {
                    serde_json::from_str(l).unwrap_or_else(|e| {
                        fail(
                            exit::USAGE,
                            &format!("{}:{}: not JSON: {e}", path.display(), i + 1),
                        )
                    })
                })
                .collect(),
        };
        for (i, item) in items.iter().enumerate() {
            // A proxy capture: REST answers are checked against their route's
            // schema for their status (as the proxy does live); socket.io
            // packets that are no event are context only.
            if item["kind"] == "phoenix" {
                let at = format!("{}#{}", path.display(), i + 1);
                problems += usize::from(!check_phoenix(set, item, &at));
                continue;
            }
            let rest = item["kind"] == "rest";
            if rest || (item["kind"] == "socket.io" && item.get("event").is_none()) {
                let path = item["path"].as_str().unwrap_or_default();
                if rest && path.starts_with("/api/") {
                    let at = format!("{}#{}", path_of(path, item), i + 1);
                    problems += usize::from(!check_rest(set, item, path, &at));
                }
                continue;
            }
            let (schema, payload, event) = match (
                item.get("event").and_then(Value::as_str),
                item.get("payload"),
            ) {
                (Some(ev), Some(p)) => (event_schema(ev), p, Some(ev)),
                _ if item.get("ok").is_some() => (Some("objects/envelope"), item, None),
                _ if item.get("name").is_some() => (Some("plugin-events/plugin-event"), item, None),
                _ => (None, item, None),
            };
            let at = format!("{}#{}", path.display(), i + 1);
            let Some(schema) = schema else {
                println!(
                    "?    {at}: cannot tell what this payload is (use {{\"event\": …, \"payload\": …}})"
                );
                problems += 1;
                continue;
            };
            match set.check(schema, payload) {
                Ok(()) => println!("ok   {at}: {schema}"),
                Err(v) => {
                    problems += 1;
                    println!("FAIL {at}: {schema}");
                    for x in v {
                        println!("       {x}");
                    }
                }
            }
            if let Some(ev) = event
                && item["dir"] != "client→server"
            {
                let conn = item["conn"].as_u64();
                frames
                    .entry(conn)
                    .or_default()
                    .push((ev.to_string(), payload.clone()));
            }
        }
    }
    let (mut streams, mut completed, mut deltas) = (0, 0, 0);
    for (conn, frames) in &frames {
        let report = StreamChecker::check(frames.iter().map(|(e, p)| (e.as_str(), p)));
        streams += report.streams;
        completed += report.completed;
        deltas += report.totals.deltas;
        for v in &report.violations {
            problems += 1;
            match conn {
                Some(c) => println!("FAIL stream (connection {c}): {v}"),
                None => println!("FAIL stream: {v}"),
            }
        }
    }
    if streams > 0 {
        println!("streams: {streams} seen, {completed} complete, {deltas} deltas");
    }
    i32::from(problems > 0)
}

/// One captured REST answer against its route (schemas/openapi.json), or
/// against the envelope on a ProteusAI path no route has; prints the
/// verdict line; false when it fails.
fn check_rest(set: &SchemaSet, item: &Value, path: &str, at: &str) -> bool {
    use proteus_conformance::proxy::routes::{Routes, Verdict};
    let method = item["method"].as_str().unwrap_or("GET");
    let status = item["status"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(0);
    let (template, verdict) = Routes::embedded().check(method, path, status, &item["body"]);
    let route = format!("{method} {} {status}", template.unwrap_or(path));
    let failure = match verdict {
        Verdict::Valid => None,
        Verdict::NoRoute if path.starts_with("/api/v1/") => return true,
        Verdict::NoRoute => match set.check("objects/envelope", &item["body"]) {
            Ok(()) => None,
            Err(v) => Some(
                v.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        },
        Verdict::UndocumentedStatus(listed) => Some(format!(
            "status {status} is not one this route answers ({listed:?})"
        )),
        Verdict::Invalid(first) => Some(first),
    };
    match failure {
        None => {
            println!("ok   {at}: {route}");
            true
        }
        Some(why) => {
            println!("FAIL {at}: {route}\n       {why}");
            false
        }
    }
}

/// One captured Phoenix frame against the frame schemas (as the proxy
/// checks it live); prints the verdict lines; false when one fails.
fn check_phoenix(set: &SchemaSet, item: &Value, at: &str) -> bool {
    let from_server = item["dir"]
        .as_str()
        .is_some_and(|d| d.starts_with("server"));
    if item.get("frame").is_none() {
        println!(
            "FAIL {at}: thenvoi/phoenix/frame\n       not JSON: {}",
            item["raw"]
        );
        return false;
    }
    let mut clean = true;
    for (schema, value) in
        proteus_conformance::cases::thenvoi::phx::frame_checks(&item["frame"], from_server)
    {
        match set.check(schema, value) {
            Ok(()) => println!("ok   {at}: {schema}"),
            Err(v) => {
                clean = false;
                println!("FAIL {at}: {schema}");
                for x in v {
                    println!("       {x}");
                }
            }
        }
    }
    clean
}

fn main() {
    let cli = Cli::parse();
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| {
        fail(
            exit::UNREACHABLE,
            &format!("cannot start the async runtime: {e}"),
        )
    });
    let code = rt.block_on(run(cli.command));
    std::process::exit(code);
}
