//! The Thenvoi (Band) profile's objects, as the mock stores and sends them.
//!
//! Thenvoi speaks snake_case with uuid ids (docs/THENVOI.md T24), unlike
//! ProteusAI's camelCase objects in [`crate::model`]; the two profiles share
//! the mock's machinery (journal, faults, connections, reset) but not their
//! objects, so each keeps the exact shape its clients parse. Field order and
//! omissions follow the documented payloads: `sender_name` is omitted, never
//! null, in a push (T25); `role`/`status` are omitted when null (T27).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub type Id = String;

/// Who sent a message or takes part in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    User,
    Agent,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::User => "User",
            Kind::Agent => "Agent",
        }
    }
}

/// How a scripted peer agent of the world behaves (mock only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeerScript {
    /// Claims a mention, replies `echo: <content>` mentioning the sender,
    /// marks it processed.
    Echo,
    /// Like `echo`, but its first attempt at each message fails
    /// (`/failed`) and a second attempt succeeds.
    FailFirst,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub id: Id,
    pub name: String,
    #[serde(default)]
    pub handle: Option<String>,
    /// The user's API key (`X-API-Key`, or `api_key=` on the socket).
    pub api_key: String,
    /// A token accepted as the socket's `token=` parameter.
    #[serde(default)]
    pub token: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Agent {
    pub id: Id,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub handle: Option<String>,
    pub owner_id: Id,
    pub api_key: String,
    #[serde(default)]
    pub is_external: bool,
    #[serde(default)]
    pub inserted_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<PeerScript>,
}

/// A chat room (T37).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Room {
    pub id: Id,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub task_id: Option<Id>,
    pub inserted_at: String,
    pub updated_at: String,
}

/// A participant of a room and its role (T36).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Member {
    pub id: Id,
    #[serde(rename = "type")]
    pub kind: Kind,
    #[serde(default = "Member::default_role")]
    pub role: String,
}

impl Member {
    fn default_role() -> String {
        "member".into()
    }
}

/// One mention of a message (`{id, name}`; `handle` when the sender gave one).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Mention {
    pub id: Id,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
}

/// One recipient in the answer to a sent message (T34): who was mentioned,
/// as the room knows them.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Recipient {
    pub id: Id,
    pub handle: Option<String>,
    pub name: String,
}

/// The `message_created` payload (T25), keys in the documented order.
#[derive(Debug, Serialize)]
pub struct Created<'a> {
    id: &'a str,
    content: &'a str,
    sender_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sender_name: Option<&'a str>,
    sender_type: &'static str,
    message_type: &'a str,
    metadata: CreatedMetadata<'a>,
    inserted_at: &'a str,
    updated_at: &'a str,
}

#[derive(Debug, Serialize)]
struct CreatedMetadata<'a> {
    mentions: &'a [Mention],
}

/// A stored message or event of a room.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    pub id: Id,
    pub chat_room_id: Id,
    pub content: String,
    /// `text`, or an event type (`tool_call`, `thought`, …; T35).
    pub message_type: String,
    pub sender_id: Id,
    pub sender_type: Kind,
    #[serde(default)]
    pub sender_name: Option<String>,
    #[serde(default)]
    pub mentions: Vec<Mention>,
    /// An event's own metadata (T35), kept as sent.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
    pub inserted_at: String,
    pub updated_at: String,
}

