//! Chats and their participants: who may see, join or change a chat. The
//! membership rule (`member`) is the one every chat-scoped read goes through.

use serde_json::{Map, Value};

use super::*;
use crate::model::{Chat, Entity, EntityType, Participant, ParticipantType, Repository};

impl Store {
    pub(super) fn participant_exists(
        s: &State,
        caller: &Caller,
        p: &Participant,
    ) -> Result<(), Refusal> {
        match p.kind {
            ParticipantType::Agent => {
                let a = s
                    .agents
                    .get(&p.id)
                    .ok_or_else(|| Refusal::NotFound(format!("Agent {} not found", p.id)))?;
                if !Self::visible(caller, a) {
                    return Err(Refusal::Forbidden(format!(
                        "Agent {} is not public and you are not a member of its organization",
                        p.id
                    )));
                }
            }
            ParticipantType::User => {
                if !s.users.contains_key(&p.id) {
                    return Err(Refusal::NotFound(format!("User {} not found", p.id)));
                }
            }
            ParticipantType::AppIntegration => {
                if !s.app_integrations.contains_key(&p.id) {
                    return Err(Refusal::NotFound(format!(
                        "App integration {} not found",
                        p.id
                    )));
                }
            }
        }
        Ok(())
    }

    /// Creates a chat, or finds it by key. Returns the chat, whether it was
    /// created, and the participants that joined (for lifecycle events).
    pub fn create_chat(
        &self,
        caller: &Caller,
        participants: Vec<Participant>,
        key: Option<String>,
        title: Option<String>,
        state: Option<Map<String, Value>>,
    ) -> Result<(Chat, bool, Vec<Participant>), Refusal> {
        let me = caller.as_participant().ok_or_else(|| {
            Refusal::Forbidden(
                "A plugin instance cannot own a chat; use its agent's or app integration's token"
                    .into(),
            )
        })?;
        let mut s = self.lock();
        let scope = caller
            .org_ids
            .first()
            .cloned()
            .unwrap_or_else(|| caller.entity.id.clone());
        if let Some(k) = &key
            && let Some(id) = s.chat_keys.get(&(scope.clone(), k.clone()))
        {
            let rec = &s.chats[id];
            if !rec.participants.contains(&me) {
                return Err(Refusal::Forbidden(format!(
                    "Chat with key {k:?} exists and you are not a participant"
                )));
            }
            return Ok((rec.chat.clone(), false, Vec::new()));
        }
        for p in &participants {
            Self::participant_exists(&s, caller, p)?;
        }
        self.room_for("chats", s.chats.len())?;
        let now = now_iso();
        let chat = Chat {
            id: self.ids.next(),
            key: key.clone(),
            org_id: caller.org_ids.first().cloned(),
            state,
            title,
            system_messages: Vec::new(),
            latest_message_id: None,
            created_at: now.clone(),
            updated_at: now,
        };
        let mut all = vec![me];
        for p in participants {
            if !all.contains(&p) {
                all.push(p);
            }
        }
        if let Some(k) = key {
            s.chat_keys.insert((scope, k), chat.id.clone());
        }
        s.chats.insert(
            chat.id.clone(),
            ChatRecord {
                chat: chat.clone(),
                participants: all.clone(),
                messages: VecDeque::new(),
                repositories: Vec::new(),
            },
        );
        Ok((chat, true, all))
    }

