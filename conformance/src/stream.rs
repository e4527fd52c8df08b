//! The streamed-reply checker.
//!
//! A streamed reply is one or more `message:delta` then exactly one
//! `message:done` (decisions.md 18). Deltas carry no sequence number, so order
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
//! Each hole left when the stream closes counts as one lost delta: when deltas
//! are lost one at a time, that is the exact number lost. A `message:done`
//! whose `content` extends the delivered text is a hole at the end (the last
//! delta was lost) and counts too.
//!
//! The checker never stores more than the current text of each stream and at
//! most [`REORDER_WINDOW`] held-back deltas, so a load generator can run it on
//! every frame of a long stream.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::Serialize;
use serde_json::Value;

/// How many deltas may arrive ahead of a missing one before the hole is
/// declared a loss.
pub const REORDER_WINDOW: usize = 16;

/// The rule a stream broke. The string codes are stable: fixtures, reports and
/// expectation files refer to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// A delta or done lacks a field the checker needs, or has the wrong type.
    Malformed,
    /// `messageId` (or the done's `id`) differs from the stream's first delta.
    MessageIdChanged,
    /// `chatId` differs from the stream's first delta.
    ChatIdChanged,
    /// A delta's `streamId` differs from the stream its `messageId` belongs to,
    /// or from its own `message.streamId`.
    StreamIdChanged,
    /// `message.isStreaming` is not `true` on a delta.
    DeltaNotStreaming,
    /// The same delta was delivered twice.
    Duplicate,
    /// A delta was lost: `content` jumped past text never delivered.
    Gap,
    /// Deltas arrived in a different order from the one `content` implies.
    OutOfOrder,
    /// `content` is not the concatenation of the deltas so far.
    ContentMismatch,
    /// A delta arrived after the stream's `message:done`.
    DeltaAfterDone,
    /// A second `message:done` for the same stream.
    DoubleDone,
    /// The capture ended before the stream's `message:done`.
    MissingDone,
    /// A `message:done` for a stream with no delta.
    DoneWithoutDeltas,
    /// `message:done` content is not the concatenation of every delta.
    DoneContentMismatch,
    /// `message:done` has `isStreaming` other than `false`.
    DoneStillStreaming,
    /// A plain `message` event was emitted for a streamed reply.
    PlainMessageForStream,
}

impl Rule {
    /// Every rule, in a stable order.
    pub const ALL: &'static [Rule] = &[
        Rule::Malformed,
        Rule::MessageIdChanged,
        Rule::ChatIdChanged,
        Rule::StreamIdChanged,
        Rule::DeltaNotStreaming,
        Rule::Duplicate,
        Rule::Gap,
        Rule::OutOfOrder,
        Rule::ContentMismatch,
        Rule::DeltaAfterDone,
        Rule::DoubleDone,
        Rule::MissingDone,
        Rule::DoneWithoutDeltas,
        Rule::DoneContentMismatch,
        Rule::DoneStillStreaming,
        Rule::PlainMessageForStream,
    ];

    /// The stable kebab-case code, e.g. `delta-after-done`.
    pub fn code(self) -> &'static str {
        match self {
            Rule::Malformed => "malformed",
            Rule::MessageIdChanged => "message-id-changed",
            Rule::ChatIdChanged => "chat-id-changed",
            Rule::StreamIdChanged => "stream-id-changed",
            Rule::DeltaNotStreaming => "delta-not-streaming",
            Rule::Duplicate => "duplicate",
            Rule::Gap => "gap",
            Rule::OutOfOrder => "out-of-order",
            Rule::ContentMismatch => "content-mismatch",
            Rule::DeltaAfterDone => "delta-after-done",
            Rule::DoubleDone => "double-done",
            Rule::MissingDone => "missing-done",
            Rule::DoneWithoutDeltas => "done-without-deltas",
            Rule::DoneContentMismatch => "done-content-mismatch",
            Rule::DoneStillStreaming => "done-still-streaming",
            Rule::PlainMessageForStream => "plain-message-for-stream",
        }
    }

    /// The rule for a code, if there is one.
    pub fn from_code(code: &str) -> Option<Rule> {
        Rule::ALL.iter().copied().find(|r| r.code() == code)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One broken rule, with where and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub rule: Rule,
    /// The stream it concerns (empty when the frame had none).
    pub stream_id: String,
    /// Index of the offending frame in the order frames were observed.
    pub frame: usize,
    pub expected: String,
    pub actual: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (stream {:?}, frame {}): expected {}, actual {}",
            self.rule, self.stream_id, self.frame, self.expected, self.actual
        )
    }
}

