//! Fault injection: deliberate violations of one protocol rule each.
//!
//! A fault is written `NAME[:ARG[:ARG]]`, e.g. `drop-delta:3` or
//! `rest-status:503:/api/chats`, and applies globally, to one chat or to one
//! agent's replies. Faults are set with `--fault` at start or through
//! `POST /__admin/faults` at run time. Positions are 1-based and exact, so a
//! run with the same faults is the same run. The random faults
//! (`drop-random`, `duplicate-random`, `reorder-random`) take a SEED: the
//! deltas they hit are drawn from the seed and the stream's id (which the
//! mock's seeded id generator makes the same on every run), so a failing run
//! is replayed exactly by giving the same seed. Every fault counts how often
//! it fired (`applied` in `GET /__admin/faults`).
//!
//! Each fault exists so the conformance runner can be shown to catch the rule
//! it breaks (docs/CONFORMANCE.md has the table), and so client developers can
//! see how their code copes with realistic trouble.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;

/// One kind of trouble.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum FaultKind {
    /// Wait `ms` before the first delta of each stream.
    DelayFirstDelta { ms: u64 },
    /// After delta `after`, pause `ms` before the next.
    StallStream { after: usize, ms: u64 },
    /// Never send delta number `n` of each stream.
    DropDelta { n: usize },
    /// Send delta `n` twice.
    DuplicateDelta { n: usize },
    /// Send delta `n + 1` before delta `n`.
    ReorderDeltas { n: usize },
    /// Never send `message:done`.
    OmitDone,
    /// Send `message:done` twice.
    DoubleDone,
    /// Send one more delta after `message:done`.
    DeltaAfterDone,
    /// Delta `n` carries a `content` that is not the running concatenation.
    WrongContent { n: usize },
    /// Delta `n` carries another `streamId`.
    WrongStreamId { n: usize },
    /// Disconnect the room's sockets after delta `n`.
    DisconnectMidStream { n: usize },
    /// Send a streamed reply also as a plain `message`.
    PlainMessageForStream,
    /// Every REST response waits `ms`.
    RestLatency { ms: u64 },
    /// REST requests whose path starts with `prefix` answer `status`.
    RestStatus { status: u16, prefix: String },
    /// Page N starts one item early (pages overlap).
    PageOverlap,
    /// Page N starts one item late (an item is skipped).
    PageSkip,
    /// `@cursor` is ignored (index pages are served instead).
    IgnoreCursor,
    /// `@limit` is not capped at 100.
    NoLimitCap,
    /// Unknown or malformed tokens are accepted as the first user.
    AcceptBadToken,
    /// A non-participant may join a chat's room.
    AllowNonParticipantJoin,
    /// REST bodies lack the envelope's `ok`.
    MissingOk,
    /// Every 4xx error is answered as 500.
    ErrorsAs500,
    /// Creations answer 200 instead of 201.
    CreatedAs200,
    /// History pages default to 50 items.
    DefaultLimit50,
    /// A page past the end is 404.
    PastEnd404,
    /// `%40page` / `%40limit` are not recognized.
    IgnoreEncodedParams,
    /// History pages carry no `meta`.
    NoMeta,
    /// Non-participants may read a chat over REST.
    NonParticipantRead,
    /// `POST /api/chats` does not add the caller.
    CallerNotAdded,
    /// `key` / `chatKey` never find an existing chat.
    KeyNotReused,
    /// A message without `type` is stored with `type: null`.
    NoTypeDefault,
    /// `success` is sent without its entity.
    SuccessWithoutEntity,
    /// No client event is ever acknowledged.
    NoAcks,
    /// `chat:join` / `chat:leave` ack `{data: {}}`.
    JoinAckWithoutChatId,
    /// `message:send` does not join the sender to the room.
    NoAutoJoin,
    /// Messages reach only the sender, not the rest of the room.
    NoBroadcast,
    /// The sender does not receive its own message.
    NoEchoToSender,
    /// The `message:send` ack waits MS, after the reply has started.
    AckLate { ms: u64 },
    /// Deltas say `isStreaming: false`.
    DeltaNotStreaming,
    /// `message:done` says `isStreaming: true`.
    DoneStillStreaming,
    /// `message:done` content is not the whole reply.
    DoneContentWrong,
    /// New message ids are not 24-hex.
    BadMessageIds,
    /// `CHAT_*` lifecycle events are not relayed to rooms.
    NoLifecycleEvents,
    /// Plugins register without their webhook answering `WEBHOOK_CHALLENGE`.
    SkipWebhookChallenge,
    /// `PLUGIN_INSTALLED` carries no `token`.
    InstalledWithoutToken,
    /// `AGENT_MESSAGE_RECEIVED` / `APP_INTEGRATION_MESSAGE_RECEIVED` are never dispatched.
    NoMessageDispatch,
    /// Message events reach each instance in swapped pairs (the 2nd before the 1st).
    DispatchOutOfOrder,
    /// Instance tokens may write whatever their scopes say.
    IgnoreScopes,
    /// Uninstalling announces `PLUGIN_UNINSTALLED` but keeps the instance and its token.
    TokenSurvivesUninstall,
    /// Messages posted with an `inst-` token are answered 201 but never stored or relayed.
    DropPluginReplies,
    /// Each delta is dropped / duplicated / reordered with probability 1/`every`, drawn from `seed`.
    RandomDelta {
        action: RandomAction,
        every: u64,
        seed: u64,
    },
}

