//! The configuration tree: one serde structure read from TOML.
//!
//! Every table denies unknown keys, so a typo is an error that names the key
//! instead of a silently ignored setting. Defaults live beside each field and
//! match Etsy statsd 0.9.0 wherever an Etsy option exists.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use rollupd_secret::Secret;
use rollupd_units::{duration_str, opt_duration_str};

// The store owns its section; it is re-exported here because `[storage]` is
// read with the rest of the file.
pub use rollupd_store::config::{
    default_max_memory, AggregationRule, RetentionRule, StorageConfig, MIN_MAX_MEMORY,
};

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid config: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub statsd: StatsdConfig,
    pub forward: ForwardConfig,
    pub storage: StorageConfig,
    pub alerts: AlertsConfig,
    pub dashboards: DashboardsConfig,
    pub relay: RelayConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// statsd over UDP (Etsy's default port). `""` disables the listener.
    #[serde(with = "opt_addr")]
    pub statsd_udp: Option<SocketAddr>,
    /// statsd over newline-delimited TCP, on the same port as UDP by default.
    #[serde(with = "opt_addr")]
    pub statsd_tcp: Option<SocketAddr>,
    /// Etsy's management interface (`help`, `stats`, `counters`, ...).
    #[serde(with = "opt_addr")]
    pub admin_tcp: Option<SocketAddr>,
    /// Concurrent admin connections; more are closed unread and counted.
    pub max_admin_connections: usize,
    /// An admin connection with no complete command for this long (or
    /// that does not read its reply for this long) is closed.
    #[serde(with = "duration_str")]
    pub admin_idle_timeout: Duration,
    /// graphite-web's HTTP API (render, find, expand, tags, events, functions).
    #[serde(with = "opt_addr")]
    pub http: Option<SocketAddr>,
    /// Concurrent HTTP connections; more are closed unread and counted.
    pub max_http_connections: usize,
    /// An HTTP connection must send a complete request head within this
    /// long of connecting or of its previous reply, and each piece of a
    /// request body within this long of the last, or it is closed.
    #[serde(with = "duration_str")]
    pub http_read_timeout: Duration,
    /// At shutdown, how long HTTP replies in progress may take to finish
    /// (in parallel with the final flush); what is still open is dropped.
    #[serde(with = "duration_str")]
    pub http_drain_timeout: Duration,
    /// Where rollupd keeps its state (gauge snapshot, store; events live in the store).
    pub data_dir: PathBuf,
    /// Threads reading the UDP socket. 0 means one per CPU core.
    pub udp_receivers: usize,
    /// Receive buffer requested for the UDP socket, in bytes.
    pub udp_recv_buffer: usize,
    /// Largest datagram accepted whole; longer ones are truncated and their
    /// last line is counted as bad.
    pub max_packet_size: usize,
    /// Longest line accepted on a TCP connection.
    pub max_line_length: usize,
    /// Concurrent statsd TCP connections, and carbon TCP connections
    /// (each listener its own); more are closed unread and counted.
    pub max_tcp_connections: usize,
    /// A statsd or carbon TCP connection that sends nothing for this long is
    /// closed, so silent clients cannot hold every slot; `"0s"` never closes.
    #[serde(with = "duration_str")]
    pub tcp_idle_timeout: Duration,
    /// Carbon plaintext (`name value timestamp`) over TCP.
    #[serde(with = "opt_addr")]
    pub carbon_tcp: Option<SocketAddr>,
    /// Carbon plaintext over UDP, one or more lines per datagram.
    #[serde(with = "opt_addr")]
    pub carbon_udp: Option<SocketAddr>,
    /// When set, HTTP writes (events) need `Authorization: Bearer <token>`.
    /// A [`Secret`]: printed and logged only as `<redacted>`.
    pub api_token: Option<Secret>,
    /// When set, HTTP reads of alerting state (rules, states, history,
    /// silences, checks) need `Authorization: Bearer <token>` with this
    /// token or `api_token`.
    pub read_token: Option<Secret>,
    /// Time zone for `from`/`until` and csv times when a request has no
    /// `tz` (graphite-web's TIME_ZONE).
    pub time_zone: String,
    /// Series one render request may read; more is a 422.
    pub max_series_per_request: usize,
    /// Points one render request may read; more is a 422.
    pub max_points_per_request: usize,
    /// How long one HTTP request (render, find, expand, tag listing) may
    /// take, its reply included; past it, a 503 naming `render_timeout`.
    #[serde(with = "duration_str")]
    pub render_timeout: Duration,
    /// Renders (and finds, expands, tag listings) worked on at once; more
    /// wait up to a second for a slot, then get a 503. 0 means twice the
    /// CPU cores.
    pub max_concurrent_renders: usize,
}