/// Counts per stream, exact under the rules above.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Deltas accepted into the running text (in order or reordered).
    pub deltas: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Holes in the text: one per lost run of deltas.
    pub lost: u64,
    pub content_violations: u64,
}

impl Counters {
    fn add(&mut self, other: &Counters) {
        self.deltas += other.deltas;
        self.duplicates += other.duplicates;
        self.out_of_order += other.out_of_order;
        self.lost += other.lost;
        self.content_violations += other.content_violations;
    }
}

/// The fields of a `message:delta` the checker reads, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct DeltaFields<'a> {
    pub stream_id: &'a str,
    pub message_id: &'a str,
    pub chat_id: &'a str,
    pub content_delta: &'a str,
    pub content: &'a str,
    /// `None`: no `message`; `Some(None)`: `message.isStreaming` missing or not a bool.
    pub message_is_streaming: Option<Option<bool>>,
    pub message_stream_id: Option<&'a str>,
    /// False when `message` was not read (the load generator's fast path):
    /// the two rules about it are then not checked.
    pub message_read: bool,
}

/// A `message:delta` payload parsed without building a `Value`: what a load
/// generator needs to check a million deltas a second. Strings are borrowed
/// from the frame unless they hold escapes. Anything that does not fit (a
/// missing field, a wrong type) fails to parse: fall back to
/// [`StreamChecker::observe`], which names the problem.
#[derive(Debug, serde::Deserialize)]
pub struct RawDelta<'a> {
    #[serde(rename = "streamId", borrow)]
    pub stream_id: std::borrow::Cow<'a, str>,
    #[serde(rename = "messageId", borrow)]
    pub message_id: std::borrow::Cow<'a, str>,
    #[serde(rename = "chatId", borrow)]
    pub chat_id: std::borrow::Cow<'a, str>,
    #[serde(rename = "contentDelta", borrow)]
    pub content_delta: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub content: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    pub message: Option<RawDeltaMessage<'a>>,
    /// Set by [`RawDelta::parse_measured`]: `message` was not read.
    #[serde(skip)]
    pub message_skipped: bool,
}

/// The part of a delta's `message` the checker reads.
#[derive(Debug, serde::Deserialize)]
pub struct RawDeltaMessage<'a> {
    #[serde(rename = "isStreaming", default)]
    pub is_streaming: Option<bool>,
    #[serde(rename = "streamId", default, borrow)]
    pub stream_id: Option<std::borrow::Cow<'a, str>>,
}

impl<'a> RawDelta<'a> {
    /// Parses the JSON of a delta payload.
    pub fn parse(json: &'a str) -> Option<RawDelta<'a>> {
        serde_json::from_str(json).ok()
    }

    pub fn fields(&self) -> DeltaFields<'_> {
        DeltaFields {
            stream_id: &self.stream_id,
            message_id: &self.message_id,
            chat_id: &self.chat_id,
            content_delta: &self.content_delta,
            content: &self.content,
            message_is_streaming: self.message.as_ref().map(|m| m.is_streaming),
            message_stream_id: self.message.as_ref().and_then(|m| m.stream_id.as_deref()),
            message_read: !self.message_skipped,
        }
    }

