//! `connect`: `--connections` sockets opened at `--rate` per second; the
//! handshake (websocket open → `success`) is timed. No stream is started,
//! so a run without completed streams is not a failure here.

use std::sync::Arc;

use proteus_conformance::profile::Profile;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::schedule::{offset, start_metronome};
use super::setup::{SHARDS, open, user_token};
use super::{Outcome, Plan, Progress, Rate, RunError, Scenario, Sockets};
use crate::metrics::{Metrics, SharedHistograms};

pub const SCENARIO: Scenario = Scenario {
    name: "connect",
    about: "open --connections sockets at --rate per second; measure the handshake",
    sockets: Sockets::Connections,
    rate: Rate {
        counts: "connections",
        zero_is_unpaced: false,
    },
    progress: |plan| Progress::Elapsed(plan.duration),
    streams: false,
    run: |profile, plan| Box::pin(run(profile, plan)) as Outcome,
};

async fn run(profile: Arc<Profile>, plan: Plan) -> Result<Metrics, RunError> {
    let token = user_token(&profile)?;
    let read_buffer = SCENARIO.sockets.read_buffer(&plan);
    let start = Instant::now();
    let mut tasks = Vec::new();
    let shards = SharedHistograms::shards(SHARDS);
    let (rate, ramp_up, end) = (plan.rate, plan.ramp_up, start + plan.duration);
    let times = (0..plan.connections.max(1) as u64)
        .map(move |i| (i, start + offset(rate, ramp_up, i)))
        .take_while(move |(_, at)| *at <= end);
    let (tx, mut due) = mpsc::unbounded_channel();
    start_metronome(times, move |i, _| tx.send(i as usize).is_ok())?;
    while let Some(i) = due.recv().await {
        let (profile, token) = (profile.clone(), token.clone());
        let shard = shards[i % shards.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut m = Metrics::sharing(shard);
            let opened = open(&profile, &token, read_buffer, &mut m).await;
            m.flush();
            match opened {
                Ok(c) => Ok((m, Some(c))),
                Err(RunError::Refused(e)) => Err(RunError::Refused(e)),
                Err(_) => {
                    m.errors += 1;
                    Ok((m, None))
                }
            }
        }));
    }
    let mut total = Metrics::default();
    let mut held = Vec::new();
    for t in tasks {
        let (m, c) = t
            .await
            .map_err(|e| RunError::Setup(format!("a connection task failed: {e}")))??;
        total.merge(&m);
        held.extend(c);
    }
    total.absorb(&shards);
    if held.is_empty() {
        return Err(RunError::Unreachable(
            profile.base_url.clone(),
            "no connection succeeded".into(),
        ));
    }
    for c in held {
        c.close().await;
    }
    Ok(total)
}
