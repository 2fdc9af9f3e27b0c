//! Wiring: opens the data directory, binds the listeners, starts the
//! receivers and the flusher, and stops them in an order that loses nothing:
//! stop accepting, drain what the sockets hold, run a final flush, send it,
//! save the gauges, checkpoint. HTTP and admin clients are not waited for
//! first: HTTP drains meanwhile, for at most `http_drain_timeout`.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::admin::{self, AdminState};
use crate::aggregate::Aggregator;
use crate::config::Config;
use crate::emit::Emitter;
use crate::events::store::{EventError, EventLimits, EventStore};
use crate::events::{self, EventQueue};
use crate::ingest::carbon::{self, OwnedPoint, PointSink};
use crate::ingest::{tcp, udp};
use crate::protocol::carbon::CarbonBad;
use crate::snapshot;
use crate::store::{Store, StoreError};
use crate::telemetry::{unix_now, unix_now_i64, Telemetry};

/// How long the final flush may take to reach carbon at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How long shutdown waits for admin connections once the data is safe.
const ADMIN_GRACE: Duration = Duration::from_secs(1);
/// How often gauges are saved while running.
const GAUGE_SAVE_EVERY: Duration = Duration::from_secs(60);

/// Why the daemon could not start. Each names the path or address and the
/// cause, so start-up failures are one readable line.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot use data_dir {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("data_dir {path} is in use by another rollupd (lock file {path}/LOCK is held)")]
    Locked { path: PathBuf },
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("cannot start the ClickHouse writer: {0}")]
    ClickHouse(crate::clickhouse::write::WriterError),
    #[error("cannot open the event store: {0}")]
    Events(#[from] EventError),
    #[error("cannot start alerting: {0}")]
    Alerts(#[from] crate::alert::engine::AlertError),
}

/// How often the store seals idle rows and checks whether a checkpoint is
/// due.
const MAINTAIN_EVERY: Duration = Duration::from_secs(1);
/// How often rows past their retention are deleted.
const RETENTION_EVERY: Duration = Duration::from_secs(600);

#[derive(Debug, Default)]
struct FlushControl {
    stop: bool,
}

/// A running daemon.
pub struct Daemon {
    shutdown: Arc<AtomicBool>,
    receivers: Vec<JoinHandle<()>>,
    admin: Option<JoinHandle<()>>,
    flusher: Option<JoinHandle<()>>,
    control: Arc<(Mutex<FlushControl>, Condvar)>,
    event_writer: Option<JoinHandle<()>>,
    agg: Option<Arc<Aggregator>>,
    http: Option<JoinHandle<()>>,
    store: Arc<Store>,
    /// `[storage.clickhouse]`: every accepted point also goes there.
    clickhouse: Option<Arc<crate::clickhouse::write::Writer>>,
    maintenance: Option<JoinHandle<()>>,
    sealer: Option<JoinHandle<()>>,
    alerts: Arc<crate::alert::engine::Alerts>,
    alerts_thread: Option<JoinHandle<()>>,
    dashboards: Arc<crate::dashboard::registry::Dashboards>,
    dashboards_thread: Option<JoinHandle<()>>,
    _lock: File,
    pub healthy: Arc<AtomicBool>,
    pub udp_addr: Option<SocketAddr>,
    pub tcp_addr: Option<SocketAddr>,
    pub admin_addr: Option<SocketAddr>,
}

#[allow(unsafe_code)] // flock(2): the data dir lock, through libc
fn lock_data_dir(dir: &Path) -> Result<File, DaemonError> {
    let err = |source| DaemonError::DataDir {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("LOCK"))
        .map_err(err)?;
    // SAFETY: flock on a file descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() == std::io::ErrorKind::WouldBlock {
            return Err(DaemonError::Locked {
                path: dir.to_owned(),
            });
        }
        return Err(err(e));
    }
    // Prove the directory is writable now rather than at the first snapshot.
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"ok").map_err(err)?;
    let _ = std::fs::remove_file(probe);
    Ok(f)
}

