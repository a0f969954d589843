"""Declared custom fields: ``crm.custom_fields.define("companies", "tier", "text")``.

A declaration gives a key of an entity's ``custom_fields`` a type, which makes
``custom_fields.<key>`` usable in queries like any built-in field.
"""

from __future__ import annotations

from ..errors import ValidationError
from ..model import ENTITIES
from .records import RecordService


class CustomFieldService(RecordService):
    def define(self, entity: str, key: str, type: str = "text", label: str | None = None) -> dict:
        """Declare (or re-type) ``custom_fields.<key>`` of ``entity``."""
        target = ENTITIES.get(entity)
        if target is None or not target.business:
            names = ", ".join(e.name for e in ENTITIES.values() if e.business)
            raise ValidationError({"entity": f"unknown entity {entity!r}; choose from {names}"}, self.entity.name)
        existing = self.list(entity=entity, key=key, limit=1)
        if existing:
            return self.update(existing[0]["id"], type=type, label=label)
        return self.create(entity=entity, key=key, type=type, label=label)

    def declared(self, entity: str) -> dict[str, str]:
        """``{key: type}`` of the entity's declared custom fields."""
        return {row["key"]: row["type"] for row in self.list(entity=entity, limit=None, order_by="key")}
