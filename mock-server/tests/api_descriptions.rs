//! `schemas/openapi.json` (OpenAPI 3.1, the REST surface of both protocols)
//! and `schemas/asyncapi.json` (AsyncAPI 3, the realtime events) stay true:
//! every `$ref` resolves to a schema file of the contract (they refer to the
//! schemas, never copy them), the OpenAPI document lists exactly the routes
//! the mock's routers declare, the AsyncAPI document refers to every
//! realtime schema, the mock serves both with their schemas beside them, and
//! schemathesis (PyPI), run against the mock with every check and its
//! stateful phase, finds nothing.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// Follows every `$ref` from `file` (through the files it reaches); the
/// problems, and every file reached.
fn resolve_all(file: &Path, seen: &mut BTreeSet<PathBuf>, problems: &mut Vec<String>) {
    let file = file.canonicalize().unwrap_or_else(|_| file.to_path_buf());
    if !seen.insert(file.clone()) {
        return;
    }
    let doc = load(&file);
    let mut found = Vec::new();
    refs(&doc, &mut found);
    for r in found {
        let (target, pointer) = r.split_once('#').unwrap_or((&r, ""));
        if target.starts_with("http") {
            problems.push(format!(
                "{}: {r} points outside the repository",
                file.display()
            ));
            continue;
        }
        let path = if target.is_empty() {
            file.clone()
        } else {
            file.parent().expect("a folder").join(target)
        };
        if !path.exists() {
            problems.push(format!("{}: {r}: no such file", file.display()));
            continue;
        }
        if !pointer.is_empty() && load(&path).pointer(pointer).is_none() {
            problems.push(format!(
                "{}: {r}: the pointer resolves to nothing",
                file.display()
            ));
        }
        if !target.is_empty() {
            resolve_all(&path, seen, problems);
        }
    }
}

#[test]
fn every_ref_of_both_descriptions_resolves_to_a_schema_file() {
    for doc in ["openapi.json", "asyncapi.json"] {
        let mut seen = BTreeSet::new();
        let mut problems = Vec::new();
        resolve_all(&repo().join("schemas").join(doc), &mut seen, &mut problems);
        assert!(problems.is_empty(), "{doc}:\n{}", problems.join("\n"));
        assert!(seen.len() > 20, "{doc} reaches {} files", seen.len());
    }
    let open = load(&repo().join("schemas/openapi.json"));
    assert!(
        open["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1"))
    );
    let async_api = load(&repo().join("schemas/asyncapi.json"));
    assert!(
        async_api["asyncapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3."))
    );
}

#[test]
fn the_asyncapi_document_refers_to_every_realtime_schema() {
    let mut seen = BTreeSet::new();
    let mut problems = Vec::new();
    resolve_all(
        &repo().join("schemas/asyncapi.json"),
        &mut seen,
        &mut problems,
    );
    let schemas = repo().join("schemas").canonicalize().expect("schemas");
    for dir in ["realtime", "thenvoi/events"] {
        for entry in std::fs::read_dir(schemas.join(dir)).expect("dir") {
            let path = entry.expect("entry").path().canonicalize().expect("path");
            assert!(
                seen.contains(&path),
                "asyncapi.json does not describe {}",
                path.display()
            );
        }
    }
}

/// `(METHOD, path)` with every `{param}` written `{}`.
fn normal(method: &str, path: &str) -> (String, String) {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if !in_param => out.push(c),
            _ => {}
        }
    }
    (method.to_uppercase(), out)
}

/// The routes a router file declares: each `.route("PATH", METHODS)`.
fn declared(file: &str, prefix: &str) -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(repo().join(file)).expect("router source");
    let mut routes = BTreeSet::new();
    for chunk in text.split(".route(").skip(1) {
        let Some(start) = chunk.find('"') else {
            continue;
        };
        let rest = &chunk[start + 1..];
        let Some(end) = rest.find('"') else { continue };
        let path = format!("{prefix}{}", &rest[..end]);
        let body = &rest[end..];
        let body = &body[..body
            .find(".route(")
            .unwrap_or(body.len())
            .min(body.find(";\n").unwrap_or(body.len()))];
        for method in ["get", "post", "put", "delete", "patch"] {
            let call = format!("{method}(");
            let calls = body.match_indices(&call).filter(|(i, _)| {
                let before = body[..*i].chars().last();
                !matches!(before, Some(c) if c.is_alphanumeric() || c == '_' || c == ':')
                    || body[..*i].ends_with("routing::")
            });
            if calls.count() > 0 {
                routes.insert(normal(method, &path));
            }
        }
    }
    routes
}

