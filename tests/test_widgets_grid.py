"""The result grid pages server-side and exports the full result, a page at a time."""

from __future__ import annotations

import base64
import io
import re
import zipfile

import polars as pl
import pytest

from crm_kernel import CRM
from crm_kernel import export as export_library
from crm_kernel.widgets import FieldCatalog, ResultGrid, Source
from crm_kernel.widgets import export as export_module
from crm_kernel.widgets.download import DownloadLink
from crm_kernel.widgets.export import ExportPanel
from crm_kernel.widgets.source import count_spec, narrowed, page_spec

pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.drop")  # inside ipydatagrid

SPEC = {
    "entity": "deals",
    "select": ["title", "value", "priority", "expected_close_date", "stage.name"],
    "order_by": [{"field": "value", "dir": "desc"}],
}


class Recording(Source):
    """A source that remembers what it ran and how many rows came back."""

    def __init__(self, crm, **kwargs):
        super().__init__(crm, **kwargs)
        self.log: list[tuple[dict, int]] = []

    def execute(self, spec):
        result = super().execute(spec)
        self.log.append((spec, result.frame.height))
        return result


@pytest.fixture(scope="module")
def qcrm(query_engine) -> CRM:
    return CRM(query_engine)


@pytest.fixture
def source(qcrm) -> Recording:
    return Recording(qcrm)


def test_pages_are_fetched_one_at_a_time(qcrm, source):
    everything = qcrm.query(SPEC)
    grid = ResultGrid(source=source, page_size=4)
    run = grid.show(SPEC)
    assert run.rows == everything.height == 9 and run.page_rows == 4
    count, first = source.log
    assert count == ({"entity": "deals", "aggregates": [{"fn": "count", "as": "rows"}]}, 1)
    assert first == ({**SPEC, "after": [], "offset": 0, "limit": 4}, 4)  # keyset paging from the start
    assert grid.frame.height == 4 and len(grid.datagrid.data) == 4  # all the kernel and browser hold
    assert grid.page_label.value == "rows 1–4 of 9" and grid.previous_button.disabled
    pages = [grid.frame]
    grid.next_button.click()
    pages.append(grid.frame)
    grid.next_page()
    pages.append(grid.frame)
    assert grid.page_label.value == "rows 9–9 of 9" and grid.next_button.disabled
    grid.next_page()  # past the end: nothing runs
    # Each page starts after the sort keys (value, id) of the last row before it: no OFFSET.
    assert [(len(s["after"]), s["offset"], s["limit"], n) for s, n in source.log[1:]] == [
        (0, 0, 4, 4),
        (2, 0, 4, 4),
        (2, 0, 4, 1),
    ]
    assert pl.concat(pages).equals(everything)  # stable pages: together, the whole result once
    grid.previous_button.click()
    assert grid.start == 4 and list(grid.datagrid.data.index) == [5, 6, 7, 8]  # row numbers go on


def test_a_limit_and_offset_in_the_spec_are_respected(source):
    grid = ResultGrid(source=source, page_size=4)
    assert grid.show({**SPEC, "limit": 6, "offset": 1}).rows == 6
    grid.next_page()
    first, last = source.log[-2][0], source.log[-1][0]
    assert (first["after"], first["offset"], first["limit"]) == ([], 1, 4)
    assert (len(last["after"]), last["offset"], last["limit"], grid.frame.height) == (2, 0, 2, 2)
    assert pl.concat([source.execute({**SPEC, "limit": 6, "offset": 1}).frame.tail(2)]).equals(grid.frame)


def test_grouped_results_page_without_a_count(source):
    grid = ResultGrid(source=source, page_size=2)
    spec = {"entity": "deals", "group_by": ["stage.name"], "aggregates": [{"fn": "count", "as": "deals"}]}
    run = grid.show(spec)
    assert run.rows is None and grid.page_label.value == "rows 1–2 of more than 2"
    assert len(source.log) == 1 and source.log[0][0]["limit"] == 3  # one more row than shown, no count
    assert source.log[0][0]["order_by"] == ["stage.name"]  # ordered by the group key: stable pages
    grid.next_page()
    grid.next_page()
    assert grid.total == 6 and grid.page_label.value == "rows 5–6 of 6" and grid.next_button.disabled


def test_money_dates_and_enums_are_formatted(source):
    grid = ResultGrid(source=source)
    grid.show({**SPEC, "select": [*SPEC["select"], "last_activity_at", "type", "probability"]})
    data = grid.datagrid.data
    renderers = grid.datagrid.renderers
    assert renderers["value"].format == ",.2f" and renderers["value"].horizontal_alignment == "right"
    assert renderers["probability"].format == ",.4f" and renderers["value"].text_value is not None
    assert data["value"].iloc[0] == 4500000.0
    assert data["expected_close_date"].iloc[0] == "2026-05-20"
    assert set(data["type"]) >= {"New business", "Renewal", "Upgrade"}
    assert data["priority"].iloc[0] == "Medium"


