//! `kompass migrate`: local data to S3, verified before any local copy is removed.
//!
//! Exit status: 0 when every file in scope is in S3 or in conflict (conflicts are reported, in
//! the text and in `conflict_keys`, and keep both copies: they need a person, not a retry);
//! 1 when any file failed or was refused (their local copies are kept; the report still goes
//! to stdout first). A dry run exits 0 whatever it plans.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget};
use kompass_core::key::UserId;

use super::output::human_bytes;
use super::{CliError, Output, open_manager};
use crate::cli::{Cli, MigrateArgs};
use crate::manager::ManagerError;
use crate::migrate::{self, MigrateError, MigrationReport, Options};

/// How many lines of each list the text output shows (the JSON has them all).
const SHOWN: usize = 50;

/// `kompass migrate`.
pub async fn migrate(cli: &Cli, args: &MigrateArgs, out: &Output) -> Result<(), CliError> {
    let user = args.user.as_deref().map(UserId::new).transpose().map_err(ManagerError::Key)?;
    if !(1..=migrate::MAX_CONCURRENCY).contains(&args.concurrency) {
        return Err(CliError::Usage(MigrateError::Concurrency(args.concurrency).to_string()));
    }
    let m = open_manager(cli)?;
    if args.dry_run && m.s3().is_none() {
        // A dry run only plans: without S3 there is nothing to plan against, a configuration
        // problem (exit 2, as the README says). A real run keeps its exit status 1.
        return Err(CliError::Usage(ManagerError::S3Disabled.to_string()));
    }
    m.require_s3()?;
    let opts = Options {
        user,
        dry_run: args.dry_run,
        concurrency: args.concurrency,
        keep_local: args.keep_local,
    };
    // Progress only for a person watching: never into a pipe or next to JSON.
    let progress = if !out.is_json() && std::io::stderr().is_terminal() {
        let p = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        p.enable_steady_tick(Duration::from_millis(120));
        p
    } else {
        ProgressBar::hidden()
    };
    let report = migrate::migrate(&m, &opts, &progress).await.map_err(|e| match e {
        MigrateError::Manager(e) => CliError::Manager(e),
        MigrateError::Concurrency(_) => CliError::Usage(e.to_string()),
        MigrateError::Survey(_) | MigrateError::Plan(_) => CliError::Other(e.to_string()),
    })?;
    out.print(&report, || text(&report));
    if report.dry_run || report.is_complete() {
        return Ok(());
    }
    let retriable = report.summary.failed as usize - report.refused;
    let mut msg = format!(
        "{} file(s) did not migrate; their local copies are kept (see the errors above)",
        report.summary.failed
    );
    if retriable > 0 {
        msg.push_str(&format!(
            ". Re-run `kompass migrate` to retry {retriable} of them (once S3 is reachable, if it was down)"
        ));
    }
    if report.refused > 0 {
        msg.push_str(&format!(
            ". {} were refused by a storage limit: make room (`kompass cleanup`) or raise the limit first",
            report.refused
        ));
    }
    Err(CliError::Other(msg))
}

/// The report for people.
fn text(r: &MigrationReport) -> String {
    let mut s = String::new();
    let scope = r.user.as_ref().map_or("all local data".to_owned(), |u| format!("user {u}"));
    if r.dry_run {
        s.push_str(&format!(
            "dry run for {scope}: nothing was changed. A migration now would:\n  upload {} file(s) ({})\n  skip {} file(s) S3 already holds identically ({})\n  keep {} conflict(s) (S3 holds other content under the same key)\n  refuse {} file(s) over a limit\n",
            r.summary.migrated,
            human_bytes(r.summary.bytes),
            r.summary.skipped_identical,
            if r.keep_local { "local copies kept: --keep-local" } else { "their local copies would be removed" },
            r.summary.conflicts,
            r.refused,
        ));
        if let Some(items) = &r.planned {
            for i in items.iter().take(SHOWN) {
                s.push_str(&format!("  {:<15} {} ({})", i.action, i.key, human_bytes(i.size)));
                if let Some(why) = &i.reason {
                    s.push_str(&format!(": {why}"));
                }
                s.push('\n');
            }
            more(&mut s, items.len());
        }
    } else if r.summary.migrated
        + r.summary.skipped_identical
        + r.summary.conflicts
        + r.summary.failed
        == 0
    {
        s.push_str(&format!("nothing to migrate for {scope}: no local data files\n"));
    } else {
        s.push_str(&format!(
            "migrated {} file(s) ({}) of {scope} to S3, each verified (size and SHA-256); {} already there identically; {} local cop{} removed{}\n",
            r.summary.migrated,
            human_bytes(r.summary.bytes),
            r.summary.skipped_identical,
            r.local_removed,
            if r.local_removed == 1 { "y" } else { "ies" },
            if r.keep_local { " (--keep-local)" } else { "" },
        ));
        if r.pending_synced > 0 {
            s.push_str(&format!(
                "  {} save(s) made during an S3 outage are now in S3\n",
                r.pending_synced
            ));
        }
    }
    if let Some(w) = &r.will_spend {
        s.push_str(&format!(
            "requests: {} PUT-class (one per upload), at most {} GET-class (a HEAD per upload whose PUT answer does not echo its checksum), besides the survey's {} PUT-class and {} GET-class\n",
            w.put_class,
            w.get_class_at_most,
            r.requests.put + r.requests.list,
            r.requests.get + r.requests.head
        ));
    }
    if let Some(b) = &r.budget_stop {
        s.push_str(&format!(
            "the month's request budget stopped the run: {} file(s) remain local; the budget resets {}; run `kompass migrate` (or `kompass sync`) again then\n",
            b.remaining, b.resets_at
        ));
    }
    if !r.conflict_keys.is_empty() {
        s.push_str(&format!(
            "{} conflict(s): S3 holds other content under the same key, so both copies are kept and nothing was overwritten (this does not fail the run). Compare them; to keep the S3 copy remove the local file, to keep the local one delete the S3 object and re-run `kompass migrate`:\n",
            r.summary.conflicts
        ));
        for c in r.conflict_keys.iter().take(SHOWN) {
            s.push_str(&format!(
                "  {}\n    local {} {} sha256 {}  ({})\n    S3    {} {} sha256 {}\n",
                c.key,
                human_bytes(c.local.size),
                c.local.last_modified,
                short(c.local.sha256.as_deref()),
                c.path,
                human_bytes(c.remote.size),
                c.remote.last_modified,
                short(c.remote.sha256.as_deref()),
            ));
        }
        more(&mut s, r.conflict_keys.len());
    }
    if !r.failures.is_empty() {
        s.push_str(&format!("{} file(s) not migrated (local copies kept):\n", r.failures.len()));
        for e in r.failures.iter().take(SHOWN) {
            s.push_str(&format!("  {}: {}\n", e.key, e.error));
        }
        more(&mut s, r.failures.len());
    }
    if !r.not_migrated.is_empty() {
        s.push_str(&format!(
            "{} path(s) in the data directory are not data and were left alone:\n",
            r.not_migrated.len()
        ));
        for n in r.not_migrated.iter().take(SHOWN) {
            s.push_str(&format!("  {}: {}\n", n.path, n.reason));
        }
        more(&mut s, r.not_migrated.len());
    }
    s
}

fn more(s: &mut String, total: usize) {
    if total > SHOWN {
        s.push_str(&format!("  … and {} more (all of them with --json)\n", total - SHOWN));
    }
}

fn short(sha: Option<&str>) -> String {
    sha.map_or("unknown".into(), |h| h.chars().take(12).collect())
}