fn bind_tcp(what: &'static str, addr: SocketAddr) -> Result<TcpListener, DaemonError> {
    TcpListener::bind(addr).map_err(|source| DaemonError::Bind { what, addr, source })
}

impl Daemon {
    /// Starts everything the configuration asks for.
    pub fn start(cfg: Config) -> Result<Daemon, DaemonError> {
        let data_dir = cfg.server.data_dir.clone();
        let lock = lock_data_dir(&data_dir)?;
        let shutdown = Arc::new(AtomicBool::new(false));
        let telemetry = Arc::new(Telemetry::new());
        let store = Arc::new(open_store(&data_dir, &cfg)?);
        let clickhouse = match &cfg.storage.clickhouse {
            Some(ch) => {
                let w = crate::clickhouse::write::Writer::start(
                    &cfg.storage,
                    ch,
                    &data_dir.join("clickhouse-queue"),
                )
                .map_err(DaemonError::ClickHouse)?;
                let w = Arc::new(w);
                store.set_mirror(w.clone());
                tracing::info!(urls = ?ch.urls, database = %ch.database, cluster = ?ch.cluster, "writing every point to ClickHouse as well");
                Some(w)
            }
            None => None,
        };
        // One store of events: DogStatsD events reach it through the
        // aggregator's queue and the writer thread, HTTP ones directly. It is
        // in the store's engine, or with `engine = "clickhouse"` in a
        // ClickHouse table every aggregator shares (clickhouse::kv).
        let event_limits = EventLimits {
            max_events: cfg.storage.max_events,
            retention: cfg.storage.events_retention,
        };
        let shared_kv: Arc<dyn crate::store::kv::Kv> =
            match (cfg.storage.engine, &cfg.storage.clickhouse) {
                (crate::store::config::Engine::ClickHouse, Some(ch)) => Arc::new(
                    crate::clickhouse::kv::ClickHouseKv::new(ch)
                        .map_err(|e| DaemonError::ClickHouse(e.into()))?,
                ),
                _ => store.kv().clone(),
            };
        let event_store = Arc::new(
            if cfg.storage.engine == crate::store::config::Engine::ClickHouse {
                EventStore::open_shared(shared_kv.clone(), event_limits)
            } else {
                EventStore::open_with(shared_kv.clone(), event_limits)?
            },
        );
        events::import_spool(&event_store, &data_dir)?;
        let (queue, rx) = EventQueue::bounded();
        let event_writer = events::start_writer(rx, event_store.clone(), telemetry.clone())
            .map_err(DaemonError::Thread)?;
        let agg = Arc::new(Aggregator::new(&cfg.statsd, telemetry.clone(), queue));
        let restored = agg.restore_gauges(&snapshot::load(&snapshot::path(&data_dir)));
        if restored > 0 {
            tracing::info!(gauges = restored, "restored gauges from the last run");
        }

        let mut receivers = Vec::new();
        let mut udp_addr = None;
        if let Some(addr) = cfg.server.statsd_udp {
            let threads = match cfg.server.udp_receivers {
                0 => std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2),
                n => n,
            };
            let sockets =
                udp::bind(addr, cfg.server.udp_recv_buffer, threads).map_err(|source| {
                    DaemonError::Bind {
                        what: "statsd UDP",
                        addr,
                        source,
                    }
                })?;
            udp_addr = sockets.first().and_then(|s| s.local_addr().ok());
            receivers.extend(
                udp::start(
                    sockets,
                    cfg.server.max_packet_size,
                    agg.clone(),
                    shutdown.clone(),
                )
                .map_err(DaemonError::Thread)?,
            );
        }
        let tcp_limits = tcp::TcpLimits {
            max_line: cfg.server.max_line_length,
            max_connections: cfg.server.max_tcp_connections,
            idle_timeout: Some(cfg.server.tcp_idle_timeout).filter(|t| !t.is_zero()),
        };
        let mut tcp_addr = None;
        if let Some(mut addr) = cfg.server.statsd_tcp {
            // Same port as UDP when both ask for port 0 on one IP: a test
            // convenience that mirrors Etsy's one-port habit.
            if addr.port() == 0 {
                if let Some(u) = udp_addr.filter(|u| u.ip() == addr.ip()) {
                    addr.set_port(u.port());
                }
            }
            let l = match bind_tcp("statsd TCP", addr) {
                Ok(l) => l,
                Err(_) if cfg.server.statsd_tcp.is_some_and(|a| a.port() == 0) => {
                    bind_tcp("statsd TCP", cfg.server.statsd_tcp.unwrap_or(addr))?
                }
                Err(e) => return Err(e),
            };
            tcp_addr = l.local_addr().ok();
            receivers.push(
                tcp::start(l, tcp_limits, agg.clone(), shutdown.clone())
                    .map_err(DaemonError::Thread)?,
            );
        }

