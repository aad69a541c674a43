#!/usr/bin/env python3
"""Issue 9's admission figures (native/benches/admission.rs), against SeaweedFS.

1. saves/s into a data directory whose cached inventory holds 10,000 more objects of 200
   other users ÷ saves/s into one whose cache is empty, rounds alternating between the two
   (goal ≥ 0.8: a save's cost does not grow with the inventory);
2. requests (PUT + HEAD) per file of a `kompass migrate` (goal 1.0: no HEAD after a PUT whose
   checksum S3 echoed).

Both in one run of `cargo bench -p kompass --bench admission -- SAVES ROUNDS FILES`; its
`RESULT` and figure lines are parsed here. Run through bench/run.sh (it starts the S3 server).
"""
import os
import re
import subprocess
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

SAVES = int(os.environ.get("BENCH_ADMISSION_SAVES", 40))
ROUNDS = int(os.environ.get("BENCH_ADMISSION_ROUNDS", 5))
FILES = int(os.environ.get("BENCH_ADMISSION_FILES", 200))


def grab(pattern, text):
    m = re.search(pattern, text, re.M)
    if not m:
        sys.exit(f"no line matching {pattern!r} in the bench's output:\n{text[-4000:]}")
    return m.groups()


def main():
    common.require_env("AWS_ENDPOINT_URL", "AWS_S3_BUCKET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    cmd = ["cargo", "bench", "-q", "-p", "kompass", "--bench", "admission", "--",
           str(SAVES), str(ROUNDS), str(FILES)]
    load = common.loadavg()[0]
    common.log(" ".join(cmd))
    p = subprocess.run(cmd, cwd=common.ROOT, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stderr[-4000:]}")
    out = p.stdout
    (empty,) = grab(r"^saves/s, empty inventory: ([\d.]+)$", out)
    objects, big = grab(r"^saves/s, (\d+)-object inventory: ([\d.]+)$", out)
    (ratio,) = grab(r"^RESULT saves_ratio ([\d.]+)", out)
    moved, put, head, lst, get = grab(r"^migrate (\d+) files: (\d+) PUT, (\d+) HEAD, (\d+) LIST, (\d+) GET$", out)
    (per_file,) = grab(r"^RESULT migrate_requests_per_file ([\d.]+)", out)
    ratio, per_file = float(ratio), float(per_file)
    common.write_result("admission", {
        "command": " ".join(cmd),
        "load_1min_before": round(load, 2),
        "saves_per_round": SAVES,
        "rounds": ROUNDS,
        "saves_per_s_empty": float(empty),
        "saves_per_s_big": float(big),
        "inventory_objects": int(objects),
        "saves_ratio": ratio,
        "migrate": {"files": int(moved), "put": int(put), "head": int(head), "list": int(lst), "get": int(get)},
        "migrate_requests_per_file": per_file,
        "goal": "saves/s at 10,000 objects >= 0.8x saves/s empty; migrate 1.0 request (PUT + HEAD) per file",
        "met_saves": ratio >= 0.8,
        "met_migrate": per_file <= 1.0,
    })


if __name__ == "__main__":
    main()
