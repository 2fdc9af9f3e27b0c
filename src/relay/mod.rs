//! `rollupd relay`: statsd over UDP and TCP, and carbon plaintext over TCP in, each
//! line forwarded to the aggregator that owns its metric name on a
//! consistent-hash ring, so all of one metric's samples meet in one
//! aggregator (Etsy's statsd proxy, without its one-process-per-core
//! JavaScript; carbon-relay's consistent hashing, for carbon lines).
//!
//! TCP (statsd or carbon): a thread per client connection reads lines (at
//! most `MAX_TCP_LINE` bytes; longer ones are dropped and counted), sorts
//! them into per-member buffers (a [`Sorter`], the same as for UDP) and
//! hands each member's buffer on once the client's data so far is read:
//! statsd lines as datagrams to the member's statsd sender, carbon lines to
//! its carbon sender (one TCP connection, reopened when it breaks; what it
//! cannot deliver is dropped and counted).
//!
//! One thread reads datagrams, a batch per system call (recvmmsg, as the
//! daemon's listener), and sorts their lines into one packet buffer per
//! member (no allocation per line: a line is copied into its member's
//! buffer, and a full buffer goes to that member's bounded queue whole); a
//! thread per member sends its queue; a thread asks each member's admin port
//! `health` every `health_interval`. A member that refuses the connection
//! or answers anything but `up` is down at once, one that does not answer
//! within a second (or the interval, if longer) three times in a row is
//! down too: its names go to the next live member clockwise until it is back
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
    /// Datagrams longer than [`MAX_DATAGRAM`], dropped.
    pub truncated: AtomicU64,
    pub lines: AtomicU64,
    /// Lines sent to a member other than their owner, which was down.
    pub failed_over: AtomicU64,
    /// Lines dropped because no member was up.
    pub no_member: AtomicU64,
    /// Packets dropped at a member's full queue.
    pub queue_full: AtomicU64,
    pub carbon_lines: AtomicU64,
    /// statsd lines read over TCP (also in `lines`).
    pub tcp_lines: AtomicU64,
    /// Lines longer than [`MAX_TCP_LINE`] over TCP (statsd or carbon),
    /// dropped.
    pub too_long: AtomicU64,
    /// carbon buffers a member's sender could not deliver.
    pub carbon_undelivered: AtomicU64,
}

