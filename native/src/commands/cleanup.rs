//! cleanup: the FIFO plan for one user or the whole bucket, printed, and carried out unless
//! `--dry-run`.

use kompass_core::fifo::{self, CleanupPlan, Deletion, Reason, ScopeUsage};
use kompass_core::key::UserId;
use kompass_core::quota::{UsageStatus, percent_used};
use serde::Serialize;

use super::output::{human_bytes, progress_bar, spinner};
use super::{CliError, Output, open_manager};
use crate::cli::{CleanupArgs, Cli};
use crate::manager::{Backend, Manager, ManagerError, now_ms, rfc3339_ms};

/// Plans at least this long get a progress bar while they are carried out (on a terminal).
const PROGRESS_MIN_DELETIONS: usize = 20;
/// Deletions per batch between progress updates (each batch also updates the cache once).
const BATCH: usize = 25;

/// One planned deletion (the `cleanup` JSON shape's `deletions` items).
#[derive(Debug, Serialize)]
struct PlannedDeletion<'a> {
    key: &'a str,
    size: u64,
    /// RFC 3339 UTC.
    last_modified: String,
    last_modified_ms: i64,
    /// Which limit was reached and which group this is the oldest of.
    reason: &'a Reason,
    /// The reason, in words.
    reason_text: String,
}

/// The `cleanup` JSON shape, plus the scope and what was done.
#[derive(Debug, Serialize)]
struct Report<'a> {
    deletions: Vec<PlannedDeletion<'a>>,
    bytes_freed: u64,
    usage_after: &'a ScopeUsage,
    usage_before: &'a ScopeUsage,
    /// Where the plan applies: `s3` when S3 is enabled, else `local`.
    backend: Backend,
    /// The user of a per-user plan; `null` for the whole bucket.
    user: Option<&'a str>,
    dry_run: bool,
    /// Deletions carried out (0 for a dry run).
    deleted: usize,
    /// The user (or the bucket) against its limit once the plan is done.
    status_after: UsageStatus,
    /// When cleanup is due but the plan stops short: the rule that held, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    held: Option<String>,
}

/// Why a due cleanup deletes less than it would need to: every (user, data type) group at or
/// below `S3_MIN_FILES_TO_KEEP` keeps all its files; larger groups give at most half of their
/// files per cycle and never go below the minimum. Names the rule and the groups.
fn held_by(
    inventory: &[kompass_core::inventory::ObjectInfo],
    user: Option<&str>,
    min_keep: usize,
) -> String {
    let usage = kompass_core::inventory::usage(inventory);
    let mut kept_whole = Vec::new();
    let mut capped = Vec::new();
    for (u, uu) in &usage.users {
        if user.is_some_and(|w| w != u) {
            continue;
        }
        for (t, tally) in &uu.by_type {
            let group = format!(
                "{u}/{t} ({} file{})",
                tally.files,
                if tally.files == 1 { "" } else { "s" }
            );
            if tally.files as usize <= min_keep {
                kept_whole.push(group)
            } else {
                capped.push(group)
            }
        }
    }
    let mut s = String::new();
    if !kept_whole.is_empty() {
        s.push_str(&format!(
            "min-keep (S3_MIN_FILES_TO_KEEP={min_keep}) holds every file of {}",
            kept_whole.join(", ")
        ));
    }
    if !capped.is_empty() {
        if !s.is_empty() {
            s.push_str("; ");
        }
        s.push_str(&format!(
            "half per cycle: at most half of a type group's files go in one run, and never below {min_keep}, for {} (run cleanup again for more)",
            capped.join(", ")
        ));
    }
    if s.is_empty() {
        s.push_str("nothing of this scope is stored in this backend");
    }
    s.push_str(". To make room: delete files yourself (`kompass delete`), lower S3_MIN_FILES_TO_KEEP, or raise the limit");
    s
}

