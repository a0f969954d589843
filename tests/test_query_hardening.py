"""Specs a hostile or careless caller writes: each is refused with a QuerySpecError naming the
part of the spec at fault, never a raw TypeError, ValueError or database error."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from crm_kernel import CRM, QuerySpecError
from crm_kernel.query import compile_spec, parse, run_duckdb, run_postgres

from . import query_data


def deals(*rules) -> dict:
    return {"entity": "deals", "where": {"combinator": "and", "rules": list(rules)}}


def rule(field, operator, value=None) -> dict:
    return {"field": field, "operator": operator, "value": value}


def nested(depth: int) -> dict:
    group = {"combinator": "and", "rules": []}
    for _ in range(depth):
        group = {"combinator": "and", "rules": [group]}
    return {"entity": "deals", "where": group}


# spec, path of the refusal, words of the problem
REFUSED = [
    ("operator as a list", deals(rule("title", ["="], "x")), "where.rules[0].operator", "unknown operator"),
    ("operator as an object", deals(rule("title", {"op": "="}, "x")), "where.rules[0].operator", "unknown operator"),
    (
        "inLast 100000 years",
        deals(rule("last_activity_at", "inLast", {"amount": 100000, "unit": "year"})),
        "where.rules[0].value.amount",
        "outside the years 1 to 9999",
    ),
    (
        "inNext a huge number of days",
        deals(rule("expected_close_date", "inNext", {"amount": 10**30, "unit": "day"})),
        "where.rules[0].value.amount",
        "outside the years 1 to 9999",
    ),
    (
        "olderThan 3000 years",
        deals(rule("expected_close_date", "olderThan", {"amount": 3000, "unit": "year"})),
        "where.rules[0].value.amount",
        "outside the years",
    ),
    (
        "a 5000-digit amount as text",
        deals(rule("last_activity_at", "inLast", {"amount": "9" * 5000, "unit": "day"})),
        "where.rules[0].value.amount",
        "must be a whole number of units",
    ),
    ("a set as a value", deals(rule("value", ">", {1, 2})), "where.rules[0].value", "set is not a JSON value"),
    (
        "a date object as a value",
        deals(rule("expected_close_date", "=", dt.date(2026, 1, 2))),
        "where.rules[0].value",
        "write dates and times as text",
    ),
    (
        "a datetime inside a list",
        deals(rule("last_activity_at", "between", [dt.datetime(2026, 1, 2), "2026-02-01"])),
        "where.rules[0].value[0]",
        "datetime is not a JSON value",
    ),
    ("a Decimal", deals(rule("value", "=", Decimal("1.5"))), "where.rules[0].value", "Decimal is not a JSON value"),
    (
        "object() in a rule's id",
        deals({**rule("title", "=", "x"), "id": object()}),
        "where.rules[0].id",
        "not a JSON value",
    ),
    ("object() as a top-level key", {"entity": "deals", object(): 1}, None, "keys must be text"),
    (
        "a number as a key",
        {"entity": "deals", "where": {"rules": [{"field": "title", 1: 2}]}},
        "where.rules[0][1]",
        "keys must be text",
    ),
    ("NUL in a value", deals(rule("title", "contains", "a\x00b")), "where.rules[0].value", "NUL"),
    ("NUL in a list value", deals(rule("title", "in", ["a", "b\x00"])), "where.rules[0].value[1]", "NUL"),
    ("NUL in an alias", {"entity": "deals", "select": [{"field": "title", "as": "t\x00"}]}, "select[0].as", "NUL"),
    ("NUL in the entity", {"entity": "deals\x00"}, "entity", "NUL"),
    ("a lone surrogate", deals(rule("title", "=", "\ud800")), "where.rules[0].value", "not valid Unicode"),
    ("NaN as a limit", {"entity": "deals", "limit": float("nan")}, "limit", "finite number"),
    ("NaN in JSON text", '{"entity": "deals", "limit": NaN}', "limit", "finite number"),
    ("a limit beyond 64 bits", {"entity": "deals", "limit": 2**63}, "limit", "at most 9223372036854775807"),
    ("an offset beyond 64 bits", {"entity": "deals", "offset": 10**30}, "offset", "at most"),
    (
        "a related count beyond 64 bits",
        {
            "entity": "companies",
            "where": {"rules": [{"related": "deals", "quantifier": "count", "operator": ">", "value": 2**64}]},
        },
        "where.rules[0].value",
        "between",
    ),
    (
        "an integer value beyond 64 bits",
        {"entity": "companies", "where": {"rules": [rule("employees", "=", 3 * 10**19)]}},
        "where.rules[0].value",
        "whole number between",
    ),
    (
        "an integer value as a huge float",
        {"entity": "companies", "where": {"rules": [rule("employees", "<", 1e300)]}},
        "where.rules[0].value",
        "whole number between",
    ),
    (
        "an integer value as a long digit string",
        {"entity": "companies", "where": {"rules": [rule("employees", "=", "9" * 5000)]}},
        "where.rules[0].value",
        "a whole number",
    ),
    ("a money value of 400 digits", deals(rule("value", "=", 10**400)), "where.rules[0].value", "at most 38 digits"),
    (
        "a money value of 5000 digits",
        deals(rule("value", "=", 10**5000)),
        "where.rules[0].value",
        "a number of about 5000 digits is too long for a number",
    ),
    (
        "a 5000-digit number in a list",
        deals(rule("title", "in", ["a", -(10**5000)])),
        "where.rules[0].value[1]",
        "too long for a number",
    ),
    (
        "a 5000-digit number as a combinator",
        deals() | {"where": {"combinator": [10**5000]}},
        "where.combinator[0]",
        "too long",
    ),
    (
        "a money value with a huge exponent",
        deals(rule("value", "<", "1e999999999")),
        "where.rules[0].value",
        "at most 38 digits",
    ),
    (
        "a money value with 40 decimals",
        deals(rule("value", "<", "0." + "1" * 40)),
        "where.rules[0].value",
        "at most 38 digits",
    ),
    (
        "a time beyond year 9999 in UTC",
        deals(rule("last_activity_at", ">", "9999-12-31T23:00:00-05:00")),
        "where.rules[0].value",
        "between the years 1 and 9999",
    ),
    ("nesting 40 groups deep", nested(40), None, "nested more than 64 levels"),
    ("nesting 5000 groups deep", nested(5000), None, "nested more than 64 levels"),
    (
        "deeply nested JSON text",
        '{"entity": "deals", "where": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "",
        "nested more than",
    ),
    ("an unknown key with a dot", {"entity": "deals", "where": {"rules": [], "a.b": 1}}, 'where["a.b"]', "unknown key"),
    ("an empty key", {"entity": "deals", "": {"x": {1, 2}}}, '[""].x', "set is not a JSON value"),
    ("bytes that are not UTF-8", b"\xff\xfe{}", "", "not valid JSON"),
]


@pytest.mark.parametrize(("spec", "path", "words"), [pytest.param(s, p, w, id=i) for i, s, p, w in REFUSED])
@pytest.mark.parametrize("backend", ["postgres", "duckdb"])
def test_bad_specs_are_refused_with_their_path(spec, path, words, backend):
    with pytest.raises(QuerySpecError) as info:
        compile_spec(spec, backend)
    if path is not None:
        assert info.value.path == path
    else:
        assert info.value.path.startswith(("where", "[<object"))
    assert words in info.value.problem


def test_a_uuid_object_is_an_id_on_both_engines(query_engine, query_snapshot):
    """Every API takes an id as a UUID: a spec may hold one (it is kept as its text), also in a
    spec that names a custom field (whose declarations are looked up by the spec's text)."""
    company = uuid.UUID(query_data.uid("company", 1))
    spec = {
        "entity": "companies",
        "select": ["name"],
        "where": {"rules": [rule("id", "in", [company]), rule("custom_fields.tier", "notNull")]},
    }
    assert parse(spec).source["where"]["rules"][0]["value"] == [str(company)]
    assert run_postgres(query_engine, spec).frame["name"].to_list() == ["Acme Software"]
    assert run_duckdb(query_snapshot.con, spec).frame["name"].to_list() == ["Acme Software"]


def test_crm_query_refuses_non_json_values_naming_the_path(query_engine):
    crm = CRM(query_engine)
    for value in (uuid.uuid4, object(), {1}, dt.datetime(2026, 1, 1)):
        with pytest.raises(QuerySpecError) as info:
            crm.query(
                {
                    "entity": "companies",
                    "select": ["custom_fields.tier"],
                    "where": {"rules": [rule("name", "=", value)]},
                }
            )
        assert info.value.path == "where.rules[0].value"


# -- custom fields whose stored value does not fit their declared type -------------------------

CUSTOM_TYPES = {"seats": "integer", "since": "date", "at": "timestamp", "ok": "boolean", "share": "number"}
# Written straight into the table, as a bulk load or an old version could have: the query must
# read what fits and null for the rest, on both engines.
CUSTOM_VALUES = {
    "A fits": '{"seats": 50, "since": "2024-02-29", "at": "2026-01-05T10:00:00Z", "ok": true, "share": 1.5}',
    "B words": '{"seats": "gold", "since": "2023-02-29", "at": "yesterday", "ok": "yes", "share": "many"}',
    "C near misses": '{"seats": 12.5, "since": "today", "at": "2026-13-01", "ok": 1, "share": 1e400}',
    "D wrong JSON types": '{"seats": [1], "since": {"a": 1}, "at": "0001-01-01T00:00:00+14:00", "ok": null, '
    '"share": "1e5"}',
    "E strings that fit": '{"seats": "-7", "since": "Jan 5 2026", "at": "2026-02-30T00:00:00Z", "ok": "true", '
    '"share": true}',
    "F beyond 64 bits": '{"seats": 99999999999999999999, "since": "2026-04-31", "at": "2026-03-01 08:30:00+02:00"}',
    "G empty": '{"note": 1' + "0" * 5000 + "}",  # too long for Python's int(): must not break a query
}
UTC = dt.UTC
CUSTOM_ROWS = [  # name, seats, since, at, ok, share: written by hand
    ("A fits", 50, dt.date(2024, 2, 29), dt.datetime(2026, 1, 5, 10, tzinfo=UTC), True, 1.5),
    ("B words", None, None, None, None, None),
    ("C near misses", None, None, None, None, None),
    ("D wrong JSON types", None, None, None, None, 100000.0),
    ("E strings that fit", -7, None, None, True, None),
    ("F beyond 64 bits", None, None, dt.datetime(2026, 3, 1, 6, 30, tzinfo=UTC), None, None),
    ("G empty", None, None, None, None, None),
]


@pytest.fixture(scope="module")
def misfits(make_database_module, tmp_path_factory):
    """A database whose companies hold custom values of every wrong kind, and its snapshot."""
    import sqlalchemy as sa

    from crm_kernel import snapshot
    from crm_kernel.db import connect_engine

    engine = connect_engine(make_database_module("crm_custom_misfits"))
    crm = CRM(engine)
    for key, kind in CUSTOM_TYPES.items():
        crm.custom_fields.define("companies", key, kind)
    for name, values in CUSTOM_VALUES.items():
        company = crm.companies.create(name=name)
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE companies SET custom_fields = CAST(:v AS jsonb) WHERE id = :id"),
                {"v": values, "id": company["id"]},
            )
    folder = snapshot.export(engine, tmp_path_factory.mktemp("misfit-snapshots"))
    with snapshot.open(folder) as snap:
        yield crm, snap
    engine.dispose()


