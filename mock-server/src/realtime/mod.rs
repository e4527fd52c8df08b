//! socket.io realtime: authentication, client events, broadcasts.
//!
//! One async fn per client event. Payloads are taken as raw JSON
//! (`TryData<Value>`) and validated here, because socketioxide silently skips
//! a handler whose typed `Data<T>` fails to parse, and the protocol promises
//! an error ack for every malformed payload (decisions.md 14).

mod delta;
pub mod rooms;
pub mod stream;

use std::sync::Arc;

use serde_json::{Map, Value, json};
use socketioxide::extract::{AckSender, Event, SocketRef, State, TryData};
use socketioxide::handler::FromMessageParts;
use socketioxide::socket::Socket;

use crate::App;
use crate::faults::FaultKind;
use crate::journal::{Kind, Note};
use crate::model::{Chat, Message, Participant, is_message_type, is_object_id};
use crate::store::{Caller, Destination, NewMessage, Refusal};

/// Whether the client asked for an acknowledgement. Without one, an error is
/// reported with an `error` event instead, so it is never lost.
struct WantsAck(bool);

impl FromMessageParts<socketioxide::adapter::LocalAdapter> for WantsAck {
    type Error = std::convert::Infallible;
    fn from_message_parts(
        _: &Arc<Socket>,
        _: &mut socketioxide::handler::Value,
        ack_id: &Option<i64>,
    ) -> Result<Self, Self::Error> {
        Ok(WantsAck(ack_id.is_some()))
    }
}

