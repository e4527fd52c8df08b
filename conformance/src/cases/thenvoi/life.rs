//! `thenvoi.life.*` and `thenvoi.page.*`: the agent message lifecycle
//! (docs/THENVOI.md T40–T48, T50) and list pagination (T49). Each case
//! builds a fresh room where users\[0\] mentions agent 0, so the message
//! states it sees are its own doing.

use serde_json::{Value, json};

use super::super::kit::{Rest, Step, ensure, run, short};
use super::kit::{agent, api, expect, expect_error, ids, mark, owner, room, say, tv};
use crate::case::{Case, CaseFuture, Ctx, Level, Level::*};
use crate::profile::ThenvoiAgent;

const T40: &str = "T40: /messages and /messages/next see only the caller's addressed messages: text messages that mention it and that it did not send (STATED, CHOSEN)";
const T42: &str = "T42: POST …/processing starts a new attempt: 200 {id, status: processing, attempt_number, success}, attempt_number the previous plus 1 (STATED, SDK)";
const T43: &str = "T43: POST …/processed closes the attempt: 200 status processed; without an active attempt it is 422 (STATED)";
const T44: &str = "T44: POST …/failed takes {error} (required: 422 otherwise) and answers 200 status failed; without an active attempt it is 422 (STATED)";
const T45: &str = "T45: a lifecycle call on a message not addressed to the caller (its own, one that does not mention it) is 404 (CHOSEN)";
const T46: &str = "T46: Agent API messages show the caller's delivery record in metadata: status, attempts [{attempt_number, status, started_at, completed_at, error}], processed_at (STATED, SDK)";
const T47: &str = "T47: /messages/next answers 200 with the oldest addressed message not processed, processing ones included, or 204 with no body when there is none (STATED)";
const T48: &str = "T48: ?status= filters: absent → not processed; pending, processing, processed, failed, all; anything else 422; after /processed a message shows only in processed and all (STATED, CHOSEN)";
const T49: &str = "T49: lists take page (default 1) and page_size (maximum 100, larger clamped); metadata {page, page_size, total_count, total_pages}; past the end 200 with []; page or page_size below 1 or not an integer is 422 (SDK, CHOSEN)";
const T50: &str = "T50: there is no cap on attempts: /processing after any number of failures starts another (CHOSEN)";

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
            "thenvoi.life.1",
            Must,
            "/messages?status=all lists the mentions of the caller, not its own or others' messages",
            T40,
            |cx| run(life1(cx)),
        ),
        c(
            "thenvoi.life.2",
            Must,
            "The first /processing answers 200 {status: processing, attempt_number: 1, success: true}",
            T42,
            |cx| run(life2(cx)),
        ),
        c(
            "thenvoi.life.3",
            Should,
            "A second /processing starts attempt 2",
            T42,
            |cx| run(life3(cx)),
        ),
        c(
            "thenvoi.life.4",
            Must,
            "/processed answers status processed; the message leaves /next and the default list",
            T43,
            |cx| run(life4(cx)),
        ),
        c(
            "thenvoi.life.5",
            Must,
            "/processed without an active attempt is 422",
            T43,
            |cx| run(life5(cx)),
        ),
        c(
            "thenvoi.life.6",
            Must,
            "/failed {error} answers status failed and the attempt records the error",
            T44,
            |cx| run(life6(cx)),
        ),
        c(
            "thenvoi.life.7",
            Must,
            "/failed without error, or without an active attempt, is 422",
            T44,
            |cx| run(life7(cx)),
        ),
        c(
            "thenvoi.life.8",
            Should,
            "Lifecycle calls on the caller's own message or one that does not mention it are 404",
            T45,
            |cx| run(life8(cx)),
        ),
        c(
            "thenvoi.life.9",
            Must,
            "A message read after /processing shows metadata.status processing and attempt 1",
            T46,
            |cx| run(life9(cx)),
        ),
        c(
            "thenvoi.life.10",
            Must,
            "/messages/next answers the oldest pending message",
            T47,
            |cx| run(life10(cx)),
        ),
        c(
            "thenvoi.life.11",
            Must,
            "/messages/next with nothing to do answers 204 with no body",
            T47,
            |cx| run(life11(cx)),
        ),
        c(
            "thenvoi.life.12",
            Should,
            "/messages/next includes a message still processing (a crashed attempt)",
            T47,
            |cx| run(life12(cx)),
        ),
        c(
            "thenvoi.life.13",
            Must,
            "?status=processed and ?status=all show a processed message; the default, pending and processing lists do not",
            T48,
            |cx| run(life13(cx)),
        ),
        c(
            "thenvoi.life.14",
            Must,
            "A failed message stays in the default, pending and failed lists, and not in processing",
            T48,
            |cx| run(life14(cx)),
        ),
        c(
            "thenvoi.life.15",
            Should,
            "An unknown ?status= is 422",
            T48,
            |cx| run(life15(cx)),
        ),
        c(
            "thenvoi.life.16",
            Info,
            "/processing after five failures starts attempt 6",
            T50,
            |cx| run(life16(cx)),
        ),
        c(
            "thenvoi.page.1",
            Must,
            "metadata is {page, page_size, total_count, total_pages} with total_pages = ceil(total / size)",
            T49,
            |cx| run(page1(cx)),
        ),
        c(
            "thenvoi.page.2",
            Must,
            "A page past the end is 200 with an empty data",
            T49,
            |cx| run(page2(cx)),
        ),
        c(
            "thenvoi.page.3",
            Should,
            "page_size above 100 is clamped to 100",
            T49,
            |cx| run(page3(cx)),
        ),
        c(
            "thenvoi.page.4",
            Should,
            "page=0 and page_size=abc are 422",
            T49,
            |cx| run(page4(cx)),
        ),
    ]
}

