//! The client scenarios, as data: what the mock is set to (faults, token,
//! chat), which task the adapter does, and how the outcome is judged.
//!
//! Each judgement reads both sides: what the SDK reported (the adapter's
//! lines) and what the server did (the mock's journal, its REST history).
//! A profile adds its own scenarios by adding rows; the runner knows no
//! scenario by name.

use crate::case::Level;

/// What the adapter is asked to do (`PROTEUS_TASK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Connect and authenticate; report `connected` or `error`.
    Connect,
    /// Connect, join the chat, send `PROTEUS_CONTENT`; report `sent` (the
    /// id the SDK returned) or `error`.
    Send,
    /// As send, asking for a streamed reply; report the reply as the SDK
    /// presents it complete (`final`), or `error` / `timeout`.
    Stream,
    /// List the chat's whole history; report `history` (ids, oldest
    /// first) or `error`.
    History,
    /// As stream, with two messages sent at once (`PROTEUS_CONTENT`, then
    /// `PROTEUS_CONTENT_2` without waiting for the first reply): report a
    /// `final` for each reply.
    TwoStreams,
    /// Connect and join the chat, then stay: report each message that
    /// arrives in the chat as `received` until one says `PROTEUS_CONTENT`
    /// or `PROTEUS_TIMEOUT_MS` passes. Meanwhile the runner restarts the
    /// mock's realtime side (`POST /__admin/restart`).
    Rejoin,
    /// Thenvoi: connect as `THENVOI_AGENT_ID` with `THENVOI_API_KEY`, join
    /// `chat_room:THENVOI_ROOM_ID`, and handle each message meant for the
    /// agent (claim, reply in the room, processed; report `handled`) until
    /// the one saying `PROTEUS_CONTENT` is handled and `PROTEUS_LINGER_MS`
    /// more have passed, or `PROTEUS_TIMEOUT_MS`.
    Agent,
}

impl Task {
    pub fn name(self) -> &'static str {
        match self {
            Task::Connect => "connect",
            Task::Send => "send",
            Task::Stream => "stream",
            Task::History => "history",
            Task::TwoStreams => "two-streams",
            Task::Rejoin => "rejoin",
            Task::Agent => "agent",
        }
    }
}

/// The chat the task is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chat {
    /// A fresh chat of the user with the streaming agent.
    WithAgent,
    /// A fresh chat of the user alone, holding 45 messages.
    WithHistory,
    /// An id no chat has.
    Missing,
    /// A chat of another user, which this user may not read.
    Foreign,
    /// Thenvoi: a fresh room of the profile's first user with two of its
    /// agents; the adapter acts as the first.
    AgentRoom,
}

/// How the outcome is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judge {
    /// A `connected` line, no `error`.
    Connected,
    /// An `error` line carrying the server's refusal, no `connected`.
    Refused,
    /// At most this many socket.io connection attempts reached the mock.
    AtMostConnects(usize),
    /// `sent` with the id of the message the server stored.
    SentIsStored,
    /// An `error` line with a message, and nothing presented as done.
    ErrorSurfaced,
    /// One `final` whose text is the `message:done` content.
    FinalIsDone,
    /// Never a `final` that differs from `message:done` (a `final` equal to
    /// it, an `error` or a `timeout` are all fine; silence is not).
    NoWrongFinal,
    /// No `final`; a `timeout` or an `error` instead.
    NoFinal,
    /// `history` equal to the server's (every message, in order).
    HistoryComplete,
    /// `history` equal to the server's, or an `error`: never a wrong list.
    HistoryNeverWrong,
    /// Two `final`s, each the content of one of the chat's `message:done`s.
    FinalsAreDones,
    /// After the restart the journal shows the chat joined again, and the
    /// SDK delivered the message posted after it (`received`).
    Rejoined,
    /// Every event the SDK sent (the journal's `in` entries) is a client
    /// event of the protocol, asks for an ack, and its payload matches the
    /// event's schema.
    SentValid,
    /// Thenvoi: the mention was claimed (`/processing`) before the agent's
    /// reply, marked `/processed` after it, no call was refused, and the
    /// adapter reported it `handled`.
    ClaimedAroundWork,
    /// Thenvoi: as [`Judge::ClaimedAroundWork`], after a restart of the
    /// realtime side the agent had to reconnect and rejoin for.
    AgentRejoined,
    /// Thenvoi: a pushed message that mentions another agent is left alone.
    UnmentionedLeftAlone,
    /// Thenvoi: the agent's own message, pushed back to it, is left alone.
    OwnLeftAlone,
    /// Thenvoi: work that fails is claimed, then marked `/failed` (with an
    /// error), never `/processed`, and nothing is replied.
    FailureReported,
}

