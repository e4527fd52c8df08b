//! The validating proxy between a real client (the npm socket.io-client
//! interop script) and the mock: the client works through it unchanged, the
//! server's side of a clean exchange yields no violation (the one frame the
//! script sends malformed on purpose is named), a mock fault is reported live and
//! in the summary, and the capture, with its tokens redacted, is checked
//! again offline by `validate` with the same verdict.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use proteus_conformance::testing::MockProcess;
use serde_json::Value;

const ADA: &str = "user-3a4d80a9c3cca7ffd1bc341f.ede04d00e4b168bed35d9fcde8c2f92f.00d7fecf89201691f94b01e5b294da65.e7ea4c191b2c9a059ce5658deb7349c26a931ed8b7a04bf0";

fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A proxy in front of `upstream`; its URL (read from its banner). Its
/// JUnit report goes beside the summary, as `proxy.xml`.
fn proxy(upstream: &str, capture: &Path, summary: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_proteus-conformance"))
        .args([
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            upstream,
            "--capture",
        ])
        .arg(capture)
        .arg("--json")
        .arg(summary)
        .arg("--junit")
        .arg(summary.with_file_name("proxy.xml"))
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
    (child, url)
}

/// Stops the proxy as Ctrl-C would; its exit code and summary.
fn stop(mut child: Child, summary: &Path) -> (i32, Value) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let code = child.wait().expect("the proxy ends").code().unwrap_or(-1);
    let text = std::fs::read_to_string(summary).expect("the summary");
    (code, serde_json::from_str(&text).expect("JSON"))
}

/// What each violation of a proxy summary was about.
fn violations(summary: &Value) -> Vec<&str> {
    summary["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .filter_map(|v| v["what"].as_str())
        .collect()
}

fn interop_client(url: &str) -> std::process::Output {
    Command::new("node")
        .current_dir(root().join("interop"))
        .args(["socketio-client.mjs", url])
        .output()
        .expect("node runs")
}

#[test]
fn a_real_client_works_through_the_proxy_and_only_its_malformed_frame_is_reported() {
    let mock = MockProcess::start(&[]);
    let dir = std::env::temp_dir().join(format!("proteus-proxy-clean-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (capture, summary) = (dir.join("capture.jsonl"), dir.join("summary.json"));
    let (child, url) = proxy(&mock.url, &capture, &summary);
    let out = interop_client(&url);
    assert!(
        out.status.success(),
        "the client failed through the proxy: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let status = rt.block_on(async {
        reqwest::Client::new()
            .get(format!("{url}/api/chats"))
            .bearer_auth(ADA)
            .send()
            .await
            .expect("REST through the proxy")
            .status()
    });
    assert_eq!(status, 200);
    let (code, summary) = stop(child, &summary);
    // The interop script sends one malformed frame on purpose (it checks
    // the server's error ack): the proxy names it, and nothing else; the
    // server's side is clean.
    let whats = violations(&summary);
    assert_eq!(
        whats,
        ["client→server event chat:join: does not match realtime/chat-join"],
        "{summary:#}"
    );
    assert_eq!(code, 1, "a violation, by the client");
    assert!(summary["exchanges"].as_u64() > Some(20), "{summary}");
    let text = std::fs::read_to_string(&capture).expect("capture");
    assert!(!text.contains(ADA), "the capture keeps no token");
    assert!(text.contains("message:delta") && text.contains("\"kind\":\"rest\""));
    let check = Command::new(env!("CARGO_BIN_EXE_proteus-conformance"))
        .arg("validate")
        .arg(&capture)
        .output()
        .expect("validate");
    let stdout = String::from_utf8_lossy(&check.stdout);
    let failed: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert_eq!(
        failed.len(),
        1,
        "offline, the same one frame fails: {stdout}"
    );
    assert!(failed[0].contains("realtime/chat-join"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_lost_delta_is_reported_live_in_the_summary_and_again_offline() {
    let mock = MockProcess::start(&["--fault", "drop-delta:3"]);
    let dir = std::env::temp_dir().join(format!("proteus-proxy-gap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (capture, summary) = (dir.join("capture.jsonl"), dir.join("summary.json"));
    let (child, url) = proxy(&mock.url, &capture, &summary);
    // The client's own checks fail too (it counts deltas); the proxy is judged here.
    let _ = interop_client(&url);
    let junit = dir.join("proxy.xml");
    let (code, summary) = stop(child, &summary);
    assert_eq!(code, 1, "{summary:#}");
    let whats = violations(&summary);
    assert!(
        whats.iter().any(|w| w.contains("gap")),
        "a gap is reported: {whats:?}"
    );
    let xml = std::fs::read_to_string(&junit).expect("the JUnit report");
    assert!(xml.contains("<failure") && xml.contains("gap"), "{xml}");
    let check = Command::new(env!("CARGO_BIN_EXE_proteus-conformance"))
        .arg("validate")
        .arg(&capture)
        .output()
        .expect("validate");
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL stream") && stdout.contains("gap"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_long_polling_client_is_checked_as_well() {
    let mock = MockProcess::start(&["--fault", "drop-delta:3"]);
    let dir = std::env::temp_dir().join(format!("proteus-proxy-poll-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (capture, summary) = (dir.join("capture.jsonl"), dir.join("summary.json"));
    let (child, url) = proxy(&mock.url, &capture, &summary);
    // The npm client on long-polling only: join, ask for a streamed reply,
    // wait for its done.
    let script = format!(
        r#"import {{ io }} from "socket.io-client";
const s = io("{url}", {{ auth: {{ token: "{ADA}" }}, transports: ["polling"], upgrade: false, reconnection: false }});
await new Promise((r) => s.once("success", r));
await s.emitWithAck("chat:join", {{ chatId: "682f4b313981b5f54e96ea4b" }});
const done = new Promise((r) => s.once("message:done", r));
await s.emitWithAck("message:send", {{ chatId: "682f4b313981b5f54e96ea4b", content: "by polling", streamResponse: true, state: {{ mock: {{ chunks: 6, chunkDelayMs: 5 }} }} }});
await done;
s.close();
"#
    );
    let out = Command::new("node")
        .current_dir(root().join("interop"))
        .args(["--input-type=module", "-e", &script])
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, summary) = stop(child, &summary);
    assert_eq!(code, 1, "{summary:#}");
    let whats = violations(&summary);
    assert!(
        whats.iter().any(|w| w.contains("gap")),
        "the gap, seen on polling: {whats:?}"
    );
    let text = std::fs::read_to_string(&capture).expect("capture");
    assert!(
        text.contains("message:delta"),
        "polling packets are captured"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
