"""Reading a file into a frame of text columns: CSV of any delimiter, quoting, BOM and
encoding, or Excel (.xlsx). Every cell stays text here; mapping and validation give it a type.

    table = read_table(Path("contacts.csv"))      # encoding and delimiter detected
    table.frame, table.encoding, table.line_of(row_index)
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ..errors import ImportRefusedError

EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods")
_SNIFF_BYTES = 64 * 1024
_DELIMITERS = ",;\t|"


@dataclass
class Table:
    """A file's rows as text columns named by its header, and how it was read."""

    frame: pl.DataFrame
    name: str
    encoding: str | None = None  # None for Excel
    delimiter: str | None = None
    _text: str | None = field(default=None, repr=False)  # decoded CSV, to find lines of rows
    _lines: list[int] | None = field(default=None, repr=False)

    def line_of(self, rows: pl.Series) -> pl.Series:
        """The file line where each row (0-based index into ``frame``) starts; the header is line 1."""
        if self._text is None or rows.null_count() == rows.len() or self._one_line_per_row():
            return (rows.cast(pl.Int64) + 2).alias("line")  # Excel too: one row per sheet row
        if self._lines is None:
            self._lines = _row_lines(self._text, self.delimiter or ",")
        starts = pl.Series(self._lines, dtype=pl.Int64)
        return starts.gather(rows).alias("line")

    def _one_line_per_row(self) -> bool:
        """No quoted newlines and no blank lines: row i is on line i + 2 (a cheap count)."""
        text = self._text or ""
        lines = text.count("\n") + (0 if text.endswith("\n") else 1)
        return lines == self.frame.height + 1


def read_table(
    source: Path | str | bytes, *, name: str | None = None, encoding: str | None = None, sheet: str | int | None = None
) -> Table:
    """Read ``source`` (a path, or the bytes of an uploaded file with its ``name``)."""
    label = name or (Path(source).name if not isinstance(source, bytes) else "upload.csv")
    data = source if isinstance(source, bytes) else _read_bytes(Path(source))
    if label.lower().endswith(EXCEL_SUFFIXES):
        return _read_excel(data, label, sheet)
    return _read_csv(data, label, encoding)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ImportRefusedError(f"cannot read {path}: {exc.strerror or exc}") from exc


def detect_encoding(data: bytes) -> str:
    """UTF-8 (with or without a BOM) when the bytes decode as such, else what charset-normalizer
    finds, else cp1252 (which decodes almost anything a Western spreadsheet writes)."""
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(data[: _SNIFF_BYTES * 4]).best()
    except ImportError:  # optional: cp1252 is the usual answer anyway
        best = None
    # On short samples the detector often can't tell the Windows code pages apart; a file
    # that reads as cp1252 too is taken as cp1252, the usual spreadsheet export.
    if best is not None and "cp1252" not in [best.encoding, *best.could_be_from_charset]:
        return best.encoding
    return "cp1252"


def _decode(data: bytes, encoding: str | None) -> tuple[str, str]:
    chosen = encoding or detect_encoding(data)
    try:
        codecs.lookup(chosen)
    except LookupError:
        raise ImportRefusedError(f"unknown encoding {chosen!r}; use a name such as utf-8, cp1252 or latin-1") from None
    try:
        text = data.decode(chosen)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportRefusedError(
            f"the file is not valid {chosen} (line {line}: byte {data[exc.start]:#04x}); "
            "name its encoding with --encoding (e.g. cp1252)"
        ) from None
    return text.removeprefix("\ufeff"), chosen


def sniff_delimiter(text: str) -> str:
    """The delimiter of the header and first rows: csv.Sniffer among , ; tab |, else the most frequent."""
    sample = text[:_SNIFF_BYTES]
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        header = sample.split("\n", 1)[0]
        return max(_DELIMITERS, key=header.count)


def _read_csv(data: bytes, label: str, encoding: str | None) -> Table:
    text, chosen = _decode(data, encoding)
    if not text.strip():
        raise ImportRefusedError(f"{label} is empty")
    delimiter = sniff_delimiter(text)
    # A UTF-8 file goes to polars as it is (less its BOM); others as their UTF-8 re-encoding.
    utf8 = codecs.lookup(chosen).name in ("utf-8", "utf-8-sig")
    raw = data.removeprefix(codecs.BOM_UTF8) if utf8 else text.encode("utf-8")
    try:
        frame = pl.read_csv(
            io.BytesIO(raw),
            separator=delimiter,
            infer_schema=False,
            quote_char='"',
            truncate_ragged_lines=False,
            raise_if_empty=True,
        )
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as exc:
        raise ImportRefusedError(f"{label} is not a readable CSV file: {str(exc).splitlines()[0]}") from exc
    return Table(_clean_headers(frame, label), label, chosen, delimiter, _text=text)


def _read_excel(data: bytes, label: str, sheet) -> Table:
    options = {"sheet_name": sheet} if isinstance(sheet, str) else {"sheet_id": sheet or 1}
    try:
        frame = pl.read_excel(io.BytesIO(data), engine="calamine", infer_schema_length=0, **options)
    except Exception as exc:  # noqa: BLE001 - the reader's errors name no common base
        raise ImportRefusedError(f"{label} is not a readable Excel file: {str(exc).splitlines()[0]}") from exc
    frame = frame.with_columns(pl.all().cast(pl.String))
    return Table(_clean_headers(frame, label), label)


def _clean_headers(frame: pl.DataFrame, label: str) -> pl.DataFrame:
    names = [str(c).strip() for c in frame.columns]
    if not names or all(not n for n in names):
        raise ImportRefusedError(f"{label} has no header row")
    seen: dict[str, int] = {}
    unique = []
    for n in names:  # a repeated header keeps its place with a suffix: "Phone", "Phone (2)"
        seen[n] = seen.get(n, 0) + 1
        unique.append(n if seen[n] == 1 else f"{n} ({seen[n]})")
    # Blank cells are missing values; surrounding spaces are never meant.
    return frame.rename(dict(zip(frame.columns, unique, strict=True))).with_columns(
        pl.all().str.strip_chars().replace("", None)
    )


def _row_lines(text: str, delimiter: str) -> list[int]:
    """The line each data row starts on, read with the csv module (quoted newlines span lines)."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    starts, line = [], 1
    next(reader, None)
    line = reader.line_num + 1
    for row in reader:
        if row:  # blank lines are no rows, to polars either
            starts.append(line)
        line = reader.line_num + 1
    return starts
