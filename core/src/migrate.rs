//! migrate: decides what a local → remote migration does with each local object.
//!
//! Both inventories use the bucket's key space (`users/{user}/{type}/{name}`, `{type}/{name}`);
//! the adapter maps local paths to keys before planning. Remote objects without a local
//! counterpart are not the migration's business and do not appear in the plan.
//!
//! # Safety
//!
//! A local copy may only be removed when both checksums are known and equal
//! ([`Action::may_remove_local`] is true for [`Action::SkipIdentical`] only). Equal sizes
//! prove nothing, so when a checksum is missing on either side and the sizes match the
//! object is [`Action::NeedsVerify`]: the adapter obtains the missing checksum (hash the local
//! file; ask S3 for `ChecksumSHA256`, or download and hash) and calls [`classify`] again.
//! Different sizes are a [`Action::Conflict`] whatever the checksums say: the contents
//! differ, or one inventory is wrong. A conflict keeps both copies and is reported.

use serde::{Deserialize, Serialize};

use crate::inventory::{ObjectInfo, Sha256Digest};

/// What to do with one local object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// No remote object with this key: upload it (with its checksum, when known, so that the
    /// store verifies the bytes), then verify before the local copy may go.
    Upload {
        /// The object key.
        key: String,
        /// Local size in bytes.
        size: u64,
        /// Local checksum, if known.
        sha256: Option<Sha256Digest>,
    },
    /// The remote copy has the same checksum: nothing to upload, the local copy may go.
    SkipIdentical {
        /// The object key.
        key: String,
        /// Size in bytes (equal on both sides).
        size: u64,
        /// The checksum both sides share.
        sha256: Sha256Digest,
    },
    /// The remote copy differs: keep both and report.
    Conflict {
        /// The object key.
        key: String,
        /// Which fact differs.
        mismatch: Mismatch,
        /// Local size in bytes.
        local_size: u64,
        /// Remote size in bytes.
        remote_size: u64,
        /// Local checksum, if known.
        local_sha256: Option<Sha256Digest>,
        /// Remote checksum, if known.
        remote_sha256: Option<Sha256Digest>,
    },
    /// Same size, but a checksum is unknown on at least one side: verify, then classify again.
    NeedsVerify {
        /// The object key.
        key: String,
        /// Size in bytes (equal on both sides).
        size: u64,
        /// Local checksum, if known.
        local_sha256: Option<Sha256Digest>,
        /// Remote checksum, if known.
        remote_sha256: Option<Sha256Digest>,
    },
}

/// Why a conflict is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mismatch {
    /// The sizes differ.
    Size,
    /// The sizes match, the checksums differ.
    Checksum,
}

impl Action {
    /// The object key.
    pub fn key(&self) -> &str {
        match self {
            Action::Upload { key, .. }
            | Action::SkipIdentical { key, .. }
            | Action::Conflict { key, .. }
            | Action::NeedsVerify { key, .. } => key,
        }
    }

    /// Whether the local copy may be removed without uploading: only when checksums match.
    pub fn may_remove_local(&self) -> bool {
        matches!(self, Action::SkipIdentical { .. })
    }

    /// Bytes this action uploads.
    pub fn upload_bytes(&self) -> u64 {
        match self {
            Action::Upload { size, .. } => *size,
            _ => 0,
        }
    }
}

/// Classify one local object against the remote object of the same key, if any.
pub fn classify(local: &ObjectInfo, remote: Option<&ObjectInfo>) -> Action {
    let key = local.key.clone();
    let Some(remote) = remote else {
        return Action::Upload { key, size: local.size, sha256: local.sha256 };
    };
    let conflict = |mismatch| Action::Conflict {
        key: local.key.clone(),
        mismatch,
        local_size: local.size,
        remote_size: remote.size,
        local_sha256: local.sha256,
        remote_sha256: remote.sha256,
    };
    if local.size != remote.size {
        return conflict(Mismatch::Size);
    }
    match (local.sha256, remote.sha256) {
        (Some(l), Some(r)) if l == r => Action::SkipIdentical { key, size: local.size, sha256: l },
        (Some(_), Some(_)) => conflict(Mismatch::Checksum),
        (local_sha256, remote_sha256) => {
            Action::NeedsVerify { key, size: local.size, local_sha256, remote_sha256 }
        }
    }
}

/// An inventory that cannot be planned from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MigrateError {
    /// The same key twice in one inventory: which copy is meant is unknowable.
    #[error(
        "the {side} inventory lists key {key:?} more than once; list it again (a listing has each key once) before migrating"
    )]
    DuplicateKey {
        /// `local` or `remote`.
        side: Side,
        /// The repeated key.
        key: String,
    },
}

/// Which inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The local store.
    Local,
    /// The remote (S3) store.
    Remote,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Local => "local",
            Side::Remote => "remote",
        })
    }
}

/// The decision: one action per local object, ordered by key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationPlan {
    /// Actions by key.
    pub actions: Vec<Action>,
}

