//! The streamed-reply checker.
//!
//! A streamed reply is one or more `message:delta` then exactly one
//! `message:done` (PROTOCOL.md R18). Deltas carry no sequence number, so order
//! is read from the cumulative `content`: every delta must satisfy
//! `content == previous content + contentDelta`. That one rule lets the
//! checker tell apart, without guessing:
//!
//! - a **duplicate**: the delta repeats a state already reached (`content` is
//!   an earlier prefix that ended a delta, and ends with `contentDelta`);
//! - a **gap** (a lost delta): `content` extends the current text by more than
//!   `contentDelta`; the delta is held back in a small window in case the
//!   missing one is only late;
//! - **out of order**: a held-back delta becomes contiguous once a late delta
//!   arrives (two deltas swapped);
//! - a **content mismatch**: anything else (`content` is not the running
//!   concatenation).
//!
//! Each hole left when the stream closes counts once (`lost`: a missing
//! segment): when deltas are lost one at a time, that is the exact number
//! lost, but a run of adjacent lost deltas is one hole, and the wire cannot
//! tell how many deltas it was. What it can tell exactly is how much text is
//! missing: the cumulative `content` after a hole says where the text
//! resumes, so `missing_chars` counts the characters never delivered. A
//! `message:done` whose `content` extends the delivered text is a hole at the
//! end (the last delta was lost) and counts too.
//!
//! The checker never stores more than the current text of each stream and at
//! most [`REORDER_WINDOW`] held-back deltas, so a load generator can run it on
//! every frame of a long stream.
//!
//! This file is the checker itself: it takes frames, keeps each stream's ids
//! and applies the rules of one frame. The rest sits beside it, one concern
//! a file, so each can be read alone: `rules` (the stable codes and the
//! report, which fixtures and callers depend on), `wire` (reading a frame
//! without building a `Value`, for the load generator), `order` (rebuilding
//! the text from deltas that come late, twice or never) and `hash` (the id
//! maps' hasher). Every public item is re-exported here:
//! `proteus_conformance::stream::X` stays the one path callers use.

use std::collections::BTreeMap;

use serde_json::Value;

mod hash;
mod order;
mod rules;
mod wire;

pub use hash::{FastMap, Fnv};
pub use rules::{Counters, Rule, StreamReport, Violation};
pub use wire::{DeltaFields, DoneFields, RawDelta, RawDeltaMessage, RawDone};

use order::Ahead;

/// How many deltas may arrive ahead of a missing one before the hole is
/// declared a loss.
pub const REORDER_WINDOW: usize = 16;

/// Checks every stream seen in a sequence of realtime frames.
#[derive(Debug, Default)]
pub struct StreamChecker {
    /// Every stream seen, in order of its first delta.
    streams: Vec<Stream>,
    /// streamId → its place in `streams`.
    index: FastMap<String, usize>,
    /// The stream of the last delta: consecutive deltas of one stream (the
    /// common case on one connection) find it with one comparison instead
    /// of a hash and a probe.
    last: Option<usize>,
    /// messageId → streamId, to catch a delta carrying a foreign streamId.
    by_message: FastMap<String, String>,
    violations: Vec<Violation>,
    frames: usize,
}

#[derive(Debug)]
struct Stream {
    id: String,
    message_id: String,
    chat_id: String,
    /// The text accepted so far (the contiguous prefix); freed at the done,
    /// after which only the ids and counters matter.
    text: String,
    /// Lengths of `text` after each accepted delta: a repeated delta's
    /// `content` has one of these lengths.
    boundaries: Vec<usize>,
    /// Deltas that arrived ahead of a hole, keyed by content length.
    ahead: BTreeMap<usize, Ahead>,
    done: bool,
    counters: Counters,
}

impl Stream {
    fn new(stream_id: &str, message_id: &str, chat_id: &str) -> Self {
        Stream {
            id: stream_id.to_string(),
            message_id: message_id.to_string(),
            chat_id: chat_id.to_string(),
            text: String::new(),
            boundaries: Vec::new(),
            ahead: BTreeMap::new(),
            done: false,
            counters: Counters::default(),
        }
    }
}

fn field<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}

fn short(s: &str) -> String {
    const MAX: usize = 60;
    if s.len() <= MAX {
        format!("{s:?}")
    } else {
        let cut = (0..=MAX)
            .rev()
            .find(|i| s.is_char_boundary(*i))
            .unwrap_or(0);
        format!("{:?}… ({} bytes)", &s[..cut], s.len())
    }
}

