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

    /// As [`parse`](Self::parse), `message` included, by the hand scanner
    /// when the delta has the common shape (every string without escapes
    /// or control characters, `message` last, its `isStreaming` and
    /// `streamId` read, its other values checked as JSON and passed over),
    /// else by serde. What the validating proxy reads every later delta
    /// with; the test at the end holds it to [`parse`](Self::parse).
    pub fn parse_fast(json: &'a str) -> Option<RawDelta<'a>> {
        scan_full(json).or_else(|| Self::parse(json))
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
    scan_to_message(json, false).and_then(|(top, _)| top.into_delta())
}

/// The top-level fields up to `"message"`, and where its value starts.
/// `strict`: hand over (`None`) on anything serde would refuse or read
/// differently (a raw control character in a string, a field twice).
fn scan_to_message(json: &str, strict: bool) -> Option<(Top<'_>, usize)> {
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
        if b[end] != b'"' || (strict && has_control(&b[start..end])) {
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
            return Some((top, i));
        }
        let value = string(&mut i)?;
        let known = matches!(
            key,
            "streamId" | "messageId" | "chatId" | "contentDelta" | "content"
        );
        let slot = match key {
            "streamId" => &mut top.stream_id,
            "messageId" => &mut top.message_id,
            "chatId" => &mut top.chat_id,
            "contentDelta" => &mut top.content_delta,
            "content" => &mut top.content,
            _ => &mut top.other,
        };
        if strict && known && slot.is_some() {
            return None;
        }
        *slot = Some(std::borrow::Cow::Borrowed(value));
        skip_ws(&mut i);
        match b.get(i) {
            Some(b',') => i += 1,
            _ => return None,
        }
    }
}

/// The whole delta by hand (see [`RawDelta::parse_fast`]); `None` hands
/// over to serde.
fn scan_full(json: &str) -> Option<RawDelta<'_>> {
    let (top, mut i) = scan_to_message(json, true)?;
    let b = json.as_bytes();
    let mut message = RawDeltaMessage {
        is_streaming: None,
        stream_id: None,
    };
    let (mut seen_streaming, mut seen_stream) = (false, false);
    expect(b, &mut i, b'{')?;
    skip_ws(b, &mut i);
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            skip_ws(b, &mut i);
            let key = plain_string(json, &mut i)?;
            skip_ws(b, &mut i);
            expect(b, &mut i, b':')?;
            skip_ws(b, &mut i);
            match key {
                "isStreaming" if !seen_streaming => {
                    seen_streaming = true;
                    message.is_streaming = match literal(b, &mut i)? {
                        b"true" => Some(true),
                        b"false" => Some(false),
                        b"null" => None,
                        _ => return None,
                    };
                }
                "streamId" if !seen_stream => {
                    seen_stream = true;
                    message.stream_id = if b.get(i) == Some(&b'"') {
                        Some(std::borrow::Cow::Borrowed(plain_string(json, &mut i)?))
                    } else if literal(b, &mut i)? == b"null" {
                        None
                    } else {
                        return None;
                    };
                }
                "isStreaming" | "streamId" => return None,
                _ => skip_value(json, &mut i, 0)?,
            }
            skip_ws(b, &mut i);
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    // `message` last: the top-level object ends here.
    skip_ws(b, &mut i);
    expect(b, &mut i, b'}')?;
    skip_ws(b, &mut i);
    if i != b.len() {
        return None;
    }
    let mut delta = top.into_delta()?;
    delta.message = Some(message);
    delta.message_skipped = false;
    Some(delta)
}

/// Whether `b` holds a byte below 0x20 (a control character JSON strings
/// may not hold raw), eight bytes at a time: a delta's cumulative
/// `content` is read twice per delta, so this is on the proxy's hot path.
fn has_control(b: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let x = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        // A byte below 0x20 borrows in `x - 0x20…`, and has its high bit
        // clear in `x` (bytes of 0x80 and up never count).
        if x.wrapping_sub(ONES * 0x20) & !x & HIGH != 0 {
            return true;
        }
    }
    chunks.remainder().iter().any(|&c| c < 0x20)
}

