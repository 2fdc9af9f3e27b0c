//! The RocksDB engine: the only module that names RocksDB.
//!
//! One column family per [`Space`]. Rows are already compressed by the store
//! (pco), so RocksDB's own block compression is not built in (it would cost
//! compile time and CPU for nothing). Writes go through RocksDB's WAL without
//! fsync: a batch that `write` returned for survives `kill -9`, because the
//! WAL bytes are in the kernel's page cache; a power cut may lose the last
//! moments, as with carbon.
//!
//! RocksDB's memory is bounded by [`RocksOptions`]: one LRU block cache
//! shared by every family holds data blocks and the index and filter blocks
//! too (left to themselves, every open SST file keeps its index and filter
//! in memory outside any bound, and each family gets a block cache and
//! memtables of its own), and the memtables of all families together are
//! charged to that cache by a write buffer manager, so `cache_bytes +
//! memtable_bytes` bounds both.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBCompressionType, Direction, ErrorKind,
    IteratorMode, Options, ReadOptions, WriteBatch, WriteBufferManager, WriteOptions, DB,
};

use rollupd_store::kv::{Batch, KeyRange, Kv, KvError, KvErrorKind, Op, Space};

/// How much memory RocksDB may hold beside the store's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RocksOptions {
    /// The block cache every family shares: data blocks, index and filter
    /// blocks.
    pub cache_bytes: usize,
    /// All memtables together. They are charged to the block cache (which
    /// is made `cache_bytes + memtable_bytes` large); past 90% of this,
    /// RocksDB flushes the largest.
    pub memtable_bytes: usize,
}

impl Default for RocksOptions {
    fn default() -> Self {
        RocksOptions {
            cache_bytes: 64 << 20,
            memtable_bytes: 64 << 20,
        }
    }
}

/// What RocksDB holds in memory now, from its own counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RocksMemory {
    /// Block cache in use: blocks read, plus the memtables charged to it.
    pub cache: u64,
    /// Of which pinned (index and filter blocks of L0 files, blocks held by
    /// open iterators).
    pub cache_pinned: u64,
    /// Memtables of every family, mutable and immutable.
    pub memtables: u64,
    /// Table readers outside the cache (what is left of each open file).
    pub table_readers: u64,
}

pub struct RocksKv {
    db: DB,
    cache: Cache,
    /// The block cache's configured size (`cache_bytes + memtable_bytes`).
    cache_capacity: usize,
    /// Bytes of each space's records handed to RocksDB's WAL since open
    /// (by `Space::ALL` index), for [`RocksKv::writes`].
    wal_bytes: [AtomicU64; Space::ALL.len()],
}

/// What RocksDB wrote for one space since it opened, in bytes: its records
/// in the WAL, its memtables flushed to level 0, and compactions' output
/// per level (index 0: intra-L0 compactions).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpaceWrites {
    pub wal: u64,
    pub flushed: u64,
    pub compacted: Vec<u64>,
}

impl SpaceWrites {
    pub fn compacted_total(&self) -> u64 {
        self.compacted.iter().sum()
    }
}

fn convert(e: rocksdb::Error) -> KvError {
    let message = e.to_string();
    let kind = if message.contains("No space left") || message.contains("quota") {
        KvErrorKind::NoSpace
    } else if e.kind() == ErrorKind::Corruption {
        KvErrorKind::Corruption
    } else {
        KvErrorKind::Io
    };
    KvError { kind, message }
}

impl RocksKv {
    /// Opens (or creates) the database in `dir` with the default memory
    /// bounds.
    pub fn open(dir: &Path) -> Result<RocksKv, KvError> {
        Self::open_with(dir, &RocksOptions::default())
    }

    /// Opens (or creates) the database in `dir` within `limits`.
    pub fn open_with(dir: &Path, limits: &RocksOptions) -> Result<RocksKv, KvError> {
        Self::open_tuned(dir, limits, |_, _| {})
    }

