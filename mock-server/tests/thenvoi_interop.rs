//! The Thenvoi profile with real clients nobody here wrote: the official
//! JavaScript Phoenix client (npm `phoenix`) and Band's Python SDK
//! (`band-sdk` on PyPI), each against a mock on a random loopback port.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use proteus_mock::world::World;
use proteus_mock::{Config, Running};
use serde_json::Value;

fn interop() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop")
}

/// A mock whose Thenvoi sockets go idle after `idle`.
async fn start(idle: Duration) -> Running {
    let config = Config {
        thenvoi_idle_timeout: idle,
        ..Config::default()
    };
    proteus_mock::start(World::default_world(), config)
        .await
        .expect("mock starts")
}

/// Runs a program to the end and returns its last stdout line as JSON.
async fn run(mut command: Command, what: &str) -> Value {
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("{what} does not start: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{what} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("{what}: last line is not JSON ({e}): {stdout}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_npm_phoenix_client_joins_heartbeats_receives_its_mention_and_leaves() {
    assert!(
        interop().join("node_modules/phoenix").is_dir(),
        "interop/node_modules is missing: run `(cd interop && npm ci)` (the README's test command does)"
    );
    let mock = start(Duration::from_millis(800)).await;
    let mut node = Command::new("node");
    node.arg("phoenix-client.mjs")
        .arg(mock.url())
        .arg("800")
        .current_dir(interop());
    let seen = run(node, "interop/phoenix-client.mjs").await;
    assert_eq!(seen["joined"].as_array().map(Vec::len), Some(2), "{seen}");
    assert_eq!(
        seen["connectedAfterIdle"], true,
        "heartbeats keep it open: {seen}"
    );
    assert_eq!(seen["posted"], serde_json::json!([201, 201]), "{seen}");
    let pushes = seen["pushes"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        pushes.len(),
        1,
        "only the message that mentions Helper: {seen}"
    );
    assert_eq!(pushes[0]["content"], "hello Helper");
    assert_eq!(seen["left"], true);
    mock.stop().await.expect("clean stop");
}
