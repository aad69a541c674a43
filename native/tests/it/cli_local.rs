//! The `kompass` binary with local storage only (S3_STORAGE_ENABLED unset), on a temp data
//! directory; every result is checked on the filesystem as well as through the CLI.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use crate::support::cli::{
    Kompass, TEST_PSEUDONYM_KEY_ID, files_under, payload, scrubbed_fitness_payload,
};
use serde_json::Value;

const KIB: u64 = 1024;

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn set_mtime(path: &Path, unix_ms: u64) {
    let f = File::options().write(true).open(path).unwrap();
    f.set_modified(UNIX_EPOCH + Duration::from_millis(unix_ms)).unwrap();
}

/// Names from a JSON list, in order.
fn names(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn save_list_load_delete_round_trip() {
    let k = Kompass::new();
    let body = br#"{"route":"Col de la Madeleine","km":19.2}"#;
    let src = k.root().join("ride.json");
    std::fs::write(&src, body).unwrap();

    let saved = k
        .run(&[
            "--json",
            "save",
            "--user",
            "alice",
            "--type",
            "routes",
            "--name",
            "ride.json",
            src.to_str().unwrap(),
        ])
        .ok()
        .json();
    assert_eq!(saved["backend"], "local");
    assert_eq!(saved["key"], "users/alice/routes/ride.json");
    assert_eq!(saved["bytes"], body.len());
    // The file is where the spec's local layout puts it, with the exact bytes.
    assert_eq!(std::fs::read(k.data_dir().join("routes/alice/ride.json")).unwrap(), body);

    // Standard input works too, and a second save of the same name replaces the content.
    let v2 = br#"{"route":"Col de la Madeleine","km":19.3}"#;
    k.run_stdin(&["save", "--user", "alice", "--type", "routes", "--name", "ride.json", "-"], v2)
        .ok();
    assert_eq!(std::fs::read(k.data_dir().join("routes/alice/ride.json")).unwrap(), v2);

    let list = k.run(&["--json", "list", "--user", "alice", "--type", "routes"]).ok().json();
    assert_eq!(names(&list), ["ride.json"]);
    assert_eq!(list[0]["size"], v2.len());

    let loaded =
        k.run(&["load", "--user", "alice", "--type", "routes", "--name", "ride.json"]).ok();
    assert_eq!(loaded.stdout, v2, "load prints the content unchanged");

    let del = k
        .run(&["--json", "delete", "--user", "alice", "--type", "routes", "--name", "ride.json"])
        .ok()
        .json();
    assert_eq!(del["key"], "users/alice/routes/ride.json");
    assert!(!k.data_dir().join("routes/alice/ride.json").exists());
    assert_eq!(
        names(&k.run(&["--json", "list", "--user", "alice", "--type", "routes"]).ok().json()).len(),
        0
    );

    let gone =
        k.run(&["load", "--user", "alice", "--type", "routes", "--name", "ride.json"]).code(4);
    assert!(gone.stderr.contains("users/alice/routes/ride.json"), "{}", gone.stderr);
    assert!(gone.stdout.is_empty());
    k.run(&["delete", "--user", "alice", "--type", "routes", "--name", "ride.json"]).code(4);
}

#[test]
fn files_land_in_the_spec_local_layout() {
    let mut k = Kompass::new();
    k.with_pseudonym_key();
    let saves: &[(Option<&str>, &str, &str)] = &[
        (Some("alice"), "routes", "morning.json"),
        (None, "routes", "anonymous.json"),
        (Some("alice"), "fitness", "fitness_data_20240601T120000Z.json"),
        (None, "models", "power_model.bin"),
        (None, "training_data", "rides.csv"),
    ];
    for (user, dt, name) in saves {
        let mut args = vec!["save", "--type", dt, "--name", name, "-"];
        if let Some(u) = user {
            args.extend(["--user", u]);
        }
        // Rider data is stored only scrubbed: a document the keyed scrub leaves as it is.
        let body = match *dt {
            "fitness" => scrubbed_fitness_payload(&format!("{dt}/{name}"), 300),
            _ => format!("{dt}/{name}").into_bytes(),
        };
        k.run_stdin(&args, &body).ok();
    }
    assert_eq!(
        files_under(k.data_dir()),
        [
            "fitness/alice/fitness_data_20240601T120000Z.json",
            "models/power_model.bin",
            "routes/alice/morning.json",
            "routes/anonymous.json",
            "training_data/rides.csv",
        ]
    );
    assert_eq!(
        std::fs::read(k.data_dir().join("models/power_model.bin")).unwrap(),
        b"models/power_model.bin"
    );
    // Nothing escapes the data directory.
    assert_eq!(files_under(k.root()).iter().filter(|f| !f.starts_with("saved_routes/")).count(), 0);

    // Global and user listings are separate scopes.
    assert_eq!(
        names(&k.run(&["--json", "list", "--type", "routes"]).ok().json()),
        ["anonymous.json"]
    );
    assert_eq!(
        names(&k.run(&["--json", "list", "--user", "alice", "--type", "routes"]).ok().json()),
        ["morning.json"]
    );
    assert_eq!(
        names(&k.run(&["--json", "list", "--type", "models"]).ok().json()),
        ["power_model.bin"]
    );
}

#[test]
fn legacy_root_route_is_listed_and_loaded() {
    let k = Kompass::new();
    let legacy = br#"{"name":"saved by the Python app"}"#;
    write(&k.data_dir().join("20240101_120000_my_route.json"), legacy);
    // A root file that is not a legacy route is not data.
    write(&k.data_dir().join("notes.txt"), b"not a route");

    let list = k.run(&["--json", "list", "--type", "routes"]).ok().json();
    assert_eq!(names(&list), ["20240101_120000_my_route.json"]);
    assert_eq!(list[0]["key"], "routes/20240101_120000_my_route.json");
    assert_eq!(list[0]["backend"], "local");
    let loaded =
        k.run(&["load", "--type", "routes", "--name", "20240101_120000_my_route.json"]).ok();
    assert_eq!(loaded.stdout, legacy);
    // A user does not see anonymous legacy routes.
    assert_eq!(
        names(&k.run(&["--json", "list", "--user", "alice", "--type", "routes"]).ok().json()).len(),
        0
    );
}

#[test]
fn oversize_is_refused_before_anything_is_written_or_deleted() {
    let mut k = Kompass::new();
    // A user over the cleanup threshold, so a cleanup would be due if the save got that far.
    k.set("S3_MAX_USER_STORAGE_MB", "0.004")
        .set("S3_MIN_FILES_TO_KEEP", "0")
        .set("S3_AUTO_CLEANUP_ENABLED", "false");
    for i in 0..3 {
        k.run_stdin(
            &["save", "--user", "carol", "--type", "routes", "--name", &format!("r{i}.json"), "-"],
            &payload("r", 1000),
        )
        .ok();
    }
    let before = files_under(k.data_dir());
    assert_eq!(before.len(), 3);

    let big = payload("big", 5000);
    let r = k
        .with(&[("S3_MAX_FILE_SIZE_MB", "0.001"), ("S3_AUTO_CLEANUP_ENABLED", "true")])
        .run_stdin(
            &["save", "--user", "carol", "--type", "routes", "--name", "big.json", "-"],
            &big,
        )
        .code(3);
    assert!(r.stderr.contains("S3_MAX_FILE_SIZE_MB"), "the message names the limit: {}", r.stderr);
    assert!(r.stderr.contains("1048 bytes"), "the message gives the limit: {}", r.stderr);
    assert!(r.stdout.is_empty());
    assert_eq!(files_under(k.data_dir()), before, "nothing written, nothing deleted");
}

#[test]
fn list_json_shape_newest_first() {
    let k = Kompass::new();
    for name in ["b-old.json", "a-new.json", "c-mid.json"] {
        k.run_stdin(
            &["save", "--user", "dave", "--type", "routes", "--name", name, "-"],
            name.as_bytes(),
        )
        .ok();
    }
    let dir = k.data_dir().join("routes/dave");
    set_mtime(&dir.join("b-old.json"), 1_700_000_000_000);
    set_mtime(&dir.join("c-mid.json"), 1_700_000_100_000);
    set_mtime(&dir.join("a-new.json"), 1_700_000_200_000);

    let list = k.run(&["--json", "list", "--user", "dave", "--type", "routes"]).ok().json();
    assert_eq!(names(&list), ["a-new.json", "c-mid.json", "b-old.json"]);
    let first = list[0].as_object().unwrap();
    for field in ["name", "key", "size", "last_modified", "backend"] {
        assert!(first.contains_key(field), "list items have {field}: {first:?}");
    }
    assert_eq!(first["key"], "users/dave/routes/a-new.json");
    assert_eq!(first["size"], "a-new.json".len());
    assert_eq!(first["backend"], "local");
    // RFC 3339 UTC: 1_700_000_200 s is 2023-11-14T22:16:40Z.
    assert_eq!(first["last_modified"], "2023-11-14T22:16:40Z");
    assert_eq!(list[2]["last_modified"], "2023-11-14T22:13:20Z");

    // Text output lists the same files, one a line.
    let text = k.run(&["list", "--user", "dave", "--type", "routes"]).ok().out();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("a-new.json"), "{text}");
}