    /// `open_with`, with `tune` applied last to each family's options
    /// (tests make small files with it).
    fn open_tuned(
        dir: &Path,
        limits: &RocksOptions,
        tune: impl Fn(Space, &mut Options),
    ) -> Result<RocksKv, KvError> {
        let cache = Cache::new_lru_cache(limits.cache_bytes + limits.memtable_bytes);
        // No stall: past the budget RocksDB flushes; stalling every writer
        // until a flush ends would turn a burst into a pause of the carbon
        // listeners.
        let memtables = WriteBufferManager::new_write_buffer_manager_with_cache(
            limits.memtable_bytes,
            false,
            cache.clone(),
        );
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_compression_type(DBCompressionType::None);
        opts.set_max_background_jobs(2);
        opts.set_keep_log_file_num(4);
        opts.set_max_log_file_size(1 << 20);
        // Bound the WAL: old memtables are flushed rather than kept alive
        // by a large log.
        opts.set_max_total_wal_size(256 << 20);
        opts.set_bytes_per_sync(1 << 20);
        opts.set_write_buffer_manager(&memtables);
        let cfs = Space::ALL.map(|s| {
            let mut o = Options::default();
            o.set_compression_type(DBCompressionType::None);
            let mut table = BlockBasedOptions::default();
            table.set_block_cache(&cache);
            table.set_cache_index_and_filter_blocks(true);
            // L0 files are read by every lookup: their index and filter
            // stay in the cache as long as the file lives.
            table.set_pin_l0_filter_and_index_blocks_in_cache(true);
            table.set_block_size(16 << 10);
            // The log is only ever scanned in order: a filter would be
            // bytes on disk and in the cache for nothing.
            if s != Space::Log {
                table.set_bloom_filter(10.0, false);
                table.set_optimize_filters_for_memory(true);
            }
            o.set_block_based_table_factory(&table);
            // A family's memtable is flushed at this size, or sooner when
            // all of them together pass the budget. The log takes a write
            // per batch and the rows a seal's; `heads`, which takes every
            // checkpoint's fragments and is compacted once per checkpoint
            // (below), gets a sixteenth: its size only sets how many
            // level-0 files a checkpoint leaves until then. (With
            // RocksDB's compactions there, a quarter halved them, 10.0 to
            // 4.5 B written a point at 50k series, but took `du` from 1.2
            // to 2.0 times the live rows: docs/storage-format.md, Engine
            // settings.)
            let share = match s {
                Space::Log | Space::Rows => 4,
                _ => 16,
            };
            o.set_write_buffer_size((limits.memtable_bytes / share).max(1 << 20));
            if matches!(s, Space::Heads | Space::HistHeads) {
                // A checkpoint's fragments are spread over every row of
                // the span, a third as dense as the rows they join: a
                // level-0 file overlaps last-level files of about three
                // times its size, which its compaction rewrites while they
                // stay on disk. Small files keep that to a few MB.
                o.set_write_buffer_size(SETTLE_MEMTABLE_BYTES);
            }
            if s == Space::Log {
                // No compaction of its own: a log entry lives until the
                // next checkpoint, which range-deletes it and compacts that
                // range (`Kv::compact`), so a compaction before that would
                // rewrite entries about to be deleted. It bounds the log's
                // cost to its WAL write, plus a flush and one rewrite for
                // the entries written while a checkpoint runs or that
                // outgrow the memtable; it saves nothing measurable at 50k
                // series (ramp bench: 0.54-0.58 B a point compacted with
                // or without, even with a 1 MiB log memtable, flushed 3-4
                // times an interval as at 1M series by default), where the
                // checkpoint's own compaction of the range comes first.
                // Level-0 files then pile up between checkpoints (at most
                // `checkpoint_log_bytes` of them, which forces one), and
                // writes never stall on them: RocksDB applies its L0 and
                // pending-compaction stall triggers only to families with
                // automatic compactions (`GetWriteStallConditionAndCause`);
                // the memtable count is the one limit left, and flushes
                // lift it.
                o.set_disable_auto_compactions(true);
            }
            if matches!(s, Space::Heads | Space::HistHeads) {
                // Compacted once per checkpoint, after its fragments
                // (`Kv::settle`), not by RocksDB whenever 4 files are in
                // level 0. Every checkpoint's fragments interleave with
                // the whole current row span's in key order (and its
                // merges delete keys all over it), so each level-0
                // compaction rewrote that span, and a checkpoint made
                // more of them the more series it held: at 500,000
                // statsd-shaped series the ramp bench wrote 160 B a point
                // to disk (heads' compactions 121), and the writer waited
                // on the upkeep thread 216 s of the level's 233.
                o.set_disable_auto_compactions(true);
                o.set_target_file_size_base(SETTLE_FILE_BYTES);
            }
            tune(s, &mut o);
            ColumnFamilyDescriptor::new(s.name(), o)
        });
        let db = DB::open_cf_descriptors(&opts, dir, cfs).map_err(convert)?;
        let cache_capacity = limits.cache_bytes + limits.memtable_bytes;
        Ok(RocksKv {
            db,
            cache,
            cache_capacity,
            wal_bytes: Default::default(),
        })
    }

    /// What RocksDB holds in memory now.
    pub fn memory(&self) -> RocksMemory {
        let mut m = RocksMemory {
            cache: self.cache.get_usage() as u64,
            cache_pinned: self.cache.get_pinned_usage() as u64,
            ..RocksMemory::default()
        };
        for s in Space::ALL {
            let cf = self.cf(s);
            let prop = |p: &str| {
                self.db
                    .property_int_value_cf(cf, p)
                    .ok()
                    .flatten()
                    .unwrap_or(0)
            };
            m.memtables += prop("rocksdb.cur-size-all-mem-tables");
            m.table_readers += prop("rocksdb.estimate-table-readers-mem");
        }
        m
    }

    fn cf(&self, space: Space) -> &rocksdb::ColumnFamily {
        // Every space's family is created at open, so this cannot miss.
        self.db
            .cf_handle(space.name())
            .expect("column family created at open")
    }
}

