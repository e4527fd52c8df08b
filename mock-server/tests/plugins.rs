//! Plugins end to end, against real webhook receivers on 127.0.0.1 spawned
//! here: the challenge and its failure modes, install/uninstall tokens, event
//! payloads against their schemas, SYNC order, ASYNC retries, timeouts that
//! do not stall other chats, scopes, plugin replies (plain and streamed), bad
//! chunks, and the app-integration loop with responseUrl.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use common::*;
use proteus_conformance::stream::StreamChecker;
use proteus_mock::world::World;
use proteus_mock::{Config, Running};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// How the receiver answers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Ok,
    WrongChallenge,
    Status500,
    Hang,
    /// Fail this many times (500), then answer.
    FailTimes(u32),
    /// Answer after this many milliseconds.
    Delay(u64),
}

#[derive(Clone)]
struct Receiver {
    mode: Arc<Mutex<Mode>>,
    seen: mpsc::UnboundedSender<(Value, Instant)>,
}

async fn hook(
    State(r): State<Receiver>,
    Json(body): Json<Value>,
) -> (axum::http::StatusCode, Json<Value>) {
    let _ = r.seen.send((body.clone(), Instant::now()));
    let mode = {
        let mut m = r.mode.lock().expect("lock");
        let now = *m;
        if let Mode::FailTimes(n) = now {
            *m = if n <= 1 {
                Mode::Ok
            } else {
                Mode::FailTimes(n - 1)
            };
        }
        now
    };
    let answer = match body["name"].as_str() {
        Some("WEBHOOK_CHALLENGE") if mode != Mode::WrongChallenge => {
            json!({ "challenge": body["challenge"] })
        }
        Some("WEBHOOK_CHALLENGE") => json!({ "challenge": "not it" }),
        _ => json!({ "received": true }),
    };
    match mode {
        Mode::Status500 | Mode::FailTimes(_) => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({})),
        ),
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            (axum::http::StatusCode::OK, Json(answer))
        }
        Mode::Delay(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            (axum::http::StatusCode::OK, Json(answer))
        }
        _ => (axum::http::StatusCode::OK, Json(answer)),
    }
}

/// A webhook receiver on a random loopback port.
struct Hook {
    url: String,
    mode: Arc<Mutex<Mode>>,
    seen: mpsc::UnboundedReceiver<(Value, Instant)>,
}

