//! `kompass rider save|load|history`: rider data, scrubbed before it is stored.

use std::io::Write;
use std::path::Path;

use kompass_core::import::{self, ImportReport};
use kompass_core::key::UserId;
use serde::Serialize;

use super::output::human_bytes;
use super::{CliError, Output, read_input};
use crate::cli::{Cli, RiderArgs, RiderCommand};
use crate::manager::{Manager, ManagerError, now_ms};
use crate::rider::{RiderError, Riders};

impl From<RiderError> for CliError {
    fn from(e: RiderError) -> Self {
        match e {
            // Storage errors keep their own exit codes.
            // An outage keeps the degraded status (exit 5), as for `load` and `list`.
            RiderError::Manager(m) => super::degraded(m),
            RiderError::Unreachable(why) => {
                CliError::Degraded(format!("S3 is configured but unreachable: {why}"))
            }
            // An unreadable archive is bad input (exit 2), as before the import moved here.
            RiderError::Import(e) => CliError::Import(e),
            other => CliError::Rider(other),
        }
    }
}

/// `kompass rider ...`.
pub async fn rider(cli: &Cli, args: &RiderArgs, out: &Output) -> Result<(), CliError> {
    match &args.command {
        RiderCommand::Save { user, file } => save(cli, user, file, out).await,
        RiderCommand::Load { user, name } => load(cli, user, name.as_deref()).await,
        RiderCommand::History { user } => history(cli, user, out).await,
        RiderCommand::Import { user, file, dry_run } => {
            import(cli, user.as_deref(), file, *dry_run, out).await
        }
    }
}

fn user_id(user: &str) -> Result<UserId, CliError> {
    UserId::new(user).map_err(|e| CliError::Manager(ManagerError::Key(e)))
}

/// `kompass rider save`: the key is checked before the input is read or storage is touched.
async fn save(cli: &Cli, user: &str, file: &Path, out: &Output) -> Result<(), CliError> {
    let user = user_id(user)?;
    let config = crate::env::load(cli.data_dir.as_deref())?;
    let key = crate::rider::pseudonym_key(&config)?;
    let input = read_input(Some(file))?;
    let m = Manager::open(config)?;
    let saved = Riders::new(&m)?.save(&user, &input, &key, now_ms()).await?;
    out.print(&saved, || {
        let s = &saved.summary;
        let mut t = format!(
            "saved {} ({}) to {}: {} activit{}, {}power data, {:.0}% complete; {} field{} of PII removed",
            saved.outcome.key,
            human_bytes(saved.outcome.bytes),
            saved.outcome.backend,
            s.activity_count,
            if s.activity_count == 1 { "y" } else { "ies" },
            if s.has_power_data { "" } else { "no " },
            s.completeness * 100.0,
            saved.removed_count,
            if saved.removed_count == 1 { "" } else { "s" },
        );
        for d in &saved.outcome.cleaned {
            t.push_str(&format!("\n  cleaned up {} ({})", d.key, human_bytes(d.size)));
        }
        if let Some(why) = &saved.outcome.pending_sync {
            t.push_str(&format!(
                "\n  S3 was unreachable, so it is stored locally and queued; `kompass migrate` uploads it ({why})"
            ));
        }
        t
    });
    Ok(())
}

/// `kompass rider load`: the stored document, unchanged, on stdout (as `kompass load`).
async fn load(cli: &Cli, user: &str, name: Option<&str>) -> Result<(), CliError> {
    let user = user_id(user)?;
    let m = super::open_manager(cli)?;
    let (loaded, degraded) = Riders::new(&m)?.load_checked(&user, name).await?;
    super::write_all_stdout(&loaded.bytes)?;
    match degraded {
        // The document is printed (it is the only copy at hand); the status says it may not
        // be the newest, so a script never takes it for the whole answer.
        Some(why) => Err(CliError::Degraded(format!(
            "S3 is configured but unreachable, so {} is the local copy and may not be the newest ({why})",
            loaded.name
        ))),
        None => Ok(()),
    }
}

