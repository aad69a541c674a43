//! The one admission decision: may this upload go into storage, at what request cost, and
//! what cleanup follows once it is stored? Facts in, [`Decision`] out, no IO.
//!
//! Every path into storage asks here — the CLI's save, `kompass migrate` (through
//! [`Session`], the sequential variant), `kompass serve`'s presign and upload routes, the edge
//! function through wasm and the page's precheck — so a limit holds the same way on all of them.
//!
//! # Facts
//!
//! - the stored objects, typed ([`StoredObject`]: an [`ObjectKey`], size, last modification),
//!   plus the bytes of objects outside the key layout, which count against the bucket only;
//! - the [`Reservation`]s: uploads granted (a presigned URL handed out) but not yet seen
//!   stored. They count against quota bytes like stored objects, but they are never FIFO
//!   candidates and never count as files for min-keep, so a grant that is never used cannot
//!   make cleanup delete anything. They stop counting when they expire;
//! - the month's [`RequestLedger`];
//! - the [`Settings`]: size limits, the cleanup policy, the request budget;
//! - `now`, a [`UnixMs`].
//!
//! # Rules, in order
//!
//! 1. A file over the per-file limit is refused.
//! 2. With a request budget in force, an upload whose request cost would take the month's
//!    PUT-class (or GET-class) count past the budget is refused, with the date it resets.
//! 3. Quota and bucket limit (see [`crate::quota::admit`]): usage is stored bytes plus the
//!    bytes of live reservations (other than one at the same key), minus the object the upload
//!    overwrites; the hard limits may be met with what FIFO cleanup could free among *stored*
//!    files.
//!
//! # Cleanup runs after the store
//!
//! No stored object is deleted on behalf of an upload that is not stored: the cleanup in an
//! [`Admission`] is carried out once the bytes are stored (for a presigned upload, when the
//! upload is confirmed: call [`cleanup_after_store`] then, with the facts of that moment).
//! The price is a bounded, transient overshoot: between the store and its cleanup, usage may
//! exceed a limit by at most the bytes the cleanup then frees (itself at most the upload's
//! size plus the live reservations' bytes). Confirmed state never exceeds a hard limit.
//!
//! # Reservations and the threshold
//!
//! FIFO plans usage of stored objects only. To make reserved bytes count toward the cleanup
//! threshold without making them candidates, the plan runs against a limit lowered by
//! `ceil(100 · reserved / threshold%)`: "stored ≥ p% of (L − 100r/p)" is "stored + r ≥ p% of L".

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::fifo::{self, CleanupPlan, Policy};
use crate::inventory::{ObjectInfo, Tally};
use crate::key::{ObjectKey, UserId};
use crate::quota::{
    self, Freeable, RequestBudget, RequestClass, RequestLedger, UploadRequest, Verdict,
};
use crate::time::UnixMs;

pub mod allowance;

/// Default lifetime of a reservation: as long as a presigned URL (15 minutes).
pub const DEFAULT_RESERVATION_TTL_MS: u64 = 15 * 60 * 1000;

/// One stored object, as admission sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StoredObject {
    /// Where it is.
    pub key: ObjectKey,
    /// Size in bytes.
    pub size: u64,
    /// Last modification.
    pub last_modified: UnixMs,
}

/// An upload granted but not yet seen stored (a presigned URL handed out).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reservation {
    /// The key the upload goes to.
    pub key: ObjectKey,
    /// The bytes it may store.
    pub size: u64,
    /// When it was granted.
    pub granted_at: UnixMs,
    /// When it stops counting (the presigned URL's expiry).
    pub expires_at: UnixMs,
}

impl Reservation {
    /// Whether it still counts at `now`.
    pub fn is_live(&self, now: UnixMs) -> bool {
        self.expires_at > now
    }
}

/// How an upload reaches storage; decides its request cost and whether it is reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub enum Via {
    /// This process sends the PUT itself (CLI save, server upload, migrate, sync): one
    /// PUT-class request; the bytes are stored before the call returns.
    Direct,
    /// A presigned URL the caller uses later: one PUT-class request charged at grant, plus one
    /// HEAD (GET-class) to confirm it; reserved until `expires_at`.
    Presigned {
        /// The URL's expiry.
        expires_at: UnixMs,
    },
}

