//! Embeds every file under `../schemas/` into the library, so the runner
//! validates with the exact contract of the checkout it was built from and
//! needs no files at run time.

use std::{env, fs, path::Path};

/// API descriptions beside the schemas (OpenAPI, AsyncAPI): they refer to
/// the schemas but are not schemas themselves.
const NOT_SCHEMAS: [&str; 2] = ["openapi.json", "asyncapi.json"];

fn collect(dir: &Path, root: &Path, out: &mut Vec<String>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, root, out);
        } else if path.extension().is_some_and(|x| x == "json") {
            let rel = path.strip_prefix(root).expect("under root");
            let rel = rel.to_string_lossy().replace('\\', "/");
            if !NOT_SCHEMAS.contains(&rel.as_str()) {
                out.push(rel);
            }
        }
    }
}

fn main() {
    let manifest = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest).join("../schemas");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    for f in &files {
        println!("cargo:rerun-if-changed={}/{f}", root.display());
    }
    let mut src = String::from(
        "/// Every schema file: (path relative to `schemas/`, contents).\npub static SCHEMA_FILES: &[(&str, &str)] = &[\n",
    );
    for f in &files {
        src.push_str(&format!(
            "    ({f:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/../schemas/{f}\"))),\n"
        ));
    }
    src.push_str("];\n");
    // The OpenAPI description: the proxy reads each route's response
    // schemas from it (proxy/routes.rs).
    println!("cargo:rerun-if-changed={}/openapi.json", root.display());
    src.push_str(
        "/// `schemas/openapi.json`.\npub static OPENAPI: &str = include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/../schemas/openapi.json\"));\n",
    );
    let out = Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("schema_files.rs");
    fs::write(out, src).expect("write schema_files.rs");
}
