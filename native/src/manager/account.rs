//! Whole-user operations: erase every trace of a user, export every file of a user.
//!
//! These are the functions the CLI (`kompass erase`, `kompass export`) and the HTTP API
//! (`DELETE /api/me`, `GET /api/export`) both call, and that the Python package can call.
//! An erase removes, in this order: the user's pending-sync journal entries (so a replay never
//! brings a file back), local files, S3 objects under `users/{user}/`, then the cached
//! inventory rows and rider summaries. S3 deletions stop at the first outage; the report
//! says what is left, and the next run finishes (an erase is idempotent).

use std::collections::BTreeMap;
use std::io::{Seek, Write};

use kompass_core::key::{DataType, ObjectKey, UserId};
use serde::Serialize;

use super::{Backend, Manager, ManagerError, now_ms, rfc3339_ms, sha256};
use crate::store::s3::RequestCounts;

/// One file an erase removed (or would remove, or could not remove yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removed {
    /// The object key (`users/{user}/{type}/{name}`).
    pub key: String,
    /// Where that copy was.
    pub backend: Backend,
    /// Its size in bytes.
    pub size: u64,
}

/// What an erase did: the `erase` JSON shape (`user`, `removed`, `bytes`, `requests`) plus
/// whether it finished.
#[derive(Debug, Clone, Serialize)]
pub struct EraseReport {
    /// The user erased.
    pub user: String,
    /// Only planned: nothing was changed.
    pub dry_run: bool,
    /// Every copy removed (or, with `dry_run`, that would be removed).
    pub removed: Vec<Removed>,
    /// Bytes of `removed`.
    pub bytes: u64,
    /// S3 requests this erase sent.
    pub requests: u64,
    /// Nothing of the user is left anywhere (always false for a dry run with something to
    /// remove).
    pub complete: bool,
    /// Copies known to be left (S3 failed part way); run the erase again.
    pub remaining: Vec<Removed>,
    /// S3 is configured but could not be reached; `remaining` may then be incomplete.
    pub degraded: bool,
    /// Why S3 work is left, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Pending-sync journal entries of the user dropped.
    pub journal_entries: usize,
    /// Cached inventory rows and rider summaries of the user dropped.
    pub cache_rows: usize,
}

/// One file in an export's `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportEntry {
    /// The object key.
    pub key: String,
    /// The path inside the zip: `{data_type}/{filename}`.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
    /// Last modification of the copy exported, RFC 3339 UTC.
    pub last_modified: String,
    /// Which backend held the copy exported (the newest one).
    pub backend: Backend,
}

