//! The mock's state and every rule that reads or changes it.
//!
//! REST handlers and socket.io handlers both call into [`Store`]; neither
//! holds protocol rules of its own. The state sits behind one std `Mutex`:
//! every operation is a short, synchronous critical section with no `.await`
//! inside, which is cheaper than an async lock and cannot deadlock across
//! tasks.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::model::{
    Agent, AppIntegration, Chat, Entity, EntityType, Id, Message, Participant, ParticipantType,
    Repository, Script, User,
};
use crate::world::{TokenRecord, World, WorldChat};

pub use crate::core::error::Refusal;

/// Who is calling: the entity a valid token acts as.
#[derive(Debug, Clone)]
pub struct Caller {
    pub entity: Entity,
    pub org_ids: Vec<Id>,
    /// For a plugin-instance token: the agent or app integration it acts as.
    pub acts_as: Option<Participant>,
    /// For a plugin-instance token: its scopes.
    pub scopes: Vec<String>,
}

impl Caller {
    pub fn user(entity: Entity, org_ids: Vec<Id>) -> Caller {
        Caller {
            entity,
            org_ids,
            acts_as: None,
            scopes: Vec::new(),
        }
    }

    /// Whether an instance token holds `scope` (other tokens need none).
    pub fn may(&self, scope: &str) -> bool {
        self.entity.kind != EntityType::PluginInstance || self.scopes.iter().any(|s| s == scope)
    }

    /// The participant this caller speaks as (an instance speaks as its entity).
    pub fn as_participant(&self) -> Option<Participant> {
        if let Some(p) = &self.acts_as {
            return Some(p.clone());
        }
        let kind = match self.entity.kind {
            EntityType::User => ParticipantType::User,
            EntityType::Agent => ParticipantType::Agent,
            EntityType::AppIntegration => ParticipantType::AppIntegration,
            EntityType::PluginInstance => return None,
        };
        Some(Participant {
            id: self.entity.id.clone(),
            kind,
        })
    }
}

/// What a new message carries, whatever transport it came through.
#[derive(Debug, Clone, Default)]
pub struct NewMessage {
    pub content: String,
    pub kind: String,
    pub attachments: Vec<Value>,
    pub stream_response: bool,
    pub state: Map<String, Value>,
    pub response_url: Option<String>,
    pub responded_to_id: Option<Id>,
    pub chat_key: Option<String>,
}

/// Where a message goes: an existing chat, or a chat found or created by key.
#[derive(Debug, Clone)]
pub enum Destination {
    Chat(Id),
    Key {
        key: String,
        recipients: Vec<Participant>,
    },
    Recipients(Vec<Participant>),
}

/// A page request, already validated.
#[derive(Debug, Clone)]
pub enum PageAt {
    Index(usize),
    After(Id),
}

#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<Message>,
    pub meta: Value,
}

/// A scripted agent that must answer a message.
#[derive(Debug, Clone)]
pub struct Responder {
    pub agent: Agent,
    pub script: Script,
}

#[derive(Debug, Clone)]
struct ChatRecord {
    chat: Chat,
    participants: Vec<Participant>,
    messages: Vec<Message>,
    repositories: Vec<Id>,
}

#[derive(Debug, Default)]
struct State {
    orgs: HashMap<Id, crate::model::Org>,
    users: HashMap<Id, User>,
    tokens: HashMap<String, TokenRecord>,
    agents: HashMap<Id, Agent>,
    app_integrations: HashMap<Id, AppIntegration>,
    repositories: HashMap<Id, Repository>,
    chats: HashMap<Id, ChatRecord>,
    /// (key scope, key) → chat id; the scope is an org id or the caller's id.
    chat_keys: HashMap<(Id, String), Id>,
    plugins: HashMap<Id, crate::model::Plugin>,
    instances: HashMap<Id, crate::model::PluginInstance>,
    /// message id → chat id, for cursors.
    message_chat: HashMap<Id, Id>,
}

/// Deterministic ids: a fixed 8-hex prefix that sorts after every id in the
/// documented examples, then a counter. Same run, same ids.
#[derive(Debug)]
pub struct IdGen {
    next: AtomicU64,
}

impl IdGen {
    const PREFIX: u32 = 0x69a0_0000;

    pub fn new() -> Self {
        IdGen {
            next: AtomicU64::new(1),
        }
    }