#[test]
fn bad_input_exits_2_and_touches_nothing_and_missing_exits_4() {
    let k = Kompass::new();
    k.run_stdin(&["save", "--user", "erin", "--type", "routes", "--name", "keep.json", "-"], b"{}")
        .ok();
    let before = files_under(k.root());

    let bad_names = [
        "../escape.json",
        "../../escape.json",
        "/etc/escape.json",
        "a/../../escape.json",
        "sub/escape.json",
        "..\\escape.json",
        "a\\b.json",
        "a\u{2215}b.json",
        "a\u{29F8}b.json",
        "..",
        ".",
        "",
        "tab\tname.json",
    ];
    for name in bad_names {
        let r = k
            .run_stdin(
                &["save", "--user", "erin", "--type", "routes", "--name", name, "-"],
                b"{\"x\":1}",
            )
            .code(2);
        assert!(!r.stderr.is_empty(), "{name:?}: an explanation on stderr");
        assert!(r.stdout.is_empty(), "{name:?}: nothing claimed on stdout: {}", r.out());
        k.run(&["load", "--user", "erin", "--type", "routes", "--name", name]).code(2);
        k.run(&["delete", "--user", "erin", "--type", "routes", "--name", name]).code(2);
    }
    for user in ["../erin", "erin/../bob", "/root", "a\\b", "a\u{2215}b", ""] {
        k.run_stdin(&["save", "--user", user, "--type", "routes", "--name", "x.json", "-"], b"{}")
            .code(2);
        k.run(&["list", "--user", user, "--type", "routes"]).code(2);
    }
    k.run_stdin(&["save", "--user", "erin", "--type", "../routes", "--name", "x.json", "-"], b"{}")
        .code(2);
    k.run_stdin(&["save", "--user", "erin", "--type", "secrets", "--name", "x.json", "-"], b"{}")
        .code(2);
    // Fitness data always belongs to a user.
    k.run_stdin(&["save", "--type", "fitness", "--name", "x.json", "-"], b"{}").code(2);
    assert_eq!(files_under(k.root()), before, "no file created anywhere");

    // Not found: 4, with the key in the message.
    let r =
        k.run(&["load", "--user", "erin", "--type", "routes", "--name", "missing.json"]).code(4);
    assert!(r.stderr.contains("users/erin/routes/missing.json"), "{}", r.stderr);
    k.run(&["delete", "--user", "erin", "--type", "routes", "--name", "missing.json"]).code(4);
    // An empty listing is not an error.
    assert_eq!(
        k.run(&["--json", "list", "--user", "nobody", "--type", "routes"]).ok().json(),
        Value::Array(vec![])
    );
    assert_eq!(files_under(k.root()), before);
}

