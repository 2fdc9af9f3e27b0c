//! Reading dashboards: `dashboards/*.toml` under the repo directory, then
//! the `[dashboards] paths` globs. A bad file is an error naming the file
//! (and the panel and field); the others still load.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::model::Dashboard;
use crate::config::DashboardsConfig;

/// Files read at most, so a glob like `/**/*.toml` cannot read a disk.
pub const MAX_FILES: usize = 1000;
/// The largest dashboard file.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// What a load found: the dashboards that checked (sorted by name) and one
/// message per refused file or name.
#[derive(Debug, Default)]
pub struct Loaded {
    pub dashboards: Vec<(PathBuf, Dashboard)>,
    pub errors: Vec<String>,
}

/// The files to read: `<repo_dir>/dashboards/*.toml`, then each glob of
/// `cfg.paths` (relative ones to the working directory, as alert rule files
/// are), each file once.
pub fn dashboard_paths(repo_dir: &Path, cfg: &DashboardsConfig) -> (Vec<PathBuf>, Vec<String>) {
    let mut patterns = vec![repo_dir
        .join("dashboards")
        .join("*.toml")
        .display()
        .to_string()];
    patterns.extend(cfg.paths.iter().cloned());
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut errors = Vec::new();
    for pattern in &patterns {
        match glob::glob(pattern) {
            Err(e) => errors.push(format!("dashboards.paths {pattern:?}: {e}")),
            Ok(found) => {
                let mut found: Vec<PathBuf> = found.filter_map(Result::ok).collect();
                found.sort();
                for p in found {
                    if !paths.contains(&p) {
                        paths.push(p);
                    }
                }
            }
        }
    }
    if paths.len() > MAX_FILES {
        errors.push(format!(
            "dashboards: {} files, only the first {MAX_FILES} are read",
            paths.len()
        ));
        paths.truncate(MAX_FILES);
    }
    (paths, errors)
}

