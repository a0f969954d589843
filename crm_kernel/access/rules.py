"""The write rules of sql/017, checked before a write so that a refusal names the field and the
table instead of surfacing as a database error (the database enforces them anyway, for every
login in role crm_app; the schema's owner is bound only by these checks).

- analysts write nothing but their own saved queries; stages, settings, exchange rates, custom
  fields, products, users and teams are written by admins only;
- a record with an owner (deals, activities, companies, contacts) is changed by its owner, by a
  manager of a team its owner is in, or by an admin; it is handed only to the acting user's
  teammates (the members and managers of the teams they belong to, and for a manager the teams
  they manage).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from ..errors import AccessDeniedError

if TYPE_CHECKING:
    from ..client import CRM

ADMIN_ONLY = frozenset(
    {
        "pipeline_stages",
        "crm_settings",
        "exchange_rates",
        "custom_field_definitions",
        "products",
        "users",
        "teams",
        "team_members",
    }
)
OWNED = frozenset({"deals", "activities", "companies", "contacts"})
PERSONAL = frozenset({"saved_queries"})  # everyone's own workspace, analysts' too (the policy keeps it theirs)


def check_write(crm: CRM, conn: sa.Connection, table: str, values: dict, before: dict | None) -> None:
    """Refuse with :class:`AccessDeniedError` a write the acting user may not make; ``before``
    is the record as it was (None for a new one)."""
    role = crm.user_role
    if role == "admin":
        return
    who = f"{crm.user_email} ({role})"
    if table in PERSONAL:
        return
    if role == "analyst":
        raise AccessDeniedError(f"{table}: {who} may read but not change records", table=table)
    if table in ADMIN_ONLY:
        raise AccessDeniedError(f"{table}: only admins change these; {who} may not", table=table)
    if table not in OWNED:
        return
    if before is not None and not _owner_in(conn, before.get("owner_id"), "crm_writable_owners"):
        raise AccessDeniedError(
            f"{table}: {who} may not change a record owned by someone outside their teams",
            table=table,
            field="owner_id",
        )
    if "owner_id" in values and (before is None or values["owner_id"] != before.get("owner_id")):
        if not _owner_in(conn, values["owner_id"], "crm_assignable_owners"):
            raise AccessDeniedError(
                f"{table}.owner_id: {who} may give a record only to themselves or a member of their own teams",
                table=table,
                field="owner_id",
            )


def default_owner(crm: CRM, table: str, values: dict) -> dict:
    """A new owned record without an owner belongs to the acting user (who could not see it
    otherwise), unless an admin makes it."""
    if table in OWNED and values.get("owner_id") is None and crm.user_role != "admin":
        return {**values, "owner_id": crm.user_id}
    return values


def _owner_in(conn: sa.Connection, owner, function: str) -> bool:
    if owner is None:
        return False
    return bool(conn.execute(sa.text(f"SELECT CAST(:o AS uuid) = ANY ({function}())"), {"o": str(owner)}).scalar())
