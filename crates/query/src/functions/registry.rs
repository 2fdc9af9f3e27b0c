//! The one table of functions: each family's dispatcher with the
//! `/functions` entries of the functions it serves. A name is served if
//! and only if it has an entry here, so what `/functions` lists and what
//! the evaluator runs cannot drift apart (there used to be a list of names
//! per family, a table of entries per family, and the dispatchers' own
//! `match`es, kept in step by hand; four families had no entries at all).

use std::collections::HashMap;
use std::sync::LazyLock;

use super::info::FnInfo;
use super::{
    alias, bucket, combine, filter, forecast, grouping, shift, special, timer, transform, window,
    Args,
};
use crate::eval::{Context, QueryError};
use crate::series::Series;

/// A family's dispatcher: runs `name` if the family serves it.
pub type Dispatch =
    fn(&mut Context<'_>, &str, &Args<'_>) -> Option<Result<Vec<Series>, QueryError>>;

/// One family: its dispatcher and what `/functions` says of each function
/// it serves (the table beside the family's code).
struct Family {
    call: Dispatch,
    functions: &'static [FnInfo],
}

const FAMILIES: &[Family] = &[
    Family {
        call: combine::call,
        functions: combine::INFO,
    },
    Family {
        call: transform::call,
        functions: transform::INFO,
    },
    Family {
        call: alias::call,
        functions: alias::INFO,
    },
    Family {
        call: filter::call,
        functions: filter::INFO,
    },
    Family {
        call: grouping::call,
        functions: grouping::INFO,
    },
    Family {
        call: special::call,
        functions: special::INFO,
    },
    Family {
        call: timer::call,
        functions: timer::INFO,
    },
    Family {
        call: window::call,
        functions: window::INFO,
    },
    Family {
        call: bucket::call,
        functions: bucket::INFO,
    },
    Family {
        call: forecast::call,
        functions: forecast::INFO,
    },
    Family {
        call: shift::call,
        functions: shift::INFO,
    },
];

/// A served function: what `/functions` says of it and who runs it.
#[derive(Clone, Copy)]
pub struct Entry {
    pub info: &'static FnInfo,
    pub call: Dispatch,
}

static BY_NAME: LazyLock<HashMap<&'static str, Entry>> = LazyLock::new(|| {
    FAMILIES
        .iter()
        .flat_map(|f| {
            f.functions
                .iter()
                .map(|info| (info.name, Entry { info, call: f.call }))
        })
        .collect()
});

/// The function called `name`, if this build serves it.
pub fn get(name: &str) -> Option<Entry> {
    BY_NAME.get(name).copied()
}

/// Every served function, by name.
pub fn all() -> Vec<Entry> {
    let mut v: Vec<Entry> = BY_NAME.values().copied().collect();
    v.sort_unstable_by_key(|e| e.info.name);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Call;
    use rollupd_config::StorageConfig;
    use rollupd_store::Store;

    /// graphite-web 1.1.10's groups (render/functions.py).
    const GROUPS: &[&str] = &[
        "Alias",
        "Calculate",
        "Combine",
        "Filter Data",
        "Filter Series",
        "Graph",
        "Sorting",
        "Special",
        "Transform",
    ];

    /// Every entry is described as graphite-web describes its functions:
    /// a group of graphite-web's, a description, parameters (the first
    /// named, typed and, where it is the series, required), and a
    /// signature; no name is listed twice.
    #[test]
    fn every_function_has_its_group_description_and_parameters() {
        let listed: usize = FAMILIES.iter().map(|f| f.functions.len()).sum();
        assert_eq!(listed, all().len(), "a name is listed twice");
        for e in all() {
            let i = e.info;
            assert!(GROUPS.contains(&i.group), "{}: group {:?}", i.name, i.group);
            assert!(i.description.len() > 10, "{}: no description", i.name);
            assert!(!i.params.is_empty(), "{}: no parameters", i.name);
            for p in i.params {
                assert!(!p.name.is_empty(), "{}", i.name);
            }
            let first = &i.params[0];
            if first.ty == super::super::info::Ty::SeriesList && !first.multiple {
                assert!(first.required, "{}: {} not required", i.name, first.name);
            }
            assert!(i.signature().starts_with(&format!("{}(", i.name)));
        }
        // The families that had no entries.
        for (name, group, params) in [
            ("movingMedian", "Calculate", 3),
            ("movingWindow", "Calculate", 4),
            ("summarize", "Transform", 4),
            ("hitcount", "Transform", 3),
            ("holtWintersConfidenceArea", "Calculate", 4),
            ("holtWintersForecast", "Calculate", 3),
            ("linearRegression", "Calculate", 3),
            ("timeStack", "Transform", 4),
        ] {
            let i = get(name).unwrap().info;
            assert_eq!((i.group, i.params.len()), (group, params), "{name}");
        }
        assert_eq!(
            get("summarize").unwrap().info.signature(),
            "summarize(seriesList, intervalString, func='sum', alignToFrom=False)"
        );
    }

    /// Every entry's family runs it: called without arguments, each one
    /// is answered by its family (an error about its arguments, or a
    /// result), never passed over as unknown, and never a panic.
    #[test]
    fn every_listed_function_is_dispatched_by_its_family() {
        let store = Store::in_memory(&StorageConfig::default()).unwrap();
        for e in all() {
            let mut ctx = super::super::testutil::ctx(&store, 1_000_000, 1_003_600, 1_003_600);
            let call = Call {
                name: e.info.name.to_string(),
                args: vec![],
                kwargs: vec![],
            };
            // Through the evaluator's own entry point, which asks the
            // registry: an entry whose family does not run it is unknown.
            let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                super::super::call(&mut ctx, &call)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }));
            match got {
                Ok(Err(msg)) => assert!(!msg.contains("unknown function"), "{msg}"),
                Ok(Ok(())) => {}
                Err(_) => panic!("{}() without arguments panicked", e.info.name),
            }
        }
    }
}
