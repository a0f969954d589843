"""The shape of a result: columns (``select``), ``group_by`` (with date truncation),
``aggregates`` and ``order_by``, each an editable list of rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from ..query.schema import TEMPORAL_TYPES
from ..query.spec import AGGREGATE_FUNCTIONS, TRUNCATIONS
from .rules import Row, RowContainer, small_button

_FUNCTION_LABELS = {
    "count": "count",
    "count_distinct": "count distinct",
    "sum": "sum",
    "avg": "average",
    "min": "minimum",
    "max": "maximum",
}


def _alias_input(value: str | None) -> widgets.Text:
    alias = widgets.Text(value=value or "", placeholder="name (optional)", layout=widgets.Layout(width="150px"))
    alias.add_class("crm-alias")
    return alias


def _with_current(options: list[tuple[str, Any]], value) -> list[tuple[str, Any]]:
    """A value loaded from a spec stays selectable even when the menu does not offer it."""
    if value is not None and value not in {v for _, v in options}:
        return [*options, (f"{value} (unknown)", value)]
    return options


class RowList(RowContainer, widgets.VBox):
    """A titled list of rows with an add button; rows can be moved and removed."""

    def __init__(self, ctx, key: str, add_label: str, css: str, make_row: Callable[[dict | str | None], Row]):
        self.ctx, self.key, self.make_row = ctx, key, make_row
        self.add_button = small_button(add_label, add_label, f"crm-add-{css}", width="120px")
        self.add_button.on_click(lambda _: self.append(make_row(None)))
        self.items = widgets.VBox()
        super().__init__([self.items, self.add_button])
        self.add_class(f"crm-{css}-list")

    def load(self, items: list) -> None:
        self.items.children = [self.make_row(item) for item in items]

    def to_spec(self) -> list:
        return [row.to_spec() for row in self.items.children]

    @property
    def members(self) -> list[Row]:
        return list(self.items.children)

    def assign_paths(self) -> None:
        for i, row in enumerate(self.items.children):
            row.path = f"{self.key}[{i}]"

    def rows(self):
        yield from self.items.children


class _ShapeRow(Row):
    def __init__(self, ctx, parent: RowList, inputs: list[widgets.Widget], css: str):
        self.ctx = ctx
        super().__init__([], parent)
        self.children = [widgets.HBox([*inputs, *self.move_buttons()]), self.error]
        self.add_class(css)
        for w in inputs:
            w.observe(lambda _: ctx.edited(), "value")


def _field_dropdown(ctx, entity: str, path: str | None, css: str, extra: list | None = None) -> widgets.Dropdown:
    options = (extra or []) + [(c.label, c.path) for c in ctx.catalog.fields(entity)]
    if path is None:
        path = options[0][1] if options else None
    field = widgets.Dropdown(options=_with_current(options, path), value=path, layout=widgets.Layout(width="260px"))
    field.add_class(css)
    return field


class ColumnRow(_ShapeRow):
    """A ``select`` item: a field path, optionally renamed."""

    def __init__(self, ctx, entity: str, item, parent: RowList):
        item = {"field": item} if isinstance(item, str) else item or {}
        self.field = _field_dropdown(ctx, entity, item.get("field"), "crm-column-field")
        self.alias = _alias_input(item.get("as"))
        super().__init__(ctx, parent, [self.field, self.alias], "crm-column")

    def to_spec(self):
        alias = self.alias.value.strip()
        return {"field": self.field.value, "as": alias} if alias else self.field.value


class GroupKeyRow(_ShapeRow):
    """A ``group_by`` item: a field path, for dates and timestamps cut to a day ... year."""

    def __init__(self, ctx, entity: str, item, parent: RowList):
        item = {"field": item} if isinstance(item, str) else item or {}
        self.ctx, self.entity = ctx, entity
        self.field = _field_dropdown(ctx, entity, item.get("field"), "crm-group-field")
        truncs = [("as is", None)] + [(f"by {t}", t) for t in TRUNCATIONS]
        self.trunc = widgets.Dropdown(
            options=_with_current(truncs, item.get("trunc")),
            value=item.get("trunc"),
            layout=widgets.Layout(width="110px"),
        )
        self.trunc.add_class("crm-group-trunc")
        self.alias = _alias_input(item.get("as"))
        super().__init__(ctx, parent, [self.field, self.trunc, self.alias], "crm-group-key")
        self.field.observe(lambda _: self._show_trunc(), "value")
        self._show_trunc()

    def _show_trunc(self) -> None:
        choice = self.ctx.catalog.field(self.entity, self.field.value or "")
        temporal = choice is not None and choice.type in TEMPORAL_TYPES
        self.trunc.layout.visibility = "visible" if temporal or self.trunc.value else "hidden"

    def to_spec(self):
        alias = self.alias.value.strip()
        if not self.trunc.value and not alias:
            return self.field.value
        item: dict[str, Any] = {"field": self.field.value}
        if self.trunc.value:
            item["trunc"] = self.trunc.value
        if alias:
            item["as"] = alias
        return item


class AggregateRow(_ShapeRow):
    """An ``aggregates`` item: count, count distinct, sum, average, minimum, maximum."""

    def __init__(self, ctx, entity: str, item, parent: RowList):
        item = item or {"fn": "count"}
        functions = [(_FUNCTION_LABELS[f], f) for f in AGGREGATE_FUNCTIONS]
        self.fn = widgets.Dropdown(
            options=_with_current(functions, item.get("fn")), value=item.get("fn"), layout=widgets.Layout(width="140px")
        )
        self.fn.add_class("crm-aggregate-fn")
        self.field = _field_dropdown(
            ctx, entity, item.get("field") or "", "crm-aggregate-field", extra=[("(rows)", "")]
        )
        self.alias = _alias_input(item.get("as"))
        super().__init__(ctx, parent, [self.fn, self.field, self.alias], "crm-aggregate")

    def to_spec(self):
        item: dict[str, Any] = {"fn": self.fn.value}
        if self.field.value:
            item["field"] = self.field.value
        if self.alias.value.strip():
            item["as"] = self.alias.value.strip()
        return item


class SortRow(_ShapeRow):
    """An ``order_by`` item: a field (or, when grouped, a group key or aggregate) and a direction."""

    def __init__(self, ctx, entity: str, item, parent: RowList):
        if isinstance(item, str):
            item = {"field": item.lstrip("-"), "dir": "desc" if item.startswith("-") else "asc"}
        item = item or {}
        options = ctx.sort_choices()
        path = item.get("field") or (options[0][1] if options else None)
        self.field = widgets.Dropdown(
            options=_with_current(options, path), value=path, layout=widgets.Layout(width="260px")
        )
        self.field.add_class("crm-sort-field")
        self.direction = widgets.Dropdown(
            options=[("ascending", "asc"), ("descending", "desc")],
            value=item.get("dir", "asc") if item.get("dir") in ("asc", "desc") else "asc",
            layout=widgets.Layout(width="120px"),
        )
        self.direction.add_class("crm-sort-dir")
        super().__init__(ctx, parent, [self.field, self.direction], "crm-sort")

    def refresh(self, options: list[tuple[str, str]]) -> None:
        """New choices (the grouping changed); the current one stays, marked if it went away."""
        current = self.field.value
        options = _with_current(options, current)
        if list(self.field.options) != options:
            self.field.options = options
            self.field.value = current

    def to_spec(self):
        return {"field": self.field.value, "dir": self.direction.value}
