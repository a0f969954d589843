"""ResultGrid: a query's result in an ipydatagrid, one page at a time.

ipydatagrid's DataGrid ships its whole frame to the browser, so the grid never gives it more
than one page (1,000 rows by default) and the kernel holds only that page: pages are fetched on
demand by running the spec again with ``limit``/``offset`` (the engine orders limited results
stably, by the spec's sort and then by id). The total comes from a count spec.

Sorting and filtering a column in the grid's header menu re-run the query with that sort or
filter, so they apply to the whole result, not only to the page on screen. Money shows with two
decimals, dates as ``2026-01-31``, timestamps in the CRM's time zone, enum values as words.

When the rows are records that have a page (companies, contacts, deals, activities, with their
``id`` among the columns), selecting a cell offers "Open" for its row's record page.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from ..errors import CrmError, QuerySpecError
from ..model import ENTITIES
from ..services.related import PAGE_ENTITIES, title_of
from .record_page import record_url
from .rules import show_error
from .source import Source, narrowed, page_spec

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl
    from ipydatagrid import DataGrid, TextRenderer

PAGE_SIZE = 1000
GRID_HEIGHT = 440  # pixels: about twenty rows, then the grid scrolls

# ipydatagrid's filter operators -> the query language's
_FILTERS = {
    "<": "<",
    ">": ">",
    "<=": "<=",
    ">=": ">=",
    "=": "=",
    "!=": "!=",
    "empty": "null",
    "notempty": "notNull",
    "in": "in",
    "between": "between",
    "contains": "contains",
    "stringContains": "contains",
    "!contains": "doesNotContain",
    "startswith": "beginsWith",
    "endswith": "endsWith",
    "!startswith": "doesNotBeginWith",
    "!endswith": "doesNotEndWith",
}


@dataclass
class GridRun:
    """What a run showed: the result's row count (None while unknown) and the seconds the
    engine took for the count and the first page."""

    rows: int | None
    seconds: float
    page_rows: int


def enum_label(value: str) -> str:
    """``"new_business"`` -> ``"New business"``."""
    return value.replace("_", " ").capitalize()


# Every enum value of the catalog by its label, to read the grid's filters back into values.
ENUM_WORDS = {enum_label(v): v for e in ENTITIES.values() for f in e.fields for v in f.values}


# Column widths in pixels by field type (the user can drag them wider).
WIDTHS = {
    "text": 200,
    "uuid": 110,
    "money": 120,
    "number": 110,
    "float": 110,
    "integer": 90,
    "date": 100,
    "timestamp": 150,
    "enum": 120,
    "boolean": 70,
    "json": 160,
    "tags": 160,
}
# ipydatagrid shows an empty number as "NaN": show nothing instead
_BLANK_NAN = "cell.value !== cell.value ? ' ' : default_value"


def display_frame(frame: pl.DataFrame, columns, start: int) -> tuple[pd.DataFrame, dict, dict]:
    """The page as the browser gets it: money and numbers as floats (formatted by renderers),
    dates and timestamps as text, enums as words, empty values blank. Returns the frame, its
    renderers and its column widths."""
    import pandas as pd
    import polars as pl
    from ipydatagrid import TextRenderer, VegaExpr

    out: dict[str, Any] = {}
    renderers: dict[str, TextRenderer] = {}
    widths: dict[str, int] = {}
    for column in columns:
        series = frame[column.name]
        kind = column.type
        widths[column.name] = max(WIDTHS.get(kind, 140), 9 * len(column.name) + 24)
        if kind in ("money", "number", "float", "integer"):
            out[column.name] = series.cast(pl.Float64).to_numpy()
            if kind == "money":
                fmt = ",.2f"
            elif kind == "integer":
                fmt = ",d"
            else:
                fmt = f",.{column.scale}f" if column.scale is not None else ",.6~f"
            renderers[column.name] = TextRenderer(
                format=fmt, horizontal_alignment="right", text_value=VegaExpr(_BLANK_NAN)
            )
            continue
        if kind == "date":
            series = series.dt.strftime("%Y-%m-%d")
        elif kind == "timestamp":
            series = series.dt.strftime("%Y-%m-%d %H:%M:%S")
        elif kind == "enum":
            series = series.map_elements(enum_label, return_dtype=pl.String)
        elif kind == "tags":
            series = series.list.join(", ")
        out[column.name] = series.cast(pl.String).fill_null("").to_list()
    index = pd.RangeIndex(start + 1, start + 1 + frame.height, name="#")
    return pd.DataFrame(out, index=index), renderers, widths


def _cell(value) -> str:
    """A value as the preview table shows it: empty for null, lists joined, dates ISO."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if hasattr(value, "isoformat"):
        return value.isoformat(sep=" ") if hasattr(value, "hour") else value.isoformat()
    return str(value)


