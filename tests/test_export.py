"""Exporting a whole query result: one consistent copy, a page at a time, complete or absent."""

from __future__ import annotations

import csv
import errno
import os
import resource
import shutil
import signal
from pathlib import Path

import polars as pl
import pytest

from crm_kernel import export as export_lib
from crm_kernel import snapshot
from crm_kernel.export import ExportError, export_result
from crm_kernel.widgets import ResultGrid, Source
from crm_kernel.widgets.export import ExportPanel

pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.drop")  # inside ipydatagrid

NAMES = {"entity": "companies", "select": ["name"], "order_by": [{"field": "name", "dir": "asc"}]}


def companies(crm, count: int, prefix: str = "C") -> list[str]:
    names = [f"{prefix}{i:02d}" for i in range(count)]
    for name in names:
        crm.companies.create(name=name)
    return names


def csv_names(path: Path) -> list[str]:
    with path.open(newline="") as f:
        return [row["name"] for row in csv.DictReader(f)]


class Pages:
    """An ``on_page`` handshake: runs ``steps[i]`` after page ``i`` is written, and records the
    rows written so far."""

    def __init__(self, *steps):
        self.steps = list(steps)
        self.written: list[int] = []

    def __call__(self, rows: int) -> None:
        self.written.append(rows)
        if len(self.written) <= len(self.steps):
            self.steps[len(self.written) - 1]()


# -- one consistent copy ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_postgres_export_is_one_moment_while_rows_come_and_go(crm, tmp_path, fmt):
    """A row inserted before the page boundary (OFFSET paging repeats a row) and a row deleted
    before it (OFFSET paging skips one) while the export runs change nothing in the file."""
    names = companies(crm, 10)
    c01 = next(c for c in crm.companies.list(limit=None) if c["name"] == "C01")
    pages = Pages(lambda: crm.companies.create(name="C00 inserted"), lambda: crm.companies.delete(c01["id"]))
    path = tmp_path / f"companies.{fmt}"
    done = export_result(crm, NAMES, fmt, path, page_size=3, on_page=pages)
    assert pages.written == [3, 6, 9, 10]  # a page at a time, never everything at once
    got = csv_names(path) if fmt == "csv" else pl.read_parquet(path)["name"].to_list()
    assert got == names and done.rows == 10
    assert crm.query(NAMES)["name"].to_list() == sorted([*names[:1], "C00 inserted", *names[2:]])


def test_duckdb_export_reads_one_snapshot_while_another_is_published(crm, tmp_path):
    parent = tmp_path / "snapshots"
    names = companies(crm, 7)
    first = crm.snapshot(out=parent)

    def publish_another():
        crm.companies.create(name="C00 newer")
        crm.companies.delete(next(c for c in crm.companies.list(limit=None) if c["name"] == "C05")["id"])
        assert crm.snapshot(out=parent) > first  # now the newest

    pages = Pages(publish_another)
    grid = ResultGrid(source=Source(crm, backend="duckdb", snapshot=parent), page_size=100)
    grid.show(NAMES)
    panel = ExportPanel(grid, tmp_path / "out", page_size=3, on_page=pages)
    exported = panel.export("csv")
    assert exported is not None, panel.message.value
    assert len(pages.written) == 3 and len(snapshot.store.snapshots(parent)) == 2
    assert csv_names(exported.path) == names  # the first snapshot only, none of the second


def test_export_on_duckdb_names_the_snapshot_it_cannot_find(crm, tmp_path):
    with pytest.raises(snapshot.SnapshotError, match="no snapshot in .*nothing-here"):
        export_result(crm, NAMES, "csv", tmp_path / "x.csv", backend="duckdb", snapshot=tmp_path / "nothing-here")
    assert list(tmp_path.iterdir()) == []


# -- complete or absent -------------------------------------------------------------------------


def full_disk(pages, out) -> int:
    """A writer whose disk fills up after the first page."""
    for frame in pages:
        frame.write_csv(out)
        out.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return 0


