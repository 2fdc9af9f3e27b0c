//! The store's side of `[storage] max_memory`: what to do as the process
//! nears its memory budget. The store weighs what it can free (its heads
//! and unsaved rows, written out by a checkpoint) and what it cannot (the
//! index, RocksDB's caches, the aggregator) by the one figure the kernel's
//! OOM killer goes by: the process's resident set.

/// The process's resident set in bytes (`VmRSS` in /proc/self/status), or
/// `None` where that file does not exist.
pub fn process_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    rss_of(&status)
}

fn rss_of(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// What the store does at a given resident set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pressure {
    /// Under 90 % of the budget: nothing.
    None,
    /// From 90 %: write the rows in memory out now, and shrink the
    /// engine's caches (`Kv::shed`).
    Flush,
    /// Past the budget: also refuse new series until back under 80 %.
    Refuse,
}

/// The pressure at `rss` against `budget`; `refusing` says whether new
/// series are refused already (they stay refused down to 80 %, so the
/// refusal does not flap at the line).
pub fn pressure(rss: u64, budget: u64, refusing: bool) -> Pressure {
    let over = |pct: u64| u128::from(rss) * 100 > u128::from(budget) * u128::from(pct);
    if over(100) || (refusing && over(80)) {
        Pressure::Refuse
    } else if over(90) {
        Pressure::Flush
    } else {
        Pressure::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_is_read_from_the_status_file() {
        let status = "Name:\trollupd\nVmPeak:\t  100 kB\nVmRSS:\t   2048 kB\nThreads:\t4\n";
        assert_eq!(rss_of(status), Some(2 << 20));
        assert_eq!(rss_of("Name:\tx\n"), None);
        assert!(process_rss().is_some_and(|b| b > 0));
    }

    #[test]
    fn pressure_flushes_then_refuses_and_lets_go_lower_than_it_took_hold() {
        let gib = 1u64 << 30;
        assert_eq!(pressure(gib / 2, gib, false), Pressure::None);
        assert_eq!(pressure(gib * 92 / 100, gib, false), Pressure::Flush);
        assert_eq!(pressure(gib + 1, gib, false), Pressure::Refuse);
        // Once refusing, it holds down to 80 %.
        assert_eq!(pressure(gib * 85 / 100, gib, true), Pressure::Refuse);
        assert_eq!(pressure(gib * 79 / 100, gib, true), Pressure::None);
    }
}
