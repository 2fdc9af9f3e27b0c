//! Checkpoints: what memory holds, written to the engine so the log it
//! covers can go.
//!
//! A checkpoint writes the heads (slots changed since the last checkpoint)
//! as fragments of their rows, a chunk of heads per batch, then one atomic
//! batch with the unsaved sealed rows whole, the pending series records,
//! the seal marks, and the log's deletion up to the first batch not
//! covered. It writes what changed, never whole rows that are still
//! filling, so its cost follows the points written, not the series held.

use super::open::{decode_fragment, fragment_key, fragment_range, fragment_row, Head, Slot};
use std::collections::{HashMap, HashSet};

use super::*;

/// Heads written per batch: about 3 MB of fragments at the default
/// interval, so a checkpoint holds one such chunk twice (in flight and
/// encoded) however many series are live.
const CHUNK_HEADS: usize = 16_384;

/// Heads in a chunk from which its encoding and merges run on two threads
/// (below it, a thread costs more than it saves).
const PARALLEL_HEADS: usize = 4096;

/// Each checkpoint merges the fragments of one row in this many (those of
/// series `frag mod CONSOLIDATE_EVERY`, `frag` its fragment sequence) into
/// one, compressed like a sealed row, where that pays ([`merge_fragments`]):
/// so a statsd-shaped row not sealed holds at most this many fragments
/// beyond its merged one, and its points are mostly pco's (0.1-0.5 B a
/// point) rather than the fragments' XOR (3.5 B, and a 19-byte key every
/// ~10 points when memory forces checkpoints). Spread over checkpoints so
/// none of them rewrites every row at once.
const CONSOLIDATE_EVERY: u64 = 4;

/// The shortest time between two checkpoints that memory pressure asks for.
const PRESSURE_CHECKPOINT_EVERY: Duration = Duration::from_secs(30);

impl Store {
    /// Seals rows whose time has passed, then checkpoints when due: both
    /// halves of upkeep on one thread, for callers with one (tests, tools).
    /// The daemon runs the halves on two threads
    /// ([`Store::seal_ended_rows`], [`Store::checkpoint_when_due`]).
    pub fn maintain(&self, now: i64, force_checkpoint: bool) -> Result<(), StoreError> {
        self.seal_ended_rows(now)?;
        self.checkpoint_when_due(force_checkpoint)
    }

    /// Seals every row whose span ended a grace period before `now`, if
    /// any did; returns the rows sealed. The long half of upkeep: a seal
    /// of a million rows takes minutes, and run on the thread that
    /// checkpoints it held back checkpoints and the answer to memory
    /// pressure all that time (the ramp bench's writer waited 4 minutes
    /// at 1M series). On a thread of its own it takes the checkpoint lock
    /// only for each batch it writes, so checkpoints run between them.
    pub fn seal_ended_rows(&self, now: i64) -> Result<usize, StoreError> {
        // Whether a seal is due is a comparison per (schema, archive), on
        // the caller's clock, so a simulated clock seals as time passes.
        if !self.seal_due(now) {
            return Ok(0);
        }
        let _one_seal_at_a_time = self.sealing_one.lock();
        self.seal(now)
    }

