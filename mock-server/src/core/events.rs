//! The one place where lifecycle events and plugin dispatch are raised.
//!
//! Whatever entered the chat (a REST call, a socket.io event, a scripted
//! reply, a plugin's stream), the same function tells the plugins (webhooks)
//! and relays the `CHAT_*` event to the chat's audience, so the two can
//! never drift apart between code paths.

use serde_json::{Value, json};

use super::Core;
use super::outbox::{Emission, Kind, Payload};

use crate::model::{Chat, Message, Participant, ParticipantType, Repository};

/// A message was stored and announced: the plugins of the chat's agents
/// and app integrations hear of it, and the room gets `CHAT_MESSAGE_ADDED`.
pub async fn message_added(core: &Core, chat: &Chat, message: &Message) {
    super::plugins::message_added(core, chat, message);
    relay(
        core,
        &chat.id,
        &json!({ "name": "CHAT_MESSAGE_ADDED", "chat": chat, "message": message }),
    )
    .await;
}

/// Broadcasts a stored message to its chat (`message`), skipping the
/// connection `except` (the `no-echo-to-sender` fault), then raises
/// `CHAT_MESSAGE_ADDED` and the plugin events.
pub async fn announce(core: &Core, chat: &Chat, message: &Message, except: Option<&str>) {
    if !core.faults.chat(Some(&chat.id)).no_broadcast.fire() {
        core.emit(Emission::new(&chat.id, Kind::Message, Payload::Message(message)).except(except))
            .await;
    }
    message_added(core, chat, message).await;
}

/// Participants came in with a new chat (or a message that created one):
/// the plugins hear of it; no lifecycle event, the chat is new.
pub fn joined_new_chat(core: &Core, chat: &Chat, joined: &[Participant]) {
    super::plugins::joined(core, chat, joined);
}

/// A participant was added to an existing chat: the plugins hear of it and
/// the room gets `CHAT_PARTICIPANT_JOINED` with the participant's entity.
pub async fn participant_added(core: &Core, chat: &Chat, p: &Participant) {
    super::plugins::joined(core, chat, std::slice::from_ref(p));
    let mut event = json!({ "name": "CHAT_PARTICIPANT_JOINED", "chat": chat, "participant": p });
    let member = match p.kind {
        ParticipantType::Agent => core.store.agent_by_id(&p.id).map(|a| ("agent", json!(a))),
        ParticipantType::AppIntegration => core
            .store
            .app_integration(&p.id)
            .map(|a| ("appIntegration", json!(a))),
        ParticipantType::User => core.store.user(&p.id).map(|u| ("user", json!(u))),
    };
    if let Some((key, value)) = member {
        event[key] = value;
    }
    relay(core, &chat.id, &event).await;
}

/// The chat's title or state changed: `CHAT_STATE_UPDATED`.
pub async fn state_updated(core: &Core, chat: &Chat) {
    relay(
        core,
        &chat.id,
        &json!({ "name": "CHAT_STATE_UPDATED", "chat": chat }),
    )
    .await;
}

/// A repository was attached: `CHAT_REPOSITORY_ATTACHED`.
pub async fn repository_attached(core: &Core, chat: &Chat, repository: &Repository) {
    relay(
        core,
        &chat.id,
        &json!({ "name": "CHAT_REPOSITORY_ATTACHED", "chat": chat, "repository": repository }),
    )
    .await;
}

/// Relays a `CHAT_*` lifecycle event (`{name, chat, …}`) to the chat's
/// audience under its own name (PROTOCOL.md R19).
async fn relay(core: &Core, chat_id: &str, event: &Value) {
    if core.faults.chat(Some(chat_id)).no_lifecycle_events.fire() {
        return;
    }
    let Some(kind) = event["name"].as_str().and_then(Kind::lifecycle) else {
        tracing::error!(?event, "a lifecycle event without a known name (a bug)");
        return;
    };
    core.emit(Emission::new(chat_id, kind, Payload::Value(event)))
        .await;
}
