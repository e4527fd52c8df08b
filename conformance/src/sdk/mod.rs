//! Client conformance: grade a client SDK against the mock.
//!
//! For each [`scenarios::Scenario`] the runner resets a running
//! `proteus-mock` through its control plane, prepares a chat, switches the
//! scenario's faults on, then runs the user's *adapter* (a small program
//! that drives the SDK under test through one task, [`adapter`]) and judges
//! what the SDK reported against what the server did (the journal, the REST
//! history). Results are [`CaseResult`]s, so the reports, levels, exit codes
//! and expectations files are the server runner's.
//!
//! - [`adapter`]: the contract (environment in, JSON lines out);
//! - [`scenarios`]: the catalogue, as data;
//! - this file: preparing the mock, running, judging.

pub mod adapter;
mod judge;
mod mock;
mod restart;
pub mod scenarios;
mod thenvoi;

use std::time::{Duration, Instant};

use serde_json::json;

use crate::case::{Failure, Outcome};
use crate::profile::Profile;
use crate::runner::{CaseResult, Expectation};
use mock::Mock;
use scenarios::{Chat, Scenario, Task};

/// How a client run is set up.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The adapter command (run with `sh -c`).
    pub command: String,
    /// How long the SDK waits for a reply before reporting `timeout`
    /// (`PROTEUS_TIMEOUT_MS`).
    pub reply_timeout: Duration,
    /// When the runner kills an adapter that has not exited.
    pub limit: Duration,
    /// Known failures, as for servers.
    pub expectations: Vec<Expectation>,
}

/// What a scenario prepared on the mock.
pub(super) struct Prepared {
    env: Vec<(String, String)>,
    pub chat_id: String,
    pub token: String,
    pub content: String,
    /// How long the adapter may run before it is killed.
    limit: Duration,
    /// Thenvoi scenarios: the agent the adapter acts as.
    agent: Option<thenvoi::Agent>,
}

async fn prepare(
    mock: &Mock<'_>,
    profile: &Profile,
    s: &Scenario,
    settings: &Settings,
) -> Result<Prepared, String> {
    mock.admin(reqwest::Method::POST, "/__admin/reset", None)
        .await?;
    let user = profile.users.first().ok_or("the profile has no user")?;
    let token = user.token.clone();
    let chat_id = match s.chat {
        Chat::Missing => "000000000000000000000000".to_string(),
        Chat::AgentRoom => return Err("a Thenvoi room is prepared by sdk::thenvoi".into()),
        Chat::Foreign => {
            let other = profile
                .users
                .get(1)
                .ok_or("the profile has no second user")?;
            let (status, v) = mock
                .call(
                    reqwest::Method::POST,
                    "/api/chats",
                    Some(&other.token),
                    Some(json!({ "participants": [] })),
                )
                .await?;
            let id = v["data"]["id"]
                .as_str()
                .filter(|_| status < 300)
                .ok_or(format!("creating a chat answered {status}: {v}"))?;
            id.to_string()
        }
        Chat::WithAgent | Chat::WithHistory => {
            let participants = match (s.chat, &profile.agents.streaming) {
                (Chat::WithAgent, Some(agent)) => json!([{ "id": agent, "type": "AGENT" }]),
                (Chat::WithAgent, None) => {
                    return Err("the profile names no streaming agent".into());
                }
                _ => json!([]),
            };
            let (status, v) = mock
                .call(
                    reqwest::Method::POST,
                    "/api/chats",
                    Some(&token),
                    Some(json!({ "participants": participants })),
                )
                .await?;
            let id = v["data"]["id"]
                .as_str()
                .filter(|_| status < 300)
                .ok_or(format!("creating a chat answered {status}: {v}"))?;
            id.to_string()
        }
    };
    if s.chat == Chat::WithHistory {
        for i in 1..=45 {
            let (status, v) = mock
                .call(
                    reqwest::Method::POST,
                    "/api/messages",
                    Some(&token),
                    Some(json!({ "chatId": chat_id, "content": format!("history {i}") })),
                )
                .await?;
            if status >= 300 {
                return Err(format!("seeding the history answered {status}: {v}"));
            }
        }
    }
    mock.faults(s.faults).await?;
    let content = format!("{} from the client runner", s.id);
    // The rejoin task waits for a message through a restart and a rejoin.
    let (timeout, limit) = if s.task == Task::Rejoin {
        (
            settings.reply_timeout + restart::REJOIN_WITHIN * 2,
            settings.limit + restart::REJOIN_WITHIN * 2,
        )
    } else {
        (settings.reply_timeout, settings.limit)
    };
    let env = vec![
        ("PROTEUS_URL".into(), mock.base.to_string()),
        (
            "PROTEUS_TOKEN".into(),
            if s.bad_token {
                "not-a-token".into()
            } else {
                token.clone()
            },
        ),
        ("PROTEUS_CHAT_ID".into(), chat_id.clone()),
        ("PROTEUS_TASK".into(), s.task.name().into()),
        ("PROTEUS_CONTENT".into(), content.clone()),
        ("PROTEUS_CONTENT_2".into(), format!("{content}, again")),
        (
            "PROTEUS_STATE".into(),
            // Each reply quotes its message, so two replies differ.
            json!({ "mock": {
                "chunks": 6,
                "chunkDelayMs": 20,
                "text": "{{agentName}} answers: {{content}}",
            } })
            .to_string(),
        ),
        ("PROTEUS_TIMEOUT_MS".into(), timeout.as_millis().to_string()),
        ("PROTEUS_SCENARIO".into(), s.id.into()),
    ];
    Ok(Prepared {
        env,
        chat_id,
        token,
        content,
        limit,
        agent: None,
    })
}

