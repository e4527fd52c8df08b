//! The Thenvoi realtime transport: Phoenix Channels V2 over a WebSocket at
//! `/api/v1/socket/websocket` (docs/THENVOI.md T1-T23).
//!
//! Authentication happens at the upgrade (a refusal is HTTP 403 before any
//! WebSocket exists, T4); then one task per socket reads client frames,
//! writes queued frames, and closes the socket after the idle timeout
//! (T13). Channels only push: joins, leaves and heartbeats are the whole
//! client vocabulary, and anything else gets an error reply, never silence
//! (T11). Pushes come from the core through [`hub::Hub`], written straight
//! to the socket by whoever pushes ([`wire`]).
//!
//! The upgrade is answered here rather than by axum's `WebSocketUpgrade`,
//! which hands over a socket that only its own task can write to; the
//! WebSocket layer (tungstenite) still reads every client frame.

pub mod channels;
pub mod frames;
pub mod hub;
pub mod wire;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;

use super::Band;
use super::rest::error;
use crate::core::thenvoi::Principal;
use crate::journal::{Kind as JournalKind, Note};
use crate::model::thenvoi::{Kind, is_uuid};
use channels::Join;
use frames::Frame;
use hub::{CloseWith, Conn};

/// The client closed the socket (or the connection dropped).
const CLIENT_CLOSED: CloseWith = CloseWith(1000, "closed by the client");

/// Per-socket WebSocket read buffer (bytes). The defaults (128 KiB each
/// way) cost 256 MiB for 1,000 idle agent sockets; frames here are a few
/// hundred bytes.
const READ_BUFFER: usize = 4 * 1024;

/// How long a closing socket has to take what is still kept for it.
const CLOSE_DRAIN: Duration = Duration::from_secs(10);

/// Largest client frame read (bytes), like a REST body.
pub const MAX_FRAME: usize = 1024 * 1024;

/// `GET /api/v1/socket/websocket?vsn=2.0.0&api_key=…`: authenticates, then
/// upgrades.
pub async fn upgrade(
    State(band): State<Arc<Band>>,
    Query(mut query): Query<HashMap<String, String>>,
    request: Request,
) -> Response {
    let (mut parts, _) = request.into_parts();
    let headers = &parts.headers;
    let accept = match handshake(parts.version, headers) {
        Ok(accept) => accept,
        Err(problem) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("{problem}: connect with a WebSocket client, ?vsn=2.0.0 and a key"),
            );
        }
    };
    let Some(on_upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
        return error(
            StatusCode::BAD_REQUEST,
            "this connection cannot be upgraded: connect with a WebSocket client over HTTP/1.1",
        );
    };
    let headers = &parts.headers;
    // The Band SDK sends its key as a header, not in the query (SDK).
    if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok())
        && !query.contains_key("api_key")
        && !query.contains_key("token")
    {
        query.insert("api_key".into(), key.to_string());
    }
    let faults = band.core.faults.thenvoi(None);
    let vsn_ok = match query.get("vsn").map(String::as_str) {
        Some(v) if v.starts_with("2.") => true,
        Some(_) if faults.accept_any_vsn.fire() => true,
        Some(v) => {
            return error(
                StatusCode::FORBIDDEN,
                &format!("vsn={v} is not served: this server speaks Phoenix V2 (vsn=2.0.0)"),
            );
        }
        None => faults.accept_missing_vsn.fire(),
    };
    let who = match authenticate(&band, &query) {
        Ok(who) => who,
        Err(message) => return error(StatusCode::FORBIDDEN, &message),
    };
    if who.kind == Kind::Agent
        && query.get("on_conflict").map(String::as_str) == Some("reject")
        && band.hub.agent_online(&who.id)
    {
        return error(
            StatusCode::CONFLICT,
            &format!(
                "agent {} is already connected (on_conflict=reject); use on_conflict=supersede to take over",
                who.id
            ),
        );
    }
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => serve(band, who, vsn_ok, upgraded).await,
            Err(e) => tracing::debug!(error = %e, "a Phoenix upgrade did not complete"),
        }
    });
    (
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::CONNECTION, HeaderValue::from_static("upgrade")),
            (header::UPGRADE, HeaderValue::from_static("websocket")),
            (header::SEC_WEBSOCKET_ACCEPT, accept),
        ],
    )
        .into_response()
}

