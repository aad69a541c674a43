"""RiderDataProcessor.import_strava_export: Strava's bulk export ZIP, read by the same native
code as `kompass rider import`, stored scrubbed; hostile archives and names store nothing.

The fixture is native/tests/fixtures/strava_bulk_export.zip; its .expected.json lists every
identifying value planted in it (names, titles, coordinates, serials, ids)."""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, Env
from kompass_storage import (
    ConfigError,
    InvalidData,
    InvalidName,
    RiderDataProcessor,
    StorageManager,
)

EXPORT = ROOT / "native" / "tests" / "fixtures" / "strava_bulk_export.zip"
EXPECTED = json.loads((ROOT / "native" / "tests" / "fixtures" / "strava_bulk_export.expected.json").read_text())
SENTINELS: list[str] = EXPECTED["sentinels"]


def planted_in(data: bytes | str) -> list[str]:
    text = data if isinstance(data, str) else data.decode("utf-8", "replace")
    return [s for s in SENTINELS if s in text]


def every_file(env: Env) -> dict[str, bytes]:
    """Every file under the test's temporary directory, state files included."""
    return {p.relative_to(env.tmp).as_posix(): p.read_bytes() for p in env.tmp.rglob("*") if p.is_file()}


def fitness_names(manager: StorageManager, user: str) -> list[str]:
    return [i["filename"] for i in manager.strict.list_user_data(user, "fitness")]


def rebuilt(extra: list[tuple[str, bytes]] = [], keep=lambda name: True) -> bytes:
    """The fixture with entries dropped and extra (raw-named) entries added."""
    out = io.BytesIO()
    with zipfile.ZipFile(EXPORT) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if keep(info.filename):
                dst.writestr(info.filename, src.read(info))
        for name, body in extra:
            info = zipfile.ZipInfo(name)
            dst.writestr(info, body)
    return out.getvalue()


def test_the_fixture_holds_the_planted_values() -> None:
    # The scans below mean something only if the archive carries the values as text.
    with zipfile.ZipFile(EXPORT) as z:
        csv = z.read("activities.csv").decode("utf-8")
    assert len(planted_in(csv)) > 5


def test_import_stores_one_document_with_no_planted_value(manager: StorageManager, env: Env, user: str) -> None:
    p = RiderDataProcessor(None, manager)
    assert p.import_strava_export(EXPORT, user) is True, p.last_error
    assert p.last_error is None
    [name] = fitness_names(manager, user)
    assert name.startswith("fitness_data_") and name.endswith(".json")
    stored = manager.strict.load_bytes(user, "fitness", name)
    if env.backend == "local":
        assert (env.data / "fitness" / user / name).read_bytes() == stored
    assert planted_in(stored) == []
    # Nothing else written anywhere (state files, a stray copy) holds a planted value either.
    leaks = {path: planted_in(body) for path, body in every_file(env).items() if planted_in(body)}
    assert leaks == {}
    doc = json.loads(stored)
    assert len(doc["activities"]) == len(EXPECTED["activities"])
    assert doc["anonymization"]["pii_removed"] is True
    assert doc["athlete"]["sex"] == "F"
    [entry] = p.get_rider_data_history(user)
    assert entry["filename"] == name and entry["activity_count"] == len(EXPECTED["activities"])
    assert p.load_rider_data(user) == doc


def test_strict_import_returns_the_save_and_the_report(manager: StorageManager, env: Env, user: str) -> None:
    out = RiderDataProcessor(None, manager).strict.import_strava_export(str(EXPORT), user)
    assert set(out) == {"saved", "import"}
    saved, report = out["saved"], out["import"]
    assert saved["backend"] == env.backend
    assert saved["key"] == f"users/{user}/fitness/{saved['name']}"
    assert saved["activity_count"] == len(EXPECTED["activities"])
    assert report["activities"] == len(EXPECTED["activities"])
    assert report["activities_with_streams"] > 0 and report["samples"] > 0
    texts = [r["text"] for r in report["removed"]]
    assert any("GPS point" in t for t in texts), texts
    # Counts and kinds only: no removed value, no file name from the archive.
    assert planted_in(json.dumps(out)) == []
    assert ".gpx" not in json.dumps(report) and ".jpg" not in json.dumps(report)


def test_dry_run_returns_the_document_and_stores_nothing(manager: StorageManager, env: Env, user: str) -> None:
    p = RiderDataProcessor(None, manager)
    for who in (user, None):
        out = p.import_strava_export(EXPORT, who, dry_run=True)
        assert out is not None, p.last_error
        assert set(out) == {"document", "import"}
        assert len(out["document"]["activities"]) == len(EXPECTED["activities"])
        assert planted_in(json.dumps(out)) == []
    strict = p.strict.import_strava_export(EXPORT, None, dry_run=True)
    assert strict["import"] == out["import"]
    assert p.get_rider_data_history(user) == []
    assert manager.list_user_data(user, "fitness") == []
    assert not (env.data / "fitness").exists()


