"""The query engine on PostgreSQL: the corpus against hand-written SQL, and every refusal."""

import datetime as dt
import json
from decimal import Decimal
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from crm_kernel import CRM, QuerySpecError
from crm_kernel.query import compile_spec, run_duckdb, run_postgres
from crm_kernel.query.engines.postgres import run_rows

from . import query_data
from .helpers import assert_rows_match, hand_rows
from .query_corpus import CORPUS, INVALID


@pytest.mark.parametrize(("spec", "hand_sql"), [pytest.param(s, h, id=i) for i, s, h in CORPUS])
def test_corpus_matches_hand_written_sql(query_engine, spec, hand_sql):
    result = run_postgres(query_engine, spec, now=query_data.NOW)
    assert_rows_match(result.frame, hand_rows(query_engine, hand_sql), ordered=bool(spec.get("order_by")))
    assert result.frame.columns == [c.name for c in result.compiled.columns]


def test_corpus_is_not_trivial(query_engine):
    """Most corpus questions have answers, and not every row matches: the data exercises the rules."""
    sizes = [run_postgres(query_engine, spec, now=query_data.NOW).row_count for _, spec, _ in CORPUS]
    assert sum(1 for n in sizes if n > 0) >= len(CORPUS) * 0.85
    assert sum(1 for n in sizes if 0 < n < 6) >= len(CORPUS) * 0.5


@pytest.mark.parametrize(("spec", "path", "words"), [pytest.param(s, p, w, id=i) for i, s, p, w in INVALID])
def test_invalid_specs_are_refused_with_their_path(query_engine, spec, path, words):
    with pytest.raises(QuerySpecError) as info:
        run_postgres(query_engine, spec, now=query_data.NOW)
    assert info.value.path == path
    assert words in info.value.problem
    assert str(info.value).startswith(f"{path}: " if path else words[:5])


def test_spec_may_be_json_text(query_engine):
    spec = json.dumps(
        {
            "entity": "deals",
            "select": ["title"],
            "where": {"rules": [{"field": "value", "operator": ">", "value": "100000"}]},
        }
    )
    assert sorted(run_postgres(query_engine, spec).frame["title"]) == [
        "Acme upsell 50% off",
        "Globex \\ backslash deal",
        "O'Brien store rollout",
    ]


def test_values_are_always_bound_parameters():
    hostile = "x'; DROP TABLE deals; --\\%_"
    compiled = compile_spec(
        {
            "entity": "deals",
            "where": {
                "rules": [
                    {"field": "title", "operator": "=", "value": hostile},
                    {"field": "title", "operator": "contains", "value": hostile},
                    {"field": "company.name", "operator": "in", "value": [hostile, "b"]},
                ]
            },
        }
    )
    assert "DROP TABLE" not in compiled.sql
    assert hostile in compiled.params.values()


def test_preview_shows_values_and_dialects_differ_only_in_placeholders():
    spec = {
        "entity": "deals",
        "select": ["title", "stage.name"],
        "where": {"rules": [{"field": "title", "operator": "contains", "value": "O'Brien"}]},
        "limit": 5,
    }
    pg, duck = compile_spec(spec, "postgres"), compile_spec(spec, "duckdb")
    assert "'%O''Brien%'" in pg.preview() and "'%O''Brien%'" in duck.preview()
    assert "%(title_1)s" in pg.sql and "$1" in duck.sql
    assert "LEFT OUTER JOIN pipeline_stages AS stage" in pg.sql


def test_unknown_time_zone_is_refused():
    with pytest.raises(QuerySpecError, match="unknown time zone 'Mars/Olympus'"):
        compile_spec({"entity": "deals"}, timezone="Mars/Olympus")


def test_unknown_backend_is_refused():
    with pytest.raises(QuerySpecError, match="unknown backend"):
        compile_spec({"entity": "deals"}, "sqlite")


def test_reflected_tables_and_views_are_queryable(query_engine):
    with query_engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS regions (code text, name text, quota numeric(10,2))")
        conn.exec_driver_sql("DELETE FROM regions")
        conn.exec_driver_sql("INSERT INTO regions VALUES ('emea', 'Europe', 100.5), ('amer', 'Americas', 250)")
        conn.exec_driver_sql("CREATE OR REPLACE VIEW big_deals AS SELECT title, value FROM deals WHERE value > 100000")
    try:
        regions = run_postgres(
            query_engine, {"entity": "regions", "where": {"rules": [{"field": "quota", "operator": ">", "value": 200}]}}
        ).frame
        assert regions["name"].to_list() == ["Americas"]
        view = run_postgres(query_engine, {"entity": "big_deals", "aggregates": [{"fn": "count", "as": "n"}]}).frame
        assert view["n"][0] == 3
        with pytest.raises(QuerySpecError, match="regions has no field 'area'"):
            run_postgres(query_engine, {"entity": "regions", "select": ["area"]})
    finally:
        with query_engine.begin() as conn:
            conn.exec_driver_sql("DROP VIEW big_deals; DROP TABLE regions")


