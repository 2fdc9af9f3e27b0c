//! `rollupd relay`: statsd over UDP and carbon plaintext over TCP in, each
//! line forwarded to the aggregator that owns its metric name on a
//! consistent-hash ring, so all of one metric's samples meet in one
//! aggregator (Etsy's statsd proxy, without its one-process-per-core
//! JavaScript; carbon-relay's consistent hashing, for carbon lines).
//!
//! carbon: a thread per client connection reads lines (at most
//! `MAX_CARBON_LINE` bytes; longer ones are dropped and counted), sorts them
//! into per-member buffers and hands each member's buffer to that member's
//! carbon sender (one TCP connection, reopened when it breaks; what it
//! cannot deliver is dropped and counted) once the client's data so far is
//! read.
//!
//! One thread reads datagrams and sorts their lines into one packet buffer
//! per member (no allocation per line: a line is copied into its member's
//! buffer, and a full buffer goes to that member's bounded queue whole); a
//! thread per member sends its queue; a thread asks each member's admin port
//! `health` every `health_interval`. A member that does not answer `up` is
//! down: its names go to the next live member clockwise until it is back
//! (for that while, a timer's samples are split across two aggregators,
//! each flushing its share). Lines that failed over, packets dropped at a
//! full queue and lines with no live member are counted and logged.

pub mod ring;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::RelayConfig;
use ring::Ring;

// The ring holds every member the config allows (checked at compile time).
const _: () = assert!(crate::config::RELAY_MAX_MEMBERS <= ring::MAX_MEMBERS);

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("relay: [relay] statsd_udp is not set: nothing to listen on")]
    NoListener,
    #[error("relay: cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// What the relay has done since it started.
#[derive(Debug, Default)]
pub struct RelayCounts {
    pub datagrams: AtomicU64,
    pub lines: AtomicU64,
    /// Lines sent to a member other than their owner, which was down.
    pub failed_over: AtomicU64,
    /// Lines dropped because no member was up.
    pub no_member: AtomicU64,
    /// Packets dropped at a member's full queue.
    pub queue_full: AtomicU64,
    pub carbon_lines: AtomicU64,
    /// carbon lines longer than [`MAX_CARBON_LINE`], dropped.
    pub carbon_too_long: AtomicU64,
    /// carbon buffers a member's sender could not deliver.
    pub carbon_undelivered: AtomicU64,
}

/// Longest carbon line relayed, newline included.
pub const MAX_CARBON_LINE: usize = 4096;
/// carbon client connections at once; more are closed unread.
const MAX_CARBON_CONNECTIONS: usize = 1024;
/// How often the counts are logged while the relay runs.
const COUNTS_EVERY: Duration = Duration::from_secs(60);
/// Bytes of carbon lines buffered for one member before they are handed on.
const CARBON_CHUNK: usize = 64 * 1024;

struct Member {
    name: String,
    up: AtomicBool,
    lines: AtomicU64,
    queue: SyncSender<Vec<u8>>,
    carbon: Option<SyncSender<Vec<u8>>>,
}

/// A running relay; stops and joins its threads when dropped.
pub struct Relay {
    pub local_addr: SocketAddr,
    /// The carbon listener, when `carbon_tcp` is set.
    pub carbon_addr: Option<SocketAddr>,
    pub counts: Arc<RelayCounts>,
    stop: Arc<AtomicBool>,
    /// The intake threads: the statsd reader, the carbon acceptor (which
    /// joins its connections) and the health checker.
    threads: Vec<JoinHandle<()>>,
    /// Held until the intake threads are joined; dropping the last handle
    /// closes the queues.
    members: Option<Arc<Vec<Member>>>,
    senders: Vec<JoinHandle<()>>,
}

