//! The local data directory, the pending-sync journal and state files, on real temp dirs.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kompass::journal::{IMPORTED_PREFIX, JOURNAL_FILE, Journal, PendingEntry};
use kompass::state::{OnCorrupt, StateFile};
use kompass::statedb::{STATE_DB_FILE, StateError};
use kompass::store::local::{
    Inventory, LocalError, LocalStore, STATE_DIR, SkipReason, is_temp_name, sha256_file,
    write_atomic,
};
use kompass_core::key::{DataType, ObjectKey, UserId};
use serde::{Deserialize, Serialize};
use tempfile::TempDir;

fn key(owner: Option<&str>, dt: &str, name: &str) -> ObjectKey {
    ObjectKey::parse_parts(owner, dt, name).unwrap()
}

fn user(u: &str) -> UserId {
    UserId::new(u).unwrap()
}

fn store() -> (TempDir, LocalStore) {
    let dir = TempDir::new().unwrap();
    let store = LocalStore::new(dir.path().join("saved_routes"));
    (dir, store)
}

fn set_mtime(path: &Path, unix_ms: u64) {
    let f = File::options().write(true).open(path).unwrap();
    f.set_modified(UNIX_EPOCH + Duration::from_millis(unix_ms)).unwrap();
}

fn write_raw(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

fn names(entries: &[kompass::store::local::Entry]) -> Vec<String> {
    entries.iter().map(|e| e.key.name().to_string()).collect()
}

fn dir_names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect()
}

fn skipped_for<'a>(inv: &'a Inventory, path: &Path) -> Vec<&'a SkipReason> {
    inv.skipped.iter().filter(|s| s.path == path).map(|s| &s.reason).collect()
}

#[test]
fn layout_is_the_specs() {
    let (_t, s) = store();
    let root = s.root().to_path_buf();
    let cases = [
        (key(Some("alice"), "routes", "a.json"), "routes/alice/a.json"),
        (key(None, "routes", "b.json"), "routes/b.json"),
        (
            key(Some("alice"), "fitness", "fitness_data_20240101_120000.json"),
            "fitness/alice/fitness_data_20240101_120000.json",
        ),
        (key(None, "models", "model.bin"), "models/model.bin"),
        (key(None, "training_data", "set.csv"), "training_data/set.csv"),
    ];
    for (i, (k, rel)) in cases.iter().enumerate() {
        let body = format!("content {i}");
        let meta = s.put(k, body.as_bytes()).unwrap();
        let expected = root.join(rel);
        assert_eq!(meta.path, expected);
        assert_eq!(meta.size, body.len() as u64);
        assert_eq!(s.path_of(k), expected);
        assert_eq!(fs::read_to_string(&expected).unwrap(), body);
    }
    // Nothing else was created at the root besides the data-type folders.
    assert_eq!(
        dir_names(&root),
        ["fitness", "models", "routes", "training_data"].map(String::from).into_iter().collect()
    );
}

#[test]
fn round_trip_overwrite_delete() {
    let (_t, s) = store();
    let k = key(Some("alice"), "routes", "ride.json");
    assert!(s.head(&k).unwrap().is_none());
    let err = s.get(&k).unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert!(err.to_string().contains("users/alice/routes/ride.json"), "{err}");

    s.put(&k, b"first version").unwrap();
    assert_eq!(s.get(&k).unwrap(), b"first version");
    s.put(&k, b"second").unwrap();
    assert_eq!(s.get(&k).unwrap(), b"second");
    let head = s.head(&k).unwrap().unwrap();
    assert_eq!(head.size, 6);
    assert!(head.last_modified_ms > 1_600_000_000_000, "{}", head.last_modified_ms);

    // Another user's file of the same name is a different object.
    let other = key(Some("bob"), "routes", "ride.json");
    assert!(s.get(&other).unwrap_err().is_not_found());

    assert!(s.delete(&k).unwrap());
    assert!(!s.delete(&k).unwrap());
    assert!(s.head(&k).unwrap().is_none());
    assert!(s.get(&k).unwrap_err().is_not_found());
}

