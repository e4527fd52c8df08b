//! `/api/agents`: create, read, partial update, delete, MCP servers.
//! Public agents are visible to everyone; others only to their org's members.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::{ApiResult, Auth, JsonBody, ok, path_id};
use crate::model::Agent;
use crate::proteus::App;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateAgent {
    name: String,
    #[serde(default)]
    goal: Option<String>,
    #[serde(default, deserialize_with = "super::not_null")]
    org_id: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    is_public: bool,
    #[serde(default)]
    is_template: bool,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    can_send_welcome_message: bool,
    #[serde(default)]
    welcome_message: Option<String>,
}

/// A partial update: absent fields are kept; `null` clears a nullable one.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateAgent {
    #[serde(default, deserialize_with = "super::not_null")]
    name: Option<String>,
    #[serde(default, deserialize_with = "super::present")]
    goal: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::present")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::present")]
    image: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::not_null")]
    is_public: Option<bool>,
    #[serde(default, deserialize_with = "super::not_null")]
    is_template: Option<bool>,
    #[serde(default, deserialize_with = "super::not_null")]
    tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "super::not_null")]
    can_send_welcome_message: Option<bool>,
    #[serde(default, deserialize_with = "super::present")]
    welcome_message: Option<Option<String>>,
}

pub async fn list(State(app): State<Arc<App>>, Auth(caller): Auth) -> ApiResult {
    ok(StatusCode::OK, &app.store.agents(&caller))
}

pub async fn get(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    path_id("Agent", &id)?;
    ok(StatusCode::OK, &app.store.agent(&caller, &id)?)
}

pub async fn create(State(app): State<Arc<App>>, Auth(caller): Auth, body: JsonBody) -> ApiResult {
    let b: CreateAgent = body.parse()?;
    if b.name.trim().is_empty() {
        return Err(super::ApiError::bad_request("name must not be empty"));
    }
    if let Some(org) = &b.org_id
        && !crate::model::is_object_id(org)
    {
        return Err(super::ApiError::bad_request(format!(
            "orgId {org:?} is not an id"
        )));
    }
    let agent = Agent {
        id: String::new(),
        name: b.name,
        app_integration_ids: Vec::new(),
        can_send_welcome_message: b.can_send_welcome_message,
        created_at: String::new(),
        description: b.description,
        goal: b.goal,
        image: b.image,
        is_public: b.is_public,
        is_template: b.is_template,
        org_id: b.org_id.unwrap_or_default(),
        tags: b.tags,
        updated_at: String::new(),
        welcome_message: b.welcome_message,
        script: None,
    };
    ok(
        StatusCode::CREATED,
        &app.store.create_agent(&caller, agent)?,
    )
}

pub async fn update(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult {
    path_id("Agent", &id)?;
    if body.0.as_object().is_some_and(|o| o.is_empty()) {
        return Err(super::ApiError::bad_request(
            "Nothing to update: send at least one field, e.g. {\"description\": \"…\"}",
        ));
    }
    let b: UpdateAgent = body.parse()?;
    if b.name.as_ref().is_some_and(|n| n.trim().is_empty()) {
        return Err(super::ApiError::bad_request("name must not be empty"));
    }
    let agent = app.store.update_agent(&caller, &id, |a| {
        if let Some(v) = b.name {
            a.name = v;
        }
        if let Some(v) = b.goal {
            a.goal = v;
        }
        if let Some(v) = b.description {
            a.description = v;
        }
        if let Some(v) = b.image {
            a.image = v;
        }
        if let Some(v) = b.is_public {
            a.is_public = v;
        }
        if let Some(v) = b.is_template {
            a.is_template = v;
        }
        if let Some(v) = b.tags {
            a.tags = v;
        }
        if let Some(v) = b.can_send_welcome_message {
            a.can_send_welcome_message = v;
        }
        if let Some(v) = b.welcome_message {
            a.welcome_message = v;
        }
    })?;
    ok(StatusCode::OK, &agent)
}

pub async fn delete(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    path_id("Agent", &id)?;
    ok(StatusCode::OK, &app.store.delete_agent(&caller, &id)?)
}

/// The MCP servers exposed to the agent: none in the mock's worlds.
pub async fn mcps(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    path_id("Agent", &id)?;
    app.store.agent(&caller, &id)?;
    ok(StatusCode::OK, &Vec::<serde_json::Value>::new())
}
