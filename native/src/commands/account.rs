//! `kompass erase` and `kompass export`: a whole user at once (GDPR erasure and access).

use std::path::Path;

use kompass_core::key::UserId;

use super::output::human_bytes;
use super::{CliError, Output, open_manager};
use crate::cli::Cli;
use crate::cli::{EraseArgs, ExportArgs};
use crate::manager::ManagerError;
use crate::manager::account::ExportError;

fn user_id(user: &str) -> Result<UserId, CliError> {
    UserId::new(user).map_err(|e| CliError::Manager(ManagerError::Key(e)))
}

/// `kompass erase --user U [--dry-run]`: prints what was removed; exits 5 (S3 unreachable)
/// when something is left, after printing what.
pub async fn erase(cli: &Cli, args: &EraseArgs, out: &Output) -> Result<(), CliError> {
    let user = user_id(&args.user)?;
    let m = open_manager(cli)?;
    let report = m.erase_user(&user, args.dry_run).await?;
    out.print(&report, || {
        let verb = if report.dry_run { "would remove" } else { "removed" };
        let mut s = String::new();
        for r in &report.removed {
            s.push_str(&format!("{verb} {} ({}) from {}\n", r.key, human_bytes(r.size), r.backend));
        }
        s.push_str(&format!(
            "{verb} {} file{} ({}) of user {}, {} pending-sync entr{}, {} cached row{}; {} S3 request{}",
            report.removed.len(),
            if report.removed.len() == 1 { "" } else { "s" },
            human_bytes(report.bytes),
            report.user,
            report.journal_entries,
            if report.journal_entries == 1 { "y" } else { "ies" },
            report.cache_rows,
            if report.cache_rows == 1 { "" } else { "s" },
            report.requests,
            if report.requests == 1 { "" } else { "s" },
        ));
        for r in &report.remaining {
            s.push_str(&format!("\nleft in {}: {} ({})", r.backend, r.key, human_bytes(r.size)));
        }
        s
    });
    match &report.reason {
        Some(why) if report.degraded => {
            Err(CliError::Degraded(format!("the erase is not finished: {why}")))
        }
        _ => Ok(()),
    }
}

/// `kompass export --user U --out FILE.zip`: written beside FILE first, then renamed, so a
/// failed export never leaves a partial zip under the name asked for.
pub async fn export(cli: &Cli, args: &ExportArgs, out: &Output) -> Result<(), CliError> {
    let user = user_id(&args.user)?;
    let m = open_manager(cli)?;
    let dest: &Path = &args.out;
    let mut partial = dest.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    let file = std::fs::File::create(&partial)
        .map_err(|e| CliError::Other(format!("could not create {}: {e}", partial.display())))?;
    let manifest = match m.export_user(&user, std::io::BufWriter::new(file)).await {
        Ok(manifest) => manifest,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(match e {
                ExportError::Manager(ManagerError::S3(s)) if s.is_outage() => {
                    CliError::Degraded(format!(
                        "no export written: S3 is configured but unreachable, and an export without S3's files would be incomplete ({s})"
                    ))
                }
                ExportError::Manager(m) => CliError::Manager(m),
                other => CliError::Other(other.to_string()),
            });
        }
    };
    std::fs::rename(&partial, dest).map_err(|e| {
        CliError::Other(format!("could not move the export to {}: {e}", dest.display()))
    })?;
    let shown = serde_json::json!({
        "out": dest.display().to_string(),
        "user": manifest.user,
        "exported_at": manifest.exported_at,
        "files": manifest.files,
        "bytes": manifest.bytes,
    });
    out.print(&shown, || {
        format!(
            "exported {} file{} ({}) of user {} to {}",
            manifest.files.len(),
            if manifest.files.len() == 1 { "" } else { "s" },
            human_bytes(manifest.bytes),
            manifest.user,
            dest.display()
        )
    });
    Ok(())
}
