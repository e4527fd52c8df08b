//! The protocol's objects as the mock stores and sends them.
//!
//! Field names and null/empty defaults follow the documented examples exactly
//! (the Message glossary for Message, the Chats page for Chat, the Events page for the rest), so what
//! the mock emits validates against `schemas/` (its tests check that).

pub mod thenvoi;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub type Id = String;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash, Copy)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ParticipantType {
    Agent,
    AppIntegration,
    User,
}

impl ParticipantType {
    pub fn as_str(self) -> &'static str {
        match self {
            ParticipantType::Agent => "AGENT",
            ParticipantType::AppIntegration => "APP_INTEGRATION",
            ParticipantType::User => "USER",
        }
    }
}

/// A reference to a chat participant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct Participant {
    pub id: Id,
    #[serde(rename = "type")]
    pub kind: ParticipantType,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Copy)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EntityType {
    User,
    Agent,
    AppIntegration,
    PluginInstance,
}

/// The authenticated principal, as the realtime `success` event carries it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Entity {
    pub id: Id,
    #[serde(rename = "type")]
    pub kind: EntityType,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Org {
    pub id: Id,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: Id,
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: Option<String>,
    #[serde(default)]
    pub image: Option<String>,
    /// Organizations the user belongs to (mock bookkeeping, not sent).
    #[serde(default, skip_serializing)]
    pub org_ids: Vec<Id>,
}

/// How a scripted agent answers (see docs/PROTOCOL.md, "Mock-only surface").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Script {
    /// Reply template: `{{content}}`, `{{agentName}}`.
    pub text: String,
    #[serde(default = "Script::default_chunk_size")]
    pub chunk_size: usize,
    /// Exact number of deltas; the text is extended when too short.
    #[serde(default)]
    pub chunks: Option<usize>,
    #[serde(default)]
    pub first_chunk_delay_ms: u64,
    #[serde(default)]
    pub chunk_delay_ms: u64,
    /// Chunk-size jitter seed; 0 means fixed-size chunks.
    #[serde(default)]
    pub seed: u64,
}

impl Script {
    fn default_chunk_size() -> usize {
        8
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Agent {
    pub id: Id,
    pub name: String,
    #[serde(default)]
    pub app_integration_ids: Vec<Id>,
    #[serde(default)]
    pub can_send_welcome_message: bool,
    pub created_at: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub goal: Option<String>,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub is_public: bool,
    #[serde(default)]
    pub is_template: bool,
    pub org_id: Id,
    #[serde(default)]
    pub tags: Vec<String>,
    pub updated_at: String,
    #[serde(default)]
    pub welcome_message: Option<String>,
    /// Scripted behaviour (mock only; never sent over the protocol).
    #[serde(default, skip_serializing)]
    pub script: Option<Script>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppIntegration {
    pub id: Id,
    #[serde(default)]
    pub agent_ids: Vec<Id>,
    pub created_at: String,
    #[serde(default)]
    pub description: Option<String>,
    pub name: String,
    pub org_id: Id,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Repository {
    pub id: Id,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub org_id: Id,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Chat {
    pub id: Id,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub org_id: Option<Id>,
    #[serde(default)]
    pub state: Option<Map<String, Value>>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub system_messages: Vec<Value>,
    #[serde(default)]
    pub latest_message_id: Option<Id>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: Id,
    pub content: String,
    #[serde(default)]
    pub content_delta: Option<String>,
    pub chat_id: Id,
    #[serde(default)]
    pub chat_key: Option<String>,
    #[serde(default)]
    pub instructions: Vec<Value>,
    #[serde(default)]
    pub is_streaming: bool,
    #[serde(default)]
    pub notes: Vec<String>,
    #[serde(default)]
    pub responded_to_id: Option<Id>,
    #[serde(default)]
    pub response_url: Option<String>,
    #[serde(default)]
    pub sender_id: Option<Id>,
    #[serde(default)]
    pub state: Map<String, Value>,
    #[serde(default)]
    pub stream_id: Option<String>,
    #[serde(default)]
    pub stream_response: bool,
    #[serde(rename = "type", default = "Message::default_type")]
    pub kind: String,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default)]
    pub attachments: Vec<Value>,
    #[serde(default)]
    pub citations: Vec<Value>,
}

impl Message {
    pub fn default_type() -> String {
        "TEXT".to_string()
    }
}

/// The known MessageType values and the rule for the truncated rest (see
/// docs/PROTOCOL.md): closed up to FUNCTION_CALL, open after it.
pub fn is_message_type(s: &str) -> bool {
    const KNOWN: &[&str] = &[
        "AUDIO_URL",
        "CODE",
        "ERROR_MESSAGE",
        "FILE_URL",
        "FUNCTION_CALL",
        "IMAGE_URL",
        "TEXT",
    ];
    if KNOWN.contains(&s) {
        return true;
    }
    let upper_snake = !s.is_empty()
        && s.split('_').all(|w| {
            !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        });
    upper_snake && s.as_bytes()[0] >= b'G'
}

pub fn is_object_id(s: &str) -> bool {
    s.len() == 24
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether `s` has the documented token shape (prefix, 24.32.32.48 hex).
pub fn is_token_format(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("user-").or_else(|| s.strip_prefix("inst-")) else {
        return false;
    };
    let groups: Vec<&str> = rest.split('.').collect();
    groups.len() == 4
        && groups.iter().zip([24, 32, 32, 48]).all(|(g, n)| {
            g.len() == n
                && g.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// A registered plugin (management Plugins page).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plugin {
    pub id: Id,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub events: Vec<String>,
    #[serde(default)]
    pub inputs_schema: Option<Value>,
    #[serde(default)]
    pub is_public: bool,
    #[serde(default)]
    pub org_id: Option<Id>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub webhook_url: String,
    pub created_at: String,
    pub updated_at: String,
}

/// A plugin installed on an agent or an app integration (the Events page).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginInstance {
    pub id: Id,
    #[serde(default)]
    pub agent_id: Option<Id>,
    #[serde(default)]
    pub app_integration_id: Option<Id>,
    pub created_at: String,
    pub entity_id: Id,
    /// `AGENT` or `APP_INTEGRATION`.
    pub entity_type: String,
    #[serde(default)]
    pub event_dispatch_condition: Option<Value>,
    /// `SYNC` or `ASYNC`.
    pub event_dispatch_mode: String,
    #[serde(default)]
    pub events: Vec<String>,
    #[serde(default)]
    pub inputs: Option<Value>,
    pub name: String,
    pub org_id: Id,
    pub plugin_id: Id,
    #[serde(default)]
    pub repository_id: Option<Id>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub updated_at: String,
}

impl PluginInstance {
    /// The participant this instance acts as.
    pub fn acts_as(&self) -> Participant {
        let kind = if self.entity_type == "APP_INTEGRATION" {
            ParticipantType::AppIntegration
        } else {
            ParticipantType::Agent
        };
        Participant {
            id: self.entity_id.clone(),
            kind,
        }
    }
}
