#!/usr/bin/env python3
"""Strava bulk-export import: throughput (MB/s of archive) native and wasm, and peak memory
against archive size (bench/run.sh import).

Archives come from tests/strava_export/generate.py (seeded; GPX, TCX and FIT files, a third of
them gzipped), BENCH_IMPORT_SIZES activities (default 10,40,160,480) of BENCH_IMPORT_SAMPLES
one-second samples (default 3600), cached in $BENCH_OUT/import-archives (generation is slow:
about a second per activity here). The largest archives are the issue's: BENCH_IMPORT_SCALED
activities (default 500,2000) of three-hour rides (10,800 samples), scaled by bench/scale_export.py
from a generated archive of 20 (its activity files copied, still compressed, under new names),
about 500 MB. BENCH_IMPORT_ARCHIVES=a.zip,b.zip measures given archives.

Native: the release CLI, `kompass rider import --dry-run ARCHIVE > /dev/null` (reads the file
entry by entry), whole process: wall time and peak RSS (ru_maxrss from wait4). wasm:
bench/wasm/import.mjs, the page's module www/pkg-import under Node: the import call's wall time,
the wasm linear memory after it (it never shrinks, so it is the wasm side's peak) and Node's
peak RSS (which includes Node itself and the archive's bytes in a JS buffer, as in the page).
Each size runs native, wasm, native, wasm, ... BENCH_IMPORT_ROUNDS times (default 3, once
above 100 MB); times are the fastest, memory the largest. BENCH_IMPORT_WASM_MAX_MB skips wasm
above that archive size (it is several times slower).

Writes $BENCH_OUT/import.json; bench/report.py renders it into BENCHMARKS.md.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(os.environ.get("BENCH_OUT", ROOT / "target" / "bench"))
SIZES = [int(s) for s in os.environ.get("BENCH_IMPORT_SIZES", "10,40,160,480").split(",")]
SAMPLES = int(os.environ.get("BENCH_IMPORT_SAMPLES", "3600"))
ROUNDS = int(os.environ.get("BENCH_IMPORT_ROUNDS", "3"))
PY = Path(os.environ.get("KOMPASS_CACHE", Path.home() / ".cache/kompass")) / "fit-tool-0.9.16/bin/python"
KOMPASS = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "kompass"
NATIVE_CMD = "kompass rider import --dry-run ARCHIVE > /dev/null"
WASM_CMD = "node bench/wasm/import.mjs ARCHIVE"


def run_measured(argv, **kw):
    """Runs argv; returns (wall seconds, peak RSS bytes, stdout)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE if kw.get("capture") else subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=kw.get("env"))
    out = p.stdout.read() if kw.get("capture") else b""
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"{argv} failed ({p.returncode}): {err.decode(errors='replace')}")
    return wall, usage.ru_maxrss * 1024, out, err


def native(path):
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "S3_STORAGE_ENABLED": "false"}
    wall, rss, _, err = run_measured([str(KOMPASS), "--data-dir", str(OUT / "import-data"), "rider", "import",
                                      "--dry-run", str(path)], env=env)
    return {"seconds": wall, "peak_rss_bytes": rss}


def native_report(path):
    """The import report of `--json` (after the document): only the file's tail is read, so
    this process stays small (a child forked from it counts its RSS until exec)."""
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "S3_STORAGE_ENABLED": "false"}
    out = OUT / "import-report.json"
    with open(out, "wb") as f:
        subprocess.run([str(KOMPASS), "--json", "--data-dir", str(OUT / "import-data"), "rider", "import",
                        "--dry-run", str(path)], env=env, stdout=f, check=True)
    with open(out, "rb") as f:
        f.seek(max(0, out.stat().st_size - (1 << 20)))
        tail = f.read().decode()
    out.unlink()
    at = tail.rindex('"import"')
    return json.JSONDecoder().raw_decode(tail[tail.index("{", at):])[0]


def wasm(path):
    try:
        _, rss, out, _ = run_measured(["node", "--max-old-space-size=8192", str(ROOT / "bench/wasm/import.mjs"),
                                       str(path)], capture=True)
    except SystemExit as e:
        # Kept as a finding (e.g. a document longer than V8's longest string), not a crash.
        return {"error": str(e)[-400:]}
    r = json.loads(out.decode().strip().splitlines()[-1])
    r["process_peak_rss_bytes"] = rss
    return r


def node_idle_rss():
    _, rss, _, _ = run_measured(["node", "-e", "0"])
    return rss


