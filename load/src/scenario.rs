//! The scenarios: `chat`, `fanout`, `connect`.
//!
//! Every run is bounded (a duration and/or a stream count, then a grace
//! period for streams in flight) and talks only to the target it is given.
//! Latencies are measured from the *intended* send time of an open-model
//! schedule (`--rate` streams per second), so a slow server shows up as
//! latency instead of silently lowering the rate (coordinated omission).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use proteus_conformance::client::{Client, ClientError, Frame};
use proteus_conformance::profile::Profile;
use proteus_conformance::stream::{FastMap, RawDelta, RawDone, StreamChecker};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use std::sync::atomic::Ordering;

use crate::metrics::{LIVE, Metrics, SharedHistograms};
use crate::metronome;

/// Shared histogram shards per scenario (tasks are assigned round-robin;
/// enough that two worker threads seldom wait for the same lock).
const SHARDS: usize = 8;

/// Why a run could not be carried out (exit 3).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot reach {0}: {1}")]
    Unreachable(String, String),
    #[error("the target refused the token: {0}")]
    Refused(String),
    #[error("{0}")]
    Setup(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// V users, each in its own chat with the streaming agent; streams at --rate per second.
    Chat,
    /// S subscribers in one room; streams into it at --rate per second.
    Fanout,
    /// Open --connections sockets at --rate per second; measure the handshake.
    Connect,
    /// --subscribers sockets in one room; the server's control plane
    /// (POST /__admin/firehose) streams --streams × --chunks deltas of --size
    /// bytes into it at --rate deltas per second (0 = unpaced): the pure
    /// delivery path, no client send in the way.
    Firehose,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub scenario: Scenario,
    pub users: usize,
    pub subscribers: usize,
    pub connections: usize,
    /// Streams (or connections) started per second.
    pub rate: f64,
    pub duration: Duration,
    pub max_streams: Option<u64>,
    pub chunks: usize,
    pub chunk_delay_ms: u64,
    /// firehose: bytes per delta.
    pub size: usize,
    /// The rate grows linearly from 0 to `rate` over this long.
    pub ramp_up: Duration,
    /// How long to wait for streams in flight once sending stops.
    pub grace: Duration,
}

impl Plan {
    /// The websocket read buffer for this run's sockets: large when a few
    /// connections drain many frames each, small when many connections each
    /// receive a frame at a time (see `client::READ_BUFFER`).
    fn read_buffer(&self) -> usize {
        let sockets = match self.scenario {
            Scenario::Chat => self.users,
            Scenario::Fanout | Scenario::Firehose => self.subscribers,
            Scenario::Connect => self.connections,
        };
        if sockets <= 8 {
            proteus_conformance::client::LARGE_READ_BUFFER
        } else {
            proteus_conformance::client::READ_BUFFER
        }
    }
}

/// Opens a socket and waits for `success`; the connect latency is recorded.
pub async fn open(
    profile: &Profile,
    token: &str,
    plan: &Plan,
    m: &mut Metrics,
) -> Result<Client, RunError> {
    let t0 = Instant::now();
    // A server that accepts and then says nothing must not hang the run.
    let auth = json!({ "token": token });
    let connecting = tokio::time::timeout(
        Duration::from_secs(10),
        Client::connect_with_read_buffer(&profile.base_url, &auth, plan.read_buffer()),
    );
    let mut c = connecting
        .await
        .map_err(|_| {
            RunError::Unreachable(
                profile.base_url.clone(),
                "no websocket handshake within 10 s (the server stalls)".into(),
            )
        })?
        .map_err(|e| match e {
            ClientError::Connect { url, source } => RunError::Unreachable(url, source.to_string()),
            other => RunError::Unreachable(profile.base_url.clone(), other.to_string()),
        })?;
    loop {
        match c
            .next_frame_within(Duration::from_secs(10), "success")
            .await
        {
            Ok(Frame::Event { name, .. }) if name == "success" => break,
            Ok(Frame::Event { name, payload }) if name == "error" => {
                return Err(RunError::Refused(payload.to_string()));
            }
            Ok(Frame::ConnectError(p)) => return Err(RunError::Refused(p.to_string())),
            Ok(_) => {}
            Err(e) => {
                return Err(RunError::Unreachable(
                    profile.base_url.clone(),
                    e.to_string(),
                ));
            }
        }
    }
    m.record("connect", t0.elapsed().as_micros() as u64);
    Ok(c)
}

