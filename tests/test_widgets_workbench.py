"""The workbench as an analyst uses it: build, preview, run, switch engines, revisit runs and
save views. Also checks the CSS classes and labels the browser test relies on."""

from __future__ import annotations

import re

import pytest

from crm_kernel import CRM
from crm_kernel.widgets import QueryBuilder, ResultGrid, Workbench


def walk(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from walk(child)


def by_class(root, css: str) -> list:
    return [w for w in walk(root) if css in getattr(w, "_dom_classes", ())]


def one(root, css: str):
    found = by_class(root, css)
    assert len(found) == 1, f"{len(found)} widgets with class {css}"
    return found[0]


def choose(dropdown, label: str):
    labels = [option[0] for option in dropdown.options]
    dropdown.value = dropdown.options[labels.index(label)][1]


@pytest.fixture(scope="module")
def qcrm(query_engine) -> CRM:
    return CRM(query_engine)


@pytest.fixture
def bench(qcrm, query_snapshot, tmp_path) -> Workbench:
    wb = Workbench(qcrm, snapshot=query_snapshot, export_dir=tmp_path)
    wb.executed = []
    execute = wb.source.execute
    wb.source.execute = lambda spec: wb.executed.append(spec) or execute(spec)
    return wb


def build_two_rules(wb: Workbench) -> None:
    """What the browser test does, through the same classes and labels."""
    add = one(wb, "crm-add-rule")
    add.click()
    add.click()
    first, second = by_class(wb, "crm-rule")
    choose(one(first, "crm-rule-field"), "Deal › Value")
    choose(one(first, "crm-rule-operator"), "at least")
    one(first, "crm-rule-value").value = "10000"
    choose(one(second, "crm-rule-field"), "Stage › Name")
    choose(one(second, "crm-rule-operator"), "equals")
    one(second, "crm-rule-value").value = "Won"


def test_the_browser_contract(bench):
    assert isinstance(bench.builder, QueryBuilder) and isinstance(bench.grid, ResultGrid)
    assert "crm-workbench" in bench._dom_classes
    assert one(bench, "crm-entity").value == "deals"
    for css in ("crm-add-rule", "crm-run", "crm-row-count", "crm-result-grid", "crm-error"):
        one(bench, css)
    assert by_class(bench, "crm-rule") == []
    build_two_rules(bench)
    assert len(by_class(bench, "crm-rule")) == 2
    assert type(one(by_class(bench, "crm-rule")[0], "crm-rule-value")).__name__ == "Text"


def test_build_preview_and_run(qcrm, bench):
    build_two_rules(bench)
    spec = {
        "entity": "deals",
        "where": {
            "combinator": "and",
            "rules": [
                {"field": "value", "operator": ">=", "value": 10000},
                {"field": "stage.name", "operator": "=", "value": "Won"},
            ],
        },
    }
    assert bench.builder.spec == spec and one(bench, "crm-error").value == ""
    assert bench.sql.layout.display == "none"
    bench.sql_toggle.value = True
    assert bench.sql.layout.display == ""
    assert "deals.value &gt;= 10000" in bench.sql.value and "stage.name = &#x27;Won&#x27;" in bench.sql.value
    one(bench, "crm-run").click()
    bench.wait()  # Run works on a worker thread
    expected = qcrm.query(spec)
    assert expected.height == 1
    assert re.match(r"<b>1 rows</b> in \d+\.\d ms", bench.status.value)
    assert bench.grid.frame.equals(expected) and bench.grid.page_label.value == "rows 1–1 of 1"
    assert len(bench.history.runs) == 1


def test_invalid_edit_shows_its_message_and_runs_nothing(bench):
    build_two_rules(bench)
    first = by_class(bench, "crm-rule")[0]
    one(first, "crm-rule-value").value = "lots"
    error = one(bench, "crm-error").value
    assert "where.rules[0].value" in error and "needs a number" in error
    assert "needs a number" in one(first, "crm-rule-error").value
    bench.sql_toggle.value = True
    assert "not valid yet" in bench.sql.value
    bench.executed.clear()  # typing "Won" looked up suggestions; from here on nothing may run
    one(bench, "crm-run").click()
    bench.wait()  # Run works on a worker thread
    assert bench.executed == [] and "Not run" in bench.status.value and bench.history.runs == []


def test_backend_switch_runs_on_the_snapshot(qcrm, bench):
    bench.builder.spec = {"entity": "deals", "select": ["title", "value"], "order_by": ["title"]}
    live = bench.run()
    live_frame = bench.grid.frame
    assert "FROM deals" in bench.sql_preview
    bench.backend.value = "duckdb"
    assert "FROM with_deleted.deals AS deals" in bench.sql_preview  # DuckDB's statement
    snap = bench.run()
    assert snap.rows == live.rows == 9 and bench.grid.frame.equals(live_frame)
    assert "snapshot" in bench.status.value
    assert [run.backend for run in bench.history.runs] == [
        f"snapshot {bench.source.snapshot.path.name}",
        "Live (PostgreSQL)",
    ]


def test_history_reloads_a_runs_spec(bench):
    first = {"entity": "deals", "select": ["title"], "limit": 2}
    bench.builder.spec = first
    bench.run()
    bench.builder.spec = {"entity": "companies"}
    bench.run()
    items = by_class(bench, "crm-history-item")
    assert len(items) == 2 and "deals" in items[1].description and "2 rows" in items[1].description
    items[1].click()
    assert bench.builder.spec == first


def test_snapshot_missing_is_a_message(qcrm, tmp_path):
    wb = Workbench(qcrm, snapshot=tmp_path / "none", export_dir=tmp_path)
    wb.backend.value = "duckdb"
    assert wb.run() is None and "no snapshot" in wb.status.value


def test_export_from_the_workbench(qcrm, bench, tmp_path):
    bench.builder.spec = {"entity": "deals", "select": ["title", "value"], "order_by": ["title"]}
    bench.run()
    one(bench, "crm-export-parquet").click()
    assert bench.exports.last.rows == 9 and bench.exports.last.path.parent == tmp_path
    assert bench.exports.link.filename.endswith(".parquet")


# -- saved views (on the emptied test database: they write) ------------------------------------


def test_saved_views_save_load_rename_delete(crm, engine, tmp_path):
    crm.users.create(email="rita@example.com", full_name="Rita Rossi")
    rita = CRM(engine, user="rita@example.com")
    rita.saved_queries.save("Team pipeline", {"entity": "deals", "group_by": ["stage.name"]}, shared=True)
    rita.saved_queries.save("Rita's private", {"entity": "deals"})
    wb = Workbench(crm, export_dir=tmp_path)
    saved = wb.saved
    assert [r["name"] for r in saved.records] == ["Team pipeline"]
    assert "Rita Rossi" in saved.table.value and "shared" in saved.table.value

    spec = {
        "entity": "deals",
        "where": {"combinator": "and", "rules": [{"field": "value", "operator": ">", "value": 5000}]},
    }
    wb.builder.spec = spec
    saved.name.value = "Big deals"
    saved.save_button.click()
    assert crm.saved_queries.load("Big deals") == spec  # (counts one use)
    saved.refresh()
    mine = next(r for r in saved.records if r["name"] == "Big deals")
    assert mine["use_count"] == 1 and mine["owner_id"] == crm.user_id and not mine["shared"]
    assert re.search(r"Big deals — System · personal · used 1× · last used \d{4}-\d\d-\d\d", saved.views.label)

    wb.builder.spec = {"entity": "companies"}
    saved.views.value = str(mine["id"])
    saved.load_button.click()
    assert wb.builder.spec == spec
    assert next(r for r in saved.records if r["name"] == "Big deals")["use_count"] == 2

    saved.new_name.value = "Deals over 5k"
    saved.rename_button.click()
    assert "renamed" in saved.message.value
    assert {r["name"] for r in saved.records} == {"Deals over 5k", "Team pipeline"}

    saved.views.value = str(next(r["id"] for r in saved.records if r["name"] == "Team pipeline"))
    saved.delete_button.click()  # not ours
    assert "of yours" in saved.message.value and len(saved.records) == 2
    saved.views.value = str(mine["id"])
    saved.delete_button.click()
    assert [r["name"] for r in saved.records] == ["Team pipeline"]


def test_saving_an_invalid_or_unnamed_view_is_refused(crm, tmp_path):
    wb = Workbench(crm, export_dir=tmp_path)
    wb.saved.save_button.click()
    assert "name" in wb.saved.message.value
    wb.builder.spec = {"entity": "deals", "where": {"rules": [{"field": "value", "operator": ">", "value": "x"}]}}
    wb.saved.name.value = "Broken"
    wb.saved.save_button.click()
    assert "not saved" in wb.saved.message.value and crm.saved_queries.count() == 0


def test_rename_to_a_name_in_use_is_refused(crm):
    crm.saved_queries.save("A", {"entity": "deals"})
    crm.saved_queries.save("B", {"entity": "deals"})
    from crm_kernel import ValidationError

    with pytest.raises(ValidationError, match="name"):
        crm.saved_queries.rename("A", "b")
    assert crm.saved_queries.rename("A", "C")["name"] == "C"


@pytest.fixture(scope="module")
def slow_crm(make_database_module) -> CRM:
    """A database with a view that takes ten minutes to answer (pg_sleep)."""
    import sqlalchemy as sa

    from crm_kernel.db import connect_engine

    engine = connect_engine(make_database_module("crm_slow_workbench"))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE VIEW slow_rows AS SELECT 1 AS n FROM pg_sleep(600)"))
    yield CRM(engine)
    engine.dispose()


def test_stop_cancels_a_running_query(slow_crm, tmp_path):
    from .test_query_hardening import wait_until_active

    wb = Workbench(slow_crm, export_dir=tmp_path)
    wb.builder.spec = {"entity": "slow_rows"}
    stop, run = one(wb, "crm-stop"), one(wb, "crm-run")
    assert stop.disabled and wb.builder.error is None
    run.click()
    wait_until_active(slow_crm.engine, "slow_rows")
    assert wb.running and run.disabled and not stop.disabled and "Running" in wb.status.value
    assert wb.backend.disabled  # the engine of a running query stays put
    stop.click()
    wb.wait(120)  # far below the view's ten minutes: only the cancel ends it this soon
    assert not wb.running
    assert "Stopped: the query was cancelled" in wb.status.value
    assert stop.disabled and not run.disabled and not wb.backend.disabled and wb.history.runs == []
    wb.builder.spec = {"entity": "companies"}
    run.click()
    wb.wait()
    assert "0 rows" in wb.status.value  # the next run is not cancelled


# -- parameters and react-querybuilder exports ------------------------------------------------------


def test_a_rule_can_take_a_parameter_and_the_form_asks_for_it(qcrm, bench):
    build_two_rules(bench)
    first = by_class(bench, "crm-rule")[0]
    assert bench.parameters.layout.display == "none"
    one(first, "crm-rule-parameter").value = True
    one(first, "crm-rule-value").value = "min_value"
    assert bench.builder.spec["where"]["rules"][0] == {
        "field": "value",
        "operator": ">=",
        "value": "min_value",
        "valueSource": "parameter",
    }
    assert bench.builder.error is None  # a parameter without a value yet is a valid query
    assert bench.parameters.layout.display == "" and list(bench.parameters.inputs) == ["min_value"]
    one(bench, "crm-run").click()
    bench.wait()
    assert (
        "Not run" in bench.status.value and "min_value" in bench.status.value and "has no value" in bench.status.value
    )
    one(bench.parameters, "crm-parameter").value = "10000"
    one(bench, "crm-run").click()
    bench.wait()
    expected = qcrm.query(bench.builder.spec, params={"min_value": 10000})
    assert expected.height == 1 and bench.grid.frame.equals(expected)
    one(first, "crm-rule-parameter").value = False  # back to a value: the form empties
    assert bench.parameters.layout.display == "none" and bench.source.params == {}


def test_declared_parameters_come_prefilled(qcrm, bench):
    spec = {
        "entity": "deals",
        "select": ["title"],
        "parameters": {"min_value": {"label": "Smallest", "default": 50000}},
        "where": {"rules": [{"field": "value", "operator": ">=", "value": "min_value", "valueSource": "parameter"}]},
    }
    bench.builder.spec = spec
    box = one(bench.parameters, "crm-parameter")
    assert box.description == "Smallest" and box.value == "50000"
    assert bench.builder.spec["parameters"] == spec["parameters"]  # kept when the view is saved
    bench.run()
    assert sorted(bench.grid.frame["title"]) == sorted(qcrm.query(spec)["title"])


def test_a_react_querybuilder_export_loads_in_plain_form(bench):
    bench.builder.spec = {
        "entity": "deals",
        "where": {
            "id": "root",
            "rules": [
                {"id": "a", "field": "value", "operator": ">=", "value": 10000},
                "and",
                {"id": "b", "field": "title", "operator": "contains", "value": "x", "disabled": True},
                "or",
                {"id": "c", "field": "stage.name", "operator": "=", "value": "Won"},
            ],
        },
    }
    assert bench.builder.spec["where"] == {
        "combinator": "or",
        "rules": [
            {"field": "value", "operator": ">=", "value": 10000},
            {"field": "stage.name", "operator": "=", "value": "Won"},
        ],
    }
    assert len(by_class(bench, "crm-rule")) == 2 and bench.builder.error is None


def test_the_workbench_opens_on_the_first_rows(qcrm, query_snapshot, tmp_path):
    wb = Workbench(qcrm, snapshot=query_snapshot, export_dir=tmp_path, page_size=5)
    assert wb.first_rows == 5 and wb.last_run is None and wb.history.runs == []
    shown = one(wb, "crm-result-grid").placeholder.children[0].value
    first = qcrm.query({"entity": "deals", "select": ["title"], "order_by": ["id"], "limit": 5})
    assert all(f"<td>{title}</td>" in shown for title in first["title"])
    # The default columns read as the catalog labels them: the stage's name, not its id.
    assert "<th title='stage'>Stage</th>" in shown and "stage_id" not in shown
    stages = set(
        qcrm.query({"entity": "deals", "select": ["stage.name"], "order_by": ["id"], "limit": 5})["stage.name"]
    )
    assert any(f"<td>{name}</td>" in shown for name in stages)
    assert "first rows of deals" in wb.status.value
    assert wb.grid.datagrid is None  # no DataGrid (nor pandas) until a Run
    wb.run()
    assert wb.grid.datagrid is not None and wb.grid.frame.height == 5
    quiet = Workbench(qcrm, snapshot=query_snapshot, export_dir=tmp_path, show_first_rows=False)
    assert quiet.first_rows is None and quiet.grid.placeholder.children == ()


def test_a_damaged_snapshot_is_not_taken_for_a_missing_one(qcrm, query_snapshot, tmp_path):
    """Only a missing snapshot offers "Take a snapshot"; a damaged one whose path happens to
    read "no snapshot" is reported as it is."""
    import shutil

    damaged = tmp_path / "no snapshot here"
    shutil.copytree(query_snapshot.path, damaged)
    (damaged / "manifest.json").write_text("{not json")
    wb = Workbench(qcrm, snapshot=damaged, export_dir=tmp_path)
    wb.backend.value = "duckdb"
    assert wb.run() is None and "not a readable manifest" in wb.status.value
    assert one(wb, "crm-take-snapshot").layout.display == "none"


def test_without_a_snapshot_the_workbench_offers_to_take_one(qcrm, tmp_path):
    parent = tmp_path / "snaps"
    wb = Workbench(qcrm, snapshot=parent, export_dir=tmp_path)
    take = one(wb, "crm-take-snapshot")
    assert take.layout.display == "none"
    wb.backend.value = "duckdb"
    wb.builder.spec = {"entity": "deals", "select": ["title"], "order_by": ["title"]}
    assert wb.run() is None and "no snapshot" in wb.status.value and take.layout.display == ""
    take.click()
    assert take.layout.display == "none" and wb.last_run.rows == 9
    assert [p.name for p in parent.iterdir() if not p.name.startswith(".")] and "snapshot" in wb.status.value
    assert wb.grid.frame["title"].to_list() == qcrm.query(wb.builder.spec)["title"].to_list()