impl StreamChecker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Observes one realtime frame. Events other than `message`,
    /// `message:delta` and `message:done` are ignored.
    pub fn observe(&mut self, event: &str, payload: &Value) {
        let frame = self.frames;
        self.frames += 1;
        match event {
            "message:delta" => self.delta(frame, payload),
            "message:done" => self.done(frame, payload),
            "message" => self.plain(frame, payload),
            _ => {}
        }
    }

    /// Checks a whole capture of `(event, payload)` frames.
    pub fn check<'a>(frames: impl IntoIterator<Item = (&'a str, &'a Value)>) -> StreamReport {
        let mut checker = StreamChecker::new();
        for (event, payload) in frames {
            checker.observe(event, payload);
        }
        checker.finish()
    }

    /// Violations found so far (a live view; [`finish`](Self::finish) adds
    /// the ones only the end of a capture can show).
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// Counters of one stream, if it was seen.
    pub fn counters(&self, stream_id: &str) -> Option<&Counters> {
        self.find(stream_id).map(|i| &self.streams[i].counters)
    }

    /// Where stream `stream_id` is in `streams`.
    fn find(&self, stream_id: &str) -> Option<usize> {
        self.last
            .filter(|&i| self.streams[i].id == stream_id)
            .or_else(|| self.index.get(stream_id).copied())
    }

    /// Ends the capture: open streams are reported as missing their done.
    pub fn finish(mut self) -> StreamReport {
        let mut streams = std::mem::take(&mut self.streams);
        streams.sort_by(|a, b| a.id.cmp(&b.id));
        let mut report = StreamReport {
            streams: streams.len(),
            ..Default::default()
        };
        for mut stream in streams {
            let id = std::mem::take(&mut stream.id);
            if stream.done {
                report.completed += 1;
            } else {
                let frame = self.frames;
                Self::settle(&mut stream, &id, &mut self.violations);
                self.violations.push(Violation {
                    rule: Rule::MissingDone,
                    stream_id: id.clone(),
                    frame,
                    expected: "one message:done closing the stream".into(),
                    actual: format!(
                        "capture ended after {} deltas and no done",
                        stream.counters.deltas
                    ),
                });
            }
            report.totals.add(&stream.counters);
        }
        report.violations = self.violations;
        report
    }

    fn violation(
        &mut self,
        rule: Rule,
        stream_id: &str,
        frame: usize,
        expected: String,
        actual: String,
    ) {
        self.violations.push(Violation {
            rule,
            stream_id: stream_id.to_string(),
            frame,
            expected,
            actual,
        });
    }

    fn delta(&mut self, frame: usize, d: &Value) {
        let (Some(stream_id), Some(message_id), Some(chat_id), Some(delta), Some(content)) = (
            field(d, "streamId"),
            field(d, "messageId"),
            field(d, "chatId"),
            field(d, "contentDelta"),
            field(d, "content"),
        ) else {
            let sid = field(d, "streamId").unwrap_or_default().to_string();
            self.violation(
                Rule::Malformed,
                &sid,
                frame,
                "a delta with string streamId, messageId, chatId, contentDelta and content".into(),
                short(&d.to_string()),
            );
            return;
        };
        let message = d.get("message");
        let fields = DeltaFields {
            stream_id,
            message_id,
            chat_id,
            content_delta: delta,
            content,
            message_is_streaming: message.map(|m| m.get("isStreaming").and_then(Value::as_bool)),
            message_stream_id: message.and_then(|m| field(m, "streamId")),
            message_read: true,
        };
        self.delta_fields(frame, &fields);
    }

    /// A delta already parsed (the fast path: see [`RawDelta`]).
    pub fn observe_delta(&mut self, d: &DeltaFields<'_>) {
        let frame = self.frames;
        self.frames += 1;
        self.delta_fields(frame, d);
    }

    fn delta_fields(&mut self, frame: usize, d: &DeltaFields<'_>) {
        let (stream_id, message_id, chat_id) = (d.stream_id, d.message_id, d.chat_id);
        if d.message_read && d.message_is_streaming.flatten() != Some(true) {
            self.violation(
                Rule::DeltaNotStreaming,
                stream_id,
                frame,
                "message.isStreaming = true".into(),
                match d.message_is_streaming {
                    Some(Some(b)) => b.to_string(),
                    _ => "null".into(),
                },
            );
        }
        if let Some(inner) = d.message_stream_id.filter(|s| *s != stream_id) {
            self.violation(
                Rule::StreamIdChanged,
                stream_id,
                frame,
                format!("message.streamId = {stream_id:?} (the delta's streamId)"),
                format!("{inner:?}"),
            );
        }
        // The common case (a known stream, its own message id) takes one
        // lookup: only a new stream or a changed id can clash with another.
        let found = self.find(stream_id);
        if let Some(i) = found.filter(|&i| self.streams[i].message_id == message_id) {
            return self.apply_at(i, d, frame);
        }
        if let Some(owner) = self
            .by_message
            .get(message_id)
            .filter(|o| o.as_str() != stream_id)
            .cloned()
        {
            self.violation(
                Rule::StreamIdChanged,
                &owner,
                frame,
                format!("streamId {owner:?} for message {message_id}"),
                format!("{stream_id:?}"),
            );
            return;
        }
        let i = found.unwrap_or_else(|| {
            self.by_message
                .entry(message_id.to_string())
                .or_insert_with(|| stream_id.to_string());
            self.index.insert(stream_id.to_string(), self.streams.len());
            self.streams
                .push(Stream::new(stream_id, message_id, chat_id));
            self.streams.len() - 1
        });
        self.apply_at(i, d, frame);
    }

    /// Applies a delta to the stream at `i`, which becomes the last one seen.
    fn apply_at(&mut self, i: usize, d: &DeltaFields<'_>, frame: usize) {
        self.last = Some(i);
        Self::apply(
            &mut self.streams[i],
            &mut self.violations,
            d.stream_id,
            d,
            frame,
        );
    }

    /// The rules of one delta of a known stream.
    fn apply(
        stream: &mut Stream,
        violations: &mut Vec<Violation>,
        stream_id: &str,
        d: &DeltaFields<'_>,
        frame: usize,
    ) {
        let (message_id, chat_id, delta, content) =
            (d.message_id, d.chat_id, d.content_delta, d.content);
        let mut found = Vec::new();
        if stream.done {
            found.push((
                Rule::DeltaAfterDone,
                "no delta after message:done".into(),
                short(delta),
            ));
        }
        if stream.message_id != message_id {
            found.push((
                Rule::MessageIdChanged,
                format!("messageId {:?}", stream.message_id),
                format!("{message_id:?}"),
            ));
        }
        if stream.chat_id != chat_id {
            found.push((
                Rule::ChatIdChanged,
                format!("chatId {:?}", stream.chat_id),
                format!("{chat_id:?}"),
            ));
        }
        if !stream.done {
            Self::advance(stream, delta, content, frame, &mut found);
            if stream.ahead.len() > REORDER_WINDOW {
                Self::settle(stream, stream_id, violations);
            }
        }
        for (rule, expected, actual) in found {
            violations.push(Violation {
                rule,
                stream_id: stream_id.to_string(),
                frame,
                expected,
                actual,
            });
        }
    }

    fn done(&mut self, frame: usize, m: &Value) {
        let fields = DoneFields {
            stream_id: field(m, "streamId"),
            id: field(m, "id"),
            content: field(m, "content"),
            is_streaming: m.get("isStreaming").and_then(Value::as_bool),
        };
        self.done_fields(frame, &fields);
    }

    /// A `message:done` already parsed (the fast path: see [`RawDone`]).
    pub fn observe_done(&mut self, d: &DoneFields<'_>) {
        let frame = self.frames;
        self.frames += 1;
        self.done_fields(frame, d);
    }

    fn done_fields(&mut self, frame: usize, m: &DoneFields<'_>) {
        let Some(stream_id) = m.stream_id else {
            self.violation(
                Rule::Malformed,
                "",
                frame,
                "message:done with a string streamId".into(),
                "no string streamId".into(),
            );
            return;
        };
        let Some(stream) = self.find(stream_id).map(|i| &mut self.streams[i]) else {
            self.violation(
                Rule::DoneWithoutDeltas,
                stream_id,
                frame,
                "at least one message:delta before message:done".into(),
                "a done for a stream never seen".into(),
            );
            return;
        };
        if stream.done {
            self.violation(
                Rule::DoubleDone,
                stream_id,
                frame,
                "exactly one message:done".into(),
                "a second one".into(),
            );
            return;
        }
        let mut found = Vec::new();
        Self::settle(stream, stream_id, &mut self.violations);
        stream.done = true;
        if let Some(id) = m.id.filter(|id| *id != stream.message_id) {
            found.push((
                Rule::MessageIdChanged,
                format!("id {:?} (the deltas' messageId)", stream.message_id),
                format!("{id:?}"),
            ));
        }
        match m.content {
            Some(c) if c == stream.text => {}
            other => {
                // A done that extends the text the deltas built is what a lost
                // final delta looks like (it is also what a done with extra
                // text looks like: the wire cannot tell them apart). Counted
                // as one hole, like any other run of lost deltas.
                if let Some(c) =
                    other.filter(|c| c.len() > stream.text.len() && c.starts_with(&stream.text))
                {
                    stream.counters.lost += 1;
                    stream.counters.missing_chars +=
                        order::missing_chars(c, stream.text.len(), c.len());
                }
                found.push((
                    Rule::DoneContentMismatch,
                    format!(
                        "content = concatenation of the deltas = {}",
                        short(&stream.text)
                    ),
                    other
                        .map(short)
                        .unwrap_or_else(|| "no string content".into()),
                ));
            }
        }
        if m.is_streaming != Some(false) {
            found.push((
                Rule::DoneStillStreaming,
                "isStreaming = false".into(),
                m.is_streaming.map_or("not false".into(), |b| b.to_string()),
            ));
        }
        // A done stream only checks ids from now on: memory stays flat over
        // a long run of streams.
        stream.text = String::new();
        stream.boundaries = Vec::new();
        for (rule, expected, actual) in found {
            self.violation(rule, stream_id, frame, expected, actual);
        }
    }

    fn plain(&mut self, frame: usize, m: &Value) {
        let by_stream = field(m, "streamId").filter(|s| self.find(s).is_some());
        let by_id = field(m, "id").and_then(|id| self.by_message.get(id));
        if let Some(sid) = by_stream.map(str::to_string).or_else(|| by_id.cloned()) {
            self.violation(
                Rule::PlainMessageForStream,
                &sid,
                frame,
                "no plain message event for a streamed reply (deltas and done instead)".into(),
                "a message event for the streamed reply".into(),
            );
        }
    }
}
