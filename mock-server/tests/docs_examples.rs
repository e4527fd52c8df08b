//! Every example in README.md and docs/*.md runs as written.
//!
//! Each fenced `sh`, `bash`, `js` or `python` block is executed, in order,
//! against a mock of this build started for that document on a free port;
//! a block that fails (non-zero exit, or more than [`LIMIT`]) fails the
//! test with its file and line. What the harness adapts, and nothing else:
//!
//! - `127.0.0.1:4000` (and `localhost:4000`) become the mock's address;
//! - `cargo run --release -p proteus-conformance --` and `… proteus-load --`,
//!   and a bare `proteus-conformance` / `proteus-load` at the start of a
//!   line, run this build's binaries;
//! - a block that starts the mock (`cargo run --release -p proteus-mock
//!   [-- ARGS]`) restarts the harness's mock with those ARGS on the same
//!   port (it is the reader's "second terminal");
//! - `curl` fails on an HTTP error answer (`--fail-with-body`), so an
//!   example that gets a 4xx or 5xx fails;
//! - `export NAME=…` lines of earlier blocks are set for later ones (each
//!   block is its own shell, a reader's terminal is one);
//! - a block followed by a ```` ```text output ```` block must print each of
//!   its non-empty lines.
//!
//! A block that cannot run here says so in its info string: ```` ```sh
//! illustration ```` (with the reason beside it in the text). Programs a
//! block leaves running in the background are stopped at the end of the
//! document.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest a block may take.
const LIMIT: Duration = Duration::from_secs(120);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// This build's binaries (the workspace's test build makes all three).
fn bin(name: &str) -> PathBuf {
    let mock = PathBuf::from(env!("CARGO_BIN_EXE_proteus-mock"));
    mock.with_file_name(name)
}

#[derive(Debug, Clone)]
struct Block {
    file: String,
    line: usize,
    lang: String,
    words: Vec<String>,
    code: String,
    /// The `text output` block right after it, if any.
    output: Option<String>,
}

/// The fenced blocks of a markdown text.
fn blocks(file: &str, text: &str) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    let mut last_end = 0;
    while let Some((i, line)) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let mut words = info.split_whitespace().map(str::to_string);
        let lang = words.next().unwrap_or_default();
        let words: Vec<String> = words.collect();
        let mut code = String::new();
        let mut end = i;
        for (j, l) in lines.by_ref() {
            end = j;
            if l.starts_with("```") {
                break;
            }
            code.push_str(l);
            code.push('\n');
        }
        let adjacent = out.last().is_some_and(|_| {
            text.lines()
                .skip(last_end + 1)
                .take(i - last_end - 1)
                .all(|l| l.trim().is_empty())
        });
        if lang == "text" && words.iter().any(|w| w == "output") && adjacent {
            if let Some(prev) = out.last_mut() {
                prev.output = Some(code);
            }
        } else {
            out.push(Block {
                file: file.to_string(),
                line: i + 1,
                lang,
                words,
                code,
                output: None,
            });
        }
        last_end = end;
    }
    out.retain(|b| ["sh", "bash", "js", "python"].contains(&b.lang.as_str()));
    out
}

/// A mock of this build on a free port, stopped when dropped.
struct Mock {
    child: Child,
    addr: String,
}

