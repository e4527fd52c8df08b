//! Plugins and their instances: registration, install on an agent or app
//! integration (minting the `inst-` token), and who is subscribed to an event.

use serde_json::Value;

use super::*;
use crate::model::{EntityType, Id, Participant, ParticipantType};

impl Store {
    /// Registers a plugin whose webhook has passed the challenge.
    /// The organization a caller may register a plugin in (`org_id`, or its
    /// first), or why not. Checked before the webhook is challenged: no
    /// request leaves the mock for a caller who may not register.
    pub fn plugin_org(&self, caller: &Caller, org_id: Option<&str>) -> Result<Id, Refusal> {
        let s = self.lock();
        Self::registering_org(&s, caller, org_id)
    }

    fn registering_org(s: &State, caller: &Caller, org_id: Option<&str>) -> Result<Id, Refusal> {
        let org = match org_id {
            Some(o) => o.to_string(),
            None => caller.org_ids.first().cloned().ok_or_else(|| {
                Refusal::Invalid("orgId is required: you belong to no organization".into())
            })?,
        };
        if !s.orgs.contains_key(&org) {
            return Err(Refusal::NotFound(format!("Organization {org} not found")));
        }
        if !caller.org_ids.contains(&org) || caller.entity.kind != EntityType::User {
            return Err(Refusal::Forbidden(format!(
                "Only members of organization {org} may register plugins in it"
            )));
        }
        Ok(org)
    }

    pub fn add_plugin(
        &self,
        caller: &Caller,
        mut plugin: crate::model::Plugin,
    ) -> Result<crate::model::Plugin, Refusal> {
        let mut s = self.lock();
        let org = Self::registering_org(&s, caller, plugin.org_id.as_deref())?;
        self.room_for("plugins", s.plugins.len())?;
        let now = now_iso();
        plugin.id = self.ids.next();
        plugin.org_id = Some(org);
        plugin.created_at = now.clone();
        plugin.updated_at = now;
        s.plugins.insert(plugin.id.clone(), plugin.clone());
        Ok(plugin)
    }

    pub(super) fn plugin_visible(caller: &Caller, p: &crate::model::Plugin) -> bool {
        p.is_public
            || p.org_id
                .as_ref()
                .is_some_and(|o| caller.org_ids.contains(o))
    }

    pub fn plugin(&self, caller: &Caller, id: &str) -> Result<crate::model::Plugin, Refusal> {
        let s = self.lock();
        let p = s
            .plugins
            .get(id)
            .ok_or_else(|| Refusal::NotFound(format!("Plugin {id} not found")))?;
        if !Self::plugin_visible(caller, p) {
            return Err(Refusal::Forbidden(format!(
                "Plugin {id} is not public and you are not a member of its organization"
            )));
        }
        Ok(p.clone())
    }

