//! Runs selected cases against a target and turns outcomes into results.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::case::{Case, Ctx, Failure, Level, Outcome, Seen, Shared};
use crate::profile::Profile;
use crate::schema::SchemaSet;

/// A case's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// The profile lacks what the case needs.
    Unsupported,
    /// A known failure listed in the expectations file.
    Xfail,
    /// Listed as a known failure, but it passed.
    Xpass,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseResult {
    pub id: String,
    pub level: Level,
    pub desc: String,
    pub requirement: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub wire: String,
}

impl CaseResult {
    pub fn group(&self) -> &str {
        self.id
            .rsplit_once('.')
            .map_or(self.id.as_str(), |(g, _)| g)
    }
}

/// A known failure: `ID [SIGNATURE] [# reason]`, one per line.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    pub id: String,
    /// When set, only a failure whose actual text contains it is expected.
    pub signature: Option<String>,
    pub reason: String,
    /// Its line in the file (1-based), for errors.
    pub line: usize,
}

/// Parses an expectations file; errors name the line.
pub fn parse_expectations(text: &str) -> Result<Vec<Expectation>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let (body, reason) = line
            .split_once('#')
            .map_or((line, ""), |(b, r)| (b, r.trim()));
        let mut words = body.split_whitespace();
        let Some(id) = words.next() else { continue };
        if !id.contains('.') {
            return Err(format!(
                "line {}: {id:?} is not a case id (group.sub.N)",
                i + 1
            ));
        }
        let rest: Vec<&str> = words.collect();
        out.push(Expectation {
            id: id.to_string(),
            signature: (!rest.is_empty()).then(|| rest.join(" ")),
            reason: reason.to_string(),
            line: i + 1,
        });
    }
    Ok(out)
}

/// Refuses an expectation that matches no id the runner can report: a typo
/// in a CI gate's known-failures list would otherwise go unnoticed. `ids`
/// are the case ids and the `schema.<name>.1` row ids; the error names the
/// line and the ids that look alike.
pub fn check_expectations(expectations: &[Expectation], ids: &[String]) -> Result<(), String> {
    for e in expectations {
        if ids.iter().any(|id| selects(&e.id, id)) {
            continue;
        }
        let stem = e.id.split('.').next().unwrap_or(&e.id);
        let similar: Vec<&str> = ids
            .iter()
            .map(String::as_str)
            .filter(|id| id.starts_with(stem))
            .take(6)
            .collect();
        let hint = if similar.is_empty() {
            String::new()
        } else {
            format!(" (similar ids: {})", similar.join(", "))
        };
        return Err(format!(
            "line {}: {:?} matches no case{hint}; `proteus-conformance list` prints every id",
            e.line, e.id
        ));
    }
    Ok(())
}

/// `*` matches anything; without `*`, a pattern selects the id itself and
/// everything under it (`rt.join` selects `rt.join.1`).
pub fn selects(pattern: &str, id: &str) -> bool {
    if !pattern.contains('*') {
        return id == pattern || id.starts_with(&format!("{pattern}."));
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = id;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    rest.is_empty()
}

/// Run settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub only: Vec<String>,
    pub exclude: Vec<String>,
    pub timeout: Duration,
    pub expectations: Vec<Expectation>,
}

/// Which cases `only`/`exclude` keep.
pub fn select<'a>(cases: &'a [Case], only: &[String], exclude: &[String]) -> Vec<&'a Case> {
    cases
        .iter()
        .filter(|c| only.is_empty() || only.iter().any(|p| selects(p, c.id)))
        .filter(|c| !exclude.iter().any(|p| selects(p, c.id)))
        .collect()
}

/// Level of the `schema.<name>` summary row: CHOSEN shapes are SHOULD.
fn schema_level(name: &str) -> Level {
    match name {
        "objects/pagination-meta"
        | "realtime/chat-join-ack"
        | "realtime/chat-leave-ack"
        | "realtime/success"
        | "objects/entity"
        | "realtime/chat-message-added"
        | "realtime/chat-state-updated"
        | "realtime/chat-participant-joined"
        | "realtime/chat-repository-attached" => Level::Should,
        _ => Level::Must,
    }
}