impl ServerConfig {
    /// `max_concurrent_renders`, with 0 resolved to twice the CPU cores.
    pub fn concurrent_renders(&self) -> usize {
        match self.max_concurrent_renders {
            0 => 2 * std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            statsd_udp: Some(([0, 0, 0, 0], 8125).into()),
            statsd_tcp: Some(([0, 0, 0, 0], 8125).into()),
            admin_tcp: Some(([127, 0, 0, 1], 8126).into()),
            max_admin_connections: 16,
            admin_idle_timeout: Duration::from_secs(300),
            http: Some(([127, 0, 0, 1], 8080).into()),
            max_http_connections: 1024,
            http_read_timeout: Duration::from_secs(30),
            http_drain_timeout: Duration::from_secs(5),
            data_dir: PathBuf::from("./data"),
            udp_receivers: 0,
            udp_recv_buffer: 32 << 20,
            max_packet_size: 65536,
            max_line_length: 65536,
            max_tcp_connections: 1024,
            tcp_idle_timeout: Duration::from_secs(600),
            carbon_tcp: Some(([0, 0, 0, 0], 2003).into()),
            carbon_udp: Some(([0, 0, 0, 0], 2003).into()),
            api_token: None,
            read_token: None,
            time_zone: "UTC".to_string(),
            max_series_per_request: 100_000,
            max_points_per_request: 50_000_000,
            render_timeout: Duration::from_secs(30),
            max_concurrent_renders: 0,
        }
    }
}

/// A percentile threshold list; Etsy accepts one number or an array.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Percentiles(pub Vec<f64>);

impl<'de> Deserialize<'de> for Percentiles {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(f64),
            Many(Vec<f64>),
        }
        let list = match OneOrMany::deserialize(d)? {
            OneOrMany::One(x) => vec![x],
            OneOrMany::Many(v) => v,
        };
        if list
            .iter()
            .any(|p| !p.is_finite() || *p == 0.0 || p.abs() > 100.0)
        {
            return Err(de::Error::custom(
                "percent_threshold values must be non-zero numbers between -100 and 100",
            ));
        }
        Ok(Percentiles(list))
    }
}

impl Default for Percentiles {
    fn default() -> Self {
        Percentiles(vec![90.0])
    }
}

/// One bin limit of a timer histogram: a number, or `"inf"` for the rest.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum BinLimit {
    Finite(f64),
    #[serde(serialize_with = "ser_inf")]
    Inf,
}

fn ser_inf<S: serde::Serializer>(s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("inf")
}

impl<'de> Deserialize<'de> for BinLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(f64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(x) if x.is_finite() => Ok(BinLimit::Finite(x)),
            Raw::Num(_) => Err(de::Error::custom(
                "histogram bins must be finite numbers or \"inf\"",
            )),
            Raw::Str(s) if s == "inf" => Ok(BinLimit::Inf),
            Raw::Str(s) => Err(de::Error::custom(format!(
                "histogram bin {s:?} is not a number or \"inf\""
            ))),
        }
    }
}

/// Etsy's `histogram` option: the first entry whose `metric` is a substring
/// of the timer's name gives its bins.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HistogramConfig {
    pub metric: String,
    pub bins: Vec<BinLimit>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatsdConfig {
    #[serde(with = "duration_str")]
    pub flush_interval: Duration,
    pub percent_threshold: Percentiles,
    pub flush_counts: bool,
    pub delete_idle_stats: bool,
    pub delete_counters: Option<bool>,
    pub delete_timers: Option<bool>,
    pub delete_gauges: Option<bool>,
    pub delete_sets: Option<bool>,
    pub gauges_max_ttl: u32,
    pub prefix_stats: String,
    pub key_name_sanitize: bool,
    /// Whitelist of timer fields (`upper`, `mean_percent`, ...); `None` = all.
    pub calculated_timer_metrics: Option<Vec<String>>,
    pub histogram: Vec<HistogramConfig>,
    pub legacy_namespace: bool,
    pub global_prefix: String,
    pub prefix_counter: String,
    pub prefix_timer: String,
    pub prefix_gauge: String,
    pub prefix_set: String,
    pub global_suffix: Option<String>,
    /// Cap on live keys (all types together). New keys past it are dropped and
    /// counted in `statsd.keys_over_cap`, so a flood of unique names cannot
    /// exhaust memory.
    pub max_keys: usize,
    /// Raw samples kept per timer per interval for Etsy's exact statistics;
    /// past it, a uniform reservoir of this size is kept.
    pub max_timer_samples: usize,
    /// Distinct members kept per set per interval.
    pub max_set_size: usize,
}

