"""Write-side validation: pydantic models generated from the catalog.

``clean_create`` and ``clean_update`` turn user input into values ready for the
database, or raise :class:`~crm_kernel.errors.ValidationError` naming every bad field.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
import uuid
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Annotated, Any, Literal

import pydantic
from pydantic import AfterValidator, BeforeValidator

from ..errors import ValidationError
from .catalog import CUSTOM_FIELD_TYPES, DEALS, ENTITIES, Entity, Field
from .currencies import is_currency

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")


def shown(value: Any) -> str:
    """A value as messages show it: its repr, cut short (and never failing, even for a
    5000-digit number)."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a hostile __repr__ or an int beyond the repr limit
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError(f"{shown(value)} is not an e-mail address")
    return value


def _currency(value: str) -> str:
    code = value.upper()
    if not is_currency(code):
        raise ValueError(f"{shown(value)} is not an ISO 4217 currency code")
    return code


def _colour(value: str) -> str:
    if not _COLOUR.match(value):
        raise ValueError(f"{shown(value)} is not a colour like #1a2b3c")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _identifier(value: str) -> str:
    if not _IDENTIFIER.match(value):
        raise ValueError(f"{shown(value)} must be lower case letters, digits and _, starting with a letter")
    return value


def _custom_field_type(value: str) -> str:
    if value not in CUSTOM_FIELD_TYPES:
        raise ValueError(f"{shown(value)} is not a custom field type; use one of {', '.join(CUSTOM_FIELD_TYPES)}")
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (\\x00)")
    return value


# Integer fields are PostgreSQL ``integer`` columns (tests/test_catalog.py proves it).
INTEGER_RANGE = (-(2**31), 2**31 - 1)


def _integer(f: Field):
    low = INTEGER_RANGE[0] if f.minimum is None else max(INTEGER_RANGE[0], int(f.minimum))
    high = INTEGER_RANGE[1] if f.maximum is None else min(INTEGER_RANGE[1], int(f.maximum))

    def check(value: int) -> int:
        if value < low:
            raise ValueError(f"{shown(value)} is out of range: it must be greater than or equal to {low}")
        if value > high:
            raise ValueError(f"{shown(value)} is out of range: it must be less than or equal to {high}")
        return value

    return check


