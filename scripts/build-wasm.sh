#!/usr/bin/env bash
# Builds kompass-wasm three times:
#   www/pkg/        the page's module: scrub, precheck, planCleanup, objectKey
#                   (cargo --no-default-features: no signer, no secrets, half the size;
#                   profile wasm-page and wasm-opt -O3: built for scrub speed, see Cargo.toml)
#   www/pkg-import/ the page's importer module (feature import: importStravaExport and the
#                   rest of the page's module), loaded only when a rider chooses a ZIP
#   wasm/edge/pkg/  the edge presigner's module: all of it (feature `edge`: Config,
#                   presignPut/presignGet, verifyToken/mintToken)
#
# Both use wasm-bindgen's `--target web`: a plain ES module whose `initSync({ module })` takes
# a compiled WebAssembly.Module (what workerd gives a worker that imports the .wasm) or the
# file's bytes (what Node reads), and whose default init fetches the .wasm (the page).
# Each module must stay under the size budget: 250 KB gzip (the importer's 600 KB, see below).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${KOMPASS_CACHE:-$HOME/.cache/kompass}"
WASM_OPT="${WASM_OPT:-$CACHE/node/node_modules/.bin/wasm-opt}"
BUDGET_GZIP_BYTES=$((250 * 1024))
IMPORT_BUDGET_GZIP_BYTES=$((600 * 1024))
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
log() { echo "[build-wasm] $*" >&2; }

[ -x "$WASM_OPT" ] || { log "missing $WASM_OPT: run scripts/install.sh wasm"; exit 1; }
want=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/[^0-9.]/,"",$0); print; exit}' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')
[ "$have" = "$want" ] || { log "wasm-bindgen CLI is '${have:-missing}', Cargo.lock has $want: run scripts/install.sh wasm"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
over=0

# build DEST PROFILE WASM-OPT-LEVEL BUDGET-GZIP-BYTES CARGO-FEATURE-ARGS...
build() {
  local dest=$1 profile=$2 level=$3 budget=$4; shift 4
  log "cargo build -p kompass-wasm $* (wasm32, profile $profile, wasm-opt $level) → $dest"
  cargo build -p kompass-wasm --target wasm32-unknown-unknown --profile "$profile" "$@"
  local out="$work/$(basename "$dest")"
  mkdir -p "$out"
  wasm-bindgen "$CARGO_TARGET_DIR/wasm32-unknown-unknown/$profile/kompass_wasm.wasm" \
    --out-dir "$out" --target web --remove-name-section --remove-producers-section
  "$WASM_OPT" "$level" "$out/kompass_wasm_bg.wasm" -o "$out/opt.wasm"
  mv "$out/opt.wasm" "$out/kompass_wasm_bg.wasm"
  rm -rf "$dest" && mkdir -p "$dest"
  cp "$out"/kompass_wasm.js "$out"/kompass_wasm.d.ts "$out"/kompass_wasm_bg.wasm "$dest"/

  local bytes gz js_gz
  bytes=$(stat -c %s "$dest/kompass_wasm_bg.wasm")
  gz=$(gzip -9c "$dest/kompass_wasm_bg.wasm" | wc -c)
  js_gz=$(gzip -9c "$dest/kompass_wasm.js" | wc -c)
  echo "$dest/kompass_wasm_bg.wasm: $bytes bytes, $gz bytes gzip -9 (glue kompass_wasm.js: $js_gz bytes gzip)"
  if [ "$gz" -gt "$budget" ]; then
    log "$dest is over budget: $gz bytes gzip > $budget"
    over=1
  fi
}

build www/pkg wasm-page -O3 "$BUDGET_GZIP_BYTES" --no-default-features
# The Strava bulk-export importer (ZIP, inflate, CSV, XML, FIT with its generated profile):
# its own module, fetched only when a rider chooses a ZIP, so the first load does not carry
# it; built for size (its time goes to inflating and parsing, measured in BENCHMARKS.md), with
# its own budget: about 0.5 MB gzip, once, beside an export of tens to hundreds of MB.
build www/pkg-import wasm-release -Oz "$IMPORT_BUDGET_GZIP_BYTES" --no-default-features --features import
build wasm/edge/pkg wasm-release -Oz "$BUDGET_GZIP_BYTES"
exit $over
