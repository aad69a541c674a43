//! The manager against the in-memory store: gather facts → the core decides → carry out.
//! The remote store is a [`MemoryStore`] posing as S3; local disk is a temp dir.

use std::collections::BTreeMap;

use kompass_core::config::Config;
use kompass_core::key::{ObjectKey, UserId};
use kompass_core::quota::{RequestBudget, RequestKind};
use kompass_core::time::UnixMs;

use super::{Backend, Manager, ManagerError, now_ms};
use crate::store::local::LocalStore;
use crate::store::memory::MemoryStore;
use crate::store::{Scope, Store};

struct Setup {
    user_bytes: u64,
    auto_cleanup: bool,
    min_keep: u32,
    budget: Option<RequestBudget>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup { user_bytes: 1000, auto_cleanup: true, min_keep: 1, budget: None }
    }
}

fn manager(dir: &std::path::Path, s: Setup, remote: bool) -> Manager<MemoryStore> {
    let mut env = BTreeMap::new();
    env.insert("DATA_DIRECTORY".to_owned(), dir.display().to_string());
    let mut config = Config::from_env_map(&env).unwrap();
    config.limits.max_user_bytes = s.user_bytes;
    config.limits.max_file_bytes = s.user_bytes;
    config.limits.cleanup_threshold_percent = 70;
    config.auto_cleanup = s.auto_cleanup;
    config.min_files_to_keep = s.min_keep;
    config.request_budget = s.budget;
    let remote = remote.then(|| MemoryStore::new(Backend::S3));
    Manager::with_stores(config, LocalStore::new(dir), remote).unwrap()
}

fn key(user: &str, name: &str) -> ObjectKey {
    ObjectKey::parse_parts(Some(user), "routes", name).unwrap()
}

/// Saves `name` for `user` with the memory store's clock at `t` (so FIFO order is the order
/// of saving).
async fn save(
    m: &Manager<MemoryStore>,
    user: &str,
    name: &str,
    size: usize,
    t: i64,
) -> super::SaveOutcome {
    m.s3().unwrap().set_time(UnixMs(t));
    m.save(&key(user, name), &vec![b'x'; size]).await.unwrap()
}

async fn remote_of(m: &Manager<MemoryStore>, user: &str) -> Vec<(String, u64)> {
    let u = UserId::new(user).unwrap();
    let l = m.s3().unwrap().list(Scope::Owner(Some(&u))).await.unwrap();
    l.objects.into_iter().map(|o| (o.key.name().to_string(), o.size)).collect()
}

#[tokio::test]
async fn a_save_past_the_quota_is_refused_and_nothing_is_stored_or_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path(), Setup { auto_cleanup: false, ..Setup::default() }, true);
    let ok = save(&m, "alice", "a.json", 600, 1).await;
    assert_eq!(ok.backend, Backend::S3);
    m.s3().unwrap().set_time(UnixMs(2));
    let e = m.save(&key("alice", "b.json"), &[b'x'; 600]).await.unwrap_err();
    assert!(matches!(e, ManagerError::Refused(_)), "{e}");
    assert_eq!(remote_of(&m, "alice").await, vec![("a.json".to_owned(), 600)]);
    assert!(m.local().head(&key("alice", "b.json")).unwrap().is_none(), "not queued either");
    // Overwriting the stored object with one that fits is admitted: it replaces, not adds.
    save(&m, "alice", "a.json", 900, 3).await;
    assert_eq!(remote_of(&m, "alice").await, vec![("a.json".to_owned(), 900)]);
}

