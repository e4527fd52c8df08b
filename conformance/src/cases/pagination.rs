//! `pagination`: `GET /api/chats/:chatId/messages` with `@page`, `@limit`,
//! `@cursor` (PROTOCOL.md R8–R13) on a chat the runner seeds itself.

use serde_json::{Value, json};

use super::kit::{Sock, Step, ensure, envelope, need, rest, run, schema, short};
use crate::case::{Case, Ctx, Level::*, Outcome};

/// How many messages the seeded chat holds: more than 100, to test the maximum.
pub const SEEDED: usize = 130;

/// The run's seeded chat: created by user 1 with no other participant (so no
/// agent adds replies), then filled with `SEEDED` messages over the socket.
pub async fn seeded(cx: &Ctx) -> Step<(String, Vec<String>)> {
    let cx2 = cx.clone();
    cx.shared
        .seeded
        .get_or_init(|| async move { fresh_chat(&cx2, SEEDED).await })
        .await
        .clone()
}

async fn page(cx: &Ctx, chat: &str, query: &str) -> Step<(Vec<String>, Value, String)> {
    let a = need(cx.profile.user(0), "first user")?;
    let r = rest(
        cx,
        "GET",
        &format!("/api/chats/{chat}/messages?{query}"),
        Some(&a.token),
        None,
    )
    .await?;
    envelope(cx, &r)?;
    ensure(
        r.status == 200,
        &["200 with a page of messages"],
        format!("{} {}", r.status, short(&r.body)),
        &r.curl,
    )?;
    let items = r.data().as_array().ok_or_else(|| {
        Outcome::fail(
            ["data: an array of messages"],
            short(&r.body),
            r.curl.clone(),
        )
    })?;
    for m in items {
        schema(cx, "objects/message", m, &r.curl)?;
    }
    let ids = items
        .iter()
        .map(|m| m["id"].as_str().unwrap_or_default().to_string())
        .collect();
    Ok((ids, r.body["meta"].clone(), r.curl))
}

/// Checks a walk with the library walker (`crate::walk`), as a case step.
fn complete(walk: &[String], ids: &[String], how: &str, repro: &str) -> Step<()> {
    crate::walk::check(walk, ids).map_err(|problem| {
        let expected = match problem {
            crate::walk::WalkProblem::Duplicate(_) => "no message twice in one walk",
            crate::walk::WalkProblem::Missing { .. } => "every message of the chat, once",
            crate::walk::WalkProblem::OrderChanged => {
                "a consistent order (oldest first, or newest first throughout)"
            }
        };
        Outcome::fail([expected], format!("{how}: {problem}"), repro)
    })
}

async fn walk_pages(cx: &Ctx, chat: &str, limit: usize) -> Step<(Vec<String>, String)> {
    let mut all = Vec::new();
    let mut last = String::new();
    for p in 1..=(SEEDED / limit + 3) {
        let (ids, _, curl) = page(cx, chat, &format!("@page={p}&@limit={limit}")).await?;
        ensure(
            ids.len() <= limit,
            &[&format!("at most @limit={limit} items")],
            format!("{} items", ids.len()),
            &curl,
        )?;
        last = curl;
        if ids.is_empty() {
            break;
        }
        all.extend(ids);
    }
    Ok((all, last))
}

async fn walk_cursor(
    cx: &Ctx,
    chat: &str,
    limit: usize,
    between: Option<&mut Sock>,
) -> Step<(Vec<String>, String)> {
    let (mut all, mut meta, mut curl) = page(cx, chat, &format!("@limit={limit}")).await?;
    let mut between = between;
    for _ in 0..(SEEDED / limit + 5) {
        if let Some(s) = between.as_deref_mut() {
            s.ack(
                "message:send",
                &json!({ "chatId": chat, "content": "arrived mid-walk" }),
            )
            .await?;
        }
        let cursor = meta["nextCursor"]
            .as_str()
            .map(str::to_string)
            .or_else(|| all.last().cloned());
        let Some(cursor) = cursor else { break };
        if meta.get("hasMore") == Some(&Value::Bool(false)) {
            break;
        }
        let (ids, m, c) = page(cx, chat, &format!("@cursor={cursor}&@limit={limit}")).await?;
        ensure(
            ids.len() <= limit,
            &[&format!("at most @limit={limit} items")],
            format!("{} items", ids.len()),
            &c,
        )?;
        curl = c;
        if ids.is_empty() {
            break;
        }
        meta = m;
        all.extend(ids);
    }
    Ok((all, curl))
}