def test_full_disk_leaves_nothing_and_says_why(crm, tmp_path, monkeypatch):
    companies(crm, 5)
    monkeypatch.setitem(export_lib.WRITERS, "csv", full_disk)
    target = tmp_path / "out" / "companies.csv"
    target.parent.mkdir()
    with pytest.raises(ExportError, match=r"cannot write .*companies.csv: No space left on device"):
        export_result(crm, NAMES, "csv", target, page_size=2)
    assert list(target.parent.iterdir()) == []

    grid = ResultGrid(source=Source(crm), page_size=2)
    grid.show(NAMES)
    panel = ExportPanel(grid, target.parent, page_size=2)
    assert panel.export("csv") is None
    assert "No space left on device" in panel.message.value and panel.link.filename == ""
    assert list(target.parent.iterdir()) == []


def test_file_size_limit_of_the_os_leaves_nothing(crm, tmp_path):
    """A real write failure from the operating system (RLIMIT_FSIZE: EFBIG) half-way through."""
    with crm.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO companies (name) SELECT 'Company ' || repeat('x', 80) || g FROM generate_series(1, 2000) g"
        )
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead of killing us
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, hard))
    try:
        with pytest.raises(ExportError, match=r"cannot write .*big.csv: File too large"):
            export_result(crm, NAMES, "csv", tmp_path / "big.csv", page_size=500)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert list(tmp_path.iterdir()) == []


def test_folder_removed_during_the_export_is_a_clear_error(crm, tmp_path):
    companies(crm, 6)
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(ExportError, match=r"cannot write .*out/companies.csv: No such file or directory"):
        export_result(
            crm, NAMES, "csv", folder / "companies.csv", page_size=2, on_page=Pages(lambda: shutil.rmtree(folder))
        )
    assert not folder.exists()


def test_the_previous_file_stays_until_the_new_one_is_complete(crm, tmp_path, monkeypatch):
    companies(crm, 3)
    target = tmp_path / "companies.csv"
    export_result(crm, NAMES, "csv", target)
    before = target.read_bytes()
    monkeypatch.setitem(export_lib.WRITERS, "csv", full_disk)
    with pytest.raises(ExportError):
        export_result(crm, NAMES, "csv", target)
    assert target.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["companies.csv"]


def test_excel_row_limit_found_while_writing_leaves_nothing(crm, tmp_path, monkeypatch):
    companies(crm, 7)
    monkeypatch.setattr(export_lib, "EXCEL_MAX_ROWS", 5)
    with pytest.raises(ExportError, match="at most 5 rows.*CSV or Parquet"):
        export_result(crm, NAMES, "xlsx", tmp_path / "companies.xlsx", page_size=3)
    assert list(tmp_path.iterdir()) == []


def test_unknown_format_is_refused(crm, tmp_path):
    with pytest.raises(ExportError, match="unknown export format 'pdf'; use one of csv, xlsx, parquet"):
        export_result(crm, NAMES, "pdf", tmp_path / "x.pdf")


# -- formula injection --------------------------------------------------------------------------

HOSTILE = ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "plain", "a=b"]


def test_csv_guards_cells_a_spreadsheet_would_run(crm, tmp_path):
    for i, name in enumerate(HOSTILE):
        crm.companies.create(name=name, employees=i if i else None)
    spec = {"entity": "companies", "select": ["name", "employees"], "order_by": [{"field": "employees", "dir": "desc"}]}
    path = tmp_path / "companies.csv"
    export_result(crm, spec, "csv", path)
    with path.open(newline="") as f:
        rows = [(row["name"], row["employees"]) for row in csv.DictReader(f)]
    expected = [("'" + name if name[0] in "=+-@\t\r" else name, str(i) if i else "") for i, name in enumerate(HOSTILE)]
    assert sorted(rows) == sorted(expected)
    assert ("'+1+1", "1") in rows and ("a=b", "7") in rows
    parquet = tmp_path / "companies.parquet"
    export_result(crm, spec, "parquet", parquet)
    assert sorted(pl.read_parquet(parquet)["name"].to_list()) == sorted(HOSTILE)  # data files keep values


