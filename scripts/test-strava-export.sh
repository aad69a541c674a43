#!/usr/bin/env bash
# The generated Strava bulk export (tests/strava_export/generate.py, fit-tool from PyPI):
# regenerates the committed fixture from its seed and checks it is byte for byte the same, so
# the fixture the Rust, wasm and page tests read is what the generator writes.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${KOMPASS_CACHE:-$HOME/.cache/kompass}"
PY="$CACHE/fit-tool-0.9.16/bin/python"
[ -x "$PY" ] || bash scripts/install.sh fit
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PY" tests/strava_export/generate.py "$work/strava_bulk_export.zip"
for f in strava_bulk_export.zip strava_bulk_export.expected.json; do
  cmp "$work/$f" "native/tests/fixtures/$f" || {
    echo "[test-strava-export] native/tests/fixtures/$f differs from what the generator writes:" >&2
    echo "  regenerate it: $PY tests/strava_export/generate.py native/tests/fixtures/strava_bulk_export.zip" >&2
    exit 1
  }
done
echo "[test-strava-export] the fixture is what generate.py writes from seed 15"
