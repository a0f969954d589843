"""A query's whole result written to CSV, Excel or Parquet as one consistent copy.

    from crm_kernel.export import export_result
    done = export_result(crm, {"entity": "deals"}, "csv", "deals.csv")   # or backend="duckdb"

The result is read from one moment of the data and streamed a page at a time, so millions of
rows never sit in memory at once and a write made meanwhile never shows up half-way:

- PostgreSQL: one REPEATABLE READ, READ ONLY transaction and one server-side cursor for the
  whole result (pages are fetches from that cursor, not separate OFFSET queries).
- DuckDB: one snapshot, resolved and opened once when the export starts; a snapshot published
  while it runs is not looked at.

The file is written beside the target under a hidden temporary name and renamed into place
only when complete; on any failure (a full disk included) the partial file is removed and an
``ExportError`` says why. CSV and Parquet keep every value exactly (numbers as decimals,
timestamps with their zone); Excel gets numbers, dates and local times in the CRM's time zone,
money formatted with two decimals. Text cells that a spreadsheet would run as a formula are
guarded in CSV (see ``FORMULA_START``); Excel cells are written as strings, never formulas.
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import CrmError
from .query import parse
from .services import audit

# polars, pyarrow, DuckDB and xlsxwriter are imported by the functions that use them: the
# workbench shows its export buttons from this module's FORMATS in every open page, and most
# pages never export (benchmarks/apps.py measures what an open page costs).
if TYPE_CHECKING:
    import polars as pl

FORMATS = {  # name -> (file suffix, media type, label)
    "csv": (".csv", "text/csv", "CSV"),
    "xlsx": (".xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "Excel"),
    "parquet": (".parquet", "application/vnd.apache.parquet", "Parquet"),
}
EXPORT_PAGE = 50_000  # rows read and written at a time
EXCEL_MAX_ROWS = 1_048_575  # one sheet's rows, less the header
# A text cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets
# (tab and carriage return can hide one); OWASP's advice is a leading single quote.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PARTIAL_SUFFIX = ".partial"


class ExportError(CrmError):
    """A result could not be exported: the message names the file and says why."""


@dataclass
class Exported:
    path: Path
    rows: int
    bytes: int
    seconds: float


# -- reading one consistent result -----------------------------------------------------------


def result_pages(
    crm, spec, *, backend: str = "postgres", snapshot=None, page_size: int = EXPORT_PAGE
) -> Iterator[pl.DataFrame]:
    """The spec's whole result as frames of at most ``page_size`` rows, all read from one moment
    (at least one frame, empty when the result is). ``snapshot`` (DuckDB): an opened snapshot,
    a snapshot folder or a parent of several (the newest when the export starts)."""
    from .query.engines import ENGINES

    if backend not in ENGINES:
        raise ExportError(f"unknown backend {backend!r}; use one of {', '.join(ENGINES)}")
    return ENGINES[backend].pages(crm, spec, snapshot, page_size)


# -- writing one file -------------------------------------------------------------------------


def export_result(
    crm,
    spec,
    fmt: str,
    path: Path | str,
    *,
    backend: str = "postgres",
    snapshot=None,
    page_size: int = EXPORT_PAGE,
    on_page: Callable[[int], None] | None = None,
) -> Exported:
    """Write the spec's whole result to ``path`` in ``fmt`` (csv, xlsx or parquet).

    ``on_page(rows_written)`` is called after each page is written. The file appears complete
    or not at all; anything that goes wrong raises a ``CrmError`` (``ExportError`` for the file).
    """
    if fmt not in WRITERS:
        raise ExportError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    path = Path(path)
    started = time.perf_counter()
    pages = _counted(result_pages(crm, spec, backend=backend, snapshot=snapshot, page_size=page_size), on_page)
    try:
        rows = write(pages, fmt, path)
    finally:
        pages.close()
    record_export(crm, spec, rows, fmt, path)
    return Exported(path, rows, path.stat().st_size, time.perf_counter() - started)


def record_export(crm, spec, rows: int, fmt: str, target: Path | str) -> None:
    """The audit row of a finished export: who, which query, how many rows, where to."""
    parsed = parse(spec)
    with crm.engine.begin() as conn:
        audit.exported(
            conn, user_id=crm.user_id, entity=parsed.entity, spec=parsed.source, rows=rows, fmt=fmt, target=str(target)
        )


def _counted(pages: Iterator[pl.DataFrame], on_page) -> Iterator[pl.DataFrame]:
    """The pages, telling ``on_page`` after each has been written (when the next is asked for)."""
    written = 0
    try:
        for frame in pages:
            yield frame
            written += frame.height
            if on_page is not None:
                on_page(written)
    finally:
        pages.close()  # ends the read transaction or the DuckDB result at once, also on failure


def write(pages: Iterable[pl.DataFrame], fmt: str, path: Path | str) -> int:
    """Write the pages to ``path`` in ``fmt`` through a temporary file beside it, renamed into
    place when complete; returns the rows written. Nothing is left behind on failure."""
    from xlsxwriter.exceptions import XlsxWriterException

    if fmt not in WRITERS:
        raise ExportError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    path = Path(path)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=PARTIAL_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from exc
    partial = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            rows = WRITERS[fmt](pages, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    except BaseException as exc:
        partial.unlink(missing_ok=True)
        if isinstance(exc, OSError | XlsxWriterException):
            raise ExportError(f"cannot write {path}: {_reason(exc)}; nothing was written") from exc
        raise
    return rows


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    cause = exc.__cause__ or exc.__context__
    return _reason(cause) if isinstance(cause, OSError) else str(exc)


def guard_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """Text cells a spreadsheet would run as a formula get a leading single quote."""
    import polars as pl

    texts = [
        name for name, kind in frame.schema.items() if kind == pl.String or isinstance(kind, pl.Categorical | pl.Enum)
    ]
    if not texts:
        return frame

    def guarded(name: str) -> pl.Expr:
        text = pl.col(name).cast(pl.String)
        risky = pl.any_horizontal(text.str.starts_with(start) for start in FORMULA_START)
        return pl.when(risky).then(pl.lit("'") + text).otherwise(text).alias(name)

    return frame.with_columns(guarded(name) for name in texts)


def flat_lists(frame: pl.DataFrame) -> pl.DataFrame:
    """List cells (tags) as one text, ``"vip, partner"``: CSV and spreadsheets have no lists."""
    import polars as pl

    lists = [name for name, kind in frame.schema.items() if isinstance(kind, pl.List)]
    if not lists:
        return frame
    return frame.with_columns(pl.col(name).cast(pl.List(pl.String)).list.join(", ").alias(name) for name in lists)


def _csv(pages, out) -> int:
    rows = 0
    for i, frame in enumerate(pages):
        guard_formulas(flat_lists(frame)).write_csv(out, include_header=i == 0)
        rows += frame.height
    return rows


def _parquet(pages, out) -> int:
    import pyarrow.parquet as pq

    rows, writer = 0, None
    try:
        for frame in pages:
            table = frame.to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(out, table.schema, compression="zstd")
            writer.write_table(table)
            rows += frame.height
    finally:
        if writer is not None:
            writer.close()
    return rows


def _excel(pages, out) -> int:
    import xlsxwriter

    book = xlsxwriter.Workbook(
        out,
        {"constant_memory": True, "strings_to_numbers": False, "strings_to_formulas": False, "strings_to_urls": False},
    )
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
            frame = flat_lists(frame)
            if i == 0:
                sheet.write_row(0, 0, frame.columns, header)
            if rows + frame.height > EXCEL_MAX_ROWS:
                raise ExportError(
                    f"Excel holds at most {EXCEL_MAX_ROWS:,} rows on a sheet; this result has more: "
                    "export it as CSV or Parquet"
                )
            kinds = [_excel_kind(dtype) for dtype in frame.dtypes]
            for r, values in enumerate(frame.iter_rows(), start=rows + 1):
                for c, (value, kind) in enumerate(zip(values, kinds, strict=True)):
                    _excel_cell(sheet, r, c, value, kind, formats)
            rows += frame.height
    finally:
        book.close()
    return rows


def _excel_kind(dtype: pl.DataType) -> str:
    import polars as pl

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


# The format writers: each takes the pages and an open binary file, returns the rows written.
WRITERS: dict[str, Callable[[Iterable[pl.DataFrame], object], int]] = {
    "csv": _csv,
    "xlsx": _excel,
    "parquet": _parquet,
}
