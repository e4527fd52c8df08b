//! Every answer of the mock is the envelope, also when an extractor refuses
//! the request before a handler runs.

mod common;

use common::*;
use serde_json::Value;

async fn raw(method: reqwest::Method, url: String) -> (u16, String, String) {
    let r = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(ADA)
        .send()
        .await
        .expect("reachable");
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, ct, r.text().await.expect("body"))
}

#[tokio::test]
async fn a_path_segment_that_is_not_utf8_is_a_404_envelope() {
    let mock = start().await;
    let (status, ct, body) = raw(
        reqwest::Method::GET,
        format!("{}/api/chats/%ff", mock.url()),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert!(ct.starts_with("application/json"), "{ct}: {body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_schema("objects/envelope", &v);
    assert_eq!(v["ok"], false);
    mock.stop().await.expect("stop");
}

#[tokio::test]
async fn an_admin_fault_id_that_is_not_a_number_is_a_404_envelope() {
    let mock = start().await;
    let (status, ct, body) = raw(
        reqwest::Method::DELETE,
        format!("{}/__admin/faults/abc", mock.url()),
    )
    .await;
    assert_eq!(status, 404, "no fault has that id: {body}");
    assert!(ct.starts_with("application/json"), "{ct}: {body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_schema("objects/envelope", &v);
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    mock.stop().await.expect("stop");
}
