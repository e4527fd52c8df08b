//! The `proteus-conformance` binary: exit codes, reports, `list`, `validate`.

use std::process::{Command, Output};

use proteus_conformance::schema::SchemaSet;
use proteus_conformance::testing::MockProcess;
use serde_json::Value;

fn runner() -> Command {
    Command::new(env!("CARGO_BIN_EXE_proteus-conformance"))
}

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("proteus-cli-{}-{name}", std::process::id()))
}

#[test]
fn a_passing_run_exits_0_and_writes_valid_json_and_junit() {
    let mock = MockProcess::start(&[]);
    let (json, junit) = (tmp("ok.json"), tmp("ok.xml"));
    let out = runner()
        .args([
            "run", "--target", &mock.url, "--only", "rt.join", "--only", "stream.1", "--json",
        ])
        .arg(&json)
        .arg("--junit")
        .arg(&junit)
        .output()
        .expect("runs");
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stdout));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written")).expect("json");
    if let Err(v) = SchemaSet::embedded().check("report/conformance", &report) {
        panic!("report does not match schemas/report/conformance.json: {v:?}");
    }
    assert_eq!(report["summary"]["fail"], 0);
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    assert!(
        xml.contains("<testsuite name=\"rt.join\"")
            && xml.contains("testcase classname=\"rt.join\" name=\"rt.join.3 [MUST]"),
        "{xml}"
    );
    assert!(!xml.contains("<failure"));
}

#[test]
fn a_must_failure_exits_1_with_requirement_expected_actual_and_reproducer() {
    let mock = MockProcess::start(&["--fault", "drop-delta:2"]);
    let (json, junit, html) = (tmp("fail.json"), tmp("fail.xml"), tmp("fail.html"));
    let out = runner()
        .args([
            "run",
            "--target",
            &mock.url,
            "--only",
            "stream.4",
            "--only",
            "rt.join.1",
            "--json",
        ])
        .arg(&json)
        .arg("--junit")
        .arg(&junit)
        .arg("--report-html")
        .arg(&html)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(code(&out), 1, "{stdout}");
    for needle in [
        "× stream.4",
        "-> R18",
        "Expected:",
        "Actual:",
        "gap",
        "Reproduce:",
        "message:delta",
    ] {
        assert!(
            stdout.contains(needle),
            "output lacks {needle:?}:\n{stdout}"
        );
    }
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("json");
    SchemaSet::embedded()
        .check("report/conformance", &report)
        .expect("valid report");
    assert_eq!(report["exitCode"], 1);
    assert!(
        std::fs::read_to_string(&junit)
            .expect("junit")
            .contains("<failure message=")
    );

    // The HTML page: the verdict, the failure open with its details, the
    // passing case closed, and nothing loaded from elsewhere.
    let page = std::fs::read_to_string(&html).expect("html written");
    for needle in [
        "<span class=\"v-FAILED\">FAILED</span>",
        "<h2>Failures</h2>",
        "<a href=\"#stream.4\"><code>stream.4</code></a>",
        "<details id=\"stream.4\" open><summary><span class=\"s-fail\">FAIL</span> <code>stream.4</code>",
        "<details id=\"rt.join.1\"><summary><span class=\"s-pass\">PASS</span> <code>rt.join.1</code>",
        "<b>Expected</b>",
        "<b>Reproduce</b>",
        "<b>Wire log</b>",
        "message:delta",
    ] {
        assert!(page.contains(needle), "the HTML report lacks {needle:?}");
    }
    assert!(
        !page.contains("<script") && !page.contains("<link") && !page.contains("src="),
        "the HTML report is self-contained"
    );

    // The same failure, listed as known: xfail, exit 0; a signature that does not match stays a failure.
    let known = tmp("known.txt");
    std::fs::write(
        &known,
        "stream.4 gap  # the mock drops delta 2 on purpose\n",
    )
    .expect("write");
    let out = runner()
        .args([
            "run",
            "--target",
            &mock.url,
            "--only",
            "stream.4",
            "--expectations",
        ])
        .arg(&known)
        .output()
        .expect("runs");
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("XFAIL"));
    std::fs::write(&known, "stream.4 duplicate\n").expect("write");
    let out = runner()
        .args([
            "run",
            "--target",
            &mock.url,
            "--only",
            "stream.4",
            "--expectations",
        ])
        .arg(&known)
        .output()
        .expect("runs");
    assert_eq!(
        code(&out),
        1,
        "a different failure than the one expected is a failure"
    );
}

