//! socket.io through a third-party client (rust_socketio): auth, join, send,
//! broadcasts and streamed replies. Every event received is validated against
//! its schema and every stream through the conformance stream checker.

mod common;

use std::time::Duration;

use common::*;
use proteus_conformance::stream::StreamChecker;
use serde_json::{Value, json};

/// Schema of each server event, from the fixtures manifest.
fn event_schema(event: &str) -> Option<&'static str> {
    Some(match event {
        "success" => "realtime/success",
        "error" => "realtime/error",
        "message" => "realtime/message",
        "message:delta" => "realtime/message-delta",
        "message:done" => "realtime/message-done",
        "CHAT_MESSAGE_ADDED" => "realtime/chat-message-added",
        "CHAT_STATE_UPDATED" => "realtime/chat-state-updated",
        "CHAT_PARTICIPANT_JOINED" => "realtime/chat-participant-joined",
        "CHAT_REPOSITORY_ATTACHED" => "realtime/chat-repository-attached",
        _ => return None,
    })
}

/// Collects events until `message:done` (or the timeout), validating each.
async fn until_done(sio: &mut Sio, secs: u64) -> Vec<(String, Value)> {
    let mut seen = Vec::new();
    loop {
        let (event, payload) = sio.next(secs).await;
        let schema =
            event_schema(&event).unwrap_or_else(|| panic!("unexpected event {event}: {payload}"));
        assert_schema(schema, &payload);
        let done = event == "message:done";
        seen.push((event, payload));
        if done {
            return seen;
        }
    }
}

#[tokio::test]
async fn valid_token_gets_success_with_its_entity() {
    let mock = start().await;
    let mut sio = Sio::connect(&mock, ADA).await;
    let success = sio.next_named("success", 5).await;
    assert_schema("realtime/success", &success);
    assert_eq!(
        success["entity"],
        json!({"id": ADA_ID, "type": "USER", "name": "Ada Lovelace"})
    );
    mock.stop().await.expect("clean stop");
}

#[tokio::test]
async fn bad_tokens_get_an_error_then_a_disconnect() {
    let mock = start().await;
    for token in ["user-nope".to_string(), revoked_token(), String::new()] {
        let mut sio = Sio::connect(&mock, &token).await;
        let (event, payload) = sio.next(5).await;
        assert_eq!(event, "error", "first event for token {token:?}");
        assert_schema("realtime/error", &payload);
        let (event, _) = sio.next(5).await;
        assert_eq!(event, "close", "then the server disconnects");
    }
    mock.stop().await.expect("clean stop");
}

#[tokio::test]
async fn join_leave_and_their_acks() {
    let mock = start().await;
    let mut ada = Sio::connect(&mock, ADA).await;
    ada.next_named("success", 5).await;
    let ok = ada.ack("chat:join", json!({"chatId": WELCOME})).await;
    assert_schema("realtime/chat-join-ack", &ok);
    assert_eq!(ok, json!({"data": {"chatId": WELCOME}}));
    let refused = ada.ack("chat:join", json!({"chatId": GRACE_CHAT})).await;
    assert_schema("realtime/ack-error", &refused);
    for bad in [
        json!({}),
        json!({"chatId": 7}),
        json!("682f4b313981b5f54e96ea4b"),
        json!({"chatId": "short"}),
        json!({"chatId": "ffffffffffffffffffffffff"}),
    ] {
        let ack = ada.ack("chat:join", bad.clone()).await;
        assert_schema("realtime/ack-error", &ack);
        assert!(
            ack["error"]["message"]
                .as_str()
                .is_some_and(|m| m.len() > 5),
            "{bad} → {ack}"
        );
    }
    let unknown = ada.ack("chat:frobnicate", json!({})).await;
    assert_schema("realtime/ack-error", &unknown);
    let left = ada.ack("chat:leave", json!({"chatId": WELCOME})).await;
    assert_schema("realtime/chat-leave-ack", &left);
    assert_eq!(left, json!({"data": {"chatId": WELCOME}}));
    mock.stop().await.expect("clean stop");
}

