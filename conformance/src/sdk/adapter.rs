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
    /// The agent handled a message meant for it (the Thenvoi `agent` task):
    /// claimed, worked, marked processed.
    #[serde(rename_all = "camelCase")]
    Handled { message_id: String },
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

/// The most of an adapter's stdout (and of its stderr) kept, in bytes; the
/// rest is read and dropped, so the adapter never blocks on a full pipe.
pub const MAX_OUTPUT: usize = 8 << 20;

/// Reads `stream` to its end, keeping at most [`MAX_OUTPUT`] bytes; true
/// when some were dropped.
async fn bounded(stream: Option<impl tokio::io::AsyncRead + Unpin>) -> (String, bool) {
    let Some(mut stream) = stream else {
        return (String::new(), false);
    };
    let (mut kept, mut cut) = (Vec::new(), false);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = MAX_OUTPUT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                cut |= n > room;
            }
        }
    }
    (String::from_utf8_lossy(&kept).into_owned(), cut)
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
    let (out, err) = (child.stdout.take(), child.stderr.take());
    let read_all = async {
        // Both at once: an adapter that fills the stderr pipe while we
        // wait for stdout's end would otherwise block until the limit.
        let ((o, o_cut), (mut e, e_cut)) = tokio::join!(bounded(out), bounded(err));
        if o_cut {
            e.push_str(&format!(" [stdout beyond {MAX_OUTPUT} bytes was not read]"));
        }
        if e_cut {
            e.push_str(&format!(" [stderr beyond {MAX_OUTPUT} bytes was not read]"));
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
