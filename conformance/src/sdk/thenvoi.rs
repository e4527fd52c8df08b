//! The Thenvoi (Band) profile's client scenarios: grade an *agent* built on
//! a Phoenix client or the Band SDK.
//!
//! The adapter's task is `agent`: connect as the agent it is given, join
//! its room's `chat_room` channel, and handle every `message_created` meant
//! for it the documented way (claim with `/processing`, do the work, which
//! here is one reply in the room, then `/processed`). While it runs, the
//! runner (this file's director) waits for the join in the mock's journal,
//! then posts the scenario's messages as the room's user; for the rejoin
//! scenario it first restarts the mock's realtime side. Judgement reads
//! the mock's journal (the agent's REST calls in order, its joins) and the
//! adapter's `handled` lines. Setup uses the profile's `thenvoi` object,
//! the same one the `thenvoi.*` server cases use.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::adapter::{Line, Output};
use super::judge::fail;
use super::mock::Mock;
use super::restart::REJOIN_WITHIN;
use super::scenarios::{Judge, Scenario};
use super::{Prepared, Settings};
use crate::case::Failure;
use crate::profile::Profile;

/// How long the adapter goes on after handling the last message, so that
/// what it does next (answering its own reply, say) is seen.
pub const LINGER: Duration = Duration::from_millis(700);

/// The agent and room a Thenvoi scenario was given.
#[derive(Debug, Clone, Default)]
pub(super) struct Agent {
    pub id: String,
    pub room: String,
    /// Another agent of the room (mentioned instead, in the mention scenario).
    pub other: String,
    /// The room owner's (a user's) key: the runner posts as this user.
    pub user_key: String,
}

/// Sets a Thenvoi scenario up: a fresh room of the profile's first user
/// with two of its agents; the adapter acts as the first.
pub(super) async fn prepare(
    mock: &Mock<'_>,
    profile: &Profile,
    s: &Scenario,
    settings: &Settings,
) -> Result<Prepared, String> {
    mock.admin(reqwest::Method::POST, "/__admin/reset", None)
        .await?;
    let t = profile.thenvoi.as_ref().ok_or(
        "the profile has no `thenvoi` object: Thenvoi client scenarios need a proteus-mock (or --profile with one)",
    )?;
    let user = t.users.first().ok_or("the profile's thenvoi has no user")?;
    let mine: Vec<_> = t.agents.iter().filter(|a| a.owner_id == user.id).collect();
    let (Some(agent), Some(other)) = (mine.first(), mine.get(1)) else {
        return Err("the profile's thenvoi needs two agents of its first user".into());
    };
    let (status, v) = mock
        .keyed(
            reqwest::Method::POST,
            "/api/v1/me/chats",
            &user.api_key,
            json!({}),
        )
        .await?;
    let room = v["data"]["id"]
        .as_str()
        .filter(|_| status < 300)
        .ok_or(format!("creating a room answered {status}: {v}"))?
        .to_string();
    for a in [agent, other] {
        let (status, v) = mock
            .keyed(
                reqwest::Method::POST,
                &format!("/api/v1/me/chats/{room}/participants"),
                &user.api_key,
                json!({ "participant": { "participant_id": a.id } }),
            )
            .await?;
        if status >= 300 {
            return Err(format!(
                "adding {} to the room answered {status}: {v}",
                a.id
            ));
        }
    }
    mock.faults(s.faults).await?;
    // `fail:` asks the adapter's work to fail (CLIENTS.md).
    let content = match s.judge {
        Judge::FailureReported => format!("fail: {} from the client runner", s.id),
        _ => format!("{} from the client runner", s.id),
    };
    let rejoin = s.judge == Judge::AgentRejoined;
    let extra = if rejoin {
        REJOIN_WITHIN * 2
    } else {
        Duration::ZERO
    };
    let timeout = settings.reply_timeout + extra;
    let env = vec![
        ("PROTEUS_URL".into(), mock.base.to_string()),
        ("PROTEUS_TASK".into(), s.task.name().into()),
        ("THENVOI_AGENT_ID".into(), agent.id.clone()),
        ("THENVOI_API_KEY".into(), agent.api_key.clone()),
        ("THENVOI_ROOM_ID".into(), room.clone()),
        ("PROTEUS_CONTENT".into(), content.clone()),
        ("PROTEUS_TIMEOUT_MS".into(), timeout.as_millis().to_string()),
        ("PROTEUS_LINGER_MS".into(), LINGER.as_millis().to_string()),
        ("PROTEUS_SCENARIO".into(), s.id.into()),
    ];
    Ok(Prepared {
        env,
        chat_id: room.clone(),
        token: user.api_key.clone(),
        content,
        limit: settings.limit + extra,
        agent: Some(Agent {
            id: agent.id.clone(),
            room,
            other: other.id.clone(),
            user_key: user.api_key.clone(),
        }),
    })
}