impl Message {
    /// The `message_created` payload (T25), borrowed from the message: it
    /// is serialized once per push straight to the wire's bytes.
    pub fn created(&self) -> Created<'_> {
        Created {
            id: &self.id,
            content: &self.content,
            sender_id: &self.sender_id,
            sender_name: self.sender_name.as_deref(),
            sender_type: self.sender_type.as_str(),
            message_type: &self.message_type,
            metadata: CreatedMetadata {
                mentions: &self.mentions,
            },
            inserted_at: &self.inserted_at,
            updated_at: &self.updated_at,
        }
    }

    /// [`Message::created`] as a JSON value (faults that rewrite it).
    pub fn created_payload(&self) -> Value {
        serde_json::to_value(self.created()).unwrap_or_default()
    }

    /// The message as the REST APIs return it (T46), with `record` (the
    /// caller's delivery record) in `metadata` when there is one.
    pub fn rest_object(&self, record: Option<(&str, &Delivery)>) -> Value {
        let mut metadata = self.extra.clone();
        metadata.insert("mentions".into(), serde_json::json!(self.mentions));
        if let Some((agent, r)) = record {
            if let Some(status) = r.status {
                metadata.insert("status".into(), status.as_str().into());
                // The Band SDK reads the caller's status here (SDK).
                metadata.insert(
                    "delivery_status".into(),
                    serde_json::json!({ agent: { "status": status.as_str() } }),
                );
            }
            metadata.insert("attempts".into(), serde_json::json!(r.attempts));
            metadata.insert(
                "processed_at".into(),
                r.processed_at.clone().map_or(Value::Null, Value::String),
            );
        }
        serde_json::json!({
            "id": self.id,
            "content": self.content,
            "message_type": self.message_type,
            "sender_id": self.sender_id,
            "sender_type": self.sender_type.as_str(),
            "sender_name": self.sender_name,
            "chat_room_id": self.chat_room_id,
            "metadata": metadata,
            "inserted_at": self.inserted_at,
            "updated_at": self.updated_at,
        })
    }
}

/// Where a message addressed to an agent stands for that agent (T40).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Delivered,
    Processing,
    Processed,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Delivered => "delivered",
            Status::Processing => "processing",
            Status::Processed => "processed",
            Status::Failed => "failed",
        }
    }
}

/// One processing attempt (T46).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Attempt {
    pub attempt_number: u32,
    /// `processing`, `success` or `failed`.
    pub status: String,
    pub started_at: String,
    pub completed_at: Option<String>,
    pub error: Option<String>,
}

/// An agent's delivery record of one message (T40).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Delivery {
    pub status: Option<Status>,
    pub attempts: Vec<Attempt>,
    pub processed_at: Option<String>,
}

/// A participant as `participant_added` and the participant lists show it
/// (T27, T36).
pub fn participant_object(member: &Member, user: Option<&User>, agent: Option<&Agent>) -> Value {
    match (member.kind, user, agent) {
        (Kind::Agent, _, Some(a)) => serde_json::json!({
            "id": a.id, "type": "Agent", "name": a.name, "description": a.description,
            "is_external": a.is_external, "handle": a.handle, "role": member.role, "status": "active",
        }),
        (_, Some(u), _) => serde_json::json!({
            "id": u.id, "type": "User", "name": u.name, "handle": u.handle,
            "role": member.role, "status": "active",
        }),
        _ => serde_json::json!({ "id": member.id, "type": member.kind.as_str(), "name": null }),
    }
}

/// The Thenvoi part of a world file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct World {
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(default)]
    pub agents: Vec<Agent>,
    #[serde(default)]
    pub rooms: Vec<WorldRoom>,
    #[serde(default)]
    pub messages: Vec<Message>,
}

