//! The Thenvoi REST APIs under `/api/v1`: `/agent/...` with an agent's
//! `X-API-Key`, `/me/...` with a user's (docs/THENVOI.md T29-T51).
//!
//! Every answer is JSON; every error is the envelope
//! `{"error": {"code", "message"}}` (T31). Bodies are strict (T32): a body
//! that is not a JSON object, or has a property the endpoint does not take,
//! is 400; a well-formed body with a missing or invalid field is 422.

pub mod agent;
pub mod body;
pub mod either;
pub mod human;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::Band;
use crate::core::Refusal;
use crate::core::thenvoi::Principal;
use crate::model::thenvoi::{Kind, is_uuid};

/// Largest request body read (bytes).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// An error answer: the status and its envelope.
#[derive(Debug)]
pub struct Failure(pub StatusCode, pub String);

pub type Answer = Result<Response, Failure>;

impl Failure {
    pub fn bad_request(message: impl Into<String>) -> Failure {
        Failure(StatusCode::BAD_REQUEST, message.into())
    }

    pub fn invalid(message: impl Into<String>) -> Failure {
        Failure(StatusCode::UNPROCESSABLE_ENTITY, message.into())
    }
}

impl From<Refusal> for Failure {
    fn from(r: Refusal) -> Failure {
        let status = match &r {
            Refusal::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Refusal::Forbidden(_) => StatusCode::FORBIDDEN,
            Refusal::NotFound(_) => StatusCode::NOT_FOUND,
            Refusal::Conflict(_) => StatusCode::CONFLICT,
            Refusal::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
        };
        Failure(status, r.message().to_string())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        error(self.0, &self.1)
    }
}

/// The error envelope (T31).
pub fn error(status: StatusCode, message: &str) -> Response {
    let code = match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        409 => "conflict",
        413 => "payload_too_large",
        422 => "unprocessable_entity",
        429 => "too_many_requests",
        _ => "internal_server_error",
    };
    let request_id = next_request_id();
    (
        status,
        axum::Json(
            json!({ "error": { "code": code, "message": message, "request_id": request_id } }),
        ),
    )
        .into_response()
}

/// A request id for an error body: the Band SDK's error model requires one
/// (T30). Counted, not random, so runs repeat.
pub fn next_request_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("req_{n:016x}")
}

/// `{"data": …}` with a status.
pub fn data(status: StatusCode, value: impl serde::Serialize) -> Answer {
    #[derive(serde::Serialize)]
    struct Data<T> {
        data: T,
    }
    Ok((status, axum::Json(Data { data: value })).into_response())
}

/// An agent's key (`/agent` routes).
pub struct AgentKey(pub Principal);
/// A user's key (`/me` routes).
pub struct UserKey(pub Principal);

fn caller(band: &Band, parts: &Parts, want: Kind) -> Result<Principal, Failure> {
    let faults = band.core.faults.thenvoi(None);
    let read = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    // T29: Authorization is not read, unless under `thenvoi-read-bearer`.
    let bearer = || {
        read("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .filter(|_| faults.read_bearer.fire())
    };
    let key = read("x-api-key").or_else(bearer).ok_or_else(|| {
        Failure(
            StatusCode::UNAUTHORIZED,
            "missing X-API-Key header: send your agent or user API key".into(),
        )
    })?;
    let who = match band.core.thenvoi.by_key(key) {
        Some(p) => p,
        None if want == Kind::Agent && faults.accept_bad_key.fire() => band
            .core
            .thenvoi
            .first_agent()
            .ok_or_else(|| Failure(StatusCode::UNAUTHORIZED, "unknown API key".into()))?,
        None => return Err(Failure(StatusCode::UNAUTHORIZED, "unknown API key".into())),
    };
    if who.kind != want {
        let (route, key) = match want {
            Kind::Agent => ("/agent", "an agent"),
            Kind::User => ("/me", "a user"),
        };
        let status = if faults.wrong_key_kind_401.fire() {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::FORBIDDEN
        };
        return Err(Failure(
            status,
            format!("{route} routes need {key} API key"),
        ));
    }
    Ok(who)
}

/// A key extractor of either API, as the principal it acts for.
pub trait Key: FromRequestParts<Arc<Band>, Rejection = Failure> + Send + 'static {
    fn principal(self) -> Principal;
}

impl Key for AgentKey {
    fn principal(self) -> Principal {
        self.0
    }
}

impl Key for UserKey {
    fn principal(self) -> Principal {
        self.0
    }
}

impl FromRequestParts<Arc<Band>> for AgentKey {
    type Rejection = Failure;
    async fn from_request_parts(parts: &mut Parts, band: &Arc<Band>) -> Result<Self, Failure> {
        caller(band, parts, Kind::Agent).map(AgentKey)
    }
}

impl FromRequestParts<Arc<Band>> for UserKey {
    type Rejection = Failure;
    async fn from_request_parts(parts: &mut Parts, band: &Arc<Band>) -> Result<Self, Failure> {
        caller(band, parts, Kind::User).map(UserKey)
    }
}

/// A path id that must be a uuid (404 otherwise, T31).
pub fn uuid(what: &str, id: &str) -> Result<(), Failure> {
    if is_uuid(id) {
        Ok(())
    } else {
        Err(Failure(
            StatusCode::NOT_FOUND,
            format!("{what} {id} not found (ids are lowercase uuids)"),
        ))
    }
}

