//! The task that plays a scripted reply into a chat's room.
//!
//! Pacing uses absolute deadlines (`start + first_delay + i * delay`), so a
//! slow tick does not push every later delta back. On shutdown the `hurry`
//! token fires: remaining deltas go out without waiting and the stream still
//! ends with its `message:done`, so no client is left with a half stream.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::delta::{Delta, DeltaWriter};
use super::script::Plan;
use super::{Ending, emit_json, end_stream, opening};
use crate::core::outbox::{Emission, Kind, Payload};
use crate::core::store::{NewMessage, Responder};
use crate::core::{Core, events};
use crate::faults::StreamFaults;
use crate::model::{Message, Participant, ParticipantType};

/// Waits up to this long are plain sleeps (see `wait_until` in [`play_reply`]).
const SHORT_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// Plays `plan` as `responder`'s reply to `trigger`: one `message`, or a
/// stream of deltas closed by `message:done` when the trigger asked for one.
pub async fn play_reply(core: Arc<Core>, responder: Responder, trigger: Message, plan: Plan) {
    let chat_id = trigger.chat_id.clone();
    let sender = Participant {
        id: responder.agent.id.clone(),
        kind: ParticipantType::Agent,
    };
    // Read before the token: a reset in between then stops this reply
    // rather than letting it run on into the fresh state.
    let generation = core.generation();
    let hurry = core.hurry.clone();
    let abort = core.epoch();
    let start = Instant::now();
    let reset_since = || core.generation() != generation;
    // Waits for a deadline; true when a reset stopped this reply.
    let wait_until = |at: Instant| {
        let (core, hurry, abort) = (&core, &hurry, &abort);
        async move {
            if reset_since() {
                return true;
            }
            // A deadline already passed (the first delta of an unpaced
            // stream, a late tick) goes now: tokio's timer would round it up
            // to the next millisecond tick.
            if core.hurried() || at <= Instant::now() {
                return false;
            }
            // A paced delta's short wait is a plain sleep with the atomic
            // checks after it (waiting on the tokens costs locks each time);
            // a reset or shutdown then takes effect within SHORT_WAIT.
            if at.saturating_duration_since(Instant::now()) <= SHORT_WAIT {
                tokio::time::sleep_until(at).await;
                return reset_since();
            }
            // A long wait (a first-delta delay, a stall) wakes on either.
            tokio::select! {
                _ = abort.cancelled() => true,
                _ = tokio::time::sleep_until(at) => false,
                _ = hurry.cancelled() => abort.is_cancelled(),
            }
        }
    };
    let reply = NewMessage {
        content: plan.text(),
        kind: "TEXT".into(),
        responded_to_id: Some(trigger.id.clone()),
        ..Default::default()
    };
    if !trigger.stream_response {
        if wait_until(start + plan.offset(0)).await {
            return;
        }
        match core
            .store
            .persist(&chat_id, Some(&sender.id), reply, None, None)
        {
            Ok((message, chat)) => events::announce(&core, &chat, &message, None).await,
            Err(e) => tracing::debug!(chat_id, reason = e.message(), "reply dropped: chat is gone"),
        }
        return;
    }

    let stream_id = core.store.ids.next();
    let message_id = core.store.ids.next();
    // Faults are read once, at the start of the stream.
    let faults = core
        .faults
        .stream(&chat_id, &responder.agent.id, &stream_id, plan.chunks.len());
    let message_id = if core.faults.chat(Some(&chat_id)).bad_message_ids.fire() {
        format!("msg_{message_id}")
    } else {
        message_id
    };
    let mut message = opening(
        message_id.clone(),
        &chat_id,
        trigger.chat_key.clone(),
        &sender.id,
        &trigger.id,
        &stream_id,
        "TEXT".into(),
    );
    message.is_streaming = !faults.delta_not_streaming;
    let others = core.in_flight.total().saturating_sub(1);
    let under_load = faults.per_load_delay.map_or(Duration::ZERO, |d| {
        d * u32::try_from(others).unwrap_or(u32::MAX)
    });
    let start = start + faults.first_delay.unwrap_or_default() + under_load;
    let mut writer = DeltaWriter::new(&chat_id, &stream_id, &message);
    let mut held: Option<(String, usize)> = None;
    let mut last_delta = String::new();
    for (i, chunk) in plan.chunks.iter().enumerate() {
        let n = i + 1;
        let mut at = start + plan.offset(i);
        if let Some((_, pause)) = faults.stall.filter(|(after, _)| n > *after) {
            at += pause;
        }
        if wait_until(at).await {
            return;
        }
        if plan.delay.is_zero() && i % 64 == 63 {
            // Let socket writers drain between bursts of an unpaced stream
            // (a reset may come meanwhile; `wait_until` checked before).
            tokio::task::yield_now().await;
            if reset_since() {
                return;
            }
        }
        message.content.push_str(chunk);
        message.content_delta = Some(chunk.clone());
        if faults.is_clean() {
            // The writer's bytes; serde's only if the writer could not be built.
            let raw = writer.as_mut().and_then(|w| w.next(chunk)).or_else(|| {
                serde_json::value::to_raw_value(&Delta {
                    chat_id: &chat_id,
                    stream_id: &stream_id,
                    message_id: &message_id,
                    content_delta: chunk,
                    content: &message.content,
                    message: &message,
                })
                .map_err(|e| tracing::error!(error = %e, "cannot serialize a delta (a bug)"))
                .ok()
            });
            if let Some(raw) = raw {
                core.emit(
                    Emission::new(&chat_id, Kind::Delta, Payload::Raw(&raw))
                        .stream(&stream_id, Some(n)),
                )
                .await;
            }
            continue;
        }
        let json = faulty_delta(
            &faults,
            n,
            &chat_id,
            &stream_id,
            &message_id,
            chunk,
            &mut message,
        );
        last_delta.clone_from(&json);
        if faults.drop.contains(&n) {
            continue;
        }
        if faults.reorder.contains(&n) && n < plan.chunks.len() && held.is_none() {
            held = Some((json, n));
            continue;
        }
        let this = Some((stream_id.as_str(), Some(n)));
        emit_json(&core, &chat_id, Kind::Delta, &json, this).await;
        if faults.duplicate.contains(&n) {
            emit_json(&core, &chat_id, Kind::Delta, &json, this).await;
        }
        if let Some((previous, m)) = held.take() {
            let that = Some((stream_id.as_str(), Some(m)));
            emit_json(&core, &chat_id, Kind::Delta, &previous, that).await;
        }
        if faults.disconnect_after == Some(n) {
            core.disconnect_room(&chat_id);
        }
    }
    let ending = Ending {
        content: reply.content,
        kind: reply.kind,
        responded_to_id: trigger.id.clone(),
        message_id,
        stream_id,
    };
    let late = (!last_delta.is_empty()).then_some((last_delta.as_str(), plan.chunks.len()));
    if let Err(e) = end_stream(&core, &chat_id, &sender.id, ending, &faults, late).await {
        tracing::debug!(
            chat_id,
            reason = e.message(),
            "stream end dropped: chat is gone"
        );
    }
}

/// Serializes delta `n` with the content or stream-id faults applied.
fn faulty_delta(
    f: &StreamFaults,
    n: usize,
    chat_id: &str,
    stream_id: &str,
    message_id: &str,
    chunk: &str,
    message: &mut Message,
) -> String {
    let other_id = format!("{stream_id}-other");
    let sid = if f.wrong_stream_id.contains(&n) {
        other_id.as_str()
    } else {
        stream_id
    };
    let bad = format!("{}#", message.content);
    message.stream_id = Some(sid.to_string());
    let content = if f.wrong_content.contains(&n) {
        bad.as_str()
    } else {
        message.content.as_str()
    };
    let delta = Delta {
        chat_id,
        stream_id: sid,
        message_id,
        content_delta: chunk,
        content,
        message,
    };
    let json = serde_json::to_string(&delta).unwrap_or_default();
    message.stream_id = Some(stream_id.to_string());
    json
}
