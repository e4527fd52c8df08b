//! The fixture contract of a target: who the runner may act as and with what.
//!
//! Read from `GET {target}/__admin/profile` when the target has a control
//! plane (proteus-mock does), else from `--profile FILE`, a JSON file of the
//! same shape:
//!
//! ```json
//! { "users": [ { "id": "…", "token": "user-…" }, { "id": "…", "token": "user-…" } ],
//!   "revokedToken": "user-…",
//!   "agents": { "streaming": "<agent id>", "echo": "<org-private agent id>" },
//!   "capabilities": { "streamOverride": "state.mock", "plugins": true } }
//! ```
//!
//! A missing piece makes the cases that need it `unsupported`, not failures.
//!
//! Both CLIs (`proteus-conformance run`, `proteus-load run`) get their
//! profile through [`Profile::load`] and exit with
//! [`ProfileError::exit_code`], so one mistake ends both the same way: a
//! profile the user can fix is a usage error ([`exit::USAGE`]), a target
//! that cannot be reached is [`exit::UNREACHABLE`].

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

/// Exit codes the CLIs share, for the errors they share.
pub mod exit {
    /// Bad usage or a profile the user must fix (a flag, a file, a target
    /// without `/__admin/profile` and no `--profile`).
    pub const USAGE: i32 = 2;
    /// The target cannot be reached (or refuses the profile's token), or the
    /// tool itself could not run (a report it cannot write): nothing was
    /// judged, so neither a pass nor a failure.
    pub const UNREACHABLE: i32 = 3;
}

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: String,
    pub token: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Agents {
    /// An agent that streams its reply when asked (`streamResponse: true`).
    #[serde(default)]
    pub streaming: Option<String>,
    /// An org-private agent that user 2 must not see.
    #[serde(default)]
    pub echo: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    /// The message `state` key that shapes a scripted reply (`state.mock`).
    #[serde(default)]
    pub stream_override: Option<String>,
    #[serde(default)]
    pub admin: bool,
    /// The plugin management API and webhooks (`plugins.*` cases). The runner
    /// receives the webhooks on 127.0.0.1, so the target must run on the same
    /// machine.
    #[serde(default)]
    pub plugins: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    #[serde(skip)]
    pub base_url: String,
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(default)]
    pub revoked_token: Option<String>,
    #[serde(default)]
    pub agents: Agents,
    #[serde(default)]
    pub capabilities: Capabilities,
    /// The Thenvoi (Band) fixtures, when the target speaks that protocol too
    /// (docs/CONFORMANCE.md, "Thenvoi (Band)"); `thenvoi.*` cases need it.
    #[serde(default)]
    pub thenvoi: Option<Thenvoi>,
    /// Where the profile came from (for the report).
    #[serde(skip)]
    pub source: String,
}

/// A Thenvoi user: its id, display name, REST key and socket JWT.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThenvoiUser {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub api_key: String,
    #[serde(default)]
    pub token: Option<String>,
}

/// A Thenvoi agent and its owner (a user of [`Thenvoi::users`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThenvoiAgent {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub api_key: String,
    pub owner_id: String,
}

/// The `thenvoi` object of a profile: two users of different owners, agents
/// that answer nothing on their own (at least three of users\[0\], one of
/// users\[1\]), the idle timeout in force and the route that deletes a room
/// (the public API has none, T20).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Thenvoi {
    #[serde(default)]
    pub users: Vec<ThenvoiUser>,
    #[serde(default)]
    pub agents: Vec<ThenvoiAgent>,
    /// Agents with scripted behaviour (the mock's), by script name; unused by the cases.
    #[serde(default)]
    pub scripted: std::collections::BTreeMap<String, ThenvoiAgent>,
    #[serde(default)]
    pub idle_timeout_ms: Option<u64>,
    /// A path with `{id}`: DELETE it with users\[0\]'s key to delete a room.
    #[serde(default)]
    pub delete_room: Option<String>,
}

/// Why no profile could be had.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("target {url} is unreachable: {reason} (is it running? check --target)")]
    Unreachable { url: String, reason: String },
    #[error("cannot read profile {path}: {source} (check --profile)")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("profile {path} is not JSON: {source}")]
    NotJson {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{target} has no /__admin/profile: give --profile FILE (users' tokens, agent ids; see --help)"
    )]
    NoControlPlane { target: String },
    #[error("{0}")]
    Invalid(String),
}

impl ProfileError {
    /// The exit code both CLIs use for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            ProfileError::Unreachable { .. } => exit::UNREACHABLE,
            ProfileError::Read { .. }
            | ProfileError::NotJson { .. }
            | ProfileError::NoControlPlane { .. }
            | ProfileError::Invalid(_) => exit::USAGE,
        }
    }
}

