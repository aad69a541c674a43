"""Fixtures: every test runs once on local storage and once on S3 (the SeaweedFS test server
whose settings scripts/s3-server.sh exports), in its own temporary working and data directory,
with an environment holding only the configuration the test sets."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from kompass_storage import StorageManager

ROOT = Path(__file__).resolve().parents[3]
FIXTURE = ROOT / "native" / "tests" / "fixtures" / "strava_export.json"

#: A pseudonym key for tests (64 hex characters, as `openssl rand -hex 32` prints).
PSEUDONYM_KEY = "5f1d3c9a7b2e4d6f8a0c1e3b5d7f9a2c4e6b8d0f1a3c5e7b9d2f4a6c8e0b1d3f"

#: Every variable kompass reads, removed before each test so nothing leaks in from outside.
CONFIG_PREFIXES = ("S3_", "AWS_", "KOMPASS_", "DATA_DIRECTORY")

#: The S3 test server's settings, captured before any test clears the environment.
S3_SETTINGS = {
    k: os.environ[k]
    for k in ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_S3_BUCKET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    if os.environ.get(k)
}

SKIP_S3 = os.environ.get("KOMPASS_SKIP_S3") == "1"


def s3_config() -> dict[str, str]:
    """The environment for S3 storage on the test server; skips only with KOMPASS_SKIP_S3=1,
    fails otherwise (a test that needs S3 must not pass silently)."""
    if SKIP_S3:
        pytest.skip("KOMPASS_SKIP_S3=1 (no S3 test server)")
    missing = {"AWS_ENDPOINT_URL", "AWS_S3_BUCKET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} - S3_SETTINGS.keys()
    if missing:
        pytest.fail(
            f"{', '.join(sorted(missing))} not set: the S3 tests need the test server. Run "
            "`scripts/s3-server.sh start` and `set -a; . <(scripts/s3-server.sh env); set +a` "
            "first (scripts/test.sh does), or set KOMPASS_SKIP_S3=1 to skip them"
        )
    # Required, so these tests never run against real AWS by accident.
    return {"S3_STORAGE_ENABLED": "true", "AWS_REGION": "us-east-1", **S3_SETTINGS}


class Env:
    """The test's configuration: a clean environment, a working directory, a data directory."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, tmp: Path, backend: str) -> None:
        self.mp = monkeypatch
        self.tmp = tmp
        self.backend = backend
        self.work = tmp / "work"
        self.data = tmp / "work" / "data"
        self.work.mkdir()
        for k in list(os.environ):
            if k.startswith(CONFIG_PREFIXES):
                monkeypatch.delenv(k)
        monkeypatch.chdir(self.work)
        self.vars: dict[str, str] = {}
        self.set(DATA_DIRECTORY=str(self.data), KOMPASS_PSEUDONYM_KEY=PSEUDONYM_KEY)
        if backend == "s3":
            self.set(**s3_config())

    def set(self, **values: str) -> None:
        for k, v in values.items():
            self.vars[k] = v
            self.mp.setenv(k, v)

    def unset(self, *names: str) -> None:
        for k in names:
            self.vars.pop(k, None)
            self.mp.delenv(k, raising=False)

    def local_only(self) -> None:
        """Local storage, in the same data directory."""
        self.unset(*[k for k in self.vars if k.startswith(("S3_STORAGE", "AWS_"))])

    def files(self) -> list[str]:
        """Every data file under the test's temporary directory, relative to it (the state
        directory `.kompass` aside)."""
        out = []
        for p in self.tmp.rglob("*"):
            rel = p.relative_to(self.tmp)
            if p.is_file() and ".kompass" not in rel.parts:
                out.append(rel.as_posix())
        return sorted(out)


@pytest.fixture(params=["local", "s3"])
def env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Env:
    return Env(monkeypatch, tmp_path, request.param)


@pytest.fixture
def s3env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Env:
    """For the tests that only make sense with S3 configured."""
    return Env(monkeypatch, tmp_path, "s3")


@pytest.fixture
def manager(env: Env) -> StorageManager:
    return StorageManager()


@pytest.fixture
def user() -> str:
    """A user id no other test (or earlier run) uses: the S3 bucket is shared."""
    return f"py-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def rider_export() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))