/// The upload being decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    /// Where it goes.
    pub key: ObjectKey,
    /// Its size in bytes.
    pub size: u64,
    /// How it gets there.
    #[serde(flatten)]
    pub via: Via,
}

/// Requests an admitted upload costs, per billable class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RequestCost {
    /// PUT-class requests (PUT, COPY, POST, LIST).
    pub put_class: u64,
    /// GET-class requests (GET, HEAD).
    pub get_class: u64,
}

impl RequestCost {
    /// The sum of two costs.
    pub fn plus(self, other: RequestCost) -> RequestCost {
        RequestCost {
            put_class: self.put_class.saturating_add(other.put_class),
            get_class: self.get_class.saturating_add(other.get_class),
        }
    }

    /// What an upload by `via` costs.
    pub fn of(via: Via) -> RequestCost {
        match via {
            Via::Direct => RequestCost { put_class: 1, get_class: 0 },
            Via::Presigned { .. } => RequestCost { put_class: 1, get_class: 1 },
        }
    }
}

/// The policy admission applies: limits, cleanup and the request budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Per-file, per-user and bucket limits and the cleanup threshold.
    pub limits: quota::Limits,
    /// Whether FIFO cleanup may make room (`S3_AUTO_CLEANUP_ENABLED`); off, quotas are hard
    /// limits against stored bytes.
    pub auto_cleanup: bool,
    /// Files kept per (user, data type), whatever the usage.
    pub min_files_to_keep: usize,
    /// The monthly request budget; `None` for a paid account that opted out
    /// (`KOMPASS_REQUEST_BUDGET=off`).
    pub budget: Option<RequestBudget>,
}

impl Default for Settings {
    /// The spec's limits, cleanup on, min-keep 5, the free tier's budget.
    fn default() -> Self {
        Settings {
            limits: quota::Limits::default(),
            auto_cleanup: true,
            min_files_to_keep: 5,
            budget: Some(RequestBudget::FREE_TIER),
        }
    }
}

impl Settings {
    fn policy(&self) -> Policy {
        Policy {
            threshold_percent: self.limits.cleanup_threshold_percent,
            min_files_to_keep: self.min_files_to_keep,
            min_age_ms: None,
        }
    }
}

/// Everything the decision looks at, borrowed from the caller.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The stored objects in the key layout: every one, or at least every object of the
    /// uploading owner when [`whole_inventory_needed`] says the others cannot matter.
    pub stored: &'a [StoredObject],
    /// Bytes of stored objects not in `stored` (outside the key layout, or left out by the
    /// caller): they count against the bucket and are never cleaned.
    pub unlisted_bytes: u64,
    /// Granted uploads not yet seen stored (expired ones are ignored).
    pub reservations: &'a [Reservation],
    /// Live reserved bytes not in `reservations` (summed by the caller instead of listed).
    pub unlisted_reserved: UnlistedReserved<'a>,
    /// This month's requests so far.
    pub ledger: &'a RequestLedger,
    /// The time of the decision.
    pub now: UnixMs,
}

/// Live reserved bytes a caller summed instead of listing in [`Facts::reservations`] (a driver
/// that holds many grants keeps running sums, so a decision costs the same however many
/// there are). List the reservation at the key being decided, if any, so that it is left out
/// as the rules say; one summed here counts. A decision for an owner other than `owner`
/// counts every unlisted byte as that owner's: never fewer bytes than the truth.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnlistedReserved<'a> {
    /// The owner `owner_bytes` belong to (`None`: global data).
    pub owner: Option<&'a UserId>,
    /// Of `bytes`, those of `owner`.
    pub owner_bytes: u64,
    /// All of them.
    pub bytes: u64,
}

/// Which limit refused an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// The per-file size limit.
    FileSize,
    /// The per-user quota.
    UserQuota,
    /// The bucket's total limit.
    Bucket,
    /// The month's PUT-class request budget.
    PutBudget,
    /// The month's GET-class request budget.
    GetBudget,
}

