//! A small, fast socket.io client that shows every frame.
//!
//! Engine.IO v4 over a websocket (tokio-tungstenite, TCP_NODELAY), socket.io
//! v5 packets on the default namespace. It answers Engine.IO pings as soon as
//! it reads them and otherwise hands frames over untouched: the conformance
//! runner needs to see exactly what arrived and in which order, and the load
//! generator needs to count frames without parsing the ones it does not
//! measure. This is the workspace's one socket.io client.
//!
//! # Layout
//! - this file: the connection (websocket, Engine.IO handshake, pings,
//!   emits, reads);
//! - [`packet`]: what a frame is (event, ack, CONNECT, …), by prefix and
//!   without allocating, the owned [`Frame`], and the protocol's
//!   [`event`] names: the only place that spells out a packet's form;
//! - [`session`]: connect-and-authenticate ([`Login`]) and acked requests
//!   such as joining a chat, with the errors a caller maps to its own.
//!
//! The conformance cases and the load generator both go through all three,
//! so "connected", "joined" and "a delta" mean one thing in the workspace.

pub mod packet;
pub mod session;

pub use packet::{EngineKind, Frame, Packet, encode_ack, encode_event, event, parse_packet};
pub use session::{Login, SessionError, Welcome, ack_data, auth};

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// What went wrong talking to a server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot open a websocket to {url}: {source}")]
    Connect {
        url: String,
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },
    #[error("websocket error: {0}")]
    Ws(#[from] Box<tokio_tungstenite::tungstenite::Error>),
    #[error("the server closed the connection")]
    Closed,
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, &'static str),
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Bytes asked of the kernel per websocket read, by default. tungstenite
/// zero-fills this much before every read (including the one that finds
/// nothing more), so its own default (128 KiB) cost ~33% of the load
/// generator's CPU with 1,000 connections each receiving one small frame per
/// read, and 16 KiB still ~9%. 4 KiB holds a delta frame (about 1 KB) and
/// the few frames that come with a send; a larger frame still arrives whole,
/// over several reads.
pub const READ_BUFFER: usize = 4 * 1024;

/// The read buffer for one connection that must drain a torrent of frames
/// (tungstenite's default; more frames per read).
pub const LARGE_READ_BUFFER: usize = 128 * 1024;

/// A received text, shared with the websocket buffer (no copy).
#[derive(Debug, Clone)]
pub struct Text {
    raw: tokio_tungstenite::tungstenite::Utf8Bytes,
    skip: usize,
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.raw.as_str()[self.skip..]
    }
}

/// A connected socket.io client on the default namespace.
pub struct Client {
    ws: Ws,
    next_ack: u64,
    /// The Engine.IO handshake (`sid`, `pingInterval`, `pingTimeout`, …).
    pub handshake: Value,
}

impl Client {
    /// Opens the websocket and completes the Engine.IO handshake, then sends
    /// the socket.io CONNECT with `auth`. The server's answer (CONNECT or
    /// CONNECT_ERROR, then events such as `success`) is read with
    /// [`next_frame`](Self::next_frame).
    pub async fn connect(base_url: &str, auth: &Value) -> Result<Client, ClientError> {
        Self::connect_with_read_buffer(base_url, auth, READ_BUFFER).await
    }

