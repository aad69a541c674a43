//! The storage manager: S3 first when configured, local disk otherwise or while S3 is down.
//!
//! The core decides (admission, cleanup plans); the manager gathers the facts (inventories,
//! usage) and carries the decisions out. A save that cannot reach S3 lands locally and is
//! recorded in the pending-sync journal, which `kompass migrate` (or the next save) replays.

pub mod account;
pub mod group;
pub mod inventory;
mod written;

use std::sync::Mutex;

use kompass_core::admission::allowance::Allowance;
use kompass_core::admission::{
    self, Admission, Decision, Facts, PlannedDeletion, Refusal, Reservation, Settings,
    StoredObject, UnlistedReserved, Upload, Via,
};
use kompass_core::config::{Config, MissingSecret};
use kompass_core::fifo::{self, Deletion, Policy};
use kompass_core::inventory::ObjectInfo;
use kompass_core::key::{DataType, KeyError, ObjectKey, UserId};
use kompass_core::quota::{RequestKind, RequestLedger};
use kompass_core::scrub::{NotScrubbed, PseudonymKey, PseudonymKeyError, check_scrubbed};
use kompass_core::time::UnixMs;
use serde::Serialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::journal::{Journal, PendingEntry};
use crate::statedb::{ChangeStamp, StateDb, StateError, StoredFacts, Tx};
use crate::store::local::{LocalError, LocalMeta, LocalStore};
use crate::store::s3::{PutMode, RequestCounts, S3Error, S3Options, S3Store};
use crate::store::{Scope, Store, StoreError};
use inventory::local_index::{self, Check, IndexError};
use inventory::{INVENTORY_TTL_MS, object_info};

/// Saves queued during an outage (or while the request budget was spent) that a successful
/// save uploads on its way out: enough to drain a queue over a few saves, small enough that
/// one save never turns into a long migration.
pub const REPLAY_BATCH: usize = 8;

/// Objects deleted by FIFO cleanup in this process (S3 and local), for `/metrics`.
pub static CLEANUP_DELETIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub use crate::store::Backend;

/// Why a storage operation failed.
#[derive(Debug, Error)]
pub enum ManagerError {
    /// A user id, data type or file name was invalid.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The upload breaks a limit; nothing was stored or deleted.
    #[error("refused: {0}")]
    Refused(Refusal),
    /// A confirmation for an upload that is not stored (yet).
    #[error(
        "{key} is not stored in {where_}: finish the upload first (its reservation lasts until {expires})"
    )]
    NotUploaded {
        /// The object key.
        key: String,
        /// Where it was looked for.
        where_: Backend,
        /// When the reservation expires (RFC 3339), or "it has expired".
        expires: String,
    },
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
    #[error(
        "{key} already exists in {where_}: choose another name, or overwrite it with `kompass save`"
    )]
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
    /// The state database cannot be used.
    #[error(transparent)]
    State(#[from] StateError),
    /// A store is out of reach (S3's own errors are [`ManagerError::S3`]).
    #[error(transparent)]
    Store(StoreError),
    /// S3 storage is needed for this command but not enabled.
    #[error(
        "S3 storage is not enabled: set S3_STORAGE_ENABLED=true with AWS_S3_BUCKET, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (see `kompass config`)"
    )]
    S3Disabled,
}

impl From<StoreError> for ManagerError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Local(e) => ManagerError::Local(e),
            StoreError::S3(e) => ManagerError::S3(e),
            StoreError::Exists { key, backend } => ManagerError::Exists { key, where_: backend },
            StoreError::NotFound { key, backend } => ManagerError::NotFound {
                key,
                where_: match backend {
                    Backend::S3 => "S3",
                    Backend::Local => "the local data directory",
                },
            },
            e @ StoreError::Unreachable { .. } => ManagerError::Store(e),
        }
    }
}

impl From<IndexError> for ManagerError {
    fn from(e: IndexError) -> Self {
        match e {
            IndexError::State(e) => e.into(),
            IndexError::Store(e) => e.into(),
        }
    }
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
    /// Older files FIFO cleanup removes once the upload is stored, oldest first.
    pub cleanup: Vec<Deletion>,
}

/// A granted upload (a presigned URL about to be handed out): reserved, not stored.
#[derive(Debug, Clone, Serialize)]
pub struct Granted {
    /// Where the upload goes.
    pub backend: Backend,
    /// The reservation recorded for it; it counts against the quota until it is confirmed
    /// stored or expires.
    pub reservation: Reservation,
}

/// The answer to [`Manager::confirm`].
#[derive(Debug, Clone, Serialize)]
pub struct Confirmed {
    /// The object key.
    pub key: String,
    /// Its size as stored.
    pub bytes: u64,
    /// Where it is.
    pub backend: Backend,
    /// Older files FIFO cleanup removed now that it is stored.
    pub cleaned: Vec<Deletion>,
}

/// What [`Manager::sync`] did with the pending-sync queue.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    /// Keys uploaded to S3 and removed from the queue.
    pub uploaded: Vec<String>,
    /// Keys still queued, and why (a refusal, an outage, a changed local copy).
    pub remaining: Vec<SyncLeft>,
}

