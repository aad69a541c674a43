//! Network faults between kompass and S3: a seeded proxy (see `support::reliability::proxy`)
//! resets, drops, delays and cuts connections mid-request and mid-response.
//!
//! The promises: a save either lands (in S3, or locally and queued for sync) or fails with an
//! error; a migration completes or fails per file and can be re-run; nothing is lost; and no
//! half-written object is ever visible: every object in the bucket holds the full content.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support;
use crate::support::manager_config;
use crate::support::proxy::{FaultMix, FaultProxy};
use crate::support::reliability::{
    Rng, assert_nothing_lost, files_below, kompass, read_all, scale, seed, sha, show, store, token,
};
use kompass::manager::{Backend, Manager};
use kompass::store::s3::S3Options;
use kompass_core::key::ObjectKey;

/// Client options for the faulty link: the default retries, but quick backoff, so a test
/// spends its time on faults and not on waiting.
fn options() -> S3Options {
    S3Options {
        max_retries: 4,
        timeout: Duration::from_secs(20),
        retry_base_delay: Duration::from_millis(20),
        retry_max_delay: Duration::from_millis(400),
        ..S3Options::default()
    }
}

#[derive(Debug, Default)]
struct Tally {
    s3: usize,
    pending: usize,
    failed: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saves_through_a_faulty_network_land_whole_or_fail_cleanly() {
    const TEST: &str = "saves_through_a_faulty_network";
    let Some(env) = support::s3_env(TEST) else { return };
    let saves = scale(80, 2_000);
    let seed = seed(TEST);
    let proxy = FaultProxy::start(&env.endpoint, seed, FaultMix::brutal());
    let t = token();
    let users: Vec<String> = (0..4).map(|i| format!("fp{i}-{t}")).collect();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let via_proxy = support::S3Env { endpoint: proxy.url.clone(), ..env.clone() };
    let m = Arc::new(
        Manager::open_with(manager_config(&data, Some(&via_proxy), &[]), options()).unwrap(),
    );

    // 4 writers at once, each key saved once with its own content (10 B to 64 KB, so cuts
    // land in headers and in bodies).
    let mut rng = Rng::new(seed).fork(u64::MAX);
    let mut plan: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut jobs: Vec<Vec<(ObjectKey, Vec<u8>)>> = vec![Vec::new(); 4];
    for i in 0..saves {
        let user = &users[i % users.len()];
        let size = rng.range(10, 64_000) as usize;
        let body = rng.bytes(size);
        let key = ObjectKey::parse_parts(Some(user), "routes", &format!("s{i}.json")).unwrap();
        plan.insert(key.s3_key(), body.clone());
        jobs[i % 4].push((key, body));
    }
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for job in jobs {
        let m = m.clone();
        set.spawn(async move {
            let mut out = Vec::new();
            for (key, body) in job {
                let r = m.save(&key, &body).await;
                out.push((
                    key.s3_key(),
                    r.map(|o| (o.backend, o.pending_sync.is_some())).map_err(|e| e.to_string()),
                ));
            }
            out
        });
    }
    let mut outcome: BTreeMap<String, Result<(Backend, bool), String>> = BTreeMap::new();
    while let Some(r) = set.join_next().await {
        outcome.extend(r.expect("a writer task panicked"));
    }
    let elapsed = started.elapsed();
    let stats = proxy.stats.to_string();
    drop(proxy);

    let mut tally = Tally::default();
    let s3 = store(&env);
    let mut present = BTreeMap::new();
    for u in &users {
        for o in s3.list(&format!("users/{u}/")).await.unwrap() {
            present.insert(o.key, o.size);
        }
    }
    for (key, r) in &outcome {
        match r {
            Ok((Backend::S3, _)) => {
                tally.s3 += 1;
                assert!(
                    present.contains_key(key),
                    "{key}: saved to S3 (reported success) but not in the bucket"
                );
            }
            Ok((Backend::Local, pending)) => {
                tally.pending += 1;
                assert!(
                    pending,
                    "{key}: landed locally although S3 is configured, without being queued"
                );
                let k = ObjectKey::from_s3_key(key).unwrap();
                assert_eq!(
                    m.local().get(&k).map(|b| sha(&b)).ok(),
                    Some(sha(&plan[key])),
                    "{key}: the local copy"
                );
            }
            Err(e) => tally.failed.push(format!("{key}: {e}")),
        }
    }
    // No half-written object: everything in the bucket under these users is a planned key
    // with its full content (a failed save may or may not have landed, but never in part).
    for key in present.keys() {
        assert!(plan.contains_key(key), "{key} is in the bucket but was never saved");
    }
    let bad =
        read_all(&s3, present.keys().map(|k| (k.clone(), sha(&plan[k]))).collect(), TEST).await;
    assert!(bad.is_empty(), "objects with partial or other content: {bad:#?}");
    // A save that landed locally is queued in the pending-sync journal, or was already
    // replayed to S3 by a later successful save (issue 9: replay without being asked), in
    // which case its full content is in the bucket (checked by `read_all` above).
    let journal: BTreeSet<String> =
        m.journal().pending().unwrap().into_iter().map(|p| p.key.s3_key()).collect();
    let mut replayed = 0;
    for (key, r) in &outcome {
        if let Ok((Backend::Local, _)) = r {
            let queued = journal.contains(key);
            let in_s3 = present.contains_key(key);
            assert!(
                queued || in_s3,
                "{key}: landed locally, but neither queued nor replayed to S3"
            );
            if !queued {
                replayed += 1;
            }
        }
    }
    assert_eq!(
        journal.len() + replayed,
        tally.pending,
        "every save that landed locally is in the pending-sync journal or already replayed, and the journal holds nothing else"
    );

    // The outage is over: a migration (no proxy) replays the journal, and nothing is lost.
    let out = kompass(dir.path(), Some(&env), &[], &["--json", "migrate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(m.journal().pending().unwrap().is_empty(), "the journal is replayed");
    let succeeded: Vec<(String, [u8; 32])> = outcome
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(k, _)| (k.clone(), sha(&plan[k])))
        .collect();
    let lost = read_all(&s3, succeeded.clone(), TEST).await;
    assert!(lost.is_empty(), "saves that reported success but are not in S3 whole: {lost:#?}");
    eprintln!("failed saves (clean errors): {:#?}", tally.failed);
    eprintln!(
        "RESULT fault-proxy saves: {saves} saves through the proxy ({stats}) in {elapsed:.0?}: {} to S3, {} locally queued for sync (then migrated), {} failed with an error; 0 lost, 0 half-written objects ({} objects read back)",
        tally.s3,
        tally.pending,
        tally.failed.len(),
        present.len()
    );
}

#[test]
fn migration_through_a_faulty_network_completes_or_fails_per_file() {
    const TEST: &str = "migration_through_a_faulty_network";
    let Some(env) = support::s3_env(TEST) else { return };
    let count = scale(200, 2_000);
    let max_faulty_runs = scale(25, 60);
    let seed = seed(TEST);
    let mut rng = Rng::new(seed).fork(u64::MAX);
    let t = token();
    let users: Vec<String> = (0..3).map(|i| format!("fm{i}-{t}")).collect();
    let prefixes: Vec<String> = users.iter().map(|u| format!("users/{u}/")).collect();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut source = BTreeMap::new();
    for i in 0..count {
        let user = &users[i % users.len()];
        let size = rng.range(10, 40_000) as usize;
        let body = rng.bytes(size);
        let path = data.join(format!("fitness/{user}/m{i}.json"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &body).unwrap();
        source.insert(format!("users/{user}/fitness/m{i}.json"), body);
    }

    let proxy = FaultProxy::start(&env.endpoint, seed, FaultMix::brutal());
    let via_proxy = support::S3Env { endpoint: proxy.url.clone(), ..env.clone() };
    let started = Instant::now();
    let mut runs = Vec::new();
    let mut done = false;
    for run in 0..max_faulty_runs {
        // One user at a time keeps each run's listing small (the shared bucket is large): the
        // next one with files left.
        let left = files_below(&data);
        let user = (0..users.len())
            .map(|i| &users[(run + i) % users.len()])
            .find(|u| left.iter().any(|(rel, _)| rel.contains(&format!("/{u}/"))))
            .expect("files are left");
        let out =
            kompass(dir.path(), Some(&via_proxy), &[], &["--json", "migrate", "--user", user])
                .output()
                .unwrap();
        let code = out.status.code();
        assert!(matches!(code, Some(0 | 1)), "run {run}: not a clean outcome: {}", show(&out));
        if code == Some(1) && out.stdout.is_empty() {
            // The survey itself failed (LIST or HEAD): nothing was moved; the message says so.
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("nothing was migrated") || err.contains("error:"),
                "run {run}: {}",
                show(&out)
            );
            runs.push("survey failed".to_owned());
        } else {
            let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                panic!("run {run}: the report is not JSON ({e}): {}", show(&out))
            });
            assert_eq!(
                r["conflicts"], 0,
                "run {run}: a cut connection must not look like other content: {r}"
            );
            runs.push(format!("migrated {} failed {}", r["migrated"], r["failed"]));
        }
        assert_nothing_lost(&env, &prefixes, &data, &source, &format!("after faulty run {run}"));
        if files_below(&data).is_empty() {
            done = true;
            break;
        }
    }
    let faulty_runs = runs.len();
    let stats = proxy.stats.to_string();
    if !done {
        // The network heals: one more run must finish the job.
        proxy.set_faults(false);
        let out =
            kompass(dir.path(), Some(&via_proxy), &[], &["--json", "migrate"]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    }
    assert!(files_below(&data).is_empty(), "every local copy goes once verified in S3");
    let s3 = store(&env);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let mut listed = Vec::new();
    for p in &prefixes {
        listed.extend(rt.block_on(s3.list(p)).unwrap().into_iter().map(|o| o.key));
    }
    listed.sort();
    assert_eq!(
        listed,
        source.keys().cloned().collect::<Vec<_>>(),
        "exactly the data set is in the bucket"
    );
    let bad =
        rt.block_on(read_all(&s3, source.iter().map(|(k, b)| (k.clone(), sha(b))).collect(), TEST));
    assert!(bad.is_empty(), "{bad:#?}");
    eprintln!("runs: {runs:?}");
    eprintln!(
        "RESULT fault-proxy migrate: {count} files, {faulty_runs} runs through the faulty proxy ({stats}){}, in {:.0?}; every run exited 0 or 1 with a report; 0 lost, 0 half-written; all {count} verified in S3",
        if done { "" } else { " + 1 run after the network healed" },
        started.elapsed()
    );
}

/// A proxy to `upstream` that, while its switch is on, forwards every request and drops the
/// answers: the server stores what it receives while the client times out, the ambiguous
/// failure of a real network.
fn swallowing_proxy(upstream: &str) -> (String, Arc<std::sync::atomic::AtomicBool>) {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let swallow = Arc::new(AtomicBool::new(false));
    let on = swallow.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { continue };
            let Ok(mut server) = std::net::TcpStream::connect(&upstream) else { continue };
            let (mut answer, mut back, on) =
                (server.try_clone().unwrap(), client.try_clone().unwrap(), on.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n @ 1..) = answer.read(&mut buf) {
                    if !on.load(Ordering::SeqCst) && back.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
            std::thread::spawn(move || std::io::copy(&mut client, &mut server));
        }
    });
    (url, swallow)
}