#[test]
fn config_lists_every_problem_at_once_and_never_prints_secrets() {
    let mut k = Kompass::new();
    let secret = "canary-secret-value-7f3a9b2c5d";
    k.set("S3_STORAGE_ENABLED", "false")
        .set("S3_CLEANUP_THRESHOLD_PERCENT", "150")
        .set("S3_MIN_FILES_TO_KEEP", "-1")
        .set("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE01")
        .set("AWS_SECRET_ACCESS_KEY", secret);

    let text = k.run(&["config"]).code(2);
    let all = text.all_output();
    assert!(all.contains("S3_CLEANUP_THRESHOLD_PERCENT"), "{all}");
    assert!(all.contains("S3_MIN_FILES_TO_KEEP"), "{all}");
    assert!(!all.contains(secret), "the secret is never printed: {all}");

    let json = k.run(&["--json", "config"]).code(2);
    assert!(!json.all_output().contains(secret));
    let report = json.json();
    assert_eq!(report["valid"], false);
    let vars: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["variable"].as_str().unwrap())
        .collect();
    assert!(vars.contains(&"S3_CLEANUP_THRESHOLD_PERCENT"), "{report}");
    assert!(vars.contains(&"S3_MIN_FILES_TO_KEEP"), "{report}");

    // Any other command refuses the same configuration with exit 2, naming the problems.
    let save = k
        .run_stdin(&["save", "--user", "u", "--type", "routes", "--name", "x.json", "-"], b"{}")
        .code(2);
    assert!(save.stderr.contains("S3_CLEANUP_THRESHOLD_PERCENT"), "{}", save.stderr);
    assert!(!save.all_output().contains(secret));
    assert!(files_under(k.root()).is_empty());

    // Fixed, it is valid, and the secret is still not printed.
    k.set("S3_CLEANUP_THRESHOLD_PERCENT", "70").set("S3_MIN_FILES_TO_KEEP", "5");
    let ok = k.run(&["--json", "config"]).ok();
    assert!(!ok.all_output().contains(secret));
    assert_eq!(ok.json()["valid"], true);
}

