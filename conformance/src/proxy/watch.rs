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
use std::sync::Mutex;
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

struct State {
    checker: StreamChecker,
    seen_violations: usize,
    /// Streams whose first delta passed its schema in full: their later
    /// deltas take the byte-level path ([`Watch::vouched_delta`]).
    vouched: std::collections::HashSet<String>,
    recent: VecDeque<String>,
    violations: Vec<Violation>,
    exchanges: u64,
    capture: Option<std::io::BufWriter<std::fs::File>>,
}

/// Shared by every connection of a proxy run.
pub struct Watch {
    state: Mutex<State>,
    started: Instant,
    keep_tokens: bool,
    quiet: bool,
    /// Check every delta against its schema in full (`--full-schema`).
    full_schema: bool,
}

const CONTEXT: usize = 5;

/// Streams vouched for at once: a server that never ends its streams
/// cannot grow the set without bound (past it, deltas take the full path).
const MAX_VOUCHED: usize = 100_000;

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
            state: Mutex::new(State {
                checker: StreamChecker::new(),
                seen_violations: 0,
                vouched: std::collections::HashSet::new(),
                recent: VecDeque::new(),
                violations: Vec::new(),
                exchanges: 0,
                capture: capture.map(std::io::BufWriter::new),
            }),
            started: Instant::now(),
            keep_tokens,
            quiet,
            full_schema,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
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

    /// Counts an exchange, keeps it as context, and writes its capture
    /// line (`None` when there is no capture: not built at all).
    fn record(&self, s: &mut State, line: Option<Value>, summary: String) {
        s.exchanges += 1;
        s.recent.push_back(summary);
        while s.recent.len() > CONTEXT {
            s.recent.pop_front();
        }
        if let (Some(w), Some(line)) = (s.capture.as_mut(), line) {
            let mut line = self.redact(line);
            line["tMs"] = json!(self.started.elapsed().as_millis() as u64);
            let _ = writeln!(w, "{line}");
        }
    }

    fn violate(&self, s: &mut State, what: String, expected: String, actual: String) {
        let v = Violation {
            what,
            expected,
            actual,
            context: s.recent.iter().cloned().collect(),
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
        let mut s = self.lock();
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let line = s.capture.is_some().then(|| {
            json!({ "kind": "rest", "conn": conn, "method": method, "path": path, "status": status, "body": parsed })
        });
        self.record(&mut s, line, format!("{method} {path} → {status}"));
        if !path.starts_with("/api/") {
            return;
        }
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
                    );
                }
            }
            Verdict::NoRoute => {}
            Verdict::UndocumentedStatus(listed) => self.violate(
                &mut s,
                format!("{method} {route}: status {status} is not one this route answers"),
                format!("one of {listed:?} (schemas/openapi.json; PROTOCOL.md R6)"),
                format!("{status}"),
            ),
            Verdict::Invalid(first) => self.violate(
                &mut s,
                format!("{method} {route} -> {status}: the body breaks the route's schema"),
                format!("the {status} response schema of {method} {route} in schemas/openapi.json"),
                first,
            ),
        }
        if proteus && parsed.is_object() && (parsed["ok"] == true) != (200..300).contains(&status) {
            self.violate(
                &mut s,
                format!("{method} {path}: ok disagrees with the status"),
                format!("ok {} with status {status}", (200..300).contains(&status)),
                format!("ok {}", parsed["ok"]),
            );
        }
    }

    /// A WebSocket text frame of a socket.io connection.
    ///
    /// The frame is parsed and its payload validated before the shared
    /// state is locked (connections are checked in parallel); under the
    /// lock only the stream checker and the context ring are fed, and the
    /// capture line is built only when there is a capture.
    pub fn frame(&self, conn: u64, dir: Dir, text: &str) {
        // Engine.IO: `4` carries a socket.io packet; pings and the open
        // packet carry nothing to check.
        let Some(packet) = text.strip_prefix('4') else {
            return;
        };
        if dir == Dir::ToClient && !self.full_schema && self.vouched_delta(packet) {
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
        let short: String = packet.chars().take(120).collect();
        let mut s = self.lock();
        let line = s.capture.is_some().then(|| match &event {
            Some(name) => {
                json!({ "kind": "socket.io", "conn": conn, "dir": dir.name(), "event": name, "payload": payload })
            }
            None => {
                json!({ "kind": "socket.io", "conn": conn, "dir": dir.name(), "packet": short })
            }
        });
        self.record(&mut s, line, format!("{} {short}", dir.name()));
        let Some(name) = event else { return };
        let valid = broken.is_none();
        if let Some((schema, first)) = broken {
            self.violate(
                &mut s,
                format!("{} event {name}: does not match {schema}", dir.name()),
                schema.into(),
                first,
            );
        }
        if dir == Dir::ToClient {
            // A stream whose first delta is valid is vouched for; its end
            // forgets it.
            let stream = payload["streamId"].as_str();
            match (name.as_str(), stream) {
                ("message:delta", Some(id))
                    if valid && s.capture.is_none() && s.vouched.len() < MAX_VOUCHED =>
                {
                    s.vouched.insert(id.to_string());
                }
                ("message:done", Some(id)) => {
                    s.vouched.remove(id);
                }
                _ => {}
            }
            s.checker.observe(&name, &payload);
            self.report_stream_violations(&mut s);
        }
    }

    /// A later delta of a vouched-for stream, read by the stream checker's
    /// byte-level path (every field the stream rules use, the nested
    /// message's `isStreaming` and `streamId`) instead of a `Value` and a
    /// full schema check: what lets the proxy keep up with a fast server.
    /// False (take the full path) for anything else, any delta the fast
    /// reader cannot read, and whenever there is a capture.
    fn vouched_delta(&self, packet: &str) -> bool {
        let Some(json) = packet
            .strip_prefix("2[\"message:delta\",")
            .and_then(|p| p.strip_suffix(']'))
        else {
            return false;
        };
        let Some(raw) = crate::stream::RawDelta::parse(json) else {
            return false;
        };
        let mut s = self.lock();
        if s.capture.is_some() || !s.vouched.contains(raw.stream_id.as_ref()) {
            return false;
        }
        let short: String = packet.chars().take(120).collect();
        self.record(&mut s, None, format!("{} {short}", Dir::ToClient.name()));
        s.checker.observe_delta(&raw.fields());
        self.report_stream_violations(&mut s);
        true
    }

    /// Reports the stream checker's violations found since the last call.
    fn report_stream_violations(&self, s: &mut State) {
        if s.checker.violations().len() == s.seen_violations {
            return;
        }
        let new: Vec<crate::stream::Violation> =
            s.checker.violations()[s.seen_violations..].to_vec();
        s.seen_violations += new.len();
        for v in new {
            self.violate(
                s,
                format!("stream {}: {}", v.stream_id, v.rule),
                v.expected,
                v.actual,
            );
        }
    }

    /// A WebSocket text frame of a Phoenix (Thenvoi) connection: the V2
    /// frame shape, a server frame's kind, a push's payload.
    pub fn phoenix(&self, conn: u64, dir: Dir, text: &str) {
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
        let short: String = text.chars().take(120).collect();
        let mut s = self.lock();
        let line = s.capture.is_some().then(|| {
            if frame.is_null() {
                json!({ "kind": "phoenix", "conn": conn, "dir": dir.name(), "raw": short })
            } else {
                json!({ "kind": "phoenix", "conn": conn, "dir": dir.name(), "frame": frame })
            }
        });
        self.record(&mut s, line, format!("{} {short}", dir.name()));
        if let Some((schema, first)) = broken {
            let event = frame[3].as_str().unwrap_or("a frame");
            self.violate(
                &mut s,
                format!("{} Phoenix {event}: does not match {schema}", dir.name()),
                schema.into(),
                first,
            );
        }
    }

    /// The run's end: streams left open are reported; the totals.
    pub fn finish(&self) -> (u64, Vec<Violation>) {
        let mut s = self.lock();
        let checker = std::mem::take(&mut s.checker);
        let skip = s.seen_violations;
        let report = checker.finish();
        for v in report.violations.into_iter().skip(skip) {
            self.violate(
                &mut s,
                format!("stream {}: {}", v.stream_id, v.rule),
                v.expected,
                v.actual,
            );
        }
        if let Some(w) = s.capture.as_mut() {
            let _ = w.flush();
        }
        (s.exchanges, s.violations.clone())
    }
}
