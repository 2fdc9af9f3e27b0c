//! The in-memory engine: ordered maps behind one lock. It serves the tests
//! and benchmarks that are about the store's logic, not about RocksDB, and it
//! can be told to fail writes as a full disk would.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use parking_lot::RwLock;

use super::kv::{Batch, Kv, KvError, KvErrorKind, Op, Space};

type Spaces = BTreeMap<Space, BTreeMap<Vec<u8>, Vec<u8>>>;

#[derive(Default)]
pub struct MemKv {
    spaces: RwLock<Spaces>,
    full: AtomicBool,
}

impl MemKv {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every write fail as `ENOSPC` would, until called with false.
    pub fn set_full(&self, full: bool) {
        self.full.store(full, Relaxed);
    }

    /// What a `kill -9` at this instant would leave: a copy of every space,
    /// taken under the lock, so each batch is in it whole or not at all.
    pub fn crash_copy(&self) -> MemKv {
        MemKv {
            spaces: RwLock::new(self.spaces.read().clone()),
            full: AtomicBool::new(false),
        }
    }

    /// Keys and values held in a space (for tests).
    pub fn len(&self, space: Space) -> usize {
        self.spaces.read().get(&space).map_or(0, |m| m.len())
    }

    /// Sum of key and value lengths in a space (for tests and benches).
    pub fn bytes(&self, space: Space) -> u64 {
        self.spaces.read().get(&space).map_or(0, |m| {
            m.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum()
        })
    }
}

impl Kv for MemKv {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self
            .spaces
            .read()
            .get(&space)
            .and_then(|m| m.get(key).cloned()))
    }

    fn write(&self, batch: Batch) -> Result<(), KvError> {
        if self.full.load(Relaxed) {
            return Err(KvError {
                kind: KvErrorKind::NoSpace,
                message: "No space left on device (simulated)".into(),
            });
        }
        let mut spaces = self.spaces.write();
        for op in batch.ops {
            match op {
                Op::Put(s, k, v) => {
                    spaces.entry(s).or_default().insert(k, v);
                }
                Op::Delete(s, k) => {
                    spaces.entry(s).or_default().remove(&k);
                }
                Op::DeleteRange(s, from, to) => {
                    let m = spaces.entry(s).or_default();
                    let doomed: Vec<Vec<u8>> = m.range(from..to).map(|(k, _)| k.clone()).collect();
                    for k in doomed {
                        m.remove(&k);
                    }
                }
            }
        }
        Ok(())
    }

    fn scan(
        &self,
        space: Space,
        from: &[u8],
        to: &[u8],
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), KvError> {
        if from >= to {
            return Ok(());
        }
        let spaces = self.spaces.read();
        if let Some(m) = spaces.get(&space) {
            for (k, v) in m.range(from.to_vec()..to.to_vec()) {
                if !f(k, v) {
                    break;
                }
            }
        }
        Ok(())
    }

    fn disk_bytes(&self) -> u64 {
        0
    }

    fn compact(&self, _space: Space, _from: &[u8], _to: &[u8]) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_is_applied_in_order_and_ranges_delete() {
        let kv = MemKv::new();
        let mut b = Batch::default();
        for i in 0u8..10 {
            b.put(Space::Rows, vec![i], vec![i]);
        }
        b.delete(Space::Rows, vec![3]);
        b.delete_range(Space::Rows, vec![5], vec![8]);
        kv.write(b).unwrap();
        let mut seen = vec![];
        kv.scan(Space::Rows, &[0], &[255], &mut |k, _| {
            seen.push(k[0]);
            true
        })
        .unwrap();
        assert_eq!(seen, vec![0, 1, 2, 4, 8, 9]);
        assert_eq!(kv.get(Space::Rows, &[9]).unwrap(), Some(vec![9]));
        assert_eq!(kv.get(Space::Meta, &[9]).unwrap(), None);
    }

    #[test]
    fn a_full_disk_fails_writes_and_keeps_reads() {
        let kv = MemKv::new();
        let mut b = Batch::default();
        b.put(Space::Meta, b"a".to_vec(), b"1".to_vec());
        kv.write(b.clone()).unwrap();
        kv.set_full(true);
        let e = kv.write(b).unwrap_err();
        assert_eq!(e.kind, KvErrorKind::NoSpace);
        assert_eq!(kv.get(Space::Meta, b"a").unwrap(), Some(b"1".to_vec()));
    }
}
