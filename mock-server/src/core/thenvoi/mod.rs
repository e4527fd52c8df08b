//! The Thenvoi (Band) profile's state and rules: who is who, rooms and
//! their participants, messages with mentions, and each agent's delivery
//! record of the messages addressed to it (docs/THENVOI.md).
//!
//! The profile shares the core's machinery with ProteusAI (the journal,
//! the fault registry, the outboxes through which events leave, reset and
//! shutdown) and keeps its own objects ([`crate::model::thenvoi`]):
//! snake_case, uuids, mentions and the claim lifecycle have no ProteusAI
//! counterpart. Like [`super::store`], the state sits behind one std
//! `Mutex` with short synchronous critical sections; pushes leave after the
//! lock is released ([`flow`]).
//!
//! # Layout
//! - this file: the state, the directory (keys, tokens), rooms and
//!   participants.
//! - [`messages`]: sending, events, the lists an agent or a user reads, and
//!   the lifecycle state machine (T40-T48).
//! - [`flow`]: what happens around a change: the pushes it causes (with
//!   the mention rule and its faults), delivery marks, scripted peers.
//! - [`peers`]: the world's scripted agents (echo, fail-first).

pub mod flow;
pub mod messages;
pub mod peers;

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use foldhash::HashMap;
use serde_json::{Value, json};

use super::error::Refusal;
use crate::model::thenvoi::{
    Agent, Delivery, Id, Kind, Member, Message, Room, User, World, WorldRoom,
};

/// The faults [`Rooms::add_member`] may be loosened by (T36).
#[derive(Debug, Clone, Copy, Default)]
pub struct AddRules {
    /// Any participant may add, not only an owner or admin agent.
    pub any_role: bool,
    /// Adding a participant already in the room succeeds.
    pub duplicate_ok: bool,
}

/// Who a key or token acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: Id,
    pub kind: Kind,
    pub name: String,
    /// An agent's owner.
    pub owner_id: Option<Id>,
}

/// A stored message and, for each agent it is addressed to, that agent's
/// delivery record (T40).
#[derive(Debug, Clone)]
struct Stored {
    message: Message,
    records: HashMap<Id, Delivery>,
}

#[derive(Debug, Clone)]
struct RoomRecord {
    room: Room,
    /// Participants in the order they joined (listings keep it).
    members: Vec<Member>,
    /// Where each participant is in `members`: every send looks up each
    /// mention and the sender, and a room may have hundreds of members.
    by_id: HashMap<Id, usize>,
    /// Oldest first; appended to, and forgotten from the front past the
    /// history bound (see [`RoomRecord::post`]).
    messages: VecDeque<Stored>,
    /// Messages forgotten from the front so far.
    forgotten: usize,
    /// Each message's number (its place in `messages` plus `forgotten`): a
    /// lifecycle call names one, and a room may hold many.
    message_at: HashMap<Id, usize>,
}

impl RoomRecord {
    fn new(room: Room, members: Vec<Member>) -> RoomRecord {
        let mut r = RoomRecord {
            room,
            members,
            by_id: HashMap::default(),
            messages: VecDeque::new(),
            forgotten: 0,
            message_at: HashMap::default(),
        };
        r.reindex();
        r
    }

    fn reindex(&mut self) {
        self.by_id = self
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| (m.id.clone(), i))
            .collect();
    }

    /// Stores a message; past `keep` messages (0: no bound) the oldest is
    /// forgotten. Returns how many were.
    fn post(&mut self, stored: Stored, keep: usize) -> usize {
        let mut dropped = 0;
        while keep > 0 && self.messages.len() >= keep {
            let Some(old) = self.messages.pop_front() else {
                break;
            };
            self.message_at.remove(&old.message.id);
            self.forgotten += 1;
            dropped += 1;
        }
        self.message_at.insert(
            stored.message.id.clone(),
            self.forgotten + self.messages.len(),
        );
        self.messages.push_back(stored);
        dropped
    }

    fn message(&self, id: &str) -> Option<&Stored> {
        let i = self.message_at.get(id)? - self.forgotten;
        self.messages.get(i)
    }

    fn message_mut(&mut self, id: &str) -> Option<&mut Stored> {
        let i = self.message_at.get(id)? - self.forgotten;
        self.messages.get_mut(i)
    }

    fn member(&self, id: &str) -> Option<&Member> {
        self.by_id.get(id).map(|&i| &self.members[i])
    }

    fn has(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    fn add(&mut self, member: Member) {
        self.by_id.insert(member.id.clone(), self.members.len());
        self.members.push(member);
    }

    fn remove(&mut self, i: usize) -> Member {
        let member = self.members.remove(i);
        self.reindex();
        member
    }
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<Id, User>,
    agents: HashMap<Id, Agent>,
    /// Agents in world order (peers list in a stable order).
    agent_order: Vec<Id>,
    keys: HashMap<String, (Kind, Id)>,
    tokens: HashMap<String, Id>,
    rooms: HashMap<Id, RoomRecord>,
    /// Rooms in creation order (lists are oldest first).
    room_order: Vec<Id>,
}

