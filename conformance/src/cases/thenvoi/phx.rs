//! A raw Phoenix V2 socket for the `thenvoi.*` cases: it speaks the
//! five-element JSON frames `[join_ref, ref, topic, event, payload]` itself,
//! not through a Phoenix client library, because a library would hide
//! exactly what the cases check (refs echoed, a push's `null` ref and its join's `join_ref`, close
//! codes). Every frame read is logged and validated against
//! `schemas/thenvoi/phoenix` (and a push's payload against its event's
//! schema); a frame that does not validate fails the case there.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::super::kit::{Step, ensure, short};
use super::kit::valid;
use crate::case::{Ctx, Outcome};

/// What a socket read gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Got {
    Frame(Value),
    /// The socket ended: the close code, if the server sent one.
    Closed(Option<u16>),
    Timeout,
}

/// The schema of a server frame, by its event (and a reply's status).
fn frame_schema(f: &Value) -> &'static str {
    match f[3].as_str().unwrap_or_default() {
        "phx_reply" if f[4]["status"] == "ok" => "thenvoi/phoenix/reply-ok",
        "phx_reply" => "thenvoi/phoenix/reply-error",
        "phx_close" => "thenvoi/phoenix/close",
        "phx_error" => "thenvoi/phoenix/error",
        _ => "thenvoi/phoenix/push",
    }
}

/// The schemas a Phoenix frame must match, each with the value it applies
/// to: every frame the V2 frame shape; a server frame its kind's schema;
/// a push its event's payload schema. The proxy and `validate` use this.
pub fn frame_checks(v: &Value, from_server: bool) -> Vec<(&'static str, &Value)> {
    let mut checks = vec![("thenvoi/phoenix/frame", v)];
    if from_server && v.is_array() {
        let kind = frame_schema(v);
        checks.push((kind, v));
        if kind == "thenvoi/phoenix/push"
            && let Some(s) = v[3].as_str().and_then(event_schema)
        {
            checks.push((s, &v[4]));
        }
    }
    checks
}

/// The payload schema of a channel event (fixtures/thenvoi/manifest.json).
pub fn event_schema(event: &str) -> Option<&'static str> {
    Some(match event {
        "message_created" => "thenvoi/events/message-created",
        "message_updated" => "thenvoi/events/message-updated",
        "message_deleted" => "thenvoi/events/message-deleted",
        "participant_added" => "thenvoi/events/participant-added",
        "participant_removed" => "thenvoi/events/participant-removed",
        "room_deleted" => "thenvoi/events/room-deleted",
        "room_added" => "thenvoi/events/room-added",
        "room_removed" => "thenvoi/events/room-removed",
        _ => return None,
    })
}

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// The socket URL for `query` (`ws://` from `http://`).
pub fn socket_url(cx: &Ctx, query: &str) -> String {
    let base = &cx.profile.base_url;
    let ws = base
        .strip_prefix("https://")
        .map(|r| format!("wss://{r}"))
        .or_else(|| base.strip_prefix("http://").map(|r| format!("ws://{r}")))
        .unwrap_or_else(|| base.clone());
    format!("{ws}/api/v1/socket/websocket?{query}")
}

/// `vsn=2.0.0&api_key=KEY`.
pub fn key_query(key: &str) -> String {
    format!("vsn=2.0.0&api_key={key}")
}

/// A raw Phoenix V2 socket: every frame is logged and schema-checked; frames
/// a wait skips stay queued for later waits.
pub struct Phx {
    ws: Ws,
    cx: Ctx,
    label: String,
    pending: VecDeque<Value>,
    next_ref: u64,
    closed: Option<Option<u16>>,
    pub transcript: Vec<String>,
}

/// Why an upgrade did not give a socket.
#[derive(Debug)]
pub enum Refused {
    Http(u16),
    Other(String),
}

impl Phx {
    /// Opens a socket with `query`; `Err` when the upgrade is refused.
    pub async fn try_open(cx: &Ctx, query: &str, label: &str) -> Result<Phx, Refused> {
        let url = socket_url(cx, query);
        let line = format!("[{label}] → GET {url} (upgrade)");
        cx.log(line.clone());
        let opened =
            tokio::time::timeout(cx.timeout, tokio_tungstenite::connect_async(url.as_str())).await;
        match opened {
            Ok(Ok((ws, _))) => Ok(Phx {
                ws,
                cx: cx.clone(),
                label: label.into(),
                pending: VecDeque::new(),
                next_ref: 0,
                closed: None,
                transcript: vec![line],
            }),
            Ok(Err(tungstenite::Error::Http(resp))) => {
                cx.log(format!("[{label}] ← HTTP {}", resp.status().as_u16()));
                Err(Refused::Http(resp.status().as_u16()))
            }
            Ok(Err(e)) => Err(Refused::Other(e.to_string())),
            Err(_) => Err(Refused::Other("no answer to the upgrade".into())),
        }
    }

