"""Type stubs of the native extension (``kompass_storage._native``, Rust/PyO3).

Results cross as the ``kompass`` CLI's JSON shapes (str), parsed by the ``kompass_storage``
package; use that package, not this module.
"""

import os

class StorageError(Exception):
    """Base class of every kompass_storage error."""

class LimitExceeded(StorageError):
    """Refused by a limit (file size, user quota, bucket limit); nothing was stored or deleted."""

class NotFound(StorageError):
    """Nothing is stored under that name."""

class InvalidName(StorageError):
    """A user id, data type or file name was rejected."""

class InvalidData(StorageError):
    """The data cannot be stored as given."""

class ConfigError(StorageError):
    """The configuration is invalid or lacks what the call needs."""

class StorageUnavailable(StorageError):
    """A storage backend could not be reached."""

class NativeManager:
    def __init__(self, data_dir: str | os.PathLike[str] | None = None) -> None: ...
    def save(self, user: str | None, data_type: str, name: str, data: bytes) -> str: ...
    def load(self, user: str | None, data_type: str, name: str) -> bytes: ...
    def list(self, user: str | None, data_type: str) -> str: ...
    def delete(self, user: str | None, data_type: str, name: str) -> list[str]: ...
    def info(self) -> str: ...
    def usage(self, user: str) -> str: ...
    def migrate(self, user: str | None = None, dry_run: bool = False) -> str: ...
    def rider_save(self, user: str, data: bytes) -> str: ...
    def rider_import(self, path: str | os.PathLike[str], user: str | None = None, dry_run: bool = False) -> str: ...
    def rider_load(self, user: str, name: str | None = None) -> bytes: ...
    def rider_history(self, user: str) -> str: ...

def drain_log() -> list[tuple[int, str, str]]:
    """Native log records since the last call: (logging level, target, message)."""
