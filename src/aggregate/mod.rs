//! Per-interval state: counters, timers, gauges and sets, with Etsy's rules
//! for how each is updated and what a flush keeps, zeroes or deletes.
//!
//! The state is split into shards by a hash of the key, each behind its own
//! lock, so receiver threads on different cores rarely meet. A flush visits
//! one shard at a time, taking what the interval gathered and resetting it
//! in place: ingest is never stopped for the whole flush, and every sample
//! lands in exactly one interval (it is applied under the lock of the shard
//! that the flush either has or has not visited yet).

pub mod flush;
pub mod timer;

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hashbrown::HashTable;
use parking_lot::Mutex;

use crate::config::StatsdConfig;
use crate::events::{EventQueue, QueuedEvent};
use crate::protocol::dogstatsd;
use crate::protocol::key::KeyBuf;
use crate::protocol::statsd::{self, BadReason, Line, MetricType, Sample};
use crate::telemetry::{LocalCounts, Telemetry};
pub use flush::{histogram_of, Flush, TimerFlush, HISTOGRAM_SIGFIGS, HISTOGRAM_UNITS_PER_MS};

/// Shards: a power of two, comfortably more than cores so two receivers
/// seldom want the same lock.
const SHARDS: usize = 64;

#[derive(Debug)]
struct CounterEntry {
    key: Arc<str>,
    value: f64,
}

#[derive(Debug)]
struct TimerEntry {
    key: Arc<str>,
    samples: Vec<f64>,
    /// Sample-rate-corrected count (Etsy's `timer_counters`).
    count: f64,
    /// Samples offered this interval (for the reservoir past the cap).
    offered: u64,
}

#[derive(Debug)]
struct GaugeEntry {
    key: Arc<str>,
    value: f64,
    /// Flushes left before an idle gauge is deleted (with delete_gauges).
    ttl: u32,
}

#[derive(Debug)]
struct SetEntry {
    key: Arc<str>,
    members: HashSet<Box<str>, foldhash::fast::RandomState>,
}

#[derive(Debug, Default)]
struct Shard {
    counters: HashTable<CounterEntry>,
    timers: HashTable<TimerEntry>,
    gauges: HashTable<GaugeEntry>,
    sets: HashTable<SetEntry>,
}

/// Keeps each shard's lock on its own cache line.
#[repr(align(128))]
#[derive(Debug, Default)]
struct Padded(Mutex<Shard>);

/// Settings read on the hot path, copied out of the config once.
#[derive(Debug, Clone)]
struct Rules {
    sanitize: bool,
    delete_counters: bool,
    delete_timers: bool,
    delete_gauges: bool,
    delete_sets: bool,
    gauges_max_ttl: u32,
    max_keys: usize,
    max_timer_samples: usize,
    max_set_size: usize,
}

/// Scratch space one receiver thread reuses for every packet.
#[derive(Debug, Default)]
pub struct Scratch {
    key: KeyBuf,
    staged: Staged,
}

/// Valid samples parsed from a batch of datagrams and not yet applied.
///
/// Applying each sample on its own costs a lock and an unlock per sample,
/// and with two receivers on two cores every one of those moves the lock's
/// cache line from core to core. Grouped by shard, a recvmmsg batch of
/// ~2,000 lines takes each of the 64 shard locks about once. The grouping
/// is stable, so a key's updates apply in the order received (gauges set
/// and move in order); each sample is still applied under its own shard's
/// lock, so the flush boundary stays exact; and a batch that could reach
/// `max_keys` is applied in arrival order instead, so the cap admits the
/// same keys as before (see [`Aggregator::commit`]).
#[derive(Debug, Default)]
struct Staged {
    /// Keys and values-as-written of the staged samples, back to back. A
    /// copy, because a rewritten key lives in the scratch `KeyBuf` only
    /// until the next line.
    bytes: Vec<u8>,
    /// The samples, in arrival order.
    samples: Vec<StagedSample>,
    /// Indices into `samples` grouped by shard, rebuilt at each commit.
    by_shard: Vec<usize>,
}

