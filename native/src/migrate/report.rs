//! What a migration did (or, in a dry run, would do): the `migrate` JSON shape and its parts.

use kompass_core::migrate::MigrationSummary;
use serde::Serialize;

use crate::store::s3::RequestCounts;

/// The outcome of `kompass migrate` (the contract's fields first; the rest are additions).
///
/// In a dry run the counts say what a real run would do now, and `planned` lists each action.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MigrationReport {
    /// The contract's counts (`migrated`, `skipped_identical`, `conflicts`, `failed`, `bytes`,
    /// `errors` as `"key: reason"`), kept by kompass-core's summary.
    #[serde(flatten)]
    pub summary: MigrationSummary,
    /// Each failed file with its local path (kept) and the reason, by key.
    pub failures: Vec<ItemError>,
    /// Each conflict: both sides' size, checksum and age, so a person can decide.
    pub conflict_keys: Vec<Conflict>,
    /// Of `failed`, those refused by a limit (file size, user quota, bucket limit): re-running
    /// does not help until there is room.
    pub refused: usize,
    /// Local copies removed after their S3 copy was verified.
    pub local_removed: usize,
    /// Pending-sync journal entries (saves made during an outage) now in S3.
    pub pending_synced: usize,
    /// True when nothing was changed (`--dry-run`).
    pub dry_run: bool,
    /// True when verified local copies were kept (`--keep-local`).
    pub keep_local: bool,
    /// The user migrated, or `null` for everything (all users, global data, legacy routes).
    pub user: Option<String>,
    /// Every planned action, in a dry run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planned: Option<Vec<PlannedItem>>,
    /// Files in the data directory that are not data (odd names, links): left alone.
    pub not_migrated: Vec<NotMigrated>,
    /// Requests this run sent to S3.
    pub requests: Requests,
    /// Requests the uploads cost (in a dry run: will cost): one PUT each, plus at most one
    /// HEAD each when S3 does not echo the checksum it verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub will_spend: Option<WillSpend>,
    /// Set when the month's request budget stopped the run: how many files remain, and when
    /// the budget resets. They stay local; run `kompass migrate` (or `kompass sync`) again then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_stop: Option<BudgetStop>,
    /// Wall-clock time of the run, in milliseconds.
    pub elapsed_ms: u64,
}

impl MigrationReport {
    /// Whether every file in scope is now in S3 (conflicts aside): nothing failed.
    pub fn is_complete(&self) -> bool {
        self.summary.failed == 0
    }
}

/// Requests of each billable class a migration's uploads spend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WillSpend {
    /// PUT-class requests (one PUT per upload).
    pub put_class: u64,
    /// GET-class requests at most (a verifying HEAD per upload whose PUT answer did not echo
    /// the checksum; 0 on AWS).
    pub get_class_at_most: u64,
}

/// The request budget stopped a migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetStop {
    /// Files not uploaded because the budget is spent.
    pub remaining: usize,
    /// When the budget resets (RFC 3339 UTC).
    pub resets_at: String,
    /// The refusal, for people.
    pub reason: String,
}

/// One file that did not migrate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemError {
    /// The object key.
    pub key: String,
    /// The local file (kept).
    pub path: String,
    /// What went wrong and what to do.
    pub error: String,
}

/// One side of a conflict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Side {
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, hex; `null` when S3 keeps none for a foreign object of another size.
    pub sha256: Option<String>,
    /// Last modification, RFC 3339 UTC.
    pub last_modified: String,
}

/// A key held in both places with different content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    /// The object key.
    pub key: String,
    /// The local file (kept).
    pub path: String,
    /// The local copy.
    pub local: Side,
    /// The S3 copy (untouched).
    pub remote: Side,
}

/// What a dry run would do with one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedItem {
    /// The object key.
    pub key: String,
    /// The local file.
    pub path: String,
    /// Size of the local file.
    pub size: u64,
    /// `upload`, `overwrite` (a pending save replacing an older S3 copy), `skip_identical`,
    /// `conflict` or `refused`.
    pub action: &'static str,
    /// Why, for `overwrite`, `conflict` and `refused`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A path in the data directory left out of the migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotMigrated {
    /// The path.
    pub path: String,
    /// Why it is not data.
    pub reason: String,
}

/// Requests sent to S3, by kind (each attempt counts, retries included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Requests {
    /// PUT object.
    pub put: u64,
    /// ListObjectsV2.
    pub list: u64,
    /// HEAD object.
    pub head: u64,
    /// GET object.
    pub get: u64,
    /// DELETE object.
    pub delete: u64,
}

impl Requests {
    /// The requests sent between two snapshots of the store's counters.
    pub fn between(before: RequestCounts, after: RequestCounts) -> Self {
        Requests {
            put: after.put - before.put,
            list: after.list - before.list,
            head: after.head - before.head,
            get: after.get - before.get,
            delete: after.delete - before.delete,
        }
    }
}
