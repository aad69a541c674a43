use kompass_wasm::{Config, mint_token};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::wasm_bindgen_test;

use super::{js, js_error, json};

const SERVER_SECRET: &str = "server-secret-0123456789abcdef-0123456789";
const AWS_SECRET: &str = "test-secret-key-0123456789abcdefghijk";

fn env(extra: &str) -> js_sys::Object {
    js(&format!(
        r#"{{"S3_STORAGE_ENABLED": "true", "AWS_S3_BUCKET": "kompass-test",
            "AWS_ACCESS_KEY_ID": "AKIATESTKEY000000001", "AWS_SECRET_ACCESS_KEY": "{AWS_SECRET}",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:8333", "KOMPASS_SERVER_SECRET": "{SERVER_SECRET}"
            {extra}}}"#
    ))
    .unchecked_into()
}

#[wasm_bindgen_test]
fn limits_come_from_the_environment_in_binary_units() {
    let config =
        Config::new(&env(r#", "S3_MAX_FILE_SIZE_MB": "0.5", "S3_MAX_TOTAL_STORAGE_GB": "4.5""#))
            .unwrap();
    assert!(config.s3_enabled());
    assert_eq!(
        json(&config.limits().unwrap()),
        serde_json::json!({"max_file_bytes": 524288, "max_user_bytes": 104857600u64,
                           "max_bucket_bytes": 4831838208u64, "cleanup_threshold_percent": 70})
    );
}

#[wasm_bindgen_test]
fn every_problem_is_reported_at_once_without_secret_values() {
    let err = Config::new(&env(
        r#", "S3_MAX_FILE_SIZE_MB": "lots", "S3_CLEANUP_THRESHOLD_PERCENT": "101", "KOMPASS_PSEUDONYM_KEY": "short-secret-value""#,
    ))
    .err()
    .expect("invalid config is refused");
    let problems = json(&js_sys::Reflect::get(&err, &"problems".into()).unwrap());
    let variables: Vec<&str> =
        problems.as_array().unwrap().iter().map(|p| p["variable"].as_str().unwrap()).collect();
    assert_eq!(
        variables,
        ["S3_MAX_FILE_SIZE_MB", "S3_CLEANUP_THRESHOLD_PERCENT", "KOMPASS_PSEUDONYM_KEY"]
    );
    let (name, message) = js_error(err);
    assert_eq!(name, "ConfigError");
    assert!(
        message.contains("S3_MAX_FILE_SIZE_MB") && message.contains("KOMPASS_PSEUDONYM_KEY"),
        "{message}"
    );
    assert!(!message.contains("short-secret-value"), "{message}");
}

#[wasm_bindgen_test]
fn non_string_bindings_are_ignored_and_json_hides_secrets() {
    let env = env("");
    js_sys::Reflect::set(&env, &"KV".into(), &js_sys::Object::new()).unwrap();
    js_sys::Reflect::set(&env, &"S3_MIN_FILES_TO_KEEP".into(), &JsValue::from(3)).unwrap();
    js_sys::Reflect::set(&env, &"S3_MAX_FILE_SIZE_MB".into(), &JsValue::from(0.5)).unwrap();
    js_sys::Reflect::set(&env, &"S3_AUTO_CLEANUP_ENABLED".into(), &JsValue::FALSE).unwrap();
    let config = Config::new(&env).unwrap();
    let shown = String::from(js_sys::JSON::stringify(&config.to_json().unwrap()).unwrap());
    assert!(!shown.contains(AWS_SECRET) && !shown.contains(SERVER_SECRET), "{shown}");
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["server_secret"], "set");
    assert_eq!(shown["bucket"], "kompass-test");
    // wrangler.toml `[vars]` may give numbers: read as they print.
    assert_eq!(shown["min_files_to_keep"], 3);
    assert_eq!(shown["max_file_size_bytes"], 524288);
    assert_eq!(shown["auto_cleanup_enabled"], false);
}

#[wasm_bindgen_test]
fn the_config_verifies_tokens_and_presigns_with_its_own_secrets() {
    let config = Config::new(&env("")).unwrap();
    let now_ms = 1_800_000_000_000.0;
    let token = mint_token("rider-42", 1_800_000_060.0, SERVER_SECRET).unwrap();
    assert_eq!(json(&config.verify_token(&token, now_ms).unwrap())["user"], "rider-42");
    let other =
        mint_token("rider-42", 1_800_000_060.0, "another-secret-0123456789abcdef-0123").unwrap();
    assert_eq!(js_error(config.verify_token(&other, now_ms).unwrap_err()).0, "TokenError");

    let request = js(r#"{"key": "users/rider-42/routes/a.json", "size": 3,
        "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "expires_secs": 60}"#);
    let put = json(&config.presign_put(request, now_ms).unwrap());
    let url = put["url"].as_str().unwrap();
    assert!(
        url.starts_with("http://127.0.0.1:8333/kompass-test/users/rider-42/routes/a.json?"),
        "{url}"
    );
    assert!(
        url.contains(
            "X-Amz-Credential=AKIATESTKEY000000001%2F20270115%2Fus-east-1%2Fs3%2Faws4_request"
        ),
        "{url}"
    );
    assert_eq!(put["headers"]["content-length"], "3");
}

#[wasm_bindgen_test]
fn missing_s3_or_secret_is_a_config_error_that_says_what_to_set() {
    let config = Config::new(&js("{}").unchecked_into()).unwrap();
    assert!(!config.s3_enabled());
    let (name, message) = js_error(config.verify_token("x.y", 0.0).unwrap_err());
    assert_eq!(name, "ConfigError");
    assert!(message.contains("KOMPASS_SERVER_SECRET"), "{message}");
    let request = js(r#"{"key": "k", "expires_secs": 60}"#);
    let (name, message) = js_error(config.presign_get(request, 0.0).unwrap_err());
    assert_eq!(name, "ConfigError");
    assert!(message.contains("S3_STORAGE_ENABLED=true"), "{message}");
}
