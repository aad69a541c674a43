"""KOMpass storage for Python: the spec's ``StorageManager`` and ``RiderDataProcessor``.

A thin layer over the native ``kompass`` storage manager (the same admission, PII scrub,
FIFO cleanup and migration code as the ``kompass`` CLI and ``kompass serve``)::

    from kompass_storage import get_storage_manager, RiderDataProcessor

    manager = get_storage_manager()
    success = manager.save_data(route_data, user_id, 'routes', 'my_route.json')
    route_data = manager.load_data(user_id, 'routes', 'my_route.json')

Configuration comes from the environment and a ``.env`` file in the working directory (the
environment wins), read when a ``StorageManager`` is constructed, exactly as for the CLI.

Two flavours of every method:

- ``StorageManager`` / ``RiderDataProcessor`` (the spec's): a refused or failed call returns
  ``False`` (saves, deletes), ``None`` (loads) or an empty list, never raises; the reason is in
  ``manager.last_error`` (for the calling thread) and is logged on the ``kompass_storage``
  logger.
- ``manager.strict`` / ``processor.strict`` (for new code): the same calls raise typed
  exceptions, all subclasses of ``StorageError``: ``LimitExceeded``, ``NotFound``,
  ``InvalidName``, ``InvalidData``, ``ConfigError``, ``StorageUnavailable``; saves return what
  was stored (backend, key, bytes) instead of ``True``.

The GIL is released while the native side does IO, and one manager may be shared by any
number of threads (Streamlit runs each session in a thread).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import Any, Callable, Literal, TypeVar, overload

from . import _native
from ._native import (
    ConfigError,
    InvalidData,
    InvalidName,
    LimitExceeded,
    NotFound,
    StorageError,
    StorageUnavailable,
)

__all__ = [
    "get_storage_manager",
    "StorageManager",
    "StrictStorageManager",
    "RiderDataProcessor",
    "StrictRiderDataProcessor",
    "StorageError",
    "LimitExceeded",
    "NotFound",
    "InvalidName",
    "InvalidData",
    "ConfigError",
    "StorageUnavailable",
    "TEXT_SUFFIXES",
]

logger = logging.getLogger("kompass_storage")
_native_logger = logging.getLogger("kompass_storage.native")

#: Files that ``load_data`` returns as ``str`` (UTF-8); ``.json`` files come back parsed and
#: every other file as ``bytes``. The type depends on the name only, never on the content.
TEXT_SUFFIXES = frozenset({".txt", ".csv", ".gpx", ".tcx", ".xml", ".md", ".html", ".yaml", ".yml", ".geojson"})

_T = TypeVar("_T")
_MIB = 1024 * 1024


def _forward_native_log() -> None:
    """Hands the native side's log records (e.g. "S3 unreachable, saved locally") to logging."""
    for level, target, message in _native.drain_log():
        _native_logger.log(level, "%s (%s)", message, target)


def _encode(data: Any) -> bytes:
    """bytes as they are, str as UTF-8, anything else (dict, list, ...) as JSON."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, str):
        return data.encode("utf-8")
    try:
        # allow_nan=False: NaN and Infinity are not JSON, and the native side parses strictly.
        return json.dumps(data, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise InvalidData(f"data of type {type(data).__name__} cannot be stored as JSON: {e}") from e


def _decode(filename: str, raw: bytes) -> Any:
    suffix = os.path.splitext(filename)[1].lower()
    if suffix == ".json":
        try:
            return json.loads(raw)
        except ValueError as e:
            raise InvalidData(f"{filename} is not valid JSON ({e}); read it with load_bytes") from e
    if suffix in TEXT_SUFFIXES:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw
    return raw


def _listing(item: dict[str, Any]) -> dict[str, Any]:
    """The CLI's list entry with the original Python's keys."""
    return {
        "filename": item["name"],
        "key": item["key"],
        "size_bytes": item["size"],
        "size_mb": round(item["size"] / _MIB, 2),
        "last_modified": item["last_modified"],
        "backend": item["backend"],
    }


def _history_entry(item: dict[str, Any]) -> dict[str, Any]:
    entry = _listing(item)
    entry.update({k: v for k, v in item.items() if k not in ("name", "size")})
    entry["timestamp"] = item["saved_at"]
    return entry


def _empty_migration(user_id: str | None, error: str) -> dict[str, Any]:
    """The migrate report's contract fields when the migration could not start."""
    return {
        "migrated": 0,
        "skipped_identical": 0,
        "conflicts": 0,
        "failed": 0,
        "bytes": 0,
        "errors": [error],
        "user": user_id,
    }


