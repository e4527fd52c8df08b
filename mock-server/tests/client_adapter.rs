//! The Rust client-conformance adapter (`examples/client_adapter.rs`, on
//! `rust_socketio`) passes every client scenario, like the Node and Python
//! ones (conformance/tests/clients.rs): three SDKs nobody here wrote, one
//! contract.

use std::process::Command;

use proteus_conformance::testing::{MockProcess, workspace_binary};
use serde_json::Value;

#[test]
fn the_rust_socketio_adapter_passes_every_client_scenario() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "proteus-mock",
            "--example",
            "client_adapter",
        ])
        .status()
        .expect("cargo runs");
    assert!(built.success(), "cannot build the adapter");
    let exe = std::env::current_exe().expect("test executable");
    let profile_dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    let adapter = profile_dir.join("examples/client_adapter");
    let mock = MockProcess::start(&[]);
    let json =
        std::env::temp_dir().join(format!("proteus-rust-adapter-{}.json", std::process::id()));
    let out = Command::new(workspace_binary("proteus-conformance"))
        .args(["client", "--target", &mock.url, "--command"])
        .arg(&adapter)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("the runner runs");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("report")).expect("json");
    let failed: Vec<&Value> = report["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter(|c| c["status"] != "pass")
        .collect();
    assert!(
        failed.is_empty(),
        "{failed:#?}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(out.status.code(), Some(0));
    let _ = std::fs::remove_file(&json);
}
