//! `--html FILE`: one self-contained page (inline SVG, no script, no
//! external asset) with what people want to look at after a run: throughput
//! over time, latency percentile curves, the histogram of time to first
//! delta, and the numbers behind them. Everything on it comes from the
//! [`Report`], the same value the JSON file, the gates and the terminal
//! summary show.

use std::fmt::Write;

use crate::metrics::Hist;
use crate::report::{Report, nines};

const W: f64 = 640.0;
const H: f64 = 260.0;
const PAD_L: f64 = 60.0;
const PAD_B: f64 = 36.0;
const PAD_T: f64 = 16.0;
const PAD_R: f64 = 16.0;
const COLORS: [&str; 3] = ["#2563eb", "#d97706", "#059669"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A "nice" upper bound for an axis.
fn nice(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|v| *v >= max)
        .unwrap_or(10.0 * mag)
}

fn fmt_num(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Axes, grid and labels; returns the SVG head and the plot's mapping.
fn frame(
    title: &str,
    x_label: &str,
    y_label: &str,
    y_max: f64,
    x_ticks: &[(f64, String)],
    x_max: f64,
) -> String {
    let (pw, ph) = (W - PAD_L - PAD_R, H - PAD_T - PAD_B);
    let mut s = format!(
        r#"<figure><figcaption>{}</figcaption><svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{}">"#,
        esc(title),
        esc(title)
    );
    for i in 0..=4 {
        let v = y_max * f64::from(i) / 4.0;
        let y = PAD_T + ph - ph * f64::from(i) / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{PAD_L}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e5e7eb"/><text x="{}" y="{:.1}" text-anchor="end" font-size="11">{}</text>"##,
            PAD_L + pw,
            PAD_L - 6.0,
            y + 4.0,
            fmt_num(v)
        );
    }
    for (x, label) in x_ticks {
        let px = PAD_L + pw * x / x_max.max(1e-9);
        let _ = write!(
            s,
            r##"<line x1="{px:.1}" x2="{px:.1}" y1="{PAD_T}" y2="{}" stroke="#f1f5f9"/><text x="{px:.1}" y="{}" text-anchor="middle" font-size="11">{}</text>"##,
            PAD_T + ph,
            PAD_T + ph + 16.0,
            esc(label)
        );
    }
    let _ = write!(
        s,
        r##"<line x1="{PAD_L}" x2="{PAD_L}" y1="{PAD_T}" y2="{}" stroke="#94a3b8"/><line x1="{PAD_L}" x2="{}" y1="{}" y2="{}" stroke="#94a3b8"/><text x="{}" y="{}" text-anchor="middle" font-size="12">{}</text><text x="14" y="{}" font-size="12" transform="rotate(-90 14 {})" text-anchor="middle">{}</text>"##,
        PAD_T + ph,
        PAD_L + pw,
        PAD_T + ph,
        PAD_T + ph,
        PAD_L + pw / 2.0,
        H - 4.0,
        esc(x_label),
        PAD_T + ph / 2.0,
        PAD_T + ph / 2.0,
        esc(y_label)
    );
    s
}

fn point(x: f64, y: f64, x_max: f64, y_max: f64) -> (f64, f64) {
    let (pw, ph) = (W - PAD_L - PAD_R, H - PAD_T - PAD_B);
    (
        PAD_L + pw * x / x_max.max(1e-9),
        PAD_T + ph - ph * (y / y_max.max(1e-9)).min(1.0),
    )
}

/// Deltas received in each second of the run, as bars.
fn throughput(per_second: &[u64]) -> String {
    if per_second.is_empty() {
        return "<p>No deltas were received.</p>".into();
    }
    let n = per_second.len() as f64;
    let y_max = nice(per_second.iter().copied().max().unwrap_or(0) as f64);
    let step = (per_second.len() / 10).max(1);
    let ticks: Vec<(f64, String)> = (0..per_second.len())
        .step_by(step)
        .map(|i| (i as f64 + 0.5, format!("{i}s")))
        .collect();
    let mut s = frame(
        "Deltas received per second",
        "second of the run",
        "deltas",
        y_max,
        &ticks,
        n,
    );
    let (pw, _) = (W - PAD_L - PAD_R, 0.0);
    let bw = (pw / n * 0.8).max(1.0);
    for (i, v) in per_second.iter().enumerate() {
        let (x, y) = point(i as f64 + 0.1, *v as f64, n, y_max);
        let (_, y0) = point(0.0, 0.0, n, y_max);
        let _ = write!(
            s,
            r##"<rect x="{x:.1}" y="{y:.1}" width="{bw:.1}" height="{:.1}" fill="{}"><title>{i}s: {v}</title></rect>"##,
            (y0 - y).max(0.0),
            COLORS[0]
        );
    }
    s.push_str("</svg></figure>");
    s
}

