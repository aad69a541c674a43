//! Admission of an upload: may it be stored, and must cleanup run first?
//!
//! The rules, in the order they are applied:
//! 1. **File size.** A file over `max_file_bytes` is refused before anything else, so the
//!    caller makes no request and deletes nothing for it.
//! 2. **User quota** (only for user data, `user: Some(..)`). Usage after the upload is
//!    `projected = used − replaces + size` (`replaces`: bytes of an object at the same key that
//!    the upload overwrites). The quota is a hard limit *after* cleanup: if
//!    `projected − max_user_bytes` is more than cleanup can free for this user, the upload is
//!    refused; if it is positive but freeable, cleanup must free that much *before* the upload.
//! 3. **Bucket limit**, likewise with the bucket total and what bucket-wide cleanup can free
//!    (which includes this user's files: the two are not additive).
//!
//! Past the hard limits, crossing the cleanup threshold (default 70 %) makes cleanup *due*
//! without blocking the upload. So the verdict is one of:
//! - [`Verdict::Admit`]: fits, and stays below the threshold;
//! - [`Verdict::AdmitCleanupDue`]: fits now; afterwards usage is at or above the threshold, so
//!   cleanup should run (when auto-cleanup is on) to free [`ScopeNeed::target_bytes`];
//! - [`Verdict::AdmitAfterCleanup`]: fits only once cleanup has freed at least
//!   [`ScopeNeed::required_bytes`] (and ideally `target_bytes`);
//! - [`Verdict::Refuse`]: does not fit, even after cleanup.
//!
//! The caller asks "does it fit now?" by passing [`Freeable::NONE`] (the verdict is then never
//! `AdmitAfterCleanup`), and "would it fit if cleanup freed X?" by passing X. With
//! auto-cleanup disabled, pass [`Freeable::NONE`]: the quota stays a hard limit.

use serde::{Deserialize, Serialize};

use super::alert::reached;
use super::size::{ByteSize, GIB, MIB};

/// Default per-file limit: 50 MiB (`S3_MAX_FILE_SIZE_MB=50`).
pub const DEFAULT_MAX_FILE_BYTES: u64 = 50 * MIB;
/// Default per-user quota: 100 MiB (`S3_MAX_USER_STORAGE_MB=100`).
pub const DEFAULT_MAX_USER_BYTES: u64 = 100 * MIB;
/// Default bucket limit: 4.5 GiB, 90 % of the 5 GB free tier (`S3_MAX_TOTAL_STORAGE_GB=4.5`).
pub const DEFAULT_MAX_BUCKET_BYTES: u64 = 4 * GIB + GIB / 2;
/// Default cleanup threshold in percent (`S3_CLEANUP_THRESHOLD_PERCENT=70`).
pub const DEFAULT_CLEANUP_THRESHOLD_PERCENT: u8 = 70;

/// The upload being considered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadRequest<'a> {
    /// Size of the upload in bytes.
    pub size: u64,
    /// The owning user; `None` for global data, which counts only against the bucket.
    pub user: Option<&'a str>,
    /// Size of an existing object at the same key that the upload overwrites (0 for a new key).
    pub replaces: u64,
}

impl<'a> UploadRequest<'a> {
    /// An upload of `size` bytes to a new key.
    pub fn new(size: u64, user: Option<&'a str>) -> Self {
        UploadRequest { size, user, replaces: 0 }
    }

    /// The same upload, overwriting an existing object of `bytes` bytes.
    pub fn replacing(self, bytes: u64) -> Self {
        UploadRequest { replaces: bytes, ..self }
    }
}

/// Current usage, before the upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CurrentUsage {
    /// Bytes stored by the uploading user (ignored for global data).
    pub user_bytes: u64,
    /// Bytes stored in the whole bucket.
    pub bucket_bytes: u64,
}

/// The limits that apply to uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest accepted file.
    pub max_file_bytes: u64,
    /// Hard quota per user.
    pub max_user_bytes: u64,
    /// Hard limit for the whole bucket.
    pub max_bucket_bytes: u64,
    /// Usage (in % of a limit) at which cleanup becomes due.
    pub cleanup_threshold_percent: u8,
}

