"""What a query can name: tables, their fields and types, and the relations between them.

Built-in entities come from the catalog (labels, enum values, relations). Any other table or
view in the database is reflected: its columns are queryable, it has no relations. Identifiers
in compiled SQL come only from here, never from the spec's strings.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import sqlalchemy as sa

from ..model import ENTITIES, tables
from ..model.catalog import INTERNAL_TABLES, FieldType

# Field types grouped by what can be done with them: the one spelling of each family, read by
# the operator table, the compiler and the widgets.
TEXT_TYPES = frozenset({"text"})
NUMERIC_TYPES = frozenset({"integer", "number", "money"})
TEMPORAL_TYPES = frozenset({"date", "timestamp"})
ORDERED_TYPES = TEXT_TYPES | NUMERIC_TYPES | TEMPORAL_TYPES


@dataclass(frozen=True)
class SchemaColumn:
    name: str
    type: FieldType
    label: str
    values: tuple[str, ...] = ()  # enum values
    scale: int | None = None
    json_key: str | None = None  # a custom field: this key inside ``custom_fields``
    computed: str | None = None  # derived from other columns by the compiler (see COMPUTED)


@dataclass(frozen=True)
class Relation:
    """Many-to-one: ``<table>.<field>`` references ``<target>.id``."""

    name: str
    field: str
    target: str


@dataclass
class TableInfo:
    name: str
    label: str
    table: sa.TableClause
    columns: dict[str, SchemaColumn]
    relations: dict[str, Relation] = field(default_factory=dict)
    custom: dict[str, SchemaColumn] = field(default_factory=dict)

    @property
    def soft_delete(self) -> bool:
        return "deleted_at" in self.columns


class Schema:
    """The queryable tables of one database (or snapshot)."""

    def __init__(self, tables_: dict[str, TableInfo]):
        self.tables = tables_

    def table(self, name: str) -> TableInfo | None:
        return self.tables.get(name)

    def children(self, parent: str) -> list[tuple[str, str]]:
        """``(child table, foreign key field)`` for every relation pointing at ``parent``."""
        return [(t.name, r.field) for t in self.tables.values() for r in t.relations.values() if r.target == parent]

    @classmethod
    def from_catalog(
        cls, extra: dict[str, TableInfo] | None = None, custom_fields: dict[str, dict[str, str]] | None = None
    ) -> Schema:
        infos = {}
        for e in ENTITIES.values():
            columns = {
                f.name: SchemaColumn(f.name, f.type, f.label, f.values, f.scale) for f in e.fields if not f.hidden
            }
            relations = {f.relation: Relation(f.relation, f.name, f.references) for f in e.fields if f.references}
            custom = {  # a multiselect is a list of texts, queried as tags are
                key: SchemaColumn(
                    f"custom_fields.{key}",
                    "tags" if kind == "multiselect" else kind,
                    key.replace("_", " ").capitalize(),
                    json_key=key,
                )
                for key, kind in (custom_fields or {}).get(e.name, {}).items()
            }
            columns.update(COMPUTED.get(e.name, {}))
            infos[e.name] = TableInfo(e.name, e.label, _light_table(e), columns, relations, custom)
        for name, info in (extra or {}).items():
            infos.setdefault(name, info)
        return cls(infos)


# Fields that are no column but SQL over columns, the same on every engine. They are
# selectable, filterable, groupable and sortable by name, but not among the default columns.
COMPUTED: dict[str, dict[str, SchemaColumn]] = {
    "deals": {
        # The deal's value in the reporting currency: at its close date's rate when closed,
        # else at the latest rate; empty when its currency has no rate (model/money.py).
        "value_reporting": SchemaColumn(
            "value_reporting", "money", "Value (reporting currency)", scale=2, computed="reporting_value"
        ),
        # That value times the deal's probability, as weighted_value is in the deal's currency.
        "weighted_reporting": SchemaColumn(
            "weighted_reporting", "money", "Weighted value (reporting currency)", scale=2, computed="reporting_weighted"
        ),
    },
    # The name a contact goes by, as its record page and pickers show it (services/related.py).
    "contacts": {
        "full_name": SchemaColumn("full_name", "text", "Name", computed="full_name"),
    },
}

# The field that names a record of an entity when another entity's default columns show it in
# place of its id: the catalog's title field, or one of the computed fields above.
NAME_FIELDS = {"contacts": "full_name"}


@dataclass(frozen=True)
class DefaultColumn:
    """One of the columns a spec without ``select`` returns: a field path, its output name
    and the catalog's label for it."""

    field: str
    alias: str
    label: str