impl Default for StatsdConfig {
    fn default() -> Self {
        StatsdConfig {
            flush_interval: Duration::from_secs(10),
            percent_threshold: Percentiles::default(),
            flush_counts: true,
            delete_idle_stats: false,
            delete_counters: None,
            delete_timers: None,
            delete_gauges: None,
            delete_sets: None,
            gauges_max_ttl: 1,
            prefix_stats: "statsd".into(),
            key_name_sanitize: true,
            calculated_timer_metrics: None,
            histogram: Vec::new(),
            legacy_namespace: true,
            global_prefix: "stats".into(),
            prefix_counter: "counters".into(),
            prefix_timer: "timers".into(),
            prefix_gauge: "gauges".into(),
            prefix_set: "sets".into(),
            global_suffix: None,
            max_keys: 1_000_000,
            max_timer_samples: 100_000,
            max_set_size: 1_000_000,
        }
    }
}

impl StatsdConfig {
    /// Etsy: `deleteIdleStats` turns each of the four on unless it is set.
    pub fn delete_counters(&self) -> bool {
        self.delete_counters.unwrap_or(self.delete_idle_stats)
    }
    pub fn delete_timers(&self) -> bool {
        self.delete_timers.unwrap_or(self.delete_idle_stats)
    }
    pub fn delete_gauges(&self) -> bool {
        self.delete_gauges.unwrap_or(self.delete_idle_stats)
    }
    pub fn delete_sets(&self) -> bool {
        self.delete_sets.unwrap_or(self.delete_idle_stats)
    }
    /// Etsy forces `gaugesMaxTTL` to 1 unless it is an integer above 1.
    pub fn gauges_max_ttl(&self) -> u32 {
        self.gauges_max_ttl.max(1)
    }
    pub fn flush_interval_ms(&self) -> u64 {
        u64::try_from(self.flush_interval.as_millis()).unwrap_or(u64::MAX)
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardConfig {
    pub graphite: Option<GraphiteForwardConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GraphiteForwardConfig {
    /// A carbon plaintext receiver, `"host:port"`.
    pub address: String,
    /// Bytes of flushed output held while carbon is down or slow; past it the
    /// oldest flushes are dropped (and counted).
    #[serde(default = "default_forward_queue")]
    pub max_queue_bytes: usize,
}

fn default_forward_queue() -> usize {
    64 << 20
}

/// `[dashboards]`: the user's dashboard files, beside the repo's own
/// `dashboards/*.toml`. Looked at for changes every `[alerts]
/// reload_check`, as rule files are.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardsConfig {
    /// TOML dashboard files, globs allowed, relative to the working
    /// directory.
    pub paths: Vec<String>,
}

/// `[relay]`: what `rollupd relay` listens on and the aggregators it
/// forwards to, each statsd line to the member that owns its metric name
/// on a consistent-hash ring (`relay::ring`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    /// statsd over UDP, in.
    #[serde(with = "opt_addr")]
    pub statsd_udp: Option<SocketAddr>,
    /// statsd over TCP, in (newline-ended lines, as Etsy's `tcp`
    /// server reads them); forwarded as UDP datagrams like the rest.
    #[serde(with = "opt_addr")]
    pub statsd_tcp: Option<SocketAddr>,
    /// carbon plaintext over TCP, in; each line goes to its owner's
    /// `carbon` address.
    #[serde(with = "opt_addr")]
    pub carbon_tcp: Option<SocketAddr>,
    /// How often each member's admin port is asked `health`.
    #[serde(with = "duration_str")]
    pub health_interval: Duration,
    /// Packets waiting for one member at most; past it new ones are
    /// dropped and counted.
    pub queue: usize,
    /// Bytes of lines per forwarded datagram at most (Etsy's
    /// `mtu`-sized packets).
    pub packet_size: usize,
    /// The relay's own counts are sent as statsd counters and gauges under
    /// this prefix, to their owners like any line (empty: not sent).
    pub stats_prefix: String,
    /// How often the relay sends its own counts.
    #[serde(with = "duration_str")]
    pub stats_interval: Duration,
    pub member: Vec<RelayMember>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            statsd_udp: None,
            statsd_tcp: None,
            carbon_tcp: None,
            health_interval: Duration::from_secs(1),
            queue: 10_000,
            packet_size: 1432,
            stats_prefix: "rollupd.relay".into(),
            stats_interval: Duration::from_secs(10),
            member: vec![],
        }
    }
}

