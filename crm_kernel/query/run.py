"""Run a spec on PostgreSQL or on DuckDB over a snapshot, and time it.

``timeout`` (seconds; None or 0: no limit) bounds each statement of a run, ``handle`` lets
another thread cancel it (see :mod:`.control`); either way the run raises QueryCancelled.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import psycopg
import sqlalchemy as sa

from ..errors import QuerySpecError
from .compilers import COMPILERS, CompiledQuery
from .control import QueryCancelled, RunHandle, statement
from .schema import Schema, reflect_duckdb, reflect_postgres
from .spec import QuerySpec, parse

if TYPE_CHECKING:
    import polars as pl

BACKENDS = tuple(COMPILERS)


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
        return (f"<QueryResult {self.row_count} rows from {self.backend} in "
                f"{self.execute_seconds * 1000:.1f} ms>")


_CATALOG_SCHEMA = Schema.from_catalog()
_CUSTOM_FIELDS_SQL = (
    "SELECT entity, key, type FROM custom_field_definitions WHERE deleted_at IS NULL ORDER BY entity, key"
)


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


def _names_custom_fields(spec: QuerySpec) -> bool:
    """Whether the spec mentions a custom field (only then are their declarations read)."""
    return "custom_fields." in json.dumps(spec.source)  # parse() left only JSON in source


def postgres_schema(conn: sa.Connection, spec: QuerySpec) -> Schema:
    """What ``spec`` can name in this PostgreSQL database."""
    custom = ()
    if _names_custom_fields(spec):
        custom = tuple(tuple(r) for r in conn.exec_driver_sql(_CUSTOM_FIELDS_SQL).all())
    return schema_for(spec.entity, custom, lambda: reflect_postgres(conn))


def duckdb_schema(con, spec: QuerySpec) -> Schema:
    """What ``spec`` can name in a snapshot."""
    import duckdb  # here, not at the top: a kernel that only asks PostgreSQL never loads it

    custom = ()
    if _names_custom_fields(spec):
        try:
            custom = tuple(tuple(r) for r in con.execute(_CUSTOM_FIELDS_SQL).fetchall())
        except duckdb.CatalogException:  # a snapshot taken before custom fields existed
            pass
    return schema_for(spec.entity, custom, lambda: reflect_duckdb(con))


def compile_spec(spec, backend: str = "postgres", *, schema: Schema | None = None, timezone: str = "UTC",
                 now=None, params: dict | None = None, check_only: bool = False) -> CompiledQuery:
    """Parse, check and compile without touching a database (catalog entities only, unless a
    schema is given). ``params`` gives the values of rules with ``valueSource: "parameter"``;
    ``check_only`` lets parameters without a value pass (a spec checked before it is saved)."""
    if backend not in COMPILERS:
        raise QuerySpecError("backend", f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    compiler = COMPILERS[backend](schema or _CATALOG_SCHEMA, timezone=timezone, now=now, params=params,
                                  check_only=check_only)
    return compiler.compile(spec)


def run_postgres(engine: sa.Engine, spec, *, timezone: str = "UTC", now=None, timeout: float | None = None,
                 handle: RunHandle | None = None, params: dict | None = None) -> QueryResult:
    spec = parse(spec)
    started = time.perf_counter()
    try:
        with engine.connect() as conn:
            if timeout:  # for this transaction only: the pooled connection keeps no limit afterwards
                conn.execute(sa.text("SELECT set_config('statement_timeout', :ms, true)"),
                             {"ms": str(max(1, round(timeout * 1000)))})
            schema = postgres_schema(conn, spec)
            compiled = compile_spec(spec, "postgres", schema=schema, timezone=timezone, now=now, params=params)
            compiled_at = time.perf_counter()
            driver = conn.connection.driver_connection
            with statement(handle, getattr(driver, "cancel_safe", driver.cancel)):
                rows = conn.execute(compiled.statement).all()
    except Exception as exc:  # the limit also covers the look-ups before the query
        canceled = _server_cancel(exc)
        if canceled is None:
            raise
        raise _stopped(handle, timeout, "statement timeout" in str(canceled)) from None
    done = time.perf_counter()
    return QueryResult(compiled, "postgres", compiled_at - started, done - compiled_at, timezone, rows=rows)


def run_duckdb(con, spec, *, timezone: str = "UTC", now=None, timeout: float | None = None,
               handle: RunHandle | None = None, params: dict | None = None) -> QueryResult:
    """Run on a DuckDB connection whose views mirror the CRM tables (a snapshot)."""
    import duckdb

    spec = parse(spec)
    started = time.perf_counter()
    schema = duckdb_schema(con, spec)
    compiled = compile_spec(spec, "duckdb", schema=schema, timezone=timezone, now=now, params=params)
    bound = compiled.bound()
    params = [bound.params[name] for name in bound.positiontup]
    compiled_at = time.perf_counter()
    timer = _Timer(timeout, con.interrupt)  # DuckDB has no statement timeout of its own
    try:
        with statement(handle, con.interrupt), timer:
            table = con.sql(str(bound), params=params).to_arrow_table()
    except duckdb.InterruptException:
        raise _stopped(handle, timeout, timer.fired) from None
    from . import frames

    frame = frames.from_arrow(compiled.columns, table, timezone)
    done = time.perf_counter()
    return QueryResult(compiled, "duckdb", compiled_at - started, done - compiled_at, timezone, _frame=frame)


def _server_cancel(exc: BaseException) -> psycopg.errors.QueryCanceled | None:
    """PostgreSQL's "canceling statement" error behind ``exc``, however it was wrapped."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, psycopg.errors.QueryCanceled):
            return exc
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
        seen += 1
    return None


def _stopped(handle: RunHandle | None, timeout: float | None, timed_out: bool) -> QueryCancelled:
    if timed_out and not (handle is not None and handle.cancelled):
        return QueryCancelled("timeout", timeout)
    return QueryCancelled("cancelled")


class _Timer:
    """Calls ``interrupt`` once ``seconds`` have passed inside the ``with`` block (never without
    a limit); ``fired`` tells whether it did."""

    def __init__(self, seconds: float | None, interrupt):
        self.seconds, self.fired = seconds, False
        self._lock = threading.Lock()
        self._interrupt = interrupt
        self._timer: threading.Timer | None = None
        self._done = False

    def _fire(self) -> None:
        with self._lock:
            if not self._done:
                self.fired = True
                self._interrupt()

    def __enter__(self):
        if self.seconds:
            self._timer = threading.Timer(self.seconds, self._fire)
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:
            self._done = True  # a timer firing from now on must not interrupt the next statement
        if self._timer is not None:
            self._timer.cancel()
