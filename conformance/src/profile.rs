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

use serde::Deserialize;
use serde_json::Value;

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
    /// Where the profile came from (for the report).
    #[serde(skip)]
    pub source: String,
}

/// Why no profile could be had.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{0}")]
    Invalid(String),
}

impl Profile {
    /// Parses a profile document (the admin endpoint's `data`, or a file).
    pub fn from_value(base_url: &str, source: &str, v: Value) -> Result<Profile, ProfileError> {
        let mut p: Profile = serde_json::from_value(v)
            .map_err(|e| ProfileError::Invalid(format!("profile from {source}: {e}")))?;
        if p.users.is_empty() {
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