/// Checks an HTTP/1.1 WebSocket handshake (RFC 6455 4.2.1); the
/// `Sec-WebSocket-Accept` to answer with.
fn handshake(version: Version, headers: &HeaderMap) -> Result<HeaderValue, &'static str> {
    if version > Version::HTTP_11 {
        return Err("WebSockets are served over HTTP/1.1 here, not HTTP/2");
    }
    let has = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has(header::CONNECTION, "upgrade") {
        return Err("Connection header did not include 'upgrade'");
    }
    if !has(header::UPGRADE, "websocket") {
        return Err("`Upgrade` header did not include 'websocket'");
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err("`Sec-WebSocket-Version` header did not include '13'");
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or("`Sec-WebSocket-Key` header missing")?;
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    HeaderValue::from_str(&accept).map_err(|_| "`Sec-WebSocket-Key` header is not valid")
}

/// The four documented ways to authenticate (T3, T4).
fn authenticate(band: &Band, q: &HashMap<String, String>) -> Result<Principal, String> {
    let rooms = &band.core.thenvoi;
    let who = match (q.get("token"), q.get("api_key")) {
        (Some(_), Some(_)) => return Err("give either token or api_key, not both".into()),
        (Some(t), None) => rooms.by_token(t).ok_or("unknown token")?,
        (None, Some(k)) => match rooms.by_key(k) {
            Some(p) => p,
            None if band.core.faults.thenvoi(None).accept_bad_key.fire() => {
                rooms.first_agent().ok_or("unknown api_key")?
            }
            None => return Err("unknown api_key".into()),
        },
        (None, None) => {
            return Err(
                "no credentials: pass api_key=<key> (or token=<token>) in the query".into(),
            );
        }
    };
    let Some(agent_id) = q.get("agent_id") else {
        return Ok(who);
    };
    if !is_uuid(agent_id) {
        return Err(format!("agent_id {agent_id:?} is not a uuid"));
    }
    match who.kind {
        Kind::Agent if &who.id == agent_id => Ok(who),
        Kind::Agent => Err("an agent key may only name its own agent_id".into()),
        Kind::User => {
            let agent = rooms
                .agent(agent_id)
                .filter(|a| a.owner_id == who.id)
                .ok_or_else(|| format!("agent {agent_id} is not an agent of this key's owner"))?;
            rooms
                .by_key(&agent.api_key)
                .ok_or_else(|| "the agent has no key".to_string())
        }
    }
}