impl Mock {
    /// A mock on `port` (0: any free one).
    fn start(args: &[String], port: u16) -> Mock {
        let mut child = Command::new(bin("proteus-mock"))
            .args(["--port", &port.to_string(), "--json"])
            .args(args)
            .current_dir(root())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the mock starts");
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        out.read_line(&mut line).expect("the start-up line");
        // Keep reading: a closed pipe would fail the mock's next write.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let banner: serde_json::Value = serde_json::from_str(&line).expect("JSON banner");
        let url = banner["url"].as_str().expect("url");
        Mock {
            child,
            addr: url.trim_start_matches("http://").to_string(),
        }
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cargo run --release -p proteus-mock [-- ARGS]`: the mock's arguments.
fn starts_mock(code: &str) -> Option<Vec<String>> {
    let line = code
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))?;
    let rest = line.strip_prefix("cargo run --release -p proteus-mock")?;
    let rest = rest.split('#').next().unwrap_or_default().trim();
    let args = rest.strip_prefix("--").unwrap_or(rest);
    Some(args.split_whitespace().map(str::to_string).collect())
}

/// The block as this harness runs it.
fn adapt(code: &str, addr: &str) -> String {
    let conformance = bin("proteus-conformance").display().to_string();
    let load = bin("proteus-load").display().to_string();
    let mut out = String::new();
    for line in code.lines() {
        let mut l = line
            .replace("127.0.0.1:4000", addr)
            .replace("localhost:4000", addr)
            .replace(
                "cargo run --release -p proteus-conformance --",
                &conformance,
            )
            .replace("cargo run --release -p proteus-load --", &load);
        for (name, path) in [
            ("proteus-conformance", &conformance),
            ("proteus-load", &load),
        ] {
            if let Some(rest) = l.strip_prefix(&format!("{name} ")) {
                l = format!("{path} {rest}");
            }
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// Runs one block; `Err` says why it failed.
fn run(block: &Block, addr: &str, exports: &str, background: &mut Vec<i32>) -> Result<(), String> {
    let code = adapt(&block.code, addr);
    let mut command = match block.lang.as_str() {
        "js" => {
            let file = root().join(format!("interop/.docs-example-{}.mjs", std::process::id()));
            std::fs::write(&file, &code).map_err(|e| e.to_string())?;
            let mut c = Command::new("node");
            c.arg(&file);
            c
        }
        "python" => {
            let mut c = Command::new("python3");
            c.args(["-c", &code]);
            c
        }
        _ => {
            let mut c = Command::new("bash");
            // An HTTP error answer fails the block (curl -s alone exits 0).
            let strict = "curl() { command curl --fail-with-body \"$@\"; }";
            c.args([
                "-euo",
                "pipefail",
                "-c",
                &format!("{strict}\n{exports}\n{code}"),
            ]);
            c
        }
    };
    // Output goes to files, not pipes: a program the block leaves running
    // in the background (`… &`) would hold a pipe open past the block's end.
    let dir = std::env::temp_dir().join(format!("docs-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
    let file = |p: &PathBuf| std::fs::File::create(p).map_err(|e| e.to_string());
    command
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(file(&out_path)?)
        .stderr(file(&err_path)?)
        .process_group(0);
    let mut child = command.spawn().map_err(|e| format!("cannot start: {e}"))?;
    background.push(child.id() as i32);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            return Err(format!("still running after {} s", LIMIT.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let tail = |s: &str| {
        let cut = s.len().saturating_sub(1500);
        let cut = (cut..s.len())
            .find(|i| s.is_char_boundary(*i))
            .unwrap_or(s.len());
        s[cut..].to_string()
    };
    if !status.success() {
        return Err(format!(
            "{status}\n--- stdout (end)\n{}\n--- stderr (end)\n{}",
            tail(&stdout),
            tail(&stderr)
        ));
    }
    if let Some(expected) = &block.output {
        for want in expected.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let want = want.replace("127.0.0.1:4000", addr);
            if !stdout.contains(&want) {
                return Err(format!(
                    "the output lacks {want:?}\n--- stdout (end)\n{}",
                    tail(&stdout)
                ));
            }
        }
    }
    Ok(())
}

/// Stops what blocks left running: every process still in one of their
/// process groups, found by reading `/proc` (never a bare `kill -PGID`: a
/// group id of a block that ended could name nobody, or be reused).
fn stop_groups(groups: &[i32]) {
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command name (in parentheses): state ppid pgrp ...
        let Some(after) = stat.rsplit_once(')').map(|(_, a)| a) else {
            continue;
        };
        let pgrp = after
            .split_whitespace()
            .nth(2)
            .and_then(|g| g.parse::<i32>().ok());
        if let Some(g) = pgrp
            && g > 1
            && pid != me
            && groups.contains(&g)
        {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }
}

/// Runs every block of one document against a fresh mock.
fn run_document(relative: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root().join(relative)).expect("the document");
    let mut mock = Mock::start(&[], 0);
    let mut exports = String::new();
    let mut background = Vec::new();
    let mut failures = Vec::new();
    for block in blocks(relative, &text) {
        if block.words.iter().any(|w| w == "illustration") {
            continue;
        }
        if let Some(args) = starts_mock(&block.code) {
            // The same port, as for a reader: what runs already points at it.
            let port = mock
                .addr
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            drop(mock);
            mock = Mock::start(&args, port);
            continue;
        }
        match run(&block, &mock.addr, &exports, &mut background) {
            Ok(()) => {
                for l in block.code.lines().filter(|l| l.starts_with("export ")) {
                    exports.push_str(l);
                    exports.push('\n');
                }
            }
            Err(why) => failures.push(format!("{}:{}: {why}", block.file, block.line)),
        }
    }
    stop_groups(&background);
    let _ = std::fs::remove_file(
        root().join(format!("interop/.docs-example-{}.mjs", std::process::id())),
    );
    failures
}

#[test]
fn every_example_in_the_readme_and_the_docs_runs() {
    assert!(
        root()
            .join("interop/node_modules/socket.io-client")
            .is_dir(),
        "interop/node_modules is missing: run the README's test command"
    );
    let mut docs = vec!["README.md".to_string()];
    let mut others: Vec<String> = std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .filter_map(|e| e.ok())
        .map(|e| format!("docs/{}", e.file_name().to_string_lossy()))
        .filter(|n| n.ends_with(".md"))
        .collect();
    others.sort();
    docs.extend(others);
    let failures: Vec<String> = docs.iter().flat_map(|d| run_document(d)).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_harness_reads_blocks_outputs_and_mock_starts() {
    let text = "x\n```sh\necho hi\n```\n\n```text output\nhi\n```\n```sh illustration\nrm -rf /\n```\n```json\n{}\n```\n";
    let b = blocks("t.md", text);
    assert_eq!(b.len(), 2);
    assert_eq!(b[0].line, 2);
    assert_eq!(b[0].output.as_deref(), Some("hi\n"));
    assert!(b[1].words.contains(&"illustration".to_string()));
    assert_eq!(
        starts_mock("cargo run --release -p proteus-mock -- --plugin-url http://x/webhook\n"),
        Some(vec![
            "--plugin-url".to_string(),
            "http://x/webhook".to_string()
        ])
    );
    assert_eq!(
        starts_mock("cargo run --release -p proteus-mock\n"),
        Some(vec![])
    );
    assert_eq!(starts_mock("curl x\n"), None);
    let adapted = adapt(
        "proteus-load run --target http://127.0.0.1:4000\n",
        "127.0.0.1:5555",
    );
    assert!(adapted.contains("127.0.0.1:5555") && adapted.contains("/proteus-load run"));
    let blk = Block {
        file: "t.md".into(),
        line: 1,
        lang: "sh".into(),
        words: vec![],
        code: "exit 3\n".into(),
        output: None,
    };
    assert!(
        run(&blk, "127.0.0.1:1", "", &mut Vec::new()).is_err(),
        "a failing block fails"
    );
    let shows = Block {
        code: "echo hello\n".into(),
        output: Some("goodbye\n".into()),
        ..blk
    };
    assert!(
        run(&shows, "127.0.0.1:1", "", &mut Vec::new()).is_err(),
        "a changed output fails"
    );
}