/// Runs `cases` one after another; `on_result` sees each result as it lands.
pub async fn run(
    cases: &[&Case],
    profile: Arc<Profile>,
    settings: &Settings,
    mut on_result: impl FnMut(&CaseResult),
) -> Vec<CaseResult> {
    let http = reqwest::Client::builder()
        .timeout(settings.timeout)
        .build()
        .unwrap_or_default();
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let shared: Arc<Shared> = Arc::default();
    let mut results = Vec::new();
    for case in cases {
        let cx = Ctx {
            profile: profile.clone(),
            http: http.clone(),
            schemas: SchemaSet::embedded(),
            timeout: settings.timeout,
            case_id: case.id,
            wire: Arc::default(),
            seen: seen.clone(),
            shared: shared.clone(),
        };
        let started = Instant::now();
        // A generous ceiling so a stuck case cannot hang the run.
        let ceiling = settings.timeout * 6 + Duration::from_secs(5);
        let outcome = match tokio::time::timeout(ceiling, (case.run)(cx.clone())).await {
            Ok(o) => o,
            Err(_) => Outcome::fail(
                [format!("the case to finish within {ceiling:?}")],
                "it did not (the target stalled)",
                cx.wire_log(),
            ),
        };
        let result = judge(
            case.id,
            case.level,
            case.desc,
            case.requirement,
            outcome,
            started.elapsed(),
            cx.wire_log(),
            &settings.expectations,
        );
        on_result(&result);
        results.push(result);
    }
    for result in schema_summary(
        &seen.lock().unwrap_or_else(|p| p.into_inner()),
        &settings.expectations,
    ) {
        on_result(&result);
        results.push(result);
    }
    results
}

/// A case's result from its outcome, with the expectations applied (also
/// the client mode's, `crate::sdk`).
#[allow(clippy::too_many_arguments)]
pub fn judge(
    id: &str,
    level: Level,
    desc: &str,
    requirement: &str,
    outcome: Outcome,
    took: Duration,
    wire: String,
    expectations: &[Expectation],
) -> CaseResult {
    let expected = expectations.iter().find(|e| e.id == id);
    let (status, failure, reason) = match outcome {
        Outcome::Pass => (
            if expected.is_some() {
                Status::Xpass
            } else {
                Status::Pass
            },
            None,
            expected.map(|e| format!("listed as a known failure: {}", e.reason)),
        ),
        Outcome::Unsupported(why) => (Status::Unsupported, None, Some(why)),
        Outcome::Fail(f) => {
            let known = expected.filter(|e| {
                e.signature.as_ref().is_none_or(|s| {
                    f.actual.contains(s.as_str())
                        || f.expected.iter().any(|x| x.contains(s.as_str()))
                })
            });
            match known {
                Some(e) => (Status::Xfail, Some(f), Some(e.reason.clone())),
                None => (Status::Fail, Some(f), None),
            }
        }
    };
    let wire = if status == Status::Fail || status == Status::Xfail {
        wire
    } else {
        String::new()
    };
    CaseResult {
        id: id.into(),
        level,
        desc: desc.into(),
        requirement: requirement.into(),
        status,
        failure,
        reason,
        duration_ms: took.as_millis() as u64,
        wire,
    }
}

