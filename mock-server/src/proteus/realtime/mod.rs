//! socket.io realtime: authentication, client events, broadcasts.
//!
//! One async fn per client event. Payloads are taken as raw JSON
//! (`TryData<Value>`) and validated here, because socketioxide silently skips
//! a handler whose typed `Data<T>` fails to parse, and the protocol promises
//! an error ack for every malformed payload (PROTOCOL.md R14).

pub mod held;
pub mod rooms;

use std::sync::Arc;

use serde_json::{Value, json};
use socketioxide::extract::{AckSender, Event, SocketRef, State, TryData};
use socketioxide::handler::FromMessageParts;
use socketioxide::socket::Socket;

use crate::core::messaging::{self, kind};
use crate::core::store::{Caller, Destination};
use crate::proteus::App;

use crate::journal::{Kind, Note};
use crate::model::is_object_id;

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

/// Journals a client event: what the client sent (its payload, whether it
/// asked for an ack) and the answer it got. Client conformance reads both
/// to judge what an SDK sends (docs/CLIENTS.md).
fn journal_in(
    app: &App,
    socket: &SocketRef,
    event: &str,
    sent: Sent<'_>,
    result: &Result<Value, String>,
) {
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
            detail: {
                let mut d =
                    json!({ "sid": socket.id.to_string(), "ack": ack, "wantsAck": sent.wants_ack });
                if let Some(p) = sent.payload {
                    let text = p.to_string();
                    if text.len() <= crate::journal::Sent::WHOLE {
                        d["payload"] = p.clone();
                    } else {
                        d["payloadPrefix"] = json!(crate::journal::prefix(&text));
                    }
                }
                d.into()
            },
            ..Note::default()
        },
    );
}

/// What a client sent with an event, as the journal records it.
#[derive(Clone, Copy)]
struct Sent<'a> {
    payload: Option<&'a Value>,
    /// Asked for by the client (before `--no-acks` is honoured).
    wants_ack: bool,
}

impl<'a> Sent<'a> {
    fn of<E>(payload: &'a Result<Value, E>, wants: &WantsAck) -> Self {
        Sent {
            payload: payload.as_ref().ok(),
            wants_ack: wants.0,
        }
    }
}

