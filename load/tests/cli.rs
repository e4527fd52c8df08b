//! `proteus-load` against a spawned mock, with small bounded numbers: the
//! counters are exact, faults show up as exactly the damage they do, gates
//! exit 99, and bad targets end with exit 3, never a hang. Reports are read
//! by their version 2 (camelCase) keys and checked against the schema.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use proteus_conformance::schema::SchemaSet;
use proteus_conformance::testing::MockProcess;
use serde_json::Value;

fn load(args: &[&str]) -> (Output, Value) {
    let json = std::env::temp_dir().join(format!(
        "proteus-load-{}-{}.json",
        std::process::id(),
        args.join("_").replace(['/', ':', '<', '>', '=', '\''], "")
    ));
    let out = Command::new(env!("CARGO_BIN_EXE_proteus-load"))
        .arg("run")
        .args(args)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("runs");
    let report = std::fs::read_to_string(&json)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    (out, report)
}

/// Asserts the run exited 0, showing what it printed if not.
fn assert_ran(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn counters(r: &Value) -> (u64, u64, u64, u64, u64, u64, u64) {
    let c = &r["counters"];
    let n = |k: &str| c[k].as_f64().unwrap_or(-1.0) as u64;
    (
        n("started"),
        n("completed"),
        n("deltas"),
        n("loss"),
        n("duplicates"),
        n("outOfOrder"),
        n("contentViolations"),
    )
}

const SMALL: &[&str] = &[
    "--users",
    "4",
    "--rate",
    "50",
    "--streams",
    "20",
    "--chunks",
    "10",
    "--duration",
    "5s",
    "--grace",
    "5s",
];

#[test]
fn a_clean_chat_run_counts_exactly_and_its_report_matches_the_schema() {
    let mock = MockProcess::start(&[]);
    let pid = mock.pid().to_string();
    let mut args = vec![
        "--target",
        mock.url.as_str(),
        "--server-pid",
        pid.as_str(),
        "--ensure",
        "loss==0",
        "--ensure",
        "ttfd.p99<2000ms",
    ];
    args.extend(SMALL);
    let (out, report) = load(&args);
    assert_ran(&out);
    SchemaSet::embedded()
        .check("report/load", &report)
        .expect("report matches schemas/report/load.json");
    assert_eq!(counters(&report), (20, 20, 200, 0, 0, 0, 0));
    assert!(report["latencyMs"]["ttfd"]["count"].as_u64() == Some(20));
    // The generator watched its own threads while it ran.
    let watch = &report["cpu"]["generator"];
    assert!(watch["sampledSeconds"].as_u64() >= Some(1), "{watch}");
    let share = watch["busiestThread"]["share"].as_f64();
    assert!(share.is_some_and(|s| (0.0..=1.0).contains(&s)), "{watch}");
    // The server's CPU over the run, and from the clock's start (after
    // the 4 sockets connected and joined): some, and no more than the whole.
    let (whole, measured) = (
        report["cpu"]["serverSeconds"].as_f64(),
        report["cpu"]["serverSecondsMeasured"].as_f64(),
    );
    assert!(
        measured.zip(whole).is_some_and(|(m, w)| m >= 0.0 && m <= w),
        "{}",
        report["cpu"]
    );
    // And the server's threads, with --server-pid: they are the mock's.
    let server = &report["cpu"]["server"];
    assert!(server["sampledSeconds"].as_u64() >= Some(1), "{server}");
    let name = server["busiestThread"]["name"].as_str().unwrap_or_default();
    assert!(
        name.starts_with("proteus-") || name.starts_with("tokio-"),
        "a thread of the mock: {server}"
    );
    // The HTML page: six plots, the numbers, nothing loaded from elsewhere.
    let html = std::env::temp_dir().join(format!("proteus-load-{}.html", std::process::id()));
    let mut args = vec![
        "--target",
        mock.url.as_str(),
        "--html",
        html.to_str().expect("path"),
    ];
    args.extend(SMALL);
    let (out, _) = load(&args);
    assert_eq!(out.status.code(), Some(0));
    let page = std::fs::read_to_string(&html).expect("html written");
    assert_eq!(
        page.matches("<svg").count(),
        6,
        "throughput, a percentile panel each for ttfd, gap and ack, the ttfd histogram, gaps by position"
    );
    for needle in [
        "Deltas received per second",
        "ttfd: latency by percentile",
        "ack: latency by percentile",
        "Time to first delta",
        "Gap by delta position",
        "SLO attainment",
        "200 deltas",
    ] {
        assert!(page.contains(needle), "the page lacks {needle:?}");
    }
    assert!(
        !page.contains("<script") && !page.contains("src="),
        "self-contained"
    );
}

#[test]
fn acks_that_arrive_after_their_reply_are_all_timed() {
    // ack-late: the server sends the reply (one delta and its done) first and
    // the ack 30 ms later; the run must wait for every ack, not end with the
    // last stream.
    let mock = MockProcess::start(&["--fault", "ack-late:30"]);
    let (out, report) = load(&[
        "--target",
        mock.url.as_str(),
        "--users",
        "2",
        "--rate",
        "20",
        "--streams",
        "6",
        "--chunks",
        "1",
        "--duration",
        "5s",
        "--grace",
        "5s",
    ]);
    assert_ran(&out);
    let ack = &report["latencyMs"]["ack"];
    assert_eq!(ack["count"], 6, "every emit's ack timed: {ack}");
    assert!(ack["min"].as_f64() >= Some(30.0), "held 30 ms: {ack}");
    assert_eq!(report["counters"]["errors"], 0, "{}", report["counters"]);
}

#[test]
fn faults_are_counted_exactly_as_the_damage_they_do() {
    for (fault, expect) in [
        ("drop-delta:3", (20, 20, 180, 20, 0, 0, 0)),
        ("duplicate-delta:2", (20, 20, 220, 0, 20, 0, 0)),
        ("reorder-deltas:4", (20, 20, 200, 0, 0, 20, 0)),
    ] {
        let mock = MockProcess::start(&["--fault", fault]);
        // out_of_order: the version 1 name, still accepted with a note.
        let mut args = vec![
            "--target",
            mock.url.as_str(),
            "--ensure",
            "loss==0",
            "--ensure",
            "duplicates==0",
            "--ensure",
            "out_of_order==0",
        ];
        args.extend(SMALL);
        let (out, report) = load(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("note") && stderr.contains("outOfOrder"),
            "{stderr}"
        );
        let out_of_order = report["gates"][2]["actual"].as_f64();
        assert_eq!(
            out_of_order,
            report["counters"]["outOfOrder"].as_f64(),
            "the old name reads the new key"
        );
        let c = counters(&report);
        assert_eq!(
            c, expect,
            "{fault}: (started, completed, deltas, loss, duplicates, out of order, content)"
        );
        assert_eq!(
            out.status.code(),
            Some(99),
            "{fault}: a crossed gate exits 99"
        );
    }
}

/// A `fanout` run of `streams` streams of `chunks` deltas into
/// `subscribers` sockets at `rate` streams/s; asserts it ran (exit 0).
fn fanout(url: &str, subscribers: u32, rate: u32, streams: u32, chunks: u32) -> Value {
    let (subscribers, rate, streams, chunks) = (
        subscribers.to_string(),
        rate.to_string(),
        streams.to_string(),
        chunks.to_string(),
    );
    let (out, report) = load(&[
        "--target",
        url,
        "--scenario",
        "fanout",
        "--subscribers",
        &subscribers,
        "--rate",
        &rate,
        "--streams",
        &streams,
        "--chunks",
        &chunks,
        "--duration",
        "5s",
    ]);
    assert_ran(&out);
    report
}

#[test]
fn fanout_and_connect_scenarios_run_and_count() {
    let mock = MockProcess::start(&[]);
    let report = fanout(&mock.url, 5, 20, 10, 8);
    assert_eq!(
        counters(&report),
        (50, 50, 400, 0, 0, 0, 0),
        "10 streams × 5 subscribers × 8 deltas"
    );
    let (out, report) = load(&[
        "--target",
        &mock.url,
        "--scenario",
        "connect",
        "--connections",
        "30",
        "--rate",
        "100",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(report["latencyMs"]["connect"]["count"], 30);
}

#[test]
fn fanout_times_first_deltas_from_sends_scheduled_after_the_subscribers_joined() {
    // Joining 40 sockets one after another takes at least the sum of their
    // connect latencies. The schedule's clock starts once they are in; a
    // clock started before them (the old code) made the first stream's time
    // to first delta include the whole setup.
    let mock = MockProcess::start(&[]);
    let report = fanout(&mock.url, 40, 4, 2, 2);
    let l = &report["latencyMs"];
    let setup_ms = l["connect"]["count"].as_f64().unwrap_or(0.0)
        * l["connect"]["mean"].as_f64().unwrap_or(0.0);
    let ttfd_max = l["ttfd"]["max"].as_f64().unwrap_or(f64::MAX);
    assert_eq!(l["ttfd"]["count"], 80, "2 streams x 40 subscribers");
    assert!(
        ttfd_max < setup_ms,
        "time to first delta max {ttfd_max} ms includes the subscribers' setup ({setup_ms} ms of connects)"
    );
}

#[test]
fn ramp_up_starts_fewer_streams_on_the_open_schedule() {
    let mock = MockProcess::start(&[]);
    let run = |ramp: &str| {
        let (out, report) = load(&[
            "--target",
            &mock.url,
            "--users",
            "4",
            "--rate",
            "40",
            "--duration",
            "2s",
            "--ramp-up",
            ramp,
            "--chunks",
            "5",
            "--grace",
            "5s",
        ]);
        assert_ran(&out);
        counters(&report).0
    };
    // 40/s for 2 s: 80 streams; ramped over 1 s: 20 during the ramp, 40 after.
    assert_eq!(run("0s"), 80);
    assert_eq!(run("1s"), 60);
}

#[test]
fn a_toml_scenario_file_sets_the_run_and_flags_override_it() {
    let mock = MockProcess::start(&[]);
    let file = std::env::temp_dir().join(format!("proteus-load-{}.toml", std::process::id()));
    std::fs::write(
        &file,
        "scenario = \"fanout\"\nsubscribers = 3\nrate = 20\nstreams = 4\nchunks = 6\nensure = [\"loss==0\"]\n",
    )
    .expect("write");
    let path = file.to_str().expect("path");
    let (out, report) = load(&["--file", path, "--target", &mock.url]);
    assert_ran(&out);
    assert_eq!(report["scenario"], "fanout");
    assert_eq!(
        counters(&report).2,
        3 * 4 * 6,
        "3 subscribers × 4 streams × 6 deltas"
    );
    // A flag wins over the file.
    let (_, report) = load(&["--file", path, "--target", &mock.url, "--subscribers", "2"]);
    assert_eq!(counters(&report).2, 2 * 4 * 6);
    // An unknown key is refused, naming the file.
    std::fs::write(&file, "subscriberz = 3\n").expect("write");
    let (out, _) = load(&["--file", path, "--target", &mock.url]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("subscriberz") && err.contains(path), "{err}");
}

#[test]
fn hlogs_from_two_generators_merge_into_one_report() {
    let mock = MockProcess::start(&[]);
    let dir = std::env::temp_dir();
    let (a, b) = (
        dir.join(format!("proteus-load-a-{}.hlog", std::process::id())),
        dir.join(format!("proteus-load-b-{}.hlog", std::process::id())),
    );
    let mut reports = Vec::new();
    for (file, streams) in [(&a, "6"), (&b, "10")] {
        let (out, report) = load(&[
            "--target",
            &mock.url,
            "--users",
            "2",
            "--rate",
            "50",
            "--streams",
            streams,
            "--chunks",
            "5",
            "--hlog",
            file.to_str().expect("path"),
        ]);
        assert_ran(&out);
        reports.push(report);
    }
    let json = dir.join(format!("proteus-load-merged-{}.json", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_proteus-load"))
        .arg("merge")
        .args([&a, &b])
        .arg("--json")
        .arg(&json)
        .args(["--ensure", "loss==0", "--ensure", "ttfd.p99<0.001ms"])
        .output()
        .expect("runs");
    let merged: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("written")).expect("json");
    SchemaSet::embedded()
        .check("report/load", &merged)
        .expect("the merged report matches schemas/report/load.json");
    assert_eq!(
        counters(&merged),
        (16, 16, 80, 0, 0, 0, 0),
        "6 + 10 streams of 5 deltas"
    );
    let ttfd = |r: &Value| r["latencyMs"]["ttfd"]["count"].as_u64().unwrap_or(0);
    assert_eq!(ttfd(&merged), ttfd(&reports[0]) + ttfd(&reports[1]));
    let max = |r: &Value| r["latencyMs"]["gap"]["max"].as_f64().unwrap_or(0.0);
    assert_eq!(
        max(&merged),
        max(&reports[0]).max(max(&reports[1])),
        "the histograms add up"
    );
    assert_eq!(
        out.status.code(),
        Some(99),
        "a crossed gate on the merge exits 99"
    );
}

/// The mock's `applied` count for its one active fault.
fn applied(url: &str) -> u64 {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let v: Value = rt.block_on(async {
        reqwest::get(format!("{url}/__admin/faults"))
            .await
            .expect("admin")
            .json()
            .await
            .expect("json")
    });
    v["data"][0]["applied"].as_u64().expect("applied")
}

#[test]
fn the_firehose_counts_exactly_and_a_one_in_10000_drop_is_exactly_that_loss() {
    // Short streams keep each delta small (it carries the running content).
    let firehose = |url: &str, subscribers: &str, streams: &str| {
        load(&[
            "--target",
            url,
            "--scenario",
            "firehose",
            "--subscribers",
            subscribers,
            "--streams",
            streams,
            "--chunks",
            "50",
            "--size",
            "4",
            "--rate",
            "0",
            "--grace",
            "20s",
        ])
    };
    let mock = MockProcess::start(&[]);
    let (out, report) = firehose(&mock.url, "3", "40");
    assert_ran(&out);
    SchemaSet::embedded()
        .check("report/load", &report)
        .expect("report matches schemas/report/load.json");
    assert_eq!(
        counters(&report),
        (120, 120, 6_000, 0, 0, 0, 0),
        "40 streams × 50 deltas × 3 subscribers"
    );
    // One delta in 10,000 dropped (seeded) over 100,000 deltas.
    let mock = MockProcess::start(&["--fault", "drop-random:10000:11"]);
    let (_, report) = firehose(&mock.url, "1", "2000");
    let dropped = applied(&mock.url);
    assert!(
        (3..=30).contains(&dropped),
        "about 10 of 100,000: {dropped}"
    );
    assert_eq!(
        counters(&report),
        (2000, 2000, 100_000 - dropped, dropped, 0, 0, 0),
        "the loss is exactly the deltas the mock dropped"
    );
    // Duplicates and swaps, seeded the same way.
    for (fault, which) in [("duplicate-random:1000:3", 4), ("reorder-random:1000:5", 5)] {
        let mock = MockProcess::start(&["--fault", fault]);
        let (_, report) = firehose(&mock.url, "1", "200");
        let n = applied(&mock.url);
        let c = counters(&report);
        let got = if which == 4 { c.4 } else { c.5 };
        assert!(n > 0, "{fault} hit something");
        assert_eq!((got, c.3, c.6), (n, 0, 0), "{fault}: {c:?} for {n} applied");
    }
}

#[test]
fn adjacent_drops_are_one_missing_segment_and_their_characters_are_counted() {
    // Deltas 3 and 4 of every stream dropped (adjacent: one hole) and 9
    // (another): 2 missing segments and 3 × 8 characters per stream.
    let mock = MockProcess::start(&[
        "--fault",
        "drop-delta:3",
        "--fault",
        "drop-delta:4",
        "--fault",
        "drop-delta:9",
    ]);
    let (out, report) = load(&[
        "--target",
        &mock.url,
        "--scenario",
        "firehose",
        "--subscribers",
        "2",
        "--streams",
        "25",
        "--chunks",
        "20",
        "--size",
        "8",
        "--rate",
        "0",
        "--grace",
        "20s",
    ]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
    let c = &report["counters"];
    let streams = 25 * 2;
    assert_eq!(c["deltas"], streams * 17, "{c}");
    assert_eq!(c["missingSegments"], streams * 2, "{c}");
    assert_eq!(
        c["loss"], c["missingSegments"],
        "loss is missingSegments' first name"
    );
    assert_eq!(c["missingChars"], streams * 3 * 8, "{c}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "missing {} segments ({} characters)",
            streams * 2,
            streams * 24
        )),
        "the summary names both: {stdout}"
    );
}

/// A chat run of `users` users, 10 streams/s for `secs`, 10 deltas each
/// `delay` ms apart; extra flags after.
fn paced(url: &str, delay: &str, secs: &str, extra: &[&str]) -> (Output, Value) {
    let mut args = vec![
        "--target",
        url,
        "--users",
        "2",
        "--rate",
        "10",
        "--duration",
        secs,
        "--chunks",
        "10",
        "--chunk-delay-ms",
        delay,
        "--grace",
        "10s",
    ];
    args.extend(extra);
    load(&args)
}

#[test]
fn tpot_is_the_paced_gap_and_ttsd_is_one_gap_after_ttfd() {
    let mock = MockProcess::start(&[]);
    let (out, report) = paced(&mock.url, "20", "1s", &[]);
    assert_ran(&out);
    SchemaSet::embedded()
        .check("report/load", &report)
        .expect("report matches schemas/report/load.json");
    let l = &report["latencyMs"];
    let ms = |k: &str, s: &str| l[k][s].as_f64().unwrap_or(f64::NAN);
    assert!(
        (ms("tpot", "p50") - 20.0).abs() <= 1.0,
        "tpot {}",
        l["tpot"]
    );
    assert_eq!(
        l["tpot"]["count"], report["counters"]["completed"],
        "one tpot per stream"
    );
    // Per stream, the second delta comes one paced gap after the first;
    // percentiles of two distributions do not subtract, their minimums bound.
    assert_eq!(
        l["ttsd"]["count"], l["ttfd"]["count"],
        "one ttsd per stream"
    );
    assert!(
        ms("ttsd", "min") >= ms("ttfd", "min") + 19.0,
        "ttsd {} ttfd {}",
        l["ttsd"],
        l["ttfd"]
    );
    let rate = report["streamRatePerSecond"]["p50"].as_f64().unwrap_or(0.0);
    assert!(
        (45.0..=55.0).contains(&rate),
        "about 50 deltas/s per stream: {rate}"
    );
    let positions: Vec<(u64, Option<u64>)> = report["gapByPositionMs"]
        .as_array()
        .expect("by position")
        .iter()
        .map(|p| (p["from"].as_u64().unwrap_or(0), p["to"].as_u64()))
        .collect();
    assert_eq!(
        positions,
        [(2, Some(2)), (3, Some(4)), (5, Some(8)), (9, Some(16))]
    );
    for p in report["gapByPositionMs"].as_array().into_iter().flatten() {
        let p50 = p["p50"].as_f64().unwrap_or(0.0);
        assert!(
            (p50 - 20.0).abs() <= 2.0,
            "every position paced at 20 ms: {p}"
        );
    }
}

#[test]
fn slo_attainment_counts_lost_and_slow_streams_as_bad() {
    let attainment = |r: &Value| r["counters"]["sloAttainment"].as_f64().unwrap_or(-1.0);
    let mock = MockProcess::start(&[]);
    let (out, clean) = paced(
        &mock.url,
        "0",
        "1s",
        &["--slo", "ttfd<5s", "--slo", "tpot<1s"],
    );
    assert_ran(&out);
    assert_eq!(attainment(&clean), 1.0, "{}", clean["counters"]);
    assert_eq!(
        clean["counters"]["goodStreams"],
        clean["counters"]["started"]
    );
    assert_eq!(
        clean["settings"]["slo"],
        serde_json::json!(["ttfd<5s", "tpot<1s"])
    );
    // Every stream loses a delta: none is good, whatever its timing.
    let mock = MockProcess::start(&["--fault", "drop-delta:3"]);
    let (out, lossy) = paced(&mock.url, "0", "1s", &["--ensure", "sloAttainment>=0.99"]);
    assert_eq!(attainment(&lossy), 0.0, "{}", lossy["counters"]);
    assert_eq!(
        out.status.code(),
        Some(99),
        "the attainment gate is crossed"
    );
    // Slow first deltas: bad under a tight ttfd objective, good under a loose one.
    let mock = MockProcess::start(&["--fault", "delay-first-delta:150"]);
    let (_, tight) = paced(&mock.url, "0", "1s", &["--slo", "ttfd<100ms"]);
    assert_eq!(attainment(&tight), 0.0, "{}", tight["counters"]);
    let (_, loose) = paced(&mock.url, "0", "1s", &["--slo", "ttfd<1s"]);
    assert_eq!(attainment(&loose), 1.0, "{}", loose["counters"]);
    let goodput = loose["counters"]["goodput"].as_f64().unwrap_or(0.0);
    assert!(goodput > 0.0, "{}", loose["counters"]);
}

#[test]
fn warmup_leaves_the_first_streams_out_of_the_statistics() {
    let mock = MockProcess::start(&[]);
    let (out, report) = paced(&mock.url, "0", "2s", &["--warmup", "1s"]);
    assert_ran(&out);
    let c = &report["counters"];
    let excluded = c["excludedStreams"].as_u64().unwrap_or(0);
    assert!(
        (7..=13).contains(&excluded),
        "about the first 10 of 20: {c}"
    );
    let counted = c["started"].as_u64().unwrap_or(0) - excluded;
    assert_eq!(
        report["latencyMs"]["ttfd"]["count"], counted,
        "{}",
        report["latencyMs"]["ttfd"]
    );
    assert_eq!(c["goodStreams"], counted, "{c}");
    assert_eq!(report["settings"]["warmupS"], 1.0);
}

#[test]
fn four_workers_with_a_shared_start_merge_into_one_run() {
    let mock = MockProcess::start(&[]);
    let dir = std::env::temp_dir().join(format!("proteus-workers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let start_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
        + 4.0;
    let workers: Vec<_> = (0..4)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_proteus-load"))
                .args(["run", "--target", &mock.url, "--users", "8", "--rate", "40"])
                .args(["--duration", "2s", "--chunks", "5", "--grace", "10s"])
                .args(["--workers", "4", "--worker-index", &i.to_string()])
                .args(["--start-at", &format!("{start_at:.3}")])
                .arg("--hlog")
                .arg(dir.join(format!("w{i}.hlog")))
                .arg("--json")
                .arg(dir.join(format!("w{i}.json")))
                .spawn()
                .expect("a worker starts")
        })
        .collect();
    for mut w in workers {
        assert!(w.wait().expect("worker").success(), "a worker failed");
    }
    let parts: Vec<Value> = (0..4)
        .map(|i| {
            let text = std::fs::read_to_string(dir.join(format!("w{i}.json"))).expect("report");
            serde_json::from_str(&text).expect("json")
        })
        .collect();
    for p in &parts {
        assert_eq!(
            (
                p["settings"]["users"].as_u64(),
                p["settings"]["rate"].as_f64()
            ),
            (Some(2), Some(10.0))
        );
    }
    let merged_json = dir.join("merged.json");
    let out = Command::new(env!("CARGO_BIN_EXE_proteus-load"))
        .arg("merge")
        .args((0..4).map(|i| dir.join(format!("w{i}.hlog"))))
        .args(["--ensure", "sloAttainment>=0.99", "--json"])
        .arg(&merged_json)
        .output()
        .expect("merge runs");
    assert_ran(&out);
    let merged: Value =
        serde_json::from_str(&std::fs::read_to_string(&merged_json).expect("merged"))
            .expect("json");
    let sum = |k: &str| {
        parts
            .iter()
            .map(|p| p["counters"][k].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    for k in [
        "started",
        "completed",
        "deltas",
        "goodStreams",
        "missingSegments",
    ] {
        assert_eq!(
            merged["counters"][k].as_u64(),
            Some(sum(k)),
            "{k}: merged = sum of workers"
        );
    }
    assert_eq!(sum("started"), 80, "2 s at 10/s on each of 4 workers");
    assert_eq!(merged["counters"]["sloAttainment"], 1.0);
    for h in ["ttfd", "gap", "tpot", "stream"] {
        let of = |p: &Value, s: &str| p["latencyMs"][h][s].as_f64().unwrap_or(f64::NAN);
        let count: u64 = parts
            .iter()
            .map(|p| p["latencyMs"][h]["count"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(
            merged["latencyMs"][h]["count"].as_u64(),
            Some(count),
            "{h}: every sample once"
        );
        let min = parts
            .iter()
            .map(|p| of(p, "min"))
            .fold(f64::INFINITY, f64::min);
        let max = parts.iter().map(|p| of(p, "max")).fold(0.0, f64::max);
        assert_eq!(
            (of(&merged, "min"), of(&merged, "max")),
            (min, max),
            "{h}: the union's extremes"
        );
        let p50s: Vec<f64> = parts.iter().map(|p| of(p, "p50")).collect();
        let (lo, hi) = (
            p50s.iter().cloned().fold(f64::INFINITY, f64::min),
            p50s.iter().cloned().fold(0.0, f64::max),
        );
        assert!(
            (lo..=hi).contains(&of(&merged, "p50")),
            "{h}: the union's median lies among the workers'"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_targets_and_bad_usage_end_clearly_and_quickly() {
    let started = Instant::now();
    let (out, _) = load(&["--target", "http://127.0.0.1:9"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "refused connection: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A server that accepts and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let profile =
        std::env::temp_dir().join(format!("proteus-load-profile-{}.json", std::process::id()));
    std::fs::write(&profile, r#"{"users": [{"id": "6466ae1b03fab9ddd1d67c40", "token": "user-3a4d80a9c3cca7ffd1bc341f.ede04d00e4b168bed35d9fcde8c2f92f.00d7fecf89201691f94b01e5b294da65.e7ea4c191b2c9a059ce5658deb7349c26a931ed8b7a04bf0"}], "agents": {"streaming": "6819a0e484df0fc342cea506"}}"#).expect("write");
    let (out, _) = load(&[
        "--target",
        &url,
        "--profile",
        profile.to_str().expect("path"),
        "--scenario",
        "connect",
        "--connections",
        "1",
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "a stalled server: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(listener);
    // A refused token.
    let mock = MockProcess::start(&[]);
    let bad = std::env::temp_dir().join(format!("proteus-load-bad-{}.json", std::process::id()));
    std::fs::write(&bad, r#"{"users": [{"id": "6466ae1b03fab9ddd1d67c40", "token": "user-000000000000000000000000.00000000000000000000000000000000.00000000000000000000000000000000.000000000000000000000000000000000000000000000000"}], "agents": {"streaming": "6819a0e484df0fc342cea506"}}"#).expect("write");
    let (out, _) = load(&[
        "--target",
        &mock.url,
        "--profile",
        bad.to_str().expect("path"),
        "--streams",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refused"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (out, _) = load(&["--target", &mock.url, "--ensure", "ttfd.p98<1"]);
    assert_eq!(out.status.code(), Some(2));
    // A rate the scenario cannot run, named with what it can.
    let (out, _) = load(&["--target", &mock.url, "--rate", "0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--rate") && err.contains("positive number of streams"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "no hang: {:?}",
        started.elapsed()
    );
}

#[test]
fn profile_errors_exit_2_and_an_unreachable_profile_endpoint_exits_3_as_in_the_runner() {
    // No /__admin/profile and no --profile: the user must give one.
    let mock = MockProcess::start(&["--no-admin"]);
    let (out, _) = load(&["--target", &mock.url, "--streams", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--profile FILE"), "{err}");
    // A profile file that is not JSON, or lists no users.
    for (name, text) in [("not-json", "{users"), ("no-users", r#"{"users": []}"#)] {
        let path =
            std::env::temp_dir().join(format!("proteus-load-{name}-{}.json", std::process::id()));
        std::fs::write(&path, text).expect("write");
        let shown = path.to_str().expect("path");
        let (out, _) = load(&["--target", &mock.url, "--profile", shown]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains(shown),
            "{name}: the message names the file: {err}"
        );
    }
    // Nothing listening where the profile is fetched.
    let (out, _) = load(&["--target", "http://127.0.0.1:9", "--streams", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("unreachable"), "{err}");
}

#[test]
fn a_sweep_finds_the_knee_a_load_dependent_delay_makes() {
    // Each first delta waits 10 ms per other reply in flight: about 1 at
    // 5/s, 4 at 20/s, 16 and growing at 80/s (200 ms streams).
    let mock = MockProcess::start(&["--fault", "slow-under-load:10"]);
    let dir = std::env::temp_dir().join(format!("proteus-sweep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (json, html) = (dir.join("sweep.json"), dir.join("sweep.html"));
    let out = Command::new(env!("CARGO_BIN_EXE_proteus-load"))
        .args([
            "sweep", "--target", &mock.url, "--from", "5", "--to", "80", "--steps", "3",
        ])
        .args([
            "--duration",
            "2s",
            "--users",
            "10",
            "--chunks",
            "10",
            "--chunk-delay-ms",
            "20",
        ])
        .args(["--slo", "ttfd<150ms", "--json"])
        .arg(&json)
        .arg("--html")
        .arg(&html)
        .output()
        .expect("sweep runs");
    assert_ran(&out);
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("parses");
    SchemaSet::embedded()
        .check("report/sweep", &report)
        .expect("matches schemas/report/sweep.json");
    let rates: Vec<f64> = report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["offeredRate"].as_f64().unwrap_or(0.0))
        .collect();
    assert_eq!(rates, [5.0, 20.0, 80.0]);
    assert_eq!(
        report["knee"],
        20.0,
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(report["steps"][2]["good"], false);
    assert!(
        report["steps"][0]["generatorUsPerDelta"]
            .as_f64()
            .is_some_and(|v| v > 0.0)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("knee: 20/s"), "{stdout}");
    let page = std::fs::read_to_string(&html).expect("html");
    assert_eq!(
        page.matches("<svg").count(),
        3,
        "throughput, ttfd and tpot against the rate"
    );
    assert!(page.contains("knee"), "the knee is marked");
    // Without the fault nothing breaks in this range: no knee below the top.
    let clean = MockProcess::start(&[]);
    let out = Command::new(env!("CARGO_BIN_EXE_proteus-load"))
        .args([
            "sweep", "--target", &clean.url, "--from", "5", "--to", "20", "--double",
        ])
        .args([
            "--duration",
            "1s",
            "--users",
            "4",
            "--chunks",
            "5",
            "--slo",
            "ttfd<150ms",
        ])
        .output()
        .expect("sweep runs");
    assert_ran(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("knee: 20/s"),
        "doubling 5, 10, 20 all hold: {stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn repeats_report_every_figure_as_a_median_with_its_interval_and_gates_read_it() {
    let mock = MockProcess::start(&[]);
    let (out, report) = paced(
        &mock.url,
        "10",
        "1s",
        &[
            "--repeat",
            "3",
            "--ensure",
            "tpot.p50<15ms",
            "--ensure",
            "tpot.p50>5ms",
        ],
    );
    assert_ran(&out);
    SchemaSet::embedded()
        .check("report/load", &report)
        .expect("report matches schemas/report/load.json");
    let tpot = &report["repeats"]["tpot.p50"];
    let values: Vec<f64> = tpot["values"]
        .as_array()
        .expect("values")
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    assert_eq!(values.len(), 3, "{tpot}");
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    assert_eq!(tpot["median"].as_f64(), Some(sorted[1]), "{tpot}");
    assert_eq!(
        (tpot["low"].as_f64(), tpot["high"].as_f64()),
        (Some(sorted[0]), Some(sorted[2]))
    );
    assert_eq!(
        tpot["confidence"].as_f64(),
        Some(0.75),
        "3 repeats reach 1 - 2/8"
    );
    assert_eq!(
        report["gates"][0]["actual"], tpot["median"],
        "gates read the median"
    );
    assert_eq!(
        report["repeats"]["started"]["median"], 10.0,
        "{}",
        report["repeats"]["started"]
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("over 3 repeats"), "{stdout}");
}

/// A small `thenvoi` run: 20 agents in 2 rooms of 10, 40 messages each
/// mentioning 3 agents of one room, one in 10 claimed.
fn thenvoi(url: &str) -> (Output, Value) {
    load(&[
        "--target",
        url,
        "--scenario",
        "thenvoi",
        "--agents",
        "20",
        "--agents-per-room",
        "10",
        "--mentions",
        "3",
        "--rate",
        "50",
        "--streams",
        "40",
        "--duration",
        "5s",
        "--grace",
        "5s",
    ])
}

#[test]
fn a_thenvoi_run_counts_deliveries_claims_and_misdeliveries_exactly() {
    let mock = MockProcess::start(&[]);
    let (out, report) = thenvoi(&mock.url);
    assert_ran(&out);
    SchemaSet::embedded()
        .check("report/load", &report)
        .expect("report matches schemas/report/load.json");
    let c = &report["counters"];
    let n = |k: &str| c[k].as_u64().unwrap_or(u64::MAX);
    assert_eq!(
        (
            n("started"),
            n("deliveries"),
            n("loss"),
            n("misdeliveries"),
            n("claims"),
            n("errors")
        ),
        (40, 120, 0, 0, 4, 0),
        "40 messages × 3 mentions; messages 0, 10, 20, 30 claimed: {c}"
    );
    assert_eq!(report["latencyMs"]["delivery"]["count"], 120);
    assert_eq!(report["latencyMs"]["claim"]["count"], 4);
    // The summary speaks of messages and deliveries, not streams.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("40 messages sent; 120 deliveries") && !stdout.contains("streams started"),
        "{stdout}"
    );
    // Delivering every message to every agent of the room: each message
    // reaches the 7 agents of its room it does not mention.
    let mock = MockProcess::start(&["--fault", "thenvoi-deliver-unmentioned"]);
    let (out, report) = thenvoi(&mock.url);
    assert_ran(&out);
    let c = &report["counters"];
    assert_eq!(
        (c["deliveries"].as_u64(), c["misdeliveries"].as_u64()),
        (Some(120), Some(280)),
        "{c}"
    );
}