/// Members a relay forwards to at most (its ring asks them by bits of a
/// u64 when one is down).
pub const RELAY_MAX_MEMBERS: usize = 64;

/// `[[relay.member]]`: one aggregator.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RelayMember {
    /// Its place on the ring: keep it when the address changes, or its
    /// metrics move.
    pub name: String,
    /// Its statsd UDP listener.
    pub statsd: SocketAddr,
    /// Its admin port, asked `health` (Etsy's management command).
    pub admin: SocketAddr,
    /// Its carbon plaintext TCP listener (needed with `carbon_tcp`).
    #[serde(default, with = "opt_addr", skip_serializing_if = "Option::is_none")]
    pub carbon: Option<SocketAddr>,
    /// Its share of the names, relative to the others'.
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

impl RelayConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.member.len() > RELAY_MAX_MEMBERS {
            return bad(format!(
                "relay.member: {} members, at most {}",
                self.member.len(),
                RELAY_MAX_MEMBERS
            ));
        }
        for (i, m) in self.member.iter().enumerate() {
            if m.name.is_empty() {
                return bad(format!("relay.member[{i}].name is empty"));
            }
            if self.member[..i].iter().any(|o| o.name == m.name) {
                return bad(format!("relay.member[{i}].name {:?} is used twice", m.name));
            }
            if m.weight == 0 || m.weight > 100 {
                return bad(format!("relay.member[{i}].weight must be 1 to 100"));
            }
        }
        let listens =
            self.statsd_udp.is_some() || self.statsd_tcp.is_some() || self.carbon_tcp.is_some();
        if listens && self.member.is_empty() {
            return bad("relay: a listener is set but relay.member lists no aggregator".into());
        }
        if self.carbon_tcp.is_some() {
            if let Some(i) = self.member.iter().position(|m| m.carbon.is_none()) {
                return bad(format!(
                    "relay.member[{i}].carbon is needed: relay.carbon_tcp is set"
                ));
            }
        }
        if self.queue == 0 {
            return bad("relay.queue must be at least 1".into());
        }
        if !(64..=65_000).contains(&self.packet_size) {
            return bad("relay.packet_size must be 64 to 65000".into());
        }
        if self.health_interval.is_zero() {
            return bad("relay.health_interval must be more than 0".into());
        }
        if self.stats_interval.is_zero() {
            return bad("relay.stats_interval must be more than 0".into());
        }
        if self
            .stats_prefix
            .bytes()
            .any(|b| matches!(b, b':' | b'|' | b'@' | b'#') || b.is_ascii_whitespace())
        {
            return bad(format!(
                "relay.stats_prefix {:?}: no ':', '|', '@', '#' or spaces in a metric name",
                self.stats_prefix
            ));
        }
        Ok(())
    }
}

/// `[alerts]`: threshold and forecast rules evaluated from the store, and
/// where their notifications go.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Rule files (TOML), globs allowed, relative to the working directory.
    /// Re-read on SIGHUP and when a file changes.
    pub rules: Vec<String>,
    /// How often rules are evaluated when a rule names no `interval`.
    /// `"0s"`: the statsd flush interval.
    #[serde(with = "duration_str")]
    pub default_interval: Duration,
    /// How far before a transition deploys (events tagged `deploy_tag`)
    /// are listed beside it.
    #[serde(with = "duration_str")]
    pub deploy_window: Duration,
    /// The event tag that marks a deploy.
    pub deploy_tag: String,
    /// How long transitions are kept.
    #[serde(with = "duration_str")]
    pub history_retention: Duration,
    /// The address people reach this daemon's HTTP API at, for the links
    /// in notifications (`generatorURL`, the rule's graph). Empty: built
    /// from `server.http`.
    pub external_url: String,
    /// Rules at most (files and API together).
    pub max_rules: usize,
    /// Instances (series) one rule may follow; a target matching more is
    /// an evaluation error for that rule, never a partial answer.
    pub max_instances_per_rule: usize,
    /// How often rule files, and the dashboard files (`[dashboards]`), are
    /// looked at for changes.
    #[serde(with = "duration_str")]
    pub reload_check: Duration,
    pub receivers: Vec<ReceiverConfig>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            rules: Vec::new(),
            default_interval: Duration::ZERO,
            deploy_window: Duration::from_secs(30 * 60),
            deploy_tag: "deploy".to_string(),
            history_retention: Duration::from_secs(90 * 86400),
            external_url: String::new(),
            max_rules: 10_000,
            max_instances_per_rule: 10_000,
            reload_check: Duration::from_secs(5),
            receivers: Vec::new(),
        }
    }
}