def _custom_spec(**extra) -> dict:
    return {
        "entity": "companies",
        "select": ["name", *(f"custom_fields.{k}" for k in CUSTOM_TYPES)],
        "order_by": ["name"],
        **extra,
    }


@pytest.mark.parametrize("backend", ["postgres", "duckdb"])
def test_custom_values_that_do_not_fit_their_type_read_as_null(misfits, backend):
    crm, snap = misfits
    frame = crm.query(_custom_spec(), backend, snapshot=snap if backend == "duckdb" else None)
    assert [tuple(row) for row in frame.iter_rows()] == CUSTOM_ROWS


@pytest.mark.parametrize("backend", ["postgres", "duckdb"])
def test_a_json_column_holding_a_huge_number_still_reads(misfits, backend):
    crm, snap = misfits
    frame = crm.query(
        {
            "entity": "companies",
            "select": ["name", "custom_fields"],
            "where": {"rules": [rule("name", "=", "G empty")]},
        },
        backend,
        snapshot=snap if backend == "duckdb" else None,
    )
    assert frame.rows() == [("G empty", '{"note":Infinity}')]


@pytest.mark.parametrize("backend", ["postgres", "duckdb"])
def test_filters_groups_and_sums_on_misfit_custom_fields(misfits, backend):
    crm, snap = misfits
    on = {"snapshot": snap} if backend == "duckdb" else {}

    def names(*rules):
        spec = {
            "entity": "companies",
            "select": ["name"],
            "order_by": ["name"],
            "where": {"combinator": "and", "rules": list(rules)},
        }
        return crm.query(spec, backend, **on)["name"].to_list()

    assert names(rule("custom_fields.seats", ">", 10)) == ["A fits"]
    assert names(rule("custom_fields.seats", "notNull")) == ["A fits", "E strings that fit"]
    assert names(rule("custom_fields.since", "<", "2030-01-01")) == ["A fits"]
    assert names(rule("custom_fields.at", "inLast", {"amount": 100, "unit": "year"})) == ["A fits", "F beyond 64 bits"]
    assert names(rule("custom_fields.ok", "=", True)) == ["A fits", "E strings that fit"]
    assert names(rule("custom_fields.share", "between", [1, 200000])) == ["A fits", "D wrong JSON types"]
    grouped = crm.query(
        {
            "entity": "companies",
            "group_by": ["custom_fields.ok"],
            "aggregates": [{"fn": "count", "as": "n"}, {"fn": "sum", "field": "custom_fields.seats"}],
            "order_by": ["custom_fields.ok"],
        },
        backend,
        **on,
    )
    assert [tuple(r) for r in grouped.iter_rows()] == [(True, 2, 43), (None, 5, None)]