impl Limits {
    /// Refuses a file over the size limit: the first check of every admission, and one an
    /// entry point may make alone before it reads or writes a body.
    pub fn check_file_size(&self, size: u64) -> Result<(), Refusal> {
        if size > self.max_file_bytes {
            return Err(Refusal::FileTooLarge { size, limit: self.max_file_bytes });
        }
        Ok(())
    }
}

impl Default for Limits {
    /// The spec's defaults: 50 MiB per file, 100 MiB per user, 4.5 GiB per bucket, 70 %.
    fn default() -> Self {
        Limits {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_user_bytes: DEFAULT_MAX_USER_BYTES,
            max_bucket_bytes: DEFAULT_MAX_BUCKET_BYTES,
            cleanup_threshold_percent: DEFAULT_CLEANUP_THRESHOLD_PERCENT,
        }
    }
}

/// How many bytes cleanup could free (from a FIFO plan, or 0 when cleanup is off).
///
/// Neither count may include the object the upload replaces: its bytes are already credited
/// through [`UploadRequest::replaces`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Freeable {
    /// Bytes that cleanup of this user's files could free.
    pub user_bytes: u64,
    /// Bytes that bucket-wide cleanup could free (this user's files included).
    pub bucket_bytes: u64,
}

impl Freeable {
    /// No cleanup: asks whether the upload fits as things are.
    pub const NONE: Freeable = Freeable { user_bytes: 0, bucket_bytes: 0 };
}

/// How much one scope (the user, or the bucket) should shed around the upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ScopeNeed {
    /// Bytes that must be freed before the upload, or the hard limit is exceeded.
    pub required_bytes: u64,
    /// Bytes whose removal brings usage after the upload below the cleanup threshold
    /// (at least `required_bytes`; may exceed what cleanup can free: free what it can).
    pub target_bytes: u64,
}

/// Cleanup that should accompany an admitted upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct CleanupNeed {
    /// For the uploading user (all zero for global data).
    pub user: ScopeNeed,
    /// For the whole bucket; deletions in the user's cleanup count towards it.
    pub bucket: ScopeNeed,
}

impl CleanupNeed {
    /// Whether cleanup must run before the upload.
    pub fn must_run_first(&self) -> bool {
        self.user.required_bytes > 0 || self.bucket.required_bytes > 0
    }
}

/// Why an upload is refused. Each message says what is wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Refusal {
    /// The file alone is over the per-file limit.
    #[error(
        "the file is {} ({size} bytes), over the per-file limit of {} ({limit} bytes); nothing was uploaded or deleted. Upload a smaller file (the limit is set by S3_MAX_FILE_SIZE_MB)",
        ByteSize(*.size), ByteSize(*.limit)
    )]
    FileTooLarge {
        /// Size of the file.
        size: u64,
        /// The per-file limit.
        limit: u64,
    },
    /// The user's quota would be exceeded even after cleanup.
    #[error(
        "storing {} would bring user {user} to {} of a {} quota, and cleanup can free only {}; nothing was uploaded or deleted. Delete some of this user's files first (the quota is set by S3_MAX_USER_STORAGE_MB)",
        ByteSize(*.size), ByteSize(*.projected), ByteSize(*.limit), ByteSize(*.freeable)
    )]
    UserQuotaExceeded {
        /// The user.
        user: String,
        /// Size of the file.
        size: u64,
        /// The user's usage after the upload, before cleanup.
        projected: u64,
        /// The user quota.
        limit: u64,
        /// What cleanup could free for this user.
        freeable: u64,
    },
    /// The bucket limit would be exceeded even after cleanup.
    #[error(
        "storing {} would bring the bucket to {} of its {} limit, and cleanup can free only {}; nothing was uploaded or deleted. Delete data or raise S3_MAX_TOTAL_STORAGE_GB",
        ByteSize(*.size), ByteSize(*.projected), ByteSize(*.limit), ByteSize(*.freeable)
    )]
    BucketFull {
        /// Size of the file.
        size: u64,
        /// The bucket's usage after the upload, before cleanup.
        projected: u64,
        /// The bucket limit.
        limit: u64,
        /// What bucket-wide cleanup could free.
        freeable: u64,
    },
}

