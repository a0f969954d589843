"""Declared custom fields: ``crm.custom_fields.define("companies", "tier", "text")``.

A declaration gives a key of an entity's ``custom_fields`` a type, which makes
``custom_fields.<key>`` usable in queries like any built-in field. Record writes check declared
keys against their type (``RecordService._check_custom_fields``); declaring or re-typing a key
is refused while stored records hold values that do not fit, so queries can rely on the type.
"""

from __future__ import annotations

import sqlalchemy as sa

from ..errors import ValidationError
from ..model import ENTITIES, tables
from ..model.validation import custom_value_problem
from .records import RecordService

_LISTED = 10  # offending records named in the message; the rest are counted


class CustomFieldService(RecordService):
    def define(
        self, entity: str, key: str, type: str = "text", label: str | None = None, options: list[str] | None = None
    ) -> dict:
        """Declare (or re-type) ``custom_fields.<key>`` of ``entity``; a ``multiselect`` lists
        its ``options`` (``define("deals", "channels", "multiselect", options=["web", "phone"])``).

        Refused with ``ValidationError`` when stored records (deleted ones included: they can
        be restored) hold values of ``key`` that are not of ``type``; the message names them."""
        existing = self.list(entity=entity, key=key, limit=1) if isinstance(entity, str) else []
        if existing:
            return self.update(existing[0]["id"], type=type, label=label, options=options)
        return self.create(entity=entity, key=key, type=type, label=label, options=options)

    def declared(self, entity: str) -> dict[str, str]:
        """``{key: type}`` of the entity's declared custom fields."""
        return {row["key"]: row["type"] for row in self.list(entity=entity, limit=None, order_by="key")}

    def _insert(self, conn: sa.Connection, clean: dict, inherited: tuple[str, ...] = ()) -> dict:
        _check_options(clean.get("type"), clean.get("options"))
        return super()._insert(conn, clean, inherited)

    def _update(self, conn: sa.Connection, before: dict, values: dict, operation: str) -> dict:
        if "type" in values or "options" in values:
            _check_options(values.get("type", before["type"]), values.get("options", before["options"]))
        return super()._update(conn, before, values, operation)

    def _after_write(self, conn: sa.Connection, row, values: dict, before: dict | None) -> None:
        super()._after_write(conn, row, values, before)
        if row["deleted_at"] is not None:
            return
        declaration = ("entity", "key", "type", "options")
        if before is None or before["deleted_at"] is not None or any(row[k] != before[k] for k in declaration):
            _check_entity(row["entity"])
            _check_stored_values(conn, row["entity"], row["key"], row["type"], row["options"])


def _check_options(kind: str | None, options: list | None) -> None:
    """A multiselect lists its options; no other type has any (sql/018_multiselect.sql)."""
    if kind == "multiselect" and options is None:
        raise ValidationError(
            {"options": 'a multiselect lists its options, e.g. ["web", "phone"]'}, "custom_field_definitions"
        )
    if kind != "multiselect" and options is not None:
        raise ValidationError(
            {"options": f"only a multiselect has options, not a {kind} field"}, "custom_field_definitions"
        )


def _check_entity(name: str) -> None:
    target = ENTITIES.get(name)
    if target is None or not target.business:
        names = ", ".join(e.name for e in ENTITIES.values() if e.business)
        raise ValidationError({"entity": f"unknown entity {name!r}; choose from {names}"}, "custom_field_definitions")


def _check_stored_values(conn: sa.Connection, entity: str, key: str, kind: str, options: list | None) -> None:
    """Refuse the declaration when stored values of ``key`` do not fit ``kind``. The table is
    locked against writers until this transaction ends, so none can slip in a value that was
    checked against the old declaration."""
    conn.exec_driver_sql(f'LOCK TABLE "{entity}" IN SHARE MODE')
    table = tables.table(entity)
    rows = conn.execute(
        sa.select(table.c.id, table.c.custom_fields[key].label("value"))
        .where(table.c.custom_fields.has_key(key))
        .order_by(table.c.id)
    ).all()
    bad = [(row.id, problem) for row in rows if (problem := custom_value_problem(kind, row.value, options))]
    if not bad:
        return
    listed = "; ".join(f"{rid}: {problem}" for rid, problem in bad[:_LISTED])
    more = f"; and {len(bad) - _LISTED} more" if len(bad) > _LISTED else ""
    raise ValidationError(
        {
            "type": f"{len(bad)} record(s) of {entity} hold custom_fields.{key} values that are not {kind}: "
            f"{listed}{more}; fix or remove them first"
        },
        "custom_field_definitions",
    )
