#!/usr/bin/env python3
"""Runs a criterion bench of kompass-core and keeps its figures (bench/run.sh calls this).

Usage: criterion.py scrub|fifo

- scrub (core/benches/scrub.rs): scrub against a serde_json parse + serialize (to and from
  `serde_json::Value`) of the same bytes, for the generated corpus of 1, 100 and 5,000
  activities. Goal: scrub ≤ 1.5× the round trip.
- fifo (core/benches/fifo.rs): cleanup plans over 10k, 100k and 1M-object inventories.
  Goal: under 1 s at 1M, and time(1M) / time(100k) ≤ 12. Criterion measures one size after
  the other, minutes apart, so on a shared machine the ratio also carries the change in load;
  core/benches/fifo_scaling.rs measures the ratio again with the two sizes alternating. The
  goal counts as met only when both ratios are within it.

Figures are criterion's median estimates (estimates.json under $CARGO_TARGET_DIR/criterion).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

COMMANDS = {
    "scrub": ["cargo", "bench", "-p", "kompass-core", "--features", "corpus", "--bench", "scrub"],
    "fifo": ["cargo", "bench", "-p", "kompass-core", "--bench", "fifo"],
}


# `scan` is the floor: one pass reading what any plan reads, deciding nothing.
FIFO_FUNCTIONS = ("plan_bucket", "plan_bucket_listing", "plan_user", "usage", "scan")


def criterion_dir():
    return Path(os.environ.get("CARGO_TARGET_DIR") or common.ROOT / "target") / "criterion"


def estimate(group, function, param):
    path = criterion_dir() / group / function / str(param) / "new" / "estimates.json"
    d = json.loads(path.read_text())
    return {
        "median_ns": d["median"]["point_estimate"],
        "median_ci_ns": [d["median"]["confidence_interval"]["lower_bound"],
                         d["median"]["confidence_interval"]["upper_bound"]],
        "mean_ns": d["mean"]["point_estimate"],
    }


def run(which):
    cmd = COMMANDS[which]
    load = common.loadavg()[0]
    common.log(" ".join(cmd))
    p = subprocess.run(cmd, cwd=common.ROOT, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stderr[-4000:]}")
    return " ".join(cmd), load, p.stderr


def scrub():
    cmd, load, _ = run("scrub")
    sizes = []
    for n in (1, 100, 5000):
        s = estimate("scrub", "scrub", n)
        rt = estimate("scrub", "serde_json_value_round_trip", n)
        sizes.append({
            "activities": n,
            "input_bytes": _input_bytes(n),
            "scrub": s,
            "round_trip": rt,
            "ratio": round(s["median_ns"] / rt["median_ns"], 3),
        })
    result = {"command": cmd, "load_1min_before": round(load, 2), "sizes": sizes,
              "goal": "scrub <= 1.5x the serde_json Value round trip",
              "met": all(x["ratio"] <= 1.5 for x in sizes)}
    common.write_result("scrub", result)


def _input_bytes(n):
    """The corpus size: the bench's throughput, which criterion records in benchmark.json."""
    path = criterion_dir() / "scrub" / "scrub" / str(n) / "new" / "benchmark.json"
    t = json.loads(path.read_text()).get("throughput") or {}
    return int(t.get("Bytes", 0))


def fifo():
    cmd, load, stderr = run("fifo")
    sizes = []
    for n in (10_000, 100_000, 1_000_000):
        row = {"objects": n}
        for f in FIFO_FUNCTIONS:
            row[f] = estimate("fifo", f, n)
        sizes.append(row)
    by = {r["objects"]: r for r in sizes}
    ratios = {f: round(by[1_000_000][f]["median_ns"] / by[100_000][f]["median_ns"], 2)
              for f in FIFO_FUNCTIONS}
    plans = [l for l in stderr.splitlines() if l.startswith("fifo n=")]
    scaling_cmd = ["cargo", "bench", "-q", "-p", "kompass-core", "--bench", "fifo_scaling"]
    common.log(" ".join(scaling_cmd))
    p = subprocess.run(scaling_cmd, cwd=common.ROOT, capture_output=True, text=True, check=True)
    interleaved = {d["order"]: d for d in (json.loads(l) for l in p.stdout.splitlines() if l.startswith("{"))}
    worst_1m = max(by[1_000_000]["plan_bucket"]["median_ns"], by[1_000_000]["plan_bucket_listing"]["median_ns"])
    # "scan" is the floor, not a plan.
    worst_interleaved = max(d["ratio_cpu"] for o, d in interleaved.items() if o != "scan")
    result = {"command": cmd, "load_1min_before": round(load, 2), "sizes": sizes,
              "ratio_1m_over_100k": ratios, "plans": plans,
              "interleaved": interleaved, "interleaved_command": " ".join(scaling_cmd),
              "goal": "plan under 1 s at 1M objects; time(1M)/time(100k) <= 12",
              "met": worst_1m < 1e9 and ratios["plan_bucket"] <= 12 and ratios["plan_bucket_listing"] <= 12
              and worst_interleaved <= 12}
    common.write_result("fifo", result)


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else ""
    if which == "scrub":
        scrub()
    elif which == "fifo":
        fifo()
    else:
        sys.exit("usage: criterion.py scrub|fifo")