/// Twelve 80 KiB routes with ages set on disk, saved without auto cleanup (960 KiB of 1 MiB).
fn twelve_routes(k: &Kompass, user: &str) -> Vec<String> {
    let dir = k.data_dir().join("routes").join(user);
    let mut by_age = Vec::new();
    for i in 0..12u64 {
        // Names sort against age, so a plan ordered by name would be visibly wrong.
        let name = format!("route-{:02}.json", 11 - i);
        k.run_stdin(
            &["save", "--user", user, "--type", "routes", "--name", &name, "-"],
            &payload(&name, 80 * KIB as usize),
        )
        .ok();
        set_mtime(&dir.join(&name), 1_700_000_000_000 + i * 60_000);
        by_age.push(name);
    }
    by_age
}

#[test]
fn cleanup_plans_oldest_first_dry_run_deletes_nothing_and_execution_deletes_the_plan() {
    let mut k = Kompass::new();
    k.set("S3_MAX_USER_STORAGE_MB", "1")
        .set("S3_MIN_FILES_TO_KEEP", "5")
        .set("S3_AUTO_CLEANUP_ENABLED", "false");
    let by_age = twelve_routes(&k, "frank");
    // Another user's files are never part of frank's plan.
    k.run_stdin(
        &["save", "--user", "grace", "--type", "routes", "--name", "g.json", "-"],
        &payload("g", 900 * KIB as usize),
    )
    .ok();
    let before = files_under(k.data_dir());

    let plan = k.run(&["--json", "cleanup", "--user", "frank", "--dry-run"]).ok().json();
    // 960 KiB must drop under 70 % of 1 MiB (716.8 KiB): four 80 KiB files, the oldest four.
    let keys: Vec<&str> =
        plan["deletions"].as_array().unwrap().iter().map(|d| d["key"].as_str().unwrap()).collect();
    let expected: Vec<String> =
        by_age[..4].iter().map(|n| format!("users/frank/routes/{n}")).collect();
    assert_eq!(keys, expected);
    assert_eq!(plan["bytes_freed"], 4 * 80 * KIB);
    assert_eq!(plan["usage_after"]["users"]["frank"]["bytes"], 8 * 80 * KIB);
    assert_eq!(plan["usage_after"]["users"]["frank"]["files"], 8);
    assert_eq!(plan["deletions"][0]["last_modified"], "2023-11-14T22:13:20Z");
    assert_eq!(plan["deletions"][0]["size"], 80 * KIB);
    let reason = &plan["deletions"][0]["reason"];
    assert_eq!(reason["scope"], "user_quota");
    assert_eq!(reason["user"], "frank");
    assert_eq!(reason["group_files"], 12);
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["deleted"], 0);
    assert_eq!(files_under(k.data_dir()), before, "a dry run deletes nothing");

    // The text plan gives each file with its reason.
    let text = k.run(&["cleanup", "--user", "frank", "--dry-run"]).ok().out();
    assert!(text.contains(&expected[0]) && text.contains(&expected[3]), "{text}");
    assert!(text.contains("user frank over 70%"), "{text}");
    assert!(text.contains("dry run"), "{text}");
    assert_eq!(files_under(k.data_dir()), before);

    let done = k.run(&["--json", "cleanup", "--user", "frank"]).ok().json();
    assert_eq!(done["deleted"], 4);
    let mut after = before.clone();
    after.retain(|f| !by_age[..4].iter().any(|n| f == &format!("routes/frank/{n}")));
    assert_eq!(files_under(k.data_dir()), after, "exactly the planned files are gone");
    assert_eq!(after.len(), before.len() - 4);

    // Now under the threshold: nothing more to do.
    let again = k.run(&["--json", "cleanup", "--user", "frank"]).ok().json();
    assert_eq!(again["deletions"].as_array().unwrap().len(), 0);
    assert_eq!(files_under(k.data_dir()), after);
}

