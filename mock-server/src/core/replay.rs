//! Replies recorded from a real server, played back (`proteus-mock
//! --replay FILE`).
//!
//! A capture (the conformance proxy's `--capture`) holds what an agent
//! answered to each message, delta by delta, with the time of each delta.
//! Loaded here as [`Recorded`] replies, keyed by the text of the message
//! they answered: when a client sends the same text again, the recorded
//! agent answers with the recorded chunks (and, with `--replay-pace`, at
//! the recorded times) instead of its script. Reading the capture format is
//! the transport's business (`proteus::replay`); this table knows no wire.

use std::collections::HashMap;
use std::time::Duration;

use super::replies::script::Plan;

/// One reply as it was recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// The chat it was recorded in (a send in the same chat is preferred).
    pub chat_id: String,
    /// The agent that answered.
    pub agent_id: String,
    /// The chunks (`contentDelta`s) in order; one chunk for a plain reply.
    pub chunks: Vec<String>,
    /// When each chunk came, from the message it answers.
    pub offsets: Vec<Duration>,
}

/// The recorded replies, by the content of the message they answered.
///
/// The same text sent several times in a capture ("hello" twice) may have
/// been answered differently each time: the n-th send of a text gets the
/// n-th reply recorded for it (in that chat when the chat has some, else
/// anywhere), and the last one again once they run out. A reset of the mock
/// starts the count again.
#[derive(Debug, Default)]
pub struct Replay {
    by_content: HashMap<String, Vec<Recorded>>,
    /// Sends served so far, by (content, chat id or `*`).
    served: std::sync::Mutex<HashMap<(String, String), usize>>,
    /// Play at the recorded times, not as fast as possible.
    pub pace: bool,
}

impl Clone for Replay {
    fn clone(&self) -> Self {
        Replay {
            by_content: self.by_content.clone(),
            served: std::sync::Mutex::default(),
            pace: self.pace,
        }
    }
}

impl Replay {
    pub fn new(pace: bool) -> Self {
        Replay {
            pace,
            ..Replay::default()
        }
    }

    /// Records that `content` was answered with `reply`; call in the order
    /// the capture saw them.
    pub fn add(&mut self, content: String, reply: Recorded) {
        self.by_content.entry(content).or_default().push(reply);
    }

    pub fn len(&self) -> usize {
        self.by_content.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_content.is_empty()
    }

    fn served(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), usize>> {
        self.served.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The replies `content` sent in `chat_id` draws from, and their key.
    fn line(&self, chat_id: &str, content: &str) -> Option<(Vec<&Recorded>, (String, String))> {
        let all = self.by_content.get(content)?;
        let here: Vec<&Recorded> = all.iter().filter(|r| r.chat_id == chat_id).collect();
        Some(if here.is_empty() {
            (all.iter().collect(), (content.to_string(), "*".to_string()))
        } else {
            (here, (content.to_string(), chat_id.to_string()))
        })
    }

    /// The reply the next send of `content` in `chat_id` would get.
    pub fn peek(&self, chat_id: &str, content: &str) -> Option<&Recorded> {
        let (line, key) = self.line(chat_id, content)?;
        let n = self.served().get(&key).copied().unwrap_or(0);
        line.get(n.min(line.len().saturating_sub(1))).copied()
    }

    /// The reply this send of `content` in `chat_id` gets; counts it.
    pub fn take(&self, chat_id: &str, content: &str) -> Option<&Recorded> {
        let (line, key) = self.line(chat_id, content)?;
        let mut served = self.served();
        let n = served.entry(key).or_insert(0);
        let pick = line.get((*n).min(line.len().saturating_sub(1))).copied();
        *n += 1;
        pick
    }

    /// Starts every count again (a reset of the mock).
    pub fn rewind(&self) {
        self.served().clear();
    }

    /// The plan that plays `reply`: its chunks, at the recorded offsets
    /// when pacing, otherwise at once.
    pub fn plan(&self, reply: &Recorded) -> Plan {
        Plan {
            chunks: reply.chunks.clone(),
            first_delay: Duration::ZERO,
            delay: Duration::ZERO,
            at: if self.pace {
                reply.offsets.clone()
            } else {
                Vec::new()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(chat: &str, text: &str) -> Recorded {
        Recorded {
            chat_id: chat.into(),
            agent_id: "a".into(),
            chunks: vec![text.into()],
            offsets: vec![Duration::from_millis(5)],
        }
    }

    fn text(r: Option<&Recorded>) -> Option<&str> {
        r.map(|r| r.chunks[0].as_str())
    }

    #[test]
    fn sends_of_one_text_get_its_replies_in_order_in_their_chat_first() {
        let mut r = Replay::new(false);
        r.add("hi".into(), reply("c1", "one"));
        r.add("hi".into(), reply("c2", "two"));
        r.add("hi".into(), reply("c2", "three"));
        assert_eq!(r.len(), 3);
        assert_eq!(
            text(r.peek("c2", "hi")),
            Some("two"),
            "peeking counts nothing"
        );
        assert_eq!(text(r.take("c2", "hi")), Some("two"));
        assert_eq!(text(r.take("c2", "hi")), Some("three"));
        assert_eq!(text(r.take("c2", "hi")), Some("three"), "the last again");
        // Another chat draws from every recording, in order.
        assert_eq!(text(r.take("c9", "hi")), Some("one"));
        assert_eq!(text(r.take("c9", "hi")), Some("two"));
        r.rewind();
        assert_eq!(
            text(r.take("c2", "hi")),
            Some("two"),
            "a reset starts again"
        );
        assert!(r.take("c1", "other").is_none());
        assert!(r.plan(&reply("c1", "x")).at.is_empty(), "unpaced");
        let paced = Replay::new(true);
        assert_eq!(
            paced.plan(&reply("c1", "x")).at,
            vec![Duration::from_millis(5)]
        );
    }
}
