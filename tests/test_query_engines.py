"""The engine registry, PostgreSQL's Arrow path (session settings, pooling) and keyset paging
on both engines."""

import polars as pl
import pytest
import sqlalchemy as sa

from crm_kernel import CRM, QuerySpecError
from crm_kernel.query import run_duckdb, run_postgres
from crm_kernel.query.engines import ENGINES, LABELS

from . import query_data


def test_an_unknown_backend_names_the_registered_ones(crm):
    with pytest.raises(QuerySpecError, match="unknown backend 'sqlite'; use one of postgres, duckdb") as info:
        crm.execute({"entity": "deals"}, "sqlite")
    assert info.value.path == "backend"


def test_faces_offer_the_registered_engines():
    from crm_kernel import cli
    from crm_kernel.widgets.source import BACKENDS

    assert list(ENGINES) == list(cli._ENGINE_NAMES) == list(BACKENDS) == list(LABELS)
    assert {name: ENGINES[name].name for name in ENGINES} == {"postgres": "postgres", "duckdb": "duckdb"}
    assert [ENGINES[name].uses_snapshot for name in ENGINES] == [False, True]


# -- session settings on connections opened outside SQLAlchemy --------------------------------


@pytest.fixture(scope="module")
def probe_engine(make_database_module):
    """A database with a view that shows the session's ``crm.probe`` setting."""
    from crm_kernel.db import connect_engine

    engine = connect_engine(make_database_module("crm_engine_settings"))
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE VIEW setting_probe AS "
                "SELECT current_setting('crm.probe', true) AS probe, current_setting('TimeZone') AS zone"
            )
        )
    yield engine
    engine.dispose()


def test_a_query_carries_the_engines_session_settings_and_the_next_one_does_not(probe_engine):
    spec = {"entity": "setting_probe"}
    as_user = probe_engine.execution_options(crm_settings={"crm.probe": "user-1"})
    assert run_postgres(as_user, spec, timezone="Asia/Kolkata").dicts() == [{"probe": "user-1", "zone": "Asia/Kolkata"}]
    # The pooled connection goes to the next run without them (an unset setting reads as empty).
    assert run_postgres(probe_engine, spec).dicts() in (
        [{"probe": "", "zone": "UTC"}],
        [{"probe": None, "zone": "UTC"}],
    )
    as_other = probe_engine.execution_options(crm_settings={"crm.probe": "user-2"})
    assert run_postgres(as_other, spec).dicts()[0]["probe"] == "user-2"


def test_a_kept_adbc_connection_carries_the_session_settings(probe_engine):
    from crm_kernel.db import arrow

    conn = arrow.connect_engine(probe_engine.execution_options(crm_settings={"crm.probe": "kept"}))
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT current_setting('crm.probe', true)")
            first = cursor.fetchone()
            conn.rollback()  # a later transaction still sees it: the setting was committed
            cursor.execute("SELECT current_setting('crm.probe', true)")
            assert first == cursor.fetchone() == ("kept",)
    finally:
        conn.close()


def test_a_pooled_connection_cut_off_by_the_server_is_replaced(probe_engine):
    spec = {"entity": "setting_probe"}
    assert run_postgres(probe_engine, spec).row_count == 1  # leaves a connection in the pool
    with probe_engine.connect() as conn:
        cut = conn.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar()
    assert cut >= 1
    assert run_postgres(probe_engine, spec).row_count == 1


def test_postgres_results_come_as_arrow_with_the_same_frame_as_rows(query_engine):
    from crm_kernel.query.engines.postgres import run_rows

    spec = {
        "entity": "deals",
        "select": [
            "id",
            "title",
            "value",
            "stage.name",
            "priority",
            "custom_fields",
            "tags",
            "created_at",
            "expected_close_date",
        ],
        "where": {
            "rules": [
                {"field": "priority", "operator": "in", "value": ["high", "low"]},
                {"field": "company.id", "operator": "notNull"},
            ]
        },
        "order_by": [{"field": "value", "dir": "desc"}],
        "limit": 100,
    }
    arrow_result = run_postgres(query_engine, spec, now=query_data.NOW)
    rows_result = run_rows(query_engine, spec, now=query_data.NOW)
    assert arrow_result.rows is None and arrow_result.row_count > 0  # no Python rows were built
    assert arrow_result.frame.equals(rows_result.frame)
    assert arrow_result.dicts() == rows_result.dicts()


# -- keyset paging ------------------------------------------------------------------------------

PAGED = [
    # ties and empty values in the sort keys, both directions, a key from a join, a computed field
    {"entity": "companies", "select": ["name", "industry"], "order_by": ["industry"]},
    {"entity": "companies", "select": ["name"], "order_by": [{"field": "employees", "dir": "desc"}]},
    {"entity": "companies", "order_by": [{"field": "industry", "dir": "desc"}, "size"]},
    {
        "entity": "deals",
        "select": ["title", "value"],
        "order_by": [{"field": "stage.name", "dir": "desc"}, {"field": "value_reporting", "dir": "desc"}],
    },
    {
        "entity": "deals",
        "select": ["title"],
        "order_by": ["expected_close_date", "priority"],
        "where": {"rules": [{"field": "title", "operator": "notNull"}]},
    },
    {"entity": "activities", "select": ["subject"], "order_by": [{"field": "scheduled_at", "dir": "desc"}]},
    {"entity": "contacts", "select": ["first_name", "custom_fields"]},  # no sort: the id alone
]


