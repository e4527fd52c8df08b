//! Helpers the `thenvoi.*` cases share: REST calls with `X-API-Key` that log
//! a curl reproducer and validate every body against `schemas/thenvoi`, and
//! the Human API set-up each case does for itself (a fresh room,
//! participants, messages). The socket is in [`super::phx`]; it is
//! re-exported here so a case imports one kit.

use std::time::Duration;

use serde_json::{Value, json};

use super::super::kit::{Rest, Step, ensure, short};
use crate::case::{Ctx, Outcome};
use crate::profile::{Thenvoi, ThenvoiAgent, ThenvoiUser};

pub use super::phx::{Phx, Refused, is_message, is_push, key_query, socket_url};

/// How long a case waits to be sure a push does not come.
pub const QUIET: Duration = Duration::from_millis(400);

/// The profile's thenvoi object with the fixtures every case relies on, or
/// `Unsupported` (a ProteusAI-only target).
pub fn tv(cx: &Ctx) -> Step<Thenvoi> {
    let t = cx
        .profile
        .thenvoi
        .clone()
        .ok_or_else(|| Outcome::Unsupported("the profile has no thenvoi object".into()))?;
    let (Some(u0), Some(_)) = (t.users.first(), t.users.get(1)) else {
        return Err(Outcome::Unsupported(
            "the profile's thenvoi object lists fewer than two users".into(),
        ));
    };
    if t.agents.iter().filter(|a| a.owner_id == u0.id).count() < 3 {
        return Err(Outcome::Unsupported(
            "the profile's thenvoi object lists fewer than three agents of users[0]".into(),
        ));
    }
    Ok(t)
}

/// The first user (the one who sets rooms up).
pub fn owner(t: &Thenvoi) -> &ThenvoiUser {
    &t.users[0]
}

/// The second user (another owner).
pub fn other(t: &Thenvoi) -> &ThenvoiUser {
    &t.users[1]
}

/// The `n`th agent owned by users\[0\] (`n` < 3, checked by [`tv`]).
pub fn agent(t: &Thenvoi, n: usize) -> ThenvoiAgent {
    let owner = &t.users[0].id;
    t.agents
        .iter()
        .filter(|a| &a.owner_id == owner)
        .nth(n)
        .cloned()
        .unwrap_or_else(|| t.agents[0].clone())
}

/// An agent of users\[1\], when the profile has one.
pub fn foreign_agent(t: &Thenvoi) -> Step<ThenvoiAgent> {
    let other = &t.users[1].id;
    t.agents
        .iter()
        .find(|a| &a.owner_id == other)
        .cloned()
        .ok_or_else(|| Outcome::Unsupported("the profile has no agent of users[1]".into()))
}

/// `s` in single quotes for a POSIX shell.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The curl line of a Thenvoi request (the key header and the body as sent).
pub fn curl(method: &str, url: &str, key: Option<&str>, body: Option<&str>) -> String {
    let mut c = format!("curl -s -X {method} {}", sh_quote(url));
    if let Some(k) = key {
        c.push_str(&format!(" -H {}", sh_quote(&format!("X-API-Key: {k}"))));
    }
    if let Some(b) = body {
        c.push_str(" -H 'Content-Type: application/json' --data-raw ");
        c.push_str(&sh_quote(b));
    }
    c
}

/// Sends a request under `/api/v1` with `X-API-Key`; a body that is not JSON
/// becomes `Value::String` (an empty one `Null`).
pub async fn api(
    cx: &Ctx,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> Step<Rest> {
    api_raw(cx, method, path, key, body.map(Value::to_string)).await
}

/// [`api`] with a raw body.
pub async fn api_raw(
    cx: &Ctx,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<String>,
) -> Step<Rest> {
    let path = if path.starts_with("/api/") || path.starts_with("/__") {
        path.to_string()
    } else {
        format!("/api/v1{path}")
    };
    let url = format!("{}{path}", cx.profile.base_url);
    let repro = curl(method, &url, key, body.as_deref());
    let m = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|e| Outcome::fail(["a valid method"], e.to_string(), ""))?;
    let mut req = cx.http.request(m, &url).timeout(cx.timeout);
    if let Some(k) = key {
        req = req.header("x-api-key", k);
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b);
    }
    let resp = req.send().await.map_err(|e| {
        Outcome::fail(
            ["an HTTP response"],
            format!("request failed: {e}"),
            repro.clone(),
        )
    })?;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    cx.log(format!("{method} {path} → {status} {}", short(&body)));
    Ok(Rest {
        status,
        body,
        curl: repro,
    })
}