#[test]
fn quota_is_a_hard_limit_after_cleanup_locally() {
    let mut k = Kompass::new();
    k.set("S3_MAX_USER_STORAGE_MB", "1").set("S3_MIN_FILES_TO_KEEP", "5");
    for i in 0..6 {
        k.with(&[("S3_AUTO_CLEANUP_ENABLED", "false")])
            .run_stdin(
                &[
                    "save",
                    "--user",
                    "hana",
                    "--type",
                    "routes",
                    "--name",
                    &format!("r{i}.json"),
                    "-",
                ],
                &payload("r", 100 * KIB as usize),
            )
            .ok();
    }
    let before = files_under(k.data_dir());
    // 600 KiB + 700 KiB: cleanup could free two files (200 KiB), not enough for 1 MiB.
    let r = k
        .run_stdin(
            &["save", "--user", "hana", "--type", "routes", "--name", "big.json", "-"],
            &payload("big", 700 * KIB as usize),
        )
        .code(3);
    assert!(r.stderr.contains("S3_MAX_USER_STORAGE_MB"), "{}", r.stderr);
    assert_eq!(files_under(k.data_dir()), before, "nothing deleted, nothing written");
}

#[test]
fn monitor_reports_usage_levels_and_a_bar_chart() {
    let mut k = Kompass::new();
    k.set("S3_MAX_USER_STORAGE_MB", "1")
        .set("S3_AUTO_CLEANUP_ENABLED", "false")
        .with_pseudonym_key();
    let users = [("u-normal", 100u64), ("u-cleanup", 750), ("u-warning", 850), ("u-critical", 950)];
    for (u, kib) in users {
        k.run_stdin(
            &["save", "--user", u, "--type", "routes", "--name", "a.json", "-"],
            &payload(u, (kib - 50) as usize * 1024),
        )
        .ok();
        k.run_stdin(
            &["save", "--user", u, "--type", "fitness", "--name", "f.json", "-"],
            &scrubbed_fitness_payload(u, 50 * 1024),
        )
        .ok();
    }
    k.run_stdin(&["save", "--type", "models", "--name", "m.bin", "-"], &payload("m", 3000)).ok();

    let m = k.run(&["--json", "monitor"]).code(2).json();
    assert_eq!(m["usage_source"], "local");
    for (u, kib) in users {
        let ur = &m["users"][u];
        assert_eq!(ur["bytes"], kib * KIB, "{u}: {ur}");
        assert_eq!(ur["files"], 2);
        assert_eq!(ur["by_type"]["fitness"]["bytes"], 50 * KIB);
        assert_eq!(ur["by_type"]["routes"]["bytes"], (kib - 50) * KIB);
        assert_eq!(ur["status"]["limit"], 1024 * KIB);
        assert_eq!(ur["level"], u.trim_start_matches("u-"), "{u}: {ur}");
        assert_eq!(ur["status"]["cleanup_due"], kib >= 717, "{u}");
    }
    let total: u64 = users.iter().map(|(_, k)| k * KIB).sum::<u64>() + 3000;
    assert_eq!(m["bucket"]["bytes"], total);
    assert_eq!(m["bucket"]["files"], 9);
    assert_eq!(m["bucket"]["level"], "normal");
    assert_eq!(m["global"]["models"]["bytes"], 3000);
    assert_eq!(m["local"]["bucket"]["bytes"], total);
    assert_eq!(m["level"], "critical", "the worst level overall");
    assert_eq!(m["pending_sync"], 0);
    assert_eq!(m["requests"]["put_class"]["limit"], 2000);
    assert_eq!(m["requests"]["get_class"]["limit"], 20000);
    assert_eq!(m["requests"]["put_class"]["used"], 0, "no S3, no requests");
    assert_eq!(m["requests"]["level"], "normal");

    let text = k.run(&["monitor"]).code(2).out();
    let line =
        text.lines().find(|l| l.starts_with("u-warning") && l.contains("total")).expect(&text);
    assert!(
        line.contains("████████░░") && line.contains("83% of 1 MiB") && line.contains("warning"),
        "{line}"
    );
    assert!(text.contains("pending sync: 0"), "{text}");
}

