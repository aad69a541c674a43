#!/usr/bin/env bash
# Runs KOMpass on this machine with local storage (no S3 account needed): installs the wasm
# tool chain, builds the page's wasm package and kompass (release), makes sure .env holds
# development secrets, and starts `kompass serve`, which prints the page's URL signed in as
# a development user. Arguments go to `kompass serve`, e.g. `scripts/run.sh --addr 127.0.0.1:9000`.
#
# .env: KOMPASS_SERVER_SECRET (signs API tokens) and KOMPASS_PSEUDONYM_KEY (pseudonyms of
# rider data saved by the server) are generated when neither .env nor the environment sets
# them; existing values are never changed. To use S3, add the S3 variables to .env
# (see `kompass config`).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
log() { echo "[run] $*" >&2; }

bash scripts/install.sh rust wasm
bash scripts/build-wasm.sh
log "cargo build --release -p kompass"
cargo build --release -p kompass

random_hex() {
  if command -v openssl >/dev/null; then
    openssl rand -hex 32
  else
    python3 -c 'import secrets; print(secrets.token_hex(32))'
  fi
}

# Adds NAME=<32 random bytes, hex> to .env unless .env or the environment already sets it.
ensure_secret() {
  local name=$1
  if [ -n "${!name:-}" ]; then return; fi
  if [ -f .env ] && grep -Eq "^[[:space:]]*(export[[:space:]]+)?$name[[:space:]]*=[[:space:]]*[^[:space:]#]" .env; then
    return
  fi
  if [ ! -f .env ]; then
    (umask 077 && printf '# Local development settings for kompass (secrets: keep this file private).\n' > .env)
  fi
  # A last line without a newline must not swallow the new assignment.
  if [ -s .env ] && [ -n "$(tail -c 1 .env)" ]; then echo >> .env; fi
  printf '%s=%s\n' "$name" "$(random_hex)" >> .env
  log "generated $name in .env"
}
ensure_secret KOMPASS_SERVER_SECRET
ensure_secret KOMPASS_PSEUDONYM_KEY

exec "$CARGO_TARGET_DIR/release/kompass" serve "$@"
