"""migrate_local_to_s3: one user's local data, then all of it, each file verified in S3 before
its local copy goes; without S3 nothing moves and the report says why."""

from __future__ import annotations

import pytest

from conftest import Env, s3_config
from kompass_storage import ConfigError, StorageManager


def local_data(env: Env) -> list[str]:
    return [f for f in env.files() if f.startswith("work/data/")]


def test_migrate_by_user_then_all(env: Env, user: str) -> None:
    alice, bob = f"{user}-alice", f"{user}-bob"
    model = f"{user}-model.bin"
    env.local_only()
    local = StorageManager()
    assert local.save_data({"r": 1}, alice, "routes", "a1.json")
    assert local.save_data({"r": 2}, alice, "routes", "a2.json")
    assert local.save_data(b"bob's", bob, "routes", "b1.bin")
    assert local.save_data(b"\x00weights", None, "models", model)
    assert len(local_data(env)) == 4

    if env.backend == "local":
        # No S3 configured: the spec's call returns a report saying so; nothing moves.
        report = local.migrate_local_to_s3(user_id=alice)
        assert (report["migrated"], report["failed"]) == (0, 0)
        assert "S3_STORAGE_ENABLED" in report["errors"][0]
        assert "S3_STORAGE_ENABLED" in local.last_error
        with pytest.raises(ConfigError):
            local.strict.migrate_local_to_s3()
        assert len(local_data(env)) == 4
        return

    env.set(**s3_config())
    s3 = StorageManager()
    report = s3.migrate_local_to_s3(user_id=alice)
    assert report["user"] == alice
    assert (report["migrated"], report["failed"], report["conflicts"]) == (2, 0, 0), report
    assert report["bytes"] == 2 * len(b'{"r": 1}')
    assert report["local_removed"] == 2
    assert sorted(local_data(env)) == sorted([f"work/data/routes/{bob}/b1.bin", f"work/data/models/{model}"])
    assert {i["backend"] for i in s3.list_user_data(alice, "routes")} == {"s3"}
    assert s3.load_data(alice, "routes", "a2.json") == {"r": 2}

    report = s3.migrate_local_to_s3()
    assert report["user"] is None
    assert (report["migrated"], report["failed"]) == (2, 0), report
    assert local_data(env) == []
    assert s3.load_bytes(bob, "routes", "b1.bin") == b"bob's"
    assert s3.load_bytes(None, "models", model) == b"\x00weights"
    # Idempotent: nothing left to move.
    again = s3.strict.migrate_local_to_s3()
    assert (again["migrated"], again["failed"]) == (0, 0)
    assert s3.delete_data(None, "models", model)


def test_dry_run_changes_nothing(s3env: Env, user: str) -> None:
    env = s3env
    s3_vars = dict(env.vars)
    env.local_only()
    assert StorageManager().save_data({"x": 1}, user, "routes", "x.json")
    env.set(**s3_vars)
    m = StorageManager()
    plan = m.strict.migrate_local_to_s3(user, dry_run=True)
    assert plan["dry_run"] is True and plan["migrated"] == 1
    assert [p["key"] for p in plan["planned"]] == [f"users/{user}/routes/x.json"]
    assert local_data(env) == [f"work/data/routes/{user}/x.json"]
    assert {i["backend"] for i in m.list_user_data(user, "routes")} == {"local"}
