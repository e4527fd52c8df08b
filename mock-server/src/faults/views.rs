//! Per-site views of the active faults: what one request, one event or one
//! stream must do wrong, as plain flags.
//!
//! A site asks [`super::Faults`] for its view once (`faults.page(chat)`,
//! `faults.realtime(chat)`, …) and reads fields; it never matches on fault
//! names. A [`Flag`] or [`Valued`] counts the fault as applied when the
//! site *fires* it, i.e. when the fault really changed what the mock did, so
//! `applied` in `GET /__admin/faults` stays exact.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use super::stream::StreamFaults;

/// A fault's `applied` counter.
pub type Counter = Arc<AtomicU64>;

/// An on/off fault as a site sees it.
#[derive(Debug, Clone, Default)]
pub struct Flag(Option<Counter>);

impl Flag {
    pub(super) fn set(&mut self, hit: &Counter) {
        if self.0.is_none() {
            self.0 = Some(hit.clone());
        }
    }

    /// Whether the fault is active (does not count it).
    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// Whether the fault is active; counts it as applied when it is. Call it
    /// where the fault changes what the mock does.
    pub fn fire(&self) -> bool {
        match &self.0 {
            Some(c) => {
                c.fetch_add(1, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }
}

/// A fault with a value (a delay, a status), as a site sees it.
#[derive(Debug, Clone)]
pub struct Valued<T>(Option<(T, Counter)>);

impl<T> Default for Valued<T> {
    fn default() -> Self {
        Valued(None)
    }
}

impl<T: Clone> Valued<T> {
    pub(super) fn set(&mut self, value: T, hit: &Counter) {
        if self.0.is_none() {
            self.0 = Some((value, hit.clone()));
        }
    }

    /// The value when the fault is active and `when` holds for it; counts
    /// it as applied then.
    pub fn fire_if(&self, when: impl Fn(&T) -> bool) -> Option<T> {
        match &self.0 {
            Some((v, c)) if when(v) => {
                c.fetch_add(1, Ordering::Relaxed);
                Some(v.clone())
            }
            _ => None,
        }
    }

    /// The value when the fault is active; counts it as applied.
    pub fn fire(&self) -> Option<T> {
        self.0.as_ref().map(|(v, c)| {
            c.fetch_add(1, Ordering::Relaxed);
            v.clone()
        })
    }
}

/// Token checks.
#[derive(Debug, Clone, Default)]
pub struct AuthFaults {
    pub accept_bad_token: Flag,
}

/// socket.io: the greeting, acks, joins and `message:send`.
#[derive(Debug, Clone, Default)]
pub struct RealtimeFaults {
    pub success_without_entity: Flag,
    pub no_acks: Flag,
    pub allow_non_participant_join: Flag,
    pub join_ack_without_chat_id: Flag,
    pub leave_keeps_room: Flag,
    pub no_auto_join: Flag,
    pub no_echo_to_sender: Flag,
    pub ack_late_ms: Valued<u64>,
    pub no_type_default: Flag,
}

/// Chats and messages, whatever the transport.
#[derive(Debug, Clone, Default)]
pub struct ChatFaults {
    pub key_not_reused: Flag,
    pub caller_not_added: Flag,
    pub non_participant_read: Flag,
    pub no_broadcast: Flag,
    pub no_lifecycle_events: Flag,
    pub bad_message_ids: Flag,
}

/// History pages.
#[derive(Debug, Clone, Default)]
pub struct PageFaults {
    pub ignore_encoded_params: Flag,
    pub no_limit_cap: Flag,
    pub default_limit_50: Flag,
    pub ignore_cursor: Flag,
    pub overlap: Flag,
    pub skip: Flag,
    pub past_end_404: Flag,
}

impl PageFaults {
    /// Where index pages start, relative to the right place: -1 overlaps
    /// the previous page, +1 skips an item. Counts the fault that moved it.
    pub fn shift(&self) -> isize {
        if self.overlap.fire() {
            -1
        } else if self.skip.fire() {
            1
        } else {
            0
        }
    }
}

/// REST responses under `/api`.
#[derive(Debug, Clone, Default)]
pub struct RestFaults {
    /// Milliseconds every response waits (the sum of the active delays).
    pub latency_ms: Vec<Valued<u64>>,
    /// Paths starting with the prefix answer the status.
    pub status: Vec<Valued<(u16, String)>>,
    pub errors_as_500: Flag,
    pub created_as_200: Flag,
    pub missing_ok: Flag,
    pub no_meta: Flag,
}

/// Plugins, webhooks and instance tokens.
#[derive(Debug, Clone, Default)]
pub struct PluginFaults {
    pub skip_webhook_challenge: Flag,
    pub installed_without_token: Flag,
    pub token_survives_uninstall: Flag,
    pub ignore_scopes: Flag,
    pub drop_plugin_replies: Flag,
    pub no_message_dispatch: Flag,
    pub dispatch_out_of_order: Flag,
}

/// The Thenvoi profile: its socket, channels, delivery, REST and lifecycle
/// (docs/THENVOI.md; each flag names the rule it breaks).
#[derive(Debug, Clone, Default)]
pub struct ThenvoiFaults {
    pub deliver_unmentioned: Flag,
    pub deliver_own: Flag,
    pub push_events: Flag,
    pub camel_case: Flag,
    pub join_any_room: Flag,
    pub join_reply_without_refs: Flag,
    pub no_heartbeat_reply: Flag,
    pub keep_old_agent_socket: Flag,
    pub no_idle_close: Flag,
    pub accept_missing_vsn: Flag,
    pub close_on_client_event: Flag,
    pub processed_without_attempt: Flag,
    pub failed_without_error: Flag,
    pub next_skips_oldest: Flag,
    pub next_empty_200: Flag,
    pub next_includes_processed: Flag,
    pub ignore_status_filter: Flag,
    pub mention_optional: Flag,
    pub lenient_bodies: Flag,
    pub no_participant_events: Flag,
    pub no_room_events: Flag,
    pub no_page_metadata: Flag,
    pub foreign_room_visible: Flag,
    pub accept_bad_key: Flag,
    pub accept_any_vsn: Flag,
    pub ignore_malformed_frames: Flag,
    pub unmatched_as_unauthorized: Flag,
    pub wrong_key_kind_401: Flag,
    pub read_bearer: Flag,
    pub plain_404: Flag,
    pub unknown_room_403: Flag,
    pub non_object_body_422: Flag,
    pub created_as_200: Flag,
    pub no_recipients: Flag,
    pub mention_anyone: Flag,
    pub participants_agents_only: Flag,
    pub duplicate_participant_ok: Flag,
    pub any_role_adds: Flag,
    pub remove_missing_200: Flag,
    pub added_rooms_hidden: Flag,
    pub me_without_owner: Flag,
    pub register_without_key: Flag,
    pub users_add_only_agents: Flag,
    pub attempts_from_zero: Flag,
    pub processing_keeps_attempt: Flag,
    pub claim_any_message: Flag,
    pub next_skips_processing: Flag,
    pub unknown_status_as_all: Flag,
    pub lenient_paging: Flag,
}

/// Every view at once: a registry row's effect writes into its site's part.
#[derive(Debug, Clone, Default)]
pub struct Effects {
    pub auth: AuthFaults,
    pub realtime: RealtimeFaults,
    pub chat: ChatFaults,
    pub page: PageFaults,
    pub rest: RestFaults,
    pub plugins: PluginFaults,
    pub stream: StreamFaults,
    pub thenvoi: ThenvoiFaults,
}
