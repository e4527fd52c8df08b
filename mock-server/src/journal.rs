//! The journal: one ordered timeline of what the mock saw and did.
//!
//! REST requests and their answers, socket connects and disconnects, inbound
//! client events with their acks, and every event emitted to a room (one entry
//! per emission, with the sockets it reached, and for stream events the stream
//! id and the delta's sequence number). Timestamps are microseconds on a
//! monotonic clock since the server started; `seq` orders entries exactly.
//!
//! Memory is bounded: a ring of `--journal-size` entries (default 10,000; the
//! oldest go first). `--journal-size 0` turns it off for load runs, and then
//! recording costs one atomic load.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use socketioxide::socket::Sid;
use tokio::sync::broadcast;

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Rest,
    Connect,
    Disconnect,
    /// A client event and its ack.
    In,
    /// An event emitted to a room.
    Out,
    /// A webhook delivery attempt.
    Webhook,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub seq: u64,
    /// Microseconds since the server started (monotonic).
    pub t_us: u64,
    pub kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
    /// 1-based position of a delta in its stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<usize>,
    /// Kind-specific details (method, path, status, socket ids, ack…).
    pub detail: Detail,
}

/// An entry's details, serialized as one JSON object.
#[derive(Debug, Clone)]
pub enum Detail {
    Json(Value),
    /// An emission: `{"sockets": n, "sids": [...]}`, the ids only when it
    /// reached 16 sockets or fewer. Kept as ids and rendered when read: one
    /// entry per delta is on the hot path, and building a JSON object for
    /// each cost up to a tenth of the mock's CPU in a many-chats run.
    Reached {
        sockets: usize,
        sids: Vec<Sid>,
        /// The event's payload, as sent (the inspector shows the frame).
        payload: Option<Sent>,
    },
}

/// An emitted payload as the journal keeps it: whole up to
/// [`Sent::WHOLE`] bytes, otherwise its first bytes as a string.
#[derive(Debug, Clone)]
pub enum Sent {
    Whole(Box<serde_json::value::RawValue>),
    Prefix(String),
}

impl Detail {
    /// Leaves an emission's payload out (a light read of the journal).
    pub fn drop_payload(&mut self) {
        match self {
            Detail::Reached { payload, .. } => *payload = None,
            // A client event's payload (kind `in`).
            Detail::Json(Value::Object(map)) => {
                map.remove("payload");
                map.remove("payloadPrefix");
            }
            Detail::Json(_) => {}
        }
    }
}

impl Sent {
    pub const WHOLE: usize = 4096;

    pub fn of(raw: &serde_json::value::RawValue) -> Sent {
        let text = raw.get();
        if text.len() <= Sent::WHOLE {
            return Sent::Whole(raw.to_owned());
        }
        Sent::Prefix(prefix(text).to_string())
    }
}

/// The first [`Sent::WHOLE`] bytes of `text`, cut at a character boundary.
pub fn prefix(text: &str) -> &str {
    let mut end = Sent::WHOLE.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl Default for Detail {
    fn default() -> Self {
        Detail::Json(Value::Null)
    }
}

impl From<Value> for Detail {
    fn from(v: Value) -> Self {
        Detail::Json(v)
    }
}

impl Serialize for Detail {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Detail::Json(v) => v.serialize(s),
            Detail::Reached {
                sockets,
                sids,
                payload,
            } => {
                let listed = *sockets <= 16;
                let fields = 1 + usize::from(listed) + usize::from(payload.is_some());
                let mut map = s.serialize_map(Some(fields))?;
                map.serialize_entry("sockets", sockets)?;
                if listed {
                    let ids: Vec<String> = sids.iter().map(Sid::to_string).collect();
                    map.serialize_entry("sids", &ids)?;
                }
                match payload {
                    Some(Sent::Whole(raw)) => map.serialize_entry("payload", raw)?,
                    Some(Sent::Prefix(text)) => map.serialize_entry("payloadPrefix", text)?,
                    None => {}
                }
                map.end()
            }
        }
    }
}

/// A new entry before it gets its place in the timeline.
#[derive(Debug, Default)]
pub struct Note {
    pub event: Option<String>,
    pub chat_id: Option<String>,
    pub stream_id: Option<String>,
    pub delta: Option<usize>,
    pub detail: Detail,
}

