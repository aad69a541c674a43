//! The `kompass` command line: its commands and flags (a contract: acceptance tests drive it).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// KOMpass storage: per-user data on local disk or S3, PII removed, FIFO cleanup, migration.
#[derive(Debug, Parser)]
#[command(name = "kompass", version, about, long_about = None)]
pub struct Cli {
    /// Machine-readable JSON on stdout (errors still go to stderr).
    #[arg(long, global = true)]
    pub json: bool,
    /// The local data directory (overrides DATA_DIRECTORY).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Storage info: backends, preferred backend, bucket, usage.
    Status,
    /// The validated configuration, secrets redacted, each problem listed.
    Config(ConfigArgs),
    /// Usage per user / data type / bucket, alert level, request budget.
    Monitor(MonitorArgs),
    /// Store a file (from FILE or standard input).
    Save(SaveArgs),
    /// Print a stored file's content.
    Load(Target),
    /// List stored files, newest first.
    List(ListArgs),
    /// Delete a stored file.
    Delete(Target),
    /// Remove PII from rider data; scrubbed JSON to stdout.
    Scrub(ScrubArgs),
    /// Rider data: scrubbed, then stored under the user's fitness data.
    Rider(RiderArgs),
    /// Move local data to S3, verified before any local copy is removed.
    Migrate(MigrateArgs),
    /// Upload saves queued during an outage (or while the request budget was spent).
    Sync,
    /// Plan (and without --dry-run, carry out) a FIFO cleanup.
    Cleanup(CleanupArgs),
    /// A presigned PUT URL bound to one exact upload.
    Presign(PresignArgs),
    /// Mint an API token for `serve` and the edge presigner.
    Token(TokenArgs),
    /// Serve the page and its API.
    Serve(ServeArgs),
    /// Remove every trace of a user: S3 objects, local files, journal entries, cached state.
    Erase(EraseArgs),
    /// Write a zip of every file of a user, with a manifest (key, size, sha256, backend).
    Export(ExportArgs),
}

/// `kompass erase`.
#[derive(Debug, Args)]
pub struct EraseArgs {
    /// The user to erase.
    #[arg(long)]
    pub user: String,
    /// Show what would be removed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `kompass export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The user to export.
    #[arg(long)]
    pub user: String,
    /// The zip file to write.
    #[arg(long, value_name = "FILE.zip")]
    pub out: PathBuf,
}

/// `kompass monitor`.
#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// Accepted for compatibility: `monitor` always exits by level, like a monitoring
    /// plugin: 0 normal or cleanup, 1 warning, 2 critical, 3 unknown (usage could not be
    /// read: S3 unreachable, bad configuration).
    #[arg(long)]
    pub check: bool,
}

/// `kompass config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Print the minimal IAM policy the bucket needs.
    #[arg(long)]
    pub iam_policy: bool,
    /// Do not contact S3 (skip the live access check).
    #[arg(long)]
    pub offline: bool,
    /// Print the bucket CORS configuration the page's direct uploads need (S3 API JSON, for
    /// `aws s3api put-bucket-cors --cors-configuration file://cors.json`).
    #[arg(long, value_name = "ORIGIN")]
    pub bucket_cors: Option<String>,
    /// Print the bucket lifecycle rule kompass expects (aborts stale multipart uploads), for
    /// `aws s3api put-bucket-lifecycle-configuration --lifecycle-configuration file://l.json`.
    #[arg(long)]
    pub bucket_lifecycle: bool,
}

/// Which stored file: owner, data type, name.
#[derive(Debug, Args, Clone)]
pub struct Target {
    /// The owner; omit for global data (models, training_data, anonymous routes).
    #[arg(long)]
    pub user: Option<String>,
    /// routes, fitness, models or training_data.
    #[arg(long = "type", value_name = "TYPE")]
    pub data_type: String,
    /// The file name.
    #[arg(long)]
    pub name: String,
}

