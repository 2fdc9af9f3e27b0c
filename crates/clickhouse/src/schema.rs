//! The ClickHouse schema for our `[storage]` rules: one points table per
//! (retention, aggregation method) a series can be given, each with a
//! rollup section that has only a `<default>`, plus graphite-clickhouse's
//! index tables, a table of timer histograms and one of the links from
//! timer statistics to them.
//!
//! Why a table per pair rather than one table with a pattern per rule:
//! carbon (and our store) picks a series' retention and its method from two
//! lists independently, first match in each. ClickHouse 18.16 (Debian's)
//! takes the first `<pattern>` whose regexp matches for both, and a pattern
//! with a retention must name a function, so the two lists only fit one
//! pattern list as their cross product, whose regexps would have to be the
//! intersections of two regexps (RE2 has no lookahead to write them). The
//! store assigns each series its pair when it is created (as the embedded
//! store does) and the engine writes it to that pair's table, so the server
//! thins every series exactly as the embedded store rolls it up, except
//! for xFilesFactor, which `GraphiteMergeTree` has no notion of
//! (docs/clickhouse.md).

use std::fmt::Write as _;

use rollupd_store::config::StorageConfig;
use rollupd_store::schema::{Assignment, Method, Retention, Rules, SchemaError};

/// Why no schema could be made.
#[derive(Debug, thiserror::Error)]
pub enum ClickHouseSchemaError {
    #[error(transparent)]
    Rules(#[from] SchemaError),
    #[error(
        "aggregation method {0:?} has no ClickHouse rollup function (GraphiteMergeTree \
         aggregates with one plain function: average, sum, min, max and last have one)"
    )]
    Method(&'static str),
    #[error(
        "{what} {name:?} is not a ClickHouse identifier (letters, digits and _, not first a digit)"
    )]
    Identifier { what: &'static str, name: String },
}

/// Where the tables go.
#[derive(Debug, Clone)]
pub struct Target {
    pub database: String,
    /// With a cluster, each table is created as `<name>_local` on every
    /// server, and `<name>` is a `Distributed` table over them, sharded by
    /// a hash of the series name.
    pub cluster: Option<String>,
}

/// One points table and its rollup.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollup {
    /// The table (the `Distributed` one under a cluster).
    pub table: String,
    /// The server config section its `GraphiteMergeTree` names.
    pub section: String,
    /// ClickHouse's aggregate function.
    pub function: &'static str,
    /// (age in seconds, precision in seconds), ages ascending.
    pub retention: Vec<(u64, u32)>,
}

/// Graphite-clickhouse's path index: every level of every path.
pub const INDEX_TABLE: &str = "graphite_index";
/// Graphite-clickhouse's tag index.
pub const TAGGED_TABLE: &str = "graphite_tagged";
/// Timer histograms, one row per series and flush, merged on read.
pub const HISTS_TABLE: &str = "rollupd_hists";
/// Timer statistics' links to their histograms (`Stat` as
/// `StatCode::to_bits`), so coarse slots read the merged histogram's
/// statistic as the embedded store does.
pub const LINKS_TABLE: &str = "rollupd_links";
/// Our key-value table ([`crate::kv`]): the events and saved dashboards
/// every aggregator shares.
pub const KV_TABLE: &str = "rollupd_kv";

/// ClickHouse's aggregate function for a method, where it has one.
pub fn function(method: Method) -> Result<&'static str, ClickHouseSchemaError> {
    Ok(match method {
        Method::Average => "avg",
        Method::Sum => "sum",
        Method::Min => "min",
        Method::Max => "max",
        // Rows are merged in (Path, Time) order: the last is the newest.
        Method::Last => "anyLast",
        Method::AvgZero | Method::AbsMax | Method::AbsMin => {
            return Err(ClickHouseSchemaError::Method(method.name()))
        }
    })
}

/// whisper's archives as ClickHouse's ages: a point is kept at the finest
/// step until it is as old as the finest archive keeps, then at the next
/// step, and so on. (Points past the last archive are not thinned away by
/// `GraphiteMergeTree`; the engine drops them by partition.)
pub fn ages(retention: &Retention) -> Vec<(u64, u32)> {
    let mut out = Vec::with_capacity(retention.archives.len());
    let mut age = 0;
    for a in &retention.archives {
        out.push((age, a.step));
        age = a.retention();
    }
    out
}

/// The points table of a series' assignment.
pub fn table_for(retention: &str, method: Method) -> String {
    let mut t = format!("points_{}_", method.name());
    t.extend(
        retention
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
    );
    t
}

/// The points table of an [`Assignment`].
pub fn table_of(a: &Assignment) -> String {
    table_for(&a.retention, a.method)
}

