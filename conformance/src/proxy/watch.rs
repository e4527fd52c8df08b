//! What the proxy checks and keeps of the traffic it relays.
//!
//! Every REST response body is checked against the envelope (and its `ok`
//! against the status); every socket.io event in either direction against
//! its event schema; every server-to-client stream through the stream
//! checker (order, content, done, no plain message for it). A violation is
//! printed when it happens, in the runner's Expected/Actual form with the
//! frames just before it, and counted. With `--capture`, every exchange is
//! a JSON line `proteus-conformance validate` reads again.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Value, json};

use crate::client::{Frame, parse_packet};
use crate::schema::{SchemaSet, event_schema};
use crate::stream::StreamChecker;

/// Which way a frame went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    ToServer,
    ToClient,
}

impl Dir {
    fn name(self) -> &'static str {
        match self {
            Dir::ToServer => "client→server",
            Dir::ToClient => "server→client",
        }
    }
}

/// One violation seen live.
#[derive(Debug, Clone)]
pub struct Violation {
    pub what: String,
    pub expected: String,
    pub actual: String,
    /// The frames just before it, for context.
    pub context: Vec<String>,
}

/// What every connection shares: the verdicts and the capture.
struct Shared {
    violations: Vec<Violation>,
    capture: Option<std::io::BufWriter<std::fs::File>>,
}

/// One relayed connection's view: its streams and its recent frames. Each
/// connection (a WebSocket, or a long-polling session by its `sid`) has its
/// own, so ten subscribers of one chat are ten copies of each stream, not
/// one stream seen ten times, and a connection's checks take no lock another
/// connection waits on.
pub struct Connection {
    pub id: u64,
    state: Mutex<ConnState>,
}

#[derive(Default)]
struct ConnState {
    checker: StreamChecker,
    seen_violations: usize,
    /// Streams whose first delta passed its schema in full: their later
    /// deltas take the byte-level path ([`Watch::vouched_delta`]).
    vouched: std::collections::HashSet<String>,
    /// The last frames, for a violation's context (buffers reused).
    recent: VecDeque<(Dir, String)>,
    closed: bool,
}

impl ConnState {
    /// Keeps `text` (its first bytes) as context.
    fn remember(&mut self, dir: Dir, text: &str) {
        let cut = text.floor_char_boundary(SHORT);
        let mut buf = if self.recent.len() >= CONTEXT {
            self.recent.pop_front().map(|(_, b)| b).unwrap_or_default()
        } else {
            String::with_capacity(SHORT)
        };
        buf.clear();
        buf.push_str(&text[..cut]);
        self.recent.push_back((dir, buf));
    }

    fn context(&self) -> Vec<String> {
        self.recent
            .iter()
            .map(|(d, t)| format!("{} {t}", d.name()))
            .collect()
    }
}

/// Shared by every connection of a proxy run.
pub struct Watch {
    shared: Mutex<Shared>,
    /// Connections still open (or polling sessions still known).
    conns: Mutex<std::collections::HashMap<u64, Arc<Connection>>>,
    exchanges: AtomicU64,
    started: Instant,
    keep_tokens: bool,
    quiet: bool,
    /// Check every delta against its schema in full (`--full-schema`).
    full_schema: bool,
    /// Whether there is a capture (fixed for the run: read without the lock).
    capturing: bool,
}

const CONTEXT: usize = 5;
/// Bytes of a frame kept as context.
const SHORT: usize = 120;

/// Streams vouched for at once per connection: a server that never ends its
/// streams cannot grow the set without bound (past it, deltas take the full
/// path).
const MAX_VOUCHED: usize = 100_000;

/// Connections tracked at once: past it the oldest is finished (its open
/// streams reported) to make room, so a proxy left running cannot grow.
pub const MAX_CONNECTIONS: usize = 10_000;

impl Watch {
    pub fn new(capture: Option<std::fs::File>, keep_tokens: bool, quiet: bool) -> Watch {
        Watch::with_full_schema(capture, keep_tokens, quiet, false)
    }