    /// The short half of upkeep, called every second or so: memory
    /// pressure weighed (caches shed, new series refused past the
    /// budget) and a checkpoint written when one is due or `force`d.
    pub fn checkpoint_when_due(&self, force_checkpoint: bool) -> Result<(), StoreError> {
        // `[storage] max_memory`, weighed by the resident set: from 90 % the
        // rows in memory go out now; past it new series are refused too,
        // until back under 80 % (`memory.rs`).
        let pressure = match memory::process_rss() {
            Some(rss) => {
                let p = memory::pressure(rss, self.opts.max_memory, self.caps.memory_full());
                self.caps
                    .set_memory_full(p == memory::Pressure::Refuse, rss, self.opts.max_memory);
                // Caches shrink first (from 90 %), before any series is
                // refused, and grow back once under 80 %.
                self.kv.shed(p != memory::Pressure::None);
                p
            }
            None => memory::Pressure::None,
        };
        let pressed = {
            let inner = self.inner.lock();
            let rows = inner.points.bytes() + inner.hists.bytes();
            // Not more often than every PRESSURE_CHECKPOINT_EVERY: each
            // checkpoint adds a fragment to every live row, and what the
            // resident set holds beyond the rows does not shrink with them.
            pressure != memory::Pressure::None
                && rows > 0
                && inner.last_checkpoint.elapsed() >= PRESSURE_CHECKPOINT_EVERY
        };
        let why = if force_checkpoint {
            Some("asked")
        } else if pressed {
            Some("memory pressure")
        } else {
            self.checkpoint_due_why()
        };
        if let Some(why) = why {
            tracing::debug!(why, "checkpoint: due");
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Whether a checkpoint is due on its own account: after a failed
    /// write, `checkpoint_interval`, `checkpoint_log_bytes` of log, too
    /// many unsaved rows, or rows in memory past their share of
    /// `max_memory` (a checkpoint empties the heads).
    pub(super) fn checkpoint_due(&self) -> bool {
        self.checkpoint_due_why().is_some()
    }

    /// What makes a checkpoint due now, if anything (see `checkpoint_due`).
    fn checkpoint_due_why(&self) -> Option<&'static str> {
        let inner = self.inner.lock();
        if inner.log_gap {
            Some("a write failed")
        } else if inner.last_checkpoint.elapsed() >= self.opts.checkpoint_interval {
            Some("checkpoint_interval")
        } else if inner.log_bytes >= self.opts.checkpoint_log_bytes {
            Some("checkpoint_log_bytes")
        } else if inner.points.unsaved.len() + inner.hists.unsaved.len()
            >= self.opts.checkpoint_unsaved_rows
        {
            Some("unsaved rows")
        } else if inner.points.bytes() + inner.hists.bytes() >= self.opts.rows_budget() {
            Some("rows in memory past a quarter of max_memory")
        } else {
            None
        }
    }

    /// Writes what changed and drops the log it covers, atomically. Heads
    /// are taken (not copied) under the lock and encoded outside it, so
    /// writers wait only for the swap.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        let _one_at_a_time = self.checkpointing.lock();
        self.checkpoint_locked()
    }

    /// The checkpoint of a stop. Fragments and sealed rows are written
    /// compressed, so there is nothing more to compress than at any other
    /// checkpoint; no batch may be applied while it runs.
    pub fn checkpoint_compact(&self) -> Result<(), StoreError> {
        let _no_batches = self.gate.write();
        self.checkpoint()
    }

