//! The Agent API: `/api/v1/agent/...` with an agent's key (docs/THENVOI.md
//! T33-T48).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::body::{Body, optional_text_not_null, optional_uuid, text};
use super::{AgentKey, Answer, Failure, data, page, paging, query_pairs, uuid};
use crate::core::thenvoi::messages::{Claim, Filter, Next};
use crate::core::thenvoi::{Principal, flow, room_object};
use crate::model::thenvoi::{Recipient, Room};
use crate::thenvoi::Band;

/// A room the caller takes part in (404 otherwise, T31).
pub fn member_room(band: &Band, who: &Principal, id: &str) -> Result<Room, Failure> {
    uuid("chat", id)?;
    let rooms = &band.core.thenvoi;
    match rooms.room(who, id, false) {
        Err(crate::core::Refusal::NotFound(message)) => {
            let faults = band.core.faults.thenvoi(Some(id));
            match rooms.room(who, id, true) {
                Ok(room) if faults.foreign_room_visible.fire() => Ok(room),
                Err(_) if faults.unknown_room_403.fire() => {
                    Err(Failure(StatusCode::FORBIDDEN, message))
                }
                _ => Err(Failure(StatusCode::NOT_FOUND, message)),
            }
        }
        other => Ok(other?),
    }
}

/// A request body (T31, T32), read with the faults of `room`'s view.
pub fn read_body(band: &Band, room: Option<&str>, bytes: &[u8]) -> Result<Body, Failure> {
    let faults = band.core.faults.thenvoi(room);
    match Body::parse(bytes, faults.lenient_bodies.fire()) {
        Err(Failure(StatusCode::BAD_REQUEST, message)) if faults.non_object_body_422.fire() => {
            Err(Failure::invalid(message))
        }
        other => other,
    }
}

/// The status of a creation (T31): 201, or 200 under `thenvoi-created-as-200`.
pub fn created(band: &Band, room: Option<&str>) -> StatusCode {
    if band.core.faults.thenvoi(room).created_as_200.fire() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    }
}

pub async fn me(State(band): State<Arc<Band>>, AgentKey(who): AgentKey) -> Answer {
    let me = band
        .core
        .thenvoi
        .agent_me(&who.id)
        .ok_or_else(|| Failure(StatusCode::NOT_FOUND, "agent not found".into()))?;
    let mut me = me;
    if let Some(o) = me.as_object_mut()
        && o.contains_key("owner_uuid")
        && band.core.faults.thenvoi(None).me_without_owner.fire()
    {
        o.remove("owner_uuid");
    }
    data(StatusCode::OK, me)
}

pub async fn peers(
    State(band): State<Arc<Band>>,
    AgentKey(who): AgentKey,
    RawQuery(q): RawQuery,
) -> Answer {
    let q = query_pairs(q.as_deref());
    let at = paging(&band, None, &q, 20)?;
    let not_in = q
        .iter()
        .find(|(k, _)| k == "not_in_chat")
        .map(|(_, v)| v.as_str());
    page(&band, band.core.thenvoi.peers(&who, not_in), at, &[])
}

pub async fn create_chat(
    State(band): State<Arc<Band>>,
    AgentKey(who): AgentKey,
    body: Bytes,
) -> Answer {
    let body = read_body(&band, None, &body)?;
    let chat = body.maybe_wrapped("chat", &["task_id"])?;
    let task_id = optional_uuid(chat, "task_id", "chat.")?;
    let room = flow::create_room(&band.core, &who, task_id)?;
    data(created(&band, None), room_object(&room))
}

pub async fn chat(
    State(band): State<Arc<Band>>,
    AgentKey(who): AgentKey,
    Path(id): Path<String>,
) -> Answer {
    let room = member_room(&band, &who, &id)?;
    if band.core.thenvoi.role_of(&id, &who.id).as_deref() != Some("owner")
        && band
            .core
            .faults
            .thenvoi(Some(&id))
            .added_rooms_hidden
            .fire()
    {
        return Err(Failure(
            StatusCode::NOT_FOUND,
            format!("chat {id} not found"),
        ));
    }
    data(StatusCode::OK, room_object(&room))
}

pub async fn participants(
    State(band): State<Arc<Band>>,
    AgentKey(who): AgentKey,
    Path(id): Path<String>,
) -> Answer {
    member_room(&band, &who, &id)?;
    let mut list = band.core.thenvoi.participants(&id);
    if list.iter().any(|p| p["type"] == "User")
        && band
            .core
            .faults
            .thenvoi(Some(&id))
            .participants_agents_only
            .fire()
    {
        list.retain(|p| p["type"] != "User");
    }
    data(StatusCode::OK, list)
}