/// Which protocol a receiver speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReceiverKind {
    /// POST of Alertmanager's webhook JSON (`status`, `alerts[]`...) to `url`.
    Webhook,
    /// POST to a real Alertmanager's `/api/v2/alerts` under `url`, so its
    /// grouping, inhibition, silences and routing apply unchanged.
    Alertmanager,
}

/// `[[alerts.receivers]]`: one place notifications go. Every receiver
/// gets every rule's notifications unless the rule lists `receivers`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    pub name: String,
    pub kind: ReceiverKind,
    pub url: String,
    /// A firing alert is sent again this often while it fires. Default:
    /// 4h for a webhook, 1m for Alertmanager (which resolves an alert
    /// not re-sent within its `resolve_timeout`, 5m by default).
    #[serde(default, with = "opt_duration_str")]
    pub repeat_interval: Option<Duration>,
    /// Whether a resolved alert is sent.
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// One delivery attempt's timeout.
    #[serde(default = "default_receiver_timeout", with = "duration_str")]
    pub timeout: Duration,
    /// A failed delivery is retried with backoff (1 s doubling to 1 min)
    /// for this long, then dropped, counted and logged.
    #[serde(default = "default_retry_for", with = "duration_str")]
    pub retry_for: Duration,
    /// Notifications waiting for this receiver at most; past it the oldest
    /// is dropped and counted, so a dead receiver holds bounded memory.
    #[serde(default = "default_receiver_queue")]
    pub queue: usize,
    /// Sent as `Authorization: Bearer <token>` when set.
    #[serde(default)]
    pub bearer_token: Option<Secret>,
}

impl AlertsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.max_rules == 0 || self.max_instances_per_rule == 0 {
            return bad(
                "alerts.max_rules and alerts.max_instances_per_rule must be at least 1".into(),
            );
        }
        if self.reload_check.is_zero() {
            return bad("alerts.reload_check must be more than 0s".into());
        }
        if !self.external_url.is_empty() && !is_http_url(&self.external_url) {
            return bad(format!(
                "alerts.external_url {:?} must start with http:// or https://",
                self.external_url
            ));
        }
        let mut names = std::collections::HashSet::new();
        for r in &self.receivers {
            let at = format!("alerts.receivers {:?}", r.name);
            if r.name.is_empty() || !names.insert(r.name.as_str()) {
                return bad(format!("{at}: each receiver needs a name of its own"));
            }
            if !is_http_url(&r.url) {
                return bad(format!(
                    "{at}: url {:?} must start with http:// or https://",
                    r.url
                ));
            }
            if r.timeout.is_zero() || r.queue == 0 {
                return bad(format!(
                    "{at}: timeout must be more than 0s and queue at least 1"
                ));
            }
            if r.repeat_interval
                .is_some_and(|d| d < Duration::from_secs(1))
            {
                return bad(format!("{at}: repeat_interval must be at least 1s"));
            }
        }
        Ok(())
    }
}