/// Why an upload is refused, and what the caller should do. Nothing was stored or deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "limit_kind", rename_all = "snake_case")]
pub enum Refusal {
    /// A size limit: the file, the user's quota or the bucket.
    #[error(transparent)]
    Size(quota::Refusal),
    /// The month's request budget would be exceeded.
    #[error(
        "this month's {class_name} request budget is spent ({used} of {limit} used, {needed} more needed); nothing was uploaded or deleted. It resets on {resets_at}; until then saves are kept locally and queued for sync. A paid account can raise KOMPASS_{class_var}_BUDGET or set KOMPASS_REQUEST_BUDGET=off",
        class_name = class_name(*.class), class_var = class_var(*.class)
    )]
    Budget {
        /// The class whose budget is spent.
        class: RequestClass,
        /// Requests of that class counted this month.
        used: u64,
        /// The monthly budget of that class.
        limit: u64,
        /// Requests the upload needs.
        needed: u64,
        /// The first instant of next month (UTC), when the budget renews.
        resets_at: UnixMs,
    },
}

fn class_name(class: RequestClass) -> &'static str {
    match class {
        RequestClass::PutClass => "PUT-class",
        RequestClass::GetClass => "GET-class",
        RequestClass::Free => "free",
    }
}

fn class_var(class: RequestClass) -> &'static str {
    match class {
        RequestClass::GetClass => "GET",
        _ => "PUT",
    }
}

impl Refusal {
    /// Which limit refused.
    pub fn limit(&self) -> Limit {
        match self {
            Refusal::Size(quota::Refusal::FileTooLarge { .. }) => Limit::FileSize,
            Refusal::Size(quota::Refusal::UserQuotaExceeded { .. }) => Limit::UserQuota,
            Refusal::Size(quota::Refusal::BucketFull { .. }) => Limit::Bucket,
            Refusal::Budget { class: RequestClass::GetClass, .. } => Limit::GetBudget,
            Refusal::Budget { .. } => Limit::PutBudget,
        }
    }

    /// When trying again can succeed without anyone deleting data (a budget's reset).
    pub fn retry_at(&self) -> Option<UnixMs> {
        match self {
            Refusal::Budget { resets_at, .. } => Some(*resets_at),
            Refusal::Size(_) => None,
        }
    }

    /// Whether the data should be kept locally and queued rather than dropped: the refusal is
    /// about requests, not bytes, so the same upload will fit later.
    pub fn queue_locally(&self) -> bool {
        matches!(self, Refusal::Budget { .. })
    }
}

/// An admitted upload: what to record, what it costs, what to clean once it is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Admission {
    /// The reservation to record now (for a direct upload, it lasts only until the store
    /// completes; the caller may skip recording it when the store and the inventory update
    /// are in the same transaction).
    pub reservation: Reservation,
    /// Requests the upload costs; charge the ledger with them.
    pub cost: RequestCost,
    /// Size of the stored object at the same key that the upload overwrites (0 if none).
    pub replaces: u64,
    /// Deletions to carry out *once the upload is stored*, oldest first. Always empty for a
    /// presigned upload: its cleanup is planned at confirmation ([`cleanup_after_store`]).
    pub cleanup: Vec<PlannedDeletion>,
}

/// One deletion in a cleanup: a typed key, its size and why it goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedDeletion {
    /// The object to delete.
    pub key: ObjectKey,
    /// Its size in bytes.
    pub size: u64,
    /// Its last modification.
    pub last_modified: UnixMs,
    /// Which limit's threshold it is deleted for, and from which group.
    #[serde(serialize_with = "fifo::shared_reason::serialize")]
    pub reason: Arc<fifo::Reason>,
}

impl PlannedDeletion {
    /// The same deletion in FIFO's report shape (string key), for plans shown to people.
    pub fn to_fifo(&self) -> fifo::Deletion {
        fifo::Deletion {
            key: self.key.s3_key(),
            size: self.size,
            last_modified_ms: self.last_modified.as_i64(),
            reason: Arc::clone(&self.reason),
        }
    }
}

/// The decision on one upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Store it; see [`Admission`].
    Admit(Admission),
    /// Do not store it; see [`Refusal`].
    Refuse(Refusal),
}

