//! From a frame's JSON to the fields the checker reads, without a `Value`.
//!
//! The load generator checks every delta of every stream at the rate the
//! target sends them; a `serde_json::Value` per frame would allocate a map and
//! a string per field only to throw them away. So a delta is read into
//! borrowed fields instead: by a hand scanner for the common shape, else by a
//! serde visitor that stops at `"message"`; anything neither reads goes back
//! to `StreamChecker::observe`, which names the problem. The test at the end
//! holds the scanner to what the serde path reads, so the speed cannot change
//! a verdict.

use std::fmt;

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
/// [`StreamChecker::observe`](super::StreamChecker::observe), which names the problem.
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