    /// Parses only the top-level fields and stops at `"message"`: what the
    /// load generator measures (order, loss, duplicates, content) without
    /// scanning the nested message (more than half of a delta's bytes). The
    /// rules about `message` itself are then not checked; the conformance
    /// runner checks them. `None` when a field is missing or there is no
    /// `message` (parse in full then, so the checker can name the problem).
    pub fn parse_measured(json: &'a str) -> Option<RawDelta<'a>> {
        scan_top(json).or_else(|| Self::parse_measured_serde(json))
    }

    /// [`parse_measured`](Self::parse_measured) through serde: handles
    /// escapes, non-string fields before `message`, any order.
    fn parse_measured_serde(json: &'a str) -> Option<RawDelta<'a>> {
        use serde::Deserializer as _;
        let mut top = Top::default();
        let mut de = serde_json::Deserializer::from_str(json);
        // Stopping at "message" ends the parse with an error on purpose.
        let _ = de.deserialize_map(TopVisitor { out: &mut top });
        if !top.reached_message {
            return None;
        }
        top.into_delta()
    }
}

/// The common shape, by hand: `{"key":"string",…,"message":…` with no escape
/// in the strings read. Anything else is `None` (the serde path takes it).
fn scan_top(json: &str) -> Option<RawDelta<'_>> {
    let b = json.as_bytes();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    // A string starting at b[i] == '"', without escapes: its contents.
    let string = |i: &mut usize| -> Option<&str> {
        if b.get(*i) != Some(&b'"') {
            return None;
        }
        let start = *i + 1;
        let end = start + memchr::memchr2(b'"', b'\\', &b[start..])?;
        if b[end] != b'"' {
            return None;
        }
        *i = end + 1;
        json.get(start..end)
    };
    skip_ws(&mut i);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    let mut top = Top::default();
    loop {
        skip_ws(&mut i);
        let key = string(&mut i)?;
        skip_ws(&mut i);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i += 1;
        skip_ws(&mut i);
        if key == "message" {
            break;
        }
        let value = string(&mut i)?;
        let slot = match key {
            "streamId" => &mut top.stream_id,
            "messageId" => &mut top.message_id,
            "chatId" => &mut top.chat_id,
            "contentDelta" => &mut top.content_delta,
            "content" => &mut top.content,
            _ => &mut top.other,
        };
        *slot = Some(std::borrow::Cow::Borrowed(value));
        skip_ws(&mut i);
        match b.get(i) {
            Some(b',') => i += 1,
            _ => return None,
        }
    }
    top.into_delta()
}

/// A string, borrowed from the frame unless it holds escapes.
#[derive(serde::Deserialize)]
struct Text<'a>(#[serde(borrow)] std::borrow::Cow<'a, str>);

#[derive(Default)]
struct Top<'a> {
    stream_id: Option<std::borrow::Cow<'a, str>>,
    message_id: Option<std::borrow::Cow<'a, str>>,
    chat_id: Option<std::borrow::Cow<'a, str>>,
    content_delta: Option<std::borrow::Cow<'a, str>>,
    content: Option<std::borrow::Cow<'a, str>>,
    /// Other string fields the hand scanner passes over.
    other: Option<std::borrow::Cow<'a, str>>,
    reached_message: bool,
}

impl<'a> Top<'a> {
    /// The delta, when every field the checker reads was found (its
    /// `message` passed over).
    fn into_delta(self) -> Option<RawDelta<'a>> {
        Some(RawDelta {
            stream_id: self.stream_id?,
            message_id: self.message_id?,
            chat_id: self.chat_id?,
            content_delta: self.content_delta?,
            content: self.content?,
            message: None,
            message_skipped: true,
        })
    }
}

struct TopVisitor<'s, 'a> {
    out: &'s mut Top<'a>,
}

impl<'de> serde::de::Visitor<'de> for TopVisitor<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a message:delta object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            let slot = match &*key {
                "streamId" => &mut self.out.stream_id,
                "messageId" => &mut self.out.message_id,
                "chatId" => &mut self.out.chat_id,
                "contentDelta" => &mut self.out.content_delta,
                "content" => &mut self.out.content,
                "message" => {
                    self.out.reached_message = true;
                    return Err(serde::de::Error::custom("stop at message"));
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    continue;
                }
            };
            *slot = Some(map.next_value::<Text<'de>>()?.0);
        }
        Ok(())
    }
}