/// Longest datagram read; a longer one (only over loopback or with IP
/// fragments) is dropped and counted as truncated.
const MAX_DATAGRAM: usize = 65_536;
/// Longest line relayed over TCP (statsd or carbon), newline included.
pub const MAX_TCP_LINE: usize = 4096;
/// Client connections at once per TCP listener; more are closed unread.
const MAX_TCP_CONNECTIONS: usize = 1024;
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
    /// The statsd TCP listener, when `statsd_tcp` is set.
    pub statsd_tcp_addr: Option<SocketAddr>,
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
        // Every listener is bound before any thread starts, so a failed
        // bind leaves nothing running.
        let bind_tcp = |a: Option<SocketAddr>| -> Result<_, RelayError> {
            let Some(addr) = a else { return Ok(None) };
            let bad = |source| RelayError::Bind { addr, source };
            let l = std::net::TcpListener::bind(addr).map_err(bad)?;
            let bound = l.local_addr().map_err(bad)?;
            Ok(Some((l, bound)))
        };
        let carbon_listener = bind_tcp(cfg.carbon_tcp)?;
        let statsd_tcp_listener = bind_tcp(cfg.statsd_tcp)?;
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
        let mut listen_tcp = |l: Option<(std::net::TcpListener, SocketAddr)>, proto: Proto| {
            l.map(|(listener, bound)| {
                let (members, stop, counts, ring) =
                    (members.clone(), stop.clone(), counts.clone(), ring.clone());
                threads.push(std::thread::spawn(move || {
                    tcp_accept(&listener, proto, &ring, &members, &counts, &stop)
                }));
                match proto {
                    Proto::Carbon => tracing::info!(%bound, "relay: listening for carbon over TCP"),
                    Proto::Statsd { .. } => {
                        tracing::info!(%bound, "relay: listening for statsd over TCP")
                    }
                }
                bound
            })
        };
        let carbon_addr = listen_tcp(carbon_listener, Proto::Carbon);
        let statsd_tcp_addr = listen_tcp(
            statsd_tcp_listener,
            Proto::Statsd {
                packet: cfg.packet_size,
            },
        );
        {
            let (members, stop, counts) = (members.clone(), stop.clone(), counts.clone());
            let packet = cfg.packet_size;
            let own = Own {
                prefix: cfg.stats_prefix.clone(),
                interval: cfg.stats_interval,
            };
            threads.push(std::thread::spawn(move || {
                read_loop(&sock, &ring, &members, packet, &counts, &own, &stop)
            }));
        }
        tracing::info!(%local_addr, members = cfg.member.len(), "relay: listening for statsd over UDP");
        Ok(Relay {
            local_addr,
            carbon_addr,
            statsd_tcp_addr,
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

/// Where and how often the relay sends its own counts (`[relay]
/// stats_prefix`, `stats_interval`).
struct Own {
    prefix: String,
    interval: Duration,
}

fn read_loop(
    sock: &UdpSocket,
    ring: &Ring,
    members: &[Member],
    packet: usize,
    counts: &RelayCounts,
    own: &Own,
    stop: &AtomicBool,
) {
    let mut sorter = StatsdSorter::new(ring, members, packet, counts);
    let mut last_log = Instant::now();
    let mut last_stats = Instant::now();
    let mut sent = OwnStats::default();
    // Batches of datagrams per system call (recvmmsg), as the daemon's own
    // listener reads them, and the datagram's bytes read in place; the
    // reader is also called when a wait times out, so the counts are
    // logged and sent when no traffic comes.
    crate::ingest::udp::read_batches_polled(sock, MAX_DATAGRAM, stop, true, |batch, n| {
        for i in 0..n {
            let (data, truncated, _) = batch.datagram(i);
            counts.datagrams.fetch_add(1, Relaxed);
            if truncated {
                counts.truncated.fetch_add(1, Relaxed);
                continue;
            }
            for line in data.split(|&b| b == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if !line.is_empty() {
                    sorter.line(line);
                }
            }
        }
        sorter.flush();
        if last_log.elapsed() >= COUNTS_EVERY {
            log_counts(counts, members);
            last_log = Instant::now();
        }
        if !own.prefix.is_empty() && last_stats.elapsed() >= own.interval {
            sent.send(&own.prefix, counts, &mut sorter);
            last_stats = Instant::now();
        }
    });
}

/// The counts as last sent as the relay's own series, so each send is the
/// change since the one before (statsd counters).
#[derive(Default)]
struct OwnStats {
    last: Vec<u64>,
    member_lines: Vec<u64>,
}

impl OwnStats {
    /// Sends the counts' changes as statsd counters, and each member's
    /// state as a gauge, through `sorter` like any line (not counted as
    /// lines read): `<prefix>.lines`, `<prefix>.member.<name>.lines`,
    /// `<prefix>.member.<name>.up` and the rest.
    fn send(&mut self, prefix: &str, counts: &RelayCounts, sorter: &mut StatsdSorter<'_>) {
        let now = [
            ("datagrams", counts.datagrams.load(Relaxed)),
            ("truncated", counts.truncated.load(Relaxed)),
            ("lines", counts.lines.load(Relaxed)),
            ("tcp_lines", counts.tcp_lines.load(Relaxed)),
            ("carbon_lines", counts.carbon_lines.load(Relaxed)),
            ("failed_over", counts.failed_over.load(Relaxed)),
            ("no_member", counts.no_member.load(Relaxed)),
            ("queue_full", counts.queue_full.load(Relaxed)),
            ("too_long", counts.too_long.load(Relaxed)),
            (
                "carbon_undelivered",
                counts.carbon_undelivered.load(Relaxed),
            ),
        ];
        self.last.resize(now.len(), 0);
        let members = sorter.members;
        self.member_lines.resize(members.len(), 0);
        let mut line = String::with_capacity(96);
        let mut b = itoa::Buffer::new();
        let mut put = |line: &mut String, name: &[&str], value: u64, kind: &str| {
            line.clear();
            line.push_str(prefix);
            for part in name {
                line.push('.');
                line.push_str(part);
            }
            line.push(':');
            line.push_str(b.format(value));
            line.push('|');
            line.push_str(kind);
            sorter.route(line.as_bytes(), false);
        };
        for ((name, v), last) in now.iter().zip(&mut self.last) {
            put(&mut line, &[name], v - *last, "c");
            *last = *v;
        }
        for (m, last) in members.iter().zip(&mut self.member_lines) {
            let v = m.lines.load(Relaxed);
            put(&mut line, &["member", &m.name, "lines"], v - *last, "c");
            *last = v;
            let up = u64::from(m.up.load(Relaxed));
            put(&mut line, &["member", &m.name, "up"], up, "g");
        }
        sorter.flush();
    }
}

/// Sorts lines by the member that owns them into one buffer per member,
/// and hands the buffers on. A line is copied into its member's buffer: no
/// allocation per line.
trait Sorter {
    /// One line, without its newline; not empty.
    fn line(&mut self, line: &[u8]);
    /// Everything read so far has been sorted: hand on what is buffered.
    fn flush(&mut self);
}

/// statsd lines, into datagrams of at most `packet` bytes per member.
struct StatsdSorter<'a> {
    ring: &'a Ring,
    members: &'a [Member],
    counts: &'a RelayCounts,
    packet: usize,
    out: Vec<Vec<u8>>,
    /// Read over TCP (counted as such too).
    tcp: bool,
}

impl<'a> StatsdSorter<'a> {
    fn new(ring: &'a Ring, members: &'a [Member], packet: usize, counts: &'a RelayCounts) -> Self {
        StatsdSorter {
            ring,
            members,
            counts,
            packet,
            out: members.iter().map(|_| Vec::with_capacity(packet)).collect(),
            tcp: false,
        }
    }
}

impl Sorter for StatsdSorter<'_> {
    fn line(&mut self, line: &[u8]) {
        self.counts.lines.fetch_add(1, Relaxed);
        if self.tcp {
            self.counts.tcp_lines.fetch_add(1, Relaxed);
        }
        self.route(line, true);
    }

    fn flush(&mut self) {
        for (m, o) in self.out.iter_mut().enumerate() {
            if !o.is_empty() {
                send(&self.members[m], o, self.packet, self.counts);
            }
        }
    }
}

