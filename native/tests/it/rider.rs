//! `kompass scrub` and `kompass rider save|load|history`, driven through the real binary (and,
//! where the clock must be fixed, through the library), checked on disk or in the bucket.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::support;
use kompass::manager::Manager;
use kompass::rider::{Riders, save_name, stamp};
use kompass::store::local::write_new;
use kompass::store::s3::PutMode;
use kompass_core::config::Config;
use kompass_core::key::UserId;
use kompass_core::scrub::PseudonymKey;
use serde_json::Value;
use sha2::{Digest, Sha256};

const KEY: &str = "rider-test-key-0123456789abcdef-0123456789";
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/strava_export.json");
/// The fixture's athlete id and activity ids.
const ATHLETE_ID: u64 = 48_213_957;
const ACTIVITY_IDS: [&str; 3] = ["11234567891", "11234567999", "11234568123"];
/// Strings in the fixture that identify or locate the rider: none may be stored.
const PII: &[&str] = &[
    "Amélie",
    "Am\\u00e9lie",
    "Rousseau-Kestrel",
    "amelie_climbs",
    "amelie.rousseau@example.org",
    "Annecy",
    "Talloires",
    "Haute-Savoie",
    "France",
    "45.899247",
    "6.129384",
    "45.840631",
    "6.221957",
    "45.902114",
    "}_p~iF~ps|U_ulLnnqC_mqNvxq`@",
    "mxstGkbse@zAcHbEoNfCsR",
    "cloudfront",
    "3f2a9c1e-6b7d-4e0a-9d4c-5a1b2c3d4e5f",
    "Canyon",
    "b9817263",
    "Pegasus",
    "Garmin Edge 830",
    "garmin_push",
    "Europe/Paris",
    "Col de la Forclaz",
    "Julien",
    "4f1e8a97b2c3d4e5f60718293a4b5c6d7e8f9012",
    "2024-05-01T06:30:12",
];

/// A user id no other test (or earlier run against the same bucket) uses.
fn unique_user(test: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("rider-{test}-{}-{nanos}", std::process::id())
}

fn fixture() -> Vec<u8> {
    std::fs::read(FIXTURE).unwrap()
}

/// The fixture with its first activity's distance set to `distance`, to tell saves apart.
fn fixture_with_distance(distance: f64) -> Vec<u8> {
    let mut doc: Value = serde_json::from_slice(&fixture()).unwrap();
    doc["activities"][0]["distance"] = distance.into();
    serde_json::to_vec(&doc).unwrap()
}

/// The binary with a clean environment (no stray .env, no S3 unless given) and `vars`.
fn kompass(data_dir: &Path, vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kompass"));
    cmd.env_clear()
        .current_dir(data_dir.parent().unwrap())
        .arg("--data-dir")
        .arg(data_dir)
        .env("S3_STORAGE_ENABLED", "false")
        .envs(vars.iter().copied())
        .stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("the kompass binary runs")
}

fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    use std::io::Write;
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn stdout_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "kompass failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout))
    })
}

