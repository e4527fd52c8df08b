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
    let groups = by_group(results);
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

/// A single self-contained HTML page: the verdict, a table by group, every
/// case (failures open, with requirement, Expected, Actual, reproducer and
/// wire log), and the schema coverage rows. No script, no external asset.
pub fn html(results: &[CaseResult], target: &str, duration_ms: u64, exit_code: i32) -> String {
    let esc = xml;
    let count = |s: Status| results.iter().filter(|r| r.status == s).count();
    let verdict = if exit_code == 0 { "PASSED" } else { "FAILED" };
    let mut out = String::new();
    write!(
        out,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>proteus-conformance: {verdict} ({target})</title>
<style>
body{{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}}
h1{{font-size:1.4em}} .v-PASSED{{color:#17803d}} .v-FAILED{{color:#b42318}}
table{{border-collapse:collapse;width:100%;margin:1em 0}} td,th{{padding:.25em .6em;border-bottom:1px solid #eee;text-align:left;vertical-align:top}}
th{{background:#f6f6f6}} .num{{text-align:right}}
.s-pass{{color:#17803d}} .s-fail{{color:#b42318;font-weight:600}} .s-warn{{color:#b54708;font-weight:600}} .s-skip,.s-xfail{{color:#667}} .s-xpass{{color:#7a2e98;font-weight:600}}
details{{margin:.2em 0 .6em}} summary{{cursor:pointer}} pre{{background:#f6f6f6;padding:.6em;overflow:auto;font-size:12px;white-space:pre-wrap}}
.bar{{display:flex;height:10px;border-radius:5px;overflow:hidden;margin:.5em 0}} .bar span{{display:block}}
</style></head><body>
<h1>proteus-conformance: <span class="v-{verdict}">{verdict}</span></h1>
<p>Target <code>{target}</code> · {total} cases in {secs:.1} s · exit code {exit_code} · proteus-conformance {version}</p>
"#,
        target = esc(target),
        total = results.len(),
        secs = duration_ms as f64 / 1000.0,
        version = env!("CARGO_PKG_VERSION"),
    )
    .ok();
    let total = results.len().max(1) as f64;
    write!(out, r#"<div class="bar">"#).ok();
    for (s, color) in [
        (Status::Pass, "#3bb273"),
        (Status::Fail, "#d64545"),
        (Status::Xfail, "#9aa"),
        (Status::Xpass, "#9b59b6"),
        (Status::Unsupported, "#ccd"),
    ] {
        let pct = count(s) as f64 / total * 100.0;
        write!(
            out,
            r#"<span style="width:{pct:.2}%;background:{color}"></span>"#
        )
        .ok();
    }
    writeln!(
        out,
        "</div><p>{} passed · {} failed · {} unsupported · {} xfail · {} xpass</p>",
        count(Status::Pass),
        count(Status::Fail),
        count(Status::Unsupported),
        count(Status::Xfail),
        count(Status::Xpass)
    )
    .ok();
    // Failures first: a list linking to each, before anything that passed.
    let failing = |r: &CaseResult| match r.status {
        Status::Fail if r.level == Level::Must => 0,
        Status::Fail | Status::Xpass => 1,
        _ => 2,
    };
    let mut ordered: Vec<&CaseResult> = results.iter().collect();
    ordered.sort_by_key(|r| failing(r));
    let failures: Vec<&&CaseResult> = ordered.iter().filter(|r| failing(r) < 2).collect();
    if !failures.is_empty() {
        out.push_str("<h2>Failures</h2><ul>\n");
        for r in &failures {
            let what = r
                .failure
                .as_ref()
                .map(|f| f.actual.chars().take(160).collect::<String>())
                .unwrap_or_default();
            writeln!(
                out,
                "<li><a href=\"#{id}\"><code>{id}</code></a> ({}) {} <small>{}</small></li>",
                r.level,
                esc(&r.desc),
                esc(&what),
                id = esc(&r.id),
            )
            .ok();
        }
        out.push_str("</ul>\n");
    }
    let groups = by_group(results);
    out.push_str("<h2>By group</h2><table><tr><th>group</th><th class=num>pass</th><th class=num>fail</th><th class=num>unsupported</th><th class=num>xfail</th><th class=num>xpass</th></tr>\n");
    for (g, c) in &groups {
        writeln!(
            out,
            "<tr><td>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td></tr>",
            esc(g),
            c[0],
            c[1],
            c[2],
            c[3],
            c[4]
        )
        .ok();
    }
    out.push_str("</table><h2>Cases</h2>\n");
    for r in ordered {
        let (class, label) = match r.status {
            Status::Pass => ("pass", "PASS"),
            Status::Fail if r.level == Level::Must => ("fail", "FAIL"),
            Status::Fail => ("warn", "WARN"),
            Status::Unsupported => ("skip", "SKIP"),
            Status::Xfail => ("xfail", "XFAIL"),
            Status::Xpass => ("xpass", "XPASS"),
        };
        let open = if matches!(r.status, Status::Fail | Status::Xpass) {
            " open"
        } else {
            ""
        };
        write!(
            out,
            "<details id=\"{}\"{open}><summary><span class=\"s-{class}\">{label}</span> <code>{}</code> {} <small>({}, {} ms)</small></summary>",
            esc(&r.id),
            esc(&r.id),
            esc(&r.desc),
            r.level,
            r.duration_ms
        )
        .ok();
        write!(out, "<p>{}</p>", esc(&r.requirement)).ok();
        if let Some(reason) = &r.reason {
            write!(out, "<p><em>{}</em></p>", esc(reason)).ok();
        }
        if let Some(f) = &r.failure {
            write!(
                out,
                "<p><b>Expected</b></p><pre>{}</pre><p><b>Actual</b></p><pre>{}</pre>",
                esc(&f.expected.join("\n")),
                esc(&f.actual)
            )
            .ok();
            if !f.reproducer.is_empty() {
                write!(
                    out,
                    "<p><b>Reproduce</b></p><pre>{}</pre>",
                    esc(&f.reproducer)
                )
                .ok();
            }
        }
        if !r.wire.is_empty() && r.status != Status::Pass {
            write!(out, "<p><b>Wire log</b></p><pre>{}</pre>", esc(&r.wire)).ok();
        }
        out.push_str("</details>\n");
    }
    out.push_str("</body></html>\n");
    out
}

/// Counts by top-level group: pass, fail, unsupported, xfail, xpass.
fn by_group(results: &[CaseResult]) -> BTreeMap<&str, [usize; 5]> {
    let mut groups: BTreeMap<&str, [usize; 5]> = BTreeMap::new();
    for r in results {
        let g = groups
            .entry(r.group().split('.').next().unwrap_or("?"))
            .or_default();
        g[status_index(r.status)] += 1;
    }
    groups
}

fn status_index(s: Status) -> usize {
    match s {
        Status::Pass => 0,
        Status::Fail => 1,
        Status::Unsupported => 2,
        Status::Xfail => 3,
        Status::Xpass => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(id: &str, level: Level, status: Status) -> CaseResult {
        CaseResult {
            id: id.into(),
            level,
            desc: format!("case {id}"),
            requirement: String::new(),
            status,
            failure: None,
            reason: None,
            duration_ms: 0,
            wire: String::new(),
        }
    }

    #[test]
    fn the_html_report_lists_failures_first_and_links_to_them() {
        let mut results: Vec<CaseResult> = (1..=30)
            .map(|i| result(&format!("rest.a.{i}"), Level::Must, Status::Pass))
            .collect();
        results.push(result("stream.order.1", Level::Must, Status::Fail));
        results.push(result("rest.b.1", Level::Should, Status::Fail));
        let page = html(&results, "http://t", 10, 1);
        let failures = page.find("<h2>Failures</h2>").expect("a failures section");
        let first_pass = page.find("rest.a.1\"").expect("a passing case");
        let must = page
            .find("href=\"#stream.order.1\"")
            .expect("a link to the MUST failure");
        let should = page
            .find("href=\"#rest.b.1\"")
            .expect("a link to the SHOULD failure");
        assert!(
            failures < must && must < should && should < first_pass,
            "failures first"
        );
        let cases = page.find("<h2>Cases</h2>").expect("cases");
        let detail = page
            .find("<details id=\"stream.order.1\"")
            .expect("an anchor");
        assert!(cases < detail && detail < page.find("<details id=\"rest.a.1\"").expect("pass"));
        let clean = html(&results[..30], "http://t", 10, 0);
        assert!(
            !clean.contains("<h2>Failures</h2>"),
            "no section when all pass"
        );
    }
}
