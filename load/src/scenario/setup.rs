//! What a scenario does before its clock starts: sockets connected and
//! joined (through the conformance client's session surface, the same
//! login and join the conformance cases use), chats created, send bodies
//! built. Setup latencies are recorded as `connect`, never as the server's
//! answer to a send.

use std::time::Duration;

use proteus_conformance::client::{Client, Login, SessionError};
use proteus_conformance::profile::Profile;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{Plan, RunError};
use crate::metrics::{Hist, Metrics};

/// Shared histogram shards per scenario (tasks are assigned round-robin;
/// enough that two worker threads seldom wait for the same lock).
pub const SHARDS: usize = 8;

/// How long a socket may take to connect and authenticate, or to join: a
/// server that accepts and then says nothing must not hang the run.
const SETUP_LIMIT: Duration = Duration::from_secs(10);

/// A session step's failure as the run's: the target unreachable or
/// silent, or the token refused, is exit 3 either way; a refused join is a
/// setup problem.
fn run_error(profile: &Profile, e: SessionError) -> RunError {
    match e {
        SessionError::Unreachable { url, reason } => RunError::Unreachable(url, reason),
        SessionError::Refused(said) => RunError::Refused(said),
        SessionError::Declined { .. } => RunError::Setup(e.to_string()),
        SessionError::Stalled { .. } | SessionError::Ended { .. } => {
            RunError::Unreachable(profile.base_url.clone(), e.to_string())
        }
    }
}

/// Opens a socket and waits for `success`; the connect latency is recorded.
pub async fn open(
    profile: &Profile,
    token: &str,
    read_buffer: usize,
    m: &mut Metrics,
) -> Result<Client, RunError> {
    let t0 = Instant::now();
    let c = Login::new(&profile.base_url, token)
        .read_buffer(read_buffer)
        .within(SETUP_LIMIT)
        .open()
        .await
        .map_err(|e| run_error(profile, e))?;
    m.record(Hist::Connect, t0.elapsed().as_micros() as u64);
    Ok(c)
}

/// Opens a socket and joins `chat`, waiting for the ack.
pub async fn joined(
    profile: &Profile,
    token: &str,
    chat: &str,
    read_buffer: usize,
    m: &mut Metrics,
) -> Result<Client, RunError> {
    let mut c = open(profile, token, read_buffer, m).await?;
    // Frames before the ack (none is expected: the room is quiet until the
    // schedule starts) are not part of any measured stream.
    c.join(chat, SETUP_LIMIT, drop)
        .await
        .map_err(|e| run_error(profile, e))?;
    Ok(c)
}

pub fn user_token(profile: &Profile) -> Result<String, RunError> {
    profile.user(0).map(|u| u.token.clone()).ok_or_else(|| {
        RunError::Setup("the profile has no user token: list one under \"users\"".into())
    })
}

/// One HTTP client for the run's REST calls: building a client loads the
/// TLS roots, ~ms of CPU each, which made a 1,000-user setup CPU-bound.
pub fn http() -> &'static reqwest::Client {
    static HTTP: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    HTTP.get_or_init(reqwest::Client::new)
}

/// A chat of the profile's user with its streaming agent.
pub async fn create_chat(profile: &Profile, token: &str) -> Result<String, RunError> {
    let agent = profile.agents.streaming.clone().ok_or_else(|| {
        RunError::Setup(
            "the profile names no streaming agent: set agents.streaming in --profile".into(),
        )
    })?;
    create_chat_with(profile, token, json!([{ "id": agent, "type": "AGENT" }])).await
}

pub async fn create_chat_with(
    profile: &Profile,
    token: &str,
    participants: Value,
) -> Result<String, RunError> {
    let body = json!({ "participants": participants });
    let resp = http()
        .post(format!("{}/api/chats", profile.base_url))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .map_err(|e| RunError::Unreachable(profile.base_url.clone(), e.to_string()))?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or_default();
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Err(RunError::Refused(
            v["error"]["message"].as_str().unwrap_or("401").to_string(),
        ));
    }
    v["data"]["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| RunError::Setup(format!("creating a chat answered {status}: {v}")))
}

/// The `message:send` payload of stream `i`, shaped by `--chunks` and
/// `--chunk-delay-ms` when the target supports the mock's override.
pub fn send_body(profile: &Profile, chat: &str, plan: &Plan, i: u64) -> Value {
    let mut b = json!({ "chatId": chat, "content": format!("load #{i}"), "streamResponse": true });
    if profile.capabilities.stream_override.as_deref() == Some("state.mock") {
        b["state"] = json!({ "mock": { "chunks": plan.chunks, "chunkDelayMs": plan.chunk_delay_ms, "firstChunkDelayMs": 0 } });
    }
    b
}
