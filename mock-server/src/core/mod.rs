//! The protocol-neutral core: state, the rules that read and change it, and
//! what happens when a message enters a chat.
//!
//! Transports (`crate::proteus`: REST and socket.io today; Phoenix channels
//! next) translate their wire formats into calls on [`Core`] and hand the
//! core an [`Outbox`] per transport through which events leave. The core
//! imports nothing above it: not a transport, not the control plane, not
//! `crate::App`. The `layering` test reads every `use crate::` line of the
//! mock and fails when that changes.
//!
//! # Layout
//! - [`store`]: all state (auth, agents, chats, messages and paging,
//!   plugins, repositories), one file per resource like the REST routes.
//! - [`messaging`]: "a message enters": validate, persist, announce, start
//!   the replies. REST and socket.io both call it.
//! - [`events`]: the one place a stored message is announced and lifecycle
//!   events and plugin dispatch are raised.
//! - [`replies`]: streamed and plain replies: the script, the plan of
//!   deltas, the task that plays it, streams posted by plugins, and the one
//!   place a stream ends.
//! - [`plugins`]: plugin event bodies and webhook delivery.
//! - [`outbox`]: the neutral events the core emits and the trait a
//!   transport implements to deliver them.
//! - [`error`]: why the core refused something, in transport-neutral terms.
//! - [`thenvoi`]: the Thenvoi (Band) profile's state and rules: rooms,
//!   mentions, the claim lifecycle, scripted peers; its pushes leave
//!   through the same outboxes ([`Outbox::push`]).

pub mod error;
pub mod events;
pub mod messaging;
pub mod outbox;
pub mod plugins;
pub mod replay;
pub mod replies;
pub mod store;
pub mod thenvoi;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use error::Refusal;
pub use outbox::{Emission, Kind, Outbox, Payload};

use crate::faults::{self, Faults};
use crate::journal::Journal;
use crate::world::World;
use store::{Caller, Store};

/// The state and machinery every transport shares.
#[derive(Debug)]
pub struct Core {
    pub store: Store,
    /// The Thenvoi profile's state (docs/THENVOI.md).
    pub thenvoi: thenvoi::Rooms,
    pub faults: Faults,
    /// What the mock saw and did (see [`crate::journal`]).
    pub journal: Arc<Journal>,
    /// Where events leave: one outbox per transport.
    outboxes: Vec<Arc<dyn Outbox>>,
    /// Scripted replies in flight; waited for on shutdown.
    pub tasks: TaskTracker,
    /// Fired on shutdown (by [`Core::hurry_up`]): streams stop pacing and
    /// finish at once.
    pub hurry: CancellationToken,
    /// Replaced on each reset; the old one is cancelled, which stops the
    /// replies started before the reset.
    epoch: std::sync::Mutex<CancellationToken>,
    /// Atomic mirrors of the two tokens, for the checks a stream makes before
    /// every delta (`CancellationToken::is_cancelled` takes a lock): the
    /// number of resets so far, and whether shutdown began.
    generation: AtomicU64,
    hurried: AtomicBool,
    /// Webhook delivery (see [`plugins::dispatch`]).
    pub dispatcher: Arc<plugins::dispatch::Dispatcher>,
    /// Streamed replies posted by plugins.
    pub plugin_streams: replies::posted::PluginStreams,
    /// Scripted replies in flight per entity, and their cap.
    pub in_flight: Arc<replies::InFlight>,
    /// The runtime the server was built on: scripted replies run here even
    /// when a REST handler (on the background runtime) starts them.
    pub realtime: tokio::runtime::Handle,
    /// Recorded replies that answer instead of the scripts (`--replay`).
    pub replay: std::sync::OnceLock<replay::Replay>,
}