/// A generated pagination scenario: a fresh chat of `size` messages, walked
/// with `@page` or `@cursor` at `limit`.
#[derive(Debug, Clone)]
struct Scenario {
    size: usize,
    limit: usize,
    by_cursor: bool,
}

/// How many scenarios one run tries, and the fixed seed that makes every run
/// try the same ones.
const GENERATED: usize = 8;
const SEED: [u8; 32] = *b"proteus-conformance-pagination!!";

/// A fresh chat of user 1 (no other participant, so no agent adds replies)
/// holding `size` messages sent over the socket; returns (chat, ids).
async fn fresh_chat(cx: &Ctx, size: usize) -> Step<(String, Vec<String>)> {
    let a = need(cx.profile.user(0), "first user")?;
    let chat = super::kit::create_chat(cx, &a.token, json!([])).await?;
    let mut s = Sock::authed(cx, &a.token, "seeder").await?;
    let mut ids = Vec::with_capacity(size);
    for i in 0..size {
        let ack = s
            .ack(
                "message:send",
                &json!({ "chatId": chat, "content": format!("generated {i}") }),
            )
            .await?;
        let id = ack["data"]["message"]["id"].as_str().map(str::to_string);
        ids.push(id.ok_or_else(|| {
            Outcome::fail(["an ack with data.message.id"], short(&ack), s.frames())
        })?);
    }
    s.close().await;
    Ok((chat, ids))
}

/// One scenario: the walk is complete, without duplicates, in a consistent
/// order, and no page holds more than `limit` items.
async fn check_scenario(cx: &Ctx, sc: &Scenario) -> Step<()> {
    let (chat, ids) = fresh_chat(cx, sc.size).await?;
    let how = format!(
        "{} walk at @limit={} over {} messages",
        if sc.by_cursor { "@cursor" } else { "@page" },
        sc.limit,
        sc.size
    );
    let mut walk = Vec::new();
    let mut last = String::new();
    if sc.by_cursor {
        let (mut ids_page, mut meta, curl) =
            page(cx, &chat, &format!("@limit={}", sc.limit)).await?;
        last = curl;
        for _ in 0..=sc.size + 1 {
            ensure(
                ids_page.len() <= sc.limit,
                &[&format!("at most @limit={} items", sc.limit)],
                format!("{}: {} items", how, ids_page.len()),
                &last,
            )?;
            if ids_page.is_empty() {
                break;
            }
            walk.extend(ids_page.iter().cloned());
            if meta.get("hasMore") == Some(&Value::Bool(false)) {
                break;
            }
            let cursor = meta["nextCursor"]
                .as_str()
                .map(str::to_string)
                .or_else(|| walk.last().cloned())
                .unwrap_or_default();
            let (p, m, c) =
                page(cx, &chat, &format!("@cursor={cursor}&@limit={}", sc.limit)).await?;
            (ids_page, meta, last) = (p, m, c);
        }
    } else {
        for p in 1..=(sc.size / sc.limit + 2) {
            let (ids_page, _, curl) =
                page(cx, &chat, &format!("@page={p}&@limit={}", sc.limit)).await?;
            ensure(
                ids_page.len() <= sc.limit,
                &[&format!("at most @limit={} items", sc.limit)],
                format!("{}: {} items", how, ids_page.len()),
                &curl,
            )?;
            last = curl;
            if ids_page.is_empty() {
                break;
            }
            walk.extend(ids_page);
        }
    }
    complete(&walk, &ids, &how, &last)
}

