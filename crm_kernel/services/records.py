"""Create, read, update, soft-delete and restore records of any business entity.

Every write is one transaction holding: the validated change, ``updated_at``/``updated_by``,
a version bump (optimistic concurrency), an audit row and a change notification. A write
that fails leaves nothing behind.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..access import rules
from ..errors import AccessDeniedError, ConflictError, NotFoundError, ValidationError
from ..model import catalog, tables
from ..model.validation import (
    clean_create,
    clean_filter,
    clean_update,
    custom_value_problem,
    merged,
)
from . import audit, changes

if TYPE_CHECKING:
    from ..client import CRM


def as_uuid(value: Any, name: str = "id") -> uuid.UUID:
    """Ids are accepted as ``uuid.UUID`` or as their string form everywhere."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValidationError({name: f"{value!r} is not a valid id"}) from None


class RecordService:
    """The operations every business entity shares. ``crm.companies``, ``crm.contacts``, ..."""

    def __init__(self, crm: CRM, entity_name: str):
        self.crm = crm
        self.entity = catalog.entity(entity_name)
        self.table = tables.table(entity_name)
        self.columns = [self.table.c[f.name] for f in self.entity.visible_fields]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.entity.name}>"

    # -- reading --------------------------------------------------------------------------

    def get(self, record_id, *, include_deleted: bool = False) -> dict:
        """One record as a dict; ``NotFoundError`` when missing (or deleted, unless asked)."""
        rid = as_uuid(record_id)
        with self.crm.engine.connect() as conn:
            row = conn.execute(sa.select(*self.columns).where(self.table.c.id == rid)).mappings().first()
        if row is None or (row["deleted_at"] is not None and not include_deleted):
            raise NotFoundError(f"no {self.entity.singular.lower()} with id {rid}")
        return dict(row)

    def list(
        self,
        *,
        limit: int | None = 100,
        offset: int = 0,
        order_by: str | list[str] | None = None,
        include_deleted: bool = False,
        **equals,
    ) -> list[dict]:
        """Records whose fields equal the given values, e.g. ``crm.deals.list(owner_id=me)``.

        For anything richer use the query engine (``crm.query``).
        """
        stmt = self._filtered(sa.select(*self.columns), include_deleted, equals)
        stmt = stmt.order_by(*self._order(order_by)).offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.crm.engine.connect() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings()]

    def count(self, *, include_deleted: bool = False, **equals) -> int:
        stmt = self._filtered(sa.select(sa.func.count()).select_from(self.table), include_deleted, equals)
        with self.crm.engine.connect() as conn:
            return conn.execute(stmt).scalar_one()

    def _filtered(self, stmt, include_deleted: bool, equals: dict):
        for name, value in clean_filter(self.entity, equals).items():
            column = self.table.c[name]
            stmt = stmt.where(column.is_(None) if value is None else column == value)
        if self.entity.soft_delete and not include_deleted:
            stmt = stmt.where(self.table.c.deleted_at.is_(None))
        return stmt

    def _order(self, order_by) -> list:
        names = [order_by] if isinstance(order_by, str) else list(order_by or self.entity.default_order)
        clauses = []
        for name in names:
            column = self.table.c.get(name.lstrip("-"))
            if column is None:
                raise ValidationError({"order_by": f"unknown field {name.lstrip('-')!r} of {self.entity.name}"})
            clauses.append(column.desc() if name.startswith("-") else column.asc())
        return clauses

    # -- writing --------------------------------------------------------------------------

    def create(self, values: dict | None = None, /, **fields) -> dict:
        """Create a record from a dict and/or keyword arguments; returns it as stored."""
        clean = clean_create(self.entity, merged(values, fields))
        with self.crm.transaction() as conn:
            return self._insert(conn, clean)

    def insert(self, conn: sa.Connection, values: dict) -> dict:
        """:meth:`create` inside the caller's transaction ``conn``, so that one unit of work
        (an ingested message: its new contact and its activity) commits or fails whole."""
        return self._insert(conn, clean_create(self.entity, values))

    def update(
        self, record_id, changes: dict | None = None, /, *, expected_version: int | None = None, **fields
    ) -> dict:
        """Change some fields. With ``expected_version`` a record changed meanwhile raises ``ConflictError``."""
        clean = clean_update(self.entity, merged(changes, fields))
        with self.crm.transaction() as conn:
            before = self._lock(conn, record_id, expected_version)
            if not clean:
                return self._public(before)
            return self._update(conn, before, clean, "update")

    def delete(self, record_id, *, expected_version: int | None = None) -> dict:
        """Soft-delete: the record disappears from lists and queries but can be restored."""
        with self.crm.transaction() as conn:
            before = self._lock(conn, record_id, expected_version)
            return self._update(conn, before, {"deleted_at": sa.func.now()}, "delete")

    def restore(self, record_id, *, expected_version: int | None = None) -> dict:
        """Bring back a soft-deleted record."""
        with self.crm.transaction() as conn:
            before = self._lock(conn, record_id, expected_version, deleted=True)
            return self._update(conn, before, {"deleted_at": None}, "restore")

    # -- the pieces every write is made of ------------------------------------------------

    def _lock(self, conn: sa.Connection, record_id, expected_version: int | None, deleted: bool = False) -> dict:
        """Lock the row for this transaction and check it is in the expected state and version."""
        rid = as_uuid(record_id)
        stmt = sa.select(*self.columns, audit.row_image(self.table)).where(self.table.c.id == rid).with_for_update()
        row = conn.execute(stmt).mappings().first()
        noun = self.entity.singular.lower()
        if row is None:
            # Row-level security hides from FOR UPDATE a row the user may read but not change.
            if conn.execute(sa.select(self.table.c.id).where(self.table.c.id == rid)).first() is not None:
                raise AccessDeniedError(
                    f"{self.entity.name}: {self.crm.user_email} ({self.crm.user_role}) may not change {noun} {rid}",
                    table=self.entity.name,
                )
            raise NotFoundError(f"no {noun} with id {rid}")
        if (row["deleted_at"] is not None) != deleted:
            state = "is deleted" if row["deleted_at"] is not None else "is not deleted"
            raise NotFoundError(f"{noun} {rid} {state}")
        if expected_version is not None and row["version"] != expected_version:
            raise ConflictError(
                f"{noun} {rid} was changed by someone else (version {row['version']}, you had "
                f"{expected_version}); reload it and try again",
                current=self._public(row),
            )
        return dict(row)

    def _insert(self, conn: sa.Connection, clean: dict, inherited: tuple[str, ...] = ()) -> dict:
        """Insert ``clean``; references named in ``inherited`` were copied from a row this
        transaction has locked and are not checked again (see :meth:`_check_references`)."""
        clean = rules.default_owner(self.crm, self.entity.name, clean)
        rules.check_write(self.crm, conn, self.entity.name, clean, None)
        self._check_references(conn, clean, inherited)
        actor = self.crm.user_id
        stmt = (
            sa.insert(self.table)
            .values(**clean, created_by=actor, updated_by=actor)
            .returning(*self.columns, audit.row_image(self.table))
        )
        row = conn.execute(stmt).mappings().one()
        self._after_write(conn, row, clean, None)
        self._record(conn, row, "create", before=None)
        return self._public(row)

    def _update(self, conn: sa.Connection, before: dict, values: dict, operation: str) -> dict:
        # A reference set to the value the locked row already holds is not a new one (a form
        # sending every field back): it stays valid even if its target was soft-deleted since.
        unchanged = tuple(
            r.field for r in self.entity.relations if r.field in values and values[r.field] == before[r.field]
        )
        rules.check_write(self.crm, conn, self.entity.name, values, before)
        self._check_references(conn, values, unchanged)
        stmt = (
            sa.update(self.table)
            .where(self.table.c.id == before["id"])
            .values(**values, version=self.table.c.version + 1, updated_at=sa.func.now(), updated_by=self.crm.user_id)
            .returning(*self.columns, audit.row_image(self.table))
        )
        row = conn.execute(stmt).mappings().one()
        self._after_write(conn, row, values, before)
        self._record(conn, row, operation, before=before["_image"])
        return self._public(row)

    def _record(self, conn: sa.Connection, row, operation: str, before: str | None) -> None:
        audit.record(
            conn,
            user_id=self.crm.user_id,
            entity=self.entity.name,
            entity_id=row["id"],
            operation=operation,
            before=before,
            after=row["_image"],
        )
        changes.publish(conn, self.entity.name, row["id"], operation, row["version"])

    def _after_write(self, conn: sa.Connection, row, values: dict, before: dict | None) -> None:
        """Checks that need the row as written, inside its transaction (a failure rolls it back)."""
        if "custom_fields" in values:
            self._check_custom_fields(conn, row["custom_fields"])

    def _check_custom_fields(self, conn: sa.Connection, custom: dict) -> None:
        """Declared custom fields must hold values of their type. The declarations are read after
        the row is written, so a concurrent re-typing (which locks the table) is either seen here
        or sees this row (services/custom_fields.py)."""
        if not custom:
            return
        definitions = tables.table("custom_field_definitions")
        declared = conn.execute(
            sa.select(definitions.c.key, definitions.c.type, definitions.c.options).where(
                definitions.c.entity == self.entity.name,
                definitions.c.deleted_at.is_(None),
                definitions.c.key.in_(list(custom)),
            )
        ).all()
        errors = {}
        for key, kind, options in declared:
            problem = custom_value_problem(kind, custom.get(key), options)
            if problem:
                errors[f"custom_fields.{key}"] = problem
        if errors:
            raise ValidationError(errors, self.entity.name)

    def _check_references(self, conn: sa.Connection, values: dict, inherited: tuple[str, ...] = ()) -> None:
        """Every id given for a relation must name a live record of the target entity.

        Ids in ``inherited`` were copied from a row the caller holds locked (a deal's company on
        its stage-change activity): they stay valid even when their target is soft-deleted."""
        errors = {}
        for relation in self.entity.relations:
            value = values.get(relation.field)
            if value is None or isinstance(value, sa.ColumnElement) or relation.field in inherited:
                continue
            target = tables.table(relation.target)
            stmt = sa.select(target.c.id).where(target.c.id == value)
            if "deleted_at" in target.c:
                stmt = stmt.where(target.c.deleted_at.is_(None))
            if conn.execute(stmt).first() is None:
                noun = catalog.entity(relation.target).singular.lower()
                errors[relation.field] = f"no {noun} with id {value}"
        if errors:
            raise ValidationError(errors, self.entity.name)

    @staticmethod
    def _public(row) -> dict:
        return {k: v for k, v in dict(row).items() if k != "_image"}
