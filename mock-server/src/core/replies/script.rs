//! Scripted agents: what a reply says and how it is cut into deltas.
//!
//! Everything here is a pure function of the script, the per-message override
//! (`state.mock`) and the triggering content, so the same seed gives the same
//! stream byte for byte. The task that emits the plan lives in
//! [`super::play`].

use std::time::Duration;

use serde_json::{Map, Value};

use crate::model::Script;

/// The largest stream a single message may ask for.
pub const MAX_CHUNKS: usize = 1_000_000;

/// The longest a reply may take from the message to its last delta.
pub const MAX_REPLY: Duration = Duration::from_secs(600);

/// Checks, before the message is stored, that the reply `script` would give
/// to `content` stays within [`MAX_CHUNKS`] deltas and [`MAX_REPLY`]: a
/// `chunkSize: 1` with a 1 MB text, or a million chunks a minute apart,
/// are refused with the limit named rather than held in memory for hours.
pub fn check_bounds(script: &Script, content: &str, agent_name: &str) -> Result<(), String> {
    let chunks = match script.chunks {
        Some(n) => n,
        None => {
            let template = script.text.chars().count();
            let uses = script.text.matches("{{content}}").count();
            let names = script.text.matches("{{agentName}}").count();
            let len =
                template + uses * content.chars().count() + names * agent_name.chars().count();
            // Seeded chunk sizes vary down to half the size.
            let smallest = if script.seed == 0 {
                script.chunk_size.max(1)
            } else {
                (script.chunk_size / 2).max(1)
            };
            len.div_ceil(smallest).max(1)
        }
    };
    if chunks > MAX_CHUNKS {
        return Err(format!(
            "the reply would stream about {chunks} deltas; a reply has at most {MAX_CHUNKS} (raise state.mock.chunkSize or set state.mock.chunks)"
        ));
    }
    let total = Duration::from_millis(script.first_chunk_delay_ms)
        + Duration::from_millis(script.chunk_delay_ms).saturating_mul(chunks as u32);
    if total > MAX_REPLY {
        return Err(format!(
            "the reply would take {} s; a reply takes at most {} s (lower state.mock.chunkDelayMs or chunks)",
            total.as_secs(),
            MAX_REPLY.as_secs()
        ));
    }
    Ok(())
}

/// A reply, ready to emit.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub chunks: Vec<String>,
    pub first_delay: Duration,
    pub delay: Duration,
    /// When set, chunk `i` goes at `at[i]` from the start instead
    /// (a recorded reply played at its recorded pace).
    pub at: Vec<Duration>,
}

impl Plan {
    /// When chunk `i` goes, from the start of the reply.
    pub fn offset(&self, i: usize) -> Duration {
        match self.at.get(i) {
            Some(at) => *at,
            None => self.first_delay + self.delay * i as u32,
        }
    }

    pub fn text(&self) -> String {
        self.chunks.concat()
    }
}

pub use crate::seeded::SplitMix;

const FILLER: &[&str] = &[
    "lorem", "ipsum", "dolor", "sit", "amet", "stream", "delta", "chunk", "proteus", "mock",
];

/// Applies `state.mock` (if any) to the agent's script. A malformed override
/// is an error the sender sees, never ignored.
pub fn effective(script: &Script, state: &Map<String, Value>) -> Result<Script, String> {
    let Some(over) = state.get("mock") else {
        return Ok(script.clone());
    };
    let over = over
        .as_object()
        .ok_or("state.mock must be an object like {\"chunks\": 10, \"chunkDelayMs\": 0}")?;
    let mut s = script.clone();
    for (k, v) in over {
        let num = || {
            v.as_u64()
                .ok_or_else(|| format!("state.mock.{k} must be a non-negative integer"))
        };
        match k.as_str() {
            "text" => {
                s.text = v
                    .as_str()
                    .ok_or("state.mock.text must be a string")?
                    .to_string()
            }
            "chunks" => s.chunks = Some(num()? as usize),
            "chunkSize" => s.chunk_size = num()? as usize,
            "chunkDelayMs" => s.chunk_delay_ms = num()?,
            "firstChunkDelayMs" => s.first_chunk_delay_ms = num()?,
            "seed" => s.seed = num()?,
            other => {
                return Err(format!(
                    "state.mock.{other} is not a script key (use text, chunks, chunkSize, chunkDelayMs, firstChunkDelayMs, seed)"
                ));
            }
        }
    }
    if s.chunk_size == 0 || s.chunks == Some(0) {
        return Err("state.mock: chunkSize and chunks must be at least 1".into());
    }
    if s.chunks.is_some_and(|n| n > MAX_CHUNKS) {
        return Err(format!("state.mock.chunks is at most {MAX_CHUNKS}"));
    }
    if s.chunk_delay_ms > 60_000 || s.first_chunk_delay_ms > 600_000 {
        return Err(
            "state.mock delays are at most 60000 ms between chunks and 600000 ms before the first"
                .into(),
        );
    }
    Ok(s)
}

