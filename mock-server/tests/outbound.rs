//! The mock never becomes a way into what only the machine may reach: who
//! may register is checked before any request leaves, the mock never posts
//! to its own listener, follows no redirect, quotes a webhook's answer only
//! in a short excerpt, and reaches only allowed hosts.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use common::*;
use proteus_mock::Config;
use proteus_mock::core::plugins::outbound::Allow;
use proteus_mock::world::World;
use serde_json::{Value, json};

/// A local server; returns its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// A local server answering `{}` on `path` and counting the requests.
async fn counting(path: &'static str) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let base = serve(Router::new().route(
        path,
        post(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { "{}" }
        }),
    ))
    .await;
    (base, hits)
}

fn plugin(webhook: &str) -> Value {
    json!({ "name": "p", "events": [], "scopes": [], "type": "APP", "webhookUrl": webhook })
}

async fn deliveries(base: &str) -> Vec<Value> {
    let v: Value = reqwest::get(format!("{base}/__admin/deliveries"))
        .await
        .expect("reachable")
        .json()
        .await
        .expect("json");
    v["data"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_caller_who_may_not_register_sends_no_request_anywhere() {
    let mock = start().await;
    let http = Http::new(&mock);
    let (hook, hits) = counting("/hook").await;
    // Grace is in no organization.
    let r = http
        .post("/api/plugins", GRACE, plugin(&format!("{hook}/hook")))
        .await;
    assert!(r.status == 400 || r.status == 403, "{}", r.body);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the webhook was never called"
    );
    assert!(deliveries(&mock.url()).await.is_empty());
    mock.stop().await.expect("stop");
}

#[tokio::test]
async fn a_webhook_on_the_mocks_own_listener_is_refused_and_nothing_is_reset() {
    let mock = start().await;
    let http = Http::new(&mock);
    let chat = http
        .post(
            "/api/chats",
            ADA,
            json!({ "participants": [{ "id": STREAMER, "type": "AGENT" }] }),
        )
        .await;
    let chat_id = chat.body["data"]["id"].as_str().expect("id").to_string();
    for target in [
        format!("{}/__admin/reset", mock.url()),
        format!("http://localhost:{}/__admin/reset", mock.addr.port()),
    ] {
        let r = http.post("/api/plugins", ADA, plugin(&target)).await;
        assert_eq!(r.status, 400, "{}", r.body);
        let message = r.body["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains("own listener"), "{message}");
    }
    // A message's responseUrl too, over REST and socket.io.
    let own = format!("{}/__admin/reset", mock.url());
    let r = http
        .post(
            "/api/messages",
            ADA,
            json!({ "chatId": chat_id, "content": "hi", "responseUrl": own }),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let mut sio = Sio::connect(&mock, ADA).await;
    sio.next_named("success", 5).await;
    let ack = sio
        .ack(
            "message:send",
            json!({ "chatId": chat_id, "content": "hi", "responseUrl": own }),
        )
        .await;
    assert!(
        ack["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("own listener")),
        "{ack}"
    );
    let still = http.get(&format!("/api/chats/{chat_id}"), ADA).await;
    assert_eq!(still.status, 200, "the world was not reset: {}", still.body);
    mock.stop().await.expect("stop");
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let mock = start().await;
    let http = Http::new(&mock);
    let (elsewhere, hits) = counting("/took-it").await;
    let to = format!("{elsewhere}/took-it");
    let hook = serve(Router::new().route(
        "/hook",
        post(move || async move {
            (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, to)]).into_response()
        }),
    ))
    .await;
    let r = http
        .post("/api/plugins", ADA, plugin(&format!("{hook}/hook")))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("307")),
        "{}",
        r.body
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the 307 was not followed");
    mock.stop().await.expect("stop");
}

#[tokio::test]
async fn an_answer_that_is_not_json_is_quoted_only_in_a_short_excerpt() {
    let mock = start().await;
    let http = Http::new(&mock);
    let page = "<html>".to_string() + &"secret ".repeat(600) + "</html>";
    let hook = serve(Router::new().route("/hook", post(move || async move { page }))).await;
    let r = http
        .post("/api/plugins", ADA, plugin(&format!("{hook}/hook")))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let message = r.body["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("not a JSON object"), "{message}");
    assert!(
        message.len() < 300,
        "a short excerpt, not the page ({} bytes): {message}",
        message.len()
    );
    mock.stop().await.expect("stop");
}

#[tokio::test]
async fn only_allowed_hosts_are_reached() {
    let (hook, hits) = counting("/hook").await;
    let mut config = Config::default();
    config.webhooks.allow = Some(Allow::Hosts(vec!["hooks.example".into()]));
    let mock = proteus_mock::start(World::default_world(), config)
        .await
        .expect("starts");
    let r = Http::new(&mock)
        .post("/api/plugins", ADA, plugin(&format!("{hook}/hook")))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("--webhook-allow 127.0.0.1")),
        "the error names the flag: {}",
        r.body
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    mock.stop().await.expect("stop");
}

#[tokio::test]
async fn a_mock_listening_beyond_loopback_reaches_no_host_by_default() {
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(proteus_mock::serve(
        listener,
        World::default_world(),
        Config::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    let hook = serve(Router::new().route("/hook", post(|| async { "{}" }))).await;
    let base = format!("http://127.0.0.1:{port}");
    let mut reply = None;
    for _ in 0..50 {
        let r = reqwest::Client::new()
            .post(format!("{base}/api/plugins"))
            .bearer_auth(ADA)
            .json(&plugin(&format!("{hook}/hook")))
            .send()
            .await;
        if let Ok(r) = r {
            reply = Some((r.status().as_u16(), r.json::<Value>().await.expect("json")));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (status, body) = reply.expect("the mock answers");
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("beyond loopback")),
        "{body}"
    );
    let _ = stop.send(());
    server.await.expect("joins").expect("serves");
}

#[tokio::test]
async fn a_huge_answer_is_a_failed_delivery_not_a_memory_spike() {
    let mock = start().await;
    let big = "x".repeat(10 * 1024 * 1024);
    let hook = serve(Router::new().route("/hook", post(move || async move { big }))).await;
    let r = Http::new(&mock)
        .post("/api/plugins", ADA, plugin(&format!("{hook}/hook")))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("too large") && !m.contains("wrong challenge")),
        "{}",
        r.body
    );
    mock.stop().await.expect("stop");
}
