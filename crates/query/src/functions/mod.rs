//! The function library: graphite-web's render functions, each with its
//! semantics (series names, tags, None handling), written from its
//! documentation and behaviour. One file per family.

mod aggfunc;
mod alias;
mod bucket;
mod combine;
mod filter;
mod forecast;
mod grouping;
pub mod info;
pub mod registry;
mod shift;
mod special;
#[cfg(test)]
mod testutil;
mod timer;
mod transform;
mod window;

#[cfg(test)]
mod eval_tests;
#[cfg(test)]
mod limit_tests;

use super::eval::{Context, QueryError};
use super::parse::{Call, Expr};
use super::series::Series;

/// A call's arguments, positional or by keyword.
pub struct Args<'c> {
    pub call: &'c Call,
    /// Points of the series the function was given (through
    /// [`Args::series`], [`Args::series_from`], [`Args::series_over`]):
    /// what it returns beyond them, it made, and that is charged to the
    /// request's points cap.
    given: std::cell::Cell<usize>,
    /// Points the function charged itself ([`Args::charge`]) before
    /// making them.
    charged: std::cell::Cell<usize>,
}

/// Points held by the values of `list`.
pub fn points_of(list: &[Series]) -> usize {
    list.iter().map(|s| s.values.len()).sum()
}

impl<'c> Args<'c> {
    /// Argument `i`, or keyword `name`.
    pub fn get(&self, i: usize, name: &str) -> Option<&'c Expr> {
        self.call
            .kwargs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .or_else(|| self.call.args.get(i))
    }

    fn bad(&self, what: String) -> QueryError {
        QueryError::BadArgument(format!("{}(): {what}", self.call.name))
    }

    /// Charges `points` the function is about to make to the request's
    /// points cap, before it allocates them (also checks the deadline).
    pub fn charge(&self, ctx: &mut Context<'_>, points: usize) -> Result<(), QueryError> {
        ctx.charge(points)?;
        self.charged.set(self.charged.get().saturating_add(points));
        Ok(())
    }

    /// Before allocating an output of `points` points in all: charges what
    /// of it goes beyond the points the function was given (and anything
    /// it charged already), so a function that makes more than it reads
    /// (summarize into 1 s buckets) is refused before it takes the memory.
    pub fn will_make(&self, ctx: &mut Context<'_>, points: usize) -> Result<(), QueryError> {
        let covered = self.given.get().saturating_add(self.charged.get());
        self.charge(ctx, points.saturating_sub(covered))
    }

    /// Counts `list` as given to the function.
    fn count_given(&self, list: Vec<Series>) -> Vec<Series> {
        self.given.set(self.given.get() + points_of(&list));
        list
    }

    pub fn series(&self, ctx: &mut Context<'_>, i: usize) -> Result<Vec<Series>, QueryError> {
        match self.get(i, "seriesList") {
            Some(e) => ctx.eval(e).map(|l| self.count_given(l)),
            None => Err(self.bad(format!("argument {} (a series list) is missing", i + 1))),
        }
    }

    /// Argument `i` (a series list) evaluated as if the request asked for
    /// `[from, until]` ([`Context::eval_over`]).
    pub fn series_over(
        &self,
        ctx: &mut Context<'_>,
        i: usize,
        from: i64,
        until: i64,
    ) -> Result<Vec<Series>, QueryError> {
        match self.get(i, "seriesList") {
            Some(e) => ctx.eval_over(e, from, until).map(|l| self.count_given(l)),
            None => Err(self.bad(format!("argument {} (a series list) is missing", i + 1))),
        }
    }

    /// Argument `i` (a series list) with `seconds` of bootstrap before the
    /// request's `from`, so the first points of a window function are
    /// computed from real data before the requested range.
    pub fn series_bootstrapped(
        &self,
        ctx: &mut Context<'_>,
        i: usize,
        seconds: i64,
    ) -> Result<Vec<Series>, QueryError> {
        let from = ctx.shifted(ctx.from, seconds.checked_neg().unwrap_or(i64::MAX))?;
        self.series_over(ctx, i, from, ctx.until)
    }

    /// Argument `e` of this call, evaluated, counted as given.
    pub fn eval(&self, ctx: &mut Context<'_>, e: &Expr) -> Result<Vec<Series>, QueryError> {
        ctx.eval(e).map(|l| self.count_given(l))
    }

    /// Every argument from `i` on, as series (`*seriesLists`).
    pub fn series_from(&self, ctx: &mut Context<'_>, i: usize) -> Result<Vec<Series>, QueryError> {
        let mut out = Vec::new();
        for e in self.call.args.iter().skip(i) {
            out.extend(ctx.eval(e)?);
        }
        Ok(self.count_given(out))
    }

    pub fn num(&self, i: usize, name: &str) -> Result<f64, QueryError> {
        match self.get(i, name) {
            Some(Expr::Num(n)) => Ok(*n),
            Some(Expr::Int(n)) => Ok(*n as f64),
            Some(other) => Err(self.bad(format!(
                "{name} must be a number, not {}",
                other.to_target()
            ))),
            None => Err(self.bad(format!("{name} is missing"))),
        }
    }

    pub fn opt_num(&self, i: usize, name: &str) -> Result<Option<f64>, QueryError> {
        match self.get(i, name) {
            None | Some(Expr::None) => Ok(None),
            Some(_) => self.num(i, name).map(Some),
        }
    }

    pub fn int(&self, i: usize, name: &str) -> Result<i64, QueryError> {
        let n = self.num(i, name)?;
        if n.fract() != 0.0 {
            return Err(self.bad(format!("{name} must be an integer, not {n}")));
        }
        Ok(py_int(n))
    }

    pub fn string(&self, i: usize, name: &str) -> Result<&'c str, QueryError> {
        match self.get(i, name) {
            Some(Expr::Str(s)) => Ok(s),
            Some(other) => Err(self.bad(format!(
                "{name} must be a string, not {}",
                other.to_target()
            ))),
            None => Err(self.bad(format!("{name} is missing"))),
        }
    }

    pub fn opt_string(&self, i: usize, name: &str) -> Result<Option<&'c str>, QueryError> {
        match self.get(i, name) {
            None | Some(Expr::None) => Ok(None),
            Some(_) => self.string(i, name).map(Some),
        }
    }

    pub fn opt_bool(&self, i: usize, name: &str) -> Result<Option<bool>, QueryError> {
        match self.get(i, name) {
            None | Some(Expr::None) => Ok(None),
            Some(Expr::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.bad(format!(
                "{name} must be true or false, not {}",
                other.to_target()
            ))),
        }
    }

    /// The raw text of argument `i` as graphite-web repeats it in names.
    pub fn repr(&self, i: usize, name: &str) -> String {
        self.get(i, name).map(Expr::to_target).unwrap_or_default()
    }
}