def test_crm_query_returns_a_frame_and_keeps_the_details(query_engine):
    crm = CRM(query_engine)
    frame = crm.query(
        {
            "entity": "deals",
            "group_by": ["stage.name"],
            "aggregates": [{"fn": "count", "as": "n"}],
            "order_by": [{"field": "n", "dir": "desc"}],
        }
    )
    assert isinstance(frame, pl.DataFrame)
    assert sorted(frame.rows()) == [
        ("Lead", 2),
        ("Lost", 1),
        ("Negotiation", 1),
        ("Proposal", 2),
        ("Qualified", 1),
        ("Won", 2),
    ]
    assert frame["n"].to_list() == [2, 2, 2, 1, 1, 1]
    assert crm.last_query.row_count == frame.height
    assert "GROUP BY" in crm.last_query.sql and crm.last_query.execute_seconds > 0
    assert frame.schema == {"stage.name": pl.String, "n": pl.Int64}


# Written by hand from the field types: the polars dtype each type of column has, on both engines.
DTYPES = {
    "id": pl.String,
    "title": pl.String,
    "value": pl.Decimal(38, 2),
    "probability": pl.Decimal(38, 4),
    "expected_close_date": pl.Date,
    "created_at": pl.Datetime("us", "UTC"),
    "type": pl.String,
    "company.custom_fields": pl.String,
    "stage.is_closed_won": pl.Boolean,
    "company.employees": pl.Int64,
}
# The same deal's values, written by hand from tests/query_data.py.
ACME_RENEWAL = {
    "id": "00000000-0000-0004-0000-000000000001",
    "title": "Acme renewal",
    "value": Decimal("12000.00"),
    "probability": Decimal("0.5000"),
    "expected_close_date": dt.date(2026, 6, 30),
    "created_at": dt.datetime(2026, 1, 10, 9, 0, tzinfo=dt.UTC),
    "type": "renewal",
    "company.custom_fields": '{"seats":50,"tier":"gold"}',
    "stage.is_closed_won": False,
    "company.employees": 120,
}


@pytest.mark.parametrize("backend", ["postgres", "duckdb"])
def test_result_dtypes_and_values_follow_the_field_types(query_engine, query_snapshot, backend):
    spec = {
        "entity": "deals",
        "select": list(DTYPES),
        "where": {"rules": [{"field": "title", "operator": "=", "value": "Acme renewal"}]},
    }
    run = run_postgres(query_engine, spec) if backend == "postgres" else run_duckdb(query_snapshot.con, spec)
    assert run.frame.schema == DTYPES
    (row,) = run.frame.rows(named=True)
    assert row == ACME_RENEWAL
    assert [type(v) for v in row.values()] == [type(v) for v in ACME_RENEWAL.values()]
    assert row["created_at"].utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize("backend", ["postgres", "duckdb"])
def test_timestamps_are_in_the_query_zone_and_dates_stay_dates(query_engine, query_snapshot, backend):
    spec = {
        "entity": "deals",
        "select": ["created_at", "expected_close_date"],
        "where": {"rules": [{"field": "title", "operator": "=", "value": "Acme upsell 50% off"}]},
    }
    runner = run_postgres if backend == "postgres" else run_duckdb
    frame = runner(query_engine if backend == "postgres" else query_snapshot.con, spec, timezone="Asia/Kolkata").frame
    assert frame.schema == {"created_at": pl.Datetime("us", "Asia/Kolkata"), "expected_close_date": pl.Date}
    # created 2025-12-31 09:00 UTC, 14:30 in Kolkata (UTC+5:30); closing 2026-05-20 whatever the zone
    assert frame.rows() == [(dt.datetime(2025, 12, 31, 14, 30, tzinfo=ZoneInfo("Asia/Kolkata")), dt.date(2026, 5, 20))]
    assert frame["created_at"][0].utcoffset() == dt.timedelta(hours=5, minutes=30)


