//! Streamed replies posted by plugins (decisions.md 24): chunks
//! `{chatId, respondedToId, streamId, contentDelta, isStreaming: true}` to
//! `POST /api/messages`, closed by one with `isStreaming: false`. Each chunk
//! becomes a `message:delta` in the room; the close persists the message and
//! becomes `message:done` (and `WEBHOOK_MESSAGE_RECEIVED` for a `responseUrl`).
//!
//! Refused with a clear 4xx, never touching another stream: a malformed chunk
//! (400), a chunk for a stream another instance owns (403), a chunk naming
//! another chat than its stream's (400), a chunk after the close (409), a
//! close for a stream that never had a chunk (400).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use crate::App;
use crate::model::{Message, is_object_id};
use crate::rest::ApiError;
use crate::store::{Caller, NewMessage};

/// Open streams kept at most (and as many recently closed ones, to refuse late chunks).
const MAX_STREAMS: usize = 10_000;

#[derive(Debug)]
struct Open {
    owner: String,
    message: Message,
    deltas: usize,
}

#[derive(Debug, Default)]
pub struct PluginStreams {
    open: Mutex<HashMap<String, Open>>,
    closed: Mutex<VecDeque<String>>,
}

fn field<'a>(o: &'a Map<String, Value>, k: &str) -> Result<&'a str, ApiError> {
    o.get(k).and_then(Value::as_str).ok_or_else(|| {
        ApiError::bad_request(format!("{k} is required (a string) in a streamed chunk"))
    })
}

impl PluginStreams {
    /// Streams opened by plugins and not closed yet.
    pub fn open_count(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn clear(&self) {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.closed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    fn was_closed(&self, id: &str) -> bool {
        self.closed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|c| c == id)
    }

    fn close(&self, id: String) {
        let mut closed = self.closed.lock().unwrap_or_else(|p| p.into_inner());
        if closed.len() == MAX_STREAMS {
            closed.pop_front();
        }
        closed.push_back(id);
    }
}

/// Handles one chunk; returns the status and the message as it stands.
pub async fn chunk(
    app: &App,
    caller: &Caller,
    o: &Map<String, Value>,
) -> Result<(StatusCode, Value), ApiError> {
    let me = caller.acts_as.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "Streamed chunks come from plugin instances: use the inst- token from PLUGIN_INSTALLED",
        )
    })?;
    let chat_id = field(o, "chatId")?.to_string();
    let responded_to = field(o, "respondedToId")?.to_string();
    let stream_id = field(o, "streamId")?.to_string();
    if !is_object_id(&chat_id) || !is_object_id(&responded_to) {
        return Err(ApiError::bad_request(
            "chatId and respondedToId must be ids (24 lowercase hex characters)",
        ));
    }
    if stream_id.is_empty() || stream_id.len() > 128 {
        return Err(ApiError::bad_request(
            "streamId must be 1 to 128 characters",
        ));
    }
    let streaming = o
        .get("isStreaming")
        .and_then(Value::as_bool)
        .ok_or_else(|| ApiError::bad_request("isStreaming is required (a boolean)"))?;
    let delta = match o.get("contentDelta") {
        Some(Value::String(d)) => Some(d.clone()),
        None | Some(Value::Null) if !streaming => None,
        _ => {
            return Err(ApiError::bad_request(
                "contentDelta is required (a string) while isStreaming is true",
            ));
        }
    };
    let chat = app.store.chat(caller, &chat_id)?;
    if app
        .store
        .message(&responded_to)
        .is_none_or(|m| m.chat_id != chat_id)
    {
        return Err(ApiError::bad_request(format!(
            "respondedToId {responded_to} is not a message of chat {chat_id}"
        )));
    }
    let streams = &app.plugin_streams;
    if streams.was_closed(&stream_id) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "Stream {stream_id} is already finished: no chunk after the one with isStreaming: false"
            ),
        ));
    }
    // Every lock is taken and released in this block: nothing is held across an await.
    let step = {
        let mut open = streams.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = open.get(&stream_id) {
            if s.owner != caller.entity.id {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!("Stream {stream_id} belongs to another plugin instance"),
                ));
            }
            if s.message.chat_id != chat_id {
                return Err(ApiError::bad_request(format!(
                    "Stream {stream_id} belongs to chat {}, not {chat_id}",
                    s.message.chat_id
                )));
            }
        } else if !streaming {
            return Err(ApiError::bad_request(format!(
                "Stream {stream_id} has no chunk: send chunks with isStreaming: true before closing it"
            )));
        } else if open.len() >= MAX_STREAMS {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many open streams: close some first",
            ));
        } else {
            let now = crate::store::now_iso();
            let message = Message {
                id: app.store.ids.next(),
                content: String::new(),
                content_delta: None,
                chat_id: chat_id.clone(),
                chat_key: chat.key.clone(),
                instructions: Vec::new(),
                is_streaming: true,
                notes: Vec::new(),
                responded_to_id: Some(responded_to.clone()),
                response_url: None,
                sender_id: Some(me.id.clone()),
                state: Map::new(),
                stream_id: Some(stream_id.clone()),
                stream_response: false,
                kind: o
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("TEXT")
                    .to_string(),
                created_at: now.clone(),
                updated_at: now,
                attachments: Vec::new(),
                citations: Vec::new(),
            };
            open.insert(
                stream_id.clone(),
                Open {
                    owner: caller.entity.id.clone(),
                    message,
                    deltas: 0,
                },
            );
        }
        if streaming {
            let s = open.get_mut(&stream_id).expect("inserted or checked above");
            let d = delta.unwrap_or_default();
            s.deltas += 1;
            s.message.content.push_str(&d);
            s.message.content_delta = Some(d.clone());
            Ok((
                s.deltas,
                json!({ "chatId": chat_id, "streamId": stream_id, "messageId": s.message.id, "contentDelta": d, "content": s.message.content, "message": s.message }),
            ))
        } else {
            Err(open.remove(&stream_id).expect("checked above"))
        }
    };
    let s = match step {
        Ok((n, payload)) => {
            app.rooms
                .emit_tagged(
                    &chat_id,
                    "message:delta",
                    &payload,
                    None,
                    Some((&stream_id, Some(n))),
                )
                .await;
            return Ok((StatusCode::OK, payload["message"].clone()));
        }
        Err(closing) => closing,
    };
    streams.close(stream_id.clone());
    let new = NewMessage {
        content: s.message.content.clone(),
        kind: s.message.kind.clone(),
        responded_to_id: Some(responded_to),
        ..Default::default()
    };
    let (done, chat) = app.store.persist(
        &chat_id,
        Some(&me.id),
        new,
        Some(s.message.id.clone()),
        Some(stream_id.clone()),
    )?;
    app.rooms
        .emit_tagged(
            &chat_id,
            "message:done",
            &done,
            None,
            Some((&stream_id, None)),
        )
        .await;
    crate::realtime::lifecycle_message_added(app, &chat, &done).await;
    Ok((StatusCode::CREATED, json!(done)))
}
