//! The storage manager: S3 first when configured, local disk otherwise or while S3 is down.
//!
//! The core decides (admission, cleanup plans); the manager gathers the facts (inventories,
//! usage) and carries the decisions out. A save that cannot reach S3 lands locally and is
//! recorded in the pending-sync journal, which `kompass migrate` (or the next save) replays.

pub mod account;
pub mod inventory;

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use kompass_core::config::{Config, MissingSecret};
use kompass_core::fifo::{self, CleanupPlan, Deletion, Policy};
use kompass_core::inventory::ObjectInfo;
use kompass_core::key::{DataType, KeyError, ObjectKey, UserId};
use kompass_core::quota::{self, Freeable, Refusal, RequestKind, RequestLedger, UploadRequest, Verdict};
use kompass_core::scrub::{NotScrubbed, PseudonymKey, PseudonymKeyError, check_scrubbed};
use serde::Serialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::journal::Journal;
use crate::state::{OnCorrupt, StateFile};
use crate::store::local::{LocalError, LocalStore};
use crate::store::s3::{PutMode, RequestCounts, S3Error, S3Options, S3Store};
use inventory::{Cached, InventoryCache, object_info};

/// Objects deleted by FIFO cleanup in this process (S3 and local), for `/metrics`.
pub static CLEANUP_DELETIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Where a piece of data was stored or found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The S3 bucket.
    S3,
    /// The local data directory.
    Local,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::S3 => "S3",
            Backend::Local => "local storage",
        })
    }
}

