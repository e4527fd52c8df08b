//! The protocol's JSON Schemas, compiled once, addressed by name.
//!
//! A schema's name is its path under `schemas/` without `.json`, e.g.
//! `objects/message` or `realtime/message-delta`. Every file carries an
//! absolute `$id` under [`BASE_URI`]; `$ref`s between files are relative and
//! resolve against that base inside a local registry, so nothing is ever
//! fetched from the network.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use serde_json::Value;

include!(concat!(env!("OUT_DIR"), "/schema_files.rs"));

/// The base every schema `$id` lives under.
pub const BASE_URI: &str = "https://proteus-toolkit.dev/schemas/";

/// One reason an instance does not match a schema.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// JSON pointer into the instance (`""` is the root).
    pub instance_path: String,
    /// JSON pointer into the schema that rejected it (through `$ref`s).
    pub schema_path: String,
    /// What is wrong, in the validator's words.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.instance_path.is_empty() {
            "/"
        } else {
            &self.instance_path
        };
        write!(f, "at {at}: {}", self.message)
    }
}

/// Why the schema set could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("schema file {file} is not valid JSON: {source}")]
    Parse {
        file: String,
        source: serde_json::Error,
    },
    #[error(
        "schema file {file} has no $id, or one that does not match its path (expected {expected})"
    )]
    BadId { file: String, expected: String },
    #[error("cannot build the schema registry: {0}")]
    Registry(String),
    #[error("schema {name} does not compile: {message}")]
    Compile { name: String, message: String },
    #[error("no schema named {0:?} (names are paths under schemas/ without .json)")]
    Unknown(String),
}

/// Every schema of `schemas/`, compiled.
pub struct SchemaSet {
    documents: BTreeMap<String, Value>,
    validators: BTreeMap<String, jsonschema::Validator>,
    /// Every schema by its URI, for schemas compiled later ([`SchemaSet::compile`]).
    registry: jsonschema::Registry<'static>,
}

