//! `importStravaExport` in headless Chromium (feature `import`).
#![cfg(feature = "import")]

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod import;
