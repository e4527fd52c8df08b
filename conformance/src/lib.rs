//! The ProteusAI conformance toolkit as a library.
//!
//! # Layout
//! - [`schema`]: the JSON Schemas of `schemas/` (embedded at build time) and a
//!   validator that answers with every error and where it points. This is the
//!   contract: the runner judges an implementation with it, and the mock's own
//!   tests judge the mock with it.
//! - [`stream`]: the streamed-reply checker (`message:delta` … `message:done`),
//!   which names the first rule a captured stream breaks.
//!
//! - [`client`]: the workspace's one socket.io client (Engine.IO v4 over a
//!   websocket), which shows every frame; the load generator reuses it.
//!
//! - [`walk`]: the pagination walker's judgement (complete, no duplicates,
//!   one order), unit-tested on synthetic pages.
//!
//! - `testing` (feature `testing`): a `proteus-mock` process for tests
//!   (spawned, never linked).
//!
//! This crate never imports the mock server's types: a bug shared by the two
//! would otherwise pass both.

pub mod case;
pub mod cases;
pub mod client;
pub mod profile;
pub mod report;
pub mod runner;
pub mod schema;
pub mod stream;
#[cfg(feature = "testing")]
pub mod testing;
pub mod walk;
