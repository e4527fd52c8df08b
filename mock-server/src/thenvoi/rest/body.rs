//! Strict request bodies (docs/THENVOI.md T32): every object takes exactly
//! the properties its endpoint documents. A body that is not a JSON object,
//! or carries another property, is 400; a missing or mistyped field is 422.
//! The `thenvoi-lenient-bodies` fault lets unknown properties through.

use serde_json::{Map, Value};

use super::Failure;
use crate::core::thenvoi::messages::MentionIn;

/// A body read as a JSON object (an empty body is `{}`).
pub struct Body {
    object: Map<String, Value>,
    lenient: bool,
}

impl Body {
    pub fn parse(bytes: &[u8], lenient: bool) -> Result<Body, Failure> {
        // No body at all is an empty object; white space alone is not JSON.
        if bytes.is_empty() {
            return Ok(Body {
                object: Map::new(),
                lenient,
            });
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(object)) => Ok(Body { object, lenient }),
            Ok(_) => Err(Failure::bad_request("the body must be a JSON object")),
            Err(e) => Err(Failure::bad_request(format!("the body is not JSON: {e}"))),
        }
    }

    /// Refuses properties outside `allowed` in `object` (named `at`).
    fn only(&self, object: &Map<String, Value>, at: &str, allowed: &[&str]) -> Result<(), Failure> {
        if self.lenient {
            return Ok(());
        }
        match object.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(Failure::bad_request(format!(
                "unknown property {at}{k}: this endpoint takes {}",
                if allowed.is_empty() {
                    "no properties".to_string()
                } else {
                    allowed.join(", ")
                }
            ))),
            None => Ok(()),
        }
    }

    /// A body that must be empty (`{}`).
    pub fn none(self) -> Result<(), Failure> {
        self.only(&self.object, "", &[])
    }

    /// The object under `wrapper` (required), with `allowed` properties.
    pub fn wrapped(&self, wrapper: &str, allowed: &[&str]) -> Result<&Map<String, Value>, Failure> {
        self.only(&self.object, "", &[wrapper])?;
        match self.object.get(wrapper) {
            Some(Value::Object(o)) => {
                self.only(o, &format!("{wrapper}."), allowed)?;
                Ok(o)
            }
            Some(_) => Err(Failure::invalid(format!("{wrapper} must be an object"))),
            None => Err(Failure::invalid(format!(
                "{wrapper} is required: {{\"{wrapper}\": {{...}}}}"
            ))),
        }
    }

    /// The object under `wrapper` when present, else the body itself.
    pub fn maybe_wrapped(
        &self,
        wrapper: &str,
        allowed: &[&str],
    ) -> Result<&Map<String, Value>, Failure> {
        if self.object.contains_key(wrapper) {
            self.wrapped(wrapper, allowed)
        } else {
            self.only(&self.object, "", allowed)?;
            Ok(&self.object)
        }
    }

    /// The top-level object with `allowed` properties.
    pub fn flat(&self, allowed: &[&str]) -> Result<&Map<String, Value>, Failure> {
        self.only(&self.object, "", allowed)?;
        Ok(&self.object)
    }

    /// `mentions` of a message (T34): an array of `{id, name?, handle?}`.
    pub fn mentions(&self, message: &Map<String, Value>) -> Result<Vec<MentionIn>, Failure> {
        let Some(list) = message.get("mentions") else {
            return Ok(Vec::new());
        };
        let Value::Array(items) = list else {
            return Err(Failure::invalid("message.mentions must be an array"));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let Value::Object(o) = m else {
                    return Err(Failure::invalid(format!(
                        "message.mentions[{i}] must be an object"
                    )));
                };
                let at = format!("message.mentions[{i}].");
                self.only(o, &at, &["id", "name", "handle"])?;
                let id = text(o, "id", &at)?;
                if !crate::model::thenvoi::is_uuid(&id) {
                    return Err(Failure::invalid(format!(
                        "message.mentions[{i}].id is not a uuid"
                    )));
                }
                Ok(MentionIn {
                    id,
                    name: optional_text_not_null(o, "name", &at)?,
                    handle: optional_text(o, "handle", &at)?,
                })
            })
            .collect()
    }
}

/// A required string field.
pub fn text(o: &Map<String, Value>, key: &str, at: &str) -> Result<String, Failure> {
    match o.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(Failure::invalid(format!("{at}{key} must be a string"))),
        None => Err(Failure::invalid(format!("{at}{key} is required"))),
    }
}

/// An optional string field that may not be null (its schema says
/// `string`, not `["string", "null"]`).
pub fn optional_text_not_null(
    o: &Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<Option<String>, Failure> {
    match o.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Null) => Err(Failure::invalid(format!(
            "{at}{key} must be a string (leave it out instead of null)"
        ))),
        Some(_) => Err(Failure::invalid(format!("{at}{key} must be a string"))),
    }
}

/// An optional uuid field (null is absent).
pub fn optional_uuid(
    o: &Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<Option<String>, Failure> {
    let value = optional_text(o, key, at)?;
    if let Some(v) = &value
        && !crate::model::thenvoi::is_uuid(v)
    {
        return Err(Failure::invalid(format!("{at}{key} is not a uuid")));
    }
    Ok(value)
}

/// An optional string field (null is absent).
pub fn optional_text(
    o: &Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<Option<String>, Failure> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Failure::invalid(format!("{at}{key} must be a string"))),
    }
}
