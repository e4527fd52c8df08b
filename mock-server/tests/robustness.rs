//! Bad input never crashes or stalls the server; the npm client interoperates;
//! the CLI refuses bad world files clearly; shutdown is graceful; a consumer
//! that stops reading is disconnected instead of losing packets silently.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::*;
use proptest::prelude::*;
use serde_json::{Value, json};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,12}".prop_map(Value::String),
        Just(json!(WELCOME)),
        Just(json!(STREAMER)),
        Just(json!("TEXT")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("chatId".to_string()),
                    Just("content".to_string()),
                    Just("participants".to_string()),
                    Just("recipients".to_string()),
                    Just("streamResponse".to_string()),
                    Just("state".to_string()),
                    Just("type".to_string()),
                    Just("key".to_string()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn random_payloads_always_get_an_answer_and_the_server_keeps_serving() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mock = rt.block_on(start());
    let http = Http::new(&mock);
    let sio = rt.block_on(async {
        let mut s = Sio::connect(&mock, ADA).await;
        s.next_named("success", 5).await;
        s
    });
    let config = ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(body in arb_json(), event in prop_oneof![Just("message:send"), Just("chat:join"), Just("chat:leave"), Just("nope")],
                        route in prop_oneof![Just("/api/chats"), Just("/api/messages"), Just("/api/agents"), Just("/api/repositories")])| {
        rt.block_on(async {
            // REST: some answer in the envelope (Http::send asserts it), never a 5xx.
            let reply = http.post(route, ADA, body.clone()).await;
            prop_assert!(reply.status < 500, "{route} {body} → {}", reply.status);
            // socket.io: an ack that is {data} or {error: {message}}.
            let ack = sio.ack(event, body.clone()).await;
            prop_assert!(ack.get("data").is_some() != ack.get("error").is_some(), "{event} {body} → {ack}");
            if ack.get("error").is_some() {
                assert_schema("realtime/ack-error", &ack);
            }
            Ok(())
        })?;
    });
    // Still serving after all of that.
    let after = rt.block_on(http.get(&format!("/api/chats/{WELCOME}"), ADA));
    assert_eq!(after.status, 200);
    rt.block_on(mock.stop()).expect("clean stop");
}

#[tokio::test]
async fn npm_socket_io_client_interoperates() {
    let mock = start().await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../interop");
    assert!(
        std::path::Path::new(dir)
            .join("node_modules/socket.io-client")
            .is_dir(),
        "interop/node_modules is missing: run `(cd interop && npm ci)` (the README's test command does)"
    );
    let url = mock.url();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("socketio-client.mjs")
            .arg(url)
            .current_dir(dir)
            .output()
    })
    .await
    .expect("join")
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "npm socket.io-client check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(seen["happy"]["deltas"], 12);
    assert_eq!(seen["badToken"]["reason"], "io server disconnect");
    mock.stop().await.expect("clean stop");
}

