//! proteus-mock: a faithful, fast, stateful ProteusAI server to run locally.
//!
//! # Layout
//! Layers, lowest first; a module imports only from its own layer or below
//! (the `layering` test enforces it):
//! 1. Foundations: [`model`] (the protocol's objects, serialized exactly as
//!    documented), [`world`] (world files and their checks), [`journal`]
//!    (what the mock saw and did), [`faults`] (the fault registry and the
//!    per-site views the code reads), [`priority`] (threads at a lower
//!    priority for REST and webhooks), [`seeded`] (seeded randomness).
//! 2. [`core`]: protocol-neutral state and rules: the store, "a message
//!    enters", scripted replies, plugin events, and the [`core::Outbox`]
//!    through which events leave.
//! 3. Transports: [`proteus`] (ProteusAI: REST under `/api`, socket.io
//!    realtime), translating to and from core calls; [`net`] (the TCP
//!    listener whose connections can be cut).
//! 4. [`admin`]: the control plane under `/__admin`.
//! 5. This file: [`App`] (the core plus the transports' state), [`build`],
//!    [`serve`], [`start`].

pub mod admin;
pub mod core;
pub mod faults;
pub mod inspector;
pub mod journal;
pub mod model;
pub mod net;
pub mod priority;
pub mod proteus;
pub mod seeded;
pub mod thenvoi;
pub mod world;

pub use proteus::App;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socketioxide::SocketIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::core::Core;
use crate::core::plugins;
use crate::proteus::realtime::rooms::Rooms;
use crate::world::World;

/// Tunables that are not part of the world.
#[derive(Debug, Clone)]
pub struct Config {
    /// Packets a socket may hold unsent before it is disconnected as a slow
    /// consumer (see [`realtime::rooms`]).
    pub socket_buffer: usize,
    /// Bytes a WebSocket socket may hold unsent (the same policy; 0: no
    /// bound; see [`proteus::realtime::held`]).
    pub socket_buffer_bytes: u64,
    /// How long a stream waits for a full socket before disconnecting it.
    pub slow_consumer_grace: Duration,
    /// Serve the control plane under `/__admin`.
    pub admin: bool,
    /// When set, the control plane needs this bearer token and is open to
    /// any address; otherwise it answers on loopback only.
    pub admin_token: Option<String>,
    /// Faults active from the start (and again after each reset).
    pub faults: Vec<String>,
    /// Journal ring size in entries; 0 turns the journal off.
    pub journal_size: usize,
    /// Messages each ProteusAI chat and Thenvoi room keeps; past it the
    /// oldest is forgotten (0: no bound).
    pub history: usize,
    /// Chats, rooms, agents, plugins, installations and repositories the
    /// clients may create, of each kind; past it a creation is refused
    /// (429) until a reset (0: no bound).
    pub max_objects: usize,
    /// Webhook timeout and ASYNC retries.
    pub webhooks: plugins::dispatch::Settings,
    /// Replaces the webhook URL of every plugin of the world (`--plugin-url`).
    pub plugin_url: Option<String>,
    /// Connections open at once and the read timeouts (see [`net::Limits`]).
    pub limits: net::Limits,
    /// Scripted replies in flight at once per entity that triggered them.
    pub max_replies_per_entity: usize,
    /// A Thenvoi socket that sends no frame for this long is closed
    /// (docs/THENVOI.md T13: 45 s).
    pub thenvoi_idle_timeout: Duration,
    /// Recorded replies that answer instead of the agents' scripts
    /// (`--replay`; see [`proteus::replay`]).
    pub replay: Option<core::replay::Replay>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            socket_buffer: 8192,
            socket_buffer_bytes: 8 << 20,
            slow_consumer_grace: Duration::from_secs(2),
            admin: true,
            admin_token: None,
            faults: Vec::new(),
            journal_size: 10_000,
            history: 10_000,
            max_objects: 100_000,
            webhooks: plugins::dispatch::Settings::default(),
            plugin_url: None,
            limits: net::Limits::default(),
            max_replies_per_entity: 10_000,
            thenvoi_idle_timeout: Duration::from_secs(45),
            replay: None,
        }
    }
}

