//! Carrying out a migration plan, one file per task: upload (create-only, or overwrite for a
//! pending save), verify size and SHA-256 in S3, and only then remove the local copy.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use indicatif::ProgressBar;
use kompass_core::inventory::{ObjectInfo, Sha256Digest};
use kompass_core::migrate::{Action, Mismatch, Outcome as CoreOutcome};
use tokio::sync::Semaphore;

use super::facts::LocalFile;
use super::plan::{Step, UNVERIFIED};
use super::report::{Conflict, Side};
use crate::manager::{rfc3339_ms, sha256};
use crate::store::local::{LocalError, find_file, sha256_file, sync_dir};
use crate::store::s3::{ObjectMeta, PutMode, S3Error, S3Store};

/// Bodies held in memory at once, across all transfers (KiB): bounds memory for large files.
const MEMORY_BUDGET_KIB: u32 = 256 * 1024;

/// What became of the local copy once S3 held the same bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalFate {
    /// Removed.
    Removed,
    /// Kept on request (`--keep-local`).
    Kept,
    /// Already gone (removed by someone else meanwhile).
    Gone,
}

/// What one step did.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Uploaded and verified.
    Migrated {
        /// The file.
        file: LocalFile,
        /// Its local copy.
        local: LocalFate,
    },
    /// S3 already held the same bytes.
    Identical {
        /// The file.
        file: LocalFile,
        /// Its local copy.
        local: LocalFate,
    },
    /// S3 holds other content; both kept.
    Conflict {
        /// The core's view of it, for the summary.
        action: Action,
        /// Both sides, for people.
        report: Conflict,
    },
    /// Not migrated; the local copy is kept.
    Failed {
        /// The file.
        file: LocalFile,
        /// What went wrong and what to do.
        error: String,
        /// Refused by a limit (re-running will not help until there is room).
        refused: bool,
    },
}

impl Outcome {
    /// The core's action this outcome counts as, and whether it was carried out.
    pub fn as_core(&self) -> (Action, CoreOutcome) {
        match self {
            Outcome::Migrated { file, .. } => (upload_action(file), CoreOutcome::Done),
            Outcome::Identical { file, .. } => (
                Action::SkipIdentical {
                    key: file.s3_key.clone(),
                    size: file.size,
                    sha256: Sha256Digest(file.sha256),
                },
                CoreOutcome::Done,
            ),
            Outcome::Conflict { action, .. } => (action.clone(), CoreOutcome::Done),
            Outcome::Failed { file, error, .. } => {
                (upload_action(file), CoreOutcome::Failed(error.clone()))
            }
        }
    }
}

fn upload_action(file: &LocalFile) -> Action {
    Action::Upload {
        key: file.s3_key.clone(),
        size: file.size,
        sha256: Some(Sha256Digest(file.sha256)),
    }
}

/// The core's conflict action for a file and the S3 object's size and checksum.
pub fn conflict_action(
    file: &LocalFile,
    remote_size: u64,
    remote_sha: Option<Sha256Digest>,
) -> Action {
    Action::Conflict {
        key: file.s3_key.clone(),
        mismatch: if remote_size == file.size { Mismatch::Checksum } else { Mismatch::Size },
        local_size: file.size,
        remote_size,
        local_sha256: Some(Sha256Digest(file.sha256)),
        remote_sha256: remote_sha,
    }
}

/// Shared state of the transfers of one run.
pub struct Transfers {
    s3: S3Store,
    root: PathBuf,
    keep_local: bool,
    /// Set by the first outage: later transfers are not attempted (they would only fail slowly).
    outage: Mutex<Option<String>>,
    memory: Arc<Semaphore>,
    progress: ProgressBar,
    total_bytes: u64,
    done_bytes: AtomicU64,
    /// Directories that local copies were removed from, flushed once at the end of the run
    /// ([`Transfers::sync_removals`]) rather than once per file.
    removed_from: Mutex<BTreeSet<PathBuf>>,
}

impl Transfers {
    /// Transfers into `s3` from the data directory `root`, reporting to `progress`.
    pub fn new(
        s3: S3Store,
        root: PathBuf,
        keep_local: bool,
        progress: ProgressBar,
        total_bytes: u64,
    ) -> Arc<Self> {
        Arc::new(Transfers {
            s3,
            root,
            keep_local,
            outage: Mutex::new(None),
            memory: Arc::new(Semaphore::new(MEMORY_BUDGET_KIB as usize)),
            progress,
            total_bytes,
            done_bytes: AtomicU64::new(0),
            removed_from: Mutex::new(BTreeSet::new()),
        })
    }

