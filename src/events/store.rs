//! Graphite events (deploy lines) kept in the store's engine, in the
//! `Events` space: key = id (u64 BE), value = the event as JSON. Events are
//! few, so a query scans them all.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::store::kv::{Batch, Kv, KvError, Space};

/// One event as graphite-web's `/events/get_data` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: u64,
    pub when: i64,
    pub what: String,
    pub tags: Vec<String>,
    pub data: String,
}

/// How several tags select events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagSet {
    /// An event with any of the tags.
    Union,
    /// An event with all of the tags.
    Intersection,
}

pub struct EventStore {
    kv: Arc<dyn Kv>,
    next: AtomicU64,
}

impl EventStore {
    pub fn open(kv: Arc<dyn Kv>) -> Result<EventStore, KvError> {
        let mut max = 0u64;
        kv.scan(Space::Events, &[], &[0xff; 9], &mut |k, _| {
            if let Ok(b) = <[u8; 8]>::try_from(k) {
                max = max.max(u64::from_be_bytes(b));
            }
            true
        })?;
        Ok(EventStore {
            kv,
            next: AtomicU64::new(max + 1),
        })
    }

    pub fn add(
        &self,
        when: i64,
        what: &str,
        tags: Vec<String>,
        data: &str,
    ) -> Result<Event, KvError> {
        let e = Event {
            id: self.next.fetch_add(1, Relaxed),
            when,
            what: what.to_string(),
            tags,
            data: data.to_string(),
        };
        let mut b = Batch::default();
        let value = serde_json::to_vec(&e).map_err(|x| KvError::io(x.to_string()))?;
        b.put(Space::Events, e.id.to_be_bytes().to_vec(), value);
        self.kv.write(b)?;
        Ok(e)
    }

    pub fn delete(&self, id: u64) -> Result<bool, KvError> {
        let key = id.to_be_bytes();
        if self.kv.get(Space::Events, &key)?.is_none() {
            return Ok(false);
        }
        let mut b = Batch::default();
        b.delete(Space::Events, key.to_vec());
        self.kv.write(b)?;
        Ok(true)
    }

    /// Events with `from <= when <= until` whose tags match, by `when`.
    pub fn query(
        &self,
        from: i64,
        until: i64,
        tags: &[String],
        set: TagSet,
    ) -> Result<Vec<Event>, KvError> {
        read(self.kv.as_ref(), from, until, tags, set)
    }

    /// Deletes events older than `before`.
    pub fn expire(&self, before: i64) -> Result<usize, KvError> {
        let mut doomed = Vec::new();
        self.kv.scan(Space::Events, &[], &[0xff; 9], &mut |k, v| {
            if let Ok(e) = serde_json::from_slice::<Event>(v) {
                if e.when < before {
                    doomed.push(k.to_vec());
                }
            }
            true
        })?;
        if doomed.is_empty() {
            return Ok(0);
        }
        let mut b = Batch::default();
        let n = doomed.len();
        for k in doomed {
            b.delete(Space::Events, k);
        }
        self.kv.write(b)?;
        Ok(n)
    }
}

/// [`EventStore::query`] on the engine itself, for readers that hold the
/// store but not the event store (the render function `events()`): events
/// live in the store's engine, and reading them needs no id counter.
pub fn read(
    kv: &dyn Kv,
    from: i64,
    until: i64,
    tags: &[String],
    set: TagSet,
) -> Result<Vec<Event>, KvError> {
    let mut out = Vec::new();
    kv.scan(Space::Events, &[], &[0xff; 9], &mut |_, v| {
        if let Ok(e) = serde_json::from_slice::<Event>(v) {
            let in_time = e.when >= from && e.when <= until;
            let tagged = tags.is_empty()
                || match set {
                    TagSet::Union => tags.iter().any(|t| e.tags.contains(t)),
                    TagSet::Intersection => tags.iter().all(|t| e.tags.contains(t)),
                };
            if in_time && tagged {
                out.push(e);
            }
        }
        true
    })?;
    out.sort_by(|a, b| a.when.cmp(&b.when).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// graphite-web's tag splitting: a JSON list, or a space- (or comma-)
/// separated string.
pub fn split_tags(s: &str) -> Vec<String> {
    s.split([' ', ','])
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::mem::MemKv;

    #[test]
    fn add_query_delete_and_reopen() {
        let kv: Arc<dyn Kv> = Arc::new(MemKv::new());
        let ev = EventStore::open(kv.clone()).unwrap();
        let a = ev
            .add(200, "web deploy 2", split_tags("deploy web"), "v2")
            .unwrap();
        let b = ev
            .add(100, "db config", split_tags("db,config"), "")
            .unwrap();
        ev.add(300, "api deploy", vec!["deploy".into(), "api".into()], "")
            .unwrap();
        let all = ev.query(0, 1000, &[], TagSet::Union).unwrap();
        assert_eq!(
            all.iter().map(|e| e.when).collect::<Vec<_>>(),
            vec![100, 200, 300]
        );
        let deploys = ev
            .query(0, 1000, &["deploy".into()], TagSet::Union)
            .unwrap();
        assert_eq!(deploys.len(), 2);
        let both = ev
            .query(
                0,
                1000,
                &["deploy".into(), "web".into()],
                TagSet::Intersection,
            )
            .unwrap();
        assert_eq!(both, vec![a.clone()]);
        assert_eq!(
            ev.query(150, 250, &[], TagSet::Union).unwrap(),
            vec![a.clone()]
        );
        assert!(ev.delete(b.id).unwrap());
        assert!(!ev.delete(b.id).unwrap());
        let again = EventStore::open(kv).unwrap();
        let c = again.add(400, "x", vec![], "").unwrap();
        assert!(c.id > a.id, "ids keep rising after a reopen");
        assert_eq!(again.expire(250).unwrap(), 1);
    }
}