impl Profile {
    /// The profile for a run against `target`: from `file` when given (the
    /// target is not asked), else from the target's `/__admin/profile`.
    pub async fn load(
        http: &reqwest::Client,
        target: &str,
        file: Option<&Path>,
    ) -> Result<Profile, ProfileError> {
        let Some(path) = file else {
            return Profile::fetch(http, target).await?.ok_or_else(|| {
                ProfileError::NoControlPlane {
                    target: target.to_string(),
                }
            });
        };
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: shown.clone(),
            source,
        })?;
        let v: Value = serde_json::from_str(&text).map_err(|source| ProfileError::NotJson {
            path: shown.clone(),
            source,
        })?;
        Profile::from_value(target, &shown, v)
    }

    /// Parses a profile document (the admin endpoint's `data`, or a file).
    pub fn from_value(base_url: &str, source: &str, v: Value) -> Result<Profile, ProfileError> {
        let mut p: Profile = serde_json::from_value(v)
            .map_err(|e| ProfileError::Invalid(format!("profile from {source}: {e}")))?;
        if p.users.is_empty() && p.thenvoi.is_none() {
            return Err(ProfileError::Invalid(format!(
                "profile from {source} lists no users: the runner needs at least one token"
            )));
        }
        p.base_url = base_url.trim_end_matches('/').to_string();
        p.source = source.to_string();
        Ok(p)
    }

    /// Fetches the target's own profile, if it serves one. `Ok(None)` when
    /// the target answers but has no control plane.
    pub async fn fetch(
        http: &reqwest::Client,
        base_url: &str,
    ) -> Result<Option<Profile>, ProfileError> {
        let url = format!("{}/__admin/profile", base_url.trim_end_matches('/'));
        let resp = http
            .get(&url)
            .send()
            .await
            .map_err(|e| ProfileError::Unreachable {
                url: base_url.to_string(),
                reason: e.to_string(),
            })?;
        if !resp.status().is_success() {
            return Ok(None);
        }
        let body: Value = match resp.json().await {
            Ok(b) => b,
            Err(_) => return Ok(None),
        };
        Profile::from_value(base_url, &url, body.get("data").cloned().unwrap_or(body)).map(Some)
    }

    /// User 1 (the main actor) and user 2 (the outsider), when present.
    pub fn user(&self, n: usize) -> Option<&User> {
        self.users.get(n)
    }

    /// The state value asking for a fast, fixed stream of `chunks` deltas,
    /// when the target supports an override; empty otherwise.
    pub fn stream_state(&self, chunks: usize) -> Value {
        match self.capabilities.stream_override.as_deref() {
            Some("state.mock") => {
                serde_json::json!({ "mock": { "chunks": chunks, "chunkDelayMs": 1, "firstChunkDelayMs": 0 } })
            }
            _ => serde_json::json!({}),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!(
            "proteus-profile-{}-{name}.json",
            std::process::id()
        ));
        std::fs::write(&path, text).expect("write");
        path
    }

    async fn load(path: &Path) -> Result<Profile, ProfileError> {
        Profile::load(&reqwest::Client::new(), "http://127.0.0.1:9/", Some(path)).await
    }

    #[tokio::test]
    async fn a_profile_file_is_read_without_asking_the_target() {
        let path = file("ok", r#"{"users": [{"id": "u1", "token": "user-1"}]}"#);
        let p = load(&path).await.expect("a valid profile");
        assert_eq!(p.base_url, "http://127.0.0.1:9");
        assert_eq!(p.source, path.display().to_string());
        assert_eq!(p.user(0).map(|u| u.token.as_str()), Some("user-1"));
    }

    #[tokio::test]
    async fn a_thenvoi_only_profile_is_accepted_without_proteus_users() {
        let path = file(
            "thenvoi",
            r#"{"thenvoi": {"users": [{"id": "u", "apiKey": "k"}], "agents": [], "idleTimeoutMs": 1500}}"#,
        );
        let p = load(&path).await.expect("a thenvoi-only profile");
        let t = p.thenvoi.expect("the thenvoi object");
        assert_eq!(t.users[0].api_key, "k");
        assert_eq!(t.idle_timeout_ms, Some(1500));
    }

    #[tokio::test]
    async fn every_profile_mistake_is_a_usage_error_naming_the_file() {
        let missing = std::env::temp_dir().join("proteus-profile-does-not-exist.json");
        let not_json = file("not-json", "{users");
        let no_users = file("no-users", r#"{"users": []}"#);
        for path in [&missing, &not_json, &no_users] {
            let e = load(path).await.expect_err("refused");
            assert_eq!(e.exit_code(), exit::USAGE, "{e}");
            assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        }
    }

    #[tokio::test]
    async fn an_unreachable_target_is_exit_3_and_no_control_plane_is_exit_2() {
        let e = Profile::load(&reqwest::Client::new(), "http://127.0.0.1:9", None)
            .await
            .expect_err("nothing listens on port 9");
        assert_eq!(e.exit_code(), exit::UNREACHABLE, "{e}");
        let none = ProfileError::NoControlPlane {
            target: "http://x".into(),
        };
        assert_eq!(none.exit_code(), exit::USAGE);
        assert!(none.to_string().contains("--profile FILE"));
    }
}
