//! Shared harness for the integration tests: a running `rollupd` process
//! (killed when dropped), a fake carbon plaintext receiver, an admin client,
//! and polling helpers that always have a deadline.
//!
//! Everything listens and sends on 127.0.0.1 only.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub(crate) mod alertmanager;
pub(crate) mod relay;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The daemon binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_rollupd");

/// The last line of every flush the graphite backend sends (Etsy's backend
/// ends each flush with its own `graphiteStats`, `flush_length` last). The
/// fake carbon uses it to tell where one flush ends.
pub(crate) const FLUSH_TRAILER: &str = "statsd.graphiteStats.flush_length";

/// How often the polling helpers look again.
const POLL: Duration = Duration::from_millis(10);

/// Polls `f` until it returns `Some`, or panics after `timeout` naming `what`.
pub(crate) fn wait_until<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(POLL);
    }
}

/// Like [`wait_until`] but returns `None` at the deadline instead of panicking,
/// so the caller can put more context in its failure message.
pub(crate) fn poll_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// Waits for a child process to end, killing it (and panicking) at the deadline.
pub(crate) fn wait_child(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process {} did not exit within {timeout:?}", child.id());
        }
        std::thread::sleep(POLL);
    }
}

/// Runs the binary with `args` to completion (bounded), capturing its output.
pub(crate) fn run_bin(args: &[&str], timeout: Duration) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let mut child = Command::new(BIN)
        .args(args)
        .env("ROLLUPD_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("stdout file"))
        .stderr(File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("spawn rollupd");
    let status = wait_child(&mut child, timeout);
    Output {
        status,
        stdout: std::fs::read(&out_path).unwrap_or_default(),
        stderr: std::fs::read(&err_path).unwrap_or_default(),
    }
}

// ---------------------------------------------------------------------------
// Ports

/// Free ports on 127.0.0.1: statsd UDP, statsd TCP, admin, HTTP, carbon
/// TCP, carbon UDP. The sockets are all held until every port is chosen so
/// they differ; the daemon binds them right after. If another process takes
/// one meanwhile, [`Daemon::start`] sees the daemon fail to bind and retries
/// with new ports.
fn free_ports() -> [u16; 6] {
    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    let cudp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    let tcps: Vec<TcpListener> = (0..4)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind tcp"))
        .collect();
    let port = |l: &TcpListener| l.local_addr().unwrap().port();
    [
        udp.local_addr().unwrap().port(),
        port(&tcps[0]),
        port(&tcps[1]),
        port(&tcps[2]),
        port(&tcps[3]),
        cudp.local_addr().unwrap().port(),
    ]
}

/// A TCP port on 127.0.0.1 that nothing listens on (at the time of asking).
/// The wall clock in Unix seconds.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
        .try_into()
        .expect("clock before 2^63 s")
}

/// A GET over a real socket: status and body, whatever the status.
pub(crate) fn http_get(url: &str) -> (u16, String) {
    let r = ureq::get(url)
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .expect("request");
    let status = r.status().as_u16();
    (status, r.into_body().read_to_string().unwrap_or_default())
}

pub(crate) fn unused_tcp_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind tcp");
    l.local_addr().unwrap()
}

// ---------------------------------------------------------------------------
// Configuration

/// What a test wants of a daemon; ports and paths are filled in at start.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub udp: bool,
    pub tcp: bool,
    pub flush_interval: String,
    /// Extra TOML lines for `[server]`.
    pub server: Vec<String>,
    /// Extra TOML lines for `[statsd]`.
    pub statsd: Vec<String>,
    /// Where `[forward.graphite]` sends, if anywhere.
    pub carbon: Option<SocketAddr>,
    /// Extra TOML after everything else (e.g. `[[storage.retention]]` tables).
    pub storage: Vec<String>,
}