/// Latency against percentile, on a "nines" axis (50%, 90%, 99%, 99.9%, …).
fn percentiles(curves: &[(&str, &[(f64, f64)])]) -> String {
    let curves: Vec<(&str, Vec<(f64, f64)>)> = curves
        .iter()
        .filter(|(_, points)| !points.is_empty())
        .map(|(name, points)| {
            (
                *name,
                points.iter().map(|(q, ms)| (nines(*q), *ms)).collect(),
            )
        })
        .collect();
    if curves.is_empty() {
        return String::new();
    }
    let y_max = nice(
        curves
            .iter()
            .flat_map(|(_, points)| points.iter().map(|p| p.1))
            .fold(0.0, f64::max),
    );
    let x_max = 4.0;
    let ticks: Vec<(f64, String)> = [
        (0.0, "0%"),
        (1.0, "90%"),
        (2.0, "99%"),
        (3.0, "99.9%"),
        (4.0, "99.99%"),
    ]
    .iter()
    .map(|(x, l)| (*x, l.to_string()))
    .collect();
    let title = match curves.as_slice() {
        [(name, _)] => format!("{name}: latency by percentile"),
        _ => "Latency by percentile".to_string(),
    };
    let mut s = frame(&title, "percentile", "ms", y_max, &ticks, x_max);
    for (i, (name, points)) in curves.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let path: Vec<String> = points
            .iter()
            .map(|(x, y)| {
                let (px, py) = point(*x, *y, x_max, y_max);
                format!("{px:.1},{py:.1}")
            })
            .collect();
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/><text x="{}" y="{}" font-size="12" fill="{color}">{}</text>"#,
            path.join(" "),
            PAD_L + 10.0,
            PAD_T + 14.0 + 15.0 * i as f64,
            esc(name)
        );
    }
    s.push_str("</svg></figure>");
    s
}

/// How many streams had each time to first delta (the report's log-spaced
/// buckets).
fn ttfd_histogram(counts: &[(f64, u64)]) -> String {
    if counts.is_empty() {
        return String::new();
    }
    let buckets = counts.len();
    let y_max = nice(counts.iter().map(|c| c.1).max().unwrap_or(0) as f64);
    let ticks: Vec<(f64, String)> = (0..buckets)
        .step_by(6)
        .map(|i| (i as f64 + 0.5, format!("{:.2}", counts[i].0)))
        .collect();
    let mut s = frame(
        "Time to first delta",
        "ms (log scale)",
        "streams",
        y_max,
        &ticks,
        buckets as f64,
    );
    let pw = W - PAD_L - PAD_R;
    for (i, (at, c)) in counts.iter().enumerate() {
        let (x, y) = point(i as f64 + 0.05, *c as f64, buckets as f64, y_max);
        let (_, y0) = point(0.0, 0.0, buckets as f64, y_max);
        let _ = write!(
            s,
            r##"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>from {at:.3} ms: {c}</title></rect>"##,
            pw / buckets as f64 * 0.9,
            (y0 - y).max(0.0),
            COLORS[1]
        );
    }
    s.push_str("</svg></figure>");
    s
}

/// Gap p50 and p99 by the later delta's position, as paired bars.
fn gaps_by_position(rows: &[crate::report::PositionGap]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let n = rows.len() as f64;
    let y_max = nice(rows.iter().map(|r| r.p99).fold(0.0, f64::max));
    let label = |r: &crate::report::PositionGap| match r.to {
        Some(to) if to == r.from => format!("{}", r.from),
        Some(to) => format!("{}–{to}", r.from),
        None => format!("{}+", r.from),
    };
    let ticks: Vec<(f64, String)> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (i as f64 + 0.5, label(r)))
        .collect();
    let mut s = frame(
        "Gap by delta position (p50, p99)",
        "position of the later delta in its stream",
        "ms",
        y_max,
        &ticks,
        n,
    );
    let pw = W - PAD_L - PAD_R;
    let (_, y0) = point(0.0, 0.0, n, y_max);
    for (i, r) in rows.iter().enumerate() {
        for (k, (name, v)) in [("p50", r.p50), ("p99", r.p99)].into_iter().enumerate() {
            let (x, y) = point(i as f64 + 0.1 + 0.4 * k as f64, v, n, y_max);
            let _ = write!(
                s,
                r##"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{} {name}: {v:.3} ms (n={})</title></rect>"##,
                pw / n * 0.38,
                (y0 - y).max(0.5),
                COLORS[k],
                esc(&label(r)),
                r.count
            );
        }
    }
    s.push_str("</svg></figure>");
    s
}

