//! How values and errors cross the boundary: JSON-compatible JS values in and out, and every
//! core error as a JS `Error` whose `name` says which kind and whose `message` says what to do.
//!
//! ```js
//! try { objectKey("../x", "routes", "a.json") }
//! catch (e) { e instanceof Error; e.name === "KeyError"; e.message.startsWith("invalid user id") }
//! ```

use std::fmt::Display;

use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::JsValue;

/// A JS `Error` named `name` carrying `err`'s message.
pub(crate) fn js_error(name: &str, err: impl Display) -> JsValue {
    let error = js_sys::Error::new(&err.to_string());
    error.set_name(name);
    error.into()
}

/// Reads an argument into a core type; a wrong shape is a `TypeError` naming the argument.
pub(crate) fn from_js<T: DeserializeOwned>(what: &str, value: JsValue) -> Result<T, JsValue> {
    serde_wasm_bindgen::from_value(value).map_err(|e| js_error("TypeError", format!("{what}: {e}")))
}

/// Writes a core value as plain JS objects and arrays (no `Map`s), as `JSON.parse` would.
pub(crate) fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| js_error("Error", format!("could not convert the result to JS: {e}")))
}
