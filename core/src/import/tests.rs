//! Unit tests of the importer on archives built here; the generated export with FIT files is
//! tested in native/tests/it/strava_import.rs.

use std::io::Write;

use super::*;

const HEADER: &str = "Activity ID,Activity Date,Activity Name,Activity Type,Activity Description,Elapsed Time,Distance,Max Heart Rate,Commute,Activity Private Note,Filename,Elapsed Time,Moving Time,Distance,Average Watts,Weather Condition,Media";

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, body) in entries {
        w.start_file(*name, opts).unwrap();
        w.write_all(body).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn gpx(points: usize) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\"?><gpx creator=\"Edge SECRETDEVICE\" xmlns:gpxtpx=\"x\"><trk><name>SECRETTITLE</name><trkseg>",
    );
    for i in 0..points {
        s.push_str(&format!(
            "<trkpt lat=\"45.1234567\" lon=\"6.7654321\"><ele>450.5</ele><time>2024-05-01T04:30:{:02}Z</time><extensions><power>{}</power><gpxtpx:TrackPointExtension><gpxtpx:hr>{}</gpxtpx:hr><gpxtpx:cad>85</gpxtpx:cad></gpxtpx:TrackPointExtension></extensions></trkpt>",
            i % 60,
            200 + i,
            120 + i
        ));
    }
    s.push_str("</trkseg></trk></gpx>");
    s
}

fn csv_rows(rows: &[&str]) -> Vec<u8> {
    let mut s = String::from(HEADER);
    for r in rows {
        s.push('\n');
        s.push_str(r);
    }
    s.into_bytes()
}

const ROW: &str = "111222333,\"May 1, 2024, 4:30:12 AM\",SECRETTITLE,Virtual Ride,SECRETDESC,3600,52.35,170,true,SECRETNOTE,activities/111222333.gpx,3600.0,3500.5,52345.6,212.4,SECRETWEATHER,media/1.jpg";

fn import(archive: &[u8]) -> Imported {
    import_strava_export(archive).expect("imports")
}

#[test]
fn a_small_export_keeps_metrics_and_streams_and_drops_everything_identifying() {
    let archive = zip_of(&[
        ("activities.csv", &csv_rows(&[ROW])),
        (
            "profile.csv",
            b"Athlete ID,First Name,Sex,Weight,City\n987654,SECRETNAME,F,58.4,SECRETCITY\n",
        ),
        ("activities/111222333.gpx", gpx(3).as_bytes()),
        ("media/1.jpg", b"\xff\xd8SECRETPHOTO"),
        ("clubs.csv", b"Club Name\nSECRETCLUB\n"),
    ]);
    let out = import(&archive);
    for secret in
        ["SECRET", "111222333", "987654", "45.1234567", "6.7654321", "media/1.jpg", "activities/"]
    {
        assert!(!out.document.contains(secret), "{secret} in {}", out.document);
        let report = serde_json::to_string(&out.report).unwrap();
        assert!(!report.contains(secret), "{secret} in the report {report}");
    }
    let doc: serde_json::Value = serde_json::from_str(&out.document).unwrap();
    assert_eq!(doc["athlete"], serde_json::json!({"sex": "F", "weight": 58.4}));
    let a = &doc["activities"][0];
    assert_eq!(a["start_date"], "2024-05-01T04:30:12Z");
    assert_eq!(a["type"], "VirtualRide");
    assert_eq!(a["commute"], true);
    // The SI columns (the last of each repeated name), byte for byte.
    assert!(out.document.contains("\"distance\":52345.6"), "{}", out.document);
    assert!(out.document.contains("\"elapsed_time\":3600.0"));
    assert!(out.document.contains("\"moving_time\":3500.5"));
    assert!(out.document.contains("\"max_heartrate\":170"));
    assert_eq!(a["streams"]["heartrate"]["data"], serde_json::json!([120, 121, 122]));
    assert_eq!(a["streams"]["watts"]["data"], serde_json::json!([200, 201, 202]));
    assert_eq!(a["streams"]["time"]["data"], serde_json::json!([0, 1, 2]));
    assert!(a["streams"].get("altitude").is_none(), "the policy drops altitude");
    assert!(a["streams"].get("latlng").is_none());
    let r = &out.report;
    let count = |kind: &str| r.removed.iter().find(|x| x.kind == kind).map_or(0, |x| x.count);
    assert_eq!(count("GPS points"), 3);
    assert_eq!(count("activity titles"), 1);
    assert_eq!(count("activity descriptions"), 1);
    assert_eq!(count("private notes"), 1);
    assert_eq!(count("photos and videos"), 1);
    assert_eq!(count("altitude samples"), 3, "the policy drops altitude: 3 samples");
    assert_eq!(count("files of clubs"), 1);
    assert!(count("profile details (name, e-mail, city, ...)") >= 3);
    assert_eq!(r.activities, 1);
    assert_eq!(r.activities_with_streams, 1);
    assert_eq!(r.samples, 3);
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
    assert!(r.removed.iter().any(|x| x.text == "3 GPS points"));
}

