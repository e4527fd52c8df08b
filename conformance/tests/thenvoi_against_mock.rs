//! The `thenvoi.*` cases against the mock, spawned as a separate process
//! (this crate never imports the mock's code): every case passes on a clean
//! mock, and each `thenvoi-*` fault makes exactly the cases that guard its
//! rule fail. The mock runs with a 1.5 s idle timeout so the idle cases
//! (`thenvoi.ws.11`, `.13`) run instead of being unsupported.

use std::sync::Arc;
use std::time::Duration;

use proteus_conformance::cases;
use proteus_conformance::profile::Profile;
use proteus_conformance::runner::{self, CaseResult, Settings, Status};
use proteus_conformance::testing::MockProcess;
use serde_json::json;

const IDLE: &[&str] = &["--thenvoi-idle-timeout-ms", "1500"];

async fn admin(url: &str, path: &str, body: Option<serde_json::Value>) -> u16 {
    let http = reqwest::Client::new();
    let req = http.post(format!("{url}{path}"));
    let req = match body {
        Some(b) => req.json(&b),
        None => req,
    };
    req.send().await.expect("admin").status().as_u16()
}

async fn run(url: &str, only: &[&str]) -> Vec<CaseResult> {
    let http = reqwest::Client::new();
    let profile = Profile::fetch(&http, url)
        .await
        .expect("reachable")
        .expect("the mock serves a profile");
    let all = cases::all();
    let only: Vec<String> = only.iter().map(|s| s.to_string()).collect();
    let selected = runner::select(&all, &only, &[]);
    let settings = Settings {
        only,
        exclude: Vec::new(),
        timeout: Duration::from_millis(2000),
        expectations: Vec::new(),
    };
    runner::run(&selected, Arc::new(profile), &settings, |_| {}).await
}

