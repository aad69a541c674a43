//! `kompass migrate` end to end: the real binary against a real S3 server (SeaweedFS with
//! SigV4 on, from `scripts/s3-server.sh`), with a temporary data directory. Results are
//! checked through independent paths: the bucket listed and read with `S3Store`, and the
//! data directory read with `std::fs`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support;
use crate::support::reliability::store;
use crate::support::{FakeServer, Reply, S3Env};
use kompass::store::s3::{PutMode, S3Store};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The pseudonym key for the rider data these tests save.
const RIDER_KEY: &str = "migrate-test-pseudonym-key-0123456789ab";
const RIDER_KEY_ID: &str = "km1";

// ---------------------------------------------------------------- helpers

fn sha(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A token no other test (or earlier run) uses: user ids and global names are unique per test.
fn token() -> String {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("{}-{nanos}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed))
}

/// Runs `kompass --data-dir DIR ARGS` with the S3 test server's environment (plus `vars`),
/// in DIR (so no stray `.env` is read).
fn kompass(dir: &Path, env: &S3Env, vars: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kompass"));
    cmd.current_dir(dir)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(args)
        .envs(env.vars())
        .env_remove("DATA_DIRECTORY");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().expect("the kompass binary runs")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}); status {:?}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn show(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Writes a file below the data directory (`rel` uses `/`), creating folders.
fn write(dir: &Path, rel: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join("data").join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Every object key under `prefix`, with its content.
async fn bucket_under(s3: &S3Store, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for o in s3.list(prefix).await.unwrap() {
        let body = s3.get(&o.key).await.unwrap();
        out.push((o.key, body));
    }
    out
}

async fn get_opt(s3: &S3Store, key: &str) -> Option<Vec<u8>> {
    match s3.head(key).await.unwrap() {
        Some(_) => Some(s3.get(key).await.unwrap()),
        None => None,
    }
}

fn n(v: &Value, field: &str) -> u64 {
    v[field].as_u64().unwrap_or_else(|| panic!("no number {field} in {v}"))
}

/// Saves queued in the pending-sync journal (in the state database) of `dir`'s data directory.
fn journal_lines(dir: &Path) -> usize {
    kompass::journal::Journal::open(dir.join("data")).unwrap().count().unwrap()
}

/// A closed loopback endpoint: S3 "down".
fn down(env: &S3Env) -> S3Env {
    S3Env { endpoint: format!("http://127.0.0.1:{}", support::closed_port()), ..env.clone() }
}

// ---------------------------------------------------------------- against SeaweedFS

#[tokio::test]
async fn migrates_users_global_and_legacy_files_then_removes_local_copies() {
    let Some(env) = support::s3_env("migrates_users_global_and_legacy_files") else { return };
    let s3 = store(&env);
    let t = token();
    let dir = tempfile::tempdir().unwrap();
    let (u1, u2) = (format!("u1-{t}"), format!("u2-{t}"));
    let files: Vec<(String, String, Vec<u8>)> = vec![
        (format!("routes/{u1}/a.json"), format!("users/{u1}/routes/a.json"), b"{\"r\":1}".to_vec()),
        (
            format!("fitness/{u1}/f.json"),
            format!("users/{u1}/fitness/f.json"),
            b"{\"f\":[1,2,3]}".to_vec(),
        ),
        (format!("routes/{u2}/b.json"), format!("users/{u2}/routes/b.json"), b"{\"r\":2}".to_vec()),
        (format!("models/m-{t}.bin"), format!("models/m-{t}.bin"), vec![0u8, 1, 2, 255, 254]),
        (format!("training_data/t-{t}.json"), format!("training_data/t-{t}.json"), b"[]".to_vec()),
        (
            format!("routes/anon-{t}.json"),
            format!("routes/anon-{t}.json"),
            b"{\"anon\":true}".to_vec(),
        ),
        // A route saved by the original app at the data directory root: an anonymous route.
        (
            format!("20240101_120000_{t}.json"),
            format!("routes/20240101_120000_{t}.json"),
            b"{\"legacy\":1}".to_vec(),
        ),
    ];
    let mut paths = Vec::new();
    for (rel, _, body) in &files {
        paths.push(write(dir.path(), rel, body));
    }
    // Not data: left alone and reported.
    let odd = write(dir.path(), &format!("routes/{u1}/.hidden"), b"x");

    let out = kompass(dir.path(), &env, &[], &["--json", "migrate", "--concurrency", "3"]);
    assert!(out.status.success(), "{}", show(&out));
    let r = json(&out);
    assert_eq!(n(&r, "migrated"), 7, "{r}");
    assert_eq!(n(&r, "skipped_identical"), 0);
    assert_eq!(n(&r, "conflicts"), 0);
    assert_eq!(n(&r, "failed"), 0);
    assert_eq!(n(&r, "local_removed"), 7);
    assert_eq!(n(&r, "bytes"), files.iter().map(|f| f.2.len() as u64).sum::<u64>());
    assert_eq!(r["errors"], serde_json::json!([]));
    assert_eq!(r["dry_run"], false);
    assert_eq!(n(&r["requests"], "put"), 7);
    assert!(
        r["not_migrated"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["path"].as_str().unwrap().ends_with(".hidden")),
        "{r}"
    );

    // Independent check: the bucket holds exactly these bytes under the layout's keys.
    for (_, key, body) in &files {
        assert_eq!(get_opt(&s3, key).await.as_deref(), Some(body.as_slice()), "{key}");
        let meta = s3.head(key).await.unwrap().unwrap();
        assert_eq!(meta.sha256, Some(sha(body)), "{key}: checksum stored with the object");
    }
    assert_eq!(bucket_under(&s3, &format!("users/{u1}/")).await.len(), 2);
    for p in &paths {
        assert!(!p.exists(), "{} should be removed after verification", p.display());
    }
    assert!(odd.exists(), "a file that is not data is never touched");

    // Re-running after success is a no-op, and costs no request at all.
    let again = kompass(dir.path(), &env, &[], &["--json", "migrate"]);
    assert!(again.status.success(), "{}", show(&again));
    let r2 = json(&again);
    for f in ["migrated", "skipped_identical", "conflicts", "failed", "bytes"] {
        assert_eq!(n(&r2, f), 0, "{f}: {r2}");
    }
    assert_eq!(r2["requests"], serde_json::json!({"put":0,"list":0,"head":0,"get":0,"delete":0}));
    for (_, key, body) in &files {
        assert_eq!(get_opt(&s3, key).await.as_deref(), Some(body.as_slice()), "{key}");
    }
}

#[tokio::test]
async fn dry_run_plans_but_changes_nothing() {
    let Some(env) = support::s3_env("dry_run_plans_but_changes_nothing") else { return };
    let s3 = store(&env);
    let u = format!("dry-{}", token());
    let dir = tempfile::tempdir().unwrap();
    let new = write(dir.path(), &format!("routes/{u}/new.json"), b"{\"new\":1}");
    let same = write(dir.path(), &format!("routes/{u}/same.json"), b"{\"same\":1}");
    let clash = write(dir.path(), &format!("fitness/{u}/clash.json"), b"{\"mine\":1}");
    s3.put(
        &format!("users/{u}/routes/same.json"),
        b"{\"same\":1}".to_vec(),
        sha(b"{\"same\":1}"),
        PutMode::Overwrite,
    )
    .await
    .unwrap();
    s3.put(
        &format!("users/{u}/fitness/clash.json"),
        b"{\"theirs\":1}".to_vec(),
        sha(b"{\"theirs\":1}"),
        PutMode::Overwrite,
    )
    .await
    .unwrap();
    let before = s3.list(&format!("users/{u}/")).await.unwrap();

    let out = kompass(dir.path(), &env, &[], &["--json", "migrate", "--dry-run", "--user", &u]);
    assert!(out.status.success(), "{}", show(&out));
    let r = json(&out);
    assert_eq!(r["dry_run"], true);
    assert_eq!(
        (n(&r, "migrated"), n(&r, "skipped_identical"), n(&r, "conflicts"), n(&r, "failed")),
        (1, 1, 1, 0),
        "{r}"
    );
    let planned: Vec<(String, String)> = r["planned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["key"].as_str().unwrap().to_owned(), p["action"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        planned,
        vec![
            (format!("users/{u}/fitness/clash.json"), "conflict".to_owned()),
            (format!("users/{u}/routes/new.json"), "upload".to_owned()),
            (format!("users/{u}/routes/same.json"), "skip_identical".to_owned()),
        ]
    );
    let req = &r["requests"];
    assert_eq!(
        (n(req, "put"), n(req, "delete"), n(req, "get")),
        (0, 0, 0),
        "only LIST and HEAD: {req}"
    );
    assert!(n(req, "list") >= 1 && n(req, "head") == 2, "{req}");

    // Nothing changed: every local file is there, the bucket is as it was.
    for p in [&new, &same, &clash] {
        assert!(p.exists(), "{}", p.display());
    }
    assert_eq!(s3.list(&format!("users/{u}/")).await.unwrap(), before);

    // The text form lists each action.
    let text = kompass(dir.path(), &env, &[], &["migrate", "--dry-run", "--user", &u]);
    assert!(text.status.success(), "{}", show(&text));
    let t = String::from_utf8_lossy(&text.stdout);
    assert!(t.contains("nothing was changed"), "{t}");
    assert!(t.contains("upload") && t.contains(&format!("users/{u}/routes/new.json")), "{t}");
    assert!(t.contains("conflict") && t.contains("skip_identical"), "{t}");
}

#[tokio::test]
async fn conflicts_are_kept_and_reported_identical_copies_are_released() {
    let Some(env) = support::s3_env("conflicts_are_kept_and_reported") else { return };
    let s3 = store(&env);
    let u = format!("cf-{}", token());
    let dir = tempfile::tempdir().unwrap();
    let mine = b"{\"version\":\"local\"}".to_vec();
    let theirs = b"{\"version\":\"remote, longer\"}".to_vec();
    let clash = write(dir.path(), &format!("routes/{u}/clash.json"), &mine);
    let clash_key = format!("users/{u}/routes/clash.json");
    s3.put(&clash_key, theirs.clone(), sha(&theirs), PutMode::Overwrite).await.unwrap();
    // As if an earlier run crashed after the upload but before removing the local copy.
    let done = write(dir.path(), &format!("routes/{u}/done.json"), b"{\"done\":1}");
    s3.put(
        &format!("users/{u}/routes/done.json"),
        b"{\"done\":1}".to_vec(),
        sha(b"{\"done\":1}"),
        PutMode::Overwrite,
    )
    .await
    .unwrap();
    let theirs_before = s3.head(&clash_key).await.unwrap().unwrap();

    let out = kompass(dir.path(), &env, &[], &["--json", "migrate", "--user", &u]);
    assert!(out.status.success(), "conflicts alone do not fail the run: {}", show(&out));
    let r = json(&out);
    assert_eq!(
        (n(&r, "migrated"), n(&r, "skipped_identical"), n(&r, "conflicts"), n(&r, "failed")),
        (0, 1, 1, 0),
        "{r}"
    );
    let c = &r["conflict_keys"][0];
    assert_eq!(c["key"], clash_key.as_str());
    assert_eq!(c["local"]["sha256"], hex::encode(sha(&mine)));
    assert_eq!(c["remote"]["sha256"], hex::encode(sha(&theirs)));
    assert_eq!(n(&c["remote"], "size"), theirs.len() as u64);

    assert_eq!(std::fs::read(&clash).unwrap(), mine, "the local side of a conflict is kept");
    assert_eq!(s3.get(&clash_key).await.unwrap(), theirs, "the remote side is untouched");
    assert_eq!(s3.head(&clash_key).await.unwrap().unwrap().etag, theirs_before.etag);
    assert!(!done.exists(), "an identical S3 copy lets the local one go");

    let text = kompass(dir.path(), &env, &[], &["migrate", "--user", &u]);
    assert!(text.status.success(), "{}", show(&text));
    let t = String::from_utf8_lossy(&text.stdout);
    assert!(
        t.contains("1 conflict") && t.contains(&clash_key) && t.contains("both copies are kept"),
        "{t}"
    );
}

#[tokio::test]
async fn user_scope_moves_only_that_user() {
    let Some(env) = support::s3_env("user_scope_moves_only_that_user") else { return };
    let s3 = store(&env);
    let t = token();
    let (me, other) = (format!("me-{t}"), format!("other-{t}"));
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), &format!("routes/{me}/a.json"), b"a");
    let b = write(dir.path(), &format!("fitness/{me}/b.json"), b"bb");
    let o = write(dir.path(), &format!("routes/{other}/o.json"), b"o");
    let g = write(dir.path(), &format!("models/g-{t}.bin"), b"g");

    let out = kompass(dir.path(), &env, &[], &["--json", "migrate", "--user", &me]);
    assert!(out.status.success(), "{}", show(&out));
    let r = json(&out);
    assert_eq!(n(&r, "migrated"), 2, "{r}");
    assert_eq!(r["user"], me.as_str());
    assert!(!a.exists() && !b.exists());
    assert!(o.exists() && g.exists(), "other users' and global data stay");
    let mine: Vec<String> =
        bucket_under(&s3, &format!("users/{me}/")).await.into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        mine,
        vec![format!("users/{me}/fitness/b.json"), format!("users/{me}/routes/a.json")]
    );
    assert!(s3.list(&format!("users/{other}/")).await.unwrap().is_empty());
    assert!(s3.head(&format!("models/g-{t}.bin")).await.unwrap().is_none());
}