/// Validates `v` against `schemas/<name>.json`, recording it for the
/// `schema.*` rows; fails with the schema's complaint.
pub fn valid(cx: &Ctx, name: &'static str, v: &Value, repro: &str) -> Step<()> {
    let errors = cx.record(name, v);
    ensure(
        errors.is_empty(),
        &[&format!("a payload matching schemas/{name}.json")],
        format!("{}: {}", short(v), errors.join("; ")),
        repro,
    )
}

/// Requires status `want` and, for a body, its schema (`None`: no body
/// checked); an error status also validates the error envelope.
pub fn expect(cx: &Ctx, r: &Rest, want: u16, schema: Option<&'static str>) -> Step<()> {
    ensure(
        r.status == want,
        &[&format!("HTTP {want}")],
        format!("{} {}", r.status, short(&r.body)),
        &r.curl,
    )?;
    if want >= 400 {
        return error_body(cx, r);
    }
    match schema {
        Some(s) => valid(cx, s, &r.body, &r.curl),
        None => Ok(()),
    }
}

/// Requires a status `accept` allows and a valid error envelope (T30).
pub fn expect_error(cx: &Ctx, r: &Rest, accept: &[u16]) -> Step<()> {
    ensure(
        accept.contains(&r.status),
        &[&format!("HTTP {accept:?} with an error body")],
        format!("{} {}", r.status, short(&r.body)),
        &r.curl,
    )?;
    error_body(cx, r)
}

fn error_body(cx: &Ctx, r: &Rest) -> Step<()> {
    valid(cx, "thenvoi/responses/error", &r.body, &r.curl)
}

/// A string field of a body, or a failure naming it.
pub fn field(r: &Rest, pointer: &str) -> Step<String> {
    r.body
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| Outcome::fail([format!("{pointer} in the body")], short(&r.body), &r.curl))
}

/// A fresh room of users\[0\] holding `agents` (added through the Human
/// API); returns its id.
pub async fn room(cx: &Ctx, t: &Thenvoi, agents: &[&ThenvoiAgent]) -> Step<String> {
    let key = &owner(t).api_key;
    let r = api(
        cx,
        "POST",
        "/me/chats",
        Some(key),
        Some(&json!({ "chat": {} })),
    )
    .await?;
    expect(cx, &r, 201, Some("thenvoi/responses/chat"))?;
    let id = field(&r, "/data/id")?;
    for a in agents {
        add(cx, key, "me", &id, &a.id).await?;
    }
    Ok(id)
}

/// Adds `who` to `room` as the holder of `key` on the `me` or `agent` API.
pub async fn add(cx: &Ctx, key: &str, on: &str, room: &str, who: &str) -> Step<Rest> {
    let r = api(
        cx,
        "POST",
        &format!("/{on}/chats/{room}/participants"),
        Some(key),
        Some(&json!({ "participant": { "participant_id": who } })),
    )
    .await?;
    expect(cx, &r, 201, Some("thenvoi/responses/participant"))?;
    Ok(r)
}

/// Removes `who` from `room` through the Human API.
pub async fn remove(cx: &Ctx, key: &str, room: &str, who: &str) -> Step<Rest> {
    let r = api(
        cx,
        "DELETE",
        &format!("/me/chats/{room}/participants/{who}"),
        Some(key),
        None,
    )
    .await?;
    expect(cx, &r, 200, Some("thenvoi/responses/participant"))?;
    Ok(r)
}

/// Posts a text message mentioning `mentions` as the holder of `key` on the
/// `me` or `agent` API; returns its id.
pub async fn say(
    cx: &Ctx,
    key: &str,
    on: &str,
    room: &str,
    content: &str,
    mentions: &[&str],
) -> Step<String> {
    let m: Vec<Value> = mentions.iter().map(|id| json!({ "id": id })).collect();
    let r = api(
        cx,
        "POST",
        &format!("/{on}/chats/{room}/messages"),
        Some(key),
        Some(&json!({ "message": { "content": content, "mentions": m } })),
    )
    .await?;
    expect(cx, &r, 201, Some("thenvoi/responses/message-sent"))?;
    field(&r, "/data/id")
}

/// `POST …/messages/{mid}/{what}` as `agent`, with `body`.
pub async fn mark(
    cx: &Ctx,
    agent: &ThenvoiAgent,
    room: &str,
    mid: &str,
    what: &str,
    body: Option<&Value>,
) -> Step<Rest> {
    api(
        cx,
        "POST",
        &format!("/agent/chats/{room}/messages/{mid}/{what}"),
        Some(&agent.api_key),
        body,
    )
    .await
}

/// The ids of a message list body's `data`.
pub fn ids(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
