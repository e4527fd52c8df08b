//! `thenvoi`: `--agents` agent sockets on the Thenvoi profile's Phoenix
//! channel, and a user posting `--rate` messages per second over REST, each
//! mentioning `--mentions` agents of one room (docs/THENVOI.md T17-T19).
//!
//! Measured: `delivery`, a message's intended send time to its
//! `message_created` at each mentioned agent (so a server that falls behind
//! shows as latency); deliveries per second; misdeliveries (a push to an
//! agent the message does not mention: an error, T17); missing deliveries
//! (counted as loss); and, for one message in `--claim-every`, the first
//! mentioned agent's claim round trip (`/processing` then `/processed`,
//! `claim`). Setup (registering the agents through the Human API, rooms,
//! participants, sockets and joins) happens before the clock starts and
//! uses only documented routes, so any Thenvoi implementation can be run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use proteus_conformance::profile::Profile;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::schedule::{schedule, start_metronome};
use super::setup::{SHARDS, http};
use super::{Outcome, Plan, Progress, Rate, RunError, Scenario, Sockets};
use crate::metrics::{Hist, LIVE, Metrics, SharedHistograms};

pub const SCENARIO: Scenario = Scenario {
    name: "thenvoi",
    about: "Thenvoi: --agents sockets, --rate messages/s each mentioning --mentions agents; delivery latency, misdeliveries, claims",
    sockets: Sockets::Agents,
    rate: Rate {
        counts: "messages",
        zero_is_unpaced: false,
    },
    progress: |plan| Progress::Elapsed(plan.duration),
    streams: false,
    run: |profile, plan| Box::pin(run(profile, plan)) as Outcome,
};

/// Setup requests in flight at once.
const SETUP_CONCURRENCY: usize = 32;
/// Heartbeat interval (the server closes sockets silent for 45 s).
const HEARTBEAT: Duration = Duration::from_secs(20);

struct Agent {
    id: String,
    key: String,
}

struct Room {
    id: String,
    agents: Vec<usize>,
}

