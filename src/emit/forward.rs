//! Sends every flush to a carbon plaintext receiver.
//!
//! The flusher hands over a finished payload and returns at once; a thread
//! of its own owns the connection. While carbon is down or slow, payloads
//! wait in a queue bounded in bytes; past the bound the oldest are dropped
//! and counted. Reconnects back off from 100 ms to 10 s. Neither ingest nor
//! the flush ever waits on the network.

use std::collections::VecDeque;
use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::graphite::BackendStats;
use crate::telemetry::{unix_now_i64, Telemetry};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// One flush's lines, ready to write.
#[derive(Debug)]
pub struct Payload {
    pub data: Vec<u8>,
    pub lines: u64,
}

#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<Payload>,
    bytes: usize,
    closing: Option<Instant>,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    max_bytes: usize,
    address: String,
    telemetry: Arc<Telemetry>,
    backend: Arc<BackendStats>,
}

/// Handle to the forwarding thread.
pub struct Forwarder {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Forwarder {
    pub fn start(
        address: String,
        max_bytes: usize,
        telemetry: Arc<Telemetry>,
        backend: Arc<BackendStats>,
    ) -> Self {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            max_bytes,
            address,
            telemetry,
            backend,
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("forward-graphite".into())
            .spawn(move || run(&s))
            .expect("spawn forward thread");
        Forwarder {
            shared,
            thread: Some(thread),
        }
    }

    /// Queues a payload, dropping the oldest ones if it does not fit.
    pub fn send(&self, p: Payload) {
        let mut q = self.shared.queue.lock();
        let mut dropped = 0;
        while q.bytes + p.data.len() > self.shared.max_bytes {
            match q.items.pop_front() {
                Some(old) => {
                    q.bytes -= old.data.len();
                    dropped += old.lines;
                }
                None => break,
            }
        }
        if dropped > 0 {
            self.shared
                .telemetry
                .forward_lines_dropped
                .fetch_add(dropped, Relaxed);
            tracing::warn!(
                address = %self.shared.address,
                lines = dropped,
                "carbon forward queue full: dropped the oldest flushes"
            );
        }
        q.bytes += p.data.len();
        q.items.push_back(p);
        drop(q);
        self.shared.wake.notify_one();
    }

    /// Payloads waiting to be sent.
    pub fn queued(&self) -> usize {
        self.shared.queue.lock().items.len()
    }

    /// Tries to send what is queued for up to `grace`, then stops.
    pub fn shutdown(mut self, grace: Duration) {
        self.shared.queue.lock().closing = Some(Instant::now() + grace);
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(s: &Shared) {
    let mut conn: Option<TcpStream> = None;
    let mut backoff = MIN_BACKOFF;
    let mut failing = false;
    loop {
        let payload = {
            let mut q = s.queue.lock();
            loop {
                if let Some(deadline) = q.closing {
                    if q.items.is_empty() || Instant::now() >= deadline {
                        let left: u64 = q.items.iter().map(|p| p.lines).sum();
                        if left > 0 {
                            s.telemetry.forward_lines_dropped.fetch_add(left, Relaxed);
                            tracing::error!(address = %s.address, lines = left, "shutting down with unsent carbon lines");
                        }
                        return;
                    }
                }
                if let Some(p) = q.items.pop_front() {
                    q.bytes -= p.data.len();
                    break p;
                }
                s.wake.wait_for(&mut q, Duration::from_millis(500));
            }
        };
        match write(s, &mut conn, &payload) {
            Ok(took) => {
                if failing {
                    tracing::info!(address = %s.address, "carbon reachable again");
                }
                failing = false;
                backoff = MIN_BACKOFF;
                s.backend
                    .flush_time_ms
                    .store(u64::try_from(took.as_millis()).unwrap_or(u64::MAX), Relaxed);
                s.backend
                    .flush_length
                    .store(payload.data.len() as u64, Relaxed);
                s.backend.last_flush.store(unix_now_i64(), Relaxed);
            }
            Err(e) => {
                conn = None;
                s.telemetry.forward_errors.fetch_add(1, Relaxed);
                s.backend.last_exception.store(unix_now_i64(), Relaxed);
                if !failing {
                    tracing::warn!(address = %s.address, error = %e, "cannot send to carbon; queueing and retrying with backoff");
                }
                failing = true;
                // Put it back at the front, unless newer data filled the
                // queue meanwhile (then it is the oldest and is dropped).
                let mut q = s.queue.lock();
                if q.bytes + payload.data.len() <= s.max_bytes {
                    q.bytes += payload.data.len();
                    q.items.push_front(payload);
                } else {
                    s.telemetry
                        .forward_lines_dropped
                        .fetch_add(payload.lines, Relaxed);
                }
                if q.closing.is_none() {
                    s.wake.wait_for(&mut q, backoff);
                } else {
                    drop(q);
                    std::thread::sleep(MIN_BACKOFF);
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

fn write(s: &Shared, conn: &mut Option<TcpStream>, p: &Payload) -> std::io::Result<Duration> {
    if conn.is_none() {
        let addr = s.address.to_socket_addrs()?.next().ok_or_else(|| {
            std::io::Error::other(format!("{} resolves to no address", s.address))
        })?;
        let c = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
        c.set_write_timeout(Some(WRITE_TIMEOUT))?;
        c.set_nodelay(true)?;
        *conn = Some(c);
    }
    let started = Instant::now();
    let c = conn
        .as_mut()
        .ok_or_else(|| std::io::Error::other("no connection"))?;
    c.write_all(&p.data)?;
    c.flush()?;
    Ok(started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    fn payload(s: &str) -> Payload {
        Payload {
            data: s.as_bytes().to_vec(),
            lines: s.lines().count() as u64,
        }
    }

    #[test]
    fn delivers_and_drops_oldest_when_full() {
        let t = Arc::new(Telemetry::new());
        // Nothing listens on this port yet: payloads queue up.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let f = Forwarder::start(
            addr.to_string(),
            40,
            t.clone(),
            Arc::new(BackendStats::default()),
        );
        f.send(payload("a.one 1 10\n"));
        f.send(payload("a.two 2 10\n"));
        f.send(payload("a.three 3 10\n"));
        f.send(payload("a.four 4 10\n"));
        // 4 x ~12 bytes > 40: at least the oldest went.
        std::thread::sleep(Duration::from_millis(50));
        assert!(t.forward_lines_dropped.load(Relaxed) >= 1);
        let listener = TcpListener::bind(addr).unwrap();
        let reader = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
            let mut got = String::new();
            let mut buf = [0u8; 1024];
            while !got.contains("a.four") {
                let n = c.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                got.push_str(std::str::from_utf8(&buf[..n]).unwrap());
            }
            got
        });
        let got = reader.join().unwrap();
        assert!(got.contains("a.four 4 10"), "{got}");
        assert!(
            !got.contains("a.one"),
            "the oldest flush was dropped: {got}"
        );
        f.shutdown(Duration::from_secs(1));
    }
}
