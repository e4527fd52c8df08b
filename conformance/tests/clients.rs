//! Client conformance against real adapters (interop/clients/): the careful
//! ones (npm socket.io-client; python-socketio, written from docs/CLIENTS.md
//! alone) pass every scenario, the naive one
//! (the shortcuts real clients take) fails exactly the scenarios its row
//! says, so every scenario is shown to fail for the behaviour it names. The
//! whole catalogue runs in well under a minute per adapter.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use proteus_conformance::sdk::scenarios::{ALL, Protocol, Scenario};
use proteus_conformance::testing::MockProcess;
use serde_json::Value;

/// Runs `proteus-conformance client` with `adapter`; the JSON report.
fn client(mock: &MockProcess, adapter: &str) -> (i32, Value, Duration) {
    client_for(mock, "proteus", adapter)
}

fn client_for(mock: &MockProcess, protocol: &str, adapter: &str) -> (i32, Value, Duration) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let json = std::env::temp_dir().join(format!(
        "proteus-client-{}-{}.json",
        std::process::id(),
        adapter.replace(['/', ' ', '.'], "_")
    ));
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_proteus-conformance"))
        .current_dir(&root)
        .args([
            "client",
            "--target",
            &mock.url,
            "--protocol",
            protocol,
            "--command",
            adapter,
            "--json",
        ])
        .arg(&json)
        .output()
        .expect("the runner runs");
    let took = started.elapsed();
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap_or_else(|e| {
        panic!(
            "no report ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }))
    .expect("json");
    (out.status.code().unwrap_or(-1), report, took)
}

fn failing(report: &Value) -> Vec<String> {
    report["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The naive adapter's shortcuts, and the scenario each must fail.
const NAIVE_FAILS: &[(&str, &str)] = &[
    ("client.auth.2", "reports a generic error, not the server's"),
    ("client.auth.3", "reconnects after every refusal"),
    ("client.send.2", "reads an error ack as sent"),
    (
        "client.stream.2",
        "concatenates deltas: a lost one is a hole",
    ),
    (
        "client.stream.3",
        "concatenates deltas: a duplicate is repeated",
    ),
    ("client.stream.4", "concatenates deltas in arrival order"),
    ("client.stream.6", "ignores done: a late delta is kept"),
    ("client.stream.7", "calls a reply complete when deltas stop"),
    ("client.stream.8", "calls a stalled reply complete"),
    (
        "client.stream.9",
        "runs two concurrent replies into one text",
    ),
    (
        "client.sent.1",
        "sends message:send without an ack callback",
    ),
    (
        "client.history.1",
        "takes the first page for the whole history",
    ),
    (
        "client.history.2",
        "takes the first page for the whole history",
    ),
    (
        "client.history.3",
        "takes the first page for the whole history",
    ),
    (
        "client.connection.1",
        "calls the text so far complete when the socket drops",
    ),
    (
        "client.connection.2",
        "never joins its chat again after a reconnect",
    ),
    (
        "client.errors.2",
        "reads a 401 envelope as an empty history",
    ),
    (
        "client.errors.3",
        "reads a 403 envelope as an empty history",
    ),
    (
        "client.errors.4",
        "reads a 404 envelope as an empty history",
    ),
    (
        "client.errors.5",
        "reads a 429 envelope as an empty history",
    ),
    (
        "client.errors.1",
        "reads a 503 envelope as an empty history",
    ),
];

#[test]
fn the_careful_adapter_passes_every_scenario_and_the_naive_fails_exactly_its_row() {
    let _one_at_a_time = serial();
    let mock = MockProcess::start(&[]);
    let (code, careful, took) = client(&mock, "node interop/clients/careful.mjs");
    assert_eq!(failing(&careful), Vec::<String>::new(), "{careful:#}");
    assert_eq!(code, 0);
    assert_eq!(
        careful["cases"].as_array().map(Vec::len),
        Some(proteus().len()),
        "every ProteusAI scenario ran"
    );
    assert!(
        took < Duration::from_secs(60),
        "a full client run took {took:?}"
    );
    proteus_conformance::schema::SchemaSet::embedded()
        .check("report/conformance", &careful)
        .expect("the client report is a conformance report");

    // Written from docs/CLIENTS.md alone, on python-socketio.
    let (code, python, _) = client(&mock, "interop/.venv/bin/python interop/clients/careful.py");
    assert_eq!(failing(&python), Vec::<String>::new(), "{python:#}");
    assert_eq!(code, 0);

    let (code, naive, _) = client(&mock, "node interop/clients/naive.mjs");
    let expected: Vec<String> = NAIVE_FAILS.iter().map(|(id, _)| id.to_string()).collect();
    assert_eq!(failing(&naive), expected, "{naive:#}");
    assert_eq!(code, 1, "a MUST failed");
    // Every scenario fails for some adapter behaviour, or says why not.
    let never_failed: Vec<&str> = proteus()
        .iter()
        .map(|s| s.id)
        .filter(|id| !NAIVE_FAILS.iter().any(|(f, _)| f == id))
        .collect();
    assert_eq!(
        never_failed,
        [
            "client.auth.1",
            "client.send.1",
            "client.stream.1",
            "client.stream.5"
        ],
        "the scenarios a naive client passes too (it connects, sends and streams cleanly, and builds text from contentDelta, which wrong-content leaves right)"
    );
}

/// The full runs take turns: their scenarios have time limits of a few
/// seconds, and the naive Thenvoi agent's reply loop busies the cores.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// The ProteusAI scenarios (the default `--protocol proteus`).
fn proteus() -> Vec<&'static Scenario> {
    ALL.iter()
        .filter(|s| s.protocol() == Protocol::Proteus)
        .collect()
}

#[test]
fn a_careful_thenvoi_agent_passes_and_a_naive_one_fails_every_agent_scenario() {
    let _one_at_a_time = serial();
    let mock = MockProcess::start(&[]);
    let thenvoi: Vec<&str> = ALL
        .iter()
        .filter(|s| s.protocol() == Protocol::Thenvoi)
        .map(|s| s.id)
        .collect();
    let (code, careful, took) =
        client_for(&mock, "thenvoi", "node interop/clients/thenvoi-careful.mjs");
    assert_eq!(failing(&careful), Vec::<String>::new(), "{careful:#}");
    assert_eq!(code, 0);
    assert_eq!(
        careful["cases"].as_array().map(Vec::len),
        Some(thenvoi.len())
    );
    assert!(took < Duration::from_secs(60), "{took:?}");
    // Band's own Python SDK (band-sdk, unmodified) with a five-line handler.
    let (code, band, _) = client_for(
        &mock,
        "thenvoi",
        "interop/.venv/bin/python interop/clients/thenvoi_band.py",
    );
    assert_eq!(failing(&band), Vec::<String>::new(), "{band:#}");
    assert_eq!(code, 0);
    // Takes every push as its own, never claims, never reconnects: each
    // scenario catches one of those.
    let (code, naive, _) = client_for(&mock, "thenvoi", "node interop/clients/thenvoi-naive.mjs");
    assert_eq!(failing(&naive), thenvoi, "{naive:#}");
    assert_eq!(code, 1);
    // A loop of replies once made the mock answer 500 (a queue count that
    // wrapped below zero): whatever the agent does, the mock answers it.
    let text = naive.to_string();
    assert!(!text.contains("→ 500"), "the mock failed a call: {naive:#}");
}

#[test]
fn the_docs_count_the_scenarios_there_are() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let n = proteus().len();
    for doc in ["README.md", "docs/CLIENTS.md"] {
        let text = std::fs::read_to_string(root.join(doc)).expect("doc");
        assert!(
            text.contains(&format!("{n} scenarios")),
            "{doc} does not say {n} scenarios"
        );
    }
    let clients = std::fs::read_to_string(root.join("docs/CLIENTS.md")).expect("doc");
    for s in ALL {
        assert!(
            clients.contains(&format!("| `{}` |", s.id)),
            "docs/CLIENTS.md has no row for {}",
            s.id
        );
    }
    let agents = ALL.len() - n;
    assert!(
        clients.contains(&format!("{agents} Thenvoi agent scenarios")),
        "docs/CLIENTS.md does not say {agents} Thenvoi agent scenarios"
    );
    assert!(
        clients.contains(&format!(
            "It fails {} of the {n} scenarios",
            NAIVE_FAILS.len()
        )),
        "docs/CLIENTS.md misstates the naive adapter's failures"
    );
}

#[test]
fn a_selection_that_matches_no_scenario_is_a_usage_error() {
    let mock = MockProcess::start(&[]);
    let out = Command::new(env!("CARGO_BIN_EXE_proteus-conformance"))
        .args([
            "client",
            "--target",
            &mock.url,
            "--command",
            "true",
            "--only",
            "client.strem",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no scenario matches"));
}

#[test]
fn an_adapter_that_floods_its_stderr_is_still_judged_on_what_it_printed() {
    // 300 KB on stderr before anything on stdout: more than a pipe holds.
    // Read one after the other, the adapter would block on the full stderr
    // pipe until the time limit and be reported as killed.
    let mock = MockProcess::start(&[]);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(env!("CARGO_BIN_EXE_proteus-conformance"))
        .current_dir(&root)
        .args([
            "client",
            "--target",
            &mock.url,
            "--only",
            "client.auth.1",
            "--command",
            "head -c 300000 /dev/zero | tr '\\0' x >&2; exec node interop/clients/careful.mjs",
        ])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(!stdout.contains("killed"), "{stdout}");
}
