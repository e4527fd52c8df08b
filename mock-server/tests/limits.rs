//! A scripted reply stays bounded in deltas and in time: a message asking
//! for more is refused before it is stored, with the limit named. What
//! clients create (chats, rooms, agents) is bounded in count the same way.

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

/// Creates with `make` until refused; returns how many succeeded and the
/// refusal (status, body).
async fn fill<F, Fut>(mut make: F) -> (usize, u16, serde_json::Value)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (u16, serde_json::Value)>,
{
    for made in 0..50 {
        let (status, body) = make().await;
        if !(200..300).contains(&status) {
            return (made, status, body);
        }
    }
    panic!("50 creations and no refusal: the bound is not enforced");
}

fn names_the_bound(body: &serde_json::Value, what: &str) -> bool {
    body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains(&format!("at most 12 {what}")) && m.contains("--max-objects"))
}

#[tokio::test]
async fn chats_and_agents_past_max_objects_are_refused_with_429_until_a_reset() {
    let world = proteus_mock::world::World::default_world();
    let (chats, agents) = (world.chats.len(), world.agents.len());
    assert!(chats < 12 && agents < 12, "the default world leaves room");
    let config = proteus_mock::Config {
        max_objects: 12,
        ..proteus_mock::Config::default()
    };
    let mock = proteus_mock::start(world, config)
        .await
        .expect("mock starts");
    let http = Http::new(&mock);
    let chat = || async {
        let r = http
            .post(
                "/api/chats",
                ADA,
                json!({"participants": [{"id": GRACE_ID, "type": "USER"}]}),
            )
            .await;
        (r.status, r.body)
    };
    let (made, status, body) = fill(chat).await;
    assert_eq!((made, status), (12 - chats, 429), "{body}");
    assert!(names_the_bound(&body, "chats"), "{body}");
    // A send that would create a chat over socket.io is refused alike.
    let mut sio = Sio::connect(&mock, ADA).await;
    sio.next_named("success", 5).await;
    let ack = sio
        .ack(
            "message:send",
            json!({"content": "hi", "recipients": [{"id": GRACE_ID, "type": "USER"}]}),
        )
        .await;
    assert!(
        ack.to_string().contains("--max-objects"),
        "an error ack names the bound: {ack}"
    );
    let agent = || async {
        let r = http
            .post("/api/agents", ADA, json!({"name": "more", "orgId": ORG}))
            .await;
        (r.status, r.body)
    };
    let (made, status, body) = fill(agent).await;
    assert_eq!((made, status), (12 - agents, 429), "{body}");
    assert!(names_the_bound(&body, "agents"), "{body}");
    let reset = http.post("/__admin/reset", ADA, json!({})).await;
    assert_eq!(reset.status, 200, "{}", reset.body);
    assert_eq!(chat().await.0, 201, "a reset makes room again");
    mock.stop().await.expect("stop");
}

#[tokio::test]
async fn thenvoi_rooms_and_registered_agents_past_max_objects_are_refused_with_429() {
    const NADIA: &str = "thnv_u_nadia_0123456789abcdef0123456789ab";
    let world = proteus_mock::world::World::default_world();
    let config = proteus_mock::Config {
        max_objects: 12,
        ..proteus_mock::Config::default()
    };
    let mock = proteus_mock::start(world, config)
        .await
        .expect("mock starts");
    let client = reqwest::Client::new();
    let post = |path: &'static str, body: serde_json::Value| {
        let request = client
            .post(format!("{}{path}", mock.url()))
            .header("x-api-key", NADIA)
            .json(&body);
        async move {
            let r = request.send().await.expect("request");
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or_default())
        }
    };
    let (made, status, body) = fill(|| post("/api/v1/me/chats", json!({"chat": {}}))).await;
    assert!(made > 0, "the default world leaves room for a room");
    assert_eq!(status, 429, "{body}");
    assert!(names_the_bound(&body, "rooms"), "{body}");
    assert_eq!(body["error"]["code"], "too_many_requests", "{body}");
    let register = || {
        post(
            "/api/v1/me/agents/register",
            json!({"agent": {"name": "more", "description": "one more"}}),
        )
    };
    let (made, status, body) = fill(register).await;
    assert!(made > 0, "the default world leaves room for an agent");
    assert_eq!(status, 429, "{body}");
    assert!(names_the_bound(&body, "agents"), "{body}");
    mock.stop().await.expect("stop");
}