    /// Carries out one step.
    pub async fn run(self: Arc<Self>, step: Step) -> Outcome {
        let bytes = step.upload_bytes();
        let outcome = match step {
            Step::Upload { file, overwrite } => self.upload(file, overwrite.is_some()).await,
            Step::SkipIdentical { file } => self.identical(file).await,
            Step::Conflict { file, remote, .. } => Outcome::Conflict {
                action: conflict_action(&file, remote.size, remote.sha256),
                report: conflict(&file, &remote),
            },
            Step::Refused { file, refusal } => {
                Outcome::Failed { file, error: format!("refused: {refusal}"), refused: true }
            }
            Step::Unverified { file } => {
                Outcome::Failed { file, error: UNVERIFIED.into(), refused: false }
            }
        };
        let done = self.done_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.progress.set_message(format!(
            "{} / {}",
            kompass_core::fifo::human_bytes(done),
            kompass_core::fifo::human_bytes(self.total_bytes)
        ));
        self.progress.inc(1);
        outcome
    }

    async fn upload(&self, file: LocalFile, overwrite: bool) -> Outcome {
        let permits =
            u32::try_from(file.size.div_ceil(1024)).unwrap_or(u32::MAX).clamp(1, MEMORY_BUDGET_KIB);
        let _memory = self.memory.clone().acquire_many_owned(permits).await.expect("never closed");
        // Checked once this transfer may start: an outage while it waited stops it too.
        if let Some(why) = self.outage.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return failed(
                &file,
                format!("not attempted: S3 became unreachable earlier in this run ({why})"),
            );
        }
        let bytes = match self.read(&file).await {
            Ok(b) => b,
            Err(why) => return failed(&file, why),
        };
        let mode = if overwrite { PutMode::Overwrite } else { PutMode::CreateOnly };
        let confirmed = match self.s3.put(&file.s3_key, bytes, file.sha256, mode).await {
            // S3 echoed the SHA-256 it checked: the object is these bytes, no HEAD needed.
            Ok(put) => put.checksum_confirmed,
            Err(S3Error::PreconditionFailed { .. }) => {
                // Someone stored this key since the listing: ours only if it is the same bytes.
                return match self.s3.head(&file.s3_key).await {
                    Ok(Some(meta)) if same(&meta, &file) => self.identical(file).await,
                    Ok(Some(meta)) => Outcome::Conflict {
                        action: conflict_action(&file, meta.size, meta.sha256.map(Sha256Digest)),
                        report: conflict_with_meta(&file, &meta),
                    },
                    Ok(None) => failed(&file, "S3 refused a create-only upload, yet holds no such object; re-run `kompass migrate`".into()),
                    Err(e) => self.s3_failure(&file, e),
                };
            }
            Err(e) => return self.s3_failure(&file, e),
        };
        match if confirmed {
            Ok(true)
        } else {
            self.s3.verify(&file.s3_key, file.size, file.sha256).await
        } {
            Ok(true) => {}
            Ok(false) => {
                return failed(
                    &file,
                    "the S3 copy does not match the local file (size or SHA-256) after the upload; the local copy is kept; re-run `kompass migrate`".into(),
                );
            }
            Err(e) => return self.s3_failure(&file, e),
        }
        match self.release_local(&file).await {
            Ok(local) => Outcome::Migrated { file, local },
            Err(why) => failed(&file, why),
        }
    }

    /// S3 holds the same bytes (checked by the caller): the local copy may go.
    async fn identical(&self, file: LocalFile) -> Outcome {
        match self.release_local(&file).await {
            Ok(local) => Outcome::Identical { file, local },
            Err(why) => failed(&file, why),
        }
    }

    fn s3_failure(&self, file: &LocalFile, e: S3Error) -> Outcome {
        if e.is_outage() {
            let mut o = self.outage.lock().unwrap_or_else(|e| e.into_inner());
            o.get_or_insert_with(|| e.to_string());
        }
        failed(file, e.to_string())
    }

    /// The file's bytes, provided they are still what was inventoried.
    async fn read(&self, file: &LocalFile) -> Result<Vec<u8>, String> {
        let root = self.root.clone();
        let f = file.clone();
        let read = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
            let Some((path, _)) = find_file(&root, &f.segments()).map_err(|e| e.to_string())?
            else {
                return Err(
                    "the local file disappeared during the migration (deleted meanwhile?)".into()
                );
            };
            std::fs::read(&path).map_err(|e| format!("could not read {}: {e}", path.display()))
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
        if read.len() as u64 != file.size || sha256(&read) != file.sha256 {
            return Err(CHANGED.into());
        }
        Ok(read)
    }

    /// Removes the local copy (unless kept on request), provided it still holds the verified
    /// bytes: a file changed since is newer than the S3 copy and stays.
    async fn release_local(&self, file: &LocalFile) -> Result<LocalFate, String> {
        if self.keep_local {
            return Ok(LocalFate::Kept);
        }
        let root = self.root.clone();
        let f = file.clone();
        let (fate, dir) = tokio::task::spawn_blocking(move || remove_if_unchanged(&root, &f))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
        if let Some(dir) = dir {
            self.removed_from.lock().unwrap_or_else(|e| e.into_inner()).insert(dir);
        }
        Ok(fate)
    }

    /// Flushes the removals of this run to disk, one fsync per directory. A removal lost to a
    /// crash before this is harmless: the next run finds the file identical in S3 and removes
    /// it again. Flushing each removal as it happened cost one fsync per file (about a third
    /// of the wall time of migrating 10,000 small files).
    pub async fn sync_removals(&self) -> Result<(), String> {
        let dirs =
            std::mem::take(&mut *self.removed_from.lock().unwrap_or_else(|e| e.into_inner()));
        tokio::task::spawn_blocking(move || {
            dirs.iter().try_for_each(|dir| sync_dir(dir).map_err(|e| e.to_string()))
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }
}

const CHANGED: &str = "the local file changed during the migration, so it is kept as the newer copy; re-run `kompass migrate`";

/// Removes the file if it still holds the verified bytes; with the directory it was removed
/// from, for [`Transfers::sync_removals`].
fn remove_if_unchanged(
    root: &std::path::Path,
    f: &LocalFile,
) -> Result<(LocalFate, Option<PathBuf>), String> {
    let Some((path, meta)) = find_file(root, &f.segments()).map_err(|e| e.to_string())? else {
        return Ok((LocalFate::Gone, None));
    };
    if meta.len() != f.size {
        return Err(CHANGED.into());
    }
    match sha256_file(&path) {
        Ok(sha) if sha == f.sha256 => {}
        Ok(_) => return Err(CHANGED.into()),
        Err(LocalError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok((LocalFate::Gone, None));
        }
        Err(e) => return Err(e.to_string()),
    }
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((LocalFate::Gone, None)),
        Err(e) => {
            return Err(format!(
                "uploaded and verified, but could not remove the local copy {}: {e}; remove it by hand or re-run `kompass migrate`",
                path.display()
            ));
        }
    }
    Ok((LocalFate::Removed, path.parent().map(PathBuf::from)))
}

