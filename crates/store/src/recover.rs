//! Opening a store: its records, its spill file, the log replayed over the rows; and closing it.

use super::write::{hist_target, target};
use super::*;

/// Log entries decoded and applied at a time by a replay.
const REPLAY_CHUNK: usize = 256;

impl Store {
    /// Opens a store on an engine, loading its index and replaying its log.
    pub fn open(
        kv: Arc<dyn Kv>,
        path: &Path,
        cfg: &StorageConfig,
        now: i64,
    ) -> Result<Store, StoreError> {
        let rules = Rules::from_config(cfg)?;
        let opts = StoreOptions::from_config(cfg);
        let path = path.to_owned();
        let read_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let damaged = |why: String| StoreError::Damaged {
            path: path.clone(),
            why,
        };
        match kv.get(Space::Meta, META_FORMAT).map_err(read_err)? {
            Some(v) if FORMAT_UPGRADES.contains(&v.as_slice()) => {
                let mut b = Batch::default();
                b.put(Space::Meta, META_FORMAT, FORMAT_VERSION);
                kv.write(b).map_err(read_err)?;
                tracing::info!(
                    from = %String::from_utf8_lossy(&v),
                    to = %String::from_utf8_lossy(FORMAT_VERSION),
                    "store format upgraded"
                );
            }
            Some(v) if v != FORMAT_VERSION => {
                return Err(StoreError::Format {
                    path: path.clone(),
                    found: String::from_utf8_lossy(&v).into_owned(),
                    expected: String::from_utf8_lossy(FORMAT_VERSION).into_owned(),
                })
            }
            Some(_) => {}
            None => {
                let mut b = Batch::default();
                b.put(Space::Meta, META_FORMAT, FORMAT_VERSION);
                kv.write(b).map_err(read_err)?;
            }
        }
        Self::take_spill(&*kv, &path)?;
        // Schemas, in id order.
        let mut schema_rows: Vec<(u16, String)> = Vec::new();
        let end = prefix_end(META_SCHEMA);
        kv.scan(Space::Meta, META_SCHEMA, &end, &mut |k, v| {
            if let Ok(id) = k[META_SCHEMA.len()..].try_into().map(u16::from_be_bytes) {
                schema_rows.push((id, String::from_utf8_lossy(v).into_owned()));
            }
            true
        })
        .map_err(read_err)?;
        schema_rows.sort();
        let mut schemas = Schemas {
            list: vec![],
            shapes: vec![],
            by_text: HashMap::new(),
        };
        for (id, text) in schema_rows {
            if id as usize != schemas.list.len() {
                return Err(damaged(format!("schema {id} is missing its predecessors")));
            }
            let r =
                Retention::parse(&text).map_err(|e| damaged(format!("stored schema {id}: {e}")))?;
            // Dense u16 ids: always room for the next.
            schemas
                .add(r)
                .ok_or_else(|| damaged(format!("schema {id} is one too many")))?;
        }
        // Series, then histograms, each in id order; then the links.
        let mut index = Index::default();
        // Point series' links as stored (`None`: a record from before links
        // were stored, linked by its name).
        let mut links: Vec<(u32, Option<(u32, u32)>)> = Vec::new();
        for kind in [SERIES_POINTS, SERIES_HISTS] {
            let mut recs: Vec<(u32, String, u16, u8, f32)> = Vec::new();
            kv.scan(Space::Series, &[kind], &[kind + 1], &mut |k, v| {
                if v.len() == 11 || (v.len() == 19 && kind == SERIES_POINTS) {
                    let id = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
                    let schema = u16::from_be_bytes([v[4], v[5]]);
                    let xff = f32::from_le_bytes([v[7], v[8], v[9], v[10]]);
                    recs.push((
                        id,
                        String::from_utf8_lossy(&k[1..]).into_owned(),
                        schema,
                        v[6],
                        xff,
                    ));
                    if kind == SERIES_POINTS {
                        let link = (v.len() == 19).then(|| {
                            (
                                u32::from_be_bytes([v[11], v[12], v[13], v[14]]),
                                u32::from_be_bytes([v[15], v[16], v[17], v[18]]),
                            )
                        });
                        links.push((id, link));
                    }
                }
                true
            })
            .map_err(read_err)?;
            recs.sort_by_key(|r| r.0);
            let limit = recs.len() + opts.max_series;
            for (id, name, schema, method, xff) in recs {
                if id as usize >= limit {
                    return Err(damaged(format!(
                        "series {name:?} has id {id}, beyond the {limit} series there can be"
                    )));
                }
                if schema as usize >= schemas.list.len() {
                    return Err(damaged(format!(
                        "series {name:?} names unknown schema {schema}"
                    )));
                }
                let method = Method::from_code(method).unwrap_or(Method::Average);
                // Ids are dense; a gap (a record lost by an older version,
                // which could log a point before its series' record) is a
                // hole that no name reaches.
                loop {
                    let len = if kind == SERIES_POINTS {
                        index.series.len()
                    } else {
                        index.hists.len()
                    };
                    if len >= id as usize {
                        break;
                    }
                    index.add_hole(kind == SERIES_HISTS);
                }
                if kind == SERIES_POINTS {
                    index.add_series(&name, schema, method, xff);
                } else {
                    index.add_hist(&name, schema);
                }
            }
        }
        for (id, link) in links {
            match link {
                Some((count, index::RATE_BITS)) => {
                    index.link_rate(id, count);
                }
                Some((hist, bits)) => {
                    // A stat code no version writes is damage to one link:
                    // the series then rolls up by its method.
                    if let Some(code) = index::StatCode::from_bits(bits) {
                        index.link(id, hist, code);
                    }
                }
                None => index.link_legacy(id),
            }
        }
        let checkpoint_seq = match kv.get(Space::Meta, META_CHECKPOINT).map_err(read_err)? {
            Some(v) => u64::from_be_bytes(
                v.as_slice()
                    .try_into()
                    .map_err(|_| damaged("checkpoint record has the wrong length".into()))?,
            ),
            None => 0,
        };
        let mut sealed: HashMap<(u16, u8), u32> = HashMap::new();
        let end = prefix_end(META_SEALED);
        kv.scan(Space::Meta, META_SEALED, &end, &mut |k, v| {
            let k = &k[META_SEALED.len()..];
            if let (Ok(k), Ok(v)) = (<[u8; 3]>::try_from(k), <[u8; 4]>::try_from(v)) {
                sealed.insert(
                    (u16::from_be_bytes([k[0], k[1]]), k[2]),
                    u32::from_be_bytes(v),
                );
            }
            true
        })
        .map_err(read_err)?;
        let frag_seq = match kv.get(Space::Meta, META_FRAGSEQ).map_err(read_err)? {
            Some(v) => u64::from_be_bytes(
                v.as_slice()
                    .try_into()
                    .map_err(|_| damaged("fragment sequence has the wrong length".into()))?,
            ),
            None => 0,
        };
        let store = Store {
            kv,
            path,
            rules,
            opts,
            index: RwLock::new(index),
            schemas: RwLock::new(schemas),
            inner: Mutex::new(Inner {
                points: Lane::default(),
                hists: Lane::default(),
                sealing: sealed.clone(),
                fresh_rows: HashMap::new(),
                sealed,
                frag_seq,
                next_seq: checkpoint_seq,
                checkpoint_seq,
                log_bytes: 0,
                log_sizes: std::collections::VecDeque::new(),
                last_checkpoint: Instant::now(),
                log_gap: false,
                unlogged: std::collections::VecDeque::new(),
                unlogged_bytes: 0,
                unprotected_points: 0,
                unprotected_upto: 0,
            }),
            pending: Mutex::new(Pending::default()),
            caps: Caps::default(),
            log: Mutex::new(LogTail {
                next_seq: checkpoint_seq,
            }),
            checkpointing: Mutex::new(()),
            sealing_one: Mutex::new(()),
            settler: Mutex::new(None),
            settle_state: Arc::default(),
            #[cfg(test)]
            after_seal_batch: Mutex::new(None),
            gate: RwLock::new(()),
            stats: StoreStats::default(),
            mirror: std::sync::OnceLock::new(),
        };
        store.replay()?;
        let _ = now;
        Ok(store)
    }