impl Core {
    /// A core for `world`, emitting through `outboxes`.
    ///
    /// Fails outside a tokio runtime.
    pub fn new(
        world: World,
        journal: Arc<Journal>,
        outboxes: Vec<Arc<dyn Outbox>>,
        webhooks: plugins::dispatch::Settings,
        max_replies_per_entity: usize,
    ) -> Result<Core, String> {
        let mut world = world;
        let band = std::mem::take(&mut world.thenvoi);
        Ok(Core {
            store: Store::new(world),
            thenvoi: thenvoi::Rooms::new(band),
            faults: Faults::default(),
            journal,
            outboxes,
            tasks: TaskTracker::new(),
            hurry: CancellationToken::new(),
            epoch: std::sync::Mutex::new(CancellationToken::new()),
            generation: AtomicU64::new(0),
            hurried: AtomicBool::new(false),
            dispatcher: Arc::new(plugins::dispatch::Dispatcher::new(webhooks)),
            plugin_streams: replies::posted::PluginStreams::default(),
            in_flight: Arc::new(replies::InFlight::new(max_replies_per_entity)),
            realtime: tokio::runtime::Handle::try_current()
                .map_err(|_| "the server must be built inside a tokio runtime".to_string())?,
            replay: std::sync::OnceLock::new(),
        })
    }

    /// The recorded reply the next send of `content` in `chat_id` gets,
    /// under `--replay` (not counted: [`replay::Replay::take`] counts).
    pub fn recorded(&self, chat_id: &str, content: &str) -> Option<&replay::Recorded> {
        self.replay.get()?.peek(chat_id, content)
    }

    /// Hands an event to every transport.
    pub async fn emit(&self, emission: Emission<'_>) {
        for outbox in &self.outboxes {
            outbox.emit(&emission).await;
        }
    }

    /// Hands a Thenvoi push to every transport; the agents it was written to.
    pub fn push(&self, push: &outbox::Push<'_>) -> Vec<String> {
        let mut written = Vec::new();
        for outbox in &self.outboxes {
            written.extend(outbox.push(push));
        }
        written
    }

    /// Ends subscriptions to a room's channels (see [`Outbox::forget_room`]).
    pub fn forget_room(&self, room_id: &str, entity: Option<&str>) {
        for outbox in &self.outboxes {
            outbox.forget_room(room_id, entity);
        }
    }

    /// Disconnects everyone in a chat's room, on every transport (a fault).
    pub fn disconnect_room(&self, chat_id: &str) {
        for outbox in &self.outboxes {
            outbox.disconnect_room(chat_id);
        }
    }

    /// The token that stops replies at the next reset.
    pub fn epoch(&self) -> CancellationToken {
        self.epoch.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Resets so far: a reply started in generation `g` stops once this moves on.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether shutdown began (streams then finish without pacing).
    pub fn hurried(&self) -> bool {
        self.hurried.load(Ordering::Acquire)
    }

    /// Begins shutdown: streams stop pacing.
    pub fn hurry_up(&self) {
        self.hurried.store(true, Ordering::Release);
        self.hurry.cancel();
    }

    /// Resolves a token, honouring the `accept-bad-token` fault.
    pub fn authenticate(&self, token: &str) -> Result<Caller, String> {
        self.store.authenticate(token).or_else(|e| {
            if self.faults.auth().accept_bad_token.fire() {
                self.store.first_user().ok_or(e)
            } else {
                Err(e)
            }
        })
    }

    /// First half of a reset: stops the replies in flight and waits
    /// (briefly) for them, so none emits into the fresh state.
    pub async fn stop_replies(&self) {
        let old = std::mem::replace(
            &mut *self.epoch.lock().unwrap_or_else(|p| p.into_inner()),
            CancellationToken::new(),
        );
        // The count first: a stream woken by the cancel sees it moved.
        self.generation.fetch_add(1, Ordering::AcqRel);
        old.cancel();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while !self.tasks.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Second half of a reset: the loaded world back, the journal, the
    /// deliveries and the plugin streams empty, faults back to `faults`.
    pub fn reset_state(&self, start_faults: &[String]) {
        self.store.reset();
        self.thenvoi.reset();
        self.journal.clear();
        self.dispatcher.clear();
        self.plugin_streams.clear();
        self.in_flight.clear();
        if let Some(replay) = self.replay.get() {
            replay.rewind();
        }
        self.faults.clear();
        for spec in start_faults {
            let _ = self.faults.add(spec, faults::Scope::default());
        }
    }
}