/// The page.
pub fn page(report: &Report) -> String {
    let mut s = String::from(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>proteus-load report</title>
<style>body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#1f2937}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{padding:.2em .7em;border-bottom:1px solid #eee;text-align:right}
th:first-child,td:first-child{text-align:left}figure{margin:1em 0}figcaption{font-weight:600;margin-bottom:.3em}
.ok{color:#15803d}.bad{color:#b91c1c;font-weight:600}code{background:#f3f4f6;padding:0 .3em}</style></head><body>
"#,
    );
    let c = &report.counters;
    let _ = write!(
        s,
        "<h1>proteus-load: {} against <code>{}</code></h1><p>{:.1} s · {} deltas · <b>{:.0} deltas/s</b> · {} streams completed of {} · missing {} segments ({} characters) · duplicates {} · out of order {} · content violations {} · disconnects {}</p>",
        esc(report.scenario),
        esc(&report.target),
        report.seconds,
        c.deltas,
        c.deltas_per_second,
        c.completed,
        c.started,
        c.missing_segments,
        c.missing_chars,
        c.duplicates,
        c.out_of_order,
        c.content_violations,
        c.disconnects
    );
    if !report.gates.is_empty() {
        s.push_str("<table><tr><th>gate</th><th>actual</th><th>verdict</th></tr>");
        for g in &report.gates {
            let actual = g.actual.map_or_else(|| "null".into(), |a| a.to_string());
            let _ = write!(
                s,
                r#"<tr><td><code>{}</code></td><td>{}</td><td class="{}">{}</td></tr>"#,
                esc(&g.gate),
                esc(&actual),
                if g.holds { "ok" } else { "bad" },
                if g.holds { "holds" } else { "CROSSED" }
            );
        }
        s.push_str("</table>");
    }
    let curves = &report.curves_ms;
    s.push_str(&throughput(&report.per_second.deltas));
    // One panel per series: on a shared axis, one series' long tail
    // flattens the others into the floor.
    for (name, points) in [
        ("ttfd", &curves.ttfd),
        ("gap", &curves.gap),
        ("ack", &curves.ack),
    ] {
        s.push_str(&percentiles(&[(name, points)]));
    }
    s.push_str(&ttfd_histogram(&report.ttfd_histogram_ms));
    s.push_str(&gaps_by_position(&report.gap_by_position_ms));
    let c = &report.counters;
    let _ = write!(
        s,
        "<h2>Streams</h2><p>good {} · SLO attainment <b>{:.2}%</b> · goodput {:.1} streams/s · left out by the window {}</p>",
        c.good_streams,
        c.slo_attainment * 100.0,
        c.goodput,
        c.excluded_streams
    );
    if let Some(r) = &report.stream_rate_per_second {
        let _ = write!(
            s,
            "<p>per-stream delivery rate (deltas/s): p1 {:.0} · p10 {:.0} · p50 {:.0} · p90 {:.0} · max {:.0} (n={})</p>",
            r.p1, r.p10, r.p50, r.p90, r.max, r.count
        );
    }
    if let Some(repeats) = &report.repeats {
        s.push_str("<h2>Over the repeats</h2><table><tr><th>figure</th><th>median</th><th>interval</th><th>confidence</th><th>each repeat</th></tr>");
        for name in crate::repeat::SHOWN {
            if let Some(f) = repeats.get(name) {
                let each: Vec<String> = f.values.iter().map(|v| format!("{v:.3}")).collect();
                let _ = write!(
                    s,
                    "<tr><td>{name}</td><td>{:.3}</td><td>{:.3} – {:.3}</td><td>{:.1}%</td><td>{}</td></tr>",
                    f.median,
                    f.low,
                    f.high,
                    f.confidence * 100.0,
                    each.join(", ")
                );
            }
        }
        s.push_str("</table>");
    }
    s.push_str("<h2>Latency (ms)</h2><table><tr><th>metric</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>");
    for h in Hist::ALL {
        let Some(l) = report.latency_ms.get(h) else {
            continue;
        };
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            h.name(),
            l.count,
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max
        );
    }
    s.push_str("</table>");
    if let Some(cpu) = &report.cpu {
        let secs =
            |v: Option<f64>| v.map_or_else(|| "not measured".into(), |v| format!("{v:.2} s"));
        let _ = write!(
            s,
            "<h2>CPU</h2><p>generator {}, saturated {} of {} s · server {}{}</p>",
            secs(cpu.generator_seconds),
            cpu.generator.saturated_intervals,
            cpu.generator.intervals,
            secs(cpu.server_seconds),
            cpu.deltas_per_server_core
                .filter(|p| *p > 0.0)
                .map_or_else(String::new, |p| format!(
                    " · {p:.0} deltas per server CPU-second"
                )),
        );
    }
    let _ = write!(
        s,
        "<h2>Settings</h2><pre>{}</pre><p><small>proteus-load {} · report version {}</small></p></body></html>",
        esc(&serde_json::to_string_pretty(&relevant_settings(report)).unwrap_or_default()),
        report.tool_version,
        report.version
    );
    s
}

