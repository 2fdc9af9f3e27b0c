//! `rollupd-load`: offers realistic statsd traffic over loopback UDP at a
//! chosen rate and reports how much of it the daemon processed.
//!
//! The traffic is a fixed pool of pre-rendered multi-metric datagrams (so
//! the sender spends its time in the kernel, not formatting numbers) over a
//! fixed set of keys: about 60% counters (some sampled at `@0.1`), 30%
//! timers, 5% gauges and 5% sets. Datagrams go out with `sendmmsg` in
//! batches, paced to the offered rate; the rate actually achieved is
//! measured and reported, never assumed.
//!
//! "Processed" is read from the daemon itself, before and after the run:
//! rollupd's admin `totals` (cumulative `metrics_received`), or for Etsy
//! statsd, whose admin port answers `ERROR` to `totals`, the
//! `statsd.metrics_received` counter of its `counters` command. Etsy resets
//! that counter at every flush, so run Etsy with a `flushInterval` longer
//! than the test.
//!
//! Only loopback addresses are accepted: this is a benchmark tool, not a
//! traffic generator for other people's networks.
#![allow(unsafe_code)] // sendmmsg(2) and setsockopt(2), through libc
#![expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a load tool: its float-to-count casts are of key shares, rates and latencies of this run (non-negative, rounded, clamped to at most 60,000 or MAX_BATCH), and a sendmmsg batch is at most MAX_BATCH (64) headers"
)]

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;

/// Offer statsd traffic over loopback UDP and measure what the daemon kept.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The daemon's statsd UDP address (loopback only).
    #[arg(long, default_value = "127.0.0.1:8125")]
    target: SocketAddr,
    /// The daemon's admin (management) TCP address (loopback only).
    #[arg(long, default_value = "127.0.0.1:8126")]
    admin: SocketAddr,
    /// Offered metric lines per second.
    #[arg(long, default_value_t = 1_000_000)]
    rate: u64,
    /// How long to send, in seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Distinct metric keys.
    #[arg(long, default_value_t = 10_000)]
    keys: usize,
    /// Largest datagram payload, in bytes (1432 fits a 1500-byte MTU with
    /// room for headers, as statsd clients configure it).
    #[arg(long, default_value_t = 1432)]
    packet_size: usize,
    /// Seed for the key names, the traffic mix and the values.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Pre-rendered datagrams in the pool that is sent round and round.
    #[arg(long, default_value_t = 4096)]
    pool: usize,
    /// Source sockets (distinct source ports) per sending thread, used in
    /// turn, as many clients would be. A daemon that spreads clients over
    /// SO_REUSEPORT sockets by address hash (rollupd does) needs many of
    /// them to be evenly loaded: 8 flows split 75/25 over two sockets in
    /// one measurement, 64 flows about 45/55.
    #[arg(long, default_value_t = 64)]
    sockets: usize,
    /// Sending threads; each offers rate / threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Exit with status 2 if the loss exceeds this percentage.
    #[arg(long)]
    max_loss: Option<f64>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rollupd-load: {e}");
            ExitCode::FAILURE
        }
    }
}

/// An error worth one line to the user.
type Res<T> = Result<T, String>;

