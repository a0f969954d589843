"""The audit trail: who changed what, when, with the record before and after as JSON."""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

# Before/after images travel as jsonb text so that numbers keep their exact digits.
_INSERT = sa.text(
    "INSERT INTO audit_log (user_id, entity, entity_id, operation, before, after) "
    "VALUES (:user_id, :entity, :entity_id, :operation, CAST(:before AS jsonb), CAST(:after AS jsonb))"
)


def row_image(table: sa.Table) -> sa.ColumnElement:
    """``to_jsonb(<row>)`` of the table's current row as text, without the derived columns
    (search vector, snapshot change tracking)."""
    image = sa.func.to_jsonb(sa.literal_column(table.name, type_=JSONB)).op("-")(
        sa.literal_column("ARRAY['search_vector', 'last_xact']")
    )
    return sa.cast(image, sa.Text).label("_image")


def record(
    conn: sa.Connection, *, user_id, entity: str, entity_id, operation: str, before: str | None, after: str | None
) -> None:
    conn.execute(
        _INSERT,
        {
            "user_id": user_id,
            "entity": entity,
            "entity_id": entity_id,
            "operation": operation,
            "before": before,
            "after": after,
        },
    )


def exported(conn: sa.Connection, *, user_id, entity: str, spec: dict, rows: int, fmt: str, target: str) -> None:
    """An export: who took which query's rows out of the CRM, how many, in what form."""
    image = {"spec": spec, "rows": rows, "format": fmt, "target": target}
    conn.execute(
        _INSERT,
        {
            "user_id": user_id,
            "entity": entity,
            "entity_id": None,
            "operation": "export",
            "before": None,
            "after": json.dumps(image, default=str),
        },
    )