def as_decimal(value: Any) -> Decimal:
    """A finite Decimal from a Decimal, int, float (by its shortest repr) or numeric string."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float | str):
        raise ValueError(f"{shown(value)} is not a decimal number")
    try:
        number = Decimal(repr(value) if isinstance(value, float) else value)
    except (InvalidOperation, ValueError):
        raise ValueError(f"{shown(value)} is not a decimal number") from None
    if not number.is_finite():
        raise ValueError(f"{shown(value)} is not a finite number")
    return number


def _numeric(f: Field):
    """``numeric(precision, scale)``: say which limit a value breaks (decimal places or size)."""

    def check(value: Any) -> Decimal:
        number = as_decimal(value)
        places = max(0, -number.as_tuple().exponent)
        if f.scale is not None and places > f.scale:
            raise ValueError(f"{shown(value)} has more than {f.scale} decimal places")
        if f.precision is not None:
            whole = f.precision - (f.scale or 0)
            if abs(number) >= Decimal(10) ** whole:
                raise ValueError(f"{shown(value)} is too large: at most {whole} digits before the decimal point")
        if f.minimum is not None and number < Decimal(str(f.minimum)):
            raise ValueError(f"must be greater than or equal to {f.minimum:g}")
        if f.maximum is not None and number > Decimal(str(f.maximum)):
            raise ValueError(f"must be less than or equal to {f.maximum:g}")
        return number

    return check


# Python's datetimes span years 1 to 9999; a day's margin keeps every time zone's reading of
# a stored timestamp inside that span when it is read back.
_EARLIEST = dt.datetime(1, 1, 2)
_LATEST = dt.datetime(9999, 12, 30)


def _timestamp(value: dt.datetime) -> dt.datetime:
    if not _EARLIEST <= value.replace(tzinfo=None) <= _LATEST:
        raise ValueError(f"{value.isoformat()} is out of range: use a time between years 1 and 9999")
    return value


_JSON_DEPTH = 64


def json_value(value: Any, depth: int = 0) -> Any:
    """A value PostgreSQL's jsonb accepts, converting the Python objects that have an obvious
    JSON form (dates and times as ISO strings, Decimals as numbers, UUIDs as strings, tuples as
    lists); anything else is refused with ``ValueError``."""
    if depth > _JSON_DEPTH:
        raise ValueError(f"is nested more than {_JSON_DEPTH} levels deep")
    match value:
        case None | bool():
            return value
        case str():
            return _no_nul(value)
        case int():
            if abs(value) >= 10**1000:
                raise ValueError("holds a number too large to store")
            return value
        case float() if not math.isfinite(value):
            raise ValueError(f"holds {shown(value)}, which JSON cannot store")
        case float():
            return value
        case Decimal():
            number = as_decimal(value)
            if number.adjusted() >= 1000 or number.adjusted() < -1000:
                raise ValueError("holds a number too large or too small to store")
            return number
        case dt.datetime() | dt.date() | dt.time():
            return value.isoformat()
        case uuid.UUID():
            return str(value)
        case dict():
            bad = next((k for k in value if not isinstance(k, str)), None)
            if bad is not None:
                raise ValueError(f"has the key {bad!r}; JSON object keys are text")
            return {_no_nul(k): json_value(v, depth + 1) for k, v in value.items()}
        case list() | tuple():
            return [json_value(v, depth + 1) for v in value]
    raise ValueError(f"holds {type(value).__name__} {shown(value)}, which is not a JSON value")


def _json_document(value: Any) -> dict | list:
    if not isinstance(value, dict | list | tuple):
        raise ValueError(f"must be a JSON object or list, not {type(value).__name__}")
    return json_value(value)


def _custom_fields(value: dict) -> dict:
    """The keys themselves must be usable as ``custom_fields.<key>``; types are checked against
    the declarations in the writing transaction (services/custom_fields.py)."""
    if not isinstance(value, dict):
        raise ValueError(f"must be an object of key: value, not {type(value).__name__}")
    return value


def _entity(value: str) -> str:
    if value not in ENTITIES:
        raise ValueError(f"{shown(value)} is not an entity; use one of {', '.join(ENTITIES)}")
    return value


def _deal_fields(value: Any) -> list:
    """A stage's required fields: names of deal fields a user can fill."""
    writable = {f.name for f in DEALS.writable_fields}
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise ValueError("must be a list of deal field names")
    unknown = [name for name in value if name not in writable]
    if unknown:
        raise ValueError(f"{', '.join(map(repr, unknown))} is not a deal field a user can fill")
    return value


MAX_TAGS, MAX_TAG_LENGTH = 100, 100


def _tags(value: list[str]) -> list[str]:
    """Tags as kept: trimmed, none empty, each once whatever its case (the first spelling wins)."""
    if len(value) > MAX_TAGS:
        raise ValueError(f"{len(value)} tags are more than {MAX_TAGS}")
    kept, seen = [], set()
    for tag in value:
        tag = _no_nul(tag).strip()
        if not tag:
            raise ValueError("a tag must not be empty")
        if len(tag) > MAX_TAG_LENGTH:
            raise ValueError(f"tag {shown(tag)} is longer than {MAX_TAG_LENGTH} characters")
        if tag.casefold() not in seen:
            seen.add(tag.casefold())
            kept.append(tag)
    return kept


MAX_OPTIONS = 500


