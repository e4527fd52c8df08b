//! Scripted agents' replies, and the one place a streamed reply ends.
//!
//! - [`script`]: what an agent says and how it is cut into chunks
//!   (seeded: same seed, same stream).
//! - [`play`]: the task that paces a plan into deltas.
//! - [`delta`]: the delta payload, written byte for byte without serde on
//!   the hot path.
//! - [`posted`]: streamed replies a plugin posts chunk by chunk.
//!
//! A stream ends the same way whoever produced it (a scripted agent or a
//! plugin posting chunks): [`end_stream`] persists the message, emits
//! `message:done` and raises `CHAT_MESSAGE_ADDED` with the plugin events.

pub mod delta;
pub mod play;
pub mod posted;
pub mod script;

use std::sync::Arc;

use super::Core;
use super::outbox::{Emission, Kind, Payload};
use super::store::{Caller, NewMessage, Responder};
use super::{Refusal, events};
use crate::faults::StreamFaults;
use crate::model::Message;
use crate::model::Script;

/// Scripted replies in flight, per entity that triggered them, and the cap
/// (`--max-replies-per-entity`): a caller asking for more gets a 429 (an
/// error ack) before its message is stored, instead of the mock holding
/// replies without end.
#[derive(Debug)]
pub struct InFlight {
    per_entity: usize,
    by_entity: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

impl InFlight {
    pub fn new(per_entity: usize) -> Self {
        InFlight {
            per_entity,
            by_entity: std::sync::Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, usize>> {
        self.by_entity.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Refuses `more` replies for `entity` when they would pass the cap.
    pub fn check(&self, entity: &str, more: usize) -> Result<(), Refusal> {
        let now = self.lock().get(entity).copied().unwrap_or(0);
        if more > 0 && now + more > self.per_entity {
            return Err(Refusal::TooMany(format!(
                "{now} replies to your messages are still in flight (at most {} at once): wait for some to end, or start the mock with a higher --max-replies-per-entity",
                self.per_entity
            )));
        }
        Ok(())
    }

    /// Counts one reply for `entity` until the returned guard is dropped.
    fn enter(self: &Arc<Self>, entity: &str) -> Slot {
        *self.lock().entry(entity.to_string()).or_default() += 1;
        Slot {
            in_flight: self.clone(),
            entity: entity.to_string(),
        }
    }

    /// Replies in flight now, for every entity.
    pub fn total(&self) -> usize {
        self.lock().values().sum()
    }

    /// Forgets every count (on reset, once the replies stopped).
    pub fn clear(&self) {
        self.lock().clear();
    }
}

/// One reply in flight; counted down when the reply's task ends.
struct Slot {
    in_flight: Arc<InFlight>,
    entity: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut by = self.in_flight.lock();
        if let Some(n) = by.get_mut(&self.entity) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                by.remove(&self.entity);
            }
        }
    }
}

/// The scripted replies a message will start: worked out, and bounded,
/// before the message is stored, then started once it is announced.
#[derive(Debug, Default)]
pub struct Pending(Vec<(Responder, Script)>);

/// Which agents will answer `new` in `chat_id` and with which script (its
/// `state.mock` applied); refuses, before anything is stored, a message
/// whose replies would pass the per-entity cap or a reply's bounds.
pub fn prepare(
    core: &Core,
    chat_id: &str,
    caller: &Caller,
    new: &NewMessage,
) -> Result<Pending, Refusal> {
    let mut responders = core.store.responders(chat_id, caller);
    // A recorded reply to this text: only the agent that gave it answers.
    if let Some(recorded) = core.recorded(chat_id, &new.content)
        && responders.iter().any(|r| r.agent.id == recorded.agent_id)
    {
        responders.retain(|r| r.agent.id == recorded.agent_id);
    }
    core.in_flight.check(&caller.entity.id, responders.len())?;
    let mut pending = Vec::with_capacity(responders.len());
    for responder in responders {
        let script = script::effective(&responder.script, &new.state).map_err(Refusal::Invalid)?;
        script::check_bounds(&script, &new.content, &responder.agent.name)
            .map_err(Refusal::Invalid)?;
        pending.push((responder, script));
    }
    Ok(Pending(pending))
}

/// Starts the prepared replies to a stored message.
pub fn start(core: &Arc<Core>, caller: &Caller, message: &Message, pending: Pending) {
    for (responder, script) in pending.0 {
        let recorded = core.replay.get().and_then(|replay| {
            let next = replay.peek(&message.chat_id, &message.content)?;
            (next.agent_id == responder.agent.id)
                .then(|| replay.take(&message.chat_id, &message.content))
                .flatten()
                .map(|r| replay.plan(r))
        });
        let plan = recorded
            .unwrap_or_else(|| script::plan(&script, &message.content, &responder.agent.name));
        let slot = core.in_flight.enter(&caller.entity.id);
        let reply = play::play_reply(core.clone(), responder, message.clone(), plan);
        core.tasks.spawn_on(
            async move {
                reply.await;
                drop(slot);
            },
            &core.realtime,
        );
    }
}

/// The message a streamed reply builds up delta by delta: empty content,
/// `isStreaming: true`, whoever streams it (a scripted agent or a plugin).
pub fn opening(
    id: String,
    chat_id: &str,
    chat_key: Option<String>,
    sender_id: &str,
    responded_to_id: &str,
    stream_id: &str,
    kind: String,
) -> Message {
    let now = super::store::now_iso();
    Message {
        id,
        content: String::new(),
        content_delta: None,
        chat_id: chat_id.to_string(),
        chat_key,
        instructions: Vec::new(),
        is_streaming: true,
        notes: Vec::new(),
        responded_to_id: Some(responded_to_id.to_string()),
        response_url: None,
        sender_id: Some(sender_id.to_string()),
        state: Default::default(),
        stream_id: Some(stream_id.to_string()),
        stream_response: false,
        kind,
        created_at: now.clone(),
        updated_at: now,
        attachments: Vec::new(),
        citations: Vec::new(),
    }
}

/// A finished stream, as it is stored.
#[derive(Debug)]
pub struct Ending {
    pub content: String,
    pub kind: String,
    pub responded_to_id: String,
    /// The id its deltas carried: the stored message keeps it.
    pub message_id: String,
    pub stream_id: String,
}

/// Persists a finished stream as `sender`'s message, emits its
/// `message:done` (as the stream faults say) and raises the lifecycle and
/// plugin events. `late_delta` is sent after the done under the
/// `delta-after-done` fault. Fails when the chat is gone.
pub async fn end_stream(
    core: &Core,
    chat_id: &str,
    sender: &str,
    ending: Ending,
    faults: &StreamFaults,
    late_delta: Option<(&str, usize)>,
) -> Result<Message, Refusal> {
    let new = NewMessage {
        content: ending.content,
        kind: ending.kind,
        responded_to_id: Some(ending.responded_to_id),
        ..Default::default()
    };
    let stream_id = ending.stream_id;
    let (mut done, chat) = core.store.persist(
        chat_id,
        Some(sender),
        new,
        Some(ending.message_id),
        Some(stream_id.clone()),
    )?;
    if faults.done_still_streaming {
        done.is_streaming = true;
    }
    if faults.done_content_wrong {
        done.content.push_str(" (and more)");
    }
    let as_done = Emission::new(chat_id, Kind::Done, Payload::Message(&done));
    if faults.plain_message {
        core.emit(Emission::new(
            chat_id,
            Kind::Message,
            Payload::Message(&done),
        ))
        .await;
    }
    if !faults.omit_done {
        core.emit(as_done.stream(&stream_id, None)).await;
    }
    if faults.double_done {
        core.emit(as_done.stream(&stream_id, None)).await;
    }
    if faults.delta_after_done
        && let Some((json, n)) = late_delta
    {
        emit_json(
            core,
            chat_id,
            Kind::Delta,
            json,
            Some((&stream_id, Some(n))),
        )
        .await;
    }
    events::message_added(core, &chat, &done).await;
    Ok(done)
}

/// Emits pre-serialized JSON (the fault paths keep deltas to replay them),
/// with its stream and delta number for the journal.
pub(crate) async fn emit_json(
    core: &Core,
    chat_id: &str,
    kind: Kind,
    json: &str,
    stream: Option<(&str, Option<usize>)>,
) {
    match serde_json::value::RawValue::from_string(json.to_string()) {
        Ok(raw) => {
            let mut emission = Emission::new(chat_id, kind, Payload::Raw(&raw));
            emission.stream = stream;
            core.emit(emission).await
        }
        Err(e) => tracing::error!(error = %e, "fault path produced invalid JSON (a bug)"),
    }
}