/// Every regular file below `dir` (none when it does not exist).
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_below(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn fitness_dir(data_dir: &Path, user: &str) -> PathBuf {
    data_dir.join("fitness").join(user)
}

fn fitness_files(data_dir: &Path, user: &str) -> BTreeMap<String, Vec<u8>> {
    files_below(&fitness_dir(data_dir, user))
        .into_iter()
        .map(|p| {
            (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap())
        })
        .collect()
}

fn local_config(data_dir: &Path) -> Config {
    let vars: BTreeMap<String, String> = [
        ("DATA_DIRECTORY", data_dir.to_str().unwrap()),
        ("S3_STORAGE_ENABLED", "false"),
        ("KOMPASS_PSEUDONYM_KEY", KEY),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    Config::from_env_map(&vars).unwrap()
}

fn pseudonym_key() -> PseudonymKey {
    PseudonymKey::new("k1", KEY.as_bytes()).unwrap()
}

/// Checks a stored rider document: no PII, metrics kept, pseudonym and anonymization block.
fn assert_scrubbed(stored: &[u8], input: &[u8]) {
    let text = String::from_utf8(stored.to_vec()).unwrap();
    let input_text = String::from_utf8_lossy(input);
    for s in PII {
        // The fixture really holds it (else this check could not fail).
        assert!(input_text.contains(s) || s.contains("\\u"), "fixture lacks {s:?}");
        assert!(!text.contains(s), "{s:?} was stored: {text}");
    }
    assert!(!text.contains(&ATHLETE_ID.to_string()), "the raw athlete id was stored");
    for id in ACTIVITY_IDS {
        assert!(!text.contains(id), "raw activity id {id} was stored");
    }
    let doc: Value = serde_json::from_str(&text).unwrap();
    let a = &doc["activities"][0];
    assert_eq!(a["distance"], serde_json::json!(52345.6));
    assert_eq!(a["average_watts"], serde_json::json!(212.4));
    assert_eq!(a["weighted_average_watts"], serde_json::json!(231));
    assert_eq!(a["max_watts"], serde_json::json!(689));
    assert_eq!(a["streams"]["watts"]["data"], serde_json::json!([180, 215, 242, 198]));
    assert_eq!(doc["activities"].as_array().unwrap().len(), 3);
    let user_hash = doc["basic_info"]["user_hash"].as_str().expect("a user_hash");
    assert_eq!(user_hash, pseudonym_key().athlete_pseudonym(ATHLETE_ID));
    let plain = hex::encode(Sha256::digest(ATHLETE_ID.to_string().as_bytes()));
    assert!(!user_hash.contains(&plain), "a plain hash of the id is reversible");
    assert_eq!(doc["anonymization"]["pii_removed"], Value::Bool(true));
    assert_eq!(doc["anonymization"]["key_id"], "k1");
}

// ------------------------------------------------------------------- rider save (local)

#[test]
fn rider_save_without_the_pseudonym_key_fails_and_stores_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = run(kompass(&data, &[]).args(["rider", "save", "--user", "amelie", FIXTURE]));
    assert_eq!(out.status.code(), Some(2), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("KOMPASS_PSEUDONYM_KEY"), "the message names the variable: {err}");
    assert!(out.stdout.is_empty());
    assert!(files_below(&data).is_empty(), "nothing may be stored: {:?}", files_below(&data));

    // A key too short to resist guessing is refused the same way.
    let out = run(kompass(&data, &[("KOMPASS_PSEUDONYM_KEY", "short")])
        .args(["rider", "save", "--user", "amelie", FIXTURE]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("KOMPASS_PSEUDONYM_KEY"));
    assert!(files_below(&data).is_empty());
}

#[test]
fn rider_save_stores_the_scrubbed_document_under_a_timestamped_name() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    let out = run(kompass(&data, &[("KOMPASS_PSEUDONYM_KEY", KEY)])
        .args(["--json", "rider", "save", "--user", "amelie", FIXTURE]));
    let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    let saved = stdout_json(&out);
    let name = saved["name"].as_str().unwrap();
    assert!(
        [stamp(before), stamp(after)].iter().any(|s| name == save_name(s, 1)),
        "{name} is not fitness_data_{{UTC second of the save}}.json"
    );
    assert_eq!(saved["backend"], "local");
    assert_eq!(saved["key"], format!("users/amelie/fitness/{name}"));
    assert_eq!(saved["activity_count"], 3);
    assert_eq!(saved["has_power_data"], true);
    assert_eq!(saved["completeness"], 1.0);
    assert_eq!(saved["user_hash"], pseudonym_key().athlete_pseudonym(ATHLETE_ID));

    // Read back from disk, not through kompass.
    let files = fitness_files(&data, "amelie");
    assert_eq!(files.keys().collect::<Vec<_>>(), vec![name]);
    let stored = &files[name];
    assert_eq!(saved["bytes"], stored.len());
    assert_scrubbed(stored, &fixture());

    // Standard input works too, with the same pseudonyms (same key).
    let out = run_with_stdin(
        kompass(&data, &[("KOMPASS_PSEUDONYM_KEY", KEY)])
            .args(["--json", "rider", "save", "--user", "amelie", "-"]),
        &fixture(),
    );
    let second = stdout_json(&out);
    assert_ne!(second["name"], saved["name"]);
    let files = fitness_files(&data, "amelie");
    assert_eq!(files.len(), 2);
    assert_eq!(files[second["name"].as_str().unwrap()], *stored);
}

#[test]
fn rider_save_of_input_that_is_not_json_stores_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = run_with_stdin(
        kompass(&data, &[("KOMPASS_PSEUDONYM_KEY", KEY)])
            .args(["rider", "save", "--user", "amelie", "-"]),
        b"athlete: Amelie, Annecy",
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not valid JSON") && err.contains("nothing was stored"), "{err}");
    assert!(out.stdout.is_empty());
    assert!(files_below(&fitness_dir(&data, "amelie")).is_empty());
}

#[tokio::test]
async fn saves_in_the_same_second_never_overwrite_each_other() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let m = Manager::open(local_config(&data)).unwrap();
    let riders = Riders::new(&m).unwrap();
    let user = UserId::new("amelie").unwrap();
    let now = 1_714_545_000_250; // 2024-05-01T06:30:00.250Z
    let first =
        riders.save(&user, &fixture_with_distance(1001.0), &pseudonym_key(), now).await.unwrap();
    let second = riders
        .save(&user, &fixture_with_distance(1002.0), &pseudonym_key(), now + 500)
        .await
        .unwrap();
    assert_eq!(first.name, "fitness_data_20240501_063000.json");
    assert_eq!(second.name, "fitness_data_20240501_063000_2.json");
    assert_eq!(first.saved_at, "2024-05-01T06:30:00Z");
    assert_eq!(second.saved_at, first.saved_at);

    // Another writer took the next name meanwhile: it is left alone.
    let other = fitness_dir(&data, "amelie").join("fitness_data_20240501_063000_3.json");
    std::fs::write(&other, b"{\"written_by\":\"another process\"}").unwrap();
    let third =
        riders.save(&user, &fixture_with_distance(1003.0), &pseudonym_key(), now).await.unwrap();
    assert_eq!(third.name, "fitness_data_20240501_063000_4.json");

    let files = fitness_files(&data, "amelie");
    assert_eq!(files.len(), 4);
    assert_eq!(
        files["fitness_data_20240501_063000_3.json"],
        b"{\"written_by\":\"another process\"}"
    );
    for (name, distance) in [(&first.name, 1001.0), (&second.name, 1002.0), (&third.name, 1003.0)] {
        let doc: Value = serde_json::from_slice(&files[name.as_str()]).unwrap();
        assert_eq!(doc["activities"][0]["distance"], serde_json::json!(distance), "{name}");
    }
    // No temp files are left behind.
    assert!(files.keys().all(|n| n.starts_with("fitness_data_")), "{:?}", files.keys());
}

