//! End-to-end: the `kompass` binary against a real S3 server (SeaweedFS with SigV4 verified,
//! started by `scripts/s3-server.sh`). Every result is checked through an independent path: the
//! bucket listed and read directly with `S3Store`, or the filesystem.
//!
//! Tests share one bucket and run in parallel: each uses its own user ids and names, never
//! assumes the bucket is empty, and cleans up bucket-wide only through `--user`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::support::S3Env;
use crate::support::cli::{Kompass, files_under, payload, scrubbed_fitness_payload};
use crate::support::{self, keys, uid};
use kompass::journal::Journal;
use kompass::manager::sha256;
use kompass::store::s3::{PutMode, S3Store};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

const KIB: u64 = 1024;

/// An installation configured for the test server.
fn kompass(env: &S3Env) -> Kompass {
    let mut k = Kompass::new();
    k.set("S3_STORAGE_ENABLED", "true")
        .set("AWS_ENDPOINT_URL", &env.endpoint)
        .set("AWS_REGION", &env.region)
        .set("AWS_S3_BUCKET", &env.bucket)
        .set("AWS_ACCESS_KEY_ID", &env.access_key_id)
        .set("AWS_SECRET_ACCESS_KEY", &env.secret_access_key)
        .with_pseudonym_key();
    k
}

/// An installation whose endpoint is a loopback port with nothing listening.
fn kompass_down(env: &S3Env) -> Kompass {
    let mut k = kompass(env);
    k.set("AWS_ENDPOINT_URL", &format!("http://127.0.0.1:{}", support::closed_port()));
    k
}

/// A TCP forwarder to the test server that can be taken down, so that S3 becomes unreachable
/// at the same endpoint the installation has cached its inventory for.
struct Proxy {
    url: String,
    task: JoinHandle<()>,
}

impl Proxy {
    async fn to(endpoint: &str) -> Proxy {
        let upstream = endpoint.trim_start_matches("http://").trim_end_matches('/').to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    if let Ok(mut out) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        });
        Proxy { url, task }
    }

    /// Stops accepting: the port is closed once this returns.
    async fn shut_down(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// `kompass --json monitor` against the shared bucket: other tests' users may stand at any
/// level, so the exit status is checked against the level the report gives (issue 12:
/// `monitor` exits by level, like a monitoring plugin).
#[track_caller]
fn monitor_json(k: &Kompass) -> Value {
    let r = k.run(&["--json", "monitor"]);
    let m = r.json();
    let want = match m["level"].as_str() {
        Some("normal" | "cleanup") => 0,
        Some("warning") => 1,
        Some("critical") => 2,
        other => panic!("monitor level {other:?}: {m}"),
    };
    r.code(want);
    m
}

fn names(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_owned()).collect()
}

fn save_args<'a>(user: Option<&'a str>, dt: &'a str, name: &'a str) -> Vec<&'a str> {
    let mut a = vec!["save", "--type", dt, "--name", name, "-"];
    if let Some(u) = user {
        a.extend(["--user", u]);
    }
    a
}

