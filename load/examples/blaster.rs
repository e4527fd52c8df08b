//! The blaster: a stand-in server that does nothing but write pre-encoded
//! socket.io frames, so a consumer (proteus-load, a node socket.io-client)
//! can be measured without a real server's cost in the way
//! (docs/BENCHMARKS.md, "the generator's own ceiling").
//!
//!   cargo run --release -p proteus-load --example blaster -- [PORT]
//!
//! It speaks just enough of the protocol for `proteus-load --scenario
//! firehose`: `GET /__admin/profile`, `POST /api/chats`, the Engine.IO v4 /
//! socket.io v5 handshake with `success`, `chat:join` with its ack, and
//! `POST /__admin/firehose {chatId, deltas, streams, size}`, which writes
//! `streams` streams of `deltas` deltas (and their `message:done`) to every
//! socket in the chat, unpaced. Each stream's frames are encoded once as a
//! template; only the stream and message ids are patched in per stream.
//! A `message:send` is answered at once with one delta and its done (and the
//! ack, if asked), one write: the floor of "time to first delta" for a
//! consumer on this machine (docs/BENCHMARKS.md, "Many chats").
//! Listens on 127.0.0.1 only; prints `{"url": …}` once ready.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const USER: &str = "6466ae1b03fab9ddd1d67c40";
const TOKEN: &str = "user-3a4d80a9c3cca7ffd1bc341f.ede04d00e4b168bed35d9fcde8c2f92f.00d7fecf89201691f94b01e5b294da65.e7ea4c191b2c9a059ce5658deb7349c26a931ed8b7a04bf0";
const AGENT: &str = "6819a0e484df0fc342cea506";
const STREAM_SLOT: &str = "5555555555555555555555a5";
const MESSAGE_SLOT: &str = "7777777777777777777777a7";

#[derive(Debug, Clone)]
struct Firehose {
    chat_id: String,
    deltas: usize,
    streams: usize,
    size: usize,
}

/// Sockets that joined a chat: chat id → their firehose senders.
type Rooms = Arc<Mutex<HashMap<String, Vec<mpsc::UnboundedSender<Firehose>>>>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .map(|p| p.parse())
        .transpose()?
        .unwrap_or(0);
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    println!(
        "{}",
        json!({ "url": format!("http://{}", listener.local_addr()?) })
    );
    let rooms: Rooms = Arc::default();
    let chats = Arc::new(std::sync::atomic::AtomicU64::new(0));
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let (rooms, chats) = (rooms.clone(), chats.clone());
        tokio::spawn(async move {
            if let Err(e) = connection(tcp, rooms, chats).await {
                eprintln!("blaster: {e:#}");
            }
        });
    }
}

async fn connection(
    tcp: TcpStream,
    rooms: Rooms,
    chats: Arc<std::sync::atomic::AtomicU64>,
) -> anyhow::Result<()> {
    let mut head = [0u8; 2048];
    let n = tcp.peek(&mut head).await?;
    let first = String::from_utf8_lossy(&head[..n]);
    let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
    if path.starts_with("/socket.io/") {
        return socket(tcp, rooms).await;
    }
    http(tcp, &path, rooms, chats).await
}

/// One plain HTTP request (then the connection closes).
async fn http(
    mut tcp: TcpStream,
    path: &str,
    rooms: Rooms,
    chats: Arc<std::sync::atomic::AtomicU64>,
) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let body_start = loop {
        let n = tcp.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..body_start]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < body_start + length {
        let n = tcp.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body: Value = serde_json::from_slice(&buf[body_start..]).unwrap_or(Value::Null);
    let (status, answer) = match path {
        "/__admin/profile" => (
            200,
            json!({ "ok": true, "data": {
                "users": [{ "id": USER, "token": TOKEN }],
                "agents": { "streaming": AGENT },
                "capabilities": { "firehose": true } } }),
        ),
        "/api/chats" => {
            let n = chats.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            (
                201,
                json!({ "ok": true, "data": { "id": format!("b1a57e70{n:016x}") } }),
            )
        }
        "/__admin/firehose" => {
            let f = Firehose {
                chat_id: body["chatId"].as_str().unwrap_or_default().to_string(),
                deltas: body["deltas"].as_u64().unwrap_or(100).max(1) as usize,
                streams: body["streams"].as_u64().unwrap_or(1).max(1) as usize,
                size: body["size"].as_u64().unwrap_or(16).clamp(1, 65_536) as usize,
            };
            let senders = rooms
                .lock()
                .map(|r| r.get(&f.chat_id).cloned().unwrap_or_default())
                .unwrap_or_default();
            for s in &senders {
                let _ = s.send(f.clone());
            }
            (
                202,
                json!({ "ok": true, "data": { "sockets": senders.len(), "expectedDeltas": f.deltas * f.streams } }),
            )
        }
        _ => (
            404,
            json!({ "ok": false, "error": { "message": "no such route" } }),
        ),
    };
    let text = answer.to_string();
    let reply = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
        text.len()
    );
    tcp.write_all(reply.as_bytes()).await?;
    Ok(())
}