#[test]
fn a_streamed_put_is_invisible_until_finished_and_leaves_nothing_when_dropped() {
    let (_t, s) = store();
    let k = key(Some("alice"), "routes", "big.json");
    s.put(&k, b"old content").unwrap();
    let dir = s.path_of(&k).parent().unwrap().to_path_buf();

    // Written in pieces into a temp file beside the target: the target keeps its content and
    // listings show only it until the put is finished.
    let mut put = s.begin_put(&k).unwrap();
    assert_eq!(put.key(), &k);
    let piece = vec![b'n'; 3 << 20];
    for _ in 0..4 {
        put.write(&piece).unwrap();
    }
    assert_eq!(put.len(), 12 << 20);
    let during = dir_names(&dir);
    assert_eq!(during.len(), 2, "{during:?}");
    assert!(during.iter().any(|n| is_temp_name(n)), "{during:?}");
    assert_eq!(s.get(&k).unwrap(), b"old content");
    assert_eq!(names(&s.list(Some(&user("alice")), DataType::Routes).unwrap()), ["big.json"]);
    let meta = s.finish_put(put).unwrap();
    assert_eq!(meta.size, 12 << 20);
    assert_eq!(s.get(&k).unwrap(), [piece.as_slice(); 4].concat());
    assert_eq!(dir_names(&dir), BTreeSet::from(["big.json".to_owned()]));

    // Dropped before it is finished (a refused or interrupted upload): the temp file goes and
    // the stored content stays.
    let mut put = s.begin_put(&k).unwrap();
    put.write(b"half of it").unwrap();
    assert_eq!(dir_names(&dir).len(), 2);
    drop(put);
    assert_eq!(dir_names(&dir), BTreeSet::from(["big.json".to_owned()]));
    assert_eq!(s.get(&k).unwrap().len(), 12 << 20);

    // A directory put in the way while the bytes arrived is refused at the end; nothing is
    // left behind.
    let other = key(Some("alice"), "routes", "other.json");
    let mut put = s.begin_put(&other).unwrap();
    put.write(b"{}").unwrap();
    fs::create_dir(s.path_of(&other)).unwrap();
    assert!(matches!(s.finish_put(put), Err(LocalError::Conflict { .. })));
    assert_eq!(dir_names(&dir), BTreeSet::from(["big.json".to_owned(), "other.json".to_owned()]));
    assert!(s.path_of(&other).is_dir());
}

#[test]
fn sha256_of_files() {
    let (_t, s) = store();
    let k = key(None, "models", "abc.txt");
    s.put(&k, b"abc").unwrap();
    let want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert_eq!(hex::encode(s.sha256(&k).unwrap()), want);
    assert_eq!(hex::encode(sha256_file(&s.path_of(&k)).unwrap()), want);
    // Larger than one read buffer, so chunking is exercised.
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    s.put(&k, &big).unwrap();
    use sha2::Digest;
    assert_eq!(s.sha256(&k).unwrap(), <[u8; 32]>::from(sha2::Sha256::digest(&big)));
    assert!(s.sha256(&key(None, "models", "missing")).unwrap_err().is_not_found());
}

#[test]
fn listing_newest_first_ties_by_name_and_scoped() {
    let (_t, s) = store();
    let alice = user("alice");
    for (name, ms) in
        [("old.json", 1_000), ("b.json", 5_000), ("a.json", 5_000), ("new.json", 9_000)]
    {
        let m = s.put(&key(Some("alice"), "routes", name), name.as_bytes()).unwrap();
        set_mtime(&m.path, ms);
    }
    s.put(&key(Some("bob"), "routes", "bob.json"), b"x").unwrap();
    s.put(&key(None, "routes", "anon.json"), b"x").unwrap();
    s.put(&key(Some("alice"), "fitness", "f.json"), b"x").unwrap();

    let list = s.list(Some(&alice), DataType::Routes).unwrap();
    assert_eq!(names(&list), ["new.json", "a.json", "b.json", "old.json"]);
    assert_eq!(list[0].last_modified_ms, 9_000);
    assert_eq!(list[3].size, "old.json".len() as u64);
    assert!(list.iter().all(|e| e.key.owner() == Some(&alice) && !e.legacy));

    assert_eq!(names(&s.list(None, DataType::Routes).unwrap()), ["anon.json"]);
    assert_eq!(names(&s.list(Some(&user("bob")), DataType::Routes).unwrap()), ["bob.json"]);
    assert_eq!(names(&s.list(Some(&alice), DataType::Fitness).unwrap()), ["f.json"]);
    assert!(s.list(Some(&user("carol")), DataType::Routes).unwrap().is_empty());
    assert!(s.list(None, DataType::Models).unwrap().is_empty());

    assert!(matches!(s.list(None, DataType::Fitness), Err(LocalError::Key(_))));
    assert!(matches!(s.list(Some(&alice), DataType::Models), Err(LocalError::Key(_))));
}

#[test]
fn missing_data_dir_is_empty() {
    let (_t, s) = store();
    assert!(s.list(None, DataType::Routes).unwrap().is_empty());
    let inv = s.inventory().unwrap();
    assert!(inv.entries.is_empty() && inv.skipped.is_empty() && inv.temp_files.is_empty());
    assert!(!s.root().exists(), "reading must not create the data directory");
}

#[test]
fn inventory_covers_every_type_sorted_by_s3_key() {
    let (_t, s) = store();
    let keys = [
        key(Some("bob"), "fitness", "f1.json"),
        key(None, "training_data", "t.csv"),
        key(Some("alice"), "routes", "r.json"),
        key(None, "routes", "anon.json"),
        key(None, "models", "m.bin"),
    ];
    for k in &keys {
        s.put(k, k.s3_key().as_bytes()).unwrap();
    }
    let inv = s.inventory().unwrap();
    let got: Vec<String> = inv.entries.iter().map(|e| e.key.s3_key()).collect();
    let mut want: Vec<String> = keys.iter().map(ObjectKey::s3_key).collect();
    want.sort();
    assert_eq!(got, want);
    for e in &inv.entries {
        assert_eq!(e.size, e.key.s3_key().len() as u64);
        assert_eq!(e.path, s.path_of(&e.key));
    }
    assert!(inv.skipped.is_empty(), "{:?}", inv.skipped);
}