#[tokio::test]
async fn round_trip_per_user_and_global() {
    let Some(env) = support::s3_env("round_trip_per_user_and_global") else { return };
    let s3 = env.store();
    let k = kompass(&env);
    let u = uid("rt");
    let body = br#"{"route":"Alpe d'Huez","hairpins":21}"#;

    let saved = k
        .run_stdin(&[&["--json"][..], &save_args(Some(&u), "routes", "ride.json")].concat(), body)
        .ok()
        .json();
    let key = format!("users/{u}/routes/ride.json");
    assert_eq!(saved["backend"], "s3");
    assert_eq!(saved["key"], key.as_str());
    assert_eq!(saved["bytes"], body.len());
    assert!(saved.get("pending_sync").is_none_or(Value::is_null), "{saved}");
    // In the bucket, at the layout's key, with the exact bytes; and not left on local disk.
    assert_eq!(keys(&s3, &format!("users/{u}/")).await, std::slice::from_ref(&key));
    assert_eq!(s3.get(&key).await.unwrap(), body);
    assert!(files_under(k.data_dir()).is_empty(), "{:?}", files_under(k.data_dir()));

    let list = k.run(&["--json", "list", "--user", &u, "--type", "routes"]).ok().json();
    assert_eq!(names(&list), ["ride.json"]);
    assert_eq!(list[0]["backend"], "s3");
    assert_eq!(list[0]["key"], key.as_str());
    assert_eq!(list[0]["size"], body.len());
    assert!(list[0]["last_modified"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        k.run(&["load", "--user", &u, "--type", "routes", "--name", "ride.json"]).ok().stdout,
        body
    );

    // A second installation (a fresh data directory, no cache) sees the same.
    let other = kompass(&env);
    assert_eq!(
        other.run(&["load", "--user", &u, "--type", "routes", "--name", "ride.json"]).ok().stdout,
        body
    );

    // Global data: {type}/{name}.
    let model = format!("{u}-model.bin");
    let mbody = payload("model", 3000);
    let saved = k
        .run_stdin(&[&["--json"][..], &save_args(None, "models", &model)].concat(), &mbody)
        .ok()
        .json();
    let mkey = format!("models/{model}");
    assert_eq!(saved["key"], mkey.as_str());
    assert_eq!(saved["backend"], "s3");
    assert_eq!(s3.get(&mkey).await.unwrap(), mbody);
    let list = k.run(&["--json", "list", "--type", "models"]).ok().json();
    assert!(names(&list).contains(&model), "{list}");
    assert_eq!(k.run(&["load", "--type", "models", "--name", &model]).ok().stdout, mbody);

    // Delete removes the objects from the bucket.
    k.run(&["delete", "--type", "models", "--name", &model]).ok();
    assert!(s3.head(&mkey).await.unwrap().is_none());
    k.run(&["load", "--type", "models", "--name", &model]).code(4);
    k.run(&["delete", "--user", &u, "--type", "routes", "--name", "ride.json"]).ok();
    assert!(keys(&s3, &format!("users/{u}/")).await.is_empty());
    k.run(&["load", "--user", &u, "--type", "routes", "--name", "ride.json"]).code(4);
}

#[tokio::test]
async fn users_cannot_see_or_touch_each_others_files() {
    let Some(env) = support::s3_env("users_cannot_see_or_touch_each_others_files") else { return };
    let s3 = env.store();
    let k = kompass(&env);
    let alice = uid("alice");
    let bob = uid("bob");
    let secret = br#"{"home":"somewhere private"}"#;
    k.run_stdin(&save_args(Some(&alice), "routes", "secret.json"), secret).ok();
    k.run_stdin(&save_args(Some(&bob), "routes", "own.json"), b"{}").ok();

    assert_eq!(
        names(&k.run(&["--json", "list", "--user", &bob, "--type", "routes"]).ok().json()),
        ["own.json"]
    );
    assert_eq!(
        names(&k.run(&["--json", "list", "--user", &alice, "--type", "routes"]).ok().json()),
        ["secret.json"]
    );
    let r = k.run(&["load", "--user", &bob, "--type", "routes", "--name", "secret.json"]).code(4);
    assert!(r.stdout.is_empty());
    for sneaky in [
        format!("../{alice}/routes/secret.json"),
        format!("../../users/{alice}/routes/secret.json"),
        format!("..\\{alice}\\routes\\secret.json"),
        format!("..\u{2215}{alice}\u{2215}routes\u{2215}secret.json"),
    ] {
        let r = k.run(&["load", "--user", &bob, "--type", "routes", "--name", &sneaky]).code(2);
        assert!(r.stdout.is_empty(), "{sneaky}: {}", r.out());
        k.run(&["delete", "--user", &bob, "--type", "routes", "--name", &sneaky]).code(2);
    }
    k.run(&["delete", "--user", &bob, "--type", "routes", "--name", "secret.json"]).code(4);

    // The bucket: alice's file only under users/alice/, intact; bob's only under users/bob/.
    assert_eq!(
        keys(&s3, &format!("users/{alice}/")).await,
        [format!("users/{alice}/routes/secret.json")]
    );
    assert_eq!(keys(&s3, &format!("users/{bob}/")).await, [format!("users/{bob}/routes/own.json")]);
    assert_eq!(s3.get(&format!("users/{alice}/routes/secret.json")).await.unwrap(), secret);
}

#[tokio::test]
async fn traversal_names_are_rejected_and_create_nothing() {
    let Some(env) = support::s3_env("traversal_names_are_rejected_and_create_nothing") else {
        return;
    };
    let s3 = env.store();
    let k = kompass(&env);
    let marker = uid("trav");
    let victim = uid("victim");
    let names = [
        format!("../{marker}.json"),
        format!("../../{marker}.json"),
        format!("../../users/{victim}/routes/{marker}.json"),
        format!("/{marker}.json"),
        format!("/tmp/{marker}.json"),
        format!("sub/{marker}.json"),
        format!("..\\{marker}.json"),
        format!("a\\{marker}.json"),
        format!("..\u{2215}{marker}.json"),
        format!("..\u{FF0F}{marker}.json"),
        format!("{marker}\u{1}.json"),
        "..".to_owned(),
    ];
    for name in &names {
        let r = k
            .run_stdin(
                &["--json", "save", "--user", "trav-user", "--type", "routes", "--name", name, "-"],
                b"{}",
            )
            .code(2);
        assert!(r.stdout.is_empty(), "{name:?}: nothing claimed: {}", r.out());
        assert!(r.stderr.contains("invalid"), "{name:?}: {}", r.stderr);
        // Global data too.
        k.run_stdin(&save_args(None, "models", name), b"{}").code(2);
    }
    for user in [
        format!("../{marker}"),
        format!("{marker}/../x"),
        format!("/{marker}"),
        format!("{marker}\u{2215}x"),
    ] {
        k.run_stdin(&save_args(Some(&user), "routes", &format!("{marker}.json")), b"{}").code(2);
    }
    // Nothing in the bucket carries the marker, and nothing was written on disk at all.
    let all = keys(&s3, "").await;
    let hits: Vec<&String> = all.iter().filter(|k| k.contains(&marker)).collect();
    assert!(hits.is_empty(), "objects created: {hits:?}");
    assert!(keys(&s3, &format!("users/{victim}/")).await.is_empty());
    assert!(files_under(k.root()).is_empty(), "{:?}", files_under(k.root()));
}

#[tokio::test]
async fn oversize_is_refused_before_any_request_and_deletes_nothing() {
    let Some(env) = support::s3_env("oversize_is_refused_before_any_request_and_deletes_nothing")
    else {
        return;
    };
    let s3 = env.store();
    let mut k = kompass(&env);
    let u = uid("big");
    // A user over the cleanup threshold (3000 of 4194 bytes), so a cleanup would run if the
    // save got past the size check.
    k.set("S3_MAX_USER_STORAGE_MB", "0.004").set("S3_MIN_FILES_TO_KEEP", "0");
    for i in 0..3 {
        k.with(&[("S3_AUTO_CLEANUP_ENABLED", "false")])
            .run_stdin(&save_args(Some(&u), "routes", &format!("r{i}.json")), &payload("r", 1000))
            .ok();
    }
    let before = keys(&s3, &format!("users/{u}/")).await;
    assert_eq!(before.len(), 3);

    let big = payload("big", 5000);
    let r = k
        .with(&[("S3_MAX_FILE_SIZE_MB", "0.001")])
        .run_stdin(&[&["--json"][..], &save_args(Some(&u), "routes", "big.json")].concat(), &big)
        .code(3);
    assert!(r.stderr.contains("S3_MAX_FILE_SIZE_MB"), "names the limit: {}", r.stderr);
    assert!(r.stderr.contains("1048 bytes"), "gives the limit: {}", r.stderr);
    assert!(r.stdout.is_empty());
    assert_eq!(
        keys(&s3, &format!("users/{u}/")).await,
        before,
        "nothing uploaded, nothing deleted"
    );

    // With nothing listening at the endpoint the answer is the same: the check needs no
    // request (a request would have failed, and the save would have landed locally instead).
    let down = kompass_down(&env);
    let r = down
        .with(&[("S3_MAX_FILE_SIZE_MB", "0.001")])
        .run_stdin(&save_args(Some(&u), "routes", "big.json"), &big)
        .code(3);
    assert!(r.stderr.contains("S3_MAX_FILE_SIZE_MB"), "{}", r.stderr);
    assert!(!r.stderr.contains("unreachable"), "{}", r.stderr);
    assert!(files_under(down.data_dir()).is_empty(), "not saved locally either");
    assert!(Journal::open(down.data_dir()).unwrap().pending().unwrap().is_empty(), "not queued");
}

/// The FIFO rules end to end on one user with a 1 MiB quota and 5 files kept per type.
#[tokio::test]
async fn fifo_cleanup_end_to_end() {
    let Some(env) = support::s3_env("fifo_cleanup_end_to_end") else { return };
    let s3 = env.store();
    let mut k = kompass(&env);
    let u = uid("fifo");
    let prefix = format!("users/{u}/");
    k.set("S3_MAX_USER_STORAGE_MB", "1").set("S3_MIN_FILES_TO_KEEP", "5");
    let no_auto = [("S3_AUTO_CLEANUP_ENABLED", "false")];
    let fit = |i: usize| format!("users/{u}/fitness/fit-{i:02}.json");
    let old = |i: usize| format!("users/{u}/routes/z-old-{i:02}.json");
    let new = |i: usize| format!("users/{u}/routes/a-new-{i:02}.json");

    // Oldest: 6 small fitness files and 6 small routes; then, a second later, 6 large routes.
    // 60 + 60 + 720 = 840 KiB, 82 % of 1 MiB. The new routes' names sort first, so a plan
    // ordered by name instead of age would pick them.
    for i in 0..6 {
        k.with(&no_auto)
            .run_stdin(
                &save_args(Some(&u), "fitness", &format!("fit-{i:02}.json")),
                &scrubbed_fitness_payload("f", 10 * 1024),
            )
            .ok();
    }
    for i in 0..6 {
        k.with(&no_auto)
            .run_stdin(
                &save_args(Some(&u), "routes", &format!("z-old-{i:02}.json")),
                &payload("o", 10 * 1024),
            )
            .ok();
    }
    // S3 timestamps have one-second resolution.
    std::thread::sleep(Duration::from_millis(1100));
    for i in 0..6 {
        k.with(&no_auto)
            .run_stdin(
                &save_args(Some(&u), "routes", &format!("a-new-{i:02}.json")),
                &payload("n", 120 * 1024),
            )
            .ok();
    }
    let all: BTreeSet<String> = (0..6).flat_map(|i| [fit(i), old(i), new(i)]).collect();
    assert_eq!(keys(&s3, &prefix).await, all.iter().cloned().collect::<Vec<_>>());

    // Dry run: the plan, and nothing deleted. Fitness has 6 files and keeps 5, so it gives
    // one; routes has 12 and gives at most half (6), its oldest. 770 KiB remain (still over
    // the threshold: the safety rules stop this cycle).
    let plan = k.run(&["--json", "cleanup", "--user", &u, "--dry-run"]).ok().json();
    let deletions = plan["deletions"].as_array().unwrap();
    let planned: BTreeSet<String> =
        deletions.iter().map(|d| d["key"].as_str().unwrap().to_owned()).collect();
    let expected: BTreeSet<String> = std::iter::once(fit(0)).chain((0..6).map(old)).collect();
    assert_eq!(planned, expected);
    let ms: Vec<i64> = deletions.iter().map(|d| d["last_modified_ms"].as_i64().unwrap()).collect();
    assert!(ms.windows(2).all(|w| w[0] <= w[1]), "oldest first: {ms:?}");
    for d in deletions {
        let key = d["key"].as_str().unwrap();
        assert!(d["last_modified"].as_str().unwrap().ends_with('Z'));
        assert_eq!(d["reason"]["scope"], "user_quota", "{d}");
        assert_eq!(d["reason"]["user"], u.as_str());
        assert_eq!(d["reason"]["threshold_percent"], 70);
        assert_eq!(d["reason"]["limit_bytes"], 1024 * KIB);
        assert_eq!(d["reason"]["used_bytes"], 840 * KIB);
        assert_eq!(
            d["reason"]["group_files"],
            if key.contains("/fitness/") { 6 } else { 12 },
            "{d}"
        );
        assert_eq!(d["size"], 10 * KIB);
    }
    assert_eq!(plan["bytes_freed"], 70 * KIB);
    assert_eq!(plan["usage_after"]["users"][&u]["bytes"], 770 * KIB);
    assert_eq!(plan["usage_after"]["users"][&u]["files"], 11);
    assert_eq!(plan["dry_run"], true);
    assert_eq!(keys(&s3, &prefix).await.len(), 18, "a dry run deletes nothing");

    let text = k.run(&["cleanup", "--user", &u, "--dry-run"]).ok().out();
    for key in &expected {
        assert!(text.contains(key.as_str()), "{key} in {text}");
    }
    assert!(text.contains(&format!("user {u} over 70% of 1 MiB quota")), "{text}");
    assert!(text.contains("dry run"), "{text}");
    assert_eq!(keys(&s3, &prefix).await.len(), 18);

    // Carried out: exactly the plan.
    let done = k.run(&["--json", "cleanup", "--user", &u]).ok().json();
    assert_eq!(done["deleted"], 7);
    let left: Vec<String> = all.difference(&expected).cloned().collect();
    assert_eq!(keys(&s3, &prefix).await, left);

    // The next cycle: routes has 6 files now and keeps 5, so one more goes (the oldest large
    // one), which brings the user to 650 KiB, under the threshold; fitness is at its minimum.
    let second = k.run(&["--json", "cleanup", "--user", &u]).ok().json();
    let keys2: Vec<&str> = second["deletions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys2, [new(0)]);
    assert_eq!(second["usage_after"]["users"][&u]["bytes"], 650 * KIB);
    let third = k.run(&["--json", "cleanup", "--user", &u]).ok().json();
    assert!(third["deletions"].as_array().unwrap().is_empty(), "{third}");
    let now: Vec<String> = keys(&s3, &prefix).await;
    assert_eq!(now.iter().filter(|k| k.contains("/fitness/")).count(), 5);
    assert_eq!(now.iter().filter(|k| k.contains("/routes/")).count(), 5);

    let m = monitor_json(&k);
    assert_eq!(m["users"][&u]["bytes"], 650 * KIB);
    assert_eq!(m["users"][&u]["level"], "normal");

    // The quota is a hard limit after cleanup: 650 + 600 KiB, and cleanup could free one
    // 120 KiB route (the upload makes routes 6 files): still over 1 MiB, so refused, and
    // nothing is deleted.
    let r = k
        .run_stdin(
            &[&["--json"][..], &save_args(Some(&u), "routes", "huge.json")].concat(),
            &payload("h", 600 * 1024),
        )
        .code(3);
    assert!(r.stderr.contains("S3_MAX_USER_STORAGE_MB"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert_eq!(keys(&s3, &prefix).await, now, "nothing deleted, nothing uploaded");

    // One that fits after cleanup is stored, and the automatic cleanup removes the oldest.
    let ok = k
        .run_stdin(
            &[&["--json"][..], &save_args(Some(&u), "routes", "b-latest.json")].concat(),
            &payload("l", 300 * 1024),
        )
        .ok()
        .json();
    assert_eq!(ok["backend"], "s3");
    let cleaned: Vec<&str> =
        ok["cleaned"].as_array().unwrap().iter().map(|d| d["key"].as_str().unwrap()).collect();
    assert_eq!(cleaned, [new(1)]);
    let after = keys(&s3, &prefix).await;
    assert!(after.contains(&format!("users/{u}/routes/b-latest.json")));
    assert!(!after.contains(&new(1)));
    assert_eq!(after.len(), now.len());
}

#[tokio::test]
async fn outage_saves_locally_and_queues_for_sync() {
    let Some(env) = support::s3_env("outage_saves_locally_and_queues_for_sync") else { return };
    let s3 = env.store();
    let k = kompass_down(&env);
    let u = uid("outage");
    let body = br#"{"route":"saved during an outage"}"#;

    let saved = k
        .run_stdin(&[&["--json"][..], &save_args(Some(&u), "routes", "a.json")].concat(), body)
        .ok()
        .json();
    assert_eq!(saved["backend"], "local");
    assert_eq!(saved["key"], format!("users/{u}/routes/a.json").as_str());
    assert!(saved["pending_sync"].is_string(), "the save reports that it waits for sync: {saved}");
    assert_eq!(std::fs::read(k.data_dir().join(format!("routes/{u}/a.json"))).unwrap(), body);

    let text = k.run_stdin(&save_args(Some(&u), "routes", "b.json"), body).ok();
    let out = text.out();
    assert!(!out.contains("to S3"), "does not claim S3: {out}");
    assert!(out.contains("local storage") && out.contains("queued"), "{out}");

    let pending = Journal::open(k.data_dir()).unwrap().pending().unwrap();
    let mut pk: Vec<String> = pending.iter().map(|p| p.key.s3_key()).collect();
    pk.sort();
    assert_eq!(pk, [format!("users/{u}/routes/a.json"), format!("users/{u}/routes/b.json")]);
    assert!(keys(&s3, &format!("users/{u}/")).await.is_empty(), "nothing reached the bucket");

    // Still readable and listable while S3 is down, with a warning that S3 was not listed.
    assert_eq!(
        k.run(&["load", "--user", &u, "--type", "routes", "--name", "a.json"]).ok().stdout,
        body
    );
    // Issue 12: a listing without S3 is degraded, not a success: exit 5 and
    // `{"degraded": true, "reason", "files"}` (the local copies) instead of the bare list.
    let list = k.run(&["--json", "list", "--user", &u, "--type", "routes"]).code(5);
    assert!(list.stderr.contains("unreachable"), "{}", list.stderr);
    let degraded = list.json();
    assert_eq!(degraded["degraded"], true, "{degraded}");
    assert!(degraded["reason"].as_str().unwrap().contains("AWS_ENDPOINT_URL"), "{degraded}");
    let list = degraded["files"].clone();
    let mut listed = names(&list);
    listed.sort();
    assert_eq!(listed, ["a.json", "b.json"], "{list}");
    assert!(list.as_array().unwrap().iter().all(|i| i["backend"] == "local"), "{list}");
    // Monitor shows the backlog, says S3 failed, and exits non-zero.
    let m = k.run(&["--json", "monitor"]);
    assert_ne!(m.code, 0);
    let m = m.json();
    assert_eq!(m["pending_sync"], 2);
    assert_eq!(m["usage_source"], "local");
    assert!(m["s3_error"].as_str().unwrap().contains("AWS_ENDPOINT_URL"), "{m}");
    assert_eq!(m["users"][&u]["files"], 2);
}

/// S3 goes down after the inventory was cached: the PUT fails, or the cleanup that must run
/// before it does. Either way the save lands locally and is queued, and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_after_the_inventory_is_cached_still_saves_locally() {
    let Some(env) = support::s3_env("outage_after_the_inventory_is_cached_still_saves_locally")
    else {
        return;
    };
    let s3 = env.store();
    let proxy = Proxy::to(&env.endpoint).await;
    let mut k = kompass(&env);
    k.set("AWS_ENDPOINT_URL", &proxy.url)
        .set("S3_MAX_USER_STORAGE_MB", "1")
        .set("S3_MIN_FILES_TO_KEEP", "5");
    let u = uid("cached-outage");
    for i in 0..6 {
        k.with(&[("S3_AUTO_CLEANUP_ENABLED", "false")])
            .run_stdin(
                &save_args(Some(&u), "routes", &format!("r{i}.json")),
                &payload("r", 100 * 1024),
            )
            .ok();
    }
    let before = keys(&s3, &format!("users/{u}/")).await;
    assert_eq!(before.len(), 6);
    proxy.shut_down().await;

    // 610 KiB: no cleanup due, so the PUT is the first request, and it fails.
    let a = k
        .run_stdin(
            &[&["--json"][..], &save_args(Some(&u), "routes", "p1.json")].concat(),
            &payload("p1", 10 * 1024),
        )
        .ok()
        .json();
    assert_eq!(a["backend"], "local", "{a}");
    assert!(a["pending_sync"].is_string(), "{a}");
    // 750 KiB (the cache does not know p1): cleanup is due first, and its DELETE fails.
    let b = k.run_stdin(
        &[&["--json"][..], &save_args(Some(&u), "routes", "p2.json")].concat(),
        &payload("p2", 150 * 1024),
    );
    let b = b.ok().json();
    assert_eq!(b["backend"], "local", "{b}");
    assert!(b["pending_sync"].is_string(), "{b}");

    assert_eq!(
        keys(&s3, &format!("users/{u}/")).await,
        before,
        "nothing reached or left the bucket"
    );
    let mut pending: Vec<String> = Journal::open(k.data_dir())
        .unwrap()
        .pending()
        .unwrap()
        .iter()
        .map(|p| p.key.s3_key())
        .collect();
    pending.sort();
    assert_eq!(pending, [format!("users/{u}/routes/p1.json"), format!("users/{u}/routes/p2.json")]);
    assert_eq!(
        files_under(k.data_dir()),
        [format!("routes/{u}/p1.json"), format!("routes/{u}/p2.json")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_paginates_past_1000_objects() {
    let Some(env) = support::s3_env("list_paginates_past_1000_objects") else { return };
    let _many_pages = support::BUCKET_PAGES.write().await;
    let s3 = Arc::new(env.store());
    let u = uid("page");
    let want: BTreeSet<String> = (0..1050).map(|i| format!("r-{i:04}.json")).collect();
    let gate = Arc::new(Semaphore::new(32));
    let mut tasks = JoinSet::new();
    for name in &want {
        let (s3, gate) = (s3.clone(), gate.clone());
        let key = format!("users/{u}/routes/{name}");
        tasks.spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            let body = key.clone().into_bytes();
            s3.put(&key, body.clone(), sha256(&body), PutMode::Overwrite).await.unwrap();
        });
    }
    while let Some(t) = tasks.join_next().await {
        t.unwrap();
    }

    let k = kompass(&env);
    let list = k.run(&["--json", "list", "--user", &u, "--type", "routes"]).ok().json();
    let got: Vec<String> = names(&list);
    assert_eq!(got.len(), 1050);
    assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), want);
    assert!(list.as_array().unwrap().iter().all(|i| i["backend"] == "s3"));
    // The inventory behind monitor and cleanup paginates too.
    let m = monitor_json(&k);
    assert_eq!(m["users"][&u]["files"], 1050);

    // Leave the shared bucket small for the other tests' listings.
    let mut tasks = JoinSet::new();
    for name in want {
        let (s3, gate) = (s3.clone(), gate.clone());
        let key = format!("users/{u}/routes/{name}");
        tasks.spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            s3.delete(&key).await.unwrap();
        });
    }
    while let Some(t) = tasks.join_next().await {
        t.unwrap();
    }
}

