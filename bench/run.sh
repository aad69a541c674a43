#!/usr/bin/env bash
# Runs the benchmarks and rewrites BENCHMARKS.md from their results (`make bench`).
#
# Usage: bench/run.sh [scrub] [scrub_process] [fifo] [wasm] [migrate] [saves] [serve_load]
#        (no argument: all of them)
#
#   scrub          criterion: scrub vs a serde_json Value round trip (core/benches/scrub.rs)
#   scrub_process  `kompass scrub FILE` vs reading the JSON once, whole processes, CPU, wall
#                  and peak RSS, 1 to 20,000 activities (bench/scrub_process.py)
#   fifo     criterion: cleanup plans over 10k/100k/1M objects (core/benches/fifo.rs)
#   wasm     scrub through the wasm package under Node vs native (bench/wasm.py)
#   migrate  `kompass migrate` vs `rclone copy --transfers 16`, SeaweedFS (bench/migrate.py)
#   saves    requests per save over 1,000 saves with auto-cleanup, SeaweedFS (bench/saves.py)
#   serve_load  `kompass serve`: presign vs the plainest route, 32 clients, and upload MB/s
#               vs dd, local storage (bench/serve_load.py)
#
# Results go to $BENCH_OUT (default $CARGO_TARGET_DIR/bench) as JSON, one file per part;
# BENCHMARKS.md is rendered from all the result files there (bench/report.py), so a partial
# run keeps the other parts' last figures, each with its own date and load.
#
# The S3 parts start their own SeaweedFS (scripts/s3-server.sh) on KOMPASS_BENCH_S3_PORT
# (default 19533, and the 9 ports after it) with Prometheus metrics on
# KOMPASS_BENCH_METRICS_PORT (default 19543), and stop it afterwards. Not part of the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export BENCH_OUT="${BENCH_OUT:-$CARGO_TARGET_DIR/bench}"
mkdir -p "$BENCH_OUT"
log() { echo "[bench] $*" >&2; }

parts=("$@"); [ ${#parts[@]} -eq 0 ] && parts=(scrub scrub_process fifo wasm migrate saves serve_load)
has() { local p; for p in "${parts[@]}"; do [ "$p" = "$1" ] && return 0; done; return 1; }
for p in "${parts[@]}"; do
  case "$p" in scrub|scrub_process|fifo|wasm|migrate|saves|serve_load) ;; *) echo "unknown part: $p (scrub scrub_process fifo wasm migrate saves serve_load)" >&2; exit 2 ;; esac
done

# The machine, recorded with the results: the figures mean little without it.
python3 - "$BENCH_OUT/machine.json" <<'PY'
import json, os, platform, subprocess, sys, time
def out(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
    except OSError:
        return None
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next((l.split(":", 1)[1].strip() for l in open("/proc/meminfo") if l.startswith("MemTotal")), "?")
json.dump({
    "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    "nproc": os.cpu_count(),
    "cpu": cpu,
    "memory": mem,
    "kernel": platform.release(),
    "uptime_at_start": out("uptime"),
    "rustc": out("rustc", "--version"),
    "node": out("node", "--version"),
}, open(sys.argv[1], "w"), indent=2)
PY

if has migrate && ! command -v rclone >/dev/null; then
  log "apt-get install -y rclone"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rclone >/dev/null
fi
if has wasm; then
  bash scripts/install.sh rust wasm
  log "scripts/build-wasm.sh"
  bash scripts/build-wasm.sh >&2
fi
if has migrate || has saves; then
  bash scripts/install.sh s3
fi
if has migrate || has saves || has scrub_process || has serve_load; then
  log "cargo build --release -p kompass"
  cargo build --release -p kompass
fi

if has scrub; then python3 bench/criterion.py scrub; fi
if has scrub_process; then python3 bench/scrub_process.py; fi
if has fifo; then python3 bench/criterion.py fifo; fi
if has wasm; then python3 bench/wasm.py; fi

if has migrate || has saves; then
  export KOMPASS_S3_PORT="${KOMPASS_BENCH_S3_PORT:-19533}"
  export KOMPASS_S3_METRICS_PORT="${KOMPASS_BENCH_METRICS_PORT:-19543}"
  started=0
  if ! bash scripts/s3-server.sh status; then
    bash scripts/s3-server.sh start >/dev/null
    started=1
  fi
  if [ "$started" = 1 ]; then trap 'bash scripts/s3-server.sh stop' EXIT; fi
  set -a; . <(bash scripts/s3-server.sh env); set +a
  export BENCH_METRICS_URL="http://127.0.0.1:$KOMPASS_S3_METRICS_PORT/metrics"
  curl -sf -o /dev/null "$BENCH_METRICS_URL" || {
    log "no metrics at $BENCH_METRICS_URL: the server on port $KOMPASS_S3_PORT was started without KOMPASS_S3_METRICS_PORT; stop it (KOMPASS_S3_PORT=$KOMPASS_S3_PORT scripts/s3-server.sh stop) and re-run"
    exit 1
  }
  if has migrate; then python3 bench/migrate.py; fi
  if has saves; then python3 bench/saves.py; fi
fi

if has serve_load; then python3 bench/serve_load.py; fi

python3 bench/report.py "$BENCH_OUT" BENCHMARKS.md
log "BENCHMARKS.md rewritten from $BENCH_OUT"
