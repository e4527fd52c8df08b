//! The control plane under `/__admin`, off the protocol's `/api` namespace.
//!
//! Open on loopback only, unless `--admin-token` is given (then it needs
//! `Authorization: Bearer <admin token>` from anywhere); `--no-admin` removes
//! it. docs/ADMIN.md documents every endpoint with a curl example.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::{Value, json};

use crate::faults::{Scope, catalog};
use crate::proteus::App;
use crate::proteus::rest::{ApiError, ApiResult, JsonBody, ok};

/// The `/__admin` routes.
pub fn router(app: Arc<App>) -> Router<Arc<App>> {
    Router::new()
        .route("/__admin/profile", get(profile))
        .route("/__admin/reset", post(reset))
        .route(
            "/__admin/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/__admin/faults/{id}", delete(remove_fault))
        .route("/__admin/stats", get(stats))
        .route("/__admin/journal", get(journal))
        .route("/__admin/journal/live", get(journal_live))
        .route("/__admin/verify", post(verify))
        .route(
            "/__admin/world",
            get(get_world)
                .put(put_world)
                .layer(axum::extract::DefaultBodyLimit::max(WORLD_LIMIT)),
        )
        .route("/__admin/seed", post(seed))
        .route(
            "/__admin/thenvoi/rooms/{id}",
            axum::routing::delete(delete_thenvoi_room),
        )
        .route("/__admin/firehose", post(firehose))
        .route("/__admin/deliveries", get(deliveries))
        .merge(crate::inspector::routes())
        .layer(axum::middleware::from_fn_with_state(app, guard))
        .merge(crate::inspector::page())
        .layer(axum::middleware::from_fn(
            crate::proteus::rest::envelope_errors,
        ))
}

/// Loopback only, or the admin token when one is set; and never a request
/// a browser sends for another site.
///
/// Without a token, the peer must be a loopback address (an IPv4-mapped
/// `::ffff:127.0.0.1` counts) and the `Host` header a loopback name or the
/// address the mock listens on, so a page cannot reach the control plane
/// through a DNS name it rebinds to 127.0.0.1. With or without a token, an
/// `Origin` other than the mock's own is refused: a page on another site
/// cannot switch faults on with a "simple" cross-origin POST.
async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<crate::net::Peer>>()
        .map(|c| c.0);
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let refusal = match &app.admin_token {
        Some(token) => {
            let presented = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            (presented != Some(token.as_str())).then_some(
                "The control plane needs 'Authorization: Bearer <admin token>' (the --admin-token value)".to_string(),
            )
        }
        None if !peer.is_none_or(|p| p.0.ip().to_canonical().is_loopback()) => Some(
            "The control plane only answers on loopback; start the mock with --admin-token to open it"
                .to_string(),
        ),
        None => host
            .as_deref()
            .filter(|h| !is_own_host(h, app.listen.get()))
            .map(|h| {
                format!(
                    "The control plane answers only to a loopback Host (localhost, 127.0.0.1, [::1]), not {h:?}; start the mock with --admin-token to reach it by another name"
                )
            }),
    };
    let refusal = refusal.or_else(|| {
        let origin = req.headers().get(header::ORIGIN)?.to_str().unwrap_or("?");
        let own = host.as_deref().is_some_and(|h| {
            origin == format!("http://{h}") || origin == format!("https://{h}")
        });
        (!own).then(|| {
            format!(
                "The control plane refuses cross-site requests (Origin {origin:?} is not this mock's)"
            )
        })
    });
    match refusal {
        Some(message) => ApiError::new(StatusCode::FORBIDDEN, message).into_response(),
        None => next.run(req).await,
    }
}

/// Whether a `Host` header names this mock from the machine itself: a
/// loopback name or address, or the address it listens on, any port.
fn is_own_host(host: &str, listen: Option<&std::net::SocketAddr>) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => host.rsplit_once(':').map_or(host, |(n, _)| n),
    };
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match name.parse::<std::net::IpAddr>() {
        Ok(ip) => {
            ip.to_canonical().is_loopback()
                || listen.is_some_and(|l| l.ip() == ip && !ip.is_unspecified())
        }
        Err(_) => false,
    }
}

