//! `thenvoi.rest.*`: the REST surface (docs/THENVOI.md T29–T39, T51): keys,
//! the envelope, status codes, strict bodies, sending, events,
//! participants, rooms, peers, context and the Human API the other groups
//! set themselves up with.

use serde_json::{Value, json};

use super::super::kit::{Step, ensure, run, short};
use super::kit::{
    add, agent, api, api_raw, expect, expect_error, field, foreign_agent, ids, other, owner, room,
    say, tv,
};
use crate::case::{Case, CaseFuture, Ctx, Level, Level::*};

const T29: &str = "T29: every call carries X-API-Key; no key or an unknown one is 401 unauthorized; a user key on /agent or an agent key on /me is 403 forbidden; Authorization is not read (STATED, CHOSEN)";
const T30: &str =
    "T30: an error body is {\"error\": {\"code\", \"message\", …}}, code snake_case (STATED, SDK)";
const T31: &str = "T31: 404 for an unknown resource or a room the caller does not take part in; 400 for a body that is not a JSON object; 201 for a creation (STATED, SDK, CHOSEN)";
const T32: &str = "T32: request bodies are strict: any property the endpoint does not take is 400, even beside valid ones (STATED)";
const T34: &str = "T34: POST …/messages takes {message: {content, mentions: [{id}] }} with at least one mention of a participant (422 otherwise) and answers 201 {data: {id, success, recipients}} (STATED, SDK, CHOSEN)";
const T35: &str = "T35: POST …/events records {event: {content, message_type}} and answers 201 {data: {id, message_type, success: true}} (STATED, SDK)";
const T36: &str = "T36: participants: GET lists them; POST {participant: {participant_id, role?}} by an owner or admin agent is 201 (403 for a member, 422 already in); DELETE is 200, 404 when not in the room (STATED, SDK, CHOSEN)";
const T37: &str = "T37: POST /agent/chats creates a room (201 {data: room}); GET /agent/chats/{id} answers it; GET /agent/chats lists the agent's rooms (STATED, SDK)";
const T38: &str = "T38: GET /agent/me answers the agent; GET /agent/peers lists agents of the same owner and the owner, never itself; not_in_chat leaves out the room's participants (STATED, SDK)";
const T39: &str = "T39: /context is every message the agent sent, of any type, and every text message mentioning it, oldest first, with metadata and meta (STATED, SDK)";
const T51: &str = "T51: the Human API: register an agent (201, key once), create and list chats, post and list messages newest first, add and remove participants (STATED, SDK)";

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
            Must,
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
            Must,
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
            "thenvoi.rest.14",
            Must,
            "GET participants lists the room's user and agents",
            T36,
            |cx| run(rest14(cx)),
        ),
        c(
            "thenvoi.rest.15",
            Must,
            "An owner agent adds a peer (201), and adding it again is 422",
            T36,
            |cx| run(rest15(cx)),
        ),
        c(
            "thenvoi.rest.16",
            Should,
            "A member agent adding a participant is 403",
            T36,
            |cx| run(rest16(cx)),
        ),
        c(
            "thenvoi.rest.17",
            Must,
            "DELETE of a participant answers 200 with it, and 404 once it is gone",
            T36,
            |cx| run(rest17(cx)),
        ),
        c(
            "thenvoi.rest.18",
            Must,
            "POST /agent/chats creates a room the agent then reads and lists",
            T37,
            |cx| run(rest18(cx)),
        ),
        c(
            "thenvoi.rest.19",
            Must,
            "GET /agent/chats/{id} answers a room the agent was added to",
            T37,
            |cx| run(rest19(cx)),
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
        c(
            "thenvoi.rest.23",
            Must,
            "POST /me/agents/register answers 201 with the agent and its api_key",
            T51,
            |cx| run(rest23(cx)),
        ),
        c(
            "thenvoi.rest.24",
            Must,
            "POST /me/chats makes the user owner; GET /me/chats and /me/chats/{id} show the room",
            T51,
            |cx| run(rest24(cx)),
        ),
        c(
            "thenvoi.rest.25",
            Must,
            "GET /me/chats/{id}/messages lists every message, events included, newest first",
            T51,
            |cx| run(rest25(cx)),
        ),
        c(
            "thenvoi.rest.26",
            Must,
            "A user adds another user and removes a participant through /me",
            T51,
            |cx| run(rest26(cx)),
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

async fn participants(cx: &Ctx, key: &str, on: &str, rid: &str) -> Step<Vec<String>> {
    let r = api(
        cx,
        "GET",
        &format!("/{on}/chats/{rid}/participants"),
        Some(key),
        None,
    )
    .await?;
    expect(cx, &r, 200, Some("thenvoi/responses/participants"))?;
    Ok(ids(&r.body))
}

async fn rest14(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let (u, a, b) = (owner(&t), agent(&t, 0), agent(&t, 1));
    let rid = room(&cx, &t, &[&a, &b]).await?;
    let mut got = participants(&cx, &a.api_key, "agent", &rid).await?;
    got.sort();
    let mut want = vec![u.id.clone(), a.id.clone(), b.id.clone()];
    want.sort();
    ensure(
        got == want,
        &[&format!("{want:?}")],
        format!("{got:?}"),
        "GET participants",
    )
}

/// A room created by agent 0 (its owner) through the Agent API.
async fn agent_room(cx: &Ctx, key: &str) -> Step<String> {
    let r = api(
        cx,
        "POST",
        "/agent/chats",
        Some(key),
        Some(&json!({ "chat": {} })),
    )
    .await?;
    expect(cx, &r, 201, Some("thenvoi/responses/chat"))?;
    field(&r, "/data/id")
}

async fn rest15(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let (a, b) = (agent(&t, 0), agent(&t, 1));
    let rid = agent_room(&cx, &a.api_key).await?;
    add(&cx, &a.api_key, "agent", &rid, &b.id).await?;
    let body = json!({ "participant": { "participant_id": b.id } });
    let r = api(
        &cx,
        "POST",
        &format!("/agent/chats/{rid}/participants"),
        Some(&a.api_key),
        Some(&body),
    )
    .await?;
    expect_error(&cx, &r, &[422])
}

async fn rest16(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let (a, c) = (agent(&t, 0), agent(&t, 2));
    let rid = room(&cx, &t, &[&a]).await?;
    let body = json!({ "participant": { "participant_id": c.id } });
    let r = api(
        &cx,
        "POST",
        &format!("/agent/chats/{rid}/participants"),
        Some(&a.api_key),
        Some(&body),
    )
    .await?;
    expect_error(&cx, &r, &[403])
}

async fn rest17(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let (u, a, b) = (owner(&t), agent(&t, 0), agent(&t, 1));
    let rid = room(&cx, &t, &[&a, &b]).await?;
    let path = format!("/me/chats/{rid}/participants/{}", b.id);
    let r = api(&cx, "DELETE", &path, Some(&u.api_key), None).await?;
    expect(&cx, &r, 200, Some("thenvoi/responses/participant"))?;
    ensure(
        r.body["data"]["id"] == b.id.as_str(),
        &[&format!("data.id {}", b.id)],
        short(&r.body),
        &r.curl,
    )?;
    let r = api(&cx, "DELETE", &path, Some(&u.api_key), None).await?;
    expect_error(&cx, &r, &[404])
}

async fn rest18(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let a = agent(&t, 0);
    let rid = agent_room(&cx, &a.api_key).await?;
    let r = api(
        &cx,
        "GET",
        &format!("/agent/chats/{rid}"),
        Some(&a.api_key),
        None,
    )
    .await?;
    expect(&cx, &r, 200, Some("thenvoi/responses/chat"))?;
    let mut page = 1;
    loop {
        let r = api(
            &cx,
            "GET",
            &format!("/agent/chats?page={page}&page_size=100"),
            Some(&a.api_key),
            None,
        )
        .await?;
        expect(&cx, &r, 200, Some("thenvoi/responses/chats"))?;
        if ids(&r.body).contains(&rid) {
            return Ok(());
        }
        let pages = r.body["metadata"]["total_pages"].as_u64().unwrap_or(1);
        ensure(
            page < pages && page < 50,
            &[&format!("room {rid} in GET /agent/chats")],
            "not on any page",
            &r.curl,
        )?;
        page += 1;
    }
}

async fn rest19(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let a = agent(&t, 0);
    let rid = room(&cx, &t, &[&a]).await?;
    let r = api(
        &cx,
        "GET",
        &format!("/agent/chats/{rid}"),
        Some(&a.api_key),
        None,
    )
    .await?;
    expect(&cx, &r, 200, Some("thenvoi/responses/chat"))?;
    ensure(
        r.body["data"]["id"] == rid.as_str(),
        &[&format!("data.id {rid}")],
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

async fn rest23(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let body = json!({ "agent": { "name": "Conformance Agent", "description": "registered by the runner" } });
    let r = api(
        &cx,
        "POST",
        "/me/agents/register",
        Some(&other(&t).api_key),
        Some(&body),
    )
    .await?;
    expect(&cx, &r, 201, Some("thenvoi/responses/registered-agent"))?;
    let key = field(&r, "/data/credentials/api_key")?;
    let me = api(&cx, "GET", "/agent/me", Some(&key), None).await?;
    expect(&cx, &me, 200, Some("thenvoi/responses/agent-me"))
}

async fn rest24(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let u = owner(&t);
    let rid = room(&cx, &t, &[]).await?;
    let r = api(
        &cx,
        "GET",
        &format!("/me/chats/{rid}"),
        Some(&u.api_key),
        None,
    )
    .await?;
    expect(&cx, &r, 200, Some("thenvoi/responses/chat"))?;
    let r = api(
        &cx,
        "GET",
        &format!("/me/chats/{rid}/participants"),
        Some(&u.api_key),
        None,
    )
    .await?;
    expect(&cx, &r, 200, Some("thenvoi/responses/participants"))?;
    let me: Vec<&Value> = r.body["data"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    ensure(
        me.iter()
            .any(|p| p["id"] == u.id.as_str() && p["role"] == "owner"),
        &["the user listed with role owner"],
        short(&r.body),
        &r.curl,
    )?;
    let r = api(
        &cx,
        "GET",
        "/me/chats?page_size=100",
        Some(&u.api_key),
        None,
    )
    .await?;
    expect(&cx, &r, 200, Some("thenvoi/responses/chats"))
}

async fn rest25(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let (u, a) = (owner(&t), agent(&t, 0));
    let rid = room(&cx, &t, &[&a]).await?;
    let m1 = say(&cx, &u.api_key, "me", &rid, "first", &[&a.id]).await?;
    let body = json!({ "event": { "content": "thought", "message_type": "thought" } });
    let r = api(
        &cx,
        "POST",
        &format!("/agent/chats/{rid}/events"),
        Some(&a.api_key),
        Some(&body),
    )
    .await?;
    expect(&cx, &r, 201, Some("thenvoi/responses/event-created"))?;
    let m2 = field(&r, "/data/id")?;
    let m3 = say(&cx, &a.api_key, "agent", &rid, "third", &[&u.id]).await?;
    let r = api(
        &cx,
        "GET",
        &format!("/me/chats/{rid}/messages"),
        Some(&u.api_key),
        None,
    )
    .await?;
    expect(&cx, &r, 200, Some("thenvoi/responses/messages-page"))?;
    let want = vec![m3, m2, m1];
    ensure(
        ids(&r.body) == want,
        &[&format!("{want:?} (newest first)")],
        format!("{:?}", ids(&r.body)),
        &r.curl,
    )
}

async fn rest26(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let (u, v, a) = (owner(&t), other(&t), agent(&t, 0));
    let rid = room(&cx, &t, &[&a]).await?;
    add(&cx, &u.api_key, "me", &rid, &v.id).await?;
    let got = participants(&cx, &u.api_key, "me", &rid).await?;
    ensure(
        got.contains(&v.id),
        &[&format!("{} among the participants", v.id)],
        format!("{got:?}"),
        "GET participants",
    )?;
    let r = api(
        &cx,
        "DELETE",
        &format!("/me/chats/{rid}/participants/{}", a.id),
        Some(&u.api_key),
        None,
    )
    .await?;
    expect(&cx, &r, 200, Some("thenvoi/responses/participant"))?;
    let got = participants(&cx, &u.api_key, "me", &rid).await?;
    ensure(
        !got.contains(&a.id),
        &["the removed agent gone"],
        format!("{got:?}"),
        "GET participants",
    )
}
