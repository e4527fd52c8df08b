//! The schemas against the fixtures: every valid fixture passes, every
//! near-miss fails at the place its file says, every schema is covered, and
//! every event name of the seed pages has a schema.
//!
//! Fixtures are data (`fixtures/manifest.json`, `fixtures/invalid/**`,
//! `fixtures/streams/*`); this file only runs them, in the manner of the
//! JSON-Schema-Test-Suite runners.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use proteus_conformance::schema::SchemaSet;
use proteus_conformance::stream::{Rule, StreamChecker};
use serde_json::Value;

mod fixture_kit;
use fixture_kit::{InvalidCase, json_files, read_json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn manifest() -> Value {
    read_json(&root().join("fixtures/manifest.json"))
}

fn rel(path: &Path) -> String {
    fixture_kit::rel_to(&root().join("fixtures"), path)
}

#[test]
fn every_schema_is_a_valid_2020_12_schema() {
    let set = SchemaSet::embedded();
    let mut count = 0;
    for name in set.names() {
        let doc = set.document(name).expect("listed");
        assert_eq!(
            doc.get("$schema").and_then(Value::as_str),
            Some("https://json-schema.org/draft/2020-12/schema"),
            "{name} must declare draft 2020-12"
        );
        if let Err(e) = jsonschema::meta::validate(doc) {
            panic!("{name} is not a valid 2020-12 schema: {e}");
        }
        count += 1;
    }
    assert!(
        count >= 50,
        "expected the whole contract, found {count} schemas"
    );
}

#[test]
fn valid_fixtures_validate_against_their_schema() {
    let set = SchemaSet::embedded();
    let man = manifest();
    let entries = man["valid"].as_array().expect("manifest.valid");
    let mut failures = Vec::new();
    for entry in entries {
        let file = entry["file"].as_str().expect("file");
        let schema = entry["schema"].as_str().expect("schema");
        let instance = read_json(&root().join("fixtures").join(file));
        if let Err(v) = set.check(schema, &instance) {
            failures.push(format!(
                "{file} ({schema}):\n    {}",
                v.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n    ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "valid fixtures rejected:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_valid_fixture_is_in_the_manifest() {
    let man = manifest();
    let listed: BTreeSet<String> = man["valid"]
        .as_array()
        .expect("valid")
        .iter()
        .map(|e| e["file"].as_str().expect("file").to_string())
        .collect();
    let on_disk: BTreeSet<String> = json_files(&root().join("fixtures/valid"))
        .iter()
        .map(|p| rel(p))
        .collect();
    let orphans: Vec<_> = on_disk.difference(&listed).collect();
    let missing: Vec<_> = listed.difference(&on_disk).collect();
    assert!(
        orphans.is_empty() && missing.is_empty(),
        "not in manifest: {orphans:?}; listed but missing: {missing:?}"
    );
}

fn invalid_cases() -> Vec<InvalidCase> {
    fixture_kit::invalid_cases(&root().join("fixtures"))
}

#[test]
fn invalid_fixtures_fail_where_they_say() {
    // The exact errors, so a schema change that moves them is seen in review.
    let text = fixture_kit::invalid_fixture_errors(SchemaSet::embedded(), invalid_cases());
    insta::assert_snapshot!("invalid_fixture_errors", text);
}

#[test]
fn every_schema_has_valid_and_invalid_fixtures() {
    let set = SchemaSet::embedded();
    let man = manifest();
    let valid: BTreeSet<String> = man["valid"]
        .as_array()
        .expect("valid")
        .iter()
        .map(|e| {
            e["schema"]
                .as_str()
                .expect("schema")
                .split('#')
                .next()
                .expect("name")
                .to_string()
        })
        .collect();
    let invalid: BTreeSet<String> = invalid_cases()
        .iter()
        .map(|c| c.schema.split('#').next().expect("name").to_string())
        .collect();
    // report/ and admin/ describe this toolkit's own output; their tests live with that output.
    // thenvoi/ is the second protocol's: its fixtures, manifest and test
    // are its own (fixtures/thenvoi/, tests/thenvoi_contract.rs).
    let protocol: Vec<&str> = set
        .names()
        .filter(|n| {
            !n.starts_with("report/") && !n.starts_with("admin/") && !n.starts_with("thenvoi/")
        })
        .collect();
    let no_valid: Vec<_> = protocol
        .iter()
        .filter(|n| !valid.contains(**n) && **n != "common/defs")
        .collect();
    let no_invalid: Vec<_> = protocol.iter().filter(|n| !invalid.contains(**n)).collect();
    assert!(
        no_valid.is_empty(),
        "schemas without a valid fixture: {no_valid:?}"
    );
    assert!(
        no_invalid.is_empty(),
        "schemas without invalid fixtures: {no_invalid:?}"
    );
}

#[test]
fn every_seed_event_name_has_a_schema() {
    let set = SchemaSet::embedded();
    let man = manifest();
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    for group in ["realtime", "plugin"] {
        for (event, schema) in man["seedEvents"][group]
            .as_object()
            .expect("seedEvents group")
        {
            names.insert(event.clone());
            let schema = schema.as_str().expect("schema name");
            match set.document(schema) {
                None => problems.push(format!("{event}: no schema {schema}")),
                Some(doc) => {
                    // An event object that names itself must name itself right.
                    let declared = doc
                        .pointer("/properties/name/const")
                        .or_else(|| doc.pointer("/$defs/body/properties/name/const"));
                    if event.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                        && declared.and_then(Value::as_str) != Some(event)
                    {
                        problems.push(format!(
                            "{event}: schema {schema} declares name {declared:?}"
                        ));
                    }
                }
            }
        }
    }
    for (event, schema) in man["clientAcks"].as_object().expect("clientAcks") {
        if set.document(schema.as_str().expect("schema")).is_none() {
            problems.push(format!("ack of {event}: no schema {schema}"));
        }
    }
    // Every event name carried by a valid fixture is a seed event with a schema.
    for entry in man["valid"].as_array().expect("valid") {
        let v = read_json(
            &root()
                .join("fixtures")
                .join(entry["file"].as_str().expect("file")),
        );
        let schema = entry["schema"].as_str().expect("schema");
        let is_event = schema.starts_with("plugin-events/") || schema.starts_with("realtime/");
        if let Some(name) = v.get("name").and_then(Value::as_str).filter(|_| is_event)
            && !names.contains(name)
        {
            problems.push(format!(
                "{} carries event {name}, missing from seedEvents",
                entry["file"]
            ));
        }
    }
    // With PROTEUS_DOC_PAGES naming a folder of the ProteusAI docs pages
    // saved as text, the event names are read from them too.
    let pages = std::env::var_os("PROTEUS_DOC_PAGES").map(std::path::PathBuf::from);
    if let Some(seeds) = pages.filter(|p| p.is_dir()) {
        for path in fs::read_dir(&seeds)
            .expect("seeds")
            .map(|e| e.expect("entry").path())
        {
            let text = fs::read_to_string(&path).expect("seed text");
            if !text.contains("ProteusAI") && !text.contains("AGENT_CHAT_JOINED") {
                continue; // another protocol's page (thenvoi)
            }
            for line in text.lines() {
                let heading = line.trim();
                let is_event_heading = heading.len() > 4
                    && heading.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                    && heading.contains('_');
                let mut found: Vec<&str> = if is_event_heading {
                    vec![heading]
                } else {
                    Vec::new()
                };
                found.extend(
                    line.split(|c: char| !(c.is_ascii_uppercase() || c == '_'))
                        .filter(|w| w.starts_with("CHAT_") && w.len() > 5),
                );
                for row in [
                    "chat:join",
                    "chat:leave",
                    "message:send",
                    "message:delta",
                    "message:done",
                ] {
                    if line.starts_with(row) {
                        found.push(row);
                    }
                }
                for name in found {
                    if !names.contains(name) {
                        problems.push(format!(
                            "{} names event {name}, which has no schema in the manifest",
                            path.display()
                        ));
                    }
                }
            }
        }
    } else {
        eprintln!("note: PROTEUS_DOC_PAGES not set; checked the manifest's own list only");
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn stream_fixtures() -> Vec<(String, Value)> {
    json_files(&root().join("fixtures/streams"))
        .into_iter()
        .map(|p| (rel(&p), read_json(&p)))
        .collect()
}

fn frames(doc: &Value) -> Vec<(String, Value)> {
    doc["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["event"].as_str().expect("event").to_string(),
                e["data"].clone(),
            )
        })
        .collect()
}

#[test]
fn stream_checker_finds_exactly_the_labelled_violations() {
    let fixtures = stream_fixtures();
    assert!(fixtures.len() >= 15, "expected the stream fixture set");
    let mut problems = Vec::new();
    let mut broken_rules = BTreeSet::new();
    for (file, doc) in &fixtures {
        let frames = frames(doc);
        let report = StreamChecker::check(frames.iter().map(|(e, d)| (e.as_str(), d)));
        let expected: BTreeSet<Rule> = doc["violations"]
            .as_array()
            .expect("violations")
            .iter()
            .map(|v| {
                Rule::from_code(v.as_str().expect("code"))
                    .unwrap_or_else(|| panic!("{file}: unknown rule {v}"))
            })
            .collect();
        assert_eq!(
            doc["valid"].as_bool(),
            Some(expected.is_empty()),
            "{file}: valid flag disagrees with violations"
        );
        let actual: BTreeSet<Rule> = report.rules().into_iter().collect();
        if actual != expected {
            problems.push(format!(
                "{file}: expected {expected:?}, checker found {:#?}",
                report.violations
            ));
        }
        broken_rules.extend(expected);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Every rule of PROTOCOL.md R18 the checker knows has a fixture that breaks it.
    let untested: Vec<_> = Rule::ALL
        .iter()
        .filter(|r| !broken_rules.contains(r))
        .collect();
    assert!(
        untested.is_empty(),
        "rules no stream fixture breaks: {untested:?}"
    );
}

#[test]
fn correct_stream_fixtures_are_schema_valid_event_by_event() {
    let set = SchemaSet::embedded();
    let man = manifest();
    let schemas = man["seedEvents"]["realtime"]
        .as_object()
        .expect("realtime events");
    for (file, doc) in stream_fixtures() {
        if doc["valid"] != Value::Bool(true) {
            continue;
        }
        for (i, (event, data)) in frames(&doc).iter().enumerate() {
            let schema = schemas[event.as_str()].as_str().expect("schema");
            if let Err(v) = set.check(schema, data) {
                panic!("{file} frame {i} ({event}) fails {schema}: {v:?}");
            }
        }
    }
}

#[test]
fn stream_checker_counts_exactly_under_load_shaped_faults() {
    // 1,000 deltas with every 100th dropped and every 250th duplicated: the
    // counters must say exactly 10 lost and 4 duplicated.
    let (sid, mid, chat) = ("s", "6832df11b749a23a30105e02", "682f4b313981b5f54e96ea4b");
    let mut text = String::new();
    let mut frames = Vec::new();
    for i in 0..1000 {
        let chunk = format!("w{i} ");
        text.push_str(&chunk);
        let delta = serde_json::json!({"chatId": chat, "streamId": sid, "messageId": mid, "contentDelta": chunk,
            "content": text, "message": {"isStreaming": true, "streamId": sid}});
        if i % 100 == 50 {
            continue;
        }
        frames.push(("message:delta", delta.clone()));
        if i % 250 == 10 {
            frames.push(("message:delta", delta));
        }
    }
    frames.push((
        "message:done",
        serde_json::json!({"id": mid, "streamId": sid, "content": text, "isStreaming": false}),
    ));
    let report = StreamChecker::check(frames.iter().map(|(e, d)| (*e, d)));
    assert_eq!(report.totals.lost, 10, "{:?}", report.totals);
    assert_eq!(report.totals.duplicates, 4, "{:?}", report.totals);
    assert_eq!(report.totals.out_of_order, 0);
    assert_eq!(report.totals.deltas, 990);
    assert_eq!(report.completed, 1);
}

#[test]
fn adjacent_lost_deltas_are_one_missing_segment_and_their_characters_are_counted_exactly() {
    // 20 deltas of "é{i:02} " (4 characters, 5 bytes); deltas 3 and 4 are lost
    // together, 10 alone, and the last one (the done then carries its text).
    let (sid, mid, chat) = ("s", "6832df11b749a23a30105e02", "682f4b313981b5f54e96ea4b");
    let mut text = String::new();
    let mut frames = Vec::new();
    for i in 1..=20 {
        let chunk = format!("é{i:02} ");
        text.push_str(&chunk);
        if [3, 4, 10, 20].contains(&i) {
            continue;
        }
        frames.push((
            "message:delta",
            serde_json::json!({"chatId": chat, "streamId": sid, "messageId": mid, "contentDelta": chunk,
                "content": text, "message": {"isStreaming": true, "streamId": sid}}),
        ));
    }
    frames.push((
        "message:done",
        serde_json::json!({"id": mid, "streamId": sid, "content": text, "isStreaming": false}),
    ));
    let report = StreamChecker::check(frames.iter().map(|(e, d)| (*e, d)));
    assert_eq!(
        (report.totals.lost, report.totals.missing_chars),
        (3, 4 * 4),
        "three holes (3-4, 10, 20) and four deltas of 4 characters: {:?}",
        report.totals
    );
    assert_eq!(report.totals.deltas, 16);
}

#[test]
fn the_fast_delta_path_judges_every_stream_fixture_like_the_value_path() {
    use proteus_conformance::stream::{RawDelta, RawDone};
    for (file, doc) in stream_fixtures() {
        let frames = frames(&doc);
        let slow = StreamChecker::check(frames.iter().map(|(e, d)| (e.as_str(), d)));
        let mut fast = StreamChecker::new();
        for (event, data) in &frames {
            let json = data.to_string();
            match event.as_str() {
                "message:delta" if RawDelta::parse(&json).is_some() => {
                    fast.observe_delta(&RawDelta::parse(&json).expect("parsed").fields())
                }
                "message:done" if RawDone::parse(&json).is_some() => {
                    fast.observe_done(&RawDone::parse(&json).expect("parsed").fields())
                }
                _ => fast.observe(event, data),
            }
        }
        let fast = fast.finish();
        assert_eq!(fast.rules(), slow.rules(), "{file}: rules");
        assert_eq!(fast.totals, slow.totals, "{file}: counters");
    }
}