    /// Moves a spill file left by the last stop ([`Store::close`]) into the
    /// engine, so the load and replay that follow see its records and
    /// entries as if the engine had taken them then. A spill that cannot be
    /// taken in (the disk is still full) stops the open: its entries'
    /// sequences must not be reused by new batches.
    fn take_spill(kv: &dyn Kv, path: &Path) -> Result<(), StoreError> {
        let file = spill::path_for(path);
        let damaged = |why: String| StoreError::Damaged {
            path: path.to_owned(),
            why,
        };
        let Some(sp) = spill::Spill::read(&file).map_err(|e| damaged(e.to_string()))? else {
            return Ok(());
        };
        let mut b = Batch::default();
        let points: usize = sp.entries.len();
        for (space, k, v) in sp.records {
            b.put(space, k, v);
        }
        for (seq, bytes) in sp.entries {
            b.put(Space::Log, wal::key(seq).to_vec(), bytes);
        }
        kv.write(b).map_err(|source| StoreError::Open {
            path: file.clone(),
            source,
        })?;
        std::fs::remove_file(&file).map_err(|e| damaged(format!("{}: {e}", file.display())))?;
        tracing::info!(path = %file.display(), batches = points, "spilled batches taken back into the log");
        Ok(())
    }

    /// Stops the store without losing what the engine would not take: a
    /// final compacting checkpoint; if that fails, a plain one; then the
    /// batches whose log write failed go to the log in one write; then to
    /// the spill file beside the store. Each outcome is logged as it is:
    /// where the points are, or how many are lost.
    pub fn close(&self) -> Closed {
        let first = match self.checkpoint_compact() {
            Ok(()) => {
                self.wait_for_settle();
                return Closed::Checkpointed;
            }
            Err(e) => e,
        };
        tracing::warn!(error = %first, "final checkpoint failed; retrying once");
        if self.checkpoint().is_ok() {
            return Closed::Checkpointed;
        }
        let _no_batches = self.gate.write();
        let mut inner = self.inner.lock();
        let unlogged: u64 = inner.unlogged.iter().map(|u| u.2).sum();
        let lost_anyway = inner.unprotected_points;
        let mut batch = Batch::default();
        let records_upto = self.pending.lock().add_to(&mut batch);
        for (seq, bytes, _) in &inner.unlogged {
            batch.put(Space::Log, wal::key(*seq).to_vec(), bytes.clone());
        }
        let closed = match self.kv.write(batch) {
            Ok(()) => {
                self.pending.lock().written(records_upto);
                inner.unlogged.clear();
                inner.unlogged_bytes = 0;
                Closed::Logged { points: unlogged }
            }
            Err(e) => {
                let file = spill::path_for(&self.path);
                let sp = spill::Spill {
                    records: self
                        .pending
                        .lock()
                        .records
                        .iter()
                        .map(|(_, s, k, v)| (*s, k.clone(), v.clone()))
                        .collect(),
                    entries: inner
                        .unlogged
                        .iter()
                        .map(|(s, b, _)| (*s, b.clone()))
                        .collect(),
                };
                let spilled = if self.path == Path::new(":memory:") {
                    None
                } else {
                    match sp.write(&file) {
                        Ok(()) => Some(file),
                        Err(se) => {
                            tracing::error!(error = %se, "cannot write the spill file either");
                            None
                        }
                    }
                };
                tracing::warn!(error = %e, "the store's log cannot take the unlogged batches");
                match spilled {
                    Some(path) => Closed::Spilled {
                        points: unlogged,
                        path,
                    },
                    None => Closed::Lost {
                        points: unlogged + lost_anyway,
                    },
                }
            }
        };
        match &closed {
            Closed::Logged { points } => tracing::warn!(
                points_only_in_memory_until_now = points,
                "final checkpoint failed; every point is in the log and the next start replays it"
            ),
            Closed::Spilled { points, path } => tracing::error!(
                points,
                path = %path.display(),
                "final checkpoint and log write failed (disk full?); the points whose log write had failed are in the spill file, read back at the next start"
            ),
            Closed::Checkpointed => {}
            Closed::Lost { points } => tracing::error!(
                points,
                "final checkpoint, log write and spill file all failed (disk full?): these points existed only in memory and are lost"
            ),
        }
        if lost_anyway > 0 && !matches!(closed, Closed::Lost { .. }) {
            tracing::error!(
                points = lost_anyway,
                "besides these, points beyond the unlogged-batch bound were only in memory and are lost"
            );
        }
        closed
    }

