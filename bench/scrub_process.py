#!/usr/bin/env python3
"""`kompass scrub FILE` as a user runs it (whole process, release build) against its floor:
a process that reads the same file and validates it as JSON once (core/benches/scrub_floor.rs,
`serde_json::from_slice::<IgnoredAny>`), on generated exports of 1, 100, 5,000 and 20,000
activities (kompass_core::scrub::corpus::generate(n, 42), the wasm bench's corpus).

Per size, each round runs the floor, the keyed scrub (KOMPASS_PSEUDONYM_KEY set: ids
pseudonymised) and the keyless scrub (ids dropped), in an order that changes every round, so a
change in the machine's load hits all three. The orders cycle through all six permutations,
so each side follows each other side about equally often: a process runs faster or slower on
the memory the one before it just freed (warm in the kernel's free lists, or already handed
back to the hypervisor), and the rotation used before made the keyed scrub follow the floor
in two rounds of three. Each run's CPU time (user + system) and peak RSS come from wait4(2),
its wall time from the clock; stdout goes to /dev/null, as in `kompass scrub FILE >
/dev/null`. The goal is judged on CPU time: on this shared machine wall time also counts
waiting for a CPU.

Goals: scrub ≤ 1.5× the floor (median CPU) at 5,000 and 20,000 activities, keyed and keyless;
peak RSS ≤ 2 × (input + output) at 20,000 activities.

Environment: BENCH_SCRUB_SIZES (default 1,100,5000,20000), BENCH_SCRUB_ROUNDS (rounds for
sizes under 5,000; default 31; the larger sizes take a third of it, at least 7), KOMPASS_BIN
(default target/release/kompass, built by bench/run.sh).
"""
import itertools
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

SIZES = [int(s) for s in os.environ.get("BENCH_SCRUB_SIZES", "1,100,5000,20000").split(",")]
ROUNDS = int(os.environ.get("BENCH_SCRUB_ROUNDS", 31))
GOAL_SIZES = (5000, 20000)
KEY_HEX = "6b6f6d706173732d62656e63682d7365637265742d303132333435363738396162"


def bench_exes():
    """Builds the floor and the corpus writer (bench profile = release) and returns their paths."""
    cmd = ["cargo", "bench", "--no-run", "-q", "-p", "kompass-core", "--features", "corpus",
           "--bench", "scrub_floor", "--bench", "scrub_timing", "--message-format=json"]
    out = subprocess.run(cmd, cwd=common.ROOT, check=True, capture_output=True, text=True).stdout
    exes = {}
    for line in out.splitlines():
        if not line.startswith("{"):
            continue
        m = json.loads(line)
        if m.get("reason") == "compiler-artifact" and m.get("executable"):
            exes[m["target"]["name"]] = m["executable"]
    return exes["scrub_floor"], exes["scrub_timing"]


