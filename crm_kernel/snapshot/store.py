"""Where snapshots live: one folder per snapshot, named by its UTC time, published by a rename.

An export writes into a hidden staging folder beside the snapshots and renames it into place
only when every file is complete, so a failed or killed export never leaves a half snapshot
where readers look. A staging folder is guarded by a lock file held while its export runs;
``prune`` removes staging folders whose lock nobody holds (their export died). A lock file is
removed only by whoever holds its lock, and an export checks, once it holds the lock, that the
file is still the one at the lock's path: so a prune can never take a live export's lock away.

Snapshots hold the whole CRM: folders are created 0700 and files 0600, whatever the umask.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from ..config import Config, make_private_dir
from .errors import NoSnapshotError, SnapshotError

MANIFEST = "manifest.json"
STAGING_PREFIX = ".partial-"
_NAME = re.compile(r"\d{8}T\d{6}\.\d{6}Z")  # folder_name()
FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_open(path: Path, flags: int = os.O_WRONLY | os.O_CREAT | os.O_TRUNC) -> int:
    """``os.open`` of a file only its owner can read."""
    fd = os.open(path, flags, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return fd


@contextmanager
def private_file(path: Path, mode: str = "wb") -> Iterator[IO]:
    """A new file, written through ``open``'s file object, readable by its owner only."""
    with os.fdopen(private_open(path), mode) as out:
        yield out


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
        raise NoSnapshotError(f"no snapshot in {path}; take one with `crm snapshot export`")
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
            make_private_dir(self.parent)
            self._lock = _take_lock(self._lock_path)
            self.path.mkdir(mode=FOLDER_MODE)
            os.chmod(self.path, FOLDER_MODE)
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


def _still_at(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (nobody removed it meanwhile)."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _take_lock(path: Path) -> int:
    """Create the lock file and hold its lock. Between creating and locking, a prune may find
    it unheld and remove it: then the lock held is on a removed file, so make another."""
    while True:
        fd = private_open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            os.close(fd)
            raise
        if _still_at(fd, path):
            return fd
        os.close(fd)


@contextmanager
def _if_abandoned(lock_path: Path) -> Iterator[bool]:
    """Whether no live export holds this staging lock (or the lock file is gone); while the
    ``with`` block runs, the caller holds it, so no export can start on it meanwhile."""
    try:
        fd = os.open(lock_path, os.O_RDWR)
    except FileNotFoundError:
        yield True
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield _still_at(fd, lock_path)  # else an export replaced it after we opened it: leave it
    finally:
        os.close(fd)


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
        with _if_abandoned(_lock_path(staging)) as abandoned:
            if abandoned:  # removed while holding its lock: the lock file goes last
                shutil.rmtree(staging, ignore_errors=True)
                _lock_path(staging).unlink(missing_ok=True)
                removed.append(staging)
    for lock in parent.glob(STAGING_PREFIX + "*.lock"):  # an export killed before its folder existed
        with _if_abandoned(lock) as abandoned:
            if abandoned and not lock.with_suffix("").exists():
                lock.unlink(missing_ok=True)
    return removed
