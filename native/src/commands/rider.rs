//! `kompass rider save|load|history`: rider data, scrubbed before it is stored.

use std::path::Path;

use kompass_core::key::UserId;

use super::output::human_bytes;
use super::{CliError, Output, read_input};
use crate::cli::{Cli, RiderArgs, RiderCommand};
use crate::manager::{Manager, ManagerError, now_ms};
use crate::rider::{RiderError, Riders};

impl From<RiderError> for CliError {
    fn from(e: RiderError) -> Self {
        match e {
            // Storage errors keep their own exit codes.
            RiderError::Manager(m) => CliError::Manager(m),
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
    let loaded = Riders::new(&m)?.load(&user, name).await?;
    super::write_all_stdout(&loaded.bytes)
}

/// `kompass rider history`: every save, newest first, with what it holds.
async fn history(cli: &Cli, user: &str, out: &Output) -> Result<(), CliError> {
    let user = user_id(user)?;
    let m = super::open_manager(cli)?;
    let entries = Riders::new(&m)?.history(&user).await?;
    out.print(&entries, || {
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
    });
    Ok(())
}
