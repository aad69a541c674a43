#!/usr/bin/env python3
"""`kompass serve` under load, on loopback, local storage (native/benches/serve_load.rs is the
client).

1. Decisions: 32 concurrent clients send `POST /api/presign` (token check, admission with its
   quota decision, a signed grant) and, alternating with it in the same run, the plainest
   route: `GET /healthz` if the server has it, else `GET /api/usage` (the plainest
   authenticated route). Each phase runs BENCH_SERVE_SECONDS (default 4) s; BENCH_SERVE_ROUNDS
   (default 3) rounds of plain, presign. Reported: requests/s and p50/p99 latency, and
   presign's requests/s as a share of the plain route's (median of per-round ratios).
   Goal: presign ≥ 0.3×. One token drives all clients (2,048 live grants of one user: the
   worst case for the reservations an admission weighs); each round then runs presign again
   with BENCH_SERVE_TOKENS (default 32) users' tokens, client c using token c mod N, reported
   beside it (`presign_many_*`) against the same round's plain route.
2. Upload: one client presigns and PUTs BENCH_UPLOAD_MB (default 32) MiB to the granted
   `/api/upload/{grant}`, BENCH_UPLOAD_COUNT (default 4) times per round, alternating with
   `dd if=SAME_BYTES of=DATA_DIR/... bs=1M conv=fsync` (the server fsyncs what it stores, so
   dd does too) on the same disk. MB/s of the PUTs (server receives, checks size and SHA-256,
   writes, fsyncs) against dd's, timed by dd itself (its reported copy time, which includes
   the fsync; the process start is left out, as the PUTs reuse a connection). Goal: ≥ 0.5×.

The server runs from a fresh data directory under BENCH_OUT with its own secret; it is stopped
at the end. Port: KOMPASS_BENCH_SERVE_PORT (default 19550).
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

PORT = int(os.environ.get("KOMPASS_BENCH_SERVE_PORT", 19550))
CLIENTS = int(os.environ.get("BENCH_SERVE_CLIENTS", 32))
SECONDS = float(os.environ.get("BENCH_SERVE_SECONDS", 4))
ROUNDS = int(os.environ.get("BENCH_SERVE_ROUNDS", 3))
UPLOAD_MB = int(os.environ.get("BENCH_UPLOAD_MB", 32))
UPLOAD_COUNT = int(os.environ.get("BENCH_UPLOAD_COUNT", 4))
TOKENS = int(os.environ.get("BENCH_SERVE_TOKENS", 32))


def client_exe():
    cmd = ["cargo", "bench", "--no-run", "-q", "-p", "kompass", "--bench", "serve_load",
           "--message-format=json"]
    out = subprocess.run(cmd, cwd=common.ROOT, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("{"):
            m = json.loads(line)
            if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "serve_load" \
                    and m.get("executable"):
                return m["executable"]
    sys.exit("cargo did not report the serve_load bench executable")


def status_of(url, token=None):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers.get("content-type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("content-type", "")


def dd_seconds(stderr):
    """The seconds dd reports for its copy ("... copied, 0.0285 s, 1.2 GB/s")."""
    m = re.search(r"copied, ([0-9.]+(?:e-?[0-9]+)?) s", stderr)
    if not m:
        sys.exit(f"dd printed no time: {stderr}")
    return float(m.group(1))


def main():
    kompass = common.kompass_bin()
    client = client_exe()
    work = common.out_dir() / "serve-load"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    data = work / "data"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KOMPASS_", "S3_", "AWS_")) and k != "DATA_DIRECTORY"}
    env.update({
        "DATA_DIRECTORY": str(data),
        "KOMPASS_SERVER_SECRET": "bench-server-secret-0123456789abcdef0123456789",
        "S3_MAX_FILE_SIZE_MB": str(max(64, UPLOAD_MB * 2)),
        "S3_MAX_USER_STORAGE_MB": "100000",
        "S3_MAX_TOTAL_STORAGE_GB": "1000",
        "KOMPASS_LOG": "warn",
        # One token drives all 32 clients: the per-token limit (20/s) would be measured, not
        # the decision.
        "KOMPASS_API_RATE_LIMIT": "off",
    })
    base = f"http://127.0.0.1:{PORT}"
    server = subprocess.Popen([kompass, "--json", "serve", "--addr", f"127.0.0.1:{PORT}"], cwd=work, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        text = ""
        for line in server.stdout:  # the start-up object, pretty-printed
            text += line
            if line.rstrip() == "}":
                break
        started = json.loads(text)
        token = started["token"]
        for _ in range(100):
            try:
                status_of(base + "/api/usage", token)
                break
            except OSError:
                time.sleep(0.1)
        st, ctype = status_of(base + "/healthz")
        plain = "get:/healthz" if st == 200 and "html" not in ctype else "get:/api/usage"
        common.log(f"serve load: plain route {plain}, {CLIENTS} clients, {SECONDS:g} s a phase, {ROUNDS} rounds")

        # Tokens of other users (the first is the server's own), for the many-users phase.
        tokens = [token] + [
            json.loads(subprocess.run([kompass, "--json", "token", "--user", f"load-rider-{i}"], cwd=work,
                                      env=env, check=True, capture_output=True, text=True).stdout)["token"]
            for i in range(1, TOKENS)]

        def server_cpu_s():
            # utime + stime of the server, all threads (fields 14 and 15 of /proc/PID/stat).
            fields = Path(f"/proc/{server.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        def phase(route, seconds=SECONDS, clients=CLIENTS, tokens=(token,)):
            args = [client, "--base", base, "--clients", str(clients), "--seconds", str(seconds), route]
            for t in tokens:
                args += ["--token", t]
            cpu = server_cpu_s()
            out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
            res = json.loads(out.strip().splitlines()[-1])
            # The server's CPU per request: on a busy machine steadier than requests/s.
            res["server_cpu_us_per_request"] = (server_cpu_s() - cpu) / max(res["requests"], 1) * 1e6
            return res

        phase(plain, 1.0)  # warm up: connections, page cache
        rounds = []
        for r in range(ROUNDS):
            load = common.loadavg()[0]
            a = phase(plain)
            b = phase("presign")
            c = phase("presign", tokens=tokens)
            rd = {"load_1min_before": round(load, 2), "plain": a, "presign": b, "presign_many": c,
                  "ratio": b["rps"] / a["rps"] if a["rps"] else 0.0,
                  "ratio_many": c["rps"] / a["rps"] if a["rps"] else 0.0}
            common.log(f"round {r + 1}: {plain} {a['rps']:.0f}/s p99 {a['p99_us'] / 1e3:.2f} ms; presign "
                       f"{b['rps']:.0f}/s p99 {b['p99_us'] / 1e3:.2f} ms; {rd['ratio']:.2f}x; with {TOKENS} "
                       f"tokens {c['rps']:.0f}/s p99 {c['p99_us'] / 1e3:.2f} ms; {rd['ratio_many']:.2f}x; "
                       f"server CPU per request {a['server_cpu_us_per_request']:.1f} / "
                       f"{b['server_cpu_us_per_request']:.1f} / {c['server_cpu_us_per_request']:.1f} us")
            rounds.append(rd)

        # Upload vs dd, alternating.
        nbytes = UPLOAD_MB * 1024 * 1024
        src = work / "upload.bin"
        with open(src, "wb") as f:
            import hashlib
            i = 0
            buf = bytearray()
            while len(buf) < nbytes:
                buf += hashlib.sha256(i.to_bytes(8, "little")).digest()
                i += 1
            f.write(bytes(buf[:nbytes]))
        up_rounds = []
        for r in range(ROUNDS):
            u = phase(f"upload:{nbytes}:{UPLOAD_COUNT}", clients=1)
            if u["ok"] != UPLOAD_COUNT:
                sys.exit(f"uploads failed: {u['statuses']}")
            dd_s, dd_wall = [], []
            for n in range(UPLOAD_COUNT):
                target = data / f"dd-{r}-{n}.bin"
                wall, p = common.timed(["dd", f"if={src}", f"of={target}", "bs=1M", "conv=fsync"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True,
                                       env={**os.environ, "LC_ALL": "C"})
                # dd's own time (from its first read to after the fsync), not the process's
                # wall time: starting a process costs 1-15 ms on this busy machine, which the
                # server's PUTs (a kept-alive connection) never pay.
                dd_s.append(dd_seconds(p.stderr))
                dd_wall.append(wall)
                target.unlink()
            dd_mbps = UPLOAD_COUNT * nbytes / 1e6 / sum(dd_s)
            up_rounds.append({"upload": u, "dd_seconds": dd_s, "dd_wall_seconds": dd_wall, "dd_mb_per_s": dd_mbps,
                              "ratio": u["mb_per_s"] / dd_mbps})
            common.log(f"upload round {r + 1}: server {u['mb_per_s']:.0f} MB/s, dd {dd_mbps:.0f} MB/s, "
                       f"{u['mb_per_s'] / dd_mbps:.2f}x")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(work, ignore_errors=True)

    def med(xs):
        return common.median(xs)
    result = {
        "clients": CLIENTS,
        "seconds_per_phase": SECONDS,
        "rounds": ROUNDS,
        "plain_route": plain,
        "plain_rps": med([r["plain"]["rps"] for r in rounds]),
        "plain_p50_us": med([r["plain"]["p50_us"] for r in rounds]),
        "plain_p99_us": med([r["plain"]["p99_us"] for r in rounds]),
        "presign_rps": med([r["presign"]["rps"] for r in rounds]),
        "presign_p50_us": med([r["presign"]["p50_us"] for r in rounds]),
        "presign_p99_us": med([r["presign"]["p99_us"] for r in rounds]),
        "ratio": round(med([r["ratio"] for r in rounds]), 3),
        "ratios": [round(r["ratio"], 3) for r in rounds],
        "presign_many_tokens": TOKENS,
        "presign_many_rps": med([r["presign_many"]["rps"] for r in rounds]),
        "presign_many_p50_us": med([r["presign_many"]["p50_us"] for r in rounds]),
        "presign_many_p99_us": med([r["presign_many"]["p99_us"] for r in rounds]),
        "ratio_many": round(med([r["ratio_many"] for r in rounds]), 3),
        "plain_server_cpu_us": med([r["plain"]["server_cpu_us_per_request"] for r in rounds]),
        "presign_server_cpu_us": med([r["presign"]["server_cpu_us_per_request"] for r in rounds]),
        "presign_many_server_cpu_us": med([r["presign_many"]["server_cpu_us_per_request"] for r in rounds]),
        "ratios_many": [round(r["ratio_many"], 3) for r in rounds],
        "upload_bytes": nbytes,
        "upload_count": UPLOAD_COUNT,
        "upload_mb_per_s": med([u["upload"]["mb_per_s"] for u in up_rounds]),
        "dd_mb_per_s": med([u["dd_mb_per_s"] for u in up_rounds]),
        "upload_ratio": round(med([u["ratio"] for u in up_rounds]), 3),
        "upload_ratios": [round(u["ratio"], 3) for u in up_rounds],
        "command": f"cargo bench -p kompass --bench serve_load -- --base http://127.0.0.1:PORT --token T "
                   f"--clients {CLIENTS} --seconds {SECONDS:g} ({plain} | presign | upload:{nbytes}:{UPLOAD_COUNT}) "
                   f"against KOMPASS_API_RATE_LIMIT=off kompass --json serve; dd bs=1M conv=fsync (dd's own time)",
        "driver": "python3 bench/serve_load.py",
        "raw": {"rounds": rounds, "upload_rounds": up_rounds},
    }
    result["met_presign"] = result["ratio"] >= 0.3
    result["met_upload"] = result["upload_ratio"] >= 0.5
    common.write_result("serve_load", result)
    print(json.dumps({"presign_vs_plain": result["ratio"], "presign_many_vs_plain": result["ratio_many"],
                      "upload_vs_dd": result["upload_ratio"]}))


if __name__ == "__main__":
    main()
