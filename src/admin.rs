//! Etsy's management interface on its own TCP port: `help`, `stats`,
//! `counters`, `timers`, `gauges`, `delcounters`, `deltimers`, `delgauges`,
//! `health [up|down]`, `config`, `quit`. Replies keep Etsy's shapes (the
//! `END` trailers, JavaScript-style object dumps) so existing scripts work.
//! Additions: `totals`, cumulative counts since start, for load tools; and
//! for the store, `find <glob>`, `fetch <name> <from> <until>` (whisper-fetch
//! style; times are epoch seconds or seconds relative to now, `-3600`) and
//! `store` (its counters).
//!
//! The port is bounded like the ingest ones: at most `max_connections`
//! at once (more are closed unread and counted in
//! `statsd.admin_connections_refused`); a line longer than `max_line`
//! bytes is answered `ERROR line longer than ...` and skipped up to its
//! newline, and the connection goes on; a connection that sends no complete
//! command for `idle_timeout`, or does not take its reply within it, is
//! closed. The `config` reply never shows a secret (see [`crate::secret`]).

use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::aggregate::timer::js_number;
use crate::aggregate::{Aggregator, View};
use crate::emit::graphite::BackendStats;
use crate::ingest::tcp::serve_connections;
use crate::protocol::statsd::MetricType;
use crate::store::source::SeriesSource;
use crate::store::Store;
use crate::telemetry::{unix_now_i64, Listener};

/// How often a connection waiting for a command looks at the shutdown flag.
const POLL: Duration = Duration::from_millis(200);

/// What one admin connection may take.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    /// Longest command line, in bytes.
    pub max_line: usize,
    /// A connection with no complete command (or a reply not taken) for
    /// this long is closed.
    pub idle_timeout: Duration,
}

/// What the admin port reads and changes.
pub struct AdminState {
    pub agg: Arc<Aggregator>,
    pub backend: Arc<BackendStats>,
    /// `health down` takes the daemon out of a load balancer's rotation.
    pub healthy: Arc<AtomicBool>,
    pub config_text: String,
    pub started: u64,
    /// The store's own figures (`store`).
    pub store: Option<Arc<Store>>,
    /// What `find` and `fetch` read: the store, or ClickHouse with
    /// `[storage] engine = "clickhouse"` (what render reads).
    pub source: Option<Arc<dyn SeriesSource>>,
}

/// Serves the admin port until shutdown, one thread per connection (they
/// are few and interactive), at most `limits.max_connections` at once.
pub fn start(
    listener: TcpListener,
    state: Arc<AdminState>,
    limits: Limits,
    shutdown: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    let refused = state.agg.clone();
    serve_connections(
        "admin",
        listener,
        limits.max_connections,
        shutdown,
        move || {
            refused
                .telemetry()
                .connection_refused(Listener::Admin, limits.max_connections)
        },
        move |stream, shutdown| serve(stream, &state, &limits, shutdown),
    )
}