#[test]
fn concurrent_cli_saves_all_survive() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let n = 4;
    let inputs: Vec<PathBuf> = (0..n)
        .map(|i| {
            let p = tmp.path().join(format!("input-{i}.json"));
            std::fs::write(&p, fixture_with_distance(2000.0 + f64::from(i))).unwrap();
            p
        })
        .collect();
    let children: Vec<_> = inputs
        .iter()
        .map(|p| {
            kompass(&data, &[("KOMPASS_PSEUDONYM_KEY", KEY)])
                .args(["--json", "rider", "save", "--user", "amelie"])
                .arg(p)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        stdout_json(&c.wait_with_output().unwrap());
    }
    let files = fitness_files(&data, "amelie");
    assert_eq!(files.len(), n as usize, "{:?}", files.keys());
    let mut distances: Vec<f64> = files
        .values()
        .map(|b| {
            serde_json::from_slice::<Value>(b).unwrap()["activities"][0]["distance"]
                .as_f64()
                .unwrap()
        })
        .collect();
    distances.sort_by(f64::total_cmp);
    assert_eq!(distances, (0..n).map(|i| 2000.0 + f64::from(i)).collect::<Vec<_>>());
}

#[test]
fn write_new_never_replaces_an_existing_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("taken.json");
    assert!(write_new(&path, b"first").unwrap());
    assert!(!write_new(&path, b"second").unwrap());
    assert_eq!(std::fs::read(&path).unwrap(), b"first");
    // A directory of that name counts as taken, and no temp file is left either way.
    std::fs::create_dir(tmp.path().join("dir.json")).unwrap();
    assert!(!write_new(&tmp.path().join("dir.json"), b"x").unwrap());
    let mut names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["dir.json", "taken.json"]);
}

// ------------------------------------------------------------------- history and load (local)

/// Three saves at known times: a full export, activities without power, and a bare athlete.
async fn three_saves(data: &Path, user: &str) -> [String; 3] {
    let m = Manager::open(local_config(data)).unwrap();
    let riders = Riders::new(&m).unwrap();
    let user = UserId::new(user).unwrap();
    let key = pseudonym_key();
    let full = riders.save(&user, &fixture(), &key, 1_714_545_000_000).await.unwrap();
    let runs = br#"{"activities":[{"id":1,"type":"Run","distance":5000.0,"average_heartrate":140},
        {"id":2,"type":"Run","distance":6000.0,"average_watts":0}]}"#;
    let no_power = riders.save(&user, runs, &key, 1_714_631_400_000).await.unwrap();
    let athlete = riders
        .save(&user, br#"{"athlete":{"id":7,"ftp":200,"firstname":"X"}}"#, &key, 1_714_717_800_000)
        .await
        .unwrap();
    [full.name, no_power.name, athlete.name]
}

#[tokio::test]
async fn history_lists_every_save_newest_first_with_its_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let [full, no_power, athlete] = three_saves(&data, "amelie").await;
    let history = || {
        stdout_json(&run(
            kompass(&data, &[]).args(["--json", "rider", "history", "--user", "amelie"])
        ))
    };
    let h = history();
    let entries = h.as_array().unwrap();
    let names: Vec<&str> = entries.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, [athlete.as_str(), no_power.as_str(), full.as_str()]);
    let saved_at: Vec<&str> = entries.iter().map(|e| e["saved_at"].as_str().unwrap()).collect();
    assert_eq!(saved_at, ["2024-05-03T06:30:00Z", "2024-05-02T06:30:00Z", "2024-05-01T06:30:00Z"]);
    let files = fitness_files(&data, "amelie");
    for e in entries {
        assert_eq!(e["size"], files[e["name"].as_str().unwrap()].len(), "{e}");
        assert_eq!(e["backend"], "local");
        assert_eq!(e["pii_removed"], true);
    }
    let summary = |e: &Value| {
        (
            e["activity_count"].clone(),
            e["has_power_data"].clone(),
            e["completeness"].as_f64().unwrap(),
        )
    };
    assert_eq!(summary(&entries[2]), (3.into(), true.into(), 1.0));
    assert_eq!(summary(&entries[1]), (2.into(), false.into(), 0.25));
    assert_eq!(summary(&entries[0]), (0.into(), false.into(), 0.25));
    assert_eq!(entries[0]["sections"], serde_json::json!(["athlete"]));

    // A second call answers the same (from the summary cache) ...
    assert_eq!(history(), h);
    // ... until a file changes: then its summary is computed again.
    let path = fitness_dir(&data, "amelie").join(&no_power);
    std::fs::write(
        &path,
        br#"{"activities":[{"max_watts":300}],"stats":{"all_ride_totals":{"count":1}}}"#,
    )
    .unwrap();
    let h = history();
    let changed = &h.as_array().unwrap()[1];
    assert_eq!(summary(changed), (1.into(), true.into(), 0.5));
    assert_eq!(changed["pii_removed"], false, "that file was not written by the scrubber");
    // A deleted file leaves the history.
    std::fs::remove_file(fitness_dir(&data, "amelie").join(&athlete)).unwrap();
    assert_eq!(history().as_array().unwrap().len(), 2);

    // Text for people names each save.
    let out = run(kompass(&data, &[]).args(["rider", "history", "--user", "amelie"]));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(&full) && text.contains("100% complete"), "{text}");
}

