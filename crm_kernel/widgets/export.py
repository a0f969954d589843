"""Export a query's full result to CSV, Excel or Parquet, a page at a time.

The rows are read in pages (``Source.pages``) and each page is written before the next one is
read, so a result of millions of rows never sits in the kernel at once. CSV and Parquet keep
every value exactly (numbers as decimals, timestamps with their zone); Excel gets numbers,
dates and local times in the CRM's time zone, money formatted with two decimals.
"""

from __future__ import annotations

import datetime as dt
import decimal
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import ipywidgets as widgets
import polars as pl
import pyarrow.parquet as pq

from ..errors import CrmError
from .download import DownloadLink
from .rules import show_error

FORMATS = {  # name -> (file suffix, media type, button label)
    "csv": (".csv", "text/csv", "CSV"),
    "xlsx": (".xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "Excel"),
    "parquet": (".parquet", "application/vnd.apache.parquet", "Parquet"),
}
EXPORT_PAGE = 50_000  # rows read and written at a time
EXCEL_MAX_ROWS = 1_048_575  # one sheet's rows, less the header


@dataclass
class Exported:
    path: Path
    rows: int
    bytes: int
    seconds: float


def write(pages: Iterable[pl.DataFrame], fmt: str, path: Path) -> int:
    """Write the pages to ``path`` in ``fmt``; returns the rows written."""
    path = Path(path)
    if fmt == "csv":
        return _csv(pages, path)
    if fmt == "parquet":
        return _parquet(pages, path)
    if fmt == "xlsx":
        return _excel(pages, path)
    raise CrmError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")


def _csv(pages, path: Path) -> int:
    rows = 0
    with path.open("wb") as out:
        for i, frame in enumerate(pages):
            frame.write_csv(out, include_header=i == 0)
            rows += frame.height
    return rows


def _parquet(pages, path: Path) -> int:
    rows, writer = 0, None
    try:
        for frame in pages:
            table = frame.to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression="zstd")
            writer.write_table(table)
            rows += frame.height
    finally:
        if writer is not None:
            writer.close()
    return rows


def _excel(pages, path: Path) -> int:
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False,
                                           "strings_to_formulas": False, "strings_to_urls": False})
    try:
        sheet = book.add_worksheet("Result")
        header = book.add_format({"bold": True})
        formats = {
            "money": book.add_format({"num_format": "#,##0.00"}),
            "date": book.add_format({"num_format": "yyyy-mm-dd"}),
            "timestamp": book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"}),
        }
        rows = 0
        for i, frame in enumerate(pages):
            if i == 0:
                sheet.write_row(0, 0, frame.columns, header)
            if rows + frame.height > EXCEL_MAX_ROWS:
                raise CrmError(f"Excel holds at most {EXCEL_MAX_ROWS:,} rows on a sheet; this result has more: "
                               "export it as CSV or Parquet")
            kinds = [_excel_kind(dtype) for dtype in frame.dtypes]
            for r, values in enumerate(frame.iter_rows(), start=rows + 1):
                for c, (value, kind) in enumerate(zip(values, kinds, strict=True)):
                    _excel_cell(sheet, r, c, value, kind, formats)
            rows += frame.height
    finally:
        book.close()
    return rows


def _excel_kind(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Decimal):
        return "money" if dtype.scale == 2 else "number"
    if dtype.is_numeric():
        return "number"
    if dtype == pl.Date:
        return "date"
    if isinstance(dtype, pl.Datetime):
        return "timestamp"
    if dtype == pl.Boolean:
        return "boolean"
    return "text"


def _excel_cell(sheet, row: int, col: int, value, kind: str, formats: dict) -> None:
    if value is None:
        return
    if kind in ("money", "number"):
        number = float(value) if isinstance(value, decimal.Decimal) else value
        sheet.write_number(row, col, number, formats.get(kind))
    elif kind == "date":
        sheet.write_datetime(row, col, dt.datetime.combine(value, dt.time()), formats["date"])
    elif kind == "timestamp":
        sheet.write_datetime(row, col, value.replace(tzinfo=None), formats["timestamp"])  # local time
    elif kind == "boolean":
        sheet.write_boolean(row, col, value)
    else:
        sheet.write_string(row, col, str(value))


class ExportPanel:
    """Buttons exporting a ResultGrid's whole result (as the grid narrows it) and a link to the
    file. Files go to ``folder`` (default: a temporary folder of the session, where each new
    export replaces the previous one)."""

    def __init__(self, grid, folder: Path | str | None = None, page_size: int = EXPORT_PAGE):
        self.grid = grid
        self.page_size = page_size
        self._temporary = None if folder is not None else tempfile.TemporaryDirectory(prefix="crm-exports-")
        self.folder = Path(folder) if folder is not None else Path(self._temporary.name)
        self.buttons = {}
        for fmt, (_, _, label) in FORMATS.items():
            button = widgets.Button(description=label, tooltip=f"Export the whole result as {label}",
                                    layout=widgets.Layout(width="90px"))
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
            show_error(self.message, f"Excel holds at most {EXCEL_MAX_ROWS:,} rows on a sheet; this result has "
                                     f"{self.grid.total:,}: export it as CSV or Parquet")
            return None
        suffix, mime, _ = FORMATS[fmt]
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = self.folder / f"{spec['entity']}-{stamp}{suffix}"
        started = time.perf_counter()
        try:
            rows = write(self.grid.source.pages(spec, self.page_size), fmt, path)
        except CrmError as exc:
            path.unlink(missing_ok=True)
            show_error(self.message, str(exc))
            return None
        if self._temporary is not None and self.last is not None and self.last.path != path:
            self.last.path.unlink(missing_ok=True)
        self.last = Exported(path, rows, path.stat().st_size, time.perf_counter() - started)
        self.link.offer(path, mime)
        self.message.value = f"{rows:,} rows"
        return self.last
