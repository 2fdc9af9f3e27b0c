#![expect(
    clippy::cast_possible_wrap,
    reason = "EXPIRE_CHUNK and MAX_PER_REQUEST are small constants (thousands)"
)]

use super::*;
use rollupd_store::mem::MemKv;

fn new(when: i64, what: &str, tags: &str) -> QueuedEvent {
    QueuedEvent {
        when,
        what: what.into(),
        tags: split_tags(tags),
        data: String::new(),
    }
}

fn all_of(tags: &[&str]) -> TagFilter {
    TagFilter::AllOf(tags.iter().map(|t| t.to_string()).collect())
}

fn whats(v: &[Event]) -> Vec<&str> {
    v.iter().map(|e| e.what.as_str()).collect()
}

fn mem() -> Arc<dyn Kv> {
    Arc::new(MemKv::new())
}

#[test]
fn add_query_delete_and_reopen() {
    let kv = mem();
    let ev = EventStore::open(kv.clone()).unwrap();
    let a = ev.add(new(200, "web deploy 2", "deploy web")).unwrap();
    let b = ev.add(new(100, "db config", "db,config")).unwrap();
    ev.add(new(300, "api deploy", "deploy api")).unwrap();
    let all = ev.query(0, 1000, &TagFilter::Every).unwrap();
    assert_eq!(
        all.iter().map(|e| e.when).collect::<Vec<_>>(),
        vec![100, 200, 300]
    );
    assert_eq!(ev.query(0, 1000, &all_of(&["deploy"])).unwrap().len(), 2);
    assert_eq!(
        ev.query(0, 1000, &all_of(&["deploy", "web"])).unwrap(),
        vec![a.clone()]
    );
    let any = TagFilter::AnyOf(vec!["web".into(), "db".into()]);
    assert_eq!(
        whats(&ev.query(0, 1000, &any).unwrap()),
        ["db config", "web deploy 2"]
    );
    assert_eq!(
        ev.query(150, 250, &TagFilter::Every).unwrap(),
        vec![a.clone()]
    );
    // Both ends are inclusive.
    assert_eq!(
        ev.query(200, 200, &TagFilter::Every).unwrap(),
        vec![a.clone()]
    );
    assert!(ev.delete(b.id).unwrap());
    assert!(!ev.delete(b.id).unwrap());
    assert_eq!(ev.len(), 2);
    let again = EventStore::open(kv).unwrap();
    assert_eq!(again.len(), 2);
    let c = again.add(new(400, "x", "")).unwrap();
    assert!(c.id > a.id, "ids keep rising after a reopen");
}

/// An id is never handed out twice: deleting (or expiring) the newest
/// event and restarting used to give its id to the next event, so a
/// client's `DELETE /events/<id>` could remove someone else's event.
#[test]
fn ids_are_not_reused_after_the_newest_is_deleted_and_the_store_reopened() {
    let kv = mem();
    let ev = EventStore::open(kv.clone()).unwrap();
    ev.add(new(1, "a", "")).unwrap();
    let b = ev.add(new(2, "b", "")).unwrap();
    assert!(ev.delete(b.id).unwrap());
    let again = EventStore::open(kv.clone()).unwrap();
    let c = again.add(new(3, "c", "")).unwrap();
    assert!(c.id > b.id, "id {} reused", c.id);
    // Also when every event expired.
    let limits = EventLimits {
        max_events: 10,
        retention: Duration::from_secs(10),
    };
    let again = EventStore::open_with(kv.clone(), limits).unwrap();
    assert_eq!(again.expire(1000).unwrap(), 2);
    assert!(again.is_empty());
    let d = EventStore::open(kv).unwrap().add(new(4, "d", "")).unwrap();
    assert!(d.id > c.id, "id {} reused", d.id);
}

/// Retention deletes exactly the events older than now - retention, from
/// the engine (not only from answers), in chunks.
#[test]
fn retention_deletes_old_events_from_the_engine() {
    let kv = mem();
    let limits = EventLimits {
        max_events: 100_000,
        retention: Duration::from_secs(100),
    };
    let ev = EventStore::open_with(kv.clone(), limits).unwrap();
    let batch: Vec<QueuedEvent> = (0..(EXPIRE_CHUNK as i64 + 5))
        .map(|k| new(k, "old", "deploy"))
        .collect();
    assert!(ev.add_all(batch, None).iter().all(|r| r.is_ok()));
    let keep = ev.add(new(50_000, "fresh", "deploy")).unwrap();
    let edge = ev.add(new(49_900, "edge", "deploy")).unwrap();
    assert_eq!(ev.expire(50_000).unwrap(), EXPIRE_CHUNK + 5);
    assert_eq!(ev.len(), 2);
    assert_eq!(ev.stats.expired.load(Relaxed), EXPIRE_CHUNK as u64 + 5);
    let mut keys = 0;
    kv.scan(Space::Events, &[T], &[T + 1], &mut |_, _| {
        keys += 1;
        true
    })
    .unwrap();
    assert_eq!(keys, 2, "expired events are gone from the engine");
    assert_eq!(
        ev.query(0, 100_000, &TagFilter::Every).unwrap(),
        vec![edge.clone(), keep]
    );
    // Their id entries are gone too: deleting one finds nothing.
    assert!(!ev.delete(3).unwrap());
    assert!(ev.delete(edge.id).unwrap());
}