impl Decision {
    /// The admission, if admitted.
    pub fn admission(&self) -> Option<&Admission> {
        match self {
            Decision::Admit(a) => Some(a),
            Decision::Refuse(_) => None,
        }
    }

    /// The refusal, if refused.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Decision::Refuse(r) => Some(r),
            Decision::Admit(_) => None,
        }
    }

    /// As a `Result`, for `?` at the edges.
    pub fn into_result(self) -> Result<Admission, Refusal> {
        match self {
            Decision::Admit(a) => Ok(a),
            Decision::Refuse(r) => Err(r),
        }
    }
}

/// Decides one upload against `facts`. Pure: the same inputs always give the same decision.
pub fn decide(upload: &Upload, facts: &Facts<'_>, settings: &Settings) -> Decision {
    let view = View::of(facts);
    view.decide(upload, facts.ledger, facts.now, settings)
}

/// The cleanup to carry out now that `key` is stored, against the facts of this moment
/// (`facts.stored` includes the new object). For presigned uploads at confirmation, and for
/// the periodic cleanup; a direct save uses the cleanup in its [`Admission`].
pub fn cleanup_after_store(
    key: &ObjectKey,
    facts: &Facts<'_>,
    settings: &Settings,
) -> Vec<PlannedDeletion> {
    if !settings.auto_cleanup {
        return Vec::new();
    }
    let view = View::of(facts);
    let (user_res, bucket_res) = view.reserved(key.owner(), Some(key), facts.now);
    let stored_total = view.bucket_bytes();
    view.plan(key.owner(), None, stored_total, user_res, bucket_res, settings, facts.now)
        .map(|(_, d)| d)
        .unwrap_or_default()
}

/// Whether a decision on an upload of `size` bytes needs every stored object, or only the
/// owner's (with the others' bytes as [`Facts::unlisted_bytes`]): only when bucket-wide cleanup
/// may be due, i.e. the bucket (stored `bucket_bytes` plus live `reserved_bytes` plus the
/// upload) reaches the cleanup threshold of the bucket limit. Below it, other owners' objects
/// are never candidates, so leaving them out cannot change the decision; this keeps a save's
/// cost independent of the size of the bucket.
pub fn whole_inventory_needed(
    size: u64,
    bucket_bytes: u64,
    reserved_bytes: u64,
    settings: &Settings,
) -> bool {
    let after = bucket_bytes.saturating_add(reserved_bytes).saturating_add(size);
    settings.auto_cleanup
        && quota::cleanup_due(
            after,
            settings.limits.max_bucket_bytes,
            settings.limits.cleanup_threshold_percent,
        )
}

/// Sums and lookups over the facts, built once per decision.
struct View<'a> {
    stored: &'a [StoredObject],
    unlisted_bytes: u64,
    reservations: &'a [Reservation],
    unlisted_reserved: UnlistedReserved<'a>,
}

impl<'a> View<'a> {
    fn of(facts: &Facts<'a>) -> Self {
        View {
            stored: facts.stored,
            unlisted_bytes: facts.unlisted_bytes,
            reservations: facts.reservations,
            unlisted_reserved: facts.unlisted_reserved,
        }
    }

    fn bucket_bytes(&self) -> u64 {
        self.stored.iter().map(|o| o.size).sum::<u64>().saturating_add(self.unlisted_bytes)
    }

    fn user_bytes(&self, user: &UserId) -> u64 {
        self.stored.iter().filter(|o| o.key.owner() == Some(user)).map(|o| o.size).sum()
    }

    /// Live reserved bytes: of `owner` and of the bucket, leaving out a reservation at `skip`
    /// (an upload to the same key replaces its own earlier grant).
    fn reserved(
        &self,
        owner: Option<&UserId>,
        skip: Option<&ObjectKey>,
        now: UnixMs,
    ) -> (u64, u64) {
        let mut user = 0u64;
        let mut bucket = 0u64;
        for r in self.reservations.iter().filter(|r| r.is_live(now)) {
            // The name first: it tells most keys apart without comparing owners.
            if skip.is_some_and(|k| r.key.name() == k.name() && r.key == *k) {
                continue;
            }
            bucket = bucket.saturating_add(r.size);
            if owner.is_some() && r.key.owner() == owner {
                user = user.saturating_add(r.size);
            }
        }
        let u = &self.unlisted_reserved;
        bucket = bucket.saturating_add(u.bytes);
        if owner.is_some() {
            user = user.saturating_add(if u.owner == owner { u.owner_bytes } else { u.bytes });
        }
        (user, bucket)
    }

