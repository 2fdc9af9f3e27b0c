//! Annotation events (deploys and the like): graphite-web's events, posted
//! over HTTP or sent over statsd as DogStatsD `_e{...}` lines, kept in one
//! store ([`store::EventStore`], in the store's engine).
//!
//! The receive path only pushes into a bounded in-memory queue that is
//! never waited on (full means counted and dropped); the writer thread
//! moves what it holds into the event store, so a burst of events never
//! makes a UDP receiver wait on disk. The same thread deletes events past
//! `events_retention`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use rollupd_protocol::dogstatsd::DogEvent;
use rollupd_telemetry::{unix_now, unix_now_i64, Telemetry};

pub mod store;

use store::{EventError, EventStore};

/// Events held in memory before the writer thread stores them.
const QUEUE_CAPACITY: usize = 10_000;
/// Events the writer stores per write, when a burst has queued many.
const WRITE_BATCH: usize = 1_000;
/// How often retention runs at most; shorter retentions run more often
/// (half the retention, at least once a second).
const EXPIRE_EVERY_MAX: Duration = Duration::from_secs(60);
/// At most this many refusal log lines a second; the rest are counted.
const LOGS_PER_SECOND: u64 = 5;

/// A new event in graphite-web's vocabulary: `what`, `tags`, `when`,
/// `data` (the store gives it an id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedEvent {
    pub when: i64,
    pub what: String,
    pub tags: Vec<String>,
    pub data: String,
}

impl QueuedEvent {
    /// A DogStatsD event becomes: what = title, data = text, tags = its tags
    /// (plus `host:NAME` when a host was named), when = its `d:` or now.
    pub fn from_dogstatsd(e: DogEvent) -> Self {
        let mut tags = e.tags;
        if let Some(h) = e.hostname {
            tags.push(format!("host:{h}"));
        }
        QueuedEvent {
            when: e.timestamp.unwrap_or_else(unix_now_i64),
            what: e.title,
            tags,
            data: e.text,
        }
    }
}

/// The sending half: cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub struct EventQueue {
    tx: SyncSender<QueuedEvent>,
}