/// Runs one function call: the registry says which family runs it. What it
/// returns beyond the points it was given counts against the request's
/// points cap: functions that make points from a user's argument
/// (summarize's interval, delay's steps) charge them before allocating, and
/// this catches what any other makes.
pub fn call(ctx: &mut Context<'_>, c: &Call) -> Result<Vec<Series>, QueryError> {
    let a = Args {
        call: c,
        given: Default::default(),
        charged: Default::default(),
    };
    let out = registry::get(&c.name)
        .and_then(|e| (e.call)(ctx, &c.name, &a))
        .unwrap_or_else(|| Err(QueryError::UnknownFunction(c.name.clone())))?;
    let made = points_of(&out).saturating_sub(a.given.get().saturating_add(a.charged.get()));
    ctx.charge(made)?;
    Ok(out)
}

/// Names every function this build serves (for `/functions`).
pub fn names() -> Vec<&'static str> {
    registry::all().iter().map(|e| e.info.name).collect()
}

/// What `/functions` says about each function, by name.
pub fn infos() -> impl Iterator<Item = &'static info::FnInfo> {
    registry::all().into_iter().map(|e| e.info)
}

// ---- Argument helpers used by the families added with the function
// tables (kept apart from the ones above).

/// A node argument of aliasByNode, groupByNodes, asPercent...: a path
/// position (negative counts from the end) or a tag name.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeArg {
    Index(i64),
    Tag(String),
}

impl<'c> Args<'c> {
    /// Whether argument `i` (or keyword `name`) was given at all.
    pub fn given(&self, i: usize, name: &str) -> bool {
        self.get(i, name).is_some()
    }

    /// A `float` parameter and the text Python's `str()` gives it once
    /// graphite-web's validation has made it a float (`2` → `"2.0"`).
    pub fn float_str(&self, i: usize, name: &str) -> Result<(f64, String), QueryError> {
        let v = self.num(i, name)?;
        Ok((v, super::format::py_float_repr(v)))
    }

    /// Node arguments from position `i` on (`*nodes`).
    pub fn nodes_from(&self, i: usize) -> Result<Vec<NodeArg>, QueryError> {
        self.call
            .args
            .iter()
            .skip(i)
            .map(|e| {
                node_arg(e).ok_or_else(|| {
                    self.bad(format!(
                        "a node is an integer or a tag name, not {}",
                        e.to_target()
                    ))
                })
            })
            .collect()
    }

    pub fn bad_arg(&self, what: impl std::fmt::Display) -> QueryError {
        self.bad(what.to_string())
    }
}

/// graphite-web's node-or-tag rule: a whole number is a position, anything
/// else names a tag.
pub fn node_arg(e: &Expr) -> Option<NodeArg> {
    match e {
        Expr::Int(n) => Some(NodeArg::Index(*n)),
        Expr::Num(f) if f.fract() == 0.0 && f.is_finite() => Some(NodeArg::Index(py_int(*f))),
        Expr::Num(f) => Some(NodeArg::Tag(super::format::py_float_repr(*f))),
        Expr::Str(s) => Some(NodeArg::Tag(s.clone())),
        Expr::Path(s) => Some(NodeArg::Tag(s.clone())),
        _ => None,
    }
}

/// Python's `int(v)` of a float: its integer part, toward zero.
#[expect(
    clippy::cast_possible_truncation,
    reason = "the saturating `as` is the intended semantic: toward zero as Python's int() \
              for every float within i64; where Python would raise (NaN, infinities) or \
              make an integer past i64, it gives 0 or i64::MIN/MAX instead of failing"
)]
fn py_int(v: f64) -> i64 {
    v as i64
}

/// Python's slice bound `i` over a sequence of `len`: a negative one counts
/// from the end; either is clamped to `0..=len`.
fn py_bound(len: usize, i: i64) -> usize {
    if i < 0 {
        len.saturating_sub(usize::try_from(i.unsigned_abs()).unwrap_or(usize::MAX))
    } else {
        usize::try_from(i).map_or(len, |i| i.min(len))
    }
}
