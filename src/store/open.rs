//! Rows in memory: each series' current row per archive ("open" rows, where
//! in-order points land without touching the engine), and rows that were
//! sealed or changed by a late point since the last checkpoint ("unsaved").
//! The write-ahead log covers both until a checkpoint writes them out.
//!
//! A [`Lane`] is generic over what a slot holds, so values and timer
//! histograms share one set of rules.

use std::collections::HashMap;

use super::derive;
use super::hist::{self, Hist};
use super::kv::{Kv, KvError, Space};
use super::row::{self, RowError, RowKey};

/// What a row slot holds.
pub trait Slot: Clone + Send + 'static {
    const SPACE: Space;
    fn absent() -> Self;
    fn present(&self) -> bool;
    fn encode_row(slots: &[Self]) -> Vec<u8>;
    /// The cheap encoding for a row that is still open (may equal
    /// `encode_row`).
    fn encode_open_row(slots: &[Self]) -> Vec<u8> {
        Self::encode_row(slots)
    }
    /// Decodes a stored row; `key` and `kv` are for rows derived from other
    /// rows under the same key (`derive`).
    fn decode_row(
        bytes: &[u8],
        slots: usize,
        key: RowKey,
        kv: &dyn Kv,
    ) -> Result<Vec<Self>, RowError>;
}

impl Slot for f64 {
    const SPACE: Space = Space::Rows;
    fn absent() -> f64 {
        f64::NAN
    }
    fn present(&self) -> bool {
        !self.is_nan()
    }
    fn encode_row(slots: &[f64]) -> Vec<u8> {
        row::encode(slots)
    }
    fn encode_open_row(slots: &[f64]) -> Vec<u8> {
        row::encode_raw(slots)
    }
    fn decode_row(
        bytes: &[u8],
        slots: usize,
        key: RowKey,
        kv: &dyn Kv,
    ) -> Result<Vec<f64>, RowError> {
        derive::decode(bytes, slots, key, kv)
    }
}

impl Slot for Option<Hist> {
    const SPACE: Space = Space::Hists;
    fn absent() -> Self {
        None
    }
    fn present(&self) -> bool {
        self.is_some()
    }
    fn encode_row(slots: &[Self]) -> Vec<u8> {
        hist::encode_row(slots)
    }
    fn encode_open_row(slots: &[Self]) -> Vec<u8> {
        hist::encode_row_plain(slots)
    }
    fn decode_row(
        bytes: &[u8],
        slots: usize,
        _key: RowKey,
        _kv: &dyn Kv,
    ) -> Result<Vec<Self>, RowError> {
        hist::decode_row(bytes, slots)
    }
}

pub struct OpenRow<T> {
    pub start: u32,
    /// Grown as slots are written; slots past the end are absent.
    pub slots: Vec<T>,
    /// Changed since it was last written out.
    pub dirty: bool,
    /// The log sequence of the last batch that changed it.
    pub stamp: u64,
}

impl<T: Slot> OpenRow<T> {
    fn set(&mut self, slot: usize, v: T, stamp: u64) {
        if self.slots.len() <= slot {
            self.slots.resize(slot + 1, T::absent());
        }
        self.slots[slot] = v;
        self.dirty = true;
        self.stamp = stamp;
    }
}

/// A row out of the open set and not yet written: full length.
pub struct Unsaved<T> {
    pub slots: Vec<T>,
    pub stamp: u64,
}

/// The row geometry of one schema: span (seconds) and slots per row, per
/// archive.
#[derive(Debug, Clone)]
pub struct Shape {
    pub steps: Vec<u32>,
    pub retentions: Vec<u64>,
    pub spans: Vec<u32>,
    pub slots: Vec<u32>,
}

pub struct Lane<T> {
    /// `open[series][archive]`.
    pub open: Vec<Vec<Option<OpenRow<T>>>>,
    /// Rows sealed or changed out of order since the last checkpoint, full
    /// length.
    pub unsaved: HashMap<RowKey, Unsaved<T>>,
    /// Per (schema, archive): the newest row start that may be stored in the
    /// engine. A row starting later is known to be new and is not looked up.
    pub stored_upto: HashMap<(u16, u8), u32>,
    pub corrupt_rows: u64,
    /// The log sequence of the batch being applied; rows it changes carry
    /// it, so a checkpoint knows which rows changed after its snapshot.
    pub stamp: u64,
}