impl fmt::Debug for SchemaSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchemaSet")
            .field("schemas", &self.documents.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl SchemaSet {
    /// The embedded set, compiled on first use and shared afterwards.
    pub fn embedded() -> &'static SchemaSet {
        static SET: OnceLock<SchemaSet> = OnceLock::new();
        SET.get_or_init(|| {
            let files = SCHEMA_FILES
                .iter()
                .map(|(p, c)| (p.to_string(), c.to_string()));
            // The embedded files are tested in this crate; failing here is a build defect.
            SchemaSet::from_files(files)
                .unwrap_or_else(|e| panic!("embedded schemas are broken: {e}"))
        })
    }

    /// Compiles a set from `(path under schemas/, contents)` pairs.
    pub fn from_files(
        files: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SchemaError> {
        let mut documents = BTreeMap::new();
        for (file, text) in files {
            let doc: Value = serde_json::from_str(&text).map_err(|source| SchemaError::Parse {
                file: file.clone(),
                source,
            })?;
            let expected = format!("{BASE_URI}{file}");
            if doc.get("$id").and_then(Value::as_str) != Some(expected.as_str()) {
                return Err(SchemaError::BadId { file, expected });
            }
            documents.insert(file.trim_end_matches(".json").to_string(), doc);
        }
        let registry = jsonschema::Registry::new()
            .extend(
                documents
                    .iter()
                    .map(|(name, doc)| (format!("{BASE_URI}{name}.json"), doc.clone())),
            )
            .and_then(|b| b.prepare())
            .map_err(|e| SchemaError::Registry(e.to_string()))?;
        // Each file, and each entry of its top-level `$defs` as `file#/$defs/entry`.
        let mut targets: Vec<String> = Vec::new();
        for (name, doc) in &documents {
            targets.push(name.clone());
            if let Some(defs) = doc.get("$defs").and_then(Value::as_object) {
                targets.extend(defs.keys().map(|k| format!("{name}#/$defs/{k}")));
            }
        }
        let mut validators = BTreeMap::new();
        for name in targets {
            let (file, fragment) = name
                .split_once('#')
                .map_or((name.as_str(), ""), |(f, p)| (f, p));
            let uri = if fragment.is_empty() {
                format!("{BASE_URI}{file}.json")
            } else {
                format!("{BASE_URI}{file}.json#{fragment}")
            };
            let root = serde_json::json!({ "$ref": uri });
            let validator = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .with_registry(&registry)
                .build(&root)
                .map_err(|e| SchemaError::Compile {
                    name: name.clone(),
                    message: e.to_string(),
                })?;
            validators.insert(name.clone(), validator);
        }
        Ok(SchemaSet {
            documents,
            validators,
            registry,
        })
    }

    /// Compiles `schema`, a schema from beside the schema files (its
    /// relative `$ref`s, like `objects/message.json`, name files of this
    /// set): what an API description's response schemas are.
    pub fn compile(&self, schema: &Value) -> Result<jsonschema::Validator, SchemaError> {
        let mut root = schema.clone();
        if let Some(o) = root.as_object_mut() {
            o.insert(
                "$id".into(),
                Value::String(format!("{BASE_URI}api-description.json")),
            );
        }
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .with_registry(&self.registry)
            .build(&root)
            .map_err(|e| SchemaError::Compile {
                name: "an API description's schema".into(),
                message: e.to_string(),
            })
    }

    /// Names of every schema file, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.documents.keys().map(String::as_str)
    }

    /// Names of everything that can be validated against: files and their
    /// `$defs` entries (`common/defs#/$defs/token`).
    pub fn targets(&self) -> impl Iterator<Item = &str> {
        self.validators.keys().map(String::as_str)
    }

    /// The schema document itself.
    pub fn document(&self, name: &str) -> Option<&Value> {
        self.documents.get(name)
    }

    /// Whether `instance` matches schema `name`.
    pub fn is_valid(&self, name: &str, instance: &Value) -> Result<bool, SchemaError> {
        Ok(self.validator(name)?.is_valid(instance))
    }

    /// Every violation of schema `name` by `instance`; empty when it matches.
    pub fn violations(&self, name: &str, instance: &Value) -> Result<Vec<Violation>, SchemaError> {
        Ok(self
            .validator(name)?
            .iter_errors(instance)
            .map(|e| Violation {
                instance_path: e.instance_path().to_string(),
                schema_path: e.schema_path().to_string(),
                message: e.to_string(),
            })
            .collect())
    }

    /// `Ok(())` when `instance` matches, else every violation.
    pub fn check(&self, name: &str, instance: &Value) -> Result<(), Vec<Violation>> {
        match self.violations(name, instance) {
            Ok(v) if v.is_empty() => Ok(()),
            Ok(v) => Err(v),
            Err(e) => Err(vec![Violation {
                instance_path: String::new(),
                schema_path: String::new(),
                message: e.to_string(),
            }]),
        }
    }

    fn validator(&self, name: &str) -> Result<&jsonschema::Validator, SchemaError> {
        self.validators
            .get(name)
            .ok_or_else(|| SchemaError::Unknown(name.to_string()))
    }
}

/// The schema of a realtime server event's payload, by event name.
pub fn event_schema(event: &str) -> Option<&'static str> {
    Some(match event {
        "success" => "realtime/success",
        "error" => "realtime/error",
        "message" => "realtime/message",
        "message:delta" => "realtime/message-delta",
        "message:done" => "realtime/message-done",
        "CHAT_MESSAGE_ADDED" => "realtime/chat-message-added",
        "CHAT_STATE_UPDATED" => "realtime/chat-state-updated",
        "CHAT_PARTICIPANT_JOINED" => "realtime/chat-participant-joined",
        "CHAT_REPOSITORY_ATTACHED" => "realtime/chat-repository-attached",
        "chat:join" => "realtime/chat-join",
        "chat:leave" => "realtime/chat-leave",
        "message:send" => "realtime/message-send",
        _ => return None,
    })
}
