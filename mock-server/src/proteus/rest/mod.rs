//! REST under `/api`: the envelope, authentication, bodies and routes.
//!
//! Every response, errors and unknown routes included, is the envelope
//! `{ok, data?, error?: {message}, meta?}` (PROTOCOL.md R5). Status codes
//! follow PROTOCOL.md R6 and are listed in docs/PROTOCOL.md.

mod agents;
mod chats;
mod messages;
mod plugins;
mod repositories;
pub mod scopes;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::{StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::core::store::{Caller, Refusal};
use crate::proteus::App;

/// Request bodies above this size are refused with 413.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// An error response: its status and a message a person can act on.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, m),
            Refusal::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, m),
            Refusal::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, m),
            Refusal::Conflict(m) => ApiError::new(StatusCode::CONFLICT, m),
            Refusal::TooMany(m) => ApiError::new(StatusCode::TOO_MANY_REQUESTS, m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(json!({ "ok": false, "error": { "message": self.message } })),
        )
            .into_response()
    }
}

pub type ApiResult = Result<Response, ApiError>;

/// `{ok: true, data}` with a status.
pub fn ok<T: Serialize>(status: StatusCode, data: &T) -> ApiResult {
    Ok((status, axum::Json(json!({ "ok": true, "data": data }))).into_response())
}

/// `{ok: true, data, meta}`.
pub fn ok_with_meta<T: Serialize>(data: &T, meta: Value) -> ApiResult {
    Ok((
        StatusCode::OK,
        axum::Json(json!({ "ok": true, "data": data, "meta": meta })),
    )
        .into_response())
}

/// The authenticated caller (`Authorization: Bearer <token>`), or 401.
pub struct Auth(pub Caller);

impl FromRequestParts<Arc<App>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<App>,
    ) -> Result<Self, Self::Rejection> {
        let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, m);
        let header = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            unauthorized("Missing Authorization header: send 'Authorization: Bearer <token>'")
        })?;
        let value = header
            .to_str()
            .map_err(|_| unauthorized("Authorization header is not valid text"))?;
        let token = value
            .strip_prefix("Bearer ")
            .ok_or_else(|| unauthorized("Authorization header must be 'Bearer <token>'"))?
            .trim();
        app.authenticate(token)
            .map(Auth)
            .map_err(|m| unauthorized(&m))
    }
}

/// A JSON body: no content type or a JSON one (else 415), at most
/// [`BODY_LIMIT`] bytes (else 413), valid JSON (else 400). An empty body is `{}`.
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct
                .to_str()
                .unwrap_or_default()
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            let json = ct == "application/json"
                || (ct.starts_with("application/") && ct.ends_with("+json"));
            // curl -d without -H sends form encoding; the docs' own examples do that, so accept it as JSON.
            if !json && ct != "application/x-www-form-urlencoded" {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!(
                        "Content-Type {ct:?} is not supported: send a JSON body with 'Content-Type: application/json'"
                    ),
                ));
            }
        }
        // A declared length over the limit is refused before the body is
        // read: a client that sent `Expect: 100-continue` gets the 413 at
        // once instead of a 100 Continue and a refusal after the upload.
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Request body is larger than the {BODY_LIMIT}-byte limit"),
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("Request body is larger than the {BODY_LIMIT}-byte limit"),
                    )
                } else {
                    ApiError::bad_request(format!("Cannot read the request body: {e}"))
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(json!({})));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::bad_request(format!("Request body is not valid JSON: {e}")))
    }
}

impl JsonBody {
    /// Deserializes into a request type; the error names the field at fault.
    pub fn parse<T: DeserializeOwned>(self) -> Result<T, ApiError> {
        if !self.0.is_object() {
            return Err(ApiError::bad_request("Request body must be a JSON object"));
        }
        serde_path_to_error::deserialize(self.0).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                ApiError::bad_request(format!("Invalid body: {inner}"))
            } else {
                ApiError::bad_request(format!("Invalid field {path}: {inner}"))
            }
        })
    }
}

/// Checks an id taken from a path: malformed ids cannot exist (404).
pub fn path_id(what: &str, id: &str) -> Result<(), ApiError> {
    if crate::model::is_object_id(id) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{what} {id} not found (ids are 24 lowercase hex characters)"),
        ))
    }
}

async fn not_found(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("No route for {} {}", req.method(), req.uri().path()),
    )
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "Method {} is not allowed on {}",
            req.method(),
            req.uri().path()
        ),
    )
}

/// Journals every REST request with its status and duration.
async fn journal_rest(
    State(app): State<Arc<App>>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    if !app.journal.enabled() {
        return next.run(req).await;
    }
    let (method, path) = (req.method().to_string(), req.uri().to_string());
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    let chat_id = path.strip_prefix("/api/chats/").map(|rest| {
        rest.split(['/', '?'])
            .next()
            .unwrap_or_default()
            .to_string()
    });
    app.journal.record(
        crate::journal::Kind::Rest,
        crate::journal::Note {
            chat_id,
            detail: serde_json::json!({ "method": method, "path": path, "status": response.status().as_u16(), "durationUs": started.elapsed().as_micros() as u64 }).into(),
            ..Default::default()
        },
    );
    response
}