def truncated() -> bytes:
    return EXPORT.read_bytes()[: EXPORT.stat().st_size // 2]


def only_escaping_names() -> bytes:
    """A Strava-shaped archive whose every entry climbs out with ../"""
    with zipfile.ZipFile(EXPORT) as z:
        csv = z.read("activities.csv")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        dst.writestr(zipfile.ZipInfo("../activities.csv"), csv)
        dst.writestr(zipfile.ZipInfo("../../escape.txt"), b"escaped")
    return out.getvalue()


@pytest.mark.parametrize(
    "make",
    [truncated, lambda: b"", lambda: b"PK\x03\x04garbage", lambda: b'{"activities": []}', only_escaping_names],
    ids=["truncated", "empty", "garbage", "json", "dotdot-only"],
)
def test_a_bad_archive_is_refused_and_stores_nothing(manager: StorageManager, env: Env, user: str, make) -> None:
    archive = env.tmp / "export.zip"
    archive.write_bytes(make())
    before = set(every_file(env))
    p = RiderDataProcessor(None, manager)
    assert p.import_strava_export(archive, user) is False
    assert isinstance(p.last_exception, InvalidData), p.last_exception
    assert "nothing was stored" in p.last_error or "ZIP" in p.last_error or "Strava" in p.last_error
    with pytest.raises(InvalidData):
        p.strict.import_strava_export(archive, user)
    assert p.import_strava_export(archive, user, dry_run=True) is None
    assert isinstance(p.last_exception, InvalidData)
    assert p.get_rider_data_history(user) == []
    assert not (env.data / "fitness").exists()
    new = {f for f in set(every_file(env)) - before if "/.kompass/" not in f and not f.startswith(".kompass")}
    assert new == set(), new
    assert not (env.tmp.parent / "escape.txt").exists() and not (env.tmp / "escape.txt").exists()


def test_a_missing_file_is_refused(manager: StorageManager, env: Env, user: str) -> None:
    p = RiderDataProcessor(None, manager)
    assert p.import_strava_export(env.tmp / "no-such-export.zip", user) is False
    assert isinstance(p.last_exception, InvalidData)
    assert p.get_rider_data_history(user) == []


def test_escaping_entries_in_a_real_export_are_skipped(manager: StorageManager, env: Env, user: str) -> None:
    archive = env.tmp / "export.zip"
    archive.write_bytes(
        rebuilt([("../../escape.csv", b"escaped"), ("activities/../../../etc/passwd", b"root:x:0:0")])
    )
    out = RiderDataProcessor(None, manager).strict.import_strava_export(archive, user)
    unsafe = sum(s["count"] for s in out["import"]["skipped"] if "unsafe name" in s["reason"])
    assert unsafe == 2, out["import"]["skipped"]
    stored = manager.strict.load_bytes(user, "fitness", out["saved"]["name"])
    assert b"root:x" not in stored and b"escaped" not in stored
    assert planted_in(stored) == []
    assert [p for p in env.tmp.parent.rglob("escape.csv")] == []


def test_a_hostile_user_id_is_refused(manager: StorageManager, env: Env, user: str) -> None:
    p = RiderDataProcessor(None, manager)
    for bad in (f"../{user}", "a/b", "", "..", "fitness/../x"):
        assert p.import_strava_export(EXPORT, bad) is False
        assert isinstance(p.last_exception, InvalidName), (bad, p.last_exception)
        with pytest.raises(InvalidName):
            p.strict.import_strava_export(EXPORT, bad)
        with pytest.raises(InvalidName):
            p.strict.import_strava_export(EXPORT, bad, dry_run=True)
    # A store needs a user: None is refused, not stored as anyone's.
    assert p.import_strava_export(EXPORT, None) is False
    assert isinstance(p.last_exception, InvalidName)
    assert not (env.data / "fitness").exists()
    assert manager.list_user_data(user, "fitness") == []


def test_import_needs_the_pseudonym_key(env: Env, user: str) -> None:
    env.unset("KOMPASS_PSEUDONYM_KEY")
    p = RiderDataProcessor(None, StorageManager())
    assert p.import_strava_export(EXPORT, user) is False
    assert "KOMPASS_PSEUDONYM_KEY" in p.last_error
    with pytest.raises(ConfigError):
        p.strict.import_strava_export(EXPORT, user)
    assert not (env.data / "fitness").exists()
    # A dry run stores nothing, so it needs no key.
    assert p.import_strava_export(EXPORT, user, dry_run=True) is not None, p.last_error


def test_the_gil_is_released_during_the_import(manager: StorageManager) -> None:
    """A dry run is the import alone (CPU, no IO): another Python thread runs in the middle of
    it. Were the GIL held, the ticker could run only at the call's edges (see
    test_threads.test_gil_is_released_during_io); a busy machine may make one attempt miss."""
    p = RiderDataProcessor(None, manager)
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
        for _ in range(8):
            t0 = time.perf_counter()
            assert p.strict.import_strava_export(EXPORT, None, dry_run=True)["import"]["activities"] > 0
            t1 = time.perf_counter()
            d = t1 - t0
            inside = [t for t in ticks if t0 + d / 4 < t < t1 - d / 4]
            tried.append((round(d, 3), len(inside)))
            if d >= 0.02 and inside:
                break
    finally:
        stop.set()
        th.join()
    assert any(d >= 0.02 and n > 0 for d, n in tried), f"(seconds, ticks in the middle half) per import: {tried}"
