//! Rows in memory, and how a row is put together from the engine.
//!
//! A row that is not yet sealed (its span has not ended a grace period
//! ago) lives in the engine as *fragments*: each checkpoint writes the
//! slots it found changed, under the row's key and a fresh fragment
//! sequence, and a later fragment wins per slot. In memory such a row is
//! only its [`Head`]: the slots changed since the last checkpoint. That is
//! what keeps a live series to a few hundred bytes whatever its row spans
//! (the whole-row open rows this replaced cost ~20 KB a series: 720 f64
//! slots per archive, plus a copy at each checkpoint).
//!
//! A sealed row is one record under its key. A late point for it (or a
//! change rolled up into it) takes the whole row into memory as
//! *unsaved*, and the next checkpoint writes it back whole.
//!
//! A [`Lane`] is generic over what a slot holds, so values and timer
//! histograms share one set of rules.

use super::derive;
use super::hist::{self, Hist};
use super::kv::{Kv, KvError, Space};
use super::row::{self, RowError, RowKey, KEY_LEN};

/// Row keys are hashed on every point written; foldhash is several times
/// faster than SipHash, and keys are ids the store gave out.
pub type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// What a row slot holds.
pub trait Slot: Clone + Send + Sync + 'static {
    /// Where sealed rows live.
    const SPACE: Space;
    /// Where fragments of unsealed rows live.
    const HEADS: Space;
    fn absent() -> Self;
    fn present(&self) -> bool;
    fn encode_row(slots: &[Self]) -> Vec<u8>;
    /// Decodes a stored row; `key` and `kv` are for rows derived from other
    /// rows under the same key (`derive`).
    fn decode_row(
        bytes: &[u8],
        slots: usize,
        key: RowKey,
        kv: &dyn Kv,
    ) -> Result<Vec<Self>, RowError>;
    /// Heap bytes held beyond the slot itself (memory accounting).
    fn heap_bytes(&self) -> usize {
        0
    }
}

impl Slot for f64 {
    const SPACE: Space = Space::Rows;
    const HEADS: Space = Space::Heads;
    fn absent() -> f64 {
        f64::NAN
    }
    fn present(&self) -> bool {
        !self.is_nan()
    }
    fn encode_row(slots: &[f64]) -> Vec<u8> {
        row::encode(slots)
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
    const HEADS: Space = Space::HistHeads;
    fn absent() -> Self {
        None
    }
    fn present(&self) -> bool {
        self.is_some()
    }
    fn encode_row(slots: &[Self]) -> Vec<u8> {
        hist::encode_row(slots)
    }
    fn decode_row(
        bytes: &[u8],
        slots: usize,
        _key: RowKey,
        _kv: &dyn Kv,
    ) -> Result<Vec<Self>, RowError> {
        hist::decode_row(bytes, slots)
    }
    fn heap_bytes(&self) -> usize {
        self.as_ref().map_or(0, Hist::heap_bytes)
    }
}

/// The slots of an unsealed row changed since the last checkpoint: slots
/// `[base, base + slots.len())` of the row, absent where unchanged.
#[derive(Clone)]
pub struct Head<T> {
    pub base: u32,
    pub slots: Vec<T>,
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "a slot is below its row's slot count (span / step, a u32): every slot comes from rollup::locate, or is one a head already holds"
)]
impl<T: Slot> Head<T> {
    fn new(slot: usize, v: T) -> Self {
        Head {
            base: slot as u32,
            slots: vec![v],
        }
    }

    /// A head with no slot set yet, the first to be `slot`.
    pub fn starting_at(slot: usize) -> Self {
        Head {
            base: slot as u32,
            slots: Vec::new(),
        }
    }

    pub fn set(&mut self, slot: usize, v: T) {
        let base = self.base as usize;
        if slot < base {
            // An earlier slot than any changed since the checkpoint: rare
            // (a point re-sent for a past step), so shifting is fine.
            let mut grown = vec![T::absent(); base - slot];
            grown.append(&mut self.slots);
            self.slots = grown;
            self.base = slot as u32;
        }
        let i = slot - self.base as usize;
        if self.slots.len() <= i {
            self.slots.resize(i + 1, T::absent());
        }
        self.slots[i] = v;
    }

