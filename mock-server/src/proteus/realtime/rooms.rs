//! Chat rooms and the one way events leave the server.
//!
//! The mock keeps its own room membership instead of socketioxide's rooms so
//! that every packet is handed to each socket individually and a full buffer
//! is seen *per socket*. socketioxide's broadcast reports a full buffer
//! without saying whose it was, and its packet is then silently missing for
//! that client: not acceptable for a server whose streams must be complete.
//!
//! **Slow-consumer policy.** Each socket may hold `socket_buffer` unsent
//! packets (`--socket-buffer`, default 8192) and, on WebSocket, at most
//! `--socket-buffer-bytes` unsent bytes ([`held`](super::held)), so memory
//! per socket is bounded. When a packet does not fit, the sender waits for *that socket*
//! (retrying only it, so nobody gets a duplicate and its order is kept) for
//! up to `slow_consumer_grace` (`--slow-consumer-grace-ms`, default 2000 ms).
//! A socket still full after that is disconnected, with a warning naming it,
//! and counted in [`Stats::slow_consumers_disconnected`]. Its client sees a
//! disconnect, never a stream with a hole in it; a stalled client can hold up
//! its room's stream for at most one grace period.
//!
//! Payloads are serialized once per event and the same bytes are handed to
//! every socket of the room.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::journal::{Detail, Journal, Kind, Note, Sent};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::value::RawValue;
use socketioxide::extract::SocketRef;
use socketioxide::socket::Sid;
use socketioxide::{SendError, SocketError};

use super::held::{self, Held};
use crate::core::outbox::{self, Emission, Outbox, Payload, Sending};
use crate::model::Id;

/// Counters for `/__admin/stats` and benchmarks.
#[derive(Debug, Default)]
pub struct Stats {
    pub packets_sent: AtomicU64,
    pub deltas_sent: AtomicU64,
    pub slow_consumers_disconnected: AtomicU64,
    /// Deltas sent during the last whole second (sampled once a second).
    pub deltas_last_second: AtomicU64,
    /// Packets that met a full socket buffer on their first offer.
    pub buffer_full_events: AtomicU64,
    /// High-water mark: the most sockets found full by one emission.
    pub max_sockets_full_at_once: AtomicU64,
    /// High-water mark: the longest an emission waited for full sockets, in µs.
    pub longest_buffer_wait_us: AtomicU64,
    /// High-water mark: the most bytes one socket held unsent (WebSocket).
    pub most_bytes_held: AtomicU64,
}

/// Why a socket is cut as a slow consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// Its buffer stayed full of packets for the grace period.
    Packets,
    /// It held more bytes unsent than it may, for the grace period.
    Bytes,
    /// An acknowledgement did not fit its buffer.
    Ack,
}

/// A socket in a room, with its count of unsent bytes.
#[derive(Clone)]
struct Member {
    socket: SocketRef,
    held: Arc<Held>,
}

#[derive(Default)]
struct Membership {
    rooms: HashMap<Id, Vec<Member>>,
    of_socket: HashMap<Sid, (Vec<Id>, Arc<Held>)>,
}

/// Room membership and emission.
pub struct Rooms {
    inner: RwLock<Membership>,
    /// Sockets cut as slow consumers and not yet gone: each is cut and
    /// counted once, however many emissions and acks found it full.
    cut: std::sync::Mutex<std::collections::HashSet<Sid>>,
    journal: Arc<Journal>,
    grace: Duration,
    /// Bytes a WebSocket socket may hold unsent; 0: no bound.
    byte_limit: u64,
    connections: Arc<crate::net::Connections>,
    pub stats: Stats,
}

impl std::fmt::Debug for Rooms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rooms")
            .field("rooms", &self.read().rooms.len())
            .finish()
    }
}

