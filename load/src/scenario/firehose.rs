//! `firehose`: `--subscribers` sockets in one room; the server's control
//! plane (`POST /__admin/firehose`) streams `--streams` × `--chunks` deltas
//! of `--size` bytes into it at `--rate` deltas per second (0 = unpaced).
//! No client send in the way: the pure delivery path. Time to first delta
//! is from the request to the first delta.

use std::sync::Arc;
use std::time::Duration;

use proteus_conformance::profile::Profile;
use serde_json::json;

use super::schedule::Zero;
use super::setup::{create_chat_with, http, user_token};
use super::subscriber::subscribers;
use super::{Outcome, Plan, Progress, Rate, RunError, Scenario, Sockets};
use crate::metrics::{Hist, Metrics};

pub const SCENARIO: Scenario = Scenario {
    name: "firehose",
    about: "--subscribers sockets in one room; the server's control plane (POST /__admin/firehose) \
            streams --streams x --chunks deltas of --size bytes into it at --rate deltas per second \
            (0 = unpaced)",
    sockets: Sockets::Subscribers,
    rate: Rate {
        counts: "deltas",
        zero_is_unpaced: true,
    },
    // Unpaced, the duration says nothing: the bar counts the deltas expected.
    progress: |plan| {
        Progress::Deltas(streams(plan) * chunks(plan) * plan.subscribers.max(1) as u64)
    },
    streams: true,
    run: |profile, plan| Box::pin(run(profile, plan)) as Outcome,
};

fn streams(plan: &Plan) -> u64 {
    plan.max_streams.unwrap_or(1).max(1)
}

fn chunks(plan: &Plan) -> u64 {
    plan.chunks.max(1) as u64
}

async fn run(profile: Arc<Profile>, plan: Plan) -> Result<Metrics, RunError> {
    let token = user_token(&profile)?;
    let chat = create_chat_with(&profile, &token, json!([])).await?;
    let mut setup = Metrics::default();
    let zero = Zero::default();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel::<Option<u64>>(None);
    let (subs, shards) =
        subscribers(&profile, &token, &chat, &plan, &zero, &stop_rx, &mut setup).await?;
    let streams = streams(&plan);
    let body = json!({ "chatId": chat, "deltas": chunks(&plan), "streams": streams,
                       "size": plan.size.max(1), "rate": plan.rate });
    let requested = zero.start_now();
    let resp = http()
        .post(format!("{}/__admin/firehose", profile.base_url))
        .json(&body)
        .send()
        .await
        .map_err(|e| RunError::Unreachable(profile.base_url.clone(), e.to_string()))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        return Err(RunError::Setup(format!(
            "POST /__admin/firehose answered {status} {text}: the firehose scenario needs a server with proteus-mock's control plane (or bench's blaster)"
        )));
    }
    // Tell the subscribers how many streams to expect once the firehose
    // should be over; they then wait up to --grace for the rest.
    let total = streams as f64 * chunks(&plan) as f64;
    if plan.rate > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(total / plan.rate)).await;
    }
    let _ = stop_tx.send(Some(streams));
    let mut all = setup;
    for s in subs {
        let (mut m, firsts) = s
            .await
            .map_err(|e| RunError::Setup(format!("a subscriber failed: {e}")))?;
        // Time to first delta: from the request to the first stream's first delta.
        if let Some((_, at)) = firsts.first() {
            m.record(
                Hist::Ttfd,
                at.saturating_duration_since(requested).as_micros() as u64,
            );
        }
        m.streams_completed = m.streams_completed.min(streams);
        all.merge(&m);
    }
    all.absorb(&shards);
    let subscribers = plan.subscribers.max(1) as u64;
    all.streams_started = streams * subscribers;
    all.streams_failed = all.streams_started.saturating_sub(all.streams_completed);
    Ok(all)
}
