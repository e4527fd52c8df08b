//! Webhook delivery: the challenge, SYNC and ASYNC dispatch, the delivery log.
//!
//! - **SYNC** (PROTOCOL.md R23): events for one instance in one chat go
//!   through one queue, each awaited (bounded by the webhook timeout) before
//!   the next, so the plugin sees them in order. One attempt each. Other
//!   chats and other instances have their own queues: a slow webhook never
//!   holds up anything but its own queue, and never the realtime path.
//! - **ASYNC**: each event in the background, retried on failure (a non-2xx
//!   answer, a timeout, a refused connection) with exponential backoff:
//!   `retry_base`, then doubled, for `attempts` attempts in all.
//!
//! - **Priority**: deliveries run on the background runtime (see
//!   [`crate::priority`]): the realtime path never waits for a webhook, and
//!   when a flood of webhooks saturates the CPU the streams get it first.
//!
//! Every attempt is logged: event, URL, attempt number, status or error,
//! latency, and the request and response bodies trimmed to
//! [`BODY_LOG_LIMIT`] bytes (`GET /__admin/deliveries`, and the journal).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::journal::{Journal, Kind, Note};

/// Request and response bodies are kept up to this many bytes in the log.
pub const BODY_LOG_LIMIT: usize = 4096;
/// Delivery log entries kept (the oldest go first).
pub const LOG_CAPACITY: usize = 2000;

/// Webhook delivery settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Per-attempt timeout (SYNC and ASYNC, and the challenge).
    pub timeout: Duration,
    /// ASYNC attempts in all (first try included).
    pub attempts: u32,
    /// ASYNC: the first retry waits this long; each next one twice as long.
    pub retry_base: Duration,
    /// Which hosts webhooks may reach (`--webhook-allow`); `None`: loopback
    /// when the mock listens on loopback, none otherwise (see [`super::outbound`]).
    pub allow: Option<super::outbound::Allow>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            timeout: Duration::from_secs(5),
            attempts: 4,
            retry_base: Duration::from_millis(200),
            allow: None,
        }
    }
}

/// One delivery attempt.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub seq: u64,
    pub event: String,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<String>,
    pub mode: &'static str,
    pub attempt: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub latency_ms: u64,
    pub request: String,
    pub response: String,
    pub ok: bool,
}

/// Where and how an event goes.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    pub instance_id: Option<String>,
    pub chat_id: Option<String>,
    pub sync: bool,
}

struct Job {
    target: Target,
    body: Value,
    /// Set on a `PLUGIN_INSTALLED`: said `true` when its delivery ended.
    installed: Option<tokio::sync::watch::Sender<bool>>,
}

/// Tells the instance's waiting events that its `PLUGIN_INSTALLED`
/// delivery ended, however it ended (delivered, given up, aborted).
struct Done(Option<tokio::sync::watch::Sender<bool>>);

impl Drop for Done {
    fn drop(&mut self) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(true);
        }
    }
}

fn trim(s: &str) -> String {
    if s.len() <= BODY_LOG_LIMIT {
        return s.to_string();
    }
    let cut = (0..=BODY_LOG_LIMIT)
        .rev()
        .find(|i| s.is_char_boundary(*i))
        .unwrap_or(0);
    format!("{}… ({} bytes)", &s[..cut], s.len())
}

/// At most [`EXCERPT`] characters of a webhook's answer, quoted, for an
/// error message: enough to recognise it, never a page of someone's server.
fn excerpt(s: &str) -> String {
    let short: String = s.chars().take(EXCERPT).collect();
    if short.len() < s.len() {
        format!("{short:?}…")
    } else {
        format!("{short:?}")
    }
}

/// A webhook's answer is read up to this many bytes; a longer one is a
/// failed delivery ("too large"), so a webhook cannot fill the mock's memory.
pub const ANSWER_LIMIT: usize = 64 * 1024;

