//! `rollupd-soak`: holds a number of live series on a running rollupd and
//! watches what they cost it.
//!
//! Each series gets one point per `--interval` seconds with the real time
//! as its timestamp, over carbon plaintext TCP (the default) or as statsd
//! over UDP (`--statsd`, counters or timers, through the aggregator). The
//! live series grow linearly from none to `--series` over `--ramp` seconds
//! and stay there until `--duration` has passed. Each series' points are
//! spread over the interval, as many independent senders would send them.
//!
//! Every 10 s it prints a line: live series, points sent per second over
//! those 10 s (and what the schedule asked, so a daemon that pushes back
//! shows), the daemon's RSS and peak RSS from `/proc/<--pid>/status` (also
//! per live series, or per statsd name: a counter is two stored series, a
//! timer a dozen) and `du` of its `--data-dir`.
//!
//! Only loopback addresses are accepted, and the run is bounded in time
//! (at most a day) and in series (at most ten million).
#![expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a load tool: slot counts and series indices are non-negative counters of this run, which check() bounds to a day and ten million series"
)]

use std::io::{self, BufWriter, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};

/// Hold live series on a rollupd over loopback and report its RSS and disk.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Live series at the top of the ramp.
    #[arg(long, default_value_t = 100_000)]
    series: usize,
    /// Seconds between two points of a series.
    #[arg(long, default_value_t = 10)]
    interval: u64,
    /// Seconds over which the live series grow from none to `--series`.
    #[arg(long, default_value_t = 60)]
    ramp: u64,
    /// Seconds to run in all (ramp included).
    #[arg(long, default_value_t = 600)]
    duration: u64,
    /// The daemon's carbon plaintext TCP address (loopback only).
    #[arg(long, default_value = "127.0.0.1:2003")]
    carbon: SocketAddr,
    /// Carbon TCP connections; series are spread over them, each series
    /// always on the same one.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Send statsd over UDP instead of carbon.
    #[arg(long)]
    statsd: bool,
    /// The daemon's statsd UDP address (loopback only).
    #[arg(long, default_value = "127.0.0.1:8125")]
    statsd_addr: SocketAddr,
    /// What each statsd name is.
    #[arg(long, value_enum, default_value_t = StatsdKind::Counter)]
    kind: StatsdKind,
    /// First component of every name.
    #[arg(long, default_value = "soak")]
    prefix: String,
    /// The daemon's process id, for its RSS.
    #[arg(long)]
    pid: Option<u32>,
    /// The daemon's data_dir, for `du`.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StatsdKind {
    /// `name:N|c`: one counter per name: two stored series each (rate and
    /// count).
    Counter,
    /// `name:N|ms`: one timer per name: a dozen stored series each (count,
    /// rate, sum, mean, upper, percentiles...) and a histogram series.
    Timer,
}

/// Largest statsd datagram payload: fits a 1500-byte MTU with headers.
const DATAGRAM: usize = 1432;
/// How often the schedule is caught up with.
const TICK: Duration = Duration::from_millis(20);
/// How often a line is printed.
const REPORT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rollupd-soak: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(args: &Args) -> Result<(), String> {
    let target = if args.statsd {
        args.statsd_addr
    } else {
        args.carbon
    };
    if !target.ip().is_loopback() {
        return Err(format!(
            "{target} is not a loopback address; this tool only sends to this machine"
        ));
    }
    if args.series == 0 || args.series > 10_000_000 {
        return Err("--series must be between 1 and 10,000,000".into());
    }
    if args.interval == 0 || args.duration == 0 || args.duration > 86_400 {
        return Err("--interval must be positive and --duration between 1 and 86,400 s".into());
    }
    if args.connections == 0 || args.connections > 256 {
        return Err("--connections must be between 1 and 256".into());
    }
    Ok(())
}

/// Where the lines go.
enum Sink {
    Carbon(Vec<BufWriter<TcpStream>>),
    Statsd {
        sock: UdpSocket,
        to: SocketAddr,
        datagram: Vec<u8>,
    },
}

impl Sink {
    fn open(args: &Args) -> io::Result<Sink> {
        if args.statsd {
            let sock = UdpSocket::bind("127.0.0.1:0")?;
            return Ok(Sink::Statsd {
                sock,
                to: args.statsd_addr,
                datagram: Vec::with_capacity(DATAGRAM),
            });
        }
        let conns = (0..args.connections)
            .map(|_| {
                let s = TcpStream::connect_timeout(&args.carbon, Duration::from_secs(5))?;
                s.set_nodelay(true)?;
                s.set_write_timeout(Some(Duration::from_secs(30)))?;
                Ok(BufWriter::with_capacity(64 << 10, s))
            })
            .collect::<io::Result<_>>()?;
        Ok(Sink::Carbon(conns))
    }

