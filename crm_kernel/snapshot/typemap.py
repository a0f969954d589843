"""How each PostgreSQL column type travels: the export query's expression, the Arrow type the
Parquet file holds and the DuckDB type of the view column. A table, so that a new type is
one line.

ADBC already delivers most types as the right Arrow type: uuid and json/jsonb as the
canonical ``arrow.uuid``/``arrow.json`` extension types, which pyarrow writes as Parquet's
UUID and JSON logical types, read back by DuckDB as UUID and JSON. Numeric arrives as text,
so it becomes a decimal of the column's declared precision and scale (DuckDB's DECIMAL
stops at 38 digits: wider or unconstrained numerics stay text). Enums travel as text and
the views cast them to DuckDB ENUM types with the same labels in the same order, so they
sort as in PostgreSQL. Types Parquet or DuckDB cannot hold as such (interval, inet, money,
ranges, domains, composites, ...) are exported as their PostgreSQL text form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .manifest import SkippedColumn

# pg_type.typname -> DuckDB type, for types ADBC delivers as the right Arrow type.
NATIVE = {
    "bool": "BOOLEAN",
    "int2": "SMALLINT",
    "int4": "INTEGER",
    "int8": "BIGINT",
    "float4": "FLOAT",
    "float8": "DOUBLE",
    "text": "VARCHAR",
    "varchar": "VARCHAR",
    "bpchar": "VARCHAR",
    "uuid": "UUID",
    "date": "DATE",
    "time": "TIME",
    "timestamp": "TIMESTAMP",
    "timestamptz": "TIMESTAMPTZ",
    "bytea": "BLOB",
    "json": "JSON",
    "jsonb": "JSON",
}

# Columns left out of snapshots, by type and by name, and why.
SKIPPED_TYPES = {"tsvector": "a full-text search index derived from other columns; DuckDB has no such type"}
TRACKING_COLUMN = "last_xact"
SKIPPED_NAMES = {TRACKING_COLUMN: "change-tracking bookkeeping for incremental exports"}

MAX_DECIMAL_PRECISION = 38
# Every type a view column can have besides enums (by name) and DECIMAL(p,s): a manifest's
# types are checked against this before they go into DuckDB SQL.
VIEW_TYPES = frozenset(NATIVE.values()) | {"VARCHAR"}
_DECIMAL = re.compile(r"DECIMAL\((\d{1,2}),(\d{1,2})\)")


@dataclass(frozen=True)
class ExportColumn:
    name: str
    pg_type: str  # as PostgreSQL spells it (format_type)
    duckdb_type: str  # an enum keeps its PostgreSQL name
    expression: str  # in the export query's SELECT list
    decimal: tuple[int, int] | None = None  # numeric(p, s): ADBC's text becomes decimal128(p, s)


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def is_view_type(duckdb_type: str, enums) -> bool:
    """Whether an exporter writes this view column type (``enums``: the snapshot's enum names)."""
    base = duckdb_type.removesuffix("[]")
    if base in VIEW_TYPES or base in enums:
        return True
    decimal = _DECIMAL.fullmatch(base)
    return bool(decimal) and 0 <= int(decimal[2]) <= int(decimal[1]) <= MAX_DECIMAL_PRECISION


def numeric_precision(typmod: int) -> tuple[int, int] | None:
    """(precision, scale) of numeric(p, s) when a DECIMAL can hold it: None when unconstrained,
    wider than 38 digits, or with a scale outside 0..p (PostgreSQL 15 allows both)."""
    if typmod < 4:
        return None
    precision, scale = (typmod - 4) >> 16, (typmod - 4) & 0x7FF
    return (precision, scale) if scale <= precision <= MAX_DECIMAL_PRECISION else None


def export_column(
    name: str, pg_type: str, base_type: str, kind: str, is_array: bool, typmod: int
) -> ExportColumn | SkippedColumn:
    """How one column is exported. ``base_type``/``kind`` are the pg_type name and typtype of
    the column's type, or of its elements when ``is_array``."""
    if name in SKIPPED_NAMES:
        return SkippedColumn(name, pg_type, SKIPPED_NAMES[name])
    if base_type in SKIPPED_TYPES and not is_array:
        return SkippedColumn(name, pg_type, SKIPPED_TYPES[base_type])
    suffix = "[]" if is_array else ""
    column = quote(name)
    if kind == "e":
        return ExportColumn(name, pg_type, base_type + suffix, column)
    if base_type == "numeric":
        precision = numeric_precision(typmod)
        if precision:
            return ExportColumn(name, pg_type, f"DECIMAL({precision[0]},{precision[1]}){suffix}", column, precision)
    elif base_type in NATIVE and kind == "b":
        return ExportColumn(name, pg_type, NATIVE[base_type] + suffix, column)
    as_text = f"{column}::text{suffix} AS {column}"
    return ExportColumn(name, pg_type, "VARCHAR" + suffix, as_text)