#[test]
fn legacy_root_routes_are_anonymous_routes() {
    let (_t, s) = store();
    let root = s.root().to_path_buf();
    let legacy = "20240101_120000_my_route.json";
    write_raw(&root.join(legacy), b"{\"legacy\": true}");
    set_mtime(&root.join(legacy), 2_000);
    // Not the legacy shape: left alone.
    write_raw(&root.join("config.json"), b"{}");
    write_raw(&root.join("notes.txt"), b"hi");
    s.put(&key(None, "routes", "new.json"), b"{}").unwrap();
    set_mtime(&root.join("routes/new.json"), 3_000);

    let list = s.list(None, DataType::Routes).unwrap();
    assert_eq!(names(&list), ["new.json", legacy]);
    assert!(list[1].legacy && !list[0].legacy);
    assert_eq!(list[1].path, root.join(legacy));
    assert_eq!(list[1].key.s3_key(), format!("routes/{legacy}"));
    // Legacy routes are anonymous: not a user's.
    assert!(s.list(Some(&user("alice")), DataType::Routes).unwrap().is_empty());

    let k = key(None, "routes", legacy);
    assert_eq!(s.get(&k).unwrap(), b"{\"legacy\": true}");
    assert_eq!(s.head(&k).unwrap().unwrap().path, root.join(legacy));
    // Only legacy-shaped names fall back to the root.
    assert!(s.get(&key(None, "routes", "config.json")).unwrap_err().is_not_found());
    assert!(s.get(&key(Some("alice"), "routes", legacy)).unwrap_err().is_not_found());

    let inv = s.inventory().unwrap();
    assert!(inv.entries.iter().any(|e| e.legacy && e.key == k));
    assert!(inv.entries.iter().all(|e| e.key.name().as_str() != "config.json"));
    assert!(
        inv.skipped.is_empty(),
        "root files that are not ours are not reported: {:?}",
        inv.skipped
    );

    // Saving the same key writes the layout's path and retires the legacy copy.
    s.put(&k, b"updated").unwrap();
    assert!(!root.join(legacy).exists());
    assert_eq!(fs::read(root.join("routes").join(legacy)).unwrap(), b"updated");
    assert_eq!(s.get(&k).unwrap(), b"updated");
    assert!(root.join("config.json").exists() && root.join("notes.txt").exists());
}

#[test]
fn legacy_copy_hidden_by_layout_copy_and_deleted_with_it() {
    let (_t, s) = store();
    let root = s.root().to_path_buf();
    let legacy = "20230505_080910_loop.json";
    write_raw(&root.join(legacy), b"old");
    write_raw(&root.join("routes").join(legacy), b"new");
    let k = key(None, "routes", legacy);
    assert_eq!(s.get(&k).unwrap(), b"new");
    let list = s.list(None, DataType::Routes).unwrap();
    assert_eq!(list.len(), 1);
    assert!(!list[0].legacy);
    let inv = s.inventory().unwrap();
    assert!(matches!(
        skipped_for(&inv, &root.join(legacy))[..],
        [SkipReason::ShadowedLegacy { .. }]
    ));

    // Deleting must not resurrect the old content.
    assert!(s.delete(&k).unwrap());
    assert!(s.get(&k).unwrap_err().is_not_found());
    assert!(!root.join(legacy).exists());
}

#[test]
fn temp_files_and_state_dir_are_not_data() {
    let (_t, s) = store();
    let root = s.root().to_path_buf();
    s.put(&key(Some("alice"), "routes", "a.json"), b"a").unwrap();
    let temp = root.join("routes/alice/.a.json.tmp-4242-7");
    write_raw(&temp, b"half a wri");
    write_raw(&root.join(STATE_DIR).join("request-ledger.json"), b"{}");
    write_raw(&root.join(STATE_DIR).join("routes/x.json"), b"{}");
    Journal::open(&root).unwrap().record(&key(None, "models", "m"), 1, &[0; 32], 1).unwrap();

    assert_eq!(names(&s.list(Some(&user("alice")), DataType::Routes).unwrap()), ["a.json"]);
    let inv = s.inventory().unwrap();
    assert_eq!(inv.entries.len(), 1);
    assert_eq!(inv.temp_files, vec![temp]);
    assert!(inv.skipped.is_empty(), "{:?}", inv.skipped);
    assert!(is_temp_name(".a.json.tmp-4242-7") && !is_temp_name("a.json"));
}

