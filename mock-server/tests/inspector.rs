//! What the inspector page stands on, through the control plane: the page
//! and its files come from the binary, live sockets of both protocols are
//! listed and can be disconnected, and the journal keeps each emitted
//! payload (so the page can show a reply growing).

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const ROOM: &str = "0c4a7b00-0000-4000-8000-000000000001";
const NADIA: &str = "thnv_u_nadia_0123456789abcdef0123456789ab";

async fn admin(mock: &proteus_mock::Running, method: reqwest::Method, path: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .request(method, format!("{}{path}", mock.url()))
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_and_its_files_are_served_from_the_binary() {
    let mock = start().await;
    let http = reqwest::Client::new();
    let page = http
        .get(format!("{}/__admin/ui", mock.url()))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200);
    let kind = page.headers()["content-type"]
        .to_str()
        .unwrap_or_default()
        .to_string();
    assert!(kind.starts_with("text/html"), "{kind}");
    let html = page.text().await.expect("html");
    assert!(
        html.contains("app.js") && html.contains("style.css"),
        "the page loads its files"
    );
    for (file, kind) in [("app.js", "text/javascript"), ("style.css", "text/css")] {
        let r = http
            .get(format!("{}/__admin/ui/{file}", mock.url()))
            .send()
            .await
            .expect("asset");
        assert_eq!(r.status(), 200, "{file}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap_or_default()
                .starts_with(kind)
        );
        assert!(!r.text().await.expect("body").is_empty(), "{file} is empty");
    }
    let (status, body) = admin(&mock, reqwest::Method::GET, "/__admin/ui/secrets.txt").await;
    assert_eq!(status, 404);
    assert_eq!(body["ok"], false, "{body}");
    mock.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn live_sockets_of_both_protocols_are_listed_and_can_be_disconnected() {
    let mock = start().await;
    let mut sio = Sio::connect(&mock, ADA).await;
    sio.next_named("success", 5).await;
    let joined = sio.ack("chat:join", json!({"chatId": WELCOME})).await;
    assert_eq!(joined["data"]["chatId"], WELCOME, "{joined}");
    let url = format!(
        "ws://{}/api/v1/socket/websocket?vsn=2.0.0&api_key={NADIA}",
        mock.addr
    );
    let (mut phx, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("phoenix");
    let topic = format!("chat_room:{ROOM}");
    phx.send(Message::text(
        json!(["1", "1", topic, "phx_join", {}]).to_string(),
    ))
    .await
    .expect("join");
    let _reply = tokio::time::timeout(Duration::from_secs(3), phx.next()).await;

    let (status, list) = admin(&mock, reqwest::Method::GET, "/__admin/connections").await;
    assert_eq!(status, 200, "{list}");
    let rows = list["data"].as_array().expect("a list");
    assert_eq!(rows.len(), 2, "{list}");
    let sio_row = rows
        .iter()
        .find(|r| r["protocol"] == "socket.io")
        .expect("the socket.io socket");
    assert_eq!(sio_row["transport"], "websocket");
    assert_eq!(sio_row["entity"]["name"], "Ada Lovelace", "{sio_row}");
    assert_eq!(sio_row["rooms"], json!([WELCOME]));
    assert!(
        sio_row["connectedAt"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    let phx_row = rows
        .iter()
        .find(|r| r["protocol"] == "phoenix")
        .expect("the Phoenix socket");
    assert_eq!(phx_row["rooms"], json!([topic]));
    assert_eq!(phx_row["entity"]["type"], "user", "{phx_row}");

    let sid = sio_row["id"].as_str().expect("id");
    let (status, body) = admin(
        &mock,
        reqwest::Method::DELETE,
        &format!("/__admin/connections/{sid}"),
    )
    .await;
    assert_eq!(
        (status, body["data"]["disconnected"].clone()),
        (200, json!(true)),
        "{body}"
    );
    sio.next_named("close", 5).await;
    let phx_id = phx_row["id"].as_str().expect("id");
    let (status, _) = admin(
        &mock,
        reqwest::Method::DELETE,
        &format!("/__admin/connections/{phx_id}"),
    )
    .await;
    assert_eq!(status, 200);
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match phx.next().await {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the Phoenix socket was not closed");
    let (status, body) = admin(
        &mock,
        reqwest::Method::DELETE,
        &format!("/__admin/connections/{sid}"),
    )
    .await;
    assert_eq!(status, 404, "a gone socket: {body}");
    mock.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_journal_keeps_each_emitted_payload_and_the_fault_catalogue_is_listed() {
    let mock = start().await;
    let mut sio = Sio::connect(&mock, ADA).await;
    sio.next_named("success", 5).await;
    sio.ack("chat:join", json!({"chatId": WELCOME})).await;
    let http = Http::new(&mock);
    let r = http
        .post(
            "/api/messages",
            ADA,
            json!({"chatId": WELCOME, "content": "in the journal"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    sio.next_named("message", 5).await;
    let (_, journal) = admin(
        &mock,
        reqwest::Method::GET,
        &format!("/__admin/journal?kind=out&event=message&chatId={WELCOME}"),
    )
    .await;
    let entry = &journal["data"][0];
    assert_eq!(
        entry["detail"]["payload"]["content"], "in the journal",
        "{journal}"
    );
    assert_schema("admin/journal-entry", entry);

    let (status, catalogue) = admin(&mock, reqwest::Method::GET, "/__admin/faults/catalogue").await;
    assert_eq!(status, 200);
    let rows = catalogue["data"].as_array().expect("rows");
    let drop = rows
        .iter()
        .find(|r| r["name"] == "drop-delta")
        .expect("drop-delta");
    assert_eq!(drop["usage"], "drop-delta:N");
    assert!(drop["description"].as_str().is_some_and(|d| !d.is_empty()));
    let listed = std::process::Command::new(env!("CARGO_BIN_EXE_proteus-mock"))
        .arg("--list-faults")
        .output()
        .expect("--list-faults");
    let listed = String::from_utf8_lossy(&listed.stdout);
    for row in rows {
        let usage = row["usage"].as_str().expect("usage");
        assert!(
            listed.contains(usage),
            "{usage} is in the catalogue but not in --list-faults"
        );
    }
    assert_eq!(
        rows.len(),
        listed
            .lines()
            .filter(|l| rows
                .iter()
                .any(|r| l.starts_with(r["usage"].as_str().unwrap_or(""))))
            .count(),
        "one catalogue row per fault the CLI lists"
    );
    mock.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn deltas_of_a_faulted_stream_keep_their_stream_and_number_in_the_journal() {
    let mock = start().await;
    for fault in ["drop-delta:2", "duplicate-delta:3"] {
        let r = reqwest::Client::new()
            .post(format!("{}/__admin/faults", mock.url()))
            .json(&json!({ "fault": fault }))
            .send()
            .await
            .expect("fault");
        assert_eq!(r.status(), 201, "{fault}");
    }
    let mut sio = Sio::connect(&mock, ADA).await;
    sio.next_named("success", 5).await;
    sio.ack("chat:join", json!({"chatId": WELCOME})).await;
    sio.ack(
        "message:send",
        json!({"chatId": WELCOME, "content": "faulted", "streamResponse": true,
               "state": {"mock": {"chunks": 5, "chunkDelayMs": 0}}}),
    )
    .await;
    sio.until_done(5).await;
    let (_, journal) = admin(
        &mock,
        reqwest::Method::GET,
        &format!("/__admin/journal?kind=out&event=message:delta&chatId={WELCOME}"),
    )
    .await;
    let entries = journal["data"].as_array().expect("entries");
    let numbers: Vec<u64> = entries.iter().filter_map(|e| e["delta"].as_u64()).collect();
    assert_eq!(
        numbers,
        [1, 3, 3, 4, 5],
        "delta 2 dropped, 3 twice: {journal}"
    );
    let stream = entries[0]["streamId"].as_str().expect("a stream id");
    assert!(entries.iter().all(|e| e["streamId"] == stream), "{journal}");
    mock.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_an_admin_token_the_page_loads_and_the_data_behind_it_needs_the_token() {
    let mock = proteus_mock::start(
        proteus_mock::world::World::default_world(),
        proteus_mock::Config {
            admin_token: Some("sesame".into()),
            ..proteus_mock::Config::default()
        },
    )
    .await
    .expect("starts");
    let (status, _) = admin(&mock, reqwest::Method::GET, "/__admin/ui").await;
    assert_eq!(status, 200, "a browser navigating sends no token");
    let (status, body) = admin(&mock, reqwest::Method::GET, "/__admin/connections").await;
    assert_eq!(status, 403, "{body}");
    let r = reqwest::Client::new()
        .get(format!("{}/__admin/connections", mock.url()))
        .bearer_auth("sesame")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    mock.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_light_journal_read_leaves_the_payloads_out() {
    let mock = start().await;
    let http = Http::new(&mock);
    let r = http
        .post(
            "/api/messages",
            ADA,
            json!({"chatId": WELCOME, "content": "light"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let path = format!("/__admin/journal?kind=out&chatId={WELCOME}");
    let (_, full) = admin(&mock, reqwest::Method::GET, &path).await;
    assert!(full["data"][0]["detail"]["payload"].is_object(), "{full}");
    let (_, light) = admin(
        &mock,
        reqwest::Method::GET,
        &format!("{path}&payloads=false"),
    )
    .await;
    let entry = &light["data"][0];
    assert!(entry["detail"].get("payload").is_none(), "{light}");
    assert_eq!(entry["seq"], full["data"][0]["seq"]);
    let (status, body) = admin(&mock, reqwest::Method::GET, &format!("{path}&payloads=no")).await;
    assert_eq!(status, 400, "{body}");
    mock.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_ends_every_realtime_connection_without_a_goodbye_and_keeps_the_world() {
    use tokio::io::AsyncReadExt;
    let mock = start().await;
    let http = Http::new(&mock);
    let mut ws = raw_ws::stalled_in_room(&mock, WELCOME).await;
    let url = format!(
        "ws://{}/api/v1/socket/websocket?vsn=2.0.0&api_key={NADIA}",
        mock.addr
    );
    let (mut phx, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("phoenix");
    let before = http
        .get(&format!("/api/chats/{WELCOME}/messages"), ADA)
        .await;
    assert_eq!(before.status, 200);

    let (status, body) = admin(&mock, reqwest::Method::POST, "/__admin/restart").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["data"]["socketIo"], &body["data"]["phoenix"]),
        (&json!(1), &json!(1)),
        "{body}"
    );

    // socket.io: the TCP connection ends, and no disconnect packet ("41",
    // which tells a client not to reconnect) came before the end.
    let mut rest = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        let mut chunk = [0u8; 4096];
        loop {
            match ws.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => rest.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the socket.io connection is still open");
    assert!(
        !rest.windows(4).any(|w| w == [0x81, 0x02, b'4', b'1']),
        "a disconnect packet was sent: {:?}",
        String::from_utf8_lossy(&rest)
    );
    // Phoenix: closed with 1012, service restart.
    let code = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match phx.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .expect("the Phoenix socket was closed");
    assert_eq!(code, Some(1012));

    // The world stays; the rooms are gone with the connections.
    let after = http
        .get(&format!("/api/chats/{WELCOME}/messages"), ADA)
        .await;
    assert_eq!(after.body["meta"]["total"], before.body["meta"]["total"]);
    let (_, list) = admin(&mock, reqwest::Method::GET, "/__admin/connections").await;
    assert_eq!(list["data"], json!([]), "{list}");
    // What the client sent is in the journal: payload and ack request.
    let (_, journal) = admin(
        &mock,
        reqwest::Method::GET,
        "/__admin/journal?kind=in&event=chat:join",
    )
    .await;
    let join = &journal["data"][0]["detail"];
    assert_eq!(join["payload"], json!({ "chatId": WELCOME }), "{journal}");
    assert_eq!(join["wantsAck"], true, "{journal}");
    let (_, light) = admin(
        &mock,
        reqwest::Method::GET,
        "/__admin/journal?kind=in&event=chat:join&payloads=false",
    )
    .await;
    assert!(
        light["data"][0]["detail"].get("payload").is_none(),
        "{light}"
    );
    mock.stop().await.expect("clean stop");
}
