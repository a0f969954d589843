"""Turn a rule's JSON value into the Python value its field's type needs, or refuse it.

Values keep their JSON types in a spec; numeric and date strings are accepted for number
and date fields and converted. Lists may also come as react-querybuilder's comma-separated
strings (``"a,b"``). A value must also fit what both engines can bind: whole numbers within
64 bits, numbers with at most 38 digits (DuckDB's widest decimal), instants between the years
1 and 9999 in UTC.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from ..errors import QuerySpecError
from .dates import UNITS
from .schema import SchemaColumn
from .spec import show

_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}
_INTEGER = re.compile(r"^[+-]?\d{1,40}$")  # longer digit strings are refused, not parsed (Python stops at 4,300)
BIGINT = 2**63 - 1
MAX_DIGITS = 38


def scalar(value: Any, column: SchemaColumn, path: str, tz: dt.tzinfo) -> Any:
    """One value for ``column``; ``path`` names the rule for the error message."""
    kind = column.type

    def refuse(expected: str):
        return QuerySpecError(path, f"{column.name} is a {kind} field and needs {expected}, not {show(value)}")

    if value is None:
        raise QuerySpecError(path, f'needs a value (use operator "null" to find empty {column.name})')
    if kind == "text":
        if not isinstance(value, str):
            raise refuse("text")
        return value
    if kind == "integer":
        if isinstance(value, bool):
            raise refuse("a whole number")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(value, str) and _INTEGER.match(value.strip()):
            value = int(value)
        if not isinstance(value, int):
            raise refuse("a whole number")
        if abs(value) > BIGINT:
            raise refuse(f"a whole number between -{BIGINT} and {BIGINT}")
        return value
    if kind in ("number", "money"):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise refuse("a number")
        if isinstance(value, int) and abs(value) >= 10**MAX_DIGITS:  # before str(): huge ints have none
            raise refuse(f"a number of at most {MAX_DIGITS} digits")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise refuse("a number") from None
        if not number.is_finite():
            raise refuse("a finite number")
        if digits(number) > MAX_DIGITS:
            raise refuse(f"a number of at most {MAX_DIGITS} digits")
        return number
    if kind == "date":
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value.strip())
            except ValueError:
                pass
        raise refuse('a date like "2026-01-31"')
    if kind == "timestamp":
        if isinstance(value, str):
            try:
                stamp = dt.datetime.fromisoformat(value.strip())
            except ValueError:
                raise refuse('a date or time like "2026-01-31" or "2026-01-31T09:30:00Z"') from None
            stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=tz)
            try:
                stamp.astimezone(dt.UTC)
            except OverflowError:
                raise refuse("a time between the years 1 and 9999 in UTC") from None
            return stamp
        raise refuse('a date or time like "2026-01-31T09:30:00Z"')
    if kind == "enum":
        if value not in column.values:
            raise QuerySpecError(
                path, f"{show(value)} is not a value of {column.name}; choose from {', '.join(column.values)}"
            )
        return value
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise refuse("true or false")
    if kind == "uuid":
        if isinstance(value, uuid.UUID):
            return value
        if isinstance(value, str):
            try:
                return uuid.UUID(value.strip())
            except ValueError:
                pass
        raise refuse("an id (uuid)")
    raise TypeError(f"no value conversion for {kind} fields")  # the operator table allows none


def digits(number: Decimal) -> int:
    """Digits needed to write ``number`` without an exponent (``1E+3``: 4, ``0.05``: 2)."""
    _, places, exponent = number.as_tuple()
    if exponent >= 0:
        return len(places) + exponent
    return max(len(places), -exponent)


def as_list(value: Any, path: str) -> list:
    """A list value, from a JSON list or a comma-separated string."""
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
        return [item for item in items if item != ""]
    if isinstance(value, list):
        return value
    raise QuerySpecError(path, f'needs a list of values (or "a,b,c"), not {show(value)}')


def listed(value: Any, column: SchemaColumn, path: str, tz: dt.tzinfo) -> list:
    items = as_list(value, path)
    if not items:
        raise QuerySpecError(path, "needs at least one value")
    return [
        scalar(item, column, f"{path}[{i}]" if isinstance(value, list) else path, tz) for i, item in enumerate(items)
    ]


def pair(value: Any, column: SchemaColumn, path: str, tz: dt.tzinfo) -> tuple:
    """Two bounds, put in order when given high to low."""
    items = as_list(value, path)
    if len(items) != 2:
        raise QuerySpecError(path, f"needs two values, low and high, not {show(value)}")
    low, high = (scalar(item, column, path, tz) for item in items)
    return (high, low) if high < low else (low, high)


def relative(value: Any, path: str) -> tuple[int, str]:
    """``{"amount": 30, "unit": "day"}`` -> ``(30, "day")``."""
    if not isinstance(value, dict) or set(value) - {"amount", "unit"}:
        raise QuerySpecError(path, f'needs {{"amount": N, "unit": "day"}}, not {show(value)}')
    amount, unit = value.get("amount"), value.get("unit", "day")
    if isinstance(amount, str) and _INTEGER.match(amount.strip()):
        amount = int(amount)
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise QuerySpecError(f"{path}.amount", f"must be a whole number of units, 0 or more, not {show(amount)}")
    if unit not in UNITS:
        raise QuerySpecError(f"{path}.unit", f"must be one of {', '.join(UNITS)}, not {show(unit)}")
    return amount, unit
