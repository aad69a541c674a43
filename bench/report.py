#!/usr/bin/env python3
"""Renders BENCHMARKS.md from the result files bench/run.sh leaves in BENCH_OUT.

Usage: report.py RESULTS_DIR OUTPUT.md

Every figure comes from a result file; the prose that explains the figures (what bounds
them, what was changed to meet a goal) is in bench/notes.md and is appended as is.
"""
import json
import sys
from pathlib import Path

NOTES = Path(__file__).resolve().parent / "notes.md"


def load(d, name):
    p = d / f"{name}.json"
    return json.loads(p.read_text()) if p.exists() else None


def t(ns):
    """A duration for people."""
    if ns >= 1e9:
        return f"{ns / 1e9:.2f} s"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.1f} µs"
    return f"{ns:.0f} ns"


def size(b):
    for unit, n in (("MB", 1e6), ("KB", 1e3)):
        if b >= n:
            return f"{b / n:.1f} {unit}"
    return f"{b} B"


def met(ok):
    return "**met**" if ok else "**missed**"


def when(r):
    load = r.get("load_1min_before")
    after = r.get("loadavg_after")
    s = f"{r['date']}"
    if load is not None:
        s += f"; load average (1 min) {load} before"
    if after:
        s += f", {after[0]} / {after[1]} / {after[2]} after"
    return s


def scrub(r):
    rows = ["| activities | input | scrub (median) | serde_json round trip (median) | scrub / round trip |",
            "| ---: | ---: | ---: | ---: | ---: |"]
    for s in r["sizes"]:
        rows.append(f"| {s['activities']:,} | {size(s['input_bytes'])} | {t(s['scrub']['median_ns'])} "
                    f"| {t(s['round_trip']['median_ns'])} | {s['ratio']:.2f}× |")
    worst = max(s["ratio"] for s in r["sizes"])
    return (f"Goal: scrub ≤ 1.5× a serde_json parse + serialize of the same bytes (to and from "
            f"`serde_json::Value`). Worst ratio {worst:.2f}×: {met(r['met'])}.\n\n" + "\n".join(rows) +
            f"\n\nCommand: `{r['command']}` (criterion medians). Date: {when(r)}.\n"), \
        ("Scrub vs serde_json round trip", f"≤ 1.5×", f"{worst:.2f}× (worst of 1 / 100 / 5,000 activities)", r["met"])