#[test]
fn invalid_names_on_disk_are_reported() {
    let (_t, s) = store();
    let root = s.root().to_path_buf();
    s.put(&key(Some("alice"), "routes", "good.json"), b"ok").unwrap();
    let invalid = [
        root.join("routes/alice/bad:name.json"), // forbidden character
        root.join("routes/alice/.DS_Store"),     // leading dot
        root.join("routes/alice/trailing.json "), // trailing space
        root.join("fitness/global.json"),        // fitness needs a user
        root.join("20240101_120000_a|b.json"),   // legacy-shaped, invalid name
    ];
    for p in &invalid {
        write_raw(p, b"x");
    }
    write_raw(&root.join("routes/bad user/r.json"), b"x"); // invalid user id folder
    write_raw(&root.join("models/sub/m.bin"), b"x"); // models are global: no folders
    write_raw(&root.join("routes/alice/nested/r.json"), b"x"); // user folders hold files only
    fs::create_dir_all(root.join("training_data")).unwrap();
    write_raw(&root.join("stray/thing.json"), b"x"); // not a data type: not ours, left alone

    let inv = s.inventory().unwrap();
    assert_eq!(inv.entries.len(), 1, "{:?}", inv.entries);
    for p in &invalid {
        assert!(
            matches!(skipped_for(&inv, p)[..], [SkipReason::InvalidName(_)]),
            "{p:?}: {:?}",
            inv.skipped
        );
    }
    assert!(matches!(
        skipped_for(&inv, &root.join("routes/bad user"))[..],
        [SkipReason::InvalidName(_)]
    ));
    assert!(matches!(
        skipped_for(&inv, &root.join("models/sub"))[..],
        [SkipReason::UnexpectedDirectory]
    ));
    assert!(matches!(
        skipped_for(&inv, &root.join("routes/alice/nested"))[..],
        [SkipReason::UnexpectedDirectory]
    ));
    assert_eq!(inv.skipped.len(), invalid.len() + 3, "{:#?}", inv.skipped);
    // Each report names the path and the problem.
    let shown = inv.skipped.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
    assert!(shown.contains("bad:name.json") && shown.contains("':' is not allowed"), "{shown}");

    // Listing still works, leaving them out.
    assert_eq!(names(&s.list(Some(&user("alice")), DataType::Routes).unwrap()), ["good.json"]);
}

#[test]
fn a_file_where_a_data_type_folder_belongs_is_reported() {
    let (_t, s) = store();
    write_raw(&s.root().join("models"), b"not a folder");
    let inv = s.inventory().unwrap();
    assert!(matches!(
        skipped_for(&inv, &s.root().join("models"))[..],
        [SkipReason::ExpectedDirectory]
    ));
    let err = s.put(&key(None, "models", "m.bin"), b"x").unwrap_err();
    assert!(matches!(err, LocalError::Conflict { .. }), "{err:?}");
}

#[test]
fn anonymous_route_and_user_folder_of_the_same_name_conflict_clearly() {
    let (_t, s) = store();
    s.put(&key(Some("alice"), "routes", "r.json"), b"x").unwrap();
    let err = s.put(&key(None, "routes", "alice"), b"x").unwrap_err();
    assert!(matches!(err, LocalError::Conflict { .. }), "{err:?}");
    assert!(s.get(&key(None, "routes", "alice")).unwrap_err().is_not_found());

    s.put(&key(None, "routes", "bob"), b"x").unwrap();
    let err = s.put(&key(Some("bob"), "routes", "r.json"), b"x").unwrap_err();
    assert!(matches!(err, LocalError::Conflict { .. }), "{err:?}");
    assert_eq!(s.get(&key(None, "routes", "bob")).unwrap(), b"x");
}

#[cfg(unix)]
#[test]
fn symlinks_out_of_the_data_dir_are_never_followed() {
    use std::os::unix::fs::symlink;
    let (t, s) = store();
    let root = s.root().to_path_buf();
    let outside = t.path().join("outside");
    write_raw(&outside.join("secret.json"), b"secret");
    s.put(&key(Some("alice"), "routes", "a.json"), b"a").unwrap();

    // A user folder that is a link.
    symlink(&outside, root.join("routes/eve")).unwrap();
    let eve = key(Some("eve"), "routes", "secret.json");
    assert!(matches!(s.get(&eve), Err(LocalError::Symlink { .. })));
    assert!(matches!(s.head(&eve), Err(LocalError::Symlink { .. })));
    assert!(matches!(s.sha256(&eve), Err(LocalError::Symlink { .. })));
    assert!(matches!(
        s.list(Some(&user("eve")), DataType::Routes),
        Err(LocalError::Symlink { .. })
    ));
    assert!(matches!(
        s.put(&key(Some("eve"), "routes", "planted.json"), b"x"),
        Err(LocalError::Symlink { .. })
    ));
    assert!(matches!(s.delete(&eve), Err(LocalError::Symlink { .. })));
    assert!(!outside.join("planted.json").exists());
    assert!(outside.join("secret.json").exists());

    // A file that is a link, and a legacy root route that is a link.
    symlink(outside.join("secret.json"), root.join("routes/alice/link.json")).unwrap();
    let legacy = "20240101_120000_stolen.json";
    symlink(outside.join("secret.json"), root.join(legacy)).unwrap();
    assert!(matches!(
        s.get(&key(Some("alice"), "routes", "link.json")),
        Err(LocalError::Symlink { .. })
    ));
    assert!(matches!(s.get(&key(None, "routes", legacy)), Err(LocalError::Symlink { .. })));
    assert!(matches!(
        s.put(&key(Some("alice"), "routes", "link.json"), b"x"),
        Err(LocalError::Symlink { .. })
    ));
    assert_eq!(fs::read(outside.join("secret.json")).unwrap(), b"secret");
    assert_eq!(names(&s.list(Some(&user("alice")), DataType::Routes).unwrap()), ["a.json"]);
    assert!(s.list(None, DataType::Routes).unwrap().is_empty());

    // A data-type folder that is a link.
    symlink(&outside, root.join("models")).unwrap();
    assert!(matches!(s.list(None, DataType::Models), Err(LocalError::Symlink { .. })));

    let inv = s.inventory().unwrap();
    assert_eq!(inv.entries.len(), 1, "{:?}", inv.entries);
    for p in [
        root.join("routes/eve"),
        root.join("routes/alice/link.json"),
        root.join(legacy),
        root.join("models"),
    ] {
        assert!(
            matches!(skipped_for(&inv, &p)[..], [SkipReason::Symlink]),
            "{p:?}: {:?}",
            inv.skipped
        );
    }
    let err = s.get(&eve).unwrap_err().to_string();
    assert!(err.contains("routes/eve") && err.contains("symbolic link"), "{err}");

    // The state directory too.
    fs::create_dir_all(&outside).unwrap();
    symlink(&outside, root.join(STATE_DIR)).unwrap();
    assert!(matches!(Journal::open(&root), Err(StateError::Local(LocalError::Symlink { .. }))));
    let st: StateFile<Counter> = StateFile::open(&root, "ledger", OnCorrupt::Fail).unwrap();
    assert!(matches!(st.save(&Counter::default()), Err(LocalError::Symlink { .. })));
    assert!(!outside.join("ledger.json").exists());
}

