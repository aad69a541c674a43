use super::*;
use crate::key::DataType;
use crate::quota::{KIB, MIB, RequestKind, YearMonth};
use proptest::prelude::*;

/// 2026-03-10T12:00:00Z.
const NOW: UnixMs = UnixMs(1_773_144_000_000);
const HOUR: u64 = 3_600_000;

fn key(user: Option<&str>, name: &str) -> ObjectKey {
    ObjectKey::parse_parts(user, "routes", name).unwrap()
}

fn obj(user: Option<&str>, name: &str, size: u64, age_hours: u64) -> StoredObject {
    StoredObject {
        key: key(user, name),
        size,
        last_modified: UnixMs(NOW.0 - (age_hours * HOUR) as i64),
    }
}

fn ledger() -> RequestLedger {
    RequestLedger::starting_at(NOW.as_u64())
}

fn settings(max_user: u64, max_bucket: u64) -> Settings {
    Settings {
        limits: quota::Limits {
            max_file_bytes: 50 * MIB,
            max_user_bytes: max_user,
            max_bucket_bytes: max_bucket,
            cleanup_threshold_percent: 70,
        },
        auto_cleanup: true,
        min_files_to_keep: 5,
        budget: Some(RequestBudget::FREE_TIER),
    }
}

fn facts<'a>(
    stored: &'a [StoredObject],
    reservations: &'a [Reservation],
    ledger: &'a RequestLedger,
) -> Facts<'a> {
    Facts {
        stored,
        unlisted_bytes: 0,
        reservations,
        unlisted_reserved: UnlistedReserved::default(),
        ledger,
        now: NOW,
    }
}

fn direct(user: Option<&str>, name: &str, size: u64) -> Upload {
    Upload { key: key(user, name), size, via: Via::Direct }
}

fn presigned(user: Option<&str>, name: &str, size: u64) -> Upload {
    Upload {
        key: key(user, name),
        size,
        via: Via::Presigned { expires_at: NOW.plus_ms(15 * 60_000) },
    }
}

/// The scenario: 1 MiB quota, min-keep 5, eight stored 80 kB files.
fn eight_files(user: &str) -> Vec<StoredObject> {
    (0..8).map(|i| obj(Some(user), &format!("old{i}.json"), 80 * KIB, 100 - i)).collect()
}

#[test]
fn small_upload_is_admitted_at_one_put() {
    let l = ledger();
    let d =
        decide(&direct(Some("alice"), "a.json", KIB), &facts(&[], &[], &l), &Settings::default());
    let a = d.admission().expect("admitted");
    assert_eq!(a.cost, RequestCost { put_class: 1, get_class: 0 });
    assert_eq!(a.replaces, 0);
    assert!(a.cleanup.is_empty());
    assert_eq!(a.reservation.key, key(Some("alice"), "a.json"));
    assert_eq!(a.reservation.granted_at, NOW);
}

#[test]
fn oversize_is_refused_before_the_budget() {
    let mut l = ledger();
    l.record_many(RequestKind::Put, 5_000, NOW.as_u64());
    let d = decide(&direct(Some("a"), "x", 51 * MIB), &facts(&[], &[], &l), &Settings::default());
    assert_eq!(d.refusal().unwrap().limit(), Limit::FileSize);
}

#[test]
fn presigns_without_uploads_never_plan_a_deletion() {
    let stored = eight_files("alice");
    let s = settings(MIB, u64::MAX / 2);
    let mut session = Session::new(&facts(&stored, &[], &ledger()), s);
    let mut admitted = 0;
    for i in 0..10 {
        let d = session.decide(&presigned(Some("alice"), &format!("new{i}.json"), 80 * KIB), NOW);
        if let Decision::Admit(a) = d {
            assert!(a.cleanup.is_empty(), "a grant carries no cleanup");
            admitted += 1;
        }
    }
    assert_eq!(session.stored(), &stored[..], "grants change nothing stored");
    // Eight stored (640 KiB) leave room for reservations up to the quota plus what cleanup of
    // the stored files could free.
    assert!((1..=8).contains(&admitted), "admitted {admitted}");
    // With the new file counted (it is stored when its cleanup runs), 9 files: min-keep 5
    // and half-per-cycle let cleanup free 4 stored ones at most.
    assert!((8 + admitted) * 80 <= 1024 + 4 * 80);
}