impl Refusal {
    /// Bytes by which the upload misses its limit even after cleanup.
    pub fn over_by(&self) -> u64 {
        match *self {
            Refusal::FileTooLarge { size, limit } => size.saturating_sub(limit),
            Refusal::UserQuotaExceeded { projected, limit, freeable, .. }
            | Refusal::BucketFull { projected, limit, freeable, .. } => {
                projected.saturating_sub(limit).saturating_sub(freeable)
            }
        }
    }
}

/// The decision on an upload (see the module documentation for the rules).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Fits and stays below the cleanup threshold.
    Admit,
    /// Fits now; cleanup is due afterwards (usage reaches the threshold).
    AdmitCleanupDue(CleanupNeed),
    /// Fits once cleanup has freed the required bytes; run it first.
    AdmitAfterCleanup(CleanupNeed),
    /// Does not fit even after cleanup.
    Refuse(Refusal),
}

impl Verdict {
    /// Whether the upload may proceed (possibly after cleanup).
    pub fn is_admitted(&self) -> bool {
        !matches!(self, Verdict::Refuse(_))
    }

    /// The cleanup to run, if any.
    pub fn cleanup(&self) -> Option<&CleanupNeed> {
        match self {
            Verdict::AdmitCleanupDue(need) | Verdict::AdmitAfterCleanup(need) => Some(need),
            Verdict::Admit | Verdict::Refuse(_) => None,
        }
    }

    /// The refusal, if refused.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Verdict::Refuse(r) => Some(r),
            _ => None,
        }
    }
}

/// Outcome for one scope: its cleanup need, or by how much it misses after cleanup.
enum ScopeOutcome {
    Fits(ScopeNeed),
    Over { projected: u64, freeable: u64 },
}

/// Largest usage still below the threshold, or `None` if no usage is (a threshold of 0 %).
fn max_below_threshold(limit: u64, percent: u8) -> Option<u64> {
    // Smallest u with u*100 >= p*limit is ceil(p*limit/100); one less is the largest below.
    let first_due = (u128::from(percent) * u128::from(limit)).div_ceil(100);
    let below = first_due.checked_sub(1)?;
    Some(u64::try_from(below).unwrap_or(u64::MAX))
}

fn assess_scope(
    used: u64,
    replaces: u64,
    size: u64,
    limit: u64,
    percent: u8,
    freeable: u64,
) -> ScopeOutcome {
    let remaining = used.saturating_sub(replaces);
    let projected = remaining.saturating_add(size);
    // Cleanup cannot free more than is stored besides the object being replaced.
    let freeable = freeable.min(remaining);
    let required = projected.saturating_sub(limit);
    if required > freeable {
        return ScopeOutcome::Over { projected, freeable };
    }
    let target = if projected > 0 && reached(projected, limit, percent) {
        match max_below_threshold(limit, percent) {
            Some(below) => projected.saturating_sub(below),
            None => projected,
        }
    } else {
        0
    };
    ScopeOutcome::Fits(ScopeNeed { required_bytes: required, target_bytes: target.max(required) })
}