#[test]
fn history_of_a_user_without_saves_is_empty_and_a_file_that_is_not_json_is_flagged() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let h = stdout_json(&run(
        kompass(&data, &[]).args(["--json", "rider", "history", "--user", "nobody"])
    ));
    assert_eq!(h, serde_json::json!([]));
    std::fs::create_dir_all(fitness_dir(&data, "amelie")).unwrap();
    std::fs::write(fitness_dir(&data, "amelie").join("notes.json"), b"not json").unwrap();
    let h = stdout_json(&run(
        kompass(&data, &[]).args(["--json", "rider", "history", "--user", "amelie"])
    ));
    assert_eq!(h[0]["name"], "notes.json");
    assert_eq!(h[0]["activity_count"], 0);
    assert!(h[0]["problem"].as_str().unwrap().contains("not a rider document"), "{h}");
}

#[tokio::test]
async fn load_gives_the_newest_save_or_the_one_named() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let [full, _, athlete] = three_saves(&data, "amelie").await;
    let files = fitness_files(&data, "amelie");
    let out = run(kompass(&data, &[]).args(["rider", "load", "--user", "amelie"]));
    assert!(out.status.success());
    assert_eq!(out.stdout, files[&athlete]);
    let out = run(kompass(&data, &[]).args(["rider", "load", "--user", "amelie", "--name", &full]));
    assert_eq!(out.stdout, files[&full]);

    let out = run(kompass(&data, &[]).args([
        "rider",
        "load",
        "--user",
        "amelie",
        "--name",
        "fitness_data_19990101_000000.json",
    ]));
    assert_eq!(out.status.code(), Some(4));
    assert!(out.stdout.is_empty());
    let out = run(kompass(&data, &[]).args(["rider", "load", "--user", "nobody"]));
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("kompass rider save --user nobody"));
    let out =
        run(kompass(&data, &[]).args(["rider", "load", "--user", "amelie", "--name", "../x.json"]));
    assert_eq!(out.status.code(), Some(2), "a name that escapes its folder is refused");
}

#[tokio::test]
async fn newest_of_many_saves_in_one_second_is_the_highest_suffix() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let m = Manager::open(local_config(&data)).unwrap();
    let riders = Riders::new(&m).unwrap();
    let user = UserId::new("amelie").unwrap();
    let now = 1_714_545_000_000;
    // One save a second earlier, then eleven in the same second (`_10` sorts before `_2` as text).
    riders.save(&user, &fixture_with_distance(1.0), &pseudonym_key(), now - 1000).await.unwrap();
    for i in 0..11 {
        riders
            .save(&user, &fixture_with_distance(100.0 + f64::from(i)), &pseudonym_key(), now)
            .await
            .unwrap();
    }
    let loaded = riders.load(&user, None).await.unwrap();
    assert_eq!(loaded.name, "fitness_data_20240501_063000_11.json");
    let doc: Value = serde_json::from_slice(&loaded.bytes).unwrap();
    assert_eq!(doc["activities"][0]["distance"], serde_json::json!(110.0));
    let names: Vec<String> =
        riders.saves(&user).await.unwrap().into_iter().map(|s| s.listed.name).collect();
    assert_eq!(names.len(), 12);
    assert_eq!(names[1], "fitness_data_20240501_063000_10.json");
    assert_eq!(names[10], "fitness_data_20240501_063000.json");
    assert_eq!(names[11], "fitness_data_20240501_062959.json");
}

// ------------------------------------------------------------------- kompass scrub

