//! The ProteusAI transports: REST under `/api` and socket.io realtime.
//!
//! Handlers only translate: they parse the wire form, call the
//! [`crate::core`], and answer in the wire form (the REST envelope, a
//! socket.io ack). The rules live in the core.

pub mod realtime;
pub mod rest;
