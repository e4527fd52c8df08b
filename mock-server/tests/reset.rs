//! A reset leaves the mock as a fresh one: an empty journal (the
//! disconnects it causes are not journaled) and fault ids from 1.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

async fn admin(method: reqwest::Method, url: String, body: Option<Value>) -> Value {
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send()
        .await
        .expect("reachable")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn after_a_reset_the_journal_is_empty_and_fault_ids_start_at_1() {
    let mock = start().await;
    let base = mock.url();
    let mut sockets = Vec::new();
    for _ in 0..3 {
        let mut s = Sio::connect(&mock, ADA).await;
        s.next_named("success", 5).await;
        sockets.push(s);
    }
    admin(
        reqwest::Method::POST,
        format!("{base}/__admin/faults"),
        Some(json!({"fault": "omit-done"})),
    )
    .await;
    admin(reqwest::Method::POST, format!("{base}/__admin/reset"), None).await;
    // The sockets' disconnects arrive after the reset.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let journal = admin(
        reqwest::Method::GET,
        format!("{base}/__admin/journal"),
        None,
    )
    .await;
    assert_eq!(journal["data"], json!([]), "{journal}");
    let added = admin(
        reqwest::Method::POST,
        format!("{base}/__admin/faults"),
        Some(json!({"fault": "omit-done"})),
    )
    .await;
    assert_eq!(added["data"]["id"], 1, "{added}");
    drop(sockets);
    mock.stop().await.expect("stop");
}