/// A queued save left in the queue.
#[derive(Debug, Clone, Serialize)]
pub struct SyncLeft {
    /// The object key.
    pub key: String,
    /// Why it is still queued.
    pub reason: String,
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

impl Listed {
    /// The listing view of a stored object's record.
    pub fn new(o: &StoredObject, backend: Backend) -> Self {
        Listed {
            name: o.key.name().to_string(),
            key: o.key.s3_key(),
            size: o.size,
            last_modified: o.last_modified.rfc3339(),
            backend,
            last_modified_ms: o.last_modified.as_i64(),
        }
    }
}

/// The current time in unix milliseconds.
pub fn now_ms() -> i64 {
    crate::clock::now().as_i64()
}

/// RFC 3339 UTC for unix milliseconds.
pub fn rfc3339_ms(ms: i64) -> String {
    UnixMs(ms).rfc3339()
}

/// SHA-256 of a byte string.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Local disk plus, when configured, S3; with the journal and the state database (inventory
/// cache, reservations, request ledger).
///
/// Generic over the remote store so the same driver runs against an in-memory store in unit
/// tests; everywhere else it is [`S3Store`].
pub struct Manager<R: Store = S3Store> {
    config: Config,
    local: LocalStore,
    s3: Option<R>,
    journal: Journal,
    state: StateDb,
    /// Request counts already written to the ledger.
    recorded: Mutex<RequestCounts>,
    /// Requests charged to the ledger at admission, not yet seen sent: subtracted from the
    /// next counts so they are not charged twice.
    precharged: Mutex<RequestCounts>,
    /// Grants arriving together are admitted in one transaction ([`Manager::admit_many`]).
    grants: group::GroupCommit<(Upload, Backend), Result<Decision, ManagerError>>,
    /// The live reservations as the last batch of grants left them, with the stamp of the
    /// database then: the next batch reads them again only when something else changed it.
    reserved: Mutex<Option<(ChangeStamp, Reserved)>>,
}

/// Live reservations, one per key (as in the table), with running sums per owner, so a
/// decision reads the one at its key and two sums instead of every reservation.
#[derive(Debug, Default)]
struct Reserved {
    list: Vec<Reservation>,
    at: std::collections::HashMap<ObjectKey, usize>,
    by_owner: std::collections::HashMap<Option<UserId>, u64>,
    bytes: u64,
}

impl Reserved {
    fn new(list: Vec<Reservation>) -> Self {
        let mut r = Reserved::default();
        for x in list {
            r.put(x);
        }
        r
    }

    /// Records `r`, replacing a reservation at the same key.
    fn put(&mut self, r: Reservation) {
        let owner = r.key.owner().cloned();
        let added = r.size;
        let removed = match self.at.get(&r.key) {
            Some(&i) => std::mem::replace(&mut self.list[i], r).size,
            None => {
                self.at.insert(r.key.clone(), self.list.len());
                self.list.push(r);
                0
            }
        };
        let of_owner = self.by_owner.entry(owner).or_default();
        *of_owner = (*of_owner - removed) + added;
        self.bytes = (self.bytes - removed) + added;
    }

    /// Drops those expired at `now`; whether there were any.
    fn expire(&mut self, now: UnixMs) -> bool {
        if self.list.iter().all(|r| r.is_live(now)) {
            return false;
        }
        let live: Vec<Reservation> = self.list.drain(..).filter(|r| r.is_live(now)).collect();
        *self = Reserved::new(live);
        true
    }

    /// The facts about reservations for a decision on `key`: the reservation at `key` listed
    /// (an upload replaces its own grant), the others summed.
    fn for_key<'a>(&'a self, key: &'a ObjectKey) -> (&'a [Reservation], UnlistedReserved<'a>) {
        let listed = self.at.get(key).map_or(&[][..], |&i| std::slice::from_ref(&self.list[i]));
        let own = listed.first().map_or(0, |r| r.size);
        let owner = key.owner();
        let owner_bytes = self.by_owner.get(&owner.cloned()).copied().unwrap_or(0) - own;
        (listed, UnlistedReserved { owner, owner_bytes, bytes: self.bytes - own })
    }
}

/// Facts for one admission, gathered inside its transaction.
/// The core's decision on `facts`, and when admitted its reservation and (for S3) its request
/// charges recorded in `tx`: what every admission does once the facts are gathered.
fn decide_and_record(
    tx: &Tx<'_>,
    upload: &Upload,
    facts: &Facts<'_>,
    settings: &admission::Settings,
    backend: Backend,
) -> Result<Decision, ManagerError> {
    let decision = admission::decide(upload, facts, settings);
    if let Decision::Admit(a) = &decision {
        tx.reserve(&a.reservation)?;
        if backend == Backend::S3 {
            tx.charge(RequestKind::Put, a.cost.put_class, facts.now)?;
            tx.charge(RequestKind::Head, a.cost.get_class, facts.now)?;
        }
    }
    Ok(decision)
}

struct Gathered {
    stored: StoredFacts,
    reservations: Vec<Reservation>,
    ledger: RequestLedger,
}

impl Gathered {
    fn facts(&self, now: UnixMs) -> Facts<'_> {
        Facts {
            stored: &self.stored.objects,
            unlisted_bytes: self.stored.unlisted_bytes,
            reservations: &self.reservations,
            unlisted_reserved: UnlistedReserved::default(),
            ledger: &self.ledger,
            now,
        }
    }
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
        Self::with_stores(config, LocalStore::new(&dir), s3)
    }
}

