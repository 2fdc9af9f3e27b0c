//! Sockets only: they receive bytes and hand them on. The statsd receivers
//! (`tcp`, `udp`) hand bytes to the aggregator and parse nothing; the carbon
//! receivers (`carbon`) parse lines with `protocol::carbon` and hand the
//! points to a sink. The statsd receivers never wait on disk; the carbon
//! ones wait only as long as their sink's `write_points` does.

pub mod carbon;
pub mod tcp;
pub mod udp;

use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// How often an idle accept loop looks at the shutdown flag, in ms.
const ACCEPT_POLL_MS: libc::c_int = 200;

/// At shutdown, how long a receiver goes on reading what its socket holds.
/// "Until the socket is empty" alone never ends while a client sends faster
/// than we read (a flood, or a busy fleet at capacity), and the final flush
/// waits for the receivers: past this, what is still arriving is left.
pub(crate) const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(1);

/// When a receiver that began draining at `started` must stop.
pub(crate) fn drain_over(started: &mut Option<std::time::Instant>) -> bool {
    started
        .get_or_insert_with(std::time::Instant::now)
        .elapsed()
        >= DRAIN_LIMIT
}

/// Accepts connections until `shutdown` is set, polling so the loop notices
/// shutdown without a connection arriving.
#[allow(unsafe_code)] // poll(2) on the listener, through libc
pub fn accept_loop(
    listener: &TcpListener,
    shutdown: &AtomicBool,
    mut on_conn: impl FnMut(TcpStream),
) {
    let fd = listener.as_raw_fd();
    while !shutdown.load(Relaxed) {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut pfd, 1, ACCEPT_POLL_MS) };
        if ready <= 0 {
            continue;
        }
        match listener.accept() {
            Ok((stream, _)) => on_conn(stream),
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    }
    // Clients that connected (and may have written) before shutdown but were
    // not accepted yet still get their data read: accept what is queued
    // (for at most DRAIN_LIMIT: a client connecting in a loop keeps the
    // queue from ever being empty).
    let mut started = None;
    if listener.set_nonblocking(true).is_ok() {
        while let Ok((stream, _)) = listener.accept() {
            if drain_over(&mut started) {
                break;
            }
            if stream.set_nonblocking(false).is_ok() {
                on_conn(stream);
            }
        }
    }
}