    pub(super) fn member<'a>(
        s: &'a State,
        caller: &Caller,
        chat_id: &str,
    ) -> Result<&'a ChatRecord, Refusal> {
        let rec = s
            .chats
            .get(chat_id)
            .ok_or_else(|| Refusal::NotFound(format!("Chat {chat_id} not found")))?;
        let me = caller.as_participant();
        if !me.is_some_and(|me| rec.participants.contains(&me)) {
            return Err(Refusal::Forbidden(format!(
                "You are not a participant of chat {chat_id}"
            )));
        }
        Ok(rec)
    }

    pub fn chat(&self, caller: &Caller, chat_id: &str) -> Result<Chat, Refusal> {
        Ok(Self::member(&self.lock(), caller, chat_id)?.chat.clone())
    }

    pub fn chats(&self, caller: &Caller) -> Vec<Chat> {
        let s = self.lock();
        let me = caller.as_participant();
        let mut list: Vec<Chat> = s
            .chats
            .values()
            .filter(|r| me.as_ref().is_some_and(|m| r.participants.contains(m)))
            .map(|r| r.chat.clone())
            .collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        list
    }

    pub fn participants(
        &self,
        caller: &Caller,
        chat_id: &str,
    ) -> Result<Vec<Participant>, Refusal> {
        Ok(Self::member(&self.lock(), caller, chat_id)?
            .participants
            .clone())
    }

    /// Whether the caller may join the chat's room.
    pub fn can_join(&self, caller: &Caller, chat_id: &str) -> Result<(), Refusal> {
        Self::member(&self.lock(), caller, chat_id).map(|_| ())
    }

    pub fn add_participant(
        &self,
        caller: &Caller,
        chat_id: &str,
        p: Participant,
    ) -> Result<(Chat, bool), Refusal> {
        let mut s = self.lock();
        Self::member(&s, caller, chat_id)?;
        Self::participant_exists(&s, caller, &p)?;
        let rec = s.chats.get_mut(chat_id).expect("checked by member");
        if rec.participants.contains(&p) {
            return Ok((rec.chat.clone(), false));
        }
        rec.participants.push(p);
        rec.chat.updated_at = now_iso();
        Ok((rec.chat.clone(), true))
    }

    /// Removes a participant (the `caller-not-added` fault).
    pub fn remove_participant(&self, chat_id: &str, p: &Participant) {
        if let Some(rec) = self.lock().chats.get_mut(chat_id) {
            rec.participants.retain(|q| q != p);
        }
    }

    /// The chat's first user participant as a caller (the `non-participant-read` fault).
    pub fn as_first_participant(&self, chat_id: &str) -> Option<Caller> {
        let s = self.lock();
        let rec = s.chats.get(chat_id)?;
        let p = rec
            .participants
            .iter()
            .find(|p| p.kind == ParticipantType::User)?;
        let u = s.users.get(&p.id)?;
        Some(Caller::user(
            Entity {
                id: u.id.clone(),
                kind: EntityType::User,
                name: u.name.clone(),
            },
            u.org_ids.clone(),
        ))
    }

    pub fn update_chat(
        &self,
        caller: &Caller,
        chat_id: &str,
        title: Option<Option<String>>,
        state: Option<Option<Map<String, Value>>>,
    ) -> Result<Chat, Refusal> {
        let mut s = self.lock();
        Self::member(&s, caller, chat_id)?;
        let rec = s.chats.get_mut(chat_id).expect("checked by member");
        if let Some(t) = title {
            rec.chat.title = t;
        }
        if let Some(st) = state {
            rec.chat.state = st;
        }
        rec.chat.updated_at = now_iso();
        Ok(rec.chat.clone())
    }

    pub fn attach_repository(
        &self,
        caller: &Caller,
        chat_id: &str,
        repo_id: &str,
    ) -> Result<(Chat, Repository), Refusal> {
        let mut s = self.lock();
        Self::member(&s, caller, chat_id)?;
        let repo = s
            .repositories
            .get(repo_id)
            .cloned()
            .ok_or_else(|| Refusal::NotFound(format!("Repository {repo_id} not found")))?;
        if !caller.org_ids.contains(&repo.org_id) {
            return Err(Refusal::Forbidden(format!(
                "Repository {repo_id} belongs to an organization you are not in"
            )));
        }
        let rec = s.chats.get_mut(chat_id).expect("checked by member");
        if !rec.repositories.contains(&repo.id) {
            rec.repositories.push(repo.id.clone());
        }
        rec.chat.updated_at = now_iso();
        Ok((rec.chat.clone(), repo))
    }

    /// A chat's participants, unchecked (for event dispatch).
    pub fn participants_of(&self, chat_id: &str) -> Vec<Participant> {
        self.lock()
            .chats
            .get(chat_id)
            .map(|r| r.participants.clone())
            .unwrap_or_default()
    }

    // ---- repositories ----
}
