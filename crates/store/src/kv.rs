//! The key-value contract the store is written against.
//!
//! Nothing here names RocksDB: the store's logic runs unchanged on the
//! in-memory engine ([`super::mem`]) in tests and on RocksDB
//! ([`super::rocks`]) in the daemon. An engine provides a few ordered key
//! spaces, atomic multi-space write batches, point reads, ordered scans and
//! range deletes; that is all the store asks of it.

use std::fmt;

/// The key spaces (RocksDB column families). Each holds one kind of record,
/// so a scan or a range delete never walks past records of another kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Space {
    /// Format version, schemas, checkpoint position.
    Meta,
    /// Series index: kind + name → id, schema, method, xff (the id → name
    /// direction is rebuilt in memory at load).
    Series,
    /// Write-ahead batches not yet covered by a checkpoint.
    Log,
    /// Rows of points, compressed.
    Rows,
    /// Rows of timer histograms.
    Hists,
    /// Graphite events (deploy lines).
    Events,
    /// Fragments of value rows not yet sealed: the points a checkpoint
    /// found changed, under the row's key and the fragment's sequence.
    Heads,
    /// Fragments of histogram rows not yet sealed.
    HistHeads,
    /// Alerting: rules saved over HTTP, instance states, transition
    /// history and silences (`alert::persist` owns the key layout).
    Alerts,
    /// Dashboards saved over HTTP (`dashboard::store` owns the key layout).
    Dashboards,
}

impl Space {
    /// Every space, in the order the spill file numbers them (new ones
    /// go last, so old spill files keep their meaning).
    pub const ALL: [Space; 10] = [
        Space::Meta,
        Space::Series,
        Space::Log,
        Space::Rows,
        Space::Hists,
        Space::Events,
        Space::Heads,
        Space::HistHeads,
        Space::Alerts,
        Space::Dashboards,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Space::Meta => "meta",
            Space::Series => "series",
            Space::Log => "log",
            Space::Rows => "rows",
            Space::Hists => "hists",
            Space::Events => "events",
            Space::Heads => "heads",
            Space::HistHeads => "hist_heads",
            Space::Alerts => "alerts",
            Space::Dashboards => "dashboards",
        }
    }
}

/// One change in a [`Batch`].
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Put(Space, Vec<u8>, Vec<u8>),
    Delete(Space, Vec<u8>),
    /// Deletes keys in `[from, to)`.
    DeleteRange(Space, Vec<u8>, Vec<u8>),
}

/// Changes applied all or nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub ops: Vec<Op>,
}

impl Batch {
    pub fn put(&mut self, space: Space, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(Op::Put(space, key.into(), value.into()));
    }
    pub fn delete(&mut self, space: Space, key: impl Into<Vec<u8>>) {
        self.ops.push(Op::Delete(space, key.into()));
    }
    pub fn delete_range(&mut self, space: Space, from: impl Into<Vec<u8>>, to: impl Into<Vec<u8>>) {
        self.ops
            .push(Op::DeleteRange(space, from.into(), to.into()));
    }
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
    pub fn len(&self) -> usize {
        self.ops.len()
    }
}

/// An engine failure, with the engine's own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvError {
    pub kind: KvErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvErrorKind {
    /// The device is full (or over quota).
    NoSpace,
    /// The files are damaged or not ours.
    Corruption,
    /// Any other I/O or engine failure.
    Io,
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for KvError {}

impl KvError {
    pub fn io(message: impl Into<String>) -> Self {
        KvError {
            kind: KvErrorKind::Io,
            message: message.into(),
        }
    }
}

/// What the store needs from an engine. Implementations are shared between
/// threads; a write batch is atomic and, once `write` returns, survives the
/// process being killed (not necessarily the machine losing power).
/// A key range, `[from, to)`, unbounded where `None`.
pub type KeyRange = (Option<Vec<u8>>, Option<Vec<u8>>);

pub trait Kv: Send + Sync + 'static {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, KvError>;

    /// Point reads of many keys at once, in the order given.
    fn multi_get(&self, space: Space, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        keys.iter().map(|k| self.get(space, k)).collect()
    }

    fn write(&self, batch: Batch) -> Result<(), KvError>;

    /// `write`, for a batch that need survive the process being killed
    /// only once [`Kv::persist`] has returned for its spaces: the engine
    /// may leave it out of its own log (RocksDB's WAL). A checkpoint
    /// writes its fragments so: the store's log, which it deletes only
    /// after persisting them, holds every point they hold until then.
    fn write_unlogged(&self, batch: Batch) -> Result<(), KvError> {
        self.write(batch)
    }

    /// Makes every batch written to `spaces` so far survive the process
    /// being killed (RocksDB flushes those families' memtables and waits).
    /// Nothing to do for an engine that logs every batch.
    fn persist(&self, _spaces: &[Space]) -> Result<(), KvError> {
        Ok(())
    }

    /// Calls `f` for each key in `[from, to)` in ascending order until it
    /// returns false.
    fn scan(
        &self,
        space: Space,
        from: &[u8],
        to: &[u8],
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), KvError>;

    /// Bytes the engine occupies on disk (0 for memory).
    fn disk_bytes(&self) -> u64;

    /// Asks the engine to reclaim space from deleted ranges now.
    fn compact(&self, space: Space, from: &[u8], to: &[u8]);

    /// Compacts everything `space` holds into one sorted run now, for a
    /// space with no automatic compaction (RocksDB's `heads` families), a
    /// range of [`Kv::settle_ranges`] at a time.
    fn settle(&self, space: Space) {
        for range in self.settle_ranges(space) {
            self.settle_range(space, &range);
        }
    }

    /// The key ranges, in key order, into which a settle of `space` cuts
    /// its work: each range's compaction frees its inputs before the next
    /// starts, so the disk holds about one range twice, not the space.
    /// None for memory.
    fn settle_ranges(&self, _space: Space) -> Vec<KeyRange> {
        Vec::new()
    }

    /// Compacts one of [`Kv::settle_ranges`]' ranges into one sorted run.
    fn settle_range(&self, _space: Space, _range: &KeyRange) {}

    /// Asks the engine to move what it holds in memory to its files, so its
    /// own log of those writes can go (a checkpoint calls this: the store's
    /// log entries a checkpoint deleted would otherwise keep RocksDB's WAL
    /// files, up to its size bound, on disk). Nothing for memory.
    fn flush(&self) {}

    /// Memory is short (`short`), or no longer: caches shrink to a floor,
    /// or go back to their configured size. Nothing for memory.
    fn shed(&self, _short: bool) {}
}