#[tokio::test]
async fn wrong_secret_is_a_clear_error_and_nothing_is_claimed() {
    let Some(env) = support::s3_env("wrong_secret_is_a_clear_error_and_nothing_is_claimed") else {
        return;
    };
    let s3 = env.store();
    let mut k = kompass(&env);
    let canary = "wrong-secret-canary-8d1f0e2a7b";
    k.set("AWS_SECRET_ACCESS_KEY", canary);
    let u = uid("badkey");

    for json in [false, true] {
        let mut args = save_args(Some(&u), "routes", "a.json");
        if json {
            args.insert(0, "--json");
        }
        let r = k.run_stdin(&args, b"{}");
        assert_ne!(r.code, 0, "{r:?}");
        let all = r.all_output();
        assert!(r.stderr.contains("AWS_SECRET_ACCESS_KEY"), "names the setting: {}", r.stderr);
        assert!(
            !all.contains(canary) && !all.contains(&env.secret_access_key),
            "no secret printed: {all}"
        );
        assert!(!all.contains("saved"), "nothing claimed as saved: {all}");
        assert!(r.stdout.is_empty(), "{}", r.out());
    }
    // Not in the bucket, and not silently kept locally either: credentials are no outage.
    assert!(keys(&s3, &format!("users/{u}/")).await.is_empty());
    assert!(files_under(k.data_dir()).is_empty());
    assert!(Journal::open(k.data_dir()).unwrap().pending().unwrap().is_empty());

    let r = k.run(&["list", "--user", &u, "--type", "routes"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("AWS_SECRET_ACCESS_KEY"), "{}", r.stderr);

    // The same when the inventory is cached (no LIST first): the PUT itself is refused.
    let mut cached = kompass(&env);
    cached.run_stdin(&save_args(Some(&u), "routes", "first.json"), b"{}").ok();
    cached.set("AWS_SECRET_ACCESS_KEY", canary);
    let r = cached.run_stdin(&save_args(Some(&u), "routes", "second.json"), b"{}");
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("AWS_SECRET_ACCESS_KEY"), "names the setting: {}", r.stderr);
    assert!(
        !r.all_output().contains(canary) && !r.all_output().contains("saved"),
        "{}",
        r.all_output()
    );
    assert_eq!(keys(&s3, &format!("users/{u}/")).await, [format!("users/{u}/routes/first.json")]);
    assert!(files_under(cached.data_dir()).is_empty(), "not kept locally as if S3 were down");
}

