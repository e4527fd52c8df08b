//! A careful client-conformance adapter on `rust_socketio` (docs/CLIENTS.md):
//! the Rust counterpart of `interop/clients/careful.mjs` and `careful.py`.
//!
//! `proteus-conformance client` runs it once per scenario with the task in
//! `PROTEUS_TASK`; it prints one JSON line per thing the SDK reported. It
//! waits for `success` before calling the connection authenticated,
//! reconnects (and joins again) only in the rejoin task, listens for `message:done` before sending and presents done's
//! `content`, gives up after `PROTEUS_TIMEOUT_MS`, pages history by cursor
//! and checks the count against `meta.total`.
//!
//!     cargo build -p proteus-mock --example client_adapter
//!     proteus-conformance client --command target/debug/examples/client_adapter

use std::time::Duration;

use futures_util::FutureExt;
use rust_socketio::Payload;
use rust_socketio::asynchronous::{Client, ClientBuilder};
use serde_json::{Value, json};
use tokio::sync::mpsc;

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_default()
}

fn say(line: Value) {
    println!("{line}");
}

/// The first argument of an event's payload.
fn first(payload: Payload) -> Value {
    match payload {
        Payload::Text(mut args) if !args.is_empty() => args.remove(0),
        _ => Value::Null,
    }
}

/// A connected, authenticated socket and its events (`success` and
/// `error` are consumed here; the rest go to `events`).
async fn connect() -> Result<(Client, mpsc::UnboundedReceiver<(String, Value)>), String> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (tx_any, tx_err) = (tx.clone(), tx);
    let client = ClientBuilder::new(env("PROTEUS_URL"))
        .auth(json!({ "token": env("PROTEUS_TOKEN") }))
        .transport_type(rust_socketio::TransportType::Websocket)
        .reconnect(false)
        .on_any(move |event, payload, _| {
            let _ = tx_any.send((String::from(event), first(payload)));
            async {}.boxed()
        })
        .on("error", move |payload, _| {
            let _ = tx_err.send(("error".into(), first(payload)));
            async {}.boxed()
        })
        .connect()
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let answer = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some((event, payload)) = rx.recv().await {
            match event.as_str() {
                "success" => return Ok(()),
                "error" => {
                    let message = payload["message"]
                        .as_str()
                        .unwrap_or("the server refused the connection");
                    return Err(message.to_string());
                }
                _ => {}
            }
        }
        Err("the connection closed before success".to_string())
    })
    .await
    .unwrap_or_else(|_| Err("no answer to the connection".into()));
    match answer {
        Ok(()) => Ok((client, rx)),
        Err(e) => {
            let _ = client.disconnect().await;
            Err(e)
        }
    }
}

/// An acked emit: the ack's `data`, or its error message.
async fn request(client: &Client, event: &str, payload: Value) -> Result<Value, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    client
        .emit_with_ack(event, payload, Duration::from_secs(5), move |p, _| {
            if let Some(tx) = tx.lock().ok().and_then(|mut t| t.take()) {
                // rust_socketio passes the ack's arguments as one array.
                let ack = match first(p) {
                    Value::Array(mut a) if a.len() == 1 => a.remove(0),
                    other => other,
                };
                let _ = tx.send(ack);
            }
            async {}.boxed()
        })
        .await
        .map_err(|e| format!("cannot emit {event}: {e}"))?;
    let ack = tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .map_err(|_| format!("no ack for {event}"))?
        .map_err(|_| format!("no ack for {event}"))?;
    match ack.get("error") {
        Some(e) => Err(e["message"].as_str().unwrap_or("refused").to_string()),
        None => Ok(ack["data"].clone()),
    }
}

