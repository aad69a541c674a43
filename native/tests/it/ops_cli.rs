//! Operator-facing CLI behaviour: AWS profiles from the shared files (against SeaweedFS),
//! where each setting came from, warnings for misspelt variables, degraded results when S3
//! is unreachable or silent, the monitor's exit levels, and the bucket settings printed for
//! deployment.

use std::time::{Duration, Instant};

use crate::support::cli::{Kompass, payload};
use crate::support::{self, uid};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_in_the_shared_files_is_used_and_its_source_shown_never_its_secret() {
    let Some(env) = support::s3_env("a_profile_in_the_shared_files_is_used") else { return };
    let mut k = Kompass::new();
    let creds = k.root().join("credentials");
    let config = k.root().join("config");
    std::fs::write(
        &creds,
        format!(
            "[default]\naws_access_key_id = WRONG\naws_secret_access_key = wrong\n\n[work]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            env.access_key_id, env.secret_access_key
        ),
    )
    .unwrap();
    std::fs::write(
        &config,
        format!("[profile work]\nregion = {}\nendpoint_url = {}\n", env.region, env.endpoint),
    )
    .unwrap();
    k.set("S3_STORAGE_ENABLED", "true")
        .set("AWS_S3_BUCKET", &env.bucket)
        .set("AWS_PROFILE", "work")
        .set("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap())
        .set("AWS_CONFIG_FILE", config.to_str().unwrap());
    let user = uid("prof");
    let bytes = payload("profile", 321);
    let saved = k
        .run_stdin(
            &["--json", "save", "--user", &user, "--type", "routes", "--name", "p.json", "-"],
            &bytes,
        )
        .ok()
        .json();
    assert_eq!(
        saved["backend"], "s3",
        "the profile's credentials and endpoint reached S3: {saved}"
    );
    // Independently: the object is in the bucket.
    let s3 = env.store();
    assert_eq!(s3.get(&format!("users/{user}/routes/p.json")).await.unwrap(), bytes);

    let run = k.run(&["--json", "config"]).ok();
    let report = run.json();
    let sources = &report["sources"];
    let from_profile = format!("profile work in {}", creds.display());
    assert_eq!(sources["AWS_ACCESS_KEY_ID"], from_profile.as_str(), "{report:#}");
    assert_eq!(sources["AWS_SECRET_ACCESS_KEY"], from_profile.as_str());
    assert_eq!(sources["AWS_ENDPOINT_URL"], format!("profile work in {}", config.display()));
    assert_eq!(sources["AWS_PROFILE"], "environment");
    assert_eq!(report["s3_access"], "ok");
    assert!(!run.all_output().contains(&env.secret_access_key), "the secret is never printed");
    let text = k.run(&["config"]).ok().out();
    assert!(text.contains("AWS_ACCESS_KEY_ID: profile work in"), "{text}");
    assert!(!text.contains(&env.secret_access_key));

    // The environment's pair wins over the profile (as in the AWS CLI): wrong keys fail.
    let r = k
        .with(&[("AWS_ACCESS_KEY_ID", "AKIDNOTKNOWN"), ("AWS_SECRET_ACCESS_KEY", "nope")])
        .run(&["--json", "config"]);
    assert_ne!(r.code, 0, "the environment's (wrong) keys were used");
    assert_eq!(r.json()["sources"]["AWS_ACCESS_KEY_ID"], "environment");
    k.run(&["delete", "--user", &user, "--type", "routes", "--name", "p.json"]).ok();
}

#[test]
fn misspelt_variables_are_warned_about_with_the_closest_name() {
    let mut k = Kompass::new();
    k.set("S3_MAX_USER_STORAGE_M", "5").set("S3_STORAGE_ENABLE", "true").set("AWS_S3_BUKET", "b");
    std::fs::write(k.root().join(".env"), "KOMPASS_PSEUDONYM_KY=abc\n").unwrap();
    let r = k.run(&["--json", "list", "--user", "u", "--type", "routes"]).ok();
    for (typo, fix) in [
        ("S3_MAX_USER_STORAGE_M", "S3_MAX_USER_STORAGE_MB"),
        ("S3_STORAGE_ENABLE", "S3_STORAGE_ENABLED"),
        ("AWS_S3_BUKET", "AWS_S3_BUCKET"),
        ("KOMPASS_PSEUDONYM_KY", "KOMPASS_PSEUDONYM_KEY"),
    ] {
        let line = r
            .stderr
            .lines()
            .find(|l| l.contains(typo))
            .unwrap_or_else(|| panic!("no warning for {typo}: {}", r.stderr));
        assert!(line.contains(&format!("did you mean {fix}?")), "{line}");
    }
    assert_eq!(
        r.stderr.matches("S3_STORAGE_ENABLE ").count(),
        1,
        "each warning once: {}",
        r.stderr
    );
    let report = k.run(&["--json", "config"]).ok().json();
    let unknown = report["unknown_variables"].as_array().unwrap();
    assert!(
        unknown.iter().any(|u| u["name"] == "S3_MAX_USER_STORAGE_M"
            && u["did_you_mean"] == "S3_MAX_USER_STORAGE_MB")
    );
    // Known variables, other tools' AWS variables and the test scripts' own are not warned.
    let mut k = Kompass::new();
    k.set("AWS_CA_BUNDLE", "/x").set("KOMPASS_METRICS_TOKEN", "t").set("AWS_PROFILE", "p");
    let r = k.run(&["list", "--user", "u", "--type", "routes"]).ok();
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
}

#[test]
fn config_errors_have_one_header() {
    let mut k = Kompass::new();
    k.set("S3_MAX_FILE_SIZE_MB", "lots");
    let r = k.run(&["list", "--user", "u", "--type", "routes"]).code(2);
    assert_eq!(r.stderr.matches("the configuration has").count(), 1, "{}", r.stderr);
}

#[test]
fn bucket_settings_are_printed_for_deployment() {
    let k = Kompass::new();
    let cors =
        k.run(&["--json", "config", "--bucket-cors", "https://kompass.example.org/"]).ok().json();
    let rule = &cors["CORSRules"][0];
    assert_eq!(rule["AllowedOrigins"][0], "https://kompass.example.org");
    assert_eq!(rule["AllowedMethods"][0], "PUT");
    assert!(
        rule["AllowedHeaders"].as_array().unwrap().iter().any(|h| h == "x-amz-checksum-sha256")
    );
    k.run(&["config", "--bucket-cors", "kompass.example.org"]).code(2);
    k.run(&["config", "--bucket-cors", "https://x.org/path"]).code(2);
    let l = k.run(&["--json", "config", "--bucket-lifecycle"]).ok().json();
    assert_eq!(l["Rules"][0]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"], 1);
}

fn elapsed_under(start: Instant, limit: Duration) -> bool {
    start.elapsed() < limit
}

/// A TCP server that accepts connections and never answers (an endpoint that hangs).
fn silent_endpoint() -> (String, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let t = std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming().take(64) {
            match c {
                Ok(c) => held.push(c), // kept open, never read or answered
                Err(_) => return,
            }
        }
    });
    (url, t)
}

