//! Notifications: from the evaluator's firing instances to webhook and
//! Alertmanager receivers.
//!
//! The evaluator calls [`Notifier::update`] once per rule per evaluation
//! with what fires; the notifier works out what each receiver must be told
//! (`track`: new, repeated, resolved, held back by a silence) and queues
//! one request per rule per receiver. Each receiver has its own thread and
//! its own bounded queue (`queue`, `worker`), so the evaluator never waits
//! on the network and a dead receiver delays nobody else.
//!
//! What "sent" means to the repeat timer: handed to the receiver's queue.
//! A request that fails for `retry_for` is dropped (counted, logged); the
//! alert goes again at its next repeat.
//!
//! A silence in rollupd stops the sends of an instance, repeats included.
//! An alert Alertmanager already holds is then no longer refreshed: it ends
//! there at its `endsAt` (at most 4 × `repeat_interval` after the last
//! send), and Alertmanager reports it resolved. When the silence ends and
//! the instance still fires, it is sent at once.

mod payload;
mod queue;
pub mod stats;
mod track;
mod worker;

#[cfg(test)]
mod tests;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::alert::notice::Notice;
use crate::config::{ReceiverConfig, ReceiverKind};

pub use stats::{NotifyStats, ReceiverCounts, ReceiverStats, RuleCounts};

use queue::Queue;
use track::{Target, Tracker};
use worker::{Batch, LogGate, Worker};

/// How long [`Notifier::stop`] waits for the receiver threads. One still
/// inside a request past it (a receiver that hangs, up to its `timeout`) is
/// left to end on its own when the request times out: it sends nothing more.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// A receiver's `repeat_interval`, or its kind's default: 4 h for a
/// webhook (a person reads it), 1 min for Alertmanager (which resolves an
/// alert that is not re-sent before its `endsAt`; see `payload`).
pub fn repeat_interval(cfg: &ReceiverConfig) -> Duration {
    cfg.repeat_interval.unwrap_or(match cfg.kind {
        ReceiverKind::Webhook => Duration::from_secs(4 * 3600),
        ReceiverKind::Alertmanager => Duration::from_secs(60),
    })
}

struct Handle {
    name: String,
    queue: Arc<Queue<Batch>>,
    stats: Arc<ReceiverStats>,
    /// Queue-full drops are logged through it (the evaluator's thread).
    drops: Mutex<LogGate>,
    /// Taken by the first [`Notifier::stop`].
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// The notification layer: one thread per receiver. See the module docs.
pub struct Notifier {
    tracker: Mutex<Tracker>,
    receivers: Vec<Handle>,
    stats: Arc<NotifyStats>,
}

impl Notifier {
    /// Starts one thread per receiver. `externalURL` in webhook messages is
    /// the origin of each alert's `generatorURL`
    /// ([`Notifier::start_with_external_url`] names it).
    pub fn start(receivers: &[ReceiverConfig], stats: Arc<NotifyStats>) -> Notifier {
        Self::start_with_external_url(receivers, stats, "")
    }

    /// Like [`Notifier::start`], with `externalURL` (`[alerts]
    /// external_url`, how people reach this daemon) given.
    pub fn start_with_external_url(
        receivers: &[ReceiverConfig],
        stats: Arc<NotifyStats>,
        external_url: &str,
    ) -> Notifier {
        let mut targets = Vec::with_capacity(receivers.len());
        let mut handles = Vec::with_capacity(receivers.len());
        for cfg in receivers {
            let repeat = crate::alert::secs(repeat_interval(cfg)).max(1);
            targets.push(Target {
                name: cfg.name.clone(),
                kind: cfg.kind,
                repeat,
                send_resolved: cfg.send_resolved,
            });
            let queue = Arc::new(Queue::new(cfg.queue));
            let rstats = stats.receiver(&cfg.name, cfg.kind);
            let w = Worker::new(
                cfg,
                repeat,
                external_url,
                queue.clone(),
                rstats.clone(),
                stats.clone(),
            );
            let thread = std::thread::Builder::new()
                .name(format!("notify-{}", cfg.name))
                .spawn(move || w.run())
                .expect("cannot start a notification thread");
            handles.push(Handle {
                name: cfg.name.clone(),
                queue,
                stats: rstats,
                drops: Mutex::new(LogGate::default()),
                thread: Mutex::new(Some(thread)),
            });
        }
        Notifier {
            tracker: Mutex::new(Tracker::new(targets)),
            receivers: handles,
            stats,
        }
    }

