//! `message:delta` payloads of one stream, built without re-serializing what
//! does not change.
//!
//! Every delta carries the cumulative `content` twice (in the delta and in
//! its `message`) and the whole message object, so serializing each delta
//! from scratch costs O(length) escaping work per delta: `perf` put it at
//! ~16% of the server's CPU in the many-chats benchmark. Within one stream
//! only `content` and `contentDelta` change; JSON escaping works character by
//! character, so the escaped content grows by the escaped chunk. The writer
//! keeps the escaped content and the constant parts, and a delta is a few
//! copies. The bytes are the ones `serde_json` writes for [`Delta`] (tested
//! below), so clients cannot tell the difference.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::model::Message;

/// `message:delta` as the docs list it: `{chatId, streamId, messageId,
/// contentDelta, content, message}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delta<'a> {
    pub chat_id: &'a str,
    pub stream_id: &'a str,
    pub message_id: &'a str,
    pub content_delta: &'a str,
    pub content: &'a str,
    pub message: &'a Message,
}

/// Builds the successive deltas of one stream.
pub struct DeltaWriter {
    /// `{"chatId":…,"streamId":…,"messageId":…,"contentDelta":`
    head: String,
    /// `"id":…` of the message (its first field).
    message_id_field: String,
    /// The message's fields after `contentDelta`, with the closing braces.
    tail: String,
    /// The content so far, escaped, without quotes.
    content: String,
}

impl DeltaWriter {
    /// `message` is the streaming message with its content empty; its other
    /// fields must not change during the stream.
    pub fn new(chat_id: &str, stream_id: &str, message: &Message) -> Option<DeltaWriter> {
        let mut blank = message.clone();
        blank.content.clear();
        blank.content_delta = None;
        let whole = serde_json::to_string(&blank).ok()?;
        let id = serde_json::to_string(&message.id).ok()?;
        // Message's first fields are id, content, contentDelta (declaration order).
        let lead = format!(r#"{{"id":{id},"content":"","contentDelta":null,"#);
        let rest = whole.strip_prefix(&lead)?;
        let quote = |s: &str| serde_json::to_string(s).ok();
        Some(DeltaWriter {
            head: format!(
                r#"{{"chatId":{},"streamId":{},"messageId":{id},"contentDelta":"#,
                quote(chat_id)?,
                quote(stream_id)?
            ),
            message_id_field: format!(r#""id":{id}"#),
            tail: format!(",{rest}}}"),
            content: String::new(),
        })
    }

    /// The next delta: `chunk` appended to the content.
    pub fn next(&mut self, chunk: &str) -> Option<Box<RawValue>> {
        let quoted = serde_json::to_string(chunk).ok()?;
        let escaped = &quoted[1..quoted.len() - 1];
        self.content.push_str(escaped);
        let mut out = String::with_capacity(
            self.head.len() + self.tail.len() + 2 * (self.content.len() + quoted.len()) + 64,
        );
        out.push_str(&self.head);
        out.push_str(&quoted);
        out.push_str(r#","content":""#);
        out.push_str(&self.content);
        out.push_str(r#"","message":{"#);
        out.push_str(&self.message_id_field);
        out.push_str(r#","content":""#);
        out.push_str(&self.content);
        out.push_str(r#"","contentDelta":"#);
        out.push_str(&quoted);
        out.push_str(&self.tail);
        RawValue::from_string(out).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> Message {
        serde_json::from_value(serde_json::json!({
            "id": "6819a0e484df0fc342cea5aa", "content": "", "chatId": "682f4b313981b5f54e96ea4b",
            "chatKey": "k \"quoted\"", "isStreaming": true, "respondedToId": "6819a0e484df0fc342cea5ab",
            "senderId": "6819a0e484df0fc342cea506", "state": {"a": [1, "x"]}, "streamId": "s-1",
            "type": "TEXT", "createdAt": "2026-11-21T00:00:00.000Z", "updatedAt": "2026-11-21T00:00:00.000Z"
        }))
        .expect("a valid message")
    }

    /// The writer's bytes equal serde_json's for the same delta, chunk after
    /// chunk, with characters that need escaping.
    #[test]
    fn writes_the_bytes_serde_writes() {
        let mut m = message();
        let mut w = DeltaWriter::new("682f4b313981b5f54e96ea4b", "s-1", &m).expect("a writer");
        for chunk in ["Hel", "lo \"you\"", "\\ \n\t", "\u{1}é😀", "</script>", ""] {
            m.content.push_str(chunk);
            m.content_delta = Some(chunk.to_string());
            let expected = serde_json::to_string(&Delta {
                chat_id: "682f4b313981b5f54e96ea4b",
                stream_id: "s-1",
                message_id: &m.id,
                content_delta: chunk,
                content: &m.content,
                message: &m,
            })
            .expect("serializes");
            let got = w.next(chunk).expect("a delta");
            assert_eq!(got.get(), expected);
        }
    }
}
