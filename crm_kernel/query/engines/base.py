"""What every engine shares: how a spec's schema is looked up, and the seek keys of a page.

An engine module subclasses :class:`Engine` and fills in what differs (its compiler, the SQL
that reflects its tables, how it runs a statement and opens its connection).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from ..compilers import CompiledQuery, Compiler
from ..schema import Schema, TableInfo, reflected_tables
from ..spec import QuerySpec

if TYPE_CHECKING:
    import polars as pl

    from ..control import RunHandle
    from ..run import QueryResult

# "arrow": the whole result as Arrow, then a frame (fast for many rows); "rows": DB-API rows,
# read with ``dicts()`` without loading pyarrow or polars (the board's few cards).
Fetch = Literal["arrow", "rows"]

CUSTOM_FIELDS_SQL = (
    "SELECT entity, key, type FROM custom_field_definitions WHERE deleted_at IS NULL ORDER BY entity, key"
)


def names_custom_fields(spec: QuerySpec) -> bool:
    """Whether the spec mentions a custom field (only then are their declarations read)."""
    return "custom_fields." in json.dumps(spec.source)  # parse() left only JSON in source


NAMED_PARAMETER = re.compile(r"(?<!:):(\w+)")  # ``:name`` in hand-written SQL, not a ``::cast``


class SqlReader:
    """An engine's connection for hand-written SQL (the analytics' own queries): ``:name``
    parameters on every engine, results as polars frames with positional column names, and the
    few spellings that differ between engines."""

    def frame(self, sql: str, params: dict) -> pl.DataFrame:
        raise NotImplementedError

    def table(self, name: str, *, with_deleted: bool = False) -> str:
        """A table's name; where views hide soft-deleted rows, ``with_deleted`` names the full one."""
        return name

    def json_record(self, column: str, keys: tuple[str, ...]) -> str:
        """An expression reading the JSON object in ``column`` once, for :meth:`json_field`."""
        return column

    def json_field(self, record: str, keys: tuple[str, ...], key: str) -> str:
        """The text of ``key`` in a :meth:`json_record` aliased ``record``."""
        return f"({record}->>'{key}')"


class Engine:
    """One engine: subclasses set ``name``, ``compiler`` and ``reflect_sql`` and run statements."""

    name: str
    compiler: type[Compiler]
    reflect_sql: str  # (table, column, type name) of the tables the catalog may not describe
    uses_snapshot = False  # whether a run reads a snapshot (``snapshot=`` of execute)
    errors: tuple[type[Exception], ...] = ()  # what a run may raise besides a CrmError

    # -- what a spec can name -------------------------------------------------------------

    def rows(self, conn, sql: str) -> list[tuple]:
        """The rows of a small catalog query on ``conn``."""
        raise NotImplementedError

    def custom_fields(self, conn) -> tuple:
        return tuple(tuple(r) for r in self.rows(conn, CUSTOM_FIELDS_SQL))

    def reflect(self, conn) -> dict[str, TableInfo]:
        """The tables and views outside the catalog, with their queryable columns."""
        return reflected_tables(self.rows(conn, self.reflect_sql))

    def schema(self, conn, spec: QuerySpec) -> Schema:
        """What ``spec`` can name on this connection."""
        from ..run import schema_for

        custom = self.custom_fields(conn) if names_custom_fields(spec) else ()
        return schema_for(spec.entity, custom, lambda: self.reflect(conn))

    def connection(self, crm, snapshot=None) -> AbstractContextManager:
        """A connection for :meth:`schema` (faces that look up fields)."""
        raise NotImplementedError

    def reader(self, crm, snapshot=None) -> AbstractContextManager[SqlReader]:
        """A :class:`SqlReader` for hand-written SQL, closed with the block."""
        raise NotImplementedError

    # -- running --------------------------------------------------------------------------

    def execute(
        self,
        crm,
        spec,
        snapshot=None,
        *,
        now=None,
        timeout: float | None = None,
        handle: RunHandle | None = None,
        params: dict | None = None,
        fetch: Fetch = "arrow",
    ) -> QueryResult:
        raise NotImplementedError

    def pages(self, crm, spec, snapshot, page_size: int) -> Iterator[pl.DataFrame]:
        """The whole result as frames of at most ``page_size`` rows, read from one moment."""
        raise NotImplementedError


def seek_values(compiled: CompiledQuery, last_row: list) -> list | None:
    """The JSON values of ``spec["after"]`` for the page after the one ending with ``last_row``
    (that row's hidden key columns), None when the query was not a seek or had no rows."""
    if not compiled.keys or last_row is None:
        return None
    return [_json(v) for v in last_row]


def _json(value: Any) -> Any:
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, dt.date):  # datetimes too: ISO text with their offset
        return value.isoformat()
    return value
