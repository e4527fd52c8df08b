//! The mock's layering, enforced: transports sit on a protocol-neutral core,
//! the core imports nothing above it, and no part imports another in a
//! circle.
//!
//! Reads every `use crate::…` / `use super::…` statement and every inline
//! `crate::…` path of `mock-server/src`, maps each to a part of the mock,
//! and checks two rules:
//!
//! 1. **Layers.** A part imports only from its own layer or below:
//!    foundations (`model`, `world`, `journal`, `priority`, `faults`) <
//!    `core` < transports (`proteus::rest`, `proteus::realtime`, `net`) <
//!    `admin` < the crate root (`App`, `build`, `serve`).
//! 2. **No circles** between parts. Inside the core and the ProteusAI
//!    transports the parts are their submodules (`core::store`,
//!    `core::replies`, `proteus::rest`, …); they all take a shared context
//!    from the root file (`core::Core` in `core/mod.rs`, `proteus::App` in
//!    `proteus/mod.rs`), which in turn holds their state, so edges to and
//!    from those roots are not circles.
//!
//! A failure names the file, the line and the statement to change.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Where a part sits; lower layers never import higher ones.
fn layer(part: &str) -> Option<u8> {
    let top = part.split("::").next().unwrap_or(part);
    match top {
        "model" | "world" | "journal" | "priority" | "faults" => Some(1),
        "core" => Some(2),
        "proteus" | "thenvoi" | "net" => Some(3),
        "admin" => Some(4),
        "root" => Some(5),
        _ => None,
    }
}

/// Parts that are split one level further (their submodules are parts).
const SPLIT: &[&str] = &["core", "proteus", "thenvoi"];

/// One import: which file and line, and what it names.
#[derive(Debug, Clone)]
struct Import {
    file: String,
    line: usize,
    text: String,
    from: String,
    to: String,
}