/// What a random delta fault does to the deltas it draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RandomAction {
    Drop,
    Duplicate,
    Reorder,
}

/// Where a fault applies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Scope {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Fault {
    pub id: u64,
    /// As written: `drop-delta:3`.
    pub spec: String,
    #[serde(flatten)]
    pub kind: FaultKind,
    pub scope: Scope,
    /// How often the fault fired (random delta faults: deltas affected).
    #[serde(serialize_with = "serialize_count")]
    pub applied: Arc<AtomicU64>,
}

fn serialize_count<S: serde::Serializer>(n: &Arc<AtomicU64>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(n.load(Ordering::Relaxed))
}

/// The fault names with their arguments, for help texts and errors.
pub const CATALOG: &[(&str, &str)] = &[
    (
        "delay-first-delta:MS",
        "wait MS before each stream's first delta",
    ),
    ("stall-stream:AFTER:MS", "pause MS after delta AFTER"),
    ("drop-delta:N", "never send delta N of each stream"),
    ("duplicate-delta:N", "send delta N twice"),
    ("reorder-deltas:N", "send delta N+1 before delta N"),
    ("omit-done", "never send message:done"),
    ("double-done", "send message:done twice"),
    ("delta-after-done", "send a delta after message:done"),
    (
        "wrong-content:N",
        "delta N's content is not the running concatenation",
    ),
    ("wrong-stream-id:N", "delta N carries another streamId"),
    (
        "disconnect-mid-stream:N",
        "disconnect the room's sockets after delta N",
    ),
    (
        "plain-message-for-stream",
        "also send a streamed reply as a plain message",
    ),
    ("rest-latency:MS", "every REST response waits MS"),
    (
        "rest-status:CODE:PREFIX",
        "REST paths starting with PREFIX answer CODE (e.g. 503:/api/chats)",
    ),
    ("page-overlap", "history pages overlap by one item"),
    ("page-skip", "history pages skip one item"),
    ("ignore-cursor", "@cursor is ignored"),
    ("no-limit-cap", "@limit is not capped at 100"),
    ("accept-bad-token", "unknown tokens act as the first user"),
    (
        "allow-non-participant-join",
        "anyone may join any chat's room",
    ),
    ("missing-ok", "REST bodies lack the envelope's ok"),
    ("errors-as-500", "every 4xx error is answered as 500"),
    ("created-as-200", "creations answer 200 instead of 201"),
    ("default-limit-50", "history pages default to 50 items"),
    ("past-end-404", "a history page past the end is 404"),
    (
        "ignore-encoded-params",
        "%40page and %40limit are not recognized",
    ),
    ("no-meta", "history pages carry no meta"),
    (
        "non-participant-read",
        "non-participants may read a chat over REST",
    ),
    (
        "caller-not-added",
        "POST /api/chats does not add the caller",
    ),
    (
        "key-not-reused",
        "key and chatKey never find an existing chat",
    ),
    (
        "no-type-default",
        "a message without type is stored with type null",
    ),
    (
        "success-without-entity",
        "success is sent without its entity",
    ),
    ("no-acks", "no client event is ever acknowledged"),
    (
        "join-ack-without-chat-id",
        "chat:join and chat:leave ack {data: {}}",
    ),
    (
        "no-auto-join",
        "message:send does not join the sender to the room",
    ),
    (
        "no-broadcast",
        "messages reach only the sender, not the room",
    ),
    (
        "no-echo-to-sender",
        "the sender does not receive its own message",
    ),
    (
        "ack-late:MS",
        "the message:send ack waits MS, after the reply started",
    ),
    ("delta-not-streaming", "deltas say isStreaming: false"),
    (
        "done-still-streaming",
        "message:done says isStreaming: true",
    ),
    (
        "done-content-wrong",
        "message:done content is not the whole reply",
    ),
    ("bad-message-ids", "new message ids are not 24-hex"),
    (
        "no-lifecycle-events",
        "CHAT_* lifecycle events are not relayed to rooms",
    ),
    (
        "skip-webhook-challenge",
        "plugins register without their webhook answering the challenge",
    ),
    (
        "installed-without-token",
        "PLUGIN_INSTALLED carries no token",
    ),
    (
        "no-message-dispatch",
        "*_MESSAGE_RECEIVED plugin events are never sent",
    ),
    (
        "dispatch-out-of-order",
        "message events reach each instance in swapped pairs",
    ),
    (
        "ignore-scopes",
        "instance tokens may write whatever their scopes say",
    ),
    (
        "token-survives-uninstall",
        "uninstall announces PLUGIN_UNINSTALLED but the token keeps working",
    ),
    (
        "drop-plugin-replies",
        "messages posted with an inst- token are answered 201 but never stored or relayed",
    ),
    (
        "drop-random:EVERY:SEED",
        "drop each delta with probability 1/EVERY, drawn from SEED",
    ),
    (
        "duplicate-random:EVERY:SEED",
        "send each delta twice with probability 1/EVERY, drawn from SEED",
    ),
    (
        "reorder-random:EVERY:SEED",
        "swap a delta with the next with probability 1/EVERY, drawn from SEED",
    ),
];

