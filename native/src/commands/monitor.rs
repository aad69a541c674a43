//! monitor: usage per user, data type and bucket against the limits, with alert levels, the
//! month's request budget and the pending-sync backlog.

use std::collections::BTreeMap;

use kompass_core::inventory::{ObjectInfo, Tally, Usage, usage};
use kompass_core::quota::{AlertLevel, BudgetStatus, UsageStatus};
use serde::Serialize;

use super::output::human_bytes;
use super::output::spinner;
use super::{CliError, Output, open_manager};
use crate::cli::Cli;
use crate::manager::{Backend, Manager, ManagerError};
use crate::report::UserQuotaUsage;

/// Cells in a text bar.
const BAR_CELLS: usize = 10;

/// One user against the user quota.
#[derive(Debug, Serialize)]
struct UserReport {
    #[serde(flatten)]
    usage: UserQuotaUsage,
    /// `status.level`, repeated at the top for readers that only want the level.
    level: AlertLevel,
}

/// The bucket total against the bucket limit.
#[derive(Debug, Serialize)]
struct BucketReport {
    bytes: u64,
    files: u64,
    status: UsageStatus,
    level: AlertLevel,
}

/// The limits the levels are computed against.
#[derive(Debug, Serialize)]
struct LimitsReport {
    user_quota_bytes: u64,
    bucket_bytes: u64,
    max_file_bytes: u64,
    cleanup_threshold_percent: u8,
    min_files_to_keep: u32,
    auto_cleanup: bool,
}

/// Everything `kompass monitor` reports.
#[derive(Debug, Serialize)]
struct Report {
    /// Which inventory the users and the bucket below describe: `s3` when S3 is enabled and
    /// answered, else `local`.
    usage_source: Backend,
    /// The bucket name when S3 is enabled.
    bucket_name: Option<String>,
    limits: LimitsReport,
    users: BTreeMap<String, UserReport>,
    /// Global data (models, training data, anonymous routes) per type.
    global: BTreeMap<String, Tally>,
    bucket: BucketReport,
    /// The local data directory's usage (pending syncs, legacy files, or all data without S3).
    local: Usage,
    /// Why S3 could not be listed, when it is enabled but failed.
    s3_error: Option<String>,
    /// S3 is configured but could not be listed: the figures are the local data's only, and
    /// the exit status is 3 (UNKNOWN, the monitoring-plugin status for "could not tell").
    degraded: bool,
    /// Why, when degraded.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// This month's S3 requests against the free tier.
    requests: BudgetStatus,
    /// Saves waiting in the pending-sync journal for S3.
    pending_sync: usize,
    /// The most severe level of the users, the bucket and the request budget.
    level: AlertLevel,
}

/// `kompass monitor`.
pub async fn monitor(cli: &Cli, out: &Output) -> Result<AlertLevel, CliError> {
    let m = open_manager(cli)?;
    let local_inv = m.local_inventory()?;
    let mut s3_error = None;
    let mut failure = None;
    let mut source = (Backend::Local, None::<Vec<ObjectInfo>>);
    if m.s3().is_some() {
        let spin = spinner(out, "listing the bucket");
        let listed = m.s3_inventory(true).await;
        if let Some(s) = spin {
            s.finish_and_clear();
        }
        match listed {
            Ok(inv) => source = (Backend::S3, Some(inv)),
            Err(e) => {
                s3_error = Some(e.to_string());
                failure = Some(e);
            }
        }
    }
    let (usage_source, inventory) = source;
    let primary = usage(inventory.as_deref().unwrap_or(&local_inv));
    let report = build(&m, usage_source, primary, usage(&local_inv), s3_error)?;
    out.print(&report, || text(&report));
    // The report is the diagnosis and is printed anyway; the exit status still tells scripts.
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(report.level),
    }
}