impl Relay {
    /// Binds `[relay] statsd_udp` with a receive buffer of `recv_buffer`
    /// bytes (`[server] udp_recv_buffer`, as the daemon's own listener: with
    /// the kernel's default buffer the relay lost 0.8 % of 1M lines/s).
    pub fn start(cfg: &RelayConfig, recv_buffer: usize) -> Result<Relay, RelayError> {
        let addr = cfg.statsd_udp.ok_or(RelayError::NoListener)?;
        let sock = crate::ingest::udp::bind(addr, recv_buffer, 1)
            .map_err(|source| RelayError::Bind { addr, source })?
            .remove(0);
        let local_addr = sock
            .local_addr()
            .map_err(|source| RelayError::Bind { addr, source })?;
        // Both listeners are bound before any thread starts, so a failed
        // bind leaves nothing running.
        let carbon_listener = match cfg.carbon_tcp {
            Some(caddr) => {
                let l = std::net::TcpListener::bind(caddr).map_err(|source| RelayError::Bind {
                    addr: caddr,
                    source,
                })?;
                let bound = l.local_addr().map_err(|source| RelayError::Bind {
                    addr: caddr,
                    source,
                })?;
                Some((l, bound))
            }
            None => None,
        };
        // The socket's read timeout (ingest's poll interval) is how soon
        // the reader sees `stop`.
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(RelayCounts::default());
        // Senders end when their queues close, after the intake threads.
        let mut senders = Vec::new();
        let mut threads = Vec::new();
        let mut members = Vec::new();
        for m in &cfg.member {
            let (tx, rx) = sync_channel(cfg.queue);
            let carbon = match (cfg.carbon_tcp, m.carbon) {
                (Some(_), Some(to)) => {
                    let (ctx, crx) = sync_channel(cfg.queue);
                    let counts = counts.clone();
                    senders.push(std::thread::spawn(move || {
                        carbon_send_loop(crx, to, &counts)
                    }));
                    Some(ctx)
                }
                _ => None,
            };
            members.push(Member {
                name: m.name.clone(),
                up: AtomicBool::new(true),
                lines: AtomicU64::new(0),
                queue: tx,
                carbon,
            });
            let to = m.statsd;
            senders.push(std::thread::spawn(move || send_loop(rx, to)));
        }
        let members = Arc::new(members);
        let names: Vec<&str> = cfg.member.iter().map(|m| m.name.as_str()).collect();
        let weights: Vec<u32> = cfg.member.iter().map(|m| m.weight).collect();
        let ring = Ring::new(&names, &weights);
        {
            let (members, stop) = (members.clone(), stop.clone());
            let admins: Vec<SocketAddr> = cfg.member.iter().map(|m| m.admin).collect();
            let every = cfg.health_interval;
            threads.push(std::thread::spawn(move || {
                health_loop(&members, &admins, every, &stop)
            }));
        }
        let ring = Arc::new(ring);
        let carbon_addr = carbon_listener.map(|(listener, bound)| {
            let (members, stop, counts, ring) =
                (members.clone(), stop.clone(), counts.clone(), ring.clone());
            threads.push(std::thread::spawn(move || {
                carbon_accept(&listener, &ring, &members, &counts, &stop)
            }));
            tracing::info!(%bound, "relay: listening for carbon over TCP");
            bound
        });
        {
            let (members, stop, counts) = (members.clone(), stop.clone(), counts.clone());
            let packet = cfg.packet_size;
            threads.push(std::thread::spawn(move || {
                read_loop(&sock, &ring, &members, packet, &counts, &stop)
            }));
        }
        tracing::info!(%local_addr, members = cfg.member.len(), "relay: listening for statsd over UDP");
        Ok(Relay {
            local_addr,
            carbon_addr,
            counts,
            stop,
            threads,
            members: Some(members),
            senders,
        })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        // Every line read has been handed to a queue: the counts are final.
        if let Some(members) = self.members.take() {
            log_counts(&self.counts, &members);
        }
        // The queues close; each sender sends what it holds and ends.
        for t in self.senders.drain(..) {
            let _ = t.join();
        }
    }
}

/// The metric name of a statsd line: what comes before its first `:`.
fn metric_name(line: &[u8]) -> &[u8] {
    let end = line.iter().position(|&b| b == b':').unwrap_or(line.len());
    &line[..end]
}

fn read_loop(
    sock: &UdpSocket,
    ring: &Ring,
    members: &[Member],
    packet: usize,
    counts: &RelayCounts,
    stop: &AtomicBool,
) {
    let mut buf = vec![0u8; 65_536];
    let mut out: Vec<Vec<u8>> = members.iter().map(|_| Vec::with_capacity(packet)).collect();
    let mut last_log = Instant::now();
    while !stop.load(Relaxed) {
        // Checked every datagram and every idle poll, so the counts are
        // logged under load too.
        if last_log.elapsed() >= COUNTS_EVERY {
            log_counts(counts, members);
            last_log = Instant::now();
        }
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "relay: receive failed");
                continue;
            }
        };
        counts.datagrams.fetch_add(1, Relaxed);
        for line in buf[..n].split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            counts.lines.fetch_add(1, Relaxed);
            let name = metric_name(line);
            let Some(m) = route(ring, members, name, counts) else {
                continue;
            };
            members[m].lines.fetch_add(1, Relaxed);
            if !out[m].is_empty() && out[m].len() + 1 + line.len() > packet {
                send(&members[m], &mut out[m], packet, counts);
            }
            if !out[m].is_empty() {
                out[m].push(b'\n');
            }
            out[m].extend_from_slice(line);
        }
        for (m, o) in out.iter_mut().enumerate() {
            if !o.is_empty() {
                send(&members[m], o, packet, counts);
            }
        }
    }
}