/// A named figure of a sweep step.
type Series<'a> = (&'a str, &'a dyn Fn(&crate::sweep::Step) -> Option<f64>);

/// Lines against the offered rate (log-spaced steps shown evenly), with
/// the knee marked.
fn against_rate(
    title: &str,
    y_label: &str,
    steps: &[crate::sweep::Step],
    knee: Option<f64>,
    series: &[Series<'_>],
) -> String {
    let n = steps.len() as f64;
    let y_max = nice(
        steps
            .iter()
            .flat_map(|st| series.iter().filter_map(|(_, f)| f(st)))
            .fold(0.0, f64::max),
    );
    let ticks: Vec<(f64, String)> = steps
        .iter()
        .enumerate()
        .map(|(i, st)| (i as f64 + 0.5, fmt_num(st.offered_rate)))
        .collect();
    let mut s = frame(title, "offered rate (streams/s)", y_label, y_max, &ticks, n);
    if let Some(i) = knee.and_then(|k| steps.iter().position(|st| st.offered_rate == k)) {
        let (x, y_top) = point(i as f64 + 0.5, y_max, n, y_max);
        let (_, y0) = point(0.0, 0.0, n, y_max);
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{y_top:.1}" y2="{y0:.1}" stroke="#dc2626" stroke-dasharray="5 4"/><text x="{:.1}" y="{:.1}" font-size="12" fill="#dc2626">knee</text>"##,
            x + 4.0,
            y_top + 12.0
        );
    }
    for (k, (name, f)) in series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let points: Vec<String> = steps
            .iter()
            .enumerate()
            .filter_map(|(i, st)| {
                let (x, y) = point(i as f64 + 0.5, f(st)?, n, y_max);
                Some(format!("{x:.1},{y:.1}"))
            })
            .collect();
        let _ = write!(
            s,
            r##"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/><text x="{:.1}" y="{:.1}" font-size="12" fill="{color}">{}</text>"##,
            points.join(" "),
            PAD_L + 8.0,
            PAD_T + 14.0 * (k as f64 + 1.0),
            esc(name)
        );
        for p in &points {
            let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = write!(s, r##"<circle cx="{x}" cy="{y}" r="3" fill="{color}"/>"##);
        }
    }
    s.push_str("</svg></figure>");
    s
}

