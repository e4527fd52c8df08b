//! TCP connections the server can cut.
//!
//! socketioxide disconnects a socket by queueing a disconnect packet, and
//! when the socket's buffer is full (a slow consumer, or a reset while
//! clients lag) that does nothing at all: the socket would live on until the
//! next heartbeat found the buffer full, up to 25 s later. So the listener
//! registers every accepted connection here, and [`disconnect`] cuts the TCP
//! connection itself when the polite way fails. The client then sees its
//! connection end, never a silent hole in a stream.
//!
//! The listener also bounds what a connection may hold (the mock's `axum`
//! server has no timeouts of its own): at most [`Limits::max_connections`]
//! open at once (more are closed on accept, with a log line); every
//! request head (also the next one on a keep-alive connection) must arrive
//! within [`Limits::head_timeout`] ([`serve`]); a connection that sends
//! nothing for [`Limits::idle_timeout`] is closed (a socket.io client answers
//! the server's ping every 25 s, so a live one never is); on shutdown,
//! connections still open after a short grace are cut. The answers the HTTP
//! layer writes by itself (400, 414, 431 for a request it cannot parse) are
//! rewritten into the error envelope ([`early_errors`]).

mod early_errors;
mod serve;
mod sockets;

pub use serve::serve;
pub use sockets::{Written, cut_carrier, disconnect};

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// The peer address of a request, as `ConnectInfo<Peer>` in its extensions
/// (a local type: axum's `Connected` cannot be implemented for `SocketAddr`
/// on a listener of ours).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// Whether a connection was cut: a flag for the checks before every read
/// and write (a token check takes a lock; this is on the path of every
/// delta), and the token that wakes a read or write waiting on the socket.
#[derive(Debug, Default)]
struct Cut {
    flag: AtomicBool,
    token: CancellationToken,
    /// Bytes written to the connection so far.
    written: std::sync::atomic::AtomicU64,
    /// The socket.io socket this connection carries after an upgrade.
    upgrade_of: std::sync::OnceLock<String>,
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

/// Bounds on connections (`--max-connections`, and the read timeouts).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once; more are closed when accepted.
    pub max_connections: usize,
    /// For each request head, from when the server waits for it.
    pub head_timeout: std::time::Duration,
    /// A connection that sends nothing this long is closed.
    pub idle_timeout: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10_000,
            head_timeout: std::time::Duration::from_secs(10),
            idle_timeout: std::time::Duration::from_secs(60),
        }
    }
}

/// Open connections by peer address.
#[derive(Debug, Default)]
pub struct Connections {
    open: Mutex<HashMap<SocketAddr, Arc<Cut>>>,
    /// The connection each upgraded socket.io socket moved to, by socket id.
    upgrades: Mutex<HashMap<String, SocketAddr>>,
    limits: Limits,
    /// When the last "too many connections" line was logged (seconds since
    /// the epoch), so a flood logs once a second, not once a connection.
    refused_logged: std::sync::atomic::AtomicU64,
}

impl Connections {
    pub fn new(limits: Limits) -> Self {
        Connections {
            limits,
            ..Connections::default()
        }
    }

    /// Cuts every open connection (the end of a graceful shutdown).
    pub fn cut_all(&self) {
        for (_, cut) in self.lock().drain() {
            cut.cut();
        }
    }

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
                    if self.connections.len() >= self.connections.limits.max_connections {
                        let now = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_secs());
                        if self.connections.refused_logged.swap(now, Ordering::Relaxed) != now {
                            tracing::warn!(%peer, max = self.connections.limits.max_connections,
                                "too many connections: closing new ones (--max-connections)");
                        }
                        drop(tcp);
                        continue;
                    }
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::warn!(error = %e, "cannot set TCP_NODELAY");
                    }
                    let cut = Arc::new(Cut::default());
                    self.connections.lock().insert(peer, cut.clone());
                    let limits = self.connections.limits;
                    let stream = CuttableStream {
                        tcp,
                        peer,
                        deadline: Box::pin(tokio::time::sleep(limits.idle_timeout)),
                        rewrite: None,
                        upgraded: false,
                        last_write: tokio::time::Instant::now(),
                        limits,
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
    /// When the connection is closed unless it sends something.
    deadline: Pin<Box<tokio::time::Sleep>>,
    /// The last write: a connection the server is still writing to (a
    /// stream, a keep-alive) is not idle.
    last_write: tokio::time::Instant,
    limits: Limits,
    /// An HTTP-layer error answer, rewritten, and how much of it is out.
    rewrite: Option<(Vec<u8>, usize)>,
    /// The connection switched protocols (a WebSocket): what is written
    /// from then on is frames, never an HTTP answer to rewrite (the rest of
    /// a frame may begin with any text a client sent).
    upgraded: bool,
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
        let before = buf.filled().len();
        let read = unless_cut(&this.cut, this.read_cut.as_mut(), cx, |cx| {
            Pin::new(&mut this.tcp).poll_read(cx, buf)
        });
        match read {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    let next = tokio::time::Instant::now() + this.limits.idle_timeout;
                    this.deadline.as_mut().reset(next);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.deadline.as_mut().poll(cx).is_ready() => {
                let busy_until = this.last_write + this.limits.idle_timeout;
                if busy_until > tokio::time::Instant::now() {
                    // Written to since: not idle. Wait from the last write.
                    this.deadline.as_mut().reset(busy_until);
                    let _ = this.deadline.as_mut().poll(cx);
                    return Poll::Pending;
                }
                tracing::debug!(peer = %this.peer, "idle: closing the connection");
                this.connections.lock().remove(&this.peer);
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "nothing sent within the idle timeout",
                )))
            }
            other => other,
        }
    }
}

