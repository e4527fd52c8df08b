//! The `thenvoi.*` cases against a second, independent implementation: a
//! Node server written from docs/THENVOI.md alone
//! (`interop/thenvoi-reference.mjs`), with no control plane, driven by the
//! profile it prints. Every case must pass: a case that fails here but passes
//! on the mock encodes a mock quirk, not the contract.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use proteus_conformance::cases;
use proteus_conformance::profile::Profile;
use proteus_conformance::runner::{self, Settings, Status};
use serde_json::Value;

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_thenvoi_case_passes_against_the_independent_reference_server() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop");
    assert!(
        dir.join("node_modules/ws").is_dir(),
        "run `(cd interop && npm ci)` first (the README's test command does)"
    );
    let mut child = Command::new("node")
        .args(["thenvoi-reference.mjs", "0", "--idle-timeout-ms", "1500"])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node runs");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("start-up line");
    let _node = Node(child);
    let info: Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("start-up JSON ({e}): {line}"));
    let url = info["url"].as_str().expect("url");
    let profile = Profile::from_value(url, "thenvoi-reference", info["profile"].clone())
        .expect("a thenvoi-only profile");
    let all = cases::all();
    let only = vec!["thenvoi".to_string()];
    let selected = runner::select(&all, &only, &[]);
    let settings = Settings {
        only,
        exclude: Vec::new(),
        timeout: Duration::from_secs(3),
        expectations: Vec::new(),
    };
    let results = runner::run(&selected, Arc::new(profile), &settings, |_| {}).await;
    let not_passing: Vec<String> = results
        .iter()
        .filter(|r| r.status != Status::Pass)
        .map(|r| {
            format!(
                "{} {:?} {:?} {:?}\n{}",
                r.id, r.status, r.reason, r.failure, r.wire
            )
        })
        .collect();
    assert!(not_passing.is_empty(), "{}", not_passing.join("\n"));
    let cases = results
        .iter()
        .filter(|r| r.id.starts_with("thenvoi."))
        .count();
    assert!(cases >= 80, "the whole group ran ({cases} cases)");
    assert!(
        results.iter().any(|r| r.id.starts_with("schema.thenvoi.")),
        "schema rows for the thenvoi payloads are produced"
    );
}