impl Hook {
    async fn start() -> Hook {
        let (tx, rx) = mpsc::unbounded_channel();
        let mode = Arc::new(Mutex::new(Mode::Ok));
        let app = axum::Router::new()
            .route("/hook", post(hook))
            .with_state(Receiver {
                mode: mode.clone(),
                seen: tx,
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Hook {
            url,
            mode,
            seen: rx,
        }
    }

    fn set(&self, m: Mode) {
        *self.mode.lock().expect("lock") = m;
    }

    /// The next event named `name`, validated against the plugin-event schema.
    async fn next(&mut self, name: &str) -> Value {
        loop {
            let (body, _) = tokio::time::timeout(Duration::from_secs(10), self.seen.recv())
                .await
                .unwrap_or_else(|_| panic!("no {name} within 10 s"))
                .expect("open");
            assert_schema("plugin-events/plugin-event", &body);
            if body["name"] == name {
                return body;
            }
        }
    }

    /// Everything received within `d`.
    async fn drain(&mut self, d: Duration) -> Vec<(Value, Instant)> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + d;
        while let Ok(Some(x)) = tokio::time::timeout_at(deadline, self.seen.recv()).await {
            out.push(x);
        }
        out
    }
}

async fn mock(webhook_timeout_ms: u64) -> Running {
    let config = Config {
        webhooks: proteus_mock::core::plugins::dispatch::Settings {
            timeout: Duration::from_millis(webhook_timeout_ms),
            attempts: 4,
            retry_base: Duration::from_millis(100),
            allow: None,
        },
        ..Config::default()
    };
    proteus_mock::start(World::default_world(), config)
        .await
        .expect("starts")
}

fn register_body(url: &str, kind: &str, events: &[&str], scopes: &[&str]) -> Value {
    json!({ "name": "Test plugin", "events": events, "scopes": scopes, "type": kind, "webhookUrl": url,
        "inputsSchema": { "type": "object", "properties": { "apiKey": { "type": "string" } }, "required": ["apiKey"] } })
}

const AGENT_EVENTS: &[&str] = &[
    "AGENT_CHAT_JOINED",
    "AGENT_MESSAGE_RECEIVED",
    "CHAT_PARTICIPANT_JOINED",
];

/// Registers a plugin and installs it on the Echo agent; returns (plugin id, instance id, inst token).
async fn install_on_echo(
    http: &Http,
    hook: &mut Hook,
    mode: &str,
    scopes: &[&str],
) -> (String, String, String) {
    let r = http
        .post(
            "/api/plugins",
            ADA,
            register_body(
                &hook.url,
                "AGENT_EVENT_HANDLER",
                AGENT_EVENTS,
                &["AGENT_CHAT_WRITE", "AGENT_MESSAGE_WRITE"],
            ),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_schema("objects/plugin", &r.body["data"]);
    hook.next("WEBHOOK_CHALLENGE").await;
    let plugin = r.body["data"]["id"].as_str().expect("id").to_string();
    let body = json!({ "pluginId": plugin, "events": AGENT_EVENTS, "scopes": scopes, "eventDispatchMode": mode, "inputs": { "apiKey": "sk-test" } });
    let r = http
        .post(&format!("/api/agents/{ECHO}/event-handlers"), ADA, body)
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_schema("objects/plugin-instance", &r.body["data"]);
    let installed = hook.next("PLUGIN_INSTALLED").await;
    let instance = installed["pluginInstance"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(r.body["data"]["id"], instance.as_str());
    (
        plugin,
        instance,
        installed["token"]["token"]
            .as_str()
            .expect("inst token")
            .to_string(),
    )
}

#[tokio::test]
async fn registration_verifies_the_webhook_and_refuses_each_failure_with_its_reason() {
    let m = mock(500).await;
    let http = Http::new(&m);
    let mut hook = Hook::start().await;
    let ok = http
        .post(
            "/api/plugins",
            ADA,
            register_body(
                &hook.url,
                "AGENT_EVENT_HANDLER",
                AGENT_EVENTS,
                &["AGENT_MESSAGE_WRITE"],
            ),
        )
        .await;
    assert_eq!(ok.status, 201);
    let challenge = hook.next("WEBHOOK_CHALLENGE").await;
    assert_schema("plugin-events/webhook-challenge", &challenge);
    for (mode, reason) in [
        (Mode::WrongChallenge, "wrong challenge"),
        (Mode::Status500, "answered 500"),
        (Mode::Hang, "timed out"),
    ] {
        hook.set(mode);
        let r = http
            .post(
                "/api/plugins",
                ADA,
                register_body(
                    &hook.url,
                    "AGENT_EVENT_HANDLER",
                    AGENT_EVENTS,
                    &["AGENT_MESSAGE_WRITE"],
                ),
            )
            .await;
        assert_eq!(r.status, 400, "{mode:?}");
        let msg = r.body["error"]["message"].as_str().expect("message");
        assert!(
            msg.contains("Webhook verification failed") && msg.contains(reason),
            "{mode:?}: {msg}"
        );
    }
    let closed = http
        .post(
            "/api/plugins",
            ADA,
            register_body("http://127.0.0.1:9/hook", "APP", &[], &[]),
        )
        .await;
    assert_eq!(closed.status, 400);
    assert!(
        closed.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("unreachable")),
        "{}",
        closed.body
    );
    m.stop().await.expect("stop");
}

#[tokio::test]
async fn install_hands_out_a_token_that_uninstall_revokes() {
    let m = mock(2000).await;
    let http = Http::new(&m);
    let mut hook = Hook::start().await;
    let (plugin, instance, token) =
        install_on_echo(&http, &mut hook, "SYNC", &["AGENT_MESSAGE_WRITE"]).await;
    // The token works, as the Echo agent.
    let me = http.get(&format!("/api/chats/{ECHO_CHAT}"), &token).await;
    assert_eq!(
        me.status, 200,
        "an instance reads the chats its agent is in: {}",
        me.body
    );
    // Inputs are checked against the plugin's inputsSchema.
    let bad = http.post(&format!("/api/agents/{ECHO}/event-handlers"), ADA,
        json!({ "pluginId": plugin, "events": AGENT_EVENTS, "scopes": [], "eventDispatchMode": "SYNC", "inputs": { "apiKey": 7 } })).await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("inputsSchema")),
        "{}",
        bad.body
    );
    // Only members of the agent's org manage its handlers.
    let outsider = http.post(&format!("/api/agents/{ECHO}/event-handlers"), GRACE,
        json!({ "pluginId": plugin, "events": [], "scopes": [], "eventDispatchMode": "SYNC", "inputs": { "apiKey": "x" } })).await;
    assert_eq!(outsider.status, 403);
    let listed = http
        .get(&format!("/api/agents/{ECHO}/event-handlers"), ADA)
        .await;
    assert_eq!(listed.body["data"][0]["id"], instance.as_str());
    let gone = http
        .send(
            reqwest::Method::DELETE,
            &format!("/api/agents/{ECHO}/event-handlers/{instance}"),
            Some(ADA),
            None,
        )
        .await;
    assert_eq!(gone.status, 200);
    let uninstalled = hook.next("PLUGIN_UNINSTALLED").await;
    assert_eq!(uninstalled["pluginInstance"]["id"], instance.as_str());
    assert_eq!(
        http.get(&format!("/api/chats/{ECHO_CHAT}"), &token)
            .await
            .status,
        401,
        "the token is revoked"
    );
    m.stop().await.expect("stop");
}

