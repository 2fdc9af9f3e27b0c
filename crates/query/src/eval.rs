//! Evaluating a parsed target against the store: paths become fetched
//! series; calls go to the function library.

use rollupd_store::source::SeriesSource;
use rollupd_store::StoreError;

pub use super::parse::MAX_DEPTH;
use super::parse::{parse, Expr, SyntaxError};
use super::series::{tags_of, Series};
use super::time::TimeError;

/// Why a target could not be evaluated. Each maps to one HTTP status in
/// `http::error`.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
    #[error("unknown function {0}()")]
    UnknownFunction(String),
    #[error("{0}")]
    BadArgument(String),
    #[error("bad glob: {0}")]
    Glob(String),
    #[error("{what} cap exceeded: the request needs {needed}, the cap is {cap}")]
    TooMuch {
        what: &'static str,
        needed: usize,
        cap: usize,
    },
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Time(#[from] TimeError),
    /// The request ran past its deadline (`[server] render_timeout`); the
    /// evaluator checks it as it charges points and between steps.
    #[error("the request ran past its deadline of {0:?} (render_timeout)")]
    Deadline(std::time::Duration),
    /// Calls nested deeper than [`MAX_DEPTH`] (the parser refuses such a
    /// target too; this holds for expressions built some other way).
    #[error("calls are nested deeper than {MAX_DEPTH} levels (the nesting limit)")]
    TooDeep,
}

/// Caps that keep one request from reading without bound.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_series: usize,
    pub max_points: usize,
    /// When the request must be answered by, and the timeout it came from
    /// (for the message). `None`: no deadline (tests, the admin port).
    pub deadline: Option<(std::time::Instant, std::time::Duration)>,
}

impl Limits {
    /// `Err(Deadline)` once the request's deadline has passed. Cheap
    /// enough (one clock read) to call every few thousand points.
    pub fn check_deadline(&self) -> Result<(), QueryError> {
        match self.deadline {
            Some((at, timeout)) if std::time::Instant::now() >= at => {
                Err(QueryError::Deadline(timeout))
            }
            _ => Ok(()),
        }
    }
}

/// What one request has used so far, against its [`Limits`]: every target
/// of the request adds to the same counts.
#[derive(Debug, Default, Clone)]
pub struct Spent {
    /// Points read from the store plus points made by functions beyond
    /// what they were given (a summarize into 1 s buckets, a delay...).
    pub points: usize,
    /// Series read from the store (paths, seriesByTag, timer histograms).
    pub series: usize,
    /// Expressions evaluated. Window, shift and forecast functions
    /// evaluate their first argument twice, so nesting them doubles the
    /// work per level: `holtWintersForecast(...)` 40 deep around a path
    /// that matches nothing reads no point, yet would run 2^40 times.
    pub evals: usize,
    /// Calls being evaluated, innermost included.
    depth: usize,
}

/// The most expressions one request may evaluate (see [`Spent::evals`]).
/// applyByNode evaluates its template once per node, so this is well
/// above the series cap times a template's few calls.
pub const MAX_EVALS: usize = 1_000_000;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_series: 100_000,
            max_points: 50_000_000,
            deadline: None,
        }
    }
}

/// One render request's time window and clock.
/// Series fetched at once (one round trip to an engine on a server); the
/// points cap is checked for the whole chunk before it is read.
const FETCH_CHUNK: usize = 256;

pub struct Context<'a> {
    /// What the request reads: the storage interface, whatever the engine.
    pub store: &'a dyn SeriesSource,
    pub from: i64,
    pub until: i64,
    pub now: i64,
    /// The request's time zone (`tz`, else the server's): functions that
    /// align to days or hours (hitcount's alignToInterval) use it.
    pub tz: chrono_tz::Tz,
    /// The server's time zone (graphite-web's TIME_ZONE, which is also its
    /// process's local time): linearRegression parses its times in it, and
    /// `time.mktime` reads wall clocks in it.
    pub server_tz: chrono_tz::Tz,
    /// The request's `xFilesFactor` (graphite-web's DEFAULT_XFILES_FACTOR,
    /// 0, without one): every fetched series carries it, and window and
    /// bucket functions use it when given none.
    pub xff: f64,
    pub limits: Limits,
    /// What the request has used so far (all its targets together).
    pub spent: Spent,
}

