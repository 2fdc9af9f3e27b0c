//! The seal: once a row's span has ended (and a grace period for late
//! points has passed), its fragments are put together into one compressed
//! row (derived from its sources where that is smaller, `derive`), and the
//! coarser archive's points under it are rolled up and written as a
//! fragment of the coarser row. Until then, reads roll those points up
//! themselves (`read.rs`).
//!
//! Sealing goes archive by archive, for every series of a schema at once,
//! so the boundary between sealed and not is one time per (schema,
//! archive): `sealing` (changes to rows before it are taken whole, as to
//! any sealed row) is raised first, then the heads are checkpointed, so
//! every point of the rows to seal is in the engine; the rows are sealed
//! in chunks read from the engine; and `sealed` (the mark reads and
//! retention go by) moves last, with the fragments' deletion, in one batch.
//! A crash in between leaves the fragments in place, and the next seal
//! does the same work again (writing the same rows).
//!
//! A late point that reaches a row during its seal is taken whole from the
//! engine (fragments or sealed record: the same points) and written by a
//! checkpoint, not by the seal; its rollup, made at once, goes into a head
//! of the coarser row, which that checkpoint writes under a sequence after
//! the seal's. Such a row is rolled up once more at the end of the seal,
//! whole (`roll_touched`), since the checkpoint may drop its fragments
//! before the seal reads them. So the seal never loses a change made while
//! it runs.

use super::derive::SourceRows;
use super::open::{fragment_key, fragment_row, Head, Slot};
use super::*;

/// Seconds after a row's span ends before it is sealed: late points
/// within it still go to the head, at no cost.
pub(super) fn grace(shape: &Shape, a: usize) -> i64 {
    2 * i64::from(shape.steps[a]) + 120
}

/// Rows sealed per write batch. A decoded 720-slot row is 5.8 KB, so a
/// chunk holds about 12 MB however many series there are.
const CHUNK_ROWS: usize = 2048;

/// The fragment sequences a seal writes its coarser fragments under: one
/// per row span it seals. A seal of several spans (after the daemon was
/// down, or a backfill of older rows) rolls a series' rows up into the
/// same coarser row, and those rows come in different chunks: under one
/// sequence each chunk's fragment had the key of the one before and
/// replaced it (`a_seal_over_several_rows_of_many_series_keeps_every_rollup`
/// found the first two of three hours gone).
#[derive(Clone, Copy)]
struct SealFrags {
    first: u64,
    from: u32,
    span: u32,
    spans: u64,
}

impl SealFrags {
    fn take(inner: &mut Inner, shape: &Shape, a: usize, from: u32, to: u32) -> SealFrags {
        let span = shape.spans[a].max(1);
        let spans = u64::from(to.saturating_sub(from).div_ceil(span)).max(1);
        SealFrags {
            first: inner.reserve_frags(spans),
            from,
            span,
            spans,
        }
    }

    /// The sequence for the coarser fragment of a row starting at `start`.
    fn of(&self, start: u32) -> u64 {
        let i = u64::from(start.saturating_sub(self.from) / self.span);
        self.first + i.min(self.spans - 1)
    }

    fn last(&self) -> u64 {
        self.first + self.spans - 1
    }
}

/// The newest time before which archive `a`'s rows can be sealed: a
/// multiple of its span, a grace period before `now`, and (for a coarser
/// archive) with every finer row under its rows sealed already.
fn cutoff(shape: &Shape, a: usize, now: i64, finer_sealed: Option<u32>) -> u32 {
    let span = i64::from(shape.spans[a]);
    let t = (now - grace(shape, a)).max(0);
    let mut m = t - t.rem_euclid(span);
    if let Some(f) = finer_sealed {
        let fspan = i64::from(shape.spans[a - 1]);
        while m > 0 {
            // The end of the finer row holding the coarse rows' last second.
            let fend = ((m - 1).div_euclid(fspan) + 1) * fspan;
            if fend <= i64::from(f) {
                break;
            }
            m -= span;
        }
    }
    u32::try_from(m.max(0)).unwrap_or(u32::MAX)
}