#[tokio::test]
async fn events_reach_only_the_entities_they_concern_with_seed_payloads() {
    let m = mock(2000).await;
    let http = Http::new(&m);
    let mut hook = Hook::start().await;
    let (_, instance, _) =
        install_on_echo(&http, &mut hook, "SYNC", &["AGENT_MESSAGE_WRITE"]).await;
    // A chat with Echo: AGENT_CHAT_JOINED to Echo's instance.
    let chat = http
        .post(
            "/api/chats",
            ADA,
            json!({ "participants": [{ "id": ECHO, "type": "AGENT" }] }),
        )
        .await;
    let chat_id = chat.body["data"]["id"].as_str().expect("id").to_string();
    let joined = hook.next("AGENT_CHAT_JOINED").await;
    assert_schema("plugin-events/agent-chat-joined", &joined);
    assert_eq!(
        (
            joined["agent"]["id"].as_str(),
            joined["chat"]["id"].as_str(),
            joined["pluginInstance"]["id"].as_str()
        ),
        (Some(ECHO), Some(chat_id.as_str()), Some(instance.as_str()))
    );
    // A message in it: AGENT_MESSAGE_RECEIVED, and no scripted reply (the agent is plugin-backed).
    http.post(
        "/api/messages",
        ADA,
        json!({ "chatId": chat_id, "content": "for the plugin" }),
    )
    .await;
    let got = hook.next("AGENT_MESSAGE_RECEIVED").await;
    assert_schema("plugin-events/agent-message-received", &got);
    assert_eq!(got["message"]["content"], "for the plugin");
    // A user joins: CHAT_PARTICIPANT_JOINED (user form) to the agent's instance.
    http.post(
        &format!("/api/chats/{chat_id}/participants"),
        ADA,
        json!({ "id": GRACE_ID, "type": "USER" }),
    )
    .await;
    let pj = hook.next("CHAT_PARTICIPANT_JOINED").await;
    assert_schema("plugin-events/chat-participant-joined", &pj);
    assert_eq!(pj["user"]["id"], GRACE_ID);
    // Messages in chats without Echo reach nobody.
    http.post(
        "/api/messages",
        ADA,
        json!({ "chatId": WELCOME, "content": "not for Echo" }),
    )
    .await;
    let stray = hook.drain(Duration::from_millis(300)).await;
    assert!(
        stray
            .iter()
            .all(|(b, _)| b["message"]["content"] != "not for Echo"),
        "{stray:?}"
    );
    let page = http
        .get(&format!("/api/chats/{chat_id}/messages"), ADA)
        .await;
    assert_eq!(
        page.body["meta"]["total"], 1,
        "no scripted echo for a plugin-backed agent"
    );
    m.stop().await.expect("stop");
}