def run_on(backend, query_engine, query_snapshot, spec):
    if backend == "postgres":
        return run_postgres(query_engine, spec, now=query_data.NOW)
    return run_duckdb(query_snapshot.con, spec, now=query_data.NOW)


@pytest.mark.parametrize("backend", ["postgres", "duckdb"])
@pytest.mark.parametrize("size", [1, 2, 3])
@pytest.mark.parametrize("spec", PAGED, ids=[f"{s['entity']}-{i}" for i, s in enumerate(PAGED)])
def test_keyset_pages_are_the_offset_pages(query_engine, query_snapshot, backend, spec, size):
    whole = run_on(backend, query_engine, query_snapshot, {**spec, "limit": 1000}).frame
    assert whole.height >= 4  # several pages at every size
    pages, after = [], []
    while True:
        result = run_on(backend, query_engine, query_snapshot, {**spec, "limit": size, "after": after})
        offset = run_on(backend, query_engine, query_snapshot, {**spec, "limit": size, "offset": len(pages) * size})
        assert result.frame.equals(offset.frame)
        assert result.compiled.columns == offset.compiled.columns  # the keys stay hidden
        if result.row_count == 0:
            assert result.after is None
            break
        pages.append(result.frame)
        after = result.after
    assert len(pages) == -(-whole.height // size)
    assert pl.concat(pages).equals(whole)


def test_a_sort_by_a_related_field_that_is_not_selected_joins_it(query_engine, query_snapshot):
    spec = {"entity": "deals", "select": ["title"], "order_by": [{"field": "stage.name", "dir": "desc"}, "title"]}
    shown = {**spec, "select": ["title", "stage.name"]}
    for backend in ("postgres", "duckdb"):
        titles = run_on(backend, query_engine, query_snapshot, spec).frame["title"].to_list()
        assert titles == run_on(backend, query_engine, query_snapshot, shown).frame["title"].to_list()
        assert len(titles) >= 4


def test_keyset_values_are_json_and_the_same_on_both_engines(query_engine, query_snapshot):
    import json

    spec = {
        "entity": "deals",
        "order_by": [{"field": "value", "dir": "desc"}, "expected_close_date", "created_at"],
        "limit": 2,
        "after": [],
    }
    live = run_postgres(query_engine, spec, now=query_data.NOW).after
    snap = run_duckdb(query_snapshot.con, spec, now=query_data.NOW).after
    assert json.loads(json.dumps(live)) == live
    assert live == snap and len(live) == 4


def test_keyset_paging_is_refused_where_it_cannot_work():
    from crm_kernel.query import compile_spec

    with pytest.raises(QuerySpecError, match="rows, not groups") as info:
        compile_spec({"entity": "deals", "group_by": ["priority"], "after": []})
    assert info.value.path == "after"
    with pytest.raises(QuerySpecError, match="needs 2 values") as info:
        compile_spec({"entity": "deals", "order_by": ["title"], "after": ["x"]})
    assert info.value.path == "after"
    with pytest.raises(QuerySpecError, match="needs an id") as info:
        compile_spec({"entity": "deals", "order_by": ["title"], "after": ["x", "not-a-uuid"]})
    assert info.value.path == "after[1]"
    with pytest.raises(QuerySpecError, match="a list") as info:
        compile_spec({"entity": "deals", "after": "x"})
    assert info.value.path == "after"


def test_the_grid_source_pages_records_by_keyset(query_engine):
    from crm_kernel.widgets.source import Source

    crm = CRM(query_engine)
    source = Source(crm)
    spec = {"entity": "companies", "select": ["name", "employees"], "order_by": [{"field": "employees", "dir": "desc"}]}
    seen = []
    for start in (0, 2, 4):
        page = source.page(spec, start, 2)
        assert page.compiled.spec.after is not None and page.compiled.spec.offset == 0
        assert (page.compiled.spec.after == ()) == (start == 0)
        seen.append(page.frame)
    offset = source.execute({**spec, "limit": 6}).frame
    assert pl.concat(seen).equals(offset)
    jumped = source.page(spec, 2, 3)  # a page not reached from the one before it: OFFSET
    assert jumped.compiled.spec.after is None and jumped.compiled.spec.offset == 2


def test_a_statement_shape_compiled_once_binds_each_runs_own_values(query_engine):
    """ADBC's statements are compiled once per shape and cached: the values (and the length
    of an IN list) must still be each run's own."""
    from crm_kernel.query.engines.postgres import run_rows

    def spec(low, priorities):
        return {
            "entity": "deals",
            "select": ["title"],
            "order_by": ["title"],
            "where": {
                "rules": [
                    {"field": "value", "operator": ">=", "value": low},
                    {"field": "priority", "operator": "in", "value": priorities},
                ]
            },
        }

    runs = [spec(0, ["medium"]), spec(50_000, ["medium"]), spec(0, ["medium", "low", "urgent"]), spec(0, ["low"])]
    answers = [run_postgres(query_engine, s).dicts() for s in runs]
    assert answers == [run_rows(query_engine, s).dicts() for s in runs]
    assert len({str(a) for a in answers}) == len(answers)  # four different answers, not one cached
