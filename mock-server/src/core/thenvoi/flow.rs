//! What happens around a change of the Thenvoi state: the pushes it causes,
//! in the documented order, and who gets them.
//!
//! Transports call these, never [`super::Rooms`]'s writers directly, so that a
//! message sent over REST by a user, by an agent or by a scripted peer is
//! routed by the same mention rule (T17-T19), and membership changes push
//! the same events in the same order (T22). Pushes are written before the
//! caller answers (T52). The faults of the `thenvoi-*` rows are read here
//! and in the transports, never in [`super::Rooms`] beyond the flags it is
//! given.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::messages::{Addressee, Claim, ClaimRules, MentionIn, Mentions, addressed};
use super::{AddRules, Principal, now, room_object};
use crate::core::Core;
use crate::core::error::Refusal;
use crate::core::outbox::{self, Audience, Channel, Push};
use crate::model::thenvoi::{Kind, Member, Message, Recipient, Room, Status};

/// A text message enters a room (T34): stored, pushed to the room's
/// users and mentioned agents, delivery marked, scripted peers started.
pub fn send(
    core: &Arc<Core>,
    caller: &Principal,
    room: &str,
    content: &str,
    mentions: Vec<MentionIn>,
) -> Result<(Message, Vec<Recipient>), Refusal> {
    let faults = core.faults.thenvoi(Some(room));
    let lenient = Mentions {
        optional: mentions.is_empty() && faults.mention_optional.fire(),
        anyone: faults.mention_anyone.is_on()
            && mentions
                .iter()
                .any(|m| !core.thenvoi.is_participant(room, &m.id))
            && faults.mention_anyone.fire(),
    };
    let (message, recipients) = core
        .thenvoi
        .send(caller, room, content, mentions, lenient)?;
    announce(core, &message);
    super::peers::react(core, &message);
    Ok((message, recipients))
}

/// A non-text event enters a room (T35): stored, pushed to nobody.
pub fn record_event(
    core: &Core,
    caller: &Principal,
    room: &str,
    content: &str,
    message_type: &str,
    metadata: Map<String, Value>,
) -> Result<Message, Refusal> {
    let message = core
        .thenvoi
        .record_event(caller, room, content, message_type, metadata)?;
    announce(core, &message);
    Ok(message)
}

/// Pushes `message_created` (T17-T19): users of the room get every text
/// message, agents only those addressed to them.
fn announce(core: &Core, message: &Message) {
    let room = &message.chat_room_id;
    let faults = core.faults.thenvoi(Some(room));
    if message.message_type != "text" && !faults.push_events.fire() {
        return;
    }
    let mut agents: Vec<String> = addressed(message).map(str::to_string).collect();
    if message.sender_type == Kind::Agent && faults.deliver_own.fire() {
        agents.push(message.sender_id.clone());
    }
    let audience = if faults.deliver_unmentioned.fire() {
        Audience::Everyone
    } else {
        Audience::UsersAnd(&agents)
    };
    let payload = if faults.camel_case.fire() {
        outbox::payload(&camel_case(message.created_payload()))
    } else {
        outbox::payload(&message.created())
    };
    let written = core.push(&Push {
        channel: Channel::Room(room),
        event: "message_created",
        payload: &payload,
        audience,
    });
    if !written.is_empty() {
        core.thenvoi.mark_delivered(room, &message.id, &written);
    }
}

/// A lifecycle call (T41-T44), with the faults that loosen it.
pub fn claim(
    core: &Core,
    agent: &Principal,
    room: &str,
    mid: &str,
    claim: Claim,
) -> Result<(Status, u32), Refusal> {
    let faults = core.faults.thenvoi(Some(room));
    let processing = matches!(claim, Claim::Processing);
    let mut rules = ClaimRules::default();
    match core.thenvoi.addressee(&agent.id, room, mid) {
        Addressee::NotAddressed if faults.claim_any_message.fire() => rules.any_message = true,
        Addressee::Addressed(status) if processing => {
            rules.keep_attempt =
                status == Some(Status::Processing) && faults.processing_keeps_attempt.fire();
            rules.from_zero = !rules.keep_attempt && faults.attempts_from_zero.fire();
        }
        _ => {}
    }
    if rules.any_message && processing {
        rules.from_zero = faults.attempts_from_zero.fire();
    }
    let lenient = !processing && faults.processed_without_attempt.is_on();
    let result = core.thenvoi.claim(&agent.id, room, mid, &claim, rules);
    match result {
        Err(Refusal::Invalid(_)) if lenient && faults.processed_without_attempt.fire() => {
            rules.without_attempt = true;
            core.thenvoi.claim(&agent.id, room, mid, &claim, rules)
        }
        other => other,
    }
}

/// A room created by `caller`, who gets `room_added` (T21).
pub fn create_room(
    core: &Core,
    caller: &Principal,
    task_id: Option<String>,
) -> Result<Room, Refusal> {
    let room = core.thenvoi.create_room(caller, task_id)?;
    own_channel_event(
        core,
        &room,
        caller.kind,
        &caller.id,
        "room_added",
        room_object(&room),
    );
    Ok(room)
}