def archives():
    given = [Path(p) for p in os.environ.get("BENCH_IMPORT_ARCHIVES", "").split(",") if p]
    if given:
        return given
    cache = OUT / "import-archives"
    cache.mkdir(parents=True, exist_ok=True)
    if not PY.exists():
        subprocess.run(["bash", str(ROOT / "scripts/install.sh"), "fit"], check=True)
    paths = []
    for n in SIZES:
        path = cache / f"export_{n}x{SAMPLES}_seed{n}.zip"
        if not path.exists():
            print(f"[import] generating {path.name}", file=sys.stderr, flush=True)
            tmp = path.with_suffix(".partial.zip")
            subprocess.run([str(PY), str(ROOT / "tests/strava_export/generate.py"), str(tmp), "--seed", str(n),
                            "--activities", str(n), "--samples", str(SAMPLES), "--no-expected"], check=True)
            tmp.rename(path)
        paths.append(path)
    for scaled in [int(n) for n in os.environ.get("BENCH_IMPORT_SCALED", "500,2000").split(",") if n]:
        path = cache / f"export_{scaled}x10800_scaled.zip"
        if not path.exists():
            base = cache / "export_20x10800_seed20.zip"
            if not base.exists():
                print(f"[import] generating {base.name}", file=sys.stderr, flush=True)
                tmp = base.with_suffix(".partial.zip")
                subprocess.run([str(PY), str(ROOT / "tests/strava_export/generate.py"), str(tmp), "--seed", "20",
                                "--activities", "20", "--samples", "10800", "--no-expected"], check=True)
                tmp.rename(base)
            tmp = path.with_suffix(".partial.zip")
            subprocess.run([sys.executable, str(ROOT / "bench/scale_export.py"), str(base), str(tmp),
                            "--activities", str(scaled)], check=True)
            tmp.rename(path)
        paths.append(path)
    return paths


def main():
    if not KOMPASS.exists():
        raise SystemExit(f"{KOMPASS} is missing: cargo build --release -p kompass")
    load_before = os.getloadavg()[0]
    idle = node_idle_rss()
    rows = []
    for path in archives():
        size = path.stat().st_size
        rep = native_report(path)
        nat, wa = [], []
        # A big archive takes minutes a run: once is enough for its MB/s and memory.
        skip_wasm = size / 1e6 > float(os.environ.get("BENCH_IMPORT_WASM_MAX_MB", "inf"))
        for _ in range(ROUNDS if size < 100e6 else 1):
            nat.append(native(path))
            wa.append({"skipped": True} if skip_wasm else wasm(path))
        n_s = min(r["seconds"] for r in nat)
        n_rss = max(r["peak_rss_bytes"] for r in nat)
        ok = [r for r in wa if "error" not in r and "skipped" not in r]
        row = {
            "archive": path.name, "archive_bytes": size, "activities": rep["activities"],
            "samples": rep["samples"], "expanded_bytes": rep["expanded_bytes"],
            "largest_entry_bytes": rep["largest_entry_bytes"], "document_bytes": rep["output_bytes"],
            "native_seconds": n_s, "native_mb_s": size / 1e6 / n_s, "native_peak_rss_bytes": n_rss,
            "native_rss_over_archive": n_rss / size, "node_idle_rss_bytes": idle,
            "native_seconds_rounds": [r["seconds"] for r in nat],
        }
        if ok:
            w_s = min(r["seconds"] for r in ok)
            w_mem = max(r["wasm_memory_bytes"] for r in ok)
            row.update({
                "wasm_seconds": w_s, "wasm_mb_s": size / 1e6 / w_s, "wasm_memory_bytes": w_mem,
                "node_peak_rss_bytes": max(r["process_peak_rss_bytes"] for r in ok),
                "wasm_memory_over_archive": w_mem / size, "wasm_seconds_rounds": [r["seconds"] for r in ok],
            })
        elif skip_wasm:
            row["wasm_skipped"] = "above BENCH_IMPORT_WASM_MAX_MB"
        else:
            row["wasm_error"] = wa[0]["error"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "load_1min_before": round(load_before, 2),
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "rounds": ROUNDS, "samples_per_activity": SAMPLES,
        "native_command": NATIVE_CMD, "wasm_command": WASM_CMD, "driver": "python3 bench/import.py",
        "wasm_module_bytes": (ROOT / "www/pkg-import/kompass_wasm_bg.wasm").stat().st_size,
        "sizes": rows,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "import.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