/// The frames of one stream, with the ids as slots to patch.
struct Template {
    frames: Vec<String>,
    /// Byte offsets of the stream-id and message-id slots, per frame.
    slots: Vec<(Vec<usize>, Vec<usize>)>,
}

fn template(f: &Firehose) -> Template {
    let at = "2026-11-21T00:00:00.000Z";
    let chunk: String = (0..f.size)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let message = |content: &str, delta: Option<&str>, streaming: bool| {
        json!({ "id": MESSAGE_SLOT, "content": content, "contentDelta": delta, "chatId": f.chat_id, "chatKey": null,
            "instructions": [], "isStreaming": streaming, "notes": [], "respondedToId": null, "responseUrl": null,
            "senderId": AGENT, "state": {}, "streamId": STREAM_SLOT, "streamResponse": false, "type": "TEXT",
            "createdAt": at, "updatedAt": at, "attachments": [], "citations": [] })
    };
    let mut frames = Vec::with_capacity(f.deltas + 1);
    let mut content = String::new();
    for _ in 0..f.deltas {
        content.push_str(&chunk);
        let delta = json!({ "chatId": f.chat_id, "streamId": STREAM_SLOT, "messageId": MESSAGE_SLOT,
            "contentDelta": chunk, "content": content, "message": message(&content, Some(&chunk), true) });
        frames.push(format!("42[\"message:delta\",{delta}]"));
    }
    frames.push(format!(
        "42[\"message:done\",{}]",
        message(&content, None, false)
    ));
    let slots = frames
        .iter()
        .map(|t| {
            (
                t.match_indices(STREAM_SLOT).map(|(i, _)| i).collect(),
                t.match_indices(MESSAGE_SLOT).map(|(i, _)| i).collect(),
            )
        })
        .collect();
    Template { frames, slots }
}

async fn socket(tcp: TcpStream, rooms: Rooms) -> anyhow::Result<()> {
    let mut ws = tokio_tungstenite::accept_async(tcp).await?;
    ws.send(Message::text(
        r#"0{"sid":"blaster","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
    ))
    .await?;
    let (tx, mut rx) = mpsc::unbounded_channel::<Firehose>();
    let mut serial = 0u64;
    let reply = template(&Firehose {
        chat_id: "b1a57e700000000000000001".into(),
        deltas: 1,
        streams: 1,
        size: 1,
    });
    loop {
        tokio::select! {
            msg = ws.next() => {
                let Some(msg) = msg else { return Ok(()) };
                let Message::Text(text) = msg? else { continue };
                let text = text.as_str();
                if text.starts_with("40") {
                    ws.send(Message::text(r#"40{"sid":"blaster-sio"}"#)).await?;
                    ws.send(Message::text(format!(
                        r#"42["success",{{"entity":{{"id":"{USER}","type":"USER","name":"Ada Lovelace"}}}}]"#
                    ))).await?;
                } else if text == "2" {
                    ws.send(Message::text("3")).await?;
                } else if let Some(rest) = text.strip_prefix("42") {
                    // 42<ack id>["chat:join",{"chatId":…}]
                    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    let Ok(Value::Array(packet)) = serde_json::from_str::<Value>(&rest[digits.len()..]) else { continue };
                    if packet.first().and_then(Value::as_str) == Some("chat:join") {
                        let chat = packet.get(1).and_then(|p| p["chatId"].as_str()).unwrap_or_default().to_string();
                        if let Ok(mut r) = rooms.lock() {
                            r.entry(chat.clone()).or_default().push(tx.clone());
                        }
                        ws.send(Message::text(format!(r#"43{digits}[{{"data":{{"chatId":"{chat}"}}}}]"#))).await?;
                    } else if packet.first().and_then(Value::as_str) == Some("message:send") {
                        // The floor of a reply: one pre-encoded delta and its
                        // done (and the ack, if asked), in one flush.
                        if !digits.is_empty() {
                            ws.feed(Message::text(format!(r#"43{digits}[{{"data":{{"id":"{MESSAGE_SLOT}"}}}}]"#))).await?;
                        }
                        for frame in &reply.frames {
                            ws.feed(Message::text(frame.clone())).await?;
                        }
                        ws.flush().await?;
                    }
                }
            }
            Some(f) = rx.recv() => {
                let t = template(&f);
                for _ in 0..f.streams {
                    serial += 1;
                    let sid = format!("5a{serial:022x}");
                    let mid = format!("7a{serial:022x}");
                    for (i, frame) in t.frames.iter().enumerate() {
                        let mut bytes = frame.clone().into_bytes();
                        for &at in &t.slots[i].0 {
                            bytes[at..at + 24].copy_from_slice(sid.as_bytes());
                        }
                        for &at in &t.slots[i].1 {
                            bytes[at..at + 24].copy_from_slice(mid.as_bytes());
                        }
                        let text = String::from_utf8(bytes)?;
                        ws.feed(Message::text(text)).await?;
                    }
                    ws.flush().await?;
                }
            }
        }
    }
}
