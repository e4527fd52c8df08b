//! Streamed replies posted by plugins (PROTOCOL.md R24): chunks
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

use serde_json::{Map, Value, json};

use crate::core::Core;
use crate::core::Refusal;
use crate::core::outbox::{Emission, Kind, Payload};
use crate::core::replies::{self, Ending};
use crate::core::store::Caller;
use crate::faults::StreamFaults;
use crate::model::{Message, is_object_id};

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

fn field<'a>(o: &'a Map<String, Value>, k: &str) -> Result<&'a str, Refusal> {
    o.get(k)
        .and_then(Value::as_str)
        .ok_or_else(|| Refusal::Invalid(format!("{k} is required (a string) in a streamed chunk")))
}

/// What a chunk did.
#[derive(Debug)]
pub enum Chunked {
    /// A delta went out; the message as it stands (REST 200).
    Delta(Value),
    /// The stream closed; the stored message (REST 201).
    Closed(Box<Message>),
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

/// Handles one chunk.
pub async fn chunk(
    core: &Core,
    caller: &Caller,
    o: &Map<String, Value>,
) -> Result<Chunked, Refusal> {
    let me = caller.acts_as.clone().ok_or_else(|| {
        Refusal::Forbidden(
            "Streamed chunks come from plugin instances: use the inst- token from PLUGIN_INSTALLED"
                .into(),
        )
    })?;
    let chat_id = field(o, "chatId")?.to_string();
    let responded_to = field(o, "respondedToId")?.to_string();
    let stream_id = field(o, "streamId")?.to_string();
    if !is_object_id(&chat_id) || !is_object_id(&responded_to) {
        return Err(Refusal::Invalid(
            "chatId and respondedToId must be ids (24 lowercase hex characters)".into(),
        ));
    }
    if stream_id.is_empty() || stream_id.len() > 128 {
        return Err(Refusal::Invalid(
            "streamId must be 1 to 128 characters".into(),
        ));
    }
    let streaming = o
        .get("isStreaming")
        .and_then(Value::as_bool)
        .ok_or_else(|| Refusal::Invalid("isStreaming is required (a boolean)".into()))?;
    let delta = match o.get("contentDelta") {
        Some(Value::String(d)) => Some(d.clone()),
        None | Some(Value::Null) if !streaming => None,
        _ => {
            return Err(Refusal::Invalid(
                "contentDelta is required (a string) while isStreaming is true".into(),
            ));
        }
    };
    let chat = core.store.chat(caller, &chat_id)?;
    if core
        .store
        .message(&responded_to)
        .is_none_or(|m| m.chat_id != chat_id)
    {
        return Err(Refusal::Invalid(format!(
            "respondedToId {responded_to} is not a message of chat {chat_id}"
        )));
    }
    let streams = &core.plugin_streams;
    if streams.was_closed(&stream_id) {
        return Err(Refusal::Conflict(format!(
            "Stream {stream_id} is already finished: no chunk after the one with isStreaming: false"
        )));
    }
    // Every lock is taken and released in this block: nothing is held across an await.
    let step = {
        let mut open = streams.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = open.get(&stream_id) {
            if s.owner != caller.entity.id {
                return Err(Refusal::Forbidden(format!(
                    "Stream {stream_id} belongs to another plugin instance"
                )));
            }
            if s.message.chat_id != chat_id {
                return Err(Refusal::Invalid(format!(
                    "Stream {stream_id} belongs to chat {}, not {chat_id}",
                    s.message.chat_id
                )));
            }
        } else if !streaming {
            return Err(Refusal::Invalid(format!(
                "Stream {stream_id} has no chunk: send chunks with isStreaming: true before closing it"
            )));
        } else if open.len() >= MAX_STREAMS {
            return Err(Refusal::TooMany(
                "Too many open streams: close some first".into(),
            ));
        } else {
            let kind = o.get("type").and_then(Value::as_str).unwrap_or("TEXT");
            let message = replies::opening(
                core.store.ids.next(),
                &chat_id,
                chat.key.clone(),
                &me.id,
                &responded_to,
                &stream_id,
                kind.to_string(),
            );
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
            match serde_json::value::to_raw_value(&payload) {
                Ok(raw) => {
                    core.emit(
                        Emission::new(&chat_id, Kind::Delta, Payload::Raw(&raw))
                            .stream(&stream_id, Some(n)),
                    )
                    .await
                }
                Err(e) => tracing::error!(error = %e, "cannot serialize a plugin delta (a bug)"),
            }
            return Ok(Chunked::Delta(payload["message"].clone()));
        }
        Err(closing) => closing,
    };
    streams.close(stream_id.clone());
    let done = replies::end_stream(
        core,
        &chat_id,
        &me.id,
        Ending {
            content: s.message.content.clone(),
            kind: s.message.kind.clone(),
            responded_to_id: responded_to,
            message_id: s.message.id.clone(),
            stream_id: stream_id.clone(),
        },
        &StreamFaults::default(),
        None,
    )
    .await?;
    Ok(Chunked::Closed(Box::new(done)))
}
