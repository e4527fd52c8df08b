//! `rt.auth`, `rt.join`, `rt.send`, `rt.broadcast`.

use std::time::Duration;

use serde_json::{Value, json};

use super::kit::{Sock, Step, create_chat, ensure, need, run, schema, short};
use crate::case::{Case, Ctx, Level::*};

fn is_error_ack(ack: &Value) -> bool {
    ack.get("data").is_none()
        && ack["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
}

/// A chat of user 1 with no other participant.
async fn own_chat(cx: &Ctx) -> Step<(String, String)> {
    let a = need(cx.profile.user(0), "first user")?;
    let chat = create_chat(cx, &a.token, json!([])).await?;
    Ok((a.token, chat))
}

/// Waits up to `within` for a `message` whose id is `id`.
async fn sees_message(s: &mut Sock, id: &str, within: Duration) -> bool {
    let (_, found) = s
        .events_until(within, |name, p| name == "message" && p["id"] == id)
        .await;
    found
}

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "rt.auth.1",
            level: Must,
            desc: "Connect with a valid token in auth.token",
            requirement: "R4: for a valid token the server emits success {entity} (STATED)",
            run: |cx| {
                run(async move {
                    let a = need(cx.profile.user(0), "first user")?;
                    let mut s = Sock::open(&cx, &a.token, "user1").await?;
                    let (name, payload) = s.first_event().await?;
                    ensure(
                        name == "success" && payload.get("entity").is_some(),
                        &["success {entity}"],
                        format!("{name} {}", short(&payload)),
                        &s.frames(),
                    )?;
                    schema(&cx, "realtime/success", &payload, &s.frames())?;
                    ensure(
                        payload["entity"]["id"] == a.id.as_str(),
                        &[&format!("entity.id = {}", a.id)],
                        short(&payload),
                        &s.frames(),
                    )
                })
            },
        },
        Case {
            id: "rt.auth.2",
            level: Must,
            desc: "Connect with an invalid token",
            requirement: "R4: an invalid token is refused, never greeted with success (STATED)",
            run: |cx| {
                run(async move {
                    let mut s = Sock::open(&cx, "user-nope", "bad").await?;
                    let (name, payload) = s.first_event().await?;
                    ensure(
                        name != "success",
                        &[
                            "error {message} then a disconnect",
                            "connect_error (NON-STRICT)",
                        ],
                        format!("{name} {}", short(&payload)),
                        &s.frames(),
                    )
                })
            },
        },
        Case {
            id: "rt.auth.3",
            level: Should,
            desc: "Connect with an invalid token: the exact sequence",
            requirement: "R4: error {message}, then the server disconnects (a connect_error instead is NON-STRICT)",
            run: |cx| {
                run(async move {
                    let mut s = Sock::open(&cx, "user-nope", "bad").await?;
                    let (name, payload) = s.first_event().await?;
                    ensure(
                        name == "error",
                        &["error {message}"],
                        format!("{name} {}", short(&payload)),
                        &s.frames(),
                    )?;
                    schema(&cx, "realtime/error", &payload, &s.frames())?;
                    // Returns early when the connection ends.
                    s.events_until(cx.timeout, |_, _| false).await;
                    let frames = s.frames();
                    ensure(
                        frames.contains("DISCONNECT") || frames.contains("connection ended"),
                        &["then a disconnect"],
                        "the socket stayed open",
                        &frames,
                    )
                })
            },
        },
        Case {
            id: "rt.join.1",
            level: Must,
            desc: "chat:join a chat the user is in",
            requirement: "R14/R15: a participant's join is acknowledged with {data} (STATED)",
            run: |cx| {
                run(async move {
                    let (token, chat) = own_chat(&cx).await?;
                    let mut s = Sock::authed(&cx, &token, "user1").await?;
                    let ack = s.ack("chat:join", &json!({ "chatId": chat })).await?;
                    ensure(
                        ack.get("data").is_some() && ack.get("error").is_none(),
                        &["{data}"],
                        short(&ack),
                        &s.frames(),
                    )
                })
            },
        },
        Case {
            id: "rt.join.2",
            level: Should,
            desc: "chat:join: the ack's data",
            requirement: "R14: chat:join and chat:leave ack {data: {chatId}} (CHOSEN)",
            run: |cx| {
                run(async move {
                    let (token, chat) = own_chat(&cx).await?;
                    let mut s = Sock::authed(&cx, &token, "user1").await?;
                    let ack = s.ack("chat:join", &json!({ "chatId": chat })).await?;
                    schema(&cx, "realtime/chat-join-ack", &ack, &s.frames())?;
                    ensure(
                        ack["data"]["chatId"] == chat.as_str(),
                        &[&format!("{{data: {{chatId: {chat}}}}}")],
                        short(&ack),
                        &s.frames(),
                    )?;
                    let left = s.ack("chat:leave", &json!({ "chatId": chat })).await?;
                    schema(&cx, "realtime/chat-leave-ack", &left, &s.frames())
                })
            },
        },
        Case {
            id: "rt.join.3",
            level: Must,
            desc: "User 2 emits chat:join for user 1's chat",
            requirement: "R15: chat:join refuses a non-participant with an error ack (STATED)",
            run: |cx| {
                run(async move {
                    let (_, chat) = own_chat(&cx).await?;
                    let b = need(cx.profile.user(1), "second user")?;
                    let mut s = Sock::authed(&cx, &b.token, "user2").await?;
                    let ack = s.ack("chat:join", &json!({ "chatId": chat })).await?;
                    ensure(
                        is_error_ack(&ack),
                        &["{error: {message}}"],
                        short(&ack),
                        &s.frames(),
                    )?;
                    schema(&cx, "realtime/ack-error", &ack, &s.frames())
                })
            },
        },
        Case {
            id: "rt.join.4",
            level: Must,
            desc: "chat:join with {}, {chatId: 7} and a bare string",
            requirement: "R14: a malformed payload gets an error ack, never silence",
            run: |cx| {
                run(async move {
                    let a = need(cx.profile.user(0), "first user")?;
                    let mut s = Sock::authed(&cx, &a.token, "user1").await?;
                    for bad in [json!({}), json!({ "chatId": 7 }), json!("not an object")] {
                        let ack = s.ack("chat:join", &bad).await?;
                        ensure(
                            is_error_ack(&ack),
                            &[&format!("{{error: {{message}}}} for {bad}")],
                            short(&ack),
                            &s.frames(),
                        )?;
                    }
                    Ok(())
                })
            },
        },
        Case {
            id: "rt.join.5",
            level: Must,
            desc: "chat:leave a joined chat",
            requirement: "R14: every client event is acknowledged; chat:leave with {data}",
            run: |cx| {
                run(async move {
                    let (token, chat) = own_chat(&cx).await?;
                    let mut s = Sock::authed(&cx, &token, "user1").await?;
                    s.ack("chat:join", &json!({ "chatId": chat })).await?;
                    let ack = s.ack("chat:leave", &json!({ "chatId": chat })).await?;
                    ensure(
                        ack.get("data").is_some(),
                        &["{data}"],
                        short(&ack),
                        &s.frames(),
                    )
                })
            },
        },
        Case {
            id: "rt.join.6",
            level: Should,
            desc: "chat:join then chat:leave; another socket posts in the chat",
            requirement: "R15: once chat:leave is acknowledged, the socket receives no more events of that chat's room (CHOSEN)",
            run: |cx| {
                run(async move {
                    let (token, chat) = own_chat(&cx).await?;
                    let mut leaver = Sock::authed(&cx, &token, "leaver").await?;
                    leaver.ack("chat:join", &json!({ "chatId": chat })).await?;
                    let left = leaver.ack("chat:leave", &json!({ "chatId": chat })).await?;
                    ensure(
                        left.get("data").is_some(),
                        &["chat:leave acknowledged with {data}"],
                        short(&left),
                        &leaver.frames(),
                    )?;
                    // A socket that stays in the room shows when the broadcast went out.
                    let mut watcher = Sock::authed(&cx, &token, "watcher").await?;
                    watcher.ack("chat:join", &json!({ "chatId": chat })).await?;
                    let mut sender = Sock::authed(&cx, &token, "sender").await?;
                    let ack = sender
                        .ack(
                            "message:send",
                            &json!({ "chatId": chat, "content": "after the leave" }),
                        )
                        .await?;
                    let id = ack["data"]["message"]["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    let watched = sees_message(&mut watcher, &id, cx.timeout).await;
                    ensure(
                        watched,
                        &[
                            "a socket still in the room receives the message (R17), so the leave can be judged",
                        ],
                        "the watcher received nothing",
                        &watcher.frames(),
                    )?;
                    let (events, _) = leaver
                        .events_until(Duration::from_millis(400), |_, _| false)
                        .await;
                    let leaked: Vec<&String> = events
                        .iter()
                        .filter(|(_, p)| p.to_string().contains(&chat))
                        .map(|(name, _)| name)
                        .collect();
                    ensure(
                        leaked.is_empty(),
                        &[
                            "nothing of the chat's room reaches the socket after its leave was acknowledged",
                        ],
                        format!("the socket that left received {leaked:?}"),
                        &format!("{}\n{}", leaver.frames(), sender.frames()),
                    )
                })
            },
        },
        Case {
            id: "rt.send.1",
            level: Must,
            desc: "message:send {chatId, content, type} and read the ack",
            requirement: "R16: message:send acks {data: {message, chatId}} with the persisted message (STATED)",
            run: |cx| {
                run(async move {
                    let (token, chat) = own_chat(&cx).await?;
                    let mut s = Sock::authed(&cx, &token, "user1").await?;
                    let ack = s
                        .ack(
                            "message:send",
                            &json!({ "chatId": chat, "content": "Hello!", "type": "TEXT" }),
                        )
                        .await?;
                    schema(&cx, "realtime/message-send-ack", &ack, &s.frames())?;
                    ensure(
                        ack["data"]["chatId"] == chat.as_str()
                            && ack["data"]["message"]["content"] == "Hello!",
                        &[&format!(
                            "data.chatId = {chat} and data.message.content = \"Hello!\""
                        )],
                        short(&ack),
                        &s.frames(),
                    )
                })
            },
        },
        Case {
            id: "rt.send.2",
            level: Must,
            desc: "message:send without a destination, and with a numeric content",
            requirement: "R14: a malformed message:send gets an error ack, never silence",
            run: |cx| {
                run(async move {
                    let (token, chat) = own_chat(&cx).await?;
                    let mut s = Sock::authed(&cx, &token, "user1").await?;
                    for bad in [
                        json!({ "content": "where to?" }),
                        json!({ "chatId": chat, "content": 5 }),
                    ] {
                        let ack = s.ack("message:send", &bad).await?;
                        ensure(
                            is_error_ack(&ack),
                            &[&format!("{{error: {{message}}}} for {bad}")],
                            short(&ack),
                            &s.frames(),
                        )?;
                    }
                    Ok(())
                })
            },
        },
        Case {
            id: "rt.send.3",
            level: Must,
            desc: "Send without joining, then another socket posts in the chat",
            requirement: "R16: message:send joins the sender's socket to the chat's room (STATED)",
            run: |cx| {
                run(async move {
                    let (token, chat) = own_chat(&cx).await?;
                    let mut sender = Sock::authed(&cx, &token, "sender").await?;
                    sender
                        .ack(
                            "message:send",
                            &json!({ "chatId": chat, "content": "first" }),
                        )
                        .await?;
                    let mut other = Sock::authed(&cx, &token, "other").await?;
                    let ack = other
                        .ack(
                            "message:send",
                            &json!({ "chatId": chat, "content": "second" }),
                        )
                        .await?;
                    let id = ack["data"]["message"]["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    let seen = sees_message(&mut sender, &id, cx.timeout).await;
                    ensure(
                        seen,
                        &["the sender's socket receives the room's next message"],
                        "nothing arrived: the sender was not joined",
                        &sender.frames(),
                    )
                })
            },
        },
        Case {
            id: "rt.send.4",
            level: Should,
            desc: "message:send with streamResponse to the streaming agent",
            requirement: "R16: the ack is sent before any reply event (CHOSEN)",
            run: |cx| {
                run(async move {
                    let a = need(cx.profile.user(0), "first user")?;
                    let agent = need(cx.profile.agents.streaming.as_ref(), "streaming agent")?;
                    let chat =
                        create_chat(&cx, &a.token, json!([{ "id": agent, "type": "AGENT" }]))
                            .await?;
                    let mut s = Sock::authed(&cx, &a.token, "user1").await?;
                    s.ack("chat:join", &json!({ "chatId": chat })).await?;
                    let state = cx.profile.stream_state(3);
                    s.ack("message:send", &json!({ "chatId": chat, "content": "order?", "streamResponse": true, "state": state })).await?;
                    let frames = s.frames();
                    // Only what follows the send counts (the join's ack came earlier).
                    let after_send = frames
                        .rfind("→ message:send")
                        .map_or(frames.as_str(), |at| &frames[at..]);
                    let ack_at = after_send.find("← ack#").unwrap_or(usize::MAX);
                    let reply_at = after_send
                        .find("← message:delta")
                        .or_else(|| after_send.find("← message:done"))
                        .unwrap_or(usize::MAX);
                    ensure(
                        ack_at < reply_at,
                        &["the ack before the first reply event"],
                        "a reply event came before the ack",
                        &frames,
                    )
                })
            },
        },
        Case {
            id: "rt.send.5",
            level: Must,
            desc: "message:send with chatKey + recipients, twice with the same key",
            requirement: "R16: chatKey + recipients finds or creates the chat (STATED: 'create or reuse a stable, logical chat')",
            run: |cx| {
                run(async move {
                    let a = need(cx.profile.user(0), "first user")?;
                    let agent = need(cx.profile.agents.streaming.as_ref(), "streaming agent")?;
                    let mut s = Sock::authed(&cx, &a.token, "user1").await?;
                    let key = format!("conformance-key-{}", std::process::id());
                    let body = json!({ "chatKey": key, "recipients": [{ "id": agent, "type": "AGENT" }], "content": "by key" });
                    let first = s.ack("message:send", &body).await?;
                    let again = s.ack("message:send", &body).await?;
                    ensure(
                        first["data"]["chatId"].is_string()
                            && first["data"]["chatId"] == again["data"]["chatId"],
                        &["both acks carry the same data.chatId"],
                        format!("{} / {}", first["data"]["chatId"], again["data"]["chatId"]),
                        &s.frames(),
                    )
                })
            },
        },
        Case {
            id: "rt.send.6",
            level: Should,
            desc: "message:send without a type",
            requirement: "R16: type defaults to TEXT",
            run: |cx| {
                run(async move {
                    let (token, chat) = own_chat(&cx).await?;
                    let mut s = Sock::authed(&cx, &token, "user1").await?;
                    let ack = s
                        .ack(
                            "message:send",
                            &json!({ "chatId": chat, "content": "typeless" }),
                        )
                        .await?;
                    ensure(
                        ack["data"]["message"]["type"] == "TEXT",
                        &["data.message.type = TEXT"],
                        short(&ack),
                        &s.frames(),
                    )
                })
            },
        },
        Case {
            id: "rt.broadcast.1",
            level: Must,
            desc: "A second socket joins the room; the first sends a message",
            requirement: "R17: a persisted message is broadcast as message to every socket in the room (STATED)",
            run: |cx| {
                run(async move {
                    let (token, chat) = own_chat(&cx).await?;
                    let mut watcher = Sock::authed(&cx, &token, "watcher").await?;
                    watcher.ack("chat:join", &json!({ "chatId": chat })).await?;
                    let mut sender = Sock::authed(&cx, &token, "sender").await?;
                    let ack = sender
                        .ack(
                            "message:send",
                            &json!({ "chatId": chat, "content": "to the room" }),
                        )
                        .await?;
                    let id = ack["data"]["message"]["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    let (events, found) = watcher
                        .events_until(cx.timeout, |name, p| {
                            name == "message" && p["id"] == id.as_str()
                        })
                        .await;
                    ensure(
                        found,
                        &["the watcher receives message with the sent id"],
                        format!("{} other events", events.len()),
                        &watcher.frames(),
                    )?;
                    let last = events.last().map(|(_, p)| p.clone()).unwrap_or_default();
                    schema(&cx, "realtime/message", &last, &watcher.frames())
                })
            },
        },
        Case {
            id: "rt.broadcast.2",
            level: Must,
            desc: "User 2, in no room of user 1, listens while user 1 sends",
            requirement: "R17 and the security rule: events go to the chat's room only; a non-participant never reads a chat",
            run: |cx| {
                run(async move {
                    let (token, chat) = own_chat(&cx).await?;
                    let b = need(cx.profile.user(1), "second user")?;
                    let mut outsider = Sock::authed(&cx, &b.token, "user2").await?;
                    let _ = outsider
                        .ack("chat:join", &json!({ "chatId": chat }))
                        .await?;
                    let mut sender = Sock::authed(&cx, &token, "sender").await?;
                    sender
                        .ack(
                            "message:send",
                            &json!({ "chatId": chat, "content": "private" }),
                        )
                        .await?;
                    let (events, _) = outsider
                        .events_until(Duration::from_millis(400), |_, _| false)
                        .await;
                    let leaked: Vec<&(String, Value)> = events
                        .iter()
                        .filter(|(_, p)| p.to_string().contains(&chat))
                        .collect();
                    ensure(
                        leaked.is_empty(),
                        &["nothing about the chat reaches user 2"],
                        format!(
                            "{} events leaked, first: {:?}",
                            leaked.len(),
                            leaked.first().map(|(n, _)| n)
                        ),
                        &outsider.frames(),
                    )
                })
            },
        },
        Case {
            id: "rt.broadcast.3",
            level: Should,
            desc: "The sender listens for its own message",
            requirement: "R17: the sender's socket receives its own message too (CHOSEN)",
            run: |cx| {
                run(async move {
                    let (token, chat) = own_chat(&cx).await?;
                    let mut s = Sock::authed(&cx, &token, "sender").await?;
                    let ack = s
                        .ack(
                            "message:send",
                            &json!({ "chatId": chat, "content": "echo?" }),
                        )
                        .await?;
                    let id = ack["data"]["message"]["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    let seen = sees_message(&mut s, &id, cx.timeout).await;
                    ensure(
                        seen,
                        &["message with the sent id on the sender's socket"],
                        "no echo",
                        &s.frames(),
                    )
                })
            },
        },
    ]
}