impl Store {
    /// Whether some archive has rows to seal at `now`.
    pub(super) fn seal_due(&self, now: i64) -> bool {
        let schemas = self.schemas.read();
        let inner = self.inner.lock();
        // Schema ids are u16 (`Schemas::add` gives out no more).
        (0..=u16::MAX).zip(&schemas.shapes).any(|(schema, shape)| {
            (0..shape.steps.len()).any(|a| {
                let Some(&from) = inner.sealed.get(&(schema, archive_byte(a))) else {
                    return false;
                };
                let finer = (a > 0)
                    .then(|| inner.sealed.get(&(schema, archive_byte(a - 1))).copied())
                    .flatten();
                cutoff(shape, a, now, finer) > from
            })
        })
    }

    /// Seals every row whose span ended a grace period before `now`.
    /// Returns the rows sealed.
    pub(super) fn seal(&self, now: i64) -> Result<usize, StoreError> {
        let shapes: Vec<Shape> = self.schemas.read().shapes.clone();
        let mut sealed = 0;
        for (schema, shape) in (0..=u16::MAX).zip(&shapes) {
            for a in 0..shape.steps.len() {
                let (from, to) = {
                    let inner = self.inner.lock();
                    // A schema no batch used yet has nothing to seal.
                    let Some(&from) = inner.sealed.get(&(schema, archive_byte(a))) else {
                        break;
                    };
                    let finer = (a > 0)
                        .then(|| inner.sealed.get(&(schema, archive_byte(a - 1))).copied())
                        .flatten();
                    (from, cutoff(shape, a, now, finer))
                };
                if to <= from {
                    continue;
                }
                let frag = {
                    let _no_checkpoint = self.checkpointing.lock();
                    {
                        let mut inner = self.inner.lock();
                        let mark = inner.sealing.entry((schema, archive_byte(a))).or_insert(0);
                        *mark = (*mark).max(to);
                        inner.points.start_touched();
                        inner.hists.start_touched();
                    }
                    self.checkpoint_locked()?;
                    tracing::debug!(
                        rss_mb = memory::process_rss().unwrap_or(0) >> 20,
                        "seal: heads checkpointed"
                    );
                    // The coarser fragments' sequences, taken before any
                    // checkpoint that runs while the seal does: a late
                    // point's rollup, which such a checkpoint writes, sorts
                    // after them and wins. Stored before any of them, so a
                    // store opened after a crash mid-seal never takes them
                    // again (as a checkpoint does).
                    let frag = SealFrags::take(&mut self.inner.lock(), shape, a, from, to);
                    let mut b = Batch::default();
                    b.put(
                        Space::Meta,
                        META_FRAGSEQ,
                        frag.last().to_be_bytes().to_vec(),
                    );
                    self.kv.write(b).map_err(StoreError::Write)?;
                    frag
                };
                let began = Instant::now();
                tracing::info!(
                    schema,
                    archive = a,
                    from,
                    to,
                    rss_mb = memory::process_rss().unwrap_or(0) >> 20,
                    "seal: starting"
                );
                let result = self.seal_range(schema, a, shape, from, to, frag);
                tracing::info!(
                    schema,
                    archive = a,
                    rows = result.as_ref().map_or(0, |n| *n),
                    took_ms = u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX),
                    rss_mb = memory::process_rss().unwrap_or(0) >> 20,
                    "seal: done"
                );
                {
                    let mut inner = self.inner.lock();
                    inner.points.touched = None;
                    inner.hists.touched = None;
                }
                sealed += result.map_err(StoreError::Write)?;
            }
        }
        if sealed > 0 {
            self.stats.rows_sealed.fetch_add(sealed as u64, Relaxed);
        }
        Ok(sealed)
    }

    /// Writes one batch of the seal, holding off checkpoints for the
    /// write only (a seal of 1M rows takes minutes; holding them off all
    /// along let memory grow by every point written meanwhile), and
    /// checkpoints after it when one is due. `rows` are the rows sealed
    /// in it; those taken whole by a late point since the seal started
    /// are left out (see `Lane::touched`).
    fn seal_write<T: Slot>(
        &self,
        lane: fn(&Inner) -> &Lane<T>,
        rows: Vec<(RowKey, Vec<u8>)>,
        mut batch: Batch,
    ) -> Result<(), KvError> {
        let _no_checkpoint = self.checkpointing.lock();
        {
            let inner = self.inner.lock();
            let lane = lane(&inner);
            for (key, bytes) in rows {
                if !lane.was_touched(&key) {
                    batch.put(T::SPACE, key.encode().to_vec(), bytes);
                }
            }
        }
        if !batch.is_empty() {
            self.kv.write(batch)?;
        }
        if self.checkpoint_due() {
            self.checkpoint_locked().map_err(|e| match e {
                StoreError::Write(k) => k,
                other => KvError::io(other.to_string()),
            })?;
        }
        Ok(())
    }

    /// Seals the rows of archive `a` starting in `[from, to)`.
    fn seal_range(
        &self,
        schema: u16,
        a: usize,
        shape: &Shape,
        from: u32,
        to: u32,
        frag: SealFrags,
    ) -> Result<usize, KvError> {
        let lo = RowKey::prefix(schema, archive_byte(a), from).to_vec();
        let hi = RowKey::prefix(schema, archive_byte(a), to).to_vec();
        // Histograms first: a timer stat derived from its histogram reads
        // the sealed histogram row.
        let mut n =
            self.seal_lane::<Option<Hist>>(a, shape, &lo, &hi, frag, |i| &i.hists, &mut |_, _| {
                false
            })?;
        let mut derivable: Vec<RowKey> = Vec::new();
        let step = shape.steps[a];
        n += {
            let mut defer = |key: RowKey, _: &[f64]| -> bool {
                let d = derive::predictor(&self.index.read(), key.series, a, step).is_some();
                if d {
                    derivable.push(key);
                }
                d
            };
            self.seal_lane::<f64>(a, shape, &lo, &hi, frag, |i| &i.points, &mut defer)?
        };
        tracing::debug!(
            archive = a,
            rows = n,
            derivable = derivable.len(),
            rss_mb = memory::process_rss().unwrap_or(0) >> 20,
            "seal: rows written"
        );
        self.seal_derived(a, shape, &derivable)?;
        let mut batch = Batch::default();
        batch.delete_range(Space::Heads, lo.clone(), hi.clone());
        batch.delete_range(Space::HistHeads, lo.clone(), hi.clone());
        let key = [META_SEALED, &schema.to_be_bytes()[..], &[archive_byte(a)]].concat();
        batch.put(Space::Meta, key, to.to_be_bytes().to_vec());
        {
            let _no_checkpoint = self.checkpointing.lock();
            // A row a late point took whole during the seal has no record
            // from it (the seal leaves such rows to the checkpoint after);
            // the batch below deletes its fragments, so that checkpoint
            // comes first: killed in between, the store had the late point
            // in its log and nothing else of the row (a test below lost
            // 719 of 720 points so).
            let taken = {
                let inner = self.inner.lock();
                let any = |t: &Option<
                    std::collections::HashSet<RowKey, foldhash::fast::RandomState>,
                >| { t.as_ref().is_some_and(|t| !t.is_empty()) };
                any(&inner.points.touched) || any(&inner.hists.touched)
            };
            if taken {
                self.checkpoint_locked().map_err(|e| match e {
                    StoreError::Write(k) => k,
                    other => KvError::io(other.to_string()),
                })?;
            }
            // The range tombstones flushed on their own, so the level-0
            // file holding them spans `[lo, hi)` only: flushed with the
            // coarser fragments this seal wrote (the next archive's keys)
            // it spanned both archives, and compacting it took every
            // last-level file between, the whole family at once (`du`
            // peaks of 1.6 times the rows at seals, ramp bench, 100,000
            // series).
            self.kv.persist(&[Space::Heads, Space::HistHeads])?;
            self.kv.write(batch)?;
            self.kv.persist(&[Space::Heads, Space::HistHeads])?;
            self.inner
                .lock()
                .sealed
                .insert((schema, archive_byte(a)), to);
        }
        self.kv.compact(Space::Heads, &lo, &hi);
        self.kv.compact(Space::HistHeads, &lo, &hi);
        if a + 1 < shape.steps.len() {
            // The coarser fragments this seal wrote, settled now: flushed a
            // level-0 file per MiB (126 at 1M series) and left to the next
            // checkpoint's settle, they made every read of a row open each
            // of those files until then (ramp bench: renders right after
            // the seal five times slower).
            let (first, _) = rollup::locate(shape, a + 1, i64::from(from));
            let (last, _) = rollup::locate(shape, a + 1, i64::from(to) - 1);
            let clo = RowKey::prefix(schema, archive_byte(a + 1), first).to_vec();
            let chi = RowKey::prefix(schema, archive_byte(a + 1), last.saturating_add(1)).to_vec();
            self.kv.persist(&[Space::Heads, Space::HistHeads])?;
            self.kv.compact(Space::Heads, &clo, &chi);
            self.kv.compact(Space::HistHeads, &clo, &chi);
        }
        Ok(n)
    }

    /// Seals one lane's rows with fragments in `[lo, hi)`, chunk by chunk,
    /// and writes the coarser archive's points rolled up from them. Rows
    /// `defer` claims are left for [`Store::seal_derived`] (their rollup is
    /// written here).
    #[allow(clippy::too_many_arguments)]
    fn seal_lane<T: Sealable>(
        &self,
        a: usize,
        shape: &Shape,
        lo: &[u8],
        hi: &[u8],
        frag: SealFrags,
        lane: fn(&Inner) -> &Lane<T>,
        defer: &mut dyn FnMut(RowKey, &[T]) -> bool,
    ) -> Result<usize, KvError> {
        let slots = shape.slots[a] as usize;
        let coarser = a + 1 < shape.steps.len();
        let mut cursor = lo.to_vec();
        let mut sealed = 0;
        let mut chunks = 0u64;
        loop {
            let mut chunk: Vec<(RowKey, Vec<Vec<u8>>)> = Vec::new();
            let mut next: Option<Vec<u8>> = None;
            self.kv.scan(T::HEADS, &cursor, hi, &mut |k, v| {
                let Some(rk) = fragment_row(k) else {
                    return true;
                };
                if chunk.last().map(|c| c.0) != Some(rk) {
                    if chunk.len() == CHUNK_ROWS {
                        next = Some(k.to_vec());
                        return false;
                    }
                    chunk.push((rk, Vec::new()));
                }
                if let Some(c) = chunk.last_mut() {
                    c.1.push(v.to_vec());
                }
                true
            })?;
            let mut batch = Batch::default();
            let mut rows: Vec<(RowKey, Vec<u8>)> = Vec::new();
            let mut heads: HashMap<(RowKey, u64), Head<T>> = HashMap::new();
            for (key, frags) in chunk {
                let row = self.assemble::<T>(key, slots, &frags)?;
                if !row.iter().any(T::present) {
                    continue;
                }
                sealed += 1;
                if !defer(key, &row) {
                    rows.push((key, T::encode_row(&row)));
                }
                if coarser {
                    self.roll_into(shape, a, key, &row, frag, &mut heads)?;
                }
            }
            put_coarser(&mut batch, &heads);
            self.seal_write(lane, rows, batch)?;
            #[cfg(test)]
            if let Some(f) = self.after_seal_batch.lock().take() {
                f();
            }
            chunks += 1;
            if chunks.is_multiple_of(64) {
                tracing::debug!(
                    archive = a,
                    chunks,
                    rows = sealed,
                    rss_mb = memory::process_rss().unwrap_or(0) >> 20,
                    "seal: progress"
                );
            }
            match next {
                Some(k) => cursor = k,
                None => break,
            }
        }
        if coarser {
            self.roll_touched(a, shape, lo, hi, frag, lane)?;
        }
        Ok(sealed)
    }

    /// Rolls up once more the rows a late point took whole while the seal
    /// ran. A checkpoint writes such a row sealed and drops its fragments:
    /// one that did so before the seal's scan reached the row left the seal
    /// nothing to roll up, and the coarser row kept only the late point's
    /// own window (59 of 60 minutes lost, in a CI run of the test of the
    /// seal beside checkpoints). Each is rolled up from the row whole, as a
    /// read sees it, under its span's sequence: in place of the seal's own
    /// fragment for it, if the scan met it.
    fn roll_touched<T: Sealable>(
        &self,
        a: usize,
        shape: &Shape,
        lo: &[u8],
        hi: &[u8],
        frag: SealFrags,
        lane: fn(&Inner) -> &Lane<T>,
    ) -> Result<(), KvError> {
        let mut keys: Vec<RowKey> = {
            let inner = self.inner.lock();
            lane(&inner)
                .touched
                .iter()
                .flatten()
                .filter(|k| {
                    let e = k.encode();
                    e.as_slice() >= lo && e.as_slice() < hi
                })
                .copied()
                .collect()
        };
        keys.sort_unstable();
        for chunk in keys.chunks(CHUNK_ROWS) {
            let mut batch = Batch::default();
            let mut heads: HashMap<(RowKey, u64), Head<T>> = HashMap::new();
            for &key in chunk {
                let row = T::whole(self, shape, a, key)?;
                self.roll_into(shape, a, key, &row, frag, &mut heads)?;
            }
            put_coarser(&mut batch, &heads);
            self.seal_write(lane, Vec::new(), batch)?;
        }
        Ok(())
    }

    /// Rolls sealed row `key` of archive `a` up into `heads`: the coarser
    /// rows' points under it, keyed by coarser row and the sequence of the
    /// span `key` starts in.
    fn roll_into<T: Sealable>(
        &self,
        shape: &Shape,
        a: usize,
        key: RowKey,
        row: &[T],
        frag: SealFrags,
        heads: &mut HashMap<(RowKey, u64), Head<T>>,
    ) -> Result<(), KvError> {
        for (ckey, cslot, v) in T::roll(self, shape, a, key, row)? {
            heads
                .entry((ckey, frag.of(key.start)))
                .or_insert_with(|| Head::starting_at(cslot))
                .set(cslot, v);
        }
        Ok(())
    }

    /// A row to seal: its sealed record, if any (a store of an older
    /// format), under its fragments in order.
    fn assemble<T: Slot>(
        &self,
        key: RowKey,
        slots: usize,
        frags: &[Vec<u8>],
    ) -> Result<Vec<T>, KvError> {
        let mut corrupt = 0u64;
        let mut row = match self.kv.get(T::SPACE, &key.encode())? {
            Some(b) => T::decode_row(&b, slots, key, &*self.kv).unwrap_or_else(|e| {
                corrupt += 1;
                tracing::error!(?key, error = %e, "corrupt row replaced at its seal");
                vec![T::absent(); slots]
            }),
            None => vec![T::absent(); slots],
        };
        for f in frags {
            match T::decode_row(f, slots, key, &*self.kv) {
                Ok(v) => {
                    for (o, v) in row.iter_mut().zip(v) {
                        if v.present() {
                            *o = v;
                        }
                    }
                }
                Err(e) => {
                    corrupt += 1;
                    tracing::error!(?key, error = %e, "corrupt row fragment skipped at its seal");
                }
            }
        }
        if corrupt > 0 {
            self.stats.corrupt_rows.fetch_add(corrupt, Relaxed);
        }
        Ok(row)
    }

    /// Writes rows that may be derived from other rows under their key
    /// (sealed just before, so stored as the derived row is encoded
    /// against): derived where that is smaller, plain otherwise.
    fn seal_derived(&self, a: usize, shape: &Shape, keys: &[RowKey]) -> Result<(), KvError> {
        let slots = shape.slots[a] as usize;
        let step = shape.steps[a];
        for chunk in keys.chunks(CHUNK_ROWS) {
            let mut rows: Vec<(RowKey, Vec<u8>)> = Vec::new();
            for &key in chunk {
                let mut corrupt = 0;
                let (row, _) = open::stored_row::<f64>(&*self.kv, key, slots, &mut corrupt)?;
                if !row.iter().any(f64::present) {
                    continue;
                }
                let plain = row::encode(&row);
                let pred = derive::predictor(&self.index.read(), key.series, a, step);
                let derived = match pred {
                    Some(p) => self.sources_of(&p, key, slots)?.and_then(|(points, hist)| {
                        let rows = SourceRows {
                            points: points.iter().map(Vec::as_slice).collect(),
                            hist: hist.as_deref(),
                        };
                        derive::encode(&row, &p, &rows)
                    }),
                    None => None,
                };
                let bytes = match derived {
                    Some(d) if d.len() < plain.len() => d,
                    _ => plain,
                };
                rows.push((key, bytes));
            }
            self.seal_write(|i| &i.points, rows, Batch::default())?;
        }
        Ok(())
    }

    /// A predictor's source rows as stored (sealed records only: a derived
    /// row is encoded against exactly what a reader will find).
    #[allow(clippy::type_complexity)]
    fn sources_of(
        &self,
        p: &derive::Predictor,
        key: RowKey,
        slots: usize,
    ) -> Result<Option<(Vec<Vec<f64>>, Option<Vec<Option<Hist>>>)>, KvError> {
        let (mut points, mut hist) = (Vec::new(), None);
        for s in p.sources() {
            match s {
                Source::Points(id) => {
                    let k = RowKey { series: id, ..key }.encode();
                    let Some(b) = self.kv.get(Space::Rows, &k)? else {
                        return Ok(None);
                    };
                    if b.first() == Some(&derive::FORMAT_DERIVED) {
                        return Ok(None);
                    }
                    match row::decode(&b, slots) {
                        Ok(v) => points.push(v),
                        Err(_) => return Ok(None),
                    }
                }
                Source::Hist(id) => {
                    let k = RowKey { series: id, ..key }.encode();
                    let Some(b) = self.kv.get(Space::Hists, &k)? else {
                        return Ok(None);
                    };
                    match hist::decode_row(&b, slots) {
                        Ok(v) => hist = Some(v),
                        Err(_) => return Ok(None),
                    }
                }
            }
        }
        Ok(Some((points, hist)))
    }
}

