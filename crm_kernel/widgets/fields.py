"""What the builder offers to pick: the entities, and per entity the field paths with labels.

Everything here is read from the query engine's :class:`~crm_kernel.query.Schema` (the catalog,
declared custom fields, reflected tables and views), so the pickers offer exactly what a spec
can name. Labels name the group a field belongs to, then the field:

    Deal › Value          the entity's own fields
    Stage › Name          fields of a related record (deals.stage_id -> pipeline_stages)
    Company › Owner › E-mail
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model import ENTITIES
from ..query import Schema
from ..query.engines import ENGINES
from ..query.schema import TableInfo

SEP = " › "  # U+203A between the parts of a label
# Relations not followed past the first step: every record has them, and two steps through
# them only multiply the menu.
_BOOKKEEPING = frozenset({"creator", "updater"})


@dataclass(frozen=True)
class FieldChoice:
    path: str  # what the spec says: "value", "stage.name", "custom_fields.tier"
    label: str  # what the picker shows
    type: str
    values: tuple[str, ...] = ()  # enum values; a multiselect custom field's options
    scale: int | None = None


class FieldCatalog:
    """The entities and field paths of one database, with labels, for the pickers."""

    def __init__(
        self,
        schema: Schema,
        custom_labels: dict[tuple[str, str], str] | None = None,
        depth: int = 2,
        custom_options: dict[tuple[str, str], tuple[str, ...]] | None = None,
    ):
        self.schema = schema
        self.custom_labels = custom_labels or {}
        self.custom_options = custom_options or {}  # (entity, key) -> a multiselect's options
        self.depth = depth
        self._fields: dict[str, list[FieldChoice]] = {}

    @classmethod
    def load(cls, crm) -> FieldCatalog:
        """The catalog's entities with the declared custom fields, plus the database's other
        tables and views (reflected)."""
        declared: dict[str, dict[str, str]] = {}
        labels: dict[tuple[str, str], str] = {}
        options: dict[tuple[str, str], tuple[str, ...]] = {}
        for row in crm.custom_fields.list(limit=None, order_by="key"):
            declared.setdefault(row["entity"], {})[row["key"]] = row["type"]
            if row.get("label"):
                labels[(row["entity"], row["key"])] = row["label"]
            if row.get("options"):
                options[(row["entity"], row["key"])] = tuple(row["options"])
        with crm.engine.connect() as conn:
            reflected = ENGINES["postgres"].reflect(conn)
        return cls(Schema.from_catalog(extra=reflected, custom_fields=declared), labels, custom_options=options)

    # -- entities ---------------------------------------------------------------------------

    def entities(self) -> list[tuple[str, str]]:
        """``(label, name)`` for the entity picker: the catalog's entities first, then the
        other tables and views."""
        catalog = [(e.label, e.name) for e in ENTITIES.values() if e.name in self.schema.tables]
        others = sorted((info.label, name) for name, info in self.schema.tables.items() if name not in ENTITIES)
        return _unique(catalog + others)

    def entity_label(self, entity: str) -> str:
        """The singular name of an entity's records ("Deal"), heading its own fields."""
        if entity in ENTITIES:
            return ENTITIES[entity].singular
        info = self.schema.table(entity)
        return info.label if info else entity

    # -- fields -----------------------------------------------------------------------------

    def fields(self, entity: str) -> list[FieldChoice]:
        """Every field path of ``entity`` the picker offers, grouped: its own fields, then each
        related record's fields (and theirs, one step further)."""
        if entity not in self._fields:
            info = self.schema.table(entity)
            choices: list[FieldChoice] = []
            if info is not None:
                self._add_fields(choices, info, "", self.entity_label(entity), depth=0, via=None)
            self._fields[entity] = _unique_labels(choices)
        return self._fields[entity]

    def _add_fields(self, out: list, info: TableInfo, prefix: str, group: str, depth: int, via):
        for column in info.columns.values():
            out.append(
                FieldChoice(prefix + column.name, group + SEP + column.label, column.type, column.values, column.scale)
            )
        for key, column in info.custom.items():
            label = self.custom_labels.get((info.name, key), column.label)
            out.append(
                FieldChoice(
                    f"{prefix}custom_fields.{key}",
                    group + SEP + label,
                    column.type,
                    self.custom_options.get((info.name, key), ()),
                )
            )
        if depth >= self.depth:
            return
        for relation in info.relations.values():
            if depth > 0 and relation.name in _BOOKKEEPING:
                continue
            target = self.schema.table(relation.target)
            if target is None:
                continue
            label = self.relation_label(info.name, relation.field)
            inner = label if depth == 0 else group + SEP + label
            self._add_fields(out, target, f"{prefix}{relation.name}.", inner, depth + 1, relation)

    def relation_label(self, entity: str, field: str) -> str:
        """The name of the relation a foreign key follows, as a label: deals.stage_id gives
        "Stage" (the key's own label reads "Stage id")."""
        info = self.schema.table(entity)
        names = [r.name for r in info.relations.values() if r.field == field] if info else []
        return (names[0] if names else field.removesuffix("_id")).replace("_", " ").capitalize()

    def field(self, entity: str, path: str) -> FieldChoice | None:
        """The choice for ``path``; paths deeper than the menu goes are resolved too. None when
        the path names nothing (the spec's validation then says why)."""
        for choice in self.fields(entity):
            if choice.path == path:
                return choice
        return self._resolve(entity, path)

    def _resolve(self, entity: str, path: str) -> FieldChoice | None:
        info = self.schema.table(entity)
        if info is None or not path:
            return None
        parts = path.split(".")
        labels = [self.entity_label(entity)]
        for i, part in enumerate(parts[:-1]):
            if part == "custom_fields" and i == len(parts) - 2:
                column = info.custom.get(parts[-1])
                if column is None:
                    return None
                label = self.custom_labels.get((info.name, parts[-1]), column.label)
                return FieldChoice(
                    path, SEP.join([*labels, label]), column.type, self.custom_options.get((info.name, parts[-1]), ())
                )
            relation = info.relations.get(part)
            if relation is None or self.schema.table(relation.target) is None:
                return None
            labels = (
                [self.relation_label(info.name, relation.field)]
                if i == 0
                else [*labels, self.relation_label(info.name, relation.field)]
            )
            info = self.schema.table(relation.target)
        column = info.columns.get(parts[-1])
        if column is None:
            return None
        return FieldChoice(path, SEP.join([*labels, column.label]), column.type, column.values, column.scale)

    def comparable(self, entity: str, choice: FieldChoice) -> list[FieldChoice]:
        """Fields a rule on ``choice`` may be compared with (``valueSource: "field"``): those of
        the same kind. The compiler has the last word; this only trims the menu."""
        kind = _KIND.get(choice.type, choice.type)
        return [c for c in self.fields(entity) if _KIND.get(c.type, c.type) == kind and c.path != choice.path]

    # -- related records --------------------------------------------------------------------

    def children(self, entity: str) -> list[tuple[str, tuple[str, str]]]:
        """``(label, (child table, foreign key))`` for related-record rules of ``entity``."""
        links = self.schema.children(entity)
        per_child: dict[str, int] = {}
        for child, _ in links:
            per_child[child] = per_child.get(child, 0) + 1
        out = []
        for child, fk in links:
            info = self.schema.table(child)
            label = info.label if info else child
            if per_child[child] > 1:
                label = f"{label} (by {self.relation_label(child, fk).lower()})"  # "Users (by creator)"
            out.append((label, (child, fk)))
        return _unique(out)

    def needs_via(self, entity: str, child: str) -> bool:
        return sum(1 for c, _ in self.schema.children(entity) if c == child) > 1


_KIND = {"integer": "number", "number": "number", "money": "number", "date": "temporal", "timestamp": "temporal"}


def _unique(pairs: list[tuple[str, object]]) -> list[tuple[str, object]]:
    """Labels must be unique: a browser picks an option by its label."""
    seen: set[str] = set()
    out = []
    for label, value in pairs:
        if label in seen:
            label = f"{label} ({value if isinstance(value, str) else value[0]})"
        seen.add(label)
        out.append((label, value))
    return out


def _unique_labels(choices: list[FieldChoice]) -> list[FieldChoice]:
    seen: set[str] = set()
    out = []
    for choice in choices:
        if choice.label in seen:
            choice = FieldChoice(
                choice.path, f"{choice.label} ({choice.path})", choice.type, choice.values, choice.scale
            )
        seen.add(choice.label)
        out.append(choice)
    return out
