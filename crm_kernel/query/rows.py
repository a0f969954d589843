"""Result rows as plain Python values, without polars: what a frame's ``to_dicts()`` gives.

An app that only reads a few rows to show them (the pipeline board's cards and totals) gets
them from here and never loads polars and numpy (about 75 MB resident per kernel). The values
follow the output columns' field types exactly as :mod:`.frames` builds a frame from the same
rows (``tests/test_query.py`` compares the two over the whole query corpus).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal
from zoneinfo import ZoneInfo

from .compilers import OutputColumn


def canonical_json(value) -> str | None:
    """One spelling for a JSON value, whatever engine produced it."""
    if value is None:
        return None
    if isinstance(value, str):
        value = json.loads(value, parse_int=_whole)
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _whole(digits: str) -> int | float:
    """A JSON whole number; one too long for Python's int() (4,300 digits) becomes a float
    (infinity), so that one record holding it does not break every query that shows it."""
    return int(digits) if len(digits) <= 4000 else float(digits)


def converter(column: OutputColumn, timezone: str) -> Callable:
    """How one column's non-null DB-API value becomes the value its frame would hold."""
    match column.type:
        case "integer":
            return int
        case "number" | "money" if column.scale is not None:
            places = Decimal(1).scaleb(-column.scale)
            return lambda v: Decimal(v).quantize(places, rounding=ROUND_DOWN)  # polars' Decimal cast truncates
        case "number" | "money" | "float":
            return float
        case "date" | "boolean":
            return lambda v: v
        case "timestamp":
            zone = ZoneInfo(timezone)
            return lambda v: v.astimezone(zone)
        case "json":
            return canonical_json
        case "tags":
            return lambda v: [None if tag is None else str(tag) for tag in v]
    return str  # text, enum, uuid


def to_dicts(columns: list[OutputColumn], rows: list, timezone: str) -> list[dict]:
    """DB-API rows (PostgreSQL) as one dict per row, keyed by the output columns' names."""
    convert = [(column.name, converter(column, timezone)) for column in columns]
    return [
        {name: None if value is None else to(value) for (name, to), value in zip(convert, row, strict=True)}
        for row in rows
    ]