fn skip_ws(b: &[u8], i: &mut usize) {
    while *i < b.len() && matches!(b[*i], b' ' | b'\t' | b'\n' | b'\r') {
        *i += 1;
    }
}

fn expect(b: &[u8], i: &mut usize, c: u8) -> Option<()> {
    (b.get(*i) == Some(&c)).then(|| *i += 1)
}

/// A string without escapes or control characters at `b[i] == '"'`: its
/// contents.
fn plain_string<'a>(json: &'a str, i: &mut usize) -> Option<&'a str> {
    let b = json.as_bytes();
    expect(b, i, b'"')?;
    let start = *i;
    let end = start + memchr::memchr2(b'"', b'\\', &b[start..])?;
    if b[end] != b'"' || has_control(&b[start..end]) {
        return None;
    }
    *i = end + 1;
    json.get(start..end)
}

/// `true`, `false`, `null` or a JSON number (RFC 8259's grammar): its
/// bytes.
fn literal<'a>(b: &'a [u8], i: &mut usize) -> Option<&'a [u8]> {
    let start = *i;
    for word in [&b"true"[..], b"false", b"null"] {
        if b[start..].starts_with(word) {
            *i += word.len();
            return Some(word);
        }
    }
    let digits = |j: &mut usize| {
        let from = *j;
        while b.get(*j).is_some_and(u8::is_ascii_digit) {
            *j += 1;
        }
        *j > from
    };
    let mut j = start;
    if b.get(j) == Some(&b'-') {
        j += 1;
    }
    match b.get(j)? {
        b'0' => j += 1,
        b'1'..=b'9' => {
            digits(&mut j);
        }
        _ => return None,
    }
    if b.get(j) == Some(&b'.') {
        j += 1;
        if !digits(&mut j) {
            return None;
        }
    }
    if matches!(b.get(j), Some(b'e' | b'E')) {
        j += 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if !digits(&mut j) {
            return None;
        }
    }
    *i = j;
    Some(&b[start..j])
}

