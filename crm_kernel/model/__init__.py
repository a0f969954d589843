"""The data model: the catalog, the tables built from it and write validation."""

from .catalog import ENTITIES, SYSTEM_USER_ID, Entity, Field, Relation, children, entity
from .tables import TABLES, table
from .validation import clean_create, clean_update

__all__ = [
    "ENTITIES",
    "SYSTEM_USER_ID",
    "Entity",
    "Field",
    "Relation",
    "children",
    "entity",
    "TABLES",
    "table",
    "clean_create",
    "clean_update",
]
