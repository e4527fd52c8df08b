//! The task that plays a scripted reply into a chat's room.
//!
//! Pacing uses absolute deadlines (`start + first_delay + i * delay`), so a
//! slow tick does not push every later delta back. On shutdown the `hurry`
//! token fires: remaining deltas go out without waiting and the stream still
//! ends with its `message:done`, so no client is left with a half stream.

use std::sync::Arc;

use serde::Serialize;
use tokio::time::Instant;

use crate::App;
use crate::model::{Message, Participant, ParticipantType};
use crate::script::Plan;
use crate::store::{NewMessage, Responder};

/// `message:delta` as the docs list it: `{chatId, streamId, messageId,
/// contentDelta, content, message}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Delta<'a> {
    chat_id: &'a str,
    stream_id: &'a str,
    message_id: &'a str,
    content_delta: &'a str,
    content: &'a str,
    message: &'a Message,
}

/// Plays `plan` as `responder`'s reply to `trigger`: one `message`, or a
/// stream of deltas closed by `message:done` when the trigger asked for one.
pub async fn play_reply(app: Arc<App>, responder: Responder, trigger: Message, plan: Plan) {
    let chat_id = trigger.chat_id.clone();
    let sender = Participant {
        id: responder.agent.id.clone(),
        kind: ParticipantType::Agent,
    };
    let hurry = app.hurry.clone();
    let start = Instant::now();
    let wait_until = |at: Instant| {
        let hurry = hurry.clone();
        async move {
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {}
                _ = hurry.cancelled() => {}
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
        wait_until(start + plan.first_delay).await;
        match app
            .store
            .persist(&chat_id, Some(&sender.id), reply, None, None)
        {
            Ok((message, chat)) => crate::realtime::announce(&app, &chat, &message).await,
            Err(e) => tracing::debug!(chat_id, reason = e.message(), "reply dropped: chat is gone"),
        }
        return;
    }

    let stream_id = app.store.ids.next();
    let message_id = app.store.ids.next();
    let now = crate::store::now_iso();
    let mut message = Message {
        id: message_id.clone(),
        content: String::new(),
        content_delta: None,
        chat_id: chat_id.clone(),
        chat_key: trigger.chat_key.clone(),
        instructions: Vec::new(),
        is_streaming: true,
        notes: Vec::new(),
        responded_to_id: Some(trigger.id.clone()),
        response_url: None,
        sender_id: Some(sender.id.clone()),
        state: Default::default(),
        stream_id: Some(stream_id.clone()),
        stream_response: false,
        kind: "TEXT".into(),
        created_at: now.clone(),
        updated_at: now,
        attachments: Vec::new(),
        citations: Vec::new(),
    };
    for (i, chunk) in plan.chunks.iter().enumerate() {
        wait_until(start + plan.first_delay + plan.delay * i as u32).await;
        if plan.delay.is_zero() && i % 64 == 63 {
            // Let socket writers drain between bursts of an unpaced stream.
            tokio::task::yield_now().await;
        }
        message.content.push_str(chunk);
        message.content_delta = Some(chunk.clone());
        let delta = Delta {
            chat_id: &chat_id,
            stream_id: &stream_id,
            message_id: &message_id,
            content_delta: chunk,
            content: &message.content,
            message: &message,
        };
        app.rooms.emit(&chat_id, "message:delta", &delta).await;
    }
    match app.store.persist(
        &chat_id,
        Some(&sender.id),
        reply,
        Some(message_id),
        Some(stream_id),
    ) {
        Ok((done, chat)) => {
            app.rooms.emit(&chat_id, "message:done", &done).await;
            crate::realtime::lifecycle_message_added(&app, &chat, &done).await;
        }
        Err(e) => tracing::debug!(
            chat_id,
            reason = e.message(),
            "stream end dropped: chat is gone"
        ),
    }
}