    /// Opens a socket with `query` or fails.
    pub async fn open(cx: &Ctx, query: &str, label: &str) -> Step<Phx> {
        Phx::try_open(cx, query, label).await.map_err(|e| {
            Outcome::fail(
                ["the WebSocket upgrade to succeed (101)"],
                format!("{e:?}"),
                format!("websocat '{}'", socket_url(cx, query)),
            )
        })
    }

    /// A socket authenticated with `key` (`vsn=2.0.0&api_key=`).
    pub async fn with_key(cx: &Ctx, key: &str, label: &str) -> Step<Phx> {
        Phx::open(cx, &key_query(key), label).await
    }

    fn note(&mut self, line: String) {
        let line = format!("[{}] {line}", self.label);
        self.cx.log(line.clone());
        self.transcript.push(line);
    }

    /// The frames exchanged so far (the reproducer).
    pub fn frames(&self) -> String {
        self.transcript.join("\n")
    }

    /// How long a wait lasts by default (the run's timeout).
    pub fn timeout(&self) -> Duration {
        self.cx.timeout
    }

    /// Whether a frame `pick` accepts was read and skipped by an earlier
    /// wait (so it arrived before what that wait looked for).
    pub fn queued(&self, pick: impl Fn(&Value) -> bool) -> bool {
        self.pending.iter().any(pick)
    }

    /// A fresh ref.
    pub fn next_ref(&mut self) -> String {
        self.next_ref += 1;
        self.next_ref.to_string()
    }

    /// Sends a text frame as is.
    pub async fn send_text(&mut self, text: String) -> Step<()> {
        self.note(format!("→ {text}"));
        let sent = self.ws.send(Message::text(text)).await;
        sent.map_err(|e| Outcome::fail(["the frame to be sent"], e.to_string(), self.frames()))
    }

    /// Sends `[join_ref, ref, topic, event, payload]`.
    pub async fn send(&mut self, frame: Value) -> Step<()> {
        self.send_text(frame.to_string()).await
    }

    /// The next frame from the wire (not the queue), schema-checked.
    async fn read(&mut self, within: Duration) -> Step<Got> {
        if let Some(code) = self.closed {
            return Ok(Got::Closed(code));
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let msg = match tokio::time::timeout(left, self.ws.next()).await {
                Err(_) => return Ok(Got::Timeout),
                Ok(m) => m,
            };
            let text = match msg {
                Some(Ok(Message::Text(t))) => t.to_string(),
                Some(Ok(Message::Close(c))) => {
                    let code = c.map(|c| u16::from(c.code));
                    self.note(format!("← close {code:?}"));
                    self.closed = Some(code);
                    return Ok(Got::Closed(code));
                }
                Some(Ok(Message::Binary(b))) => {
                    self.note(format!("← binary frame ({} bytes)", b.len()));
                    return Err(Outcome::fail(
                        ["JSON text frames only (T5)"],
                        "a binary frame",
                        self.frames(),
                    ));
                }
                Some(Ok(_)) => continue,
                None | Some(Err(_)) => {
                    self.note("← connection ended without a close frame".into());
                    self.closed = Some(None);
                    return Ok(Got::Closed(None));
                }
            };
            self.note(format!("← {}", short_text(&text)));
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            self.check(&v)?;
            return Ok(Got::Frame(v));
        }
    }

    /// Validates a server frame and, for a push, its payload.
    fn check(&self, v: &Value) -> Step<()> {
        valid(&self.cx, "thenvoi/phoenix/frame", v, &self.frames())?;
        valid(&self.cx, frame_schema(v), v, &self.frames())?;
        if frame_schema(v) == "thenvoi/phoenix/push"
            && let Some(s) = v[3].as_str().and_then(event_schema)
        {
            valid(&self.cx, s, &v[4], &self.frames())?;
        }
        Ok(())
    }

    /// The first frame `pick` accepts (queued ones first), leaving the others
    /// queued; `None` when `within` runs out or the socket ends.
    pub async fn wait(
        &mut self,
        within: Duration,
        pick: impl Fn(&Value) -> bool,
    ) -> Step<Option<Value>> {
        if let Some(i) = self.pending.iter().position(&pick) {
            return Ok(self.pending.remove(i));
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read(left).await? {
                Got::Frame(f) if pick(&f) => return Ok(Some(f)),
                Got::Frame(f) => self.pending.push_back(f),
                Got::Closed(_) | Got::Timeout => return Ok(None),
            }
        }
    }

