//! `rest.envelope`, `rest.auth`, `rest.errors`, `agents`, `chats`.

use serde_json::json;

use super::kit::{
    Sock, Step, create_chat, ensure, envelope, need, rest, rest_raw, run, schema, short, status,
};
use crate::case::{Case, Ctx, Level::*};

const UNKNOWN_ID: &str = "ffffffffffffffffffffffff";
const WELL_FORMED_UNKNOWN_TOKEN: &str = "user-000000000000000000000000.00000000000000000000000000000000.00000000000000000000000000000000.000000000000000000000000000000000000000000000000";

fn success_2xx(r: &super::kit::Rest, what: &str) -> Step<()> {
    ensure(
        (200..300).contains(&r.status),
        &[&format!("2xx for {what}")],
        format!("{} {}", r.status, short(&r.body)),
        &r.curl,
    )
}

async fn refused_with(cx: &Ctx, token: Option<&str>, status: u16, path: &str) -> Step<()> {
    let r = rest(cx, "GET", path, token, None).await?;
    envelope(cx, &r)?;
    ensure(
        r.status == status,
        &[&format!("{status} with the error envelope")],
        format!("{} {}", r.status, short(&r.body)),
        &r.curl,
    )?;
    ensure(
        r.body["ok"] == false
            && r.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
        &["{ok: false, error: {message}}"],
        short(&r.body),
        &r.curl,
    )
}