impl StatsdSorter<'_> {
    /// Puts `line` in its owner's packet (a full packet goes first);
    /// counted as a line read (per member, failed over, no member) with
    /// `counted`, and not for the relay's own lines.
    fn route(&mut self, line: &[u8], counted: bool) {
        let counts = counted.then_some(self.counts);
        let Some(m) = route(self.ring, self.members, metric_name(line), counts) else {
            return;
        };
        if counted {
            self.members[m].lines.fetch_add(1, Relaxed);
        }
        let out = &mut self.out[m];
        if !out.is_empty() && out.len() + 1 + line.len() > self.packet {
            send(&self.members[m], out, self.packet, self.counts);
        }
        if !out.is_empty() {
            out.push(b'\n');
        }
        out.extend_from_slice(line);
    }
}

/// carbon lines, into buffers of up to [`CARBON_CHUNK`] bytes per member
/// for its carbon connection.
struct CarbonSorter<'a> {
    ring: &'a Ring,
    members: &'a [Member],
    counts: &'a RelayCounts,
    out: Vec<Vec<u8>>,
}

impl<'a> CarbonSorter<'a> {
    fn new(ring: &'a Ring, members: &'a [Member], counts: &'a RelayCounts) -> Self {
        CarbonSorter {
            ring,
            members,
            counts,
            out: members.iter().map(|_| Vec::new()).collect(),
        }
    }
}

impl Sorter for CarbonSorter<'_> {
    fn line(&mut self, body: &[u8]) {
        self.counts.carbon_lines.fetch_add(1, Relaxed);
        let end = body.iter().position(|&b| b == b' ').unwrap_or(body.len());
        if let Some(m) = route(self.ring, self.members, &body[..end], Some(self.counts)) {
            self.members[m].lines.fetch_add(1, Relaxed);
            let out = &mut self.out[m];
            out.extend_from_slice(body);
            out.push(b'\n');
            if out.len() >= CARBON_CHUNK {
                hand_carbon(&self.members[m], out, self.counts);
            }
        }
    }

    fn flush(&mut self) {
        for (m, o) in self.out.iter_mut().enumerate() {
            if !o.is_empty() {
                hand_carbon(&self.members[m], o, self.counts);
            }
        }
    }
}