impl Rooms {
    pub fn new(
        slow_consumer_grace: Duration,
        byte_limit: u64,
        journal: Arc<Journal>,
        connections: Arc<crate::net::Connections>,
    ) -> Self {
        Rooms {
            inner: RwLock::default(),
            cut: std::sync::Mutex::default(),
            journal,
            connections,
            grace: slow_consumer_grace,
            byte_limit,
            stats: Stats::default(),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Membership> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Membership> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a socket to a chat's room (idempotent).
    pub fn join(&self, chat_id: &str, socket: &SocketRef) {
        let mut m = self.write();
        let (chats, held) = m.of_socket.entry(socket.id).or_default();
        if chats.iter().any(|c| c == chat_id) {
            return;
        }
        chats.push(chat_id.to_string());
        let member = Member {
            socket: socket.clone(),
            held: held.clone(),
        };
        m.rooms.entry(chat_id.to_string()).or_default().push(member);
    }

    /// Removes a socket from a chat's room (idempotent).
    pub fn leave(&self, chat_id: &str, sid: Sid) {
        let mut m = self.write();
        if let Some(members) = m.rooms.get_mut(chat_id) {
            members.retain(|s| s.socket.id != sid);
            if members.is_empty() {
                m.rooms.remove(chat_id);
            }
        }
        if let Some((chats, _)) = m.of_socket.get_mut(&sid) {
            chats.retain(|c| c != chat_id);
        }
    }

    /// Forgets a socket entirely (on disconnect); false when it was already
    /// forgotten (another emission cut it first).
    pub fn remove_socket(&self, sid: Sid) -> bool {
        let mut m = self.write();
        let Some((chats, _)) = m.of_socket.remove(&sid) else {
            return false;
        };
        for chat in chats {
            if let Some(members) = m.rooms.get_mut(&chat) {
                members.retain(|s| s.socket.id != sid);
                if members.is_empty() {
                    m.rooms.remove(&chat);
                }
            }
        }
        true
    }

    /// Disconnects every socket in a chat's room (a fault, and reset).
    pub fn disconnect_room(&self, chat_id: &str) {
        let members: Vec<Member> = self.read().rooms.get(chat_id).cloned().unwrap_or_default();
        for Member { socket, .. } in members {
            self.remove_socket(socket.id);
            crate::net::disconnect(socket, &self.connections);
        }
    }

    /// Forgets every membership (on reset).
    pub fn clear(&self) {
        *self.write() = Membership::default();
        self.cut.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Every socket currently in some room, once each.
    pub fn all_sockets(&self) -> Vec<SocketRef> {
        let m = self.read();
        let mut seen = std::collections::HashSet::new();
        m.rooms
            .values()
            .flatten()
            .filter(|s| seen.insert(s.socket.id))
            .map(|s| s.socket.clone())
            .collect()
    }

    /// The chats whose rooms a socket is in.
    pub fn rooms_of(&self, sid: Sid) -> Vec<Id> {
        self.read()
            .of_socket
            .get(&sid)
            .map(|(chats, _)| chats.clone())
            .unwrap_or_default()
    }

    /// The bytes a socket holds unsent, when it is in a room and on
    /// WebSocket.
    pub fn bytes_unsent(&self, socket: &SocketRef) -> Option<u64> {
        let held = self.read().of_socket.get(&socket.id)?.1.clone();
        held.unsent(socket, &self.connections)
    }

    /// Sockets the membership tables still know (0 once all are gone).
    pub fn tracked_sockets(&self) -> usize {
        self.read().of_socket.len()
    }

    pub fn room_count(&self) -> usize {
        self.read().rooms.len()
    }

    /// Serializes `payload` once and hands it to every socket in the room,
    /// applying the slow-consumer policy.
    pub async fn emit<T: Serialize + ?Sized>(&self, chat_id: &str, event: &str, payload: &T) {
        self.emit_tagged(chat_id, event, payload, None, None).await;
    }

    /// [`emit`](Self::emit) to every socket of the room but `except`.
    pub async fn emit_except<T: Serialize + ?Sized>(
        &self,
        chat_id: &str,
        event: &str,
        payload: &T,
        except: Option<Sid>,
    ) {
        self.emit_tagged(chat_id, event, payload, except, None)
            .await;
    }

    /// Serializes `payload` and emits it with [`emit_raw`](Self::emit_raw).
    pub async fn emit_tagged<T: Serialize + ?Sized>(
        &self,
        chat_id: &str,
        event: &str,
        payload: &T,
        except: Option<Sid>,
        stream: Option<(&str, Option<usize>)>,
    ) {
        match serde_json::value::to_raw_value(payload) {
            Ok(raw) => self.emit_raw(chat_id, event, &raw, except, stream).await,
            Err(e) => {
                tracing::error!(%event, chat_id, error = %e, "cannot serialize an outgoing event (a bug)");
            }
        }
    }

    /// The one emission path, for JSON already serialized: `stream` (stream
    /// id, delta number) goes to the journal.
    pub async fn emit_raw(
        &self,
        chat_id: &str,
        event: &str,
        raw: &RawValue,
        except: Option<Sid>,
        stream: Option<(&str, Option<usize>)>,
    ) {
        let members: Vec<Member> = match self.read().rooms.get(chat_id) {
            Some(m) => m
                .iter()
                .filter(|s| Some(s.socket.id) != except)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        if self.journal.enabled() {
            let sids = if members.len() <= 16 {
                members.iter().map(|s| s.socket.id).collect()
            } else {
                Vec::new()
            };
            let detail = Detail::Reached {
                sockets: members.len(),
                sids,
                payload: Some(Sent::of(raw)),
            };
            self.journal.record(
                Kind::Out,
                Note {
                    event: Some(event.to_string()),
                    chat_id: Some(chat_id.to_string()),
                    stream_id: stream.map(|(s, _)| s.to_string()),
                    delta: stream.and_then(|(_, n)| n),
                    detail,
                },
            );
        }
        if members.is_empty() {
            return;
        }
        let mut full = self.offer(&members, event, raw);
        if !full.is_empty() {
            self.stats
                .buffer_full_events
                .fetch_add(full.len() as u64, Ordering::Relaxed);
            self.stats
                .max_sockets_full_at_once
                .fetch_max(full.len() as u64, Ordering::Relaxed);
        }
        let started = Instant::now();
        let mut pause = Duration::from_micros(200);
        while !full.is_empty() && started.elapsed() < self.grace {
            tokio::time::sleep(pause.min(self.grace.saturating_sub(started.elapsed()))).await;
            pause = (pause * 2).min(Duration::from_millis(20));
            full = self.offer(&full, event, raw);
            self.stats
                .longest_buffer_wait_us
                .fetch_max(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
        for member in full {
            let sid = member.socket.id;
            if self.holds_too_much(&member) {
                tracing::warn!(%sid, chat_id, %event, grace_ms = self.grace.as_millis() as u64,
                    limit = self.byte_limit, "slow consumer: too many bytes unsent");
                self.cut_slow_consumer(member.socket, Full::Bytes);
            } else {
                tracing::warn!(%sid, chat_id, %event, grace_ms = self.grace.as_millis() as u64,
                    "slow consumer: socket buffer stayed full");
                self.cut_slow_consumer(member.socket, Full::Packets);
            }
        }
    }

    /// Cuts a socket that cannot take what it is owed (an event after the
    /// grace, or an ack): out of every room, the reason offered first (it
    /// goes through if the buffer has room by now), then disconnected. A
    /// socket full of bytes has its connection cut at once: a disconnect
    /// packet would wait behind what it cannot take. Several emissions and
    /// acks may find the same socket full: the first cuts and counts it, the
    /// others (also those that waited on it meanwhile) do nothing.
    pub fn cut_slow_consumer(&self, socket: SocketRef, full: Full) {
        if !socket.connected()
            || !self
                .cut
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(socket.id)
        {
            return;
        }
        self.remove_socket(socket.id);
        self.stats
            .slow_consumers_disconnected
            .fetch_add(1, Ordering::Relaxed);
        let why = match full {
            Full::Packets => "your socket buffer stayed full",
            Full::Bytes => "your socket held too many bytes unsent",
            Full::Ack => "an acknowledgement did not fit your socket buffer",
        };
        let _ = socket.emit(
            "error",
            &serde_json::json!({ "message": format!("slow consumer: {why}; disconnected") }),
        );
        if full == Full::Bytes {
            crate::net::cut_carrier(&socket, &self.connections);
        }
        crate::net::disconnect(socket, &self.connections);
    }

    /// Forgets a socket that is gone (on disconnect).
    pub fn forget(&self, sid: Sid) {
        self.remove_socket(sid);
        self.cut
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&sid);
    }

    /// Hands a packet to each socket; returns the ones whose buffer was full
    /// (in packets, or in bytes).
    fn offer(&self, members: &[Member], event: &str, raw: &RawValue) -> Vec<Member> {
        let mut full = Vec::new();
        let mut sent = 0u64;
        let bytes = held::packet_bytes(event, raw.get().len());
        for member in members {
            if self.holds_too_much(member) {
                full.push(member.clone());
                continue;
            }
            match member.socket.emit(event, raw) {
                Ok(()) => {
                    sent += 1;
                    member.held.handed(bytes);
                }
                Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                    full.push(member.clone())
                }
                Err(SendError::Socket(SocketError::Closed)) => {}
                Err(e) => {
                    tracing::error!(%event, error = %e, "cannot encode an outgoing event (a bug)")
                }
            }
        }
        self.stats.packets_sent.fetch_add(sent, Ordering::Relaxed);
        if event == "message:delta" {
            self.stats.deltas_sent.fetch_add(sent, Ordering::Relaxed);
        }
        full
    }

    /// Whether a WebSocket socket holds more unsent bytes than it may.
    fn holds_too_much(&self, member: &Member) -> bool {
        if self.byte_limit == 0 {
            return false;
        }
        let Some(unsent) = member.held.unsent(&member.socket, &self.connections) else {
            return false;
        };
        self.stats
            .most_bytes_held
            .fetch_max(unsent, Ordering::Relaxed);
        unsent > self.byte_limit
    }
}

/// The socket.io way out: the core's events under the ProteusAI event names,
/// to the chat's room.
impl Outbox for Rooms {
    fn emit<'a>(&'a self, e: &'a Emission<'a>) -> Sending<'a> {
        Box::pin(async move {
            let event = match e.kind {
                outbox::Kind::Message => "message",
                outbox::Kind::Delta => "message:delta",
                outbox::Kind::Done => "message:done",
                outbox::Kind::Lifecycle(name) => name,
            };
            let except = e.except.and_then(|s| s.parse::<Sid>().ok());
            match e.payload {
                Payload::Raw(raw) => self.emit_raw(e.chat_id, event, raw, except, e.stream).await,
                Payload::Message(m) => {
                    self.emit_tagged(e.chat_id, event, m, except, e.stream)
                        .await
                }
                Payload::Value(v) => {
                    self.emit_tagged(e.chat_id, event, v, except, e.stream)
                        .await
                }
            }
        })
    }

    fn disconnect_room(&self, chat_id: &str) {
        Rooms::disconnect_room(self, chat_id);
    }
}
