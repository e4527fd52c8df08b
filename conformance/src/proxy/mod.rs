//! `proteus-conformance proxy`: a relay between a real client and a real
//! server that checks the live traffic against the protocol.
//!
//! The client points at the proxy instead of the server. REST requests are
//! forwarded as they are (method, path, query, headers, body; no redirect
//! followed) and their answers returned as they are; a WebSocket upgrade
//! is passed to the upstream as the client sent it, and the connection's
//! bytes are then relayed both ways unchanged, each direction's frames read
//! from a copy ([`frames`]) and checked ([`watch`]); see [`tunnel`].
//!
//! Long-polling is relayed as HTTP and its packets (separated by U+001E)
//! checked as the WebSocket frames are.
//!
//! A Phoenix (Thenvoi) WebSocket is relayed the same way, its frames
//! checked by [`watch::Watch::phoenix`]; close frames keep their codes.
//!
//! An `https://` upstream is reached over TLS (rustls) for REST, polling and
//! WebSocket alike, verified against the system's roots, or against the CA
//! certificates given with `--upstream-ca` (a staging server with its own
//! CA). The client side stays plain HTTP on the local listener.

pub mod frames;
pub mod routes;
mod tunnel;
pub mod watch;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};

use watch::{Dir, Watch};

/// What a proxy run relays to and where it listens.
pub struct Proxy {
    pub upstream: String,
    pub watch: Arc<Watch>,
    http: reqwest::Client,
    /// TLS for upstream WebSockets: the `--upstream-ca` certificates, or
    /// the system's roots (loaded on the first `https://` WebSocket).
    tls: std::sync::OnceLock<Arc<rustls::ClientConfig>>,
    next_conn: AtomicU64,
    /// Engine.IO sessions (`sid`) by connection number: a long-polling
    /// session's requests, and the WebSocket it upgrades to, are one
    /// connection to the checks.
    sessions: std::sync::Mutex<std::collections::HashMap<String, u64>>,
    /// WebSocket relays running: they outlive the HTTP connection that
    /// upgraded, so the stop waits for them (within [`DRAIN`]) before the
    /// run's verdict is read.
    relays: tokio::sync::watch::Sender<usize>,
}

impl Proxy {
    /// A relay to `upstream` (`http://` or `https://`). `ca_pem`: PEM CA
    /// certificates to trust for the upstream instead of the system's.
    pub fn new(upstream: &str, watch: Arc<Watch>, ca_pem: Option<&[u8]>) -> Result<Proxy, String> {
        // Compile every schema and route now: done lazily on the first
        // frame it held that frame (and the heartbeat replies behind it) long
        // enough for a Phoenix client to time its heartbeat out and reconnect.
        let _ = routes::Routes::embedded();
        // One crypto provider for the process (reqwest's and tungstenite's
        // rustls alike); a second install is a no-op.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let mut http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        let tls = std::sync::OnceLock::new();
        if let Some(pem) = ca_pem {
            use rustls::pki_types::{CertificateDer, pem::PemObject};
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("the CA file is not PEM certificates: {e}"))?;
            if certs.is_empty() {
                return Err(
                    "the CA file holds no certificate (-----BEGIN CERTIFICATE-----)".into(),
                );
            }
            let mut roots = rustls::RootCertStore::empty();
            for c in &certs {
                roots
                    .add(c.clone())
                    .map_err(|e| format!("a CA certificate was refused: {e}"))?;
            }
            let config = rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth();
            let _ = tls.set(Arc::new(config));
            let bundle = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("the CA file cannot be read as certificates: {e}"))?;
            http = http.tls_certs_only(bundle);
        }
        Ok(Proxy {
            upstream: upstream.trim_end_matches('/').to_string(),
            watch,
            http: http
                .build()
                .map_err(|e| format!("cannot set up the upstream client: {e}"))?,
            tls,
            next_conn: AtomicU64::new(1),
            sessions: std::sync::Mutex::default(),
            relays: tokio::sync::watch::Sender::new(0),
        })
    }

    /// The connection a request belongs to: its Engine.IO session's when it
    /// names one (`sid=`), else a new one. At most
    /// [`watch::MAX_CONNECTIONS`] sessions are remembered (then the map
    /// starts again).
    fn connection_of(&self, query: Option<&str>) -> u64 {
        let sid = query.and_then(|q| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix("sid="))
                .filter(|s| !s.is_empty())
        });
        let Some(sid) = sid else {
            return self.next_conn.fetch_add(1, Ordering::Relaxed);
        };
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(&c) = sessions.get(sid) {
            return c;
        }
        if sessions.len() >= watch::MAX_CONNECTIONS {
            sessions.clear();
        }
        let c = self.next_conn.fetch_add(1, Ordering::Relaxed);
        sessions.insert(sid.to_string(), c);
        c
    }

    /// The TLS set-up for upstream WebSockets (the system's roots unless
    /// `--upstream-ca` gave others).
    fn tls(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        if let Some(c) = self.tls.get() {
            return Ok(c.clone());
        }
        let found = rustls_native_certs::load_native_certs();
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(found.certs);
        if roots.is_empty() {
            return Err(
                "no trusted CA certificates on this system: pass --upstream-ca FILE".into(),
            );
        }
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(self.tls.get_or_init(|| Arc::new(config)).clone())
    }
}

