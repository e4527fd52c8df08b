//! Who listens on which Phoenix topic, and the core's outbox for pushes.
//!
//! A push is written straight to each subscriber's socket (see
//! [`super::wire`]), serialized and framed once and its bytes shared by
//! every receiver;
//! the mention rule arrives from the core as an [`Audience`], so the hub
//! only looks up subscribers: the users of a topic, and the listed agents
//! (one socket each, T14). A socket that keeps more than its bound, in
//! frames or in bytes, unwritten is cut as a slow consumer
//! (docs/SECURITY.md) rather than allowed to grow without bound.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use foldhash::HashMap;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::wire::{Sent, Wire, text_frame};
use crate::core::outbox::{Audience, Channel, Push, Sending};
use crate::core::{Emission, Outbox};
use crate::journal::{Journal, Kind as JournalKind, Note};
use crate::model::thenvoi::Kind;

/// Why a socket is being closed: the WebSocket close code and reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseWith(pub u16, pub &'static str);

/// One live socket, as the hub and its connection task share it.
#[derive(Debug)]
pub struct Conn {
    pub id: u64,
    pub entity: String,
    /// The entity's display name.
    pub name: String,
    /// When the socket connected.
    pub since: std::time::SystemTime,
    pub kind: Kind,
    /// The socket's write side, shared with its task.
    pub wire: Wire,
    /// Fired to close the socket; the reason is set first.
    pub closer: CancellationToken,
    pub close_with: Mutex<Option<CloseWith>>,
}

impl AsRef<Wire> for Conn {
    fn as_ref(&self) -> &Wire {
        &self.wire
    }
}

impl Conn {
    /// Bytes the kernel has not taken yet.
    pub fn queued(&self) -> u64 {
        self.wire.unsent()
    }

    /// Asks the connection task to close with `why` (the first reason wins).
    pub fn close(&self, why: CloseWith) {
        let mut w = self.close_with.lock().unwrap_or_else(|p| p.into_inner());
        if w.is_none() {
            *w = Some(why);
        }
        drop(w);
        self.closer.cancel();
    }

    /// Sends a Phoenix frame (JSON text).
    pub fn send_text(&self, text: &str) -> bool {
        self.send(&text_frame(text.as_bytes()))
    }

    /// Sends one framed WebSocket message; whether it is written or kept
    /// to be. A socket that keeps more than its bound unwritten is closed
    /// by its task (slow consumer) after what it keeps.
    pub fn send(&self, frame: &Bytes) -> bool {
        match self.wire.send(frame) {
            Sent::Written | Sent::Kept | Sent::OverBound => true,
            Sent::Gone => false,
        }
    }
}

/// Counters for `/__admin/stats`.
#[derive(Debug, Default)]
pub struct Stats {
    pub pushes: AtomicU64,
    pub frames_pushed: AtomicU64,
    pub slow_consumers_cut: AtomicU64,
}

/// A socket's subscription to a topic: the socket and its join's ref,
/// which every push on the topic carries (Phoenix does; the Band SDK drops
/// a push whose `join_ref` is not its join's).
#[derive(Debug, Clone)]
struct Sub {
    conn: Arc<Conn>,
    join_ref: Option<String>,
}

#[derive(Debug, Default)]
struct Topic {
    /// User sockets by connection id.
    users: HashMap<u64, Sub>,
    /// Agent sockets by agent id.
    agents: HashMap<String, Vec<Sub>>,
}

/// Topic subscriptions and live sockets.
#[derive(Debug)]
pub struct Hub {
    topics: RwLock<HashMap<String, Topic>>,
    /// Live sockets by connection id.
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    /// The live socket of each agent (T14).
    agents: Mutex<HashMap<String, Arc<Conn>>>,
    next: AtomicU64,
    journal: Arc<Journal>,
    pub stats: Stats,
}

impl Hub {
    pub fn new(journal: Arc<Journal>) -> Hub {
        Hub {
            topics: RwLock::default(),
            conns: Mutex::default(),
            agents: Mutex::default(),
            next: AtomicU64::new(0),
            journal,
            stats: Stats::default(),
        }
    }

    pub fn next_id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Registers a socket. For an agent, returns its previous socket unless
    /// `keep_old` (which then stays open: a fault).
    pub fn connect(&self, conn: &Arc<Conn>, keep_old: bool) -> Option<Arc<Conn>> {
        lock(&self.conns).insert(conn.id, conn.clone());
        if conn.kind != Kind::Agent {
            return None;
        }
        let mut agents = lock(&self.agents);
        let old = agents.insert(conn.entity.clone(), conn.clone());
        if keep_old { None } else { old }
    }

    /// Whether an agent has a live socket (`on_conflict=reject`).
    pub fn agent_online(&self, agent: &str) -> bool {
        lock(&self.agents).contains_key(agent)
    }