#[test]
fn scrub_report_lists_the_removed_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let input: Value = serde_json::from_slice(&fixture()).unwrap();
    let out =
        run(kompass(&data, &[("KOMPASS_PSEUDONYM_KEY", KEY)]).args(["scrub", "--report", FIXTURE]));
    let document = stdout_json(&out);
    assert_scrubbed(&out.stdout, &fixture());
    let err = String::from_utf8(out.stderr).unwrap();
    let listed: Vec<&str> = err.lines().filter_map(|l| l.strip_prefix("  ")).collect();
    for p in [
        "/basic_info/firstname",
        "/basic_info/lastname",
        "/basic_info/email",
        "/basic_info/city",
        "/activities/0/name",
        "/activities/0/start_latlng",
        "/activities/0/end_latlng",
        "/activities/0/map",
        "/activities/0/photos",
        "/activities/0/gear",
        "/activities/0/device_name",
        "/activities/0/streams/latlng",
    ] {
        assert!(listed.contains(&p), "{p} not reported: {err}");
    }
    // Every reported path is in the input and gone from the output.
    for p in &listed {
        assert!(input.pointer(p).is_some(), "{p} is not a path of the input");
        assert!(document.pointer(p).is_none() || p.ends_with("/id"), "{p} is still in the output");
    }
    assert!(
        err.lines().next().unwrap().contains(&format!("removed {} paths", listed.len())),
        "{err}"
    );
    // Nothing is stored by scrubbing.
    assert!(files_below(&data).is_empty());

    // With --json: {document, report}, the same document and paths.
    let out = run(kompass(&data, &[("KOMPASS_PSEUDONYM_KEY", KEY)])
        .args(["--json", "scrub", "--report", FIXTURE]));
    let both = stdout_json(&out);
    assert_eq!(both["document"], document);
    let removed: Vec<&str> =
        both["report"]["removed"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(removed, listed);
    assert_eq!(both["report"]["removed_count"], listed.len());
    assert_eq!(both["report"]["user_hash"], pseudonym_key().athlete_pseudonym(ATHLETE_ID));

    // Without --report: the document alone, nothing on stderr.
    let out = run(kompass(&data, &[("KOMPASS_PSEUDONYM_KEY", KEY)]).args(["scrub", FIXTURE]));
    assert_eq!(stdout_json(&out), document);
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn scrub_of_input_that_is_not_json_fails_with_exit_2_and_prints_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    for (input, expect) in [
        (&b"firstname: Amelie\ncity: Annecy\n"[..], "not valid JSON"),
        (&b"{\"basic_info\": {\"firstname\": \"Amelie\""[..], "not valid JSON"),
        (&b"42"[..], "not a rider document"),
        (&b"\xff\xfe{}"[..], "not UTF-8"),
    ] {
        for json in [false, true] {
            let mut cmd = kompass(&data, &[("KOMPASS_PSEUDONYM_KEY", KEY)]);
            if json {
                cmd.arg("--json");
            }
            let out = run_with_stdin(cmd.args(["scrub", "--report", "-"]), input);
            assert_eq!(out.status.code(), Some(2), "{input:?}");
            assert!(out.stdout.is_empty(), "stdout: {}", String::from_utf8_lossy(&out.stdout));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains(expect), "{input:?}: {err}");
            assert!(
                !err.contains("Amelie") && !err.contains("Annecy"),
                "the error repeats the input: {err}"
            );
        }
    }
    // A file that does not exist.
    let out = run(kompass(&data, &[("KOMPASS_PSEUDONYM_KEY", KEY)])
        .args(["scrub", "/nonexistent/export.json"]));
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/export.json"));
}

#[test]
fn scrub_without_a_key_drops_the_ids_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = run(kompass(&data, &[]).args(["scrub", FIXTURE]));
    let doc = stdout_json(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("KOMPASS_PSEUDONYM_KEY is not set"));
    assert!(doc["anonymization"]["key_id"].is_null());
    assert_eq!(doc["anonymization"]["pseudonym"], "none");
    assert!(doc["basic_info"].get("user_hash").is_none());
    assert!(doc["basic_info"].get("id").is_none());
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    for s in PII {
        assert!(!text.contains(s), "{s:?} survived");
    }
    assert_eq!(doc["activities"][0]["average_watts"], serde_json::json!(212.4));
    // Nothing random: the same input gives the same output.
    let again = run(kompass(&data, &[]).args(["scrub", FIXTURE]));
    assert_eq!(out.stdout, again.stdout);
}

// ------------------------------------------------------------------- against SeaweedFS

fn s3_vars(env: &support::S3Env) -> Vec<(&'static str, String)> {
    vec![
        ("S3_STORAGE_ENABLED", "true".to_owned()),
        ("AWS_ENDPOINT_URL", env.endpoint.clone()),
        ("AWS_REGION", env.region.clone()),
        ("AWS_S3_BUCKET", env.bucket.clone()),
        ("AWS_ACCESS_KEY_ID", env.access_key_id.clone()),
        ("AWS_SECRET_ACCESS_KEY", env.secret_access_key.clone()),
        ("KOMPASS_PSEUDONYM_KEY", KEY.to_owned()),
    ]
}

