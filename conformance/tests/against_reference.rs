//! The runner against a second, independent implementation: a small Node
//! socket.io + HTTP server written from docs/PROTOCOL.md alone
//! (`interop/reference-server.mjs`), with no control plane, driven by the
//! profile it prints. Every case must pass: a case that fails here but passes
//! on the mock encodes a mock quirk, not the protocol.

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
async fn every_case_passes_against_the_independent_reference_server() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop");
    assert!(
        dir.join("node_modules/socket.io").is_dir(),
        "run `(cd interop && npm ci)` first (the README's test command does)"
    );
    let mut child = Command::new("node")
        .arg("reference-server.mjs")
        .arg("0")
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
    let profile =
        Profile::from_value(url, "reference-server", info["profile"].clone()).expect("profile");
    let all = cases::all();
    // This server speaks ProteusAI only; the thenvoi.* group runs against
    // its own reference (thenvoi_against_reference.rs).
    let selected = runner::select(&all, &[], &["thenvoi".to_string()]);
    let settings = Settings {
        only: Vec::new(),
        exclude: Vec::new(),
        timeout: Duration::from_secs(3),
        expectations: Vec::new(),
    };
    let results = runner::run(&selected, Arc::new(profile), &settings, |_| {}).await;
    // The reference server has no plugin API and no Thenvoi profile and
    // claims neither: those cases are unsupported (not failed; the Thenvoi
    // reference has its own test); everything else passes.
    let not_passing: Vec<String> = results
        .iter()
        .filter(|r| {
            r.status != Status::Pass
                && !(r.status == Status::Unsupported
                    && (r.id.starts_with("plugins.") || r.id.starts_with("thenvoi.")))
        })
        .map(|r| format!("{} {:?} {:?} {:?}", r.id, r.status, r.reason, r.failure))
        .collect();
    assert!(not_passing.is_empty(), "{}", not_passing.join("\n"));
    assert!(results.len() >= 70);
}
