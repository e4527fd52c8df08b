//! Every connection is bounded in time and in number: a request head that
//! never completes (the first or a keep-alive's next), a body that never arrives, a flood of connections and a
//! shutdown with stalled clients all end, by themselves.

mod common;

use std::time::{Duration, Instant};

use proteus_mock::net::Limits;
use proteus_mock::world::World;
use proteus_mock::{Config, Running};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn mock_with(limits: Limits) -> Running {
    proteus_mock::start(
        World::default_world(),
        Config {
            limits,
            ..Config::default()
        },
    )
    .await
    .expect("starts")
}

/// Waits until the server closes `tcp` (reads 0 or fails); how long it took.
async fn closed_within(tcp: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(limit, async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
    .map(|()| started.elapsed())
}

#[tokio::test]
async fn a_request_head_that_never_completes_is_closed_after_the_head_timeout() {
    let mock = mock_with(Limits {
        head_timeout: Duration::from_millis(300),
        ..Limits::default()
    })
    .await;
    let mut tcp = TcpStream::connect(mock.addr).await.expect("connects");
    tcp.write_all(b"GET /api/chats HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .expect("writes");
    let took = closed_within(&mut tcp, Duration::from_secs(5)).await;
    assert!(
        took.is_some(),
        "the half-sent head was still open after 5 s"
    );
    mock.stop().await.expect("stop");
}

#[tokio::test]
async fn the_next_head_on_a_keep_alive_connection_must_also_arrive_in_time() {
    let mock = mock_with(Limits {
        head_timeout: Duration::from_millis(500),
        ..Limits::default()
    })
    .await;
    let mut tcp = TcpStream::connect(mock.addr).await.expect("connects");
    tcp.write_all(b"GET /__admin/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("writes");
    let mut buf = vec![0u8; 64 * 1024];
    let n = tcp.read(&mut buf).await.expect("first answer");
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "first request answered"
    );
    // A slowloris: the second head, one header every 100 ms, never ending.
    tcp.write_all(b"GET /__admin/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .expect("writes");
    let started = Instant::now();
    let mut cut = false;
    while started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if tcp.write_all(b"X-Trickle: 1\r\n").await.is_err() {
            cut = true;
            break;
        }
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(1), tcp.read(&mut buf)).await
        {
            cut = true;
            break;
        }
    }
    assert!(cut, "a trickling second head was still open after 5 s");
    mock.stop().await.expect("stop");
}

/// Sends `request` on a fresh connection; the whole answer (the server
/// closes the connection after these).
async fn raw_answer(mock: &Running, request: &[u8]) -> String {
    let mut tcp = TcpStream::connect(mock.addr).await.expect("connects");
    tcp.write_all(request).await.expect("writes");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server did not close after its answer");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn requests_the_http_layer_cannot_parse_are_answered_in_the_envelope() {
    let mock = mock_with(Limits::default()).await;
    let long_target = format!(
        "GET /{} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "a".repeat(70_000)
    );
    let many_headers = format!(
        "GET /api/chats HTTP/1.1\r\nHost: 127.0.0.1\r\n{}\r\n",
        (0..120)
            .map(|i| format!("X-{i}: a\r\n"))
            .collect::<String>()
    );
    let cases: [(&[u8], &str, &str); 3] = [
        (b"NOT HTTP AT ALL\r\n\r\n", "400", "bad_request"),
        (long_target.as_bytes(), "414", "uri_too_long"),
        (
            many_headers.as_bytes(),
            "431",
            "request_header_fields_too_large",
        ),
    ];
    for (request, status, code) in cases {
        let answer = raw_answer(&mock, request).await;
        let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
        assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        let body: serde_json::Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("the {status} body is not JSON ({e}): {body:?}"));
        assert_eq!(body["ok"], false, "{body}");
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    mock.stop().await.expect("stop");
}

#[tokio::test]
async fn a_body_that_never_arrives_is_closed_after_the_idle_timeout() {
    let mock = mock_with(Limits {
        idle_timeout: Duration::from_millis(500),
        ..Limits::default()
    })
    .await;
    let mut tcp = TcpStream::connect(mock.addr).await.expect("connects");
    let head = format!(
        "POST /api/chats HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"par",
        common::ADA
    );
    tcp.write_all(head.as_bytes()).await.expect("writes");
    let took = closed_within(&mut tcp, Duration::from_secs(5)).await;
    assert!(
        took.is_some(),
        "the half-sent body was still open after 5 s"
    );
    mock.stop().await.expect("stop");
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_and_the_cap_frees_up() {
    let mock = mock_with(Limits {
        max_connections: 4,
        ..Limits::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(mock.addr).await.expect("connects"));
    }
    // Let the listener register them.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = TcpStream::connect(mock.addr)
        .await
        .expect("the kernel accepts");
    assert!(
        closed_within(&mut extra, Duration::from_secs(2))
            .await
            .is_some(),
        "a fifth connection is closed at once"
    );
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = reqwest::get(format!("{}/api/chats", mock.url()))
        .await
        .expect("a new connection is served once others left");
    assert_eq!(r.status().as_u16(), 401);
    mock.stop().await.expect("stop");
}

#[tokio::test]
async fn shutdown_does_not_wait_for_a_stalled_client() {
    let mock = mock_with(Limits::default()).await;
    let mut tcp = TcpStream::connect(mock.addr).await.expect("connects");
    // Authenticated, so the handler waits for the body that never comes.
    let head = format!(
        "POST /api/chats HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{",
        common::ADA
    );
    tcp.write_all(head.as_bytes()).await.expect("writes");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(8), mock.stop())
        .await
        .expect("the mock stopped within 8 s")
        .expect("cleanly");
    assert!(started.elapsed() < Duration::from_secs(8));
}
