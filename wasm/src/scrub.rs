//! PII scrub of rider data (a Strava export): the allow-list keeps what is known to be safe,
//! drops everything else, and reports every removed path.
//!
//! With a pseudonym key (server-side JS only) athlete and activity ids become keyed HMAC
//! pseudonyms; without one (the browser, which must never hold the key) they are dropped.

use kompass_core::scrub::{self, PseudonymKey};
use serde::Deserialize;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use crate::error::{from_js, js_error};

#[wasm_bindgen(typescript_custom_section)]
const TS_SCRUB: &str = r#"
/** The pseudonym key: its id (e.g. "k1", KOMPASS_PSEUDONYM_KEY_ID) and secret (KOMPASS_PSEUDONYM_KEY). Server-side only. */
export interface PseudonymKeyInput { key_id: string; secret: string }

/** What a scrub removed and kept. */
export interface ScrubReport {
  version: string;
  /** The pseudonym key's id; null for a keyless scrub (ids dropped). */
  key_id: string | null;
  /** The athlete's pseudonym, when the input held an athlete id. */
  user_hash: string | null;
  /** Every removed path, a JSON pointer into the input, in document order. */
  removed: string[];
  removed_count: number;
  activities_kept: number;
  activities_removed: number;
  input_bytes: number;
  output_bytes: number;
}

export interface Scrubbed {
  /** The scrubbed document as compact JSON text: upload these exact bytes (numbers are kept byte for byte). */
  document: string;
  report: ScrubReport;
}
"#;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyInput {
    key_id: String,
    secret: String,
}

/// Removes PII from rider data; pseudonymizes its ids with `key`, or drops them when `key` is
/// `undefined` (the browser never holds the key). `input` is the export as
/// JSON text, its UTF-8 bytes (`Uint8Array` or `ArrayBuffer`), or a parsed object (written
/// with `JSON.stringify` first). Throws a `ScrubError` when it is not a JSON document (nothing
/// of the input is returned then) and a `PseudonymKeyError` for an unusable key.
///
/// ```js
/// const { document, report } = scrub(await file.text());   // in the page: ids dropped
/// report.removed;      // ["/basic_info/id", "/basic_info/firstname", "/activities/0/start_latlng", ...]
/// const server = scrub(text, { key_id: "k1", secret });   // on a server: ids pseudonymized
/// JSON.parse(server.document).basic_info.user_hash;      // "k1:…"
/// ```
#[wasm_bindgen(unchecked_return_type = "Scrubbed")]
pub fn scrub(
    #[wasm_bindgen(unchecked_param_type = "string | Uint8Array | ArrayBuffer | object")]
    input: JsValue,
    #[wasm_bindgen(unchecked_param_type = "PseudonymKeyInput | undefined")] key: JsValue,
) -> Result<JsValue, JsValue> {
    let key = if key.is_undefined() || key.is_null() {
        None
    } else {
        let key: KeyInput = from_js("key", key)?;
        Some(
            PseudonymKey::new(&key.key_id, key.secret.as_bytes())
                .map_err(|e| js_error("PseudonymKeyError", e))?,
        )
    };
    let bytes = input_bytes(input)?;
    let scrubbed = match &key {
        Some(key) => scrub::scrub(&bytes, key),
        None => scrub::scrub_keyless(&bytes),
    }
    .map_err(|e| js_error("ScrubError", e))?;
    scrubbed_to_js(&scrubbed)
}

/// `{document, report}` for JS: the document as one string, and the report written as JSON
/// text and read by `JSON.parse` (the same plain objects, arrays and strings that [`crate::error::to_js`]
/// makes, but one crossing of the boundary instead of one per removed path and field: at a
/// small export that crossing cost more than the scrub itself).
fn scrubbed_to_js(scrubbed: &scrub::Scrubbed) -> Result<JsValue, JsValue> {
    let report = serde_json::to_string(&scrubbed.report)
        .ok()
        .and_then(|text| js_sys::JSON::parse(&text).ok())
        .ok_or_else(|| js_error("Error", "could not convert the scrub report to JS"))?;
    let out = js_sys::Object::new();
    let set = |name: &str, value: &JsValue| js_sys::Reflect::set(&out, &name.into(), value);
    set("document", &JsValue::from_str(&scrubbed.document))
        .and_then(|_| set("report", &report))
        .map_err(|_| js_error("Error", "could not convert the scrub result to JS"))?;
    Ok(out.into())
}

/// The input's UTF-8 bytes: text as is, bytes copied once, other values as `JSON.stringify`
/// writes them.
fn input_bytes(input: JsValue) -> Result<Vec<u8>, JsValue> {
    if let Some(text) = input.as_string() {
        return Ok(text.into_bytes());
    }
    if let Some(bytes) = input.dyn_ref::<js_sys::Uint8Array>() {
        return Ok(bytes.to_vec());
    }
    if let Some(buffer) = input.dyn_ref::<js_sys::ArrayBuffer>() {
        return Ok(js_sys::Uint8Array::new(buffer).to_vec());
    }
    if input.is_object() {
        let text = js_sys::JSON::stringify(&input).map_err(|_| {
            js_error(
                "TypeError",
                "input: the object cannot be written as JSON (a cycle or a BigInt?)",
            )
        })?;
        return Ok(String::from(text).into_bytes());
    }
    Err(js_error(
        "TypeError",
        "input: pass the rider data as JSON text, a Uint8Array, an ArrayBuffer or an object",
    ))
}
