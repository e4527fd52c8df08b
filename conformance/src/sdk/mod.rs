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
pub mod scenarios;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::case::{Failure, Outcome};
use crate::profile::Profile;
use crate::runner::{CaseResult, Expectation};
use adapter::{Line, Output};
use scenarios::{Chat, Judge, Scenario};

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
struct Prepared {
    env: Vec<(String, String)>,
    chat_id: String,
    token: String,
    content: String,
}

/// A control plane / REST helper bound to the target.
struct Mock<'a> {
    http: reqwest::Client,
    base: &'a str,
}

impl Mock<'_> {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<(u16, Value), String> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = r.status().as_u16();
        Ok((status, r.json().await.unwrap_or(Value::Null)))
    }

    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let (status, v) = self.call(method.clone(), path, None, body).await?;
        if !(200..300).contains(&status) {
            return Err(format!(
                "{method} {path} answered {status}: {v} (client mode needs a proteus-mock with its control plane)"
            ));
        }
        Ok(v)
    }

    /// Every message id of a chat, oldest first, as the server lists them.
    async fn history(&self, token: &str, chat: &str) -> Result<Vec<String>, String> {
        let (status, v) = self
            .call(
                reqwest::Method::GET,
                &format!("/api/chats/{chat}/messages?@limit=100&@page=1"),
                Some(token),
                None,
            )
            .await?;
        if status != 200 {
            return Err(format!("listing {chat} answered {status}: {v}"));
        }
        let ids: Vec<String> = v["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["id"].as_str().map(str::to_string))
            .collect();
        // Oldest first, as the API lists (PROTOCOL.md R9).
        Ok(ids)
    }

    /// The `message:done` content the mock sent into `chat`, if any.
    async fn done_content(&self, chat: &str) -> Result<Option<String>, String> {
        let v = self
            .admin(
                reqwest::Method::GET,
                &format!("/__admin/journal?kind=out&event=message:done&chatId={chat}"),
                None,
            )
            .await?;
        Ok(v["data"][0]["detail"]["payload"]["content"]
            .as_str()
            .map(str::to_string))
    }

    /// The message the mock gave the first socket it refused.
    async fn refusal(&self) -> Result<Option<String>, String> {
        let v = self
            .admin(reqwest::Method::GET, "/__admin/journal?kind=connect", None)
            .await?;
        Ok(v["data"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|e| e["detail"]["refused"].as_str().map(str::to_string)))
    }

    async fn connects(&self) -> Result<usize, String> {
        let v = self
            .admin(reqwest::Method::GET, "/__admin/journal?kind=connect", None)
            .await?;
        Ok(v["data"].as_array().map_or(0, Vec::len))
    }
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
    for f in s.faults {
        // Global: REST faults are not scoped to a chat, and the mock was
        // just reset for this scenario alone.
        mock.admin(
            reqwest::Method::POST,
            "/__admin/faults",
            Some(json!({ "fault": f })),
        )
        .await?;
    }
    let content = format!("{} from the client runner", s.id);
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
        (
            "PROTEUS_STATE".into(),
            json!({ "mock": { "chunks": 6, "chunkDelayMs": 20 } }).to_string(),
        ),
        (
            "PROTEUS_TIMEOUT_MS".into(),
            settings.reply_timeout.as_millis().to_string(),
        ),
        ("PROTEUS_SCENARIO".into(), s.id.into()),
    ];
    Ok(Prepared {
        env,
        chat_id,
        token,
        content,
    })
}

fn fail(expected: &str, actual: String, repro: &str) -> Result<(), Failure> {
    Err(Failure {
        expected: vec![expected.to_string()],
        actual,
        reproducer: repro.to_string(),
    })
}