/// Reads and checks one file; its name is the file's stem.
pub fn load_file(path: &Path) -> Result<Dashboard, String> {
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| format!("{}: the file name is not UTF-8", path.display()))?;
    let len = std::fs::metadata(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?
        .len();
    if len > MAX_FILE_BYTES {
        return Err(format!(
            "{}: {len} bytes, more than the {MAX_FILE_BYTES} a dashboard file may hold",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    Dashboard::from_toml(name, &text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Every dashboard file, checked. Two files with one stem: the first read
/// keeps the name, the second is an error naming both.
pub fn load_all(repo_dir: &Path, cfg: &DashboardsConfig) -> Loaded {
    let (paths, mut errors) = dashboard_paths(repo_dir, cfg);
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    let mut dashboards = Vec::new();
    for path in paths {
        match load_file(&path) {
            Err(e) => errors.push(e),
            Ok(d) => {
                if let Some(other) = seen.get(&d.name) {
                    errors.push(format!(
                        "{}: dashboard name {:?} is already taken by {}",
                        path.display(),
                        d.name,
                        other.display()
                    ));
                    continue;
                }
                seen.insert(d.name.clone(), path.clone());
                dashboards.push((path, d));
            }
        }
    }
    dashboards.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    Loaded { dashboards, errors }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    const OK: &str = "title = \"ok\"\n[[row]]\n[[row.panel]]\ntitle = \"a\"\ntargets = [\"a.b\"]\n";

    #[test]
    fn a_bad_file_is_named_and_the_others_load() {
        let repo = tempfile::tempdir().unwrap();
        let extra = tempfile::tempdir().unwrap();
        write(repo.path(), "dashboards/one.toml", OK);
        write(
            repo.path(),
            "dashboards/two.toml",
            "title = \"two\"\n[[row]]\n[[row.panel]]\ntitle = \"Broken\"\ntargets = [\"sum(\"]\n",
        );
        write(repo.path(), "dashboards/notes.txt", "not a dashboard");
        write(extra.path(), "mine/three.toml", OK);
        let cfg = DashboardsConfig {
            paths: vec![extra.path().join("mine/*.toml").display().to_string()],
        };
        let loaded = load_all(repo.path(), &cfg);
        let names: Vec<&str> = loaded
            .dashboards
            .iter()
            .map(|d| d.1.name.as_str())
            .collect();
        assert_eq!(names, ["one", "three"]);
        assert_eq!(loaded.errors.len(), 1, "{:?}", loaded.errors);
        let e = &loaded.errors[0];
        assert!(e.contains("two.toml"), "{e}");
        assert!(e.contains("\"Broken\""), "{e}");
        assert!(e.contains("field targets[0]"), "{e}");
    }

    #[test]
    fn a_name_taken_twice_is_an_error() {
        let repo = tempfile::tempdir().unwrap();
        let extra = tempfile::tempdir().unwrap();
        write(repo.path(), "dashboards/one.toml", OK);
        write(extra.path(), "one.toml", OK);
        let cfg = DashboardsConfig {
            paths: vec![extra.path().join("*.toml").display().to_string()],
        };
        let loaded = load_all(repo.path(), &cfg);
        assert_eq!(loaded.dashboards.len(), 1);
        assert_eq!(loaded.errors.len(), 1);
        assert!(
            loaded.errors[0].contains("already taken"),
            "{:?}",
            loaded.errors
        );
        let cfg = DashboardsConfig {
            paths: vec!["[".into()],
        };
        assert!(load_all(repo.path(), &cfg).errors[0].contains("dashboards.paths"));
    }

    #[test]
    fn an_unparsable_file_names_the_file_and_field() {
        let repo = tempfile::tempdir().unwrap();
        write(
            repo.path(),
            "dashboards/x.toml",
            "title = \"x\"\nrefersh = \"1m\"\n",
        );
        let loaded = load_all(repo.path(), &DashboardsConfig::default());
        assert!(loaded.dashboards.is_empty());
        assert!(loaded.errors[0].contains("x.toml"), "{:?}", loaded.errors);
        assert!(loaded.errors[0].contains("refersh"), "{:?}", loaded.errors);
    }

    /// The paths a target reads: `(path, branch)`, branch when it names a
    /// timer (timerPercentile's first argument) rather than one series.
    fn paths(e: &crate::query::parse::Expr, branch: bool, out: &mut Vec<(String, bool)>) {
        use crate::query::parse::Expr;
        match e {
            Expr::Path(p) => out.push((p.clone(), branch)),
            Expr::Call(c) => {
                for (i, a) in c.args.iter().enumerate() {
                    paths(a, c.name == "timerPercentile" && i == 0, out);
                }
                for (_, a) in &c.kwargs {
                    paths(a, false, out);
                }
            }
            _ => {}
        }
    }

    /// Whether `pattern` matches one of `names` (a branch: a name under it).
    fn found(pattern: &str, branch: bool, names: &[String]) -> bool {
        use crate::store::glob::LevelMatcher;
        let levels: Vec<LevelMatcher> = pattern
            .split('.')
            .map(|l| LevelMatcher::new(pattern, l).unwrap())
            .collect();
        names.iter().any(|n| {
            let parts: Vec<&str> = n.split('.').collect();
            let fits = if branch {
                parts.len() > levels.len()
            } else {
                parts.len() == levels.len()
            };
            fits && levels.iter().zip(&parts).all(|(m, p)| m.is_match(p))
        })
    }

    /// Every name a daemon configured by `toml` writes to Graphite after
    /// `packets` and two flushes.
    fn written_names(toml: &str, packets: &[&str]) -> Vec<String> {
        use crate::aggregate::{timer::TimerLayout, Aggregator, Scratch};
        use crate::emit::graphite::{BackendStats, Naming};
        use crate::telemetry::{LocalCounts, Telemetry};
        use std::sync::Arc;
        let cfg = crate::config::Config::parse(toml).unwrap();
        let (q, _rx) = crate::events::EventQueue::bounded();
        let agg = Aggregator::new(&cfg.statsd, Arc::new(Telemetry::new()), q);
        let (mut scratch, mut counts) = (Scratch::default(), LocalCounts::default());
        let naming = Naming::new(&cfg.statsd);
        let layout = TimerLayout::new(&cfg.statsd);
        let mut names = Vec::new();
        for _ in 0..2 {
            for p in packets {
                agg.ingest_packet(p.as_bytes(), false, &mut scratch, &mut counts);
            }
            agg.telemetry().publish(&mut counts);
            let flush = agg.flush(std::time::Duration::from_secs(10));
            naming.walk(&flush, &layout, &BackendStats::default(), |n, _| {
                names.push(n.to_string())
            });
            // The daemon's own figures, with a render in the interval (the
            // latency figures are written only then).
            let render = Arc::new(crate::telemetry::render::RenderLatency::default());
            render.observe(std::time::Duration::from_millis(3));
            let mut own = crate::emit::own::OwnSources::new(None, None, Some(render), None);
            // With `[storage.clickhouse]`, its writer's figures too (no
            // server is asked: nothing is written).
            let queue = tempfile::tempdir().unwrap();
            let ch = crate::store::config::ClickHouseConfig {
                urls: vec!["http://127.0.0.1:9".into()],
                ..Default::default()
            };
            own.clickhouse = Some(Arc::new(
                crate::clickhouse::write::Writer::start(&Default::default(), &ch, queue.path())
                    .unwrap(),
            ));
            naming.walk_own(&own.sample(), flush.interval, |n, _| {
                names.push(n.to_string())
            });
        }
        names.sort();
        names.dedup();
        names
    }

    /// A shipped dashboard, the config and packets of its test daemon, and
    /// its variables' values.
    type Case<'a> = (&'a str, &'a str, &'a [&'a str], &'a [(&'a str, &'a str)]);

    /// Every path each shipped dashboard reads (variables set to what the
    /// data holds) names a series rollupd writes, and every variable's
    /// query finds something: a renamed internal counter or a typo in a
    /// dashboard fails here, not on someone's screen.
    #[test]
    fn shipped_dashboards_read_series_rollupd_writes() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let cases: [Case; 2] = [
            (
                "rollupd",
                "[statsd]\nglobal_suffix = \"web1\"\n",
                &["a:1|c\nnocolon"],
                &[("host", "web1")],
            ),
            (
                "web-service",
                "",
                &["checkout.requests.web1:3|c\ncheckout.errors.web1:1|c\ncheckout.latency:12|ms"],
                &[("service", "checkout"), ("host", "web1")],
            ),
        ];
        for (name, toml, packets, vars) in cases {
            let d = load_file(&repo.join("dashboards").join(format!("{name}.toml"))).unwrap();
            let names = written_names(toml, packets);
            let value = |v: &str| vars.iter().find(|(n, _)| *n == v).unwrap().1.to_string();
            for v in &d.variables {
                let q = super::super::model::substitute(&v.query, value);
                assert!(
                    found(&format!("{q}.*"), true, &names) || found(&q, false, &names),
                    "{name}: variable {} query {q} finds nothing in {names:?}",
                    v.name
                );
            }
            let mut checked = 0;
            for (_, _, p) in d.panels() {
                for t in &p.targets {
                    let t = super::super::model::substitute(t, value);
                    let mut ps = Vec::new();
                    paths(&crate::query::parse::parse(&t).unwrap(), false, &mut ps);
                    for (path, branch) in ps {
                        assert!(found(&path, branch, &names),
                            "{name}: panel {:?} reads {path}, which rollupd does not write: {names:?}", p.title);
                        checked += 1;
                    }
                }
            }
            assert!(checked > 5, "{name}: {checked} paths");
        }
    }

    /// The dashboards this repo ships all check.
    #[test]
    fn shipped_dashboards_check() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let loaded = load_all(repo, &DashboardsConfig::default());
        assert!(loaded.errors.is_empty(), "{:#?}", loaded.errors);
        let names: Vec<&str> = loaded
            .dashboards
            .iter()
            .map(|d| d.1.name.as_str())
            .collect();
        assert_eq!(names, ["rollupd", "web-service"]);
    }
}
