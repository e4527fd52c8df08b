//! The validating proxy between a real client (the npm socket.io-client
//! interop script) and the mock: the client works through it unchanged, the
//! server's side of a clean exchange yields no violation (the one frame the
//! script sends malformed on purpose is named), a mock fault is reported live and
//! in the summary, and the capture, with its tokens redacted, is checked
//! again offline by `validate` with the same verdict. Also: REST answers by
//! route, Phoenix frames, an `https://` upstream, the byte-level path for
//! later deltas, and frames relayed byte for byte. Replay: tests/replay.rs.

mod proxy_kit;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use proteus_conformance::testing::MockProcess;
use proxy_kit::*;

#[test]
fn a_real_client_works_through_the_proxy_and_only_its_malformed_frame_is_reported() {
    let mock = MockProcess::start(&[]);
    let dir = std::env::temp_dir().join(format!("proteus-proxy-clean-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (capture, summary) = (dir.join("capture.jsonl"), dir.join("summary.json"));
    let (child, url) = proxy(&mock.url, &capture, &summary);
    let out = interop_client(&url);
    assert!(
        out.status.success(),
        "the client failed through the proxy: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let status = chats_status(&url);
    assert_eq!(status, 200);
    let (code, summary) = stop(child, &summary);
    // The interop script sends one malformed frame on purpose (it checks
    // the server's error ack): the proxy names it, and nothing else; the
    // server's side is clean.
    let whats = violations(&summary);
    assert_eq!(
        whats,
        ["client→server event chat:join: does not match realtime/chat-join"],
        "{summary:#}"
    );
    assert_eq!(code, 1, "a violation, by the client");
    assert!(summary["exchanges"].as_u64() > Some(20), "{summary}");
    let text = std::fs::read_to_string(&capture).expect("capture");
    assert!(!text.contains(ADA), "the capture keeps no token");
    assert!(text.contains("message:delta") && text.contains("\"kind\":\"rest\""));
    let (failed, stdout) = validate_failures(&capture);
    assert_eq!(
        failed.len(),
        1,
        "offline, the same one frame fails: {stdout}"
    );
    assert!(failed[0].contains("realtime/chat-join"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_a_capture_later_deltas_take_the_fast_path_and_a_gap_is_still_named() {
    let mock = MockProcess::start(&["--fault", "drop-delta:3"]);
    let dir = std::env::temp_dir().join(format!("proteus-proxy-fast-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let summary = dir.join("summary.json");
    for full in [false, true] {
        let more: &[&str] = if full { &["--full-schema"] } else { &[] };
        let (child, url) = proxy_with(&mock.url, None, &summary, more);
        let _ = interop_client(&url);
        let (code, report) = stop(child, &summary);
        assert_eq!(code, 1, "{report:#}");
        let gaps: Vec<&str> = violations(&report)
            .into_iter()
            .filter(|w| w.contains("gap"))
            .collect();
        assert!(!gaps.is_empty(), "full schema {full}: {report:#}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_lost_delta_is_reported_live_in_the_summary_and_again_offline() {
    let mock = MockProcess::start(&["--fault", "drop-delta:3"]);
    let dir = std::env::temp_dir().join(format!("proteus-proxy-gap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (capture, summary) = (dir.join("capture.jsonl"), dir.join("summary.json"));
    let (child, url) = proxy(&mock.url, &capture, &summary);
    // The client's own checks fail too (it counts deltas); the proxy is judged here.
    let _ = interop_client(&url);
    let junit = dir.join("proxy.xml");
    let (code, summary) = stop(child, &summary);
    assert_eq!(code, 1, "{summary:#}");
    let whats = violations(&summary);
    assert!(
        whats.iter().any(|w| w.contains("gap")),
        "a gap is reported: {whats:?}"
    );
    let xml = std::fs::read_to_string(&junit).expect("the JUnit report");
    assert!(xml.contains("<failure") && xml.contains("gap"), "{xml}");
    let check = Command::new(env!("CARGO_BIN_EXE_proteus-conformance"))
        .arg("validate")
        .arg(&capture)
        .output()
        .expect("validate");
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL stream") && stdout.contains("gap"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_long_polling_client_is_checked_as_well() {
    let mock = MockProcess::start(&["--fault", "drop-delta:3"]);
    let dir = std::env::temp_dir().join(format!("proteus-proxy-poll-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (capture, summary) = (dir.join("capture.jsonl"), dir.join("summary.json"));
    let (child, url) = proxy(&mock.url, &capture, &summary);
    // The npm client on long-polling only: join, ask for a streamed reply,
    // wait for its done.
    let script = format!(
        r#"import {{ io }} from "socket.io-client";
const s = io("{url}", {{ auth: {{ token: "{ADA}" }}, transports: ["polling"], upgrade: false, reconnection: false }});
await new Promise((r) => s.once("success", r));
await s.emitWithAck("chat:join", {{ chatId: "682f4b313981b5f54e96ea4b" }});
const done = new Promise((r) => s.once("message:done", r));
await s.emitWithAck("message:send", {{ chatId: "682f4b313981b5f54e96ea4b", content: "by polling", streamResponse: true, state: {{ mock: {{ chunks: 6, chunkDelayMs: 5 }} }} }});
await done;
s.close();
"#
    );
    let out = Command::new("node")
        .current_dir(root().join("interop"))
        .args(["--input-type=module", "-e", &script])
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, summary) = stop(child, &summary);
    assert_eq!(code, 1, "{summary:#}");
    let whats = violations(&summary);
    assert!(
        whats.iter().any(|w| w.contains("gap")),
        "the gap, seen on polling: {whats:?}"
    );
    let text = std::fs::read_to_string(&capture).expect("capture");
    assert!(
        text.contains("message:delta"),
        "polling packets are captured"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A TLS front for `backend` (a plain TCP address) on a random loopback
/// port, with the test server certificate of tests/fixtures/tls; its port.
fn tls_front(backend: std::net::SocketAddr, rt: &tokio::runtime::Runtime) -> u16 {
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("cert.pem"))
        .expect("cert.pem")
        .collect::<Result<_, _>>()
        .expect("certificates");
    let key = PrivateKeyDer::from_pem_file(dir.join("key.pem")).expect("key.pem");
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server certificate");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    rt.spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                }
            });
        }
    });
    port
}

#[test]
fn an_https_upstream_is_relayed_over_verified_tls() {
    let mock = MockProcess::start(&[]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let backend: std::net::SocketAddr = mock
        .url
        .trim_start_matches("http://")
        .parse()
        .expect("the mock's address");
    let port = tls_front(backend, &rt);
    let upstream = format!("https://localhost:{port}");
    let ca = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls/ca.pem");
    let dir = std::env::temp_dir().join(format!("proteus-proxy-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (capture, summary) = (dir.join("capture.jsonl"), dir.join("summary.json"));

    // Trusting the test CA: the interop client works through the proxy,
    // WebSocket and REST, and only its deliberate malformed frame is named.
    let (child, url) = proxy_with(
        &upstream,
        Some(&capture),
        &summary,
        &["--upstream-ca", &ca.display().to_string()],
    );
    let out = interop_client(&url);
    assert!(
        out.status.success(),
        "the client failed through the proxy over TLS: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, report) = stop(child, &summary);
    assert_eq!(
        violations(&report),
        ["client→server event chat:join: does not match realtime/chat-join"],
        "{report:#}"
    );
    assert_eq!(code, 1);

    // Without the CA the certificate is not trusted: the relay refuses to
    // talk to the upstream rather than relaying unverified.
    let (child, url) = proxy_with(&upstream, Some(&capture), &summary, &[]);
    let status = chats_status(&url);
    assert_eq!(status, 502, "an untrusted upstream is a bad gateway");
    let _ = stop(child, &summary);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rest_answers_are_checked_against_their_routes_schema_live_and_offline() {
    const WELCOME: &str = "682f4b313981b5f54e96ea4b";
    const NADIA: &str = "thnv_u_nadia_0123456789abcdef0123456789ab";
    let mock = MockProcess::start(&["--fault", "no-meta", "--fault", "thenvoi-no-page-metadata"]);
    let dir = std::env::temp_dir().join(format!("proteus-proxy-routes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (capture, summary) = (dir.join("capture.jsonl"), dir.join("summary.json"));
    let (child, url) = proxy(&mock.url, &capture, &summary);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let http = reqwest::Client::new();
        for (path, header, token) in [
            (
                format!("/api/chats/{WELCOME}/messages"),
                "authorization",
                format!("Bearer {ADA}"),
            ),
            (
                "/api/chats".to_string(),
                "authorization",
                format!("Bearer {ADA}"),
            ),
            (
                "/api/v1/me/chats".to_string(),
                "x-api-key",
                NADIA.to_string(),
            ),
        ] {
            let r = http
                .get(format!("{url}{path}"))
                .header(header, token)
                .send()
                .await
                .expect("through the proxy");
            assert_eq!(r.status(), 200, "{path}");
        }
    });
    let (code, report) = stop(child, &summary);
    assert_eq!(code, 1);
    // The envelope of both pages is fine; their routes' schemas are not:
    // a ProteusAI page without meta, a Thenvoi list without metadata. The
    // clean chat list passes.
    assert_eq!(
        violations(&report),
        [
            "GET /api/chats/{id}/messages -> 200: the body breaks the route's schema",
            "GET /api/v1/me/chats -> 200: the body breaks the route's schema",
        ],
        "{report:#}"
    );
    let (failed, stdout) = validate_failures(&capture);
    assert_eq!(
        failed.len(),
        2,
        "offline, the same two answers fail: {stdout}"
    );
    assert!(
        failed[0].contains("GET /api/chats/{id}/messages 200"),
        "{stdout}"
    );
    assert!(failed[1].contains("GET /api/v1/me/chats 200"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn phoenix_client(url: &str) -> std::process::Output {
    Command::new("node")
        .current_dir(root().join("interop"))
        .args(["phoenix-client.mjs", url, "800"])
        .output()
        .expect("node runs")
}

#[test]
fn phoenix_frames_are_relayed_and_checked_live_and_offline() {
    let dir = std::env::temp_dir().join(format!("proteus-proxy-phx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (capture, summary) = (dir.join("capture.jsonl"), dir.join("summary.json"));

    // Clean: the npm phoenix client joins, heartbeats past the idle
    // timeout, gets its mention and leaves, through the proxy, and no
    // frame breaks a schema.
    let mock = MockProcess::start(&["--thenvoi-idle-timeout-ms", "800"]);
    let (child, url) = proxy(&mock.url, &capture, &summary);
    let out = phoenix_client(&url);
    assert!(
        out.status.success(),
        "the Phoenix client failed through the proxy: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, report) = stop(child, &summary);
    assert_eq!(violations(&report), Vec::<&str>::new(), "{report:#}");
    assert_eq!(code, 0);
    let text = std::fs::read_to_string(&capture).expect("capture");
    assert!(text.contains("\"kind\":\"phoenix\"") && text.contains("message_created"));
    assert!(
        text.contains("heartbeat"),
        "heartbeats are relayed and kept"
    );
    drop(mock);

    // Faulted: camelCase push payloads are named live, and again offline.
    let mock = MockProcess::start(&[
        "--thenvoi-idle-timeout-ms",
        "800",
        "--fault",
        "thenvoi-camel-case",
    ]);
    let (child, url) = proxy(&mock.url, &capture, &summary);
    let _ = phoenix_client(&url);
    let (code, report) = stop(child, &summary);
    let whats = violations(&report);
    assert!(
        !whats.is_empty()
            && whats.iter().all(|w| *w
                == "server→client Phoenix message_created: does not match thenvoi/events/message-created"),
        "{report:#}"
    );
    assert_eq!(code, 1);
    let (failed, stdout) = validate_failures(&capture);
    assert_eq!(
        failed.len(),
        whats.len(),
        "offline, the same frames fail: {stdout}"
    );
    assert!(
        failed
            .iter()
            .all(|l| l.contains("thenvoi/events/message-created")),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_client_gets_the_servers_frames_byte_for_byte() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    const WELCOME: &str = "682f4b313981b5f54e96ea4b";
    let mock = MockProcess::start(&[]);
    let dir = std::env::temp_dir().join(format!("proteus-proxy-bytes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (capture, summary) = (dir.join("capture.jsonl"), dir.join("summary.json"));
    let (child, url) = proxy(&mock.url, &capture, &summary);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let received: Vec<String> = rt.block_on(async {
        let ws_url = format!(
            "{}/socket.io/?EIO=4&transport=websocket",
            url.replace("http://", "ws://")
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(ws_url)
            .await
            .expect("through the proxy");
        let mut frames = Vec::new();
        let next = async |ws: &mut tokio_tungstenite::WebSocketStream<_>| loop {
            match tokio::time::timeout(std::time::Duration::from_secs(5), ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => return t.to_string(),
                Ok(Some(Ok(_))) => continue,
                other => panic!("the socket ended: {other:?}"),
            }
        };
        next(&mut ws).await; // the Engine.IO open packet
        ws.send(Message::text(format!("40{{\"token\":\"{ADA}\"}}")))
            .await
            .expect("connect");
        let state = r#"{"mock":{"chunks":5,"chunkDelayMs":5}}"#;
        let mut sent = false;
        loop {
            let t = next(&mut ws).await;
            if t.starts_with("42[\"success\"") && !sent {
                sent = true;
                ws.send(Message::text(format!(
                    r#"421["message:send",{{"chatId":"{WELCOME}","content":"bytes","streamResponse":true,"state":{state}}}]"#
                )))
                .await
                .expect("send");
            }
            let done = t.starts_with("42[\"message:done\"");
            frames.push(t);
            if done {
                break;
            }
        }
        frames
    });
    let (code, _) = stop(child, &summary);
    assert_eq!(code, 0);
    // What the mock sent, as it sent it (the journal keeps each payload's
    // exact text), against what the client got through the proxy.
    #[derive(serde::Deserialize)]
    struct Entry {
        event: String,
        detail: Detail,
    }
    #[derive(serde::Deserialize)]
    struct Detail {
        payload: Box<serde_json::value::RawValue>,
    }
    #[derive(serde::Deserialize)]
    struct Journal {
        data: Vec<Entry>,
    }
    let journal: Journal = rt.block_on(async {
        reqwest::get(format!(
            "{}/__admin/journal?kind=out&chatId={WELCOME}",
            mock.url
        ))
        .await
        .expect("journal")
        .json()
        .await
        .expect("JSON")
    });
    let sent: Vec<String> = journal
        .data
        .iter()
        .filter(|e| e.event.starts_with("message:"))
        .map(|e| format!("42[\"{}\",{}]", e.event, e.detail.payload.get()))
        .collect();
    let got: Vec<&String> = received
        .iter()
        .filter(|t| t.starts_with("42[\"message:"))
        .collect();
    assert!(sent.len() >= 6, "5 deltas and done: {sent:#?}");
    assert_eq!(
        got,
        sent.iter().collect::<Vec<_>>(),
        "byte for byte, in order"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Three sockets of one chat get the same stream: to the proxy that is three
/// clean copies (one per connection), not one stream seen three times, live
/// and in the capture checked offline.
#[test]
fn subscribers_of_one_stream_are_checked_each_on_its_own_connection() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    const WELCOME: &str = "682f4b313981b5f54e96ea4b";
    const SOCKETS: usize = 3;
    let mock = MockProcess::start(&[]);
    let dir = std::env::temp_dir().join(format!("proteus-proxy-fanout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (capture, summary) = (dir.join("capture.jsonl"), dir.join("summary.json"));
    let (child, url) = proxy(&mock.url, &capture, &summary);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dones = rt.block_on(async {
        let ws_url = format!(
            "{}/socket.io/?EIO=4&transport=websocket",
            url.replace("http://", "ws://")
        );
        type Ws = tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >;
        async fn until(ws: &mut Ws, prefix: &str) -> String {
            loop {
                match tokio::time::timeout(std::time::Duration::from_secs(5), ws.next()).await {
                    Ok(Some(Ok(Message::Text(t)))) if t.starts_with(prefix) => {
                        return t.to_string();
                    }
                    Ok(Some(Ok(_))) => continue,
                    other => panic!("no {prefix}: {other:?}"),
                }
            }
        }
        let mut sockets = Vec::new();
        for _ in 0..SOCKETS {
            let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url)
                .await
                .expect("through the proxy");
            ws.send(Message::text(format!("40{{\"token\":\"{ADA}\"}}")))
                .await
                .expect("connect");
            until(&mut ws, "42[\"success\"").await;
            ws.send(Message::text(format!(
                r#"420["chat:join",{{"chatId":"{WELCOME}"}}]"#
            )))
            .await
            .expect("join");
            until(&mut ws, "430").await;
            sockets.push(ws);
        }
        let state = r#"{"mock":{"chunks":8,"chunkDelayMs":2}}"#;
        sockets[0]
            .send(Message::text(format!(
                r#"421["message:send",{{"chatId":"{WELCOME}","content":"fan out","streamResponse":true,"state":{state}}}]"#
            )))
            .await
            .expect("send");
        let mut dones = 0;
        for ws in &mut sockets {
            until(ws, "42[\"message:done\"").await;
            dones += 1;
        }
        for mut ws in sockets {
            let _ = ws.close(None).await;
        }
        dones
    });
    assert_eq!(dones, SOCKETS);
    let (code, report) = stop(child, &summary);
    assert_eq!(violations(&report), Vec::<&str>::new(), "{report:#}");
    assert_eq!(code, 0);
    let (failures, stdout) = validate_failures(&capture);
    assert!(failures.is_empty(), "{stdout}");
    assert!(
        stdout.contains(&format!("streams: {SOCKETS} seen, {SOCKETS} complete")),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