const STRAVA_EXPORT: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/strava_export.json");

/// Every file under the data directory with its content.
fn snapshot(k: &Kompass) -> Vec<(String, Vec<u8>)> {
    files_under(k.data_dir())
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(k.data_dir().join(&f)).unwrap();
            (f, bytes)
        })
        .collect()
}

#[test]
fn a_raw_export_saved_as_fitness_is_refused_and_nothing_is_stored_or_deleted() {
    let mut k = Kompass::new();
    // A quota the raw export would need cleanup for: a refusal must come before any deletion.
    k.set("S3_MAX_USER_STORAGE_MB", "0.02").set("S3_MIN_FILES_TO_KEEP", "0").with_pseudonym_key();
    for i in 0..3 {
        k.run_stdin(
            &["save", "--user", "rita", "--type", "routes", "--name", &format!("r{i}.json"), "-"],
            &payload("r", 5 * 1024),
        )
        .ok();
    }
    let before = snapshot(&k);
    let raw = std::fs::read(STRAVA_EXPORT).unwrap();
    let run = k
        .run(&["save", "--user", "rita", "--type", "fitness", "--name", "raw.json", STRAVA_EXPORT])
        .code(2);
    let msg = run.all_output();
    assert!(msg.contains("kompass rider save"), "{msg}");
    assert!(
        !msg.contains("Amélie") && !msg.contains("45.899247"),
        "the refusal repeats no PII: {msg}"
    );
    assert_eq!(snapshot(&k), before, "nothing stored, nothing deleted");
    // The same through standard input and with --json.
    k.run_stdin(
        &["--json", "save", "--user", "rita", "--type", "fitness", "--name", "raw.json", "-"],
        &raw,
    )
    .code(2);
    assert_eq!(snapshot(&k), before);
    // Without the key, no fitness save at all, scrubbed or not: the clear missing-key error.
    let scrubbed = scrubbed_fitness_payload("rita", 400);
    let run = k
        .with(&[("KOMPASS_PSEUDONYM_KEY", "")])
        .run_stdin(
            &["save", "--user", "rita", "--type", "fitness", "--name", "f.json", "-"],
            &scrubbed,
        )
        .code(2);
    assert!(run.all_output().contains("KOMPASS_PSEUDONYM_KEY is not set"), "{}", run.all_output());
    assert_eq!(snapshot(&k), before);
}

