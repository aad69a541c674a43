#!/usr/bin/env python3
"""Migration: `kompass migrate` against `rclone copy --transfers 16`, same files, same server.

10,000 files of 4 KiB across 10 users (bench/make_files.py), uploaded to SeaweedFS by each
tool in turn, 3 runs each, alternating (kompass first in odd runs, rclone first in even ones).
Every run gets a fresh, empty bucket, so both tools do the same work: 10,000 objects of the
same sizes into an empty bucket (kompass's keys are users/{user}/routes/{name}, rclone's
routes/{user}/{name}). kompass removes local copies once verified, so it gets a fresh copy of
the template data directory each run (copying is not timed); rclone reads the template.

Both tools upload with 16 transfers at once and check each object after its PUT (kompass a
HEAD for size and SHA-256, rclone a HEAD for size and MD5). Requests are counted by the
server (SeaweedFS's metrics, by bucket) and, for kompass, by its own JSON report.

Goal: kompass's wall time ≤ 1.0× rclone's (the median of the per-run ratios), with one PUT
per object and no more LISTs than listing pages. Run through bench/run.sh (needs the server).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

USERS = int(os.environ.get("BENCH_MIGRATE_USERS", 10))
FILES = int(os.environ.get("BENCH_MIGRATE_FILES", 10_000))
SIZE = int(os.environ.get("BENCH_MIGRATE_SIZE", 4096))
RUNS = int(os.environ.get("BENCH_MIGRATE_RUNS", 3))
TRANSFERS = 16


def run_kompass(template, work, bucket):
    data = work / "data"
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(template, data, symlinks=True)
    env = dict(os.environ, AWS_S3_BUCKET=bucket, S3_STORAGE_ENABLED="true")
    cmd = [common.kompass_bin(), "--json", "--data-dir", str(data), "migrate",
           "--concurrency", str(TRANSFERS)]
    # cwd: an empty directory, so no stray .env is read.
    wall, p = common.timed(cmd, cwd=work, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"kompass migrate failed ({p.returncode}): {p.stderr}\n{p.stdout[:2000]}")
    report = json.loads(p.stdout)
    left = sum(1 for f in (data / "routes").rglob("*") if f.is_file())
    return wall, {
        "cpu_s": round(p.cpu_s, 2),
        "migrated": report["migrated"],
        "failed": report["failed"],
        "local_removed": report["local_removed"],
        "local_files_left": left,
        "requests_reported": report["requests"],
        "elapsed_ms_reported": report["elapsed_ms"],
        "command": " ".join(["kompass", "--json", "--data-dir", "DATA", "migrate", "--concurrency", str(TRANSFERS)]),
    }


def run_rclone(template, work, bucket):
    cmd = ["rclone", "copy", "--transfers", str(TRANSFERS), str(template), f"{common.REMOTE}:{bucket}"]
    wall, p = common.timed(cmd, cwd=work, env=common.rclone_env(), capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"rclone copy failed ({p.returncode}): {p.stderr}")
    return wall, {"cpu_s": round(p.cpu_s, 2),
                  "command": f"rclone copy --transfers {TRANSFERS} TEMPLATE {common.REMOTE}:BUCKET"}


def main():
    common.s3_env()
    if shutil.which("rclone") is None:
        sys.exit("rclone is not installed: apt-get install -y rclone")
    version = subprocess.run(["rclone", "version"], capture_output=True, text=True).stdout.splitlines()[0]
    per_user = FILES // USERS
    with tempfile.TemporaryDirectory(prefix="kompass-bench-migrate-") as tmp:
        tmp = Path(tmp)
        template = tmp / "template"
        subprocess.run([sys.executable, str(Path(__file__).parent / "make_files.py"),
                        str(template), str(USERS), str(per_user), str(SIZE)], check=True)
        runs = []
        for i in range(1, RUNS + 1):
            order = ["kompass", "rclone"] if i % 2 else ["rclone", "kompass"]
            run = {"run": i, "order": order}
            for tool in order:
                bucket = f"bench-migrate-{os.getpid()}-{i}-{tool}"
                common.make_bucket(bucket)
                before = common.server_requests(bucket)
                work = tmp / f"{tool}-{i}"
                work.mkdir()
                load = common.loadavg()[0]
                if tool == "kompass":
                    wall, info = run_kompass(template, work, bucket)
                else:
                    wall, info = run_rclone(template, work, bucket)
                server = common.diff(common.server_requests(bucket), before)
                # Mean server time per request type: where the wall time goes.
                seconds = {k: round(1000 * v[1] / v[0], 2) for k, v in common.server_seconds(bucket).items()
                           if v[0] >= 100}
                objects, size = common.bucket_size(bucket)
                common.drop_bucket(bucket)
                shutil.rmtree(work, ignore_errors=True)
                if objects != USERS * per_user or size != USERS * per_user * SIZE:
                    sys.exit(f"{tool} run {i}: the bucket holds {objects} objects, {size} bytes; expected {USERS * per_user} of {SIZE} bytes")
                info.update({"wall_s": round(wall, 3), "server_requests": server,
                             "server_mean_ms": seconds,
                             "objects": objects, "bytes": size, "load_1min_before": round(load, 2)})
                run[tool] = info
                common.log(f"migrate run {i} {tool}: {wall:.2f} s (CPU {info['cpu_s']} s), "
                           f"server requests {server}, mean server ms {seconds}")
            run["ratio"] = round(run["kompass"]["wall_s"] / run["rclone"]["wall_s"], 3)
            runs.append(run)
    objects = USERS * per_user
    ratios = [r["ratio"] for r in runs]
    k_puts = [r["kompass"]["server_requests"].get("PUT", 0) for r in runs]
    k_lists = [r["kompass"]["server_requests"].get("LIST", 0) for r in runs]
    # kompass lists the bucket before uploading, when it is empty: one page.
    pages = 1
    result = {
        "load_1min_before": runs[0][runs[0]["order"][0]]["load_1min_before"],
        "objects": objects,
        "users": USERS,
        "object_bytes": SIZE,
        "transfers": TRANSFERS,
        "runs": runs,
        "median_ratio": common.median(ratios),
        "kompass_median_s": common.median([r["kompass"]["wall_s"] for r in runs]),
        "rclone_median_s": common.median([r["rclone"]["wall_s"] for r in runs]),
        "kompass_puts_per_object": max(k_puts) / objects,
        "kompass_lists_max": max(k_lists),
        "listing_pages": pages,
        "rclone_version": version,
        "goal": "kompass wall time <= 1.0x rclone's; one PUT per object; LISTs <= pages",
        "met": common.median(ratios) <= 1.0 and max(k_puts) == objects and max(k_lists) <= pages,
    }
    common.write_result("migrate", result)
    print(json.dumps({k: result[k] for k in ("median_ratio", "kompass_median_s", "rclone_median_s", "met")}))


if __name__ == "__main__":
    main()
