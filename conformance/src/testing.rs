//! Test support: a `proteus-mock` process on a random port.
//!
//! The runner and the load generator are tested against the mock as a
//! separate process, never by importing its code (a bug shared by the two
//! would pass both). The binary is the one `cargo` builds next to the
//! calling test; it is (re)built once per test process, so a
//! `cargo test -p proteus-conformance` alone never runs a stale mock.
//!
//! Behind the `testing` feature (off by default): [`mock_binary`] runs
//! `cargo build`, which has no place in the library a user links. Test crates
//! enable it from their `[dev-dependencies]`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A running mock, killed on drop.
pub struct MockProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
}

/// `target/<profile>/proteus-mock`, built if needed.
pub fn mock_binary() -> PathBuf {
    workspace_binary("proteus-mock")
}

/// `target/<profile>/<package>` (each package here has one binary of its
/// own name), built once per test process with the tests' own profile, so a
/// test never runs a stale build of another package.
pub fn workspace_binary(package: &str) -> PathBuf {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static BUILT: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let exe = std::env::current_exe().expect("test executable");
    // target/<profile>/deps/<test> → target/<profile>
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if built
        .get_or_insert_with(HashSet::new)
        .insert(package.to_string())
    {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let release = dir.ends_with("release").then_some("--release");
        let ok = Command::new(cargo)
            .args(["build", "--quiet", "-p", package, "--bin", package])
            .args(release)
            .status()
            .expect("cargo runs");
        assert!(ok.success(), "cannot build {package}");
    }
    dir.join(format!("{package}{}", std::env::consts::EXE_SUFFIX))
}

impl MockProcess {
    /// Starts `proteus-mock --port 0 --json ARGS…` and reads its URL.
    pub fn start(args: &[&str]) -> MockProcess {
        let mut child = Command::new(mock_binary())
            .args(["--port", "0", "--json"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("proteus-mock starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("start-up line");
        let info: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("start-up JSON ({e}): {line}"));
        MockProcess {
            child,
            url: info["url"].as_str().expect("url").to_string(),
        }
    }

    /// The mock's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for MockProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
