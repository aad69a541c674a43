use kompass_wasm::{parse_rider_name, rider_name, sha256_hex, summarize_rider};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::wasm_bindgen_test;

use super::{js_error, json};

#[wasm_bindgen_test]
fn sha256_is_the_cores_for_text_and_bytes() {
    // FIPS 180-2's "abc" example.
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert_eq!(sha256_hex(JsValue::from_str("abc")).unwrap(), abc);
    let bytes = js_sys::Uint8Array::from(&b"abc"[..]);
    assert_eq!(sha256_hex(bytes.clone().into()).unwrap(), abc);
    assert_eq!(sha256_hex(bytes.buffer().into()).unwrap(), abc);
    let (name, _) = js_error(sha256_hex(JsValue::from_f64(1.0)).unwrap_err());
    assert_eq!(name, "TypeError");
}

#[wasm_bindgen_test]
fn rider_names_are_the_servers() {
    // 2024-05-01T06:30:00.999Z
    assert_eq!(rider_name(1_714_545_000_999.0, None), "fitness_data_20240501_063000.json");
    assert_eq!(rider_name(1_714_545_000_000.0, Some(2)), "fitness_data_20240501_063000_2.json");
    assert_eq!(
        json(&parse_rider_name("fitness_data_20240501_063000_2.json").unwrap()),
        serde_json::json!({"saved_at": "2024-05-01T06:30:00Z", "seq": 2})
    );
    assert!(parse_rider_name("my_ride.json").unwrap().is_null());
}

#[wasm_bindgen_test]
fn summaries_are_the_servers() {
    let doc = r#"{"basic_info":{"ftp":250},"activities":[{"average_watts":200},{}],"anonymization":{"pii_removed":true}}"#;
    assert_eq!(
        json(&summarize_rider(doc).unwrap()),
        serde_json::json!({"activity_count": 2, "has_power_data": true, "completeness": 0.5,
            "sections": ["athlete", "activities"], "pii_removed": true})
    );
    let (name, _) = js_error(summarize_rider("[1]").unwrap_err());
    assert_eq!(name, "SummaryError");
}