#[test]
fn writes_leave_no_temp_files_and_long_names_work() {
    let (_t, s) = store();
    let k = key(Some("alice"), "routes", "a.json");
    for i in 0..5 {
        s.put(&k, format!("v{i}").as_bytes()).unwrap();
    }
    assert_eq!(dir_names(&s.root().join("routes/alice")), BTreeSet::from(["a.json".to_string()]));

    // The longest valid name still leaves room for the temp name.
    let long = format!("{}.json", "x".repeat(250));
    assert_eq!(long.len(), 255);
    let k = key(None, "models", &long);
    s.put(&k, b"long").unwrap();
    assert_eq!(s.get(&k).unwrap(), b"long");
    assert_eq!(dir_names(&s.root().join("models")), BTreeSet::from([long]));
}

#[test]
fn a_crash_mid_write_leaves_the_old_content() {
    let (_t, s) = store();
    let k = key(None, "routes", "loop.json");
    s.put(&k, b"old complete content").unwrap();
    // What a crash between writing the temp file and renaming it leaves behind.
    let dir = s.root().join("routes");
    let temp = dir.join(format!(".loop.json.tmp-{}-99", std::process::id()));
    write_raw(&temp, b"new but tor");

    assert_eq!(s.get(&k).unwrap(), b"old complete content");
    let list = s.list(None, DataType::Routes).unwrap();
    assert_eq!(names(&list), ["loop.json"]);
    assert_eq!(list[0].size, 20);
    assert_eq!(s.inventory().unwrap().temp_files, vec![temp.clone()]);

    // A later write is not disturbed by the leftover, even with a colliding name.
    s.put(&k, b"newer").unwrap();
    assert_eq!(s.get(&k).unwrap(), b"newer");

    // Sweeping: young temp files may be in-flight writes and stay; old ones go.
    let now = SystemTime::now();
    assert!(s.sweep_temp_files(Duration::from_secs(3600), now).unwrap().is_empty());
    assert!(temp.exists());
    let swept =
        s.sweep_temp_files(Duration::from_secs(3600), now + Duration::from_secs(7200)).unwrap();
    assert_eq!(swept, vec![temp.clone()]);
    assert!(!temp.exists());
    assert_eq!(s.get(&k).unwrap(), b"newer");
}