#[tokio::test]
async fn s3_rider_save_scrubs_names_uniquely_and_history_reads_the_bucket() {
    let Some(env) =
        support::s3_env("s3_rider_save_scrubs_names_uniquely_and_history_reads_the_bucket")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let user = unique_user("s3");
    let vars = s3_vars(&env);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let s3 = env.store();
    let prefix = format!("users/{user}/fitness/");

    // Through the binary: stored in the bucket, scrubbed (read from the bucket directly).
    let saved = stdout_json(&run(
        kompass(&data, &vars).args(["--json", "rider", "save", "--user", &user, FIXTURE])
    ));
    assert_eq!(saved["backend"], "s3");
    let key = saved["key"].as_str().unwrap();
    assert!(key.starts_with(&prefix), "{key}");
    assert_scrubbed(&s3.get(key).await.unwrap(), &fixture());
    assert!(files_below(&data.join("fitness")).is_empty(), "no local copy when S3 took it");

    // Through the library with a fixed clock: two saves in one second, two objects.
    let map: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .chain([("DATA_DIRECTORY".to_owned(), data.display().to_string())])
        .collect();
    let m = Manager::open(Config::from_env_map(&map).unwrap()).unwrap();
    let riders = Riders::new(&m).unwrap();
    let uid = UserId::new(&user).unwrap();
    let now = 1_714_545_000_000;
    let a = riders.save(&uid, &fixture_with_distance(1.0), &pseudonym_key(), now).await.unwrap();
    let b = riders.save(&uid, &fixture_with_distance(2.0), &pseudonym_key(), now).await.unwrap();
    assert_eq!(
        (a.name.as_str(), b.name.as_str()),
        ("fitness_data_20240501_063000.json", "fitness_data_20240501_063000_2.json")
    );

    // Another writer puts the next second's name into the bucket behind this installation's
    // inventory cache: the create-only PUT refuses to replace it, and the save moves on.
    let theirs = format!("{prefix}fitness_data_20240501_063001.json");
    let body = b"{\"written_by\":\"another installation\"}".to_vec();
    s3.put(&theirs, body.clone(), Sha256::digest(&body).into(), PutMode::CreateOnly).await.unwrap();
    let c =
        riders.save(&uid, &fixture_with_distance(3.0), &pseudonym_key(), now + 1000).await.unwrap();
    assert_eq!(c.name, "fitness_data_20240501_063001_2.json");
    assert_eq!(s3.get(&theirs).await.unwrap(), body, "the other writer's object was replaced");
    for (r, distance) in [(&a, 1.0), (&b, 2.0), (&c, 3.0)] {
        let doc: Value = serde_json::from_slice(&s3.get(&r.outcome.key).await.unwrap()).unwrap();
        assert_eq!(doc["activities"][0]["distance"], serde_json::json!(distance));
    }

    // History through the binary matches the bucket's listing.
    let mut listed: Vec<(String, u64)> =
        s3.list(&prefix).await.unwrap().into_iter().map(|o| (o.key, o.size)).collect();
    listed.sort();
    let h = stdout_json(&run(
        kompass(&data, &vars).args(["--json", "rider", "history", "--user", &user])
    ));
    let mut from_history: Vec<(String, u64)> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["backend"], "s3");
            (e["key"].as_str().unwrap().to_owned(), e["size"].as_u64().unwrap())
        })
        .collect();
    from_history.sort();
    assert_eq!(from_history, listed);
    assert_eq!(h[0]["name"], saved["name"], "the CLI save (now) is the newest");
    let other = h.as_array().unwrap().iter().find(|e| e["key"] == theirs).unwrap();
    assert_eq!(
        (other["activity_count"].as_u64(), other["pii_removed"].as_bool()),
        (Some(0), Some(false))
    );

    // Summaries are cached: asking again costs one LIST and no GET.
    let ledger = || Manager::open(Config::from_env_map(&map).unwrap()).unwrap().ledger().unwrap();
    let before = ledger();
    let again = stdout_json(&run(
        kompass(&data, &vars).args(["--json", "rider", "history", "--user", &user])
    ));
    assert_eq!(again, h);
    let after = ledger();
    assert_eq!(after.get_class, before.get_class, "history fetched files whose summary was cached");
    assert_eq!(after.put_class, before.put_class + 1, "history should cost exactly one LIST");

    // Load without a name: the newest, from the bucket.
    let out = run(kompass(&data, &vars).args(["rider", "load", "--user", &user]));
    assert_eq!(out.stdout, s3.get(key).await.unwrap());

    for (k, _) in listed {
        s3.delete(&k).await.unwrap();
    }
}

// ------------------------------------------------- smuggled pseudonyms (the scrub policy)

/// The fixture with pseudonym-shaped values that smuggle free text in the key id, or an
/// unkeyed hash of the athlete id (under a foreign key id and under ours), plus account
/// metadata the policy drops.
fn smuggling_fixture() -> (Vec<u8>, String) {
    let mut doc: Value = serde_json::from_slice(&fixture()).unwrap();
    let unkeyed = hex::encode(Sha256::digest(ATHLETE_ID.to_string().as_bytes()));
    doc["basic_info"]["user_hash"] = format!("Jane.Doe_SW1A-2AA_born-1984-02-03:{unkeyed}").into();
    doc["basic_info"]["measurement_preference"] = "meters".into();
    doc["basic_info"]["date_preference"] = "%m/%d/%Y".into();
    doc["activities"][0]["activity_hash"] = format!("Home-51.5007N-0.1246W:{unkeyed}").into();
    doc["activities"][1]["activity_hash"] = format!("not-k1:{unkeyed}").into();
    (serde_json::to_vec(&doc).unwrap(), unkeyed)
}