impl MigrationPlan {
    /// What a dry run reports: every action counted as if it succeeded.
    pub fn summary(&self) -> MigrationSummary {
        let mut s = MigrationSummary::default();
        for a in &self.actions {
            s.record(a, &Outcome::Done);
        }
        s
    }
}

/// Plan a migration: sort both sides by key and walk them together (linear after the sorts).
pub fn plan(local: &[ObjectInfo], remote: &[ObjectInfo]) -> Result<MigrationPlan, MigrateError> {
    let local = sorted_unique(local, Side::Local)?;
    let remote = sorted_unique(remote, Side::Remote)?;
    let mut actions = Vec::with_capacity(local.len());
    let mut r = remote.into_iter().peekable();
    for l in local {
        while r.next_if(|o| o.key < l.key).is_some() {}
        let same = r.next_if(|o| o.key == l.key);
        actions.push(classify(l, same));
    }
    Ok(MigrationPlan { actions })
}

/// The inventory by key, refusing repeated keys.
fn sorted_unique(objects: &[ObjectInfo], side: Side) -> Result<Vec<&ObjectInfo>, MigrateError> {
    let mut v: Vec<&ObjectInfo> = objects.iter().collect();
    v.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    if let Some(w) = v.windows(2).find(|w| w[0].key == w[1].key) {
        return Err(MigrateError::DuplicateKey { side, key: w[0].key.clone() });
    }
    Ok(v)
}

/// How carrying out one action went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It was done (for a conflict or a verification left open: it was reported).
    Done,
    /// It failed; the message says why.
    Failed(String),
}

/// The migration report (the CLI's `--json` contract: migrated, skipped_identical, conflicts,
/// failed, bytes, errors; needs_verify is added).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationSummary {
    /// Objects uploaded (and verified).
    pub migrated: u64,
    /// Objects already remote with the same checksum.
    pub skipped_identical: u64,
    /// Objects whose remote copy differs; both kept.
    pub conflicts: u64,
    /// Actions that failed.
    pub failed: u64,
    /// Bytes uploaded.
    pub bytes: u64,
    /// Objects left unverified (same size, checksum unknown); local copies kept.
    #[serde(default)]
    pub needs_verify: u64,
    /// One message per failure, `key: reason`.
    pub errors: Vec<String>,
}