/// A fresh room with agents 0 and 1 and `n` messages of users\[0\]
/// mentioning agent 0: (agent 0, room, message ids oldest first).
async fn inbox(cx: &Ctx, n: usize) -> Step<(ThenvoiAgent, String, Vec<String>)> {
    let t = tv(cx)?;
    let (u, a, b) = (owner(&t), agent(&t, 0), agent(&t, 1));
    let rid = room(cx, &t, &[&a, &b]).await?;
    let mut mids = Vec::new();
    for i in 0..n {
        mids.push(say(cx, &u.api_key, "me", &rid, &format!("task {i}"), &[&a.id]).await?);
    }
    Ok((a, rid, mids))
}

/// A lifecycle call that must answer 200 with `status`; returns the body.
async fn step(
    cx: &Ctx,
    a: &ThenvoiAgent,
    rid: &str,
    mid: &str,
    what: &str,
    body: Option<&Value>,
    status: &str,
) -> Step<Rest> {
    let r = mark(cx, a, rid, mid, what, body).await?;
    expect(cx, &r, 200, Some("thenvoi/responses/message-status"))?;
    ensure(
        r.body["data"]["status"] == status && r.body["data"]["id"] == mid,
        &[&format!("data {{id: {mid}, status: {status}}}")],
        short(&r.body),
        &r.curl,
    )?;
    Ok(r)
}

fn fail_body() -> Value {
    json!({ "error": "conformance failure" })
}

/// The ids of `/messages?status=…` (no query for `None`).
async fn list(cx: &Ctx, a: &ThenvoiAgent, rid: &str, status: Option<&str>) -> Step<Vec<String>> {
    let q = status.map(|s| format!("?status={s}")).unwrap_or_default();
    let r = api(
        cx,
        "GET",
        &format!("/agent/chats/{rid}/messages{q}"),
        Some(&a.api_key),
        None,
    )
    .await?;
    expect(cx, &r, 200, Some("thenvoi/responses/messages-page"))?;
    Ok(ids(&r.body))
}

/// `/messages/next`: `Some(id)` on 200, `None` on 204.
async fn next(cx: &Ctx, a: &ThenvoiAgent, rid: &str) -> Step<Option<String>> {
    let r = api(
        cx,
        "GET",
        &format!("/agent/chats/{rid}/messages/next"),
        Some(&a.api_key),
        None,
    )
    .await?;
    if r.status == 204 {
        return ensure(
            r.body.is_null(),
            &["204 with no body"],
            short(&r.body),
            &r.curl,
        )
        .map(|()| None);
    }
    expect(cx, &r, 200, Some("thenvoi/responses/next-message"))?;
    Ok(r.body["data"]["id"].as_str().map(str::to_string))
}