#[test]
fn should_failures_pass_unless_strict_and_xpass_fails_under_strict_expectations() {
    let mock = MockProcess::start(&["--fault", "created-as-200"]);
    let run = |extra: &[&str]| {
        runner()
            .args(["run", "--target", &mock.url, "--only", "chats.2"])
            .args(extra)
            .output()
            .expect("runs")
    };
    assert_eq!(code(&run(&[])), 0, "a SHOULD failure alone passes");
    assert_eq!(code(&run(&["--strict"])), 1, "--strict fails it");
    let known = tmp("xpass.txt");
    std::fs::write(&known, "rt.join.1  # not actually broken\n").expect("write");
    let xpass = runner()
        .args([
            "run",
            "--target",
            &mock.url,
            "--only",
            "rt.join.1",
            "--strict-expectations",
            "--expectations",
        ])
        .arg(&known)
        .output()
        .expect("runs");
    assert_eq!(
        code(&xpass),
        1,
        "an unexpected pass fails under --strict-expectations"
    );
}

#[test]
fn usage_and_profile_errors_exit_2_and_an_unreachable_target_exits_3() {
    let out = runner()
        .args([
            "run",
            "--target",
            "http://127.0.0.1:9",
            "--only",
            "no.such.case",
        ])
        .output()
        .expect("runs");
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no case matches"));
    let out = runner()
        .args(["run", "--target", "http://127.0.0.1:9"])
        .output()
        .expect("runs");
    assert_eq!(code(&out), 3, "{}", String::from_utf8_lossy(&out.stderr));
    let mock = MockProcess::start(&["--no-admin"]);
    let out = runner()
        .args(["run", "--target", &mock.url])
        .output()
        .expect("runs");
    assert_eq!(
        code(&out),
        2,
        "no profile anywhere: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--profile"));
    // A profile file that is not JSON: the same exit code as proteus-load's.
    let bad = tmp("not-json-profile.json");
    std::fs::write(&bad, "{users").expect("write");
    let out = runner()
        .args(["run", "--target", &mock.url, "--profile"])
        .arg(&bad)
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 2, "{err}");
    assert!(err.contains(&bad.display().to_string()), "{err}");
    let out = runner().args(["frobnicate"]).output().expect("runs");
    assert_eq!(code(&out), 2);
}

#[test]
fn a_profile_file_drives_a_target_without_control_plane_and_missing_pieces_are_unsupported() {
    let mock = MockProcess::start(&["--no-admin"]);
    let profile = tmp("profile.json");
    let ada = "user-3a4d80a9c3cca7ffd1bc341f.ede04d00e4b168bed35d9fcde8c2f92f.00d7fecf89201691f94b01e5b294da65.e7ea4c191b2c9a059ce5658deb7349c26a931ed8b7a04bf0";
    std::fs::write(
        &profile,
        serde_json::json!({ "users": [{ "id": "6466ae1b03fab9ddd1d67c40", "token": ada }] })
            .to_string(),
    )
    .expect("write");
    let out = runner()
        .args([
            "run",
            "--target",
            &mock.url,
            "--only",
            "rest.auth",
            "--only",
            "agents.1",
            "--profile",
        ])
        .arg(&profile)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(code(&out), 0, "{stdout}");
    assert!(
        stdout.contains("SKIP") && stdout.contains("the profile has no revokedToken"),
        "{stdout}"
    );
}

