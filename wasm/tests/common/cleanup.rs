use kompass_wasm::plan_cleanup;
use wasm_bindgen_test::wasm_bindgen_test;

use super::{js, js_error, json};

/// User u1 has six 20-byte routes (oldest first) against a 100-byte quota; u2 has one file.
fn inventory() -> String {
    let mut objects: Vec<String> = (0..6)
        .map(|i| {
            format!(
                r#"{{"key": "users/u1/routes/r{i}.json", "size": 20, "last_modified_ms": {}, "user": "u1", "data_type": "routes"}}"#,
                1_000 + i
            )
        })
        .collect();
    objects.push(
        r#"{"key": "users/u2/routes/x.json", "size": 5, "last_modified_ms": 1, "user": "u2", "data_type": "routes"}"#
            .into(),
    );
    format!("[{}]", objects.join(","))
}

#[wasm_bindgen_test]
fn a_user_over_the_threshold_loses_its_oldest_files_only() {
    // 120 bytes of a 100-byte quota, threshold 70%: below 70 needs 3 files gone (60 bytes left);
    // min_files_to_keep 1 and "at most half" (3 of 6) allow exactly that.
    let policy = r#"{"user_quota_bytes": 100, "bucket_bytes": 1000000, "threshold_percent": 70,
                     "min_files_to_keep": 1, "user": "u1"}"#;
    let plan = json(&plan_cleanup(js(&inventory()), js(policy), 10_000.0).unwrap());
    let keys: Vec<&str> =
        plan["deletions"].as_array().unwrap().iter().map(|d| d["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        ["users/u1/routes/r0.json", "users/u1/routes/r1.json", "users/u1/routes/r2.json"]
    );
    assert_eq!(plan["bytes_freed"], 60);
    assert_eq!(plan["deletions"][0]["reason"]["scope"], "user_quota");
    assert_eq!(plan["deletions"][0]["reason"]["limit_bytes"], 100);
    assert_eq!(plan["usage_after"]["users"]["u1"], serde_json::json!({"bytes": 60, "files": 3}));
    assert_eq!(plan["usage_before"]["bucket"], serde_json::json!({"bytes": 125, "files": 7}));
}

#[wasm_bindgen_test]
fn the_policy_protects_young_files_and_kept_minimums() {
    // Every file is younger than min_age_ms at now = 10 000 ms: nothing may go.
    let policy = r#"{"user_quota_bytes": 100, "bucket_bytes": 1000000, "min_age_ms": 60000}"#;
    let plan = json(&plan_cleanup(js(&inventory()), js(policy), 10_000.0).unwrap());
    assert_eq!(plan["deletions"], serde_json::json!([]));
    assert_eq!(plan["usage_after"]["users"]["u1"]["bytes"], 120);

    // The default keeps 5 per group, so only 1 of u1's 6 files may go.
    let policy = r#"{"user_quota_bytes": 100, "bucket_bytes": 1000000}"#;
    let plan = json(&plan_cleanup(js(&inventory()), js(policy), 10_000.0).unwrap());
    assert_eq!(plan["deletions"].as_array().unwrap().len(), 1);
}

#[wasm_bindgen_test]
fn a_bad_policy_or_inventory_is_an_error_with_its_reason() {
    let policy = r#"{"user_quota_bytes": 100, "bucket_bytes": 1000, "threshold_percent": 0}"#;
    let (name, message) = js_error(plan_cleanup(js(&inventory()), js(policy), 0.0).unwrap_err());
    assert_eq!(name, "PolicyError");
    assert!(message.contains("S3_CLEANUP_THRESHOLD_PERCENT"), "{message}");

    let policy = r#"{"user_quota_bytes": 100, "bucket_bytes": 1000}"#;
    let (name, message) =
        js_error(plan_cleanup(js(r#"[{"key": "k"}]"#), js(policy), 0.0).unwrap_err());
    assert_eq!(name, "TypeError");
    assert!(message.starts_with("inventory:") && message.contains("size"), "{message}");

    let (name, message) =
        js_error(plan_cleanup(js("[]"), js(r#"{"bucket_bytes": 1000}"#), 0.0).unwrap_err());
    assert_eq!(name, "TypeError");
    assert!(message.contains("user_quota_bytes"), "{message}");
}
