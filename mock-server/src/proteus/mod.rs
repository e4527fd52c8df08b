//! The ProteusAI transports: REST under `/api` and socket.io realtime.
//!
//! Handlers only translate: they parse the wire form, call the
//! [`crate::core`], and answer in the wire form (the REST envelope, a
//! socket.io ack). The rules live in the core.

pub mod realtime;
pub mod replay;
pub mod rest;

use std::sync::Arc;

use socketioxide::SocketIo;

use crate::core::Core;
use crate::net;
use realtime::rooms::Rooms;

/// Everything a handler needs: the core, and the transports' own state.
///
/// Dereferences to [`Core`], so `app.store` and `app.faults` read as before.
#[derive(Debug)]
pub struct App {
    pub core: Arc<Core>,
    /// socket.io room membership and emission (the core's outbox for it).
    pub rooms: Arc<Rooms>,
    /// The Thenvoi transports' state (its Phoenix hub is the core's other
    /// outbox); kept here so that reset and the control plane reach it.
    pub band: Arc<crate::thenvoi::Band>,
    pub(crate) start_faults: Vec<String>,
    pub admin_token: Option<String>,
    /// Packets a socket may hold unsent (`Config::socket_buffer`), for stats.
    pub socket_buffer: usize,
    /// Bytes a socket may hold unsent (`Config::socket_buffer_bytes`).
    pub socket_buffer_bytes: u64,
    /// Accepted TCP connections, so a socket with a full buffer can still be cut.
    pub connections: Arc<net::Connections>,
    /// The address the server listens on, set when it starts serving
    /// (outbound requests never go to it; `/__admin` accepts its host).
    pub listen: std::sync::OnceLock<std::net::SocketAddr>,
    /// The socket.io handle, set once the layer is built.
    pub io: std::sync::OnceLock<SocketIo>,
}

impl std::ops::Deref for App {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}

impl App {
    /// Back to the loaded world: replies stopped, sockets told and closed,
    /// faults back to the start-up ones.
    pub async fn reset(&self) {
        self.core.stop_replies().await;
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
        crate::thenvoi::phoenix::close_all(&self.band, "the mock was reset: reconnect");
        self.core.reset_state(&self.start_faults);
        tracing::info!("reset to the loaded world");
    }
}
