//! Judging one scenario: what the SDK reported (the adapter's lines)
//! against what the server did (the journal, the REST history).

use serde_json::Value;

use super::Prepared;
use super::adapter::{Line, Output};
use super::mock::Mock;
use super::restart::Directed;
use super::scenarios::{Judge, Scenario};
use crate::case::Failure;

pub(super) fn fail(expected: &str, actual: String, repro: &str) -> Result<(), Failure> {
    Err(Failure {
        expected: vec![expected.to_string()],
        actual,
        reproducer: repro.to_string(),
    })
}

pub(super) async fn judge(
    mock: &Mock<'_>,
    s: &Scenario,
    p: &Prepared,
    out: &Output,
    directed: &Directed,
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
            let done = mock
                .done_contents(&p.chat_id)
                .await?
                .into_iter()
                .next()
                .unwrap_or_default();
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
        Judge::FinalsAreDones => {
            let mut dones = mock.done_contents(&p.chat_id).await?;
            let mut finals: Vec<String> = out.finals().iter().map(|f| f.to_string()).collect();
            dones.sort();
            finals.sort();
            if dones.len() == 2 && finals == dones {
                Ok(())
            } else {
                fail(
                    &format!("two `final` lines, one per message:done: {dones:?}"),
                    got,
                    repro,
                )
            }
        }
        Judge::Rejoined => rejoined(out, directed, &got, repro),
        Judge::ClaimedAroundWork
        | Judge::AgentRejoined
        | Judge::UnmentionedLeftAlone
        | Judge::OwnLeftAlone
        | Judge::FailureReported => {
            return Err(format!("{} is judged by sdk::thenvoi", s.id));
        }
        Judge::SentValid => {
            let events = mock.client_events().await?;
            let problems = sent_problems(&events);
            if events.is_empty() {
                fail(
                    "the SDK's events in the mock's journal",
                    format!("the mock received no client event; {got}"),
                    repro,
                )
            } else if problems.is_empty() {
                Ok(())
            } else {
                fail(
                    "only chat:join, chat:leave and message:send, each with a valid payload and an ack callback",
                    format!(
                        "{} of {} events: {}",
                        problems.len(),
                        events.len(),
                        problems.join("; ")
                    ),
                    repro,
                )
            }
        }
    })
}

fn rejoined(out: &Output, d: &Directed, got: &str, repro: &str) -> Result<(), Failure> {
    if let Some(problem) = &d.problem {
        return fail("the restart directed on the mock", problem.clone(), repro);
    }
    if !d.restarted {
        return fail(
            "the chat joined (chat:join), then a restart",
            format!("the SDK never joined the chat; {got}"),
            repro,
        );
    }
    if !d.rejoined {
        return fail(
            &format!(
                "a chat:join of the chat within {} s of the restart",
                super::restart::REJOIN_WITHIN.as_secs()
            ),
            format!("no join after the restart (the journal); {got}"),
            repro,
        );
    }
    let posted = d.posted.as_deref().unwrap_or_default();
    if !out.received().contains(&posted) {
        return fail(
            &format!("a `received` line for the message posted after the rejoin ({posted})"),
            got.to_string(),
            repro,
        );
    }
    Ok(())
}

/// What is wrong with each client event the journal holds, one line each.
fn sent_problems(events: &[Value]) -> Vec<String> {
    let schemas = crate::schema::SchemaSet::embedded();
    let mut problems = Vec::new();
    for e in events {
        let event = e["event"].as_str().unwrap_or("?");
        let detail = &e["detail"];
        let schema = match event {
            "chat:join" | "chat:leave" | "message:send" => crate::schema::event_schema(event),
            _ => None,
        };
        let Some(schema) = schema else {
            problems.push(format!("{event:?} is not a client event of the protocol"));
            continue;
        };
        if detail["wantsAck"] == false {
            problems.push(format!("{event} sent without an ack callback"));
        }
        match detail.get("payload") {
            Some(payload) => {
                if let Err(v) = schemas.check(schema, payload) {
                    let first = v.first().map(|v| v.to_string()).unwrap_or_default();
                    problems.push(format!("{event} {payload}: {first}"));
                }
            }
            // Larger than the journal keeps whole, or not JSON: nothing to check.
            None if detail.get("payloadPrefix").is_some() => {}
            None => problems.push(format!("{event} with no readable payload")),
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::sent_problems;
    use serde_json::json;

    fn entry(event: &str, wants_ack: bool, payload: serde_json::Value) -> serde_json::Value {
        json!({ "kind": "in", "event": event, "detail": { "ack": "data", "wantsAck": wants_ack, "payload": payload } })
    }

    #[test]
    fn a_valid_acked_event_has_no_problem_and_each_fault_is_named() {
        let chat = "682f4b313981b5f54e96ea4b";
        let good = entry(
            "message:send",
            true,
            json!({ "chatId": chat, "content": "hi" }),
        );
        assert!(sent_problems(std::slice::from_ref(&good)).is_empty());
        let problems = sent_problems(&[
            good,
            entry("chat:join", false, json!({ "chatId": chat })),
            entry(
                "message:send",
                true,
                json!({ "chatId": chat, "content": 42 }),
            ),
            entry("chat:typing", true, json!({})),
        ]);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("without an ack callback"));
        assert!(problems[1].starts_with("message:send"), "{problems:?}");
        assert!(problems[2].contains("not a client event"));
    }
}