/// Parses `NAME[:ARG…]`.
pub fn parse(spec: &str) -> Result<FaultKind, String> {
    let mut parts = spec.split(':');
    let name = parts.next().unwrap_or_default();
    let args: Vec<&str> = parts.collect();
    let num = |i: usize, what: &str| -> Result<u64, String> {
        args.get(i)
            .ok_or_else(|| format!("{name} needs {what} (see the fault list)"))?
            .parse::<u64>()
            .map_err(|_| format!("{name}: {what} must be a number, got {:?}", args[i]))
    };
    let pos = |i: usize| -> Result<usize, String> {
        let n = num(i, "a 1-based delta number N")?;
        if n == 0 {
            Err(format!("{name}: delta numbers start at 1"))
        } else {
            Ok(n as usize)
        }
    };
    let none = |k: FaultKind| {
        if args.is_empty() {
            Ok(k)
        } else {
            Err(format!("{name} takes no arguments"))
        }
    };
    match name {
        "delay-first-delta" => Ok(FaultKind::DelayFirstDelta { ms: num(0, "MS")? }),
        "stall-stream" => Ok(FaultKind::StallStream {
            after: pos(0)?,
            ms: num(1, "MS")?,
        }),
        "drop-delta" => Ok(FaultKind::DropDelta { n: pos(0)? }),
        "duplicate-delta" => Ok(FaultKind::DuplicateDelta { n: pos(0)? }),
        "reorder-deltas" => Ok(FaultKind::ReorderDeltas { n: pos(0)? }),
        "omit-done" => none(FaultKind::OmitDone),
        "double-done" => none(FaultKind::DoubleDone),
        "delta-after-done" => none(FaultKind::DeltaAfterDone),
        "wrong-content" => Ok(FaultKind::WrongContent { n: pos(0)? }),
        "wrong-stream-id" => Ok(FaultKind::WrongStreamId { n: pos(0)? }),
        "disconnect-mid-stream" => Ok(FaultKind::DisconnectMidStream { n: pos(0)? }),
        "plain-message-for-stream" => none(FaultKind::PlainMessageForStream),
        "rest-latency" => Ok(FaultKind::RestLatency { ms: num(0, "MS")? }),
        "rest-status" => {
            let status = num(0, "an HTTP status CODE")?;
            if !(400..600).contains(&status) {
                return Err(format!(
                    "rest-status: {status} is not an error status (400-599)"
                ));
            }
            Ok(FaultKind::RestStatus {
                status: status as u16,
                prefix: args.get(1).map_or("/api".to_string(), |p| p.to_string()),
            })
        }
        "page-overlap" => none(FaultKind::PageOverlap),
        "page-skip" => none(FaultKind::PageSkip),
        "ignore-cursor" => none(FaultKind::IgnoreCursor),
        "no-limit-cap" => none(FaultKind::NoLimitCap),
        "accept-bad-token" => none(FaultKind::AcceptBadToken),
        "allow-non-participant-join" => none(FaultKind::AllowNonParticipantJoin),
        "missing-ok" => none(FaultKind::MissingOk),
        "errors-as-500" => none(FaultKind::ErrorsAs500),
        "created-as-200" => none(FaultKind::CreatedAs200),
        "default-limit-50" => none(FaultKind::DefaultLimit50),
        "past-end-404" => none(FaultKind::PastEnd404),
        "ignore-encoded-params" => none(FaultKind::IgnoreEncodedParams),
        "no-meta" => none(FaultKind::NoMeta),
        "non-participant-read" => none(FaultKind::NonParticipantRead),
        "caller-not-added" => none(FaultKind::CallerNotAdded),
        "key-not-reused" => none(FaultKind::KeyNotReused),
        "no-type-default" => none(FaultKind::NoTypeDefault),
        "success-without-entity" => none(FaultKind::SuccessWithoutEntity),
        "no-acks" => none(FaultKind::NoAcks),
        "join-ack-without-chat-id" => none(FaultKind::JoinAckWithoutChatId),
        "no-auto-join" => none(FaultKind::NoAutoJoin),
        "no-broadcast" => none(FaultKind::NoBroadcast),
        "no-echo-to-sender" => none(FaultKind::NoEchoToSender),
        "ack-late" => Ok(FaultKind::AckLate { ms: num(0, "MS")? }),
        "delta-not-streaming" => none(FaultKind::DeltaNotStreaming),
        "done-still-streaming" => none(FaultKind::DoneStillStreaming),
        "done-content-wrong" => none(FaultKind::DoneContentWrong),
        "bad-message-ids" => none(FaultKind::BadMessageIds),
        "no-lifecycle-events" => none(FaultKind::NoLifecycleEvents),
        "skip-webhook-challenge" => none(FaultKind::SkipWebhookChallenge),
        "installed-without-token" => none(FaultKind::InstalledWithoutToken),
        "no-message-dispatch" => none(FaultKind::NoMessageDispatch),
        "dispatch-out-of-order" => none(FaultKind::DispatchOutOfOrder),
        "ignore-scopes" => none(FaultKind::IgnoreScopes),
        "token-survives-uninstall" => none(FaultKind::TokenSurvivesUninstall),
        "drop-plugin-replies" => none(FaultKind::DropPluginReplies),
        "drop-random" | "duplicate-random" | "reorder-random" => {
            let every = num(0, "EVERY (1 in EVERY deltas)")?;
            if every == 0 {
                return Err(format!("{name}: EVERY must be at least 1"));
            }
            let action = match name {
                "drop-random" => RandomAction::Drop,
                "duplicate-random" => RandomAction::Duplicate,
                _ => RandomAction::Reorder,
            };
            let seed = if args.len() > 1 { num(1, "SEED")? } else { 0 };
            Ok(FaultKind::RandomDelta {
                action,
                every,
                seed,
            })
        }
        other => {
            let names: Vec<&str> = CATALOG.iter().map(|(n, _)| *n).collect();
            let similar: Vec<&str> = names
                .iter()
                .copied()
                .filter(|n| {
                    n.split(':')
                        .next()
                        .is_some_and(|b| b.contains(other) || other.contains(b))
                })
                .collect();
            let hint = if similar.is_empty() {
                String::new()
            } else {
                format!(" (similar: {})", similar.join(", "))
            };
            Err(format!(
                "unknown fault {other:?}{hint}; known faults: {}",
                names.join(", ")
            ))
        }
    }
}

