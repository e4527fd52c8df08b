//! The runner against the mock, spawned as a separate process (this crate never
//! imports the mock's code): every case passes on a clean mock, and each
//! control-plane fault makes exactly the cases that guard its rule fail, with
//! the unrelated cases still passing. This table is docs/CONFORMANCE.md's.

use std::sync::Arc;
use std::time::Duration;

use proteus_conformance::cases;
use proteus_conformance::profile::Profile;
use proteus_conformance::runner::{self, CaseResult, Settings, Status};
use proteus_conformance::testing::MockProcess;
use serde_json::json;

async fn set_fault(url: &str, spec: &str) {
    let r = reqwest::Client::new()
        .post(format!("{url}/__admin/faults"))
        .json(&json!({ "fault": spec }))
        .send()
        .await
        .expect("admin");
    assert_eq!(r.status().as_u16(), 201, "fault {spec} accepted");
}

async fn clear_faults(url: &str) {
    reqwest::Client::new()
        .delete(format!("{url}/__admin/faults"))
        .send()
        .await
        .expect("admin");
}

async fn run(url: &str, only: &[&str], timeout_ms: u64) -> Vec<CaseResult> {
    let http = reqwest::Client::new();
    let profile = Profile::fetch(&http, url)
        .await
        .expect("reachable")
        .expect("the mock serves a profile");
    let all = cases::all();
    let only: Vec<String> = only.iter().map(|s| s.to_string()).collect();
    // The thenvoi.* group has its own file (thenvoi_against_mock.rs), which
    // starts the mock with a short idle timeout so every case runs.
    let selected = runner::select(&all, &only, &["thenvoi".to_string()]);
    let settings = Settings {
        only,
        exclude: Vec::new(),
        timeout: Duration::from_millis(timeout_ms),
        expectations: Vec::new(),
    };
    runner::run(&selected, Arc::new(profile), &settings, |_| {}).await
}

