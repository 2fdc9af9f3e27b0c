//! One HTTP connection's reply clock: closed once the server has written
//! nothing to it for a while.
//!
//! hyper's header timeout (set in `http::serve`) bounds how long a request
//! head may take, but nothing bounds a client that sends its request and
//! then does not read the reply: a streamed json render would hold its
//! connection (and its render slot) until the client read on. A connection
//! here must see a byte of reply within the idle time of the first byte
//! of its request (or of its accept, or of its last byte written): a
//! request is answered within `render_timeout`, so only a connection that
//! sends no complete request, or does not read its reply, runs out of it.
//! Bytes trickled in after the first do not buy more time. The cap on
//! connections is `http::serve`'s (`max_http_connections`).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// One accepted connection and when it is closed if nothing more is
/// written to it.
pub struct Conn {
    stream: TcpStream,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    /// Nothing read since the last byte written: the next bytes read
    /// start a request, and its time.
    awaiting_request: bool,
}

impl Conn {
    pub fn new(stream: TcpStream, idle: Duration) -> Conn {
        Conn {
            stream,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
            awaiting_request: true,
        }
    }

    fn restart_clock(&mut self) {
        let next = Instant::now() + self.idle;
        self.deadline.as_mut().reset(next);
    }

    /// A write's outcome: bytes written restart the clock (and the next
    /// bytes read start a request); a write that cannot go on runs the
    /// clock, so a client that does not read its reply runs out of time too.
    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match polled {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.awaiting_request = true;
                    self.restart_clock();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending => self
                .poll_idle(cx)
                .map_or_else(|e| Poll::Ready(Err(e)), |()| Poll::Pending),
            err => err,
        }
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
        let polled = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.after_write(cx, polled)
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
        let polled = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.after_write(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// Serves `/health` on a loopback port, each connection through
    /// [`Conn`] and hyper with no header timeout of its own (the clock
    /// here is what is under test).
    async fn serve(idle: Duration) -> std::net::SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let app = axum::Router::new().route("/health", axum::routing::get(|| async { "ok\n" }));
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = l.accept().await else {
                    continue;
                };
                let service = hyper_util::service::TowerToHyperService::new(app.clone());
                let io = hyper_util::rt::TokioIo::new(Conn::new(stream, idle));
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
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
        let addr = serve(Duration::from_millis(200)).await;
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
}
