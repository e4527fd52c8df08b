//! socket.io packets as text: what a frame is, read from its first bytes,
//! and what it carries.
//!
//! Two readings, because two kinds of caller need them. The load generator
//! reads about a million deltas a second and must not allocate before the
//! borrowed parse of a delta's payload, so [`Packet::parse`] borrows from the
//! frame and looks only at the packet type, the ack id's digits or the event
//! name. Callers that show or judge frames (the conformance cases, a load
//! run's setup, a delta the fast path could not read) use [`parse_packet`],
//! which builds an owned [`Frame`] with a `serde_json::Value` payload.
//!
//! Both live here so that no other module spells out a packet's prefix
//! (`2["message:delta",`, `3<id>[`): a change of form is made once.
//!
//! Forms (Engine.IO v4 carrying socket.io v5, default namespace): Engine.IO
//! `0` open, `1` close, `2` ping, `3` pong, `4` message; a message carries a
//! socket.io packet: `0` CONNECT, `1` DISCONNECT, `2` EVENT, `3` ACK, `4`
//! CONNECT_ERROR. Binary packets (`5`, `6`) are not used by the protocol and
//! read as [`Frame::Other`].

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

/// Event names of the protocol (docs/PROTOCOL.md, "Realtime events"), and
/// the names a socket.io client gives to what is not an event on the wire.
pub mod event {
    /// Server → client after an accepted CONNECT: `{entity}`.
    pub const SUCCESS: &str = "success";
    /// Server → client: a refusal or a failed event sent without an ack: `{message}`.
    pub const ERROR: &str = "error";
    /// Client → server, acked `{data: {chatId}}`.
    pub const CHAT_JOIN: &str = "chat:join";
    /// Client → server, acked `{data: {chatId}}`.
    pub const CHAT_LEAVE: &str = "chat:leave";
    /// Client → server, acked `{data: {message, chatId}}` before any reply.
    pub const MESSAGE_SEND: &str = "message:send";
    /// Server → room: a persisted message.
    pub const MESSAGE: &str = "message";
    /// Server → room: one delta of a streamed reply.
    pub const MESSAGE_DELTA: &str = "message:delta";
    /// Server → room: the end of a streamed reply, the complete message.
    pub const MESSAGE_DONE: &str = "message:done";
    /// Not on the wire: what a client calls a CONNECT_ERROR packet.
    pub const CONNECT_ERROR: &str = "connect_error";
    /// Not on the wire: what a client calls a DISCONNECT packet (or the end
    /// of the connection).
    pub const DISCONNECT: &str = "disconnect";
}

/// The type of an Engine.IO packet, from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// `0{sid, pingInterval, …}`: the handshake.
    Open,
    /// `1`: the server closes the session.
    Close,
    /// `2`: a heartbeat the client must answer with a pong.
    Ping,
    /// `3`
    Pong,
    /// `4…`: a socket.io packet follows.
    Message,
    /// Anything else (upgrade, noop, empty).
    Other,
}

impl EngineKind {
    pub fn of(text: &str) -> EngineKind {
        match text.as_bytes().first() {
            Some(b'0') => EngineKind::Open,
            Some(b'1') => EngineKind::Close,
            Some(b'2') => EngineKind::Ping,
            Some(b'3') => EngineKind::Pong,
            Some(b'4') => EngineKind::Message,
            _ => EngineKind::Other,
        }
    }
}

