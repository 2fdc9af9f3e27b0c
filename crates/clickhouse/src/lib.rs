//! ClickHouse as a store for users who outgrow one machine (issue 13):
//! the schema (graphite-clickhouse's tables and the rollup rules
//! ClickHouse's `GraphiteMergeTree` needs, made from our `[storage]` rules:
//! `rollupd clickhouse-schema`), and the writer that sends every point the
//! embedded store accepts to those tables (`[storage.clickhouse]`), and the
//! source that reads them back (`[storage] engine = "clickhouse"`).
//! docs/clickhouse.md says how, and why the schema is shaped so.

pub mod client;
pub mod kv;
pub mod queue;
pub mod read;
pub mod schema;
pub mod write;
