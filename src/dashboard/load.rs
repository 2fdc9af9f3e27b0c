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
    let mut patterns = vec![repo_dir.join("dashboards").join("*.toml").display().to_string()];
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
        let names: Vec<&str> = loaded.dashboards.iter().map(|d| d.1.name.as_str()).collect();
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
        assert!(loaded.errors[0].contains("already taken"), "{:?}", loaded.errors);
        let cfg = DashboardsConfig {
            paths: vec!["[".into()],
        };
        assert!(load_all(repo.path(), &cfg).errors[0].contains("dashboards.paths"));
    }

    #[test]
    fn an_unparsable_file_names_the_file_and_field() {
        let repo = tempfile::tempdir().unwrap();
        write(repo.path(), "dashboards/x.toml", "title = \"x\"\nrefersh = \"1m\"\n");
        let loaded = load_all(repo.path(), &DashboardsConfig::default());
        assert!(loaded.dashboards.is_empty());
        assert!(loaded.errors[0].contains("x.toml"), "{:?}", loaded.errors);
        assert!(loaded.errors[0].contains("refersh"), "{:?}", loaded.errors);
    }

    /// The dashboards this repo ships all check.
    #[test]
    fn shipped_dashboards_check() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let loaded = load_all(repo, &DashboardsConfig::default());
        assert!(loaded.errors.is_empty(), "{:#?}", loaded.errors);
        let names: Vec<&str> = loaded.dashboards.iter().map(|d| d.1.name.as_str()).collect();
        assert_eq!(names, ["rollupd", "web-service"]);
    }
}
