//! Repositories: create, read, list, within the caller's org.

use super::*;
use crate::model::{Id, Repository};

impl Store {
    pub fn create_repository(
        &self,
        caller: &Caller,
        name: String,
        description: Option<String>,
        org_id: Option<Id>,
    ) -> Result<Repository, Refusal> {
        let mut s = self.lock();
        let org_id = match org_id {
            Some(o) => o,
            None => caller.org_ids.first().cloned().ok_or_else(|| {
                Refusal::Invalid("orgId is required: you belong to no organization".into())
            })?,
        };
        if !s.orgs.contains_key(&org_id) {
            return Err(Refusal::NotFound(format!(
                "Organization {org_id} not found"
            )));
        }
        if !caller.org_ids.contains(&org_id) {
            return Err(Refusal::Forbidden(format!(
                "You are not a member of organization {org_id}"
            )));
        }
        self.room_for("repositories", s.repositories.len())?;
        let now = now_iso();
        let repo = Repository {
            id: self.ids.next(),
            name,
            description,
            org_id,
            created_at: now.clone(),
            updated_at: now,
        };
        s.repositories.insert(repo.id.clone(), repo.clone());
        Ok(repo)
    }

    pub fn repository(&self, caller: &Caller, id: &str) -> Result<Repository, Refusal> {
        let s = self.lock();
        let r = s
            .repositories
            .get(id)
            .ok_or_else(|| Refusal::NotFound(format!("Repository {id} not found")))?;
        if !caller.org_ids.contains(&r.org_id) {
            return Err(Refusal::Forbidden(format!(
                "Repository {id} belongs to an organization you are not in"
            )));
        }
        Ok(r.clone())
    }

    pub fn repositories(&self, caller: &Caller) -> Vec<Repository> {
        let s = self.lock();
        let mut list: Vec<Repository> = s
            .repositories
            .values()
            .filter(|r| caller.org_ids.contains(&r.org_id))
            .cloned()
            .collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        list
    }
}