/// Headers that belong to one hop, not to the exchange.
const HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
];

fn end_to_end(
    headers: &HeaderMap,
) -> impl Iterator<Item = (&HeaderName, &axum::http::HeaderValue)> {
    headers
        .iter()
        .filter(|(k, _)| !HOP.contains(&k.as_str()) && k.as_str() != "content-length")
}

/// How long open connections (a WebSocket a client keeps) get to end after
/// the stop: then the proxy stops anyway, so Ctrl-C always gives the summary.
pub const DRAIN: std::time::Duration = std::time::Duration::from_secs(2);

/// Serves the proxy on `listener` until `stop` resolves (and at most
/// [`DRAIN`] longer).
pub async fn serve(
    listener: tokio::net::TcpListener,
    proxy: Arc<Proxy>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut relays = proxy.relays.subscribe();
    let app = Router::new().fallback(relay).with_state(proxy);
    let stopped = Arc::new(tokio::sync::Notify::new());
    let signal = {
        let stopped = stopped.clone();
        async move {
            stop.await;
            stopped.notify_one();
        }
    };
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(signal);
    let drained = async {
        stopped.notified().await;
        tokio::time::sleep(DRAIN).await;
    };
    tokio::pin!(drained);
    let result = tokio::select! {
        r = server => r,
        () = &mut drained => return Ok(()),
    };
    // The HTTP side is done; relayed WebSockets finish on their own (a
    // client that closed its socket is checked to its last frame).
    tokio::select! {
        _ = relays.wait_for(|n| *n == 0) => {}
        () = drained => {}
    }
    result
}

async fn relay(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    let conn = proxy.connection_of(request.uri().query());
    let (mut parts, body) = request.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/".to_string(), |p| p.as_str().to_string());
    let upgrade = parts.method == axum::http::Method::GET
        && parts
            .headers
            .get("upgrade")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if upgrade && let Some(on_upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() {
        let kind = if parts.uri.path().starts_with("/api/v1/socket") {
            Socket::Phoenix
        } else {
            Socket::SocketIo
        };
        return tunnel::open(
            proxy,
            conn,
            kind,
            &path_and_query,
            &parts.headers,
            on_upgrade,
        )
        .await;
    }
    let body = match axum::body::to_bytes(body, 16 << 20).await {
        Ok(b) => b,
        Err(e) => {
            return (StatusCode::PAYLOAD_TOO_LARGE, format!("request body: {e}")).into_response();
        }
    };
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes())
        .unwrap_or(reqwest::Method::GET);
    let mut req = proxy.http.request(
        method.clone(),
        format!("{}{path_and_query}", proxy.upstream),
    );
    for (k, v) in end_to_end(&parts.headers) {
        req = req.header(k.as_str(), v.as_bytes());
    }
    let polling = parts.uri.path().starts_with("/socket.io")
        && parts
            .uri
            .query()
            .is_some_and(|q| q.contains("transport=polling"));
    let session = polling.then(|| proxy.watch.connection(conn));
    if let Some(c) = &session {
        // Engine.IO v4 long-polling: packets separated by U+001E.
        for packet in String::from_utf8_lossy(&body).split('\u{1e}') {
            proxy.watch.frame(c, Dir::ToServer, packet);
        }
    }
    let answer = match req.body(body).send().await {
        Ok(a) => a,
        Err(e) => {
            return (
                StatusCode::BAD_GATEWAY,
                format!("the upstream did not answer: {e}"),
            )
                .into_response();
        }
    };
    let status = answer.status().as_u16();
    let headers = answer.headers().clone();
    let bytes: Bytes = answer.bytes().await.unwrap_or_default();
    let path = parts.uri.path();
    if let Some(c) = &session {
        for packet in String::from_utf8_lossy(&bytes).split('\u{1e}') {
            proxy.watch.frame(c, Dir::ToClient, packet);
        }
    } else if !path.starts_with("/socket.io") {
        proxy
            .watch
            .rest(conn, method.as_str(), path, status, &bytes);
    }
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    for (k, v) in headers.iter() {
        if !HOP.contains(&k.as_str()) && k.as_str() != "content-length" {
            response.headers_mut().append(k.clone(), v.clone());
        }
    }
    response
}

/// Which protocol a relayed WebSocket speaks (by its path).
#[derive(Debug, Clone, Copy)]
enum Socket {
    /// Engine.IO / socket.io frames.
    SocketIo,
    /// Phoenix Channels V2 frames (`/api/v1/socket/websocket`).
    Phoenix,
}

impl Socket {
    fn check(self, watch: &Watch, conn: &watch::Connection, dir: Dir, text: &str) {
        match self {
            Socket::SocketIo => watch.frame(conn, dir, text),
            Socket::Phoenix => watch.phoenix(conn, dir, text),
        }
    }
}
