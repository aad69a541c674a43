//! From facts to steps: kompass-core's migration plan, turned into the executor's steps.
//!
//! The core classifies each local file against the S3 object of its key. Two facts only the
//! adapter has are applied on top: a save pending sync (recorded in the journal during an
//! outage, after the S3 copy was written) is the newer copy, so its "conflict" is an overwrite;
//! and "needs verify" (a foreign S3 object without a stored checksum) is settled by reading the
//! object and classifying again.

use std::collections::HashMap;

use kompass_core::admission::Refusal;
use kompass_core::inventory::ObjectInfo;
use kompass_core::migrate::{self as core_migrate, Action, Mismatch};

use super::facts::{self, LocalFile};
use super::report::PlannedItem;
use crate::journal::PendingEntry;
use crate::store::s3::{S3Error, S3Store};

/// One file's part of the plan, as the executor carries it out.
#[derive(Debug, Clone)]
pub enum Step {
    /// Upload. With `overwrite` (the S3 object it replaces) only for a save pending sync, which
    /// is newer; otherwise the PUT is create-only, so another writer's object is never replaced.
    Upload {
        /// The file.
        file: LocalFile,
        /// The older S3 object a pending save replaces.
        overwrite: Option<ObjectInfo>,
    },
    /// S3 already holds the same bytes: the local copy may go.
    SkipIdentical {
        /// The file.
        file: LocalFile,
    },
    /// S3 holds other content: keep both.
    Conflict {
        /// The file.
        file: LocalFile,
        /// The S3 object.
        remote: ObjectInfo,
        /// What differs.
        mismatch: Mismatch,
    },
    /// Over a limit: not uploaded.
    Refused {
        /// The file.
        file: LocalFile,
        /// Which limit.
        refusal: Refusal,
    },
    /// The S3 copy's checksum stayed unknown: nothing is done, the local copy stays.
    Unverified {
        /// The file.
        file: LocalFile,
    },
}

impl Step {
    /// The local file this step is about.
    pub fn file(&self) -> &LocalFile {
        match self {
            Step::Upload { file, .. }
            | Step::SkipIdentical { file }
            | Step::Conflict { file, .. }
            | Step::Refused { file, .. }
            | Step::Unverified { file } => file,
        }
    }

    /// Bytes this step uploads.
    pub fn upload_bytes(&self) -> u64 {
        match self {
            Step::Upload { file, .. } => file.size,
            _ => 0,
        }
    }
}

/// Why a plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The inventories are inconsistent.
    #[error(transparent)]
    Inventory(#[from] core_migrate::MigrateError),
    /// Reading an object to learn its checksum failed.
    #[error(transparent)]
    S3(#[from] S3Error),
}

/// The steps for `local` given what S3 holds (`remote`, with checksums from HEAD for shared
/// keys) and the saves pending sync, in key order.
pub async fn steps(
    s3: &S3Store,
    local: &[LocalFile],
    remote: &[ObjectInfo],
    pending: &[PendingEntry],
) -> Result<Vec<Step>, PlanError> {
    let infos: Vec<ObjectInfo> = local.iter().map(LocalFile::info).collect();
    let plan = core_migrate::plan(&infos, remote)?;
    let files: HashMap<&str, &LocalFile> = local.iter().map(|f| (f.s3_key.as_str(), f)).collect();
    let remotes: HashMap<&str, &ObjectInfo> = remote.iter().map(|o| (o.key.as_str(), o)).collect();
    let infos: HashMap<&str, &ObjectInfo> = infos.iter().map(|o| (o.key.as_str(), o)).collect();
    let pending: HashMap<String, &PendingEntry> =
        pending.iter().map(|e| (e.key.s3_key(), e)).collect();
    let mut steps = Vec::with_capacity(plan.actions.len());
    for action in plan.actions {
        let key = action.key().to_owned();
        let file = (*files.get(key.as_str()).expect("the plan has only local keys")).clone();
        let mut remote = remotes.get(key.as_str()).map(|o| (*o).clone());
        let action = match action {
            Action::NeedsVerify { .. } => {
                // S3 keeps no checksum for this object: read it, then ask the core again.
                let mut r = remote.take().expect("needs-verify has a remote object");
                match facts::remote_hash(s3, &key).await? {
                    Some(sha) => {
                        r.sha256 = Some(sha);
                        remote = Some(r);
                    }
                    None => remote = None,
                }
                core_migrate::classify(infos[key.as_str()], remote.as_ref())
            }
            a => a,
        };
        steps.push(match action {
            Action::Upload { .. } => Step::Upload { file, overwrite: None },
            Action::SkipIdentical { .. } => Step::SkipIdentical { file },
            Action::Conflict { mismatch, .. } => {
                let remote = remote.expect("a conflict has a remote object");
                match pending.get(&key) {
                    // Saved during an outage after S3's copy was written: the newer copy.
                    Some(e) if remote.last_modified_ms <= e.recorded_at_ms as i64 => {
                        Step::Upload { file, overwrite: Some(remote) }
                    }
                    _ => Step::Conflict { file, remote, mismatch },
                }
            }
            // Both checksums are known by now; a left-over is not removable.
            Action::NeedsVerify { .. } => Step::Unverified { file },
        });
    }
    Ok(steps)
}

/// One step as a dry run lists it.
pub fn planned_item(step: &Step) -> PlannedItem {
    let f = step.file();
    let (action, reason) = match step {
        Step::Upload { overwrite: None, .. } => ("upload", None),
        Step::Upload { overwrite: Some(r), .. } => (
            "overwrite",
            Some(format!(
                "saved locally during an S3 outage, after the S3 copy ({} bytes) was written: the newer copy",
                r.size
            )),
        ),
        Step::SkipIdentical { .. } => ("skip_identical", None),
        Step::Conflict { remote, mismatch, .. } => (
            "conflict",
            Some(format!(
                "S3 holds other content under this key ({}: {} bytes, sha256 {})",
                match mismatch {
                    Mismatch::Size => "size differs",
                    Mismatch::Checksum => "checksum differs",
                },
                remote.size,
                remote.sha256.map_or("unknown".into(), |d| d.to_hex())
            )),
        ),
        Step::Refused { refusal, .. } => ("refused", Some(refusal.to_string())),
        Step::Unverified { .. } => ("unverified", Some(UNVERIFIED.into())),
    };
    PlannedItem {
        key: f.s3_key.clone(),
        path: f.path.display().to_string(),
        size: f.size,
        action,
        reason,
    }
}

/// Why an unverified file stays.
pub const UNVERIFIED: &str = "the S3 copy's checksum could not be learned, so the local copy is kept; re-run `kompass migrate`";
