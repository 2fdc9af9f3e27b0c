//! The store's key-value contract ([`Kv`]) on one ClickHouse table, for
//! what every aggregator in front of the same servers must share and what
//! is small: the events (`Space::Events`, graphite-web's deploy lines) and
//! the dashboards saved over HTTP (`Space::Dashboards`). With `[storage]
//! engine = "clickhouse"` both run on it, so an event posted to one
//! aggregator is drawn by every one, and a saved dashboard served by every
//! one (docs/clickhouse.md).
//!
//! The table (`rollupd_kv`, [`ddl`]) holds versions of keys, never updates:
//! a put is a row, a delete is a row with `Deleted = 1`, and a read takes
//! each key's row of the highest `Version` (`argMax`), so the answer does not
//! wait for ClickHouse's merges (`ReplacingMergeTree` drops old versions when
//! it gets to them). Versions are nanoseconds of the wall clock, raised past
//! the last one this process gave, so a later write of a key wins here; two
//! aggregators writing one key in the same nanosecond is the one order left
//! to chance (events' keys carry their own id, so they do not).
//!
//! With a `cluster`, a space lives on one shard (the `Distributed` table is
//! sharded by the space's name), so a batch is one insert on one server:
//! atomic, as [`Kv::write`] promises. Keys and values are bytes; they are
//! written escaped as TabSeparated and read back as `hex()`.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use rollupd_store::config::ClickHouseConfig;
use rollupd_store::kv::{Batch, Kv, KvError, Op, Space};

use super::client::{ClickHouseError, Client};
use super::schema::{self, ClickHouseSchemaError, Target};

/// Keys a scan reads per request: a scan's memory is bounded by this many
/// keys and values, whatever the range holds.
const SCAN_PAGE: usize = 1000;

/// A key's new value, or `None` for its deletion.
type Change = (Space, Vec<u8>, Option<Vec<u8>>);
/// A key and its value.
type Entry = (Vec<u8>, Vec<u8>);

pub struct ClickHouseKv {
    client: Client,
    /// `db.rollupd_kv`: the table reads and inserts name (the `Distributed`
    /// one with a cluster).
    table: String,
    ddl: Vec<String>,
    ready: AtomicBool,
    /// The last version given.
    clock: Mutex<u64>,
}

/// The statements that make the table, each idempotent, for every server.
pub fn ddl(target: &Target) -> Result<Vec<String>, ClickHouseSchemaError> {
    schema::identifier("database", &target.database)?;
    let db = &target.database;
    let name = schema::KV_TABLE;
    let columns = "Space String, Key String, Value String, Version UInt64, Deleted UInt8";
    let mut out = vec![format!("CREATE DATABASE IF NOT EXISTS {db}")];
    let local = match &target.cluster {
        Some(c) => {
            schema::identifier("cluster", c)?;
            format!("{name}_local")
        }
        None => name.to_string(),
    };
    out.push(format!(
        "CREATE TABLE IF NOT EXISTS {db}.{local} ({columns}) \
         ENGINE = ReplacingMergeTree(Version) ORDER BY (Space, Key)"
    ));
    if let Some(c) = &target.cluster {
        out.push(format!(
            "CREATE TABLE IF NOT EXISTS {db}.{name} AS {db}.{local} \
             ENGINE = Distributed({c}, {db}, {local}, cityHash64(Space))"
        ));
    }
    Ok(out)
}

fn engine_error(e: ClickHouseError) -> KvError {
    KvError::io(e.to_string())
}

/// A TabSeparated string field: backslash, tab, newline, carriage return
/// and NUL escaped; every other byte as it is (ClickHouse strings are
/// bytes).
fn tsv_bytes(out: &mut Vec<u8>, s: &[u8]) {
    for &c in s {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0 => out.extend_from_slice(b"\\0"),
            _ => out.push(c),
        }
    }
}

/// `unhex('..')`: bytes as a literal of the query.
fn literal(bytes: &[u8]) -> String {
    format!("unhex('{}')", hex::encode_upper(bytes))
}

