//! Helpers every case uses: REST calls that log a curl reproducer, sockets
//! that log every frame, and `Step` results so a case reads top to bottom.
//!
//! Sockets go through the client's session surface (`client::session`):
//! the same login, ack wait and frame classification the load generator
//! uses, with every frame shown to the transcript on the way.

use std::collections::VecDeque;
use std::time::Duration;

use serde_json::{Value, json};

use crate::case::{CaseFuture, Ctx, Outcome};
use crate::client::{Client, Frame, Login, SessionError, auth, event};

/// A step of a case: `Err` carries the outcome that ends it.
pub type Step<T> = Result<T, Outcome>;

/// Turns a case body into the run function's future.
pub fn run<F>(f: F) -> CaseFuture
where
    F: std::future::Future<Output = Step<()>> + Send + 'static,
{
    Box::pin(async move {
        match f.await {
            Ok(()) => Outcome::Pass,
            Err(o) => o,
        }
    })
}

/// What the profile must provide, else the case is unsupported.
pub fn need<T: Clone>(v: Option<&T>, what: &str) -> Step<T> {
    v.cloned()
        .ok_or_else(|| Outcome::Unsupported(format!("the profile has no {what}")))
}

/// Fails with `expected` / `actual` unless `cond`.
pub fn ensure(
    cond: bool,
    expected: &[&str],
    actual: impl Into<String>,
    reproducer: &str,
) -> Step<()> {
    if cond {
        Ok(())
    } else {
        Err(Outcome::fail(expected.iter().copied(), actual, reproducer))
    }
}

/// Shortens JSON for messages.
pub fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() <= 300 {
        s
    } else {
        let cut = (0..=300)
            .rev()
            .find(|i| s.is_char_boundary(*i))
            .unwrap_or(0);
        format!("{}… ({} bytes)", &s[..cut], s.len())
    }
}

/// A REST answer with its reproducer.
#[derive(Debug, Clone)]
pub struct Rest {
    pub status: u16,
    pub body: Value,
    pub curl: String,
}

impl Rest {
    /// `data` of a success envelope.
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }
}

/// `s` in single quotes for a POSIX shell (a quote inside becomes `'\''`).
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The curl line that sends the same request: the method, the URL, the
/// headers that decide the answer (`Authorization`, `Content-Type`) and the
/// body byte for byte (`--data-raw`: no `@file` reading, nothing stripped).
fn curl(method: &str, url: &str, token: Option<&str>, body: Option<(&str, &str)>) -> String {
    let mut c = format!("curl -s -X {method} {}", sh_quote(url));
    if let Some(t) = token {
        c.push_str(" -H ");
        c.push_str(&sh_quote(&format!("Authorization: Bearer {t}")));
    }
    if let Some((content_type, b)) = body {
        c.push_str(" -H ");
        c.push_str(&sh_quote(&format!("Content-Type: {content_type}")));
        c.push_str(" --data-raw ");
        c.push_str(&sh_quote(b));
    }
    c
}

/// Sends a request; a body that is not JSON becomes `Value::String`.
pub async fn rest(
    cx: &Ctx,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Step<Rest> {
    rest_raw(
        cx,
        method,
        path,
        token,
        body.map(|b| ("application/json", b.to_string())),
    )
    .await
}

/// Sends a request with a raw body and content type.
pub async fn rest_raw(
    cx: &Ctx,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, String)>,
) -> Step<Rest> {
    let url = format!("{}{path}", cx.profile.base_url);
    let repro = curl(
        method,
        &url,
        token,
        body.as_ref().map(|(ct, b)| (*ct, b.as_str())),
    );
    let m = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|e| Outcome::fail(["a valid method"], e.to_string(), ""))?;
    let mut req = cx.http.request(m, &url).timeout(cx.timeout);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some((ct, b)) = body {
        req = req.header("content-type", ct).body(b);
    }
    let resp = req.send().await.map_err(|e| {
        Outcome::fail(
            ["an HTTP response"],
            format!("request failed: {e}"),
            repro.clone(),
        )
    })?;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    cx.log(format!("{method} {path} → {status} {}", short(&body)));
    Ok(Rest {
        status,
        body,
        curl: repro,
    })
}

/// Checks the envelope (`objects/envelope`), recording it for the schema summary.
pub fn envelope(cx: &Ctx, r: &Rest) -> Step<()> {
    let v = cx.record("objects/envelope", &r.body);
    ensure(
        v.is_empty(),
        &["a body that is the envelope {ok, data?, error?: {message}, meta?}"],
        format!("{}: {}", short(&r.body), v.join("; ")),
        &r.curl,
    )
}

