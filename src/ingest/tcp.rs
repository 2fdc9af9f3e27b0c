//! statsd over newline-delimited TCP. Each read hands the complete lines it
//! holds to the aggregator as one packet (as Etsy's TCP server does); a
//! partial line waits for the rest. A line longer than `max_line_length` is
//! counted as bad and skipped up to its newline. A connection that sends
//! nothing for `tcp_idle_timeout` is closed, so idle (or never-speaking)
//! clients cannot hold every one of the `max_tcp_connections` slots.
//!
//! The connection handling and framing (`serve_connections`, `read_lines`,
//! [`Framer`]) know nothing of statsd: the carbon receiver uses them too.

use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::aggregate::{Aggregator, Scratch};
use crate::ingest::accept_loop;
use crate::protocol::statsd::BadReason;
use crate::telemetry::{Listener, LocalCounts};

const READ_TIMEOUT: Duration = Duration::from_millis(200);

/// What a line-oriented TCP listener allows.
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    /// Longest line; longer ones are counted as bad and skipped.
    pub max_line: usize,
    /// Connections served at once; more are closed unread and counted.
    pub max_connections: usize,
    /// A connection that sends nothing for this long is closed; `None`
    /// keeps it forever.
    pub idle_timeout: Option<Duration>,
}

/// Serves statsd TCP connections until shutdown.
pub fn start(
    listener: TcpListener,
    limits: TcpLimits,
    agg: Arc<Aggregator>,
    shutdown: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    let TcpLimits {
        max_line,
        max_connections,
        idle_timeout,
    } = limits;
    let refused = agg.clone();
    serve_connections(
        "statsd-tcp",
        listener,
        max_connections,
        shutdown,
        move || {
            refused
                .telemetry()
                .connection_refused(Listener::StatsdTcp, max_connections)
        },
        move |stream, shutdown| {
            let mut packets = Packets {
                agg: &agg,
                scratch: Scratch::default(),
                counts: LocalCounts::default(),
            };
            read_lines(stream, max_line, idle_timeout, shutdown, &mut packets);
        },
    )
}

/// Accepts connections on a thread named `name` until shutdown, and runs
/// `serve` for each on a thread of its own, at most `max_connections` at
/// once; past that a connection is closed unread after `on_refused`. Once
/// shutdown is asked for, connections already queued are still accepted
/// (see [`accept_loop`]), and the returned thread ends when every
/// connection's has.
pub(crate) fn serve_connections<S>(
    name: &str,
    listener: TcpListener,
    max_connections: usize,
    shutdown: Arc<AtomicBool>,
    on_refused: impl Fn() + Send + 'static,
    serve: S,
) -> io::Result<JoinHandle<()>>
where
    S: Fn(TcpStream, &AtomicBool) + Send + Sync + 'static,
{
    let active = Arc::new(AtomicUsize::new(0));
    let serve = Arc::new(serve);
    let conn_name = format!("{name}-conn");
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let mut conns: Vec<JoinHandle<()>> = Vec::new();
            accept_loop(&listener, &shutdown, |stream| {
                conns.retain(|h| !h.is_finished());
                if active.load(Relaxed) >= max_connections {
                    on_refused();
                    return;
                }
                active.fetch_add(1, Relaxed);
                let (serve, shutdown, done) = (serve.clone(), shutdown.clone(), active.clone());
                match std::thread::Builder::new()
                    .name(conn_name.clone())
                    .spawn(move || {
                        serve(stream, &shutdown);
                        done.fetch_sub(1, Relaxed);
                    }) {
                    Ok(h) => conns.push(h),
                    Err(e) => {
                        active.fetch_sub(1, Relaxed);
                        tracing::error!(error = %e, "cannot start a TCP connection thread");
                    }
                }
            });
            for h in conns {
                let _ = h.join();
            }
        })
}

/// Where [`read_lines`] hands a connection's bytes.
pub(crate) trait LineConsumer {
    /// Complete lines, each with its newline; or, once the stream has
    /// ended, a last line without one.
    fn lines(&mut self, lines: &[u8]);
    /// `count` lines longer than the limit were skipped.
    fn overlong(&mut self, count: u64);
    /// Everything one read brought has been handed over.
    fn read_done(&mut self);
}

/// Reads a connection to its end, framing it into lines for `out`. Once
/// shutdown is asked for, it reads only what has already arrived (for at
/// most [`crate::ingest::DRAIN_LIMIT`]), then stops. A connection that sends nothing for `idle_timeout` is closed (its
/// last partial line, if any, counts as the client's last line).
pub(crate) fn read_lines(
    mut stream: TcpStream,
    max_line: usize,
    idle_timeout: Option<Duration>,
    shutdown: &AtomicBool,
    out: &mut impl LineConsumer,
) {
    if stream.set_read_timeout(Some(READ_TIMEOUT)).is_err() {
        return;
    }
    let mut framer = Framer::new(max_line);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut last_data = Instant::now();
    let mut drain_started = None;
    loop {
        let draining = shutdown.load(Relaxed);
        if draining {
            if crate::ingest::drain_over(&mut drain_started) {
                break;
            }
            let _ = stream.set_nonblocking(true);
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                last_data = Instant::now();
                framer.push(&chunk[..n], |lines, overlong| {
                    if overlong > 0 {
                        out.overlong(overlong);
                    }
                    if !lines.is_empty() {
                        out.lines(lines);
                    }
                });
                out.read_done();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if draining {
                    break;
                }
                if idle_timeout.is_some_and(|t| last_data.elapsed() >= t) {
                    tracing::debug!(peer = ?stream.peer_addr().ok(), "closing an idle TCP connection");
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    // A last line without its newline is still data the client sent.
    if let Some(rest) = framer.finish() {
        out.lines(rest);
    }
    out.read_done();
}

/// A statsd connection: each read's lines go to the aggregator as one
/// packet.
struct Packets<'a> {
    agg: &'a Aggregator,
    scratch: Scratch,
    counts: LocalCounts,
}

impl LineConsumer for Packets<'_> {
    fn lines(&mut self, lines: &[u8]) {
        self.agg
            .ingest_packet(lines, false, &mut self.scratch, &mut self.counts);
    }

    fn overlong(&mut self, count: u64) {
        self.counts.lines += count;
        self.counts.bad[BadReason::Truncated.index()] += count;
        self.agg
            .telemetry()
            .log_bad_line(BadReason::Truncated, b"(line longer than max_line_length)");
    }

    fn read_done(&mut self) {
        self.agg.telemetry().publish(&mut self.counts);
    }
}

/// Cuts a byte stream into runs of complete lines.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    max_line: usize,
    /// Inside an overlong line: drop bytes up to the next newline.
    skipping: bool,
}

