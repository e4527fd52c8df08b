//! Property tests: random instances built from the documented shapes of a
//! Message and a `message:delta` validate, and breaking any required field
//! (removing it, or giving it a value of the wrong type) makes them fail.

use proptest::prelude::*;
use proteus_conformance::schema::SchemaSet;
use serde_json::{Value, json};

fn hex(len: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(b"0123456789abcdef".to_vec()), len)
        .prop_map(|b| String::from_utf8(b).expect("hex is ascii"))
}

fn timestamp() -> impl Strategy<Value = String> {
    (
        2020u32..2030,
        1u32..=12,
        1u32..=28,
        0u32..24,
        0u32..60,
        0u32..60,
        0u32..1000,
    )
        .prop_map(|(y, mo, d, h, mi, s, ms)| {
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
        })
}

fn message(streaming: bool) -> impl Strategy<Value = Value> {
    (
        hex(24),
        hex(24),
        proptest::option::of(hex(24)),
        ".{0,40}",
        timestamp(),
        proptest::sample::select(vec!["TEXT", "CODE", "FILE_URL", "FUNCTION_CALL", "AUDIO_URL", "ERROR_MESSAGE", "MARKDOWN"]),
        any::<bool>(),
        hex(24),
    )
        .prop_map(move |(id, chat, sender, content, at, ty, stream_response, stream)| {
            json!({
                "id": id, "content": content, "contentDelta": if streaming { json!(content) } else { Value::Null },
                "chatId": chat, "chatKey": null, "instructions": [], "isStreaming": streaming, "notes": [],
                "respondedToId": null, "responseUrl": null, "senderId": sender, "state": {},
                "streamId": if streaming { json!(stream) } else { Value::Null },
                "streamResponse": stream_response, "type": ty, "createdAt": at, "updatedAt": at,
                "attachments": [], "citations": []
            })
        })
}

fn delta() -> impl Strategy<Value = Value> {
    (message(true), ".{0,10}").prop_map(|(m, chunk)| {
        json!({
            "chatId": m["chatId"], "streamId": m["streamId"], "messageId": m["id"],
            "contentDelta": chunk, "content": m["content"], "message": m
        })
    })
}

/// A value of a type the field never has.
fn wrong_type(v: &Value) -> Value {
    match v {
        Value::String(_) => json!(12345),
        Value::Bool(_) => json!("true"),
        Value::Number(_) => json!("1"),
        Value::Array(_) => json!({}),
        Value::Object(_) => json!("{}"),
        Value::Null => json!(7),
    }
}

fn required(set: &SchemaSet, name: &str) -> Vec<String> {
    let doc = set.document(name).expect("schema exists");
    doc["required"]
        .as_array()
        .expect("schema lists required fields")
        .iter()
        .map(|v| v.as_str().expect("field name").to_string())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn messages_validate_and_each_required_field_matters(m in message(false)) {
        let set = SchemaSet::embedded();
        prop_assert!(set.is_valid("objects/message", &m).expect("schema"), "{m}");
        for field in required(set, "objects/message") {
            let mut removed = m.clone();
            removed.as_object_mut().expect("object").remove(&field);
            prop_assert!(!set.is_valid("objects/message", &removed).expect("schema"), "without {field}");
            let mut retyped = m.clone();
            retyped[&field] = wrong_type(&m[&field]);
            prop_assert!(!set.is_valid("objects/message", &retyped).expect("schema"), "{field} = {}", retyped[&field]);
        }
    }

    #[test]
    fn deltas_validate_and_each_required_field_matters(d in delta()) {
        let set = SchemaSet::embedded();
        prop_assert!(set.is_valid("realtime/message-delta", &d).expect("schema"), "{d}");
        for field in required(set, "realtime/message-delta") {
            let mut removed = d.clone();
            removed.as_object_mut().expect("object").remove(&field);
            prop_assert!(!set.is_valid("realtime/message-delta", &removed).expect("schema"), "without {field}");
            let mut retyped = d.clone();
            retyped[&field] = wrong_type(&d[&field]);
            prop_assert!(!set.is_valid("realtime/message-delta", &retyped).expect("schema"), "{field} = {}", retyped[&field]);
        }
        // A delta's message must be mid-stream.
        let mut finished = d.clone();
        finished["message"]["isStreaming"] = json!(false);
        prop_assert!(!set.is_valid("realtime/message-delta", &finished).expect("schema"));
    }
}
