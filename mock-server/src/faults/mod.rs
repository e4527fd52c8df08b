//! Fault injection: deliberate violations of one protocol rule each.
//!
//! A fault is written `NAME[:ARG[:ARG]]`, e.g. `drop-delta:3` or
//! `rest-status:503:/api/chats`, and applies globally, to one chat or to one
//! agent's replies. Faults are set with `--fault` at start or through
//! `POST /__admin/faults` at run time. Positions are 1-based and exact, so a
//! run with the same faults is the same run. The random faults
//! (`drop-random`, `duplicate-random`, `reorder-random`) take a SEED: the
//! deltas they hit are drawn from the seed and the stream's id (which the
//! mock's seeded id generator makes the same on every run), so a failing run
//! is replayed exactly by giving the same seed. Every fault counts how often
//! it fired (`applied` in `GET /__admin/faults`).
//!
//! # Layout
//! - [`registry`]: one row per fault (name, arguments, doc, site, effect):
//!   `--list-faults`, parsing and its errors all come from it.
//! - [`views`]: what a site reads: `PageFaults`, `RealtimeFaults`, …, one
//!   per place in the mock where faults act, computed once per request,
//!   event or stream. No code outside this module names a fault.
//! - [`stream`]: the stream view and the random faults' draws.
//!
//! Each fault exists so the conformance runner can be shown to catch the rule
//! it breaks (docs/CONFORMANCE.md has the table), and so client developers can
//! see how their code copes with realistic trouble.

mod args;
pub mod registry;
mod stream;
mod thenvoi_rows;
pub mod views;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde::Serialize;
use serde::ser::SerializeMap;

pub use registry::{Row, Site, parse, rows};
pub use stream::StreamFaults;
pub use views::{
    AuthFaults, ChatFaults, Effects, Flag, PageFaults, PluginFaults, RealtimeFaults, RestFaults,
    ThenvoiFaults, Valued,
};

/// Where a fault applies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Scope {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
}

/// An active fault.
#[derive(Debug, Clone)]
pub struct Fault {
    pub id: u64,
    /// As written: `drop-delta:3`.
    pub spec: String,
    pub row: &'static Row,
    pub args: registry::Args,
    pub scope: Scope,
    /// How often the fault fired (random delta faults: deltas affected).
    pub applied: Arc<AtomicU64>,
}

/// `{id, spec, name, <args by name>, scope, applied}`.
impl Serialize for Fault {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &self.id)?;
        m.serialize_entry("spec", &self.spec)?;
        m.serialize_entry("name", self.row.name)?;
        for (arg, value) in self.row.args.iter().zip(&self.args.0) {
            match value {
                registry::Value::Number(n) => m.serialize_entry(arg.key(), n)?,
                registry::Value::Text(t) => m.serialize_entry(arg.key(), t)?,
            }
        }
        m.serialize_entry("scope", &self.scope)?;
        m.serialize_entry("applied", &self.applied.load(Ordering::Relaxed))?;
        m.end()
    }
}

/// `(usage, doc)` for every fault, in catalogue order (help texts, the profile).
pub fn catalog() -> Vec<(String, &'static str)> {
    rows().map(|r| (r.usage(), r.doc)).collect()
}

/// The active faults.
#[derive(Debug, Default)]
pub struct Faults {
    active: RwLock<Vec<Fault>>,
    next: AtomicU64,
}

impl Faults {
    pub fn add(&self, spec: &str, scope: Scope) -> Result<Fault, String> {
        let (row, args) = parse(spec)?;
        let fault = Fault {
            id: self.next.fetch_add(1, Ordering::Relaxed) + 1,
            spec: spec.to_string(),
            row,
            args,
            scope,
            applied: Arc::default(),
        };
        self.active
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(fault.clone());
        Ok(fault)
    }