/// A slot kind the seal can roll up into the coarser archive.
/// Puts the coarser fragments `heads` holds (see [`Store::roll_into`]).
fn put_coarser<T: Slot>(batch: &mut Batch, heads: &HashMap<(RowKey, u64), Head<T>>) {
    for ((ckey, seq), h) in heads {
        batch.put(
            T::HEADS,
            fragment_key(*ckey, *seq),
            T::encode_row(&h.as_row()),
        );
    }
}

trait Sealable: Slot {
    /// The coarser archive's points under a sealed finer row: (coarse row,
    /// slot, value).
    fn roll(
        store: &Store,
        shape: &Shape,
        a: usize,
        key: RowKey,
        row: &[Self],
    ) -> Result<Vec<(RowKey, usize, Self)>, KvError>;

    /// Row `key` of archive `a` whole, as a read sees it.
    fn whole(store: &Store, shape: &Shape, a: usize, key: RowKey) -> Result<Vec<Self>, KvError>;
}

impl Sealable for f64 {
    fn whole(store: &Store, shape: &Shape, a: usize, key: RowKey) -> Result<Vec<f64>, KvError> {
        let rule = match store.index.read().series.get(key.series as usize) {
            Some(s) if !s.hole => rollup::Rule {
                method: s.method,
                xff: s.xff,
                link: s.link(),
            },
            _ => return Ok(Vec::new()),
        };
        store.value_row(key.series, key.schema, a, shape, key.start, &rule)
    }