# -- time limits and cancelling -----------------------------------------------------------------

SLOW_SPEC = {"entity": "slow_rows"}


@pytest.fixture(scope="module")
def slow_engine(make_database_module):
    """A database with a view that takes ten minutes to answer (pg_sleep)."""
    import sqlalchemy as sa

    from crm_kernel.db import connect_engine

    engine = connect_engine(make_database_module("crm_slow_queries"))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE VIEW slow_rows AS SELECT 1 AS n FROM pg_sleep(600)"))
    yield engine
    engine.dispose()


def slow_duckdb():
    import duckdb

    from crm_kernel.snapshot.views import ALL_ROWS

    con = duckdb.connect()  # laid out as a snapshot is: all rows in one schema, views over them
    con.execute(f"CREATE SCHEMA {ALL_ROWS}")
    con.execute(f"CREATE VIEW {ALL_ROWS}.slow_rows AS SELECT sum(a.range % 7) AS n FROM range(10000000000000) a")
    con.execute(f"CREATE VIEW slow_rows AS SELECT * FROM {ALL_ROWS}.slow_rows")
    return con


def in_thread(target):
    """Run ``target`` in a thread; returns the thread and a dict that gets its result or error."""
    import threading

    outcome = {}

    def work():
        try:
            outcome["result"] = target()
        except BaseException as exc:  # handed to the test to assert on
            outcome["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread, outcome


def wait_until_active(engine, words: str) -> None:
    """Until PostgreSQL runs a statement containing ``words`` (a handshake, not a timing)."""
    import time

    import sqlalchemy as sa

    for _ in range(2400):  # two minutes at most: a generous bound for a busy machine
        with engine.connect() as conn:
            if conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                    "AND query LIKE :q AND pid <> pg_backend_pid()"
                ),
                {"q": f"%{words}%"},
            ).scalar():
                return
        time.sleep(0.05)
    raise AssertionError(f"no statement with {words!r} started")


