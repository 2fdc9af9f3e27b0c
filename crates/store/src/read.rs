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
                    link: s.link(),
                },
            ),
            None => return Ok(None),
        };
        let Some((shape, w)) = self.window(schema, from, until, now) else {
            return Ok(None);
        };
        let mut values = vec![f64::NAN; w.len()];
        for start in w.rows(&shape) {
            let row = self
                .value_row(id, schema, w.archive, &shape, start, &rule)
                .map_err(StoreError::Read)?;
            w.place(start, row, &mut values);
        }
        Ok(Some(Fetched {
            from: w.from,
            until: w.until,
            step: shape.steps[w.archive],
            values,
        }))
    }

    /// A timer's merged histograms over the window [`Store::fetch`] would
    /// read for the same range, with that archive's step.
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
        let Some((shape, w)) = self.window(schema, from, until, now) else {
            return Ok(None);
        };
        let mut out: Vec<Option<Hist>> = vec![None; w.len()];
        for start in w.rows(&shape) {
            let row = self
                .hist_row(id, schema, w.archive, &shape, start)
                .map_err(StoreError::Read)?;
            w.place(start, row, &mut out);
        }
        Ok(Some((w.from, shape.steps[w.archive], out)))
    }

    /// whisper's fetch window for a read of `[from, until]` at `now`: the
    /// archive (the first whose retention covers `now − from`, after
    /// `from` is clamped to the longest retention and `until` to `now`)
    /// and the steps returned. `None` when the range is wholly outside
    /// what is kept.
    fn window(&self, schema: u16, from: i64, until: i64, now: i64) -> Option<(Shape, Window)> {
        let schemas = self.schemas.read();
        let r = schemas.list.get(schema as usize)?;
        let w = r.read_window(from, until, now)?;
        Some((
            schemas.shapes[schema as usize].clone(),
            Window {
                archive: w.archive,
                step: w.step,
                from: w.from,
                until: w.until,
            },
        ))
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
                .get(&(schema, archive_byte(a - 1)))
                .map_or(0, |&s| i64::from(s)),
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
            archive: archive_byte(a),
            start,
            series: id,
        };
        let overlay: Overlay<f64> = self.inner.lock().points.overlay_of(key);
        let mut row = self.engine_row::<f64>(key, shape.slots[a] as usize)?;
        overlay.apply(&mut row);
        let Some(u) = self
            .rolled_from(schema, a)
            .and_then(|rolled| Unrolled::of(shape, a, start, rolled))
        else {
            return Ok(row);
        };
        for &fs in &u.finer {
            let finer = self.value_row(id, schema, a - 1, shape, fs, rule)?;
            let hists = match rule.link {
                Some((hid, _)) => Some(self.hist_row(hid, schema, a - 1, shape, fs)?),
                None => None,
            };
            for (bucket, v) in
                rollup::roll_values(shape, a, fs, u.from, rule, &finer, hists.as_deref())
            {
                if let Some(i) = u.slot(bucket) {
                    row[i] = v;
                }
            }
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
            archive: archive_byte(a),
            start,
            series: id,
        };
        let overlay = self.inner.lock().hists.overlay_of(key);
        let mut row = self.engine_row::<Option<Hist>>(key, shape.slots[a] as usize)?;
        overlay.apply(&mut row);
        let Some(u) = self
            .rolled_from(schema, a)
            .and_then(|rolled| Unrolled::of(shape, a, start, rolled))
        else {
            return Ok(row);
        };
        for &fs in &u.finer {
            let finer = self.hist_row(id, schema, a - 1, shape, fs)?;
            for (bucket, h) in rollup::roll_hists(shape, a, fs, u.from, &finer) {
                if let Some(i) = u.slot(bucket) {
                    row[i] = Some(h);
                }
            }
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

/// The index of the slot `offset` seconds into a row or window, `step`
/// apart.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "callers pass an offset in 0..span of a row, or 0..until - from of a window (whose length fits a usize: see Window::len), so the index is non-negative and below the slots it indexes"
)]
#[inline]
fn slot_of(offset: i64, step: i64) -> usize {
    (offset / step) as usize
}

/// The stretch of a coarser row that a read rolls up itself from the finer
/// archive (from where the seal's rollup stops to the row's end), the one
/// walk `Store::value_row` and `Store::hist_row` share.
struct Unrolled {
    /// The row's first second and the second after it.
    start: i64,
    end: i64,
    /// Where rolling up starts: the seal's mark, or the row's start.
    from: i64,
    step: i64,
    /// Starts of the finer rows under `[from, end)`.
    finer: Vec<u32>,
}

impl Unrolled {
    /// For archive `a`'s row at `start` when the finer archive is sealed up
    /// to `rolled`; `None` when the seal rolled the whole row up.
    fn of(shape: &Shape, a: usize, start: u32, rolled: i64) -> Option<Unrolled> {
        let span = i64::from(shape.spans[a]);
        let (start, end) = (i64::from(start), i64::from(start) + span);
        if end <= rolled {
            return None;
        }
        let from = rolled.max(start);
        let fspan = i64::from(shape.spans[a - 1]);
        let mut finer = Vec::new();
        let mut fstart = from - from.rem_euclid(fspan);
        while fstart < end {
            // No row starts past u32 seconds (nor holds a point there).
            let Ok(fs) = u32::try_from(fstart) else { break };
            finer.push(fs);
            fstart += fspan;
        }
        Some(Unrolled {
            start,
            end,
            from,
            step: i64::from(shape.steps[a]),
            finer,
        })
    }

    /// The row's slot of a rolled-up bucket, if the bucket is in the row.
    fn slot(&self, bucket: i64) -> Option<usize> {
        (bucket >= self.start && bucket < self.end).then(|| slot_of(bucket - self.start, self.step))
    }
}

/// The steps a read returns: `[from, until)` of one archive, `step` apart.
struct Window {
    archive: usize,
    step: i64,
    from: i64,
    until: i64,
}

impl Window {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "read_window makes until > from, both within the archive's retention of `now` (plus a step), so the count is positive and at most the archive's points (a u32) plus two"
    )]
    fn len(&self) -> usize {
        ((self.until - self.from) / self.step) as usize
    }

    /// The starts of the archive's rows the window covers.
    fn rows(&self, shape: &Shape) -> impl Iterator<Item = u32> {
        let span = i64::from(shape.spans[self.archive]);
        let first = self.from.max(0) - self.from.max(0).rem_euclid(span);
        let until = self.until.min(i64::from(u32::MAX) + 1);
        (0..)
            .map(move |k| first + k * span)
            .take_while(move |s| *s < until)
            .map_while(|s| u32::try_from(s).ok())
    }

    /// Copies a row's slots that fall in the window into `out`.
    fn place<T>(&self, start: u32, row: Vec<T>, out: &mut [T]) {
        let mut t = i64::from(start);
        for v in row {
            if t >= self.from && t < self.until {
                out[slot_of(t - self.from, self.step)] = v;
            }
            t += self.step;
        }
    }
}
