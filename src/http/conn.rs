//! HTTP connections, bounded: at most [`MAX_CONNECTIONS`] open at once
//! (more wait in the kernel's accept queue), and each closed once the
//! server has written nothing to it for a while.
//!
//! axum's `serve` sets neither: hyper reads a request's headers for as
//! long as the client takes to send them (its header timeout needs a timer
//! that `serve` does not give it), and accepts without limit, so a few
//! thousand connections sending a header byte a minute would hold every
//! file descriptor the process has (the store's included). A connection
//! here must see a byte of reply within the idle time of the first byte
//! of its request (or of its accept, or of its last byte written): a
//! request is answered within `render_timeout`, so only a connection that
//! sends no complete request, or does not read its reply, runs out of it.
//! Bytes trickled in after the first do not buy more time.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Connections served at once: far more than dashboards open, far fewer
/// than the descriptors the process may hold.
pub const MAX_CONNECTIONS: usize = 512;

/// The accepting side: a listener that waits for a free connection slot
/// before it accepts.
pub struct Bounded {
    listener: TcpListener,
    slots: Arc<Semaphore>,
    idle: Duration,
}

impl Bounded {
    /// `max` connections at once, each closed after `idle` without a byte
    /// written to it.
    pub fn new(listener: TcpListener, max: usize, idle: Duration) -> Bounded {
        Bounded {
            listener,
            slots: Arc::new(Semaphore::new(max.max(1))),
            idle,
        }
    }
}

impl axum::serve::Listener for Bounded {
    type Io = Conn;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Conn, std::net::SocketAddr) {
        let slot = match self.slots.clone().acquire_owned().await {
            Ok(s) => s,
            // Never closed; wait for ever rather than accept unbounded.
            Err(_) => std::future::pending().await,
        };
        loop {
            match self.listener.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    let conn = Conn {
                        stream,
                        _slot: slot,
                        idle: self.idle,
                        deadline: Box::pin(tokio::time::sleep(self.idle)),
                        awaiting_request: true,
                    };
                    return (conn, addr);
                }
                // Out of descriptors, or a connection reset before it was
                // accepted: wait a little rather than spin.
                Err(e) => {
                    tracing::debug!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }
}

/// One accepted connection: its slot, and when it is closed if nothing
/// more is written to it.
pub struct Conn {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    /// Nothing read since the last byte written: the next bytes read
    /// start a request, and its time.
    awaiting_request: bool,
}

impl Conn {
    fn restart_clock(&mut self) {
        let next = Instant::now() + self.idle;
        self.deadline.as_mut().reset(next);
    }

    /// `Err(TimedOut)` once the idle time has run out (and the waker is
    /// registered for when it does).
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "HTTP connection idle: nothing written to it for too long",
            )),
            Poll::Pending => Ok(()),
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Pending => this
                .poll_idle(cx)
                .map_or_else(|e| Poll::Ready(Err(e)), |()| Poll::Pending),
            ready => ready,
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    this.awaiting_request = true;
                    this.restart_clock();
                }
                Poll::Ready(Ok(n))
            }
            // A client that does not read its reply runs out of time too.
            Poll::Pending => this
                .poll_idle(cx)
                .map_or_else(|e| Poll::Ready(Err(e)), |()| Poll::Pending),
            err => err,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    this.awaiting_request = true;
                    this.restart_clock();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending => this
                .poll_idle(cx)
                .map_or_else(|e| Poll::Ready(Err(e)), |()| Poll::Pending),
            err => err,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// Serves `/health` through [`Bounded`] on a loopback port.
    async fn serve(max: usize, idle: Duration) -> std::net::SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let app = axum::Router::new().route("/health", axum::routing::get(|| async { "ok\n" }));
        tokio::spawn(async move {
            let _ = axum::serve(Bounded::new(l, max, idle), app).await;
        });
        addr
    }

    fn client(addr: std::net::SocketAddr) -> std::net::TcpStream {
        let c = std::net::TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        c
    }

    /// A connection that never sends a whole request is closed at the
    /// idle time, however it trickles bytes; one that does is answered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_that_sends_no_request_is_closed() {
        let addr = serve(4, Duration::from_millis(200)).await;
        tokio::task::spawn_blocking(move || {
            let mut slow = client(addr);
            slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            // A header byte every 50 ms does not keep it open (past 5 s,
            // the server has not closed it and the read below fails).
            for _ in 0..100 {
                std::thread::sleep(Duration::from_millis(50));
                if slow.write_all(b"X").is_err() {
                    break;
                }
            }
            let mut got = Vec::new();
            // EOF (or a reset) without a reply, well before the client's
            // own 30 s read timeout.
            let r = slow.read_to_end(&mut got);
            assert!(r.is_ok() || r.unwrap_err().kind() != io::ErrorKind::WouldBlock);
            assert!(!String::from_utf8_lossy(&got).contains("ok\n"));
            let mut fine = client(addr);
            fine.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut reply = String::new();
            fine.read_to_string(&mut reply).unwrap();
            assert!(
                reply.starts_with("HTTP/1.1 200") && reply.ends_with("ok\n"),
                "{reply}"
            );
        })
        .await
        .unwrap();
    }

    /// Past the connection limit, a connection is accepted only once
    /// another has closed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_past_the_limit_wait_for_a_free_one() {
        let addr = serve(1, Duration::from_secs(60)).await;
        tokio::task::spawn_blocking(move || {
            let mut first = client(addr);
            first
                .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let mut buf = [0u8; 256];
            assert!(first.read(&mut buf).unwrap() > 0);
            // The first is kept alive; the second waits for its slot.
            let mut second = client(addr);
            second
                .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            second
                .set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            let waiting = second.read(&mut buf);
            assert!(waiting.is_err(), "answered past the limit: {waiting:?}");
            drop(first);
            second
                .set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            let mut reply = String::new();
            second.read_to_string(&mut reply).unwrap();
            assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        })
        .await
        .unwrap();
    }
}