fn describe(r: &CaseResult) -> String {
    format!(
        "{} {:?}: {:?} {:?}\n{}",
        r.id, r.status, r.reason, r.failure, r.wire
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn every_thenvoi_case_passes_against_a_clean_mock() {
    let mock = MockProcess::start(IDLE);
    let results = run(&mock.url, &["thenvoi"]).await;
    let not_passing: Vec<String> = results
        .iter()
        .filter(|r| r.status != Status::Pass)
        .map(describe)
        .collect();
    assert!(not_passing.is_empty(), "{}", not_passing.join("\n"));
    let cases = results
        .iter()
        .filter(|r| r.id.starts_with("thenvoi."))
        .count();
    assert!(cases >= 80, "the whole group ran ({cases} cases)");
}

/// Fault → the cases that must fail (docs/CONFORMANCE.md's Thenvoi table).
/// Each run selects the groups of those cases plus `thenvoi.rest.20`, which
/// must keep passing unless the row lists it (only `thenvoi-me-without-owner`
/// does). A fault that breaks a reply's refs breaks every socket case: every
/// frame is schema-checked.
const TABLE: &[(&str, &[&str])] = &[
    (
        "thenvoi-deliver-unmentioned",
        &[
            "thenvoi.deliver.2",
            "thenvoi.deliver.3",
            "thenvoi.deliver.7",
        ],
    ),
    (
        "thenvoi-deliver-own",
        &["thenvoi.deliver.3", "thenvoi.deliver.7"],
    ),
    ("thenvoi-push-events", &["thenvoi.deliver.6"]),
    (
        "thenvoi-camel-case",
        &[
            "thenvoi.ws.4",
            "thenvoi.deliver.1",
            "thenvoi.deliver.2",
            "thenvoi.deliver.3",
            "thenvoi.deliver.5",
            "thenvoi.deliver.7",
            "thenvoi.deliver.9",
        ],
    ),
    (
        "thenvoi-join-any-room",
        &[
            "thenvoi.chan.1",
            "thenvoi.chan.2",
            "thenvoi.chan.3",
            "thenvoi.chan.4",
            "thenvoi.chan.6",
            "thenvoi.chan.7",
            "thenvoi.chan.8",
            "thenvoi.chan.14",
            "thenvoi.chan.12",
        ],
    ),
    (
        "thenvoi-join-reply-without-refs",
        &[
            "thenvoi.ws.1",
            "thenvoi.ws.4",
            "thenvoi.ws.6",
            "thenvoi.ws.7",
            "thenvoi.ws.8",
            "thenvoi.ws.9",
            "thenvoi.auth.1",
            "thenvoi.auth.2",
            "thenvoi.auth.3",
            "thenvoi.auth.4",
            "thenvoi.auth.6",
            "thenvoi.chan.1",
            "thenvoi.chan.2",
            "thenvoi.chan.3",
            "thenvoi.chan.4",
            "thenvoi.chan.7",
            "thenvoi.chan.8",
            "thenvoi.chan.9",
            "thenvoi.chan.10",
            "thenvoi.chan.11",
            "thenvoi.chan.12",
            "thenvoi.chan.13",
            "thenvoi.chan.14",
            "thenvoi.deliver.1",
            "thenvoi.deliver.2",
            "thenvoi.deliver.3",
            "thenvoi.deliver.4",
            "thenvoi.deliver.5",
            "thenvoi.deliver.6",
            "thenvoi.deliver.7",
            "thenvoi.deliver.8",
            "thenvoi.deliver.9",
        ],
    ),
    (
        "thenvoi-no-heartbeat-reply",
        &[
            "thenvoi.ws.9",
            "thenvoi.ws.10",
            "thenvoi.ws.13",
            "thenvoi.auth.6",
        ],
    ),
    ("thenvoi-keep-old-agent-socket", &["thenvoi.auth.6"]),
    ("thenvoi-no-idle-close", &["thenvoi.ws.11"]),
    (
        "thenvoi-accept-missing-vsn",
        &["thenvoi.ws.2", "thenvoi.ws.12"],
    ),
    ("thenvoi-close-on-client-event", &["thenvoi.ws.9"]),
    (
        "thenvoi-processed-without-attempt",
        &["thenvoi.life.5", "thenvoi.life.7"],
    ),
    ("thenvoi-failed-without-error", &["thenvoi.life.7"]),
    ("thenvoi-next-skips-oldest", &["thenvoi.life.10"]),
    (
        "thenvoi-next-empty-200",
        &["thenvoi.life.4", "thenvoi.life.11"],
    ),
    (
        "thenvoi-next-includes-processed",
        &["thenvoi.life.4", "thenvoi.life.13"],
    ),
    (
        "thenvoi-ignore-status-filter",
        &["thenvoi.life.4", "thenvoi.life.13", "thenvoi.life.14"],
    ),
    ("thenvoi-mention-optional", &["thenvoi.rest.11"]),
    ("thenvoi-lenient-bodies", &["thenvoi.rest.9"]),
    (
        "thenvoi-no-participant-events",
        &["thenvoi.chan.9", "thenvoi.chan.13"],
    ),
    (
        "thenvoi-no-room-events",
        &["thenvoi.chan.11", "thenvoi.chan.12", "thenvoi.chan.13"],
    ),
    (
        "thenvoi-no-page-metadata",
        &[
            "thenvoi.rest.18",
            "thenvoi.rest.21",
            "thenvoi.rest.22",
            "thenvoi.rest.24",
            "thenvoi.rest.25",
            "thenvoi.life.1",
            "thenvoi.life.4",
            "thenvoi.life.6",
            "thenvoi.life.13",
            "thenvoi.life.14",
            "thenvoi.page.1",
            "thenvoi.page.2",
            "thenvoi.page.3",
        ],
    ),
    ("thenvoi-foreign-room-visible", &["thenvoi.rest.6"]),
    (
        "thenvoi-accept-bad-key",
        &["thenvoi.auth.5", "thenvoi.auth.7", "thenvoi.rest.1"],
    ),
    ("thenvoi-accept-any-vsn", &["thenvoi.ws.3"]),
    ("thenvoi-ignore-malformed-frames", &["thenvoi.ws.5"]),
    ("thenvoi-unmatched-as-unauthorized", &["thenvoi.chan.5"]),
    ("thenvoi-wrong-key-kind-401", &["thenvoi.rest.2"]),
    ("thenvoi-read-bearer", &["thenvoi.rest.3"]),
    ("thenvoi-plain-404", &["thenvoi.rest.4"]),
    (
        "thenvoi-unknown-room-403",
        &["thenvoi.rest.5", "thenvoi.chan.14"],
    ),
    ("thenvoi-non-object-body-422", &["thenvoi.rest.7"]),
    (
        "thenvoi-created-as-200",
        &[
            "thenvoi.rest.8",
            "thenvoi.rest.10",
            "thenvoi.rest.13",
            "thenvoi.rest.15",
            "thenvoi.rest.18",
            "thenvoi.rest.22",
            "thenvoi.rest.23",
            "thenvoi.rest.25",
            "thenvoi.life.1",
            "thenvoi.life.8",
            "thenvoi.deliver.3",
            "thenvoi.deliver.4",
            "thenvoi.deliver.5",
            "thenvoi.deliver.6",
            "thenvoi.deliver.7",
        ],
    ),
    ("thenvoi-no-recipients", &["thenvoi.rest.10"]),
    ("thenvoi-mention-anyone", &["thenvoi.rest.12"]),
    ("thenvoi-participants-agents-only", &["thenvoi.rest.14"]),
    ("thenvoi-duplicate-participant-ok", &["thenvoi.rest.15"]),
    ("thenvoi-any-role-adds", &["thenvoi.rest.16"]),
    ("thenvoi-remove-missing-200", &["thenvoi.rest.17"]),
    ("thenvoi-added-rooms-hidden", &["thenvoi.rest.19"]),
    (
        "thenvoi-me-without-owner",
        &["thenvoi.ws.1", "thenvoi.rest.20", "thenvoi.rest.23"],
    ),
    ("thenvoi-register-without-key", &["thenvoi.rest.23"]),
    ("thenvoi-users-add-only-agents", &["thenvoi.rest.26"]),
    (
        "thenvoi-attempts-from-zero",
        &[
            "thenvoi.life.2",
            "thenvoi.life.3",
            "thenvoi.life.4",
            "thenvoi.life.5",
            "thenvoi.life.6",
            "thenvoi.life.7",
            "thenvoi.life.9",
            "thenvoi.life.12",
            "thenvoi.life.13",
            "thenvoi.life.14",
            "thenvoi.life.16",
        ],
    ),
    ("thenvoi-processing-keeps-attempt", &["thenvoi.life.3"]),
    ("thenvoi-claim-any-message", &["thenvoi.life.8"]),
    ("thenvoi-next-skips-processing", &["thenvoi.life.12"]),
    ("thenvoi-unknown-status-as-all", &["thenvoi.life.15"]),
    ("thenvoi-lenient-paging", &["thenvoi.page.4"]),
];

/// Cases no `thenvoi-*` fault of the mock breaks (the mock has no fault for
/// their rule yet). Listed so a gap is a visible decision, not an accident:
/// a new case that no fault breaks goes here until one does. Empty: every
/// Thenvoi case fails under at least one fault.
const NOT_GUARDED: &[&str] = &[];

/// `thenvoi.ws` from `thenvoi.ws.4`.
fn group(id: &str) -> &str {
    id.rsplit_once('.').map_or(id, |(g, _)| g)
}

#[test]
fn every_thenvoi_fault_is_in_the_table_and_every_case_is_guarded_or_listed() {
    let all: Vec<&str> = cases::all()
        .iter()
        .map(|c| c.id)
        .filter(|id| id.starts_with("thenvoi."))
        .collect();
    let mut unguarded: Vec<&str> = all
        .iter()
        .copied()
        .filter(|id| !TABLE.iter().any(|(_, fail)| fail.contains(id)))
        .collect();
    unguarded.sort();
    let mut listed = NOT_GUARDED.to_vec();
    listed.sort();
    assert_eq!(unguarded, listed, "cases no fault breaks");
    assert!(TABLE.iter().all(|(_, fail)| !fail.is_empty()));
    assert_eq!(
        TABLE.len(),
        49,
        "one row per thenvoi-* fault of the registry"
    );
}

async fn check_rows(socket: bool) {
    let mock = MockProcess::start(IDLE);
    let mut problems = Vec::new();
    let on_socket = |fail: &[&str]| {
        fail.iter().any(|id| {
            [
                "thenvoi.ws",
                "thenvoi.auth",
                "thenvoi.chan",
                "thenvoi.deliver",
            ]
            .contains(&group(id))
        })
    };
    for (fault, fail) in TABLE.iter().filter(|(_, fail)| on_socket(fail) == socket) {
        assert_eq!(admin(&mock.url, "/__admin/reset", None).await / 100, 2);
        let set = admin(
            &mock.url,
            "/__admin/faults",
            Some(json!({ "fault": fault })),
        )
        .await;
        assert_eq!(set, 201, "fault {fault} accepted");
        let mut only: Vec<&str> = fail.iter().map(|id| group(id)).collect();
        only.push("thenvoi.rest.20");
        only.sort();
        only.dedup();
        let results = run(&mock.url, &only).await;
        let mut failed: Vec<&str> = results
            .iter()
            .filter(|r| r.status == Status::Fail && !r.id.starts_with("schema."))
            .map(|r| r.id.as_str())
            .collect();
        failed.sort();
        let mut expected = fail.to_vec();
        expected.sort();
        if failed != expected {
            problems.push(format!(
                "{fault}: expected failures {expected:?}, got {failed:?}"
            ));
        }
    }
    assert_eq!(admin(&mock.url, "/__admin/reset", None).await / 100, 2);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn socket_faults_fail_exactly_the_thenvoi_cases_that_guard_their_rule() {
    check_rows(true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rest_faults_fail_exactly_the_thenvoi_cases_that_guard_their_rule() {
    check_rows(false).await;
}

/// The `thenvoi-*` rows of docs/CONFORMANCE.md's tables as (fault, cases):
/// ranges like `thenvoi.chan.1–4` expanded, remarks in parentheses dropped.
fn documented_thenvoi_table() -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/CONFORMANCE.md"
    ))
    .expect("docs/CONFORMANCE.md");
    let mut rows = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("| `thenvoi-")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let fault = cells[0].trim_matches('`').to_string();
        let listed = cells[1].split(" (").next().unwrap_or_default();
        let mut cases = Vec::new();
        for item in listed.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item.split_once('–') {
                Some((first, last)) => {
                    let (prefix, from) = first.rsplit_once('.').expect("a numbered id");
                    let from: u32 = from.parse().expect("a number");
                    let to: u32 = last.parse().expect("a number");
                    cases.extend((from..=to).map(|n| format!("{prefix}.{n}")));
                }
                None => cases.push(item.to_string()),
            }
        }
        cases.sort();
        rows.push((fault, cases));
    }
    rows
}

#[test]
fn the_thenvoi_fault_table_in_conformance_md_is_the_one_the_tests_run() {
    let docs = documented_thenvoi_table();
    let mut problems = Vec::new();
    for (fault, fail) in TABLE {
        let mut expected: Vec<String> = fail.iter().map(|c| c.to_string()).collect();
        expected.sort();
        match docs.iter().find(|(f, _)| f == fault) {
            None => problems.push(format!("{fault}: missing from docs/CONFORMANCE.md")),
            Some((_, listed)) if *listed != expected => problems.push(format!(
                "{fault}: docs/CONFORMANCE.md lists {listed:?}, the test runs {expected:?}"
            )),
            Some(_) => {}
        }
    }
    assert_eq!(docs.len(), TABLE.len(), "one documented row per fault");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
