//! The Thenvoi (Band) contract: `schemas/thenvoi/` against
//! `fixtures/thenvoi/` and `docs/THENVOI.md`.
//!
//! Every valid fixture passes its schema, every near-miss fails at the place
//! its file says, every schema is covered both ways, every rule a schema or
//! the manifest cites exists, and the manifest's tables (channel events,
//! topics, frames, endpoints) agree with the schemas. The fixtures are data;
//! this file only runs them, in the manner of `fixtures.rs`, whose invalid
//! file format and mutation steps it shares.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use proteus_conformance::schema::SchemaSet;
use serde_json::Value;

mod fixture_kit;
use fixture_kit::{InvalidCase, json_files, read_json};

const PREFIX: &str = "thenvoi/";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixtures_dir() -> PathBuf {
    root().join("fixtures/thenvoi")
}

fn manifest() -> Value {
    read_json(&fixtures_dir().join("manifest.json"))
}

fn rules_doc() -> String {
    fs::read_to_string(root().join("docs/THENVOI.md")).expect("docs/THENVOI.md")
}

/// A path relative to `fixtures/thenvoi/`, with forward slashes.
fn rel(path: &Path) -> String {
    fixture_kit::rel_to(&fixtures_dir(), path)
}

fn thenvoi_schemas(set: &SchemaSet) -> Vec<&str> {
    set.names().filter(|n| n.starts_with(PREFIX)).collect()
}

/// The file part of a schema name (`thenvoi/defs#/$defs/uuid` → `thenvoi/defs`).
fn file_of(schema: &str) -> &str {
    schema.split('#').next().expect("name")
}

/// The rule numbers `docs/THENVOI.md` defines: the rows `| T<n> | …`.
fn defined_rules() -> Vec<u32> {
    rules_doc()
        .lines()
        .filter_map(|l| l.strip_prefix("| T"))
        .filter_map(|rest| rest.split_once(' '))
        .filter_map(|(n, _)| n.parse().ok())
        .collect()
}

