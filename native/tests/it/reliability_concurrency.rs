//! Concurrency: 32 writers save at once for 8 users with auto-cleanup on, each writer its own
//! `Manager` over one shared data directory (so they share the inventory cache and the request
//! ledger, state files under a lock), against an S3 server of the test's own.
//!
//! Promises checked:
//! - no lost write: a save that reported success is in the bucket at the end, unless a
//!   cleanup plan that some save of this run reported (`cleaned`) deleted it;
//! - nothing else: every object under these users is a save of this run, whole, and every
//!   object a reported plan deleted is gone;
//! - min-keep: once quiet, every user keeps at least `S3_MIN_FILES_TO_KEEP` files (or all of
//!   them, if fewer were saved);
//! - the quota overshoot bound: once quiet, a user's usage is at most
//!   `quota + (W − 1) × S`, where W is the number of writers saving for that user at once and
//!   S the largest upload. Each admission reads the shared cache, which holds every completed
//!   save and deletion; what it cannot see is the save each of the other W − 1 writers has in
//!   flight, at most S each;
//! - the shared request ledger lost no update: it counts exactly the requests every writer's
//!   client sent.
//!
//! The cleanup threshold is 100 %, so usage runs up against the quota itself (at the default
//! 70 % cleanup keeps it well below, and the bound is never approached). Files are 1-8 KB,
//! and one in seven is 16-30 KB: five of those pass the quota, so min-keep binds and some
//! saves are refused. 32 × 30 saves in the default run, 32 × 1,000 under `make soak`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::manager_config;
use crate::support::reliability::{Rng, read_all, scale, seed, sha, skip_s3, store, token};
use crate::support::server::OwnServer;
use kompass::manager::{Backend, Manager, ManagerError};
use kompass::store::s3::S3Options;
use kompass_core::key::ObjectKey;
use kompass_core::quota::RequestClass;

const WRITERS: usize = 32;
const USERS: usize = 8;
const MIN_KEEP: usize = 5;
/// The per-user quota: 0.1 MiB, so cleanup runs constantly.
const QUOTA_MB: &str = "0.1";
const QUOTA: u64 = 104_857;
const MIN_SIZE: u64 = 1_000;
const MAX_SIZE: u64 = 8_000;
const BIG_SIZE: u64 = 30_000;