    /// Replays the log after the last checkpoint, streaming: a first pass
    /// finds the last sequence, the damage and the highest ids named; the
    /// second decodes and applies [`REPLAY_CHUNK`] entries at a time (at 1M
    /// series, decoding the whole log first held 46M points, about 0.7 GB,
    /// beside the heads they were rebuilding: 1.5 GB RSS after the reopen).
    /// A schema's seal marks start at its first entry, as on a live write.
    fn replay(&self) -> Result<(), StoreError> {
        let from = wal::key(self.inner.lock().checkpoint_seq).to_vec();
        let open_err = |source| StoreError::Open {
            path: self.path.clone(),
            source,
        };
        let mut damaged: Vec<String> = Vec::new();
        // The tail must move past every entry in the log, damaged or not,
        // so no new batch is written over one.
        let mut last_seq = None;
        let (mut max_point, mut max_hist): (Option<u32>, Option<u32>) = (None, None);
        self.kv
            .scan(Space::Log, &from, &[0xff; 9], &mut |k, v| {
                let seq = wal::seq_of(k);
                last_seq = seq.or(last_seq);
                match (seq, wal::Entry::decode(v)) {
                    (Some(_), Ok(e)) => {
                        let top = |a: Option<u32>, b: Option<u32>| a.max(b);
                        max_point = top(max_point, e.points.iter().map(|p| p.0).max());
                        max_hist = top(max_hist, e.hists.iter().map(|h| h.0).max());
                    }
                    (seq, Err(e)) => damaged.push(format!("log entry {seq:?}: {e}")),
                    (None, _) => {}
                }
                true
            })
            .map_err(open_err)?;
        if !damaged.is_empty() {
            // A torn entry cannot happen with an atomic engine; a damaged
            // one means damaged files. Each batch stands alone, so the
            // others are replayed.
            tracing::error!(
                entries = damaged.len(),
                first = damaged[0],
                "write-ahead log damaged; the damaged entries' points are lost, the others are replayed"
            );
        }
        self.reserve_logged_ids(max_point, max_hist);
        let (mut lost, mut lost_hists) = (0u64, 0u64);
        let mut cursor = from;
        loop {
            let mut chunk: Vec<(u64, Vec<u8>)> = Vec::new();
            let mut next: Option<Vec<u8>> = None;
            self.kv
                .scan(Space::Log, &cursor, &[0xff; 9], &mut |k, v| {
                    if chunk.len() == REPLAY_CHUNK {
                        next = Some(k.to_vec());
                        return false;
                    }
                    if let Some(seq) = wal::seq_of(k) {
                        chunk.push((seq, v.to_vec()));
                    }
                    true
                })
                .map_err(open_err)?;
            let index = self.index.read();
            let schemas = self.schemas.read();
            let mut inner = self.inner.lock();
            for (seq, bytes) in chunk {
                let Ok(e) = wal::Entry::decode(&bytes) else {
                    continue;
                };
                let targets: Vec<Option<Target>> =
                    e.points.iter().map(|p| target(&index, p.0)).collect();
                let htargets: Vec<Option<(u32, u16)>> =
                    e.hists.iter().map(|h| hist_target(&index, h.0)).collect();
                lost += targets.iter().filter(|t| t.is_none()).count() as u64;
                lost_hists += htargets.iter().filter(|t| t.is_none()).count() as u64;
                for schema in targets
                    .iter()
                    .flatten()
                    .map(|t| t.schema)
                    .chain(htargets.iter().flatten().map(|h| h.1))
                {
                    inner.init_marks(&schemas.shapes[schema as usize], schema, e.now);
                }
                inner.points.stamp = seq;
                inner.hists.stamp = seq;
                self.apply(
                    &mut inner, &*self.kv, &index, &schemas, &e, &targets, &htargets,
                )
                .map_err(open_err)?;
                inner.next_seq = seq + 1;
                self.stats.replayed_batches.fetch_add(1, Relaxed);
            }
            drop(inner);
            match next {
                Some(k) => cursor = k,
                None => break,
            }
        }
        if lost + lost_hists > 0 {
            tracing::error!(
                points = lost,
                histograms = lost_hists,
                "the log names series whose records were never stored (a crash under an older rollupd); these points cannot be placed and are dropped"
            );
        }
        let mut inner = self.inner.lock();
        let next = inner.next_seq.max(last_seq.map_or(0, |s| s + 1));
        inner.next_seq = next;
        drop(inner);
        self.log.lock().next_seq = next;
        Ok(())
    }

    /// Ids that log entries name beyond the stored records (written by an
    /// older version, which could log a point before its series' record):
    /// their points cannot be placed, and the ids are taken as holes so no
    /// new series is given one and then handed those points by the next
    /// replay.
    fn reserve_logged_ids(&self, max_point: Option<u32>, max_hist: Option<u32>) {
        let mut index = self.index.write();
        // An id past what the caps allow is damage, not a lost record: its
        // points are dropped without reserving ids up to it.
        let limit = self.opts.max_series.max(index.len());
        if let Some(id) = max_point {
            while index.series.len() <= id as usize && index.series.len() < limit {
                index.add_hole(false);
            }
        }
        if let Some(id) = max_hist {
            while index.hists.len() <= id as usize && index.hists.len() < limit {
                index.add_hole(true);
            }
        }
    }
}
