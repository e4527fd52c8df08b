//! The inspector: a web page of the mock (`/__admin/ui`) and the control
//! plane routes only it needed (live connections, the fault catalogue).
//!
//! The page is plain HTML, CSS and JavaScript embedded in the binary, so it
//! works offline and needs no build step. It samples: it polls the journal,
//! the stats and the connections a few times a second instead of taking
//! every delta, so a page left open does not slow a busy mock
//! (docs/BENCHMARKS.md, "Inspector"). `PROTEUS_INSPECTOR_DIR` serves the
//! assets from a directory instead, for working on the page without a
//! rebuild. The page's files are served to anyone who can reach the mock
//! (they hold no data); the routes they call sit behind the control
//! plane's guard like every other `/__admin` route. The API descriptions
//! and schemas (`/__admin/api/…`) are served the same way: data-free
//! files of the repository.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use socketioxide::TransportType;

use crate::proteus::App;
use crate::proteus::realtime::ConnectedAt;
use crate::proteus::rest::{ApiError, ApiResult, ok};

/// The page's files: name, content type, contents.
const ASSETS: [(&str, &str, &str); 3] = [
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../assets/inspector/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/inspector/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../assets/inspector/style.css"),
    ),
];

/// The page's files: outside the control plane's guard, so a browser can
/// load the page when `--admin-token` is set (it sends no header when it
/// navigates); the page then asks for the token and sends it on every call.
/// The files hold no data, only the code that asks for it.
pub fn page() -> Router<Arc<App>> {
    Router::new()
        .route("/__admin/ui", get(|| asset(Path("index.html".to_string()))))
        .route(
            "/__admin/ui/",
            get(|| asset(Path("index.html".to_string()))),
        )
        .route("/__admin/ui/{file}", get(asset))
        .route("/__admin/api/{*path}", get(api_file))
}

include!(concat!(env!("OUT_DIR"), "/api_files.rs"));

/// The API descriptions (`openapi.json`, `asyncapi.json`) and every schema
/// they refer to, at their paths under `schemas/`: a tool given
/// `/__admin/api/openapi.json` resolves the relative `$ref`s beside it.
async fn api_file(Path(path): Path<String>) -> Response {
    match API_FILES.iter().find(|(name, _)| *name == path) {
        Some((_, text)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            *text,
        )
            .into_response(),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no file {path:?} under /__admin/api/ (try openapi.json or asyncapi.json)"),
        )
        .into_response(),
    }
}

/// The control plane routes the page needed, behind the guard.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/__admin/connections", get(connections))
        .route(
            "/__admin/connections/{id}",
            axum::routing::delete(disconnect),
        )
        .route("/__admin/faults/catalogue", get(catalogue))
        .route("/__admin/restart", axum::routing::post(restart))
}

/// `POST /__admin/restart`: what clients see when the server process
/// restarts, without restarting it. Every realtime connection ends without a
/// goodbye (a socket.io socket's TCP connection is cut, no disconnect packet;
/// a Phoenix socket is closed with 1012 "service restart"), replies in flight
/// stop and the rooms are forgotten; the world (chats, messages, tokens) and
/// the faults stay, as a database would. A client that reconnects must join
/// its rooms again: client conformance's rejoin scenario rests on this.
async fn restart(State(app): State<Arc<App>>) -> ApiResult {
    app.core.stop_replies().await;
    let mut cut = 0;
    if let Some(io) = app.io.get() {
        for socket in io.sockets() {
            crate::net::cut_carrier(&socket, &app.connections);
            cut += 1;
        }
    }
    app.rooms.clear();
    let phoenix = app.band.hub.sockets().len();
    app.band
        .hub
        .close_all(crate::thenvoi::phoenix::hub::CloseWith(
            1012,
            "service restart",
        ));
    tracing::info!(
        socket_io = cut,
        phoenix,
        "restart: every realtime connection ended"
    );
    ok(
        StatusCode::OK,
        &serde_json::json!({ "restarted": true, "socketIo": cut, "phoenix": phoenix }),
    )
}