#[derive(Debug, Clone, Copy)]
struct StagedSample {
    /// The key's hash, computed once: it picks the shard and the bucket.
    hash: u64,
    value: f64,
    rate: f64,
    /// The key at `bytes[at..at + key_len]`, then the value as written
    /// (sets and gauges need it) in the next `raw_len` bytes.
    at: usize,
    key_len: usize,
    raw_len: usize,
    kind: MetricType,
}

/// The aggregation state shared by receivers, the flusher and the admin port.
pub struct Aggregator {
    shards: Box<[Padded]>,
    hasher: foldhash::fast::RandomState,
    rules: Rules,
    live_keys: AtomicUsize,
    telemetry: Arc<Telemetry>,
    events: EventQueue,
    flush_state: Mutex<FlushState>,
    prefix_stats: String,
}

#[derive(Debug, Default)]
struct FlushState {
    /// Unix seconds of the previous flush, for Etsy's `timestamp_lag`.
    last_timestamp: Option<i64>,
}

/// A read-only view of one kind of state, for the admin interface.
#[derive(Debug, Clone, PartialEq)]
pub enum View {
    Counter(f64),
    Timer(Vec<f64>),
    Gauge(f64),
}

impl Aggregator {
    pub fn new(cfg: &StatsdConfig, telemetry: Arc<Telemetry>, events: EventQueue) -> Self {
        Aggregator {
            shards: (0..SHARDS).map(|_| Padded::default()).collect(),
            hasher: foldhash::fast::RandomState::default(),
            rules: Rules {
                sanitize: cfg.key_name_sanitize,
                delete_counters: cfg.delete_counters(),
                delete_timers: cfg.delete_timers(),
                delete_gauges: cfg.delete_gauges(),
                delete_sets: cfg.delete_sets(),
                gauges_max_ttl: cfg.gauges_max_ttl(),
                max_keys: cfg.max_keys,
                max_timer_samples: cfg.max_timer_samples,
                max_set_size: cfg.max_set_size,
            },
            live_keys: AtomicUsize::new(0),
            telemetry,
            events,
            flush_state: Mutex::new(FlushState::default()),
            prefix_stats: cfg.prefix_stats.clone(),
        }
    }

    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }

    /// Keys held now, all types together.
    pub fn live_keys(&self) -> usize {
        self.live_keys.load(Relaxed)
    }

    /// Handles one datagram (or one batch of complete TCP lines). With
    /// `truncated`, the datagram was longer than the buffer and its last line
    /// is cut: that line is counted as bad instead of being misread.
    pub fn ingest_packet(
        &self,
        packet: &[u8],
        truncated: bool,
        scratch: &mut Scratch,
        counts: &mut LocalCounts,
    ) {
        self.stage_packet(packet, truncated, scratch, counts);
        self.commit(scratch, counts);
    }

    /// Handles several datagrams (a `recvmmsg` batch) as [`ingest_packet`]
    /// would one by one, taking each shard lock once for the whole batch.
    ///
    /// [`ingest_packet`]: Aggregator::ingest_packet
    pub fn ingest_batch<'a>(
        &self,
        packets: impl IntoIterator<Item = (&'a [u8], bool)>,
        scratch: &mut Scratch,
        counts: &mut LocalCounts,
    ) {
        for (packet, truncated) in packets {
            self.stage_packet(packet, truncated, scratch, counts);
        }
        self.commit(scratch, counts);
    }

    /// Parses a datagram and stages its valid samples; counts and logs the
    /// bad ones at once.
    fn stage_packet(
        &self,
        packet: &[u8],
        truncated: bool,
        scratch: &mut Scratch,
        counts: &mut LocalCounts,
    ) {
        counts.packets += 1;
        let mut lines = statsd::lines(packet).peekable();
        while let Some(line) = lines.next() {
            counts.lines += 1;
            if truncated && lines.peek().is_none() {
                self.bad(counts, BadReason::Truncated, line);
                continue;
            }
            self.stage_line(line, scratch, counts);
        }
    }

    fn bad(&self, counts: &mut LocalCounts, reason: BadReason, line: &[u8]) {
        counts.bad[reason.index()] += 1;
        self.telemetry.log_bad_line(reason, line);
    }

    /// Handles one non-empty line.
    pub fn ingest_line(&self, line: &[u8], scratch: &mut Scratch, counts: &mut LocalCounts) {
        self.stage_line(line, scratch, counts);
        self.commit(scratch, counts);
    }

    fn stage_line(&self, line: &[u8], scratch: &mut Scratch, counts: &mut LocalCounts) {
        let m = match statsd::parse_line(line) {
            Ok(Line::Metric(m)) => m,
            Ok(Line::Event(raw)) => return self.ingest_event(raw, counts),
            Ok(Line::ServiceCheck(raw)) => {
                if dogstatsd::is_valid_service_check(raw) {
                    counts.service_checks += 1;
                } else {
                    self.bad(counts, BadReason::BadEvent, line);
                }
                return;
            }
            Err(reason) => return self.bad(counts, reason, line),
        };
        let key = match scratch.key.build(m.name, m.tags, self.rules.sanitize) {
            Ok(k) => k,
            Err(reason) => {
                // Etsy counts each sample of a line with a bad key once.
                for _ in m.samples() {
                    self.bad(counts, reason, line);
                }
                return;
            }
        };
        let hash = self.hash(key);
        for sample in m.samples() {
            match sample {
                Ok(s) => scratch.staged.push(hash, key, &s),
                Err(reason) => self.bad(counts, reason, line),
            }
        }
    }

    /// Applies every staged sample, one shard lock at a time.
    fn commit(&self, scratch: &mut Scratch, counts: &mut LocalCounts) {
        let staged = &mut scratch.staged;
        if staged.samples.is_empty() {
            return;
        }
        let (samples, bytes) = (&staged.samples, &staged.bytes);
        // Which keys a full key cap admits depends on the order new keys
        // arrive in. A batch that might reach the cap is applied in arrival
        // order, one lock per sample, exactly as unbatched ingest did.
        if self.live_keys().saturating_add(samples.len()) > self.rules.max_keys {
            for st in samples {
                let mut shard = self.shards[shard_index(st.hash)].0.lock();
                self.update_staged(&mut shard, st, bytes, counts);
            }
        } else {
            // A stable counting sort of the samples by shard.
            let mut start = [0usize; SHARDS + 1];
            for st in samples {
                start[shard_index(st.hash) + 1] += 1;
            }
            for i in 0..SHARDS {
                start[i + 1] += start[i];
            }
            let mut next = start;
            staged.by_shard.clear();
            staged.by_shard.resize(samples.len(), 0);
            for (i, st) in samples.iter().enumerate() {
                let s = shard_index(st.hash);
                staged.by_shard[next[s]] = i;
                next[s] += 1;
            }
            for (i, padded) in self.shards.iter().enumerate() {
                let run = &staged.by_shard[start[i]..start[i + 1]];
                if run.is_empty() {
                    continue;
                }
                let mut shard = padded.0.lock();
                for &j in run {
                    self.update_staged(&mut shard, &samples[j], bytes, counts);
                }
            }
        }
        staged.samples.clear();
        staged.bytes.clear();
    }

    fn update_staged(
        &self,
        shard: &mut Shard,
        st: &StagedSample,
        bytes: &[u8],
        counts: &mut LocalCounts,
    ) {
        let key_end = st.at + st.key_len;
        let sample = Sample {
            kind: st.kind,
            value: st.value,
            raw: &bytes[key_end..key_end + st.raw_len],
            rate: st.rate,
        };
        self.update(shard, st.hash, &bytes[st.at..key_end], &sample, counts);
    }

    fn ingest_event(&self, raw: &[u8], counts: &mut LocalCounts) {
        match dogstatsd::parse_event(raw) {
            Some(ev) => {
                counts.events += 1;
                if !self.events.push(QueuedEvent::from_dogstatsd(ev)) {
                    counts.events_dropped += 1;
                }
            }
            None => self.bad(counts, BadReason::BadEvent, raw),
        }
    }

    fn admit_new_key(&self, counts: &mut LocalCounts) -> bool {
        // A racy check is fine: the cap bounds memory, it need not be exact
        // to the key.
        if self.live_keys.load(Relaxed) >= self.rules.max_keys {
            counts.keys_over_cap += 1;
            return false;
        }
        self.live_keys.fetch_add(1, Relaxed);
        true
    }

    fn shard_of(&self, hash: u64) -> &Mutex<Shard> {
        &self.shards[shard_index(hash)].0
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Applies one valid sample under its shard's lock.
    pub fn apply(&self, key: &[u8], s: &Sample<'_>, counts: &mut LocalCounts) {
        let hash = self.hash(key);
        let mut shard = self.shard_of(hash).lock();
        self.update(&mut shard, hash, key, s, counts);
    }

    /// Applies one valid sample to its shard, whose lock the caller holds.
    fn update(
        &self,
        shard: &mut Shard,
        hash: u64,
        key: &[u8],
        s: &Sample<'_>,
        counts: &mut LocalCounts,
    ) {
        let rehash = |k: &Arc<str>| self.hasher.hash_one(k.as_bytes());
        match s.kind {
            MetricType::Counter => {
                // A sum that would leave f64's range is refused as a bad
                // sample, as an infinite value is by the parser: once a
                // counter is inf or NaN, every rollup built from it is too.
                let inc = s.value * (1.0 / s.rate);
                if let Some(e) = shard.counters.find_mut(hash, |e| e.key.as_bytes() == key) {
                    let sum = e.value + inc;
                    if sum.is_finite() {
                        e.value = sum;
                    } else {
                        counts.bad[BadReason::NonFinite.index()] += 1;
                    }
                } else if !inc.is_finite() {
                    counts.bad[BadReason::NonFinite.index()] += 1;
                } else if self.admit_new_key(counts) {
                    let key = arc_key(key);
                    shard
                        .counters
                        .insert_unique(hash, CounterEntry { key, value: inc }, |e| rehash(&e.key));
                }
            }
            MetricType::Timer => {
                let e = match shard.timers.find_mut(hash, |e| e.key.as_bytes() == key) {
                    Some(e) => e,
                    None if self.admit_new_key(counts) => {
                        let entry = TimerEntry {
                            key: arc_key(key),
                            samples: Vec::new(),
                            count: 0.0,
                            offered: 0,
                        };
                        shard
                            .timers
                            .insert_unique(hash, entry, |e| rehash(&e.key))
                            .into_mut()
                    }
                    None => return,
                };
                let count = e.count + 1.0 / s.rate;
                if !count.is_finite() {
                    counts.bad[BadReason::NonFinite.index()] += 1;
                    return;
                }
                e.count = count;
                e.offered += 1;
                if e.samples.len() < self.rules.max_timer_samples {
                    e.samples.push(s.value);
                } else {
                    // Reservoir sampling keeps a uniform sample of the
                    // interval once the cap is reached.
                    counts.timer_samples_dropped += 1;
                    // j < offered; one past usize (32-bit targets) is past
                    // the samples too.
                    let j = usize::try_from(fastrand::u64(0..e.offered)).unwrap_or(usize::MAX);
                    if j < e.samples.len() {
                        e.samples[j] = s.value;
                    }
                }
            }
            MetricType::Gauge => {
                let ttl = self.rules.gauges_max_ttl;
                if let Some(e) = shard.gauges.find_mut(hash, |e| e.key.as_bytes() == key) {
                    // Etsy: a signed value moves a gauge only if it is set
                    // and non-zero; otherwise it sets it.
                    if s.is_gauge_delta() && e.value != 0.0 && !e.value.is_nan() {
                        let moved = e.value + s.value;
                        if !moved.is_finite() {
                            counts.bad[BadReason::NonFinite.index()] += 1;
                            return;
                        }
                        e.value = moved;
                    } else {
                        e.value = s.value;
                    }
                    e.ttl = ttl;
                } else if self.admit_new_key(counts) {
                    let entry = GaugeEntry {
                        key: arc_key(key),
                        value: s.value,
                        ttl,
                    };
                    shard.gauges.insert_unique(hash, entry, |e| rehash(&e.key));
                }
            }
            MetricType::Set => {
                let e = match shard.sets.find_mut(hash, |e| e.key.as_bytes() == key) {
                    Some(e) => e,
                    None if self.admit_new_key(counts) => {
                        let entry = SetEntry {
                            key: arc_key(key),
                            members: HashSet::default(),
                        };
                        shard
                            .sets
                            .insert_unique(hash, entry, |e| rehash(&e.key))
                            .into_mut()
                    }
                    None => return,
                };
                // Etsy stores `value || '0'`; the parser checked UTF-8.
                let member = std::str::from_utf8(s.raw).unwrap_or("");
                let member = if member.is_empty() { "0" } else { member };
                if !e.members.contains(member) {
                    if e.members.len() < self.rules.max_set_size {
                        e.members.insert(member.into());
                    } else {
                        counts.set_members_dropped += 1;
                    }
                }
            }
        }
    }

    /// Takes the interval's state and resets it by Etsy's rules. The
    /// timestamp is Etsy's: the wall clock rounded to whole seconds.
    pub fn flush(&self, interval: Duration) -> Flush {
        let started = Instant::now();
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let timestamp = now_ms.saturating_add(500).div_euclid(1000);
        let internal = self.telemetry.take_interval();
        let p = &self.prefix_stats;
        let mut out = Flush {
            timestamp,
            interval,
            ..Flush::default()
        };
        // Etsy's three internal counters come first, as in its counters map.
        out.counters.push((
            format!("{p}.bad_lines_seen").into(),
            internal.bad_lines_total() as f64,
        ));
        out.counters.push((
            format!("{p}.packets_received").into(),
            internal.packets_received as f64,
        ));
        out.counters.push((
            format!("{p}.metrics_received").into(),
            internal.metrics_received as f64,
        ));
        out.internal = internal;

        let mut removed = 0usize;
        for padded in self.shards.iter() {
            let mut shard = padded.0.lock();
            let r = &self.rules;
            shard.counters.retain(|e| {
                // Etsy keeps its internal counters in the same map as the
                // clients' ones: a client's `statsd.bad_lines_seen` adds to
                // it rather than being a second series of the same name.
                match out.counters[..3].iter_mut().find(|(k, _)| *k == e.key) {
                    Some((_, v)) => *v += e.value,
                    None => out.counters.push((e.key.clone(), e.value)),
                }
                e.value = 0.0;
                // Etsy keeps any counter whose name mentions its own three
                // internal counters, even under deleteCounters.
                let keep = !r.delete_counters || is_internal_like(&e.key);
                removed += usize::from(!keep);
                keep
            });
            shard.timers.retain(|e| {
                out.timers.push(TimerFlush {
                    key: e.key.clone(),
                    samples: std::mem::take(&mut e.samples),
                    count: e.count,
                });
                e.count = 0.0;
                e.offered = 0;
                removed += usize::from(r.delete_timers);
                !r.delete_timers
            });
            shard.gauges.retain(|e| {
                out.gauges.push((e.key.clone(), e.value));
                if !r.delete_gauges {
                    return true;
                }
                e.ttl = e.ttl.saturating_sub(1);
                let keep = e.ttl >= 1;
                removed += usize::from(!keep);
                keep
            });
            shard.sets.retain(|e| {
                out.sets.push((e.key.clone(), e.members.len() as u64));
                if r.delete_sets {
                    removed += 1;
                    return false;
                }
                e.members = HashSet::default();
                true
            });
        }
        self.live_keys
            .fetch_sub(removed.min(self.live_keys()), Relaxed);

        // Etsy sets `timestamp_lag` from the second flush on.
        let mut fs = self.flush_state.lock();
        if let Some(prev) = fs.last_timestamp {
            let lag = (timestamp - prev) as f64 - interval.as_millis() as f64 / 1000.0;
            // Etsy writes it into its gauges map, over a client's gauge of
            // the same name.
            let name: Arc<str> = format!("{p}.timestamp_lag").into();
            match out.gauges.iter_mut().find(|(k, _)| *k == name) {
                Some((_, v)) => *v = lag,
                None => out.gauges.push((name, lag)),
            }
        }
        fs.last_timestamp = Some(timestamp);
        drop(fs);

        // Sorting happens outside every shard lock.
        let mut keys = Vec::new();
        for t in &mut out.timers {
            sort_samples_keyed(&mut t.samples, &mut keys);
        }
        out.aggregation_time = started.elapsed();
        self.telemetry.last_flush_micros.store(
            u64::try_from(out.aggregation_time.as_micros()).unwrap_or(u64::MAX),
            Relaxed,
        );
        out
    }

    /// The current interval's state of one kind, for the admin interface.
    /// Counters include the three internal ones, as Etsy's do.
    pub fn view(&self, kind: MetricType) -> Vec<(Arc<str>, View)> {
        let mut out: Vec<(Arc<str>, View)> = Vec::new();
        if kind == MetricType::Counter {
            let i = self.telemetry.peek_interval();
            let p = &self.prefix_stats;
            out.push((
                format!("{p}.bad_lines_seen").into(),
                View::Counter(i.bad_lines_total() as f64),
            ));
            out.push((
                format!("{p}.packets_received").into(),
                View::Counter(i.packets_received as f64),
            ));
            out.push((
                format!("{p}.metrics_received").into(),
                View::Counter(i.metrics_received as f64),
            ));
        }
        for padded in self.shards.iter() {
            let shard = padded.0.lock();
            match kind {
                MetricType::Counter => {
                    for e in shard.counters.iter() {
                        // As in `flush`: a client's `statsd.bad_lines_seen`
                        // adds to the internal one.
                        match out[..3].iter_mut().find(|(k, _)| *k == e.key) {
                            Some((_, View::Counter(v))) => *v += e.value,
                            _ => out.push((e.key.clone(), View::Counter(e.value))),
                        }
                    }
                }
                MetricType::Timer => out.extend(
                    shard
                        .timers
                        .iter()
                        .map(|e| (e.key.clone(), View::Timer(e.samples.clone()))),
                ),
                MetricType::Gauge => out.extend(
                    shard
                        .gauges
                        .iter()
                        .map(|e| (e.key.clone(), View::Gauge(e.value))),
                ),
                MetricType::Set => {}
            }
        }
        out
    }

    /// Etsy's `delcounters`/`deltimers`/`delgauges`: an exact name, or a
    /// folder `prefix.*` matching every name that starts with `prefix.`.
    /// Returns the deleted names.
    pub fn delete(&self, kind: MetricType, pattern: &str) -> Vec<String> {
        let folder = pattern.strip_suffix('*').filter(|f| f.ends_with('.'));
        let matches = |k: &str| k == pattern || folder.is_some_and(|f| k.starts_with(f));
        let mut deleted = Vec::new();
        for padded in self.shards.iter() {
            let mut shard = padded.0.lock();
            let mut take = |k: &Arc<str>| {
                let m = matches(k);
                if m {
                    deleted.push(k.to_string());
                }
                !m
            };
            match kind {
                MetricType::Counter => shard.counters.retain(|e| take(&e.key)),
                MetricType::Timer => shard.timers.retain(|e| take(&e.key)),
                MetricType::Gauge => shard.gauges.retain(|e| take(&e.key)),
                MetricType::Set => shard.sets.retain(|e| take(&e.key)),
            }
        }
        self.live_keys
            .fetch_sub(deleted.len().min(self.live_keys()), Relaxed);
        deleted
    }

    /// Every gauge's current value (the snapshot kept across restarts).
    pub fn gauges(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        for padded in self.shards.iter() {
            let shard = padded.0.lock();
            out.extend(shard.gauges.iter().map(|e| (e.key.to_string(), e.value)));
        }
        out
    }

    /// Restores gauges from a snapshot; a gauge already set since start wins.
    pub fn restore_gauges(&self, gauges: &[(String, f64)]) -> usize {
        let mut restored = 0;
        let mut counts = LocalCounts::default();
        for (key, value) in gauges {
            let hash = self.hash(key.as_bytes());
            let mut shard = self.shard_of(hash).lock();
            if shard
                .gauges
                .find(hash, |e| &*e.key == key.as_str())
                .is_some()
                || !self.admit_new_key(&mut counts)
            {
                continue;
            }
            let entry = GaugeEntry {
                key: arc_key(key.as_bytes()),
                value: *value,
                ttl: self.rules.gauges_max_ttl,
            };
            shard
                .gauges
                .insert_unique(hash, entry, |e| self.hasher.hash_one(e.key.as_bytes()));
            restored += 1;
        }
        restored
    }
}