/// Journals a client event with the answer it got.
fn journal_in(app: &App, socket: &SocketRef, event: &str, result: &Result<Value, String>) {
    if !app.journal.enabled() {
        return;
    }
    let chat_id = result
        .as_ref()
        .ok()
        .and_then(|d| d.get("chatId"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let ack = match result {
        Ok(_) => json!("data"),
        Err(m) => json!({ "error": m }),
    };
    app.journal.record(
        Kind::In,
        Note {
            event: Some(event.to_string()),
            chat_id,
            detail: json!({ "sid": socket.id.to_string(), "ack": ack }).into(),
            ..Note::default()
        },
    );
}

/// Answers a client event: `{data}` or `{error: {message}}` as its ack, or an
/// `error` event when the client sent no ack callback.
fn reply(
    app: &App,
    socket: &SocketRef,
    ack: AckSender,
    wants_ack: WantsAck,
    event: &str,
    result: Result<Value, String>,
) {
    journal_in(app, socket, event, &result);
    match (result, wants_ack.0) {
        (Ok(data), true) => {
            let _ = ack.send(&json!({ "data": data }));
        }
        (Ok(_), false) => {}
        (Err(message), true) => {
            tracing::debug!(sid = %socket.id, event, %message, "error ack");
            let _ = ack.send(&json!({ "error": { "message": message } }));
        }
        (Err(message), false) => {
            tracing::debug!(sid = %socket.id, event, %message, "error event (no ack requested)");
            let _ = socket.emit(
                "error",
                &json!({ "message": format!("{event}: {message}") }),
            );
        }
    }
}

fn caller_of(socket: &SocketRef) -> Option<Caller> {
    socket.extensions.get::<Caller>()
}

/// Why a socket was refused (kept in its extensions until it is told).
#[derive(Clone)]
struct Refused(String);

/// Connect middleware: authenticates from `auth.token` and registers the
/// event handlers. It runs *before* socketioxide acknowledges the connection;
/// the connect handler itself is spawned as a task afterwards, so an event a
/// client sends right away could otherwise arrive before its handler exists
/// and be dropped without a word (seen: 1 in 250 Artillery users never got
/// its ack). Handlers answer a refused socket "not authenticated".
pub async fn authenticate(
    socket: SocketRef,
    TryData(auth): TryData<Value>,
    State(app): State<Arc<App>>,
) -> Result<(), std::convert::Infallible> {
    let token = match &auth {
        Ok(Value::Object(a)) => a.get("token").and_then(Value::as_str).map(str::to_string),
        _ => None,
    };
    let result = match token {
        None => Err("Missing token: connect with auth: { token: \"user-…\" }".to_string()),
        Some(t) => app.authenticate(&t),
    };
    // Journaled here, so the connect comes before any event of the socket.
    let detail = match &result {
        Ok(caller) => json!({ "sid": socket.id.to_string(), "entity": caller.entity }),
        Err(message) => json!({ "sid": socket.id.to_string(), "refused": message }),
    };
    app.journal.record(
        Kind::Connect,
        Note {
            detail: detail.into(),
            ..Note::default()
        },
    );
    match result {
        Ok(caller) => {
            socket.extensions.insert(caller);
        }
        Err(message) => {
            socket.extensions.insert(Refused(message));
        }
    }
    socket.on("chat:join", on_join);
    socket.on("chat:leave", on_leave);
    socket.on("message:send", on_send);
    socket.on_fallback(on_unknown);
    socket.on_disconnect(
        |socket: SocketRef, State(app): State<Arc<App>>| async move {
            app.rooms.remove_socket(socket.id);
            app.journal.record(
                Kind::Disconnect,
                Note {
                    detail: json!({ "sid": socket.id.to_string() }).into(),
                    ..Note::default()
                },
            );
        },
    );
    Ok(())
}

/// Connection handler (after [`authenticate`]): greet with `success {entity}`,
/// or say why with `error {message}` and disconnect.
pub async fn on_connect(socket: SocketRef, State(app): State<Arc<App>>) {
    if let Some(Refused(message)) = socket.extensions.get::<Refused>() {
        tracing::info!(sid = %socket.id, %message, "socket refused");
        let _ = socket.emit("error", &json!({ "message": message }));
        let _ = socket.disconnect();
        return;
    }
    let Some(caller) = caller_of(&socket) else {
        return;
    };
    tracing::debug!(sid = %socket.id, entity = %caller.entity.id, "socket authenticated");
    let entity = caller.entity.clone();
    let greeting = if app.faults.on(None, FaultKind::SuccessWithoutEntity) {
        json!({})
    } else {
        json!({ "entity": entity })
    };
    let _ = socket.emit("success", &greeting);
}

fn chat_id_of<E: std::fmt::Display>(payload: &Result<Value, E>) -> Result<String, String> {
    let obj = match payload {
        Ok(Value::Object(o)) => o,
        Ok(other) => {
            return Err(format!(
                "payload must be an object like {{ \"chatId\": \"…\" }}, not {}",
                kind(other)
            ));
        }
        Err(e) => return Err(format!("payload is not valid JSON: {e}")),
    };
    match obj.get("chatId") {
        None => Err("chatId is required".into()),
        Some(Value::String(id)) if is_object_id(id) => Ok(id.clone()),
        Some(Value::String(id)) => Err(format!(
            "chatId {id:?} is not an id (24 lowercase hex characters)"
        )),
        Some(other) => Err(format!("chatId must be a string, not {}", kind(other))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

async fn on_join(
    socket: SocketRef,
    TryData(payload): TryData<Value>,
    ack: AckSender,
    wants: WantsAck,
    State(app): State<Arc<App>>,
) {
    let wants = honour_no_acks(&app, wants);
    let result = (|| {
        let caller = caller_of(&socket).ok_or("not authenticated")?;
        let chat_id = chat_id_of(&payload)?;
        if !app
            .faults
            .on(Some(&chat_id), FaultKind::AllowNonParticipantJoin)
        {
            app.store
                .can_join(&caller, &chat_id)
                .map_err(|r| r.message().to_string())?;
        }
        app.rooms.join(&chat_id, &socket);
        Ok(join_ack_data(&app, &chat_id))
    })();
    reply(&app, &socket, ack, wants, "chat:join", result);
}

async fn on_leave(
    socket: SocketRef,
    TryData(payload): TryData<Value>,
    ack: AckSender,
    wants: WantsAck,
    State(app): State<Arc<App>>,
) {
    let wants = honour_no_acks(&app, wants);
    let result = chat_id_of(&payload).map(|chat_id| {
        app.rooms.leave(&chat_id, socket.id);
        join_ack_data(&app, &chat_id)
    });
    reply(&app, &socket, ack, wants, "chat:leave", result);
}

/// `{chatId}`, or `{}` under the `join-ack-without-chat-id` fault.
fn join_ack_data(app: &App, chat_id: &str) -> Value {
    if app
        .faults
        .on(Some(chat_id), FaultKind::JoinAckWithoutChatId)
    {
        json!({})
    } else {
        json!({ "chatId": chat_id })
    }
}

async fn on_unknown(
    socket: SocketRef,
    Event(event): Event,
    ack: AckSender,
    wants: WantsAck,
    State(app): State<Arc<App>>,
) {
    let wants = honour_no_acks(&app, wants);
    let result = Err(format!(
        "unknown event {event:?}: this server handles chat:join, chat:leave and message:send"
    ));
    reply(&app, &socket, ack, wants, &event, result);
}

async fn on_send(
    socket: SocketRef,
    TryData(payload): TryData<Value>,
    ack: AckSender,
    wants: WantsAck,
    State(app): State<Arc<App>>,
) {
    let wants = honour_no_acks(&app, wants);
    let Some(caller) = caller_of(&socket) else {
        return reply(
            &app,
            &socket,
            ack,
            wants,
            "message:send",
            Err("not authenticated".into()),
        );
    };
    // A plugin's streamed reply, chunk by chunk, as over POST /api/messages.
    if let Ok(Value::Object(o)) = &payload
        && o.contains_key("streamId")
    {
        let result = match crate::plugins::streams::chunk(&app, &caller, o).await {
            Ok((_, message)) => Ok(json!({ "message": message, "chatId": message["chatId"] })),
            Err(e) => Err(e.message),
        };
        return reply(&app, &socket, ack, wants, "message:send", result);
    }
    let typeless = matches!(&payload, Ok(Value::Object(o)) if !o.contains_key("type"));
    let parsed = match payload {
        Ok(Value::Object(o)) => parse_send(&o),
        Ok(other) => Err(format!(
            "payload must be a message object, not {}",
            kind(&other)
        )),
        Err(e) => Err(format!("payload is not valid JSON: {e}")),
    };
    let (mut to, new) = match parsed {
        Ok(p) => p,
        Err(e) => return reply(&app, &socket, ack, wants, "message:send", Err(e)),
    };
    if app.faults.on(None, FaultKind::KeyNotReused)
        && let Destination::Key { recipients, .. } = to
    {
        to = Destination::Recipients(recipients);
    }
    let (message, chat) = match send(&app, &caller, to, new) {
        Ok(sent) => sent,
        Err(r) => {
            return reply(
                &app,
                &socket,
                ack,
                wants,
                "message:send",
                Err(r.message().to_string()),
            );
        }
    };
    let chat_id = Some(chat.id.as_str());
    // Join before acking: the sender is in the room for the echo and every reply.
    if !app.faults.on(chat_id, FaultKind::NoAutoJoin) {
        app.rooms.join(&chat.id, &socket);
    }
    let late = app
        .faults
        .matching(chat_id, None)
        .iter()
        .find_map(|k| match k {
            FaultKind::AckLate { ms } => Some(*ms),
            _ => None,
        });
    let except = app
        .faults
        .on(chat_id, FaultKind::NoEchoToSender)
        .then_some(socket.id);
    if let Some(ms) = late {
        announce_except(&app, &chat, &message, except).await;
        start_replies(&app, &caller, &message);
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    journal_in(
        &app,
        &socket,
        "message:send",
        &Ok(json!({ "chatId": chat.id, "messageId": message.id })),
    );
    if wants.0 {
        let mut data = json!({ "message": message, "chatId": chat.id });
        if typeless && app.faults.on(chat_id, FaultKind::NoTypeDefault) {
            data["message"]["type"] = Value::Null;
        }
        if app.faults.on(chat_id, FaultKind::BadMessageIds) {
            data["message"]["id"] = json!(format!("msg_{}", message.id));
        }
        let _ = ack.send(&json!({ "data": data }));
    }
    if late.is_none() {
        announce_except(&app, &chat, &message, except).await;
        start_replies(&app, &caller, &message);
    }
}

/// The `no-acks` fault: behave as if the client asked for no ack.
fn honour_no_acks(app: &App, wants: WantsAck) -> WantsAck {
    WantsAck(wants.0 && !app.faults.on(None, FaultKind::NoAcks))
}

/// Validates a `message:send` (or `POST /api/messages`) body.
pub fn parse_send(o: &Map<String, Value>) -> Result<(Destination, NewMessage), String> {
    let string = |k: &str| -> Result<Option<String>, String> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(format!("{k} must be a string, not {}", kind(v))),
        }
    };
    let content = string("content")?.ok_or("content is required (a string)")?;
    let kind_ = string("type")?.unwrap_or_else(Message::default_type);
    if !is_message_type(&kind_) {
        return Err(format!(
            "type {kind_:?} is not a MessageType (e.g. TEXT, CODE, FILE_URL, FUNCTION_CALL, IMAGE_URL)"
        ));
    }
    let stream_response = match o.get("streamResponse") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => return Err(format!("streamResponse must be a boolean, not {}", kind(v))),
    };
    let state = match o.get("state") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(v) => return Err(format!("state must be an object, not {}", kind(v))),
    };
    // A malformed mock override is refused up front, before anything is stored.
    let probe = crate::model::Script {
        text: String::new(),
        chunk_size: 1,
        chunks: None,
        first_chunk_delay_ms: 0,
        chunk_delay_ms: 0,
        seed: 0,
    };
    crate::script::effective(&probe, &state)?;
    let attachments = match o.get("attachments") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            for (i, a) in items.iter().enumerate() {
                let ok = a.as_object().is_some_and(|m| {
                    ["url", "pageUrl", "repositoryId", "content"]
                        .iter()
                        .any(|k| m.contains_key(*k))
                });
                if !ok {
                    return Err(format!(
                        "attachments[{i}] must be an object with url, pageUrl or repositoryId"
                    ));
                }
            }
            items.clone()
        }
        Some(v) => return Err(format!("attachments must be an array, not {}", kind(v))),
    };
    let response_url = string("responseUrl")?;
    if let Some(u) = &response_url
        && !(u.starts_with("http://") || u.starts_with("https://"))
    {
        return Err(format!("responseUrl {u:?} must be an absolute http(s) URL"));
    }
    let responded_to_id = string("respondedToId")?;
    if let Some(id) = &responded_to_id
        && !is_object_id(id)
    {
        return Err(format!("respondedToId {id:?} is not an id"));
    }
    let chat_key = string("chatKey")?.filter(|k| !k.is_empty());
    let recipients = match o.get("recipients") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            serde_json::from_value::<Vec<Participant>>(v.clone())
                .map_err(|e| format!("recipients must be [{{ \"id\": \"…\", \"type\": \"AGENT\" | \"USER\" | \"APP_INTEGRATION\" }}]: {e}"))?,
        ),
    };
    if let Some(r) = recipients.iter().flatten().find(|r| !is_object_id(&r.id)) {
        return Err(format!("recipient id {:?} is not an id", r.id));
    }
    let to =
        match (string("chatId")?, chat_key.clone(), recipients) {
            (Some(id), _, _) if !is_object_id(&id) => {
                return Err(format!(
                    "chatId {id:?} is not an id (24 lowercase hex characters)"
                ));
            }
            (Some(id), _, _) => Destination::Chat(id),
            (None, Some(key), Some(recipients)) => Destination::Key { key, recipients },
            (None, Some(_), None) => return Err(
                "chatKey needs recipients to create the chat: send chatId, or chatKey + recipients"
                    .into(),
            ),
            (None, None, Some(recipients)) if !recipients.is_empty() => {
                Destination::Recipients(recipients)
            }
            _ => return Err("chatId is required (or chatKey + recipients)".into()),
        };
    Ok((
        to,
        NewMessage {
            content,
            kind: kind_,
            attachments,
            stream_response,
            state,
            response_url,
            responded_to_id,
            chat_key,
        },
    ))
}