def test_a_running_postgres_query_is_cancelled_from_another_thread(slow_engine):
    from crm_kernel.query import QueryCancelled, RunHandle

    crm, handle = CRM(slow_engine), RunHandle()
    thread, outcome = in_thread(lambda: crm.execute(SLOW_SPEC, handle=handle))
    wait_until_active(slow_engine, "slow_rows")
    handle.cancel()
    thread.join(120)  # far below the view's ten minutes: only a cancel ends it this soon
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), QueryCancelled), outcome
    assert outcome["error"].reason == "cancelled" and "cancelled" in str(outcome["error"])
    with pytest.raises(QueryCancelled):  # a cancelled handle starts nothing more
        crm.execute({"entity": "companies"}, handle=handle)
    assert crm.query({"entity": "companies", "aggregates": [{"fn": "count", "as": "n"}]})["n"].to_list() == [0]


def test_a_postgres_query_past_the_statement_timeout_is_stopped(slow_engine):
    import dataclasses

    import sqlalchemy as sa

    from crm_kernel.config import Config
    from crm_kernel.query import QueryCancelled

    crm = CRM(slow_engine, config=dataclasses.replace(Config.from_env(), statement_timeout="0.2"))
    with pytest.raises(QueryCancelled) as info:
        crm.query(SLOW_SPEC)
    assert info.value.reason == "timeout" and "CRM_STATEMENT_TIMEOUT" in str(info.value)
    with slow_engine.connect() as conn:  # the limit was the run's own: pooled connections keep none
        assert conn.execute(sa.text("SHOW statement_timeout")).scalar() == "0"


