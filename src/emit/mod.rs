//! From a [`Flush`] to named series: Etsy's Graphite names, sent to the
//! carbon forward queue (and, once the store lands, written to it).

pub mod forward;
pub mod graphite;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crate::aggregate::timer::TimerLayout;
use crate::aggregate::Flush;
use crate::config::Config;
use crate::telemetry::Telemetry;
use forward::{Forwarder, Payload};
use graphite::{BackendStats, Naming};

/// Turns flushes into Graphite lines and hands them to the forwarder.
pub struct Emitter {
    naming: Naming,
    layout: TimerLayout,
    backend: Arc<BackendStats>,
    forward: Option<Forwarder>,
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
        }
    }

    /// Renders one flush as carbon plaintext: `name value timestamp\n`, the
    /// value as JavaScript prints it (as Etsy sends it).
    pub fn render(&self, flush: &Flush) -> Payload {
        let mut data = Vec::with_capacity(64 * (flush.num_stats() + 32));
        let mut lines = 0u64;
        let ts = flush.timestamp;
        let mut num = ryu_js::Buffer::new();
        self.naming
            .walk(flush, &self.layout, &self.backend, |name, value| {
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
    pub fn emit(&self, flush: &Flush) {
        if let Some(f) = &self.forward {
            f.send(self.render(flush));
        }
    }

    /// Gives the forwarder up to `grace` to send what is queued.
    pub fn shutdown(self, grace: Duration) {
        if let Some(f) = self.forward {
            f.shutdown(grace);
        }
    }
}
