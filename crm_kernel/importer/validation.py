"""Bulk validation: every row checked at once with polars expressions, by the catalog's rules
(the same ones ``model/validation.py`` applies to one record: required, e-mail, currency,
enum values, integer ranges, numeric precision, scale and minimum, dates).

``check_fields`` turns the mapped text columns into text the database parses (for COPY) and a
frame of problems: one row per bad cell with its row, target and reason.
"""

from __future__ import annotations

from decimal import Decimal

import polars as pl

from ..model import catalog
from ..model.catalog import Field
from ..model.currencies import iso_4217
from ..model.validation import _EMAIL, INTEGER_RANGE

PROBLEM_SCHEMA = {"_row": pl.Int64, "target": pl.String, "value": pl.String, "reason": pl.String}
_NUMBER = r"^[+-]?(\d+(\.\d*)?|\.\d+)$"
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%d.%m.%Y")
_NAIVE = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d")
_AWARE = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%.f%:z")
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")


_SCIENTIFIC = r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d{1,4}$"


def written_out(column: pl.Series) -> pl.Series:
    """Scientific notation (1e3) is a number to the services too: written out in full, in
    Python for the few cells that use it."""
    found = column.drop_nulls().str.strip_chars()
    found = found.filter(found.str.contains(_SCIENTIFIC)).unique()
    if found.is_empty():
        return column
    return column.str.strip_chars().replace({v: format(Decimal(v), "f") for v in found.to_list()})


def problems_frame(rows: list[dict] | None = None) -> pl.DataFrame:
    return pl.DataFrame(rows or [], schema=PROBLEM_SCHEMA)


def field_rule(f: Field, raw: pl.Expr, date_format: str | None = None) -> tuple[pl.Expr, pl.Expr]:
    """(text to store, reason or null) for one field's raw text column; null stays null."""
    present = raw.is_not_null()
    when = pl.when
    match f.type:
        case "text":
            clean = raw.str.to_uppercase() if f.format == "currency" else raw
            reason = when(raw.str.contains("\x00", literal=True)).then(
                pl.lit("must not contain the NUL character (\\x00)")
            )
            if f.format == "email":
                reason = reason.when(present & ~raw.str.contains(_EMAIL.pattern)).then(
                    pl.lit("is not an e-mail address")
                )
            elif f.format == "currency":
                reason = reason.when(present & ~clean.is_in(sorted(iso_4217()))).then(
                    pl.lit("is not an ISO 4217 currency code")
                )
            return clean, reason.otherwise(None)
        case "integer":
            # "1,200" and a spreadsheet's "12.0" are whole numbers too.
            number = raw.str.replace_all(r"[\s,_]", "").str.replace(r"\.0*$", "").cast(pl.Int64, strict=False)
            low = INTEGER_RANGE[0] if f.minimum is None else max(INTEGER_RANGE[0], int(f.minimum))
            high = INTEGER_RANGE[1] if f.maximum is None else min(INTEGER_RANGE[1], int(f.maximum))
            reason = (
                when(present & number.is_null())
                .then(pl.lit("is not a whole number"))
                .when(number < low)
                .then(pl.lit(f"is out of range: it must be greater than or equal to {low}"))
                .when(number > high)
                .then(pl.lit(f"is out of range: it must be less than or equal to {high}"))
                .otherwise(None)
            )
            return number.cast(pl.String), reason
        case "number" | "money":
            text = raw.str.replace_all(r"[\s,_$€£¥]", "")  # thousands separators, currency signs
            digits = text.str.replace(r"^[+-]", "")
            whole = digits.str.replace(r"\..*$", "").str.replace(r"^0+", "").str.len_chars()
            places = (
                pl.when(digits.str.contains(".", literal=True))
                .then(digits.str.replace(r"^[^.]*\.", "").str.len_chars())
                .otherwise(0)
            )
            negative = text.str.starts_with("-") & text.str.contains(r"[1-9]")
            reason = when(present & ~text.str.contains(_NUMBER)).then(pl.lit("is not a decimal number"))
            if f.scale is not None:
                reason = reason.when(places > f.scale).then(pl.lit(f"has more than {f.scale} decimal places"))
            if f.precision is not None:
                room = f.precision - (f.scale or 0)
                reason = reason.when(whole > room).then(
                    pl.lit(f"is too large: at most {room} digits before the decimal point")
                )
            if f.minimum is not None and f.minimum == 0:
                reason = reason.when(negative).then(pl.lit("must be greater than or equal to 0"))
            if f.maximum is not None:
                reason = reason.when(text.cast(pl.Float64, strict=False) > f.maximum).then(
                    pl.lit(f"must be less than or equal to {f.maximum:g}")
                )
            return text, reason.otherwise(None)
        case "date":
            formats = (date_format,) if date_format else _DATE_FORMATS
            parsed = pl.coalesce(
                [
                    *(raw.str.to_date(fmt, strict=False) for fmt in formats),
                    # a spreadsheet's date cell comes as a date at midnight
                    raw.str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False).dt.date(),
                ]
            )
            reason = (
                when(present & parsed.is_null()).then(pl.lit(f"is not a date ({'or '.join(formats)})")).otherwise(None)
            )
            return parsed.cast(pl.String), reason
        case "timestamp":
            naive = pl.coalesce([raw.str.to_datetime(fmt, strict=False) for fmt in _NAIVE])
            aware = pl.coalesce([raw.str.to_datetime(fmt, strict=False, time_zone="UTC") for fmt in _AWARE])
            if date_format:
                naive = pl.coalesce([naive, raw.str.to_datetime(date_format, strict=False)])
            ok = naive.is_not_null() | aware.is_not_null()
            reason = when(present & ~ok).then(pl.lit("is not a date and time (ISO 8601)")).otherwise(None)
            # Naive times are read in the session's time zone (CRM_TIMEZONE) by PostgreSQL.
            clean = pl.coalesce(
                [aware.dt.strftime("%Y-%m-%dT%H:%M:%S%.f+00:00"), naive.dt.strftime("%Y-%m-%d %H:%M:%S%.f")]
            )
            return clean, reason
        case "enum":
            clean = raw.str.to_lowercase().str.replace_all(r"[\s\-]+", "_")
            reason = (
                when(present & ~clean.is_in(list(f.values)))
                .then(pl.lit(f"is not one of {', '.join(f.values)}"))
                .otherwise(None)
            )
            return clean, reason
        case "boolean":
            low = raw.str.to_lowercase()
            clean = when(low.is_in(_TRUE)).then(pl.lit("true")).when(low.is_in(_FALSE)).then(pl.lit("false"))
            reason = when(present & ~low.is_in(_TRUE + _FALSE)).then(pl.lit("is not true or false")).otherwise(None)
            return clean.otherwise(None), reason
        case "tags":  # text[] (sql/015 on main): "vip; partner" or "vip, partner"
            items = listed(raw)
            quoted = items.list.eval(pl.lit('"') + pl.element().str.replace_all(r'(["\\])', r"\$1") + pl.lit('"'))
            clean = pl.concat_str(pl.lit("{"), quoted.list.join(","), pl.lit("}"))
            reason = (
                when(raw.str.contains("\x00", literal=True))
                .then(pl.lit("must not contain the NUL character (\\x00)"))
                .otherwise(None)
            )
            return clean, reason
        case "json":

            def bad_json(value: str) -> str | None:
                import json

                try:
                    parsed = json.loads(value)
                except ValueError:
                    return "is not JSON"
                return None if isinstance(parsed, dict | list) else "must be a JSON object or list"

            reason = raw.map_elements(bad_json, return_dtype=pl.String, skip_nulls=True)
            return raw, reason
    raise TypeError(f"a {f.type} field cannot be imported")


