//! Strava's bulk export ZIP (`kompass_core::import`, `kompass rider import`) on the export
//! written by tests/strava_export/generate.py (seed 15: GPX, TCX and FIT files, some gzipped,
//! with media, clubs, gear, messages and routes), whose every identifying value is listed in
//! the fixture's `.expected.json`.

use std::io::{Cursor, Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use kompass_core::import::{
    ImportLimits, Imported, import_strava_export, import_strava_export_with,
};
use serde_json::Value;

const EXPORT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/strava_bulk_export.zip");
const EXPECTED: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/strava_bulk_export.expected.json");
/// The document the importer makes of the fixture: the wasm tests (Node, Chromium) compare
/// theirs with it. `KOMPASS_BLESS=1` rewrites it after a deliberate change of the importer.
const DOCUMENT: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/strava_bulk_export.document.json");
const KEY: &str = "import-test-key-0123456789abcdef-0123456789";

fn export() -> Vec<u8> {
    std::fs::read(EXPORT).unwrap()
}

fn expected() -> Value {
    serde_json::from_slice(&std::fs::read(EXPECTED).unwrap()).unwrap()
}

fn import() -> Imported {
    import_strava_export(&export()).expect("the generated export imports")
}

/// Every planted value that appears in `text`.
fn planted_in(text: &str) -> Vec<String> {
    expected()["sentinels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .filter(|s| text.contains(s.as_str()))
        .collect()
}

#[test]
fn the_document_is_the_golden_one_the_wasm_tests_compare_with() {
    let document = import().document;
    if std::env::var_os("KOMPASS_BLESS").is_some() {
        std::fs::write(DOCUMENT, format!("{document}\n")).unwrap();
    }
    let golden = std::fs::read_to_string(DOCUMENT).unwrap();
    assert!(
        golden.trim_end() == document,
        "the import of the fixture changed; if on purpose, rerun with KOMPASS_BLESS=1"
    );
}

#[test]
fn the_fixture_plants_values_where_a_leak_would_show() {
    // The scan below means something only if the archive holds the planted values.
    let mut zip = zip::ZipArchive::new(Cursor::new(export())).unwrap();
    let mut all = String::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let name = f.name().unwrap().into_owned();
        all.push_str(&name);
        let mut body = Vec::new();
        f.read_to_end(&mut body).unwrap();
        if name.ends_with(".gz") {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut plain).unwrap();
            body = plain;
        }
        all.push_str(&String::from_utf8_lossy(&body));
    }
    let binary: Vec<String> = expected()["binary_sentinels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let textual = expected()["sentinels"].as_array().unwrap().len() - binary.len();
    let found: Vec<String> = planted_in(&all).into_iter().filter(|s| !binary.contains(s)).collect();
    // Every value planted as text is in the archive as text (FIT's are binary).
    assert_eq!(found.len(), textual);
    assert!(textual > 500 && binary.len() > 200, "{textual} {}", binary.len());
}

#[test]
fn no_planted_value_survives_in_the_document_or_the_report() {
    let out = import();
    assert_eq!(planted_in(&out.document), Vec::<String>::new(), "in the document");
    let report = serde_json::to_string(&out.report).unwrap();
    assert_eq!(planted_in(&report), Vec::<String>::new(), "in the report");
    for never in ["activities/", "media/", ".gpx", ".fit", ".tcx", "lat", "lon", "serial"] {
        assert!(!out.document.contains(never), "{never} in the document");
    }
    assert!(
        !report.contains(".jpg") && !report.contains("activities/1"),
        "file names in the report"
    );
}

#[test]
fn metrics_equal_the_csv_and_streams_keep_every_sample() {
    let out = import();
    let doc: Value = serde_json::from_str(&out.document).unwrap();
    let expected = expected();
    let acts = doc["activities"].as_array().unwrap();
    let want = expected["activities"].as_array().unwrap();
    assert_eq!(acts.len(), want.len());
    assert_eq!(doc["athlete"]["sex"], "F");
    assert_eq!(doc["athlete"]["weight"], 58.4);
    for (i, (a, w)) in acts.iter().zip(want).enumerate() {
        assert_eq!(a["start_date"], w["start_date"], "activity {i}");
        assert_eq!(a["type"], w["type"], "activity {i}");
        if !w["commute"].is_null() {
            assert_eq!(a["commute"], w["commute"], "activity {i}");
        }
        for (field, text) in w["metrics"].as_object().unwrap() {
            let csv: f64 = text.as_str().unwrap().parse().unwrap();
            assert_eq!(a[field].as_f64(), Some(csv), "activity {i} {field}");
        }
        // Byte for byte, too: the CSV's text is in the document.
        for (field, text) in w["metrics"].as_object().unwrap() {
            let member = format!("\"{field}\":{}", text.as_str().unwrap());
            assert!(out.document.contains(&member), "activity {i}: {member}");
        }
        if w["samples"].is_null() {
            assert!(a.get("streams").is_none(), "activity {i} has no file");
            continue;
        }
        let streams = &a["streams"];
        for (name, series) in w["samples"].as_object().unwrap() {
            if series.is_null() {
                continue;
            }
            let got: Vec<f64> = streams[name]["data"]
                .as_array()
                .unwrap_or_else(|| panic!("activity {i} ({}) has no {name}", w["format"]))
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let want: Vec<f64> =
                series.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            assert_eq!(got, want, "activity {i} ({}) {name}", w["format"]);
        }
        for dropped in ["latlng", "altitude", "temp", "grade_smooth"] {
            assert!(streams.get(dropped).is_none(), "activity {i} keeps {dropped}");
        }
    }
    let r = &out.report;
    let count = |kind: &str| r.removed.iter().find(|x| x.kind == kind).map_or(0, |x| x.count);
    assert_eq!(count("GPS points"), expected["gps_points"].as_u64().unwrap());
    assert_eq!(count("photos and videos"), expected["photos"].as_u64().unwrap());
    assert_eq!(count("activity titles"), want.len() as u64);
    assert_eq!(count("activity descriptions"), want.len() as u64 - 1);
    assert!(count("device serial numbers") >= 2 * 2 + 2, "FIT and TCX serials: {:?}", r.removed);
    assert_eq!(count("routes"), 1);
    // Altitude and temperature streams are read, then dropped by the scrub policy: every sample.
    assert_eq!(count("altitude samples"), expected["gps_points"].as_u64().unwrap());
    assert_eq!(count("activity files not listed in activities.csv"), 1);
    assert_eq!(r.activities, want.len());
    assert_eq!(r.activities_with_streams, want.len() - 1);
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
    let gps = r.removed.iter().find(|x| x.kind == "GPS points").unwrap();
    assert_eq!(gps.text, format!("{} GPS points", expected["gps_points"]));
}

#[test]
fn the_document_is_what_the_server_stores_after_its_keyed_scrub() {
    let out = import();
    let key = kompass_core::scrub::PseudonymKey::new("k1", KEY.as_bytes()).unwrap();
    let stored = kompass_core::scrub::scrub(out.document.as_bytes(), &key).unwrap();
    // Nothing more is removed: the importer's output is already within the policy.
    // (The keyless anonymization block is replaced by the keyed one.)
    assert_eq!(stored.report.removed, vec!["/anonymization".to_owned()]);
    let a: Value = serde_json::from_str(&out.document).unwrap();
    let mut b: Value = serde_json::from_str(&stored.document).unwrap();
    b["anonymization"] = a["anonymization"].clone();
    assert_eq!(a, b);
}

/// Maps an entry's name and body to its new body, or `None` to leave it out.
type Change<'a> = &'a dyn Fn(&str, Vec<u8>) -> Option<Vec<u8>>;

/// The fixture with each entry changed by `change`, and `extra` added.
fn rebuilt(change: Change<'_>, extra: &[(&str, &[u8])]) -> Vec<u8> {
    let mut src = zip::ZipArchive::new(Cursor::new(export())).unwrap();
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for i in 0..src.len() {
        let mut f = src.by_index(i).unwrap();
        let name = f.name().unwrap().into_owned();
        let mut body = Vec::new();
        f.read_to_end(&mut body).unwrap();
        if let Some(body) = change(&name, body) {
            w.start_file(name, opts).unwrap();
            w.write_all(&body).unwrap();
        }
    }
    for (name, body) in extra {
        w.start_file(*name, opts).unwrap();
        w.write_all(body).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[test]
fn a_truncated_fit_file_is_skipped_with_a_reason_and_the_rest_imports() {
    let archive = rebuilt(
        &|name, body| {
            Some(if name.ends_with(".fit") { body[..body.len() * 2 / 3].to_vec() } else { body })
        },
        &[],
    );
    let out = import_strava_export(&archive).unwrap();
    let skipped: Vec<_> = out.report.skipped.iter().map(|s| (s.reason.as_str(), s.count)).collect();
    assert!(skipped.iter().any(|(r, n)| r.contains("cut short") && *n == 1), "{skipped:?}");
    let want = expected()["activities"].as_array().unwrap().len();
    assert_eq!(out.report.activities, want, "the activity stays, without its streams");
    assert_eq!(out.report.activities_with_streams, want - 2);
    assert_eq!(planted_in(&out.document), Vec::<String>::new());
}

#[test]
fn every_truncation_of_a_fit_file_is_survived() {
    let mut zip = zip::ZipArchive::new(Cursor::new(export())).unwrap();
    let mut fit = Vec::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        if f.name().unwrap().ends_with(".fit") {
            f.read_to_end(&mut fit).unwrap();
            break;
        }
    }
    assert!(fit.len() > 1000);
    for cut in (0..fit.len()).step_by(7) {
        let row =
            "Activity ID,Activity Date,Filename\n1,\"May 1, 2024, 4:30:12 AM\",activities/1.fit\n";
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        w.start_file("activities.csv", opts).unwrap();
        w.write_all(row.as_bytes()).unwrap();
        w.start_file("activities/1.fit", opts).unwrap();
        w.write_all(&fit[..cut]).unwrap();
        let archive = w.finish().unwrap().into_inner();
        let out = import_strava_export(&archive).unwrap();
        assert_eq!(out.report.activities, 1, "cut at {cut}");
        assert_eq!(
            out.report.activities_with_streams + out.report.skipped.len(),
            1,
            "cut at {cut}: {:?}",
            out.report.skipped
        );
    }
}

#[test]
fn hostile_archives_are_refused_or_skipped_within_bounds() {
    // A zip bomb beside the real files: 64 MiB of zeros as an activity file.
    let bomb = vec![0u8; 64 << 20];
    let archive = rebuilt(
        &|name, body| Some(if name.ends_with(".tcx") { bomb.clone() } else { body }),
        &[("../../escape.csv", b"x"), ("activities/../../../etc/passwd", b"root:x:0:0")],
    );
    assert!(archive.len() < 2 << 20);
    let out = import_strava_export(&archive).unwrap();
    let reasons: Vec<&str> = out.report.skipped.iter().map(|s| s.reason.as_str()).collect();
    assert!(reasons.iter().any(|r| r.contains("zip bomb")), "{reasons:?}");
    assert_eq!(
        out.report
            .skipped
            .iter()
            .filter(|s| s.reason.contains("unsafe name"))
            .map(|s| s.count)
            .sum::<u64>(),
        2,
        "{reasons:?}"
    );
    // Memory: the bomb was never expanded past the ratio check.
    assert!(out.report.largest_entry_bytes < 4 << 20, "{}", out.report.largest_entry_bytes);
    assert!(!out.document.contains("root:x"));

    // Absurd counts and sizes refuse the archive with a reason.
    let few = ImportLimits { max_entries: 5, ..ImportLimits::default() };
    let err = import_strava_export_with(&export(), &few, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("entries"), "{err}");
    let small_total = ImportLimits { max_total_bytes: 10_000, ..ImportLimits::default() };
    let out = import_strava_export_with(&export(), &small_total, &mut |_| {}).unwrap();
    assert!(
        out.report.skipped.iter().any(|s| s.reason.contains("in all")),
        "{:?}",
        out.report.skipped
    );
    let few_samples = ImportLimits { max_samples: 10, ..ImportLimits::default() };
    let out = import_strava_export_with(&export(), &few_samples, &mut |_| {}).unwrap();
    assert_eq!(out.report.activities_with_streams, 0);
    assert!(out.report.skipped.iter().all(|s| s.reason.contains("more than 10 samples")));
}

#[test]
fn garbage_instead_of_a_zip_is_a_clear_error() {
    for input in [&b""[..], b"PK\x03\x04garbage", b"{\"activities\": []}", &export()[..1000]] {
        let err = import_strava_export(input).unwrap_err();
        assert!(err.to_string().contains("ZIP"), "{err}");
    }
}

fn kompass(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kompass"));
    cmd.env_clear()
        .current_dir(data_dir.parent().unwrap())
        .arg("--data-dir")
        .arg(data_dir)
        .env("S3_STORAGE_ENABLED", "false")
        .env("KOMPASS_PSEUDONYM_KEY", KEY)
        .stdin(Stdio::null());
    cmd
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "kompass failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn cli_dry_run_prints_the_document_and_stores_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = ok(kompass(&data).args(["rider", "import", "--dry-run", EXPORT]).output().unwrap());
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(printed.trim_end(), import().document);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let gps = expected()["gps_points"].as_u64().unwrap();
    assert!(stderr.contains(&format!("{gps} GPS points")), "{stderr}");
    assert!(stderr.contains("3 photos and videos"), "{stderr}");
    assert_eq!(planted_in(&stderr), Vec::<String>::new());
    assert!(!data.join("fitness").exists(), "nothing stored");

    let out = ok(kompass(&data)
        .args(["--json", "rider", "import", "--dry-run", EXPORT])
        .output()
        .unwrap());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["document"], serde_json::from_str::<Value>(&import().document).unwrap());
    assert_eq!(v["import"]["activities"], 7);
    assert!(v.get("saved").is_none());
}

#[test]
fn cli_import_stores_through_rider_save_and_refuses_without_a_user_or_an_export() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = ok(kompass(&data)
        .args(["--json", "rider", "import", "--user", "amelie", EXPORT])
        .output()
        .unwrap());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["saved"]["activity_count"], 7);
    assert_eq!(v["saved"]["has_power_data"], true);
    assert_eq!(v["import"]["activities_with_streams"], 6);
    let name = v["saved"]["name"].as_str().unwrap();
    assert!(name.starts_with("fitness_data_"), "{name}");

    let stored = std::fs::read(data.join("fitness").join("amelie").join(name)).unwrap();
    let stored = String::from_utf8(stored).unwrap();
    assert_eq!(planted_in(&stored), Vec::<String>::new());
    let doc: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(doc["anonymization"]["pii_removed"], true);
    assert_eq!(doc["anonymization"]["key_id"], "k1");
    assert_eq!(doc["activities"].as_array().unwrap().len(), 7);

    let loaded = ok(kompass(&data).args(["rider", "load", "--user", "amelie"]).output().unwrap());
    assert_eq!(String::from_utf8(loaded.stdout).unwrap(), stored);

    let out = kompass(&data).args(["rider", "import", EXPORT]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let json = tmp.path().join("export.json");
    std::fs::write(&json, b"{\"activities\": []}").unwrap();
    let out =
        kompass(&data).args(["rider", "import", "--user", "amelie"]).arg(&json).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a readable ZIP"), "{err}");
}

