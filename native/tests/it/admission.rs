//! Issue 9: one admission decision on every path, against SeaweedFS (SigV4 on) and locally.
//!
//! - grants (presigns) that are never used never delete a stored object: min-keep holds and
//!   other users are untouched;
//! - a grant whose upload failed stops counting once it expires;
//! - with the PUT-class budget spent, saves land locally and queue, grants are refused with the
//!   reset date, migrate stops and says how many files remain, and nothing is lost;
//! - listing files 300 times costs at most one LIST;
//! - 32 writer processes end 0 bytes over the quota;
//! - saves made during an outage are in S3 after the next save, without `kompass migrate`.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{self, manager_config, uid};
use kompass::manager::{Backend, Manager, ManagerError};
use kompass::store::s3::{S3Options, S3Store};
use kompass_core::admission::Limit;
use kompass_core::key::{ObjectKey, UserId};
use kompass_core::time::UnixMs;

const KB80: usize = 80 * 1024;

fn key(user: &str, name: &str) -> ObjectKey {
    ObjectKey::parse_parts(Some(user), "routes", name).unwrap()
}

fn in_15_min() -> UnixMs {
    UnixMs(kompass::manager::now_ms()).plus_ms(15 * 60 * 1000)
}

async fn s3_names(s3: &S3Store, user: &str) -> Vec<String> {
    let mut names: Vec<String> = s3
        .list(&format!("users/{user}/"))
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key.rsplit('/').next().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// Eight stored 80 kB files, a 1 MiB quota, min-keep 5; then ten grants with no upload.
async fn grants_never_delete(m: &Manager, alice: &str, bob: &str) {
    for i in 0..8 {
        m.save(&key(alice, &format!("old{i}.json")), &vec![b'a'; KB80]).await.unwrap();
    }
    for i in 0..3 {
        m.save(&key(bob, &format!("bob{i}.json")), &vec![b'b'; KB80]).await.unwrap();
    }
    let mut granted = 0;
    for i in 0..10 {
        match m.grant(&key(alice, &format!("new{i}.json")), KB80 as u64, in_15_min()).await {
            Ok(g) => {
                assert_eq!(g.reservation.size, KB80 as u64);
                granted += 1;
            }
            Err(ManagerError::Refused(r)) => assert_eq!(r.limit(), Limit::UserQuota, "{r}"),
            Err(e) => panic!("{e}"),
        }
    }
    assert!(granted >= 1, "some grants fit");
    // Confirming grants that were never uploaded deletes nothing either.
    assert_eq!(m.confirm_pending(&UserId::new(alice).unwrap()).await.unwrap(), 0);
}

#[tokio::test]
async fn grants_without_uploads_never_delete_a_stored_object_in_s3() {
    let Some(env) = support::s3_env("grants_without_uploads_never_delete_a_stored_object_in_s3")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let m =
        Manager::open(manager_config(dir.path(), Some(&env), &[("S3_MAX_USER_STORAGE_MB", "1")]))
            .unwrap();
    let (alice, bob) = (uid("gnd-a"), uid("gnd-b"));
    grants_never_delete(&m, &alice, &bob).await;
    let s3 = env.store();
    assert_eq!(s3_names(&s3, &alice).await.len(), 8, "min-keep holds: nothing deleted");
    assert_eq!(s3_names(&s3, &bob).await.len(), 3, "other users untouched");
    // The grants still count against the quota (15 minutes), so a real upload fits only if
    // small; it then cleans only stored files, keeping at least 5.
    let out = m.save(&key(&alice, "real.json"), &vec![b'r'; 40 * 1024]).await.unwrap();
    assert!(!out.cleaned.is_empty());
    assert!(out.cleaned.iter().all(|d| d.key.contains("/old")), "{:?}", out.cleaned);
    assert!(s3_names(&s3, &alice).await.len() >= 5);
    assert_eq!(s3_names(&s3, &bob).await.len(), 3);
}

#[tokio::test]
async fn grants_without_uploads_never_delete_a_stored_object_locally() {
    let dir = tempfile::tempdir().unwrap();
    let m = Manager::open(manager_config(dir.path(), None, &[("S3_MAX_USER_STORAGE_MB", "1")]))
        .unwrap();
    let (alice, bob) = (uid("gndl-a"), uid("gndl-b"));
    grants_never_delete(&m, &alice, &bob).await;
    let alice_id = UserId::new(&alice).unwrap();
    let bob_id = UserId::new(&bob).unwrap();
    use kompass_core::key::DataType;
    assert_eq!(m.list(Some(&alice_id), DataType::Routes).await.unwrap().len(), 8);
    assert_eq!(m.list(Some(&bob_id), DataType::Routes).await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_grant_whose_upload_failed_stops_counting_when_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    let m = Manager::open(manager_config(
        dir.path(),
        None,
        &[("S3_MAX_USER_STORAGE_MB", "1"), ("S3_AUTO_CLEANUP_ENABLED", "false")],
    ))
    .unwrap();
    let alice = uid("exp");
    let soon = UnixMs(kompass::manager::now_ms()).plus_ms(1_500);
    m.grant(&key(&alice, "browser.json"), 900 * 1024, soon).await.unwrap();
    // The browser's PUT never arrives. Meanwhile the reservation counts against the quota.
    let e = m.save(&key(&alice, "cli.json"), &vec![b'c'; 200 * 1024]).await.unwrap_err();
    assert!(matches!(&e, ManagerError::Refused(r) if r.limit() == Limit::UserQuota), "{e}");
    tokio::time::sleep(Duration::from_millis(1_700)).await;
    // Expired: usage is as it was.
    m.save(&key(&alice, "cli.json"), &vec![b'c'; 200 * 1024]).await.unwrap();
}

#[tokio::test]
async fn with_the_put_budget_spent_saves_queue_grants_and_migrate_stop_and_nothing_is_lost() {
    let Some(env) = support::s3_env("with_the_put_budget_spent") else { return };
    // The budget counts the inventory's LIST as one request: the bucket is one page.
    let _one_page = support::BUCKET_PAGES.read().await;
    let dir = tempfile::tempdir().unwrap();
    let alice = uid("budget");
    // A budget of 3 PUT-class requests: the inventory's LIST and two PUTs.
    let tight = manager_config(dir.path(), Some(&env), &[("KOMPASS_PUT_BUDGET", "3")]);
    let m = Manager::open(tight.clone()).unwrap();
    let mut outcomes = Vec::new();
    for i in 0..5 {
        let body = format!("route {i}").into_bytes();
        outcomes.push((
            i,
            body.clone(),
            m.save(&key(&alice, &format!("r{i}.json")), &body).await.unwrap(),
        ));
    }
    let in_s3 = outcomes.iter().filter(|(_, _, o)| o.backend == Backend::S3).count();
    let queued: Vec<_> = outcomes.iter().filter(|(_, _, o)| o.pending_sync.is_some()).collect();
    assert_eq!(in_s3, 2, "{outcomes:?}");
    assert_eq!(queued.len(), 3);
    assert!(
        queued[0].2.pending_sync.as_deref().unwrap().contains("request budget"),
        "{:?}",
        queued[0]
    );
    assert!(m.ledger().unwrap().put_class <= 3, "the budget is a limit: {:?}", m.ledger().unwrap());

    // A grant is refused with the reset date.
    let e = m.grant(&key(&alice, "page.json"), 10, in_15_min()).await.unwrap_err();
    let ManagerError::Refused(r) = &e else { panic!("{e}") };
    assert_eq!(r.limit(), Limit::PutBudget);
    assert!(r.retry_at().is_some());
    assert!(e.to_string().contains("resets on"), "{e}");

    // Migrate stops and says how many files remain.
    std::fs::create_dir_all(dir.path().join("routes").join(&alice)).unwrap();
    for i in 0..4 {
        std::fs::write(dir.path().join("routes").join(&alice).join(format!("m{i}.json")), b"[1]")
            .unwrap();
    }
    let opts = kompass::migrate::Options {
        user: Some(UserId::new(&alice).unwrap()),
        ..kompass::migrate::Options::default()
    };
    let report =
        kompass::migrate::migrate(&m, &opts, &indicatif::ProgressBar::hidden()).await.unwrap();
    let stop = report.budget_stop.as_ref().expect("the budget stopped the run");
    assert!(stop.remaining >= 4, "{stop:?}");
    assert!(dir.path().join("routes").join(&alice).join("m0.json").exists(), "local copies kept");

    // Nothing lost: every save loads, and once the budget allows, sync uploads the queue.
    for (i, body, _) in &outcomes {
        assert_eq!(&m.load(&key(&alice, &format!("r{i}.json"))).await.unwrap().0, body);
    }
    drop(m);
    let paid =
        Manager::open(manager_config(dir.path(), Some(&env), &[("KOMPASS_REQUEST_BUDGET", "off")]))
            .unwrap();
    let synced = paid.sync(None).await.unwrap();
    assert_eq!(synced.uploaded.len(), 3, "{synced:?}");
    assert!(paid.journal().pending().unwrap().is_empty());
    let s3 = env.store();
    for (i, body, _) in &outcomes {
        assert_eq!(&s3.get(&format!("users/{alice}/routes/r{i}.json")).await.unwrap(), body);
    }
}

#[tokio::test]
async fn listing_files_300_times_costs_at_most_one_list() {
    let Some(env) = support::s3_env("listing_files_300_times") else { return };
    let _one_page = support::BUCKET_PAGES.read().await;
    let dir = tempfile::tempdir().unwrap();
    let m = Manager::open(manager_config(dir.path(), Some(&env), &[])).unwrap();
    let alice = uid("files");
    m.save(&key(&alice, "a.json"), b"[1]").await.unwrap();
    let before = m.s3().unwrap().counts();
    let id = UserId::new(&alice).unwrap();
    for _ in 0..300 {
        // What `GET /api/files` does.
        m.confirm_pending(&id).await.unwrap();
        assert_eq!(m.s3_owner_objects(&id).await.unwrap().len(), 1);
    }
    let after = m.s3().unwrap().counts();
    assert!(after.list - before.list <= 1, "{} LISTs", after.list - before.list);
}

#[tokio::test]
async fn outage_saves_are_in_s3_after_the_next_save() {
    let Some(env) = support::s3_env("outage_saves_are_in_s3_after_the_next_save") else { return };
    let dir = tempfile::tempdir().unwrap();
    let alice = uid("outage");
    let down = support::S3Env {
        endpoint: format!("http://127.0.0.1:{}", support::closed_port()),
        ..env.clone()
    };
    let opts = S3Options { retry_base_delay: Duration::from_millis(5), ..S3Options::default() };
    {
        let m = Manager::open_with(manager_config(dir.path(), Some(&down), &[]), opts).unwrap();
        for i in 0..3 {
            let out = m.save(&key(&alice, &format!("o{i}.json")), b"[0]").await.unwrap();
            assert!(out.pending_sync.is_some(), "{out:?}");
        }
    }
    let m = Manager::open(manager_config(dir.path(), Some(&env), &[])).unwrap();
    m.save(&key(&alice, "next.json"), b"[1]").await.unwrap();
    let s3 = env.store();
    assert_eq!(s3_names(&s3, &alice).await, ["next.json", "o0.json", "o1.json", "o2.json"]);
    assert!(m.journal().pending().unwrap().is_empty());
}

#[test]
fn thirty_two_writer_processes_end_zero_bytes_over_the_quota() {
    let Some(env) = support::s3_env("thirty_two_writer_processes") else { return };
    let _one_page = support::BUCKET_PAGES.blocking_read();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let alice = uid("w32");
    let quota: u64 = 512 * 1024;
    let size = 40 * 1024;
    let file = dir.path().join("payload");
    std::fs::write(&file, vec![b'w'; size]).unwrap();
    let children: Vec<_> = (0..32)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_kompass"))
                .env_clear()
                .envs([
                    ("S3_STORAGE_ENABLED", "true"),
                    ("AWS_ENDPOINT_URL", env.endpoint.as_str()),
                    ("AWS_REGION", env.region.as_str()),
                    ("AWS_S3_BUCKET", env.bucket.as_str()),
                    ("AWS_ACCESS_KEY_ID", env.access_key_id.as_str()),
                    ("AWS_SECRET_ACCESS_KEY", env.secret_access_key.as_str()),
                    ("S3_MAX_USER_STORAGE_MB", "0.5"),
                    ("S3_AUTO_CLEANUP_ENABLED", "false"),
                ])
                .current_dir(dir.path())
                .args([
                    "--data-dir",
                    data.to_str().unwrap(),
                    "save",
                    "--user",
                    &alice,
                    "--type",
                    "routes",
                ])
                .args(["--name", &format!("w{i}.json"), file.to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut saved = 0u64;
    for c in children {
        let out = c.wait_with_output().unwrap();
        match out.status.code() {
            Some(0) => saved += 1,
            Some(3) => {}
            other => panic!("{other:?}: {}", String::from_utf8_lossy(&out.stderr)),
        }
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let stored: u64 = rt
        .block_on(env.store().list(&format!("users/{alice}/")))
        .unwrap()
        .iter()
        .map(|o| o.size)
        .sum();
    assert_eq!(stored, saved * size as u64);
    assert!(stored <= quota, "{stored} bytes stored against a {quota}-byte quota");
    assert_eq!(saved, quota / size as u64, "every save that fits was admitted");
}

/// `kompass save` processes with S3 enabled at `endpoint` on one data directory.
fn save_process(
    data: &std::path::Path,
    cwd: &std::path::Path,
    env: &support::S3Env,
    user: &str,
    name: &str,
) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kompass"));
    c.env_clear()
        .envs([
            ("S3_STORAGE_ENABLED", "true"),
            ("AWS_ENDPOINT_URL", env.endpoint.as_str()),
            ("AWS_REGION", env.region.as_str()),
            ("AWS_S3_BUCKET", env.bucket.as_str()),
            ("AWS_ACCESS_KEY_ID", env.access_key_id.as_str()),
            ("AWS_SECRET_ACCESS_KEY", env.secret_access_key.as_str()),
        ])
        .current_dir(cwd)
        .args(["--data-dir", data.to_str().unwrap(), "save", "--user", user, "--type", "routes"])
        .args(["--name", name, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

#[test]
fn processes_queueing_at_once_lose_nothing_and_kompass_sync_replays_them() {
    let Some(env) = support::s3_env("processes_queueing_at_once_lose_nothing") else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let alice = uid("queue");
    let down = support::S3Env {
        endpoint: format!("http://127.0.0.1:{}", support::closed_port()),
        ..env.clone()
    };
    // Sixteen processes queue at once on one journal (S3 unreachable: each save lands
    // locally and is recorded in the state database).
    const N: usize = 16;
    let children: Vec<_> = (0..N)
        .map(|i| {
            let mut c = save_process(&data, dir.path(), &down, &alice, &format!("q{i}.json"))
                .spawn()
                .unwrap();
            use std::io::Write;
            c.stdin.take().unwrap().write_all(format!("[{i}]").as_bytes()).unwrap();
            c
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let journal = kompass::journal::Journal::open(&data).unwrap();
    let mut queued: Vec<String> =
        journal.pending().unwrap().into_iter().map(|p| p.key.s3_key()).collect();
    queued.sort();
    let mut expected: Vec<String> =
        (0..N).map(|i| format!("users/{alice}/routes/q{i}.json")).collect();
    expected.sort();
    assert_eq!(queued, expected, "every queued save is recorded");

    // The outage is over: `kompass sync` uploads every one of them and empties the queue.
    let out = Command::new(env!("CARGO_BIN_EXE_kompass"))
        .env_clear()
        .envs([
            ("S3_STORAGE_ENABLED", "true"),
            ("AWS_ENDPOINT_URL", env.endpoint.as_str()),
            ("AWS_REGION", env.region.as_str()),
            ("AWS_S3_BUCKET", env.bucket.as_str()),
            ("AWS_ACCESS_KEY_ID", env.access_key_id.as_str()),
            ("AWS_SECRET_ACCESS_KEY", env.secret_access_key.as_str()),
        ])
        .current_dir(dir.path())
        .args(["--data-dir", data.to_str().unwrap(), "sync"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(journal.is_empty().unwrap());
    let s3 = env.store();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut want: Vec<String> = (0..N).map(|i| format!("q{i}.json")).collect();
    want.sort();
    assert_eq!(rt.block_on(s3_names(&s3, &alice)), want);
    for i in 0..N {
        let bytes = rt.block_on(s3.get(&format!("users/{alice}/routes/q{i}.json"))).unwrap();
        assert_eq!(bytes, format!("[{i}]").as_bytes(), "q{i}.json byte for byte");
    }
}

#[tokio::test]
async fn an_old_jsonl_journal_is_imported_and_its_saves_replayed_by_the_next_save() {
    let Some(env) = support::s3_env("an_old_jsonl_journal_is_imported") else { return };
    let dir = tempfile::tempdir().unwrap();
    let alice = uid("jsonl");
    // What an earlier version left after an outage: two local saves and their JSON lines.
    let local = dir.path().join("routes").join(&alice);
    std::fs::create_dir_all(&local).unwrap();
    let state = dir.path().join(".kompass");
    std::fs::create_dir_all(&state).unwrap();
    let mut lines = String::new();
    for (i, body) in [b"[10]", b"[11]"].iter().enumerate() {
        std::fs::write(local.join(format!("old{i}.json")), body).unwrap();
        lines.push_str(&format!(
            "{{\"key\":\"users/{alice}/routes/old{i}.json\",\"sha256\":\"{}\",\"size\":4,\"recorded_at_ms\":{}}}\n",
            hex::encode(kompass::manager::sha256(*body)),
            1_000 + i
        ));
    }
    std::fs::write(state.join(kompass::journal::JOURNAL_FILE), &lines).unwrap();

    let m = Manager::open(manager_config(dir.path(), Some(&env), &[])).unwrap();
    assert_eq!(m.journal().count().unwrap(), 2, "imported on first open");
    assert!(!state.join(kompass::journal::JOURNAL_FILE).exists());
    let aside: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(kompass::journal::IMPORTED_PREFIX))
        .collect();
    assert_eq!(aside.len(), 1, "kept aside, not deleted");
    assert_eq!(std::fs::read_to_string(state.join(&aside[0])).unwrap(), lines);

    m.save(&key(&alice, "next.json"), b"[1]").await.unwrap();
    let s3 = env.store();
    assert_eq!(s3_names(&s3, &alice).await, ["next.json", "old0.json", "old1.json"]);
    assert_eq!(s3.get(&format!("users/{alice}/routes/old1.json")).await.unwrap(), b"[11]");
    assert!(m.journal().is_empty().unwrap());
}