#[test]
fn concurrent_writers_never_expose_a_torn_file() {
    let (_t, s) = store();
    let s = Arc::new(s);
    let k = key(None, "models", "m.bin");
    // Distinct lengths and fill bytes: a torn or mixed file cannot pass for a whole one.
    let versions: Vec<Vec<u8>> = (1..=4u8).map(|i| vec![i; 20_000 * i as usize]).collect();
    s.put(&k, &versions[0]).unwrap();
    let writers: Vec<_> = (0..versions.len())
        .map(|w| {
            let (s, k, v) = (s.clone(), k.clone(), versions[w].clone());
            thread::spawn(move || {
                for _ in 0..25 {
                    s.put(&k, &v).unwrap();
                }
            })
        })
        .collect();
    let reader = {
        let (s, k, versions) = (s.clone(), k.clone(), versions.clone());
        thread::spawn(move || {
            for _ in 0..200 {
                let got = s.get(&k).unwrap();
                assert!(versions.contains(&got), "a torn read of {} bytes", got.len());
            }
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    reader.join().unwrap();
    assert!(versions.contains(&s.get(&k).unwrap()));
    assert_eq!(dir_names(&s.root().join("models")), BTreeSet::from(["m.bin".to_string()]));
}

#[test]
fn write_atomic_replaces_and_reports_a_directory_in_the_way() {
    let t = TempDir::new().unwrap();
    let p = t.path().join("state.json");
    write_atomic(&p, b"one").unwrap();
    write_atomic(&p, b"two").unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"two");
    fs::create_dir(t.path().join("dir")).unwrap();
    fs::write(t.path().join("dir/inner"), b"x").unwrap();
    let err = write_atomic(&t.path().join("dir"), b"x").unwrap_err();
    assert!(matches!(err, LocalError::Conflict { .. }), "{err:?}");
    assert_eq!(dir_names(t.path()), BTreeSet::from(["dir".to_string(), "state.json".to_string()]));
}

// ---------------------------------------------------------------- journal

fn sha(b: u8) -> [u8; 32] {
    [b; 32]
}

fn journal() -> (TempDir, PathBuf, Journal) {
    let t = TempDir::new().unwrap();
    let root = t.path().join("data");
    let j = Journal::open(&root).unwrap();
    (t, root, j)
}

/// One line of the old JSON-lines journal.
fn old_line(key: &str, digest: [u8; 32], size: u64, at: u64) -> String {
    format!(
        r#"{{"key":"{key}","sha256":"{}","size":{size},"recorded_at_ms":{at}}}"#,
        hex::encode(digest)
    )
}

/// The old journals kept aside after their import.
fn imported_aside(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(root.join(STATE_DIR))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(IMPORTED_PREFIX))
        .collect();
    v.sort();
    v
}

#[test]
fn journal_record_pending_complete() {
    let (_t, root, j) = journal();
    assert!(j.is_empty().unwrap());
    assert!(j.pending().unwrap().is_empty());
    let a = key(Some("alice"), "routes", "a.json");
    let b = key(None, "models", "m.bin");
    let c = key(Some("bob"), "fitness", "f.json");
    j.record(&a, 10, &sha(1), 100).unwrap();
    j.record(&b, 20, &sha(2), 200).unwrap();
    j.record(&c, 30, &sha(3), 300).unwrap();
    // In the state database, beside the inventory cache and the ledger; no JSON-lines file.
    assert_eq!(j.path(), root.join(STATE_DIR).join(STATE_DB_FILE));
    assert!(!root.join(STATE_DIR).join(JOURNAL_FILE).exists());
    assert_eq!(j.count().unwrap(), 3);

    let pending = j.pending().unwrap();
    assert_eq!(pending.iter().map(|e| &e.key).collect::<Vec<_>>(), [&a, &b, &c]);
    assert_eq!(
        pending[1],
        PendingEntry { key: b.clone(), sha256: sha(2), size: 20, recorded_at_ms: 200 }
    );
    assert!(!j.is_empty().unwrap());
    // Another opening (another process) sees the same queue.
    assert_eq!(Journal::open(&root).unwrap().pending().unwrap(), pending);

    j.complete(std::slice::from_ref(&b)).unwrap();
    assert_eq!(j.pending().unwrap().iter().map(|e| &e.key).collect::<Vec<_>>(), [&a, &c]);
    j.complete(&[a, c]).unwrap();
    assert!(j.is_empty().unwrap());
    assert_eq!(j.count().unwrap(), 0);
    // Completing what is not queued is fine.
    j.complete(&[b]).unwrap();
    assert!(Journal::open(&root).unwrap().is_empty().unwrap());
}

#[test]
fn journal_dedups_latest_wins() {
    let (_t, _root, j) = journal();
    let a = key(None, "routes", "a.json");
    let b = key(None, "routes", "b.json");
    j.record(&a, 1, &sha(1), 100).unwrap();
    j.record(&b, 2, &sha(2), 200).unwrap();
    // Latest by position, even if the clock stepped back.
    j.record(&a, 3, &sha(3), 50).unwrap();
    let pending = j.pending().unwrap();
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[0].key, b);
    assert_eq!((pending[1].key.clone(), pending[1].sha256, pending[1].size), (a, sha(3), 3));
}

#[test]
fn journal_complete_entries_keeps_a_newer_record() {
    let (_t, _root, j) = journal();
    let a = key(Some("alice"), "routes", "a.json");
    j.record(&a, 1, &sha(1), 100).unwrap();
    let read_before_upload = j.pending().unwrap();
    // A save of the same key while the upload runs.
    j.record(&a, 2, &sha(2), 200).unwrap();
    j.complete_entries(&read_before_upload).unwrap();
    let pending = j.pending().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].sha256, sha(2));
    j.complete_entries(&pending).unwrap();
    assert!(j.is_empty().unwrap());
}

#[test]
fn an_old_jsonl_journal_with_a_torn_last_line_is_imported_once_and_kept_aside() {
    let t = TempDir::new().unwrap();
    let root = t.path().join("data");
    let state = root.join(STATE_DIR);
    fs::create_dir_all(&state).unwrap();
    let a = key(None, "routes", "a.json");
    let b = key(Some("alice"), "routes", "b.json");
    // An old version's journal: a, b, a again (latest wins), then a crash mid-append.
    let text = format!(
        "{}\n{}\n{}\n{}",
        old_line("routes/a.json", sha(1), 1, 100),
        old_line("users/alice/routes/b.json", sha(2), 2, 200),
        old_line("routes/a.json", sha(3), 3, 300),
        r#"{"key":"routes/c.json","sha2"#
    );
    fs::write(state.join(JOURNAL_FILE), &text).unwrap();

    let j = Journal::open(&root).unwrap();
    let pending = j.pending().unwrap();
    assert_eq!(pending.iter().map(|e| &e.key).collect::<Vec<_>>(), [&b, &a]);
    assert_eq!(
        pending[1],
        PendingEntry { key: a.clone(), sha256: sha(3), size: 3, recorded_at_ms: 300 }
    );
    // Renamed aside, byte for byte (the torn line too), never deleted.
    assert!(!state.join(JOURNAL_FILE).exists());
    let aside = imported_aside(&root);
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(fs::read_to_string(&aside[0]).unwrap(), text);

    // Reopening imports nothing again; recording goes on in the database.
    j.complete(std::slice::from_ref(&a)).unwrap();
    let j = Journal::open(&root).unwrap();
    assert_eq!(j.pending().unwrap().iter().map(|e| &e.key).collect::<Vec<_>>(), [&b]);
    assert_eq!(imported_aside(&root).len(), 1);
}

