//! Reads: whisper's fetch over rows put together from the engine and
//! memory.
//!
//! A row is its stored record and fragments (`open::stored_row`) with what
//! memory holds over them. What memory holds is copied first, under the
//! lock, and the engine is read after, with no lock: a checkpoint that
//! writes the copied heads in between leaves the engine holding the same
//! points, so the copy laid over it is still right. In a coarser archive,
//! the stretch whose finer rows are not sealed yet has no stored points:
//! it is rolled up here from the finer rows, with the rules the seal will
//! use to store it (`rollup.rs`).

use super::open::{stored_row, Overlay};
use super::rollup::Rule;
use super::*;

impl Store {
    /// whisper's fetch, on our rows.
    pub fn fetch(
        &self,
        id: u32,
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Option<Fetched>, StoreError> {
        let (schema, rule) = match self.index.read().series.get(id as usize) {
            Some(s) => (
                s.schema,
                Rule {
                    method: s.method,
                    xff: s.xff,
                    link: s.link,
                },
            ),
            None => return Ok(None),
        };
        let (mut from, mut until) = (from, until);
        if from > until {
            std::mem::swap(&mut from, &mut until);
        }
        let schemas = self.schemas.read();
        let r = &schemas.list[schema as usize];
        let shape = schemas.shapes[schema as usize].clone();
        let oldest = now - r.max_retention() as i64;
        if from > now || until < oldest {
            return Ok(None);
        }
        from = from.max(oldest);
        until = until.min(now);
        let a = r.archive_for_read(now - from);
        drop(schemas);
        let step = shape.steps[a] as i64;
        let from_i = from - from.rem_euclid(step) + step;
        let mut until_i = until - until.rem_euclid(step) + step;
        if from_i == until_i {
            until_i += step;
        }
        let n = ((until_i - from_i) / step) as usize;
        let mut values = vec![f64::NAN; n];
        let span = shape.spans[a] as i64;
        let mut start = from_i.max(0) - from_i.max(0).rem_euclid(span);
        while start < until_i {
            if start <= u32::MAX as i64 {
                let row = self
                    .value_row(id, schema, a, &shape, start as u32, &rule)
                    .map_err(StoreError::Read)?;
                for (i, v) in row.into_iter().enumerate() {
                    let t = start + i as i64 * step;
                    if t >= from_i && t < until_i {
                        values[((t - from_i) / step) as usize] = v;
                    }
                }
            }
            start += span;
        }
        Ok(Some(Fetched {
            from: from_i,
            until: until_i,
            step: step as u32,
            values,
        }))
    }

    /// A timer's merged histogram over `[from, until)` at the archive a
    /// read from `from` would use, with that archive's step.
    pub fn fetch_hists(
        &self,
        id: u32,
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Option<HistWindow>, StoreError> {
        let schema = match self.index.read().hists.get(id as usize) {
            Some(h) => h.schema,
            None => return Ok(None),
        };
        let schemas = self.schemas.read();
        let r = &schemas.list[schema as usize];
        let shape = schemas.shapes[schema as usize].clone();
        let oldest = now - r.max_retention() as i64;
        let (from, until) = (from.max(oldest), until.min(now));
        if from > until {
            return Ok(None);
        }
        let a = r.archive_for_read(now - from);
        drop(schemas);
        let step = shape.steps[a] as i64;
        let span = shape.spans[a] as i64;
        let from_i = from - from.rem_euclid(step) + step;
        let until_i = (until - until.rem_euclid(step) + step).max(from_i + step);
        let n = ((until_i - from_i) / step) as usize;
        let mut out: Vec<Option<Hist>> = vec![None; n];
        let mut start = from_i.max(0) - from_i.max(0).rem_euclid(span);
        while start < until_i {
            if start <= u32::MAX as i64 {
                let row = self
                    .hist_row(id, schema, a, &shape, start as u32)
                    .map_err(StoreError::Read)?;
                for (i, h) in row.into_iter().enumerate() {
                    let t = start + i as i64 * step;
                    if t >= from_i && t < until_i {
                        out[((t - from_i) / step) as usize] = h;
                    }
                }
            }
            start += span;
        }
        Ok(Some((from_i, step as u32, out)))
    }

    /// Where the stored points of archive `a` end: from this time on, they
    /// are rolled up from the finer archive at read (`None` for the
    /// finest, which stores everything).
    fn rolled_from(&self, schema: u16, a: usize) -> Option<i64> {
        if a == 0 {
            return None;
        }
        let inner = self.inner.lock();
        Some(
            inner
                .sealed
                .get(&(schema, (a - 1) as u8))
                .map_or(0, |&s| s as i64),
        )
    }

    /// One value row, whole: what the engine and memory hold, and in a
    /// coarser archive the stretch not sealed yet rolled up from the finer
    /// rows.
    pub(super) fn value_row(
        &self,
        id: u32,
        schema: u16,
        a: usize,
        shape: &Shape,
        start: u32,
        rule: &Rule,
    ) -> Result<Vec<f64>, KvError> {
        let key = RowKey {
            schema,
            archive: a as u8,
            start,
            series: id,
        };
        let overlay: Overlay<f64> = self.inner.lock().points.overlay_of(key);
        let mut row = self.engine_row::<f64>(key, shape.slots[a] as usize)?;
        overlay.apply(&mut row);
        let Some(rolled) = self.rolled_from(schema, a) else {
            return Ok(row);
        };
        let span = shape.spans[a] as i64;
        let (start, end) = (start as i64, start as i64 + span);
        if end <= rolled {
            return Ok(row);
        }
        let step = shape.steps[a] as i64;
        let from = rolled.max(start);
        let fspan = shape.spans[a - 1] as i64;
        let mut fstart = from - from.rem_euclid(fspan);
        while fstart < end {
            let finer = self.value_row(id, schema, a - 1, shape, fstart as u32, rule)?;
            let hists = match rule.link {
                Some((hid, _)) => Some(self.hist_row(hid, schema, a - 1, shape, fstart as u32)?),
                None => None,
            };
            for (bucket, v) in rollup::roll_values(
                shape,
                a,
                fstart as u32,
                from,
                rule,
                &finer,
                hists.as_deref(),
            ) {
                if bucket >= start && bucket < end {
                    row[((bucket - start) / step) as usize] = v;
                }
            }
            fstart += fspan;
        }
        Ok(row)
    }

    /// One histogram row, whole, as [`Store::value_row`].
    pub(super) fn hist_row(
        &self,
        id: u32,
        schema: u16,
        a: usize,
        shape: &Shape,
        start: u32,
    ) -> Result<Vec<Option<Hist>>, KvError> {
        let key = RowKey {
            schema,
            archive: a as u8,
            start,
            series: id,
        };
        let overlay = self.inner.lock().hists.overlay_of(key);
        let mut row = self.engine_row::<Option<Hist>>(key, shape.slots[a] as usize)?;
        overlay.apply(&mut row);
        let Some(rolled) = self.rolled_from(schema, a) else {
            return Ok(row);
        };
        let span = shape.spans[a] as i64;
        let (start, end) = (start as i64, start as i64 + span);
        if end <= rolled {
            return Ok(row);
        }
        let step = shape.steps[a] as i64;
        let from = rolled.max(start);
        let fspan = shape.spans[a - 1] as i64;
        let mut fstart = from - from.rem_euclid(fspan);
        while fstart < end {
            let finer = self.hist_row(id, schema, a - 1, shape, fstart as u32)?;
            for (bucket, h) in rollup::roll_hists(shape, a, fstart as u32, from, &finer) {
                if bucket >= start && bucket < end {
                    row[((bucket - start) / step) as usize] = Some(h);
                }
            }
            fstart += fspan;
        }
        Ok(row)
    }

    /// A row as the engine holds it; damage is counted and read as empty.
    fn engine_row<T: open::Slot>(&self, key: RowKey, slots: usize) -> Result<Vec<T>, KvError> {
        let mut corrupt = 0;
        let (row, _) = stored_row::<T>(&*self.kv, key, slots, &mut corrupt)?;
        if corrupt > 0 {
            self.stats.corrupt_rows.fetch_add(corrupt, Relaxed);
        }
        Ok(row)
    }
}
