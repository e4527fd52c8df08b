//! The ProteusAI conformance toolkit as a library.
//!
//! # Layout
//! One line a module: what it holds, and why it is a module of its own.
//!
//! - [`case`]: what a case is (id, level, rule, run, failure); one shape for every check.
//! - [`cases`]: every case in one table, a file per protocol area, so each rule has one home.
//! - [`client`]: the workspace's one socket.io client, showing every frame; load reuses it.
//! - [`profile`]: who the runner may act as on a target; a gap makes cases unsupported, not failed.
//! - [`report`]: human, JSON, JUnit and HTML views of one result list, so the formats agree.
//! - [`runner`]: selects and runs cases on a target; the CLI and the tests share one run loop.
//! - [`schema`]: the embedded JSON Schemas of `schemas/`: one contract for runner and mock tests.
//! - [`stream`]: checks streamed replies and names the rule broken; load runs it on every frame.
//! - `testing` (feature, off by default): a `proteus-mock` process for tests, spawned not linked.
//! - [`walk`]: the pagination walker's judgement, pure so it is unit-tested on synthetic pages.
//!
//! This crate never imports the mock server's types: a bug shared by the two
//! would otherwise pass both.

pub mod case;
pub mod cases;
pub mod client;
pub mod profile;
pub mod proxy;
pub mod report;
pub mod runner;
pub mod schema;
pub mod sdk;
pub mod stream;
#[cfg(feature = "testing")]
pub mod testing;
pub mod walk;
