//! The fault registry: one row per fault, the single source of its name,
//! arguments, description and effect.
//!
//! `--list-faults`, `GET /__admin/profile`'s catalogue, parsing and every
//! parse error come from [`ROWS`]. Adding a fault is one row here plus the
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

/// Every fault, in catalogue order.
pub static ROWS: &[Row] = &[
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
    Row {
        name: "page-overlap",
        args: &[],
        site: Site::Page,
        doc: "history pages overlap by one item",
        apply: |_, _, hit, e| {
            e.page.overlap.set(hit);
            0
        },
    },
    Row {
        name: "page-skip",
        args: &[],
        site: Site::Page,
        doc: "history pages skip one item",
        apply: |_, _, hit, e| {
            e.page.skip.set(hit);
            0
        },
    },
    Row {
        name: "ignore-cursor",
        args: &[],
        site: Site::Page,
        doc: "@cursor is ignored",
        apply: |_, _, hit, e| {
            e.page.ignore_cursor.set(hit);
            0
        },
    },
    Row {
        name: "no-limit-cap",
        args: &[],
        site: Site::Page,
        doc: "@limit is not capped at 100",
        apply: |_, _, hit, e| {
            e.page.no_limit_cap.set(hit);
            0
        },
    },
    Row {
        name: "accept-bad-token",
        args: &[],
        site: Site::Auth,
        doc: "unknown tokens act as the first user (REST and socket.io)",
        apply: |_, _, hit, e| {
            e.auth.accept_bad_token.set(hit);
            0
        },
    },
    Row {
        name: "allow-non-participant-join",
        args: &[],
        site: Site::Realtime,
        doc: "anyone may join any chat's room",
        apply: |_, _, hit, e| {
            e.realtime.allow_non_participant_join.set(hit);
            0
        },
    },
    Row {
        name: "missing-ok",
        args: &[],
        site: Site::Rest,
        doc: "REST bodies lack the envelope's ok",
        apply: |_, _, hit, e| {
            e.rest.missing_ok.set(hit);
            0
        },
    },
    Row {
        name: "errors-as-500",
        args: &[],
        site: Site::Rest,
        doc: "every 4xx error is answered as 500",
        apply: |_, _, hit, e| {
            e.rest.errors_as_500.set(hit);
            0
        },
    },
    Row {
        name: "created-as-200",
        args: &[],
        site: Site::Rest,
        doc: "creations answer 200 instead of 201",
        apply: |_, _, hit, e| {
            e.rest.created_as_200.set(hit);
            0
        },
    },
    Row {
        name: "default-limit-50",
        args: &[],
        site: Site::Page,
        doc: "history pages default to 50 items",
        apply: |_, _, hit, e| {
            e.page.default_limit_50.set(hit);
            0
        },
    },
    Row {
        name: "past-end-404",
        args: &[],
        site: Site::Page,
        doc: "a history page past the end is 404",
        apply: |_, _, hit, e| {
            e.page.past_end_404.set(hit);
            0
        },
    },
    Row {
        name: "ignore-encoded-params",
        args: &[],
        site: Site::Page,
        doc: "%40page and %40limit are not recognized",
        apply: |_, _, hit, e| {
            e.page.ignore_encoded_params.set(hit);
            0
        },
    },
    Row {
        name: "no-meta",
        args: &[],
        site: Site::Rest,
        doc: "history pages carry no meta",
        apply: |_, _, hit, e| {
            e.rest.no_meta.set(hit);
            0
        },
    },
    Row {
        name: "non-participant-read",
        args: &[],
        site: Site::Chat,
        doc: "non-participants may read a chat over REST",
        apply: |_, _, hit, e| {
            e.chat.non_participant_read.set(hit);
            0
        },
    },
    Row {
        name: "caller-not-added",
        args: &[],
        site: Site::Chat,
        doc: "POST /api/chats does not add the caller",
        apply: |_, _, hit, e| {
            e.chat.caller_not_added.set(hit);
            0
        },
    },
    Row {
        name: "key-not-reused",
        args: &[],
        site: Site::Chat,
        doc: "key and chatKey never find an existing chat",
        apply: |_, _, hit, e| {
            e.chat.key_not_reused.set(hit);
            0
        },
    },
    Row {
        name: "no-type-default",
        args: &[],
        site: Site::Realtime,
        doc: "a message without type is acked with type: null",
        apply: |_, _, hit, e| {
            e.realtime.no_type_default.set(hit);
            0
        },
    },
    Row {
        name: "success-without-entity",
        args: &[],
        site: Site::Realtime,
        doc: "success is sent without its entity",
        apply: |_, _, hit, e| {
            e.realtime.success_without_entity.set(hit);
            0
        },
    },
    Row {
        name: "no-acks",
        args: &[],
        site: Site::Realtime,
        doc: "no client event is ever acknowledged",
        apply: |_, _, hit, e| {
            e.realtime.no_acks.set(hit);
            0
        },
    },
    Row {
        name: "join-ack-without-chat-id",
        args: &[],
        site: Site::Realtime,
        doc: "chat:join and chat:leave ack {data: {}}",
        apply: |_, _, hit, e| {
            e.realtime.join_ack_without_chat_id.set(hit);
            0
        },
    },
    Row {
        name: "leave-keeps-room",
        args: &[],
        site: Site::Realtime,
        doc: "chat:leave is acknowledged but the socket stays in the room",
        apply: |_, _, hit, e| {
            e.realtime.leave_keeps_room.set(hit);
            0
        },
    },
    Row {
        name: "no-auto-join",
        args: &[],
        site: Site::Realtime,
        doc: "message:send does not join the sender to the room",
        apply: |_, _, hit, e| {
            e.realtime.no_auto_join.set(hit);
            0
        },
    },
    Row {
        name: "no-broadcast",
        args: &[],
        site: Site::Chat,
        doc: "messages reach only the sender, not the room",
        apply: |_, _, hit, e| {
            e.chat.no_broadcast.set(hit);
            0
        },
    },
    Row {
        name: "no-echo-to-sender",
        args: &[],
        site: Site::Realtime,
        doc: "the sender does not receive its own message",
        apply: |_, _, hit, e| {
            e.realtime.no_echo_to_sender.set(hit);
            0
        },
    },
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
    Row {
        name: "bad-message-ids",
        args: &[],
        site: Site::Chat,
        doc: "new message ids are not 24-hex",
        apply: |_, _, hit, e| {
            e.chat.bad_message_ids.set(hit);
            0
        },
    },
    Row {
        name: "no-lifecycle-events",
        args: &[],
        site: Site::Chat,
        doc: "CHAT_* lifecycle events are not relayed to rooms",
        apply: |_, _, hit, e| {
            e.chat.no_lifecycle_events.set(hit);
            0
        },
    },
    Row {
        name: "skip-webhook-challenge",
        args: &[],
        site: Site::Plugins,
        doc: "plugins register without their webhook answering the challenge",
        apply: |_, _, hit, e| {
            e.plugins.skip_webhook_challenge.set(hit);
            0
        },
    },
    Row {
        name: "installed-without-token",
        args: &[],
        site: Site::Plugins,
        doc: "PLUGIN_INSTALLED carries no token",
        apply: |_, _, hit, e| {
            e.plugins.installed_without_token.set(hit);
            0
        },
    },
    Row {
        name: "no-message-dispatch",
        args: &[],
        site: Site::Plugins,
        doc: "*_MESSAGE_RECEIVED plugin events are never sent",
        apply: |_, _, hit, e| {
            e.plugins.no_message_dispatch.set(hit);
            0
        },
    },
    Row {
        name: "dispatch-out-of-order",
        args: &[],
        site: Site::Plugins,
        doc: "message events reach each instance in swapped pairs",
        apply: |_, _, hit, e| {
            e.plugins.dispatch_out_of_order.set(hit);
            0
        },
    },
    Row {
        name: "ignore-scopes",
        args: &[],
        site: Site::Plugins,
        doc: "instance tokens may write whatever their scopes say",
        apply: |_, _, hit, e| {
            e.plugins.ignore_scopes.set(hit);
            0
        },
    },
    Row {
        name: "token-survives-uninstall",
        args: &[],
        site: Site::Plugins,
        doc: "uninstall announces PLUGIN_UNINSTALLED but the token keeps working",
        apply: |_, _, hit, e| {
            e.plugins.token_survives_uninstall.set(hit);
            0
        },
    },
    Row {
        name: "drop-plugin-replies",
        args: &[],
        site: Site::Plugins,
        doc: "messages posted with an inst- token are answered 201 but never stored or relayed",
        apply: |_, _, hit, e| {
            e.plugins.drop_plugin_replies.set(hit);
            0
        },
    },
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
