//! What a socket.io packet that cannot be read does, pinned as PROTOCOL.md
//! documents it ("Malformed packets"): the engine closes the connection for
//! a packet it cannot parse; an ack id too large to represent is not read
//! as an ack id. A change in the engine shows up here first.

mod common;

use std::time::Duration;

use common::*;
use proteus_conformance::client::{Client, ClientError, Frame};
use serde_json::json;

/// Sends one raw socket.io packet on a fresh, authenticated connection and
/// returns what came back until the connection closed or 800 ms passed.
async fn after(mock: &proteus_mock::Running, packet: &str) -> (Vec<Frame>, bool) {
    let mut c = Client::connect(&mock.url(), &json!({"token": ADA}))
        .await
        .expect("connects");
    while !matches!(c.next_frame().await.expect("frame"), Frame::Event { ref name, .. } if name == "success")
    {
    }
    c.send_raw_packet(packet).await.expect("sends");
    let mut frames = Vec::new();
    loop {
        match c
            .next_frame_within(Duration::from_millis(800), "more")
            .await
        {
            Ok(f) => frames.push(f),
            Err(ClientError::Timeout(..)) => return (frames, false),
            Err(_) => return (frames, true),
        }
    }
}

#[tokio::test]
async fn a_packet_the_engine_cannot_parse_closes_the_connection() {
    let mock = start().await;
    for packet in [
        r#"2["message:send",{bad"#,
        r#"2{"a":1}"#,
        "2[]",
        "2[1,{}]",
        &format!(r#"2-5["chat:join",{{"chatId":"{WELCOME}"}}]"#),
    ] {
        let (frames, closed) = after(&mock, packet).await;
        assert!(closed, "{packet}: the connection is closed ({frames:?})");
    }
    mock.stop().await.expect("stop");
}

#[tokio::test]
async fn an_ack_id_too_large_is_not_read_as_one() {
    let mock = start().await;
    let join = format!(r#"["chat:join",{{"chatId":"{WELCOME}"}}]"#);
    let (frames, closed) = after(&mock, &format!("299999999999999999999{join}")).await;
    assert!(!closed && frames.is_empty(), "no ack, no close: {frames:?}");
    // A representable id is acknowledged as usual.
    let (frames, _) = after(&mock, &format!("27{join}")).await;
    assert!(
        matches!(frames.first(), Some(Frame::Ack { id: 7, .. })),
        "{frames:?}"
    );
    mock.stop().await.expect("stop");
}