/// `kompass save`.
#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Where to store it.
    #[command(flatten)]
    pub target: Target,
    /// The file to store; `-` or nothing reads standard input.
    pub file: Option<PathBuf>,
}

/// `kompass list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The owner; omit for global data.
    #[arg(long)]
    pub user: Option<String>,
    /// routes, fitness, models or training_data.
    #[arg(long = "type", value_name = "TYPE")]
    pub data_type: String,
}

/// `kompass scrub`.
#[derive(Debug, Args)]
pub struct ScrubArgs {
    /// The rider data file; `-` or nothing reads standard input.
    pub file: Option<PathBuf>,
    /// Also list every removed path (on stderr, or in the JSON with --json).
    #[arg(long)]
    pub report: bool,
    /// Instead of a file: list the stored fitness objects the current scrub policy would
    /// still change (local disk and S3), e.g. after a policy change or a bug fix.
    #[arg(long)]
    pub audit: bool,
    /// With --audit: only this user's fitness data.
    #[arg(long, requires = "audit")]
    pub user: Option<String>,
    /// With --audit: re-scrub each listed object in place (within the request budget).
    #[arg(long, requires = "audit")]
    pub fix: bool,
    /// With --audit --fix: show what would be re-scrubbed, change nothing.
    #[arg(long, requires = "fix")]
    pub dry_run: bool,
}

/// `kompass rider`.
#[derive(Debug, Args)]
pub struct RiderArgs {
    /// What to do with rider data.
    #[command(subcommand)]
    pub command: RiderCommand,
}

/// `kompass rider ...`.
#[derive(Debug, Subcommand)]
pub enum RiderCommand {
    /// Scrub, then store as fitness/fitness_data_{UTC timestamp}.json.
    Save {
        /// The rider.
        #[arg(long)]
        user: String,
        /// The rider data (a Strava export as JSON); `-` reads standard input.
        file: PathBuf,
    },
    /// Print stored rider data (the newest without --name).
    Load {
        /// The rider.
        #[arg(long)]
        user: String,
        /// A file from `rider history`.
        #[arg(long)]
        name: Option<String>,
    },
    /// The rider's saved data, newest first, with a summary of each.
    History {
        /// The rider.
        #[arg(long)]
        user: String,
    },
    /// Import Strava's bulk export ZIP ("Download your data"): read, scrubbed, then stored as
    /// `rider save` stores.
    Import {
        /// The rider (may be left out with --dry-run).
        #[arg(long, required_unless_present = "dry_run")]
        user: Option<String>,
        /// The export ZIP (export_*.zip); `-` reads standard input.
        file: PathBuf,
        /// Print the document that would be stored on stdout; store nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `kompass migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Only this user's data.
    #[arg(long)]
    pub user: Option<String>,
    /// Show the plan; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Transfers at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Keep local copies even after they are verified in S3.
    #[arg(long)]
    pub keep_local: bool,
}

/// `kompass cleanup`.
#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Only this user's data (otherwise the whole bucket).
    #[arg(long)]
    pub user: Option<String>,
    /// Show the plan; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `kompass presign`.
#[derive(Debug, Args)]
pub struct PresignArgs {
    /// Where the upload goes.
    #[command(flatten)]
    pub target: Target,
    /// The exact size of the upload in bytes.
    #[arg(long)]
    pub size: u64,
    /// The SHA-256 of the upload, hex.
    #[arg(long)]
    pub sha256: String,
    /// Seconds the URL stays valid (1 to 604800).
    #[arg(long, default_value_t = 900)]
    pub expires: u64,
}

/// `kompass token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The user the token acts for.
    #[arg(long)]
    pub user: String,
    /// Seconds the token stays valid.
    #[arg(long, default_value_t = 86_400)]
    pub expires: u64,
}

/// `kompass serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub addr: SocketAddr,
    /// The user of the development sign-in link printed at start-up.
    #[arg(long, default_value = "dev-rider")]
    pub dev_user: String,
}
