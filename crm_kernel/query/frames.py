"""Result frames: the same polars schema from every engine, decided by the compiled columns.

Both engines hand back Arrow (PostgreSQL's small row reads hand back Python objects); all end in a frame whose
dtypes follow the output columns' field types, so one spec gives equal frames on both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from .compilers import OutputColumn
from .rows import canonical_json

if TYPE_CHECKING:  # imported by whoever made the table: rows read as Python objects need no pyarrow
    import pyarrow as pa


def dtype(column: OutputColumn, timezone: str) -> pl.DataType:
    match column.type:
        case "integer":
            return pl.Int64()
        case "number" | "money":
            return pl.Decimal(38, column.scale) if column.scale is not None else pl.Float64()
        case "float":
            return pl.Float64()
        case "date":
            return pl.Date()
        case "timestamp":
            return pl.Datetime("us", timezone)
        case "boolean":
            return pl.Boolean()
        case "tags":
            return pl.List(pl.String())
    return pl.String()  # text, enum, uuid, json


def from_rows(columns: list[OutputColumn], rows: list, timezone: str) -> pl.DataFrame:
    """A frame from DB-API rows (PostgreSQL)."""
    data = list(zip(*rows, strict=True)) if rows else [()] * len(columns)
    series = []
    for column, values in zip(columns, data, strict=True):
        if column.type == "uuid":
            values = [None if v is None else str(v) for v in values]
        elif column.type == "json":
            values = [canonical_json(v) for v in values]
        series.append(pl.Series(column.name, values, dtype=dtype(column, timezone), strict=False))
    return pl.DataFrame(series)


_UUID_PARTS = ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))  # hex digits between the dashes


def _canonical(expr: pl.Expr) -> pl.Expr:
    """canonical_json of each value, computed once per distinct value: most rows of a column
    share a few documents (``{}`` above all), and the Python call is the cost."""
    distinct = expr.unique(maintain_order=True)  # evaluated twice below: the same order both times
    return expr.replace_strict(
        distinct, distinct.map_elements(canonical_json, return_dtype=pl.String), return_dtype=pl.String
    )


def from_arrow(columns: list[OutputColumn], table: pa.Table, timezone: str) -> pl.DataFrame:
    """A frame from an Arrow table (DuckDB, or PostgreSQL through ADBC), cast to the same dtypes as
    :func:`from_rows`."""
    frame = pl.from_arrow(table, rechunk=False)
    if not isinstance(frame, pl.DataFrame):
        frame = frame.to_frame()
    exprs = []
    for column in columns:
        target = dtype(column, timezone)
        expr = pl.col(column.name)
        if column.type == "json":
            expr = _canonical(expr.cast(pl.String))
        elif column.type == "uuid" and frame.schema[column.name] == pl.Binary:  # PostgreSQL's 16 bytes (ADBC)
            hexed = expr.bin.encode("hex")
            expr = pl.concat_str([hexed.str.slice(a, b - a) for a, b in _UUID_PARTS], separator="-")
        elif frame.schema[column.name] == target:
            pass  # already the dtype PostgreSQL's frame has: no copy
        elif column.type == "timestamp":
            expr = expr.cast(pl.Datetime("us", "UTC")).dt.convert_time_zone(timezone)
        else:
            expr = expr.cast(target)
        exprs.append(expr.alias(column.name))
    return frame.select(exprs)
