//! The `rollupd` command: runs the daemon, checks a config file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use rollupd::config::Config;
use rollupd::daemon::Daemon;

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
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ROLLUPD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::CheckConfig { file }) => check_config(&file),
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
    Config::load(file)?;
    println!("{}: ok", file.display());
    Ok(())
}

fn run(config: Option<PathBuf>) -> anyhow::Result<()> {
    let cfg = match &config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    // Signals are registered before any listener opens, so a SIGTERM that
    // arrives during start-up is not lost.
    let mut signals = Signals::new([SIGTERM, SIGINT]).context("cannot install signal handlers")?;
    let daemon = Daemon::start(cfg)?;
    if let Some(sig) = signals.forever().next() {
        tracing::info!(signal = sig, "signal received");
    }
    daemon.stop();
    Ok(())
}