def run(cmd, env, cwd, stdout=subprocess.DEVNULL):
    """One whole process: (wall s, CPU s, peak RSS bytes, exit status)."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=stdout, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss * 1024, p.returncode


def stats(xs):
    s = sorted(xs)
    return {"median": common.median(s), "min": s[0], "max": s[-1],
            "p25": s[len(s) // 4], "p75": s[(3 * len(s)) // 4]}


def main():
    kompass = common.kompass_bin()
    floor, writer = bench_exes()
    corpus = common.out_dir() / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    missing = [n for n in SIZES if not (corpus / f"corpus-{n}.json").exists()]
    if missing:
        common.log(f"writing the corpus for {missing}")
        subprocess.run([writer, "--out", str(corpus), "--sizes", ",".join(map(str, missing)), "--write-only"],
                       check=True, stdout=subprocess.DEVNULL)
    cwd = tempfile.mkdtemp(prefix="kompass-scrub-bench-")  # no .env here
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("KOMPASS_", "S3_", "AWS_")) and k != "DATA_DIRECTORY"}
    keyed_env = dict(base, KOMPASS_PSEUDONYM_KEY=KEY_HEX, KOMPASS_PSEUDONYM_KEY_ID="k1")
    sides = {
        "floor": lambda f: ([floor, f], base),
        "keyed": lambda f: ([kompass, "scrub", f], keyed_env),
        "keyless": lambda f: ([kompass, "scrub", f], base),
    }
    names = list(sides)
    orders = list(itertools.permutations(names))
    per_size = []
    for n in SIZES:
        f = str(corpus / f"corpus-{n}.json")
        input_bytes = os.path.getsize(f)
        # Output sizes, and the output is the same bytes on every run.
        outputs = {}
        for mode in ("keyed", "keyless"):
            docs = []
            for _ in range(2):
                cmd, env = sides[mode](f)
                p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, check=True)
                docs.append(p.stdout)
            if docs[0] != docs[1]:
                sys.exit(f"kompass scrub ({mode}) wrote different bytes on two runs of {f}")
            outputs[mode] = len(docs[0])
        rounds = ROUNDS if n < 5000 else max(7, ROUNDS // 3)
        load = common.loadavg()[0]
        samples = {k: {"wall": [], "cpu": [], "rss": []} for k in names}
        per_round = {"keyed": [], "keyless": []}
        for r in range(rounds):
            order = orders[r % len(orders)]
            cpu = {}
            for side in order:
                cmd, env = sides[side](f)
                wall, c, rss, rc = run(cmd, env, cwd)
                if rc != 0:
                    sys.exit(f"{' '.join(cmd)} exited {rc}")
                samples[side]["wall"].append(wall)
                samples[side]["cpu"].append(c)
                samples[side]["rss"].append(rss)
                cpu[side] = c
            for mode in per_round:
                per_round[mode].append(cpu[mode] / cpu["floor"] if cpu["floor"] > 0 else float("nan"))
        row = {"activities": n, "input_bytes": input_bytes, "output_bytes": outputs,
               "rounds": rounds, "load_1min_before": round(load, 2)}
        for side in names:
            row[side] = {k: stats(v) for k, v in samples[side].items()}
        for mode in ("keyed", "keyless"):
            fl, sc = row["floor"], row[mode]
            row[f"{mode}_ratio_cpu"] = round(sc["cpu"]["median"] / fl["cpu"]["median"], 3)
            row[f"{mode}_ratio_wall"] = round(sc["wall"]["median"] / fl["wall"]["median"], 3)
            row[f"{mode}_ratio_cpu_per_round"] = round(common.median(per_round[mode]), 3)
            row[f"{mode}_rss_ratio"] = round(sc["rss"]["max"] / (input_bytes + outputs[mode]), 3)
        common.log(f"scrub {n} activities ({input_bytes:,} bytes, {rounds} rounds): CPU "
                   + ", ".join(f"{m} {row[m + '_ratio_cpu']:.2f}x" for m in ("keyed", "keyless"))
                   + f" of the floor; peak RSS keyed {row['keyed_rss_ratio']:.2f}x (input + output)")
        per_size.append(row)
    goal = [s for s in per_size if s["activities"] in GOAL_SIZES]
    rss_goal = [s for s in per_size if s["activities"] == max(GOAL_SIZES)]
    result = {
        "sizes": per_size,
        "command": "kompass scrub FILE > /dev/null (KOMPASS_PSEUDONYM_KEY set: keyed; unset: keyless) "
                   "against scrub_floor FILE (cargo bench -p kompass-core --bench scrub_floor -- FILE)",
        "driver": "python3 bench/scrub_process.py",
        "goal": "scrub <= 1.5x the floor (median CPU) at 5,000 and 20,000 activities, keyed and keyless; "
                "peak RSS <= 2x (input + output) at 20,000",
        "met_speed": bool(goal) and all(s[f"{m}_ratio_cpu"] <= 1.5 for s in goal for m in ("keyed", "keyless")),
        "met_memory": bool(rss_goal) and all(s[f"{m}_rss_ratio"] <= 2.0 for s in rss_goal for m in ("keyed", "keyless")),
    }
    common.write_result("scrub_process", result)
    print(json.dumps({f"{s['activities']}": {m: s[f"{m}_ratio_cpu"] for m in ("keyed", "keyless")} for s in per_size}))


if __name__ == "__main__":
    main()