    fn decide(
        &self,
        upload: &Upload,
        ledger: &RequestLedger,
        now: UnixMs,
        settings: &Settings,
    ) -> Decision {
        let limits = &settings.limits;
        if let Err(refusal) = limits.check_file_size(upload.size) {
            return Decision::Refuse(Refusal::Size(refusal));
        }
        let cost = RequestCost::of(upload.via);
        if let Some(budget) = &settings.budget
            && let Some(refusal) = over_budget(ledger, budget, cost, now)
        {
            return Decision::Refuse(refusal);
        }

        let owner = upload.key.owner();
        let replaces = self.stored.iter().find(|o| o.key == upload.key).map_or(0, |o| o.size);
        let (user_res, bucket_res) = self.reserved(owner, Some(&upload.key), now);
        let stored_bucket = self.bucket_bytes();
        let usage = quota::CurrentUsage {
            user_bytes: owner.map_or(0, |u| self.user_bytes(u)).saturating_add(user_res),
            bucket_bytes: stored_bucket.saturating_add(bucket_res),
        };
        let (freeable, cleanup) = if settings.auto_cleanup {
            let incoming = StoredObject {
                key: upload.key.clone(),
                size: upload.size,
                last_modified: UnixMs::MAX,
            };
            match self.plan(
                owner,
                Some(&incoming),
                stored_bucket,
                user_res,
                bucket_res,
                settings,
                now,
            ) {
                Some((freeable, deletions)) => (freeable, deletions),
                None => (Freeable::NONE, Vec::new()),
            }
        } else {
            (Freeable::NONE, Vec::new())
        };
        let request =
            UploadRequest::new(upload.size, owner.map(UserId::as_str)).replacing(replaces);
        match quota::admit(&request, &usage, limits, &freeable) {
            Verdict::Refuse(r) => Decision::Refuse(Refusal::Size(r)),
            verdict => Decision::Admit(Admission {
                reservation: Reservation {
                    key: upload.key.clone(),
                    size: upload.size,
                    granted_at: now,
                    expires_at: match upload.via {
                        Via::Direct => now.plus_ms(DEFAULT_RESERVATION_TTL_MS),
                        Via::Presigned { expires_at } => expires_at,
                    },
                },
                cost,
                replaces,
                // A presigned upload's cleanup is planned when it is confirmed stored
                // (`cleanup_after_store`), so no driver can run it for bytes never sent.
                cleanup: match upload.via {
                    Via::Direct if verdict.cleanup().is_some() => cleanup,
                    _ => Vec::new(),
                },
            }),
        }
    }

