"""Demo data: counts, determinism, consistency between tables, and an all-or-nothing load."""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager

import polars as pl
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from crm_kernel import CRM, CrmError, DatabaseError
from crm_kernel.cli import main
from crm_kernel.db import connect_engine
from crm_kernel.model import SYSTEM_USER_ID
from crm_kernel.services import demo_data as demo

TODAY = dt.date(2026, 1, 15)
SCALE = 0.2  # 2 users, 200 companies, 1,000 contacts, 400 deals, 4,000 activities
CRM_TABLES = (*demo.TABLES, "saved_queries", "audit_log")


@contextmanager
def engines(make_database):
    """``make(name)``: an engine on a new migrated database, disposed of afterwards."""
    made = []

    def make(name: str) -> sa.Engine:
        made.append(connect_engine(make_database(name)))
        return made[-1]

    try:
        yield make
    finally:
        for engine in made:
            engine.dispose()


@pytest.fixture
def fresh(make_database):
    with engines(make_database) as make:
        yield make


@pytest.fixture(scope="module")
def loaded(make_database_module) -> sa.Engine:
    """Demo data at SCALE, shared by the tests that only read it."""
    with engines(make_database_module) as make:
        engine = make("demo_loaded")
        demo.load(engine, scale=SCALE, today=TODAY)
        yield engine


def rows(engine: sa.Engine, tables=CRM_TABLES) -> dict[str, list[tuple]]:
    """Table contents in id order, comparable across databases: without the system user (made
    by the migrations) and ``last_xact`` (the id of the writing transaction, sql/003)."""
    where = {"users": f"WHERE id <> '{SYSTEM_USER_ID}'"}
    contents = {}
    with engine.connect() as conn:
        for table in tables:
            result = conn.exec_driver_sql(f"SELECT * FROM {table} {where.get(table, '')} ORDER BY id")
            keep = [i for i, column in enumerate(result.keys()) if column != "last_xact"]
            contents[table] = [tuple(row[i] for i in keep) for row in result]
    return contents


def everything(engine: sa.Engine) -> dict[str, list[tuple]]:
    """Every row of every table, to show that nothing changed."""
    with engine.connect() as conn:
        tables = conn.exec_driver_sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").scalars()
        return {t: conn.exec_driver_sql(f"SELECT * FROM {t} AS r ORDER BY r::text").all() for t in tables}