    /// A checkpoint, with `checkpointing` held by the caller.
    pub(super) fn checkpoint_locked(&self) -> Result<(), StoreError> {
        let started = Instant::now();
        // Dropped (the settle told to finish) on every way out.
        let settle = self.follow_with_settle();
        let progress = settle.as_ref().map(|f| &*f.0);
        let (rows, hrows, covered, frag, marks, plans, mut batch, records_upto) = {
            let index = self.index.read();
            let schemas = self.schemas.read();
            let (rows, hrows, covered, frag, marks) = {
                let mut inner = self.inner.lock();
                let frag = inner.next_frag();
                (
                    inner.points.snapshot(),
                    inner.hists.snapshot(),
                    inner.next_seq,
                    frag,
                    inner.sealed.clone(),
                )
            };
            // Taken under the index lock, after the rows: every series
            // (and schema) these rows or derived rows name is in the
            // engine already or among these records.
            let mut batch = Batch::default();
            let records_upto = self.pending.lock().add_to(&mut batch);
            let step_of = |schema: u16, a: u8| {
                schemas
                    .shapes
                    .get(schema as usize)
                    .and_then(|s| s.steps.get(a as usize).copied())
            };
            let plans = derive::plan(&index, &step_of, &rows, &hrows, false);
            (
                rows,
                hrows,
                covered,
                frag,
                marks,
                plans,
                batch,
                records_upto,
            )
        };
        // The heads, as fragments, a chunk at a time. Every batch below
        // `covered` is in the heads by now; heads taken later may hold
        // points of later batches too, which the log also holds: a replay
        // writes them again, the same. A failed chunk goes back to memory
        // and fails the checkpoint; the log still covers it all.
        let shapes: Vec<Shape> = self.schemas.read().shapes.clone();
        let fragments = self
            .write_heads(
                |i| &mut i.hists,
                frag,
                &HIST_CODEC,
                &shapes,
                &mut HashSet::new(),
                progress,
            )
            .and_then(|h| {
                self.write_heads(
                    |i| &mut i.points,
                    frag,
                    &VALUE_CODEC,
                    &shapes,
                    &mut HashSet::new(),
                    progress,
                )
                .map(|p| h + p)
            });
        // The fragments were written unlogged: on disk before the batch
        // that deletes the log entries whose points they hold.
        let fragments = fragments.and_then(|n| {
            self.kv
                .persist(&[Space::Heads, Space::HistHeads])
                .map(|()| n)
        });
        // The settle's last ranges need not wait for the final batch.
        let followed = settle.is_some();
        drop(settle);
        if !followed {
            self.settle_after();
        }
        let fragments = match fragments {
            Ok(n) => n,
            Err(e) => {
                self.stats.checkpoint_errors.fetch_add(1, Relaxed);
                self.stats.write_errors.fetch_add(1, Relaxed);
                self.inner.lock().log_gap = true;
                return Err(StoreError::Write(e));
            }
        };
        let rows = derive::encode_rows(&rows, &hrows, &plans, false);
        let hrows: Vec<(RowKey, Option<Vec<u8>>)> = hrows
            .iter()
            .map(|(k, slots, _)| {
                (
                    *k,
                    slots
                        .iter()
                        .any(Option::present)
                        .then(|| hist::encode_row(slots)),
                )
            })
            .collect();
        for (space, heads_space, list) in [
            (Space::Rows, Space::Heads, &rows),
            (Space::Hists, Space::HistHeads, &hrows),
        ] {
            for (key, bytes) in list {
                let (from, to) = fragment_range(*key);
                batch.delete_range(heads_space, from, to);
                match bytes {
                    Some(b) => batch.put(space, key.encode().to_vec(), b.clone()),
                    None => batch.delete(space, key.encode().to_vec()),
                }
            }
        }
        for ((schema, archive), mark) in &marks {
            let key = [META_SEALED, &schema.to_be_bytes()[..], &[*archive]].concat();
            batch.put(Space::Meta, key, mark.to_be_bytes().to_vec());
        }
        batch.put(Space::Meta, META_FRAGSEQ, frag.to_be_bytes().to_vec());
        batch.put(Space::Meta, META_CHECKPOINT, covered.to_be_bytes().to_vec());
        batch.delete_range(Space::Log, wal::key(0).to_vec(), wal::key(covered).to_vec());
        let result = self.kv.write(batch);
        if result.is_ok() {
            self.pending.lock().written(records_upto);
        }
        if result.is_ok() {
            // Log entries are deleted by range as soon as they are covered.
            // Flushing lets RocksDB delete its WAL files that held them (up
            // to 256 MiB of them stayed on disk: 21 B a point as `du` saw
            // it, against 1 in the rows, at 100k series), and compacting
            // the range drops the table files that held only such entries.
            self.kv.flush();
            self.kv
                .compact(Space::Log, &wal::key(0), &wal::key(covered));
        }
        let mut inner = self.inner.lock();
        match result {
            Ok(()) => {
                inner.points.commit(&rows, covered);
                inner.hists.commit(&hrows, covered);
                for (key, _) in rows.iter().chain(hrows.iter()) {
                    let e = inner
                        .fresh_rows
                        .entry((key.schema, key.archive))
                        .or_insert(key.start);
                    *e = (*e).min(key.start);
                }
                inner.checkpoint_seq = covered;
                while inner.unlogged.front().is_some_and(|u| u.0 < covered) {
                    if let Some((_, b, _)) = inner.unlogged.pop_front() {
                        inner.unlogged_bytes -= b.len();
                    }
                }
                if covered >= inner.unprotected_upto {
                    inner.unprotected_points = 0;
                }
                inner.log_bytes = inner.log_bytes.saturating_sub(inner.log_bytes_at(covered));
                inner.log_gap = false;
                inner.last_checkpoint = Instant::now();
                self.stats.log_bytes.store(inner.log_bytes, Relaxed);
                self.stats.checkpoints.fetch_add(1, Relaxed);
                self.stats
                    .rows_written
                    .fetch_add((rows.len() + hrows.len() + fragments) as u64, Relaxed);
                self.stats.last_checkpoint_ms.store(
                    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    Relaxed,
                );
                tracing::debug!(
                    ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    fragments,
                    "checkpoint: done"
                );
                self.stats.corrupt_rows.fetch_max(
                    inner.points.corrupt_rows + inner.hists.corrupt_rows,
                    Relaxed,
                );
                Ok(())
            }
            Err(e) => {
                self.stats.checkpoint_errors.fetch_add(1, Relaxed);
                self.stats.write_errors.fetch_add(1, Relaxed);
                // Retry soon rather than after a whole interval.
                inner.log_gap = true;
                Err(StoreError::Write(e))
            }
        }
    }

