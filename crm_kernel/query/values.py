"""Turn a rule's JSON value into the Python value its field's type needs, or refuse it.

Values keep their JSON types in a spec; numeric and date strings are accepted for number
and date fields and converted. Lists may also come as react-querybuilder's comma-separated
strings (``"a,b"``).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from ..errors import QuerySpecError
from .dates import UNITS
from .schema import Column

_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}
_INTEGER = re.compile(r"^[+-]?\d+$")


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def scalar(value: Any, column: Column, path: str, tz: dt.tzinfo) -> Any:
    """One value for ``column``; ``path`` names the rule for the error message."""
    kind = column.type

    def refuse(expected: str):
        return QuerySpecError(path, f"{column.name} is a {kind} field and needs {expected}, not {_show(value)}")

    if value is None:
        raise QuerySpecError(path, f"needs a value (use operator \"null\" to find empty {column.name})")
    if kind == "text":
        if not isinstance(value, str):
            raise refuse("text")
        return value
    if kind == "integer":
        if isinstance(value, bool):
            raise refuse("a whole number")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INTEGER.match(value.strip()):
            return int(value)
        raise refuse("a whole number")
    if kind in ("number", "money"):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise refuse("a number")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise refuse("a number") from None
        if not number.is_finite():
            raise refuse("a finite number")
        return number
    if kind == "date":
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value.strip())
            except ValueError:
                pass
        raise refuse("a date like \"2026-01-31\"")
    if kind == "timestamp":
        if isinstance(value, str):
            try:
                stamp = dt.datetime.fromisoformat(value.strip())
            except ValueError:
                raise refuse("a date or time like \"2026-01-31\" or \"2026-01-31T09:30:00Z\"") from None
            return stamp if stamp.tzinfo else stamp.replace(tzinfo=tz)
        raise refuse("a date or time like \"2026-01-31T09:30:00Z\"")
    if kind == "enum":
        if value not in column.values:
            raise QuerySpecError(path, f"{_show(value)} is not a value of {column.name}; "
                                       f"choose from {', '.join(column.values)}")
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


def as_list(value: Any, path: str) -> list:
    """A list value, from a JSON list or a comma-separated string."""
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
        return [item for item in items if item != ""]
    if isinstance(value, list):
        return value
    raise QuerySpecError(path, f"needs a list of values (or \"a,b,c\"), not {_show(value)}")


def listed(value: Any, column: Column, path: str, tz: dt.tzinfo) -> list:
    items = as_list(value, path)
    if not items:
        raise QuerySpecError(path, "needs at least one value")
    return [scalar(item, column, f"{path}[{i}]" if isinstance(value, list) else path, tz)
            for i, item in enumerate(items)]


def pair(value: Any, column: Column, path: str, tz: dt.tzinfo) -> tuple:
    """Two bounds, put in order when given high to low."""
    items = as_list(value, path)
    if len(items) != 2:
        raise QuerySpecError(path, f"needs two values, low and high, not {_show(value)}")
    low, high = (scalar(item, column, path, tz) for item in items)
    return (high, low) if high < low else (low, high)


def relative(value: Any, path: str) -> tuple[int, str]:
    """``{"amount": 30, "unit": "day"}`` -> ``(30, "day")``."""
    if not isinstance(value, dict) or set(value) - {"amount", "unit"}:
        raise QuerySpecError(path, f"needs {{\"amount\": N, \"unit\": \"day\"}}, not {_show(value)}")
    amount, unit = value.get("amount"), value.get("unit", "day")
    if isinstance(amount, str) and _INTEGER.match(amount.strip()):
        amount = int(amount)
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise QuerySpecError(f"{path}.amount", f"must be a whole number of units, 0 or more, not {_show(amount)}")
    if unit not in UNITS:
        raise QuerySpecError(f"{path}.unit", f"must be one of {', '.join(UNITS)}, not {_show(unit)}")
    return amount, unit