async fn judge(
    mock: &Mock<'_>,
    s: &Scenario,
    p: &Prepared,
    out: &Output,
    repro: &str,
) -> Result<Result<(), Failure>, String> {
    let got = out.describe();
    Ok(match s.judge {
        Judge::Connected => match (out.has(&Line::Connected), out.errors().is_empty()) {
            (true, true) => Ok(()),
            _ => fail("a `connected` line and no `error`", got, repro),
        },
        Judge::Refused => {
            let server = mock.refusal().await?.unwrap_or_default();
            // The server's words, or at least their start (an SDK may add its own).
            let gist: String = server.chars().take(30).collect();
            let surfaced = out
                .errors()
                .iter()
                .any(|m| !gist.is_empty() && m.contains(&gist));
            if out.has(&Line::Connected) || !surfaced {
                fail(
                    &format!(
                        "an `error` line with the server's message {server:?}, no `connected`"
                    ),
                    got,
                    repro,
                )
            } else {
                Ok(())
            }
        }
        Judge::AtMostConnects(n) => {
            let seen = mock.connects().await?;
            if seen <= n {
                Ok(())
            } else {
                fail(
                    &format!("at most {n} connection attempts"),
                    format!("{seen} attempts reached the mock; the adapter printed {got}"),
                    repro,
                )
            }
        }
        Judge::SentIsStored => {
            let stored = mock.history(&p.token, &p.chat_id).await?;
            let sent: Vec<&str> = out
                .lines
                .iter()
                .filter_map(|l| match l {
                    Line::Sent { message_id } => Some(message_id.as_str()),
                    _ => None,
                })
                .collect();
            let (status, v) = mock
                .call(
                    reqwest::Method::GET,
                    &format!("/api/chats/{}/messages?@limit=100", p.chat_id),
                    Some(&p.token),
                    None,
                )
                .await?;
            let ours = v["data"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|m| m["content"] == p.content.as_str())
                .and_then(|m| m["id"].as_str())
                .map(str::to_string);
            match (sent.as_slice(), ours) {
                ([id], Some(ours)) if *id == ours => Ok(()),
                _ => fail(
                    "one `sent` line with the id of the stored message",
                    format!(
                        "{got}; stored ({status}): {:?} of {} messages",
                        p.content,
                        stored.len()
                    ),
                    repro,
                ),
            }
        }
        Judge::ErrorSurfaced => {
            let presented = out.lines.iter().any(|l| {
                matches!(
                    l,
                    Line::Sent { .. } | Line::Final { .. } | Line::History { .. }
                )
            });
            if presented || out.errors().iter().all(|m| m.trim().is_empty()) {
                fail(
                    "an `error` line with the server's message, and no result",
                    got,
                    repro,
                )
            } else {
                Ok(())
            }
        }
        Judge::FinalIsDone | Judge::NoWrongFinal => {
            let done = mock.done_content(&p.chat_id).await?.unwrap_or_default();
            let finals = out.finals();
            let wrong = finals.iter().any(|f| *f != done);
            let silent = finals.is_empty() && out.errors().is_empty() && !out.has(&Line::Timeout);
            let strict = s.judge == Judge::FinalIsDone;
            if wrong || (strict && finals.len() != 1) || silent {
                fail(
                    &format!(
                        "{} final reply {:?}",
                        if strict { "one" } else { "no other" },
                        done
                    ),
                    got,
                    repro,
                )
            } else {
                Ok(())
            }
        }
        Judge::NoFinal => {
            if !out.finals().is_empty() || (out.errors().is_empty() && !out.has(&Line::Timeout)) {
                fail("a `timeout` (or `error`) line and no `final`", got, repro)
            } else {
                Ok(())
            }
        }
        Judge::HistoryComplete | Judge::HistoryNeverWrong => {
            // The truth, read with the faults off.
            mock.admin(reqwest::Method::DELETE, "/__admin/faults", None)
                .await?;
            let truth = mock.history(&p.token, &p.chat_id).await?;
            let listed: Vec<&Vec<String>> = out
                .lines
                .iter()
                .filter_map(|l| match l {
                    Line::History { ids } => Some(ids),
                    _ => None,
                })
                .collect();
            let right = matches!(listed.as_slice(), [ids] if **ids == truth);
            let may_refuse = s.judge == Judge::HistoryNeverWrong
                && listed.is_empty()
                && !out.errors().is_empty();
            if right || may_refuse {
                Ok(())
            } else {
                let shown = listed.first().map_or_else(
                    || got.clone(),
                    |ids| {
                        format!(
                            "{} ids (first {:?}, last {:?})",
                            ids.len(),
                            ids.first(),
                            ids.last()
                        )
                    },
                );
                fail(
                    &format!("the {} ids the server lists, oldest first", truth.len()),
                    shown,
                    repro,
                )
            }
        }
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
        let outcome = match prepare(&mock, profile, s, settings).await {
            Err(e) => Err(e),
            Ok(p) => {
                let vars: Vec<String> = p
                    .env
                    .iter()
                    .map(|(k, v)| format!("{k}={}", shell_quote(v)))
                    .collect();
                let repro = format!("{} {}", vars.join(" "), settings.command);
                let out = adapter::run(&settings.command, &p.env, settings.limit).await;
                judge(&mock, s, &p, &out, &repro)
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

fn shell_quote(v: &str) -> String {
    if v.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:".contains(c))
    {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\'', "'\\''"))
    }
}