def _custom_field_options(value: Any) -> list:
    """A multiselect's options: texts, none empty, each once."""
    if not isinstance(value, list) or not value:
        raise ValueError('must be a non-empty list of texts, e.g. ["red", "green"]')
    if len(value) > MAX_OPTIONS:
        raise ValueError(f"{len(value)} options are more than {MAX_OPTIONS}")
    for option in value:
        if not isinstance(option, str) or not option.strip():
            raise ValueError(f"{shown(option)} is not an option: options are texts, none empty")
        if len(option) > MAX_TAG_LENGTH:
            raise ValueError(f"option {shown(option)} is longer than {MAX_TAG_LENGTH} characters")
    twice = sorted({o for o in value if value.count(o) > 1})
    if twice:
        raise ValueError(f"lists {shown(twice[0])} twice")
    return value


_FORMATS = {
    "email": _email,
    "currency": _currency,
    "colour": _colour,
    "identifier": _identifier,
    "custom_field_type": _custom_field_type,
    "entity": _entity,
    "deal_fields": _deal_fields,
    "custom_field_options": _custom_field_options,
}


def _python_type(f: Field) -> Any:
    match f.type:
        case "text":
            checks = [AfterValidator(_no_nul)]
            if f.format:
                checks.append(AfterValidator(_FORMATS[f.format]))
            if not f.nullable:
                checks.append(AfterValidator(_not_blank))
            return Annotated[str, *checks]
        case "integer":
            return Annotated[int, pydantic.Field(strict=False), AfterValidator(_integer(f))]
        case "number" | "money":
            # Checked before pydantic's Decimal: a float such as 0.1 + 0.2 is refused for its
            # decimal places, not for its total digits.
            return Annotated[Decimal, BeforeValidator(_numeric(f))]
        case "date":
            return dt.date
        case "timestamp":
            return Annotated[dt.datetime, AfterValidator(_timestamp)]
        case "enum":
            return Literal[f.values]
        case "boolean":
            return bool
        case "uuid":
            return uuid.UUID
        case "tags":
            return Annotated[list[Annotated[str, pydantic.Field(strict=True)]], AfterValidator(_tags)]
        case "json" if f.name == "custom_fields":
            return Annotated[dict, BeforeValidator(_custom_fields), AfterValidator(json_value)]
        case "json":
            checks = [AfterValidator(_FORMATS[f.format])] if f.format else []
            return Annotated[Any, BeforeValidator(_json_document), *checks]
    raise TypeError(f"field type {f.type!r} is not writable")


@cache
def _model(entity: Entity, for_update: bool) -> type[pydantic.BaseModel]:
    fields = {}
    for f in entity.writable_fields:
        kind = _python_type(f)
        if f.nullable:
            kind = kind | None
        # On create a required field has no default; on update nothing is required, but a
        # non-nullable field still refuses an explicit None because its type excludes it.
        default = ... if (f.required and not for_update) else None
        fields[f.name] = (kind, default)
    suffix = "Update" if for_update else "Create"
    return pydantic.create_model(
        f"{entity.singular.replace(' ', '')}{suffix}",
        __config__=pydantic.ConfigDict(extra="forbid", str_strip_whitespace=False),
        **fields,
    )


def _check_names(entity: Entity, values: dict) -> dict[str, str]:
    errors = {}
    for name in values:
        if not isinstance(name, str) or not entity.has_field(name):
            errors[str(name)] = f"unknown field of {entity.name}"
        elif entity.field(name).readonly or entity.field(name).hidden:
            errors[name] = "is set by the system and cannot be written"
    return errors


def _validate(entity: Entity, values: dict, for_update: bool) -> dict:
    errors = _check_names(entity, values)
    if errors:
        raise ValidationError(errors, entity.name)
    try:
        model = _model(entity, for_update).model_validate(values)
    except pydantic.ValidationError as exc:
        raise ValidationError(_pydantic_errors(exc), entity.name) from None
    return model.model_dump(exclude_unset=True)


