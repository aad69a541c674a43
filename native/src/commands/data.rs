//! save, load, list, delete: one stored file at a time.

use kompass_core::key::{DataType, ObjectKey, UserId};

use super::output::human_bytes;
use super::{CliError, Output, open_manager, read_input};
use crate::cli::{Cli, ListArgs, SaveArgs, Target};
use crate::manager::ManagerError;

/// Validates a target's user, type and name into a key.
pub fn object_key(t: &Target) -> Result<ObjectKey, CliError> {
    ObjectKey::parse_parts(t.user.as_deref(), &t.data_type, &t.name)
        .map_err(|e| CliError::Manager(ManagerError::Key(e)))
}

/// `kompass save`.
pub async fn save(cli: &Cli, args: &SaveArgs, out: &Output) -> Result<(), CliError> {
    // Validate before reading anything or touching storage.
    let key = object_key(&args.target)?;
    let bytes = read_input(args.file.as_deref())?;
    let m = open_manager(cli)?;
    let saved = m.save(&key, &bytes).await?;
    out.print(&saved, || {
        let mut s = format!("saved {} ({}) to {}", saved.key, human_bytes(saved.bytes), saved.backend);
        for d in &saved.cleaned {
            s.push_str(&format!("\n  cleaned up {} ({})", d.key, human_bytes(d.size)));
        }
        if let Some(why) = &saved.pending_sync {
            s.push_str(&format!(
                "\n  S3 was unreachable, so it is stored locally and queued; `kompass migrate` uploads it ({why})"
            ));
        }
        s
    });
    Ok(())
}

/// `kompass load`: the content, unchanged, on stdout.
pub async fn load(cli: &Cli, t: &Target) -> Result<(), CliError> {
    let key = object_key(t)?;
    let m = open_manager(cli)?;
    let (bytes, _) = m.load(&key).await.map_err(super::degraded)?;
    super::write_all_stdout(&bytes)
}

/// `kompass list`.
pub async fn list(cli: &Cli, args: &ListArgs, out: &Output) -> Result<(), CliError> {
    let owner = args.user.as_deref().map(UserId::new).transpose().map_err(ManagerError::Key)?;
    let dt: DataType = args.data_type.parse().map_err(ManagerError::Key)?;
    // The scope rule (fitness belongs to a user; models and training_data to nobody) is the
    // core's: checked here so a wrong pair is bad input (exit 2), not a storage failure.
    dt.check_scope(owner.as_ref()).map_err(ManagerError::Key)?;
    let m = open_manager(cli)?;
    let (items, degraded) = m.list_checked(owner.as_ref(), dt).await?;
    if let Some(reason) = degraded {
        // Not the list shape on purpose: a script must not read "local copies only" as the
        // whole listing. Exit 5 says the same to scripts that only look at the status.
        let shown = serde_json::json!({ "degraded": true, "reason": reason, "files": items });
        out.print(&shown, || file_lines(&items));
        return Err(CliError::Degraded(format!(
            "S3 is configured but unreachable, so only local copies are listed ({reason})"
        )));
    }
    out.print(&items, || {
        if items.is_empty() {
            return "no files".into();
        }
        file_lines(&items)
    });
    Ok(())
}

/// One line per listed file, for people: name, size, last modified, backend.
fn file_lines(items: &[crate::manager::Listed]) -> String {
    items
        .iter()
        .map(|i| {
            format!(
                "{:<40} {:>10}  {}  {}",
                i.name,
                human_bytes(i.size),
                i.last_modified,
                i.backend
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `kompass delete`.
pub async fn delete(cli: &Cli, t: &Target, out: &Output) -> Result<(), CliError> {
    let key = object_key(t)?;
    let m = open_manager(cli)?;
    let from = m.delete(&key).await?;
    out.print(&serde_json::json!({ "key": key.s3_key(), "deleted_from": from }), || {
        let places: Vec<String> = from.iter().map(ToString::to_string).collect();
        format!("deleted {} from {}", key.s3_key(), places.join(" and "))
    });
    Ok(())
}

/// `kompass sync`: uploads the queued saves, within the request budget.
pub async fn sync(cli: &Cli, out: &Output) -> Result<(), CliError> {
    let m = open_manager(cli)?;
    m.require_s3()?;
    let report = m.sync(None).await?;
    out.print(&report, || {
        let mut s = format!("uploaded {} queued save(s) to S3", report.uploaded.len());
        for left in &report.remaining {
            s.push_str(&format!("\nstill queued: {}: {}", left.key, left.reason));
        }
        s
    });
    Ok(())
}