/// A save whose PUT reached S3 but whose answer was lost lands locally and queues, and its
/// bytes still count: the next save past the quota is refused, so the bucket never holds
/// more than the quota (issue 9: 32 writers once ended one file over it this way).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_whose_answer_is_lost_still_counts_against_the_quota() {
    use std::sync::atomic::Ordering;
    const TEST: &str = "a_put_whose_answer_is_lost";
    let Some(env) = support::s3_env(TEST) else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let user = format!("lost-{}", token());
    // Room for two files of 40 KiB, not three.
    let vars = [("S3_MAX_USER_STORAGE_MB", "0.1"), ("S3_AUTO_CLEANUP_ENABLED", "false")];
    let body = vec![b'x'; 40 * 1024];
    let key = |n: &str| ObjectKey::parse_parts(Some(&user), "routes", n).unwrap();
    let (url, swallow) = swallowing_proxy(&env.endpoint);
    let lossy = support::S3Env { endpoint: url, ..env.clone() };
    let quick = S3Options { max_retries: 0, timeout: Duration::from_secs(2), ..options() };
    let m = Manager::open_with(manager_config(&data, Some(&lossy), &vars), quick).unwrap();
    m.save(&key("a.json"), &body).await.unwrap();

    swallow.store(true, Ordering::SeqCst);
    let out = m.save(&key("b.json"), &body).await.unwrap();
    swallow.store(false, Ordering::SeqCst);
    assert_eq!(out.backend, Backend::Local, "the answer never came: the save queues");
    assert!(out.pending_sync.is_some());
    // The premise: the PUT itself reached the bucket.
    let s3 = store(&env);
    let listed = s3.list(&format!("users/{user}/")).await.unwrap();
    assert!(listed.iter().any(|o| o.key.ends_with("/b.json")), "the swallowed PUT reached S3");

    let third = m.save(&key("c.json"), &body).await;
    assert!(
        matches!(third, Err(kompass::manager::ManagerError::Refused(_))),
        "a third file is past the quota once the lost PUT counts: {third:?}"
    );
    let stored: u64 =
        s3.list(&format!("users/{user}/")).await.unwrap().iter().map(|o| o.size).sum();
    assert_eq!(
        stored,
        2 * 40 * 1024,
        "two files fit a 0.1 MiB quota: the first and the lost PUT's"
    );
    // Nothing lost: the queued copy replays.
    m.sync(None).await.unwrap();
    assert!(m.journal().pending().unwrap().is_empty(), "the queued save replayed");
}
