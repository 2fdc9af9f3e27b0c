//! Where alerting keeps what must survive a restart: the `alerts` space.
//! Records are JSON (small, rare next to points, and readable with
//! `ldb`); keys sort so each kind is one range:
//!
//! | key | value |
//! |---|---|
//! | `r` 0x00 rule name | a rule saved over HTTP (`RuleSpec`) |
//! | `i` 0x00 rule name 0x00 series | an instance's state (`Instance`) |
//! | `h` at `<i64 BE, sign flipped>` seq `<u32 BE>` | a transition |
//! | `s` 0x00 silence id | a silence |
//!
//! Transitions are keyed by time across all rules, so retention is one
//! range delete and a review of the last 30 days one scan.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::history::Transition;
use super::rule::RuleSpec;
use super::state::Instance;
use crate::store::kv::{Batch, Kv, KvError, Space};

const RULE: u8 = b'r';
const INSTANCE: u8 = b'i';
const HISTORY: u8 = b'h';
const SILENCE: u8 = b's';

pub struct Persist {
    kv: Arc<dyn Kv>,
    /// Tells apart transitions recorded in the same second.
    seq: AtomicU32,
}

fn key(kind: u8, parts: &[&str]) -> Vec<u8> {
    let mut k = vec![kind];
    for p in parts {
        k.push(0);
        k.extend_from_slice(p.as_bytes());
    }
    k
}

/// Sign-flipped big-endian: negative times sort before positive ones.
fn time_key(at: i64) -> [u8; 8] {
    (at.cast_unsigned() ^ (1 << 63)).to_be_bytes()
}

