//! REST through HTTP: every response is the envelope and its data matches its
//! schema; every bad request gets its documented status; pagination follows
//! PROTOCOL.md R8–R13.

mod common;

use std::collections::HashSet;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn the_whole_rest_surface_answers_with_schema_valid_data() {
    let mock = start().await;
    let http = Http::new(&mock);

    let agents = http.get("/api/agents", ADA).await;
    assert_eq!(agents.status, 200);
    for a in agents.body["data"].as_array().expect("list") {
        assert_schema("objects/agent", a);
    }
    let agent = http.get(&format!("/api/agents/{STREAMER}"), GRACE).await;
    assert_eq!(
        agent.status, 200,
        "a public agent is visible to a non-member"
    );
    assert_schema("objects/agent", &agent.body["data"]);

    let created = http
        .post(
            "/api/agents",
            ADA,
            json!({"name": "Billing", "goal": "Help with bills", "orgId": ORG}),
        )
        .await;
    assert_eq!(created.status, 201);
    assert_schema("objects/agent", &created.body["data"]);
    let id = created.body["data"]["id"].as_str().expect("id").to_string();
    let updated = http
        .put(
            &format!("/api/agents/{id}"),
            ADA,
            json!({"description": "Handles billing questions"}),
        )
        .await;
    assert_eq!(updated.status, 200);
    assert_eq!(
        updated.body["data"]["description"],
        "Handles billing questions"
    );
    assert_eq!(
        updated.body["data"]["goal"], "Help with bills",
        "PUT is a partial update"
    );
    assert_schema("objects/agent", &updated.body["data"]);
    let mcps = http.get(&format!("/api/agents/{id}/mcps"), ADA).await;
    assert_eq!((mcps.status, mcps.body["data"].clone()), (200, json!([])));
    let deleted = http
        .send(
            Method::DELETE,
            &format!("/api/agents/{id}"),
            Some(ADA),
            None,
        )
        .await;
    assert_eq!(deleted.status, 200);
    assert_eq!(
        http.get(&format!("/api/agents/{id}"), ADA).await.status,
        404
    );

    let chat = http
        .post(
            "/api/chats",
            ADA,
            json!({"participants": [{"id": STREAMER, "type": "AGENT"}], "title": "t"}),
        )
        .await;
    assert_eq!(chat.status, 201);
    assert_schema("objects/chat", &chat.body["data"]);
    let chat_id = chat.body["data"]["id"].as_str().expect("id").to_string();
    let got = http.get(&format!("/api/chats/{chat_id}"), ADA).await;
    assert_schema("objects/chat", &got.body["data"]);
    let parts = http
        .get(&format!("/api/chats/{chat_id}/participants"), ADA)
        .await;
    let parts = parts.body["data"].as_array().expect("participants").clone();
    assert!(
        parts.contains(&json!({"id": ADA_ID, "type": "USER"})),
        "the caller is added: {parts:?}"
    );
    for p in &parts {
        assert_schema("objects/participant", p);
    }
    let state = http
        .put(
            &format!("/api/chats/{chat_id}"),
            ADA,
            json!({"state": {"ticket": "42"}}),
        )
        .await;
    assert_eq!(state.body["data"]["state"], json!({"ticket": "42"}));
    let added = http
        .post(
            &format!("/api/chats/{chat_id}/participants"),
            ADA,
            json!({"id": ECHO, "type": "AGENT"}),
        )
        .await;
    assert_eq!(added.status, 201);
    let repo = http
        .post("/api/repositories", ADA, json!({"name": "Manuals"}))
        .await;
    assert_eq!(repo.status, 201);
    assert_schema("objects/repository", &repo.body["data"]);
    let repo_id = repo.body["data"]["id"].as_str().expect("id").to_string();
    assert_schema(
        "objects/repository",
        &http
            .get(&format!("/api/repositories/{repo_id}"), ADA)
            .await
            .body["data"],
    );
    let attached = http
        .post(
            &format!("/api/chats/{chat_id}/repositories"),
            ADA,
            json!({"repositoryId": repo_id}),
        )
        .await;
    assert_eq!(attached.status, 200);

    let sent = http
        .post(
            "/api/messages",
            ADA,
            json!({"chatId": chat_id, "content": "hello"}),
        )
        .await;
    assert_eq!(sent.status, 201);
    assert_schema("objects/message", &sent.body["data"]);
    let to_recipients = http.post("/api/messages", ADA, json!({"content": "Hello, how are you?", "recipients": [{"id": STREAMER, "type": "AGENT"}]})).await;
    assert_eq!(to_recipients.status, 201, "{}", to_recipients.body);

    let page = http
        .get(&format!("/api/chats/{WELCOME}/messages"), ADA)
        .await;
    assert_schema("objects/pagination-meta", &page.body["meta"]);
    for m in page.body["data"].as_array().expect("page") {
        assert_schema("objects/message", m);
    }
    for c in http.get("/api/chats", ADA).await.body["data"]
        .as_array()
        .expect("chats")
    {
        assert_schema("objects/chat", c);
    }
    mock.stop().await.expect("clean stop");
}

