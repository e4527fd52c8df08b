//! Starting a session the way the protocol asks, and acked requests.
//!
//! CONNECT carries `auth: {token}`; the server answers `success {entity}`,
//! or refuses with `error {message}` or a CONNECT_ERROR. Every client event
//! takes an ack, `{data}` or `{error: {message}}` (docs/PROTOCOL.md, R14).
//! The conformance cases and the load generator both start sockets and join
//! chats through here, so a refusal, a stall and a closed connection are
//! told apart the same way in both; each maps [`SessionError`] to its own
//! verdict (a failed case, exit 3).
//!
//! Frames that arrive while a step waits are handed to the caller (an
//! `observe` or `other` closure), never dropped silently: the conformance
//! cases log them as the reproducer and keep them for later reads.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::{Client, ClientError, Frame, READ_BUFFER, event};

/// The CONNECT payload the protocol asks for: `{token}`.
pub fn auth(token: &str) -> Value {
    json!({ "token": token })
}

/// Why a session step did not get its answer.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No websocket: a refused connection, a name that does not resolve,
    /// TLS, or no Engine.IO handshake.
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// Nothing arrived in time.
    #[error("nothing within {within:?} while waiting for {awaited} (the server stalls)")]
    Stalled { within: Duration, awaited: String },
    /// `error` or CONNECT_ERROR instead of `success`.
    #[error("the target refused the token: {0}")]
    Refused(String),
    /// An acked request answered `{error}` (or neither `data` nor `error`).
    #[error("{event} was refused: {reply}")]
    Declined { event: String, reply: String },
    /// The connection ended or broke while waiting.
    #[error("the connection ended while waiting for {awaited}: {source}")]
    Ended {
        awaited: String,
        #[source]
        source: ClientError,
    },
}

/// What one frame says about a CONNECT in progress.
#[derive(Debug, Clone, PartialEq)]
pub enum Welcome {
    /// `success`, with its payload (`{entity}`).
    Accepted(Value),
    /// `error`, CONNECT_ERROR or DISCONNECT before `success`: what the
    /// server said.
    Refused(String),
    /// Not an answer (the CONNECT ack, another event): read on.
    Pending,
}

impl Welcome {
    pub fn of(frame: &Frame) -> Welcome {
        match frame {
            Frame::Event { name, payload } if name == event::SUCCESS => {
                Welcome::Accepted(payload.clone())
            }
            Frame::Event { name, payload } if name == event::ERROR => {
                Welcome::Refused(payload.to_string())
            }
            Frame::ConnectError(payload) => Welcome::Refused(payload.to_string()),
            Frame::Disconnected => Welcome::Refused("DISCONNECT before success".into()),
            _ => Welcome::Pending,
        }
    }
}

/// `data` of an ack's payload, or what the server said instead: the
/// `error.message` of `{error}`, else the whole payload.
pub fn ack_data(payload: &Value) -> Result<&Value, String> {
    match (payload.get("data"), payload.get("error")) {
        (Some(data), None) => Ok(data),
        (_, Some(error)) => Err(error
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| error.to_string(), str::to_string)),
        (None, None) => Err(format!("neither data nor error: {payload}")),
    }
}

/// Connect-and-authenticate: a socket with `auth: {token}` that has
/// received `success`. Ten seconds for the whole of it unless told
/// otherwise: a server that accepts and then says nothing must not hang
/// the caller.
#[derive(Debug, Clone)]
pub struct Login<'a> {
    base_url: &'a str,
    token: &'a str,
    read_buffer: usize,
    within: Duration,
}

impl<'a> Login<'a> {
    pub fn new(base_url: &'a str, token: &'a str) -> Self {
        Login {
            base_url,
            token,
            read_buffer: READ_BUFFER,
            within: Duration::from_secs(10),
        }
    }

    /// The websocket read buffer (see [`READ_BUFFER`]).
    pub fn read_buffer(mut self, bytes: usize) -> Self {
        self.read_buffer = bytes;
        self
    }

    /// How long the handshake and the wait for `success` may take together.
    pub fn within(mut self, limit: Duration) -> Self {
        self.within = limit;
        self
    }

    pub async fn open(self) -> Result<Client, SessionError> {
        self.open_observed(|_| {}).await
    }

    /// [`open`](Self::open), showing `observe` every frame read on the way.
    pub async fn open_observed(
        self,
        mut observe: impl FnMut(&Frame),
    ) -> Result<Client, SessionError> {
        let deadline = Instant::now() + self.within;
        let auth = auth(self.token);
        let connecting = Client::connect_with_read_buffer(self.base_url, &auth, self.read_buffer);
        let mut client = match tokio::time::timeout_at(deadline, connecting).await {
            Err(_) => {
                return Err(SessionError::Stalled {
                    within: self.within,
                    awaited: "the websocket handshake".into(),
                });
            }
            Ok(Err(ClientError::Connect { url, source })) => {
                return Err(SessionError::Unreachable {
                    url,
                    reason: source.to_string(),
                });
            }
            Ok(Err(other)) => {
                return Err(SessionError::Unreachable {
                    url: self.base_url.to_string(),
                    reason: other.to_string(),
                });
            }
            Ok(Ok(c)) => c,
        };
        loop {
            let frame = client
                .frame_before(deadline, self.within, event::SUCCESS)
                .await?;
            observe(&frame);
            match Welcome::of(&frame) {
                Welcome::Accepted(_) => return Ok(client),
                Welcome::Refused(said) => return Err(SessionError::Refused(said)),
                Welcome::Pending => {}
            }
        }
    }
}