/// The member a name goes to: its owner, or the next live member when the
/// owner is down (counted); `None` (counted) when no member is up.
fn route(ring: &Ring, members: &[Member], name: &[u8], counts: &RelayCounts) -> Option<usize> {
    let Some(home) = ring.owner(name, |_| true) else {
        counts.no_member.fetch_add(1, Relaxed);
        return None;
    };
    if members[home].up.load(Relaxed) {
        return Some(home);
    }
    match ring.owner(name, |m| members[m].up.load(Relaxed)) {
        Some(m) => {
            counts.failed_over.fetch_add(1, Relaxed);
            Some(m)
        }
        None => {
            counts.no_member.fetch_add(1, Relaxed);
            None
        }
    }
}

fn carbon_accept(
    listener: &std::net::TcpListener,
    ring: &Arc<Ring>,
    members: &Arc<Vec<Member>>,
    counts: &Arc<RelayCounts>,
    stop: &Arc<AtomicBool>,
) {
    let open = Arc::new(AtomicU64::new(0));
    let mut conns: Vec<JoinHandle<()>> = Vec::new();
    crate::ingest::accept_loop(listener, stop, |stream| {
        conns.retain(|h| !h.is_finished());
        if open.load(Relaxed) as usize >= MAX_CARBON_CONNECTIONS {
            tracing::warn!("relay: carbon connection refused: {MAX_CARBON_CONNECTIONS} open");
            return;
        }
        open.fetch_add(1, Relaxed);
        let (ring, members, counts, stop, open) = (
            ring.clone(),
            members.clone(),
            counts.clone(),
            stop.clone(),
            open.clone(),
        );
        conns.push(std::thread::spawn(move || {
            carbon_conn(stream, &ring, &members, &counts, &stop);
            open.fetch_sub(1, Relaxed);
        }));
    });
    for h in conns {
        let _ = h.join();
    }
}

/// One carbon client: its lines, sorted by owner, handed on whenever what
/// it has sent so far is read.
fn carbon_conn(
    stream: TcpStream,
    ring: &Ring,
    members: &[Member],
    counts: &RelayCounts,
    stop: &AtomicBool,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut r = BufReader::with_capacity(CARBON_CHUNK, stream);
    let mut out: Vec<Vec<u8>> = members.iter().map(|_| Vec::new()).collect();
    let mut line = Vec::with_capacity(256);
    // Inside a line past MAX_CARBON_LINE: dropped up to its newline.
    let mut skipping = false;
    loop {
        let room = (MAX_CARBON_LINE - line.len()) as u64;
        match (&mut r).take(room).read_until(b'\n', &mut line) {
            Ok(0) if room > 0 => break,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                flush_carbon(members, &mut out, counts);
                if stop.load(Relaxed) {
                    break;
                }
                continue;
            }
            Err(_) => break,
        }
        if line.last() != Some(&b'\n') {
            if line.len() >= MAX_CARBON_LINE {
                skipping = true;
                line.clear();
            }
            // Otherwise the rest of the line is still to come.
            continue;
        }
        if std::mem::take(&mut skipping) {
            counts.carbon_too_long.fetch_add(1, Relaxed);
            line.clear();
            continue;
        }
        let body = line.trim_ascii();
        if !body.is_empty() {
            counts.carbon_lines.fetch_add(1, Relaxed);
            let end = body.iter().position(|&b| b == b' ').unwrap_or(body.len());
            if let Some(m) = route(ring, members, &body[..end], counts) {
                members[m].lines.fetch_add(1, Relaxed);
                out[m].extend_from_slice(body);
                out[m].push(b'\n');
                if out[m].len() >= CARBON_CHUNK {
                    hand_carbon(&members[m], &mut out[m], counts);
                }
            }
        }
        line.clear();
        if r.buffer().is_empty() {
            flush_carbon(members, &mut out, counts);
        }
    }
    flush_carbon(members, &mut out, counts);
}

fn flush_carbon(members: &[Member], out: &mut [Vec<u8>], counts: &RelayCounts) {
    for (m, o) in out.iter_mut().enumerate() {
        if !o.is_empty() {
            hand_carbon(&members[m], o, counts);
        }
    }
}