impl CuttableStream {
    /// Writes what is left of a rewritten answer; ready once it is all out.
    fn drain_rewrite(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((answer, sent)) = &mut self.rewrite {
            if *sent == answer.len() {
                return Poll::Ready(Ok(()));
            }
            let tcp = &mut self.tcp;
            let n = std::task::ready!(unless_cut(&self.cut, self.write_cut.as_mut(), cx, |cx| {
                Pin::new(tcp).poll_write(cx, &answer[*sent..])
            }))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *sent += n;
        }
        Poll::Ready(Ok(()))
    }

    /// Takes `written` in place of writing it when it is one of the HTTP
    /// layer's bodiless error answers ([`early_errors`]).
    fn take_early_error(&mut self, written: &[u8]) -> bool {
        match early_errors::rewrite(written) {
            Some(answer) => {
                self.rewrite = Some((answer, 0));
                true
            }
            None => false,
        }
    }
}

impl AsyncWrite for CuttableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        std::task::ready!(this.drain_rewrite(cx))?;
        if !this.upgraded {
            if buf.starts_with(b"HTTP/1.1 101 ") {
                this.upgraded = true;
            } else if buf.starts_with(b"HTTP/1.1 4") && this.take_early_error(buf) {
                let _ = this.drain_rewrite(cx)?;
                return Poll::Ready(Ok(buf.len()));
            }
        }
        let written = unless_cut(&this.cut, this.write_cut.as_mut(), cx, |cx| {
            Pin::new(&mut this.tcp).poll_write(cx, buf)
        });
        if let Poll::Ready(Ok(n @ 1..)) = written {
            this.last_write = tokio::time::Instant::now();
            this.cut.written.fetch_add(n as u64, Ordering::Relaxed);
        }
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        std::task::ready!(this.drain_rewrite(cx))?;
        let first = bufs.iter().find(|b| !b.is_empty());
        if first.is_some_and(|b| b.starts_with(b"HTTP/1.1 101 ")) {
            this.upgraded = true;
        }
        if !this.upgraded && first.is_some_and(|b| b.starts_with(b"HTTP/1.1 4")) {
            let whole: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            if this.take_early_error(&whole) {
                let _ = this.drain_rewrite(cx)?;
                return Poll::Ready(Ok(whole.len()));
            }
        }
        let written = unless_cut(&this.cut, this.write_cut.as_mut(), cx, |cx| {
            Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs)
        });
        if let Poll::Ready(Ok(n @ 1..)) = written {
            this.last_write = tokio::time::Instant::now();
            this.cut.written.fetch_add(n as u64, Ordering::Relaxed);
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        std::task::ready!(this.drain_rewrite(cx))?;
        unless_cut(&this.cut, this.write_cut.as_mut(), cx, |cx| {
            Pin::new(&mut this.tcp).poll_flush(cx)
        })
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.drain_rewrite(cx))?;
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

impl Drop for CuttableStream {
    fn drop(&mut self) {
        self.connections.lock().remove(&self.peer);
        if let Some(sid) = self.cut.upgrade_of.get() {
            self.connections.forget_upgrade(sid, self.peer);
        }
    }
}