        let sink: Arc<dyn PointSink> = Arc::new(StoreSink {
            store: store.clone(),
            telemetry: telemetry.clone(),
        });
        let mut carbon_tcp_addr = None;
        if let Some(addr) = cfg.server.carbon_tcp {
            let l = bind_tcp("carbon TCP", addr)?;
            carbon_tcp_addr = l.local_addr().ok();
            receivers.push(
                carbon::start_tcp(l, tcp_limits, sink.clone(), shutdown.clone())
                    .map_err(DaemonError::Thread)?,
            );
        }
        let mut carbon_udp_addr = None;
        if let Some(addr) = cfg.server.carbon_udp {
            let sock = std::net::UdpSocket::bind(addr).map_err(|source| DaemonError::Bind {
                what: "carbon UDP",
                addr,
                source,
            })?;
            carbon_udp_addr = sock.local_addr().ok();
            receivers.push(
                carbon::start_udp(
                    sock,
                    cfg.server.max_packet_size,
                    sink.clone(),
                    shutdown.clone(),
                )
                .map_err(DaemonError::Thread)?,
            );
        }
        let http_listener = match cfg.server.http {
            Some(addr) => Some(bind_tcp("HTTP", addr)?),
            None => None,
        };
        let http_addr = http_listener.as_ref().and_then(|l| l.local_addr().ok());
        // What render, find, tags and alerts read.
        let source: Arc<dyn crate::store::source::SeriesSource> =
            match (cfg.storage.engine, &cfg.storage.clickhouse) {
                (crate::store::config::Engine::ClickHouse, Some(ch)) => {
                    tracing::info!(
                        "reading series from ClickHouse (storage.engine = \"clickhouse\")"
                    );
                    Arc::new(
                        crate::clickhouse::read::ClickHouseSource::new(
                            &cfg.storage,
                            ch,
                            shared_kv.clone(),
                        )
                        .map_err(StoreError::Rules)?,
                    )
                }
                _ => store.clone(),
            };
        let alerts = crate::alert::engine::Alerts::open(
            &store,
            source.clone(),
            event_store.clone(),
            &cfg.alerts,
            cfg.statsd.flush_interval,
            external_url(&cfg, http_addr),
            (cfg.storage.engine == crate::store::config::Engine::ClickHouse)
                .then(|| shared_kv.clone()),
        )?;
        let alerts_thread = alerts
            .start(shutdown.clone())
            .map_err(DaemonError::Thread)?;
        // Dashboards: the files (looked at every `[alerts] reload_check`,
        // as rule files are) and those saved in the store: the embedded
        // one, or with `engine = "clickhouse"` the table every aggregator
        // shares (read again at each check).
        let dashboards = crate::dashboard::registry::Dashboards::open(
            Path::new("."),
            &cfg.dashboards,
            Some(
                if cfg.storage.engine == crate::store::config::Engine::ClickHouse {
                    crate::dashboard::store::DashboardStore::shared(shared_kv.clone())
                } else {
                    crate::dashboard::store::DashboardStore::new(store.kv().clone())
                },
            ),
        );
        tracing::info!(dashboards = dashboards.read().len(), "dashboards loaded");
        let dashboards_thread = dashboards
            .start(cfg.alerts.reload_check, shutdown.clone())
            .map_err(DaemonError::Thread)?;
        // Shared by `/render` (which records) and the flush (which writes
        // the interval's latencies as series).
        let render_latency = Arc::new(crate::telemetry::render::RenderLatency::default());
        let http = match http_listener {
            Some(l) => {
                let http_limits = crate::http::ServeLimits {
                    max_connections: cfg.server.max_http_connections,
                    read_timeout: cfg.server.http_read_timeout,
                    drain: cfg.server.http_drain_timeout,
                };
                let state = Arc::new(crate::http::HttpState {
                    store: store.clone(),
                    source: source.clone(),
                    events: event_store.clone(),
                    api_token: cfg.server.api_token.clone(),
                    limits: crate::query::eval::Limits {
                        max_series: cfg.server.max_series_per_request,
                        max_points: cfg.server.max_points_per_request,
                        deadline: None,
                    },
                    default_tz: crate::query::time::zone(&cfg.server.time_zone)
                        .unwrap_or(chrono_tz::Tz::UTC),
                    telemetry: telemetry.clone(),
                    render_latency: render_latency.clone(),
                    gate: crate::http::gate::Gate::new(
                        cfg.server.concurrent_renders(),
                        cfg.server.render_timeout,
                    ),
                    read_token: cfg.server.read_token.clone(),
                    alerts: Some(alerts.clone()),
                    dashboards: dashboards.clone(),
                });
                Some(
                    crate::http::start(l, state, http_limits, shutdown.clone())
                        .map_err(DaemonError::Thread)?,
                )
            }
            None => None,
        };
        // Created after alerting and HTTP, so its own figures can read
        // their counts.
        let mut own = crate::emit::own::OwnSources::new(
            Some(store.clone()),
            Some(data_dir.clone()),
            Some(render_latency.clone()),
            Some(alerts.clone()),
        );
        own.clickhouse = clickhouse.clone();
        let emitter = Emitter::new(&cfg, telemetry.clone())
            .with_store(store.clone())
            .with_own(own);
        let healthy = Arc::new(AtomicBool::new(true));
        let mut admin_addr = None;
        let admin = match cfg.server.admin_tcp {
            Some(addr) => {
                let l = bind_tcp("admin", addr)?;
                admin_addr = l.local_addr().ok();
                let state = Arc::new(AdminState {
                    agg: agg.clone(),
                    backend: emitter.backend(),
                    healthy: healthy.clone(),
                    config_text: cfg.to_toml(),
                    started: unix_now(),
                    store: Some(store.clone()),
                    source: Some(source.clone()),
                });
                let limits = admin::Limits {
                    max_connections: cfg.server.max_admin_connections,
                    max_line: cfg.server.max_line_length,
                    idle_timeout: cfg.server.admin_idle_timeout,
                };
                Some(
                    admin::start(l, state, limits, shutdown.clone())
                        .map_err(DaemonError::Thread)?,
                )
            }
            None => None,
        };

