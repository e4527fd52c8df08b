//! Helpers the fixture tests of both protocols share (`fixtures.rs` for
//! ProteusAI, `thenvoi_contract.rs` for Thenvoi): reading JSON, listing
//! files, and the invalid cases built from a valid base plus mutation steps,
//! so the two read their fixtures by the same rules.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

pub fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

pub fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap_or_else(|e| panic!("read {}: {e}", d.display())) {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "json") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// `path` relative to `base`, with forward slashes.
pub fn rel_to(base: &Path, path: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// Applies one `{"remove": ptr}` or `{"set": ptr, "value": v}` step.
pub fn mutate(doc: &mut Value, step: &Value) {
    let (ptr, value) = match (step.get("remove"), step.get("set")) {
        (Some(p), None) => (p.as_str().expect("remove takes a pointer"), None),
        (None, Some(p)) => (
            p.as_str().expect("set takes a pointer"),
            Some(step.get("value").cloned().unwrap_or(Value::Null)),
        ),
        _ => panic!("a mutation is {{remove}} or {{set, value}}: {step}"),
    };
    if ptr.is_empty() {
        *doc = value.expect("only set can target the root");
        return;
    }
    let (parent_ptr, key) = ptr.rsplit_once('/').expect("pointer starts with /");
    let parent = doc
        .pointer_mut(parent_ptr)
        .unwrap_or_else(|| panic!("no parent for {ptr}"));
    match (parent, value) {
        (Value::Object(map), Some(v)) => {
            map.insert(key.to_string(), v);
        }
        (Value::Object(map), None) => {
            map.remove(key)
                .unwrap_or_else(|| panic!("nothing to remove at {ptr}"));
        }
        (Value::Array(items), v) => {
            let i: usize = key.parse().expect("array index");
            match v {
                Some(v) => items[i] = v,
                None => {
                    items.remove(i);
                }
            }
        }
        (other, _) => panic!("cannot mutate inside {other} at {ptr}"),
    }
}

pub struct InvalidCase {
    pub file: String,
    pub schema: String,
    pub description: String,
    pub reason: String,
    pub error_at: String,
    pub instance: Value,
}

/// Every near-miss of `<fixtures>/invalid/`: its base (a valid fixture, a
/// path relative to `fixtures`, or inline `baseData`) with its steps applied.
pub fn invalid_cases(fixtures: &Path) -> Vec<InvalidCase> {
    let mut out = Vec::new();
    for path in json_files(&fixtures.join("invalid")) {
        let doc = read_json(&path);
        let schema = doc["schema"]
            .as_str()
            .unwrap_or_else(|| panic!("{} has no schema", path.display()))
            .to_string();
        let base = match (doc.get("base"), doc.get("baseData")) {
            (Some(b), None) => read_json(&fixtures.join(b.as_str().expect("base is a path"))),
            (None, Some(d)) => d.clone(),
            _ => panic!(
                "{}: give base (a valid fixture) or baseData",
                path.display()
            ),
        };
        let cases = doc["cases"]
            .as_array()
            .unwrap_or_else(|| panic!("{} has no cases", path.display()));
        assert!(
            cases.len() >= 2,
            "{}: several near-misses per schema",
            path.display()
        );
        for case in cases {
            let mut instance = base.clone();
            for step in case["mutate"].as_array().expect("mutate") {
                mutate(&mut instance, step);
            }
            let text = |k: &str| {
                case[k]
                    .as_str()
                    .unwrap_or_else(|| panic!("{}: case lacks {k}", path.display()))
                    .to_string()
            };
            out.push(InvalidCase {
                file: rel_to(fixtures, &path),
                schema: schema.clone(),
                description: text("description"),
                reason: text("reason"),
                error_at: text("errorAt"),
                instance,
            });
        }
    }
    out
}

/// Checks that every invalid case fails, and fails where it says; panics
/// listing those that do not. Returns every case's errors, file by file,
/// for a snapshot (a schema change that moves them is seen in review).
pub fn invalid_fixture_errors(
    set: &proteus_conformance::schema::SchemaSet,
    cases: Vec<InvalidCase>,
) -> String {
    let mut report = std::collections::BTreeMap::<String, Vec<String>>::new();
    let mut problems = Vec::new();
    for case in cases {
        let violations = set
            .violations(&case.schema, &case.instance)
            .expect("schema exists");
        let label = format!("{} :: {}", case.file, case.description);
        if violations.is_empty() {
            problems.push(format!(
                "{label}: accepted, but must fail because {}",
                case.reason
            ));
            continue;
        }
        if !violations.iter().any(|v| v.instance_path == case.error_at) {
            problems.push(format!(
                "{label}: expected an error at {:?}, got {:?}",
                case.error_at,
                violations
                    .iter()
                    .map(|v| v.instance_path.as_str())
                    .collect::<Vec<_>>()
            ));
        }
        let lines = report.entry(case.file.clone()).or_default();
        lines.push(format!("# {}", case.description));
        for v in violations {
            let mut msg = v.message.clone();
            if msg.len() > 160 {
                let cut = (0..=160)
                    .rev()
                    .find(|i| msg.is_char_boundary(*i))
                    .unwrap_or(0);
                msg.truncate(cut);
                msg.push('…');
            }
            lines.push(format!("{:?} {}", v.instance_path, msg));
        }
    }
    assert!(
        problems.is_empty(),
        "invalid fixtures that do not fail as documented:\n{}",
        problems.join("\n")
    );
    report
        .iter()
        .map(|(f, lines)| format!("== {f}\n{}\n", lines.join("\n")))
        .collect()
}
