//! Etsy's management interface on its own TCP port: `help`, `stats`,
//! `counters`, `timers`, `gauges`, `delcounters`, `deltimers`, `delgauges`,
//! `health [up|down]`, `config`, `quit`. Replies keep Etsy's shapes (the
//! `END` trailers, JavaScript-style object dumps) so existing scripts work.
//! Additions: `totals`, cumulative counts since start, for load tools; and
//! for the store, `find <glob>`, `fetch <name> <from> <until>` (whisper-fetch
//! style; times are epoch seconds or seconds relative to now, `-3600`) and
//! `store` (its counters).

use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::aggregate::timer::js_number;
use crate::aggregate::{Aggregator, View};
use crate::emit::graphite::BackendStats;
use crate::ingest::accept_loop;
use crate::protocol::statsd::MetricType;
use crate::store::Store;
use crate::telemetry::unix_now;

/// What the admin port reads and changes.
pub struct AdminState {
    pub agg: Arc<Aggregator>,
    pub backend: Arc<BackendStats>,
    /// `health down` takes the daemon out of a load balancer's rotation.
    pub healthy: Arc<AtomicBool>,
    pub config_text: String,
    pub started: u64,
    pub store: Option<Arc<Store>>,
}

pub fn start(
    listener: TcpListener,
    state: Arc<AdminState>,
    shutdown: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("admin".into())
        .spawn(move || {
            accept_loop(&listener, &shutdown, |stream| {
                let (state, shutdown) = (state.clone(), shutdown.clone());
                let _ = std::thread::Builder::new()
                    .name("admin-conn".into())
                    .spawn(move || serve(stream, &state, &shutdown));
            });
        })
}

fn serve(stream: TcpStream, state: &AdminState, shutdown: &AtomicBool) {
    if stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .is_err()
    {
        return;
    }
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while !shutdown.load(Relaxed) {
        match reader.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) => {
                let reply = command(line.trim(), state);
                line.clear();
                match reply {
                    Some(text) => {
                        if out.write_all(text.as_bytes()).is_err() {
                            return;
                        }
                    }
                    None => return,
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
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
    let now = unix_now() as i64;
    let t = s.agg.telemetry();
    let snap = t.snapshot();
    let b = &s.backend;
    format!(
        "uptime: {}\nmessages.last_msg_seen: {}\nmessages.bad_lines_seen: {}\ngraphite.last_flush: {}\ngraphite.last_exception: {}\ngraphite.flush_time: {}\ngraphite.flush_length: {}\ncarbon.points_received: {}\ncarbon.carbon_bad_lines: {}\nEND\n\n",
        now - s.started as i64,
        now - t.last_msg_seen.load(Relaxed) as i64,
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
    let (Some(store), [glob]) = (&s.store, args) else {
        return "ERROR usage: find <glob>\n".to_string();
    };
    match store.index().find(glob, 100_000) {
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
    let Some(store) = &s.store else {
        return "ERROR no store\n".to_string();
    };
    let now = unix_now() as i64;
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
    let Some(id) = store.index().id(name) else {
        return "step 0\nEND\n\n".to_string();
    };
    match store.fetch(id, from, until, now) {
        Ok(Some(f)) => {
            let mut out = format!("step {}\n", f.step);
            for (i, v) in f.values.iter().enumerate() {
                let t = f.from + i as i64 * f.step as i64;
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
        "packets_received: {}\nmetrics_received: {}\nbad_lines_seen: {}\nudp_kernel_drops: {}\nkeys_over_cap: {}\nlive_keys: {}\nEND\n\n",
        snap.packets_received,
        snap.metrics_received,
        snap.bad_lines_total(),
        snap.udp_kernel_drops,
        snap.keys_over_cap,
        s.agg.live_keys(),
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
