//! `deploy/kubernetes/load-job.yaml` cannot run here, so it is kept valid
//! by reading it: the worker count agrees everywhere it appears, every
//! worker writes its own log and the merge reads them all, and a worker's
//! arguments (with the Kubernetes and envsubst placeholders filled in) are
//! flags `proteus-load run` accepts.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The manifest's documents, parsed by PyYAML (from the test venv).
fn documents() -> Vec<Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join("interop/.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run the README's test command (it creates interop/.venv)",
        python.display()
    );
    let out = Command::new(python)
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(root.join("deploy/kubernetes/load-job.yaml"))
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "the manifest is not valid YAML: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from PyYAML")
}

fn job<'a>(docs: &'a [Value], name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == "Job" && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no Job {name}"))
}

#[test]
fn the_kubernetes_job_runs_n_workers_with_one_start_and_merges_them_all() {
    let docs = documents();
    let workers = job(&docs, "proteus-load-workers");
    let spec = &workers["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let n = spec["completions"].as_u64().expect("completions");
    assert_eq!(spec["parallelism"].as_u64(), Some(n), "all workers at once");
    let container = &spec["template"]["spec"]["containers"][0];
    let args: Vec<String> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string arg").to_string())
        .collect();
    let after = |flag: &str| {
        let i = args
            .iter()
            .position(|a| a == flag)
            .unwrap_or_else(|| panic!("no {flag}"));
        args[i + 1].clone()
    };
    assert_eq!(after("--workers"), n.to_string(), "--workers = completions");
    assert_eq!(after("--worker-index"), "$(JOB_COMPLETION_INDEX)");
    assert_eq!(after("--start-at"), "${START_AT}", "one start for all");
    let hlog = after("--hlog");
    assert!(
        hlog.contains("$(JOB_COMPLETION_INDEX)"),
        "a log per worker: {hlog}"
    );

    // The worker's arguments are flags `run` takes: filled in, against a
    // port nothing listens on, it gets as far as the target (exit 3), not
    // a usage error (exit 2).
    let filled: Vec<String> = args
        .iter()
        .map(|a| {
            a.replace("$(JOB_COMPLETION_INDEX)", "1")
                .replace("${TARGET}", "http://127.0.0.1:9")
                .replace("${START_AT}", "1764547200")
                .replace("/hlogs/", &format!("{}/", std::env::temp_dir().display()))
        })
        .collect();
    assert_eq!(container["command"][0], "proteus-load");
    let out = Command::new(env!("CARGO_BIN_EXE_proteus-load"))
        .args(&filled)
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(3),
        "the manifest's worker arguments: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The merge reads every worker's log and gates on the merged run.
    let merge = job(&docs, "proteus-load-merge");
    let script = merge["spec"]["template"]["spec"]["containers"][0]["args"][0]
        .as_str()
        .expect("merge script");
    assert!(script.starts_with("proteus-load merge"), "{script}");
    for i in 0..n {
        let log = hlog.replace("$(JOB_COMPLETION_INDEX)", &i.to_string());
        assert!(script.contains(&log), "the merge reads {log}: {script}");
    }
    assert!(
        !script.contains(&hlog.replace("$(JOB_COMPLETION_INDEX)", &n.to_string())),
        "no more logs than workers"
    );
    assert!(script.contains("--ensure"), "gates on the merged run");
    let claim = docs
        .iter()
        .find(|d| d["kind"] == "PersistentVolumeClaim")
        .expect("a volume for the logs");
    assert_eq!(
        claim["spec"]["accessModes"][0], "ReadWriteMany",
        "shared by all pods"
    );
}