impl<R: Store> Manager<R> {
    /// A manager over the given stores (the data directory's state and journal live under
    /// `config.data_directory`).
    pub fn with_stores(
        config: Config,
        local: LocalStore,
        s3: Option<R>,
    ) -> Result<Self, ManagerError> {
        let dir = std::path::PathBuf::from(&config.data_directory);
        Ok(Manager {
            local,
            journal: Journal::open(&dir)?,
            state: StateDb::open(&dir)?,
            recorded: Mutex::new(RequestCounts::default()),
            precharged: Mutex::new(RequestCounts::default()),
            grants: group::GroupCommit::default(),
            reserved: Mutex::new(None),
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
    pub fn s3(&self) -> Option<&R> {
        self.s3.as_ref()
    }

    /// The S3 store, or the error telling the operator how to enable it.
    pub fn require_s3(&self) -> Result<&R, ManagerError> {
        self.s3.as_ref().ok_or(ManagerError::S3Disabled)
    }

    /// The pending-sync journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The state database.
    pub fn state(&self) -> &StateDb {
        &self.state
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
    pub fn fifo_limits(&self) -> fifo::Capacity {
        fifo::Capacity {
            user_quota_bytes: self.config.limits.max_user_bytes,
            bucket_bytes: self.config.limits.max_bucket_bytes,
        }
    }

    /// What admission applies to `backend`: the limits, cleanup, and (for S3 only, where
    /// requests are billed) the monthly request budget.
    pub fn admission_settings(&self, backend: Backend) -> Settings {
        Settings {
            limits: self.config.limits,
            auto_cleanup: self.config.auto_cleanup,
            min_files_to_keep: self.config.min_files_to_keep as usize,
            budget: match backend {
                Backend::S3 => self.config.request_budget,
                Backend::Local => None,
            },
        }
    }

    fn bucket_id(s3: &R) -> String {
        s3.id()
    }

    /// Writes the requests sent since the last call into the monthly ledger (less those
    /// already charged at admission).
    pub fn record_requests(&self) -> Result<(), ManagerError> {
        let Some(s3) = &self.s3 else { return Ok(()) };
        let now = s3.requests();
        let delta = {
            let mut seen = self.recorded.lock().unwrap_or_else(|e| e.into_inner());
            let mut pre = self.precharged.lock().unwrap_or_else(|e| e.into_inner());
            let mut d = RequestCounts {
                put: now.put - seen.put,
                list: now.list - seen.list,
                get: now.get - seen.get,
                head: now.head - seen.head,
                delete: now.delete - seen.delete,
            };
            let put = d.put.min(pre.put);
            d.put -= put;
            pre.put -= put;
            let head = d.head.min(pre.head);
            d.head -= head;
            pre.head -= head;
            *seen = now;
            d
        };
        if delta == RequestCounts::default() {
            return Ok(());
        }
        let at = UnixMs(now_ms());
        self.state.write(|tx| {
            for (kind, n) in [
                (RequestKind::Put, delta.put),
                (RequestKind::List, delta.list),
                (RequestKind::Get, delta.get),
                (RequestKind::Head, delta.head),
                (RequestKind::Delete, delta.delete),
            ] {
                tx.charge(kind, n, at)?;
            }
            Ok::<(), ManagerError>(())
        })
    }

    /// This month's request ledger.
    pub fn ledger(&self) -> Result<RequestLedger, ManagerError> {
        let now = UnixMs(now_ms());
        self.state.read(|tx| tx.ledger(now).map_err(ManagerError::from))
    }

    /// Makes sure the cached inventory describes this bucket and is fresh (or `force`): else
    /// one full listing replaces it.
    pub async fn refresh_inventory(&self, force: bool) -> Result<(), ManagerError> {
        let s3 = self.require_s3()?;
        let id = Self::bucket_id(s3);
        if !force {
            let now = now_ms();
            let meta = self.state.read(|tx| tx.inventory_meta().map_err(ManagerError::from))?;
            if let Some((bucket, at)) = meta
                && bucket == id
                && at.0 > 0
                && now.saturating_sub(at.0) < INVENTORY_TTL_MS
            {
                return Ok(());
            }
        }
        // Stamped before the LIST: a row a writer records while it runs is newer and stays.
        // The listed rows are stamped when the answer came (see `Tx::replace_inventory`).
        let started = UnixMs(now_ms());
        let listed = s3.list(Scope::All).await;
        let finished = UnixMs(now_ms());
        self.record_requests()?;
        let listed = listed?;
        let objects: Vec<(String, u64, i64)> = listed
            .objects
            .into_iter()
            .map(|o| (o.key.s3_key(), o.size, o.last_modified.as_i64()))
            .chain(listed.foreign.into_iter().map(|(k, size, at)| (k, size, at.as_i64())))
            .collect();
        self.state.write(|tx| {
            // Processes whose caches went stale together list together. When one whose listing
            // started later has replaced the inventory already, this one is skipped: it keeps
            // the admission lock free for the others, and what it alone saw (objects stored
            // meanwhile) is recorded by their writers or by the next listing.
            if let Some((bucket, at)) = tx.inventory_meta()?
                && bucket == id
                && at >= started
            {
                return Ok(());
            }
            tx.replace_inventory(&id, started, finished, &objects).map_err(ManagerError::from)
        })
    }

    /// The bucket's inventory: the cache while fresh (or `refresh` false), else a full listing.
    pub async fn s3_inventory(&self, force_refresh: bool) -> Result<Vec<ObjectInfo>, ManagerError> {
        self.refresh_inventory(force_refresh).await?;
        let rows = self.state.read(|tx| tx.all_objects().map_err(ManagerError::from))?;
        Ok(rows.iter().map(|(k, size, lm)| object_info(k, *size, *lm, None)).collect())
    }

    /// One owner's objects in the cached S3 inventory (refreshed when stale): no LIST while
    /// the cache is fresh.
    pub async fn s3_owner_objects(
        &self,
        owner: &UserId,
    ) -> Result<Vec<StoredObject>, ManagerError> {
        self.refresh_inventory(false).await?;
        Ok(self.state.read(|tx| tx.owner_facts(Some(owner)).map_err(ManagerError::from))?.objects)
    }

    /// Records in the cache objects this process stored in bulk (one transaction for all).
    pub fn note_stored(&self, objects: &[(String, u64)]) -> Result<(), ManagerError> {
        if self.s3.is_none() || objects.is_empty() {
            return Ok(());
        }
        let now = UnixMs(now_ms());
        self.state.write(|tx| {
            for (k, size) in objects {
                match ObjectKey::from_s3_key(k) {
                    Ok(key) => {
                        tx.put_object(&key, *size, now)?;
                        tx.release(&key)?;
                    }
                    Err(_) => continue,
                }
            }
            Ok::<(), ManagerError>(())
        })
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

    /// Gathers the facts for an upload of `size` bytes by `owner` inside `tx`.
    fn gather(
        &self,
        tx: &Tx<'_>,
        backend: Backend,
        owner: Option<&UserId>,
        size: u64,
        now: UnixMs,
    ) -> Result<Gathered, ManagerError> {
        let reservations = tx.reservations(now)?;
        let reserved: u64 = reservations.iter().map(|r| r.size).sum();
        let check = Some(Check::Owner(owner));
        let (stored, ledger) =
            self.gather_stored(tx, backend, owner, size, now, reserved, check)?;
        Ok(Gathered { stored, reservations, ledger })
    }

    /// The stored objects and the ledger for an upload of `size` bytes by `owner` inside `tx`,
    /// given the bytes of the live reservations. `check`: the local folders to check first
    /// (`None`: the owner's were already checked in this transaction).
    #[allow(clippy::too_many_arguments)]
    fn gather_stored(
        &self,
        tx: &Tx<'_>,
        backend: Backend,
        owner: Option<&UserId>,
        size: u64,
        now: UnixMs,
        reserved: u64,
        check: Option<Check<'_>>,
    ) -> Result<(StoredFacts, RequestLedger), ManagerError> {
        let ledger = tx.ledger(now)?;
        let settings = self.admission_settings(backend);
        let stored = match backend {
            Backend::Local => {
                // The local index, not a walk: the uploader's folders are checked (and read
                // again if they changed), the rest only when the decision needs them.
                if let Some(check) = check {
                    local_index::refresh(&self.local, tx, check, now)?;
                }
                let view = tx.local();
                if admission::whole_inventory_needed(
                    size,
                    view.bucket_bytes()?,
                    reserved,
                    &settings,
                ) {
                    local_index::refresh(&self.local, tx, Check::All, now)?;
                    view.all_facts()?
                } else {
                    view.owner_facts(owner)?
                }
            }
            Backend::S3 => {
                if admission::whole_inventory_needed(size, tx.bucket_bytes()?, reserved, &settings)
                {
                    tx.all_facts()?
                } else {
                    tx.owner_facts(owner)?
                }
            }
        };
        Ok((stored, ledger))
    }

    /// The one admission of this installation: gathers the facts, lets the core decide and,
    /// when admitted, records the reservation and charges the ledger, all in one immediate
    /// transaction (the admission lock across processes).
    pub fn admit(&self, upload: &Upload, backend: Backend) -> Result<Decision, ManagerError> {
        let now = UnixMs(now_ms());
        let settings = self.admission_settings(backend);
        let decision = self.state.write(|tx| {
            let g = self.gather(tx, backend, upload.key.owner(), upload.size, now)?;
            decide_and_record(tx, upload, &g.facts(now), &settings, backend)
        })?;
        if let (Decision::Admit(a), Backend::S3) = (&decision, backend) {
            let mut pre = self.precharged.lock().unwrap_or_else(|e| e.into_inner());
            pre.put += a.cost.put_class;
            pre.head += a.cost.get_class;
        }
        Ok(decision)
    }

    /// Admits a batch of uploads in one transaction, synced to disk at commit: each is decided
    /// by the core on the facts as the ones before it left them (their reservations and request
    /// charges included), in its own savepoint, so a job that fails is undone alone. Results
    /// are returned only once the commit is durable: no grant is handed out whose reservation
    /// a power cut could take back. When the batch as a whole fails (locked database, failed
    /// commit), each upload is admitted again on its own.
    pub fn admit_many(&self, uploads: &[(Upload, Backend)]) -> Vec<Result<Decision, ManagerError>> {
        let now = UnixMs(now_ms());
        // Taken out for the batch; put back only after a commit.
        let cached = self.reserved.lock().unwrap_or_else(|e| e.into_inner()).take();
        let batch = self.state.write_synced(|tx| {
            let mut reserved = match cached {
                // Nothing changed since the last batch committed: its list is the table's.
                Some((stamp, mut r)) if stamp == tx.change_stamp()? => {
                    if r.expire(now) {
                        tx.expire_reservations(now)?;
                    }
                    r
                }
                _ => Reserved::new(tx.reservations(now)?),
            };
            let mut out = Vec::with_capacity(uploads.len());
            // Owners whose local folders this batch checked: once is enough in one
            // transaction (a file stored meanwhile still counts through its reservation); and
            // the root and type folders once for all owners.
            let mut checked: Vec<Option<&UserId>> = Vec::new();
            for (upload, backend) in uploads {
                let backend = *backend;
                let owner = upload.key.owner();
                let owner_checked = backend == Backend::Local && checked.contains(&owner);
                let check = match (owner_checked, owner) {
                    (true, _) => None,
                    (false, Some(u)) if !checked.is_empty() => Some(Check::OwnerFolders(u)),
                    (false, _) => Some(Check::Owner(owner)),
                };
                let settings = self.admission_settings(backend);
                let decided = tx.savepoint(|tx| {
                    let (stored, ledger) = self.gather_stored(
                        tx,
                        backend,
                        owner,
                        upload.size,
                        now,
                        reserved.bytes,
                        check,
                    )?;
                    let (listed, unlisted_reserved) = reserved.for_key(&upload.key);
                    let facts = Facts {
                        stored: &stored.objects,
                        unlisted_bytes: stored.unlisted_bytes,
                        reservations: listed,
                        unlisted_reserved,
                        ledger: &ledger,
                        now,
                    };
                    decide_and_record(tx, upload, &facts, &settings, backend)
                })?;
                if let Ok(Decision::Admit(a)) = &decided {
                    // As `reserve` did in the table: one reservation per key.
                    reserved.put(a.reservation.clone());
                }
                if backend == Backend::Local && decided.is_ok() && !owner_checked {
                    checked.push(owner);
                }
                out.push(decided);
            }
            // After the batch's last change: the stamp the next batch compares with.
            let stamp = tx.change_stamp()?;
            Ok::<_, ManagerError>((out, stamp, reserved))
        });
        match batch {
            Ok((out, stamp, reserved)) => {
                *self.reserved.lock().unwrap_or_else(|e| e.into_inner()) = Some((stamp, reserved));
                let mut pre = self.precharged.lock().unwrap_or_else(|e| e.into_inner());
                for ((_, backend), decided) in uploads.iter().zip(&out) {
                    if let (Ok(Decision::Admit(a)), Backend::S3) = (decided, backend) {
                        pre.put += a.cost.put_class;
                        pre.head += a.cost.get_class;
                    }
                }
                out
            }
            Err(e) if uploads.len() == 1 => vec![Err(e)],
            Err(e) => {
                tracing::warn!(
                    "a batch of {} admissions failed ({e}); admitting one by one",
                    uploads.len()
                );
                uploads.iter().flat_map(|u| self.admit_many(std::slice::from_ref(u))).collect()
            }
        }
    }

    /// Stores `bytes` under `key`: admission, the store, then the cleanup it calls for.
    pub async fn save(&self, key: &ObjectKey, bytes: &[u8]) -> Result<SaveOutcome, ManagerError> {
        self.save_mode(key, bytes, PutMode::Overwrite).await
    }

    /// Like [`Manager::save`], but never replaces anything: [`ManagerError::Exists`] when `key`
    /// is taken in S3 or locally. Known copies are refused before any request or cleanup; a
    /// copy another writer made meanwhile is caught by a create-only PUT (`If-None-Match: *`)
    /// or, locally, by linking the file into place.
    pub async fn save_new(
        &self,
        key: &ObjectKey,
        bytes: &[u8],
    ) -> Result<SaveOutcome, ManagerError> {
        self.save_mode(key, bytes, PutMode::CreateOnly).await
    }

    async fn save_mode(
        &self,
        key: &ObjectKey,
        bytes: &[u8],
        mode: PutMode,
    ) -> Result<SaveOutcome, ManagerError> {
        let size = bytes.len() as u64;
        // The file size limit is checked before any request.
        self.check_file_size(size)?;
        // Rider data is stored only scrubbed with the pseudonym key: every save of fitness data
        // passes the policy's rule here, before any request or deletion.
        if key.data_type() == DataType::Fitness {
            self.check_rider_data(bytes)?;
        }
        let s3_key = key.s3_key();
        let Some(s3) = &self.s3 else {
            return self.save_local(key, bytes, mode);
        };
        match self.refresh_inventory(false).await {
            Ok(()) => {}
            Err(ManagerError::S3(e)) if e.is_outage() => {
                return self.save_pending(key, bytes, &e.to_string(), mode);
            }
            Err(e) => return Err(e),
        }
        if mode == PutMode::CreateOnly {
            let in_s3 = self.state.read(|tx| tx.object(key).map_err(ManagerError::from))?.is_some();
            let taken = if in_s3 {
                Some(Backend::S3)
            } else {
                self.local.head(key)?.map(|_| Backend::Local)
            };
            if let Some(where_) = taken {
                return Err(ManagerError::Exists { key: s3_key, where_ });
            }
        }
        let upload = Upload { key: key.clone(), size, via: Via::Direct };
        let admitted = match self.admit(&upload, Backend::S3)? {
            Decision::Admit(a) => a,
            // The budget is about requests, not bytes: keep the data and queue it.
            Decision::Refuse(r) if r.queue_locally() => {
                return self.save_pending(key, bytes, &r.to_string(), mode);
            }
            Decision::Refuse(r) => return Err(ManagerError::Refused(r)),
        };
        let put = s3.put(key, bytes, mode).await;
        self.record_requests()?;
        match put {
            Ok(stored) => {
                self.state.write(|tx| {
                    tx.put_object(key, stored.size, stored.last_modified)?;
                    tx.release(key)
                })?;
                let cleaned = self.carry_out_s3(&admitted.cleanup).await;
                // A save that reached S3 drains a little of the queue (nothing when empty).
                if let Err(e) = self.sync(Some(REPLAY_BATCH)).await {
                    tracing::warn!("replaying queued saves failed, they stay queued: {e}");
                }
                Ok(SaveOutcome {
                    backend: Backend::S3,
                    key: s3_key,
                    bytes: size,
                    cleaned,
                    pending_sync: None,
                })
            }
            Err(e) => {
                // A PUT that failed on the way back (timeout, cut connection) may have been
                // stored: its reservation keeps counting until a listing shows the key, the
                // queued copy is replayed, or it expires, so no other save is admitted into
                // bytes the bucket may already hold.
                if !e.is_outage() {
                    self.state.write(|tx| tx.release(key))?;
                }
                match e {
                    e if e.is_outage() => self.save_pending(key, bytes, &e.to_string(), mode),
                    StoreError::Exists { key, .. } => {
                        Err(ManagerError::Exists { key, where_: Backend::S3 })
                    }
                    e => Err(e.into()),
                }
            }
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

    /// Saves to the local data directory (S3 disabled).
    fn save_local(
        &self,
        key: &ObjectKey,
        bytes: &[u8],
        mode: PutMode,
    ) -> Result<SaveOutcome, ManagerError> {
        if mode == PutMode::CreateOnly && self.local.head(key)?.is_some() {
            return Err(ManagerError::Exists { key: key.s3_key(), where_: Backend::Local });
        }
        let size = bytes.len() as u64;
        let admitted =
            self.admit_and_store_local(key, size, || self.put_local(key, bytes, mode))?;
        self.delete_planned_local(
            &admitted.cleanup.iter().map(PlannedDeletion::to_fifo).collect::<Vec<_>>(),
        )?;
        Ok(SaveOutcome {
            backend: Backend::Local,
            key: key.s3_key(),
            bytes: size,
            cleaned: admitted.cleanup.iter().map(PlannedDeletion::to_fifo).collect(),
            pending_sync: None,
        })
    }

    /// Carries out a cleanup in S3 after a store. A failure is logged, not returned: the
    /// upload is stored, and the next admission plans the cleanup again.
    async fn carry_out_s3(&self, cleanup: &[PlannedDeletion]) -> Vec<Deletion> {
        let planned: Vec<Deletion> = cleanup.iter().map(PlannedDeletion::to_fifo).collect();
        match self.delete_planned_s3(&planned).await {
            Ok(()) => planned,
            Err(e) => {
                tracing::warn!(
                    "cleanup after the upload did not finish, the next save retries it: {e}"
                );
                Vec::new()
            }
        }
    }

    /// Admission without storing or reserving: where an upload of `size` bytes to `key`
    /// would go and the cleanup that would follow it. For the page's precheck.
    pub async fn precheck(&self, key: &ObjectKey, size: u64) -> Result<Precheck, ManagerError> {
        let backend = self.upload_backend().await?;
        let now = UnixMs(now_ms());
        let settings = self.admission_settings(backend);
        let upload = Upload { key: key.clone(), size, via: Via::Direct };
        let decision = self.state.write(|tx| {
            let g = self.gather(tx, backend, key.owner(), size, now)?;
            Ok::<Decision, ManagerError>(admission::decide(&upload, &g.facts(now), &settings))
        })?;
        let a = decision.into_result().map_err(ManagerError::Refused)?;
        Ok(Precheck { backend, cleanup: a.cleanup.iter().map(PlannedDeletion::to_fifo).collect() })
    }

    /// Where an upload would land now: S3 when configured and reachable, else local.
    async fn upload_backend(&self) -> Result<Backend, ManagerError> {
        match &self.s3 {
            Some(_) => match self.refresh_inventory(false).await {
                Ok(()) => Ok(Backend::S3),
                Err(ManagerError::S3(e)) if e.is_outage() => Ok(Backend::Local),
                Err(e) => Err(e),
            },
            None => Ok(Backend::Local),
        }
    }

    /// Grants an upload that bypasses this process (a presigned PUT straight to S3, or the
    /// server's own upload URL): admission with [`Via::Presigned`], recording the reservation.
    /// Nothing is deleted: the cleanup runs when the upload is confirmed ([`Manager::confirm`]).
    pub async fn grant(
        &self,
        key: &ObjectKey,
        size: u64,
        expires_at: UnixMs,
    ) -> Result<Granted, ManagerError> {
        let backend = self.upload_backend().await?;
        let upload = Upload { key: key.clone(), size, via: Via::Presigned { expires_at } };
        // Grants arriving together share one synced transaction (see `admit_many`).
        let decided = self.grants.run((upload, backend), |batch| self.admit_many(&batch)).await;
        let a = decided?.into_result().map_err(ManagerError::Refused)?;
        Ok(Granted { backend, reservation: a.reservation })
    }

    /// Confirms a granted upload: one HEAD (S3) or a look at the file (local). When stored,
    /// records it, drops its reservation and carries out the cleanup it calls for now.
    pub async fn confirm(&self, key: &ObjectKey) -> Result<Confirmed, ManagerError> {
        let now = UnixMs(now_ms());
        let (backend, meta) = match &self.s3 {
            Some(s3) => {
                let head = s3.head(key).await;
                self.record_requests()?;
                (Backend::S3, head?.map(|m| (m.size, m.last_modified)))
            }
            None => (
                Backend::Local,
                self.local.head(key)?.map(|m| (m.size, UnixMs(m.last_modified_ms as i64))),
            ),
        };
        let Some((size, last_modified)) = meta else {
            let r = self.state.write(|tx| tx.reservation(key, now).map_err(ManagerError::from))?;
            return Err(ManagerError::NotUploaded {
                key: key.s3_key(),
                where_: backend,
                expires: r.map_or_else(|| "it has expired".to_owned(), |r| r.expires_at.rfc3339()),
            });
        };
        let settings = self.admission_settings(backend);
        let cleanup = self.state.write(|tx| {
            if backend == Backend::S3 {
                tx.put_object(key, size, last_modified)?;
            }
            tx.release(key)?;
            let g = self.gather(tx, backend, key.owner(), 0, now)?;
            Ok::<_, ManagerError>(admission::cleanup_after_store(key, &g.facts(now), &settings))
        })?;
        let cleaned = match backend {
            Backend::S3 => self.carry_out_s3(&cleanup).await,
            Backend::Local => {
                let planned: Vec<Deletion> = cleanup.iter().map(PlannedDeletion::to_fifo).collect();
                self.delete_planned_local(&planned)?;
                planned
            }
        };
        Ok(Confirmed { key: key.s3_key(), bytes: size, backend, cleaned })
    }

    /// An allowance for the edge presigner ([`kompass_core::admission::allowance`]): the bytes
    /// `owner` may still upload (quota minus stored and reserved bytes) and the PUTs the
    /// month's budget has left (capped), for five minutes, signed with `secret`.
    pub async fn allowance(
        &self,
        owner: &UserId,
        secret: &[u8],
    ) -> Result<(Allowance, String), ManagerError> {
        use kompass_core::admission::allowance::{DEFAULT_ALLOWANCE_TTL_MS, MAX_ALLOWANCE_PUTS};
        let backend = self.upload_backend().await?;
        let now = UnixMs(now_ms());
        let settings = self.admission_settings(backend);
        let (used, ledger) = self.state.write(|tx| {
            let g = self.gather(tx, backend, Some(owner), 0, now)?;
            // Reserved bytes count like stored ones (a grant not yet confirmed still spends).
            let reserved = g.reservations.iter().map(|r| StoredObject {
                key: r.key.clone(),
                size: r.size,
                last_modified: r.granted_at,
            });
            let objects: Vec<ObjectInfo> = g
                .stored
                .objects
                .iter()
                .cloned()
                .chain(reserved)
                .map(|o| ObjectInfo::from(&o))
                .collect();
            let used = kompass_core::inventory::usage(&objects)
                .users
                .get(owner.as_str())
                .map_or(0, |u| u.bytes);
            Ok::<_, ManagerError>((used, g.ledger))
        })?;
        let puts = match settings.budget {
            Some(b) => b.put_class.saturating_sub(ledger.put_class).min(MAX_ALLOWANCE_PUTS),
            None => MAX_ALLOWANCE_PUTS,
        };
        let allowance = Allowance {
            user: owner.clone(),
            bytes: settings.limits.max_user_bytes.saturating_sub(used),
            puts,
            expires_at: now.plus_ms(DEFAULT_ALLOWANCE_TTL_MS),
            id: now.as_u64() ^ u64::from(std::process::id()).rotate_left(40),
        };
        let sealed = allowance.seal(secret);
        Ok((allowance, sealed))
    }

    /// Confirms `owner`'s outstanding grants (one HEAD each, no LIST): those stored are
    /// recorded and their cleanup runs; the others stay reserved until they expire.
    pub async fn confirm_pending(&self, owner: &UserId) -> Result<usize, ManagerError> {
        let now = UnixMs(now_ms());
        let mine: Vec<ObjectKey> = self
            .state
            .write(|tx| tx.reservations(now))?
            .into_iter()
            .filter(|r| r.key.owner() == Some(owner))
            .map(|r| r.key)
            .collect();
        let mut confirmed = 0;
        for key in mine {
            match self.confirm(&key).await {
                Ok(_) => confirmed += 1,
                Err(ManagerError::NotUploaded { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(confirmed)
    }

    /// Uploads saves queued in the pending-sync journal, oldest first, at most `limit` (all
    /// when `None`), each through admission: stops at the first refusal by the request
    /// budget or an outage, and leaves a save refused by a size limit queued with its reason.
    pub async fn sync(&self, limit: Option<usize>) -> Result<SyncReport, ManagerError> {
        let mut report = SyncReport::default();
        let Some(s3) = &self.s3 else { return Ok(report) };
        let pending = self.journal.pending()?;
        if pending.is_empty() {
            return Ok(report);
        }
        self.refresh_inventory(false).await?;
        let take = limit.unwrap_or(usize::MAX);
        let mut stop: Option<String> = None;
        for (i, entry) in pending.iter().enumerate() {
            let key = entry.key.s3_key();
            if let Some(why) = &stop {
                report.remaining.push(SyncLeft { key, reason: why.clone() });
                continue;
            }
            if i >= take {
                report.remaining.push(SyncLeft { key, reason: "left for the next batch".into() });
                continue;
            }
            match self.sync_one(s3, entry).await {
                Ok(()) => report.uploaded.push(key),
                Err(SyncStop::Skip(reason)) => report.remaining.push(SyncLeft { key, reason }),
                Err(SyncStop::Stop(reason)) => {
                    report.remaining.push(SyncLeft { key, reason: reason.clone() });
                    stop = Some(reason);
                }
                Err(SyncStop::Fail(e)) => return Err(e),
            }
        }
        Ok(report)
    }

    async fn sync_one(&self, s3: &R, entry: &PendingEntry) -> Result<(), SyncStop> {
        let bytes = match self.local.get(&entry.key) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => {
                // Deleted locally since: nothing to upload any more.
                self.journal
                    .complete_entries(std::slice::from_ref(entry))
                    .map_err(|e| SyncStop::Fail(e.into()))?;
                return Err(SyncStop::Skip("the local copy is gone".into()));
            }
            Err(e) => return Err(SyncStop::Fail(e.into())),
        };
        let digest = sha256(&bytes);
        let upload = Upload { key: entry.key.clone(), size: bytes.len() as u64, via: Via::Direct };
        let admitted = match self.admit(&upload, Backend::S3).map_err(SyncStop::Fail)? {
            Decision::Admit(a) => a,
            Decision::Refuse(r) if r.queue_locally() => return Err(SyncStop::Stop(r.to_string())),
            Decision::Refuse(r) => return Err(SyncStop::Skip(r.to_string())),
        };
        // The queued copy is the newest: it replaces whatever S3 holds.
        let put = s3.put(&entry.key, &bytes, PutMode::Overwrite).await;
        self.record_requests().map_err(SyncStop::Fail)?;
        let release = |m: &Self| {
            m.state.write(|tx| tx.release(&entry.key)).map_err(|e| SyncStop::Fail(e.into()))
        };
        match put {
            Ok(_) => {
                let now = UnixMs(now_ms());
                self.state
                    .write(|tx| {
                        tx.put_object(&entry.key, upload.size, now)?;
                        tx.release(&entry.key)
                    })
                    .map_err(|e| SyncStop::Fail(e.into()))?;
                // Completed only if the journal still names these bytes: a newer queued save
                // of the same key keeps its own record.
                let done = PendingEntry { sha256: digest, size: upload.size, ..entry.clone() };
                if done == *entry {
                    self.journal
                        .complete_entries(std::slice::from_ref(entry))
                        .map_err(|e| SyncStop::Fail(e.into()))?;
                }
                self.carry_out_s3(&admitted.cleanup).await;
                Ok(())
            }
            // As in a save: an outage's PUT may have landed, so its reservation stays.
            Err(e) if e.is_outage() => Err(SyncStop::Stop(format!("S3 unreachable: {e}"))),
            Err(e) => {
                release(self)?;
                Err(SyncStop::Skip(e.to_string()))
            }
        }
    }

    /// Writes locally: replacing, or only when the key is free.
    /// The local index follows: the row is written here, and the folder's changed time makes
    /// the next check read that folder again (catching anyone else's write beside ours).
    /// A local save once its bytes are at hand: admission for `size` bytes at `key`, then
    /// `store` (which makes them visible and indexes them), then the reservation released
    /// whatever `store` did. The caller carries out the cleanup admission planned.
    fn admit_and_store_local(
        &self,
        key: &ObjectKey,
        size: u64,
        store: impl FnOnce() -> Result<(), ManagerError>,
    ) -> Result<Admission, ManagerError> {
        let upload = Upload { key: key.clone(), size, via: Via::Direct };
        let admitted =
            self.admit(&upload, Backend::Local)?.into_result().map_err(ManagerError::Refused)?;
        let stored = store();
        self.state.write(|tx| tx.release(key))?;
        stored?;
        Ok(admitted)
    }

    /// Records a local file just written at `key` in the local index.
    fn index_local(&self, key: &ObjectKey, meta: &LocalMeta) -> Result<(), ManagerError> {
        let rec = meta.record(key);
        self.state.write(|tx| tx.local().put_object(key, rec.size, rec.last_modified))?;
        Ok(())
    }

    fn put_local(&self, key: &ObjectKey, bytes: &[u8], mode: PutMode) -> Result<(), ManagerError> {
        let meta = match mode {
            PutMode::Overwrite => self.local.put(key, bytes)?,
            PutMode::CreateOnly => match self.local.put_new(key, bytes)? {
                Some(m) => m,
                None => {
                    return Err(ManagerError::Exists { key: key.s3_key(), where_: Backend::Local });
                }
            },
        };
        self.index_local(key, &meta)
    }

    /// Removes a local copy and its index row; whether there was one.
    fn delete_local(&self, key: &ObjectKey) -> Result<bool, ManagerError> {
        let removed = self.local.delete(key)?;
        self.state.write(|tx| tx.local().remove_object(&key.s3_key()))?;
        Ok(removed)
    }

    /// Lands a save locally while S3 cannot take it (an outage, or the month's request budget
    /// is spent), and queues it for sync.
    fn save_pending(
        &self,
        key: &ObjectKey,
        bytes: &[u8],
        why: &str,
        mode: PutMode,
    ) -> Result<SaveOutcome, ManagerError> {
        self.put_local(key, bytes, mode)?;
        self.journal.record(key, bytes.len() as u64, &sha256(bytes), now_ms().max(0) as u64)?;
        tracing::info!("saved {} locally and queued it for sync: {why}", key.s3_key());
        Ok(SaveOutcome {
            backend: Backend::Local,
            key: key.s3_key(),
            bytes: bytes.len() as u64,
            cleaned: Vec::new(),
            pending_sync: Some(why.to_owned()),
        })
    }

    /// Carries out planned deletions in S3 and keeps the cached inventory in step.
    pub async fn delete_planned_s3(&self, deletions: &[Deletion]) -> Result<(), ManagerError> {
        if deletions.is_empty() {
            return Ok(());
        }
        let s3 = self.require_s3()?;
        let mut done = Vec::new();
        let mut failure = None;
        for d in deletions {
            match s3.delete(&ObjectKey::from_s3_key(&d.key)?).await {
                Ok(()) => done.push(d.key.clone()),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        CLEANUP_DELETIONS.fetch_add(done.len() as u64, std::sync::atomic::Ordering::Relaxed);
        self.record_requests()?;
        self.state.write(|tx| {
            for k in &done {
                tx.remove_object(k)?;
            }
            Ok::<(), ManagerError>(())
        })?;
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Carries out planned deletions in the local data directory.
    pub fn delete_planned_local(&self, deletions: &[Deletion]) -> Result<(), ManagerError> {
        for d in deletions {
            if self.delete_local(&ObjectKey::from_s3_key(&d.key)?)? {
                CLEANUP_DELETIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Reads an object: the newest copy when both S3 and local disk hold one.
    pub async fn load(&self, key: &ObjectKey) -> Result<(Vec<u8>, Backend), ManagerError> {
        self.load_checked(key).await.map(|(bytes, backend, _)| (bytes, backend))
    }

    /// Like [`Manager::load`], and why S3 could not be asked when S3 is configured but was
    /// unreachable and the local copy was read instead (it may be older: a degraded answer).
    pub async fn load_checked(
        &self,
        key: &ObjectKey,
    ) -> Result<(Vec<u8>, Backend, Option<String>), ManagerError> {
        let mut degraded = None;
        let local_meta = self.local.head(key)?;
        if let Some(s3) = &self.s3 {
            let s3_key = key.s3_key();
            // A copy queued for sync is newer than whatever S3 holds.
            let pending = local_meta.is_some()
                && self.journal.pending()?.iter().any(|p| p.key.s3_key() == s3_key);
            if !pending {
                let remote = match &local_meta {
                    // Both may exist (not migrated yet): compare ages, costing one HEAD.
                    Some(local) => match s3.head(key).await {
                        Ok(Some(m)) if m.last_modified.as_u64() >= local.last_modified_ms => {
                            Some(true)
                        }
                        Ok(_) => None,
                        Err(e) if e.is_outage() => {
                            degraded = Some(e.to_string());
                            None
                        }
                        Err(e) => return Err(e.into()),
                    },
                    None => Some(true),
                };
                if remote.is_some() {
                    let got = s3.get(key).await;
                    self.record_requests()?;
                    match got {
                        Ok(bytes) => return Ok((bytes, Backend::S3, None)),
                        Err(e) if e.is_not_found() => {}
                        Err(e) if e.is_outage() && local_meta.is_some() => {
                            degraded = Some(e.to_string());
                        }
                        Err(e) => return Err(e.into()),
                    }
                } else {
                    self.record_requests()?;
                }
            }
        }
        match self.local.get(key) {
            Ok(bytes) => Ok((bytes, Backend::Local, degraded)),
            Err(e) if e.is_not_found() => Err(ManagerError::NotFound {
                key: key.s3_key(),
                where_: if self.s3.is_some() {
                    "S3 or the local data directory"
                } else {
                    "the local data directory"
                },
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Lists one owner's files of one type across both backends, newest copy of each, newest
    /// first.
    pub async fn list(
        &self,
        owner: Option<&UserId>,
        data_type: DataType,
    ) -> Result<Vec<Listed>, ManagerError> {
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
        let scope = Scope::Type(owner, data_type);
        let mut newest: std::collections::BTreeMap<ObjectKey, (StoredObject, Backend)> =
            Default::default();
        for o in self.local.records(scope)? {
            newest.insert(o.key.clone(), (o, Backend::Local));
        }
        if let Some(s3) = &self.s3 {
            let listed = s3.list(scope).await;
            self.record_requests()?;
            let listed = match listed {
                Ok(l) => l.objects,
                // Like reads, a listing degrades to the local copies while S3 is down.
                Err(e) if e.is_outage() => {
                    tracing::warn!("S3 unreachable, listing local copies only: {e}");
                    degraded = Some(e.to_string());
                    Vec::new()
                }
                Err(e) => return Err(e.into()),
            };
            for o in listed {
                if newest.get(&o.key).is_some_and(|(l, _)| l.last_modified > o.last_modified) {
                    continue;
                }
                newest.insert(o.key.clone(), (o, Backend::S3));
            }
        }
        let mut out: Vec<Listed> = newest.values().map(|(o, b)| Listed::new(o, *b)).collect();
        out.sort_by(|a, b| {
            b.last_modified_ms.cmp(&a.last_modified_ms).then_with(|| a.name.cmp(&b.name))
        });
        Ok((out, degraded))
    }

    /// Deletes an object everywhere it is stored; `NotFound` when it was nowhere.
    pub async fn delete(&self, key: &ObjectKey) -> Result<Vec<Backend>, ManagerError> {
        let mut deleted = Vec::new();
        let s3_key = key.s3_key();
        if let Some(s3) = &self.s3 {
            let exists = s3.head(key).await;
            let outcome = match exists {
                Ok(Some(_)) => s3.delete(key).await.map(|()| true),
                Ok(None) => Ok(false),
                Err(e) => Err(e),
            };
            self.record_requests()?;
            if outcome? {
                deleted.push(Backend::S3);
                self.state.write(|tx| tx.remove_object(&s3_key))?;
            }
        }
        if self.delete_local(key)? {
            deleted.push(Backend::Local);
        }
        // A deleted key must not come back through a sync replay.
        if self.journal.pending()?.iter().any(|p| p.key == *key) {
            self.journal.complete(std::slice::from_ref(key))?;
        }
        if deleted.is_empty() {
            return Err(ManagerError::NotFound {
                key: s3_key,
                where_: if self.s3.is_some() {
                    "S3 or the local data directory"
                } else {
                    "the local data directory"
                },
            });
        }
        Ok(deleted)
    }
}

/// Why a queued save was not uploaded by [`Manager::sync`].
enum SyncStop {
    /// Leave it queued and go on with the next.
    Skip(String),
    /// Leave it and every later one queued (budget spent, S3 down).
    Stop(String),
    /// A failure of this installation's own state.
    Fail(ManagerError),
}

#[cfg(test)]
mod tests;