/// Checks the envelope and that the status is one `accept` allows;
/// `expected` says which in the failure.
pub fn status(cx: &Ctx, r: &Rest, accept: impl Fn(u16) -> bool, expected: &str) -> Step<()> {
    envelope(cx, r)?;
    ensure(
        accept(r.status),
        &[expected],
        format!("{} {}", r.status, short(&r.body)),
        &r.curl,
    )
}

/// Checks a value against a schema, recording it.
pub fn schema(cx: &Ctx, name: &'static str, v: &Value, repro: &str) -> Step<()> {
    let errors = cx.record(name, v);
    ensure(
        errors.is_empty(),
        &[&format!("a payload matching schemas/{name}.json")],
        format!("{}: {}", short(v), errors.join("; ")),
        repro,
    )
}

/// Creates a chat as `token` with the given participants; returns its id.
pub async fn create_chat(cx: &Ctx, token: &str, participants: Value) -> Step<String> {
    let r = rest(
        cx,
        "POST",
        "/api/chats",
        Some(token),
        Some(&json!({ "participants": participants })),
    )
    .await?;
    ensure(
        (200..300).contains(&r.status),
        &["2xx creating a chat"],
        format!("{} {}", r.status, short(&r.body)),
        &r.curl,
    )?;
    r.data()["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| Outcome::fail(["data.id of the new chat"], short(&r.body), r.curl.clone()))
}

/// A socket that logs every frame and keeps frames that arrive while it waits
/// for something else.
pub struct Sock {
    client: Client,
    cx: Ctx,
    label: String,
    pending: VecDeque<Frame>,
    pub transcript: Vec<String>,
}

fn frame_line(f: &Frame) -> String {
    match f {
        Frame::Event { name, payload } => format!("{name} {}", short(payload)),
        Frame::Ack { id, payload } => ack_line(*id, payload),
        Frame::Connected(v) => format!("CONNECT {v}"),
        Frame::ConnectError(v) => format!("CONNECT_ERROR {v}"),
        Frame::Disconnected => "DISCONNECT".into(),
        Frame::Other(t) => format!("other {t}"),
    }
}

fn ack_line(id: u64, payload: &Value) -> String {
    format!("ack#{id} {}", short(payload))
}

/// `[label] line`, to the run's log and the socket's transcript.
fn note_to(cx: &Ctx, label: &str, transcript: &mut Vec<String>, line: String) {
    let line = format!("[{label}] {line}");
    cx.log(line.clone());
    transcript.push(line);
}

fn connect_line(token: &str) -> String {
    format!(
        "→ CONNECT auth.token={}…",
        token.chars().take(12).collect::<String>()
    )
}

fn connect_reproducer(cx: &Ctx) -> String {
    format!("io('{}', {{ auth: {{ token }} }})", cx.profile.base_url)
}

impl Sock {
    /// Opens a socket with `auth: {token}` and reads the socket.io CONNECT answer.
    pub async fn open(cx: &Ctx, token: &str, label: &str) -> Step<Sock> {
        let client = Client::connect(&cx.profile.base_url, &auth(token))
            .await
            .map_err(|e| {
                Outcome::fail(
                    ["a socket.io connection"],
                    e.to_string(),
                    connect_reproducer(cx),
                )
            })?;
        let mut s = Sock::new(client, cx, label);
        s.note(connect_line(token));
        Ok(s)
    }

    fn new(client: Client, cx: &Ctx, label: &str) -> Sock {
        Sock {
            client,
            cx: cx.clone(),
            label: label.to_string(),
            pending: VecDeque::new(),
            transcript: Vec::new(),
        }
    }

    fn note(&mut self, line: String) {
        note_to(&self.cx, &self.label, &mut self.transcript, line);
    }

    /// The frames exchanged so far (a realtime reproducer).
    pub fn frames(&self) -> String {
        self.transcript.join("\n")
    }

    /// The next frame (pending first), or `None` when `within` runs out or the
    /// connection ends.
    pub async fn next(&mut self, within: Duration) -> Option<Frame> {
        if let Some(f) = self.pending.pop_front() {
            return Some(f);
        }
        match tokio::time::timeout(within, self.client.next_frame()).await {
            Ok(Ok(f)) => {
                self.note(format!("← {}", frame_line(&f)));
                Some(f)
            }
            Ok(Err(e)) => {
                self.note(format!("← connection ended: {e}"));
                None
            }
            Err(_) => None,
        }
    }

    /// Skips the CONNECT answer, then returns the first event.
    pub async fn first_event(&mut self) -> Step<(String, Value)> {
        let limit = self.cx.timeout;
        loop {
            match self.next(limit).await {
                Some(Frame::Connected(_)) => continue,
                Some(Frame::Event { name, payload }) => return Ok((name, payload)),
                Some(Frame::ConnectError(v)) => return Ok((event::CONNECT_ERROR.into(), v)),
                Some(Frame::Disconnected) => return Ok((event::DISCONNECT.into(), Value::Null)),
                Some(_) => continue,
                None => {
                    return Err(Outcome::fail(
                        ["an event after connecting (success or error)"],
                        "nothing within the timeout",
                        self.frames(),
                    ));
                }
            }
        }
    }

    /// Connects as `token` and requires `success` (`client::Login`: an
    /// `error` or CONNECT_ERROR first is a refusal; other frames are logged
    /// and read past).
    pub async fn authed(cx: &Ctx, token: &str, label: &str) -> Step<Sock> {
        let mut transcript = Vec::new();
        note_to(cx, label, &mut transcript, connect_line(token));
        let opened = Login::new(&cx.profile.base_url, token)
            .within(cx.timeout)
            .open_observed(|f| note_to(cx, label, &mut transcript, format!("← {}", frame_line(f))))
            .await;
        match opened {
            Ok(client) => {
                let mut s = Sock::new(client, cx, label);
                s.transcript = transcript;
                Ok(s)
            }
            Err(e @ SessionError::Unreachable { .. }) => Err(Outcome::fail(
                ["a socket.io connection"],
                e.to_string(),
                connect_reproducer(cx),
            )),
            Err(e) => Err(Outcome::fail(
                [format!("{} {{entity}}", event::SUCCESS)],
                e.to_string(),
                transcript.join("\n"),
            )),
        }
    }

    /// Emits with an ack; frames that arrive first are kept for later reads.
    pub async fn ack(&mut self, event: &str, payload: &Value) -> Step<Value> {
        let id = self
            .client
            .emit_with_ack(event, payload)
            .await
            .map_err(|e| Outcome::fail(["the emit to be sent"], e.to_string(), self.frames()))?;
        self.note(format!("→ {event}#{id} {}", short(payload)));
        let mut early = Vec::new();
        let (cx, label, transcript) = (&self.cx, &self.label, &mut self.transcript);
        let answer = self
            .client
            .await_ack(id, event, cx.timeout, |f| {
                note_to(cx, label, transcript, format!("← {}", frame_line(&f)));
                early.push(f);
            })
            .await;
        match answer {
            Ok(payload) => {
                self.note(format!("← {}", ack_line(id, &payload)));
                self.pending.extend(early);
                Ok(payload)
            }
            Err(SessionError::Stalled { .. }) => Err(Outcome::fail(
                [format!("an ack for {event} within {:?}", self.cx.timeout)],
                "no ack (silence)",
                self.frames(),
            )),
            Err(e) => Err(Outcome::fail(
                [format!("an ack for {event}")],
                format!("connection ended: {e}"),
                self.frames(),
            )),
        }
    }

    /// Emits without an ack.
    pub async fn emit(&mut self, event: &str, payload: &Value) -> Step<()> {
        self.client
            .emit(event, payload)
            .await
            .map_err(|e| Outcome::fail(["the emit to be sent"], e.to_string(), self.frames()))?;
        self.note(format!("→ {event} {}", short(payload)));
        Ok(())
    }

    /// Collects events until `done` says stop, the connection ends, or the
    /// timeout; returns them with whether `done` was reached.
    pub async fn events_until(
        &mut self,
        within: Duration,
        mut done: impl FnMut(&str, &Value) -> bool,
    ) -> (Vec<(String, Value)>, bool) {
        let deadline = tokio::time::Instant::now() + within;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(Frame::Event { name, payload }) => {
                    let stop = done(&name, &payload);
                    out.push((name, payload));
                    if stop {
                        return (out, true);
                    }
                }
                Some(Frame::Disconnected) | None => return (out, false),
                Some(_) => {}
            }
        }
    }

    pub async fn close(self) {
        self.client.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::curl;

    #[test]
    fn a_curl_line_carries_the_method_the_headers_and_the_body() {
        let c = curl(
            "POST",
            "http://127.0.0.1:4000/api/chats",
            Some("user-abc"),
            Some(("text/plain", "hello")),
        );
        assert_eq!(
            c,
            "curl -s -X POST 'http://127.0.0.1:4000/api/chats' \
             -H 'Authorization: Bearer user-abc' \
             -H 'Content-Type: text/plain' --data-raw 'hello'"
        );
    }

    #[test]
    fn a_body_with_single_quotes_is_quoted_for_the_shell() {
        let c = curl(
            "POST",
            "http://h/api/messages",
            None,
            Some(("application/json", r#"{"content":"it's"}"#)),
        );
        assert!(c.ends_with(r#"--data-raw '{"content":"it'\''s"}'"#), "{c}");
    }

    #[test]
    fn a_request_without_a_body_has_no_content_type() {
        let c = curl("GET", "http://h/api/chats", Some("user-abc"), None);
        assert!(!c.contains("Content-Type") && !c.contains("--data"), "{c}");
    }
}
