#!/usr/bin/env python3
"""Per-call cost of a save from Python: `kompass_storage` in-process against the `kompass save`
CLI run once per save (what the app would do without the package: shell out, parse JSON).

Both store the same small route (about 200 bytes of JSON) for one user on local storage, each
in its own fresh data directory, under distinct names. The two are measured in one run,
interleaved in rounds (CLI block, Python block, ...) so that a change in the machine's load
hits both alike; the result is the median per call of each and their ratio.

Run with the Python that has kompass_storage installed, and a kompass binary built with the
same cargo profile (bench/python.sh does both):
    python bench/python_overhead.py [--saves N] [--rounds R] [--kompass PATH]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROUTE = {
    "name": "Lake loop",
    "distance_km": 42.5,
    "elevation_m": 612,
    "points": [[45.8992, 6.1294], [45.9011, 6.1302], [45.9040, 6.1333], [45.9102, 6.1401]],
    "tags": ["morning", "flat"],
}
#: Every variable kompass reads: the bench sets its own.
CONFIG_PREFIXES = ("S3_", "AWS_", "KOMPASS_", "DATA_DIRECTORY")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--saves", type=int, default=100, help="saves per round and way (default 100)")
    ap.add_argument("--rounds", type=int, default=4, help="interleaved rounds (default 4)")
    ap.add_argument(
        "--dir",
        default=None,
        help="where the data directories go (default: the system temp dir); /dev/shm takes the "
        "disk's fsync out, leaving the per-call overhead",
    )
    ap.add_argument("--kompass", default=os.environ.get("KOMPASS_BIN") or str(ROOT / "target" / "release" / "kompass"))
    args = ap.parse_args()
    args.kompass = os.path.abspath(args.kompass)  # the bench changes directory
    if not os.access(args.kompass, os.X_OK):
        sys.exit(f"no kompass binary at {args.kompass}: build it (bench/python.sh does) or pass --kompass")
    import kompass_storage

    with tempfile.TemporaryDirectory(prefix="kompass-bench-py-", dir=args.dir) as tmp:
        tmp = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith(CONFIG_PREFIXES)}
        for k in list(os.environ):
            if k.startswith(CONFIG_PREFIXES):
                del os.environ[k]
        os.chdir(tmp)  # no stray .env
        cli_env = dict(env, DATA_DIRECTORY=str(tmp / "cli"))
        os.environ["DATA_DIRECTORY"] = str(tmp / "py")
        manager = kompass_storage.StorageManager()
        body = json.dumps(ROUTE).encode()
        src = tmp / "route.json"
        src.write_bytes(body)

        cli_times: list[float] = []
        py_times: list[float] = []
        n = 0
        for _ in range(args.rounds):
            for _ in range(args.saves):
                t = time.perf_counter()
                p = subprocess.run(
                    [args.kompass, "save", "--json", "--user", "bench", "--type", "routes", "--name", f"r{n}.json", str(src)],
                    env=cli_env,
                    capture_output=True,
                )
                # The caller parses the answer, as the app would have to.
                saved = json.loads(p.stdout) if p.returncode == 0 else None
                cli_times.append(time.perf_counter() - t)
                if saved is None:
                    sys.exit(f"kompass save failed: {p.stderr.decode()}")
                n += 1
            for _ in range(args.saves):
                t = time.perf_counter()
                ok = manager.save_data(ROUTE, "bench", "routes", f"r{n}.json")
                py_times.append(time.perf_counter() - t)
                if not ok:
                    sys.exit(f"save_data failed: {manager.last_error}")
                n += 1
        # Both stored every save.
        assert len(list((tmp / "cli" / "routes" / "bench").iterdir())) == args.saves * args.rounds
        assert len(manager.list_user_data("bench", "routes")) == args.saves * args.rounds

    cli_med, py_med = statistics.median(cli_times), statistics.median(py_times)
    load = os.getloadavg()[0]
    result = {
        "saves_each": len(py_times),
        "rounds": args.rounds,
        "payload_bytes": len(body),
        "cli_median_ms": round(cli_med * 1000, 3),
        "cli_mean_ms": round(statistics.mean(cli_times) * 1000, 3),
        "python_median_ms": round(py_med * 1000, 3),
        "python_mean_ms": round(statistics.mean(py_times) * 1000, 3),
        "cli_over_python": round(cli_med / py_med, 1),
        "cli_minus_python_ms": round((cli_med - py_med) * 1000, 3),
        "kompass": args.kompass,
        "loadavg_1m": round(load, 2),
        "cpus": os.cpu_count(),
    }
    result["dir"] = args.dir or tempfile.gettempdir()
    print(
        f"save of {len(body)} B on local storage in {result['dir']}, median per call over {len(py_times)} saves each "
        f"({args.rounds} interleaved rounds; load average {load:.1f} on {os.cpu_count()} CPUs):\n"
        f"  kompass save (one process per save): {result['cli_median_ms']:.2f} ms\n"
        f"  kompass_storage save_data (in-process): {result['python_median_ms']:.2f} ms\n"
        f"  ratio CLI / Python: {result['cli_over_python']}x "
        f"(the CLI costs {result['cli_minus_python_ms']:.2f} ms more per save)"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