fn user_token(profile: &Profile) -> Result<String, RunError> {
    profile
        .user(0)
        .map(|u| u.token.clone())
        .ok_or_else(|| RunError::Setup("the profile has no user token".into()))
}

/// One HTTP client for the run's REST calls: building a client loads the
/// TLS roots, ~ms of CPU each, which made a 1,000-user setup CPU-bound.
fn http() -> &'static reqwest::Client {
    static HTTP: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    HTTP.get_or_init(reqwest::Client::new)
}

async fn create_chat(profile: &Profile, token: &str) -> Result<String, RunError> {
    let agent = profile
        .agents
        .streaming
        .clone()
        .ok_or_else(|| RunError::Setup("the profile names no streaming agent".into()))?;
    create_chat_with(profile, token, json!([{ "id": agent, "type": "AGENT" }])).await
}

async fn create_chat_with(
    profile: &Profile,
    token: &str,
    participants: Value,
) -> Result<String, RunError> {
    let body = json!({ "participants": participants });
    let resp = http()
        .post(format!("{}/api/chats", profile.base_url))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .map_err(|e| RunError::Unreachable(profile.base_url.clone(), e.to_string()))?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or_default();
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Err(RunError::Refused(
            v["error"]["message"].as_str().unwrap_or("401").to_string(),
        ));
    }
    v["data"]["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| RunError::Setup(format!("creating a chat answered {status}: {v}")))
}

fn send_body(profile: &Profile, chat: &str, plan: &Plan, i: u64) -> Value {
    let mut b = json!({ "chatId": chat, "content": format!("load #{i}"), "streamResponse": true });
    if profile.capabilities.stream_override.as_deref() == Some("state.mock") {
        b["state"] = json!({ "mock": { "chunks": plan.chunks, "chunkDelayMs": plan.chunk_delay_ms, "firstChunkDelayMs": 0 } });
    }
    b
}

/// The open-model schedule: (stream number, intended time) until the
/// duration or the stream count runs out.
fn schedule(plan: &Plan, start: Instant) -> impl Iterator<Item = (u64, Instant)> + Send + 'static {
    let (rate, ramp_up, max_streams, end) = (
        plan.rate,
        plan.ramp_up,
        plan.max_streams,
        start + plan.duration,
    );
    (0u64..)
        .map(move |i| (i, start + offset(rate, ramp_up, i)))
        .take_while(move |(i, at)| max_streams.is_none_or(|n| *i < n) && *at < end)
}

/// Starts [`schedule`] on the metronome; the arrivals come out of the
/// returned channel on time, and it closes after the last.
fn arrivals(
    plan: &Plan,
    start: Instant,
) -> Result<mpsc::UnboundedReceiver<(u64, Instant)>, RunError> {
    let (tx, rx) = mpsc::unbounded_channel();
    metronome::start(schedule(plan, start), move |i, at| tx.send((i, at)).is_ok())
        .map_err(|e| RunError::Setup(format!("cannot start the schedule's thread: {e}")))?;
    Ok(rx)
}

/// When arrival `i` is due, for `rate` per second reached linearly over
/// `ramp` (the rate at time t < ramp is rate·t/ramp, so the count due by t is
/// rate·t²/(2·ramp); after the ramp, a steady rate).
pub fn offset(rate: f64, ramp: Duration, i: u64) -> Duration {
    let rate = rate.max(0.001);
    let ramp_s = ramp.as_secs_f64();
    let during_ramp = rate * ramp_s / 2.0;
    let t = if (i as f64) < during_ramp {
        (2.0 * ramp_s * i as f64 / rate).sqrt()
    } else {
        ramp_s + (i as f64 - during_ramp) / rate
    };
    Duration::from_secs_f64(t)
}

/// The run's time zero: the first intended send. Tasks set up before it is
/// known (subscribers, users) share it, and the schedule starts only once
/// they are ready, so neither their setup nor their first polls are counted
/// as the server's latency.
#[derive(Clone, Default)]
struct Zero(Arc<OnceLock<Instant>>);

