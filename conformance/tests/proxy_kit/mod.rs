//! The proxy tests' kit: start a proxy in front of a target (killed if a
//! test fails first), stop it as Ctrl-C would and read its summary, and run
//! the interop client through it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

pub const ADA: &str = "user-3a4d80a9c3cca7ffd1bc341f.ede04d00e4b168bed35d9fcde8c2f92f.00d7fecf89201691f94b01e5b294da65.e7ea4c191b2c9a059ce5658deb7349c26a931ed8b7a04bf0";

pub fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A proxy in front of `upstream`; its URL (read from its banner). Its
/// JUnit report goes beside the summary, as `proxy.xml`.
pub fn proxy(upstream: &str, capture: &Path, summary: &Path) -> (Running, String) {
    proxy_with(upstream, Some(capture), summary, &[])
}

/// A running proxy, killed if a test fails before stopping it.
pub struct Running(pub Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// As [`proxy`], with more flags.
pub fn proxy_with(
    upstream: &str,
    capture: Option<&Path>,
    summary: &Path,
    more: &[&str],
) -> (Running, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_proteus-conformance"))
        .args(["proxy", "--listen", "127.0.0.1:0", "--upstream", upstream])
        .args(
            capture
                .map(|c| vec![std::ffi::OsStr::new("--capture"), c.as_os_str()])
                .unwrap_or_default(),
        )
        .arg("--json")
        .arg(summary)
        .arg("--junit")
        .arg(summary.with_file_name("proxy.xml"))
        .args(more)
        .stdout(Stdio::piped())
        .spawn()
        .expect("the proxy starts");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("banner");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .expect("the listening URL")
        .trim_end_matches(',')
        .to_string();
    (Running(Some(child)), url)
}

/// Stops the proxy as Ctrl-C would; its exit code and summary.
pub fn stop(mut running: Running, summary: &Path) -> (i32, Value) {
    let mut child = running.0.take().expect("a running proxy");
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let code = child.wait().expect("the proxy ends").code().unwrap_or(-1);
    let text = std::fs::read_to_string(summary).expect("the summary");
    (code, serde_json::from_str(&text).expect("JSON"))
}

/// What each violation of a proxy summary was about.
pub fn violations(summary: &Value) -> Vec<&str> {
    summary["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .filter_map(|v| v["what"].as_str())
        .collect()
}

/// The status of Ada's `GET /api/chats` through `url`.
pub fn chats_status(url: &str) -> u16 {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        reqwest::Client::new()
            .get(format!("{url}/api/chats"))
            .bearer_auth(ADA)
            .send()
            .await
            .expect("the proxy answers")
            .status()
            .as_u16()
    })
}

pub fn interop_client(url: &str) -> std::process::Output {
    Command::new("node")
        .current_dir(root().join("interop"))
        .args(["socketio-client.mjs", url])
        .output()
        .expect("node runs")
}

/// `proteus-conformance validate` on a capture: its FAIL lines, and all it
/// printed.
pub fn validate_failures(capture: &Path) -> (Vec<String>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_proteus-conformance"))
        .arg("validate")
        .arg(capture)
        .output()
        .expect("validate");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let failed = stdout
        .lines()
        .filter(|l| l.starts_with("FAIL"))
        .map(str::to_string)
        .collect();
    (failed, stdout)
}
