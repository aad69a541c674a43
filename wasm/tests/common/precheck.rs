use kompass_wasm::{precheck, precheck_allowance};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::wasm_bindgen_test;

use super::{js, js_error, json};

const MIB: u64 = 1024 * 1024;

/// The spec's defaults: 50 MiB per file, 100 MiB per user, 4.5 GiB bucket, 70 %.
fn limits() -> JsValue {
    js(r#"{"max_file_bytes": 52428800, "max_user_bytes": 104857600,
           "max_bucket_bytes": 4831838208, "cleanup_threshold_percent": 70}"#)
}

fn usage(user: u64, bucket: u64) -> JsValue {
    js(&format!(r#"{{"user_bytes": {user}, "bucket_bytes": {bucket}}}"#))
}

#[wasm_bindgen_test]
fn an_over_size_file_is_refused_with_its_reason() {
    let meta = js(&format!(r#"{{"size": {}, "user": "u1", "name": "big.json"}}"#, 50 * MIB + 1));
    let v = json(&precheck(meta, usage(0, 0), limits(), None).unwrap());
    assert_eq!(v["verdict"], "refuse");
    assert_eq!(v["admitted"], false);
    assert_eq!(v["reason"], "file_too_large");
    assert_eq!(v["size"], 50 * MIB + 1);
    assert_eq!(v["limit"], 50 * MIB);
    let message = v["message"].as_str().unwrap();
    assert!(
        message.contains("S3_MAX_FILE_SIZE_MB") && message.contains("nothing was uploaded"),
        "{message}"
    );
}

#[wasm_bindgen_test]
fn a_small_file_is_admitted_and_the_threshold_makes_cleanup_due() {
    let v = json(
        &precheck(js(r#"{"size": 1000, "user": "u1"}"#), usage(0, 0), limits(), None).unwrap(),
    );
    assert_eq!(v, serde_json::json!({"verdict": "admit", "admitted": true}));

    // 69 MiB used + 2 MiB reaches 70 % of 100 MiB: admitted, cleanup due afterwards.
    let meta = js(&format!(r#"{{"size": {}, "user": "u1"}}"#, 2 * MIB));
    let v = json(&precheck(meta, usage(69 * MIB, 69 * MIB), limits(), None).unwrap());
    assert_eq!(v["verdict"], "admit_cleanup_due");
    assert_eq!(v["admitted"], true);
    assert_eq!(v["user"]["required_bytes"], 0);
    assert!(v["user"]["target_bytes"].as_u64().unwrap() > 0);
    assert!(v.get("message").is_none());
}

#[wasm_bindgen_test]
fn the_user_quota_is_hard_unless_cleanup_can_free_enough() {
    let meta = || js(&format!(r#"{{"size": {}, "user": "u1"}}"#, 10 * MIB));
    let v = json(&precheck(meta(), usage(95 * MIB, 95 * MIB), limits(), None).unwrap());
    assert_eq!(v["reason"], "user_quota_exceeded");
    assert_eq!(v["user"], "u1");
    assert!(v["message"].as_str().unwrap().contains("S3_MAX_USER_STORAGE_MB"));

    let freeable = js(&format!(r#"{{"user_bytes": {}, "bucket_bytes": {}}}"#, 20 * MIB, 20 * MIB));
    let v = json(&precheck(meta(), usage(95 * MIB, 95 * MIB), limits(), Some(freeable)).unwrap());
    assert_eq!(v["verdict"], "admit_after_cleanup");
    assert_eq!(v["user"]["required_bytes"], 5 * MIB);

    // Overwriting a 10 MiB object frees its bytes.
    let meta = js(&format!(r#"{{"size": {}, "user": "u1", "replaces": {}}}"#, 10 * MIB, 10 * MIB));
    let v = json(&precheck(meta, usage(95 * MIB, 95 * MIB), limits(), None).unwrap());
    assert_eq!(v["admitted"], true);
}

#[wasm_bindgen_test]
fn malformed_arguments_are_type_errors_naming_the_argument() {
    let (name, message) =
        js_error(precheck(js(r#"{"size": "big"}"#), usage(0, 0), limits(), None).unwrap_err());
    assert_eq!(name, "TypeError");
    assert!(message.starts_with("fileMeta:"), "{message}");

    let (name, message) =
        js_error(precheck(js(r#"{"size": 1}"#), js("{}"), limits(), None).unwrap_err());
    assert_eq!(name, "TypeError");
    assert!(message.starts_with("usage:") && message.contains("user_bytes"), "{message}");
}

// ---- the page's precheck: the core's decision on the server-signed allowance

const NOW: f64 = 1_800_000_000_000.0;

/// What `GET /api/allowance` answers as `allowance` (sealed with the server's secret).
fn sealed(bytes: u64, puts: u64) -> String {
    use kompass_core::admission::allowance::Allowance;
    Allowance {
        user: kompass_core::key::UserId::new("u1").unwrap(),
        bytes,
        puts,
        expires_at: kompass_core::time::UnixMs(NOW as i64 + 300_000),
        id: 7,
    }
    .seal(b"0123456789abcdef0123456789abcdef")
}

#[wasm_bindgen_test]
fn the_pages_precheck_admits_within_the_allowance_and_says_what_is_left() {
    let v = json(&precheck_allowance(1000.0, &sealed(5000, 3), limits(), NOW).unwrap());
    assert_eq!(
        v,
        serde_json::json!({"admitted": true, "bytes_left": 4000, "puts_left": 2,
                           "expires_at": NOW as i64 + 300_000})
    );
    // Exactly what is left fits.
    let v = json(&precheck_allowance(5000.0, &sealed(5000, 1), limits(), NOW).unwrap());
    assert_eq!(v["admitted"], true);
    assert_eq!(v["bytes_left"], 0);
}

#[wasm_bindgen_test]
fn the_pages_precheck_refuses_past_the_allowance_with_the_cores_reason() {
    let v = json(&precheck_allowance(5001.0, &sealed(5000, 3), limits(), NOW).unwrap());
    assert_eq!(v["admitted"], false);
    assert_eq!(v["reason"], "over_allowance");
    assert_eq!(v["left"], 5000);
    assert_eq!(v["size"], 5001);
    assert!(v["message"].as_str().unwrap().contains("GET /api/allowance"), "{v}");

    let big = (50 * MIB + 1) as f64;
    let v = json(&precheck_allowance(big, &sealed(200 * MIB, 3), limits(), NOW).unwrap());
    assert_eq!(
        (v["reason"].as_str(), v["limit"].as_u64()),
        (Some("file_too_large"), Some(50 * MIB))
    );

    let v = json(&precheck_allowance(1.0, &sealed(5000, 0), limits(), NOW).unwrap());
    assert_eq!(v["reason"], "no_puts_left", "the month's PUT budget is spent");

    let later = NOW + 300_000.0;
    let v = json(&precheck_allowance(1.0, &sealed(5000, 3), limits(), later).unwrap());
    assert_eq!(v["reason"], "expired", "{v}");
}

#[wasm_bindgen_test]
fn the_pages_precheck_throws_for_what_is_not_an_allowance() {
    let (name, _) =
        js_error(precheck_allowance(1.0, "not-an-allowance", limits(), NOW).unwrap_err());
    assert_eq!(name, "TokenError");
    let (name, _) = js_error(precheck_allowance(-1.0, &sealed(1, 1), limits(), NOW).unwrap_err());
    assert_eq!(name, "RangeError");
    let (name, message) =
        js_error(precheck_allowance(1.0, &sealed(1, 1), js("{}"), NOW).unwrap_err());
    assert_eq!(name, "TypeError");
    assert!(message.starts_with("limits"), "{message}");
}