def test_sorting_and_filtering_in_the_grid_run_on_the_whole_result(source):
    grid = ResultGrid(source=source, page_size=3)
    grid.show(SPEC)
    grid.datagrid._transforms = [{"type": "sort", "column": "value", "desc": False}]
    assert source.log[-1][0]["order_by"] == [{"field": "value", "dir": "asc"}]
    assert grid.frame["value"].to_list()[0] < grid.frame["value"].to_list()[-1]
    grid.datagrid._transforms = [
        {"type": "filter", "column": "priority", "operator": "in", "value": ["High", "Urgent"]},
        {"type": "filter", "column": "stage.name", "operator": "!=", "value": "Won"},
    ]
    counted = source.log[-2][0]
    assert counted["where"]["rules"] == [
        {"field": "priority", "operator": "in", "value": ["high", "urgent"]},
        {"field": "stage.name", "operator": "!=", "value": "Won"},
    ]
    assert grid.total == 2 and "filtered" in grid.page_label.value
    before = len(source.log)
    grid.datagrid._transforms = [{"type": "filter", "column": "title", "operator": "isOnSameDay", "value": "x"}]
    assert len(source.log) == before and "rows on screen only" in grid.message.value
    grid.show(SPEC)  # a new run forgets the grid's sorts and filters
    assert grid.datagrid._transforms == [] and grid.total == 9


def test_pages_of_a_view_without_id_are_stable(crm, engine):
    """A reflected view has no id for the engine to add to a paged sort: the grid sorts by all
    its columns, so pages neither overlap nor skip rows."""
    for i in range(5):
        crm.companies.create(name=f"C{i}", industry="X" if i % 2 else "Y")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE VIEW widget_companies AS SELECT name, industry FROM companies")
    try:
        source = Recording(crm)
        grid = ResultGrid(source=source, page_size=2)
        assert grid.show({"entity": "widget_companies"}).rows == 5
        assert source.log[-1][0]["order_by"] == ["name", "industry"]
        names = grid.frame["name"].to_list()
        while not grid.next_button.disabled:
            grid.next_page()
            names += grid.frame["name"].to_list()
        assert names == [f"C{i}" for i in range(5)]
        assert ("Widget companies", "widget_companies") in FieldCatalog.load(crm).entities()
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP VIEW widget_companies")


def test_derived_specs():
    assert count_spec({"entity": "deals", "group_by": ["title"]}) is None
    assert page_spec({"entity": "deals", "limit": 10}, 8, 5) == {"entity": "deals", "limit": 2, "offset": 8}
    grouped = {
        "entity": "deals",
        "group_by": [{"field": "created_at", "trunc": "month"}],
        "aggregates": [{"fn": "count", "as": "n"}],
        "order_by": [{"field": "n", "dir": "desc"}],
    }
    assert page_spec(grouped, 0, 5)["order_by"] == [{"field": "n", "dir": "desc"}, "created_at_month"]
    where = {"combinator": "or", "not": True, "rules": [{"field": "title", "operator": "=", "value": "a"}]}
    view = narrowed(
        {"entity": "deals", "select": [{"field": "stage.name", "as": "stage"}], "where": where},
        [("stage", True)],
        [{"field": "stage", "operator": "=", "value": "Won"}],
    )
    assert view["where"] == {
        "combinator": "and",
        "rules": [where, {"field": "stage.name", "operator": "=", "value": "Won"}],
    }
    assert view["order_by"] == [{"field": "stage", "dir": "desc"}]


# -- export -------------------------------------------------------------------------------------


@pytest.fixture
def shown(source):
    grid = ResultGrid(source=source, page_size=2)
    grid.show(SPEC)
    return grid


def test_csv_export_writes_the_full_result_in_pages(qcrm, shown, source, tmp_path):
    written = []
    panel = ExportPanel(shown, tmp_path, page_size=4, on_page=written.append)
    panel.buttons["csv"].click()
    assert written == [4, 8, 9]  # pages, never everything at once
    exported = panel.last
    assert exported.rows == 9 and exported.path.parent == tmp_path and exported.path.suffix == ".csv"
    expected = qcrm.query(SPEC)
    assert pl.read_csv(exported.path, schema=expected.schema).equals(expected)
    assert panel.link.filename == exported.path.name and panel.link.href.startswith("data:text/csv;base64,")
    assert base64.b64decode(panel.link.href.split(",", 1)[1]) == exported.path.read_bytes()
    assert panel.message.value == "9 rows"