/// The fields of a `message:done` the checker reads, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct DoneFields<'a> {
    pub stream_id: Option<&'a str>,
    pub id: Option<&'a str>,
    pub content: Option<&'a str>,
    pub is_streaming: Option<bool>,
}

/// A `message:done` payload parsed without building a `Value` (see [`RawDelta`]).
#[derive(Debug, serde::Deserialize)]
pub struct RawDone<'a> {
    #[serde(rename = "streamId", borrow)]
    pub stream_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub content: std::borrow::Cow<'a, str>,
    #[serde(rename = "isStreaming")]
    pub is_streaming: bool,
}

impl<'a> RawDone<'a> {
    pub fn parse(json: &'a str) -> Option<RawDone<'a>> {
        serde_json::from_str(json).ok()
    }

    pub fn fields(&self) -> DoneFields<'_> {
        DoneFields {
            stream_id: Some(&self.stream_id),
            id: Some(&self.id),
            content: Some(&self.content),
            is_streaming: Some(self.is_streaming),
        }
    }
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

/// A delta held back because it arrived ahead of a missing one.
#[derive(Debug)]
struct Ahead {
    content: String,
    delta_len: usize,
    frame: usize,
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

/// FNV-1a: the maps here are keyed by ids the checker reads on every delta;
/// SipHash's DoS resistance buys nothing in a test tool and costs per delta.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // FNV-style, eight bytes a step (ids are 24 ASCII bytes).
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(c);
            self.0 = (self.0 ^ u64::from_le_bytes(word)).wrapping_mul(0x0100_0000_01b3);
            self.0 ^= self.0 >> 29;
        }
        for b in chunks.remainder() {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A `HashMap` with [`Fnv`] hashing.
pub type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<Fnv>>;

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

/// The outcome of a whole capture.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StreamReport {
    pub streams: usize,
    pub completed: usize,
    pub totals: Counters,
    pub violations: Vec<Violation>,
}

impl StreamReport {
    /// Whether no rule was broken.
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }

    /// The distinct rules broken, sorted.
    pub fn rules(&self) -> Vec<Rule> {
        let mut rules: Vec<Rule> = self.violations.iter().map(|v| v.rule).collect();
        rules.sort();
        rules.dedup();
        rules
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

    /// Applies one delta to the running text, noting each rule it breaks.
    ///
    /// The running text is the concatenation of `contentDelta`s, as a client
    /// builds it: a delta whose `content` is simply wrong still contributes its
    /// chunk, so one bad frame is reported once and not as a cascade.
    fn advance(
        s: &mut Stream,
        delta: &str,
        content: &str,
        frame: usize,
        found: &mut Vec<(Rule, String, String)>,
    ) {
        let base = s.text.len();
        let extends = content.len() == base + delta.len()
            && content.starts_with(&s.text)
            && content.ends_with(delta);
        if extends {
            s.text.push_str(delta);
            s.boundaries.push(s.text.len());
            s.counters.deltas += 1;
            // A late delta may make held-back ones contiguous: they were reordered.
            while let Some(entry) = s.ahead.first_entry() {
                let a = entry.get();
                if a.content.len() - a.delta_len != s.text.len() || !a.content.starts_with(&s.text)
                {
                    break;
                }
                let a = entry.remove();
                s.text = a.content;
                s.boundaries.push(s.text.len());
                s.counters.deltas += 1;
                s.counters.out_of_order += 1;
                found.push((
                    Rule::OutOfOrder,
                    format!(
                        "the delta ending at byte {} before the one ending at byte {}",
                        base + delta.len(),
                        s.text.len()
                    ),
                    format!(
                        "it arrived after (frame {} came before frame {frame})",
                        a.frame
                    ),
                ));
            }
            return;
        }
        let repeats = content.len() <= base
            && s.text.starts_with(content)
            && content.ends_with(delta)
            && s.boundaries.binary_search(&content.len()).is_ok();
        if repeats
            || s.ahead
                .get(&content.len())
                .is_some_and(|a| a.content == content)
        {
            s.counters.duplicates += 1;
            found.push((
                Rule::Duplicate,
                "each delta once".into(),
                format!("a repeat of the delta ending at byte {}", content.len()),
            ));
            return;
        }
        let ahead = content.len() > base + delta.len()
            && content.starts_with(&s.text)
            && content.ends_with(delta);
        if ahead {
            s.ahead.insert(
                content.len(),
                Ahead {
                    content: content.to_string(),
                    delta_len: delta.len(),
                    frame,
                },
            );
            return;
        }
        s.counters.content_violations += 1;
        found.push((
            Rule::ContentMismatch,
            format!(
                "content = previous content + contentDelta = {}",
                short(&format!("{}{delta}", s.text))
            ),
            short(content),
        ));
        s.text.push_str(delta);
        s.boundaries.push(s.text.len());
        s.counters.deltas += 1;
    }

    /// Declares the holes in front of held-back deltas lost and resumes after them.
    fn settle(s: &mut Stream, stream_id: &str, violations: &mut Vec<Violation>) {
        while let Some((_, a)) = s.ahead.pop_first() {
            let start = a.content.len() - a.delta_len;
            if start != s.text.len() {
                s.counters.lost += 1;
                violations.push(Violation {
                    rule: Rule::Gap,
                    stream_id: stream_id.to_string(),
                    frame: a.frame,
                    expected: format!("the delta that continues the text at byte {}", s.text.len()),
                    actual: format!("next text delivered starts at byte {start}"),
                });
            }
            s.text = a.content;
            s.boundaries.push(s.text.len());
            s.counters.deltas += 1;
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
                if other.is_some_and(|c| c.len() > stream.text.len() && c.starts_with(&stream.text))
                {
                    stream.counters.lost += 1;
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

#[cfg(test)]
mod tests {
    use super::RawDelta;

    fn fields(d: &RawDelta<'_>) -> [String; 5] {
        [
            &d.stream_id,
            &d.message_id,
            &d.chat_id,
            &d.content_delta,
            &d.content,
        ]
        .map(|c| c.to_string())
    }

    #[test]
    fn the_hand_scanner_reads_what_the_serde_path_reads_or_hands_over() {
        let cases = [
            r#"{"chatId":"c","streamId":"s","messageId":"m","contentDelta":"b","content":"ab","message":{"isStreaming":true}}"#,
            r#"{ "streamId" : "s", "chatId":"c", "messageId":"m", "content":"ab", "contentDelta":"b", "message": {} }"#,
            // Escapes, a number before message, no message: the scanner hands over.
            r#"{"chatId":"c","streamId":"s","messageId":"m","contentDelta":"\"b","content":"a\"b","message":{}}"#,
            r#"{"n":1,"chatId":"c","streamId":"s","messageId":"m","contentDelta":"b","content":"ab","message":{}}"#,
            r#"{"chatId":"c","streamId":"s","messageId":"m","contentDelta":"b","content":"ab"}"#,
        ];
        for json in cases {
            let scanned = super::scan_top(json);
            let serde = RawDelta::parse_measured_serde(json);
            if let Some(s) = &scanned {
                let d = serde.as_ref().expect("serde reads what the scanner reads");
                assert_eq!(fields(s), fields(d), "{json}");
            }
            assert_eq!(
                RawDelta::parse_measured(json).map(|d| fields(&d)),
                serde.map(|d| fields(&d)),
                "{json}"
            );
        }
        assert!(super::scan_top(r#"{"chatId":"c","streamId":"s","messageId":"m","contentDelta":"\"b","content":"a\"b","message":{}}"#).is_none());
    }
}