/// The fixture contract a conformance run needs.
async fn profile(State(app): State<Arc<App>>, req: Request) -> ApiResult {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let world = app.store.world();
    let users: Vec<Value> = world
        .users
        .iter()
        .filter_map(|u| {
            let t = world
                .tokens
                .iter()
                .find(|t| t.entity_id == u.id && !t.revoked)?;
            Some(json!({ "id": u.id, "name": u.name, "token": t.token }))
        })
        .collect();
    let scripted = |pred: &dyn Fn(&crate::model::Agent) -> bool| {
        world
            .agents
            .iter()
            .find(|a| a.script.is_some() && pred(a))
            .map(|a| a.id.clone())
    };
    let streaming = scripted(&|a| a.is_public);
    let echo = scripted(&|a| a.script.as_ref().is_some_and(|s| s.text == "{{content}}"));
    let revoked = world
        .tokens
        .iter()
        .find(|t| t.revoked)
        .map(|t| t.token.clone());
    ok(
        StatusCode::OK,
        &json!({
            "server": "proteus-mock",
            "version": env!("CARGO_PKG_VERSION"),
            "baseUrl": format!("http://{host}"),
            "users": users,
            "revokedToken": revoked,
            "agents": { "streaming": streaming, "echo": echo },
            "capabilities": {
                "admin": true,
                "faults": true,
                "reset": true,
                "deterministicStreams": true,
                "streamOverride": "state.mock",
                "plugins": true
            },
            "thenvoi": thenvoi_profile(&app),
            "faults": catalog().iter().map(|(name, doc)| json!({ "fault": name, "effect": doc })).collect::<Vec<_>>(),
        }),
    )
}

/// The Thenvoi part of the profile (docs/CONFORMANCE.md): its users and
/// agents with their keys, the scripted peers, the idle timeout in force
/// and the mock-only route that deletes a room.
fn thenvoi_profile(app: &App) -> Value {
    let world = app.thenvoi.world();
    let users: Vec<Value> = world
        .users
        .iter()
        .map(|u| json!({ "id": u.id, "name": u.name, "apiKey": u.api_key, "token": u.token }))
        .collect();
    let agent = |a: &crate::model::thenvoi::Agent| json!({ "id": a.id, "name": a.name, "apiKey": a.api_key, "ownerId": a.owner_id });
    let agents: Vec<Value> = world
        .agents
        .iter()
        .filter(|a| a.script.is_none())
        .map(agent)
        .collect();
    let scripted: serde_json::Map<String, Value> = world
        .agents
        .iter()
        .filter_map(|a| {
            let script = serde_json::to_value(a.script?).ok()?;
            Some((script.as_str()?.to_string(), agent(a)))
        })
        .collect();
    json!({
        "users": users,
        "agents": agents,
        "scripted": scripted,
        "rooms": world.rooms.iter().map(|r| json!({ "id": r.room.id, "title": r.room.title })).collect::<Vec<_>>(),
        "idleTimeoutMs": app.band.idle_timeout.as_millis() as u64,
        "deleteRoom": "/__admin/thenvoi/rooms/{id}",
    })
}

/// `DELETE /__admin/thenvoi/rooms/{id}`: deletes a Thenvoi room, which
/// pushes `room_deleted` (docs/THENVOI.md T20; the public API has no such
/// route).
async fn delete_thenvoi_room(
    State(app): State<Arc<App>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> ApiResult {
    let (room, _) = crate::core::thenvoi::flow::delete_room(&app.core, &id)?;
    ok(
        StatusCode::OK,
        &json!({ "data": crate::core::thenvoi::room_object(&room) }),
    )
}

/// Back to the loaded world: sockets told and closed, streams stopped, faults
/// back to the ones given at start.
async fn reset(State(app): State<Arc<App>>) -> ApiResult {
    app.reset().await;
    ok(StatusCode::OK, &json!({ "reset": true }))
}

async fn list_faults(State(app): State<Arc<App>>) -> ApiResult {
    ok(StatusCode::OK, &app.faults.list())
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AddFault {
    fault: String,
    #[serde(default)]
    chat_id: Option<String>,
    #[serde(default)]
    agent_id: Option<String>,
}

async fn add_fault(State(app): State<Arc<App>>, body: JsonBody) -> ApiResult {
    let b: AddFault = body.parse()?;
    let fault = app
        .faults
        .add(
            &b.fault,
            Scope {
                chat_id: b.chat_id,
                agent_id: b.agent_id,
            },
        )
        .map_err(ApiError::bad_request)?;
    tracing::info!(fault = %fault.spec, id = fault.id, "fault on");
    ok(StatusCode::CREATED, &fault)
}

async fn clear_faults(State(app): State<Arc<App>>) -> ApiResult {
    app.faults.clear();
    ok(StatusCode::OK, &json!({ "cleared": true }))
}

async fn remove_fault(State(app): State<Arc<App>>, Path(id): Path<u64>) -> ApiResult {
    if app.faults.remove(id) {
        ok(StatusCode::OK, &json!({ "removed": id }))
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("No active fault with id {id}"),
        ))
    }
}