fn s3_at(endpoint: &str) -> Kompass {
    let mut k = Kompass::new();
    k.set("S3_STORAGE_ENABLED", "true")
        .set("AWS_ENDPOINT_URL", endpoint)
        .set("AWS_S3_BUCKET", "kompass-test")
        .set("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
        .set("AWS_SECRET_ACCESS_KEY", "secret-example");
    k
}

#[test]
fn a_silent_endpoint_gives_a_degraded_result_within_the_deadline() {
    let (url, _t) = silent_endpoint();
    let mut k = s3_at(&url);
    k.set("KOMPASS_S3_DEADLINE_SECS", "2").set("KOMPASS_S3_TIMEOUT_SECS", "1");
    // A save lands locally (queued) instead of hanging.
    let start = Instant::now();
    let saved = k
        .run_stdin(
            &["--json", "save", "--user", "u", "--type", "routes", "--name", "a.json", "-"],
            b"{}",
        )
        .ok()
        .json();
    assert!(elapsed_under(start, Duration::from_secs(10)), "save took {:?}", start.elapsed());
    assert_eq!(saved["backend"], "local");
    assert!(
        saved["pending_sync"].as_str().unwrap().contains("KOMPASS_S3"),
        "says what it waited for: {saved}"
    );
    // A listing says it is degraded: never an empty (or local-only) success.
    let start = Instant::now();
    let r = k.run(&["--json", "list", "--user", "u", "--type", "routes"]).code(5);
    assert!(elapsed_under(start, Duration::from_secs(10)), "list took {:?}", start.elapsed());
    let j = r.json();
    assert_eq!(j["degraded"], true);
    assert_eq!(j["files"][0]["name"], "a.json", "the local copy is still shown");
    assert!(j["reason"].as_str().unwrap().contains("LIST"), "{j}");
    // Defaults end a hung call in seconds, not minutes (20 s deadline).
    let k = s3_at(&url);
    let start = Instant::now();
    k.run(&["--json", "list", "--user", "u", "--type", "routes"]).code(5);
    assert!(
        elapsed_under(start, Duration::from_secs(40)),
        "default deadline: {:?}",
        start.elapsed()
    );
}

#[test]
fn an_unreachable_endpoint_is_degraded_for_reads_never_empty() {
    let k = s3_at(&format!("http://127.0.0.1:{}", support::closed_port()));
    let r = k.run(&["--json", "list", "--user", "u", "--type", "routes"]).code(5);
    let j = r.json();
    assert_eq!(j["degraded"], true);
    assert_eq!(j["files"], serde_json::json!([]));
    assert!(r.stderr.contains("unreachable"), "{}", r.stderr);
    // A load that only S3 could answer: degraded, not "not found".
    k.run(&["load", "--user", "u", "--type", "routes", "--name", "x.json"]).code(5);
    let out = k.root().join("x.zip");
    k.run(&["export", "--user", "u", "--out", out.to_str().unwrap()]).code(5);
}

/// `rider history`, `rider load`, `status` and `monitor` with S3 configured but unreachable:
/// each says so (`"degraded": true` and why) and exits 5 (`monitor`: 3, UNKNOWN), never an
/// answer that looks complete. The local copies are still shown.
#[test]
fn the_other_read_commands_are_degraded_when_s3_is_unreachable() {
    const STRAVA_EXPORT: &str =
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/strava_export.json");
    // A rider save stored while S3 was off: a plain local copy, not queued for S3.
    let mut local = Kompass::new();
    local.with_pseudonym_key();
    let saved = local.run(&["--json", "rider", "save", "--user", "rae", STRAVA_EXPORT]).ok().json();
    let name = saved["name"].as_str().unwrap().to_owned();
    let doc = local.run(&["rider", "load", "--user", "rae", "--name", &name]).ok().stdout;
    local.run(&["--json", "status"]).ok();

    // The same data directory, now with S3 on at a closed port.
    let endpoint = format!("http://127.0.0.1:{}", support::closed_port());
    let k = local.with(&[
        ("S3_STORAGE_ENABLED", "true"),
        ("AWS_ENDPOINT_URL", &endpoint),
        ("AWS_S3_BUCKET", "kompass-test"),
        ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "secret-example"),
    ]);

    let r = k.run(&["--json", "rider", "history", "--user", "rae"]).code(5);
    let j = r.json();
    assert_eq!(j["degraded"], true, "{j}");
    assert!(j["reason"].as_str().unwrap().contains("127.0.0.1"), "{j}");
    assert_eq!(j["entries"][0]["name"], name.as_str(), "the local save is still shown: {j}");
    assert!(r.stderr.contains("unreachable"), "{}", r.stderr);
    // Text: the local saves, and the status.
    let r = k.run(&["rider", "history", "--user", "rae"]).code(5);
    assert!(r.out().contains(&name), "{}", r.out());

    // Load by name: the local copy is printed, and exit 5 says it may not be the newest.
    let r = k.run(&["rider", "load", "--user", "rae", "--name", &name]).code(5);
    assert_eq!(r.stdout, doc);
    assert!(r.stderr.contains("local copy"), "{}", r.stderr);
    // The newest save: found from the local listing, degraded the same way.
    assert_eq!(k.run(&["rider", "load", "--user", "rae"]).code(5).stdout, doc);
    // A rider with nothing local: degraded, not "no rider data" (exit 4).
    let r = k.run(&["rider", "load", "--user", "nobody"]).code(5);
    assert!(r.stderr.contains("unreachable"), "{}", r.stderr);
    k.run(&["rider", "history", "--user", "nobody"]).code(5);

    let r = k.run(&["--json", "status"]).code(5);
    let j = r.json();
    assert_eq!(j["degraded"], true, "{j}");
    assert!(j["reason"].as_str().unwrap().contains("unreachable"), "{j}");
    assert_eq!(j["s3_files"], serde_json::Value::Null, "missing, not zero: {j}");
    assert_eq!(j["local_files"], 1);
    k.run(&["status"]).code(5);

    let r = k.run(&["--json", "monitor"]).code(3);
    let j = r.json();
    assert_eq!(j["degraded"], true, "{j}");
    assert!(j["reason"].as_str().unwrap().contains("could not be listed"), "{j}");
    assert_eq!(j["usage_source"], "local");
    assert!(r.stderr.contains("UNKNOWN"), "{}", r.stderr);

    // With S3 off the same commands are complete answers.
    let j = local.run(&["--json", "rider", "history", "--user", "rae"]).ok().json();
    assert!(j.is_array(), "{j}");
    assert_eq!(local.run(&["--json", "status"]).ok().json()["degraded"], false);
    assert_eq!(local.run(&["--json", "monitor"]).ok().json()["degraded"], false);
}

