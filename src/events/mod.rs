//! Annotation events (deploys and the like) that arrive over statsd as
//! DogStatsD `_e{...}` lines.
//!
//! The receive path only pushes into a bounded in-memory queue; a spool
//! thread appends them to `data_dir/events.jsonl`, so a burst of events never
//! makes a UDP receiver wait on disk and an event survives a restart. The
//! events API (graphite-web's `/events/`) reads them from there.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::protocol::dogstatsd::DogEvent;
use crate::telemetry::unix_now;

pub mod store;

/// Events held in memory before the spool thread writes them.
const QUEUE_CAPACITY: usize = 10_000;

/// An event in graphite-web's vocabulary: `what`, `tags`, `when`, `data`.
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
            when: e.timestamp.unwrap_or_else(|| unix_now() as i64),
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

    /// A queue with its receiving half, for tests and for the spool.
    pub fn bounded() -> (EventQueue, Receiver<QueuedEvent>) {
        let (tx, rx) = sync_channel(QUEUE_CAPACITY);
        (EventQueue { tx }, rx)
    }
}

/// Path of the spool file under a data directory.
pub fn spool_path(data_dir: &Path) -> PathBuf {
    data_dir.join("events.jsonl")
}

/// Starts the thread that appends queued events to the spool. It ends once
/// every [`EventQueue`] is dropped and the queue is drained.
pub fn start_spool(rx: Receiver<QueuedEvent>, path: PathBuf) -> std::io::Result<JoinHandle<()>> {
    let file = OpenOptions::new().create(true).append(true).open(&path)?;
    std::thread::Builder::new()
        .name("event-spool".into())
        .spawn(move || {
            let mut w = BufWriter::new(file);
            loop {
                match rx.recv_timeout(Duration::from_millis(500)) {
                    Ok(e) => {
                        if let Ok(line) = serde_json::to_string(&e) {
                            if let Err(err) = writeln!(w, "{line}") {
                                tracing::error!(path = %path.display(), %err, "cannot write event spool");
                            }
                        }
                        tracing::info!(what = %e.what, tags = ?e.tags, when = e.when, "event received");
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                if let Err(err) = w.flush() {
                    tracing::error!(path = %path.display(), %err, "cannot write event spool");
                }
            }
            let _ = w.flush();
            let _ = w.get_ref().sync_data();
        })
}

/// Reads every spooled event (the events API and tests use this).
pub fn read_spool(path: &Path) -> std::io::Result<Vec<QueuedEvent>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spool_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = spool_path(dir.path());
        let (q, rx) = EventQueue::bounded();
        let handle = start_spool(rx, path.clone()).unwrap();
        let ev = QueuedEvent {
            when: 1_700_000_000,
            what: "web deploy 36790".into(),
            tags: vec!["deploy".into(), "web".into()],
            data: "sha abc".into(),
        };
        assert!(q.push(ev.clone()));
        drop(q);
        handle.join().unwrap();
        assert_eq!(read_spool(&path).unwrap(), vec![ev]);
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
}