/// REST-side faults (`rest-latency`, `rest-status`, `missing-ok`); a no-op
/// when no fault is active.
async fn rest_faults(
    State(app): State<Arc<App>>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    if app.faults.is_empty() || !req.uri().path().starts_with("/api") {
        return next.run(req).await;
    }
    let path = req.uri().path().to_string();
    let faults = app.faults.rest();
    for latency in &faults.latency_ms {
        if let Some(ms) = latency.fire() {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
    }
    for injected in &faults.status {
        if let Some((status, prefix)) =
            injected.fire_if(|(_, prefix)| path.starts_with(prefix.as_str()))
        {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return ApiError::new(
                status,
                format!("Injected fault: rest-status:{}:{prefix}", status.as_u16()),
            )
            .into_response();
        }
    }
    let mut response = next.run(req).await;
    let status = response.status();
    if status.is_client_error() && faults.errors_as_500.fire() {
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    }
    if status == StatusCode::CREATED && faults.created_as_200.fire() {
        *response.status_mut() = StatusCode::OK;
    }
    let drop_keys: Vec<&str> = [(&faults.missing_ok, "ok"), (&faults.no_meta, "meta")]
        .into_iter()
        .filter(|(flag, _)| flag.fire())
        .map(|(_, key)| key)
        .collect();
    if drop_keys.is_empty() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, BODY_LIMIT * 64)
        .await
        .unwrap_or_default();
    let mut value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if let Some(o) = value.as_object_mut() {
        for key in drop_keys {
            o.remove(key);
        }
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(value.to_string()))
}

/// The `/api` routes.
pub fn router(app: Arc<App>) -> Router<Arc<App>> {
    Router::new()
        .route("/api/agents", get(agents::list).post(agents::create))
        .route(
            "/api/agents/{id}",
            get(agents::get).put(agents::update).delete(agents::delete),
        )
        .route("/api/agents/{id}/mcps", get(agents::mcps))
        .route("/api/chats", get(chats::list).post(chats::create))
        .route("/api/chats/{id}", get(chats::get).put(chats::update))
        .route("/api/chats/{id}/messages", get(chats::messages))
        .route(
            "/api/chats/{id}/participants",
            get(chats::participants).post(chats::add_participant),
        )
        .route(
            "/api/chats/{id}/repositories",
            post(chats::attach_repository),
        )
        .route("/api/messages", post(messages::create))
        .route("/api/plugins", get(plugins::list).post(plugins::register))
        .route("/api/plugins/{id}", get(plugins::get))
        .route(
            "/api/agents/{id}/event-handlers",
            get(plugins::list_on_agent).post(plugins::install_on_agent),
        )
        .route(
            "/api/agents/{id}/event-handlers/{instance}",
            axum::routing::delete(plugins::uninstall_from_agent),
        )
        .route(
            "/api/app-integrations/{id}/apps",
            get(plugins::list_on_app).post(plugins::install_on_app),
        )
        .route(
            "/api/app-integrations/{id}/apps/{instance}",
            axum::routing::delete(plugins::uninstall_from_app),
        )
        .route(
            "/api/repositories",
            get(repositories::list).post(repositories::create),
        )
        .route("/api/repositories/{id}", get(repositories::get))
        // Before any handler, after routing (it reads the matched route).
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            scopes::check,
        ))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            rest_faults,
        ))
        .layer(axum::middleware::from_fn_with_state(app, journal_rest))
        .layer(axum::middleware::from_fn(rest_in_background))
        .layer(axum::middleware::from_fn(envelope_errors))
}

/// Error answers an extractor or the HTTP layer wrote as plain text (a path
/// segment that is not UTF-8, a number that does not parse) become the
/// envelope like every other answer; a path that cannot be an id is the
/// 404 of a malformed id (PROTOCOL.md, "Message history pagination").
pub async fn envelope_errors(req: Request, next: axum::middleware::Next) -> Response {
    let path = req.uri().path().to_string();
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if status.as_u16() < 400 || is_json {
        return response;
    }
    let bytes = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).trim().to_string();
    if status == StatusCode::BAD_REQUEST && text.starts_with("Invalid URL") {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{path} not found: a path segment is not an id ({text})"),
        )
        .into_response();
    }
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_string()
    } else {
        text
    };
    ApiError::new(status, message).into_response()
}

/// For partial updates: a present field (even `null`) is `Some(value)`, an
/// absent one is `None` (with `#[serde(default)]`).
/// An optional field whose schema does not allow `null`: absent is `None`
/// (with `#[serde(default)]`), `null` is refused as any wrong type is (a
/// 400 naming the field), never read as "absent".
pub fn not_null<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

pub fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

/// Runs the rest of a REST request (handler and inner middleware) on the
/// background runtime; the connection itself stays where it was accepted.
pub async fn rest_in_background(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match crate::priority::background().spawn(next.run(request)).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "a REST handler panicked (a bug)");
            use axum::response::IntoResponse;
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "the request handler failed (a bug in the mock; see its log)",
            )
            .into_response()
        }
    }
}