/// Deterministic uuids: a fixed prefix, then a counter. Same run, same ids.
#[derive(Debug, Default)]
pub struct UuidGen(AtomicU64);

impl UuidGen {
    pub fn next(&self) -> Id {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        format!("7e570000-0000-4000-8000-{n:012x}")
    }

    fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

/// Now as RFC 3339 UTC with microseconds (T24).
pub fn now() -> String {
    let us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    let millis = super::store::iso_from_millis((us / 1000) as i64);
    format!("{}{:03}Z", millis.trim_end_matches('Z'), us % 1000)
}

/// The Thenvoi state, reset to its world like the ProteusAI store.
#[derive(Debug)]
pub struct Rooms {
    state: Mutex<State>,
    pub ids: UuidGen,
    world: Mutex<World>,
    /// Messages a room keeps (0: no bound; `--history`).
    history: AtomicUsize,
    /// Rooms and agents the clients may create, of each kind (0: no
    /// bound; `--max-objects`).
    max_objects: AtomicUsize,
    /// Messages forgotten past the bound since the start (stats).
    pub forgotten: AtomicU64,
}

fn not_found(what: &str, id: &str) -> Refusal {
    Refusal::NotFound(format!("{what} {id} not found"))
}

impl Rooms {
    pub fn new(world: World) -> Rooms {
        let rooms = Rooms {
            state: Mutex::new(State::default()),
            ids: UuidGen::default(),
            world: Mutex::new(world),
            history: AtomicUsize::new(0),
            max_objects: AtomicUsize::new(0),
            forgotten: AtomicU64::new(0),
        };
        rooms.reset();
        rooms
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many messages a room keeps before it forgets its oldest (0: no
    /// bound).
    pub fn set_history(&self, keep: usize) {
        self.history.store(keep, Ordering::Relaxed);
    }

    /// How many rooms and agents the clients may create, of each kind (0:
    /// no bound).
    pub fn set_max_objects(&self, max: usize) {
        self.max_objects.store(max, Ordering::Relaxed);
    }

    fn room_for(&self, what: &str, held: usize) -> Result<(), Refusal> {
        Refusal::unless_room_for(what, held, self.max_objects.load(Ordering::Relaxed))
    }

    fn keep(&self) -> usize {
        self.history.load(Ordering::Relaxed)
    }

    /// Notes messages forgotten past the bound.
    fn forgot(&self, n: usize) {
        if n > 0 {
            self.forgotten.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// Back to the loaded world, ids restarting from the same counter.
    pub fn reset(&self) {
        let world = self.world.lock().unwrap_or_else(|p| p.into_inner()).clone();
        self.ids.reset();
        let mut s = State::default();
        for u in world.users {
            s.keys.insert(u.api_key.clone(), (Kind::User, u.id.clone()));
            if let Some(t) = &u.token {
                s.tokens.insert(t.clone(), u.id.clone());
            }
            s.users.insert(u.id.clone(), u);
        }
        for a in world.agents {
            s.keys
                .insert(a.api_key.clone(), (Kind::Agent, a.id.clone()));
            s.agent_order.push(a.id.clone());
            s.agents.insert(a.id.clone(), a);
        }
        for r in world.rooms {
            s.room_order.push(r.room.id.clone());
            let record = RoomRecord::new(r.room, r.participants);
            s.rooms.insert(record.room.id.clone(), record);
        }
        for m in world.messages {
            if let Some(r) = s.rooms.get_mut(&m.chat_room_id) {
                let records = messages::addressed(&m)
                    .map(|a| (a.to_string(), Delivery::default()))
                    .collect();
                // A world may load more than the bound; the next message
                // stored trims the room.
                r.post(
                    Stored {
                        message: m,
                        records,
                    },
                    0,
                );
            }
        }
        *self.lock() = s;
    }

    /// The world this state resets to.
    pub fn world(&self) -> World {
        self.world.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Makes `world` the one this state resets to (from the next reset).
    pub fn set_world(&self, world: World) {
        *self.world.lock().unwrap_or_else(|p| p.into_inner()) = world;
    }

    /// The live state as a world file part (`/__admin/world`).
    pub fn snapshot(&self) -> World {
        let s = self.lock();
        let mut world = self.world();
        world.rooms = s
            .room_order
            .iter()
            .filter_map(|id| s.rooms.get(id))
            .map(|r| WorldRoom {
                room: r.room.clone(),
                participants: r.members.clone(),
            })
            .collect();
        world.messages = s
            .room_order
            .iter()
            .filter_map(|id| s.rooms.get(id))
            .flat_map(|r| r.messages.iter().map(|m| m.message.clone()))
            .collect();
        world
    }

    /// (rooms, messages), for `/__admin/stats`.
    pub fn sizes(&self) -> (usize, usize) {
        let s = self.lock();
        let messages = s.rooms.values().map(|r| r.messages.len()).sum();
        (s.rooms.len(), messages)
    }

    /// Who an API key acts as.
    pub fn by_key(&self, key: &str) -> Option<Principal> {
        let s = self.lock();
        let (kind, id) = s.keys.get(key)?;
        principal(&s, *kind, id)
    }

    /// Who a socket `token=` acts as (a user).
    pub fn by_token(&self, token: &str) -> Option<Principal> {
        let s = self.lock();
        let id = s.tokens.get(token)?;
        principal(&s, Kind::User, id)
    }

    /// An agent by id.
    pub fn agent(&self, id: &str) -> Option<Agent> {
        self.lock().agents.get(id).cloned()
    }

    /// The first agent of the world (the `thenvoi-accept-bad-key` fault).
    pub fn first_agent(&self) -> Option<Principal> {
        let s = self.lock();
        let id = s.agent_order.first()?;
        principal(&s, Kind::Agent, id)
    }

    /// Scripted agents of the world and what they do.
    pub fn scripted(&self, ids: &[Id]) -> Vec<(Principal, crate::model::thenvoi::PeerScript)> {
        let s = self.lock();
        ids.iter()
            .filter_map(|id| {
                let script = s.agents.get(id)?.script?;
                Some((principal(&s, Kind::Agent, id)?, script))
            })
            .collect()
    }

    /// Whether `entity` takes part in `room` (a deleted room has no one).
    pub fn is_participant(&self, room: &str, entity: &str) -> bool {
        self.lock().rooms.get(room).is_some_and(|r| r.has(entity))
    }

    /// `entity`'s role in `room`, if it takes part.
    pub fn role_of(&self, room: &str, entity: &str) -> Option<String> {
        self.lock()
            .rooms
            .get(room)?
            .members
            .iter()
            .find(|m| m.id == entity)
            .map(|m| m.role.clone())
    }

    /// Whether `id` is a user.
    pub fn is_user(&self, id: &str) -> bool {
        self.lock().users.contains_key(id)
    }

    /// A user or agent as a participant object with role `member`, whether
    /// or not it takes part in a room.
    pub fn participant_of(&self, id: &str) -> Option<Value> {
        let s = self.lock();
        let kind = if s.users.contains_key(id) {
            Kind::User
        } else if s.agents.contains_key(id) {
            Kind::Agent
        } else {
            return None;
        };
        let member = Member {
            id: id.to_string(),
            kind,
            role: "member".into(),
        };
        Some(member_object(&s, &member))
    }

    /// `GET /agent/me` (T38).
    pub fn agent_me(&self, id: &str) -> Option<Value> {
        let a = self.agent(id)?;
        Some(json!({
            "id": a.id, "name": a.name, "description": a.description, "handle": a.handle,
            "owner_uuid": a.owner_id, "inserted_at": a.inserted_at, "updated_at": a.inserted_at,
            "feature_flags": {},
        }))
    }

    /// Who `agent` may recruit (T38): the owner's other agents and the
    /// owner, never itself; `not_in` leaves out a room's participants.
    pub fn peers(&self, agent: &Principal, not_in: Option<&str>) -> Vec<Value> {
        let s = self.lock();
        let excluded: Vec<&str> = not_in
            .and_then(|r| s.rooms.get(r))
            .map(|r| r.members.iter().map(|m| m.id.as_str()).collect())
            .unwrap_or_default();
        let mut out = Vec::new();
        if let Some(owner) = agent.owner_id.as_deref().and_then(|o| s.users.get(o))
            && !excluded.contains(&owner.id.as_str())
        {
            out.push(json!({
                "id": owner.id, "name": owner.name, "type": "User", "handle": owner.handle,
                "is_contact": false, "source": "registry",
            }));
        }
        for a in s.agent_order.iter().filter_map(|id| s.agents.get(id)) {
            if a.id == agent.id
                || Some(&a.owner_id) != agent.owner_id.as_ref()
                || excluded.contains(&a.id.as_str())
            {
                continue;
            }
            out.push(json!({
                "id": a.id, "name": a.name, "type": "Agent", "handle": a.handle,
                "description": a.description, "is_external": a.is_external,
                "is_contact": false, "source": "registry",
            }));
        }
        out
    }

    /// The rooms `entity` takes part in, oldest first (T37).
    pub fn rooms_of(&self, entity: &str) -> Vec<Room> {
        let s = self.lock();
        s.room_order
            .iter()
            .filter_map(|id| s.rooms.get(id))
            .filter(|r| r.has(entity))
            .map(|r| r.room.clone())
            .collect()
    }

    /// A room `caller` takes part in; 404 otherwise (its existence is not
    /// revealed, T31), unless `foreign_ok` (a fault).
    pub fn room(&self, caller: &Principal, id: &str, foreign_ok: bool) -> Result<Room, Refusal> {
        let s = self.lock();
        let r = s.rooms.get(id).ok_or_else(|| not_found("chat", id))?;
        if !foreign_ok && !r.has(&caller.id) {
            return Err(not_found("chat", id));
        }
        Ok(r.room.clone())
    }

    /// A new room with `caller` as its owner (T37, T51).
    pub fn create_room(&self, caller: &Principal, task_id: Option<Id>) -> Result<Room, Refusal> {
        let mut s = self.lock();
        self.room_for("rooms", s.rooms.len())?;
        let at = now();
        let id = self.ids.next();
        let room = Room {
            // The room events' payloads need a title (T28); none is given.
            title: Some(format!("Room {}", &id[id.len() - 6..])),
            id,
            task_id,
            inserted_at: at.clone(),
            updated_at: at,
        };
        s.room_order.push(room.id.clone());
        s.rooms.insert(
            room.id.clone(),
            RoomRecord::new(
                room.clone(),
                vec![Member {
                    id: caller.id.clone(),
                    kind: caller.kind,
                    role: "owner".into(),
                }],
            ),
        );
        Ok(room)
    }

    /// A room's participants as the lists show them (T36).
    pub fn participants(&self, room: &str) -> Vec<Value> {
        let s = self.lock();
        s.rooms
            .get(room)
            .map(|r| r.members.iter().map(|m| member_object(&s, m)).collect())
            .unwrap_or_default()
    }

    /// Adds `id` to `room` (T36, T51): an agent caller must be an owner or
    /// admin of the room and may add its peers; a user may add any user and
    /// its own agents. Returns the participant object. `lenient` holds the
    /// faults that let a plain member add, or a participant be added twice.
    pub fn add_member(
        &self,
        caller: &Principal,
        room: &str,
        id: &str,
        role: &str,
        lenient: AddRules,
    ) -> Result<(Member, Value), Refusal> {
        let mut s = self.lock();
        let kind = if s.users.contains_key(id) {
            Kind::User
        } else if s.agents.contains_key(id) {
            Kind::Agent
        } else {
            return Err(not_found("participant", id));
        };
        let recruitable = match (caller.kind, kind) {
            (Kind::User, Kind::User) => true,
            (Kind::User, Kind::Agent) => s.agents.get(id).is_some_and(|a| a.owner_id == caller.id),
            (Kind::Agent, Kind::User) => caller.owner_id.as_deref() == Some(id),
            (Kind::Agent, Kind::Agent) => {
                id != caller.id && s.agents.get(id).map(|a| &a.owner_id) == caller.owner_id.as_ref()
            }
        };
        let r = s.rooms.get(room).ok_or_else(|| not_found("chat", room))?;
        if caller.kind == Kind::Agent
            && !lenient.any_role
            && !r
                .members
                .iter()
                .any(|m| m.id == caller.id && (m.role == "owner" || m.role == "admin"))
        {
            return Err(Refusal::Forbidden(
                "only an owner or admin of the chat may add participants".into(),
            ));
        }
        if !recruitable {
            return Err(not_found("participant", id));
        }
        if let Some(m) = r.member(id) {
            if lenient.duplicate_ok {
                let member = m.clone();
                return Ok((member.clone(), member_object(&s, &member)));
            }
            return Err(Refusal::Invalid(format!(
                "participant {id} is already in the chat"
            )));
        }
        let member = Member {
            id: id.to_string(),
            kind,
            role: role.to_string(),
        };
        let object = member_object(&s, &member);
        if let Some(r) = s.rooms.get_mut(room) {
            r.add(member.clone());
            r.room.updated_at = now();
        }
        Ok((member, object))
    }

    /// Removes `id` from `room`; an agent caller must be an owner or admin
    /// (or remove itself). Returns the participant as it was.
    pub fn remove_member(
        &self,
        caller: &Principal,
        room: &str,
        id: &str,
    ) -> Result<(Member, Value), Refusal> {
        let mut s = self.lock();
        let r = s.rooms.get(room).ok_or_else(|| not_found("chat", room))?;
        if caller.kind == Kind::Agent
            && caller.id != id
            && !r
                .members
                .iter()
                .any(|m| m.id == caller.id && (m.role == "owner" || m.role == "admin"))
        {
            return Err(Refusal::Forbidden(
                "only an owner or admin of the chat may remove participants".into(),
            ));
        }
        let Some(i) = r.members.iter().position(|m| m.id == id) else {
            return Err(not_found("participant", id));
        };
        let object = member_object(&s, &r.members[i]);
        let Some(r) = s.rooms.get_mut(room) else {
            return Err(not_found("chat", room));
        };
        let member = r.remove(i);
        Ok((member, object))
    }

    /// Registers a new agent of `owner` (T51): the agent and its key, shown
    /// once. Keys are deterministic like every other id.
    pub fn register_agent(
        &self,
        owner: &Principal,
        name: &str,
        description: Option<String>,
    ) -> Result<(Agent, String), Refusal> {
        let mut s = self.lock();
        self.room_for("agents", s.agents.len())?;
        let id = self.ids.next();
        let key = format!("thnv_a_{}", id.replace('-', ""));
        let slug: String = name
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let owner_handle = s.users.get(&owner.id).and_then(|u| u.handle.clone());
        let agent = Agent {
            id: id.clone(),
            name: name.to_string(),
            description,
            handle: owner_handle.map(|h| format!("{h}/{slug}")),
            owner_id: owner.id.clone(),
            api_key: key.clone(),
            is_external: true,
            inserted_at: now(),
            script: None,
        };
        s.keys.insert(key.clone(), (Kind::Agent, id.clone()));
        s.agent_order.push(id.clone());
        s.agents.insert(id, agent.clone());
        Ok((agent, key))
    }

    /// Deletes a room (mock only, T20): its participants as they were.
    pub fn delete_room(&self, room: &str) -> Result<(Room, Vec<Member>), Refusal> {
        let mut s = self.lock();
        let r = s
            .rooms
            .remove(room)
            .ok_or_else(|| not_found("chat", room))?;
        s.room_order.retain(|id| id != room);
        Ok((r.room, r.members))
    }
}

fn principal(s: &State, kind: Kind, id: &str) -> Option<Principal> {
    match kind {
        Kind::User => s.users.get(id).map(|u| Principal {
            id: u.id.clone(),
            kind,
            name: u.name.clone(),
            owner_id: None,
        }),
        Kind::Agent => s.agents.get(id).map(|a| Principal {
            id: a.id.clone(),
            kind,
            name: a.name.clone(),
            owner_id: Some(a.owner_id.clone()),
        }),
    }
}

fn member_object(s: &State, m: &Member) -> Value {
    crate::model::thenvoi::participant_object(m, s.users.get(&m.id), s.agents.get(&m.id))
}

/// A room as the REST APIs and `room_added` show it (T28, T37).
pub fn room_object(room: &Room) -> Value {
    json!({
        "id": room.id, "title": room.title, "task_id": room.task_id,
        "inserted_at": room.inserted_at, "updated_at": room.updated_at,
    })
}
