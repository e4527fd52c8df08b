//! A capture replayed as a mock: the careful client adapter is recorded
//! through the proxy against the mock, then the capture is served by
//! `proteus-mock --replay --replay-pace`, and the same client sees the same
//! reply, chunk for chunk, at the recorded pace.

mod proxy_kit;

use std::process::Command;

use proteus_conformance::testing::MockProcess;
use proxy_kit::*;
use serde_json::Value;

/// Runs the careful client adapter's `stream` task; the reply it presented.
fn careful_stream(url: &str, chat: &str, state: &str) -> String {
    let out = Command::new("node")
        .current_dir(root())
        .arg("interop/clients/careful.mjs")
        .envs([
            ("PROTEUS_URL", url),
            ("PROTEUS_TOKEN", ADA),
            ("PROTEUS_CHAT_ID", chat),
            ("PROTEUS_TASK", "stream"),
            ("PROTEUS_CONTENT", "tell me about replays"),
            ("PROTEUS_STATE", state),
            ("PROTEUS_TIMEOUT_MS", "5000"),
        ])
        .output()
        .expect("node runs");
    let line: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(line["event"], "final", "{line}");
    line["content"].as_str().expect("content").to_string()
}

/// The deltas a mock sent (journal), as (contentDelta, microseconds).
fn deltas(base: &str) -> Vec<(String, u64)> {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let v: Value = rt.block_on(async {
        reqwest::get(format!("{base}/__admin/journal?event=message:delta"))
            .await
            .expect("journal")
            .json()
            .await
            .expect("JSON")
    });
    v["data"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["detail"]["payload"]["contentDelta"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                e["tUs"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

#[test]
fn a_capture_replays_offline_with_the_same_reply_chunks_and_pace() {
    let mock = MockProcess::start(&[]);
    let dir = std::env::temp_dir().join(format!("proteus-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (capture, summary) = (dir.join("capture.jsonl"), dir.join("summary.json"));
    let (child, url) = proxy(&mock.url, &capture, &summary);
    // Record: a chat made through the proxy, a reply shaped by state.mock
    // (a text and pace the replaying mock's script would never give).
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let chat: Value = rt.block_on(async {
        reqwest::Client::new()
            .post(format!("{url}/api/chats"))
            .bearer_auth(ADA)
            .json(&serde_json::json!({ "participants": [{ "id": "6819a0e484df0fc342cea506", "type": "AGENT" }] }))
            .send()
            .await
            .expect("create a chat")
            .json()
            .await
            .expect("JSON")
    });
    let chat = chat["data"]["id"].as_str().expect("chat id").to_string();
    let recorded_state =
        r#"{"mock":{"text":"Recorded answer to {{content}}","chunks":5,"chunkDelayMs":80}}"#;
    let live = careful_stream(&url, &chat, recorded_state);
    let (code, _) = stop(child, &summary);
    assert_eq!(code, 0, "a clean recording");
    let recorded = deltas(&mock.url);
    drop(mock);

    // Replay: a fresh mock from the capture; the same client, without the
    // state that shaped the recorded reply, sees the recorded reply.
    let capture_arg = capture.display().to_string();
    let replay = MockProcess::start(&["--replay", &capture_arg, "--replay-pace"]);
    let replayed = careful_stream(&replay.url, &chat, "{}");
    assert_eq!(replayed, live);
    assert!(live.starts_with("Recorded answer to"), "{live}");
    let played = deltas(&replay.url);
    let chunks = |d: &[(String, u64)]| d.iter().map(|(c, _)| c.clone()).collect::<Vec<_>>();
    assert_eq!(chunks(&played), chunks(&recorded), "chunk for chunk");
    // Paced: the recorded span between the first and last delta (4 gaps of
    // 80 ms) is kept, give or take scheduling.
    let span = |d: &[(String, u64)]| d.last().map_or(0, |l| l.1) - d.first().map_or(0, |f| f.1);
    assert!(
        span(&played) * 10 >= span(&recorded) * 8,
        "replayed span {} us, recorded {} us",
        span(&played),
        span(&recorded)
    );
    // The chat and its messages are there before the client sends anything.
    let history: Value = rt.block_on(async {
        reqwest::Client::new()
            .get(format!(
                "{}/api/chats/{chat}/messages?@limit=100",
                replay.url
            ))
            .bearer_auth(ADA)
            .send()
            .await
            .expect("history")
            .json()
            .await
            .expect("JSON")
    });
    assert_eq!(history["meta"]["total"], 4, "2 captured + 2 new: {history}");
    let _ = std::fs::remove_dir_all(&dir);
}
