//! `[storage]`: the store's own section of the config file, and the checks
//! that need the store's parsers (retention strings, aggregation methods,
//! rule regexes). The config tree embeds it; nothing here reads the rest.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use rollupd_units::{duration_str, size_str};

/// Where points are kept: carbon's storage-schemas and storage-aggregation
/// as ordered rule lists. The user's rules are tried first, in order; the
/// built-in statsd-aware rules catch whatever none of them matches.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub retention: Vec<RetentionRule>,
    pub aggregation: Vec<AggregationRule>,
    /// Points further ahead of the clock than this are rejected and counted.
    #[serde(with = "duration_str")]
    pub max_future: Duration,
    /// How often open rows are written out so the write-ahead log can be
    /// dropped; a longer interval writes less, a restart replays more.
    #[serde(with = "duration_str")]
    pub checkpoint_interval: Duration,
    /// Write-ahead bytes that force a checkpoint sooner.
    pub checkpoint_log_bytes: u64,
    /// How long Graphite events (deploy lines) are kept.
    #[serde(with = "duration_str")]
    pub events_retention: Duration,
    /// Most Graphite events kept; past it new ones are refused, counted
    /// and logged.
    pub max_events: u64,
    /// Series (value and timer histogram series) the store holds at most;
    /// points of a new series past it are counted and dropped.
    pub max_series: usize,
    /// New series the store creates per minute at most (carbon plaintext
    /// is unauthenticated); past it, as `max_series`.
    pub max_new_series_per_minute: usize,
    /// Memory the whole daemon may use, in bytes (`"1GiB"`, `"512MiB"` or
    /// a number). Past it the store refuses new series (counted and logged,
    /// as past `max_series`) while the existing ones keep writing. Default:
    /// a quarter of the machine's RAM, at least 256 MiB (1 GiB when
    /// /proc/meminfo cannot be read).
    #[serde(with = "size_str")]
    pub max_memory: u64,
    /// `[storage.clickhouse]`: every point and timer histogram the store
    /// accepts is also written to ClickHouse (graphite-clickhouse's tables),
    /// batched, retried, and queued on disk while it is unreachable. Reads
    /// stay on the embedded store.
    pub clickhouse: Option<ClickHouseConfig>,
    /// Where render, find, tags and alerts read series: `embedded` (this
    /// store) or `clickhouse` (`[storage.clickhouse]`'s tables; every
    /// point is still written to both).
    pub engine: Engine,
}

/// `[storage] engine`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    #[default]
    Embedded,
    ClickHouse,
}

/// `[storage.clickhouse]`: where and how points are written to ClickHouse.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseConfig {
    /// HTTP interfaces (`http://127.0.0.1:8123`); an insert that fails on
    /// one is tried on the next. With `cluster`, list every server: each
    /// gets the schema's local tables.
    pub urls: Vec<String>,
    pub database: String,
    /// A cluster of the servers' `remote_servers`: points go through
    /// `Distributed` tables sharded by a hash of the series name.
    pub cluster: Option<String>,
    pub user: Option<String>,
    pub password: Option<rollupd_secret::Secret>,
    /// Points in a batch at most; a fuller batch is sent at once.
    pub batch_points: usize,
    /// A batch is sent at least this often.
    #[serde(with = "duration_str")]
    pub batch_interval: Duration,
    /// One request's limit.
    #[serde(with = "duration_str")]
    pub timeout: Duration,
    /// Bytes of batches kept on disk while ClickHouse is unreachable; a
    /// batch past it is dropped, counted and logged.
    #[serde(with = "size_str")]
    pub queue_max_bytes: u64,
    /// With `engine = "clickhouse"`: how much history the embedded store
    /// still keeps (it is the write-ahead log and a local copy; ClickHouse
    /// holds the rest). Rows older than this are deleted whatever their
    /// archive's retention.
    #[serde(with = "duration_str")]
    pub keep_locally: Duration,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        ClickHouseConfig {
            urls: vec!["http://127.0.0.1:8123".into()],
            database: "graphite".into(),
            cluster: None,
            user: None,
            password: None,
            batch_points: 500_000,
            batch_interval: Duration::from_secs(1),
            timeout: Duration::from_secs(30),
            queue_max_bytes: 1 << 30,
            keep_locally: Duration::from_secs(6 * 3600),
        }
    }
}

/// The least `[storage] max_memory` accepted: the daemon with an empty
/// store (its threads, sockets, buffers and RocksDB's caches) already
/// holds tens of MiB, so a smaller cap would refuse every series.
pub const MIN_MAX_MEMORY: u64 = 64 << 20;