/// Reads an answer's body, at most [`ANSWER_LIMIT`] bytes.
async fn read_bounded(mut resp: reqwest::Response) -> Result<String, String> {
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > ANSWER_LIMIT {
                    return Err(format!(
                        "the answer is too large (over {} KiB)",
                        ANSWER_LIMIT / 1024
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(String::from_utf8_lossy(&body).into_owned()),
            Err(e) if e.is_timeout() => return Err("timed out reading the answer".into()),
            Err(e) => return Err(format!("the answer could not be read: {e}")),
        }
    }
}

/// Characters of an answer quoted in an error message.
pub const EXCERPT: usize = 80;

/// Delivers plugin events.
pub struct Dispatcher {
    http: reqwest::Client,
    /// Where webhooks may go; checked before every request.
    pub policy: super::outbound::Policy,
    pub settings: Settings,
    log: Mutex<VecDeque<Delivery>>,
    seq: AtomicU64,
    /// SYNC queues, one per (instance, chat).
    queues: Mutex<HashMap<(String, String), mpsc::UnboundedSender<Job>>>,
    /// The `dispatch-out-of-order` fault: instance id → (url, chat id, event) held back.
    pub held: Mutex<HashMap<String, (String, String, Value)>>,
    /// Instances whose `PLUGIN_INSTALLED` is still on its way: their other
    /// events wait for it (a plugin gets its token before anything it must
    /// answer with it), at most one webhook timeout per attempt.
    installing: Mutex<HashMap<String, tokio::sync::watch::Receiver<bool>>>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("settings", &self.settings)
            .finish()
    }
}

impl Dispatcher {
    pub fn new(settings: Settings) -> Self {
        // No redirects: a 3xx could send the body anywhere the policy refuses.
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Dispatcher {
            http,
            policy: super::outbound::Policy::new(settings.allow.clone()),
            settings,
            log: Mutex::default(),
            seq: AtomicU64::new(0),
            queues: Mutex::default(),
            held: Mutex::default(),
            installing: Mutex::default(),
        }
    }

