//! A careful client-conformance adapter on `rust_socketio` (docs/CLIENTS.md):
//! the Rust counterpart of `interop/clients/careful.mjs` and `careful.py`.
//!
//! `proteus-conformance client` runs it once per scenario with the task in
//! `PROTEUS_TASK`; it prints one JSON line per thing the SDK reported. It
//! waits for `success` before calling the connection authenticated, never
//! reconnects, listens for `message:done` before sending and presents done's
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