impl Options {
    pub(crate) fn new(flush_interval: &str) -> Self {
        Options {
            udp: true,
            tcp: true,
            flush_interval: flush_interval.to_string(),
            server: Vec::new(),
            statsd: Vec::new(),
            carbon: None,
            storage: Vec::new(),
        }
    }

    pub(crate) fn storage(mut self, toml: &str) -> Self {
        self.storage.push(toml.to_string());
        self
    }

    pub(crate) fn carbon(mut self, addr: SocketAddr) -> Self {
        self.carbon = Some(addr);
        self
    }

    pub(crate) fn statsd(mut self, line: &str) -> Self {
        self.statsd.push(line.to_string());
        self
    }

    pub(crate) fn server(mut self, line: &str) -> Self {
        self.server.push(line.to_string());
        self
    }

    pub(crate) fn no_tcp(mut self) -> Self {
        self.tcp = false;
        self
    }

    pub(crate) fn no_udp(mut self) -> Self {
        self.udp = false;
        self
    }
}

/// A TOML basic string (paths under a temp dir have nothing exotic, but
/// escape anyway).
pub(crate) fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

struct Addrs {
    udp: Option<SocketAddr>,
    tcp: Option<SocketAddr>,
    admin: SocketAddr,
    http: SocketAddr,
    carbon_tcp: SocketAddr,
    carbon_udp: SocketAddr,
}

fn render_config(o: &Options, a: &Addrs, data_dir: &Path) -> String {
    let opt = |x: Option<SocketAddr>| x.map(|a| a.to_string()).unwrap_or_default();
    let mut t = String::new();
    t.push_str("[server]\n");
    t.push_str(&format!("statsd_udp = {}\n", toml_str(&opt(a.udp))));
    t.push_str(&format!("statsd_tcp = {}\n", toml_str(&opt(a.tcp))));
    t.push_str(&format!("admin_tcp = {}\n", toml_str(&a.admin.to_string())));
    t.push_str(&format!("http = {}\n", toml_str(&a.http.to_string())));
    t.push_str(&format!(
        "carbon_tcp = {}\n",
        toml_str(&a.carbon_tcp.to_string())
    ));
    t.push_str(&format!(
        "carbon_udp = {}\n",
        toml_str(&a.carbon_udp.to_string())
    ));
    t.push_str(&format!(
        "data_dir = {}\n",
        toml_str(data_dir.to_str().expect("utf-8 temp path"))
    ));
    for l in &o.server {
        t.push_str(l);
        t.push('\n');
    }
    t.push_str("\n[statsd]\n");
    t.push_str(&format!(
        "flush_interval = {}\n",
        toml_str(&o.flush_interval)
    ));
    for l in &o.statsd {
        t.push_str(l);
        t.push('\n');
    }
    for l in &o.storage {
        t.push_str(l);
        t.push('\n');
    }
    if let Some(c) = o.carbon {
        t.push_str("\n[forward.graphite]\n");
        t.push_str(&format!("address = {}\n", toml_str(&c.to_string())));
    }
    t
}

// ---------------------------------------------------------------------------
// The daemon process

/// A running `rollupd --config FILE`. Dropping it kills the process, so a
/// failing test never leaves a daemon behind.
pub(crate) struct Daemon {
    child: Child,
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
    pub admin: SocketAddr,
    pub carbon_tcp: SocketAddr,
    pub carbon_udp: SocketAddr,
    pub http: SocketAddr,
    client: UdpSocket,
    pub data_dir: PathBuf,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
    exited: Option<ExitStatus>,
}

/// A daemon that did not come up: how it exited and what it logged.
#[derive(Debug)]
pub(crate) struct StartFailure {
    pub status: ExitStatus,
    pub log: String,
}

static STARTS: AtomicUsize = AtomicUsize::new(0);

impl Daemon {
    /// Starts a daemon with its files under `dir` (`data_dir` = `dir/data`)
    /// and waits until its admin port answers as this daemon.
    pub(crate) fn start(dir: &Path, o: &Options) -> Daemon {
        Self::start_with_data_dir(dir, &dir.join("data"), o)
    }