/// Decides whether an upload may be stored; see the module documentation for the rules.
pub fn admit(
    upload: &UploadRequest<'_>,
    usage: &CurrentUsage,
    limits: &Limits,
    freeable: &Freeable,
) -> Verdict {
    if let Err(refusal) = limits.check_file_size(upload.size) {
        return Verdict::Refuse(refusal);
    }
    let percent = limits.cleanup_threshold_percent;

    let user_need = match upload.user {
        None => ScopeNeed::default(),
        Some(user) => match assess_scope(
            usage.user_bytes,
            upload.replaces,
            upload.size,
            limits.max_user_bytes,
            percent,
            freeable.user_bytes,
        ) {
            ScopeOutcome::Fits(need) => need,
            ScopeOutcome::Over { projected, freeable } => {
                return Verdict::Refuse(Refusal::UserQuotaExceeded {
                    user: user.to_string(),
                    size: upload.size,
                    projected,
                    limit: limits.max_user_bytes,
                    freeable,
                });
            }
        },
    };

    let bucket_need = match assess_scope(
        usage.bucket_bytes,
        upload.replaces,
        upload.size,
        limits.max_bucket_bytes,
        percent,
        freeable.bucket_bytes,
    ) {
        ScopeOutcome::Fits(need) => need,
        ScopeOutcome::Over { projected, freeable } => {
            return Verdict::Refuse(Refusal::BucketFull {
                size: upload.size,
                projected,
                limit: limits.max_bucket_bytes,
                freeable,
            });
        }
    };

    let need = CleanupNeed { user: user_need, bucket: bucket_need };
    if need.must_run_first() {
        Verdict::AdmitAfterCleanup(need)
    } else if need.user.target_bytes > 0 || need.bucket.target_bytes > 0 {
        Verdict::AdmitCleanupDue(need)
    } else {
        Verdict::Admit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::{AlertLevel, alert_level};
    use proptest::prelude::*;

    const ALICE: Option<&str> = Some("alice");

    fn limits() -> Limits {
        Limits::default()
    }

    fn usage(user: u64, bucket: u64) -> CurrentUsage {
        CurrentUsage { user_bytes: user, bucket_bytes: bucket }
    }

    fn freeable(user: u64, bucket: u64) -> Freeable {
        Freeable { user_bytes: user, bucket_bytes: bucket }
    }

    #[test]
    fn defaults_match_the_spec() {
        let l = Limits::default();
        assert_eq!(l.max_file_bytes, 52_428_800);
        assert_eq!(l.max_user_bytes, 104_857_600);
        assert_eq!(l.max_bucket_bytes, 4_831_838_208);
        assert_eq!(l.cleanup_threshold_percent, 70);
    }

    #[test]
    fn limits_usage_and_freeable_round_trip_through_json() {
        let l = Limits {
            max_file_bytes: 1,
            max_user_bytes: 2,
            max_bucket_bytes: 3,
            cleanup_threshold_percent: 4,
        };
        let json = serde_json::to_string(&l).unwrap();
        assert_eq!(
            json,
            r#"{"max_file_bytes":1,"max_user_bytes":2,"max_bucket_bytes":3,"cleanup_threshold_percent":4}"#
        );
        assert_eq!(serde_json::from_str::<Limits>(&json).unwrap(), l);
        let u: CurrentUsage = serde_json::from_str(r#"{"user_bytes":5,"bucket_bytes":6}"#).unwrap();
        assert_eq!(u, usage(5, 6));
        let f: Freeable = serde_json::from_str(r#"{"user_bytes":7,"bucket_bytes":8}"#).unwrap();
        assert_eq!(f, freeable(7, 8));
    }

    #[test]
    fn small_upload_to_empty_storage_is_admitted() {
        let v = admit(&UploadRequest::new(MIB, ALICE), &usage(0, 0), &limits(), &Freeable::NONE);
        assert_eq!(v, Verdict::Admit);
        assert!(v.is_admitted());
        assert!(v.cleanup().is_none());
    }

    #[test]
    fn file_at_the_limit_is_admitted_and_one_byte_over_is_refused() {
        let l = limits();
        let at =
            admit(&UploadRequest::new(l.max_file_bytes, None), &usage(0, 0), &l, &Freeable::NONE);
        assert!(at.is_admitted(), "{at:?}");
        let over = admit(
            &UploadRequest::new(l.max_file_bytes + 1, None),
            &usage(0, 0),
            &l,
            &Freeable::NONE,
        );
        assert_eq!(
            over,
            Verdict::Refuse(Refusal::FileTooLarge {
                size: l.max_file_bytes + 1,
                limit: l.max_file_bytes
            })
        );
    }

    #[test]
    fn oversize_is_refused_before_quota_or_cleanup_is_considered() {
        // Both the user and the bucket are over their limits too; the reason is still file size.
        let l = limits();
        let v = admit(
            &UploadRequest::new(60 * MIB, ALICE),
            &usage(200 * MIB, 10 * GIB),
            &l,
            &freeable(u64::MAX, u64::MAX),
        );
        assert!(matches!(v, Verdict::Refuse(Refusal::FileTooLarge { .. })), "{v:?}");
        assert!(v.cleanup().is_none());
    }

    #[test]
    fn crossing_the_threshold_makes_cleanup_due_but_does_not_block() {
        // 60 MiB + 20 MiB = 80 MiB of 100 MiB: over 70 %, under the quota.
        let v = admit(
            &UploadRequest::new(20 * MIB, ALICE),
            &usage(60 * MIB, 60 * MIB),
            &limits(),
            &Freeable::NONE,
        );
        let Verdict::AdmitCleanupDue(need) = v else { panic!("{v:?}") };
        assert_eq!(need.user.required_bytes, 0);
        // Below 70 MiB means at most 73,400,319 bytes: 80 MiB − that.
        assert_eq!(need.user.target_bytes, 80 * MIB - (70 * MIB - 1));
        assert_eq!(
            alert_level(80 * MIB - need.user.target_bytes, 100 * MIB, 70),
            AlertLevel::Normal
        );
        assert_eq!(need.bucket, ScopeNeed::default());
        assert!(!need.must_run_first());
    }

    #[test]
    fn exactly_at_the_threshold_is_due_and_one_byte_below_is_not() {
        let l = limits();
        let t = 70 * MIB; // 70 % of 100 MiB exactly
        let at = admit(&UploadRequest::new(MIB, ALICE), &usage(t - MIB, 0), &l, &Freeable::NONE);
        assert_eq!(at.cleanup().unwrap().user.target_bytes, 1);
        let below =
            admit(&UploadRequest::new(MIB - 1, ALICE), &usage(t - MIB, 0), &l, &Freeable::NONE);
        assert_eq!(below, Verdict::Admit);
    }

    #[test]
    fn over_the_quota_but_freeable_requires_cleanup_first() {
        // 95 MiB + 10 MiB = 105 MiB: 5 MiB over the quota; cleanup can free 30 MiB.
        let v = admit(
            &UploadRequest::new(10 * MIB, ALICE),
            &usage(95 * MIB, 95 * MIB),
            &limits(),
            &freeable(30 * MIB, 30 * MIB),
        );
        let Verdict::AdmitAfterCleanup(need) = v else { panic!("{v:?}") };
        assert_eq!(need.user.required_bytes, 5 * MIB);
        assert_eq!(need.user.target_bytes, 105 * MIB - (70 * MIB - 1));
        assert!(need.must_run_first());
    }

    #[test]
    fn over_the_quota_and_not_freeable_is_refused() {
        let v = admit(
            &UploadRequest::new(10 * MIB, ALICE),
            &usage(95 * MIB, 95 * MIB),
            &limits(),
            &freeable(5 * MIB - 1, GIB),
        );
        let Verdict::Refuse(r) = &v else { panic!("{v:?}") };
        assert_eq!(
            *r,
            Refusal::UserQuotaExceeded {
                user: "alice".into(),
                size: 10 * MIB,
                projected: 105 * MIB,
                limit: 100 * MIB,
                freeable: 5 * MIB - 1,
            }
        );
        assert_eq!(r.over_by(), 1);
        let msg = r.to_string();
        assert!(msg.contains("user alice"), "{msg}");
        assert!(msg.contains("105 MiB of a 100 MiB quota"), "{msg}");
        assert!(msg.contains("S3_MAX_USER_STORAGE_MB"), "{msg}");
    }

    #[test]
    fn does_it_fit_now_versus_after_cleanup() {
        let req = UploadRequest::new(10 * MIB, ALICE);
        let u = usage(95 * MIB, 95 * MIB);
        assert!(matches!(admit(&req, &u, &limits(), &Freeable::NONE), Verdict::Refuse(_)));
        assert!(matches!(
            admit(&req, &u, &limits(), &freeable(5 * MIB, 5 * MIB)),
            Verdict::AdmitAfterCleanup(_)
        ));
    }

    #[test]
    fn freeable_is_capped_at_what_is_stored() {
        // A file larger than the whole quota can never fit, whatever the caller claims.
        let l = Limits { max_file_bytes: GIB, ..limits() };
        let v = admit(
            &UploadRequest::new(101 * MIB, ALICE),
            &usage(MIB, MIB),
            &l,
            &freeable(u64::MAX, u64::MAX),
        );
        let Some(Refusal::UserQuotaExceeded { freeable, .. }) = v.refusal() else {
            panic!("{v:?}")
        };
        assert_eq!(*freeable, MIB);
    }

    #[test]
    fn overwriting_an_object_credits_its_size() {
        // 100 MiB used, of which 10 MiB is the object being overwritten with 10 MiB: still fits.
        let req = UploadRequest::new(10 * MIB, ALICE).replacing(10 * MIB);
        let v = admit(&req, &usage(100 * MIB, 100 * MIB), &limits(), &Freeable::NONE);
        let Verdict::AdmitCleanupDue(need) = v else { panic!("{v:?}") };
        assert_eq!(need.user.required_bytes, 0);
        // Without the credit it would be refused.
        let v = admit(
            &UploadRequest::new(10 * MIB, ALICE),
            &usage(100 * MIB, 100 * MIB),
            &limits(),
            &Freeable::NONE,
        );
        assert!(!v.is_admitted());
    }

    #[test]
    fn global_data_ignores_the_user_quota() {
        let v = admit(
            &UploadRequest::new(40 * MIB, None),
            &usage(100 * MIB, GIB),
            &limits(),
            &Freeable::NONE,
        );
        assert_eq!(v, Verdict::Admit);
    }

    #[test]
    fn bucket_limit_applies_to_everyone() {
        let l = limits();
        let full = l.max_bucket_bytes;
        let v = admit(&UploadRequest::new(MIB, None), &usage(0, full), &l, &Freeable::NONE);
        let Some(Refusal::BucketFull { projected, limit, .. }) = v.refusal() else {
            panic!("{v:?}")
        };
        assert_eq!((*projected, *limit), (full + MIB, full));
        assert!(v.refusal().unwrap().to_string().contains("S3_MAX_TOTAL_STORAGE_GB"));

        let v = admit(&UploadRequest::new(MIB, ALICE), &usage(0, full), &l, &freeable(0, 2 * MIB));
        let Verdict::AdmitAfterCleanup(need) = v else { panic!("{v:?}") };
        assert_eq!(need.bucket.required_bytes, MIB);
        assert_eq!(need.user, ScopeNeed::default());
    }

    #[test]
    fn user_quota_is_checked_before_the_bucket() {
        let l = limits();
        let v = admit(
            &UploadRequest::new(MIB, ALICE),
            &usage(100 * MIB, l.max_bucket_bytes),
            &l,
            &Freeable::NONE,
        );
        assert!(matches!(v.refusal(), Some(Refusal::UserQuotaExceeded { .. })), "{v:?}");
    }

    #[test]
    fn zero_byte_upload_is_admitted_at_the_limit() {
        let v =
            admit(&UploadRequest::new(0, ALICE), &usage(50 * MIB, 0), &limits(), &Freeable::NONE);
        // Already at 50 %: no cleanup due.
        assert_eq!(v, Verdict::Admit);
        let v =
            admit(&UploadRequest::new(0, ALICE), &usage(100 * MIB, 0), &limits(), &Freeable::NONE);
        assert!(matches!(v, Verdict::AdmitCleanupDue(_)), "{v:?}");
    }

    #[test]
    fn verdicts_serialize_with_a_tag() {
        let v =
            admit(&UploadRequest::new(60 * MIB, ALICE), &usage(0, 0), &limits(), &Freeable::NONE);
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["verdict"], "refuse");
        assert_eq!(json["reason"], "file_too_large");
        assert_eq!(json["size"], 60 * MIB);
        let v = admit(
            &UploadRequest::new(20 * MIB, ALICE),
            &usage(60 * MIB, 0),
            &limits(),
            &Freeable::NONE,
        );
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["verdict"], "admit_cleanup_due");
        assert!(json["user"]["target_bytes"].as_u64().unwrap() > 0);
        assert_eq!(serde_json::to_value(Verdict::Admit).unwrap()["verdict"], "admit");
    }

    #[test]
    fn file_too_large_message_says_what_to_do() {
        let r = Refusal::FileTooLarge { size: 60 * MIB, limit: 50 * MIB };
        assert_eq!(
            r.to_string(),
            "the file is 60 MiB (62914560 bytes), over the per-file limit of 50 MiB (52428800 bytes); nothing was uploaded or deleted. Upload a smaller file (the limit is set by S3_MAX_FILE_SIZE_MB)"
        );
        assert_eq!(r.over_by(), 10 * MIB);
    }

    #[test]
    fn zero_threshold_targets_everything() {
        let l = Limits { cleanup_threshold_percent: 0, ..limits() };
        let v = admit(&UploadRequest::new(MIB, ALICE), &usage(MIB, 2 * MIB), &l, &Freeable::NONE);
        let need = v.cleanup().copied().unwrap();
        assert_eq!(need.user.target_bytes, 2 * MIB);
        assert_eq!(need.bucket.target_bytes, 3 * MIB);
    }

    proptest! {
        #[test]
        fn admitted_uploads_respect_every_hard_limit_after_the_required_cleanup(
            size in 0u64..200, user_used in 0u64..300, extra_bucket in 0u64..500,
            replaces in 0u64..50, max_file in 0u64..200, max_user in 0u64..300,
            max_bucket in 0u64..800, p in 1u8..=100, fu in 0u64..300, fb in 0u64..800,
            global in any::<bool>(),
        ) {
            let bucket_used = user_used + extra_bucket;
            let l = Limits { max_file_bytes: max_file, max_user_bytes: max_user, max_bucket_bytes: max_bucket, cleanup_threshold_percent: p };
            let user = if global { None } else { Some("u") };
            let req = UploadRequest { size, user, replaces };
            let v = admit(&req, &usage(user_used, bucket_used), &l, &freeable(fu, fb));
            if size > max_file {
                let too_large = matches!(v, Verdict::Refuse(Refusal::FileTooLarge { .. }));
                prop_assert!(too_large);
                return Ok(());
            }
            match &v {
                Verdict::Refuse(_) => {
                    // Refused means some scope misses even after freeing everything allowed.
                    let user_over = !global && user_used.saturating_sub(replaces) + size > max_user + fu.min(user_used.saturating_sub(replaces));
                    let bucket_over = bucket_used.saturating_sub(replaces) + size > max_bucket + fb.min(bucket_used.saturating_sub(replaces));
                    prop_assert!(user_over || bucket_over);
                }
                _ => {
                    let need = v.cleanup().copied().unwrap_or_default();
                    if !global {
                        let after = user_used.saturating_sub(replaces) + size - need.user.required_bytes;
                        prop_assert!(after <= max_user);
                        prop_assert!(need.user.required_bytes <= fu);
                        prop_assert!(need.user.target_bytes >= need.user.required_bytes);
                    }
                    let after = bucket_used.saturating_sub(replaces) + size - need.bucket.required_bytes;
                    prop_assert!(after <= max_bucket);
                    prop_assert!(need.bucket.required_bytes <= fb);
                    prop_assert_eq!(matches!(v, Verdict::AdmitAfterCleanup(_)), need.must_run_first());
                    // Freeing the target brings usage below the threshold.
                    let bucket_after_target = (bucket_used.saturating_sub(replaces) + size).saturating_sub(need.bucket.target_bytes);
                    prop_assert!(!crate::quota::cleanup_due(bucket_after_target, max_bucket, p));
                }
            }
        }

        #[test]
        fn more_freeable_never_turns_an_admission_into_a_refusal(
            size in 0u64..100, used in 0u64..300, max_user in 1u64..300, fu in 0u64..300, more in 0u64..300,
        ) {
            let l = Limits { max_file_bytes: 100, max_user_bytes: max_user, max_bucket_bytes: u64::MAX, cleanup_threshold_percent: 70 };
            let req = UploadRequest::new(size, ALICE);
            let a = admit(&req, &usage(used, used), &l, &freeable(fu, 0));
            let b = admit(&req, &usage(used, used), &l, &freeable(fu + more, 0));
            prop_assert!(!a.is_admitted() || b.is_admitted());
        }
    }
}
