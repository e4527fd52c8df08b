//! A relayed WebSocket: the client's handshake passed to the upstream, the
//! upstream's answer passed back, then the bytes of both directions
//! forwarded unchanged and read by [`super::frames`] for the checks.
//!
//! Why bytes and not messages: the client must get the server's frames as
//! the server wrote them (issue 16: byte-identical), and decoding each frame
//! into a WebSocket library's message and encoding it again for the other
//! side was most of what the relay cost. Forwarding a read as one write, and
//! checking a copy afterwards, keeps a frame's added delay at one read and
//! one write whatever the checks cost.
//!
//! The handshake is the client's own (its `Sec-WebSocket-Key`, headers,
//! path and query), so the upstream's `Sec-WebSocket-Accept` is the one the
//! client expects; `Sec-WebSocket-Extensions` is not passed on, so no
//! compression is negotiated and every frame stays readable. An upstream
//! that refuses the upgrade has its status, headers and body relayed as
//! they are.
//!
//! Bounds: the upstream's answer head is read within [`HANDSHAKE`] and
//! [`MAX_HEAD`] bytes (502 otherwise); a refusal's body at most
//! [`MAX_BODY`] bytes; when one direction ends, the other gets [`LINGER`]
//! to finish (a close frame's answer) before both are dropped.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::frames::Frames;
use super::watch::{Connection, Dir, Watch};
use super::{Proxy, Socket};

/// Time for the upstream's answer to the upgrade.
pub const HANDSHAKE: Duration = Duration::from_secs(10);
/// Largest upgrade answer head read (bytes).
pub const MAX_HEAD: usize = 64 * 1024;
/// Largest refusal body relayed (bytes).
pub const MAX_BODY: usize = 1 << 20;
/// How long the other direction may go on after one has ended.
pub const LINGER: Duration = Duration::from_secs(5);
/// Bytes read (and written) at once.
const CHUNK: usize = 64 * 1024;

/// A connection to the upstream, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

fn bad_gateway(why: String) -> Response {
    (StatusCode::BAD_GATEWAY, why).into_response()
}

/// Opens the upstream connection the upstream URL names.
async fn connect(proxy: &Proxy) -> Result<(Box<dyn Io>, String), String> {
    let url = reqwest::Url::parse(&proxy.upstream)
        .map_err(|e| format!("bad upstream URL {}: {e}", proxy.upstream))?;
    let host = url
        .host_str()
        .ok_or_else(|| format!("the upstream URL {} has no host", proxy.upstream))?
        .trim_matches(['[', ']'])
        .to_string();
    let tls = url.scheme() == "https";
    let port = url.port().unwrap_or(if tls { 443 } else { 80 });
    let authority = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("cannot reach the upstream {host}:{port}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    if !tls {
        return Ok((Box::new(tcp), authority));
    }
    let name = rustls::pki_types::ServerName::try_from(host.clone())
        .map_err(|e| format!("{host} is not a TLS server name: {e}"))?;
    let stream = tokio_rustls::TlsConnector::from(proxy.tls()?)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS with the upstream failed: {e}"))?;
    Ok((Box::new(stream), authority))
}

