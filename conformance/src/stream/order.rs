//! Rebuilding a stream's text from deltas that come late, twice or never.
//!
//! This is the one subtle algorithm of the checker: the rule `content ==
//! previous content + contentDelta`, read four ways (in order, duplicate,
//! held back ahead of a hole, content mismatch), and the counts the load
//! generator reports as exact. Apart from the frame handling and id
//! bookkeeping of `mod.rs`, it reads as a whole: `advance` places one delta
//! or holds it back, `settle` declares the holes lost once the reorder
//! window is full or the stream ends.

use super::{Rule, Stream, StreamChecker, Violation, short};

/// A delta held back because it arrived ahead of a missing one.
#[derive(Debug)]
pub(super) struct Ahead {
    content: String,
    delta_len: usize,
    frame: usize,
}

impl StreamChecker {
    /// Applies one delta to the running text, noting each rule it breaks.
    ///
    /// The running text is the concatenation of `contentDelta`s, as a client
    /// builds it: a delta whose `content` is simply wrong still contributes its
    /// chunk, so one bad frame is reported once and not as a cascade.
    pub(super) fn advance(
        s: &mut Stream,
        delta: &str,
        content: &str,
        frame: usize,
        found: &mut Vec<(Rule, String, String)>,
    ) {
        let base = s.text.len();
        let extends = content.len() == base + delta.len()
            && content.starts_with(&s.text)
            && content.ends_with(delta);
        if extends {
            s.text.push_str(delta);
            s.boundaries.push(s.text.len());
            s.counters.deltas += 1;
            // A late delta may make held-back ones contiguous: they were reordered.
            while let Some(entry) = s.ahead.first_entry() {
                let a = entry.get();
                if a.content.len() - a.delta_len != s.text.len() || !a.content.starts_with(&s.text)
                {
                    break;
                }
                let a = entry.remove();
                s.text = a.content;
                s.boundaries.push(s.text.len());
                s.counters.deltas += 1;
                s.counters.out_of_order += 1;
                found.push((
                    Rule::OutOfOrder,
                    format!(
                        "the delta ending at byte {} before the one ending at byte {}",
                        base + delta.len(),
                        s.text.len()
                    ),
                    format!(
                        "it arrived after (frame {} came before frame {frame})",
                        a.frame
                    ),
                ));
            }
            return;
        }
        let repeats = content.len() <= base
            && s.text.starts_with(content)
            && content.ends_with(delta)
            && s.boundaries.binary_search(&content.len()).is_ok();
        if repeats
            || s.ahead
                .get(&content.len())
                .is_some_and(|a| a.content == content)
        {
            s.counters.duplicates += 1;
            found.push((
                Rule::Duplicate,
                "each delta once".into(),
                format!("a repeat of the delta ending at byte {}", content.len()),
            ));
            return;
        }
        let ahead = content.len() > base + delta.len()
            && content.starts_with(&s.text)
            && content.ends_with(delta);
        if ahead {
            s.ahead.insert(
                content.len(),
                Ahead {
                    content: content.to_string(),
                    delta_len: delta.len(),
                    frame,
                },
            );
            return;
        }
        s.counters.content_violations += 1;
        found.push((
            Rule::ContentMismatch,
            format!(
                "content = previous content + contentDelta = {}",
                short(&format!("{}{delta}", s.text))
            ),
            short(content),
        ));
        s.text.push_str(delta);
        s.boundaries.push(s.text.len());
        s.counters.deltas += 1;
    }

    /// Declares the holes in front of held-back deltas lost and resumes after them.
    pub(super) fn settle(s: &mut Stream, stream_id: &str, violations: &mut Vec<Violation>) {
        while let Some((_, a)) = s.ahead.pop_first() {
            let start = a.content.len() - a.delta_len;
            if start != s.text.len() {
                s.counters.lost += 1;
                s.counters.missing_chars += missing_chars(&a.content, s.text.len(), start);
                violations.push(Violation {
                    rule: Rule::Gap,
                    stream_id: stream_id.to_string(),
                    frame: a.frame,
                    expected: format!("the delta that continues the text at byte {}", s.text.len()),
                    actual: format!("next text delivered starts at byte {start}"),
                });
            }
            s.text = a.content;
            s.boundaries.push(s.text.len());
            s.counters.deltas += 1;
        }
    }
}

/// The characters of `content` between byte `from` and byte `to` (a hole);
/// 0 when those are not character boundaries (a content violation, counted
/// as such).
pub(super) fn missing_chars(content: &str, from: usize, to: usize) -> u64 {
    content
        .get(from..to)
        .map_or(0, |hole| hole.chars().count() as u64)
}