#[test]
fn list_prints_every_case_with_level_and_requirement() {
    let out = runner().arg("list").output().expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(code(&out), 0);
    assert!(
        stdout.contains("pagination.7")
            && stdout.contains("MUST")
            && stdout.contains("@page is ignored"),
        "{stdout}"
    );
    let out = runner()
        .args(["list", "--only", "rt.jion"])
        .output()
        .expect("runs");
    assert_eq!(code(&out), 2);
}

#[test]
fn validate_checks_captured_payloads_and_streams() {
    let stream = |name: &str| {
        let doc: Value = serde_json::from_str(
            &std::fs::read_to_string(root().join(format!("fixtures/streams/{name}.json")))
                .expect("fixture"),
        )
        .expect("json");
        let lines: Vec<String> = doc["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| serde_json::json!({ "event": e["event"], "payload": e["data"] }).to_string())
            .collect();
        let path = tmp(&format!("{name}.jsonl"));
        std::fs::write(&path, lines.join("\n")).expect("write");
        path
    };
    let good = runner()
        .arg("validate")
        .arg(stream("single-stream"))
        .arg(root().join("fixtures/valid/rest/create-chat-response.json"))
        .output()
        .expect("runs");
    assert_eq!(code(&good), 0, "{}", String::from_utf8_lossy(&good.stdout));
    let bad = runner()
        .arg("validate")
        .arg(stream("reordered"))
        .output()
        .expect("runs");
    assert_eq!(code(&bad), 1);
    assert!(String::from_utf8_lossy(&bad.stdout).contains("out-of-order"));
    // The repository's recorded streams are read as they are.
    let recorded = runner()
        .arg("validate")
        .arg(root().join("fixtures/streams/single-stream.json"))
        .output()
        .expect("runs");
    assert_eq!(
        code(&recorded),
        0,
        "{}",
        String::from_utf8_lossy(&recorded.stdout)
    );
    let recorded_bad = runner()
        .arg("validate")
        .arg(root().join("fixtures/streams/reordered.json"))
        .output()
        .expect("runs");
    assert_eq!(code(&recorded_bad), 1);
    assert!(String::from_utf8_lossy(&recorded_bad.stdout).contains("out-of-order"));
    let plugin = runner()
        .arg("validate")
        .arg(root().join("fixtures/valid/plugin-events/plugin-installed.json"))
        .output()
        .expect("runs");
    assert_eq!(
        code(&plugin),
        0,
        "{}",
        String::from_utf8_lossy(&plugin.stdout)
    );
}

#[test]
fn an_expectations_file_naming_no_case_is_a_usage_error_with_its_line() {
    let file = tmp("typo-expectations.txt");
    std::fs::write(&file, "rt.join.1  # fine\nrt.jion.2  # a typo\n").expect("write");
    // The file is read before the target: no server is needed to see it.
    let o = runner()
        .args(["run", "--target", "http://127.0.0.1:9", "--expectations"])
        .arg(&file)
        .output()
        .expect("runs");
    assert_eq!(code(&o), 2, "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("line 2") && err.contains("rt.jion.2") && err.contains("rt.join.1"),
        "names the line, the id and similar ids: {err}"
    );
}

#[test]
fn a_target_that_accepts_and_never_answers_is_exit_3_at_once() {
    // Accepts connections (the kernel's backlog does) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", silent.local_addr().expect("addr"));
    let profile = tmp("silent-profile.json");
    std::fs::write(
        &profile,
        r#"{"users": [{"id": "6466ae1b03fab9ddd1d67c40", "token": "user-x"}]}"#,
    )
    .expect("write");
    let started = std::time::Instant::now();
    let out = runner()
        .args(["run", "--target", &url, "--timeout-ms", "500", "--profile"])
        .arg(&profile)
        .output()
        .expect("runs");
    assert_eq!(code(&out), 3, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("answered nothing within 500 ms"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "it gave up early"
    );
    drop(silent);
}