def fifo(r):
    rows = ["| objects | plan_bucket (random order) | plan_bucket (listing order) | plan_user | usage | scan (floor) |",
            "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for s in r["sizes"]:
        rows.append(f"| {s['objects']:,} | {t(s['plan_bucket']['median_ns'])} | {t(s['plan_bucket_listing']['median_ns'])} "
                    f"| {t(s['plan_user']['median_ns'])} | {t(s['usage']['median_ns'])} | {t(s['scan']['median_ns'])} |")
    q = r["ratio_1m_over_100k"]
    rows.append(f"| time(1M) / time(100k) | {q['plan_bucket']}× | {q['plan_bucket_listing']}× | {q['plan_user']}× "
                f"| {q['usage']}× | {q['scan']}× |")
    by = {s["objects"]: s for s in r["sizes"]}
    worst_1m = max(by[1_000_000]["plan_bucket"]["median_ns"], by[1_000_000]["plan_bucket_listing"]["median_ns"])
    plans = "\n".join(f"    {p}" for p in r.get("plans", []))
    inter = r.get("interleaved", {})
    irows = ["| input order | 100k: CPU per plan | 1M: CPU per plan | 1M / 100k (CPU) | 1M / 100k (wall) | median of per-round ratios (CPU) |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for order, d in sorted(inter.items(), key=lambda kv: ("random", "listing", "scan").index(kv[0])):
        label = "scan (floor, not a plan)" if order == "scan" else order
        irows.append(f"| {label} | {t(d['cpu_ns_100k'])} | {t(d['cpu_ns_1m'])} | {d['ratio_cpu']:.2f}× | {d['ratio_wall']:.2f}× "
                     f"| {d['ratio_cpu_per_round_median']:.2f}× |")
    ratio_c = max(q['plan_bucket'], q['plan_bucket_listing'])
    ratio_i = max((d["ratio_cpu"] for o, d in inter.items() if o != "scan"), default=float("nan"))
    text = (f"Goal: a cleanup plan over 1M objects in under 1 s, and time(1M) / time(100k) ≤ 12. "
            f"Slowest 1M plan {t(worst_1m)}; ratio {ratio_c}× by criterion, {ratio_i:.2f}× with the sizes "
            f"alternating (worst input order): {met(r['met'])}.\n\n"
            + "\n".join(rows) + "\n\n`scan` is the floor: one pass that reads what any plan reads of every object "
            "(size, age, the bytes of its key, user and data type) and decides nothing; its 1M/100k ratio is "
            "what the memory system alone costs on this machine. The inventories and plans (from the bench's "
            "output):\n\n" + plans +
            f"\n\nCommand: `{r['command']}` (criterion medians).\n\n"
            f"The same plans (`plan_bucket`), and `scan`, with 100k and 1M alternating, 11 rounds (a 100k "
            f"sample is a batch of 10), medians; CPU = the process's user + system time:\n\n" + "\n".join(irows) +
            f"\n\nCommand: `{r.get('interleaved_command', '')}`. Date: {when(r)}.\n")
    return text, ("FIFO plan at 1M objects", "< 1 s; 1M/100k ≤ 12",
                  f"{t(worst_1m)}; {ratio_c}× (criterion), {ratio_i:.2f}× (alternating)", r["met"])


def wasm(r):
    rows = ["| scrub | activities | input | native CPU | wasm CPU | wasm / native (CPU) | native wall | wasm wall | wasm / native (wall) | per-round CPU ratios |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for s in r["sizes"]:
        rows.append(f"| {s.get('mode', 'keyed')} | {s['activities']:,} | {size(s['input_bytes'])} | {t(s['native_cpu_ns'])} | {t(s['wasm_cpu_ns'])} "
                    f"| {s['ratio']:.2f}× | {t(s['native_wall_ns'])} | {t(s['wasm_wall_ns'])} | {s['ratio_wall']:.2f}× "
                    f"| {', '.join(f'{x:.2f}' for x in s['ratios_cpu'])} |")
    worst = max(s["ratio"] for s in r["sizes"])
    worst_at = max(r["sizes"], key=lambda s: s["ratio"])
    n = worst_at["activities"]
    where = f"{worst_at.get('mode', 'keyed')}, {n:,} activit{'y' if n == 1 else 'ies'}"
    text = (f"Goal: scrub through the wasm package under Node ≤ 2.5× native scrub of the same bytes. "
            f"Worst ratio {worst:.2f}× ({where}; process CPU time): {met(r['met'])}.\n\n" + "\n".join(rows) +
            f"\n\nKeyed: ids pseudonymised with an HMAC key (as server-side JS would scrub); keyless: ids dropped, "
            f"as the page scrubs (the browser never holds the key). "
            f"Node {r['node']}, the page's module `www/pkg` ({size(r['wasm_module_bytes'])} of wasm"
            + (f", {size(r['wasm_gzip_bytes'])} gzipped (gzip -9; budget {size(r['gzip_budget_bytes'])})" if 'wasm_gzip_bytes' in r else "")
            + "). "
            f"{r['rounds']} rounds, native and wasm alternating; each figure is the median over the rounds of "
            f"the median of 21 samples. CPU = the process's user + system time (on this shared machine it "
            f"leaves out waiting for a CPU; wall-clock figures are beside it).\n\n"
            f"Commands: `{r['native_command']}` and `{r['wasm_command']}` (both run by `python3 bench/wasm.py`). "
            f"Date: {when(r)}.\n")
    big = [s["ratio"] for s in r["sizes"] if s["activities"] >= 100]
    measured = f"{worst:.2f}× (worst: {where}); {min(big):.2f}–{max(big):.2f}× from 100 activities up" if big \
        else f"{worst:.2f}× ({where})"
    if "wasm_gzip_bytes" in r:
        measured += f"; {size(r['wasm_gzip_bytes'])} gzipped"
    return text, ("wasm scrub vs native", "≤ 2.5× at every size; gzip ≤ 150 KB", measured + "; CPU time", r["met"])


def migrate(r):
    rows = ["| run | order | kompass | rclone | kompass / rclone | CPU kompass / rclone | server ms per PUT, HEAD: kompass / rclone | kompass requests (server) | rclone requests (server) |",
            "| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    def req(d):
        return ", ".join(f"{k} {v:,}" for k, v in sorted(d.items()))
    def ms(x):
        m = x.get("server_mean_ms", {})
        return f"{m.get('PUT', 0):.1f}, {m.get('GET', 0):.1f}"
    for x in r["runs"]:
        k, c = x["kompass"], x["rclone"]
        rows.append(f"| {x['run']} | {' then '.join(x['order'])} | {k['wall_s']:.2f} s | {c['wall_s']:.2f} s "
                    f"| {x['ratio']:.2f}× | {k.get('cpu_s', 0):.1f} s / {c.get('cpu_s', 0):.1f} s | {ms(k)} / {ms(c)} "
                    f"| {req(k['server_requests'])} | {req(c['server_requests'])} |")
    k = r["runs"][0]["kompass"]
    rep = r["runs"][-1]["kompass"]["requests_reported"]
    text = (f"Goal: `kompass migrate` ≤ 1.0× the wall time of `rclone copy --transfers {r['transfers']}` "
            f"for {r['objects']:,} files of {r['object_bytes'] / 1024:g} KiB across {r['users']} users, with one PUT per "
            f"object and no more LISTs than listing pages. Median ratio {r['median_ratio']:.2f}× "
            f"(kompass {r['kompass_median_s']:.2f} s, rclone {r['rclone_median_s']:.2f} s); "
            f"{r['kompass_puts_per_object']:.2f} PUT per object; {r['kompass_lists_max']} LIST for "
            f"{r['listing_pages']} page: {met(r['met'])}.\n\n" + "\n".join(rows) +
            f"\n\nEach run uploads into a fresh, empty bucket (dropped afterwards, not timed); kompass gets a fresh "
            f"copy of the data directory (not timed), since it removes local copies once verified. Both check "
            f"every object after its PUT (SeaweedFS counts a HEAD as GET). kompass's own count of its last run: "
            f"{json.dumps(rep)}. {rclone_version(r)}\n\n"
            f"Commands: `{k['command']}` and `{r['runs'][0]['rclone']['command']}`, driven by `python3 bench/migrate.py`. "
            f"Date: {when(r)}.\n")
    return text, ("migrate vs rclone copy", "≤ 1.0×; 1 PUT/object; LISTs ≤ pages",
                  f"{r['median_ratio']:.2f}×; {r['kompass_puts_per_object']:.2f} PUT/object; {r['kompass_lists_max']} LIST", r["met"])


def rclone_version(r):
    return f"rclone: {r['rclone_version']}." if r.get("rclone_version") else ""


def saves(r):
    c = r["cleanup"]
    led = r["ledger"]
    srv = r["server_requests"]
    rows = ["| counted by | PUT-class | GET-class | free (DELETE) | PUT-class per save |",
            "| --- | ---: | ---: | ---: | ---: |",
            f"| kompass's ledger (`.kompass/state.sqlite3`) | {led['put_class']:,} | {led['get_class']:,} | {led['free']:,} | {r['put_class_per_save_ledger']:.3f} |",
            f"| SeaweedFS's metrics ({', '.join(f'{k} {v:,}' for k, v in sorted(srv.items()))}) "
            f"| {srv.get('PUT', 0) + srv.get('LIST', 0) + srv.get('POST', 0):,} | {srv.get('GET', 0):,} | {srv.get('DELETE', 0):,} "
            f"| {r['put_class_per_save_server']:.3f} |"]
    worst = max(r["put_class_per_save_ledger"], r["put_class_per_save_server"])
    text = (f"Goal: ≤ 1.05 PUT-class requests (PUT, COPY, POST, LIST) per save with auto-cleanup on; the original "
            f"spent at least 3 (two LISTs and a PUT). {worst:.3f} per save: {met(r['met'])}.\n\n" + "\n".join(rows) +
            f"\n\n{r['saves']:,} saves of {r['object_bytes'] / 1024:g} KiB by one user, each its own `kompass save` process, "
            f"under a {r['user_quota_mb']:g} MB user quota (cleanup at {r['threshold_percent']}%, keep at least "
            f"{r['min_files_to_keep']}): cleanup first ran at save {c['first_cleanup_at_save']} and then on "
            f"{c['saves_with_cleanup']:,} saves, deleting {c['objects_deleted']:,} objects; {r['objects_left']} objects "
            f"({size(r['bytes_left'])}) were left. Median time per save (process start to exit): {r['median_save_ms']} ms.\n\n"
            f"Command: `{r['command']}`, driven by `python3 bench/saves.py`. Date: {when(r)}.\n")
    return text, ("PUT-class requests per save", "≤ 1.05", f"{worst:.3f}", r["met"])


def scrub_process(r):
    rows = ["| activities | input | scrub | output | floor CPU | scrub CPU | scrub / floor (CPU) | per-round CPU ratio | floor wall | scrub wall | scrub / floor (wall) | peak RSS | RSS / (input + output) |",
            "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]

    def spread(d):
        return f"{t(d['median'] * 1e9)} ({t(d['min'] * 1e9)}–{t(d['max'] * 1e9)})"
    for s in r["sizes"]:
        fl = s["floor"]
        for m in ("keyed", "keyless"):
            sc = s[m]
            rows.append(
                f"| {s['activities']:,} | {size(s['input_bytes'])} | {m} | {size(s['output_bytes'][m])} "
                f"| {spread(fl['cpu'])} | {spread(sc['cpu'])} | {s[m + '_ratio_cpu']:.2f}× | {s[m + '_ratio_cpu_per_round']:.2f}× "
                f"| {t(fl['wall']['median'] * 1e9)} | {t(sc['wall']['median'] * 1e9)} | {s[m + '_ratio_wall']:.2f}× "
                f"| {size(sc['rss']['max'])} | {s[m + '_rss_ratio']:.2f}× |")
    goal = [s for s in r["sizes"] if s["activities"] >= 5000]
    worst = max((s[f"{m}_ratio_cpu"] for s in goal for m in ("keyed", "keyless")), default=float("nan"))
    big = [s for s in r["sizes"] if s["activities"] == 20000]
    rss = max((s[f"{m}_rss_ratio"] for s in big for m in ("keyed", "keyless")), default=float("nan"))
    loads = ", ".join(f"{s['activities']:,}: {s['load_1min_before']}" for s in r["sizes"])
    text = (f"Goal: `kompass scrub FILE > /dev/null` ≤ 1.5× a process that reads the same file and validates it "
            f"as JSON once (`serde_json::from_slice::<IgnoredAny>`, the floor), in CPU time, at 5,000 and 20,000 "
            f"activities, keyed and keyless; peak RSS ≤ 2 × (input + output) at 20,000. Worst CPU ratio "
            f"{worst:.2f}×: {met(r['met_speed'])}; peak RSS {rss:.2f}× (input + output): {met(r['met_memory'])}.\n\n"
            + "\n".join(rows) +
            f"\n\nWhole processes (the release `kompass` binary; the floor is `core/benches/scrub_floor.rs`), on the "
            f"corpus of the wasm section (`kompass_core::scrub::corpus::generate(n, 42)`). Per size, each round runs "
            f"the floor, the keyed scrub (`KOMPASS_PSEUDONYM_KEY` set) and the keyless scrub (ids dropped), in an "
            f"order that cycles through all six permutations; {', '.join(str(s['rounds']) for s in r['sizes'])} rounds. Times are "
            f"medians with (fastest–slowest); CPU = user + system time of the process from wait4(2), which on this "
            f"shared machine leaves out waiting for a CPU; the ratio is of the medians, beside it the median of the "
            f"per-round ratios. Peak RSS is the largest ru_maxrss over the rounds. Each scrub's output was checked "
            f"byte-identical over two runs. Load average (1 min) before each size: {loads}.\n\n"
            f"Command: `{r['command']}`, driven by `{r['driver']}`. Date: {when(r)}.\n")
    return text, [("Scrub vs reading the JSON once (whole process)", "≤ 1.5× at 5,000 and 20,000",
                   f"{worst:.2f}× (worst, CPU, keyed/keyless)", r["met_speed"]),
                  ("Peak RSS of scrub at 20,000 activities", "≤ 2 × (input + output)", f"{rss:.2f}×", r["met_memory"])]


def serve_load(r):
    rows = ["| route | requests/s | p50 | p99 | per-round requests/s |",
            "| --- | ---: | ---: | ---: | --- |"]
    for name, key in ((r["plain_route"].removeprefix("get:"), "plain"), ("POST /api/presign", "presign")):
        per = ", ".join(f"{x[key]['rps']:.0f}" for x in r["raw"]["rounds"])
        label = f"GET {name}" if key == "plain" else name
        rows.append(f"| {label} | {r[key + '_rps']:.0f} | {t(r[key + '_p50_us'] * 1e3)} | {t(r[key + '_p99_us'] * 1e3)} | {per} |")
    up = ["| | MB/s (median of rounds) | per-round |", "| --- | ---: | --- |",
          f"| PUT /api/upload/{{grant}} (server: stream to a temp file while hashing, fsync, admit, rename) | {r['upload_mb_per_s']:.0f} | "
          + ", ".join(f"{u['upload']['mb_per_s']:.0f}" for u in r["raw"]["upload_rounds"]) + " |",
          f"| dd bs=1M conv=fsync (its own copy time), same bytes, same disk | {r['dd_mb_per_s']:.0f} | "
          + ", ".join(f"{u['dd_mb_per_s']:.0f}" for u in r["raw"]["upload_rounds"]) + " |"]
    text = (f"Goal: `POST /api/presign` (token, admission, grant) ≥ 0.3× the requests/s of the plainest route "
            f"(`{r['plain_route'].removeprefix('get:')}`), {r['clients']} concurrent clients on loopback, same run; "
            f"upload through the server (local storage) ≥ 0.5× `dd` of the same bytes to the same disk. "
            f"Presign {r['ratio']:.2f}× (per round: {', '.join(f'{x:.2f}' for x in r['ratios'])}): "
            f"{met(r['met_presign'])}; upload {r['upload_ratio']:.2f}× (per round: "
            f"{', '.join(f'{x:.2f}' for x in r['upload_ratios'])}): {met(r['met_upload'])}.\n\n"
            + "\n".join(rows) + "\n\n" + "\n".join(up) +
            f"\n\n{r['rounds']} rounds of {r['seconds_per_phase']:g} s a phase, the plain route then presign; the client "
            f"(`native/benches/serve_load.rs`) shares the 2 CPUs with the server. Uploads: one client, "
            f"{r['upload_count']} × {size(r['upload_bytes'])} per round (presign untimed, the PUT timed), "
            f"alternating with dd.\n\nCommand: `{r['command']}`, driven by `{r['driver']}`. Date: {when(r)}.\n")
    return text, [("presign vs plain route (32 clients)", "≥ 0.3×",
                   f"{r['ratio']:.2f}×; p99 {t(r['presign_p99_us'] * 1e3)} vs {t(r['plain_p99_us'] * 1e3)}", r["met_presign"]),
                  ("upload through serve vs dd", "≥ 0.5×", f"{r['upload_ratio']:.2f}× ({r['upload_mb_per_s']:.0f} vs {r['dd_mb_per_s']:.0f} MB/s)", r["met_upload"])]


def admission(r):
    mg = r["migrate"]
    rows = ["| cached inventory | saves/s |", "| --- | ---: |",
            f"| empty | {r['saves_per_s_empty']:.1f} |",
            f"| {r['inventory_objects']:,} objects | {r['saves_per_s_big']:.1f} |"]
    text = (f"Goal: saves/s against a 10,000-object inventory ≥ 0.8× saves/s against an empty one, measured in one "
            f"run; `kompass migrate` sends 1.0 request (PUT + HEAD) per file. Saves {r['saves_ratio']:.2f}×: "
            f"{met(r['met_saves'])}; migrate {r['migrate_requests_per_file']:.3f} requests per file: "
            f"{met(r['met_migrate'])}.\n\n" + "\n".join(rows) +
            f"\n\n{r['rounds']} rounds of {r['saves_per_round']} saves of 2 KB each (`Manager::save` to S3, auto-cleanup "
            f"on, budget off), alternating between a data directory whose cached inventory is empty and one holding "
            f"10,000 more objects of 200 other users. Then a migrate of {mg['files']:,} files: {mg['put']:,} PUT, "
            f"{mg['head']:,} HEAD, {mg['list']:,} LIST, {mg['get']:,} GET (S3 echoes the checksum it verified, so no "
            f"HEAD follows a PUT).\n\nCommand: `{r['command']}`, driven by `python3 bench/admission.py`. "
            f"Date: {when(r)}.\n")
    return text, [("saves/s at 10,000 objects vs empty", "≥ 0.8×",
                   f"{r['saves_ratio']:.2f}× ({r['saves_per_s_big']:.1f} vs {r['saves_per_s_empty']:.1f})", r["met_saves"]),
                  ("migrate requests per file", "1.0", f"{r['migrate_requests_per_file']:.3f}", r["met_migrate"])]

def import_(r):
    rows = ["| archive | activities | samples | expanded | document | largest entry | native MB/s | wasm MB/s | wasm / native (time) "
            "| native peak RSS | ÷ archive | wasm memory | ÷ archive | Node peak RSS | ÷ archive |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    notes = []
    for s in r["sizes"]:
        if "wasm_seconds" in s:
            w = (f"{s['wasm_mb_s']:.1f} | {s['wasm_seconds'] / s['native_seconds']:.2f}× ", f"{size(s['wasm_memory_bytes'])} "
                 f"| {s['wasm_memory_over_archive']:.2f}× | {size(s['node_peak_rss_bytes'])} "
                 f"| {s['node_peak_rss_bytes'] / s['archive_bytes']:.2f}×")
        elif "wasm_skipped" in s:
            w = ("not run | – ", "– | – | – | –")
        else:
            w = ("failed | – ", "– | – | – | –")
            notes.append(f"wasm on the {size(s['archive_bytes'])} archive failed: `{s['wasm_error'].strip().splitlines()[-1][:200]}`")
        rows.append(f"| {size(s['archive_bytes'])} | {s['activities']:,} | {s['samples']:,} | {size(s['expanded_bytes'])} "
                    f"| {size(s['document_bytes'])} | {size(s['largest_entry_bytes'])} | {s['native_mb_s']:.1f} | {w[0]}"
                    f"| {size(s['native_peak_rss_bytes'])} | {s['native_rss_over_archive']:.2f}× | {w[1]} |")
    big = max(r["sizes"], key=lambda s: s["archive_bytes"])
    small = min(r["sizes"], key=lambda s: s["archive_bytes"])
    grow = (big["native_peak_rss_bytes"] - small["native_peak_rss_bytes"]) / max(1, big["archive_bytes"] - small["archive_bytes"])
    bound = big["document_bytes"] + big["largest_entry_bytes"]
    ok = big["native_peak_rss_bytes"] - small["native_peak_rss_bytes"] <= 2 * bound
    wasm_big = max((s for s in r["sizes"] if "wasm_seconds" in s), key=lambda s: s["archive_bytes"], default=None)
    wtext = (f"; wasm linear memory {wasm_big['wasm_memory_over_archive']:.2f}× the archive at {size(wasm_big['archive_bytes'])}"
             if wasm_big else "")
    text = (f"Goal: import memory bounded by the document plus the largest activity, not by the archive: from the "
            f"smallest to the largest archive, native peak RSS grows by at most 2 × (document + largest entry) of "
            f"the largest. Largest archive {size(big['archive_bytes'])} ({big['activities']:,} activities, document "
            f"{size(big['document_bytes'])}): native peak RSS {size(big['native_peak_rss_bytes'])} = "
            f"{big['native_rss_over_archive']:.2f}× the archive, growing {grow:.2f} bytes per archive byte{wtext}: "
            f"{met(ok)}.\n\n" + "\n".join(rows) + ("\n\n" + "\n".join(f"- {n}" for n in notes) if notes else "") +
            f"\n\nArchives: `tests/strava_export/generate.py --activities N --samples {r['samples_per_activity']}` "
            f"(one-hour rides at 1 Hz; GPX, TCX and FIT, a third gzipped), and the issue's 500 MB / 2,000-activity "
            f"size (and 500 activities, ~125 MB) made by `bench/scale_export.py` from a generated export of 20 three-hour rides "
            f"(10,800 samples; its activity files copied, still compressed, under new names: generating 2,000 would "
            f"take hours here). MB/s are of the archive. Native: the release CLI reads the file entry by entry, so "
            f"its peak RSS is the process, the document and the activity being read. wasm: `www/pkg-import` "
            f"({size(r['wasm_module_bytes'])}) under Node; the archive stays in a JS buffer and is read through a view, "
            f"so wasm memory holds the document (in 4 MiB chunks, copied to JS once as one `Uint8Array`: never a "
            f"string, which V8 caps at ~537 M characters) and one activity; Node's RSS adds the archive, that "
            f"`Uint8Array`, the `Blob` the page uploads and Node itself ({size(r['sizes'][0]['node_idle_rss_bytes'])} idle). Times: fastest of "
            f"{r['rounds']} rounds (1 above 100 MB), native and wasm alternating; memory: the largest.\n\n"
            f"Commands: `{r['native_command']}` and `{r['wasm_command']}`, driven by `{r['driver']}`. Date: {when(r)}.\n")
    return text, [("Import peak memory vs archive", "grows ≤ 2 × (document + largest entry)",
                   f"native {big['native_rss_over_archive']:.2f}× archive ({size(big['archive_bytes'])}){wtext.replace('; wasm linear memory', ', wasm memory')}; "
                   f"native {big['native_mb_s']:.1f} MB/s" + (f", wasm {wasm_big['wasm_mb_s']:.1f} MB/s" if wasm_big else ""), ok)]

PARTS = [
    ("scrub_process", "Scrub vs its floor (whole process)", scrub_process),
    ("scrub", "Scrub speed", scrub),
    ("fifo", "FIFO cleanup plans", fifo),
    ("wasm", "Scrub in wasm (Node) vs native", wasm),
    ("migrate", "Migration vs rclone", migrate),
    ("saves", "Requests per save", saves),
    ("serve_load", "kompass serve under load", serve_load),
    ("admission", "Admission: saves/s against inventory size, migrate requests per file", admission),
    ("import", "Strava bulk-export import (native and wasm)", import_),
]


# The summary rows of each part, by the start of their first cell (to carry them over).
ROWS = {
    "scrub": ("Scrub vs serde_json",),
    "scrub_process": ("Scrub vs reading the JSON once", "Peak RSS of scrub"),
    "fifo": ("FIFO plan",),
    "wasm": ("wasm scrub",),
    "migrate": ("migrate vs rclone",),
    "saves": ("PUT-class requests",),
    "serve_load": ("presign vs plain", "upload through serve"),
    "admission": ("saves/s at 10,000", "migrate requests per file"),
    "import": ("Import peak memory",),
}


def previous(out):
    """The sections and summary rows of the BENCHMARKS.md being replaced, so that a part
    without a result file here (a partial run on another machine) keeps its last figures."""
    if not out.exists():
        return {}, []
    text = out.read_text()
    body = text.split("\n## Notes:", 1)[0]
    sections = {}
    for chunk in body.split("\n## ")[1:]:
        title, _, rest = chunk.partition("\n")
        sections[title.strip()] = rest.strip("\n") + "\n"
    rows = [l for l in body.splitlines() if l.startswith("| ") and l.count("|") == 5]
    return sections, rows


def main():
    d, out = Path(sys.argv[1]), Path(sys.argv[2])
    machine = load(d, "machine") or {}
    old_sections, old_rows = previous(out)
    sections, summary, carried = [], [], []
    for name, title, render in PARTS:
        r = load(d, name)
        if r is None:
            old = old_sections.get(title)
            if old and "Not measured yet" not in old:
                sections.append(f"## {title}\n\n{old}")
                carried += [row for row in old_rows
                            if any(row.startswith(f"| {p}") for p in ROWS.get(name, ()))]
            else:
                sections.append(f"## {title}\n\nNot measured yet: `bench/run.sh {name}`.\n")
            continue
        text, row = render(r)
        sections.append(f"## {title}\n\n{text}")
        summary.extend(row if isinstance(row, list) else [row])
    head = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`bench/run.sh`, which runs each benchmark and rewrites this file from "
        "the results; `bench/run.sh PART...` re-runs some). Do not edit by hand: the notes at the end are "
        "`bench/notes.md`. Goals are ratios measured in one run on one machine; absolute times are context.",
        "",
        f"Machine: {machine.get('nproc', '?')} CPUs ({machine.get('cpu', '?')}), {machine.get('memory', '?')} memory, "
        f"Linux {machine.get('kernel', '?')}; {machine.get('rustc', '?')}; Node {machine.get('node', '?')}. "
        f"The CPUs are shared with other engineers' builds, so figures are noisy: each section gives the load "
        f"average around its measurement. Last run started {machine.get('date', '?')}; `uptime` then: "
        f"`{machine.get('uptime_at_start', '?')}`.",
        "",
        "| goal | target | measured | |",
        "| --- | --- | --- | --- |",
    ]
    for what, target, measured, ok in summary:
        head.append(f"| {what} | {target} | {measured} | {met(ok)} |")
    head += carried
    notes = NOTES.read_text() if NOTES.exists() else ""
    out.write_text("\n".join(head) + "\n\n" + "\n".join(sections) + ("\n" + notes if notes else ""))


if __name__ == "__main__":
    main()