        let control = Arc::new((Mutex::new(FlushControl::default()), Condvar::new()));
        let maintenance = {
            let (store, control) = (store.clone(), control.clone());
            std::thread::Builder::new()
                .name("store".into())
                .spawn(move || maintain_loop(&store, &control))
                .map_err(DaemonError::Thread)?
        };
        let sealer = {
            let (store, control) = (store.clone(), control.clone());
            std::thread::Builder::new()
                .name("seal".into())
                .spawn(move || seal_loop(&store, &control))
                .map_err(DaemonError::Thread)?
        };
        let flusher = {
            let (agg, control) = (agg.clone(), control.clone());
            let interval = cfg.statsd.flush_interval;
            let gauge_path = snapshot::path(&data_dir);
            std::thread::Builder::new()
                .name("flusher".into())
                .spawn(move || flush_loop(&agg, emitter, interval, &control, &gauge_path))
                .map_err(DaemonError::Thread)?
        };
        tracing::info!(
            statsd_udp = ?udp_addr,
            statsd_tcp = ?tcp_addr,
            carbon_tcp = ?carbon_tcp_addr,
            carbon_udp = ?carbon_udp_addr,
            http = ?http_addr,
            admin = ?admin_addr,
            data_dir = %data_dir.display(),
            flush_interval = ?cfg.statsd.flush_interval,
            "rollupd is up"
        );
        Ok(Daemon {
            shutdown,
            receivers,
            admin,
            flusher: Some(flusher),
            control,
            event_writer: Some(event_writer),
            agg: Some(agg),
            http,
            store,
            clickhouse,
            maintenance: Some(maintenance),
            sealer: Some(sealer),
            alerts,
            alerts_thread: Some(alerts_thread),
            dashboards,
            dashboards_thread: Some(dashboards_thread),
            _lock: lock,
            healthy,
            udp_addr,
            tcp_addr,
            admin_addr,
        })
    }

    pub fn aggregator(&self) -> Option<&Arc<Aggregator>> {
        self.agg.as_ref()
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// SIGHUP: alert rule files and dashboards read again. Returns one
    /// line per bad file (the old rules of a bad rule file keep running; a
    /// bad dashboard is left out).
    pub fn reload(&self) -> Vec<String> {
        let mut errors = self.alerts.reload();
        errors.extend(self.dashboards.reload_files(true));
        tracing::info!(
            dashboards = self.dashboards.read().len(),
            "dashboards reloaded"
        );
        errors
    }

    /// Stops in the order that loses nothing, and waits for it. The flush,
    /// the forward, the gauge save and the checkpoint wait only for the
    /// ingest sockets to drain; HTTP replies and admin connections finish
    /// meanwhile, HTTP within its drain deadline, so no client can hold
    /// back the data.
    pub fn stop(mut self) {
        tracing::info!("shutting down: draining sockets");
        self.shutdown.store(true, Relaxed);
        for h in self.receivers.drain(..) {
            let _ = h.join();
        }
        {
            let (lock, cv) = &*self.control;
            lock.lock().stop = true;
            cv.notify_all();
        }
        if let Some(h) = self.flusher.take() {
            let _ = h.join();
        }
        if let Some(h) = self.maintenance.take() {
            let _ = h.join();
        }
        // A seal in progress is finished, not cut short: its rows are
        // written before the closing checkpoint (a seal cut short is
        // redone from its fragments at the next start, at the same cost).
        if let Some(h) = self.sealer.take() {
            let _ = h.join();
        }
        // Alerting reads and writes the store: it ends (its round in
        // progress finished, its receivers given their bounded stop) before
        // the store closes.
        if let Some(h) = self.alerts_thread.take() {
            let _ = h.join();
        }
        // The file watcher touches only files: it ends within 200 ms.
        if let Some(h) = self.dashboards_thread.take() {
            let _ = h.join();
        }
        // A checkpoint now makes the next start-up replay nothing; if the
        // disk is full, `close` logs or spills what the log lacks and says
        // where every point is.
        self.store.close();
        // After the last write: what the writer holds is sent, or waits in
        // its disk queue for the next start.
        if let Some(w) = &self.clickhouse {
            w.stop();
        }
        // Bounded by http_drain_timeout, which ran during the flush.
        if let Some(h) = self.http.take() {
            let _ = h.join();
        }
        // An admin connection notices shutdown within its poll, unless a
        // client is not reading a long reply: it is not waited for past
        // ADMIN_GRACE (the process exits under it).
        if let Some(h) = self.admin.take() {
            join_within(h, ADMIN_GRACE, "admin connections");
        }
        // The aggregator holds the last event queue sender; dropping it lets
        // the event writer store what is queued and end.
        self.agg.take();
        if let Some(h) = self.event_writer.take() {
            let _ = h.join();
        }
        tracing::info!("rollupd stopped");
    }
}