/// A read walks only its window: an engine that counts the records it
/// hands out sees the window's events, not the whole store.
#[test]
fn a_read_scans_only_its_window() {
    struct Counting(MemKv, AtomicU64);
    impl Kv for Counting {
        fn get(&self, s: Space, k: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
            self.0.get(s, k)
        }
        fn write(&self, b: Batch) -> Result<(), KvError> {
            self.0.write(b)
        }
        fn scan(
            &self,
            s: Space,
            from: &[u8],
            to: &[u8],
            f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
        ) -> Result<(), KvError> {
            self.0.scan(s, from, to, &mut |k, v| {
                self.1.fetch_add(1, Relaxed);
                f(k, v)
            })
        }
        fn disk_bytes(&self) -> u64 {
            0
        }
        fn compact(&self, _: Space, _: &[u8], _: &[u8]) {}
    }
    let kv = Arc::new(Counting(MemKv::new(), AtomicU64::new(0)));
    let ev = EventStore::open(kv.clone()).unwrap();
    let batch: Vec<QueuedEvent> = (0..5_000).map(|k| new(k * 10, "e", "deploy")).collect();
    assert!(ev.add_all(batch, None).iter().all(|r| r.is_ok()));
    kv.1.store(0, Relaxed);
    let got = ev.query(20_000, 20_090, &all_of(&["deploy"])).unwrap();
    assert_eq!(got.len(), 10);
    assert_eq!(
        kv.1.load(Relaxed),
        10,
        "records visited for a 10-event window"
    );
}

#[test]
fn caps_on_stored_events_and_on_one_read() {
    let limits = EventLimits {
        max_events: 3,
        retention: Duration::from_secs(1_000_000),
    };
    let ev = EventStore::open_with(mem(), limits).unwrap();
    let r = ev.add_all((0..5).map(|k| new(k, "e", "t")).collect(), None);
    assert_eq!(r.iter().filter(|r| r.is_ok()).count(), 3);
    assert!(matches!(r[3], Err(EventError::Full { cap: 3 })));
    assert_eq!(ev.stats.refused_full.load(Relaxed), 2);
    assert_eq!(ev.len(), 3);
    // Deleting one makes room again.
    let id = r[0].as_ref().unwrap().id;
    assert!(ev.delete(id).unwrap());
    assert!(ev.add(new(9, "e", "t")).is_ok());

    let ev = EventStore::open(mem()).unwrap();
    let many: Vec<QueuedEvent> = (0..MAX_PER_REQUEST as i64 + 1)
        .map(|k| new(k, "e", "t"))
        .collect();
    assert!(ev.add_all(many, None).iter().all(|r| r.is_ok()));
    let err = ev.query(0, i64::MAX, &TagFilter::Every).unwrap_err();
    assert!(
        matches!(
            err,
            EventError::TooMany {
                cap: MAX_PER_REQUEST
            }
        ),
        "{err}"
    );
    assert_eq!(ev.stats.reads_over_cap.load(Relaxed), 1);
    assert_eq!(
        ev.query(1, MAX_PER_REQUEST as i64, &TagFilter::Every)
            .unwrap()
            .len(),
        MAX_PER_REQUEST
    );
}

