//! `kompass erase` and `kompass export` end to end: the real binary, a temp data directory,
//! and SeaweedFS (with SigV4) for the S3 cases. Every check goes through an independent path:
//! the file system, the journal and cache files, the bucket listed directly, the zip read back.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::S3Env;
use crate::support::cli::{Kompass, files_under, payload};
use crate::support::{self, keys, uid};
use kompass::journal::Journal;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const KEY: &str = "rider-test-key-0123456789abcdef-0123456789";

fn fixture() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/strava_export.json")
}

fn save(k: &Kompass, user: &str, name: &str, bytes: &[u8]) -> Value {
    k.run_stdin(&["--json", "save", "--user", user, "--type", "routes", "--name", name, "-"], bytes)
        .ok()
        .json()
}

/// Files of `user` anywhere under the data directory (their folders included).
fn local_traces(k: &Kompass, user: &str) -> Vec<String> {
    let mut found: Vec<String> =
        files_under(k.data_dir()).into_iter().filter(|f| f.contains(user)).collect();
    for dt in ["routes", "fitness"] {
        if k.data_dir().join(dt).join(user).exists() {
            found.push(format!("{dt}/{user}/ (folder)"));
        }
    }
    found
}

/// The state files (the SQLite database and its WAL, rider summaries) whose bytes mention
/// `user`: binary files too, so freed database pages that still hold a row count.
fn state_traces(k: &Kompass, user: &str) -> Vec<String> {
    let dir = k.data_dir().join(".kompass");
    let Ok(rd) = std::fs::read_dir(&dir) else { return Vec::new() };
    rd.filter_map(|e| {
        let p = e.unwrap().path();
        let bytes = std::fs::read(&p).unwrap_or_default();
        bytes
            .windows(user.len())
            .any(|w| w == user.as_bytes())
            .then(|| p.file_name().unwrap().to_string_lossy().into_owned())
    })
    .collect()
}

/// The zip's entries: name → bytes.
fn unzip(path: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut out = std::collections::BTreeMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        out.insert(f.name().unwrap().to_string(), bytes);
    }
    out
}

/// Checks an export: every file byte for byte, the manifest's hashes and sizes matching.
fn check_export(
    zip: &std::collections::BTreeMap<String, Vec<u8>>,
    expected: &[(&str, &[u8])],
    user: &str,
) -> Value {
    let manifest: Value =
        serde_json::from_slice(zip.get("manifest.json").expect("a manifest.json")).unwrap();
    assert_eq!(manifest["user"], user);
    let files = manifest["files"].as_array().unwrap();
    assert_eq!(files.len(), expected.len(), "one manifest entry per file: {manifest:#}");
    assert_eq!(
        zip.len(),
        expected.len() + 1,
        "the files and the manifest, nothing else: {:?}",
        zip.keys()
    );
    for (path, bytes) in expected {
        assert_eq!(
            zip.get(*path).map(Vec::as_slice),
            Some(*bytes),
            "{path} round-trips byte for byte"
        );
        let entry = files
            .iter()
            .find(|f| f["path"] == *path)
            .unwrap_or_else(|| panic!("{path} in the manifest"));
        assert_eq!(entry["sha256"], hex::encode(Sha256::digest(bytes)), "{path}: manifest hash");
        assert_eq!(entry["size"], bytes.len() as u64);
        assert_eq!(entry["key"], format!("users/{user}/{path}"));
        assert!(entry["last_modified"].as_str().unwrap().ends_with('Z'));
        assert!(entry["backend"] == "s3" || entry["backend"] == "local");
    }
    manifest
}