    pub fn get(&self, slot: usize) -> Option<&T> {
        slot.checked_sub(self.base as usize)
            .and_then(|i| self.slots.get(i))
            .filter(|v| v.present())
    }

    /// Writes the head's present slots over `row`.
    pub fn overlay(&self, row: &mut [T]) {
        for (i, v) in self.slots.iter().enumerate() {
            if v.present() {
                if let Some(o) = row.get_mut(self.base as usize + i) {
                    *o = v.clone();
                }
            }
        }
    }

    /// Laid out as a row from slot 0 (absent before `base`), for encoding
    /// as a fragment; trailing slots cost nothing in the encoding.
    pub fn as_row(&self) -> Vec<T> {
        let mut out = vec![T::absent(); self.base as usize];
        out.extend(self.slots.iter().cloned());
        out
    }

    fn bytes(&self) -> usize {
        HEAD_BYTES
            + self.slots.capacity() * std::mem::size_of::<T>()
            + self.slots.iter().map(T::heap_bytes).sum::<usize>()
    }
}

/// Every head of a lane. A live series has one head, in its finest
/// archive's current row: those sit in a vector by series id (40 bytes a
/// series; a hash map of them cost ~100 at 1 M series, its buckets a power
/// of two), and any other head (a series' previous row in its grace
/// period, a coarser row changed by a late point) in a map.
pub struct Heads<T> {
    dense: Vec<Option<Dense<T>>>,
    other: HashMap<RowKey, Head<T>>,
    /// The map's keys still to take in the running checkpoint.
    other_queue: Option<Vec<RowKey>>,
    len: usize,
    /// Bytes held, approximately, kept as heads change (`max_memory`).
    bytes: usize,
}

/// A finest-archive head in [`Heads`]'s vector; its key is the series'
/// (the index), the schema and the row start kept here.
#[derive(Clone)]
struct Dense<T> {
    schema: u16,
    start: u32,
    head: Head<T>,
}

impl<T> Default for Heads<T> {
    fn default() -> Self {
        Heads {
            dense: Vec::new(),
            other: HashMap::default(),
            other_queue: None,
            len: 0,
            bytes: 0,
        }
    }
}

