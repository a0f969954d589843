"""Workbench: the query builder, its SQL, Run and Stop buttons, the result grid, export and saved
views in one widget.

    from crm_kernel.widgets import Workbench
    wb = Workbench(crm)        # display it; wb.builder, wb.grid, wb.run()

The Run button runs the query on a worker thread, so that the kernel stays free to receive a
click on Stop, which cancels it through the query engine's RunHandle.
"""

from __future__ import annotations

import html
import threading

import ipywidgets as widgets
import sqlalchemy as sa

from ..errors import CrmError, QuerySpecError
from ..query import QueryCancelled, RunHandle, engines
from .builder import DEFAULT_ENTITY, QueryBuilder
from .export import ExportPanel
from .fields import FieldCatalog
from .grid import PAGE_SIZE, GridRun, ResultGrid
from .history import RunHistory
from .parameters import ParameterForm
from .rules import show_error
from .saved import SavedViews
from .source import BACKENDS, Source


def _run_errors() -> tuple[type[Exception], ...]:
    """What a run can fail with besides a refused spec: a missing snapshot, a database gone away.
    Only the engines already loaded can have raised anything (importing DuckDB's here would cost
    every open workbench about 40 MB)."""
    return (CrmError, sa.exc.SQLAlchemyError, *(error for e in engines.loaded() for error in e.errors))