/// Renders the reply text and cuts it into chunks.
pub fn plan(script: &Script, content: &str, agent_name: &str) -> Plan {
    let mut text = script
        .text
        .replace("{{content}}", content)
        .replace("{{agentName}}", agent_name);
    let mut rng = SplitMix::new(script.seed);
    let chars: Vec<char> = match script.chunks {
        Some(n) => {
            let mut len = text.chars().count();
            let mut i = script.seed as usize;
            while len < n {
                let word = FILLER[i % FILLER.len()];
                text.push(' ');
                text.push_str(word);
                len += word.len() + 1;
                i += 1;
            }
            text.chars().collect()
        }
        None => text.chars().collect(),
    };
    let sizes: Vec<usize> = match script.chunks {
        Some(n) => {
            let (base, extra) = (chars.len() / n, chars.len() % n);
            let mut sizes = vec![base; n];
            // Spread the remainder: the first `extra` chunks, or seeded ones.
            let mut order: Vec<usize> = (0..n).collect();
            if script.seed != 0 {
                for i in (1..n).rev() {
                    order.swap(i, rng.range(0, i));
                }
            }
            for &i in order.iter().take(extra) {
                sizes[i] += 1;
            }
            sizes
        }
        None => {
            let cs = script.chunk_size.max(1);
            let mut sizes = Vec::new();
            let mut left = chars.len();
            while left > 0 {
                let size = if script.seed == 0 {
                    cs
                } else {
                    rng.range((cs / 2).max(1), cs + cs / 2)
                };
                sizes.push(size.min(left));
                left -= size.min(left);
            }
            if sizes.is_empty() {
                sizes.push(0); // an empty reply still streams one (empty) delta
            }
            sizes
        }
    };
    let mut chunks = Vec::with_capacity(sizes.len());
    let mut at = 0;
    for size in sizes {
        chunks.push(chars[at..at + size].iter().collect());
        at += size;
    }
    Plan {
        chunks,
        first_delay: Duration::from_millis(script.first_chunk_delay_ms),
        delay: Duration::from_millis(script.chunk_delay_ms),
        at: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(seed: u64, chunks: Option<usize>) -> Script {
        Script {
            text: "You said: {{content}}".into(),
            chunk_size: 4,
            chunks,
            first_chunk_delay_ms: 0,
            chunk_delay_ms: 0,
            seed,
        }
    }

    #[test]
    fn same_seed_same_stream() {
        let a = plan(&script(7, None), "hello world, again", "Echo");
        let b = plan(&script(7, None), "hello world, again", "Echo");
        assert_eq!(a, b);
        assert_eq!(a.text(), "You said: hello world, again");
        let c = plan(&script(8, None), "hello world, again", "Echo");
        assert_ne!(a.chunks, c.chunks, "another seed cuts elsewhere");
        assert_eq!(c.text(), a.text());
    }

    #[test]
    fn exact_chunk_count_extends_short_text() {
        let p = plan(&script(3, Some(10_000)), "hi", "Echo");
        assert_eq!(p.chunks.len(), 10_000);
        assert!(p.chunks.iter().all(|c| !c.is_empty()));
        assert!(p.text().starts_with("You said: hi "));
    }

    #[test]
    fn chunks_split_on_characters_not_bytes() {
        let p = plan(
            &Script {
                text: "Grüße 世界 🙂".into(),
                ..script(0, None)
            },
            "",
            "Echo",
        );
        assert_eq!(p.text(), "Grüße 世界 🙂");
        assert_eq!(p.chunks[0], "Grüß");
    }

    #[test]
    fn overrides_are_validated() {
        let s = script(0, None);
        let over = |v: Value| effective(&s, v.as_object().expect("object"));
        assert_eq!(
            over(serde_json::json!({"mock": {"chunks": 5, "chunkDelayMs": 1}}))
                .expect("valid")
                .chunks,
            Some(5)
        );
        assert!(over(serde_json::json!({"mock": {"chunks": "five"}})).is_err());
        assert!(
            over(serde_json::json!({"mock": {"speed": 1}}))
                .unwrap_err()
                .contains("not a script key")
        );
        assert!(over(serde_json::json!({"mock": 3})).is_err());
        assert!(over(serde_json::json!({"mock": {"chunks": 0}})).is_err());
    }
}
