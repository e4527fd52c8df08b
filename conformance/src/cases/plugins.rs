//! `plugins.*`: the webhook loop, seen from a plugin. The runner plays the
//! plugin: a webhook receiver on 127.0.0.1 (a random port per case) that
//! answers the challenge, records every event, and replies with the `inst-`
//! token it was given. Each case creates its own agent to install on, so the
//! cases are independent of each other and of the target's world.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::kit::{Rest, Sock, Step, ensure, need, rest, run, schema, short};
use crate::case::{Case, Ctx, Level::*, Outcome};

const AGENT_EVENTS: &[&str] = &[
    "AGENT_CHAT_JOINED",
    "AGENT_MESSAGE_RECEIVED",
    "CHAT_PARTICIPANT_JOINED",
    "PLUGIN_INSTALLED",
    "PLUGIN_UNINSTALLED",
];

/// How the receiver answers `WEBHOOK_CHALLENGE`.
#[derive(Clone, Copy, PartialEq)]
enum Answer {
    Echo,
    Wrong,
}

#[derive(Clone)]
struct Inbox {
    answer: Answer,
    events: mpsc::UnboundedSender<Value>,
}

async fn receive(State(inbox): State<Inbox>, Json(body): Json<Value>) -> Json<Value> {
    let reply = match (body["name"].as_str(), inbox.answer) {
        (Some("WEBHOOK_CHALLENGE"), Answer::Echo) => json!({ "challenge": body["challenge"] }),
        (Some("WEBHOOK_CHALLENGE"), Answer::Wrong) => json!({ "challenge": "not the challenge" }),
        _ => json!({ "received": true }),
    };
    let _ = inbox.events.send(body);
    Json(reply)
}

/// The runner's webhook receiver; stops when dropped.
struct Receiver {
    url: String,
    events: mpsc::UnboundedReceiver<Value>,
    /// Every event received so far, in order (for the wire log).
    seen: Arc<Mutex<Vec<String>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Receiver {
    async fn start(answer: Answer) -> Step<Receiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| Outcome::fail(["a webhook receiver on 127.0.0.1"], e.to_string(), ""))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Outcome::fail(["a webhook receiver address"], e.to_string(), ""))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let router = axum::Router::new()
            .route("/webhook", post(receive))
            .with_state(Inbox { answer, events: tx });
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Receiver {
            url: format!("http://{addr}/webhook"),
            events: rx,
            seen: Arc::default(),
            server,
        })
    }

    /// The next event named `name` within `within`; other events are skipped
    /// (and logged).
    async fn next(&mut self, cx: &Ctx, name: &str, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let body = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .ok()
                .flatten()?;
            let line = format!("webhook ← {}", short(&body));
            cx.log(line.clone());
            self.seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(line);
            if body["name"] == name {
                return Some(body);
            }
        }
    }

    fn log(&self) -> String {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .join("\n")
    }
}

/// What a case needs before it can act as a plugin.
fn plugins_supported(cx: &Ctx) -> Step<String> {
    if !cx.profile.capabilities.plugins {
        return Err(Outcome::Unsupported(
            "the profile does not declare capabilities.plugins".into(),
        ));
    }
    Ok(need(cx.profile.user(0), "first user")?.token)
}

fn created(r: &Rest, what: &str) -> Step<()> {
    ensure(
        (200..300).contains(&r.status),
        &[&format!("2xx {what}")],
        format!("{} {}", r.status, short(&r.body)),
        &r.curl,
    )
}

fn id_of(r: &Rest, what: &str) -> Step<String> {
    r.data()["id"].as_str().map(str::to_string).ok_or_else(|| {
        Outcome::fail(
            [format!("data.id of the {what}")],
            short(&r.body),
            r.curl.clone(),
        )
    })
}

/// Registers a plugin whose webhook is `hook`.
async fn register(cx: &Ctx, token: &str, hook: &Receiver, scopes: &[&str]) -> Step<Rest> {
    let body = json!({
        "name": format!("conformance {}", cx.case_id), "type": "AGENT_EVENT_HANDLER",
        "webhookUrl": hook.url, "events": AGENT_EVENTS, "scopes": scopes,
    });
    rest(cx, "POST", "/api/plugins", Some(token), Some(&body)).await
}

/// A plugin installed on a fresh agent of user 1.
struct Installed {
    hook: Receiver,
    agent: String,
    instance: String,
    /// The `inst-` token from `PLUGIN_INSTALLED`.
    token: String,
    user_token: String,
}