#[test]
fn the_document_is_a_fixed_point_of_the_scrubber() {
    let archive = zip_of(&[
        ("activities.csv", &csv_rows(&[ROW])),
        ("activities/111222333.gpx", gpx(5).as_bytes()),
    ]);
    let out = import(&archive);
    let again = scrub::scrub_keyless(out.document.as_bytes()).unwrap();
    assert_eq!(again.document, out.document);
}

#[test]
fn not_a_zip_and_not_an_export_are_refused() {
    assert!(matches!(import_strava_export(b"{\"activities\": []}"), Err(ImportError::NotZip(_))));
    let archive = zip_of(&[("profile.csv", b"Sex\nF\n")]);
    assert_eq!(import_strava_export(&archive), Err(ImportError::NotStravaExport));
}

#[test]
fn unsafe_names_are_skipped_with_a_reason() {
    let archive = zip_of(&[
        ("activities.csv", &csv_rows(&[ROW])),
        ("../../etc/passwd", b"root"),
        ("/abs/olute.gpx", b"x"),
        ("activities/111222333.gpx", gpx(2).as_bytes()),
    ]);
    let out = import(&archive);
    let unsafe_skips: u64 = out
        .report
        .skipped
        .iter()
        .filter(|s| s.reason.contains("unsafe name"))
        .map(|s| s.count)
        .sum();
    assert_eq!(unsafe_skips, 2, "{:?}", out.report.skipped);
    assert!(!out.document.contains("root"));
}

#[test]
fn a_zip_bomb_entry_is_skipped_without_expanding_it() {
    let bomb = vec![b'0'; 40 << 20];
    let archive =
        zip_of(&[("activities.csv", &csv_rows(&[ROW])), ("activities/111222333.gpx", &bomb)]);
    assert!(archive.len() < 1 << 20);
    let out = import(&archive);
    assert!(
        out.report.skipped.iter().any(|s| s.reason.contains("zip bomb")),
        "{:?}",
        out.report.skipped
    );
    assert!(out.report.largest_entry_bytes < 40 << 20);
    assert!(out.report.expanded_bytes < 4 << 20, "{}", out.report.expanded_bytes);
}

#[test]
fn an_oversized_entry_is_skipped_and_an_oversized_csv_refuses_the_archive() {
    let limits = ImportLimits { max_entry_bytes: 4096, ..ImportLimits::default() };
    let archive = zip_of(&[
        ("activities.csv", &csv_rows(&[ROW])),
        ("activities/111222333.gpx", gpx(100).as_bytes()),
    ]);
    let out = import_strava_export_with(&archive, &limits, &mut |_| {}).unwrap();
    assert!(
        out.report.skipped.iter().any(|s| s.reason.contains("more than")),
        "{:?}",
        out.report.skipped
    );
    let tiny = ImportLimits { max_entry_bytes: 64, ..ImportLimits::default() };
    assert!(matches!(
        import_strava_export_with(&archive, &tiny, &mut |_| {}),
        Err(ImportError::BadActivities(_))
    ));
}

