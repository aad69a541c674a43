//! Rider data for the page: the SHA-256 of what it sends, the server's naming of rider data
//! files, and summaries of rider documents, all the core's (`kompass_core::rider`), so the
//! page shows exactly what the server stores and lists.

use kompass_core::inventory::Sha256Digest;
use serde::Serialize;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use crate::error::{js_error, to_js};

#[wasm_bindgen(typescript_custom_section)]
const TS_RIDER: &str = r#"
/** What a rider document holds (the server's rider history shows the same). */
export interface RiderSummary {
  activity_count: number;
  has_power_data: boolean;
  /** Present sections / 4 (athlete, activities, stats, zones). */
  completeness: number;
  sections: string[];
  pii_removed: boolean;
}

/** When a rider data file was saved, read from its name. */
export interface RiderSaveStamp { saved_at: string; seq: number }
"#;

/// The SHA-256 of `input` (text as UTF-8, or bytes) as 64 lower-case hex digits.
///
/// ```js
/// sha256Hex(new TextEncoder().encode(doc))   // "9f86d0…"
/// ```
#[wasm_bindgen(js_name = sha256Hex)]
pub fn sha256_hex(
    #[wasm_bindgen(unchecked_param_type = "string | Uint8Array | ArrayBuffer")] input: JsValue,
) -> Result<String, JsValue> {
    let digest = if let Some(text) = input.as_string() {
        Sha256Digest::of(text.as_bytes())
    } else if let Some(bytes) = input.dyn_ref::<js_sys::Uint8Array>() {
        Sha256Digest::of(&bytes.to_vec())
    } else if let Some(buffer) = input.dyn_ref::<js_sys::ArrayBuffer>() {
        Sha256Digest::of(&js_sys::Uint8Array::new(buffer).to_vec())
    } else {
        return Err(js_error("TypeError", "input: pass text, a Uint8Array or an ArrayBuffer"));
    };
    Ok(digest.to_hex())
}

/// The name the server gives rider data saved at `unixMs` (the `seq`-th save of that UTC
/// second, from 1): `fitness_data_{YYYYmmdd_HHMMSS}.json`, `_2`, ...
#[wasm_bindgen(js_name = riderName)]
pub fn rider_name(#[wasm_bindgen(js_name = unixMs)] unix_ms: f64, seq: Option<u32>) -> String {
    let stamp = kompass_core::rider::stamp(unix_ms as i64);
    kompass_core::rider::save_name(&stamp, seq.unwrap_or(1))
}

#[derive(Serialize)]
struct Stamp {
    saved_at: String,
    seq: u32,
}

/// When a rider data file was saved, from its name; `null` for a name the server does not
/// write.
#[wasm_bindgen(js_name = parseRiderName, unchecked_return_type = "RiderSaveStamp | null")]
pub fn parse_rider_name(name: &str) -> Result<JsValue, JsValue> {
    match kompass_core::rider::parse_save_name(name) {
        Some(s) => to_js(&Stamp { saved_at: s.saved_at, seq: s.seq }),
        None => Ok(JsValue::NULL),
    }
}

/// What a rider document (JSON text) holds; throws a `SummaryError` when it is not a JSON
/// object.
#[wasm_bindgen(js_name = summarizeRider, unchecked_return_type = "RiderSummary")]
pub fn summarize_rider(document: &str) -> Result<JsValue, JsValue> {
    let summary = kompass_core::rider::summarize(document.as_bytes())
        .map_err(|e| js_error("SummaryError", format!("not a rider document: {e}")))?;
    to_js(&summary)
}