impl Kv for RocksKv {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        self.db.get_cf(self.cf(space), key).map_err(convert)
    }

    fn multi_get(&self, space: Space, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        let cf = self.cf(space);
        self.db
            .multi_get_cf(keys.iter().map(|k| (cf, k.as_slice())))
            .into_iter()
            .map(|r| r.map_err(convert))
            .collect()
    }

    fn write(&self, batch: Batch) -> Result<(), KvError> {
        self.write_batch(batch, true)
    }

    /// Without RocksDB's WAL: the checkpoint's fragments, 5-6.6 B a point
    /// at 50k statsd-shaped series (ramp bench), a quarter of all the
    /// bytes written, were written there once before the flush that
    /// `persist` makes anyway.
    fn write_unlogged(&self, batch: Batch) -> Result<(), KvError> {
        self.write_batch(batch, false)
    }

    fn persist(&self, spaces: &[Space]) -> Result<(), KvError> {
        for s in spaces {
            self.db.flush_cf(self.cf(*s)).map_err(convert)?;
        }
        Ok(())
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
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(to.to_vec());
        let it = self.db.iterator_cf_opt(
            self.cf(space),
            ro,
            IteratorMode::From(from, Direction::Forward),
        );
        for item in it {
            let (k, v) = item.map_err(convert)?;
            if !f(&k, &v) {
                break;
            }
        }
        Ok(())
    }

    fn disk_bytes(&self) -> u64 {
        let mut total = 0;
        for s in Space::ALL {
            for prop in [
                "rocksdb.live-sst-files-size",
                "rocksdb.cur-size-all-mem-tables",
            ] {
                if let Ok(Some(n)) = self.db.property_int_value_cf(self.cf(s), prop) {
                    total += n;
                }
            }
        }
        total
    }

    /// Drops the SST files that lie wholly inside `[from, to)` without
    /// reading them, then compacts what is left of the range. The store
    /// range-deletes a range before it asks for this, so the tombstone
    /// (newer than any file dropped here) still hides whatever in the
    /// range a dropped file had been covering.
    fn compact(&self, space: Space, from: &[u8], to: &[u8]) {
        let cf = self.cf(space);
        if let Some(last) = key_before(to) {
            if from <= last.as_slice() {
                // RocksDB takes the end of this range as inclusive: `last`
                // sorts before `to` and everything up to it does too.
                if let Err(e) = self.db.delete_file_in_range_cf(cf, from, &last) {
                    tracing::warn!(space = space.name(), error = %e, "dropping whole files of a deleted range failed; compacting it instead");
                }
            }
        }
        self.db.compact_range_cf(cf, Some(from), Some(to));
    }

    fn shed(&self, short: bool) {
        // The cache is shared (an Arc inside): a handle sets its capacity.
        // When memory is short it keeps room for the memtables charged to
        // it and little else; RocksDB evicts blocks down to that.
        let mut cache = self.cache.clone();
        let floor = (self.cache_capacity / 8).max(8 << 20);
        cache.set_capacity(if short { floor } else { self.cache_capacity });
    }

    // Level 0 into the last level (where a family this small lives, with
    // dynamic level sizes), a key range at a time: a compaction's inputs
    // stay on disk until it ends, so one compaction of the whole family
    // held it twice on disk for its length (`du` peaks of 2.5-2.9 times
    // the rows at 250k-500k series, sampled every 250 ms by the ramp
    // bench). A checkpoint writes its fragments in key order, so its
    // level-0 files are (nearly) disjoint ranges, and the last level's
    // files are small (`SETTLE_FILE_BYTES`): a range's compaction takes
    // only the files in it, and those of the level-0 file that reaches
    // into the next.
    fn settle_ranges(&self, space: Space) -> Vec<KeyRange> {
        self.settle_cuts(space)
    }

    fn settle_range(&self, space: Space, range: &KeyRange) {
        self.db
            .compact_range_cf(self.cf(space), range.0.as_deref(), range.1.as_deref());
    }

    fn flush(&self) {
        for s in Space::ALL {
            if let Err(e) = self.db.flush_cf(self.cf(s)) {
                tracing::warn!(space = s.name(), error = %e, "flushing memtables failed");
            }
        }
    }
}

/// The last level's file size in the fragments families: what one of the
/// settle's ranged compactions rewrites beyond its range, at most.
const SETTLE_FILE_BYTES: u64 = 2 << 20;
/// Ranges a settle compacts one after another: the disk holds at most
/// about one of them twice.
const SETTLE_RANGES: u64 = 64;
/// The fragments families' memtable: each flush is a level-0 file.
const SETTLE_MEMTABLE_BYTES: usize = 1 << 20;

