//! Graphite events (deploy lines) kept in the store's engine, in the
//! `Events` space, indexed by time so a read touches only its window.
//!
//! Keys (all in `Space::Events`; the layout is in docs/storage-format.md):
//! - `t` + when (i64, sign bit flipped, BE) + id (u64 BE) → the event as
//!   JSON. Ordered by time, so a window is one range scan and retention is
//!   a prefix of the range.
//! - `i` + id (u64 BE) → when (same encoding): finds an event by id for
//!   `DELETE /events/<id>`.
//! - `m` + name → metadata: `mnext` (the next id, u64 BE; never goes down,
//!   so an id is never handed out twice, even after the newest event was
//!   deleted or expired and the daemon restarted), `mspool` (present once
//!   the old `events.jsonl` spool was imported).
//! - Exactly 8 bytes (id BE) → JSON: the first layout, keyed by id alone.
//!   [`EventStore::open`] moves such records to the layout above once.
//!
//! Every way in ([`EventStore::add_all`]) checks sizes and the time range
//! and the stored-events cap, so an event posted over HTTP and one sent as
//! a DogStatsD `_e` line are held to the same rules.
//!
//! On an engine several daemons share (ClickHouse's, [`EventStore::open_shared`]),
//! ids are a second and a tag: `t × 2^20 + tag`, where `tag` is a random
//! 20-bit number each daemon draws at start and `t` is the clock's second,
//! raised past the last `t` the daemon gave (a burst of events runs ahead
//! of the clock, one second each). So one daemon never gives an id twice,
//! and two give the same id only if they drew the same tag (one chance in
//! 2^20 a pair) and the same second; a counter each daemon kept would
//! collide at once. Ids stay below 2^53, which JavaScript reads exactly,
//! until the year 2242. The stored count is this daemon's own writes since
//! it started, so `max_events` bounds each daemon's writes, not the table.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::QueuedEvent;
use rollupd_store::kv::{Batch, Kv, KvError, Space};

/// One event as graphite-web's `/events/get_data` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: u64,
    pub when: i64,
    pub what: String,
    pub tags: Vec<String>,
    pub data: String,
}

/// graphite-web's `what` column is `CharField(max_length=255)`.
pub const MAX_WHAT_CHARS: usize = 255;
/// `data` is free text; this bounds one event's bytes at rest.
pub const MAX_DATA_BYTES: usize = 64 * 1024;
pub const MAX_TAGS: usize = 100;
/// Datadog's own limit for one tag.
pub const MAX_TAG_CHARS: usize = 200;
/// graphite-web keeps `when` as a Python `datetime`: years 1 to 9999.
/// Anything outside is a client's mistake (milliseconds sent as seconds).
pub const MIN_WHEN: i64 = -62_135_596_800;
pub const MAX_WHEN: i64 = 253_402_300_799;
/// Most events one `/events/get_data` or one graph overlay returns.
pub const MAX_PER_REQUEST: usize = 10_000;
/// Events deleted per write batch by a retention pass, so a pass over a
/// year of events is many small writes, not one huge one.
const EXPIRE_CHUNK: usize = 10_000;

/// Bits of a shared engine's ids that are the daemon's tag.
const TAG_BITS: u32 = 20;

const T: u8 = b't';
const I: u8 = b'i';
const META_NEXT: &[u8] = b"mnext";
const META_SPOOL: &[u8] = b"mspool";

/// Why an event was not stored or a read not answered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EventError {
    /// A field of a new event is out of bounds; `field` names it.
    #[error("event \"{field}\" {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
    #[error("the event store is full ({cap} events, [storage] max_events); the event was refused")]
    Full { cap: u64 },
    #[error("more than {cap} events match; narrow the time range or the tags")]
    TooMany { cap: usize },
    #[error("the event store failed: {0}")]
    Kv(#[from] KvError),
}

/// Which events a read returns by their tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagFilter {
    /// Every event (no `tags` asked for, or `events('*')`).
    Every,
    /// Events carrying every one of these tags (graphite-web's default).
    AllOf(Vec<String>),
    /// Events carrying any of them (`set=union`).
    AnyOf(Vec<String>),
}