async fn install(cx: &Ctx, scopes: &[&str], mode: &str) -> Step<Installed> {
    let user_token = plugins_supported(cx)?;
    let mut hook = Receiver::start(Answer::Echo).await?;
    let r = rest(
        cx,
        "POST",
        "/api/agents",
        Some(&user_token),
        Some(&json!({ "name": format!("conformance agent {}", cx.case_id) })),
    )
    .await?;
    created(&r, "creating an agent")?;
    let agent = id_of(&r, "agent")?;
    let r = register(cx, &user_token, &hook, scopes).await?;
    created(
        &r,
        "registering a plugin whose webhook answers the challenge",
    )?;
    let plugin = id_of(&r, "plugin")?;
    let body = json!({ "pluginId": plugin, "events": AGENT_EVENTS, "scopes": scopes, "eventDispatchMode": mode });
    let r = rest(
        cx,
        "POST",
        &format!("/api/agents/{agent}/event-handlers"),
        Some(&user_token),
        Some(&body),
    )
    .await?;
    created(&r, "installing the plugin on the agent")?;
    let instance = id_of(&r, "plugin instance")?;
    let installed = hook
        .next(cx, "PLUGIN_INSTALLED", cx.timeout)
        .await
        .ok_or_else(|| {
            Outcome::fail(
                ["PLUGIN_INSTALLED at the webhook after the install"],
                "nothing",
                format!("{}\n{}", r.curl, hook.log()),
            )
        })?;
    let token = installed["token"]["token"]
        .as_str()
        .filter(|t| t.starts_with("inst-"))
        .map(str::to_string)
        .ok_or_else(|| {
            Outcome::fail(
                ["PLUGIN_INSTALLED.token.token, an inst-… token"],
                short(&installed),
                hook.log(),
            )
        })?;
    Ok(Installed {
        hook,
        agent,
        instance,
        token,
        user_token,
    })
}

/// A chat of user 1 with the installed agent.
async fn chat_with(cx: &Ctx, p: &Installed) -> Step<String> {
    super::kit::create_chat(
        cx,
        &p.user_token,
        json!([{ "id": p.agent, "type": "AGENT" }]),
    )
    .await
}