class _Errors:
    """``last_error`` per thread: one Streamlit session's failure is not another's answer."""

    def __init__(self) -> None:
        self._local = threading.local()

    @property
    def last_error(self) -> str | None:
        """Why the calling thread's last call failed or was refused; None after a success."""
        e = getattr(self._local, "error", None)
        return None if e is None else str(e)

    @property
    def last_exception(self) -> StorageError | None:
        """The calling thread's last failure as its typed exception; None after a success."""
        return getattr(self._local, "error", None)

    def _lenient(self, what: str, default: _T, call: Callable[[], _T], *, quiet_not_found: bool = False) -> _T:
        self._local.error = None
        try:
            return call()
        except StorageError as e:
            self._local.error = e
            if quiet_not_found and isinstance(e, NotFound):
                logger.debug("%s: %s", what, e)
            elif isinstance(e, (LimitExceeded, InvalidName, InvalidData, NotFound)):
                logger.warning("%s refused: %s", what, e)
            else:
                logger.error("%s failed: %s", what, e)
            return default


class StrictStorageManager:
    """The storage manager for new code: every failure raises a ``StorageError`` subclass."""

    def __init__(self, data_dir: str | os.PathLike[str] | None = None, *, _native_manager: Any = None) -> None:
        """Reads the configuration (environment and ``.env``); ``data_dir`` overrides
        ``DATA_DIRECTORY``. Raises ``ConfigError`` when it is invalid."""
        self._native = _native_manager if _native_manager is not None else _native.NativeManager(data_dir)

    def _call(self, f: Callable[[], _T]) -> _T:
        try:
            return f()
        finally:
            _forward_native_log()

    def save_data(self, data: Any, user_id: str | None, data_type: str, filename: str) -> dict[str, Any]:
        """Stores ``data`` (dict/list as JSON, bytes as is, str as UTF-8), replacing a file of
        that name. ``user_id=None`` is global data (models, training_data) or an anonymous
        route. Returns ``{"backend", "key", "bytes", ...}``."""
        raw = _encode(data)
        return json.loads(self._call(lambda: self._native.save(user_id, data_type, filename, raw)))

    def load_bytes(self, user_id: str | None, data_type: str, filename: str) -> bytes:
        """The stored bytes, unchanged. Raises ``NotFound`` when absent."""
        return self._call(lambda: self._native.load(user_id, data_type, filename))

    def load_data(self, user_id: str | None, data_type: str, filename: str) -> Any:
        """A ``.json`` file parsed; a text file (``TEXT_SUFFIXES``) as str; others as bytes.
        Raises ``NotFound`` when absent."""
        return _decode(filename, self.load_bytes(user_id, data_type, filename))

    def list_user_data(self, user_id: str | None, data_type: str) -> list[dict[str, Any]]:
        """Newest first: ``filename``, ``key``, ``size_bytes``, ``size_mb``, ``last_modified``
        (ISO 8601 UTC), ``backend`` (``"s3"`` or ``"local"``)."""
        return [_listing(i) for i in json.loads(self._call(lambda: self._native.list(user_id, data_type)))]

    def delete_data(self, user_id: str | None, data_type: str, filename: str) -> list[str]:
        """Deletes the file everywhere; the backends it was deleted from. Raises ``NotFound``."""
        return self._call(lambda: self._native.delete(user_id, data_type, filename))

    def get_storage_info(self) -> dict[str, Any]:
        """Backends, preferred backend, bucket, data directory, what each holds, the
        pending-sync backlog and the configuration with secrets redacted."""
        return json.loads(self._call(self._native.info))

    def get_user_storage_usage(self, user_id: str) -> dict[str, Any]:
        """One user's bytes and files, per data type, against the user quota."""
        usage = json.loads(self._call(lambda: self._native.usage(user_id)))
        usage["total_size_mb"] = round(usage["total_bytes"] / _MIB, 2)
        usage["quota_mb"] = round(usage["quota_bytes"] / _MIB, 2)
        return usage

    def migrate_local_to_s3(self, user_id: str | None = None, *, dry_run: bool = False) -> dict[str, Any]:
        """Moves local data (one user's, or everything) to S3, each file verified before its
        local copy is removed; the ``kompass migrate --json`` report. Per-file failures are in
        the report; raises ``ConfigError`` without S3, ``StorageUnavailable`` when S3 cannot
        be surveyed."""
        return json.loads(self._call(lambda: self._native.migrate(user_id, dry_run)))