#[test]
fn monitor_check_exits_by_level_like_a_monitoring_plugin() {
    let mut k = Kompass::new();
    k.set("S3_MAX_USER_STORAGE_MB", "1").set("S3_AUTO_CLEANUP_ENABLED", "false");
    k.run(&["monitor", "--check"]).code(0);
    let save = |name: &str, kib: usize| {
        k.run_stdin(
            &["save", "--user", "u", "--type", "routes", "--name", name, "-"],
            &payload(name, kib * 1024),
        )
        .ok();
    };
    save("a.json", 750); // 73 %: cleanup level, still OK for a plugin
    k.run(&["monitor", "--check"]).code(0);
    save("b.json", 100); // 83 %
    let r = k.run(&["monitor", "--check"]).code(1);
    assert!(r.stderr.contains("WARNING"), "{}", r.stderr);
    save("c.json", 100); // 93 %
    assert!(k.run(&["monitor", "--check"]).code(2).stderr.contains("CRITICAL"));
    // Without --check too (issue 12: "monitor exits 0 at critical" was a defect): the
    // report, then the level as the exit status.
    let r = k.run(&["--json", "monitor"]).code(2);
    assert_eq!(r.json()["level"], "critical");
    assert!(k.run(&["monitor"]).code(2).stderr.contains("CRITICAL"));
    // Usage that cannot be read is UNKNOWN.
    let down = s3_at(&format!("http://127.0.0.1:{}", support::closed_port()));
    assert!(down.run(&["monitor", "--check"]).code(3).stderr.contains("UNKNOWN"));
    assert!(down.run(&["monitor"]).code(3).stderr.contains("UNKNOWN"));
    // Bad configuration is UNKNOWN too (2 is critical here), and says what is wrong.
    let mut bad = Kompass::new();
    bad.set("S3_MAX_FILE_SIZE_MB", "lots");
    bad.run(&["monitor", "--check"]).code(3);
    let r = bad.run(&["monitor"]).code(3);
    assert!(
        r.stderr.contains("UNKNOWN") && r.stderr.contains("S3_MAX_FILE_SIZE_MB"),
        "{}",
        r.stderr
    );
}