fn run(args: &Args) -> Res<ExitCode> {
    check_args(args)?;
    let pool = Pool::build(args);
    let mix = pool.mix;
    println!(
        "pool: {} datagrams, {:.1} lines and {:.0} bytes per datagram; {} keys; \
         traffic c {:.1}% (of which @0.1 {:.1}%), ms {:.1}%, g {:.1}%, s {:.1}%",
        pool.packets.len(),
        pool.total_lines as f64 / pool.packets.len() as f64,
        pool.data.len() as f64 / pool.packets.len() as f64,
        args.keys,
        pct(mix[0], pool.total_lines),
        pct(pool.sampled_counters, mix[0]),
        pct(mix[1], pool.total_lines),
        pct(mix[2], pool.total_lines),
        pct(mix[3], pool.total_lines),
    );

    let before = read_daemon(args.admin, None)?;
    println!(
        "daemon: {} (admin {}), metrics_received before: {}",
        before.kind.name(),
        args.admin,
        before.metrics_received
    );

    let sent = send_all(args, &pool)?;
    let send_secs = sent.elapsed.as_secs_f64();

    let after = wait_for_drain(args.admin, before.kind)?;
    let processed = after
        .metrics_received
        .saturating_sub(before.metrics_received);
    let lost = sent.lines.saturating_sub(processed);
    let loss_pct = pct(lost, sent.lines);
    let offered_rate = sent.lines as f64 / send_secs;
    let processed_rate = processed as f64 / send_secs;

    println!(
        "sent: {} lines in {} datagrams ({} sendmmsg calls, {} retried on ENOBUFS/EAGAIN) over {:.2} s",
        sent.lines, sent.packets, sent.calls, sent.retries, send_secs
    );
    println!(
        "offered:   {:>12.0} lines/s (asked {})",
        offered_rate, args.rate
    );
    println!("processed: {processed_rate:>12.0} lines/s");
    println!("loss:      {loss_pct:>12.4} % ({lost} lines)");
    if let (Some(b), Some(a)) = (before.udp_kernel_drops, after.udp_kernel_drops) {
        println!(
            "udp_kernel_drops: {} datagrams during the run ({} since daemon start)",
            a.saturating_sub(b),
            a
        );
    }
    println!(
        "summary: daemon={} asked={} seconds={:.2} offered={:.0} processed={:.0} loss_pct={:.4}",
        before.kind.name(),
        args.rate,
        send_secs,
        offered_rate,
        processed_rate,
        loss_pct
    );
    match args.max_loss {
        Some(max) if loss_pct > max => {
            eprintln!("rollupd-load: loss {loss_pct:.4}% exceeds --max-loss {max}%");
            Ok(ExitCode::from(2))
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}

fn check_args(args: &Args) -> Res<()> {
    for (what, addr) in [("--target", args.target), ("--admin", args.admin)] {
        if !addr.ip().is_loopback() {
            return Err(format!(
                "{what} {addr} is not a loopback address; this tool only sends to this machine"
            ));
        }
    }
    if args.rate == 0 || !(args.seconds > 0.0 && args.seconds.is_finite()) {
        return Err("--rate and --seconds must be positive".into());
    }
    if args.keys < 4 {
        return Err("--keys must be at least 4 (one per metric type)".into());
    }
    if !(128..=65507).contains(&args.packet_size) {
        return Err("--packet-size must be between 128 and 65507".into());
    }
    if args.pool == 0 || args.sockets == 0 || args.threads == 0 {
        return Err("--pool, --sockets and --threads must be at least 1".into());
    }
    Ok(())
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

// ---------------------------------------------------------------------------
// Traffic

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Counter,
    Timer,
    Gauge,
    Set,
}

/// Share of the traffic per type (counter, timer, gauge, set). Keys are
/// split in the same proportions, so every key is about equally busy.
const MIX: [(Kind, f64); 4] = [
    (Kind::Counter, 0.60),
    (Kind::Timer, 0.30),
    (Kind::Gauge, 0.05),
    (Kind::Set, 0.05),
];

/// The pre-rendered datagrams, back to back in one buffer.
struct Pool {
    data: Vec<u8>,
    /// (offset, length, lines) of each datagram in `data`.
    packets: Vec<(usize, usize, u64)>,
    total_lines: u64,
    /// Lines per type, in `MIX` order.
    mix: [u64; 4],
    sampled_counters: u64,
}

impl Pool {
    fn build(args: &Args) -> Pool {
        let mut rng = fastrand::Rng::with_seed(args.seed);
        let keys = key_names(&mut rng, args.keys);
        let mut pool = Pool {
            data: Vec::with_capacity(args.pool * args.packet_size),
            packets: Vec::with_capacity(args.pool),
            total_lines: 0,
            mix: [0; 4],
            sampled_counters: 0,
        };
        let mut line = Vec::with_capacity(128);
        let mut pending: Option<(usize, Vec<u8>)> = None;
        for _ in 0..args.pool {
            let start = pool.data.len();
            let mut lines = 0u64;
            loop {
                let (t, l) = match pending.take() {
                    Some(p) => p,
                    None => {
                        line.clear();
                        let t = pick_type(&mut rng);
                        let names = &keys[t];
                        let name = &names[rng.usize(..names.len())];
                        let sampled = render_line(&mut rng, MIX[t].0, name, &mut line);
                        if sampled {
                            pool.sampled_counters += 1;
                        }
                        (t, line.clone())
                    }
                };
                let sep = usize::from(lines > 0);
                if pool.data.len() - start + sep + l.len() > args.packet_size {
                    // A datagram never starts with a line that cannot fit
                    // (check_args keeps packet_size above any line length).
                    pending = Some((t, l));
                    break;
                }
                if sep == 1 {
                    pool.data.push(b'\n');
                }
                pool.data.extend_from_slice(&l);
                lines += 1;
                pool.mix[t] += 1;
            }
            pool.packets.push((start, pool.data.len() - start, lines));
            pool.total_lines += lines;
        }
        // Counts of the line that was rendered but never placed.
        if let Some((t, l)) = pending {
            if MIX[t].0 == Kind::Counter && l.ends_with(b"|@0.1") {
                pool.sampled_counters -= 1;
            }
        }
        pool
    }
}

fn pick_type(rng: &mut fastrand::Rng) -> usize {
    let mut u = rng.f64();
    for (i, (_, share)) in MIX.iter().enumerate() {
        if u < *share {
            return i;
        }
        u -= share;
    }
    MIX.len() - 1
}

/// Key names per type, shaped like real ones:
/// `shop.web.checkout.endpoint123.latency`. The number makes every name
/// distinct.
fn key_names(rng: &mut fastrand::Rng, keys: usize) -> [Vec<String>; 4] {
    const APPS: [&str; 6] = ["app", "shop", "billing", "search", "auth", "media"];
    const TIERS: [&str; 5] = ["web", "api", "worker", "cron", "edge"];
    const SERVICES: [&str; 8] = [
        "api", "checkout", "cart", "login", "feed", "upload", "render", "profile",
    ];
    const SUFFIXES: [&[&str]; 4] = [
        &[
            "requests",
            "errors",
            "hits",
            "misses",
            "bytes_out",
            "retries",
        ],
        &["latency", "db_time", "render_time", "queue_wait"],
        &["queue_depth", "connections", "memory_mb", "threads"],
        &["unique_users", "unique_ips"],
    ];
    let mut out: [Vec<String>; 4] = Default::default();
    let mut assigned = 0;
    for (t, (_, share)) in MIX.iter().enumerate() {
        let n = if t == MIX.len() - 1 {
            keys - assigned
        } else {
            ((keys as f64 * share).round() as usize).clamp(1, keys - assigned - (3 - t))
        };
        assigned += n;
        for _ in 0..n {
            let i = rng.usize(..SUFFIXES[t].len());
            out[t].push(format!(
                "{}.{}.{}.endpoint{}.{}",
                APPS[rng.usize(..APPS.len())],
                TIERS[rng.usize(..TIERS.len())],
                SERVICES[rng.usize(..SERVICES.len())],
                // Unique across all types: the running key number.
                assigned - n + out[t].len(),
                SUFFIXES[t][i],
            ));
        }
    }
    out
}

/// Appends one line; returns whether it is a counter sampled at 0.1.
fn render_line(rng: &mut fastrand::Rng, kind: Kind, name: &str, out: &mut Vec<u8>) -> bool {
    out.extend_from_slice(name.as_bytes());
    out.push(b':');
    match kind {
        Kind::Counter => {
            // Mostly `1` (an event happened), sometimes an amount.
            if rng.u8(..100) < 85 {
                out.push(b'1');
            } else {
                let _ = write!(out, "{}", rng.u32(2..2000));
            }
            out.extend_from_slice(b"|c");
            // Busy code paths sample their counters.
            if rng.u8(..100) < 15 {
                out.extend_from_slice(b"|@0.1");
                return true;
            }
        }
        Kind::Timer => {
            // Latencies are roughly log-normal: a median near 20 ms with a
            // long tail, written with up to three decimals as clients do.
            let ms = (20f64.ln() + 1.0 * normal(rng)).exp().min(60_000.0);
            if ms >= 100.0 {
                let _ = write!(out, "{}", ms.round() as u64);
            } else {
                let _ = write!(out, "{:.3}", ms);
            }
            out.extend_from_slice(b"|ms");
        }
        Kind::Gauge => {
            // Mostly absolute values, sometimes a relative change.
            match rng.u8(..100) {
                0..=9 => {
                    let _ = write!(
                        out,
                        "{}{}",
                        if rng.bool() { '+' } else { '-' },
                        rng.u32(1..50)
                    );
                }
                _ => {
                    let _ = write!(out, "{}", rng.u32(0..100_000));
                }
            }
            out.extend_from_slice(b"|g");
        }
        Kind::Set => {
            let _ = write!(out, "u{}", rng.u32(0..50_000));
            out.extend_from_slice(b"|s");
        }
    }
    false
}

/// A standard normal variate (Box-Muller).
fn normal(rng: &mut fastrand::Rng) -> f64 {
    let u1 = rng.f64().max(f64::MIN_POSITIVE);
    let u2 = rng.f64();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

// ---------------------------------------------------------------------------
// Sending

#[derive(Debug, Default)]
struct Sent {
    lines: u64,
    packets: u64,
    calls: u64,
    retries: u64,
    elapsed: Duration,
}

fn send_all(args: &Args, pool: &Pool) -> Res<Sent> {
    let duration = Duration::from_secs_f64(args.seconds);
    let rate = args.rate as f64 / args.threads as f64;
    let results: Vec<Res<Sent>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..args.threads)
            .map(|i| {
                // Each thread starts at its own place in the pool.
                let first = i * pool.packets.len() / args.threads;
                s.spawn(move || send_paced(args, pool, first, rate, duration))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a sender panicked".into())))
            .collect()
    });
    let mut total = Sent::default();
    for r in results {
        let r = r?;
        total.lines += r.lines;
        total.packets += r.packets;
        total.calls += r.calls;
        total.retries += r.retries;
        total.elapsed = total.elapsed.max(r.elapsed);
    }
    Ok(total)
}

/// Most datagrams handed to one `sendmmsg`.
const MAX_BATCH: usize = 64;

fn send_paced(args: &Args, pool: &Pool, first: usize, rate: f64, duration: Duration) -> Res<Sent> {
    // Sleeps here are a fraction of a millisecond; the default 50 µs timer
    // slack would make the pacing lumpy.
    // SAFETY: prctl with an integer argument changes only this thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
    }
    let sockets = (0..args.sockets)
        .map(|_| connect_udp(args.target))
        .collect::<Res<Vec<_>>>()?;
    let mut iov: Vec<libc::iovec> = pool
        .packets
        .iter()
        .map(|&(off, len, _)| libc::iovec {
            iov_base: pool.data[off..].as_ptr() as *mut libc::c_void,
            iov_len: len,
        })
        .collect();
    // SAFETY: mmsghdr is plain old data; all-zero is a valid value.
    let mut hdrs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; MAX_BATCH];

    // About half a millisecond of traffic per call: big enough to amortise
    // the system call, small enough that the offered load stays smooth.
    let lines_per_packet = pool.total_lines as f64 / pool.packets.len() as f64;
    let packets_per_sec = rate / lines_per_packet;
    let batch = ((packets_per_sec * 0.0005) as usize).clamp(1, MAX_BATCH);

    let n = pool.packets.len();
    let mut next = first % n;
    let mut sock = 0;
    let mut sent = Sent::default();
    let start = Instant::now();
    let end = start + duration;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        // Where the schedule says we should be; sleep while ahead of it.
        let due_at = start + Duration::from_secs_f64(sent.lines as f64 / rate);
        if due_at > now {
            std::thread::sleep((due_at - now).min(end - now));
            continue;
        }
        let k = batch.min(n - next);
        for (j, h) in hdrs[..k].iter_mut().enumerate() {
            h.msg_hdr.msg_iov = &mut iov[next + j];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_len = 0;
        }
        let fd = sockets[sock].as_raw_fd();
        sock = (sock + 1) % sockets.len();
        let mut done = 0;
        while done < k {
            // SAFETY: each header points at one iovec into `pool.data`,
            // which outlives the call and is only read; sockets are
            // connected, so no address is needed.
            let r = unsafe { libc::sendmmsg(fd, hdrs[done..k].as_mut_ptr(), (k - done) as u32, 0) };
            sent.calls += 1;
            // Negative is the error return (-1, with errno set).
            let Ok(r) = usize::try_from(r) else {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::ENOBUFS) | Some(libc::EAGAIN) => {
                        sent.retries += 1;
                        std::thread::yield_now();
                        continue;
                    }
                    Some(libc::ECONNREFUSED) => {
                        return Err(format!(
                            "nothing is listening on UDP {} (connection refused)",
                            args.target
                        ))
                    }
                    _ => return Err(format!("sending to {} failed: {e}", args.target)),
                }
            };
            for &(_, _, lines) in &pool.packets[next + done..next + done + r] {
                sent.lines += lines;
            }
            sent.packets += r as u64;
            done += r;
        }
        next = (next + k) % n;
    }
    sent.elapsed = start.elapsed();
    Ok(sent)
}

