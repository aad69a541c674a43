//! `importStravaExport` under Node (feature `import`: `cargo test -p kompass-wasm --target
//! wasm32-unknown-unknown --features import --test import_node`).
#![cfg(feature = "import")]

mod import;