/// `max_memory`'s default: a quarter of `MemTotal` in /proc/meminfo, at
/// least 256 MiB; 1 GiB when it cannot be read (not Linux, no /proc).
pub fn default_max_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| mem_total(&m))
        .map_or(1 << 30, |total| (total / 4).max(256 << 20))
}

/// `MemTotal:` of /proc/meminfo text, in bytes.
pub(crate) fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut words = line["MemTotal:".len()..].split_whitespace();
    let n: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => n.checked_mul(1024),
        None => Some(n),
        Some(_) => None,
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            retention: vec![],
            aggregation: vec![],
            max_future: Duration::from_secs(600),
            checkpoint_interval: Duration::from_secs(300),
            checkpoint_log_bytes: 256 << 20,
            events_retention: Duration::from_secs(5 * 365 * 86400),
            max_events: 1_000_000,
            max_series: 10_000_000,
            max_new_series_per_minute: 1_000_000,
            max_memory: default_max_memory(),
            clickhouse: None,
            engine: Engine::Embedded,
        }
    }
}

/// `[[storage.retention]]`: series whose name matches `pattern` (a regex)
/// keep `retentions`, e.g. `"10s:6h,1m:7d,10m:5y"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRule {
    pub pattern: String,
    pub retentions: String,
}

/// `[[storage.aggregation]]`: how a coarser point is made from finer ones.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AggregationRule {
    pub pattern: String,
    /// `average`, `sum`, `min`, `max`, `last` (also whisper's `avg_zero`,
    /// `absmax`, `absmin`).
    pub method: String,
    /// Fraction of finer points that must be known for a coarser point to
    /// be written (whisper's xFilesFactor).
    #[serde(default = "default_xff")]
    pub x_files_factor: f64,
}

fn default_xff() -> f64 {
    0.5
}

impl StorageConfig {
    /// What serde cannot check: limits, and the rules parsed as the store
    /// will parse them. The message names the key.
    pub fn validate(&self) -> Result<(), String> {
        // Series ids are 32 bits (docs/storage-format.md).
        if self.max_series == 0 || self.max_series > u32::MAX as usize {
            return Err(format!(
                "storage.max_series must be between 1 and {}",
                u32::MAX
            ));
        }
        if self.max_memory < MIN_MAX_MEMORY {
            return Err(format!(
                "storage.max_memory must be at least {} ({} bytes); it is {} bytes",
                size_str::show(MIN_MAX_MEMORY),
                MIN_MAX_MEMORY,
                self.max_memory
            ));
        }
        if self.max_new_series_per_minute == 0 {
            return Err("storage.max_new_series_per_minute must be at least 1".into());
        }
        super::schema::Rules::from_config(self).map_err(|e| e.to_string())?;
        if let Some(c) = &self.clickhouse {
            c.validate()?;
        }
        if self.engine == Engine::ClickHouse && self.clickhouse.is_none() {
            return Err(
                "storage.engine = \"clickhouse\" needs a [storage.clickhouse] section (urls, database)".into(),
            );
        }
        Ok(())
    }
}

impl ClickHouseConfig {
    fn validate(&self) -> Result<(), String> {
        if self.urls.is_empty() {
            return Err("storage.clickhouse.urls must name at least one server".into());
        }
        for u in &self.urls {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(format!(
                    "storage.clickhouse.urls: {u:?} is not an http:// or https:// URL"
                ));
            }
        }
        if self.batch_points == 0 {
            return Err("storage.clickhouse.batch_points must be at least 1".into());
        }
        if self.batch_interval.is_zero() || self.timeout.is_zero() || self.keep_locally.is_zero() {
            return Err("storage.clickhouse.batch_interval and timeout must be more than 0".into());
        }
        let ident = |s: &str| {
            s.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        if !ident(&self.database) {
            return Err(format!(
                "storage.clickhouse.database {:?} is not a ClickHouse identifier (letters, digits and _)",
                self.database
            ));
        }
        if let Some(c) = &self.cluster {
            if !ident(c) {
                return Err(format!(
                    "storage.clickhouse.cluster {c:?} is not a ClickHouse identifier (letters, digits and _)"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn mem_total_reads_meminfo_in_kib() {
        assert_eq!(
            super::mem_total("MemTotal:       16314224 kB\nMemFree: 1 kB\n"),
            Some(16314224 * 1024)
        );
        assert_eq!(super::mem_total("MemFree: 1 kB\n"), None);
    }
}
