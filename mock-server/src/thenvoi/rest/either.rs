//! Routes the Agent and Human APIs answer the same way, whichever key
//! calls them: one handler, generic over the key ([`super::Key`]).

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;

use super::agent::member_room;
use super::{Answer, Key, data, page, paging, query_pairs, uuid};
use crate::core::thenvoi::{flow, room_object};
use crate::thenvoi::Band;

/// `GET /agent/chats`, `GET /me/chats`: the caller's rooms (T37, T51).
pub async fn chats<K: Key>(State(band): State<Arc<Band>>, key: K, RawQuery(q): RawQuery) -> Answer {
    let who = key.principal();
    let at = paging(&band, None, &query_pairs(q.as_deref()), 20)?;
    let rooms = band
        .core
        .thenvoi
        .rooms_of(&who.id)
        .iter()
        .map(room_object)
        .collect();
    page(&band, rooms, at, &[])
}

/// `DELETE …/chats/{id}/participants/{pid}` (T36, T51).
pub async fn remove_participant<K: Key>(
    State(band): State<Arc<Band>>,
    key: K,
    Path((id, pid)): Path<(String, String)>,
) -> Answer {
    let who = key.principal();
    member_room(&band, &who, &id)?;
    uuid("participant", &pid)?;
    data(
        StatusCode::OK,
        flow::remove_participant(&band.core, &who, &id, &pid)?,
    )
}