    /// Starts the settle of the fragments families (`Kv::settle`) that
    /// follows this checkpoint's writing on a thread of its own: the
    /// families have no compaction of their own, and one rewrite of the
    /// current row spans' fragments per checkpoint drops what its merges
    /// replaced (docs/storage-format.md, Engine settings). Each of the
    /// settle's key ranges is compacted as soon as the checkpoint has
    /// written past it, so level 0 holds a range or two of the
    /// checkpoint's fragments at any moment, not all of them: settled
    /// after the checkpoint, the checkpoint's whole level 0 sat on disk
    /// beside the rows it rewrites, and `du` peaked at 1.6 to 2.1 times
    /// the rows in a steady run of 100,000 series (ramp bench, sampled
    /// every 250 ms). One settle at a time (at 1M series a settle rewrites
    /// 300-460 MB; run inside the checkpoint it held the upkeep thread, and
    /// the writer, for most of each 11-15 s checkpoint): a checkpoint that
    /// finds the last one still running has it settle once more when done,
    /// rather than leave its fragments in level 0 until the next
    /// checkpoint's settle: a scan opens every level-0 file, and reads
    /// slow with their number (ramp bench at 1M series: one series -1h p50
    /// 54 µs with 13 level-0 files in `heads`, 541 µs with 125).
    fn follow_with_settle(&self) -> Option<SettleFollow> {
        let progress = Arc::new(SettleProgress::default());
        let p = progress.clone();
        let kv = self.kv.clone();
        let follow = move || {
            for space in [Space::HistHeads, Space::Heads] {
                for range in kv.settle_ranges(space) {
                    p.wait_past(space, range.1.as_deref());
                    kv.settle_range(space, &range);
                }
            }
        };
        self.start_settle(follow, false)
            .then(|| SettleFollow(progress))
    }

    /// After a checkpoint that found a settle running: that settle makes
    /// one more pass when done, or, if it is done already, one starts.
    fn settle_after(&self) {
        let kv = self.kv.clone();
        self.start_settle(
            move || {
                for space in [Space::HistHeads, Space::Heads] {
                    kv.settle(space);
                }
            },
            true,
        );
    }

    /// Starts a settle thread running `first`, then a full pass for each
    /// checkpoint that asks meanwhile; returns false when one was running
    /// already (asked for such a pass if `ask_again`) or none could start.
    fn start_settle(&self, first: impl FnOnce() + Send + 'static, ask_again: bool) -> bool {
        let mut slot = self.settler.lock();
        {
            let mut st = self.settle_state.lock();
            if st.running {
                st.again |= ask_again;
                return false;
            }
            st.running = true;
            st.again = false;
        }
        if let Some(h) = slot.take() {
            let _ = h.join();
        }
        let kv = self.kv.clone();
        let state = self.settle_state.clone();
        let settle = move || {
            first();
            loop {
                {
                    let mut st = state.lock();
                    if !st.again {
                        st.running = false;
                        return;
                    }
                    st.again = false;
                }
                for space in [Space::HistHeads, Space::Heads] {
                    kv.settle(space);
                }
            }
        };
        match std::thread::Builder::new()
            .name("settle".into())
            .spawn(settle)
        {
            Ok(h) => {
                *slot = Some(h);
                true
            }
            Err(e) => {
                self.settle_state.lock().running = false;
                tracing::warn!(error = %e, "cannot start a settle thread; fragments left to the next checkpoint's");
                false
            }
        }
    }

    /// Waits for a settle in progress (a closing store leaves its files
    /// settled, and an engine's files are not held by a thread past the
    /// store's end). Public for the engines' own tests, which look at the
    /// files a settle leaves.
    pub fn wait_for_settle(&self) {
        if let Some(h) = self.settler.lock().take() {
            let _ = h.join();
        }
    }