#[derive(Debug)]
pub struct Journal {
    ring: Mutex<VecDeque<Entry>>,
    capacity: usize,
    seq: AtomicU64,
    started: Instant,
    live: broadcast::Sender<Entry>,
}

impl Journal {
    pub fn new(capacity: usize) -> Self {
        let (live, _) = broadcast::channel(1024);
        Journal {
            ring: Mutex::new(VecDeque::with_capacity(capacity.min(65_536))),
            capacity,
            seq: AtomicU64::new(0),
            started: Instant::now(),
            live,
        }
    }

    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Appends an entry (a no-op when the journal is off).
    pub fn record(&self, kind: Kind, note: Note) {
        if !self.enabled() {
            return;
        }
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        // Sequence and time are taken under the lock, so both are in order.
        let entry = Entry {
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            t_us: self.started.elapsed().as_micros() as u64,
            kind,
            event: note.event,
            chat_id: note.chat_id,
            stream_id: note.stream_id,
            delta: note.delta,
            detail: note.detail,
        };
        if ring.len() == self.capacity {
            ring.pop_front();
        }
        // Clone only for live readers: an entry per delta is on the hot path.
        if self.live.receiver_count() > 0 {
            let _ = self.live.send(entry.clone());
        }
        ring.push_back(entry);
    }

    /// Entries after `since` (a seq), oldest first, filtered, at most `limit`.
    pub fn query(
        &self,
        since: u64,
        chat_id: Option<&str>,
        kind: Option<Kind>,
        event: Option<&str>,
        limit: usize,
    ) -> Vec<Entry> {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        ring.iter()
            .filter(|e| e.seq > since)
            .filter(|e| chat_id.is_none_or(|c| e.chat_id.as_deref() == Some(c)))
            .filter(|e| kind.is_none_or(|k| e.kind == k))
            .filter(|e| event.is_none_or(|ev| e.event.as_deref() == Some(ev)))
            .take(limit)
            .cloned()
            .collect()
    }