    pub fn plugins(&self, caller: &Caller) -> Vec<crate::model::Plugin> {
        let s = self.lock();
        let mut v: Vec<_> = s
            .plugins
            .values()
            .filter(|p| Self::plugin_visible(caller, p))
            .cloned()
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// The org of an agent or app integration the caller may manage.
    pub(super) fn managed_org(
        s: &State,
        caller: &Caller,
        target: &Participant,
    ) -> Result<Id, Refusal> {
        let org = match target.kind {
            ParticipantType::Agent => s
                .agents
                .get(&target.id)
                .map(|a| a.org_id.clone())
                .ok_or_else(|| Refusal::NotFound(format!("Agent {} not found", target.id)))?,
            ParticipantType::AppIntegration => s
                .app_integrations
                .get(&target.id)
                .map(|a| a.org_id.clone())
                .ok_or_else(|| {
                    Refusal::NotFound(format!("App integration {} not found", target.id))
                })?,
            ParticipantType::User => {
                return Err(Refusal::Invalid(
                    "plugins are installed on agents and app integrations".into(),
                ));
            }
        };
        if caller.entity.kind != EntityType::User || !caller.org_ids.contains(&org) {
            return Err(Refusal::Forbidden(format!(
                "Only members of organization {org} may manage its plugin instances"
            )));
        }
        Ok(org)
    }

    /// Installs a plugin on an agent or app integration: a new instance and
    /// its `inst-` token. `inputs` must already match the plugin's schema.
    #[allow(clippy::too_many_arguments)]
    pub fn install(
        &self,
        caller: &Caller,
        target: &Participant,
        plugin_id: &str,
        name: Option<String>,
        events: Vec<String>,
        scopes: Vec<String>,
        mode: String,
        inputs: Option<Value>,
    ) -> Result<
        (
            crate::model::PluginInstance,
            TokenRecord,
            crate::model::Plugin,
        ),
        Refusal,
    > {
        let mut s = self.lock();
        let org = Self::managed_org(&s, caller, target)?;
        let plugin = s
            .plugins
            .get(plugin_id)
            .cloned()
            .ok_or_else(|| Refusal::NotFound(format!("Plugin {plugin_id} not found")))?;
        if !Self::plugin_visible(caller, &plugin) {
            return Err(Refusal::Forbidden(format!(
                "Plugin {plugin_id} is not public and you are not a member of its organization"
            )));
        }
        if let Some(e) = events.iter().find(|e| !plugin.events.contains(e)) {
            return Err(Refusal::Invalid(format!(
                "event {e} is not one the plugin subscribes to ({})",
                plugin.events.join(", ")
            )));
        }
        if let Some(sc) = scopes.iter().find(|sc| !plugin.scopes.contains(sc)) {
            return Err(Refusal::Invalid(format!(
                "scope {sc} is not one the plugin asks for ({})",
                plugin.scopes.join(", ")
            )));
        }
        self.room_for("plugin installations", s.instances.len())?;
        let now = now_iso();
        let is_agent = target.kind == ParticipantType::Agent;
        let instance = crate::model::PluginInstance {
            id: self.ids.next(),
            agent_id: is_agent.then(|| target.id.clone()),
            app_integration_id: (!is_agent).then(|| target.id.clone()),
            created_at: now.clone(),
            entity_id: target.id.clone(),
            entity_type: target.kind.as_str().to_string(),
            event_dispatch_condition: None,
            event_dispatch_mode: mode,
            events,
            inputs,
            name: name.unwrap_or_else(|| plugin.name.clone()),
            org_id: org,
            plugin_id: plugin.id.clone(),
            repository_id: None,
            scopes: scopes.clone(),
            updated_at: now,
        };
        let token = TokenRecord {
            token: self.mint_instance_token(),
            entity_type: EntityType::PluginInstance,
            entity_id: instance.id.clone(),
            name: format!(
                "Token for plugin instance: {} (#{})",
                instance.name, instance.id
            ),
            revoked: false,
            scopes,
        };
        s.tokens.insert(token.token.clone(), token.clone());
        s.instances.insert(instance.id.clone(), instance.clone());
        Ok((instance, token, plugin))
    }

    /// `inst-` and four hex groups, from the id counter: deterministic.
    pub(super) fn mint_instance_token(&self) -> String {
        let mut rng = crate::seeded::SplitMix::new(
            u64::from_str_radix(&self.ids.next()[8..], 16).unwrap_or(1) ^ 0x1157,
        );
        let mut hex = |n: usize| {
            (0..n)
                .map(|_| format!("{:x}", rng.next_u64() % 16))
                .collect::<String>()
        };
        format!("inst-{}.{}.{}.{}", hex(24), hex(32), hex(32), hex(48))
    }

    pub fn instances_of(
        &self,
        caller: &Caller,
        target: &Participant,
    ) -> Result<Vec<crate::model::PluginInstance>, Refusal> {
        let s = self.lock();
        Self::managed_org(&s, caller, target)?;
        let mut v: Vec<_> = s
            .instances
            .values()
            .filter(|i| i.entity_id == target.id)
            .cloned()
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(v)
    }

    /// Deletes an instance and revokes its tokens.
    pub fn uninstall(
        &self,
        caller: &Caller,
        target: &Participant,
        instance_id: &str,
    ) -> Result<(crate::model::PluginInstance, crate::model::Plugin), Refusal> {
        let mut s = self.lock();
        Self::managed_org(&s, caller, target)?;
        let inst = s
            .instances
            .get(instance_id)
            .filter(|i| i.entity_id == target.id)
            .cloned()
            .ok_or_else(|| {
                Refusal::NotFound(format!("No plugin instance {instance_id} on {}", target.id))
            })?;
        s.instances.remove(instance_id);
        for t in s.tokens.values_mut().filter(|t| t.entity_id == inst.id) {
            t.revoked = true;
        }
        let plugin = s
            .plugins
            .get(&inst.plugin_id)
            .cloned()
            .ok_or_else(|| Refusal::NotFound("the instance's plugin is gone".into()))?;
        Ok((inst, plugin))
    }

    /// Instances of `entity` subscribed to `event`, with their webhook URLs.
    pub fn subscribed(
        &self,
        entity: &Participant,
        event: &str,
    ) -> Vec<(crate::model::PluginInstance, String)> {
        let s = self.lock();
        let mut v: Vec<_> = s
            .instances
            .values()
            .filter(|i| i.entity_id == entity.id && i.events.iter().any(|e| e == event))
            .filter_map(|i| {
                s.plugins
                    .get(&i.plugin_id)
                    .map(|p| (i.clone(), p.webhook_url.clone()))
            })
            .collect();
        v.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        v
    }

    /// Every installed instance with its live token and plugin (start-up announcement).
    pub fn installed(
        &self,
    ) -> Vec<(
        crate::model::PluginInstance,
        TokenRecord,
        crate::model::Plugin,
    )> {
        let s = self.lock();
        let mut v: Vec<_> = s
            .instances
            .values()
            .filter_map(|i| {
                let t = s
                    .tokens
                    .values()
                    .find(|t| t.entity_id == i.id && !t.revoked)?;
                Some((i.clone(), t.clone(), s.plugins.get(&i.plugin_id)?.clone()))
            })
            .collect();
        v.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        v
    }
}
