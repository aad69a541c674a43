#!/usr/bin/env python3
"""Scrub through the wasm package under Node against native scrub, same bytes, same run.

Native: core/benches/scrub_timing.rs (release, `cargo bench`) writes the corpus
(kompass_core::scrub::corpus::generate(n, 42) for n = 1, 100, 5000, 20000) and times
kompass_core::scrub::scrub on it. wasm: bench/wasm/scrub.mjs loads www/pkg (the page's module
from scripts/build-wasm.sh) with initSync and times its scrub(text, key) export on the same
files: the file's bytes go in as a Uint8Array (as the page passes them) and the result comes
back as a JS object (document string and report), as a caller sees it. Both use the same iteration scheme (see either file).

The two sides alternate for 3 rounds (native, wasm, native, ...), so a change in the machine's
load hits both; per size the reported ratio is the median of the per-round ratios. Times are
taken on the wall clock and as the process's CPU time (user + system); the goal is judged on
the second, which on a shared machine leaves out waiting for a CPU (on an idle machine the two
agree, but for Node's helper threads, which count against wasm). Both are recorded.

Both modes are measured: keyed (ids pseudonymised, as server-side JS would call it) and
keyless (ids dropped, as the page calls it: the browser never holds the key).

Goal: wasm ≤ 2.5× native at every size, and the module ≤ 150 KB gzipped. Run through bench/run.sh (it builds the wasm package first).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_WASM_ROUNDS", 3))
SIZES = os.environ.get("BENCH_WASM_SIZES", "1,100,5000,20000")
GZIP_BUDGET = 150_000
PKG = common.ROOT / "www" / "pkg"


def lines(out):
    return {d["activities"]: d for d in (json.loads(l) for l in out.splitlines() if l.startswith("{"))}


MODES = ("keyed", "keyless")


def main():
    if not (PKG / "kompass_wasm_bg.wasm").exists():
        sys.exit(f"no wasm package at {PKG}: run scripts/build-wasm.sh (bench/run.sh does)")
    corpus = common.out_dir() / "corpus"
    native_cmd = ["cargo", "bench", "-q", "-p", "kompass-core", "--features", "corpus",
                  "--bench", "scrub_timing", "--", "--out", str(corpus), "--sizes", SIZES]
    wasm_cmd = ["node", str(common.ROOT / "bench" / "wasm" / "scrub.mjs"), str(PKG), str(corpus), SIZES]
    rounds = []
    for r in range(ROUNDS):
        load = common.loadavg()[0]
        rd = {"load_1min_before": round(load, 2)}
        for mode in MODES:
            extra_native = ["--keyless"] if mode == "keyless" else []
            extra_wasm = ["keyless"] if mode == "keyless" else []
            native = lines(subprocess.run(native_cmd + extra_native, cwd=common.ROOT, check=True,
                                          capture_output=True, text=True).stdout)
            wasm = lines(subprocess.run(wasm_cmd + extra_wasm, cwd=common.ROOT, check=True,
                                        capture_output=True, text=True).stdout)
            for n, w in wasm.items():
                if w["output_bytes"] != native[n]["output_bytes"] or w["input_bytes"] != native[n]["input_bytes"]:
                    sys.exit(f"wasm and native disagree on the corpus of {n} ({mode}): {w} vs {native[n]}")
            rd[mode] = {"native": native, "wasm": wasm}
            common.log(f"wasm round {r + 1}, {mode}: " + ", ".join(
                f"{n}: {wasm[n]['cpu_median_ns'] / native[n]['cpu_median_ns']:.2f}x on CPU, "
                f"{wasm[n]['median_ns'] / native[n]['median_ns']:.2f}x wall" for n in sorted(native)))
        rounds.append(rd)
    per_size = []
    for mode in MODES:
        for n in sorted(rounds[0][mode]["native"]):
            def med(side, field):
                return common.median([rd[mode][side][n][field] for rd in rounds])
            cpu = [rd[mode]["wasm"][n]["cpu_median_ns"] / rd[mode]["native"][n]["cpu_median_ns"] for rd in rounds]
            wall = [rd[mode]["wasm"][n]["median_ns"] / rd[mode]["native"][n]["median_ns"] for rd in rounds]
            per_size.append({
                "mode": mode,
                "activities": n,
                "input_bytes": rounds[0][mode]["native"][n]["input_bytes"],
                "native_cpu_ns": med("native", "cpu_median_ns"),
                "wasm_cpu_ns": med("wasm", "cpu_median_ns"),
                "native_wall_ns": med("native", "median_ns"),
                "wasm_wall_ns": med("wasm", "median_ns"),
                "ratios_cpu": [round(x, 3) for x in cpu],
                "ratios_wall": [round(x, 3) for x in wall],
                "ratio": round(common.median(cpu), 3),
                "ratio_wall": round(common.median(wall), 3),
            })
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    wasm_bytes = (PKG / "kompass_wasm_bg.wasm").stat().st_size
    import gzip
    gzip_bytes = len(gzip.compress((PKG / "kompass_wasm_bg.wasm").read_bytes(), compresslevel=9))
    result = {
        "sizes": per_size,
        "rounds": ROUNDS,
        "node": node,
        "wasm_module_bytes": wasm_bytes,
        "wasm_gzip_bytes": gzip_bytes,
        "gzip_budget_bytes": GZIP_BUDGET,
        "native_command": " ".join(native_cmd[:9]) + " -- --out CORPUS_DIR [--keyless]",
        "wasm_command": f"node bench/wasm/scrub.mjs www/pkg CORPUS_DIR {SIZES} [keyless]",
        "goal": "wasm <= 2.5x native (process CPU time), keyed and keyless, at every size; gzip <= 150 KB",
        "met": all(s["ratio"] <= 2.5 for s in per_size) and gzip_bytes <= GZIP_BUDGET,
        "raw": rounds,
    }
    common.write_result("wasm", result)
    print(json.dumps({"ratios": {f"{s['mode']} {s['activities']}": s["ratio"] for s in per_size},
                      "met": result["met"]}))


if __name__ == "__main__":
    main()