/// Why a storage operation failed.
#[derive(Debug, Error)]
pub enum ManagerError {
    /// A user id, data type or file name was invalid.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The upload breaks a limit; nothing was stored or deleted.
    #[error("refused: {0}")]
    Refused(Refusal),
    /// Nothing is stored under that key.
    #[error("{key} not found in {where_}: check the user, type and name (`kompass list`)")]
    NotFound {
        /// The object key.
        key: String,
        /// Where it was looked for.
        where_: &'static str,
    },
    /// The local data directory failed.
    #[error(transparent)]
    Local(#[from] LocalError),
    /// S3 failed in a way that falling back to local storage would not fix (e.g. credentials).
    #[error(transparent)]
    S3(#[from] S3Error),
    /// The cleanup policy from the configuration is invalid.
    #[error(transparent)]
    Policy(#[from] fifo::PolicyError),
    /// A create-only save found the key taken (in S3 or locally); nothing was written.
    #[error("{key} already exists in {where_}: choose another name, or overwrite it with `kompass save`")]
    Exists {
        /// The object key.
        key: String,
        /// Where it was found.
        where_: Backend,
    },
    /// A fitness save without `KOMPASS_PSEUDONYM_KEY`: rider data is stored only under the
    /// key, so nothing was stored.
    #[error(transparent)]
    MissingPseudonymKey(#[from] MissingSecret),
    /// The configured pseudonym key or key id is not accepted by the scrubber.
    #[error("KOMPASS_PSEUDONYM_KEY / KOMPASS_PSEUDONYM_KEY_ID cannot be used: {0}")]
    BadPseudonymKey(#[from] PseudonymKeyError),
    /// A fitness save of a document the keyed scrub would change (the policy's
    /// `StoreIfScrubbed` rule); refused before any request or deletion.
    #[error(transparent)]
    NotScrubbed(#[from] NotScrubbed),
    /// S3 storage is needed for this command but not enabled.
    #[error(
        "S3 storage is not enabled: set S3_STORAGE_ENABLED=true with AWS_S3_BUCKET, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (see `kompass config`)"
    )]
    S3Disabled,
}

/// The answer to a save (the `save` JSON shape, plus what cleanup did).
#[derive(Debug, Clone, Serialize)]
pub struct SaveOutcome {
    /// Where it landed.
    pub backend: Backend,
    /// Its object key.
    pub key: String,
    /// Its size.
    pub bytes: u64,
    /// Older files removed by FIFO cleanup to make room.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cleaned: Vec<Deletion>,
    /// Why it landed locally although S3 is configured (an outage); it is queued for sync.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_sync: Option<String>,
}

/// The answer to [`Manager::precheck`]: the upload is admitted.
#[derive(Debug, Clone, Serialize)]
pub struct Precheck {
    /// Where a save would land now.
    pub backend: Backend,
    /// Older files FIFO cleanup removes to make room, oldest first (run before the upload).
    pub cleanup: Vec<Deletion>,
}

/// One stored file in a listing (the `list` JSON shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    /// The file name.
    pub name: String,
    /// The object key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, RFC 3339 UTC.
    pub last_modified: String,
    /// Where this copy is.
    pub backend: Backend,
    #[serde(skip)]
    last_modified_ms: i64,
}

/// The current time in unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// RFC 3339 UTC for unix milliseconds.
pub fn rfc3339_ms(ms: i64) -> String {
    kompass_core::presign::rfc3339_utc((ms.max(0) / 1000) as u64)
}

/// SHA-256 of a byte string.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Local disk plus, when configured, S3; with the journal, the request ledger and the cache.
pub struct Manager {
    config: Config,
    local: LocalStore,
    s3: Option<S3Store>,
    journal: Journal,
    ledger: StateFile<Option<RequestLedger>>,
    cache: StateFile<InventoryCache>,
    /// Request counts already written to the ledger.
    recorded: Mutex<RequestCounts>,
}

impl Manager {
    /// Opens the data directory and, when S3 is enabled, the S3 client.
    pub fn open(config: Config) -> Result<Self, ManagerError> {
        Self::open_with(config, S3Options::default())
    }

    /// Like [`Manager::open`] with explicit S3 client options (timeouts, retries).
    pub fn open_with(config: Config, options: S3Options) -> Result<Self, ManagerError> {
        let dir = std::path::PathBuf::from(&config.data_directory);
        let s3 = match &config.s3 {
            Some(c) => {
                let target = c.target().map_err(S3Error::from)?;
                let creds = c.signing_credentials();
                Some(S3Store::new(target, creds, options)?)
            }
            None => None,
        };
        Ok(Manager {
            local: LocalStore::new(&dir),
            journal: Journal::open(&dir)?,
            ledger: StateFile::open(&dir, "requests", OnCorrupt::StartFresh)?,
            cache: StateFile::open(&dir, "s3-inventory", OnCorrupt::StartFresh)?,
            recorded: Mutex::new(RequestCounts::default()),
            config,
            s3,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The local store.
    pub fn local(&self) -> &LocalStore {
        &self.local
    }

    /// The S3 store, when configured.
    pub fn s3(&self) -> Option<&S3Store> {
        self.s3.as_ref()
    }

    /// The S3 store, or the error telling the operator how to enable it.
    pub fn require_s3(&self) -> Result<&S3Store, ManagerError> {
        self.s3.as_ref().ok_or(ManagerError::S3Disabled)
    }

    /// The pending-sync journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Where new data goes first.
    pub fn preferred_backend(&self) -> Backend {
        if self.s3.is_some() { Backend::S3 } else { Backend::Local }
    }

    /// The cleanup policy from the configuration.
    pub fn policy(&self) -> Policy {
        Policy {
            threshold_percent: self.config.limits.cleanup_threshold_percent,
            min_files_to_keep: self.config.min_files_to_keep as usize,
            min_age_ms: None,
        }
    }

    /// The FIFO limits from the configuration.
    pub fn fifo_limits(&self) -> fifo::Limits {
        fifo::Limits {
            user_quota_bytes: self.config.limits.max_user_bytes,
            bucket_bytes: self.config.limits.max_bucket_bytes,
        }
    }

    fn bucket_id(s3: &S3Store) -> String {
        s3.target().bucket_url()
    }

    /// Writes the requests sent since the last call into the monthly ledger.
    pub fn record_requests(&self) -> Result<(), ManagerError> {
        let Some(s3) = &self.s3 else { return Ok(()) };
        let now = s3.counts();
        let delta = {
            let mut seen = self.recorded.lock().unwrap_or_else(|e| e.into_inner());
            let d = RequestCounts {
                put: now.put - seen.put,
                list: now.list - seen.list,
                get: now.get - seen.get,
                head: now.head - seen.head,
                delete: now.delete - seen.delete,
            };
            *seen = now;
            d
        };
        if delta == RequestCounts::default() {
            return Ok(());
        }
        let at = now_ms().max(0) as u64;
        self.ledger.update(|l| {
            let l = l.get_or_insert_with(|| RequestLedger::starting_at(at));
            for (kind, n) in [
                (RequestKind::Put, delta.put),
                (RequestKind::List, delta.list),
                (RequestKind::Get, delta.get),
                (RequestKind::Head, delta.head),
                (RequestKind::Delete, delta.delete),
            ] {
                if n > 0 {
                    l.record_many(kind, n, at);
                }
            }
        })?;
        Ok(())
    }

    /// This month's request ledger (rolled over to the current month).
    pub fn ledger(&self) -> Result<RequestLedger, ManagerError> {
        let now = now_ms().max(0) as u64;
        let mut l = self.ledger.load()?.unwrap_or_else(|| RequestLedger::starting_at(now));
        l.advance_to(now);
        Ok(l)
    }

    /// The bucket's inventory: the cache while fresh (or `refresh` false), else a full listing.
    pub async fn s3_inventory(&self, force_refresh: bool) -> Result<Vec<ObjectInfo>, ManagerError> {
        let s3 = self.require_s3()?;
        let id = Self::bucket_id(s3);
        let cached = self.cache.load()?;
        if !force_refresh && cached.is_fresh(&id, now_ms()) {
            return Ok(cached.to_objects());
        }
        let listed = s3.list("").await;
        self.record_requests()?;
        let listed = listed?;
        let fresh = InventoryCache {
            bucket: id,
            refreshed_at_ms: now_ms(),
            objects: listed
                .iter()
                .map(|m| {
                    (m.key.clone(), Cached { size: m.size, last_modified_ms: m.last_modified_ms as i64 })
                })
                .collect(),
        };
        let objects = fresh.to_objects();
        self.cache.save(&fresh)?;
        Ok(objects)
    }

    /// Records in the cache what this process just wrote or deleted.
    fn cache_apply(&self, put: Option<(&str, u64)>, deleted: &[String]) -> Result<(), ManagerError> {
        let Some(s3) = &self.s3 else { return Ok(()) };
        let id = Self::bucket_id(s3);
        self.cache.update(|c| {
            if c.bucket != id {
                return;
            }
            for k in deleted {
                c.objects.remove(k);
            }
            if let Some((k, size)) = put {
                c.objects.insert(k.to_owned(), Cached { size, last_modified_ms: now_ms() });
            }
        })?;
        Ok(())
    }

    /// Records in the cache objects this process stored in bulk (one cache rewrite for all).
    pub fn note_stored(&self, objects: &[(String, u64)]) -> Result<(), ManagerError> {
        let Some(s3) = &self.s3 else { return Ok(()) };
        if objects.is_empty() {
            return Ok(());
        }
        let id = Self::bucket_id(s3);
        let now = now_ms();
        self.cache.update(|c| {
            if c.bucket != id {
                return;
            }
            for (k, size) in objects {
                c.objects.insert(k.clone(), Cached { size: *size, last_modified_ms: now });
            }
        })?;
        Ok(())
    }

    /// The local data directory's inventory as core facts.
    pub fn local_inventory(&self) -> Result<Vec<ObjectInfo>, ManagerError> {
        let inv = self.local.inventory()?;
        Ok(inv
            .entries
            .iter()
            .map(|e| object_info(&e.key.s3_key(), e.size, e.last_modified_ms as i64, None))
            .collect())
    }

    /// Stores `bytes` under `key`: limits first, then cleanup if needed, then S3 (or local).
    pub async fn save(&self, key: &ObjectKey, bytes: &[u8]) -> Result<SaveOutcome, ManagerError> {
        self.save_mode(key, bytes, PutMode::Overwrite).await
    }

    /// Like [`Manager::save`], but never replaces anything: [`ManagerError::Exists`] when `key`
    /// is taken in S3 or locally. Known copies are refused before any request or cleanup; a
    /// copy another writer made meanwhile is caught by a create-only PUT (`If-None-Match: *`)
    /// or, locally, by linking the file into place.
    pub async fn save_new(&self, key: &ObjectKey, bytes: &[u8]) -> Result<SaveOutcome, ManagerError> {
        self.save_mode(key, bytes, PutMode::CreateOnly).await
    }

    async fn save_mode(&self, key: &ObjectKey, bytes: &[u8], mode: PutMode) -> Result<SaveOutcome, ManagerError> {
        let size = bytes.len() as u64;
        // The file size limit is checked before any request or deletion.
        if size > self.config.limits.max_file_bytes {
            return Err(ManagerError::Refused(Refusal::FileTooLarge {
                size,
                limit: self.config.limits.max_file_bytes,
            }));
        }
        // Rider data is stored only scrubbed with the pseudonym key: every save of fitness data
        // passes the policy's rule here, before any request or deletion.
        if key.data_type() == DataType::Fitness {
            self.check_rider_data(bytes)?;
        }
        let s3_key = key.s3_key();
        let inventory = match &self.s3 {
            Some(_) => match self.s3_inventory(false).await {
                Ok(inv) => Some(inv),
                Err(ManagerError::S3(e)) if e.is_outage() => {
                    return self.save_pending(key, bytes, &e, mode);
                }
                Err(e) => return Err(e),
            },
            None => None,
        };
        let on_s3 = inventory.is_some();
        let inventory = match inventory {
            Some(inv) => inv,
            None => self.local_inventory()?,
        };
        if mode == PutMode::CreateOnly {
            let taken = if inventory.iter().any(|o| o.key == s3_key) {
                Some(if on_s3 { Backend::S3 } else { Backend::Local })
            } else {
                // Locally a copy may also wait for sync, or be a legacy file.
                self.local.head(key)?.map(|_| Backend::Local)
            };
            if let Some(where_) = taken {
                return Err(ManagerError::Exists { key: s3_key, where_ });
            }
        }
        let plan = self.admit(key, size, &inventory)?;

        let cleaned = plan.map(|p| p.deletions).unwrap_or_default();
        if !on_s3 {
            self.delete_planned_local(&cleaned)?;
            self.put_local(key, bytes, mode)?;
            return Ok(SaveOutcome { backend: Backend::Local, key: s3_key, bytes: size, cleaned, pending_sync: None });
        }
        let s3 = self.require_s3()?;
        // Cleanup runs before the PUT: the admission may depend on the room it makes.
        match self.delete_planned_s3(&cleaned).await {
            Ok(()) => {}
            // S3 went down after the inventory was cached: keep the data, as for a failed PUT.
            Err(ManagerError::S3(e)) if e.is_outage() => return self.save_pending(key, bytes, &e, mode),
            Err(e) => return Err(e),
        }
        let put = s3.put(&s3_key, bytes.to_vec(), sha256(bytes), mode).await;
        self.record_requests()?;
        match put {
            Ok(_) => {
                self.cache_apply(Some((&s3_key, size)), &[])?;
                Ok(SaveOutcome { backend: Backend::S3, key: s3_key, bytes: size, cleaned, pending_sync: None })
            }
            Err(e) if e.is_outage() => {
                let mut out = self.save_pending(key, bytes, &e, mode)?;
                out.cleaned = cleaned;
                Ok(out)
            }
            Err(S3Error::PreconditionFailed { key }) => Err(ManagerError::Exists { key, where_: Backend::S3 }),
            Err(e) => Err(e.into()),
        }
    }

    /// The policy's rule for a save of fitness data (`RiderHandling::StoreIfScrubbed`): only a
    /// document that the keyed scrub leaves unchanged is stored; without the key, nothing.
    /// `kompass rider save`, `POST /api/rider` and the audit's `--fix` pass it with what they
    /// scrubbed.
    fn check_rider_data(&self, bytes: &[u8]) -> Result<(), ManagerError> {
        let k = self.config.pseudonym_key()?;
        let key = PseudonymKey::new(k.id, k.key.expose_bytes())?;
        check_scrubbed(bytes, &key)?;
        Ok(())
    }

    /// Admission without storing: where an upload of `size` bytes to `key` would go and the
    /// cleanup to run first. For uploads that bypass [`Manager::save`] (a presigned browser
    /// PUT straight to S3); the same limits, inventory and plan as a save.
    pub async fn precheck(&self, key: &ObjectKey, size: u64) -> Result<Precheck, ManagerError> {
        if size > self.config.limits.max_file_bytes {
            return Err(ManagerError::Refused(Refusal::FileTooLarge {
                size,
                limit: self.config.limits.max_file_bytes,
            }));
        }
        let (backend, inventory) = match &self.s3 {
            Some(_) => match self.s3_inventory(false).await {
                Ok(inv) => (Backend::S3, inv),
                // A save now would land locally and be queued: check against local disk.
                Err(ManagerError::S3(e)) if e.is_outage() => (Backend::Local, self.local_inventory()?),
                Err(e) => return Err(e),
            },
            None => (Backend::Local, self.local_inventory()?),
        };
        let cleanup = self.admit(key, size, &inventory)?.map(|p| p.deletions).unwrap_or_default();
        Ok(Precheck { backend, cleanup })
    }

    /// Counts an S3 upload this installation granted but did not send itself (a presigned
    /// PUT) in the cached inventory, so the next admission sees it before the cache refreshes.
    pub fn record_granted_put(&self, key: &ObjectKey, size: u64) -> Result<(), ManagerError> {
        self.cache_apply(Some((&key.s3_key(), size)), &[])
    }

    /// Decides admission against `inventory`, returning the cleanup plan to run first (if any).
    fn admit(
        &self,
        key: &ObjectKey,
        size: u64,
        inventory: &[ObjectInfo],
    ) -> Result<Option<CleanupPlan>, ManagerError> {
        let s3_key = key.s3_key();
        let user = key.owner().map(UserId::as_str);
        let replaces = inventory.iter().find(|o| o.key == s3_key).map_or(0, |o| o.size);
        let mut usage = quota::Usage::default();
        for o in inventory {
            usage.bucket_bytes += o.size;
            if user.is_some() && o.user.as_deref() == user {
                usage.user_bytes += o.size;
            }
        }
        // Plan as if the upload were already there (the newest file, so never chosen): the
        // plan then frees room for it and counts it among the files kept.
        let mut after: Vec<ObjectInfo> = inventory.iter().filter(|o| o.key != s3_key).cloned().collect();
        after.push(object_info(&s3_key, size, i64::MAX, None));
        let plan = if !self.config.auto_cleanup {
            None
        } else {
            let limits = self.fifo_limits();
            let policy = self.policy();
            let bucket_due = policy.threshold_reached(usage.bucket_bytes - replaces + size, limits.bucket_bytes);
            let p = match user {
                _ if bucket_due => fifo::plan_bucket(&after, &policy, &limits, now_ms())?,
                Some(u) => fifo::plan_user(&after, u, &policy, &limits, now_ms())?,
                None => CleanupPlan::default(),
            };
            Some(p)
        };
        let freeable = match &plan {
            Some(p) => {
                let user_freed: u64 = p
                    .deletions
                    .iter()
                    .filter(|d| user.is_some() && object_info(&d.key, 0, 0, None).user.as_deref() == user)
                    .map(|d| d.size)
                    .sum();
                Freeable { user_bytes: user_freed, bucket_bytes: p.bytes_freed }
            }
            None => Freeable::NONE,
        };
        let upload = UploadRequest::new(size, user).replacing(replaces);
        match quota::admit(&upload, &usage, &self.config.limits, &freeable) {
            Verdict::Refuse(r) => Err(ManagerError::Refused(r)),
            Verdict::Admit => Ok(None),
            Verdict::AdmitCleanupDue(_) | Verdict::AdmitAfterCleanup(_) => Ok(plan),
        }
    }

    /// Writes locally: replacing, or only when the key is free.
    fn put_local(&self, key: &ObjectKey, bytes: &[u8], mode: PutMode) -> Result<(), ManagerError> {
        match mode {
            PutMode::Overwrite => {
                self.local.put(key, bytes)?;
            }
            PutMode::CreateOnly => {
                if self.local.put_new(key, bytes)?.is_none() {
                    return Err(ManagerError::Exists { key: key.s3_key(), where_: Backend::Local });
                }
            }
        }
        Ok(())
    }

    /// Lands a save locally while S3 is unreachable, and queues it for sync.
    fn save_pending(&self, key: &ObjectKey, bytes: &[u8], why: &S3Error, mode: PutMode) -> Result<SaveOutcome, ManagerError> {
        self.put_local(key, bytes, mode)?;
        self.journal.record(key, bytes.len() as u64, &sha256(bytes), now_ms().max(0) as u64)?;
        tracing::info!("S3 unreachable, saved {} locally and queued it for sync: {why}", key.s3_key());
        Ok(SaveOutcome {
            backend: Backend::Local,
            key: key.s3_key(),
            bytes: bytes.len() as u64,
            cleaned: Vec::new(),
            pending_sync: Some(why.to_string()),
        })
    }

    /// Carries out planned deletions in S3 and keeps the cache in step.
    pub async fn delete_planned_s3(&self, deletions: &[Deletion]) -> Result<(), ManagerError> {
        if deletions.is_empty() {
            return Ok(());
        }
        let s3 = self.require_s3()?;
        let mut done = Vec::new();
        let mut failure = None;
        for d in deletions {
            match s3.delete(&d.key).await {
                Ok(()) => done.push(d.key.clone()),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        CLEANUP_DELETIONS.fetch_add(done.len() as u64, std::sync::atomic::Ordering::Relaxed);
        self.record_requests()?;
        self.cache_apply(None, &done)?;
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Carries out planned deletions in the local data directory.
    pub fn delete_planned_local(&self, deletions: &[Deletion]) -> Result<(), ManagerError> {
        for d in deletions {
            if self.local.delete(&ObjectKey::from_s3_key(&d.key)?)? {
                CLEANUP_DELETIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Reads an object: the newest copy when both S3 and local disk hold one.
    pub async fn load(&self, key: &ObjectKey) -> Result<(Vec<u8>, Backend), ManagerError> {
        let local_meta = self.local.head(key)?;
        if let Some(s3) = &self.s3 {
            let s3_key = key.s3_key();
            // A copy queued for sync is newer than whatever S3 holds.
            let pending = local_meta.is_some()
                && self.journal.pending()?.iter().any(|p| p.key.s3_key() == s3_key);
            if !pending {
                let remote = match &local_meta {
                    // Both may exist (not migrated yet): compare ages, costing one HEAD.
                    Some(local) => match s3.head(&s3_key).await {
                        Ok(Some(m)) if m.last_modified_ms >= local.last_modified_ms => Some(true),
                        Ok(_) => None,
                        Err(e) if e.is_outage() => None,
                        Err(e) => return Err(e.into()),
                    },
                    None => Some(true),
                };
                if remote.is_some() {
                    let got = s3.get(&s3_key).await;
                    self.record_requests()?;
                    match got {
                        Ok(bytes) => return Ok((bytes, Backend::S3)),
                        Err(S3Error::NotFound { .. }) => {}
                        Err(e) if e.is_outage() && local_meta.is_some() => {}
                        Err(e) => return Err(e.into()),
                    }
                } else {
                    self.record_requests()?;
                }
            }
        }
        match self.local.get(key) {
            Ok(bytes) => Ok((bytes, Backend::Local)),
            Err(e) if e.is_not_found() => Err(ManagerError::NotFound {
                key: key.s3_key(),
                where_: if self.s3.is_some() { "S3 or the local data directory" } else { "the local data directory" },
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Lists one owner's files of one type across both backends, newest copy of each, newest
    /// first.
    pub async fn list(&self, owner: Option<&UserId>, data_type: DataType) -> Result<Vec<Listed>, ManagerError> {
        Ok(self.list_checked(owner, data_type).await?.0)
    }

    /// Like [`Manager::list`], and why S3's copies are missing when S3 is configured but could
    /// not be listed (the listing then holds the local copies only: a degraded answer).
    pub async fn list_checked(
        &self,
        owner: Option<&UserId>,
        data_type: DataType,
    ) -> Result<(Vec<Listed>, Option<String>), ManagerError> {
        let mut degraded = None;
        let mut by_name: std::collections::BTreeMap<String, Listed> = Default::default();
        for e in self.local.list(owner, data_type)? {
            let name = e.key.name().to_string();
            by_name.insert(
                name.clone(),
                Listed {
                    name,
                    key: e.key.s3_key(),
                    size: e.size,
                    last_modified: rfc3339_ms(e.last_modified_ms as i64),
                    backend: Backend::Local,
                    last_modified_ms: e.last_modified_ms as i64,
                },
            );
        }
        if let Some(s3) = &self.s3 {
            let prefix = kompass_core::key::type_prefix(owner, data_type);
            let listed = s3.list(&prefix).await;
            self.record_requests()?;
            let listed = match listed {
                Ok(l) => l,
                // Like reads, a listing degrades to the local copies while S3 is down.
                Err(e) if e.is_outage() => {
                    tracing::warn!("S3 unreachable, listing local copies only: {e}");
                    degraded = Some(e.to_string());
                    Vec::new()
                }
                Err(e) => return Err(e.into()),
            };
            for m in listed {
                // Only direct children in the layout: `routes/{user}/x` style keys are skipped.
                let Ok(k) = ObjectKey::from_s3_key(&m.key) else { continue };
                if k.owner() != owner || k.data_type() != data_type {
                    continue;
                }
                let name = k.name().to_string();
                let ms = m.last_modified_ms as i64;
                if by_name.get(&name).is_some_and(|l| l.last_modified_ms > ms) {
                    continue;
                }
                by_name.insert(
                    name.clone(),
                    Listed { name, key: m.key, size: m.size, last_modified: rfc3339_ms(ms), backend: Backend::S3, last_modified_ms: ms },
                );
            }
        }
        let mut out: Vec<Listed> = by_name.into_values().collect();
        out.sort_by(|a, b| b.last_modified_ms.cmp(&a.last_modified_ms).then_with(|| a.name.cmp(&b.name)));
        Ok((out, degraded))
    }

    /// Deletes an object everywhere it is stored; `NotFound` when it was nowhere.
    pub async fn delete(&self, key: &ObjectKey) -> Result<Vec<Backend>, ManagerError> {
        let mut deleted = Vec::new();
        let s3_key = key.s3_key();
        if let Some(s3) = &self.s3 {
            let exists = s3.head(&s3_key).await;
            let outcome = match exists {
                Ok(Some(_)) => s3.delete(&s3_key).await.map(|()| true),
                Ok(None) => Ok(false),
                Err(e) => Err(e),
            };
            self.record_requests()?;
            if outcome? {
                deleted.push(Backend::S3);
                self.cache_apply(None, std::slice::from_ref(&s3_key))?;
            }
        }
        if self.local.delete(key)? {
            deleted.push(Backend::Local);
        }
        // A deleted key must not come back through a sync replay.
        if self.journal.pending()?.iter().any(|p| p.key == *key) {
            self.journal.complete(std::slice::from_ref(key))?;
        }
        if deleted.is_empty() {
            return Err(ManagerError::NotFound {
                key: s3_key,
                where_: if self.s3.is_some() { "S3 or the local data directory" } else { "the local data directory" },
            });
        }
        Ok(deleted)
    }
}
