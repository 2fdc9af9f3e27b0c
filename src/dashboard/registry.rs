//! The dashboards the daemon serves: the files (read at start, on SIGHUP,
//! and whenever one changes) and those saved over HTTP (in the store).
//!
//! What HTTP reads is one list behind a lock, swapped whole on each
//! change, so a request sees one version or the other. A file that stops
//! checking is logged (file, panel, field) and, if it checked before, its
//! last good version keeps serving until it is fixed or removed. A name
//! belongs to a file first: saving over it is refused (409), and a stored
//! dashboard a new file shadows is reported, not served.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::{Mutex, RwLock};

use super::load::{dashboard_paths, load_file};
use super::model::{Dashboard, DashboardError, DashboardSpec, Source};
use super::store::DashboardStore;
use crate::config::DashboardsConfig;
use crate::store::kv::KvError;

/// Dashboards the store holds at most: each is listed on `/` and read at
/// start, so the count bounds the index page and the start-up.
pub const MAX_STORED: usize = 1000;
/// Bytes of JSON all stored dashboards hold at most (the 200-panel
/// `web-service` sized dashboard is ~60 KB; 1000 of those fit).
pub const MAX_STORED_BYTES: usize = 64 << 20;
/// One stored dashboard's JSON at most: a file's bound.
#[expect(
    clippy::cast_possible_truncation,
    reason = "MAX_FILE_BYTES is 1 MiB, which fits a 32- or 64-bit usize"
)]
pub const MAX_ONE_BYTES: usize = super::load::MAX_FILE_BYTES as usize;
/// The longest dashboard name.
pub const MAX_NAME: usize = 64;

