#!/usr/bin/env bash
# Builds kompass-wasm for the browser page (www/pkg/) and the edge presigner (wasm/edge/pkg/).
#
# One optimized module serves both: wasm-bindgen's `--target web` output is a plain ES module
# whose `initSync({ module })` takes a compiled WebAssembly.Module, which workerd hands to a
# worker that imports the .wasm, which Node builds from the file's bytes, and which the page
# fetches. Fails if the module is over the size budget (250 KB gzip).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${KOMPASS_CACHE:-$HOME/.cache/kompass}"
WASM_OPT="${WASM_OPT:-$CACHE/node/node_modules/.bin/wasm-opt}"
BUDGET_GZIP_BYTES=$((250 * 1024))
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
log() { echo "[build-wasm] $*" >&2; }

[ -x "$WASM_OPT" ] || { log "missing $WASM_OPT: run scripts/install.sh wasm"; exit 1; }
want=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/[^0-9.]/,"",$0); print; exit}' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')
[ "$have" = "$want" ] || { log "wasm-bindgen CLI is '${have:-missing}', Cargo.lock has $want: run scripts/install.sh wasm"; exit 1; }

log "cargo build -p kompass-wasm (wasm32, profile wasm-release)"
cargo build -p kompass-wasm --target wasm32-unknown-unknown --profile wasm-release
raw="$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm-release/kompass_wasm.wasm"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
log "wasm-bindgen --target web"
wasm-bindgen "$raw" --out-dir "$out" --target web --remove-name-section --remove-producers-section

log "wasm-opt -Oz"
"$WASM_OPT" -Oz "$out/kompass_wasm_bg.wasm" -o "$out/kompass_wasm_bg.opt.wasm"
mv "$out/kompass_wasm_bg.opt.wasm" "$out/kompass_wasm_bg.wasm"

for dest in www/pkg wasm/edge/pkg; do
  rm -rf "$dest" && mkdir -p "$dest"
  cp "$out"/kompass_wasm.js "$out"/kompass_wasm.d.ts "$out"/kompass_wasm_bg.wasm "$dest"/
done

wasm_bytes=$(stat -c %s "$out/kompass_wasm_bg.wasm")
wasm_gzip=$(gzip -9c "$out/kompass_wasm_bg.wasm" | wc -c)
js_gzip=$(gzip -9c "$out/kompass_wasm.js" | wc -c)
echo "kompass_wasm_bg.wasm: $wasm_bytes bytes, $wasm_gzip bytes gzip (-9); glue kompass_wasm.js: $js_gzip bytes gzip"
if [ "$wasm_gzip" -gt "$BUDGET_GZIP_BYTES" ]; then
  log "over budget: $wasm_gzip bytes gzip > $BUDGET_GZIP_BYTES"
  exit 1
fi
