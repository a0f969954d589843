"""A query's result and how a spec is compiled; running it is each engine's (``engines/``).

``timeout`` (seconds; None or 0: no limit) bounds each statement of a run, ``handle`` lets
another thread cancel it (see :mod:`.control`); either way the run raises QueryCancelled.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .compilers import CompiledQuery
from .control import RunHandle
from .engines import ENGINES, engine
from .schema import Schema

if TYPE_CHECKING:
    import polars as pl
    import sqlalchemy as sa

BACKENDS = tuple(ENGINES)


@dataclass
class QueryResult:
    """A query's rows with what it took to get them: ``frame`` (polars) or ``dicts()``."""

    compiled: CompiledQuery
    backend: str
    compile_seconds: float
    execute_seconds: float
    timezone: str = "UTC"
    # PostgreSQL's DB-API rows until a frame is asked for: the frame is built on first use, so
    # that a caller who reads dicts() never loads polars (about 75 MB resident with numpy).
    rows: list | None = field(default=None, repr=False)
    _frame: pl.DataFrame | None = field(default=None, repr=False)
    # A seek (``"after"`` in the spec): the value of ``after`` that gives the page after this one;
    # None when the query was not a seek or returned no rows.
    after: list | None = None

    @property
    def frame(self) -> pl.DataFrame:
        if self._frame is None:
            from . import frames

            self._frame = frames.from_rows(self.compiled.columns, self.rows, self.timezone)
            self.rows = None  # the frame holds them now
        return self._frame

    def dicts(self) -> list[dict]:
        """One dict of Python values per row: ``frame.to_dicts()``, without building a frame."""
        if self._frame is not None:
            return self._frame.to_dicts()
        from .rows import to_dicts

        return to_dicts(self.compiled.columns, self.rows, self.timezone)

    @property
    def sql(self) -> str:
        return self.compiled.sql

    @property
    def preview(self) -> str:
        return self.compiled.preview()

    @property
    def row_count(self) -> int:
        return self._frame.height if self._frame is not None else len(self.rows)

    def __repr__(self) -> str:
        return f"<QueryResult {self.row_count} rows from {self.backend} in {self.execute_seconds * 1000:.1f} ms>"


_CATALOG_SCHEMA = Schema.from_catalog()


@functools.lru_cache(maxsize=32)
def _catalog_with(custom: tuple) -> Schema:
    declared: dict[str, dict[str, str]] = {}
    for entity, key, kind in custom:
        declared.setdefault(entity, {})[key] = kind
    return Schema.from_catalog(custom_fields=declared)


def schema_for(entity: str, custom: tuple, reflect) -> Schema:
    """The catalog's schema with the declared custom fields, plus reflected tables when the
    spec names one outside the catalog."""
    if _CATALOG_SCHEMA.table(entity) is not None:
        return _catalog_with(custom) if custom else _CATALOG_SCHEMA
    base = _catalog_with(custom)
    return Schema({**reflect(), **base.tables})


def compile_spec(
    spec,
    backend: str = "postgres",
    *,
    schema: Schema | None = None,
    timezone: str = "UTC",
    now=None,
    params: dict | None = None,
    check_only: bool = False,
) -> CompiledQuery:
    """Parse, check and compile without touching a database (catalog entities only, unless a
    schema is given). ``params`` gives the values of rules with ``valueSource: "parameter"``;
    ``check_only`` lets parameters without a value pass (a spec checked before it is saved)."""
    compiler = engine(backend).compiler(
        schema or _CATALOG_SCHEMA, timezone=timezone, now=now, params=params, check_only=check_only
    )
    return compiler.compile(spec)


def run_postgres(
    engine: sa.Engine,
    spec,
    *,
    timezone: str = "UTC",
    now=None,
    timeout: float | None = None,
    handle: RunHandle | None = None,
    params: dict | None = None,
) -> QueryResult:
    """Run on PostgreSQL; the result comes as Arrow (see ``engines/postgres.py``)."""
    from .engines import postgres

    return postgres.run(engine, spec, timezone=timezone, now=now, timeout=timeout, handle=handle, params=params)


def run_duckdb(
    con,
    spec,
    *,
    timezone: str = "UTC",
    now=None,
    timeout: float | None = None,
    handle: RunHandle | None = None,
    params: dict | None = None,
) -> QueryResult:
    """Run on a DuckDB connection whose views mirror the CRM tables (a snapshot)."""
    from .engines import duckdb

    return duckdb.run(con, spec, timezone=timezone, now=now, timeout=timeout, handle=handle, params=params)
