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

#[tokio::test]
async fn a_websocket_message_over_the_size_limit_closes_the_socket_and_stores_nothing() {
    use proteus_conformance::client::{Client, Frame};
    let mock = start().await;
    let http = Http::new(&mock);
    let before = http
        .get(&format!("/api/chats/{WELCOME}/messages"), ADA)
        .await;
    let mut c = Client::connect(&mock.url(), &json!({"token": ADA}))
        .await
        .expect("connects");
    while !matches!(c.next_frame().await.expect("frame"), Frame::Event { ref name, .. } if name == "success")
    {
    }
    // 2 MB, twice the limit of a REST body and of a polling payload.
    let big = "x".repeat(2 * 1024 * 1024);
    let _ = c
        .emit_with_ack("message:send", &json!({"chatId": WELCOME, "content": big}))
        .await;
    let mut closed = false;
    for _ in 0..20 {
        match c
            .next_frame_within(std::time::Duration::from_secs(5), "close")
            .await
        {
            Ok(Frame::Ack { .. }) => panic!("a 2 MB message was acknowledged"),
            Ok(_) => continue,
            Err(proteus_conformance::client::ClientError::Timeout(..)) => {
                panic!("the socket stayed open 5 s after a 2 MB message")
            }
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    assert!(closed, "the socket is closed");
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
async fn a_declared_body_over_the_limit_is_refused_before_100_continue() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mock = start().await;
    let mut tcp = tokio::net::TcpStream::connect(mock.addr)
        .await
        .expect("connects");
    let head = format!(
        "POST /api/chats HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ADA}\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\nExpect: 100-continue\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.expect("writes");
    let mut buf = vec![0u8; 512];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .expect("an answer within 5 s")
        .expect("reads");
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    mock.stop().await.expect("stop");
}

#[tokio::test]
async fn replies_in_flight_per_entity_are_capped_and_free_up_when_they_end() {
    let mock = proteus_mock::start(
        proteus_mock::world::World::default_world(),
        proteus_mock::Config {
            max_replies_per_entity: 2,
            ..proteus_mock::Config::default()
        },
    )
    .await
    .expect("starts");
    let http = Http::new(&mock);
    let send = |content: &'static str| {
        http.post(
            "/api/messages",
            ADA,
            json!({ "chatId": WELCOME, "content": content, "streamResponse": true,
                "state": { "mock": { "chunks": 5, "chunkDelayMs": 200 } } }),
        )
    };
    assert_eq!(send("one").await.status, 201);
    assert_eq!(send("two").await.status, 201);
    let third = send("three").await;
    assert_eq!(third.status, 429, "{}", third.body);
    assert!(
        third.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("--max-replies-per-entity")),
        "{}",
        third.body
    );
    // Another user is not held back by Ada's replies.
    let grace = http
        .post(
            "/api/messages",
            GRACE,
            json!({ "chatId": GRACE_CHAT, "content": "mine", "streamResponse": true }),
        )
        .await;
    assert_eq!(grace.status, 201, "{}", grace.body);
    // Once Ada's replies end, she may send again.
    tokio::time::sleep(std::time::Duration::from_millis(2000)).await;
    assert_eq!(send("four").await.status, 201);
    mock.stop().await.expect("stop");
}
