//! The fault registry: one row per fault, the single source of its name,
//! arguments, description and effect.
//!
//! `--list-faults`, `GET /__admin/profile`'s catalogue, parsing and every
//! parse error come from [`rows`]. Adding a fault is one row here (or, for
//! the Thenvoi profile, in `thenvoi_rows.rs`) plus the
//! site that reads its flag (a field of a view in [`super::views`]).
//! docs/CONTRIBUTING.md walks through it.

pub use super::args::{Arg, Args, Value, parse};
use super::stream::{RandomAction, draw};
use super::views::{Counter, Effects};

/// Where a fault acts: the view that carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    Auth,
    Realtime,
    Chat,
    Page,
    Rest,
    Plugins,
    Stream,
    Thenvoi,
}

/// What a stream-site effect may look at.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    pub stream_id: &'a str,
    pub deltas: usize,
}

/// Writes a fault's effect into its view. Stream effects return how many
/// times they touched the stream (counted at once); other sites store the
/// counter in a flag and are counted when the site fires it (return 0).
pub type Apply = fn(&Args, &Context<'_>, &Counter, &mut Effects) -> u64;

/// One fault.
pub struct Row {
    pub name: &'static str,
    pub args: &'static [Arg],
    pub doc: &'static str,
    pub site: Site,
    pub apply: Apply,
}

impl std::fmt::Debug for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl Row {
    /// `drop-delta:N`: the name with its argument placeholders.
    pub fn usage(&self) -> String {
        let mut s = self.name.to_string();
        for a in self.args {
            s.push(':');
            s.push_str(a.placeholder());
        }
        s
    }
}

/// Positional stream faults count once per stream long enough to be hit.
fn reaches(n: usize, c: &Context<'_>) -> u64 {
    u64::from(n <= c.deltas)
}

/// An on/off fault: a row whose effect sets one [`Flag`](super::Flag) of
/// its site's view (counted when the site fires it).
macro_rules! flag {
    ($name:literal, $site:ident, $view:ident . $field:ident, $doc:literal) => {
        Row {
            name: $name,
            args: &[],
            site: Site::$site,
            doc: $doc,
            apply: |_, _, hit, e| {
                e.$view.$field.set(hit);
                0
            },
        }
    };
}

pub(super) use flag;

/// Every fault, in catalogue order: ProteusAI's here, then the Thenvoi
/// profile's ([`super::thenvoi_rows`]).
pub fn rows() -> impl Iterator<Item = &'static Row> {
    PROTEUS_ROWS.iter().chain(super::thenvoi_rows::ROWS)
}

