use kompass_wasm::scrub;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::wasm_bindgen_test;

use super::{js, js_error, json};

const EXPORT: &str = r#"{
  "basic_info": {"id": 123456789, "firstname": "John", "lastname": "Doe",
                 "email": "john@example.com", "city": "San Francisco", "sex": "M",
                 "weight": 75.0, "ftp": 250},
  "activities": [{"id": 987654321, "name": "Secret Ride", "distance": 25000.5,
                  "start_latlng": [37.7749, -122.4194], "end_latlng": [37.8, -122.5],
                  "map": {"id": "a1", "summary_polyline": "_p~iF~ps|U_ulLnnqC"},
                  "timezone": "(GMT-08:00) America/Los_Angeles", "device_name": "Garmin Edge 530",
                  "average_watts": 200}]
}"#;

fn key() -> JsValue {
    js(r#"{"key_id": "k1", "secret": "a-wasm-test-pseudonym-secret"}"#)
}

#[wasm_bindgen_test]
fn a_scrubbed_export_loses_names_and_location_and_says_what_went() {
    let out = json(&scrub(JsValue::from_str(EXPORT), key()).unwrap());
    let document = out["document"].as_str().unwrap();
    for gone in [
        "John",
        "Doe",
        "john@example",
        "San Francisco",
        "Secret Ride",
        "37.7749",
        "-122.4194",
        "_p~iF",
        "Los_Angeles",
        "Garmin",
        "123456789",
        "987654321",
    ] {
        assert!(!document.contains(gone), "{gone} survived: {document}");
    }
    let doc: serde_json::Value = serde_json::from_str(document).unwrap();
    let athlete = &doc["basic_info"];
    assert_eq!(
        (&athlete["sex"], &athlete["weight"], &athlete["ftp"]),
        (&"M".into(), &75.0.into(), &250.into())
    );
    let user_hash = athlete["user_hash"].as_str().unwrap();
    assert!(user_hash.starts_with("k1:") && user_hash.len() == 3 + 64, "{user_hash}");
    assert_eq!(doc["activities"][0]["distance"], 25000.5);
    assert_eq!(doc["activities"][0]["average_watts"], 200);
    assert_eq!(doc["anonymization"]["pii_removed"], true);

    let report = &out["report"];
    assert_eq!(report["user_hash"], user_hash);
    assert_eq!(report["activities_kept"], 1);
    let removed: Vec<&str> =
        report["removed"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    for path in [
        "/basic_info/firstname",
        "/basic_info/email",
        "/activities/0/name",
        "/activities/0/start_latlng",
        "/activities/0/end_latlng",
        "/activities/0/map",
        "/activities/0/timezone",
        "/activities/0/device_name",
    ] {
        assert!(removed.contains(&path), "{path} not reported: {removed:?}");
    }
    assert_eq!(report["removed_count"], removed.len());
    assert_eq!(report["output_bytes"], document.len());
}

#[wasm_bindgen_test]
fn text_bytes_and_objects_scrub_alike() {
    let from_text = json(&scrub(JsValue::from_str(EXPORT), key()).unwrap());
    let bytes = js_sys::Uint8Array::from(EXPORT.as_bytes());
    let from_bytes = json(&scrub(bytes.clone().into(), key()).unwrap());
    let from_buffer = json(&scrub(bytes.buffer().into(), key()).unwrap());
    assert_eq!(from_text, from_bytes);
    assert_eq!(from_text, from_buffer);
    // An object goes through JSON.stringify, which writes 75.0 as 75: compare as data.
    let from_object = json(&scrub(js(EXPORT), key()).unwrap());
    let parse = |v: &serde_json::Value| -> serde_json::Value {
        serde_json::from_str(v["document"].as_str().unwrap()).unwrap()
    };
    assert_eq!(
        parse(&from_object)["basic_info"]["user_hash"],
        parse(&from_text)["basic_info"]["user_hash"]
    );
    assert_eq!(from_object["report"]["removed"], from_text["report"]["removed"]);
}

#[wasm_bindgen_test]
fn input_that_is_not_a_document_is_an_error_and_nothing_comes_back() {
    let (name, message) = js_error(
        scrub(JsValue::from_str("{\"athlete\": {\"firstname\": \"John\""), key()).unwrap_err(),
    );
    assert_eq!(name, "ScrubError");
    assert!(message.contains("not valid JSON") && !message.contains("John"), "{message}");

    let (name, message) = js_error(scrub(JsValue::from_str("\"John Doe\""), key()).unwrap_err());
    assert_eq!(name, "ScrubError");
    assert!(message.contains("not a rider document"), "{message}");

    let (name, _) = js_error(scrub(JsValue::from_f64(3.0), key()).unwrap_err());
    assert_eq!(name, "TypeError");
}

#[wasm_bindgen_test]
fn an_unusable_key_is_refused_with_what_to_set() {
    let (name, message) = js_error(
        scrub(JsValue::from_str(EXPORT), js(r#"{"key_id": "k1", "secret": "short"}"#)).unwrap_err(),
    );
    assert_eq!(name, "PseudonymKeyError");
    assert!(message.contains("KOMPASS_PSEUDONYM_KEY"), "{message}");

    // No key means a keyless scrub; a key of the wrong shape is still an error.
    let (name, message) =
        js_error(scrub(JsValue::from_str(EXPORT), JsValue::from_f64(1.0)).unwrap_err());
    assert_eq!(name, "TypeError");
    assert!(message.starts_with("key:"), "{message}");
}

#[wasm_bindgen_test]
fn without_a_key_the_ids_are_dropped_not_pseudonymized() {
    let out = json(&scrub(JsValue::from_str(EXPORT), JsValue::UNDEFINED).unwrap());
    let document = out["document"].as_str().unwrap();
    for gone in ["John", "37.7749", "_p~iF", "123456789", "987654321"] {
        assert!(!document.contains(gone), "{gone} survived: {document}");
    }
    let doc: serde_json::Value = serde_json::from_str(document).unwrap();
    assert!(doc["basic_info"].get("user_hash").is_none(), "{document}");
    assert_eq!(doc["basic_info"]["ftp"], 250);
    assert_eq!(doc["anonymization"]["pseudonym"], "none");
    assert!(out["report"]["key_id"].is_null());
    let removed: Vec<&str> =
        out["report"]["removed"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert!(removed.contains(&"/basic_info/id"), "{removed:?}");
}

#[wasm_bindgen_test]
fn the_report_is_what_json_parse_makes_of_the_cores_report() {
    // Key names with a line end (the separator the removed paths cross the boundary with), a
    // slash, a tilde, quotes and non-ASCII: each comes back as one whole path, as JSON.parse
    // of the core's report gives it.
    for input in [
        EXPORT,
        r#"{"basic_info": {"id": 1, "a\nb": 2, "\n": 3, "c/d~": 4, "\"é\"": 5},
            "activities": [{"id": 2, "x\n\ny": 1, "distance": 3.5}], "z": "\n"}"#,
        r#"{"activities": []}"#,
    ] {
        for key in [key(), JsValue::UNDEFINED] {
            let result = scrub(JsValue::from_str(input), key.clone()).unwrap();
            let out = json(&result);
            let core = match key.is_undefined() {
                true => kompass_core::scrub::scrub_keyless(input.as_bytes()).unwrap(),
                false => kompass_core::scrub::scrub(
                    input.as_bytes(),
                    &kompass_core::scrub::PseudonymKey::new("k1", b"a-wasm-test-pseudonym-secret")
                        .unwrap(),
                )
                .unwrap(),
            };
            assert_eq!(out["report"], serde_json::to_value(&core.report).unwrap(), "{input}");
            // The fields in the core's order too.
            let keys = |v: &JsValue| -> Vec<String> {
                js_sys::Object::keys(v.unchecked_ref::<js_sys::Object>())
                    .iter()
                    .map(|k| k.as_string().unwrap())
                    .collect()
            };
            let report = js_sys::Reflect::get(&result, &"report".into()).unwrap();
            assert_eq!(keys(&report), keys(&js(&serde_json::to_string(&core.report).unwrap())));
            assert_eq!(out["document"], core.document.as_str());
        }
    }
}

#[wasm_bindgen_test]
fn a_key_is_read_as_its_two_fields_and_a_wrong_one_is_a_type_error() {
    let expected = json(&scrub(JsValue::from_str(EXPORT), key()).unwrap());
    // Extra fields are ignored; inherited ones are read, as serde-wasm-bindgen reads them.
    let extra = js(r#"{"key_id": "k1", "secret": "a-wasm-test-pseudonym-secret", "note": 1}"#);
    assert_eq!(json(&scrub(JsValue::from_str(EXPORT), extra).unwrap()), expected);
    let inherited = js_sys::Object::create(key().unchecked_ref::<js_sys::Object>());
    assert_eq!(json(&scrub(JsValue::from_str(EXPORT), inherited.into()).unwrap()), expected);
    for wrong in [
        r#"{"key_id": "k1", "secret": 7}"#,
        r#"{"key_id": "k1"}"#,
        r#"{"secret": "a-wasm-test-pseudonym-secret"}"#,
        r#""k1""#,
        "[]",
    ] {
        let (name, message) = js_error(scrub(JsValue::from_str(EXPORT), js(wrong)).unwrap_err());
        assert_eq!(name, "TypeError", "{wrong}");
        assert!(message.starts_with("key:"), "{wrong}: {message}");
    }
}
