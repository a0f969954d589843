"""Saved queries: named specs, private to their owner unless shared."""

from __future__ import annotations

import sqlalchemy as sa

from ..errors import NotFoundError, ValidationError
from .records import RecordService, as_uuid


class SavedQueryService(RecordService):
    """``crm.saved_queries``: ``save``, ``load``, ``list``, ``rename``, ``delete`` by name (or id)."""

    def save(self, name: str, spec, *, shared: bool = False, description: str | None = None) -> dict:
        """Save ``spec`` under ``name`` (replacing your query of that name). The spec is checked
        first; the parameters its rules name must be declared under ``"parameters"`` (with a
        type, a label and a default when there is one), so whoever runs it knows what to give."""
        from ..query import compile_spec, parse
        from ..query.engines import ENGINES
        from ..query.spec import spec_parameters

        parsed = parse(spec)
        declared = parsed.source.get("parameters") or {}
        undeclared = [name for name in spec_parameters(parsed) if name not in declared]
        if undeclared:
            raise ValidationError(
                {
                    "spec.parameters": f'declare parameter {undeclared[0]!r}, e.g. "parameters": '
                    f'{{"{undeclared[0]}": {{"type": "money", "label": "..."}}}}'
                },
                "saved_queries",
            )
        with self.crm.engine.connect() as conn:
            compile_spec(parsed, schema=ENGINES["postgres"].schema(conn, parsed), check_only=True)
        existing = self._find(name, own_only=True, missing_ok=True)
        values = {"spec": parsed.source, "entity": parsed.entity, "shared": shared, "description": description}
        if existing:
            return self.update(existing["id"], values)
        return self.create(name=name, owner_id=self.crm.user_id, **values)

    def load(self, name_or_id) -> dict:
        """The spec saved under this name (yours first, then shared ones); counts the use."""
        record = self._find(name_or_id)
        # Usage statistics (no audit row, no version bump), counted by the database for a query
        # the acting user may read: whoever runs a shared query may not change it
        # (sql/019_saved_query_use.sql).
        with self.crm.engine.begin() as conn:
            conn.execute(sa.text("SELECT crm_count_saved_query_use(:id)"), {"id": record["id"]})
        return record["spec"]

    def visible(self) -> list[dict]:
        """Your saved queries and those others shared, most used first."""
        t = self.table
        stmt = (
            sa.select(*self.columns)
            .where(t.c.deleted_at.is_(None), sa.or_(t.c.owner_id == self.crm.user_id, t.c.shared))
            .order_by(t.c.use_count.desc(), t.c.name)
        )
        with self.crm.engine.connect() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings()]

    def rename(self, name_or_id, new_name: str, *, expected_version: int | None = None) -> dict:
        """Rename one of your saved queries; a name you already use is a ValidationError."""
        record = self._find(name_or_id, own_only=True)
        return self.update(record["id"], {"name": new_name}, expected_version=expected_version)

    def delete(self, name_or_id, *, expected_version: int | None = None) -> dict:
        record = self._find(name_or_id, own_only=True)
        return super().delete(record["id"], expected_version=expected_version)

    def _find(self, name_or_id, own_only: bool = False, missing_ok: bool = False) -> dict | None:
        t = self.table
        stmt = sa.select(*self.columns).where(t.c.deleted_at.is_(None))
        try:
            stmt = stmt.where(t.c.id == as_uuid(name_or_id))
        except ValidationError:
            # A name PostgreSQL could not hold (not text, or with NUL) names no saved query.
            usable = isinstance(name_or_id, str) and "\x00" not in name_or_id
            stmt = stmt.where(sa.func.lower(t.c.name) == name_or_id.strip().lower() if usable else sa.false())
        mine = t.c.owner_id == self.crm.user_id
        stmt = stmt.where(mine if own_only else sa.or_(mine, t.c.shared)).order_by(mine.desc())
        with self.crm.engine.connect() as conn:
            row = conn.execute(stmt.limit(1)).mappings().first()
        if row is None and not missing_ok:
            raise NotFoundError(f"no saved query {name_or_id!r}" + (" of yours" if own_only else ""))
        return dict(row) if row else None
