//! The write path: names to ids, the log first, then memory.

use super::*;

impl Store {
    /// Stores a batch of points and timer histograms (histograms are named
    /// like the timer's branch). Returns what was accepted once the batch
    /// is in the log: a point whose write returned `Ok` survives a crash of
    /// the process. An engine failure is counted and returned, and the
    /// points stay in memory (and reads) until a checkpoint can write them.
    pub fn write(
        &self,
        points: &[Point<'_>],
        hists: &[(&str, i64, Hist)],
        now: i64,
    ) -> Result<Written, StoreError> {
        self.write_linked(points, hists, &[], now)
    }

    /// [`Store::write`], with the timer statistics among `points` linked
    /// to their histograms among `hists` (the statsd flush's write).
    pub fn write_linked(
        &self,
        points: &[Point<'_>],
        hists: &[(&str, i64, Hist)],
        links: &[StatLink],
        now: i64,
    ) -> Result<Written, StoreError> {
        self.write_flush(points, hists, links, &[], now)
    }

    /// [`Store::write_linked`], with rates among `points` linked to their
    /// counts too (the statsd flush's write).
    pub fn write_flush(
        &self,
        points: &[Point<'_>],
        hists: &[(&str, i64, Hist)],
        links: &[StatLink],
        rates: &[RateLink],
        now: i64,
    ) -> Result<Written, StoreError> {
        let started = Instant::now();
        let _gate = self.gate.read();
        let (targets, htargets) = self.resolve(points, hists, links, rates);
        let entry = wal::Entry {
            now,
            points: points
                .iter()
                .zip(&targets)
                .filter_map(|(p, t)| t.map(|t| (t.id, p.timestamp, p.value)))
                .collect(),
            hists: hists
                .iter()
                .zip(&htargets)
                .filter_map(|((_, ts, h), t)| t.map(|t| (t.0, *ts, h.clone())))
                .collect(),
        };
        // What a mirror gets: each accepted point's retention text (copied:
        // the schemas' lock is not held while the mirror runs) and method.
        let mirror = self.mirror.get().map(|m| {
            let texts: Vec<String> = self
                .schemas
                .read()
                .list
                .iter()
                .map(|r| r.text.clone())
                .collect();
            let index = self.index.read();
            let kinds: Vec<Option<MirrorKind>> = targets
                .iter()
                .map(|t| {
                    t.as_ref().map(|t| {
                        let link = index
                            .series
                            .get(t.id as usize)
                            .and_then(|s| s.link_code())
                            .map(|(h, code)| (index.hist_name(h).to_string(), code));
                        (t.schema, t.rule.method, link)
                    })
                })
                .collect();
            drop(index);
            let hkept: Vec<bool> = htargets.iter().map(Option::is_some).collect();
            (m.clone(), texts, kinds, hkept)
        });
        let refused = (targets.iter().filter(|t| t.is_none()).count()
            + htargets.iter().filter(|t| t.is_none()).count()) as u64;
        let targets: Vec<Option<Target>> = targets.into_iter().flatten().map(Some).collect();
        let htargets: Vec<Option<(u32, u16)>> = htargets.into_iter().flatten().map(Some).collect();
        let bytes = entry.encode();
        // The log write holds only the log's tail: readers, the checkpoint
        // and writers resolving names go on meanwhile.
        let mut tail = self.log.lock();
        let seq = tail.next_seq;
        tail.next_seq += 1;
        let mut batch = Batch::default();
        let records_upto = self.pending.lock().add_to(&mut batch);
        batch.put(Space::Log, wal::key(seq).to_vec(), bytes.clone());
        let logged = self.kv.write(batch);
        if logged.is_ok() {
            self.pending.lock().written(records_upto);
        } else {
            self.stats.write_errors.fetch_add(1, Relaxed);
        }
        let applied = self.apply_live(seq, &entry, &bytes, logged.is_ok(), &targets, &htargets);
        drop(tail);
        if let Some((m, texts, kinds, hkept)) = &mirror {
            mirror_batch(&**m, texts, kinds, points, hists, hkept, now);
        }
        self.stats.batches.fetch_add(1, Relaxed);
        self.stats.write_nanos.fetch_add(
            u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX),
            Relaxed,
        );
        let mut written = match applied {
            Ok(w) => w,
            Err(e) => {
                self.stats.write_errors.fetch_add(1, Relaxed);
                return Err(StoreError::Write(e));
            }
        };
        written.refused = refused;
        self.stats
            .points_accepted
            .fetch_add(written.accepted, Relaxed);
        self.stats
            .points_too_old
            .fetch_add(written.too_old, Relaxed);
        self.stats
            .points_too_new
            .fetch_add(written.too_new, Relaxed);
        match logged {
            Err(e) => Err(StoreError::Write(e)),
            Ok(()) => Ok(written),
        }
    }

    /// Applies a live batch to memory. Stored rows it needs (late points,
    /// rows taken up again after a restart, rows derived from them) are
    /// read with no lock held, then the batch is applied under the locks
    /// from what was read; a row that left memory in between (a checkpoint
    /// committed it) is looked for again, a few times, before it is read
    /// under the lock.
    fn apply_live(
        &self,
        seq: u64,
        entry: &wal::Entry,
        bytes: &[u8],
        logged: bool,
        targets: &[Option<Target>],
        htargets: &[Option<(u32, u16)>],
    ) -> Result<Written, KvError> {
        let mut read = Prefetched::new(self.kv.clone());
        let mut rounds = 0;
        loop {
            let index = self.index.read();
            let schemas = self.schemas.read();
            let mut inner = self.inner.lock();
            for schema in targets
                .iter()
                .flatten()
                .map(|t| t.schema)
                .chain(htargets.iter().flatten().map(|h| h.1))
            {
                inner.init_marks(&schemas.shapes[schema as usize], schema, entry.now);
            }
            let wanted = if rounds < 4 {
                self.rows_to_read(&inner, &index, &schemas, entry, targets, htargets, &read)
            } else {
                Vec::new()
            };
            if wanted.is_empty() {
                if logged {
                    inner.log_bytes += bytes.len() as u64;
                    inner.log_sizes.push_back((seq, bytes.len() as u64));
                    self.stats.log_bytes.store(inner.log_bytes, Relaxed);
                } else {
                    inner.log_gap = true;
                    let n = (entry.points.len() + entry.hists.len()) as u64;
                    inner.unlogged_bytes += bytes.len();
                    inner.unlogged.push_back((seq, bytes.to_vec(), n));
                    while inner.unlogged_bytes > MAX_UNLOGGED_BYTES {
                        let Some((s, b, n)) = inner.unlogged.pop_front() else {
                            break;
                        };
                        inner.unlogged_bytes -= b.len();
                        inner.unprotected_points += n;
                        inner.unprotected_upto = inner.unprotected_upto.max(s + 1);
                    }
                }
                inner.points.stamp = seq;
                inner.hists.stamp = seq;
                let w = self.apply(
                    &mut inner, &read, &index, &schemas, entry, targets, htargets,
                );
                inner.next_seq = seq + 1;
                self.stats
                    .reads_under_lock
                    .fetch_add(read.fallbacks.load(Relaxed), Relaxed);
                return w;
            }
            drop(inner);
            drop(schemas);
            drop(index);
            read.fetch(wanted)?;
            rounds += 1;
        }
    }

    /// The stored rows applying `e` may read that are neither in memory nor
    /// already read: per point and archive, its row if not open or unsaved
    /// and possibly stored; the rows derived from it under the same key (it
    /// may pin them); and the sources of any derived row read so far (its
    /// decoding reads them).
    #[allow(clippy::too_many_arguments)]
    fn rows_to_read(
        &self,
        inner: &Inner,
        index: &Index,
        schemas: &Schemas,
        e: &wal::Entry,
        targets: &[Option<Target>],
        htargets: &[Option<(u32, u16)>],
        read: &Prefetched,
    ) -> Vec<(Space, Vec<u8>)> {
        let latest = self.latest(e.now);
        let mut want: Vec<(Space, Vec<u8>)> = Vec::new();
        let need = |space: Space, key: RowKey, missing: bool, want: &mut Vec<_>| {
            let k = key.encode().to_vec();
            if missing && !read.has(space, &k) {
                want.push((space, k));
            }
        };
        let touch = |source: Source, id: u32, schema: u16, ts: i64, want: &mut Vec<_>| {
            let shape = &schemas.shapes[schema as usize];
            for a in 0..shape.steps.len() {
                let (start, _) = locate(shape, a, ts);
                // The common case, a point for a row not sealed, goes to
                // its head and reads nothing; nor does its rollup, which
                // waits for the seal.
                if !inner.is_sealing(shape, schema, a, start) {
                    break;
                }
                let key = RowKey {
                    schema,
                    archive: archive_byte(a),
                    start,
                    series: id,
                };
                let (space, missing) = match source {
                    Source::Points(_) => (Space::Rows, !inner.points.unsaved.contains_key(&key)),
                    Source::Hist(_) => (Space::Hists, !inner.hists.unsaved.contains_key(&key)),
                };
                need(space, key, missing, want);
                for d in derive::dependents(index, source) {
                    if index.series.get(d as usize).map(|s| s.schema) != Some(schema) {
                        continue;
                    }
                    let dk = RowKey { series: d, ..key };
                    need(
                        Space::Rows,
                        dk,
                        !inner.points.unsaved.contains_key(&dk),
                        want,
                    );
                }
            }
        };
        for ((_, ts, _), t) in e.hists.iter().zip(htargets) {
            let Some((id, schema)) = *t else { continue };
            if *ts > latest || *ts < 0 || *ts > i64::from(u32::MAX) {
                continue;
            }
            touch(Source::Hist(id), id, schema, *ts, &mut want);
        }
        for (&(_, ts, _), t) in e.points.iter().zip(targets) {
            let Some(t) = *t else { continue };
            if ts > latest || ts < 0 || ts > i64::from(u32::MAX) {
                continue;
            }
            touch(Source::Points(t.id), t.id, t.schema, ts, &mut want);
        }
        for (space, key, bytes) in read.derived_rows() {
            let Some(key) = RowKey::decode(key) else {
                continue;
            };
            let Some(slots) = schemas
                .shapes
                .get(key.schema as usize)
                .and_then(|s| s.slots.get(key.archive as usize))
            else {
                continue;
            };
            debug_assert_eq!(space, Space::Rows);
            for src in derive::stored_sources(bytes, *slots as usize) {
                let (space, series) = match src {
                    Source::Points(p) => (Space::Rows, p),
                    Source::Hist(h) => (Space::Hists, h),
                };
                let k = RowKey { series, ..key }.encode().to_vec();
                if !read.has(space, &k) {
                    want.push((space, k));
                }
            }
        }
        want.sort();
        want.dedup();
        want
    }

    /// Names to ids, creating series (and their schema) on first sight,
    /// within the caps, and links stats to histograms as `links` say. A
    /// series' record joins the pending records in the same critical
    /// section that gives it its id or changes its link (see [`Pending`]).
    #[allow(clippy::type_complexity)]
    fn resolve(
        &self,
        points: &[Point<'_>],
        hists: &[(&str, i64, Hist)],
        links: &[StatLink],
        rates: &[RateLink],
    ) -> (Vec<Option<Target>>, Vec<Option<(u32, u16)>>) {
        let targets = |index: &Index, ids: &[Option<u32>], hids: &[Option<u32>]| {
            (
                ids.iter()
                    .map(|id| id.and_then(|id| target(index, id)))
                    .collect(),
                hids.iter()
                    .map(|id| id.and_then(|id| hist_target(index, id)))
                    .collect(),
            )
        };
        {
            let index = self.index.read();
            let ids: Option<Vec<Option<u32>>> =
                points.iter().map(|p| index.id(p.name).map(Some)).collect();
            let hids: Option<Vec<Option<u32>>> =
                hists.iter().map(|h| index.hist_id(h.0).map(Some)).collect();
            if let (Some(ids), Some(hids)) = (ids, hids) {
                if !links
                    .iter()
                    .any(|l| link_wanted(&index, l, &ids, &hids).is_some())
                    && !rates.iter().any(|r| rate_wanted(&index, r, &ids).is_some())
                {
                    return targets(&index, &ids, &hids);
                }
            }
        }
        let mut index = self.index.write();
        let mut refused = 0u64;
        let mut hids = Vec::with_capacity(hists.len());
        for (name, _, _) in hists {
            let id = match index.hist_id(name) {
                Some(id) => Some(id),
                None if self.may_create(&index, name) => {
                    let a = self.rules.assign(name);
                    self.schema_id(&a.retention).map(|schema| {
                        let id = index.add_hist(name, schema);
                        let (k, v) =
                            series_record(SERIES_HISTS, name, id, schema, Method::Sum, 0.0, None);
                        self.pending.lock().push(Space::Series, k, v);
                        id
                    })
                }
                None => None,
            };
            refused += u64::from(id.is_none());
            hids.push(id);
        }
        let mut ids = Vec::with_capacity(points.len());
        for p in points {
            let id = match index.id(p.name) {
                Some(id) => Some(id),
                None if self.may_create(&index, p.name) => {
                    let a = self.rules.assign(p.name);
                    self.schema_id(&a.retention).map(|schema| {
                        let id = index.add_series(p.name, schema, a.method, a.xff);
                        let (k, v) =
                            series_record(SERIES_POINTS, p.name, id, schema, a.method, a.xff, None);
                        self.pending.lock().push(Space::Series, k, v);
                        id
                    })
                }
                None => None,
            };
            refused += u64::from(id.is_none());
            ids.push(id);
        }
        // A link made or changed rewrites the series' record with it; the
        // record is pending before any point of this batch is logged, so a
        // restart finds the link with the points.
        for l in links {
            let Some((id, hist, code)) = link_wanted(&index, l, &ids, &hids) else {
                continue;
            };
            if index.link(id, hist, code) {
                self.pend_link(&index, id, points[l.point].name);
            }
        }
        for r in rates {
            let Some((id, count)) = rate_wanted(&index, r, &ids) else {
                continue;
            };
            if index.link_rate(id, count) {
                self.pend_link(&index, id, points[r.rate].name);
            }
        }
        let out = targets(&index, &ids, &hids);
        drop(index);
        if refused > 0 {
            self.caps.refused(
                refused,
                self.opts.max_series,
                self.opts.max_new_series_per_minute,
            );
        }
        out
    }

    /// Makes series `id`'s record, with its link as it is now, pending.
    fn pend_link(&self, index: &Index, id: u32, name: &str) {
        let s = index.series[id as usize];
        let (k, v) = series_record(
            SERIES_POINTS,
            name,
            id,
            s.schema,
            s.method,
            s.xff,
            s.record_link(),
        );
        self.pending.lock().push(Space::Series, k, v);
    }

    /// Whether a new series may be created now (the caller holds the
    /// index's write lock, so the count cannot move meanwhile).
    fn may_create(&self, index: &Index, name: &str) -> bool {
        if name.len() > MAX_NAME_BYTES || name.is_empty() {
            self.caps.note(Refusal::Name);
            return false;
        }
        if index.len() + index.hists.len() >= self.opts.max_series {
            self.caps.note(Refusal::Total);
            return false;
        }
        if !self.caps.memory_allows_new() {
            return false;
        }
        if !self.caps.take_new(self.opts.max_new_series_per_minute) {
            self.caps.note(Refusal::Rate);
            return false;
        }
        true
    }

    /// The id of a retention schema, adding it (and its record, to the
    /// pending records) on first use. Called under the index's write lock.
    /// Sends every batch accepted from now on to `m` as well (once; a
    /// second mirror is refused).
    pub fn set_mirror(&self, m: Arc<dyn mirror::Mirror>) -> bool {
        self.mirror.set(m).is_ok()
    }

    /// `None` once every 16-bit schema id is taken: the series is then
    /// refused (an id that wrapped around would rewrite schema 0's record).
    fn schema_id(&self, text: &str) -> Option<u16> {
        if let Some(&id) = self.schemas.read().by_text.get(text) {
            return Some(id);
        }
        let mut schemas = self.schemas.write();
        if let Some(&id) = schemas.by_text.get(text) {
            return Some(id);
        }
        // Rules were validated at start-up, so their texts parse.
        let r = Retention::parse(text).unwrap_or_else(|_| {
            Retention::parse(schema::DEFAULT_RETENTION).unwrap_or_else(|_| unreachable!())
        });
        let id = schemas.add(r)?;
        self.pending
            .lock()
            .push(Space::Meta, meta_schema_key(id), text.as_bytes().to_vec());
        Some(id)
    }

    /// The newest timestamp a batch written at `now` may hold
    /// (`max_future` ahead; a clock or setting past i64 saturates).
    fn latest(&self, now: i64) -> i64 {
        now.saturating_add(i64::try_from(self.opts.max_future.as_secs()).unwrap_or(i64::MAX))
    }

    /// Applies one batch to memory: histograms first (their rollups feed
    /// the timer stats' rollups), then points.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn apply(
        &self,
        inner: &mut Inner,
        kv: &dyn Kv,
        index: &Index,
        schemas: &Schemas,
        e: &wal::Entry,
        targets: &[Option<Target>],
        htargets: &[Option<(u32, u16)>],
    ) -> Result<Written, KvError> {
        let mut w = Written::default();
        let latest = self.latest(e.now);
        for ((_, ts, h), t) in e.hists.iter().zip(htargets) {
            let Some((id, schema)) = *t else { continue };
            let r = &schemas.list[schema as usize];
            // Out of the u32 seconds rows are keyed by, as for points (and
            // as `rows_to_read` skips them).
            if *ts > latest || *ts < 0 || *ts > i64::from(u32::MAX) {
                continue;
            }
            if r.archive_for_age(e.now - ts).is_none() {
                continue;
            }
            let shape = &schemas.shapes[schema as usize];
            put_hist(inner, kv, index, shape, id, schema, *ts, h.clone())?;
        }
        for (&(_, ts, v), t) in e.points.iter().zip(targets) {
            let Some(t) = *t else { continue };
            if ts > latest || ts < 0 || ts > i64::from(u32::MAX) {
                w.too_new += 1;
                continue;
            }
            let r = &schemas.list[t.schema as usize];
            if r.archive_for_age(e.now - ts).is_none() {
                w.too_old += 1;
                continue;
            }
            let shape = &schemas.shapes[t.schema as usize];
            put_point(inner, kv, index, shape, &t, ts, v)?;
            w.accepted += 1;
        }
        Ok(w)
    }
}

/// The link `l` asks for that `index` does not hold yet, as (series,
/// histogram, stat); `None` when it holds it, or it cannot be made (an id
/// refused or out of range, a field that names no stat, two schemas).
fn link_wanted(
    index: &Index,
    l: &StatLink,
    ids: &[Option<u32>],
    hids: &[Option<u32>],
) -> Option<(u32, u32, index::StatCode)> {
    let id = (*ids.get(l.point)?)?;
    let hist = (*hids.get(l.hist)?)?;
    let code = l.stat;
    let s = index.series.get(id as usize)?;
    let h = index.hists.get(hist as usize)?;
    (s.schema == h.schema && s.link_code() != Some((hist, code))).then_some((id, hist, code))
}

/// The rate link `r` asks for that `index` does not hold yet, as (rate,
/// count); `None` when it holds it or an id is missing ([`Index::link_rate`]
/// refuses the rest).
fn rate_wanted(index: &Index, r: &RateLink, ids: &[Option<u32>]) -> Option<(u32, u32)> {
    let id = (*ids.get(r.rate)?)?;
    let count = (*ids.get(r.count)?)?;
    let s = index.series.get(id as usize)?;
    let c = index.series.get(count as usize)?;
    (s.rate_of() != Some(count) && s.schema == c.schema && id != count && c.rate_of().is_none())
        .then_some((id, count))
}

pub(super) fn target(index: &Index, id: u32) -> Option<Target> {
    let s: &SeriesInfo = index.series.get(id as usize).filter(|s| !s.hole)?;
    Some(Target {
        id,
        schema: s.schema,
        rule: rollup::Rule {
            method: s.method,
            xff: s.xff,
            link: s.link(),
        },
    })
}

pub(super) fn hist_target(index: &Index, id: u32) -> Option<(u32, u16)> {
    let h = index.hists.get(id as usize).filter(|h| !h.hole)?;
    Some((id, h.schema))
}

/// The stored rows a write reads, fetched with no lock held
/// ([`Store::apply_live`]) and served to the apply from memory. A key not
/// fetched is read from the engine (and counted: it was read under the
/// lock).
/// A row's fragments as read: (key, value) in key order.
type Fragments = Vec<(Vec<u8>, Vec<u8>)>;

struct Prefetched {
    kv: Arc<dyn Kv>,
    rows: HashMap<(Space, Vec<u8>), Option<Vec<u8>>>,
    /// Fragments of the rows fetched: (fragment space, range start) →
    /// (key, value) in key order.
    frags: HashMap<(Space, Vec<u8>), Fragments>,
    fallbacks: AtomicU64,
}

impl Prefetched {
    fn new(kv: Arc<dyn Kv>) -> Self {
        Prefetched {
            kv,
            rows: HashMap::new(),
            frags: HashMap::new(),
            fallbacks: AtomicU64::new(0),
        }
    }

    fn has(&self, space: Space, key: &[u8]) -> bool {
        self.rows.contains_key(&(space, key.to_vec()))
    }

    /// Reads each row's fragments, then the row (the order
    /// `open::stored_row` relies on).
    fn fetch(&mut self, keys: Vec<(Space, Vec<u8>)>) -> Result<(), KvError> {
        for (space, heads) in [
            (Space::Rows, Space::Heads),
            (Space::Hists, Space::HistHeads),
        ] {
            let keys: Vec<Vec<u8>> = keys
                .iter()
                .filter(|k| k.0 == space)
                .map(|k| k.1.clone())
                .collect();
            if keys.is_empty() {
                continue;
            }
            for k in &keys {
                let Some(key) = RowKey::decode(k) else {
                    continue;
                };
                let (from, to) = open::fragment_range(key);
                let mut list = Vec::new();
                self.kv.scan(heads, &from, &to, &mut |k, v| {
                    list.push((k.to_vec(), v.to_vec()));
                    true
                })?;
                self.frags.insert((heads, from), list);
            }
            let got = self.kv.multi_get(space, &keys)?;
            for (k, v) in keys.into_iter().zip(got) {
                self.rows.insert((space, k), v);
            }
        }
        Ok(())
    }

    /// Derived value rows read so far (their sources must be read too).
    fn derived_rows(&self) -> impl Iterator<Item = (Space, &[u8], &[u8])> {
        self.rows.iter().filter_map(|((space, k), v)| {
            let v = v.as_deref()?;
            (*space == Space::Rows && v.first() == Some(&derive::FORMAT_DERIVED)).then_some((
                *space,
                k.as_slice(),
                v,
            ))
        })
    }
}

impl Kv for Prefetched {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        if let Some(v) = self.rows.get(&(space, key.to_vec())) {
            return Ok(v.clone());
        }
        self.fallbacks.fetch_add(1, Relaxed);
        self.kv.get(space, key)
    }

    fn write(&self, batch: Batch) -> Result<(), KvError> {
        self.kv.write(batch)
    }

    fn scan(
        &self,
        space: Space,
        from: &[u8],
        to: &[u8],
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), KvError> {
        if let Some(list) = self.frags.get(&(space, from.to_vec())) {
            for (k, v) in list {
                if k.as_slice() >= to || !f(k, v) {
                    break;
                }
            }
            return Ok(());
        }
        if matches!(space, Space::Heads | Space::HistHeads) {
            self.fallbacks.fetch_add(1, Relaxed);
        }
        self.kv.scan(space, from, to, f)
    }

    fn disk_bytes(&self) -> u64 {
        self.kv.disk_bytes()
    }

    fn compact(&self, space: Space, from: &[u8], to: &[u8]) {
        self.kv.compact(space, from, to)
    }
}

use super::rollup::locate;

/// Where a late change at `ts` rolls up into archive `j`: the finer row and
/// first slot of its window (`per` slots), and the coarser row and slot.
struct Window {
    per: usize,
    fine: (RowKey, usize),
    coarse: (RowKey, usize),
}

fn window(shape: &Shape, j: usize, ts: i64, key: RowKey) -> Window {
    let coarse = i64::from(shape.steps[j]);
    let bucket = ts - ts.rem_euclid(coarse);
    let (fstart, fslot) = locate(shape, j - 1, bucket);
    let (cstart, cslot) = locate(shape, j, bucket);
    let at = |archive: usize, start: u32| RowKey {
        archive: archive_byte(archive),
        start,
        ..key
    };
    Window {
        per: (shape.steps[j] / shape.steps[j - 1]) as usize,
        fine: (at(j - 1, fstart), fslot),
        coarse: (at(j, cstart), cslot),
    }
}

/// Stores a point in the finest archive.
///
/// Whatever the point's age: whisper writes a point older than its finest
/// archive's retention straight into a coarser archive (the slot then holds
/// one raw value instead of a rollup, and a backfill of yesterday's data
/// rolls up differently from the same data arriving live). Here every point
/// rolls up from the finest archive, so a backfill, a replay or a catch-up
/// after an outage stores what live traffic would have; the fine rows past
/// their retention are dropped by the next retention sweep, and reads of an
/// old range use the coarse archive as whisper's fetch does.
///
/// A row not yet sealed takes the point in its head, and nothing rolls up
/// now: the seal rolls the whole row up once, and reads roll up what is not
/// sealed yet. A sealed row is changed whole, and the change rolls up at
/// once, through every coarser archive whose row is sealed too and into the
/// first one whose row is not.
fn put_point(
    inner: &mut Inner,
    kv: &dyn Kv,
    index: &Index,
    shape: &Shape,
    t: &Target,
    ts: i64,
    v: f64,
) -> Result<(), KvError> {
    let (start, slot) = locate(shape, 0, ts);
    let key = RowKey {
        schema: t.schema,
        archive: 0,
        start,
        series: t.id,
    };
    if !inner.is_sealing(shape, t.schema, 0, start) {
        inner.points.set_head(key, slot, v);
        return Ok(());
    }
    let source = Source::Points(t.id);
    if inner
        .points
        .set_sealed(kv, key, slot, shape.slots[0] as usize, v)?
    {
        pin_dependents(inner, kv, index, shape, source, t.schema, 0, start)?;
    }
    for j in 1..shape.steps.len() {
        let Window {
            per,
            fine: (fkey, fslot),
            coarse: (ckey, cslot),
        } = window(shape, j, ts, key);
        // A timer stat: the true statistic of every sample in the window,
        // from the histogram merged at this archive (rolled up just before,
        // as histograms are applied first).
        let merged = t.rule.link.and_then(|(hid, _)| {
            inner
                .hists
                .peek(
                    RowKey {
                        series: hid,
                        ..ckey
                    },
                    cslot,
                )
                .flatten()
        });
        let value = inner
            .points
            .unsaved_window(fkey, fslot, per, |finer| {
                rollup::value(&t.rule, finer, per, merged.as_ref())
            })
            .flatten();
        let Some(value) = value else { break };
        if !inner.is_sealing(shape, t.schema, j, ckey.start) {
            inner.points.set_head(ckey, cslot, value);
            break;
        }
        if inner
            .points
            .set_sealed(kv, ckey, cslot, shape.slots[j] as usize, value)?
        {
            pin_dependents(inner, kv, index, shape, source, t.schema, j, ckey.start)?;
        }
    }
    Ok(())
}

/// A stored row of `source` is about to change (a late point into a
/// sealed row): the rows derived from it under the same key are brought
/// into memory first, decoded against the stored source, so the checkpoint
/// that writes the changed source rewrites them too (`derive`). Only this
/// path changes a sealed source row: rows not sealed are never a derived
/// row's source.
#[allow(clippy::too_many_arguments)]
fn pin_dependents(
    inner: &mut Inner,
    kv: &dyn Kv,
    index: &Index,
    shape: &Shape,
    source: Source,
    schema: u16,
    archive: usize,
    start: u32,
) -> Result<(), KvError> {
    for d in derive::dependents(index, source) {
        if index.series.get(d as usize).map(|s| s.schema) != Some(schema) {
            continue;
        }
        let key = RowKey {
            schema,
            archive: archive_byte(archive),
            start,
            series: d,
        };
        inner.points.pin(kv, key, shape.slots[archive] as usize)?;
    }
    Ok(())
}

/// Stores a histogram in the finest archive, as [`put_point`] does a
/// point; coarser archives take the merge of the finer window.
#[allow(clippy::too_many_arguments)]
fn put_hist(
    inner: &mut Inner,
    kv: &dyn Kv,
    index: &Index,
    shape: &Shape,
    id: u32,
    schema: u16,
    ts: i64,
    h: Hist,
) -> Result<(), KvError> {
    let (start, slot) = locate(shape, 0, ts);
    let key = RowKey {
        schema,
        archive: 0,
        start,
        series: id,
    };
    if !inner.is_sealing(shape, schema, 0, start) {
        inner.hists.set_head(key, slot, Some(h));
        return Ok(());
    }
    let source = Source::Hist(id);
    if inner
        .hists
        .set_sealed(kv, key, slot, shape.slots[0] as usize, Some(h))?
    {
        pin_dependents(inner, kv, index, shape, source, schema, 0, start)?;
    }
    for j in 1..shape.steps.len() {
        let Window {
            per,
            fine: (fkey, fslot),
            coarse: (ckey, cslot),
        } = window(shape, j, ts, key);
        let merged = inner
            .hists
            .unsaved_window(fkey, fslot, per, rollup::merge)
            .flatten();
        let Some(merged) = merged else { break };
        if !inner.is_sealing(shape, schema, j, ckey.start) {
            inner.hists.set_head(ckey, cslot, Some(merged));
            break;
        }
        if inner
            .hists
            .set_sealed(kv, ckey, cslot, shape.slots[j] as usize, Some(merged))?
        {
            pin_dependents(inner, kv, index, shape, source, schema, j, ckey.start)?;
        }
    }
    Ok(())
}

/// What a mirror is told of an accepted point's series: its schema, its
/// method, and a timer statistic's histogram (by name) and statistic.
type MirrorKind = (u16, Method, Option<(String, index::StatCode)>);

/// Hands an accepted batch to a mirror: the points and histograms the
/// store took (`kinds` is `None`, `hkept` false, for refused ones).
fn mirror_batch(
    m: &dyn mirror::Mirror,
    texts: &[String],
    kinds: &[Option<MirrorKind>],
    points: &[Point<'_>],
    hists: &[(&str, i64, Hist)],
    hkept: &[bool],
    now: i64,
) {
    let points: Vec<mirror::MirroredPoint<'_>> = points
        .iter()
        .zip(kinds)
        .filter_map(|(p, k)| {
            let (schema, method, link) = k.as_ref()?;
            Some(mirror::MirroredPoint {
                name: p.name,
                timestamp: p.timestamp,
                value: p.value,
                retention: texts.get(*schema as usize).map_or("", String::as_str),
                method: *method,
                link: link.as_ref().map(|(h, c)| (h.as_str(), *c)),
            })
        })
        .collect();
    let hists: Vec<mirror::MirroredHist<'_>> = hists
        .iter()
        .zip(hkept)
        .filter(|(_, &kept)| kept)
        .map(|((name, timestamp, hist), _)| mirror::MirroredHist {
            name,
            timestamp: *timestamp,
            hist,
        })
        .collect();
    m.accepted(&points, &hists, now);
}