#[test]
fn xml_entity_tricks_are_refused() {
    let laughs = "<?xml version=\"1.0\"?><!DOCTYPE gpx [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]><gpx><trk><trkseg><trkpt lat=\"1\" lon=\"2\"><hr>&b;</hr></trkpt></trkseg></trk></gpx>";
    let external = "<?xml version=\"1.0\"?><!DOCTYPE gpx [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><gpx><trk><name>&x;</name></trk></gpx>";
    for (i, body) in [laughs, external].iter().enumerate() {
        let archive = zip_of(&[
            ("activities.csv", &csv_rows(&[ROW])),
            ("activities/111222333.gpx", body.as_bytes()),
        ]);
        let out = import(&archive);
        assert!(
            out.report.skipped.iter().any(|s| s.reason.contains("DTD")),
            "{i}: {:?}",
            out.report.skipped
        );
        assert!(!out.document.contains("aaaa") && !out.document.contains("root"));
    }
    // An undeclared entity in a sample leaves that sample empty.
    let body = gpx(2).replacen("<gpxtpx:hr>120</gpxtpx:hr>", "<gpxtpx:hr>&b;</gpxtpx:hr>", 1);
    let archive = zip_of(&[
        ("activities.csv", &csv_rows(&[ROW])),
        ("activities/111222333.gpx", body.as_bytes()),
    ]);
    let doc: serde_json::Value = serde_json::from_str(&import(&archive).document).unwrap();
    assert_eq!(
        doc["activities"][0]["streams"]["heartrate"]["data"],
        serde_json::json!([null, 121])
    );
}

#[test]
fn gzipped_and_damaged_activity_files() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(gpx(4).as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let row = ROW.replace("activities/111222333.gpx", "activities/111222333.gpx.gz");
    let archive =
        zip_of(&[("activities.csv", &csv_rows(&[&row])), ("activities/111222333.gpx.gz", &gz)]);
    assert_eq!(import(&archive).report.samples, 4);

    let archive = zip_of(&[
        ("activities.csv", &csv_rows(&[&row])),
        ("activities/111222333.gpx.gz", &gz[..gz.len() / 2]),
    ]);
    let out = import(&archive);
    assert_eq!(out.report.samples, 0);
    assert_eq!(out.report.activities, 1, "the activity stays, without streams");
    assert!(
        out.report.skipped.iter().any(|s| s.reason.contains("gzipped")),
        "{:?}",
        out.report.skipped
    );

    let fit_row = ROW.replace(".gpx", ".fit");
    let archive = zip_of(&[
        ("activities.csv", &csv_rows(&[&fit_row])),
        ("activities/111222333.fit", b"\x0e\x10\x00\x00\x10\x00\x00\x00.FIT\x00\x00\x40\x00"),
    ]);
    let out = import(&archive);
    assert!(
        out.report.skipped.iter().any(|s| s.reason.contains("cut short")),
        "{:?}",
        out.report.skipped
    );
}

#[test]
fn a_missing_activity_file_and_unknown_sports_and_dates() {
    let row = ROW
        .replace("Virtual Ride", "Underwater Basket Weaving")
        .replace("\"May 1, 2024, 4:30:12 AM\"", "1er mai 2024");
    let archive = zip_of(&[("activities.csv", &csv_rows(&[&row]))]);
    let out = import(&archive);
    let doc: serde_json::Value = serde_json::from_str(&out.document).unwrap();
    let a = &doc["activities"][0];
    assert!(a.get("type").is_none() && a.get("start_date").is_none(), "{a}");
    assert!(out.report.skipped.iter().any(|s| s.reason.contains("missing")));
    assert!(out.report.removed.iter().any(|r| r.kind == "activity dates in an unknown format"));
}

#[test]
fn progress_is_reported_for_every_entry() {
    let archive = zip_of(&[
        ("activities.csv", &csv_rows(&[ROW])),
        ("activities/111222333.gpx", gpx(2).as_bytes()),
        ("media/1.jpg", b"x"),
    ]);
    let mut seen = Vec::new();
    import_strava_export_with(&archive, &ImportLimits::default(), &mut |p| seen.push(p)).unwrap();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen.last().unwrap().entries_done, 3);
    assert!(seen.windows(2).all(|w| w[0].bytes_done <= w[1].bytes_done));
}

#[test]
fn json_numbers_are_copied_or_normalised() {
    assert_eq!(json_number("52345.6").as_deref(), Some("52345.6"));
    assert_eq!(json_number(" 170 ").as_deref(), Some("170"));
    assert_eq!(json_number("1.").as_deref(), Some("1"));
    assert_eq!(json_number("+5").as_deref(), Some("5"));
    assert_eq!(json_number(".5").as_deref(), Some("0.5"));
    for bad in ["", "abc", "NaN", "inf", "1e999", "0x10"] {
        assert_eq!(json_number(bad), None, "{bad}");
    }
    assert_eq!(thousands(342_118), "342,118");
    assert_eq!(thousands(12), "12");
    assert_eq!(thousands(1_000_000), "1,000,000");
}

