use kompass_wasm::precheck;
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
