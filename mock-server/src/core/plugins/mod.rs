//! Plugin events: which event goes to which instances, with the payloads of
//! the ProteusAI Events page, and their delivery to webhooks.
//!
//! - `AGENT_MESSAGE_RECEIVED` / `APP_INTEGRATION_MESSAGE_RECEIVED`: a message
//!   persisted in a chat goes to the instances of every agent / app
//!   integration in it, except the sender's.
//! - `AGENT_CHAT_JOINED` / `APP_INTEGRATION_CHAT_JOINED`: only to the entity
//!   that joined. `CHAT_PARTICIPANT_JOINED`: to the instances of every other
//!   agent and app integration in the chat (the one that joined gets its own
//!   `*_CHAT_JOINED` instead; CHOSEN).
//! - `WEBHOOK_MESSAGE_RECEIVED`: a reply to a message that carried a
//!   `responseUrl` is POSTed there (ASYNC, with retries).
//! - Only instances subscribed to an event (their `events`) receive it.

pub mod dispatch;
pub mod outbound;

use serde_json::{Value, json};

use crate::core::Core;
use crate::model::{Chat, Message, Participant, ParticipantType, PluginInstance};

/// Sends one event to one instance's webhook, in the instance's mode.
pub fn deliver(
    core: &Core,
    instance: &PluginInstance,
    url: String,
    chat_id: Option<&str>,
    body: Value,
) {
    let target = dispatch::Target {
        url,
        instance_id: Some(instance.id.clone()),
        chat_id: chat_id.map(str::to_string),
        sync: instance.event_dispatch_mode == "SYNC",
    };
    core.dispatcher
        .send(core.journal.clone(), core.epoch(), target, body);
}

/// The JSON of an entity for an event body (`agent`, `appIntegration`, `user`).
fn entity(core: &Core, p: &Participant) -> Option<(&'static str, Value)> {
    match p.kind {
        ParticipantType::Agent => core.store.agent_by_id(&p.id).map(|a| ("agent", json!(a))),
        ParticipantType::AppIntegration => core
            .store
            .app_integration(&p.id)
            .map(|a| ("appIntegration", json!(a))),
        ParticipantType::User => core.store.user(&p.id).map(|u| ("user", json!(u))),
    }
}

/// A message was persisted: tell the agents and app integrations in the chat,
/// and the `responseUrl` of the message it answers.
pub fn message_added(core: &Core, chat: &Chat, message: &Message) {
    let faults = core.faults.plugins(Some(&chat.id));
    let no_dispatch = faults.no_message_dispatch.fire();
    let swap = faults.dispatch_out_of_order.fire();
    for p in core.store.participants_of(&chat.id) {
        if no_dispatch {
            break;
        }
        if Some(&p.id) == message.sender_id.as_ref() {
            continue;
        }
        let event = match p.kind {
            ParticipantType::Agent => "AGENT_MESSAGE_RECEIVED",
            ParticipantType::AppIntegration => "APP_INTEGRATION_MESSAGE_RECEIVED",
            ParticipantType::User => continue,
        };
        for (inst, url) in core.store.subscribed(&p, event) {
            let Some((key, value)) = entity(core, &p) else {
                continue;
            };
            let body =
                json!({ "name": event, key: value, "message": message, "pluginInstance": inst });
            if swap {
                // The fault: hold every first event of a pair until the second has gone.
                let mut held = core
                    .dispatcher
                    .held
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                match held.remove(&inst.id) {
                    None => {
                        held.insert(inst.id.clone(), (url, chat.id.clone(), body));
                    }
                    Some((first_url, first_chat, first)) => {
                        drop(held);
                        deliver(core, &inst, url, Some(&chat.id), body);
                        deliver(core, &inst, first_url, Some(&first_chat), first);
                    }
                }
                continue;
            }
            deliver(core, &inst, url, Some(&chat.id), body);
        }
    }
    let original = message
        .responded_to_id
        .as_deref()
        .and_then(|id| core.store.message(id));
    if let Some(url) = original.and_then(|m| m.response_url) {
        let target = dispatch::Target {
            url,
            instance_id: None,
            chat_id: Some(chat.id.clone()),
            sync: false,
        };
        core.dispatcher.send(
            core.journal.clone(),
            core.epoch(),
            target,
            json!({ "name": "WEBHOOK_MESSAGE_RECEIVED", "message": message }),
        );
    }
}

/// Participants joined a chat.
pub fn joined(core: &Core, chat: &Chat, joined: &[Participant]) {
    if joined.is_empty() {
        return;
    }
    let everyone = core.store.participants_of(&chat.id);
    for j in joined {
        let Some((key, value)) = entity(core, j) else {
            continue;
        };
        let own = match j.kind {
            ParticipantType::Agent => Some("AGENT_CHAT_JOINED"),
            ParticipantType::AppIntegration => Some("APP_INTEGRATION_CHAT_JOINED"),
            ParticipantType::User => None,
        };
        if let Some(event) = own {
            for (inst, url) in core.store.subscribed(j, event) {
                deliver(
                    core,
                    &inst,
                    url,
                    Some(&chat.id),
                    json!({ "name": event, key: value.clone(), "chat": chat, "pluginInstance": inst }),
                );
            }
        }
        for other in everyone
            .iter()
            .filter(|o| *o != j && o.kind != ParticipantType::User)
        {
            for (inst, url) in core.store.subscribed(other, "CHAT_PARTICIPANT_JOINED") {
                let body = json!({ "name": "CHAT_PARTICIPANT_JOINED", "chat": chat, "participant": j, key: value.clone(), "pluginInstance": inst });
                deliver(core, &inst, url, Some(&chat.id), body);
            }
        }
    }
}

/// Sends `PLUGIN_INSTALLED` for every instance of the world, so a plugin
/// running before the mock learns its token (used with `--plugin-url`).
pub fn announce_installed(core: &Core) {
    for (inst, token, plugin) in core.store.installed() {
        let event = installed_event(core, &inst, &token);
        deliver(core, &inst, plugin.webhook_url, None, event);
    }
}

/// The `PLUGIN_INSTALLED` body (the Events page): the instance, its token record and
/// the agent or app integration it was installed on.
pub fn installed_event(
    core: &Core,
    inst: &PluginInstance,
    token: &crate::world::TokenRecord,
) -> Value {
    let token_object = json!({
        "id": core.store.ids.next(), "createdAt": inst.created_at, "entityId": inst.id, "entityType": "PLUGIN_INSTANCE",
        "expires": null, "name": token.name, "orgId": inst.org_id, "pluginInstanceId": inst.id, "scopes": token.scopes,
        "updatedAt": inst.updated_at, "userId": null, "token": token.token
    });
    let mut event =
        json!({ "name": "PLUGIN_INSTALLED", "pluginInstance": inst, "token": token_object });
    let (key, entity) = match inst.acts_as().kind {
        ParticipantType::Agent => (
            "agent",
            core.store.agent_by_id(&inst.entity_id).map(|a| json!(a)),
        ),
        _ => (
            "appIntegration",
            core.store
                .app_integration(&inst.entity_id)
                .map(|a| json!(a)),
        ),
    };
    if let Some(entity) = entity {
        event[key] = entity;
    }
    event
}