/// A source file's module path: `core/store/agents.rs` → `["core", "store", "agents"]`.
fn module_path(relative: &str) -> Vec<String> {
    let trimmed = relative.trim_end_matches(".rs");
    let mut parts: Vec<String> = trimmed.split('/').map(str::to_string).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// The part an absolute path (`["core", "store", "Caller"]`) belongs to.
fn part_of(path: &[String], modules: &BTreeSet<String>) -> String {
    let Some(top) = path.first() else {
        return "root".into();
    };
    if !modules.contains(top) {
        return "root".into(); // an item of lib.rs: App, Config, …
    }
    if SPLIT.contains(&top.as_str())
        && let Some(second) = path.get(1)
        && modules.contains(&format!("{top}::{second}"))
    {
        return format!("{top}::{second}");
    }
    top.clone()
}

/// Expands `a::{b, c::d}` one level into `a::b`, `a::c::d`.
fn expand(path: &str) -> Vec<String> {
    match (path.find('{'), path.rfind('}')) {
        (Some(open), Some(close)) if open < close => {
            let prefix = &path[..open];
            let mut out = Vec::new();
            let (mut depth, mut start) = (0, open + 1);
            for (i, ch) in path.char_indices().take(close).skip(open + 1) {
                match ch {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(format!("{prefix}{}", path[start..i].trim()));
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            out.push(format!("{prefix}{}", path[start..close].trim()));
            out.into_iter().filter(|p| !p.ends_with("::")).collect()
        }
        _ => vec![path.to_string()],
    }
}

/// Resolves `crate::a::b` / `super::a` / `self::a` from a module into an
/// absolute path.
fn resolve(path: &str, module: &[String]) -> Option<Vec<String>> {
    let segments: Vec<&str> = path.split("::").map(str::trim).collect();
    let mut here: Vec<String> = module.to_vec();
    let mut rest = segments.as_slice();
    match rest.first() {
        Some(&"crate") => {
            here.clear();
            rest = &rest[1..];
        }
        Some(&"super") => {
            while rest.first() == Some(&"super") {
                here.pop()?;
                rest = &rest[1..];
            }
        }
        Some(&"self") => rest = &rest[1..],
        _ => return None,
    }
    here.extend(rest.iter().filter(|s| **s != "self").map(|s| s.to_string()));
    Some(here)
}

/// Every import of one file. Stops at `#[cfg(test)]` (unit tests may reach
/// anywhere).
fn imports_of(file: &str, source: &str, modules: &BTreeSet<String>) -> Vec<Import> {
    let module = module_path(file);
    let from = part_of(&module, modules);
    let mut out = Vec::new();
    let mut statement: Option<(usize, String)> = None;
    for (i, raw) in source.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with("#[cfg(test)]") {
            break;
        }
        if line.starts_with("//") {
            continue;
        }
        let mut paths: Vec<(usize, String)> = Vec::new();
        if let Some((start, mut text)) = statement.take() {
            text.push_str(line);
            if line.ends_with(';') {
                paths.push((start, text));
            } else {
                statement = Some((start, text));
            }
        } else if let Some(rest) = line
            .strip_prefix("pub use ")
            .or_else(|| line.strip_prefix("pub(crate) use "))
            .or_else(|| line.strip_prefix("use "))
        {
            if rest.ends_with(';') {
                paths.push((i + 1, rest.to_string()));
            } else {
                statement = Some((i + 1, rest.to_string()));
            }
        } else {
            // Inline paths: `crate::core::store::now_iso()`.
            let mut at = 0;
            while let Some(found) = line[at..].find("crate::") {
                let start = at + found;
                let before = line[..start].chars().last();
                let end = line[start..]
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .map_or(line.len(), |e| start + e);
                if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '"') {
                    paths.push((i + 1, line[start..end].trim_end_matches(':').to_string()));
                }
                at = end;
            }
        }
        for (line_no, path) in paths {
            let path = path.trim_end_matches(';').trim();
            let path = path.split(" as ").next().unwrap_or(path);
            for one in expand(path) {
                let Some(absolute) = resolve(&one, &module) else {
                    continue;
                };
                let to = part_of(&absolute, modules);
                out.push(Import {
                    file: file.to_string(),
                    line: line_no,
                    text: one.clone(),
                    from: from.clone(),
                    to,
                });
            }
        }
    }
    out
}

/// The module names of a source tree: `core`, `core::store`, `proteus::rest`, …
fn modules_of(files: &[(String, String)]) -> BTreeSet<String> {
    let mut modules = BTreeSet::new();
    for (file, _) in files {
        let path = module_path(file);
        if let Some(top) = path.first() {
            modules.insert(top.clone());
            if let Some(second) = path.get(1) {
                modules.insert(format!("{top}::{second}"));
            }
        }
    }
    modules
}

/// Checks the two rules; `Err` lists every violation.
fn check(files: &[(String, String)]) -> Result<(), String> {
    let modules = modules_of(files);
    let imports: Vec<Import> = files
        .iter()
        .flat_map(|(f, s)| imports_of(f, s, &modules))
        .filter(|i| i.from != i.to)
        .collect();
    let mut problems = Vec::new();
    for i in &imports {
        if let (Some(a), Some(b)) = (layer(&i.from), layer(&i.to))
            && a < b
        {
            problems.push(format!(
                "{}:{}: `{}`: {} (layer {a}) must not import {} (layer {b})",
                i.file, i.line, i.text, i.from, i.to
            ));
        }
    }
    // Circles, with the shared contexts (the roots of split parts) left out.
    let mut edges: BTreeMap<&str, BTreeMap<&str, &Import>> = BTreeMap::new();
    for i in &imports {
        if SPLIT.contains(&i.from.as_str()) || SPLIT.contains(&i.to.as_str()) {
            continue;
        }
        edges.entry(&i.from).or_default().entry(&i.to).or_insert(i);
    }
    if let Some(circle) = find_circle(&edges) {
        let steps: Vec<String> = circle
            .windows(2)
            .map(|w| {
                let i = edges[w[0]][w[1]];
                format!(
                    "  {}:{}: {} -> {} (`{}`)",
                    i.file, i.line, i.from, i.to, i.text
                )
            })
            .collect();
        problems.push(format!("an import circle:\n{}", steps.join("\n")));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// A circle in the graph, as the list of nodes with the first repeated at the end.
fn find_circle<'a>(edges: &BTreeMap<&'a str, BTreeMap<&'a str, &Import>>) -> Option<Vec<&'a str>> {
    fn visit<'a>(
        node: &'a str,
        edges: &BTreeMap<&'a str, BTreeMap<&'a str, &Import>>,
        stack: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<&'a str>> {
        if let Some(at) = stack.iter().position(|n| *n == node) {
            let mut circle = stack[at..].to_vec();
            circle.push(node);
            return Some(circle);
        }
        if !done.insert(node) {
            return None;
        }
        stack.push(node);
        for next in edges.get(node).into_iter().flat_map(|m| m.keys()) {
            if let Some(c) = visit(next, edges, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        let mut stack = Vec::new();
        if let Some(c) = visit(node, edges, &mut stack, &mut done) {
            return Some(c);
        }
    }
    None
}

fn sources(dir: &Path, base: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read src")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            sources(&path, base, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path
                .strip_prefix(base)
                .expect("under src")
                .to_string_lossy()
                .replace('\\', "/");
            if relative == "main.rs" {
                continue; // the binary uses the library by its name, not crate::
            }
            out.push((relative, std::fs::read_to_string(&path).expect("read")));
        }
    }
}

fn tree(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(f, s)| (f.to_string(), s.to_string()))
        .collect()
}

#[test]
fn the_mock_keeps_its_layers_and_has_no_import_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &src, &mut files);
    assert!(
        files.iter().any(|(f, _)| f == "core/mod.rs"),
        "no core/mod.rs found under {}",
        src.display()
    );
    if let Err(problems) = check(&files) {
        panic!("the mock's layering is broken (see the `//!` doc of this test):\n{problems}");
    }
}