/// Where people reach the HTTP API, for links in notifications:
/// `[alerts] external_url`, else the bound address (an unspecified IP
/// becomes the loopback one).
fn external_url(cfg: &Config, http: Option<SocketAddr>) -> String {
    if !cfg.alerts.external_url.is_empty() {
        return cfg.alerts.external_url.clone();
    }
    match http {
        Some(mut a) => {
            if a.ip().is_unspecified() {
                a.set_ip(if a.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
            }
            format!("http://{a}")
        }
        None => "http://127.0.0.1:8080".into(),
    }
}

/// Joins `h` if it ends within `grace`; otherwise leaves it running and
/// says so.
fn join_within(h: JoinHandle<()>, grace: Duration, what: &str) {
    let deadline = Instant::now() + grace;
    while !h.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if h.is_finished() {
        let _ = h.join();
    } else {
        tracing::warn!(what, grace = ?grace, "not finished at shutdown; not waited for");
    }
}

/// Carbon plaintext points go straight to the store, one batch per read.
struct StoreSink {
    store: Arc<Store>,
    telemetry: Arc<Telemetry>,
}

impl PointSink for StoreSink {
    fn write_points(&self, points: &[OwnedPoint]) {
        let batch: Vec<crate::store::Point<'_>> = points
            .iter()
            .map(|p| crate::store::Point {
                name: &p.name,
                timestamp: p.timestamp,
                value: p.value,
            })
            .collect();
        self.telemetry
            .carbon_points
            .fetch_add(points.len() as u64, Relaxed);
        // Every carbon batch fails while the disk is full: logged at a
        // bounded rate (the store counts the failures in write_errors).
        if let Err(e) = self.store.write(&batch, &[], unix_now_i64()) {
            if !self.telemetry.may_log() {
                return;
            }
            tracing::error!(error = %e, points = points.len(), "carbon points could not be logged; they are kept in memory until a checkpoint succeeds");
        }
    }

    fn bad_line(&self, reason: CarbonBad, line: &[u8]) {
        self.telemetry.carbon_bad_line(reason, line);
    }

    fn connection_refused(&self, max_connections: usize) {
        self.telemetry
            .connection_refused(crate::telemetry::Listener::CarbonTcp, max_connections);
    }
}

/// Opens the RocksDB store under `data_dir/store`.
fn open_store(data_dir: &Path, cfg: &Config) -> Result<Store, DaemonError> {
    let dir = data_dir.join("store");
    #[cfg(feature = "rocksdb")]
    let kv: Arc<dyn crate::store::kv::Kv> = Arc::new(rollupd_rocks::RocksKv::open(&dir).map_err(
        |source| StoreError::Open {
            path: dir.clone(),
            source,
        },
    )?);
    // Built without RocksDB (a quick-test build): points live in memory.
    #[cfg(not(feature = "rocksdb"))]
    let kv: Arc<dyn crate::store::kv::Kv> = {
        tracing::warn!("built without the rocksdb feature: the store is in memory only");
        Arc::new(crate::store::mem::MemKv::new())
    };
    let store = Store::open(kv, &dir, &cfg.storage, unix_now_i64())?;
    let replayed = store.stats.replayed_batches.load(Relaxed);
    tracing::info!(
        series = store.index().len(),
        replayed_batches = replayed,
        path = %dir.display(),
        "store opened"
    );
    Ok(store)
}

/// Waits `every` (or until the stop), then runs `job`, until the flusher
/// stops; a failure is logged, loudly but not once a second for an hour
/// of full disk.
fn upkeep_loop(
    control: &(Mutex<FlushControl>, Condvar),
    what: &'static str,
    mut job: impl FnMut() -> Result<(), StoreError>,
) {
    let mut last_error_log: Option<Instant> = None;
    loop {
        {
            let (lock, cv) = control;
            let mut c = lock.lock();
            if !c.stop {
                cv.wait_for(&mut c, MAINTAIN_EVERY);
            }
            if c.stop {
                return;
            }
        }
        if let Err(e) = job() {
            if last_error_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(30)) {
                last_error_log = Some(Instant::now());
                tracing::error!(error = %e, what, "store upkeep failed; points stay in memory and are retried");
            }
        }
    }
}