#[test]
fn reservations_never_count_as_files_for_min_keep() {
    // Ten live grants that were never used, then a real save that needs room.
    let stored = eight_files("alice");
    let reservations: Vec<Reservation> = (0..10)
        .map(|i| Reservation {
            key: key(Some("alice"), &format!("ghost{i}.json")),
            size: KIB,
            granted_at: NOW,
            expires_at: NOW.plus_ms(HOUR),
        })
        .collect();
    let l = ledger();
    let s = settings(MIB, u64::MAX / 2);
    let d = decide(
        &direct(Some("alice"), "real.json", 300 * KIB),
        &facts(&stored, &reservations, &l),
        &s,
    );
    let a = d.admission().expect("fits after cleanup");
    // 8 stored + the new one = 9 files; min-keep 5 and half-per-cycle allow at most 4.
    assert!(!a.cleanup.is_empty());
    assert!(a.cleanup.len() <= 4, "{}", a.cleanup.len());
    for del in &a.cleanup {
        assert!(stored.iter().any(|o| o.key == del.key), "only stored objects are deleted");
        assert!(!del.key.name().as_str().starts_with("ghost"));
    }
    let kept = stored.len() + 1 - a.cleanup.len();
    assert!(kept >= 5);
}

#[test]
fn reservations_count_against_the_quota_until_they_expire() {
    let l = ledger();
    let mut s = settings(MIB, u64::MAX / 2);
    s.auto_cleanup = false;
    let r = Reservation {
        key: key(Some("alice"), "pending.json"),
        size: 900 * KIB,
        granted_at: NOW,
        expires_at: NOW.plus_ms(60_000),
    };
    let up = direct(Some("alice"), "b.json", 200 * KIB);
    let live = [r.clone()];
    let d = decide(&up, &facts(&[], &live, &l), &s);
    assert_eq!(d.refusal().unwrap().limit(), Limit::UserQuota);
    // Expired: the failed browser upload leaves usage as it was.
    let expired = [Reservation { expires_at: NOW, ..r.clone() }];
    assert!(decide(&up, &facts(&[], &expired, &l), &s).admission().is_some());
    // Another user's reservation does not count against alice, only against the bucket.
    let bobs = [Reservation { key: key(Some("bob"), "pending.json"), ..r }];
    assert!(decide(&up, &facts(&[], &bobs, &l), &s).admission().is_some());
    s.limits.max_bucket_bytes = MIB;
    assert_eq!(decide(&up, &facts(&[], &bobs, &l), &s).refusal().unwrap().limit(), Limit::Bucket);
}

#[test]
fn a_new_grant_for_the_same_key_replaces_the_old_one() {
    let l = ledger();
    let mut s = settings(MIB, u64::MAX / 2);
    s.auto_cleanup = false;
    let r = [Reservation {
        key: key(Some("alice"), "same.json"),
        size: 900 * KIB,
        granted_at: NOW,
        expires_at: NOW.plus_ms(60_000),
    }];
    let d = decide(&presigned(Some("alice"), "same.json", 900 * KIB), &facts(&[], &r, &l), &s);
    assert!(d.admission().is_some(), "{d:?}");
}

#[test]
fn overwriting_credits_the_stored_object() {
    let l = ledger();
    let mut s = settings(MIB, u64::MAX / 2);
    s.auto_cleanup = false;
    let stored = [obj(Some("alice"), "a.json", MIB, 1)];
    let d = decide(&direct(Some("alice"), "a.json", MIB), &facts(&stored, &[], &l), &s);
    assert_eq!(d.admission().unwrap().replaces, MIB);
}

#[test]
fn spent_put_budget_refuses_with_the_reset_date_and_queues() {
    let mut l = ledger();
    l.record_many(RequestKind::Put, 2_000, NOW.as_u64());
    let d = decide(&direct(Some("a"), "x", 1), &facts(&[], &[], &l), &Settings::default());
    let r = d.refusal().unwrap();
    assert_eq!(r.limit(), Limit::PutBudget);
    assert!(r.queue_locally());
    let april = UnixMs(YearMonth::new(2026, 4).unwrap().start_unix_ms());
    assert_eq!(r.retry_at(), Some(april));
    let msg = r.to_string();
    assert!(msg.contains("2026-04-01T00:00:00Z"), "{msg}");
    assert!(msg.contains("2000 of 2000"), "{msg}");
    assert!(msg.contains("KOMPASS_REQUEST_BUDGET=off"), "{msg}");
    // One request short of the budget still fits.
    let mut l = ledger();
    l.record_many(RequestKind::List, 1_999, NOW.as_u64());
    assert!(
        decide(&direct(Some("a"), "x", 1), &facts(&[], &[], &l), &Settings::default())
            .admission()
            .is_some()
    );
}

