//! What a conformance case is, and what it needs to run.
//!
//! A case has a stable id (`group.sub.N`; a number is never reused), a level,
//! what it does, the rule it checks (a docs/PROTOCOL.md line, quoted) and a
//! run function, in the manner of h2spec. A failure lists every acceptable
//! outcome (`expected`) and what happened (`actual`), with a reproducer: a
//! curl line for REST, the frame sequence for realtime.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::profile::Profile;
use crate::schema::SchemaSet;

/// How much a rule binds (PROTOCOL.md: STATED → MUST, CHOSEN → SHOULD/INFO).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Must,
    Should,
    Info,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so `{:<6}` lines the levels up.
        f.pad(match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::Info => "INFO",
        })
    }
}

/// What a case found.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Pass,
    Fail(Failure),
    /// The profile lacks what the case needs (not a failure).
    Unsupported(String),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    /// Every acceptable outcome.
    pub expected: Vec<String>,
    pub actual: String,
    /// How to see it again: a curl line, or the frames exchanged.
    pub reproducer: String,
}

impl Outcome {
    pub fn fail(
        expected: impl IntoIterator<Item = impl Into<String>>,
        actual: impl Into<String>,
        reproducer: impl Into<String>,
    ) -> Outcome {
        Outcome::Fail(Failure {
            expected: expected.into_iter().map(Into::into).collect(),
            actual: actual.into(),
            reproducer: reproducer.into(),
        })
    }
}

pub type CaseFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// One conformance case.
pub struct Case {
    pub id: &'static str,
    pub level: Level,
    /// What the runner does.
    pub desc: &'static str,
    /// The rule, quoted from docs/PROTOCOL.md (with its rule number).
    pub requirement: &'static str,
    pub run: fn(Ctx) -> CaseFuture,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Case({} {})", self.id, self.level)
    }
}

/// A payload seen during the run, with the schema it must match.
#[derive(Debug, Clone)]
pub struct Seen {
    pub schema: &'static str,
    pub payload: Value,
    pub case: &'static str,
}

/// State shared by the cases of one run (built once, on first use).
#[derive(Default)]
pub struct Shared {
    /// A chat of user 1 holding only seeded messages: (chat id, ids in send order).
    pub seeded: tokio::sync::OnceCell<Result<(String, Vec<String>), Outcome>>,
}

/// Everything a case gets: the profile, an HTTP client, the schemas, its
/// timeout, a wire log and the run-wide recorder of payloads seen.
#[derive(Clone)]
pub struct Ctx {
    pub profile: Arc<Profile>,
    pub http: reqwest::Client,
    pub schemas: &'static SchemaSet,
    pub timeout: Duration,
    pub case_id: &'static str,
    pub wire: Arc<Mutex<Vec<String>>>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub shared: Arc<Shared>,
}

impl Ctx {
    /// Notes a line in the case's wire log (shown when it fails).
    pub fn log(&self, line: impl Into<String>) {
        self.wire
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line.into());
    }

    /// Records a payload for the `schema.*` summary and returns its
    /// violations (empty when it matches).
    pub fn record(&self, schema: &'static str, payload: &Value) -> Vec<String> {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Seen {
                schema,
                payload: payload.clone(),
                case: self.case_id,
            });
        match self.schemas.check(schema, payload) {
            Ok(()) => Vec::new(),
            Err(v) => v.iter().map(ToString::to_string).collect(),
        }
    }

    /// The wire log so far, one line per exchange.
    pub fn wire_log(&self) -> String {
        self.wire
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .join("\n")
    }
}
