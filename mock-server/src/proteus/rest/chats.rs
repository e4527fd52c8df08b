//! `/api/chats`: create (find-or-create by key), read, history pages, and the
//! mutations that raise relayed lifecycle events.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{ApiError, ApiResult, Auth, JsonBody, ok, ok_with_meta, path_id};
use crate::core::events;
use crate::core::store::PageAt;
use crate::model::{Participant, is_object_id};
use crate::proteus::App;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateChat {
    #[serde(default)]
    participants: Vec<Participant>,
    #[serde(default, deserialize_with = "super::not_null")]
    key: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    state: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateChat {
    #[serde(default, deserialize_with = "super::present")]
    title: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::present")]
    state: Option<Option<Map<String, Value>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttachRepository {
    repository_id: String,
}

pub async fn list(State(app): State<Arc<App>>, Auth(caller): Auth) -> ApiResult {
    ok(StatusCode::OK, &app.store.chats(&caller))
}

pub async fn create(State(app): State<Arc<App>>, Auth(caller): Auth, body: JsonBody) -> ApiResult {
    let b: CreateChat = body.parse()?;
    if let Some(p) = b.participants.iter().find(|p| !is_object_id(&p.id)) {
        return Err(ApiError::bad_request(format!(
            "participant id {:?} is not an id (24 lowercase hex characters)",
            p.id
        )));
    }
    if b.key.as_deref() == Some("") {
        return Err(ApiError::bad_request("key must not be empty"));
    }
    let faults = app.faults.chat(None);
    let key = if faults.key_not_reused.fire() {
        None
    } else {
        b.key
    };
    let (chat, created, joined) =
        app.store
            .create_chat(&caller, b.participants, key, b.title, b.state)?;
    events::joined_new_chat(&app.core, &chat, &joined);
    if created
        && faults.caller_not_added.fire()
        && let Some(me) = caller.as_participant()
    {
        app.store.remove_participant(&chat.id, &me);
    }
    ok(
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        &chat,
    )
}

pub async fn get(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    path_id("Chat", &id)?;
    let caller = reader(&app, caller, &id);
    ok(StatusCode::OK, &app.store.chat(&caller, &id)?)
}

/// The caller, or under the `non-participant-read` fault the chat's first
/// participant (so anyone can read).
fn reader(
    app: &App,
    caller: crate::core::store::Caller,
    chat_id: &str,
) -> crate::core::store::Caller {
    if app.faults.chat(Some(chat_id)).non_participant_read.fire() {
        app.store.as_first_participant(chat_id).unwrap_or(caller)
    } else {
        caller
    }
}

pub async fn update(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult {
    path_id("Chat", &id)?;
    let b: UpdateChat = body.parse()?;
    if b.title.is_none() && b.state.is_none() {
        return Err(ApiError::bad_request(
            "Nothing to update: send title and/or state",
        ));
    }
    let chat = app.store.update_chat(&caller, &id, b.title, b.state)?;
    events::state_updated(&app.core, &chat).await;
    ok(StatusCode::OK, &chat)
}

pub async fn participants(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    path_id("Chat", &id)?;
    ok(StatusCode::OK, &app.store.participants(&caller, &id)?)
}

pub async fn add_participant(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult {
    path_id("Chat", &id)?;
    let p: Participant = body.parse()?;
    if !is_object_id(&p.id) {
        return Err(ApiError::bad_request(format!("id {:?} is not an id", p.id)));
    }
    let (chat, added) = app.store.add_participant(&caller, &id, p.clone())?;
    if added {
        events::participant_added(&app.core, &chat, &p).await;
    }
    ok(
        if added {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        &app.store.participants(&caller, &id)?,
    )
}

pub async fn attach_repository(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult {
    path_id("Chat", &id)?;
    let b: AttachRepository = body.parse()?;
    if !is_object_id(&b.repository_id) {
        return Err(ApiError::bad_request(format!(
            "repositoryId {:?} is not an id",
            b.repository_id
        )));
    }
    let (chat, repository) = app
        .store
        .attach_repository(&caller, &id, &b.repository_id)?;
    events::repository_attached(&app.core, &chat, &repository).await;
    ok(StatusCode::OK, &chat)
}

/// `GET /api/chats/:id/messages?@page=&@limit=&@cursor=` (PROTOCOL.md R8–R13).
pub async fn messages(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    path_id("Chat", &id)?;
    let faults = app.faults.page(&id);
    let caller = reader(&app, caller, &id);
    let raw = query.as_deref().unwrap_or("");
    let query = if faults.ignore_encoded_params.fire() {
        raw.split('&')
            .filter(|p| !p.starts_with("%40"))
            .collect::<Vec<_>>()
            .join("&")
    } else {
        raw.to_string()
    };
    let (at, mut limit) = page_params(&query, faults.no_limit_cap.fire())?;
    if !query.contains("limit") && faults.default_limit_50.fire() {
        limit = 50;
    }
    let at = match at {
        PageAt::After(_) if faults.ignore_cursor.fire() => {
            page_params(&strip_cursor(&query), false)?.0
        }
        other => other,
    };
    let past_end_404 = matches!(at, PageAt::Index(p) if p > 1) && faults.past_end_404.is_on();
    let page = app.store.page(&caller, &id, at, limit, &faults)?;
    if past_end_404 && page.items.is_empty() && faults.past_end_404.fire() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "Injected fault: past-end-404",
        ));
    }
    ok_with_meta(&page.items, page.meta)
}

fn strip_cursor(query: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k != "@cursor"))
        .finish()
}

/// Reads `@page`, `@limit`, `@cursor` (also percent-encoded as `%40…`).
/// `uncapped` is the `no-limit-cap` fault.
pub fn page_params(query: &str, uncapped: bool) -> Result<(PageAt, usize), ApiError> {
    let (mut page, mut limit, mut cursor) = (None, None, None);
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "@page" => page = Some(v.into_owned()),
            "@limit" => limit = Some(v.into_owned()),
            "@cursor" => cursor = Some(v.into_owned()),
            _ => {}
        }
    }
    let positive = |name: &str, v: &str| -> Result<usize, ApiError> {
        match v.trim().parse::<i64>() {
            Ok(n) if n >= 1 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
            _ => Err(ApiError::bad_request(format!(
                "{name} must be an integer of at least 1, got {v:?}"
            ))),
        }
    };
    let limit = match limit {
        None => 20,
        Some(v) if uncapped => positive("@limit", &v)?,
        Some(v) => positive("@limit", &v)?.min(100),
    };
    let at = match cursor {
        Some(c) if is_object_id(&c) => PageAt::After(c),
        Some(c) => {
            return Err(ApiError::bad_request(format!(
                "@cursor {c:?} is not a message id"
            )));
        }
        None => PageAt::Index(match page {
            None => 1,
            Some(v) => positive("@page", &v)?,
        }),
    };
    Ok((at, limit))
}
