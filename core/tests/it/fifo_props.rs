//! Property tests of the fifo rules over random inventories, checked against a naive reference.

use std::collections::{BTreeMap, HashSet};

use kompass_core::fifo::{Capacity, CleanupPlan, Policy, Reason, plan_bucket, plan_user};
use kompass_core::inventory::{ObjectInfo, Tally, usage};
use proptest::prelude::*;

const USERS: [Option<&str>; 4] = [None, Some("alice"), Some("bob"), Some("carol")];
const TYPES: [&str; 4] = ["routes", "fitness", "models", "training_data"];

fn inventory() -> impl Strategy<Value = Vec<ObjectInfo>> {
    prop::collection::vec((0..4usize, 0..4usize, 0..30i64, 0..200u64, 0..50u32), 0..120).prop_map(
        |rows| {
            rows.into_iter()
                .enumerate()
                .map(|(i, (u, t, lm, size, name))| {
                    let (user, data_type) = (USERS[u], TYPES[t]);
                    let key = match user {
                        Some(u) => format!("users/{u}/{data_type}/n{name:02}_{i}"),
                        None => format!("{data_type}/n{name:02}_{i}"),
                    };
                    ObjectInfo {
                        key,
                        size,
                        last_modified_ms: lm,
                        sha256: None,
                        user: user.map(str::to_owned),
                        data_type: data_type.to_owned(),
                    }
                })
                .collect()
        },
    )
}

fn policy() -> impl Strategy<Value = Policy> {
    (1..=100u8, 0..8usize, prop::option::of(0..20u64)).prop_map(|(p, k, a)| Policy {
        threshold_percent: p,
        min_files_to_keep: k,
        min_age_ms: a,
    })
}

fn limits() -> impl Strategy<Value = Capacity> {
    (0..3_000u64, 0..8_000u64).prop_map(|(q, b)| Capacity { user_quota_bytes: q, bucket_bytes: b })
}

type GroupId = (Option<String>, String);

/// The inventory grouped by (user, data type), each group oldest first (last-modified, key).
fn groups(inv: &[ObjectInfo]) -> BTreeMap<GroupId, Vec<&ObjectInfo>> {
    let mut g: BTreeMap<GroupId, Vec<&ObjectInfo>> = BTreeMap::new();
    for o in inv {
        g.entry((o.user.clone(), o.data_type.clone())).or_default().push(o);
    }
    for v in g.values_mut() {
        v.sort_by(|a, b| (a.last_modified_ms, &a.key).cmp(&(b.last_modified_ms, &b.key)));
    }
    g
}

fn reached(policy: &Policy, used: u64, limit: u64) -> bool {
    (used as u128) * 100 >= (limit as u128) * (policy.threshold_percent as u128)
}

/// The most a group may give up in one cycle under the rules.
fn cap(members: &[&ObjectInfo], policy: &Policy, now: i64) -> usize {
    let n = members.len();
    let old_enough = members
        .iter()
        .filter(|o| match policy.min_age_ms {
            None => true,
            Some(age) => (now as i128) - (o.last_modified_ms as i128) >= age as i128,
        })
        .count();
    (n / 2).min(n.saturating_sub(policy.min_files_to_keep)).min(old_enough)
}

fn user_bytes(inv: &[ObjectInfo], user: &str) -> Tally {
    let mut t = Tally::default();
    for o in inv.iter().filter(|o| o.user.as_deref() == Some(user)) {
        t.add(o.size);
    }
    t
}

