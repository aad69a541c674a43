//! Object keys: the page and the edge show the key a file will be stored under, validated
//! exactly as the server does.

use kompass_core::key::ObjectKey;
use wasm_bindgen::prelude::*;

use crate::error::js_error;

/// The S3 object key for `name` of `dataType`, under `user` (or global when `user` is
/// `null`/`undefined`). Throws a `KeyError` for anything that could escape its prefix.
///
/// ```js
/// objectKey("u1", "routes", "ride.json")   // "users/u1/routes/ride.json"
/// objectKey(null, "models", "m.bin")       // "models/m.bin"
/// objectKey("u1", "routes", "../x")        // throws KeyError
/// ```
#[wasm_bindgen(js_name = objectKey)]
pub fn object_key(
    user: Option<String>,
    #[wasm_bindgen(js_name = dataType)] data_type: &str,
    name: &str,
) -> Result<String, JsValue> {
    ObjectKey::parse_parts(user.as_deref(), data_type, name)
        .map(|key| key.s3_key())
        .map_err(|e| js_error("KeyError", e))
}