#[tokio::test]
async fn cleanup_runs_only_once_the_upload_is_stored_and_removes_the_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path(), Setup::default(), true);
    for i in 0..3 {
        save(&m, "alice", &format!("f{i}.json"), 300, 10 + i).await;
    }
    let before = remote_of(&m, "alice").await;
    assert!(before.iter().map(|o| o.1).sum::<u64>() <= 1000);
    // S3 down: the save lands locally and queues; nothing stored is deleted for it.
    m.s3().unwrap().set_down(true);
    let out = m.save(&key("alice", "new.json"), &[b'x'; 300]).await.unwrap();
    assert_eq!(out.backend, Backend::Local);
    assert!(out.pending_sync.is_some() && out.cleaned.is_empty());
    m.s3().unwrap().set_down(false);
    assert_eq!(remote_of(&m, "alice").await, before, "no deletion for an upload not stored");
    // Up again: the next save stores, then cleans the oldest, and replays the queued one.
    let out = save(&m, "alice", "g.json", 300, 50).await;
    assert_eq!(out.backend, Backend::S3);
    let after = remote_of(&m, "alice").await;
    let names: Vec<&str> = after.iter().map(|o| o.0.as_str()).collect();
    assert!(names.contains(&"g.json") && names.contains(&"new.json"), "{names:?}");
    assert!(after.iter().map(|o| o.1).sum::<u64>() <= 1000, "{after:?}");
    assert!(!out.cleaned.is_empty(), "over the threshold: cleanup ran");
    for d in &out.cleaned {
        assert!(d.key.starts_with("users/alice/routes/f"), "only older files go: {}", d.key);
    }
    let kept_f: Vec<&str> = names.iter().copied().filter(|n| n.starts_with('f')).collect();
    let gone_f: Vec<String> =
        out.cleaned.iter().map(|d| d.key.rsplit('/').next().unwrap().to_owned()).collect();
    for k in &kept_f {
        for g in &gone_f {
            assert!(g.as_str() < *k, "the oldest go first: {g} went, {k} stayed");
        }
    }
}

#[tokio::test]
async fn min_keep_holds_whatever_the_usage() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path(), Setup { min_keep: 5, ..Setup::default() }, true);
    for i in 0..12 {
        save(&m, "alice", &format!("f{i:02}.json"), 150, 10 + i).await;
        let now = remote_of(&m, "alice").await;
        assert!(now.len() >= (i as usize + 1).min(5), "min-keep 5 broken at save {i}: {now:?}");
        assert!(now.iter().map(|o| o.1).sum::<u64>() <= 1000);
    }
    // 12 saves of 150 bytes against 1000: cleanup had to run, and stopped at 5 or more.
    let left = remote_of(&m, "alice").await;
    assert!(left.len() < 12 && left.len() >= 5, "{left:?}");
    assert!(left.iter().any(|o| o.0 == "f11.json"), "the newest stays");
}

#[tokio::test]
async fn a_spent_budget_lands_saves_locally_and_queues_them() {
    let dir = tempfile::tempdir().unwrap();
    let budget = RequestBudget { put_class: 5, get_class: 100 };
    let m = manager(dir.path(), Setup { budget: Some(budget), ..Setup::default() }, true);
    save(&m, "alice", "a.json", 10, 1).await;
    // Spend the rest of the month's PUT-class budget.
    let now = UnixMs(now_ms());
    m.state().write(|tx| tx.charge(RequestKind::Put, 5, now)).unwrap();
    let out = save(&m, "alice", "b.json", 10, 2).await;
    assert_eq!(out.backend, Backend::Local);
    let why = out.pending_sync.expect("queued for sync");
    assert!(why.to_lowercase().contains("budget"), "{why}");
    assert_eq!(remote_of(&m, "alice").await.len(), 1, "no PUT past the budget");
    assert_eq!(m.local().get(&key("alice", "b.json")).unwrap(), vec![b'x'; 10], "nothing lost");
    let queued: Vec<ObjectKey> =
        m.journal().pending().unwrap().into_iter().map(|p| p.key).collect();
    assert_eq!(queued, vec![key("alice", "b.json")]);
    let puts_before = m.s3().unwrap().requests().put;
    // A sync within a spent budget stops without sending anything.
    let report = m.sync(None).await.unwrap();
    assert!(report.uploaded.is_empty() && report.remaining.len() == 1);
    assert_eq!(m.s3().unwrap().requests().put, puts_before);
}

