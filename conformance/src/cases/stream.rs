//! `stream`: a streamed reply, captured frame by frame and judged by the
//! stream checker (`crate::stream`), one case per rule family.

use std::time::Duration;

use serde_json::{Value, json};

use super::kit::{Sock, Step, create_chat, ensure, need, rest, run, schema, short};
use crate::case::{Case, Ctx, Level::*, Outcome};
use crate::stream::{Rule, StreamChecker, StreamReport};

/// Deltas asked for when the target honours a stream override.
const CHUNKS: usize = 8;

struct Capture {
    chat: String,
    frames: Vec<(String, Value)>,
    report: StreamReport,
    transcript: String,
}

/// Creates a chat with the streaming agent, sends `messages` messages asking
/// for streamed replies, and records every event until each stream is done
/// (plus a short grace period, to see anything sent after a done).
async fn capture(cx: &Ctx, messages: usize) -> Step<Capture> {
    let a = need(cx.profile.user(0), "first user")?;
    let agent = need(cx.profile.agents.streaming.as_ref(), "streaming agent")?;
    let chat = create_chat(cx, &a.token, json!([{ "id": agent, "type": "AGENT" }])).await?;
    let mut s = Sock::authed(cx, &a.token, "user1").await?;
    s.ack("chat:join", &json!({ "chatId": chat })).await?;
    for i in 0..messages {
        let body = json!({ "chatId": chat, "content": format!("stream {i}"), "streamResponse": true, "state": cx.profile.stream_state(CHUNKS) });
        s.ack("message:send", &body).await?;
    }
    let mut dones = 0;
    let (mut frames, _) = s
        .events_until(cx.timeout, |name, _| {
            if name == "message:done" {
                dones += 1;
            }
            dones >= messages
        })
        .await;
    let (late, _) = s
        .events_until(Duration::from_millis(150), |_, _| false)
        .await;
    frames.extend(late);
    let report = StreamChecker::check(frames.iter().map(|(e, p)| (e.as_str(), p)));
    let transcript = s.frames();
    s.close().await;
    Ok(Capture {
        chat,
        frames,
        report,
        transcript,
    })
}

/// Passes unless the report breaks one of `rules`.
fn clean_of(c: &Capture, rules: &[Rule], expected: &str) -> Step<()> {
    let broken: Vec<String> = c
        .report
        .violations
        .iter()
        .filter(|v| rules.contains(&v.rule))
        .map(ToString::to_string)
        .collect();
    ensure(
        broken.is_empty(),
        &[expected],
        broken.join("\n"),
        &c.transcript,
    )
}

