//! The wasm layer's tests under Node (wasm-bindgen-test-runner's default).

mod common;