class StorageManager(_Errors):
    """The spec's storage manager: S3 first when configured, local storage otherwise.

    Refusals and failures return ``False`` / ``None`` / ``[]`` and never raise; see
    ``last_error`` and the ``kompass_storage`` logger. ``strict`` is the raising variant over
    the same native manager.
    """

    def __init__(self, data_dir: str | os.PathLike[str] | None = None) -> None:
        """Reads the configuration (environment and ``.env``); ``data_dir`` overrides
        ``DATA_DIRECTORY``. Raises ``ConfigError`` when it is invalid: a misconfigured app
        should stop at start-up, not lose saves later."""
        super().__init__()
        self.strict = StrictStorageManager(_native_manager=_native.NativeManager(data_dir))

    def save_data(self, data: Any, user_id: str | None, data_type: str, filename: str) -> bool:
        """Stores ``data``: dict or list as JSON, bytes as they are, str as UTF-8. ``user_id``
        None is global data or an anonymous route. False when refused or failed."""
        return self._lenient(
            f"save {data_type}/{filename}",
            False,
            lambda: self.strict.save_data(data, user_id, data_type, filename) is not None,
        )

    def load_data(self, user_id: str | None, data_type: str, filename: str) -> Any:
        """A ``.json`` file parsed, a text file as str, others as bytes; None when absent."""
        return self._lenient(
            f"load {data_type}/{filename}",
            None,
            lambda: self.strict.load_data(user_id, data_type, filename),
            quiet_not_found=True,
        )

    def load_bytes(self, user_id: str | None, data_type: str, filename: str) -> bytes | None:
        """The stored bytes, unchanged; None when absent."""
        return self._lenient(
            f"load {data_type}/{filename}",
            None,
            lambda: self.strict.load_bytes(user_id, data_type, filename),
            quiet_not_found=True,
        )

    def list_user_data(self, user_id: str | None, data_type: str) -> list[dict[str, Any]]:
        """The files, newest first (see ``StrictStorageManager.list_user_data``); [] on failure."""
        return self._lenient(f"list {data_type}", [], lambda: self.strict.list_user_data(user_id, data_type))

    def delete_data(self, user_id: str | None, data_type: str, filename: str) -> bool:
        """True when the file was deleted; False when it was not there or the delete failed."""
        return self._lenient(
            f"delete {data_type}/{filename}",
            False,
            lambda: bool(self.strict.delete_data(user_id, data_type, filename)),
        )

    def get_storage_info(self) -> dict[str, Any]:
        """Backends and what they hold; ``{"error": ...}`` when even that failed."""
        return self._lenient("storage info", {}, self.strict.get_storage_info) or {"error": self.last_error}

    def get_user_storage_usage(self, user_id: str) -> dict[str, Any]:
        """One user's usage against the quota; ``{"error": ...}`` on failure."""
        return self._lenient("storage usage", {}, lambda: self.strict.get_user_storage_usage(user_id)) or {
            "error": self.last_error
        }

    def migrate_local_to_s3(self, user_id: str | None = None) -> dict[str, Any]:
        """The ``kompass migrate --json`` report; when the migration cannot start (S3 not
        configured or unreachable) the same counts, all zero, with the reason in ``errors``."""
        report = self._lenient("migrate", None, lambda: self.strict.migrate_local_to_s3(user_id))
        return report if report is not None else _empty_migration(user_id, self.last_error or "")


_manager: StorageManager | None = None
_manager_lock = threading.Lock()


def get_storage_manager() -> StorageManager:
    """The process-wide ``StorageManager``, configured on first use."""
    global _manager
    m = _manager
    if m is None:
        with _manager_lock:
            if _manager is None:
                _manager = StorageManager()
            m = _manager
    return m