/// Generated scenarios (proptest, fixed seed); on a failure, proptest's
/// shrinking finds a smaller scenario that still fails, which is reported.
async fn generated_walks(cx: &Ctx) -> Step<()> {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let strategy =
        (0usize..=45, 1usize..=30, proptest::bool::ANY).prop_map(|(size, limit, by_cursor)| {
            Scenario {
                size,
                limit,
                by_cursor,
            }
        });
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &SEED),
    );
    for _ in 0..GENERATED {
        let mut tree = strategy
            .new_tree(&mut runner)
            .map_err(|e| Outcome::fail(["a generated scenario"], e.to_string(), ""))?;
        let Err(first) = check_scenario(cx, &tree.current()).await else {
            continue;
        };
        // Shrink: simpler scenarios while they still fail (bounded).
        let (mut smallest, mut failure) = (tree.current(), first);
        let mut last_failed = true;
        for _ in 0..24 {
            let moved = if last_failed {
                tree.simplify()
            } else {
                tree.complicate()
            };
            if !moved {
                break;
            }
            last_failed = match check_scenario(cx, &tree.current()).await {
                Err(f @ Outcome::Fail(_)) => {
                    (smallest, failure) = (tree.current(), f);
                    true
                }
                _ => false,
            };
        }
        return Err(match failure {
            Outcome::Fail(mut f) => {
                f.actual = format!(
                    "{} (smallest failing scenario: {} messages, @limit={}, {})",
                    f.actual,
                    smallest.size,
                    smallest.limit,
                    if smallest.by_cursor {
                        "@cursor"
                    } else {
                        "@page"
                    }
                );
                Outcome::Fail(f)
            }
            other => other,
        });
    }
    Ok(())
}

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "pagination.1",
            level: Must,
            desc: "GET messages with no parameters on a 130-message chat",
            requirement: "R8/R12: @limit defaults to 20 (the default is a MUST invariant)",
            run: |cx| {
                run(async move {
                    let (chat, _) = seeded(&cx).await?;
                    let (ids, _, curl) = page(&cx, &chat, "").await?;
                    ensure(
                        ids.len() == 20,
                        &["20 items"],
                        format!("{} items", ids.len()),
                        &curl,
                    )
                })
            },
        },
        Case {
            id: "pagination.2",
            level: Must,
            desc: "GET messages with @limit=500",
            requirement: "R8/R12: @limit is at most 100; never more than 100 items",
            run: |cx| {
                run(async move {
                    let (chat, _) = seeded(&cx).await?;
                    let a = need(cx.profile.user(0), "first user")?;
                    let r = rest(
                        &cx,
                        "GET",
                        &format!("/api/chats/{chat}/messages?@limit=500"),
                        Some(&a.token),
                        None,
                    )
                    .await?;
                    envelope(&cx, &r)?;
                    let n = r.data().as_array().map_or(0, Vec::len);
                    ensure(
                        r.status == 400 || (r.status == 200 && n <= 100),
                        &["at most 100 items (clamped)", "400"],
                        format!("{} with {n} items", r.status),
                        &r.curl,
                    )
                })
            },
        },
        Case {
            id: "pagination.3",
            level: Should,
            desc: "GET messages with @limit=500: clamped",
            requirement: "R11: @limit above 100 is clamped to 100 (a 400 is NON-STRICT)",
            run: |cx| {
                run(async move {
                    let (chat, _) = seeded(&cx).await?;
                    let (ids, _, curl) = page(&cx, &chat, "@limit=500").await?;
                    ensure(
                        ids.len() == 100,
                        &["200 with exactly 100 items"],
                        format!("{} items", ids.len()),
                        &curl,
                    )
                })
            },
        },
        Case {
            id: "pagination.4",
            level: Should,
            desc: "GET @page=99 of a 130-message chat",
            requirement: "R9: a page past the end is 200 with data: []",
            run: |cx| {
                run(async move {
                    let (chat, _) = seeded(&cx).await?;
                    let (ids, _, curl) = page(&cx, &chat, "@page=99&@limit=20").await?;
                    ensure(
                        ids.is_empty(),
                        &["data: []"],
                        format!("{} items", ids.len()),
                        &curl,
                    )
                })
            },
        },
        Case {
            id: "pagination.5",
            level: Must,
            desc: "Walk every page with @page at limits 1, 7, 20, 33 and 100",
            requirement: "R12: no item twice, none missing, a consistent order, never more than @limit items",
            run: |cx| {
                run(async move {
                    let (chat, ids) = seeded(&cx).await?;
                    for limit in [1, 7, 20, 33, 100] {
                        let (walk, curl) = walk_pages(&cx, &chat, limit).await?;
                        complete(&walk, &ids, &format!("@page walk at @limit={limit}"), &curl)?;
                    }
                    Ok(())
                })
            },
        },
        Case {
            id: "pagination.6",
            level: Must,
            desc: "Walk with @cursor (nextCursor, or the last id of each page) at limits 7 and 50",
            requirement: "R10/R12: a cursor walk is complete, without duplicates, in a consistent order",
            run: |cx| {
                run(async move {
                    let (chat, ids) = seeded(&cx).await?;
                    for limit in [7, 50] {
                        let (walk, curl) = walk_cursor(&cx, &chat, limit, None).await?;
                        complete(
                            &walk,
                            &ids,
                            &format!("@cursor walk at @limit={limit}"),
                            &curl,
                        )?;
                    }
                    Ok(())
                })
            },
        },
        Case {
            id: "pagination.7",
            level: Must,
            desc: "GET with @cursor and @page=3, and with @cursor alone",
            requirement: "R8: when @cursor is given, @page is ignored (STATED)",
            run: |cx| {
                run(async move {
                    let (chat, ids) = seeded(&cx).await?;
                    let cursor = &ids[10];
                    let (with, _, curl) =
                        page(&cx, &chat, &format!("@cursor={cursor}&@page=3&@limit=5")).await?;
                    let (without, _, _) =
                        page(&cx, &chat, &format!("@cursor={cursor}&@limit=5")).await?;
                    let (page3, _, _) = page(&cx, &chat, "@page=3&@limit=5").await?;
                    ensure(
                        with == without,
                        &["the same page as @cursor alone"],
                        format!("{with:?} vs {without:?}"),
                        &curl,
                    )?;
                    ensure(
                        with != page3,
                        &["not the @page=3 page"],
                        format!("{with:?} is page 3"),
                        &curl,
                    )
                })
            },
        },
        Case {
            id: "pagination.8",
            level: Should,
            desc: "GET with @limit=0, @limit=abc, @page=0, and a cursor from another chat",
            requirement: "R11: @limit or @page below 1 or not an integer, or a cursor that is not a message of this chat, is 400",
            run: |cx| {
                run(async move {
                    let (chat, _) = seeded(&cx).await?;
                    let a = need(cx.profile.user(0), "first user")?;
                    for q in [
                        "@limit=0",
                        "@limit=abc",
                        "@page=0",
                        "@page=-2",
                        "@cursor=ffffffffffffffffffffffff",
                    ] {
                        let r = rest(
                            &cx,
                            "GET",
                            &format!("/api/chats/{chat}/messages?{q}"),
                            Some(&a.token),
                            None,
                        )
                        .await?;
                        envelope(&cx, &r)?;
                        ensure(
                            r.status == 400,
                            &[&format!("400 for {q}")],
                            format!("{} {}", r.status, short(&r.body)),
                            &r.curl,
                        )?;
                    }
                    Ok(())
                })
            },
        },
        Case {
            id: "pagination.9",
            level: Must,
            desc: "GET ?%40page=2&%40limit=10 and ?@page=2&@limit=10",
            requirement: "R8: percent-encoded names (%40page) are the same parameters",
            run: |cx| {
                run(async move {
                    let (chat, _) = seeded(&cx).await?;
                    let (enc, _, curl) = page(&cx, &chat, "%40page=2&%40limit=10").await?;
                    let (plain, _, _) = page(&cx, &chat, "@page=2&@limit=10").await?;
                    ensure(
                        enc == plain && enc.len() == 10,
                        &["the same 10 items"],
                        format!(
                            "{} vs {} items, equal: {}",
                            enc.len(),
                            plain.len(),
                            enc == plain
                        ),
                        &curl,
                    )
                })
            },
        },
        Case {
            id: "pagination.10",
            level: Must,
            desc: "Cursor walk while a new message arrives before each page",
            requirement: "R12: pages stay consistent while messages arrive: no seeded item twice or missing",
            run: |cx| {
                run(async move {
                    let (chat, ids) = seeded(&cx).await?;
                    let a = need(cx.profile.user(0), "first user")?;
                    let mut s = Sock::authed(&cx, &a.token, "writer").await?;
                    let (walk, curl) = walk_cursor(&cx, &chat, 25, Some(&mut s)).await?;
                    s.close().await;
                    let seeded_only: Vec<String> =
                        walk.into_iter().filter(|id| ids.contains(id)).collect();
                    complete(&seeded_only, &ids, "cursor walk with arrivals", &curl)
                })
            },
        },
        Case {
            id: "pagination.12",
            level: Must,
            desc: "Generated walks: fresh chats of 0-45 messages, @limit 1-30, by @page or @cursor (proptest, fixed seed, shrunk on failure)",
            requirement: "R12: for any chat size and limit, a walk is complete, without duplicates, in a consistent order, never more than @limit items a page",
            run: |cx| run(async move { generated_walks(&cx).await }),
        },
        Case {
            id: "pagination.11",
            level: Should,
            desc: "Read meta on an index page and on a cursor page",
            requirement: "R12: meta is {page | cursor, limit, total, hasMore, nextCursor} (CHOSEN)",
            run: |cx| {
                run(async move {
                    let (chat, ids) = seeded(&cx).await?;
                    let (_, meta, curl) = page(&cx, &chat, "@page=2&@limit=10").await?;
                    schema(&cx, "objects/pagination-meta", &meta, &curl)?;
                    let (_, meta, curl) =
                        page(&cx, &chat, &format!("@cursor={}&@limit=10", ids[0])).await?;
                    schema(&cx, "objects/pagination-meta", &meta, &curl)
                })
            },
        },
    ]
}
