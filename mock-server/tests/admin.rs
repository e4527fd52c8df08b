//! The control plane over HTTP: profile, faults, reset, stats, access rules;
//! and faults seen on the wire by a raw client.

mod common;

use std::time::Duration;

use common::*;
use proteus_conformance::client::{Client, Frame};
use proteus_conformance::stream::{Rule, StreamChecker};
use proteus_mock::Config;
use proteus_mock::world::World;
use serde_json::{Value, json};

async fn admin(
    http: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http.request(method, format!("{base}{path}"));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("admin reachable");
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("json");
    assert_schema("objects/envelope", &body);
    (status, body)
}

#[tokio::test]
async fn profile_lists_what_a_conformance_run_needs() {
    let mock = start().await;
    let http = reqwest::Client::new();
    let (status, body) = admin(
        &http,
        &mock.url(),
        reqwest::Method::GET,
        "/__admin/profile",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let p = &body["data"];
    assert_eq!(p["users"][0]["token"], ADA);
    assert_eq!(p["users"][1]["token"], GRACE);
    assert_eq!(p["agents"]["streaming"], STREAMER);
    assert_eq!(p["agents"]["echo"], ECHO);
    assert_eq!(p["capabilities"]["faults"], true);
    assert!(
        p["revokedToken"]
            .as_str()
            .is_some_and(|t| t.starts_with("user-"))
    );
    assert!(
        p["faults"].as_array().is_some_and(|f| f.len() >= 40),
        "the fault catalogue is listed"
    );
    mock.stop().await.expect("clean stop");
}

#[tokio::test]
async fn faults_are_added_listed_removed_and_refused_when_unknown() {
    let mock = start().await;
    let (http, base) = (reqwest::Client::new(), mock.url());
    let (s, added) = admin(
        &http,
        &base,
        reqwest::Method::POST,
        "/__admin/faults",
        Some(json!({"fault": "drop-delta:3", "chatId": WELCOME})),
    )
    .await;
    assert_eq!(s, 201);
    let id = added["data"]["id"].as_u64().expect("id");
    let (_, list) = admin(&http, &base, reqwest::Method::GET, "/__admin/faults", None).await;
    assert_eq!(list["data"][0]["spec"], "drop-delta:3");
    assert_eq!(list["data"][0]["scope"]["chatId"], WELCOME);
    let (s, bad) = admin(
        &http,
        &base,
        reqwest::Method::POST,
        "/__admin/faults",
        Some(json!({"fault": "drop-deltas:3"})),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        bad["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("similar: drop-delta:N")),
        "{bad}"
    );
    let (s, _) = admin(
        &http,
        &base,
        reqwest::Method::DELETE,
        &format!("/__admin/faults/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = admin(
        &http,
        &base,
        reqwest::Method::DELETE,
        &format!("/__admin/faults/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 404);
    mock.stop().await.expect("clean stop");
}

/// Captures one streamed reply of `chunks` deltas with a raw client.
async fn raw_stream(url: &str, chat: &str, chunks: usize) -> Vec<(String, Value)> {
    let mut c = Client::connect(url, &json!({"token": ADA}))
        .await
        .expect("connects");
    // Like any socket.io client, emit only once connected.
    while !matches!(c.next_frame().await.expect("frame"), Frame::Event { ref name, .. } if name == "success")
    {
    }
    let id = c
        .emit_with_ack(
            "message:send",
            &json!({"chatId": chat, "content": "raw", "streamResponse": true,
            "state": {"mock": {"chunks": chunks, "chunkDelayMs": 1, "firstChunkDelayMs": 0}}}),
        )
        .await
        .expect("emit");
    let mut frames = Vec::new();
    let mut acked = false;
    while let Ok(Ok(f)) = tokio::time::timeout(Duration::from_millis(400), c.next_frame()).await {
        match f {
            Frame::Ack { id: got, .. } if got == id => acked = true,
            Frame::Event { name, payload } => frames.push((name, payload)),
            _ => {}
        }
    }
    assert!(acked);
    c.close().await;
    frames
}

#[tokio::test]
async fn stream_faults_appear_on_the_wire_and_clearing_them_restores_conformance() {
    let mock = start().await;
    let (http, base) = (reqwest::Client::new(), mock.url());
    let cases: &[(&str, Rule)] = &[
        ("drop-delta:2", Rule::Gap),
        ("duplicate-delta:2", Rule::Duplicate),
        ("reorder-deltas:2", Rule::OutOfOrder),
        ("omit-done", Rule::MissingDone),
        ("double-done", Rule::DoubleDone),
        ("delta-after-done", Rule::DeltaAfterDone),
        ("wrong-content:2", Rule::ContentMismatch),
        ("wrong-stream-id:2", Rule::StreamIdChanged),
        ("plain-message-for-stream", Rule::PlainMessageForStream),
        ("delta-not-streaming", Rule::DeltaNotStreaming),
        ("done-still-streaming", Rule::DoneStillStreaming),
        ("done-content-wrong", Rule::DoneContentMismatch),
    ];
    for (fault, rule) in cases {
        admin(
            &http,
            &base,
            reqwest::Method::POST,
            "/__admin/faults",
            Some(json!({"fault": fault})),
        )
        .await;
        let frames = raw_stream(&base, WELCOME, 5).await;
        let report = StreamChecker::check(frames.iter().map(|(e, p)| (e.as_str(), p)));
        assert!(
            report.rules().contains(rule),
            "{fault}: expected {rule} on the wire, saw {:?}",
            report.rules()
        );
        admin(
            &http,
            &base,
            reqwest::Method::DELETE,
            "/__admin/faults",
            None,
        )
        .await;
        let frames = raw_stream(&base, WELCOME, 5).await;
        let report = StreamChecker::check(frames.iter().map(|(e, p)| (e.as_str(), p)));
        assert!(
            report.is_ok() && report.completed == 1,
            "{fault} cleared: {:?}",
            report.violations
        );
    }
    mock.stop().await.expect("clean stop");
}

#[tokio::test]
async fn seeded_random_faults_replay_exactly_and_count_what_they_did() {
    let mock = start().await;
    let (http, base) = (reqwest::Client::new(), mock.url());
    let mut runs = Vec::new();
    for _ in 0..2 {
        admin(&http, &base, reqwest::Method::POST, "/__admin/reset", None).await;
        let (s, f) = admin(
            &http,
            &base,
            reqwest::Method::POST,
            "/__admin/faults",
            Some(json!({"fault": "drop-random:10:42"})),
        )
        .await;
        assert_eq!(s, 201, "{f}");
        let frames = raw_stream(&base, WELCOME, 200).await;
        let deltas: Vec<String> = frames
            .iter()
            .filter(|(e, _)| e == "message:delta")
            .map(|(_, p)| p["contentDelta"].as_str().unwrap_or_default().to_string())
            .collect();
        let (_, listed) = admin(&http, &base, reqwest::Method::GET, "/__admin/faults", None).await;
        let applied = listed["data"][0]["applied"].as_u64().expect("applied");
        assert_eq!(
            deltas.len() as u64 + applied,
            200,
            "the fault counts exactly the deltas it dropped: {listed}"
        );
        assert!((5..=40).contains(&applied), "about 1 in 10: {applied}");
        let report = StreamChecker::check(frames.iter().map(|(e, p)| (e.as_str(), p)));
        assert!(report.rules().contains(&Rule::Gap), "{:?}", report.rules());
        runs.push(deltas);
    }
    assert_eq!(
        runs[0], runs[1],
        "same seed after a reset: the same deltas are dropped"
    );
    mock.stop().await.expect("clean stop");
}

#[tokio::test]
async fn faults_scoped_to_a_chat_leave_other_chats_alone() {
    let mock = start().await;
    let (http, base) = (reqwest::Client::new(), mock.url());
    admin(
        &http,
        &base,
        reqwest::Method::POST,
        "/__admin/faults",
        Some(json!({"fault": "omit-done", "chatId": ECHO_CHAT})),
    )
    .await;
    let other = StreamChecker::check(
        raw_stream(&base, WELCOME, 4)
            .await
            .iter()
            .map(|(e, p)| (e.as_str(), p)),
    );
    assert!(
        other.is_ok() && other.completed == 1,
        "{:?}",
        other.violations
    );
    let scoped = StreamChecker::check(
        raw_stream(&base, ECHO_CHAT, 4)
            .await
            .iter()
            .map(|(e, p)| (e.as_str(), p)),
    );
    assert_eq!(scoped.rules(), vec![Rule::MissingDone]);
    mock.stop().await.expect("clean stop");
}

#[tokio::test]
async fn reset_restores_the_world_closes_sockets_and_stops_replies() {
    let mock = proteus_mock::start(
        World::default_world(),
        Config {
            faults: vec!["no-meta".into()],
            ..Config::default()
        },
    )
    .await
    .expect("starts");
    let (http, base) = (reqwest::Client::new(), mock.url());
    let api = Http::new(&mock);
    // Change the world: a new chat, a runtime fault, a long stream in flight.
    let created = api
        .post("/api/chats", ADA, json!({"participants": []}))
        .await;
    let chat = created.body["data"]["id"].as_str().expect("id").to_string();
    admin(
        &http,
        &base,
        reqwest::Method::POST,
        "/__admin/faults",
        Some(json!({"fault": "page-skip"})),
    )
    .await;
    let mut ada = Sio::connect(&mock, ADA).await;
    ada.next_named("success", 5).await;
    ada.ack(
        "message:send",
        json!({"chatId": WELCOME, "content": "long", "streamResponse": true,
        "state": {"mock": {"chunks": 500, "chunkDelayMs": 20}}}),
    )
    .await;
    ada.next_named("message:delta", 5).await;
    let (_, stats) = admin(&http, &base, reqwest::Method::GET, "/__admin/stats", None).await;
    assert_eq!(stats["data"]["activeReplies"], 1);

    let (s, _) = admin(&http, &base, reqwest::Method::POST, "/__admin/reset", None).await;
    assert_eq!(s, 200);
    // The socket is told and closed.
    let mut told = false;
    loop {
        let (event, payload) = ada.next(5).await;
        if event == "error"
            && payload["message"]
                .as_str()
                .is_some_and(|m| m.contains("reset"))
        {
            told = true;
        }
        if event == "close" {
            break;
        }
    }
    assert!(told, "sockets hear why they are closed");
    // The reply task is gone, the chat too; faults are back to the start-up ones.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, stats) = admin(&http, &base, reqwest::Method::GET, "/__admin/stats", None).await;
    assert_eq!(
        stats["data"]["activeReplies"], 0,
        "no task left behind: {}",
        stats["data"]
    );
    assert_eq!(stats["data"]["rooms"], 0);
    assert_eq!(
        api.get(&format!("/api/chats/{chat}"), ADA).await.status,
        404
    );
    let (_, faults) = admin(&http, &base, reqwest::Method::GET, "/__admin/faults", None).await;
    let specs: Vec<&str> = faults["data"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|f| f["spec"].as_str())
        .collect();
    assert_eq!(specs, ["no-meta"]);
    // Ids restart: the same request after a reset creates the same chat id.
    let again = api
        .post("/api/chats", ADA, json!({"participants": []}))
        .await;
    assert_eq!(again.body["data"]["id"], chat.as_str());
    mock.stop().await.expect("clean stop");
}

#[tokio::test]
async fn admin_token_guards_the_control_plane_and_no_admin_removes_it() {
    let guarded = proteus_mock::start(
        World::default_world(),
        Config {
            admin_token: Some("s3cret".into()),
            ..Config::default()
        },
    )
    .await
    .expect("starts");
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{}/__admin/profile", guarded.url()))
        .send()
        .await
        .expect("reachable");
    assert_eq!(r.status().as_u16(), 403);
    let r = http
        .get(format!("{}/__admin/profile", guarded.url()))
        .bearer_auth("s3cret")
        .send()
        .await
        .expect("reachable");
    assert_eq!(r.status().as_u16(), 200);
    guarded.stop().await.expect("stop");
    let off = proteus_mock::start(
        World::default_world(),
        Config {
            admin: false,
            ..Config::default()
        },
    )
    .await
    .expect("starts");
    let r = http
        .get(format!("{}/__admin/profile", off.url()))
        .send()
        .await
        .expect("reachable");
    assert_eq!(r.status().as_u16(), 404);
    off.stop().await.expect("stop");
}

#[tokio::test]
async fn world_dumps_load_back_to_the_same_state() {
    let mock = start().await;
    let (http, base) = (reqwest::Client::new(), mock.url());
    let api = Http::new(&mock);
    // Change the state, then dump it.
    let chat = api
        .post(
            "/api/chats",
            ADA,
            json!({"participants": [{"id": STREAMER, "type": "AGENT"}], "key": "round-trip"}),
        )
        .await;
    let chat_id = chat.body["data"]["id"].as_str().expect("id").to_string();
    api.post(
        "/api/messages",
        ADA,
        json!({"chatId": chat_id, "content": "keep me"}),
    )
    .await;
    let (_, dump) = admin(&http, &base, reqwest::Method::GET, "/__admin/world", None).await;
    let world = dump["data"].clone();
    // The dump is a world file: --world would accept it.
    World::parse("dump", &world.to_string()).expect("the dump is a valid world file");
    // Load it into a fresh mock: same state, same dump.
    let other = start().await;
    let (s, _) = admin(
        &http,
        &other.url(),
        reqwest::Method::PUT,
        "/__admin/world",
        Some(world.clone()),
    )
    .await;
    assert_eq!(s, 200);
    let (_, again) = admin(
        &http,
        &other.url(),
        reqwest::Method::GET,
        "/__admin/world",
        None,
    )
    .await;
    assert_eq!(again["data"], world, "a loaded dump dumps the same");
    let page = Http::new(&other)
        .get(&format!("/api/chats/{chat_id}/messages"), ADA)
        .await;
    assert_eq!(page.body["data"][0]["content"], "keep me");
    // A broken world is refused with the path and the problem, and changes nothing.
    let mut broken = world.clone();
    broken["chats"][0]["participants"][0]["type"] = json!("BOT");
    let (s, err) = admin(
        &http,
        &other.url(),
        reqwest::Method::PUT,
        "/__admin/world",
        Some(broken),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("chats[0].participants[0].type")),
        "{err}"
    );
    mock.stop().await.expect("stop");
    other.stop().await.expect("stop");
}

#[tokio::test]
async fn seed_creates_chats_with_history_for_pagination_and_load() {
    let mock = start().await;
    let (http, base) = (reqwest::Client::new(), mock.url());
    let (s, body) = admin(&http, &base, reqwest::Method::POST, "/__admin/seed",
        Some(json!({"chats": 3, "messages": 250, "participants": [{"id": STREAMER, "type": "AGENT"}]}))).await;
    assert_eq!(s, 201, "{body}");
    let ids = body["data"]["chatIds"].as_array().expect("ids").clone();
    assert_eq!(ids.len(), 3);
    let page = Http::new(&mock)
        .get(
            &format!(
                "/api/chats/{}/messages?@page=3&@limit=100",
                ids[2].as_str().expect("id")
            ),
            ADA,
        )
        .await;
    assert_eq!(page.body["meta"]["total"], 250);
    assert_eq!(page.body["data"].as_array().expect("page").len(), 50);
    let (s, _) = admin(
        &http,
        &base,
        reqwest::Method::POST,
        "/__admin/seed",
        Some(json!({"chats": 0, "messages": 1})),
    )
    .await;
    assert_eq!(s, 400);
    mock.stop().await.expect("stop");
}

#[tokio::test]
async fn the_journal_records_rest_sockets_and_emissions_in_order_and_verify_finds_misses() {
    let mock = start().await;
    let (http, base) = (reqwest::Client::new(), mock.url());
    let mut ada = Sio::connect(&mock, ADA).await;
    ada.next_named("success", 5).await;
    ada.ack(
        "message:send",
        json!({"chatId": WELCOME, "content": "journal me", "streamResponse": true,
        "state": {"mock": {"chunks": 4, "chunkDelayMs": 1}}}),
    )
    .await;
    ada.next_named("message:done", 5).await;
    Http::new(&mock)
        .get(&format!("/api/chats/{WELCOME}"), ADA)
        .await;
    let (_, j) = admin(
        &http,
        &base,
        reqwest::Method::GET,
        &format!("/__admin/journal?chatId={WELCOME}"),
        None,
    )
    .await;
    let entries = j["data"].as_array().expect("entries").clone();
    for e in &entries {
        assert_schema("admin/journal-entry", e);
    }
    let kinds: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or(""),
                e["event"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let deltas: Vec<u64> = entries
        .iter()
        .filter(|e| e["event"] == "message:delta")
        .filter_map(|e| e["delta"].as_u64())
        .collect();
    assert_eq!(
        deltas,
        [1, 2, 3, 4],
        "each delta with its number, in order: {kinds:?}"
    );
    assert!(
        kinds.contains(&("in", "message:send")) && kinds.contains(&("rest", "")),
        "{kinds:?}"
    );
    let seqs: Vec<u64> = entries.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "ordered by seq");

    let verify = |body: Value| {
        admin(
            &http,
            &base,
            reqwest::Method::POST,
            "/__admin/verify",
            Some(body),
        )
    };
    let (_, yes) = verify(
        json!({"chatId": WELCOME, "sequence": ["message", "message:delta", "message:done"]}),
    )
    .await;
    assert_eq!(yes["data"]["matched"], true, "{yes}");
    assert_schema("admin/verify-result", &yes["data"]);
    let (_, count) =
        verify(json!({"kind": "out", "event": "message:delta", "chatId": WELCOME, "count": 4}))
            .await;
    assert_eq!(count["data"]["matched"], true, "{count}");
    let (_, no) =
        verify(json!({"kind": "out", "event": "message:delta", "chatId": ECHO_CHAT})).await;
    assert_eq!(no["data"]["matched"], false);
    let miss = &no["data"]["nearMisses"][0];
    assert_eq!(
        miss["missed"],
        json!(["chatId"]),
        "the nearest miss says what differed: {no}"
    );
    assert_schema("admin/verify-result", &no["data"]);
    mock.stop().await.expect("stop");
}

#[tokio::test]
async fn the_live_journal_streams_entries_as_server_sent_events() {
    let mock = start().await;
    let http = reqwest::Client::new();
    let mut live = http
        .get(format!("{}/__admin/journal/live", mock.url()))
        .send()
        .await
        .expect("live feed");
    assert_eq!(live.headers()["content-type"], "text/event-stream");
    Http::new(&mock)
        .get(&format!("/api/chats/{WELCOME}"), ADA)
        .await;
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), live.chunk())
            .await
            .expect("an event within 5 s")
            .expect("read")
            .expect("open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let data = text
        .lines()
        .find_map(|l| l.strip_prefix("data:"))
        .expect("a data line");
    let entry: Value = serde_json::from_str(data.trim()).expect("json entry");
    assert_schema("admin/journal-entry", &entry);
    assert!(text.contains("event: entry"), "{text}");
    mock.stop().await.expect("stop");
}

#[tokio::test]
async fn stats_report_the_delta_rate_while_a_stream_runs() {
    let mock = start().await;
    let (http, base) = (reqwest::Client::new(), mock.url());
    let mut ada = Sio::connect(&mock, ADA).await;
    ada.next_named("success", 5).await;
    ada.ack(
        "message:send",
        json!({"chatId": WELCOME, "content": "rate", "streamResponse": true,
        "state": {"mock": {"chunks": 100, "chunkDelayMs": 20}}}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (_, stats) = admin(&http, &base, reqwest::Method::GET, "/__admin/stats", None).await;
    let rate = stats["data"]["deltasPerSecond"].as_u64().expect("rate");
    assert!(
        (20..=60).contains(&rate),
        "about 50 deltas/s at a 20 ms pace: {}",
        stats["data"]
    );
    assert_eq!(stats["data"]["activeReplies"], 1);
    mock.stop().await.expect("stop");
}

#[tokio::test]
async fn reset_under_load_leaves_no_reply_room_socket_or_journal_behind() {
    let mock = start().await;
    let (http, base) = (reqwest::Client::new(), mock.url());
    let (_, idle) = admin(&http, &base, reqwest::Method::GET, "/__admin/stats", None).await;
    let mut sockets = Vec::new();
    for i in 0..20 {
        let mut s = Sio::connect(&mock, if i % 2 == 0 { ADA } else { GRACE }).await;
        s.next_named("success", 5).await;
        let chat = if i % 2 == 0 { WELCOME } else { GRACE_CHAT };
        s.ack(
            "message:send",
            // 1,000 deltas 50 ms apart: still streaming when the reset comes,
            // however long a loaded machine takes to connect all 20 sockets.
            json!({"chatId": chat, "content": format!("load {i}"), "streamResponse": true,
            "state": {"mock": {"chunks": 1000, "chunkDelayMs": 50}}}),
        )
        .await;
        sockets.push(s);
    }
    for s in &mut sockets {
        s.next_named("message:delta", 5).await;
    }
    let (_, before) = admin(&http, &base, reqwest::Method::GET, "/__admin/stats", None).await;
    assert_eq!(before["data"]["activeReplies"], 20, "{before}");
    assert_eq!(before["data"]["slowConsumersDisconnected"], 0, "{before}");
    admin(&http, &base, reqwest::Method::POST, "/__admin/reset", None).await;
    for s in &mut sockets {
        loop {
            if s.next(5).await.0 == "close" {
                break;
            }
        }
    }
    // The test's clients share this runtime: drop them before counting tasks.
    drop(sockets);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, after) = admin(&http, &base, reqwest::Method::GET, "/__admin/stats", None).await;
    let d = &after["data"];
    assert_eq!(
        (
            d["activeReplies"].as_u64(),
            d["rooms"].as_u64(),
            d["sockets"].as_u64()
        ),
        (Some(0), Some(0), Some(0)),
        "{after}"
    );
    assert_eq!(
        d["store"], idle["data"]["store"],
        "the store holds the world again: no chat, message or token of the load run is left"
    );

    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (_, later) = admin(&http, &base, reqwest::Method::GET, "/__admin/stats", None).await;
    // deltasSent counts since start: it must not move once the reset is
    // done. (deltasPerSecond, a meter over the last whole second, may still
    // show the deltas sent just before the reset.)
    assert_eq!(
        later["data"]["deltasSent"], after["data"]["deltasSent"],
        "no stream still runs after the reset: {later}"
    );
    let (_, out) = admin(
        &http,
        &base,
        reqwest::Method::GET,
        "/__admin/journal?kind=out",
        None,
    )
    .await;
    assert_eq!(
        out["data"],
        json!([]),
        "the journal was emptied and nothing was emitted since"
    );
    mock.stop().await.expect("stop");
}

/// The mock as its own process (tasks and memory are then the server's
/// alone), five rounds of: 20 raw sockets streaming, reset mid-stream. The
/// sockets do not read until the reset, so the pace (20 streams × 50
/// deltas/s into their shared room) keeps their buffers far from full even
/// when a busy CI machine makes the set-up slow.
#[tokio::test]
async fn reset_cycles_leave_no_task_or_memory_behind() {
    let mock = proteus_conformance::testing::MockProcess::start(&[]);
    let http = reqwest::Client::new();
    let stats = || async {
        admin(
            &http,
            &mock.url,
            reqwest::Method::GET,
            "/__admin/stats",
            None,
        )
        .await
        .1["data"]
            .clone()
    };
    let idle = stats().await;
    let mut rss = Vec::new();
    for round in 0..5 {
        let mut clients = Vec::new();
        for i in 0..20 {
            let mut c = Client::connect(&mock.url, &json!({"token": ADA}))
                .await
                .expect("connects");
            while !matches!(c.next_frame().await.expect("frame"), Frame::Event { ref name, .. } if name == "success")
            {
            }
            c.emit_with_ack(
                "message:send",
                &json!({"chatId": WELCOME, "content": format!("round {round} #{i}"), "streamResponse": true,
                "state": {"mock": {"chunks": 2000, "chunkDelayMs": 20, "firstChunkDelayMs": 0}}}),
            )
            .await
            .expect("emit");
            clients.push(c);
        }
        let mut busy = stats().await;
        for _ in 0..100 {
            if busy["activeReplies"] == 20 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            busy = stats().await;
        }
        assert_eq!(busy["activeReplies"], 20, "{busy}");
        admin(
            &http,
            &mock.url,
            reqwest::Method::POST,
            "/__admin/reset",
            None,
        )
        .await;
        for (ci, mut c) in clients.into_iter().enumerate() {
            // Read until the server disconnects the socket (socket.io `41`).
            let mut n = 0;
            let mut last = String::new();
            loop {
                n += 1;
                match tokio::time::timeout(Duration::from_secs(5), c.next_text())
                    .await
                    .unwrap_or_else(|_| panic!("the reset disconnects every socket: client {ci} after {n} frames, last {}", &last[..last.len().min(80)]))
                {
                    Ok(t) if { last = t.to_string(); false } => {}
                    Ok(t) if t.starts_with('1') => break, // socket.io DISCONNECT
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            c.close().await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let after = stats().await;
        assert_eq!(
            (
                after["activeReplies"].as_u64(),
                after["sockets"].as_u64(),
                after["rooms"].as_u64()
            ),
            (Some(0), Some(0), Some(0)),
            "round {round}: {after}"
        );
        assert_eq!(
            after["store"], idle["store"],
            "round {round}: the store is the world again"
        );
        assert!(
            after["process"]["runtimeTasks"].as_u64() <= idle["process"]["runtimeTasks"].as_u64(),
            "round {round}: no task outlives the reset: idle {} now {}",
            idle["process"],
            after["process"]
        );
        assert_eq!(
            after["internal"], idle["internal"],
            "round {round}: connections, socket tables, webhook queues and plugin streams are back to idle"
        );
        rss.push(after["process"]["rssBytes"].as_u64().expect("rss on Linux"));
    }
    // RSS after a reset still holds what the allocator kept from that round's
    // peak (50-110 MB here, depending on how far the streams got), so it is
    // only a coarse guard against a gross leak; the exact checks are above.
    assert!(
        rss.iter().all(|r| *r < 256 * 1024 * 1024),
        "memory after resets: {rss:?}"
    );
}

#[tokio::test]
async fn the_firehose_streams_exactly_what_was_asked_and_refuses_nonsense() {
    let mock = start().await;
    let (http, base) = (reqwest::Client::new(), mock.url());
    for (body, status) in [
        (json!({"chatId": WELCOME, "deltas": 0}), 400),
        (json!({"chatId": WELCOME, "rate": -1}), 400),
        (json!({"chatId": "ffffffffffffffffffffffff"}), 404),
        (json!({"chatId": WELCOME, "colour": "red"}), 400),
    ] {
        let (s, b) = admin(
            &http,
            &base,
            reqwest::Method::POST,
            "/__admin/firehose",
            Some(body.clone()),
        )
        .await;
        assert_eq!(s, status, "{body} → {b}");
        assert_eq!(b["ok"], false);
    }
    let mut c = Client::connect(&base, &json!({"token": ADA}))
        .await
        .expect("connects");
    while !matches!(c.next_frame().await.expect("frame"), Frame::Event { ref name, .. } if name == "success")
    {
    }
    let id = c
        .emit_with_ack("chat:join", &json!({"chatId": WELCOME}))
        .await
        .expect("join");
    while !matches!(c.next_frame().await.expect("frame"), Frame::Ack { id: got, .. } if got == id) {
    }
    let (s, b) = admin(
        &http,
        &base,
        reqwest::Method::POST,
        "/__admin/firehose",
        Some(json!({"chatId": WELCOME, "streams": 3, "deltas": 40, "size": 5, "rate": 2000})),
    )
    .await;
    assert_eq!((s, &b["data"]["expectedDeltas"]), (202, &json!(120)), "{b}");
    let mut frames = Vec::new();
    let mut dones = 0;
    while dones < 3 {
        match tokio::time::timeout(Duration::from_secs(5), c.next_frame()).await {
            Ok(Ok(Frame::Event { name, payload })) => {
                dones += usize::from(name == "message:done");
                frames.push((name, payload));
            }
            Ok(Ok(_)) => {}
            other => panic!("the firehose stopped early: {other:?}"),
        }
    }
    let report = StreamChecker::check(frames.iter().map(|(e, p)| (e.as_str(), p)));
    assert!(report.is_ok(), "{:?}", report.violations);
    assert_eq!((report.completed, report.totals.deltas), (3, 120));
    let sizes: Vec<usize> = frames
        .iter()
        .filter(|(e, _)| e == "message:delta")
        .map(|(_, p)| p["contentDelta"].as_str().unwrap_or_default().len())
        .collect();
    assert!(sizes.iter().all(|n| *n == 5), "every delta is 5 bytes");
    c.close().await;
    mock.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_world_dump_of_several_megabytes_loads_back() {
    let mock = start().await;
    let url = mock.url();
    let http = reqwest::Client::new();
    let seed = json!({ "chats": 5, "messages": 2000 });
    let (status, _) = admin(
        &http,
        &url,
        reqwest::Method::POST,
        "/__admin/seed",
        Some(seed),
    )
    .await;
    assert_eq!(status, 201);
    let dump = |http: reqwest::Client, url: String| async move {
        let v: Value = http
            .get(format!("{url}/__admin/world"))
            .send()
            .await
            .expect("dump")
            .json()
            .await
            .expect("json");
        v["data"].clone()
    };
    let world = dump(http.clone(), url.clone()).await;
    let body = world.to_string();
    assert!(
        body.len() > 2 * 1024 * 1024,
        "the dump is {} bytes",
        body.len()
    );
    let put = http
        .put(format!("{url}/__admin/world"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("put");
    assert_eq!(put.status().as_u16(), 200, "{:?}", put.text().await);
    let again = dump(http.clone(), url.clone()).await;
    let count = |w: &Value| w["messages"].as_array().map(Vec::len);
    assert_eq!(
        count(&again),
        count(&world),
        "the loaded world has the dump's messages"
    );
    assert!(count(&again) >= Some(10_000));
    mock.stop().await.expect("clean stop");
}