#[test]
fn an_old_journal_put_back_after_a_crash_before_its_rename_is_not_imported_twice() {
    let t = TempDir::new().unwrap();
    let root = t.path().join("data");
    let state = root.join(STATE_DIR);
    fs::create_dir_all(&state).unwrap();
    let text = format!("{}\n", old_line("routes/a.json", sha(1), 1, 100));
    fs::write(state.join(JOURNAL_FILE), &text).unwrap();
    let j = Journal::open(&root).unwrap();
    let a = key(None, "routes", "a.json");
    assert_eq!(j.pending().unwrap().len(), 1);
    j.complete(std::slice::from_ref(&a)).unwrap();
    // The same file back in place, as after a crash between the import's commit and the
    // rename: its records were imported (and a was since uploaded), so they do not return.
    fs::write(state.join(JOURNAL_FILE), &text).unwrap();
    let j = Journal::open(&root).unwrap();
    assert!(j.is_empty().unwrap());
    assert!(!state.join(JOURNAL_FILE).exists(), "renamed aside this time");
}

#[test]
fn an_old_journal_with_bad_middle_lines_imports_the_good_ones_and_keeps_every_line() {
    let t = TempDir::new().unwrap();
    let root = t.path().join("data");
    let state = root.join(STATE_DIR);
    fs::create_dir_all(&state).unwrap();
    let text = format!(
        "{}\nthis is not json\n{}\n{}",
        old_line("routes/a.json", sha(1), 1, 100),
        old_line("routes/../x", sha(9), 1, 1),
        // A whole record that only lacks its newline.
        old_line("routes/b.json", sha(2), 2, 200),
    );
    fs::write(state.join(JOURNAL_FILE), &text).unwrap();
    let j = Journal::open(&root).unwrap();
    let (a, b) = (key(None, "routes", "a.json"), key(None, "routes", "b.json"));
    assert_eq!(j.pending().unwrap().iter().map(|e| &e.key).collect::<Vec<_>>(), [&a, &b]);
    let aside = imported_aside(&root);
    assert_eq!(fs::read_to_string(&aside[0]).unwrap(), text, "unreadable lines kept for a person");
    j.record(&key(None, "routes", "c.json"), 3, &sha(3), 300).unwrap();
    assert_eq!(j.count().unwrap(), 3);
}

#[test]
fn erasing_a_user_strips_their_lines_from_the_old_journal_kept_aside() {
    let t = TempDir::new().unwrap();
    let root = t.path().join("data");
    let state = root.join(STATE_DIR);
    fs::create_dir_all(&state).unwrap();
    let text = format!(
        "{}\n{}\n{}\n",
        old_line("users/alice/routes/a.json", sha(1), 1, 100),
        old_line("users/bob/routes/b.json", sha(2), 2, 200),
        r#"{"key":"users/alice/routes/torn"#
    );
    fs::write(state.join(JOURNAL_FILE), &text).unwrap();
    let j = Journal::open(&root).unwrap();
    assert_eq!(j.forget_imported(&user("alice")).unwrap(), 2);
    let kept = fs::read_to_string(&imported_aside(&root)[0]).unwrap();
    assert!(!kept.contains("alice"), "{kept}");
    assert!(kept.contains("users/bob/routes/b.json"));
    assert_eq!(j.forget_imported(&user("alice")).unwrap(), 0);
}