def test_formula_guard_touches_text_only():
    frame = pl.DataFrame(
        {"text": ["-5", "5", None], "number": [-5, 5, None]}, schema={"text": pl.String, "number": pl.Int64}
    )
    guarded = export_lib.guard_formulas(frame)
    assert guarded["text"].to_list() == ["'-5", "5", None]
    assert guarded["number"].to_list() == [-5, 5, None]
    enums = pl.DataFrame({"stage": pl.Series(["=x", "ok"], dtype=pl.Enum(["=x", "ok"]))})
    assert export_lib.guard_formulas(enums)["stage"].to_list() == ["'=x", "ok"]


def test_an_open_snapshot_and_an_empty_result(query_engine, query_snapshot, tmp_path):
    from crm_kernel import CRM

    qcrm = CRM(query_engine)
    spec = {
        "entity": "deals",
        "select": ["title", "value", "stage.name"],
        "order_by": [{"field": "value", "dir": "desc"}],
    }
    path = tmp_path / "deals.parquet"
    try:
        _export_open_snapshot_and_empty(qcrm, query_snapshot, spec, path, tmp_path)
    finally:  # the query database is shared and read-only: take the exports' audit rows out again
        with query_engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM audit_log WHERE operation = 'export'")


def _export_open_snapshot_and_empty(qcrm, query_snapshot, spec, path, tmp_path) -> None:
    done = export_result(qcrm, spec, "parquet", path, backend="duckdb", snapshot=query_snapshot, page_size=4)
    assert pl.read_parquet(path).equals(qcrm.query(spec, "duckdb", snapshot=query_snapshot)) and done.rows == 9
    assert query_snapshot.sql("SELECT count(*) AS n FROM deals")["n"][0] == 9  # still open and usable
    nothing = {**spec, "where": {"combinator": "and", "rules": [{"field": "title", "operator": "=", "value": "none"}]}}
    for backend, snap in (("postgres", None), ("duckdb", query_snapshot)):
        empty = tmp_path / f"empty-{backend}.csv"
        assert export_result(qcrm, nothing, "csv", empty, backend=backend, snapshot=snap).rows == 0
        assert empty.read_text() == "title,value,stage.name\n"


# -- the audit trail ------------------------------------------------------------------------------


def export_audit(crm) -> list[dict]:
    with crm.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT user_id, entity, entity_id, after FROM audit_log WHERE operation = 'export' ORDER BY id"
        ).mappings()
        return [dict(row) for row in rows]


def test_an_export_is_audited_with_who_what_and_how_many(crm, tmp_path):
    companies(crm, 3)
    spec = NAMES | {
        "where": {"combinator": "and", "rules": [{"field": "name", "operator": "beginsWith", "value": "C"}]}
    }
    done = export_result(crm, spec, "csv", tmp_path / "c.csv")
    [entry] = export_audit(crm)
    assert entry["user_id"] == crm.user_id and entry["entity"] == "companies" and entry["entity_id"] is None
    assert entry["after"]["rows"] == done.rows == 3
    assert entry["after"]["spec"] == spec and entry["after"]["format"] == "csv"
    assert entry["after"]["target"] == str(tmp_path / "c.csv")


def test_a_failed_export_is_not_audited(crm, tmp_path, monkeypatch):
    companies(crm, 2)
    monkeypatch.setitem(export_lib.WRITERS, "csv", full_disk)
    with pytest.raises(ExportError):
        export_result(crm, NAMES, "csv", tmp_path / "c.csv")
    assert export_audit(crm) == []


def test_the_command_line_audits_rows_it_writes_out(crm, tmp_path):
    from click.testing import CliRunner

    from crm_kernel import cli

    companies(crm, 4)
    spec_file = tmp_path / "spec.json"
    spec_file.write_text('{"entity": "companies", "select": ["name"]}')
    env = {**os.environ, "CRM_DATABASE_URL": crm.engine.url.render_as_string(hide_password=False)}
    shown = CliRunner().invoke(cli.main, ["query", "run", str(spec_file)], env=env)
    assert shown.exit_code == 0, shown.output
    assert export_audit(crm) == []  # a table on the screen is not an export
    saved = CliRunner().invoke(
        cli.main, ["query", "run", str(spec_file), "--format", "csv", "--out", str(tmp_path / "out.csv")], env=env
    )
    assert saved.exit_code == 0, saved.output
    [entry] = export_audit(crm)
    assert entry["after"]["rows"] == 4 and entry["after"]["target"] == str(tmp_path / "out.csv")
