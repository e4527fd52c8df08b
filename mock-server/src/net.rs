//! TCP connections the server can cut.
//!
//! socketioxide disconnects a socket by queueing a disconnect packet, and
//! when the socket's buffer is full (a slow consumer, or a reset while
//! clients lag) that does nothing at all: the socket would live on until the
//! next heartbeat found the buffer full, up to 25 s later. So the listener
//! registers every accepted connection here, and [`disconnect`] cuts the TCP
//! connection itself when the polite way fails. The client then sees its
//! connection end, never a silent hole in a stream.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::extract::ConnectInfo;
use socketioxide::SocketError;
use socketioxide::extract::SocketRef;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// The peer address of a request, as `ConnectInfo<Peer>` in its extensions
/// (a local type: axum's `Connected` cannot be implemented for `SocketAddr`
/// on a listener of ours).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, CuttableListener>>
    for Peer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, CuttableListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// Open connections by peer address.
#[derive(Debug, Default)]
pub struct Connections {
    open: Mutex<HashMap<SocketAddr, CancellationToken>>,
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, CancellationToken>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Connections open now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ends the connection from `peer`; false when there is none.
    pub fn cut(&self, peer: SocketAddr) -> bool {
        match self.lock().remove(&peer) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }
}

/// Disconnects a socket: the disconnect packet when it fits in the socket's
/// buffer, otherwise the TCP connection is cut.
pub fn disconnect(socket: SocketRef, connections: &Connections) {
    let peer = socket
        .req_parts()
        .extensions
        .get::<ConnectInfo<Peer>>()
        .map(|c| c.0.0);
    if let Err(SocketError::InternalChannelFull) = socket.disconnect() {
        let cut = peer.is_some_and(|p| connections.cut(p));
        tracing::debug!(?peer, cut, "socket buffer full: cut the TCP connection");
    }
}

/// A TCP listener whose connections can be cut (and have TCP_NODELAY set:
/// axum does not set it, and small delta frames must not wait for Nagle).
pub struct CuttableListener {
    inner: TcpListener,
    connections: Arc<Connections>,
}

impl CuttableListener {
    pub fn new(inner: TcpListener, connections: Arc<Connections>) -> Self {
        CuttableListener { inner, connections }
    }
}

impl axum::serve::Listener for CuttableListener {
    type Io = CuttableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((tcp, peer)) => {
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::warn!(error = %e, "cannot set TCP_NODELAY");
                    }
                    let token = CancellationToken::new();
                    self.connections.lock().insert(peer, token.clone());
                    let stream = CuttableStream {
                        tcp,
                        peer,
                        read_cut: Box::pin(token.clone().cancelled_owned()),
                        write_cut: Box::pin(token.cancelled_owned()),
                        connections: self.connections.clone(),
                    };
                    return (stream, peer);
                }
                // Like axum's own loop: out of file descriptors and the like
                // are temporary; wait and accept again.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; retrying in 100 ms");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// One accepted connection; reads and writes fail once it is cut.
pub struct CuttableStream {
    tcp: TcpStream,
    peer: SocketAddr,
    // Separate futures, so a reader and a writer in different tasks are both woken.
    read_cut: Pin<Box<WaitForCancellationFutureOwned>>,
    write_cut: Pin<Box<WaitForCancellationFutureOwned>>,
    connections: Arc<Connections>,
}

fn cut_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionReset,
        "connection cut by the server",
    )
}

impl AsyncRead for CuttableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.read_cut.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(cut_error()));
        }
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for CuttableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.write_cut.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(cut_error()));
        }
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.write_cut.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(cut_error()));
        }
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.write_cut.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(cut_error()));
        }
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

impl Drop for CuttableStream {
    fn drop(&mut self) {
        self.connections.lock().remove(&self.peer);
    }
}