    pub(crate) fn start_with_data_dir(dir: &Path, data_dir: &Path, o: &Options) -> Daemon {
        match Self::try_start(dir, data_dir, o) {
            Ok(d) => d,
            Err(f) => panic!("rollupd failed to start ({}):\n{}", f.status, f.log),
        }
    }

    /// Starts a daemon; `Err` if the process exits before it is up. A failure
    /// to bind one of the chosen ports (taken by someone else meanwhile) is
    /// retried with new ports.
    pub(crate) fn try_start(
        dir: &Path,
        data_dir: &Path,
        o: &Options,
    ) -> Result<Daemon, StartFailure> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::spawn_once(dir, data_dir, o) {
                Err(f) if attempt < 4 && f.log.contains("cannot listen") => continue,
                other => return other,
            }
        }
    }

    fn spawn_once(dir: &Path, data_dir: &Path, o: &Options) -> Result<Daemon, StartFailure> {
        let n = STARTS.fetch_add(1, SeqCst);
        let [udp, tcp, admin, http, carbon_tcp, carbon_udp] = free_ports();
        let ip = [127, 0, 0, 1];
        let addrs = Addrs {
            udp: o.udp.then(|| SocketAddr::from((ip, udp))),
            tcp: o.tcp.then(|| SocketAddr::from((ip, tcp))),
            admin: SocketAddr::from((ip, admin)),
            http: SocketAddr::from((ip, http)),
            carbon_tcp: SocketAddr::from((ip, carbon_tcp)),
            carbon_udp: SocketAddr::from((ip, carbon_udp)),
        };
        let config_path = dir.join(format!("rollupd-{n}.toml"));
        std::fs::write(&config_path, render_config(o, &addrs, data_dir)).expect("write config");
        let log_path = dir.join(format!("rollupd-{n}.log"));
        let child = Command::new(BIN)
            .arg("--config")
            .arg(&config_path)
            .env("ROLLUPD_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log_path).expect("log file"))
            .spawn()
            .expect("spawn rollupd");
        let mut d = Daemon {
            child,
            udp: addrs.udp,
            tcp: addrs.tcp,
            admin: addrs.admin,
            carbon_tcp: addrs.carbon_tcp,
            carbon_udp: addrs.carbon_udp,
            http: addrs.http,
            client: UdpSocket::bind("127.0.0.1:0").expect("bind udp client"),
            data_dir: data_dir.to_owned(),
            config_path,
            log_path,
            exited: None,
        };
        d.wait_ready()?;
        Ok(d)
    }

    /// Up means: the admin port answers `config` with this daemon's own
    /// data_dir (so a port clash with another process is not mistaken for
    /// success). The admin listener is bound after the statsd ones.
    fn wait_ready(&mut self) -> Result<(), StartFailure> {
        let want = format!(
            "data_dir = {}",
            toml_str(self.data_dir.to_str().expect("utf-8 path"))
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.exited = Some(status);
                return Err(StartFailure {
                    status,
                    log: self.log(),
                });
            }
            // Connect only once the daemon says it is up, i.e. holds its
            // ports: before that, the admin port may belong to someone else
            // (a fake carbon of a parallel test bound to the same ephemeral
            // port), and our `config` lines would land in that test's data.
            let up = self.log().contains("rollupd is up");
            let conn = up
                .then(|| TcpStream::connect_timeout(&self.admin, Duration::from_millis(200)).ok())
                .flatten();
            if let Some(s) = conn {
                let mut a = Admin::from_stream(s);
                a.send("config");
                a.send("health");
                if let Some(text) = a.try_read_until("health: ", Duration::from_secs(2)) {
                    if text.contains(&want) {
                        return Ok(());
                    }
                }
            }
            if Instant::now() >= deadline {
                panic!("rollupd did not come up within 20 s; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the daemon wrote to stderr so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub(crate) fn is_running(&mut self) -> bool {
        if self.exited.is_some() {
            return false;
        }
        match self.child.try_wait().expect("try_wait") {
            Some(s) => {
                self.exited = Some(s);
                false
            }
            None => true,
        }
    }

    /// `kill -9`: no shutdown path runs.
    pub(crate) fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let st = self.child.wait().expect("wait");
        self.exited = Some(st);
    }

    /// Sends SIGTERM. Through libc, not the `kill` command: a minimal
    /// Debian has no procps (found by .ci/fresh-machine).
    #[allow(unsafe_code)] // kill(2), through libc
    pub(crate) fn sigterm(&self) {
        let pid = libc::pid_t::try_from(self.pid()).expect("pid fits pid_t");
        // SAFETY: kill(2) with a pid we spawned and still own (not yet
        // reaped) and a valid signal number; it touches no memory.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(
            rc,
            0,
            "kill -TERM {} failed: {}",
            self.pid(),
            std::io::Error::last_os_error()
        );
    }

    /// Waits for the process to exit (bounded); panics with the log if it
    /// does not.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(s) = self.exited {
            return s;
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                self.exited = Some(s);
                return s;
            }
            if Instant::now() >= deadline {
                panic!(
                    "rollupd (pid {}) did not exit within {timeout:?}; log:\n{}",
                    self.pid(),
                    self.log()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// SIGTERM, then asserts a clean exit (status 0) within 15 s.
    pub(crate) fn stop(&mut self) {
        self.sigterm();
        let status = self.wait_exit(Duration::from_secs(15));
        assert!(
            status.success(),
            "rollupd exited with {status} after SIGTERM; log:\n{}",
            self.log()
        );
    }

    /// One UDP datagram to the statsd port.
    /// Sends one datagram from this test's one client socket, so the
    /// daemon sees one sender (as with one app), whose datagrams it applies
    /// in order.
    pub(crate) fn send_udp(&self, datagram: &[u8]) {
        self.client
            .send_to(datagram, self.udp.expect("UDP listener enabled"))
            .expect("send udp");
    }

    /// A connection to the statsd TCP port.
    pub(crate) fn statsd_tcp(&self) -> TcpStream {
        let s = TcpStream::connect_timeout(
            &self.tcp.expect("TCP listener enabled"),
            Duration::from_secs(5),
        )
        .expect("connect statsd tcp");
        s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    /// Writes `text` on a new statsd TCP connection and closes it.
    pub(crate) fn send_tcp(&self, text: &str) {
        let mut s = self.statsd_tcp();
        s.write_all(text.as_bytes()).expect("write statsd tcp");
    }

    pub(crate) fn admin(&self) -> Admin {
        Admin::connect(self.admin)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------
// Admin client

/// A connection to the management port.
pub(crate) struct Admin {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Admin {
    pub(crate) fn connect(addr: SocketAddr) -> Admin {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect admin");
        Admin::from_stream(s)
    }

    pub(crate) fn from_stream(s: TcpStream) -> Admin {
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        Admin {
            stream: s,
            buf: Vec::new(),
        }
    }

    /// Writes bytes as they are (no newline added).
    pub(crate) fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write admin bytes");
    }

    pub(crate) fn send(&mut self, cmd: &str) {
        self.stream
            .write_all(format!("{cmd}\n").as_bytes())
            .expect("write admin command");
    }

    /// Reads until `pat` has arrived; returns everything up to and including
    /// it (the rest stays buffered). `None` at the deadline or on EOF.
    pub(crate) fn try_read_until(&mut self, pat: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(i) = find(&self.buf, pat.as_bytes()) {
                let rest = self.buf.split_off(i + pat.len());
                let got = std::mem::replace(&mut self.buf, rest);
                return Some(String::from_utf8_lossy(&got).into_owned());
            }
            if Instant::now() >= deadline {
                return None;
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return None,
            }
        }
    }

    pub(crate) fn read_until(&mut self, pat: &str) -> String {
        match self.try_read_until(pat, Duration::from_secs(5)) {
            Some(s) => s,
            None => panic!(
                "admin reply did not contain {pat:?} within 5 s; got {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
        }
    }

    /// Sends `cmd` and reads its reply up to `end`.
    pub(crate) fn cmd(&mut self, cmd: &str, end: &str) -> String {
        self.send(cmd);
        self.read_until(end)
    }

    /// `counters` / `gauges` parsed into name -> value.
    pub(crate) fn numbers(&mut self, cmd: &str) -> BTreeMap<String, f64> {
        let text = self.cmd(cmd, "END\n\n");
        parse_inspect(&text)
            .into_iter()
            .map(|(k, v)| match v {
                JsValue::Number(x) => (k, x),
                JsValue::List(_) => panic!("{cmd}: {k} is a list in {text:?}"),
            })
            .collect()
    }

    /// `timers` parsed into name -> samples.
    pub(crate) fn timers(&mut self) -> BTreeMap<String, Vec<f64>> {
        let text = self.cmd("timers", "END\n\n");
        parse_inspect(&text)
            .into_iter()
            .map(|(k, v)| match v {
                JsValue::List(x) => (k, x),
                JsValue::Number(_) => panic!("timers: {k} is not a list in {text:?}"),
            })
            .collect()
    }

    /// `totals` parsed into name -> value.
    /// `fetch name from until` on the admin port: (timestamp, value) pairs
    /// and the step.
    pub(crate) fn fetch(
        &mut self,
        name: &str,
        from: i64,
        until: i64,
    ) -> (u32, Vec<(i64, Option<f64>)>) {
        let text = self.cmd(&format!("fetch {name} {from} {until}"), "END\n");
        let mut step = 0;
        let mut out = Vec::new();
        for line in text.lines() {
            if let Some(s) = line.strip_prefix("step ") {
                step = s.trim().parse().expect("step");
            } else if let Some((t, v)) = line.split_once('\t') {
                let t: i64 = t.parse().expect("timestamp");
                out.push((
                    t,
                    if v == "None" {
                        None
                    } else {
                        Some(v.parse().expect("value"))
                    },
                ));
            } else if line.starts_with("ERROR") {
                panic!("fetch {name}: {line}");
            }
        }
        (step, out)
    }

    /// The present values of `fetch`, by timestamp.
    pub(crate) fn points(&mut self, name: &str, from: i64, until: i64) -> BTreeMap<i64, f64> {
        self.fetch(name, from, until)
            .1
            .into_iter()
            .filter_map(|(t, v)| v.map(|v| (t, v)))
            .collect()
    }

    /// `store` counters.
    pub(crate) fn store(&mut self) -> BTreeMap<String, u64> {
        self.cmd("store", "END\n")
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(": ")?;
                Some((
                    k.trim_start_matches("store.").to_string(),
                    v.trim().parse().ok()?,
                ))
            })
            .collect()
    }

    pub(crate) fn totals(&mut self) -> BTreeMap<String, u64> {
        let text = self.cmd("totals", "END\n\n");
        text.lines()
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| {
                let v = v
                    .trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("totals: {k} = {v:?} is not a count"));
                (k.to_string(), v)
            })
            .collect()
    }

    /// True once the daemon has closed the connection (bounded wait).
    pub(crate) fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut chunk = [0u8; 1024];
        while Instant::now() < deadline {
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return true,
            }
        }
        false
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum JsValue {
    Number(f64),
    List(Vec<f64>),
}

