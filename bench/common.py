"""Shared helpers of the benchmark drivers (bench/*.py): the S3 test server's settings and
request metrics, rclone's remote, result files and the machine's description.

The drivers run under bench/run.sh, which starts SeaweedFS (scripts/s3-server.sh) with a
Prometheus metrics port and exports its env file's variables plus BENCH_METRICS_URL.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def out_dir():
    """Where results go: $BENCH_OUT, else $CARGO_TARGET_DIR/bench (or target/bench)."""
    d = os.environ.get("BENCH_OUT") or os.path.join(
        os.environ.get("CARGO_TARGET_DIR") or str(ROOT / "target"), "bench"
    )
    Path(d).mkdir(parents=True, exist_ok=True)
    return Path(d)


def kompass_bin():
    """The release binary bench/run.sh built."""
    b = os.environ.get("KOMPASS_BIN") or os.path.join(
        os.environ.get("CARGO_TARGET_DIR") or str(ROOT / "target"), "release", "kompass"
    )
    if not os.access(b, os.X_OK):
        sys.exit(f"no kompass release binary at {b}: run `cargo build --release -p kompass` (bench/run.sh does)")
    return b


def require_env(*names):
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        sys.exit(
            f"{', '.join(missing)} not set: run this through bench/run.sh, which starts the S3 "
            "test server (scripts/s3-server.sh) and exports its settings"
        )


def s3_env():
    """The S3 server's settings from the environment (AWS_* as scripts/s3-server.sh writes)."""
    require_env("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "BENCH_METRICS_URL")
    return {
        "endpoint": os.environ["AWS_ENDPOINT_URL"],
        "key": os.environ["AWS_ACCESS_KEY_ID"],
        "secret": os.environ["AWS_SECRET_ACCESS_KEY"],
        "region": os.environ.get("AWS_REGION", "us-east-1"),
        "metrics": os.environ["BENCH_METRICS_URL"],
    }


# rclone's remote, configured entirely from the environment (no config file).
REMOTE = "kbench"


def rclone_env():
    s3 = s3_env()
    env = dict(os.environ)
    # The machine's AWS_CA_BUNDLE makes rclone's AWS SDK fail ("unsupported transport").
    env.pop("AWS_CA_BUNDLE", None)
    conf = Path(tempfile.gettempdir()) / "kompass-bench-rclone.conf"
    conf.touch()
    p = f"RCLONE_CONFIG_{REMOTE.upper()}_"
    env.update({
        "RCLONE_CONFIG": str(conf),
        p + "TYPE": "s3",
        p + "PROVIDER": "Other",
        p + "ENV_AUTH": "false",
        p + "ACCESS_KEY_ID": s3["key"],
        p + "SECRET_ACCESS_KEY": s3["secret"],
        p + "ENDPOINT": s3["endpoint"],
        p + "REGION": s3["region"],
        p + "FORCE_PATH_STYLE": "true",
    })
    return env


def rclone(*args, check=True, capture=False):
    return subprocess.run(
        ["rclone", *args], env=rclone_env(), check=check, text=True,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def make_bucket(name):
    rclone("mkdir", f"{REMOTE}:{name}")


def drop_bucket(name):
    """Deletes the bucket and everything in it (not timed)."""
    rclone("purge", f"{REMOTE}:{name}", check=False)


def bucket_size(name):
    """(objects, bytes) in the bucket, by rclone's listing. Sends LISTs: call after metrics."""
    r = rclone("size", "--json", f"{REMOTE}:{name}", capture=True)
    d = json.loads(r.stdout)
    return d["count"], d["bytes"]


_METRIC = re.compile(r'^SeaweedFS_s3_request_total\{([^}]*)\}\s+([0-9.e+]+)$')


def server_requests(bucket):
    """The S3 server's request counters for `bucket`, by type (PUT, LIST, GET, DELETE, ...),
    summed over status codes, from SeaweedFS's Prometheus metrics. SeaweedFS labels a HEAD
    as GET."""
    import urllib.request
    text = urllib.request.urlopen(os.environ["BENCH_METRICS_URL"], timeout=10).read().decode()
    counts = {}
    for line in text.splitlines():
        m = _METRIC.match(line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if labels.get("bucket") != bucket:
            continue
        t = labels.get("type", "?")
        counts[t] = counts.get(t, 0) + int(float(m.group(2)))
    return counts


_SECONDS = re.compile(r'^SeaweedFS_s3_request_seconds_(sum|count)\{([^}]*)\}\s+([0-9.e+]+)$')


def server_seconds(bucket):
    """The S3 server's time spent handling requests for `bucket`, by type: {type: [count,
    seconds]}, from its request-duration histogram."""
    import urllib.request
    text = urllib.request.urlopen(os.environ["BENCH_METRICS_URL"], timeout=10).read().decode()
    out = {}
    for line in text.splitlines():
        m = _SECONDS.match(line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        if labels.get("bucket") != bucket:
            continue
        row = out.setdefault(labels.get("type", "?"), [0, 0.0])
        row[0 if m.group(1) == "count" else 1] += float(m.group(3))
    return out


def diff(after, before):
    keys = set(after) | set(before)
    return {k: after.get(k, 0) - before.get(k, 0) for k in sorted(keys) if after.get(k, 0) != before.get(k, 0)}


def timed(cmd, **kw):
    """Runs cmd, returning (wall seconds, CompletedProcess); the child's CPU time (user +
    system, seconds) is in the process's `cpu_s`."""
    import resource
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run(cmd, **kw)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    p.cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, p


def loadavg():
    return os.getloadavg()


def write_result(name, data):
    data = dict(data)
    data["date"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    data["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    path = out_dir() / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"[bench] wrote {path}", file=sys.stderr)
    return path


def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)