/// What the director did, read by the judge.
#[derive(Debug, Clone, Default)]
pub(super) struct Directed {
    /// The agent joined its room (before anything was posted).
    pub joined: bool,
    pub restarted: bool,
    /// Joined again after the restart, within [`REJOIN_WITHIN`].
    pub rejoined: bool,
    /// The message mentioning another agent (the mention scenario).
    pub unmentioned: Option<String>,
    /// The message for the agent, with `PROTEUS_CONTENT`.
    pub mention: Option<String>,
    pub problem: Option<String>,
}

/// Successful joins of the room's `chat_room` topic so far.
async fn joins(mock: &Mock<'_>, room: &str) -> Result<usize, String> {
    let topic = format!("chat_room:{room}");
    Ok(mock
        .journal(&format!("kind=in&event=phx_join&chatId={room}"))
        .await?
        .iter()
        .filter(|e| e["detail"]["topic"] == topic.as_str() && e["detail"]["reply"] == "ok")
        .count())
}

/// Posts `content` as the room's user, mentioning `whom`; the message id.
async fn post(mock: &Mock<'_>, a: &Agent, content: &str, whom: &str) -> Result<String, String> {
    let (status, v) = mock
        .keyed(
            reqwest::Method::POST,
            &format!("/api/v1/me/chats/{}/messages", a.room),
            &a.user_key,
            json!({ "message": { "content": content, "mentions": [{ "id": whom }] } }),
        )
        .await?;
    v["data"]["id"]
        .as_str()
        .filter(|_| status < 300)
        .map(str::to_string)
        .ok_or(format!("posting into the room answered {status}: {v}"))
}

/// Directs a scenario while the adapter runs; progress goes to `into` as it
/// happens, so it is known even when the adapter exits first.
pub(super) async fn direct(
    mock: &Mock<'_>,
    s: &Scenario,
    p: &Prepared,
    limit: Duration,
    into: &Mutex<Directed>,
) {
    if let Err(e) = steps(mock, s, p, limit, into).await {
        note(into, |d| d.problem = Some(e));
    }
}

fn note(into: &Mutex<Directed>, f: impl FnOnce(&mut Directed)) {
    f(&mut into.lock().unwrap_or_else(|e| e.into_inner()));
}

async fn steps(
    mock: &Mock<'_>,
    s: &Scenario,
    p: &Prepared,
    limit: Duration,
    into: &Mutex<Directed>,
) -> Result<(), String> {
    let Some(a) = &p.agent else { return Ok(()) };
    let pause = || tokio::time::sleep(Duration::from_millis(50));
    let deadline = Instant::now() + limit;
    let before = loop {
        let n = joins(mock, &a.room).await?;
        if n > 0 {
            break n;
        }
        if Instant::now() > deadline {
            return Ok(());
        }
        pause().await;
    };
    note(into, |d| d.joined = true);
    if s.judge == Judge::AgentRejoined {
        mock.admin(reqwest::Method::POST, "/__admin/restart", None)
            .await?;
        note(into, |d| d.restarted = true);
        let deadline = Instant::now() + REJOIN_WITHIN;
        while Instant::now() < deadline {
            if joins(mock, &a.room).await? > before {
                note(into, |d| d.rejoined = true);
                break;
            }
            pause().await;
        }
    }
    if s.judge == Judge::UnmentionedLeftAlone {
        let id = post(mock, a, "not for you: another agent is mentioned", &a.other).await?;
        note(into, |d| d.unmentioned = Some(id));
    }
    let id = post(mock, a, &p.content, &a.id).await?;
    note(into, |d| d.mention = Some(id));
    Ok(())
}

/// The agent's REST calls in the room, in order: (method, path, status).
async fn calls(mock: &Mock<'_>, room: &str) -> Result<Vec<(String, String, u64)>, String> {
    Ok(mock
        .journal(&format!("kind=rest&chatId={room}"))
        .await?
        .iter()
        .filter(|e| {
            e["detail"]["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/api/v1/agent/"))
        })
        .map(|e| {
            let d = &e["detail"];
            (
                d["method"].as_str().unwrap_or_default().to_string(),
                d["path"].as_str().unwrap_or_default().to_string(),
                d["status"].as_u64().unwrap_or(0),
            )
        })
        .collect())
}

/// The lifecycle calls among `calls`: (message id, `processing` /
/// `processed` / `failed`, status).
fn lifecycle_calls(calls: &[(String, String, u64)]) -> impl Iterator<Item = (&str, &str, u64)> {
    calls
        .iter()
        .filter(|(m, _, _)| m == "POST")
        .filter_map(|(_, path, status)| {
            let (head, step) = path.rsplit_once('/')?;
            let (_, id) = head.rsplit_once("/messages/")?;
            matches!(step, "processing" | "processed" | "failed").then_some((id, step, *status))
        })
}

fn describe(calls: &[(String, String, u64)]) -> String {
    if calls.is_empty() {
        return "no REST call by the agent".into();
    }
    const SHOWN: usize = 8;
    let mut text = calls
        .iter()
        .take(SHOWN)
        .map(|(m, p, s)| format!("{m} {p} → {s}"))
        .collect::<Vec<_>>()
        .join("; ");
    if calls.len() > SHOWN {
        text.push_str(&format!("; … {} calls in all", calls.len()));
    }
    text
}