/// A GPX point at a position, with a time.
fn gpx_at(points: &[(f64, f64)]) -> String {
    let mut s = String::from("<?xml version=\"1.0\"?><gpx><trk><trkseg>");
    for (i, (lat, lon)) in points.iter().enumerate() {
        s.push_str(&format!(
            "<trkpt lat=\"{lat}\" lon=\"{lon}\"><time>2024-05-01T04:30:{i:02}Z</time></trkpt>"
        ));
    }
    s.push_str("<trkpt><time>2024-05-01T04:31:00Z</time></trkpt></trkseg></trk></gpx>");
    s
}

#[test]
fn gpx_distance_is_summed_from_the_positions_in_metres() {
    // 0.001 degree along the equator, then 0.001 degree north: R * pi / 180 / 1000 each.
    let archive = zip_of(&[
        ("activities.csv", &csv_rows(&[ROW])),
        (
            "activities/111222333.gpx",
            gpx_at(&[(0.0, 0.0), (0.0, 0.001), (0.001, 0.001)]).as_bytes(),
        ),
    ]);
    let out = import(&archive);
    let doc: serde_json::Value = serde_json::from_str(&out.document).unwrap();
    let d = &doc["activities"][0]["streams"]["distance"]["data"];
    let step = 6_371_008.8 * std::f64::consts::PI / 180.0 / 1000.0;
    assert_eq!(d[0], 0.0);
    assert!((d[1].as_f64().unwrap() - step).abs() < 0.006, "{d}");
    assert!((d[2].as_f64().unwrap() - 2.0 * step).abs() < 0.006, "{d}");
    // The point without a position has no distance; no coordinate reaches the document.
    assert_eq!(d[3], serde_json::Value::Null);
    assert_eq!(doc["activities"][0]["streams"]["distance"]["series_type"], "time");
    assert!(!out.document.contains("0.001"), "{}", out.document);
    // The same distance the other way round, and across the antimeridian.
    assert!((xml::haversine((0.001, 0.001), (0.0, 0.001)) - step).abs() < 1e-6);
    assert!((xml::haversine((0.0, 179.9995), (0.0, -179.9995)) - step).abs() < 1e-6);
}

/// A FIT file by hand: a record with a full timestamp (FIT seconds) and a position, then two
/// with compressed-timestamp headers (5-bit offsets), heart rate in each.
fn fit_with_compressed_timestamps(base: u32, offsets: [u8; 2]) -> Vec<u8> {
    let mut data = Vec::new();
    // Definition, local type 0: record (20) with timestamp, position_lat/long, heart_rate.
    data.extend([0x40, 0, 0, 20, 0, 4, 253, 4, 0x86, 0, 4, 0x85, 1, 4, 0x85, 3, 1, 0x02]);
    // Definition, local type 1: record with heart_rate only (the header carries the time).
    data.extend([0x41, 0, 0, 20, 0, 1, 3, 1, 0x02]);
    data.push(0x00);
    data.extend(base.to_le_bytes());
    data.extend(500_000_000i32.to_le_bytes());
    data.extend(70_000_000i32.to_le_bytes());
    data.push(150);
    for (i, off) in offsets.iter().enumerate() {
        data.push(0x80 | (1 << 5) | (off & 31));
        data.push(151 + i as u8);
    }
    let mut fit = vec![14, 0x10, 0x54, 0x08];
    fit.extend((data.len() as u32).to_le_bytes());
    fit.extend(b".FIT");
    fit.extend([0, 0]);
    fit.extend(data);
    fit.extend([0, 0]);
    fit
}

#[test]
fn fit_timestamps_are_utc_seconds_since_the_fit_epoch_with_compressed_offsets() {
    // 1e9 is a multiple of 32: offset 5 is base + 5; offset 3 (< 5) rolls over to base + 35.
    let fit = fit_with_compressed_timestamps(1_000_000_000, [5, 3]);
    let fit_row = ROW.replace(".gpx", ".fit");
    let archive =
        zip_of(&[("activities.csv", &csv_rows(&[&fit_row])), ("activities/111222333.fit", &fit)]);
    let out = import(&archive);
    assert!(out.report.skipped.is_empty(), "{:?}", out.report.skipped);
    let doc: serde_json::Value = serde_json::from_str(&out.document).unwrap();
    let streams = &doc["activities"][0]["streams"];
    assert_eq!(streams["time"]["data"], serde_json::json!([0, 5, 35]));
    assert_eq!(streams["heartrate"]["data"], serde_json::json!([150, 151, 152]));
    let count =
        |kind: &str| out.report.removed.iter().find(|x| x.kind == kind).map_or(0, |x| x.count);
    assert_eq!(count("GPS points"), 1);
    // The absolute time: FIT second 1e9 is Unix 1,631,065,600 (2021-09-08T01:46:40Z), in UTC.
    let track = fit::read(&fit, 10, &mut RemovedTally::new()).unwrap();
    assert_eq!(track.first_time(), Some(1_631_065_600.0));
}