/// What one save reported.
#[derive(Debug)]
enum Saved {
    /// Stored in S3; the cleanup it ran first deleted these keys.
    Ok { cleaned: Vec<String> },
    /// Refused by the quota (even after cleanup): nothing stored, nothing deleted.
    Refused,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_writers_lose_nothing_and_keep_min_keep_and_the_quota_bound() {
    const TEST: &str = "concurrent_writers";
    if skip_s3(TEST) {
        return;
    }
    // A server of its own: every save reads and rewrites the cached inventory of the whole
    // bucket, so the shared bucket (thousands of other tests' objects) would make this test
    // measure that, not concurrency.
    let server = OwnServer::start(TEST);
    let env = server.env.clone();
    let per_writer = scale(30, 1_000);
    let seed = seed(TEST);
    let t = token();
    let users: Vec<String> = (0..USERS).map(|i| format!("cw{i}-{t}")).collect();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let vars = [
        ("S3_MAX_USER_STORAGE_MB", QUOTA_MB),
        ("S3_MAX_FILE_SIZE_MB", "1"),
        ("S3_MIN_FILES_TO_KEEP", "5"),
        ("S3_AUTO_CLEANUP_ENABLED", "true"),
        ("S3_CLEANUP_THRESHOLD_PERCENT", "100"),
    ];
    let config = manager_config(&data, Some(&env), &vars);
    assert_eq!(config.limits.max_user_bytes, QUOTA);
    let opts = S3Options { retry_base_delay: Duration::from_millis(20), ..S3Options::default() };

    // A monitor lists every user now and then (not a snapshot: for the report only).
    let stop = Arc::new(AtomicBool::new(false));
    let monitor = {
        let (s3, users, stop) = (store(&env), users.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut max_usage, mut min_count, mut samples) = (0u64, usize::MAX, 0usize);
            while !stop.load(Ordering::Relaxed) {
                for u in &users {
                    if let Ok(objs) = s3.list(&format!("users/{u}/")).await {
                        max_usage = max_usage.max(objs.iter().map(|o| o.size).sum());
                        if objs.len() >= MIN_KEEP {
                            min_count = min_count.min(objs.len());
                        }
                        samples += 1;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (max_usage, min_count, samples)
        })
    };

    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let root = Rng::new(seed);
    for w in 0..WRITERS {
        let m = Manager::open_with(config.clone(), opts.clone()).unwrap();
        let user = users[w % USERS].clone();
        let mut rng = root.fork(w as u64);
        set.spawn(async move {
            let mut log: Vec<(String, Vec<u8>, Saved)> = Vec::new();
            for i in 0..per_writer {
                // Mostly small files; some large enough that five of them pass the quota, so
                // min-keep binds and some saves are refused.
                let size = if rng.chance(0.15) {
                    rng.range(MAX_SIZE * 2, BIG_SIZE)
                } else {
                    rng.range(MIN_SIZE, MAX_SIZE)
                } as usize;
                let body = rng.bytes(size);
                let key = ObjectKey::parse_parts(Some(&user), "routes", &format!("w{w}-{i}.json"))
                    .unwrap();
                let saved = match m.save(&key, &body).await {
                    Ok(o) => {
                        assert_eq!(
                            o.backend,
                            Backend::S3,
                            "{key}: S3 is up, so saves go there: {o:?}"
                        );
                        Saved::Ok { cleaned: o.cleaned.into_iter().map(|d| d.key).collect() }
                    }
                    Err(ManagerError::Refused(_)) => Saved::Refused,
                    Err(e) => panic!("writer {w}: save {key} failed: {e}"),
                };
                log.push((key.s3_key(), body, saved));
            }
            (m.s3().unwrap().counts(), log)
        });
    }
    let mut saves: BTreeMap<String, (Vec<u8>, Saved)> = BTreeMap::new();
    let (mut put_class, mut get_class) = (0u64, 0u64);
    while let Some(r) = set.join_next().await {
        let (counts, log) = r.expect("a writer panicked");
        put_class += counts.put_class();
        get_class += counts.get_class();
        for (k, body, s) in log {
            saves.insert(k, (body, s));
        }
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (max_sampled, min_sampled, samples) = monitor.await.unwrap();

    // The facts, read independently.
    let s3 = store(&env);
    let mut present: BTreeMap<String, u64> = BTreeMap::new();
    for u in &users {
        for o in s3.list(&format!("users/{u}/")).await.unwrap() {
            present.insert(o.key, o.size);
        }
    }
    let cleaned: BTreeSet<&str> = saves
        .values()
        .filter_map(|(_, s)| match s {
            Saved::Ok { cleaned } => Some(cleaned.iter().map(String::as_str)),
            Saved::Refused => None,
        })
        .flatten()
        .collect();
    let ok = saves.values().filter(|(_, s)| matches!(s, Saved::Ok { .. })).count();
    let refused = saves.len() - ok;

    // No lost write.
    let lost: Vec<&String> = saves
        .iter()
        .filter(|(k, (_, s))| {
            matches!(s, Saved::Ok { .. })
                && !present.contains_key(*k)
                && !cleaned.contains(k.as_str())
        })
        .map(|(k, _)| k)
        .collect();
    assert!(
        lost.is_empty(),
        "{} lost writes (reported saved, not in the bucket, in no reported cleanup plan): {lost:?}",
        lost.len()
    );
    // Nothing else: every object is a successful save of this run, whole; planned deletions happened.
    for k in present.keys() {
        assert!(
            matches!(saves.get(k), Some((_, Saved::Ok { .. }))),
            "{k} is in the bucket but no save of it succeeded"
        );
    }
    for k in &cleaned {
        assert!(
            !present.contains_key(*k),
            "{k} was reported cleaned up but is still in the bucket"
        );
    }
    let bad =
        read_all(&s3, present.keys().map(|k| (k.clone(), sha(&saves[k].0))).collect(), TEST).await;
    assert!(bad.is_empty(), "{bad:#?}");

    // Min-keep and the quota bound, once quiet.
    let writers_per_user = (WRITERS / USERS) as u64;
    let largest = saves.values().map(|(b, _)| b.len() as u64).max().unwrap();
    let bound = QUOTA + (writers_per_user - 1) * largest;
    let mut worst_usage = 0u64;
    let mut fewest = usize::MAX;
    for u in &users {
        let prefix = format!("users/{u}/");
        let (count, usage) = present
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .fold((0usize, 0u64), |(c, b), (_, s)| (c + 1, b + s));
        let succeeded = saves
            .iter()
            .filter(|(k, (_, s))| k.starts_with(&prefix) && matches!(s, Saved::Ok { .. }))
            .count();
        assert!(
            count >= MIN_KEEP.min(succeeded),
            "{u}: {count} files left of {succeeded} saved: cleanup broke min-keep ({MIN_KEEP})"
        );
        assert!(
            usage <= bound,
            "{u}: {usage} bytes stored, over the bound {bound} (quota {QUOTA} + {} × {largest})",
            writers_per_user - 1
        );
        worst_usage = worst_usage.max(usage);
        fewest = fewest.min(count);
    }

    // The shared inventory cache (what every admission reads) agrees with the bucket: an
    // object it misses would never be counted nor cleaned up; one it invents would be counted.
    let after = Manager::open(config.clone()).unwrap();
    let cached: BTreeSet<String> = after
        .s3_inventory(false)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .filter(|k| users.iter().any(|u| k.starts_with(&format!("users/{u}/"))))
        .collect();
    let listed: BTreeSet<String> = present.keys().cloned().collect();
    let missing: Vec<&String> = listed.difference(&cached).collect();
    let invented: Vec<&String> = cached.difference(&listed).collect();
    assert!(
        missing.is_empty() && invented.is_empty(),
        "the shared inventory cache disagrees with the bucket: {} objects missing from it ({} bytes), {} in it that are not in the bucket: {missing:?} {invented:?}",
        missing.len(),
        missing.iter().map(|k| present[*k]).sum::<u64>(),
        invented.len()
    );

    // Users left over the quota by concurrent saves: does a small save still get in? (Only
    // reported: cleanup frees at most half of a group per cycle, and a refused save runs none.)
    let mut over = 0;
    let mut stuck = 0;
    for u in &users {
        let prefix = format!("users/{u}/");
        let usage: u64 =
            present.iter().filter(|(k, _)| k.starts_with(&prefix)).map(|(_, s)| s).sum();
        if usage > QUOTA {
            over += 1;
            let probe = ObjectKey::parse_parts(Some(u), "routes", "probe.json").unwrap();
            if matches!(after.precheck(&probe, MIN_SIZE).await, Err(ManagerError::Refused(_))) {
                stuck += 1;
            }
        }
    }

    // The shared ledger counted every request of every writer: no update was lost.
    let ledger = after.ledger().unwrap();
    assert_eq!(
        ledger.count(RequestClass::PutClass),
        put_class,
        "PUT-class requests in the shared ledger"
    );
    assert_eq!(
        ledger.count(RequestClass::GetClass),
        get_class,
        "GET-class requests in the shared ledger"
    );

    eprintln!(
        "RESULT concurrency: {WRITERS} writers x {per_writer} saves over {USERS} users (quota {QUOTA} B, cleanup threshold 100 %, min-keep {MIN_KEEP}, files {MIN_SIZE}-{MAX_SIZE} B and some up to {BIG_SIZE} B) in {elapsed:.0?}: {ok} saved, {refused} refused by the quota, {} cleaned up by reported plans, 0 lost writes; fewest files per user at the end {fewest} (>= {MIN_KEEP}); largest usage at the end {worst_usage} B, bound {bound} B (overshoot {} B); sampled while running ({samples} listings, not snapshots): max usage {max_sampled} B, fewest files {}; ledger {put_class} PUT-class + {get_class} GET-class requests, none lost; the shared inventory cache matches the bucket; {over} users over the quota at the end, {stuck} of them refuse even a {MIN_SIZE} B save",
        cleaned.len(),
        worst_usage.saturating_sub(QUOTA),
        if min_sampled == usize::MAX { "-".to_owned() } else { min_sampled.to_string() }
    );
}
