//! Phoenix Channels V2 frames: `[join_ref, ref, topic, event, payload]`
//! (docs/THENVOI.md T5), read strictly and written in one place.

use axum::extract::ws::Utf8Bytes;
use serde_json::{Value, json};

/// A client frame that passed T5's checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub join_ref: Option<String>,
    pub reference: Option<String>,
    pub topic: String,
    pub event: String,
    pub payload: Value,
}

/// Reads a text frame; `Err` says why it is not a V2 frame (T7).
pub fn parse(text: &str) -> Result<Frame, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
    let Value::Array(items) = value else {
        return Err("not an array: a V2 frame is [join_ref, ref, topic, event, payload]".into());
    };
    let [join_ref, reference, topic, event, payload]: [Value; 5] = items
        .try_into()
        .map_err(|v: Vec<Value>| format!("{} elements, a V2 frame has 5", v.len()))?;
    let opt = |v: Value, what: &str| match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        _ => Err(format!("{what} must be a string or null")),
    };
    let name = |v: Value, what: &str| match v {
        Value::String(s) if !s.is_empty() => Ok(s),
        _ => Err(format!("{what} must be a non-empty string")),
    };
    if !payload.is_object() {
        return Err("payload must be an object".into());
    }
    Ok(Frame {
        join_ref: opt(join_ref, "join_ref")?,
        reference: opt(reference, "ref")?,
        topic: name(topic, "topic")?,
        event: name(event, "event")?,
        payload,
    })
}

/// `phx_reply` to `frame`: `{status, response}` with the frame's refs
/// (or none, `without_refs`, a fault).
pub fn reply(frame: &Frame, ok: bool, response: Value, without_refs: bool) -> Utf8Bytes {
    let status = if ok { "ok" } else { "error" };
    let (join_ref, reference) = if without_refs {
        (None, None)
    } else {
        (frame.join_ref.as_deref(), frame.reference.as_deref())
    };
    encode(
        join_ref,
        reference,
        &frame.topic,
        "phx_reply",
        &json!({ "status": status, "response": response }),
    )
}

/// The error reply for a topic of no known family: `join_ref` null (T8).
pub fn unmatched(frame: &Frame) -> Utf8Bytes {
    encode(
        None,
        frame.reference.as_deref(),
        &frame.topic,
        "phx_reply",
        &json!({ "status": "error", "response": { "reason": "unmatched topic" } }),
    )
}

/// `[join_ref, join_ref, topic, "phx_close", {}]` (T9, T10).
pub fn close(join_ref: Option<&str>, topic: &str) -> Utf8Bytes {
    encode(join_ref, join_ref, topic, "phx_close", &json!({}))
}

pub fn encode(
    join_ref: Option<&str>,
    reference: Option<&str>,
    topic: &str,
    event: &str,
    payload: &Value,
) -> Utf8Bytes {
    Utf8Bytes::from(
        serde_json::to_string(&(join_ref, reference, topic, event, payload)).unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_needs_five_elements_of_the_right_types() {
        let f = parse(r#"["1","2","chat_room:x","phx_join",{}]"#).expect("valid");
        assert_eq!(f.topic, "chat_room:x");
        assert!(
            parse(r#"{"topic":"x"}"#)
                .unwrap_err()
                .contains("not an array")
        );
        assert!(
            parse(r#"["1","2","t","e"]"#)
                .unwrap_err()
                .contains("4 elements")
        );
        assert!(parse(r#"["1",2,"t","e",{}]"#).unwrap_err().contains("ref"));
        assert!(
            parse(r#"["1","2","","e",{}]"#)
                .unwrap_err()
                .contains("topic")
        );
        assert!(
            parse(r#"["1","2","t","e",[]]"#)
                .unwrap_err()
                .contains("payload")
        );
    }

    #[test]
    fn replies_echo_the_refs_and_closes_repeat_the_join_ref() {
        let f = parse(r#"["3","4","phoenix","heartbeat",{}]"#).expect("valid");
        assert_eq!(
            reply(&f, true, json!({}), false).as_str(),
            r#"["3","4","phoenix","phx_reply",{"status":"ok","response":{}}]"#
        );
        assert_eq!(
            close(Some("3"), "chat_room:x").as_str(),
            r#"["3","3","chat_room:x","phx_close",{}]"#
        );
    }
}
