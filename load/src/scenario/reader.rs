//! Reads the frames of one socket: counts deltas, checks every stream with
//! the conformance stream checker, times first and second deltas, gaps (also
//! by position), whole streams and each stream's time per delta, and judges
//! each finished stream against the run's SLOs ([`Judge`]).
//!
//! This is the generator's hot path (about a million deltas a second on one
//! connection), so a frame is classified by the client's borrowed
//! [`Packet`] reading (its type byte and event name, no allocation) and a
//! delta's payload by the checker's borrowed parse; only a frame that does
//! not fit them is parsed in full, so the checker can name the problem.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use proteus_conformance::client::{Frame, Packet, event, parse_packet};
use proteus_conformance::stream::{FastMap, RawDelta, RawDone, StreamChecker};
use tokio::time::Instant;

use super::schedule::Zero;
use crate::metrics::{Hist, LIVE, Metrics, position_bucket};
use crate::slo::{Judge, StreamTimes};

/// An open stream's timings.
#[derive(Debug, Clone, Copy)]
struct Open {
    /// When it was meant to start (`None`: a subscriber that did not send).
    intended: Option<Instant>,
    first: Instant,
    second: Option<Instant>,
    last: Instant,
    deltas: u32,
    /// Outside the measuring window: no latency samples, no verdict.
    excluded: bool,
}

/// Handles one frame of a stream reader: counts, checks, timings.
pub struct Reader {
    checker: StreamChecker,
    /// Intended send times of streams not yet seen, oldest first.
    pub pending: VecDeque<Instant>,
    /// streamId → its timings, for open streams other than `hot`.
    open: FastMap<String, Open>,
    /// The open stream of the last delta, kept out of `open`: consecutive
    /// deltas of one stream (the common case) skip the hash lookup.
    hot: Option<(String, Open)>,
    /// The run's zero, for the per-second counts and the window.
    zero: Zero,
    judge: Arc<Judge>,
    /// Deltas not yet added to [`LIVE`].
    unpublished: u64,
}

impl Reader {
    pub fn new(zero: Zero, judge: Arc<Judge>) -> Self {
        Reader {
            checker: StreamChecker::new(),
            pending: VecDeque::new(),
            open: FastMap::default(),
            hot: None,
            zero,
            judge,
            unpublished: 0,
        }
    }

    /// Adds the deltas counted since the last call to the live totals.
    fn publish(&mut self) {
        LIVE.deltas.fetch_add(self.unpublished, Ordering::Relaxed);
        self.unpublished = 0;
    }

    /// Handles one socket.io packet; true when it is the first delta of a
    /// stream not seen before.
    pub fn frame(&mut self, text: &str, now: Instant, m: &mut Metrics) -> bool {
        self.packet(text, Packet::parse(text), now, m)
    }

    /// [`frame`](Self::frame) for a packet the caller has classified
    /// already (the chat users look for their acks first).
    pub fn packet(
        &mut self,
        text: &str,
        packet: Packet<'_>,
        now: Instant,
        m: &mut Metrics,
    ) -> bool {
        m.bytes += text.len() as u64;
        let Packet::Event { name, args } = packet else {
            return false;
        };
        match name {
            event::MESSAGE_DELTA => {
                if let Some(raw) = RawDelta::parse_measured(args) {
                    self.checker.observe_delta(&raw.fields());
                    return self.delta(&raw.stream_id, now, m);
                }
            }
            event::MESSAGE_DONE => {
                if let Some(raw) = RawDone::parse(args) {
                    self.checker.observe_done(&raw.fields());
                    self.done(&raw.stream_id, now, m);
                    return false;
                }
            }
            _ => return false,
        }
        // A delta or done the borrowed parse could not read: in full.
        let Frame::Event { name, payload } = parse_packet(text) else {
            return false;
        };
        self.checker.observe(&name, &payload);
        let sid = payload["streamId"].as_str().unwrap_or_default();
        if name == event::MESSAGE_DELTA {
            return self.delta(sid, now, m);
        }
        self.done(sid, now, m);
        false
    }

    /// Whether no stream is open.
    pub fn idle(&self) -> bool {
        self.open.is_empty() && self.hot.is_none()
    }

    /// Takes stream `sid` out of the open ones.
    fn close(&mut self, sid: &str) -> Option<Open> {
        match self.hot.take() {
            Some((id, times)) if id == sid => Some(times),
            other => {
                self.hot = other;
                self.open.remove(sid)
            }
        }
    }

    fn done(&mut self, sid: &str, now: Instant, m: &mut Metrics) {
        let Some(s) = self.close(sid) else { return };
        m.streams_completed += 1;
        LIVE.completed.fetch_add(1, Ordering::Relaxed);
        self.publish();
        if s.excluded {
            return;
        }
        let micros = |d: std::time::Duration| d.as_micros() as u64;
        let gaps = s.deltas.saturating_sub(1);
        let spread = s.last - s.first;
        let times = StreamTimes {
            ttfd: s.intended.map(|at| micros(s.first - at)),
            ttsd: s
                .intended
                .zip(s.second)
                .map(|(at, second)| micros(second - at)),
            tpot: (gaps > 0).then(|| micros(spread) / u64::from(gaps)),
            stream: Some(micros(now - s.intended.unwrap_or(s.first))),
        };
        m.record(Hist::Stream, times.stream.unwrap_or_default());
        if let Some(tpot) = times.tpot {
            m.record(Hist::Tpot, tpot);
            let per_second = f64::from(gaps) / spread.as_secs_f64().max(1e-6);
            m.record(Hist::StreamRate, per_second.round() as u64);
        }
        let damaged = self
            .checker
            .counters(sid)
            .is_none_or(|c| c.lost + c.duplicates + c.out_of_order + c.content_violations > 0);
        if self.judge.good(&times, damaged) {
            m.good_streams += 1;
        }
    }

