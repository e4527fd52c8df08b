//! A Phoenix socket's write side, shared by the push path and the socket's
//! own task.
//!
//! A delivery used to be queued for the socket's task, which woke, took it
//! off, framed it and wrote it: a wake, a task poll and a channel hop for
//! every frame, on top of the write itself, and the wake crossed threads.
//! Now whoever pushes writes the frame straight to the socket when nothing
//! waits before it: a non-blocking write that the kernel takes or refuses.
//! Only what the kernel did not take is kept here, and the socket's task
//! writes it when the socket can take more (docs/BENCHMARKS.md, Thenvoi).
//!
//! Frames never interleave: every write, direct or drained, happens under
//! one lock, and nothing is written directly while anything is kept, so a
//! frame is either written whole or its rest waits at the end of the kept
//! bytes. The bound (the slow-consumer policy, docs/SECURITY.md): frames and
//! bytes kept here, beyond what the kernel's socket buffer took, the
//! WebSocket layer's own pongs included. The frame that crosses it is still
//! kept whole (a frame cut in half would garble the stream), the socket's
//! task is told and closes with 1008 after what is kept, and nothing but
//! the close frame is taken from then on. A kept frame is the push's own shared bytes, not
//! a copy (ten lagging subscribers of one push hold it once), and a drain
//! gathers small kept frames into one write.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes, BytesMut};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf, WriteHalf};
use tokio::sync::Notify;

/// The upgraded connection, as tokio reads and writes it.
pub type Io = TokioIo<Upgraded>;

/// What became of a frame handed to [`Wire::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// The kernel took all of it.
    Written,
    /// Kept (all or its rest) for the socket's task to write.
    Kept,
    /// Kept, but the bound is crossed: the socket's task closes the socket
    /// as a slow consumer (see [`Wire::over`]).
    OverBound,
    /// The socket is closed, closing or cut; nothing was written.
    Gone,
}

/// The write half and what the kernel has not taken yet. `W` is the
/// connection's write half (another writer in this module's tests).
pub struct Wire<W = WriteHalf<Io>> {
    state: Mutex<State<W>>,
    /// Tells the socket's task that bytes are kept.
    kept: Notify,
    frame_limit: usize,
    /// 0: no bound in bytes.
    byte_limit: u64,
}

struct State<W> {
    /// `None` once the socket failed or is shut.
    out: Option<W>,
    /// Kept chunks, oldest first, each with the number of frames that end
    /// in it (the first chunk may be the rest of a frame; a gathered chunk
    /// holds several).
    pending: VecDeque<(Bytes, usize)>,
    /// Their bytes.
    pending_len: usize,
    /// Frames kept, not yet wholly written.
    frames: usize,
    /// Why the bound was crossed, if it was.
    over: Option<&'static str>,
    /// The close frame is in: nothing more is taken.
    closing: bool,
}

impl<W: AsyncWrite + Unpin> std::fmt::Debug for Wire<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wire")
            .field("unsent", &self.unsent())
            .finish()
    }
}