#[tokio::test]
async fn config_reports_the_access_problem_without_printing_secrets() {
    let Some(env) = support::s3_env("config_reports_the_access_problem_without_printing_secrets")
    else {
        return;
    };
    let mut k = kompass(&env);

    let good = k.run(&["--json", "config"]).ok();
    assert!(!good.all_output().contains(&env.secret_access_key), "{}", good.all_output());
    let report = good.json();
    assert_eq!(report["valid"], true);
    assert_eq!(report["s3_access"], "ok");

    let canary = "wrong-secret-canary-31c4f9e6aa";
    k.set("AWS_SECRET_ACCESS_KEY", canary);
    let text = k.run(&["config"]);
    assert_ne!(text.code, 0);
    let all = text.all_output();
    assert!(all.contains("AWS_SECRET_ACCESS_KEY"), "{all}");
    assert!(!all.contains(canary) && !all.contains(&env.secret_access_key), "{all}");

    let json = k.run(&["--json", "config"]);
    assert_ne!(json.code, 0);
    assert!(!json.all_output().contains(canary));
    let report = json.json();
    assert!(report["s3_access"].as_str().unwrap().contains("AWS_SECRET_ACCESS_KEY"), "{report}");
}

#[tokio::test]
async fn monitor_json_matches_what_was_saved() {
    let Some(env) = support::s3_env("monitor_json_matches_what_was_saved") else { return };
    let s3 = env.store();
    let mut k = kompass(&env);
    k.set("S3_MAX_USER_STORAGE_MB", "1").set("S3_AUTO_CLEANUP_ENABLED", "false");
    let tag = uid("mon");
    let users: Vec<(String, u64, &str)> =
        [(100u64, "normal"), (750, "cleanup"), (850, "warning"), (950, "critical")]
            .into_iter()
            .map(|(kib, level)| (format!("{tag}-{level}"), kib, level))
            .collect();
    let mut saves = 0;
    for (u, kib, _) in &users {
        k.run_stdin(
            &save_args(Some(u), "routes", "r.json"),
            &payload(u, (*kib as usize - 50) * 1024),
        )
        .ok();
        k.run_stdin(
            &save_args(Some(u), "fitness", "f.json"),
            &scrubbed_fitness_payload(u, 50 * 1024),
        )
        .ok();
        saves += 2;
    }

    let m = monitor_json(&k);
    assert_eq!(m["usage_source"], "s3");
    assert_eq!(m["bucket_name"], env.bucket.as_str());
    let mut ours = 0;
    for (u, kib, level) in &users {
        // The bucket, read directly, agrees with what monitor reports.
        let listed: u64 =
            s3.list(&format!("users/{u}/")).await.unwrap().iter().map(|o| o.size).sum();
        assert_eq!(listed, kib * KIB);
        let ur = &m["users"][u];
        assert_eq!(ur["bytes"], kib * KIB, "{u}: {ur}");
        assert_eq!(ur["files"], 2);
        assert_eq!(ur["by_type"]["routes"]["bytes"], (kib - 50) * KIB);
        assert_eq!(ur["by_type"]["fitness"]["bytes"], 50 * KIB);
        assert_eq!(ur["level"], *level, "{u}: {ur}");
        assert_eq!(ur["status"]["level"], *level);
        assert_eq!(ur["status"]["limit"], 1024 * KIB);
        ours += kib * KIB;
    }
    assert!(m["bucket"]["bytes"].as_u64().unwrap() >= ours);
    assert_eq!(m["bucket"]["status"]["limit"], m["limits"]["bucket_bytes"]);
    assert!(
        ["normal", "cleanup", "warning", "critical"]
            .contains(&m["bucket"]["level"].as_str().unwrap())
    );
    assert_eq!(m["level"], "critical");
    assert_eq!(m["pending_sync"], 0);
    assert_eq!(m["local"]["bucket"]["files"], 0, "everything went to S3");
    // One PUT per save, one LIST for the first save's inventory, one for monitor's (a page
    // or two each): not a LIST per save.
    let puts = m["requests"]["put_class"]["used"].as_u64().unwrap();
    assert!(
        (saves + 2..=saves + 6).contains(&puts),
        "PUT-class requests: {puts} for {saves} saves"
    );
    assert_eq!(m["requests"]["put_class"]["limit"], 2000);
    assert_eq!(m["requests"]["get_class"]["limit"], 20000);
    assert_eq!(m["requests"]["level"], "normal");

    let text = k.run(&["monitor"]).code(2).out();
    let warn = &users[2].0;
    let line =
        text.lines().find(|l| l.starts_with(warn.as_str()) && l.contains("total")).expect(&text);
    assert!(
        line.contains("████████░░") && line.contains("83% of 1 MiB") && line.contains("warning"),
        "{line}"
    );
    assert!(text.contains("PUT-class"), "{text}");
}