fn same(got: &[String], want: &[&String], what: &str, repro: &str) -> Step<()> {
    let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    ensure(
        got == want.as_slice(),
        &[&format!("{what}: {want:?}")],
        format!("{got:?}"),
        repro,
    )
}

async fn life1(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let (u, a, b) = (owner(&t), agent(&t, 0), agent(&t, 1));
    let rid = room(&cx, &t, &[&a, &b]).await?;
    let mine = say(&cx, &u.api_key, "me", &rid, "for a", &[&a.id]).await?;
    say(&cx, &u.api_key, "me", &rid, "for b", &[&b.id]).await?;
    say(&cx, &a.api_key, "agent", &rid, "a to b", &[&b.id]).await?;
    let got = list(&cx, &a, &rid, Some("all")).await?;
    same(
        &got,
        &[&mine],
        "only the message mentioning the agent",
        "GET …/messages?status=all",
    )
}

async fn life2(cx: Ctx) -> Step<()> {
    let (a, rid, m) = inbox(&cx, 1).await?;
    let r = step(&cx, &a, &rid, &m[0], "processing", None, "processing").await?;
    ensure(
        r.body["data"]["attempt_number"] == 1 && r.body["data"]["success"] == true,
        &["attempt_number 1, success true"],
        short(&r.body),
        &r.curl,
    )
}

async fn life3(cx: Ctx) -> Step<()> {
    let (a, rid, m) = inbox(&cx, 1).await?;
    step(&cx, &a, &rid, &m[0], "processing", None, "processing").await?;
    let r = step(&cx, &a, &rid, &m[0], "processing", None, "processing").await?;
    ensure(
        r.body["data"]["attempt_number"] == 2,
        &["attempt_number 2"],
        short(&r.body),
        &r.curl,
    )
}

async fn life4(cx: Ctx) -> Step<()> {
    let (a, rid, m) = inbox(&cx, 1).await?;
    step(&cx, &a, &rid, &m[0], "processing", None, "processing").await?;
    step(&cx, &a, &rid, &m[0], "processed", None, "processed").await?;
    let n = next(&cx, &a, &rid).await?;
    ensure(
        n.is_none(),
        &["/next 204 once the only message is processed"],
        format!("{n:?}"),
        "GET …/messages/next",
    )?;
    let got = list(&cx, &a, &rid, None).await?;
    same(
        &got,
        &[],
        "the default list without the processed message",
        "GET …/messages",
    )
}

async fn life5(cx: Ctx) -> Step<()> {
    let (a, rid, m) = inbox(&cx, 1).await?;
    let r = mark(&cx, &a, &rid, &m[0], "processed", None).await?;
    expect_error(&cx, &r, &[422])?;
    step(&cx, &a, &rid, &m[0], "processing", None, "processing").await?;
    step(&cx, &a, &rid, &m[0], "processed", None, "processed").await?;
    let r = mark(&cx, &a, &rid, &m[0], "processed", None).await?;
    expect_error(&cx, &r, &[422])
}

async fn life6(cx: Ctx) -> Step<()> {
    let (a, rid, m) = inbox(&cx, 1).await?;
    step(&cx, &a, &rid, &m[0], "processing", None, "processing").await?;
    step(&cx, &a, &rid, &m[0], "failed", Some(&fail_body()), "failed").await?;
    let r = api(
        &cx,
        "GET",
        &format!("/agent/chats/{rid}/messages?status=failed"),
        Some(&a.api_key),
        None,
    )
    .await?;
    expect(&cx, &r, 200, Some("thenvoi/responses/messages-page"))?;
    let attempt = &r.body["data"][0]["metadata"]["attempts"][0];
    ensure(
        attempt["status"] == "failed" && attempt["error"] == "conformance failure",
        &["metadata.attempts[0] {status: failed, error: \"conformance failure\"}"],
        short(&r.body),
        &r.curl,
    )
}