impl TagFilter {
    pub fn matches(&self, tags: &[String]) -> bool {
        match self {
            TagFilter::Every => true,
            // No tag asked for is no match, as graphite-web's tagging
            // library answers an empty tag list with nothing.
            TagFilter::AllOf(want) => !want.is_empty() && want.iter().all(|t| tags.contains(t)),
            TagFilter::AnyOf(want) => want.iter().any(|t| tags.contains(t)),
        }
    }
}

/// The caps from `[storage]`.
#[derive(Debug, Clone, Copy)]
pub struct EventLimits {
    /// Events kept at most; further ones are refused, counted and logged.
    pub max_events: u64,
    /// Events whose `when` is older than this are deleted.
    pub retention: Duration,
}

impl Default for EventLimits {
    fn default() -> Self {
        let s = rollupd_config::StorageConfig::default();
        EventLimits {
            max_events: s.max_events,
            retention: s.events_retention,
        }
    }
}

/// Refusals, counted; `/metrics` shows them.
#[derive(Debug, Default)]
pub struct EventStats {
    pub stored: AtomicU64,
    pub refused_full: AtomicU64,
    pub refused_invalid: AtomicU64,
    pub reads_over_cap: AtomicU64,
    pub expired: AtomicU64,
}

#[derive(Debug)]
struct Ids {
    next: u64,
    stored: u64,
}

pub struct EventStore {
    kv: Arc<dyn Kv>,
    limits: EventLimits,
    /// Held by writers only (readers never take it): an id, the stored
    /// count and the batch that makes them true go together. Events are
    /// few, so serializing their writes costs nothing that matters.
    ids: Mutex<Ids>,
    /// On an engine other daemons write too: this daemon's id tag (ids
    /// from the clock, see the module's doc).
    shared: Option<u64>,
    pub stats: EventStats,
    log_gate: super::LogGate,
}

/// `when` as a key: the sign bit flipped, so byte order is numeric order.
fn when_key(when: i64) -> [u8; 8] {
    (when.cast_unsigned() ^ (1 << 63)).to_be_bytes()
}

fn when_from_key(b: [u8; 8]) -> i64 {
    (u64::from_be_bytes(b) ^ (1 << 63)).cast_signed()
}

fn t_key(when: i64, id: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    k.push(T);
    k.extend_from_slice(&when_key(when));
    k.extend_from_slice(&id.to_be_bytes());
    k
}

fn i_key(id: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(I);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8)
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .map(u64::from_be_bytes)
}

fn to_json(e: &Event) -> Result<Vec<u8>, EventError> {
    serde_json::to_vec(e).map_err(|x| EventError::Kv(KvError::io(x.to_string())))
}

/// Checks a new event against the bounds, and puts its tags in the one
/// form every reader expects: a tag is a word (graphite-web joins a tag
/// list with spaces and its tagging library splits on spaces or commas).
pub fn prepare(mut e: QueuedEvent) -> Result<QueuedEvent, EventError> {
    let invalid = |field, problem: String| EventError::Invalid { field, problem };
    let n = e.what.chars().count();
    if n > MAX_WHAT_CHARS {
        return Err(invalid(
            "what",
            format!("is {n} characters; at most {MAX_WHAT_CHARS}"),
        ));
    }
    if e.data.len() > MAX_DATA_BYTES {
        return Err(invalid(
            "data",
            format!("is {} bytes; at most {MAX_DATA_BYTES}", e.data.len()),
        ));
    }
    if !(MIN_WHEN..=MAX_WHEN).contains(&e.when) {
        return Err(invalid(
            "when",
            format!(
                "{} is outside years 1 to 9999 (epoch seconds {MIN_WHEN} to {MAX_WHEN})",
                e.when
            ),
        ));
    }
    if e.tags.iter().any(|t| t.contains([' ', ','])) {
        e.tags = e.tags.iter().flat_map(|t| split_tags(t)).collect();
    }
    e.tags.retain(|t| !t.is_empty());
    if e.tags.len() > MAX_TAGS {
        return Err(invalid(
            "tags",
            format!("has {} tags; at most {MAX_TAGS}", e.tags.len()),
        ));
    }
    if let Some(t) = e.tags.iter().find(|t| t.chars().count() > MAX_TAG_CHARS) {
        return Err(invalid(
            "tags",
            format!(
                "has a tag of {} characters; at most {MAX_TAG_CHARS}",
                t.chars().count()
            ),
        ));
    }
    Ok(e)
}