fn is_http_url(u: &str) -> bool {
    let rest = u
        .strip_prefix("http://")
        .or_else(|| u.strip_prefix("https://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
}

fn yes() -> bool {
    true
}
fn default_receiver_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_retry_for() -> Duration {
    Duration::from_secs(600)
}
fn default_receiver_queue() -> usize {
    1000
}

impl Config {
    /// Reads and validates a TOML file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text).map_err(|e| match e {
            ConfigError::Invalid(message) => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates TOML text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text)
            .map_err(|e| ConfigError::Invalid(describe_toml_error(text, &e)))?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.statsd;
        if s.flush_interval < Duration::from_millis(100) {
            return Err(ConfigError::Invalid(
                "statsd.flush_interval must be at least 100ms".into(),
            ));
        }
        if s.max_keys == 0 {
            return Err(ConfigError::Invalid(
                "statsd.max_keys must be at least 1".into(),
            ));
        }
        if s.max_timer_samples == 0 {
            return Err(ConfigError::Invalid(
                "statsd.max_timer_samples must be at least 1".into(),
            ));
        }
        if self.server.render_timeout.is_zero() {
            return Err(ConfigError::Invalid(
                "server.render_timeout must be more than 0".into(),
            ));
        }
        if self.server.max_packet_size < 512 || self.server.max_packet_size > 65536 {
            return Err(ConfigError::Invalid(
                "server.max_packet_size must be between 512 and 65536".into(),
            ));
        }
        if self.server.max_admin_connections == 0 || self.server.max_http_connections == 0 {
            return Err(ConfigError::Invalid(
                "server.max_admin_connections and server.max_http_connections must be at least 1"
                    .into(),
            ));
        }
        if self.server.http_read_timeout.is_zero() {
            return Err(ConfigError::Invalid(
                "server.http_read_timeout must be more than 0s".into(),
            ));
        }
        if self.server.max_line_length < 64 {
            return Err(ConfigError::Invalid(
                "server.max_line_length must be at least 64".into(),
            ));
        }
        self.storage.validate().map_err(ConfigError::Invalid)?;
        for h in &s.histogram {
            let mut last = f64::NEG_INFINITY;
            for (i, b) in h.bins.iter().enumerate() {
                match b {
                    BinLimit::Finite(x) if *x <= last => {
                        return Err(ConfigError::Invalid(format!(
                            "statsd.histogram for {:?}: bins must increase",
                            h.metric
                        )))
                    }
                    BinLimit::Finite(x) => last = *x,
                    BinLimit::Inf if i + 1 != h.bins.len() => {
                        return Err(ConfigError::Invalid(format!(
                            "statsd.histogram for {:?}: \"inf\" must be the last bin",
                            h.metric
                        )))
                    }
                    BinLimit::Inf => {}
                }
            }
        }
        // A name chrono-tz knows, as the render API's `tz` parameter takes.
        if self.server.time_zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(ConfigError::Invalid(format!(
                "server.time_zone: unknown time zone {:?}",
                self.server.time_zone
            )));
        }
        if let Some(f) = &self.forward.graphite {
            if !f.address.contains(':') {
                return Err(ConfigError::Invalid(format!(
                    "forward.graphite.address {:?} must be \"host:port\"",
                    f.address
                )));
            }
        }
        self.alerts.validate()?;
        self.relay.validate()?;
        Ok(())
    }

    /// The effective configuration as TOML (the admin `config` command).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

/// toml's message with where it is and the key it is about, on one line.
/// toml's own `Display` quotes the offending source line, value and all;
/// for a mistyped `api_token` that is the token in a log or a terminal, so
/// the line is reduced to its key (the part before `=`) and never shown.
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end().replace('\n', "; ");
    let Some(span) = e.span() else {
        return message;
    };
    let start = span.start.min(text.len());
    let before = &text[..start];
    let line_no = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    let line = text[line_start..].lines().next().unwrap_or("");
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim())
        .filter(|k| !k.is_empty() && !k.starts_with('['));
    match key {
        Some(k) => format!("line {line_no}, column {column}, key {k}: {message}"),
        None => format!("line {line_no}, column {column}: {message}"),
    }
}

/// `"IP:PORT"` or `""` (disabled).
mod opt_addr {
    use super::*;

