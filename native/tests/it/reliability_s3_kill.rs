//! Outage replay: the S3 server is SIGKILLed during `kompass migrate` of 2,000 files, again
//! and again, and restarted on the same data. The promise: no file is lost or corrupted, and
//! once the server stays up a re-run leaves everything in S3 (and nothing locally).
//!
//! The server is the test's own SeaweedFS (own ports, own state directory), so the shared
//! test server is never killed. 5 kills in the default run, 20 under `make soak`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::reliability::{
    Rng, assert_nothing_lost, count_files_below, files_below, kompass, read_all, scale, seed, sha,
    show, skip_s3, store,
};
use crate::support::server::OwnServer;

/// The data set: `count` files over 8 users (routes and fitness) plus global models, 100 B to
/// 16 KB of random bytes each. Returns S3 key → content.
fn write_data_set(
    data: &Path,
    range: std::ops::Range<usize>,
    rng: &mut Rng,
) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for i in range {
        let size = rng.range(100, 16_000) as usize;
        let body = rng.bytes(size);
        let (rel, key) = match i % 10 {
            9 => (format!("models/m{i}.bin"), format!("models/m{i}.bin")),
            k => {
                let user = format!("rider{}", k % 8);
                let dt = if k % 2 == 0 { "routes" } else { "fitness" };
                (format!("{dt}/{user}/f{i}.json"), format!("users/{user}/{dt}/f{i}.json"))
            }
        };
        let path = data.join(&rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &body).unwrap();
        out.insert(key, body);
    }
    out
}

/// The runs here move 2,000 files several times over (every kill restarts the migration), more
/// than the free tier's 2,000 PUT-class requests a month: this test is about crashes, not the
/// budget (native/tests/admission.rs tests that), so it runs as a paid account would.
const PAID: &[(&str, &str)] = &[("KOMPASS_REQUEST_BUDGET", "off")];

#[test]
fn migration_loses_nothing_when_the_s3_server_is_sigkilled() {
    const TEST: &str = "migration_loses_nothing_when_the_s3_server_is_sigkilled";
    if skip_s3(TEST) {
        return;
    }
    let kills = scale(5, 20);
    let count = 2_000;
    let mut rng = Rng::new(seed(TEST));
    let server = OwnServer::start(TEST);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut source = write_data_set(&data, 0..count, &mut rng);
    let mut refilled = 0;
    let started = Instant::now();

    let mut log = Vec::new();
    for kill in 0..kills {
        // A run can outlive a short outage (its retries span the restart) and finish the
        // job; then the next kill gets a fresh batch, so that every kill hits a migration.
        if count_files_below(&data) == 0 {
            let batch = count / kills;
            source.extend(write_data_set(&data, source.len()..source.len() + batch, &mut rng));
            refilled += batch;
        }
        let left_before = count_files_below(&data);
        // Spread the kills over what is left: on average this run gets 1/(kills left + 1) of it.
        let share = left_before / (kills - kill + 1);
        // One kill in five lands in the run's first moments (hashing, listing, HEADs).
        let kill_after_files =
            if rng.chance(0.2) { 0 } else { rng.range(1, 2 * share as u64 + 1) as usize };
        let early_ms = rng.below(400);
        // Restarting at once lets the run's retries meet the new server; an early kill always
        // restarts after the run, so that it fails its survey or first transfers.
        let restart_at_once = kill_after_files > 0 && rng.chance(0.5);

        let mut child = kompass(dir.path(), Some(&server.env), PAID, &["--json", "migrate"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let spawned = Instant::now();
        // Kill when this run has moved `kill_after_files` files (0: during its survey).
        loop {
            let moved = left_before.saturating_sub(count_files_below(&data));
            let due = if kill_after_files == 0 {
                spawned.elapsed() >= Duration::from_millis(early_ms)
            } else {
                moved >= kill_after_files
            };
            if due || child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let moved_at_kill = left_before.saturating_sub(count_files_below(&data));
        server.kill9();
        if restart_at_once {
            server.restart(TEST);
        }
        let out = child.wait_with_output().unwrap();
        if !restart_at_once {
            server.restart(TEST);
        }
        // A killed server is an outage: a clean failure (1) or, if the kill came after the
        // last transfer, success (0). Never a panic (101) or a signal.
        let code = out.status.code();
        assert!(
            matches!(code, Some(0 | 1)),
            "kill {kill}: migrate did not fail cleanly: {}",
            show(&out)
        );
        let outcome = if out.stdout.is_empty() {
            // Killed before the plan: the survey failed, nothing moved, and it says so.
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                code == Some(1) && err.contains("nothing was migrated"),
                "kill {kill}: no report and no survey failure: {}",
                show(&out)
            );
            "the survey failed, nothing moved".to_owned()
        } else {
            let report: serde_json::Value =
                serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                    panic!("kill {kill}: the report is not JSON ({e}): {}", show(&out))
                });
            assert_eq!(
                report["conflicts"], 0,
                "kill {kill}: a restarted server must not look different: {report}"
            );
            format!("migrated {} failed {}", report["migrated"], report["failed"])
        };
        let left_after = count_files_below(&data);
        log.push(format!(
            "kill {kill}: at {moved_at_kill} files moved ({}), exit {code:?}, {outcome}, local files {left_before} -> {left_after}",
            if restart_at_once { "restarted during the run" } else { "restarted after the run" },
        ));
        // Nothing is lost at any point: every file is still local or in the bucket.
        assert_nothing_lost(
            &server.env,
            &[String::new()],
            &data,
            &source,
            &format!("after kill {kill}"),
        );
    }

    // The server stays up now: one re-run finishes the job.
    let out =
        kompass(dir.path(), Some(&server.env), PAID, &["--json", "migrate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "the final run must complete: {}", show(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["failed"], 0, "{report}");
    assert_eq!(report["conflicts"], 0, "{report}");
    assert!(
        files_below(&data).is_empty(),
        "every local copy goes once verified in S3: {:?}",
        count_files_below(&data)
    );

    // Independent check: the bucket holds exactly the 2,000 files, each byte for byte.
    let s3 = store(&server.env);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let listed = rt.block_on(s3.list("")).unwrap();
    let keys: Vec<&str> = listed.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(
        keys,
        source.keys().map(String::as_str).collect::<Vec<_>>(),
        "the bucket holds exactly the data set"
    );
    let corrupt = rt.block_on(read_all(
        &s3,
        source.iter().map(|(k, b)| (k.clone(), sha(b))).collect(),
        "at the end",
    ));
    assert!(corrupt.is_empty(), "objects lost or corrupted: {corrupt:#?}");
    for l in &log {
        eprintln!("{l}");
    }
    eprintln!(
        "RESULT s3-kill: {kills} SIGKILLs during a migration of {count} files (+{refilled} written after a run outlived its outage); final run migrated {} and skipped {} identical; 0 lost, 0 corrupted ({} objects verified by GET + SHA-256) in {:.0?}",
        report["migrated"],
        report["skipped_identical"],
        source.len(),
        started.elapsed()
    );
}
