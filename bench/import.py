#!/usr/bin/env python3
"""Strava bulk-export import: throughput (MB/s of archive) native and wasm, and peak memory
against archive size.

Archives come from tests/strava_export/generate.py (seeded; GPX, TCX and FIT files, a third of
them gzipped), at BENCH_IMPORT_SIZES activities of BENCH_IMPORT_SAMPLES one-second samples.
Native: core/benches/import_timing.rs (release, `cargo bench`): the fastest of 3 imports and
the process's peak RSS (VmHWM, the archive's bytes included). wasm: bench/wasm/import.mjs, www/pkg-import under
Node: the import call's wall time and Node's peak RSS (Node itself is ~45 MB). Both sides
alternate per size, so a change in the machine's load hits both.

Usage: python3 bench/import.py   (after scripts/build-wasm.sh); BENCH_IMPORT_ARCHIVES=a.zip,b.zip
measures those archives instead of generating them.
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = [int(s) for s in os.environ.get("BENCH_IMPORT_SIZES", "10,40,120").split(",")]
SAMPLES = int(os.environ.get("BENCH_IMPORT_SAMPLES", "3600"))
PY = Path(os.environ.get("KOMPASS_CACHE", Path.home() / ".cache/kompass")) / "fit-tool-0.9.16/bin/python"


def native(path):
    env = dict(os.environ, KOMPASS_IMPORT_BENCH_ARCHIVE=str(path))
    p = subprocess.run(["cargo", "bench", "-q", "-p", "kompass-core", "--features", "import", "--bench", "import_timing"],
                       cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return json.loads([l for l in p.stdout.splitlines() if l.startswith("{")][-1])


def wasm(path):
    p = subprocess.run(["node", str(ROOT / "bench/wasm/import.mjs"), str(path)], capture_output=True, text=True, check=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        given = [Path(p) for p in os.environ.get("BENCH_IMPORT_ARCHIVES", "").split(",") if p]
        for n, path in ([(None, p) for p in given] or [(n, Path(tmp) / f"export_{n}.zip") for n in SIZES]):
            if n is not None:
                subprocess.run([str(PY), str(ROOT / "tests/strava_export/generate.py"), str(path), "--activities", str(n),
                                "--samples", str(SAMPLES), "--no-expected"], check=True)
            size = path.stat().st_size
            nat, wa = native(path), wasm(path)
            mb = size / 1e6
            rows.append({"activities": nat["activities"], "archive_mb": round(mb, 2), "expanded_mb": round(nat["expanded_bytes"] / 1e6, 1), "document_mb": round(nat["document_bytes"] / 1e6, 1),
                         "native_mb_s": round(mb / nat["seconds"], 1), "wasm_mb_s": round(mb / wa["seconds"], 1),
                         "native_peak_rss_mb": round(nat["peak_rss_bytes"] / 1e6, 1),
                         "wasm_node_peak_rss_mb": round(wa["peak_rss_bytes"] / 1e6, 1),
                         "wasm_over_native_time": round(wa["seconds"] / nat["seconds"], 2)})
            print(json.dumps(rows[-1]), flush=True)
    print("\n| activities | archive MB | expanded MB | document MB | native MB/s | wasm MB/s | wasm/native time | native peak RSS MB | wasm (Node) peak RSS MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['activities']} | {r['archive_mb']} | {r['expanded_mb']} | {r['document_mb']} | {r['native_mb_s']} | {r['wasm_mb_s']} | "
              f"{r['wasm_over_native_time']} | {r['native_peak_rss_mb']} | {r['wasm_node_peak_rss_mb']} |")


if __name__ == "__main__":
    sys.exit(main())
