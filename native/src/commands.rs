//! The CLI edge: each command gathers its inputs, calls the manager or the core, and prints
//! text for people or JSON for programs. Errors become messages that say what to do.

mod account;
mod audit;
mod cleanup;
mod data;
mod migrate;
mod monitor;
mod output;
mod presign;
mod rider;
mod scrub;
mod serve;
mod status;
mod token;

use std::io::Read;
use std::path::Path;

use thiserror::Error;

use crate::cli::{Cli, Command};
use crate::env::EnvError;
use crate::manager::{Manager, ManagerError};
use crate::rider::RiderError;
use kompass_core::quota::AlertLevel;
pub use output::Output;

/// Why a command failed; `Display` is what the person at the terminal reads.
#[derive(Debug, Error)]
pub enum CliError {
    /// The configuration could not be read or is invalid.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// A storage operation failed.
    #[error(transparent)]
    Manager(#[from] ManagerError),
    /// An input file could not be read.
    #[error("could not read {path}: {source}")]
    Input {
        /// The file (or `-` for standard input).
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// Rider data could not be scrubbed or saved (storage errors are [`CliError::Manager`]).
    #[error(transparent)]
    Rider(RiderError),
    /// A Strava bulk export could not be imported.
    #[error(transparent)]
    Import(#[from] kompass_core::import::ImportError),
    /// The arguments do not make sense together.
    #[error("{0}")]
    Usage(String),
    /// S3 is configured but could not be reached: the result is incomplete (exit 5).
    #[error("{0}")]
    Degraded(String),
    /// `monitor`: the level as a monitoring plugin's exit status (1, 2 or 3).
    #[error("{1}")]
    Level(i32, String),
    /// Anything else, already phrased for people.
    #[error("{0}")]
    Other(String),
}

impl CliError {
    /// The process exit status: 2 bad input, 3 refused by a limit, 4 not found, 5 S3
    /// configured but unreachable (a degraded, incomplete result), 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) | CliError::Manager(ManagerError::Key(_)) => 2,
            // An input file that cannot be read (missing, a directory, not permitted) is bad input.
            CliError::Input { .. } => 2,
            CliError::Import(_) => 2,
            CliError::Env(_) => 2,
            // Rider data refused by the scrub policy, or no key to check it with: bad input.
            CliError::Manager(
                ManagerError::NotScrubbed(_)
                | ManagerError::MissingPseudonymKey(_)
                | ManagerError::BadPseudonymKey(_),
            ) => 2,
            CliError::Manager(ManagerError::Refused(_)) => 3,
            CliError::Manager(ManagerError::NotFound { .. }) => 4,
            CliError::Rider(
                RiderError::MissingKey(_)
                | RiderError::BadKey(_)
                | RiderError::Scrub(_)
                | RiderError::NotStored(_),
            ) => 2,
            CliError::Rider(RiderError::NoData { .. }) => 4,
            CliError::Degraded(_) => 5,
            CliError::Level(code, _) => *code,
            _ => 1,
        }
    }
}

/// A read that failed because S3 is configured but unreachable is a degraded result (exit 5),
/// not a generic failure.
pub fn degraded(e: ManagerError) -> CliError {
    match e {
        ManagerError::S3(s) if s.is_outage() => {
            CliError::Degraded(format!("S3 is configured but unreachable: {s}"))
        }
        other => CliError::Manager(other),
    }
}

/// Writes bytes to standard output; a reader that went away (`| head`) is not an error.
pub fn write_all_stdout(bytes: &[u8]) -> Result<(), CliError> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::Other(format!("could not write to standard output: {e}")))
        }
        _ => Ok(()),
    }
}

/// Reads a file argument, or standard input for `-` or none.
pub fn read_input(file: Option<&Path>) -> Result<Vec<u8>, CliError> {
    match file {
        Some(p) if p != Path::new("-") => std::fs::read(p)
            .map_err(|source| CliError::Input { path: p.display().to_string(), source }),
        _ => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|source| CliError::Input { path: "-".into(), source })?;
            Ok(buf)
        }
    }
}

/// Opens the manager for the configured data directory and backends.
pub fn open_manager(cli: &Cli) -> Result<Manager, CliError> {
    let config = crate::env::load(cli.data_dir.as_deref())?;
    Ok(Manager::open(config)?)
}

/// Runs one command that needs no async runtime, or `None` when `cli` names one that does
/// ([`run`]). `kompass scrub FILE` reads, scrubs and writes: starting a runtime (threads, the
/// cgroup's CPU quota read) cost it more than scrubbing a small export.
pub fn run_sync(cli: &Cli) -> Option<Result<(), CliError>> {
    match &cli.command {
        Command::Scrub(args) if !args.audit => {
            Some(scrub::scrub(cli, args, &Output::new(cli.json)))
        }
        _ => None,
    }
}

/// Runs one command.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let out = Output::new(cli.json);
    match &cli.command {
        Command::Status => status::status(&cli, &out).await,
        // Always by level, like a monitoring plugin (`--check` is an accepted alias): the
        // report is printed first, then the level is the exit status.
        Command::Monitor(_) => match monitor::monitor(&cli, &out).await {
            Ok(level) => match level {
                AlertLevel::Normal | AlertLevel::Cleanup => Ok(()),
                AlertLevel::Warning => {
                    Err(CliError::Level(1, "monitor: WARNING (80 % of a limit)".into()))
                }
                AlertLevel::Critical => {
                    Err(CliError::Level(2, "monitor: CRITICAL (90 % of a limit)".into()))
                }
            },
            // Usage that could not be read (bad configuration, S3 unreachable) is UNKNOWN,
            // never 2, which here means critical.
            Err(e) => Err(CliError::Level(3, format!("monitor: UNKNOWN: {e}"))),
        },
        Command::Cleanup(args) => cleanup::cleanup(&cli, args, &out).await,
        Command::Config(args) => status::config(&cli, args, &out).await,
        Command::Save(args) => data::save(&cli, args, &out).await,
        Command::Load(target) => data::load(&cli, target).await,
        Command::List(args) => data::list(&cli, args, &out).await,
        Command::Delete(target) => data::delete(&cli, target, &out).await,
        Command::Sync => data::sync(&cli, &out).await,
        Command::Token(args) => token::token(&cli, args, &out),
        Command::Presign(args) => presign::presign(&cli, args, &out).await,
        Command::Scrub(args) if args.audit => audit::audit(&cli, args, &out).await,
        Command::Scrub(args) => scrub::scrub(&cli, args, &out),
        Command::Rider(args) => rider::rider(&cli, args, &out).await,
        Command::Migrate(args) => migrate::migrate(&cli, args, &out).await,
        Command::Serve(args) => serve::serve(&cli, args, &out).await,
        Command::Erase(args) => account::erase(&cli, args, &out).await,
        Command::Export(args) => account::export(&cli, args, &out).await,
    }
}