/// The ProteusAI faults, in catalogue order.
static PROTEUS_ROWS: &[Row] = &[
    Row {
        name: "delay-first-delta",
        args: &[Arg::Ms],
        site: Site::Stream,
        doc: "wait MS before each stream's first delta",
        apply: |a, _, _, e| {
            e.stream.first_delay = Some(a.ms(0));
            1
        },
    },
    Row {
        name: "slow-under-load",
        args: &[Arg::Ms],
        site: Site::Stream,
        doc: "each stream's first delta waits MS more for every other reply in flight (a server that slows with load: a sweep's knee)",
        apply: |a, _, _, e| {
            e.stream.per_load_delay = Some(a.ms(0));
            1
        },
    },
    Row {
        name: "stall-stream",
        args: &[Arg::After, Arg::Ms],
        site: Site::Stream,
        doc: "pause MS after delta AFTER",
        apply: |a, c, _, e| {
            e.stream.stall = Some((a.pos(0), a.ms(1)));
            u64::from(a.pos(0) < c.deltas)
        },
    },
    Row {
        name: "drop-delta",
        args: &[Arg::N],
        site: Site::Stream,
        doc: "never send delta N of each stream",
        apply: |a, c, _, e| {
            e.stream.drop.push(a.pos(0));
            reaches(a.pos(0), c)
        },
    },
    Row {
        name: "duplicate-delta",
        args: &[Arg::N],
        site: Site::Stream,
        doc: "send delta N twice",
        apply: |a, c, _, e| {
            e.stream.duplicate.push(a.pos(0));
            reaches(a.pos(0), c)
        },
    },
    Row {
        name: "reorder-deltas",
        args: &[Arg::N],
        site: Site::Stream,
        doc: "send delta N+1 before delta N",
        apply: |a, c, _, e| {
            e.stream.reorder.push(a.pos(0));
            reaches(a.pos(0), c)
        },
    },
    Row {
        name: "omit-done",
        args: &[],
        site: Site::Stream,
        doc: "never send message:done",
        apply: |_, _, _, e| {
            e.stream.omit_done = true;
            1
        },
    },
    Row {
        name: "double-done",
        args: &[],
        site: Site::Stream,
        doc: "send message:done twice",
        apply: |_, _, _, e| {
            e.stream.double_done = true;
            1
        },
    },
    Row {
        name: "delta-after-done",
        args: &[],
        site: Site::Stream,
        doc: "send a delta after message:done",
        apply: |_, _, _, e| {
            e.stream.delta_after_done = true;
            1
        },
    },
    Row {
        name: "wrong-content",
        args: &[Arg::N],
        site: Site::Stream,
        doc: "delta N's content is not the running concatenation",
        apply: |a, c, _, e| {
            e.stream.wrong_content.push(a.pos(0));
            reaches(a.pos(0), c)
        },
    },
    Row {
        name: "wrong-stream-id",
        args: &[Arg::N],
        site: Site::Stream,
        doc: "delta N carries another streamId",
        apply: |a, c, _, e| {
            e.stream.wrong_stream_id.push(a.pos(0));
            reaches(a.pos(0), c)
        },
    },
    Row {
        name: "disconnect-mid-stream",
        args: &[Arg::N],
        site: Site::Stream,
        doc: "disconnect the room's sockets after delta N",
        apply: |a, c, _, e| {
            e.stream.disconnect_after = Some(a.pos(0));
            reaches(a.pos(0), c)
        },
    },
    Row {
        name: "plain-message-for-stream",
        args: &[],
        site: Site::Stream,
        doc: "also send a streamed reply as a plain message",
        apply: |_, _, _, e| {
            e.stream.plain_message = true;
            1
        },
    },
    Row {
        name: "rest-latency",
        args: &[Arg::Ms],
        site: Site::Rest,
        doc: "every REST response waits MS",
        apply: |a, _, hit, e| {
            let mut v = super::views::Valued::default();
            v.set(a.num(0), hit);
            e.rest.latency_ms.push(v);
            0
        },
    },
    Row {
        name: "rest-status",
        args: &[Arg::Code, Arg::Prefix],
        site: Site::Rest,
        doc: "REST paths starting with PREFIX answer CODE (e.g. 503:/api/chats, 429:/api)",
        apply: |a, _, hit, e| {
            let mut v = super::views::Valued::default();
            v.set((u16::try_from(a.num(0)).unwrap_or(503), a.text(1)), hit);
            e.rest.status.push(v);
            0
        },
    },
    flag!(
        "page-overlap",
        Page,
        page.overlap,
        "history pages overlap by one item"
    ),
    flag!("page-skip", Page, page.skip, "history pages skip one item"),
    flag!(
        "ignore-cursor",
        Page,
        page.ignore_cursor,
        "@cursor is ignored"
    ),
    flag!(
        "no-limit-cap",
        Page,
        page.no_limit_cap,
        "@limit is not capped at 100"
    ),
    flag!(
        "accept-bad-token",
        Auth,
        auth.accept_bad_token,
        "unknown tokens act as the first user (REST and socket.io)"
    ),
    flag!(
        "allow-non-participant-join",
        Realtime,
        realtime.allow_non_participant_join,
        "anyone may join any chat's room"
    ),
    flag!(
        "missing-ok",
        Rest,
        rest.missing_ok,
        "REST bodies lack the envelope's ok"
    ),
    flag!(
        "errors-as-500",
        Rest,
        rest.errors_as_500,
        "every 4xx error is answered as 500"
    ),
    flag!(
        "created-as-200",
        Rest,
        rest.created_as_200,
        "creations answer 200 instead of 201"
    ),
    flag!(
        "default-limit-50",
        Page,
        page.default_limit_50,
        "history pages default to 50 items"
    ),
    flag!(
        "past-end-404",
        Page,
        page.past_end_404,
        "a history page past the end is 404"
    ),
    flag!(
        "ignore-encoded-params",
        Page,
        page.ignore_encoded_params,
        "%40page and %40limit are not recognized"
    ),
    flag!("no-meta", Rest, rest.no_meta, "history pages carry no meta"),
    flag!(
        "non-participant-read",
        Chat,
        chat.non_participant_read,
        "non-participants may read a chat over REST"
    ),
    flag!(
        "caller-not-added",
        Chat,
        chat.caller_not_added,
        "POST /api/chats does not add the caller"
    ),
    flag!(
        "key-not-reused",
        Chat,
        chat.key_not_reused,
        "key and chatKey never find an existing chat"
    ),
    flag!(
        "no-type-default",
        Realtime,
        realtime.no_type_default,
        "a message without type is acked with type: null"
    ),
    flag!(
        "success-without-entity",
        Realtime,
        realtime.success_without_entity,
        "success is sent without its entity"
    ),
    flag!(
        "no-acks",
        Realtime,
        realtime.no_acks,
        "no client event is ever acknowledged"
    ),
    flag!(
        "join-ack-without-chat-id",
        Realtime,
        realtime.join_ack_without_chat_id,
        "chat:join and chat:leave ack {data: {}}"
    ),
    flag!(
        "leave-keeps-room",
        Realtime,
        realtime.leave_keeps_room,
        "chat:leave is acknowledged but the socket stays in the room"
    ),
    flag!(
        "no-auto-join",
        Realtime,
        realtime.no_auto_join,
        "message:send does not join the sender to the room"
    ),
    flag!(
        "no-broadcast",
        Chat,
        chat.no_broadcast,
        "messages reach only the sender, not the room"
    ),
    flag!(
        "no-echo-to-sender",
        Realtime,
        realtime.no_echo_to_sender,
        "the sender does not receive its own message"
    ),
    Row {
        name: "ack-late",
        args: &[Arg::Ms],
        site: Site::Realtime,
        doc: "the message:send ack waits MS, after the reply started",
        apply: |a, _, hit, e| {
            e.realtime.ack_late_ms.set(a.num(0), hit);
            0
        },
    },
    Row {
        name: "delta-not-streaming",
        args: &[],
        site: Site::Stream,
        doc: "deltas say isStreaming: false",
        apply: |_, _, _, e| {
            e.stream.delta_not_streaming = true;
            1
        },
    },
    Row {
        name: "done-still-streaming",
        args: &[],
        site: Site::Stream,
        doc: "message:done says isStreaming: true",
        apply: |_, _, _, e| {
            e.stream.done_still_streaming = true;
            1
        },
    },
    Row {
        name: "done-content-wrong",
        args: &[],
        site: Site::Stream,
        doc: "message:done content is not the whole reply",
        apply: |_, _, _, e| {
            e.stream.done_content_wrong = true;
            1
        },
    },
    flag!(
        "bad-message-ids",
        Chat,
        chat.bad_message_ids,
        "new message ids are not 24-hex"
    ),
    flag!(
        "no-lifecycle-events",
        Chat,
        chat.no_lifecycle_events,
        "CHAT_* lifecycle events are not relayed to rooms"
    ),
    flag!(
        "skip-webhook-challenge",
        Plugins,
        plugins.skip_webhook_challenge,
        "plugins register without their webhook answering the challenge"
    ),
    flag!(
        "installed-without-token",
        Plugins,
        plugins.installed_without_token,
        "PLUGIN_INSTALLED carries no token"
    ),
    flag!(
        "no-message-dispatch",
        Plugins,
        plugins.no_message_dispatch,
        "*_MESSAGE_RECEIVED plugin events are never sent"
    ),
    flag!(
        "dispatch-out-of-order",
        Plugins,
        plugins.dispatch_out_of_order,
        "message events reach each instance in swapped pairs"
    ),
    flag!(
        "ignore-scopes",
        Plugins,
        plugins.ignore_scopes,
        "instance tokens may write whatever their scopes say"
    ),
    flag!(
        "token-survives-uninstall",
        Plugins,
        plugins.token_survives_uninstall,
        "uninstall announces PLUGIN_UNINSTALLED but the token keeps working"
    ),
    flag!(
        "drop-plugin-replies",
        Plugins,
        plugins.drop_plugin_replies,
        "messages posted with an inst- token are answered 201 but never stored or relayed"
    ),
    Row {
        name: "drop-random",
        args: &[Arg::Every, Arg::Seed],
        site: Site::Stream,
        doc: "drop each delta with probability 1/EVERY, drawn from SEED",
        apply: |a, c, _, e| {
            draw(
                &mut e.stream,
                RandomAction::Drop,
                a.num(0),
                a.num(1),
                c.stream_id,
                c.deltas,
            )
        },
    },
    Row {
        name: "duplicate-random",
        args: &[Arg::Every, Arg::Seed],
        site: Site::Stream,
        doc: "send each delta twice with probability 1/EVERY, drawn from SEED",
        apply: |a, c, _, e| {
            draw(
                &mut e.stream,
                RandomAction::Duplicate,
                a.num(0),
                a.num(1),
                c.stream_id,
                c.deltas,
            )
        },
    },
    Row {
        name: "reorder-random",
        args: &[Arg::Every, Arg::Seed],
        site: Site::Stream,
        doc: "swap a delta with the next with probability 1/EVERY, drawn from SEED",
        apply: |a, c, _, e| {
            draw(
                &mut e.stream,
                RandomAction::Reorder,
                a.num(0),
                a.num(1),
                c.stream_id,
                c.deltas,
            )
        },
    },
];