    /// `rule`'s firing instances as of this evaluation (`now`, unix
    /// seconds): queues what is new, due for a repeat, or resolved. Work is
    /// proportional to the rule's instances; nothing here waits on a
    /// receiver.
    pub fn update(&self, rule: &str, firing: Vec<Notice>, now: i64) {
        let mut tracker = self.tracker.lock();
        let out = tracker.update(rule, firing, now);
        // Queued under the tracker's lock, so two evaluations of one rule
        // reach a receiver in the order they were tracked.
        self.enqueue(rule, out, now);
    }

    /// After a restart: what was already firing (and notified) before it.
    /// Remembered as sent at `now`, so the next send is a repeat at `now` +
    /// `repeat_interval`; nothing is sent now.
    pub fn seed(&self, rule: &str, firing: Vec<Notice>, now: i64) {
        self.tracker.lock().seed(rule, firing, now);
    }

    /// Another aggregator evaluates the rule from now on (`peers.rs`) and
    /// goes on notifying it: this one forgets it, sending nothing.
    pub fn hand_over(&self, rule: &str) {
        self.tracker.lock().forget(rule);
    }

    /// The rule is gone: whatever of it was firing resolves at `now`.
    pub fn forget_rule(&self, rule: &str, now: i64) {
        self.update(rule, Vec::new(), now);
    }

    fn enqueue(&self, rule: &str, out: Vec<Vec<track::Outgoing>>, now: i64) {
        let mut name: Option<Arc<str>> = None;
        for (h, alerts) in self.receivers.iter().zip(out) {
            if alerts.is_empty() {
                continue;
            }
            let rule = name.get_or_insert_with(|| Arc::from(rule)).clone();
            let (dropped, len) = h.queue.push(Batch { rule, now, alerts });
            h.stats.queued.store(len as u64, Relaxed);
            if let Some(d) = dropped {
                h.stats.dropped_queue_full.fetch_add(1, Relaxed);
                if let Some(held_back) = h.drops.lock().pass() {
                    tracing::warn!(
                        receiver = %h.name, rule = %d.rule, queue = h.queue.cap(), drops_not_logged = held_back,
                        "alert receiver queue full: oldest request dropped"
                    );
                }
            }
        }
    }

    /// The counters (also reachable through the `Arc` given to `start`).
    pub fn stats(&self) -> &Arc<NotifyStats> {
        &self.stats
    }

    /// Ends the receiver threads: queued requests are not sent, a retry
    /// waiting for its backoff ends at once. Returns within [`STOP_WAIT`].
    /// Takes `&self` so a notifier shared behind an `Arc` can be stopped;
    /// after it, `update` still tracks but nothing is sent.
    pub fn stop(&self) {
        for h in &self.receivers {
            let left = h.queue.stop();
            h.stats.queued.store(0, Relaxed);
            if left > 0 {
                tracing::info!(receiver = %h.name, requests = left, "alert notifications not sent at shutdown");
            }
        }
        let deadline = Instant::now() + STOP_WAIT;
        let mut threads: Vec<JoinHandle<()>> = self
            .receivers
            .iter()
            .filter_map(|h| h.thread.lock().take())
            .collect();
        while !threads.is_empty() && Instant::now() < deadline {
            let (done, running): (Vec<_>, Vec<_>) =
                threads.into_iter().partition(|t| t.is_finished());
            for t in done {
                let _ = t.join();
            }
            threads = running;
            if !threads.is_empty() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        if !threads.is_empty() {
            tracing::info!(
                threads = threads.len(),
                "alert receivers still inside a request at shutdown; left to time out"
            );
        }
    }
}

impl Drop for Notifier {
    /// A notifier dropped without `stop` still ends its threads (without
    /// waiting for them).
    fn drop(&mut self) {
        for h in &self.receivers {
            h.queue.stop();
        }
    }
}
