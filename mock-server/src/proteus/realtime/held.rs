//! The bytes a socket holds unsent: the slow-consumer bound in bytes.
//!
//! socketioxide bounds a socket's buffer in packets (`--socket-buffer`), and
//! a packet is anything from a 40-byte delta to a 1 MiB message: a paused
//! client could make one socket hold gigabytes. So the mock also counts the
//! bytes it hands each socket and compares them with the bytes written to
//! the WebSocket connection that carries it; the difference waits in the
//! socket's buffer. Over `--socket-buffer-bytes` the socket counts as full:
//! the same grace, then the same cut, as a buffer full of packets.
//!
//! The count errs on the side of the client: what the server writes
//! besides these packets (acks, pings, frame headers) counts as drained,
//! and the count starts afresh whenever the buffer is seen empty, so that
//! error never adds up. A socket on long-polling is bounded by packets only
//! (its polls come on any connection; a client that stops polling is
//! dropped by the engine's ping timeout).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use socketioxide::extract::SocketRef;

use crate::net::{Connections, Written};

/// One socket's count.
#[derive(Debug, Default)]
pub struct Held {
    /// Bytes handed to the socket since the count started.
    handed: AtomicU64,
    /// The connection's written bytes when the count started.
    written_before: AtomicU64,
    /// The WebSocket connection carrying the socket, once it has one.
    carrier: OnceLock<Written>,
}

/// What a packet `42["event",payload]` costs on the wire, frame header
/// included (2 bytes up to 125, 4 up to 65,535, 10 beyond).
pub fn packet_bytes(event: &str, payload: usize) -> u64 {
    let text = payload + event.len() + 7;
    let header = match text {
        0..=125 => 2,
        126..=65_535 => 4,
        _ => 10,
    };
    (text + header) as u64
}

impl Held {
    /// Counts a packet handed to the socket.
    pub fn handed(&self, bytes: u64) {
        self.handed.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The bytes the socket holds unsent; `None` while it has no WebSocket
    /// connection to compare with.
    pub fn unsent(&self, socket: &SocketRef, connections: &Connections) -> Option<u64> {
        let carrier = match self.carrier.get() {
            Some(c) => c,
            None => {
                let found = connections.written_to(socket)?;
                // What was handed on long-polling went out there.
                self.handed.store(0, Ordering::Relaxed);
                self.written_before.store(found.bytes(), Ordering::Relaxed);
                self.carrier.get_or_init(|| found)
            }
        };
        let handed = self.handed.load(Ordering::Relaxed);
        let written = carrier
            .bytes()
            .saturating_sub(self.written_before.load(Ordering::Relaxed));
        if written >= handed {
            // All out: start afresh, so bytes that were not ours do not add up.
            self.handed.fetch_sub(handed, Ordering::Relaxed);
            self.written_before.fetch_add(written, Ordering::Relaxed);
            return Some(0);
        }
        Some(handed - written)
    }
}

#[cfg(test)]
mod tests {
    use super::packet_bytes;

    #[test]
    fn a_packet_costs_its_socket_io_frame_and_its_websocket_header() {
        // 42["message:delta",{}] is 22 bytes, with a 2-byte frame header.
        assert_eq!(packet_bytes("message:delta", 2), 24);
        assert_eq!(packet_bytes("message", 200), 200 + 7 + 7 + 4);
        assert_eq!(packet_bytes("message", 70_000), 70_000 + 14 + 10);
    }
}