    /// Forgets a socket and its subscriptions.
    pub fn disconnect(&self, conn: &Arc<Conn>, topics: impl Iterator<Item = String>) {
        lock(&self.conns).remove(&conn.id);
        {
            let mut agents = lock(&self.agents);
            if agents.get(&conn.entity).is_some_and(|c| c.id == conn.id) {
                agents.remove(&conn.entity);
            }
        }
        for topic in topics {
            self.unsubscribe(&topic, conn);
        }
    }

    pub fn subscribe(&self, topic: &str, conn: &Arc<Conn>, join_ref: Option<String>) {
        let mut topics = self.topics.write().unwrap_or_else(|p| p.into_inner());
        let t = topics.entry(topic.to_string()).or_default();
        let sub = Sub {
            conn: conn.clone(),
            join_ref,
        };
        match conn.kind {
            Kind::User => {
                t.users.insert(conn.id, sub);
            }
            Kind::Agent => {
                let list = t.agents.entry(conn.entity.clone()).or_default();
                list.retain(|s| s.conn.id != conn.id);
                list.push(sub);
            }
        }
    }

    pub fn unsubscribe(&self, topic: &str, conn: &Conn) {
        let mut topics = self.topics.write().unwrap_or_else(|p| p.into_inner());
        let Some(t) = topics.get_mut(topic) else {
            return;
        };
        t.users.remove(&conn.id);
        if let Some(list) = t.agents.get_mut(&conn.entity) {
            list.retain(|s| s.conn.id != conn.id);
            if list.is_empty() {
                t.agents.remove(&conn.entity);
            }
        }
        if t.users.is_empty() && t.agents.is_empty() {
            topics.remove(topic);
        }
    }

    /// Whether `conn` is still subscribed to `topic` (a removed participant
    /// is dropped without a word, T21).
    pub fn is_subscribed(&self, topic: &str, conn: &Conn) -> bool {
        let topics = self.topics.read().unwrap_or_else(|p| p.into_inner());
        topics.get(topic).is_some_and(|t| {
            t.users.contains_key(&conn.id)
                || t.agents
                    .get(&conn.entity)
                    .is_some_and(|l| l.iter().any(|s| s.conn.id == conn.id))
        })
    }

    /// Pushes `event` to one socket on `topic`, if it joined it.
    pub fn push_to(&self, topic: &str, conn: &Conn, event: &str, payload: &Value) {
        let topics = self.topics.read().unwrap_or_else(|p| p.into_inner());
        let Some(t) = topics.get(topic) else { return };
        let sub = t.users.get(&conn.id).or_else(|| {
            t.agents
                .get(&conn.entity)?
                .iter()
                .find(|s| s.conn.id == conn.id)
        });
        if let Some(s) = sub {
            let tail = push_tail(topic, event, payload);
            s.conn.send_text(&push_frame(s.join_ref.as_deref(), &tail));
        }
    }

    /// Live sockets (stats, reset).
    pub fn sockets(&self) -> Vec<Arc<Conn>> {
        lock(&self.conns).values().cloned().collect()
    }

    /// The topics a socket has joined.
    pub fn topics_of(&self, conn_id: u64) -> Vec<String> {
        let topics = self.topics.read().unwrap_or_else(|p| p.into_inner());
        let mut joined: Vec<String> = topics
            .iter()
            .filter(|(_, t)| {
                t.users.contains_key(&conn_id)
                    || t.agents.values().flatten().any(|s| s.conn.id == conn_id)
            })
            .map(|(name, _)| name.clone())
            .collect();
        joined.sort();
        joined
    }

    /// Closes one socket; false when there is none with that id.
    pub fn close_one(&self, conn_id: u64, why: &'static str) -> bool {
        let conn = lock(&self.conns).get(&conn_id).cloned();
        conn.map(|c| c.close(CloseWith(1000, why))).is_some()
    }

