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
#[derive(Debug, Default, Clone)]
pub struct Replay {
    by_content: HashMap<String, Vec<Recorded>>,
    /// Play at the recorded times, not as fast as possible.
    pub pace: bool,
}

impl Replay {
    pub fn new(pace: bool) -> Self {
        Replay {
            by_content: HashMap::new(),
            pace,
        }
    }

    /// Records that `content` was answered with `reply` (the first
    /// recording of a content in a chat wins).
    pub fn add(&mut self, content: String, reply: Recorded) {
        let all = self.by_content.entry(content).or_default();
        if !all.iter().any(|r| r.chat_id == reply.chat_id) {
            all.push(reply);
        }
    }

    pub fn len(&self) -> usize {
        self.by_content.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_content.is_empty()
    }

    /// The recorded reply to `content` sent in `chat_id`: the one recorded
    /// in that chat, else the first recorded anywhere.
    pub fn find(&self, chat_id: &str, content: &str) -> Option<&Recorded> {
        let all = self.by_content.get(content)?;
        all.iter().find(|r| r.chat_id == chat_id).or(all.first())
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

    #[test]
    fn a_send_finds_the_reply_of_its_own_chat_first_then_any() {
        let mut r = Replay::new(false);
        r.add("hi".into(), reply("c1", "one"));
        r.add("hi".into(), reply("c2", "two"));
        r.add("hi".into(), reply("c2", "ignored: c2 has one"));
        assert_eq!(r.len(), 2);
        assert_eq!(r.find("c2", "hi").map(|r| &r.chunks[0][..]), Some("two"));
        assert_eq!(r.find("c9", "hi").map(|r| &r.chunks[0][..]), Some("one"));
        assert!(r.find("c1", "other").is_none());
        assert!(r.plan(&reply("c1", "x")).at.is_empty(), "unpaced");
        let paced = Replay::new(true);
        assert_eq!(
            paced.plan(&reply("c1", "x")).at,
            vec![Duration::from_millis(5)]
        );
    }
}