/// Parses the admin port's `util.inspect`-style dump of a flat object:
/// `{ 'a.b': 3, c: [ 1, 2 ] }` (on one line or one entry per line), followed
/// by `END`.
pub(crate) fn parse_inspect(text: &str) -> Vec<(String, JsValue)> {
    let body = text.split("\nEND").next().unwrap_or("").trim();
    let body = body
        .strip_prefix('{')
        .and_then(|b| b.strip_suffix('}'))
        .unwrap_or_else(|| panic!("not an object dump: {text:?}"));
    let mut out = Vec::new();
    let mut s = body.trim_start();
    while !s.is_empty() {
        let (key, rest) = if let Some(r) = s.strip_prefix('\'') {
            let mut key = String::new();
            let mut chars = r.char_indices();
            let end = loop {
                match chars.next() {
                    Some((_, '\\')) => {
                        if let Some((_, c)) = chars.next() {
                            key.push(c);
                        }
                    }
                    Some((i, '\'')) => break i,
                    Some((_, c)) => key.push(c),
                    None => panic!("unterminated key in {text:?}"),
                }
            };
            (key, &r[end + 1..])
        } else {
            let end = s.find(':').unwrap_or_else(|| panic!("no ':' in {text:?}"));
            (s[..end].to_string(), &s[end..])
        };
        let rest = rest
            .strip_prefix(':')
            .unwrap_or_else(|| panic!("no ':' after {key:?} in {text:?}"))
            .trim_start();
        let (value, rest) = if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').expect("unterminated list");
            let items = r[..end]
                .split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(|x| parse_num(x).unwrap_or_else(|| panic!("bad list item {x:?}")))
                .collect();
            (JsValue::List(items), &r[end + 1..])
        } else {
            let end = rest.find([',', '\n']).unwrap_or(rest.len());
            let v = rest[..end].trim();
            let x = parse_num(v).unwrap_or_else(|| panic!("bad value {v:?} in {text:?}"));
            (JsValue::Number(x), &rest[end..])
        };
        out.push((key, value));
        s = rest.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// A number as JavaScript prints it (`1e+21`, `NaN`, `Infinity` included).
pub(crate) fn parse_num(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

// ---------------------------------------------------------------------------
// Fake carbon

/// One line carbon received.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CarbonLine {
    pub name: String,
    pub value: f64,
    pub ts: i64,
}

/// One complete flush: the lines of one payload, up to and including the
/// graphite backend's trailer line.
#[derive(Clone, Default)]
pub(crate) struct Flush {
    pub lines: Vec<CarbonLine>,
}

/// Compact, for failure messages: `@ts { name value, ... }`.
impl std::fmt::Debug for Flush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "@{} {{", self.timestamp())?;
        for (i, l) in self.lines.iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            write!(f, "{sep}{} {}", l.name, l.value)?;
        }
        write!(f, " }}")
    }
}

