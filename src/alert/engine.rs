//! The running alerting: rules from files and from the API, each
//! evaluated on its interval by the `alerts` thread straight from the
//! store; instance states, transitions, their events and notifications.
//!
//! Locking: the rule table's mutex is never held while a target is
//! evaluated or anything is written. A round takes the due rules out under
//! the lock, evaluates them with it released, and takes it again to apply
//! the results (a rule replaced meanwhile is recognised by its generation
//! and its stale result dropped).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::{Mutex, RwLock};
use serde::Serialize;

use super::eval;
use super::history::{Deploy, Transition};
use super::notice::{fingerprint, Notice, Severity};
use super::notify::{Notifier, NotifyStats};
use super::peers::{tag_text, Peers};
use super::persist::Persist;
use super::rule::{parse_file, Rule, RuleError, RuleSpec};
use super::secs;
use super::silence::{self, Silence, SilenceSpec};
use super::state::{self, Change, Instance, Observation, State};
use super::template::{self, Vars};
use crate::config::AlertsConfig;
use crate::events::store::{EventStore, TagFilter};
use crate::events::QueuedEvent;
use crate::query::eval::{Limits, QueryError};
use crate::store::kv::{Kv, KvError};
use crate::store::source::SeriesSource;
use crate::store::Store;

/// Why an alerting call was refused. `http::error` maps each to a status.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("{0}")]
    Invalid(#[from] RuleError),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// The name belongs to a rule from a file: change the file.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooMany(String),
    #[error("{0}")]
    Query(#[from] QueryError),
    #[error("alert store: {0}")]
    Store(#[from] KvError),
}

/// Where a rule came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Api,
}

impl Source {
    fn describe(&self) -> String {
        match self {
            Source::File(p) => format!("file:{}", p.display()),
            Source::Api => "api".into(),
        }
    }
}

/// Recent reduced values kept per instance for the rule's page.
const RECENT: usize = 30;

struct RuleState {
    rule: Arc<Rule>,
    source: Source,
    generation: u64,
    instances: BTreeMap<String, Instance>,
    recent: HashMap<String, VecDeque<(i64, Option<f64>)>>,
    next_due: i64,
    last_eval: Option<i64>,
    last_error: Option<String>,
    eval_micros: u64,
    /// On a shared engine: whether this member evaluated the rule at the
    /// last look at the members (a rule it takes over starts from the
    /// states its last evaluator stored).
    owned: bool,
}

#[derive(Default)]
struct FileState {
    /// (modified, length) when last read.
    seen: Option<(SystemTime, u64)>,
    rules: Vec<String>,
    error: Option<String>,
}

#[derive(Default)]
struct Inner {
    rules: BTreeMap<String, RuleState>,
    files: BTreeMap<PathBuf, FileState>,
    /// States read at start for rules not loaded yet (a file rule's
    /// states wait for its file).
    orphans: HashMap<String, BTreeMap<String, Instance>>,
    generation: u64,
}

/// Counters for `/metrics` and the review.
#[derive(Debug, Default)]
pub struct AlertStats {
    pub evaluations: AtomicU64,
    pub evaluation_errors: AtomicU64,
    pub transitions: AtomicU64,
    pub eval_micros_total: AtomicU64,
    pub last_round_micros: AtomicU64,
    pub reloads: AtomicU64,
    pub reload_errors: AtomicU64,
}

pub struct Alerts {
    /// What rules read: the embedded store or ClickHouse.
    source: Arc<dyn SeriesSource>,
    events: Arc<EventStore>,
    persist: Persist,
    cfg: AlertsConfig,
    default_interval: Duration,
    /// The HTTP address links in notifications point at.
    external_url: String,
    inner: Mutex<Inner>,
    silences: RwLock<Vec<Silence>>,
    /// `None` without receivers, and after the stop (which takes it).
    notifier: Mutex<Option<Notifier>>,
    notify_stats: Arc<NotifyStats>,
    /// Whether any receiver is configured (a transition then notifies).
    has_receivers: bool,
    /// The deploys before the last evaluation time asked for.
    deploys_cache: Mutex<Option<(i64, Vec<Deploy>)>>,
    /// On an engine several aggregators share: who evaluates which rule
    /// (`peers.rs`). `None`: this daemon evaluates every rule.
    peers: Option<Peers>,
    pub stats: AlertStats,
}

/// A rule as `GET /api/alerts` shows it.
#[derive(Debug, Serialize)]
pub struct RuleView {
    pub name: String,
    pub kind: &'static str,
    pub target: String,
    pub source: String,
    pub interval_secs: u64,
    /// The worst state among its instances (`ok` with none).
    pub state: State,
    pub thresholds: String,
    pub last_eval: Option<i64>,
    pub last_error: Option<String>,
    pub eval_ms: f64,
    /// On an engine several aggregators share: the tag of the one that
    /// evaluates the rule, and whether it is this one (the others show
    /// the states it stored, read at each `reload_check`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evaluator: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evaluated_here: Option<bool>,
    pub instances: Vec<InstanceView>,
    pub spec: RuleSpec,
}

#[derive(Debug, Serialize)]
pub struct InstanceView {
    pub series: String,
    pub labels: BTreeMap<String, String>,
    pub state: State,
    pub silenced: bool,
    pub since: i64,
    pub value: Option<f64>,
    pub reason: String,
    pub firing_since: Option<i64>,
    pub pending: Option<(Severity, i64)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forecast: Option<super::forecast::Verdict>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recent: Option<Vec<(i64, Option<f64>)>>,
}

/// What a backtest found.
#[derive(Debug, Serialize)]
pub struct Backtest {
    pub from: i64,
    pub until: i64,
    pub step_secs: u64,
    pub evaluations: usize,
    pub transitions: Vec<Transition>,
    /// Firing and resolved messages it would have sent (repeats not
    /// counted).
    pub notifications: usize,
    pub final_states: BTreeMap<String, State>,
}

/// Silences kept (in force, pending, or ended within the last day).
pub const MAX_SILENCES: usize = 10_000;

/// Transitions one review reads at most.
pub const MAX_REVIEW_TRANSITIONS: usize = 100_000;

/// The most transitions one backtest reports (a flapping rule over many
/// series could otherwise fill memory with them).
pub const MAX_BACKTEST_TRANSITIONS: usize = 100_000;

/// The most evaluation steps one backtest may take.
pub const MAX_BACKTEST_STEPS: usize = 20_000;

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The worst of a set of states, for a rule's summary and `/check`.
pub fn worst(states: impl Iterator<Item = State>) -> State {
    states
        .max_by_key(|s| super::check::rank(*s))
        .unwrap_or(State::Ok)
}

impl Alerts {
    /// Opens alerting over the store: saved rules, states and silences
    /// from the `alerts` space, rule files from `cfg.rules`. A bad rule
    /// file is logged (file, rule, field) and skipped; its rules start when
    /// it is fixed. `flush_interval` is the default evaluation interval.
    ///
    /// With `shared` (the `alerts` space of an engine other aggregators
    /// use too), saved rules, silences, states and history live there,
    /// are read again at every `reload_check`, and each rule is evaluated
    /// by one aggregator (`peers.rs`). A shared engine that cannot be read
    /// at open is not fatal: the first check that reads it loads them.
    pub fn open(
        store: &Store,
        source: Arc<dyn SeriesSource>,
        events: Arc<EventStore>,
        cfg: &AlertsConfig,
        flush_interval: Duration,
        external_url: String,
        shared: Option<Arc<dyn Kv>>,
    ) -> Result<Arc<Alerts>, AlertError> {
        let peers = shared.is_some().then(Peers::new);
        let persist = match (shared, &peers) {
            (Some(kv), Some(p)) => Persist::shared(kv, p.tag()),
            _ => Persist::new(store.kv().clone()),
        };
        let default_interval = if cfg.default_interval.is_zero() {
            flush_interval.max(Duration::from_secs(1))
        } else {
            cfg.default_interval
        };
        let notify_stats = NotifyStats::new();
        let external_url = external_url.trim_end_matches('/').to_string();
        let notifier = (!cfg.receivers.is_empty()).then(|| {
            Notifier::start_with_external_url(&cfg.receivers, notify_stats.clone(), &external_url)
        });
        let alerts = Alerts {
            source,
            events,
            persist,
            cfg: cfg.clone(),
            default_interval,
            external_url,
            inner: Mutex::new(Inner::default()),
            silences: RwLock::new(Vec::new()),
            has_receivers: notifier.is_some(),
            notifier: Mutex::new(notifier),
            notify_stats,
            deploys_cache: Mutex::new(None),
            peers,
            stats: AlertStats::default(),
        };
        let now = unix_now();
        match alerts.load_stored(now) {
            Ok(()) => {}
            Err(e) if alerts.peers.is_some() => {
                tracing::warn!(error = %e, "the shared alert store cannot be read; saved rules, silences and states load at the first check that reads it");
            }
            Err(e) => return Err(e),
        }
        alerts.reload();
        if alerts.peers.is_some() {
            alerts.refresh_shared(now);
        }
        Ok(Arc::new(alerts))
    }

    /// Saved rules, their states and the silences, from the store.
    fn load_stored(&self, now: i64) -> Result<(), AlertError> {
        let instances = self.persist.instances()?;
        let rules = self.persist.rules()?;
        let silences = self.persist.silences::<Silence>()?;
        {
            let mut inner = self.inner.lock();
            for (rule, inst) in instances {
                inner
                    .orphans
                    .entry(rule)
                    .or_default()
                    .insert(inst.series.clone(), inst);
            }
            for spec in rules {
                let name = spec.name.clone();
                match Rule::from_spec(spec) {
                    Ok(rule) => self.install(&mut inner, rule, Source::Api, now),
                    Err(e) => {
                        tracing::error!(rule = %name, error = %e, "a saved rule no longer reads; it is not evaluated")
                    }
                }
            }
        }
        *self.silences.write() = silences
            .into_iter()
            .filter(|s| s.ends_at > now - 86400)
            .collect();
        Ok(())
    }

    /// On a shared engine, at each `reload_check`: this member's beat, the
    /// members, and what other members changed: saved rules added,
    /// replaced or deleted, silences, and the states of the rules another
    /// member evaluates (or that this one takes over). A read that fails
    /// leaves everything as it was, to the next check.
    pub fn refresh_shared(&self, now: i64) {
        let Some(peers) = &self.peers else {
            return;
        };
        let window = (3 * secs(self.cfg.reload_check)).max(3);
        let beats = self
            .persist
            .beat(peers.tag(), now)
            .and_then(|()| self.persist.beats(now.saturating_sub(86400)));
        match beats {
            Ok(b) => peers.set_members(&b, now.saturating_sub(window)),
            Err(e) => {
                tracing::warn!(error = %e, "the shared alert store cannot be read; members, saved rules and silences stay as they were");
                return;
            }
        }
        if let Err(e) = self.refresh_stored(peers, now) {
            tracing::warn!(error = %e, "the shared alert store cannot be read; saved rules and silences stay as they were");
        }
    }

    fn refresh_stored(&self, peers: &Peers, now: i64) -> Result<(), AlertError> {
        let specs = self.persist.rules()?;
        let silences = self.persist.silences::<Silence>()?;
        // Every rule's stored states, unless this member evaluates them
        // all already (alone, or the others have none): that scan reads
        // each instance of each rule at every check.
        let need_states = {
            let inner = self.inner.lock();
            specs.iter().any(|s| !inner.rules.contains_key(&s.name))
                || inner
                    .rules
                    .iter()
                    .any(|(n, st)| !(st.owned && peers.owns(n)))
        };
        let mut states = if need_states {
            self.persist.instances()?
        } else {
            Vec::new()
        };
        let mut inner = self.inner.lock();
        let saved: HashMap<&str, &RuleSpec> = specs.iter().map(|s| (s.name.as_str(), s)).collect();
        let gone: Vec<String> = inner
            .rules
            .iter()
            .filter(|(n, st)| st.source == Source::Api && !saved.contains_key(n.as_str()))
            .map(|(n, _)| n.clone())
            .collect();
        for name in gone {
            self.remove_rule(&mut inner, &name, now);
        }
        for spec in &specs {
            let current = inner.rules.get(&spec.name);
            let install = match current {
                None => inner.rules.len() < self.cfg.max_rules,
                Some(st) => st.source == Source::Api && st.rule.spec != *spec,
            };
            if !install {
                continue;
            }
            match Rule::from_spec(spec.clone()) {
                Ok(rule) => self.install(&mut inner, rule, Source::Api, now),
                Err(e) => {
                    tracing::error!(rule = %spec.name, error = %e, "a saved rule does not read; it is not evaluated");
                }
            }
        }
        // States: the evaluator's own stay as it keeps them; every other
        // rule shows what its evaluator stored, and a rule this member
        // takes over starts from there.
        let mut by_rule: HashMap<String, BTreeMap<String, Instance>> = HashMap::new();
        for (rule, inst) in states.drain(..) {
            by_rule
                .entry(rule)
                .or_default()
                .insert(inst.series.clone(), inst);
        }
        let notifier = self.notifier.lock();
        for (name, st) in inner.rules.iter_mut() {
            let owns = peers.owns(name);
            if owns && st.owned {
                continue;
            }
            st.instances = by_rule.remove(name).unwrap_or_default();
            st.recent
                .retain(|series, _| st.instances.contains_key(series));
            if let Some(n) = notifier.as_ref() {
                if owns {
                    // What was firing was notified by the last evaluator.
                    n.seed(
                        name,
                        self.notices(&st.rule, st.instances.values(), now),
                        now,
                    );
                } else if st.owned {
                    // Its new evaluator goes on notifying: nothing resolves.
                    n.hand_over(name);
                }
            }
            st.owned = owns;
        }
        drop(notifier);
        drop(inner);
        *self.silences.write() = silences
            .into_iter()
            .filter(|s| s.ends_at > now - 86400)
            .collect();
        Ok(())
    }

    /// Whether this daemon evaluates `rule`.
    fn evaluates(&self, rule: &str) -> bool {
        self.peers.as_ref().is_none_or(|p| p.owns(rule))
    }

    fn interval(&self, rule: &Rule) -> Duration {
        rule.interval.unwrap_or(self.default_interval)
    }

    /// Puts a rule in the table (replacing one of the same name), with the
    /// states it had if it had any, and tells the notifier what of it was
    /// already firing so a restart does not notify again.
    fn install(&self, inner: &mut Inner, rule: Rule, source: Source, now: i64) {
        inner.generation += 1;
        let generation = inner.generation;
        let name = rule.name.clone();
        let instances = match inner.rules.remove(&name) {
            Some(old) if old.rule.target == rule.target => old.instances,
            Some(_) => BTreeMap::new(),
            None => inner.orphans.remove(&name).unwrap_or_default(),
        };
        let rule = Arc::new(rule);
        if let Some(n) = self.notifier.lock().as_ref() {
            let firing = self.notices(&rule, instances.values(), now);
            n.seed(&name, firing, now);
        }
        let name_of_rule = name.clone();
        inner.rules.insert(
            name,
            RuleState {
                rule,
                source,
                generation,
                instances,
                recent: HashMap::new(),
                next_due: now,
                last_eval: None,
                last_error: None,
                eval_micros: 0,
                owned: self.evaluates(&name_of_rule),
            },
        );
    }

    fn rule_paths(&self) -> Vec<PathBuf> {
        rule_paths(&self.cfg).unwrap_or_else(|e| {
            tracing::error!(error = %e, "bad rule file glob");
            Vec::new()
        })
    }

    /// Re-reads rule files that changed (or all with `force`). A file that
    /// does not read keeps its old rules running; the log names the file,
    /// the rule and the field. Returns the errors, one line per bad file.
    pub fn reload_files(&self, force: bool) -> Vec<String> {
        let now = unix_now();
        let paths = self.rule_paths();
        let mut errors = Vec::new();
        let mut inner = self.inner.lock();
        // Files gone: their rules go.
        let gone: Vec<PathBuf> = inner
            .files
            .keys()
            .filter(|p| !paths.contains(p))
            .cloned()
            .collect();
        for p in gone {
            if let Some(f) = inner.files.remove(&p) {
                for name in f.rules {
                    self.remove_rule(&mut inner, &name, now);
                }
                tracing::info!(file = %p.display(), "rule file removed; its rules stopped");
            }
        }
        for path in paths {
            let meta = std::fs::metadata(&path).ok();
            let seen = meta
                .as_ref()
                .and_then(|m| Some((m.modified().ok()?, m.len())));
            let state = inner.files.entry(path.clone()).or_default();
            if !force && seen.is_some() && state.seen == seen {
                if let Some(e) = &state.error {
                    errors.push(e.clone());
                }
                continue;
            }
            state.seen = seen;
            let parsed = std::fs::read_to_string(&path)
                .map_err(|e| format!("{}: cannot read: {e}", path.display()))
                .and_then(|text| parse_file(&text).map_err(|e| format!("{}: {e}", path.display())));
            match parsed {
                Err(e) => {
                    tracing::error!(error = %e, "rule file not loaded; its previous rules keep running");
                    self.stats.reload_errors.fetch_add(1, Relaxed);
                    if let Some(st) = inner.files.get_mut(&path) {
                        st.error = Some(e.clone());
                    }
                    errors.push(e);
                }
                Ok(rules) => {
                    let old = inner
                        .files
                        .get(&path)
                        .map(|f| f.rules.clone())
                        .unwrap_or_default();
                    let mut names = Vec::new();
                    for rule in rules {
                        let taken = inner
                            .rules
                            .get(&rule.name)
                            .is_some_and(|r| match &r.source {
                                Source::File(p) => p != &path,
                                Source::Api => false,
                            });
                        if taken {
                            let e = format!(
                                "{}: rule {:?}: field name: already defined in another rule file; this one is skipped",
                                path.display(),
                                rule.name
                            );
                            tracing::error!(error = %e, "duplicate rule name");
                            errors.push(e);
                            continue;
                        }
                        if inner.rules.len() >= self.cfg.max_rules
                            && !inner.rules.contains_key(&rule.name)
                        {
                            let e = format!(
                                "{}: more than alerts.max_rules ({}) rules",
                                path.display(),
                                self.cfg.max_rules
                            );
                            tracing::error!(error = %e, "rule not loaded");
                            errors.push(e);
                            break;
                        }
                        names.push(rule.name.clone());
                        let unchanged = inner.rules.get(&rule.name).is_some_and(|r| {
                            r.rule.spec == rule.spec && r.source == Source::File(path.clone())
                        });
                        if !unchanged {
                            self.install(&mut inner, rule, Source::File(path.clone()), now);
                        }
                    }
                    for name in old.iter().filter(|n| !names.contains(n)) {
                        self.remove_rule(&mut inner, name, now);
                    }
                    tracing::info!(file = %path.display(), rules = names.len(), "rule file loaded");
                    if let Some(st) = inner.files.get_mut(&path) {
                        st.rules = names;
                        st.error = None;
                    }
                }
            }
        }
        self.stats.reloads.fetch_add(1, Relaxed);
        errors
    }

    /// SIGHUP: every rule file read again.
    pub fn reload(&self) -> Vec<String> {
        self.reload_files(true)
    }

    fn remove_rule(&self, inner: &mut Inner, name: &str, now: i64) {
        if inner.rules.remove(name).is_some() {
            if let Some(n) = self.notifier.lock().as_ref() {
                n.forget_rule(name, now);
            }
        }
    }

    // ----- evaluation -----

    /// Starts the `alerts` thread: evaluates due rules, looks at rule
    /// files every `reload_check`, expires history hourly. Ends within a
    /// second of `shutdown` (plus a round in progress).
    pub fn start(self: &Arc<Self>, shutdown: Arc<AtomicBool>) -> std::io::Result<JoinHandle<()>> {
        let me = self.clone();
        std::thread::Builder::new()
            .name("alerts".into())
            .spawn(move || {
                let mut next_check = Instant::now() + me.cfg.reload_check;
                let mut next_expire = Instant::now();
                while !shutdown.load(Relaxed) {
                    me.round(unix_now());
                    if Instant::now() >= next_check {
                        me.reload_files(false);
                        me.refresh_shared(unix_now());
                        next_check = Instant::now() + me.cfg.reload_check;
                    }
                    if Instant::now() >= next_expire {
                        let before = unix_now().saturating_sub(secs(me.cfg.history_retention));
                        if let Err(e) = me.persist.expire(before) {
                            tracing::warn!(error = %e, "alert history retention failed");
                        }
                        me.drop_old_silences(unix_now());
                        next_expire = Instant::now() + Duration::from_secs(3600);
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                let notifier = me.notifier.lock().take();
                if let Some(n) = notifier {
                    n.stop();
                }
            })
    }

    /// One round: every rule due at `now` evaluated and applied. Public
    /// for the benchmark and tests (which run rounds on their own clock).
    pub fn round(&self, now: i64) -> usize {
        let started = Instant::now();
        let due: Vec<(Arc<Rule>, u64)> = {
            let mut inner = self.inner.lock();
            let mut due = Vec::new();
            for st in inner.rules.values_mut() {
                // Another member evaluates it (`peers.rs`); its states
                // come from the store at each check.
                if !st.owned {
                    continue;
                }
                if st.next_due <= now {
                    let every = secs(self.interval(&st.rule)).max(1);
                    // The next slot on the interval's grid after now: rules
                    // stay in step across restarts and slow rounds skip,
                    // not pile up.
                    st.next_due = (now / every + 1) * every;
                    due.push((st.rule.clone(), st.generation));
                }
            }
            due
        };
        for (rule, generation) in &due {
            self.evaluate_rule(rule, *generation, now);
        }
        self.stats.last_round_micros.store(
            u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            Relaxed,
        );
        due.len()
    }

    fn limits(&self) -> Limits {
        Limits {
            max_series: self.cfg.max_instances_per_rule,
            max_points: 20_000_000,
            deadline: Some((
                Instant::now() + Duration::from_secs(30),
                Duration::from_secs(30),
            )),
        }
    }

    /// Evaluates one rule at `now` and applies the result.
    pub fn evaluate_rule(&self, rule: &Arc<Rule>, generation: u64, now: i64) {
        let t0 = Instant::now();
        let w = secs(rule.window);
        let found = eval::fetch(self.source.as_ref(), rule, now - w, now, now, self.limits());
        let micros = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.stats.evaluations.fetch_add(1, Relaxed);
        self.stats.eval_micros_total.fetch_add(micros, Relaxed);
        let (changes, firing, persist_changed, gone) = {
            let mut inner = self.inner.lock();
            let Some(st) = inner.rules.get_mut(&rule.name) else {
                return;
            };
            if st.generation != generation {
                return;
            }
            st.last_eval = Some(now);
            st.eval_micros = micros;
            // (series, change, value at the change)
            let mut changes: Vec<(String, Change, Option<f64>)> = Vec::new();
            // Instances whose durable part changed (or that are new): only
            // these are written, not every instance every round.
            let mut dirty: Vec<String> = Vec::new();
            let mut gone = Vec::new();
            let mut step_one = |name: &str, inst: &mut Instance, obs: Observation, fresh: bool| {
                let before = durable(inst);
                if let Some(c) = state::step(rule, inst, obs, now) {
                    changes.push((name.to_string(), c, inst.value));
                }
                if fresh || durable(inst) != before {
                    dirty.push(name.to_string());
                }
            };
            match found {
                Err(e) => {
                    self.stats.evaluation_errors.fetch_add(1, Relaxed);
                    let msg = e.to_string();
                    st.last_error = Some(msg.clone());
                    let fresh = st.instances.is_empty();
                    if fresh {
                        st.instances.insert(
                            rule.target.clone(),
                            Instance::new(&rule.target, BTreeMap::new(), now),
                        );
                    }
                    for (name, inst) in st.instances.iter_mut() {
                        step_one(name, inst, Observation::Error(msg.clone()), fresh);
                    }
                }
                Ok(series) => {
                    st.last_error = None;
                    let names = eval::instance_names(&series);
                    let mut seen = std::collections::HashSet::with_capacity(names.len());
                    for (s, name) in series.iter().zip(&names) {
                        seen.insert(name.as_str());
                        let fresh = !st.instances.contains_key(name);
                        let inst = st
                            .instances
                            .entry(name.clone())
                            .or_insert_with(|| Instance::new(name, eval::tags(s), now));
                        step_one(name, inst, eval::observe_at(rule, s, now), fresh);
                        let value = inst.value;
                        let r = match st.recent.get_mut(name) {
                            Some(r) => r,
                            None => st.recent.entry(name.clone()).or_default(),
                        };
                        if r.len() == RECENT {
                            r.pop_front();
                        }
                        r.push_back((now, value));
                    }
                    // A target that matches nothing: one instance for the
                    // rule itself, so "no series at all" is seen (no-data).
                    if series.is_empty() {
                        seen.insert(rule.target.as_str());
                        let fresh = !st.instances.contains_key(&rule.target);
                        let inst = st
                            .instances
                            .entry(rule.target.clone())
                            .or_insert_with(|| Instance::new(&rule.target, BTreeMap::new(), now));
                        step_one(&rule.target, inst, Observation::NoData, fresh);
                    }
                    let missing: Vec<String> = st
                        .instances
                        .keys()
                        .filter(|k| !seen.contains(k.as_str()))
                        .cloned()
                        .collect();
                    for name in missing {
                        let Some(inst) = st.instances.get_mut(&name) else {
                            continue;
                        };
                        let (drop, c) = state::missing(inst, now);
                        if let Some(c) = c {
                            changes.push((name.clone(), c, inst.value));
                        }
                        if drop {
                            st.instances.remove(&name);
                            st.recent.remove(&name);
                            gone.push(name);
                        } else {
                            dirty.push(name);
                        }
                    }
                }
            }
            let persist_changed: Vec<Instance> = dirty
                .iter()
                .filter_map(|n| st.instances.get(n).cloned())
                .collect();
            // Silences are looked up for the changes only (rare), with the
            // instance's tags; a gone instance has only its name left.
            let no_tags = BTreeMap::new();
            let changes: Vec<(String, Change, Option<f64>, bool)> = changes
                .into_iter()
                .map(|(series, c, value)| {
                    let tags = st.instances.get(&series).map_or(&no_tags, |i| &i.tags);
                    let sev = c.to.firing().or(c.from.firing());
                    let labels = base_labels(rule, &series, tags, sev);
                    let silenced = self.is_silenced(&labels, now);
                    (series, c, value, silenced)
                })
                .collect();
            // The notifier needs every firing instance each round (it
            // repeats and resolves by their absence); without receivers
            // there is nothing to build.
            let firing = if self.has_receivers {
                self.notices(rule, st.instances.values(), now)
            } else {
                Vec::new()
            };
            (changes, firing, persist_changed, gone)
        };
        let deploys = if changes.is_empty() {
            Vec::new()
        } else {
            self.deploys_before(now)
        };
        let transitions: Vec<Transition> = changes
            .into_iter()
            .map(|(series, c, value, is_silenced)| {
                let notified =
                    self.has_receivers && !is_silenced && c.from.firing() != c.to.firing();
                Transition {
                    at: now,
                    rule: rule.name.clone(),
                    series,
                    from: c.from,
                    to: c.to,
                    value,
                    thresholds: state::thresholds_text(rule),
                    reason: c.reason,
                    deploys: deploys.clone(),
                    notified,
                    silenced: is_silenced,
                }
            })
            .collect();
        self.stats
            .transitions
            .fetch_add(transitions.len() as u64, Relaxed);
        let changed: Vec<&Instance> = persist_changed.iter().collect();
        if let Err(e) = self.persist.save(&rule.name, &changed, &gone, &transitions) {
            tracing::error!(rule = %rule.name, error = %e, "alert states could not be saved");
        }
        self.record_events(&transitions);
        for t in &transitions {
            tracing::info!(rule = %t.rule, series = %t.series, from = t.from.as_str(), to = t.to.as_str(), reason = %t.reason, "alert transition");
        }
        if let Some(n) = self.notifier.lock().as_ref() {
            n.update(&rule.name, firing, now);
        }
    }

    /// Deploys in the window before `at`, newest first, at most 5. Read
    /// once per evaluation time: every rule with a transition in a round
    /// asks for the same window, and reading it parses every event in it
    /// (500 rules each re-reading 5,200 alert events took 2–6 s of the
    /// benchmark's first round).
    fn deploys_before(&self, at: i64) -> Vec<Deploy> {
        let mut cache = self.deploys_cache.lock();
        if let Some((t, d)) = &*cache {
            if *t == at {
                return d.clone();
            }
        }
        let d = self.read_deploys_before(at);
        *cache = Some((at, d.clone()));
        d
    }

    fn read_deploys_before(&self, at: i64) -> Vec<Deploy> {
        let mut d = self.deploys(at.saturating_sub(secs(self.cfg.deploy_window)), at);
        d.sort_by_key(|e| std::cmp::Reverse(e.when));
        d.truncate(5);
        d
    }

    /// Each transition as a Graphite event tagged `alert`, the rule's name
    /// and the new state, so `events("alert")` draws them beside deploys.
    fn record_events(&self, transitions: &[Transition]) {
        if transitions.is_empty() {
            return;
        }
        let evs: Vec<QueuedEvent> = transitions
            .iter()
            .map(|t| QueuedEvent {
                when: t.at,
                what: truncate(
                    &format!(
                        "{} {}: {} → {}",
                        t.rule,
                        t.series,
                        t.from.as_str(),
                        t.to.as_str()
                    ),
                    250,
                ),
                tags: vec!["alert".into(), truncate(&t.rule, 200), t.to.as_str().into()],
                data: truncate(&t.reason, 4096),
            })
            .collect();
        for r in self.events.add_all(evs, None) {
            if let Err(e) = r {
                tracing::warn!(error = %e, "an alert transition could not be stored as an event");
            }
        }
    }

    /// Whether a silence in force matches these labels.
    pub fn is_silenced(&self, labels: &BTreeMap<String, String>, now: i64) -> bool {
        self.silences
            .read()
            .iter()
            .any(|s| s.active(now) && s.matches(labels))
    }

    /// The firing instances of a rule as notifications.
    fn notices<'a>(
        &self,
        rule: &Rule,
        instances: impl Iterator<Item = &'a Instance>,
        now: i64,
    ) -> Vec<Notice> {
        instances
            .filter_map(|i| {
                let severity = i.state.firing()?;
                let labels = base_labels(rule, &i.series, &i.tags, Some(severity));
                let silenced = self.is_silenced(&labels, now);
                Some(Notice {
                    fingerprint: fingerprint(&rule.name, &i.series),
                    rule: rule.name.clone(),
                    series: i.series.clone(),
                    annotations: self.annotations(rule, i, &labels),
                    labels,
                    severity,
                    value: i.value,
                    starts_at: i.firing_since.unwrap_or(i.since),
                    generator_url: format!("{}/api/alerts/{}", self.external_url, rule.name),
                    silenced,
                    receivers: rule.receivers.clone(),
                })
            })
            .collect()
    }

    fn annotations(
        &self,
        rule: &Rule,
        i: &Instance,
        labels: &BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        let mut vars = Vars {
            labels: Some(labels),
            ..Default::default()
        };
        vars.values.insert(
            "value",
            i.value.map(super::forecast::fmt_num).unwrap_or_default(),
        );
        vars.values.insert("series", i.series.clone());
        vars.values.insert("rule", rule.name.clone());
        vars.values.insert("state", i.state.as_str().into());
        vars.values.insert(
            "severity",
            i.state.firing().map_or("", |s| s.as_str()).into(),
        );
        vars.values
            .insert("threshold", state::thresholds_text(rule));
        if let Some(v) = &i.forecast {
            if let (Some(f), Some(c)) = (&v.fit, v.crossing) {
                vars.values
                    .insert("eta", super::forecast::human(c - i.evaluated));
                vars.values.insert("r2", format!("{:.2}", f.r2));
                vars.values
                    .insert("slope", super::forecast::fmt_num(f.slope * 86400.0));
            }
        }
        let mut out: BTreeMap<String, String> = rule
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), template::render(v, &vars)))
            .collect();
        out.entry("reason".into())
            .or_insert_with(|| i.reason.clone());
        out.entry("graph".into())
            .or_insert_with(|| self.graph_url(rule));
        out
    }

    /// The rule's PNG: its target over its window with the thresholds as
    /// lines and the deploys drawn.
    pub fn graph_url(&self, rule: &Rule) -> String {
        format!(
            "{}/render?{}",
            self.external_url,
            graph_query(rule, &self.cfg.deploy_tag)
        )
    }

    // ----- reads -----

    pub fn list(&self) -> Vec<RuleView> {
        let now = unix_now();
        let inner = self.inner.lock();
        inner
            .rules
            .values()
            .map(|st| self.view(st, false, now))
            .collect()
    }

    pub fn get(&self, name: &str) -> Option<RuleView> {
        let now = unix_now();
        let inner = self.inner.lock();
        inner.rules.get(name).map(|st| self.view(st, true, now))
    }

    /// Rule-file problems in force (one line per file).
    pub fn file_errors(&self) -> Vec<String> {
        self.inner
            .lock()
            .files
            .values()
            .filter_map(|f| f.error.clone())
            .collect()
    }

    fn view(&self, st: &RuleState, detail: bool, now: i64) -> RuleView {
        let rule = &st.rule;
        RuleView {
            name: rule.name.clone(),
            kind: if rule.is_forecast() {
                "forecast"
            } else {
                "threshold"
            },
            target: rule.target.clone(),
            source: st.source.describe(),
            interval_secs: self.interval(rule).as_secs(),
            state: worst(st.instances.values().map(|i| i.state)),
            thresholds: state::thresholds_text(rule),
            last_eval: st.last_eval,
            last_error: st.last_error.clone(),
            eval_ms: st.eval_micros as f64 / 1000.0,
            evaluator: self
                .peers
                .as_ref()
                .map(|p| p.owner(&rule.name).map_or_else(|| "none".into(), tag_text)),
            evaluated_here: self.peers.as_ref().map(|_| st.owned),
            instances: st
                .instances
                .values()
                .map(|i| {
                    let labels = base_labels(rule, &i.series, &i.tags, i.state.firing());
                    InstanceView {
                        silenced: self.is_silenced(&labels, now),
                        labels,
                        series: i.series.clone(),
                        state: i.state,
                        since: i.since,
                        value: i.value,
                        reason: i.reason.clone(),
                        firing_since: i.firing_since,
                        pending: i.pending,
                        forecast: i.forecast.clone(),
                        recent: detail.then(|| {
                            st.recent
                                .get(&i.series)
                                .map(|r| r.iter().copied().collect())
                                .unwrap_or_default()
                        }),
                    }
                })
                .collect(),
            spec: rule.spec.clone(),
        }
    }

    pub fn history(
        &self,
        rule: Option<&str>,
        from: i64,
        until: i64,
        limit: usize,
    ) -> Result<Vec<Transition>, AlertError> {
        Ok(self.persist.history(rule, from, until, limit)?)
    }

    /// Deploys (events tagged `deploy_tag`) in `[from, until]`. A read that
    /// fails is logged and taken as none: a transition or a review is not
    /// held back by the event store.
    pub fn deploys(&self, from: i64, until: i64) -> Vec<Deploy> {
        let filter = TagFilter::AllOf(vec![self.cfg.deploy_tag.clone()]);
        match self.events.query(from, until, &filter) {
            Ok(evs) => evs
                .into_iter()
                .map(|e| Deploy {
                    when: e.when,
                    what: e.what,
                    data: e.data,
                })
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "deploy events could not be read for alerting");
                Vec::new()
            }
        }
    }

    /// The signal-to-noise review over `[from, until)`, from the stored
    /// transitions (at most `MAX_REVIEW_TRANSITIONS`; more is a refusal,
    /// never a review of part of the window).
    pub fn review(&self, p: &super::review::Params) -> Result<super::review::Review, AlertError> {
        let transitions =
            self.persist
                .history(None, p.from, p.until, MAX_REVIEW_TRANSITIONS + 1)?;
        if transitions.len() > MAX_REVIEW_TRANSITIONS {
            return Err(AlertError::TooMany(format!(
                "more than {MAX_REVIEW_TRANSITIONS} transitions in the window; review a shorter one"
            )));
        }
        let rules: Vec<String> = self.inner.lock().rules.keys().cloned().collect();
        // A deploy shortly before the window can end a firing inside it.
        let deploys = self.deploys(p.from.saturating_sub(secs(p.deploy_within)), p.until);
        let repeats = BTreeMap::new();
        let input = super::review::Input {
            rules: &rules,
            transitions: &transitions,
            at_from: None,
            deploys: &deploys,
            repeats: &repeats,
        };
        Ok(super::review::review(&input, p))
    }

    // ----- writes over HTTP -----

    /// Creates or replaces a rule saved in the store. Returns whether it
    /// was new.
    pub fn put_rule(&self, spec: RuleSpec) -> Result<bool, AlertError> {
        let rule = Rule::from_spec(spec)?;
        self.check_receivers(&rule)?;
        let now = unix_now();
        let mut inner = self.inner.lock();
        let existing = inner.rules.get(&rule.name).map(|r| r.source.clone());
        if let Some(Source::File(p)) = &existing {
            return Err(AlertError::Conflict(format!(
                "rule {:?} comes from the rule file {}; change it there",
                rule.name,
                p.display()
            )));
        }
        if existing.is_none() && inner.rules.len() >= self.cfg.max_rules {
            return Err(AlertError::TooMany(format!(
                "there are {} rules already, alerts.max_rules",
                inner.rules.len()
            )));
        }
        self.persist.put_rule(&rule.spec)?;
        self.install(&mut inner, rule, Source::Api, now);
        Ok(existing.is_none())
    }

    fn check_receivers(&self, rule: &Rule) -> Result<(), AlertError> {
        for r in &rule.receivers {
            if !self.cfg.receivers.iter().any(|c| &c.name == r) {
                return Err(AlertError::Invalid(RuleError {
                    rule: rule.name.clone(),
                    field: "receivers".into(),
                    message: format!("no receiver named {r:?} in [[alerts.receivers]]"),
                }));
            }
        }
        Ok(())
    }

    pub fn delete_rule(&self, name: &str) -> Result<(), AlertError> {
        let now = unix_now();
        let mut inner = self.inner.lock();
        match inner.rules.get(name).map(|r| r.source.clone()) {
            None => Err(AlertError::NotFound(format!("no rule named {name:?}"))),
            Some(Source::File(p)) => Err(AlertError::Conflict(format!(
                "rule {name:?} comes from the rule file {}; remove it there",
                p.display()
            ))),
            Some(Source::Api) => {
                self.persist.delete_rule(name)?;
                self.remove_rule(&mut inner, name, now);
                Ok(())
            }
        }
    }

    pub fn silences(&self) -> Vec<Silence> {
        self.silences.read().clone()
    }

    /// Adds a silence (or, with the `id` of one, replaces it). Returns
    /// it with its id.
    pub fn add_silence(&self, spec: SilenceSpec) -> Result<Silence, AlertError> {
        let now = unix_now();
        let mut s = silence::check(spec, now).map_err(|e| AlertError::BadRequest(e.to_string()))?;
        let mut all = self.silences.write();
        if s.id.is_empty() {
            s.id = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        } else if !all.iter().any(|x| x.id == s.id) {
            return Err(AlertError::NotFound(format!(
                "no silence with id {:?} to update",
                s.id
            )));
        }
        if all.len() >= MAX_SILENCES && !all.iter().any(|x| x.id == s.id) {
            return Err(AlertError::TooMany(format!(
                "{MAX_SILENCES} silences are kept already"
            )));
        }
        self.persist.put_silence(&s.id, &s)?;
        all.retain(|x| x.id != s.id);
        all.push(s.clone());
        Ok(s)
    }

    /// Silences that ended over a day ago are forgotten.
    fn drop_old_silences(&self, now: i64) {
        let mut all = self.silences.write();
        all.retain(|s| {
            let keep = s.ends_at > now - 86400;
            if !keep {
                if let Err(e) = self.persist.delete_silence(&s.id) {
                    tracing::warn!(error = %e, "an old silence could not be deleted");
                }
            }
            keep
        });
    }

    /// Ends a silence now; the record stays until a day after its end.
    pub fn expire_silence(&self, id: &str) -> Result<(), AlertError> {
        let now = unix_now();
        let mut all = self.silences.write();
        let s = all
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or_else(|| AlertError::NotFound(format!("no silence with id {id:?}")))?;
        let mut ended = s.clone();
        ended
            .expire(now)
            .map_err(|e| AlertError::BadRequest(e.to_string()))?;
        self.persist.put_silence(id, &ended)?;
        *s = ended;
        Ok(())
    }

    // ----- what-if -----

    /// Runs a rule over stored history from `from` to `until` at its
    /// interval, from fresh states, saving and sending nothing.
    pub fn backtest(
        &self,
        spec: RuleSpec,
        from: i64,
        until: i64,
        limits: Limits,
    ) -> Result<Backtest, AlertError> {
        let rule = Rule::from_spec(spec)?;
        if until <= from {
            return Err(AlertError::BadRequest("until must be after from".into()));
        }
        let step = secs(self.interval(&rule)).max(1);
        // Positive (until > from, step >= 1); past usize it is refused below.
        let steps = usize::try_from((until - from) / step + 1).unwrap_or(usize::MAX);
        if steps > MAX_BACKTEST_STEPS {
            return Err(AlertError::TooMany(format!(
                "{steps} evaluations at the rule's interval of {step}s; at most {MAX_BACKTEST_STEPS} (shorten the range or lengthen interval)"
            )));
        }
        let w = secs(rule.window);
        let series = eval::fetch(self.source.as_ref(), &rule, from - w, until, until, limits)?;
        let names = eval::instance_names(&series);
        let mut instances: BTreeMap<String, Instance> = BTreeMap::new();
        let mut transitions = Vec::new();
        let mut t = from;
        while t <= until {
            limits.check_deadline()?;
            for (s, name) in series.iter().zip(&names) {
                let inst = instances
                    .entry(name.clone())
                    .or_insert_with(|| Instance::new(name, eval::tags(s), t));
                let obs = eval::observe_at(&rule, s, t);
                if let Some(c) = state::step(&rule, inst, obs, t) {
                    if transitions.len() == MAX_BACKTEST_TRANSITIONS {
                        return Err(AlertError::TooMany(format!(
                            "more than {MAX_BACKTEST_TRANSITIONS} transitions by {t}; test a shorter range or fewer series"
                        )));
                    }
                    transitions.push(Transition {
                        at: t,
                        rule: rule.name.clone(),
                        series: name.clone(),
                        from: c.from,
                        to: c.to,
                        value: inst.value,
                        thresholds: state::thresholds_text(&rule),
                        reason: c.reason,
                        deploys: Vec::new(),
                        notified: c.from.firing() != c.to.firing(),
                        silenced: false,
                    });
                }
            }
            t += step;
        }
        Ok(Backtest {
            from,
            until,
            step_secs: step.unsigned_abs(),
            evaluations: steps,
            notifications: transitions.iter().filter(|t| t.notified).count(),
            transitions,
            final_states: instances.into_iter().map(|(k, v)| (k, v.state)).collect(),
        })
    }

    /// One stateless evaluation (`/check`): each series' state as if it
    /// had been in it for the rule's `for` already.
    pub fn check(
        &self,
        rule: &Rule,
        now: i64,
        limits: Limits,
    ) -> Result<Vec<Instance>, AlertError> {
        let w = secs(rule.window);
        let series = eval::fetch(self.source.as_ref(), rule, now - w, now, now, limits)?;
        let names = eval::instance_names(&series);
        let mut immediate = rule.clone();
        immediate.for_ = Duration::ZERO;
        immediate.keep_firing_for = Duration::ZERO;
        immediate.no_data_after = Duration::ZERO;
        Ok(series
            .iter()
            .zip(names)
            .map(|(s, name)| {
                let mut inst = Instance::new(&name, eval::tags(s), now);
                state::step(
                    &immediate,
                    &mut inst,
                    eval::observe_at(&immediate, s, now),
                    now,
                );
                inst
            })
            .collect())
    }

    /// The configured rule of this name, for `/check/<rule>`.
    pub fn rule(&self, name: &str) -> Option<Arc<Rule>> {
        self.inner.lock().rules.get(name).map(|r| r.rule.clone())
    }

    /// The receivers' counters (empty without receivers).
    pub fn notify_stats(&self) -> &Arc<NotifyStats> {
        &self.notify_stats
    }

    /// Instances per state across all rules (for `/metrics`).
    pub fn state_counts(&self) -> BTreeMap<&'static str, usize> {
        let inner = self.inner.lock();
        let mut out: BTreeMap<&'static str, usize> =
            State::ALL.iter().map(|s| (s.as_str(), 0)).collect();
        for st in inner.rules.values() {
            for i in st.instances.values() {
                *out.entry(i.state.as_str()).or_default() += 1;
            }
        }
        out
    }

    /// On a shared engine: the members seen at the last check, and the
    /// rules this one evaluates. `None` when it evaluates every rule.
    pub fn sharing(&self) -> Option<(usize, usize)> {
        let peers = self.peers.as_ref()?;
        let here = self
            .inner
            .lock()
            .rules
            .values()
            .filter(|st| st.owned)
            .count();
        Some((peers.members().len(), here))
    }

    pub fn rule_count(&self) -> usize {
        self.inner.lock().rules.len()
    }

    pub fn config(&self) -> &AlertsConfig {
        &self.cfg
    }
}

