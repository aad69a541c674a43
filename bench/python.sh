#!/usr/bin/env bash
# Per-call overhead of save_data from Python against the `kompass save` CLI (bench/python_overhead.py),
# both built with one cargo profile: release by default (as `pip install ./native/python`
# builds), `bash bench/python.sh dev` for the test build. Uses the test venv of
# scripts/test-python.sh (run that first).
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-release}"
VENV="${KOMPASS_CACHE:-$HOME/.cache/kompass}/python-venv"
export PATH="$VENV/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
cargo build --profile "$profile" -p kompass --bin kompass
MATURIN_PEP517_ARGS="--profile $profile" \
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-build-isolation --force-reinstall --no-deps ./native/python
shift || true
"$VENV/bin/python" bench/python_overhead.py --kompass "$CARGO_TARGET_DIR/$dir/kompass" "$@"