async fn send(stream: bool) -> Result<(), String> {
    let (client, mut events) = connect().await?;
    let chat = env("PROTEUS_CHAT_ID");
    let result = async {
        request(&client, "chat:join", json!({ "chatId": chat })).await?;
        let mut body = json!({ "chatId": chat, "content": env("PROTEUS_CONTENT") });
        if stream {
            body["streamResponse"] = json!(true);
            body["state"] = serde_json::from_str(&env("PROTEUS_STATE")).unwrap_or(json!({}));
        }
        let sent = request(&client, "message:send", body).await?;
        let id = sent["message"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !stream {
            say(json!({ "event": "sent", "messageId": id }));
            return Ok(());
        }
        let limit = Duration::from_millis(env("PROTEUS_TIMEOUT_MS").parse().unwrap_or(2000));
        let done = tokio::time::timeout(limit, async {
            while let Some((event, payload)) = events.recv().await {
                if event == "message:done" && payload["respondedToId"] == id.as_str() {
                    return Some(payload);
                }
            }
            None
        })
        .await;
        match done {
            Ok(Some(m)) => {
                say(json!({ "event": "final", "content": m["content"], "messageId": m["id"] }))
            }
            Ok(None) => return Err("the connection closed before message:done".into()),
            Err(_) => say(json!({ "event": "timeout" })),
        }
        Ok(())
    }
    .await;
    let _ = client.disconnect().await;
    result
}

/// Two replies at once: each `message:done` is matched to its message by
/// `respondedToId`.
async fn two_streams() -> Result<(), String> {
    let (client, mut events) = connect().await?;
    let chat = env("PROTEUS_CHAT_ID");
    let result = async {
        request(&client, "chat:join", json!({ "chatId": chat })).await?;
        let state: Value = serde_json::from_str(&env("PROTEUS_STATE")).unwrap_or(json!({}));
        let mut ids = Vec::new();
        for content in [env("PROTEUS_CONTENT"), env("PROTEUS_CONTENT_2")] {
            let body = json!({ "chatId": chat, "content": content, "streamResponse": true, "state": state });
            let sent = request(&client, "message:send", body).await?;
            ids.push(sent["message"]["id"].as_str().unwrap_or_default().to_string());
        }
        let limit = Duration::from_millis(env("PROTEUS_TIMEOUT_MS").parse().unwrap_or(2000));
        let mut dones: Vec<Option<Value>> = vec![None, None];
        let _ = tokio::time::timeout(limit, async {
            while let Some((event, payload)) = events.recv().await {
                if event != "message:done" {
                    continue;
                }
                if let Some(i) = ids.iter().position(|id| payload["respondedToId"] == id.as_str()) {
                    dones[i] = Some(payload);
                }
                if dones.iter().all(Option::is_some) {
                    break;
                }
            }
        })
        .await;
        for done in dones {
            match done {
                Some(m) => say(json!({ "event": "final", "content": m["content"], "messageId": m["id"] })),
                None => say(json!({ "event": "timeout" })),
            }
        }
        Ok(())
    }
    .await;
    let _ = client.disconnect().await;
    result
}

/// Stays in the chat through a server restart: the client reconnects by
/// itself, but rooms live on the server, so every `success` (the first and
/// each after a reconnect) joins the chat again.
async fn rejoin() -> Result<(), String> {
    let (tx, mut events) = mpsc::unbounded_channel();
    let client = ClientBuilder::new(env("PROTEUS_URL"))
        .auth(json!({ "token": env("PROTEUS_TOKEN") }))
        .transport_type(rust_socketio::TransportType::Websocket)
        .reconnect(true)
        .reconnect_delay(100, 1000)
        .on_any(move |event, payload, _| {
            let _ = tx.send((String::from(event), first(payload)));
            async {}.boxed()
        })
        .connect()
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let chat = env("PROTEUS_CHAT_ID");
    let limit = Duration::from_millis(env("PROTEUS_TIMEOUT_MS").parse().unwrap_or(2000));
    let deadline = tokio::time::Instant::now() + limit;
    let mut joined_once = false;
    let result = loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Err(_) => {
                say(json!({ "event": "timeout" }));
                break Ok(());
            }
            Ok(None) => break Err("the client stopped".to_string()),
            Ok(Some((event, payload))) => match event.as_str() {
                "success" => {
                    if let Err(e) = request(&client, "chat:join", json!({ "chatId": chat })).await {
                        break Err(e);
                    }
                    if !joined_once {
                        joined_once = true;
                        say(json!({ "event": "connected" }));
                    }
                }
                "error" => {
                    let message = payload["message"].as_str().unwrap_or("the server refused");
                    break Err(message.to_string());
                }
                "message" if payload["chatId"] == chat.as_str() => {
                    say(
                        json!({ "event": "received", "messageId": payload["id"], "content": payload["content"] }),
                    );
                    if payload["content"] == env("PROTEUS_CONTENT").as_str() {
                        break Ok(());
                    }
                }
                _ => {}
            },
        }
    };
    let _ = client.disconnect().await;
    result
}

async fn history() -> Result<(), (String, Option<u16>)> {
    let http = reqwest::Client::new();
    let (mut ids, mut cursor, mut total): (Vec<String>, Option<String>, Option<u64>) =
        (Vec::new(), None, None);
    for _ in 0..100 {
        let mut url = format!(
            "{}/api/chats/{}/messages?@limit=20",
            env("PROTEUS_URL"),
            env("PROTEUS_CHAT_ID")
        );
        if let Some(c) = &cursor {
            url.push_str(&format!("&@cursor={c}"));
        }
        let r = http
            .get(url)
            .bearer_auth(env("PROTEUS_TOKEN"))
            .send()
            .await
            .map_err(|e| (e.to_string(), None))?;
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if !(200..300).contains(&status) || body["ok"] != true {
            let message = body["error"]["message"]
                .as_str()
                .map_or(format!("HTTP {status}"), str::to_string);
            return Err((message, Some(status)));
        }
        total = total.or(body["meta"]["total"].as_u64());
        let page = body["data"].as_array().cloned().unwrap_or_default();
        if page.is_empty() {
            break;
        }
        ids.extend(
            page.iter()
                .filter_map(|m| m["id"].as_str().map(str::to_string)),
        );
        cursor = ids.last().cloned();
    }
    if let Some(t) = total.filter(|t| *t != ids.len() as u64) {
        return Err((format!("history incomplete: {} of {t}", ids.len()), None));
    }
    say(json!({ "event": "history", "ids": ids }));
    Ok(())
}

#[tokio::main]
async fn main() {
    let outcome = match env("PROTEUS_TASK").as_str() {
        "connect" => match connect().await {
            Ok((client, _)) => {
                let _ = client.disconnect().await;
                say(json!({ "event": "connected" }));
                Ok(())
            }
            Err(e) => Err((e, None)),
        },
        "send" => send(false).await.map_err(|e| (e, None)),
        "stream" => send(true).await.map_err(|e| (e, None)),
        "history" => history().await,
        "two-streams" => two_streams().await.map_err(|e| (e, None)),
        "rejoin" => rejoin().await.map_err(|e| (e, None)),
        other => Err((format!("unknown task {other:?}"), None)),
    };
    if let Err((message, status)) = outcome {
        let mut line = json!({ "event": "error", "message": message });
        if let Some(s) = status {
            line["status"] = json!(s);
        }
        say(line);
    }
}
