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
        let key = key_input(key)?;
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

/// The key argument: its two fields read directly when both are strings (what
/// serde-wasm-bindgen reads for [`KeyInput`]: `key.key_id` and `key.secret` of any object,
/// nothing else), serde-wasm-bindgen for anything else, so a wrong key fails with its error.
fn key_input(key: JsValue) -> Result<KeyInput, JsValue> {
    let field = |name: &js_sys::JsString| js_sys::Reflect::get(&key, name).ok()?.as_string();
    if key.is_object() {
        let read = KEY_ID.with(|k| Some((field(k)?, SECRET.with(field)?)));
        if let Some((key_id, secret)) = read {
            return Ok(KeyInput { key_id, secret });
        }
    }
    from_js("key", key)
}

// rustfmt drops the initialisers of statics in extern blocks.
#[rustfmt::skip]
#[wasm_bindgen]
extern "C" {
    // Property names as JS strings, made once (not decoded from UTF-8 in every call).
    #[wasm_bindgen(thread_local_v2, static_string)]
    static KEY_ID: js_sys::JsString = "key_id";
    #[wasm_bindgen(thread_local_v2, static_string)]
    static SECRET: js_sys::JsString = "secret";
    #[wasm_bindgen(thread_local_v2, static_string)]
    static DOCUMENT: js_sys::JsString = "document";
    #[wasm_bindgen(thread_local_v2, static_string)]
    static REPORT: js_sys::JsString = "report";
    #[wasm_bindgen(thread_local_v2, static_string)]
    static REMOVED: js_sys::JsString = "removed";
    #[wasm_bindgen(thread_local_v2, static_string)]
    static LINE_END: js_sys::JsString = "\n"; // scrub::REMOVED_LINE_END, checked below

    /// `String.prototype.split` by a JS string (js_sys's takes a `&str`, made anew each call).
    #[wasm_bindgen(js_namespace = ["String", "prototype", "split"], js_name = call)]
    fn split(text: &js_sys::JsString, separator: &js_sys::JsString) -> js_sys::Array;
}

const _: () = assert!(scrub::REMOVED_LINE_END == '\n');

/// `{document, report}` for JS: the document as one string; the report's fields by
/// `JSON.parse` of [`scrub::ScrubReport::head_json`], its removed paths by splitting
/// [`scrub::ScrubReport::removed_lines`]: the same plain objects, arrays and strings as
/// `JSON.parse` of the whole report, but each path is copied once instead of escaped, parsed
/// and copied (at 5,000 activities the report lists about 190,000 paths).
fn scrubbed_to_js(scrubbed: &scrub::Scrubbed) -> Result<JsValue, JsValue> {
    let failed = |_| js_error("Error", "could not convert the scrub result to JS");
    let report = &scrubbed.report;
    let head = js_sys::JSON::parse(&report.head_json()).map_err(failed)?;
    let removed = removed_to_js(report);
    REMOVED.with(|name| js_sys::Reflect::set(&head, name, &removed)).map_err(failed)?;
    let out = js_sys::Object::new();
    let document = JsValue::from_str(&scrubbed.document);
    DOCUMENT
        .with(|name| js_sys::Reflect::set(&out, name, &document))
        .and_then(|_| REPORT.with(|name| js_sys::Reflect::set(&out, name, &head)))
        .map_err(failed)?;
    Ok(out.into())
}

/// The removed paths as a JS array of strings.
fn removed_to_js(report: &scrub::ScrubReport) -> js_sys::Array {
    let paths = &report.removed;
    if paths.is_empty() {
        return js_sys::Array::new();
    }
    let lines = js_sys::JsString::from(report.removed_lines());
    let removed = LINE_END.with(|line_end| split(&lines, line_end));
    if removed.length() as usize == paths.len() {
        return removed;
    }
    // A key name held a line end: one string per path.
    paths.iter().map(|path| JsValue::from_str(path)).collect()
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