impl Flush {
    pub(crate) fn get(&self, name: &str) -> Option<f64> {
        self.lines.iter().find(|l| l.name == name).map(|l| l.value)
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// name -> value (a name that appears twice keeps its last value).
    pub(crate) fn map(&self) -> BTreeMap<String, f64> {
        self.lines
            .iter()
            .map(|l| (l.name.clone(), l.value))
            .collect()
    }

    pub(crate) fn timestamp(&self) -> i64 {
        self.lines.first().map(|l| l.ts).unwrap_or(0)
    }
}

#[derive(Debug, Default)]
struct CarbonState {
    flushes: Vec<Flush>,
    /// Lines that are not `name value ts`.
    malformed: Vec<String>,
    accepted: usize,
    closed: usize,
    /// Accept attempts that found no connection waiting.
    idle_accepts: u64,
}

/// A carbon plaintext receiver on 127.0.0.1. Lines are grouped into flushes
/// by the trailer line that ends each flush.
pub(crate) struct Carbon {
    addr: SocketAddr,
    state: Arc<Mutex<CarbonState>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Carbon {
    pub(crate) fn start() -> Carbon {
        Carbon::start_on("127.0.0.1:0".parse().unwrap())
    }

    /// Listens on `addr` (e.g. a port the daemon was told about earlier).
    pub(crate) fn start_on(addr: SocketAddr) -> Carbon {
        let listener = TcpListener::bind(addr).expect("bind fake carbon");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(CarbonState::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut readers = Vec::new();
                while !stop.load(SeqCst) {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            state.lock().unwrap().accepted += 1;
                            let (state, stop) = (state.clone(), stop.clone());
                            readers
                                .push(std::thread::spawn(move || read_conn(conn, &state, &stop)));
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            state.lock().unwrap().idle_accepts += 1;
                            std::thread::sleep(Duration::from_millis(10))
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
                for r in readers {
                    let _ = r.join();
                }
            })
        };
        Carbon {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every complete flush so far, oldest first.
    pub(crate) fn flushes(&self) -> Vec<Flush> {
        self.state.lock().unwrap().flushes.clone()
    }

    pub(crate) fn flush_count(&self) -> usize {
        self.state.lock().unwrap().flushes.len()
    }

    /// Waits for complete flush number `i` (0-based) and returns it.
    pub(crate) fn wait_flush(&self, i: usize, timeout: Duration) -> Flush {
        wait_until(timeout, &format!("flush #{i} at the fake carbon"), || {
            self.state.lock().unwrap().flushes.get(i).cloned()
        })
    }

    /// Waits until every connection made so far is accepted, read to its
    /// end and closed. Called after the daemon exited, it means carbon holds
    /// everything the daemon sent.
    pub(crate) fn wait_all_closed(&self, timeout: Duration) {
        // A connection the daemon made before exiting is in the accept queue
        // already: once an accept attempt finds the queue empty, every such
        // connection has been accepted.
        let idle_at_start = self.state.lock().unwrap().idle_accepts;
        wait_until(timeout, "the daemon's carbon connections to end", || {
            let s = self.state.lock().unwrap();
            (s.idle_accepts > idle_at_start && s.closed == s.accepted).then_some(())
        })
    }

    /// Lines that were not `name value timestamp`.
    pub(crate) fn malformed(&self) -> Vec<String> {
        self.state.lock().unwrap().malformed.clone()
    }

    /// Sum of `name` over every complete flush.
    pub(crate) fn sum(&self, name: &str) -> f64 {
        self.flushes().iter().filter_map(|f| f.get(name)).sum()
    }
}

impl Drop for Carbon {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_conn(mut conn: TcpStream, state: &Mutex<CarbonState>, stop: &AtomicBool) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_millis(50)));
    let mut pending: Vec<u8> = Vec::new();
    let mut current = Flush::default();
    let mut chunk = vec![0u8; 64 * 1024];
    while !stop.load(SeqCst) {
        match conn.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                pending.extend_from_slice(&chunk[..n]);
                while let Some(i) = pending.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=i).collect();
                    let line = String::from_utf8_lossy(&line[..i]).into_owned();
                    let parts: Vec<&str> = line.split(' ').collect();
                    let parsed = match parts.as_slice() {
                        [name, value, ts] => match (parse_num(value), ts.parse::<i64>()) {
                            (Some(value), Ok(ts)) => Some(CarbonLine {
                                name: name.to_string(),
                                value,
                                ts,
                            }),
                            _ => None,
                        },
                        _ => None,
                    };
                    let mut s = state.lock().unwrap();
                    match parsed {
                        Some(l) => {
                            let end = l.name.contains(FLUSH_TRAILER);
                            current.lines.push(l);
                            if end {
                                s.flushes.push(std::mem::take(&mut current));
                            }
                        }
                        None => s.malformed.push(line),
                    }
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    state.lock().unwrap().closed += 1;
}

/// Etsy's internal names (`statsd.` under any namespace).
pub(crate) fn is_internal(name: &str) -> bool {
    format!(".{name}").contains(".statsd.")
}
