//! Plugin registry and installs (management API):
//! `POST|GET /api/plugins`, `GET /api/plugins/:id`,
//! `POST|GET /api/agents/:id/event-handlers`, `DELETE …/event-handlers/:instanceId`,
//! `POST|GET /api/app-integrations/:id/apps`, `DELETE …/apps/:instanceId`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiResult, Auth, JsonBody, ok, path_id};
use crate::proteus::App;

use crate::model::{Participant, ParticipantType, Plugin};

const SCOPES: &[&str] = &[
    "AGENT_CHAT_WRITE",
    "AGENT_MESSAGE_WRITE",
    "APP_INTEGRATION_CHAT_WRITE",
    "APP_INTEGRATION_MESSAGE_WRITE",
    "REPOSITORY_FILES_READ",
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Register {
    name: String,
    #[serde(default)]
    description: Option<String>,
    events: Vec<String>,
    #[serde(default, deserialize_with = "super::not_null")]
    inputs_schema: Option<Value>,
    #[serde(default)]
    is_public: bool,
    #[serde(default, deserialize_with = "super::not_null")]
    org_id: Option<String>,
    scopes: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(rename = "type")]
    kind: String,
    webhook_url: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Install {
    #[serde(default, deserialize_with = "super::not_null")]
    name: Option<String>,
    plugin_id: String,
    events: Vec<String>,
    scopes: Vec<String>,
    event_dispatch_mode: String,
    #[serde(default)]
    inputs: Option<Value>,
}

fn check_scopes(scopes: &[String]) -> Result<(), ApiError> {
    match scopes.iter().find(|s| !SCOPES.contains(&s.as_str())) {
        Some(s) => Err(ApiError::bad_request(format!(
            "unknown scope {s:?} (known: {})",
            SCOPES.join(", ")
        ))),
        None => Ok(()),
    }
}

/// Registers a plugin after its webhook answers the challenge.
pub async fn register(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    body: JsonBody,
) -> ApiResult {
    let b: Register = body.parse()?;
    if b.name.trim().is_empty() {
        return Err(ApiError::bad_request("name must not be empty"));
    }
    if b.kind != "AGENT_EVENT_HANDLER" && b.kind != "APP" {
        return Err(ApiError::bad_request(format!(
            "type {:?} is not AGENT_EVENT_HANDLER or APP",
            b.kind
        )));
    }
    if !(b.webhook_url.starts_with("http://") || b.webhook_url.starts_with("https://")) {
        return Err(ApiError::bad_request(format!(
            "webhookUrl {:?} must be an absolute http(s) URL",
            b.webhook_url
        )));
    }
    check_scopes(&b.scopes)?;
    if let Some(schema) = &b.inputs_schema {
        jsonschema::validator_for(schema).map_err(|e| {
            ApiError::bad_request(format!("inputsSchema is not a valid JSON Schema: {e}"))
        })?;
    }
    // Who may register comes first: no request leaves the mock for a caller
    // who may not; then where it may go (PROTOCOL.md, outbound requests).
    app.store.plugin_org(&caller, b.org_id.as_deref())?;
    app.dispatcher
        .policy
        .check(&b.webhook_url)
        .await
        .map_err(|reason| ApiError::bad_request(format!("webhookUrl refused: {reason}")))?;
    let challenge = format!("challenge-{}", app.store.ids.next());
    if !app.faults.plugins(None).skip_webhook_challenge.fire() {
        app.dispatcher
            .challenge(&app.journal, &b.webhook_url, &challenge)
            .await
            .map_err(|reason| {
                ApiError::bad_request(format!(
                    "Webhook verification failed for {}: {reason}",
                    b.webhook_url
                ))
            })?;
    }
    let plugin = Plugin {
        id: String::new(),
        name: b.name,
        description: b.description,
        events: b.events,
        inputs_schema: b.inputs_schema,
        is_public: b.is_public,
        org_id: b.org_id,
        scopes: b.scopes,
        tags: b.tags,
        kind: b.kind,
        webhook_url: b.webhook_url,
        created_at: String::new(),
        updated_at: String::new(),
    };
    ok(StatusCode::CREATED, &app.store.add_plugin(&caller, plugin)?)
}

pub async fn get(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    path_id("Plugin", &id)?;
    ok(StatusCode::OK, &app.store.plugin(&caller, &id)?)
}

pub async fn list(State(app): State<Arc<App>>, Auth(caller): Auth) -> ApiResult {
    ok(StatusCode::OK, &app.store.plugins(&caller))
}

async fn install(
    app: Arc<App>,
    caller: crate::core::store::Caller,
    target: Participant,
    body: JsonBody,
) -> ApiResult {
    let b: Install = body.parse()?;
    if b.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(ApiError::bad_request(
            "name must not be empty (leave it out for the plugin's name)",
        ));
    }
    if b.event_dispatch_mode != "SYNC" && b.event_dispatch_mode != "ASYNC" {
        return Err(ApiError::bad_request(format!(
            "eventDispatchMode {:?} is not SYNC or ASYNC",
            b.event_dispatch_mode
        )));
    }
    check_scopes(&b.scopes)?;
    path_id("Plugin", &b.plugin_id)
        .map_err(|_| ApiError::bad_request(format!("pluginId {:?} is not an id", b.plugin_id)))?;
    let plugin = app.store.plugin(&caller, &b.plugin_id)?;
    if let Some(schema) = &plugin.inputs_schema {
        let inputs = b.inputs.clone().unwrap_or(Value::Null);
        let validator = jsonschema::validator_for(schema).map_err(|e| {
            ApiError::bad_request(format!("the plugin's inputsSchema is invalid: {e}"))
        })?;
        let errors: Vec<String> = validator
            .iter_errors(&inputs)
            .map(|e| format!("inputs{}: {e}", e.instance_path()))
            .collect();
        if !errors.is_empty() {
            return Err(ApiError::bad_request(format!(
                "inputs do not match the plugin's inputsSchema: {}",
                errors.join("; ")
            )));
        }
    }
    let (instance, token, plugin) = app.store.install(
        &caller,
        &target,
        &b.plugin_id,
        b.name,
        b.events,
        b.scopes,
        b.event_dispatch_mode,
        b.inputs,
    )?;
    let mut event = crate::core::plugins::installed_event(&app, &instance, &token);
    if app.faults.plugins(None).installed_without_token.fire()
        && let Some(o) = event.as_object_mut()
    {
        o.remove("token");
    }
    crate::core::plugins::deliver(&app, &instance, plugin.webhook_url, None, event);
    ok(StatusCode::CREATED, &instance)
}