    /// The FIFO plan as if `incoming` were stored (as the newest file, so never chosen), with
    /// reserved bytes lowering the limits (see the module documentation). Returns what it frees
    /// for the owner and the bucket, and its deletions. `None` when the policy is invalid.
    #[allow(clippy::too_many_arguments)]
    fn plan(
        &self,
        owner: Option<&UserId>,
        incoming: Option<&StoredObject>,
        stored_bucket: u64,
        user_res: u64,
        bucket_res: u64,
        settings: &Settings,
        now: UnixMs,
    ) -> Option<(Freeable, Vec<PlannedDeletion>)> {
        let policy = settings.policy();
        let percent = settings.limits.cleanup_threshold_percent;
        let lowered = |limit: u64, reserved: u64| {
            let p = u128::from(percent.max(1));
            let cut = (u128::from(reserved) * 100).div_ceil(p);
            limit.saturating_sub(u64::try_from(cut).unwrap_or(u64::MAX))
        };
        let limits = fifo::Capacity {
            user_quota_bytes: lowered(settings.limits.max_user_bytes, user_res),
            bucket_bytes: lowered(settings.limits.max_bucket_bytes, bucket_res),
        };
        // The FIFO planner works on its report shape; a `(key → typed key)` table maps its
        // deletions back without parsing.
        let mut objects: Vec<ObjectInfo> = Vec::with_capacity(self.stored.len() + 1);
        let mut typed: Vec<&ObjectKey> = Vec::with_capacity(self.stored.len() + 1);
        let incoming_key = incoming.map(|o| &o.key);
        for o in self.stored.iter().filter(|o| Some(&o.key) != incoming_key).chain(incoming) {
            objects.push(info(o));
            typed.push(&o.key);
        }
        if self.unlisted_bytes > 0 {
            // Unlisted: one global group that is never cleanable, so the bucket-wide plan counts
            // its bytes and never deletes it. Its key is not a valid object key.
            objects.push(ObjectInfo {
                key: String::new(),
                size: self.unlisted_bytes,
                last_modified_ms: i64::MIN,
                sha256: None,
                user: None,
                data_type: UNLISTED_GROUP.to_owned(),
            });
        }
        let replaced = incoming
            .and_then(|i| self.stored.iter().find(|o| o.key == i.key))
            .map_or(0, |o| o.size);
        let after_bucket =
            stored_bucket.saturating_sub(replaced).saturating_add(incoming.map_or(0, |o| o.size));
        let bucket_due = policy.threshold_reached(after_bucket, limits.bucket_bytes);
        let plan: CleanupPlan = match owner {
            _ if bucket_due => fifo::plan_bucket(&objects, &policy, &limits, now.as_i64()).ok()?,
            Some(u) => {
                fifo::plan_user(&objects, u.as_str(), &policy, &limits, now.as_i64()).ok()?
            }
            None => CleanupPlan::default(),
        };
        let by_key: HashMap<&str, usize> = if plan.deletions.is_empty() {
            HashMap::new()
        } else {
            objects[..typed.len()].iter().enumerate().map(|(i, o)| (o.key.as_str(), i)).collect()
        };
        let mut freeable = Freeable { user_bytes: 0, bucket_bytes: plan.bytes_freed };
        let mut deletions = Vec::with_capacity(plan.deletions.len());
        for d in plan.deletions {
            let Some(&i) = by_key.get(d.key.as_str()) else { continue };
            let key = typed[i].clone();
            if owner.is_some() && key.owner() == owner {
                freeable.user_bytes += d.size;
            }
            deletions.push(PlannedDeletion {
                key,
                size: d.size,
                last_modified: UnixMs(d.last_modified_ms),
                reason: d.reason,
            });
        }
        Some((freeable, deletions))
    }
}

/// The group name of unlisted bytes (not a data type, so never cleanable).
const UNLISTED_GROUP: &str = "(unlisted)";

/// The report shape of a typed record (for `inventory::usage`, the FIFO planner, monitor).
impl From<&StoredObject> for ObjectInfo {
    fn from(o: &StoredObject) -> Self {
        info(o)
    }
}

fn info(o: &StoredObject) -> ObjectInfo {
    ObjectInfo {
        key: o.key.s3_key(),
        size: o.size,
        last_modified_ms: o.last_modified.as_i64(),
        sha256: None,
        user: o.key.owner().map(|u| u.as_str().to_owned()),
        data_type: o.key.data_type().as_str().to_owned(),
    }
}

/// The refusal when `cost` more requests would exceed `budget` this month, else `None`.
pub fn over_budget(
    ledger: &RequestLedger,
    budget: &RequestBudget,
    cost: RequestCost,
    now: UnixMs,
) -> Option<Refusal> {
    let mut ledger = ledger.clone();
    ledger.advance_to(now.as_u64());
    let resets_at = UnixMs(ledger.month.next().start_unix_ms());
    for (class, needed, limit) in [
        (RequestClass::PutClass, cost.put_class, budget.put_class),
        (RequestClass::GetClass, cost.get_class, budget.get_class),
    ] {
        let used = ledger.count(class);
        if needed > 0 && used.saturating_add(needed) > limit {
            return Some(Refusal::Budget { class, used, limit, needed, resets_at });
        }
    }
    None
}

