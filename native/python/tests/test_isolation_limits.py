"""A user reaches only their own data, whatever names they send; limits are limits: a refused
save stores nothing and deletes nothing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conftest import Env
from kompass_storage import InvalidName, LimitExceeded, StorageManager

BAD_USERS = ["../{v}", "a/b", "{v}/..", "..", ".", "", "/{v}", "a\\b", "{v}\x00", "\u2215{v}", "\uff0e\uff0e\uff0f{v}", "x" * 300]
BAD_NAMES = ["../x.json", "a/b.json", "..", "", "/etc/passwd", "x\\y.json", "x\x00.json", "\u2215x.json", "y" * 300]
BAD_TYPES = ["routes/..", "../routes", "secrets", "", "ROUTES", "fitness/x"]


def data_files(env: Env) -> list[str]:
    return [f for f in env.files() if f != "work/.env"]


def test_hostile_user_ids_are_refused_and_write_nothing(manager: StorageManager, env: Env, user: str) -> None:
    victim = f"{user}-bob"
    assert manager.save_data({"mine": True}, victim, "routes", "r.json")
    before = data_files(env)
    for pattern in BAD_USERS:
        bad = pattern.format(v=victim)
        assert manager.save_data({"evil": True}, bad, "routes", "r.json") is False, repr(bad)
        assert manager.last_error, repr(bad)
        assert isinstance(manager.last_exception, InvalidName), (bad, manager.last_exception)
        assert manager.load_data(bad, "routes", "r.json") is None
        assert manager.list_user_data(bad, "routes") == []
        assert manager.delete_data(bad, "routes", "r.json") is False
        with pytest.raises(InvalidName):
            manager.strict.save_data({"evil": True}, bad, "routes", "r.json")
        with pytest.raises(InvalidName):
            manager.strict.load_data(bad, "routes", "r.json")
    # Nothing was written anywhere (inside or outside the data directory), nothing replaced.
    assert data_files(env) == before
    for outside in (Path("/") / victim, env.tmp.parent / victim, env.tmp / victim, env.work / victim):
        assert not outside.exists(), outside
    assert manager.load_data(victim, "routes", "r.json") == {"mine": True}
    assert [i["filename"] for i in manager.list_user_data(victim, "routes")] == ["r.json"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_hostile_file_names_are_refused(manager: StorageManager, env: Env, user: str, name: str) -> None:
    assert manager.save_data(b"evil", user, "routes", name) is False
    assert isinstance(manager.last_exception, InvalidName)
    assert manager.load_data(user, "routes", name) is None
    with pytest.raises(InvalidName):
        manager.strict.delete_data(user, "routes", name)
    assert data_files(env) == []


@pytest.mark.parametrize("data_type", BAD_TYPES)
def test_unknown_data_types_are_refused(manager: StorageManager, env: Env, user: str, data_type: str) -> None:
    assert manager.save_data(b"evil", user, data_type, "x.json") is False
    assert isinstance(manager.last_exception, InvalidName)
    assert manager.list_user_data(user, data_type) == []
    assert data_files(env) == []


def test_scopes_are_the_cores(manager: StorageManager, user: str) -> None:
    # Fitness data belongs to a user; models and training data to nobody.
    assert manager.save_data({"x": 1}, None, "fitness", "f.json") is False
    assert manager.save_data({"x": 1}, user, "models", "m.json") is False
    assert manager.list_user_data(None, "fitness") == []
    assert isinstance(manager.last_exception, InvalidName)


def test_oversize_save_stores_nothing_and_deletes_nothing(env: Env, user: str) -> None:
    # The user is near the cleanup threshold (70 % of a 1 MiB quota) with files FIFO could take:
    # an oversize upload is refused before any cleanup runs on its behalf.
    env.set(S3_MAX_FILE_SIZE_MB="1", S3_MAX_USER_STORAGE_MB="1", S3_MIN_FILES_TO_KEEP="1")
    m = StorageManager()
    for i in range(3):
        assert m.save_data(bytes([65 + i]) * 200_000, user, "routes", f"keep{i}.bin"), m.last_error
        time.sleep(1.1)  # distinct ages, so FIFO would have an oldest to take
    before = m.list_user_data(user, "routes")
    assert len(before) == 3
    files_before = data_files(env)
    big = b"z" * (1024 * 1024 + 1)
    assert m.save_data(big, user, "routes", "big.bin") is False
    assert isinstance(m.last_exception, LimitExceeded)
    assert "limit" in m.last_error
    # Replacing an existing file with an oversize one keeps the old one.
    assert m.save_data(big, user, "routes", "keep0.bin") is False
    with pytest.raises(LimitExceeded):
        m.strict.save_data(big, user, "routes", "big.bin")
    after = m.list_user_data(user, "routes")
    assert [(i["filename"], i["size_bytes"]) for i in after] == [(i["filename"], i["size_bytes"]) for i in before]
    for i in range(3):
        assert m.load_bytes(user, "routes", f"keep{i}.bin") == bytes([65 + i]) * 200_000
    assert data_files(env) == files_before
    # Exactly at the limit is allowed (for a user with room).
    assert m.save_data(b"z" * (1024 * 1024), f"{user}-edge", "routes", "edge.bin"), m.last_error


def test_user_quota_without_cleanup_refuses_and_keeps_everything(env: Env, user: str) -> None:
    env.set(S3_MAX_USER_STORAGE_MB="1", S3_AUTO_CLEANUP_ENABLED="false")
    m = StorageManager()
    assert m.save_data(b"a" * 600_000, user, "routes", "one.bin"), m.last_error
    assert m.save_data(b"b" * 600_000, user, "routes", "two.bin") is False
    assert isinstance(m.last_exception, LimitExceeded)
    assert [i["filename"] for i in m.list_user_data(user, "routes")] == ["one.bin"]
    assert m.load_bytes(user, "routes", "one.bin") == b"a" * 600_000
    # Another user is not affected by this user's quota.
    assert m.save_data(b"c" * 600_000, f"{user}-other", "routes", "one.bin"), m.last_error