#[test]
fn budget_opt_out_admits_past_the_free_tier() {
    let mut l = ledger();
    l.record_many(RequestKind::Put, 1_000_000, NOW.as_u64());
    let s = Settings { budget: None, ..Settings::default() };
    assert!(decide(&direct(Some("a"), "x", 1), &facts(&[], &[], &l), &s).admission().is_some());
}

#[test]
fn last_months_ledger_does_not_block_this_month() {
    let mut l = RequestLedger::starting_at(NOW.as_u64() - 40 * 24 * HOUR);
    l.record_many(RequestKind::Put, 2_000, NOW.as_u64() - 40 * 24 * HOUR);
    assert!(
        decide(&direct(Some("a"), "x", 1), &facts(&[], &[], &l), &Settings::default())
            .admission()
            .is_some()
    );
}

#[test]
fn presign_needs_a_get_class_request_to_confirm() {
    let mut l = ledger();
    l.record_many(RequestKind::Head, 20_000, NOW.as_u64());
    let f = facts(&[], &[], &l);
    let d = decide(&presigned(Some("a"), "x", 1), &f, &Settings::default());
    assert_eq!(d.refusal().unwrap().limit(), Limit::GetBudget);
    assert!(decide(&direct(Some("a"), "x", 1), &f, &Settings::default()).admission().is_some());
}

#[test]
fn another_users_grants_never_delete_bobs_files() {
    // Small bucket: alice's grants fill it; nothing of bob's is planned for deletion on grant.
    let stored: Vec<StoredObject> =
        (0..8).map(|i| obj(Some("bob"), &format!("b{i}"), 100 * KIB, 50 - i)).collect();
    let s = settings(10 * MIB, MIB);
    let mut session = Session::new(&facts(&stored, &[], &ledger()), s);
    for i in 0..10 {
        if let Decision::Admit(a) =
            session.decide(&presigned(Some("alice"), &format!("a{i}"), 100 * KIB), NOW)
        {
            assert!(a.cleanup.is_empty());
        }
    }
    assert_eq!(session.stored().len(), 8);
}

#[test]
fn cleanup_after_store_plans_for_the_confirmed_upload_only_among_stored_files() {
    let mut stored = eight_files("alice");
    stored.push(obj(Some("alice"), "confirmed.json", 300 * KIB, 0));
    let ghost = [Reservation {
        key: key(Some("alice"), "ghost.json"),
        size: 100 * KIB,
        granted_at: NOW,
        expires_at: NOW.plus_ms(HOUR),
    }];
    let l = ledger();
    let s = settings(MIB, u64::MAX / 2);
    let plan =
        cleanup_after_store(&key(Some("alice"), "confirmed.json"), &facts(&stored, &ghost, &l), &s);
    assert!(!plan.is_empty());
    assert!(plan.iter().all(|d| d.key.name().as_str().starts_with("old")));
    assert!(plan.len() <= 4);
    let off = Settings { auto_cleanup: false, ..s };
    assert!(
        cleanup_after_store(
            &key(Some("alice"), "confirmed.json"),
            &facts(&stored, &ghost, &l),
            &off
        )
        .is_empty()
    );
}

#[test]
fn unlisted_bytes_count_against_the_bucket_and_are_never_cleaned() {
    let l = ledger();
    let stored: Vec<StoredObject> =
        (0..10).map(|i| obj(None, &format!("r{i}"), 10 * KIB, 100 - i)).collect();
    let mut s = settings(MIB, MIB);
    s.min_files_to_keep = 0;
    let f = Facts { unlisted_bytes: 900 * KIB, ..facts(&stored, &[], &l) };
    let d = decide(&direct(None, "new", 50 * KIB), &f, &s);
    let a = d.admission().expect("anonymous routes can be cleaned");
    assert!(!a.cleanup.is_empty());
    assert!(
        a.cleanup.iter().all(|d| d.key.owner().is_none() && d.key.data_type() == DataType::Routes)
    );
    // Without cleanable files, the foreign bytes make it refuse.
    let f = Facts { unlisted_bytes: MIB, ..facts(&[], &[], &l) };
    assert_eq!(decide(&direct(None, "new", 1), &f, &s).refusal().unwrap().limit(), Limit::Bucket);
}