async fn call(
    method: reqwest::Method,
    url: String,
    key: &str,
    body: Option<Value>,
) -> Result<Value, RunError> {
    let mut request = http().request(method, &url).header("x-api-key", key);
    if let Some(b) = body {
        request = request.json(&b);
    }
    let response = request
        .send()
        .await
        .map_err(|e| RunError::Unreachable(url.clone(), e.to_string()))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(RunError::Setup(format!("{url} answered {status}: {text}")));
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The user key: `--thenvoi-key`, else the profile's first Thenvoi user
/// (the mock's `/__admin/profile`, or `--profile FILE`).
fn user_key(profile: &Profile, plan: &Plan) -> Result<String, RunError> {
    if let Some(k) = &plan.thenvoi_key {
        return Ok(k.clone());
    }
    profile
        .thenvoi
        .as_ref()
        .and_then(|t| t.users.first())
        .map(|u| u.api_key.clone())
        .ok_or_else(|| {
            RunError::Setup(
                "no Thenvoi user key: the profile has no thenvoi.users; pass --thenvoi-key KEY"
                    .into(),
            )
        })
}

/// Registers the agents and puts them in rooms of `--agents-per-room`.
async fn setup(base: &str, key: &str, plan: &Plan) -> Result<(Vec<Agent>, Vec<Room>), RunError> {
    let n = plan.agents.max(1);
    let mut agents = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(SETUP_CONCURRENCY) {
        let batch = chunk.iter().map(|i| {
            let body = json!({ "agent": { "name": format!("load agent {i}"), "description": "proteus-load" } });
            call(reqwest::Method::POST, format!("{base}/api/v1/me/agents/register"), key, Some(body))
        });
        for r in futures_util::future::join_all(batch).await {
            let v = r?;
            agents.push(Agent {
                id: v["data"]["agent"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                key: v["data"]["credentials"]["api_key"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            });
        }
    }
    let per_room = plan.agents_per_room.max(1);
    let mut rooms = Vec::new();
    for members in (0..n).collect::<Vec<_>>().chunks(per_room) {
        let room = call(
            reqwest::Method::POST,
            format!("{base}/api/v1/me/chats"),
            key,
            Some(json!({})),
        )
        .await?;
        let id = room["data"]["id"].as_str().unwrap_or_default().to_string();
        for chunk in members.chunks(SETUP_CONCURRENCY) {
            let batch = chunk.iter().map(|i| {
                let body = json!({ "participant": { "participant_id": agents[*i].id } });
                call(
                    reqwest::Method::POST,
                    format!("{base}/api/v1/me/chats/{id}/participants"),
                    key,
                    Some(body),
                )
            });
            for r in futures_util::future::join_all(batch).await {
                r?;
            }
        }
        rooms.push(Room {
            id,
            agents: members.to_vec(),
        });
    }
    Ok((agents, rooms))
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects an agent and joins its room; the connect latency is recorded.
async fn connect(
    base: &str,
    agent: &Agent,
    room: &str,
    m: &mut Metrics,
) -> Result<Socket, RunError> {
    let url = format!(
        "{}/api/v1/socket/websocket?vsn=2.0.0&api_key={}",
        base.replacen("http", "ws", 1),
        agent.key
    );
    let t0 = Instant::now();
    let (mut ws, _) = tokio_tungstenite::connect_async(&url)
        .await
        .map_err(|e| RunError::Unreachable(url.clone(), e.to_string()))?;
    let join = json!(["1", "1", format!("chat_room:{room}"), "phx_join", {}]).to_string();
    ws.send(Message::text(join))
        .await
        .map_err(|e| RunError::Setup(format!("join: {e}")))?;
    let reply = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .map_err(|_| RunError::Setup("no reply to phx_join within 10 s".into()))?;
    match reply {
        Some(Ok(Message::Text(t))) if t.contains("\"ok\"") => {}
        other => return Err(RunError::Setup(format!("join refused: {other:?}"))),
    }
    m.record(Hist::Connect, t0.elapsed().as_micros() as u64);
    Ok(ws)
}

/// `load <seq> <intended µs since start>` → (seq, µs).
fn stamp(frame: &str) -> Option<(u64, u64)> {
    let at = frame.find("\"content\":\"load ")? + "\"content\":\"load ".len();
    let mut parts = frame[at..].split(['"', ' ']);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

struct Shared {
    base: String,
    start: Instant,
    claim_every: u64,
    delivered: AtomicU64,
}

/// Reads one agent's pushes until `stop`.
async fn read(
    shared: Arc<Shared>,
    agent: Agent,
    room: String,
    mut ws: Socket,
    mut m: Metrics,
    mut stop: watch::Receiver<bool>,
) -> Metrics {
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    let mut claims = Vec::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = heartbeat.tick() => {
                let hb = json!([null, "hb", "phoenix", "heartbeat", {}]).to_string();
                if ws.send(Message::text(hb)).await.is_err() { m.disconnects += 1; break; }
            }
            frame = ws.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(_)) => continue,
                    _ => { m.disconnects += 1; break; }
                };
                if !text.contains("\"message_created\"") { continue; }
                if !text.contains(agent.id.as_str()) {
                    m.misdeliveries += 1;
                    continue;
                }
                let Some((seq, intended)) = stamp(&text) else { m.errors += 1; continue };
                let now = shared.start.elapsed().as_micros() as u64;
                m.record(Hist::Delivery, now.saturating_sub(intended));
                m.deliveries += 1;
                let at = std::time::Instant::now();
                m.first_delta = Some(m.first_delta.map_or(at, |f| f.min(at)));
                m.last_delta = Some(at);
                shared.delivered.fetch_add(1, Ordering::Relaxed);
                LIVE.deltas.fetch_add(1, Ordering::Relaxed);
                if shared.claim_every > 0 && seq % shared.claim_every == 0 {
                    let v: Value = serde_json::from_str(&text).unwrap_or_default();
                    let p = &v[4];
                    if p["metadata"]["mentions"][0]["id"] == agent.id.as_str() {
                        let url = format!("{}/api/v1/agent/chats/{room}/messages/{}", shared.base, p["id"].as_str().unwrap_or_default());
                        let key = agent.key.clone();
                        claims.push(tokio::spawn(async move {
                            let t0 = Instant::now();
                            let a = call(reqwest::Method::POST, format!("{url}/processing"), &key, None).await;
                            let b = call(reqwest::Method::POST, format!("{url}/processed"), &key, None).await;
                            (a.is_ok() && b.is_ok(), t0.elapsed().as_micros() as u64)
                        }));
                    }
                }
            }
        }
    }
    for c in claims {
        match c.await {
            Ok((true, micros)) => {
                m.claims += 1;
                m.record(Hist::Claim, micros);
            }
            _ => m.errors += 1,
        }
    }
    let _ = ws.close(None).await;
    m.flush();
    m
}