impl<T> Default for Lane<T> {
    fn default() -> Self {
        Lane {
            open: Vec::new(),
            unsaved: HashMap::new(),
            stored_upto: HashMap::new(),
            corrupt_rows: 0,
            stamp: 0,
        }
    }
}

impl<T: Slot> Lane<T> {
    fn ensure(&mut self, series: u32, archives: usize) {
        let i = series as usize;
        if self.open.len() <= i {
            self.open.resize_with(i + 1, Vec::new);
        }
        if self.open[i].len() < archives {
            self.open[i].resize_with(archives, || None);
        }
    }

    /// Whether row `key` is its series' open row.
    pub fn is_open(&self, key: RowKey) -> bool {
        self.open
            .get(key.series as usize)
            .and_then(|a| a.get(key.archive as usize))
            .and_then(|r| r.as_ref())
            .is_some_and(|r| r.start == key.start)
    }

    /// Whether taking up row `key` would read the engine: it is neither
    /// open nor unsaved, and may be stored.
    pub fn must_read(&self, key: RowKey) -> bool {
        !self.is_open(key)
            && !self.unsaved.contains_key(&key)
            && self
                .stored_upto
                .get(&(key.schema, key.archive))
                .is_some_and(|&s| key.start <= s)
    }

    /// Reads a row that is not open: unsaved, then the engine. Corrupt rows
    /// are counted and treated as empty, so one damaged row costs its own
    /// points, never the write.
    ///
    /// Also says whether there was such a row (unsaved or stored): only
    /// then can rows derived from it exist.
    fn load(&mut self, kv: &dyn Kv, key: RowKey, slots: usize) -> Result<(Vec<T>, bool), KvError> {
        if let Some(u) = self.unsaved.remove(&key) {
            return Ok((u.slots, true));
        }
        let may_exist = self
            .stored_upto
            .get(&(key.schema, key.archive))
            .is_some_and(|&s| key.start <= s);
        if !may_exist {
            return Ok((vec![T::absent(); slots], false));
        }
        match kv.get(T::SPACE, &key.encode())? {
            None => Ok((vec![T::absent(); slots], false)),
            Some(bytes) => match T::decode_row(&bytes, slots, key, kv) {
                Ok(v) => Ok((v, true)),
                Err(e) => {
                    self.corrupt_rows += 1;
                    tracing::error!(?key, error = %e, "corrupt row replaced by an empty one");
                    Ok((vec![T::absent(); slots], true))
                }
            },
        }
    }

    /// Sets one slot; `slots` is the archive's slots per row. Returns true
    /// when the row was not open and already existed (a late point, or a
    /// row taken up again from the engine or the unsaved set): the caller
    /// then pins the rows derived from it (`derive`). A row starting afresh
    /// returns false, so the common row rollover costs no pinning.
    #[allow(clippy::too_many_arguments)]
    pub fn set(
        &mut self,
        kv: &dyn Kv,
        series: u32,
        schema: u16,
        archive: usize,
        archives: usize,
        start: u32,
        slot: usize,
        slots: usize,
        v: T,
    ) -> Result<bool, KvError> {
        self.ensure(series, archives);
        let key = RowKey {
            schema,
            archive: archive as u8,
            start,
            series,
        };
        let stamp = self.stamp;
        let cur = self.open[series as usize][archive]
            .as_ref()
            .map(|r| r.start);
        match cur {
            Some(s) if s == start => {
                if let Some(r) = self.open[series as usize][archive].as_mut() {
                    r.set(slot, v, stamp);
                }
                Ok(false)
            }
            Some(s) if s > start => {
                // A late point for an older row: change it where it lives.
                let (mut row, existed) = self.load(kv, key, slots)?;
                row[slot] = v;
                self.unsaved.insert(key, Unsaved { slots: row, stamp });
                Ok(existed)
            }
            _ => {
                let (row_slots, existed) = self.load(kv, key, slots)?;
                let mut fresh = OpenRow {
                    start,
                    slots: row_slots,
                    dirty: true,
                    stamp,
                };
                fresh.set(slot, v, stamp);
                if let Some(old) = self.open[series as usize][archive].replace(fresh) {
                    self.seal(key, old, slots);
                }
                Ok(existed)
            }
        }
    }

