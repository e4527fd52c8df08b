//! The adapter contract: how the runner asks a client SDK to do one task,
//! and reads what the SDK gave back (docs/CLIENTS.md is its user-facing
//! statement; keep the two together).
//!
//! The runner starts the user's command once per scenario with the task in
//! environment variables, and reads JSON lines from its standard output,
//! one per thing the SDK reported (`connected`, `sent`, `final`, `error`,
//! `timeout`, `history`, `received`). Anything else on stdout is kept and shown, never
//! guessed at; stderr is kept for the report.

use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::AsyncReadExt;

/// One line an adapter prints.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "event", rename_all = "camelCase", deny_unknown_fields)]
pub enum Line {
    /// The SDK says it is connected and authenticated.
    Connected,
    /// The SDK sent a message; the id it returned.
    #[serde(rename_all = "camelCase")]
    Sent { message_id: String },
    /// The SDK presented a reply as complete: its text as the SDK shows it.
    #[serde(rename_all = "camelCase")]
    Final {
        content: String,
        #[serde(default)]
        message_id: Option<String>,
    },
    /// The SDK surfaced an error; its message (and HTTP status, if any).
    Error {
        message: String,
        #[serde(default)]
        status: Option<u16>,
    },
    /// The SDK gave up waiting (a reply that never completed).
    Timeout,
    /// The SDK listed a chat's history: message ids, oldest first.
    History { ids: Vec<String> },
    /// The SDK delivered a message that arrived in the chat (the `rejoin`
    /// task): its id, and its text when the adapter gives it.
    #[serde(rename_all = "camelCase")]
    Received {
        message_id: String,
        #[serde(default)]
        content: Option<String>,
    },
}

/// What one run of the adapter produced.
#[derive(Debug, Clone, Default)]
pub struct Output {
    pub lines: Vec<Line>,
    /// stdout lines that were not a [`Line`] (shown in failures).
    pub unreadable: Vec<String>,
    pub stderr: String,
    pub exit: Option<i32>,
    /// Killed at the runner's limit.
    pub killed: bool,
}

impl Output {
    pub fn finals(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter_map(|l| match l {
                Line::Final { content, .. } => Some(content.as_str()),
                _ => None,
            })
            .collect()
    }

    pub fn errors(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter_map(|l| match l {
                Line::Error { message, .. } => Some(message.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The ids of the messages the SDK delivered (`received` lines).
    pub fn received(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter_map(|l| match l {
                Line::Received { message_id, .. } => Some(message_id.as_str()),
                _ => None,
            })
            .collect()
    }

    pub fn has(&self, line: &Line) -> bool {
        self.lines.contains(line)
    }

    /// What the adapter printed, for a failure's "actual".
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.lines.iter().map(|l| format!("{l:?}")).collect();
        parts.extend(
            self.unreadable
                .iter()
                .map(|u| format!("unreadable line {u:?}")),
        );
        if self.killed {
            parts.push("killed at the runner's time limit".into());
        }
        if parts.is_empty() {
            parts.push(format!("nothing (exit {:?})", self.exit));
        }
        let mut text = parts.join("; ");
        if !self.stderr.trim().is_empty() {
            let tail: String = self
                .stderr
                .chars()
                .rev()
                .take(400)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            text.push_str(&format!(" | stderr: {}", tail.trim()));
        }
        text
    }
}

/// Runs `command` (through `sh -c`) with `env`; kills it after `limit`.
pub async fn run(command: &str, env: &[(String, String)], limit: Duration) -> Output {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Output {
                stderr: format!("cannot start {command:?}: {e}"),
                ..Output::default()
            };
        }
    };
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    let read_all = async {
        let (mut o, mut e) = (String::new(), String::new());
        if let Some(s) = out.as_mut() {
            let _ = s.read_to_string(&mut o).await;
        }
        if let Some(s) = err.as_mut() {
            let _ = s.read_to_string(&mut e).await;
        }
        (o, e, child.wait().await.ok().and_then(|s| s.code()))
    };
    let (stdout, stderr, exit, killed) = match tokio::time::timeout(limit, read_all).await {
        Ok((o, e, code)) => (o, e, code, false),
        Err(_) => (String::new(), String::new(), None, true),
    };
    let mut output = Output {
        stderr,
        exit,
        killed,
        ..Output::default()
    };
    for raw in stdout.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match serde_json::from_str::<Line>(raw) {
            Ok(line) => output.lines.push(line),
            Err(_) => output.unreadable.push(raw.chars().take(200).collect()),
        }
    }
    output
}

#[cfg(test)]
mod tests {
    use super::Line;

    #[test]
    fn the_lines_of_the_contract_parse_and_others_do_not() {
        let l: Line =
            serde_json::from_str(r#"{"event":"final","content":"hi","messageId":"m"}"#).unwrap();
        assert_eq!(
            l,
            Line::Final {
                content: "hi".into(),
                message_id: Some("m".into())
            }
        );
        let l: Line = serde_json::from_str(r#"{"event":"history","ids":["a","b"]}"#).unwrap();
        assert_eq!(
            l,
            Line::History {
                ids: vec!["a".into(), "b".into()]
            }
        );
        assert!(serde_json::from_str::<Line>(r#"{"event":"done"}"#).is_err());
        assert!(
            serde_json::from_str::<Line>(r#"{"event":"sent"}"#).is_err(),
            "messageId required"
        );
    }
}
