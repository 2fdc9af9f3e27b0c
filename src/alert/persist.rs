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
//! | `m` 0x00 member tag (16 hex digits) | a member's last beat (`peers.rs`) |
//!
//! Transitions are keyed by time across all rules, so retention is one
//! range delete and a review of the last 30 days one scan. On an engine
//! several aggregators share, a transition's key ends with the tag of the
//! member that recorded it, so two recorded in the same second with the
//! same sequence do not overwrite each other.

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
const MEMBER: u8 = b'm';

/// A member's beat, as stored.
#[derive(serde::Serialize, serde::Deserialize)]
struct Beat {
    tag: u64,
    at: i64,
}

pub struct Persist {
    kv: Arc<dyn Kv>,
    /// Tells apart transitions recorded in the same second.
    seq: AtomicU32,
    /// This member's tag, on a shared engine: the end of its transitions'
    /// keys.
    tag: Option<u64>,
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

fn member_key(tag: u64) -> Vec<u8> {
    key(MEMBER, &[&super::peers::tag_text(tag)])
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
            tag: None,
        }
    }

    /// On an engine other members share: transitions' keys carry `tag`.
    pub fn shared(kv: Arc<dyn Kv>, tag: u64) -> Persist {
        Persist {
            tag: Some(tag),
            ..Persist::new(kv)
        }
    }

    /// Writes this member's beat at `at`.
    pub fn beat(&self, tag: u64, at: i64) -> Result<(), KvError> {
        let mut b = Batch::default();
        b.put(Space::Alerts, member_key(tag), json(&Beat { tag, at }));
        self.kv.write(b)
    }

    /// Every member's last beat, `(tag, at)`; beats older than `forget`
    /// are deleted.
    pub fn beats(&self, forget: i64) -> Result<Vec<(u64, i64)>, KvError> {
        let (a, z) = prefix_range(&[MEMBER, 0]);
        let all: Vec<(u64, i64)> = self
            .scan_json::<Beat>(&a, &z, usize::MAX)?
            .into_iter()
            .map(|(_, b)| (b.tag, b.at))
            .collect();
        let old: Vec<u64> = all.iter().filter(|b| b.1 < forget).map(|b| b.0).collect();
        if !old.is_empty() {
            let mut b = Batch::default();
            for t in old {
                b.delete(Space::Alerts, member_key(t));
            }
            self.kv.write(b)?;
        }
        Ok(all)
    }

    /// The stored instances of one rule.
    pub fn instances_of(&self, rule: &str) -> Result<Vec<Instance>, KvError> {
        let (a, b) = prefix_range(&key(INSTANCE, &[rule, ""]));
        Ok(self
            .scan_json::<Instance>(&a, &b, usize::MAX)?
            .into_iter()
            .map(|(_, i)| i)
            .collect())
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
            let mut k = history_key(t.at, seq);
            if let Some(tag) = self.tag {
                k.extend_from_slice(&tag.to_be_bytes());
            }
            b.put(Space::Alerts, k, json(t));
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

    /// Two members on one engine: each one's transitions kept (the same
    /// second and sequence under two tags are two records), each one's
    /// beat read by the other, and beats a day old forgotten.
    #[test]
    fn members_sharing_a_store_keep_both_histories_and_see_each_others_beats() {
        let kv: Arc<dyn Kv> = Arc::new(MemKv::default());
        let (a, b) = (Persist::shared(kv.clone(), 1), Persist::shared(kv, 2));
        a.save("r", &[], &[], &[t(100, "r")]).unwrap();
        b.save("r", &[], &[], &[t(100, "r")]).unwrap();
        assert_eq!(a.history(Some("r"), 0, 1000, 10).unwrap().len(), 2);
        a.beat(1, 1000).unwrap();
        b.beat(2, 1005).unwrap();
        b.beat(3, 10).unwrap();
        let mut seen = a.beats(500).unwrap();
        seen.sort_unstable();
        assert_eq!(seen, vec![(1, 1000), (2, 1005), (3, 10)]);
        assert_eq!(b.beats(500).unwrap().len(), 2, "the old beat was deleted");
        // One rule's stored states, not another's whose name it starts.
        let i = Instance::new("s1", Default::default(), 5);
        a.save("r", &[&i], &[], &[]).unwrap();
        a.save(
            "rr",
            &[&Instance::new("s2", Default::default(), 5)],
            &[],
            &[],
        )
        .unwrap();
        let got = b.instances_of("r").unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].series, "s1");
    }
}
