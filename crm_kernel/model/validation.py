"""Write-side validation: pydantic models generated from the catalog.

``clean_create`` and ``clean_update`` turn user input into values ready for the
database, or raise :class:`~crm_kernel.errors.ValidationError` naming every bad field.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal
from functools import cache
from typing import Annotated, Any, Literal

import pydantic
from pydantic import AfterValidator

from ..errors import ValidationError
from .catalog import CUSTOM_FIELD_TYPES, Entity, Field
from .currencies import is_currency

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError(f"{value!r} is not an e-mail address")
    return value


def _currency(value: str) -> str:
    code = value.upper()
    if not is_currency(code):
        raise ValueError(f"{value!r} is not an ISO 4217 currency code")
    return code


def _colour(value: str) -> str:
    if not _COLOUR.match(value):
        raise ValueError(f"{value!r} is not a colour like #1a2b3c")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _identifier(value: str) -> str:
    if not _IDENTIFIER.match(value):
        raise ValueError(f"{value!r} must be lower case letters, digits and _, starting with a letter")
    return value


def _custom_field_type(value: str) -> str:
    if value not in CUSTOM_FIELD_TYPES:
        raise ValueError(f"{value!r} is not a custom field type; use one of {', '.join(CUSTOM_FIELD_TYPES)}")
    return value


_FORMATS = {"email": _email, "currency": _currency, "colour": _colour, "identifier": _identifier,
            "custom_field_type": _custom_field_type}


def _python_type(f: Field) -> Any:
    match f.type:
        case "text":
            checks = [AfterValidator(_FORMATS[f.format])] if f.format else []
            if not f.nullable:
                checks.append(AfterValidator(_not_blank))
            return Annotated[str, *checks] if checks else str
        case "integer":
            return Annotated[int, pydantic.Field(ge=f.minimum, le=f.maximum, strict=False)]
        case "number" | "money":
            return Annotated[
                Decimal,
                pydantic.Field(ge=f.minimum, le=f.maximum, max_digits=f.precision, decimal_places=f.scale,
                               allow_inf_nan=False),
            ]
        case "date":
            return dt.date
        case "timestamp":
            return dt.datetime
        case "enum":
            return Literal[f.values]
        case "boolean":
            return bool
        case "uuid":
            return uuid.UUID
        case "json":
            return dict | list
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
        if not entity.has_field(name):
            errors[name] = f"unknown field of {entity.name}"
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


def clean_create(entity: Entity, values: dict) -> dict:
    """Validated values for a new record; omitted fields are left to database defaults."""
    return _validate(entity, values, for_update=False)


def clean_update(entity: Entity, changes: dict) -> dict:
    """Validated changes; only the given fields are returned."""
    return _validate(entity, changes, for_update=True)