/// Why a save or delete was refused.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("{0}")]
    Invalid(#[from] DashboardError),
    #[error("dashboard name {0:?} is not 1 to {MAX_NAME} of A-Z a-z 0-9 - _, starting with a letter or digit (and not \"import\")")]
    BadName(String),
    #[error("dashboard {0:?} is the file {1}: edit the file, or save under another name")]
    File(String, String),
    #[error("no dashboard named {0:?} in the store")]
    NotFound(String),
    #[error("{0}")]
    Full(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("dashboards are not kept on this server (no store)")]
    NoStore,
    #[error("the store failed: {0}")]
    Store(#[from] KvError),
}

/// A name a dashboard may be saved under: it is a URL path segment and a
/// store key, so a plain one (and not `import`, which is
/// `POST /api/dashboards/import`).
pub fn valid_name(name: &str) -> bool {
    name != "import"
        && !name.is_empty()
        && name.len() <= MAX_NAME
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[derive(Default)]
struct FileState {
    /// (modified, length) when last read.
    seen: Option<(SystemTime, u64)>,
    /// The last version that checked.
    good: Option<Dashboard>,
    error: Option<String>,
}

#[derive(Default)]
struct Inner {
    /// The files found at the last look, in reading order (the first file
    /// with a name keeps it).
    order: Vec<PathBuf>,
    files: BTreeMap<PathBuf, FileState>,
    /// Glob problems and names taken twice, from the last look.
    glob_errors: Vec<String>,
    /// Saved dashboards with their JSON's size.
    stored: BTreeMap<String, (Dashboard, usize)>,
    stored_errors: Vec<String>,
    /// A shared store's last read again failed (logged once until one
    /// succeeds).
    refresh_failing: bool,
}

/// The served set. `Default` is an empty set with no files and no store
/// (for tests of other handlers).
#[derive(Default)]
pub struct Dashboards {
    repo_dir: PathBuf,
    cfg: DashboardsConfig,
    store: Option<DashboardStore>,
    /// What HTTP reads: every dashboard served, sorted by name.
    view: RwLock<Arc<Vec<Dashboard>>>,
    inner: Mutex<Inner>,
}

/// What a save did.
#[derive(Debug, PartialEq, Eq)]
pub enum Saved {
    Created,
    Replaced,
}

impl Dashboards {
    /// Reads the files and the stored dashboards (logging what does not
    /// load) and publishes them to `view`.
    pub fn open(
        repo_dir: &Path,
        cfg: &DashboardsConfig,
        store: Option<DashboardStore>,
    ) -> Arc<Dashboards> {
        let me = Arc::new(Dashboards {
            repo_dir: repo_dir.to_path_buf(),
            cfg: cfg.clone(),
            store,
            view: Default::default(),
            inner: Mutex::new(Inner::default()),
        });
        me.load_stored();
        me.reload_files(true);
        me
    }

    /// A fixed set, with no files and no store (tests).
    pub fn fixed(list: Vec<Dashboard>) -> Arc<Dashboards> {
        let me = Dashboards::default();
        *me.view.write() = Arc::new(list);
        Arc::new(me)
    }

    /// The list served now (`.read().clone()` takes a version that later
    /// changes do not touch).
    pub fn read(&self) -> parking_lot::RwLockReadGuard<'_, Arc<Vec<Dashboard>>> {
        self.view.read()
    }

    /// The dashboard served under `name`.
    pub fn get(&self, name: &str) -> Option<Dashboard> {
        self.view.read().iter().find(|d| d.name == name).cloned()
    }

    fn load_stored(&self) {
        let Some(store) = &self.store else { return };
        let mut inner = self.inner.lock();
        inner.stored.clear();
        inner.stored_errors.clear();
        match store.all() {
            Err(e) => {
                tracing::error!(error = %e, "stored dashboards could not be read");
                inner.stored_errors.push(format!("stored dashboards: {e}"));
            }
            Ok((all, errors)) => Self::take_stored(&mut inner, all, errors),
        }
        for e in &inner.stored_errors {
            tracing::error!(error = %e, "stored dashboard not loaded");
        }
    }

    /// `all` (a read of the store) as the stored dashboards.
    fn take_stored(
        inner: &mut Inner,
        all: Vec<(String, DashboardSpec, usize)>,
        errors: Vec<String>,
    ) {
        inner.stored.clear();
        inner.stored_errors = errors;
        for (name, spec, bytes) in all {
            // Checked again: a newer rollupd may check less.
            match Dashboard::from_spec(&name, spec) {
                Ok(mut d) => {
                    d.source = Source::Store;
                    inner.stored.insert(name, (d, bytes));
                }
                Err(e) => inner
                    .stored_errors
                    .push(format!("stored dashboard {name:?}: {e}")),
            }
        }
    }

    /// A shared store read again (other aggregators save and delete
    /// there), and the served list swapped for it. A read that fails keeps
    /// the dashboards of the last one that did not.
    fn refresh_stored(&self) {
        let Some(store) = self.store.as_ref().filter(|s| s.is_shared()) else {
            return;
        };
        let read = store.all();
        let mut inner = self.inner.lock();
        match read {
            Err(e) => {
                if !inner.refresh_failing {
                    tracing::warn!(error = %e, "shared stored dashboards could not be read again; the last ones keep serving");
                    inner.refresh_failing = true;
                }
            }
            Ok((all, errors)) => {
                inner.refresh_failing = false;
                Self::take_stored(&mut inner, all, errors);
                self.publish(&mut inner);
            }
        }
    }

    /// Looks at the dashboard files: with `force` (start, SIGHUP) every
    /// file is read; otherwise only when the set of files or a file's
    /// modification time or length changed. Returns the problems in force.
    pub fn reload_files(&self, force: bool) -> Vec<String> {
        let (paths, glob_errors) = dashboard_paths(&self.repo_dir, &self.cfg);
        let mut inner = self.inner.lock();
        let mut changed = force || paths != inner.order || glob_errors != inner.glob_errors;
        inner.files.retain(|p, _| paths.contains(p));
        for path in &paths {
            let seen = std::fs::metadata(path)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())));
            let st = inner.files.entry(path.clone()).or_default();
            if !force && seen.is_some() && st.seen == seen {
                continue;
            }
            changed = true;
            st.seen = seen;
            match load_file(path) {
                Ok(d) => {
                    if st.error.take().is_some() || st.good.is_some() {
                        tracing::info!(file = %path.display(), "dashboard file read again");
                    }
                    st.good = Some(d);
                }
                Err(e) => {
                    if st.good.is_some() {
                        tracing::error!(error = %e, "dashboard file not loaded; its last good version keeps serving");
                    } else {
                        tracing::error!(error = %e, "dashboard not loaded");
                    }
                    st.error = Some(e);
                }
            }
        }
        inner.order = paths;
        inner.glob_errors = glob_errors;
        if changed {
            for c in self.clashes(&inner) {
                tracing::warn!(problem = %c, "dashboard name taken twice");
            }
            let n = self.publish(&mut inner);
            if !force {
                tracing::info!(
                    dashboards = n,
                    "dashboard files changed; dashboards reloaded"
                );
            }
        }
        self.errors_of(&inner)
    }

    /// Every problem in force: bad files, names taken twice, unreadable
    /// stored records.
    pub fn errors(&self) -> Vec<String> {
        let inner = self.inner.lock();
        self.errors_of(&inner)
    }

    fn errors_of(&self, inner: &Inner) -> Vec<String> {
        let mut out = inner.glob_errors.clone();
        out.extend(inner.files.values().filter_map(|f| f.error.clone()));
        out.extend(inner.stored_errors.iter().cloned());
        out.extend(self.clashes(inner));
        out
    }

    /// Files whose name an earlier file took, and stored dashboards a file
    /// shadows.
    fn clashes(&self, inner: &Inner) -> Vec<String> {
        let mut out = Vec::new();
        let mut taken: BTreeMap<&str, &Path> = BTreeMap::new();
        for p in &inner.order {
            let Some(d) = inner.files.get(p).and_then(|f| f.good.as_ref()) else {
                continue;
            };
            match taken.get(d.name.as_str()) {
                Some(first) => out.push(format!(
                    "{}: dashboard name {:?} is already taken by {}",
                    p.display(),
                    d.name,
                    first.display()
                )),
                None => {
                    taken.insert(&d.name, p);
                }
            }
        }
        for name in inner.stored.keys() {
            if let Some(p) = taken.get(name.as_str()) {
                out.push(format!(
                    "stored dashboard {name:?} is hidden by the file {}",
                    p.display()
                ));
            }
        }
        out
    }

    /// The file a dashboard name belongs to, if any.
    fn file_of(inner: &Inner, name: &str) -> Option<PathBuf> {
        inner.order.iter().find_map(|p| {
            let f = inner.files.get(p)?;
            (f.good.as_ref()?.name == name).then(|| p.clone())
        })
    }

    /// Swaps the served list: files (first of a name wins), then stored
    /// dashboards whose name no file has. Returns how many.
    fn publish(&self, inner: &mut Inner) -> usize {
        let mut by_name: BTreeMap<String, Dashboard> = BTreeMap::new();
        for p in &inner.order {
            if let Some(d) = inner.files.get(p).and_then(|f| f.good.as_ref()) {
                by_name.entry(d.name.clone()).or_insert_with(|| d.clone());
            }
        }
        for (name, (d, _)) in &inner.stored {
            by_name.entry(name.clone()).or_insert_with(|| d.clone());
        }
        let n = by_name.len();
        *self.view.write() = Arc::new(by_name.into_values().collect());
        n
    }

    /// Saves `spec` under `name` in the store, checked as a file is.
    pub fn put(&self, name: &str, spec: DashboardSpec) -> Result<Saved, SaveError> {
        if !valid_name(name) {
            return Err(SaveError::BadName(name.to_string()));
        }
        let store = self.store.as_ref().ok_or(SaveError::NoStore)?;
        let mut d = Dashboard::from_spec(name, spec)?;
        d.source = Source::Store;
        let json = serde_json::to_vec(&*d.spec).unwrap_or_default();
        if json.len() > MAX_ONE_BYTES {
            return Err(SaveError::TooLarge(format!(
                "dashboard {name:?} is {} bytes of JSON, more than the {MAX_ONE_BYTES} one may hold",
                json.len()
            )));
        }
        let mut inner = self.inner.lock();
        if let Some(p) = Self::file_of(&inner, name) {
            return Err(SaveError::File(name.into(), p.display().to_string()));
        }
        let old = inner.stored.get(name).map(|(_, b)| *b);
        if old.is_none() && inner.stored.len() >= MAX_STORED {
            return Err(SaveError::Full(format!(
                "the store holds {MAX_STORED} dashboards, the most it keeps: delete one first"
            )));
        }
        let total: usize = inner.stored.values().map(|(_, b)| b).sum();
        if total - old.unwrap_or(0) + json.len() > MAX_STORED_BYTES {
            return Err(SaveError::Full(format!(
                "stored dashboards would hold more than {MAX_STORED_BYTES} bytes: delete some first"
            )));
        }
        let bytes = json.len();
        store.put(name, json)?;
        inner.stored.insert(name.to_string(), (d, bytes));
        self.publish(&mut inner);
        tracing::info!(dashboard = name, bytes, "dashboard saved");
        Ok(if old.is_some() {
            Saved::Replaced
        } else {
            Saved::Created
        })
    }

    pub fn delete(&self, name: &str) -> Result<(), SaveError> {
        let store = self.store.as_ref().ok_or(SaveError::NoStore)?;
        let mut inner = self.inner.lock();
        if let Some(p) = Self::file_of(&inner, name) {
            return Err(SaveError::File(name.into(), p.display().to_string()));
        }
        if !inner.stored.contains_key(name) {
            return Err(SaveError::NotFound(name.into()));
        }
        store.delete(name)?;
        inner.stored.remove(name);
        self.publish(&mut inner);
        tracing::info!(dashboard = name, "dashboard deleted");
        Ok(())
    }

    /// Starts the thread that looks at the files every `period` (the
    /// alert rules' `reload_check`). Ends within 200 ms of `shutdown`.
    pub fn start(
        self: &Arc<Self>,
        period: Duration,
        shutdown: Arc<AtomicBool>,
    ) -> std::io::Result<JoinHandle<()>> {
        let me = self.clone();
        std::thread::Builder::new()
            .name("dashboards".into())
            .spawn(move || {
                let mut next = Instant::now() + period;
                while !shutdown.load(Relaxed) {
                    if Instant::now() >= next {
                        me.reload_files(false);
                        me.refresh_stored();
                        next = Instant::now() + period;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::kv::Kv;
    use crate::store::mem::MemKv;

    const OK: &str = "title = \"ok\"\n[[row]]\n[[row.panel]]\ntitle = \"a\"\ntargets = [\"a.b\"]\n";

    fn spec(title: &str) -> DashboardSpec {
        toml::from_str(&OK.replace("\"ok\"", &format!("{title:?}"))).unwrap()
    }

    fn names(v: &Dashboards) -> Vec<(String, Source, String)> {
        v.read()
            .iter()
            .map(|d| (d.name.clone(), d.source, d.title.clone()))
            .collect()
    }

    fn open(repo: &Path, kv: &Arc<dyn Kv>) -> Arc<Dashboards> {
        Dashboards::open(
            repo,
            &DashboardsConfig::default(),
            Some(DashboardStore::new(kv.clone())),
        )
    }

    /// Sets a file's text and a modification time `secs` in the past, so
    /// two writes within one clock tick still look different.
    fn write(path: &Path, text: &str, secs: u64) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        let t = SystemTime::now() - Duration::from_secs(secs);
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }

    #[test]
    fn saved_dashboards_survive_a_reopen_and_files_keep_their_names() {
        let repo = tempfile::tempdir().unwrap();
        write(&repo.path().join("dashboards/filed.toml"), OK, 10);
        let kv: Arc<dyn Kv> = Arc::new(MemKv::default());
        let d = open(repo.path(), &kv);
        assert_eq!(d.put("mine", spec("Mine")).unwrap(), Saved::Created);
        assert_eq!(d.put("mine", spec("Mine 2")).unwrap(), Saved::Replaced);
        assert!(matches!(
            d.put("filed", spec("x")),
            Err(SaveError::File(..))
        ));
        assert!(matches!(d.delete("filed"), Err(SaveError::File(..))));
        assert!(matches!(d.delete("nope"), Err(SaveError::NotFound(_))));
        for bad in ["", "import", "-x", "a/b", "a b", "é", &"x".repeat(65)] {
            assert!(
                matches!(d.put(bad, spec("x")), Err(SaveError::BadName(_))),
                "{bad:?}"
            );
        }
        let mut broken = spec("x");
        broken.rows[0].panels[0].targets = vec!["sum(".into()];
        let e = d.put("broken", broken).unwrap_err().to_string();
        assert!(
            e.contains("row 0 panel 0 (\"a\")") && e.contains("targets[0]"),
            "{e}"
        );
        let again = open(repo.path(), &kv);
        assert_eq!(
            names(&again),
            [
                ("filed".into(), Source::File, "ok".into()),
                ("mine".into(), Source::Store, "Mine 2".into())
            ]
        );
        // The spec as written comes back.
        let v = again.read().clone();
        assert_eq!(*v[1].spec, spec("Mine 2"));
        again.delete("mine").unwrap();
        assert_eq!(open(repo.path(), &kv).read().len(), 1);
    }

    /// Two daemons on one shared store: what one saves or deletes the
    /// other serves after its next look (`refresh_stored`); an unshared
    /// store is not read again.
    #[test]
    fn a_shared_store_is_read_again() {
        let repo = tempfile::tempdir().unwrap();
        let kv: Arc<dyn Kv> = Arc::new(MemKv::default());
        let shared = || {
            Dashboards::open(
                repo.path(),
                &DashboardsConfig::default(),
                Some(DashboardStore::shared(kv.clone())),
            )
        };
        let (x, y) = (shared(), shared());
        x.put("team", spec("Team")).unwrap();
        assert!(y.get("team").is_none(), "not before y looks");
        y.refresh_stored();
        assert_eq!(y.get("team").map(|d| d.title), Some("Team".into()));
        y.put("team", spec("Team 2")).unwrap();
        x.refresh_stored();
        assert_eq!(x.get("team").map(|d| d.title), Some("Team 2".into()));
        y.delete("team").unwrap();
        x.refresh_stored();
        assert!(x.get("team").is_none());
        let alone = open(repo.path(), &kv);
        x.put("later", spec("Later")).unwrap();
        alone.refresh_stored();
        assert!(alone.get("later").is_none());
    }

    #[test]
    fn the_count_cap_refuses_a_new_name_but_not_a_replacement() {
        let repo = tempfile::tempdir().unwrap();
        let kv: Arc<dyn Kv> = Arc::new(MemKv::default());
        let d = open(repo.path(), &kv);
        for i in 0..MAX_STORED {
            d.put(&format!("d{i}"), spec("x")).unwrap();
        }
        let e = d.put("one-more", spec("x")).unwrap_err();
        assert!(matches!(e, SaveError::Full(_)), "{e}");
        assert_eq!(d.put("d0", spec("y")).unwrap(), Saved::Replaced);
        let mut big = spec("x");
        big.rows[0].panels[0].title = "t".repeat(150);
        big.rows[0].panels[0].targets = vec!["a".repeat(8000); 26];
        big.rows = vec![big.rows[0].clone(); 6];
        assert!(matches!(d.put("d1", big), Err(SaveError::TooLarge(_))));
    }

    #[test]
    fn a_changed_file_is_seen_and_a_broken_one_keeps_its_last_good_version() {
        let repo = tempfile::tempdir().unwrap();
        let path = repo.path().join("dashboards/a.toml");
        write(&path, OK, 30);
        let kv: Arc<dyn Kv> = Arc::new(MemKv::default());
        let d = open(repo.path(), &kv);
        d.put("b", spec("stored b")).unwrap();
        assert!(d.reload_files(false).is_empty());
        write(&path, &OK.replace("\"ok\"", "\"changed\""), 20);
        assert!(d.reload_files(false).is_empty());
        assert_eq!(d.read()[0].title, "changed");
        // Broken: the last good version serves, the error names the file,
        // panel and field.
        write(&path, &OK.replace("a.b", "sum("), 10);
        let errors = d.reload_files(false);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("a.toml") && errors[0].contains("targets[0]"));
        assert_eq!(d.read()[0].title, "changed");
        // A new file shadowing a stored dashboard is reported.
        write(&repo.path().join("dashboards/b.toml"), OK, 10);
        let errors = d.reload_files(false);
        assert!(
            errors.iter().any(|e| e.contains("hidden by the file")),
            "{errors:?}"
        );
        assert_eq!(names(&d)[1], ("b".into(), Source::File, "ok".into()));
        // Files gone: theirs go, the stored one is back.
        std::fs::remove_file(&path).unwrap();
        std::fs::remove_file(repo.path().join("dashboards/b.toml")).unwrap();
        assert!(d.reload_files(false).is_empty());
        assert_eq!(names(&d), [("b".into(), Source::Store, "stored b".into())]);
    }
}