#[tokio::test]
async fn keep_local_uploads_and_keeps_then_a_later_run_releases() {
    let Some(env) = support::s3_env("keep_local") else { return };
    let s3 = store(&env);
    let u = format!("keep-{}", token());
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), &format!("routes/{u}/k.json"), b"{\"k\":1}");
    let out = kompass(dir.path(), &env, &[], &["--json", "migrate", "--user", &u, "--keep-local"]);
    assert!(out.status.success(), "{}", show(&out));
    let r = json(&out);
    assert_eq!((n(&r, "migrated"), n(&r, "local_removed")), (1, 0), "{r}");
    assert!(p.exists());
    assert_eq!(s3.get(&format!("users/{u}/routes/k.json")).await.unwrap(), b"{\"k\":1}");
    let out = kompass(dir.path(), &env, &[], &["--json", "migrate", "--user", &u]);
    let r = json(&out);
    assert_eq!(
        (n(&r, "migrated"), n(&r, "skipped_identical"), n(&r, "local_removed")),
        (0, 1, 1),
        "{r}"
    );
    assert!(!p.exists());
}

#[tokio::test]
async fn an_outage_save_is_journaled_and_migrate_replays_it() {
    let Some(env) = support::s3_env("an_outage_save_is_journaled") else { return };
    let s3 = store(&env);
    let u = format!("out-{}", token());
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.json");

    // An older version is already in S3; the save during the outage is newer and replaces it.
    let old_key = format!("users/{u}/routes/ride.json");
    s3.put(&old_key, b"{\"v\":1}".to_vec(), sha(b"{\"v\":1}"), PutMode::Overwrite).await.unwrap();
    let dead = down(&env);
    std::fs::write(&input, b"{\"v\":2}").unwrap();
    let saved = kompass(
        dir.path(),
        &dead,
        &[],
        &[
            "--json",
            "save",
            "--user",
            &u,
            "--type",
            "routes",
            "--name",
            "ride.json",
            input.to_str().unwrap(),
        ],
    );
    assert!(saved.status.success(), "{}", show(&saved));
    let s = json(&saved);
    assert_eq!(s["backend"], "local", "{s}");
    assert!(s["pending_sync"].is_string(), "the outage is reported: {s}");
    // Rider data is stored only scrubbed with the pseudonym key: a fixed point of its scrub.
    let key = kompass_core::scrub::PseudonymKey::new(RIDER_KEY_ID, RIDER_KEY.as_bytes()).unwrap();
    let fresh_doc = kompass_core::scrub::scrub(b"{\"activities\":[{\"distance\":1}]}", &key)
        .unwrap()
        .document
        .into_bytes();
    std::fs::write(&input, &fresh_doc).unwrap();
    let saved = kompass(
        dir.path(),
        &dead,
        &[("KOMPASS_PSEUDONYM_KEY", RIDER_KEY), ("KOMPASS_PSEUDONYM_KEY_ID", RIDER_KEY_ID)],
        &[
            "--json",
            "save",
            "--user",
            &u,
            "--type",
            "fitness",
            "--name",
            "fresh.json",
            input.to_str().unwrap(),
        ],
    );
    assert!(saved.status.success(), "{}", show(&saved));
    assert_eq!(journal_lines(dir.path()), 2);
    let ride = dir.path().join(format!("data/routes/{u}/ride.json"));
    let fresh = dir.path().join(format!("data/fitness/{u}/fresh.json"));
    assert!(ride.exists() && fresh.exists());

    let out = kompass(dir.path(), &env, &[], &["--json", "migrate"]);
    assert!(out.status.success(), "{}", show(&out));
    let r = json(&out);
    assert_eq!((n(&r, "migrated"), n(&r, "conflicts"), n(&r, "pending_synced")), (2, 0, 2), "{r}");
    assert_eq!(
        s3.get(&old_key).await.unwrap(),
        b"{\"v\":2}",
        "the pending save replaced the older S3 copy"
    );
    assert_eq!(s3.get(&format!("users/{u}/fitness/fresh.json")).await.unwrap(), fresh_doc);
    assert!(!ride.exists() && !fresh.exists(), "local copies go once verified");
    assert_eq!(journal_lines(dir.path()), 0, "the journal is empty");
}

