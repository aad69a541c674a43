#!/usr/bin/env bash
# The long versions of the reliability tests (`make soak`): the same tests as the default run,
# at full size (KOMPASS_SOAK=1), plus the presign wrong-body case against s3s-fs and the
# cargo-fuzz targets. Writes a summary of every RESULT line to target/soak/summary.txt.
#
#   KOMPASS_SOAK_FUZZ_SECS   seconds per fuzz target (default 600; 0 skips fuzzing)
#   KOMPASS_RELIABILITY_SEED replay the random choices of an earlier run
#   KOMPASS_S3_PORT          port of the S3 test server this script starts (default 8533)
#
# Installs what is missing: SeaweedFS (scripts/install.sh s3), cargo-fuzz and s3s-fs 0.14.1
# (cargo install, about 2 + 5 minutes on 2 cores). The nightly toolchain must be installed
# for fuzzing (`rustup toolchain install nightly`); without it fuzzing is skipped with a note.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
ROOT=$PWD
OUT=$ROOT/target/soak
mkdir -p "$OUT"
LOG=$OUT/soak.log
: > "$LOG"
FUZZ_SECS=${KOMPASS_SOAK_FUZZ_SECS:-600}
log() { echo "[soak] $*" | tee -a "$LOG" >&2; }

bash scripts/install.sh s3

# The shared S3 test server (the kill and concurrency tests start their own besides).
export KOMPASS_S3_PORT=${KOMPASS_S3_PORT:-8533}
export KOMPASS_S3_STATE=${KOMPASS_S3_STATE:-${TMPDIR:-/tmp}/kompass-s3-soak-$KOMPASS_S3_PORT}
S3S_PID=
cleanup() {
  bash scripts/s3-server.sh stop || true
  if [ -n "$S3S_PID" ]; then kill "$S3S_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT
bash scripts/s3-server.sh start
set -a; . <(bash scripts/s3-server.sh env); set +a

# s3s-fs: a second S3 implementation, for the presigned wrong-body case.
if ! command -v s3s-fs >/dev/null; then
  log "cargo install s3s-fs@0.14.1 (about 5 minutes)"
  cargo install s3s-fs@0.14.1 --locked --features binary
fi
S3S_PORT=$((KOMPASS_S3_PORT + 20))
S3S_ROOT=$(mktemp -d)
mkdir -p "$S3S_ROOT/kompass-test"
s3s-fs --host 127.0.0.1 --port "$S3S_PORT" --access-key "$AWS_ACCESS_KEY_ID" \
  --secret-key "$AWS_SECRET_ACCESS_KEY" "$S3S_ROOT" > "$OUT/s3s-fs.log" 2>&1 &
S3S_PID=$!
export KOMPASS_S3S_ENDPOINT=http://127.0.0.1:$S3S_PORT KOMPASS_S3S_BUCKET=kompass-test

# The reliability tests at full size, one test at a time (they are heavy; 2 cores).
log "reliability tests, soak size"
start=$(date +%s)
set +e
# (The modules reliability_* of the one integration-test binary `it`.)
KOMPASS_SOAK=1 cargo test -p kompass --test it reliability_ \
  -- --test-threads=1 --nocapture 2>&1 | tee -a "$LOG" | grep -E "^(RESULT|SKIPPED|test result|test .* FAILED|.*seed [0-9]+)"
status=${PIPESTATUS[0]}
set -e
log "tests finished in $(( $(date +%s) - start )) s with status $status"

# Fuzzing: each target in turn, single-process (-jobs=1), for FUZZ_SECS seconds.
fuzz_status=0
if [ "$FUZZ_SECS" -gt 0 ]; then
  if ! rustup toolchain list | grep -q '^nightly'; then
    log "SKIPPED fuzzing: no nightly toolchain (rustup toolchain install nightly)"
  else
    if ! cargo fuzz --version >/dev/null 2>&1; then
      log "cargo install cargo-fuzz (about 2 minutes)"
      cargo install cargo-fuzz --locked
    fi
    for t in scrub key import; do
      dict=(); [ -f "fuzz/$t.dict" ] && dict=(-dict="$t.dict")
      mkdir -p "fuzz/corpus/$t"
      log "fuzzing $t for $FUZZ_SECS s"
      set +e
      dirs=("corpus/$t" "seeds/$t"); [ -d "fuzz/regressions/$t" ] && dirs+=("regressions/$t")
      (cd fuzz && cargo +nightly fuzz run "$t" "${dirs[@]}" -- \
        "${dict[@]}" -max_total_time="$FUZZ_SECS" -jobs=1 -print_final_stats=1) > "$OUT/fuzz-$t.out" 2>&1
      rc=$?
      set -e
      mv fuzz/fuzz-0.log "$OUT/fuzz-$t.log" 2>/dev/null || true
      runs=$(grep -h 'stat::number_of_executed_units' "$OUT/fuzz-$t.log" "$OUT/fuzz-$t.out" 2>/dev/null | tail -1 | awk '{print $2}')
      cov=$(grep -hoE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$OUT/fuzz-$t.log" "$OUT/fuzz-$t.out" 2>/dev/null | tail -1)
      if [ "$rc" -eq 0 ]; then
        echo "RESULT fuzz $t: ${runs:-?} runs in $FUZZ_SECS s, ${cov:-?}, 0 findings" | tee -a "$LOG"
      else
        fuzz_status=1
        echo "RESULT fuzz $t: FINDING after ${runs:-?} runs (exit $rc): see fuzz/artifacts/$t/ and $OUT/fuzz-$t.log; add the input to fuzz/regressions/$t/" | tee -a "$LOG"
      fi
    done
  fi
fi

grep -ohE '(RESULT|SKIPPED) .*' "$LOG" > "$OUT/summary.txt" || true
log "summary: $OUT/summary.txt"
cat "$OUT/summary.txt"
[ "$status" -eq 0 ] && [ "$fuzz_status" -eq 0 ]
