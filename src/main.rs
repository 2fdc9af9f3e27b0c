//! The `rollupd` command: runs the daemon, checks a config file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use rollupd::config::Config;
use rollupd::daemon::Daemon;

/// mimalloc rather than glibc's malloc: the store's heads are many small
/// vectors that grow and are dropped at every checkpoint, from several
/// threads, and glibc's per-thread arenas kept what they freed: the ramp
/// bench at 1M live series measured RSS 2.8 GB where its live data was
/// about a third of that.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A statsd + Graphite metrics daemon.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// TOML configuration; without it, the embedded defaults are used.
    #[arg(long, short = 'c', global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon (the default).
    Run,
    /// Validate a configuration file and exit.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// Record an event (a deploy, say) through the HTTP API, as
    /// graphite-web's `POST /events/` takes it.
    Event {
        /// What happened, e.g. "web deploy 36790".
        #[arg(long)]
        what: String,
        /// Space-separated tags, e.g. "deploy web".
        #[arg(long, default_value = "")]
        tags: String,
        /// Free text (a changelog, a link).
        #[arg(long, default_value = "")]
        data: String,
        /// Unix seconds; now when absent.
        #[arg(long)]
        when: Option<i64>,
        /// The rollupd HTTP API.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        server: String,
        /// The server's api_token (or ROLLUPD_API_TOKEN).
        #[arg(long, env = "ROLLUPD_API_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Forward statsd (and carbon) lines to the aggregators of `[relay]`,
    /// each to the one that owns its metric name on a consistent-hash ring.
    Relay,
    /// Print the ClickHouse schema for the config's `[storage]` rules: the
    /// SQL (idempotent; run it on every server), or with `--xml` the rollup
    /// sections for the server's config.d.
    ClickhouseSchema {
        /// The database the tables go in.
        #[arg(long, default_value = "rollupd")]
        database: String,
        /// A cluster of the servers' `remote_servers`: tables become
        /// `<name>_local` with a `Distributed` table `<name>` over them.
        #[arg(long)]
        cluster: Option<String>,
        /// Print the rollup sections instead of the SQL.
        #[arg(long)]
        xml: bool,
    },
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ROLLUPD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // ureq's trace level is the wire, headers unredacted: `rollupd event`
    // would log its Authorization header. Its debug level redacts them.
    // (Capped only where trace is asked for: a `ureq=debug` directive would
    // otherwise switch ureq's debug lines on under the default `info`.)
    let tracing_on = filter
        .max_level_hint()
        .is_none_or(|l| l == tracing_subscriber::filter::LevelFilter::TRACE);
    let filter = if tracing_on {
        ["ureq=debug", "ureq_proto=debug"]
            .into_iter()
            .filter_map(|d| d.parse().ok())
            .fold(filter, |f, d| f.add_directive(d))
    } else {
        filter
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::CheckConfig { file }) => check_config(&file),
        Some(Command::Event {
            what,
            tags,
            data,
            when,
            server,
            token,
        }) => post_event(&server, token.as_deref(), &what, &tags, &data, when),
        Some(Command::ClickhouseSchema {
            database,
            cluster,
            xml,
        }) => clickhouse_schema(cli.config.as_deref(), database, cluster, xml),
        Some(Command::Relay) => relay(cli.config.as_deref()),
        Some(Command::Run) | None => run(cli.config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rollupd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(file: &std::path::Path) -> anyhow::Result<()> {
    let cfg = Config::load(file)?;
    match rollupd::alert::engine::check_rule_files(&cfg.alerts) {
        Ok(files) => {
            for (path, n) in files {
                println!("{}: ok, {n} rules", path.display());
            }
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            anyhow::bail!("{} problem(s) in the alert rule files", errors.len());
        }
    }
    // Dashboards: the repo's `dashboards/*.toml` (from the working
    // directory) and `[dashboards] paths`.
    let loaded = rollupd::dashboard::load::load_all(std::path::Path::new("."), &cfg.dashboards);
    for (path, d) in &loaded.dashboards {
        println!(
            "{}: ok, dashboard {:?}, {} panels",
            path.display(),
            d.name,
            d.panels().count()
        );
    }
    if !loaded.errors.is_empty() {
        for e in &loaded.errors {
            eprintln!("{e}");
        }
        anyhow::bail!("{} problem(s) in the dashboard files", loaded.errors.len());
    }
    println!("{}: ok", file.display());
    Ok(())
}

fn relay(config: Option<&std::path::Path>) -> anyhow::Result<()> {
    let path = config.context("rollupd relay needs --config FILE with a [relay] table")?;
    let cfg = Config::load(path)?;
    let mut signals = Signals::new([SIGINT, SIGTERM]).context("signal handlers")?;
    let relay = rollupd::relay::Relay::start(&cfg.relay, cfg.server.udp_recv_buffer)?;
    println!("relay listening on {}", relay.local_addr);
    if let Some(c) = relay.statsd_tcp_addr {
        println!("relay statsd tcp on {c}");
    }
    if let Some(c) = relay.carbon_addr {
        println!("relay carbon on {c}");
    }
    if let Some(sig) = signals.forever().next() {
        tracing::info!(signal = sig, "relay: stopping");
    }
    drop(relay);
    Ok(())
}

fn clickhouse_schema(
    config: Option<&std::path::Path>,
    database: String,
    cluster: Option<String>,
    xml: bool,
) -> anyhow::Result<()> {
    use rollupd::clickhouse::schema;
    let cfg = match config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let rollups = schema::rollups_of(&cfg.storage)?;
    if xml {
        print!("{}", schema::rollup_xml(&rollups));
    } else {
        for statement in schema::ddl(&schema::Target { database, cluster }, &rollups)? {
            println!("{statement};");
        }
    }
    Ok(())
}

fn post_event(
    server: &str,
    token: Option<&str>,
    what: &str,
    tags: &str,
    data: &str,
    when: Option<i64>,
) -> anyhow::Result<()> {
    let mut body = serde_json::json!({ "what": what, "tags": tags, "data": data });
    if let Some(w) = when {
        body["when"] = w.into();
    }
    let url = format!("{}/events/", server.trim_end_matches('/'));
    let mut req = ureq::post(&url).header("Content-Type", "application/json");
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let resp = req
        .config()
        .http_status_as_error(false)
        .build()
        .send(body.to_string().as_bytes())
        .with_context(|| format!("cannot reach {url}"))?;
    let status = resp.status();
    let text = resp.into_body().read_to_string().unwrap_or_default();
    if !status.is_success() {
        anyhow::bail!("{url} answered {status}: {}", text.trim());
    }
    println!("{}", text.trim());
    Ok(())
}

fn run(config: Option<PathBuf>) -> anyhow::Result<()> {
    let cfg = match &config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    // Signals are registered before any listener opens, so a SIGTERM that
    // arrives during start-up is not lost.
    let mut signals =
        Signals::new([SIGTERM, SIGINT, SIGHUP]).context("cannot install signal handlers")?;
    raise_fd_limit();
    let daemon = Daemon::start(cfg)?;
    for sig in signals.forever() {
        tracing::info!(signal = sig, "signal received");
        if sig == SIGHUP {
            // Alert rule files and dashboards are read again; a bad rule
            // file keeps its old rules running (the log names the file,
            // rule and field).
            let errors = daemon.reload();
            tracing::info!(
                bad_files = errors.len(),
                "alert rules and dashboards reloaded"
            );
            continue;
        }
        break;
    }
    daemon.stop();
    Ok(())
}

/// The connection caps (`max_tcp_connections` for statsd and for carbon,
/// the admin cap, HTTP) plus RocksDB's files add up to more than the usual
/// soft limit of 1024 descriptors: a flood of connections would make
/// RocksDB's next file open fail before any cap refused a connection.
/// Raise the soft limit to the hard one, as Go's runtime does at start.
#[allow(unsafe_code)] // setrlimit(2), through libc
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write `lim`.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 || lim.rlim_cur >= lim.rlim_max {
            return;
        }
        let soft = lim.rlim_cur;
        lim.rlim_cur = lim.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
            tracing::warn!(soft, "cannot raise the open-file limit");
        }
    }
}