/// Answers a client event: `{data}` or `{error: {message}}` as its ack, or an
/// `error` event when the client sent no ack callback.
fn reply(
    app: &App,
    socket: &SocketRef,
    ack: AckSender,
    (wants_ack, sent): (WantsAck, Sent<'_>),
    event: &str,
    result: Result<Value, String>,
) {
    journal_in(app, socket, event, sent, &result);
    match (result, wants_ack.0) {
        (Ok(data), true) => {
            send_ack(app, socket, ack, &json!({ "data": data }));
        }
        (Ok(_), false) => {}
        (Err(message), true) => {
            tracing::debug!(sid = %socket.id, event, %message, "error ack");
            send_ack(
                app,
                socket,
                ack,
                &json!({ "error": { "message": message } }),
            );
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

/// Sends an ack. An ack is never dropped in silence: when the socket's
/// buffer is full (the client stopped reading) it cannot be queued, and the
/// socket is cut as a slow consumer, with the reason offered first; the
/// client sees a disconnect, never a missing ack on a live connection.
fn send_ack(app: &App, socket: &SocketRef, ack: AckSender, value: &Value) {
    use socketioxide::{SendError, SocketError};
    match ack.send(value) {
        Ok(()) | Err(SendError::Socket(SocketError::Closed)) => {}
        Err(SendError::Socket(SocketError::InternalChannelFull)) => {
            tracing::warn!(sid = %socket.id, "slow consumer: an ack did not fit its socket buffer");
            app.rooms
                .cut_slow_consumer(socket.clone(), rooms::Full::Ack);
        }
        Err(e) => tracing::error!(sid = %socket.id, error = %e, "cannot encode an ack (a bug)"),
    }
}

fn caller_of(socket: &SocketRef) -> Option<Caller> {
    socket.extensions.get::<Caller>()
}

/// The reset generation a socket connected in.
#[derive(Clone, Copy)]
struct Generation(u64);

/// When a socket connected (for the inspector's list of connections).
#[derive(Debug, Clone, Copy)]
pub struct ConnectedAt(pub std::time::SystemTime);

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
    // The reset that ends this socket also empties the journal: its
    // disconnect, which comes after, is not journaled (see on_disconnect).
    socket.extensions.insert(Generation(app.generation()));
    socket
        .extensions
        .insert(ConnectedAt(std::time::SystemTime::now()));
    socket.on("chat:join", on_join);
    socket.on("chat:leave", on_leave);
    socket.on("message:send", on_send);
    socket.on_fallback(on_unknown);
    socket.on_disconnect(
        |socket: SocketRef, State(app): State<Arc<App>>| async move {
            app.rooms.forget(socket.id);
            let connected_in = socket.extensions.get::<Generation>().map(|g| g.0);
            if connected_in != Some(app.generation()) {
                return;
            }
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
    let greeting = if app.faults.realtime(None).success_without_entity.fire() {
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

async fn on_join(
    socket: SocketRef,
    TryData(payload): TryData<Value>,
    ack: AckSender,
    wants: WantsAck,
    State(app): State<Arc<App>>,
) {
    let asked = Sent::of(&payload, &wants);
    let wants = honour_no_acks(&app, wants);
    let result = (|| {
        let caller = caller_of(&socket).ok_or("not authenticated")?;
        let chat_id = chat_id_of(&payload)?;
        if !app
            .faults
            .realtime(Some(&chat_id))
            .allow_non_participant_join
            .fire()
        {
            app.store
                .can_join(&caller, &chat_id)
                .map_err(|r| r.message().to_string())?;
        }
        app.rooms.join(&chat_id, &socket);
        Ok(join_ack_data(&app, &chat_id))
    })();
    reply(&app, &socket, ack, (wants, asked), "chat:join", result);
}

async fn on_leave(
    socket: SocketRef,
    TryData(payload): TryData<Value>,
    ack: AckSender,
    wants: WantsAck,
    State(app): State<Arc<App>>,
) {
    let asked = Sent::of(&payload, &wants);
    let wants = honour_no_acks(&app, wants);
    let result = chat_id_of(&payload).map(|chat_id| {
        if !app.faults.realtime(Some(&chat_id)).leave_keeps_room.fire() {
            app.rooms.leave(&chat_id, socket.id);
        }
        join_ack_data(&app, &chat_id)
    });
    reply(&app, &socket, ack, (wants, asked), "chat:leave", result);
}

/// `{chatId}`, or `{}` when the join-ack fault is on.
fn join_ack_data(app: &App, chat_id: &str) -> Value {
    if app
        .faults
        .realtime(Some(chat_id))
        .join_ack_without_chat_id
        .fire()
    {
        json!({})
    } else {
        json!({ "chatId": chat_id })
    }
}

async fn on_unknown(
    socket: SocketRef,
    Event(event): Event,
    TryData(payload): TryData<Value>,
    ack: AckSender,
    wants: WantsAck,
    State(app): State<Arc<App>>,
) {
    let asked = Sent::of(&payload, &wants);
    let wants = honour_no_acks(&app, wants);
    let result = Err(format!(
        "unknown event {event:?}: this server handles chat:join, chat:leave and message:send"
    ));
    reply(&app, &socket, ack, (wants, asked), &event, result);
}

async fn on_send(
    socket: SocketRef,
    TryData(payload): TryData<Value>,
    ack: AckSender,
    wants: WantsAck,
    State(app): State<Arc<App>>,
) {
    let asked = Sent::of(&payload, &wants);
    let wants = honour_no_acks(&app, wants);
    let Some(caller) = caller_of(&socket) else {
        return reply(
            &app,
            &socket,
            ack,
            (wants, asked),
            "message:send",
            Err("not authenticated".into()),
        );
    };
    // A plugin's streamed reply, chunk by chunk, as over POST /api/messages.
    if let Ok(Value::Object(o)) = &payload
        && o.contains_key("streamId")
    {
        use crate::core::replies::posted::{Chunked, chunk};
        let result = match chunk(&app.core, &caller, o).await {
            Ok(Chunked::Delta(message)) => {
                Ok(json!({ "message": message, "chatId": message["chatId"] }))
            }
            Ok(Chunked::Closed(message)) => {
                Ok(json!({ "chatId": message.chat_id, "message": message }))
            }
            Err(e) => Err(e.message().to_string()),
        };
        return reply(&app, &socket, ack, (wants, asked), "message:send", result);
    }
    let typeless = matches!(&payload, Ok(Value::Object(o)) if !o.contains_key("type"));
    let parsed = match &payload {
        Ok(Value::Object(o)) => messaging::parse_send(o),
        Ok(other) => Err(format!(
            "payload must be a message object, not {}",
            kind(other)
        )),
        Err(e) => Err(format!("payload is not valid JSON: {e}")),
    };
    let (mut to, new) = match parsed {
        Ok(p) => p,
        Err(e) => return reply(&app, &socket, ack, (wants, asked), "message:send", Err(e)),
    };
    if let Err(e) = messaging::check_response_url(&app.core, &new).await {
        return reply(&app, &socket, ack, (wants, asked), "message:send", Err(e));
    }
    if app.faults.chat(None).key_not_reused.fire()
        && let Destination::Key { recipients, .. } = to
    {
        to = Destination::Recipients(recipients);
    }
    let (message, chat, replies) = match messaging::send(&app.core, &caller, to, new) {
        Ok(sent) => sent,
        Err(r) => {
            return reply(
                &app,
                &socket,
                ack,
                (wants, asked),
                "message:send",
                Err(r.message().to_string()),
            );
        }
    };
    let faults = app.faults.realtime(Some(&chat.id));
    // Join before acking: the sender is in the room for the echo and every reply.
    if !faults.no_auto_join.fire() {
        app.rooms.join(&chat.id, &socket);
    }
    let late = faults.ack_late_ms.fire();
    let sid = socket.id.to_string();
    let except = faults.no_echo_to_sender.fire().then_some(sid.as_str());
    // Delivered once: before the ack under the ack-late fault, else after it.
    let mut replies = Some(replies);
    if let Some(ms) = late {
        let replies = replies.take().unwrap_or_default();
        messaging::deliver(&app.core, &caller, &chat, &message, replies, except).await;
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    journal_in(
        &app,
        &socket,
        "message:send",
        asked,
        &Ok(json!({ "chatId": chat.id, "messageId": message.id })),
    );
    if wants.0 {
        let mut data = json!({ "message": message, "chatId": chat.id });
        if typeless && faults.no_type_default.fire() {
            data["message"]["type"] = Value::Null;
        }
        if app.faults.chat(Some(&chat.id)).bad_message_ids.fire() {
            data["message"]["id"] = json!(format!("msg_{}", message.id));
        }
        send_ack(&app, &socket, ack, &json!({ "data": data }));
    }
    if let Some(replies) = replies {
        messaging::deliver(&app.core, &caller, &chat, &message, replies, except).await;
    }
}

/// The `no-acks` fault: behave as if the client asked for no ack.
fn honour_no_acks(app: &App, wants: WantsAck) -> WantsAck {
    WantsAck(wants.0 && !app.faults.realtime(None).no_acks.fire())
}