/// The member a name goes to: its owner, or the next live member when the
/// owner is down (counted, with `counts`); `None` (counted) when no member is up.
fn route(
    ring: &Ring,
    members: &[Member],
    name: &[u8],
    counts: Option<&RelayCounts>,
) -> Option<usize> {
    let count = |c: fn(&RelayCounts) -> &AtomicU64| {
        if let Some(counts) = counts {
            c(counts).fetch_add(1, Relaxed);
        }
    };
    let Some(home) = ring.owner(name, |_| true) else {
        count(|c| &c.no_member);
        return None;
    };
    if members[home].up.load(Relaxed) {
        return Some(home);
    }
    match ring.owner(name, |m| members[m].up.load(Relaxed)) {
        Some(m) => {
            count(|c| &c.failed_over);
            Some(m)
        }
        None => {
            count(|c| &c.no_member);
            None
        }
    }
}

/// What one TCP listener reads.
#[derive(Clone, Copy)]
enum Proto {
    /// statsd lines, forwarded over UDP in datagrams of `packet` bytes.
    Statsd { packet: usize },
    /// carbon plaintext lines, forwarded over each member's carbon TCP.
    Carbon,
}

/// Accepts clients of one TCP listener, a thread each, at most
/// [`MAX_TCP_CONNECTIONS`] at once.
fn tcp_accept(
    listener: &std::net::TcpListener,
    proto: Proto,
    ring: &Arc<Ring>,
    members: &Arc<Vec<Member>>,
    counts: &Arc<RelayCounts>,
    stop: &Arc<AtomicBool>,
) {
    let open = Arc::new(AtomicU64::new(0));
    let mut conns: Vec<JoinHandle<()>> = Vec::new();
    crate::ingest::accept_loop(listener, stop, |stream| {
        conns.retain(|h| !h.is_finished());
        if usize::try_from(open.load(Relaxed)).unwrap_or(usize::MAX) >= MAX_TCP_CONNECTIONS {
            tracing::warn!("relay: connection refused: {MAX_TCP_CONNECTIONS} open");
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
            match proto {
                Proto::Statsd { packet } => {
                    let mut s = StatsdSorter::new(&ring, &members, packet, &counts);
                    s.tcp = true;
                    tcp_conn(stream, &mut s, &counts, &stop);
                }
                Proto::Carbon => {
                    let mut s = CarbonSorter::new(&ring, &members, &counts);
                    tcp_conn(stream, &mut s, &counts, &stop);
                }
            }
            open.fetch_sub(1, Relaxed);
        }));
    });
    for h in conns {
        let _ = h.join();
    }
}

/// One TCP client: its lines (at most [`MAX_TCP_LINE`] bytes; longer ones
/// dropped and counted) sorted by owner and handed on whenever what it has
/// sent so far is read.
fn tcp_conn(stream: TcpStream, sorter: &mut dyn Sorter, counts: &RelayCounts, stop: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut r = BufReader::with_capacity(CARBON_CHUNK, stream);
    let mut line = Vec::with_capacity(256);
    // Inside a line past MAX_TCP_LINE: dropped up to its newline.
    let mut skipping = false;
    loop {
        let room = (MAX_TCP_LINE - line.len()) as u64;
        match (&mut r).take(room).read_until(b'\n', &mut line) {
            Ok(0) if room > 0 => break,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                sorter.flush();
                if stop.load(Relaxed) {
                    break;
                }
                continue;
            }
            Err(_) => break,
        }
        if line.last() != Some(&b'\n') {
            if line.len() >= MAX_TCP_LINE {
                skipping = true;
                line.clear();
            }
            // Otherwise the rest of the line is still to come.
            continue;
        }
        if std::mem::take(&mut skipping) {
            counts.too_long.fetch_add(1, Relaxed);
            line.clear();
            continue;
        }
        let body = line.trim_ascii();
        if !body.is_empty() {
            sorter.line(body);
        }
        line.clear();
        if r.buffer().is_empty() {
            sorter.flush();
        }
    }
    sorter.flush();
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

/// What one `health` check said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Up,
    /// A definite no: the connection was refused or the answer was not `up`.
    Down,
    /// No answer in time (a busy or hung member, or a loaded machine).
    NoAnswer,
}