async fn life7(cx: Ctx) -> Step<()> {
    let (a, rid, m) = inbox(&cx, 1).await?;
    let r = mark(&cx, &a, &rid, &m[0], "failed", Some(&fail_body())).await?;
    expect_error(&cx, &r, &[422])?;
    step(&cx, &a, &rid, &m[0], "processing", None, "processing").await?;
    for body in [json!({}), json!({ "error": "" })] {
        let r = mark(&cx, &a, &rid, &m[0], "failed", Some(&body)).await?;
        expect_error(&cx, &r, &[422])?;
    }
    Ok(())
}

async fn life8(cx: Ctx) -> Step<()> {
    let t = tv(&cx)?;
    let (u, a, b) = (owner(&t), agent(&t, 0), agent(&t, 1));
    let rid = room(&cx, &t, &[&a, &b]).await?;
    let own = say(&cx, &a.api_key, "agent", &rid, "mine", &[&b.id]).await?;
    let others = say(&cx, &u.api_key, "me", &rid, "for b", &[&b.id]).await?;
    for mid in [own, others] {
        let r = mark(&cx, &a, &rid, &mid, "processing", None).await?;
        expect_error(&cx, &r, &[404])?;
    }
    Ok(())
}

async fn life9(cx: Ctx) -> Step<()> {
    let (a, rid, m) = inbox(&cx, 1).await?;
    step(&cx, &a, &rid, &m[0], "processing", None, "processing").await?;
    let r = api(
        &cx,
        "GET",
        &format!("/agent/chats/{rid}/messages/next"),
        Some(&a.api_key),
        None,
    )
    .await?;
    let r = if r.status == 200 {
        r
    } else {
        api(
            &cx,
            "GET",
            &format!("/agent/chats/{rid}/messages?status=processing"),
            Some(&a.api_key),
            None,
        )
        .await?
    };
    let msg = if r.body["data"].is_array() {
        r.body["data"][0].clone()
    } else {
        r.body["data"].clone()
    };
    super::kit::valid(&cx, "thenvoi/objects/chat-message", &msg, &r.curl)?;
    let md = &msg["metadata"];
    ensure(
        md["status"] == "processing"
            && md["attempts"][0]["attempt_number"] == 1
            && md["attempts"][0]["status"] == "processing"
            && md["attempts"][0]["completed_at"].is_null(),
        &[
            "metadata.status processing, attempts[0] {attempt_number 1, status processing, completed_at null}",
        ],
        short(&msg),
        &r.curl,
    )
}

async fn life10(cx: Ctx) -> Step<()> {
    let (a, rid, m) = inbox(&cx, 3).await?;
    let n = next(&cx, &a, &rid).await?;
    ensure(
        n.as_ref() == Some(&m[0]),
        &[&format!("the oldest, {}", m[0])],
        format!("{n:?}"),
        "GET …/messages/next",
    )
}

async fn life11(cx: Ctx) -> Step<()> {
    let (a, rid, _) = inbox(&cx, 0).await?;
    let n = next(&cx, &a, &rid).await?;
    ensure(
        n.is_none(),
        &["204"],
        format!("{n:?}"),
        "GET …/messages/next",
    )
}

async fn life12(cx: Ctx) -> Step<()> {
    let (a, rid, m) = inbox(&cx, 1).await?;
    step(&cx, &a, &rid, &m[0], "processing", None, "processing").await?;
    let n = next(&cx, &a, &rid).await?;
    ensure(
        n.as_ref() == Some(&m[0]),
        &[&format!("{} (still processing)", m[0])],
        format!("{n:?}"),
        "GET …/messages/next",
    )
}

async fn life13(cx: Ctx) -> Step<()> {
    let (a, rid, m) = inbox(&cx, 2).await?;
    step(&cx, &a, &rid, &m[0], "processing", None, "processing").await?;
    step(&cx, &a, &rid, &m[0], "processed", None, "processed").await?;
    for (status, want) in [
        (Some("processed"), vec![&m[0]]),
        (Some("all"), vec![&m[0], &m[1]]),
        (None, vec![&m[1]]),
        (Some("pending"), vec![&m[1]]),
        (Some("processing"), vec![]),
    ] {
        let got = list(&cx, &a, &rid, status).await?;
        same(
            &got,
            &want,
            &format!("?status={}", status.unwrap_or("(absent)")),
            "GET …/messages",
        )?;
    }
    let n = next(&cx, &a, &rid).await?;
    ensure(
        n.as_ref() == Some(&m[1]),
        &[&format!("/next {}", m[1])],
        format!("{n:?}"),
        "GET …/messages/next",
    )
}