#[test]
fn small_things_an_operator_trips_on() {
    // migrate needs S3: with S3 off it is a configuration problem (exit 2), dry run or not.
    let k = Kompass::new();
    let r = k.run(&["migrate", "--dry-run"]).code(2);
    assert!(r.stderr.contains("S3_STORAGE_ENABLED"), "{}", r.stderr);
    // A reader that goes away (`| head`) is not an error.
    let big = payload("big", 4 << 20);
    k.run_stdin(&["save", "--user", "u", "--type", "routes", "--name", "big.json", "-"], &big).ok();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kompass"))
        .env_clear()
        .current_dir(k.root())
        .args([
            "--data-dir",
            k.data_dir().to_str().unwrap(),
            "load",
            "--user",
            "u",
            "--type",
            "routes",
            "--name",
            "big.json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
    drop(child.stdout.take()); // like `head -c 16`
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.to_lowercase().contains("broken pipe"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}

#[test]
fn cleanup_names_the_rule_that_held() {
    let mut k = Kompass::new();
    k.set("S3_MAX_USER_STORAGE_MB", "1").set("S3_AUTO_CLEANUP_ENABLED", "false");
    for i in 0..3 {
        let name = format!("r{i}.json");
        k.run_stdin(
            &["save", "--user", "carol", "--type", "routes", "--name", &name, "-"],
            &payload(&name, 300 * 1024),
        )
        .ok();
    }
    // 900 KiB of 1 MiB, three files: min-keep (5) holds them all.
    let text = k.run(&["cleanup", "--dry-run", "--user", "carol"]).ok().out();
    assert!(text.contains("nothing to delete"), "{text}");
    assert!(
        text.contains(
            "min-keep (S3_MIN_FILES_TO_KEEP=5) holds every file of carol/routes (3 files)"
        ),
        "{text}"
    );
    let j = k.run(&["--json", "cleanup", "--dry-run", "--user", "carol"]).ok().json();
    assert!(j["held"].as_str().unwrap().contains("min-keep"), "{j}");
    // Three small old files and a big new one, min-keep 1: half per cycle lets only the two
    // oldest go, and the user stays over the threshold.
    for (i, kib) in [10usize, 10, 10, 900].iter().enumerate() {
        let name = format!("d{i}.json");
        k.run_stdin(
            &["save", "--user", "dave", "--type", "routes", "--name", &name, "-"],
            &payload(&name, kib * 1024),
        )
        .ok();
    }
    let j = k
        .with(&[("S3_MIN_FILES_TO_KEEP", "1")])
        .run(&["--json", "cleanup", "--dry-run", "--user", "dave"])
        .ok()
        .json();
    assert_eq!(j["deletions"].as_array().unwrap().len(), 2, "{j}");
    assert!(j["held"].as_str().unwrap().contains("half per cycle"), "{j}");
    assert!(j["held"].as_str().unwrap().contains("dave/routes (4 files)"), "{j}");
    // Under the threshold nothing is claimed to hold.
    let j = k
        .with(&[("S3_MAX_USER_STORAGE_MB", "100")])
        .run(&["--json", "cleanup", "--dry-run", "--user", "carol"])
        .ok()
        .json();
    assert!(j.get("held").is_none(), "{j}");
}
