//! World files: the state the mock starts from.
//!
//! `fixtures/world.json` is embedded as the default; `--world FILE` loads
//! another. A file that cannot be used is refused with its name, the JSON path
//! inside it and the problem, e.g.
//! `world.json: at chats[0].participants[1].type: unknown variant "BOT"`.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::model::{
    Agent, AppIntegration, Chat, EntityType, Id, Message, Org, Participant, ParticipantType,
    Repository, User,
};
use crate::model::{Plugin, PluginInstance, is_object_id, is_token_format};

/// The default world, compiled into the binary.
pub const DEFAULT_WORLD: &str = include_str!("../../fixtures/world.json");

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRecord {
    pub token: String,
    pub entity_type: EntityType,
    pub entity_id: Id,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub revoked: bool,
    /// Scopes of a plugin-instance token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorldChat {
    #[serde(flatten)]
    pub chat: Chat,
    pub participants: Vec<Participant>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct World {
    #[serde(rename = "$comment", default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub version: u32,
    #[serde(default)]
    pub orgs: Vec<Org>,
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(default)]
    pub tokens: Vec<TokenRecord>,
    #[serde(default)]
    pub agents: Vec<Agent>,
    #[serde(default)]
    pub app_integrations: Vec<AppIntegration>,
    #[serde(default)]
    pub repositories: Vec<Repository>,
    #[serde(default)]
    pub plugins: Vec<Plugin>,
    #[serde(default)]
    pub plugin_instances: Vec<PluginInstance>,
    #[serde(default)]
    pub chats: Vec<WorldChat>,
    #[serde(default)]
    pub messages: Vec<Message>,
    /// The Thenvoi (Band) profile's part (docs/THENVOI.md).
    #[serde(default)]
    pub thenvoi: crate::model::thenvoi::World,
}

/// Why a world file was refused.
#[derive(Debug, thiserror::Error)]
#[error("{file}: at {path}: {problem}")]
pub struct WorldError {
    pub file: String,
    pub path: String,
    pub problem: String,
}

