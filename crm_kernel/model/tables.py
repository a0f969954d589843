"""SQLAlchemy Core tables built from the catalog (never written by hand)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from .catalog import ENTITIES, Entity, Field

metadata = sa.MetaData()


def column_type(f: Field) -> sa.types.TypeEngine:
    match f.type:
        case "text":
            return sa.Text()
        case "integer":
            return sa.BigInteger() if f.name == "id" else sa.Integer()
        case "number" | "money":
            return sa.Numeric(f.precision, f.scale)
        case "date":
            return sa.Date()
        case "timestamp":
            return sa.DateTime(timezone=True)
        case "enum":
            return pg.ENUM(*f.values, name=f.enum_type, create_type=False)
        case "boolean":
            return sa.Boolean()
        case "uuid":
            return sa.Uuid()
        case "json":
            return pg.JSONB()
        case "search":
            return pg.TSVECTOR()
        case "tags":
            return pg.ARRAY(sa.Text())
    raise TypeError(f"no column type for field type {f.type!r}")


def _column(entity: Entity, f: Field) -> sa.Column:
    args = [sa.ForeignKey(f"{f.references}.id")] if f.references else []
    if f.has_default or f.type == "search" or f.name == "weighted_value":
        args.append(sa.FetchedValue())  # the database fills it: SQLAlchemy must not send NULL
    return sa.Column(f.name, column_type(f), *args, primary_key=f.name == "id", nullable=f.nullable)


TABLES: dict[str, sa.Table] = {
    e.name: sa.Table(e.name, metadata, *(_column(e, f) for f in e.fields)) for e in ENTITIES.values()
}


def table(name: str) -> sa.Table:
    return TABLES[name]
