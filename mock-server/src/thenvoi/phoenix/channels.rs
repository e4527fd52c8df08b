//! Which socket may join which topic (docs/THENVOI.md T15, T16).
//!
//! A topic is `family:id`. Room families need the socket's entity to take
//! part in the room; own-channel families need the id to be the socket's
//! own and the entity of the right kind. `agent_control:{agent_id}` is the
//! Band SDK's control channel (an agent's own; nothing is pushed on it).

use crate::core::Core;
use crate::core::thenvoi::Principal;
use crate::model::thenvoi::{Kind, is_uuid};

/// The answer to a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    Ok,
    /// Refused by the channel's rules: `{reason: "unauthorized"}`.
    Unauthorized,
    /// No such topic family: `{reason: "unmatched topic"}`.
    Unmatched,
}

/// Decides a join of `topic` by `who` (the `thenvoi-join-any-room` fault
/// accepts every join of a known family).
pub fn join(core: &Core, who: &Principal, topic: &str) -> Join {
    let unmatched = || {
        if core.faults.thenvoi(None).unmatched_as_unauthorized.fire() {
            Join::Unauthorized
        } else {
            Join::Unmatched
        }
    };
    let Some((family, id)) = topic.split_once(':') else {
        return unmatched();
    };
    let own = |kind: Kind| who.kind == kind && who.id == id;
    let allowed = match family {
        "chat_room" | "room_participants" => {
            is_uuid(id) && core.thenvoi.is_participant(id, &who.id)
        }
        "agent_rooms" | "agent_contacts" | "agent_control" => own(Kind::Agent),
        "user_rooms" | "user_contacts" | "tasks" => own(Kind::User),
        _ => return unmatched(),
    };
    if allowed || core.faults.thenvoi(room_of(topic)).join_any_room.fire() {
        Join::Ok
    } else {
        Join::Unauthorized
    }
}

/// The room a room topic belongs to (fault scope, journal).
pub fn room_of(topic: &str) -> Option<&str> {
    let (family, id) = topic.split_once(':')?;
    matches!(family, "chat_room" | "room_participants").then_some(id)
}