/// Judges a Thenvoi scenario.
pub(super) async fn judge(
    mock: &Mock<'_>,
    s: &Scenario,
    p: &Prepared,
    out: &Output,
    directed: &Directed,
    repro: &str,
) -> Result<Result<(), Failure>, String> {
    if let Some(problem) = &directed.problem {
        return Err(problem.clone());
    }
    let Some(a) = &p.agent else {
        return Err("a Thenvoi scenario without its agent".into());
    };
    let got = out.describe();
    if !directed.joined {
        return Ok(fail(
            &format!(
                "the agent joins chat_room:{} (a successful phx_join)",
                a.room
            ),
            got,
            repro,
        ));
    }
    let Some(mid) = &directed.mention else {
        return Err("the runner could not post the message".into());
    };
    let calls = calls(mock, &a.room).await?;
    let seen = describe(&calls);
    let at = |suffix: &str| {
        calls.iter().position(|(m, path, st)| {
            m == "POST" && path.ends_with(&format!("/messages/{mid}/{suffix}")) && *st < 300
        })
    };
    let reply_path = format!("/api/v1/agent/chats/{}/messages", a.room);
    let replies: Vec<usize> = calls
        .iter()
        .enumerate()
        .filter(|(_, (m, path, _))| m == "POST" && *path == reply_path)
        .map(|(i, _)| i)
        .collect();
    // Refused calls about the mention or its reply (a claim on a message
    // the agent should have left alone is judged by its own scenario).
    let refused: Vec<&(String, String, u64)> = calls
        .iter()
        .filter(|(_, path, status)| {
            *status >= 400 && (path.contains(mid.as_str()) || *path == reply_path)
        })
        .collect();
    let handled = out
        .lines
        .iter()
        .any(|l| matches!(l, Line::Handled { message_id } if message_id == mid));
    // Claimed, one reply, then processed; nothing the server refused.
    let lifecycle = |what: &str| -> Result<(), Failure> {
        let (Some(claim), Some(done)) = (at("processing"), at("processed")) else {
            return fail(
                &format!("{what}: POST …/messages/{mid}/processing, the reply, then …/processed"),
                seen.clone(),
                repro,
            );
        };
        let work = replies.iter().any(|&r| claim < r && r < done);
        if !work || !refused.is_empty() || !handled {
            return fail(
                &format!(
                    "{what}: the claim before the reply, `processed` after it, no call refused, and a `handled` line for {mid}"
                ),
                format!("{seen} | adapter: {got}"),
                repro,
            );
        }
        Ok(())
    };
    Ok(match s.judge {
        Judge::ClaimedAroundWork => lifecycle("the mention is handled"),
        Judge::AgentRejoined if !directed.rejoined => fail(
            &format!(
                "after the restart the agent joins chat_room:{} again within {REJOIN_WITHIN:?}",
                a.room
            ),
            format!("no second join | {seen} | adapter: {got}"),
            repro,
        ),
        Judge::AgentRejoined => lifecycle("the mention posted after the rejoin is handled"),
        Judge::FailureReported => {
            let (claim, failed, processed) = (at("processing"), at("failed"), at("processed"));
            match (claim, failed, processed) {
                (Some(c), Some(f), None) if c < f && replies.is_empty() => Ok(()),
                _ => fail(
                    &format!(
                        "work that fails: POST …/messages/{mid}/processing, then …/failed (accepted: it needs an error), never …/processed, no reply"
                    ),
                    format!("{seen} | adapter: {got}"),
                    repro,
                ),
            }
        }
        Judge::UnmentionedLeftAlone => {
            // A claim the server refuses does no work: Band's SDK leaves the
            // mention filter to the server and tries one.
            let other = directed.unmentioned.clone().unwrap_or_default();
            let worked = lifecycle_calls(&calls).any(|(id, _, status)| id == other && status < 300);
            if worked || replies.len() != 1 {
                fail(
                    &format!(
                        "no work on {other} (it mentions another agent): no accepted claim or processed for it, exactly one reply"
                    ),
                    seen,
                    repro,
                )
            } else {
                lifecycle("the mention is handled")
            }
        }
        Judge::OwnLeftAlone => {
            let foreign = lifecycle_calls(&calls).any(|(id, _, _)| id != mid.as_str());
            if foreign || replies.len() != 1 {
                fail(
                    "exactly one reply, and no claim on any message but the mention (not on the agent's own reply)",
                    seen,
                    repro,
                )
            } else {
                lifecycle("the mention is handled")
            }
        }
        _ => return Err(format!("{} is not a Thenvoi scenario", s.id)),
    })
}

impl Mock<'_> {
    /// A Thenvoi REST call with an API key.
    pub async fn keyed(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Value,
    ) -> Result<(u16, Value), String> {
        let r = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .header("x-api-key", key)
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = r.status().as_u16();
        Ok((status, r.json().await.unwrap_or(Value::Null)))
    }
}