/// Timeouts in a row before a member that still accepts connections is
/// taken for down. One slow answer on a loaded machine (CI runs a dozen
/// debug daemons at once) is not a dead member; sending its names to the
/// next member would split their samples for nothing.
const HEALTH_STRIKES: u32 = 3;

/// Etsy's management `health` command.
fn healthy(admin: SocketAddr, timeout: Duration) -> Health {
    let mut s = match TcpStream::connect_timeout(&admin, timeout) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Health::NoAnswer,
        Err(_) => return Health::Down,
    };
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    if s.write_all(b"health\n").is_err() {
        return Health::Down;
    }
    let mut line = String::new();
    match BufReader::new(s).read_line(&mut line) {
        Ok(_) if line.trim() == "health: up" => Health::Up,
        Ok(_) => Health::Down,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Health::NoAnswer
        }
        Err(_) => Health::Down,
    }
}

/// Whether a member is up after a check said `h`, `strikes` counting the
/// timeouts in a row before it.
fn judge(h: Health, strikes: &mut u32, was_up: bool) -> bool {
    match h {
        Health::Up => {
            *strikes = 0;
            true
        }
        Health::Down => {
            *strikes = HEALTH_STRIKES;
            false
        }
        Health::NoAnswer => {
            *strikes = strikes.saturating_add(1);
            was_up && *strikes < HEALTH_STRIKES
        }
    }
}

fn health_loop(members: &[Member], admins: &[SocketAddr], every: Duration, stop: &AtomicBool) {
    // At least a second for an answer however often the checks run: the
    // interval says how soon a death is seen (a refused connection counts
    // at once), not how fast a live member must answer.
    let timeout = every.clamp(Duration::from_secs(1), Duration::from_secs(2));
    let mut strikes = vec![0u32; members.len()];
    while !stop.load(Relaxed) {
        let started = Instant::now();
        for ((m, &admin), strikes) in members.iter().zip(admins).zip(&mut strikes) {
            let was = m.up.load(Relaxed);
            let up = judge(healthy(admin, timeout), strikes, was);
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
        truncated = counts.truncated.load(Relaxed),
        lines = counts.lines.load(Relaxed),
        per_member = %per.join(", "),
        failed_over = counts.failed_over.load(Relaxed),
        no_member = counts.no_member.load(Relaxed),
        queue_full = counts.queue_full.load(Relaxed),
        carbon_lines = counts.carbon_lines.load(Relaxed),
        tcp_lines = counts.tcp_lines.load(Relaxed),
        too_long = counts.too_long.load(Relaxed),
        carbon_undelivered = counts.carbon_undelivered.load(Relaxed),
        "relay: counts"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_is_down_at_a_refusal_and_after_strikes_of_silence() {
        let mut strikes = 0;
        // One or two timeouts keep a live member up; the third takes it down.
        assert!(judge(Health::NoAnswer, &mut strikes, true));
        assert!(judge(Health::NoAnswer, &mut strikes, true));
        assert!(!judge(Health::NoAnswer, &mut strikes, true));
        // An answer brings it back and clears the count.
        assert!(judge(Health::Up, &mut strikes, false));
        assert!(judge(Health::NoAnswer, &mut strikes, true));
        assert!(judge(Health::Up, &mut strikes, true));
        // A refusal is down at once; a timeout keeps a down member down.
        assert!(!judge(Health::Down, &mut strikes, true));
        assert!(!judge(Health::NoAnswer, &mut strikes, false));
        assert!(judge(Health::Up, &mut strikes, false));
    }

    #[test]
    fn a_closed_port_is_down_and_a_silent_one_is_no_answer() {
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap();
        // Accepted by the kernel's backlog, never answered.
        assert_eq!(healthy(addr, Duration::from_millis(200)), Health::NoAnswer);
        drop(silent);
        assert_eq!(healthy(addr, Duration::from_millis(200)), Health::Down);
    }

    #[test]
    fn a_metric_name_is_what_comes_before_the_colon() {
        assert_eq!(metric_name(b"api.latency:320|ms|@0.1"), b"api.latency");
        assert_eq!(metric_name(b"no_colon"), b"no_colon");
        assert_eq!(metric_name(b":1|c"), b"");
    }
}
