"""The one error the snapshot package adds to the library's family."""

from __future__ import annotations

from ..errors import CrmError


class SnapshotError(CrmError):
    """A snapshot could not be written, found or read (the database itself raises DatabaseError)."""
