#!/usr/bin/env bash
# A real S3 server for tests: SeaweedFS (`weed mini`) on 127.0.0.1 with SigV4 verification on.
#
# Usage: scripts/s3-server.sh start|stop|env|status
#   start   start the server (or reuse a running one), wait for /healthz, write the env file
#   stop    stop the server started by `start` (by its PID) and remove its data
#   env     print the env file (KEY=value lines): `set -a; . <(scripts/s3-server.sh env); set +a`
#   status  exit 0 when the server answers /healthz
#
# Environment:
#   KOMPASS_S3_PORT   the S3 port (default 8333). The server's other ports (master, volume,
#                     filer and their gRPC ports, admin gRPC) are the next 9 ports after it,
#                     so two servers with S3 ports 10 apart never collide.
#   KOMPASS_S3_STATE  state directory (default ${TMPDIR:-/tmp}/kompass-s3-$KOMPASS_S3_PORT):
#                     weed.pid, weed.log, env, data/
#   KOMPASS_CACHE     where scripts/install.sh put SeaweedFS (default ~/.cache/kompass)
#   KOMPASS_S3_METRICS_PORT  optional: serve SeaweedFS's Prometheus metrics on this port
#                     (http://127.0.0.1:PORT/metrics: S3 requests by type), for benchmarks
#   KOMPASS_S3_KEEP_DATA=1  `start` keeps the objects in data/ (a restart after a crash, as the
#                     reliability tests do after SIGKILL); otherwise `start` begins empty
set -euo pipefail
cd "$(dirname "$0")/.."

SEAWEEDFS_VERSION=4.48
CACHE="${KOMPASS_CACHE:-$HOME/.cache/kompass}"
WEED="$CACHE/seaweedfs-$SEAWEEDFS_VERSION/bin/weed"
PORT="${KOMPASS_S3_PORT:-8333}"
STATE="${KOMPASS_S3_STATE:-${TMPDIR:-/tmp}/kompass-s3-$PORT}"
IDENTITIES="$PWD/tests/s3/identities.json"
BUCKET=kompass-test
ENDPOINT="http://127.0.0.1:$PORT"

log() { echo "[s3-server] $*" >&2; }

healthy() { curl -sf -o /dev/null --max-time 2 "$ENDPOINT/healthz"; }

running_pid() {
  local pid
  [ -f "$STATE/weed.pid" ] || return 1
  pid=$(cat "$STATE/weed.pid")
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

# The credentials of the identity named "test", read from the identities file (one source).
test_credentials() {
  python3 - "$IDENTITIES" <<'PY'
import json, sys
ids = json.load(open(sys.argv[1]))["identities"]
cred = next(i for i in ids if i["name"] == "test")["credentials"][0]
print(cred["accessKey"], cred["secretKey"])
PY
}

write_env() {
  local key secret
  read -r key secret < <(test_credentials)
  cat > "$STATE/env" <<EOF
AWS_ENDPOINT_URL=$ENDPOINT
AWS_REGION=us-east-1
AWS_S3_BUCKET=$BUCKET
AWS_ACCESS_KEY_ID=$key
AWS_SECRET_ACCESS_KEY=$secret
S3_STORAGE_ENABLED=true
KOMPASS_S3_IDENTITIES=$IDENTITIES
EOF
}

start() {
  if [ ! -x "$WEED" ]; then
    log "SeaweedFS $SEAWEEDFS_VERSION is not installed at $WEED: run scripts/install.sh s3"
    exit 1
  fi
  mkdir -p "$STATE"
  if running_pid >/dev/null && healthy; then
    write_env
    log "already running on $ENDPOINT (pid $(running_pid)); env: $STATE/env"
    echo "$STATE/env"
    return
  fi
  if healthy; then
    log "port $PORT already answers /healthz but was not started from $STATE: set KOMPASS_S3_PORT to a free port"
    exit 1
  fi
  [ "${KOMPASS_S3_KEEP_DATA:-}" = 1 ] || rm -rf "$STATE/data"
  mkdir -p "$STATE/data"
  local p=$PORT
  local extra=()
  if [ -n "${KOMPASS_S3_METRICS_PORT:-}" ]; then
    extra+=(-metricsIp=127.0.0.1 -metricsPort="$KOMPASS_S3_METRICS_PORT")
  fi
  # Every port explicit: the defaults (8888, 9333, 19333, ...) collide with other servers.
  "$WEED" mini -dir="$STATE/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -s3.config="$IDENTITIES" -bucket="$BUCKET" \
    -admin.ui=false -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 -master.telemetry=false \
    -s3.port="$p" -master.port=$((p + 1)) -master.port.grpc=$((p + 2)) \
    -volume.port=$((p + 3)) -volume.port.grpc=$((p + 4)) \
    -filer.port=$((p + 5)) -filer.port.grpc=$((p + 6)) \
    -s3.port.grpc=$((p + 7)) -admin.port=$((p + 8)) -admin.port.grpc=$((p + 9)) \
    "${extra[@]}" > "$STATE/weed.log" 2>&1 &
  echo $! > "$STATE/weed.pid"
  for _ in $(seq 1 150); do
    healthy && break
    running_pid >/dev/null || break
    sleep 0.2
  done
  if ! healthy; then
    log "SeaweedFS did not answer $ENDPOINT/healthz; its log:"
    cat "$STATE/weed.log" >&2
    stop
    exit 1
  fi
  write_env
  log "running on $ENDPOINT (pid $(cat "$STATE/weed.pid")); env: $STATE/env"
  echo "$STATE/env"
}

stop() {
  local pid
  if pid=$(running_pid); then
    kill "$pid"
    # It takes a few seconds to exit; do not leave it holding the ports.
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      log "pid $pid still running after 20 s: SIGKILL"
      kill -9 "$pid" 2>/dev/null || true
    fi
    log "stopped (pid $pid)"
  else
    log "not running (no live pid in $STATE/weed.pid)"
  fi
  rm -f "$STATE/weed.pid" "$STATE/env"
  rm -rf "$STATE/data"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env)
    if [ ! -f "$STATE/env" ]; then
      log "no env file at $STATE/env: run scripts/s3-server.sh start first"
      exit 1
    fi
    cat "$STATE/env"
    ;;
  status) healthy ;;
  *)
    echo "usage: $0 start|stop|env|status" >&2
    exit 2
    ;;
esac
