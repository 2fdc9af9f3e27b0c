//! ClickHouse as a store for users who outgrow one machine (issue 13). What
//! is here so far is the schema: the tables, compatible with
//! graphite-clickhouse's, and the rollup rules ClickHouse's
//! `GraphiteMergeTree` needs, made from our `[storage]` rules
//! (`rollupd clickhouse-schema`). The engine that writes and reads them is
//! not built yet; docs/clickhouse.md says how the schema was chosen.

pub mod schema;