fn connect_udp(target: SocketAddr) -> Res<UdpSocket> {
    let bind: SocketAddr = if target.is_ipv6() {
        "[::1]:0".parse().expect("literal address")
    } else {
        "127.0.0.1:0".parse().expect("literal address")
    };
    let s = UdpSocket::bind(bind).map_err(|e| format!("cannot open a UDP socket: {e}"))?;
    s.connect(target)
        .map_err(|e| format!("cannot connect a UDP socket to {target}: {e}"))?;
    Ok(s)
}

// ---------------------------------------------------------------------------
// Reading the daemon's counters

#[derive(Debug, Clone, Copy, PartialEq)]
enum DaemonKind {
    /// rollupd: the `totals` command, cumulative since start.
    Rollupd,
    /// Etsy statsd: `counters`, which holds the current interval only.
    Etsy,
}

impl DaemonKind {
    fn name(self) -> &'static str {
        match self {
            DaemonKind::Rollupd => "rollupd",
            DaemonKind::Etsy => "etsy-statsd",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Reading {
    kind: DaemonKind,
    metrics_received: u64,
    udp_kernel_drops: Option<u64>,
}

const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads `metrics_received`. With `kind` unknown, tries rollupd's `totals`
/// first and falls back to Etsy's `counters` on `ERROR`.
fn read_daemon(admin: SocketAddr, kind: Option<DaemonKind>) -> Res<Reading> {
    let stream = TcpStream::connect_timeout(&admin, ADMIN_TIMEOUT).map_err(|e| {
        format!("cannot connect to the daemon's admin port {admin}: {e} (is the daemon running?)")
    })?;
    let io_err = |e: io::Error| format!("admin port {admin}: {e}");
    stream
        .set_read_timeout(Some(ADMIN_TIMEOUT))
        .map_err(io_err)?;
    let mut out = stream.try_clone().map_err(io_err)?;
    let mut reader = BufReader::new(stream);

    if kind != Some(DaemonKind::Etsy) {
        out.write_all(b"totals\n").map_err(io_err)?;
        match read_reply(&mut reader).map_err(io_err)? {
            Reply::Error => {}
            Reply::Body(text) => {
                let field = |name: &str| {
                    text.lines()
                        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
                        .and_then(|v| v.trim().parse::<u64>().ok())
                };
                let metrics_received = field("metrics_received").ok_or_else(|| {
                    format!("admin port {admin}: no metrics_received in the totals reply")
                })?;
                return Ok(Reading {
                    kind: DaemonKind::Rollupd,
                    metrics_received,
                    udp_kernel_drops: field("udp_kernel_drops"),
                });
            }
        }
    }
    out.write_all(b"counters\n").map_err(io_err)?;
    match read_reply(&mut reader).map_err(io_err)? {
        Reply::Error => Err(format!(
            "admin port {admin} answers ERROR to both `totals` and `counters`; is it a statsd admin port?"
        )),
        Reply::Body(text) => {
            let metrics_received = etsy_metrics_received(&text).ok_or_else(|| {
                format!("admin port {admin}: no metrics_received counter in the `counters` reply")
            })?;
            Ok(Reading {
                kind: DaemonKind::Etsy,
                metrics_received,
                udp_kernel_drops: None,
            })
        }
    }
}

enum Reply {
    Error,
    Body(String),
}

/// Reads one reply: lines up to the `END` trailer, or a lone `ERROR`.
fn read_reply(reader: &mut impl BufRead) -> io::Result<Reply> {
    let mut text = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed mid-reply",
            ));
        }
        let trimmed = line.trim_end();
        if text.is_empty() && trimmed == "ERROR" {
            return Ok(Reply::Error);
        }
        if trimmed == "END" {
            return Ok(Reply::Body(text));
        }
        text.push_str(&line);
    }
}

