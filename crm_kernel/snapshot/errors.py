"""The errors the snapshot package adds to the library's family, and its warning."""

from __future__ import annotations

from ..errors import CrmError


class SnapshotError(CrmError):
    """A snapshot could not be written, found or read (the database itself raises DatabaseError)."""


class NoSnapshotError(SnapshotError):
    """No snapshot has been taken where one was looked for (a reader can offer to take one)."""


class SnapshotWarning(UserWarning):
    """An export did less than asked but still produced a complete snapshot: an incremental
    export copied a table, or everything, in full (the message names the file or table and why)."""
