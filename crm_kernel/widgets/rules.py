"""The rows of a query's ``where``: rules, nested groups (AND/OR, NOT) and related-record rules.

Each row shows a part of the spec and gives it back with ``to_spec()``; ``path`` is where that
part sits in the spec (``where.rules[1]``), so a validation message can be shown beside the
row it is about. Rows call ``ctx.edited()`` after every change; ``ctx`` is the QueryBuilder.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from ..query import OPERATORS, operators_for
from ..query.operators import COMPARISONS as _COMPARISONS
from .editors import Editor, NoValue, TextInput, adapt, editor_for
from .fields import FieldChoice

_QUANTIFIERS = [("has at least one", "any"), ("has none", "none"), ("count of them", "count")]


def small_button(text: str, tooltip: str, css: str, width: str = "32px") -> widgets.Button:
    button = widgets.Button(description=text, tooltip=tooltip, layout=widgets.Layout(width=width))
    button.add_class(css)
    return button


def error_html() -> widgets.HTML:
    html = widgets.HTML("")
    html.add_class("crm-rule-error")
    return html


def show_error(html: widgets.HTML, message: str | None) -> None:
    html.value = "" if not message else (f'<span style="color:#b3261e">&#9888; {_escape(message)}</span>')


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Row(widgets.VBox):
    """Something in a group: knows its parent and its path, can show an error."""

    def __init__(self, children, parent: GroupBox | None):
        super().__init__(children)
        self.parent = parent
        self.path = ""
        self.error = error_html()

    def move_buttons(self) -> list[widgets.Button]:
        up = small_button("↑", "Move up", "crm-move-up")
        down = small_button("↓", "Move down", "crm-move-down")
        remove = small_button("✕", "Remove", "crm-remove")
        up.on_click(lambda _: self.parent.move(self, -1))
        down.on_click(lambda _: self.parent.move(self, +1))
        remove.on_click(lambda _: self.parent.remove(self))
        self.up_button, self.down_button, self.remove_button = up, down, remove
        return [up, down, remove]

    def show_error(self, message: str | None) -> None:
        show_error(self.error, message)

    def rows(self):
        yield self


class RuleRow(Row):
    """``{"field", "operator", "value"}``: field picker, operator list, value editor."""

    def __init__(self, ctx, entity: str, rule: dict | None, parent: GroupBox):
        self.ctx, self.entity = ctx, entity
        self._loading = False
        self.field = widgets.Dropdown(layout=widgets.Layout(width="260px"))
        self.field.add_class("crm-rule-field")
        self.operator = widgets.Dropdown(layout=widgets.Layout(width="170px"))
        self.operator.add_class("crm-rule-operator")
        self.compare = widgets.ToggleButton(
            value=False,
            description="vs field",
            tooltip="Compare with another field",
            layout=widgets.Layout(width="80px"),
        )
        self.compare.add_class("crm-rule-source")
        self.parameter = widgets.ToggleButton(
            value=False,
            description="param",
            layout=widgets.Layout(width="70px"),
            tooltip="Take the value from a parameter given when the query runs",
        )
        self.parameter.add_class("crm-rule-parameter")
        self.value_box = widgets.HBox()
        self.editor: Editor = NoValue()
        line = widgets.HBox([self.field, self.operator, self.value_box, self.compare, self.parameter])
        super().__init__([], parent)
        line.children = [*line.children, *self.move_buttons()]
        self.children = [line, self.error]
        self.add_class("crm-rule")
        self.load(rule or self.default_rule(ctx, entity))
        self.field.observe(self._field_changed, "value")
        self.operator.observe(self._operator_changed, "value")
        self.compare.observe(self._compare_changed, "value")
        self.parameter.observe(self._parameter_changed, "value")

    @staticmethod
    def default_rule(ctx, entity: str) -> dict:
        choices = ctx.catalog.fields(entity)
        title = ctx.title_field(entity)
        choice = next((c for c in choices if c.path == title), choices[0] if choices else None)
        if choice is None:
            return {"field": "", "operator": "="}
        return {"field": choice.path, "operator": operators_for(choice.type)[0].name}

    # -- spec in and out -----------------------------------------------------------------------

    def load(self, rule: dict) -> None:
        self._loading = True
        try:
            path = rule.get("field", "")
            self.field.options = self._field_options(path)
            self.field.value = path
            choice = self.choice
            self._set_operators(choice, rule.get("operator"))
            self.operator.value = rule.get("operator")
            self.compare.value = rule.get("valueSource") == "field"
            self.parameter.value = rule.get("valueSource") == "parameter"
            self.match = rule.get("match")  # a match mode (tags): edited as part of the JSON group
            self._new_editor()
            if "value" in rule:
                self.editor.set(rule["value"])
        finally:
            self._loading = False

    def to_spec(self) -> dict:
        rule: dict[str, Any] = {"field": self.field.value, "operator": self.operator.value}
        if self.editor.has_value:
            rule["value"] = self.editor.get()
        if self.compare.value:
            rule["valueSource"] = "field"
        elif self.parameter.value:
            rule["valueSource"] = "parameter"
        if self.choice.type == "tags" and self.operator.value == "=":
            rule["match"] = self.match or {"mode": "some"}
        return rule

    # -- the pieces ----------------------------------------------------------------------------

    @property
    def choice(self) -> FieldChoice:
        path = self.field.value or ""
        return self.ctx.catalog.field(self.entity, path) or FieldChoice(path, path, "unknown")

    def _field_options(self, path: str) -> list[tuple[str, str]]:
        options = [(c.label, c.path) for c in self.ctx.catalog.fields(self.entity)]
        if path not in {p for _, p in options}:
            known = self.ctx.catalog.field(self.entity, path)
            options.append((known.label if known else f"{path} (unknown field)", path))
        return options

    def _set_operators(self, choice: FieldChoice, current: str | None) -> None:
        options = [(op.label, op.name) for op in operators_for(choice.type)]
        if current is not None and current not in {name for _, name in options}:
            options.append((OPERATORS[current].label if current in OPERATORS else current, current))
        self.operator.options = options

    @property
    def arity(self) -> str | None:
        op = OPERATORS.get(self.operator.value)
        return op.arity if op else None

    def _new_editor(self) -> None:
        choice = self.choice
        op = OPERATORS.get(self.operator.value) or OPERATORS["="]
        compare_with = self.ctx.catalog.comparable(self.entity, choice) if self.compare.value else None
        suggest = self.ctx.suggester(self.entity, choice.path) if choice.type == "text" else None
        if self.parameter.value and op.arity != "none":
            names = "parameter names: low,high" if op.arity in ("list", "pair") else "parameter name"
            self.editor = TextInput(names)
        else:
            self.editor = editor_for(choice, op, suggest=suggest, compare_with=compare_with)
        self.editor.on_change(self._value_changed)
        self.value_box.children = [self.editor.widget]
        self._editor_arity = op.arity

    def _field_changed(self, change) -> None:
        if self._loading:
            return
        old = self.ctx.catalog.field(self.entity, change["old"] or "")
        choice = self.choice
        self._loading = True
        try:
            current = self.operator.value
            self._set_operators(choice, None)
            names = [name for _, name in self.operator.options]
            self.operator.value = current if current in names else names[0] if names else None
            keep = old is not None and old.type == choice.type and old.values == choice.values
            value = self.editor.get() if keep else None
            self._new_editor()
            if keep and self.editor.has_value and not self.compare.value:
                self.editor.set(value)
        finally:
            self._loading = False
        self.ctx.edited()

    def _operator_changed(self, change) -> None:
        if self._loading:
            return
        old_arity = self._editor_arity
        new = OPERATORS.get(change["new"])
        if new is not None and new.arity != old_arity:
            value = self.editor.get() if self.editor.has_value else None
            self._new_editor()
            if self.editor.has_value and not self.compare.value:
                self.editor.set(adapt(value, old_arity, new.arity))
        self.ctx.edited()

    def _compare_changed(self, _change) -> None:
        if self._loading:
            return
        if self.compare.value and self.parameter.value:
            self._loading = True
            self.parameter.value = False
            self._loading = False
        self._new_editor()
        if self.compare.value and self.operator.value not in _COMPARISONS:
            self.operator.value = "="  # comparing two fields takes a comparison
            return
        self.ctx.edited()

    def _parameter_changed(self, _change) -> None:
        if self._loading:
            return
        self._loading = True
        try:
            if self.parameter.value:
                self.compare.value = False  # a value comes from one place
            self._new_editor()
        finally:
            self._loading = False
        self.ctx.edited()

    def _value_changed(self) -> None:
        if not self._loading:
            self.ctx.edited()


class RowContainer:
    """Adding, removing and reordering the rows kept in ``self.items`` (a box); each edit is
    reported to ``self.ctx`` so the spec is checked again."""

    def append(self, row: Row) -> None:
        self.items.children = [*self.items.children, row]
        self.ctx.edited()

    def remove(self, row: Row) -> None:
        self.items.children = [r for r in self.items.children if r is not row]
        self.ctx.edited()

    def move(self, row: Row, delta: int) -> None:
        rows = list(self.items.children)
        i = rows.index(row)
        j = i + delta
        if 0 <= j < len(rows):
            rows[i], rows[j] = rows[j], rows[i]
            self.items.children = rows
            self.ctx.edited()


class GroupBox(RowContainer, Row):
    """``{"combinator": "and"|"or", "not": bool, "rules": [...]}`` with its rows."""

    def __init__(
        self,
        ctx,
        entity: str,
        group: dict | None,
        parent: Row | None = None,
        *,
        movable: bool | None = None,
        css: str = "crm-group",
    ):
        self.ctx, self.entity = ctx, entity
        self.top = parent is None  # the builder's own where: its "+ Rule" is the crm-add-rule button
        movable = not self.top if movable is None else movable
        self.combinator = widgets.ToggleButtons(
            options=[("AND", "and"), ("OR", "or")], value="and", style={"button_width": "48px"}
        )
        self.combinator.add_class("crm-combinator")
        self.negate = widgets.ToggleButton(
            value=False, description="NOT", tooltip="Negate the whole group", layout=widgets.Layout(width="56px")
        )
        self.negate.add_class("crm-not")
        self.add_rule = small_button(
            "+ Rule", "Add a rule", "crm-add-rule" if self.top else "crm-group-add-rule", width="80px"
        )
        self.add_group = small_button("+ Group", "Add a nested group", "crm-add-group", width="80px")
        self.add_related = small_button(
            "+ Related", "Add a rule about related records", "crm-add-related", width="90px"
        )
        self.items = widgets.VBox(layout=widgets.Layout(margin="0 0 0 18px"))
        super().__init__([], parent)
        header = [self.combinator, self.negate, self.add_rule, self.add_group]
        if ctx.catalog.children(entity):
            header.append(self.add_related)
        if movable:
            header += self.move_buttons()
        self.children = [widgets.HBox(header), self.error, self.items]
        self.add_class(css)
        if movable:
            self.layout = widgets.Layout(border="1px solid #c9d3e0", padding="4px", margin="2px 0")
        self.add_rule.on_click(lambda _: self.append(RuleRow(ctx, entity, None, self)))
        self.add_group.on_click(lambda _: self.append(GroupBox(ctx, entity, None, self)))
        self.add_related.on_click(lambda _: self.append(RelatedRow(ctx, entity, None, self)))
        self.load(group or {})
        self.combinator.observe(lambda _: ctx.edited(), "value")
        self.negate.observe(lambda _: ctx.edited(), "value")

    def load(self, group: dict) -> None:
        self.combinator.value = str(group.get("combinator", "and")).lower()
        self.negate.value = bool(group.get("not", False))
        self.items.children = [self._row_for(item) for item in group.get("rules", [])]

    def _row_for(self, item: dict) -> Row:
        if "rules" in item or "combinator" in item:
            return GroupBox(self.ctx, self.entity, item, self)
        if "related" in item:
            return RelatedRow(self.ctx, self.entity, item, self)
        return RuleRow(self.ctx, self.entity, item, self)

    def to_spec(self) -> dict:
        group: dict[str, Any] = {"combinator": self.combinator.value}
        if self.negate.value:
            group["not"] = True
        group["rules"] = [row.to_spec() for row in self.items.children]
        return group

    @property
    def members(self) -> list[Row]:
        return list(self.items.children)

    def assign_paths(self, path: str) -> None:
        self.path = path
        for i, row in enumerate(self.items.children):
            row.path = f"{path}.rules[{i}]"
            if hasattr(row, "assign_paths"):
                row.assign_paths(row.path)

    def rows(self):
        yield self
        for row in self.items.children:
            yield from row.rows()


class RelatedRow(Row):
    """``{"related": "activities", "quantifier": "none", "where": {...}}``: records of a
    one-to-many relation, with their own rule group."""

    def __init__(self, ctx, entity: str, rule: dict | None, parent: GroupBox):
        self.ctx, self.entity = ctx, entity
        self._loading = False
        children = ctx.catalog.children(entity)
        self.related = widgets.Dropdown(options=children, layout=widgets.Layout(width="240px"))
        self.related.add_class("crm-related-entity")
        self.quantifier = widgets.Dropdown(options=_QUANTIFIERS, value="any", layout=widgets.Layout(width="150px"))
        self.quantifier.add_class("crm-related-quantifier")
        self.count_operator = widgets.Dropdown(
            options=[(OPERATORS[n].label, n) for n in _COMPARISONS], value=">", layout=widgets.Layout(width="140px")
        )
        self.count_value = widgets.BoundedIntText(value=0, min=0, max=10**9, layout=widgets.Layout(width="90px"))
        self.count_box = widgets.HBox([self.count_operator, self.count_value])
        super().__init__([], parent)
        self.inner: GroupBox | None = None
        self.line = widgets.HBox(
            [widgets.Label("Related"), self.related, self.quantifier, self.count_box, *self.move_buttons()]
        )
        self.add_class("crm-related")
        self.layout = widgets.Layout(border="1px dashed #c9d3e0", padding="4px", margin="2px 0")
        self.load(rule or {"related": children[0][1][0] if children else "", "quantifier": "any"})
        for w in (self.quantifier, self.count_operator, self.count_value):
            w.observe(self._changed, "value")
        self.related.observe(self._related_changed, "value")

    def load(self, rule: dict) -> None:
        self._loading = True
        try:
            child, via = rule.get("related", ""), rule.get("via")
            options = list(self.related.options)
            match = next((v for _, v in options if v[0] == child and (via is None or v[1] == via)), None)
            if match is None:
                match = (child, via)
                options.append((f"{child} (unknown)", match))
                self.related.options = options
            self.related.value = match
            quantifier = rule.get("quantifier", "any")
            self.quantifier.value = quantifier if quantifier in {v for _, v in _QUANTIFIERS} else "any"
            if rule.get("operator") in _COMPARISONS:
                self.count_operator.value = rule["operator"]
            if isinstance(rule.get("value"), int) and not isinstance(rule.get("value"), bool):
                self.count_value.value = max(0, rule["value"])
            self._build_inner(rule.get("where"))
        finally:
            self._loading = False

    def _build_inner(self, where: dict | None) -> None:
        child = self.related.value[0] if self.related.value else ""
        self.inner = GroupBox(self.ctx, child, where or {}, parent=self, movable=False, css="crm-related-group")
        self.inner.layout = widgets.Layout(margin="0 0 0 18px")
        self._show_count()

    def _show_count(self) -> None:
        self.count_box.layout.display = "" if self.quantifier.value == "count" else "none"
        self.children = [self.line, self.error, widgets.Label("where:"), self.inner]

    def to_spec(self) -> dict:
        child, fk = self.related.value
        rule: dict[str, Any] = {"related": child, "quantifier": self.quantifier.value}
        if fk and self.ctx.catalog.needs_via(self.entity, child):
            rule["via"] = fk
        where = self.inner.to_spec()
        if where["rules"]:
            rule["where"] = where
        if self.quantifier.value == "count":
            rule["operator"] = self.count_operator.value
            rule["value"] = self.count_value.value
        return rule

    def assign_paths(self, path: str) -> None:
        self.path = path
        self.inner.assign_paths(f"{path}.where")

    def rows(self):
        yield self
        yield from self.inner.rows()

    def _changed(self, _change) -> None:
        if not self._loading:
            self._show_count()
            self.ctx.edited()

    def _related_changed(self, _change) -> None:
        if not self._loading:
            self._build_inner(None)
            self.ctx.edited()