    pub fn next(&self) -> Id {
        format!(
            "{:08x}{:016x}",
            Self::PREFIX,
            self.next.fetch_add(1, Ordering::Relaxed)
        )
    }

    fn reset(&self) {
        self.next.store(1, Ordering::Relaxed);
    }
}

impl Default for IdGen {
    fn default() -> Self {
        Self::new()
    }
}

/// A world list as a map by its key (the inverse of [`by_key`]).
fn keyed<T>(items: Vec<T>, key: impl Fn(&T) -> &String) -> HashMap<String, T> {
    items.into_iter().map(|t| (key(&t).clone(), t)).collect()
}

/// A map's values ordered by key (stable world dumps).
fn by_key<T: Clone>(m: &HashMap<String, T>) -> Vec<T> {
    let mut v: Vec<(&String, &T)> = m.iter().collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    v.into_iter().map(|(_, t)| t.clone()).collect()
}

/// Now as ISO-8601 UTC with milliseconds (`2025-05-22T16:05:05.453Z`).
pub fn now_iso() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    iso_from_millis(ms as i64)
}

/// Formats milliseconds since the epoch (civil-from-days, proleptic Gregorian).
pub fn iso_from_millis(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (h, mi, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// All of the mock's protocol state.
#[derive(Debug)]
pub struct Store {
    state: Mutex<State>,
    pub ids: IdGen,
    world: Mutex<World>,
}

impl Store {
    pub fn new(world: World) -> Self {
        let store = Store {
            state: Mutex::new(State::default()),
            ids: IdGen::new(),
            world: Mutex::new(world),
        };
        store.reset();
        store
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock would be a bug; keep serving the state as it is.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How much the store holds: (chats, messages, tokens), for
    /// `/__admin/stats` (a reset must bring these back to the world's).
    pub fn sizes(&self) -> (usize, usize, usize) {
        let s = self.lock();
        let messages = s.chats.values().map(|c| c.messages.len()).sum();
        (s.chats.len(), messages, s.tokens.len())
    }

    /// Back to the loaded world, ids restarting from the same counter.
    pub fn reset(&self) {
        let world = self.world.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut s = State {
            orgs: keyed(world.orgs, |o| &o.id),
            users: keyed(world.users, |u| &u.id),
            tokens: keyed(world.tokens, |t| &t.token),
            agents: keyed(world.agents, |a| &a.id),
            app_integrations: keyed(world.app_integrations, |a| &a.id),
            repositories: keyed(world.repositories, |r| &r.id),
            plugins: keyed(world.plugins, |p| &p.id),
            instances: keyed(world.plugin_instances, |p| &p.id),
            ..State::default()
        };
        for WorldChat { chat, participants } in world.chats {
            if let Some(key) = &chat.key {
                let scope = chat
                    .org_id
                    .clone()
                    .or_else(|| participants.first().map(|p| p.id.clone()))
                    .unwrap_or_default();
                s.chat_keys.insert((scope, key.clone()), chat.id.clone());
            }
            s.chats.insert(
                chat.id.clone(),
                ChatRecord {
                    chat,
                    participants,
                    messages: Vec::new(),
                    repositories: Vec::new(),
                },
            );
        }
        let mut messages = world.messages;
        messages.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
        for m in messages {
            s.message_chat.insert(m.id.clone(), m.chat_id.clone());
            if let Some(rec) = s.chats.get_mut(&m.chat_id) {
                rec.messages.push(m);
            }
        }
        *self.lock() = s;
        self.ids.reset();
    }

    /// The current state as a world file (`GET /__admin/world`); loading it
    /// with `--world` gives the same state back.
    pub fn snapshot(&self) -> World {
        let base = self.world();
        let s = self.lock();
        let mut chats: Vec<WorldChat> = s
            .chats
            .values()
            .map(|r| WorldChat {
                chat: r.chat.clone(),
                participants: r.participants.clone(),
            })
            .collect();
        chats.sort_by(|a, b| a.chat.id.cmp(&b.chat.id));
        let mut messages: Vec<Message> = s
            .chats
            .values()
            .flat_map(|r| r.messages.iter().cloned())
            .collect();
        messages.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
        World {
            comment: base.comment,
            version: 1,
            orgs: by_key(&s.orgs),
            users: by_key(&s.users),
            tokens: by_key(&s.tokens),
            agents: by_key(&s.agents),
            app_integrations: by_key(&s.app_integrations),
            repositories: by_key(&s.repositories),
            plugins: by_key(&s.plugins),
            plugin_instances: by_key(&s.instances),
            chats,
            messages,
        }
    }

    /// Makes `world` the one this store resets to (from the next reset).
    pub fn set_world(&self, world: World) {
        *self.world.lock().unwrap_or_else(|p| p.into_inner()) = world;
    }

    /// Seeds `chats` chats of `owner` with `participants`, each holding
    /// `messages` messages alternating between the owner and the first
    /// participant; returns the chat ids.
    pub fn seed(
        &self,
        owner: &Caller,
        participants: Vec<Participant>,
        chats: usize,
        messages: usize,
    ) -> Result<Vec<Id>, Refusal> {
        let mut ids = Vec::with_capacity(chats);
        let other = participants.first().map(|p| p.id.clone());
        for _ in 0..chats {
            let (chat, _, _) = self.create_chat(
                owner,
                participants.clone(),
                None,
                Some("Seeded chat".into()),
                None,
            )?;
            for i in 0..messages {
                let sender = if i % 2 == 1 {
                    other.as_deref().unwrap_or(&owner.entity.id)
                } else {
                    &owner.entity.id
                };
                let new = NewMessage {
                    content: format!("Seeded message {}", i + 1),
                    kind: "TEXT".into(),
                    ..Default::default()
                };
                self.persist(&chat.id, Some(sender), new, None, None)?;
            }
            ids.push(chat.id);
        }
        Ok(ids)
    }

    /// A copy of the world this store resets to.
    pub fn world(&self) -> World {
        self.world.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

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

    fn visible(caller: &Caller, agent: &Agent) -> bool {
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

    fn participant_exists(s: &State, caller: &Caller, p: &Participant) -> Result<(), Refusal> {
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
                messages: Vec::new(),
                repositories: Vec::new(),
            },
        );
        Ok((chat, true, all))
    }

    fn member<'a>(s: &'a State, caller: &Caller, chat_id: &str) -> Result<&'a ChatRecord, Refusal> {
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

    /// One page of history (decisions.md 8–13).
    pub fn page(
        &self,
        caller: &Caller,
        chat_id: &str,
        at: PageAt,
        limit: usize,
        shift: isize,
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
        let start = if start > 0 {
            start.saturating_add_signed(shift)
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
        rec.messages.push(message.clone());
        rec.chat.latest_message_id = Some(message.id.clone());
        rec.chat.updated_at = now;
        let chat = rec.chat.clone();
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

    /// Registers a plugin whose webhook has passed the challenge.
    pub fn add_plugin(
        &self,
        caller: &Caller,
        mut plugin: crate::model::Plugin,
    ) -> Result<crate::model::Plugin, Refusal> {
        let mut s = self.lock();
        let org = match plugin.org_id.clone() {
            Some(o) => o,
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
        let now = now_iso();
        plugin.id = self.ids.next();
        plugin.org_id = Some(org);
        plugin.created_at = now.clone();
        plugin.updated_at = now;
        s.plugins.insert(plugin.id.clone(), plugin.clone());
        Ok(plugin)
    }

    fn plugin_visible(caller: &Caller, p: &crate::model::Plugin) -> bool {
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
    fn managed_org(s: &State, caller: &Caller, target: &Participant) -> Result<Id, Refusal> {
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
    fn mint_instance_token(&self) -> String {
        let mut rng = crate::core::replies::script::SplitMix::new(
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

    /// A chat's participants, unchecked (for event dispatch).
    pub fn participants_of(&self, chat_id: &str) -> Vec<Participant> {
        self.lock()
            .chats
            .get(chat_id)
            .map(|r| r.participants.clone())
            .unwrap_or_default()
    }

    // ---- repositories ----

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates_match_known_instants() {
        assert_eq!(iso_from_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            iso_from_millis(1_747_929_905_453),
            "2025-05-22T16:05:05.453Z"
        );
        assert_eq!(iso_from_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn ids_are_deterministic_and_sort_after_the_docs_examples() {
        let g = IdGen::new();
        let a = g.next();
        assert!(crate::model::is_object_id(&a));
        assert!(a.as_str() > "6832df10b749a23a30105dba");
        g.reset();
        assert_eq!(g.next(), a);
    }
}
