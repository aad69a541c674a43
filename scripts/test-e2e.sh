#!/usr/bin/env bash
# End-to-end tests of `kompass serve` and its page in headless Chromium (Playwright, with
# Debian's /usr/bin/chromium; no browser is downloaded): once with local storage, once with
# S3, where the browser PUTs straight to the bucket.
#
# The S3 run needs the S3 test server's environment (AWS_ENDPOINT_URL, AWS_S3_BUCKET, ...),
# as scripts/test.sh exports it after `scripts/s3-server.sh start`; without it that run fails
# with what to do, unless KOMPASS_SKIP_S3=1.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
log() { echo "[test-e2e] $*" >&2; }

if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  log "no Chromium at ${CHROMIUM:-/usr/bin/chromium}: run scripts/install.sh browser"
  exit 1
fi

log "npm ci in tests/e2e"
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)

log "cargo build -p kompass"
cargo build -p kompass

log "wasm package for the page"
bash scripts/build-wasm.sh

export KOMPASS_BIN="$CARGO_TARGET_DIR/debug/kompass"
log "node --test (the page's path grouping, then serve with local storage, then with S3)"
cd tests/e2e
node --test --test-concurrency=1 paths.test.mjs local.test.mjs account.test.mjs import.test.mjs s3.test.mjs
