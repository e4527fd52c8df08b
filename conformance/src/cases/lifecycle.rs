//! `rt.lifecycle.*`: the relayed `CHAT_*` lifecycle events (R19). The docs
//! name them but show no payload, so the shapes are PROTOCOL.md's and the
//! level is SHOULD.

use serde_json::{Value, json};

use super::kit::{Rest, Sock, Step, create_chat, ensure, need, rest, run, schema, short};
use crate::case::{Case, Ctx, Level::*, Outcome};

/// The rule every case here checks.
const R19: &str = "R19: relayed lifecycle events go to the room under their own names, as {name, chat, …} (names STATED, shapes CHOSEN)";

/// A socket of user 1 in a fresh chat of its own: (socket, chat id, token).
async fn watched_chat(cx: &Ctx) -> Step<(Sock, String, String)> {
    let a = need(cx.profile.user(0), "first user")?;
    let chat = create_chat(cx, &a.token, json!([])).await?;
    let mut s = Sock::authed(cx, &a.token, "user1").await?;
    s.ack("chat:join", &json!({ "chatId": chat })).await?;
    Ok((s, chat, a.token))
}

/// Waits for `event` in the room and checks it: schema, `name`, `chat.id`.
async fn expect_relayed(
    cx: &Ctx,
    s: &mut Sock,
    event: &str,
    schema_name: &'static str,
    chat: &str,
    trigger: &Rest,
) -> Step<Value> {
    ensure(
        (200..300).contains(&trigger.status),
        &["2xx for the change that raises the event"],
        format!("{} {}", trigger.status, short(&trigger.body)),
        &trigger.curl,
    )?;
    let (events, found) = s.events_until(cx.timeout, |name, _| name == event).await;
    let repro = format!("{}\n{}", trigger.curl, s.frames());
    let payload = events.last().map(|(_, p)| p.clone()).unwrap_or_default();
    if !found {
        return Err(Outcome::fail(
            [format!("{event} {{name, chat, …}} relayed to the room")],
            format!(
                "not within {:?}; saw {:?}",
                cx.timeout,
                events.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>()
            ),
            repro,
        ));
    }
    schema(cx, schema_name, &payload, &repro)?;
    ensure(
        payload["name"] == event && payload["chat"]["id"] == chat,
        &[&format!("name {event} and chat.id {chat}")],
        short(&payload),
        &repro,
    )?;
    Ok(payload)
}

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "rt.lifecycle.1",
            level: Should,
            desc: "A message in a joined chat is relayed as CHAT_MESSAGE_ADDED",
            requirement: R19,
            run: |cx| {
                run(async move {
                    let (mut s, chat, token) = watched_chat(&cx).await?;
                    let r = rest(
                        &cx,
                        "POST",
                        "/api/messages",
                        Some(&token),
                        Some(&json!({ "chatId": chat, "content": "lifecycle" })),
                    )
                    .await?;
                    let p = expect_relayed(
                        &cx,
                        &mut s,
                        "CHAT_MESSAGE_ADDED",
                        "realtime/chat-message-added",
                        &chat,
                        &r,
                    )
                    .await?;
                    ensure(
                        p["message"]["content"] == "lifecycle",
                        &["message.content \"lifecycle\""],
                        short(&p),
                        &s.frames(),
                    )?;
                    s.close().await;
                    Ok(())
                })
            },
        },
        Case {
            id: "rt.lifecycle.2",
            level: Should,
            desc: "Updating a chat's state is relayed as CHAT_STATE_UPDATED",
            requirement: R19,
            run: |cx| {
                run(async move {
                    let (mut s, chat, token) = watched_chat(&cx).await?;
                    let r = rest(
                        &cx,
                        "PUT",
                        &format!("/api/chats/{chat}"),
                        Some(&token),
                        Some(&json!({ "state": { "phase": "conformance" } })),
                    )
                    .await?;
                    let p = expect_relayed(
                        &cx,
                        &mut s,
                        "CHAT_STATE_UPDATED",
                        "realtime/chat-state-updated",
                        &chat,
                        &r,
                    )
                    .await?;
                    ensure(
                        p["chat"]["state"]["phase"] == "conformance",
                        &["chat.state.phase \"conformance\" (the new state)"],
                        short(&p),
                        &s.frames(),
                    )?;
                    s.close().await;
                    Ok(())
                })
            },
        },
        Case {
            id: "rt.lifecycle.3",
            level: Should,
            desc: "Adding a participant is relayed as CHAT_PARTICIPANT_JOINED",
            requirement: R19,
            run: |cx| {
                run(async move {
                    let b = need(cx.profile.user(1), "second user")?;
                    let (mut s, chat, token) = watched_chat(&cx).await?;
                    let r = rest(
                        &cx,
                        "POST",
                        &format!("/api/chats/{chat}/participants"),
                        Some(&token),
                        Some(&json!({ "id": b.id, "type": "USER" })),
                    )
                    .await?;
                    let p = expect_relayed(
                        &cx,
                        &mut s,
                        "CHAT_PARTICIPANT_JOINED",
                        "realtime/chat-participant-joined",
                        &chat,
                        &r,
                    )
                    .await?;
                    ensure(
                        p["participant"]["id"] == b.id.as_str(),
                        &[&format!("participant.id {}", b.id)],
                        short(&p),
                        &s.frames(),
                    )?;
                    s.close().await;
                    Ok(())
                })
            },
        },
        Case {
            id: "rt.lifecycle.4",
            level: Should,
            desc: "Attaching a repository is relayed as CHAT_REPOSITORY_ATTACHED",
            requirement: R19,
            run: |cx| {
                run(async move {
                    let (mut s, chat, token) = watched_chat(&cx).await?;
                    let repo = rest(
                        &cx,
                        "POST",
                        "/api/repositories",
                        Some(&token),
                        Some(&json!({ "name": "conformance repository" })),
                    )
                    .await?;
                    let repo_id =
                        repo.data()["id"]
                            .as_str()
                            .map(str::to_string)
                            .ok_or_else(|| {
                                Outcome::fail(
                                    ["data.id of a new repository"],
                                    short(&repo.body),
                                    repo.curl.clone(),
                                )
                            })?;
                    let r = rest(
                        &cx,
                        "POST",
                        &format!("/api/chats/{chat}/repositories"),
                        Some(&token),
                        Some(&json!({ "repositoryId": repo_id })),
                    )
                    .await?;
                    let p = expect_relayed(
                        &cx,
                        &mut s,
                        "CHAT_REPOSITORY_ATTACHED",
                        "realtime/chat-repository-attached",
                        &chat,
                        &r,
                    )
                    .await?;
                    ensure(
                        p["repository"]["id"] == repo_id.as_str(),
                        &[&format!("repository.id {repo_id}")],
                        short(&p),
                        &s.frames(),
                    )?;
                    s.close().await;
                    Ok(())
                })
            },
        },
    ]
}