async fn life14(cx: Ctx) -> Step<()> {
    let (a, rid, m) = inbox(&cx, 1).await?;
    step(&cx, &a, &rid, &m[0], "processing", None, "processing").await?;
    step(&cx, &a, &rid, &m[0], "failed", Some(&fail_body()), "failed").await?;
    for (status, want) in [
        (None, vec![&m[0]]),
        (Some("pending"), vec![&m[0]]),
        (Some("failed"), vec![&m[0]]),
        (Some("processing"), vec![]),
        (Some("processed"), vec![]),
    ] {
        let got = list(&cx, &a, &rid, status).await?;
        same(
            &got,
            &want,
            &format!("?status={}", status.unwrap_or("(absent)")),
            "GET …/messages",
        )?;
    }
    Ok(())
}

async fn life15(cx: Ctx) -> Step<()> {
    let (a, rid, _) = inbox(&cx, 1).await?;
    let r = api(
        &cx,
        "GET",
        &format!("/agent/chats/{rid}/messages?status=bogus"),
        Some(&a.api_key),
        None,
    )
    .await?;
    expect_error(&cx, &r, &[422])
}

async fn life16(cx: Ctx) -> Step<()> {
    let (a, rid, m) = inbox(&cx, 1).await?;
    for _ in 0..5 {
        step(&cx, &a, &rid, &m[0], "processing", None, "processing").await?;
        step(&cx, &a, &rid, &m[0], "failed", Some(&fail_body()), "failed").await?;
    }
    let r = step(&cx, &a, &rid, &m[0], "processing", None, "processing").await?;
    ensure(
        r.body["data"]["attempt_number"] == 6,
        &["attempt_number 6"],
        short(&r.body),
        &r.curl,
    )
}

/// `/messages?status=all` of a 5-message inbox with `query`.
async fn page(cx: &Ctx, query: &str) -> Step<(Rest, Vec<String>)> {
    let (a, rid, m) = inbox(cx, 5).await?;
    let r = api(
        cx,
        "GET",
        &format!("/agent/chats/{rid}/messages?status=all{query}"),
        Some(&a.api_key),
        None,
    )
    .await?;
    Ok((r, m))
}

async fn page1(cx: Ctx) -> Step<()> {
    let (r, m) = page(&cx, "&page=2&page_size=2").await?;
    expect(&cx, &r, 200, Some("thenvoi/responses/messages-page"))?;
    let md = &r.body["metadata"];
    ensure(
        md["page"] == 2 && md["page_size"] == 2 && md["total_count"] == 5 && md["total_pages"] == 3,
        &["metadata {page: 2, page_size: 2, total_count: 5, total_pages: 3}"],
        short(&r.body),
        &r.curl,
    )?;
    same(
        &ids(&r.body),
        &[&m[2], &m[3]],
        "the third and fourth messages",
        &r.curl,
    )
}

async fn page2(cx: Ctx) -> Step<()> {
    let (r, _) = page(&cx, "&page=9&page_size=2").await?;
    expect(&cx, &r, 200, Some("thenvoi/responses/messages-page"))?;
    ensure(
        r.body["data"] == json!([]),
        &["data []"],
        short(&r.body),
        &r.curl,
    )
}

async fn page3(cx: Ctx) -> Step<()> {
    let (r, _) = page(&cx, "&page_size=500").await?;
    expect(&cx, &r, 200, Some("thenvoi/responses/messages-page"))?;
    ensure(
        r.body["metadata"]["page_size"] == 100,
        &["metadata.page_size 100"],
        short(&r.body),
        &r.curl,
    )
}

async fn page4(cx: Ctx) -> Step<()> {
    let (a, rid, _) = inbox(&cx, 1).await?;
    for q in ["page=0", "page_size=abc"] {
        let r = api(
            &cx,
            "GET",
            &format!("/agent/chats/{rid}/messages?{q}"),
            Some(&a.api_key),
            None,
        )
        .await?;
        expect_error(&cx, &r, &[422])?;
    }
    Ok(())
}
