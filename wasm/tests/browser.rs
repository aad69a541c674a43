//! The same tests as `node.rs`, in headless Chromium (the runner drives it with chromedriver).

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod common;