impl RocksKv {
    /// `space`'s key space in about [`SETTLE_RANGES`] ranges of equal
    /// bytes, cut at the start keys of its last level's files (so no such
    /// file is split between two compactions); one whole range when it has
    /// no such files yet.
    fn settle_cuts(&self, space: Space) -> Vec<KeyRange> {
        let mut files: Vec<(Vec<u8>, u64)> = self
            .db
            .live_files()
            .unwrap_or_default()
            .into_iter()
            .filter(|f| f.column_family_name == space.name() && f.level > 0)
            .filter_map(|f| Some((f.start_key?, f.size as u64)))
            .collect();
        files.sort();
        let total: u64 = files.iter().map(|f| f.1).sum();
        let per = (total / SETTLE_RANGES).max(1);
        let mut cuts: Vec<Vec<u8>> = Vec::new();
        let mut acc = 0u64;
        for (start, size) in files {
            if acc >= per {
                cuts.push(start);
                acc = 0;
            }
            acc += size;
        }
        let mut out = Vec::with_capacity(cuts.len() + 1);
        let mut from: Option<Vec<u8>> = None;
        for c in cuts {
            out.push((from.take(), Some(c.clone())));
            from = Some(c);
        }
        out.push((from, None));
        out
    }
}

fn space_index(space: Space) -> usize {
    Space::ALL
        .iter()
        .position(|s| *s == space)
        .expect("every space is in Space::ALL")
}

/// From a family's `rocksdb.cfstats` text: the bytes its flushes wrote
/// ("Flush(GB): cumulative", to the MB), and the bytes written into each
/// level (flushes included at level 0). The per-level table prints
/// "Write(GB)" to a tenth of a GB only, useless below gigabytes; its
/// "Wr(MB/s)" (bytes written ÷ 2^20 ÷ seconds) times "Comp(sec)" gives
/// the bytes to a fraction of a percent.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "the saturating float-to-int `as` is intended: a negative, NaN or absurd figure in RocksDB's stats text becomes 0 or u64::MAX bytes, never a panic"
)]
fn parse_cfstats(text: &str) -> (u64, Vec<u64>) {
    const MB: f64 = (1u64 << 20) as f64;
    let flushed = text
        .lines()
        .find_map(|l| l.strip_prefix("Flush(GB): cumulative "))
        .and_then(|rest| rest.split(',').next()?.trim().parse::<f64>().ok())
        .map_or(0, |gb| (gb * 1024.0 * MB) as u64);
    let mut lines = text.lines();
    let Some(header) = lines.find(|l| l.trim_start().starts_with("Level")) else {
        return (flushed, Vec::new());
    };
    let cols: Vec<&str> = header.split_whitespace().collect();
    let col = |name: &str| cols.iter().position(|c| *c == name);
    let (Some(wr), Some(secs)) = (col("Wr(MB/s)"), col("Comp(sec)")) else {
        return (flushed, Vec::new());
    };
    let mut levels = Vec::new();
    for line in lines {
        let line = line.trim_start();
        let Some(rest) = line.strip_prefix('L') else {
            if line.starts_with("Sum") {
                break;
            }
            continue;
        };
        let Some(level) = rest
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        // The size column is a number and a unit ("39.9 MB"): the unit
        // has no header of its own.
        let vals: Vec<&str> = line
            .split_whitespace()
            .filter(|v| !matches!(*v, "B" | "KB" | "MB" | "GB" | "TB"))
            .collect();
        let num = |i: usize| vals.get(i).and_then(|v| v.parse::<f64>().ok());
        if let (Some(rate), Some(s)) = (num(wr), num(secs)) {
            if levels.len() <= level {
                levels.resize(level + 1, 0);
            }
            levels[level] = (rate * s * MB) as u64;
        }
    }
    (flushed, levels)
}

/// A key that sorts before `to` such that every key up to it does too (the
/// inclusive end of `[.., to)`, or a little short of it): `to` less its
/// last byte if that is 0, else with its last byte one lower. None for the
/// empty key, before which there is nothing.
fn key_before(to: &[u8]) -> Option<Vec<u8>> {
    let (&last, head) = to.split_last()?;
    let mut k = head.to_vec();
    if last > 0 {
        k.push(last - 1);
    }
    Some(k)
}

