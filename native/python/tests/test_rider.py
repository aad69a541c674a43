"""RiderDataProcessor: rider data is scrubbed with the keyed policy before it is stored, under
the spec's file name, and read back newest first."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from conftest import PSEUDONYM_KEY, Env
from kompass_storage import (
    ConfigError,
    InvalidData,
    InvalidName,
    NotFound,
    RiderDataProcessor,
    StorageManager,
    StrictRiderDataProcessor,
)

#: Fields the spec (and DESIGN.md) says never reach storage, at any depth.
FORBIDDEN_KEYS = {
    "firstname", "lastname", "profile", "profile_medium", "city", "state", "country", "email", "premium",
    "start_latlng", "end_latlng", "polyline", "summary_polyline", "photos", "gear", "gear_id", "timezone",
    "utc_offset", "start_date_local", "device_name", "external_id", "upload_id", "segment_efforts", "username",
}


def keys_anywhere(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_anywhere(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_anywhere(v)}
    return set()


def pii_strings(export: dict) -> list[str]:
    """Identifying values in the fixture: names, contact, places, activity names, the id."""
    info = export["basic_info"]
    values = [info[k] for k in ("firstname", "lastname", "email", "city", "username", "profile")]
    values += [a["name"] for a in export["activities"] if a.get("name")]
    return [str(v) for v in values] + [str(info["id"])]


def stored_bytes(manager: StorageManager, env: Env, user: str, name: str) -> bytes:
    """The bytes as stored: read from disk for local storage, from S3 otherwise."""
    if env.backend == "local":
        return (env.data / "fitness" / user / name).read_bytes()
    return manager.strict.load_bytes(user, "fitness", name)


def test_saved_rider_data_has_no_pii(manager: StorageManager, env: Env, user: str, rider_export: dict) -> None:
    p = RiderDataProcessor(None, manager)
    assert p.save_rider_data(rider_export, user) is True, p.last_error
    [entry] = p.get_rider_data_history(user)
    name = entry["filename"]
    assert re.fullmatch(r"fitness_data_\d{8}_\d{6}\.json", name)
    raw = stored_bytes(manager, env, user, name)
    text = raw.decode("utf-8")
    for pii in pii_strings(rider_export):
        assert pii not in text, pii
    doc = json.loads(raw)
    assert not keys_anywhere(doc) & FORBIDDEN_KEYS, keys_anywhere(doc) & FORBIDDEN_KEYS
    # A keyed pseudonym, not a plain hash of the (sequential, enumerable) athlete id.
    athlete_id = str(rider_export["basic_info"]["id"])
    assert hashlib.sha256(athlete_id.encode()).hexdigest() not in text
    assert doc["anonymization"]["pii_removed"] is True
    # What matters for training is kept.
    assert len(doc["activities"]) == len(rider_export["activities"])
    assert p.load_rider_data(user) == doc


def test_strict_save_reports_what_was_removed(manager: StorageManager, env: Env, user: str, rider_export: dict) -> None:
    saved = manager_strict_processor(manager).save_rider_data(rider_export, user)
    assert saved["backend"] == env.backend
    assert saved["key"] == f"users/{user}/fitness/{saved['name']}"
    assert saved["removed_count"] > 10
    assert saved["user_hash"] and str(rider_export["basic_info"]["id"]) not in saved["user_hash"]
    assert saved["activity_count"] == len(rider_export["activities"])


def manager_strict_processor(manager: StorageManager) -> StrictRiderDataProcessor:
    p = RiderDataProcessor(manager=manager).strict
    assert isinstance(p, StrictRiderDataProcessor)
    return p


def test_history_is_newest_first_and_saves_never_replace(manager: StorageManager, user: str, rider_export: dict) -> None:
    p = RiderDataProcessor(None, manager)
    for n in range(3):
        export = dict(rider_export, activities=rider_export["activities"][: n + 1])
        assert p.save_rider_data(export, user), p.last_error
    history = p.get_rider_data_history(user)
    assert [h["activity_count"] for h in history] == [3, 2, 1]
    assert len({h["filename"] for h in history}) == 3
    for h in history:
        assert {"filename", "timestamp", "saved_at", "size_bytes", "backend", "has_power_data", "pii_removed"} <= h.keys()
    assert len(p.load_rider_data(user)["activities"]) == 3  # the newest


def test_no_rider_data(manager: StorageManager, user: str) -> None:
    p = RiderDataProcessor(None, manager)
    assert p.load_rider_data(user) is None
    assert p.get_rider_data_history(user) == []
    with pytest.raises(NotFound):
        p.strict.load_rider_data(user)


@pytest.mark.parametrize("bad", ["not json at all", b"\xff\xfe", 42, "{\"basic_info\": "])
def test_not_rider_data_is_refused(manager: StorageManager, env: Env, user: str, bad) -> None:
    p = RiderDataProcessor(None, manager)
    assert p.save_rider_data(bad, user) is False
    assert isinstance(p.last_exception, InvalidData), p.last_exception
    assert p.get_rider_data_history(user) == []
    assert not (env.data / "fitness").exists()


def test_rider_data_needs_the_pseudonym_key(env: Env, user: str, rider_export: dict) -> None:
    env.unset("KOMPASS_PSEUDONYM_KEY")
    p = RiderDataProcessor(None, StorageManager())
    assert p.save_rider_data(rider_export, user) is False
    assert "KOMPASS_PSEUDONYM_KEY" in p.last_error
    with pytest.raises(ConfigError):
        p.strict.save_rider_data(rider_export, user)
    assert p.get_rider_data_history(user) == []


def test_rider_data_of_a_hostile_user_id(manager: StorageManager, env: Env, user: str, rider_export: dict) -> None:
    p = RiderDataProcessor(None, manager)
    for bad in (f"../{user}", "a/b", ""):
        assert p.save_rider_data(rider_export, bad) is False
        assert isinstance(p.last_exception, InvalidName)
        assert p.load_rider_data(bad) is None
        assert p.get_rider_data_history(bad) == []
    assert not (env.data / "fitness").exists()


def test_plain_save_of_fitness_data_is_refused(manager: StorageManager, env: Env, user: str, rider_export: dict) -> None:
    """Raw rider data cannot reach storage around the scrub: only save_rider_data stores it."""
    assert manager.save_data(rider_export, user, "fitness", "fitness_data_20240101_000000.json") is False
    assert isinstance(manager.last_exception, InvalidData)
    assert "save_rider_data" in manager.last_error
    with pytest.raises(InvalidData):
        manager.strict.save_data(json.dumps(rider_export), user, "fitness", "raw.json")
    assert manager.list_user_data(user, "fitness") == []
    assert not (env.data / "fitness").exists()
    # Reading what save_rider_data stored stays possible through the plain API.
    assert RiderDataProcessor(None, manager).save_rider_data(rider_export, user), manager.last_error
    [item] = manager.list_user_data(user, "fitness")
    assert manager.load_data(user, "fitness", item["filename"])["anonymization"]["pii_removed"] is True


def test_plain_save_of_fitness_data_asks_the_core_policy(manager: StorageManager, env: Env, user: str, rider_export: dict) -> None:
    """save_data of fitness data passes the core's rule (a fixed point of the keyed scrub), as
    every other path: a copy of a document this system scrubbed is accepted, raw or edited
    rider data is refused, and nothing is stored without the key."""
    p = RiderDataProcessor(None, manager)
    assert p.save_rider_data(rider_export, user), p.last_error
    [item] = manager.list_user_data(user, "fitness")
    scrubbed = manager.load_bytes(user, "fitness", item["filename"])
    assert manager.save_data(scrubbed, user, "fitness", "copy.json") is True, manager.last_error
    assert manager.load_bytes(user, "fitness", "copy.json") == scrubbed
    # A PII field put back into the scrubbed document: refused, with the way to store it.
    doc = json.loads(scrubbed)
    doc["athlete" if "athlete" in doc else "basic_info"]["email"] = "rider@example.com"
    assert manager.save_data(doc, user, "fitness", "edited.json") is False
    assert isinstance(manager.last_exception, InvalidData)
    assert "save_rider_data" in manager.last_error and "rider@example.com" not in manager.last_error
    # Scrubbed under another key (id): its pseudonyms are not this key's, so it is refused too.
    env.set(KOMPASS_PSEUDONYM_KEY=PSEUDONYM_KEY[::-1], KOMPASS_PSEUDONYM_KEY_ID="rotated")
    other = StorageManager()
    assert other.save_data(scrubbed, user, "fitness", "other-key.json") is False
    assert isinstance(other.last_exception, InvalidData)
    env.unset("KOMPASS_PSEUDONYM_KEY")
    keyless = StorageManager()
    with pytest.raises(ConfigError):
        keyless.strict.save_data(scrubbed, user, "fitness", "no-key.json")
    names = sorted(i["filename"] for i in manager.list_user_data(user, "fitness"))
    assert names == sorted([item["filename"], "copy.json"])