async fn stats(State(app): State<Arc<App>>) -> ApiResult {
    let s = &app.rooms.stats;
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let (chats, messages, tokens) = app.store.sizes();
    ok(
        StatusCode::OK,
        &json!({
            "sockets": app.io.get().map_or(0, |io| io.sockets().len()),
            "rooms": app.rooms.room_count(),
            "activeReplies": app.tasks.len(),
            "packetsSent": n(&s.packets_sent),
            "deltasSent": n(&s.deltas_sent),
            "deltasPerSecond": n(&s.deltas_last_second),
            "journalEntries": app.journal.len(),
            "webhookDeliveries": app.dispatcher.delivery_count(),
            "slowConsumersDisconnected": n(&s.slow_consumers_disconnected),
            // socketioxide does not expose how full a socket's queue is, so
            // the high-water marks are those of back-pressure: how often a
            // packet met a full buffer, how many sockets at once, how long the
            // longest wait for them was.
            "socketBuffer": {
                "capacity": app.socket_buffer,
                "capacityBytes": app.socket_buffer_bytes,
                "mostBytesHeld": n(&s.most_bytes_held),
                "fullEvents": n(&s.buffer_full_events),
                "maxSocketsFullAtOnce": n(&s.max_sockets_full_at_once),
                "longestWaitMs": n(&s.longest_buffer_wait_us) as f64 / 1000.0,
            },
            "store": {
                "chats": chats, "messages": messages, "tokens": tokens,
                "messagesForgotten": n(&app.store.forgotten),
            },
            "thenvoi": {
                "sockets": app.band.hub.sockets().len(),
                "pushes": n(&app.band.hub.stats.pushes),
                "framesPushed": n(&app.band.hub.stats.frames_pushed),
                "slowConsumersCut": n(&app.band.hub.stats.slow_consumers_cut),
                "rooms": app.thenvoi.sizes().0,
                "messages": app.thenvoi.sizes().1,
                "messagesForgotten": n(&app.thenvoi.forgotten),
            },
            // What would leak if a reset or a disconnect forgot something.
            "internal": {
                "tcpConnections": app.connections.len(),
                "socketsTracked": app.rooms.tracked_sockets(),
                "webhookQueues": app.dispatcher.queue_count(),
                "pluginStreamsOpen": app.plugin_streams.open_count(),
            },
            "process": {
                "rssBytes": rss_bytes(),
                "runtimeTasks": tokio::runtime::Handle::current().metrics().num_alive_tasks(),
            },
        }),
    )
}

/// Resident memory of this process (Linux; null elsewhere).
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JournalQuery {
    #[serde(default)]
    since: u64,
    #[serde(default)]
    chat_id: Option<String>,
    #[serde(default)]
    kind: Option<crate::journal::Kind>,
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    /// `false`: leave emitted payloads out (the inspector's light reads).
    #[serde(default)]
    payloads: Option<String>,
}

fn journal_query(raw: Option<&str>) -> Result<JournalQuery, ApiError> {
    serde_urlencoded_like(raw.unwrap_or(""))
}

/// Parses `a=1&b=x` into the query struct with clear errors.
fn serde_urlencoded_like<T: serde::de::DeserializeOwned>(raw: &str) -> Result<T, ApiError> {
    let mut map = serde_json::Map::new();
    for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
        let value = match (k.as_ref(), v.parse::<u64>()) {
            ("since" | "limit", Ok(n)) => Value::from(n),
            _ => Value::String(v.into_owned()),
        };
        map.insert(k.into_owned(), value);
    }
    serde_json::from_value(Value::Object(map)).map_err(|e| {
        ApiError::bad_request(format!(
            "Invalid query: {e} (use since, chatId, kind, event, limit, payloads)"
        ))
    })
}