const STRAVA_EXPORT: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/strava_export.json");

/// Every object under `prefix` with its content.
async fn contents(s3: &S3Store, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for k in keys(s3, prefix).await {
        let body = s3.get(&k).await.unwrap();
        out.push((k, body));
    }
    out
}

#[tokio::test]
async fn a_raw_export_saved_as_fitness_is_refused_in_s3_and_nothing_is_stored_or_deleted() {
    let Some(env) = support::s3_env("a_raw_export_saved_as_fitness_is_refused_in_s3") else {
        return;
    };
    let s3 = env.store();
    let mut k = kompass(&env);
    let u = uid("rawfit");
    let prefix = format!("users/{u}/");
    // A quota the raw export would need cleanup for: the refusal must come before any deletion.
    k.set("S3_MAX_USER_STORAGE_MB", "0.02").set("S3_MIN_FILES_TO_KEEP", "0");
    for i in 0..3 {
        k.with(&[("S3_AUTO_CLEANUP_ENABLED", "false")])
            .run_stdin(
                &save_args(Some(&u), "routes", &format!("r{i}.json")),
                &payload("r", 5 * 1024),
            )
            .ok();
    }
    let before = contents(&s3, &prefix).await;
    assert_eq!(before.len(), 3);
    let run = k
        .run(&["save", "--user", &u, "--type", "fitness", "--name", "raw.json", STRAVA_EXPORT])
        .code(2);
    let msg = run.all_output();
    assert!(msg.contains("kompass rider save"), "{msg}");
    assert!(!msg.contains("Amélie") && !msg.contains("45.899247"), "no PII echoed: {msg}");
    assert_eq!(contents(&s3, &prefix).await, before, "nothing stored or deleted in the bucket");
    assert!(files_under(k.data_dir()).iter().all(|f| !f.starts_with("fitness")), "nor locally");
    // With S3 down the refusal needs no request: nothing lands locally or in the journal.
    let down = kompass_down(&env);
    down.run(&["save", "--user", &u, "--type", "fitness", "--name", "raw.json", STRAVA_EXPORT])
        .code(2);
    assert!(files_under(down.data_dir()).iter().all(|f| !f.starts_with("fitness")));
    assert!(Journal::open(down.data_dir()).unwrap().is_empty().unwrap());
}