#[tokio::test]
async fn streamed_reply_reaches_the_room_in_order_and_lands_in_history() {
    let mock = start().await;
    let http = Http::new(&mock);
    let mut ada = Sio::connect(&mock, ADA).await;
    ada.next_named("success", 5).await;
    let mut watcher = Sio::connect(&mock, ADA).await;
    watcher.next_named("success", 5).await;
    watcher.ack("chat:join", json!({"chatId": WELCOME})).await;
    let mut outsider = Sio::connect(&mock, GRACE).await;
    outsider.next_named("success", 5).await;

    let ack = ada
        .ack(
            "message:send",
            json!({"chatId": WELCOME, "content": "stream please", "streamResponse": true,
            "state": {"mock": {"chunks": 25, "chunkDelayMs": 1}}}),
        )
        .await;
    assert_schema("realtime/message-send-ack", &ack);
    let sent_id = ack["data"]["message"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(ack["data"]["chatId"], WELCOME);

    for sio in [&mut ada, &mut watcher] {
        let events = until_done(sio, 10).await;
        // The echo of the sent message comes first, then the stream.
        assert_eq!(events[0].0, "message");
        assert_eq!(events[0].1["id"], sent_id.as_str());
        let report = StreamChecker::check(events.iter().map(|(e, p)| (e.as_str(), p)));
        assert!(report.is_ok(), "{:#?}", report.violations);
        assert_eq!(
            (report.streams, report.completed, report.totals.deltas),
            (1, 1, 25)
        );
        let done = &events.last().expect("done").1;
        assert_eq!(done["respondedToId"], sent_id.as_str());
    }
    // A socket not in the room hears nothing.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), outsider.events.recv())
            .await
            .is_err(),
        "outsider got an event"
    );

    let last = http
        .get(
            &format!("/api/chats/{WELCOME}/messages?@page=1&@limit=100"),
            ADA,
        )
        .await;
    let items = last.body["data"].as_array().expect("page");
    let final_msg = items.last().expect("the reply is in history");
    assert_eq!(final_msg["isStreaming"], false);
    assert_eq!(final_msg["respondedToId"], sent_id.as_str());
    mock.stop().await.expect("clean stop");
}

#[tokio::test]
async fn non_streamed_reply_is_one_message_and_chat_key_creates_the_chat() {
    let mock = start().await;
    let mut ada = Sio::connect(&mock, ADA).await;
    ada.next_named("success", 5).await;
    let ack = ada
        .ack("message:send", json!({"chatKey": "support-42", "recipients": [{"id": ECHO, "type": "AGENT"}], "content": "echo me"}))
        .await;
    assert_schema("realtime/message-send-ack", &ack);
    let chat_id = ack["data"]["chatId"].as_str().expect("chat id").to_string();
    let mut replies = Vec::new();
    while replies.len() < 2 {
        let m = ada.next_named("message", 5).await;
        assert_schema("realtime/message", &m);
        assert_eq!(m["chatId"], chat_id.as_str());
        replies.push(m);
    }
    assert_eq!(
        replies[1]["content"], "echo me",
        "the echo agent repeats the content"
    );
    assert_eq!(replies[1]["senderId"], ECHO);
    let again = ada.ack("message:send", json!({"chatKey": "support-42", "recipients": [{"id": ECHO, "type": "AGENT"}], "content": "again"})).await;
    assert_eq!(
        again["data"]["chatId"],
        chat_id.as_str(),
        "the same key finds the same chat"
    );
    mock.stop().await.expect("clean stop");
}

#[tokio::test]
async fn malformed_sends_get_error_acks_and_nothing_is_stored() {
    let mock = start().await;
    let http = Http::new(&mock);
    let mut ada = Sio::connect(&mock, ADA).await;
    ada.next_named("success", 5).await;
    let before = http
        .get(&format!("/api/chats/{WELCOME}/messages"), ADA)
        .await
        .body["meta"]["total"]
        .clone();
    for bad in [
        json!({"content": "no chat"}),
        json!({"chatId": WELCOME}),
        json!({"chatId": WELCOME, "content": 5}),
        json!({"chatId": WELCOME, "content": "x", "type": "BANANA"}),
        json!({"chatId": WELCOME, "content": "x", "streamResponse": "yes"}),
        json!({"chatId": WELCOME, "content": "x", "state": {"mock": {"chunks": "many"}}}),
        json!({"chatId": WELCOME, "content": "x", "attachments": [{}]}),
        json!({"chatKey": "k", "content": "x"}),
        json!({"chatId": GRACE_CHAT, "content": "not mine"}),
        json!([1, 2, 3]),
        json!(null),
    ] {
        let ack = ada.ack("message:send", bad.clone()).await;
        assert_schema("realtime/ack-error", &ack);
        assert!(
            ack["error"]["message"]
                .as_str()
                .is_some_and(|m| m.len() > 5),
            "{bad} → {ack}"
        );
    }
    let after = http
        .get(&format!("/api/chats/{WELCOME}/messages"), ADA)
        .await
        .body["meta"]["total"]
        .clone();
    assert_eq!(before, after, "refused messages are not stored");
    mock.stop().await.expect("clean stop");
}

