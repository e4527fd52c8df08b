//! `thenvoi.rest.1`–`13` and `.20`–`22`: the REST surface
//! (docs/THENVOI.md T29–T35, T38–T39): keys, the error envelope, status
//! codes, strict bodies, sending, events, the agent itself, its peers and
//! its context. Rooms, participants and the Human API are in `rooms`.

use serde_json::json;

use super::super::kit::{Step, ensure, run, short};
use super::kit::{
    agent, api, api_raw, expect, expect_error, field, foreign_agent, ids, owner, room, say, tv,
};
use crate::case::{Case, CaseFuture, Ctx, Level, Level::*};

const T29: &str = "T29: every call carries X-API-Key; no key or an unknown one is 401 unauthorized; a user key on /agent or an agent key on /me is 403 forbidden; Authorization is not read (STATED, CHOSEN)";
const T30: &str =
    "T30: an error body is {\"error\": {\"code\", \"message\", …}}, code snake_case (STATED, SDK)";
const T31: &str = "T31: 404 for an unknown resource or a room the caller does not take part in; 400 for a body that is not a JSON object; 201 for a creation (STATED, SDK, CHOSEN)";
const T32: &str = "T32: request bodies are strict: any property the endpoint does not take is 400, even beside valid ones (STATED)";
const T34: &str = "T34: POST …/messages takes {message: {content, mentions: [{id}] }} with at least one mention of a participant (422 otherwise) and answers 201 {data: {id, success, recipients}} (STATED, SDK, CHOSEN)";
const T35: &str = "T35: POST …/events records {event: {content, message_type}} and answers 201 {data: {id, message_type, success: true}} (STATED, SDK)";
const T38: &str = "T38: GET /agent/me answers the agent; GET /agent/peers lists agents of the same owner and the owner, never itself; not_in_chat leaves out the room's participants (STATED, SDK)";
const T39: &str = "T39: /context is every message the agent sent, of any type, and every text message mentioning it, oldest first, with metadata and meta (STATED, SDK)";

fn c(
    id: &'static str,
    level: Level,
    desc: &'static str,
    requirement: &'static str,
    run: fn(Ctx) -> CaseFuture,
) -> Case {
    Case {
        id,
        level,
        desc,
        requirement,
        run,
    }
}

pub fn cases() -> Vec<Case> {
    vec![
        c(
            "thenvoi.rest.1",
            Must,
            "No key and an unknown X-API-Key are 401 with an error body",
            T29,
            |cx| run(rest1(cx)),
        ),
        c(
            "thenvoi.rest.2",
            Should,
            "A user key on /agent and an agent key on /me are 403",
            T29,
            |cx| run(rest2(cx)),
        ),
        c(
            "thenvoi.rest.3",
            Must,
            "An agent key in Authorization: Bearer (no X-API-Key) is 401",
            T29,
            |cx| run(rest3(cx)),
        ),
        c(
            "thenvoi.rest.4",
            Should,
            "An unknown route answers 404 with {error: {code, message}}",
            T30,
            |cx| run(rest4(cx)),
        ),
        c(
            "thenvoi.rest.5",
            Must,
            "An unknown room id is 404",
            T31,
            |cx| run(rest5(cx)),
        ),
        c(
            "thenvoi.rest.6",
            Must,
            "A room the agent does not take part in is 404 (403 accepted) on its REST routes",
            T31,
            |cx| run(rest6(cx)),
        ),
        c(
            "thenvoi.rest.7",
            Must,
            "A body that is not a JSON object is 400",
            T31,
            |cx| run(rest7(cx)),
        ),
        c(
            "thenvoi.rest.8",
            Should,
            "Creating a room answers 201, not 200",
            T31,
            |cx| run(rest8(cx)),
        ),
        c(
            "thenvoi.rest.9",
            Must,
            "A body with a property no version of the API has is 400",
            T32,
            |cx| run(rest9(cx)),
        ),
        c(
            "thenvoi.rest.10",
            Must,
            "An agent's message answers 201 {id, success, recipients} naming the mentioned participants",
            T34,
            |cx| run(rest10(cx)),
        ),
        c(
            "thenvoi.rest.11",
            Must,
            "A message without mentions is 422",
            T34,
            |cx| run(rest11(cx)),
        ),
        c(
            "thenvoi.rest.12",
            Should,
            "A message mentioning a non-participant is 422",
            T34,
            |cx| run(rest12(cx)),
        ),
        c(
            "thenvoi.rest.13",
            Must,
            "An event answers 201 {id, message_type, success: true}",
            T35,
            |cx| run(rest13(cx)),
        ),
        c(
            "thenvoi.rest.20",
            Must,
            "GET /agent/me answers the agent and its owner",
            T38,
            |cx| run(rest20(cx)),
        ),
        c(
            "thenvoi.rest.21",
            Must,
            "GET /agent/peers lists same-owner agents and the owner, not itself; not_in_chat leaves participants out",
            T38,
            |cx| run(rest21(cx)),
        ),
        c(
            "thenvoi.rest.22",
            Must,
            "/context holds the agent's own messages and events and the texts mentioning it, oldest first, with metadata and meta",
            T39,
            |cx| run(rest22(cx)),
        ),
    ]
}