def test_a_running_duckdb_query_is_interrupted_from_another_thread():
    from crm_kernel.query import QueryCancelled, RunHandle

    con, handle = slow_duckdb(), RunHandle()
    thread, outcome = in_thread(lambda: run_duckdb(con, SLOW_SPEC, handle=handle))
    assert handle.running.wait(120)
    handle.cancel()
    thread.join(120)
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), QueryCancelled) and outcome["error"].reason == "cancelled", outcome
    assert run_duckdb(con, {"entity": "slow_rows", "limit": 0}).row_count == 0  # the connection still works


def test_a_duckdb_query_past_its_timeout_is_stopped():
    from crm_kernel.query import QueryCancelled

    with pytest.raises(QueryCancelled) as info:
        run_duckdb(slow_duckdb(), SLOW_SPEC, timeout=0.2)
    assert info.value.reason == "timeout"


def test_statement_timeout_setting_is_read_and_checked(query_engine):
    import dataclasses

    from crm_kernel.config import Config
    from crm_kernel.errors import ConfigError
    from crm_kernel.query.control import timeout_seconds

    assert Config.from_env({}).statement_timeout == "300"
    assert timeout_seconds(Config.from_env({"CRM_STATEMENT_TIMEOUT": "2.5"}).statement_timeout) == 2.5
    assert timeout_seconds("0") is None
    for bad in ("soon", "-1", "inf", "nan"):
        with pytest.raises(ConfigError, match="CRM_STATEMENT_TIMEOUT must be a number of seconds"):
            timeout_seconds(bad)
    crm = CRM(query_engine, config=dataclasses.replace(Config.from_env(), statement_timeout="soon"))
    with pytest.raises(ConfigError, match="CRM_STATEMENT_TIMEOUT"):
        crm.query({"entity": "companies"})
