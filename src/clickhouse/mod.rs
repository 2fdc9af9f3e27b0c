//! ClickHouse as a store for users who outgrow one machine (issue 13):
//! the schema (graphite-clickhouse's tables and the rollup rules
//! ClickHouse's `GraphiteMergeTree` needs, made from our `[storage]` rules:
//! `rollupd clickhouse-schema`), and the writer that sends every point the
//! embedded store accepts to those tables (`[storage.clickhouse]`). Reads
//! from ClickHouse are not built yet: the daemon reads its embedded store.
//! docs/clickhouse.md says how the schema was chosen.

pub mod client;
pub mod queue;
pub mod schema;
pub mod write;
