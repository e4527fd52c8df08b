//! The Thenvoi profile's faults (docs/THENVOI.md): one row each, read by
//! the Thenvoi sites through [`super::views::ThenvoiFaults`]. Kept apart
//! from [`super::registry`]'s ProteusAI rows only for length; the catalogue
//! lists them after those ([`super::registry::rows`]).

use super::registry::{Row, Site, flag};

/// The Thenvoi faults, in catalogue order.
pub static ROWS: &[Row] = &[
    flag!(
        "thenvoi-deliver-unmentioned",
        Thenvoi,
        thenvoi.deliver_unmentioned,
        "agents get every text message of a room they joined, mentioned or not (T17)"
    ),
    flag!(
        "thenvoi-deliver-own",
        Thenvoi,
        thenvoi.deliver_own,
        "an agent gets its own messages pushed back (T17)"
    ),
    flag!(
        "thenvoi-push-events",
        Thenvoi,
        thenvoi.push_events,
        "non-text events are pushed as message_created (T18)"
    ),
    flag!(
        "thenvoi-camel-case",
        Thenvoi,
        thenvoi.camel_case,
        "message_created payloads use camelCase keys (T24)"
    ),
    flag!(
        "thenvoi-join-any-room",
        Thenvoi,
        thenvoi.join_any_room,
        "joins to other rooms and other entities' channels are accepted (T16)"
    ),
    flag!(
        "thenvoi-join-reply-without-refs",
        Thenvoi,
        thenvoi.join_reply_without_refs,
        "join replies carry null refs (T8)"
    ),
    flag!(
        "thenvoi-no-heartbeat-reply",
        Thenvoi,
        thenvoi.no_heartbeat_reply,
        "heartbeats are not answered (T12)"
    ),
    flag!(
        "thenvoi-keep-old-agent-socket",
        Thenvoi,
        thenvoi.keep_old_agent_socket,
        "a second socket for an agent leaves the first one open (T14)"
    ),
    flag!(
        "thenvoi-no-idle-close",
        Thenvoi,
        thenvoi.no_idle_close,
        "silent sockets are never closed (T13)"
    ),
    flag!(
        "thenvoi-accept-missing-vsn",
        Thenvoi,
        thenvoi.accept_missing_vsn,
        "a socket without vsn=2.0.0 is served like one with it (T2)"
    ),
    flag!(
        "thenvoi-close-on-client-event",
        Thenvoi,
        thenvoi.close_on_client_event,
        "a client event on a push-only channel closes the socket (T11)"
    ),
    flag!(
        "thenvoi-processed-without-attempt",
        Thenvoi,
        thenvoi.processed_without_attempt,
        "/processed without an active attempt is accepted (T43)"
    ),
    flag!(
        "thenvoi-failed-without-error",
        Thenvoi,
        thenvoi.failed_without_error,
        "/failed without an error is accepted (T44)"
    ),
    flag!(
        "thenvoi-next-skips-oldest",
        Thenvoi,
        thenvoi.next_skips_oldest,
        "/messages/next answers the second-oldest pending message (T47)"
    ),
    flag!(
        "thenvoi-next-empty-200",
        Thenvoi,
        thenvoi.next_empty_200,
        "/messages/next with nothing to do answers 200 with null data (T47)"
    ),
    flag!(
        "thenvoi-next-includes-processed",
        Thenvoi,
        thenvoi.next_includes_processed,
        "/messages/next also answers processed messages (T47)"
    ),
    flag!(
        "thenvoi-ignore-status-filter",
        Thenvoi,
        thenvoi.ignore_status_filter,
        "/messages ignores ?status= and lists everything (T48)"
    ),
    flag!(
        "thenvoi-mention-optional",
        Thenvoi,
        thenvoi.mention_optional,
        "a message without mentions is accepted (T34)"
    ),
    flag!(
        "thenvoi-lenient-bodies",
        Thenvoi,
        thenvoi.lenient_bodies,
        "unknown properties in request bodies are ignored (T32)"
    ),
    flag!(
        "thenvoi-no-participant-events",
        Thenvoi,
        thenvoi.no_participant_events,
        "participant_added and participant_removed are not pushed (T20)"
    ),
    flag!(
        "thenvoi-no-room-events",
        Thenvoi,
        thenvoi.no_room_events,
        "room_added and room_removed are not pushed (T21)"
    ),
    flag!(
        "thenvoi-no-page-metadata",
        Thenvoi,
        thenvoi.no_page_metadata,
        "list pages carry no metadata object (T49)"
    ),
    flag!(
        "thenvoi-foreign-room-visible",
        Thenvoi,
        thenvoi.foreign_room_visible,
        "REST routes of a room the caller is not in answer as if it were (T31)"
    ),
    flag!(
        "thenvoi-accept-bad-key",
        Thenvoi,
        thenvoi.accept_bad_key,
        "an unknown X-API-Key or socket api_key is taken for the first agent (T29)"
    ),
    flag!(
        "thenvoi-accept-any-vsn",
        Thenvoi,
        thenvoi.accept_any_vsn,
        "a socket with a vsn other than 2.x (vsn=1.0.0) is served like vsn=2.0.0 (T2)"
    ),
    flag!(
        "thenvoi-ignore-malformed-frames",
        Thenvoi,
        thenvoi.ignore_malformed_frames,
        "a malformed frame is dropped and the socket stays open (T7)"
    ),
    flag!(
        "thenvoi-unmatched-as-unauthorized",
        Thenvoi,
        thenvoi.unmatched_as_unauthorized,
        "a join of a topic of no known family is refused unauthorized, not unmatched topic (T8)"
    ),
    flag!(
        "thenvoi-wrong-key-kind-401",
        Thenvoi,
        thenvoi.wrong_key_kind_401,
        "a user key on /agent or an agent key on /me is 401, not 403 (T29)"
    ),
    flag!(
        "thenvoi-read-bearer",
        Thenvoi,
        thenvoi.read_bearer,
        "an Authorization: Bearer key is taken when X-API-Key is absent (T29)"
    ),
    flag!(
        "thenvoi-plain-404",
        Thenvoi,
        thenvoi.plain_404,
        "an unknown REST route answers a plain-text 404 without the error envelope (T30)"
    ),
    flag!(
        "thenvoi-unknown-room-403",
        Thenvoi,
        thenvoi.unknown_room_403,
        "an unknown room id on the REST routes is 403, not 404 (T31)"
    ),
    flag!(
        "thenvoi-non-object-body-422",
        Thenvoi,
        thenvoi.non_object_body_422,
        "a request body that is not a JSON object is 422, not 400 (T31)"
    ),
    flag!(
        "thenvoi-created-as-200",
        Thenvoi,
        thenvoi.created_as_200,
        "Agent API creations (room, message, event, participant) and agent registration answer 200, not 201 (T31)"
    ),
    flag!(
        "thenvoi-no-recipients",
        Thenvoi,
        thenvoi.no_recipients,
        "a sent message answers an empty recipients list (T34)"
    ),
    flag!(
        "thenvoi-mention-anyone",
        Thenvoi,
        thenvoi.mention_anyone,
        "a message mentioning someone who is not a participant is accepted (T34)"
    ),
    flag!(
        "thenvoi-participants-agents-only",
        Thenvoi,
        thenvoi.participants_agents_only,
        "GET /agent/chats/{id}/participants lists the agents only, not the users (T36)"
    ),
    flag!(
        "thenvoi-duplicate-participant-ok",
        Thenvoi,
        thenvoi.duplicate_participant_ok,
        "adding a participant already in the room answers 201 again (T36)"
    ),
    flag!(
        "thenvoi-any-role-adds",
        Thenvoi,
        thenvoi.any_role_adds,
        "an agent that is a plain member of a room may add participants (T36)"
    ),
    flag!(
        "thenvoi-remove-missing-200",
        Thenvoi,
        thenvoi.remove_missing_200,
        "removing a participant who is not in the room answers 200 (T36)"
    ),
    flag!(
        "thenvoi-added-rooms-hidden",
        Thenvoi,
        thenvoi.added_rooms_hidden,
        "GET /agent/chats/{id} is 404 for a room the agent was added to rather than created (T37)"
    ),
    flag!(
        "thenvoi-me-without-owner",
        Thenvoi,
        thenvoi.me_without_owner,
        "GET /agent/me leaves out owner_uuid (T38)"
    ),
    flag!(
        "thenvoi-register-without-key",
        Thenvoi,
        thenvoi.register_without_key,
        "POST /me/agents/register answers credentials without the api_key (T51)"
    ),
    flag!(
        "thenvoi-users-add-only-agents",
        Thenvoi,
        thenvoi.users_add_only_agents,
        "a user adding another user to a room is 403 (T51)"
    ),
    flag!(
        "thenvoi-attempts-from-zero",
        Thenvoi,
        thenvoi.attempts_from_zero,
        "processing attempts are numbered from 0, not 1 (T42)"
    ),
    flag!(
        "thenvoi-processing-keeps-attempt",
        Thenvoi,
        thenvoi.processing_keeps_attempt,
        "/processing on a message still processing keeps its attempt instead of starting the next (T42)"
    ),
    flag!(
        "thenvoi-claim-any-message",
        Thenvoi,
        thenvoi.claim_any_message,
        "lifecycle calls on a room's message not addressed to the caller are accepted (T45)"
    ),
    flag!(
        "thenvoi-next-skips-processing",
        Thenvoi,
        thenvoi.next_skips_processing,
        "/messages/next leaves out messages still processing (T47)"
    ),
    flag!(
        "thenvoi-unknown-status-as-all",
        Thenvoi,
        thenvoi.unknown_status_as_all,
        "an unknown ?status= lists everything instead of 422 (T48)"
    ),
    flag!(
        "thenvoi-lenient-paging",
        Thenvoi,
        thenvoi.lenient_paging,
        "page or page_size below 1 or not an integer falls back to the default instead of 422 (T49)"
    ),
];