/// An export's `manifest.json` (also the `export` JSON shape, with `out` added by the CLI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportManifest {
    /// The user exported.
    pub user: String,
    /// When, RFC 3339 UTC.
    pub exported_at: String,
    /// Every file, by key.
    pub files: Vec<ExportEntry>,
    /// Total bytes of `files`.
    pub bytes: u64,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Storage failed (S3 unreachable: nothing partial is handed out).
    #[error(transparent)]
    Manager(#[from] ManagerError),
    /// Writing the zip failed.
    #[error("could not write the zip: {0}")]
    Zip(#[from] zip::result::ZipError),
    /// Writing the output failed.
    #[error("could not write the export: {0}")]
    Io(#[from] std::io::Error),
}

/// The newest copy of one file.
struct Copy {
    key: ObjectKey,
    last_modified_ms: i64,
    backend: Backend,
}

fn total(c: RequestCounts) -> u64 {
    c.put + c.list + c.get + c.head + c.delete
}

impl Manager {
    /// Removes every trace of `user` (see the module docs); with `dry_run`, only reports what
    /// would go. Other users' data is never touched: every key removed is under the user's
    /// prefix or the user's local folders.
    pub async fn erase_user(
        &self,
        user: &UserId,
        dry_run: bool,
    ) -> Result<EraseReport, ManagerError> {
        let before = self.s3.as_ref().map(|s| total(s.counts())).unwrap_or(0);
        let prefix = kompass_core::key::user_prefix(user);
        let mut report = EraseReport {
            user: user.to_string(),
            dry_run,
            removed: Vec::new(),
            bytes: 0,
            requests: 0,
            complete: false,
            remaining: Vec::new(),
            degraded: false,
            reason: None,
            journal_entries: 0,
            cache_rows: 0,
        };
        let local: Vec<Removed> = {
            let mut v = Vec::new();
            for dt in DataType::ALL.into_iter().filter(|d| d.allows_user()) {
                for e in self.local.list(Some(user), dt)? {
                    v.push(Removed { key: e.key.s3_key(), backend: Backend::Local, size: e.size });
                }
            }
            v
        };
        let remote = match &self.s3 {
            None => Some(Vec::new()),
            Some(s3) => {
                let listed = s3.list(&prefix).await;
                self.record_requests()?;
                match listed {
                    Ok(l) => Some(
                        l.into_iter()
                            .map(|m| Removed { key: m.key, backend: Backend::S3, size: m.size })
                            .collect(),
                    ),
                    Err(e) if e.is_outage() => {
                        report.degraded = true;
                        report.reason = Some(format!(
                            "S3 could not be listed ({e}); the user's S3 objects are still there: run the erase again when S3 is back"
                        ));
                        None
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let pending: Vec<ObjectKey> = self
            .journal
            .pending()?
            .into_iter()
            .map(|p| p.key)
            .filter(|k| k.owner() == Some(user))
            .collect();
        // Cached inventory rows of the user's S3 objects, and the user's open upload grants
        // (a grant must not bring a file back after the erase).
        let cached: Vec<String> = self.state.read(|tx| {
            Ok::<_, ManagerError>(
                tx.all_objects()?
                    .into_iter()
                    .map(|(k, _, _)| k)
                    .filter(|k| k.starts_with(&prefix))
                    .collect(),
            )
        })?;
        let now = kompass_core::time::UnixMs(crate::manager::now_ms());
        let reserved: Vec<ObjectKey> = self.state.write(|tx| {
            Ok::<_, ManagerError>(
                tx.reservations(now)?
                    .into_iter()
                    .map(|r| r.key)
                    .filter(|k| k.owner() == Some(user))
                    .collect(),
            )
        })?;
        let summaries = crate::rider::summary_keys(self, &prefix)?;
        report.journal_entries = pending.len();

        if dry_run {
            report.removed = local;
            report.removed.extend(remote.unwrap_or_default());
            report.cache_rows = cached.len() + reserved.len() + summaries;
            report.bytes = report.removed.iter().map(|r| r.size).sum();
            report.complete = report.removed.is_empty() && !report.degraded && pending.is_empty();
            return Ok(report);
        }

        // 1. The journal: a replay must never upload the user's data again; the old journal
        // kept aside after its import keeps no line of the user either.
        if !pending.is_empty() {
            self.journal.complete(&pending)?;
        }
        self.journal.forget_imported(user)?;
        // 2. Local copies, then the user's (now empty) folders.
        for r in local {
            if self.local.delete(&ObjectKey::from_s3_key(&r.key)?)? {
                report.removed.push(r);
            }
        }
        for dt in DataType::ALL.into_iter().filter(|d| d.allows_user()) {
            // Fails harmlessly when the folder is absent or still holds something.
            let _ = std::fs::remove_dir(self.local.root().join(dt.as_str()).join(user.as_str()));
        }
        // 3. S3, stopping at the first outage.
        let mut gone: Vec<String> = Vec::new();
        if let (Some(s3), Some(remote)) = (&self.s3, remote) {
            let mut rest = remote.into_iter();
            for r in rest.by_ref() {
                match s3.delete(&r.key).await {
                    Ok(()) => {
                        gone.push(r.key.clone());
                        report.removed.push(r);
                    }
                    Err(e) if e.is_outage() => {
                        report.degraded = true;
                        report.reason = Some(format!(
                            "S3 failed part way ({e}); run the erase again to remove what is left"
                        ));
                        report.remaining.push(r);
                        break;
                    }
                    Err(e) => {
                        self.record_requests()?;
                        self.state.write(|tx| {
                            gone.iter()
                                .try_for_each(|k| tx.remove_object(k))
                                .map_err(ManagerError::from)
                        })?;
                        return Err(e.into());
                    }
                }
            }
            report.remaining.extend(rest);
            self.record_requests()?;
        }
        // 4. Cached state: rows of objects now gone (all of them when the listing worked and
        // nothing is left).
        let forget: Vec<String> =
            if report.degraded { gone } else { cached.iter().cloned().chain(gone).collect() };
        let before_rows = self.state.write(|tx| {
            for k in &forget {
                tx.remove_object(k)?;
            }
            for k in &reserved {
                tx.release(k)?;
            }
            // The local index names the user's files and folders: they go too (a local file
            // left behind by a failed removal is indexed again by the next save).
            for t in DataType::ALL.into_iter().filter(|t| t.allows_user()) {
                tx.local().remove_scope(Some(user), t.as_str())?;
                tx.set_local_dir(&format!("{t}/{user}"), None)?;
            }
            Ok::<_, ManagerError>(forget.len() + reserved.len())
        })?;
        report.cache_rows = before_rows + crate::rider::forget_summaries(self, &prefix)?;
        // The deleted rows' old pages still sit in the WAL until a checkpoint.
        if let Err(e) = self.state.checkpoint() {
            tracing::warn!(
                "the state database keeps erased rows in its WAL until the next checkpoint: {e}"
            );
        }
        report.bytes = report.removed.iter().map(|r| r.size).sum();
        report.requests = self.s3.as_ref().map(|s| total(s.counts())).unwrap_or(0) - before;
        report.complete = !report.degraded && report.remaining.is_empty();
        Ok(report)
    }

    /// The newest copy of each of `user`'s files. `Err` when S3 is configured but fails: an
    /// export never silently leaves out what S3 holds.
    async fn newest_copies(&self, user: &UserId) -> Result<Vec<Copy>, ManagerError> {
        let mut by_key: BTreeMap<String, Copy> = BTreeMap::new();
        let pending: Vec<String> =
            self.journal.pending()?.into_iter().map(|p| p.key.s3_key()).collect();
        for dt in DataType::ALL.into_iter().filter(|d| d.allows_user()) {
            for e in self.local.list(Some(user), dt)? {
                by_key.insert(
                    e.key.s3_key(),
                    Copy {
                        last_modified_ms: e.last_modified_ms as i64,
                        backend: Backend::Local,
                        key: e.key,
                    },
                );
            }
        }
        let remote = match &self.s3 {
            Some(_) => self.remote_copies(user).await?,
            None => Vec::new(),
        };
        for (k, _size, ms) in remote {
            // A copy queued for sync is newer than whatever S3 holds.
            if pending.contains(&k.s3_key()) && by_key.contains_key(&k.s3_key()) {
                continue;
            }
            if by_key.get(&k.s3_key()).is_some_and(|l| l.last_modified_ms > ms) {
                continue;
            }
            by_key.insert(k.s3_key(), Copy { key: k, last_modified_ms: ms, backend: Backend::S3 });
        }
        Ok(by_key.into_values().collect())
    }

    /// `user`'s S3 objects in the key layout: key, size, last modified (unix ms).
    async fn remote_copies(
        &self,
        user: &UserId,
    ) -> Result<Vec<(ObjectKey, u64, i64)>, ManagerError> {
        let s3 = self.require_s3()?;
        let listed = s3.list(&kompass_core::key::user_prefix(user)).await;
        self.record_requests()?;
        let mut out = Vec::new();
        for m in listed? {
            // Only files in the key layout can be named `{type}/{name}` in the zip.
            let Ok(k) = ObjectKey::from_s3_key(&m.key) else {
                tracing::warn!("export: {} is outside the key layout, left out", m.key);
                continue;
            };
            if k.owner() != Some(user) {
                continue;
            }
            out.push((k, m.size, m.last_modified_ms as i64));
        }
        Ok(out)
    }

    /// Writes a zip of every file of `user` (`{data_type}/{filename}`, the newest copy of
    /// each) and a `manifest.json` to `out`, and returns the manifest.
    pub async fn export_user<W: Write + Seek>(
        &self,
        user: &UserId,
        out: W,
    ) -> Result<ExportManifest, ExportError> {
        use zip::write::SimpleFileOptions;
        let copies = self.newest_copies(user).await?;
        let mut zip = zip::ZipWriter::new(out);
        let options = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(false);
        let mut files = Vec::with_capacity(copies.len());
        for c in copies {
            let bytes = match c.backend {
                Backend::S3 => {
                    let got = self.require_s3()?.get(&c.key.s3_key()).await;
                    self.record_requests()?;
                    got.map_err(ManagerError::from)?
                }
                Backend::Local => self.local.get(&c.key).map_err(ManagerError::from)?,
            };
            let path = format!("{}/{}", c.key.data_type().as_str(), c.key.name().as_str());
            zip.start_file(path.as_str(), options)?;
            zip.write_all(&bytes)?;
            files.push(ExportEntry {
                key: c.key.s3_key(),
                path,
                size: bytes.len() as u64,
                sha256: hex::encode(sha256(&bytes)),
                last_modified: rfc3339_ms(c.last_modified_ms),
                backend: c.backend,
            });
        }
        let manifest = ExportManifest {
            user: user.to_string(),
            exported_at: rfc3339_ms(now_ms()),
            bytes: files.iter().map(|f| f.size).sum(),
            files,
        };
        zip.start_file("manifest.json", options)?;
        let json = serde_json::to_vec_pretty(&manifest).map_err(std::io::Error::other)?;
        zip.write_all(&json)?;
        zip.finish()?;
        Ok(manifest)
    }
}