#[tokio::test]
async fn lifecycle_events_are_relayed_to_the_room() {
    let mock = start().await;
    let http = Http::new(&mock);
    let mut ada = Sio::connect(&mock, ADA).await;
    ada.next_named("success", 5).await;
    ada.ack("chat:join", json!({"chatId": WELCOME})).await;
    http.put(
        &format!("/api/chats/{WELCOME}"),
        ADA,
        json!({"title": "Renamed"}),
    )
    .await;
    let e = ada.next_named("CHAT_STATE_UPDATED", 5).await;
    assert_schema("realtime/chat-state-updated", &e);
    assert_eq!(e["chat"]["title"], "Renamed");
    http.post(
        &format!("/api/chats/{WELCOME}/participants"),
        ADA,
        json!({"id": GRACE_ID, "type": "USER"}),
    )
    .await;
    let e = ada.next_named("CHAT_PARTICIPANT_JOINED", 5).await;
    assert_schema("realtime/chat-participant-joined", &e);
    assert_eq!(e["user"]["id"], GRACE_ID);
    http.post(
        &format!("/api/chats/{WELCOME}/repositories"),
        ADA,
        json!({"repositoryId": "6830aa0000000000000000a1"}),
    )
    .await;
    let e = ada.next_named("CHAT_REPOSITORY_ATTACHED", 5).await;
    assert_schema("realtime/chat-repository-attached", &e);
    http.post(
        "/api/messages",
        ADA,
        json!({"chatId": WELCOME, "content": "via REST"}),
    )
    .await;
    let e = ada.next_named("CHAT_MESSAGE_ADDED", 5).await;
    assert_schema("realtime/chat-message-added", &e);
    assert_eq!(e["message"]["content"], "via REST");
    // Grace is now a participant and may join.
    let mut grace = Sio::connect(&mock, GRACE).await;
    grace.next_named("success", 5).await;
    assert_eq!(
        grace.ack("chat:join", json!({"chatId": WELCOME})).await,
        json!({"data": {"chatId": WELCOME}})
    );
    mock.stop().await.expect("clean stop");
}

#[tokio::test]
async fn same_seed_same_stream_across_servers() {
    async fn capture() -> Vec<String> {
        let mock = start().await;
        let mut ada = Sio::connect(&mock, ADA).await;
        ada.next_named("success", 5).await;
        ada.ack(
            "message:send",
            json!({"chatId": WELCOME, "content": "determinism", "streamResponse": true,
            "state": {"mock": {"chunkSize": 5, "seed": 99, "chunkDelayMs": 0}}}),
        )
        .await;
        let events = until_done(&mut ada, 10).await;
        mock.stop().await.expect("clean stop");
        events
            .iter()
            .filter(|(e, _)| e == "message:delta")
            .map(|(_, d)| d["contentDelta"].as_str().expect("chunk").to_string())
            .collect()
    }
    let (a, b) = (capture().await, capture().await);
    assert!(a.len() > 10);
    assert_eq!(a, b, "the same seed cuts the same chunks");
}

#[tokio::test]
async fn a_ten_thousand_delta_stream_arrives_complete() {
    let mock = start().await;
    let mut ada = Sio::connect(&mock, ADA).await;
    ada.next_named("success", 5).await;
    ada.ack(
        "message:send",
        json!({"chatId": WELCOME, "content": "big", "streamResponse": true,
        "state": {"mock": {"chunks": 10000, "chunkDelayMs": 0, "firstChunkDelayMs": 0}}}),
    )
    .await;
    let mut checker = StreamChecker::new();
    loop {
        let (event, payload) = ada.next(30).await;
        checker.observe(&event, &payload);
        if event == "message:done" {
            break;
        }
    }
    let report = checker.finish();
    assert!(report.is_ok(), "{:?}", report.violations.first());
    assert_eq!(report.totals.deltas, 10_000);
    mock.stop().await.expect("clean stop");
}