class StrictRiderDataProcessor:
    """Rider data for new code: every failure raises a ``StorageError`` subclass."""

    def __init__(self, oauth_client: Any = None, manager: StrictStorageManager | StorageManager | None = None) -> None:
        self.oauth_client = oauth_client
        if manager is None:
            manager = get_storage_manager()
        self.manager = manager.strict if isinstance(manager, StorageManager) else manager

    def save_rider_data(self, rider_data: Any, user_id: str) -> dict[str, Any]:
        """Scrubs PII with the keyed policy (``KOMPASS_PSEUDONYM_KEY``) and stores the result as
        ``fitness/fitness_data_{UTC timestamp}.json``; never replaces an earlier save. Returns
        what was stored: ``key``, ``name``, ``backend``, ``saved_at``, the summary, ``user_hash``
        and ``removed_count``."""
        raw = _encode(rider_data)
        m = self.manager
        return json.loads(m._call(lambda: m._native.rider_save(user_id, raw)))

    def import_strava_export(
        self, path: str | os.PathLike[str], user_id: str | None, *, dry_run: bool = False
    ) -> dict[str, Any]:
        """Imports Strava's bulk export ZIP ("Download your data": ``profile.csv``,
        ``activities.csv`` and the GPX/TCX/FIT activity files) and stores the rider document it
        makes as ``save_rider_data`` does, through the same native code as ``kompass rider
        import``. Names, titles, coordinates, device serials, media and messages never reach the
        document. Returns the ``kompass rider import --json`` shape: ``{"saved": <what
        save_rider_data returns>, "import": <report>}``; the report counts what was removed and
        skipped, by kind, never a removed value. With ``dry_run=True`` nothing is stored (and
        ``user_id`` may be None): ``{"document": <the document>, "import": <report>}``.

        Raises ``InvalidData`` for a file that cannot be read or is not a Strava export
        (nothing is stored), ``InvalidName`` for a bad user id, ``ConfigError`` without
        ``KOMPASS_PSEUDONYM_KEY``, ``LimitExceeded`` when a limit refuses the save."""
        archive = os.fspath(path)
        m = self.manager
        return json.loads(m._call(lambda: m._native.rider_import(archive, user_id, dry_run)))

    def load_rider_data(self, user_id: str, filename: str | None = None) -> dict[str, Any]:
        """The newest save (or ``filename``), parsed. Raises ``NotFound`` when there is none."""
        m = self.manager
        return _decode("rider.json", m._call(lambda: m._native.rider_load(user_id, filename)))

    def get_rider_data_history(self, user_id: str) -> list[dict[str, Any]]:
        """Every save, newest first: ``filename``, ``timestamp``/``saved_at``, ``size_bytes``,
        ``activity_count``, ``has_power_data``, ``completeness``, ``pii_removed``, ..."""
        m = self.manager
        return [_history_entry(e) for e in json.loads(m._call(lambda: m._native.rider_history(user_id)))]


class RiderDataProcessor(_Errors):
    """The spec's rider data processor: PII is removed before anything is stored.

    ``oauth_client`` is kept for the app's own use (fetching from Strava); storage needs only
    the manager (``get_storage_manager()`` unless given).
    """

    def __init__(self, oauth_client: Any = None, manager: StorageManager | None = None) -> None:
        super().__init__()
        self.oauth_client = oauth_client
        self.strict = StrictRiderDataProcessor(oauth_client, manager if manager is not None else get_storage_manager())

    def save_rider_data(self, rider_data: Any, user_id: str) -> bool:
        """Scrubs and stores; False when refused (not rider data, no pseudonym key, a limit)."""
        return self._lenient(
            "save rider data", False, lambda: self.strict.save_rider_data(rider_data, user_id) is not None
        )

    @overload
    def import_strava_export(
        self, path: str | os.PathLike[str], user_id: str | None, *, dry_run: Literal[False] = ...
    ) -> bool: ...
    @overload
    def import_strava_export(
        self, path: str | os.PathLike[str], user_id: str | None, *, dry_run: Literal[True]
    ) -> dict[str, Any] | None: ...

    def import_strava_export(
        self, path: str | os.PathLike[str], user_id: str | None, *, dry_run: bool = False
    ) -> bool | dict[str, Any] | None:
        """Imports Strava's bulk export ZIP at ``path`` and stores the scrubbed rider document
        (see ``StrictRiderDataProcessor.import_strava_export``); False when refused (not a
        Strava export, a bad user id, no pseudonym key, a limit), with the reason in
        ``last_error``. With ``dry_run=True`` nothing is stored: the document and the import
        report, or None when the archive cannot be imported."""
        if dry_run:
            return self._lenient(
                "import Strava export",
                None,
                lambda: self.strict.import_strava_export(path, user_id, dry_run=True),
            )
        return self._lenient(
            "import Strava export",
            False,
            lambda: self.strict.import_strava_export(path, user_id) is not None,
        )

    def load_rider_data(self, user_id: str) -> dict[str, Any] | None:
        """The newest saved rider data; None when there is none."""
        return self._lenient(
            "load rider data", None, lambda: self.strict.load_rider_data(user_id), quiet_not_found=True
        )

    def get_rider_data_history(self, user_id: str) -> list[dict[str, Any]]:
        """Every save, newest first; [] when there is none or on failure."""
        return self._lenient("rider data history", [], lambda: self.strict.get_rider_data_history(user_id))