    /// Forgets everything (on reset); `seq` keeps counting so live readers never see it go back.
    pub fn clear(&self) {
        self.ring.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// A live feed of new entries.
    pub fn subscribe(&self) -> broadcast::Receiver<Entry> {
        self.live.subscribe()
    }

    pub fn len(&self) -> usize {
        self.ring.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A verification pattern (`POST /__admin/verify`), in the spirit of WireMock:
/// entries that match every given field; then either a count (exact, or
/// `atLeast`/`atMost`) or a sequence of event names that must appear in order.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pattern {
    #[serde(default)]
    pub kind: Option<Kind>,
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub chat_id: Option<String>,
    #[serde(default)]
    pub stream_id: Option<String>,
    #[serde(default)]
    pub count: Option<usize>,
    #[serde(default)]
    pub at_least: Option<usize>,
    #[serde(default)]
    pub at_most: Option<usize>,
    /// Event names that must occur in this order (other entries may come between).
    #[serde(default)]
    pub sequence: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub matched: bool,
    /// How many entries match every field given.
    pub count: usize,
    /// What was required, in words.
    pub expected: String,
    /// When it did not match: the entries closest to the pattern (those that
    /// match the most fields), at most 5, each with the fields it missed.
    pub near_misses: Vec<Value>,
}

impl Pattern {
    fn fields(&self, e: &Entry) -> (usize, Vec<&'static str>) {
        let mut hit = 0;
        let mut missed = Vec::new();
        let mut check = |given: bool, ok: bool, name: &'static str| {
            if given {
                if ok { hit += 1 } else { missed.push(name) }
            }
        };
        check(self.kind.is_some(), self.kind == Some(e.kind), "kind");
        check(
            self.event.is_some(),
            self.event.as_deref() == e.event.as_deref(),
            "event",
        );
        check(
            self.chat_id.is_some(),
            self.chat_id.as_deref() == e.chat_id.as_deref(),
            "chatId",
        );
        check(
            self.stream_id.is_some(),
            self.stream_id.as_deref() == e.stream_id.as_deref(),
            "streamId",
        );
        (hit, missed)
    }

    /// Judges the journal's entries.
    pub fn verify(&self, entries: &[Entry]) -> Verdict {
        let matching: Vec<&Entry> = entries
            .iter()
            .filter(|e| self.fields(e).1.is_empty())
            .collect();
        let count = matching.len();
        let (matched, expected) = if let Some(seq) = &self.sequence {
            let mut want = seq.iter().peekable();
            for e in &matching {
                if want
                    .peek()
                    .is_some_and(|w| e.event.as_deref() == Some(w.as_str()))
                {
                    want.next();
                }
            }
            (
                want.peek().is_none(),
                format!("events in order: {}", seq.join(" → ")),
            )
        } else if let Some(n) = self.count {
            (count == n, format!("exactly {n} matching entries"))
        } else {
            let (lo, hi) = (
                self.at_least.unwrap_or(1),
                self.at_most.unwrap_or(usize::MAX),
            );
            (
                count >= lo && count <= hi,
                format!(
                    "between {lo} and {} matching entries",
                    if hi == usize::MAX {
                        "any".to_string()
                    } else {
                        hi.to_string()
                    }
                ),
            )
        };
        let near_misses = if matched {
            Vec::new()
        } else {
            let mut scored: Vec<(usize, &Entry, Vec<&str>)> = entries
                .iter()
                .map(|e| (self.fields(e), e))
                .filter(|((hit, missed), _)| *hit > 0 && !missed.is_empty())
                .map(|((hit, missed), e)| (hit, e, missed))
                .collect();
            scored.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.seq.cmp(&a.1.seq)));
            scored
                .into_iter()
                .take(5)
                .map(|(_, e, missed)| serde_json::json!({ "entry": e, "missed": missed }))
                .collect()
        };
        Verdict {
            matched,
            count,
            expected,
            near_misses,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emission_lists_the_sockets_it_reached_up_to_sixteen() {
        let sid = Sid::new();
        let few = Detail::Reached {
            sockets: 2,
            sids: vec![sid, sid],
            payload: None,
        };
        assert_eq!(
            serde_json::to_value(&few).ok(),
            Some(serde_json::json!({ "sockets": 2, "sids": [sid.to_string(), sid.to_string()] }))
        );
        let many = Detail::Reached {
            sockets: 17,
            sids: Vec::new(),
            payload: None,
        };
        assert_eq!(
            serde_json::to_value(&many).ok(),
            Some(serde_json::json!({ "sockets": 17 }))
        );
    }

    #[test]
    fn an_emission_keeps_its_payload_whole_up_to_4_kib_then_a_prefix() {
        let small = serde_json::value::RawValue::from_string(r#"{"content":"hé"}"#.into()).unwrap();
        let d = Detail::Reached {
            sockets: 1,
            sids: Vec::new(),
            payload: Some(Sent::of(&small)),
        };
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["payload"]["content"], "hé");
        let big = format!(r#"{{"content":"{}é"}}"#, "x".repeat(Sent::WHOLE - 13));
        let big = serde_json::value::RawValue::from_string(big).unwrap();
        let d = Detail::Reached {
            sockets: 1,
            sids: Vec::new(),
            payload: Some(Sent::of(&big)),
        };
        let v = serde_json::to_value(&d).unwrap();
        assert!(v.get("payload").is_none());
        let prefix = v["payloadPrefix"].as_str().unwrap();
        assert!(prefix.len() <= Sent::WHOLE && prefix.starts_with(r#"{"content":"xxx"#));
    }

    #[test]
    fn the_ring_keeps_the_newest_entries_in_order() {
        let j = Journal::new(3);
        for i in 0..5 {
            j.record(
                Kind::Out,
                Note {
                    event: Some(format!("e{i}")),
                    ..Note::default()
                },
            );
        }
        let all = j.query(0, None, None, None, 100);
        assert_eq!(
            all.iter()
                .map(|e| e.event.clone().unwrap_or_default())
                .collect::<Vec<_>>(),
            ["e2", "e3", "e4"]
        );
        assert!(
            all.windows(2)
                .all(|w| w[0].seq < w[1].seq && w[0].t_us <= w[1].t_us)
        );
        let off = Journal::new(0);
        off.record(Kind::Rest, Note::default());
        assert!(off.is_empty());
    }
}