fn history_key(at: i64, seq: u32) -> Vec<u8> {
    let mut k = vec![HISTORY];
    k.extend_from_slice(&time_key(at));
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The range of keys that start with `prefix`.
fn prefix_range(prefix: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut end = prefix.to_vec();
    end.push(0xff);
    (prefix.to_vec(), end)
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    // Serializing these plain structs cannot fail (no maps with non-string
    // keys, no custom serializers that error).
    serde_json::to_vec(v).unwrap_or_default()
}

impl Persist {
    pub fn new(kv: Arc<dyn Kv>) -> Persist {
        Persist {
            kv,
            seq: AtomicU32::new(0),
        }
    }

    fn scan_json<T: DeserializeOwned>(
        &self,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, T)>, KvError> {
        let mut out = Vec::new();
        self.kv.scan(Space::Alerts, from, to, &mut |k, v| {
            // A record this build cannot read (written by a newer one) is
            // skipped rather than failing every read.
            if let Ok(t) = serde_json::from_slice(v) {
                out.push((k.to_vec(), t));
            }
            out.len() < limit
        })?;
        Ok(out)
    }

    pub fn rules(&self) -> Result<Vec<RuleSpec>, KvError> {
        let (a, b) = prefix_range(&[RULE, 0]);
        Ok(self
            .scan_json(&a, &b, usize::MAX)?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    pub fn put_rule(&self, spec: &RuleSpec) -> Result<(), KvError> {
        let mut b = Batch::default();
        b.put(Space::Alerts, key(RULE, &[&spec.name]), json(spec));
        self.kv.write(b)
    }

    /// Deletes a saved rule and its instances' states.
    pub fn delete_rule(&self, name: &str) -> Result<(), KvError> {
        let mut b = Batch::default();
        b.delete(Space::Alerts, key(RULE, &[name]));
        let (a, z) = prefix_range(&key(INSTANCE, &[name, ""]));
        b.delete_range(Space::Alerts, a, z);
        self.kv.write(b)
    }

    /// Every stored instance, by rule.
    pub fn instances(&self) -> Result<Vec<(String, Instance)>, KvError> {
        let (a, b) = prefix_range(&[INSTANCE, 0]);
        Ok(self
            .scan_json::<Instance>(&a, &b, usize::MAX)?
            .into_iter()
            .filter_map(|(k, i)| {
                let rest = k.get(2..)?;
                let cut = rest.iter().position(|&c| c == 0)?;
                Some((String::from_utf8_lossy(&rest[..cut]).into_owned(), i))
            })
            .collect())
    }

    /// One batch: instance states changed or gone, and new transitions.
    pub fn save(
        &self,
        rule: &str,
        changed: &[&Instance],
        gone: &[String],
        transitions: &[Transition],
    ) -> Result<(), KvError> {
        let mut b = Batch::default();
        for i in changed {
            b.put(Space::Alerts, key(INSTANCE, &[rule, &i.series]), json(i));
        }
        for s in gone {
            b.delete(Space::Alerts, key(INSTANCE, &[rule, s]));
        }
        for t in transitions {
            let seq = self.seq.fetch_add(1, Relaxed);
            b.put(Space::Alerts, history_key(t.at, seq), json(t));
        }
        if b.is_empty() {
            return Ok(());
        }
        self.kv.write(b)
    }

    /// Transitions in `[from, until]`, oldest first, those of `rule` only
    /// when given, at most `limit`.
    pub fn history(
        &self,
        rule: Option<&str>,
        from: i64,
        until: i64,
        limit: usize,
    ) -> Result<Vec<Transition>, KvError> {
        let a = history_key(from, 0);
        let z = history_key(until.saturating_add(1), 0);
        let mut out = Vec::new();
        self.kv.scan(Space::Alerts, &a, &z, &mut |_, v| {
            if let Ok(t) = serde_json::from_slice::<Transition>(v) {
                if rule.is_none_or(|r| r == t.rule) {
                    out.push(t);
                }
            }
            out.len() < limit
        })?;
        Ok(out)
    }

    /// Drops transitions older than `before`.
    pub fn expire(&self, before: i64) -> Result<(), KvError> {
        let mut b = Batch::default();
        let (a, z) = (vec![HISTORY], history_key(before, 0));
        b.delete_range(Space::Alerts, a.clone(), z.clone());
        self.kv.write(b)?;
        self.kv.compact(Space::Alerts, &a, &z);
        Ok(())
    }

    pub fn silences<T: DeserializeOwned>(&self) -> Result<Vec<T>, KvError> {
        let (a, b) = prefix_range(&[SILENCE, 0]);
        Ok(self
            .scan_json(&a, &b, usize::MAX)?
            .into_iter()
            .map(|(_, s)| s)
            .collect())
    }

    pub fn put_silence<T: Serialize>(&self, id: &str, s: &T) -> Result<(), KvError> {
        let mut b = Batch::default();
        b.put(Space::Alerts, key(SILENCE, &[id]), json(s));
        self.kv.write(b)
    }

    pub fn delete_silence(&self, id: &str) -> Result<(), KvError> {
        let mut b = Batch::default();
        b.delete(Space::Alerts, key(SILENCE, &[id]));
        self.kv.write(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::state::State;
    use crate::store::mem::MemKv;

    fn t(at: i64, rule: &str) -> Transition {
        Transition {
            at,
            rule: rule.into(),
            series: "s".into(),
            from: State::Ok,
            to: State::Critical,
            value: Some(1.0),
            thresholds: String::new(),
            reason: String::new(),
            deploys: vec![],
            notified: false,
            silenced: false,
        }
    }

    #[test]
    fn records_round_trip_and_history_reads_by_time() {
        let p = Persist::new(Arc::new(MemKv::default()));
        let spec = RuleSpec {
            name: "r".into(),
            target: "a".into(),
            ..Default::default()
        };
        p.put_rule(&spec).unwrap();
        assert_eq!(p.rules().unwrap(), vec![spec]);
        let i = Instance::new("a.b", Default::default(), 5);
        p.save("r", &[&i], &[], &[t(-10, "r"), t(100, "q"), t(200, "r")])
            .unwrap();
        p.save(
            "rr",
            &[&Instance::new("x", Default::default(), 5)],
            &[],
            &[],
        )
        .unwrap();
        let got = p.instances().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].0.as_str(), got[0].1.series.as_str()), ("r", "a.b"));
        let h = p.history(None, -100, 1000, 10).unwrap();
        assert_eq!(
            h.iter().map(|t| t.at).collect::<Vec<_>>(),
            vec![-10, 100, 200]
        );
        let h = p.history(Some("r"), 0, 1000, 10).unwrap();
        assert_eq!(h.iter().map(|t| t.at).collect::<Vec<_>>(), vec![200]);
        assert_eq!(p.history(None, -100, 1000, 2).unwrap().len(), 2);
        p.expire(150).unwrap();
        assert_eq!(
            p.history(None, i64::MIN, i64::MAX - 1, 10).unwrap().len(),
            1
        );
        // Deleting rule "r" leaves rule "rr"'s instance alone.
        p.delete_rule("r").unwrap();
        let got = p.instances().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "rr");
        assert!(p.rules().unwrap().is_empty());
    }
}