async fn uninstall(
    app: Arc<App>,
    caller: crate::core::store::Caller,
    target: Participant,
    instance_id: String,
) -> ApiResult {
    path_id("Plugin instance", &instance_id)?;
    let (instance, plugin) = if app.faults.plugins(None).token_survives_uninstall.fire() {
        let instance = app
            .store
            .instances_of(&caller, &target)?
            .into_iter()
            .find(|i| i.id == instance_id)
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "No such plugin instance"))?;
        let plugin = app.store.plugin(&caller, &instance.plugin_id)?;
        (instance, plugin)
    } else {
        app.store.uninstall(&caller, &target, &instance_id)?
    };
    crate::core::plugins::deliver(
        &app,
        &instance,
        plugin.webhook_url,
        None,
        json!({ "name": "PLUGIN_UNINSTALLED", "pluginInstance": instance }),
    );
    ok(StatusCode::OK, &instance)
}

fn agent(id: String) -> Participant {
    Participant {
        id,
        kind: ParticipantType::Agent,
    }
}

fn app_integration(id: String) -> Participant {
    Participant {
        id,
        kind: ParticipantType::AppIntegration,
    }
}

pub async fn install_on_agent(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult {
    path_id("Agent", &id)?;
    install(app, caller, agent(id), body).await
}

pub async fn list_on_agent(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    path_id("Agent", &id)?;
    ok(
        StatusCode::OK,
        &app.store.instances_of(&caller, &agent(id))?,
    )
}

pub async fn uninstall_from_agent(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Path((id, instance)): Path<(String, String)>,
) -> ApiResult {
    path_id("Agent", &id)?;
    uninstall(app, caller, agent(id), instance).await
}

pub async fn install_on_app(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult {
    path_id("App integration", &id)?;
    install(app, caller, app_integration(id), body).await
}

pub async fn list_on_app(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    path_id("App integration", &id)?;
    ok(
        StatusCode::OK,
        &app.store.instances_of(&caller, &app_integration(id))?,
    )
}

pub async fn uninstall_from_app(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Path((id, instance)): Path<(String, String)>,
) -> ApiResult {
    path_id("App integration", &id)?;
    uninstall(app, caller, app_integration(id), instance).await
}