/// Checkpoints when due (and on memory pressure) and enforces retention.
/// Sealing runs on its own thread ([`seal_loop`]), so a seal of minutes
/// never holds a checkpoint back.
fn maintain_loop(store: &Store, control: &(Mutex<FlushControl>, Condvar)) {
    let mut last_retention: Option<Instant> = None;
    upkeep_loop(control, "checkpoint", || {
        let mut result = store.checkpoint_when_due(false);
        if last_retention.is_none_or(|t| t.elapsed() >= RETENTION_EVERY) {
            last_retention = Some(Instant::now());
            let now = unix_now_i64();
            result = result.and(store.enforce_retention(now).map(|_| ()));
        }
        result
    });
}

/// Seals rows whose span has ended.
fn seal_loop(store: &Store, control: &(Mutex<FlushControl>, Condvar)) {
    upkeep_loop(control, "seal", || {
        store.seal_ended_rows(unix_now_i64()).map(|_| ())
    });
}

fn flush_loop(
    agg: &Aggregator,
    emitter: Emitter,
    interval: Duration,
    control: &(Mutex<FlushControl>, Condvar),
    gauge_path: &Path,
) {
    let start = Instant::now();
    let mut k: u32 = 1;
    let mut last_save = Instant::now();
    let mut last_stamp: i64 = 0;
    let save_gauges = || {
        if let Err(e) = snapshot::save(gauge_path, agg.gauges()) {
            tracing::error!(path = %gauge_path.display(), error = %e, "cannot save gauge snapshot");
        }
    };
    loop {
        let due = start + interval * k;
        {
            let (lock, cv) = control;
            let mut c = lock.lock();
            while !c.stop && Instant::now() < due {
                cv.wait_until(&mut c, due);
            }
            if c.stop {
                break;
            }
        }
        let flush = agg.flush(interval);
        last_stamp = flush.timestamp;
        emitter.emit(&flush);
        tracing::debug!(series = flush.num_stats(), took = ?flush.aggregation_time, "flushed");
        // Etsy aligns flushes to start + k * interval; a flush that overran
        // skips the ticks it missed instead of firing them back to back.
        k += 1;
        let elapsed = start.elapsed();
        if elapsed > interval * k {
            // At least k (elapsed > interval × k); past u32 it saturates.
            let behind =
                u32::try_from(elapsed.as_nanos() / interval.as_nanos().max(1)).unwrap_or(u32::MAX);
            tracing::warn!(
                skipped = behind.saturating_add(1) - k,
                "flush fell behind the interval"
            );
            k = behind.saturating_add(1);
        }
        if last_save.elapsed() >= GAUGE_SAVE_EVERY {
            save_gauges();
            last_save = Instant::now();
        }
    }
    // The partial interval since the last tick: Etsy loses it, we flush it,
    // stamped as the interval it belongs to (the next tick). Stamped with
    // the clock, it could share a storage slot with the last full flush
    // and overwrite it (last write wins), losing that flush's counts.
    let mut flush = agg.flush(interval);
    let interval_secs = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX) / 1000;
    let next_tick = last_stamp.saturating_add(interval_secs.max(1));
    if last_stamp > 0 && flush.timestamp < next_tick {
        flush.timestamp = next_tick;
    }
    emitter.emit(&flush);
    save_gauges();
    emitter.shutdown(SHUTDOWN_GRACE);
}
