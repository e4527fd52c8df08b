//! The toolkit's web pages in a real browser: Debian's headless Chromium,
//! driven through chromedriver by `interop/inspector_check.py` (selenium).
//! The mock's inspector page is used end to end (a socket.io client listed,
//! a streamed reply growing, a fault switched on from the page hitting the
//! next stream, a post from the composer received, a disconnect from the
//! page), and the runner's `--report-html`, the load generator's `--html`
//! and its sweep's `--html` are opened and fail on a console error or an
//! empty chart.
//!
//! The screenshot of the inspector lands in `target/inspector.png`; with
//! `PROTEUS_UPDATE_SCREENSHOT=1` it also replaces `docs/inspector.png` (the
//! README's picture).

use std::path::{Path, PathBuf};
use std::process::Command;

use proteus_conformance::testing::{MockProcess, workspace_binary};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

fn require(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{tool} is missing: `apt-get install chromium chromium-driver` (.ci/run installs them)"
    );
}

#[test]
fn the_inspector_and_the_html_reports_work_in_headless_chromium() {
    require("chromium");
    require("chromedriver");
    let python = repo().join("interop/.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run the README's test command (it creates interop/.venv)",
        python.display()
    );
    let out = repo().join("target/browser-check");
    std::fs::create_dir_all(&out).expect("target/browser-check");

    // The reports, made against a mock of their own (a conformance run
    // changes the world the inspector check starts from).
    let reports_mock = MockProcess::start(&[]);
    let conformance_html = out.join("conformance.html");
    let run = Command::new(env!("CARGO_BIN_EXE_proteus-conformance"))
        .args(["run", "--target", &reports_mock.url, "--report-html"])
        .arg(&conformance_html)
        .output()
        .expect("proteus-conformance runs");
    assert!(
        conformance_html.exists(),
        "no conformance report: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let load_html = out.join("load.html");
    let run = Command::new(workspace_binary("proteus-load"))
        .args(["run", "--target", &reports_mock.url, "--scenario", "chat"])
        .args(["--users", "5", "--rate", "5", "--duration", "3s", "--html"])
        .arg(&load_html)
        .output()
        .expect("proteus-load runs");
    assert!(
        run.status.success() && load_html.exists(),
        "no load report: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let sweep_html = out.join("sweep.html");
    let run = Command::new(workspace_binary("proteus-load"))
        .args([
            "sweep",
            "--target",
            &reports_mock.url,
            "--from",
            "5",
            "--to",
            "10",
        ])
        .args(["--double", "--users", "2", "--duration", "1s", "--html"])
        .arg(&sweep_html)
        .output()
        .expect("proteus-load sweep runs");
    assert!(
        run.status.success() && sweep_html.exists(),
        "no sweep report: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    drop(reports_mock);

    let mock = MockProcess::start(&[]);
    let screenshot = out.join("inspector.png");
    let check = Command::new(&python)
        .arg(repo().join("interop/inspector_check.py"))
        .args(["--url", &mock.url, "--screenshot"])
        .arg(&screenshot)
        .arg("--report-html")
        .arg(&conformance_html)
        .arg("--report-html")
        .arg(&load_html)
        .arg("--report-html")
        .arg(&sweep_html)
        .output()
        .expect("the browser check runs");
    assert!(
        check.status.success(),
        "the browser check failed:\n{}\n{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let png = std::fs::read(&screenshot).expect("the screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "the screenshot is not a real picture ({} bytes)",
        png.len()
    );
    if std::env::var_os("PROTEUS_UPDATE_SCREENSHOT").is_some() {
        std::fs::write(repo().join("docs/inspector.png"), &png).expect("docs/inspector.png");
    }
}
