#!/usr/bin/env bash
# Tests the wasm layer and the edge presigner:
#   1. scripts/build-wasm.sh (the optimized module for www/pkg/ and wasm/edge/pkg/, size budget)
#   2. the wasm-bindgen tests under Node and in headless Chromium (wasm-bindgen-test-runner)
#   3. the edge presigner under Cloudflare's workerd (miniflare) and plain Node, against the
#      running S3 server named by the AWS_* environment (SeaweedFS with SigV4 verification on;
#      scripts/test.sh starts it and exports the variables).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
log() { echo "[test-wasm] $*" >&2; }

missing=()
for v in AWS_ENDPOINT_URL AWS_REGION AWS_S3_BUCKET AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY; do
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

echo "== build the wasm module (size budget 250 KB gzip)"
bash scripts/build-wasm.sh

echo "== wasm-bindgen tests: Node (tests/node.rs) and headless Chromium (tests/browser.rs)"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  cargo test -p kompass-wasm --target wasm32-unknown-unknown

echo "== edge presigner: workerd (miniflare) and Node, against $AWS_ENDPOINT_URL"
if [ -f wasm/package-lock.json ]; then
  (cd wasm && npm ci --no-audit --no-fund --loglevel=error)
else
  (cd wasm && npm install --no-audit --no-fund --loglevel=error)
fi
(cd wasm && node --test edge/test/)
