//! Retention: rows past what each archive keeps (or past `keep_locally`
//! when ClickHouse holds the history), deleted by range.

use super::*;

impl Store {
    /// Deletes rows older than each archive keeps. Returns the ranges
    /// deleted (a family's rows of one archive each).
    pub fn enforce_retention(&self, now: i64) -> Result<usize, StoreError> {
        // Not while a checkpoint writes: between its batch and its commit,
        // a row it just wrote is neither fresh nor safe to delete, and a
        // sweep then deleted it (a backfill lost points that way, 1 run in
        // a few of the test below on RocksDB).
        let _no_checkpoint = self.checkpointing.lock();
        let mut candidates = Vec::new();
        // The deletes and the compaction run with no lock held.
        let schemas = self.schemas.read();
        let mut inner = self.inner.lock();
        let keep = self.opts.keep_at_most.map_or(u64::MAX, |d| d.as_secs());
        // Schema ids are u16 (`Schemas::add` gives out no more).
        for (sid, (r, shape)) in (0..=u16::MAX).zip(schemas.list.iter().zip(&schemas.shapes)) {
            for (a, arch) in r.archives.iter().enumerate() {
                let ab = archive_byte(a);
                let cutoff = now
                    .saturating_sub(i64::try_from(arch.retention().min(keep)).unwrap_or(i64::MAX));
                // Rows that end at or before the cutoff hold nothing a read
                // can reach. A row not sealed yet stays whatever its age:
                // the coarser archive's points under it are rolled up from
                // it when it seals (a retention shorter than a row's span
                // and grace would otherwise lose them).
                let sealed = inner.sealed.get(&(sid, ab)).map_or(0, |&s| i64::from(s));
                // Nor a row a checkpoint wrote since the last sweep: a
                // backfill may still be filling it (it goes at the next).
                // Rows that end at or before the oldest such row's start,
                // then: its end, as this said before, let the sweep delete
                // that row itself, and a backfill's next point took it back
                // empty (the backfill test below lost points so in 5 runs of
                // 10 on a loaded machine once checkpoints were faster).
                let fresh = inner
                    .fresh_rows
                    .get(&(sid, ab))
                    .map_or(i64::MAX, |&s| i64::from(s));
                let end_start = cutoff.min(sealed).min(fresh) - i64::from(shape.spans[a]) + 1;
                if end_start <= 0 {
                    continue;
                }
                let end_start = u32::try_from(end_start).unwrap_or(u32::MAX);
                let from = RowKey::prefix(sid, ab, 0).to_vec();
                let to = RowKey::prefix(sid, ab, end_start).to_vec();
                candidates.push((from, to));
                let quiet = inner.checkpoint_seq;
                // Saturated past u32 seconds, which rows are keyed by.
                let expire = u32::try_from(cutoff.max(0)).unwrap_or(u32::MAX);
                inner.points.expire(sid, a, shape.spans[a], expire, quiet);
                inner.hists.expire(sid, a, shape.spans[a], expire, quiet);
            }
        }
        inner.fresh_rows.clear();
        drop(inner);
        drop(schemas);
        let mut batch = Batch::default();
        let mut ranges = Vec::new();
        // Only where there is something to delete: range tombstones in the
        // fragments families (one per archive, flushed together) made a
        // level-0 file spanning every archive's rows, and the settle's
        // next range compaction took it with the whole family, inputs and
        // output on disk at once (`du` peaks of 1.8 to 2.1 times the rows
        // at each retention pass, ramp bench at 100,000 series).
        // Fragments of rows this old are rare: a seal deletes them.
        for (from, to) in candidates {
            for space in [Space::Rows, Space::Hists, Space::Heads, Space::HistHeads] {
                if self.holds_any(space, &from, &to) {
                    batch.delete_range(space, from.clone(), to.clone());
                    ranges.push((space, from.clone(), to.clone()));
                }
            }
        }
        if batch.is_empty() {
            return Ok(0);
        }
        self.kv.write(batch).map_err(StoreError::Write)?;
        for (space, from, to) in &ranges {
            self.kv.compact(*space, from, to);
        }
        Ok(ranges.len())
    }

    /// Whether `space` holds a key in `[from, to)` (yes when it cannot
    /// tell).
    fn holds_any(&self, space: Space, from: &[u8], to: &[u8]) -> bool {
        let mut any = false;
        let read = self.kv.scan(space, from, to, &mut |_, _| {
            any = true;
            false
        });
        any || read.is_err()
    }
}