    pub fn list(&self) -> Vec<Fault> {
        self.active
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn remove(&self, id: u64) -> bool {
        let mut a = self.active.write().unwrap_or_else(|p| p.into_inner());
        let before = a.len();
        a.retain(|f| f.id != id);
        a.len() != before
    }

    /// Removes every fault; ids start at 1 again (a reset's faults are
    /// numbered as on a fresh mock).
    pub fn clear(&self) {
        let mut active = self.active.write().unwrap_or_else(|p| p.into_inner());
        active.clear();
        self.next.store(0, Ordering::Relaxed);
    }

    /// Whether nothing is active (the fast path checks this first).
    pub fn is_empty(&self) -> bool {
        self.active
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// The effects of the active faults of one site that apply to a chat
    /// (and, for replies, an agent): global ones and those scoped to them.
    fn effects(
        &self,
        site: Site,
        chat_id: Option<&str>,
        agent_id: Option<&str>,
        context: &registry::Context<'_>,
    ) -> Effects {
        let mut effects = Effects::default();
        if self.is_empty() {
            return effects;
        }
        let active = self.active.read().unwrap_or_else(|p| p.into_inner());
        for f in active.iter().filter(|f| f.row.site == site) {
            let in_chat = f
                .scope
                .chat_id
                .as_deref()
                .is_none_or(|c| Some(c) == chat_id);
            let for_agent = f
                .scope
                .agent_id
                .as_deref()
                .is_none_or(|g| Some(g) == agent_id);
            if in_chat && for_agent {
                let hits = (f.row.apply)(&f.args, context, &f.applied, &mut effects);
                f.applied.fetch_add(hits, Ordering::Relaxed);
            }
        }
        effects
    }

    fn view(&self, site: Site, chat_id: Option<&str>) -> Effects {
        self.effects(site, chat_id, None, &registry::Context::default())
    }

    /// Token checks (global faults only).
    pub fn auth(&self) -> AuthFaults {
        self.view(Site::Auth, None).auth
    }

    /// socket.io handling, for a chat or (`None`) a connection.
    pub fn realtime(&self, chat_id: Option<&str>) -> RealtimeFaults {
        self.view(Site::Realtime, chat_id).realtime
    }

    /// Chats and messages, whatever the transport.
    pub fn chat(&self, chat_id: Option<&str>) -> ChatFaults {
        self.view(Site::Chat, chat_id).chat
    }

    /// A chat's history pages.
    pub fn page(&self, chat_id: &str) -> PageFaults {
        self.view(Site::Page, Some(chat_id)).page
    }

    /// REST responses (global faults only).
    pub fn rest(&self) -> RestFaults {
        self.view(Site::Rest, None).rest
    }

    /// Plugins and webhooks, for a chat or (`None`) the management API.
    pub fn plugins(&self, chat_id: Option<&str>) -> PluginFaults {
        self.view(Site::Plugins, chat_id).plugins
    }

    /// The Thenvoi profile, for a room or (`None`) a socket or key.
    pub fn thenvoi(&self, room_id: Option<&str>) -> ThenvoiFaults {
        self.view(Site::Thenvoi, room_id).thenvoi
    }

    /// The faults one stream of `deltas` deltas with id `stream_id`, played
    /// by `agent_id` in `chat_id`, must show. Read once when it starts; each
    /// fault's `applied` is bumped when it touches this stream (random
    /// faults: once per delta they hit).
    pub fn stream(
        &self,
        chat_id: &str,
        agent_id: &str,
        stream_id: &str,
        deltas: usize,
    ) -> StreamFaults {
        let context = registry::Context { stream_id, deltas };
        self.effects(Site::Stream, Some(chat_id), Some(agent_id), &context)
            .stream
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogued_fault_parses_and_typos_get_a_hint() {
        for (spec, _) in catalog() {
            let example = spec
                .replace("AFTER", "2")
                .replace("EVERY", "10")
                .replace("SEED", "7")
                .replace("MS", "5")
                .replace("N", "3")
                .replace("CODE", "503")
                .replace("PREFIX", "/api/chats");
            parse(&example).unwrap_or_else(|e| panic!("{example}: {e}"));
        }
        assert!(parse("drop-delta:0").unwrap_err().contains("start at 1"));
        assert!(
            parse("drop-deltas:1")
                .unwrap_err()
                .contains("similar: drop-delta:N")
        );
        assert!(parse("rest-status:200").is_err());
        assert!(parse("drop-random:0:1").unwrap_err().contains("at least 1"));
        assert!(parse("omit-done:1").unwrap_err().contains("no arguments"));
    }

    #[test]
    fn random_faults_draw_the_same_deltas_from_the_same_seed_and_stream() {
        let draw = |spec: &str, stream: &str| {
            let faults = Faults::default();
            faults.add(spec, Scope::default()).expect("parses");
            faults.stream("c", "a", stream, 10_000).drop
        };
        let a = draw("drop-random:100:42", "s1");
        assert_eq!(a, draw("drop-random:100:42", "s1"), "same seed, same run");
        assert_ne!(
            a,
            draw("drop-random:100:43", "s1"),
            "another seed, another run"
        );
        assert_ne!(a, draw("drop-random:100:42", "s2"), "streams differ");
        assert!((50..200).contains(&a.len()), "about 1 in 100: {}", a.len());
        let counted = Faults::default();
        counted
            .add("drop-random:100:42", Scope::default())
            .expect("parses");
        counted.stream("c", "a", "s1", 10_000);
        assert_eq!(
            counted.list()[0].applied.load(Ordering::Relaxed),
            a.len() as u64
        );
    }

    #[test]
    fn a_flag_counts_only_when_its_site_fires_it() {
        let faults = Faults::default();
        faults
            .add("no-broadcast", Scope::default())
            .expect("parses");
        let view = faults.chat(Some("c"));
        assert!(view.no_broadcast.is_on());
        assert_eq!(faults.list()[0].applied.load(Ordering::Relaxed), 0);
        assert!(view.no_broadcast.fire());
        assert_eq!(faults.list()[0].applied.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_chat_scoped_fault_stays_out_of_other_chats() {
        let faults = Faults::default();
        let scope = Scope {
            chat_id: Some("c1".into()),
            agent_id: None,
        };
        faults.add("omit-done", scope).expect("parses");
        assert!(faults.stream("c1", "a", "s", 3).omit_done);
        assert!(!faults.stream("c2", "a", "s", 3).omit_done);
    }
}
