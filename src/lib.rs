//! rollupd: a statsd + Graphite metrics daemon.
//!
//! The modules follow the data: sockets ([`ingest`]) hand bytes to the pure
//! parsers ([`protocol`]), whose samples are folded into per-interval state
//! ([`aggregate`]); each flush is named and sent on ([`emit`]). See
//! ARCHITECTURE.md for the map and its invariants.

pub mod admin;
pub mod aggregate;
pub mod alert;
pub mod clickhouse;
pub mod config;
pub mod daemon;
pub mod dashboard;
pub mod emit;
pub mod events;
pub mod http;
pub mod ingest;
pub mod protocol;
pub mod query;
pub mod relay;
pub mod render;
pub mod secret;
pub mod snapshot;
pub mod store;
pub mod telemetry;
pub mod units;