def listed(raw: pl.Expr) -> pl.Expr:
    """A list written in one cell, "vip; partner" or "vip, partner": trimmed, none empty, each once."""
    return (
        raw.str.replace_all(",", ";")
        .str.split(";")
        .list.eval(pl.element().str.strip_chars().filter(pl.element().str.strip_chars() != ""))
        .list.unique(maintain_order=True)
    )


def multiplied(raw: pl.Expr, factor: float) -> pl.Expr:
    """A number's text times ``factor``, exactly (revenue given in millions)."""
    product = raw.str.replace_all(r"[\s,_]", "").cast(pl.Decimal(38, 12), strict=False) * Decimal(str(factor))
    text = product.cast(pl.String).str.replace(r"(\.\d*?)0+$", "$1").str.replace(r"\.$", "")
    return pl.when(product.is_null()).then(raw).otherwise(text)


def check_fields(
    frame: pl.DataFrame, entity: str, targets: list[str], date_format: str | None, multiply: dict[str, float]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Validate and convert the entity's own fields among ``targets`` (columns of ``frame``).

    Returns (frame with each target as text to store, problems)."""
    e = catalog.entity(entity)
    rules: dict[str, tuple[pl.Expr, pl.Expr]] = {}
    for target in targets:
        if not e.has_field(target):
            continue
        raw = pl.col(target)
        if e.field(target).type in ("number", "money"):
            frame = frame.with_columns(written_out(frame[target]))
        if target in multiply:
            raw = multiplied(raw, multiply[target])
        rules[target] = field_rule(e.field(target), raw, date_format)
    checked = frame.with_columns(
        *(clean.alias(t) for t, (clean, _) in rules.items()),
        *(reason.alias(f"_why:{t}") for t, (_, reason) in rules.items()),
    )
    problems = [
        frame.select(
            "_row", pl.lit(t).alias("target"), pl.col(t).alias("value"), checked[f"_why:{t}"].alias("reason")
        ).filter(pl.col("reason").is_not_null())
        for t in rules
    ]
    required = [f.name for f in e.writable_fields if f.required and f.name in targets]
    for name in required:  # present but blank in some rows
        problems.append(
            frame.filter(pl.col(name).is_null()).select(
                "_row",
                pl.lit(name).alias("target"),
                pl.lit(None, pl.String).alias("value"),
                pl.lit("is required").alias("reason"),
            )
        )
    found = pl.concat([p.cast(PROBLEM_SCHEMA) for p in problems]) if problems else problems_frame()
    return checked.drop([f"_why:{t}" for t in rules]), found


def missing_required(entity: str, targets: set[str]) -> list[str]:
    """Required fields no column, template or default fills (the stage has a default)."""
    e = catalog.entity(entity)
    return [f.name for f in e.writable_fields if f.required and f.name not in targets and f.name != "stage_id"]