/// The import fuzz target's checks (fuzz/fuzz_targets/import.rs) on its seeds and findings.
#[test]
fn the_import_fuzz_seeds_and_findings_pass_the_targets_checks() {
    use kompass_core::import::fuzzing;
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut inputs = 0;
    for dir in ["seeds/import", "regressions/import"] {
        let Ok(rd) = std::fs::read_dir(fuzz.join(dir)) else { continue };
        for e in rd.flatten() {
            let data = std::fs::read(e.path()).unwrap();
            let Some((&which, input)) = data.split_first() else { continue };
            inputs += 1;
            let name = e.file_name();
            match which % 5 {
                0 => {
                    let out = import_strava_export(input).unwrap();
                    let again =
                        kompass_core::scrub::scrub_keyless(out.document.as_bytes()).unwrap();
                    assert_eq!(again.document, out.document, "{name:?}");
                }
                1 => assert!(fuzzing::gpx(input).unwrap() > 0, "{name:?}"),
                2 => assert!(fuzzing::tcx(input).unwrap() > 0, "{name:?}"),
                3 => assert!(fuzzing::fit(input).unwrap() > 0, "{name:?}"),
                _ => assert!(fuzzing::activities_csv(input).unwrap() > 0, "{name:?}"),
            }
        }
    }
    assert!(inputs >= 5, "the seeds are there");
}

