//! rollupd: a statsd + Graphite metrics daemon.
//!
//! The modules follow the data: sockets ([`ingest`]) hand bytes to the pure
//! parsers ([`protocol`]), whose samples are folded into per-interval state
//! ([`aggregate`]); each flush is named and sent on ([`emit`]). See
//! ARCHITECTURE.md for the map and its invariants.

pub mod admin;
pub mod aggregate;
pub mod alert;
pub mod daemon;
pub mod dashboard;
pub mod emit;
pub mod http;
pub mod ingest;
pub mod relay;
pub mod snapshot;

// The stages below the daemon are crates of their own (crates/); they keep
// their module names here, so `rollupd::store::Store` and the daemon's
// `crate::store::...` paths name the same items.
pub use rollupd_clickhouse as clickhouse;
pub use rollupd_config as config;
pub use rollupd_events as events;
pub use rollupd_protocol as protocol;
pub use rollupd_query as query;
pub use rollupd_render as render;
#[cfg(feature = "rocksdb")]
pub use rollupd_rocks as rocks;
pub use rollupd_secret as secret;
pub use rollupd_store as store;
pub use rollupd_telemetry as telemetry;
pub use rollupd_units as units;