def test_parquet_export_keeps_types(qcrm, shown, tmp_path):
    panel = ExportPanel(shown, tmp_path, page_size=4)
    exported = panel.export("parquet")
    assert pl.read_parquet(exported.path).equals(qcrm.query(SPEC))


def test_excel_export(shown, tmp_path):
    panel = ExportPanel(shown, tmp_path, page_size=4)
    exported = panel.export("xlsx")
    with zipfile.ZipFile(exported.path) as book:
        sheet = book.read("xl/worksheets/sheet1.xml").decode()
        strings = book.read("xl/sharedStrings.xml").decode() if "xl/sharedStrings.xml" in book.namelist() else ""
    assert len(re.findall(r"<row ", sheet)) == 10  # header and nine deals
    assert "Acme upsell 50% off" in strings + sheet and "<v>4500000</v>" in sheet


def test_excel_refuses_more_rows_than_a_sheet_holds(shown, tmp_path, monkeypatch):
    monkeypatch.setattr(export_module, "EXCEL_MAX_ROWS", 5)
    panel = ExportPanel(shown, tmp_path)
    assert panel.export("xlsx") is None and "CSV or Parquet" in panel.message.value
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(export_module, "EXCEL_MAX_ROWS", 50)  # the count passes; the writer finds out
    monkeypatch.setattr(export_library, "EXCEL_MAX_ROWS", 5)
    assert panel.export("xlsx") is None and "at most 5 rows" in panel.message.value
    assert list(tmp_path.iterdir()) == []


def test_export_before_a_run_says_so(source, tmp_path):
    panel = ExportPanel(ResultGrid(source=source), tmp_path)
    assert panel.export("csv") is None and "run a query first" in panel.message.value


def test_download_link_streams_large_files_in_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr("crm_kernel.widgets.download.CHUNK", 1000)
    path = tmp_path / "big.csv"
    path.write_bytes(bytes(range(256)) * 10)
    link = DownloadLink()
    link.offer(path, "text/csv", inline_limit=100)
    assert link.href == "" and link.filename == "big.csv" and link.size_text == "2.5 KB"
    sent = []
    link.send = lambda content, buffers=None: sent.append((content, buffers))
    link._on_msg(link, {"type": "fetch"}, [])  # what the browser sends on click
    assert [c["last"] for c, _ in sent] == [False, False, True]
    assert b"".join(b[0] for _, b in sent) == path.read_bytes()
    small = tmp_path / "small.csv"
    small.write_text("a\n1\n")
    link.offer(small, "text/csv")
    assert link.href == "data:text/csv;base64," + base64.b64encode(b"a\n1\n").decode()


def test_xlsx_reads_back_as_numbers(shown, tmp_path):
    """Money goes to Excel as numbers with a two-decimal format, dates as dates."""
    panel = ExportPanel(shown, tmp_path)
    exported = panel.export("xlsx")
    with zipfile.ZipFile(exported.path) as book:
        styles = book.read("xl/styles.xml").decode()
    assert "#,##0.00" in styles and "yyyy-mm-dd" in styles
    assert io.BytesIO(exported.path.read_bytes()).read(2) == b"PK"


def test_default_columns_show_names_and_filter_and_sort_by_them(source):
    """Without select the grid shows the company's, stage's and owner's names; a header filter
    or sort on such a column runs on the name (the field behind it), and the id stays for links."""
    grid = ResultGrid(source=source, page_size=20)
    grid.show({"entity": "deals"})
    assert {"id", "company", "contact", "stage", "owner", "product"} <= set(grid.frame.columns)
    assert not {"company_id", "stage_id", "owner_id"} & set(grid.frame.columns)
    assert set(grid.datagrid.data["stage"]) >= {"Won", "Lead", "Proposal"}
    grid.datagrid._transforms = [
        {"type": "sort", "column": "owner", "desc": True},
        {"type": "filter", "column": "company", "operator": "startswith", "value": "Acme"},
    ]
    counted = source.log[-2][0]
    assert counted["where"]["rules"] == [{"field": "company.name", "operator": "beginsWith", "value": "Acme"}]
    assert source.log[-1][0]["order_by"][0] == {"field": "owner", "dir": "desc"}
    assert grid.total == 2 and set(grid.frame["company"]) == {"Acme Software"}
    assert grid.frame["owner"].to_list() == ["Alice Archer", "Alice Archer"]
    grid.datagrid.selections = [{"r1": 0, "r2": 0, "c1": 1, "c2": 1}]
    assert grid.selected_record() == ("deals", grid.frame["id"][0])