    /// Closes every socket (reset, shutdown).
    pub fn close_all(&self, why: CloseWith) {
        for c in self.sockets() {
            c.close(why);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The topic a channel is on the wire (T15).
pub fn topic(channel: Channel<'_>) -> String {
    match channel {
        Channel::Room(id) => format!("chat_room:{id}"),
        Channel::RoomMembers(id) => format!("room_participants:{id}"),
        Channel::AgentRooms(id) => format!("agent_rooms:{id}"),
        Channel::UserRooms(id) => format!("user_rooms:{id}"),
    }
}

/// A server push, all of it but `[join_ref,`: `null,topic,event,payload]`
/// (T6), serialized once and shared by every subscriber.
pub fn push_tail(topic: &str, event: &str, payload: &(impl serde::Serialize + ?Sized)) -> String {
    let mut tail = Vec::with_capacity(256);
    tail.extend_from_slice(b"null,");
    let _ = serde_json::to_writer(&mut tail, topic);
    tail.push(b',');
    let _ = serde_json::to_writer(&mut tail, event);
    tail.push(b',');
    let _ = serde_json::to_writer(&mut tail, payload);
    tail.push(b']');
    // serde_json writes UTF-8 only.
    String::from_utf8(tail).unwrap_or_default()
}

/// One push's frames, framed for the WebSocket: subscribers that joined
/// with the same `join_ref` (a client library numbers its joins alike, so
/// most do) share one frame's bytes instead of a copy each.
struct Frames {
    tail: String,
    made: Vec<(Option<String>, Bytes)>,
}

impl Frames {
    fn new(tail: String) -> Frames {
        Frames {
            tail,
            made: Vec::new(),
        }
    }

    fn for_join(&mut self, join_ref: Option<&str>) -> Bytes {
        if let Some((_, f)) = self.made.iter().find(|(r, _)| r.as_deref() == join_ref) {
            return f.clone();
        }
        let frame = text_frame(push_frame(join_ref, &self.tail).as_bytes());
        // A few distinct refs are the common case; past that, no cache.
        if self.made.len() < 8 {
            self.made
                .push((join_ref.map(str::to_string), frame.clone()));
        }
        frame
    }
}

/// The push as one subscriber gets it: `[join_ref` + the shared tail.
fn push_frame(join_ref: Option<&str>, tail: &str) -> String {
    let mut s = String::with_capacity(tail.len() + 40);
    s.push('[');
    match join_ref {
        Some(r) => s.push_str(&serde_json::to_string(r).unwrap_or_default()),
        None => s.push_str("null"),
    }
    s.push(',');
    s.push_str(tail);
    s
}

impl Outbox for Hub {
    fn emit<'a>(&'a self, _emission: &'a Emission<'a>) -> Sending<'a> {
        // ProteusAI events have no Phoenix audience.
        Box::pin(std::future::ready(()))
    }

    fn disconnect_room(&self, _chat_id: &str) {}

    fn push(&self, push: &Push<'_>) -> Vec<String> {
        let topic = topic(push.channel);
        let room = match push.channel {
            Channel::Room(id) | Channel::RoomMembers(id) => Some(id.to_string()),
            _ => None,
        };
        let mut written = Vec::new();
        let mut reached = 0usize;
        {
            let topics = self.topics.read().unwrap_or_else(|p| p.into_inner());
            if let Some(t) = topics.get(&topic) {
                let mut frames = Frames::new(push_tail(&topic, push.event, push.payload));
                for s in t.users.values() {
                    let frame = frames.for_join(s.join_ref.as_deref());
                    reached += usize::from(s.conn.send(&frame));
                }
                let mut to_agent = |agent: &String, subs: &Vec<Sub>| {
                    let mut any = false;
                    for s in subs {
                        any |= s.conn.send(&frames.for_join(s.join_ref.as_deref()));
                    }
                    if any {
                        reached += 1;
                        written.push(agent.clone());
                    }
                };
                match push.audience {
                    Audience::Everyone => t.agents.iter().for_each(|(a, c)| to_agent(a, c)),
                    Audience::UsersAnd(agents) => {
                        for a in agents {
                            if let Some(c) = t.agents.get(a) {
                                to_agent(a, c);
                            }
                        }
                    }
                }
            }
        }
        self.stats.pushes.fetch_add(1, Ordering::Relaxed);
        self.stats
            .frames_pushed
            .fetch_add(reached as u64, Ordering::Relaxed);
        if self.journal.enabled() {
            self.journal.record(
                JournalKind::Out,
                Note {
                    event: Some(push.event.to_string()),
                    chat_id: room,
                    detail: serde_json::json!({
                        "transport": "phoenix", "topic": topic, "sockets": reached,
                        "agents": written,
                    })
                    .into(),
                    ..Default::default()
                },
            );
        }
        written
    }

    fn forget_room(&self, room_id: &str, entity: Option<&str>) {
        let names = [
            format!("chat_room:{room_id}"),
            format!("room_participants:{room_id}"),
        ];
        let mut topics = self.topics.write().unwrap_or_else(|p| p.into_inner());
        for name in names {
            match entity {
                None => {
                    topics.remove(&name);
                }
                Some(e) => {
                    if let Some(t) = topics.get_mut(&name) {
                        t.users.retain(|_, s| s.conn.entity != e);
                        t.agents.remove(e);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_frame_is_the_five_element_array_of_phoenix_v2() {
        let payload = serde_json::json!({ "id": "m\"1", "n": [1, 2] });
        let tail = push_tail("chat_room:r", "message_created", &payload);
        let frame = push_frame(Some("3"), &tail);
        assert_eq!(
            frame,
            r#"["3",null,"chat_room:r","message_created",{"id":"m\"1","n":[1,2]}]"#
        );
        let parsed: Value = serde_json::from_str(&push_frame(None, &tail)).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!([null, null, "chat_room:r", "message_created", payload])
        );
    }
}