#[test]
fn gpx_activities_get_a_distance_stream_summed_from_their_positions() {
    let out = import();
    let doc: Value = serde_json::from_str(&out.document).unwrap();
    let want = expected();
    let mut gpx = 0;
    for (a, w) in
        doc["activities"].as_array().unwrap().iter().zip(want["activities"].as_array().unwrap())
    {
        if !w["format"].as_str().is_some_and(|f| f.starts_with("gpx")) {
            continue;
        }
        gpx += 1;
        let d: Vec<f64> = a["streams"]["distance"]["data"]
            .as_array()
            .expect("a GPX activity has a distance stream")
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(d.len(), a["streams"]["time"]["data"].as_array().unwrap().len());
        assert_eq!(d[0], 0.0);
        assert!(d.windows(2).all(|p| p[0] <= p[1]), "the distance never decreases");
        // The generator moves each point by the speed it records; the CSV's distance is their
        // sum. Haversine on a sphere and the generator's flat step agree within 0.5%.
        let csv: f64 = w["metrics"]["distance"].as_str().unwrap().parse().unwrap();
        let last = *d.last().unwrap();
        assert!((last - csv).abs() / csv < 0.005, "{last} m against the CSV's {csv} m");
        assert_eq!(a["streams"]["distance"]["series_type"], "time");
    }
    assert!(gpx >= 2, "the fixture has GPX activities");
}

#[test]
fn the_import_is_the_same_in_every_time_zone() {
    // FIT timestamps are UTC seconds since the FIT epoch: the machine's zone must not matter.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut seen = None;
    for tz in ["UTC", "Pacific/Kiritimati", "America/St_Johns", "Asia/Kathmandu", "<-0330>3:30"] {
        let out = ok(kompass(&data)
            .env("TZ", tz)
            .args(["rider", "import", "--dry-run", EXPORT])
            .output()
            .unwrap());
        let doc = String::from_utf8(out.stdout).unwrap();
        match &seen {
            None => seen = Some(doc),
            Some(first) => assert!(first == &doc, "TZ={tz} changed the document"),
        }
    }
    assert_eq!(seen.unwrap().trim_end(), import().document);
}