def schema(engine: sa.Engine) -> tuple[list, list]:
    """Every index and constraint with its definition."""
    with engine.connect() as conn:
        indexes = conn.exec_driver_sql(
            "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 2").all()
        constraints = conn.exec_driver_sql(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE connamespace = 'public'::regnamespace ORDER BY 2").all()
    return indexes, constraints


def scalar(engine: sa.Engine, query: str):
    with engine.connect() as conn:
        return conn.exec_driver_sql(query).scalar()


def test_loads_the_rows_the_scale_asks_for(fresh, capsys):
    engine = fresh("demo_counts")
    counts = demo.load(engine, scale=SCALE, today=TODAY)
    assert counts == demo.row_counts(SCALE) == {
        "users": 2, "companies": 200, "contacts": 1_000, "deals": 400, "activities": 4_000}
    assert {t: len(r) for t, r in rows(engine, demo.TABLES).items()} == counts
    assert scalar(engine, f"SELECT count(*) FROM users WHERE id = '{SYSTEM_USER_ID}'") == 1
    assert capsys.readouterr().out == ""


def test_tiny_scales_load_at_least_one_row_per_table():
    assert demo.row_counts(0.00001) == dict.fromkeys(demo.TABLES, 1)
    assert demo.row_counts(100)["activities"] == 2_000_000


def test_same_seed_and_day_give_identical_rows_in_any_database(fresh):
    first, second = fresh("demo_same_a"), fresh("demo_same_b")
    demo.load(first, scale=SCALE, seed=7, today=TODAY)
    demo.load(second, scale=SCALE, seed=7, today=TODAY)
    assert rows(first) == rows(second)


def test_another_seed_or_day_gives_other_rows(loaded):
    with loaded.connect() as conn:
        stages = demo.read_stages(conn)
    base, other_seed, other_day = (
        demo.generate(stages, scale=SCALE, seed=seed, today=today)
        for seed, today in ((42, TODAY), (43, TODAY), (42, TODAY + dt.timedelta(days=1)))
    )
    with loaded.connect() as conn:
        loaded_ids = {str(i) for i in conn.exec_driver_sql("SELECT id FROM companies").scalars()}
    assert set(base["companies"]["id"]) == loaded_ids
    assert not set(base["companies"]["id"]) & set(other_seed["companies"]["id"])
    assert base["contacts"]["email"].to_list() != other_seed["contacts"]["email"].to_list()
    assert base["activities"]["id"].equals(other_day["activities"]["id"])
    shift = other_day["activities"]["created_at"] - base["activities"]["created_at"]
    assert shift.unique().to_list() == [dt.timedelta(days=1)]


def test_deals_meet_their_stage(loaded):
    with loaded.connect() as conn:
        deals = conn.exec_driver_sql(
            "SELECT d.*, s.name AS stage, s.required_fields, s.probability AS stage_probability,"
            " s.is_closed_won OR s.is_closed_lost AS closed"
            " FROM deals d JOIN pipeline_stages s ON s.id = d.stage_id").mappings().all()
    assert {d["stage"] for d in deals} == {"Lead", "Qualified", "Proposal", "Negotiation", "Won", "Lost"}
    for deal in deals:
        assert all(deal[field] not in (None, "") for field in deal["required_fields"]), deal
        assert deal["probability"] == deal["stage_probability"]
        if deal["closed"]:
            assert deal["actual_close_date"] < TODAY
        else:
            assert deal["actual_close_date"] is None
    won = sum(d["stage"] == "Won" for d in deals)
    assert 0.15 < won / sum(d["closed"] for d in deals) < 0.35
    open_expected = [d["expected_close_date"] for d in deals if not d["closed"] and d["expected_close_date"]]
    assert sum(day > TODAY for day in open_expected) > 0.8 * len(open_expected)
    values = sorted(d["value"] for d in deals if d["value"] is not None)
    assert values[0] < 2_000 and values[-1] > 50_000


def test_records_link_up_consistently(loaded):
    violations = {
        "deal's contact at another company":
            "SELECT count(*) FROM deals d JOIN contacts c ON c.id = d.contact_id"
            " WHERE c.company_id <> d.company_id",
        "activity's company is not its contact's":
            "SELECT count(*) FROM activities a JOIN contacts c ON c.id = a.contact_id"
            " WHERE a.company_id IS DISTINCT FROM c.company_id",
        "activity's company or contact is not its deal's":
            "SELECT count(*) FROM activities a JOIN deals d ON d.id = a.deal_id"
            " WHERE a.company_id <> d.company_id OR a.contact_id IS DISTINCT FROM d.contact_id",
        "last_activity_at is not the latest completed activity":
            "SELECT count(*) FROM deals d LEFT JOIN (SELECT deal_id, max(completed_at) AS latest FROM activities"
            " WHERE status = 'completed' GROUP BY deal_id) a ON a.deal_id = d.id"
            " WHERE d.last_activity_at IS DISTINCT FROM a.latest",
        "completed activity in the future":
            f"SELECT count(*) FROM activities WHERE status = 'completed' AND completed_at >= '{TODAY}'",
        "open task not due in the future":
            f"SELECT count(*) FROM activities WHERE type = 'task' AND status IN ('pending', 'in_progress')"
            f" AND due_at < '{TODAY}'",
        "open activity on a closed deal":
            "SELECT count(*) FROM activities a JOIN deals d ON d.id = a.deal_id"
            " WHERE a.status IN ('pending', 'in_progress') AND d.actual_close_date IS NOT NULL",
        "child created before its parent":
            "SELECT (SELECT count(*) FROM contacts k JOIN companies c ON c.id = k.company_id"
            "        WHERE k.created_at <= c.created_at)"
            " + (SELECT count(*) FROM deals d JOIN contacts k ON k.id = d.contact_id WHERE d.created_at <= k.created_at)"
            " + (SELECT count(*) FROM activities a JOIN deals d ON d.id = a.deal_id WHERE a.created_at < d.created_at)",
        "updated before created":
            "SELECT (SELECT count(*) FROM companies WHERE updated_at < created_at)"
            " + (SELECT count(*) FROM contacts WHERE updated_at < created_at)"
            " + (SELECT count(*) FROM deals WHERE updated_at < created_at)"
            " + (SELECT count(*) FROM activities WHERE updated_at < created_at)",
        "size not matching employees":
            "SELECT count(*) FROM companies WHERE NOT CASE size WHEN 'startup' THEN employees <= 10"
            " WHEN 'small' THEN employees BETWEEN 11 AND 50 WHEN 'medium' THEN employees BETWEEN 51 AND 500"
            " WHEN 'large' THEN employees BETWEEN 501 AND 5000 ELSE employees > 5000 END",
        "owner is not a demo user":
            f"SELECT count(*) FROM deals WHERE owner_id = '{SYSTEM_USER_ID}' OR owner_id IS NULL",
        "bookkeeping not from the system user":
            f"SELECT count(*) FROM activities WHERE created_by <> '{SYSTEM_USER_ID}' OR version <> 1",
        "company without a primary contact":
            "SELECT count(*) FROM companies c WHERE EXISTS (SELECT FROM contacts k WHERE k.company_id = c.id)"
            " AND (SELECT count(*) FILTER (WHERE is_primary) FROM contacts k WHERE k.company_id = c.id) <> 1",
    }
    assert {name: scalar(loaded, query) for name, query in violations.items()} == dict.fromkeys(violations, 0)
    with loaded.connect() as conn:
        mix = dict(conn.exec_driver_sql("SELECT type, count(*) FROM activities GROUP BY type").all())
    assert mix["email"] > mix["call"] > mix["meeting"] and mix["linkedin_message"] > 0
    stages = scalar(loaded, "SELECT count(DISTINCT lifecycle_stage) FROM contacts")
    assert stages == 5


def test_refuses_a_database_that_holds_companies(loaded):
    before = everything(loaded)
    with pytest.raises(CrmError, match="--replace"):
        demo.load(loaded, scale=SCALE, seed=2, today=TODAY)
    assert everything(loaded) == before


def test_replace_leaves_only_the_new_demo_data(fresh):
    engine, reference = fresh("demo_replace"), fresh("demo_reference")
    demo.load(engine, scale=SCALE, seed=1, today=TODAY)
    crm = CRM(engine)
    crm.users.create(email="someone@example.com", full_name="Some One")
    crm.companies.create(name="Kept nowhere")  # writes an audit row too
    counts = demo.load(engine, scale=SCALE, seed=3, today=TODAY, replace=True)
    assert counts == demo.row_counts(SCALE)
    demo.load(reference, scale=SCALE, seed=3, today=TODAY)
    assert rows(engine) == rows(reference)


def test_replace_keeps_the_authors_of_the_pipeline(fresh):
    engine = fresh("demo_replace_authors")
    CRM(engine).users.create(email="designer@example.com", full_name="Pipeline Designer")
    CRM(engine, user="designer@example.com").stages.create(name="Discovery", position=7)
    demo.load(engine, scale=SCALE, today=TODAY)
    demo.load(engine, scale=SCALE, seed=2, today=TODAY, replace=True)
    assert scalar(engine, "SELECT count(*) FROM users WHERE email = 'designer@example.com'") == 1
    assert scalar(engine, "SELECT count(*) FROM deals d JOIN pipeline_stages s ON s.id = d.stage_id"
                          " WHERE s.name = 'Discovery'") > 0


def test_indexes_and_foreign_keys_come_back(fresh):
    engine = fresh("demo_schema")
    before = schema(engine)
    demo.load(engine, scale=SCALE, today=TODAY)
    assert schema(engine) == before
    names = {name for _, name, _ in before[0]}
    assert {"companies_name_trgm_idx", "contacts_name_trgm_idx", "contacts_email_trgm_idx",
            "deals_title_trgm_idx", "activities_search_idx"} <= names
    with engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        plan = conn.execute(sa.text("EXPLAIN SELECT id FROM companies WHERE name ILIKE '%labs%'")).all()
    assert "companies_name_trgm_idx" in str(plan)


def test_a_failure_midway_changes_nothing(fresh, monkeypatch):
    engine = fresh("demo_failure")
    demo.load(engine, scale=SCALE, seed=1, today=TODAY)
    before, before_schema = everything(engine), schema(engine)
    copy = demo.copy_frame
    calls = []

    def copy_then_fail(cursor, table, frame, advance):
        copy(cursor, table, frame, advance)
        calls.append(table)
        if len(calls) == 2:
            raise RuntimeError("boom")

    monkeypatch.setattr(demo, "copy_frame", copy_then_fail)
    with pytest.raises(RuntimeError, match="boom"):
        demo.load(engine, scale=SCALE, seed=2, today=TODAY, replace=True)
    assert calls == ["users", "companies"]
    assert everything(engine) == before
    assert schema(engine) == before_schema


def test_a_database_error_midway_is_reported_and_changes_nothing(fresh, monkeypatch):
    engine = fresh("demo_db_error")
    before, before_schema = everything(engine), schema(engine)
    generate = demo.generate

    def bad_currency(*args, **kwargs):
        frames = generate(*args, **kwargs)
        frames["deals"] = frames["deals"].with_columns(currency=pl.lit("usd"))
        return frames

    monkeypatch.setattr(demo, "generate", bad_currency)
    with pytest.raises(DatabaseError, match="deals_currency_check"):
        demo.load(engine, scale=SCALE, today=TODAY)
    assert everything(engine) == before
    assert schema(engine) == before_schema


def test_cli_loads_and_prints_the_counts(make_database):
    url = make_database("demo_cli")
    args = ["demo-data", "--scale", "0.02", "--seed", "1", "--today", "2026-01-15", "--replace"]
    result = CliRunner().invoke(main, args, env={"CRM_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    assert "1 users, 20 companies, 100 contacts, 40 deals, 400 activities" in result.output


def test_cli_without_replace_says_how_to_replace(make_database):
    url = make_database("demo_cli_twice")
    args = ["demo-data", "--scale", "0.02", "--today", "2026-01-15"]
    assert CliRunner().invoke(main, args, env={"CRM_DATABASE_URL": url}).exit_code == 0
    result = CliRunner().invoke(main, args, env={"CRM_DATABASE_URL": url})
    assert result.exit_code == 1
    assert "--replace" in result.output
