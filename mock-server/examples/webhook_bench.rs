//! Webhook dispatch throughput (docs/BENCHMARKS.md).
//!
//!   cargo run --release -p mock-server --example webhook_bench -- [MESSAGES] [CHATS]
//!
//! Starts a mock and a counting webhook receiver on 127.0.0.1, installs a
//! plugin on the Echo agent (SYNC, then ASYNC), posts MESSAGES messages
//! (default 20,000) over CHATS chats (default 100) with 100 concurrent
//! senders, and measures AGENT_MESSAGE_RECEIVED events delivered per second.
//! While each run is under way it times a scripted stream in another chat
//! (send → first delta, and the whole 50-delta stream) and compares with the
//! same stream on the idle mock. Everything stops by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::routing::post;
use mock_server::world::World;
use mock_server::{Config, Running};
use proteus_conformance::client::{Client, Frame};
use serde_json::{Value, json};

const ADA: &str = "user-3a4d80a9c3cca7ffd1bc341f.ede04d00e4b168bed35d9fcde8c2f92f.00d7fecf89201691f94b01e5b294da65.e7ea4c191b2c9a059ce5658deb7349c26a931ed8b7a04bf0";
const ECHO: &str = "6819a0e484df0fc342cea507";
const WELCOME: &str = "682f4b313981b5f54e96ea4b";

async fn receiver(count: Arc<AtomicU64>) -> String {
    let app = axum::Router::new().route(
        "/hook",
        post(move |axum::Json(body): axum::Json<Value>| {
            let count = count.clone();
            async move {
                if body["name"] == "AGENT_MESSAGE_RECEIVED" {
                    count.fetch_add(1, Ordering::Relaxed);
                }
                axum::Json(json!({ "challenge": body["challenge"] }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn api(
    http: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> Value {
    http.request(method, format!("{base}{path}"))
        .bearer_auth(ADA)
        .json(&body)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

/// Send → first delta and send → done of a 50-delta scripted stream.
async fn time_stream(base: &str) -> (Duration, Duration) {
    let mut c = Client::connect(base, &json!({ "token": ADA }))
        .await
        .expect("socket");
    while !matches!(c.next_frame().await.expect("frame"), Frame::Event { ref name, .. } if name == "success")
    {
    }
    let t0 = Instant::now();
    c.emit(
        "message:send",
        &json!({ "chatId": WELCOME, "content": "timing", "streamResponse": true,
        "state": { "mock": { "chunks": 50, "chunkDelayMs": 0, "firstChunkDelayMs": 0 } } }),
    )
    .await
    .expect("emit");
    let mut first = None;
    loop {
        if let Frame::Event { name, .. } = c.next_frame().await.expect("frame") {
            if name == "message:delta" && first.is_none() {
                first = Some(t0.elapsed());
            }
            if name == "message:done" {
                c.close().await;
                return (first.unwrap_or_default(), t0.elapsed());
            }
        }
    }
}

async fn run(mode: &str, messages: usize, chats: usize) -> Value {
    let count = Arc::new(AtomicU64::new(0));
    let hook = receiver(count.clone()).await;
    let config = Config {
        journal_size: 0,
        ..Config::default()
    };
    let mock: Running = mock_server::start(World::default_world(), config)
        .await
        .expect("mock");
    let base = mock.url();
    let http = reqwest::Client::new();
    let idle = time_stream(&base).await;
    let events = ["AGENT_MESSAGE_RECEIVED"];
    let plugin = api(&http, &base, reqwest::Method::POST, "/api/plugins",
        json!({ "name": "bench", "events": events, "scopes": [], "type": "AGENT_EVENT_HANDLER", "webhookUrl": hook })).await;
    let plugin_id = plugin["data"]["id"]
        .as_str()
        .expect("plugin id")
        .to_string();
    api(
        &http,
        &base,
        reqwest::Method::POST,
        &format!("/api/agents/{ECHO}/event-handlers"),
        json!({ "pluginId": plugin_id, "events": events, "scopes": [], "eventDispatchMode": mode }),
    )
    .await;
    let mut chat_ids = Vec::new();
    for _ in 0..chats {
        let c = api(
            &http,
            &base,
            reqwest::Method::POST,
            "/api/chats",
            json!({ "participants": [{ "id": ECHO, "type": "AGENT" }] }),
        )
        .await;
        chat_ids.push(c["data"]["id"].as_str().expect("chat").to_string());
    }
    let chat_ids = Arc::new(chat_ids);
    let started = Instant::now();
    let mut senders = Vec::new();
    for s in 0..100 {
        let (http, base, chat_ids) = (http.clone(), base.clone(), chat_ids.clone());
        senders.push(tokio::spawn(async move {
            for i in (s..messages).step_by(100) {
                let chat = &chat_ids[i % chat_ids.len()];
                api(
                    &http,
                    &base,
                    reqwest::Method::POST,
                    "/api/messages",
                    json!({ "chatId": chat, "content": "bench" }),
                )
                .await;
            }
        }));
    }
    // The stream path, timed while the dispatch load runs.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let loaded = time_stream(&base).await;
    for s in senders {
        s.await.expect("sender");
    }
    let posted = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(120);
    while (count.load(Ordering::Relaxed) as usize) < messages && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let delivered = count.load(Ordering::Relaxed);
    mock.stop().await.expect("stop");
    json!({
        "mode": mode, "chats": chats, "messages": messages, "delivered": delivered,
        "seconds": elapsed.as_secs_f64(), "postingSeconds": posted.as_secs_f64(),
        "eventsPerSecond": delivered as f64 / elapsed.as_secs_f64(),
        "streamIdle": { "firstDeltaMs": idle.0.as_secs_f64() * 1e3, "wholeStreamMs": idle.1.as_secs_f64() * 1e3 },
        "streamUnderLoad": { "firstDeltaMs": loaded.0.as_secs_f64() * 1e3, "wholeStreamMs": loaded.1.as_secs_f64() * 1e3 },
    })
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let messages = args.first().copied().unwrap_or(20_000);
    let chats = args.get(1).copied().unwrap_or(100);
    for mode in ["SYNC", "ASYNC"] {
        println!("{}", run(mode, messages, chats).await);
    }
}