def default_columns(info: TableInfo, schema: Schema) -> list[DefaultColumn]:
    """What a spec without ``select`` returns: the entity's fields in the catalog's order, each
    reference (``company_id``) shown as the referenced record's name (``company.name`` named
    ``company``, labelled as the catalog labels ``company_id``). The id stays (the grid links
    rows by it); the referenced ids can still be selected by name."""
    by_field = {relation.field: relation for relation in info.relations.values()}
    out = []
    for name, column in info.columns.items():
        if column.computed:
            continue
        relation = by_field.get(name)
        target = schema.table(relation.target) if relation is not None else None
        if target is None:
            out.append(DefaultColumn(name, name, column.label))
            continue
        title = NAME_FIELDS.get(target.name) or ENTITIES[target.name].title_field
        alias = relation.name if relation.name not in info.columns else f"{relation.name}_name"
        out.append(DefaultColumn(f"{relation.name}.{title}", alias, column.label))
    return out


def default_fields(entity: str) -> dict[str, str]:
    """``{output name: field path}`` of a catalog entity's default columns (empty for other
    tables, whose default columns are their fields under their own names)."""
    info = _catalog().table(entity)
    return {} if info is None else {c.alias: c.field for c in default_columns(info, _catalog())}


@functools.cache
def _catalog() -> Schema:
    return Schema.from_catalog()


def _light_table(entity) -> sa.TableClause:
    """A bare table clause with typed columns: aliases of it cost a fraction of a full
    ``Table``'s (no constraints or events to copy), which keeps compiling under a millisecond."""
    return sa.table(entity.name, *(sa.column(f.name, tables.column_type(f)) for f in entity.fields))


# -- reflection of tables the catalog does not describe ------------------------------------


def field_type_of(sql_type: str) -> FieldType | None:
    """Map a database type name (PostgreSQL or DuckDB spelling) to a field type."""
    t = sql_type.lower()
    if t.startswith(("character varying", "varchar", "text", "character", "char", "bpchar", "name", "citext")):
        return "text"
    if t in (
        "smallint",
        "integer",
        "bigint",
        "int2",
        "int4",
        "int8",
        "int",
        "hugeint",
        "tinyint",
        "ubigint",
        "uinteger",
        "usmallint",
        "utinyint",
    ):
        return "integer"
    if t.startswith(("numeric", "decimal", "double", "real", "float")):
        return "number"
    if t == "date":
        return "date"
    if t.startswith("timestamp"):
        return "timestamp"
    if t in ("boolean", "bool"):
        return "boolean"
    if t == "uuid":
        return "uuid"
    if t in ("json", "jsonb"):
        return "json"
    if t.startswith("enum") or t == "user-defined":
        return "text"
    return None  # arrays, tsvector, geometry, ...: not queryable


def reflected_table(name: str, columns: list[tuple[str, str]]) -> TableInfo | None:
    """A TableInfo for a table or view known only by its columns' names and type names."""
    cols = {}
    for column_name, type_name in columns:
        kind = field_type_of(type_name)
        if kind is not None:
            cols[column_name] = SchemaColumn(column_name, kind, column_name.replace("_", " ").capitalize())
    if not cols:
        return None
    table = sa.table(name, *(sa.column(c) for c in cols))
    return TableInfo(name, name.replace("_", " ").capitalize(), table, cols)


def reflected_tables(rows) -> dict[str, TableInfo]:
    """``(table, column, type name)`` rows as the tables the catalog does not describe (each
    engine's reflection query gives them; see ``engines/``)."""
    by_table: dict[str, list[tuple[str, str]]] = {}
    for table_name, column_name, type_name in rows:
        by_table.setdefault(table_name, []).append((column_name, type_name))
    infos = {}
    for name, columns in by_table.items():
        if name in ENTITIES or name in INTERNAL_TABLES:
            continue
        info = reflected_table(name, columns)
        if info:
            infos[name] = info
    return infos
