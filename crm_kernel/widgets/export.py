"""Buttons that export a result grid's whole result to CSV, Excel or Parquet, and a link to
the file.

The work is :func:`crm_kernel.export.export_result`: one consistent copy (one PostgreSQL
transaction and cursor, or one pinned snapshot), a page at a time, written beside the target
and renamed into place when complete. This widget picks the file name, runs it and shows the
link, or the library's message when it fails.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import ipywidgets as widgets

from ..errors import CrmError
from ..export import EXCEL_MAX_ROWS, EXPORT_PAGE, FORMATS, Exported, export_result
from .download import DownloadLink
from .rules import show_error

__all__ = ["EXCEL_MAX_ROWS", "EXPORT_PAGE", "FORMATS", "ExportPanel", "Exported"]


class ExportPanel:
    """Buttons exporting a ResultGrid's whole result (as the grid narrows it) and a link to the
    file. Files go to ``folder`` (default: a temporary folder of the session, where each new
    export replaces the previous one). ``on_page(rows_written)`` is called after each page."""

    def __init__(self, grid, folder: Path | str | None = None, page_size: int = EXPORT_PAGE, on_page=None):
        self.grid = grid
        self.page_size = page_size
        self.on_page = on_page
        self._temporary = None if folder is not None else tempfile.TemporaryDirectory(prefix="crm-exports-")
        self.folder = Path(folder) if folder is not None else Path(self._temporary.name)
        self.buttons = {}
        for fmt, (_, _, label) in FORMATS.items():
            button = widgets.Button(
                description=label, tooltip=f"Export the whole result as {label}", layout=widgets.Layout(width="90px")
            )
            button.add_class(f"crm-export-{fmt}")
            button.on_click(lambda _, fmt=fmt: self.export(fmt))
            self.buttons[fmt] = button
        self.link = DownloadLink()
        self.message = widgets.HTML("")
        self.message.add_class("crm-export-message")
        self.last: Exported | None = None
        self.widget = widgets.HBox([widgets.Label("Export:"), *self.buttons.values(), self.link, self.message])
        self.widget.add_class("crm-export")

    def export(self, fmt: str) -> Exported | None:
        """Write the whole result; shows a download link (or why not) and returns what was written."""
        spec = self.grid.view_spec
        if spec is None:
            show_error(self.message, "run a query first")
            return None
        if fmt == "xlsx" and (self.grid.total or 0) > EXCEL_MAX_ROWS:
            show_error(
                self.message,
                f"Excel holds at most {EXCEL_MAX_ROWS:,} rows on a sheet; this result has "
                f"{self.grid.total:,}: export it as CSV or Parquet",
            )
            return None
        suffix, mime, _ = FORMATS[fmt]
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = self.folder / f"{spec['entity']}-{stamp}{suffix}"
        source = self.grid.source
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            exported = export_result(
                source.crm,
                spec,
                fmt,
                path,
                backend=source.backend,
                snapshot=source.engine_snapshot,
                page_size=self.page_size,
                on_page=self.on_page,
            )
        except OSError as exc:  # the folder itself could not be made
            show_error(self.message, f"cannot write {path}: {exc.strerror or exc}")
            return None
        except CrmError as exc:
            show_error(self.message, str(exc))
            return None
        if self._temporary is not None and self.last is not None and self.last.path != path:
            self.last.path.unlink(missing_ok=True)
        self.last = exported
        self.link.offer(path, mime)
        self.message.value = f"{exported.rows:,} rows"
        return self.last
