"""Where snapshots live: one folder per snapshot, named by its UTC time, published by a rename.

An export writes into a hidden staging folder beside the snapshots and renames it into place
only when every file is complete, so a failed or killed export never leaves a half snapshot
where readers look. A staging folder is guarded by a lock file held while its export runs;
``prune`` removes staging folders whose lock nobody holds (their export died).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import re
import secrets
import shutil
from pathlib import Path

from ..config import Config
from .errors import SnapshotError

MANIFEST = "manifest.json"
STAGING_PREFIX = ".partial-"
_NAME = re.compile(r"\d{8}T\d{6}\.\d{6}Z")  # folder_name()


def default_parent(config: Config | None = None) -> Path:
    """``$CRM_HOME/snapshots``."""
    return (config or Config.from_env()).home / "snapshots"


def folder_name(at: dt.datetime) -> str:
    """``20250601T123005.123456Z``: sorts by time, safe in any file system."""
    return at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def is_snapshot(path: Path) -> bool:
    return path.is_dir() and not path.name.startswith(".") and (path / MANIFEST).is_file()


def snapshots(parent: Path) -> list[Path]:
    """The complete snapshots an export made in ``parent``, oldest first. A snapshot folder
    renamed or copied there under another name can be opened but is not listed or pruned."""
    parent = Path(parent)
    if not parent.is_dir():
        return []
    return sorted(p for p in parent.iterdir() if _NAME.fullmatch(p.name) and is_snapshot(p))


def newest(parent: Path) -> Path | None:
    found = snapshots(parent)
    return found[-1] if found else None


def resolve(path: Path | str | None = None) -> Path:
    """A snapshot folder as given, or the newest snapshot in a parent folder (default
    ``$CRM_HOME/snapshots``)."""
    path = Path(path).expanduser() if path is not None else default_parent()
    if is_snapshot(path):
        return path
    found = newest(path)
    if found is None:
        raise SnapshotError(f"no snapshot in {path}; take one with `crm snapshot export`")
    return found


class Staging:
    """A hidden folder an export writes into; ``publish`` renames it into place.

    Leaving the ``with`` block without publishing deletes it. The lock file sits beside the
    folder and is taken before the folder exists and released after it is gone or renamed.
    """

    def __init__(self, parent: Path):
        self.parent = Path(parent)
        token = secrets.token_hex(6)
        self.path = self.parent / f"{STAGING_PREFIX}{token}"
        self._lock_path = _lock_path(self.path)
        self._lock = None
        try:
            self.parent.mkdir(parents=True, exist_ok=True)
            self._lock = os.open(self._lock_path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
            fcntl.flock(self._lock, fcntl.LOCK_EX)
            self.path.mkdir()
        except OSError as exc:
            self._release()
            raise SnapshotError(f"cannot write a snapshot into {self.parent}: {exc}") from exc
        self.published: Path | None = None

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc) -> None:
        if self.published is None:
            shutil.rmtree(self.path, ignore_errors=True)
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock_path.unlink(missing_ok=True)
            os.close(self._lock)
            self._lock = None

    def publish(self, name: str) -> Path:
        """Make the staged files durable, then rename the folder to ``name`` in one step."""
        target = self.parent / name
        try:
            _fsync(self.path)
            os.rename(self.path, target)
            _fsync(self.parent)
        except OSError as exc:
            raise SnapshotError(f"cannot publish the snapshot as {target}: {exc}") from exc
        self.published = target
        return target


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lock_path(staging: Path) -> Path:
    return staging.with_name(staging.name + ".lock")


def _abandoned(lock_path: Path) -> bool:
    """True when no live export holds this staging lock (or the lock is gone)."""
    try:
        fd = os.open(lock_path, os.O_RDWR)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def prune(parent: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` snapshots, and what dead exports left behind.

    Returns the snapshot and staging folders removed. Files an incremental export linked from
    a removed snapshot stay readable through the kept snapshot's own link.
    """
    if keep < 1:
        raise SnapshotError("prune keeps at least one snapshot")
    parent = Path(parent)
    removed = snapshots(parent)[:-keep]
    for path in removed:
        try:
            shutil.rmtree(path)
        except OSError as exc:
            raise SnapshotError(f"cannot remove {path}: {exc}") from exc
    leftovers = sorted(p for p in parent.glob(STAGING_PREFIX + "*") if not p.name.endswith(".lock"))
    for staging in leftovers:
        if _abandoned(_lock_path(staging)):
            shutil.rmtree(staging, ignore_errors=True)
            _lock_path(staging).unlink(missing_ok=True)
            removed.append(staging)
    for lock in parent.glob(STAGING_PREFIX + "*.lock"):  # an export killed before its folder existed
        if not lock.with_suffix("").exists() and _abandoned(lock):
            lock.unlink(missing_ok=True)
    return removed
