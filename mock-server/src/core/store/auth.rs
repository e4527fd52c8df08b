//! Tokens: which entity a token acts as, and the fallback the `accept-bad-token`
//! fault uses. Every REST route and socket event authenticates here, so the
//! rules for `user-` and `inst-` tokens exist once.

use super::*;
use crate::model::{Entity, EntityType};

impl Store {
    /// The world's first user, as a caller (used by the `accept-bad-token` fault).
    pub fn first_user(&self) -> Option<Caller> {
        let id = self
            .world
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .users
            .first()?
            .id
            .clone();
        let s = self.lock();
        let u = s.users.get(&id)?;
        Some(Caller::user(
            Entity {
                id: u.id.clone(),
                kind: EntityType::User,
                name: u.name.clone(),
            },
            u.org_ids.clone(),
        ))
    }

    /// Resolves a bearer token; the error message says what is wrong with it.
    pub fn authenticate(&self, token: &str) -> Result<Caller, String> {
        if !crate::model::is_token_format(token) {
            return Err("Invalid token: expected user-… or inst-… followed by four dot-separated hex groups (24.32.32.48)".into());
        }
        let s = self.lock();
        let Some(rec) = s.tokens.get(token) else {
            return Err("Invalid token: no such token (it may belong to another server)".into());
        };
        if rec.revoked {
            return Err("Invalid token: this token was deleted".into());
        }
        if rec.entity_type == EntityType::PluginInstance {
            let inst = s
                .instances
                .get(&rec.entity_id)
                .ok_or("Invalid token: its plugin was uninstalled")?;
            return Ok(Caller {
                entity: Entity {
                    id: inst.id.clone(),
                    kind: EntityType::PluginInstance,
                    name: inst.name.clone(),
                },
                org_ids: vec![inst.org_id.clone()],
                acts_as: Some(inst.acts_as()),
                scopes: rec.scopes.clone(),
            });
        }
        let (name, org_ids) = match rec.entity_type {
            EntityType::User => s
                .users
                .get(&rec.entity_id)
                .map(|u| (u.name.clone(), u.org_ids.clone())),
            EntityType::Agent => s
                .agents
                .get(&rec.entity_id)
                .map(|a| (a.name.clone(), vec![a.org_id.clone()])),
            EntityType::AppIntegration => s
                .app_integrations
                .get(&rec.entity_id)
                .map(|a| (a.name.clone(), vec![a.org_id.clone()])),
            EntityType::PluginInstance => None,
        }
        .ok_or_else(|| "Invalid token: the entity it belonged to was deleted".to_string())?;
        Ok(Caller::user(
            Entity {
                id: rec.entity_id.clone(),
                kind: rec.entity_type,
                name,
            },
            org_ids,
        ))
    }

    // ---- agents ----
}