#[tokio::test]
async fn a_pending_save_older_than_the_s3_copy_is_a_conflict_not_an_overwrite() {
    let Some(env) = support::s3_env("a_pending_save_older_than_the_s3_copy") else { return };
    let s3 = store(&env);
    let u = format!("late-{}", token());
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.json");
    std::fs::write(&input, b"{\"during\":\"outage\"}").unwrap();
    let saved = kompass(
        dir.path(),
        &down(&env),
        &[],
        &[
            "--json",
            "save",
            "--user",
            &u,
            "--type",
            "routes",
            "--name",
            "r.json",
            input.to_str().unwrap(),
        ],
    );
    assert!(saved.status.success(), "{}", show(&saved));
    // S3's Last-Modified has whole seconds: wait so the later write is seen as later.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let key = format!("users/{u}/routes/r.json");
    let later = b"{\"written\":\"after the outage save\"}".to_vec();
    s3.put(&key, later.clone(), sha(&later), PutMode::Overwrite).await.unwrap();

    let out = kompass(dir.path(), &env, &[], &["--json", "migrate", "--user", &u]);
    assert!(out.status.success(), "{}", show(&out));
    let r = json(&out);
    assert_eq!((n(&r, "migrated"), n(&r, "conflicts"), n(&r, "pending_synced")), (0, 1, 0), "{r}");
    assert_eq!(s3.get(&key).await.unwrap(), later, "the newer S3 copy is not overwritten");
    assert!(dir.path().join(format!("data/routes/{u}/r.json")).exists());
    assert_eq!(journal_lines(dir.path()), 1, "still pending: a person decides");
}