impl Zero {
    /// Starts the clock now; returns the instant.
    fn start_now(&self) -> Instant {
        *self.0.get_or_init(Instant::now)
    }

    fn get(&self) -> Option<Instant> {
        self.0.get().copied()
    }
}

/// Handles one frame of a stream reader: counts, checks, timings.
struct Reader {
    checker: StreamChecker,
    /// Intended send times of streams not yet seen, oldest first.
    pending: VecDeque<Instant>,
    /// streamId → (intended time, last delta arrival), for open streams
    /// other than `hot`.
    open: FastMap<String, (Instant, Instant)>,
    /// The open stream of the last delta, kept out of `open`: consecutive
    /// deltas of one stream (the common case) skip the hash lookup.
    hot: Option<(String, (Instant, Instant))>,
    /// The run's zero, for the per-second counts.
    zero: Zero,
    /// Deltas not yet added to [`LIVE`].
    unpublished: u64,
}

impl Reader {
    fn new(zero: Zero) -> Self {
        Reader {
            checker: StreamChecker::new(),
            pending: VecDeque::new(),
            open: FastMap::default(),
            hot: None,
            zero,
            unpublished: 0,
        }
    }

    /// Adds the deltas counted since the last call to the live totals.
    fn publish(&mut self) {
        LIVE.deltas.fetch_add(self.unpublished, Ordering::Relaxed);
        self.unpublished = 0;
    }

    /// Handles one socket.io packet; true when it is the first delta of a
    /// stream not seen before. Deltas take the fast path (a borrowed parse of
    /// the fields the checker reads); anything else, or a delta that does not
    /// fit it, is parsed in full so the checker can name the problem.
    fn frame(&mut self, text: &str, now: Instant, m: &mut Metrics) -> bool {
        const DELTA: &str = "2[\"message:delta\",";
        const DONE: &str = "2[\"message:done\",";
        m.bytes += text.len() as u64;
        if let Some(rest) = text.strip_prefix(DELTA) {
            let json = rest.strip_suffix(']').unwrap_or(rest);
            if let Some(raw) = RawDelta::parse_measured(json) {
                self.checker.observe_delta(&raw.fields());
                return self.delta(&raw.stream_id, now, m);
            }
        }
        if let Some(rest) = text.strip_prefix(DONE) {
            let json = rest.strip_suffix(']').unwrap_or(rest);
            if let Some(raw) = RawDone::parse(json) {
                self.checker.observe_done(&raw.fields());
                self.done(&raw.stream_id, now, m);
                return false;
            }
        }
        let is_delta = text.starts_with("2[\"message:delta\"");
        let is_done = text.starts_with("2[\"message:done\"");
        if !is_delta && !is_done {
            return false;
        }
        let Frame::Event { name, payload } = proteus_conformance::client::parse_packet(text) else {
            return false;
        };
        self.checker.observe(&name, &payload);
        let sid = payload["streamId"].as_str().unwrap_or_default();
        if is_delta {
            return self.delta(sid, now, m);
        }
        self.done(sid, now, m);
        false
    }

    /// Whether no stream is open.
    fn idle(&self) -> bool {
        self.open.is_empty() && self.hot.is_none()
    }

    /// Takes stream `sid` out of the open ones.
    fn close(&mut self, sid: &str) -> Option<(Instant, Instant)> {
        match self.hot.take() {
            Some((id, times)) if id == sid => Some(times),
            other => {
                self.hot = other;
                self.open.remove(sid)
            }
        }
    }

