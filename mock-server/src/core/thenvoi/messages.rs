//! Messages of a room: sending (text with mentions), events, the lists an
//! agent or a user reads, and the agent message lifecycle (docs/THENVOI.md
//! T34-T48).
//!
//! A message is **addressed** to the agents it mentions, except its sender
//! (T40); only they get a delivery record, and the lifecycle calls, the
//! agent's `/messages` and `/next` see nothing else.

use foldhash::HashMap;
use serde_json::{Map, Value};

use super::{Principal, Rooms, Stored, not_found, now};
use crate::core::error::Refusal;
use crate::model::thenvoi::{Attempt, Delivery, Kind, Mention, Message, Recipient, Status};

/// The agents a message is addressed to (T40): text, mentioned, not the sender.
pub fn addressed(m: &Message) -> impl Iterator<Item = &str> {
    let text = m.message_type == "text";
    m.mentions
        .iter()
        .map(|x| x.id.as_str())
        .filter(move |id| text && *id != m.sender_id)
}

/// The faults a sent message's mentions may be let through by (T34).
#[derive(Debug, Clone, Copy, Default)]
pub struct Mentions {
    /// No mention at all.
    pub optional: bool,
    /// Mentions of someone who is not a participant.
    pub anyone: bool,
}

/// What an agent's `/messages?status=` lists (T48).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// No `status`: everything not processed.
    Open,
    Pending,
    Processing,
    Processed,
    Failed,
    All,
}

impl Filter {
    pub fn parse(s: Option<&str>) -> Option<Filter> {
        Some(match s {
            None => Filter::Open,
            Some("pending") => Filter::Pending,
            Some("processing") => Filter::Processing,
            Some("processed") => Filter::Processed,
            Some("failed") => Filter::Failed,
            Some("all") => Filter::All,
            Some(_) => return None,
        })
    }

    /// The name `metadata.status_filter` shows.
    pub fn name(self) -> &'static str {
        match self {
            Filter::Open => "open",
            Filter::Pending => "pending",
            Filter::Processing => "processing",
            Filter::Processed => "processed",
            Filter::Failed => "failed",
            Filter::All => "all",
        }
    }

    fn admits(self, status: Option<Status>) -> bool {
        match self {
            Filter::Open => status != Some(Status::Processed),
            Filter::Pending => matches!(status, None | Some(Status::Delivered | Status::Failed)),
            Filter::Processing => status == Some(Status::Processing),
            Filter::Processed => status == Some(Status::Processed),
            Filter::Failed => status == Some(Status::Failed),
            Filter::All => true,
        }
    }
}

/// A lifecycle call (T41-T44).
#[derive(Debug, Clone)]
pub enum Claim {
    Processing,
    Processed,
    Failed(String),
}

/// How `/messages/next` picks (T47); anything but the default is a fault.
#[derive(Debug, Clone, Copy, Default)]
pub struct Next {
    /// Answer the `skip`-th candidate after the oldest.
    pub skip: usize,
    /// Processed messages are candidates too.
    pub processed_too: bool,
    /// Messages still processing are not candidates.
    pub skip_processing: bool,
}

/// What the lifecycle state machine lets through (T41-T45); anything but
/// the default is a fault.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClaimRules {
    /// Finish a message without an active attempt.
    pub without_attempt: bool,
    /// Number attempts from 0.
    pub from_zero: bool,
    /// `/processing` on a processing message keeps its attempt.
    pub keep_attempt: bool,
    /// A message of the room not addressed to the caller gets a record.
    pub any_message: bool,
}

/// Whether a message of a room is addressed to an agent (T40, T45).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressee {
    NoMessage,
    NotAddressed,
    /// Addressed, with the agent's delivery status.
    Addressed(Option<Status>),
}

/// A message's mentions as the sender gave them: `id` required, `name` and
/// `handle` optional (T34).
#[derive(Debug, Clone)]
pub struct MentionIn {
    pub id: String,
    pub name: Option<String>,
    pub handle: Option<String>,
}

