"""QueryBuilder: a query spec you edit with widgets.

The builder's state is a spec: ``builder.spec`` reads it (a plain dict, values in their JSON
types), ``builder.spec = {...}`` loads one. After every edit the spec is checked by the query
compiler; a refusal is shown beside the row its path names (``where.rules[1].value``) and in
the builder's error line, and ``builder.error`` holds it. Nothing here knows SQL: checking,
previews and look-ups go through ``crm_kernel.query``.
"""

from __future__ import annotations

import copy
import html
import re
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from ..errors import QuerySpecError
from ..model import ENTITIES
from ..query import compile_spec, parse
from ..query.schema import default_columns
from ..query.spec import plain_form, spec_parameters
from .editors import Suggest
from .fields import FieldCatalog
from .rules import GroupBox, error_html, show_error
from .shape import AggregateRow, ColumnRow, GroupKeyRow, RowList, SortRow
from .source import Source

DEFAULT_ENTITY = "deals"
_KEPT = ("having", "offset", "name", "description", "parameters")  # spec parts kept but not edited here
_DIGITS = re.compile(r"^\d{1,40}$")  # longer stays text, for the spec's check to refuse


class _Spot:
    """A place an error can be shown that is not a row (the limit)."""

    def __init__(self, path: str):
        self.path = path
        self.error = error_html()

    def show_error(self, message: str | None) -> None:
        show_error(self.error, message)


