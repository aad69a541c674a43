#!/usr/bin/env bash
# Tests the wasm layer and the edge presigner:
#   1. scripts/build-wasm.sh (the page's and the edge's modules, each within the size budget)
#   2. the wasm-bindgen tests under Node and in headless Chromium (wasm-bindgen-test-runner),
#      and the page's build (without the edge feature) in Chromium
#   3. the built modules, and the edge presigner in Cloudflare's workerd (miniflare) and in
#      plain Node, against the running S3 server named by the AWS_* environment (SeaweedFS
#      with SigV4 verification on; scripts/test.sh starts it and exports the variables).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
log() { echo "[test-wasm] $*" >&2; }

missing=()
for v in AWS_ENDPOINT_URL AWS_S3_BUCKET AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY; do
  [ -n "${!v:-}" ] || missing+=("$v")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "missing ${missing[*]}: the edge tests need a running S3 server."
  log "start one with scripts/s3-server.sh start and export its env file, or run scripts/test.sh"
  exit 1
fi
if ! curl -sf -o /dev/null --max-time 5 "$AWS_ENDPOINT_URL/healthz"; then
  log "no S3 server answers at AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL/healthz: start it first"
  exit 1
fi
for tool in wasm-bindgen-test-runner chromedriver chromium node npm; do
  command -v "$tool" >/dev/null || { log "missing $tool: run scripts/install.sh"; exit 1; }
done

echo "== build the wasm modules (size budget 250 KB gzip each)"
bash scripts/build-wasm.sh

export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
echo "== wasm-bindgen tests, every export: Node (tests/node.rs) and headless Chromium (tests/browser.rs)"
cargo test -p kompass-wasm --target wasm32-unknown-unknown
echo "== wasm-bindgen tests, the page's build (no edge feature): headless Chromium"
cargo test -p kompass-wasm --target wasm32-unknown-unknown --no-default-features --test browser
echo "== wasm-bindgen tests, the importer's build (feature import): Node and headless Chromium"
cargo test -p kompass-wasm --target wasm32-unknown-unknown --no-default-features --features import \
  --test import_node --test import_browser

echo "== built modules; edge presigner in workerd (miniflare) and Node, against $AWS_ENDPOINT_URL"
if [ -f wasm/package-lock.json ]; then
  (cd wasm && npm ci --no-audit --no-fund --loglevel=error)
else
  (cd wasm && npm install --no-audit --no-fund --loglevel=error)
fi
(cd wasm && node --test edge/test/)