impl RocksKv {
    /// Writes `batch` atomically, through RocksDB's WAL when `logged`,
    /// counting each family's records handed to the WAL.
    fn write_batch(&self, batch: Batch, logged: bool) -> Result<(), KvError> {
        let mut wb = WriteBatch::default();
        let mut sizes = [0u64; Space::ALL.len()];
        for op in &batch.ops {
            // A WriteBatch record: a tag byte, the family's id (one byte
            // here), then each of key and value (or range ends) as a
            // varint length and its bytes.
            let (s, a, b) = match op {
                Op::Put(s, k, v) => {
                    wb.put_cf(self.cf(*s), k, v);
                    (s, k.len(), Some(v.len()))
                }
                Op::Delete(s, k) => {
                    wb.delete_cf(self.cf(*s), k);
                    (s, k.len(), None)
                }
                Op::DeleteRange(s, from, to) => {
                    wb.delete_range_cf(self.cf(*s), from, to);
                    (s, from.len(), Some(to.len()))
                }
            };
            let field = |n: usize| n + (64 - (n as u64 | 1).leading_zeros() as usize).div_ceil(7);
            sizes[space_index(*s)] += (2 + field(a) + b.map_or(0, field)) as u64;
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(false);
        wo.disable_wal(!logged);
        self.db.write_opt(wb, &wo).map_err(convert)?;
        if logged {
            for (total, n) in self.wal_bytes.iter().zip(sizes) {
                if n > 0 {
                    total.fetch_add(n, Relaxed);
                }
            }
        }
        Ok(())
    }

    /// Bytes of SST files alone, after flushing memtables: what the data
    /// costs at rest.
    pub fn sst_bytes(&self) -> u64 {
        let mut total = 0;
        for s in Space::ALL {
            let _ = self.db.flush_cf(self.cf(s));
            if let Ok(Some(n)) = self
                .db
                .property_int_value_cf(self.cf(s), "rocksdb.live-sst-files-size")
            {
                total += n;
            }
        }
        total
    }

    /// SST bytes of one space as they stand (memtables not flushed), for
    /// telling where the disk goes while the store runs.
    pub fn live_sst_bytes(&self, space: Space) -> u64 {
        self.db
            .property_int_value_cf(self.cf(space), "rocksdb.live-sst-files-size")
            .ok()
            .flatten()
            .unwrap_or(0)
    }

    /// SST bytes of one space that compactions replaced but a reader
    /// still holds (an iterator keeps the files of the version it
    /// started on until it ends).
    pub fn held_sst_bytes(&self, space: Space) -> u64 {
        let prop = |name: &str| {
            self.db
                .property_int_value_cf(self.cf(space), name)
                .ok()
                .flatten()
                .unwrap_or(0)
        };
        prop("rocksdb.total-sst-files-size").saturating_sub(prop("rocksdb.live-sst-files-size"))
    }

    /// SST bytes of one space, after flushing its memtable.
    pub fn space_sst_bytes(&self, space: Space) -> u64 {
        let _ = self.db.flush_cf(self.cf(space));
        self.db
            .property_int_value_cf(self.cf(space), "rocksdb.live-sst-files-size")
            .ok()
            .flatten()
            .unwrap_or(0)
    }

    /// What RocksDB wrote for one space since it opened, for telling where
    /// the writes go: the WAL from our own count of the records handed to
    /// it, flushes and compactions from its `rocksdb.cfstats`.
    pub fn writes(&self, space: Space) -> SpaceWrites {
        let text = self
            .db
            .property_value_cf(self.cf(space), "rocksdb.cfstats")
            .ok()
            .flatten()
            .unwrap_or_default();
        let (flushed, by_level) = parse_cfstats(&text);
        let mut compacted = by_level;
        // Level 0's output is the flushes, and intra-L0 compactions if any.
        if let Some(l0) = compacted.first_mut() {
            *l0 = l0.saturating_sub(flushed);
        }
        SpaceWrites {
            wal: self.wal_bytes[space_index(space)].load(Relaxed),
            flushed,
            compacted,
        }
    }

    /// Table files in each level of one space's family
    /// (`rocksdb.num-files-at-levelN`): a scan opens one per level-0 file,
    /// so a benchmark tells a read's cost apart by these.
    pub fn level_files(&self, space: Space) -> Vec<u64> {
        (0..7)
            .map(|l| {
                self.db
                    .property_int_value_cf(
                        self.cf(space),
                        &format!("rocksdb.num-files-at-level{l}"),
                    )
                    .ok()
                    .flatten()
                    .unwrap_or(0)
            })
            .collect()
    }

    /// Changes mutable options of one space's family while it runs
    /// (RocksDB's `SetOptions`, names as in its OPTIONS file), so a
    /// benchmark can measure a setting without a rebuild (the ramp bench's
    /// `RAMP_ROCKS_<FAMILY>`).
    pub fn set_options(&self, space: Space, opts: &[(&str, &str)]) -> Result<(), KvError> {
        self.db
            .set_options_cf(self.cf(space), opts)
            .map_err(convert)
    }

    /// Compacts every space fully (benchmarks measure size after this).
    pub fn compact_all(&self) {
        for s in Space::ALL {
            self.db
                .compact_range_cf(self.cf(s), None::<&[u8]>, None::<&[u8]>);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A store written before a family existed (here: without
    /// `dashboards`) opens, keeps its records, and has the new family.
    #[test]
    fn a_store_without_a_newer_family_opens() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut opts = Options::default();
            opts.create_if_missing(true);
            opts.create_missing_column_families(true);
            let older: Vec<&str> = Space::ALL
                .iter()
                .filter(|s| **s != Space::Dashboards)
                .map(|s| s.name())
                .collect();
            let db = DB::open_cf(&opts, dir.path(), older).unwrap();
            let cf = db.cf_handle(Space::Alerts.name()).unwrap();
            db.put_cf(cf, b"r\0rule", b"{}").unwrap();
        }
        let kv = RocksKv::open(dir.path()).unwrap();
        assert_eq!(
            kv.get(Space::Alerts, b"r\0rule").unwrap().as_deref(),
            Some(&b"{}"[..])
        );
        let mut b = Batch::default();
        b.put(Space::Dashboards, b"d\0x".to_vec(), b"{}".to_vec());
        kv.write(b).unwrap();
        assert!(kv.get(Space::Dashboards, b"d\0x").unwrap().is_some());
    }

    #[test]
    #[expect(
        clippy::cast_possible_truncation,
        reason = "the filler byte is the low byte of i on purpose"
    )]
    fn shedding_shrinks_the_block_cache_and_lets_it_grow_back() {
        let dir = tempfile::tempdir().unwrap();
        let kv = RocksKv::open(dir.path()).unwrap();
        let mut b = Batch::default();
        for i in 0u32..3000 {
            b.put(
                Space::Rows,
                i.to_be_bytes().to_vec(),
                vec![i as u8; 16 << 10],
            );
        }
        kv.write(b).unwrap();
        kv.flush();
        let read_all = || {
            for i in 0u32..3000 {
                assert!(kv.get(Space::Rows, &i.to_be_bytes()).unwrap().is_some());
            }
        };
        read_all();
        let floor = (kv.cache_capacity / 8).max(8 << 20) as u64;
        assert!(kv.memory().cache > floor, "{} cached", kv.memory().cache);
        kv.shed(true);
        assert!(kv.memory().cache <= floor, "{} cached", kv.memory().cache);
        kv.shed(false);
        read_all();
        assert!(kv.memory().cache > floor, "{} cached", kv.memory().cache);
    }

