//! Which TCP connection carries a socket.io socket.
//!
//! socketioxide keeps the request that *opened* a socket (`req_parts`). For
//! a client that starts on long-polling and then upgrades (what the official
//! clients do by default) that is a polling request, not the WebSocket that
//! carries the socket afterwards. So the accept loop notes each upgrade
//! request's `sid` (the socket's id) with its connection ([`Connections::note_upgrade`]),
//! and the mock can cut the connection that really carries a socket
//! ([`disconnect`]) and see how many bytes it has written to it
//! ([`Written`], for the slow-consumer bound in bytes).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::ConnectInfo;
use socketioxide::extract::SocketRef;
use socketioxide::{SocketError, TransportType};

use super::{Connections, Cut, Peer};

/// The bytes written so far to the connection that carries a socket.
#[derive(Debug, Clone)]
pub struct Written(Arc<Cut>);

impl Written {
    pub fn bytes(&self) -> u64 {
        self.0.written.load(Ordering::Relaxed)
    }
}

impl Connections {
    /// Notes a WebSocket upgrade of a socket.io socket (`GET /socket.io/
    /// ?transport=websocket&sid=…`) arriving on the connection from `peer`.
    pub(super) fn note_upgrade(&self, uri: &axum::http::Uri, peer: SocketAddr) {
        let Some(query) = uri.query() else { return };
        if !uri.path().starts_with("/socket.io") || !query.contains("transport=websocket") {
            return;
        }
        let Some(sid) = form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "sid")
            .map(|(_, v)| v.into_owned())
        else {
            return;
        };
        if let Some(cut) = self.lock().get(&peer) {
            let _ = cut.upgrade_of.set(sid.clone());
        }
        self.upgrades_lock().insert(sid, peer);
    }

    /// Forgets an upgrade when its connection ends.
    pub(super) fn forget_upgrade(&self, sid: &str, peer: SocketAddr) {
        let mut upgrades = self.upgrades_lock();
        if upgrades.get(sid) == Some(&peer) {
            upgrades.remove(sid);
        }
    }

    fn upgrades_lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, SocketAddr>> {
        self.upgrades.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The peer address of the connection that carries `socket` now.
    fn carrier(&self, socket: &SocketRef) -> Option<SocketAddr> {
        if socket.transport_type() == TransportType::Websocket
            && let Some(peer) = self.upgrades_lock().get(&socket.id.to_string())
        {
            return Some(*peer);
        }
        socket
            .req_parts()
            .extensions
            .get::<ConnectInfo<Peer>>()
            .map(|c| c.0.0)
    }

    /// The written-bytes counter of the WebSocket connection carrying
    /// `socket`; `None` while it is on long-polling (whose requests come and
    /// go on any connection).
    pub fn written_to(&self, socket: &SocketRef) -> Option<Written> {
        if socket.transport_type() != TransportType::Websocket {
            return None;
        }
        let peer = self.carrier(socket)?;
        self.lock().get(&peer).cloned().map(Written)
    }
}

/// Cuts the TCP connection that carries `socket`.
pub fn cut_carrier(socket: &SocketRef, connections: &Connections) {
    if let Some(peer) = connections.carrier(socket) {
        connections.cut(peer);
    }
}

/// Disconnects a socket: the disconnect packet when it fits in the socket's
/// buffer, otherwise the TCP connection that carries it is cut.
pub fn disconnect(socket: SocketRef, connections: &Connections) {
    let peer = connections.carrier(&socket);
    if let Err(SocketError::InternalChannelFull) = socket.disconnect() {
        let cut = peer.is_some_and(|p| connections.cut(p));
        tracing::debug!(?peer, cut, "socket buffer full: cut the TCP connection");
    }
}