impl EventStore {
    /// Opens with the default caps (tests, and readers that never write).
    pub fn open(kv: Arc<dyn Kv>) -> Result<EventStore, EventError> {
        Self::open_with(kv, EventLimits::default())
    }

    /// Opens the events in `kv`: counts them, finds the next id, and moves
    /// records of the first (id-keyed) layout to the time index.
    pub fn open_with(kv: Arc<dyn Kv>, limits: EventLimits) -> Result<EventStore, EventError> {
        let mut next = kv
            .get(Space::Events, META_NEXT)?
            .and_then(|v| u64_at(&v, 0))
            .unwrap_or(1);
        // The first layout's keys are ids (BE), so they all sort below `i`.
        let mut legacy = Vec::new();
        kv.scan(Space::Events, &[], &[I], &mut |k, v| {
            if let (Ok(id), Ok(e)) = (<[u8; 8]>::try_from(k), serde_json::from_slice::<Event>(v)) {
                legacy.push((u64::from_be_bytes(id), e));
            }
            true
        })?;
        let mut stored = 0u64;
        kv.scan(Space::Events, &[I], &[I + 1], &mut |k, _| {
            if let Some(id) = u64_at(k, 1) {
                stored += 1;
                next = next.max(id.saturating_add(1));
            }
            true
        })?;
        if !legacy.is_empty() {
            let mut b = Batch::default();
            for (key, e) in &legacy {
                next = next.max(e.id.max(*key).saturating_add(1));
                b.delete(Space::Events, key.to_be_bytes().to_vec());
                b.put(Space::Events, t_key(e.when, e.id), to_json(e)?);
                b.put(Space::Events, i_key(e.id), when_key(e.when).to_vec());
            }
            b.put(
                Space::Events,
                META_NEXT.to_vec(),
                next.to_be_bytes().to_vec(),
            );
            kv.write(b)?;
            stored += legacy.len() as u64;
            tracing::info!(
                events = legacy.len(),
                "moved events to the time-indexed layout (once; the old records are gone)"
            );
        }
        let stats = EventStats::default();
        stats.stored.store(stored, Relaxed);
        Ok(EventStore {
            kv,
            limits,
            ids: Mutex::new(Ids { next, stored }),
            shared: None,
            stats,
            log_gate: Default::default(),
        })
    }

    /// [`EventStore::open_with`] on an engine other daemons write too:
    /// ids from the clock (see the module's doc).
    /// Reads nothing at start (the servers may be down then, and other
    /// daemons write meanwhile): the count starts at zero, and the first
    /// layout's records are not looked for (that engine never held them).
    pub fn open_shared(kv: Arc<dyn Kv>, limits: EventLimits) -> EventStore {
        EventStore {
            kv,
            limits,
            ids: Mutex::new(Ids { next: 1, stored: 0 }),
            shared: Some(fastrand::u64(0..1 << TAG_BITS)),
            stats: EventStats::default(),
            log_gate: Default::default(),
        }
    }