fn unhex(field: &str) -> Result<Vec<u8>, KvError> {
    hex::decode(field).map_err(|e| KvError::io(format!("clickhouse: a reply's hex field: {e}")))
}

impl ClickHouseKv {
    pub fn new(ch: &ClickHouseConfig) -> Result<ClickHouseKv, ClickHouseSchemaError> {
        let target = Target {
            database: ch.database.clone(),
            cluster: ch.cluster.clone(),
        };
        Ok(ClickHouseKv {
            client: Client::new(ch),
            table: format!("{}.{}", ch.database, schema::KV_TABLE),
            ddl: ddl(&target)?,
            ready: AtomicBool::new(false),
            clock: Mutex::new(0),
        })
    }

    /// The table on every server, once (a server down now is tried again
    /// at the next call).
    fn ensure_table(&self) -> Result<(), KvError> {
        if self.ready.load(Relaxed) {
            return Ok(());
        }
        for url in self.client.urls() {
            for st in &self.ddl {
                self.client.query_on(url, st).map_err(engine_error)?;
            }
        }
        self.ready.store(true, Relaxed);
        Ok(())
    }

    /// `n` versions, ascending, each past every one given before.
    fn versions(&self, n: usize) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let mut last = self.clock.lock();
        let first = now.max(last.saturating_add(1));
        *last = first.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
        first
    }

    /// One page of the keys from `from` (or after it, `after`) below `to`:
    /// keys and values, ascending, deleted keys left out.
    ///
    /// The next page starts after the last key (`Key > last`), not at the
    /// last key with a NUL byte appended: ClickHouse 18.16 compares a
    /// column's string with a constant as if trailing NUL bytes were not
    /// there (`'k' >= 'k\0'` is true there), so that bound would return
    /// the last key again. Keys that differ only by trailing NULs would
    /// meet the same quirk at any bound; the event store's keys have one
    /// length per kind, so no two of them do.
    fn page(
        &self,
        space: Space,
        from: &[u8],
        after: bool,
        to: &[u8],
        limit: usize,
    ) -> Result<Vec<Entry>, KvError> {
        let sql = format!(
            "SELECT hex(Key), hex(argMax(Value, Version)) FROM {t} \
             WHERE Space = '{s}' AND Key {op} {lo} AND Key < {hi} \
             GROUP BY Key HAVING argMax(Deleted, Version) = 0 \
             ORDER BY Key LIMIT {limit} FORMAT TabSeparated",
            t = self.table,
            s = space.name(),
            op = if after { ">" } else { ">=" },
            lo = literal(from),
            hi = literal(to),
        );
        let body = self.client.query(&sql).map_err(engine_error)?;
        let mut out = Vec::new();
        for line in body.lines().filter(|l| !l.is_empty()) {
            let (k, v) = line.split_once('\t').ok_or_else(|| {
                KvError::io(format!("clickhouse: a reply line without a tab: {line:?}"))
            })?;
            out.push((unhex(k)?, unhex(v)?));
        }
        Ok(out)
    }

    /// Keys of `[from, to)` that hold a value now.
    fn keys(&self, space: Space, from: &[u8], to: &[u8]) -> Result<Vec<Vec<u8>>, KvError> {
        let mut out = Vec::new();
        self.scan(space, from, to, &mut |k, _| {
            out.push(k.to_vec());
            true
        })?;
        Ok(out)
    }
}

