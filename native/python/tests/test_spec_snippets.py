"""The spec's own Python usage (spec/backend-storage.md, "Usage" and "Migration"), as written:
only the import lines differ (`kompass_storage` for `helper.storage.storage_manager` and
`helper.processing.rider_data_processor`).

Each snippet runs in a fresh interpreter whose configuration comes only from a `.env` file in
its working directory, as a Streamlit app would be configured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from conftest import CONFIG_PREFIXES, Env

ROUTE_STORAGE = """
from kompass_storage import get_storage_manager

manager = get_storage_manager()

# Save user-specific route
success = manager.save_data(route_data, user_id, 'routes', 'my_route.json')

# Load user-specific route
route_data = manager.load_data(user_id, 'routes', 'my_route.json')

# List user routes
user_routes = manager.list_user_data(user_id, 'routes')
"""

RIDER_DATA_STORAGE = """
from kompass_storage import RiderDataProcessor

processor = RiderDataProcessor(oauth_client)

# Save rider data (PII automatically removed)
success = processor.save_rider_data(rider_data, user_id)

# Load rider data
saved_data = processor.load_rider_data(user_id)

# Get rider data history
history = processor.get_rider_data_history(user_id)
"""

DATA_MIGRATION = """
from kompass_storage import get_storage_manager

manager = get_storage_manager()

# Migrate all local data to S3
results = manager.migrate_local_to_s3()

# Migrate specific user data
results = manager.migrate_local_to_s3(user_id="specific_user")
"""


def run_snippet(env: Env, prelude: str, snippet: str, epilogue: str, dotenv: dict[str, str]) -> dict:
    """Runs prelude + snippet + epilogue in a new interpreter in the test's working directory,
    configured by a `.env` file there only; the epilogue prints a JSON object."""
    (env.work / ".env").write_text("".join(f"{k}={v}\n" for k, v in dotenv.items()), encoding="utf-8")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(CONFIG_PREFIXES)}
    code = textwrap.dedent(prelude) + snippet + textwrap.dedent(epilogue)
    p = subprocess.run(
        [sys.executable, "-c", code], cwd=env.work, env=clean, capture_output=True, text=True, timeout=300
    )
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_route_storage_snippet(env: Env, user: str) -> None:
    route = {"name": "Lake loop", "distance_km": 42.5, "points": [[45.9, 6.12], [45.91, 6.13]], "tags": ["ö", "✓"]}
    out = run_snippet(
        env,
        f"""
        route_data = {route!r}
        user_id = {user!r}
        """,
        ROUTE_STORAGE,
        """
        import json
        print(json.dumps({"success": success, "route_data": route_data, "user_routes": user_routes,
                          "same": get_storage_manager() is manager}))
        """,
        env.vars,
    )
    assert out["success"] is True
    assert out["route_data"] == route
    assert out["same"] is True
    [listed] = out["user_routes"]
    assert listed["filename"] == "my_route.json"
    assert listed["backend"] == env.backend
    assert listed["size_bytes"] == len(json.dumps(route, ensure_ascii=False).encode())
    assert {"filename", "size_bytes", "size_mb", "last_modified", "backend", "key"} <= listed.keys()
    assert listed["key"] == f"users/{user}/routes/my_route.json"


def test_rider_data_snippet(env: Env, user: str, rider_export: dict) -> None:
    out = run_snippet(
        env,
        f"""
        import json
        oauth_client = object()  # the app's Strava client; storage does not use it
        rider_data = json.loads({json.dumps(rider_export)!r})
        user_id = {user!r}
        """,
        RIDER_DATA_STORAGE,
        """
        print(json.dumps({"success": success, "saved_data": saved_data, "history": history,
                          "oauth_client_kept": processor.oauth_client is oauth_client}))
        """,
        env.vars,
    )
    assert out["success"] is True
    assert out["oauth_client_kept"] is True
    saved = out["saved_data"]
    assert saved["anonymization"]["pii_removed"] is True
    text = json.dumps(saved, ensure_ascii=False)
    for pii in ("Amélie", "Rousseau", "amelie.rousseau@example.org", "Annecy", "Col de la Forclaz"):
        assert pii not in text
    [entry] = out["history"]
    assert entry["filename"].startswith("fitness_data_") and entry["filename"].endswith(".json")
    assert entry["activity_count"] == len(rider_export["activities"])
    assert entry["backend"] == env.backend


def test_data_migration_snippet(env: Env, user: str) -> None:
    # Local data first, saved with S3 off.
    local = {k: v for k, v in env.vars.items() if not k.startswith(("S3_STORAGE", "AWS_"))}
    out = run_snippet(
        env,
        f"user_id = {user!r}\n",
        "from kompass_storage import get_storage_manager\n",
        """
        m = get_storage_manager()
        ok = [m.save_data({"n": i}, user_id, "routes", f"r{i}.json") for i in range(3)]
        print(__import__("json").dumps({"ok": ok}))
        """,
        local,
    )
    assert out["ok"] == [True, True, True]
    out = run_snippet(
        env,
        f"user_id = {user!r}\n",
        DATA_MIGRATION,
        """
        import json
        print(json.dumps({"results": results, "listed": manager.list_user_data(user_id, "routes")}))
        """,
        env.vars,
    )
    results = out["results"]
    for field in ("migrated", "skipped_identical", "conflicts", "failed", "bytes", "errors"):
        assert field in results
    if env.backend == "s3":
        # All local data went first; "specific_user" has none left to move.
        assert results["user"] == "specific_user"
        assert (results["migrated"], results["failed"], results["errors"]) == (0, 0, [])
        assert sorted(i["filename"] for i in out["listed"]) == ["r0.json", "r1.json", "r2.json"]
        assert {i["backend"] for i in out["listed"]} == {"s3"}
        assert env.files() == ["work/.env"]  # every local copy went, verified in S3
    else:
        # No S3 configured: nothing moves, nothing is lost, and the report says why.
        assert (results["migrated"], results["failed"]) == (0, 0)
        assert "S3 storage is not enabled" in results["errors"][0]
        assert {i["backend"] for i in out["listed"]} == {"local"}
        assert len(out["listed"]) == 3
