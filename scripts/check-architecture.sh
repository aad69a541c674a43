#!/usr/bin/env bash
# ARCHITECTURE.md stays true: every repository path it names (in backticks) exists.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=0
while read -r p; do
  if [ ! -e "$p" ]; then
    echo "ARCHITECTURE.md names $p, which does not exist" >&2
    missing=1
  fi
done < <(grep -oE '`(core|native|wasm|www|tests|scripts)/[A-Za-z0-9_./-]+`' ARCHITECTURE.md | tr -d '`' | sort -u)
[ "$missing" = 0 ] && echo "ARCHITECTURE.md: every named path exists"
exit "$missing"
