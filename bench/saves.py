#!/usr/bin/env python3
"""Requests per save: 1,000 `kompass save` runs with auto-cleanup on, against SeaweedFS.

One user saves 1,000 route files of 8 KiB each under a 1 MiB user quota (cleanup threshold
70%, keep at least 5 files), so FIFO cleanup starts after about 90 saves and then runs on
nearly every save. Each save is its own `kompass save --json` process, as a user or a script
would run it: what carries over between saves is only what kompass keeps in its data
directory (the cached S3 inventory, the request ledger).

Requests are counted twice, independently: kompass's own ledger (the `ledger` table of
{data_dir}/.kompass/state.sqlite3, by billing class) and the server's counters for the bucket (SeaweedFS's
Prometheus metrics, by request type; it labels HEAD as GET).

Goal: at most 1.05 PUT-class requests (PUT + LIST) per save; the original Python spent at
least 3 (two LISTs and a PUT). DELETEs are free but counted. Run through bench/run.sh.
"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

SAVES = int(os.environ.get("BENCH_SAVES", 1000))
SIZE = 8 * 1024
QUOTA_MB = "1"
USER = "bench-saver"



def read_ledger(db):
    """This run's request ledger, summed over its months (a run may cross one)."""
    import sqlite3
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT month, put_class, get_class, free FROM ledger ORDER BY month").fetchall()
    finally:
        con.close()
    return {"months": [r[0] for r in rows], "put_class": sum(r[1] for r in rows),
            "get_class": sum(r[2] for r in rows), "free": sum(r[3] for r in rows)}

def main():
    common.s3_env()
    kompass = common.kompass_bin()
    bucket = f"bench-saves-{os.getpid()}"
    common.make_bucket(bucket)
    with tempfile.TemporaryDirectory(prefix="kompass-bench-saves-") as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        env = dict(
            os.environ,
            AWS_S3_BUCKET=bucket,
            S3_STORAGE_ENABLED="true",
            S3_AUTO_CLEANUP_ENABLED="true",
            S3_MAX_USER_STORAGE_MB=QUOTA_MB,
            S3_CLEANUP_THRESHOLD_PERCENT="70",
            S3_MIN_FILES_TO_KEEP="5",
        )
        before = common.server_requests(bucket)
        load = common.loadavg()[0]
        cleaned = 0
        saves_with_cleanup = 0
        first_cleanup = None
        walls = []
        body = tmp / "ride.json"
        for i in range(SAVES):
            # Distinct content per save, the same size.
            seed = hashlib.sha256(f"ride {i}".encode()).hexdigest()
            body.write_text((seed * (SIZE // len(seed) + 1))[:SIZE])
            cmd = [kompass, "--json", "--data-dir", str(data), "save", "--user", USER,
                   "--type", "routes", "--name", f"ride-{i:04d}.json", str(body)]
            wall, p = common.timed(cmd, cwd=tmp, env=env, capture_output=True, text=True)
            if p.returncode != 0:
                sys.exit(f"save {i} failed ({p.returncode}): {p.stderr}")
            out = json.loads(p.stdout)
            if out["backend"] != "s3":
                sys.exit(f"save {i} landed in {out['backend']}, not S3: {out}")
            n = len(out.get("cleaned", []))
            cleaned += n
            if n:
                saves_with_cleanup += 1
                first_cleanup = i + 1 if first_cleanup is None else first_cleanup
            walls.append(wall)
        time.sleep(0.2)
        server = common.diff(common.server_requests(bucket), before)
        ledger = read_ledger(data / ".kompass" / "state.sqlite3")
        objects, stored = common.bucket_size(bucket)
    common.drop_bucket(bucket)

    put_class_ledger = ledger["put_class"]
    put_class_server = server.get("PUT", 0) + server.get("LIST", 0) + server.get("POST", 0)
    result = {
        "saves": SAVES,
        "object_bytes": SIZE,
        "user_quota_mb": float(QUOTA_MB),
        "threshold_percent": 70,
        "min_files_to_keep": 5,
        "cleanup": {
            "objects_deleted": cleaned,
            "saves_with_cleanup": saves_with_cleanup,
            "first_cleanup_at_save": first_cleanup,
        },
        "ledger": ledger,
        "server_requests": server,
        "put_class_per_save_ledger": put_class_ledger / SAVES,
        "put_class_per_save_server": put_class_server / SAVES,
        "objects_left": objects,
        "bytes_left": stored,
        "median_save_ms": round(common.median(walls) * 1000, 1),
        "load_1min_before": round(load, 2),
        "command": f"kompass --json --data-dir DATA save --user {USER} --type routes --name ride-NNNN.json FILE  (x{SAVES}, S3_MAX_USER_STORAGE_MB={QUOTA_MB})",
        "goal": "<= 1.05 PUT-class requests per save",
    }
    result["met"] = max(result["put_class_per_save_ledger"], result["put_class_per_save_server"]) <= 1.05
    if put_class_ledger != put_class_server:
        common.log(f"note: the ledger counts {put_class_ledger} PUT-class requests, the server {put_class_server}")
    common.write_result("saves", result)
    print(json.dumps({k: result[k] for k in ("put_class_per_save_ledger", "put_class_per_save_server", "cleanup", "met")}))


if __name__ == "__main__":
    main()
