//! The mock's own Thenvoi surface, beyond what the `thenvoi.*` conformance
//! cases check of any implementation: the journal holds Phoenix frames and
//! Thenvoi REST calls in the one timeline, a reset closes Phoenix sockets,
//! the control plane deletes a room, the scripted peers play the whole
//! lifecycle, a lagging socket gets every push whole and in order, and a
//! world file with a bad Thenvoi part is refused by path.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use proteus_mock::world::World;
use proteus_mock::{Config, Running};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const ROOM: &str = "0c4a7b00-0000-4000-8000-000000000001";
const NADIA: &str = "thnv_u_nadia_0123456789abcdef0123456789ab";
const HELPER_KEY: &str = "thnv_a_helper_0123456789abcdef0123456789ab";
const ECHO: &str = "a9e17000-0000-4000-8000-000000000001";
const FLAKY: &str = "a9e17000-0000-4000-8000-000000000002";

async fn start() -> Running {
    start_with(Config::default()).await
}

async fn start_with(config: Config) -> Running {
    proteus_mock::start(World::default_world(), config)
        .await
        .expect("mock starts")
}

/// The id of Helper, an agent of the room that no script plays.
async fn helper_id(mock: &Running) -> String {
    let helper = get(mock, "/api/v1/agent/me", HELPER_KEY).await;
    helper["data"]["id"]
        .as_str()
        .expect("Helper's id")
        .to_string()
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn socket(mock: &Running, key: &str) -> Ws {
    let url = format!(
        "ws://{}/api/v1/socket/websocket?vsn=2.0.0&api_key={key}",
        mock.addr
    );
    tokio_tungstenite::connect_async(url)
        .await
        .expect("upgrade")
        .0
}

/// A socket whose receive buffer is 4 KiB: what it does not read soon
/// waits in the mock rather than in the kernel.
async fn small_buffer_socket(mock: &Running, key: &str) -> Ws {
    let tcp = tokio::net::TcpSocket::new_v4().expect("socket");
    tcp.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let tcp = tcp.connect(mock.addr).await.expect("connect");
    let url = format!(
        "ws://{}/api/v1/socket/websocket?vsn=2.0.0&api_key={key}",
        mock.addr
    );
    tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(tcp))
        .await
        .expect("upgrade")
        .0
}

