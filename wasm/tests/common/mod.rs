//! The tests shared by the Node run (`node.rs`) and the Chromium run (`browser.rs`): the same
//! assertions must hold wherever the module is loaded.

use wasm_bindgen::{JsCast, JsValue};

mod key;

/// The JS `Error` inside a rejected call, with its name and message; panics if the value
/// thrown is not an `Error` instance.
pub fn js_error(value: JsValue) -> (String, String) {
    let error: js_sys::Error =
        value.dyn_into().unwrap_or_else(|v| panic!("thrown value is not a JS Error: {v:?}"));
    (String::from(error.name()), String::from(error.message()))
}