/// The active faults.
#[derive(Debug, Default)]
pub struct Faults {
    active: RwLock<Vec<Fault>>,
    next: AtomicU64,
}

impl Faults {
    pub fn add(&self, spec: &str, scope: Scope) -> Result<Fault, String> {
        let kind = parse(spec)?;
        let fault = Fault {
            id: self.next.fetch_add(1, Ordering::Relaxed) + 1,
            spec: spec.to_string(),
            kind,
            scope,
            applied: Arc::default(),
        };
        self.active
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(fault.clone());
        Ok(fault)
    }

    pub fn list(&self) -> Vec<Fault> {
        self.active
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn remove(&self, id: u64) -> bool {
        let mut a = self.active.write().unwrap_or_else(|p| p.into_inner());
        let before = a.len();
        a.retain(|f| f.id != id);
        a.len() != before
    }

    pub fn clear(&self) {
        self.active
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Whether nothing is active (the fast path checks this first).
    pub fn is_empty(&self) -> bool {
        self.active
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// The active faults that apply to a chat (and, for replies, an agent).
    pub fn matching(&self, chat_id: Option<&str>, agent_id: Option<&str>) -> Vec<FaultKind> {
        self.matching_counted(chat_id, agent_id)
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    /// [`matching`](Self::matching), with each fault's `applied` counter.
    pub fn matching_counted(
        &self,
        chat_id: Option<&str>,
        agent_id: Option<&str>,
    ) -> Vec<(FaultKind, Arc<AtomicU64>)> {
        let a = self.active.read().unwrap_or_else(|p| p.into_inner());
        a.iter()
            .filter(|f| {
                f.scope
                    .chat_id
                    .as_deref()
                    .is_none_or(|c| Some(c) == chat_id)
            })
            .filter(|f| {
                f.scope
                    .agent_id
                    .as_deref()
                    .is_none_or(|g| Some(g) == agent_id)
            })
            .map(|f| (f.kind.clone(), f.applied.clone()))
            .collect()
    }

    /// Whether a global-or-matching fault of this shape is active; the first
    /// one found counts as applied.
    pub fn has(&self, chat_id: Option<&str>, pred: impl Fn(&FaultKind) -> bool) -> bool {
        if self.is_empty() {
            return false;
        }
        match self
            .matching_counted(chat_id, None)
            .into_iter()
            .find(|(k, _)| pred(k))
        {
            Some((_, applied)) => {
                applied.fetch_add(1, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Whether this exact (argument-less) fault is active, globally or for the chat.
    pub fn on(&self, chat_id: Option<&str>, kind: FaultKind) -> bool {
        self.has(chat_id, |k| *k == kind)
    }
}

/// How the stream task must misbehave, distilled from the active faults.
#[derive(Debug, Default, Clone)]
pub struct StreamFaults {
    pub first_delay: Option<Duration>,
    pub stall: Option<(usize, Duration)>,
    pub drop: Vec<usize>,
    pub duplicate: Vec<usize>,
    pub reorder: Vec<usize>,
    pub omit_done: bool,
    pub double_done: bool,
    pub delta_after_done: bool,
    pub wrong_content: Vec<usize>,
    pub wrong_stream_id: Vec<usize>,
    pub disconnect_after: Option<usize>,
    pub plain_message: bool,
    pub delta_not_streaming: bool,
    pub done_still_streaming: bool,
    pub done_content_wrong: bool,
}

impl StreamFaults {
    /// No stream fault at all: the normal, fastest path.
    pub fn is_clean(&self) -> bool {
        self.first_delay.is_none()
            && self.stall.is_none()
            && self.drop.is_empty()
            && self.duplicate.is_empty()
            && self.reorder.is_empty()
            && !self.omit_done
            && !self.double_done
            && !self.delta_after_done
            && self.wrong_content.is_empty()
            && self.wrong_stream_id.is_empty()
            && self.disconnect_after.is_none()
            && !self.plain_message
            && !self.delta_not_streaming
            && !self.done_still_streaming
            && !self.done_content_wrong
    }

    /// The faults one stream of `deltas` deltas with id `stream_id` must
    /// show. Random faults draw their positions here, from their seed and the
    /// stream id; each fault's `applied` counter is bumped when it touches
    /// this stream (random faults: once per delta they hit).
    pub fn for_stream(
        faults: &[(FaultKind, Arc<AtomicU64>)],
        stream_id: &str,
        deltas: usize,
    ) -> Self {
        let kinds: Vec<FaultKind> = faults.iter().map(|(k, _)| k.clone()).collect();
        let mut s = StreamFaults::from_kinds(&kinds);
        for (kind, applied) in faults {
            let hits = match kind {
                FaultKind::RandomDelta {
                    action,
                    every,
                    seed,
                } => {
                    let mut rng = SplitMix(*seed ^ fnv1a(stream_id));
                    // The last delta has no successor to swap with.
                    let last = if *action == RandomAction::Reorder {
                        deltas.saturating_sub(1)
                    } else {
                        deltas
                    };
                    let mut hits = 0;
                    let mut swapped_last = false;
                    for n in 1..=last {
                        // A delta just swapped forward is not swapped again.
                        let skip = std::mem::take(&mut swapped_last);
                        if rng.next().is_multiple_of(*every) && !skip {
                            swapped_last = *action == RandomAction::Reorder;
                            hits += 1;
                            match action {
                                RandomAction::Drop => s.drop.push(n),
                                RandomAction::Duplicate => s.duplicate.push(n),
                                RandomAction::Reorder => s.reorder.push(n),
                            }
                        }
                    }
                    hits
                }
                FaultKind::DropDelta { n }
                | FaultKind::DuplicateDelta { n }
                | FaultKind::ReorderDeltas { n }
                | FaultKind::WrongContent { n }
                | FaultKind::WrongStreamId { n }
                | FaultKind::DisconnectMidStream { n } => u64::from(*n <= deltas),
                FaultKind::StallStream { after, .. } => u64::from(*after < deltas),
                k if StreamFaults::from_kinds(std::slice::from_ref(k)).is_clean() => 0,
                _ => 1,
            };
            applied.fetch_add(hits, Ordering::Relaxed);
        }
        s
    }

    pub fn from_kinds(kinds: &[FaultKind]) -> Self {
        let mut s = StreamFaults::default();
        for k in kinds {
            match k {
                FaultKind::DelayFirstDelta { ms } => {
                    s.first_delay = Some(Duration::from_millis(*ms))
                }
                FaultKind::StallStream { after, ms } => {
                    s.stall = Some((*after, Duration::from_millis(*ms)))
                }
                FaultKind::DropDelta { n } => s.drop.push(*n),
                FaultKind::DuplicateDelta { n } => s.duplicate.push(*n),
                FaultKind::ReorderDeltas { n } => s.reorder.push(*n),
                FaultKind::OmitDone => s.omit_done = true,
                FaultKind::DoubleDone => s.double_done = true,
                FaultKind::DeltaAfterDone => s.delta_after_done = true,
                FaultKind::WrongContent { n } => s.wrong_content.push(*n),
                FaultKind::WrongStreamId { n } => s.wrong_stream_id.push(*n),
                FaultKind::DisconnectMidStream { n } => s.disconnect_after = Some(*n),
                FaultKind::PlainMessageForStream => s.plain_message = true,
                FaultKind::DeltaNotStreaming => s.delta_not_streaming = true,
                FaultKind::DoneStillStreaming => s.done_still_streaming = true,
                FaultKind::DoneContentWrong => s.done_content_wrong = true,
                _ => {}
            }
        }
        s
    }
}

/// SplitMix64: small, seedable, the same everywhere.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogued_fault_parses_and_typos_get_a_hint() {
        for (spec, _) in CATALOG {
            let example = spec
                .replace("AFTER", "2")
                .replace("EVERY", "10")
                .replace("SEED", "7")
                .replace("MS", "5")
                .replace("N", "3")
                .replace("CODE", "503")
                .replace("PREFIX", "/api/chats");
            parse(&example).unwrap_or_else(|e| panic!("{example}: {e}"));
        }
        assert!(parse("drop-delta:0").unwrap_err().contains("start at 1"));
        assert!(
            parse("drop-deltas:1")
                .unwrap_err()
                .contains("similar: drop-delta:N")
        );
        assert!(parse("rest-status:200").is_err());
        assert!(parse("drop-random:0:1").unwrap_err().contains("at least 1"));
    }

    #[test]
    fn random_faults_draw_the_same_deltas_from_the_same_seed_and_stream() {
        let fault = |spec: &str| vec![(parse(spec).expect("parses"), Arc::default())];
        let draw =
            |spec: &str, stream: &str| StreamFaults::for_stream(&fault(spec), stream, 10_000).drop;
        let a = draw("drop-random:100:42", "s1");
        assert_eq!(a, draw("drop-random:100:42", "s1"), "same seed, same run");
        assert_ne!(
            a,
            draw("drop-random:100:43", "s1"),
            "another seed, another run"
        );
        assert_ne!(a, draw("drop-random:100:42", "s2"), "streams differ");
        assert!((50..200).contains(&a.len()), "about 1 in 100: {}", a.len());
        let counted = fault("drop-random:100:42");
        StreamFaults::for_stream(&counted, "s1", 10_000);
        assert_eq!(counted[0].1.load(Ordering::Relaxed), a.len() as u64);
    }
}