/// `GET /__admin/journal?since=&chatId=&kind=&event=&limit=&payloads=`
async fn journal(
    State(app): State<Arc<App>>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> ApiResult {
    if !app.journal.enabled() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "The journal is off (--journal-size 0)",
        ));
    }
    let q = journal_query(q.as_deref())?;
    let payloads = match q.payloads.as_deref() {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid query: payloads={other:?} (use true or false)"
            )));
        }
    };
    let mut entries = app.journal.query(
        q.since,
        q.chat_id.as_deref(),
        q.kind,
        q.event.as_deref(),
        q.limit.unwrap_or(1000).min(100_000),
    );
    if !payloads {
        entries.iter_mut().for_each(|e| e.detail.drop_payload());
    }
    let last = entries.last().map_or(q.since, |e| e.seq);
    crate::proteus::rest::ok_with_meta(
        &entries,
        json!({ "count": entries.len(), "nextSince": last, "capacity": app.journal.capacity() }),
    )
}

/// `GET /__admin/journal/live`: server-sent events, one `entry` per journal entry.
async fn journal_live(State(app): State<Arc<App>>) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let rx = app.journal.subscribe();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let event = match rx.recv().await {
            Ok(entry) => Event::default()
                .event("entry")
                .json_data(&entry)
                .unwrap_or_default(),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                Event::default().event("lagged").data(n.to_string())
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok::<_, std::convert::Infallible>(event), rx))
    });
    // End with the server: graceful shutdown waits for open connections.
    let stream = futures_util::StreamExt::take_until(stream, app.hurry.clone().cancelled_owned());
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// `POST /__admin/verify` with a pattern (see docs/ADMIN.md).
async fn verify(State(app): State<Arc<App>>, body: JsonBody) -> ApiResult {
    let pattern: crate::journal::Pattern = body.parse()?;
    let entries = app.journal.query(0, None, None, None, usize::MAX);
    ok(StatusCode::OK, &pattern.verify(&entries))
}

async fn get_world(State(app): State<Arc<App>>) -> ApiResult {
    let mut world = app.store.snapshot();
    world.thenvoi = app.thenvoi.snapshot();
    ok(StatusCode::OK, &world.to_json())
}

/// Loads a world (the same format as `--world`) and resets to it.
/// Largest world `PUT /__admin/world` reads: a dump `GET /__admin/world`
/// made after `/__admin/seed` must load back (REST bodies stop at 1 MiB).
pub const WORLD_LIMIT: usize = 256 * 1024 * 1024;

async fn put_world(State(app): State<Arc<App>>, body: axum::body::Bytes) -> ApiResult {
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("the world file is not UTF-8"))?;
    let world = crate::world::World::parse("PUT /__admin/world body", text)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    app.thenvoi.set_world(world.thenvoi.clone());
    app.store.set_world(world);
    app.reset().await;
    ok(StatusCode::OK, &json!({ "loaded": true }))
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Seed {
    chats: usize,
    messages: usize,
    /// The owner's token (default: the world's first user).
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    participants: Vec<crate::model::Participant>,
}

/// `POST /__admin/seed {chats, messages, token?, participants?}`: chats with history, for pagination and load tests.
async fn seed(State(app): State<Arc<App>>, body: JsonBody) -> ApiResult {
    let b: Seed = body.parse()?;
    if b.chats == 0
        || b.chats > 10_000
        || b.messages > 100_000
        || b.chats.saturating_mul(b.messages) > 2_000_000
    {
        return Err(ApiError::bad_request(
            "chats must be 1..=10000, messages at most 100000, and chats × messages at most 2,000,000",
        ));
    }
    let owner = match &b.token {
        Some(t) => app
            .store
            .authenticate(t)
            .map_err(|m| ApiError::bad_request(format!("token: {m}")))?,
        None => app
            .store
            .first_user()
            .ok_or_else(|| ApiError::bad_request("the world has no user: pass token"))?,
    };
    let ids = app
        .store
        .seed(&owner, b.participants, b.chats, b.messages)?;
    ok(StatusCode::CREATED, &json!({ "chatIds": ids }))
}