/// Adds a participant: `participant_added` to the room, then `room_added`
/// to the newcomer (T22).
pub fn add_participant(
    core: &Core,
    caller: &Principal,
    room: &str,
    id: &str,
    role: &str,
) -> Result<Value, Refusal> {
    let faults = core.faults.thenvoi(Some(room));
    if caller.kind == Kind::User && core.thenvoi.is_user(id) && faults.users_add_only_agents.fire()
    {
        return Err(Refusal::Forbidden(
            "a user may add only agents to a chat".into(),
        ));
    }
    let mut lenient = AddRules::default();
    let (member, object) = loop {
        match core.thenvoi.add_member(caller, room, id, role, lenient) {
            Err(Refusal::Forbidden(_)) if !lenient.any_role && faults.any_role_adds.fire() => {
                lenient.any_role = true;
            }
            Err(Refusal::Invalid(_))
                if !lenient.duplicate_ok && faults.duplicate_participant_ok.fire() =>
            {
                // Answered as if added; nothing changed, so nothing is pushed.
                lenient.duplicate_ok = true;
                return core
                    .thenvoi
                    .add_member(caller, room, id, role, lenient)
                    .map(|(_, object)| object);
            }
            other => break other?,
        }
    };
    if !faults.no_participant_events.fire() {
        core.push(&Push {
            channel: Channel::RoomMembers(room),
            event: "participant_added",
            payload: &outbox::payload(&participant_added(&object)),
            audience: Audience::Everyone,
        });
    }
    if let Ok(r) = core.thenvoi.room(caller, room, true) {
        own_channel_event(
            core,
            &r,
            member.kind,
            &member.id,
            "room_added",
            room_object(&r),
        );
    }
    Ok(object)
}

/// Removes a participant: `participant_removed` to the room (the leaver
/// included), its room subscriptions end, then `room_removed` (T21, T22).
pub fn remove_participant(
    core: &Core,
    caller: &Principal,
    room: &str,
    id: &str,
) -> Result<Value, Refusal> {
    let r = core.thenvoi.room(caller, room, true)?;
    let faults = core.faults.thenvoi(Some(room));
    let (member, object) = match core.thenvoi.remove_member(caller, room, id) {
        // The room exists (above): the participant is not in it.
        Err(Refusal::NotFound(m)) => match core.thenvoi.participant_of(id) {
            Some(object) if faults.remove_missing_200.fire() => return Ok(object),
            _ => return Err(Refusal::NotFound(m)),
        },
        other => other?,
    };
    if !faults.no_participant_events.fire() {
        core.push(&Push {
            channel: Channel::RoomMembers(room),
            event: "participant_removed",
            payload: &outbox::payload(
                &json!({ "id": member.id, "type": member.kind.as_str(), "name": object["name"] }),
            ),
            audience: Audience::Everyone,
        });
    }
    core.forget_room(room, Some(&member.id));
    let mut removed = room_object(&r);
    removed["status"] = "active".into();
    removed["type"] = "group".into();
    removed["removed_at"] = now().into();
    own_channel_event(core, &r, member.kind, &member.id, "room_removed", removed);
    Ok(object)
}

/// Deletes a room (mock only): `room_deleted`, then silence (T20).
pub fn delete_room(core: &Core, room: &str) -> Result<(Room, Vec<Member>), Refusal> {
    let deleted = core.thenvoi.delete_room(room)?;
    core.push(&Push {
        channel: Channel::RoomMembers(room),
        event: "room_deleted",
        payload: &outbox::payload(&json!({ "id": room })),
        audience: Audience::Everyone,
    });
    core.forget_room(room, None);
    Ok(deleted)
}

fn own_channel_event(
    core: &Core,
    room: &Room,
    kind: Kind,
    id: &str,
    event: &'static str,
    payload: Value,
) {
    if core.faults.thenvoi(Some(&room.id)).no_room_events.fire() {
        return;
    }
    let channel = match kind {
        Kind::Agent => Channel::AgentRooms(id),
        Kind::User => Channel::UserRooms(id),
    };
    core.push(&Push {
        channel,
        event,
        payload: &outbox::payload(&payload),
        audience: Audience::Everyone,
    });
}

/// `participant_added` omits null `role`/`status` (T27) and the lists'
/// extras; a user has no `description`/`is_external`.
fn participant_added(object: &Value) -> Value {
    let mut v = object.clone();
    if let Some(o) = v.as_object_mut() {
        o.retain(|k, x| !((k == "role" || k == "status" || k == "handle") && x.is_null()));
    }
    v
}

/// The `thenvoi-camel-case` fault: top-level keys in camelCase.
fn camel_case(v: Value) -> Value {
    let Value::Object(o) = v else { return v };
    o.into_iter()
        .map(|(k, x)| {
            let mut out = String::new();
            let mut upper = false;
            for c in k.chars() {
                if c == '_' {
                    upper = true;
                } else if upper {
                    out.extend(c.to_uppercase());
                    upper = false;
                } else {
                    out.push(c);
                }
            }
            (out, x)
        })
        .collect::<Map<String, Value>>()
        .into()
}