fn serve(stream: TcpStream, state: &AdminState, limits: &Limits, shutdown: &AtomicBool) {
    if stream.set_read_timeout(Some(POLL)).is_err()
        || stream
            .set_write_timeout(Some(limits.idle_timeout.max(POLL)))
            .is_err()
    {
        return;
    }
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut lines = LineReader::new(limits.max_line);
    let mut last_command = Instant::now();
    while !shutdown.load(Relaxed) {
        let reply = match lines.next(&mut reader) {
            Ok(Next::Line(line)) => {
                last_command = Instant::now();
                match command(line.trim(), state) {
                    Some(text) => text,
                    None => return,
                }
            }
            Ok(Next::TooLong) => format!(
                "ERROR line longer than max_line_length ({} bytes)\n",
                limits.max_line
            ),
            Ok(Next::End) => return,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if last_command.elapsed() >= limits.idle_timeout {
                    let _ = out.write_all(b"ERROR idle too long; closing\n");
                    return;
                }
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        if out.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// What [`LineReader::next`] found.
#[derive(Debug, PartialEq)]
enum Next {
    /// A complete line, without its newline.
    Line(String),
    /// A line passed the limit; the rest of it, up to its newline, will be
    /// skipped.
    TooLong,
    /// The client closed its side.
    End,
}

/// Newline framing that never holds more than `max` bytes of one line.
/// (`BufRead::read_line` grows its string without limit; the statsd
/// [`crate::ingest::tcp::Framer`] reports over-long lines only after the
/// lines that follow them in the same read, and a command's reply must come
/// in order.) Its state survives a read timeout, so a line may arrive in
/// pieces.
struct LineReader {
    line: Vec<u8>,
    max: usize,
    skipping: bool,
}

impl LineReader {
    fn new(max: usize) -> Self {
        LineReader {
            line: Vec::new(),
            max,
            skipping: false,
        }
    }

    fn next(&mut self, r: &mut impl BufRead) -> io::Result<Next> {
        loop {
            let buf = r.fill_buf()?;
            if buf.is_empty() {
                return Ok(Next::End);
            }
            let newline = buf.iter().position(|&b| b == b'\n');
            let used = newline.map_or(buf.len(), |i| i + 1);
            if !self.skipping {
                let room = (self.max + 1).saturating_sub(self.line.len());
                let part = &buf[..newline.unwrap_or(buf.len())];
                self.line.extend_from_slice(&part[..part.len().min(room)]);
            }
            r.consume(used);
            if self.skipping {
                self.skipping = newline.is_none();
                continue;
            }
            if self.line.len() > self.max {
                self.line.clear();
                self.skipping = newline.is_none();
                return Ok(Next::TooLong);
            }
            if newline.is_some() {
                let line = String::from_utf8_lossy(&self.line).into_owned();
                self.line.clear();
                return Ok(Next::Line(line));
            }
        }
    }
}

/// Runs one command; `None` means close the connection (`quit`).
pub fn command(line: &str, s: &AdminState) -> Option<String> {
    let mut words = line.split(' ').filter(|w| !w.is_empty());
    let cmd = words.next().unwrap_or("");
    let args: Vec<&str> = words.collect();
    let reply = match cmd {
        "help" => "Commands: stats, counters, timers, gauges, delcounters, deltimers, delgauges, health, config, quit, totals, find, fetch, store\n\n".to_string(),
        "stats" => stats(s),
        "counters" => format!("{}\nEND\n\n", inspect(&s.agg.view(MetricType::Counter))),
        "timers" => format!("{}\nEND\n\n", inspect(&s.agg.view(MetricType::Timer))),
        "gauges" => format!("{}\nEND\n\n", inspect(&s.agg.view(MetricType::Gauge))),
        "delcounters" => delete(s, MetricType::Counter, &args),
        "deltimers" => delete(s, MetricType::Timer, &args),
        "delgauges" => delete(s, MetricType::Gauge, &args),
        "health" => {
            match args.first().map(|a| a.to_ascii_lowercase()) {
                Some(a) if a == "up" => s.healthy.store(true, Relaxed),
                Some(a) if a == "down" => s.healthy.store(false, Relaxed),
                _ => {}
            }
            format!("health: {}\n", if s.healthy.load(Relaxed) { "up" } else { "down" })
        }
        "config" => format!("\n{}\n", s.config_text),
        "totals" => totals(s),
        "find" => find(s, &args),
        "fetch" => fetch(s, &args),
        "store" => store_stats(s),
        "quit" => return None,
        _ => "ERROR\n".to_string(),
    };
    Some(reply)
}

fn stats(s: &AdminState) -> String {
    let signed = |secs: u64| i64::try_from(secs).unwrap_or(i64::MAX);
    let now = unix_now_i64();
    let t = s.agg.telemetry();
    let snap = t.snapshot();
    let b = &s.backend;
    format!(
        "uptime: {}\nmessages.last_msg_seen: {}\nmessages.bad_lines_seen: {}\ngraphite.last_flush: {}\ngraphite.last_exception: {}\ngraphite.flush_time: {}\ngraphite.flush_length: {}\ncarbon.points_received: {}\ncarbon.carbon_bad_lines: {}\nEND\n\n",
        now - signed(s.started),
        now - signed(t.last_msg_seen.load(Relaxed)),
        snap.bad_lines_total(),
        now - b.last_flush.load(Relaxed),
        now - b.last_exception.load(Relaxed),
        b.flush_time_ms.load(Relaxed),
        b.flush_length.load(Relaxed),
        snap.carbon_points,
        snap.carbon_bad_lines_total(),
    )
}

fn find(s: &AdminState, args: &[&str]) -> String {
    let (Some(store), [glob]) = (&s.source, args) else {
        return "ERROR usage: find <glob>\n".to_string();
    };
    match store.find(glob, 100_000) {
        Ok(found) => {
            let mut out = String::new();
            for f in found {
                let kind = match (f.leaf.is_some(), f.branch) {
                    (true, true) => "leaf+branch",
                    (true, false) => "leaf",
                    _ => "branch",
                };
                out.push_str(&format!("{} {kind}\n", f.path));
            }
            out + "END\n\n"
        }
        Err(e) => format!("ERROR {e}\n"),
    }
}

fn fetch(s: &AdminState, args: &[&str]) -> String {
    let Some(store) = &s.source else {
        return "ERROR no store\n".to_string();
    };
    let now = unix_now_i64();
    let time = |a: &str| -> Option<i64> {
        let v: i64 = a.parse().ok()?;
        Some(if v <= 0 { now + v } else { v })
    };
    let (name, from, until) = match args {
        [n] => (*n, Some(now - 86400), Some(now)),
        [n, f] => (*n, time(f), Some(now)),
        [n, f, u] => (*n, time(f), time(u)),
        _ => return "ERROR usage: fetch <name> [from] [until]\n".to_string(),
    };
    let (Some(from), Some(until)) = (from, until) else {
        return "ERROR times are epoch seconds or -seconds\n".to_string();
    };
    // No such series (yet) reads as no points, as whisper-fetch of an
    // empty range does; scripts polling for a series need no special case.
    let Some(id) = store.lookup(name) else {
        return "step 0\nEND\n\n".to_string();
    };
    match store.fetch(id, from, until, now) {
        Ok(Some(f)) => {
            let mut out = format!("step {}\n", f.step);
            for (i, v) in (0i64..).zip(&f.values) {
                let t = f.from + i * i64::from(f.step);
                if v.is_nan() {
                    out.push_str(&format!("{t}\tNone\n"));
                } else {
                    out.push_str(&format!("{t}\t{}\n", js_number(*v)));
                }
            }
            out + "END\n\n"
        }
        Ok(None) => "step 0\nEND\n\n".to_string(),
        Err(e) => format!("ERROR {e}\n"),
    }
}

fn store_stats(s: &AdminState) -> String {
    use std::sync::atomic::Ordering::Relaxed as R;
    let Some(store) = &s.store else {
        return "ERROR no store\n".to_string();
    };
    let st = &store.stats;
    let rows = [
        ("series", store.index().len() as u64),
        ("points_accepted", st.points_accepted.load(R)),
        ("points_too_old", st.points_too_old.load(R)),
        ("points_too_new", st.points_too_new.load(R)),
        ("points_refused", store.caps.points_refused.load(R)),
        ("write_errors", st.write_errors.load(R)),
        ("batches", st.batches.load(R)),
        ("checkpoints", st.checkpoints.load(R)),
        ("checkpoint_errors", st.checkpoint_errors.load(R)),
        ("last_checkpoint_ms", st.last_checkpoint_ms.load(R)),
        ("rows_written", st.rows_written.load(R)),
        ("log_bytes", st.log_bytes.load(R)),
        ("corrupt_rows", st.corrupt_rows.load(R)),
        ("replayed_batches", st.replayed_batches.load(R)),
        ("rows_in_memory", store.rows_in_memory() as u64),
        ("disk_bytes", store.disk_bytes()),
    ];
    let mut out = String::new();
    for (k, v) in rows {
        out.push_str(&format!("store.{k}: {v}\n"));
    }
    out + "END\n\n"
}

fn totals(s: &AdminState) -> String {
    let snap = s.agg.telemetry().snapshot();
    format!(
        "packets_received: {}\nmetrics_received: {}\nbad_lines_seen: {}\nudp_kernel_drops: {}\nkeys_over_cap: {}\nlive_keys: {}\ntcp_connections_refused: {}\ncarbon_connections_refused: {}\nadmin_connections_refused: {}\nhttp_connections_refused: {}\nEND\n\n",
        snap.packets_received,
        snap.metrics_received,
        snap.bad_lines_total(),
        snap.udp_kernel_drops,
        snap.keys_over_cap,
        s.agg.live_keys(),
        snap.tcp_connections_refused,
        snap.carbon_connections_refused,
        snap.admin_connections_refused,
        snap.http_connections_refused,
    )
}

fn delete(s: &AdminState, kind: MetricType, args: &[&str]) -> String {
    let mut out = String::new();
    for pattern in args {
        let deleted = s.agg.delete(kind, pattern);
        if deleted.is_empty() {
            out.push_str(&format!("metric {pattern} not found\n"));
        }
        for name in deleted {
            out.push_str(&format!("deleted: {name}\n"));
        }
    }
    out.push_str("END\n\n");
    out
}

/// Node's `util.inspect` of a flat object, close enough for eyes and
/// scripts: identifier keys bare, others in single quotes, one line when it
/// fits in 72 columns, otherwise one entry per line.
pub fn inspect(entries: &[(Arc<str>, View)]) -> String {
    if entries.is_empty() {
        return "{}".to_string();
    }
    let items: Vec<String> = entries
        .iter()
        .map(|(k, v)| format!("{}: {}", js_key(k), js_value(v)))
        .collect();
    let width: usize = items.iter().map(|i| i.len() + 2).sum::<usize>() + 2;
    if width <= 72 {
        format!("{{ {} }}", items.join(", "))
    } else {
        format!("{{\n  {}\n}}", items.join(",\n  "))
    }
}

fn js_key(k: &str) -> String {
    let ident = k
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if ident {
        k.to_string()
    } else {
        format!("'{}'", k.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

fn js_value(v: &View) -> String {
    match v {
        View::Counter(x) | View::Gauge(x) => js_number(*x),
        View::Timer(samples) => {
            if samples.is_empty() {
                return "[]".to_string();
            }
            let shown: Vec<String> = samples.iter().take(100).map(|x| js_number(*x)).collect();
            let more = samples.len().saturating_sub(100);
            if more > 0 {
                format!("[ {}, ... {more} more items ]", shown.join(", "))
            } else {
                format!("[ {} ]", shown.join(", "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &[u8], max: usize, buffer: usize) -> Vec<Next> {
        let mut r = BufReader::with_capacity(buffer, input);
        let mut lines = LineReader::new(max);
        let mut out = Vec::new();
        loop {
            let n = lines.next(&mut r).unwrap();
            let end = n == Next::End;
            out.push(n);
            if end {
                return out;
            }
        }
    }

    #[test]
    fn line_reader_bounds_lines_and_keeps_order() {
        let long = "x".repeat(100);
        let input = format!("stats\n{long}\nhealth\n{long}");
        for buffer in [1, 7, 64, 4096] {
            assert_eq!(
                read_all(input.as_bytes(), 10, buffer),
                vec![
                    Next::Line("stats".into()),
                    Next::TooLong,
                    Next::Line("health".into()),
                    Next::TooLong,
                    Next::End
                ],
                "buffer {buffer}"
            );
        }
        // Exactly at the limit is allowed; a last line without newline is
        // not a command (the client went away mid-line).
        assert_eq!(
            read_all(b"0123456789\nabc", 10, 4),
            vec![Next::Line("0123456789".into()), Next::End]
        );
    }

    #[test]
    fn inspect_shapes() {
        let one = vec![(Arc::<str>::from("queue.depth"), View::Gauge(327.0))];
        assert_eq!(inspect(&one), "{ 'queue.depth': 327 }");
        let timers = vec![(
            Arc::<str>::from("api.latency"),
            View::Timer(vec![320.0, 100.0, 200.0, 150.0, 400.0]),
        )];
        assert_eq!(
            inspect(&timers),
            "{ 'api.latency': [ 320, 100, 200, 150, 400 ] }"
        );
        let many: Vec<_> = [
            "statsd.bad_lines_seen",
            "statsd.packets_received",
            "statsd.metrics_received",
            "multi",
        ]
        .iter()
        .map(|k| (Arc::<str>::from(*k), View::Counter(3.0)))
        .collect();
        assert_eq!(
            inspect(&many),
            "{\n  'statsd.bad_lines_seen': 3,\n  'statsd.packets_received': 3,\n  'statsd.metrics_received': 3,\n  multi: 3\n}"
        );
        assert_eq!(inspect(&[]), "{}");
    }
}