#[test]
fn a_malformed_world_file_is_refused_with_file_path_and_problem() {
    let dir = std::env::temp_dir().join(format!("proteus-world-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let mut world: Value = serde_json::from_str(proteus_mock::world::DEFAULT_WORLD).expect("json");
    world["chats"][0]["participants"][1]["type"] = json!("BOT");
    let file = dir.join("broken-world.json");
    std::fs::write(&file, serde_json::to_string_pretty(&world).expect("json")).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_proteus-mock"))
        .args(["--port", "0", "--world"])
        .arg(&file)
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("broken-world.json"), "names the file: {err}");
    assert!(
        err.contains("chats[0].participants[1].type"),
        "names the path: {err}"
    );
    assert!(err.contains("BOT"), "says the problem: {err}");

    world["chats"][0]["participants"][1]["type"] = json!("AGENT");
    world["chats"][0]["participants"][1]["id"] = json!("ffffffffffffffffffffffff");
    std::fs::write(&file, serde_json::to_string_pretty(&world).expect("json")).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_proteus-mock"))
        .args(["--port", "0", "--world"])
        .arg(&file)
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("chats[0].participants[1].id") && err.contains("does not exist"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_world_or_capture_file_past_256_mib_is_refused_naming_size_and_limit() {
    let dir = std::env::temp_dir().join(format!("proteus-big-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let file = dir.join("huge.json");
    // Sparse: 257 MiB long, no disk used.
    std::fs::File::create(&file)
        .and_then(|f| f.set_len(257 << 20))
        .expect("sparse file");
    for flag in ["--world", "--replay"] {
        let out = Command::new(env!("CARGO_BIN_EXE_proteus-mock"))
            .args(["--port", "0", flag])
            .arg(&file)
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag}: {err}");
        assert!(
            err.contains("huge.json") && err.contains("269484032 bytes") && err.contains("256 MiB"),
            "{flag}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_binary_prints_what_a_user_needs_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_proteus-mock"))
        .args(["--port", "0", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starts");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while stdout.read(&mut byte).expect("read") == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    let info: Value = serde_json::from_slice(&line).expect("one JSON line");
    assert!(
        info["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("http://127.0.0.1:"))
    );
    assert_eq!(info["users"][0]["token"], ADA);
    assert!(
        info["agents"]
            .as_array()
            .expect("agents")
            .iter()
            .any(|a| a["id"] == STREAMER)
    );
    // It serves.
    let addr = info["url"]
        .as_str()
        .expect("url")
        .trim_start_matches("http://")
        .to_string();
    let mut conn = TcpStream::connect(&addr).expect("connects");
    conn.write_all(b"GET /api/agents HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut resp = String::new();
    conn.read_to_string(&mut resp).expect("read");
    assert!(resp.starts_with("HTTP/1.1 401"), "{resp}");
    // SIGTERM: graceful exit with status 0.
    let pid = child.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "did not stop within 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn shutdown_finishes_in_flight_streams_before_closing() {
    let mock = start().await;
    let mut ada = Sio::connect(&mock, ADA).await;
    ada.next_named("success", 5).await;
    // A slow stream: 50 deltas, 100 ms apart (5 s if paced).
    ada.ack(
        "message:send",
        json!({"chatId": WELCOME, "content": "slow", "streamResponse": true,
        "state": {"mock": {"chunks": 50, "chunkDelayMs": 100, "firstChunkDelayMs": 0}}}),
    )
    .await;
    ada.next_named("message:delta", 5).await;
    let started = std::time::Instant::now();
    let stop = tokio::spawn(mock.stop());
    let mut deltas = 1;
    loop {
        let (event, _) = ada.next(5).await;
        match event.as_str() {
            "message:delta" => deltas += 1,
            "message:done" => break,
            "close" => panic!("closed before the stream finished ({deltas} deltas)"),
            _ => {}
        }
    }
    assert_eq!(deltas, 50, "every delta, then the done");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the rest of the stream was not paced"
    );
    stop.await.expect("join").expect("clean stop");
}

#[tokio::test]
async fn a_consumer_that_stops_reading_is_disconnected_not_silently_skipped() {
    use tokio::io::AsyncReadExt;
    let mock = proteus_mock::start(
        proteus_mock::world::World::default_world(),
        proteus_mock::Config {
            socket_buffer: 64,
            slow_consumer_grace: Duration::from_millis(500),
            ..proteus_mock::Config::default()
        },
    )
    .await
    .expect("starts");
    // A raw websocket client that joins the room and then never reads again.
    let mut ws = raw_ws::stalled_in_room(&mock, WELCOME).await;
    let mut buf = [0u8; 4096];
    // A reader in the same room that keeps up.
    let mut ada = Sio::connect(&mock, ADA).await;
    ada.next_named("success", 5).await;
    ada.ack(
        "message:send",
        json!({"chatId": WELCOME, "content": "flood", "streamResponse": true,
        "state": {"mock": {"chunks": 3000, "chunkDelayMs": 0, "text": "x"}}}),
    )
    .await;
    let mut deltas = 0;
    loop {
        let (event, _) = ada.next(30).await;
        match event.as_str() {
            "message:delta" => deltas += 1,
            "message:done" => break,
            _ => {}
        }
    }
    assert_eq!(
        deltas, 3000,
        "the reader that keeps up gets the whole stream"
    );
    // The stalled socket was cut off: its TCP connection ends once we drain it.
    let mut total = 0usize;
    // Cut at once (the grace period), not at the next heartbeat 25 s later.
    let closed = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match ws.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(n) => total += n,
            }
        }
    })
    .await
    .unwrap_or(false);
    assert!(
        closed,
        "the slow consumer was not disconnected (read {total} bytes)"
    );
    // The stats show the back-pressure and its outcome.
    let stats: Value = reqwest::get(format!("{}/__admin/stats", mock.url()))
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    let d = &stats["data"];
    assert_eq!(d["slowConsumersDisconnected"], 1, "{stats}");
    assert_eq!(d["socketBuffer"]["capacity"], 64, "{stats}");
    assert!(
        d["socketBuffer"]["fullEvents"].as_u64() >= Some(1)
            && d["socketBuffer"]["maxSocketsFullAtOnce"] == 1
            && d["socketBuffer"]["longestWaitMs"].as_f64() >= Some(450.0),
        "one socket met a full buffer and was waited for about the grace period: {stats}"
    );
    mock.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_slow_consumer_is_cut_and_counted_once_however_many_streams_wait_on_it() {
    let mock = proteus_mock::start(
        proteus_mock::world::World::default_world(),
        proteus_mock::Config {
            socket_buffer: 64,
            slow_consumer_grace: Duration::from_millis(500),
            ..proteus_mock::Config::default()
        },
    )
    .await
    .expect("starts");
    let _ws = raw_ws::stalled_in_room(&mock, WELCOME).await;
    // Sent over REST, so that no reader of the test's own is in the room
    // (a reader of its own could be cut too on a loaded machine).
    let http = Http::new(&mock);
    for i in 0..4 {
        let r = http
            .post(
                "/api/messages",
                ADA,
                json!({"chatId": WELCOME, "content": format!("flood {i}"), "streamResponse": true,
                "state": {"mock": {"chunks": 2000, "chunkDelayMs": 0, "text": "x"}}}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    // Wait for the four replies to end.
    for _ in 0..300 {
        let stats: Value = reqwest::get(format!("{}/__admin/stats", mock.url()))
            .await
            .expect("stats")
            .json()
            .await
            .expect("json");
        if stats["data"]["activeReplies"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats: Value = reqwest::get(format!("{}/__admin/stats", mock.url()))
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    let d = &stats["data"];
    assert_eq!(
        d["slowConsumersDisconnected"], 1,
        "one socket, one cut: {stats}"
    );
    mock.stop().await.expect("clean stop");
}

#[tokio::test]
async fn an_ack_that_does_not_fit_cuts_the_socket_instead_of_vanishing() {
    use proteus_conformance::client::{Client, ClientError, Frame};
    // A small buffer and a long grace: events wait for the client to read
    // again; an ack cannot wait (socketioxide takes it now or never).
    let mock = proteus_mock::start(
        proteus_mock::world::World::default_world(),
        proteus_mock::Config {
            socket_buffer: 64,
            slow_consumer_grace: Duration::from_secs(10),
            ..proteus_mock::Config::default()
        },
    )
    .await
    .expect("starts");
    let mut c = Client::connect(&mock.url(), &json!({"token": ADA}))
        .await
        .expect("connects");
    while !matches!(c.next_frame().await.expect("frame"), Frame::Event { ref name, .. } if name == "success")
    {
    }
    // A burst of sends (each owes an ack, and brings the message and its
    // CHAT_MESSAGE_ADDED back to the sender) while this client reads
    // nothing for 1.5 s.
    const SENDS: u64 = 2_000;
    let mut closed = false;
    for _ in 0..SENDS {
        if c.emit_with_ack("message:send", &json!({"chatId": WELCOME, "content": "hi"}))
            .await
            .is_err()
        {
            closed = true;
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut acks = 0u64;
    while !closed {
        match c
            .next_frame_within(Duration::from_secs(5), "more frames")
            .await
        {
            Ok(Frame::Ack { .. }) => acks += 1,
            Ok(_) => {}
            Err(ClientError::Timeout(..)) => break,
            Err(_) => closed = true,
        }
    }
    assert!(
        acks == SENDS || closed,
        "{acks} of {SENDS} acks arrived and the connection stayed open: acks were dropped in silence"
    );
    mock.stop().await.expect("clean stop");
}

/// Posts large plain messages into the welcome chat until the mock has cut
/// a slow consumer (or 40 MB went out); the stats at the end.
async fn flood_until_cut(mock: &proteus_mock::Running) -> Value {
    let http = Http::new(mock);
    let text = "x".repeat(256 * 1024);
    let mut stats = Value::Null;
    for _ in 0..160 {
        let r = http
            .post(
                "/api/messages",
                ADA,
                json!({"chatId": WELCOME, "content": text, "state": {"mock": {"text": "ok"}}}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        stats = reqwest::get(format!("{}/__admin/stats", mock.url()))
            .await
            .expect("stats")
            .json()
            .await
            .expect("json");
        if stats["data"]["slowConsumersDisconnected"] == 1 {
            break;
        }
    }
    stats
}

/// The bytes a paused socket may hold are bounded, not only its packets:
/// a few hundred large messages are far below the packet bound.
async fn a_paused_socket_is_cut_at_the_byte_bound(upgraded: bool) {
    let mock = proteus_mock::start(
        proteus_mock::world::World::default_world(),
        proteus_mock::Config {
            socket_buffer_bytes: 1 << 20,
            slow_consumer_grace: Duration::from_millis(300),
            ..proteus_mock::Config::default()
        },
    )
    .await
    .expect("starts");
    let _ws = if upgraded {
        raw_ws::upgraded_stalled_in_room(&mock, WELCOME).await
    } else {
        raw_ws::stalled_in_room(&mock, WELCOME).await
    };
    let stats = flood_until_cut(&mock).await;
    let d = &stats["data"];
    assert_eq!(
        d["slowConsumersDisconnected"], 1,
        "the paused socket was not cut: {stats}"
    );
    assert_eq!(d["socketBuffer"]["capacityBytes"], 1 << 20, "{stats}");
    let most = d["socketBuffer"]["mostBytesHeld"].as_u64().unwrap_or(0);
    assert!(
        most > 1 << 20 && most < (1 << 20) + 2 * 256 * 1024 + 1024,
        "held at most the bound plus the packet that crossed it: {stats}"
    );
    mock.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_paused_websocket_is_cut_when_it_holds_too_many_bytes() {
    a_paused_socket_is_cut_at_the_byte_bound(false).await;
}

#[tokio::test]
async fn a_paused_socket_upgraded_from_polling_is_cut_when_it_holds_too_many_bytes() {
    a_paused_socket_is_cut_at_the_byte_bound(true).await;
}