#[test]
fn a_core_file_importing_a_transport_is_refused_with_its_line() {
    let files = tree(&[
        ("lib.rs", "pub mod core;\npub mod proteus;\n"),
        ("core/mod.rs", "pub mod messaging;\n"),
        (
            "core/messaging.rs",
            "//! doc\nuse crate::model::Message;\nuse crate::proteus::rest::ApiError;\n",
        ),
        ("proteus/rest/mod.rs", "use crate::core::messaging;\n"),
        ("model.rs", ""),
    ]);
    let err = check(&files).expect_err("core imports a transport");
    assert!(
        err.contains("core/messaging.rs:3: `crate::proteus::rest::ApiError`: core::messaging (layer 2) must not import proteus::rest (layer 3)"),
        "{err}"
    );
}

#[test]
fn a_deliberate_circle_between_core_parts_is_found_and_named() {
    let files = tree(&[
        ("lib.rs", "pub mod core;\n"),
        ("core/mod.rs", "pub mod messaging;\npub mod replies;\n"),
        ("core/messaging.rs", "use super::{replies, Core};\n"),
        (
            "core/replies/play.rs",
            "fn f() {\n    crate::core::messaging::announce();\n}\n",
        ),
    ]);
    let err = check(&files).expect_err("a circle");
    assert!(err.contains("an import circle"), "{err}");
    assert!(
        err.contains("core/replies/play.rs:2: core::replies -> core::messaging"),
        "{err}"
    );
    assert!(
        err.contains("core/messaging.rs:1: core::messaging -> core::replies"),
        "{err}"
    );
}

#[test]
fn the_shared_core_context_is_not_a_circle() {
    let files = tree(&[
        ("lib.rs", "pub mod core;\n"),
        (
            "core/mod.rs",
            "pub mod store;\nuse store::Store;\nuse self::store::Caller;\n",
        ),
        (
            "core/store/mod.rs",
            "use crate::core::Core;\nuse super::Refusal;\n",
        ),
    ]);
    check(&files).expect("edges to and from core's root are the shared context");
}