/// Finds `'<prefix>.metrics_received': N` in Node's `util.inspect` output.
fn etsy_metrics_received(text: &str) -> Option<u64> {
    let at = text.find(".metrics_received")?;
    let rest = &text[at + ".metrics_received".len()..];
    let rest = rest
        .trim_start_matches('\'')
        .strip_prefix(':')?
        .trim_start();
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Waits until the daemon has worked through what it still holds in its
/// socket buffer: at least a second, then until the counter stops moving.
fn wait_for_drain(admin: SocketAddr, kind: DaemonKind) -> Res<Reading> {
    std::thread::sleep(Duration::from_secs(1));
    let mut last = read_daemon(admin, Some(kind))?;
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(250));
        let now = read_daemon(admin, Some(kind))?;
        if now.metrics_received == last.metrics_received {
            return Ok(now);
        }
        last = now;
    }
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_etsy_counters() {
        let text = "{\n  'statsd.bad_lines_seen': 0,\n  'statsd.packets_received': 12,\n  'statsd.metrics_received': 345,\n  'a.b': 3\n}\n";
        assert_eq!(etsy_metrics_received(text), Some(345));
        let one = "{ 'statsd.bad_lines_seen': 0, 'statsd.metrics_received': 0 }";
        assert_eq!(etsy_metrics_received(one), Some(0));
    }

    #[test]
    fn pool_respects_size_and_mix() {
        let args = Args::parse_from(["rollupd-load", "--pool", "512", "--keys", "1000"]);
        let pool = Pool::build(&args);
        assert_eq!(pool.packets.len(), 512);
        for &(off, len, lines) in &pool.packets {
            assert!(len <= 1432);
            let text = &pool.data[off..off + len];
            assert_eq!(text.split(|&b| b == b'\n').count() as u64, lines);
        }
        let c = pct(pool.mix[0], pool.total_lines);
        assert!((55.0..65.0).contains(&c), "{c}");
    }
}