impl<T: Clone> Clone for Heads<T> {
    fn clone(&self) -> Self {
        Heads {
            dense: self.dense.clone(),
            other: self.other.clone(),
            other_queue: None,
            len: self.len,
            bytes: self.bytes,
        }
    }
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "the vector is indexed by series id (a u32): it grows only to a key's series + 1"
)]
impl<T: Slot> Heads<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held, approximately.
    pub fn bytes(&self) -> usize {
        self.bytes + self.dense.capacity() * std::mem::size_of::<Option<Dense<T>>>()
    }

    pub fn get(&self, key: &RowKey) -> Option<&Head<T>> {
        if key.archive == 0 {
            if let Some(Some(d)) = self.dense.get(key.series as usize) {
                if d.start == key.start && d.schema == key.schema {
                    return Some(&d.head);
                }
            }
        }
        self.other.get(key)
    }

    pub fn set(&mut self, key: RowKey, slot: usize, v: T) {
        // The slot itself is in the vector's capacity, counted as it
        // grows: counted again here, 8 bytes a point were never taken
        // back when the head went ([`Head::bytes`] counts capacity), so
        // the sum crept up by every point written and checkpoints came
        // ever more often (at 500,000 series, every 1-2 minutes on
        // rows_budget after 30 minutes, instead of every 5).
        let add = v.heap_bytes();
        if key.archive == 0 {
            let i = key.series as usize;
            if self.dense.len() <= i {
                self.dense.resize_with(i + 1, || None);
            }
            match &mut self.dense[i] {
                Some(d) if d.start == key.start && d.schema == key.schema => {
                    let before = d.head.slots.capacity();
                    d.head.set(slot, v);
                    let after = d.head.slots.capacity();
                    self.regrown(add, before, after);
                    return;
                }
                Some(d) if d.start > key.start || d.schema != key.schema => {}
                entry => {
                    // The newest row takes the vector's place; an older
                    // one still changing (its grace period) moves aside.
                    let fresh = Dense {
                        schema: key.schema,
                        start: key.start,
                        head: Head::new(slot, v),
                    };
                    self.len += 1;
                    self.bytes += HEAD_BYTES + std::mem::size_of::<T>() + add;
                    if let Some(old) = entry.replace(fresh) {
                        self.bytes += OTHER_ENTRY_BYTES;
                        let k = RowKey {
                            schema: old.schema,
                            archive: 0,
                            start: old.start,
                            series: key.series,
                        };
                        self.other.insert(k, old.head);
                    }
                    return;
                }
            }
        }
        match self.other.get_mut(&key) {
            Some(h) => {
                let before = h.slots.capacity();
                h.set(slot, v);
                let after = h.slots.capacity();
                self.regrown(add, before, after);
            }
            None => {
                self.other.insert(key, Head::new(slot, v));
                self.len += 1;
                self.bytes += HEAD_BYTES + OTHER_ENTRY_BYTES + std::mem::size_of::<T>() + add;
            }
        }
    }

    /// Accounts for a slot set in a head whose vector went from `before`
    /// to `after` slots of capacity (it may shrink when it grows at the
    /// front).
    fn regrown(&mut self, add: usize, before: usize, after: usize) {
        let size = std::mem::size_of::<T>();
        self.bytes = (self.bytes + add + after * size).saturating_sub(before * size);
    }

    pub fn remove(&mut self, key: &RowKey) -> Option<Head<T>> {
        let mut took = None;
        if key.archive == 0 {
            if let Some(slot) = self.dense.get_mut(key.series as usize) {
                if slot
                    .as_ref()
                    .is_some_and(|d| d.start == key.start && d.schema == key.schema)
                {
                    took = slot.take().map(|d| d.head);
                }
            }
        }
        let mut entry = 0;
        if took.is_none() {
            took = self.other.remove(key);
            entry = OTHER_ENTRY_BYTES;
        }
        if let Some(h) = &took {
            self.len -= 1;
            self.bytes = self.bytes.saturating_sub(h.bytes() + entry);
        }
        took
    }

    /// Moves up to `n` heads out, from series `*cursor` on in the vector,
    /// then every head of the map in one go; advances the cursor (start it
    /// at 0), and returns an empty list once both were taken.
    pub fn take_chunk(&mut self, cursor: &mut usize, n: usize) -> Vec<(RowKey, Head<T>)> {
        if *cursor == 0 {
            self.other_queue = None;
        }
        let mut out = Vec::new();
        while *cursor < self.dense.len() && out.len() < n {
            let i = *cursor;
            *cursor += 1;
            if let Some(d) = self.dense[i].take() {
                let key = RowKey {
                    schema: d.schema,
                    archive: 0,
                    start: d.start,
                    series: i as u32,
                };
                self.len -= 1;
                self.bytes = self.bytes.saturating_sub(d.head.bytes());
                out.push((key, d.head));
            }
        }
        if out.is_empty() && *cursor != usize::MAX {
            // The vector is done: then the map's heads as they were when
            // it was, `n` at a time (at a row boundary every live series
            // has one there, its ending row's: taken whole, 1M of them made
            // one batch of over 2 GB). Heads that arrive after are the next
            // checkpoint's.
            // In key order (popped from the end), as the vector's were:
            // the checkpoint's fragments then make level-0 files of
            // disjoint ranges, which the settle following it compacts one
            // after another (`checkpoint::SettleProgress`).
            let queue = self.other_queue.get_or_insert_with(|| {
                let mut keys: Vec<RowKey> = self.other.keys().copied().collect();
                keys.sort_unstable_by(|a, b| b.cmp(a));
                keys
            });
            while out.len() < n {
                let Some(k) = queue.pop() else {
                    break;
                };
                if let Some(h) = self.other.remove(&k) {
                    self.len -= 1;
                    self.bytes = self.bytes.saturating_sub(h.bytes() + OTHER_ENTRY_BYTES);
                    out.push((k, h));
                }
            }
            if queue.is_empty() {
                self.other_queue = None;
                *cursor = usize::MAX;
            }
        }
        out
    }

    /// Every head with its row's key.
    pub fn iter(&self) -> impl Iterator<Item = (RowKey, &Head<T>)> {
        let dense = self.dense.iter().enumerate().filter_map(|(i, d)| {
            d.as_ref().map(|d| {
                (
                    RowKey {
                        schema: d.schema,
                        archive: 0,
                        start: d.start,
                        series: i as u32,
                    },
                    &d.head,
                )
            })
        });
        dense.chain(self.other.iter().map(|(k, h)| (*k, h)))
    }
}