#[tokio::test]
async fn bad_requests_get_their_status_and_a_message() {
    let mock = start().await;
    let http = Http::new(&mock);
    let revoked = revoked_token();
    type Case<'a> = (Method, String, Option<&'a str>, Option<Value>, u16);
    let cases: Vec<Case> = vec![
        (
            Method::GET,
            format!("/api/chats/{WELCOME}"),
            None,
            None,
            401,
        ),
        (
            Method::GET,
            format!("/api/chats/{WELCOME}"),
            Some("not-a-token"),
            None,
            401,
        ),
        (
            Method::GET,
            format!("/api/chats/{WELCOME}"),
            Some(&revoked),
            None,
            401,
        ),
        (
            Method::GET,
            format!("/api/chats/{WELCOME}"),
            Some(
                "user-000000000000000000000000.00000000000000000000000000000000.00000000000000000000000000000000.000000000000000000000000000000000000000000000000",
            ),
            None,
            401,
        ),
        (
            Method::GET,
            format!("/api/chats/{WELCOME}"),
            Some(GRACE),
            None,
            403,
        ),
        (
            Method::GET,
            format!("/api/chats/{WELCOME}/messages"),
            Some(GRACE),
            None,
            403,
        ),
        (
            Method::GET,
            format!("/api/agents/{ECHO}"),
            Some(GRACE),
            None,
            403,
        ),
        (
            Method::POST,
            "/api/chats".into(),
            Some(GRACE),
            Some(json!({"participants": [{"id": ECHO, "type": "AGENT"}]})),
            403,
        ),
        (
            Method::GET,
            "/api/chats/ffffffffffffffffffffffff".into(),
            Some(ADA),
            None,
            404,
        ),
        (Method::GET, "/api/chats/nope".into(), Some(ADA), None, 404),
        (
            Method::GET,
            "/api/nothing-here".into(),
            Some(ADA),
            None,
            404,
        ),
        (Method::GET, "/elsewhere".into(), None, None, 404),
        (Method::DELETE, "/api/chats".into(), Some(ADA), None, 405),
        (
            Method::POST,
            "/api/chats".into(),
            Some(ADA),
            Some(json!({"participants": {"id": STREAMER}})),
            400,
        ),
        (
            Method::POST,
            "/api/chats".into(),
            Some(ADA),
            Some(json!({"participants": [{"id": STREAMER, "type": "BOT"}]})),
            400,
        ),
        (
            Method::POST,
            "/api/chats".into(),
            Some(ADA),
            Some(json!([1, 2])),
            400,
        ),
        (
            Method::POST,
            "/api/agents".into(),
            Some(ADA),
            Some(json!({"goal": "no name"})),
            400,
        ),
        (
            Method::PUT,
            format!("/api/agents/{STREAMER}"),
            Some(ADA),
            Some(json!({})),
            400,
        ),
        (
            Method::PUT,
            format!("/api/agents/{STREAMER}"),
            Some(GRACE),
            Some(json!({"name": "mine"})),
            403,
        ),
        (
            Method::POST,
            "/api/messages".into(),
            Some(ADA),
            Some(json!({"content": 5, "chatId": WELCOME})),
            400,
        ),
        (
            Method::POST,
            "/api/messages".into(),
            Some(GRACE),
            Some(json!({"content": "hi", "chatId": WELCOME})),
            403,
        ),
        (
            Method::POST,
            "/api/messages".into(),
            Some(ADA),
            Some(json!({"content": "hi"})),
            400,
        ),
    ];
    for (method, path, token, body, status) in cases {
        let reply = http.send(method.clone(), &path, token, body.clone()).await;
        assert_eq!(
            reply.status, status,
            "{method} {path} {body:?} → {}",
            reply.body
        );
        let message = reply.body["error"]["message"]
            .as_str()
            .expect("an error message");
        assert!(
            message.len() > 10,
            "a message a person can act on: {message:?}"
        );
    }

    // Malformed JSON, wrong content type, oversize body: raw requests.
    let raw = |ct: &'static str, body: Vec<u8>| {
        http.client
            .post(format!("{}/api/chats", http.base))
            .bearer_auth(ADA)
            .header("content-type", ct)
            .body(body)
    };
    for (req, status) in [
        (
            raw("application/json", b"{\"participants\": [".to_vec()),
            400,
        ),
        (raw("text/plain", b"{}".to_vec()), 415),
        (raw("application/json", vec![b' '; 2 * 1024 * 1024]), 413),
    ] {
        let resp = req.send().await.expect("reaches the mock");
        assert_eq!(resp.status().as_u16(), status);
        let body: Value = resp.json().await.expect("envelope");
        assert_schema("objects/envelope", &body);
        assert_eq!(body["ok"], false);
    }
    // The docs' curl examples send no content type header at all (curl -d): accepted.
    let resp = raw(
        "application/x-www-form-urlencoded",
        serde_json::to_vec(&json!({"participants": [{"id": STREAMER, "type": "AGENT"}]}))
            .expect("json"),
    )
    .send()
    .await
    .expect("reaches the mock");
    assert_eq!(resp.status().as_u16(), 201);
    mock.stop().await.expect("clean stop");
}