/// Passes over one JSON value (checked, escapes and all); nesting deeper
/// than serde's bound (128, counted from the top) is handed over.
fn skip_value(json: &str, i: &mut usize, depth: usize) -> Option<()> {
    let b = json.as_bytes();
    if depth > 120 {
        return None;
    }
    match b.get(*i)? {
        b'"' => {
            *i += 1;
            loop {
                let at = *i + memchr::memchr2(b'"', b'\\', &b[*i..])?;
                if has_control(&b[*i..at]) {
                    return None;
                }
                if b[at] == b'"' {
                    *i = at + 1;
                    return Some(());
                }
                // An escape: \", \\, \/, \b, \f, \n, \r, \t or \uXXXX.
                match b.get(at + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => *i = at + 2,
                    b'u' => {
                        let hex = b.get(at + 2..at + 6)?;
                        if !hex.iter().all(u8::is_ascii_hexdigit) {
                            return None;
                        }
                        *i = at + 6;
                    }
                    _ => return None,
                }
            }
        }
        open @ (b'{' | b'[') => {
            let close = if *open == b'{' { b'}' } else { b']' };
            *i += 1;
            skip_ws(b, i);
            if b.get(*i) == Some(&close) {
                *i += 1;
                return Some(());
            }
            loop {
                skip_ws(b, i);
                if close == b'}' {
                    if b.get(*i) != Some(&b'"') {
                        return None;
                    }
                    skip_value(json, i, depth + 1)?;
                    skip_ws(b, i);
                    expect(b, i, b':')?;
                    skip_ws(b, i);
                }
                skip_value(json, i, depth + 1)?;
                skip_ws(b, i);
                match b.get(*i)? {
                    b',' => *i += 1,
                    c if *c == close => {
                        *i += 1;
                        return Some(());
                    }
                    _ => return None,
                }
            }
        }
        _ => literal(b, i).map(|_| ()),
    }
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

    type Full = ([String; 5], Option<(Option<bool>, Option<String>)>);

    fn full(d: &RawDelta<'_>) -> Full {
        (
            fields(d),
            d.message
                .as_ref()
                .map(|m| (m.is_streaming, m.stream_id.as_ref().map(|s| s.to_string()))),
        )
    }

    /// Whenever the scanner reads a delta, serde reads the same one.
    fn agrees(json: &str) -> bool {
        match super::scan_full(json) {
            None => true,
            Some(fast) => RawDelta::parse(json).is_some_and(|slow| full(&fast) == full(&slow)),
        }
    }

    const HEAD: &str = r#"{"chatId":"c","streamId":"s","messageId":"m","contentDelta":"b","content":"ab","message":"#;

    #[test]
    fn the_full_scanner_reads_what_serde_reads_or_hands_over() {
        let messages = [
            r#"{"isStreaming":true,"streamId":"s"}"#,
            r#"{ "id":"m", "content":"a\"b\u00e9", "n":-0.5e+3, "x":[1,{"y":null}], "isStreaming" : false, "streamId":null }"#,
            r#"{}"#,
            r#"{"isStreaming":true,"isStreaming":false}"#,
            r#"{"isStreaming":"yes"}"#,
            r#"{"streamId":5}"#,
            r#"{"n":01}"#,
            r#"{"n":1.}"#,
            r#"{"n":tru}"#,
            r#"{"s":"a\qb"}"#,
            "{\"s\":\"a\u{1}b\"}",
            r#"{"a":[1,]}"#,
            r#"{"a":{"b":1,}}"#,
        ];
        for m in messages {
            let json = format!("{HEAD}{m}}}");
            assert!(agrees(&json), "{json}");
        }
        let clean = format!("{HEAD}{}}}", messages[0]);
        let read = super::scan_full(&clean).expect("the common shape is read by hand");
        assert_eq!(read.message.and_then(|m| m.is_streaming), Some(true));
        // A field twice at the top, or one after message: handed over.
        assert!(
            super::scan_full(&clean.replacen(
                "\"chatId\":\"c\"",
                "\"chatId\":\"c\",\"chatId\":\"d\"",
                1
            ))
            .is_none()
        );
        assert!(super::scan_full(&format!("{HEAD}{{}},\"z\":1}}")).is_none());
    }

    fn arb_json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        use serde_json::{Value, json};
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|n| json!(n)),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("isStreaming".to_string()),
                        Just("streamId".to_string()),
                        "[a-z]{1,6}",
                    ],
                    inner,
                    0..5
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn control_characters_are_found_at_every_position_and_no_others() {
        for len in 0..40 {
            let clean: Vec<u8> = (0..len).map(|i| b" ~\x7f\x80\xff A"[i % 7]).collect();
            assert!(!super::has_control(&clean), "{clean:?}");
            for at in 0..len {
                for bad in [0u8, 0x0a, 0x1f] {
                    let mut b = clean.clone();
                    b[at] = bad;
                    assert!(super::has_control(&b), "{b:?}");
                }
            }
        }
    }

    proptest::proptest! {
        /// Random messages (any JSON), then random damage: the scanner
        /// never reads a delta serde would refuse or read differently.
        #[test]
        fn no_message_or_damage_makes_the_scanner_disagree_with_serde(
            value in arb_json(),
            cut in 0usize..400,
            byte in proptest::prelude::any::<u8>(),
        ) {
            let mut message = serde_json::json!({ "isStreaming": true, "streamId": "s" });
            if let serde_json::Value::Object(o) = &value {
                for (k, v) in o {
                    message[k] = v.clone();
                }
            } else {
                message["extra"] = value;
            }
            let json = format!("{HEAD}{message}}}");
            proptest::prop_assert!(agrees(&json), "{}", json);
            let mut damaged = json.clone().into_bytes();
            let at = cut % damaged.len();
            damaged[at] = byte;
            if let Ok(text) = String::from_utf8(damaged) {
                proptest::prop_assert!(agrees(&text), "{}", text);
            }
        }
    }
}