/// `kompass cleanup`.
pub async fn cleanup(cli: &Cli, args: &CleanupArgs, out: &Output) -> Result<(), CliError> {
    let user = args.user.as_deref().map(UserId::new).transpose().map_err(ManagerError::Key)?;
    let m = open_manager(cli)?;
    let backend = m.preferred_backend();
    let inventory = {
        let spinner = spinner(out, "listing the bucket");
        let inv = match backend {
            Backend::S3 => m.s3_inventory(true).await,
            Backend::Local => m.local_inventory(),
        };
        if let Some(s) = spinner {
            s.finish_and_clear();
        }
        inv?
    };
    let policy = m.policy();
    let limits = m.fifo_limits();
    let plan = match &user {
        Some(u) => fifo::plan_user(&inventory, u.as_str(), &policy, &limits, now_ms()),
        None => fifo::plan_bucket(&inventory, &policy, &limits, now_ms()),
    }
    .map_err(ManagerError::from)?;

    let deleted = if args.dry_run { 0 } else { execute(&m, backend, &plan, out).await? };
    let held_due = match &user {
        Some(u) => plan.usage_after.users.get(u.as_str()).map_or(0, |t| t.bytes),
        None => plan.usage_after.bucket.bytes,
    };
    let limit = if user.is_some() { limits.user_quota_bytes } else { limits.bucket_bytes };
    let held = UsageStatus::new(held_due, limit, policy.threshold_percent)
        .cleanup_due
        .then(|| held_by(&inventory, user.as_ref().map(UserId::as_str), policy.min_files_to_keep));
    let status_after = match &user {
        Some(u) => {
            let used = plan.usage_after.users.get(u.as_str()).map_or(0, |t| t.bytes);
            UsageStatus::new(used, limits.user_quota_bytes, policy.threshold_percent)
        }
        None => UsageStatus::new(
            plan.usage_after.bucket.bytes,
            limits.bucket_bytes,
            policy.threshold_percent,
        ),
    };
    let report = Report {
        deletions: plan
            .deletions
            .iter()
            .map(|d| PlannedDeletion {
                key: &d.key,
                size: d.size,
                last_modified: rfc3339_ms(d.last_modified_ms),
                last_modified_ms: d.last_modified_ms,
                reason: &d.reason,
                reason_text: d.reason.to_string(),
            })
            .collect(),
        bytes_freed: plan.bytes_freed,
        usage_after: &plan.usage_after,
        usage_before: &plan.usage_before,
        backend,
        user: user.as_ref().map(UserId::as_str),
        dry_run: args.dry_run,
        deleted,
        status_after,
        held,
    };
    out.print(&report, || text(&report, &m));
    Ok(())
}

/// Deletes the plan's objects, in batches, with a progress bar for long plans on a terminal.
async fn execute(
    m: &Manager,
    backend: Backend,
    plan: &CleanupPlan,
    out: &Output,
) -> Result<usize, CliError> {
    let bar = (plan.deletions.len() >= PROGRESS_MIN_DELETIONS)
        .then(|| progress_bar(out, plan.deletions.len() as u64, "deleting"))
        .flatten();
    let mut done = 0;
    for batch in plan.deletions.chunks(BATCH) {
        let r = delete_batch(m, backend, batch).await;
        if let Err(e) = r {
            if let Some(b) = &bar {
                b.abandon();
            }
            // Deletions run in order, so the ones before the failed batch are done.
            return Err(CliError::Other(format!(
                "cleanup stopped after deleting {done} of {} planned file(s): {e}",
                plan.deletions.len()
            )));
        }
        done += batch.len();
        if let Some(b) = &bar {
            b.inc(batch.len() as u64);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(done)
}

async fn delete_batch(
    m: &Manager,
    backend: Backend,
    batch: &[Deletion],
) -> Result<(), ManagerError> {
    match backend {
        Backend::S3 => m.delete_planned_s3(batch).await,
        Backend::Local => m.delete_planned_local(batch),
    }
}

fn text(r: &Report<'_>, m: &Manager) -> String {
    let scope = match r.user {
        Some(u) => format!("user {u}"),
        None => "the whole bucket".to_owned(),
    };
    let where_ = match r.backend {
        Backend::S3 => "S3",
        Backend::Local => "the local data directory",
    };
    if r.deletions.is_empty() {
        let mut s = format!(
            "cleanup of {scope} in {where_}: nothing to delete ({})",
            describe_status(&r.status_after)
        );
        if let Some(h) = &r.held {
            s.push_str(&format!("\ncleanup is due, but {h}"));
        }
        return s;
    }
    let mut s = format!(
        "cleanup of {scope} in {where_}{}: {} file(s), {} freed",
        if r.dry_run { " (dry run)" } else { "" },
        r.deletions.len(),
        human_bytes(r.bytes_freed)
    );
    for d in &r.deletions {
        s.push_str(&format!(
            "\n  {}  {:>9}  {}\n      {}",
            d.last_modified,
            human_bytes(d.size),
            d.key,
            d.reason_text
        ));
    }
    s.push_str(&format!("\nusage after: {}", describe_status(&r.status_after)));
    if let Some(h) = &r.held {
        s.push_str(&format!("\nstill over the threshold: {h}"));
    }
    if r.user.is_none() {
        for (u, t) in &r.usage_after.users {
            let st = UsageStatus::new(
                t.bytes,
                m.fifo_limits().user_quota_bytes,
                m.policy().threshold_percent,
            );
            if st.cleanup_due {
                s.push_str(&format!("\n  user {u}: {}", describe_status(&st)));
            }
        }
    }
    if r.dry_run {
        s.push_str("\ndry run: nothing was deleted; run without --dry-run to delete these files");
    } else {
        s.push_str(&format!("\ndeleted {} file(s)", r.deleted));
    }
    s
}

fn describe_status(st: &UsageStatus) -> String {
    format!(
        "{} of {} ({:.0}%, {})",
        human_bytes(st.used),
        human_bytes(st.limit),
        percent_used(st.used, st.limit),
        st.level
    )
}
