//! Agents: visibility (public, or private to an org), create, update, delete,
//! and the lookups event bodies use.

use super::*;
use crate::model::{Agent, AppIntegration, User};

impl Store {
    pub(super) fn visible(caller: &Caller, agent: &Agent) -> bool {
        agent.is_public || caller.org_ids.contains(&agent.org_id)
    }

    pub fn agent(&self, caller: &Caller, id: &str) -> Result<Agent, Refusal> {
        let s = self.lock();
        let agent = s
            .agents
            .get(id)
            .ok_or_else(|| Refusal::NotFound(format!("Agent {id} not found")))?;
        if !Self::visible(caller, agent) {
            return Err(Refusal::Forbidden(format!(
                "Agent {id} is not public and you are not a member of its organization"
            )));
        }
        Ok(agent.clone())
    }

    pub fn agents(&self, caller: &Caller) -> Vec<Agent> {
        let s = self.lock();
        let mut list: Vec<Agent> = s
            .agents
            .values()
            .filter(|a| Self::visible(caller, a))
            .cloned()
            .collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        list
    }

    pub fn create_agent(&self, caller: &Caller, mut agent: Agent) -> Result<Agent, Refusal> {
        let mut s = self.lock();
        if agent.org_id.is_empty() {
            agent.org_id = caller.org_ids.first().cloned().ok_or_else(|| {
                Refusal::Invalid(
                    "orgId is required: you belong to no organization to create the agent in"
                        .into(),
                )
            })?;
        }
        if !s.orgs.contains_key(&agent.org_id) {
            return Err(Refusal::NotFound(format!(
                "Organization {} not found",
                agent.org_id
            )));
        }
        if !caller.org_ids.contains(&agent.org_id) {
            return Err(Refusal::Forbidden(format!(
                "You are not a member of organization {}",
                agent.org_id
            )));
        }
        self.room_for("agents", s.agents.len())?;
        agent.id = self.ids.next();
        let now = now_iso();
        agent.created_at = now.clone();
        agent.updated_at = now;
        s.agents.insert(agent.id.clone(), agent.clone());
        Ok(agent)
    }

    /// Applies `change` to an agent the caller may modify (a member of its org).
    pub fn update_agent(
        &self,
        caller: &Caller,
        id: &str,
        change: impl FnOnce(&mut Agent),
    ) -> Result<Agent, Refusal> {
        let mut s = self.lock();
        let agent = s
            .agents
            .get_mut(id)
            .ok_or_else(|| Refusal::NotFound(format!("Agent {id} not found")))?;
        if !caller.org_ids.contains(&agent.org_id) {
            return Err(Refusal::Forbidden(format!(
                "Only members of organization {} may change agent {id}",
                agent.org_id
            )));
        }
        change(agent);
        agent.updated_at = now_iso();
        Ok(agent.clone())
    }

    pub fn delete_agent(&self, caller: &Caller, id: &str) -> Result<Agent, Refusal> {
        let mut s = self.lock();
        let agent = s
            .agents
            .get(id)
            .ok_or_else(|| Refusal::NotFound(format!("Agent {id} not found")))?;
        if !caller.org_ids.contains(&agent.org_id) {
            return Err(Refusal::Forbidden(format!(
                "Only members of organization {} may delete agent {id}",
                agent.org_id
            )));
        }
        Ok(s.agents.remove(id).expect("checked above"))
    }

    // ---- chats ----

    /// Users, agents and app integrations by id, for lifecycle event bodies.
    pub fn user(&self, id: &str) -> Option<User> {
        self.lock().users.get(id).cloned()
    }
    pub fn agent_by_id(&self, id: &str) -> Option<Agent> {
        self.lock().agents.get(id).cloned()
    }
    pub fn app_integration(&self, id: &str) -> Option<AppIntegration> {
        self.lock().app_integrations.get(id).cloned()
    }
}