    /// The delivery log, oldest first.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// How many attempts the log holds.
    /// SYNC queues alive, one per (instance, chat) that had an event.
    pub fn queue_count(&self) -> usize {
        self.queues.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn delivery_count(&self) -> usize {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Forgets queues and the log (on reset; queued SYNC events are dropped).
    pub fn clear(&self) {
        self.queues
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.held.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.installing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Marks `PLUGIN_INSTALLED` of an instance as on its way; the sender
    /// says when its delivery ended (delivered or given up).
    fn installing(&self, instance: &str) -> tokio::sync::watch::Sender<bool> {
        let (tx, rx) = tokio::sync::watch::channel(false);
        self.installing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(instance.to_string(), rx);
        tx
    }

    /// Waits until the instance's `PLUGIN_INSTALLED` delivery ended, if one
    /// is on its way; never longer than its attempts could take.
    async fn after_install(&self, instance: Option<&str>) {
        let Some(mut rx) = instance.and_then(|i| {
            self.installing
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(i)
                .cloned()
        }) else {
            return;
        };
        let bound = self.settings.timeout * self.settings.attempts.max(1) + Duration::from_secs(1);
        let _ = tokio::time::timeout(bound, rx.wait_for(|done| *done)).await;
    }

    /// One POST, logged; `Ok(body)` on a 2xx answer.
    async fn attempt(
        &self,
        journal: &Journal,
        target: &Target,
        body: &Value,
        attempt: u32,
    ) -> Result<Value, String> {
        let event = body
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        let request = body.to_string();
        let started = Instant::now();
        let result = match self.policy.check(&target.url).await {
            Ok(()) => Ok(self
                .http
                .post(&target.url)
                .header("content-type", "application/json")
                .body(request.clone())
                .send()
                .await),
            Err(refused) => Err(format!("not sent: {refused}")),
        };
        let (status, error, text) = match result {
            Err(refused) => (None, Some(refused), String::new()),
            Ok(result) => match result {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    match read_bounded(resp).await {
                        Ok(text) => (
                            Some(status),
                            (!(200..300).contains(&status)).then(|| format!("answered {status}")),
                            text,
                        ),
                        Err(why) => (Some(status), Some(why), String::new()),
                    }
                }
                Err(e) if e.is_timeout() => (
                    None,
                    Some(format!("timed out after {:?}", self.settings.timeout)),
                    String::new(),
                ),
                Err(e) if e.is_connect() => {
                    (None, Some(format!("unreachable: {e}")), String::new())
                }
                Err(e) => (None, Some(format!("request failed: {e}")), String::new()),
            },
        };
        let delivery = Delivery {
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            event: event.clone(),
            url: target.url.clone(),
            instance_id: target.instance_id.clone(),
            chat_id: target.chat_id.clone(),
            mode: if target.sync { "SYNC" } else { "ASYNC" },
            attempt,
            status,
            error: error.clone(),
            latency_ms: started.elapsed().as_millis() as u64,
            request: trim(&request),
            response: trim(&text),
            ok: error.is_none(),
        };
        match &error {
            None => tracing::debug!(%event, url = %target.url, attempt, "webhook delivered"),
            Some(e) => {
                tracing::warn!(%event, url = %target.url, attempt, error = %e, "webhook delivery failed")
            }
        }
        journal.record(
            Kind::Webhook,
            Note {
                event: Some(event),
                chat_id: target.chat_id.clone(),
                detail: serde_json::to_value(&delivery).unwrap_or_default().into(),
                ..Note::default()
            },
        );
        {
            let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
            if log.len() == LOG_CAPACITY {
                log.pop_front();
            }
            log.push_back(delivery);
        }
        match error {
            None => Ok(serde_json::from_str(&text).unwrap_or(Value::String(text))),
            Some(e) => Err(e),
        }
    }

    /// Verifies a webhook (PROTOCOL.md R21): its 2xx JSON answer to
    /// `WEBHOOK_CHALLENGE` must be an object holding the challenge as a string.
    pub async fn challenge(
        &self,
        journal: &Journal,
        url: &str,
        challenge: &str,
    ) -> Result<(), String> {
        let target = Target {
            url: url.to_string(),
            instance_id: None,
            chat_id: None,
            sync: true,
        };
        let body = serde_json::json!({ "name": "WEBHOOK_CHALLENGE", "challenge": challenge });
        let answer = self.attempt(journal, &target, &body, 1).await?;
        match answer.as_object() {
            Some(o) if o.values().any(|v| v.as_str() == Some(challenge)) => Ok(()),
            Some(_) => Err(format!(
                "wrong challenge: the answer does not hold {challenge:?} (answer {{\"challenge\": \"{challenge}\"}})"
            )),
            None => Err(format!(
                "wrong challenge: the answer is not a JSON object (it begins {})",
                excerpt(&answer.to_string())
            )),
        }
    }

    /// Sends an event; returns at once (the realtime path never waits).
    pub fn send(
        self: &std::sync::Arc<Self>,
        journal: std::sync::Arc<Journal>,
        abort: CancellationToken,
        target: Target,
        body: Value,
    ) {
        let installed = (body["name"] == "PLUGIN_INSTALLED")
            .then(|| target.instance_id.as_deref().map(|i| self.installing(i)))
            .flatten();
        if !target.sync {
            let me = self.clone();
            crate::priority::background().spawn(async move {
                let _done = Done(installed);
                if _done.0.is_none() {
                    me.after_install(target.instance_id.as_deref()).await;
                }
                let mut wait = me.settings.retry_base;
                for attempt in 1..=me.settings.attempts.max(1) {
                    if me.attempt(&journal, &target, &body, attempt).await.is_ok() {
                        return;
                    }
                    if attempt == me.settings.attempts {
                        break;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = abort.cancelled() => return,
                    }
                    wait *= 2;
                }
            });
            return;
        }
        let key = (
            target.instance_id.clone().unwrap_or_default(),
            target.chat_id.clone().unwrap_or_default(),
        );
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        let job = Job {
            target,
            body,
            installed,
        };
        let job = match queues.get(&key) {
            Some(tx) => match tx.send(job) {
                Ok(()) => return,
                Err(mpsc::error::SendError(job)) => job,
            },
            None => job,
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let _ = tx.send(job);
        queues.insert(key, tx);
        let me = self.clone();
        crate::priority::background().spawn(async move {
            while let Some(job) =
                tokio::select! { j = rx.recv() => j, _ = abort.cancelled() => None }
            {
                let done = Done(job.installed);
                if done.0.is_none() {
                    me.after_install(job.target.instance_id.as_deref()).await;
                }
                let _ = me.attempt(&journal, &job.target, &job.body, 1).await;
            }
        });
    }
}