/// Runs `scenarios` with the adapter; one result each, in order.
pub async fn run(
    base: &str,
    profile: &Profile,
    scenarios: &[Scenario],
    settings: &Settings,
    mut each: impl FnMut(&CaseResult),
) -> Vec<CaseResult> {
    let mock = Mock {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default(),
        base,
    };
    let mut results = Vec::new();
    for s in scenarios {
        let started = Instant::now();
        let prepared = if s.task == Task::Agent {
            thenvoi::prepare(&mock, profile, s, settings).await
        } else {
            prepare(&mock, profile, s, settings).await
        };
        let outcome = match prepared {
            Err(e) => Err(e),
            Ok(p) if s.task == Task::Agent => {
                let repro = repro_of(&p, settings);
                let directed = std::sync::Mutex::new(thenvoi::Directed::default());
                let out = directing(
                    adapter::run(&settings.command, &p.env, p.limit),
                    thenvoi::direct(&mock, s, &p, p.limit, &directed),
                )
                .await;
                let directed = directed.into_inner().unwrap_or_else(|e| e.into_inner());
                thenvoi::judge(&mock, s, &p, &out, &directed, &repro)
                    .await
                    .map(|verdict| (verdict, out))
            }
            Ok(p) => {
                let repro = repro_of(&p, settings);
                let directed = std::sync::Mutex::new(restart::Directed::default());
                let adapter = adapter::run(&settings.command, &p.env, p.limit);
                let out = if s.task == Task::Rejoin {
                    directing(adapter, restart::direct(&mock, &p, p.limit, &directed)).await
                } else {
                    adapter.await
                };
                let directed = directed.into_inner().unwrap_or_else(|e| e.into_inner());
                judge::judge(&mock, s, &p, &out, &directed, &repro)
                    .await
                    .map(|verdict| (verdict, out))
            }
        };
        let (outcome, wire) = match outcome {
            Ok((Ok(()), out)) => (Outcome::Pass, out.describe()),
            Ok((Err(f), out)) => (Outcome::Fail(f), out.describe()),
            Err(e) => (
                Outcome::Fail(Failure {
                    expected: vec!["the scenario set up on the mock".into()],
                    actual: e,
                    reproducer: String::new(),
                }),
                String::new(),
            ),
        };
        let r = crate::runner::judge(
            s.id,
            s.level,
            s.desc,
            s.requirement,
            outcome,
            started.elapsed(),
            wire,
            &settings.expectations,
        );
        each(&r);
        results.push(r);
    }
    let _ = mock
        .admin(reqwest::Method::POST, "/__admin/reset", None)
        .await;
    results
}

/// Runs the adapter while `director` acts on the mock; the adapter's output
/// once it exits (the director may finish first, or be cut short).
async fn directing(
    adapter: impl std::future::Future<Output = adapter::Output>,
    director: impl std::future::Future<Output = ()>,
) -> adapter::Output {
    tokio::pin!(adapter, director);
    let mut directing = true;
    loop {
        tokio::select! {
            out = &mut adapter => break out,
            () = &mut director, if directing => directing = false,
        }
    }
}

/// The command line that runs the adapter as the scenario did.
fn repro_of(p: &Prepared, settings: &Settings) -> String {
    let vars: Vec<String> = p
        .env
        .iter()
        .map(|(k, v)| format!("{k}={}", shell_quote(v)))
        .collect();
    format!("{} {}", vars.join(" "), settings.command)
}

fn shell_quote(v: &str) -> String {
    if v.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:".contains(c))
    {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\'', "'\\''"))
    }
}
