"""Importing CSV and Excel files in bulk: ``crm.importer.preview(...)`` says what an import
would do; ``crm.importer.run(...)`` does it in one transaction, or nothing at all.

    report = crm.importer.preview("contacts", "people.csv")
    print(report)                           # would create / update / skip / refuse, and why
    report = crm.importer.run("contacts", "people.csv", on_duplicate="update")

One module per step: ``reading`` (files, encodings, delimiters), ``mapping`` (headers to
fields, value renames), ``validation`` (the catalog's rules as polars expressions), ``relations``
(natural keys), ``dedup`` (duplicates and suspected ones), ``plan`` (what happens to each row)
and ``writing`` (COPY and bulk audit rows).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from ..access import rules
from ..errors import ImportRefusedError
from .mapping import IMPORTABLE, Mapping, auto_map, load_mapping
from .plan import ON_DUPLICATE, Plan, build
from .reading import Table, read_table
from .writing import goes_fast, may_go_fast, write

if TYPE_CHECKING:
    from ..client import CRM

__all__ = ["IMPORTABLE", "ImportReport", "Importer", "Mapping", "auto_map", "read_table"]

ERROR_SCHEMA = {"line": pl.Int64, "column": pl.String, "value": pl.String, "reason": pl.String}


@dataclass
class ImportReport:
    """What an import did, or would do: counts, problems with their file lines, duplicates."""

    entity: str
    file: str
    mapping: dict[str, str | None]
    created: int = 0
    updated: int = 0
    skipped: int = 0
    refused: int = 0
    new_related: dict[str, int] = field(default_factory=dict)  # entity -> records the import creates
    errors: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=ERROR_SCHEMA))
    duplicates: pl.DataFrame = field(default_factory=pl.DataFrame)  # line, key, action, matches
    suspected: pl.DataFrame = field(default_factory=pl.DataFrame)  # line, name, similar_to, where, similarity
    encoding: str | None = None
    written: bool = False  # False: a preview, a dry run or a refused import
    rows: int = 0
    fast: bool = False  # the secondary indexes were set aside for the COPY and rebuilt

    def __str__(self) -> str:
        verb = "" if self.written else "would be "
        lines = [
            f"{self.file} -> {self.entity}: {self.rows} rows" + (f" ({self.encoding})" if self.encoding else ""),
            f"  {verb}created: {self.created}",
            f"  {verb}updated: {self.updated}",
            f"  {verb}skipped: {self.skipped}",
            f"  refused: {self.refused}",
        ]
        lines += [f"  new {entity} {verb}created: {n}" for entity, n in self.new_related.items() if n]
        if self.fast:
            lines.append(f"  fast path: {self.entity}' secondary indexes rebuilt after the COPY")
        if not self.suspected.is_empty():
            lines.append(f"  suspected duplicates: {self.suspected.height}")
            for r in self.suspected.head(10).iter_rows(named=True):
                lines.append(
                    f"    line {r['line']}: {r['name']!r} looks like {r['similar_to']!r} "
                    f"({r['where']}, similarity {r['similarity']:.2f})"
                )
        if not self.errors.is_empty():
            lines.append(f"  problems: {self.errors.height}")
            for r in self.errors.head(20).iter_rows(named=True):
                shown = "(blank)" if r["value"] is None else repr(r["value"])
                lines.append(f"    line {r['line']}, {r['column']}: {shown} {r['reason']}")
            if self.errors.height > 20:
                lines.append(f"    ... and {self.errors.height - 20} more (--errors FILE.csv lists them all)")
        return "\n".join(lines)

    def write_errors(self, path: str | Path) -> None:
        """Every problem as CSV: line, column, value, reason."""
        self.errors.write_csv(path)


def _report(plan: Plan, table: Table) -> ImportReport:
    rows = plan.rows
    counts = rows["_status"].value_counts()
    count = dict(zip(counts["_status"].to_list(), counts["count"].to_list(), strict=True))
    line = table.line_of
    errors = (
        plan.problems.select(line(plan.problems["_row"]).alias("line"), "column", "value", "reason")
        if not plan.problems.is_empty()
        else pl.DataFrame(schema=ERROR_SCHEMA)
    )
    dups = plan.duplicates
    first = line(dups["_first_row"])
    duplicates = pl.DataFrame(
        {
            "line": line(dups["_row"]),
            "key": dups["_key"],
            "action": dups["_status"],
            "_first": first,
            "_existing": dups["_existing_id"],
        }
    ).select(
        "line",
        "key",
        "action",
        pl.when(pl.col("_first").is_not_null())
        .then(pl.format("line {}", pl.col("_first")))
        .otherwise(pl.format("existing {}", pl.col("_existing")))
        .alias("matches"),
    )
    s = plan.suspected
    suspected = pl.DataFrame(
        {
            "line": line(s["_row"]),
            "name": s["name"],
            "similar_to": s["similar_to"],
            "_other": line(s["_other_row"]),
            "similarity": s["similarity"],
        }
    ).select(
        "line",
        "name",
        "similar_to",
        pl.when(pl.col("_other").is_not_null())
        .then(pl.format("line {}", pl.col("_other")))
        .otherwise(pl.lit("existing company"))
        .alias("where"),
        "similarity",
    )
    return ImportReport(
        entity=plan.entity,
        file=table.name,
        mapping=dict(plan.mapping.columns),
        created=count.get("create", 0),
        updated=count.get("update", 0),
        skipped=count.get("skip", 0),
        refused=count.get("refuse", 0),
        new_related={e: f.height for e, f in plan.new_related.items()},
        errors=errors.sort("line"),
        duplicates=duplicates,
        suspected=suspected,
        encoding=table.encoding,
        rows=rows.height,
    )


class Importer:
    """``crm.importer``: files in bulk for companies, contacts, deals, activities, users and products."""

    def __init__(self, crm: CRM):
        self.crm = crm

    def read(self, file, *, encoding: str | None = None, name: str | None = None) -> Table:
        """The file as text columns (a path, or an upload's bytes with its ``name``)."""
        return read_table(file, name=name, encoding=encoding)

    def preview(
        self,
        entity: str,
        file,
        *,
        mapping=None,
        on_duplicate: str = "skip",
        encoding: str | None = None,
        name: str | None = None,
    ) -> ImportReport:
        """What :meth:`run` would do, writing nothing: counts, every problem, the duplicates and
        the suspected duplicates."""
        table = file if isinstance(file, Table) else self.read(file, encoding=encoding, name=name)
        m = load_mapping(mapping, entity, table.frame.columns)
        with self.crm.engine.connect() as conn:
            try:
                return _report(build(conn, table, m, on_duplicate, self.crm.user_id), table)
            finally:
                conn.rollback()

    def run(
        self,
        entity: str,
        file,
        *,
        mapping=None,
        on_duplicate: str = "skip",
        skip_invalid: bool = False,
        dry_run: bool = False,
        encoding: str | None = None,
        errors: str | Path | None = None,
        progress: bool = False,
        name: str | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        fast: bool | None = None,
    ) -> ImportReport:
        """Import ``file`` into ``entity`` in one transaction, as the acting user.

        Any invalid row and nothing is written (``ImportRefusedError``, whose ``report`` lists
        the problems), unless ``skip_invalid``: then the valid rows are written and the rest
        reported. ``on_duplicate`` decides rows that repeat a record (``skip``, ``update`` it, or
        ``create`` another). ``errors`` names a CSV file to receive the problems. ``progress``
        draws a bar on the terminal; ``on_progress(done, total)`` hears of each chunk written.

        ``fast`` drops the table's non-unique secondary indexes for the COPY and rebuilds them
        after it, in the same transaction: ``None`` (the default) when the new rows are at least
        ``writing.FAST_MIN_ROWS`` and ``writing.FAST_TABLE_RATIO`` times the rows there and the
        login owns the table; ``True`` always (``AccessDeniedError`` for a login that does not
        own it, as the app's do not); ``False`` never. Readers of the table wait till commit.
        """
        if on_duplicate not in ON_DUPLICATE:
            raise ImportRefusedError(f"on_duplicate is one of {', '.join(ON_DUPLICATE)}, not {on_duplicate!r}")
        if fast not in (True, False, None):
            raise ImportRefusedError(f"fast is True, False or None (chosen by size), not {fast!r}")
        table = file if isinstance(file, Table) else self.read(file, encoding=encoding, name=name)
        m = load_mapping(mapping, entity, table.frame.columns)
        if dry_run:
            report = self.preview(entity, table, mapping=m, on_duplicate=on_duplicate)
            if errors is not None:
                report.write_errors(errors)
            return report
        columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
        with Progress(*columns, disable=not progress) as bar, self.crm.transaction() as conn:
            rules.check_write(self.crm, conn, entity, {}, None)  # analysts, admin-only tables
            cursor = conn.connection.driver_connection.cursor()
            may_fast = may_go_fast(cursor, entity, fast)  # refused before the file is planned
            conn.exec_driver_sql(f"LOCK TABLE {entity} IN SHARE ROW EXCLUSIVE MODE")  # dedup holds till commit
            plan = build(conn, table, m, on_duplicate, self.crm.user_id)
            report = _report(plan, table)
            report.fast = may_fast and (fast or goes_fast(cursor, entity, report.created))
            if errors is not None:
                report.write_errors(errors)
            if report.refused and not skip_invalid:
                raise ImportRefusedError(
                    f"{report.refused} of {report.rows} rows of {table.name} are invalid; nothing was written "
                    "(skip_invalid / --skip-invalid writes the valid rows)",
                    report,
                )
            total = report.created + report.updated
            task = bar.add_task(f"importing {entity}", total=total)
            done = 0

            def advance(rows: int) -> None:
                nonlocal done
                done += rows
                bar.advance(task, rows)
                if on_progress is not None:
                    on_progress(done, total)

            write(conn, plan, self.crm.user_id, advance, default_owner=self.crm.user_role != "admin", fast=report.fast)
        report.written = True
        return report
