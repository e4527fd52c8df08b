//! Messages: history pages (index and cursor), where a new message goes
//! (chat id, key or recipients), storing it, and which scripted agents answer.

use serde_json::Value;

use super::*;
use crate::faults::PageFaults;
use crate::model::{Chat, EntityType, Id, Message, Participant, ParticipantType};

impl Store {
    /// One page of history (PROTOCOL.md R8–R13).
    pub fn page(
        &self,
        caller: &Caller,
        chat_id: &str,
        at: PageAt,
        limit: usize,
        faults: &PageFaults,
    ) -> Result<Page, Refusal> {
        let s = self.lock();
        let rec = Self::member(&s, caller, chat_id)?;
        let total = rec.messages.len();
        let (start, mut meta) = match &at {
            PageAt::Index(page) => (
                (page - 1).saturating_mul(limit),
                serde_json::json!({ "page": page }),
            ),
            PageAt::After(cursor) => {
                let pos = rec
                    .messages
                    .iter()
                    .position(|m| &m.id == cursor)
                    .ok_or_else(|| {
                        Refusal::Invalid(format!(
                            "@cursor {cursor} is not a message of chat {chat_id}"
                        ))
                    })?;
                (pos + 1, serde_json::json!({ "cursor": cursor }))
            }
        };
        // The page-overlap / page-skip faults move every page but the first.
        let start = if start > 0 {
            start.saturating_add_signed(faults.shift())
        } else {
            start
        };
        let items: Vec<Message> = rec
            .messages
            .iter()
            .skip(start)
            .take(limit)
            .cloned()
            .collect();
        let has_more = start.saturating_add(items.len()) < total;
        let next = if has_more {
            items.last().map(|m| m.id.clone())
        } else {
            None
        };
        let obj = meta.as_object_mut().expect("built as an object");
        obj.insert("limit".into(), limit.into());
        obj.insert("total".into(), total.into());
        obj.insert("hasMore".into(), has_more.into());
        obj.insert("nextCursor".into(), next.map_or(Value::Null, Value::String));
        Ok(Page { items, meta })
    }

    /// Resolves where a message goes, creating the chat when the destination
    /// asks for it. Returns the chat and the participants that joined.
    pub fn resolve_destination(
        &self,
        caller: &Caller,
        to: Destination,
    ) -> Result<(Chat, Vec<Participant>), Refusal> {
        match to {
            Destination::Chat(id) => Ok((self.chat(caller, &id)?, Vec::new())),
            Destination::Key { key, recipients } => {
                let (chat, _, joined) =
                    self.create_chat(caller, recipients, Some(key), None, None)?;
                Ok((chat, joined))
            }
            Destination::Recipients(recipients) => {
                let (chat, _, joined) = self.create_chat(caller, recipients, None, None, None)?;
                Ok((chat, joined))
            }
        }
    }

    /// Persists a message from `sender` (any entity id) in a chat and returns
    /// it with the chat as it now stands.
    pub fn persist(
        &self,
        chat_id: &str,
        sender: Option<&str>,
        new: NewMessage,
        id: Option<Id>,
        stream_id: Option<String>,
    ) -> Result<(Message, Chat), Refusal> {
        let mut s = self.lock();
        let rec = s
            .chats
            .get_mut(chat_id)
            .ok_or_else(|| Refusal::NotFound(format!("Chat {chat_id} not found")))?;
        let now = now_iso();
        let message = Message {
            id: id.unwrap_or_else(|| self.ids.next()),
            content: new.content,
            content_delta: None,
            chat_id: chat_id.to_string(),
            chat_key: new.chat_key.or_else(|| rec.chat.key.clone()),
            instructions: Vec::new(),
            is_streaming: false,
            notes: Vec::new(),
            responded_to_id: new.responded_to_id,
            response_url: new.response_url,
            sender_id: sender.map(str::to_string),
            state: new.state,
            stream_id,
            stream_response: new.stream_response,
            kind: if new.kind.is_empty() {
                Message::default_type()
            } else {
                new.kind
            },
            created_at: now.clone(),
            updated_at: now.clone(),
            attachments: new.attachments,
            citations: Vec::new(),
        };
        let keep = self.history.load(Ordering::Relaxed);
        let mut forgotten = Vec::new();
        while keep > 0 && rec.messages.len() >= keep {
            let Some(old) = rec.messages.pop_front() else {
                break;
            };
            forgotten.push(old.id);
        }
        rec.messages.push_back(message.clone());
        rec.chat.latest_message_id = Some(message.id.clone());
        rec.chat.updated_at = now;
        let chat = rec.chat.clone();
        for id in &forgotten {
            s.message_chat.remove(id);
        }
        self.forgotten
            .fetch_add(forgotten.len() as u64, Ordering::Relaxed);
        s.message_chat
            .insert(message.id.clone(), chat_id.to_string());
        Ok((message, chat))
    }

    /// The scripted agents in a chat that answer a message from `sender`.
    /// Agents never answer agents (no reply loops).
    pub fn responders(&self, chat_id: &str, sender: &Caller) -> Vec<Responder> {
        // Agents (and plugins speaking for them) never trigger scripted replies.
        if sender.entity.kind == EntityType::Agent
            || sender
                .acts_as
                .as_ref()
                .is_some_and(|p| p.kind == ParticipantType::Agent)
        {
            return Vec::new();
        }
        let s = self.lock();
        let Some(rec) = s.chats.get(chat_id) else {
            return Vec::new();
        };
        // A plugin-backed agent answers through its plugin, not a script.
        let plugin_backed = |id: &str| {
            s.instances.values().any(|i| {
                i.entity_id == id && i.events.iter().any(|e| e == "AGENT_MESSAGE_RECEIVED")
            })
        };
        rec.participants
            .iter()
            .filter(|p| {
                p.kind == ParticipantType::Agent
                    && p.id != sender.entity.id
                    && !plugin_backed(&p.id)
            })
            .filter_map(|p| s.agents.get(&p.id))
            .filter_map(|a| {
                a.script.clone().map(|script| Responder {
                    agent: a.clone(),
                    script,
                })
            })
            .collect()
    }

    // ---- plugins ----

    /// A message by id (for `responseUrl` lookups).
    pub fn message(&self, id: &str) -> Option<Message> {
        let s = self.lock();
        let chat = s.message_chat.get(id)?;
        s.chats
            .get(chat)?
            .messages
            .iter()
            .find(|m| m.id == id)
            .cloned()
    }
}