/// Every (retention, method) pair the rules can assign, as tables, in the
/// rules' order.
pub fn rollups(rules: &Rules) -> Result<Vec<Rollup>, ClickHouseSchemaError> {
    let mut methods: Vec<Method> = Vec::new();
    for m in rules.methods() {
        if !methods.contains(&m) {
            methods.push(m);
        }
    }
    let mut out: Vec<Rollup> = Vec::new();
    for r in rules.retentions() {
        for &m in &methods {
            let table = table_for(&r.text, m);
            if out.iter().any(|x| x.table == table) {
                continue;
            }
            out.push(Rollup {
                section: format!("rollupd_{table}"),
                function: function(m)?,
                retention: ages(r),
                table,
            });
        }
    }
    Ok(out)
}

pub(crate) fn identifier(what: &'static str, name: &str) -> Result<(), ClickHouseSchemaError> {
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ClickHouseSchemaError::Identifier {
            what,
            name: name.to_string(),
        })
    }
}

/// The rollup sections for the server's config (a file in `config.d/`).
pub fn rollup_xml(rollups: &[Rollup]) -> String {
    let mut x = String::from(
        "<yandex>\n  <!-- rollupd clickhouse-schema: one rollup per points table. -->\n",
    );
    for r in rollups {
        let _ = writeln!(x, "  <{}>", r.section);
        for (tag, col) in [
            ("path_column_name", "Path"),
            ("time_column_name", "Time"),
            ("value_column_name", "Value"),
            ("version_column_name", "Timestamp"),
        ] {
            let _ = writeln!(x, "    <{tag}>{col}</{tag}>");
        }
        let _ = writeln!(
            x,
            "    <default>\n      <function>{}</function>",
            r.function
        );
        for (age, precision) in &r.retention {
            let _ = writeln!(
                x,
                "      <retention><age>{age}</age><precision>{precision}</precision></retention>"
            );
        }
        let _ = writeln!(x, "    </default>\n  </{}>", r.section);
    }
    x.push_str("</yandex>\n");
    x
}

/// The statements that create the schema, each idempotent, to run on every
/// server (ClickHouse 18.16 runs `ON CLUSTER` only with ZooKeeper).
pub fn ddl(target: &Target, rollups: &[Rollup]) -> Result<Vec<String>, ClickHouseSchemaError> {
    identifier("database", &target.database)?;
    if let Some(c) = &target.cluster {
        identifier("cluster", c)?;
    }
    let db = &target.database;
    let mut out = vec![format!("CREATE DATABASE IF NOT EXISTS {db}")];
    let mut table = |name: &str, columns: &str, engine: String, order: &str| {
        let local = match target.cluster {
            Some(_) => format!("{name}_local"),
            None => name.to_string(),
        };
        out.push(format!(
            "CREATE TABLE IF NOT EXISTS {db}.{local} ({columns}) ENGINE = {engine} \
             PARTITION BY toYYYYMM(Date) ORDER BY ({order})"
        ));
        if let Some(c) = &target.cluster {
            out.push(format!(
                "CREATE TABLE IF NOT EXISTS {db}.{name} AS {db}.{local} \
                 ENGINE = Distributed({c}, {db}, {local}, cityHash64(Path))"
            ));
        }
    };
    for r in rollups {
        table(
            &r.table,
            "Path String, Value Float64, Time UInt32, Date Date, Timestamp UInt32",
            format!("GraphiteMergeTree('{}')", r.section),
            "Path, Time",
        );
    }
    table(
        INDEX_TABLE,
        "Date Date, Level UInt32, Path String, Version UInt32",
        "ReplacingMergeTree(Version)".into(),
        "Level, Path, Date",
    );
    table(
        TAGGED_TABLE,
        "Date Date, Tag1 String, Path String, Tags Array(String), Version UInt32",
        "ReplacingMergeTree(Version)".into(),
        "Tag1, Path, Date",
    );
    table(
        HISTS_TABLE,
        "Path String, Time UInt32, Date Date, Units Array(UInt64), Counts Array(UInt64), \
         Timestamp UInt32",
        "MergeTree()".into(),
        "Path, Time",
    );
    table(
        LINKS_TABLE,
        "Date Date, Path String, Hist String, Stat UInt32, Version UInt32",
        "ReplacingMergeTree(Version)".into(),
        "Path, Date",
    );
    Ok(out)
}

