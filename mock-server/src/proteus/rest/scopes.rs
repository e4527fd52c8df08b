//! What a plugin instance's `inst-` token may do, route by route.
//!
//! An instance acts as its agent (or app integration) and only within its
//! scopes, everywhere (PROTOCOL.md, "Scopes of an `inst-` token"). The rule
//! is one table, checked before any handler runs, so a new route without a
//! row is refused to instances rather than open by accident. Routes whose
//! answer depends on the body (`POST /api/messages`: sending needs
//! `*_MESSAGE_WRITE`, creating a chat on the way also `*_CHAT_WRITE`) are
//! checked in the core, where the body is understood.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::model::ParticipantType;
use crate::proteus::App;

/// What an instance may do on a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read, as its entity (only chats that entity is in, agents its org sees).
    Read,
    /// Needs `AGENT_<suffix>` (or `APP_INTEGRATION_<suffix>` for an app integration).
    Scope(&'static str),
    /// Needs exactly this scope.
    Exact(&'static str),
    /// Checked in the core, which reads the body.
    InCore,
    /// Users only: managing agents, plugins, installs and repositories.
    Never,
}

/// Every `/api` route and what an instance may do there.
pub const TABLE: &[(Method, &str, Access)] = &[
    (Method::GET, "/api/agents", Access::Read),
    (Method::POST, "/api/agents", Access::Never),
    (Method::GET, "/api/agents/{id}", Access::Read),
    (Method::PUT, "/api/agents/{id}", Access::Never),
    (Method::DELETE, "/api/agents/{id}", Access::Never),
    (Method::GET, "/api/agents/{id}/mcps", Access::Read),
    (Method::GET, "/api/chats", Access::Read),
    (Method::POST, "/api/chats", Access::Scope("CHAT_WRITE")),
    (Method::GET, "/api/chats/{id}", Access::Read),
    (Method::PUT, "/api/chats/{id}", Access::Scope("CHAT_WRITE")),
    (Method::GET, "/api/chats/{id}/messages", Access::Read),
    (Method::GET, "/api/chats/{id}/participants", Access::Read),
    (
        Method::POST,
        "/api/chats/{id}/participants",
        Access::Scope("CHAT_WRITE"),
    ),
    (
        Method::POST,
        "/api/chats/{id}/repositories",
        Access::Scope("CHAT_WRITE"),
    ),
    (Method::POST, "/api/messages", Access::InCore),
    (Method::GET, "/api/plugins", Access::Never),
    (Method::POST, "/api/plugins", Access::Never),
    (Method::GET, "/api/plugins/{id}", Access::Never),
    (
        Method::GET,
        "/api/agents/{id}/event-handlers",
        Access::Never,
    ),
    (
        Method::POST,
        "/api/agents/{id}/event-handlers",
        Access::Never,
    ),
    (
        Method::DELETE,
        "/api/agents/{id}/event-handlers/{instance}",
        Access::Never,
    ),
    (
        Method::GET,
        "/api/app-integrations/{id}/apps",
        Access::Never,
    ),
    (
        Method::POST,
        "/api/app-integrations/{id}/apps",
        Access::Never,
    ),
    (
        Method::DELETE,
        "/api/app-integrations/{id}/apps/{instance}",
        Access::Never,
    ),
    (
        Method::GET,
        "/api/repositories",
        Access::Exact("REPOSITORY_FILES_READ"),
    ),
    (Method::POST, "/api/repositories", Access::Never),
    (
        Method::GET,
        "/api/repositories/{id}",
        Access::Exact("REPOSITORY_FILES_READ"),
    ),
];

/// The row for a request, if the route has one.
pub fn access(method: &Method, route: &str) -> Access {
    TABLE
        .iter()
        .find(|(m, r, _)| m == method && *r == route)
        .map_or(Access::Never, |(_, _, a)| *a)
}

/// Refuses an `inst-` token on a route its scopes do not open, with 403
/// naming the scope (or saying the route is for users), before the handler.
pub async fn check(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token.filter(|t| t.starts_with("inst-")) else {
        return next.run(req).await;
    };
    // An unknown or revoked token is the handler's 401.
    let Ok(caller) = app.authenticate(token) else {
        return next.run(req).await;
    };
    let Some(acting) = caller.acts_as.as_ref() else {
        return next.run(req).await;
    };
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let prefix = if acting.kind == ParticipantType::AppIntegration {
        "APP_INTEGRATION"
    } else {
        "AGENT"
    };
    let refusal = match access(req.method(), &route) {
        Access::Read | Access::InCore => None,
        Access::Scope(suffix) => {
            let scope = format!("{prefix}_{suffix}");
            (!caller.may(&scope)).then(|| {
                format!(
                    "This plugin instance lacks the {scope} scope needed for {} {route}",
                    req.method()
                )
            })
        }
        Access::Exact(scope) => (!caller.may(scope)).then(|| {
            format!(
                "This plugin instance lacks the {scope} scope needed for {} {route}",
                req.method()
            )
        }),
        Access::Never => Some(format!(
            "{} {route} is for users: a plugin instance's inst- token cannot use it (see the scope table in PROTOCOL.md)",
            req.method()
        )),
    };
    match refusal {
        Some(message) => ApiError::new(StatusCode::FORBIDDEN, message).into_response(),
        None => next.run(req).await,
    }
}
