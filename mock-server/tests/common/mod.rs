//! Shared test harness: a mock on a random loopback port, an HTTP client, a
//! socket.io client (rust_socketio, a third-party client) whose every event
//! lands in a channel, and schema validation of everything seen.
#![allow(dead_code)]

pub mod raw_ws;

use std::time::Duration;

use futures_util::FutureExt;
use proteus_conformance::schema::SchemaSet;
use proteus_mock::world::World;
use proteus_mock::{Config, Running};
use rust_socketio::Payload;
use rust_socketio::asynchronous::{Client, ClientBuilder};
use serde_json::{Value, json};
use tokio::sync::mpsc;

pub const ADA: &str = "user-3a4d80a9c3cca7ffd1bc341f.ede04d00e4b168bed35d9fcde8c2f92f.00d7fecf89201691f94b01e5b294da65.e7ea4c191b2c9a059ce5658deb7349c26a931ed8b7a04bf0";
pub const GRACE: &str = "user-e7edb86b763e9f56aa53967b.6a9d2cf69ab7088f14c89eae6407573e.ec170b2382d353c622a4eb010175865a.44ac4429742fd219ba9e51f533f9eef79173ca75817a8666";
pub const ADA_REVOKED_SEED: &str = "ada-revoked";
pub const ADA_ID: &str = "6466ae1b03fab9ddd1d67c40";
pub const GRACE_ID: &str = "6466ae1b03fab9ddd1d67c41";
pub const STREAMER: &str = "6819a0e484df0fc342cea506";
pub const ECHO: &str = "6819a0e484df0fc342cea507";
pub const WELCOME: &str = "682f4b313981b5f54e96ea4b";
pub const ECHO_CHAT: &str = "682f4b313981b5f54e96ea4c";
pub const GRACE_CHAT: &str = "682f4b313981b5f54e96ea4d";
pub const ORG: &str = "6816330b6f46b5afc080fbf7";

pub fn revoked_token() -> String {
    World::default_world()
        .tokens
        .iter()
        .find(|t| t.revoked)
        .expect("the default world has a revoked token")
        .token
        .clone()
}

pub async fn start() -> Running {
    proteus_mock::start(World::default_world(), Config::default())
        .await
        .expect("mock starts")
}

pub fn schemas() -> &'static SchemaSet {
    SchemaSet::embedded()
}

/// Fails with every violation when `instance` does not match `schema`.
pub fn assert_schema(schema: &str, instance: &Value) {
    if let Err(v) = schemas().check(schema, instance) {
        panic!("does not match {schema}: {v:#?}\ninstance: {instance:#}");
    }
}

pub struct Http {
    pub base: String,
    pub client: reqwest::Client,
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Http {
    pub fn new(running: &Running) -> Self {
        Http {
            base: running.url(),
            client: reqwest::Client::new(),
        }
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request reaches the mock");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let body: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{path}: body is not JSON ({e}): {text}"));
        // The envelope on every response, errors included.
        assert_schema("objects/envelope", &body);
        assert_eq!(
            body["ok"] == true,
            (200..300).contains(&status),
            "{path}: ok disagrees with status {status}: {body}"
        );
        Reply { status, body }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(reqwest::Method::GET, path, Some(token), None)
            .await
    }
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(reqwest::Method::POST, path, Some(token), Some(body))
            .await
    }
    pub async fn put(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(reqwest::Method::PUT, path, Some(token), Some(body))
            .await
    }
}

/// A socket.io client whose every server event goes into a channel.
pub struct Sio {
    pub client: Client,
    pub events: mpsc::UnboundedReceiver<(String, Value)>,
}

fn first(payload: Payload) -> Value {
    match payload {
        Payload::Text(mut v) if !v.is_empty() => v.remove(0),
        Payload::Text(_) => Value::Null,
        other => json!({ "unexpected payload": format!("{other:?}") }),
    }
}

impl Sio {
    pub async fn connect(running: &Running, token: &str) -> Sio {
        let (tx, rx) = mpsc::unbounded_channel();
        let (tx_any, tx_err, tx_close) = (tx.clone(), tx.clone(), tx);
        let client = ClientBuilder::new(running.url())
            .auth(json!({ "token": token }))
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
            .on("close", move |_, _| {
                let _ = tx_close.send(("close".into(), Value::Null));
                async {}.boxed()
            })
            .connect()
            .await
            .expect("socket.io connects");
        Sio { client, events: rx }
    }

    /// The next event, or panic after `secs`.
    pub async fn next(&mut self, secs: u64) -> (String, Value) {
        tokio::time::timeout(Duration::from_secs(secs), self.events.recv())
            .await
            .expect("an event within the timeout")
            .expect("event channel open")
    }

    /// The next event named `name`, skipping others.
    pub async fn next_named(&mut self, name: &str, secs: u64) -> Value {
        loop {
            let (event, payload) = self.next(secs).await;
            if event == name {
                return payload;
            }
        }
    }

    /// The `message*` events until the first `message:done` (inclusive).
    pub async fn until_done(&mut self, secs: u64) -> Vec<(String, Value)> {
        let mut frames = Vec::new();
        loop {
            let (event, payload) = self.next(secs).await;
            if !event.starts_with("message") {
                continue;
            }
            let done = event == "message:done";
            frames.push((event, payload));
            if done {
                return frames;
            }
        }
    }

    /// Emits with an ack and returns the ack's first argument.
    pub async fn ack(&self, event: &str, payload: Value) -> Value {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let tx = std::sync::Mutex::new(Some(tx));
        self.client
            .emit_with_ack(event, payload, Duration::from_secs(5), move |p, _| {
                if let Some(tx) = tx.lock().expect("lock").take() {
                    // rust_socketio passes the ack's argument list as one array.
                    let args = first(p);
                    let ack = match args {
                        Value::Array(mut a) if a.len() == 1 => a.remove(0),
                        other => other,
                    };
                    let _ = tx.send(ack);
                }
                async {}.boxed()
            })
            .await
            .expect("emit");
        tokio::time::timeout(Duration::from_secs(6), rx)
            .await
            .expect("ack within 6 s")
            .expect("ack delivered")
    }
}