#[test]
fn bounds_name_the_field() {
    let ev = EventStore::open(mem()).unwrap();
    let field = |e: QueuedEvent| match ev.add(e) {
        Err(EventError::Invalid { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    let mut e = new(1, &"w".repeat(MAX_WHAT_CHARS + 1), "");
    assert_eq!(field(e.clone()), "what");
    e.what = "é".repeat(MAX_WHAT_CHARS);
    assert!(ev.add(e.clone()).is_ok(), "characters, not bytes");
    e.data = "d".repeat(MAX_DATA_BYTES + 1);
    assert_eq!(field(e.clone()), "data");
    e.data.clear();
    e.tags = (0..=MAX_TAGS).map(|k| k.to_string()).collect();
    assert_eq!(field(e.clone()), "tags");
    e.tags = vec!["t".repeat(MAX_TAG_CHARS + 1)];
    assert_eq!(field(e.clone()), "tags");
    e.tags.clear();
    for when in [
        MAX_WHEN + 1,
        MIN_WHEN - 1,
        i64::MAX,
        i64::MIN,
        1_700_000_000_000,
    ] {
        e.when = when;
        assert_eq!(field(e.clone()), "when");
    }
    for when in [MAX_WHEN, MIN_WHEN, -1, 0] {
        e.when = when;
        assert!(ev.add(e.clone()).is_ok(), "{when}");
    }
    // Negative times sort before positive ones.
    let got = ev.query(MIN_WHEN, MAX_WHEN, &TagFilter::Every).unwrap();
    assert_eq!(
        got.iter().map(|e| e.when).collect::<Vec<_>>(),
        vec![MIN_WHEN, -1, 0, 1, MAX_WHEN]
    );
}

/// Tags are words: a list element with spaces or commas is several tags,
/// as graphite-web's tagging library stores it.
#[test]
fn tags_are_words() {
    let ev = EventStore::open(mem()).unwrap();
    let mut e = new(1, "x", "");
    e.tags = vec!["deploy web".into(), "db,config".into(), "".into()];
    let got = ev.add(e).unwrap();
    assert_eq!(got.tags, ["deploy", "web", "db", "config"]);
}

#[test]
fn tag_filters() {
    let tags: Vec<String> = vec!["deploy".into(), "web".into()];
    assert!(TagFilter::Every.matches(&[]));
    assert!(all_of(&["deploy", "web"]).matches(&tags));
    assert!(!all_of(&["deploy", "db"]).matches(&tags));
    assert!(
        !all_of(&[]).matches(&tags),
        "no tags asked for matches nothing"
    );
    assert!(TagFilter::AnyOf(vec!["db".into(), "web".into()]).matches(&tags));
    assert!(!TagFilter::AnyOf(vec![]).matches(&tags));
}

/// Records of the first layout (key = id) move to the time index at
/// open, once, keeping their ids; new ids continue above them.
#[test]
fn the_first_layout_is_moved_to_the_time_index() {
    let kv = mem();
    let mut b = Batch::default();
    for (id, when, what) in [(7u64, 300, "late"), (3, 100, "early")] {
        let e = Event {
            id,
            when,
            what: what.into(),
            tags: vec!["deploy".into()],
            data: String::new(),
        };
        b.put(
            Space::Events,
            id.to_be_bytes().to_vec(),
            serde_json::to_vec(&e).unwrap(),
        );
    }
    kv.write(b).unwrap();
    let ev = EventStore::open(kv.clone()).unwrap();
    assert_eq!(ev.len(), 2);
    let got = ev.query(0, 1000, &all_of(&["deploy"])).unwrap();
    assert_eq!(
        got.iter()
            .map(|e| (e.id, e.what.as_str()))
            .collect::<Vec<_>>(),
        [(3, "early"), (7, "late")]
    );
    assert!(ev.add(new(5, "n", "")).unwrap().id > 7);
    assert!(ev.delete(3).unwrap());
    let mut old = 0;
    kv.scan(Space::Events, &[], &[I], &mut |_, _| {
        old += 1;
        true
    })
    .unwrap();
    assert_eq!(old, 0, "no record of the first layout is left");
    assert_eq!(EventStore::open(kv).unwrap().len(), 2);
}

/// Two daemons on one shared engine, in a burst: each one's ids rise, no
/// id is given twice, each carries its daemon's tag and starts at the
/// clock's second, all below 2^53; each sees and deletes the other's.
#[test]
fn daemons_sharing_an_engine_do_not_share_ids() {
    let kv = mem();
    let x = EventStore::open_shared(kv.clone(), EventLimits::default());
    let y = EventStore::open_shared(kv.clone(), EventLimits::default());
    let (tx, ty) = (x.shared.unwrap(), y.shared.unwrap());
    assert_ne!(tx, ty, "two draws of 20 bits (one chance in a million)");
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut ids = Vec::new();
    for k in 0..200 {
        let store = if k % 2 == 0 { &x } else { &y };
        ids.push(store.add(new(100 + k, "deploy", "deploy")).unwrap().id);
    }
    let (mine, theirs): (Vec<u64>, Vec<u64>) = (
        ids.iter().step_by(2).copied().collect(),
        ids.iter().skip(1).step_by(2).copied().collect(),
    );
    assert!(mine.windows(2).all(|w| w[0] < w[1]), "{mine:?}");
    assert!(theirs.windows(2).all(|w| w[0] < w[1]), "{theirs:?}");
    assert!(mine.iter().all(|id| id & 0xf_ffff == tx));
    assert!(theirs.iter().all(|id| id & 0xf_ffff == ty));
    assert!(
        (mine[0] >> 20).abs_diff(clock) < 60,
        "{} {clock}",
        mine[0] >> 20
    );
    assert!(ids.iter().all(|&id| id < 1 << 53));
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 200);
    assert_eq!(y.query(0, 1000, &TagFilter::Every).unwrap().len(), 200);
    // An id from either deletes the event for both.
    assert!(y.delete(ids[0]).unwrap());
    assert_eq!(x.query(0, 1000, &TagFilter::Every).unwrap().len(), 199);
    // No counter is kept on a shared engine; the embedded one counts from 1.
    assert_eq!(kv.get(Space::Events, META_NEXT).unwrap(), None);
    let local = EventStore::open(mem()).unwrap();
    assert_eq!(local.add(new(1, "a", "")).unwrap().id, 1);
    assert_eq!(local.add(new(1, "b", "")).unwrap().id, 2);
}