/// The sequential variant: decides uploads one after another, each seeing the ones before
/// it as stored (direct uploads) or reserved (presigned), their request costs charged and
/// their cleanups done. For `kompass migrate` and sync over many files: the run stops being
/// admitted exactly where a one-at-a-time run would.
#[derive(Debug, Clone)]
pub struct Session {
    stored: Vec<StoredObject>,
    index: HashMap<ObjectKey, usize>,
    unlisted_bytes: u64,
    reservations: Vec<Reservation>,
    /// [`Facts::unlisted_reserved`], owned: (owner, owner's bytes, all bytes).
    unlisted_reserved: (Option<UserId>, u64, u64),
    ledger: RequestLedger,
    settings: Settings,
}

impl Session {
    /// A session starting from `facts` (copied).
    pub fn new(facts: &Facts<'_>, settings: Settings) -> Self {
        let stored = facts.stored.to_vec();
        let index = stored.iter().enumerate().map(|(i, o)| (o.key.clone(), i)).collect();
        let mut ledger = facts.ledger.clone();
        ledger.advance_to(facts.now.as_u64());
        Session {
            stored,
            index,
            unlisted_bytes: facts.unlisted_bytes,
            reservations: facts
                .reservations
                .iter()
                .filter(|r| r.is_live(facts.now))
                .cloned()
                .collect(),
            unlisted_reserved: (
                facts.unlisted_reserved.owner.cloned(),
                facts.unlisted_reserved.owner_bytes,
                facts.unlisted_reserved.bytes,
            ),
            ledger,
            settings,
        }
    }

    /// Decides `upload` at `now` and, when admitted, applies it to the session's facts as
    /// if carried out: stored (or reserved), charged, cleaned.
    pub fn decide(&mut self, upload: &Upload, now: UnixMs) -> Decision {
        let (owner, owner_bytes, bytes) = &self.unlisted_reserved;
        let view = View {
            stored: &self.stored,
            unlisted_bytes: self.unlisted_bytes,
            reservations: &self.reservations,
            unlisted_reserved: UnlistedReserved {
                owner: owner.as_ref(),
                owner_bytes: *owner_bytes,
                bytes: *bytes,
            },
        };
        let decision = view.decide(upload, &self.ledger, now, &self.settings);
        if let Decision::Admit(a) = &decision {
            self.apply(upload, a, now);
        }
        decision
    }

    /// The ledger as charged so far.
    pub fn ledger(&self) -> &RequestLedger {
        &self.ledger
    }

    /// The objects as stored once every admitted upload and cleanup is carried out.
    pub fn stored(&self) -> &[StoredObject] {
        &self.stored
    }

    fn apply(&mut self, upload: &Upload, a: &Admission, now: UnixMs) {
        self.ledger.record_many(quota::RequestKind::Put, a.cost.put_class, now.as_u64());
        self.ledger.record_many(quota::RequestKind::Head, a.cost.get_class, now.as_u64());
        self.reservations.retain(|r| r.key != upload.key && r.is_live(now));
        match upload.via {
            Via::Presigned { .. } => self.reservations.push(a.reservation.clone()),
            Via::Direct => {
                let object =
                    StoredObject { key: upload.key.clone(), size: upload.size, last_modified: now };
                match self.index.get(&upload.key) {
                    Some(&i) => self.stored[i] = object,
                    None => {
                        self.index.insert(upload.key.clone(), self.stored.len());
                        self.stored.push(object);
                    }
                }
                for d in &a.cleanup {
                    self.remove(&d.key);
                }
            }
        }
    }

    fn remove(&mut self, key: &ObjectKey) {
        let Some(i) = self.index.remove(key) else { return };
        self.stored.swap_remove(i);
        if let Some(moved) = self.stored.get(i) {
            self.index.insert(moved.key.clone(), i);
        }
    }
}

/// Totals of a set of stored objects, for reports.
pub fn tally(stored: &[StoredObject]) -> Tally {
    let mut t = Tally::default();
    for o in stored {
        t.add(o.size);
    }
    t
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::FileSize => "per-file size limit",
            Limit::UserQuota => "user quota",
            Limit::Bucket => "bucket limit",
            Limit::PutBudget => "PUT-class request budget",
            Limit::GetBudget => "GET-class request budget",
        })
    }
}

#[cfg(test)]
mod tests;