impl World {
    /// The world as a file `--world` can load. Users' `orgIds` and agents'
    /// `script` are mock bookkeeping the protocol never shows, so the
    /// protocol serialization skips them; a world file needs them back.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        for (i, u) in self.users.iter().enumerate() {
            v["users"][i]["orgIds"] = serde_json::json!(u.org_ids);
        }
        for (i, a) in self.agents.iter().enumerate() {
            if let Some(script) = &a.script {
                v["agents"][i]["script"] = serde_json::json!(script);
            }
        }
        v
    }

    /// The embedded default world.
    pub fn default_world() -> World {
        // The default world is tested; failing here is a build defect.
        World::parse("fixtures/world.json (embedded)", DEFAULT_WORLD)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Parses and checks a world file; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<World, WorldError> {
        let err = |path: String, problem: String| WorldError {
            file: file.to_string(),
            path,
            problem,
        };
        let de = &mut serde_json::Deserializer::from_str(text);
        let world: World = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let path = if path == "." {
                format!("line {} column {}", inner.line(), inner.column())
            } else {
                path
            };
            err(path, inner.to_string())
        })?;
        world
            .check()
            .map_err(|(path, problem)| err(path, problem))?;
        Ok(world)
    }

    /// Referential checks serde cannot do: ids well formed and unique,
    /// references pointing at things that exist.
    fn check(&self) -> Result<(), (String, String)> {
        if self.version != 1 {
            return Err((
                "version".into(),
                format!(
                    "unsupported version {} (this mock reads version 1)",
                    self.version
                ),
            ));
        }
        let mut seen = HashSet::new();
        let mut id = |path: String, id: &str| -> Result<(), (String, String)> {
            if !is_object_id(id) {
                return Err((
                    path,
                    format!("{id:?} is not a 24-character lowercase hex id"),
                ));
            }
            if !seen.insert(id.to_string()) {
                return Err((path, format!("id {id} is used twice")));
            }
            Ok(())
        };
        for (i, o) in self.orgs.iter().enumerate() {
            id(format!("orgs[{i}].id"), &o.id)?;
        }
        for (i, u) in self.users.iter().enumerate() {
            id(format!("users[{i}].id"), &u.id)?;
        }
        for (i, a) in self.agents.iter().enumerate() {
            id(format!("agents[{i}].id"), &a.id)?;
        }
        for (i, a) in self.app_integrations.iter().enumerate() {
            id(format!("appIntegrations[{i}].id"), &a.id)?;
        }
        for (i, r) in self.repositories.iter().enumerate() {
            id(format!("repositories[{i}].id"), &r.id)?;
        }
        for (i, c) in self.chats.iter().enumerate() {
            id(format!("chats[{i}].id"), &c.chat.id)?;
        }
        for (i, m) in self.messages.iter().enumerate() {
            id(format!("messages[{i}].id"), &m.id)?;
        }
        self.thenvoi.check()?;
        let orgs: HashSet<&str> = self.orgs.iter().map(|o| o.id.as_str()).collect();
        let users: HashSet<&str> = self.users.iter().map(|u| u.id.as_str()).collect();
        let agents: HashSet<&str> = self.agents.iter().map(|a| a.id.as_str()).collect();
        let apps: HashSet<&str> = self
            .app_integrations
            .iter()
            .map(|a| a.id.as_str())
            .collect();
        let chats: HashSet<&str> = self.chats.iter().map(|c| c.chat.id.as_str()).collect();
        let missing = |path: String, what: &str, id: &str| {
            (path, format!("{what} {id} does not exist in this world"))
        };
        for (i, u) in self.users.iter().enumerate() {
            for (j, o) in u.org_ids.iter().enumerate() {
                if !orgs.contains(o.as_str()) {
                    return Err(missing(format!("users[{i}].orgIds[{j}]"), "org", o));
                }
            }
        }
        for (i, a) in self.agents.iter().enumerate() {
            if !orgs.contains(a.org_id.as_str()) {
                return Err(missing(format!("agents[{i}].orgId"), "org", &a.org_id));
            }
            if let Some(s) = &a.script
                && (s.chunk_size == 0 || s.chunks == Some(0))
            {
                return Err((
                    format!("agents[{i}].script"),
                    "chunkSize and chunks must be at least 1".into(),
                ));
            }
        }
        for (i, t) in self.tokens.iter().enumerate() {
            if !is_token_format(&t.token) {
                return Err((
                    format!("tokens[{i}].token"),
                    "not in the user-/inst- <24>.<32>.<32>.<48> hex format".into(),
                ));
            }
            let known = match t.entity_type {
                EntityType::User => users.contains(t.entity_id.as_str()),
                EntityType::Agent => agents.contains(t.entity_id.as_str()),
                EntityType::AppIntegration => apps.contains(t.entity_id.as_str()),
                EntityType::PluginInstance => {
                    self.plugin_instances.iter().any(|p| p.id == t.entity_id)
                }
            };
            if !known {
                return Err(missing(
                    format!("tokens[{i}].entityId"),
                    "entity",
                    &t.entity_id,
                ));
            }
        }
        for (i, c) in self.chats.iter().enumerate() {
            for (j, p) in c.participants.iter().enumerate() {
                let ok = match p.kind {
                    ParticipantType::User => users.contains(p.id.as_str()),
                    ParticipantType::Agent => agents.contains(p.id.as_str()),
                    ParticipantType::AppIntegration => apps.contains(p.id.as_str()),
                };
                if !ok {
                    return Err(missing(
                        format!("chats[{i}].participants[{j}].id"),
                        p.kind.as_str(),
                        &p.id,
                    ));
                }
            }
        }
        for (i, m) in self.messages.iter().enumerate() {
            if !chats.contains(m.chat_id.as_str()) {
                return Err(missing(format!("messages[{i}].chatId"), "chat", &m.chat_id));
            }
        }
        Ok(())
    }
}