/// Which protocol's clients a scenario grades (`client --protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// ProteusAI SDKs and apps: socket.io and REST.
    Proteus,
    /// Thenvoi (Band) agents: Phoenix channels and the agent REST API.
    Thenvoi,
}

impl Scenario {
    pub fn protocol(&self) -> Protocol {
        match self.task {
            Task::Agent => Protocol::Thenvoi,
            _ => Protocol::Proteus,
        }
    }
}

/// One scenario.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub id: &'static str,
    pub level: Level,
    pub desc: &'static str,
    /// The rule, quoted from docs/CLIENTS.md.
    pub requirement: &'static str,
    pub task: Task,
    pub chat: Chat,
    /// Give the adapter a token the server refuses.
    pub bad_token: bool,
    /// Mock faults switched on before the task.
    pub faults: &'static [&'static str],
    pub judge: Judge,
}

#[allow(clippy::too_many_arguments)] // one scenario row, every column named at the call
const fn row(
    id: &'static str,
    level: Level,
    desc: &'static str,
    requirement: &'static str,
    task: Task,
    chat: Chat,
    faults: &'static [&'static str],
    judge: Judge,
) -> Scenario {
    Scenario {
        id,
        level,
        desc,
        requirement,
        task,
        chat,
        bad_token: false,
        faults,
        judge,
    }
}

const FINAL_IS_DONE: &str =
    "The text an SDK presents as a complete reply is the message:done content.";
const NEVER_WRONG: &str = "An SDK never presents as complete a reply that differs from message:done: it may rebuild the text from done or report an error.";