#[tokio::test]
async fn raw_frames_show_the_ack_before_any_reply_event() {
    use proteus_conformance::client::{Client, Frame};
    let mock = start().await;
    let mut c = Client::connect(&mock.url(), &json!({"token": ADA}))
        .await
        .expect("connects");
    assert!(matches!(
        c.next_frame().await.expect("frame"),
        Frame::Connected(_)
    ));
    match c.next_frame().await.expect("frame") {
        Frame::Event { name, payload } => {
            assert_eq!(name, "success");
            assert_schema("realtime/success", &payload);
        }
        other => panic!("expected success, got {other:?}"),
    }
    let id = c
        .emit_with_ack(
            "message:send",
            &json!({"chatId": WELCOME, "content": "order?", "streamResponse": true,
            "state": {"mock": {"chunks": 3, "firstChunkDelayMs": 0, "chunkDelayMs": 0}}}),
        )
        .await
        .expect("emit");
    let mut names = Vec::new();
    loop {
        match c
            .next_frame_within(Duration::from_secs(5), "the stream")
            .await
            .expect("frame")
        {
            Frame::Ack { id: got, payload } => {
                assert_eq!(got, id);
                assert_schema("realtime/message-send-ack", &payload);
                names.push("ack".to_string());
            }
            Frame::Event { name, .. } => {
                let done = name == "message:done";
                names.push(name);
                if done {
                    break;
                }
            }
            other => panic!("unexpected frame {other:?}"),
        }
    }
    assert_eq!(
        names,
        [
            "ack",
            "message",
            "CHAT_MESSAGE_ADDED",
            "message:delta",
            "message:delta",
            "message:delta",
            "message:done"
        ],
        "the ack comes first, then the echo, then the stream"
    );
    c.close().await;
    mock.stop().await.expect("clean stop");
}

/// A client may emit the moment the CONNECT ack arrives, before `success`
/// (socket.io clients flush their buffered emits then). socketioxide runs the
/// connect handler as a task *after* sending that ack, so the mock registers
/// its handlers in a connect middleware, which runs before it: no such event
/// is ever dropped without an ack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_sent_right_behind_the_connect_packet_is_acknowledged() {
    use proteus_conformance::client::{Client, Frame};
    let mock = start().await;
    // Many at once, so the spawned connect handlers queue behind the packets.
    let url = mock.url();
    let mut tasks = Vec::new();
    for i in 0..300 {
        let (url, token) = (url.clone(), if i % 10 == 9 { "user-nope" } else { ADA });
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(&url, &json!({ "token": token }))
                .await
                .expect("connects");
            // The socket.io CONNECT ack, and not a moment later: emit.
            match c.next_frame().await.expect("frame") {
                Frame::Connected(_) => {}
                other => panic!("expected the CONNECT ack first, got {other:?}"),
            }
            let id = c
                .emit_with_ack(
                    "message:send",
                    &json!({ "chatId": GRACE_CHAT, "content": format!("early {i}") }),
                )
                .await
                .expect("sent");
            // Ada is not in Grace's chat: an error ack. The bad token: an error
            // ack, or the `error` event and the disconnect; never silence.
            let answer = tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    match c.next_frame().await {
                        Ok(Frame::Ack { id: got, payload }) if got == id => {
                            return format!("ack {}", payload["error"]["message"]);
                        }
                        Ok(Frame::Event { name, .. }) if name == "error" && token != ADA => {
                            return "error event".into();
                        }
                        Ok(_) => {}
                        Err(_) if token != ADA => return "disconnected".into(),
                        Err(e) => return format!("connection ended: {e}"),
                    }
                }
            })
            .await
            .unwrap_or_else(|_| "silence".into());
            c.close().await;
            (token == ADA, answer)
        }));
    }
    let mut wrong = Vec::new();
    for t in tasks {
        let (ada, answer) = t.await.expect("task");
        if answer == "silence" || (ada && !answer.starts_with("ack \"")) {
            wrong.push(answer);
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of 300 early sends were not answered: {wrong:?}",
        wrong.len()
    );
    mock.stop().await.expect("clean stop");
}
