//! `fanout`: `--subscribers` sockets in one room and a driver that starts
//! streams into it at `--rate` per second. Every subscriber checks every
//! stream; time to first delta is from the driver's intended send of the
//! message a stream answers (matched through the send's ack).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proteus_conformance::client::{Frame, Packet, ack_data, event, parse_packet};
use proteus_conformance::profile::Profile;
use tokio::time::Instant;

use super::schedule::{Zero, arrivals};
use super::setup::{create_chat, open, send_body, user_token};
use super::subscriber::subscribers;
use super::{Outcome, Plan, Progress, Rate, RunError, Scenario, Sockets};
use crate::metrics::{Hist, Metrics};

pub const SCENARIO: Scenario = Scenario {
    name: "fanout",
    about: "--subscribers sockets in one room; streams into it at --rate per second",
    sockets: Sockets::Subscribers,
    rate: Rate {
        counts: "streams",
        zero_is_unpaced: false,
    },
    progress: |plan| Progress::Elapsed(plan.duration),
    streams: true,
    run: |profile, plan| Box::pin(run(profile, plan)) as Outcome,
};

/// The id of the message each stream answers → its intended send time.
type Intended = Mutex<HashMap<String, Instant>>;

async fn run(profile: Arc<Profile>, plan: Plan) -> Result<Metrics, RunError> {
    let token = user_token(&profile)?;
    let chat = create_chat(&profile, &token).await?;
    let mut setup = Metrics::default();
    let intended: Arc<Intended> = Arc::default();
    let zero = Zero::default();
    // None while the driver sends; then how many streams it sent.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel::<Option<u64>>(None);
    let (subs, shards) =
        subscribers(&profile, &token, &chat, &plan, &zero, &stop_rx, &mut setup).await?;
    let read_buffer = SCENARIO.sockets.read_buffer(&plan);
    let mut driver = open(&profile, &token, read_buffer, &mut setup).await?;
    // The schedule starts once every socket is in: joining takes time that
    // is not the server's answer to a send.
    let start = zero.start_now();
    let mut sent = 0u64;
    let mut acks: HashMap<u64, Instant> = HashMap::new();
    let mut due = arrivals(&plan, start)?;
    while let Some((i, at)) = due.recv().await {
        let id = driver
            .emit_with_ack(event::MESSAGE_SEND, &send_body(&profile, &chat, &plan, i))
            .await
            .map_err(|e| RunError::Setup(format!("the driver's send failed: {e}")))?;
        acks.insert(id, at);
        sent += 1;
        // Read what is already there without waiting.
        while let Ok(Ok(t)) =
            tokio::time::timeout(Duration::from_millis(0), driver.next_text()).await
        {
            note_ack(&t, &mut acks, &intended);
        }
    }
    let until = Instant::now() + plan.grace;
    while !acks.is_empty() && Instant::now() < until {
        if let Ok(Ok(t)) =
            tokio::time::timeout(Duration::from_millis(100), driver.next_text()).await
        {
            note_ack(&t, &mut acks, &intended);
        }
    }
    let _ = stop_tx.send(Some(sent));
    let mut total = setup;
    for s in subs {
        let (mut m, firsts) = s
            .await
            .map_err(|e| RunError::Setup(format!("a subscriber failed: {e}")))?;
        // Time to first delta from each stream's intended send time.
        let table = intended.lock().unwrap_or_else(|p| p.into_inner());
        for (trigger, at) in firsts {
            if let Some(t0) = table.get(&trigger) {
                m.record(
                    Hist::Ttfd,
                    at.saturating_duration_since(*t0).as_micros() as u64,
                );
            }
        }
        drop(table);
        m.streams_completed = m.streams_completed.min(sent);
        total.merge(&m);
    }
    total.absorb(&shards);
    let subscribers = plan.subscribers.max(1) as u64;
    total.streams_failed = (sent * subscribers).saturating_sub(total.streams_completed);
    total.streams_started = sent * subscribers;
    driver.close().await;
    Ok(total)
}

/// Maps an ack's message id to the intended send time of its emit. The
/// driver's socket is in the room too (a send joins it), so most of what it
/// reads is deltas: only acks are parsed.
fn note_ack(text: &str, acks: &mut HashMap<u64, Instant>, intended: &Intended) {
    let Packet::Ack { id, .. } = Packet::parse(text) else {
        return;
    };
    let Some(at) = acks.remove(&id) else {
        return;
    };
    if let Frame::Ack { payload, .. } = parse_packet(text)
        && let Some(mid) = ack_data(&payload)
            .ok()
            .and_then(|data| data["message"]["id"].as_str())
    {
        intended
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(mid.to_string(), at);
    }
}
