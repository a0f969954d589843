"""Run a spec on PostgreSQL or on DuckDB over a snapshot, and time it."""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass

import duckdb
import polars as pl
import sqlalchemy as sa

from ..errors import QuerySpecError
from . import frames
from .compilers import COMPILERS, CompiledQuery
from .schema import Schema, reflect_duckdb, reflect_postgres
from .spec import QuerySpec, parse

BACKENDS = tuple(COMPILERS)


@dataclass
class QueryResult:
    """A query's rows with what it took to get them."""

    frame: pl.DataFrame
    compiled: CompiledQuery
    backend: str
    compile_seconds: float
    execute_seconds: float

    @property
    def sql(self) -> str:
        return self.compiled.sql

    @property
    def preview(self) -> str:
        return self.compiled.preview()

    @property
    def row_count(self) -> int:
        return self.frame.height

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
    custom = ()
    if _names_custom_fields(spec):
        try:
            custom = tuple(tuple(r) for r in con.execute(_CUSTOM_FIELDS_SQL).fetchall())
        except duckdb.CatalogException:  # a snapshot taken before custom fields existed
            pass
    return schema_for(spec.entity, custom, lambda: reflect_duckdb(con))


def compile_spec(spec, backend: str = "postgres", *, schema: Schema | None = None, timezone: str = "UTC",
                 now=None) -> CompiledQuery:
    """Parse, check and compile without touching a database (catalog entities only, unless a schema is given)."""
    if backend not in COMPILERS:
        raise QuerySpecError("backend", f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    return COMPILERS[backend](schema or _CATALOG_SCHEMA, timezone=timezone, now=now).compile(spec)


def run_postgres(engine: sa.Engine, spec, *, timezone: str = "UTC", now=None) -> QueryResult:
    spec = parse(spec)
    started = time.perf_counter()
    with engine.connect() as conn:
        schema = postgres_schema(conn, spec)
        compiled = compile_spec(spec, "postgres", schema=schema, timezone=timezone, now=now)
        compiled_at = time.perf_counter()
        rows = conn.execute(compiled.statement).all()
    frame = frames.from_rows(compiled.columns, rows, timezone)
    done = time.perf_counter()
    return QueryResult(frame, compiled, "postgres", compiled_at - started, done - compiled_at)


def run_duckdb(con, spec, *, timezone: str = "UTC", now=None) -> QueryResult:
    """Run on a DuckDB connection whose views mirror the CRM tables (a snapshot)."""
    spec = parse(spec)
    started = time.perf_counter()
    schema = duckdb_schema(con, spec)
    compiled = compile_spec(spec, "duckdb", schema=schema, timezone=timezone, now=now)
    bound = compiled.bound()
    params = [bound.params[name] for name in bound.positiontup]
    compiled_at = time.perf_counter()
    table = con.sql(str(bound), params=params).to_arrow_table()
    frame = frames.from_arrow(compiled.columns, table, timezone)
    done = time.perf_counter()
    return QueryResult(frame, compiled, "duckdb", compiled_at - started, done - compiled_at)
