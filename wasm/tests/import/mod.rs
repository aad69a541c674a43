//! `importStravaExport`, shared by the Node run (`import_node.rs`) and the Chromium run
//! (`import_browser.rs`): the generated export must give the very document the native importer
//! gives (native/tests/it/strava_import.rs checks it against the same golden file).

use kompass_wasm::import_strava_export;
use wasm_bindgen::JsCast;
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::Closure;
use wasm_bindgen_test::wasm_bindgen_test;

const EXPORT: &[u8] = include_bytes!("../../../native/tests/fixtures/strava_bulk_export.zip");
const NATIVE_DOCUMENT: &str =
    include_str!("../../../native/tests/fixtures/strava_bulk_export.document.json");
const EXPECTED: &str =
    include_str!("../../../native/tests/fixtures/strava_bulk_export.expected.json");

fn json(value: &JsValue) -> serde_json::Value {
    let text = js_sys::JSON::stringify(value).expect("result stringifies");
    serde_json::from_str(&String::from(text)).expect("stringified result is JSON")
}

fn get(value: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(value, &key.into()).expect("a property of the result")
}

/// The document's bytes: a `Uint8Array`, never a string (a large export's document is longer
/// than V8's longest string).
fn document(out: &JsValue) -> Vec<u8> {
    let doc = get(out, "document");
    assert!(doc.as_string().is_none(), "the document came back as a string");
    doc.dyn_into::<js_sys::Uint8Array>().expect("the document is a Uint8Array").to_vec()
}

#[wasm_bindgen_test]
fn the_generated_export_gives_the_native_document() {
    let bytes = js_sys::Uint8Array::from(EXPORT);
    let result = import_strava_export(bytes.into(), JsValue::UNDEFINED).unwrap();
    let doc = document(&result);
    assert_eq!(String::from_utf8(doc.clone()).unwrap(), NATIVE_DOCUMENT.trim_end());
    assert_eq!(
        get(&result, "sha256").as_string().unwrap(),
        kompass_core::inventory::Sha256Digest::of(&doc).to_hex()
    );
    let report = json(&get(&result, "report"));
    assert_eq!(report["output_bytes"].as_u64().unwrap(), doc.len() as u64);
    let expected: serde_json::Value = serde_json::from_str(EXPECTED).unwrap();
    let gps =
        report["removed"].as_array().unwrap().iter().find(|r| r["kind"] == "GPS points").unwrap();
    assert_eq!(gps["count"], expected["gps_points"]);
    let report = report.to_string();
    for s in expected["sentinels"].as_array().unwrap() {
        assert!(!report.contains(s.as_str().unwrap()), "planted value in the report");
    }
}

#[wasm_bindgen_test]
fn an_array_buffer_works_and_progress_is_reported_per_entry() {
    let bytes = js_sys::Uint8Array::from(EXPORT);
    let seen = js_sys::Array::new();
    let record = {
        let seen = seen.clone();
        Closure::<dyn FnMut(JsValue)>::new(move |p: JsValue| {
            seen.push(&p);
        })
    };
    let out = import_strava_export(
        bytes.buffer().into(),
        record.as_ref().unchecked_ref::<js_sys::Function>().clone().into(),
    )
    .unwrap();
    assert_eq!(document(&out), NATIVE_DOCUMENT.trim_end().as_bytes());
    let last = json(&seen.get(seen.length() - 1));
    assert_eq!(last["entries_done"], last["entries_total"]);
    assert_eq!(seen.length() as u64, last["entries_total"].as_u64().unwrap());
    assert_eq!(last["bytes_total"].as_u64().unwrap(), EXPORT.len() as u64);
}

#[wasm_bindgen_test]
fn not_a_zip_throws_an_import_error() {
    let err = import_strava_export(
        js_sys::Uint8Array::from(&b"{\"activities\": []}"[..]).into(),
        JsValue::UNDEFINED,
    )
    .unwrap_err();
    let err: js_sys::Error = err.dyn_into().unwrap();
    assert_eq!(String::from(err.name()), "ImportError");
    assert!(String::from(err.message()).contains("ZIP"));
    let err = import_strava_export(JsValue::from_str("PK"), JsValue::UNDEFINED).unwrap_err();
    let err: js_sys::Error = err.dyn_into().unwrap();
    assert_eq!(String::from(err.name()), "TypeError");
}
