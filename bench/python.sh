#!/usr/bin/env bash
# Per-call overhead of save_data from Python against the `kompass save` CLI
# (bench/python_overhead.py), both from one build: release by default (as a plain
# `pip install ./native/python` builds, into native/python/target), `bash bench/python.sh dev`
# for the test build. Installs into the test venv of scripts/test-python.sh (run that first).
# Extra arguments go to bench/python_overhead.py (--saves N --rounds R).
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-release}"
shift || true
VENV="${KOMPASS_CACHE:-$HOME/.cache/kompass}/python-venv"
export PATH="$VENV/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/native/python/target}"
dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
MATURIN_PEP517_ARGS="--profile $profile" \
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-build-isolation --force-reinstall --no-deps ./native/python
# The CLI built in the extension's workspace with the extension (same features), so it links
# from the artifacts the extension's build left instead of compiling everything again.
cargo build --profile "$profile" --manifest-path native/python/Cargo.toml -p kompass -p kompass-python --bin kompass
"$VENV/bin/python" bench/python_overhead.py --kompass "$CARGO_TARGET_DIR/$dir/kompass" "$@"