/// Resolves the destination and persists the message as the caller.
pub fn send(
    app: &Arc<App>,
    caller: &Caller,
    to: Destination,
    new: NewMessage,
) -> Result<(Message, Chat), Refusal> {
    // A plugin instance speaks as its agent or app integration, within its scopes.
    if let Some(me) = &caller.acts_as {
        let prefix = if me.kind == crate::model::ParticipantType::Agent {
            "AGENT"
        } else {
            "APP_INTEGRATION"
        };
        let needed = format!("{prefix}_MESSAGE_WRITE");
        if !caller.may(&needed) {
            return Err(Refusal::Forbidden(format!(
                "This plugin instance lacks the {needed} scope: it cannot send messages as its {}",
                prefix.to_lowercase().replace('_', " ")
            )));
        }
        let chat_scope = format!("{prefix}_CHAT_WRITE");
        if !matches!(to, Destination::Chat(_)) && !caller.may(&chat_scope) {
            return Err(Refusal::Forbidden(format!(
                "This plugin instance lacks the {chat_scope} scope: it cannot create chats"
            )));
        }
    }
    let (chat, joined) = app.store.resolve_destination(caller, to)?;
    crate::plugins::joined(app, &chat, &joined);
    let sender = caller
        .as_participant()
        .map_or_else(|| caller.entity.id.clone(), |p| p.id);
    app.store.persist(&chat.id, Some(&sender), new, None, None)
}