/// The rule files the config's globs name now, sorted.
pub fn rule_paths(cfg: &AlertsConfig) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for pattern in &cfg.rules {
        let paths = glob::glob(pattern).map_err(|e| format!("alerts.rules {pattern:?}: {e}"))?;
        out.extend(paths.filter_map(Result::ok));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// `rollupd check-config`: every rule file read and checked as the daemon
/// would (names unique across files, receivers known). Returns the rules
/// per file, or every problem found, one line each.
pub fn check_rule_files(cfg: &AlertsConfig) -> Result<Vec<(PathBuf, usize)>, Vec<String>> {
    let paths = rule_paths(cfg).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    let mut ok = Vec::new();
    let mut names: HashMap<String, PathBuf> = HashMap::new();
    for path in paths {
        let parsed = std::fs::read_to_string(&path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))
            .and_then(|t| parse_file(&t).map_err(|e| format!("{}: {e}", path.display())));
        match parsed {
            Err(e) => errors.push(e),
            Ok(rules) => {
                for r in &rules {
                    if let Some(other) = names.insert(r.name.clone(), path.clone()) {
                        errors.push(format!(
                            "{}: rule {:?}: field name: already defined in {}",
                            path.display(),
                            r.name,
                            other.display()
                        ));
                    }
                    for rc in &r.receivers {
                        if !cfg.receivers.iter().any(|c| &c.name == rc) {
                            errors.push(format!(
                                "{}: rule {:?}: field receivers: no receiver named {rc:?} in [[alerts.receivers]]",
                                path.display(),
                                r.name
                            ));
                        }
                    }
                }
                ok.push((path, rules.len()));
            }
        }
    }
    if errors.is_empty() {
        Ok(ok)
    } else {
        Err(errors)
    }
}