    /// Sends series `i`'s point.
    fn send(&mut self, args: &Args, i: usize, value: u64, now: u64) -> io::Result<()> {
        let mut b = itoa::Buffer::new();
        match self {
            Sink::Carbon(conns) => {
                let n = conns.len();
                let w = &mut conns[i % n];
                write_name(w, &args.prefix, i)?;
                w.write_all(b" ")?;
                w.write_all(b.format(value).as_bytes())?;
                w.write_all(b" ")?;
                w.write_all(b.format(now).as_bytes())?;
                w.write_all(b"\n")
            }
            Sink::Statsd { sock, to, datagram } => {
                let mut line = Vec::with_capacity(64);
                write_name(&mut line, &args.prefix, i)?;
                line.push(b':');
                line.extend_from_slice(b.format(value).as_bytes());
                line.extend_from_slice(match args.kind {
                    StatsdKind::Counter => b"|c",
                    StatsdKind::Timer => b"|ms",
                });
                if datagram.len() + 1 + line.len() > DATAGRAM {
                    sock.send_to(datagram, *to)?;
                    datagram.clear();
                }
                if !datagram.is_empty() {
                    datagram.push(b'\n');
                }
                datagram.extend_from_slice(&line);
                Ok(())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Carbon(conns) => conns.iter_mut().try_for_each(|c| c.flush()),
            Sink::Statsd { sock, to, datagram } => {
                if !datagram.is_empty() {
                    sock.send_to(datagram, *to)?;
                    datagram.clear();
                }
                Ok(())
            }
        }
    }
}

/// `PREFIX.host.NNNN.appA.metric.K`: 1,000 series per host, so one host's
/// glob names 1,000 series.
fn write_name(w: &mut impl Write, prefix: &str, i: usize) -> io::Result<()> {
    let mut b = itoa::Buffer::new();
    write!(w, "{prefix}.host.{:04}.app", i / 1000)?;
    w.write_all(b.format((i / 100) % 10).as_bytes())?;
    w.write_all(b".metric.")?;
    w.write_all(b.format(i % 100).as_bytes())
}

/// A `/proc/<pid>/status` field given in kB, in MiB.
fn status_mb(pid: u32, field: &str) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
}

/// Bytes allocated to the files under `dir`, as `du` counts them.
fn du(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => m.blocks() * 512 + du(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn run(args: &Args) -> Result<(), String> {
    check(args)?;
    let mut sink = Sink::open(args).map_err(|e| format!("cannot connect: {e}"))?;
    let interval = args.interval as f64;
    let ramp = args.ramp as f64;
    let duration = Duration::from_secs(args.duration);
    let started = Instant::now();
    // Each carbon series' running total: it grows by 0..=3 a point.
    let mut values: Vec<u64> = Vec::new();
    let mut rng = fastrand::Rng::with_seed(5);
    // Sends are scheduled in "slots": series i's k-th point is due at
    // (k + i / series) * interval seconds, so every interval each live
    // series sends once, spread evenly. `done` counts the slots sent.
    let total_slots = |t: f64| (t / interval * args.series as f64) as u64;
    let mut done = 0u64;
    let (mut sent, mut sent_at_report) = (0u64, 0u64);
    let mut next_report = REPORT;
    let mut last_report = started;
    let mut live = 0usize;
    println!(
        "rollupd-soak: {} series over {} to {} (one point each per {} s, ramp {} s, run {} s)",
        args.series,
        if args.statsd {
            format!("statsd {:?}", args.kind)
        } else {
            format!("carbon TCP x{}", args.connections)
        },
        if args.statsd {
            args.statsd_addr
        } else {
            args.carbon
        },
        args.interval,
        args.ramp,
        args.duration
    );
    while started.elapsed() < duration {
        let t = started.elapsed().as_secs_f64();
        live = if ramp <= 0.0 {
            args.series
        } else {
            ((t / ramp).min(1.0) * args.series as f64) as usize
        };
        let due = total_slots(t);
        let now = unix_now();
        while done < due {
            let i = (done % args.series as u64) as usize;
            done += 1;
            if i >= live {
                continue;
            }
            if i >= values.len() {
                values.resize(i + 1, 0);
            }
            // Carbon: a counter's running total. Statsd: what one interval
            // adds to a counter, or one timing in ms.
            let value = match (args.statsd, args.kind) {
                (false, _) => {
                    values[i] += rng.u64(0..=3);
                    values[i]
                }
                (true, StatsdKind::Counter) => rng.u64(1..=5),
                (true, StatsdKind::Timer) => rng.u64(1..1000),
            };
            sink.send(args, i, value, now)
                .map_err(|e| format!("send: {e}"))?;
            sent += 1;
        }
        sink.flush().map_err(|e| format!("send: {e}"))?;
        if started.elapsed() >= next_report {
            report(args, started, last_report, live, sent - sent_at_report);
            sent_at_report = sent;
            last_report = Instant::now();
            next_report += REPORT;
        }
        let behind = total_slots(started.elapsed().as_secs_f64()).saturating_sub(done);
        if behind == 0 {
            std::thread::sleep(TICK);
        }
    }
    sink.flush().map_err(|e| format!("send: {e}"))?;
    report(args, started, last_report, live, sent - sent_at_report);
    println!(
        "rollupd-soak: {sent} points sent in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One line: what was sent since `since`, and what the daemon holds.
fn report(args: &Args, started: Instant, since: Instant, live: usize, sent: u64) {
    let secs = since.elapsed().as_secs_f64().max(1e-3);
    // A series made live sends its first point at its next turn in the
    // interval, so during the ramp fewer are sent than this.
    let full = live as f64 / args.interval as f64;
    let unit = if args.statsd { "name" } else { "series" };
    let mut line = format!(
        "{:>6.0} s: {live} {unit}s live, {:.0} points/s sent (all live: {:.0}/s)",
        started.elapsed().as_secs_f64(),
        sent as f64 / secs,
        full
    );
    if let Some(pid) = args.pid {
        match (status_mb(pid, "VmRSS"), status_mb(pid, "VmHWM")) {
            (Some(rss), Some(hwm)) => line.push_str(&format!(
                ", daemon RSS {rss:.0} MB (peak {hwm:.0} MB, {:.0} B/{unit})",
                rss * 1048576.0 / live.max(1) as f64
            )),
            _ => line.push_str(&format!(", daemon {pid} not found")),
        }
    }
    if let Some(dir) = &args.data_dir {
        line.push_str(&format!(", du {:.1} MB", du(dir) as f64 / 1e6));
    }
    println!("{line}");
}