/// `page` and `page_size` of a list (T49): 422 below 1 or not an integer;
/// a size above 100 is clamped.
/// The `thenvoi-lenient-paging` fault takes a bad value for the default.
pub fn paging(
    band: &Band,
    room: Option<&str>,
    query: &[(String, String)],
    default_size: usize,
) -> Result<(usize, usize), Failure> {
    let faults = band.core.faults.thenvoi(room);
    let read = |name: &str, default: usize| -> Result<usize, Failure> {
        match query.iter().find(|(k, _)| k == name) {
            None => Ok(default),
            Some((_, v)) => match v.parse::<usize>().ok().filter(|n| *n >= 1) {
                Some(n) => Ok(n),
                None if faults.lenient_paging.fire() => Ok(default),
                None => Err(Failure::invalid(format!(
                    "{name} must be an integer of at least 1, got {v:?}"
                ))),
            },
        }
    };
    Ok((read("page", 1)?, read("page_size", default_size)?.min(100)))
}

/// The query string as pairs.
pub fn query_pairs(req_query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(req_query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// A list page: `{"data": [...], "metadata": {...}}` (T49), without the
/// metadata under the `thenvoi-no-page-metadata` fault.
pub fn page(band: &Band, items: Vec<Value>, at: (usize, usize), extra: &[(&str, Value)]) -> Answer {
    let (data, mut meta) = crate::core::thenvoi::messages::paginate(items, at.0, at.1);
    for (k, v) in extra {
        meta[*k] = v.clone();
    }
    let mut body = json!({ "data": data });
    if !band.core.faults.thenvoi(None).no_page_metadata.fire() {
        body["metadata"] = meta;
    }
    Ok(axum::Json(body).into_response())
}

/// The path as the client sent it (routes here are nested under `/api/v1`).
fn full_path(req: &Request) -> String {
    req.extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| req.uri().path().to_string(), |u| u.path().to_string())
}

/// Marks a response the journal must pass on as it is (not turned into the
/// envelope): the `thenvoi-plain-404` fault's plain-text answer.
#[derive(Debug, Clone, Copy)]
struct AsIs;

async fn not_found(State(band): State<Arc<Band>>, req: Request) -> Response {
    let message = format!("No route for {} {}", req.method(), full_path(&req));
    if band.core.faults.thenvoi(None).plain_404.fire() {
        let mut response = (StatusCode::NOT_FOUND, message).into_response();
        response.extensions_mut().insert(AsIs);
        return response;
    }
    error(StatusCode::NOT_FOUND, &message)
}

async fn method_not_allowed(req: Request) -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!(
            "Method {} is not allowed on {}",
            req.method(),
            full_path(&req)
        ),
    )
}

/// Journals each call (method, path, status) beside the ProteusAI ones, and
/// turns a plain-text error of the HTTP layer into the envelope.
async fn journal(
    State(band): State<Arc<Band>>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let (method, path) = (req.method().to_string(), full_path(&req));
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let as_is = response.extensions().get::<AsIs>().is_some();
    let response = if status.as_u16() >= 400 && !is_json && !as_is {
        let bytes = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes).trim().to_string();
        error(
            status,
            if text.is_empty() {
                "request refused"
            } else {
                &text
            },
        )
    } else {
        response
    };
    if band.core.journal.enabled() {
        let room = path.split("/chats/").nth(1).map(|rest| {
            rest.split(['/', '?'])
                .next()
                .unwrap_or_default()
                .to_string()
        });
        band.core.journal.record(
            crate::journal::Kind::Rest,
            crate::journal::Note {
                chat_id: room,
                detail: json!({ "transport": "thenvoi", "method": method, "path": path,
                    "status": status.as_u16(), "durationUs": started.elapsed().as_micros() as u64 })
                .into(),
                ..Default::default()
            },
        );
    }
    response
}

/// The REST routes (relative to `/api/v1`).
///
/// Unlike ProteusAI's REST, these handlers run on the realtime runtime: a
/// message POST is the Thenvoi delivery path itself (its pushes are
/// written before it answers, T52), so demoting it would demote the
/// deliveries, and handing each request to the other runtime and back was
/// a large share of the server's CPU per delivery (docs/BENCHMARKS.md,
/// Thenvoi).
pub fn router(band: Arc<Band>) -> Router<Arc<Band>> {
    use axum::routing::delete;
    Router::new()
        .route("/agent/me", get(agent::me))
        .route("/agent/peers", get(agent::peers))
        .route(
            "/agent/chats",
            get(either::chats::<AgentKey>).post(agent::create_chat),
        )
        .route("/agent/chats/{id}", get(agent::chat))
        .route(
            "/agent/chats/{id}/participants",
            get(agent::participants).post(agent::add_participant),
        )
        .route(
            "/agent/chats/{id}/participants/{pid}",
            delete(either::remove_participant::<AgentKey>),
        )
        .route("/agent/chats/{id}/context", get(agent::context))
        .route(
            "/agent/chats/{id}/messages",
            get(agent::messages).post(agent::send),
        )
        .route("/agent/chats/{id}/messages/next", get(agent::next))
        .route(
            "/agent/chats/{id}/messages/{mid}/{action}",
            post(agent::lifecycle),
        )
        .route("/agent/chats/{id}/events", post(agent::event))
        .route("/agent/chats/{id}/activity", post(agent::activity))
        .route("/me/agents/register", post(human::register_agent))
        .route(
            "/me/chats",
            get(either::chats::<UserKey>).post(human::create_chat),
        )
        .route("/me/chats/{id}", get(human::chat))
        .route(
            "/me/chats/{id}/messages",
            get(human::messages).post(human::send),
        )
        .route(
            "/me/chats/{id}/participants",
            get(human::participants).post(human::add_participant),
        )
        .route(
            "/me/chats/{id}/participants/{pid}",
            delete(either::remove_participant::<UserKey>),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(band, journal))
}