/// Every rule number a text cites as `THENVOI.md T<n>`, and the ranges and
/// lists after it (`T42–T44`, `T8, T10, T12`).
fn cited_rules(text: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("THENVOI.md T") {
        let tail = &text[i + "THENVOI.md ".len()..];
        // Read `T<n>` items separated by ", ", "–" or "-" until something else.
        let mut rest = tail;
        let mut last: Option<u32> = None;
        let mut range = false;
        while let Some(r) = rest.strip_prefix('T') {
            let digits: String = r.chars().take_while(char::is_ascii_digit).collect();
            let Ok(n) = digits.parse::<u32>() else { break };
            match (range, last) {
                (true, Some(from)) => out.extend(from + 1..=n),
                _ => out.push(n),
            }
            last = Some(n);
            rest = &r[digits.len()..];
            if let Some(r) = rest.strip_prefix('–').or_else(|| rest.strip_prefix('-')) {
                range = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix(", ") {
                range = false;
                rest = r;
            } else {
                break;
            }
        }
    }
    out
}

#[test]
fn the_rules_are_numbered_t1_to_tn_without_gaps() {
    let rules = defined_rules();
    let n = rules.len() as u32;
    assert!(
        n >= 40,
        "expected the whole Thenvoi rule set, found {n} rules"
    );
    assert_eq!(rules, (1..=n).collect::<Vec<_>>(), "rules out of order");
    assert!(
        rules_doc().contains(&format!("numbered T1–T{n}")),
        "the introduction must say the rules are numbered T1–T{n}"
    );
}

#[test]
fn the_rule_scanner_reads_lists_and_ranges() {
    assert_eq!(
        cited_rules("(THENVOI.md T8, T10, T12, STATED) and THENVOI.md T42–T44. T9"),
        vec![8, 10, 12, 42, 43, 44]
    );
}

#[test]
fn every_thenvoi_schema_is_a_documented_2020_12_schema() {
    let set = SchemaSet::embedded();
    let defined: BTreeSet<u32> = defined_rules().into_iter().collect();
    let mut problems = Vec::new();
    let names = thenvoi_schemas(set);
    assert!(
        names.len() >= 40,
        "expected the whole Thenvoi contract under schemas/thenvoi/, found {}",
        names.len()
    );
    for name in names {
        let doc = set.document(name).expect("listed");
        if doc.get("$schema").and_then(Value::as_str)
            != Some("https://json-schema.org/draft/2020-12/schema")
        {
            problems.push(format!("{name}: must declare draft 2020-12"));
        }
        if let Err(e) = jsonschema::meta::validate(doc) {
            problems.push(format!("{name}: not a valid 2020-12 schema: {e}"));
        }
        let title = doc.get("title").and_then(Value::as_str).unwrap_or("");
        let description = doc.get("description").and_then(Value::as_str).unwrap_or("");
        if title.is_empty() || description.is_empty() {
            problems.push(format!("{name}: needs a title and a description"));
        }
        let cited = cited_rules(description);
        if cited.is_empty() {
            problems.push(format!("{name}: the description cites no THENVOI.md rule"));
        }
        for n in cited.into_iter().filter(|n| !defined.contains(n)) {
            problems.push(format!(
                "{name}: cites T{n}, which docs/THENVOI.md does not define"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn valid_fixtures_validate_against_their_schema() {
    let set = SchemaSet::embedded();
    let man = manifest();
    let mut failures = Vec::new();
    for entry in man["valid"].as_array().expect("manifest.valid") {
        let file = entry["file"].as_str().expect("file");
        let schema = entry["schema"].as_str().expect("schema");
        assert!(
            entry["source"].as_str().is_some_and(|s| !s.is_empty()),
            "{file}: say where the example comes from"
        );
        let instance = read_json(&fixtures_dir().join(file));
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
fn the_manifest_lists_exactly_the_fixture_files() {
    let man = manifest();
    for (key, dir) in [("valid", "valid"), ("invalid", "invalid")] {
        let listed: BTreeSet<String> = man[key]
            .as_array()
            .unwrap_or_else(|| panic!("manifest.{key}"))
            .iter()
            .map(|e| {
                e.get("file")
                    .unwrap_or(e)
                    .as_str()
                    .expect("a file path")
                    .to_string()
            })
            .collect();
        let on_disk: BTreeSet<String> = json_files(&fixtures_dir().join(dir))
            .iter()
            .map(|p| rel(p))
            .collect();
        let orphans: Vec<_> = on_disk.difference(&listed).collect();
        let missing: Vec<_> = listed.difference(&on_disk).collect();
        assert!(
            orphans.is_empty() && missing.is_empty(),
            "{key}: not in manifest: {orphans:?}; listed but missing: {missing:?}"
        );
    }
}

fn invalid_cases() -> Vec<InvalidCase> {
    fixture_kit::invalid_cases(&fixtures_dir())
}

#[test]
fn invalid_fixtures_fail_where_they_say() {
    // The exact errors, so a schema change that moves them is seen in review.
    let text = fixture_kit::invalid_fixture_errors(SchemaSet::embedded(), invalid_cases());
    insta::assert_snapshot!("thenvoi_invalid_fixture_errors", text);
}

#[test]
fn every_thenvoi_schema_has_valid_and_invalid_fixtures() {
    let set = SchemaSet::embedded();
    let man = manifest();
    let valid: BTreeSet<String> = man["valid"]
        .as_array()
        .expect("valid")
        .iter()
        .map(|e| file_of(e["schema"].as_str().expect("schema")).to_string())
        .collect();
    let invalid: BTreeSet<String> = invalid_cases()
        .iter()
        .map(|c| file_of(&c.schema).to_string())
        .collect();
    let names = thenvoi_schemas(set);
    let no_valid: Vec<_> = names.iter().filter(|n| !valid.contains(**n)).collect();
    let no_invalid: Vec<_> = names.iter().filter(|n| !invalid.contains(**n)).collect();
    assert!(
        no_valid.is_empty(),
        "schemas without a valid fixture: {no_valid:?}"
    );
    assert!(
        no_invalid.is_empty(),
        "schemas without invalid fixtures: {no_invalid:?}"
    );
}

fn string_set(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .expect("an array of strings")
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect()
}

#[test]
fn channel_events_agree_with_the_push_schema_the_topics_and_the_rules() {
    let set = SchemaSet::embedded();
    let man = manifest();
    let doc = rules_doc();
    let mut problems = Vec::new();
    let with_schema: BTreeSet<String> = man["channelEvents"]
        .as_object()
        .expect("channelEvents")
        .keys()
        .cloned()
        .collect();
    let out_of_scope = string_set(&man["outOfScopeEvents"]);
    for (event, schema) in man["channelEvents"].as_object().expect("channelEvents") {
        if set
            .document(schema.as_str().expect("schema name"))
            .is_none()
        {
            problems.push(format!("{event}: no schema {schema}"));
        }
    }
    // push.json's closed list is exactly the manifest's events.
    let enumerated = string_set(
        set.document("thenvoi/defs")
            .and_then(|d| d.pointer("/$defs/channelEvent/enum"))
            .expect("thenvoi/defs#/$defs/channelEvent"),
    );
    let listed: BTreeSet<String> = with_schema.union(&out_of_scope).cloned().collect();
    if enumerated != listed {
        problems.push(format!(
            "defs channelEvent {enumerated:?} differs from channelEvents + outOfScopeEvents {listed:?}"
        ));
    }
    // Every event is named in the rules, and pushed on some topic of T15.
    let mut on_topics = BTreeSet::new();
    let topics = man["topics"].as_object().expect("topics");
    let topic_pattern = set
        .document("thenvoi/defs")
        .and_then(|d| d.pointer("/$defs/channelTopic/pattern"))
        .and_then(Value::as_str)
        .expect("channelTopic pattern");
    for (family, t) in topics {
        if !topic_pattern.contains(family.as_str()) {
            problems.push(format!("topic family {family} is not in channelTopic"));
        }
        if !doc.contains(&format!("`{family}:")) {
            problems.push(format!("topic family {family} is not in docs/THENVOI.md"));
        }
        let events = string_set(&t["events"]);
        let agent_events = string_set(&t["agentEvents"]);
        if !agent_events.is_subset(&events) {
            problems.push(format!("{family}: agentEvents not among its events"));
        }
        if t["agents"] == Value::Bool(false) && !agent_events.is_empty() {
            problems.push(format!("{family}: agents cannot join, yet receive events"));
        }
        on_topics.extend(events);
    }
    if on_topics != listed {
        problems.push(format!(
            "events on topics {on_topics:?} differ from the listed events {listed:?}"
        ));
    }
    for event in &listed {
        if !doc.contains(&format!("`{event}`")) {
            problems.push(format!("{event} is not named in docs/THENVOI.md"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn valid_push_frames_carry_a_valid_payload_on_a_topic_that_sends_it() {
    let set = SchemaSet::embedded();
    let man = manifest();
    let events = man["channelEvents"].as_object().expect("channelEvents");
    let topics = man["topics"].as_object().expect("topics");
    let mut seen = 0;
    for entry in man["valid"].as_array().expect("valid") {
        let schema = entry["schema"].as_str().expect("schema");
        if !schema.starts_with("thenvoi/phoenix/") {
            continue;
        }
        let frame = read_json(&fixtures_dir().join(entry["file"].as_str().expect("file")));
        let event = frame[3].as_str().expect("event");
        let Some(payload_schema) = events.get(event).and_then(Value::as_str) else {
            continue;
        };
        seen += 1;
        if let Err(v) = set.check(payload_schema, &frame[4]) {
            panic!("{}: payload fails {payload_schema}: {v:?}", entry["file"]);
        }
        let family = frame[2]
            .as_str()
            .and_then(|t| t.split_once(':'))
            .map(|(f, _)| f)
            .expect("topic family");
        let sent = string_set(&topics[family]["events"]);
        assert!(
            sent.contains(event),
            "{}: {family} does not push {event}",
            entry["file"]
        );
    }
    assert!(seen > 0, "no valid push frame with a channel event");
}

#[test]
fn frames_and_endpoints_name_existing_schemas_and_cover_every_body() {
    let set = SchemaSet::embedded();
    let man = manifest();
    let defined: BTreeSet<u32> = defined_rules().into_iter().collect();
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    let mut check = |what: String, schema: &str, used: &mut BTreeSet<String>| {
        if set.document(schema).is_none() {
            problems.push(format!("{what}: no schema {schema}"));
        }
        used.insert(schema.to_string());
    };
    for (frame, schema) in man["frames"].as_object().expect("frames") {
        check(
            format!("frame {frame}"),
            schema.as_str().expect("schema"),
            &mut used,
        );
    }
    check(
        "errorResponse".into(),
        man["errorResponse"].as_str().expect("errorResponse"),
        &mut used,
    );
    let mut routes = BTreeSet::new();
    for ep in man["endpoints"].as_array().expect("endpoints") {
        let route = format!(
            "{} {}",
            ep["method"].as_str().expect("method"),
            ep["path"].as_str().expect("path")
        );
        assert!(routes.insert(route.clone()), "{route} listed twice");
        assert!(
            ep["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/api/v1/")),
            "{route}: paths are under /api/v1 (T29)"
        );
        let rule: u32 = ep["rule"]
            .as_str()
            .and_then(|r| r.strip_prefix('T'))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{route}: rule is T<n>"));
        assert!(defined.contains(&rule), "{route}: T{rule} is not defined");
        if let Some(req) = ep["request"].as_str() {
            check(format!("{route} request"), req, &mut used);
        }
        for (status, schema) in ep["responses"].as_object().expect("responses") {
            let code: u16 = status.parse().expect("a status code");
            assert!((200..300).contains(&code), "{route}: success codes only");
            match schema.as_str() {
                Some(s) => check(format!("{route} {status}"), s, &mut used),
                None => assert_eq!(code, 204, "{route}: only a 204 has no body"),
            }
        }
    }
    let unused: Vec<_> = thenvoi_schemas(set)
        .into_iter()
        .filter(|n| {
            (n.starts_with("thenvoi/requests/")
                || n.starts_with("thenvoi/responses/")
                || n.starts_with("thenvoi/phoenix/"))
                && *n != "thenvoi/phoenix/frame"
                && !used.contains(*n)
        })
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        unused.is_empty(),
        "schemas no frame or endpoint of the manifest uses: {unused:?}"
    );
}

/// The first sentence of a description, as the schemas README quotes it:
/// up to and including the first ". ", or all of it.
fn first_sentence(text: &str) -> &str {
    text.find(". ").map_or(text, |i| &text[..=i])
}

#[test]
fn the_schemas_readme_lists_every_thenvoi_schema_with_its_title() {
    let set = SchemaSet::embedded();
    let readme = fs::read_to_string(root().join("schemas/README.md")).expect("schemas/README.md");
    let rows: BTreeMap<String, String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("| `thenvoi/"))
        .filter_map(|rest| rest.split_once("` | "))
        .map(|(name, row)| (format!("{PREFIX}{name}"), row.to_string()))
        .collect();
    let mut problems = Vec::new();
    for name in thenvoi_schemas(set) {
        let doc = set.document(name).expect("listed");
        let title = doc["title"].as_str().unwrap_or("");
        let sentence = first_sentence(doc["description"].as_str().unwrap_or(""));
        let expected = format!("{title} | {sentence} |");
        match rows.get(name) {
            None => problems.push(format!("{name}: no row in schemas/README.md")),
            Some(row) if *row != expected => problems.push(format!(
                "{name}: README row\n    {row}\nexpected\n    {expected}"
            )),
            Some(_) => {}
        }
    }
    for name in rows.keys() {
        if set.document(name).is_none() {
            problems.push(format!(
                "schemas/README.md lists {name}, which does not exist"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