/// `kompass rider history`: every save, newest first, with what it holds.
async fn history(cli: &Cli, user: &str, out: &Output) -> Result<(), CliError> {
    let user = user_id(user)?;
    let m = super::open_manager(cli)?;
    let (entries, degraded) = Riders::new(&m)?.history_checked(&user).await?;
    let text = || {
        if entries.is_empty() {
            return format!("no rider data for {user}");
        }
        entries
            .iter()
            .map(|e| {
                let s = &e.summary;
                let what = match &e.problem {
                    Some(p) => p.clone(),
                    None => format!(
                        "{:>4} activities  {:<8}  {:>3.0}% complete",
                        s.activity_count,
                        if s.has_power_data { "power" } else { "no power" },
                        s.completeness * 100.0
                    ),
                };
                format!(
                    "{:<40} {}  {}  {:>10}  {}",
                    e.save.listed.name,
                    e.save.saved_at,
                    what,
                    human_bytes(e.save.listed.size),
                    e.save.listed.backend
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    match degraded {
        Some(reason) => {
            // Not the history shape on purpose (as `list`): the local saves only.
            let shown =
                serde_json::json!({ "degraded": true, "reason": reason, "entries": entries });
            out.print(&shown, text);
            Err(CliError::Degraded(format!(
                "S3 is configured but unreachable, so only local saves are listed ({reason})"
            )))
        }
        None => {
            out.print(&entries, text);
            Ok(())
        }
    }
}

/// What `kompass rider import --json` prints.
#[derive(Serialize)]
struct ImportOutput<'a> {
    /// The save, as `rider save --json` prints it; absent with --dry-run.
    #[serde(skip_serializing_if = "Option::is_none")]
    saved: Option<&'a crate::rider::RiderSaved>,
    /// The document that would be stored (--dry-run only), embedded as it is: parsing it
    /// into a tree would take many times its size.
    #[serde(skip_serializing_if = "Option::is_none")]
    document: Option<&'a serde_json::value::RawValue>,
    /// What the import kept, removed and skipped.
    import: &'a ImportReport,
}

/// `kompass rider import`: Strava's bulk export ZIP, read and scrubbed here, then stored as
/// `rider save` stores it (keyed scrub, timestamped name). With --dry-run the document goes to
/// stdout and nothing is stored; the report goes to stderr (or into the JSON with --json).
async fn import(
    cli: &Cli,
    user: Option<&str>,
    file: &Path,
    dry_run: bool,
    out: &Output,
) -> Result<(), CliError> {
    let user = user.map(user_id).transpose()?;
    // The key is checked before the archive is read, as for `rider save`.
    let target = match (&user, dry_run) {
        (Some(user), false) => {
            let config = crate::env::load(cli.data_dir.as_deref())?;
            let key = crate::rider::pseudonym_key(&config)?;
            Some((user.clone(), config, key))
        }
        (None, false) => {
            return Err(CliError::Usage("rider import needs --user (or --dry-run)".into()));
        }
        (_, true) => None,
    };
    // A file is read entry by entry, never whole; stdin (`-`) cannot seek, so it is buffered.
    let imported = if file == Path::new("-") {
        crate::rider::import_export(&read_input(Some(file))?)?
    } else {
        let input = |source| CliError::Input { path: file.display().to_string(), source };
        let f = std::fs::File::open(file).map_err(input)?;
        let len = f.metadata().map_err(input)?.len();
        crate::rider::import_export_from(std::io::BufReader::new(f), len)?
    };
    let report = &imported.report;
    let Some((user, config, key)) = target else {
        if out.is_json() {
            let document = serde_json::from_str::<&serde_json::value::RawValue>(&imported.document)
                .map_err(|e| CliError::Other(format!("the imported document is not JSON: {e}")))?;
            out.print(
                &ImportOutput { saved: None, document: Some(document), import: report },
                String::new,
            );
        } else {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(imported.document.as_bytes())
                .and_then(|()| stdout.write_all(b"\n"))
                .and_then(|()| stdout.flush())
                .map_err(|e| CliError::Other(format!("could not write to standard output: {e}")))?;
            eprintln!("{}", import_text(report));
        }
        return Ok(());
    };
    let m = Manager::open(config)?;
    let (saved, report) = Riders::new(&m)?.save_import(&user, imported, &key, now_ms()).await?;
    let report = &report;
    out.print(&ImportOutput { saved: Some(&saved), document: None, import: report }, || {
        format!(
            "saved {} ({}) to {}: {} activit{}, {} with streams\n{}",
            saved.outcome.key,
            human_bytes(saved.outcome.bytes),
            saved.outcome.backend,
            report.activities,
            if report.activities == 1 { "y" } else { "ies" },
            report.activities_with_streams,
            import_text(report)
        )
    });
    Ok(())
}

/// The import report in plain words: what kind of thing was removed and how much.
fn import_text(r: &ImportReport) -> String {
    let mut t = format!(
        "imported {} activit{} ({} samples) from a {} archive",
        r.activities,
        if r.activities == 1 { "y" } else { "ies" },
        import::thousands(r.samples),
        human_bytes(r.archive_bytes)
    );
    if !r.removed.is_empty() {
        t.push_str("\nremoved (never stored):");
        for x in &r.removed {
            t.push_str(&format!("\n  {}", x.text));
        }
    }
    if !r.skipped.is_empty() {
        t.push_str("\nskipped:");
        for s in &r.skipped {
            t.push_str(&format!("\n  {} x {}", s.count, s.reason));
        }
    }
    t
}
