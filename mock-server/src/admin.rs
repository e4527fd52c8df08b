//! The control plane under `/__admin`, off the protocol's `/api` namespace.
//!
//! Open on loopback only, unless `--admin-token` is given (then it needs
//! `Authorization: Bearer <admin token>` from anywhere); `--no-admin` removes
//! it. docs/ADMIN.md documents every endpoint with a curl example.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::{Value, json};

use crate::App;
use crate::faults::{CATALOG, Scope};
use crate::rest::{ApiError, ApiResult, JsonBody, ok};

/// The `/__admin` routes.
pub fn router(app: Arc<App>) -> Router<Arc<App>> {
    Router::new()
        .route("/__admin/profile", get(profile))
        .route("/__admin/reset", post(reset))
        .route(
            "/__admin/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/__admin/faults/{id}", delete(remove_fault))
        .route("/__admin/stats", get(stats))
        .layer(axum::middleware::from_fn_with_state(app, guard))
}

/// Loopback only, or the admin token when one is set.
async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let allowed = match &app.admin_token {
        Some(token) => req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| t == token),
        None => peer.is_none_or(|p| p.ip().is_loopback()),
    };
    if !allowed {
        let message = if app.admin_token.is_some() {
            "The control plane needs 'Authorization: Bearer <admin token>' (the --admin-token value)"
        } else {
            "The control plane only answers on loopback; start the mock with --admin-token to open it"
        };
        return ApiError::new(StatusCode::FORBIDDEN, message).into_response();
    }
    next.run(req).await
}

/// The fixture contract a conformance run needs.
async fn profile(State(app): State<Arc<App>>, req: Request) -> ApiResult {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let world = app.store.world();
    let users: Vec<Value> = world
        .users
        .iter()
        .filter_map(|u| {
            let t = world
                .tokens
                .iter()
                .find(|t| t.entity_id == u.id && !t.revoked)?;
            Some(json!({ "id": u.id, "name": u.name, "token": t.token }))
        })
        .collect();
    let scripted = |pred: &dyn Fn(&crate::model::Agent) -> bool| {
        world
            .agents
            .iter()
            .find(|a| a.script.is_some() && pred(a))
            .map(|a| a.id.clone())
    };
    let streaming = scripted(&|a| a.is_public);
    let echo = scripted(&|a| a.script.as_ref().is_some_and(|s| s.text == "{{content}}"));
    let revoked = world
        .tokens
        .iter()
        .find(|t| t.revoked)
        .map(|t| t.token.clone());
    ok(
        StatusCode::OK,
        &json!({
            "server": "proteus-mock",
            "version": env!("CARGO_PKG_VERSION"),
            "baseUrl": format!("http://{host}"),
            "users": users,
            "revokedToken": revoked,
            "agents": { "streaming": streaming, "echo": echo },
            "capabilities": {
                "admin": true,
                "faults": true,
                "reset": true,
                "deterministicStreams": true,
                "streamOverride": "state.mock",
                "plugins": false
            },
            "faults": CATALOG.iter().map(|(name, doc)| json!({ "fault": name, "effect": doc })).collect::<Vec<_>>(),
        }),
    )
}

/// Back to the loaded world: sockets told and closed, streams stopped, faults
/// back to the ones given at start.
async fn reset(State(app): State<Arc<App>>) -> ApiResult {
    app.reset().await;
    ok(StatusCode::OK, &json!({ "reset": true }))
}

async fn list_faults(State(app): State<Arc<App>>) -> ApiResult {
    ok(StatusCode::OK, &app.faults.list())
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AddFault {
    fault: String,
    #[serde(default)]
    chat_id: Option<String>,
    #[serde(default)]
    agent_id: Option<String>,
}

async fn add_fault(State(app): State<Arc<App>>, body: JsonBody) -> ApiResult {
    let b: AddFault = body.parse()?;
    let fault = app
        .faults
        .add(
            &b.fault,
            Scope {
                chat_id: b.chat_id,
                agent_id: b.agent_id,
            },
        )
        .map_err(ApiError::bad_request)?;
    tracing::info!(fault = %fault.spec, id = fault.id, "fault on");
    ok(StatusCode::CREATED, &fault)
}

async fn clear_faults(State(app): State<Arc<App>>) -> ApiResult {
    app.faults.clear();
    ok(StatusCode::OK, &json!({ "cleared": true }))
}

async fn remove_fault(State(app): State<Arc<App>>, Path(id): Path<u64>) -> ApiResult {
    if app.faults.remove(id) {
        ok(StatusCode::OK, &json!({ "removed": id }))
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("No active fault with id {id}"),
        ))
    }
}

async fn stats(State(app): State<Arc<App>>) -> ApiResult {
    let s = &app.rooms.stats;
    ok(
        StatusCode::OK,
        &json!({
            "sockets": app.io.get().map_or(0, |io| io.sockets().len()),
            "rooms": app.rooms.room_count(),
            "activeReplies": app.tasks.len(),
            "packetsSent": s.packets_sent.load(Ordering::Relaxed),
            "deltasSent": s.deltas_sent.load(Ordering::Relaxed),
            "slowConsumersDisconnected": s.slow_consumers_disconnected.load(Ordering::Relaxed),
        }),
    )
}