    /// Writes one lane's heads as fragments under sequence `frag`, in
    /// chunks of [`CHUNK_HEADS`]; returns how many. The rows whose turn it
    /// is ([`CONSOLIDATE_EVERY`]) are merged with their stored fragments.
    ///
    /// `written`: the rows this checkpoint has written under `frag`. A row
    /// can come up twice in one checkpoint: its head is taken with one
    /// chunk, then a late point makes a new head for it (in the overflow
    /// map) that a later chunk takes. Its second fragment would have the
    /// same key as the first and replace it, losing the first's points, so
    /// a row met again is always merged with what is stored (the first
    /// fragment included: each chunk's batch is written before the next
    /// chunk is taken).
    fn write_heads<T: Slot>(
        &self,
        lane: fn(&mut Inner) -> &mut Lane<T>,
        frag: u64,
        codec: &Codec<T>,
        shapes: &[Shape],
        written: &mut HashSet<RowKey>,
        progress: Option<&SettleProgress>,
    ) -> Result<usize, KvError> {
        let merge_turn = |key: &RowKey| merge_turn(key.series, frag);
        let mut cursor = 0;
        let mut n = 0;
        let (mut merged, mut read_time, mut merge_time) = (0usize, Duration::ZERO, Duration::ZERO);
        loop {
            let chunk = lane(&mut self.inner.lock()).take_chunk(&mut cursor, CHUNK_HEADS);
            if chunk.is_empty() {
                tracing::debug!(
                    heads = n,
                    merged,
                    read_ms = u64::try_from(read_time.as_millis()).unwrap_or(u64::MAX),
                    merge_ms = u64::try_from(merge_time.as_millis()).unwrap_or(u64::MAX),
                    "checkpoint: heads written"
                );
                return Ok(n);
            }
            // Records pending (a log write failed) are written before
            // every chunk, through the engine's log, so no fragment names
            // a series whose record is not stored: the chunk itself is
            // written unlogged and may reach the disk first. So is the
            // fragment sequence: a checkpoint cut short by a crash left
            // fragments under `frag` while `meta/fragseq` still said the
            // one before, and the next checkpoint after the restart took
            // `frag` again, its fragments replacing those under the same
            // keys (a merged one among them, holding older points).
            let mut records = Batch::default();
            self.pending.lock().add_to(&mut records);
            records.put(Space::Meta, META_FRAGSEQ, frag.to_be_bytes().to_vec());
            if let Err(e) = self.kv.write(records) {
                lane(&mut self.inner.lock()).chunk_done(false);
                return Err(e);
            }
            let mut batch = Batch::default();
            let t = Instant::now();
            let again: HashSet<RowKey> = chunk
                .iter()
                .map(|(k, _)| *k)
                .filter(|k| written.contains(k))
                .collect();
            let turn: Vec<RowKey> = chunk
                .iter()
                .map(|(k, _)| *k)
                .filter(|k| merge_turn(k) || again.contains(k))
                .collect();
            written.extend(chunk.iter().map(|(k, _)| *k));
            let stored = self.stored_fragments::<T>(turn);
            read_time += t.elapsed();
            let t = Instant::now();
            if let Ok(stored) = &stored {
                // Encoding and merging is CPU only, in two halves on two
                // threads for a large chunk: at 1M series a checkpoint's
                // merges (a pco pack of each row whose turn it is) were
                // most of its 8-14 s, with the writer waiting on it.
                let encode = |part: &[(RowKey, Head<T>)]| {
                    let mut batch = Batch::default();
                    let mut merged = 0usize;
                    for (key, h) in part {
                        let row = h.as_row();
                        let fresh = row.iter().any(T::present).then(|| (codec.plain)(&row));
                        let slots = shapes
                            .get(key.schema as usize)
                            .and_then(|s| s.slots.get(key.archive as usize));
                        if let (Some(old), Some(&slots)) = (stored.get(key), slots) {
                            let f = fresh.as_deref().unwrap_or(&[]);
                            if merge_fragments(
                                *key,
                                h,
                                f,
                                old,
                                slots as usize,
                                frag,
                                codec,
                                again.contains(key),
                                &mut batch,
                            ) {
                                merged += 1;
                                continue;
                            }
                        }
                        if let Some(f) = fresh {
                            batch.put(T::HEADS, fragment_key(*key, frag), f);
                        }
                    }
                    (batch, merged)
                };
                let (first, second) = if chunk.len() >= PARALLEL_HEADS {
                    let (a, b) = chunk.split_at(chunk.len() / 2);
                    std::thread::scope(|s| {
                        let other = s.spawn(|| encode(b));
                        let mine = encode(a);
                        // A panic there is one here, as before the split.
                        let theirs = other
                            .join()
                            .unwrap_or_else(|p| std::panic::resume_unwind(p));
                        (mine, theirs)
                    })
                } else {
                    (encode(&chunk), (Batch::default(), 0))
                };
                batch = first.0;
                batch.ops.extend(second.0.ops);
                merged += first.1 + second.1;
            }
            merge_time += t.elapsed();
            n += chunk.len();
            let past = chunk.iter().map(|(k, _)| *k).max();
            drop(chunk);
            // Unlogged (RocksDB's WAL would write every fragment once more
            // before the flush): the checkpoint persists the fragments
            // before its last batch deletes the log entries that hold
            // their points, and a crash before that replays those.
            let written = stored.and_then(|_| self.kv.write_unlogged(batch));
            lane(&mut self.inner.lock()).chunk_done(written.is_ok());
            written?;
            if let (Some(p), Some(key)) = (progress, past) {
                p.advance(T::HEADS, fragment_range(key).1);
            }
        }
    }

