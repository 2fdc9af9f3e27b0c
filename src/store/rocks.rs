//! The RocksDB engine: the only module that names RocksDB.
//!
//! One column family per [`Space`]. Rows are already compressed by the store
//! (pco), so RocksDB's own block compression is not built in (it would cost
//! compile time and CPU for nothing). Writes go through RocksDB's WAL without
//! fsync: a batch that `write` returned for survives `kill -9`, because the
//! WAL bytes are in the kernel's page cache; a power cut may lose the last
//! moments, as with carbon.

use std::path::Path;

use rocksdb::{
    BlockBasedOptions, ColumnFamilyDescriptor, DBCompressionType, Direction, ErrorKind,
    IteratorMode, Options, ReadOptions, WriteBatch, WriteOptions, DB,
};

use super::kv::{Batch, Kv, KvError, KvErrorKind, Op, Space};

pub struct RocksKv {
    db: DB,
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
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<RocksKv, KvError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_compression_type(DBCompressionType::None);
        opts.set_max_background_jobs(2);
        opts.set_keep_log_file_num(4);
        opts.set_max_log_file_size(8 << 20);
        // Bound the WAL: old memtables are flushed rather than kept alive
        // by a large log.
        opts.set_max_total_wal_size(256 << 20);
        opts.set_bytes_per_sync(1 << 20);
        let cfs = Space::ALL.iter().map(|s| {
            let mut o = Options::default();
            o.set_compression_type(DBCompressionType::None);
            let mut table = BlockBasedOptions::default();
            table.set_bloom_filter(10.0, false);
            table.set_block_size(16 << 10);
            o.set_block_based_table_factory(&table);
            if *s == Space::Log {
                // Short-lived blobs: flush them in big memtables so most are
                // deleted before they ever reach an SST.
                o.set_write_buffer_size(64 << 20);
            }
            ColumnFamilyDescriptor::new(s.name(), o)
        });
        let db = DB::open_cf_descriptors(&opts, dir, cfs).map_err(convert)?;
        Ok(RocksKv { db })
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
        let mut wb = WriteBatch::default();
        for op in &batch.ops {
            match op {
                Op::Put(s, k, v) => wb.put_cf(self.cf(*s), k, v),
                Op::Delete(s, k) => wb.delete_cf(self.cf(*s), k),
                Op::DeleteRange(s, from, to) => wb.delete_range_cf(self.cf(*s), from, to),
            }
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(false);
        self.db.write_opt(wb, &wo).map_err(convert)
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

    fn compact(&self, space: Space, from: &[u8], to: &[u8]) {
        self.db
            .compact_range_cf(self.cf(space), Some(from), Some(to));
    }
}

impl RocksKv {
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

    /// SST bytes of one space, after flushing its memtable.
    pub fn space_sst_bytes(&self, space: Space) -> u64 {
        let _ = self.db.flush_cf(self.cf(space));
        self.db
            .property_int_value_cf(self.cf(space), "rocksdb.live-sst-files-size")
            .ok()
            .flatten()
            .unwrap_or(0)
    }

    /// Compacts every space fully (benchmarks measure size after this).
    pub fn compact_all(&self) {
        for s in Space::ALL {
            self.db
                .compact_range_cf(self.cf(s), None::<&[u8]>, None::<&[u8]>);
        }
    }
}