impl Rooms {
    /// Stores a text message of `caller` (T34); returns it and the
    /// recipients (the mentioned participants). `lenient` holds the faults
    /// that let a message without mentions, or mentioning someone who is
    /// not a participant, through.
    pub fn send(
        &self,
        caller: &Principal,
        room: &str,
        content: &str,
        mentions: Vec<MentionIn>,
        lenient: Mentions,
    ) -> Result<(Message, Vec<Recipient>), Refusal> {
        let Mentions {
            optional: mention_optional,
            anyone: mention_anyone,
        } = lenient;
        if content.is_empty() {
            return Err(Refusal::Invalid("message.content must not be empty".into()));
        }
        if mentions.is_empty() && !mention_optional {
            return Err(Refusal::Invalid(
                "message.mentions needs at least one mention: {\"id\": \"<participant uuid>\"}"
                    .into(),
            ));
        }
        let mut s = self.lock();
        let r = s.rooms.get(room).ok_or_else(|| not_found("chat", room))?;
        let mut stored_mentions = Vec::new();
        let mut recipients = Vec::new();
        for m in mentions {
            let kind = match r.member(&m.id) {
                Some(member) => member.kind,
                None if mention_anyone && s.users.contains_key(&m.id) => Kind::User,
                None if mention_anyone => Kind::Agent,
                None => {
                    return Err(Refusal::Invalid(format!(
                        "mentioned {} is not a participant of chat {room}",
                        m.id
                    )));
                }
            };
            let (name, handle) = match kind {
                Kind::User => s
                    .users
                    .get(&m.id)
                    .map(|u| (u.name.clone(), u.handle.clone())),
                Kind::Agent => s
                    .agents
                    .get(&m.id)
                    .map(|a| (a.name.clone(), a.handle.clone())),
            }
            .unwrap_or_default();
            recipients.push(Recipient {
                id: m.id.clone(),
                handle: handle.clone(),
                name: name.clone(),
            });
            if !stored_mentions.iter().any(|x: &Mention| x.id == m.id) {
                stored_mentions.push(Mention {
                    id: m.id,
                    name: Some(m.name.unwrap_or(name)),
                    handle: m.handle,
                });
            }
        }
        let at = now();
        let message = Message {
            id: self.ids.next(),
            chat_room_id: room.to_string(),
            content: content.to_string(),
            message_type: "text".into(),
            sender_id: caller.id.clone(),
            sender_type: caller.kind,
            sender_name: Some(caller.name.clone()),
            mentions: stored_mentions,
            extra: Map::new(),
            inserted_at: at.clone(),
            updated_at: at,
        };
        let records: HashMap<_, _> = addressed(&message)
            .map(|a| (a.to_string(), Delivery::default()))
            .collect();
        if let Some(r) = s.rooms.get_mut(room) {
            let forgot = r.post(
                Stored {
                    message: message.clone(),
                    records,
                },
                self.keep(),
            );
            self.forgot(forgot);
        }
        Ok((message, recipients))
    }

    /// Stores a non-text event of `caller` (T35).
    pub fn record_event(
        &self,
        caller: &Principal,
        room: &str,
        content: &str,
        message_type: &str,
        metadata: Map<String, Value>,
    ) -> Result<Message, Refusal> {
        const TYPES: [&str; 5] = ["tool_call", "tool_result", "thought", "error", "task"];
        if !TYPES.contains(&message_type) {
            return Err(Refusal::Invalid(format!(
                "event.message_type must be one of {}",
                TYPES.join(", ")
            )));
        }
        let mut s = self.lock();
        let r = s
            .rooms
            .get_mut(room)
            .ok_or_else(|| not_found("chat", room))?;
        let at = now();
        let message = Message {
            id: self.ids.next(),
            chat_room_id: room.to_string(),
            content: content.to_string(),
            message_type: message_type.to_string(),
            sender_id: caller.id.clone(),
            sender_type: caller.kind,
            sender_name: Some(caller.name.clone()),
            mentions: Vec::new(),
            extra: metadata,
            inserted_at: at.clone(),
            updated_at: at,
        };
        let forgot = r.post(
            Stored {
                message: message.clone(),
                records: HashMap::default(),
            },
            self.keep(),
        );
        self.forgot(forgot);
        Ok(message)
    }

    /// Marks the push of `message` written to `agents`' sockets (T41:
    /// none → `delivered`; later states stay).
    pub fn mark_delivered(&self, room: &str, message: &str, agents: &[String]) {
        let mut s = self.lock();
        let Some(stored) = s.rooms.get_mut(room).and_then(|r| r.message_mut(message)) else {
            return;
        };
        for a in agents {
            if let Some(record) = stored.records.get_mut(a)
                && record.status.is_none()
            {
                record.status = Some(Status::Delivered);
            }
        }
    }

    /// The messages addressed to `agent` in `room` that `filter` admits,
    /// oldest first (T48).
    pub fn agent_messages(&self, agent: &str, room: &str, filter: Filter) -> Vec<Value> {
        let s = self.lock();
        let Some(r) = s.rooms.get(room) else {
            return Vec::new();
        };
        r.messages
            .iter()
            .filter_map(|m| m.records.get(agent).map(|d| (m, d)))
            .filter(|(_, d)| filter.admits(d.status))
            .map(|(m, d)| m.message.rest_object(Some((agent, d))))
            .collect()
    }

    /// The oldest addressed message that is not processed (T47), or
    /// another under a fault (`how`).
    pub fn next(&self, agent: &str, room: &str, how: Next) -> Option<Value> {
        let s = self.lock();
        let r = s.rooms.get(room)?;
        r.messages
            .iter()
            .filter_map(|m| m.records.get(agent).map(|d| (m, d)))
            .filter(|(_, d)| how.processed_too || d.status != Some(Status::Processed))
            .filter(|(_, d)| !how.skip_processing || d.status != Some(Status::Processing))
            .nth(how.skip)
            .map(|(m, d)| m.message.rest_object(Some((agent, d))))
    }

