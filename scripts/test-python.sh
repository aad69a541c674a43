#!/usr/bin/env bash
# The Python package kompass_storage (native/python): builds it into a virtual environment with
# `pip install ./native/python` and runs its pytest suite, against local storage and, when the
# S3 test server's settings are in the environment (scripts/test.sh exports them), SeaweedFS.
#
# The venv lives in the cache (reused; maturin and pytest are installed only when missing or at
# another version). The extension is built with the dev profile into the workspace's target
# directory, so the dependencies `cargo test` has just built are reused: a release build of the
# whole native crate (tokio, axum, reqwest, ...) would take minutes more on 2 cores.
# KOMPASS_PY_PROFILE=release builds as a plain `pip install` does.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${KOMPASS_CACHE:-$HOME/.cache/kompass}"
VENV="$CACHE/python-venv"
MATURIN_VERSION=1.16.0
PYTEST_VERSION=9.2.0
PY="$VENV/bin/python"
# maturin (the build backend, run by pip) is found on PATH.
export PATH="$VENV/bin:$PATH"
log() { echo "[test-python] $*" >&2; }

if [ ! -x "$PY" ]; then
  log "creating the venv $VENV"
  python3 -m venv "$VENV"
fi
# (pip's output is captured first: `grep -q` closing the pipe early fails it under pipefail.)
have() { local info; info=$("$PY" -m pip show "$1" 2>/dev/null) || return 1; grep -qx "Version: $2" <<<"$info"; }
need=()
have maturin "$MATURIN_VERSION" || need+=("maturin==$MATURIN_VERSION")
have pytest "$PYTEST_VERSION" || need+=("pytest==$PYTEST_VERSION")
if [ ${#need[@]} -gt 0 ]; then
  log "pip install ${need[*]}"
  "$PY" -m pip install -q --disable-pip-version-check "${need[@]}"
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
profile="${KOMPASS_PY_PROFILE:-dev}"
log "pip install ./native/python (cargo profile $profile, target dir $CARGO_TARGET_DIR)"
start=$(date +%s)
# --no-build-isolation: build with the venv's maturin instead of fetching one per install.
# --strip: the dev build's debug info makes a 130 MB library, slow to zip and unzip.
MATURIN_PEP517_ARGS="--profile $profile --strip" \
  "$PY" -m pip install -q --disable-pip-version-check --no-build-isolation --force-reinstall --no-deps ./native/python
log "installed in $(( $(date +%s) - start )) s"

# Run from outside the source tree so `import kompass_storage` is the installed package.
status=0
(cd native/python/tests && "$PY" -m pytest -q -p no:cacheprovider "$@" .) || status=$?
case $status in
  0) log "pytest passed" ;;
  5) log "pytest collected no tests: that is a failure here"; exit 1 ;;
  *) log "pytest failed (exit status $status)"; exit "$status" ;;
esac
