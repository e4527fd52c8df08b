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
use std::sync::atomic::{AtomicBool, Ordering};
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

/// Whether a connection was cut: a flag for the checks before every read
/// and write (a token check takes a lock; this is on the path of every
/// delta), and the token that wakes a read or write waiting on the socket.
#[derive(Debug, Default)]
struct Cut {
    flag: AtomicBool,
    token: CancellationToken,
}

impl Cut {
    fn cut(&self) {
        self.flag.store(true, Ordering::Release);
        self.token.cancel();
    }

    fn is_cut(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }
}

/// Open connections by peer address.
#[derive(Debug, Default)]
pub struct Connections {
    open: Mutex<HashMap<SocketAddr, Arc<Cut>>>,
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Arc<Cut>>> {
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
            Some(cut) => {
                cut.cut();
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
                    let cut = Arc::new(Cut::default());
                    self.connections.lock().insert(peer, cut.clone());
                    let stream = CuttableStream {
                        tcp,
                        peer,
                        read_cut: Box::pin(cut.token.clone().cancelled_owned()),
                        write_cut: Box::pin(cut.token.clone().cancelled_owned()),
                        cut,
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
///
/// Each read or write checks the cut flag first; only one that has to wait
/// on the socket also waits on the cut (a stalled writer, the slow consumer
/// the cut is for, is woken by it).
pub struct CuttableStream {
    tcp: TcpStream,
    peer: SocketAddr,
    cut: Arc<Cut>,
    // Separate futures, so a reader and a writer in different tasks are both woken.
    read_cut: Pin<Box<WaitForCancellationFutureOwned>>,
    write_cut: Pin<Box<WaitForCancellationFutureOwned>>,
    connections: Arc<Connections>,
}

/// `io` unless the connection is cut: checked before, and when `io` has to
/// wait, `cut` is polled too so that a cut wakes the waiting task.
fn unless_cut<T>(
    flag: &Cut,
    cut: Pin<&mut WaitForCancellationFutureOwned>,
    cx: &mut Context<'_>,
    io: impl FnOnce(&mut Context<'_>) -> Poll<io::Result<T>>,
) -> Poll<io::Result<T>> {
    if flag.is_cut() {
        return Poll::Ready(Err(cut_error()));
    }
    match io(cx) {
        Poll::Pending if cut.poll(cx).is_ready() => Poll::Ready(Err(cut_error())),
        other => other,
    }
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
        let this = &mut *self;
        unless_cut(&this.cut, this.read_cut.as_mut(), cx, |cx| {
            Pin::new(&mut this.tcp).poll_read(cx, buf)
        })
    }
}

impl AsyncWrite for CuttableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        unless_cut(&this.cut, this.write_cut.as_mut(), cx, |cx| {
            Pin::new(&mut this.tcp).poll_write(cx, buf)
        })
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        unless_cut(&this.cut, this.write_cut.as_mut(), cx, |cx| {
            Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs)
        })
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        unless_cut(&this.cut, this.write_cut.as_mut(), cx, |cx| {
            Pin::new(&mut this.tcp).poll_flush(cx)
        })
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
