"""One manager, many threads (Streamlit runs each session in a thread), and the GIL released
while the native side works."""

from __future__ import annotations

import threading
import time

from conftest import Env
from kompass_storage import RiderDataProcessor, StorageManager

THREADS = 8
SAVES = 25


def test_eight_threads_times_25_saves_all_present(manager: StorageManager, user: str) -> None:
    failures: list[str] = []
    start = threading.Barrier(THREADS)

    def work(t: int) -> None:
        start.wait()
        for i in range(SAVES):
            if not manager.save_data({"thread": t, "save": i}, user, "routes", f"t{t}-{i}.json"):
                failures.append(f"t{t}-{i}: {manager.last_error}")
            elif manager.last_error is not None:
                failures.append(f"t{t}-{i}: last_error {manager.last_error} after a success")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert failures == []
    listed = manager.list_user_data(user, "routes")
    assert sorted(i["filename"] for i in listed) == sorted(f"t{t}-{i}.json" for t in range(THREADS) for i in range(SAVES))
    for t in range(THREADS):
        for i in (0, SAVES - 1):
            assert manager.load_data(user, "routes", f"t{t}-{i}.json") == {"thread": t, "save": i}


def test_last_error_is_per_thread(manager: StorageManager, user: str) -> None:
    seen: dict[str, str | None] = {}
    refused = threading.Event()

    def bad() -> None:
        manager.save_data({}, "../x", "routes", "x.json")
        seen["bad"] = manager.last_error
        refused.set()

    def good() -> None:
        refused.wait()
        manager.save_data({}, user, "routes", "ok.json")
        seen["good"] = manager.last_error

    ts = [threading.Thread(target=bad), threading.Thread(target=good)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert seen["bad"] and "user id" in seen["bad"].lower()
    assert seen["good"] is None


def test_concurrent_rider_saves_never_overwrite(manager: StorageManager, user: str, rider_export: dict) -> None:
    p = RiderDataProcessor(None, manager)
    results: list[bool] = []
    ts = [threading.Thread(target=lambda: results.append(p.save_rider_data(rider_export, user))) for _ in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert results == [True] * 6
    assert len({h["filename"] for h in p.get_rider_data_history(user)}) == 6


def test_gil_is_released_during_io(manager: StorageManager, env: Env, user: str) -> None:
    """While one thread is inside a native save, another Python thread runs. Were the GIL held,
    the ticker could not run at all in the middle of the call: the caller gives the GIL up only
    between bytecodes, after the 5 ms switch interval, so only the call's edges are open to it.
    A tick may miss the middle on a busy machine, so a few attempts are allowed; with the GIL
    held no attempt could ever succeed."""
    big = b"g" * (40 * 1024 * 1024)
    ticks: list[float] = []
    stop = threading.Event()

    def ticker() -> None:
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    th = threading.Thread(target=ticker)
    th.start()
    tried = []
    try:
        for attempt in range(5):
            t0 = time.perf_counter()
            saved = manager.save_data(big, user, "routes", f"big{attempt}.bin")
            t1 = time.perf_counter()
            assert saved, manager.last_error
            assert manager.delete_data(user, "routes", f"big{attempt}.bin")  # room for the next
            d = t1 - t0
            inside = [t for t in ticks if t0 + d / 4 < t < t1 - d / 4]
            tried.append((round(d, 3), len(inside)))
            if d >= 0.04 and inside:
                break
    finally:
        stop.set()
        th.join()
    assert any(d >= 0.04 and n > 0 for d, n in tried), f"(seconds, ticks in the middle half) per save: {tried}"