#[test]
fn activities_keep_the_csv_order_whatever_the_order_of_their_files() {
    let rows: Vec<String> = (1..=4).map(|i| ROW.replace("111222333", &format!("10{i}"))).collect();
    let csv = csv_rows(&rows.iter().map(String::as_str).collect::<Vec<_>>());
    let files: Vec<(String, String)> =
        (1..=4).map(|i| (format!("activities/10{i}.gpx"), gpx(i + 1))).collect();
    let mut forward: Vec<(&str, &[u8])> = vec![("activities.csv", &csv)];
    forward.extend(files.iter().map(|(n, b)| (n.as_str(), b.as_bytes())));
    // Files backwards, one missing: the first activity waits for all the others.
    let mut backward: Vec<(&str, &[u8])> = vec![("activities.csv", &csv)];
    backward.extend(files.iter().rev().map(|(n, b)| (n.as_str(), b.as_bytes())));
    let a = import(&zip_of(&forward));
    let b = import(&zip_of(&backward));
    assert_eq!(a.document, b.document);
    // In CSV order: activity i has i + 1 samples.
    let doc: serde_json::Value = serde_json::from_str(&a.document).unwrap();
    let lens: Vec<usize> = doc["activities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["streams"]["time"]["data"].as_array().unwrap().len())
        .collect();
    assert_eq!(lens, [2, 3, 4, 5]);
    let without_first = &backward[..backward.len() - 1];
    let c = import(&zip_of(without_first));
    let doc: serde_json::Value = serde_json::from_str(&c.document).unwrap();
    assert!(doc["activities"][0].get("streams").is_none());
    assert_eq!(doc["activities"][1]["streams"]["time"]["data"].as_array().unwrap().len(), 3);
    assert_eq!(c.report.activities_with_streams, 3);
}

#[test]
fn the_chunked_document_is_the_same_bytes_and_hash() {
    let rows: Vec<String> =
        (0..12).map(|i| ROW.replace("111222333", &format!("1112223{i:02}"))).collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let files: Vec<(String, String)> =
        (0..12).map(|i| (format!("activities/1112223{i:02}.gpx"), gpx(50 + i))).collect();
    let csv = csv_rows(&rows);
    let mut entries: Vec<(&str, &[u8])> = vec![("activities.csv", &csv)];
    entries.extend(files.iter().map(|(n, b)| (n.as_str(), b.as_bytes())));
    let archive = zip_of(&entries);
    let whole = import(&archive);
    let chunked = import_strava_export_chunks_from(
        Cursor::new(&archive),
        archive.len() as u64,
        &ImportLimits::default(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(chunked.chunks.concat(), whole.document.as_bytes());
    assert_eq!(chunked.report, whole.report);
    assert_eq!(chunked.sha256(), crate::inventory::Sha256Digest::of(whole.document.as_bytes()));
    assert_eq!(whole.report.activities_with_streams, 12);
}

#[test]
fn chunks_fill_up_to_their_size_and_a_long_piece_is_its_own() {
    let mut c = Chunks::default();
    let a = "a".repeat(3 << 20);
    let b = "b".repeat(2 << 20);
    let long = "c".repeat(CHUNK_BYTES + 1);
    for s in [a.as_str(), "x", b.as_str(), long.as_str(), "y", "z"] {
        c.push_str(s);
    }
    let lens: Vec<usize> = c.chunks.iter().map(Vec::len).collect();
    assert_eq!(lens, [(3 << 20) + 1, 2 << 20, CHUNK_BYTES + 1, 2]);
    assert!(c.chunks.iter().all(|k| k.len() <= CHUNK_BYTES || k.len() == long.len()));
    assert_eq!(c.len, a.len() + b.len() + long.len() + 3);
    assert_eq!(c.chunks.concat(), [a.as_str(), "x", &b, &long, "y", "z"].concat().as_bytes());
}