class Workbench(widgets.VBox):
    """Build a query, preview its SQL, run it live or on the latest snapshot, page through the
    result, export it, save it as a view. ``snapshot``: an opened snapshot or a folder
    (default: the newest under ``$CRM_HOME/snapshots``); ``export_dir``: where exports are
    written (default: a temporary folder)."""

    def __init__(
        self,
        crm,
        snapshot=None,
        *,
        entity: str = DEFAULT_ENTITY,
        page_size: int = PAGE_SIZE,
        export_dir=None,
        show_first_rows: bool = True,
    ):
        self.crm = crm
        self.source = Source(crm, "postgres", snapshot)
        catalog = FieldCatalog.load(crm)
        self.builder = QueryBuilder(crm, {"entity": entity}, catalog=catalog, source=self.source)
        self.grid = ResultGrid(source=self.source, page_size=page_size)
        self.parameters = ParameterForm(self.builder, self.source)  # values of the query's parameters
        self.last_run: GridRun | None = None
        self.first_rows: int | None = None  # rows of the opening view, before any Run

        self.run_button = widgets.Button(
            description="Run", button_style="primary", tooltip="Run the query", layout=widgets.Layout(width="90px")
        )
        self.run_button.add_class("crm-run")
        self.stop_button = widgets.Button(
            description="Stop", disabled=True, tooltip="Stop the running query", layout=widgets.Layout(width="70px")
        )
        self.stop_button.add_class("crm-stop")
        self._worker: threading.Thread | None = None
        self.backend = widgets.ToggleButtons(
            options=[(label, name) for name, label in BACKENDS.items()],
            value="postgres",
            style={"button_width": "190px"},
        )
        self.backend.add_class("crm-backend")
        self.sql_toggle = widgets.ToggleButton(
            value=False, description="SQL", tooltip="Show the SQL of the query", layout=widgets.Layout(width="70px")
        )
        self.sql_toggle.add_class("crm-sql-toggle")
        self.status = widgets.HTML("")
        self.status.add_class("crm-row-count")
        self.take_snapshot = widgets.Button(
            description="Take a snapshot",
            icon="camera",
            tooltip="Copy the CRM into a DuckDB snapshot now, then run on it",
            layout=widgets.Layout(width="160px", display="none"),
        )
        self.take_snapshot.add_class("crm-take-snapshot")
        self.sql = widgets.HTML("", layout=widgets.Layout(display="none"))
        self.sql.add_class("crm-sql")
        self.history = RunHistory(self._reload)
        self.exports = ExportPanel(self.grid, export_dir)
        self.saved = SavedViews(crm, self.builder)
        self.panels = widgets.Accordion(
            children=[self.saved, self.history], titles=("Saved views", "Recent runs"), selected_index=None
        )
        self.panels.add_class("crm-panels")

        self.run_button.on_click(lambda _: self.start())
        self.take_snapshot.on_click(lambda _: self.snapshot_and_run())
        self.stop_button.on_click(lambda _: self.stop())
        self.sql_toggle.observe(lambda _: self._show_sql(), "value")
        self.backend.observe(self._backend_changed, "value")
        self.builder.on_change(lambda _: self._spec_changed())
        super().__init__(
            [
                self.builder,
                self.parameters,
                widgets.HBox(
                    [self.run_button, self.stop_button, self.sql_toggle, self.backend, self.status, self.take_snapshot],
                    layout=widgets.Layout(align_items="center"),
                ),
                self.sql,
                self.grid,
                self.exports.widget,
                self.panels,
            ]
        )
        self.add_class("crm-workbench")
        if show_first_rows:
            self.show_first_rows()

    def show_first_rows(self) -> None:
        """What the workbench opens with: the entity's first page, not an empty grid. It is not
        a run of the user's, so it stays out of the recent runs; it is a plain table (Python
        values), so that a workbench only looked at never loads polars, pandas or the DataGrid."""
        try:
            self.first_rows = self.grid.preview(self.builder.spec, self.source)
        except _run_errors() as exc:
            show_error(self.status, f"Not run: {_first_line(exc)}")
            return
        self.status.value = (
            f"<span style='color:#666'>The first rows of {html.escape(self.builder.spec['entity'])}: "
            "add rules and press Run</span>"
        )

    # -- actions -----------------------------------------------------------------------------

    def start(self) -> None:
        """What Run does: :meth:`run` on a worker thread (one run at a time); :meth:`wait` joins it."""
        if self.running:
            return
        self._worker = threading.Thread(target=self.run, name="crm-workbench-run", daemon=True)
        self._worker.start()

    def stop(self) -> None:
        """What Stop does: cancel the running query (on PostgreSQL or DuckDB)."""
        handle = self.source.handle
        if handle is not None:
            handle.cancel()

    def wait(self, timeout: float | None = None) -> None:
        """Until the run started by :meth:`start` has finished."""
        if self._worker is not None:
            self._worker.join(timeout)

    @property
    def running(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    def run(self) -> GridRun | None:
        """Run the builder's spec and show its first page; nothing runs while it is invalid."""
        if self.builder.error is not None:
            show_error(self.status, "Not run: fix the query first")
            return None
        spec = self.builder.spec
        self.source.handle = RunHandle()
        # While it runs the engine stays put (a count and a page must come from the same one).
        self.run_button.disabled, self.stop_button.disabled, self.backend.disabled = True, False, True
        self.status.value = "<i>Running…</i>"
        try:
            run = self.grid.show(spec, self.source)
        except QueryCancelled as exc:
            show_error(self.status, f"Stopped: {_first_line(exc)}")
            return None
        except _run_errors() as exc:
            show_error(self.status, f"Not run: {_first_line(exc)}")
            if _no_snapshot(exc):
                self.take_snapshot.layout.display = ""  # offer the way out
            return None
        finally:
            self.source.handle = None
            self.run_button.disabled, self.stop_button.disabled, self.backend.disabled = False, True, False
        self.last_run = run
        rows = f"{run.rows}" if run.rows is not None else f"{run.page_rows}+"
        self.status.value = (
            f"<b>{rows} rows</b> in {run.seconds * 1000:.1f} ms "
            f"<span style='color:#666'>· {html.escape(self.source.describe())}</span>"
        )
        self.history.add(spec, self.source.describe(), run.rows, run.seconds)
        self.exports.link.clear()
        self.exports.message.value = ""
        return run

    def snapshot_and_run(self) -> GridRun | None:
        """What "Take a snapshot" does: export one where the workbench looks for them, then run."""
        self.take_snapshot.disabled = True
        self.status.value = "<i>Taking a snapshot…</i>"
        try:
            self.crm.snapshot(self.source.snapshot_parent())
        except _run_errors() as exc:
            show_error(self.status, f"No snapshot taken: {_first_line(exc)}")
            return None
        finally:
            self.take_snapshot.disabled = False
        self.take_snapshot.layout.display = "none"
        return self.run()

    @property
    def sql_preview(self) -> str:
        """The SQL of the current spec for the chosen backend, values inline (for reading)."""
        return self.builder.preview(self.backend.value)

    # -- inside ------------------------------------------------------------------------------

    def _reload(self, spec: dict) -> None:
        self.builder.spec = spec

    def _backend_changed(self, change) -> None:
        self.source.backend = change["new"]
        self._show_sql()

    def _spec_changed(self) -> None:
        self._show_sql()

    def _show_sql(self) -> None:
        if not self.sql_toggle.value:
            self.sql.layout.display = "none"
            return
        self.sql.layout.display = ""
        try:
            text = self.sql_preview
        except QuerySpecError as exc:
            text = f"-- not valid yet: {exc}"
        self.sql.value = (
            "<pre style='white-space:pre-wrap;font-family:monospace;font-size:12px;"
            "background:#f6f8fa;padding:6px;margin:0'>"
            f"{html.escape(text)}</pre>"
        )


def _no_snapshot(exc: Exception) -> bool:
    """Whether a run failed for want of a snapshot (imported only then: snapshots are heavy)."""
    from ..snapshot.errors import NoSnapshotError

    return isinstance(exc, NoSnapshotError)


def _first_line(exc: Exception) -> str:
    return html.escape(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