/// The sweep's page: throughput and latency against the offered rate, the
/// knee marked, a table of every step.
pub fn sweep_page(r: &crate::sweep::SweepReport) -> String {
    let mut s = String::from(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>proteus-load sweep</title>
<style>body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#1f2937}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{padding:.2em .7em;border-bottom:1px solid #eee;text-align:right}
th:first-child,td:first-child{text-align:left}figure{margin:1em 0}figcaption{font-weight:600;margin-bottom:.3em}.bad{color:#b91c1c}</style></head><body>"#,
    );
    let _ = write!(
        s,
        "<h1>proteus-load sweep: {} against <code>{}</code></h1><p>{} rates · knee <b>{}</b> (attainment ≥ {:.2}%, nothing lost)</p>",
        esc(r.scenario),
        esc(&r.target),
        r.steps.len(),
        r.knee
            .map_or_else(|| "none".into(), |k| format!("{}/s", fmt_num(k))),
        r.attainment_target * 100.0
    );
    s.push_str(&against_rate(
        "Throughput against the offered rate",
        "streams/s",
        &r.steps,
        r.knee,
        &[
            ("offered", &|st| Some(st.offered_rate)),
            ("completed", &|st| Some(st.streams_per_second)),
            ("goodput", &|st| Some(st.goodput)),
        ],
    ));
    s.push_str(&against_rate(
        "Time to first delta against the offered rate",
        "ms",
        &r.steps,
        r.knee,
        &[
            ("ttfd p50", &|st| st.ttfd_ms.p50),
            ("ttfd p99", &|st| st.ttfd_ms.p99),
        ],
    ));
    s.push_str(&against_rate(
        "Time per delta (TPOT) against the offered rate",
        "ms",
        &r.steps,
        r.knee,
        &[
            ("tpot p50", &|st| st.tpot_ms.p50),
            ("tpot p99", &|st| st.tpot_ms.p99),
        ],
    ));
    s.push_str("<h2>Steps</h2><table><tr><th>offered/s</th><th>completed/s</th><th>goodput/s</th><th>ttfd p50</th><th>ttfd p99</th><th>tpot p99</th><th>attainment</th><th>missing</th><th>errors</th><th>generator µs/delta</th></tr>");
    let ms = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.2}"));
    for st in &r.steps {
        let _ = write!(
            s,
            r#"<tr class="{}"><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}%</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            if st.good { "" } else { "bad" },
            fmt_num(st.offered_rate),
            st.streams_per_second,
            st.goodput,
            ms(st.ttfd_ms.p50),
            ms(st.ttfd_ms.p99),
            ms(st.tpot_ms.p99),
            st.slo_attainment * 100.0,
            st.missing_segments,
            st.errors,
            st.generator_us_per_delta
                .map_or_else(|| "-".into(), |v| format!("{v:.2}"))
        );
    }
    let _ = write!(
        s,
        "</table><h2>Settings</h2><pre>{}</pre><p><small>proteus-load {} · sweep report version {}</small></p></body></html>",
        esc(&serde_json::to_string_pretty(&r.settings).unwrap_or_default()),
        r.tool_version,
        r.version
    );
    s
}

/// The settings that apply to the report's scenario (a fan-out run does not
/// list `--users` or `--agents`).
fn relevant_settings(report: &Report) -> serde_json::Value {
    let mut v = serde_json::to_value(&report.settings).unwrap_or_default();
    let only_for: &[(&str, &[&str])] = &[
        ("users", &["chat"]),
        ("subscribers", &["fanout", "firehose"]),
        ("connections", &["connect"]),
        ("agents", &["thenvoi"]),
        ("mentions", &["thenvoi"]),
        ("agentsPerRoom", &["thenvoi"]),
        ("claimEvery", &["thenvoi"]),
        ("chunks", &["chat", "fanout", "firehose"]),
        ("chunkDelayMs", &["chat", "fanout"]),
        ("size", &["firehose"]),
    ];
    if let Some(o) = v.as_object_mut() {
        for (key, scenarios) in only_for {
            if !scenarios.contains(&report.scenario) {
                o.remove(*key);
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::metrics::Metrics;
    use crate::report::{Report, Settings};
    use crate::scenario::Plan;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        plan: Plan,
    }

    #[test]
    fn each_latency_series_gets_its_own_panel() {
        let mut m = Metrics::default();
        for i in 1..=200u64 {
            m.record(crate::metrics::Hist::Ttfd, 1_000 + i);
            // ack has a tail a thousand times longer than ttfd's
            m.record(
                crate::metrics::Hist::Ack,
                if i == 200 { 5_000_000 } else { 900 },
            );
        }
        let plan = Flags::parse_from(["proteus-load"]).plan;
        let report = Report::new(&m, 1.0, "t".into(), "chat", Settings::Run(Box::new(plan)));
        let page = super::page(&report);
        assert!(page.contains("ttfd: latency by percentile"), "a ttfd panel");
        assert!(
            page.contains("ack: latency by percentile"),
            "an ack panel of its own"
        );
    }

    #[test]
    fn the_settings_shown_are_the_ones_the_scenario_uses() {
        let plan = Flags::parse_from(["proteus-load"]).plan;
        let report = Report::new(
            &Metrics::default(),
            1.0,
            "t".into(),
            "fanout",
            Settings::Run(Box::new(plan)),
        );
        let v = super::relevant_settings(&report);
        assert!(
            v.get("subscribers").is_some() && v.get("rate").is_some(),
            "{v}"
        );
        for gone in ["users", "connections", "agents", "size"] {
            assert!(
                v.get(gone).is_none(),
                "{gone} does not apply to fanout: {v}"
            );
        }
    }
}
