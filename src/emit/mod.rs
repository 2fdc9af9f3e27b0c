//! From a [`Flush`] to named series: Etsy's Graphite names, written to the
//! store (with each timer's histogram) and sent to the carbon forward queue.

pub mod forward;
pub mod graphite;
pub mod own;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crate::aggregate::timer::TimerLayout;
use crate::aggregate::Flush;
use crate::config::Config;
use crate::store::hist::Hist;
use crate::store::{Point, Store};
use crate::telemetry::Telemetry;
use forward::{Forwarder, Payload};
use graphite::{BackendStats, Naming};

/// Turns flushes into Graphite lines and hands them to the forwarder.
pub struct Emitter {
    naming: Naming,
    layout: TimerLayout,
    backend: Arc<BackendStats>,
    forward: Option<Forwarder>,
    store: Option<Arc<Store>>,
    own: Option<own::OwnSources>,
}

impl Emitter {
    pub fn new(cfg: &Config, telemetry: Arc<Telemetry>) -> Self {
        let backend = Arc::new(BackendStats::default());
        backend.last_flush.store(
            crate::telemetry::unix_now() as i64,
            std::sync::atomic::Ordering::Relaxed,
        );
        let forward = cfg.forward.graphite.as_ref().map(|g| {
            Forwarder::start(
                g.address.clone(),
                g.max_queue_bytes,
                telemetry,
                backend.clone(),
            )
        });
        Emitter {
            naming: Naming::new(&cfg.statsd),
            layout: TimerLayout::new(&cfg.statsd),
            backend,
            forward,
            store: None,
            own: None,
        }
    }

    /// Also writes the daemon's own figures (store, disk, RSS, render,
    /// alerts) at every flush.
    pub fn with_own(mut self, sources: own::OwnSources) -> Self {
        self.own = Some(sources);
        self
    }

    /// Also writes every flush into `store`.
    pub fn with_store(mut self, store: Arc<Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Writes one flush to the store: every series Etsy would send, plus a
    /// histogram per timer with samples (rollups take percentiles from it).
    pub fn store_flush(&self, store: &Store, flush: &Flush) {
        self.store_flush_with(store, flush, &own::Own::default());
    }

    fn store_flush_with(&self, store: &Store, flush: &Flush, own: &own::Own) {
        let mut names: Vec<(String, f64)> = Vec::with_capacity(flush.num_stats() * 4 + 64);
        self.naming
            .walk(flush, &self.layout, &self.backend, |name, value| {
                names.push((name.to_string(), value));
            });
        self.naming.walk_own(own, flush.interval, |name, value| {
            names.push((name.to_string(), value));
        });
        let ts = flush.timestamp;
        let points: Vec<Point<'_>> = names
            .iter()
            .filter(|(_, v)| v.is_finite())
            .map(|(n, v)| Point {
                name: n,
                timestamp: ts,
                value: *v,
            })
            .collect();
        let mut branches: Vec<(String, Hist)> = flush
            .timers
            .iter()
            .filter(|t| !t.samples.is_empty())
            .map(|t| {
                (
                    self.naming.timer_branch(&t.key),
                    Hist::from_sorted_samples(&t.samples),
                )
            })
            .collect();
        let hists: Vec<(&str, i64, Hist)> = branches
            .iter_mut()
            .map(|(n, h)| (n.as_str(), ts, std::mem::take(h)))
            .collect();
        if let Err(e) = store.write(&points, &hists, ts) {
            tracing::error!(error = %e, points = points.len(), "flush could not be logged; it is kept in memory until a checkpoint succeeds");
        }
    }

    /// Renders one flush as carbon plaintext: `name value timestamp\n`, the
    /// value as JavaScript prints it (as Etsy sends it).
    pub fn render(&self, flush: &Flush) -> Payload {
        self.render_with(flush, &own::Own::default())
    }

    fn render_with(&self, flush: &Flush, own: &own::Own) -> Payload {
        let mut data = Vec::with_capacity(64 * (flush.num_stats() + 32));
        let mut lines = 0u64;
        let ts = flush.timestamp;
        let mut num = ryu_js::Buffer::new();
        self.naming
            .walk(flush, &self.layout, &self.backend, |name, value| {
                let _ = writeln!(data, "{name} {} {ts}", num.format(value));
                lines += 1;
            });
        self.naming.walk_own(own, flush.interval, |name, value| {
            let _ = writeln!(data, "{name} {} {ts}", num.format(value));
            lines += 1;
        });
        Payload { data, lines }
    }

    /// The graphite backend's stats (for the admin `stats` command).
    pub fn backend(&self) -> Arc<BackendStats> {
        self.backend.clone()
    }

    /// Emits a flush to every configured destination.
    /// The daemon's own figures are sampled once here (one walk of the
    /// data directory, each counter's change counted once) for both.
    pub fn emit(&self, flush: &Flush) {
        let own = self
            .own
            .as_ref()
            .map(own::OwnSources::sample)
            .unwrap_or_default();
        if let Some(s) = &self.store {
            self.store_flush_with(s, flush, &own);
        }
        if let Some(f) = &self.forward {
            f.send(self.render_with(flush, &own));
        }
    }

    /// Gives the forwarder up to `grace` to send what is queued.
    pub fn shutdown(self, grace: Duration) {
        if let Some(f) = self.forward {
            f.shutdown(grace);
        }
    }
}