class QueryBuilder(widgets.VBox):
    """Pick an entity, add rules and groups, shape the result; ``spec`` is the query."""

    def __init__(
        self, crm, spec: dict | str | None = None, *, catalog: FieldCatalog | None = None, source: Source | None = None
    ):
        self.crm = crm
        self.catalog = catalog or FieldCatalog.load(crm)
        self.source = source or Source(crm)
        self.error: QuerySpecError | None = None
        self._spec: dict = {}
        self._kept: dict = {}
        self._quiet = True
        self._callbacks: list[Callable[[QueryBuilder], None]] = []

        self.entity = widgets.Dropdown(
            options=self.catalog.entities(), description="Entity", layout=widgets.Layout(width="320px")
        )
        self.entity.add_class("crm-entity")
        self.where: GroupBox | None = None
        self.where_box = widgets.VBox()
        self.columns = RowList(
            self, "select", "+ Column", "column", lambda item: ColumnRow(self, self.entity.value, item, self.columns)
        )
        self.grouping = RowList(
            self,
            "group_by",
            "+ Group by",
            "group-key",
            lambda item: GroupKeyRow(self, self.entity.value, item, self.grouping),
        )
        self.aggregates = RowList(
            self,
            "aggregates",
            "+ Aggregate",
            "aggregate",
            lambda item: AggregateRow(self, self.entity.value, item, self.aggregates),
        )
        self.sorting = RowList(
            self, "order_by", "+ Sort", "sort", lambda item: SortRow(self, self.entity.value, item, self.sorting)
        )
        self.limit = widgets.Text(
            value="", placeholder="no limit", description="Limit", layout=widgets.Layout(width="220px")
        )
        self.limit.add_class("crm-limit")
        self._limit_spot = _Spot("limit")
        self.error_html = widgets.HTML("")
        self.error_html.add_class("crm-error")

        self._every_field = widgets.HTML("<i>No columns chosen: every field of the entity.</i>")
        self.shape = widgets.Accordion(
            children=[
                widgets.VBox([self._every_field, self.columns]),
                widgets.VBox(
                    [widgets.HTML("<b>Group by</b>"), self.grouping, widgets.HTML("<b>Aggregates</b>"), self.aggregates]
                ),
                widgets.VBox([self.sorting, widgets.HBox([self.limit, self._limit_spot.error])]),
            ],
            titles=("Columns", "Group by and aggregates", "Sort and limit"),
            selected_index=None,
        )
        self.shape.add_class("crm-shape")
        super().__init__([self.entity, widgets.HTML("<b>Rows where</b>"), self.where_box, self.error_html, self.shape])
        self.add_class("crm-builder")

        self.spec = spec if spec is not None else {"entity": DEFAULT_ENTITY}
        self.entity.observe(self._entity_changed, "value")
        self.limit.observe(lambda _: self.edited(), "value")

    # -- the spec ---------------------------------------------------------------------------

    @property
    def spec(self) -> dict:
        """The query as edited (a copy). Check ``error`` before running it."""
        return copy.deepcopy(self._spec)

    @spec.setter
    def spec(self, spec: dict | str) -> None:
        """Load a spec. A malformed one (wrong shape, unknown operator name) is refused with its
        QuerySpecError; one that names an unknown field loads and shows the error. A
        react-querybuilder export loads in its plain form (see ``query.spec.plain_form``)."""
        source = plain_form(spec)
        entity = source["entity"].strip()
        self._quiet = True
        try:
            if entity not in {name for _, name in self.entity.options}:
                self.entity.options = [*self.entity.options, (f"{entity} (unknown)", entity)]
            self.entity.value = entity
            self._kept = {key: copy.deepcopy(source[key]) for key in _KEPT if source.get(key) is not None}
            self.where = GroupBox(self, entity, source.get("where"))
            self.where_box.children = [self.where]
            self.columns.load(list(source.get("select") or []))
            self.grouping.load(list(source.get("group_by") or []))
            self.aggregates.load(list(source.get("aggregates") or []))
            self.sorting.load(list(source.get("order_by") or []))
            limit = source.get("limit")
            self.limit.value = "" if limit is None else str(limit)
        finally:
            self._quiet = False
        self.edited()

    @property
    def valid(self) -> bool:
        return self.error is None

    def on_change(self, callback: Callable[[QueryBuilder], None]) -> None:
        """Call ``callback(builder)`` after every edit (and every load)."""
        self._callbacks.append(callback)

    def compile(self, backend: str = "postgres"):
        """The compiled query (for its SQL preview); raises QuerySpecError when invalid."""
        params = self.source.params
        return compile_spec(
            self._spec,
            backend,
            schema=self.catalog.schema,
            timezone=self.crm.config.timezone,
            params={k: v for k, v in params.items() if k in self.parameters()},
            check_only=True,
        )

    def parameters(self) -> dict[str, dict]:
        """The parameters the spec names, with their declarations (see ``query.spec.spec_parameters``)."""
        try:
            return spec_parameters(parse(self._spec))
        except QuerySpecError:
            return {}

    def preview(self, backend: str = "postgres") -> str:
        """The SQL the spec runs, values inline, for reading."""
        return self.compile(backend).preview()

    # -- what rows ask of the builder --------------------------------------------------------

    def edited(self) -> None:
        """Re-read the spec from the widgets, check it, show the verdict."""
        if self._quiet:
            return
        self._quiet = True
        try:
            choices = self.sort_choices()
            for row in self.sorting.members:
                row.refresh(choices)
        finally:
            self._quiet = False
        self._spec = self._collect()
        self._every_field.layout.display = "none" if self._spec.get("select") else ""
        self._every_field.value = self.default_columns_note(self._spec.get("entity"))
        self._validate()
        for callback in self._callbacks:
            callback(self)

    def default_columns_note(self, entity) -> str:
        """What a spec without select shows: the default columns by their labels."""
        info = self.catalog.schema.table(entity) if isinstance(entity, str) else None
        if info is None:
            return "<i>No columns chosen: every field of the entity.</i>"
        labels = ", ".join(html.escape(c.label) for c in default_columns(info, self.catalog.schema))
        return f"<i>No columns chosen: the default columns ({labels}).</i>"

    def title_field(self, entity: str) -> str | None:
        return ENTITIES[entity].title_field if entity in ENTITIES else None

    def suggester(self, entity: str, path: str) -> Suggest:
        """Distinct values of a text field, looked up through the current source when asked."""
        return lambda text: self.source.distinct(entity, path, text)

    def sort_choices(self) -> list[tuple[str, str]]:
        """What can be sorted by: the fields, or, once grouped, the group keys and aggregates."""
        entity = self.entity.value
        group_by, aggregates = self.grouping.to_spec(), self.aggregates.to_spec()
        if group_by or aggregates:
            try:
                parsed = parse({"entity": entity, "group_by": group_by, "aggregates": aggregates})
            except QuerySpecError:
                return []
            out = []
            for key in parsed.group_by:
                choice = self.catalog.field(entity, key.field)
                plain = key.alias == key.field and not key.trunc
                out.append((choice.label if plain and choice else key.alias, key.alias))
            return out + [(agg.alias, agg.alias) for agg in parsed.aggregates]
        choices = [(c.label, c.path) for c in self.catalog.fields(entity)]
        aliases = [item["as"] for item in self.columns.to_spec() if isinstance(item, dict)]
        return choices + [(alias, alias) for alias in aliases if alias not in {p for _, p in choices}]

    # -- inside ------------------------------------------------------------------------------

    def _entity_changed(self, change) -> None:
        if not self._quiet:
            self.spec = {"entity": change["new"]}

    def _collect(self) -> dict:
        spec: dict[str, Any] = {"entity": self.entity.value}
        if select := self.columns.to_spec():
            spec["select"] = select
        where = self.where.to_spec()
        if where["rules"]:
            spec["where"] = where
        if group_by := self.grouping.to_spec():
            spec["group_by"] = group_by
        if aggregates := self.aggregates.to_spec():
            spec["aggregates"] = aggregates
        if "having" in self._kept:
            spec["having"] = copy.deepcopy(self._kept["having"])
        if order_by := self.sorting.to_spec():
            spec["order_by"] = order_by
        limit = self.limit.value.strip()
        if limit:
            spec["limit"] = int(limit) if _DIGITS.match(limit) else limit
        for key in ("offset", "name", "description", "parameters"):
            if key in self._kept:
                spec[key] = copy.deepcopy(self._kept[key])
        return spec

    def _places(self) -> list:
        """Every row and spot an error can be shown at, with its current path."""
        self.where.assign_paths("where")
        for rows in (self.columns, self.grouping, self.aggregates, self.sorting):
            rows.assign_paths()
        places = list(self.where.rows())
        for rows in (self.columns, self.grouping, self.aggregates, self.sorting):
            places += list(rows.rows())
        return [*places, self._limit_spot]

    def _validate(self) -> None:
        try:
            self.compile()
            self.error = None
        except QuerySpecError as exc:
            self.error = exc
        places = self._places()
        for place in places:
            place.show_error(None)
        show_error(self.error_html, str(self.error) if self.error else None)
        if self.error is not None:
            target = place_for(places, self.error.path)
            if target is not None:
                target.show_error(self.error.problem)

    @property
    def error_row(self):
        """The row the current error is shown beside (None when valid or not about a row)."""
        if self.error is None:
            return None
        return place_for(self._places(), self.error.path)


def place_for(places: list, path: str):
    """The row whose path is the longest prefix of an error's path (``where.rules[1]`` for
    ``where.rules[1].value[0]``)."""
    best = None
    for place in places:
        p = place.path
        if p and (path == p or path.startswith(p + ".") or path.startswith(p + "[")):
            if best is None or len(p) > len(best.path):
                best = place
    return best