impl Kv for ClickHouseKv {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        self.ensure_table()?;
        let sql = format!(
            "SELECT hex(argMax(Value, Version)), argMax(Deleted, Version) FROM {t} \
             WHERE Space = '{s}' AND Key = {k} GROUP BY Key FORMAT TabSeparated",
            t = self.table,
            s = space.name(),
            k = literal(key),
        );
        let body = self.client.query(&sql).map_err(engine_error)?;
        let Some(line) = body.lines().find(|l| !l.is_empty()) else {
            return Ok(None);
        };
        match line.split_once('\t') {
            Some((v, "0")) => Ok(Some(unhex(v)?)),
            Some((_, _)) => Ok(None),
            None => Err(KvError::io(format!(
                "clickhouse: a reply line without a tab: {line:?}"
            ))),
        }
    }

    fn write(&self, batch: Batch) -> Result<(), KvError> {
        self.ensure_table()?;
        // Range deletes become a delete of each key the range holds now.
        let mut ops: Vec<Change> = Vec::with_capacity(batch.len());
        for op in batch.ops {
            match op {
                Op::Put(s, k, v) => ops.push((s, k, Some(v))),
                Op::Delete(s, k) => ops.push((s, k, None)),
                Op::DeleteRange(s, from, to) => {
                    ops.extend(self.keys(s, &from, &to)?.into_iter().map(|k| (s, k, None)));
                }
            }
        }
        if ops.is_empty() {
            return Ok(());
        }
        let first = self.versions(ops.len());
        let mut rows = Vec::new();
        for (i, (space, key, value)) in ops.iter().enumerate() {
            rows.extend_from_slice(space.name().as_bytes());
            rows.push(b'\t');
            tsv_bytes(&mut rows, key);
            rows.push(b'\t');
            tsv_bytes(&mut rows, value.as_deref().unwrap_or_default());
            rows.push(b'\t');
            let version = first.saturating_add(u64::try_from(i).unwrap_or(u64::MAX));
            rows.extend_from_slice(version.to_string().as_bytes());
            rows.extend_from_slice(if value.is_some() { b"\t0\n" } else { b"\t1\n" });
        }
        self.client.insert(&self.table, &rows).map_err(engine_error)
    }

    fn scan(
        &self,
        space: Space,
        from: &[u8],
        to: &[u8],
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), KvError> {
        if from >= to {
            return Ok(());
        }
        self.ensure_table()?;
        let mut lo = from.to_vec();
        let mut after = false;
        loop {
            let page = self.page(space, &lo, after, to, SCAN_PAGE)?;
            let full = page.len() == SCAN_PAGE;
            let Some(last) = page.last().map(|(k, _)| k.clone()) else {
                return Ok(());
            };
            for (k, v) in &page {
                if !f(k, v) {
                    return Ok(());
                }
            }
            if !full {
                return Ok(());
            }
            lo = last;
            after = true;
        }
    }

    /// The table is on the servers' disks, not this machine's.
    fn disk_bytes(&self) -> u64 {
        0
    }

    /// ClickHouse merges on its own schedule.
    fn compact(&self, _space: Space, _from: &[u8], _to: &[u8]) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_escaped_for_tabseparated() {
        let mut out = Vec::new();
        tsv_bytes(&mut out, b"a\tb\nc\\d\0e\r\xff");
        assert_eq!(out, b"a\\tb\\nc\\\\d\\0e\\r\xff");
        assert_eq!(literal(&[0, 0xab, b't']), "unhex('00AB74')");
        assert_eq!(unhex("00AB74").unwrap(), vec![0, 0xab, b't']);
        assert!(unhex("0").is_err() && unhex("zz").is_err());
    }

    #[test]
    fn the_table_is_distributed_by_space_with_a_cluster() {
        let one = ddl(&Target {
            database: "g".into(),
            cluster: None,
        })
        .unwrap();
        assert_eq!(one.len(), 2, "{one:?}");
        assert!(
            one[1].contains("g.rollupd_kv (") && one[1].contains("ReplacingMergeTree(Version)")
        );
        let two = ddl(&Target {
            database: "g".into(),
            cluster: Some("pair".into()),
        })
        .unwrap();
        assert!(two[1].contains("g.rollupd_kv_local ("), "{two:?}");
        assert!(
            two[2].contains("Distributed(pair, g, rollupd_kv_local, cityHash64(Space))"),
            "{two:?}"
        );
        assert!(ddl(&Target {
            database: "g; DROP".into(),
            cluster: None
        })
        .is_err());
    }

    #[test]
    fn versions_rise_past_every_one_given() {
        let kv = ClickHouseKv::new(&ClickHouseConfig::default()).unwrap();
        let a = kv.versions(3);
        let b = kv.versions(1);
        assert!(b >= a + 3, "{a} {b}");
        *kv.clock.lock() = u64::MAX - 1;
        assert_eq!(kv.versions(5), u64::MAX);
    }
}
