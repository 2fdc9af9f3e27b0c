//! Which aggregator evaluates which rule when several share one engine
//! (`[storage] engine = "clickhouse"`, behind a relay).
//!
//! Every aggregator reads the same series, so each could evaluate every
//! rule; but then each would write the same states, record each
//! transition once per aggregator and notify once per aggregator. Instead
//! each rule has one evaluator: every aggregator writes a beat (its tag
//! and the time) to the shared `alerts` space at each `reload_check`, takes
//! as members the tags that beat within the last few checks, and gives
//! each rule to the member with the highest score for it (rendezvous
//! hashing: xxh3 of the tag and the rule's name). Every member computes the
//! same owner from the same beats, so no election or lock is needed; a
//! member that stops beating loses its rules to the others within the
//! window, and only the rules it owned move (a new member takes about a
//! share of 1/n of them).
//!
//! While two members see different beats (one has not read the newest
//! yet), a rule can have two evaluators for up to one check: both write
//! the same states, and Alertmanager folds their notifications, which
//! carry the same labels, into one alert, as it does for a pair of
//! Prometheus servers.

use parking_lot::RwLock;
use xxhash_rust::xxh3::xxh3_64;

/// One aggregator's view of the members.
pub struct Peers {
    tag: u64,
    /// Members whose beat was seen within the window, this one included
    /// once its own beat was written; sorted.
    members: RwLock<Vec<u64>>,
}

fn score(tag: u64, rule: &str) -> u64 {
    let mut b = Vec::with_capacity(8 + rule.len());
    b.extend_from_slice(&tag.to_be_bytes());
    b.extend_from_slice(rule.as_bytes());
    xxh3_64(&b)
}

impl Peers {
    /// A member with a tag drawn at random (64 bits: two members drawing
    /// the same one is not a concern).
    pub fn new() -> Peers {
        Peers::with_tag(fastrand::u64(..))
    }

    pub fn with_tag(tag: u64) -> Peers {
        Peers {
            tag,
            members: RwLock::new(vec![tag]),
        }
    }

    pub fn tag(&self) -> u64 {
        self.tag
    }

    /// The members, from the beats read (`(tag, at)`): those at or after
    /// `since`.
    pub fn set_members(&self, beats: &[(u64, i64)], since: i64) {
        let mut m: Vec<u64> = beats
            .iter()
            .filter(|(_, at)| *at >= since)
            .map(|(t, _)| *t)
            .collect();
        m.sort_unstable();
        m.dedup();
        *self.members.write() = m;
    }

    pub fn members(&self) -> Vec<u64> {
        self.members.read().clone()
    }

    /// The member that evaluates `rule`; `None` while no member is known
    /// (the shared engine could not be read, nor this member's beat
    /// written).
    pub fn owner(&self, rule: &str) -> Option<u64> {
        self.members
            .read()
            .iter()
            .copied()
            .max_by_key(|&t| (score(t, rule), t))
    }

    pub fn owns(&self, rule: &str) -> bool {
        self.owner(rule) == Some(self.tag)
    }
}

impl Default for Peers {
    fn default() -> Self {
        Peers::new()
    }
}

/// A tag as the HTTP views show it.
pub fn tag_text(tag: u64) -> String {
    format!("{tag:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_member_computes_the_same_owner_and_rules_spread() {
        let beats: Vec<(u64, i64)> = (1..=3u64).map(|t| (t * 0x9e37_79b9, 100)).collect();
        let views: Vec<Peers> = beats.iter().map(|(t, _)| Peers::with_tag(*t)).collect();
        for v in &views {
            v.set_members(&beats, 90);
        }
        let mut owned = [0usize; 3];
        for i in 0..300 {
            let rule = format!("rule.{i}");
            let owners: Vec<Option<u64>> = views.iter().map(|v| v.owner(&rule)).collect();
            assert!(owners.iter().all(|o| *o == owners[0]), "{rule}: {owners:?}");
            let evaluators = views.iter().filter(|v| v.owns(&rule)).count();
            assert_eq!(evaluators, 1, "{rule}");
            let k = beats.iter().position(|b| Some(b.0) == owners[0]).unwrap();
            owned[k] += 1;
        }
        // About a third each.
        assert!(owned.iter().all(|&n| (60..=140).contains(&n)), "{owned:?}");
    }

    #[test]
    fn a_member_that_stops_beating_loses_only_its_own_rules() {
        let beats: Vec<(u64, i64)> = vec![(11, 100), (22, 100), (33, 100)];
        let p = Peers::with_tag(11);
        p.set_members(&beats, 90);
        let before: Vec<Option<u64>> = (0..200).map(|i| p.owner(&format!("r{i}"))).collect();
        // 33 beat last at 100; the window now starts at 101.
        p.set_members(&[(11, 110), (22, 110), (33, 100)], 101);
        assert_eq!(p.members(), vec![11, 22]);
        for (i, b) in before.iter().enumerate() {
            let now = p.owner(&format!("r{i}"));
            if *b == Some(33) {
                assert!(matches!(now, Some(11 | 22)));
            } else {
                assert_eq!(now, *b, "rule r{i} moved though its owner stayed");
            }
        }
    }

    #[test]
    fn no_members_no_owner() {
        let p = Peers::with_tag(5);
        assert!(p.owns("x"), "alone, before any beat, it evaluates");
        p.set_members(&[], 0);
        assert_eq!(p.owner("x"), None);
        assert!(!p.owns("x"));
    }
}