/// One socket's life: register, read and write until closed, clean up.
async fn serve(band: Arc<Band>, who: Principal, vsn_ok: bool, upgraded: hyper::upgrade::Upgraded) {
    let (read, write) = tokio::io::split(hyper_util::rt::TokioIo::new(upgraded));
    let conn = Arc::new(Conn {
        id: band.hub.next_id(),
        entity: who.id.clone(),
        name: who.name.clone(),
        since: std::time::SystemTime::now(),
        kind: who.kind,
        wire: wire::Wire::new(write, band.queue, band.queue_bytes),
        closer: CancellationToken::new(),
        close_with: std::sync::Mutex::new(None),
    });
    let keep_old = band.core.faults.thenvoi(None).keep_old_agent_socket.fire();
    if let Some(old) = band.hub.connect(&conn, keep_old) {
        // T14: the new one wins. The old one is told on its agent_control
        // channel when it joined it (the Band SDK then stops instead of
        // reconnecting), and closed.
        let topic = format!("agent_control:{}", who.id);
        let notice = json!({
            "reason": "superseded", "retryable": false, "correlation_id": null,
            "message": "another connection of this agent took over",
        });
        band.hub.push_to(&topic, &old, "supersede", &notice);
        old.close(CloseWith(1000, "superseded by a new connection"));
    }
    journal(
        &band,
        JournalKind::Connect,
        None,
        None,
        json!({
            "transport": "phoenix", "socket": conn.id, "entity": who.id, "type": who.kind.as_str(),
        }),
    );
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME))
        .max_frame_size(Some(MAX_FRAME))
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0);
    let reader = wire::Reader {
        read,
        wire: conn.clone(),
    };
    let mut stream = WebSocketStream::from_raw_socket(reader, Role::Server, Some(config)).await;
    let mut joined: HashMap<String, Option<String>> = HashMap::new();
    let idle = band.idle_timeout;
    let never_idle = band.core.faults.thenvoi(None).no_idle_close.is_on();
    // Made once and reset, not made again for every frame: a timer entry
    // and a cancellation waiter per pushed frame were a visible share of
    // the delivery path.
    let idle_timer = tokio::time::sleep(idle);
    let closer = conn.closer.clone();
    let cancelled = closer.cancelled();
    tokio::pin!(idle_timer, cancelled);
    let why = loop {
        tokio::select! {
            biased;
            () = &mut cancelled => {
                break conn.close_with.lock().unwrap_or_else(|p| p.into_inner())
                    .unwrap_or(CloseWith(1000, "closed"));
            }
            drained = std::future::poll_fn(|cx| conn.wire.poll_drain(cx)),
                if conn.wire.has_pending() => {
                if drained.is_err() {
                    break CloseWith(1000, "gone");
                }
            }
            // Bytes kept by a push (the branch above writes them next
            // turn), the bound crossed, or the connection failed.
            () = conn.wire.kept() => {
                if conn.wire.is_closed() {
                    break CloseWith(1000, "gone");
                }
                if let Some(why) = conn.wire.over() {
                    band.hub.stats.slow_consumers_cut.fetch_add(1, Ordering::Relaxed);
                    break CloseWith(1008, why);
                }
            }
            inbound = stream.next() => {
                idle_timer.as_mut().reset(tokio::time::Instant::now() + idle);
                let text = match inbound {
                    Some(Ok(Message::Text(t))) => t,
                    // Raw frames only come from a reader that is not set up
                    // to give them; pings are answered by the reader itself.
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                    Some(Ok(Message::Binary(_))) => {
                        break CloseWith(1011, "binary frames are not used: send JSON text frames");
                    }
                    Some(Err(WsError::Capacity(_))) => {
                        break CloseWith(1009, "frame too large: at most 1 MiB");
                    }
                    Some(Err(WsError::Protocol(_))) => break CloseWith(1002, "WebSocket protocol error"),
                    Some(Err(WsError::Utf8(_))) => break CloseWith(1007, "a text frame that is not UTF-8"),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break CLIENT_CLOSED,
                };
                if !vsn_ok {
                    break CloseWith(1011, "no serializer: connect with vsn=2.0.0");
                }
                match frames::parse(&text) {
                    Ok(frame) => {
                        if let Some(why) = handle(&band, &who, &conn, &mut joined, frame) {
                            break why;
                        }
                    }
                    Err(problem) => {
                        journal(&band, JournalKind::In, None, None, json!({
                            "transport": "phoenix", "socket": conn.id, "malformed": problem,
                        }));
                        if !band.core.faults.thenvoi(None).ignore_malformed_frames.fire() {
                            break CloseWith(1011, "malformed frame");
                        }
                    }
                }
            }
            () = &mut idle_timer, if !never_idle => {
                break CloseWith(1000, "idle: no frame within the timeout");
            }
        }
    };
    // Frames kept before the close still go out (a reply before phx_close),
    // then the close, then the client's answer is read, all within
    // CLOSE_DRAIN. Leaving the subscriptions first means no push follows
    // the close frame.
    band.hub.disconnect(&conn, joined.into_keys());
    let deadline = tokio::time::Instant::now() + CLOSE_DRAIN;
    if why == CLIENT_CLOSED {
        // The WebSocket layer queued its answer to the client's close; a
        // flush writes it (through the wire: it never waits).
        let _ = futures_util::SinkExt::flush(&mut stream).await;
    } else {
        conn.wire.send_close(&wire::close_frame(why.0, why.1));
    }
    conn.wire.finish(deadline).await;
    // A socket closed with unread input is reset, and a reset throws away
    // what the kernel had still to send (the close frame among it): read
    // until the client closes its side.
    let linger = async {
        let mut sink = [0u8; 4096];
        while let Ok(n) = tokio::io::AsyncReadExt::read(&mut stream.get_mut().read, &mut sink).await
        {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout_at(deadline, linger).await;
    drop(stream);
    journal(
        &band,
        JournalKind::Disconnect,
        None,
        None,
        json!({
            "transport": "phoenix", "socket": conn.id, "entity": who.id, "code": why.0, "reason": why.1,
        }),
    );
}

/// Answers one client frame; `Some` closes the socket.
fn handle(
    band: &Band,
    who: &Principal,
    conn: &Arc<Conn>,
    joined: &mut HashMap<String, Option<String>>,
    frame: Frame,
) -> Option<CloseWith> {
    let faults = band.core.faults.thenvoi(channels::room_of(&frame.topic));
    let send = |text: axum::extract::ws::Utf8Bytes| {
        conn.send_text(&text);
    };
    // A subscription the core ended (the entity left the room) is gone.
    joined.retain(|topic, _| {
        !topic.starts_with("chat_room:") && !topic.starts_with("room_participants:")
            || band.hub.is_subscribed(topic, conn)
    });
    let outcome = match (frame.topic.as_str(), frame.event.as_str()) {
        ("phoenix", "heartbeat") => {
            if !faults.no_heartbeat_reply.fire() {
                send(frames::reply(&frame, true, json!({}), false));
            }
            "ok"
        }
        (_, "phx_join") => match channels::join(&band.core, who, &frame.topic) {
            Join::Ok => {
                if let Some(old) = joined.insert(frame.topic.clone(), frame.join_ref.clone()) {
                    send(frames::close(old.as_deref(), &frame.topic));
                }
                band.hub
                    .subscribe(&frame.topic, conn, frame.join_ref.clone());
                let bare = faults.join_reply_without_refs.fire();
                send(frames::reply(&frame, true, json!({}), bare));
                "ok"
            }
            Join::Unauthorized => {
                send(frames::reply(
                    &frame,
                    false,
                    json!({ "reason": "unauthorized" }),
                    false,
                ));
                "unauthorized"
            }
            Join::Unmatched => {
                send(frames::unmatched(&frame));
                "unmatched topic"
            }
        },
        (_, "phx_leave") => {
            send(frames::reply(&frame, true, json!({}), false));
            if let Some(join_ref) = joined.remove(&frame.topic) {
                band.hub.unsubscribe(&frame.topic, conn);
                send(frames::close(join_ref.as_deref(), &frame.topic));
            }
            "ok"
        }
        (topic, _) if joined.contains_key(topic) => {
            if faults.close_on_client_event.fire() {
                return Some(CloseWith(1011, "client event on a push-only channel"));
            }
            send(frames::reply(
                &frame,
                false,
                json!({ "reason": "unsupported event" }),
                false,
            ));
            "unsupported event"
        }
        _ => {
            send(frames::unmatched(&frame));
            "unmatched topic"
        }
    };
    journal(
        band,
        JournalKind::In,
        Some(frame.event.clone()),
        channels::room_of(&frame.topic).map(str::to_string),
        json!({
            "transport": "phoenix", "socket": conn.id, "topic": frame.topic,
            "joinRef": frame.join_ref, "ref": frame.reference, "reply": outcome,
        }),
    );
    None
}

fn journal(
    band: &Band,
    kind: JournalKind,
    event: Option<String>,
    chat_id: Option<String>,
    detail: serde_json::Value,
) {
    if band.core.journal.enabled() {
        band.core.journal.record(
            kind,
            Note {
                event,
                chat_id,
                detail: detail.into(),
                ..Default::default()
            },
        );
    }
}

/// Reset and shutdown: every Phoenix socket closed.
pub fn close_all(band: &Band, reason: &'static str) {
    band.hub.close_all(CloseWith(1000, reason));
}