    /// [`connect`](Self::connect) asking the kernel for up to `read_buffer`
    /// bytes per read: larger suits one connection receiving a torrent of
    /// frames (more frames per read), smaller suits many connections each
    /// receiving a frame at a time (less zero-filling per read).
    pub async fn connect_with_read_buffer(
        base_url: &str,
        auth: &Value,
        read_buffer: usize,
    ) -> Result<Client, ClientError> {
        let url = ws_url(base_url);
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(read_buffer);
        let (ws, _) =
            tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true)
                .await
                .map_err(|e| ClientError::Connect {
                    url: url.clone(),
                    source: Box::new(e),
                })?;
        let mut client = Client {
            ws,
            next_ack: 0,
            handshake: Value::Null,
        };
        let open = client.next_text().await?;
        let handshake = open
            .strip_prefix('0')
            .and_then(|j| serde_json::from_str::<Value>(j).ok())
            .ok_or_else(|| {
                ClientError::Protocol(format!("expected the Engine.IO open packet, got {open:?}"))
            })?;
        client.handshake = handshake;
        client.send_text(format!("40{auth}")).await?;
        Ok(client)
    }

    async fn send_text(&mut self, text: String) -> Result<(), ClientError> {
        self.ws
            .send(WsMessage::text(text))
            .await
            .map_err(|e| ClientError::Ws(Box::new(e)))
    }

    /// The next Engine.IO message's text with the Engine.IO type stripped
    /// (socket.io packets start with their own type digit), without copying
    /// it. Pings are answered and skipped.
    pub async fn next_text(&mut self) -> Result<Text, ClientError> {
        loop {
            let msg = match self.ws.next().await {
                None => return Err(ClientError::Closed),
                Some(Err(e)) => return Err(ClientError::Ws(Box::new(e))),
                Some(Ok(m)) => m,
            };
            let text = match msg {
                WsMessage::Text(t) => t,
                WsMessage::Close(_) => return Err(ClientError::Closed),
                _ => continue,
            };
            match EngineKind::of(text.as_str()) {
                EngineKind::Ping => self.send_text("3".into()).await?,
                // The handshake keeps its type: `connect` reads it.
                EngineKind::Open => return Ok(Text { raw: text, skip: 0 }),
                EngineKind::Message => return Ok(Text { raw: text, skip: 1 }),
                EngineKind::Close => return Err(ClientError::Closed),
                EngineKind::Pong | EngineKind::Other => {}
            }
        }
    }

    /// The next socket.io packet.
    pub async fn next_frame(&mut self) -> Result<Frame, ClientError> {
        let text = self.next_text().await?;
        Ok(parse_packet(&text))
    }

    /// The next packet, or a timeout error naming what was awaited.
    pub async fn next_frame_within(
        &mut self,
        limit: Duration,
        what: &'static str,
    ) -> Result<Frame, ClientError> {
        tokio::time::timeout(limit, self.next_frame())
            .await
            .map_err(|_| ClientError::Timeout(limit, what))?
    }

    /// Emits an event without asking for an ack.
    pub async fn emit(&mut self, event: &str, payload: &Value) -> Result<(), ClientError> {
        self.send_text(message(None, event, payload)).await
    }

    /// Emits an event asking for an ack; returns the ack id to match against
    /// [`Frame::Ack`].
    pub async fn emit_with_ack(
        &mut self,
        event: &str,
        payload: &Value,
    ) -> Result<u64, ClientError> {
        let id = self.next_ack;
        self.next_ack += 1;
        self.send_text(message(Some(id), event, payload)).await?;
        Ok(id)
    }

    /// Sends a raw socket.io packet (for tests of malformed input).
    pub async fn send_raw_packet(&mut self, packet: &str) -> Result<(), ClientError> {
        self.send_text(format!("4{packet}")).await
    }

    /// Closes the websocket.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// An EVENT packet as an Engine.IO message (`4` in front).
fn message(ack: Option<u64>, event: &str, payload: &Value) -> String {
    let mut out = String::with_capacity(64);
    out.push('4');
    packet::write_event(&mut out, ack, event, payload);
    out
}

/// `http://host:port` → `ws://host:port/socket.io/?EIO=4&transport=websocket`.
pub fn ws_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    let ws = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_string()
    };
    format!("{ws}/socket.io/?EIO=4&transport=websocket")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emit_is_the_event_packet_inside_an_engine_io_message() {
        let payload = serde_json::json!({ "chatId": "c" });
        let sent = message(Some(7), event::CHAT_JOIN, &payload);
        assert_eq!(EngineKind::of(&sent), EngineKind::Message);
        assert_eq!(sent[1..], encode_event(Some(7), event::CHAT_JOIN, &payload));
    }

    #[test]
    fn builds_websocket_urls() {
        assert_eq!(
            ws_url("http://127.0.0.1:4000"),
            "ws://127.0.0.1:4000/socket.io/?EIO=4&transport=websocket"
        );
        assert_eq!(
            ws_url("https://example.com/"),
            "wss://example.com/socket.io/?EIO=4&transport=websocket"
        );
    }
}