#[test]
fn session_stops_where_the_budget_ends_and_counts_what_remains() {
    let mut l = ledger();
    l.record_many(RequestKind::Put, 1_990, NOW.as_u64());
    let mut session = Session::new(&facts(&[], &[], &l), Settings::default());
    let mut admitted = 0;
    let mut refused = 0;
    for i in 0..25 {
        match session.decide(&direct(Some("a"), &format!("f{i}"), 1), NOW) {
            Decision::Admit(_) => admitted += 1,
            Decision::Refuse(r) => {
                assert_eq!(r.limit(), Limit::PutBudget);
                refused += 1;
            }
        }
    }
    assert_eq!((admitted, refused), (10, 15));
    assert_eq!(session.ledger().put_class, 2_000);
    assert_eq!(session.stored().len(), 10);
}

#[test]
fn session_applies_cleanup_so_later_files_see_the_room() {
    let stored = eight_files("alice");
    let mut s = settings(MIB, u64::MAX / 2);
    s.budget = None;
    let mut session = Session::new(&facts(&stored, &[], &ledger()), s.clone());
    for i in 0..20 {
        let d = session.decide(&direct(Some("alice"), &format!("n{i}"), 80 * KIB), NOW.plus_ms(i));
        assert!(d.admission().is_some(), "{i}: {d:?}");
        let bytes: u64 = session.stored().iter().map(|o| o.size).sum();
        assert!(bytes <= MIB, "{bytes}");
    }
    assert!(session.stored().len() >= 5);
}

#[test]
fn refusals_serialize_with_their_limit_and_reason() {
    let mut l = ledger();
    l.record_many(RequestKind::Put, 2_000, NOW.as_u64());
    let d = decide(&direct(Some("a"), "x", 1), &facts(&[], &[], &l), &Settings::default());
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(v["decision"], "refuse");
    assert_eq!(v["limit_kind"], "budget");
    assert_eq!(v["class"], "put_class");
    assert_eq!(v["resets_at"], YearMonth::new(2026, 4).unwrap().start_unix_ms());
    let d = decide(&direct(Some("a"), "x", 51 * MIB), &facts(&[], &[], &l), &Settings::default());
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(v["limit_kind"], "size");
    assert_eq!(v["reason"], "file_too_large");
}

fn arb_upload() -> impl Strategy<Value = (u8, u8, u64, bool)> {
    // (user 0..3, name 0..12, size, presigned)
    (0u8..3, 0u8..12, 1u64..400, any::<bool>())
}

