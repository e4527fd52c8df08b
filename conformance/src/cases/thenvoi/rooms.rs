//! `thenvoi.rest.14`–`19` and `.23`–`26`: rooms and participants through
//! the Agent API (docs/THENVOI.md T36–T37) and the Human API every other
//! case sets itself up with (T51), checked here once on their own so a
//! set-up failure elsewhere has a case that names it.

use serde_json::{Value, json};

use super::super::kit::{Step, ensure, run, short};
use super::kit::{add, agent, api, expect, expect_error, field, ids, other, owner, room, say, tv};
use crate::case::{Case, CaseFuture, Ctx, Level, Level::*};

const T36: &str = "T36: participants: GET lists them; POST {participant: {participant_id, role?}} by an owner or admin agent is 201 (403 for a member, 422 already in); DELETE is 200, 404 when not in the room (STATED, SDK, CHOSEN)";
const T37: &str = "T37: POST /agent/chats creates a room (201 {data: room}); GET /agent/chats/{id} answers it; GET /agent/chats lists the agent's rooms (STATED, SDK)";
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
    // T36 chooses 422; the MUST is only that the duplicate is refused.
    expect_error(&cx, &r, &[400, 409, 422])
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
    // T36 chooses 404; the MUST is only that it is refused.
    expect_error(&cx, &r, &[400, 404, 422])
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
