"""Every error the library raises on purpose derives from :class:`CrmError`.

Faces (CLI, widgets, notebooks) catch ``CrmError`` and show its message; anything
else is a bug.
"""

from __future__ import annotations


class CrmError(Exception):
    """Base class of all crm_kernel errors."""


class ConfigError(CrmError):
    """The environment or settings are wrong (unknown CRM_USER, missing binaries, ...)."""


class DatabaseError(CrmError):
    """The database could not be reached, started or migrated."""


class NotFoundError(CrmError):
    """A record with the given id does not exist (or is deleted)."""


class ConflictError(CrmError):
    """A write was based on a stale version of a record.

    ``current`` holds the record as it is now, so a caller can show the fresh state.
    """

    def __init__(self, message: str, current: dict | None = None):
        super().__init__(message)
        self.current = current


class ValidationError(CrmError):
    """Input was refused. ``errors`` maps each offending field to what is wrong with it."""

    def __init__(self, errors: dict[str, str], entity: str | None = None):
        self.errors = dict(errors)
        self.entity = entity
        where = f"{entity}: " if entity else ""
        detail = "; ".join(f"{field}: {problem}" for field, problem in self.errors.items())
        super().__init__(f"invalid {where}{detail}")

    @property
    def fields(self) -> list[str]:
        return list(self.errors)


class QuerySpecError(CrmError):
    """A query spec was refused before anything ran.

    ``path`` locates the offending part (``where.rules[2].rules[0]``), ``problem`` says what
    is wrong with it.
    """

    def __init__(self, path: str, problem: str):
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path else problem)


class IngestError(CrmError):
    """A mail or calendar source could not be read at all: a missing file, a file that is not
    an mbox or a calendar, an IMAP server that refused the login or the folder. (One bad
    message or event is not an error: the ingest summary reports it and goes on.)"""


class ImportRefusedError(CrmError):
    """An import wrote nothing: its file, mapping or rows were refused.

    ``report`` (an :class:`~crm_kernel.importer.ImportReport`, when the rows were read) says
    which rows and why, with file line, column, value and reason.
    """

    def __init__(self, message: str, report=None):
        super().__init__(message)
        self.report = report


class SignInError(CrmError):
    """A sign-in was refused: an unknown or revoked token, or a served page without a signed-in user."""


class AccessDeniedError(CrmError):
    """The acting user may not do this: a write their role or teams do not allow (an analyst's
    change, a rep's deal handed outside their teams, a stage changed by a non-admin). Nothing was
    written. ``table`` and ``field`` name what was refused (``field`` may be None). Named so as
    not to shadow the builtin ``PermissionError``, which it does not derive from (file-handling
    code catches ``OSError``)."""

    def __init__(self, message: str, table: str | None = None, field: str | None = None):
        super().__init__(message)
        self.table = table
        self.field = field
