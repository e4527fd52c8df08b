//! Sockets in one room that check every stream they see, for the scenarios
//! in which the sender is not the reader (`fanout`, `firehose`).

use std::time::Duration;

use proteus_conformance::client::{Client, Packet, event};
use proteus_conformance::profile::Profile;
use tokio::sync::watch;
use tokio::time::Instant;

use super::reader::Reader;
use super::schedule::Zero;
use super::setup::{SHARDS, joined};
use super::{Plan, RunError, Sockets};
use crate::metrics::{Metrics, SharedHistograms};

/// A subscriber's task: its metrics and, per stream, (the id of the message
/// it answers, when its first delta arrived).
pub type Subscriber = tokio::task::JoinHandle<(Metrics, Vec<(String, Instant)>)>;

/// Joins `plan.subscribers` sockets to `chat`, each checking streams in a
/// [`subscriber`] task; their latencies go to the returned shards.
pub async fn subscribers(
    profile: &Profile,
    token: &str,
    chat: &str,
    plan: &Plan,
    zero: &Zero,
    stop: &watch::Receiver<Option<u64>>,
    setup: &mut Metrics,
) -> Result<(Vec<Subscriber>, Vec<SharedHistograms>), RunError> {
    let shards = SharedHistograms::shards(SHARDS);
    let read_buffer = Sockets::Subscribers.read_buffer(plan);
    let mut subs = Vec::new();
    for i in 0..plan.subscribers.max(1) {
        let c = joined(profile, token, chat, read_buffer, setup).await?;
        let shard = shards[i % shards.len()].clone();
        let reader = Reader::new(zero.clone(), plan.judge());
        subs.push(subscriber(c, reader, stop.clone(), plan.grace, shard));
    }
    Ok((subs, shards))
}

/// A socket in a room that checks every stream it sees until `stop` says how
/// many streams were sent (then waits up to `grace` for them to complete).
/// Returns its metrics and, per stream, (the id of the message it answers,
/// when its first delta arrived).
fn subscriber(
    mut c: Client,
    mut reader: Reader,
    mut stop: watch::Receiver<Option<u64>>,
    grace: Duration,
    shard: SharedHistograms,
) -> Subscriber {
    tokio::spawn(async move {
        let mut m = Metrics::sharing(shard);
        let mut firsts: Vec<(String, Instant)> = Vec::new();
        let mut total: Option<u64> = None;
        let mut deadline: Option<Instant> = None;
        // One timer for the whole loop (a fresh sleep per frame costs a timer
        // registration per delta).
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        'outer: loop {
            tokio::select! {
                changed = stop.changed(), if deadline.is_none() => {
                    total = if changed.is_ok() { *stop.borrow() } else { Some(0) };
                    deadline = Some(Instant::now() + grace);
                }
                t = c.next_text() => {
                    let mut next = Some(t);
                    // Drain what is already buffered without going back to select.
                    while let Some(t) = next.take() {
                        match t {
                            Ok(t) => {
                                let at = Instant::now();
                                if reader.frame(&t, at, &mut m) {
                                    // Once per stream: which message it answers (for the driver's send times).
                                    firsts.push((responded_to(&t), at));
                                }
                                if total.is_some_and(|n| m.streams_completed >= n) {
                                    break 'outer;
                                }
                            }
                            Err(_) => { m.disconnects += 1; break 'outer; }
                        }
                        next = futures_util::FutureExt::now_or_never(c.next_text());
                    }
                }
                _ = tick.tick() => {
                    if deadline.is_some_and(|d| Instant::now() >= d) || total.is_some_and(|n| m.streams_completed >= n) {
                        break;
                    }
                }
            }
        }
        reader.finish(&mut m);
        m.flush();
        c.close().await;
        (m, firsts)
    })
}

/// `message.respondedToId` of a delta packet, read without building a `Value`.
fn responded_to(packet: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Delta<'a> {
        #[serde(borrow)]
        message: Option<Inner<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct Inner<'a> {
        #[serde(rename = "respondedToId", borrow)]
        responded_to_id: Option<std::borrow::Cow<'a, str>>,
    }
    let json = Packet::event_args(packet, event::MESSAGE_DELTA).unwrap_or_default();
    serde_json::from_str::<Delta>(json)
        .ok()
        .and_then(|d| d.message)
        .and_then(|m| m.responded_to_id)
        .map(|c| c.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::responded_to;
    use proteus_conformance::client::{encode_event, event};
    use serde_json::json;

    #[test]
    fn a_delta_names_the_message_it_answers_and_anything_else_names_none() {
        let message = json!({ "streamId": "s", "message": { "id": "m", "respondedToId": "q1" } });
        let delta = encode_event(None, event::MESSAGE_DELTA, &message);
        assert_eq!(responded_to(&delta), "q1");
        let done = encode_event(None, event::MESSAGE_DONE, &message);
        assert_eq!(responded_to(&done), "", "only a delta is read");
        let bare = encode_event(None, event::MESSAGE_DELTA, &json!({ "streamId": "s" }));
        assert_eq!(responded_to(&bare), "");
    }
}