/// Broadcasts a persisted message to its room: `message`, then the relayed
/// `CHAT_MESSAGE_ADDED`.
pub async fn announce(app: &App, chat: &Chat, message: &Message) {
    announce_except(app, chat, message, None).await;
}

/// [`announce`], skipping one socket (the `no-echo-to-sender` fault).
pub async fn announce_except(
    app: &App,
    chat: &Chat,
    message: &Message,
    except: Option<socketioxide::socket::Sid>,
) {
    if !app.faults.on(Some(&chat.id), FaultKind::NoBroadcast) {
        app.rooms
            .emit_except(&chat.id, "message", message, except)
            .await;
    }
    lifecycle_message_added(app, chat, message).await;
}

pub async fn lifecycle_message_added(app: &App, chat: &Chat, message: &Message) {
    crate::plugins::message_added(app, chat, message);
    relay_lifecycle(
        app,
        &chat.id,
        &json!({ "name": "CHAT_MESSAGE_ADDED", "chat": chat, "message": message }),
    )
    .await;
}

/// Relays a `CHAT_*` lifecycle event (`{name, chat, …}`) to the chat's room
/// under its own name (decisions.md 19).
pub async fn relay_lifecycle(app: &App, chat_id: &str, event: &serde_json::Value) {
    if app.faults.on(Some(chat_id), FaultKind::NoLifecycleEvents) {
        return;
    }
    let name = event["name"].as_str().unwrap_or("CHAT_EVENT");
    app.rooms.emit(chat_id, name, event).await;
}

/// Starts the scripted agents' replies to a message.
pub fn start_replies(app: &Arc<App>, caller: &Caller, message: &Message) {
    for responder in app.store.responders(&message.chat_id, caller) {
        let script = match crate::script::effective(&responder.script, &message.state) {
            Ok(s) => s,
            Err(e) => {
                // parse_send already refused malformed overrides; this is defensive.
                tracing::warn!(error = %e, "mock override ignored");
                responder.script.clone()
            }
        };
        let plan = crate::script::plan(&script, &message.content, &responder.agent.name);
        app.tasks.spawn_on(
            stream::play_reply(app.clone(), responder, message.clone(), plan),
            &app.realtime,
        );
    }
}