impl Context<'_> {
    /// Evaluates `e` as if the request asked for `[from, until]`, then
    /// restores the request's window. This is graphite-web's copied request
    /// context with `startTime`/`endTime` moved, re-evaluating a function's
    /// first argument: the bootstrap of window functions (from moved back
    /// by the window), timeShift, timeStack, linearRegression's source
    /// range. What it reads counts against the same points cap.
    pub fn eval_over(
        &mut self,
        e: &Expr,
        from: i64,
        until: i64,
    ) -> Result<Vec<Series>, QueryError> {
        let saved = (self.from, self.until);
        (self.from, self.until) = (from, until);
        let r = self.eval(e);
        (self.from, self.until) = saved;
        r
    }

    /// `t + by`, or a 400 naming both when the result leaves the times
    /// this daemon handles (a shift of '-100000y', a window of '1000y'
    /// behind a far `from`): never a wrapped or panicking sum.
    pub fn shifted(&self, t: i64, by: i64) -> Result<i64, QueryError> {
        Ok(super::time::add_offset(t, by)?)
    }

    /// Counts `points` more points against the request's cap (and checks
    /// the deadline). Called with the size of what is about to be
    /// allocated, before allocating it.
    pub fn charge(&mut self, points: usize) -> Result<(), QueryError> {
        self.room_for(points)?;
        self.spent.points += points;
        Ok(())
    }

    /// Whether `points` more would fit under the cap, without counting
    /// them; also checks the deadline.
    pub fn room_for(&self, points: usize) -> Result<(), QueryError> {
        self.limits.check_deadline()?;
        let needed = self.spent.points.saturating_add(points);
        if needed > self.limits.max_points {
            return Err(QueryError::TooMuch {
                what: "points",
                needed,
                cap: self.limits.max_points,
            });
        }
        Ok(())
    }

    /// Counts `n` more series read against the request's cap.
    pub fn charge_series(&mut self, n: usize) -> Result<(), QueryError> {
        let needed = self.spent.series.saturating_add(n);
        if needed > self.limits.max_series {
            return Err(QueryError::TooMuch {
                what: "series",
                needed,
                cap: self.limits.max_series,
            });
        }
        self.spent.series = needed;
        Ok(())
    }

    /// How many series the request may still read.
    fn series_left(&self) -> usize {
        self.limits.max_series.saturating_sub(self.spent.series)
    }

    /// The series a path names, fetched, in name order.
    pub fn fetch_path(&mut self, pattern: &str) -> Result<Vec<Series>, QueryError> {
        // One more than is left, to tell "exactly the cap" from "over it".
        let left = self.series_left();
        let ids = self.store.expand(pattern, left + 1).map_err(|e| {
            if e.unavailable {
                QueryError::Store(StoreError::Engine(e.why))
            } else if e.too_wide {
                QueryError::TooMuch {
                    what: "series",
                    needed: self.spent.series.saturating_add(left + 1),
                    cap: self.limits.max_series,
                }
            } else {
                QueryError::Glob(e.to_string())
            }
        })?;
        let mut out = self.fetch_ids(&ids, pattern)?;
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The series `ids`, fetched over the request's window, each tagged
    /// with `path_expression`, in the order of `ids`. Both caps are
    /// checked before the memory is taken: the series count before any
    /// fetch, and each series' window before it is read.
    fn fetch_ids(&mut self, ids: &[u32], path_expression: &str) -> Result<Vec<Series>, QueryError> {
        self.charge_series(ids.len())?;
        let mut out = Vec::with_capacity(ids.len());
        // Serial on purpose: two threads measured slower on sumSeries of
        // 1,000 series (130 ms against 92 ms), contending for the store's
        // lock on open rows. In chunks, so an engine on a server answers a
        // chunk in one round trip.
        for chunk in ids.chunks(FETCH_CHUNK) {
            // The points a window holds are known before it is read: the
            // span over the finest step any archive has is the most it can
            // be, and the store clamps it further to its retention.
            let most: usize = chunk
                .iter()
                .filter_map(|&id| self.window_points_at_most(id))
                .fold(0, usize::saturating_add);
            self.room_for(most)?;
            let fetched = self
                .store
                .fetch_many(chunk, self.from, self.until, self.now)?;
            for (&id, f) in chunk.iter().zip(fetched) {
                let Some(f) = f else {
                    continue;
                };
                let name = self.store.name(id);
                self.charge(f.values.len())?;
                let mut s = Series::new(
                    &name,
                    f.from,
                    f.until - i64::from(f.step),
                    i64::from(f.step),
                    f.values,
                );
                s.end = f.until;
                s.xff = self.xff;
                s.path_expression = path_expression.to_string();
                s.tags = tags_of(&name);
                out.push(s);
            }
        }
        Ok(out)
    }

    /// How many points the store's fetch of series `id` over the request's
    /// window returns, worked out as `Store::fetch` does it (the window
    /// clamped to the retention before `now`, on the grid of the archive a
    /// read that old uses), before it allocates them. `None` when the
    /// series has no retention here. Should the two ever disagree, the
    /// points fetched are still charged after the read.
    fn window_points_at_most(&self, id: u32) -> Option<usize> {
        let r = self.store.retention(id)?;
        // i128: `now` and the window are the user's, within what
        // `time::check_time` lets through, but the margin costs nothing.
        let (now, from, until) = (
            i128::from(self.now),
            i128::from(self.from),
            i128::from(self.until),
        );
        let (from, until) = (from.min(until), from.max(until));
        let oldest = now - i128::from(r.max_retention());
        if from > now || until < oldest {
            return Some(0);
        }
        let (from, until) = (from.max(oldest), until.min(now));
        let age = i64::try_from(now - from).unwrap_or(i64::MAX);
        let step = i128::from(r.archives.get(r.archive_for_read(age))?.step.max(1));
        let from_i = from - from.rem_euclid(step) + step;
        let until_i = (until - until.rem_euclid(step) + step).max(from_i + step);
        Some(usize::try_from((until_i - from_i) / step).unwrap_or(usize::MAX))
    }

    pub fn eval(&mut self, e: &Expr) -> Result<Vec<Series>, QueryError> {
        // The parser refuses deeper targets; this also holds for
        // expressions functions build themselves (applyByNode).
        // A path inside MAX_DEPTH calls is evaluated at MAX_DEPTH + 1.
        if self.spent.depth > MAX_DEPTH {
            return Err(QueryError::TooDeep);
        }
        self.limits.check_deadline()?;
        self.spent.evals += 1;
        if self.spent.evals > MAX_EVALS {
            return Err(QueryError::TooMuch {
                what: "evaluations",
                needed: self.spent.evals,
                cap: MAX_EVALS,
            });
        }
        self.spent.depth += 1;
        let r = self.eval_inner(e);
        self.spent.depth -= 1;
        r
    }

    fn eval_inner(&mut self, e: &Expr) -> Result<Vec<Series>, QueryError> {
        match e {
            Expr::Path(p) => self.fetch_path(p),
            Expr::Call(c) if c.name == "seriesByTag" => {
                let mut exprs = Vec::new();
                for a in &c.args {
                    match a {
                        Expr::Str(s) => exprs.push(s.as_str()),
                        other => {
                            return Err(QueryError::BadArgument(format!(
                                "seriesByTag(): arguments are quoted tag expressions, not {}",
                                other.to_target()
                            )))
                        }
                    }
                }
                let ids = super::tags::series_by_tag(self.store, &exprs)?;
                let target = e.to_target().replace('"', "'");
                // Each id once, in the order the tag index gives them, under
                // the same caps as a path (it skipped the series cap).
                self.fetch_ids(&ids, &target)
            }
            Expr::Call(c) => super::functions::call(self, c),
            other => Err(QueryError::BadArgument(format!(
                "a target must be a series, not {}",
                other.to_target()
            ))),
        }
    }
}