impl MigrationSummary {
    /// Count one carried-out action.
    pub fn record(&mut self, action: &Action, outcome: &Outcome) {
        if let Outcome::Failed(why) = outcome {
            self.failed += 1;
            self.errors.push(format!("{}: {why}", action.key()));
            return;
        }
        match action {
            Action::Upload { size, .. } => {
                self.migrated += 1;
                self.bytes += size;
            }
            Action::SkipIdentical { .. } => self.skipped_identical += 1,
            Action::Conflict { .. } => self.conflicts += 1,
            Action::NeedsVerify { .. } => self.needs_verify += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: Sha256Digest = Sha256Digest([0xaa; 32]);
    const B: Sha256Digest = Sha256Digest([0xbb; 32]);

    fn obj(key: &str, size: u64, sha256: Option<Sha256Digest>) -> ObjectInfo {
        ObjectInfo {
            key: key.into(),
            size,
            last_modified_ms: 0,
            sha256,
            user: Some("u".into()),
            data_type: "routes".into(),
        }
    }

    #[test]
    fn absent_remote_uploads_with_the_local_checksum() {
        let a = classify(&obj("k", 10, Some(A)), None);
        assert_eq!(a, Action::Upload { key: "k".into(), size: 10, sha256: Some(A) });
        assert!(!a.may_remove_local());
        assert_eq!(a.upload_bytes(), 10);
        let a = classify(&obj("k", 10, None), None);
        assert!(matches!(a, Action::Upload { sha256: None, .. }));
    }

    #[test]
    fn same_checksum_and_size_is_identical() {
        let a = classify(&obj("k", 10, Some(A)), Some(&obj("k", 10, Some(A))));
        assert_eq!(a, Action::SkipIdentical { key: "k".into(), size: 10, sha256: A });
        assert!(a.may_remove_local());
        assert_eq!(a.upload_bytes(), 0);
    }

    #[test]
    fn different_checksum_is_a_conflict() {
        let a = classify(&obj("k", 10, Some(A)), Some(&obj("k", 10, Some(B))));
        assert!(matches!(a, Action::Conflict { mismatch: Mismatch::Checksum, .. }));
        assert!(!a.may_remove_local());
    }

    #[test]
    fn different_size_is_a_conflict_even_without_checksums() {
        for (l, r) in [(None, None), (Some(A), None), (None, Some(A))] {
            let a = classify(&obj("k", 10, l), Some(&obj("k", 11, r)));
            assert!(matches!(
                a,
                Action::Conflict { mismatch: Mismatch::Size, local_size: 10, remote_size: 11, .. }
            ));
        }
    }

    #[test]
    fn equal_checksums_with_different_sizes_is_still_a_conflict() {
        // An inconsistent inventory must not license removing the local copy.
        let a = classify(&obj("k", 10, Some(A)), Some(&obj("k", 12, Some(A))));
        assert!(matches!(a, Action::Conflict { mismatch: Mismatch::Size, .. }));
    }

    #[test]
    fn same_size_with_a_missing_checksum_needs_verification() {
        for (l, r) in [(None, None), (Some(A), None), (None, Some(A))] {
            let a = classify(&obj("k", 10, l), Some(&obj("k", 10, r)));
            assert_eq!(
                a,
                Action::NeedsVerify {
                    key: "k".into(),
                    size: 10,
                    local_sha256: l,
                    remote_sha256: r
                }
            );
            assert!(!a.may_remove_local());
        }
    }

    #[test]
    fn plan_orders_by_key_and_ignores_remote_only_objects() {
        let local = vec![
            obj("c", 3, Some(A)),
            obj("a", 1, Some(A)),
            obj("b", 2, None),
            obj("d", 4, Some(A)),
        ];
        let remote = vec![
            obj("d", 4, Some(B)),
            obj("zz-remote-only", 9, None),
            obj("a", 1, Some(A)),
            obj("0-remote-only", 9, None),
            obj("b", 2, Some(B)),
        ];
        let p = plan(&local, &remote).unwrap();
        let keys: Vec<&str> = p.actions.iter().map(Action::key).collect();
        assert_eq!(keys, ["a", "b", "c", "d"]);
        assert!(matches!(p.actions[0], Action::SkipIdentical { .. }));
        assert!(matches!(p.actions[1], Action::NeedsVerify { .. }));
        assert!(matches!(p.actions[2], Action::Upload { .. }));
        assert!(matches!(p.actions[3], Action::Conflict { .. }));
        let mut rev_local = local.clone();
        rev_local.reverse();
        let mut rev_remote = remote.clone();
        rev_remote.reverse();
        assert_eq!(plan(&rev_local, &rev_remote).unwrap(), p);
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let dup = vec![obj("a", 1, None), obj("a", 2, None)];
        let e = plan(&dup, &[]).unwrap_err();
        assert_eq!(e, MigrateError::DuplicateKey { side: Side::Local, key: "a".into() });
        assert!(e.to_string().contains("local inventory lists key \"a\""), "{e}");
        let e = plan(&[obj("a", 1, None)], &dup).unwrap_err();
        assert!(matches!(e, MigrateError::DuplicateKey { side: Side::Remote, .. }));
    }

    #[test]
    fn summary_counts_dry_run_and_outcomes() {
        let local = vec![
            obj("up1", 100, None),
            obj("up2", 50, Some(A)),
            obj("same", 7, Some(A)),
            obj("diff", 7, Some(A)),
            obj("unk", 7, None),
        ];
        let remote = vec![obj("same", 7, Some(A)), obj("diff", 7, Some(B)), obj("unk", 7, Some(A))];
        let p = plan(&local, &remote).unwrap();
        let dry = p.summary();
        assert_eq!(
            (
                dry.migrated,
                dry.skipped_identical,
                dry.conflicts,
                dry.failed,
                dry.bytes,
                dry.needs_verify
            ),
            (2, 1, 1, 0, 150, 1)
        );
        // Carry it out with one upload failing.
        let mut run = MigrationSummary::default();
        for a in &p.actions {
            let outcome = if a.key() == "up1" {
                Outcome::Failed("connection reset".into())
            } else {
                Outcome::Done
            };
            run.record(a, &outcome);
        }
        assert_eq!((run.migrated, run.failed, run.bytes), (1, 1, 50));
        assert_eq!(run.errors, ["up1: connection reset"]);
        let json = serde_json::to_value(&run).unwrap();
        for field in ["migrated", "skipped_identical", "conflicts", "failed", "bytes", "errors"] {
            assert!(json.get(field).is_some(), "missing {field}");
        }
    }

    #[test]
    fn actions_serialize_tagged() {
        let a = classify(&obj("k", 10, Some(A)), Some(&obj("k", 10, Some(B))));
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["action"], "conflict");
        assert_eq!(v["mismatch"], "checksum");
        assert_eq!(v["remote_sha256"], "bb".repeat(32));
        let back: Action = serde_json::from_value(v).unwrap();
        assert_eq!(back, a);
    }

    fn side() -> impl Strategy<Value = (u64, Option<Sha256Digest>)> {
        (0..3u64, prop::option::of(prop_oneof![Just(A), Just(B)]))
    }

    proptest! {
        #[test]
        fn local_removal_only_with_equal_known_checksums(
            (ls, lh) in side(), remote in prop::option::of(side()),
        ) {
            let local = obj("k", ls, lh);
            let remote = remote.map(|(rs, rh)| obj("k", rs, rh));
            let a = classify(&local, remote.as_ref());
            let proven = matches!(
                (&remote, lh),
                (Some(r), Some(l)) if r.sha256 == Some(l) && r.size == ls
            );
            prop_assert_eq!(a.may_remove_local(), proven);
            prop_assert_eq!(a.key(), "k");
        }
    }
}
