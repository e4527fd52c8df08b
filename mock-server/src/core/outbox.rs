//! The events the core emits, and the trait a transport implements to
//! deliver them.
//!
//! The core says *what* happened in a chat (a message was stored, a delta of
//! a stream, a stream's end, a lifecycle event); each transport decides how
//! that looks on its wire and who receives it. socket.io emits them to the
//! chat's room under the ProteusAI event names; a Phoenix transport can map
//! a stored message to `message_created` and ignore deltas. The core's
//! payloads are the ProteusAI objects of [`crate::model`], the reference
//! model of this toolkit.
//!
//! A delta arrives already serialized ([`Payload::Raw`]): the hot path writes
//! its bytes once (see [`super::replies::delta`]) and every socket shares
//! them.

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;
use serde_json::value::RawValue;

use crate::model::Message;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A message was stored (socket.io `message`).
    Message,
    /// One delta of a streamed reply (socket.io `message:delta`).
    Delta,
    /// A streamed reply ended (socket.io `message:done`).
    Done,
    /// A chat lifecycle event (`CHAT_MESSAGE_ADDED`, …), relayed under its
    /// own name.
    Lifecycle(&'static str),
}

impl Kind {
    /// The lifecycle kind for an event name; unknown names are refused so
    /// that every relayed name is a `'static` constant.
    pub fn lifecycle(name: &str) -> Option<Kind> {
        const NAMES: [&str; 5] = [
            "CHAT_MESSAGE_ADDED",
            "CHAT_PARTICIPANT_JOINED",
            "CHAT_PARTICIPANT_LEFT",
            "CHAT_REPOSITORY_ATTACHED",
            "CHAT_STATE_UPDATED",
        ];
        NAMES
            .iter()
            .find(|n| **n == name)
            .map(|n| Kind::Lifecycle(n))
    }
}

/// The event's body.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    /// A message object.
    Message(&'a Message),
    /// Any other JSON value (lifecycle events).
    Value(&'a Value),
    /// JSON already serialized (deltas; fault paths replaying a payload).
    Raw(&'a RawValue),
}

/// One event for one chat's audience.
#[derive(Debug, Clone, Copy)]
pub struct Emission<'a> {
    pub chat_id: &'a str,
    pub kind: Kind,
    pub payload: Payload<'a>,
    /// A connection that does not get it (the `no-echo-to-sender` fault),
    /// by the id its transport gave it.
    pub except: Option<&'a str>,
    /// The stream and delta number it belongs to, for the journal.
    pub stream: Option<(&'a str, Option<usize>)>,
}

impl<'a> Emission<'a> {
    pub fn new(chat_id: &'a str, kind: Kind, payload: Payload<'a>) -> Self {
        Emission {
            chat_id,
            kind,
            payload,
            except: None,
            stream: None,
        }
    }

    pub fn except(mut self, connection: Option<&'a str>) -> Self {
        self.except = connection;
        self
    }

    pub fn stream(mut self, stream_id: &'a str, delta: Option<usize>) -> Self {
        self.stream = Some((stream_id, delta));
        self
    }
}

/// A boxed future, so that [`Outbox`] can be a trait object.
pub type Sending<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A transport's way out.
pub trait Outbox: Send + Sync + std::fmt::Debug {
    /// Delivers an event to the chat's audience on this transport; resolves
    /// when every receiver took it or was cut off as a slow consumer.
    fn emit<'a>(&'a self, emission: &'a Emission<'a>) -> Sending<'a>;

    /// Cuts every connection in a chat's room (a fault).
    fn disconnect_room(&self, chat_id: &str);

    /// Delivers a Thenvoi push (see [`Push`]); returns the agents it was
    /// written to. Transports of other profiles ignore it.
    fn push(&self, _push: &Push<'_>) -> Vec<String> {
        Vec::new()
    }

    /// A participant left a room: its subscriptions to the room's channels
    /// end without a word (THENVOI.md T21), or every subscription of the
    /// room when `entity` is `None` (the room was deleted, T20).
    fn forget_room(&self, _room_id: &str, _entity: Option<&str>) {}
}

/// Where a Thenvoi push goes: the channel families of THENVOI.md T15.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel<'a> {
    /// A room's messages (`chat_room:{id}`).
    Room(&'a str),
    /// A room's membership (`room_participants:{id}`).
    RoomMembers(&'a str),
    /// An agent's own rooms channel (`agent_rooms:{id}`).
    AgentRooms(&'a str),
    /// A user's own rooms channel (`user_rooms:{id}`).
    UserRooms(&'a str),
}

/// Who on a channel gets a push.
#[derive(Debug, Clone, Copy)]
pub enum Audience<'a> {
    /// Every subscriber.
    Everyone,
    /// Users, and of the agents only these (the mention rule, T17-T19).
    UsersAnd(&'a [String]),
}

/// One Thenvoi channel event: its wire name, payload and audience.
#[derive(Debug, Clone, Copy)]
pub struct Push<'a> {
    pub channel: Channel<'a>,
    /// The event name (`message_created`, `participant_added`, ...).
    pub event: &'static str,
    /// Serialized once by the caller; every transport copies these bytes.
    pub payload: &'a RawValue,
    pub audience: Audience<'a>,
}

/// A payload for [`Push`].
pub fn payload(value: &impl serde::Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).expect("our payloads serialize as JSON")
}