#[test]
fn a_damaged_state_database_refuses_the_journal_and_keeps_the_old_file() {
    let t = TempDir::new().unwrap();
    let root = t.path().join("data");
    let state = root.join(STATE_DIR);
    fs::create_dir_all(&state).unwrap();
    let junk = b"not a database".repeat(300);
    fs::write(state.join(STATE_DB_FILE), &junk).unwrap();
    let text = format!("{}\n", old_line("routes/a.json", sha(1), 1, 100));
    fs::write(state.join(JOURNAL_FILE), &text).unwrap();
    let e = Journal::open(&root).unwrap_err();
    assert!(matches!(e, StateError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("Move it aside"), "{e}");
    // Nothing lost: both files as they were, nothing renamed.
    assert_eq!(fs::read(state.join(STATE_DB_FILE)).unwrap(), junk);
    assert_eq!(fs::read_to_string(state.join(JOURNAL_FILE)).unwrap(), text);
    assert!(imported_aside(&root).is_empty());
}

#[test]
fn journal_concurrent_appends_are_all_kept() {
    let (_t, root, _j) = journal();
    let handles: Vec<_> = (0..4)
        .map(|w| {
            let root = root.clone();
            thread::spawn(move || {
                let j = Journal::open(&root).unwrap();
                for i in 0..25 {
                    let k = key(None, "routes", &format!("w{w}-{i}.json"));
                    j.record(&k, i, &sha(w as u8), 1_000 + i).unwrap();
                }
            })
        })
        .collect();
    // Completions racing with the appends must not drop anything else.
    let j = Journal::open(&root).unwrap();
    for _ in 0..10 {
        j.complete(&[key(None, "routes", "never-recorded.json")]).unwrap();
    }
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(j.pending().unwrap().len(), 100);
}

// ---------------------------------------------------------------- state files

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Counter {
    month: String,
    puts: u64,
    gets: u64,
}

#[test]
fn state_file_round_trip() {
    let t = TempDir::new().unwrap();
    let st: StateFile<Counter> =
        StateFile::open(t.path(), "request-ledger", OnCorrupt::Fail).unwrap();
    assert_eq!(st.path(), t.path().join(STATE_DIR).join("request-ledger.json"));
    assert_eq!(st.load().unwrap(), Counter::default());
    assert!(!st.path().exists(), "loading creates nothing");

    let v = Counter { month: "2026-11".into(), puts: 3, gets: 7 };
    st.save(&v).unwrap();
    assert_eq!(st.load().unwrap(), v);
    let puts = st
        .update(|c| {
            c.puts += 1;
            c.puts
        })
        .unwrap();
    assert_eq!(puts, 4);
    // A second handle sees the same file.
    let again: StateFile<Counter> =
        StateFile::open(t.path(), "request-ledger", OnCorrupt::Fail).unwrap();
    assert_eq!(again.load().unwrap().puts, 4);
    assert_eq!(
        dir_names(&t.path().join(STATE_DIR)),
        BTreeSet::from(["request-ledger.json".into(), "request-ledger.lock".into()])
    );

    assert!(matches!(
        StateFile::<Counter>::open(t.path(), "../escape", OnCorrupt::Fail),
        Err(LocalError::Key(_))
    ));
}

#[test]
fn state_file_concurrent_updates_lose_nothing() {
    let t = TempDir::new().unwrap();
    let root = t.path().to_path_buf();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let root = root.clone();
            thread::spawn(move || {
                // A handle per thread: each opens its own lock file description, as separate
                // processes would.
                let st: StateFile<Counter> =
                    StateFile::open(&root, "ledger", OnCorrupt::Fail).unwrap();
                for _ in 0..50 {
                    st.update(|c| c.puts += 1).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let st: StateFile<Counter> = StateFile::open(&root, "ledger", OnCorrupt::Fail).unwrap();
    assert_eq!(st.load().unwrap().puts, 200);
}

#[test]
fn corrupt_state_fails_or_starts_fresh_as_asked() {
    let t = TempDir::new().unwrap();
    let path = t.path().join(STATE_DIR).join("cache.json");
    write_raw(&path, b"{\"puts\": 3,");

    let strict: StateFile<Counter> = StateFile::open(t.path(), "cache", OnCorrupt::Fail).unwrap();
    let err = strict.load().unwrap_err();
    assert!(matches!(err, LocalError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("cache.json"), "{err}");
    assert!(strict.update(|c| c.puts += 1).is_err());
    assert_eq!(fs::read(&path).unwrap(), b"{\"puts\": 3,", "a failed update leaves the file alone");

    let lenient: StateFile<Counter> =
        StateFile::open(t.path(), "cache", OnCorrupt::StartFresh).unwrap();
    assert_eq!(lenient.load().unwrap(), Counter::default());
    // Even an update that changes nothing replaces the corrupt file.
    lenient.update(|_| ()).unwrap();
    assert_eq!(strict.load().unwrap(), Counter::default());
}

/// Large writes give their page cache back after the fsync (`posix_fadvise`); the content
/// must be exactly what was written, read back through the store and by name, for both the
/// replacing and the create-only write, and no temp file is left.
#[test]
fn large_writes_read_back_whole_after_their_cache_is_dropped() {
    let (_dir, store) = store();
    let big: Vec<u8> = (0..3 * 1024 * 1024 + 17)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let k = key(Some("alice"), "routes", "big.gpx");
    let meta = store.put(&k, &big).unwrap();
    assert_eq!(meta.size, big.len() as u64);
    assert_eq!(store.get(&k).unwrap(), big);
    let mut other = big.clone();
    other[12345] ^= 0xff;
    store.put(&k, &other).unwrap();
    assert_eq!(fs::read(&meta.path).unwrap(), other);
    let fresh = key(Some("alice"), "routes", "big2.gpx");
    assert!(store.put_new(&fresh, &big).unwrap().is_some());
    assert!(store.put_new(&fresh, &other).unwrap().is_none());
    assert_eq!(store.get(&fresh).unwrap(), big);
    let inv = store.inventory().unwrap();
    assert!(inv.temp_files.is_empty(), "{:?}", inv.temp_files);
}