impl Framer {
    pub fn new(max_line: usize) -> Self {
        Framer {
            buf: Vec::new(),
            max_line,
            skipping: false,
        }
    }

    /// Feeds bytes; calls `emit(complete_lines, overlong_lines_skipped)`.
    pub fn push(&mut self, mut data: &[u8], mut emit: impl FnMut(&[u8], u64)) {
        let mut overlong = 0;
        if self.skipping {
            match data.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.skipping = false;
                    data = &data[i + 1..];
                }
                None => return,
            }
        }
        match data.iter().rposition(|&b| b == b'\n') {
            Some(last) => {
                if self.buf.is_empty() {
                    overlong += emit_runs(&data[..=last], self.max_line, &mut emit);
                } else {
                    self.buf.extend_from_slice(&data[..=last]);
                    overlong += emit_runs(&self.buf, self.max_line, &mut emit);
                    self.buf.clear();
                }
                data = &data[last + 1..];
            }
            None if self.buf.is_empty() && data.is_empty() => return,
            None => {}
        }
        self.buf.extend_from_slice(data);
        if self.buf.len() > self.max_line {
            self.buf.clear();
            self.skipping = true;
            overlong += 1;
        }
        if overlong > 0 {
            emit(&[], overlong);
        }
    }

    /// What is left once the stream ends (a line without a newline).
    pub fn finish(&mut self) -> Option<&[u8]> {
        (!self.buf.is_empty() && !self.skipping).then_some(&self.buf[..])
    }
}

/// Emits the complete lines of `chunk` (which ends with a newline) in runs,
/// leaving out every line longer than `max_line`; returns how many it left
/// out. A chunk no longer than `max_line` cannot hold such a line, so the
/// common case is not scanned here.
fn emit_runs(chunk: &[u8], max_line: usize, emit: &mut impl FnMut(&[u8], u64)) -> u64 {
    if chunk.len() <= max_line + 1 {
        emit(chunk, 0);
        return 0;
    }
    let mut overlong = 0;
    let (mut run_start, mut line_start) = (0, 0);
    for (i, &b) in chunk.iter().enumerate() {
        if b != b'\n' {
            continue;
        }
        if i - line_start > max_line {
            if run_start < line_start {
                emit(&chunk[run_start..line_start], 0);
            }
            overlong += 1;
            run_start = i + 1;
        }
        line_start = i + 1;
    }
    if run_start < chunk.len() {
        emit(&chunk[run_start..], 0);
    }
    overlong
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(f: &mut Framer, data: &[u8]) -> (Vec<String>, u64) {
        let mut out = Vec::new();
        let mut bad = 0;
        f.push(data, |p, o| {
            if !p.is_empty() {
                out.push(String::from_utf8(p.to_vec()).unwrap());
            }
            bad += o;
        });
        (out, bad)
    }

    #[test]
    fn lines_split_across_reads_are_joined() {
        let mut f = Framer::new(100);
        assert_eq!(feed(&mut f, b"a:1|c\nb:"), (vec!["a:1|c\n".to_string()], 0));
        assert_eq!(feed(&mut f, b"2|c\n"), (vec!["b:2|c\n".to_string()], 0));
        assert_eq!(feed(&mut f, b"c:3|c"), (vec![], 0));
        assert_eq!(f.finish(), Some(&b"c:3|c"[..]));
    }

    #[test]
    fn overlong_line_is_counted_and_skipped() {
        let mut f = Framer::new(64);
        let long = vec![b'x'; 100];
        assert_eq!(feed(&mut f, &long), (vec![], 1));
        assert_eq!(
            feed(&mut f, b"xxxx\nok:1|c\n"),
            (vec!["ok:1|c\n".to_string()], 0)
        );
        assert_eq!(f.finish(), None);
    }

    #[test]
    fn overlong_complete_line_in_one_read_is_counted_and_skipped() {
        let mut f = Framer::new(64);
        let data = format!("a:1|c\n{}:1|c\nb:2|c\n", "y".repeat(100));
        assert_eq!(
            feed(&mut f, data.as_bytes()),
            (vec!["a:1|c\n".to_string(), "b:2|c\n".to_string()], 1)
        );
        // A partial line that grows past the limit with its end.
        let mut f = Framer::new(64);
        assert_eq!(feed(&mut f, "z".repeat(60).as_bytes()), (vec![], 0));
        assert_eq!(
            feed(
                &mut f,
                format!("{}:1|c\nok:1|c\n", "z".repeat(30)).as_bytes()
            ),
            (vec!["ok:1|c\n".to_string()], 1)
        );
    }
}