/// One socket.io packet, borrowed from the frame it arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    /// CONNECT acknowledged; the JSON after the type (`{sid}`).
    Connect(&'a str),
    /// The server disconnected the socket.
    Disconnect,
    /// `2["name",args…]`: the name, and the arguments after it without the
    /// closing bracket (so the first argument's JSON when it is the only
    /// one, the common case; empty when there is none).
    Event { name: &'a str, args: &'a str },
    /// `3<id>[args…]`: the ack id and the arguments inside the brackets.
    Ack { id: u64, args: &'a str },
    /// CONNECT refused; the JSON after the type.
    ConnectError(&'a str),
    /// A binary packet, a name with escapes, or something malformed: read
    /// it with [`parse_packet`] if it matters.
    Other,
}

impl<'a> Packet<'a> {
    /// Classifies a socket.io packet (the text after the Engine.IO `4`)
    /// without allocating.
    pub fn parse(text: &'a str) -> Packet<'a> {
        let Some(&kind) = text.as_bytes().first() else {
            return Packet::Other;
        };
        // Skip the type, then an explicit "/," namespace if present.
        let rest = &text[1..];
        let rest = rest.strip_prefix("/,").unwrap_or(rest);
        match kind {
            b'0' => Packet::Connect(rest),
            b'1' => Packet::Disconnect,
            b'4' => Packet::ConnectError(rest),
            b'2' => {
                // An event may carry an ack id before its array (client →
                // server); the server's events do not.
                let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
                let Some(quoted) = rest.strip_prefix("[\"") else {
                    return Packet::Other;
                };
                let Some(end) = quoted.find('"') else {
                    return Packet::Other;
                };
                let name = &quoted[..end];
                if name.contains('\\') {
                    return Packet::Other;
                }
                let after = &quoted[end + 1..];
                match after.strip_suffix(']') {
                    Some("") => Packet::Event { name, args: "" },
                    Some(more) => match more.strip_prefix(',') {
                        Some(args) => Packet::Event { name, args },
                        None => Packet::Other,
                    },
                    None => Packet::Other,
                }
            }
            b'3' => {
                let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                let (id, list) = rest.split_at(digits);
                match (
                    id.parse::<u64>(),
                    list.strip_prefix('[').and_then(|l| l.strip_suffix(']')),
                ) {
                    (Ok(id), Some(args)) => Packet::Ack { id, args },
                    _ => Packet::Other,
                }
            }
            _ => Packet::Other,
        }
    }

    /// The arguments of event `name`, or `None` for any other packet: the
    /// check a reader makes on every frame, a prefix comparison.
    pub fn event_args(text: &'a str, name: &str) -> Option<&'a str> {
        match Packet::parse(text) {
            Packet::Event { name: n, args } if n == name => Some(args),
            _ => None,
        }
    }
}

/// One socket.io packet, as received, with its payload parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// CONNECT acknowledged: `{sid}`.
    Connected(Value),
    /// CONNECT refused by the server (`connect_error`).
    ConnectError(Value),
    /// An event with its first argument (`Null` when there was none).
    Event { name: String, payload: Value },
    /// The acknowledgement of an emit: its first argument.
    Ack { id: u64, payload: Value },
    /// The server disconnected the socket (socket.io DISCONNECT).
    Disconnected,
    /// Anything else, raw.
    Other(String),
}

/// Parses one socket.io packet of the default namespace.
pub fn parse_packet(text: &str) -> Frame {
    let mut chars = text.chars();
    let kind = chars.next();
    let rest = chars.as_str();
    // Skip an explicit "/," namespace prefix if present.
    let rest = rest.strip_prefix("/,").unwrap_or(rest);
    let first_arg = |json: &str| -> Option<Value> {
        match serde_json::from_str::<Value>(json).ok()? {
            Value::Array(mut items) if !items.is_empty() => Some(items.remove(0)),
            Value::Array(_) => Some(Value::Null),
            _ => None,
        }
    };
    match kind {
        Some('0') => Frame::Connected(serde_json::from_str(rest).unwrap_or(Value::Null)),
        Some('1') => Frame::Disconnected,
        Some('4') => Frame::ConnectError(serde_json::from_str(rest).unwrap_or(Value::Null)),
        Some('2') => {
            let start = rest.find('[').unwrap_or(rest.len());
            match serde_json::from_str::<Value>(&rest[start..]) {
                Ok(Value::Array(mut items)) if !items.is_empty() => {
                    let name = items.remove(0).as_str().unwrap_or_default().to_string();
                    let payload = if items.is_empty() {
                        Value::Null
                    } else {
                        items.remove(0)
                    };
                    Frame::Event { name, payload }
                }
                _ => Frame::Other(text.to_string()),
            }
        }
        Some('3') => {
            let start = rest.find('[').unwrap_or(rest.len());
            match (rest[..start].parse::<u64>(), first_arg(&rest[start..])) {
                (Ok(id), Some(payload)) => Frame::Ack { id, payload },
                _ => Frame::Other(text.to_string()),
            }
        }
        _ => Frame::Other(text.to_string()),
    }
}

/// Encodes an EVENT packet, `2[<ack id>]["name",payload]`: what
/// [`Client::emit`](super::Client::emit) sends (after the Engine.IO `4`),
/// and what a reader receives from [`Client::next_text`](super::Client::next_text).
pub fn encode_event(ack: Option<u64>, name: &str, payload: &impl Serialize) -> String {
    let mut out = String::with_capacity(64);
    write_event(&mut out, ack, name, payload);
    out
}

/// Appends [`encode_event`]'s packet to `out` (the client writes it after
/// the Engine.IO type, in one allocation). The payload is serialized in
/// place, no `Value` built around it.
pub(super) fn write_event(
    out: &mut String,
    ack: Option<u64>,
    name: &str,
    payload: &impl Serialize,
) {
    out.push('2');
    if let Some(id) = ack {
        let _ = write!(out, "{id}");
    }
    // A (&str, &T) serializes as the two-element array socket.io expects;
    // neither can fail to serialize (a string and a JSON-able payload).
    out.push_str(&serde_json::to_string(&(name, payload)).unwrap_or_default());
}

/// Encodes an ACK packet, `3<id>[payload]`: what a server answers an emit
/// with (test servers and readers' tests build theirs here).
pub fn encode_ack(id: u64, payload: &impl Serialize) -> String {
    format!(
        "3{id}[{}]",
        serde_json::to_string(payload).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_the_packets_the_protocol_uses() {
        assert_eq!(
            parse_packet(r#"0{"sid":"abc"}"#),
            Frame::Connected(json!({"sid": "abc"}))
        );
        assert_eq!(
            parse_packet(r#"2["success",{"entity":{"id":"x"}}]"#),
            Frame::Event {
                name: "success".into(),
                payload: json!({"entity": {"id": "x"}})
            }
        );
        assert_eq!(
            parse_packet(r#"312[{"data":{"chatId":"c"}}]"#),
            Frame::Ack {
                id: 12,
                payload: json!({"data": {"chatId": "c"}})
            }
        );
        assert_eq!(parse_packet("1"), Frame::Disconnected);
        assert_eq!(
            parse_packet(r#"4{"message":"nope"}"#),
            Frame::ConnectError(json!({"message": "nope"}))
        );
        assert!(matches!(parse_packet("2not json"), Frame::Other(_)));
    }

    #[test]
    fn the_borrowed_reading_agrees_with_the_owned_one_on_every_form() {
        let delta = r#"2["message:delta",{"streamId":"s","contentDelta":"a"}]"#;
        assert_eq!(
            Packet::parse(delta),
            Packet::Event {
                name: event::MESSAGE_DELTA,
                args: r#"{"streamId":"s","contentDelta":"a"}"#
            }
        );
        assert_eq!(
            Packet::parse(r#"2["message:done"]"#),
            Packet::Event {
                name: event::MESSAGE_DONE,
                args: ""
            }
        );
        assert_eq!(
            Packet::parse(r#"312[{"data":{}}]"#),
            Packet::Ack {
                id: 12,
                args: r#"{"data":{}}"#
            }
        );
        assert_eq!(
            Packet::parse(r#"0{"sid":"abc"}"#),
            Packet::Connect(r#"{"sid":"abc"}"#)
        );
        assert_eq!(
            Packet::parse(r#"4{"message":"no"}"#),
            Packet::ConnectError(r#"{"message":"no"}"#)
        );
        assert_eq!(Packet::parse("1"), Packet::Disconnect);
        assert_eq!(
            Packet::parse(r#"2/,["success",{}]"#),
            Packet::Event {
                name: event::SUCCESS,
                args: "{}"
            },
            "an explicit default namespace"
        );
        for other in [
            "",
            "2not json",
            r#"2["message:delta",{}"#,
            r#"2["a\"b",{}]"#,
            "3x[{}]",
            "3[{}]",
            r#"51-["x",{"_placeholder":true}]"#,
        ] {
            assert_eq!(Packet::parse(other), Packet::Other, "{other:?}");
        }
    }

    #[test]
    fn event_args_answer_only_for_the_event_named() {
        let done = r#"2["message:done",{"streamId":"s"}]"#;
        assert_eq!(
            Packet::event_args(done, event::MESSAGE_DONE),
            Some(r#"{"streamId":"s"}"#)
        );
        assert_eq!(Packet::event_args(done, event::MESSAGE_DELTA), None);
        assert_eq!(
            Packet::event_args(r#"2["message:doneish",{}]"#, event::MESSAGE_DONE),
            None,
            "a longer name that starts the same is another event"
        );
        assert_eq!(Packet::event_args(r#"30[{}]"#, event::MESSAGE_DONE), None);
    }

    #[test]
    fn encoded_events_read_back_as_the_same_event() {
        let payload = json!({ "chatId": "c\"1", "content": "hé" });
        let sent = encode_event(Some(7), event::MESSAGE_SEND, &payload);
        assert_eq!(
            sent,
            r#"27["message:send",{"chatId":"c\"1","content":"hé"}]"#
        );
        assert_eq!(
            parse_packet(&sent),
            Frame::Event {
                name: event::MESSAGE_SEND.into(),
                payload: payload.clone()
            }
        );
        assert_eq!(
            encode_event(None, event::CHAT_JOIN, &json!({})),
            r#"2["chat:join",{}]"#
        );
        let ack = encode_ack(3, &json!({ "data": payload }));
        assert_eq!(
            parse_packet(&ack),
            Frame::Ack {
                id: 3,
                payload: json!({ "data": payload })
            }
        );
        assert!(matches!(Packet::parse(&ack), Packet::Ack { id: 3, .. }));
    }

    #[test]
    fn engine_packets_are_told_apart_by_their_first_byte() {
        assert_eq!(EngineKind::of(r#"0{"sid":"x"}"#), EngineKind::Open);
        assert_eq!(EngineKind::of("1"), EngineKind::Close);
        assert_eq!(EngineKind::of("2"), EngineKind::Ping);
        assert_eq!(EngineKind::of("3"), EngineKind::Pong);
        assert_eq!(EngineKind::of("42[\"x\"]"), EngineKind::Message);
        assert_eq!(EngineKind::of("6"), EngineKind::Other);
        assert_eq!(EngineKind::of(""), EngineKind::Other);
    }
}