/// What of an instance must be saved when it changes (value and reason
/// change every evaluation and are not worth a write each).
#[derive(PartialEq)]
struct Durable {
    state: State,
    since: i64,
    pending: Option<(Severity, i64)>,
    firing_since: Option<i64>,
    recovered_since: Option<i64>,
}

fn durable(i: &Instance) -> Durable {
    Durable {
        state: i.state,
        since: i.since,
        pending: i.pending,
        firing_since: i.firing_since,
        recovered_since: i.recovered_since,
    }
}

/// `alertname`, `severity`, `series`, the series' tags and the rule's
/// labels (templated with the series).
pub fn base_labels(
    rule: &Rule,
    series: &str,
    tags: &BTreeMap<String, String>,
    severity: Option<Severity>,
) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = tags.clone();
    let mut vars = Vars {
        labels: Some(tags),
        ..Default::default()
    };
    vars.values.insert("series", series.to_string());
    vars.values.insert("rule", rule.name.clone());
    for (k, v) in &rule.labels {
        labels.insert(k.clone(), template::render(v, &vars));
    }
    labels.insert("alertname".into(), rule.name.clone());
    labels.insert("series".into(), series.to_string());
    if let Some(s) = severity {
        labels.insert("severity".into(), s.as_str().into());
    }
    labels
}

