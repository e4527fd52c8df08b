//! What a stream can break, and the verdict that names it.
//!
//! These types are the checker's contract with everything outside it. The
//! rule codes are stable strings that fixtures, reports and expectation files
//! spell out; `Violation`, `Counters` and `StreamReport` are serialized into
//! reports and read by the load generator. Kept apart from the algorithm that
//! produces them, a change to how the checker works touches this file only
//! when it changes what the checker says.

use std::fmt;

use serde::Serialize;

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
    /// Holes in the text: one per lost run of deltas (the wire cannot tell
    /// how many deltas a run of adjacent lost ones was).
    pub lost: u64,
    /// Characters of text never delivered: the holes' sizes, exact, read
    /// from the cumulative `content` that follows each hole.
    pub missing_chars: u64,
    pub content_violations: u64,
}

impl Counters {
    pub(super) fn add(&mut self, other: &Counters) {
        self.deltas += other.deltas;
        self.duplicates += other.duplicates;
        self.out_of_order += other.out_of_order;
        self.lost += other.lost;
        self.missing_chars += other.missing_chars;
        self.content_violations += other.content_violations;
    }
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