#[tokio::test]
async fn another_users_names_are_refused_and_their_files_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path(), Setup::default(), true);
    for i in 0..3 {
        save(&m, "bob", &format!("b{i}.json"), 300, i).await;
    }
    let bobs = remote_of(&m, "bob").await;
    // Names that would reach bob's data do not make a key for alice.
    for name in ["../bob/b0.json", "users/bob/routes/b0.json", "b0.json/..", "..", ""] {
        assert!(ObjectKey::parse_parts(Some("alice"), "routes", name).is_err(), "{name:?}");
    }
    assert!(ObjectKey::parse_parts(Some("../bob"), "routes", "x.json").is_err());
    // Alice's saves, cleanup included, never count or delete bob's files.
    for i in 0..8 {
        save(&m, "alice", &format!("a{i}.json"), 300, 100 + i).await;
    }
    assert_eq!(remote_of(&m, "bob").await, bobs);
    assert!(remote_of(&m, "alice").await.iter().map(|o| o.1).sum::<u64>() <= 1000);
}

#[tokio::test]
async fn local_saves_count_files_written_by_others_without_walking_everything() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path(), Setup { auto_cleanup: false, ..Setup::default() }, false);
    m.save(&key("alice", "a.json"), &[b'x'; 300]).await.unwrap();
    // Another program writes into alice's folder: her next save counts it.
    std::fs::write(dir.path().join("routes/alice/other.json"), [b'y'; 600]).unwrap();
    let e = m.save(&key("alice", "b.json"), &[b'x'; 300]).await.unwrap_err();
    assert!(matches!(e, ManagerError::Refused(_)), "{e}");
    // Removed behind our back: counted out again.
    std::fs::remove_file(dir.path().join("routes/alice/other.json")).unwrap();
    m.save(&key("alice", "b.json"), &[b'x'; 300]).await.unwrap();
    // The index is in the state database; a missing one is rebuilt by one walk.
    let rows = m.state().read(|tx| tx.local().all_objects()).unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    drop(m);
    std::fs::remove_file(dir.path().join(".kompass/state.sqlite3")).unwrap();
    let m = manager(dir.path(), Setup { auto_cleanup: false, ..Setup::default() }, false);
    let e = m.save(&key("alice", "c.json"), &[b'x'; 500]).await.unwrap_err();
    assert!(matches!(e, ManagerError::Refused(_)), "600 stored + 500 > 1000: {e}");
    assert_eq!(m.state().read(|tx| tx.local().all_objects()).unwrap().len(), 2);
}

fn grant_upload(user: &str, name: &str, size: u64) -> (kompass_core::admission::Upload, Backend) {
    let upload = kompass_core::admission::Upload {
        key: key(user, name),
        size,
        via: kompass_core::admission::Via::Presigned { expires_at: UnixMs(now_ms() + 600_000) },
    };
    (upload, Backend::Local)
}

#[test]
fn a_batch_of_grants_sees_its_own_earlier_reservations() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path(), Setup { auto_cleanup: false, ..Setup::default() }, false);
    // 1000 bytes of quota: four grants of 300 fit three; the re-grant of a key replaces it.
    let batch: Vec<_> = ["a", "b", "c", "d", "a"]
        .iter()
        .map(|n| grant_upload("alice", &format!("{n}.json"), 300))
        .collect();
    let decided: Vec<bool> = m
        .admit_many(&batch)
        .into_iter()
        .map(|d| matches!(d.unwrap(), kompass_core::admission::Decision::Admit(_)))
        .collect();
    assert_eq!(decided, [true, true, true, false, true]);
    let now = UnixMs(now_ms());
    let mut held: Vec<(String, u64)> = m
        .state()
        .write(|tx| tx.reservations(now))
        .unwrap()
        .into_iter()
        .map(|r| (r.key.name().to_string(), r.size))
        .collect();
    held.sort();
    let want: Vec<(String, u64)> =
        ["a", "b", "c"].iter().map(|n| (format!("{n}.json"), 300)).collect();
    assert_eq!(held, want, "one reservation per admitted key, none for the refused one");
}