@pytest.mark.parametrize("timezone", ["UTC", "Asia/Kolkata"])
@pytest.mark.parametrize(("spec", "hand_sql"), [pytest.param(s, h, id=i) for i, s, h in CORPUS])
def test_rows_as_dicts_are_the_frames_rows_without_building_a_frame(query_engine, spec, hand_sql, timezone):
    """``dicts()`` of DB-API rows (what the board reads, without pyarrow or polars) gives what
    ``frame.to_dicts()`` of the Arrow result gives: the same values of the same types,
    timestamps in the same zone."""
    dicts = run_rows(query_engine, spec, timezone=timezone, now=query_data.NOW).dicts()
    frame = run_postgres(query_engine, spec, timezone=timezone, now=query_data.NOW).frame.to_dicts()
    assert dicts == frame
    assert [[(type(v), getattr(v, "tzinfo", None), str(v)) for v in row.values()] for row in dicts] == [
        [(type(v), getattr(v, "tzinfo", None), str(v)) for v in row.values()] for row in frame
    ]


def test_rows_as_dicts_cover_every_field_type(query_engine):
    result = run_rows(
        query_engine,
        {
            "entity": "deals",
            "select": list(DTYPES),
            "where": {"rules": [{"field": "title", "operator": "=", "value": "Acme renewal"}]},
        },
    )
    assert result.dicts() == [ACME_RENEWAL] and result.row_count == 1
    assert result.frame.to_dicts() == [ACME_RENEWAL] and result.dicts() == [ACME_RENEWAL]  # the frame's, once built
    with query_engine.begin() as conn:  # tags are lists of text (no tag of query_data's has any)
        conn.exec_driver_sql("UPDATE companies SET tags = ARRAY['vip', 'partner'] WHERE name = 'Acme Software'")
    try:
        spec = {"entity": "companies", "select": ["name", "tags"], "order_by": ["name"]}
        dicts = run_rows(query_engine, spec).dicts()
        assert dicts == run_postgres(query_engine, spec).frame.to_dicts()
        assert {"name": "Acme Software", "tags": ["vip", "partner"]} in dicts
    finally:
        with query_engine.begin() as conn:
            conn.exec_driver_sql("UPDATE companies SET tags = '{}' WHERE name = 'Acme Software'")


def test_no_implicit_row_limit(query_engine):
    spec = {"entity": "activities", "select": ["subject"]}
    with query_engine.connect() as conn:
        live = conn.exec_driver_sql("SELECT count(*) FROM activities WHERE deleted_at IS NULL").scalar()
    assert run_postgres(query_engine, spec).row_count == live == 9


@pytest.mark.parametrize("backend", ["postgres", "duckdb"])
def test_default_columns_are_names_labelled_as_the_catalog_labels_them(query_engine, query_snapshot, backend):
    from crm_kernel.model import ENTITIES

    spec = {"entity": "deals", "where": {"rules": [{"field": "title", "operator": "=", "value": "Acme renewal"}]}}
    result = (
        run_postgres(query_engine, spec, now=query_data.NOW)
        if backend == "postgres"
        else run_duckdb(query_snapshot.con, spec, now=query_data.NOW)
    )
    labels = {c.name: c.label for c in result.compiled.columns}
    deals = ENTITIES["deals"]
    assert {name: labels[name] for name in ("company", "contact", "stage", "owner", "product", "creator")} == {
        "company": deals.field("company_id").label,
        "contact": deals.field("contact_id").label,
        "stage": deals.field("stage_id").label,
        "owner": deals.field("owner_id").label,
        "product": deals.field("product_id").label,
        "creator": deals.field("created_by").label,
    }
    assert labels["company"] == "Company" and labels["title"] == "Title" and labels["id"] == "ID"
    assert not any(name.endswith("_id") for name in labels)  # no raw ids but the row's own
    [row] = result.dicts()
    assert (row["id"], row["company"], row["contact"], row["stage"], row["owner"], row["product"]) == (
        query_data.uid("deal", 1),
        "Acme Software",
        "Carol Chen",
        "Proposal",
        "Alice Archer",
        None,
    )
    # the ids stay selectable by name
    ids = compile_spec({"entity": "deals", "select": ["company_id", "stage_id"]}).columns
    assert [(c.name, c.type, c.label) for c in ids] == [
        ("company_id", "uuid", "Company"),
        ("stage_id", "uuid", "Stage"),
    ]