    fn done(&mut self, sid: &str, now: Instant, m: &mut Metrics) {
        if let Some((intended, _)) = self.close(sid) {
            m.streams_completed += 1;
            LIVE.completed.fetch_add(1, Ordering::Relaxed);
            self.publish();
            m.record("stream", (now - intended).as_micros() as u64);
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
        if let Some((id, (_, last))) = &mut self.hot
            && id == sid
        {
            m.record("gap", (now - *last).as_micros() as u64);
            *last = now;
            return false;
        }
        if let Some((id, times)) = self.hot.take() {
            self.open.insert(id, times);
        }
        let (hot, new) = match self.open.remove_entry(sid) {
            Some((id, (intended, last))) => {
                m.record("gap", (now - last).as_micros() as u64);
                ((id, (intended, now)), false)
            }
            None => {
                // Subscribers that did not send have no intended time: their
                // scenario times the first delta itself.
                let intended = self.pending.pop_front();
                if let Some(at) = intended {
                    m.record("ttfd", (now - at).as_micros() as u64);
                }
                ((sid.to_string(), (intended.unwrap_or(now), now)), true)
            }
        };
        self.hot = Some(hot);
        new
    }

    fn finish(mut self, m: &mut Metrics) {
        self.publish();
        let report = self.checker.finish();
        m.checks.duplicates += report.totals.duplicates;
        m.checks.out_of_order += report.totals.out_of_order;
        m.checks.lost += report.totals.lost;
        m.checks.content_violations += report.totals.content_violations;
        m.checks.deltas += report.totals.deltas;
    }
}

/// `chat`: each user in its own chat; streams round-robin over users.
async fn chat(profile: Arc<Profile>, plan: Plan) -> Result<Metrics, RunError> {
    let token = user_token(&profile)?;
    let mut setup = Metrics::default();
    let mut users = Vec::new();
    for _ in 0..plan.users.max(1) {
        let chat = create_chat(&profile, &token).await?;
        let client = open(&profile, &token, &plan, &mut setup).await?;
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
    for (i, (chat, mut client)) in users.into_iter().enumerate() {
        let (tx, mut rx) = mpsc::unbounded_channel::<(u64, Instant)>();
        senders.push(tx);
        let (profile, plan) = (profile.clone(), plan.clone());
        let shard = shards[i % shards.len()].clone();
        let (zero, ready) = (zero.clone(), ready.clone());
        tasks.push(tokio::spawn(async move {
            let mut m = Metrics::sharing(shard);
            // The grace period's end, armed once the schedule is over (a
            // periodic tick here woke 1,000 idle users 20 times a second).
            let grace_end = tokio::time::sleep(Duration::ZERO);
            tokio::pin!(grace_end);
            let mut reader = Reader::new(zero);
            ready.add_permits(1);
            let mut acks: HashMap<u64, Instant> = HashMap::new();
            let mut sent = 0u64;
            let mut closed = false;
            let mut deadline: Option<Instant> = None;
            loop {
                // A reply may end before its ack (a server that acks late):
                // the user is done when both are in.
                let finished =
                    closed && reader.pending.is_empty() && reader.idle() && acks.is_empty();
                if finished || deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                tokio::select! {
                    cmd = rx.recv(), if !closed => match cmd {
                        Some((i, intended)) => {
                            let body = send_body(&profile, &chat, &plan, i);
                            // From before the write, as Artillery and a client's
                            // own timer see it.
                            let emitted = Instant::now();
                            match client.emit_with_ack("message:send", &body).await {
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
                            let end = Instant::now() + plan.grace;
                            deadline = Some(end);
                            grace_end.as_mut().reset(end);
                        }
                    },
                    text = client.next_text() => match text {
                        Ok(t) => {
                            if t.starts_with('3') {
                                if let Frame::Ack { id, payload } = proteus_conformance::client::parse_packet(&t) {
                                    if let Some(at) = acks.remove(&id) {
                                        m.record("ack", at.elapsed().as_micros() as u64);
                                    }
                                    if payload.get("error").is_some() {
                                        m.errors += 1;
                                        reader.pending.pop_back();
                                    }
                                }
                            } else {
                                reader.frame(&t, Instant::now(), &mut m);
                            }
                        }
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
            client.close().await;
            m
        }));
    }
    let users = u32::try_from(senders.len()).unwrap_or(u32::MAX);
    let _ = ready.acquire_many(users).await;
    tokio::task::yield_now().await;
    // The metronome hands each send straight to its user's task; the users'
    // channels close when it is done.
    let start = zero.start_now();
    let users = senders.len();
    let _metronome = metronome::start(schedule(&plan, start), move |i, at| {
        // A user gone (its socket closed) misses its sends; the others go on.
        let _ = senders[i as usize % users].send((i, at));
        true
    })
    .map_err(|e| RunError::Setup(format!("cannot start the schedule's thread: {e}")))?;
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

/// `fanout`: one room, many subscribers, one driver.
async fn fanout(profile: Arc<Profile>, plan: Plan) -> Result<Metrics, RunError> {
    let token = user_token(&profile)?;
    let chat = create_chat(&profile, &token).await?;
    let mut setup = Metrics::default();
    let intended: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let zero = Zero::default();
    // None while the driver sends; then how many streams it sent.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel::<Option<u64>>(None);
    let (subs, shards) =
        subscribers(&profile, &token, &chat, &plan, &zero, &stop_rx, &mut setup).await?;
    let mut driver = open(&profile, &token, &plan, &mut setup).await?;
    // The schedule starts once every socket is in: joining takes time that
    // is not the server's answer to a send.
    let start = zero.start_now();
    let mut sent = 0u64;
    let mut acks: HashMap<u64, Instant> = HashMap::new();
    let mut due = arrivals(&plan, start)?;
    while let Some((i, at)) = due.recv().await {
        let id = driver
            .emit_with_ack("message:send", &send_body(&profile, &chat, &plan, i))
            .await
            .map_err(|e| RunError::Setup(e.to_string()))?;
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
    total.streams_started = sent;
    for s in subs {
        let (mut m, firsts) = s
            .await
            .map_err(|e| RunError::Setup(format!("a subscriber failed: {e}")))?;
        // Time to first delta from each stream's intended send time.
        let table = intended.lock().unwrap_or_else(|p| p.into_inner());
        for (trigger, at) in firsts {
            if let Some(t0) = table.get(&trigger) {
                m.record("ttfd", at.saturating_duration_since(*t0).as_micros() as u64);
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

/// Joins `plan.subscribers` sockets to `chat`, each checking streams in a
/// [`subscriber`] task; their latencies go to the returned shards.
async fn subscribers(
    profile: &Profile,
    token: &str,
    chat: &str,
    plan: &Plan,
    zero: &Zero,
    stop: &tokio::sync::watch::Receiver<Option<u64>>,
    setup: &mut Metrics,
) -> Result<(Vec<Subscriber>, Vec<SharedHistograms>), RunError> {
    let shards = SharedHistograms::shards(SHARDS);
    let mut subs = Vec::new();
    for i in 0..plan.subscribers.max(1) {
        let c = joined(profile, token, chat, plan, setup).await?;
        let shard = shards[i % shards.len()].clone();
        subs.push(subscriber(c, zero.clone(), stop.clone(), plan.grace, shard));
    }
    Ok((subs, shards))
}

/// A subscriber's task: its metrics and, per stream, (the id of the message
/// it answers, when its first delta arrived).
type Subscriber = tokio::task::JoinHandle<(Metrics, Vec<(String, Instant)>)>;

/// A socket in a room that checks every stream it sees until `stop` says how
/// many streams were sent (then waits up to `grace` for them to complete).
/// Returns its metrics and, per stream, (the id of the message it answers,
/// when its first delta arrived).
fn subscriber(
    mut c: Client,
    zero: Zero,
    mut stop: tokio::sync::watch::Receiver<Option<u64>>,
    grace: Duration,
    shard: SharedHistograms,
) -> Subscriber {
    tokio::spawn(async move {
        let mut m = Metrics::sharing(shard);
        let mut reader = Reader::new(zero);
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
    let json = packet
        .strip_prefix("2[\"message:delta\",")
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or_default();
    serde_json::from_str::<Delta>(json)
        .ok()
        .and_then(|d| d.message)
        .and_then(|m| m.responded_to_id)
        .map(|c| c.into_owned())
        .unwrap_or_default()
}

/// Maps an ack's message id to the intended send time of its emit.
fn note_ack(
    text: &str,
    acks: &mut HashMap<u64, Instant>,
    intended: &Mutex<HashMap<String, Instant>>,
) {
    if let Frame::Ack { id, payload } = proteus_conformance::client::parse_packet(text)
        && let (Some(at), Some(mid)) = (acks.remove(&id), payload["data"]["message"]["id"].as_str())
    {
        intended
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(mid.to_string(), at);
    }
}

/// `connect`: connections at a rate; handshake latency.
async fn connect(profile: Arc<Profile>, plan: Plan) -> Result<Metrics, RunError> {
    let token = user_token(&profile)?;
    let start = Instant::now();
    let mut tasks = Vec::new();
    let shards = SharedHistograms::shards(SHARDS);
    let (rate, ramp_up, end) = (plan.rate, plan.ramp_up, start + plan.duration);
    let times = (0..plan.connections.max(1) as u64)
        .map(move |i| (i, start + offset(rate, ramp_up, i)))
        .take_while(move |(_, at)| *at <= end);
    let (tx, mut due) = mpsc::unbounded_channel();
    metronome::start(times, move |i, _| tx.send(i as usize).is_ok())
        .map_err(|e| RunError::Setup(format!("cannot start the schedule's thread: {e}")))?;
    while let Some(i) = due.recv().await {
        let (profile, token, plan) = (profile.clone(), token.clone(), plan.clone());
        let shard = shards[i % shards.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut m = Metrics::sharing(shard);
            let opened = open(&profile, &token, &plan, &mut m).await;
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
        let (m, c) = t.await.map_err(|e| RunError::Setup(e.to_string()))??;
        total.merge(&m);
        held.extend(c);
    }
    total.absorb(&shards);
    if total.errors as usize == held.len() + total.errors as usize && held.is_empty() {
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

/// Opens a socket and joins `chat`, waiting for the ack.
async fn joined(
    profile: &Profile,
    token: &str,
    chat: &str,
    plan: &Plan,
    m: &mut Metrics,
) -> Result<Client, RunError> {
    let mut c = open(profile, token, plan, m).await?;
    let id = c
        .emit_with_ack("chat:join", &json!({ "chatId": chat }))
        .await
        .map_err(|e| RunError::Setup(e.to_string()))?;
    loop {
        match c
            .next_frame_within(Duration::from_secs(10), "join ack")
            .await
            .map_err(|e| RunError::Setup(e.to_string()))?
        {
            Frame::Ack { id: got, payload } if got == id => {
                if payload.get("error").is_some() {
                    return Err(RunError::Setup(format!("chat:join refused: {payload}")));
                }
                return Ok(c);
            }
            _ => {}
        }
    }
}

/// `firehose`: subscribers in one room; the server streams into it on request.
async fn firehose(profile: Arc<Profile>, plan: Plan) -> Result<Metrics, RunError> {
    let token = user_token(&profile)?;
    let chat = create_chat_with(&profile, &token, json!([])).await?;
    let mut setup = Metrics::default();
    let zero = Zero::default();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel::<Option<u64>>(None);
    let (subs, shards) =
        subscribers(&profile, &token, &chat, &plan, &zero, &stop_rx, &mut setup).await?;
    let streams = plan.max_streams.unwrap_or(1).max(1);
    let body = json!({ "chatId": chat, "deltas": plan.chunks.max(1), "streams": streams,
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
    let total = streams as f64 * plan.chunks.max(1) as f64;
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
                "ttfd",
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

pub async fn run(profile: Arc<Profile>, plan: Plan) -> Result<Metrics, RunError> {
    match plan.scenario {
        Scenario::Chat => chat(profile, plan).await,
        Scenario::Fanout => fanout(profile, plan).await,
        Scenario::Connect => connect(profile, plan).await,
        Scenario::Firehose => firehose(profile, plan).await,
    }
}

#[cfg(test)]
mod tests {
    use super::offset;
    use std::time::Duration;

    #[test]
    fn the_schedule_ramps_linearly_then_holds_the_rate() {
        let none = Duration::ZERO;
        assert_eq!(offset(10.0, none, 0), Duration::ZERO);
        assert_eq!(offset(10.0, none, 25), Duration::from_millis(2500));
        // 100/s reached over 10 s: 500 arrivals during the ramp, 125 in its first half.
        let ramp = Duration::from_secs(10);
        let at = |i| offset(100.0, ramp, i).as_secs_f64();
        assert!(
            (at(500) - 10.0).abs() < 1e-9,
            "the ramp ends with arrival 500"
        );
        assert!(
            (at(125) - 5.0).abs() < 1e-9,
            "a quarter of them by half-time"
        );
        assert!((at(600) - 11.0).abs() < 1e-9, "then 100 a second");
        assert!((1..600).all(|i| at(i) > at(i - 1)), "in order");
    }
}
