//! `chat`: `--users` sockets, each in its own chat with the streaming
//! agent; streams start at `--rate` per second, round-robin over the users.
//! Each user reads its own replies, so time to first delta is measured by
//! the reader from the stream's intended start.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use proteus_conformance::client::{Frame, Packet, ack_data, event, parse_packet};
use proteus_conformance::profile::Profile;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::reader::Reader;
use super::schedule::{Zero, schedule, start_metronome};
use super::setup::{SHARDS, create_chat, open, send_body, user_token};
use super::{Outcome, Plan, Progress, Rate, RunError, Scenario, Sockets};
use crate::metrics::{Hist, Metrics, SharedHistograms};

pub const SCENARIO: Scenario = Scenario {
    name: "chat",
    about: "--users sockets, each in its own chat with the streaming agent; streams at --rate per second",
    sockets: Sockets::Users,
    rate: Rate {
        counts: "streams",
        zero_is_unpaced: false,
    },
    progress: |plan| Progress::Elapsed(plan.duration),
    streams: true,
    run: |profile, plan| Box::pin(run(profile, plan)) as Outcome,
};

async fn run(profile: Arc<Profile>, plan: Plan) -> Result<Metrics, RunError> {
    let token = user_token(&profile)?;
    let read_buffer = SCENARIO.sockets.read_buffer(&plan);
    let mut setup = Metrics::default();
    let mut users = Vec::new();
    for _ in 0..plan.users.max(1) {
        let chat = create_chat(&profile, &token).await?;
        let client = open(&profile, &token, read_buffer, &mut setup).await?;
        users.push((chat, client));
    }
    let zero = Zero::default();
    // Each user task says when it is running; the schedule starts after all
    // are (spawning 1,000 tasks takes the runtime tens of milliseconds, which
    // the first sends would otherwise count as the server's latency).
    let ready = Arc::new(tokio::sync::Semaphore::new(0));
    let mut senders = Vec::new();
    let mut tasks = Vec::new();
    let shards = SharedHistograms::shards(SHARDS);
    for (i, (chat, client)) in users.into_iter().enumerate() {
        let (tx, rx) = mpsc::unbounded_channel::<(u64, Instant)>();
        senders.push(tx);
        let user = User {
            profile: profile.clone(),
            plan: plan.clone(),
            chat,
            client,
            zero: zero.clone(),
            ready: ready.clone(),
        };
        let shard = shards[i % shards.len()].clone();
        tasks.push(tokio::spawn(user.run(rx, shard)));
    }
    let users = u32::try_from(senders.len()).unwrap_or(u32::MAX);
    let _ = ready.acquire_many(users).await;
    tokio::task::yield_now().await;
    // The metronome hands each send straight to its user's task; the users'
    // channels close when it is done.
    plan.wait_for_start().await;
    let start = zero.start_now();
    let users = senders.len();
    start_metronome(schedule(&plan, start), move |i, at| {
        // A user gone (its socket closed) misses its sends; the others go on.
        let _ = senders[i as usize % users].send((i, at));
        true
    })?;
    let mut total = setup;
    for t in tasks {
        total.merge(
            &t.await
                .map_err(|e| RunError::Setup(format!("a user task failed: {e}")))?,
        );
    }
    total.absorb(&shards);
    Ok(total)
}

/// One virtual user: its socket in its own chat.
struct User {
    profile: Arc<Profile>,
    plan: Plan,
    chat: String,
    client: proteus_conformance::client::Client,
    zero: Zero,
    ready: Arc<tokio::sync::Semaphore>,
}

impl User {
    /// Sends what the metronome hands it, reads its replies and acks, and
    /// once the schedule is over waits up to `--grace` for the rest.
    async fn run(
        mut self,
        mut due: mpsc::UnboundedReceiver<(u64, Instant)>,
        shard: SharedHistograms,
    ) -> Metrics {
        let mut m = Metrics::sharing(shard);
        // The grace period's end, armed once the schedule is over (a
        // periodic tick here woke 1,000 idle users 20 times a second).
        let grace_end = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(grace_end);
        let mut reader = Reader::new(self.zero.clone(), self.plan.judge());
        self.ready.add_permits(1);
        let mut acks: HashMap<u64, Instant> = HashMap::new();
        let mut sent = 0u64;
        let mut closed = false;
        let mut deadline: Option<Instant> = None;
        loop {
            // A reply may end before its ack (a server that acks late):
            // the user is done when both are in.
            let finished = closed && reader.pending.is_empty() && reader.idle() && acks.is_empty();
            if finished || deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            tokio::select! {
                cmd = due.recv(), if !closed => match cmd {
                    Some((i, intended)) => {
                        let body = send_body(&self.profile, &self.chat, &self.plan, i);
                        // From before the write, as Artillery and a client's
                        // own timer see it.
                        let emitted = Instant::now();
                        match self.client.emit_with_ack(event::MESSAGE_SEND, &body).await {
                            Ok(id) => {
                                acks.insert(id, emitted);
                                reader.pending.push_back(intended);
                                m.streams_started += 1;
                                sent += 1;
                            }
                            Err(_) => m.errors += 1,
                        }
                    }
                    None => {
                        closed = true;
                        let end = Instant::now() + self.plan.grace;
                        deadline = Some(end);
                        grace_end.as_mut().reset(end);
                    }
                },
                text = self.client.next_text() => match text {
                    Ok(t) => match Packet::parse(&t) {
                        Packet::Ack { id, .. } => {
                            if let Some(at) = acks.remove(&id) {
                                m.record(Hist::Ack, at.elapsed().as_micros() as u64);
                            }
                            if let Frame::Ack { payload, .. } = parse_packet(&t)
                                && ack_data(&payload).is_err()
                            {
                                // Refused: no reply will come for it.
                                m.errors += 1;
                                reader.pending.pop_back();
                            }
                        }
                        packet => {
                            reader.packet(&t, packet, Instant::now(), &mut m);
                        }
                    },
                    Err(_) => {
                        m.disconnects += 1;
                        break;
                    }
                },
                _ = &mut grace_end, if deadline.is_some() => {}
            }
        }
        m.streams_failed = sent.saturating_sub(m.streams_completed);
        // Emits never acked by the end of the grace period.
        m.errors += acks.len() as u64;
        reader.finish(&mut m);
        m.flush();
        self.client.close().await;
        m
    }
}