    /// Every frame (queued, then read) until `within` runs out or the socket ends.
    pub async fn drain(&mut self, within: Duration) -> Step<Vec<Value>> {
        let mut out: Vec<Value> = self.pending.drain(..).collect();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read(left).await? {
                Got::Frame(f) => out.push(f),
                Got::Closed(_) | Got::Timeout => return Ok(out),
            }
        }
    }

    /// How the socket ended within `within`: `Some(code)` once closed
    /// (frames read meanwhile are queued), `None` while still open.
    pub async fn closed_within(&mut self, within: Duration) -> Step<Option<Option<u16>>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read(left).await? {
                Got::Frame(f) => self.pending.push_back(f),
                Got::Closed(code) => return Ok(Some(code)),
                Got::Timeout => return Ok(None),
            }
        }
    }

    /// Sends `[jr, r, topic, event, payload]` and waits for the `phx_reply`
    /// on that topic carrying ref `r` (or, leniently, a null ref: the refs
    /// are `thenvoi.ws.6`'s to check). Returns the whole reply frame.
    pub async fn request(
        &mut self,
        join_ref: Option<&str>,
        topic: &str,
        event: &str,
        payload: Value,
    ) -> Step<Value> {
        let r = self.next_ref();
        self.send(json!([join_ref, r, topic, event, payload]))
            .await?;
        let topic_owned = topic.to_string();
        let got = self
            .wait(self.cx.timeout, |f| {
                f[3] == "phx_reply"
                    && f[2] == topic_owned.as_str()
                    && (f[1] == r.as_str() || f[1].is_null())
            })
            .await?;
        got.ok_or_else(|| {
            Outcome::fail(
                [format!(
                    "a phx_reply to {event} on {topic} within {:?}",
                    self.cx.timeout
                )],
                "none (silence, or the socket ended)",
                self.frames(),
            )
        })
    }

    /// Joins `topic` with a fresh join_ref; returns (join_ref, reply frame).
    pub async fn join(&mut self, topic: &str) -> Step<(String, Value)> {
        let jr = format!("j{}", self.next_ref);
        let reply = self
            .request(Some(&jr), topic, "phx_join", json!({}))
            .await?;
        Ok((jr, reply))
    }

    /// Joins `topic` and requires `{"status": "ok"}`; returns the join_ref.
    pub async fn join_ok(&mut self, topic: &str) -> Step<String> {
        let (jr, reply) = self.join(topic).await?;
        ensure(
            reply[4]["status"] == "ok",
            &[&format!(
                "the join of {topic} to be accepted (status ok, T8/T15)"
            )],
            short(&reply),
            &self.frames(),
        )?;
        Ok(jr)
    }

    /// Joins `topic` and requires a refusal with `reason` (T8, T16).
    pub async fn join_refused(&mut self, topic: &str, reason: &str) -> Step<()> {
        let (_, reply) = self.join(topic).await?;
        ensure(
            reply[4]["status"] == "error" && reply[4]["response"]["reason"] == reason,
            &[&format!(
                "the join of {topic} refused: {{\"status\": \"error\", \"response\": {{\"reason\": \"{reason}\"}}}}"
            )],
            short(&reply),
            &self.frames(),
        )
    }

    /// Waits for a push of `event` on `topic`; returns its payload.
    pub async fn push(&mut self, topic: &str, event: &str) -> Step<Value> {
        let within = self.cx.timeout;
        let got = self
            .wait(within, |f| f[2] == topic && f[3] == event)
            .await?;
        got.map(|f| f[4].clone()).ok_or_else(|| {
            Outcome::fail(
                [format!("{event} pushed on {topic} within {within:?}")],
                "no such push",
                self.frames(),
            )
        })
    }

    /// Requires that no frame `pick` accepts arrives within `within`
    /// (the queue included).
    pub async fn none(
        &mut self,
        within: Duration,
        what: &str,
        pick: impl Fn(&Value) -> bool,
    ) -> Step<()> {
        let got = self.wait(within, pick).await?;
        match got {
            None => Ok(()),
            Some(f) => Err(Outcome::fail(
                [format!("no {what}")],
                format!("got {}", short(&f)),
                self.frames(),
            )),
        }
    }

    /// Sends a heartbeat and returns the reply frame, if any.
    pub async fn heartbeat(&mut self) -> Step<Option<Value>> {
        let r = self.next_ref();
        self.send(json!([null, r, "phoenix", "heartbeat", {}]))
            .await?;
        let within = self.cx.timeout;
        self.wait(within, |f| f[2] == "phoenix" && f[1] == r.as_str())
            .await
    }

    /// Closes the socket (best effort).
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

fn short_text(s: &str) -> String {
    if s.len() <= 300 {
        return s.to_string();
    }
    let cut = (0..=300)
        .rev()
        .find(|i| s.is_char_boundary(*i))
        .unwrap_or(0);
    format!("{}… ({} bytes)", &s[..cut], s.len())
}

/// A push on `topic` of `event` (for [`Phx::wait`] and [`Phx::none`]).
pub fn is_push(f: &Value, topic: &str, event: &str) -> bool {
    (f[0].is_null() || f[0].is_string()) && f[1].is_null() && f[2] == topic && f[3] == event
}

/// A `message_created` push of message `mid` on `chat_room:{room}`.
pub fn is_message(f: &Value, room: &str, mid: &str) -> bool {
    f[2] == format!("chat_room:{room}").as_str() && f[3] == "message_created" && f[4]["id"] == mid
}