fn build(
    m: &Manager,
    usage_source: Backend,
    primary: Usage,
    local: Usage,
    s3_error: Option<String>,
) -> Result<Report, ManagerError> {
    let cfg = m.config();
    let threshold = cfg.limits.cleanup_threshold_percent;
    let quota = cfg.limits.max_user_bytes;
    let users: BTreeMap<String, UserReport> = primary
        .users
        .into_iter()
        .map(|(u, uu)| {
            let usage = UserQuotaUsage::new(uu, quota, threshold);
            (u, UserReport { level: usage.status.level, usage })
        })
        .collect();
    let bucket_status =
        UsageStatus::new(primary.bucket.bytes, cfg.limits.max_bucket_bytes, threshold);
    let requests = m.ledger()?.budget_level();
    let level = users
        .values()
        .map(|u| u.level)
        .chain([bucket_status.level, requests.level])
        .max()
        .unwrap_or(AlertLevel::Normal);
    Ok(Report {
        usage_source,
        bucket_name: cfg.s3.as_ref().map(|s| s.bucket.clone()),
        limits: LimitsReport {
            user_quota_bytes: quota,
            bucket_bytes: cfg.limits.max_bucket_bytes,
            max_file_bytes: cfg.limits.max_file_bytes,
            cleanup_threshold_percent: threshold,
            min_files_to_keep: cfg.min_files_to_keep,
            auto_cleanup: cfg.auto_cleanup,
        },
        users,
        global: primary.global,
        bucket: BucketReport {
            bytes: primary.bucket.bytes,
            files: primary.bucket.files,
            status: bucket_status,
            level: bucket_status.level,
        },
        local,
        degraded: s3_error.is_some(),
        reason: s3_error.as_ref().map(|e| format!("S3 is configured but could not be listed: {e}")),
        s3_error,
        requests,
        pending_sync: m.journal().pending()?.len(),
        level,
    })
}

/// A bar of [`BAR_CELLS`] cells for a percentage (full at 100 % and over).
fn bar(percent: f64) -> String {
    let filled = ((percent / 100.0 * BAR_CELLS as f64).round() as usize).min(BAR_CELLS);
    format!("{}{}", "█".repeat(filled), "░".repeat(BAR_CELLS - filled))
}

fn text(r: &Report) -> String {
    let where_ = match (&r.usage_source, &r.bucket_name) {
        (Backend::S3, Some(b)) => format!("S3 bucket {b}"),
        _ => "the local data directory".to_owned(),
    };
    let mut s = format!("usage in {where_} (overall: {})", r.level);
    if let Some(e) = &r.s3_error {
        s.push_str(&format!("\nS3 could not be listed, showing local data only: {e}"));
    }
    let quota = human_bytes(r.limits.user_quota_bytes);
    let width = r.users.keys().map(|u| u.chars().count()).max().unwrap_or(0).max(6);
    for (u, ur) in &r.users {
        for (t, tu) in &ur.usage.by_type {
            s.push_str(&format!(
                "\n{u:<width$}  {t:<13} {} {:>3.0}% of {quota}  ({}, {} files)",
                bar(tu.percent_of_quota),
                tu.percent_of_quota,
                human_bytes(tu.bytes),
                tu.files
            ));
        }
        s.push_str(&format!(
            "\n{u:<width$}  {:<13} {} {:>3.0}% of {quota}  {}{}",
            "total",
            bar(ur.usage.status.percent),
            ur.usage.status.percent,
            ur.level,
            if ur.usage.status.cleanup_due {
                " (cleanup due: `kompass cleanup --user ...`)"
            } else {
                ""
            }
        ));
    }
    if r.users.is_empty() {
        s.push_str("\nno user data");
    }
    for (t, tally) in &r.global {
        s.push_str(&format!(
            "\nglobal {t:<13} {} ({} files)",
            human_bytes(tally.bytes),
            tally.files
        ));
    }
    s.push_str(&format!(
        "\n{:<width$}  {:<13} {} {:>3.0}% of {}  {}  ({} files)",
        "bucket",
        "total",
        bar(r.bucket.status.percent),
        r.bucket.status.percent,
        human_bytes(r.limits.bucket_bytes),
        r.bucket.level,
        r.bucket.files
    ));
    if r.usage_source == Backend::S3 || r.s3_error.is_some() {
        s.push_str(&format!(
            "\nlocal data directory: {} files, {}",
            r.local.bucket.files,
            human_bytes(r.local.bucket.bytes)
        ));
    }
    let q = &r.requests;
    s.push_str(&format!(
        "\nrequests {}: PUT-class {} {}/{} ({:.1}%, {}), GET-class {} {}/{} ({:.1}%, {})",
        q.month,
        bar(q.put_class.percent),
        q.put_class.used,
        q.put_class.limit,
        q.put_class.percent,
        q.put_class.level,
        bar(q.get_class.percent),
        q.get_class.used,
        q.get_class.limit,
        q.get_class.percent,
        q.get_class.level
    ));
    s.push_str(&format!("\npending sync: {}", r.pending_sync));
    if r.pending_sync > 0 {
        s.push_str(" (run `kompass migrate` to upload them)");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::bar;

    #[test]
    fn bars_round_and_clamp() {
        assert_eq!(bar(0.0), "░░░░░░░░░░");
        assert_eq!(bar(62.0), "██████░░░░");
        assert_eq!(bar(66.0), "███████░░░");
        assert_eq!(bar(100.0), "██████████");
        assert_eq!(bar(250.0), "██████████");
    }
}