    /// As [`Watch::new`]; `full_schema`: every delta against its schema in
    /// full, not only each stream's first.
    pub fn with_full_schema(
        capture: Option<std::fs::File>,
        keep_tokens: bool,
        quiet: bool,
        full_schema: bool,
    ) -> Watch {
        Watch {
            capturing: capture.is_some(),
            shared: Mutex::new(Shared {
                violations: Vec::new(),
                capture: capture.map(std::io::BufWriter::new),
            }),
            conns: Mutex::default(),
            exchanges: AtomicU64::new(0),
            started: Instant::now(),
            keep_tokens,
            quiet,
            full_schema,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether exchanges are being captured.
    fn capturing(&self) -> bool {
        self.capturing
    }

    /// The connection `id` (created on first use).
    pub fn connection(&self, id: u64) -> Arc<Connection> {
        let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = conns.get(&id) {
            return c.clone();
        }
        if conns.len() >= MAX_CONNECTIONS
            && let Some(&oldest) = conns.keys().min()
            && let Some(c) = conns.remove(&oldest)
        {
            drop(conns);
            self.finish_connection(&c);
            conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        }
        let c = Arc::new(Connection {
            id,
            state: Mutex::new(ConnState::default()),
        });
        conns.insert(id, c.clone());
        c
    }

    /// A connection ended: its open streams are reported now.
    pub fn closed(&self, c: &Connection) {
        self.conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&c.id);
        self.finish_connection(c);
    }

    fn finish_connection(&self, c: &Connection) {
        let mut st = c.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.closed {
            return;
        }
        st.closed = true;
        let checker = std::mem::take(&mut st.checker);
        let skip = st.seen_violations;
        let context = st.context();
        drop(st);
        let report = checker.finish();
        self.stream_violations(report.violations.into_iter().skip(skip), &context);
    }

    /// Tokens in captures are replaced unless `--keep-tokens`.
    fn redact(&self, mut v: Value) -> Value {
        if self.keep_tokens {
            return v;
        }
        fn walk(v: &mut Value) {
            match v {
                Value::Object(o) => {
                    for (k, x) in o.iter_mut() {
                        if matches!(
                            k.as_str(),
                            "token" | "authorization" | "Authorization" | "apiKey" | "api_key"
                        ) && x.is_string()
                        {
                            *x = Value::String("[redacted]".into());
                        } else {
                            walk(x);
                        }
                    }
                }
                Value::Array(a) => a.iter_mut().for_each(walk),
                _ => {}
            }
        }
        walk(&mut v);
        v
    }

    /// Counts an exchange and writes its capture line (`None` when there is
    /// no capture: not built at all).
    fn record(&self, line: Option<Value>) {
        self.exchanges.fetch_add(1, Ordering::Relaxed);
        let Some(line) = line else { return };
        let mut s = self.lock();
        if let Some(w) = s.capture.as_mut() {
            let mut line = self.redact(line);
            line["tMs"] = json!(self.started.elapsed().as_millis() as u64);
            let _ = writeln!(w, "{line}");
        }
    }

    fn violate(
        &self,
        s: &mut Shared,
        what: String,
        expected: String,
        actual: String,
        context: Vec<String>,
    ) {
        let v = Violation {
            what,
            expected,
            actual,
            context,
        };
        if !self.quiet {
            println!("VIOLATION {}", v.what);
            println!("  Expected: {}", v.expected);
            println!("  Actual:   {}", v.actual);
            for c in &v.context {
                println!("    | {c}");
            }
        }
        s.violations.push(v);
    }

    /// A REST exchange: the response body against its route's schema for
    /// its status (schemas/openapi.json), and `ok` against the status.
    pub fn rest(&self, conn: u64, method: &str, path: &str, status: u16, body: &[u8]) {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let line = self.capturing().then(|| {
            json!({ "kind": "rest", "conn": conn, "method": method, "path": path, "status": status, "body": parsed })
        });
        self.record(line);
        if !path.starts_with("/api/") {
            return;
        }
        let context = vec![format!("{method} {path} → {status}")];
        let mut s = self.lock();
        // The Thenvoi profile's routes (`/api/v1/`) have their own envelope.
        let proteus = !path.starts_with("/api/v1/");
        let parsed = match parsed {
            Some(v) => v,
            None if body.is_empty() && status == 204 => Value::Null,
            None => {
                return self.violate(
                    &mut s,
                    format!("{method} {path}: the body is not JSON"),
                    "a JSON body (PROTOCOL.md R5)".into(),
                    format!("{} bytes that are not JSON", body.len()),
                    context,
                );
            }
        };
        use super::routes::{Routes, Verdict};
        let (template, verdict) = Routes::embedded().check(method, path, status, &parsed);
        let route = template.unwrap_or(path);
        match verdict {
            Verdict::Valid => {}
            // An unknown route: at least the envelope (its 404 is one).
            Verdict::NoRoute if proteus => {
                if let Err(errors) = SchemaSet::embedded().check("objects/envelope", &parsed) {
                    let first = errors.first().map(|e| e.to_string()).unwrap_or_default();
                    self.violate(
                        &mut s,
                        format!("{method} {path}: not the envelope"),
                        "objects/envelope".into(),
                        first,
                        context.clone(),
                    );
                }
            }
            Verdict::NoRoute => {}
            Verdict::UndocumentedStatus(listed) => self.violate(
                &mut s,
                format!("{method} {route}: status {status} is not one this route answers"),
                format!("one of {listed:?} (schemas/openapi.json; PROTOCOL.md R6)"),
                format!("{status}"),
                context.clone(),
            ),
            Verdict::Invalid(first) => self.violate(
                &mut s,
                format!("{method} {route} -> {status}: the body breaks the route's schema"),
                format!("the {status} response schema of {method} {route} in schemas/openapi.json"),
                first,
                context.clone(),
            ),
        }
        if proteus && parsed.is_object() && (parsed["ok"] == true) != (200..300).contains(&status) {
            self.violate(
                &mut s,
                format!("{method} {path}: ok disagrees with the status"),
                format!("ok {} with status {status}", (200..300).contains(&status)),
                format!("ok {}", parsed["ok"]),
                context,
            );
        }
    }

    /// A WebSocket text frame (or a long-polling packet) of a socket.io
    /// connection.
    ///
    /// The frame is parsed and its payload validated before anything is
    /// locked; then only this connection's state is (the shared state only
    /// for a violation or a capture line).
    pub fn frame(&self, c: &Connection, dir: Dir, text: &str) {
        // Engine.IO: `4` carries a socket.io packet; pings and the open
        // packet carry nothing to check.
        let Some(packet) = text.strip_prefix('4') else {
            return;
        };
        if dir == Dir::ToClient && !self.full_schema && self.vouched_delta(c, packet) {
            return;
        }
        let (event, payload) = match parse_packet(packet) {
            Frame::Event { name, payload } => (Some(name), payload),
            Frame::Ack { payload, .. } => (None, payload),
            _ => (None, Value::Null),
        };
        let broken = event.as_deref().and_then(|name| {
            let schema = event_schema(name)?;
            let set = SchemaSet::embedded();
            if set.is_valid(schema, &payload).unwrap_or(true) {
                return None;
            }
            let first = set
                .check(schema, &payload)
                .err()
                .and_then(|e| e.first().map(|e| e.to_string()))
                .unwrap_or_default();
            Some((schema, first))
        });
        let capturing = self.capturing();
        let line = capturing.then(|| match &event {
            Some(name) => {
                json!({ "kind": "socket.io", "conn": c.id, "dir": dir.name(), "event": name, "payload": payload })
            }
            None => {
                let short = &packet[..packet.floor_char_boundary(SHORT)];
                json!({ "kind": "socket.io", "conn": c.id, "dir": dir.name(), "packet": short })
            }
        });
        self.record(line);
        let mut st = c.state.lock().unwrap_or_else(|p| p.into_inner());
        st.remember(dir, packet);
        let Some(name) = event else { return };
        let valid = broken.is_none();
        if let Some((schema, first)) = broken {
            let context = st.context();
            self.violate(
                &mut self.lock(),
                format!("{} event {name}: does not match {schema}", dir.name()),
                schema.into(),
                first,
                context,
            );
        }
        if dir == Dir::ToClient {
            // A stream whose first delta is valid is vouched for; its end
            // forgets it.
            let stream = payload["streamId"].as_str();
            match (name.as_str(), stream) {
                ("message:delta", Some(id))
                    if valid && !capturing && st.vouched.len() < MAX_VOUCHED =>
                {
                    st.vouched.insert(id.to_string());
                }
                ("message:done", Some(id)) => {
                    st.vouched.remove(id);
                }
                _ => {}
            }
            st.checker.observe(&name, &payload);
            self.report_stream_violations(&mut st);
        }
    }

    /// A later delta of a vouched-for stream, read by the stream checker's
    /// byte-level path (every field the stream rules use, the nested
    /// message's `isStreaming` and `streamId`) instead of a `Value` and a
    /// full schema check: what lets the proxy keep up with a fast server.
    /// False (take the full path) for anything else, any delta the fast
    /// reader cannot read, and whenever there is a capture.
    fn vouched_delta(&self, c: &Connection, packet: &str) -> bool {
        let Some(json) = packet
            .strip_prefix("2[\"message:delta\",")
            .and_then(|p| p.strip_suffix(']'))
        else {
            return false;
        };
        let Some(raw) = crate::stream::RawDelta::parse_fast(json) else {
            return false;
        };
        let mut st = c.state.lock().unwrap_or_else(|p| p.into_inner());
        if !st.vouched.contains(raw.stream_id.as_ref()) {
            return false;
        }
        self.exchanges.fetch_add(1, Ordering::Relaxed);
        st.remember(Dir::ToClient, packet);
        st.checker.observe_delta(&raw.fields());
        self.report_stream_violations(&mut st);
        true
    }

    /// Reports the connection's stream violations found since the last call.
    fn report_stream_violations(&self, st: &mut ConnState) {
        if st.checker.violations().len() == st.seen_violations {
            return;
        }
        let new: Vec<crate::stream::Violation> =
            st.checker.violations()[st.seen_violations..].to_vec();
        st.seen_violations += new.len();
        let context = st.context();
        self.stream_violations(new.into_iter(), &context);
    }

    /// Stream checker verdicts as violations, each with `context`.
    fn stream_violations(
        &self,
        found: impl Iterator<Item = crate::stream::Violation>,
        context: &[String],
    ) {
        let mut s = self.lock();
        for v in found {
            self.violate(
                &mut s,
                format!("stream {}: {}", v.stream_id, v.rule),
                v.expected,
                v.actual,
                context.to_vec(),
            );
        }
    }

    /// A WebSocket text frame of a Phoenix (Thenvoi) connection: the V2
    /// frame shape, a server frame's kind, a push's payload.
    pub fn phoenix(&self, c: &Connection, dir: Dir, text: &str) {
        let frame: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let set = SchemaSet::embedded();
        let broken: Option<(&str, String)> = if frame.is_null() {
            Some(("thenvoi/phoenix/frame", "not JSON".into()))
        } else {
            crate::cases::thenvoi::phx::frame_checks(&frame, dir == Dir::ToClient)
                .into_iter()
                .find_map(|(schema, value)| {
                    let errors = set.check(schema, value).err()?;
                    Some((
                        schema,
                        errors.first().map(|e| e.to_string()).unwrap_or_default(),
                    ))
                })
        };
        let line = self.capturing().then(|| {
            if frame.is_null() {
                let short = &text[..text.floor_char_boundary(SHORT)];
                json!({ "kind": "phoenix", "conn": c.id, "dir": dir.name(), "raw": short })
            } else {
                json!({ "kind": "phoenix", "conn": c.id, "dir": dir.name(), "frame": frame })
            }
        });
        self.record(line);
        let mut st = c.state.lock().unwrap_or_else(|p| p.into_inner());
        st.remember(dir, text);
        if let Some((schema, first)) = broken {
            let event = frame[3].as_str().unwrap_or("a frame");
            let context = st.context();
            self.violate(
                &mut self.lock(),
                format!("{} Phoenix {event}: does not match {schema}", dir.name()),
                schema.into(),
                first,
                context,
            );
        }
    }

    /// A WebSocket whose frames can no longer be read (an extension's
    /// reserved bit, a message past the bound): named once, as a
    /// violation; the relaying goes on.
    pub fn unreadable(&self, c: &Connection, dir: Dir, why: &str) {
        let context = c.state.lock().unwrap_or_else(|p| p.into_inner()).context();
        self.violate(
            &mut self.lock(),
            format!(
                "connection {} {}: the frames cannot be checked",
                c.id,
                dir.name()
            ),
            "RFC 6455 frames without extensions, messages of at most 16 MiB".into(),
            why.to_string(),
            context,
        );
    }

    /// The run's end: streams left open are reported; the totals.
    pub fn finish(&self) -> (u64, Vec<Violation>) {
        let open: Vec<Arc<Connection>> = self
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, c)| c)
            .collect();
        let mut open = open;
        open.sort_by_key(|c| c.id);
        for c in &open {
            self.finish_connection(c);
        }
        let mut s = self.lock();
        if let Some(w) = s.capture.as_mut() {
            let _ = w.flush();
        }
        (self.exchanges.load(Ordering::Relaxed), s.violations.clone())
    }
}
