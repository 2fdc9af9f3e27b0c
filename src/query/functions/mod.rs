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

use super::eval::{Context, QueryError};
use super::parse::{Call, Expr};
use super::series::Series;

/// A call's arguments, positional or by keyword.
pub struct Args<'c> {
    pub call: &'c Call,
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

    pub fn series(&self, ctx: &mut Context<'_>, i: usize) -> Result<Vec<Series>, QueryError> {
        match self.get(i, "seriesList") {
            Some(e) => ctx.eval(e),
            None => Err(self.bad(format!("argument {} (a series list) is missing", i + 1))),
        }
    }

    /// Every argument from `i` on, as series (`*seriesLists`).
    pub fn series_from(&self, ctx: &mut Context<'_>, i: usize) -> Result<Vec<Series>, QueryError> {
        let mut out = Vec::new();
        for e in self.call.args.iter().skip(i) {
            out.extend(ctx.eval(e)?);
        }
        Ok(out)
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
        Ok(n as i64)
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

/// Runs one function call: the registry says which family runs it.
pub fn call(ctx: &mut Context<'_>, c: &Call) -> Result<Vec<Series>, QueryError> {
    let a = Args { call: c };
    registry::get(&c.name)
        .and_then(|e| (e.call)(ctx, &c.name, &a))
        .unwrap_or_else(|| Err(QueryError::UnknownFunction(c.name.clone())))
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
        Expr::Num(f) if f.fract() == 0.0 && f.is_finite() => Some(NodeArg::Index(*f as i64)),
        Expr::Num(f) => Some(NodeArg::Tag(super::format::py_float_repr(*f))),
        Expr::Str(s) => Some(NodeArg::Tag(s.clone())),
        Expr::Path(s) => Some(NodeArg::Tag(s.clone())),
        _ => None,
    }
}
