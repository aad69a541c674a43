#!/usr/bin/env bash
# Runs every test of KOMpass storage on this machine, installing what is missing first:
# the wasm target, wasm-bindgen-cli, binaryen, Chromium and SeaweedFS (a real S3 server).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

bash scripts/install.sh

echo "== gates: rustfmt, clippy -D warnings, ARCHITECTURE.md names only paths that exist"
cargo fmt --all --check
(cd native/python && cargo fmt --check)
cargo clippy --workspace --all-targets -- -D warnings
bash scripts/check-architecture.sh

# A real S3 server with SigV4 verification on, for the native and end-to-end tests.
export KOMPASS_S3_PORT="${KOMPASS_S3_PORT:-8333}"
bash scripts/s3-server.sh start
trap 'bash scripts/s3-server.sh stop' EXIT
set -a; . <(bash scripts/s3-server.sh env); set +a

echo "== core builds for wasm32 (the browser and the edge run it)"
cargo build -p kompass-core --target wasm32-unknown-unknown
cargo build -p kompass-core --target wasm32-unknown-unknown --features import

echo "== the generated Strava bulk export (fit-tool) is the committed fixture"
bash scripts/test-strava-export.sh

echo "== Rust tests (core, native, S3 against SeaweedFS)"
cargo test --workspace --exclude kompass-wasm

echo "== Python package kompass_storage (pip install ./native/python; pytest, local storage and S3)"
bash scripts/test-python.sh

echo "== wasm layer (Node, Chromium) and edge presigner (workerd, Node)"
bash scripts/test-wasm.sh

echo "== kompass serve and the page in headless Chromium (local storage, then S3)"
bash scripts/test-e2e.sh
