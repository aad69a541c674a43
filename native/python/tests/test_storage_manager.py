"""StorageManager: round trips of every data shape, listing, deletion, info, usage, the strict
variant's exceptions, last_error and logging, and configuration at construction."""

from __future__ import annotations

import json
import logging
import time

import pytest

import kompass_storage
from conftest import Env
from kompass_storage import (
    ConfigError,
    InvalidData,
    NotFound,
    StorageError,
    StorageManager,
    StrictStorageManager,
    get_storage_manager,
)

ROUTE = {"name": "Col de la Croix-Fry", "km": 31.4, "climb_m": 987, "ok": True, "none": None, "nested": {"a": [1, 2.5, "é"]}}


@pytest.mark.parametrize(
    ("data", "filename", "expected"),
    [
        (ROUTE, "route.json", ROUTE),
        ([ROUTE, [1, 2], "x", None], "routes.json", [ROUTE, [1, 2], "x", None]),
        ({}, "empty.json", {}),
        ('{"as": "text"}', "text.json", {"as": "text"}),
        ("plain text, ünïcode ✓\nline 2", "notes.txt", "plain text, ünïcode ✓\nline 2"),
        ("lat,lon\n45.9,6.1\n", "track.csv", "lat,lon\n45.9,6.1\n"),
        (bytes(range(256)), "blob.bin", bytes(range(256))),
        (b"ascii bytes stay bytes", "model.pkl", b"ascii bytes stay bytes"),
        (bytearray(b"\x00\xff\x10"), "ba.bin", b"\x00\xff\x10"),
        (memoryview(b"view"), "mv.bin", b"view"),
        ("text under a binary name", "raw.dat", "text under a binary name".encode()),
        (b"", "empty.bin", b""),
    ],
)
def test_round_trip(manager: StorageManager, env: Env, user: str, data, filename: str, expected) -> None:
    assert manager.save_data(data, user, "routes", filename) is True, manager.last_error
    assert manager.last_error is None
    got = manager.load_data(user, "routes", filename)
    assert got == expected
    assert type(got) is type(expected)
    [item] = manager.list_user_data(user, "routes")
    assert item["backend"] == env.backend
    assert item["size_bytes"] == len(manager.load_bytes(user, "routes", filename))


@pytest.mark.parametrize(("user_id", "data_type"), [(None, "models"), (None, "training_data"), (None, "routes")])
def test_global_data_round_trip(manager: StorageManager, user: str, user_id, data_type: str) -> None:
    name = f"{user}.json"  # global names are shared by every run: keep them unique
    assert manager.save_data({"weights": [0.1, 0.2]}, user_id, data_type, name) is True, manager.last_error
    assert manager.load_data(user_id, data_type, name) == {"weights": [0.1, 0.2]}
    listed = [i for i in manager.list_user_data(user_id, data_type) if i["filename"] == name]
    assert [i["key"] for i in listed] == [f"{data_type}/{name}"]
    assert manager.delete_data(user_id, data_type, name) is True


def test_overwrite_list_newest_first_and_delete(manager: StorageManager, user: str) -> None:
    assert manager.save_data({"v": 1}, user, "routes", "a.json")
    time.sleep(1.1)  # S3 keeps modification times to the second
    assert manager.save_data({"v": 2}, user, "routes", "b.json")
    time.sleep(1.1)
    assert manager.save_data({"v": 3}, user, "routes", "a.json")  # replaces
    assert manager.load_data(user, "routes", "a.json") == {"v": 3}
    listed = manager.list_user_data(user, "routes")
    assert [i["filename"] for i in listed] == ["a.json", "b.json"]
    for i in listed:
        assert i["last_modified"].endswith("Z") and "T" in i["last_modified"]
        assert i["size_mb"] == round(i["size_bytes"] / 1024 / 1024, 2)
    assert manager.delete_data(user, "routes", "a.json") is True
    assert manager.load_data(user, "routes", "a.json") is None
    assert "not found" in manager.last_error
    assert isinstance(manager.last_exception, NotFound)
    assert manager.delete_data(user, "routes", "a.json") is False
    assert [i["filename"] for i in manager.list_user_data(user, "routes")] == ["b.json"]