#[tokio::test]
async fn an_unreachable_s3_fails_the_run_and_keeps_every_local_file() {
    let Some(env) = support::s3_env("an_unreachable_s3_fails_the_run") else { return };
    let u = format!("dead-{}", token());
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> =
        (0..3).map(|i| write(dir.path(), &format!("routes/{u}/{i}.json"), b"{}")).collect();
    let legacy = write(dir.path(), &format!("20230505_101010_{u}.json"), b"{\"old\":1}");
    let out = kompass(dir.path(), &down(&env), &[], &["migrate"]);
    assert!(!out.status.success(), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nothing was migrated") && err.contains("Re-run `kompass migrate`"),
        "{err}"
    );
    for p in files.iter().chain([&legacy]) {
        assert!(p.exists(), "{}", p.display());
    }
    assert!(store(&env).list(&format!("users/{u}/")).await.unwrap().is_empty());
}

#[tokio::test]
async fn limits_refuse_an_upload_and_keep_the_file() {
    let Some(env) = support::s3_env("limits_refuse_an_upload") else { return };
    let s3 = store(&env);
    let u = format!("big-{}", token());
    let dir = tempfile::tempdir().unwrap();
    let big = write(dir.path(), &format!("routes/{u}/big.json"), &vec![b'x'; 4096]);
    let small = write(dir.path(), &format!("routes/{u}/small.json"), b"{}");
    // 0.002 MB: about 2 KB per file.
    let out = kompass(
        dir.path(),
        &env,
        &[("S3_MAX_FILE_SIZE_MB", "0.002")],
        &["--json", "migrate", "--user", &u],
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let r = json(&out);
    assert_eq!((n(&r, "migrated"), n(&r, "failed"), n(&r, "refused")), (1, 1, 1), "{r}");
    assert_eq!(r["failures"][0]["key"], format!("users/{u}/routes/big.json"));
    assert!(r["failures"][0]["error"].as_str().unwrap().contains("per-file limit"), "{r}");
    assert!(r["failures"][0]["path"].as_str().unwrap().ends_with("big.json"), "{r}");
    let e = r["errors"][0].as_str().unwrap();
    assert!(e.starts_with(&format!("users/{u}/routes/big.json: refused")), "{e}");
    assert!(big.exists() && !small.exists());
    assert!(s3.head(&format!("users/{u}/routes/big.json")).await.unwrap().is_none());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refused by a storage limit"),
        "{}",
        show(&out)
    );
}