/// Builds the HTTP + socket.io service for a world.
///
/// Fails when a start-up fault does not parse.
pub fn build(
    mut world: World,
    config: &Config,
) -> Result<(axum::Router, Arc<App>, SocketIo), String> {
    if let Some(url) = &config.plugin_url {
        for p in &mut world.plugins {
            p.webhook_url.clone_from(url);
        }
    }
    let journal = Arc::new(journal::Journal::new(config.journal_size));
    let connections = Arc::new(net::Connections::new(config.limits));
    let rooms = Arc::new(Rooms::new(
        config.slow_consumer_grace,
        config.socket_buffer_bytes,
        journal.clone(),
        connections.clone(),
    ));
    let hub = Arc::new(thenvoi::phoenix::hub::Hub::new(journal.clone()));
    let core = Core::new(
        world,
        journal,
        vec![
            rooms.clone() as Arc<dyn core::Outbox>,
            hub.clone() as Arc<dyn core::Outbox>,
        ],
        config.webhooks.clone(),
        config.max_replies_per_entity,
    )?;
    if let Some(replay) = config.replay.clone() {
        let _ = core.replay.set(replay);
    }
    core.store.set_history(config.history);
    core.thenvoi.set_history(config.history);
    core.store.set_max_objects(config.max_objects);
    core.thenvoi.set_max_objects(config.max_objects);
    let core = Arc::new(core);
    let band = Arc::new(thenvoi::Band {
        core: core.clone(),
        hub,
        idle_timeout: config.thenvoi_idle_timeout,
        queue: config.socket_buffer,
        queue_bytes: config.socket_buffer_bytes,
    });
    let app = Arc::new(App {
        core,
        band: band.clone(),
        rooms,
        connections,
        socket_buffer: config.socket_buffer,
        socket_buffer_bytes: config.socket_buffer_bytes,
        start_faults: config.faults.clone(),
        admin_token: config.admin_token.clone(),
        io: std::sync::OnceLock::new(),
        listen: std::sync::OnceLock::new(),
    });
    for spec in &config.faults {
        app.faults
            .add(spec, faults::Scope::default())
            .map_err(|e| format!("--fault {spec}: {e}"))?;
    }
    // One size limit for every way in: a REST body, a socket.io message
    // over polling or over a websocket (whose own default is 64 MiB).
    let (layer, io) = SocketIo::builder()
        .max_payload(proteus::rest::BODY_LIMIT as u64)
        .ws_max_message_size(proteus::rest::BODY_LIMIT)
        .max_buffer_size(config.socket_buffer)
        .with_state(app.clone())
        .build_layer();
    io.ns(
        "/",
        socketioxide::handler::ConnectHandler::with(
            proteus::realtime::on_connect,
            proteus::realtime::authenticate,
        ),
    );
    let _ = app.io.set(io.clone());
    let mut router = proteus::rest::router(app.clone()).nest("/api/v1", thenvoi::router(band));
    if config.admin {
        router = router.merge(admin::router(app.clone()));
    }
    let router = router.with_state(app.clone()).layer(layer);
    Ok((router, app, io))
}

/// Serves until `shutdown` resolves; then in-flight streams finish without
/// pacing, sockets are closed cleanly and the listener stops.
pub async fn serve(
    listener: TcpListener,
    world: World,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let announce = config.plugin_url.is_some();
    let sampler_stop = CancellationToken::new();
    let (router, app, io) = build(world, &config).map_err(std::io::Error::other)?;
    if announce {
        plugins::announce_installed(&app);
    }
    {
        // Once a second: deltas sent in the last second, for /__admin/stats.
        let (app, stop) = (app.clone(), sampler_stop.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut last = 0;
            loop {
                tokio::select! { _ = tick.tick() => {}, _ = stop.cancelled() => return }
                let now = app
                    .rooms
                    .stats
                    .deltas_sent
                    .load(std::sync::atomic::Ordering::Relaxed);
                app.rooms
                    .stats
                    .deltas_last_second
                    .store(now - last, std::sync::atomic::Ordering::Relaxed);
                last = now;
            }
        });
    }
    if let Ok(addr) = listener.local_addr() {
        let _ = app.listen.set(addr);
        app.dispatcher.policy.listening_on(addr);
    }
    let listener = net::CuttableListener::new(listener, app.connections.clone());
    let graceful = async move {
        shutdown.await;
        tracing::info!("shutting down: finishing streams, closing sockets");
        app.hurry_up();
        app.tasks.close();
        if tokio::time::timeout(Duration::from_secs(10), app.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("some replies did not finish within 10 s");
        }
        io.close().await;
        thenvoi::phoenix::close_all(&app.band, "the server is shutting down");
        sampler_stop.cancel();
        // Connections that are still open a moment later (a stalled upload,
        // a client that never reads) would hold the shutdown forever.
        let connections = app.connections.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            connections.cut_all();
        });
    };
    net::serve(listener, router, config.limits, graceful).await
}

/// A mock running on a random loopback port (for tests and embedding).
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Shuts down gracefully and waits for the server to stop.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        (&mut self.done)
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

/// Starts a mock on `127.0.0.1:0`.
pub async fn start(world: World, config: Config) -> std::io::Result<Running> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(serve(listener, world, config, async move {
        let _ = rx.await;
    }));
    Ok(Running {
        addr,
        stop: Some(tx),
        done,
    })
}