fn failing(results: &[CaseResult]) -> Vec<String> {
    results
        .iter()
        .filter(|r| r.status == Status::Fail)
        .map(|r| r.id.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_case_passes_against_a_clean_mock() {
    let mock = MockProcess::start(&[]);
    let results = run(&mock.url, &[], 3000).await;
    // The thenvoi.* cases run in thenvoi_against_mock.rs, against a mock
    // with a short idle timeout (here two of them would be unsupported).
    let not_passing: Vec<String> = results
        .iter()
        .filter(|r| r.status != Status::Pass && !r.id.starts_with("thenvoi."))
        .map(|r| format!("{} {:?}: {:?} {:?}", r.id, r.status, r.reason, r.failure))
        .collect();
    assert!(not_passing.is_empty(), "{}", not_passing.join("\n"));
    assert!(
        results.len() >= 70,
        "the whole suite ran ({} results)",
        results.len()
    );
    assert!(
        results
            .iter()
            .any(|r| r.id == "schema.realtime.message-delta.1"),
        "schema rows are produced"
    );
}

/// Fault → the cases that must fail. Each run selects the fault's groups plus
/// `rest.envelope` and `rt.join.1`, which must keep passing.
const TABLE: &[(&str, &[&str], &[&str])] = &[
    // (fault, selection, cases that must fail)
    ("drop-delta:2", &["stream"], &["stream.4", "stream.9"]),
    ("duplicate-delta:2", &["stream"], &["stream.4", "stream.9"]),
    ("reorder-deltas:2", &["stream"], &["stream.4", "stream.9"]),
    ("drop-random:3:7", &["stream"], &["stream.4", "stream.9"]),
    (
        "duplicate-random:3:7",
        &["stream"],
        &["stream.4", "stream.9"],
    ),
    // Seed 7 swaps no delta of stream.4's short reply, only of stream.9's long ones.
    ("reorder-random:3:7", &["stream"], &["stream.9"]),
    (
        "omit-done",
        &["stream"],
        &[
            "stream.5",
            "stream.9",
            "stream.10",
            "stream.11",
            "stream.12",
        ],
    ),
    ("double-done", &["stream"], &["stream.5", "stream.9"]),
    ("delta-after-done", &["stream"], &["stream.5", "stream.9"]),
    ("wrong-content:2", &["stream"], &["stream.2", "stream.9"]),
    (
        "wrong-stream-id:2",
        &["stream"],
        &["stream.1", "stream.4", "stream.9"],
    ),
    (
        "plain-message-for-stream",
        &["stream"],
        &["stream.7", "stream.9"],
    ),
    (
        "disconnect-mid-stream:2",
        &["stream"],
        &[
            "stream.5",
            "stream.9",
            "stream.10",
            "stream.11",
            "stream.12",
        ],
    ),
    (
        "stall-stream:2:3000",
        &["stream.5", "stream.12"],
        &["stream.5", "stream.12"],
    ),
    (
        "delay-first-delta:3000",
        &["stream.1", "stream.12"],
        &["stream.1", "stream.12"],
    ),
    (
        "page-overlap",
        &["pagination"],
        &[
            "pagination.5",
            "pagination.6",
            "pagination.10",
            "pagination.12",
        ],
    ),
    (
        "page-skip",
        &["pagination"],
        &[
            "pagination.5",
            "pagination.6",
            "pagination.10",
            "pagination.12",
        ],
    ),
    (
        "ignore-cursor",
        &["pagination"],
        &[
            "pagination.6",
            "pagination.7",
            "pagination.8",
            "pagination.10",
            "pagination.12",
        ],
    ),
    (
        "no-limit-cap",
        &["pagination"],
        &["pagination.2", "pagination.3"],
    ),
    (
        "accept-bad-token",
        &["rt.auth", "rest.auth"],
        &[
            "rt.auth.2",
            "rt.auth.3",
            "rest.auth.2",
            "rest.auth.3",
            "rest.auth.4",
        ],
    ),
    (
        "allow-non-participant-join",
        &["rt.join", "rt.broadcast"],
        &["rt.join.3", "rt.broadcast.2"],
    ),
    (
        "missing-ok",
        &["rest.auth.1", "rest.errors.2", "agents.1"],
        &[
            "rest.auth.1",
            "rest.errors.2",
            "agents.1",
            "rest.envelope.1",
            "rest.envelope.2",
            "rest.envelope.3",
        ],
    ),
    (
        "rest-status:503:/api/agents",
        &["agents"],
        &["agents.1", "agents.2", "agents.3"],
    ),
    (
        "rest-status:503:/api/chats",
        &["chats.1"],
        &["chats.1", "rest.envelope.1", "rt.join.1"],
    ),
    (
        "errors-as-500",
        &["rest.auth", "rest.errors", "agents.2", "pagination.8"],
        &[
            "rest.auth.1",
            "rest.auth.2",
            "rest.auth.3",
            "rest.auth.4",
            "rest.auth.5",
            "rest.auth.6",
            "rest.errors.1",
            "rest.errors.2",
            "rest.errors.3",
            "rest.errors.4",
            "rest.errors.5",
            "agents.2",
            "pagination.8",
        ],
    ),
    (
        "created-as-200",
        &["chats.2", "agents.3"],
        &["chats.2", "agents.3"],
    ),
    ("default-limit-50", &["pagination.1"], &["pagination.1"]),
    (
        "past-end-404",
        &["pagination.4", "pagination.12"],
        &["pagination.4", "pagination.12"],
    ),
    (
        "ignore-encoded-params",
        &["pagination.9"],
        &["pagination.9"],
    ),
    ("no-meta", &["pagination.11"], &["pagination.11"]),
    (
        "non-participant-read",
        &["rest.auth.5", "rest.auth.6"],
        &["rest.auth.5", "rest.auth.6"],
    ),
    ("caller-not-added", &["chats.3"], &["chats.3", "rt.join.1"]),
    (
        "key-not-reused",
        &["chats.4", "rt.send.5"],
        &["chats.4", "rt.send.5"],
    ),
    ("no-type-default", &["rt.send.6"], &["rt.send.6"]),
    ("success-without-entity", &["rt.auth.1"], &["rt.auth.1"]),
    (
        "no-acks",
        &["rt.join", "rt.send.1", "rt.send.2"],
        &[
            "rt.join.1",
            "rt.join.2",
            "rt.join.3",
            "rt.join.4",
            "rt.join.5",
            "rt.join.6",
            "rt.send.1",
            "rt.send.2",
        ],
    ),
    ("join-ack-without-chat-id", &["rt.join.2"], &["rt.join.2"]),
    ("leave-keeps-room", &["rt.join"], &["rt.join.6"]),
    ("no-auto-join", &["rt.send.3"], &["rt.send.3"]),
    ("no-broadcast", &["rt.broadcast.1"], &["rt.broadcast.1"]),
    (
        "no-echo-to-sender",
        &["rt.broadcast.3"],
        &["rt.broadcast.3"],
    ),
    ("ack-late:300", &["rt.send.4"], &["rt.send.4"]),
    ("delta-not-streaming", &["stream.3"], &["stream.3"]),
    (
        "done-still-streaming",
        &["stream.3", "stream.8"],
        &["stream.3", "stream.8"],
    ),
    ("done-content-wrong", &["stream.6"], &["stream.6"]),
    ("bad-message-ids", &["rt.send.1"], &["rt.send.1"]),
    (
        "rest-latency:2000",
        &["rest.auth.1", "rest.auth.2"],
        &[
            "rest.auth.1",
            "rest.auth.2",
            "rest.envelope.1",
            "rest.envelope.2",
            "rest.envelope.3",
        ],
    ),
    (
        "no-lifecycle-events",
        &["rt.lifecycle"],
        &[
            "rt.lifecycle.1",
            "rt.lifecycle.2",
            "rt.lifecycle.3",
            "rt.lifecycle.4",
        ],
    ),
    (
        "skip-webhook-challenge",
        &["plugins"],
        &["plugins.challenge.1", "plugins.challenge.2"],
    ),
    (
        "installed-without-token",
        &["plugins"],
        &[
            "plugins.install.1",
            "plugins.dispatch.1",
            "plugins.dispatch.2",
            "plugins.reply.1",
            "plugins.scopes.1",
            "plugins.uninstall.1",
        ],
    ),
    (
        "no-message-dispatch",
        &["plugins"],
        &["plugins.dispatch.1", "plugins.dispatch.2"],
    ),
    (
        "dispatch-out-of-order",
        &["plugins"],
        &["plugins.dispatch.1", "plugins.dispatch.2"],
    ),
    ("ignore-scopes", &["plugins"], &["plugins.scopes.1"]),
    (
        "token-survives-uninstall",
        &["plugins"],
        &["plugins.uninstall.1"],
    ),
    ("drop-plugin-replies", &["plugins"], &["plugins.reply.1"]),
];

/// Which part of the table a row belongs to (four mocks run in parallel).
fn part(selection: &[&str]) -> usize {
    match selection[0].split('.').next().unwrap_or_default() {
        "stream" => 0,
        "rt" => 1,
        "plugins" => 3,
        _ => 2,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stream_faults_fail_exactly_the_cases_that_guard_their_rule() {
    check_rows(0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn realtime_faults_fail_exactly_the_cases_that_guard_their_rule() {
    check_rows(1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rest_faults_fail_exactly_the_cases_that_guard_their_rule() {
    check_rows(2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn plugin_faults_fail_exactly_the_cases_that_guard_their_rule() {
    check_rows(3).await;
}

async fn check_rows(which: usize) {
    let mock = MockProcess::start(&[]);
    let mut problems = Vec::new();
    for (fault, selection, must_fail) in TABLE.iter().filter(|(_, sel, _)| part(sel) == which) {
        set_fault(&mock.url, fault).await;
        let mut only: Vec<&str> = selection.to_vec();
        // Unrelated cases that must keep passing (REST-wide faults break them by design).
        let rest_wide = fault.starts_with("missing-ok") || fault.starts_with("rest-latency");
        if !rest_wide {
            only.extend(["rest.envelope", "rt.join.1"]);
        } else {
            only.push("rest.envelope");
        }
        let results = run(&mock.url, &only, 1000).await;
        clear_faults(&mock.url).await;
        let mut failed = failing(&results);
        failed.retain(|id| !id.starts_with("schema."));
        let mut expected: Vec<String> = must_fail.iter().map(|s| s.to_string()).collect();
        failed.sort();
        expected.sort();
        if failed != expected {
            problems.push(format!(
                "{fault}: expected failures {expected:?}, got {failed:?}"
            ));
        }
        for r in results
            .iter()
            .filter(|r| r.status == Status::Fail && !r.id.starts_with("schema."))
        {
            let f = r.failure.as_ref().expect("failure details");
            if f.expected.is_empty() || f.actual.is_empty() || r.requirement.is_empty() {
                problems.push(format!(
                    "{fault}: {} fails without naming the rule, Expected and Actual",
                    r.id
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_case_is_made_to_fail_by_some_fault_or_is_listed_as_not_yet() {
    // Cases no fault can break yet: each needs a fault before it is shown to work.
    const NOT_YET: &[&str] = &[];
    let covered: std::collections::HashSet<&str> = TABLE
        .iter()
        .flat_map(|(_, _, f)| f.iter().copied())
        .collect();
    let mut uncovered = Vec::new();
    // thenvoi.* cases have their own table and list (thenvoi_against_mock.rs).
    for c in cases::all()
        .iter()
        .filter(|c| !c.id.starts_with("thenvoi."))
    {
        let listed = NOT_YET.contains(&c.id);
        match (covered.contains(c.id), listed) {
            (true, true) => panic!("{} is covered by a fault now: remove it from NOT_YET", c.id),
            (false, false) => uncovered.push(c.id),
            _ => {}
        }
    }
    assert!(
        uncovered.is_empty(),
        "cases no fault makes fail (add a fault, or list them honestly): {uncovered:?}"
    );
}

/// A REST failure's reproducer sends the same request: the method, the
/// token, the `Content-Type` and the body (rest.errors.4 once printed a
/// curl line with neither, which got a 201 instead of the 415).
#[tokio::test(flavor = "multi_thread")]
async fn a_rest_reproducer_carries_the_method_headers_and_body() {
    let mock = MockProcess::start(&["--fault", "errors-as-500"]);
    let results = run(
        &mock.url,
        &["rest.errors.1", "rest.errors.4", "rest.errors.5"],
        3000,
    )
    .await;
    let token = Profile::fetch(&reqwest::Client::new(), &mock.url)
        .await
        .expect("reachable")
        .expect("a profile")
        .user(0)
        .expect("first user")
        .token
        .clone();
    let reproducer = |id: &str| {
        let r = results.iter().find(|r| r.id == id).expect("case ran");
        r.failure
            .as_ref()
            .unwrap_or_else(|| panic!("{id} fails under errors-as-500: {:?}", r.status))
            .reproducer
            .clone()
    };
    let auth = format!("-H 'Authorization: Bearer {token}'");
    for (id, needles) in [
        (
            "rest.errors.4",
            vec![
                "curl -s -X POST ",
                "/api/chats'",
                &auth,
                "-H 'Content-Type: text/plain'",
                "--data-raw 'hello'",
            ],
        ),
        (
            "rest.errors.1",
            vec![
                "-X POST ",
                &auth,
                "-H 'Content-Type: application/json'",
                "--data-raw '{\"participants\": ['",
            ],
        ),
        (
            "rest.errors.5",
            vec![
                "-X POST ",
                &auth,
                "-H 'Content-Type: application/json'",
                "--data-raw '{\"participants\":[{",
            ],
        ),
    ] {
        let repro = reproducer(id);
        for needle in needles {
            assert!(
                repro.contains(needle),
                "{id}'s reproducer lacks {needle:?}: {repro}"
            );
        }
    }
}

/// The fault table of docs/CONFORMANCE.md, as (fault, cases) rows: ranges
/// like `rt.join.1–6` expanded, remarks in parentheses dropped.
fn documented_fault_table() -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/CONFORMANCE.md"
    ))
    .expect("docs/CONFORMANCE.md");
    let mut rows = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let Some(fault) = cells[0].split('`').nth(1) else {
            continue;
        };
        if fault.starts_with("thenvoi-") {
            continue; // thenvoi_against_mock.rs checks the Thenvoi table
        }
        let mut cases = Vec::new();
        let listed: String = {
            // Drop "(…)" remarks.
            let mut depth = 0;
            cells[1]
                .chars()
                .filter(|c| {
                    match c {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            return false;
                        }
                        _ => {}
                    }
                    depth == 0
                })
                .collect()
        };
        for item in listed.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item.split_once('–') {
                Some((first, last)) => {
                    let (prefix, from) = first.rsplit_once('.').expect("a numbered id");
                    let (from, to): (u32, u32) = (
                        from.parse().expect("a number"),
                        last.parse().expect("a number"),
                    );
                    cases.extend((from..=to).map(|n| format!("{prefix}.{n}")));
                }
                None => cases.push(item.to_string()),
            }
        }
        rows.push((fault.to_string(), cases));
    }
    rows
}

#[test]
fn the_fault_table_in_conformance_md_is_the_one_the_tests_run() {
    let docs = documented_fault_table();
    let mut problems = Vec::new();
    for (fault, _, must_fail) in TABLE {
        let mut expected: Vec<String> = must_fail.iter().map(|c| c.to_string()).collect();
        expected.sort();
        match docs.iter().find(|(f, _)| f == fault) {
            None => problems.push(format!("{fault}: missing from docs/CONFORMANCE.md")),
            Some((_, listed)) => {
                let mut listed = listed.clone();
                listed.sort();
                if listed != expected {
                    problems.push(format!(
                        "{fault}: docs/CONFORMANCE.md lists {listed:?}, the test runs {expected:?}"
                    ));
                }
            }
        }
    }
    for (fault, _) in &docs {
        if !TABLE.iter().any(|(f, _, _)| f == fault) {
            problems.push(format!("{fault}: in docs/CONFORMANCE.md but not in TABLE"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