/// Every scenario, in run order.
pub const ALL: &[Scenario] = &[
    row(
        "client.auth.1",
        Level::Must,
        "a valid token reaches success",
        "With a valid token the SDK connects and reports it.",
        Task::Connect,
        Chat::WithAgent,
        &[],
        Judge::Connected,
    ),
    Scenario {
        bad_token: true,
        ..row(
            "client.auth.2",
            Level::Must,
            "an invalid token surfaces the server's error",
            "A refused token is surfaced as an error carrying the server's message, never as a connection.",
            Task::Connect,
            Chat::WithAgent,
            &[],
            Judge::Refused,
        )
    },
    Scenario {
        bad_token: true,
        ..row(
            "client.auth.3",
            Level::Should,
            "a refused token is not retried in a storm",
            "After an authentication error an SDK retries at most twice, not in a loop.",
            Task::Connect,
            Chat::WithAgent,
            &[],
            Judge::AtMostConnects(3),
        )
    },
    row(
        "client.send.1",
        Level::Must,
        "the id the SDK returns is the stored message's",
        "The message id an SDK returns for a send is the one the server's ack gave.",
        Task::Send,
        Chat::WithAgent,
        &[],
        Judge::SentIsStored,
    ),
    row(
        "client.send.2",
        Level::Must,
        "a refused send is surfaced",
        "A send the server refuses (an error ack) is surfaced with its message, not reported as sent.",
        Task::Send,
        Chat::Missing,
        &[],
        Judge::ErrorSurfaced,
    ),
    row(
        "client.stream.1",
        Level::Must,
        "a clean streamed reply is presented as message:done says",
        FINAL_IS_DONE,
        Task::Stream,
        Chat::WithAgent,
        &[],
        Judge::FinalIsDone,
    ),
    row(
        "client.stream.2",
        Level::Must,
        "a lost delta does not make a wrong final reply",
        NEVER_WRONG,
        Task::Stream,
        Chat::WithAgent,
        &["drop-delta:2"],
        Judge::NoWrongFinal,
    ),
    row(
        "client.stream.3",
        Level::Must,
        "a duplicated delta does not make a wrong final reply",
        NEVER_WRONG,
        Task::Stream,
        Chat::WithAgent,
        &["duplicate-delta:2"],
        Judge::NoWrongFinal,
    ),
    row(
        "client.stream.4",
        Level::Must,
        "swapped deltas do not make a wrong final reply",
        NEVER_WRONG,
        Task::Stream,
        Chat::WithAgent,
        &["reorder-deltas:2"],
        Judge::NoWrongFinal,
    ),
    row(
        "client.stream.5",
        Level::Must,
        "a wrong cumulative content does not make a wrong final reply",
        NEVER_WRONG,
        Task::Stream,
        Chat::WithAgent,
        &["wrong-content:2"],
        Judge::NoWrongFinal,
    ),
    row(
        "client.stream.6",
        Level::Must,
        "a delta after message:done does not change the final reply",
        NEVER_WRONG,
        Task::Stream,
        Chat::WithAgent,
        &["delta-after-done"],
        Judge::NoWrongFinal,
    ),
    row(
        "client.stream.7",
        Level::Must,
        "a reply without message:done is a time-out, not a complete reply",
        "An SDK presents a reply as complete only on message:done; without it, it reports a time-out or an error.",
        Task::Stream,
        Chat::WithAgent,
        &["omit-done"],
        Judge::NoFinal,
    ),
    row(
        "client.stream.8",
        Level::Must,
        "a reply that stalls past the time limit is a time-out",
        "A reply that stops mid-way is reported as timed out at the SDK's limit, not as complete.",
        Task::Stream,
        Chat::WithAgent,
        &["stall-stream:2:10000"],
        Judge::NoFinal,
    ),
    row(
        "client.stream.9",
        Level::Must,
        "two replies streaming at once in one chat stay apart",
        "An SDK keeps concurrent streamed replies apart by streamId: each presented reply is one message:done's content.",
        Task::TwoStreams,
        Chat::WithAgent,
        &[],
        Judge::FinalsAreDones,
    ),
    row(
        "client.sent.1",
        Level::Must,
        "every event the SDK sends is valid and asks for an ack",
        "An SDK sends only the protocol's client events (chat:join, chat:leave, message:send), each with a payload its schema accepts and an ack callback (PROTOCOL.md R14).",
        Task::Stream,
        Chat::WithAgent,
        &[],
        Judge::SentValid,
    ),
    row(
        "client.history.1",
        Level::Must,
        "a 45-message history is listed completely and in order",
        "Listing a chat's history pages through all of it (page or cursor) and keeps the order.",
        Task::History,
        Chat::WithHistory,
        &[],
        Judge::HistoryComplete,
    ),
    row(
        "client.history.2",
        Level::Should,
        "pages that skip an item are not turned into a wrong history",
        "An SDK notices pages that do not join up (or pages by cursor) instead of listing a history with a hole.",
        Task::History,
        Chat::WithHistory,
        &["page-skip"],
        Judge::HistoryNeverWrong,
    ),
    row(
        "client.history.3",
        Level::Should,
        "pages that overlap by an item are not turned into a wrong history",
        "An SDK notices pages that do not join up (or pages by cursor) instead of listing a history with an item twice.",
        Task::History,
        Chat::WithHistory,
        &["page-overlap"],
        Judge::HistoryNeverWrong,
    ),
    row(
        "client.connection.1",
        Level::Must,
        "a connection lost mid-reply is surfaced or recovered, never a truncated final reply",
        "When the connection drops mid-reply an SDK reports an error or recovers the complete reply (from history); it never presents the text so far as complete.",
        Task::Stream,
        Chat::WithAgent,
        &["disconnect-mid-stream:3"],
        Judge::NoWrongFinal,
    ),
    row(
        "client.connection.2",
        Level::Must,
        "after a server restart the SDK reconnects and joins its chat again",
        "When the server goes away and comes back, an SDK reconnects and joins its rooms again (the server forgot them), so messages keep reaching it.",
        Task::Rejoin,
        Chat::WithAgent,
        &[],
        Judge::Rejoined,
    ),
    Scenario {
        bad_token: true,
        ..row(
            "client.errors.2",
            Level::Must,
            "a 401 is surfaced with its message",
            "An error envelope (4xx, 5xx) is surfaced with its message, never read as an empty result.",
            Task::History,
            Chat::WithHistory,
            &[],
            Judge::ErrorSurfaced,
        )
    },
    row(
        "client.errors.3",
        Level::Must,
        "a 403 is surfaced with its message",
        "An error envelope (4xx, 5xx) is surfaced with its message, never read as an empty result.",
        Task::History,
        Chat::Foreign,
        &[],
        Judge::ErrorSurfaced,
    ),
    row(
        "client.errors.4",
        Level::Must,
        "a 404 is surfaced with its message",
        "An error envelope (4xx, 5xx) is surfaced with its message, never read as an empty result.",
        Task::History,
        Chat::Missing,
        &[],
        Judge::ErrorSurfaced,
    ),
    row(
        "client.errors.5",
        Level::Must,
        "a 429 is surfaced with its message",
        "An error envelope (4xx, 5xx) is surfaced with its message, never read as an empty result.",
        Task::History,
        Chat::WithHistory,
        &["rest-status:429:/api/chats"],
        Judge::ErrorSurfaced,
    ),
    row(
        "client.errors.1",
        Level::Must,
        "a 503 from the REST API is surfaced with its message",
        "An error envelope (4xx, 5xx) is surfaced with its message, never read as an empty result.",
        Task::History,
        Chat::WithHistory,
        &["rest-status:503:/api/chats"],
        Judge::ErrorSurfaced,
    ),
    row(
        "client.thenvoi.1",
        Level::Must,
        "a mention is claimed before the work and marked processed after it",
        "A Thenvoi agent claims a message meant for it (POST …/processing) before working on it, and marks it …/processed only after the work (THENVOI.md T41-T43).",
        Task::Agent,
        Chat::AgentRoom,
        &[],
        Judge::ClaimedAroundWork,
    ),
    row(
        "client.thenvoi.2",
        Level::Must,
        "a pushed message that mentions another agent is left alone",
        "A Thenvoi agent acts only on messages whose metadata.mentions names it, even when a server pushes it others (THENVOI.md T17).",
        Task::Agent,
        Chat::AgentRoom,
        &["thenvoi-deliver-unmentioned"],
        Judge::UnmentionedLeftAlone,
    ),
    row(
        "client.thenvoi.3",
        Level::Must,
        "the agent's own message pushed back to it is left alone",
        "A Thenvoi agent never acts on a message it sent (sender_id is its own id), so a server that echoes its reply cannot start a loop (THENVOI.md T17).",
        Task::Agent,
        Chat::AgentRoom,
        &["thenvoi-deliver-own"],
        Judge::OwnLeftAlone,
    ),
    row(
        "client.thenvoi.4",
        Level::Must,
        "after a server restart the agent reconnects, joins its room again and handles the next mention",
        "When the socket closes (a restart: close code 1012) a Thenvoi agent reconnects and joins its channels again, so later mentions still reach it.",
        Task::Agent,
        Chat::AgentRoom,
        &[],
        Judge::AgentRejoined,
    ),
    row(
        "client.thenvoi.5",
        Level::Must,
        "work that fails is marked failed, not processed",
        "When its work on a message fails, a Thenvoi agent marks it …/failed with an error (so /messages/next offers it again), never …/processed (THENVOI.md T44, T47).",
        Task::Agent,
        Chat::AgentRoom,
        &[],
        Judge::FailureReported,
    ),
];