    /// Times one delta of stream `sid`; true when the stream is new.
    fn delta(&mut self, sid: &str, now: Instant, m: &mut Metrics) -> bool {
        m.deltas += 1;
        self.unpublished += 1;
        if self.unpublished == 256 {
            self.publish();
        }
        let std_now = now.into_std();
        m.first_delta.get_or_insert(std_now);
        m.last_delta = Some(std_now);
        let second = self
            .zero
            .get()
            .map_or(0, |z| now.saturating_duration_since(z).as_secs());
        m.tick(second as usize);
        if let Some((id, open)) = &mut self.hot
            && id == sid
        {
            Self::next_delta(open, now, m);
            return false;
        }
        if let Some((id, times)) = self.hot.take() {
            self.open.insert(id, times);
        }
        let (hot, new) = match self.open.remove_entry(sid) {
            Some((id, mut open)) => {
                Self::next_delta(&mut open, now, m);
                ((id, open), false)
            }
            None => {
                // Subscribers that did not send have no intended time: their
                // scenario times the first delta itself.
                let intended = self.pending.pop_front();
                let excluded = !self.judge.counts(self.zero.get(), now);
                if excluded {
                    m.excluded_streams += 1;
                } else if let Some(at) = intended {
                    m.record(Hist::Ttfd, (now - at).as_micros() as u64);
                }
                let open = Open {
                    intended,
                    first: now,
                    second: None,
                    last: now,
                    deltas: 1,
                    excluded,
                };
                ((sid.to_string(), open), true)
            }
        };
        self.hot = Some(hot);
        new
    }

    /// A second or later delta of an open stream: its gap, by position too,
    /// and for the second, the time to it.
    fn next_delta(open: &mut Open, now: Instant, m: &mut Metrics) {
        open.deltas += 1;
        if !open.excluded {
            let gap = (now - open.last).as_micros() as u64;
            m.record(Hist::Gap, gap);
            m.record(Hist::GapAt(position_bucket(open.deltas)), gap);
            if open.deltas == 2
                && let Some(at) = open.intended
            {
                m.record(Hist::Ttsd, (now - at).as_micros() as u64);
            }
        }
        if open.deltas == 2 {
            open.second = Some(now);
        }
        open.last = now;
    }

    pub fn finish(mut self, m: &mut Metrics) {
        self.publish();
        let report = self.checker.finish();
        m.checks.duplicates += report.totals.duplicates;
        m.checks.out_of_order += report.totals.out_of_order;
        m.checks.lost += report.totals.lost;
        m.checks.missing_chars += report.totals.missing_chars;
        m.checks.content_violations += report.totals.content_violations;
        m.checks.deltas += report.totals.deltas;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proteus_conformance::client::{encode_ack, encode_event};
    use serde_json::json;

    fn delta(stream: &str, n: usize) -> String {
        let text = "ab".repeat(n);
        let message = json!({ "id": "m", "chatId": "c", "content": text, "isStreaming": true });
        let payload = json!({ "chatId": "c", "streamId": stream, "messageId": "m",
                              "contentDelta": "ab", "content": text, "message": message });
        encode_event(None, event::MESSAGE_DELTA, &payload)
    }

    #[test]
    fn deltas_of_interleaved_streams_are_counted_timed_and_each_stream_is_new_once() {
        let mut reader = Reader::new(Zero::default(), Arc::default());
        let mut m = Metrics::default();
        let now = Instant::now();
        reader.pending.push_back(now);
        reader.pending.push_back(now);
        let firsts: Vec<bool> = [
            delta("s1", 1),
            delta("s2", 1),
            delta("s1", 2),
            delta("s2", 2),
        ]
        .iter()
        .map(|f| reader.frame(f, now, &mut m))
        .collect();
        assert_eq!(firsts, [true, true, false, false]);
        assert_eq!(m.deltas, 4);
        assert!(!reader.idle());
        let ack = encode_ack(0, &json!({ "data": {} }));
        assert!(!reader.frame(&ack, now, &mut m), "an ack is not a delta");
        let other = encode_event(None, event::MESSAGE, &json!({}));
        assert!(!reader.frame(&other, now, &mut m), "nor another event");
        assert_eq!(m.deltas, 4);
        reader.finish(&mut m);
        assert_eq!(
            (m.checks.lost, m.checks.duplicates, m.checks.out_of_order),
            (0, 0, 0)
        );
        assert_eq!(m.hist[&Hist::Ttfd].len(), 2);
        assert_eq!(m.hist[&Hist::Gap].len(), 2);
    }
}
