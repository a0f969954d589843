"""Polars columns from numpy draws: gathering from pools, nulls, dates, text, uuids and JSON.

The generator draws numbers (indexes into pools, seconds, days); these turn them into the
columns COPY writes, without a Python loop over rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

DAY = 86_400


def gather(pool: Sequence, idx: np.ndarray, dtype=pl.String) -> pl.Series:
    return pl.Series(values=list(pool), dtype=dtype).gather(idx)


def blank(series: pl.Series, missing: np.ndarray) -> pl.Series:
    """``series`` with nulls where ``missing`` is true."""
    return choose(~missing, series) if missing.any() else series


def ref(ids: pl.Series, idx: np.ndarray) -> pl.Series:
    """Foreign keys: ``ids[idx]``, null where ``idx`` is -1."""
    return blank(ids.gather(np.maximum(idx, 0)), idx < 0)


def timestamps(seconds: np.ndarray, missing: np.ndarray | None = None) -> pl.Series:
    series = pl.Series(values=seconds * 1000, dtype=pl.Int64).cast(pl.Datetime("ms", "UTC"))
    return series if missing is None else blank(series, missing)


def dates(days: np.ndarray, missing: np.ndarray | None = None) -> pl.Series:
    series = pl.Series(values=days, dtype=pl.Int32).cast(pl.Date)
    return series if missing is None else blank(series, missing)


def digits(values: np.ndarray, width: int) -> pl.Series:
    return pl.Series(values=values).cast(pl.String).str.zfill(width)


def concat(*parts: pl.Series | str) -> pl.Series:
    """Row-wise concatenation of series and literal strings."""
    return pl.select(pl.concat_str([pl.lit(p) for p in parts])).to_series()


def choose(condition: np.ndarray, then: pl.Series, otherwise: pl.Series | None = None) -> pl.Series:
    """``then`` where ``condition`` holds, else ``otherwise`` (or null)."""
    return pl.select(
        pl.when(pl.lit(pl.Series(values=condition)))
        .then(pl.lit(then))
        .otherwise(None if otherwise is None else pl.lit(otherwise))
    ).to_series()


def numbered(head: pl.Series, tail: pl.Series | str) -> pl.Series:
    """``head + tail``, with a running number after ``head`` on repeats so that every value is unique.

    Heads hold no digits, so a numbered value never meets another row's plain one.
    """
    whole = pl.concat_str("head", "tail")
    use = whole.cum_count().over(whole)
    frame = pl.DataFrame({"head": head}).with_columns(tail=pl.lit(tail))
    numbered = pl.concat_str("head", use.cast(pl.String), "tail")
    return frame.select(pl.when(use == 1).then(whole).otherwise(numbered)).to_series()


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_HEX_POSITIONS = [i for i in range(36) if i not in (8, 13, 18, 23)]


HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
HEX_POSITIONS = [i for i in range(36) if i not in (8, 13, 18, 23)]


def uuids(rng: np.random.Generator, n: int) -> pl.Series:
    """Random (version 4) uuids as text, drawn from the seeded generator."""
    raw = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    text[:, HEX_POSITIONS[0::2]] = HEX[raw >> 4]
    text[:, HEX_POSITIONS[1::2]] = HEX[raw & 0x0F]
    return pl.Series(values=text.view("S36").ravel()).cast(pl.String)


def decimal_text(units: np.ndarray, scale: int) -> pl.Series:
    """Integers counted in ``10**-scale`` (cents for 2) as numeric text with ``scale`` decimals,
    as PostgreSQL prints a ``numeric(p, scale)``: 1234 at scale 2 is ``12.34``."""
    whole = pl.Series(values=units // 10**scale).cast(pl.String)
    return concat(whole, ".", digits(units % 10**scale, scale))


def json_object(frame: pl.DataFrame, timezone: str = "UTC") -> pl.Series:
    """Each row of ``frame`` as a JSON object's text, values written as PostgreSQL's ``to_jsonb``
    writes them: numbers and decimals bare, dates as ``"2026-01-15"``, timestamps with
    ``timezone``'s offset (``"2026-01-15T09:05:00+00:00"``), text escaped, nulls as null.

    A column named ``<key>__json`` holds JSON text already and becomes key ``<key>`` as it is.
    """
    parts: list = ["{"]
    for i, (name, dtype) in enumerate(frame.schema.items()):
        column = pl.col(name)
        if name.endswith(RAW):  # already JSON text
            value, name = column, name[: -len(RAW)]
        elif dtype == pl.String:
            value = pl.concat_str(
                pl.lit('"'),
                column.str.replace_all("\\", "\\\\", literal=True).str.replace_all('"', '\\"', literal=True),
                pl.lit('"'),
            )
        elif isinstance(dtype, pl.Datetime):
            value = pl.concat_str(
                pl.lit('"'), column.dt.convert_time_zone(timezone).dt.strftime("%Y-%m-%dT%H:%M:%S%:z"), pl.lit('"')
            )
        elif dtype == pl.Date:
            value = pl.concat_str(pl.lit('"'), column.dt.strftime("%Y-%m-%d"), pl.lit('"'))
        elif dtype == pl.Boolean:
            value = pl.when(column).then(pl.lit("true")).otherwise(pl.lit("false"))
        else:  # integers and decimals: their text is their JSON
            value = column.cast(pl.String)
        parts += [f'{", " if i else ""}"{name}": ', value.fill_null("null")]
    parts.append("}")
    return frame.select(pl.concat_str([p if isinstance(p, pl.Expr) else pl.lit(p) for p in parts])).to_series()


RAW = "__json"  # a column named "x__json" holds the JSON text of the value of key "x"
