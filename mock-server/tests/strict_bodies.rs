//! A request body is read as its schema says: `null` where the schema does
//! not allow it is refused (never read as "absent"), a uuid is a uuid, an
//! attachment is a MessageAttachment. Each case is a bug schemathesis found
//! (B1-B7 in the commit that fixed them); cases as data, each refused with
//! the status and a message naming the field, and stored nowhere.

mod common;

use common::*;
use serde_json::{Value, json};

const ROOM: &str = "0c4a7b00-0000-4000-8000-000000000001";
const NADIA: &str = "thnv_u_nadia_0123456789abcdef0123456789ab";
const HELPER_KEY: &str = "thnv_a_helper_0123456789abcdef0123456789ab";
const SCOUT: &str = "a9e17000-0000-4000-8000-000000000004";
const STREAMER: &str = "6819a0e484df0fc342cea507";

/// Who sends a case.
#[derive(Clone, Copy)]
enum As {
    Ada,
    Helper,
    Nadia,
}

struct Case {
    what: &'static str,
    who: As,
    method: &'static str,
    path: String,
    body: Value,
    status: u16,
    /// A fragment of the error message (it names the field).
    says: &'static str,
}

fn cases() -> Vec<Case> {
    let case = |what, who, method, path: &str, body, status, says| Case {
        what,
        who,
        method,
        path: path.to_string(),
        body,
        status,
        says,
    };
    let room = |tail: &str| format!("/api/v1/me/chats/{ROOM}{tail}");
    vec![
        // B1
        case(
            "a task_id that is not a uuid",
            As::Helper,
            "POST",
            "/api/v1/agent/chats",
            json!({"chat": {"task_id": "AAA"}}),
            422,
            "task_id is not a uuid",
        ),
        case(
            "an empty task_id",
            As::Nadia,
            "POST",
            "/api/v1/me/chats",
            json!({"chat": {"task_id": ""}}),
            422,
            "task_id is not a uuid",
        ),
        // B2
        case(
            "an empty event content",
            As::Helper,
            "POST",
            &format!("/api/v1/agent/chats/{ROOM}/events"),
            json!({"event": {"content": "", "message_type": "thought"}}),
            422,
            "content must not be empty",
        ),
        case(
            "a null event metadata",
            As::Helper,
            "POST",
            &format!("/api/v1/agent/chats/{ROOM}/events"),
            json!({"event": {"content": "x", "message_type": "thought", "metadata": null}}),
            422,
            "metadata",
        ),
        // B3
        case(
            "an agent registered without a description",
            As::Nadia,
            "POST",
            "/api/v1/me/agents/register",
            json!({"agent": {"name": "NoDesc"}}),
            422,
            "description is required",
        ),
        // B4
        case(
            "a mention with a null name",
            As::Nadia,
            "POST",
            &room("/messages"),
            json!({"message": {"content": "hi", "mentions": [{"id": SCOUT, "name": null}]}}),
            422,
            "name must be a string",
        ),
        // B5
        case(
            "a participant with a null role",
            As::Nadia,
            "POST",
            &room("/participants"),
            json!({"participant": {"participant_id": SCOUT, "role": null}}),
            422,
            "role must be a string",
        ),
        // B6
        case(
            "a null orgId",
            As::Ada,
            "POST",
            "/api/agents",
            json!({"name": "n", "orgId": null}),
            400,
            "null",
        ),
        case(
            "a null chat key",
            As::Ada,
            "POST",
            "/api/chats",
            json!({"key": null}),
            400,
            "null",
        ),
        case(
            "a null name in an agent update",
            As::Ada,
            "PUT",
            &format!("/api/agents/{STREAMER}"),
            json!({"name": null}),
            400,
            "null",
        ),
        case(
            "an empty install name",
            As::Ada,
            "POST",
            &format!("/api/agents/{STREAMER}/event-handlers"),
            json!({"name": "", "pluginId": "681f23cc38780a323859233f", "events": ["AGENT_CHAT_JOINED"],
                    "scopes": ["AGENT_CHAT_WRITE"], "eventDispatchMode": "ASYNC"}),
            400,
            "name must not be empty",
        ),
        // B7
        case(
            "an attachment url that is not a URL",
            As::Ada,
            "POST",
            "/api/messages",
            json!({"chatId": WELCOME, "content": "x", "attachments": [{"url": "not a url"}]}),
            400,
            "attachments[0] url",
        ),
        case(
            "a legacy attachment without its type",
            As::Ada,
            "POST",
            "/api/messages",
            json!({"chatId": WELCOME, "content": "x", "attachments": [{"content": "no type"}]}),
            400,
            "attachments[0]",
        ),
        case(
            "an empty chatKey",
            As::Ada,
            "POST",
            "/api/messages",
            json!({"chatId": WELCOME, "content": "x", "chatKey": ""}),
            400,
            "chatKey must not be empty",
        ),
        case(
            "a null message type",
            As::Ada,
            "POST",
            "/api/messages",
            json!({"chatId": WELCOME, "content": "x", "type": null}),
            400,
            "type must not be null",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_are_read_as_their_schemas_say_and_refused_otherwise() {
    let mock = start().await;
    let http = reqwest::Client::new();
    let count = |path: &'static str, key: &'static str| {
        let (http, url) = (http.clone(), format!("{}{path}", mock.url()));
        async move {
            let v: Value = http
                .get(url)
                .header("x-api-key", key)
                .send()
                .await
                .expect("list")
                .json()
                .await
                .expect("json");
            v["data"].as_array().map_or(0, Vec::len)
        }
    };
    let rooms_before = count("/api/v1/me/chats", NADIA).await;
    let mut problems = Vec::new();
    for c in cases() {
        let mut req = http.request(
            c.method.parse().expect("method"),
            format!("{}{}", mock.url(), c.path),
        );
        req = match c.who {
            As::Ada => req.bearer_auth(ADA),
            As::Helper => req.header("x-api-key", HELPER_KEY),
            As::Nadia => req.header("x-api-key", NADIA),
        };
        let r = req.json(&c.body).send().await.expect("request");
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let message = body["error"]["message"].as_str().unwrap_or_default();
        if status != c.status || !message.contains(c.says) {
            problems.push(format!(
                "{}: expected {} naming {:?}, got {status} {body}",
                c.what, c.status, c.says
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(
        count("/api/v1/me/chats", NADIA).await,
        rooms_before,
        "no refused room was stored"
    );
    mock.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn thenvoi_errors_carry_a_request_id_as_the_band_sdk_requires() {
    let mock = start().await;
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/agent/chats", mock.url()))
        .header("x-api-key", HELPER_KEY)
        .json(&json!({"chat": {"task_id": "nope"}}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.expect("json");
    let id = body["error"]["request_id"].as_str().unwrap_or_default();
    assert!(id.starts_with("req_") && id.len() > 4, "{body}");
    assert_schema("thenvoi/responses/error", &body);
    mock.stop().await.expect("clean stop");
}