#[tokio::test]
async fn every_owner_of_a_batch_has_files_written_by_others_counted() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path(), Setup { auto_cleanup: false, ..Setup::default() }, false);
    // The index knows every folder; then other programs write into bob's and carol's (new)
    // folders behind its back.
    m.save(&key("alice", "a.json"), &[b'x'; 100]).await.unwrap();
    m.save(&key("bob", "b.json"), &[b'x'; 100]).await.unwrap();
    std::fs::write(dir.path().join("routes/bob/other.json"), [b'y'; 700]).unwrap();
    std::fs::create_dir_all(dir.path().join("routes/carol")).unwrap();
    std::fs::write(dir.path().join("routes/carol/other.json"), [b'y'; 800]).unwrap();
    // One batch: alice's grant checks the shared folders; bob's and carol's only their own,
    // and still count what was written there (100 + 700 + 300 and 800 + 300 > 1000).
    let batch = [
        grant_upload("alice", "a2.json", 300),
        grant_upload("bob", "b2.json", 300),
        grant_upload("carol", "c.json", 300),
        grant_upload("carol", "c2.json", 100),
    ];
    let decided: Vec<bool> = m
        .admit_many(&batch)
        .into_iter()
        .map(|d| matches!(d.unwrap(), kompass_core::admission::Decision::Admit(_)))
        .collect();
    assert_eq!(decided, [true, false, false, true]);
}

#[test]
fn the_next_batch_sees_reservations_another_process_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let setup = || Setup { auto_cleanup: false, ..Setup::default() };
    let m = manager(dir.path(), setup(), false);
    let other = manager(dir.path(), setup(), false);
    let admitted = |m: &Manager<MemoryStore>, name: &str, size: u64| {
        matches!(
            m.admit_many(&[grant_upload("alice", name, size)]).pop().unwrap().unwrap(),
            kompass_core::admission::Decision::Admit(_)
        )
    };
    assert!(admitted(&m, "a.json", 400), "the first batch fills the cache");
    // Another connection (another process) reserves: the cached list is stale now.
    assert!(admitted(&other, "b.json", 400));
    assert!(!admitted(&m, "c.json", 400), "400 + 400 + 400 is over the 1000-byte quota");
    // And this connection's own writes outside a batch: releasing one makes room again.
    m.state().write(|tx| tx.release(&key("alice", "b.json"))).unwrap();
    assert!(admitted(&m, "c.json", 400));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_grants_never_pass_the_quota_together() {
    let dir = tempfile::tempdir().unwrap();
    let m = std::sync::Arc::new(manager(
        dir.path(),
        Setup { auto_cleanup: false, ..Setup::default() },
        false,
    ));
    let expires = UnixMs(now_ms() + 600_000);
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let m = m.clone();
            tokio::spawn(async move {
                m.grant(&key("alice", &format!("g{i}.json")), 100, expires).await
            })
        })
        .collect();
    let mut granted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => granted += 1,
            Err(ManagerError::Refused(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(granted, 10, "1000 bytes of quota hold ten grants of 100");
    let now = UnixMs(now_ms());
    assert_eq!(m.state().write(|tx| tx.reservations(now)).unwrap().len(), 10);
}

#[tokio::test]
async fn a_listing_that_started_before_the_inventorys_last_refresh_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path(), Setup::default(), true);
    save(&m, "alice", "a.json", 10, 1_000).await;
    let id = Manager::bucket_id(m.s3().unwrap());
    let alice = UserId::new("alice").unwrap();
    let cached = |m: &Manager<MemoryStore>| {
        m.state().read(|tx| tx.owner_facts(Some(&alice))).unwrap().objects.len()
    };
    // Another process's listing, started after this one will and read before `a` was
    // stored, was applied first: this one's answer is older and must not replace it.
    let later = UnixMs(now_ms() + 60_000);
    m.state().write(|tx| tx.replace_inventory(&id, later, later, &[])).unwrap();
    m.refresh_inventory(true).await.unwrap();
    assert_eq!(cached(&m), 0, "skipped: the later listing stands");
    // Once the last refresh is older than this listing's start, its answer is applied.
    m.state().write(|tx| tx.replace_inventory(&id, UnixMs(1), UnixMs(1), &[])).unwrap();
    m.refresh_inventory(true).await.unwrap();
    assert_eq!(cached(&m), 1);
}