#[tokio::test]
async fn chat_key_is_find_or_create() {
    let mock = start().await;
    let http = Http::new(&mock);
    let body = json!({"participants": [{"id": STREAMER, "type": "AGENT"}], "key": "ticket-7"});
    let first = http.post("/api/chats", ADA, body.clone()).await;
    let again = http.post("/api/chats", ADA, body).await;
    assert_eq!((first.status, again.status), (201, 200));
    assert_eq!(first.body["data"]["id"], again.body["data"]["id"]);
    assert_eq!(
        first.body["data"], again.body["data"],
        "a reuse returns the chat unchanged"
    );
    mock.stop().await.expect("clean stop");
}

async fn walk_pages(http: &Http, chat: &str, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for page in 1.. {
        let r = http
            .get(
                &format!("/api/chats/{chat}/messages?@page={page}&@limit={limit}"),
                ADA,
            )
            .await;
        let items = r.body["data"].as_array().expect("page").clone();
        assert!(items.len() <= limit);
        if items.is_empty() {
            break;
        }
        ids.extend(
            items
                .iter()
                .map(|m| m["id"].as_str().expect("id").to_string()),
        );
    }
    ids
}

async fn walk_cursor(http: &Http, chat: &str, limit: usize) -> Vec<String> {
    let first = http
        .get(&format!("/api/chats/{chat}/messages?@limit={limit}"), ADA)
        .await;
    let mut ids: Vec<String> = first.body["data"]
        .as_array()
        .expect("page")
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_string())
        .collect();
    let mut next = first.body["meta"]["nextCursor"]
        .as_str()
        .map(str::to_string);
    while let Some(cursor) = next {
        let r = http
            .get(
                &format!("/api/chats/{chat}/messages?@cursor={cursor}&@limit={limit}"),
                ADA,
            )
            .await;
        assert_schema("objects/pagination-meta", &r.body["meta"]);
        ids.extend(
            r.body["data"]
                .as_array()
                .expect("page")
                .iter()
                .map(|m| m["id"].as_str().expect("id").to_string()),
        );
        next = r.body["meta"]["nextCursor"].as_str().map(str::to_string);
    }
    ids
}

