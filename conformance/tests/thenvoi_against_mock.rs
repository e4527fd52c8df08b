//! The `thenvoi.*` cases against the mock, spawned as a separate process
//! (this crate never imports the mock's code): every case passes on a clean
//! mock. (The fault table, each `thenvoi-*` fault failing exactly the cases
//! that guard its rule, is not written yet.) The mock runs with a 1.5 s idle timeout so the idle cases
//! (`thenvoi.ws.11`, `.13`) run instead of being unsupported.

use std::sync::Arc;
use std::time::Duration;

use proteus_conformance::cases;
use proteus_conformance::profile::Profile;
use proteus_conformance::runner::{self, CaseResult, Settings, Status};
use proteus_conformance::testing::MockProcess;

const IDLE: &[&str] = &["--thenvoi-idle-timeout-ms", "1500"];

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
    for r in results.iter().filter(|r| r.duration_ms > 900) {
        eprintln!("slow: {} {} ms", r.id, r.duration_ms);
    }
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