async fn post_message(cx: &Ctx, token: &str, chat: &str, content: &str) -> Step<Rest> {
    rest(
        cx,
        "POST",
        "/api/messages",
        Some(token),
        Some(&json!({ "chatId": chat, "content": content, "type": "TEXT" })),
    )
    .await
}

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "plugins.challenge.1",
            level: Must,
            desc: "Register a plugin whose webhook answers the challenge",
            requirement: "R21: registration sends WEBHOOK_CHALLENGE {challenge}; a webhook answering {\"challenge\": <value>} passes (STATED loosely)",
            run: |cx| {
                run(async move {
                    let token = plugins_supported(&cx)?;
                    let mut hook = Receiver::start(Answer::Echo).await?;
                    let r = register(&cx, &token, &hook, &["AGENT_MESSAGE_WRITE"]).await?;
                    let challenge = hook
                        .next(&cx, "WEBHOOK_CHALLENGE", Duration::from_millis(200))
                        .await;
                    let challenge = challenge.ok_or_else(|| {
                        Outcome::fail(
                            ["WEBHOOK_CHALLENGE at the webhook before registration answers"],
                            format!(
                                "no challenge; registration answered {} {}",
                                r.status,
                                short(&r.body)
                            ),
                            r.curl.clone(),
                        )
                    })?;
                    schema(&cx, "plugin-events/webhook-challenge", &challenge, &r.curl)?;
                    created(
                        &r,
                        "registering a plugin whose webhook passed the challenge",
                    )?;
                    schema(&cx, "objects/plugin", r.data(), &r.curl)
                })
            },
        },
        Case {
            id: "plugins.challenge.2",
            level: Must,
            desc: "Register a plugin whose webhook answers the wrong challenge",
            requirement: "R21: a webhook that fails verification cannot be registered or installed (STATED)",
            run: |cx| {
                run(async move {
                    let token = plugins_supported(&cx)?;
                    let hook = Receiver::start(Answer::Wrong).await?;
                    let r = register(&cx, &token, &hook, &["AGENT_MESSAGE_WRITE"]).await?;
                    super::kit::status(
                        &cx,
                        &r,
                        |s| (400..500).contains(&s),
                        "a 4xx error envelope naming the failed verification",
                    )
                })
            },
        },
        Case {
            id: "plugins.install.1",
            level: Must,
            desc: "Install a plugin on an agent and read PLUGIN_INSTALLED",
            requirement: "R22: PLUGIN_INSTALLED carries the new instance and its inst- token (STATED)",
            run: |cx| {
                run(async move {
                    let user_token = plugins_supported(&cx)?;
                    let mut hook = Receiver::start(Answer::Echo).await?;
                    let r = rest(
                        &cx,
                        "POST",
                        "/api/agents",
                        Some(&user_token),
                        Some(&json!({ "name": "conformance install" })),
                    )
                    .await?;
                    created(&r, "creating an agent")?;
                    let agent = id_of(&r, "agent")?;
                    let r = register(&cx, &user_token, &hook, &["AGENT_MESSAGE_WRITE"]).await?;
                    created(&r, "registering a plugin")?;
                    let plugin = id_of(&r, "plugin")?;
                    let body = json!({ "pluginId": plugin, "events": AGENT_EVENTS, "scopes": ["AGENT_MESSAGE_WRITE"], "eventDispatchMode": "SYNC" });
                    let r = rest(
                        &cx,
                        "POST",
                        &format!("/api/agents/{agent}/event-handlers"),
                        Some(&user_token),
                        Some(&body),
                    )
                    .await?;
                    created(&r, "installing the plugin")?;
                    schema(&cx, "objects/plugin-instance", r.data(), &r.curl)?;
                    let instance = id_of(&r, "plugin instance")?;
                    let event = hook
                        .next(&cx, "PLUGIN_INSTALLED", cx.timeout)
                        .await
                        .ok_or_else(|| {
                            Outcome::fail(
                                ["PLUGIN_INSTALLED at the webhook"],
                                "nothing",
                                format!("{}\n{}", r.curl, hook.log()),
                            )
                        })?;
                    schema(&cx, "plugin-events/plugin-installed", &event, &hook.log())?;
                    ensure(
                        event["pluginInstance"]["id"] == instance.as_str()
                            && event["token"]["token"]
                                .as_str()
                                .is_some_and(|t| t.starts_with("inst-")),
                        &[&format!(
                            "pluginInstance.id {instance} and token.token inst-…"
                        )],
                        short(&event),
                        &hook.log(),
                    )
                })
            },
        },
        Case {
            id: "plugins.dispatch.1",
            level: Must,
            desc: "A message to the agent reaches its plugin as AGENT_MESSAGE_RECEIVED",
            requirement: "R20: plugin events are POSTs of the event object to the webhookUrl, with the payloads of the Events page (STATED)",
            run: |cx| {
                run(async move {
                    let mut p = install(&cx, &["AGENT_MESSAGE_WRITE"], "SYNC").await?;
                    let chat = chat_with(&cx, &p).await?;
                    let r = post_message(&cx, &p.user_token, &chat, "for the plugin").await?;
                    created(&r, "posting a message")?;
                    let sent = id_of(&r, "message")?;
                    let event = p
                        .hook
                        .next(&cx, "AGENT_MESSAGE_RECEIVED", cx.timeout)
                        .await
                        .ok_or_else(|| {
                            Outcome::fail(
                                ["AGENT_MESSAGE_RECEIVED at the webhook"],
                                "nothing",
                                format!("{}\n{}", r.curl, p.hook.log()),
                            )
                        })?;
                    schema(
                        &cx,
                        "plugin-events/agent-message-received",
                        &event,
                        &p.hook.log(),
                    )?;
                    ensure(
                        event["message"]["id"] == sent.as_str()
                            && event["message"]["content"] == "for the plugin"
                            && event["agent"]["id"] == p.agent.as_str()
                            && event["pluginInstance"]["id"] == p.instance.as_str(),
                        &[&format!(
                            "message {sent} \"for the plugin\", agent {}, pluginInstance {}",
                            p.agent, p.instance
                        )],
                        short(&event),
                        &p.hook.log(),
                    )
                })
            },
        },
        Case {
            id: "plugins.dispatch.2",
            level: Should,
            desc: "Four messages in a row reach a SYNC instance in order",
            requirement: "R23: SYNC: the platform awaits the webhook before sending that instance the chat's next event, so it sees them in order (CHOSEN)",
            run: |cx| {
                run(async move {
                    let mut p = install(&cx, &["AGENT_MESSAGE_WRITE"], "SYNC").await?;
                    let chat = chat_with(&cx, &p).await?;
                    let mut sent = Vec::new();
                    for i in 1..=4 {
                        let r = post_message(&cx, &p.user_token, &chat, &format!("in order #{i}"))
                            .await?;
                        created(&r, "posting a message")?;
                        sent.push(format!("in order #{i}"));
                    }
                    let mut got = Vec::new();
                    while got.len() < sent.len() {
                        match p.hook.next(&cx, "AGENT_MESSAGE_RECEIVED", cx.timeout).await {
                            Some(e) => got.push(
                                e["message"]["content"]
                                    .as_str()
                                    .unwrap_or_default()
                                    .to_string(),
                            ),
                            None => break,
                        }
                    }
                    ensure(
                        got == sent,
                        &[&format!("{sent:?}")],
                        format!("{got:?}"),
                        &p.hook.log(),
                    )
                })
            },
        },
        Case {
            id: "plugins.reply.1",
            level: Must,
            desc: "The plugin replies with its inst- token; the chat sees the agent's message",
            requirement: "R24: a plugin replies through POST /api/messages with its inst- token, as its agent (STATED)",
            run: |cx| {
                run(async move {
                    let mut p = install(&cx, &["AGENT_MESSAGE_WRITE"], "SYNC").await?;
                    let chat = chat_with(&cx, &p).await?;
                    let mut user = Sock::authed(&cx, &p.user_token, "user1").await?;
                    user.ack("chat:join", &json!({ "chatId": chat })).await?;
                    let r = post_message(&cx, &p.user_token, &chat, "hello plugin").await?;
                    created(&r, "posting a message")?;
                    let asked = id_of(&r, "message")?;
                    p.hook.next(&cx, "AGENT_MESSAGE_RECEIVED", cx.timeout).await;
                    let reply = json!({ "chatId": chat, "content": "hello from the plugin", "type": "TEXT", "respondedToId": asked });
                    let r =
                        rest(&cx, "POST", "/api/messages", Some(&p.token), Some(&reply)).await?;
                    created(&r, "posting the plugin's reply with its inst- token")?;
                    let agent = p.agent.clone();
                    let (events, found) = user
                        .events_until(cx.timeout, |name, m| {
                            name == "message" && m["content"] == "hello from the plugin"
                        })
                        .await;
                    let message = events.last().map(|(_, m)| m.clone()).unwrap_or_default();
                    ensure(
                        found && message["senderId"] == agent.as_str(),
                        &[&format!(
                            "message \"hello from the plugin\" from senderId {agent} in the room"
                        )],
                        if found {
                            short(&message)
                        } else {
                            "no such message".into()
                        },
                        &format!("{}\n{}", r.curl, user.frames()),
                    )?;
                    user.close().await;
                    Ok(())
                })
            },
        },
        Case {
            id: "plugins.scopes.1",
            level: Must,
            desc: "An instance without AGENT_MESSAGE_WRITE posts a message",
            requirement: "R22: the plugin acts with its token only within the instance's scopes (STATED)",
            run: |cx| {
                run(async move {
                    let p = install(&cx, &[], "SYNC").await?;
                    let chat = chat_with(&cx, &p).await?;
                    let r = post_message(&cx, &p.token, &chat, "not allowed").await?;
                    super::kit::status(
                        &cx,
                        &r,
                        |s| s == 403,
                        "403 with an error envelope (scope missing)",
                    )
                })
            },
        },
        Case {
            id: "plugins.uninstall.1",
            level: Must,
            desc: "Uninstall: PLUGIN_UNINSTALLED, then the inst- token no longer works",
            requirement: "R22: uninstall dispatches PLUGIN_UNINSTALLED and revokes the instance's token (STATED)",
            run: |cx| {
                run(async move {
                    let mut p = install(&cx, &["AGENT_MESSAGE_WRITE"], "SYNC").await?;
                    let chat = chat_with(&cx, &p).await?;
                    let r = rest(
                        &cx,
                        "DELETE",
                        &format!("/api/agents/{}/event-handlers/{}", p.agent, p.instance),
                        Some(&p.user_token),
                        None,
                    )
                    .await?;
                    created(&r, "uninstalling")?;
                    let event = p
                        .hook
                        .next(&cx, "PLUGIN_UNINSTALLED", cx.timeout)
                        .await
                        .ok_or_else(|| {
                            Outcome::fail(
                                ["PLUGIN_UNINSTALLED at the webhook"],
                                "nothing",
                                format!("{}\n{}", r.curl, p.hook.log()),
                            )
                        })?;
                    schema(
                        &cx,
                        "plugin-events/plugin-uninstalled",
                        &event,
                        &p.hook.log(),
                    )?;
                    let r = post_message(&cx, &p.token, &chat, "after uninstall").await?;
                    super::kit::status(
                        &cx,
                        &r,
                        |s| s == 401,
                        "401: the uninstalled instance's token is revoked",
                    )
                })
            },
        },
    ]
}
