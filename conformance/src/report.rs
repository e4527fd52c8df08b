//! Reports: the human one, JSON (`schemas/report/conformance.json`, version 1)
//! and JUnit XML.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::json;

use crate::case::Level;
use crate::runner::{CaseResult, Status};

/// The one line printed as a case finishes.
pub fn line(r: &CaseResult) -> String {
    let mark = match r.status {
        Status::Pass => "PASS ",
        Status::Fail if r.level == Level::Must => "FAIL ",
        Status::Fail => "WARN ",
        Status::Unsupported => "SKIP ",
        Status::Xfail => "XFAIL",
        Status::Xpass => "XPASS",
    };
    let mut l = format!("{mark} {:<6} {:<34} {}", r.level, r.id, r.desc);
    if let Some(reason) = r
        .reason
        .as_ref()
        .filter(|_| r.status == Status::Unsupported)
    {
        write!(l, " ({reason})").ok();
    }
    l
}

/// Every failure in full, then a table by group and a summary line.
pub fn summary(results: &[CaseResult], strict: bool) -> String {
    let mut out = String::new();
    let failures: Vec<&CaseResult> = results
        .iter()
        .filter(|r| r.status == Status::Fail)
        .collect();
    if !failures.is_empty() {
        writeln!(out, "\nFailures:").ok();
    }
    for r in &failures {
        let f = r
            .failure
            .as_ref()
            .expect("a failed case carries its failure");
        let what = if r.level == Level::Must || strict {
            "FAILED"
        } else {
            "NON-STRICT"
        };
        writeln!(out, "\n× {} [{} {what}] {}", r.id, r.level, r.desc).ok();
        writeln!(out, "  -> {}", r.requirement).ok();
        writeln!(out, "  Expected:").ok();
        for e in &f.expected {
            writeln!(out, "    {e}").ok();
        }
        writeln!(out, "  Actual:\n    {}", f.actual.replace('\n', "\n    ")).ok();
        if !f.reproducer.is_empty() {
            writeln!(
                out,
                "  Reproduce:\n    {}",
                f.reproducer
                    .lines()
                    .take(40)
                    .collect::<Vec<_>>()
                    .join("\n    ")
            )
            .ok();
        }
    }
    let mut groups: BTreeMap<&str, [usize; 5]> = BTreeMap::new();
    for r in results {
        let g = groups
            .entry(r.group().split('.').next().unwrap_or("?"))
            .or_default();
        g[match r.status {
            Status::Pass => 0,
            Status::Fail => 1,
            Status::Unsupported => 2,
            Status::Xfail => 3,
            Status::Xpass => 4,
        }] += 1;
    }
    writeln!(
        out,
        "\n{:<14} {:>5} {:>5} {:>5} {:>6} {:>6}",
        "group", "pass", "fail", "skip", "xfail", "xpass"
    )
    .ok();
    for (g, c) in &groups {
        writeln!(
            out,
            "{g:<14} {:>5} {:>5} {:>5} {:>6} {:>6}",
            c[0], c[1], c[2], c[3], c[4]
        )
        .ok();
    }
    let count = |s: Status| results.iter().filter(|r| r.status == s).count();
    let must_fail = results
        .iter()
        .filter(|r| r.status == Status::Fail && r.level == Level::Must)
        .count();
    writeln!(
        out,
        "\n{} cases, {} passed, {} failed ({} MUST, {} SHOULD), {} unsupported, {} xfail, {} xpass",
        results.len(),
        count(Status::Pass),
        count(Status::Fail),
        must_fail,
        count(Status::Fail) - must_fail,
        count(Status::Unsupported),
        count(Status::Xfail),
        count(Status::Xpass)
    )
    .ok();
    out
}

/// The JSON report (validated by `schemas/report/conformance.json`).
pub fn json(
    results: &[CaseResult],
    target: &str,
    profile_source: &str,
    duration_ms: u64,
    exit_code: i32,
) -> serde_json::Value {
    let count = |s: Status| results.iter().filter(|r| r.status == s).count();
    json!({
        "version": 1,
        "tool": "proteus-conformance",
        "toolVersion": env!("CARGO_PKG_VERSION"),
        "target": target,
        "profileSource": profile_source,
        "durationMs": duration_ms,
        "exitCode": exit_code,
        "summary": {
            "total": results.len(), "pass": count(Status::Pass), "fail": count(Status::Fail),
            "unsupported": count(Status::Unsupported), "xfail": count(Status::Xfail), "xpass": count(Status::Xpass)
        },
        "cases": results,
    })
}

fn xml(s: &str) -> String {
    s.chars()
        .filter(|c| *c == '\n' || *c == '\t' || !c.is_control())
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JUnit XML: a case is a testcase; a MUST failure (or any failure under
/// `strict`) is a `<failure>`; a SHOULD failure is system-out; unsupported is
/// skipped; xfail is skipped with its reason; xpass is a failure only under
/// `strict_expectations`.
pub fn junit(results: &[CaseResult], strict: bool, strict_expectations: bool) -> String {
    let mut groups: BTreeMap<String, Vec<&CaseResult>> = BTreeMap::new();
    for r in results {
        groups.entry(r.group().to_string()).or_default().push(r);
    }
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"proteus-conformance\">\n",
    );
    for (group, rs) in groups {
        let is_failure = |r: &CaseResult| {
            (r.status == Status::Fail && (r.level == Level::Must || strict))
                || (r.status == Status::Xpass && strict_expectations)
        };
        let failures = rs.iter().filter(|r| is_failure(r)).count();
        let skipped = rs
            .iter()
            .filter(|r| matches!(r.status, Status::Unsupported | Status::Xfail))
            .count();
        let time: f64 = rs.iter().map(|r| r.duration_ms as f64 / 1000.0).sum();
        writeln!(out, "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{time:.3}\">", xml(&group), rs.len()).ok();
        for r in rs {
            write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                xml(&group),
                xml(&format!("{} [{}] {}", r.id, r.level, r.desc)),
                r.duration_ms as f64 / 1000.0
            )
            .ok();
            let detail = r
                .failure
                .as_ref()
                .map(|f| {
                    format!(
                        "-> {}\nExpected:\n  {}\nActual:\n  {}\nReproduce:\n  {}",
                        r.requirement,
                        f.expected.join("\n  "),
                        f.actual,
                        f.reproducer
                    )
                })
                .unwrap_or_default();
            match r.status {
                Status::Pass => out.push_str("/>\n"),
                _ if is_failure(r) => {
                    let msg = r.failure.as_ref().map_or_else(
                        || "passed but listed as a known failure".to_string(),
                        |f| f.actual.lines().next().unwrap_or_default().to_string(),
                    );
                    writeln!(
                        out,
                        ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                        xml(&msg),
                        xml(&detail)
                    )
                    .ok();
                }
                Status::Unsupported | Status::Xfail => {
                    writeln!(
                        out,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        xml(r.reason.as_deref().unwrap_or(""))
                    )
                    .ok();
                }
                _ => {
                    writeln!(
                        out,
                        ">\n      <system-out>{}</system-out>\n    </testcase>",
                        xml(&format!("NON-STRICT ({})\n{detail}", r.level))
                    )
                    .ok();
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