class ResultGrid(widgets.VBox):
    """The result of a spec, a page at a time: ``show(spec)``, then ``next_page()`` /
    ``previous_page()``; ``frame`` is the page on screen (the only rows held)."""

    def __init__(self, crm=None, *, source: Source | None = None, page_size: int = PAGE_SIZE):
        if source is None and crm is None:
            raise TypeError("ResultGrid needs a crm or a source")
        self.source = source or Source(crm)
        self.page_size = page_size
        self.spec: dict | None = None  # as given to show()
        self.view_spec: dict | None = None  # with the grid's own sorts and filters
        self.total: int | None = None
        self.start = 0
        self.frame: pl.DataFrame | None = None
        self.columns: list = []
        self.fetches = 0  # queries run for pages (tests and curious users)
        self._has_more = False
        self._quiet = False

        # The DataGrid comes with the first result: ipydatagrid and pandas are about 130 MB
        # resident, which a workbench that is only looked at never needs.
        self.datagrid: DataGrid | None = None
        self.placeholder = widgets.Box(layout=widgets.Layout(height="62px", width="100%"))
        self.previous_button = widgets.Button(
            description="◀ Previous", disabled=True, layout=widgets.Layout(width="110px")
        )
        self.previous_button.add_class("crm-page-previous")
        self.next_button = widgets.Button(description="Next ▶", disabled=True, layout=widgets.Layout(width="110px"))
        self.next_button.add_class("crm-page-next")
        self.page_label = widgets.Label("")
        self.page_label.add_class("crm-page-label")
        self.message = widgets.HTML("")
        self.message.add_class("crm-grid-message")
        self.open_link = widgets.HTML("")  # the selected row's record page
        self.open_link.add_class("crm-open-record")
        self.previous_button.on_click(lambda _: self.previous_page())
        self.next_button.on_click(lambda _: self.next_page())
        super().__init__(
            [
                widgets.HBox(
                    [self.previous_button, self.page_label, self.next_button, self.open_link],
                    layout=widgets.Layout(align_items="center"),
                ),
                self.message,
                self.placeholder,
            ]
        )
        self.add_class("crm-result-grid")

    # -- what callers do ---------------------------------------------------------------------

    def preview(self, spec: dict, source: Source | None = None) -> int:
        """The spec's first page as a plain table, read as Python values: what a workbench opens
        with, before any Run, without loading polars, pandas or the DataGrid. Returns its rows."""
        source = source or self.source
        result = source.execute(page_spec(source.stable(spec), 0, self.page_size), fetch="rows")
        rows = result.dicts()
        names = [column.name for column in result.compiled.columns]
        head = "".join(
            f"<th title='{html.escape(column.name)}'>{html.escape(column.label or column.name)}</th>"
            for column in result.compiled.columns
        )
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_cell(row[name]))}</td>" for name in names) + "</tr>" for row in rows
        )
        table = widgets.HTML(
            f"<div class='crm-preview-table' style='max-height:{GRID_HEIGHT}px;overflow:auto'>"
            f"<style>.crm-preview-table td,.crm-preview-table th{{padding:2px 8px;"
            f"border-bottom:1px solid #eee;white-space:nowrap;font-size:12px;text-align:left}}</style>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
        )
        self.placeholder.children = [table]
        self.placeholder.layout.height = None
        self.page_label.value = f"first {len(rows)} rows" if rows else "no rows"
        return len(rows)

    def show(self, spec: dict, source: Source | None = None) -> GridRun:
        """Show the first page of ``spec``'s result; returns its row count and timing."""
        if source is not None:
            self.source = source
        self.spec = spec
        if self.datagrid is not None:
            self._quiet = True
            try:
                self.datagrid._transforms = []  # a new question: the old column sorts and filters go
            finally:
                self._quiet = False
        return self._run(spec)

    def next_page(self) -> None:
        if self._has_more:
            self._load(self.start + self.page_size)

    def previous_page(self) -> None:
        if self.start > 0:
            self._load(max(0, self.start - self.page_size))

    @property
    def page_number(self) -> int:
        return self.start // self.page_size

    @property
    def pages(self) -> int | None:
        return None if self.total is None else max(1, -(-self.total // self.page_size))

    # -- inside ------------------------------------------------------------------------------

    def _run(self, spec: dict) -> GridRun:
        self.view_spec = spec
        self.total, seconds = self.source.count(spec)
        self.start = 0
        seconds += self._load(0)
        return GridRun(self.total, seconds, self.frame.height)

    def _load(self, start: int) -> float:
        grouped_probe = self.total is None  # a grouped result: ask one row more to know if more follow
        size = self.page_size + 1 if grouped_probe else self.page_size
        result = self.source.page(self.view_spec, start, size)
        self.fetches += 1
        frame = result.frame
        if grouped_probe:
            self._has_more = frame.height > self.page_size
            frame = frame.head(self.page_size)
            if not self._has_more:
                self.total = start + frame.height
        else:
            self._has_more = start + frame.height < self.total
        self.start, self.frame, self.columns = start, frame, result.compiled.columns
        self.open_link.value = ""  # a new page: nothing on it is selected yet
        data, renderers, widths = display_frame(frame, self.columns, start)
        self._make_datagrid()
        self._quiet = True
        try:
            self.datagrid.data = data
            self.datagrid.renderers = renderers
            self.datagrid.column_widths = widths
            self.datagrid.layout.height = f"{min(GRID_HEIGHT, 24 + 20 * max(frame.height, 1) + 18)}px"
        finally:
            self._quiet = False
        self._show_position()
        return result.execute_seconds

    def _make_datagrid(self) -> None:
        """The first result replaces the placeholder with the DataGrid."""
        if self.datagrid is not None:
            return
        import pandas as pd
        from ipydatagrid import DataGrid

        self.datagrid = DataGrid(
            pd.DataFrame(),
            selection_mode="cell",
            base_column_size=120,
            layout=widgets.Layout(height="62px", width="100%"),
        )
        self.datagrid.add_class("crm-datagrid")
        self.datagrid.observe(self._transforms_changed, "_transforms")
        self.datagrid.observe(lambda _: self._show_open_link(), "selections")
        self.children = tuple(self.datagrid if child is self.placeholder else child for child in self.children)

    def _show_position(self) -> None:
        first, last = self.start + 1, self.start + self.frame.height
        of = f"{self.total:,}" if self.total is not None else f"more than {last:,}"
        where = " (sorted or filtered in the grid)" if self.view_spec is not self.spec else ""
        self.page_label.value = f"rows {first:,}–{last:,} of {of}{where}" if last >= first else f"no rows{where}"
        self.previous_button.disabled = self.start == 0
        self.next_button.disabled = not self._has_more

    def _transforms_changed(self, change) -> None:
        """A sort or filter chosen in the grid's header: run it on the whole result."""
        if self._quiet or self.spec is None:
            return
        try:
            sort, rules = self.read_transforms(change["new"])
            view = narrowed(self.spec, sort, rules)
            self._run(view)
            show_error(self.message, None)
        except CrmError as exc:
            show_error(self.message, f"this column filter applies to the rows on screen only: {exc}")

    def read_transforms(self, transforms: list[dict]) -> tuple[list[tuple[str, bool]], list[dict]]:
        """ipydatagrid's transforms as sorts ``(column, descending)`` and rules over columns."""
        names = [c.name for c in self.columns]
        sort, rules = [], []
        for transform in transforms:
            column = transform.get("column")
            if column not in names:
                index = transform.get("columnIndex")
                column = names[index - 1] if isinstance(index, int) and 0 < index <= len(names) else None
            if column is None:
                continue  # the row number column
            if transform.get("type") == "sort":
                sort.append((column, bool(transform.get("desc"))))
            elif transform.get("type") == "filter":
                rules.append(self._rule(column, transform.get("operator"), transform.get("value")))
        return sort, rules

    def _rule(self, column: str, operator: str, value) -> dict:
        if operator not in _FILTERS:
            raise QuerySpecError("filter", f"the grid's filter {operator!r} has no counterpart in a query")
        name = _FILTERS[operator]
        kind = next((c.type for c in self.columns if c.name == column), None)
        enum = kind == "enum"

        def back(v):
            if enum and isinstance(v, str) and v in ENUM_WORDS:
                return ENUM_WORDS[v]
            if isinstance(v, dt.datetime | dt.date):
                return v.isoformat()
            return v

        rule = {"field": column, "operator": name}
        if name not in ("null", "notNull"):
            rule["value"] = [back(v) for v in value if v is not None] if isinstance(value, list) else back(value)
        return rule

    def describe(self) -> str:
        return self.page_label.value

    def selected_record(self) -> tuple[str, str] | None:
        """``(entity, id)`` of the row holding the latest selected cell, when the rows are
        records with a page and their ids are shown; else None."""
        entity = (self.view_spec or {}).get("entity")
        if entity not in PAGE_ENTITIES or self.frame is None or "id" not in self.frame.columns:
            return None
        selections = self.datagrid.selections or []
        if not selections:
            return None
        row = selections[-1].get("r1")
        if not isinstance(row, int) or not 0 <= row < self.frame.height or self.frame["id"][row] is None:
            return None
        return entity, str(self.frame["id"][row])

    def _show_open_link(self) -> None:
        chosen = self.selected_record()
        if chosen is None:
            self.open_link.value = ""
            return
        entity, record_id = chosen
        row = self.frame.row(self.datagrid.selections[-1]["r1"], named=True)
        name = title_of(entity, row)
        self.open_link.value = (
            f"<a class='crm-open-record-link' href='{html.escape(record_url(entity, record_id))}' "
            f"target='_blank' title='Open this row on its record page'>Open "
            f"{html.escape(ENTITIES[entity].singular.lower())} “{html.escape(name)}” ↗</a>"
        )
