//! The Human API routes a mock needs to drive the agents: `/api/v1/me/...`
//! with a user's key (docs/THENVOI.md T51).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use serde_json::json;

use super::agent::{created, member_room, participant_body, read_body, send_message};
use super::body::{optional_uuid, text};
use super::{Answer, Failure, UserKey, data, page, paging, query_pairs};
use crate::core::thenvoi::{flow, room_object};
use crate::thenvoi::Band;

pub async fn register_agent(
    State(band): State<Arc<Band>>,
    UserKey(who): UserKey,
    body: Bytes,
) -> Answer {
    let body = read_body(&band, None, &body)?;
    let agent = body.wrapped("agent", &["name", "description"])?;
    let name = text(agent, "name", "agent.")?;
    if name.trim().is_empty() {
        return Err(Failure::invalid("agent.name must not be empty"));
    }
    let description = Some(text(agent, "description", "agent.")?);
    let (agent, key) = band.core.thenvoi.register_agent(&who, &name, description)?;
    let faults = band.core.faults.thenvoi(None);
    let credentials = if faults.register_without_key.fire() {
        json!({})
    } else {
        json!({ "api_key": key })
    };
    data(
        created(&band, None),
        json!({
            "agent": { "id": agent.id, "name": agent.name, "description": agent.description,
                       "handle": agent.handle, "inserted_at": agent.inserted_at },
            "credentials": credentials,
        }),
    )
}

pub async fn create_chat(
    State(band): State<Arc<Band>>,
    UserKey(who): UserKey,
    body: Bytes,
) -> Answer {
    let body = read_body(&band, None, &body)?;
    let chat = body.maybe_wrapped("chat", &["task_id"])?;
    let task_id = optional_uuid(chat, "task_id", "chat.")?;
    let room = flow::create_room(&band.core, &who, task_id)?;
    data(StatusCode::CREATED, room_object(&room))
}

pub async fn chat(
    State(band): State<Arc<Band>>,
    UserKey(who): UserKey,
    Path(id): Path<String>,
) -> Answer {
    data(StatusCode::OK, room_object(&member_room(&band, &who, &id)?))
}

pub async fn messages(
    State(band): State<Arc<Band>>,
    UserKey(who): UserKey,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Answer {
    member_room(&band, &who, &id)?;
    let at = paging(&band, Some(&id), &query_pairs(q.as_deref()), 20)?;
    page(&band, band.core.thenvoi.user_messages(&id), at, &[])
}

pub async fn send(
    State(band): State<Arc<Band>>,
    UserKey(who): UserKey,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    member_room(&band, &who, &id)?;
    send_message(&band, &who, &id, &body)
}

pub async fn participants(
    State(band): State<Arc<Band>>,
    UserKey(who): UserKey,
    Path(id): Path<String>,
) -> Answer {
    member_room(&band, &who, &id)?;
    data(StatusCode::OK, band.core.thenvoi.participants(&id))
}

pub async fn add_participant(
    State(band): State<Arc<Band>>,
    UserKey(who): UserKey,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    member_room(&band, &who, &id)?;
    let (pid, role) = participant_body(&band, &id, &body)?;
    data(
        StatusCode::CREATED,
        flow::add_participant(&band.core, &who, &id, &pid, &role)?,
    )
}
