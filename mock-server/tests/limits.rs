//! A scripted reply stays bounded in deltas and in time: a message asking
//! for more is refused before it is stored, with the limit named.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn a_reply_longer_than_ten_minutes_is_refused_up_front() {
    let mock = start().await;
    let http = Http::new(&mock);
    let before = http
        .get(&format!("/api/chats/{WELCOME}/messages"), ADA)
        .await;
    let r = http
        .post(
            "/api/messages",
            ADA,
            json!({ "chatId": WELCOME, "content": "slow", "streamResponse": true,
                "state": { "mock": { "chunks": 1000000, "chunkDelayMs": 60000 } } }),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("at most 600 s")),
        "{}",
        r.body
    );
    let after = http
        .get(&format!("/api/chats/{WELCOME}/messages"), ADA)
        .await;
    assert_eq!(
        before.body["meta"]["total"], after.body["meta"]["total"],
        "nothing was stored"
    );
    mock.stop().await.expect("stop");
}

#[tokio::test]
async fn a_one_character_chunk_size_cannot_bypass_the_delta_cap() {
    let mock = start().await;
    let http = Http::new(&mock);
    let content = "x".repeat(60_000);
    let r = http
        .post(
            "/api/messages",
            ADA,
            json!({ "chatId": WELCOME, "content": content, "streamResponse": true,
                "state": { "mock": { "chunkSize": 1, "text": "{{content}}".repeat(20) } } }),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("at most 1000000")),
        "{}",
        r.body
    );
    mock.stop().await.expect("stop");
}
