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

/// The Python the Band SDK is installed in (`interop/.venv`, made by the
/// README's test command).
fn band_python() -> PathBuf {
    let python = interop().join(".venv/bin/python");
    assert!(
        python.is_file(),
        "interop/.venv is missing: run `(cd interop && python3 -m venv .venv && .venv/bin/pip install -r requirements.txt)` (the README's test command does)"
    );
    python
}

#[tokio::test(flavor = "multi_thread")]
async fn the_band_sdk_agent_drains_its_backlog_then_answers_a_live_mention() {
    use std::io::{BufRead, BufReader};
    let python = band_python();
    let mock = start(Duration::from_secs(45)).await;
    let url = mock.url();
    let http = reqwest::Client::new();
    let profile: Value = http
        .get(format!("{url}/__admin/profile"))
        .send()
        .await
        .expect("profile")
        .json()
        .await
        .expect("json");
    let t = &profile["data"]["thenvoi"];
    let helper = t["agents"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["name"] == "Helper"))
        .cloned()
        .expect("Helper in the world");
    let (room, human_key) = (
        t["rooms"][0]["id"].as_str().expect("room").to_string(),
        t["users"][0]["apiKey"].as_str().expect("key").to_string(),
    );
    let tmp = std::env::temp_dir().join(format!("band-sdk-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("tmp");
    let mut child = Command::new(python)
        .arg("band_agent.py")
        .current_dir(interop())
        .env("THENVOI_URL", &url)
        .env("BAND_AGENT_ID", helper["id"].as_str().expect("id"))
        .env("BAND_AGENT_KEY", helper["apiKey"].as_str().expect("key"))
        .env("MODE", "echo")
        .env("EXIT_AFTER", "2")
        .env("TIMEOUT", "40")
        .env("TMPDIR", &tmp)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(serde_json::from_str(&line).unwrap_or(Value::String(line)));
        }
    });
    let mut events = Vec::new();
    async fn next(
        rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>,
        what: &str,
    ) -> Option<Value> {
        tokio::time::timeout(Duration::from_secs(40), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("the SDK agent said nothing while waiting for {what}"))
    }
    // At start-up the SDK drains the world's waiting message through /next.
    while let Some(e) = next(&mut rx, "the backlog").await {
        events.push(e.clone());
        if e["event"] == "replied" {
            break;
        }
    }
    let live = http
        .post(format!("{url}/api/v1/me/chats/{room}/messages"))
        .header("x-api-key", &human_key)
        .json(&serde_json::json!({ "message": { "content": "live hello", "mentions": [{ "id": helper["id"] }] } }))
        .send()
        .await
        .expect("post");
    assert_eq!(live.status().as_u16(), 201);
    while let Some(e) = next(&mut rx, "the live mention").await {
        events.push(e);
    }
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    let handled: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "message")
        .filter_map(|e| e["content"].as_str())
        .collect();
    assert!(status.success(), "the SDK agent failed: {events:?}");
    assert_eq!(handled.len(), 2, "{events:?}");
    assert!(handled[0].contains("waiting for your agent"), "{events:?}");
    assert_eq!(handled[1], "live hello", "{events:?}");
    // Both are processed, and the replies are in the room.
    let listed: Value = http
        .get(format!(
            "{url}/api/v1/agent/chats/{room}/messages?status=processed"
        ))
        .header("x-api-key", helper["apiKey"].as_str().expect("key"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(2), "{listed}");
    let history: Value = http
        .get(format!("{url}/api/v1/me/chats/{room}/messages"))
        .header("x-api-key", &human_key)
        .send()
        .await
        .expect("history")
        .json()
        .await
        .expect("json");
    assert_eq!(
        history["data"][0]["content"], "echo: live hello",
        "{history}"
    );
    let _ = std::fs::remove_dir_all(&tmp);
    mock.stop().await.expect("clean stop");
}