/// What a head costs besides its slots: its place and its vector's header
/// and allocation.
const HEAD_BYTES: usize = 40 + 16;

/// What a head in [`Heads`]' map costs beyond [`HEAD_BYTES`]: its key and
/// the map's slot for it.
const OTHER_ENTRY_BYTES: usize = 64;

/// A sealed row taken into memory whole by a late change, until a
/// checkpoint writes it.
pub struct Unsaved<T> {
    pub slots: Vec<T>,
    /// The log sequence of the last batch that changed it.
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

/// The fragments' key range of one row: its key, then an 8-byte sequence.
pub fn fragment_range(key: RowKey) -> (Vec<u8>, Vec<u8>) {
    let k = key.encode();
    let mut from = k.to_vec();
    from.extend_from_slice(&[0; 8]);
    let mut to = k.to_vec();
    to.extend_from_slice(&[0xff; 8]);
    to.push(0xff);
    (from, to)
}

/// A fragment's key.
pub fn fragment_key(key: RowKey, seq: u64) -> Vec<u8> {
    let mut k = key.encode().to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The row key a fragment key belongs to.
pub fn fragment_row(k: &[u8]) -> Option<RowKey> {
    if k.len() != KEY_LEN + 8 {
        return None;
    }
    RowKey::decode(&k[..KEY_LEN])
}

/// Decodes a fragment (a plain row: fragments are never derived).
pub(super) fn decode_fragment<T: Slot>(bytes: &[u8], slots: usize) -> Result<Vec<T>, RowError> {
    struct NoSources;
    impl Kv for NoSources {
        fn get(&self, _: Space, _: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
            Ok(None)
        }
        fn write(&self, _: super::kv::Batch) -> Result<(), KvError> {
            Err(KvError::io("fragments are read-only here"))
        }
        fn scan(
            &self,
            _: Space,
            _: &[u8],
            _: &[u8],
            _: &mut dyn FnMut(&[u8], &[u8]) -> bool,
        ) -> Result<(), KvError> {
            Ok(())
        }
        fn disk_bytes(&self) -> u64 {
            0
        }
        fn compact(&self, _: Space, _: &[u8], _: &[u8]) {}
    }
    let key = RowKey {
        schema: 0,
        archive: 0,
        start: 0,
        series: 0,
    };
    T::decode_row(bytes, slots, key, &NoSources)
}

/// A row as the engine holds it: its fragments, newest last, over its
/// sealed record. Fragments are scanned before the record is read: the seal
/// writes the record before it deletes the fragments, so a read that races
/// it sees one or the other (they hold the same points), never neither.
/// Returns the row and whether anything was stored; a damaged record or
/// fragment is counted in `corrupt` and read as empty.
pub fn stored_row<T: Slot>(
    kv: &dyn Kv,
    key: RowKey,
    slots: usize,
    corrupt: &mut u64,
) -> Result<(Vec<T>, bool), KvError> {
    let (from, to) = fragment_range(key);
    let mut frags: Vec<Vec<u8>> = Vec::new();
    kv.scan(T::HEADS, &from, &to, &mut |_, v| {
        frags.push(v.to_vec());
        true
    })?;
    let mut existed = !frags.is_empty();
    let mut row = match kv.get(T::SPACE, &key.encode())? {
        None => vec![T::absent(); slots],
        Some(bytes) => {
            existed = true;
            match T::decode_row(&bytes, slots, key, kv) {
                Ok(v) => v,
                Err(e) => {
                    *corrupt += 1;
                    tracing::error!(?key, error = %e, "corrupt row read as empty");
                    vec![T::absent(); slots]
                }
            }
        }
    };
    for f in frags {
        match decode_fragment::<T>(&f, slots) {
            Ok(v) => {
                for (o, v) in row.iter_mut().zip(v) {
                    if v.present() {
                        *o = v;
                    }
                }
            }
            Err(e) => {
                *corrupt += 1;
                tracing::error!(?key, error = %e, "corrupt row fragment skipped");
            }
        }
    }
    Ok((row, existed))
}

pub struct Lane<T> {
    /// Unsealed rows' slots changed since the last checkpoint.
    pub heads: Heads<T>,
    /// Heads a running checkpoint took, readable until it has written them
    /// (one chunk at a time).
    pub inflight: HashMap<RowKey, Head<T>>,
    inflight_bytes: usize,
    /// Sealed rows changed since the last checkpoint, whole.
    pub unsaved: HashMap<RowKey, Unsaved<T>>,
    pub corrupt_rows: u64,
    /// The log sequence of the batch being applied; rows it changes carry
    /// it, so a checkpoint knows which rows changed after its snapshot.
    pub stamp: u64,
    /// While a seal runs: the sealed rows taken whole into memory since it
    /// started (and those unsaved when it did). A checkpoint writes them
    /// whole, with everything the seal read and more, so the seal leaves
    /// them alone rather than write over them with less.
    pub touched: Option<std::collections::HashSet<RowKey, foldhash::fast::RandomState>>,
}

impl<T> Default for Lane<T> {
    fn default() -> Self {
        Lane {
            heads: Heads::default(),
            inflight: HashMap::default(),
            inflight_bytes: 0,
            unsaved: HashMap::default(),
            corrupt_rows: 0,
            stamp: 0,
            touched: None,
        }
    }
}

impl<T: Slot> Lane<T> {
    /// Sets one slot of an unsealed row.
    pub fn set_head(&mut self, key: RowKey, slot: usize, v: T) {
        self.heads.set(key, slot, v);
    }

    /// Reads a sealed row into memory for a change: the unsaved copy if
    /// there is one, else the engine's, with any head or in-flight head
    /// over it (a row sealed since its last points). Says whether there
    /// was such a row: only then can rows derived from it exist.
    fn load(&mut self, kv: &dyn Kv, key: RowKey, slots: usize) -> Result<(Vec<T>, bool), KvError> {
        if let Some(t) = self.touched.as_mut() {
            t.insert(key);
        }
        if let Some(u) = self.unsaved.remove(&key) {
            return Ok((u.slots, true));
        }
        let (mut row, mut existed) = stored_row::<T>(kv, key, slots, &mut self.corrupt_rows)?;
        if let Some(h) = self.inflight.get(&key) {
            h.overlay(&mut row);
            existed = true;
        }
        if let Some(h) = self.heads.remove(&key) {
            h.overlay(&mut row);
            existed = true;
        }
        Ok((row, existed))
    }

    /// Sets one slot of a sealed row, taking it into memory whole. Returns
    /// true when the row already existed: the caller then pins the rows
    /// derived from it (`derive`).
    pub fn set_sealed(
        &mut self,
        kv: &dyn Kv,
        key: RowKey,
        slot: usize,
        slots: usize,
        v: T,
    ) -> Result<bool, KvError> {
        let stamp = self.stamp;
        if let Some(u) = self.unsaved.get_mut(&key) {
            u.slots[slot] = v;
            u.stamp = stamp;
            if let Some(t) = self.touched.as_mut() {
                t.insert(key);
            }
            return Ok(true);
        }
        let (mut row, existed) = self.load(kv, key, slots)?;
        row[slot] = v;
        self.unsaved.insert(key, Unsaved { slots: row, stamp });
        Ok(existed)
    }

    /// Makes sure the next checkpoint rewrites sealed row `key` if it is
    /// stored: a row it is derived from is about to change. An unsaved row
    /// is stamped with the current batch so a checkpoint in flight does not
    /// forget it; a stored one is read (against its sources as stored) into
    /// the unsaved set.
    pub fn pin(&mut self, kv: &dyn Kv, key: RowKey, slots: usize) -> Result<(), KvError> {
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

    /// The slot's value if memory holds one (unsaved row, head, or head in
    /// flight), for rolling up a late change.
    pub fn peek(&self, key: RowKey, slot: usize) -> Option<T> {
        if let Some(u) = self.unsaved.get(&key) {
            return u.slots.get(slot).filter(|v| v.present()).cloned();
        }
        if let Some(v) = self.heads.get(&key).and_then(|h| h.get(slot)) {
            return Some(v.clone());
        }
        self.inflight.get(&key).and_then(|h| h.get(slot)).cloned()
    }

    /// The slots `[from, from + n)` of an unsaved row, borrowed.
    pub fn unsaved_window<R>(
        &self,
        key: RowKey,
        from: usize,
        n: usize,
        f: impl FnOnce(&[T]) -> R,
    ) -> Option<R> {
        self.unsaved.get(&key).map(|u| {
            let s = &u.slots;
            f(&s[from.min(s.len())..(from + n).min(s.len())])
        })
    }

    /// What memory holds of row `key`, to lay over what the engine holds:
    /// the whole row if unsaved, else its in-flight and current heads.
    pub fn overlay_of(&self, key: RowKey) -> Overlay<T> {
        if let Some(u) = self.unsaved.get(&key) {
            return Overlay::Whole(u.slots.clone());
        }
        let mut heads = Vec::new();
        if let Some(h) = self.inflight.get(&key) {
            heads.push(h.clone());
        }
        if let Some(h) = self.heads.get(&key) {
            heads.push(h.clone());
        }
        Overlay::Heads(heads)
    }

    /// Takes up to `n` heads for a checkpoint (see [`Heads::take_chunk`]):
    /// they stay readable in flight until [`Lane::chunk_done`], and the
    /// caller encodes the copies returned. A checkpoint in chunks holds one
    /// chunk twice, never every head (at 1M series, taking them all at once
    /// held them, their encoding, the batch and RocksDB's copy of it
    /// together: over 1 GB).
    pub fn take_chunk(&mut self, cursor: &mut usize, n: usize) -> Vec<(RowKey, Head<T>)> {
        let chunk = self.heads.take_chunk(cursor, n);
        self.inflight_bytes = chunk.iter().map(|(_, h)| h.bytes()).sum();
        self.inflight = chunk.iter().cloned().collect();
        chunk
    }

    /// The chunk in flight was written (or not, and it goes back under
    /// whatever changed since).
    pub fn chunk_done(&mut self, written: bool) {
        let taken = std::mem::take(&mut self.inflight);
        self.inflight_bytes = 0;
        if written {
            return;
        }
        for (k, older) in taken {
            let newer = self.heads.remove(&k);
            for (i, v) in older.slots.into_iter().enumerate() {
                if v.present() {
                    self.heads.set(k, older.base as usize + i, v);
                }
            }
            if let Some(newer) = newer {
                for (i, v) in newer.slots.into_iter().enumerate() {
                    if v.present() {
                        self.heads.set(k, newer.base as usize + i, v);
                    }
                }
            }
        }
    }

    /// Copies of the unsaved rows, for a checkpoint. Nothing changes until
    /// [`Lane::commit`] says they were written.
    pub fn snapshot(&self) -> Vec<(RowKey, Vec<T>, bool)> {
        self.unsaved
            .iter()
            .map(|(k, u)| (*k, u.slots.clone(), false))
            .collect()
    }

    /// The unsaved rows of a snapshot taken before batch `before` are
    /// stored: forget them, unless a later batch changed them meanwhile.
    pub fn commit(&mut self, written: &[(RowKey, Option<Vec<u8>>)], before: u64) {
        for (key, _) in written {
            if self.unsaved.get(key).is_some_and(|u| u.stamp < before) {
                self.unsaved.remove(key);
            }
        }
    }

    /// Drops unsaved rows of an archive that end at or before `cutoff`
    /// (retention), unless changed since batch `quiet_before`: a backfill
    /// may still be filling such a row, and its later points roll up from
    /// the ones already in it.
    pub fn expire(
        &mut self,
        schema: u16,
        archive: usize,
        span: u32,
        cutoff: u32,
        quiet_before: u64,
    ) {
        self.unsaved.retain(|k, u| {
            !(k.schema == schema
                && k.archive as usize == archive
                && u64::from(k.start) + u64::from(span) <= u64::from(cutoff)
                && u.stamp < quiet_before)
        });
    }

    /// Starts recording the sealed rows taken whole (see `touched`).
    pub fn start_touched(&mut self) {
        self.touched = Some(self.unsaved.keys().copied().collect());
    }

    /// Whether row `key` was taken whole since the seal started.
    pub fn was_touched(&self, key: &RowKey) -> bool {
        self.touched.as_ref().is_some_and(|t| t.contains(key))
    }

    /// Rows held in memory (for telemetry).
    pub fn rows_in_memory(&self) -> usize {
        self.heads.len() + self.unsaved.len()
    }

    /// Bytes the lane's rows hold, approximately (for `max_memory`).
    pub fn bytes(&self) -> usize {
        let heads = self.heads.bytes();
        let inflight = self.inflight_bytes;
        let unsaved: usize = self
            .unsaved
            .values()
            .map(|u| {
                64 + u.slots.capacity() * std::mem::size_of::<T>()
                    + u.slots.iter().map(T::heap_bytes).sum::<usize>()
            })
            .sum();
        heads + inflight + unsaved
    }
}

/// What memory holds of one row (see [`Lane::overlay_of`]).
pub enum Overlay<T> {
    Whole(Vec<T>),
    Heads(Vec<Head<T>>),
}

impl<T: Slot> Overlay<T> {
    pub fn apply(self, row: &mut Vec<T>) {
        match self {
            Overlay::Whole(w) => *row = w,
            Overlay::Heads(hs) => {
                for h in hs {
                    h.overlay(row);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes counted for heads go back to nothing once every head is
    /// taken, however many points they held and wherever they sat: a
    /// count that kept 8 bytes a point made checkpoints ever more frequent
    /// (`rows_budget`).
    #[test]
    fn head_bytes_return_to_zero_when_heads_are_taken() {
        let key = |series: u32, archive: u8, start: u32| RowKey {
            schema: 0,
            archive,
            start,
            series,
        };
        let mut heads: Heads<f64> = Heads::default();
        let floor = heads.bytes();
        for round in 0..3 {
            for s in 0..50 {
                for slot in 0..40 {
                    heads.set(key(s, 0, 7200), slot, slot as f64);
                }
                // An earlier slot grows the head at the front.
                heads.set(key(s, 0, 7200), 0, 1.0);
                // The next row: the first moves to the map.
                heads.set(key(s, 0, 14400), 3, 2.0);
                // A coarser row, in the map from the start.
                heads.set(key(s, 1, 0), 5, 3.0);
                heads.set(key(s, 1, 0), 9, 3.0);
            }
            let held =
                heads.bytes() - heads.dense.capacity() * std::mem::size_of::<Option<Dense<f64>>>();
            assert!(held > 50 * 40 * 8, "round {round}: {held}");
            if round == 1 {
                // One by one.
                for s in 0..50 {
                    heads.remove(&key(s, 0, 7200)).unwrap();
                    heads.remove(&key(s, 0, 14400)).unwrap();
                    heads.remove(&key(s, 1, 0)).unwrap();
                }
            } else {
                let mut cursor = 0;
                while !heads.take_chunk(&mut cursor, 7).is_empty() {}
            }
            assert!(heads.is_empty());
            assert_eq!(
                heads.bytes() - heads.dense.capacity() * std::mem::size_of::<Option<Dense<f64>>>(),
                0,
                "round {round}"
            );
        }
        assert!(heads.bytes() >= floor);
    }

    #[test]
    fn a_checkpoint_takes_heads_in_chunks_the_ending_rows_too() {
        let key = |series: u32, start: u32| RowKey {
            schema: 0,
            archive: 0,
            start,
            series,
        };
        let mut heads: Heads<f64> = Heads::default();
        // Ten series in their ending row, then in the next: the ending rows
        // move to the map, as at every row boundary.
        for s in 0..10 {
            heads.set(key(s, 7200), 719, 1.0);
            heads.set(key(s, 14400), 0, 2.0);
        }
        assert_eq!(heads.len(), 20);
        let mut cursor = 0;
        let mut sizes = Vec::new();
        loop {
            let chunk = heads.take_chunk(&mut cursor, 3);
            if chunk.is_empty() {
                break;
            }
            sizes.push(chunk.len());
        }
        assert!(sizes.iter().all(|&n| n <= 3), "{sizes:?}");
        assert_eq!(sizes.iter().sum::<usize>(), 20);
        assert!(heads.is_empty());
        // A head that arrives once the map's keys were listed waits for
        // the next checkpoint, so a checkpoint always ends.
        heads.set(key(1, 7200), 5, 3.0);
        let mut cursor = usize::MAX;
        assert!(heads.take_chunk(&mut cursor, 3).is_empty());
        let mut cursor = 0;
        assert_eq!(heads.take_chunk(&mut cursor, 3).len(), 1);
    }
}