def _pydantic_errors(exc: pydantic.ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else "__root__"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            message = "is required"
        errors.setdefault(name, message)
    return errors


def merged(values: Any, fields: dict) -> dict:
    """A service call's positional dict and keyword arguments as one dict of field values."""
    if values is not None and not isinstance(values, dict):
        raise ValidationError({"values": f"must be a dict of field: value, not {type(values).__name__}"})
    return {**(values or {}), **fields}


@cache
def _filter_adapter(f: Field) -> pydantic.TypeAdapter:
    """A field's type without its formats (filtering by a malformed e-mail simply matches nothing)."""
    return pydantic.TypeAdapter(_python_type(dataclasses.replace(f, format=None, nullable=True)))


def clean_filter(entity: Entity, equals: dict) -> dict:
    """Values to compare fields with (``list(owner_id=...)``), converted to their field's type."""
    errors, clean = {}, {}
    for name, value in equals.items():
        if not entity.has_field(name) or entity.field(name).type == "search":
            errors[str(name)] = f"unknown field of {entity.name}"
        elif value is None:
            clean[name] = None
        else:
            try:
                clean[name] = _filter_adapter(entity.field(name)).validate_python(value)
            except pydantic.ValidationError as exc:
                errors[name] = _pydantic_errors(exc).popitem()[1]
    if errors:
        raise ValidationError(errors, entity.name)
    return clean


def clean_create(entity: Entity, values: dict) -> dict:
    """Validated values for a new record; omitted fields are left to database defaults."""
    return _validate(entity, values, for_update=False)


def clean_update(entity: Entity, changes: dict) -> dict:
    """Validated changes; only the given fields are returned."""
    return _validate(entity, changes, for_update=True)


# -- custom fields: values as stored (JSON), checked against their declared type ----------------

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?)?$")
BIGINT_RANGE = (-(2**63), 2**63 - 1)  # queries read integer custom fields as bigint


def _fits(kind: str, value: Any) -> bool:
    match kind:
        case "text":
            return isinstance(value, str)
        case "integer":
            return type(value) is int and BIGINT_RANGE[0] <= value <= BIGINT_RANGE[1]
        case "number":
            return type(value) in (int, float, Decimal) and math.isfinite(value)
        case "boolean":
            return isinstance(value, bool)
        case "date":
            return isinstance(value, str) and bool(_ISO_DATE.match(value)) and _parses(dt.date, value)
        case "timestamp":
            return isinstance(value, str) and bool(_ISO_TIMESTAMP.match(value)) and _parses(dt.datetime, value)
    return False


def _parses(kind: type, text: str) -> bool:
    try:
        value = kind.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return kind is dt.date or _EARLIEST <= value.replace(tzinfo=None) <= _LATEST


_EXPECTED = {
    "text": "text",
    "integer": "a whole number (within 64-bit range)",
    "number": "a number",
    "boolean": "true or false",
    "date": "a date (YYYY-MM-DD)",
    "timestamp": "a date and time (ISO 8601, e.g. 2024-05-01T09:30:00+02:00)",
}


def custom_value_problem(kind: str, value: Any, options: list[str] | None = None) -> str | None:
    """Why a stored custom-field value (as JSON gives it back) does not fit its declared
    ``kind`` (and, for a multiselect, its ``options``), or None when it fits. JSON null fits
    every type."""
    if value is None:
        return None
    if kind == "multiselect":
        return _multiselect_problem(value, options or [])
    if _fits(kind, value):
        return None
    return f"{shown(value)} is not {_EXPECTED[kind]} (declared {kind})"


def _multiselect_problem(value: Any, options: list[str]) -> str | None:
    choices = ", ".join(map(repr, options))
    if not isinstance(value, list):
        return f"{shown(value)} is not a list of options (declared multiselect of {choices})"
    for item in value:
        if item not in options or not isinstance(item, str):
            return f"{shown(item)} is not one of the options {choices}"
    twice = [item for item in options if value.count(item) > 1]
    if twice:
        return f"{shown(twice[0])} is chosen twice"
    return None