impl<W: AsyncWrite + Unpin> Wire<W> {
    pub fn new(out: W, frame_limit: usize, byte_limit: u64) -> Wire<W> {
        Wire {
            state: Mutex::new(State {
                out: Some(out),
                pending: VecDeque::new(),
                pending_len: 0,
                frames: 0,
                over: None,
                closing: false,
            }),
            kept: Notify::new(),
            frame_limit: frame_limit.max(1),
            byte_limit,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<W>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes one whole WebSocket frame now if the kernel takes it; keeps
    /// what it does not take, within the bound.
    pub fn send(&self, frame: &Bytes) -> Sent {
        self.put(frame, false)
    }

    /// The close frame: taken even over the bound, and the last one taken.
    pub fn send_close(&self, frame: &Bytes) -> Sent {
        self.put(frame, true)
    }

    fn put(&self, frame: &Bytes, close: bool) -> Sent {
        let mut guard = self.lock();
        let s = &mut *guard;
        if s.closing || (s.over.is_some() && !close) {
            return Sent::Gone;
        }
        s.closing = close;
        let Some(out) = s.out.as_mut() else {
            return Sent::Gone;
        };
        let was_empty = s.pending.is_empty();
        let mut written = 0;
        if was_empty {
            // Not the socket task's waker: nobody waits on this write. When
            // the kernel refuses, the task is told and writes with its own.
            let mut cx = Context::from_waker(Waker::noop());
            while written < frame.len() {
                match Pin::new(&mut *out).poll_write(&mut cx, &frame[written..]) {
                    Poll::Ready(Ok(n)) if n > 0 => written += n,
                    Poll::Ready(_) => {
                        // The connection failed: the socket's task is told,
                        // and ends the socket.
                        s.out = None;
                        drop(guard);
                        self.kept.notify_one();
                        return Sent::Gone;
                    }
                    Poll::Pending => break,
                }
            }
            if written == frame.len() {
                return Sent::Written;
            }
        }
        s.pending.push_back((frame.slice(written..), 1));
        s.pending_len += frame.len() - written;
        s.frames += 1;
        let crossed = if close || s.over.is_some() {
            None
        } else if s.frames > self.frame_limit {
            Some("slow consumer: too many frames queued")
        } else if self.byte_limit > 0 && s.pending_len as u64 > self.byte_limit {
            Some("slow consumer: too many bytes queued")
        } else {
            None
        };
        s.over = s.over.or(crossed);
        drop(guard);
        // The task drains while anything is kept; it needs telling only
        // when that starts, or when it must close.
        if was_empty || crossed.is_some() {
            self.kept.notify_one();
        }
        if crossed.is_some() {
            Sent::OverBound
        } else {
            Sent::Kept
        }
    }

    /// Why the bound was crossed, once it was: the socket's task closes the
    /// socket with 1008 and this reason.
    pub fn over(&self) -> Option<&'static str> {
        self.lock().over
    }

    /// Bytes kept, not yet taken by the kernel.
    pub fn unsent(&self) -> u64 {
        self.lock().pending_len as u64
    }

    /// Whether the connection failed or was shut.
    pub fn is_closed(&self) -> bool {
        self.lock().out.is_none()
    }

    /// Whether bytes are kept.
    pub fn has_pending(&self) -> bool {
        !self.lock().pending.is_empty()
    }

    /// Resolves when kept bytes appeared, the bound was crossed or the
    /// connection failed (since the last call, or before it).
    pub async fn kept(&self) {
        self.kept.notified().await;
    }

    /// Writes kept bytes until none are left (ready) or the socket cannot
    /// take more (pending, woken when it can).
    pub fn poll_drain(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut guard = self.lock();
        let s = &mut *guard;
        loop {
            let Some((front, _)) = s.pending.front_mut() else {
                if s.pending.capacity() > KEEP_CAPACITY {
                    s.pending = VecDeque::new();
                }
                return Poll::Ready(Ok(()));
            };
            if front.len() < GATHER && s.pending.len() > 1 {
                gather(&mut s.pending);
            }
            let Some(out) = s.out.as_mut() else {
                return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
            };
            let Some((front, frames)) = s.pending.front_mut() else {
                continue;
            };
            match Pin::new(out).poll_write(cx, front) {
                Poll::Ready(Ok(n)) if n > 0 => {
                    s.pending_len -= n;
                    if n == front.len() {
                        s.frames -= *frames;
                        s.pending.pop_front();
                    } else {
                        front.advance(n);
                    }
                }
                Poll::Ready(Ok(_)) => {
                    s.out = None;
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Err(e)) => {
                    s.out = None;
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// The end: what is kept goes out (by `deadline`), then the write side
    /// is shut and nothing more is taken.
    pub async fn finish(&self, deadline: tokio::time::Instant) {
        let drained = std::future::poll_fn(|cx| self.poll_drain(cx));
        if let Ok(Ok(())) = tokio::time::timeout_at(deadline, drained).await {
            let shut = std::future::poll_fn(|cx| match self.lock().out.as_mut() {
                Some(out) => Pin::new(out).poll_shutdown(cx),
                None => Poll::Ready(Ok(())),
            });
            let _ = tokio::time::timeout_at(deadline, shut).await;
        }
        let mut s = self.lock();
        s.out = None;
        s.pending = VecDeque::new();
        s.pending_len = 0;
        s.frames = 0;
    }
}

/// Small kept frames are written together, up to this many bytes a write.
const GATHER: usize = 64 * 1024;

/// A drained socket keeps room for this many kept frames, no more (a burst
/// does not hold its peak for the socket's life).
const KEEP_CAPACITY: usize = 64;

/// Joins the first kept chunks, up to [`GATHER`] bytes, into one.
fn gather(pending: &mut VecDeque<(Bytes, usize)>) {
    let mut joined = BytesMut::new();
    let mut frames = 0;
    while let Some((next, n)) = pending.front() {
        if !joined.is_empty() && joined.len() + next.len() > GATHER {
            break;
        }
        joined.extend_from_slice(next);
        frames += n;
        pending.pop_front();
    }
    pending.push_front((joined.freeze(), frames));
}

/// One unmasked server text frame (RFC 6455 5.2): header, then `payload`.
pub fn text_frame(payload: &[u8]) -> Bytes {
    frame(0x81, payload)
}

/// A close frame with its code and reason.
pub fn close_frame(code: u16, reason: &str) -> Bytes {
    let mut body = Vec::with_capacity(2 + reason.len());
    body.extend_from_slice(&code.to_be_bytes());
    // A control frame's payload is at most 125 bytes.
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    body.extend_from_slice(&reason.as_bytes()[..end]);
    frame(0x88, &body)
}

fn frame(first: u8, payload: &[u8]) -> Bytes {
    let n = payload.len();
    let mut f = BytesMut::with_capacity(n + 10);
    f.extend_from_slice(&[first]);
    if n < 126 {
        f.extend_from_slice(&[n as u8]);
    } else if n <= usize::from(u16::MAX) {
        f.extend_from_slice(&[126]);
        f.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        f.extend_from_slice(&[127]);
        f.extend_from_slice(&(n as u64).to_be_bytes());
    }
    f.extend_from_slice(payload);
    f.freeze()
}

/// The socket as the WebSocket reader sees it: reads from the connection,
/// and its own writes (pongs, the answer to a client's close) go through
/// the shared [`Wire`], whole, like every other frame.
pub struct Reader {
    pub read: ReadHalf<Io>,
    /// Anything that lends the wire (the socket's `Conn`).
    pub wire: Arc<dyn AsRef<Wire> + Send + Sync>,
}

impl AsyncRead for Reader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl AsyncWrite for Reader {
    /// Takes all of `buf` or fails: the WebSocket layer hands over whole
    /// frames, and a partial answer would let another frame in between.
    /// Pongs count against the bound like pushes (a client that pings and
    /// never reads is a slow consumer too).
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match (*self.wire).as_ref().send(&Bytes::copy_from_slice(buf)) {
            Sent::Gone => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            _ => Poll::Ready(Ok(buf.len())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A connection that takes at most `budget` bytes, then would block.
    #[derive(Default)]
    struct Trickle {
        taken: Vec<u8>,
        budget: usize,
        writes: usize,
        /// Every write fails (the peer reset the connection).
        reset: bool,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            if self.reset {
                return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
            }
            let n = buf.len().min(self.budget);
            if n == 0 {
                return Poll::Pending;
            }
            self.budget -= n;
            self.writes += 1;
            self.taken.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn out(wire: &Wire<Trickle>) -> std::sync::MutexGuard<'_, State<Trickle>> {
        wire.lock()
    }

    fn drain(wire: &Wire<Trickle>) -> Poll<io::Result<()>> {
        wire.poll_drain(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn a_frame_is_written_at_once_when_the_connection_takes_it() {
        let wire = Wire::new(
            Trickle {
                budget: 100,
                ..Trickle::default()
            },
            8,
            0,
        );
        assert_eq!(wire.send(&Bytes::from_static(b"abc")), Sent::Written);
        assert_eq!(out(&wire).out.as_ref().unwrap().taken, b"abc");
        assert!(!wire.has_pending());
    }

    #[test]
    fn nothing_overtakes_kept_bytes_and_the_drain_writes_them_in_order() {
        let wire = Wire::new(
            Trickle {
                budget: 4,
                ..Trickle::default()
            },
            8,
            0,
        );
        assert_eq!(
            wire.send(&Bytes::from_static(b"AAAAAAAA")),
            Sent::Kept,
            "half of A taken, half kept"
        );
        out(&wire).out.as_mut().unwrap().budget = 100;
        // The connection could take B now, but A's rest is still kept.
        assert_eq!(wire.send(&Bytes::from_static(b"BBBB")), Sent::Kept);
        assert_eq!(out(&wire).out.as_ref().unwrap().taken, b"AAAA");
        assert_eq!(wire.unsent(), 8);
        assert!(matches!(drain(&wire), Poll::Ready(Ok(()))));
        assert_eq!(out(&wire).out.as_ref().unwrap().taken, b"AAAAAAAABBBB");
        assert_eq!(
            wire.send(&Bytes::from_static(b"C")),
            Sent::Written,
            "direct again once drained"
        );
    }

    #[test]
    fn a_drain_that_would_block_keeps_the_rest_for_later() {
        let wire = Wire::new(Trickle::default(), 8, 0);
        assert_eq!(wire.send(&Bytes::from_static(b"0123456789")), Sent::Kept);
        out(&wire).out.as_mut().unwrap().budget = 3;
        assert!(drain(&wire).is_pending());
        assert_eq!(wire.unsent(), 7);
        out(&wire).out.as_mut().unwrap().budget = 100;
        assert!(matches!(drain(&wire), Poll::Ready(Ok(()))));
        assert_eq!(out(&wire).out.as_ref().unwrap().taken, b"0123456789");
    }

    #[test]
    fn small_kept_frames_are_drained_in_order_in_one_write() {
        let wire = Wire::new(Trickle::default(), 8, 0);
        let shared = Bytes::from(vec![b'x'; 100]);
        for frame in [
            &Bytes::from_static(b"one "),
            &shared,
            &Bytes::from_static(b" three"),
        ] {
            assert_eq!(wire.send(frame), Sent::Kept);
        }
        assert_eq!(wire.unsent(), 110);
        out(&wire).out.as_mut().unwrap().budget = 1000;
        assert!(matches!(drain(&wire), Poll::Ready(Ok(()))));
        let state = out(&wire);
        let conn = state.out.as_ref().unwrap();
        assert_eq!(conn.writes, 1);
        assert_eq!(conn.taken.len(), 110);
        assert!(conn.taken.starts_with(b"one xx") && conn.taken.ends_with(b"xx three"));
    }

    #[tokio::test]
    async fn a_failed_write_closes_the_wire_and_wakes_the_sockets_task() {
        let wire = Wire::new(
            Trickle {
                reset: true,
                ..Trickle::default()
            },
            8,
            0,
        );
        assert_eq!(wire.send(&Bytes::from_static(b"x")), Sent::Gone);
        assert!(wire.is_closed());
        tokio::time::timeout(Duration::from_secs(1), wire.kept())
            .await
            .expect("the socket's task is woken");
        assert_eq!(wire.send(&Bytes::from_static(b"y")), Sent::Gone);
    }

    #[test]
    fn crossing_the_bound_keeps_that_frame_whole_then_takes_only_the_close() {
        let wire = Wire::new(Trickle::default(), 2, 10);
        assert_eq!(wire.send(&Bytes::from_static(b"12345")), Sent::Kept);
        assert_eq!(wire.over(), None);
        assert_eq!(wire.send(&Bytes::from_static(b"678901")), Sent::OverBound);
        assert_eq!(wire.over(), Some("slow consumer: too many bytes queued"));
        assert_eq!(wire.unsent(), 11, "the crossing frame is kept whole");
        assert_eq!(wire.send(&Bytes::from_static(b"late")), Sent::Gone);
        assert_eq!(wire.send_close(&Bytes::from_static(b"close")), Sent::Kept);
        assert_eq!(
            wire.send_close(&Bytes::from_static(b"again")),
            Sent::Gone,
            "nothing after the close frame"
        );
        out(&wire).out.as_mut().unwrap().budget = 100;
        assert!(matches!(drain(&wire), Poll::Ready(Ok(()))));
        assert_eq!(out(&wire).out.as_ref().unwrap().taken, b"12345678901close");
    }

    #[test]
    fn the_frame_bound_counts_frames_still_kept_not_frames_ever_kept() {
        // Frames too big to be gathered, so each goes out on its own.
        let big = || Bytes::from(vec![b'x'; GATHER + 1]);
        let wire = Wire::new(Trickle::default(), 2, 0);
        assert_eq!(wire.send(&big()), Sent::Kept);
        assert_eq!(wire.send(&big()), Sent::Kept);
        // The socket takes the first and not yet the second: bytes are
        // still kept, but one frame fewer.
        out(&wire).out.as_mut().unwrap().budget = GATHER + 1;
        assert!(drain(&wire).is_pending());
        assert_eq!(wire.send(&big()), Sent::Kept);
        assert_eq!(wire.over(), None);
        assert_eq!(wire.send(&big()), Sent::OverBound);
        assert_eq!(wire.over(), Some("slow consumer: too many frames queued"));
    }

    #[test]
    fn frame_headers_use_the_shortest_length_form() {
        assert_eq!(&text_frame(b"hi")[..], b"\x81\x02hi");
        let mid = text_frame(&[b'a'; 126]);
        assert_eq!(&mid[..4], &[0x81, 126, 0, 126]);
        assert_eq!(mid.len(), 4 + 126);
        let big = text_frame(&vec![b'a'; 70_000]);
        assert_eq!(&big[..2], &[0x81, 127]);
        assert_eq!(u64::from_be_bytes(big[2..10].try_into().unwrap()), 70_000);
    }

    #[test]
    fn a_close_reason_is_cut_to_fit_a_control_frame_on_a_character_boundary() {
        let f = close_frame(1008, &"é".repeat(100));
        assert_eq!(f[0], 0x88);
        assert!(f[1] <= 125);
        assert!(std::str::from_utf8(&f[4..]).is_ok());
    }
}
