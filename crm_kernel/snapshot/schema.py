"""The tables an export copies, read from PostgreSQL's catalog inside the export transaction:
every table of the ``public`` schema (partitioned tables once, as their parent), its columns,
its one-column primary key and whether its changes are tracked for incremental exports."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from ..model.catalog import SECRET_TABLES
from . import manifest
from .typemap import TRACKING_COLUMN, ExportColumn, export_column, quote

_COLUMNS = """
SELECT c.relname AS table_name, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS pg_type,
       coalesce(e.typname, t.typname) AS base_type, coalesce(e.typtype, t.typtype) AS kind,
       e.oid IS NOT NULL AS is_array, a.atttypmod AS typmod
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY c.relname, a.attnum
"""

# Per table: the row estimate, a one-column primary key, and whether all four change-tracking
# triggers of sql/003 and sql/006 are in place and enabled.
_TABLES = """
SELECT c.relname AS table_name, c.oid::bigint AS oid, greatest(c.reltuples, 0)::bigint AS estimated_rows,
       (SELECT a.attname FROM pg_constraint k
        JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
        WHERE k.conrelid = c.oid AND k.contype = 'p' AND cardinality(k.conkey) = 1) AS key,
       (SELECT count(*) = 4 FROM pg_trigger g
        WHERE g.tgrelid = c.oid AND g.tgenabled <> 'D'
          AND g.tgname IN ('crm_stamp_last_xact', 'crm_record_deletions', 'crm_record_truncation',
                           'crm_record_key_change')) AS triggers
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
"""

_ENUMS = """
SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)
FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
GROUP BY t.typname
"""


@dataclass(frozen=True)
class ExportTable:
    name: str
    columns: tuple[ExportColumn, ...]
    skipped: tuple[manifest.SkippedColumn, ...]
    key: str | None
    tracked: bool
    estimated_rows: int
    oid: int  # a table dropped and created again has a new one

    @property
    def soft_delete(self) -> bool:
        return any(c.name == "deleted_at" and c.duckdb_type == "TIMESTAMPTZ" for c in self.columns)

    @property
    def file(self) -> str:
        return manifest.table_file(self.name)

    def select(self, where: str | None = None) -> str:
        """The export query; ``where`` narrows it (incremental exports)."""
        query = f"SELECT {', '.join(c.expression for c in self.columns)} FROM {quote(self.name)}"
        return f"{query} WHERE {where}" if where else query

    def entry(self, rows: int, from_base: int = 0) -> manifest.Table:
        """This table's entry in the manifest."""
        return manifest.Table(
            file=self.file,
            rows=rows,
            columns=tuple(manifest.SnapshotColumn(c.name, c.pg_type, c.duckdb_type) for c in self.columns),
            skipped=self.skipped,
            key=self.key,
            tracked=self.tracked,
            soft_delete=self.soft_delete,
            pg_oid=self.oid,
            from_base=from_base,
        )


def read_tables(conn: sa.Connection) -> list[ExportTable]:
    """Every table of the public schema, the largest first (so parallel copies end together)."""
    columns: dict[str, list] = {}
    for row in conn.exec_driver_sql(_COLUMNS):
        columns.setdefault(row.table_name, []).append(
            export_column(row.name, row.pg_type, row.base_type, row.kind, row.is_array, row.typmod)
        )
    tables = []
    for row in conn.exec_driver_sql(_TABLES):
        if row.table_name in SECRET_TABLES:
            continue
        found = columns.get(row.table_name, [])
        kept = tuple(c for c in found if isinstance(c, ExportColumn))
        skipped = tuple(c for c in found if isinstance(c, manifest.SkippedColumn))
        tracked = bool(row.triggers and row.key and any(c.name == TRACKING_COLUMN for c in skipped))
        tables.append(ExportTable(row.table_name, kept, skipped, row.key, tracked, row.estimated_rows, row.oid))
    return sorted(tables, key=lambda t: (-t.estimated_rows, t.name))


def read_enums(conn: sa.Connection, tables: list[ExportTable]) -> dict[str, list[str]]:
    """The labels of the enum types the exported columns use, in their PostgreSQL order."""
    used = {c.duckdb_type.removesuffix("[]") for t in tables for c in t.columns}
    return {name: list(labels) for name, labels in conn.exec_driver_sql(_ENUMS) if name in used}