/// One `schema.<name>` row per schema that validated something in the run.
fn schema_summary(seen: &[Seen], expectations: &[Expectation]) -> Vec<CaseResult> {
    let mut by_schema: BTreeMap<&str, Vec<&Seen>> = BTreeMap::new();
    for s in seen {
        by_schema.entry(s.schema).or_default().push(s);
    }
    let set = SchemaSet::embedded();
    by_schema
        .into_iter()
        .map(|(name, items)| {
            let bad = items
                .iter()
                .find_map(|s| set.check(name, &s.payload).err().map(|v| (s, v)));
            let outcome = match bad {
                None => Outcome::Pass,
                Some((s, v)) => Outcome::fail(
                    [format!(
                        "every {name} payload the cases checked matches schemas/{name}.json"
                    )],
                    format!(
                        "{} of {} failed; first, seen in {}: {}",
                        items
                            .iter()
                            .filter(|s| set.check(name, &s.payload).is_err())
                            .count(),
                        items.len(),
                        s.case,
                        v.iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                    s.payload.to_string(),
                ),
            };
            let id = format!("schema.{}.1", name.replace('/', "."));
            let desc = format!(
                "Validate the {} {name} payloads seen in the run",
                items.len()
            );
            judge(
                &id,
                schema_level(name),
                &desc,
                "Schemas are the contract: every payload validates against its schema",
                outcome,
                Duration::ZERO,
                String::new(),
                expectations,
            )
        })
        .collect()
}

/// The run's verdict as an exit code: 0 pass; 1 a MUST failed (or a SHOULD
/// under `strict`, or an unexpected pass under `strict_expectations`).
pub fn exit_code(results: &[CaseResult], strict: bool, strict_expectations: bool) -> i32 {
    let failed = results.iter().any(|r| {
        r.status == Status::Fail && (r.level == Level::Must || (strict && r.level == Level::Should))
    });
    let xpassed = strict_expectations && results.iter().any(|r| r.status == Status::Xpass);
    i32::from(failed || xpassed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_select_by_prefix_or_glob() {
        assert!(selects("rt.join", "rt.join.3"));
        assert!(!selects("rt.join", "rt.joiner.3"));
        assert!(selects("rt.*", "rt.send.1"));
        assert!(selects("*.3", "rt.join.3"));
        assert!(selects("stream.1", "stream.1"));
        assert!(!selects("stream.1", "stream.10"));
    }

    #[test]
    fn expectations_parse_with_signatures_and_reasons() {
        let e =
            parse_expectations("# known\nstream.4 gap  # drops a delta, issue 12\nrest.auth.6\n")
                .expect("parses");
        assert_eq!(
            e[0],
            Expectation {
                id: "stream.4".into(),
                signature: Some("gap".into()),
                reason: "drops a delta, issue 12".into(),
                line: 2,
            }
        );
        assert_eq!(e[1].signature, None);
        assert!(parse_expectations("nonsense").is_err());
    }

    #[test]
    fn an_expectation_that_matches_no_case_is_an_error_naming_its_line() {
        let ids: Vec<String> = ["rt.join.1", "rt.join.2", "schema.realtime.message-delta.1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let ok = parse_expectations(
            "rt.join.2
rt.join
schema.*
",
        )
        .expect("parses");
        assert!(check_expectations(&ok, &ids).is_ok());
        let typo = parse_expectations(
            "rt.join.1

rt.jion.2  # typo
",
        )
        .expect("parses");
        let err = check_expectations(&typo, &ids).expect_err("a typo");
        assert!(
            err.starts_with("line 3: \"rt.jion.2\" matches no case"),
            "{err}"
        );
        assert!(err.contains("similar ids: rt.join.1, rt.join.2"), "{err}");
    }

    fn result(level: Level, status: Status) -> CaseResult {
        CaseResult {
            id: "a.b.1".into(),
            level,
            desc: String::new(),
            requirement: String::new(),
            status,
            failure: None,
            reason: None,
            duration_ms: 0,
            wire: String::new(),
        }
    }

    #[test]
    fn exit_codes_follow_levels_and_strictness() {
        assert_eq!(
            exit_code(&[result(Level::Must, Status::Pass)], false, false),
            0
        );
        assert_eq!(
            exit_code(&[result(Level::Must, Status::Fail)], false, false),
            1
        );
        assert_eq!(
            exit_code(&[result(Level::Should, Status::Fail)], false, false),
            0
        );
        assert_eq!(
            exit_code(&[result(Level::Should, Status::Fail)], true, false),
            1
        );
        assert_eq!(
            exit_code(&[result(Level::Must, Status::Xfail)], false, false),
            0
        );
        assert_eq!(
            exit_code(&[result(Level::Must, Status::Xpass)], false, true),
            1
        );
        assert_eq!(
            exit_code(&[result(Level::Must, Status::Unsupported)], true, true),
            0
        );
    }
}