/// Parses and evaluates one target.
pub fn evaluate(ctx: &mut Context<'_>, target: &str) -> Result<Vec<Series>, QueryError> {
    let e = parse(target)?;
    ctx.eval(&e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollupd_config::StorageConfig;
    use rollupd_store::Point;
    use rollupd_store::Store;

    const NOW: i64 = 1_700_010_000;

    /// `wide.sNNN` for NNN < n, an hour at 10 s, each valued its number.
    fn wide_store(n: usize) -> Store {
        let store = Store::in_memory(&StorageConfig::default()).unwrap();
        let names: Vec<String> = (0..n).map(|i| format!("wide.s{i:03}")).collect();
        let mut pts = Vec::new();
        for (i, name) in names.iter().enumerate() {
            for t in (NOW - 3600..NOW).step_by(10) {
                pts.push(Point {
                    name,
                    timestamp: t,
                    value: i as f64,
                });
            }
        }
        store.write(&pts, &[], NOW).unwrap();
        store
    }

    fn ctx(store: &Store, max_points: usize) -> Context<'_> {
        Context {
            store,
            from: NOW - 3600,
            until: NOW,
            now: NOW,
            tz: chrono_tz::Tz::UTC,
            server_tz: chrono_tz::Tz::UTC,
            xff: 0.0,
            limits: Limits {
                max_series: 1000,
                max_points,
                deadline: None,
            },
            spent: Spent::default(),
        }
    }

    #[test]
    fn a_wide_glob_is_fetched_whole_in_name_order_and_counted() {
        let store = wide_store(150);
        let mut c = ctx(&store, 1_000_000);
        let got = c.fetch_path("wide.*").unwrap();
        assert_eq!(got.len(), 150);
        for (i, s) in got.iter().enumerate() {
            assert_eq!(s.name, format!("wide.s{i:03}"));
            assert_eq!(s.values[0], i as f64);
            assert_eq!(s.path_expression, "wide.*");
        }
        let per = got[0].values.len();
        assert_eq!(c.spent.points, 150 * per);
    }

    #[test]
    fn a_wide_glob_over_the_points_cap_is_refused() {
        let store = wide_store(150);
        let mut c = ctx(&store, 100 * 360);
        match c.fetch_path("wide.*") {
            Err(QueryError::TooMuch { what, cap, needed }) => {
                assert_eq!((what, cap), ("points", 100 * 360));
                assert!(needed > cap);
            }
            other => panic!("expected the points cap, got {other:?}"),
        }
    }
}
