//! The accept loop: one hyper connection per accepted TCP connection.
//!
//! `axum::serve` gives hyper no timer, so hyper's header read timeout never
//! runs, and a keep-alive connection could take minutes to send the head of
//! its second request, one byte at a time, holding a file descriptor. This
//! loop configures the connection builder itself: every request head (the
//! first, and each next one on a keep-alive connection, counted from when
//! the server starts waiting for it) must be in within
//! [`Limits::head_timeout`](super::Limits::head_timeout), or the connection
//! is closed. Everything else is what `axum::serve` does: the peer address
//! as `ConnectInfo<Peer>`, upgrades (WebSocket), and a graceful shutdown
//! that stops accepting, lets requests in flight finish and then waits for
//! the connections.

use std::convert::Infallible;
use std::future::Future;
use std::io;

use axum::extract::ConnectInfo;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::{CuttableListener, Limits, Peer};

/// Serves `router` on `listener` until `shutdown` resolves, then waits for
/// the open connections to finish (the caller cuts stalled ones).
pub async fn serve(
    mut listener: CuttableListener,
    router: axum::Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.head_timeout);
    // The CONNECT protocol, for WebSockets over HTTP/2 (as axum::serve).
    builder.http2().enable_connect_protocol();
    let connections = TaskTracker::new();
    let stop = CancellationToken::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (router, sockets) = (router.clone(), listener.connections.clone());
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(Peer(peer)));
            sockets.note_upgrade(request.uri(), peer);
            let response = router.clone().oneshot(request.map(axum::body::Body::new));
            async move { Ok::<_, Infallible>(response.await.unwrap_or_else(|never| match never {})) }
        });
        let (builder, stop) = (builder.clone(), stop.clone());
        connections.spawn(async move {
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = ended {
                tracing::trace!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    stop.cancel();
    connections.close();
    connections.wait().await;
    Ok(())
}