proptest! {
    /// Whatever the sequence of direct and presigned uploads, once an admitted direct upload's
    /// cleanup is carried out (and after any admission when cleanup is off), stored bytes with
    /// every live grant landed stay within the uploader's quota and the bucket limit; grants
    /// never change what is stored.
    #[test]
    fn admitted_sequences_never_exceed_a_limit(
        seq in proptest::collection::vec(arb_upload(), 1..40),
        initial in proptest::collection::vec((0u8..3, 0u8..12, 1u64..300, 0u64..100), 0..15),
        max_user in 200u64..1500, max_bucket in 300u64..3000, min_keep in 0usize..4,
        cleanup in any::<bool>(),
    ) {
        let users = ["u0", "u1", "u2"];
        let mut stored: Vec<StoredObject> = Vec::new();
        for (u, n, size, age) in initial {
            let o = obj(Some(users[u as usize]), &format!("f{n}"), size, age + 1);
            if !stored.iter().any(|s| s.key == o.key) {
                stored.push(o);
            }
        }
        let s = Settings {
            limits: quota::Limits { max_file_bytes: 500, max_user_bytes: max_user, max_bucket_bytes: max_bucket, cleanup_threshold_percent: 70 },
            auto_cleanup: cleanup,
            min_files_to_keep: min_keep,
            budget: None,
        };
        let start_over_user: Vec<bool> = users.iter().map(|u| stored.iter().filter(|o| o.key.owner().map(UserId::as_str) == Some(u)).map(|o| o.size).sum::<u64>() > max_user).collect();
        let start_bucket: u64 = stored.iter().map(|o| o.size).sum();
        let l = ledger();
        let mut session = Session::new(&facts(&stored, &[], &l), s);
        for (i, (u, n, size, pre)) in seq.into_iter().enumerate() {
            let user = users[u as usize];
            let name = format!("f{n}");
            let up = if pre { presigned(Some(user), &name, size) } else { direct(Some(user), &name, size) };
            let before = session.stored().to_vec();
            let d = session.decide(&up, NOW.plus_ms(i as u64));
            if pre {
                prop_assert_eq!(session.stored(), &before[..]);
            }
            // A grant may count on the cleanup its confirmation runs (bounded by what cleanup
            // can free); a direct store has carried its cleanup out, so it must be within.
            if d.admission().is_some() && (!pre || !cleanup) {
                let now = NOW.plus_ms(i as u64);
                // Bytes once every live grant lands: a key's reserved size replaces its stored
                // one, so each key counts the larger of the two.
                let mut worst: HashMap<&ObjectKey, u64> = session.stored().iter().map(|o| (&o.key, o.size)).collect();
                for r in session.reservations.iter().filter(|r| r.is_live(now)) {
                    let e = worst.entry(&r.key).or_insert(0);
                    *e = (*e).max(r.size);
                }
                for (ui, uname) in users.iter().enumerate() {
                    if start_over_user[ui] || *uname != user { continue; }
                    let bytes: u64 = worst.iter().filter(|(k, _)| k.owner().map(UserId::as_str) == Some(uname)).map(|(_, s)| *s).sum();
                    prop_assert!(bytes <= max_user, "user {} at {} of {}", uname, bytes, max_user);
                }
                if start_bucket <= max_bucket {
                    let bucket: u64 = worst.values().sum();
                    prop_assert!(bucket <= max_bucket, "bucket at {} of {}", bucket, max_bucket);
                }
            }
        }
    }

    /// Each (user, type) group keeps at least min(min-keep, its files) stored files through
    /// any cleanup, however many grants are outstanding.
    #[test]
    fn min_keep_holds_whatever_the_grants(
        files in 1usize..12, grants in 0usize..20, min_keep in 1usize..6, size in 10u64..200,
    ) {
        let stored: Vec<StoredObject> = (0..files).map(|i| obj(Some("a"), &format!("s{i}"), size, 100 - i as u64)).collect();
        let reservations: Vec<Reservation> = (0..grants).map(|i| Reservation { key: key(Some("a"), &format!("g{i}")), size, granted_at: NOW, expires_at: NOW.plus_ms(HOUR) }).collect();
        let l = ledger();
        let s = Settings { min_files_to_keep: min_keep, budget: None, ..settings(size * 4, u64::MAX / 2) };
        let d = decide(&direct(Some("a"), "new", size), &facts(&stored, &reservations, &l), &s);
        if let Decision::Admit(a) = d {
            let left = files + 1 - a.cleanup.len();
            prop_assert!(left >= min_keep.min(files + 1));
            prop_assert!(a.cleanup.iter().all(|d| stored.iter().any(|o| o.key == d.key)));
        }
    }
}

