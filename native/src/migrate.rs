//! Migration: local data to S3 (`kompass migrate`). The core's `migrate` module decides per
//! file (upload, skip-identical, conflict); this module gathers the facts it decides from and
//! carries the decisions out.
//!
//! Safety rules: an upload is create-only (`If-None-Match: *`), so an object another writer
//! stored is never replaced, except by a save pending sync (the journal says the local copy is
//! the newer one). A local copy is removed only after S3 is seen to hold its exact size and
//! SHA-256, and only if the file still holds those bytes. A crash at any point leaves at
//! worst an uploaded object beside its local copy, which the next run finds identical and
//! removes: runs are idempotent, so an interrupted run is resumed by running it again.

mod bounded;
mod facts;
mod plan;
mod report;
mod transfer;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use kompass_core::admission::{Decision, Facts, Session, Settings, StoredObject, Upload, Via};
use kompass_core::inventory::ObjectInfo;
use kompass_core::key::ObjectKey;
use kompass_core::key::{UserId, user_prefix};
use kompass_core::time::UnixMs;
use thiserror::Error;

pub use facts::{LocalFile, in_scope};
pub use plan::Step;
pub use report::{
    BudgetStop, Conflict, ItemError, MigrationReport, NotMigrated, PlannedItem, Requests, Side,
    WillSpend,
};

use crate::journal::PendingEntry;
use crate::manager::inventory::object_info;
use crate::manager::{Backend, Manager, ManagerError};
use crate::store::s3::S3Error;
use transfer::{LocalFate, Outcome, Transfers};

/// The most transfers at once: more only queues at the server.
pub const MAX_CONCURRENCY: usize = 256;

/// What to migrate and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// One user's data, or (`None`) everything: all users, global data and legacy routes.
    pub user: Option<UserId>,
    /// Plan only: send only LIST and HEAD (and GET for a foreign object without a checksum).
    pub dry_run: bool,
    /// Transfers at once (1 to [`MAX_CONCURRENCY`]).
    pub concurrency: usize,
    /// Keep local copies even once verified in S3.
    pub keep_local: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { user: None, dry_run: false, concurrency: 16, keep_local: false }
    }
}