async fn rest1(cx: Ctx) -> Step<()> {
    // Needs no key of the profile, but only a target that declares the
    // Thenvoi profile is held to its rules.
    tv(&cx)?;
    for key in [None, Some("no-such-key")] {
        let r = api(&cx, "GET", "/agent/me", key, None).await?;
        expect_error(&cx, &r, &[401])?;
        ensure(
            r.body["error"]["code"] == "unauthorized",
            &["error.code unauthorized"],
            short(&r.body),
            &r.curl,
        )?;
    }
    Ok(())
}

async fn rest2(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let r = api(&cx, "GET", "/agent/me", Some(&owner(&t).api_key), None).await?;
    expect_error(&cx, &r, &[403])?;
    let r = api(&cx, "GET", "/me/chats", Some(&agent(&t, 0).api_key), None).await?;
    expect_error(&cx, &r, &[403])
}

async fn rest3(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let key = agent(&t, 0).api_key;
    let url = format!("{}/api/v1/agent/me", cx.profile.base_url);
    let repro = format!("curl -s '{url}' -H 'Authorization: Bearer {key}'");
    let resp = cx
        .http
        .get(&url)
        .bearer_auth(&key)
        .send()
        .await
        .map_err(|e| crate::case::Outcome::fail(["an HTTP response"], e.to_string(), &repro))?;
    let status = resp.status().as_u16();
    ensure(status == 401, &["HTTP 401"], format!("{status}"), &repro)
}

async fn rest4(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let r = api(
        &cx,
        "GET",
        "/agent/no-such-route",
        Some(&agent(&t, 0).api_key),
        None,
    )
    .await?;
    expect_error(&cx, &r, &[404])
}

async fn rest5(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let path = "/agent/chats/00000000-0000-4000-8000-000000000000";
    let r = api(&cx, "GET", path, Some(&agent(&t, 0).api_key), None).await?;
    expect_error(&cx, &r, &[404])
}

async fn rest6(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let (a, b) = (agent(&t, 0), agent(&t, 1));
    let rid = room(&cx, &t, &[&a]).await?;
    for (m, path) in [
        ("GET", format!("/agent/chats/{rid}")),
        ("GET", format!("/agent/chats/{rid}/participants")),
        ("GET", format!("/agent/chats/{rid}/messages")),
        ("GET", format!("/agent/chats/{rid}/context")),
    ] {
        let r = api(&cx, m, &path, Some(&b.api_key), None).await?;
        expect_error(&cx, &r, &[404, 403])?;
    }
    Ok(())
}

async fn rest7(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let a = agent(&t, 0);
    let rid = room(&cx, &t, &[&a]).await?;
    let path = format!("/agent/chats/{rid}/messages");
    for body in ["not json", "[1, 2]"] {
        let r = api_raw(&cx, "POST", &path, Some(&a.api_key), Some(body.into())).await?;
        expect_error(&cx, &r, &[400])?;
    }
    Ok(())
}

async fn rest8(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let a = agent(&t, 0);
    let r = api(
        &cx,
        "POST",
        "/agent/chats",
        Some(&a.api_key),
        Some(&json!({ "chat": {} })),
    )
    .await?;
    expect(&cx, &r, 201, Some("thenvoi/responses/chat"))
}

async fn rest9(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let (a, b) = (agent(&t, 0), agent(&t, 1));
    let rid = room(&cx, &t, &[&a, &b]).await?;
    let body = json!({ "message": { "content": "x", "mentions": [{ "id": b.id }], "conformance_extra": true } });
    let r = api(
        &cx,
        "POST",
        &format!("/agent/chats/{rid}/messages"),
        Some(&a.api_key),
        Some(&body),
    )
    .await?;
    expect_error(&cx, &r, &[400])?;
    let body = json!({ "chat": {}, "conformance_extra": 1 });
    let r = api(&cx, "POST", "/agent/chats", Some(&a.api_key), Some(&body)).await?;
    expect_error(&cx, &r, &[400])
}

async fn rest10(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let (a, b) = (agent(&t, 0), agent(&t, 1));
    let rid = room(&cx, &t, &[&a, &b]).await?;
    let body =
        json!({ "message": { "content": "hi", "mentions": [{ "id": b.id, "name": b.name }] } });
    let r = api(
        &cx,
        "POST",
        &format!("/agent/chats/{rid}/messages"),
        Some(&a.api_key),
        Some(&body),
    )
    .await?;
    expect(&cx, &r, 201, Some("thenvoi/responses/message-sent"))?;
    let recipients = ids(&json!({ "data": r.body["data"]["recipients"].clone() }));
    ensure(
        r.body["data"]["success"] == true && recipients == vec![b.id.clone()],
        &[&format!("success true, recipients [{}]", b.id)],
        short(&r.body),
        &r.curl,
    )
}