fn started(c: &Capture) -> Step<()> {
    ensure(
        c.report.streams > 0,
        &["at least one message:delta within the timeout"],
        "no delta arrived (no stream started)",
        &c.transcript,
    )
}

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "stream.1",
            level: Must,
            desc: "Capture a streamed reply: its ids",
            requirement: "R18: every delta has the same streamId and messageId (and chatId) throughout (STATED)",
            run: |cx| {
                run(async move {
                    let c = capture(&cx, 1).await?;
                    started(&c)?;
                    clean_of(
                        &c,
                        &[
                            Rule::StreamIdChanged,
                            Rule::MessageIdChanged,
                            Rule::ChatIdChanged,
                            Rule::Malformed,
                        ],
                        "one streamId and one messageId for the whole reply",
                    )
                })
            },
        },
        Case {
            id: "stream.2",
            level: Must,
            desc: "Capture a streamed reply: each delta's content",
            requirement: "R18: content equals the concatenation of all contentDelta so far (STATED)",
            run: |cx| {
                run(async move {
                    let c = capture(&cx, 1).await?;
                    started(&c)?;
                    clean_of(
                        &c,
                        &[Rule::ContentMismatch],
                        "content = previous content + contentDelta on every delta",
                    )
                })
            },
        },
        Case {
            id: "stream.3",
            level: Must,
            desc: "Capture a streamed reply: isStreaming flags",
            requirement: "R18: message.isStreaming is true on every delta; message:done has isStreaming false",
            run: |cx| {
                run(async move {
                    let c = capture(&cx, 1).await?;
                    started(&c)?;
                    clean_of(
                        &c,
                        &[Rule::DeltaNotStreaming, Rule::DoneStillStreaming],
                        "isStreaming true on deltas, false on done",
                    )
                })
            },
        },
        Case {
            id: "stream.4",
            level: Must,
            desc: "Capture a streamed reply: order and completeness",
            requirement: "R18: deltas of one stream arrive in order, each once, none missing (checked as MUST)",
            run: |cx| {
                run(async move {
                    let c = capture(&cx, 1).await?;
                    started(&c)?;
                    clean_of(
                        &c,
                        &[Rule::Gap, Rule::Duplicate, Rule::OutOfOrder],
                        "every delta once, in order",
                    )
                })
            },
        },
        Case {
            id: "stream.5",
            level: Must,
            desc: "Capture a streamed reply: how it ends",
            requirement: "R18: exactly one message:done, and nothing of the stream after it",
            run: |cx| {
                run(async move {
                    let c = capture(&cx, 1).await?;
                    started(&c)?;
                    clean_of(
                        &c,
                        &[
                            Rule::MissingDone,
                            Rule::DoubleDone,
                            Rule::DeltaAfterDone,
                            Rule::DoneWithoutDeltas,
                        ],
                        "one message:done, last",
                    )
                })
            },
        },
        Case {
            id: "stream.6",
            level: Must,
            desc: "Capture a streamed reply: the done's content",
            requirement: "R18: message:done carries the complete message, content = the concatenation of every delta",
            run: |cx| {
                run(async move {
                    let c = capture(&cx, 1).await?;
                    started(&c)?;
                    clean_of(
                        &c,
                        &[Rule::DoneContentMismatch],
                        "done.content = every contentDelta joined",
                    )
                })
            },
        },
        Case {
            id: "stream.7",
            level: Must,
            desc: "Capture a streamed reply: no plain message for it",
            requirement: "R18: a streamed reply is deltas and a done, and no message event for that reply (STATED: 'instead')",
            run: |cx| {
                run(async move {
                    let c = capture(&cx, 1).await?;
                    started(&c)?;
                    clean_of(
                        &c,
                        &[Rule::PlainMessageForStream],
                        "no message event for the streamed reply",
                    )
                })
            },
        },
        Case {
            id: "stream.8",
            level: Must,
            desc: "Capture a streamed reply: every delta and done against its schema",
            requirement: "R18 and schemas/realtime/message-delta.json, message-done.json",
            run: |cx| {
                run(async move {
                    let c = capture(&cx, 1).await?;
                    started(&c)?;
                    for (name, p) in &c.frames {
                        match name.as_str() {
                            "message:delta" => {
                                schema(&cx, "realtime/message-delta", p, &c.transcript)?
                            }
                            "message:done" => {
                                schema(&cx, "realtime/message-done", p, &c.transcript)?
                            }
                            "message" => schema(&cx, "realtime/message", p, &c.transcript)?,
                            _ => {}
                        }
                    }
                    Ok(())
                })
            },
        },
        Case {
            id: "stream.9",
            level: Must,
            desc: "Two streamed replies at once in one chat",
            requirement: "R18: concurrent streams do not bleed into each other; each is complete on its own",
            run: |cx| {
                run(async move {
                    let c = capture(&cx, 2).await?;
                    ensure(
                        c.report.completed == 2 && c.report.is_ok(),
                        &["two complete streams, no violation"],
                        format!(
                            "{} complete of {}; {}",
                            c.report.completed,
                            c.report.streams,
                            c.report
                                .violations
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join("; ")
                        ),
                        &c.transcript,
                    )
                })
            },
        },
        Case {
            id: "stream.10",
            level: Must,
            desc: "Streams in two chats at once, one socket each",
            requirement: "R17/R18: a room receives only its own chat's streams",
            run: |cx| {
                run(async move {
                    let (one, two) = tokio::join!(capture(&cx, 1), capture(&cx, 1));
                    for c in [one?, two?] {
                        let foreign: Vec<&(String, Value)> = c
                            .frames
                            .iter()
                            .filter(|(n, p)| {
                                n.starts_with("message") && p["chatId"] != c.chat.as_str()
                            })
                            .collect();
                        ensure(
                            foreign.is_empty(),
                            &[&format!("only events of chat {}", c.chat)],
                            format!(
                                "{} foreign events, first {}",
                                foreign.len(),
                                foreign.first().map(|(_, p)| short(p)).unwrap_or_default()
                            ),
                            &c.transcript,
                        )?;
                        ensure(
                            c.report.completed == 1,
                            &["its own stream, complete"],
                            format!("{} complete", c.report.completed),
                            &c.transcript,
                        )?;
                    }
                    Ok(())
                })
            },
        },
        Case {
            id: "stream.11",
            level: Should,
            desc: "After message:done, read the chat's history",
            requirement: "R18: once done, the final message is in the history (CHOSEN)",
            run: |cx| {
                run(async move {
                    let c = capture(&cx, 1).await?;
                    let done = c
                        .frames
                        .iter()
                        .find(|(n, _)| n == "message:done")
                        .map(|(_, p)| p.clone())
                        .ok_or_else(|| {
                            Outcome::fail(["a message:done"], "none", c.transcript.clone())
                        })?;
                    let a = need(cx.profile.user(0), "first user")?;
                    let r = rest(
                        &cx,
                        "GET",
                        &format!("/api/chats/{}/messages?@limit=100", c.chat),
                        Some(&a.token),
                        None,
                    )
                    .await?;
                    let found = r
                        .data()
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|m| m["id"] == done["id"])
                        .cloned();
                    ensure(
                        found.as_ref().is_some_and(|m| {
                            m["content"] == done["content"] && m["isStreaming"] == false
                        }),
                        &["the final message, complete, in the history"],
                        found.map(|m| short(&m)).unwrap_or("absent".into()),
                        &r.curl,
                    )
                })
            },
        },
        Case {
            id: "stream.12",
            level: Must,
            desc: "message:send with streamResponse: the reply starts within the timeout",
            requirement: "R18: a streamed reply is one or more message:delta then one message:done",
            run: |cx| {
                run(async move {
                    let c = capture(&cx, 1).await?;
                    started(&c)?;
                    ensure(
                        c.report.completed == 1,
                        &["a complete stream within the timeout"],
                        format!(
                            "{} deltas, {} complete",
                            c.report.totals.deltas, c.report.completed
                        ),
                        &c.transcript,
                    )
                })
            },
        },
    ]
}