    /// Makes sure the next checkpoint rewrites row `key` if it is stored: a
    /// row it is derived from is about to change. An open row is left alone
    /// (it is rewritten when dirty, and stored plain when clean); an unsaved
    /// one is stamped with the current batch so a checkpoint in flight does
    /// not forget it; a stored one is read (against its sources as stored)
    /// into the unsaved set.
    pub fn pin(&mut self, kv: &dyn Kv, key: RowKey, slots: usize) -> Result<(), KvError> {
        if self.is_open(key) {
            return Ok(());
        }
        let stamp = self.stamp;
        if let Some(u) = self.unsaved.get_mut(&key) {
            u.stamp = stamp;
            return Ok(());
        }
        let (row, _) = self.load(kv, key, slots)?;
        if row.iter().any(T::present) {
            self.unsaved.insert(key, Unsaved { slots: row, stamp });
        }
        Ok(())
    }

    /// Forgets open rows not changed since batch `before` (they are stored):
    /// after the final compaction, whose derived rows may lean on open rows,
    /// a later change to one must take it up again through `set`'s pinning
    /// path.
    pub fn close_clean(&mut self, before: u64) {
        for rows in &mut self.open {
            for r in rows.iter_mut() {
                if r.as_ref().is_some_and(|r| !r.dirty && r.stamp < before) {
                    *r = None;
                }
            }
        }
    }

    fn seal(&mut self, at: RowKey, mut old: OpenRow<T>, slots: usize) {
        let key = RowKey {
            start: old.start,
            ..at
        };
        // Even a clean row goes out once more: checkpoints wrote it in its
        // cheap open form, and sealing is when it is compressed.
        old.slots.resize(slots, T::absent());
        self.unsaved.insert(
            key,
            Unsaved {
                slots: old.slots,
                stamp: old.stamp,
            },
        );
    }

    /// The slots `[from, from + n)` of the row that holds them, if it is in
    /// memory (open or unsaved), padded with absent slots to `n`.
    pub fn window(
        &self,
        series: u32,
        schema: u16,
        archive: usize,
        start: u32,
        from: usize,
        n: usize,
    ) -> Option<Vec<T>> {
        self.with_window(series, schema, archive, start, from, n, |slots| {
            let mut v = Vec::with_capacity(n);
            v.extend_from_slice(slots);
            v.resize(n, T::absent());
            v
        })
    }

    /// Calls `f` with the in-memory slots `[from, from + n)` of the row that
    /// holds them, borrowed: the slice may be shorter than `n` (an open row
    /// grows as it is written; missing slots are absent). `None` when the
    /// row is not in memory. The write path's propagation reads through
    /// this, so rolling up allocates and clones nothing.
    #[allow(clippy::too_many_arguments)]
    pub fn with_window<R>(
        &self,
        series: u32,
        schema: u16,
        archive: usize,
        start: u32,
        from: usize,
        n: usize,
        f: impl FnOnce(&[T]) -> R,
    ) -> Option<R> {
        let cut = |slots: &[T]| -> std::ops::Range<usize> {
            from.min(slots.len())..(from + n).min(slots.len())
        };
        if let Some(Some(r)) = self.open.get(series as usize).and_then(|a| a.get(archive)) {
            if r.start == start {
                return Some(f(&r.slots[cut(&r.slots)]));
            }
        }
        let key = RowKey {
            schema,
            archive: archive as u8,
            start,
            series,
        };
        self.unsaved.get(&key).map(|u| f(&u.slots[cut(&u.slots)]))
    }

    /// Moves open rows that end at or before `cutoff(schema, archive)` to
    /// the unsaved set, freeing their series' open slot.
    pub fn seal_older(
        &mut self,
        shapes: &[Shape],
        schema_of: &dyn Fn(u32) -> Option<u16>,
        cutoff: &dyn Fn(u16, usize) -> u64,
    ) -> usize {
        let mut moved: Vec<(RowKey, OpenRow<T>, usize)> = Vec::new();
        for (sid, rows) in self.open.iter_mut().enumerate() {
            let Some(schema) = schema_of(sid as u32) else {
                continue;
            };
            let shape = &shapes[schema as usize];
            for (a, slot) in rows.iter_mut().enumerate() {
                let ends = slot
                    .as_ref()
                    .map(|r| r.start as u64 + shape.spans[a] as u64);
                if ends.is_some_and(|e| e <= cutoff(schema, a)) {
                    if let Some(r) = slot.take() {
                        let key = RowKey {
                            schema,
                            archive: a as u8,
                            start: r.start,
                            series: sid as u32,
                        };
                        moved.push((key, r, shape.slots[a] as usize));
                    }
                }
            }
        }
        let sealed = moved.len();
        for (key, r, n) in moved {
            self.seal(key, r, n);
        }
        sealed
    }