/// Rules every plan obeys, whatever its scope; returns deleted count per group.
fn check_common(
    inv: &[ObjectInfo],
    plan: &CleanupPlan,
    policy: &Policy,
    now: i64,
) -> BTreeMap<GroupId, usize> {
    let deleted: HashSet<&str> = plan.deletions.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(deleted.len(), plan.deletions.len(), "a key is deleted twice");
    let mut counts = BTreeMap::new();
    for (id, members) in groups(inv) {
        let n = members.len();
        let d = members.iter().filter(|o| deleted.contains(o.key.as_str())).count();
        // Oldest first: the deleted members are exactly the group's oldest d.
        assert!(
            members[..d].iter().all(|o| deleted.contains(o.key.as_str())),
            "group {id:?} lost a file while an older one stayed"
        );
        assert!(d <= n / 2, "group {id:?} lost {d} of {n} files, over half");
        assert!(
            n - d >= policy.min_files_to_keep.min(n),
            "group {id:?} kept {} of {n}, under min-keep {}",
            n - d,
            policy.min_files_to_keep
        );
        assert!(d <= cap(&members, policy, now));
        counts.insert(id, d);
    }
    if let Some(age) = policy.min_age_ms {
        for d in &plan.deletions {
            assert!((now as i128) - (d.last_modified_ms as i128) >= age as i128);
        }
    }
    // The plan lists deletions oldest first, each with a readable reason naming its group.
    assert!(
        plan.deletions
            .windows(2)
            .all(|w| (w[0].last_modified_ms, &w[0].key) < (w[1].last_modified_ms, &w[1].key))
    );
    let by_key: BTreeMap<&str, &ObjectInfo> = inv.iter().map(|o| (o.key.as_str(), o)).collect();
    for d in &plan.deletions {
        let o = by_key[d.key.as_str()];
        assert_eq!((d.size, d.last_modified_ms), (o.size, o.last_modified_ms));
        let (ru, rt, rn) = match d.reason.as_ref() {
            Reason::UserQuota { user, data_type, group_files, .. } => {
                (Some(user.clone()), data_type, group_files)
            }
            Reason::BucketLimit { user, data_type, group_files, .. } => {
                (user.clone(), data_type, group_files)
            }
        };
        assert_eq!((&ru, rt), (&o.user, &o.data_type));
        let id = (o.user.clone(), o.data_type.clone());
        assert_eq!(*rn, inv.iter().filter(|x| (x.user.clone(), x.data_type.clone()) == id).count());
        assert!(!d.reason.to_string().is_empty());
    }
    // Byte accounting.
    let freed: u64 = plan.deletions.iter().map(|d| d.size).sum();
    assert_eq!(plan.bytes_freed, freed);
    let total = usage(inv);
    assert_eq!(plan.usage_before.bucket, total.bucket);
    assert_eq!(plan.usage_after.bucket.bytes, total.bucket.bytes - freed);
    assert_eq!(plan.usage_after.bucket.files, total.bucket.files - plan.deletions.len() as u64);
    let global_before: u64 = total.global.values().map(|t| t.bytes).sum();
    let global_freed: u64 = plan
        .deletions
        .iter()
        .filter(|d| by_key[d.key.as_str()].user.is_none())
        .map(|d| d.size)
        .sum();
    assert_eq!(plan.usage_before.global.bytes, global_before);
    assert_eq!(plan.usage_after.global.bytes, global_before - global_freed);
    for (user, before) in &plan.usage_before.users {
        assert_eq!(*before, user_bytes(inv, user));
        let mut after = *before;
        for d in &plan.deletions {
            if by_key[d.key.as_str()].user.as_deref() == Some(user) {
                after.remove(d.size);
            }
        }
        assert_eq!(plan.usage_after.users[user], after);
    }
    counts
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn user_plan_obeys_the_rules(
        inv in inventory(), user_ix in 1..4usize, policy in policy(), limits in limits(), now in 0..40i64,
    ) {
        let user = USERS[user_ix].unwrap();
        let plan = plan_user(&inv, user, &policy, &limits, now).unwrap();
        let counts = check_common(&inv, &plan, &policy, now);
        // Only the user's own files, each for the user quota.
        for d in &plan.deletions {
            let is_user_quota = matches!(d.reason.as_ref(), Reason::UserQuota { user: u, .. } if u == user);
            prop_assert!(is_user_quota);
        }
        prop_assert_eq!(plan.usage_before.users.keys().collect::<Vec<_>>(), vec![user]);
        let before = user_bytes(&inv, user).bytes;
        let after = plan.usage_after.users[user].bytes;
        if !reached(&policy, before, limits.user_quota_bytes) {
            prop_assert!(plan.is_empty());
        }
        // Under the threshold, or every one of the user's groups at its cap.
        let all_capped = groups(&inv).iter()
            .filter(|(id, _)| id.0.as_deref() == Some(user))
            .all(|(id, m)| counts[id] == cap(m, &policy, now));
        prop_assert!(!reached(&policy, after, limits.user_quota_bytes) || all_capped);
        // No more than needed: without the last deletion the user would still be over.
        if let Some(last) = plan.deletions.last() {
            prop_assert!(reached(&policy, after + last.size, limits.user_quota_bytes));
        }
    }

    #[test]
    fn bucket_plan_obeys_the_rules(
        inv in inventory(), policy in policy(), limits in limits(), now in 0..40i64,
    ) {
        let plan = plan_bucket(&inv, &policy, &limits, now).unwrap();
        let counts = check_common(&inv, &plan, &policy, now);
        let all = groups(&inv);
        // Models, training data and other global non-route data are never touched.
        for (id, d) in &counts {
            if id.0.is_none() && id.1 != "routes" {
                prop_assert_eq!(*d, 0);
            }
        }
        let mut any_reached = reached(&policy, usage(&inv).bucket.bytes, limits.bucket_bytes);
        for user in ["alice", "bob", "carol"] {
            let before = user_bytes(&inv, user).bytes;
            let user_reached = reached(&policy, before, limits.user_quota_bytes);
            any_reached |= user_reached;
            let quota: Vec<u64> = plan.deletions.iter()
                .filter(|d| matches!(d.reason.as_ref(), Reason::UserQuota { user: u, .. } if u == user))
                .map(|d| d.size)
                .collect();
            if !user_reached {
                prop_assert!(quota.is_empty());
            }
            // The user phase stops as soon as the user is under, and no earlier than the caps.
            let after_user_phase = before - quota.iter().sum::<u64>();
            if let Some(last) = quota.last() {
                prop_assert!(reached(&policy, after_user_phase + last, limits.user_quota_bytes));
            }
            let after = plan.usage_after.users.get(user).map_or(0, |t| t.bytes);
            let capped = all.iter()
                .filter(|(id, _)| id.0.as_deref() == Some(user))
                .all(|(id, m)| counts[id] == cap(m, &policy, now));
            prop_assert!(!reached(&policy, after, limits.user_quota_bytes) || capped);
        }
        if !any_reached {
            prop_assert!(plan.is_empty());
        }
        // Under the bucket threshold, or every cleanable group at its cap.
        let capped = all.iter()
            .filter(|(id, _)| id.0.is_some() || id.1 == "routes")
            .all(|(id, m)| counts[id] == cap(m, &policy, now));
        prop_assert!(!reached(&policy, plan.usage_after.bucket.bytes, limits.bucket_bytes) || capped);
        if let Some(last) = plan.deletions.iter().rfind(|d| matches!(*d.reason, Reason::BucketLimit { .. })) {
            prop_assert!(reached(&policy, plan.usage_after.bucket.bytes + last.size, limits.bucket_bytes));
        }
        // Every user with files is reported.
        prop_assert_eq!(plan.usage_before.users.len(), usage(&inv).users.len());
    }

    #[test]
    fn plans_are_deterministic_and_order_independent(
        (inv, shuffled) in inventory().prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
        policy in policy(), limits in limits(), now in 0..40i64,
    ) {
        let a = plan_bucket(&inv, &policy, &limits, now).unwrap();
        prop_assert_eq!(&a, &plan_bucket(&inv, &policy, &limits, now).unwrap());
        prop_assert_eq!(&a, &plan_bucket(&shuffled, &policy, &limits, now).unwrap());
        for user in ["alice", "bob"] {
            let u = plan_user(&inv, user, &policy, &limits, now).unwrap();
            prop_assert_eq!(&u, &plan_user(&shuffled, user, &policy, &limits, now).unwrap());
        }
        prop_assert_eq!(usage(&inv), usage(&shuffled));
    }
}