#[test]
fn an_already_scrubbed_rider_document_is_stored_as_given() {
    let mut k = Kompass::new();
    k.with_pseudonym_key();
    // What `kompass rider save` stored, saved again through the generic save: unchanged.
    let saved = k.run(&["--json", "rider", "save", "--user", "sam", STRAVA_EXPORT]).ok().json();
    let name = saved["name"].as_str().unwrap().to_owned();
    let stored = k.run(&["rider", "load", "--user", "sam", "--name", &name]).ok().stdout;
    k.run_stdin(
        &["save", "--user", "sam", "--type", "fitness", "--name", "copy.json", "-"],
        &stored,
    )
    .ok();
    assert_eq!(std::fs::read(k.data_dir().join("fitness/sam/copy.json")).unwrap(), stored);
    // And a padded fixed point of the keyed scrub, byte for byte.
    let doc = scrubbed_fitness_payload("sam", 4096);
    k.run_stdin(&["save", "--user", "sam", "--type", "fitness", "--name", "pad.json", "-"], &doc)
        .ok();
    assert_eq!(std::fs::read(k.data_dir().join("fitness/sam/pad.json")).unwrap(), doc);
}

#[test]
fn a_rider_document_with_a_pseudonym_under_another_key_id_is_refused() {
    let mut k = Kompass::new();
    k.with_pseudonym_key();
    let saved = k.run(&["--json", "rider", "save", "--user", "tao", STRAVA_EXPORT]).ok().json();
    let name = saved["name"].as_str().unwrap().to_owned();
    let stored =
        String::from_utf8(k.run(&["rider", "load", "--user", "tao", "--name", &name]).ok().stdout)
            .unwrap();
    let ours = format!("\"{TEST_PSEUDONYM_KEY_ID}:");
    assert!(stored.contains(&ours), "the stored document holds pseudonyms: {stored}");
    let before = snapshot(&k);
    // A smuggled key id (free text), then a plausible other key's id; also the whole document
    // as another installation (key id k1) would have stored it.
    for other in ["\"Jane.Doe_SW1A-2AA:", "\"k2:"] {
        let forged = stored.replacen(&ours, other, 1);
        let run = k
            .run_stdin(
                &["save", "--user", "tao", "--type", "fitness", "--name", "forged.json", "-"],
                forged.as_bytes(),
            )
            .code(2);
        assert!(run.all_output().contains("kompass rider save"), "{}", run.all_output());
        assert_eq!(snapshot(&k), before, "nothing stored for {other}");
    }
    let elsewhere = k.with(&[("KOMPASS_PSEUDONYM_KEY_ID", "k1")]);
    elsewhere
        .run_stdin(
            &["save", "--user", "tao", "--type", "fitness", "--name", "forged.json", "-"],
            stored.as_bytes(),
        )
        .code(2);
    assert_eq!(snapshot(&k), before);
}