    /// The agent's history for rehydration (T39): what it sent, of any
    /// type, and the text messages that mention it, oldest first.
    pub fn context(&self, agent: &str, room: &str) -> Vec<Value> {
        let s = self.lock();
        let Some(r) = s.rooms.get(room) else {
            return Vec::new();
        };
        r.messages
            .iter()
            .filter(|m| m.message.sender_id == agent || m.records.contains_key(agent))
            .map(|m| {
                m.message
                    .rest_object(m.records.get(agent).map(|d| (agent, d)))
            })
            .collect()
    }

    /// Every message of the room, every type, newest first (T51).
    pub fn user_messages(&self, room: &str) -> Vec<Value> {
        let s = self.lock();
        let Some(r) = s.rooms.get(room) else {
            return Vec::new();
        };
        r.messages
            .iter()
            .rev()
            .map(|m| m.message.rest_object(None))
            .collect()
    }

    /// Whether message `mid` of `room` is addressed to `agent` (T45).
    pub fn addressee(&self, agent: &str, room: &str, mid: &str) -> Addressee {
        let s = self.lock();
        let Some(m) = s.rooms.get(room).and_then(|r| r.message(mid)) else {
            return Addressee::NoMessage;
        };
        match m.records.get(agent) {
            Some(d) => Addressee::Addressed(d.status),
            None => Addressee::NotAddressed,
        }
    }

    /// A lifecycle call of `agent` on message `mid` of `room` (T41-T45):
    /// the new status and attempt number. `rules` holds the faults that
    /// loosen the state machine.
    pub fn claim(
        &self,
        agent: &str,
        room: &str,
        mid: &str,
        claim: &Claim,
        rules: ClaimRules,
    ) -> Result<(Status, u32), Refusal> {
        let mut s = self.lock();
        let record = s
            .rooms
            .get_mut(room)
            .and_then(|r| r.message_mut(mid))
            .and_then(|m| {
                if rules.any_message {
                    m.records.entry(agent.to_string()).or_default();
                }
                m.records.get_mut(agent)
            })
            .ok_or_else(|| {
                Refusal::NotFound(format!(
                    "message {mid} not found among the messages addressed to you in chat {room}"
                ))
            })?;
        let at = now();
        let active = record.status == Some(Status::Processing);
        let lenient = rules.without_attempt;
        match claim {
            Claim::Processing if active && rules.keep_attempt => {}
            Claim::Processing => {
                if let Some(open) = record.attempts.last_mut().filter(|_| active) {
                    // A new attempt supersedes the one still open (T42).
                    open.status = "failed".into();
                    open.completed_at = Some(at.clone());
                    open.error = Some("superseded by a new attempt".into());
                }
                let n = record.attempts.len() as u32 + u32::from(!rules.from_zero);
                record.attempts.push(Attempt {
                    attempt_number: n,
                    status: "processing".into(),
                    started_at: at,
                    completed_at: None,
                    error: None,
                });
                record.status = Some(Status::Processing);
                record.processed_at = None;
            }
            Claim::Processed | Claim::Failed(_) => {
                if !active && !lenient {
                    return Err(Refusal::Invalid(format!(
                        "message {mid} has no active attempt: POST .../processing first"
                    )));
                }
                let (status, attempt_status, error) = match claim {
                    Claim::Failed(e) => (Status::Failed, "failed", Some(e.clone())),
                    _ => (Status::Processed, "success", None),
                };
                if let Some(open) = record.attempts.last_mut().filter(|_| active) {
                    open.status = attempt_status.into();
                    open.completed_at = Some(at.clone());
                    open.error = error;
                }
                if status == Status::Processed {
                    record.processed_at = Some(at);
                }
                record.status = Some(status);
            }
        }
        let n = record.attempts.last().map_or(0, |a| a.attempt_number);
        Ok((record.status.unwrap_or(Status::Delivered), n))
    }
}

/// One page of `items` (T49): the page's items and its metadata.
pub fn paginate(items: Vec<Value>, page: usize, size: usize) -> (Vec<Value>, Value) {
    let size = size.clamp(1, 100);
    let total = items.len();
    let pages = total.div_ceil(size).max(1);
    let data = items
        .into_iter()
        .skip((page.saturating_sub(1)).saturating_mul(size))
        .take(size)
        .collect();
    // `has_more` and `limit`: the Band SDK reads them (SDK).
    let meta = serde_json::json!({
        "page": page, "page_size": size, "total_count": total, "total_pages": pages,
        "has_more": page < pages, "limit": size,
    });
    (data, meta)
}