fn assert_no_smuggled(stored: &[u8], unkeyed: &str) {
    let text = String::from_utf8_lossy(stored);
    for leak in
        ["Jane", "SW1A", "Home-51", "not-k1", unkeyed, "measurement_preference", "date_preference"]
    {
        assert!(!text.contains(leak), "{leak} kept: {text}");
    }
}

#[test]
fn scrub_and_rider_save_drop_smuggled_pseudonyms_and_account_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (input, unkeyed) = smuggling_fixture();
    let key = [("KOMPASS_PSEUDONYM_KEY", KEY)];

    // kompass scrub: dropped and reported, the document labelled with the real key id.
    let out = stdout_json(&run_with_stdin(
        kompass(&data, &key).args(["--json", "scrub", "--report", "-"]),
        &input,
    ));
    let document = out["document"].to_string();
    assert_no_smuggled(document.as_bytes(), &unkeyed);
    let removed: Vec<&str> =
        out["report"]["removed"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    for p in [
        "/basic_info/user_hash",
        "/basic_info/measurement_preference",
        "/basic_info/date_preference",
        "/activities/0/activity_hash",
        "/activities/1/activity_hash",
    ] {
        assert!(removed.contains(&p), "{p} not reported: {removed:?}");
    }
    // The real id still gives the keyed pseudonym (the smuggled one was dropped, not kept).
    assert_eq!(
        out["document"]["basic_info"]["user_hash"],
        pseudonym_key().athlete_pseudonym(ATHLETE_ID)
    );
    assert_eq!(out["report"]["key_id"], "k1");

    // Keyless: every pseudonym-shaped value is dropped, ours included.
    let keyed = out["document"].to_string();
    let keyless = stdout_json(&run_with_stdin(
        kompass(&data, &[]).args(["--json", "scrub", "--report", "-"]),
        keyed.as_bytes(),
    ));
    assert!(!keyless["document"].to_string().contains("k1:"), "{keyless}");
    assert!(
        keyless["report"]["removed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "/basic_info/user_hash")
    );

    // kompass rider save: stored without them.
    let saved = stdout_json(&run_with_stdin(
        kompass(&data, &key).args(["--json", "rider", "save", "--user", "amelie", "-"]),
        &input,
    ));
    let files = fitness_files(&data, "amelie");
    let stored = &files[saved["name"].as_str().unwrap()];
    assert_no_smuggled(stored, &unkeyed);
    assert_scrubbed(stored, &input);
}

#[tokio::test]
async fn s3_rider_save_drops_smuggled_pseudonyms() {
    let Some(env) = support::s3_env("s3_rider_save_drops_smuggled_pseudonyms") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let user = unique_user("s3-smuggle");
    let vars = s3_vars(&env);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (input, unkeyed) = smuggling_fixture();
    let saved = stdout_json(&run_with_stdin(
        kompass(&data, &vars).args(["--json", "rider", "save", "--user", &user, "-"]),
        &input,
    ));
    assert_eq!(saved["backend"], "s3");
    let key = saved["key"].as_str().unwrap();
    let s3 = env.store();
    let stored = s3.get(key).await.unwrap();
    assert_no_smuggled(&stored, &unkeyed);
    assert_scrubbed(&stored, &input);
    s3.delete(key).await.unwrap();
}

// ------------------------------------------------------------- kompass scrub --audit

fn audit(data: &Path, vars: &[(&str, &str)], extra: &[&str]) -> Value {
    let mut args = vec!["--json", "scrub", "--audit"];
    args.extend_from_slice(extra);
    stdout_json(&run(kompass(data, vars).args(&args)))
}

fn finding<'a>(report: &'a Value, key: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == key)
        .unwrap_or_else(|| panic!("no finding for {key}: {report}"))
}

