//! proteus-mock: a faithful, fast, stateful ProteusAI server to run locally.
//!
//! # Layout
//! - [`model`]: the protocol's objects, serialized exactly as documented.
//! - [`world`]: world files (the default one is embedded) and their checks.
//! - [`store`]: all state and every protocol rule that reads or changes it;
//!   REST and socket.io handlers only translate to and from it.
//! - [`rest`]: `/api` routes, the envelope, auth and body handling.
//! - [`realtime`]: socket.io auth and client events, rooms, the emission path
//!   and its slow-consumer policy, and the task that plays scripted streams.
//! - [`script`]: what a scripted agent says and how it is cut into deltas.
//!
//! [`serve`] runs the server on a listener until a shutdown future resolves;
//! [`start`] runs one on a random loopback port for tests.

pub mod admin;
pub mod faults;
pub mod journal;
pub mod model;
pub mod net;
pub mod plugins;
pub mod priority;
pub mod realtime;
pub mod rest;
pub mod script;
pub mod store;
pub mod world;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socketioxide::SocketIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::realtime::rooms::Rooms;
use crate::store::Store;
use crate::world::World;

/// Tunables that are not part of the world.
#[derive(Debug, Clone)]
pub struct Config {
    /// Packets a socket may hold unsent before it is disconnected as a slow
    /// consumer (see [`realtime::rooms`]).
    pub socket_buffer: usize,
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
    /// Webhook timeout and ASYNC retries.
    pub webhooks: plugins::dispatch::Settings,
    /// Replaces the webhook URL of every plugin of the world (`--plugin-url`).
    pub plugin_url: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            socket_buffer: 8192,
            slow_consumer_grace: Duration::from_secs(2),
            admin: true,
            admin_token: None,
            faults: Vec::new(),
            journal_size: 10_000,
            webhooks: plugins::dispatch::Settings::default(),
            plugin_url: None,
        }
    }
}

/// Everything a handler needs, shared by REST and socket.io.
#[derive(Debug)]
pub struct App {
    pub store: Store,
    pub rooms: Rooms,
    /// Scripted replies in flight; waited for on shutdown.
    pub tasks: TaskTracker,
    /// Fired on shutdown (by [`App::hurry_up`]): streams stop pacing and
    /// finish at once.
    pub hurry: CancellationToken,
    /// Replaced on each reset; the old one is cancelled, which stops the
    /// replies started before the reset.
    epoch: std::sync::Mutex<CancellationToken>,
    /// Atomic mirrors of the two tokens, for the checks a stream makes before
    /// every delta (`CancellationToken::is_cancelled` takes a lock): the
    /// number of resets so far, and whether shutdown began.
    generation: std::sync::atomic::AtomicU64,
    hurried: std::sync::atomic::AtomicBool,
    pub faults: faults::Faults,
    start_faults: Vec<String>,
    pub admin_token: Option<String>,
    /// Packets a socket may hold unsent (`Config::socket_buffer`), for stats.
    pub socket_buffer: usize,
    /// Webhook delivery (see [`plugins::dispatch`]).
    pub dispatcher: Arc<plugins::dispatch::Dispatcher>,
    /// Streamed replies posted by plugins.
    pub plugin_streams: plugins::streams::PluginStreams,
    /// What the mock saw and did (see [`journal`]).
    pub journal: Arc<journal::Journal>,
    /// Accepted TCP connections, so a socket with a full buffer can still be cut.
    pub connections: Arc<net::Connections>,
    /// The socket.io handle, set once the layer is built.
    pub io: std::sync::OnceLock<SocketIo>,
    /// The runtime the server was built on: scripted replies run here even
    /// when a REST handler (on the background runtime) starts them.
    pub realtime: tokio::runtime::Handle,
}

impl App {
    /// The token that stops replies at the next reset.
    pub fn epoch(&self) -> CancellationToken {
        self.epoch.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Resets so far: a reply started in generation `g` stops once this moves on.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Whether shutdown began (streams then finish without pacing).
    pub fn hurried(&self) -> bool {
        self.hurried.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Begins shutdown: streams stop pacing.
    pub fn hurry_up(&self) {
        self.hurried
            .store(true, std::sync::atomic::Ordering::Release);
        self.hurry.cancel();
    }

    /// Resolves a token, honouring the `accept-bad-token` fault.
    pub fn authenticate(&self, token: &str) -> Result<store::Caller, String> {
        self.store.authenticate(token).or_else(|e| {
            if self
                .faults
                .has(None, |k| matches!(k, faults::FaultKind::AcceptBadToken))
            {
                self.store.first_user().ok_or(e)
            } else {
                Err(e)
            }
        })
    }

    /// Back to the loaded world: replies stopped, sockets told and closed,
    /// faults back to the start-up ones.
    pub async fn reset(&self) {
        let old = std::mem::replace(
            &mut *self.epoch.lock().unwrap_or_else(|p| p.into_inner()),
            CancellationToken::new(),
        );
        // The count first: a stream woken by the cancel sees it moved.
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        old.cancel();
        // Wait (briefly) for the cancelled replies to stop, so none emits into the fresh state.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while !self.tasks.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if let Some(io) = self.io.get() {
            for socket in io.sockets() {
                let _ = socket.emit(
                    "error",
                    &serde_json::json!({ "message": "The mock was reset: reconnect" }),
                );
                net::disconnect(socket, &self.connections);
            }
        }
        self.rooms.clear();
        self.store.reset();
        self.journal.clear();
        self.dispatcher.clear();
        self.plugin_streams.clear();
        self.faults.clear();
        for spec in &self.start_faults {
            let _ = self.faults.add(
                spec,
                faults::Scope {
                    chat_id: None,
                    agent_id: None,
                },
            );
        }
        tracing::info!("reset to the loaded world");
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
    let connections = Arc::new(net::Connections::default());
    let app = Arc::new(App {
        store: Store::new(world),
        rooms: Rooms::new(
            config.slow_consumer_grace,
            journal.clone(),
            connections.clone(),
        ),
        connections,
        socket_buffer: config.socket_buffer,
        journal,
        dispatcher: Arc::new(plugins::dispatch::Dispatcher::new(config.webhooks.clone())),
        plugin_streams: plugins::streams::PluginStreams::default(),
        tasks: TaskTracker::new(),
        hurry: CancellationToken::new(),
        epoch: std::sync::Mutex::new(CancellationToken::new()),
        generation: std::sync::atomic::AtomicU64::new(0),
        hurried: std::sync::atomic::AtomicBool::new(false),
        faults: faults::Faults::default(),
        start_faults: config.faults.clone(),
        admin_token: config.admin_token.clone(),
        io: std::sync::OnceLock::new(),
        realtime: tokio::runtime::Handle::try_current()
            .map_err(|_| "the server must be built inside a tokio runtime".to_string())?,
    });
    for spec in &config.faults {
        app.faults
            .add(
                spec,
                faults::Scope {
                    chat_id: None,
                    agent_id: None,
                },
            )
            .map_err(|e| format!("--fault {spec}: {e}"))?;
    }
    let (layer, io) = SocketIo::builder()
        .max_buffer_size(config.socket_buffer)
        .with_state(app.clone())
        .build_layer();
    io.ns(
        "/",
        socketioxide::handler::ConnectHandler::with(realtime::on_connect, realtime::authenticate),
    );
    let _ = app.io.set(io.clone());
    let mut router = rest::router(app.clone());
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
        sampler_stop.cancel();
    };
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<net::Peer>(),
    )
    .with_graceful_shutdown(graceful)
    .await
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