/// `rollupd clickhouse-schema`: the rollups of a config's rules.
pub fn rollups_of(cfg: &StorageConfig) -> Result<Vec<Rollup>, ClickHouseSchemaError> {
    rollups(&Rules::from_config(cfg)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollupd_store::config::{AggregationRule, RetentionRule};

    fn defaults() -> Vec<Rollup> {
        rollups_of(&StorageConfig::default()).unwrap()
    }

    #[test]
    fn the_default_rules_make_one_table_per_method() {
        let r = defaults();
        let tables: Vec<&str> = r.iter().map(|r| r.table.as_str()).collect();
        assert_eq!(
            tables,
            [
                "points_sum_10s_2160_60s_10080_600s_262800",
                "points_min_10s_2160_60s_10080_600s_262800",
                "points_max_10s_2160_60s_10080_600s_262800",
                "points_last_10s_2160_60s_10080_600s_262800",
                "points_average_10s_2160_60s_10080_600s_262800",
            ]
        );
        let functions: Vec<&str> = r.iter().map(|r| r.function).collect();
        assert_eq!(functions, ["sum", "min", "max", "anyLast", "avg"]);
        // 10 s until 6 h old, 1 min until 7 d, then 10 min.
        assert_eq!(r[0].retention, [(0, 10), (6 * 3600, 60), (7 * 86400, 600)]);
    }

    #[test]
    fn every_assignment_has_its_table() {
        let cfg = StorageConfig {
            retention: vec![RetentionRule {
                pattern: "^fast\\.".into(),
                retentions: "1s:1h,1m:1d".into(),
            }],
            aggregation: vec![AggregationRule {
                pattern: "\\.p99$".into(),
                method: "max".into(),
                x_files_factor: 0.0,
            }],
            ..StorageConfig::default()
        };
        let rules = Rules::from_config(&cfg).unwrap();
        let tables: Vec<String> = rollups(&rules)
            .unwrap()
            .into_iter()
            .map(|r| r.table)
            .collect();
        // Two retentions times five methods (max named twice counts once).
        assert_eq!(tables.len(), 10, "{tables:?}");
        for name in [
            "fast.api.p99",
            "fast.hits.count",
            "stats_counts.x",
            "stats.gauges.q",
            "stats.timers.a.upper_99",
            "web.p99",
            "anything",
        ] {
            let t = table_of(&rules.assign(name));
            assert!(tables.contains(&t), "{name} -> {t} not in {tables:?}");
        }
        assert_eq!(
            table_of(&rules.assign("fast.api.p99")),
            "points_max_1s_3600_60s_1440"
        );
        assert_eq!(
            table_of(&rules.assign("stats_counts.x")),
            "points_sum_10s_2160_60s_10080_600s_262800"
        );
    }

    #[test]
    fn methods_without_a_rollup_function_are_refused_by_name() {
        let cfg = StorageConfig {
            aggregation: vec![AggregationRule {
                pattern: "\\.peak$".into(),
                method: "absmax".into(),
                x_files_factor: 0.5,
            }],
            ..StorageConfig::default()
        };
        let e = rollups_of(&cfg).unwrap_err().to_string();
        assert!(e.contains("\"absmax\""), "{e}");
    }

    #[test]
    fn xml_has_a_default_per_table_and_ddl_is_idempotent() {
        let r = defaults();
        let x = rollup_xml(&r);
        assert_eq!(x.matches("<default>").count(), 5);
        assert!(x.contains(
            "<rollupd_points_sum_10s_2160_60s_10080_600s_262800>\n    <path_column_name>Path</path_column_name>"
        ));
        assert!(x.contains("<retention><age>21600</age><precision>60</precision></retention>"));
        let one = ddl(
            &Target {
                database: "metrics".into(),
                cluster: None,
            },
            &r,
        )
        .unwrap();
        assert_eq!(one.len(), 1 + 5 + 4);
        assert!(one.iter().all(|s| s.contains("IF NOT EXISTS")), "{one:?}");
        assert!(one[1].starts_with(
            "CREATE TABLE IF NOT EXISTS metrics.points_sum_10s_2160_60s_10080_600s_262800 ("
        ));
        assert!(one[1]
            .contains("GraphiteMergeTree('rollupd_points_sum_10s_2160_60s_10080_600s_262800')"));
        let two = ddl(
            &Target {
                database: "metrics".into(),
                cluster: Some("shards".into()),
            },
            &r,
        )
        .unwrap();
        assert_eq!(two.len(), 1 + 2 * (5 + 4));
        assert!(two[1].contains("metrics.points_sum_10s_2160_60s_10080_600s_262800_local ("));
        assert!(two[2].ends_with(
            "ENGINE = Distributed(shards, metrics, points_sum_10s_2160_60s_10080_600s_262800_local, cityHash64(Path))"
        ));
    }

    #[test]
    fn names_that_are_not_identifiers_are_refused() {
        for (db, cluster) in [
            ("a;DROP", None),
            ("1db", None),
            ("ok", Some("c-1")),
            ("", None),
        ] {
            let t = Target {
                database: db.into(),
                cluster: cluster.map(String::from),
            };
            assert!(ddl(&t, &defaults()).is_err(), "{db:?} {cluster:?}");
        }
    }
}