fn same(meta: &ObjectMeta, file: &LocalFile) -> bool {
    meta.size == file.size && meta.sha256 == Some(file.sha256)
}

fn failed(file: &LocalFile, error: String) -> Outcome {
    Outcome::Failed { file: file.clone(), error, refused: false }
}

fn local_side(file: &LocalFile) -> Side {
    Side {
        size: file.size,
        sha256: Some(hex::encode(file.sha256)),
        last_modified: rfc3339_ms(file.last_modified_ms as i64),
    }
}

/// The conflict report for a file and the S3 object of its key.
pub fn conflict(file: &LocalFile, remote: &ObjectInfo) -> Conflict {
    Conflict {
        key: file.s3_key.clone(),
        path: file.path.display().to_string(),
        local: local_side(file),
        remote: Side {
            size: remote.size,
            sha256: remote.sha256.map(|d| d.to_hex()),
            last_modified: rfc3339_ms(remote.last_modified_ms),
        },
    }
}

fn conflict_with_meta(file: &LocalFile, meta: &ObjectMeta) -> Conflict {
    Conflict {
        key: file.s3_key.clone(),
        path: file.path.display().to_string(),
        local: local_side(file),
        remote: Side {
            size: meta.size,
            sha256: meta.sha256.map(hex::encode),
            last_modified: rfc3339_ms(meta.last_modified_ms as i64),
        },
    }
}
