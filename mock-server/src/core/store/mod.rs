//! The mock's state and every rule that reads or changes it.
//!
//! REST handlers and socket.io handlers both call into [`Store`]; neither
//! holds protocol rules of its own. The state sits behind one std `Mutex`:
//! every operation is a short, synchronous critical section with no `.await`
//! inside, which is cheaper than an async lock and cannot deadlock across
//! tasks.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::model::{
    Agent, AppIntegration, Chat, Entity, EntityType, Id, Message, Participant, ParticipantType,
    Repository, Script, User,
};
use crate::world::{TokenRecord, World, WorldChat};

mod agents;
mod auth;
mod chats;
mod messages;
mod plugins;
mod repositories;

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
    /// Oldest first; past the history bound the oldest is forgotten.
    messages: VecDeque<Message>,
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
///
/// A world that already holds ids of this form (one dumped from a running
/// mock, or replayed from a capture of one) moves the counter past them, so
/// a new id never collides with a loaded one.
#[derive(Debug)]
pub struct IdGen {
    next: AtomicU64,
    first: u64,
}

impl IdGen {
    const PREFIX: u32 = 0x69a0_0000;

    pub fn new() -> Self {
        IdGen::after(std::iter::empty())
    }

    /// A generator whose ids come after every id of this form in `taken`.
    pub fn after<'a>(taken: impl Iterator<Item = &'a str>) -> Self {
        let prefix = format!("{:08x}", Self::PREFIX);
        let first = taken
            .filter_map(|id| id.strip_prefix(prefix.as_str()))
            .filter_map(|rest| u64::from_str_radix(rest, 16).ok())
            .max()
            .map_or(1, |n| n.saturating_add(1));
        IdGen {
            next: AtomicU64::new(first),
            first,
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
        self.next.store(self.first, Ordering::Relaxed);
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
    /// Messages a chat keeps (0: no bound; `--history`).
    history: AtomicUsize,
    /// Chats, agents, plugins, installations and repositories the store
    /// holds, of each kind (0: no bound; `--max-objects`).
    max_objects: AtomicUsize,
    /// Messages forgotten past the bound since the start (stats).
    pub forgotten: AtomicU64,
}

impl Store {
    pub fn new(world: World) -> Self {
        let ids = IdGen::after(
            world
                .chats
                .iter()
                .map(|c| c.chat.id.as_str())
                .chain(world.messages.iter().map(|m| m.id.as_str()))
                .chain(world.users.iter().map(|u| u.id.as_str()))
                .chain(world.agents.iter().map(|a| a.id.as_str()))
                .chain(world.repositories.iter().map(|r| r.id.as_str()))
                .chain(world.plugins.iter().map(|p| p.id.as_str()))
                .chain(world.plugin_instances.iter().map(|p| p.id.as_str())),
        );
        let store = Store {
            state: Mutex::new(State::default()),
            ids,
            world: Mutex::new(world),
            history: AtomicUsize::new(0),
            max_objects: AtomicUsize::new(0),
            forgotten: AtomicU64::new(0),
        };
        store.reset();
        store
    }

    /// How many messages a chat keeps before it forgets its oldest (0: no
    /// bound).
    pub fn set_history(&self, keep: usize) {
        self.history.store(keep, Ordering::Relaxed);
    }

    /// How many chats, agents, plugins, installations and repositories the
    /// clients may create, of each kind (0: no bound).
    pub fn set_max_objects(&self, max: usize) {
        self.max_objects.store(max, Ordering::Relaxed);
    }

    /// Refuses one more of `what` past `--max-objects`.
    fn room_for(&self, what: &str, held: usize) -> Result<(), Refusal> {
        Refusal::unless_room_for(what, held, self.max_objects.load(Ordering::Relaxed))
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
                    messages: VecDeque::new(),
                    repositories: Vec::new(),
                },
            );
        }
        let mut messages = world.messages;
        messages.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
        for m in messages {
            s.message_chat.insert(m.id.clone(), m.chat_id.clone());
            if let Some(rec) = s.chats.get_mut(&m.chat_id) {
                // A world may load more than the bound; the next message
                // stored trims the chat.
                rec.messages.push_back(m);
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
            thenvoi: base.thenvoi,
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
        let taken = ["69a000000000000000000004", "6832df10b749a23a30105dba"];
        let g = IdGen::after(taken.into_iter());
        assert_eq!(g.next(), "69a000000000000000000005");
        g.reset();
        assert_eq!(
            g.next(),
            "69a000000000000000000005",
            "reset keeps clear of the world"
        );
    }
}