/// The shard of a key's hash. High bits pick it; hashbrown uses the low bits
/// for the bucket and the top seven for its tag, so these do not collide.
fn shard_index(hash: u64) -> usize {
    ((hash >> 32) as usize) & (SHARDS - 1)
}

impl Staged {
    fn push(&mut self, hash: u64, key: &[u8], s: &Sample<'_>) {
        // Counters and timers never look at the text of their value.
        let raw = match s.kind {
            MetricType::Gauge | MetricType::Set => s.raw,
            MetricType::Counter | MetricType::Timer => &[],
        };
        let at = self.bytes.len();
        self.bytes.extend_from_slice(key);
        self.bytes.extend_from_slice(raw);
        self.samples.push(StagedSample {
            hash,
            value: s.value,
            rate: s.rate,
            at,
            key_len: key.len(),
            raw_len: raw.len(),
            kind: s.kind,
        });
    }
}

/// Sorts timer samples into exactly the order of [`timer::sort_samples`]
/// (ascending by `f64::total_cmp`), about twice as fast: sorting is most of
/// a flush's time under heavy timer traffic, and the flusher shares the
/// CPU with the receivers. Each sample is mapped once to the integer whose
/// order is `total_cmp`'s (the bit trick `total_cmp` applies to both sides
/// of every comparison), the integers are sorted, and mapped back. Equal
/// integers are equal bit patterns, so the result is bit-for-bit the same.
fn sort_samples_keyed(samples: &mut [f64], keys: &mut Vec<i64>) {
    keys.clear();
    keys.extend(samples.iter().map(|&x| total_order_key(x)));
    keys.sort_unstable();
    for (s, &k) in samples.iter_mut().zip(keys.iter()) {
        *s = from_total_order_key(k);
    }
}