def test_absent_and_empty(manager: StorageManager, user: str) -> None:
    assert manager.load_data(user, "routes", "nothing.json") is None
    assert manager.list_user_data(user, "routes") == []
    assert manager.last_error is None


def test_unserialisable_data_is_refused_and_nothing_stored(manager: StorageManager, user: str, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="kompass_storage"):
        assert manager.save_data({"when": object()}, user, "routes", "x.json") is False
        assert manager.save_data({"nan": float("nan")}, user, "routes", "y.json") is False
    assert "cannot be stored as JSON" in manager.last_error
    assert isinstance(manager.last_exception, InvalidData)
    assert any("cannot be stored as JSON" in r.getMessage() for r in caplog.records)
    assert manager.list_user_data(user, "routes") == []
    with pytest.raises(InvalidData):
        manager.strict.save_data({"when": object()}, user, "routes", "x.json")


def test_invalid_json_file_loads_as_none_or_raises(manager: StorageManager, user: str) -> None:
    assert manager.save_data(b"{not json", user, "routes", "broken.json")
    assert manager.load_data(user, "routes", "broken.json") is None
    assert "not valid JSON" in manager.last_error
    assert manager.load_bytes(user, "routes", "broken.json") == b"{not json"
    with pytest.raises(InvalidData):
        manager.strict.load_data(user, "routes", "broken.json")


def test_strict_variant_returns_details_and_raises(manager: StorageManager, env: Env, user: str) -> None:
    strict = manager.strict
    assert isinstance(strict, StrictStorageManager)
    saved = strict.save_data(ROUTE, user, "routes", "s.json")
    assert saved["backend"] == env.backend
    assert saved["key"] == f"users/{user}/routes/s.json"
    assert saved["bytes"] == len(json.dumps(ROUTE, ensure_ascii=False).encode())
    with pytest.raises(NotFound) as e:
        strict.load_data(user, "routes", "missing.json")
    assert isinstance(e.value, StorageError)
    assert strict.delete_data(user, "routes", "s.json") == [env.backend]
    with pytest.raises(NotFound):
        strict.delete_data(user, "routes", "s.json")
    # The exceptions are the module's, all under StorageError.
    for name in ("LimitExceeded", "NotFound", "InvalidName", "InvalidData", "ConfigError", "StorageUnavailable"):
        cls = getattr(kompass_storage, name)
        assert issubclass(cls, StorageError) and cls is not StorageError
    assert issubclass(StorageError, Exception)


def test_storage_info(manager: StorageManager, env: Env, user: str) -> None:
    assert manager.save_data(b"12345", user, "routes", "five.bin")
    info = manager.get_storage_info()
    assert info["preferred_backend"] == env.backend
    assert info["local_available"] is True
    assert info["data_directory"] == str(env.data)
    if env.backend == "s3":
        assert info["backends"] == ["s3", "local"]
        assert info["s3_available"] is True and info["s3_error"] is None
        assert info["bucket"] == env.vars["AWS_S3_BUCKET"]
        assert info["s3_files"] >= 1
    else:
        assert info["backends"] == ["local"]
        assert info["s3_available"] is False
        assert (info["local_files"], info["local_bytes"]) == (1, 5)
    # Secrets are never handed out.
    text = json.dumps(info)
    assert env.vars["KOMPASS_PSEUDONYM_KEY"] not in text
    if env.backend == "s3":
        assert env.vars["AWS_SECRET_ACCESS_KEY"] not in text