impl World {
    /// Referential checks serde cannot do (the `(path, problem)` of the
    /// first failure, paths under `thenvoi.`).
    pub fn check(&self) -> Result<(), (String, String)> {
        use std::collections::HashSet;
        let mut ids = HashSet::new();
        let mut keys = HashSet::new();
        let mut id = |path: String, id: &str| -> Result<(), (String, String)> {
            if !is_uuid(id) {
                return Err((path, format!("{id:?} is not a lowercase uuid")));
            }
            if !ids.insert(id.to_string()) {
                return Err((path, format!("id {id} is used twice")));
            }
            Ok(())
        };
        for (i, u) in self.users.iter().enumerate() {
            id(format!("thenvoi.users[{i}].id"), &u.id)?;
        }
        for (i, a) in self.agents.iter().enumerate() {
            id(format!("thenvoi.agents[{i}].id"), &a.id)?;
        }
        for (i, r) in self.rooms.iter().enumerate() {
            id(format!("thenvoi.rooms[{i}].id"), &r.room.id)?;
        }
        for (i, m) in self.messages.iter().enumerate() {
            id(format!("thenvoi.messages[{i}].id"), &m.id)?;
        }
        let credentials = self.users.iter().map(|u| ("users", &u.api_key));
        for (i, (what, key)) in credentials
            .chain(self.agents.iter().map(|a| ("agents", &a.api_key)))
            .enumerate()
        {
            if key.is_empty() || !keys.insert(key.clone()) {
                return Err((
                    format!("thenvoi.{what}: key #{i}"),
                    format!("api_key {key:?} is empty or used twice"),
                ));
            }
        }
        let users: HashSet<&str> = self.users.iter().map(|u| u.id.as_str()).collect();
        let agents: HashSet<&str> = self.agents.iter().map(|a| a.id.as_str()).collect();
        let rooms: HashSet<&str> = self.rooms.iter().map(|r| r.room.id.as_str()).collect();
        let missing = |path: String, id: &str| (path, format!("{id} does not exist in this world"));
        for (i, a) in self.agents.iter().enumerate() {
            if !users.contains(a.owner_id.as_str()) {
                return Err(missing(
                    format!("thenvoi.agents[{i}].owner_id"),
                    &a.owner_id,
                ));
            }
        }
        for (i, r) in self.rooms.iter().enumerate() {
            for (j, m) in r.participants.iter().enumerate() {
                let known = match m.kind {
                    Kind::User => users.contains(m.id.as_str()),
                    Kind::Agent => agents.contains(m.id.as_str()),
                };
                if !known {
                    return Err(missing(
                        format!("thenvoi.rooms[{i}].participants[{j}].id"),
                        &m.id,
                    ));
                }
            }
        }
        for (i, m) in self.messages.iter().enumerate() {
            if !rooms.contains(m.chat_room_id.as_str()) {
                return Err(missing(
                    format!("thenvoi.messages[{i}].chat_room_id"),
                    &m.chat_room_id,
                ));
            }
        }
        Ok(())
    }
}

/// A room of the world with its participants.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorldRoom {
    #[serde(flatten)]
    pub room: Room,
    pub participants: Vec<Member>,
}

/// Whether `s` is a lowercase `8-4-4-4-12` uuid (T16, T24).
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(c),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_lowercase_with_dashes_in_place() {
        assert!(is_uuid("8c0e2b7d-6a41-4e9b-b3f5-91d2c7a04e6f"));
        assert!(!is_uuid("8C0E2B7D-6A41-4E9B-B3F5-91D2C7A04E6F"));
        assert!(!is_uuid("8c0e2b7d6a414e9bb3f591d2c7a04e6f"));
        assert!(!is_uuid("8c0e2b7d-6a41-4e9b-b3f5-91d2c7a04e6"));
    }

    #[test]
    fn a_push_omits_an_unknown_sender_name() {
        let m = Message {
            id: "a".into(),
            chat_room_id: "r".into(),
            content: "hi".into(),
            message_type: "text".into(),
            sender_id: "s".into(),
            sender_type: Kind::User,
            sender_name: None,
            mentions: vec![],
            extra: Map::new(),
            inserted_at: "t".into(),
            updated_at: "t".into(),
        };
        assert!(m.created_payload().get("sender_name").is_none());
        assert!(m.rest_object(None)["sender_name"].is_null());
    }

    #[test]
    fn a_push_payload_has_the_documented_keys_in_order() {
        let m = Message {
            id: "m1".into(),
            chat_room_id: "r".into(),
            content: "hi \"there\"".into(),
            message_type: "text".into(),
            sender_id: "s".into(),
            sender_type: Kind::Agent,
            sender_name: Some("Ada".into()),
            mentions: vec![Mention {
                id: "a1".into(),
                name: Some("Bot".into()),
                handle: None,
            }],
            extra: Map::new(),
            inserted_at: "t0".into(),
            updated_at: "t1".into(),
        };
        let wire = serde_json::to_string(&m.created()).unwrap();
        assert_eq!(
            wire,
            r#"{"id":"m1","content":"hi \"there\"","sender_id":"s","sender_name":"Ada","sender_type":"Agent","message_type":"text","metadata":{"mentions":[{"id":"a1","name":"Bot"}]},"inserted_at":"t0","updated_at":"t1"}"#
        );
        assert_eq!(
            m.created_payload(),
            serde_json::from_str::<Value>(&wire).unwrap()
        );
    }
}
