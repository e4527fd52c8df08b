//! The Thenvoi (Band) transports: the Phoenix Channels socket and the REST
//! Agent and Human APIs under `/api/v1` (docs/THENVOI.md), on the same port
//! as ProteusAI.
//!
//! Like [`crate::proteus`], handlers only translate: they read the wire
//! form, call [`crate::core::thenvoi`] (whose [`flow`](crate::core::thenvoi::flow)
//! functions cause the pushes), and answer in the wire form.

pub mod phoenix;
pub mod rest;

use std::sync::Arc;
use std::time::Duration;

use crate::core::Core;
use phoenix::hub::Hub;

/// What the Thenvoi handlers share.
#[derive(Debug)]
pub struct Band {
    pub core: Arc<Core>,
    /// Topic subscriptions; the core's outbox for pushes.
    pub hub: Arc<Hub>,
    /// A socket that sends no frame for this long is closed (T13).
    pub idle_timeout: Duration,
    /// Frames a socket may have queued before it is cut as a slow consumer.
    pub queue: usize,
    /// Bytes a socket may have queued before it is cut (0: no bound).
    pub queue_bytes: u64,
}

/// The Thenvoi routes, to be nested under `/api/v1`.
pub fn router<S>(band: Arc<Band>) -> axum::Router<S> {
    rest::router(band.clone())
        .route("/socket/websocket", axum::routing::get(phoenix::upgrade))
        .with_state(band)
}
