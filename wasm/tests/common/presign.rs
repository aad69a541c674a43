use kompass_wasm::{presign_get, presign_put};
use wasm_bindgen_test::wasm_bindgen_test;

use super::{js, js_error, json};

/// The AWS documentation's example bucket and credentials.
const DOC_S3: &str = r#"{"region": "us-east-1", "bucket": "examplebucket",
    "access_key_id": "AKIAIOSFODNN7EXAMPLE",
    "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}"#;
/// 2013-05-24T00:00:00Z, the time of the documentation's examples, in milliseconds.
const DOC_TIME_MS: f64 = 1_369_353_600_000.0;

const LOCAL_S3: &str = r#"{"endpoint": "http://127.0.0.1:8333", "region": "us-east-1",
    "bucket": "kompass-test", "access_key_id": "AKIATESTKEY000000001",
    "secret_access_key": "test-secret-key-0123456789abcdefghijk"}"#;
/// SHA-256 of the empty string.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn query<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    url.split_once('?')?.1.split('&').find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
}

/// "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)": the clock
/// reading passed from JS reaches the signer intact.
#[wasm_bindgen_test]
fn reproduces_the_aws_presigned_get_example() {
    let get = json(
        &presign_get(js(DOC_S3), js(r#"{"key": "test.txt", "expires_secs": 86400}"#), DOC_TIME_MS)
            .unwrap(),
    );
    assert_eq!(
        get["url"],
        "https://examplebucket.s3.amazonaws.com/test.txt\
         ?X-Amz-Algorithm=AWS4-HMAC-SHA256\
         &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
         &X-Amz-Date=20130524T000000Z\
         &X-Amz-Expires=86400\
         &X-Amz-SignedHeaders=host\
         &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    );
    assert_eq!(get["method"], "GET");
    assert_eq!(get["expires_at"], "2013-05-25T00:00:00Z");
}

#[wasm_bindgen_test]
fn a_put_binds_the_size_and_checksum_it_was_asked_for() {
    let request = js(&format!(
        r#"{{"key": "users/u1/routes/ride.json", "size": 0, "sha256": "{EMPTY_SHA256}",
            "expires_secs": 300, "content_type": "application/json"}}"#
    ));
    let put = json(&presign_put(js(LOCAL_S3), request, 1_800_000_000_500.0).unwrap());
    let url = put["url"].as_str().unwrap();
    assert!(
        url.starts_with("http://127.0.0.1:8333/kompass-test/users/u1/routes/ride.json?"),
        "{url}"
    );
    assert_eq!(
        query(url, "X-Amz-SignedHeaders"),
        Some("content-length%3Bcontent-type%3Bhost%3Bx-amz-checksum-sha256")
    );
    assert_eq!(query(url, "X-Amz-Expires"), Some("300"));
    assert_eq!(
        put["headers"],
        serde_json::json!({
            "content-length": "0",
            "content-type": "application/json",
            "x-amz-checksum-sha256": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        })
    );
    assert_eq!(put["method"], "PUT");
    assert_eq!(put["key"], "users/u1/routes/ride.json");
    assert_eq!(put["expires_at"], "2027-01-15T08:05:00Z");
}

#[wasm_bindgen_test]
fn bad_requests_are_errors_that_say_what_is_wrong() {
    let put = |request: &str| presign_put(js(LOCAL_S3), js(request), 1_800_000_000_000.0);

    let (name, message) = js_error(
        put(r#"{"key": "k", "size": 1, "sha256": "abc", "expires_secs": 60}"#).unwrap_err(),
    );
    assert_eq!(name, "PresignError");
    assert!(message.contains("64 hex characters"), "{message}");

    let request =
        format!(r#"{{"key": "k", "size": 1, "sha256": "{EMPTY_SHA256}", "expires_secs": 0}}"#);
    let (name, message) = js_error(put(&request).unwrap_err());
    assert_eq!(name, "PresignError");
    assert!(message.contains("between 1 second and 7 days"), "{message}");

    let request =
        format!(r#"{{"key": "k", "size": -1, "sha256": "{EMPTY_SHA256}", "expires_secs": 60}}"#);
    let (name, message) = js_error(put(&request).unwrap_err());
    assert_eq!(name, "TypeError");
    assert!(message.starts_with("request:"), "{message}");

    let no_secret = r#"{"region": "us-east-1", "bucket": "kompass-test", "access_key_id": "AKIA"}"#;
    let request =
        format!(r#"{{"key": "k", "size": 1, "sha256": "{EMPTY_SHA256}", "expires_secs": 60}}"#);
    let (name, message) = js_error(presign_put(js(no_secret), js(&request), 0.0).unwrap_err());
    assert_eq!(name, "TypeError");
    assert!(message.contains("secret_access_key"), "{message}");

    let bad_bucket = LOCAL_S3.replace("kompass-test", "Bad_Bucket");
    let (name, message) = js_error(presign_put(js(&bad_bucket), js(&request), 0.0).unwrap_err());
    assert_eq!(name, "PresignError");
    assert!(message.contains("AWS_S3_BUCKET"), "{message}");
}