    /// Copies of every row a checkpoint must write: unsaved rows and dirty
    /// open rows (full length), or every open row with `all_open` (the
    /// final checkpoint rewrites clean open rows too: they are stored in
    /// their cheap open form). Nothing changes until [`Lane::commit`] says
    /// they were written.
    pub fn snapshot(
        &self,
        shapes: &[Shape],
        schema_of: &dyn Fn(u32) -> Option<u16>,
        all_open: bool,
    ) -> Vec<(RowKey, Vec<T>, bool)> {
        let mut out = Vec::new();
        for (key, u) in &self.unsaved {
            out.push((*key, u.slots.clone(), false));
        }
        for (sid, rows) in self.open.iter().enumerate() {
            let Some(schema) = schema_of(sid as u32) else {
                continue;
            };
            for (a, r) in rows.iter().enumerate() {
                if let Some(r) = r.as_ref().filter(|r| r.dirty || all_open) {
                    let mut full = r.slots.clone();
                    full.resize(shapes[schema as usize].slots[a] as usize, T::absent());
                    let key = RowKey {
                        schema,
                        archive: a as u8,
                        start: r.start,
                        series: sid as u32,
                    };
                    out.push((key, full, true));
                }
            }
        }
        out
    }

    /// Encodes snapshot rows; rows without points become deletes (None).
    /// Open rows are written cheaply unless `compress_open` (a final
    /// checkpoint) asks for their compressed form.
    pub fn encode(
        rows: &[(RowKey, Vec<T>, bool)],
        compress_open: bool,
    ) -> Vec<(RowKey, Option<Vec<u8>>)> {
        rows.iter()
            .map(|(k, slots, open)| {
                let bytes = slots.iter().any(T::present).then(|| {
                    if *open && !compress_open {
                        T::encode_open_row(slots)
                    } else {
                        T::encode_row(slots)
                    }
                });
                (*k, bytes)
            })
            .collect()
    }

    /// The rows of a snapshot taken before batch `before` are stored: forget
    /// unsaved ones and mark open ones clean, unless a later batch changed
    /// them meanwhile.
    pub fn commit(&mut self, written: &[(RowKey, Option<Vec<u8>>)], before: u64) {
        for (key, _) in written {
            if self.unsaved.get(key).is_some_and(|u| u.stamp < before) {
                self.unsaved.remove(key);
            }
            if let Some(r) = self
                .open
                .get_mut(key.series as usize)
                .and_then(|a| a.get_mut(key.archive as usize))
                .and_then(|r| r.as_mut())
                .filter(|r| r.start == key.start && r.stamp < before)
            {
                r.dirty = false;
            }
            let e = self
                .stored_upto
                .entry((key.schema, key.archive))
                .or_insert(0);
            *e = (*e).max(key.start);
        }
    }

    /// Raises the known-stored mark (the other lane's rows share it).
    pub fn mark_stored(&mut self, schema: u16, archive: u8, start: u32) {
        let e = self.stored_upto.entry((schema, archive)).or_insert(0);
        *e = (*e).max(start);
    }

    /// Drops rows of an archive that end at or before `cutoff` from memory
    /// (retention).
    pub fn expire(&mut self, schema: u16, archive: usize, span: u32, cutoff: u32) {
        self.unsaved.retain(|k, _| {
            !(k.schema == schema
                && k.archive as usize == archive
                && k.start as u64 + span as u64 <= cutoff as u64)
        });
    }

    /// Points held in memory (for telemetry).
    pub fn open_rows(&self) -> usize {
        self.open
            .iter()
            .map(|a| a.iter().filter(|r| r.is_some()).count())
            .sum()
    }
}