fn hand_carbon(member: &Member, out: &mut Vec<u8>, counts: &RelayCounts) {
    let buf = std::mem::take(out);
    let Some(q) = &member.carbon else { return };
    if let Err(TrySendError::Full(_)) = q.try_send(buf) {
        if counts.queue_full.fetch_add(1, Relaxed) == 0 {
            tracing::warn!(member = %member.name, "relay: a member's carbon queue is full; lines for it are dropped and counted");
        }
    }
}

/// One member's carbon connection: each buffer written whole; a broken
/// connection is reopened once for the buffer that found it broken, and a
/// buffer that still cannot go is dropped and counted.
fn carbon_send_loop(rx: Receiver<Vec<u8>>, to: SocketAddr, counts: &RelayCounts) {
    let mut conn: Option<TcpStream> = None;
    let connect = || {
        let s = TcpStream::connect_timeout(&to, Duration::from_secs(2)).ok()?;
        let _ = s.set_write_timeout(Some(Duration::from_secs(10)));
        Some(s)
    };
    for buf in rx {
        let mut sent = false;
        for _ in 0..2 {
            if conn.is_none() {
                conn = connect();
            }
            let Some(c) = conn.as_mut() else { break };
            if c.write_all(&buf).is_ok() {
                sent = true;
                break;
            }
            conn = None;
        }
        if !sent && counts.carbon_undelivered.fetch_add(1, Relaxed) == 0 {
            tracing::warn!(%to, "relay: carbon lines could not be delivered to a member; dropped and counted");
        }
    }
}

/// Hands a member its packet; the buffer is replaced by an empty one.
fn send(member: &Member, out: &mut Vec<u8>, packet: usize, counts: &RelayCounts) {
    let p = std::mem::replace(out, Vec::with_capacity(packet));
    match member.queue.try_send(p) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            if counts.queue_full.fetch_add(1, Relaxed) == 0 {
                tracing::warn!(member = %member.name, "relay: a member's queue is full; packets for it are dropped and counted");
            }
        }
        Err(TrySendError::Disconnected(_)) => {}
    }
}

fn send_loop(rx: Receiver<Vec<u8>>, to: SocketAddr) {
    let bind: SocketAddr = if to.is_ipv4() {
        "0.0.0.0:0".parse().expect("an address")
    } else {
        "[::]:0".parse().expect("an address")
    };
    let sock = match UdpSocket::bind(bind) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "relay: cannot open a socket to send from");
            return;
        }
    };
    for p in rx {
        // A refused send (nothing listening yet) is UDP's loss, as for any
        // statsd client; the health check says when a member is gone.
        let _ = sock.send_to(&p, to);
    }
}

/// Etsy's management `health` command: `up` if the answer says so.
fn healthy(admin: SocketAddr, timeout: Duration) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&admin, timeout) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    if s.write_all(b"health\n").is_err() {
        return false;
    }
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).is_ok() && line.trim() == "health: up"
}

fn health_loop(members: &[Member], admins: &[SocketAddr], every: Duration, stop: &AtomicBool) {
    let timeout = every.min(Duration::from_secs(2));
    while !stop.load(Relaxed) {
        let started = Instant::now();
        for (m, &admin) in members.iter().zip(admins) {
            let up = healthy(admin, timeout);
            if m.up.swap(up, Relaxed) != up {
                if up {
                    tracing::info!(member = %m.name, "relay: member is up again; its names come back to it");
                } else {
                    tracing::warn!(member = %m.name, %admin, "relay: member is down; its names go to the next member on the ring");
                }
            }
        }
        while !stop.load(Relaxed) && started.elapsed() < every {
            std::thread::sleep(Duration::from_millis(20).min(every));
        }
    }
}

fn log_counts(counts: &RelayCounts, members: &[Member]) {
    let per: Vec<String> = members
        .iter()
        .map(|m| format!("{} {}", m.name, m.lines.load(Relaxed)))
        .collect();
    tracing::info!(
        datagrams = counts.datagrams.load(Relaxed),
        lines = counts.lines.load(Relaxed),
        per_member = %per.join(", "),
        failed_over = counts.failed_over.load(Relaxed),
        no_member = counts.no_member.load(Relaxed),
        queue_full = counts.queue_full.load(Relaxed),
        carbon_lines = counts.carbon_lines.load(Relaxed),
        carbon_too_long = counts.carbon_too_long.load(Relaxed),
        carbon_undelivered = counts.carbon_undelivered.load(Relaxed),
        "relay: counts"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metric_name_is_what_comes_before_the_colon() {
        assert_eq!(metric_name(b"api.latency:320|ms|@0.1"), b"api.latency");
        assert_eq!(metric_name(b"no_colon"), b"no_colon");
        assert_eq!(metric_name(b":1|c"), b"");
    }
}