    fn roll(
        store: &Store,
        shape: &Shape,
        a: usize,
        key: RowKey,
        row: &[f64],
    ) -> Result<Vec<(RowKey, usize, f64)>, KvError> {
        let rule = match store.index.read().series.get(key.series as usize) {
            Some(s) if !s.hole => rollup::Rule {
                method: s.method,
                xff: s.xff,
                link: s.link(),
            },
            _ => return Ok(Vec::new()),
        };
        let hists = match rule.link {
            Some((hid, _)) => Some(store.hist_row(hid, key.schema, a, shape, key.start)?),
            None => None,
        };
        Ok(rollup::roll_values(
            shape,
            a + 1,
            key.start,
            i64::MIN,
            &rule,
            row,
            hists.as_deref(),
        )
        .into_iter()
        .map(|(bucket, v)| {
            let (start, slot) = rollup::locate(shape, a + 1, bucket);
            (
                RowKey {
                    archive: archive_byte(a + 1),
                    start,
                    ..key
                },
                slot,
                v,
            )
        })
        .collect())
    }
}

impl Sealable for Option<Hist> {
    fn whole(
        store: &Store,
        shape: &Shape,
        a: usize,
        key: RowKey,
    ) -> Result<Vec<Option<Hist>>, KvError> {
        store.hist_row(key.series, key.schema, a, shape, key.start)
    }

    fn roll(
        _store: &Store,
        shape: &Shape,
        a: usize,
        key: RowKey,
        row: &[Option<Hist>],
    ) -> Result<Vec<(RowKey, usize, Option<Hist>)>, KvError> {
        Ok(rollup::roll_hists(shape, a + 1, key.start, i64::MIN, row)
            .into_iter()
            .map(|(bucket, h)| {
                let (start, slot) = rollup::locate(shape, a + 1, bucket);
                (
                    RowKey {
                        archive: archive_byte(a + 1),
                        start,
                        ..key
                    },
                    slot,
                    Some(h),
                )
            })
            .collect())
    }
}