/// Why a migration could not run at all (per-file failures are in the report instead).
#[derive(Debug, Error)]
pub enum MigrateError {
    /// The manager failed (S3 not enabled, the data directory, the journal).
    #[error(transparent)]
    Manager(#[from] ManagerError),
    /// S3 could not be listed or inspected before anything was moved.
    #[error(
        "could not survey the bucket, so nothing was migrated and every local file is kept: {0}. \
         Re-run `kompass migrate` once S3 is reachable"
    )]
    Survey(#[source] S3Error),
    /// The inventories could not be planned from.
    #[error("could not plan the migration, so nothing was changed: {0}")]
    Plan(#[source] kompass_core::migrate::MigrateError),
    /// The concurrency is out of range.
    #[error("--concurrency must be between 1 and {MAX_CONCURRENCY}, not {0}")]
    Concurrency(usize),
}

impl From<crate::store::local::LocalError> for MigrateError {
    fn from(e: crate::store::local::LocalError) -> Self {
        MigrateError::Manager(e.into())
    }
}

impl From<crate::statedb::StateError> for MigrateError {
    fn from(e: crate::statedb::StateError) -> Self {
        MigrateError::Manager(e.into())
    }
}

fn survey_error(e: ManagerError) -> MigrateError {
    match e {
        ManagerError::S3(e) => MigrateError::Survey(e),
        other => MigrateError::Manager(other),
    }
}

/// Migrates local data to S3 as `opts` says, showing progress on `progress` (pass
/// `ProgressBar::hidden()` for none). Per-file failures do not stop the run: they are in the
/// report, and their local copies are kept.
pub async fn migrate(
    m: &Manager,
    opts: &Options,
    progress: &ProgressBar,
) -> Result<MigrationReport, MigrateError> {
    if !(1..=MAX_CONCURRENCY).contains(&opts.concurrency) {
        return Err(MigrateError::Concurrency(opts.concurrency));
    }
    let started = Instant::now();
    let s3 = m.require_s3()?.clone();
    let before = s3.counts();
    let user = opts.user.as_ref();
    let mut report = MigrationReport {
        dry_run: opts.dry_run,
        keep_local: opts.keep_local,
        user: user.map(|u| u.to_string()),
        ..MigrationReport::default()
    };

    progress.set_style(spinner_style());
    progress.enable_steady_tick(Duration::from_millis(120));
    progress.set_message("reading and hashing local files");
    let local = facts::local_files(m.local(), user, opts.concurrency).await?;
    report.not_migrated = local.not_migrated;
    let pending: Vec<PendingEntry> =
        m.journal().pending()?.into_iter().filter(|e| in_scope(&e.key, user)).collect();
    let local_keys: HashSet<&str> = local.files.iter().map(|f| f.s3_key.as_str()).collect();
    // Journal entries whose file is gone (removed after its upload by a run that then crashed,
    // or deleted): nothing left to sync.
    let stale: Vec<PendingEntry> =
        pending.iter().filter(|e| !local_keys.contains(e.key.s3_key().as_str())).cloned().collect();

    if local.files.is_empty() {
        // Nothing to move: no request at all (the free tier's LISTs are scarce).
        if !opts.dry_run && !stale.is_empty() {
            m.journal().complete_entries(&stale)?;
        }
        progress.finish_and_clear();
        report.elapsed_ms = started.elapsed().as_millis() as u64;
        return Ok(report);
    }

    // Remote facts: one listing of the scope, then a HEAD per key held on both sides.
    progress.set_message("listing the bucket");
    let (scope_listing, bucket) = match user {
        Some(u) => {
            let listed = s3.list(&user_prefix(u)).await;
            m.record_requests()?;
            let listed: Vec<ObjectInfo> = listed
                .map_err(MigrateError::Survey)?
                .into_iter()
                .map(|o| object_info(&o.key, o.size, o.last_modified_ms as i64, None))
                .collect();
            // Bucket-wide usage for the limits: the cached inventory is enough for the other
            // users; this user's part is the fresh listing.
            let prefix = user_prefix(u);
            let mut bucket = m.s3_inventory(false).await.map_err(survey_error)?;
            bucket.retain(|o| !o.key.starts_with(&prefix));
            bucket.extend(listed.iter().cloned());
            (listed, bucket)
        }
        None => {
            let all = m.s3_inventory(true).await.map_err(survey_error)?;
            (all.clone(), all)
        }
    };
    let shared = scope_listing.iter().filter(|o| local_keys.contains(o.key.as_str())).count();
    progress.set_message(format!("checking {shared} files already in the bucket"));
    let remote = facts::remote_heads(&s3, scope_listing, &local.files, opts.concurrency)
        .await
        .map_err(MigrateError::Survey);
    m.record_requests()?;
    let remote = remote?;

    let planned = plan::steps(&s3, &local.files, &remote, &pending).await;
    m.record_requests()?;
    let planned = planned.map_err(|e| match e {
        plan::PlanError::S3(e) => MigrateError::Survey(e),
        plan::PlanError::Inventory(e) => MigrateError::Plan(e),
    })?;
    let steps =
        admit_uploads(planned, &bucket, &AdmitFacts::of(m)?, &m.admission_settings(Backend::S3));
    // What the run will spend: one PUT per upload; a HEAD too when S3 does not echo the
    // checksum it verified (AWS does).
    let uploads = steps.iter().filter(|s| matches!(s, Step::Upload { .. })).count() as u64;
    report.will_spend = Some(WillSpend { put_class: uploads, get_class_at_most: uploads });
    let budget_refused: Vec<&Step> = steps
        .iter()
        .filter(|s| matches!(s, Step::Refused { refusal, .. } if refusal.queue_locally()))
        .collect();
    if let Some(Step::Refused { refusal, .. }) = budget_refused.first() {
        report.budget_stop = Some(BudgetStop {
            remaining: budget_refused.len(),
            resets_at: refusal.retry_at().map(|t| t.rfc3339()).unwrap_or_default(),
            reason: refusal.to_string(),
        });
    }

    if opts.dry_run {
        progress.finish_and_clear();
        tally_plan(&mut report, &steps);
        report.planned = Some(steps.iter().map(plan::planned_item).collect());
        report.requests = Requests::between(before, s3.counts());
        report.elapsed_ms = started.elapsed().as_millis() as u64;
        return Ok(report);
    }

    let total_bytes: u64 = steps.iter().map(Step::upload_bytes).sum();
    progress.set_message(format!("0 B / {}", kompass_core::fifo::human_bytes(total_bytes)));
    progress.set_length(steps.len() as u64);
    progress.set_position(0);
    progress.set_style(bar_style());
    let transfers = Transfers::new(
        s3.clone(),
        m.local().root().to_path_buf(),
        opts.keep_local,
        progress.clone(),
        total_bytes,
    );
    let outcomes =
        bounded::for_each_bounded(steps, opts.concurrency, |step| transfers.clone().run(step))
            .await;
    if let Err(why) = transfers.sync_removals().await {
        // Harmless for the data: a removal that does not survive a crash is redone next run.
        tracing::warn!("could not flush the removal of migrated local copies to disk: {why}");
    }
    progress.finish_and_clear();

    // Bookkeeping: the journal, the inventory cache, the request ledger.
    let pending_by_key: HashMap<String, &PendingEntry> =
        pending.iter().map(|e| (e.key.s3_key(), e)).collect();
    let mut synced: Vec<PendingEntry> = Vec::new();
    let mut stored: Vec<(String, u64)> = Vec::new();
    for outcome in outcomes {
        let (action, done) = outcome.as_core();
        report.summary.record(&action, &done);
        match outcome {
            Outcome::Migrated { file, local } | Outcome::Identical { file, local } => {
                report.local_removed += usize::from(local == LocalFate::Removed);
                synced.extend(pending_by_key.get(&file.s3_key).map(|e| (*e).clone()));
                if matches!(action, kompass_core::migrate::Action::Upload { .. }) {
                    stored.push((file.s3_key, file.size));
                }
            }
            Outcome::Conflict { report: c, .. } => report.conflict_keys.push(c),
            Outcome::Failed { file, error, refused } => {
                report.refused += usize::from(refused);
                report.failures.push(ItemError {
                    key: file.s3_key,
                    path: file.path.display().to_string(),
                    error,
                });
            }
        }
    }
    report.pending_synced = synced.len();
    synced.extend(stale);
    if !synced.is_empty() {
        m.journal().complete_entries(&synced)?;
    }
    m.note_stored(&stored)?;
    m.record_requests()?;
    report.summary.errors.sort();
    report.failures.sort_by(|a, b| a.key.cmp(&b.key));
    report.conflict_keys.sort_by(|a, b| a.key.cmp(&b.key));
    report.requests = Requests::between(before, s3.counts());
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// Applies admission to the planned uploads in plan order, each seeing the ones before it as
/// stored ([`admission::Session`], the core's sequential variant): file size, user quota,
/// bucket limit and the month's request budget. No cleanup runs for a migration: an upload
/// that does not fit now is refused and its local copy stays. Live reservations (granted
/// browser uploads) count against the quotas.
fn admit_uploads(
    steps: Vec<Step>,
    bucket: &[ObjectInfo],
    facts: &AdmitFacts,
    settings: &Settings,
) -> Vec<Step> {
    let mut unlisted_bytes = 0;
    let stored: Vec<StoredObject> = bucket
        .iter()
        .filter_map(|o| match ObjectKey::from_s3_key(&o.key) {
            Ok(key) => {
                Some(StoredObject { key, size: o.size, last_modified: UnixMs(o.last_modified_ms) })
            }
            Err(_) => {
                unlisted_bytes += o.size;
                None
            }
        })
        .collect();
    let start = Facts {
        stored: &stored,
        unlisted_bytes,
        reservations: &facts.reservations,
        unlisted_reserved: kompass_core::admission::UnlistedReserved::default(),
        ledger: &facts.ledger,
        now: facts.now,
    };
    let settings = Settings { auto_cleanup: false, ..settings.clone() };
    let mut session = Session::new(&start, settings);
    steps
        .into_iter()
        .map(|step| {
            let Step::Upload { file, overwrite } = step else { return step };
            let upload = Upload { key: file.key.clone(), size: file.size, via: Via::Direct };
            match session.decide(&upload, facts.now) {
                Decision::Refuse(refusal) => Step::Refused { file, refusal },
                Decision::Admit(_) => Step::Upload { file, overwrite },
            }
        })
        .collect()
}

/// The facts besides the inventory that a migration's admission starts from.
struct AdmitFacts {
    reservations: Vec<kompass_core::admission::Reservation>,
    ledger: kompass_core::quota::RequestLedger,
    now: UnixMs,
}

impl AdmitFacts {
    fn of(m: &Manager) -> Result<Self, MigrateError> {
        let now = UnixMs(crate::manager::now_ms());
        let (reservations, ledger) = m
            .state()
            .write(|tx| Ok::<_, ManagerError>((tx.reservations(now)?, tx.ledger(now)?)))?;
        Ok(AdmitFacts { reservations, ledger, now })
    }
}

/// A dry run's counts: what a real run would do now.
fn tally_plan(report: &mut MigrationReport, steps: &[Step]) {
    for step in steps {
        let file = step.file();
        let outcome = match step {
            Step::Upload { .. } => Outcome::Migrated { file: file.clone(), local: LocalFate::Kept },
            Step::SkipIdentical { .. } => {
                Outcome::Identical { file: file.clone(), local: LocalFate::Kept }
            }
            Step::Conflict { remote, .. } => Outcome::Conflict {
                action: transfer::conflict_action(file, remote.size, remote.sha256),
                report: transfer::conflict(file, remote),
            },
            Step::Refused { refusal, .. } => Outcome::Failed {
                file: file.clone(),
                error: format!("refused: {refusal}"),
                refused: true,
            },
            Step::Unverified { .. } => Outcome::Failed {
                file: file.clone(),
                error: plan::UNVERIFIED.into(),
                refused: false,
            },
        };
        let (action, done) = outcome.as_core();
        report.summary.record(&action, &done);
        match outcome {
            Outcome::Conflict { report: c, .. } => report.conflict_keys.push(c),
            Outcome::Failed { file, error, refused } => {
                report.refused += usize::from(refused);
                report.failures.push(ItemError {
                    key: file.s3_key,
                    path: file.path.display().to_string(),
                    error,
                });
            }
            _ => {}
        }
    }
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("migrating [{bar:30}] {pos}/{len} files, {msg} ({eta} left)")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use kompass_core::admission::Limit;
    use kompass_core::key::ObjectKey;
    use kompass_core::quota::{Limits, RequestKind, RequestLedger};

    use super::*;

    fn file(key: &str, size: u64) -> LocalFile {
        LocalFile {
            key: ObjectKey::from_s3_key(key).unwrap(),
            s3_key: key.to_owned(),
            path: PathBuf::from(key),
            legacy: false,
            size,
            last_modified_ms: 0,
            sha256: [0; 32],
        }
    }

    fn upload(key: &str, size: u64) -> Step {
        Step::Upload { file: file(key, size), overwrite: None }
    }

    fn limits() -> Limits {
        Limits {
            max_file_bytes: 50,
            max_user_bytes: 100,
            max_bucket_bytes: 1000,
            cleanup_threshold_percent: 70,
        }
    }

    fn now() -> UnixMs {
        UnixMs(1_773_144_000_000)
    }

    fn facts(ledger: RequestLedger) -> AdmitFacts {
        AdmitFacts { reservations: Vec::new(), ledger, now: now() }
    }

    fn settings() -> Settings {
        Settings { limits: limits(), ..Settings::default() }
    }

    /// The old signature: limits only, an empty ledger.
    fn admit(steps: Vec<Step>, bucket: &[ObjectInfo]) -> Vec<Step> {
        admit_uploads(
            steps,
            bucket,
            &facts(RequestLedger::starting_at(now().as_u64())),
            &settings(),
        )
    }

    fn refused(steps: &[Step]) -> Vec<(&str, &'static str)> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Refused { file, refusal } => Some((
                    file.s3_key.as_str(),
                    match refusal.limit() {
                        Limit::FileSize => "file",
                        Limit::UserQuota => "user",
                        Limit::Bucket => "bucket",
                        Limit::PutBudget | Limit::GetBudget => "budget",
                    },
                )),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn admitted_uploads_count_against_the_quota_of_later_ones() {
        let existing = vec![object_info("users/a/routes/old.json", 40, 0, None)];
        let steps = vec![
            upload("users/a/routes/1.json", 30),
            upload("users/a/routes/2.json", 31), // 40 + 30 + 31 > 100
            upload("users/a/routes/3.json", 30), // exactly 100
            upload("users/b/routes/1.json", 50), // another user: own quota
            upload("users/b/routes/2.json", 51), // over the file limit
        ];
        let out = admit(steps, &existing);
        assert_eq!(
            refused(&out),
            vec![("users/a/routes/2.json", "user"), ("users/b/routes/2.json", "file")]
        );
        assert_eq!(out.len(), 5, "every file keeps its step, in order");
        assert_eq!(out[2].file().s3_key, "users/a/routes/3.json");
    }

    #[test]
    fn an_overwrite_is_credited_with_the_object_it_replaces() {
        let remote = [object_info("users/a/routes/r.json", 50, 0, None)];
        let bucket = vec![remote[0].clone(), object_info("users/a/routes/other.json", 45, 0, None)];
        let over = Step::Upload {
            file: file("users/a/routes/r.json", 50),
            overwrite: Some(remote[0].clone()),
        };
        let out = admit(vec![over], &bucket);
        assert!(refused(&out).is_empty(), "95 - 50 + 50 fits in 100");
        let new = upload("users/a/routes/new.json", 10);
        let out = admit(vec![new], &bucket);
        assert_eq!(refused(&out), vec![("users/a/routes/new.json", "user")]);
    }

    #[test]
    fn global_data_counts_only_against_the_bucket() {
        let bucket = vec![object_info("models/big.bin", 960, 0, None)];
        let steps = vec![upload("models/a.bin", 40), upload("routes/b.json", 1)];
        let out = admit(steps, &bucket);
        assert_eq!(refused(&out), vec![("routes/b.json", "bucket")]);
    }

    #[test]
    fn the_run_stops_where_the_put_budget_ends() {
        let mut ledger = RequestLedger::starting_at(now().as_u64());
        ledger.record_many(RequestKind::List, 1_998, now().as_u64());
        let steps: Vec<Step> =
            (0..5).map(|i| upload(&format!("users/a/routes/{i}.json"), 1)).collect();
        let out = admit_uploads(steps, &[], &facts(ledger), &settings());
        let r = refused(&out);
        assert_eq!(r.len(), 3, "{r:?}");
        assert!(r.iter().all(|(_, why)| *why == "budget"));
        // Opted out: everything goes.
        let steps: Vec<Step> =
            (0..5).map(|i| upload(&format!("users/a/routes/{i}.json"), 1)).collect();
        let mut ledger = RequestLedger::starting_at(now().as_u64());
        ledger.record_many(RequestKind::Put, 5_000, now().as_u64());
        let off = Settings { budget: None, ..settings() };
        assert!(refused(&admit_uploads(steps, &[], &facts(ledger), &off)).is_empty());
    }
}