#[tokio::test]
async fn only_a_document_scrubbed_under_the_configured_key_id_is_stored_in_s3() {
    let Some(env) = support::s3_env("only_a_document_scrubbed_under_the_configured_key_id") else {
        return;
    };
    let s3 = env.store();
    let k = kompass(&env);
    let u = uid("fitok");
    let saved = k.run(&["--json", "rider", "save", "--user", &u, STRAVA_EXPORT]).ok().json();
    let name = saved["name"].as_str().unwrap().to_owned();
    let stored = k.run(&["rider", "load", "--user", &u, "--name", &name]).ok().stdout;
    // Already scrubbed under the configured key: stored as given.
    k.run_stdin(&save_args(Some(&u), "fitness", "copy.json"), &stored).ok();
    assert_eq!(s3.get(&format!("users/{u}/fitness/copy.json")).await.unwrap(), stored);
    // A pseudonym under another key id: refused, nothing stored.
    let ours = format!("\"{}:", support::cli::TEST_PSEUDONYM_KEY_ID);
    let text = String::from_utf8(stored).unwrap();
    assert!(text.contains(&ours));
    let forged = text.replacen(&ours, "\"k2:", 1);
    k.run_stdin(&save_args(Some(&u), "fitness", "forged.json"), forged.as_bytes()).code(2);
    assert_eq!(
        keys(&s3, &format!("users/{u}/")).await,
        [format!("users/{u}/fitness/copy.json"), format!("users/{u}/fitness/{name}")]
    );
}