impl Client {
    /// The next frame before `deadline` (`within` and `awaited` name the
    /// wait in the error).
    async fn frame_before(
        &mut self,
        deadline: Instant,
        within: Duration,
        awaited: &str,
    ) -> Result<Frame, SessionError> {
        match tokio::time::timeout_at(deadline, self.next_frame()).await {
            Ok(Ok(frame)) => Ok(frame),
            Ok(Err(source)) => Err(SessionError::Ended {
                awaited: awaited.to_string(),
                source,
            }),
            Err(_) => Err(SessionError::Stalled {
                within,
                awaited: awaited.to_string(),
            }),
        }
    }

    /// Reads until the ack of emit `id` (of `event`) and returns its
    /// payload; every other frame goes to `other`, in arrival order.
    pub async fn await_ack(
        &mut self,
        id: u64,
        event: &str,
        within: Duration,
        mut other: impl FnMut(Frame),
    ) -> Result<Value, SessionError> {
        let deadline = Instant::now() + within;
        let awaited = format!("the ack of {event}");
        loop {
            match self.frame_before(deadline, within, &awaited).await? {
                Frame::Ack { id: got, payload } if got == id => return Ok(payload),
                frame => other(frame),
            }
        }
    }

    /// Emits `event` asking for an ack and waits for it (see
    /// [`await_ack`](Self::await_ack)).
    pub async fn request(
        &mut self,
        event: &str,
        payload: &Value,
        within: Duration,
        other: impl FnMut(Frame),
    ) -> Result<Value, SessionError> {
        let id =
            self.emit_with_ack(event, payload)
                .await
                .map_err(|source| SessionError::Ended {
                    awaited: format!("{event} to be sent"),
                    source,
                })?;
        self.await_ack(id, event, within, other).await
    }

    /// Joins chat `chat_id` (`chat:join`) and returns the ack's `data`; an
    /// error ack is [`SessionError::Declined`].
    pub async fn join(
        &mut self,
        chat_id: &str,
        within: Duration,
        other: impl FnMut(Frame),
    ) -> Result<Value, SessionError> {
        let reply = self
            .request(
                event::CHAT_JOIN,
                &json!({ "chatId": chat_id }),
                within,
                other,
            )
            .await?;
        match ack_data(&reply) {
            Ok(data) => Ok(data.clone()),
            Err(said) => Err(SessionError::Declined {
                event: event::CHAT_JOIN.into(),
                reply: said,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_accepts_and_error_connect_error_or_disconnect_refuse() {
        let ev = |name: &str, payload: Value| Frame::Event {
            name: name.into(),
            payload,
        };
        assert_eq!(
            Welcome::of(&ev(event::SUCCESS, json!({"entity": {}}))),
            Welcome::Accepted(json!({"entity": {}}))
        );
        assert_eq!(
            Welcome::of(&ev(event::ERROR, json!({"message": "bad token"}))),
            Welcome::Refused(r#"{"message":"bad token"}"#.into())
        );
        assert!(matches!(
            Welcome::of(&Frame::ConnectError(json!({"message": "no"}))),
            Welcome::Refused(_)
        ));
        assert!(matches!(
            Welcome::of(&Frame::Disconnected),
            Welcome::Refused(_)
        ));
        assert_eq!(
            Welcome::of(&Frame::Connected(json!({"sid": "x"}))),
            Welcome::Pending
        );
        assert_eq!(
            Welcome::of(&ev("CHAT_MESSAGE_ADDED", json!({}))),
            Welcome::Pending,
            "another event before success is read past"
        );
    }

    #[test]
    fn an_ack_is_data_or_the_servers_words() {
        let ok = json!({"data": {"chatId": "c"}});
        assert_eq!(ack_data(&ok), Ok(&json!({"chatId": "c"})));
        assert_eq!(
            ack_data(&json!({"error": {"message": "not a participant"}})),
            Err("not a participant".into())
        );
        assert_eq!(
            ack_data(&json!({"data": {}, "error": "x"})),
            Err(r#""x""#.into()),
            "an error wins over data"
        );
        assert!(ack_data(&json!({})).is_err_and(|e| e.contains("neither")));
    }

    #[tokio::test]
    async fn a_login_to_a_closed_port_is_unreachable_not_a_hang() {
        let err = Login::new("http://127.0.0.1:9", "user-x")
            .within(Duration::from_secs(5))
            .open()
            .await
            .err();
        assert!(
            matches!(err, Some(SessionError::Unreachable { .. })),
            "{err:?}"
        );
    }
}