/// `{"participant": {"participant_id", "role"?}}` (T36).
pub fn participant_body(
    band: &Band,
    room: &str,
    bytes: &[u8],
) -> Result<(String, String), Failure> {
    let body = read_body(band, Some(room), bytes)?;
    let p = body.wrapped("participant", &["participant_id", "role"])?;
    let id = text(p, "participant_id", "participant.")?;
    if !crate::model::thenvoi::is_uuid(&id) {
        return Err(Failure::invalid("participant.participant_id is not a uuid"));
    }
    let role =
        optional_text_not_null(p, "role", "participant.")?.unwrap_or_else(|| "member".into());
    if !["owner", "admin", "member"].contains(&role.as_str()) {
        return Err(Failure::invalid(
            "participant.role must be owner, admin or member",
        ));
    }
    Ok((id, role))
}

pub async fn add_participant(
    State(band): State<Arc<Band>>,
    AgentKey(who): AgentKey,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    member_room(&band, &who, &id)?;
    let (pid, role) = participant_body(&band, &id, &body)?;
    let object = flow::add_participant(&band.core, &who, &id, &pid, &role)?;
    data(created(&band, Some(&id)), object)
}

pub async fn context(
    State(band): State<Arc<Band>>,
    AgentKey(who): AgentKey,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Answer {
    member_room(&band, &who, &id)?;
    let at = paging(&band, Some(&id), &query_pairs(q.as_deref()), 50)?;
    let items = band.core.thenvoi.context(&who.id, &id);
    let mut answer = page(&band, items, at, &[])?;
    // T39: older clients read the same object as `meta`.
    let bytes = axum::body::to_bytes(std::mem::take(answer.body_mut()), usize::MAX)
        .await
        .unwrap_or_default();
    let mut v: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if let Some(meta) = v.get("metadata").cloned() {
        v["meta"] = meta;
    }
    Ok(axum::Json(v).into_response())
}

pub async fn messages(
    State(band): State<Arc<Band>>,
    AgentKey(who): AgentKey,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Answer {
    member_room(&band, &who, &id)?;
    let q = query_pairs(q.as_deref());
    let at = paging(&band, Some(&id), &q, 20)?;
    let status = q
        .iter()
        .find(|(k, _)| k == "status")
        .map(|(_, v)| v.as_str());
    let filter = match Filter::parse(status) {
        Some(f) => f,
        None if band
            .core
            .faults
            .thenvoi(Some(&id))
            .unknown_status_as_all
            .fire() =>
        {
            Filter::All
        }
        None => {
            return Err(Failure::invalid(
                "status must be one of pending, processing, processed, failed, all",
            ));
        }
    };
    let filter = if filter != Filter::All
        && band
            .core
            .faults
            .thenvoi(Some(&id))
            .ignore_status_filter
            .fire()
    {
        Filter::All
    } else {
        filter
    };
    let items = band.core.thenvoi.agent_messages(&who.id, &id, filter);
    page(&band, items, at, &[("status_filter", filter.name().into())])
}

pub async fn next(
    State(band): State<Arc<Band>>,
    AgentKey(who): AgentKey,
    Path(id): Path<String>,
) -> Answer {
    member_room(&band, &who, &id)?;
    let faults = band.core.faults.thenvoi(Some(&id));
    let rooms = &band.core.thenvoi;
    let strict = Next::default();
    let skip = usize::from(
        rooms
            .next(&who.id, &id, Next { skip: 1, ..strict })
            .is_some()
            && faults.next_skips_oldest.fire(),
    );
    let processed_too = faults.next_includes_processed.is_on()
        && rooms.next(
            &who.id,
            &id,
            Next {
                processed_too: true,
                ..strict
            },
        ) != rooms.next(&who.id, &id, strict)
        && faults.next_includes_processed.fire();
    let skip_processing = faults.next_skips_processing.is_on()
        && rooms.next(
            &who.id,
            &id,
            Next {
                skip_processing: true,
                ..strict
            },
        ) != rooms.next(&who.id, &id, strict)
        && faults.next_skips_processing.fire();
    let how = Next {
        skip,
        processed_too,
        skip_processing,
    };
    match rooms.next(&who.id, &id, how) {
        Some(message) => data(StatusCode::OK, message),
        None if faults.next_empty_200.fire() => data(StatusCode::OK, Value::Null),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

pub async fn send(
    State(band): State<Arc<Band>>,
    AgentKey(who): AgentKey,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    member_room(&band, &who, &id)?;
    send_message(&band, &who, &id, &body)
}

/// `{"message": {"content", "mentions"}}` (T34), for agents and users.
pub fn send_message(band: &Band, who: &Principal, room: &str, bytes: &[u8]) -> Answer {
    let body = read_body(band, Some(room), bytes)?;
    let message = body.wrapped("message", &["content", "mentions"])?;
    let content = text(message, "content", "message.")?;
    let mentions = body.mentions(message)?;
    let (sent, mut recipients) = flow::send(&band.core, who, room, &content, mentions)?;
    let faults = band.core.faults.thenvoi(Some(room));
    if !recipients.is_empty() && faults.no_recipients.fire() {
        recipients.clear();
    }
    // Only the Agent API's creations answer 200 under the fault: the Human
    // API is every case's set-up.
    let status = match who.kind {
        crate::model::thenvoi::Kind::Agent => created(band, Some(room)),
        crate::model::thenvoi::Kind::User => StatusCode::CREATED,
    };
    #[derive(serde::Serialize)]
    struct Sent<'a> {
        id: &'a str,
        success: bool,
        recipients: Vec<Recipient>,
    }
    data(
        status,
        Sent {
            id: &sent.id,
            success: true,
            recipients,
        },
    )
}

pub async fn event(
    State(band): State<Arc<Band>>,
    AgentKey(who): AgentKey,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    member_room(&band, &who, &id)?;
    let body = read_body(&band, Some(&id), &body)?;
    let event = body.wrapped("event", &["content", "message_type", "metadata"])?;
    let content = text(event, "content", "event.")?;
    if content.is_empty() {
        return Err(Failure::invalid("event.content must not be empty"));
    }
    let kind = text(event, "message_type", "event.")?;
    let metadata = match event.get("metadata") {
        None => serde_json::Map::new(),
        Some(Value::Object(o)) => o.clone(),
        Some(_) => return Err(Failure::invalid("event.metadata must be an object")),
    };
    let stored = flow::record_event(&band.core, &who, &id, &content, &kind, metadata)?;
    data(
        created(&band, Some(&id)),
        json!({ "id": stored.id, "message_type": stored.message_type, "success": true }),
    )
}

/// `POST /agent/chats/{id}/activity {"working": bool}`: the Band SDK says
/// when its agent is busy (SDK); the mock records it in the journal only.
pub async fn activity(
    State(band): State<Arc<Band>>,
    AgentKey(who): AgentKey,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    member_room(&band, &who, &id)?;
    let body = read_body(&band, Some(&id), &body)?;
    let working = match body.flat(&["working"])?.get("working") {
        Some(Value::Bool(b)) => *b,
        _ => return Err(Failure::invalid("working must be true or false")),
    };
    data(StatusCode::OK, json!({ "working": working }))
}

/// `POST …/messages/{mid}/processing|processed|failed` (T41-T45).
pub async fn lifecycle(
    State(band): State<Arc<Band>>,
    AgentKey(who): AgentKey,
    Path((id, mid, action)): Path<(String, String, String)>,
    body: Bytes,
) -> Answer {
    member_room(&band, &who, &id)?;
    uuid("message", &mid)?;
    let body = read_body(&band, Some(&id), &body)?;
    let claim = match action.as_str() {
        "processing" => {
            body.none()?;
            Claim::Processing
        }
        "processed" => {
            body.none()?;
            Claim::Processed
        }
        "failed" => {
            let o = body.flat(&["error"])?;
            let error = match o.get("error") {
                Some(Value::String(e)) if !e.is_empty() => e.clone(),
                _ if band
                    .core
                    .faults
                    .thenvoi(Some(&id))
                    .failed_without_error
                    .fire() =>
                {
                    "(no error given)".into()
                }
                Some(Value::String(_)) => return Err(Failure::invalid("error must not be empty")),
                Some(_) => return Err(Failure::invalid("error must be a string")),
                None => {
                    return Err(Failure::invalid(
                        "error is required: {\"error\": \"why it failed\"}",
                    ));
                }
            };
            Claim::Failed(error)
        }
        other => {
            return Err(Failure(
                StatusCode::NOT_FOUND,
                format!(
                    "No route for POST …/messages/{mid}/{other}: use processing, processed or failed"
                ),
            ));
        }
    };
    let (status, attempt) = match flow::claim(&band.core, &who, &id, &mid, claim) {
        Err(crate::core::Refusal::Invalid(message)) => {
            // The Band SDK tells "no active attempt" by this code and detail (SDK).
            let body = json!({ "error": {
                "code": "validation_error", "message": message,
                "details": { "/processing_attempt": ["no active attempt"] },
                "request_id": super::next_request_id(),
            }});
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response());
        }
        other => other?,
    };
    data(
        StatusCode::OK,
        json!({ "id": mid, "status": status.as_str(), "attempt_number": attempt, "success": true }),
    )
}