async fn a_chat(cx: &Ctx) -> Step<(String, String)> {
    let a = need(cx.profile.user(0), "first user")?;
    let chat = create_chat(cx, &a.token, json!([])).await?;
    Ok((a.token, chat))
}

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "rest.envelope.1",
            level: Must,
            desc: "POST /api/chats and read the body",
            requirement: "R5: every response body is the envelope {ok, data?, error?: {message}, meta?}; a success has ok: true",
            run: |cx| {
                run(async move {
                    let a = need(cx.profile.user(0), "first user")?;
                    let r = rest(
                        &cx,
                        "POST",
                        "/api/chats",
                        Some(&a.token),
                        Some(&json!({ "participants": [] })),
                    )
                    .await?;
                    envelope(&cx, &r)?;
                    ensure(
                        r.body["ok"] == true && r.body.get("data").is_some(),
                        &["{ok: true, data: Chat}"],
                        short(&r.body),
                        &r.curl,
                    )
                })
            },
        },
        Case {
            id: "rest.envelope.2",
            level: Must,
            desc: "GET a chat that does not exist",
            requirement: "R5: errors are {ok: false, error: {message}} with a message a person can act on",
            run: |cx| {
                run(async move {
                    let a = need(cx.profile.user(0), "first user")?;
                    let r = rest(
                        &cx,
                        "GET",
                        &format!("/api/chats/{UNKNOWN_ID}"),
                        Some(&a.token),
                        None,
                    )
                    .await?;
                    envelope(&cx, &r)?;
                    ensure(
                        r.status >= 400 && r.body["ok"] == false,
                        &["a 4xx with {ok: false, error: {message}}"],
                        format!("{} {}", r.status, short(&r.body)),
                        &r.curl,
                    )
                })
            },
        },
        Case {
            id: "rest.envelope.3",
            level: Must,
            desc: "GET an unknown route under /api",
            requirement: "R5: the envelope on every response, unknown routes included",
            run: |cx| {
                run(async move {
                    let a = need(cx.profile.user(0), "first user")?;
                    let r =
                        rest(&cx, "GET", "/api/no-such-route-here", Some(&a.token), None).await?;
                    envelope(&cx, &r)?;
                    ensure(
                        r.body["ok"] == false,
                        &["{ok: false, error: {message}}"],
                        short(&r.body),
                        &r.curl,
                    )
                })
            },
        },
        Case {
            id: "rest.auth.1",
            level: Must,
            desc: "GET a chat with no Authorization header",
            requirement: "R3/R6: a missing token is 401 (STATED)",
            run: |cx| {
                run(async move {
                    refused_with(&cx, None, 401, &format!("/api/chats/{UNKNOWN_ID}")).await
                })
            },
        },
        Case {
            id: "rest.auth.2",
            level: Must,
            desc: "GET a chat with a malformed token (user-nope)",
            requirement: "R3/R6: an invalid token is 401 (STATED)",
            run: |cx| {
                run(async move {
                    refused_with(
                        &cx,
                        Some("user-nope"),
                        401,
                        &format!("/api/chats/{UNKNOWN_ID}"),
                    )
                    .await
                })
            },
        },
        Case {
            id: "rest.auth.3",
            level: Must,
            desc: "GET a chat with a well-formed token the server never issued",
            requirement: "R3/R6: an unknown token is 401 (STATED)",
            run: |cx| {
                run(async move {
                    refused_with(
                        &cx,
                        Some(WELL_FORMED_UNKNOWN_TOKEN),
                        401,
                        &format!("/api/chats/{UNKNOWN_ID}"),
                    )
                    .await
                })
            },
        },
        Case {
            id: "rest.auth.4",
            level: Must,
            desc: "GET a chat with a deleted (revoked) token",
            requirement: "R3/R6: a deleted token stops working: 401 (STATED)",
            run: |cx| {
                run(async move {
                    let t = need(cx.profile.revoked_token.as_ref(), "revokedToken")?;
                    refused_with(&cx, Some(&t), 401, &format!("/api/chats/{UNKNOWN_ID}")).await
                })
            },
        },
        Case {
            id: "rest.auth.5",
            level: Must,
            desc: "User 2 reads the messages of user 1's chat",
            requirement: "R13 and the security rule: a token acts only as its own entity; a non-participant can never read a chat",
            run: |cx| {
                run(async move {
                    let (_, chat) = a_chat(&cx).await?;
                    let b = need(cx.profile.user(1), "second user")?;
                    let r = rest(
                        &cx,
                        "GET",
                        &format!("/api/chats/{chat}/messages"),
                        Some(&b.token),
                        None,
                    )
                    .await?;
                    status(
                        &cx,
                        &r,
                        |s| (400..500).contains(&s),
                        "a 4xx refusal (403 preferred)",
                    )
                })
            },
        },
        Case {
            id: "rest.auth.6",
            level: Should,
            desc: "User 2 reads user 1's chat: the status",
            requirement: "R6/R13: authenticated but not allowed is 403 (CHOSEN)",
            run: |cx| {
                run(async move {
                    let (_, chat) = a_chat(&cx).await?;
                    let b = need(cx.profile.user(1), "second user")?;
                    refused_with(&cx, Some(&b.token), 403, &format!("/api/chats/{chat}")).await
                })
            },
        },
        Case {
            id: "rest.errors.1",
            level: Should,
            desc: "POST /api/chats with malformed JSON",
            requirement: "R6: malformed input is 400 (CHOSEN); never a 5xx",
            run: |cx| {
                run(async move {
                    let a = need(cx.profile.user(0), "first user")?;
                    let r = rest_raw(
                        &cx,
                        "POST",
                        "/api/chats",
                        Some(&a.token),
                        Some(("application/json", "{\"participants\": [".into())),
                    )
                    .await?;
                    status(&cx, &r, |s| s == 400, "400 with the error envelope")
                })
            },
        },
        Case {
            id: "rest.errors.2",
            level: Should,
            desc: "GET a chat id that does not exist",
            requirement: "R6: an unknown resource is 404 (CHOSEN)",
            run: |cx| {
                run(async move {
                    let a = need(cx.profile.user(0), "first user")?;
                    refused_with(
                        &cx,
                        Some(&a.token),
                        404,
                        &format!("/api/chats/{UNKNOWN_ID}"),
                    )
                    .await
                })
            },
        },
        Case {
            id: "rest.errors.3",
            level: Should,
            desc: "DELETE /api/chats (a known route, a wrong method)",
            requirement: "R6: a wrong method is 405 (CHOSEN)",
            run: |cx| {
                run(async move {
                    let a = need(cx.profile.user(0), "first user")?;
                    let r = rest(&cx, "DELETE", "/api/chats", Some(&a.token), None).await?;
                    status(&cx, &r, |s| s == 405, "405 with the error envelope")
                })
            },
        },
        Case {
            id: "rest.errors.4",
            level: Should,
            desc: "POST /api/chats with Content-Type: text/plain",
            requirement: "R6: a body that is not JSON is 415 (CHOSEN)",
            run: |cx| {
                run(async move {
                    let a = need(cx.profile.user(0), "first user")?;
                    let r = rest_raw(
                        &cx,
                        "POST",
                        "/api/chats",
                        Some(&a.token),
                        Some(("text/plain", "hello".into())),
                    )
                    .await?;
                    status(&cx, &r, |s| s == 415, "415 with the error envelope")
                })
            },
        },
        Case {
            id: "rest.errors.5",
            level: Should,
            desc: "POST /api/chats with a participant of unknown type",
            requirement: "R6: invalid input is 400 (CHOSEN); no route answers 500",
            run: |cx| {
                run(async move {
                    let a = need(cx.profile.user(0), "first user")?;
                    let body = json!({ "participants": [{ "id": UNKNOWN_ID, "type": "BOT" }] });
                    let r = rest(&cx, "POST", "/api/chats", Some(&a.token), Some(&body)).await?;
                    status(&cx, &r, |s| s == 400, "400 with the error envelope")
                })
            },
        },
        Case {
            id: "agents.1",
            level: Must,
            desc: "GET the streaming agent",
            requirement: "Agent glossary: GET /api/agents/:id returns the Agent (schemas/objects/agent.json)",
            run: |cx| {
                run(async move {
                    let a = need(cx.profile.user(0), "first user")?;
                    let agent = need(cx.profile.agents.streaming.as_ref(), "streaming agent")?;
                    let r = rest(
                        &cx,
                        "GET",
                        &format!("/api/agents/{agent}"),
                        Some(&a.token),
                        None,
                    )
                    .await?;
                    envelope(&cx, &r)?;
                    success_2xx(&r, "a visible agent")?;
                    schema(&cx, "objects/agent", r.data(), &r.curl)?;
                    ensure(
                        r.data()["id"] == agent.as_str(),
                        &[&format!("data.id = {agent}")],
                        short(r.data()),
                        &r.curl,
                    )
                })
            },
        },
        Case {
            id: "agents.2",
            level: Must,
            desc: "User 2 (outside the org) GETs an org-private agent",
            requirement: "Agents (STATED): you must be a member of the organization to see a non-public agent",
            run: |cx| {
                run(async move {
                    let b = need(cx.profile.user(1), "second user")?;
                    let agent = need(cx.profile.agents.echo.as_ref(), "org-private (echo) agent")?;
                    let r = rest(
                        &cx,
                        "GET",
                        &format!("/api/agents/{agent}"),
                        Some(&b.token),
                        None,
                    )
                    .await?;
                    status(
                        &cx,
                        &r,
                        |s| (400..500).contains(&s),
                        "a 4xx refusal (403 or 404)",
                    )
                })
            },
        },
        Case {
            id: "agents.3",
            level: Should,
            desc: "Create an agent, update one field with PUT, delete it",
            requirement: "Agents: PUT /api/agents/:id is a partial update; DELETE removes the agent (CHOSEN statuses 201/200/404)",
            run: |cx| {
                run(async move {
                    let a = need(cx.profile.user(0), "first user")?;
                    let r = rest(
                        &cx,
                        "POST",
                        "/api/agents",
                        Some(&a.token),
                        Some(&json!({ "name": "Conformance probe", "goal": "Probe" })),
                    )
                    .await?;
                    status(&cx, &r, |s| s == 201, "201 with the new Agent")?;
                    schema(&cx, "objects/agent", r.data(), &r.curl)?;
                    let id = r.data()["id"].as_str().unwrap_or_default().to_string();
                    let u = rest(
                        &cx,
                        "PUT",
                        &format!("/api/agents/{id}"),
                        Some(&a.token),
                        Some(&json!({ "description": "changed" })),
                    )
                    .await?;
                    envelope(&cx, &u)?;
                    ensure(
                        u.status == 200
                            && u.data()["description"] == "changed"
                            && u.data()["goal"] == "Probe",
                        &["200; description changed, goal kept"],
                        short(&u.body),
                        &u.curl,
                    )?;
                    let d = rest(
                        &cx,
                        "DELETE",
                        &format!("/api/agents/{id}"),
                        Some(&a.token),
                        None,
                    )
                    .await?;
                    envelope(&cx, &d)?;
                    let g = rest(
                        &cx,
                        "GET",
                        &format!("/api/agents/{id}"),
                        Some(&a.token),
                        None,
                    )
                    .await?;
                    ensure(
                        d.status == 200 && g.status == 404,
                        &["DELETE 200, then GET 404"],
                        format!("DELETE {}, GET {}", d.status, g.status),
                        &g.curl,
                    )
                })
            },
        },
        Case {
            id: "chats.1",
            level: Must,
            desc: "POST /api/chats with the streaming agent as participant",
            requirement: "R7: POST /api/chats creates a chat and returns it (schemas/objects/chat.json)",
            run: |cx| {
                run(async move {
                    let a = need(cx.profile.user(0), "first user")?;
                    let agent = need(cx.profile.agents.streaming.as_ref(), "streaming agent")?;
                    let body = json!({ "participants": [{ "id": agent, "type": "AGENT" }] });
                    let r = rest(&cx, "POST", "/api/chats", Some(&a.token), Some(&body)).await?;
                    envelope(&cx, &r)?;
                    success_2xx(&r, "creating a chat")?;
                    schema(&cx, "objects/chat", r.data(), &r.curl)
                })
            },
        },
        Case {
            id: "chats.2",
            level: Should,
            desc: "POST /api/chats: the status of a creation",
            requirement: "R6: a newly created resource is 201 (CHOSEN)",
            run: |cx| {
                run(async move {
                    let a = need(cx.profile.user(0), "first user")?;
                    let r = rest(
                        &cx,
                        "POST",
                        "/api/chats",
                        Some(&a.token),
                        Some(&json!({ "participants": [] })),
                    )
                    .await?;
                    ensure(
                        r.status == 201,
                        &["201"],
                        format!("{} {}", r.status, short(&r.body)),
                        &r.curl,
                    )
                })
            },
        },
        Case {
            id: "chats.3",
            level: Must,
            desc: "Create a chat, then join its room as the creator",
            requirement: "R7: the caller is always added as a participant (STATED)",
            run: |cx| {
                run(async move {
                    let (token, chat) = a_chat(&cx).await?;
                    let mut s = Sock::authed(&cx, &token, "creator").await?;
                    let ack = s.ack("chat:join", &json!({ "chatId": chat })).await?;
                    s.close().await;
                    ensure(
                        ack.get("data").is_some() && ack.get("error").is_none(),
                        &["{data} (the creator is a participant)"],
                        short(&ack),
                        "",
                    )
                })
            },
        },
        Case {
            id: "chats.4",
            level: Should,
            desc: "POST /api/chats twice with the same key",
            requirement: "R7: key is find-or-create; a reuse returns the existing chat unchanged, with 200 (CHOSEN)",
            run: |cx| {
                run(async move {
                    let a = need(cx.profile.user(0), "first user")?;
                    let key = format!("conformance-{}", std::process::id());
                    let body = json!({ "participants": [], "key": key });
                    let first =
                        rest(&cx, "POST", "/api/chats", Some(&a.token), Some(&body)).await?;
                    let again =
                        rest(&cx, "POST", "/api/chats", Some(&a.token), Some(&body)).await?;
                    // Both ids must exist: two missing ids compare equal.
                    let id = first.data()["id"].as_str().filter(|s| !s.is_empty());
                    ensure(
                        id.is_some()
                            && first.data()["id"] == again.data()["id"]
                            && again.status == 200,
                        &["the same chat id (a non-empty string), and 200 for the reuse"],
                        format!(
                            "{} then {}: {} / {}",
                            first.status,
                            again.status,
                            first.data()["id"],
                            again.data()["id"]
                        ),
                        &again.curl,
                    )
                })
            },
        },
    ]
}
