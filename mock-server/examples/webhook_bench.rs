//! Webhook dispatch throughput (docs/BENCHMARKS.md).
//!
//!   cargo run --release -p proteus-mock --example webhook_bench -- [MESSAGES] [CHATS] [--nice-load]
//!
//! Starts a mock and a counting webhook receiver on 127.0.0.1, installs a
//! plugin on the Echo agent (SYNC, then ASYNC), posts MESSAGES messages
//! (default 20,000) over CHATS chats (default 100) with 100 concurrent
//! senders, and measures AGENT_MESSAGE_RECEIVED events delivered per second.
//! While each run is under way it times scripted streams in another chat,
//! one after the other (send → first delta, and the whole 50-delta stream),
//! and compares with the same streams on the idle mock.
//!
//! The mock runs on its own runtime, as it would in its own process; the
//! load (the senders and the webhook receiver, i.e. the plugin) on another.
//! With `--nice-load` the load's threads run at nice +19, standing in for
//! load generators and plugins on other machines: what is left of the
//! stream's slowdown is then the mock's own doing. The stream timer runs on
//! the main thread at normal priority (a user's client). Stops by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::routing::post;
use proteus_conformance::client::{Client, Frame};
use proteus_mock::world::World;
use proteus_mock::{Config, Running};
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

/// Streams timed in a row; (first delta, whole stream) percentiles in ms.
async fn time_streams(base: &str, n: usize) -> Value {
    let (mut first, mut whole) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let (f, w) = time_stream(base).await;
        first.push(f.as_secs_f64() * 1e3);
        whole.push(w.as_secs_f64() * 1e3);
    }
    let summary = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        json!({ "p50": at(0.5), "p90": at(0.9), "max": at(1.0) })
    };
    json!({ "streams": n, "firstDeltaMs": summary(first), "wholeStreamMs": summary(whole) })
}

/// Timed streams per phase (idle, and while the dispatch load runs).
const TIMED: usize = 20;

async fn run(mode: &str, base: String, messages: usize, chats: usize) -> Value {
    let count = Arc::new(AtomicU64::new(0));
    let hook = receiver(count.clone()).await;
    let http = reqwest::Client::new();
    let idle = time_streams(&base, TIMED).await;
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
    let loaded = time_streams(&base, TIMED).await;
    let senders_done = senders.iter().all(|s| s.is_finished());
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
    json!({
        "mode": mode, "chats": chats, "messages": messages, "delivered": delivered,
        "seconds": elapsed.as_secs_f64(), "postingSeconds": posted.as_secs_f64(),
        "eventsPerSecond": delivered as f64 / elapsed.as_secs_f64(),
        "streamIdle": idle, "streamUnderLoad": loaded,
        // False would mean the timed streams outlasted the load (a weaker test).
        "loadOutlastedTimedStreams": !senders_done,
    })
}

fn runtime(name: &str, nice: i32) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .on_thread_start(move || {
            // SAFETY: setpriority only reads its integer arguments; who = 0
            // is the calling thread.
            unsafe {
                libc::setpriority(libc::PRIO_PROCESS, 0, nice);
            }
        })
        .enable_all()
        .build()
        .expect("runtime")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let nice_load = args.iter().any(|a| a == "--nice-load");
    let numbers: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let messages = numbers.first().copied().unwrap_or(20_000);
    let chats = numbers.get(1).copied().unwrap_or(100);
    let mock_rt = runtime("mock", 0);
    let load_rt = runtime("load", if nice_load { 19 } else { 0 });
    for mode in ["SYNC", "ASYNC"] {
        let config = Config {
            journal_size: 0,
            ..Config::default()
        };
        let mock: Running = mock_rt
            .block_on(proteus_mock::start(World::default_world(), config))
            .expect("mock");
        let mut result = load_rt.block_on(run(mode, mock.url(), messages, chats));
        result["loadNiced"] = json!(nice_load);
        println!("{result}");
        mock_rt.block_on(mock.stop()).expect("stop");
    }
}