#[tokio::test]
async fn a_socket_client_gets_the_plugins_streamed_reply_as_deltas_and_done() {
    let m = mock(2000).await;
    let http = Http::new(&m);
    let mut hook = Hook::start().await;
    let (_, _, token) = install_on_echo(&http, &mut hook, "ASYNC", &["AGENT_MESSAGE_WRITE"]).await;
    let mut ada = Sio::connect(&m, ADA).await;
    ada.next_named("success", 5).await;
    let ack = ada
        .ack(
            "message:send",
            json!({ "chatId": ECHO_CHAT, "content": "stream it back", "streamResponse": true }),
        )
        .await;
    let sent = ack["data"]["message"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    // The plugin: on AGENT_MESSAGE_RECEIVED, stream a reply with its inst- token.
    let event = hook.next("AGENT_MESSAGE_RECEIVED").await;
    assert_eq!(event["message"]["id"], sent.as_str());
    let plugin = reqwest::Client::new();
    for (i, part) in ["Plugin ", "says ", "hello."].iter().enumerate() {
        let r = plugin.post(format!("{}/api/messages", m.url())).bearer_auth(&token)
            .json(&json!({ "chatId": ECHO_CHAT, "respondedToId": sent, "streamId": "plugin-stream-1", "contentDelta": part, "isStreaming": true }))
            .send().await.expect("chunk");
        assert_eq!(r.status().as_u16(), 200, "chunk {i}");
    }
    let r = plugin.post(format!("{}/api/messages", m.url())).bearer_auth(&token)
        .json(&json!({ "chatId": ECHO_CHAT, "respondedToId": sent, "streamId": "plugin-stream-1", "isStreaming": false }))
        .send().await.expect("close");
    assert_eq!(r.status().as_u16(), 201);
    let frames = ada.until_done(5).await;
    let report = StreamChecker::check(frames.iter().map(|(e, p)| (e.as_str(), p)));
    assert!(
        report.is_ok() && report.completed == 1 && report.totals.deltas == 3,
        "{:?}",
        report.violations
    );
    let done = &frames.last().expect("done").1;
    assert_schema("realtime/message-done", done);
    assert_eq!(
        (done["content"].as_str(), done["senderId"].as_str()),
        (Some("Plugin says hello."), Some(ECHO))
    );
    // And a plain reply, through socket.io with the inst- token.
    let mut as_plugin = Sio::connect(&m, &token).await;
    let hello = as_plugin.next_named("success", 5).await;
    assert_eq!(hello["entity"]["type"], "PLUGIN_INSTANCE");
    let plain = as_plugin
        .ack(
            "message:send",
            json!({ "chatId": ECHO_CHAT, "content": "plain reply", "respondedToId": sent }),
        )
        .await;
    assert_eq!(plain["data"]["message"]["senderId"], ECHO);
    m.stop().await.expect("stop");
}

#[tokio::test]
async fn scopes_identity_and_bad_chunks_are_refused_clearly() {
    let m = mock(2000).await;
    let http = Http::new(&m);
    let mut hook = Hook::start().await;
    let (plugin, _, token) =
        install_on_echo(&http, &mut hook, "ASYNC", &["AGENT_MESSAGE_WRITE"]).await;
    // A second instance without AGENT_MESSAGE_WRITE.
    let r = http.post(&format!("/api/agents/{ECHO}/event-handlers"), ADA,
        json!({ "pluginId": plugin, "events": [], "scopes": [], "eventDispatchMode": "ASYNC", "inputs": { "apiKey": "k" } })).await;
    assert_eq!(r.status, 201);
    let weak = hook.next("PLUGIN_INSTALLED").await["token"]["token"]
        .as_str()
        .expect("token")
        .to_string();
    let sent = http
        .post(
            "/api/messages",
            ADA,
            json!({ "chatId": ECHO_CHAT, "content": "q" }),
        )
        .await
        .body["data"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let denied = http
        .post(
            "/api/messages",
            &weak,
            json!({ "chatId": ECHO_CHAT, "content": "x", "respondedToId": sent }),
        )
        .await;
    assert_eq!(denied.status, 403);
    assert!(
        denied.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("AGENT_MESSAGE_WRITE")),
        "{}",
        denied.body
    );
    // Only in chats where its agent is a participant (Echo is not in the welcome chat).
    let foreign = http
        .post(
            "/api/messages",
            &token,
            json!({ "chatId": WELCOME, "content": "x" }),
        )
        .await;
    assert_eq!(foreign.status, 403);
    // Creating chats needs AGENT_CHAT_WRITE.
    let create = http
        .post(
            "/api/messages",
            &token,
            json!({ "content": "hi", "recipients": [{ "id": ADA_ID, "type": "USER" }] }),
        )
        .await;
    assert_eq!(create.status, 403);
    let chunk = |stream: &str, delta: Option<&str>, streaming: bool| {
        let mut b = json!({ "chatId": ECHO_CHAT, "respondedToId": sent, "streamId": stream, "isStreaming": streaming });
        if let Some(d) = delta {
            b["contentDelta"] = json!(d);
        }
        b
    };
    let status = |r: &Reply| r.status;
    assert_eq!(
        status(
            &http
                .post(
                    "/api/messages",
                    &token,
                    json!({ "chatId": ECHO_CHAT, "streamId": "s", "isStreaming": true })
                )
                .await
        ),
        400,
        "malformed chunk"
    );
    assert_eq!(
        status(
            &http
                .post("/api/messages", &token, chunk("never-opened", None, false))
                .await
        ),
        400,
        "a close without chunks"
    );
    assert_eq!(
        status(
            &http
                .post("/api/messages", &token, chunk("s1", Some("a"), true))
                .await
        ),
        200
    );
    assert_eq!(
        status(
            &http
                .post("/api/messages", &weak, chunk("s1", Some("b"), true))
                .await
        ),
        403,
        "another instance's stream"
    );
    let mut other_chat = chunk("s1", Some("c"), true);
    other_chat["chatId"] = json!(WELCOME);
    assert!(
        http.post("/api/messages", &token, other_chat).await.status >= 400,
        "a chunk for another chat"
    );
    assert_eq!(
        status(
            &http
                .post("/api/messages", &token, chunk("s1", None, false))
                .await
        ),
        201
    );
    assert_eq!(
        status(
            &http
                .post("/api/messages", &token, chunk("s1", Some("late"), true))
                .await
        ),
        409,
        "a chunk after the close"
    );
    // The good stream is intact: its final message holds only its own chunk.
    let last = http
        .get(&format!("/api/chats/{ECHO_CHAT}/messages?@limit=100"), ADA)
        .await;
    let final_msg = last.body["data"]
        .as_array()
        .expect("page")
        .iter()
        .rev()
        .find(|m| m["streamId"] == "s1")
        .cloned()
        .expect("stored");
    assert_eq!(final_msg["content"], "a");
    m.stop().await.expect("stop");
}

#[tokio::test]
async fn sync_keeps_per_chat_order_and_a_hung_webhook_does_not_stall_other_chats() {
    let m = mock(400).await;
    let http = Http::new(&m);
    let mut hook = Hook::start().await;
    let _ = install_on_echo(&http, &mut hook, "SYNC", &["AGENT_MESSAGE_WRITE"]).await;
    hook.set(Mode::Delay(40));
    let a = http
        .post(
            "/api/chats",
            ADA,
            json!({ "participants": [{ "id": ECHO, "type": "AGENT" }] }),
        )
        .await
        .body["data"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let b = http
        .post(
            "/api/chats",
            ADA,
            json!({ "participants": [{ "id": ECHO, "type": "AGENT" }] }),
        )
        .await
        .body["data"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    for i in 0..5 {
        for chat in [&a, &b] {
            http.post(
                "/api/messages",
                ADA,
                json!({ "chatId": chat, "content": format!("{i}") }),
            )
            .await;
        }
    }
    let got = hook.drain(Duration::from_millis(1500)).await;
    for chat in [&a, &b] {
        let order: Vec<String> = got
            .iter()
            .filter(|(e, _)| {
                e["name"] == "AGENT_MESSAGE_RECEIVED" && e["message"]["chatId"] == chat.as_str()
            })
            .map(|(e, _)| e["message"]["content"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(
            order,
            ["0", "1", "2", "3", "4"],
            "per-chat order in chat {chat}"
        );
    }
    // The webhook hangs: its deliveries time out, while a stream in another chat runs on time.
    hook.set(Mode::Hang);
    http.post(
        "/api/messages",
        ADA,
        json!({ "chatId": a, "content": "into the void" }),
    )
    .await;
    let mut ada = Sio::connect(&m, ADA).await;
    ada.next_named("success", 5).await;
    let started = Instant::now();
    ada.ack(
        "message:send",
        json!({ "chatId": WELCOME, "content": "still fast?", "streamResponse": true,
        "state": { "mock": { "chunks": 10, "chunkDelayMs": 5, "firstChunkDelayMs": 0 } } }),
    )
    .await;
    ada.next_named("message:done", 5).await;
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "the stream did not wait for the hung webhook: {:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let deliveries = reqwest::get(format!("{}/__admin/deliveries", m.url()))
        .await
        .expect("admin")
        .json::<Value>()
        .await
        .expect("json");
    let timed_out = deliveries["data"]
        .as_array()
        .expect("log")
        .iter()
        .any(|d| d["error"].as_str().is_some_and(|e| e.contains("timed out")));
    assert!(timed_out, "the hang is logged as a timeout");
    m.stop().await.expect("stop");
}

#[tokio::test]
async fn async_retries_with_backoff_until_the_receiver_recovers() {
    let m = mock(2000).await;
    let http = Http::new(&m);
    let mut hook = Hook::start().await;
    let _ = install_on_echo(&http, &mut hook, "ASYNC", &["AGENT_MESSAGE_WRITE"]).await;
    hook.set(Mode::FailTimes(2));
    http.post(
        "/api/messages",
        ADA,
        json!({ "chatId": ECHO_CHAT, "content": "retry me" }),
    )
    .await;
    let got = hook.drain(Duration::from_millis(1500)).await;
    let attempts: Vec<Instant> = got
        .iter()
        .filter(|(e, _)| e["message"]["content"] == "retry me")
        .map(|(_, t)| *t)
        .collect();
    assert_eq!(
        attempts.len(),
        3,
        "two failures, then the delivery that succeeds"
    );
    let (gap1, gap2) = (attempts[1] - attempts[0], attempts[2] - attempts[1]);
    assert!(
        gap1 >= Duration::from_millis(90) && gap2 >= gap1 + Duration::from_millis(50),
        "exponential backoff: {gap1:?} then {gap2:?}"
    );
    let log = reqwest::get(format!("{}/__admin/deliveries", m.url()))
        .await
        .expect("admin")
        .json::<Value>()
        .await
        .expect("json");
    let mine: Vec<&Value> = log["data"]
        .as_array()
        .expect("log")
        .iter()
        .filter(|d| {
            d["request"]
                .as_str()
                .is_some_and(|r| r.contains("retry me"))
        })
        .collect();
    let summary: Vec<(u64, bool)> = mine
        .iter()
        .map(|d| {
            (
                d["attempt"].as_u64().unwrap_or(0),
                d["ok"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(summary, [(1, false), (2, false), (3, true)]);
    assert!(
        mine.iter()
            .all(|d| d["latencyMs"].is_u64() && d["url"] == hook.url.as_str())
    );
    m.stop().await.expect("stop");
}

#[tokio::test]
async fn the_app_integration_loop_delivers_replies_to_the_response_url() {
    let m = mock(2000).await;
    let http = Http::new(&m);
    let mut hook = Hook::start().await;
    let mut response_hook = Hook::start().await;
    const APP: &str = "6825a9f67306f72d65708b74";
    let events = [
        "APP_INTEGRATION_CHAT_JOINED",
        "APP_INTEGRATION_MESSAGE_RECEIVED",
        "CHAT_PARTICIPANT_JOINED",
    ];
    let scopes = [
        "APP_INTEGRATION_MESSAGE_WRITE",
        "APP_INTEGRATION_CHAT_WRITE",
    ];
    let r = http.post("/api/plugins", ADA, json!({ "name": "Slack app", "events": events, "scopes": scopes, "type": "APP", "webhookUrl": hook.url })).await;
    assert_eq!(r.status, 201, "{}", r.body);
    hook.next("WEBHOOK_CHALLENGE").await;
    let plugin = r.body["data"]["id"].as_str().expect("id");
    let r = http.post(&format!("/api/app-integrations/{APP}/apps"), ADA, json!({ "pluginId": plugin, "events": events, "scopes": scopes, "eventDispatchMode": "ASYNC" })).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let installed = hook.next("PLUGIN_INSTALLED").await;
    assert_eq!(installed["pluginInstance"]["entityType"], "APP_INTEGRATION");
    let token = installed["token"]["token"]
        .as_str()
        .expect("token")
        .to_string();
    // The app, in its own name, asks the Streamer agent; the reply goes to responseUrl.
    let sent = http.post("/api/messages", &token, json!({ "content": "from Slack", "recipients": [{ "id": STREAMER, "type": "AGENT" }], "responseUrl": response_hook.url })).await;
    assert_eq!(sent.status, 201, "{}", sent.body);
    assert_eq!(sent.body["data"]["senderId"], APP);
    let joined = hook.next("APP_INTEGRATION_CHAT_JOINED").await;
    assert_schema("plugin-events/app-integration-chat-joined", &joined);
    let reply = response_hook.next("WEBHOOK_MESSAGE_RECEIVED").await;
    assert_schema("plugin-events/webhook-message-received", &reply);
    assert_eq!(reply["message"]["respondedToId"], sent.body["data"]["id"]);
    assert_eq!(reply["message"]["senderId"], STREAMER);
    let to_app = hook.next("APP_INTEGRATION_MESSAGE_RECEIVED").await;
    assert_schema("plugin-events/app-integration-message-received", &to_app);
    assert_eq!(to_app["message"]["id"], reply["message"]["id"]);
    m.stop().await.expect("stop");
}

#[tokio::test]
async fn the_example_plugin_streams_replies_for_the_default_worlds_plugin_agent() {
    const PLUGIN_CHAT: &str = "682f4b313981b5f54e96ea4e";
    // A free port for the plugin, known before either side starts.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let webhook = format!("http://127.0.0.1:{port}/webhook");
    let config = Config {
        plugin_url: Some(webhook),
        ..Config::default()
    };
    let m = proteus_mock::start(World::default_world(), config)
        .await
        .expect("starts");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/plugin.py");
    let mut plugin = std::process::Command::new("python3")
        .args([script, "--port", &port.to_string(), "--api", &m.url()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 runs the example plugin");
    // PLUGIN_INSTALLED is retried until the plugin is up and takes its token.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log: Value = reqwest::get(format!("{}/__admin/deliveries", m.url()))
            .await
            .expect("admin")
            .json()
            .await
            .expect("json");
        if log["data"]
            .as_array()
            .expect("log")
            .iter()
            .any(|d| d["event"] == "PLUGIN_INSTALLED" && d["ok"] == true)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the plugin never took PLUGIN_INSTALLED: {log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut ada = Sio::connect(&m, ADA).await;
    ada.next_named("success", 5).await;
    ada.ack(
        "message:send",
        json!({ "chatId": PLUGIN_CHAT, "content": "hello plugin", "streamResponse": true }),
    )
    .await;
    let frames = ada.until_done(10).await;
    let _ = plugin.kill();
    let _ = plugin.wait();
    let report = StreamChecker::check(frames.iter().map(|(e, p)| (e.as_str(), p)));
    assert!(
        report.is_ok() && report.completed == 1,
        "{:?}",
        report.violations
    );
    assert_eq!(
        frames.last().expect("done").1["content"],
        "You said: hello plugin"
    );
    m.stop().await.expect("stop");
}

#[tokio::test]
async fn an_instance_gets_plugin_installed_before_any_event_it_must_answer_with_its_token() {
    const PLUGIN_CHAT: &str = "682f4b313981b5f54e96ea4e";
    let mut hook = Hook::start().await;
    // Every answer takes 1.5 s: PLUGIN_INSTALLED is still being answered
    // when the message below is sent.
    hook.set(Mode::Delay(1500));
    let config = Config {
        plugin_url: Some(hook.url.clone()),
        ..Config::default()
    };
    let m = proteus_mock::start(World::default_world(), config)
        .await
        .expect("starts");
    let http = Http::new(&m);
    let sent = http
        .post(
            "/api/messages",
            ADA,
            json!({ "chatId": PLUGIN_CHAT, "content": "right after start" }),
        )
        .await;
    assert_eq!(sent.status, 201);
    let seen = hook.drain(Duration::from_secs(4)).await;
    let at = |name: &str| {
        seen.iter()
            .find(|(b, _)| b["name"] == name)
            .map(|(_, t)| *t)
            .unwrap_or_else(|| {
                panic!(
                    "no {name}: {:?}",
                    seen.iter().map(|(b, _)| &b["name"]).collect::<Vec<_>>()
                )
            })
    };
    let (installed, message) = (at("PLUGIN_INSTALLED"), at("AGENT_MESSAGE_RECEIVED"));
    assert!(
        message >= installed + Duration::from_millis(1400),
        "the message event came {:?} after PLUGIN_INSTALLED, before its answer (1.5 s)",
        message.saturating_duration_since(installed)
    );
    m.stop().await.expect("clean stop");
}