    #[test]
    fn key_before_is_below_the_end_and_so_is_everything_up_to_it() {
        assert_eq!(key_before(b""), None);
        assert_eq!(key_before(b"ab\x05").unwrap(), b"ab\x04");
        assert_eq!(key_before(b"ab\x00").unwrap(), b"ab");
        assert_eq!(key_before(b"\x00").unwrap(), b"");
        for to in [&b"ab\x05"[..], b"ab\x00", b"\x01"] {
            let k = key_before(to).unwrap();
            assert!(k.as_slice() < to);
        }
    }

    fn key(i: u32) -> Vec<u8> {
        let mut k = vec![0u8; 11];
        k[3..7].copy_from_slice(&(i / 100).to_be_bytes());
        k[7..11].copy_from_slice(&(i % 100).to_be_bytes());
        k
    }

    /// 40,000 rows of 100 B in files of about 256 KiB at the bottom level.
    #[expect(
        clippy::cast_possible_truncation,
        reason = "the filler byte is the low byte of i on purpose"
    )]
    fn filled(dir: &Path) -> RocksKv {
        let kv = RocksKv::open_tuned(dir, &RocksOptions::default(), |_, o| {
            o.set_target_file_size_base(256 << 10);
        })
        .unwrap();
        for chunk in 0..8u32 {
            let mut b = Batch::default();
            for i in chunk * 5000..(chunk + 1) * 5000 {
                b.put(Space::Rows, key(i), vec![i as u8; 100]);
            }
            kv.write(b).unwrap();
            kv.db.flush_cf(kv.cf(Space::Rows)).unwrap();
        }
        kv.compact_all();
        kv
    }

    fn live_keys(kv: &RocksKv) -> Vec<Vec<u8>> {
        let mut keys = Vec::new();
        kv.scan(Space::Rows, &[], &[0xff; 12], &mut |k, _| {
            keys.push(k.to_vec());
            true
        })
        .unwrap();
        keys
    }

    fn files(kv: &RocksKv) -> u64 {
        (0..7)
            .map(|l| {
                kv.db
                    .property_int_value_cf(
                        kv.cf(Space::Rows),
                        &format!("rocksdb.num-files-at-level{l}"),
                    )
                    .unwrap()
                    .unwrap_or(0)
            })
            .sum()
    }

    #[test]
    fn compact_drops_the_files_of_a_deleted_range_and_keeps_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let kv = filled(dir.path());
        let before = kv.space_sst_bytes(Space::Rows);
        // One file per flush, moved down whole (their keys do not overlap).
        assert_eq!(files(&kv), 8);
        // The range ends on the last key of a file: RocksDB's inclusive end
        // would drop that file and the key with it.
        let mut b = Batch::default();
        b.delete_range(Space::Rows, key(0), key(29_999));
        kv.write(b).unwrap();
        kv.compact(Space::Rows, &key(0), &key(29_999));
        let keys = live_keys(&kv);
        assert_eq!(keys.len(), 10_001);
        assert_eq!(keys[0], key(29_999));
        let after = kv.space_sst_bytes(Space::Rows);
        assert!(after * 3 < before, "{after} of {before} B left");
    }

    /// Files dropped alone, with no compaction after: the range's tombstone
    /// still hides the rows of the files that straddle its ends.
    #[test]
    fn dropped_files_leave_nothing_of_the_range_visible() {
        let dir = tempfile::tempdir().unwrap();
        let kv = filled(dir.path());
        let before = kv.space_sst_bytes(Space::Rows);
        // A range that starts and ends inside files.
        let mut b = Batch::default();
        b.delete_range(Space::Rows, key(1234), key(31_234));
        kv.write(b).unwrap();
        let last = key_before(&key(31_234)).unwrap();
        kv.db
            .delete_file_in_range_cf(kv.cf(Space::Rows), key(1234), last)
            .unwrap();
        let keys = live_keys(&kv);
        assert_eq!(keys.len(), 10_000);
        assert_eq!(keys[1233], key(1233));
        assert_eq!(keys[1234], key(31_234));
        // Nothing was compacted; the files wholly inside are gone.
        let after = kv.space_sst_bytes(Space::Rows);
        assert!(after * 2 < before, "{after} of {before} B left");
    }

    fn log_files(kv: &RocksKv) -> Vec<rocksdb::LiveFile> {
        kv.db
            .live_files()
            .unwrap()
            .into_iter()
            .filter(|f| f.column_family_name == Space::Log.name())
            .collect()
    }

    /// The log has no automatic compaction, and writes go on however many
    /// level-0 files it holds: well past RocksDB's stop trigger, which
    /// would hold every writer until a compaction that never comes.
    #[test]
    fn the_log_takes_writes_past_the_level0_stop_trigger() {
        let dir = tempfile::tempdir().unwrap();
        let kv = Arc::new(
            RocksKv::open_tuned(dir.path(), &RocksOptions::default(), |s, o| {
                if s == Space::Log {
                    o.set_level_zero_slowdown_writes_trigger(2);
                    o.set_level_zero_stop_writes_trigger(3);
                }
            })
            .unwrap(),
        );
        let (done, finished) = std::sync::mpsc::channel();
        let writer = {
            let kv = kv.clone();
            std::thread::spawn(move || {
                for seq in 0u64..12 {
                    let mut b = Batch::default();
                    b.put(Space::Log, seq.to_be_bytes().to_vec(), vec![7u8; 1000]);
                    kv.write(b).unwrap();
                    kv.db.flush_cf(kv.cf(Space::Log)).unwrap();
                }
                done.send(()).unwrap();
            })
        };
        finished
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("log writes stalled on its level-0 files");
        writer.join().unwrap();
        let files = log_files(&kv);
        assert_eq!(files.len(), 12, "no compaction merged them");
        assert!(files.iter().all(|f| f.level == 0));
    }

    fn files_of(kv: &RocksKv, space: Space) -> Vec<rocksdb::LiveFile> {
        kv.db
            .live_files()
            .unwrap()
            .into_iter()
            .filter(|f| f.column_family_name == space.name())
            .collect()
    }

    /// One point for each of `names` at `t`, written as one flush.
    fn write_flush(
        store: &rollupd_store::Store,
        names: &[String],
        t: i64,
        mut value: impl FnMut() -> f64,
    ) {
        let points: Vec<rollupd_store::Point<'_>> = names
            .iter()
            .map(|n| rollupd_store::Point {
                name: n,
                timestamp: t,
                value: value(),
            })
            .collect();
        store.write(&points, &[], t).unwrap();
    }

    /// `heads` has no automatic compaction: its level-0 files stay until
    /// `settle`, which puts everything in one level, every key still there.
    #[test]
    fn heads_files_wait_for_settle() {
        let dir = tempfile::tempdir().unwrap();
        let kv = RocksKv::open(dir.path()).unwrap();
        for round in 0u32..8 {
            let mut b = Batch::default();
            for i in 0u32..100 {
                let k = [i.to_be_bytes(), round.to_be_bytes()].concat();
                b.put(Space::Heads, k, vec![3u8; 100]);
            }
            kv.write_unlogged(b).unwrap();
            kv.persist(&[Space::Heads]).unwrap();
        }
        let files = files_of(&kv, Space::Heads);
        assert_eq!(files.len(), 8, "no compaction merged them");
        assert!(files.iter().all(|f| f.level == 0));
        kv.settle(Space::Heads);
        let files = files_of(&kv, Space::Heads);
        assert!(
            !files.is_empty() && files.iter().all(|f| f.level > 0),
            "{files:?}"
        );
        let mut n = 0;
        kv.scan(Space::Heads, &[], &[0xff; 9], &mut |_, _| {
            n += 1;
            true
        })
        .unwrap();
        assert_eq!(n, 800);
    }

    /// Each checkpoint's settle leaves `heads` in one level: its fragments
    /// (flushed as many level-0 files through a small write buffer here)
    /// and what its merges replaced are compacted once, after the
    /// checkpoint, on the settle's thread.
    #[test]
    fn a_checkpoint_leaves_heads_in_one_level() {
        use rollupd_store::config::StorageConfig;
        use rollupd_store::Store;
        let dir = tempfile::tempdir().unwrap();
        let kv = Arc::new(
            RocksKv::open_tuned(dir.path(), &RocksOptions::default(), |s, o| {
                if s == Space::Heads {
                    o.set_write_buffer_size(64 << 10);
                }
            })
            .unwrap(),
        );
        let t0 = 1_700_006_400i64;
        let names: Vec<String> = (0..2000).map(|i| format!("s.{i}")).collect();
        let store = Store::open(kv.clone(), dir.path(), &StorageConfig::default(), t0).unwrap();
        let mut rng = fastrand::Rng::with_seed(9);
        for step in 0..40i64 {
            write_flush(&store, &names, t0 + step * 10, || rng.f64());
            if step % 5 == 4 {
                store.checkpoint().unwrap();
                store.wait_for_settle();
                let files = files_of(&kv, Space::Heads);
                assert!(!files.is_empty());
                assert!(
                    files.iter().all(|f| f.level > 0),
                    "after checkpoint at step {step}: {:?}",
                    files.iter().map(|f| f.level).collect::<Vec<_>>()
                );
            }
        }
        for n in names.iter().step_by(97) {
            let id = store.index().id(n).unwrap();
            let f = store
                .fetch(id, t0 - 1, t0 + 400, t0 + 400)
                .unwrap()
                .unwrap();
            let known = f.values.iter().filter(|v| !v.is_nan()).count();
            assert_eq!(known, 40, "{n}: {:?}", f.values);
        }
    }

    /// After a checkpoint, `log` holds no table file whose entries it
    /// covers: the files its memtable flushed along the way (a small write
    /// buffer here) leave the disk with the entries, and the points are
    /// all in the rows, across a restart.
    #[test]
    fn a_checkpoint_leaves_no_log_file_of_covered_entries() {
        use rollupd_store::config::StorageConfig;
        use rollupd_store::Store;
        let dir = tempfile::tempdir().unwrap();
        let open = || -> Arc<RocksKv> {
            Arc::new(
                RocksKv::open_tuned(dir.path(), &RocksOptions::default(), |s, o| {
                    if s == Space::Log {
                        o.set_write_buffer_size(64 << 10);
                    }
                })
                .unwrap(),
            )
        };
        let t0 = 1_700_006_400i64;
        let names: Vec<String> = (0..200).map(|i| format!("s.{i}")).collect();
        let cfg = StorageConfig::default();
        let mut rng = fastrand::Rng::with_seed(5);
        let kv = open();
        {
            let store = Store::open(kv.clone(), dir.path(), &cfg, t0).unwrap();
            for step in 0..200i64 {
                write_flush(&store, &names, t0 + step * 10, || rng.f64());
            }
            assert!(
                log_files(&kv).len() >= 3,
                "the log's memtable was flushed along the way"
            );
            store.checkpoint().unwrap();
            let covered = kv.get(Space::Meta, b"checkpoint").unwrap().unwrap();
            for f in log_files(&kv) {
                let end = f.end_key.clone().unwrap_or_default();
                assert!(
                    end.as_slice() >= covered.as_slice(),
                    "{} (level {}) holds only covered entries",
                    f.name,
                    f.level
                );
            }
            assert_eq!(kv.live_sst_bytes(Space::Log), 0, "{:?}", log_files(&kv));
            // A batch after the checkpoint, in the log only: as after
            // kill -9, the store is dropped without closing.
            write_flush(&store, &names, t0 + 2000, || 1.5);
        }
        drop(kv);
        let kv = open();
        let store = Store::open(kv, dir.path(), &cfg, t0 + 2000).unwrap();
        for n in &names {
            let id = store.index().id(n).unwrap();
            let f = store
                .fetch(id, t0 - 1, t0 + 2000, t0 + 2000)
                .unwrap()
                .unwrap();
            let known = f.values.iter().filter(|v| !v.is_nan()).count();
            assert_eq!(known, 201, "{n}: {:?}", f.values);
        }
    }

    /// Open rows written at a clean close are read back after a restart.
    #[test]
    fn a_clean_restart_on_rocksdb_keeps_open_rows() {
        use rollupd_store::config::StorageConfig;
        use rollupd_store::{Point, Store};
        const T0: i64 = 1_700_006_400;
        let pt = |name, timestamp, value| Point {
            name,
            timestamp,
            value,
        };
        let dir = tempfile::tempdir().unwrap();
        let c = StorageConfig::default();
        let now = T0 + 600;
        {
            let kv: Arc<dyn Kv> = Arc::new(RocksKv::open(dir.path()).unwrap());
            let store = Store::open(kv, dir.path(), &c, 0).unwrap();
            store.write(&[pt("r", T0, 5.0)], &[], now).unwrap();
            store.checkpoint_compact().unwrap();
        }
        let kv: Arc<dyn Kv> = Arc::new(RocksKv::open(dir.path()).unwrap());
        let store = Store::open(kv, dir.path(), &c, 0).unwrap();
        let id = store.index().id("r").unwrap();
        let f = store.fetch(id, T0 - 1, T0 + 20, now).unwrap().unwrap();
        assert_eq!(f.values[0], 5.0, "read after restart");
        store.write(&[pt("r", T0 + 10, 6.0)], &[], now).unwrap();
        let f = store.fetch(id, T0 - 1, T0 + 20, now).unwrap().unwrap();
        assert_eq!(
            &f.values[..2],
            &[5.0, 6.0],
            "a new point beside the stored row"
        );
    }
}