#[test]
fn scrub_audit_lists_what_the_policy_would_change_and_fix_rescrubs_it_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let key = [("KOMPASS_PSEUDONYM_KEY", KEY)];
    let (smuggled, unkeyed) = smuggling_fixture();
    // Already on disk from before the policy (the byte store, which now refuses them, or the
    // original app): a raw export, a document with smuggled pseudonyms, and bytes that are not
    // rider data; and one stored by rider save.
    let save = |name: &str, bytes: &[u8]| {
        let refused = run_with_stdin(
            kompass(&data, &key)
                .args(["save", "--user", "amelie", "--type", "fitness", "--name", name, "-"]),
            bytes,
        );
        assert_eq!(
            refused.status.code(),
            Some(2),
            "the byte store stores no unscrubbed rider data"
        );
        let path = data.join("fitness/amelie").join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    };
    save("raw.json", &fixture());
    save("smuggled.json", &smuggled);
    save("junk.json", b"athlete: Amelie, Annecy");
    let clean = stdout_json(&run(
        kompass(&data, &key).args(["--json", "rider", "save", "--user", "amelie", FIXTURE])
    ));
    let clean_name = clean["name"].as_str().unwrap().to_owned();
    let before = fitness_files(&data, "amelie");

    // The audit lists, and changes nothing.
    let r = audit(&data, &key, &[]);
    assert_eq!((r["checked"].as_u64(), r["clean"].as_u64()), (Some(4), Some(1)), "{r}");
    assert_eq!(r["key_id"], "k1");
    let raw = finding(&r, "users/amelie/fitness/raw.json");
    assert_eq!(raw["action"], "listed");
    assert!(
        raw["removed"].as_array().unwrap().iter().any(|p| p == "/basic_info/firstname"),
        "{raw}"
    );
    let sm = finding(&r, "users/amelie/fitness/smuggled.json");
    assert!(sm["removed"].as_array().unwrap().iter().any(|p| p == "/basic_info/user_hash"), "{sm}");
    assert_eq!(finding(&r, "users/amelie/fitness/junk.json")["action"], "cannot_scrub");
    assert_eq!(fitness_files(&data, "amelie"), before);
    // Another user's data is not this user's audit.
    assert_eq!(audit(&data, &key, &["--user", "bob"])["checked"], 0);

    // Dry run first: the plan, nothing written.
    let r = audit(&data, &key, &["--fix", "--dry-run"]);
    assert_eq!(finding(&r, "users/amelie/fitness/raw.json")["action"], "would_fix");
    assert_eq!((r["fixed"].as_u64(), r["dry_run"].as_bool()), (Some(0), Some(true)));
    assert_eq!(fitness_files(&data, "amelie"), before);

    // Fixed in place through the manager's save.
    let r = audit(&data, &key, &["--fix"]);
    assert_eq!(r["fixed"], 2, "{r}");
    let after = fitness_files(&data, "amelie");
    assert_scrubbed(&after["raw.json"], &fixture());
    assert_no_smuggled(&after["smuggled.json"], &unkeyed);
    assert_eq!(after[&clean_name], before[&clean_name], "clean data is left as it is");
    assert_eq!(after["junk.json"], before["junk.json"], "what cannot be scrubbed is only reported");
    let r = audit(&data, &key, &[]);
    assert_eq!((r["clean"].as_u64(), r["findings"].as_array().unwrap().len()), (Some(3), 1), "{r}");

    // Without the key there is nothing to audit against.
    let out = run(kompass(&data, &[]).args(["scrub", "--audit"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("KOMPASS_PSEUDONYM_KEY"));
    // --dry-run goes with --fix.
    assert_eq!(
        run(kompass(&data, &key).args(["scrub", "--audit", "--dry-run"])).status.code(),
        Some(2)
    );
}

#[tokio::test]
async fn s3_scrub_audit_fixes_raw_rider_data_in_the_bucket() {
    let Some(env) = support::s3_env("s3_scrub_audit_fixes_raw_rider_data_in_the_bucket") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let user = unique_user("s3-audit");
    let vars = s3_vars(&env);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // The byte store refuses a raw export; one already in the bucket (from before the policy)
    // is what the audit is for.
    let out = run_with_stdin(
        kompass(&data, &vars).args([
            "--json", "save", "--user", &user, "--type", "fitness", "--name", "raw.json", "-",
        ]),
        &fixture(),
    );
    assert_eq!(out.status.code(), Some(2));
    let key = format!("users/{user}/fitness/raw.json");
    let s3 = env.store();
    assert!(s3.list(&format!("users/{user}/")).await.unwrap().is_empty(), "nothing stored");
    let raw = fixture();
    s3.put(&key, raw.clone(), Sha256::digest(&raw).into(), PutMode::Overwrite).await.unwrap();
    assert_eq!(s3.get(&key).await.unwrap(), fixture(), "stored raw before the policy");

    let r = audit(&data, &vars, &["--user", &user]);
    assert_eq!(finding(&r, &key)["backend"], "s3");
    assert_eq!(s3.get(&key).await.unwrap(), fixture(), "the audit alone changes nothing");
    let r = audit(&data, &vars, &["--user", &user, "--fix"]);
    assert_eq!(r["fixed"], 1, "{r}");
    assert_scrubbed(&s3.get(&key).await.unwrap(), &fixture());
    assert_eq!(audit(&data, &vars, &["--user", &user])["clean"], 1);
    s3.delete(&key).await.unwrap();

    // No presigned URL for rider data from the CLI either (the core's presigner refuses).
    let sha = hex::encode(Sha256::digest(b"{}"));
    let out = run(kompass(&data, &vars).args([
        "presign", "--user", &user, "--type", "fitness", "--name", "a.json", "--size", "2",
        "--sha256", &sha,
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stderr).contains("POST /api/rider"));
    assert!(out.stdout.is_empty());
}
