//! The public scrub API, with the original system's PII-removal acceptance case.

use kompass_core::scrub::{PseudonymKey, SCRUB_VERSION, ScrubError, scrub};
use serde_json::{Value, json};

fn key() -> PseudonymKey {
    PseudonymKey::new("k1", b"an-acceptance-test-secret").unwrap()
}

/// The original acceptance case: names, e-mail, city and GPS go; distance, watts, weight and
/// FTP stay; a pseudonym replaces the id, which appears nowhere.
#[test]
fn original_acceptance_case() {
    let input = json!({
        "basic_info": {
            "id": 123456789, "firstname": "John", "lastname": "Doe", "email": "john@example.com",
            "city": "San Francisco", "sex": "M", "weight": 75.0, "ftp": 250
        },
        "activities": [{
            "name": "Secret Ride", "distance": 25000, "start_latlng": [37.7749, -122.4194],
            "location_city": "San Francisco", "average_watts": 200
        }]
    });
    let out = scrub(input.to_string().as_bytes(), &key()).unwrap();
    let doc: Value = serde_json::from_str(&out.document).unwrap();

    for gone in [
        "John",
        "Doe",
        "john@example.com",
        "San Francisco",
        "Secret Ride",
        "37.7749",
        "-122.4194",
        "123456789",
    ] {
        assert!(!out.document.contains(gone), "{gone} survived: {}", out.document);
    }
    let athlete = &doc["basic_info"];
    for field in ["firstname", "lastname", "email", "city", "id"] {
        assert!(athlete.get(field).is_none(), "{field} kept");
    }
    assert_eq!(
        (&athlete["sex"], &athlete["weight"], &athlete["ftp"]),
        (&json!("M"), &json!(75.0), &json!(250))
    );
    let user_hash = athlete["user_hash"].as_str().unwrap();
    assert_eq!(user_hash, key().athlete_pseudonym(123_456_789));
    assert!(user_hash.starts_with("k1:") && user_hash.len() == 3 + 64);

    let activity = &doc["activities"][0];
    assert_eq!(activity, &json!({"distance": 25000, "average_watts": 200}));

    assert_eq!(doc["anonymization"]["pii_removed"], json!(true));
    assert_eq!(doc["anonymization"]["version"], json!(SCRUB_VERSION));
    assert_eq!(doc["anonymization"]["key_id"], json!("k1"));

    let mut removed = out.report.removed.clone();
    removed.sort();
    assert_eq!(
        removed,
        [
            "/activities/0/location_city",
            "/activities/0/name",
            "/activities/0/start_latlng",
            "/basic_info/city",
            "/basic_info/email",
            "/basic_info/firstname",
            "/basic_info/lastname",
        ]
    );
    assert_eq!(out.report.removed_count, 7);
    assert_eq!(out.report.activities_kept, 1);
    assert_eq!(out.report.user_hash.as_deref(), Some(user_hash));
}

#[test]
fn the_same_input_and_key_give_the_same_document_and_another_key_another_pseudonym() {
    let input = br#"{"athlete": {"id": 42, "ftp": 300}}"#;
    let a = scrub(input, &key()).unwrap();
    assert_eq!(a, scrub(input, &key()).unwrap());
    let other = PseudonymKey::new("k2", b"a-different-secret-key").unwrap();
    let b = scrub(input, &other).unwrap();
    assert_ne!(a.report.user_hash, b.report.user_hash);
    assert!(b.document.contains(r#""key_id":"k2""#));
}

#[test]
fn the_report_serializes_for_the_cli_and_the_browser() {
    let out = scrub(br#"{"basic_info": {"id": 1, "firstname": "A"}}"#, &key()).unwrap();
    let report = serde_json::to_value(&out.report).unwrap();
    assert_eq!(report["removed"], json!(["/basic_info/firstname"]));
    assert_eq!(report["removed_count"], json!(1));
    assert_eq!(report["version"], json!(SCRUB_VERSION));
    assert_eq!(report["key_id"], json!("k1"));
}

#[test]
fn errors_say_what_is_wrong() {
    let not_json = scrub(b"firstname=John", &key()).unwrap_err();
    assert!(matches!(not_json, ScrubError::NotJson { line: 1, .. }));
    assert!(not_json.to_string().contains("not valid JSON"), "{not_json}");
    let scalar = scrub(b"42", &key()).unwrap_err();
    assert!(scalar.to_string().contains("a JSON number, not a rider document"), "{scalar}");
}

#[test]
fn keyless_scrub_drops_ids_instead_of_pseudonymizing_them() {
    let input = br#"{"basic_info":{"id":123456789,"firstname":"John","ftp":250},
        "activities":[{"id":987654321,"name":"Secret Ride","distance":25000,"start_latlng":[37.7749,-122.4194]}]}"#;
    let out = kompass_core::scrub::scrub_keyless(input).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&out.document).unwrap();
    assert!(!out.document.contains("123456789") && !out.document.contains("987654321"));
    assert!(!out.document.contains("John") && !out.document.contains("37.7749"));
    assert_eq!(doc["basic_info"]["ftp"], 250);
    assert_eq!(doc["activities"][0]["distance"], 25000);
    assert!(doc["basic_info"].get("user_hash").is_none());
    assert_eq!(doc["anonymization"]["pii_removed"], true);
    assert_eq!(doc["anonymization"]["pseudonym"], "none");
    assert!(doc["anonymization"]["key_id"].is_null());
    assert_eq!(out.report.key_id, None);
    assert_eq!(out.report.user_hash, None);
    assert!(out.report.removed.iter().any(|p| p == "/basic_info/id"), "{:?}", out.report.removed);
    assert!(out.report.removed.iter().any(|p| p == "/activities/0/id"), "{:?}", out.report.removed);
}