    pub(super) fn serialize<S: serde::Serializer>(
        v: &Option<SocketAddr>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(a) => s.serialize_str(&a.to_string()),
            None => s.serialize_str(""),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SocketAddr>, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() {
            return Ok(None);
        }
        s.parse().map(Some).map_err(|_| {
            de::Error::custom(format!(
                "{s:?} is not an address of the form \"IP:PORT\" (or \"\" to disable)"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_members_are_checked_by_name_and_weight() {
        let member = |name: &str, weight: u32| {
            format!(
                "[[relay.member]]\nname = \"{name}\"\nstatsd = \"127.0.0.1:8125\"\n\
                 admin = \"127.0.0.1:8126\"\nweight = {weight}\n"
            )
        };
        let head = "[relay]\nstatsd_udp = \"127.0.0.1:9125\"\n";
        let ok = Config::parse(&format!("{head}{}{}", member("a", 1), member("b", 3))).unwrap();
        assert_eq!(ok.relay.member[1].weight, 3);
        for (text, says) in [
            (
                format!("{head}{}{}", member("a", 1), member("a", 1)),
                "used twice",
            ),
            (
                format!("{head}{}", member("a", 0)),
                "weight must be 1 to 100",
            ),
            (format!("{head}{}", member("", 1)), "name is empty"),
            (head.to_string(), "lists no aggregator"),
            (
                format!("{head}carbon_tcp = \"127.0.0.1:2003\"\n{}", member("a", 1)),
                "relay.member[0].carbon is needed",
            ),
            (
                format!("{head}packet_size = 10\n{}", member("a", 1)),
                "packet_size",
            ),
        ] {
            let e = Config::parse(&text).unwrap_err().to_string();
            assert!(e.contains(says), "{text}: {e}");
        }
        let many: String = (0..=RELAY_MAX_MEMBERS)
            .map(|i| member(&format!("m{i}"), 1))
            .collect();
        let e = Config::parse(&format!("{head}{many}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("at most 64"), "{e}");
    }

    #[test]
    fn empty_config_is_etsy_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.statsd.flush_interval, Duration::from_secs(10));
        assert_eq!(c.statsd.percent_threshold.0, vec![90.0]);
        assert!(c.statsd.legacy_namespace);
        assert!(c.statsd.flush_counts);
        assert!(!c.statsd.delete_counters());
        assert_eq!(c.server.statsd_udp.unwrap().port(), 8125);
        assert_eq!(c.server.admin_tcp.unwrap().to_string(), "127.0.0.1:8126");
    }

    #[test]
    fn delete_idle_stats_turns_on_unset_ones_only() {
        let c =
            Config::parse("[statsd]\ndelete_idle_stats = true\ndelete_gauges = false\n").unwrap();
        assert!(c.statsd.delete_counters());
        assert!(c.statsd.delete_timers());
        assert!(c.statsd.delete_sets());
        assert!(!c.statsd.delete_gauges());
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::parse("[statsd]\nflush_intervall = \"10s\"\n").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("flush_intervall"), "{msg}");
    }

    #[test]
    fn bad_duration_says_what_is_allowed() {
        let e = Config::parse("[statsd]\nflush_interval = \"ten\"\n").unwrap_err();
        assert!(e.to_string().contains("10s"), "{e}");
    }

    #[test]
    fn bad_address_is_named() {
        let e = Config::parse("[server]\nstatsd_udp = \"localhost\"\n").unwrap_err();
        assert!(e.to_string().contains("IP:PORT"), "{e}");
    }

    #[test]
    fn percentiles_one_or_many_and_histograms() {
        let c = Config::parse(
            "[statsd]\npercent_threshold = [50, 99.9, -20]\nhistogram = [{ metric = \"api\", bins = [10, 100, \"inf\"] }]\n",
        )
        .unwrap();
        assert_eq!(c.statsd.percent_threshold.0, vec![50.0, 99.9, -20.0]);
        assert_eq!(
            c.statsd.histogram[0].bins,
            vec![
                BinLimit::Finite(10.0),
                BinLimit::Finite(100.0),
                BinLimit::Inf
            ]
        );
        let c = Config::parse("[statsd]\npercent_threshold = 95\n").unwrap();
        assert_eq!(c.statsd.percent_threshold.0, vec![95.0]);
    }

    #[test]
    fn inf_must_be_last_bin() {
        let e = Config::parse("[statsd]\nhistogram = [{ metric = \"a\", bins = [\"inf\", 10] }]\n")
            .unwrap_err();
        assert!(e.to_string().contains("last"), "{e}");
    }

    #[test]
    fn empty_address_disables_listener() {
        let c = Config::parse("[server]\nstatsd_tcp = \"\"\n").unwrap();
        assert!(c.server.statsd_tcp.is_none());
    }

    #[test]
    fn the_readme_configuration_is_valid() {
        let readme = include_str!("../../../README.md");
        let section = &readme[readme.find("## Configuration").expect("section")..];
        let start = section.find("```toml\n").expect("toml block") + 8;
        let block = &section[start..];
        let block = &block[..block.find("```").expect("end of block")];
        let c = Config::parse(block).unwrap_or_else(|e| panic!("README config: {e}"));
        assert_eq!(c.storage.retention[0].retentions, "10s:6h,1m:7d,10m:5y");
        assert_eq!(c.storage.aggregation[0].pattern, "\\.p99$");
        assert_eq!(c.server.carbon_tcp.unwrap().port(), 2003);
        let again = Config::parse(&c.to_toml()).unwrap();
        assert_eq!(again.storage.aggregation[0].method, "max");
    }

    #[test]
    fn bad_storage_rules_are_named() {
        let e = Config::parse(
            "[[storage.retention]]\npattern = \".*\"\nretentions = \"10s:6h,15s:7d\"\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("multiple"), "{e}");
        let e = Config::parse("[[storage.aggregation]]\npattern = \"x\"\nmethod = \"median\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("median"), "{e}");
    }

    /// The admin `config` command prints `to_toml`; logs and panics print
    /// `Debug`. Neither may show the token, and a printed copy fed back is
    /// refused rather than taken as the token `<redacted>`.
    #[test]
    fn secrets_are_never_printed() {
        let c = Config::parse("[server]\napi_token = \"t0p-s3cret-42\"\n").unwrap();
        assert!(c
            .server
            .api_token
            .as_ref()
            .unwrap()
            .matches("t0p-s3cret-42"));
        let printed = c.to_toml();
        assert!(!printed.contains("t0p-s3cret-42"), "{printed}");
        assert!(printed.contains("api_token = \"<redacted>\""), "{printed}");
        let debug = format!("{c:?} {c:#?}");
        assert!(!debug.contains("t0p-s3cret-42"), "{debug}");
        let e = Config::parse(&printed).unwrap_err().to_string();
        assert!(e.contains("api_token") && e.contains("real value"), "{e}");
    }

    /// toml's own error text quotes the offending line; a mistyped token
    /// must not end up in a log that way.
    #[test]
    fn config_errors_never_quote_a_secret() {
        for text in [
            "[server]\napi_token = 918273645\n",
            "[server]\napi_token = [\"hunter2hunter2\"]\n",
            "[server]\napi_token = \"hunter2hunter2\n",
            "[server]\napi_token = 'hunter2hunter2\"\n",
            "[server]\napi_token = hunter2hunter2\n",
        ] {
            let e = Config::parse(text).unwrap_err().to_string();
            assert!(
                !e.contains("918273645") && !e.contains("hunter2"),
                "{text:?} gave {e}"
            );
            assert!(e.contains("line 2"), "{text:?} gave {e}");
        }
        let e = Config::parse("[server]\napi_token = 918273645\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("api_token"), "{e}");
    }

    #[test]
    fn effective_config_round_trips() {
        let c = Config::parse("[statsd]\nglobal_suffix = \"host1\"\n").unwrap();
        let again = Config::parse(&c.to_toml()).unwrap();
        assert_eq!(again.statsd.global_suffix.as_deref(), Some("host1"));
    }

    #[test]
    fn max_memory_takes_sizes_and_integers() {
        let mem = |v: &str| {
            Config::parse(&format!("[storage]\nmax_memory = {v}\n")).map(|c| c.storage.max_memory)
        };
        assert_eq!(mem("\"1GiB\"").unwrap(), 1 << 30);
        assert_eq!(mem("\"512 MiB\"").unwrap(), 512 << 20);
        assert_eq!(mem("\"768mib\"").unwrap(), 768 << 20);
        assert_eq!(mem("\"2TiB\"").unwrap(), 2 << 40);
        assert_eq!(mem("268435456").unwrap(), 256 << 20);
        assert_eq!(mem("\"268435456\"").unwrap(), 256 << 20);
        for bad in [
            "\"1GB\"",
            "\"1.5GiB\"",
            "\"lots\"",
            "-5",
            "\"99999999999TiB\"",
        ] {
            let e = mem(bad).unwrap_err().to_string();
            assert!(e.contains("max_memory"), "{bad}: {e}");
        }
        let e = mem("\"1MiB\"").unwrap_err().to_string();
        assert!(
            e.contains("storage.max_memory must be at least 64MiB"),
            "{e}"
        );
    }

    #[test]
    fn max_memory_defaults_to_a_quarter_of_ram_and_shows_in_the_admin_config() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.storage.max_memory, default_max_memory());
        assert!(c.storage.max_memory >= 256 << 20);
        let toml = c.to_toml();
        let line = toml
            .lines()
            .find(|l| l.starts_with("max_memory"))
            .unwrap_or_else(|| panic!("{toml}"));
        // What `config` prints is a config that reads back the same.
        let again = Config::parse(&format!("[storage]\n{line}\n")).unwrap();
        assert_eq!(again.storage.max_memory, c.storage.max_memory);
        assert_eq!(rollupd_units::size_str::show(3 << 30), "3GiB");
        assert_eq!(
            rollupd_units::size_str::show((1 << 30) + (512 << 20)),
            "1536MiB"
        );
        assert_eq!(rollupd_units::size_str::show(1000), "1000B");
        assert_eq!(rollupd_units::size_str::show(0), "0B");
    }
}