/// The render query string of a rule's graph: its target, each threshold
/// as a horizontal line, the deploy events, over its window (at least an
/// hour, so there is something to look at).
pub fn graph_query(rule: &Rule, deploy_tag: &str) -> String {
    use super::rule::Kind;
    let mut targets = vec![rule.target.clone()];
    let mut line = |v: f64, label: &str, color: &str| {
        if v.is_finite() {
            targets.push(format!("threshold({v},'{label}','{color}')"));
        }
    };
    match &rule.kind {
        Kind::Threshold(t) => {
            for (l, name, color) in [(&t.warn, "warn", "orange"), (&t.crit, "crit", "red")] {
                if let Some(l) = l {
                    line(l.fire.0, name, color);
                    if l.fire.1 != l.fire.0 {
                        line(l.fire.1, name, color);
                    }
                }
            }
        }
        Kind::Forecast(f) => line(f.threshold, "threshold", "red"),
    }
    targets.push(format!("drawAsInfinite(events('{deploy_tag}'))"));
    let window = rule.window.as_secs().max(3600);
    let mut q = serde_urlencoded::to_string(
        targets
            .iter()
            .map(|t| ("target", t.as_str()))
            .collect::<Vec<_>>(),
    )
    .unwrap_or_default();
    q.push_str(&format!("&from=-{window}s&format=png"));
    q
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}