    /// The stored fragments (key, value) of rows `keys`, in key order per
    /// row. Rows next to one another in key order (the same archive's row
    /// span, series ids at most [`RUN_GAP`] apart: a block of turns,
    /// [`merge_turn`]) are read with one scan. A scan per row (RocksDB
    /// sets up an iterator each time) took 350-700 ms of a checkpoint's
    /// 25,000 merged rows at 100,000 statsd-shaped series (14-28 µs a row,
    /// wall, on the shared 2-core machine), these scans 80-180 ms; a scan
    /// of the chunk's whole span read the three rows in four not merged
    /// too: 450 MB a checkpoint at 100,000 series of random values.
    #[allow(clippy::type_complexity)]
    fn stored_fragments<T: Slot>(
        &self,
        mut keys: Vec<RowKey>,
    ) -> Result<HashMap<RowKey, Vec<(Vec<u8>, Vec<u8>)>>, KvError> {
        keys.sort_unstable();
        keys.dedup();
        let wanted: HashSet<RowKey> = keys.iter().copied().collect();
        let mut out: HashMap<RowKey, Vec<(Vec<u8>, Vec<u8>)>> = HashMap::with_capacity(keys.len());
        for run in keys.chunk_by(|a, b| {
            (a.schema, a.archive, a.start) == (b.schema, b.archive, b.start)
                && b.series - a.series <= RUN_GAP
        }) {
            let (from, _) = fragment_range(run[0]);
            let (_, to) = fragment_range(run[run.len() - 1]);
            self.kv.scan(T::HEADS, &from, &to, &mut |k, v| {
                if let Some(row) = fragment_row(k).filter(|r| wanted.contains(r)) {
                    out.entry(row).or_default().push((k.to_vec(), v.to_vec()));
                }
                true
            })?;
        }
        Ok(out)
    }
}

/// How far a checkpoint has written each fragments family, for the
/// settle that follows it ([`Store::follow_with_settle`]).
#[derive(Default)]
pub(super) struct SettleProgress {
    /// The end of the last key range written in `hist_heads` and `heads`:
    /// no key before it gets a fragment from this checkpoint but a late
    /// point's (rare; the next settle takes it).
    past: Mutex<[Option<Vec<u8>>; 2]>,
    /// The checkpoint wrote its last fragment, or gave up.
    done: std::sync::atomic::AtomicBool,
    moved: parking_lot::Condvar,
}

impl SettleProgress {
    fn slot(space: Space) -> usize {
        usize::from(space == Space::Heads)
    }

    fn advance(&self, space: Space, past: Vec<u8>) {
        let mut p = self.past.lock();
        let slot = &mut p[Self::slot(space)];
        if slot.as_ref().is_none_or(|s| *s < past) {
            *slot = Some(past);
        }
        self.moved.notify_all();
    }

    fn finish(&self) {
        let _p = self.past.lock();
        self.done.store(true, Relaxed);
        self.moved.notify_all();
    }

    /// Waits until the checkpoint has written `space` up to `end` (to its
    /// end if `None`), or is done.
    fn wait_past(&self, space: Space, end: Option<&[u8]>) {
        let mut p = self.past.lock();
        loop {
            if self.done.load(Relaxed) {
                return;
            }
            // Both families are written in turn: hist_heads whole first.
            let beyond = match (&p[Self::slot(space)], end) {
                (Some(at), Some(end)) => at.as_slice() >= end,
                _ => false,
            } || (space == Space::HistHeads && p[1].is_some());
            if beyond {
                return;
            }
            self.moved.wait(&mut p);
        }
    }
}

/// The checkpoint's side of a following settle: dropped, it tells the
/// settle the checkpoint is done, however it ended.
struct SettleFollow(Arc<SettleProgress>);

impl Drop for SettleFollow {
    fn drop(&mut self) {
        self.0.finish();
    }
}

/// Rows to merge at most this many series ids apart are read with one
/// scan: the rows between, not merged, are read for nothing.
const RUN_GAP: u32 = 4;

/// Series ids whose rows take their merge turn together: a block's rows
/// sit side by side in key order, so one scan reads them all
/// ([`Store::stored_fragments`]). Small, so even a few hundred series
/// spread their merges over the checkpoints.
const TURN_BLOCK: u32 = 64;