#[tokio::test]
async fn pagination_walks_are_complete_ordered_and_agree() {
    let mock = start().await;
    let http = Http::new(&mock);
    for limit in [1, 7, 20, 45, 100] {
        let by_page = walk_pages(&http, WELCOME, limit).await;
        let by_cursor = walk_cursor(&http, WELCOME, limit).await;
        assert_eq!(by_page.len(), 45, "limit {limit}: every message once");
        assert_eq!(
            by_page.iter().collect::<HashSet<_>>().len(),
            45,
            "limit {limit}: no duplicates"
        );
        assert_eq!(
            by_page, by_cursor,
            "limit {limit}: page and cursor walks agree"
        );
        let mut sorted = by_page.clone();
        sorted.sort();
        assert_eq!(
            by_page, sorted,
            "oldest first (the world's ids grow with time)"
        );
    }
    let default = http
        .get(&format!("/api/chats/{WELCOME}/messages"), ADA)
        .await;
    assert_eq!(
        default.body["data"].as_array().expect("page").len(),
        20,
        "default @limit is 20"
    );
    assert_eq!(default.body["meta"]["page"], 1);
    let clamped = http
        .get(&format!("/api/chats/{WELCOME}/messages?@limit=500"), ADA)
        .await;
    assert_eq!(
        clamped.body["meta"]["limit"], 100,
        "@limit above 100 is clamped"
    );
    let past = http
        .get(&format!("/api/chats/{WELCOME}/messages?@page=99"), ADA)
        .await;
    assert_eq!((past.status, past.body["data"].clone()), (200, json!([])));
    let encoded = http
        .get(
            &format!("/api/chats/{WELCOME}/messages?%40page=2&%40limit=10"),
            ADA,
        )
        .await;
    let plain = http
        .get(
            &format!("/api/chats/{WELCOME}/messages?@page=2&@limit=10"),
            ADA,
        )
        .await;
    assert_eq!(encoded.body, plain.body, "%40page is @page");
    let cursor = "6832df10b749a23a30105dba";
    let with_page = http
        .get(
            &format!("/api/chats/{WELCOME}/messages?@cursor={cursor}&@page=3&@limit=5"),
            ADA,
        )
        .await;
    let without = http
        .get(
            &format!("/api/chats/{WELCOME}/messages?@cursor={cursor}&@limit=5"),
            ADA,
        )
        .await;
    assert_eq!(with_page.body, without.body, "@cursor makes @page ignored");
    assert_eq!(
        without.body["data"][0]["respondedToId"], cursor,
        "the cursor is exclusive: the page starts right after it"
    );
    for bad in [
        "@limit=0",
        "@limit=abc",
        "@page=0",
        "@page=-1",
        "@page=1.5",
        "@cursor=6832df10b749a23a30105e20",
        "@cursor=zzz",
    ] {
        let r = http
            .get(&format!("/api/chats/{WELCOME}/messages?{bad}"), ADA)
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    mock.stop().await.expect("clean stop");
}

/// Nice values of the mock's background threads (REST handlers, webhooks),
/// from /proc.
#[cfg(target_os = "linux")]
fn background_nice(pid: u32) -> Vec<i64> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| {
            let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
            let (head, rest) = stat.rsplit_once(')')?;
            // The kernel keeps 15 bytes of a thread's name.
            if !head.contains("proteus-backgro") {
                return None;
            }
            // Field 19 of stat (the 17th after the name) is the nice value.
            rest.split_whitespace().nth(16)?.parse().ok()
        })
        .collect()
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn rest_handlers_run_at_the_nice_value_given() {
    use proteus_conformance::testing::MockProcess;
    for (args, want) in [
        (&[][..], 10),
        (&["--rest-nice", "0"][..], 0),
        (&["--rest-nice", "19"][..], 19),
    ] {
        let mock = MockProcess::start(args);
        // The background threads start with the first REST request.
        let answer = reqwest::get(format!("{}/api/agents/{STREAMER}", mock.url))
            .await
            .expect("answers");
        assert_eq!(answer.status(), 401, "no token");
        // A background thread lowers its own priority when it starts: a
        // thread only just spawned may not have yet, so look again briefly.
        let mut nice = background_nice(mock.pid());
        for _ in 0..50 {
            if !nice.is_empty() && nice.iter().all(|n| *n == want) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            nice = background_nice(mock.pid());
        }
        assert!(
            !nice.is_empty() && nice.iter().all(|n| *n == want),
            "{args:?}: background threads at nice {nice:?}, expected all {want}"
        );
    }
    let refused = std::process::Command::new(proteus_conformance::testing::mock_binary())
        .args(["--rest-nice", "25"])
        .output()
        .expect("runs");
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("25 is not in 0..=19"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[tokio::test]
async fn a_chat_past_its_history_bound_pages_its_latest_messages_only() {
    let mock = proteus_mock::start(
        proteus_mock::world::World::default_world(),
        proteus_mock::Config {
            history: 3,
            ..proteus_mock::Config::default()
        },
    )
    .await
    .expect("mock starts");
    let http = Http::new(&mock);
    let chat = http
        .post(
            "/api/chats",
            ADA,
            json!({"participants": [{"id": GRACE_ID, "type": "USER"}]}),
        )
        .await;
    assert_eq!(chat.status, 201, "{}", chat.body);
    let chat = chat.body["data"]["id"].as_str().expect("id").to_string();
    let mut sent = Vec::new();
    for i in 0..5 {
        let r = http
            .post(
                "/api/messages",
                ADA,
                json!({"chatId": chat, "content": format!("m{i}")}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        sent.push(r.body["data"]["id"].as_str().expect("id").to_string());
    }
    assert_eq!(walk_pages(&http, &chat, 2).await, sent[2..].to_vec());
    assert_eq!(walk_cursor(&http, &chat, 2).await, sent[2..].to_vec());
    let page = http.get(&format!("/api/chats/{chat}/messages"), ADA).await;
    assert_eq!(page.body["meta"]["total"], 3, "{}", page.body);
    let forgotten = http
        .get(
            &format!("/api/chats/{chat}/messages?@cursor={}", sent[0]),
            ADA,
        )
        .await;
    assert_eq!(
        forgotten.status, 400,
        "a forgotten cursor is not a message of the chat"
    );
    let stats = http.get("/__admin/stats", ADA).await;
    assert_eq!(
        stats.body["data"]["store"]["messagesForgotten"], 2,
        "{}",
        stats.body
    );
    mock.stop().await.expect("clean stop");
}