impl EventQueue {
    /// Queues an event; `false` if the queue is full (the caller counts it).
    pub fn push(&self, e: QueuedEvent) -> bool {
        match self.tx.try_send(e) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// A queue with its receiving half, for tests and for the writer.
    pub fn bounded() -> (EventQueue, Receiver<QueuedEvent>) {
        let (tx, rx) = sync_channel(QUEUE_CAPACITY);
        (EventQueue { tx }, rx)
    }
}

/// Lets through a few log lines a second, so a flood of bad events is
/// counted in full but logged in part.
#[derive(Debug, Default)]
pub(crate) struct LogGate {
    second: AtomicU64,
    count: AtomicU64,
}

impl LogGate {
    pub(crate) fn may_log(&self) -> bool {
        let now = unix_now();
        if self.second.swap(now, Relaxed) != now {
            self.count.store(0, Relaxed);
        }
        self.count.fetch_add(1, Relaxed) < LOGS_PER_SECOND
    }
}

/// How often the writer deletes events past their retention.
fn expire_every(retention: Duration) -> Duration {
    (retention / 2).clamp(Duration::from_secs(1), EXPIRE_EVERY_MAX)
}

/// Starts the thread that stores queued events and enforces retention. It
/// ends once every [`EventQueue`] is dropped and the queue is drained.
pub fn start_writer(
    rx: Receiver<QueuedEvent>,
    events: Arc<EventStore>,
    telemetry: Arc<Telemetry>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("events".into())
        .spawn(move || {
            let every = expire_every(events.limits().retention);
            let mut next_expire = Instant::now();
            loop {
                if Instant::now() >= next_expire {
                    if let Err(e) = events.expire(unix_now_i64()) {
                        tracing::error!(error = %e, "deleting expired events failed; retried at the next pass");
                    }
                    next_expire = Instant::now() + every;
                }
                let wait = next_expire.saturating_duration_since(Instant::now());
                let first = match rx.recv_timeout(wait) {
                    Ok(e) => e,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => break,
                };
                let mut batch = vec![first];
                while batch.len() < WRITE_BATCH {
                    match rx.try_recv() {
                        Ok(e) => batch.push(e),
                        Err(_) => break,
                    }
                }
                store_queued(&events, &telemetry, batch);
            }
        })
}

/// Stores events from the queue; refused ones count as dropped (the store
/// has counted and logged why).
fn store_queued(events: &EventStore, telemetry: &Telemetry, batch: Vec<QueuedEvent>) {
    for r in events.add_all(batch, None) {
        match r {
            Ok(e) => {
                tracing::debug!(id = e.id, what = %e.what, tags = ?e.tags, when = e.when, "event stored")
            }
            Err(_) => {
                telemetry.events_dropped.fetch_add(1, Relaxed);
            }
        }
    }
}

/// Path of the spool file the first versions kept DogStatsD events in.
pub fn spool_path(data_dir: &Path) -> PathBuf {
    data_dir.join("events.jsonl")
}

/// Moves the events of an old `events.jsonl` spool into the event store
/// once, then renames the file to `events.jsonl.imported` (kept, not
/// deleted: it is the user's data). Lines that are not events, and events
/// the store refuses, are counted in the log line.
pub fn import_spool(events: &EventStore, data_dir: &Path) -> Result<(), EventError> {
    let path = spool_path(data_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "cannot read the old event spool; it is left as it is");
            return Ok(());
        }
    };
    let done = path.with_extension("jsonl.imported");
    if events.spool_imported()? {
        tracing::warn!(path = %path.display(), "the old event spool was imported before; renaming it again");
    } else {
        let mut unreadable = 0usize;
        let queued: Vec<QueuedEvent> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| {
                let e = serde_json::from_str(l).ok();
                unreadable += usize::from(e.is_none());
                e
            })
            .collect();
        let results = events.import_spool(queued);
        if let Some(Err(e @ EventError::Kv(_))) = results.iter().find(|r| r.is_err()) {
            // Nothing was written (one batch); the next start tries again.
            tracing::error!(path = %path.display(), error = %e, "cannot import the old event spool now; it is left as it is");
            return Ok(());
        }
        let refused = results.iter().filter(|r| r.is_err()).count();
        tracing::info!(
            path = %path.display(),
            imported = results.len() - refused,
            refused,
            unreadable,
            renamed_to = %done.display(),
            "imported the old DogStatsD event spool into the event store (once)"
        );
    }
    if let Err(e) = std::fs::rename(&path, &done) {
        tracing::error!(path = %path.display(), error = %e, "cannot rename the imported event spool; it is not imported twice");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollupd_store::kv::Kv;
    use rollupd_store::mem::MemKv;
    use store::TagFilter;

    fn ev(when: i64, what: &str, tags: &[&str]) -> QueuedEvent {
        QueuedEvent {
            when,
            what: what.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            data: String::new(),
        }
    }

    #[test]
    fn dogstatsd_event_mapping() {
        let e = DogEvent {
            title: "deploy".into(),
            text: "v1".into(),
            timestamp: Some(5),
            hostname: Some("web1".into()),
            aggregation_key: None,
            priority: None,
            source_type: None,
            alert_type: None,
            tags: vec!["deploy".into()],
        };
        let q = QueuedEvent::from_dogstatsd(e);
        assert_eq!(q.when, 5);
        assert_eq!(q.what, "deploy");
        assert_eq!(q.tags, vec!["deploy", "host:web1"]);
    }

    /// What the queue holds reaches the store, and what the store refuses
    /// is counted as dropped.
    #[test]
    fn the_writer_stores_queued_events_and_counts_refusals() {
        let kv: Arc<dyn Kv> = Arc::new(MemKv::new());
        let events = Arc::new(EventStore::open(kv).unwrap());
        let telemetry = Arc::new(Telemetry::new());
        let (q, rx) = EventQueue::bounded();
        let h = start_writer(rx, events.clone(), telemetry.clone()).unwrap();
        let now = unix_now_i64();
        assert!(q.push(ev(now, "web deploy", &["deploy", "web"])));
        assert!(q.push(ev(1_700_000_000_000, "milliseconds", &["deploy"])));
        drop(q);
        h.join().unwrap();
        let got = events
            .query(now - 10, now + 10, &TagFilter::AllOf(vec!["deploy".into()]))
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].what, "web deploy");
        assert_eq!(telemetry.events_dropped.load(Relaxed), 1);
        assert_eq!(events.stats.refused_invalid.load(Relaxed), 1);
    }

    /// The old spool's events move into the store once: a second start
    /// (even one that finds the file again) adds nothing.
    #[test]
    fn the_old_spool_is_imported_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = spool_path(dir.path());
        let lines = [
            serde_json::to_string(&ev(1_700_000_000, "web deploy", &["deploy", "web"])).unwrap(),
            "not json".to_string(),
            serde_json::to_string(&ev(1_700_000_100, "db", &["db"])).unwrap(),
        ];
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let kv: Arc<dyn Kv> = Arc::new(MemKv::new());
        let events = EventStore::open(kv.clone()).unwrap();
        import_spool(&events, dir.path()).unwrap();
        assert!(!path.exists());
        let imported = path.with_extension("jsonl.imported");
        assert!(imported.exists());
        let all = events.query(0, 2_000_000_000, &TagFilter::Every).unwrap();
        assert_eq!(
            all.iter().map(|e| e.what.as_str()).collect::<Vec<_>>(),
            ["web deploy", "db"]
        );
        // As if the rename had not happened before a crash.
        std::fs::rename(&imported, &path).unwrap();
        let events = EventStore::open(kv).unwrap();
        import_spool(&events, dir.path()).unwrap();
        assert_eq!(events.len(), 2);
        assert!(!path.exists());
    }

    #[test]
    fn expiry_runs_at_least_every_second_and_at_most_every_minute() {
        assert_eq!(
            expire_every(Duration::from_secs(3)),
            Duration::from_millis(1500)
        );
        assert_eq!(
            expire_every(Duration::from_millis(10)),
            Duration::from_secs(1)
        );
        assert_eq!(expire_every(Duration::from_secs(86400)), EXPIRE_EVERY_MAX);
    }
}