proptest! {
    /// Below the bucket's cleanup threshold, deciding from the owner's objects alone (the
    /// others' bytes unlisted) gives exactly the decision made from the whole inventory.
    #[test]
    fn owner_view_decides_like_the_whole_inventory_when_allowed(
        initial in proptest::collection::vec((0u8..4, 0u8..10, 1u64..300, 0u64..100), 0..30),
        size in 1u64..400, max_user in 100u64..1500, max_bucket in 300u64..6000, min_keep in 0usize..4,
    ) {
        let users = ["u0", "u1", "u2", "u3"];
        let mut stored: Vec<StoredObject> = Vec::new();
        for (u, n, s, age) in initial {
            let o = obj(Some(users[u as usize]), &format!("f{n}"), s, age + 1);
            if !stored.iter().any(|x| x.key == o.key) {
                stored.push(o);
            }
        }
        let s = Settings {
            limits: quota::Limits { max_file_bytes: 500, max_user_bytes: max_user, max_bucket_bytes: max_bucket, cleanup_threshold_percent: 70 },
            auto_cleanup: true,
            min_files_to_keep: min_keep,
            budget: None,
        };
        let bucket: u64 = stored.iter().map(|o| o.size).sum();
        prop_assume!(!whole_inventory_needed(size, bucket, 0, &s));
        let l = ledger();
        let up = direct(Some("u0"), "new", size);
        let whole = decide(&up, &facts(&stored, &[], &l), &s);
        let mine: Vec<StoredObject> = stored.iter().filter(|o| o.key.owner().map(UserId::as_str) == Some("u0")).cloned().collect();
        let others: u64 = bucket - mine.iter().map(|o| o.size).sum::<u64>();
        let view = Facts { unlisted_bytes: others, ..facts(&mine, &[], &l) };
        prop_assert_eq!(decide(&up, &view, &s), whole);
    }
}

proptest! {
    /// Reservations summed by the driver (all but the one at the decided key) decide exactly
    /// like the same reservations listed; summed for another owner, they never admit what
    /// the list refuses.
    #[test]
    fn summed_reservations_decide_like_listed_ones(
        stored_in in proptest::collection::vec((0u8..3, 0u8..10, 1u64..300, 0u64..100), 0..20),
        reserved_in in proptest::collection::vec((0u8..3, 0u8..10, 1u64..300, any::<bool>()), 0..20),
        size in 1u64..400, name in 0u8..10, max_user in 100u64..1500, max_bucket in 300u64..6000,
        cleanup in any::<bool>(), min_keep in 0usize..4, via_presigned in any::<bool>(),
    ) {
        let users = ["u0", "u1", "u2"];
        let mut stored: Vec<StoredObject> = Vec::new();
        for (u, n, s, age) in stored_in {
            let o = obj(Some(users[u as usize]), &format!("f{n}"), s, age + 1);
            if !stored.iter().any(|x| x.key == o.key) {
                stored.push(o);
            }
        }
        // Live ones only: the driver sums what is live at `now`.
        let mut reservations: Vec<Reservation> = Vec::new();
        for (u, n, s, granted_earlier) in reserved_in {
            let r = Reservation {
                key: key(Some(users[u as usize]), &format!("f{n}")),
                size: s,
                granted_at: NOW.plus_ms(if granted_earlier { 0 } else { 1 }),
                expires_at: NOW.plus_ms(60_000),
            };
            if !reservations.iter().any(|x| x.key == r.key) {
                reservations.push(r);
            }
        }
        let s = Settings {
            limits: quota::Limits { max_file_bytes: 500, max_user_bytes: max_user, max_bucket_bytes: max_bucket, cleanup_threshold_percent: 70 },
            auto_cleanup: cleanup,
            min_files_to_keep: min_keep,
            budget: None,
        };
        let l = ledger();
        let up = if via_presigned { presigned(Some("u0"), &format!("f{name}"), size) } else { direct(Some("u0"), &format!("f{name}"), size) };
        let listed = decide(&up, &facts(&stored, &reservations, &l), &s);
        let (at_key, rest): (Vec<Reservation>, Vec<Reservation>) =
            reservations.iter().cloned().partition(|r| r.key == up.key);
        let u0 = UserId::new("u0").unwrap();
        let sum = |f: &dyn Fn(&Reservation) -> bool| rest.iter().filter(|r| f(r)).map(|r| r.size).sum::<u64>();
        let summed = Facts {
            unlisted_reserved: UnlistedReserved {
                owner: Some(&u0),
                owner_bytes: sum(&|r| r.key.owner() == Some(&u0)),
                bytes: sum(&|_| true),
            },
            ..facts(&stored, &at_key, &l)
        };
        prop_assert_eq!(decide(&up, &summed, &s), listed.clone());
        // Summed for someone else: all of it counts as the uploader's.
        let u1 = UserId::new("u1").unwrap();
        let foreign = Facts {
            unlisted_reserved: UnlistedReserved { owner: Some(&u1), ..summed.unlisted_reserved },
            ..summed
        };
        if matches!(listed, Decision::Refuse(_)) {
            prop_assert!(matches!(decide(&up, &foreign, &s), Decision::Refuse(_)));
        }
    }
}