#[test]
fn erase_local_removes_every_trace_of_one_user_only() {
    let mut k = Kompass::new();
    k.set("KOMPASS_PSEUDONYM_KEY", KEY);
    let (alice, bob) = (uid("alice"), uid("bob"));
    save(&k, &alice, "a1.json", &payload("a1", 300));
    save(&k, &alice, "a2.json", &payload("a2", 500));
    k.run(&["--json", "rider", "save", "--user", &alice, fixture().to_str().unwrap()]).ok();
    // The history caches a summary of alice's rider data: cached state to erase too.
    k.run(&["--json", "rider", "history", "--user", &alice]).ok();
    save(&k, &bob, "b1.json", &payload("b1", 400));
    k.run(&["--json", "rider", "save", "--user", &bob, fixture().to_str().unwrap()]).ok();
    let bob_before = local_traces(&k, &bob);
    assert_eq!(bob_before.len(), 4, "two files and their two folders: {bob_before:?}");
    assert!(
        !state_traces(&k, &alice).is_empty(),
        "the summary cache mentions alice before the erase"
    );

    let plan = k.run(&["--json", "erase", "--user", &alice, "--dry-run"]).ok().json();
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["removed"].as_array().unwrap().len(), 3);
    assert_eq!(
        local_traces(&k, &alice).len(),
        5,
        "a dry run removes nothing (three files, two folders)"
    );

    let done = k.run(&["--json", "erase", "--user", &alice]).ok().json();
    assert_eq!(done["user"], alice.as_str());
    let removed = done["removed"].as_array().unwrap();
    assert_eq!(removed.len(), 3, "{done:#}");
    assert!(removed.iter().all(|r| r["backend"] == "local"
        && r["key"].as_str().unwrap().starts_with(&format!("users/{alice}/"))));
    let sizes: u64 = removed.iter().map(|r| r["size"].as_u64().unwrap()).sum();
    assert_eq!(done["bytes"].as_u64().unwrap(), sizes);
    assert_eq!(done["requests"], 0);
    assert_eq!(done["complete"], true);
    assert!(done["cache_rows"].as_u64().unwrap() >= 1, "the rider summary was dropped: {done:#}");

    assert_eq!(local_traces(&k, &alice), Vec::<String>::new(), "nothing of alice is left on disk");
    assert_eq!(state_traces(&k, &alice), Vec::<String>::new(), "no state file mentions alice");
    assert_eq!(local_traces(&k, &bob), bob_before, "bob is untouched");
    k.run(&["load", "--user", &bob, "--type", "routes", "--name", "b1.json"]).ok();

    // Idempotent: a second run removes nothing and succeeds.
    let again = k.run(&["--json", "erase", "--user", &alice]).ok().json();
    assert_eq!(again["removed"].as_array().unwrap().len(), 0);
    assert_eq!(again["complete"], true);
    // Text output says what happened.
    let text = k.run(&["erase", "--user", &alice]).ok().out();
    assert!(text.contains("removed 0 files"), "{text}");
}

#[test]
fn erase_and_export_refuse_bad_user_ids() {
    let k = Kompass::new();
    for bad in ["../x", "a/b", "", "x\\y"] {
        k.run(&["erase", "--user", bad]).code(2);
        let out = k.root().join("x.zip");
        k.run(&["export", "--user", bad, "--out", out.to_str().unwrap()]).code(2);
        assert!(!out.exists());
    }
}

#[test]
fn export_local_round_trips_every_file() {
    let k = Kompass::new();
    let (alice, bob) = (uid("alice"), uid("bob"));
    let a1 = payload("a1", 3000);
    let a2: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    save(&k, &alice, "a1.json", &a1);
    k.run_stdin(&["save", "--user", &alice, "--type", "routes", "--name", "bin.gpx", "-"], &a2)
        .ok();
    save(&k, &bob, "b1.json", &payload("b1", 100));
    let out = k.root().join("alice.zip");
    let printed =
        k.run(&["--json", "export", "--user", &alice, "--out", out.to_str().unwrap()]).ok().json();
    assert_eq!(printed["out"], out.display().to_string());
    let zip = unzip(&out);
    let manifest = check_export(&zip, &[("routes/a1.json", &a1), ("routes/bin.gpx", &a2)], &alice);
    assert_eq!(manifest["files"], printed["files"], "the printed manifest is the zip's");
    assert!(!zip.keys().any(|k| k.contains("b1")), "nothing of bob");
    assert!(!k.root().join("alice.zip.partial").exists());

    // A user with nothing stored gets a zip with an empty manifest.
    let empty = k.root().join("nobody.zip");
    k.run(&["export", "--user", "nobody", "--out", empty.to_str().unwrap()]).ok();
    let zip = unzip(&empty);
    check_export(&zip, &[], "nobody");
}

