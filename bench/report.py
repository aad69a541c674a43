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
            f"Node {r['node']}, the page's module `www/pkg` ({size(r['wasm_module_bytes'])} of wasm). "
            f"{r['rounds']} rounds, native and wasm alternating; each figure is the median over the rounds of "
            f"the median of 21 samples. CPU = the process's user + system time (on this shared machine it "
            f"leaves out waiting for a CPU; wall-clock figures are beside it).\n\n"
            f"Commands: `{r['native_command']}` and `{r['wasm_command']}` (both run by `python3 bench/wasm.py`). "
            f"Date: {when(r)}.\n")
    big = [s["ratio"] for s in r["sizes"] if s["activities"] >= 100]
    measured = f"{worst:.2f}× (worst: {where}); {min(big):.2f}–{max(big):.2f}× at 100 and 5,000 activities" if big \
        else f"{worst:.2f}× ({where})"
    return text, ("wasm scrub vs native", "≤ 2.5×", measured + "; CPU time", r["met"])


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
            f"| kompass's ledger (`.kompass/requests.json`) | {led['put_class']:,} | {led['get_class']:,} | {led['free']:,} | {r['put_class_per_save_ledger']:.3f} |",
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


PARTS = [
    ("scrub", "Scrub speed", scrub),
    ("fifo", "FIFO cleanup plans", fifo),
    ("wasm", "Scrub in wasm (Node) vs native", wasm),
    ("migrate", "Migration vs rclone", migrate),
    ("saves", "Requests per save", saves),
]


def main():
    d, out = Path(sys.argv[1]), Path(sys.argv[2])
    machine = load(d, "machine") or {}
    sections, summary = [], []
    for name, title, render in PARTS:
        r = load(d, name)
        if r is None:
            sections.append(f"## {title}\n\nNot measured yet: `bench/run.sh {name}`.\n")
            continue
        text, row = render(r)
        sections.append(f"## {title}\n\n{text}")
        summary.append(row)
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
    notes = NOTES.read_text() if NOTES.exists() else ""
    out.write_text("\n".join(head) + "\n\n" + "\n".join(sections) + ("\n" + notes if notes else ""))


if __name__ == "__main__":
    main()