/// Whether series `series`' rows are merged by the checkpoint with
/// fragment sequence `frag`: one block of [`TURN_BLOCK`] ids in
/// [`CONSOLIDATE_EVERY`], a different one each checkpoint.
fn merge_turn(series: u32, frag: u64) -> bool {
    u64::from(series / TURN_BLOCK) % CONSOLIDATE_EVERY == frag % CONSOLIDATE_EVERY
}

/// How one lane's fragments are written.
struct Codec<T> {
    /// A fragment of new points, and a merged row not packed (format 6;
    /// histograms 3).
    plain: fn(&[T]) -> Vec<u8>,
    /// The bytes `plain` makes of a row, without making them.
    plain_len: fn(&[T]) -> usize,
    /// A merged row packed as sealed rows are (format 1 or 2; histograms 3
    /// or 4), given `plain_len`'s answer.
    pack: fn(&[T], usize) -> Vec<u8>,
}

const VALUE_CODEC: Codec<f64> = Codec {
    plain: row::encode_xor,
    plain_len: row::xor_len,
    pack: row::encode_merged,
};

const HIST_CODEC: Codec<Option<hist::Hist>> = Codec {
    plain: hist::encode_row_plain,
    plain_len: |slots| hist::encode_row_plain(slots).len(),
    pack: |slots, _| hist::encode_row(slots),
};

/// What one fragment costs on disk beyond its value: its 19-byte key and
/// RocksDB's 8-byte sequence and type.
const ENTRY_BYTES: usize = 27;

/// A row with this many fragments is merged whatever merging saves, so a
/// read never lays more over one another.
const MERGE_ALWAYS: usize = 16;