#[test]
fn the_openapi_document_lists_exactly_the_routes_the_mock_declares() {
    let mut code = declared("mock-server/src/proteus/rest/mod.rs", "");
    let thenvoi = declared("mock-server/src/thenvoi/rest/mod.rs", "/api/v1");
    // The lifecycle route takes its action from the path; the document
    // writes out the three actions.
    for (method, path) in thenvoi {
        if path.ends_with("/{}/{}") && path.contains("/messages/") {
            for action in ["processing", "processed", "failed"] {
                code.insert((
                    method.clone(),
                    format!("{}{action}", &path[..path.len() - 2]),
                ));
            }
        } else {
            code.insert((method, path));
        }
    }
    assert!(code.len() > 40, "the source scan found only {code:?}");
    let open = load(&repo().join("schemas/openapi.json"));
    let mut documented = BTreeSet::new();
    for (path, ops) in open["paths"].as_object().expect("paths") {
        for method in ops.as_object().expect("operations").keys() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                documented.insert(normal(method, path));
            }
        }
    }
    let missing: Vec<_> = code.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&code).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "routes not in openapi.json: {missing:?}\nin openapi.json but not served: {extra:?}"
    );
}

#[test]
fn the_docs_count_the_operations_there_are() {
    let open = load(&repo().join("schemas/openapi.json"));
    let mut by_tag = std::collections::BTreeMap::<String, usize>::new();
    for ops in open["paths"].as_object().expect("paths").values() {
        for op in ops.as_object().expect("operations").values() {
            if let Some(tag) = op["tags"][0].as_str() {
                *by_tag.entry(tag.to_string()).or_default() += 1;
            }
        }
    }
    let doc = std::fs::read_to_string(repo().join("docs/CONFORMANCE.md")).expect("doc");
    for (tag, name) in [("proteus", "ProteusAI"), ("thenvoi", "Thenvoi")] {
        let n = by_tag.get(tag).copied().unwrap_or(0);
        assert!(
            doc.contains(&format!("the {n} {name} routes")),
            "docs/CONFORMANCE.md does not say the {n} {name} routes"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mock_serves_both_descriptions_with_their_schemas_beside_them() {
    let mock = common::start().await;
    let get = |path: &str| {
        let url = format!("{}/__admin/api/{path}", mock.url());
        async move {
            let r = reqwest::get(url).await.expect("request");
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, open) = get("openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(
        open,
        load(&repo().join("schemas/openapi.json")),
        "the checkout's file"
    );
    // A relative $ref of the document, fetched beside it.
    let mut found = Vec::new();
    refs(&open, &mut found);
    let first = found
        .iter()
        .find(|r| !r.starts_with('#'))
        .expect("a file ref");
    let (status, schema) = get(first.split('#').next().unwrap_or_default()).await;
    assert_eq!(status, 200, "{first}");
    assert!(schema["$schema"].is_string(), "{first} is a schema");
    let (status, _) = get("asyncapi.json").await;
    assert_eq!(status, 200);
    let (status, body) = get("../Cargo.toml").await;
    assert_eq!(status, 404, "{body}");
    mock.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_nothing_against_the_mock() {
    let schemathesis = repo().join("interop/.venv/bin/schemathesis");
    assert!(
        schemathesis.exists(),
        "{} is missing: run the README's test command (it installs interop/requirements.txt)",
        schemathesis.display()
    );
    // Plugin installs announce themselves to this URL: port 9 refuses at once.
    let config = proteus_mock::Config {
        plugin_url: Some("http://127.0.0.1:9/webhook".into()),
        ..proteus_mock::Config::default()
    };
    let mock = proteus_mock::start(proteus_mock::world::World::default_world(), config)
        .await
        .expect("mock starts");
    let profile: Value = reqwest::get(format!("{}/__admin/profile", mock.url()))
        .await
        .expect("profile")
        .json()
        .await
        .expect("json");
    let p = &profile["data"];
    let token = p["users"][0]["token"]
        .as_str()
        .expect("a user token")
        .to_string();
    let agent_key = p["thenvoi"]["agents"][0]["apiKey"]
        .as_str()
        .expect("agent key")
        .to_string();
    let user_key = p["thenvoi"]["users"][0]["apiKey"]
        .as_str()
        .expect("user key")
        .to_string();
    let url = mock.url();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(schemathesis)
            .current_dir(repo())
            .env("PROTEUS_TOKEN", token)
            .env("THENVOI_AGENT_KEY", agent_key)
            .env("THENVOI_USER_KEY", user_key)
            .env(
                "HYPOTHESIS_STORAGE_DIRECTORY",
                "target/schemathesis-hypothesis",
            )
            .args([
                "--config-file",
                "schemas/schemathesis.toml",
                "run",
                "schemas/openapi.json",
            ])
            .args([
                "--url",
                &url,
                "--max-examples",
                "20",
                "--seed",
                "1",
                "--workers",
                "1",
            ])
            .args(["--request-timeout", "10", "--no-color"])
            .output()
            .expect("schemathesis runs")
    })
    .await
    .expect("joined");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("passed"), "{stdout}");
    mock.stop().await.expect("clean stop");
}