/// Flips the magnitude bits of negative numbers so that signed integer
/// order is `f64::total_cmp` order; the sign bit is kept, so the same mask
/// undoes it.
fn total_order_key(x: f64) -> i64 {
    let bits = x.to_bits().cast_signed();
    bits ^ ((bits >> 63).cast_unsigned() >> 1).cast_signed()
}

fn from_total_order_key(key: i64) -> f64 {
    f64::from_bits((key ^ ((key >> 63).cast_unsigned() >> 1).cast_signed()).cast_unsigned())
}

/// Keys are valid UTF-8 by construction (sanitized to ASCII, or checked).
fn arc_key(key: &[u8]) -> Arc<str> {
    Arc::from(std::str::from_utf8(key).unwrap_or("invalid-utf8"))
}

fn is_internal_like(key: &str) -> bool {
    key.contains("packets_received")
        || key.contains("metrics_received")
        || key.contains("bad_lines_seen")
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod batch_tests {
    use super::*;
    use crate::config::Config;

    fn aggregator(toml: &str) -> Aggregator {
        let cfg = Config::parse(toml).unwrap();
        // The receiving half is dropped: these tests send no events.
        Aggregator::new(
            &cfg.statsd,
            Arc::new(Telemetry::new()),
            EventQueue::bounded().0,
        )
    }

    fn state(agg: &Aggregator) -> Vec<String> {
        let f = agg.flush(Duration::from_secs(10));
        let mut out: Vec<String> = f.counters[3..]
            .iter()
            .map(|(k, v)| format!("c {k} {v}"))
            .chain(f.gauges.iter().map(|(k, v)| format!("g {k} {v}")))
            .chain(f.sets.iter().map(|(k, v)| format!("s {k} {v}")))
            .chain(
                f.timers
                    .iter()
                    .map(|t| format!("t {} {:?} {}", t.key, t.samples, t.count)),
            )
            .collect();
        out.sort();
        out.push(format!("over cap {}", f.internal.keys_over_cap));
        out
    }

    /// Every hasher seed orders the shards differently; the cap must still
    /// admit the first keys to arrive, as unbatched ingest does.
    #[test]
    fn the_key_cap_admits_keys_in_arrival_order_whatever_the_shard_order() {
        for _ in 0..200 {
            let agg = aggregator("[statsd]\nmax_keys = 3\n");
            let (mut s, mut c) = (Scratch::default(), LocalCounts::default());
            let packets: [&[u8]; 2] = [b"a:1|c\nb:1|c\nc:1|ms", b"d:1|g\ne:1|s\na:1|c"];
            agg.ingest_batch(packets.iter().map(|p| (*p, false)), &mut s, &mut c);
            agg.telemetry().publish(&mut c);
            let f = agg.flush(Duration::from_secs(10));
            let names: Vec<&str> = f.counters[3..].iter().map(|(k, _)| &**k).collect();
            assert!(names.contains(&"a") && names.contains(&"b"), "{names:?}");
            assert_eq!(f.timers.len(), 1);
            assert!(f.gauges.is_empty() && f.sets.is_empty());
            assert_eq!(f.internal.keys_over_cap, 2);
        }
    }

    /// A batch applied shard by shard ends in the same state as its lines
    /// applied one at a time in order.
    #[test]
    fn batched_ingest_matches_line_by_line_ingest() {
        let mut rng = fastrand::Rng::with_seed(5);
        for cap in [1_000_000, 40] {
            let toml = format!("[statsd]\nmax_keys = {cap}\nmax_timer_samples = 1000\n");
            let (batched, single) = (aggregator(&toml), aggregator(&toml));
            let mut packets = Vec::new();
            for _ in 0..64 {
                let mut p = String::new();
                for _ in 0..30 {
                    let k = rng.u32(0..60);
                    let line = match rng.u8(..5) {
                        0 => format!("c{k}:{}|c|@0.5", rng.u32(0..9)),
                        1 => format!("t{k}:{}|ms", rng.u32(0..999)),
                        2 => format!("g{k}:{}|g", rng.u32(0..99)),
                        3 => format!("g{k}:-{}|g", rng.u32(0..9)),
                        _ => format!("s{k}:m{}|s", rng.u32(0..20)),
                    };
                    p.push_str(&line);
                    p.push('\n');
                }
                packets.push(p);
            }
            let (mut s, mut c) = (Scratch::default(), LocalCounts::default());
            batched.ingest_batch(
                packets.iter().map(|p| (p.as_bytes(), false)),
                &mut s,
                &mut c,
            );
            batched.telemetry().publish(&mut c);
            for p in &packets {
                for line in statsd::lines(p.as_bytes()) {
                    single.ingest_packet(line, false, &mut s, &mut c);
                }
            }
            single.telemetry().publish(&mut c);
            assert_eq!(state(&batched), state(&single), "max_keys {cap}");
        }
    }
}

#[cfg(test)]
mod sort_tests {
    use super::*;

    #[test]
    fn keyed_sort_matches_total_cmp_sort_bit_for_bit() {
        let mut rng = fastrand::Rng::with_seed(3);
        let special = [
            0.0,
            -0.0,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            5e-324,
            -5e-324,
            f64::MAX,
            f64::MIN,
            1.0,
            -1.0,
        ];
        let mut keys = Vec::new();
        for round in 0..500 {
            let len = rng.usize(0..300);
            let samples: Vec<f64> = (0..len)
                .map(|_| match rng.u8(..4) {
                    0 => special[rng.usize(..special.len())],
                    1 => f64::from_bits(rng.u64(..)),
                    2 => (rng.f64() * 100.0).round() / 4.0,
                    _ => (rng.f64() - 0.5) * 1e6,
                })
                .collect();
            let mut want = samples.clone();
            timer::sort_samples(&mut want);
            let mut got = samples;
            sort_samples_keyed(&mut got, &mut keys);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "round {round}");
        }
    }
}