/// Sends the client's upgrade request upstream and reads the answer head:
/// the status, headers, and any bytes already read past the head.
async fn handshake(
    io: &mut Box<dyn Io>,
    authority: &str,
    path_and_query: &str,
    headers: &HeaderMap,
) -> Result<(u16, Vec<(String, Vec<u8>)>, Vec<u8>), String> {
    let mut request =
        format!("GET {path_and_query} HTTP/1.1\r\nhost: {authority}\r\n").into_bytes();
    for (k, v) in headers {
        if k == "host" || k == "sec-websocket-extensions" || k == "content-length" {
            continue;
        }
        request.extend_from_slice(k.as_str().as_bytes());
        request.extend_from_slice(b": ");
        request.extend_from_slice(v.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    io.write_all(&request)
        .await
        .map_err(|e| format!("the upstream closed during the upgrade: {e}"))?;
    let mut buf = Vec::with_capacity(4096);
    loop {
        let mut chunk = [0u8; 4096];
        let n = io
            .read(&mut chunk)
            .await
            .map_err(|e| format!("the upstream closed during the upgrade: {e}"))?;
        if n == 0 {
            return Err("the upstream closed without answering the upgrade".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut slots = [httparse::EMPTY_HEADER; 64];
        let mut answer = httparse::Response::new(&mut slots);
        match answer.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let status = answer.code.unwrap_or(502);
                let headers = answer
                    .headers
                    .iter()
                    .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
                    .collect();
                return Ok((status, headers, buf[len..].to_vec()));
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            Ok(httparse::Status::Partial) => {
                return Err(format!(
                    "the upstream's upgrade answer head exceeds {MAX_HEAD} bytes"
                ));
            }
            Err(e) => return Err(format!("the upstream's upgrade answer is not HTTP: {e}")),
        }
    }
}

/// Relays a WebSocket upgrade: the answer the client gets now, and the
/// relay started once the client's side is upgraded.
pub async fn open(
    proxy: Arc<Proxy>,
    conn: u64,
    kind: Socket,
    path_and_query: &str,
    headers: &HeaderMap,
    on_upgrade: hyper::upgrade::OnUpgrade,
) -> Response {
    let (mut upstream, authority) = match connect(&proxy).await {
        Ok(c) => c,
        Err(why) => return bad_gateway(why),
    };
    let answer = tokio::time::timeout(
        HANDSHAKE,
        handshake(&mut upstream, &authority, path_and_query, headers),
    )
    .await
    .unwrap_or_else(|_| {
        Err(format!(
            "the upstream did not answer the upgrade within {HANDSHAKE:?}"
        ))
    });
    let (status, answer_headers, mut early) = match answer {
        Ok(a) => a,
        Err(why) => return bad_gateway(format!("the upstream refused the WebSocket: {why}")),
    };
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut length = None;
    for (k, v) in &answer_headers {
        if k == "content-length" {
            length = std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok());
            continue;
        }
        if status != 101 && super::HOP.contains(&k.as_str()) {
            continue;
        }
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k.as_str()), HeaderValue::from_bytes(v)) {
            response.headers_mut().append(k, v);
        }
    }
    if status != 101 {
        // A refusal (403 for a bad key, 400 ...): its body as it is.
        let want = length.unwrap_or(0).min(MAX_BODY);
        while early.len() < want {
            let mut chunk = vec![0u8; want - early.len()];
            match tokio::time::timeout(HANDSHAKE, upstream.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => early.extend_from_slice(&chunk[..n]),
                _ => break,
            }
        }
        early.truncate(length.unwrap_or(MAX_BODY).min(MAX_BODY));
        *response.body_mut() = Body::from(early);
        return response;
    }
    let watch = proxy.watch.clone();
    let running = Running::start(&proxy);
    tokio::spawn(async move {
        let _running = running;
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let client = hyper_util::rt::TokioIo::new(upgraded);
        relay(client, upstream, early, watch, conn, kind).await;
    });
    response
}

/// Counts a relay as running until dropped.
struct Running(tokio::sync::watch::Sender<usize>);

impl Running {
    fn start(proxy: &Proxy) -> Running {
        proxy.relays.send_modify(|n| *n += 1);
        Running(proxy.relays.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// Both directions until both end (or one has ended [`LINGER`] ago).
async fn relay(
    client: impl Io + 'static,
    upstream: Box<dyn Io>,
    early: Vec<u8>,
    watch: Arc<Watch>,
    conn: u64,
    kind: Socket,
) {
    let (client_rx, client_tx) = tokio::io::split(client);
    let (up_rx, up_tx) = tokio::io::split(upstream);
    let c = watch.connection(conn);
    let to_server = pump(
        client_rx,
        up_tx,
        Vec::new(),
        &watch,
        &c,
        kind,
        Dir::ToServer,
    );
    let to_client = pump(up_rx, client_tx, early, &watch, &c, kind, Dir::ToClient);
    tokio::pin!(to_server, to_client);
    tokio::select! {
        () = &mut to_server => {
            let _ = tokio::time::timeout(LINGER, to_client).await;
        }
        () = &mut to_client => {
            let _ = tokio::time::timeout(LINGER, to_server).await;
        }
    }
    watch.closed(&c);
}

/// One direction: each read written on at once, then its frames checked.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    early: Vec<u8>,
    watch: &Watch,
    conn: &Connection,
    kind: Socket,
    dir: Dir,
) {
    let mut frames = Frames::default();
    let mut check = |bytes: &[u8]| {
        if let Err(why) = frames.feed(bytes, |text| kind.check(watch, conn, dir, text)) {
            watch.unreadable(conn, dir, &why);
        }
    };
    if !early.is_empty() {
        if to.write_all(&early).await.is_err() || to.flush().await.is_err() {
            return;
        }
        check(&early);
    }
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).await.is_err() || to.flush().await.is_err() {
            break;
        }
        check(&buf[..n]);
    }
    let _ = to.shutdown().await;
}