    /// The id for an event when `next` is the counter: the counter, or on
    /// a shared engine the second `max(now, next)` with this daemon's tag.
    fn id_from(&self, next: u64) -> u64 {
        let Some(tag) = self.shared else {
            return next;
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        (now.max(next) << TAG_BITS) | tag
    }

    /// The counter after id `id`: the next id, or on a shared engine the
    /// next second.
    fn after(&self, id: u64) -> u64 {
        match self.shared {
            None => id.saturating_add(1),
            Some(_) => (id >> TAG_BITS).saturating_add(1),
        }
    }

    pub fn limits(&self) -> EventLimits {
        self.limits
    }

    /// Events stored now.
    pub fn len(&self) -> u64 {
        self.ids.lock().stored
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stores one event (the HTTP API).
    pub fn add(&self, e: QueuedEvent) -> Result<Event, EventError> {
        self.add_all(vec![e], None)
            .pop()
            .unwrap_or(Err(EventError::Kv(KvError::io("no result"))))
    }

    /// Stores events in one write; each gets its own answer. The one way
    /// events get in. `marker`, when given, is a metadata key written in
    /// the same batch (so an import happens exactly once).
    pub fn add_all(
        &self,
        events: Vec<QueuedEvent>,
        marker: Option<&[u8]>,
    ) -> Vec<Result<Event, EventError>> {
        let mut ids = self.ids.lock();
        let mut b = Batch::default();
        let (mut next, mut stored) = (ids.next, ids.stored);
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            let r = prepare(e).and_then(|e| {
                if stored >= self.limits.max_events {
                    return Err(EventError::Full {
                        cap: self.limits.max_events,
                    });
                }
                let ev = Event {
                    id: self.id_from(next),
                    when: e.when,
                    what: e.what,
                    tags: e.tags,
                    data: e.data,
                };
                b.put(Space::Events, t_key(ev.when, ev.id), to_json(&ev)?);
                b.put(Space::Events, i_key(ev.id), when_key(ev.when).to_vec());
                next = self.after(ev.id);
                stored += 1;
                Ok(ev)
            });
            if let Err(err) = &r {
                self.refused(err);
            }
            out.push(r);
        }
        if b.is_empty() && marker.is_none() {
            return out;
        }
        // A shared engine's ids come from the clock: no counter to keep
        // there (each daemon would overwrite the other's).
        if self.shared.is_none() {
            b.put(
                Space::Events,
                META_NEXT.to_vec(),
                next.to_be_bytes().to_vec(),
            );
        }
        if let Some(m) = marker {
            b.put(Space::Events, m.to_vec(), Vec::new());
        }
        match self.kv.write(b) {
            Ok(()) => {
                ids.next = next;
                ids.stored = stored;
                self.stats.stored.store(stored, Relaxed);
            }
            Err(err) => {
                tracing::error!(error = %err, "events could not be stored");
                for r in out.iter_mut().filter(|r| r.is_ok()) {
                    *r = Err(EventError::Kv(err.clone()));
                }
            }
        }
        out
    }

    fn refused(&self, err: &EventError) {
        let counter = match err {
            EventError::Full { .. } => &self.stats.refused_full,
            EventError::Invalid { .. } => &self.stats.refused_invalid,
            _ => return,
        };
        counter.fetch_add(1, Relaxed);
        if self.log_gate.may_log() {
            tracing::warn!(
                error = %err,
                refused_full = self.stats.refused_full.load(Relaxed),
                refused_invalid = self.stats.refused_invalid.load(Relaxed),
                "event refused"
            );
        }
    }

    /// Whether the old spool was imported already.
    pub fn spool_imported(&self) -> Result<bool, EventError> {
        Ok(self.kv.get(Space::Events, META_SPOOL)?.is_some())
    }

    /// Imports the old spool's events and marks the import done, in one
    /// write, so a crash part-way imports them again rather than twice.
    pub fn import_spool(&self, events: Vec<QueuedEvent>) -> Vec<Result<Event, EventError>> {
        self.add_all(events, Some(META_SPOOL))
    }

    pub fn delete(&self, id: u64) -> Result<bool, EventError> {
        let mut ids = self.ids.lock();
        let Some(when) = self
            .kv
            .get(Space::Events, &i_key(id))?
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        else {
            return Ok(false);
        };
        let mut b = Batch::default();
        b.delete(Space::Events, i_key(id));
        b.delete(Space::Events, t_key(when_from_key(when), id));
        self.kv.write(b)?;
        ids.stored = ids.stored.saturating_sub(1);
        self.stats.stored.store(ids.stored, Relaxed);
        Ok(true)
    }

    /// Events with `from <= when <= until` whose tags match, by `when` then
    /// id; more than [`MAX_PER_REQUEST`] is an error (counted, logged).
    pub fn query(&self, from: i64, until: i64, tags: &TagFilter) -> Result<Vec<Event>, EventError> {
        let r = read(self.kv.as_ref(), from, until, tags, MAX_PER_REQUEST);
        if let Err(e @ EventError::TooMany { .. }) = &r {
            let n = self.stats.reads_over_cap.fetch_add(1, Relaxed) + 1;
            if self.log_gate.may_log() {
                tracing::warn!(error = %e, from, until, ?tags, reads_over_cap = n, "event read refused");
            }
        }
        r
    }

    /// Deletes the events older than the retention, counting from `now`.
    pub fn expire(&self, now: i64) -> Result<usize, EventError> {
        let secs = i64::try_from(self.limits.retention.as_secs()).unwrap_or(i64::MAX);
        let cutoff = now.saturating_sub(secs);
        let mut total = 0;
        loop {
            let mut ids = self.ids.lock();
            let mut doomed = Vec::new();
            let mut to = vec![T];
            to.extend_from_slice(&when_key(cutoff));
            self.kv.scan(Space::Events, &[T], &to, &mut |k, _| {
                if let Some(id) = u64_at(k, 9) {
                    doomed.push((k.to_vec(), id));
                }
                doomed.len() < EXPIRE_CHUNK
            })?;
            if doomed.is_empty() {
                break;
            }
            let n = doomed.len();
            let mut b = Batch::default();
            for (k, id) in doomed {
                b.delete(Space::Events, k);
                b.delete(Space::Events, i_key(id));
            }
            self.kv.write(b)?;
            ids.stored = ids.stored.saturating_sub(n as u64);
            self.stats.stored.store(ids.stored, Relaxed);
            total += n;
            if n < EXPIRE_CHUNK {
                break;
            }
        }
        if total > 0 {
            self.stats.expired.fetch_add(total as u64, Relaxed);
            tracing::info!(
                events = total,
                older_than = cutoff,
                "deleted events past events_retention"
            );
        }
        Ok(total)
    }
}

/// Calls `f` for each event with `from <= when <= until` whose tags match,
/// by `when` then id, until it returns false. Reads only the window: the
/// keys are ordered by time. For readers that hold the store's engine but
/// not the event store (the render function `events()`).
pub fn visit(
    kv: &dyn Kv,
    from: i64,
    until: i64,
    tags: &TagFilter,
    f: &mut dyn FnMut(Event) -> bool,
) -> Result<(), KvError> {
    if from > until {
        return Ok(());
    }
    let mut lo = vec![T];
    lo.extend_from_slice(&when_key(from));
    let mut hi = vec![T];
    hi.extend_from_slice(&when_key(until));
    // Past every id of `until`: keys are 17 bytes.
    hi.extend_from_slice(&[0xff; 9]);
    kv.scan(
        Space::Events,
        &lo,
        &hi,
        &mut |_, v| match serde_json::from_slice::<Event>(v) {
            Ok(e) if tags.matches(&e.tags) => f(e),
            _ => true,
        },
    )
}

/// [`visit`] into a list of at most `cap` events (more is an error).
pub fn read(
    kv: &dyn Kv,
    from: i64,
    until: i64,
    tags: &TagFilter,
    cap: usize,
) -> Result<Vec<Event>, EventError> {
    let mut out = Vec::new();
    let mut over = false;
    visit(kv, from, until, tags, &mut |e| {
        if out.len() == cap {
            over = true;
            return false;
        }
        out.push(e);
        true
    })?;
    if over {
        return Err(EventError::TooMany { cap });
    }
    Ok(out)
}

/// Tags in a string, as graphite-web's tagging library reads a tag string
/// when an event is stored: split on spaces and commas.
pub fn split_tags(s: &str) -> Vec<String> {
    s.split([' ', ','])
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests;