/// The next text frame as JSON, or `None` when the socket closed or went quiet.
async fn next(ws: &mut Ws) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(3), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).ok(),
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) | Err(_) => {
                return None;
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Whether the server closes the socket within 3 s (a quiet open socket is not).
async fn closed(ws: &mut Ws) -> bool {
    loop {
        match tokio::time::timeout(Duration::from_secs(3), ws.next()).await {
            Err(_) => return false,
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => return true,
            Ok(Some(Ok(_))) => {}
        }
    }
}

async fn join(ws: &mut Ws, topic: &str) -> Value {
    ws.send(Message::text(
        json!(["1", "1", topic, "phx_join", {}]).to_string(),
    ))
    .await
    .expect("send");
    next(ws).await.expect("a join reply")
}

async fn post(mock: &Running, path: &str, key: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", mock.url()))
        .header("x-api-key", key)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get(mock: &Running, path: &str, key: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{}{path}", mock.url()))
        .header("x-api-key", key)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

fn mention(content: &str, id: &str) -> Value {
    json!({ "message": { "content": content, "mentions": [{ "id": id }] } })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_journal_holds_phoenix_frames_and_thenvoi_rest_calls_in_one_timeline() {
    let mock = start().await;
    let mut ws = socket(&mock, HELPER_KEY).await;
    let reply = join(&mut ws, &format!("chat_room:{ROOM}")).await;
    assert_eq!(reply[4]["status"], "ok", "{reply}");
    let path = format!("/api/v1/me/chats/{ROOM}/messages");
    let helper = "a9e17000-0000-4000-8000-000000000003";
    assert_eq!(
        post(&mock, &path, NADIA, mention("for Helper", helper))
            .await
            .0,
        201
    );
    let push = next(&mut ws).await.expect("the push");
    assert_eq!(push[0], "1", "a push carries its join's join_ref: {push}");
    let journal: Value = reqwest::get(format!("{}/__admin/journal", mock.url()))
        .await
        .expect("journal")
        .json()
        .await
        .expect("json");
    let entries = journal["data"]["entries"]
        .as_array()
        .or_else(|| journal["data"].as_array())
        .cloned()
        .unwrap_or_default();
    let kinds: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or_default().to_string(),
                e["event"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let at = |kind: &str, event: &str| {
        kinds
            .iter()
            .position(|(k, e)| k == kind && e == event)
            .unwrap_or_else(|| panic!("no {kind} {event:?} in the journal: {kinds:?}"))
    };
    let (connect, joined, rest, pushed) = (
        at("connect", ""),
        at("in", "phx_join"),
        at("rest", ""),
        at("out", "message_created"),
    );
    assert!(connect < joined && joined < pushed, "{kinds:?}");
    assert!(rest < entries.len());
    let out = &entries[pushed];
    assert_eq!(out["chatId"], ROOM);
    assert_eq!(out["detail"]["agents"], json!([helper]));
    mock.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reset_closes_phoenix_sockets_and_an_admin_delete_pushes_room_deleted() {
    let mock = start().await;
    let mut ws = socket(&mock, NADIA).await;
    let reply = join(&mut ws, &format!("room_participants:{ROOM}")).await;
    assert_eq!(reply[4]["status"], "ok", "{reply}");
    let deleted = reqwest::Client::new()
        .delete(format!("{}/__admin/thenvoi/rooms/{ROOM}", mock.url()))
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status().as_u16(), 200);
    let push = next(&mut ws).await.expect("room_deleted");
    assert_eq!(push[3], "room_deleted", "{push}");
    assert_eq!(push[4]["id"], ROOM);
    let gone = get(&mock, &format!("/api/v1/me/chats/{ROOM}"), NADIA).await;
    assert_eq!(gone["error"]["code"], "not_found", "{gone}");
    let reset = reqwest::Client::new()
        .post(format!("{}/__admin/reset", mock.url()))
        .send()
        .await
        .expect("reset");
    assert_eq!(reset.status().as_u16(), 200);
    assert!(closed(&mut ws).await, "the socket is closed by the reset");
    let back = get(&mock, &format!("/api/v1/me/chats/{ROOM}"), NADIA).await;
    assert_eq!(
        back["data"]["id"], ROOM,
        "the reset brought the room back: {back}"
    );
    mock.stop().await.expect("clean stop");
}

/// The agent's delivery record of `mid`, read as the agent would.
async fn record(mock: &Running, key: &str, mid: &str) -> Value {
    let all = get(
        mock,
        &format!("/api/v1/agent/chats/{ROOM}/messages?status=all"),
        key,
    )
    .await;
    all["data"]
        .as_array()
        .and_then(|d| d.iter().find(|m| m["id"] == mid))
        .map(|m| m["metadata"].clone())
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_scripted_peers_claim_answer_and_finish_flaky_on_its_second_attempt() {
    let mock = start().await;
    let path = format!("/api/v1/me/chats/{ROOM}/messages");
    let (_, echo) = post(&mock, &path, NADIA, mention("ping", ECHO)).await;
    let (_, flaky) = post(&mock, &path, NADIA, mention("ping flaky", FLAKY)).await;
    let (echo_id, flaky_id) = (
        echo["data"]["id"].as_str().expect("id").to_string(),
        flaky["data"]["id"].as_str().expect("id").to_string(),
    );
    let echo_key = "thnv_a_echo_0123456789abcdef0123456789ab";
    let flaky_key = "thnv_a_flaky_0123456789abcdef0123456789ab";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (e, f) = (
            record(&mock, echo_key, &echo_id).await,
            record(&mock, flaky_key, &flaky_id).await,
        );
        if e["status"] == "processed" && f["status"] == "processed" {
            assert_eq!(e["attempts"].as_array().map(Vec::len), Some(1), "{e}");
            let attempts = f["attempts"].as_array().cloned().unwrap_or_default();
            assert_eq!(attempts.len(), 2, "{f}");
            assert_eq!(attempts[0]["status"], "failed");
            assert_eq!(attempts[1]["status"], "success");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not processed: {e} {f}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let history = get(&mock, &format!("{path}?page_size=10"), NADIA).await;
    let texts: Vec<&str> = history["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert!(
        texts.contains(&"echo: ping") && texts.contains(&"echo: ping flaky"),
        "{texts:?}"
    );
    mock.stop().await.expect("clean stop");
}

#[test]
fn a_world_with_a_bad_thenvoi_part_is_refused_with_its_path() {
    let mut world: Value = serde_json::from_str(proteus_mock::world::DEFAULT_WORLD).expect("json");
    world["thenvoi"]["rooms"][0]["participants"][1]["id"] =
        json!("a9e17000-0000-4000-8000-0000000000ff");
    let e = World::parse("w.json", &world.to_string()).expect_err("refused");
    assert_eq!(
        e.to_string(),
        "w.json: at thenvoi.rooms[0].participants[1].id: a9e17000-0000-4000-8000-0000000000ff does not exist in this world"
    );
    world["thenvoi"]["rooms"][0]["participants"][1]["id"] = json!("NOT-A-UUID");
    world["thenvoi"]["agents"][0]["id"] = json!("NOT-A-UUID");
    let e = World::parse("w.json", &world.to_string()).expect_err("refused");
    assert!(e.to_string().contains("thenvoi.agents[0].id"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_count_phoenix_sockets_and_pushes() {
    let mock = start().await;
    let stats = |mock: &Running| {
        let url = format!("{}/__admin/stats", mock.url());
        async move {
            let v: Value = reqwest::get(url)
                .await
                .expect("stats")
                .json()
                .await
                .expect("json");
            v["data"]["thenvoi"].clone()
        }
    };
    let before = stats(&mock).await;
    assert_eq!(before["sockets"], 0, "{before}");
    let mut ws = socket(&mock, NADIA).await;
    join(&mut ws, &format!("chat_room:{ROOM}")).await;
    let path = format!("/api/v1/me/chats/{ROOM}/messages");
    assert_eq!(
        post(&mock, &path, NADIA, mention("count me", ECHO)).await.0,
        201
    );
    next(&mut ws).await.expect("the push");
    let after = stats(&mock).await;
    assert_eq!(after["sockets"], 1, "{after}");
    assert!(
        after["pushes"].as_u64() >= Some(1) && after["framesPushed"].as_u64() >= Some(1),
        "{after}"
    );
    assert!(
        after["messages"].as_u64() > before["messages"].as_u64(),
        "{after}"
    );
    mock.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_phoenix_socket_is_cut_when_it_has_too_many_bytes_queued() {
    let mock = start_with(Config {
        socket_buffer_bytes: 1 << 20,
        ..Config::default()
    })
    .await;
    let mut ws = socket(&mock, NADIA).await;
    join(&mut ws, &format!("chat_room:{ROOM}")).await;
    // Nadia stops reading; 256 KiB messages mentioning nobody scripted.
    let path = format!("/api/v1/me/chats/{ROOM}/messages");
    let helper = helper_id(&mock).await;
    let text = "x".repeat(256 * 1024);
    let mut cut = Value::Null;
    for _ in 0..160 {
        let (status, body) = post(&mock, &path, NADIA, mention(&text, &helper)).await;
        assert_eq!(status, 201, "{body}");
        let stats: Value = reqwest::get(format!("{}/__admin/stats", mock.url()))
            .await
            .expect("stats")
            .json()
            .await
            .expect("json");
        cut = stats["data"]["thenvoi"]["slowConsumersCut"].clone();
        if cut == 1 {
            break;
        }
    }
    assert_eq!(
        cut, 1,
        "160 messages of 256 KiB and the paused socket was not cut"
    );
    // What was queued still arrives, then the close says why.
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => {}
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(code, Some(1008));
    mock.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn pushes_from_many_senders_and_replies_reach_a_lagging_socket_whole_and_in_order() {
    // Pushes are written to the socket by whichever request sends them,
    // replies by the socket's own task, and what the kernel does not take
    // is kept in between: eight senders at once, heartbeats meanwhile, and
    // a reader that lags far behind (megabytes kept by the mock, checked)
    // must still get every frame whole (the client's WebSocket layer fails
    // on a garbled one), each sender's messages in its order, and every
    // heartbeat answered. (The exact rule, that nothing is written before
    // kept bytes, is tested on the write side itself: `wire.rs`.)
    const SENDERS: usize = 8;
    const EACH: usize = 30;
    let mock = start_with(Config {
        socket_buffer_bytes: 64 << 20,
        ..Config::default()
    })
    .await;
    // A small receive buffer, so that most of the ~16 MB waits in the mock.
    let mut ws = small_buffer_socket(&mock, NADIA).await;
    join(&mut ws, &format!("chat_room:{ROOM}")).await;
    let helper = helper_id(&mock).await;
    let (mut sink, mut stream) = ws.split();
    // The reader takes a frame every few milliseconds while the senders
    // run (the socket drains a little at a time, so written and kept frames
    // race), then reads the rest at full speed.
    let lagging = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let reader = {
        let lagging = lagging.clone();
        tokio::spawn(async move {
            let mut next_of = [0usize; SENDERS];
            let mut heartbeats = 0;
            while next_of.iter().sum::<usize>() < SENDERS * EACH || heartbeats < 20 {
                let frame = match tokio::time::timeout(Duration::from_secs(5), stream.next()).await
                {
                    Ok(Some(Ok(Message::Text(t)))) => t,
                    Ok(Some(Ok(_))) => continue,
                    other => panic!(
                        "the socket ended early ({other:?}); got {next_of:?} and {heartbeats} heartbeat replies"
                    ),
                };
                let v: Value = serde_json::from_str(&frame).expect("every frame is whole JSON");
                match v[3].as_str() {
                    Some("phx_reply") if v[2] == "phoenix" => heartbeats += 1,
                    Some("message_created") => {
                        let content = v[4]["content"].as_str().expect("content");
                        let mut words = content.split(' ');
                        let s: usize = words.next().and_then(|w| w.parse().ok()).expect("sender");
                        let i: usize = words.next().and_then(|w| w.parse().ok()).expect("index");
                        assert_eq!(i, next_of[s], "sender {s}'s messages out of order");
                        assert_eq!(words.next().map(str::len), Some(64 * 1024), "content whole");
                        next_of[s] += 1;
                    }
                    _ => panic!("unexpected frame {v}"),
                }
                if lagging.load(std::sync::atomic::Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(4)).await;
                }
            }
        })
    };
    let path = format!("/api/v1/me/chats/{ROOM}/messages");
    let padding = "p".repeat(64 * 1024);
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let (url, path, helper, padding) =
                (mock.url(), path.clone(), helper.clone(), padding.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                for i in 0..EACH {
                    let body = mention(&format!("{s} {i} {padding}"), &helper);
                    let r = client
                        .post(format!("{url}{path}"))
                        .header("x-api-key", NADIA)
                        .json(&body)
                        .send()
                        .await
                        .expect("request");
                    assert_eq!(r.status().as_u16(), 201, "sender {s}, message {i}");
                }
            })
        })
        .collect();
    for n in 0..20 {
        let hb = json!([null, format!("hb{n}"), "phoenix", "heartbeat", {}]);
        sink.send(Message::text(hb.to_string()))
            .await
            .expect("heartbeat");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for s in senders {
        s.await.expect("a sender");
    }
    // The lag is real: the mock holds bytes the kernel did not take.
    let connections: Value = reqwest::get(format!("{}/__admin/connections", mock.url()))
        .await
        .expect("connections")
        .json()
        .await
        .expect("json");
    let unsent = connections["data"][0]["bytesUnsent"].as_u64().unwrap_or(0);
    assert!(unsent > 1 << 20, "{connections}");
    lagging.store(false, std::sync::atomic::Ordering::Relaxed);
    reader.await.expect("every frame read, in order");
    mock.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_that_is_not_a_websocket_handshake_gets_400_naming_what_is_missing() {
    let mock = start().await;
    let url = format!(
        "{}/api/v1/socket/websocket?vsn=2.0.0&api_key={NADIA}",
        mock.url()
    );
    let client = reqwest::Client::new();
    let ws_headers = [
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    for (leave_out, version, problem) in [
        (
            "connection",
            "13",
            "Connection header did not include 'upgrade'",
        ),
        (
            "upgrade",
            "13",
            "`Upgrade` header did not include 'websocket'",
        ),
        (
            "sec-websocket-key",
            "13",
            "`Sec-WebSocket-Key` header missing",
        ),
        (
            "",
            "8",
            "`Sec-WebSocket-Version` header did not include '13'",
        ),
    ] {
        let mut request = client.get(&url).header("sec-websocket-version", version);
        for (name, value) in ws_headers {
            if name != leave_out {
                request = request.header(name, value);
            }
        }
        let r = request.send().await.expect("an answer");
        assert_eq!(r.status().as_u16(), 400, "without {leave_out:?}");
        let body = r.text().await.expect("body");
        assert!(
            body.contains(problem) && body.contains("connect with a WebSocket client"),
            "{body}"
        );
    }
    // The handshake itself answers with the key's accept value (RFC 6455's
    // own example).
    let mut request = client.get(&url).header("sec-websocket-version", "13");
    for (name, value) in ws_headers {
        request = request.header(name, value);
    }
    let r = request.send().await.expect("an answer");
    assert_eq!(r.status().as_u16(), 101);
    assert_eq!(
        r.headers()["sec-websocket-accept"],
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    mock.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_room_past_its_history_bound_forgets_its_oldest_messages_and_counts_them() {
    let mock = start_with(Config {
        history: 3,
        ..Config::default()
    })
    .await;
    let helper = helper_id(&mock).await;
    let path = format!("/api/v1/me/chats/{ROOM}/messages");
    let before = get(&mock, &path, NADIA).await["data"]
        .as_array()
        .map_or(0, Vec::len);
    let mut ids = Vec::new();
    for i in 0..5 {
        let (status, body) = post(&mock, &path, NADIA, mention(&format!("m{i}"), &helper)).await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["data"]["id"].as_str().expect("id").to_string());
    }
    // Past the bound, storing a message forgets the oldest (the world's
    // included): the room keeps its latest three.
    let mut kept: Vec<String> = get(&mock, &path, NADIA).await["data"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|m| m["content"].as_str().map(str::to_string))
        .collect();
    kept.sort();
    assert_eq!(kept, ["m2", "m3", "m4"]);
    // A lifecycle call on a forgotten message is a 404; on a kept one it works.
    let claim = |id: &str| format!("/api/v1/agent/chats/{ROOM}/messages/{id}/processing");
    let (status, body) = post(&mock, &claim(&ids[1]), HELPER_KEY, json!({})).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = post(&mock, &claim(&ids[4]), HELPER_KEY, json!({})).await;
    assert_eq!(status, 200, "{body}");
    let stats: Value = reqwest::get(format!("{}/__admin/stats", mock.url()))
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    assert_eq!(
        stats["data"]["thenvoi"]["messagesForgotten"].as_u64(),
        Some((before + 5 - 3) as u64),
        "{stats}"
    );
    mock.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_closes_gets_the_closing_handshake_answered() {
    let mock = start().await;
    let mut ws = socket(&mock, NADIA).await;
    join(&mut ws, &format!("chat_room:{ROOM}")).await;
    ws.send(Message::Close(None)).await.expect("close sent");
    let answer = tokio::time::timeout(Duration::from_secs(3), ws.next())
        .await
        .expect("an answer within 3 s");
    assert!(
        matches!(answer, Some(Ok(Message::Close(_)))),
        "the server answers the close with its own: {answer:?}"
    );
    mock.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_pings_and_never_reads_is_cut_as_a_slow_consumer() {
    // Its pongs pile up like pushes would: the bound holds for them too.
    let mock = start_with(Config {
        socket_buffer_bytes: 64 * 1024,
        ..Config::default()
    })
    .await;
    let ws = small_buffer_socket(&mock, NADIA).await;
    let (mut sink, _unread) = ws.split();
    let stats = format!("{}/__admin/stats", mock.url());
    let payload = vec![b'p'; 125];
    let started = std::time::Instant::now();
    let cut = loop {
        for _ in 0..500 {
            if sink
                .send(Message::Ping(payload.clone().into()))
                .await
                .is_err()
            {
                break;
            }
        }
        let v: Value = reqwest::get(&stats)
            .await
            .expect("stats")
            .json()
            .await
            .expect("json");
        let cut = v["data"]["thenvoi"]["slowConsumersCut"].as_u64();
        if cut == Some(1) || started.elapsed() > Duration::from_secs(20) {
            break cut;
        }
    };
    assert_eq!(cut, Some(1), "a socket that never reads its pongs is cut");
    mock.stop().await.expect("clean stop");
}
