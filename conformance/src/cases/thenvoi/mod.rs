//! `thenvoi.*`: the Thenvoi (Band) profile, docs/THENVOI.md T1–T52, checked
//! on any target whose profile has a `thenvoi` object (the others see every
//! case unsupported). Each case sets up its own room through the Human API,
//! so cases do not depend on one another or on the target's seed data, and
//! every frame and body they see is validated against `schemas/thenvoi`.
//!
//! One file per area: [`ws`] the socket and its authentication, [`chan`]
//! topics, membership events and delivery, [`rest`] the REST surface, [`rooms`] rooms,
//! participants and the Human API,
//! [`life`] the message lifecycle and pagination; [`kit`] their REST helpers and
//! [`phx`] their socket.

mod chan;
pub mod kit;
mod life;
pub mod phx;
mod rest;
mod rooms;
mod ws;

use crate::case::Case;

/// Every `thenvoi.*` case, in run order.
pub fn cases() -> Vec<Case> {
    let mut v = ws::cases();
    v.extend(chan::cases());
    v.extend(rest::cases());
    v.extend(rooms::cases());
    v.extend(life::cases());
    v
}
