//! A socket.io client over a raw TCP stream with hand-written WebSocket
//! frames, so a test controls exactly when (and whether) it reads: the way
//! to be a slow consumer.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::ADA;
use proteus_mock::Running;

/// Opens a WebSocket to the socket.io endpoint (`query` after `EIO=4&`).
pub async fn upgrade(mock: &Running, query: &str) -> TcpStream {
    let addr = mock.addr;
    let mut tcp = TcpStream::connect(addr).await.expect("tcp");
    let req = format!(
        "GET /socket.io/?EIO=4&{query} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.expect("upgrade");
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut b).await.expect("upgrade response");
        head.push(b[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    tcp
}

/// A masked client text frame.
pub fn frame(text: &str) -> Vec<u8> {
    let payload = text.as_bytes();
    let mut out = vec![0x81u8];
    if payload.len() < 126 {
        out.push(0x80 | payload.len() as u8);
    } else {
        out.push(0x80 | 126);
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    let mask = [1u8, 2, 3, 4];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// Reads until `needle` has been seen (5 s at most).
pub async fn read_until(ws: &mut TcpStream, needle: &[u8]) {
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    while !seen.windows(needle.len()).any(|w| w == needle) {
        let n = tokio::time::timeout(Duration::from_secs(5), ws.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("{} within 5 s", String::from_utf8_lossy(needle)))
            .expect("read");
        assert!(n > 0, "closed before {}", String::from_utf8_lossy(needle));
        seen.extend_from_slice(&chunk[..n]);
    }
}

/// Joins `chat` (as Ada) on a connected socket, then reads for a moment.
async fn join_and_stall(mut ws: TcpStream, chat: &str) -> TcpStream {
    ws.write_all(&frame(&format!(
        "421{}",
        json!(["chat:join", {"chatId": chat}])
    )))
    .await
    .expect("join");
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(300), ws.read(&mut buf)).await;
    ws
}

/// A socket opened on WebSocket directly that joins `chat`'s room, then
/// never reads again.
pub async fn stalled_in_room(mock: &Running, chat: &str) -> TcpStream {
    let mut ws = upgrade(mock, "transport=websocket").await;
    ws.write_all(&frame(&format!("40{}", json!({"token": ADA}))))
        .await
        .expect("connect packet");
    // Like any socket.io client, wait for the CONNECT ack before emitting: an
    // event pipelined behind the CONNECT packet can reach socketioxide before
    // the socket exists, and it then closes the connection.
    read_until(&mut ws, b"40{\"sid").await;
    join_and_stall(ws, chat).await
}

/// A socket opened on long-polling and upgraded to WebSocket (what the
/// official clients do), in `chat`'s room, then never reading again.
pub async fn upgraded_stalled_in_room(mock: &Running, chat: &str) -> TcpStream {
    let http = reqwest::Client::new();
    let polling = format!("{}/socket.io/?EIO=4&transport=polling", mock.url());
    let open = http.get(&polling).send().await.expect("handshake");
    let open = open.text().await.expect("handshake body");
    let sid: serde_json::Value =
        serde_json::from_str(open.trim_start_matches('0')).expect("the OPEN packet");
    let sid = sid["sid"].as_str().expect("sid").to_string();
    let with_sid = format!("{polling}&sid={sid}");
    let posted = http
        .post(&with_sid)
        .body(format!("40{}", json!({"token": ADA})))
        .send()
        .await
        .expect("connect packet");
    assert!(posted.status().is_success());
    let connected = http.get(&with_sid).send().await.expect("poll");
    let connected = connected.text().await.expect("poll body");
    assert!(connected.contains("40{"), "the CONNECT ack: {connected}");
    let mut ws = upgrade(mock, &format!("transport=websocket&sid={sid}")).await;
    ws.write_all(&frame("2probe")).await.expect("probe");
    read_until(&mut ws, b"3probe").await;
    ws.write_all(&frame("5")).await.expect("upgrade packet");
    join_and_stall(ws, chat).await
}
