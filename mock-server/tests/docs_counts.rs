//! Counts in prose stay true: every "<number> cases" and "<number> faults"
//! in README.md, docs/*.md and schemas/README.md must equal the toolkit's
//! real numbers.
//!
//! - cases: the conformance runner's case catalogue,
//!   `proteus_conformance::cases::all()`, which is exactly what
//!   `proteus-conformance list` prints (it lists `cases::all()` when no
//!   `--only` is given; the `schema.*` rows it mentions are added per run and
//!   are not cases of the catalogue);
//! - faults: the lines of `proteus-mock --list-faults`.
//!
//! A count is a number (digits, `1,000` style allowed, markdown emphasis or
//! backticks around it ignored) followed by `cases` or `faults`, optionally
//! with `conformance` or `mock` between them, across a line break too. A
//! count of a subset names its kind and is not read: "12 stream cases",
//! "3 random faults".

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// What a count counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Cases,
    Faults,
}

/// One count found in a text: its 1-based line and the number stated.
#[derive(Debug, PartialEq, Eq)]
struct Count {
    line: usize,
    kind: Kind,
    stated: u64,
}

/// A word with markdown decoration and punctuation trimmed off both ends.
fn bare(word: &str) -> &str {
    word.trim_matches(|c: char| !c.is_ascii_alphanumeric())
}

/// The number a word states, if it is one: digits (`1,000` style allowed),
/// with markdown decoration around them (`**61**`, `` `61` ``, `(61`). A
/// number followed by punctuation ends a phrase ("case 5, faults …") and is
/// not a count.
fn number(word: &str) -> Option<u64> {
    let w = word
        .trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
        .trim_end_matches(['*', '`', '_']);
    let digits_and_commas = w.chars().all(|c| c.is_ascii_digit() || c == ',');
    if !digits_and_commas || !w.starts_with(|c: char| c.is_ascii_digit()) || w.ends_with(',') {
        return None;
    }
    w.replace(',', "").parse().ok()
}

fn kind(word: &str) -> Option<Kind> {
    match bare(word).to_ascii_lowercase().as_str() {
        "cases" => Some(Kind::Cases),
        "faults" => Some(Kind::Faults),
        _ => None,
    }
}

/// Every count in `text`, in order.
fn counts(text: &str) -> Vec<Count> {
    let words: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .flat_map(|(i, line)| line.split_whitespace().map(move |w| (i + 1, w)))
        .collect();
    let mut found = Vec::new();
    for (i, &(line, word)) in words.iter().enumerate() {
        let Some(stated) = number(word) else {
            continue;
        };
        let next = |k: usize| words.get(i + k).map(|&(_, w)| w);
        let kind = match (next(1), next(2)) {
            (Some(w), _) if kind(w).is_some() => kind(w),
            (Some(q), Some(w)) if matches!(bare(q), "conformance" | "mock") => kind(w),
            _ => None,
        };
        if let Some(kind) = kind {
            found.push(Count { line, kind, stated });
        }
    }
    found
}

/// Whether `word` is a fault as `--list-faults` names it: a lowercase name
/// (`omit-done`), then any `:ARG` placeholders in capitals (`drop-delta:N`,
/// `rest-status:CODE:PREFIX`).
fn is_fault_spec(word: &str) -> bool {
    let mut parts = word.split(':');
    let name = parts.next().unwrap_or("");
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && parts.all(|a| {
            !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
}

/// The faults in the output of `proteus-mock --list-faults`. It prints one
/// a line, `NAME[:ARGS]` padded, then the effect (mock-server/src/main.rs);
/// a line counts when it starts, unindented, with a fault name, so a
/// header, a blank line or an indented continuation of an effect is not a
/// fault.
fn faults_in(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter(|l| !l.starts_with(char::is_whitespace))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| is_fault_spec(w))
        .map(str::to_string)
        .collect()
}

fn listed_faults() -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_proteus-mock"))
        .arg("--list-faults")
        .output()
        .expect("proteus-mock --list-faults runs");
    assert!(
        out.status.success(),
        "proteus-mock --list-faults failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let faults = faults_in(&text);
    assert!(
        !faults.is_empty(),
        "no fault recognised in `proteus-mock --list-faults` (has its format changed?):\n{text}"
    );
    faults
}

/// The documents whose prose is checked, relative to the repository root.
fn documents() -> Vec<PathBuf> {
    let root = root();
    let mut docs = vec![
        PathBuf::from("README.md"),
        PathBuf::from("schemas/README.md"),
    ];
    let mut in_docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| Path::new("docs").join(p.file_name().expect("name")))
        .collect();
    in_docs.sort();
    docs.extend(in_docs);
    docs
}