def test_user_storage_usage(manager: StorageManager, env: Env, user: str) -> None:
    assert manager.save_data(b"x" * 1000, user, "routes", "a.bin")
    assert manager.save_data(b"y" * 500, user, "routes", "b.bin")
    assert manager.save_data({"k": 1}, user, "routes", "c.json")
    usage = manager.get_user_storage_usage(user)
    assert usage["user_id"] == user
    assert usage["backend"] == env.backend
    assert usage["file_count"] == 3
    assert usage["total_bytes"] == 1000 + 500 + len(b'{"k": 1}')
    assert usage["by_data_type"]["routes"]["files"] == 3
    assert usage["quota_bytes"] == 100 * 1024 * 1024
    assert usage["quota_mb"] == 100
    assert usage["status"]["level"] == "normal"
    assert manager.get_user_storage_usage("../bob") == {"error": manager.last_error}
    assert "user id" in manager.last_error.lower()


def test_configuration_from_env_and_dotenv(env: Env, user: str) -> None:
    (env.work / ".env").write_text("DATA_DIRECTORY=from-dotenv\nS3_MAX_FILE_SIZE_MB=7\n", encoding="utf-8")
    env.unset("DATA_DIRECTORY")
    info = StorageManager().get_storage_info()
    assert info["data_directory"] == "from-dotenv"
    assert info["config"]["max_file_size_bytes"] == 7 * 1024 * 1024
    # The environment wins over .env, read again by each new manager.
    env.set(S3_MAX_FILE_SIZE_MB="3")
    info = StorageManager().get_storage_info()
    assert info["config"]["max_file_size_bytes"] == 3 * 1024 * 1024
    # data_dir overrides both, like the CLI's --data-dir; a path-like object is fine.
    m = StorageManager(data_dir=env.tmp / "elsewhere")
    assert m.get_storage_info()["data_directory"] == str(env.tmp / "elsewhere")
    assert m.save_data(b"x", user, "routes", "x.bin"), m.last_error
    if env.backend == "local":
        assert (env.tmp / "elsewhere" / "routes" / user / "x.bin").read_bytes() == b"x"


@pytest.mark.parametrize(
    ("values", "mentions"),
    [
        ({"S3_MAX_FILE_SIZE_MB": "lots"}, "S3_MAX_FILE_SIZE_MB"),
        ({"S3_STORAGE_ENABLED": "true", "AWS_S3_BUCKET": "", "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}, "AWS_S3_BUCKET"),
        ({"S3_CLEANUP_THRESHOLD_PERCENT": "170"}, "S3_CLEANUP_THRESHOLD_PERCENT"),
    ],
)
def test_invalid_configuration_raises_config_error(env: Env, values: dict, mentions: str) -> None:
    env.local_only()
    env.set(**values)
    with pytest.raises(ConfigError) as e:
        StorageManager()
    assert mentions in str(e.value)
    with pytest.raises(ConfigError):
        StrictStorageManager()


def test_get_storage_manager_is_process_wide(env: Env) -> None:
    import subprocess
    import sys

    code = """
import threading
from kompass_storage import get_storage_manager, StorageManager
seen = []
ts = [threading.Thread(target=lambda: seen.append(get_storage_manager())) for _ in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
assert len({id(m) for m in seen}) == 1 and seen[0] is get_storage_manager()
assert isinstance(seen[0], StorageManager)
print("ok")
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr


def test_native_log_records_reach_python_logging(s3env: Env, user: str, caplog) -> None:
    """A save while S3 is down lands locally, is queued for sync, and says so through logging."""
    import socket

    env = s3env

    with socket.socket() as s:  # a loopback port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env.set(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}")
    m = StorageManager()
    with caplog.at_level(logging.INFO, logger="kompass_storage"):
        saved = m.strict.save_data({"kept": True}, user, "routes", "outage.json")
    assert saved["backend"] == "local" and saved["pending_sync"]
    assert (env.data / "routes" / user / "outage.json").is_file()
    native = [r for r in caplog.records if r.name == "kompass_storage.native"]
    assert any("queued it for sync" in r.getMessage() for r in native), [r.getMessage() for r in caplog.records]
