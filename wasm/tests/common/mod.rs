//! The tests shared by the Node run (`node.rs`) and the Chromium run (`browser.rs`): the same
//! assertions must hold wherever the module is loaded.

use wasm_bindgen::{JsCast, JsValue};

mod cleanup;
#[cfg(feature = "edge")]
mod config;
mod key;
mod precheck;
#[cfg(feature = "edge")]
mod presign;
mod rider;
mod scrub;
#[cfg(feature = "edge")]
mod token;

/// The JS `Error` inside a rejected call, with its name and message; panics if the value
/// thrown is not an `Error` instance.
pub fn js_error(value: JsValue) -> (String, String) {
    let error: js_sys::Error =
        value.dyn_into().unwrap_or_else(|v| panic!("thrown value is not a JS Error: {v:?}"));
    (String::from(error.name()), String::from(error.message()))
}

/// A JS value as `JSON.parse` makes it: what a page or a worker passes in.
pub fn js(json: &str) -> JsValue {
    js_sys::JSON::parse(json).expect("test JSON parses")
}

/// What `JSON.stringify` makes of a returned value, parsed back. A `Map` would stringify as
/// `{}`, so comparing this with the expected fields also checks that results are plain objects.
pub fn json(value: &JsValue) -> serde_json::Value {
    let text = js_sys::JSON::stringify(value).expect("result stringifies");
    serde_json::from_str(&String::from(text)).expect("stringified result is JSON")
}