/// `GET /__admin/deliveries`: every webhook delivery attempt (last 2,000).
async fn deliveries(State(app): State<Arc<App>>) -> ApiResult {
    ok(StatusCode::OK, &app.dispatcher.deliveries())
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Firehose {
    chat_id: String,
    /// Deltas per stream.
    #[serde(default = "Firehose::default_deltas")]
    deltas: usize,
    /// Streams, one after the other (the running `content` restarts with each).
    #[serde(default = "Firehose::default_streams")]
    streams: usize,
    /// Bytes of `contentDelta` per delta.
    #[serde(default = "Firehose::default_size")]
    size: usize,
    /// Deltas per second over the whole firehose; 0 = as fast as the server can.
    #[serde(default)]
    rate: f64,
    /// The agent that speaks (default: the first scripted agent of the world).
    #[serde(default)]
    agent_id: Option<String>,
}

impl Firehose {
    fn default_deltas() -> usize {
        100
    }
    fn default_streams() -> usize {
        1
    }
    fn default_size() -> usize {
        16
    }
}

/// `POST /__admin/firehose {chatId, deltas?, streams?, size?, rate?, agentId?}`:
/// streams `streams × deltas` deltas of `size` bytes into a chat's room at
/// `rate` deltas per second, with no client send and no script in the way:
/// the pure delivery path, for load generators. Answers 202 at once.
async fn firehose(State(app): State<Arc<App>>, body: JsonBody) -> ApiResult {
    let b: Firehose = body.parse()?;
    if b.deltas == 0 || b.streams == 0 || b.size == 0 {
        return Err(ApiError::bad_request(
            "deltas, streams and size must be at least 1",
        ));
    }
    if b.deltas.saturating_mul(b.streams) > 100_000_000 || b.size > 65_536 {
        return Err(ApiError::bad_request(
            "at most 100,000,000 deltas in all and 65,536 bytes per delta",
        ));
    }
    if !b.rate.is_finite() || b.rate < 0.0 {
        return Err(ApiError::bad_request(
            "rate is deltas per second: 0 (unpaced) or more",
        ));
    }
    if app.store.participants_of(&b.chat_id).is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("No chat {}", b.chat_id),
        ));
    }
    let agent = match &b.agent_id {
        Some(id) => app.store.agent_by_id(id),
        None => app
            .store
            .snapshot()
            .agents
            .into_iter()
            .find(|a| a.script.is_some()),
    }
    .ok_or_else(|| ApiError::bad_request("no such agent (agentId) to speak"))?;
    let script = agent.script.clone().unwrap_or(crate::model::Script {
        text: String::new(),
        chunk_size: b.size,
        chunks: None,
        first_chunk_delay_ms: 0,
        chunk_delay_ms: 0,
        seed: 0,
    });
    let delay = if b.rate > 0.0 {
        std::time::Duration::from_secs_f64(1.0 / b.rate)
    } else {
        std::time::Duration::ZERO
    };
    // Deterministic text: the alphabet, cycled.
    let chunk: String = (0..b.size)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let started = json!({
        "chatId": b.chat_id, "streams": b.streams, "deltas": b.deltas, "size": b.size,
        "rate": b.rate, "agentId": agent.id, "expectedDeltas": b.deltas * b.streams,
    });
    let app2 = app.clone();
    let epoch = app.epoch();
    app.tasks.spawn(async move {
        for _ in 0..b.streams {
            if epoch.is_cancelled() {
                return; // a reset stopped the firehose
            }
            let trigger: crate::model::Message = match serde_json::from_value(json!({
                "id": app2.store.ids.next(), "content": "firehose", "chatId": b.chat_id,
                "streamResponse": true, "createdAt": crate::core::store::now_iso(), "updatedAt": crate::core::store::now_iso(),
            })) {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!(error = %e, "firehose trigger (a bug)");
                    return;
                }
            };
            let plan = crate::core::replies::script::Plan {
                chunks: vec![chunk.clone(); b.deltas],
                first_delay: std::time::Duration::ZERO,
                delay,
                at: Vec::new(),
            };
            let responder = crate::core::store::Responder {
                agent: agent.clone(),
                script: script.clone(),
            };
            crate::core::replies::play::play_reply(app2.core.clone(), responder, trigger, plan).await;
            if app2.hurry.is_cancelled() {
                return;
            }
        }
    });
    ok(StatusCode::ACCEPTED, &started)
}
