//! `proteus-conformance proxy`: a relay between a real client and a real
//! server that checks the live traffic against the protocol.
//!
//! The client points at the proxy instead of the server. REST requests are
//! forwarded as they are (method, path, query, headers, body; no redirect
//! followed) and their answers returned as they are; a socket.io WebSocket
//! is opened to the upstream with the same path and query, and frames are
//! relayed both ways in order, each checked on the way ([`watch`]).
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

pub mod routes;
pub mod watch;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ws::{Message as AxMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as TMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use watch::{Dir, Watch};

/// What a proxy run relays to and where it listens.
pub struct Proxy {
    pub upstream: String,
    pub watch: Arc<Watch>,
    http: reqwest::Client,
    /// TLS for upstream WebSockets when `--upstream-ca` replaces the
    /// system's roots (`None`: tungstenite's default, the system's roots).
    ws_tls: Option<tokio_tungstenite::Connector>,
    next_conn: AtomicU64,
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
        let mut ws_tls = None;
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
            ws_tls = Some(tokio_tungstenite::Connector::Rustls(Arc::new(config)));
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
            ws_tls,
            next_conn: AtomicU64::new(1),
        })
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
    tokio::select! {
        r = server => r,
        () = async {
            stopped.notified().await;
            tokio::time::sleep(DRAIN).await;
        } => Ok(()),
    }
}

async fn relay(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    let conn = proxy.next_conn.fetch_add(1, Ordering::Relaxed);
    let (mut parts, body) = request.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/".to_string(), |p| p.as_str().to_string());
    if let Ok(upgrade) = WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        let url = format!(
            "{}{path_and_query}",
            proxy.upstream.replacen("http", "ws", 1)
        );
        let mut upstream_request = match url.as_str().into_client_request() {
            Ok(r) => r,
            Err(e) => {
                return (
                    StatusCode::BAD_GATEWAY,
                    format!("bad upstream URL {url}: {e}"),
                )
                    .into_response();
            }
        };
        for (k, v) in end_to_end(&parts.headers) {
            if !k.as_str().starts_with("sec-websocket") {
                upstream_request.headers_mut().insert(k.clone(), v.clone());
            }
        }
        let upstream = match tokio_tungstenite::connect_async_tls_with_config(
            upstream_request,
            None,
            false,
            proxy.ws_tls.clone(),
        )
        .await
        {
            Ok((ws, _)) => ws,
            Err(e) => {
                return (
                    StatusCode::BAD_GATEWAY,
                    format!("the upstream refused the WebSocket: {e}"),
                )
                    .into_response();
            }
        };
        let watch = proxy.watch.clone();
        let kind = if parts.uri.path().starts_with("/api/v1/socket") {
            Socket::Phoenix
        } else {
            Socket::SocketIo
        };
        return upgrade.on_upgrade(move |client| pipe(client, upstream, watch, conn, kind));
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
    if polling {
        // Engine.IO v4 long-polling: packets separated by U+001E.
        for packet in String::from_utf8_lossy(&body).split('\u{1e}') {
            proxy.watch.frame(conn, Dir::ToServer, packet);
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
    if polling {
        for packet in String::from_utf8_lossy(&bytes).split('\u{1e}') {
            proxy.watch.frame(conn, Dir::ToClient, packet);
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
    fn check(self, watch: &Watch, conn: u64, dir: Dir, text: &str) {
        match self {
            Socket::SocketIo => watch.frame(conn, dir, text),
            Socket::Phoenix => watch.phoenix(conn, dir, text),
        }
    }
}

type Upstream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Relays frames both ways, in order, checking the text frames. Frames that
/// are already waiting are written together and flushed once (one write
/// instead of one per frame under load); a frame that arrives alone is
/// flushed at once, so nothing waits for company.
async fn pipe(client: WebSocket, upstream: Upstream, watch: Arc<Watch>, conn: u64, kind: Socket) {
    use futures_util::FutureExt;
    let (mut client_tx, mut client_rx) = client.split();
    let (mut up_tx, mut up_rx) = upstream.split();
    let to_server = {
        let watch = watch.clone();
        async move {
            let forward = |m: AxMessage| -> Option<TMessage> {
                Some(match m {
                    AxMessage::Text(t) => {
                        kind.check(&watch, conn, Dir::ToServer, t.as_str());
                        TMessage::text(t.as_str())
                    }
                    AxMessage::Binary(b) => TMessage::binary(b),
                    AxMessage::Ping(p) => TMessage::Ping(p),
                    AxMessage::Pong(p) => TMessage::Pong(p),
                    AxMessage::Close(frame) => TMessage::Close(frame.map(|f| {
                        tokio_tungstenite::tungstenite::protocol::CloseFrame {
                            code: f.code.into(),
                            reason: f.reason.as_str().into(),
                        }
                    })),
                })
            };
            'relay: while let Some(Ok(first)) = client_rx.next().await {
                let mut next = Some(first);
                while let Some(m) = next.take() {
                    let Some(m) = forward(m) else { break 'relay };
                    if up_tx.feed(m).await.is_err() {
                        break 'relay;
                    }
                    next = client_rx
                        .next()
                        .now_or_never()
                        .flatten()
                        .and_then(Result::ok);
                }
                if up_tx.flush().await.is_err() {
                    break;
                }
            }
            let _ = up_tx.close().await;
        }
    };
    let to_client = async move {
        let forward = |m: TMessage| -> Option<AxMessage> {
            Some(match m {
                TMessage::Text(t) => {
                    kind.check(&watch, conn, Dir::ToClient, t.as_str());
                    AxMessage::Text(t.as_str().into())
                }
                TMessage::Binary(b) => AxMessage::Binary(b),
                TMessage::Ping(p) => AxMessage::Ping(p),
                TMessage::Pong(p) => AxMessage::Pong(p),
                TMessage::Close(frame) => {
                    AxMessage::Close(frame.map(|f| axum::extract::ws::CloseFrame {
                        code: f.code.into(),
                        reason: f.reason.as_str().into(),
                    }))
                }
                TMessage::Frame(_) => return None,
            })
        };
        'relay: while let Some(Ok(first)) = up_rx.next().await {
            let mut next = Some(first);
            while let Some(m) = next.take() {
                let Some(m) = forward(m) else { break 'relay };
                if client_tx.feed(m).await.is_err() {
                    break 'relay;
                }
                next = up_rx.next().now_or_never().flatten().and_then(Result::ok);
            }
            if client_tx.flush().await.is_err() {
                break;
            }
        }
        let _ = client_tx.close().await;
    };
    tokio::join!(to_server, to_client);
}