// ---------------------------------------------------------------- failures a real server will not produce

/// An empty ListObjectsV2 answer.
fn empty_listing() -> Reply {
    Reply::ok(
        &[("content-type", "application/xml")],
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><Name>kompass-test</Name>\
         <Prefix></Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_dying_mid_run_fails_the_files_keeps_them_and_says_to_rerun() {
    // The listing succeeds, then every upload meets a 503: S3 went down halfway.
    let server =
        FakeServer::start(vec![empty_listing(), Reply::s3_error(503, "ServiceUnavailable")]).await;
    let dir = tempfile::tempdir().unwrap();
    let u = format!("mid-{}", token());
    let files: Vec<PathBuf> =
        (0..4).map(|i| write(dir.path(), &format!("routes/{u}/{i}.json"), b"{}")).collect();
    let env = S3Env {
        endpoint: server.url.clone(),
        region: "us-east-1".into(),
        bucket: "kompass-test".into(),
        access_key_id: "AKIAFAKE".into(),
        secret_access_key: "fake-secret-fake-secret".into(),
    };
    let d = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        kompass(&d, &env, &[], &["--json", "migrate", "--concurrency", "1"])
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let r = json(&out);
    assert_eq!((n(&r, "migrated"), n(&r, "failed"), n(&r, "local_removed")), (0, 4, 0), "{r}");
    assert_eq!(r["errors"].as_array().unwrap().len(), 4);
    let errors = r["failures"].as_array().unwrap();
    assert_eq!(errors.len(), 4);
    assert!(errors.iter().any(|e| e["error"].as_str().unwrap().contains("503")), "{r}");
    // After the first outage the rest are not attempted (they would only fail slowly).
    assert!(
        errors.iter().filter(|e| e["error"].as_str().unwrap().contains("not attempted")).count()
            == 3,
        "{r}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Re-run `kompass migrate`"),
        "{}",
        show(&out)
    );
    for p in &files {
        assert!(p.exists(), "{}", p.display());
    }
    let puts = server.received().iter().filter(|q| q.request_line.starts_with("PUT ")).count();
    assert!((1..=5).contains(&puts), "one upload with its retries: {puts}");
    assert!(server.received().iter().all(|q| !q.request_line.starts_with("DELETE ")));
}

/// A HEAD answer for an object of `body` (the fake server sends its length as Content-Length).
fn head_answer(body: &str) -> Reply {
    Reply::ok(
        &[
            ("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT"),
            ("x-amz-meta-sha256", &hex::encode(sha(body.as_bytes()))),
        ],
        body,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_taken_by_another_writer_mid_run_is_never_overwritten() {
    // Listed as free, but by the time of the upload another writer has stored both keys: the
    // create-only PUTs get 412, and a HEAD tells a conflict from our own identical bytes.
    let server = FakeServer::start(vec![
        empty_listing(),
        Reply::s3_error(412, "PreconditionFailed"),
        head_answer("{\"someone\":\"else\"}"),
        Reply::s3_error(412, "PreconditionFailed"),
        head_answer("{\"b\":1}"),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let u = format!("race-{}", token());
    let a = write(dir.path(), &format!("routes/{u}/a.json"), b"{\"a\":1}");
    let b = write(dir.path(), &format!("routes/{u}/b.json"), b"{\"b\":1}");
    let env = S3Env {
        endpoint: server.url.clone(),
        region: "us-east-1".into(),
        bucket: "kompass-test".into(),
        access_key_id: "AKIAFAKE".into(),
        secret_access_key: "fake-secret-fake-secret".into(),
    };
    let d = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        kompass(&d, &env, &[], &["--json", "migrate", "--concurrency", "1"])
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let r = json(&out);
    assert_eq!(
        (n(&r, "migrated"), n(&r, "skipped_identical"), n(&r, "conflicts"), n(&r, "failed")),
        (0, 1, 1, 0),
        "{r}"
    );
    assert_eq!(r["conflict_keys"][0]["key"], format!("users/{u}/routes/a.json"));
    assert!(a.exists(), "the conflicting local copy stays");
    assert!(!b.exists(), "the other writer stored our exact bytes: the local copy may go");
    let puts: Vec<_> =
        server.received().into_iter().filter(|q| q.request_line.starts_with("PUT ")).collect();
    assert_eq!(puts.len(), 2);
    assert!(puts.iter().all(|p| p.header("if-none-match") == Some("*")), "uploads are create-only");
}

/// A ListObjectsV2 answer holding one object.
fn listing_of(key: &str, size: usize) -> Reply {
    Reply::ok(
        &[("content-type", "application/xml")],
        &format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><Name>kompass-test</Name>\
             <Prefix></Prefix><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>\
             <Contents><Key>{key}</Key><LastModified>2015-10-21T07:28:00.000Z</LastModified>\
             <ETag>&quot;x&quot;</ETag><Size>{size}</Size><StorageClass>STANDARD</StorageClass></Contents>\
             </ListBucketResult>"
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_object_without_a_checksum_is_read_and_hashed_before_any_removal() {
    // Uploaded by another tool: S3 keeps no SHA-256, and the sizes match. Only reading it can
    // tell identical from different; each case is decided by the content.
    for (remote, identical) in [("{\"same\":1}", true), ("{\"othr\":1}", false)] {
        let local = "{\"same\":1}";
        let u = format!("foreign-{}", token());
        let key = format!("users/{u}/routes/f.json");
        let no_checksum = Reply::ok(&[("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT")], remote);
        let server = FakeServer::start(vec![
            listing_of(&key, remote.len()),
            no_checksum.clone(),
            no_checksum,
        ])
        .await;
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), &format!("routes/{u}/f.json"), local.as_bytes());
        let env = S3Env {
            endpoint: server.url.clone(),
            region: "us-east-1".into(),
            bucket: "kompass-test".into(),
            access_key_id: "AKIAFAKE".into(),
            secret_access_key: "fake-secret-fake-secret".into(),
        };
        let d = dir.path().to_path_buf();
        let out =
            tokio::task::spawn_blocking(move || kompass(&d, &env, &[], &["--json", "migrate"]))
                .await
                .unwrap();
        assert!(out.status.success(), "{}", show(&out));
        let r = json(&out);
        let lines: Vec<String> = server.received().iter().map(|q| q.request_line.clone()).collect();
        assert!(lines[1].starts_with("HEAD ") && lines[2].starts_with("GET "), "{lines:?}");
        assert!(
            lines.iter().all(|l| !l.starts_with("PUT ") && !l.starts_with("DELETE ")),
            "{lines:?}"
        );
        if identical {
            assert_eq!((n(&r, "skipped_identical"), n(&r, "conflicts")), (1, 0), "{r}");
            assert!(!p.exists());
        } else {
            assert_eq!((n(&r, "skipped_identical"), n(&r, "conflicts")), (0, 1), "{r}");
            assert_eq!(
                r["conflict_keys"][0]["remote"]["sha256"],
                hex::encode(sha(remote.as_bytes()))
            );
            assert!(p.exists());
        }
    }
}

// ---------------------------------------------------------------- without S3

#[test]
fn without_s3_the_migration_says_how_to_enable_it() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "routes/u/a.json", b"{}");
    let out = Command::new(env!("CARGO_BIN_EXE_kompass"))
        .current_dir(dir.path())
        .args(["--data-dir", dir.path().join("data").to_str().unwrap(), "migrate"])
        .env("S3_STORAGE_ENABLED", "false")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("S3_STORAGE_ENABLED=true"),
        "{}",
        show(&out)
    );
    assert!(dir.path().join("data/routes/u/a.json").exists());
}

#[test]
fn a_concurrency_of_zero_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kompass"))
        .current_dir(dir.path())
        .args([
            "--data-dir",
            dir.path().join("data").to_str().unwrap(),
            "migrate",
            "--concurrency",
            "0",
        ])
        .env("S3_STORAGE_ENABLED", "false")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--concurrency"), "{}", show(&out));
}