#[test]
fn counts_in_the_docs_match_the_toolkit() {
    let cases = proteus_conformance::cases::all().len() as u64;
    let faults = listed_faults().len() as u64;
    let mut wrong = Vec::new();
    let mut seen = 0;
    for doc in documents() {
        let text = std::fs::read_to_string(root().join(&doc))
            .unwrap_or_else(|e| panic!("{}: {e}", doc.display()));
        for c in counts(&text) {
            seen += 1;
            let (actual, source) = match c.kind {
                Kind::Cases => (cases, "`proteus-conformance list`"),
                Kind::Faults => (faults, "`proteus-mock --list-faults`"),
            };
            if c.stated != actual {
                let noun = if c.kind == Kind::Cases {
                    "cases"
                } else {
                    "faults"
                };
                wrong.push(format!(
                    "{}:{}: says {} {noun}, but {source} has {actual}",
                    doc.display(),
                    c.line,
                    c.stated
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "counts in the docs are out of date (fix the number, or drop it):\n{}",
        wrong.join("\n")
    );
    eprintln!("{seen} count(s) checked: {cases} cases, {faults} faults");
}

#[test]
fn the_scanner_finds_counts_however_they_are_written() {
    let text = "Checks it: 61\ncases in rest.*, plus **42** faults\n\
                and `1,000` conformance cases; 12 stream cases, 3 random faults,\n\
                7 mock faults. Not counts: case 5, faults: 3, 4 cases-worth.";
    assert_eq!(
        counts(text),
        vec![
            Count {
                line: 1,
                kind: Kind::Cases,
                stated: 61
            },
            Count {
                line: 2,
                kind: Kind::Faults,
                stated: 42
            },
            Count {
                line: 3,
                kind: Kind::Cases,
                stated: 1000
            },
            Count {
                line: 4,
                kind: Kind::Faults,
                stated: 7
            },
        ]
    );
}

#[test]
fn fault_names_are_recognised_as_listed() {
    for ok in [
        "omit-done",
        "drop-delta:N",
        "rest-status:CODE:PREFIX",
        "errors-as-500",
    ] {
        assert!(is_fault_spec(ok), "{ok}");
    }
    for not in ["Faults:", "", "drop-delta:", "NAME", "drop_delta:n", "-x"] {
        assert!(!is_fault_spec(not), "{not:?}");
    }
    let listing = "Faults:\n\
                   omit-done                    never send message:done\n\
                   rest-status:CODE:PREFIX      REST paths starting with PREFIX answer\n\
                   \x20                            and waits (a wrapped effect)\n\
                   \n\
                   drop-delta:N                 never send delta N of each stream\n";
    assert_eq!(
        faults_in(listing),
        ["omit-done", "rest-status:CODE:PREFIX", "drop-delta:N"]
    );
}

/// The catalogue table of docs/ADMIN.md lists exactly the faults of
/// `proteus-mock --list-faults`, with the same arguments and effect, in the
/// same order (code formatting in the table aside).
#[test]
fn the_admin_fault_catalogue_is_the_mocks() {
    let listed = Command::new(env!("CARGO_BIN_EXE_proteus-mock"))
        .arg("--list-faults")
        .output()
        .expect("runs");
    let listed = String::from_utf8_lossy(&listed.stdout);
    let mock: Vec<(String, String)> = listed
        .lines()
        .filter(|l| !l.starts_with(' ') && !l.trim().is_empty())
        .filter_map(|l| {
            let (name, effect) = l.split_once(char::is_whitespace)?;
            Some((name.to_string(), effect.trim().to_string()))
        })
        .collect();
    let admin = std::fs::read_to_string(root().join("docs/ADMIN.md")).expect("docs/ADMIN.md");
    let start = admin
        .find("| fault | effect |")
        .expect("ADMIN.md has the catalogue");
    let docs: Vec<(String, String)> = admin[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            (
                cells[0].trim_matches('`').to_string(),
                cells[1].replace('`', ""),
            )
        })
        .collect();
    assert_eq!(
        docs, mock,
        "docs/ADMIN.md's catalogue differs from proteus-mock --list-faults"
    );
}
