//! Why the core refused something, in transport-neutral terms.
//!
//! Each transport maps a [`Refusal`] to its own wire form: REST to a status
//! code and the error envelope, socket.io to an error ack, Phoenix to a
//! `phx_reply` error. The core never names an HTTP status.

/// A refusal and a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The request is malformed or invalid (REST 400).
    Invalid(String),
    /// Authenticated, but not allowed (REST 403).
    Forbidden(String),
    /// No such resource (REST 404).
    NotFound(String),
    /// The request clashes with the current state, e.g. a chunk after its
    /// stream closed (REST 409).
    Conflict(String),
    /// A bound was reached, e.g. too many open streams (REST 429).
    TooMany(String),
}

impl Refusal {
    /// Refuses one more of `what` when `held` already reach `max`
    /// (`--max-objects`; 0: no bound).
    pub fn unless_room_for(what: &str, held: usize, max: usize) -> Result<(), Refusal> {
        if max > 0 && held >= max {
            return Err(Refusal::TooMany(format!(
                "the mock holds at most {max} {what} (--max-objects): reset the world \
                 (POST /__admin/reset) or start the mock with a higher --max-objects"
            )));
        }
        Ok(())
    }

    pub fn message(&self) -> &str {
        match self {
            Refusal::Invalid(m)
            | Refusal::Forbidden(m)
            | Refusal::NotFound(m)
            | Refusal::Conflict(m)
            | Refusal::TooMany(m) => m,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}