/// Writes row `key`'s stored fragments `old` and its head (`fresh`, the
/// head as its own fragment) as one fragment under sequence `frag` (the
/// smaller of `codec.pack` and `codec.plain`), and deletes the
/// fragments it replaces, in `batch`: atomic, so a crash leaves either the
/// old fragments or the merged one, and a reader's scan (one snapshot) sees
/// one or the other. Only the keys read are deleted: a fragment written
/// after (a seal's rollup under an earlier sequence) stays and is laid
/// over in its order as before.
///
/// `force`: merge whatever it saves (the row was written under `frag`
/// already in this checkpoint, and a plain write would replace that).
///
/// Returns false, with nothing added, when the row has no stored fragment,
/// when one does not decode (left for the reader to skip and count, as
/// before), or when the merged fragment would save less than a quarter of
/// the bytes it replaces (random values: pco packs them no better than
/// XOR, and a rewrite would only leave garbage for compactions) and the row
/// has fewer than [`MERGE_ALWAYS`] fragments. Measured at 100,000 series of
/// random values, trying pco on every such row made a checkpoint 24 s
/// where it had taken 3.6.
#[allow(clippy::too_many_arguments)]
fn merge_fragments<T: Slot>(
    key: RowKey,
    h: &Head<T>,
    fresh: &[u8],
    old: &[(Vec<u8>, Vec<u8>)],
    slots: usize,
    frag: u64,
    codec: &Codec<T>,
    force: bool,
    batch: &mut Batch,
) -> bool {
    if old.is_empty() {
        return false;
    }
    // Whether to try the sealed rows' encoding: on a row's first turns
    // (eight fragments or fewer: a seal or a memory-pressed checkpoint
    // takes a sequence too, so a turn may come late; with four, a third
    // more statsd-shaped bytes stayed unmerged), and whenever it holds a
    // fragment in another format than the checkpoint's (a merge that
    // packed before). A row whose tries did not pay (random bits: pco
    // packs them no better than XOR, and spends about 1 ms on such a row)
    // holds only XOR fragments, more than eight: it is left alone until
    // MERGE_ALWAYS, then merged in the checkpoint's encoding.
    let pack = old.len() <= 8 || old.iter().any(|(_, v)| v.first() != fresh.first());
    if !pack && !force && old.len() + 1 < MERGE_ALWAYS {
        return false;
    }
    let mut row = vec![T::absent(); slots];
    for (_, v) in old {
        let Ok(f) = decode_fragment::<T>(v, slots) else {
            return false;
        };
        for (o, v) in row.iter_mut().zip(f) {
            if v.present() {
                *o = v;
            }
        }
    }
    h.overlay(&mut row);
    // The checkpoint's encoding is made only when it is the smaller (or
    // not packing): made for every merged row only to compare, it was the
    // upkeep thread's largest cost once pco's delta search was gone (15 %
    // of its samples, at 10-30 µs a 720-slot row of statsd-shaped values).
    let merged = if !row.iter().any(T::present) {
        None
    } else if pack {
        let plain_len = (codec.plain_len)(&row);
        let packed = (codec.pack)(&row, plain_len);
        Some(if packed.len() < plain_len {
            packed
        } else {
            (codec.plain)(&row)
        })
    } else {
        Some((codec.plain)(&row))
    };
    let replaced: usize = old
        .iter()
        .map(|(_, v)| v.len() + ENTRY_BYTES)
        .sum::<usize>()
        + fresh.len()
        + ENTRY_BYTES;
    let cost = merged.as_ref().map_or(0, |m| m.len() + ENTRY_BYTES);
    if !force && old.len() + 1 < MERGE_ALWAYS && cost * 4 > replaced * 3 {
        return false;
    }
    for (k, _) in old {
        batch.delete(T::HEADS, k.clone());
    }
    if let Some(m) = merged {
        batch.put(T::HEADS, fragment_key(key, frag), m);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StorageConfig;

    /// A row taken twice in one checkpoint (its head with one chunk, a new
    /// head from a late point with a later one) keeps both takes' points:
    /// the second is merged with the first, not written over it under the
    /// same fragment key.
    #[test]
    fn a_row_taken_twice_in_one_checkpoint_keeps_both_takes() {
        let store = Store::in_memory(&StorageConfig::default()).unwrap();
        let t0 = 1_700_000_000 - 1_700_000_000 % 3600;
        let now = t0 + 100;
        let p = |t: i64, v: f64| Point {
            name: "a.b",
            timestamp: t,
            value: v,
        };
        store.write(&[p(t0 + 10, 1.0)], &[], now).unwrap();
        let id = store.index().id("a.b").unwrap();
        // A sequence that is not the row's merge turn, so only the repeat
        // makes it merge.
        let mut frag = store.inner.lock().next_frag();
        while merge_turn(id, frag) {
            frag = store.inner.lock().next_frag();
        }
        let shapes: Vec<Shape> = store.schemas.read().shapes.clone();
        let mut written = HashSet::new();
        let take = |written: &mut HashSet<RowKey>| {
            store
                .write_heads(
                    |i| &mut i.points,
                    frag,
                    &VALUE_CODEC,
                    &shapes,
                    written,
                    None,
                )
                .unwrap()
        };
        assert!(take(&mut written) > 0);
        store.write(&[p(t0 + 20, 2.0)], &[], now).unwrap();
        assert!(take(&mut written) > 0);
        let f = store.fetch(id, t0, t0 + 60, now).unwrap().unwrap();
        let at = |t: i64| f.values[usize::try_from((t - f.from) / i64::from(f.step)).unwrap()];
        assert_eq!((at(t0 + 10), at(t0 + 20)), (1.0, 2.0), "{:?}", f.values);
    }

    /// A checkpoint cut short after writing fragments (a crash before its
    /// last batch) has stored its fragment sequence: the store opened
    /// after it never takes that sequence again, so no later fragment
    /// lands on the same key as one of its fragments.
    #[test]
    fn a_checkpoint_cut_short_never_has_its_fragment_sequence_taken_again() {
        let kv = Arc::new(crate::mem::MemKv::new());
        let cfg = StorageConfig::default();
        let t0 = 1_700_000_000 - 1_700_000_000 % 3600;
        let now = t0 + 100;
        let frag = {
            let store = Store::open(kv.clone(), Path::new(":memory:"), &cfg, 0).unwrap();
            let p = Point {
                name: "a.b",
                timestamp: t0 + 10,
                value: 1.0,
            };
            store.write(&[p], &[], now).unwrap();
            let frag = store.inner.lock().next_frag();
            let shapes: Vec<Shape> = store.schemas.read().shapes.clone();
            let n = store
                .write_heads(
                    |i| &mut i.points,
                    frag,
                    &VALUE_CODEC,
                    &shapes,
                    &mut HashSet::new(),
                    None,
                )
                .unwrap();
            assert_eq!(n, 1);
            // Dropped here, as by kill -9 before the checkpoint's last
            // batch: the log still holds the point.
            frag
        };
        let store = Store::open(kv, Path::new(":memory:"), &cfg, 0).unwrap();
        let again = store.inner.lock().next_frag();
        assert!(again > frag, "sequence {frag} taken again as {again}");
        let id = store.index().id("a.b").unwrap();
        let f = store.fetch(id, t0, t0 + 60, now).unwrap().unwrap();
        assert_eq!(f.values[0], 1.0, "{:?}", f.values);
    }
}