// ---- S3 ---------------------------------------------------------------------------------

fn kompass(env: &S3Env, endpoint: &str) -> Kompass {
    let mut k = Kompass::new();
    k.set("S3_STORAGE_ENABLED", "true")
        .set("AWS_ENDPOINT_URL", endpoint)
        .set("AWS_REGION", &env.region)
        .set("AWS_S3_BUCKET", &env.bucket)
        .set("AWS_ACCESS_KEY_ID", &env.access_key_id)
        .set("AWS_SECRET_ACCESS_KEY", &env.secret_access_key)
        .set("KOMPASS_PSEUDONYM_KEY", KEY);
    k
}

/// A forwarder to the S3 server that passes the first `limit` HTTP requests and then cuts
/// every connection: S3 goes away part way through a command, at a known request.
async fn cutting_proxy(upstream: String, limit: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else { return };
            let seen = seen.clone();
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(&upstream).await else { return };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let back = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                });
                // Requests one by one: a head, then a Content-Length body (kompass sends no
                // chunked bodies and does not pipeline).
                let mut buf: Vec<u8> = Vec::new();
                loop {
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        let mut chunk = [0u8; 8192];
                        match cr.read(&mut chunk).await {
                            Ok(0) | Err(_) => {
                                back.abort();
                                return;
                            }
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    while buf.len() < head_end + len {
                        let mut chunk = [0u8; 8192];
                        match cr.read(&mut chunk).await {
                            Ok(0) | Err(_) => {
                                back.abort();
                                return;
                            }
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    if seen.fetch_add(1, Ordering::SeqCst) >= limit {
                        back.abort();
                        return; // both halves dropped: the connection closes unanswered
                    }
                    let rest = buf.split_off(head_end + len);
                    if sw.write_all(&buf).await.is_err() {
                        back.abort();
                        return;
                    }
                    buf = rest;
                }
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erase_s3_survives_an_outage_half_way_and_finishes_on_the_next_run() {
    let Some(env) = support::s3_env("erase_s3_survives_an_outage_half_way") else { return };
    let s3 = env.store();
    let (alice, bob) = (uid("alice"), uid("bob"));
    let k = kompass(&env, &env.endpoint);
    let names: Vec<String> = (0..5).map(|i| format!("r{i}.json")).collect();
    for n in &names {
        let saved = save(&k, &alice, n, &payload(n, 700));
        assert_eq!(saved["backend"], "s3");
    }
    save(&k, &bob, "b.json", &payload("b", 900));
    k.run(&["--json", "rider", "save", "--user", &bob, fixture().to_str().unwrap()]).ok();
    // A save made while S3 was down: local copy plus a pending-sync journal entry.
    let down = format!("http://127.0.0.1:{}", support::closed_port());
    let queued = k
        .with(&[("AWS_ENDPOINT_URL", &down)])
        .run_stdin(
            &["--json", "save", "--user", &alice, "--type", "routes", "--name", "queued.json", "-"],
            b"{}",
        )
        .ok()
        .json();
    assert_eq!(queued["backend"], "local");
    let journal = Journal::open(k.data_dir()).unwrap();
    assert!(
        journal
            .pending()
            .unwrap()
            .iter()
            .any(|e| e.key.owner().is_some_and(|u| u.as_str() == alice))
    );
    let bob_keys = keys(&s3, &format!("users/{bob}/")).await;
    assert_eq!(bob_keys.len(), 2);

    // Through a proxy that lets the LIST and two DELETEs through, then goes silent.
    let upstream = env.endpoint.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let proxy = cutting_proxy(upstream, 3).await;
    let k2 = k.with(&[("AWS_ENDPOINT_URL", &proxy)]);
    // The proxy runs on the runtime's workers; this thread may block on the binary.
    let cut = k2.run(&["--json", "erase", "--user", &alice]).code(5);
    let report = cut.json();
    assert_eq!(report["degraded"], true, "{report:#}");
    assert_eq!(report["complete"], false);
    assert!(report["reason"].as_str().unwrap().contains("run the erase again"));
    let s3_removed =
        report["removed"].as_array().unwrap().iter().filter(|r| r["backend"] == "s3").count();
    assert_eq!(s3_removed, 2, "{report:#}");
    assert_eq!(
        report["remaining"].as_array().unwrap().len(),
        3,
        "what is left is reported: {report:#}"
    );
    let left = keys(&s3, &format!("users/{alice}/")).await;
    assert_eq!(left.len(), 3, "exactly what the report says is left");
    let reported: Vec<&str> = report["remaining"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    for l in &left {
        assert!(reported.contains(&l.as_str()), "{l} is reported as remaining");
    }
    assert!(
        journal
            .pending()
            .unwrap()
            .iter()
            .all(|e| e.key.owner().is_none_or(|u| u.as_str() != alice))
    );
    assert_eq!(local_traces(&k, &alice), Vec::<String>::new());

    // The next run finishes.
    let done = k.run(&["--json", "erase", "--user", &alice]).ok().json();
    assert_eq!(done["complete"], true, "{done:#}");
    assert_eq!(done["removed"].as_array().unwrap().len(), 3);
    assert!(done["requests"].as_u64().unwrap() >= 4, "one LIST and three DELETEs: {done:#}");
    assert_eq!(keys(&s3, &format!("users/{alice}/")).await, Vec::<String>::new());
    assert_eq!(local_traces(&k, &alice), Vec::<String>::new());
    assert_eq!(
        state_traces(&k, &alice),
        Vec::<String>::new(),
        "no journal, cache or summary row of alice"
    );
    assert_eq!(keys(&s3, &format!("users/{bob}/")).await, bob_keys, "bob is untouched");
    let again = k.run(&["--json", "erase", "--user", &alice]).ok().json();
    assert_eq!(again["removed"].as_array().unwrap().len(), 0);

    // Clean up bob for the shared bucket.
    k.run(&["erase", "--user", &bob]).ok();
    assert_eq!(keys(&s3, &format!("users/{bob}/")).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_s3_takes_the_newest_copy_and_never_a_partial_zip() {
    let Some(env) = support::s3_env("export_s3_takes_the_newest_copy") else { return };
    let alice = uid("alice");
    let k = kompass(&env, &env.endpoint);
    let old = payload("old", 800);
    let s3only = payload("s3only", 1200);
    save(&k, &alice, "same.json", &old);
    save(&k, &alice, "s3only.json", &s3only);
    // A newer copy of same.json lands locally (S3 down) and waits for sync.
    let down = format!("http://127.0.0.1:{}", support::closed_port());
    let new = payload("new", 900);
    let kd = k.with(&[("AWS_ENDPOINT_URL", &down)]);
    kd.run_stdin(&["save", "--user", &alice, "--type", "routes", "--name", "same.json", "-"], &new)
        .ok();

    let out = k.root().join("a.zip");
    k.run(&["export", "--user", &alice, "--out", out.to_str().unwrap()]).ok();
    let zip = unzip(&out);
    let manifest =
        check_export(&zip, &[("routes/same.json", &new), ("routes/s3only.json", &s3only)], &alice);
    let by_path = |p: &str| {
        manifest["files"].as_array().unwrap().iter().find(|f| f["path"] == p).unwrap().clone()
    };
    assert_eq!(by_path("routes/same.json")["backend"], "local", "the queued copy is the newest");
    assert_eq!(by_path("routes/s3only.json")["backend"], "s3");

    // S3 unreachable: exit 5, and no zip at all (an export without S3's files would lie).
    let bad = k.root().join("bad.zip");
    let kd = k.with(&[("AWS_ENDPOINT_URL", &down)]);
    let r = kd.run(&["export", "--user", &alice, "--out", bad.to_str().unwrap()]).code(5);
    assert!(r.stderr.contains("unreachable"), "{}", r.stderr);
    assert!(!bad.exists() && !k.root().join("bad.zip.partial").exists());
    k.run(&["erase", "--user", &alice]).ok();
}