async fn rest11(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let a = agent(&t, 0);
    let rid = room(&cx, &t, &[&a]).await?;
    let body = json!({ "message": { "content": "nobody", "mentions": [] } });
    let r = api(
        &cx,
        "POST",
        &format!("/agent/chats/{rid}/messages"),
        Some(&a.api_key),
        Some(&body),
    )
    .await?;
    expect_error(&cx, &r, &[422])
}

async fn rest12(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let (a, c) = (agent(&t, 0), agent(&t, 2));
    let rid = room(&cx, &t, &[&a]).await?;
    let body = json!({ "message": { "content": "outsider", "mentions": [{ "id": c.id }] } });
    let r = api(
        &cx,
        "POST",
        &format!("/agent/chats/{rid}/messages"),
        Some(&a.api_key),
        Some(&body),
    )
    .await?;
    expect_error(&cx, &r, &[422])
}

async fn rest13(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let a = agent(&t, 0);
    let rid = room(&cx, &t, &[&a]).await?;
    let body =
        json!({ "event": { "content": "calling", "message_type": "tool_call", "metadata": {} } });
    let r = api(
        &cx,
        "POST",
        &format!("/agent/chats/{rid}/events"),
        Some(&a.api_key),
        Some(&body),
    )
    .await?;
    expect(&cx, &r, 201, Some("thenvoi/responses/event-created"))?;
    ensure(
        r.body["data"]["message_type"] == "tool_call" && r.body["data"]["success"] == true,
        &["message_type tool_call, success true"],
        short(&r.body),
        &r.curl,
    )
}

async fn rest20(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let (u, a) = (owner(&t), agent(&t, 1));
    let r = api(&cx, "GET", "/agent/me", Some(&a.api_key), None).await?;
    expect(&cx, &r, 200, Some("thenvoi/responses/agent-me"))?;
    ensure(
        r.body["data"]["id"] == a.id.as_str() && r.body["data"]["owner_uuid"] == u.id.as_str(),
        &[&format!("id {}, owner_uuid {}", a.id, u.id)],
        short(&r.body),
        &r.curl,
    )
}

async fn peers(cx: &Ctx, key: &str, query: &str) -> Step<Vec<String>> {
    let r = api(
        cx,
        "GET",
        &format!("/agent/peers?page_size=100{query}"),
        Some(key),
        None,
    )
    .await?;
    expect(cx, &r, 200, Some("thenvoi/responses/peers"))?;
    Ok(ids(&r.body))
}

async fn rest21(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let (u, a, b, c) = (owner(&t), agent(&t, 0), agent(&t, 1), agent(&t, 2));
    let all = peers(&cx, &a.api_key, "").await?;
    ensure(
        all.contains(&b.id) && all.contains(&c.id) && all.contains(&u.id) && !all.contains(&a.id),
        &["agents 1 and 2 of the same owner and the owner, not the agent itself"],
        format!("{all:?}"),
        "GET /api/v1/agent/peers",
    )?;
    if let Ok(f) = foreign_agent(&t) {
        ensure(
            !all.contains(&f.id),
            &["no agent of another owner"],
            format!("{all:?}"),
            "GET /api/v1/agent/peers",
        )?;
    }
    let rid = room(&cx, &t, &[&a, &b]).await?;
    let left = peers(&cx, &a.api_key, &format!("&not_in_chat={rid}")).await?;
    ensure(
        !left.contains(&b.id) && !left.contains(&u.id) && left.contains(&c.id),
        &["not_in_chat leaves out agent 1 and the owner, keeps agent 2"],
        format!("{left:?}"),
        &format!("GET /api/v1/agent/peers?not_in_chat={rid}"),
    )
}

async fn rest22(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let (u, a, b) = (owner(&t), agent(&t, 0), agent(&t, 1));
    let rid = room(&cx, &t, &[&a, &b]).await?;
    let m1 = say(&cx, &u.api_key, "me", &rid, "to a", &[&a.id]).await?;
    say(&cx, &u.api_key, "me", &rid, "to b", &[&b.id]).await?;
    let m3 = say(&cx, &a.api_key, "agent", &rid, "a to b", &[&b.id]).await?;
    let body = json!({ "event": { "content": "tool", "message_type": "tool_call" } });
    let r = api(
        &cx,
        "POST",
        &format!("/agent/chats/{rid}/events"),
        Some(&a.api_key),
        Some(&body),
    )
    .await?;
    expect(&cx, &r, 201, Some("thenvoi/responses/event-created"))?;
    let m4 = field(&r, "/data/id")?;
    let r = api(
        &cx,
        "GET",
        &format!("/agent/chats/{rid}/context"),
        Some(&a.api_key),
        None,
    )
    .await?;
    expect(&cx, &r, 200, Some("thenvoi/responses/context"))?;
    let got = ids(&r.body);
    let want = vec![m1, m3, m4];
    ensure(
        got == want && r.body["meta"] == r.body["metadata"],
        &[&format!("data ids {want:?} and meta equal to metadata")],
        format!("{got:?}; {}", short(&r.body)),
        &r.curl,
    )
}