async fn asset(Path(file): Path<String>) -> Response {
    let Some((name, kind, embedded)) = ASSETS.iter().find(|(name, _, _)| *name == file) else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no inspector file {file:?}; the page is at /__admin/ui"),
        )
        .into_response();
    };
    let body = match std::env::var_os("PROTEUS_INSPECTOR_DIR") {
        Some(dir) => match std::fs::read_to_string(std::path::Path::new(&dir).join(name)) {
            Ok(text) => text,
            Err(e) => {
                return ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("PROTEUS_INSPECTOR_DIR is set but {name} cannot be read there: {e}"),
                )
                .into_response();
            }
        },
        None => embedded.to_string(),
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, *kind),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// One live socket, of either protocol.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Connection {
    id: String,
    protocol: &'static str,
    transport: &'static str,
    entity: Option<EntityRef>,
    /// Chat rooms (socket.io) or topics (Phoenix).
    rooms: Vec<String>,
    connected_at: String,
    /// Bytes waiting in the socket's buffer (socket.io over WebSocket), or
    /// kept for it beyond what the kernel took (Phoenix).
    bytes_unsent: Option<u64>,
}

/// Who a socket acts as; `type` in lower case for both protocols.
#[derive(Debug, Serialize)]
struct EntityRef {
    id: String,
    name: String,
    #[serde(rename = "type")]
    kind: String,
}

fn iso(at: SystemTime) -> String {
    let ms = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    crate::core::store::iso_from_millis(ms)
}

async fn connections(State(app): State<Arc<App>>) -> ApiResult {
    let mut list = Vec::new();
    if let Some(io) = app.io.get() {
        for socket in io.sockets() {
            let entity = socket
                .extensions
                .get::<crate::core::store::Caller>()
                .map(|c| EntityRef {
                    id: c.entity.id.clone(),
                    name: c.entity.name.clone(),
                    kind: serde_json::to_value(c.entity.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_ascii_lowercase))
                        .unwrap_or_default(),
                });
            let since = socket
                .extensions
                .get::<ConnectedAt>()
                .map_or(SystemTime::now(), |c| c.0);
            list.push(Connection {
                id: socket.id.to_string(),
                protocol: "socket.io",
                transport: match socket.transport_type() {
                    TransportType::Websocket => "websocket",
                    TransportType::Polling => "polling",
                },
                entity,
                rooms: app.rooms.rooms_of(socket.id),
                connected_at: iso(since),
                bytes_unsent: app.rooms.bytes_unsent(&socket),
            });
        }
    }
    for conn in app.band.hub.sockets() {
        list.push(Connection {
            id: format!("phx-{}", conn.id),
            protocol: "phoenix",
            transport: "websocket",
            entity: Some(EntityRef {
                id: conn.entity.clone(),
                name: conn.name.clone(),
                kind: conn.kind.as_str().to_ascii_lowercase(),
            }),
            rooms: app.band.hub.topics_of(conn.id),
            connected_at: iso(conn.since),
            bytes_unsent: Some(conn.queued()),
        });
    }
    list.sort_by(|a, b| a.connected_at.cmp(&b.connected_at).then(a.id.cmp(&b.id)));
    ok(StatusCode::OK, &list)
}

async fn disconnect(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult {
    let gone = if let Some(n) = id.strip_prefix("phx-") {
        n.parse::<u64>().ok().is_some_and(|n| {
            app.band
                .hub
                .close_one(n, "disconnected from the control plane")
        })
    } else {
        match app.io.get().zip(id.parse().ok()) {
            Some((io, sid)) => match io.get_socket(sid) {
                Some(socket) => {
                    crate::net::disconnect(socket, &app.connections);
                    true
                }
                None => false,
            },
            None => false,
        }
    };
    if !gone {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no live socket {id:?}; GET /__admin/connections lists them"),
        ));
    }
    ok(
        StatusCode::OK,
        &serde_json::json!({ "id": id, "disconnected": true }),
    )
}

/// One fault of the catalogue.
#[derive(Debug, Serialize)]
struct CatalogueRow {
    name: &'static str,
    usage: String,
    description: &'static str,
}

async fn catalogue() -> ApiResult {
    let rows: Vec<CatalogueRow> = crate::faults::registry::rows()
        .map(|r| CatalogueRow {
            name: r.name,
            usage: r.usage(),
            description: r.doc,
        })
        .collect();
    ok(StatusCode::OK, &rows)
}