async fn run(profile: Arc<Profile>, plan: Plan) -> Result<Metrics, RunError> {
    let base = profile.base_url.trim_end_matches('/').to_string();
    let key = user_key(&profile, &plan)?;
    let (agents, rooms) = setup(&base, &key, &plan).await?;
    let shards = SharedHistograms::shards(SHARDS);
    let mut setup_metrics = Metrics::default();
    let (stop_tx, stop_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        base: base.clone(),
        start: Instant::now(),
        claim_every: plan.claim_every,
        delivered: AtomicU64::new(0),
    });
    let mut readers = Vec::new();
    let mut pending = Vec::new();
    for (r, room) in rooms.iter().enumerate() {
        for &i in &room.agents {
            let a = &agents[i];
            pending.push((
                r,
                i,
                Agent {
                    id: a.id.clone(),
                    key: a.key.clone(),
                },
            ));
        }
    }
    for chunk in pending.chunks(SETUP_CONCURRENCY) {
        let opened = futures_util::future::join_all(chunk.iter().map(|(r, _, a)| {
            let base = base.clone();
            let room = rooms[*r].id.clone();
            async move {
                let mut m = Metrics::default();
                let ws = connect(&base, a, &room, &mut m).await;
                (ws, m)
            }
        }))
        .await;
        for ((r, i, _), (ws, m)) in chunk.iter().zip(opened) {
            setup_metrics.merge(&m);
            let a = &agents[*i];
            let metrics = Metrics::sharing(shards[*i % shards.len()].clone());
            readers.push(tokio::spawn(read(
                shared.clone(),
                Agent {
                    id: a.id.clone(),
                    key: a.key.clone(),
                },
                rooms[*r].id.clone(),
                ws?,
                metrics,
                stop_rx.clone(),
            )));
        }
    }
    // The clock starts now; intended times are offsets from `shared.start`.
    let start = Instant::now();
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mentions = plan.mentions.clamp(1, plan.agents_per_room.max(1));
    let (tx, mut due) = tokio::sync::mpsc::unbounded_channel();
    start_metronome(schedule(&plan, start), move |i, at| {
        tx.send((i, at)).is_ok()
    })?;
    let mut sends = Vec::new();
    while let Some((i, at)) = due.recv().await {
        let room = &rooms[i as usize % rooms.len()];
        let ids: Vec<Value> = (0..mentions)
            .map(|j| json!({ "id": agents[room.agents[(i as usize * mentions + j) % room.agents.len()]].id }))
            .collect();
        let intended = (at - shared.start).as_micros() as u64;
        let body =
            json!({ "message": { "content": format!("load {i} {intended}"), "mentions": ids } });
        let url = format!("{base}/api/v1/me/chats/{}/messages", room.id);
        let (key, sent, failed) = (key.clone(), sent.clone(), failed.clone());
        sends.push(tokio::spawn(async move {
            match call(reqwest::Method::POST, url, &key, Some(body)).await {
                Ok(_) => sent.fetch_add(1, Ordering::Relaxed),
                Err(_) => failed.fetch_add(1, Ordering::Relaxed),
            };
        }));
    }
    for s in sends {
        let _ = s.await;
    }
    let expected = sent.load(Ordering::Relaxed) * mentions as u64;
    let deadline = Instant::now() + plan.grace;
    while shared.delivered.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(true);
    let mut total = setup_metrics;
    for r in readers {
        let m = r
            .await
            .map_err(|e| RunError::Setup(format!("a reader failed: {e}")))?;
        total.merge(&m);
    }
    total.absorb(&shards);
    total.streams_started = sent.load(Ordering::Relaxed);
    total.errors += failed.load(Ordering::Relaxed);
    total.checks.lost = expected.saturating_sub(total.deliveries);
    Ok(total)
}
