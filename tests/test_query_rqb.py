"""react-querybuilder's JSON, all of it: ids, disabled parts, ``not``, independent combinators,
field-to-field comparison and parameters, each giving the rows of its plain equivalent on
PostgreSQL and on DuckDB."""

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_kernel.db import connect_engine
from crm_kernel.errors import QuerySpecError
from crm_kernel.query import compile_spec, parse, run_duckdb, run_postgres

from . import query_data

NOW = query_data.NOW


def rows(engine, snap, spec, params=None):
    """The ids the spec selects on PostgreSQL, checked equal to DuckDB's."""
    pg = run_postgres(engine, spec, now=NOW, params=params).frame
    duck = run_duckdb(snap.con, spec, now=NOW, params=params).frame
    assert sorted(map(str, pg["id"])) == sorted(map(str, duck["id"]))
    return sorted(map(str, pg["id"]))


def deals(where) -> dict:
    return {"entity": "deals", "select": ["id"], "where": where}


R_BIG = {"id": "r-1", "field": "value", "operator": ">=", "value": "50000", "valueSource": "value"}
R_WON = {"id": "r-2", "field": "stage.name", "operator": "=", "value": "Won"}
R_NEG = {"id": "r-3", "field": "stage.name", "operator": "=", "value": "Negotiation"}
R_ACME = {"id": "r-4", "field": "company.name", "operator": "contains", "value": "acme"}


def plain(rule: dict) -> dict:
    return {k: v for k, v in rule.items() if k not in ("id", "valueSource")}


EXPORTS = [
    # (react-querybuilder export, its plain equivalent)
    pytest.param(
        {"id": "g-root", "combinator": "and", "not": False, "rules": [R_BIG, R_WON]},
        {"combinator": "and", "rules": [plain(R_BIG), plain(R_WON)]},
        id="ids-and-not-false",
    ),
    pytest.param(
        {"id": "g", "combinator": "or", "rules": [R_BIG, {**R_WON, "disabled": True}]},
        {"combinator": "or", "rules": [plain(R_BIG)]},
        id="disabled-rule",
    ),
    pytest.param(
        {
            "combinator": "and",
            "rules": [R_BIG, {"id": "g2", "disabled": True, "combinator": "or", "rules": [R_WON, R_NEG]}],
        },
        {"combinator": "and", "rules": [plain(R_BIG)]},
        id="disabled-group",
    ),
    pytest.param({"combinator": "and", "disabled": True, "rules": [R_BIG]}, None, id="disabled-root"),
    pytest.param(
        {"id": "g", "not": True, "rules": [R_BIG, "or", R_WON]},
        {"combinator": "or", "not": True, "rules": [plain(R_BIG), plain(R_WON)]},
        id="ic-not",
    ),
    # "and" binds tighter than "or": a and b or c == (a and b) or c
    pytest.param(
        {"rules": [R_BIG, "and", R_ACME, "or", R_WON]},
        {"combinator": "or", "rules": [{"combinator": "and", "rules": [plain(R_BIG), plain(R_ACME)]}, plain(R_WON)]},
        id="ic-precedence",
    ),
    pytest.param(
        {"rules": [R_WON, "or", R_NEG, "and", R_BIG]},
        {"combinator": "or", "rules": [plain(R_WON), {"combinator": "and", "rules": [plain(R_NEG), plain(R_BIG)]}]},
        id="ic-precedence-right",
    ),
    pytest.param(
        {"rules": [R_BIG, "and", {**R_ACME, "disabled": True}, "or", R_WON]},
        {"combinator": "or", "rules": [plain(R_BIG), plain(R_WON)]},
        id="ic-disabled-takes-its-combinator",
    ),
    pytest.param(
        {"rules": [R_BIG, "and", {"rules": [R_WON, "or", R_NEG]}]},
        {"combinator": "and", "rules": [plain(R_BIG), {"combinator": "or", "rules": [plain(R_WON), plain(R_NEG)]}]},
        id="ic-nested",
    ),
]


@pytest.mark.parametrize(("export", "equivalent"), EXPORTS)
def test_exports_give_the_rows_of_their_plain_equivalent(query_engine, query_snapshot, export, equivalent):
    got = rows(query_engine, query_snapshot, deals(export))
    expected = rows(
        query_engine,
        query_snapshot,
        {"entity": "deals", "select": ["id"], **({"where": equivalent} if equivalent is not None else {})},
    )
    assert got == expected


def test_the_forms_are_not_vacuous(query_engine, query_snapshot):
    everything = rows(query_engine, query_snapshot, {"entity": "deals", "select": ["id"]})
    big = rows(query_engine, query_snapshot, deals({"rules": [R_BIG]}))
    won = rows(query_engine, query_snapshot, deals({"rules": [R_WON]}))
    big_or_won = rows(query_engine, query_snapshot, deals({"rules": [R_BIG, "or", R_WON]}))
    assert 0 < len(big) < len(everything) and 0 < len(won) < len(everything)
    assert set(big_or_won) == set(big) | set(won) and len(big_or_won) > max(len(big), len(won))


@pytest.mark.parametrize(
    ("where", "path", "problem"),
    [
        ({"rules": [R_BIG, "xor", R_WON]}, "where.rules[1]", 'must be "and" or "or"'),
        ({"rules": [R_BIG, R_WON, "and"]}, "where.rules[1]", 'a combinator ("and" or "or") between two rules'),
        ({"rules": ["and", R_BIG]}, "where.rules[0]", "combinators stand between rules"),
        ({"rules": [R_BIG, "and"]}, "where.rules[1]", "not last"),
        ({"combinator": "and", "rules": [R_BIG, "or", R_WON]}, "where.combinator", "has no combinator of its own"),
        ({"rules": [{**R_BIG, "disabled": "yes"}]}, "where.rules[0].disabled", "true or false"),
    ],
)
def test_malformed_exports_name_the_part(where, path, problem):
    with pytest.raises(QuerySpecError) as caught:
        parse(deals(where))
    assert caught.value.path == path and problem in caught.value.problem


def test_a_disabled_rule_is_not_checked():
    broken = {"field": "nope", "operator": "=", "value": 1, "disabled": True}
    compile_spec(deals({"rules": [R_BIG, broken]}))  # ignored as react-querybuilder ignores it
    with pytest.raises(QuerySpecError, match="no field 'nope'"):
        compile_spec(deals({"rules": [R_BIG, {**broken, "disabled": False}]}))


# -- one field against another ------------------------------------------------------------------

STORED = [
    "Acme",
    "acme corp",
    "100%",
    "100% sure",
    "a_b",
    "axb",
    "back\\slash",
    "\\",
    "%",
    "_",
    "",
    "ÆØÅ æøå",
    "O'Brien",
    "o'brien & co",
    None,
    "x",
    "X",
    "中文",
]
TEXT_OPS = {
    "contains": lambda a, b: b.lower() in a.lower(),
    "beginsWith": lambda a, b: a.lower().startswith(b.lower()),
    "endsWith": lambda a, b: a.lower().endswith(b.lower()),
    "doesNotContain": lambda a, b: b.lower() not in a.lower(),
    "doesNotBeginWith": lambda a, b: not a.lower().startswith(b.lower()),
    "doesNotEndWith": lambda a, b: not a.lower().endswith(b.lower()),
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
}


@pytest.fixture(scope="module")
def pairs(make_database_module):
    """A table of (a, b) text pairs, every stored string against every other, and its snapshot."""
    import duckdb

    engine = connect_engine(make_database_module("crm_query_pairs"))
    data = [{"id": i, "a": a, "b": b} for i, (a, b) in enumerate((a, b) for a in STORED for b in STORED)]
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE pairs (id integer PRIMARY KEY, a text, b text, lo integer, hi integer, n integer)"
        )
        conn.execute(
            sa.text("INSERT INTO pairs (id, a, b, lo, hi, n) VALUES (:id, :a, :b, :id % 7, :id % 5, :id % 6)"), data
        )
    con = duckdb.connect()
    con.execute("CREATE SCHEMA with_deleted")  # where a snapshot keeps every row; the compiler reads there
    con.execute(
        "CREATE TABLE with_deleted.pairs (id integer PRIMARY KEY, a text, b text, lo integer, hi integer, n integer)"
    )
    con.execute("CREATE VIEW pairs AS SELECT * FROM with_deleted.pairs")
    con.executemany(
        "INSERT INTO with_deleted.pairs VALUES (?, ?, ?, ? % 7, ? % 5, ? % 6)",
        [(d["id"], d["a"], d["b"], d["id"], d["id"], d["id"]) for d in data],
    )
    yield engine, con, data
    con.close()
    engine.dispose()


class Snap:
    def __init__(self, con):
        self.con = con


@pytest.mark.parametrize("operator", list(TEXT_OPS))
def test_text_operators_between_two_fields_match_the_oracle(pairs, operator):
    engine, con, data = pairs
    spec = {
        "entity": "pairs",
        "select": ["id"],
        "where": {"rules": [{"field": "a", "operator": operator, "value": "b", "valueSource": "field"}]},
    }
    got = rows(engine, Snap(con), spec)
    expected = sorted(
        str(d["id"]) for d in data if d["a"] is not None and d["b"] is not None and TEXT_OPS[operator](d["a"], d["b"])
    )
    assert got == expected
    assert expected  # every operator finds some pairs, and (below) misses some
    assert len(expected) < len(data)


def test_between_and_in_take_other_fields(pairs):
    engine, con, data = pairs
    between = {
        "entity": "pairs",
        "select": ["id"],
        "where": {"rules": [{"field": "n", "operator": "between", "value": "lo,hi", "valueSource": "field"}]},
    }
    expected = sorted(
        str(d["id"]) for d in data if min(d["id"] % 7, d["id"] % 5) <= d["id"] % 6 <= max(d["id"] % 7, d["id"] % 5)
    )
    assert rows(engine, Snap(con), between) == expected
    not_between = {**between, "where": {"rules": [{**between["where"]["rules"][0], "operator": "notBetween"}]}}
    assert set(rows(engine, Snap(con), not_between)) == {str(d["id"]) for d in data} - set(expected)
    listed = {
        "entity": "pairs",
        "select": ["id"],
        "where": {"rules": [{"field": "n", "operator": "in", "value": ["lo", "hi"], "valueSource": "field"}]},
    }
    assert rows(engine, Snap(con), listed) == sorted(
        str(d["id"]) for d in data if d["id"] % 6 in (d["id"] % 7, d["id"] % 5)
    )


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"field": "title", "operator": "contains", "value": "value"}, "cannot compare text field title with money"),
        ({"field": "value", "operator": "between", "value": "probability"}, "two fields, low and high"),
        ({"field": "value", "operator": "null", "value": "probability"}, "takes no value"),
        ({"field": "expected_close_date", "operator": "inLast", "value": "created_at"}, "a date window, not another"),
    ],
)
def test_field_comparisons_that_make_no_sense_are_refused(rule, problem):
    with pytest.raises(QuerySpecError, match=problem):
        compile_spec(deals({"rules": [{**rule, "valueSource": "field"}]}))


# -- parameters -----------------------------------------------------------------------------------


def by_value(value_rule: dict) -> dict:
    return deals({"rules": [value_rule]})


PARAMETERISED = [
    # (rule with a parameter, params, the same rule with the value written in)
    (
        {"field": "value", "operator": ">=", "value": "min_value"},
        {"min_value": 50000},
        {"field": "value", "operator": ">=", "value": 50000},
    ),
    (
        {"field": "value", "operator": "between", "value": "low,high"},
        {"low": "10000", "high": 90000},
        {"field": "value", "operator": "between", "value": [10000, 90000]},
    ),
    (
        {"field": "value", "operator": "between", "value": "range"},
        {"range": [90000, 10000]},
        {"field": "value", "operator": "between", "value": [10000, 90000]},
    ),
    (
        {"field": "stage.name", "operator": "in", "value": "a,b"},
        {"a": "Won", "b": "Lost"},
        {"field": "stage.name", "operator": "in", "value": ["Won", "Lost"]},
    ),
    (
        {"field": "stage.name", "operator": "notIn", "value": "stages"},
        {"stages": "Won,Lost"},
        {"field": "stage.name", "operator": "notIn", "value": ["Won", "Lost"]},
    ),
    (
        {"field": "title", "operator": "contains", "value": "word"},
        {"word": "%"},
        {"field": "title", "operator": "contains", "value": "%"},
    ),
    (
        {"field": "expected_close_date", "operator": "<", "value": "before"},
        {"before": "2026-07-01"},
        {"field": "expected_close_date", "operator": "<", "value": "2026-07-01"},
    ),
    (
        {"field": "created_at", "operator": "inLast", "value": "window"},
        {"window": {"amount": 90, "unit": "day"}},
        {"field": "created_at", "operator": "inLast", "value": {"amount": 90, "unit": "day"}},
    ),
    (
        {"field": "type", "operator": "=", "value": "kind"},
        {"kind": "renewal"},
        {"field": "type", "operator": "=", "value": "renewal"},
    ),
]


@pytest.mark.parametrize(("rule", "params", "written"), PARAMETERISED)
def test_parameters_give_the_rows_of_the_written_value(query_engine, query_snapshot, rule, params, written):
    got = rows(query_engine, query_snapshot, by_value({**rule, "valueSource": "parameter"}), params)
    assert got == rows(query_engine, query_snapshot, by_value(written))


def test_one_spec_answers_for_different_parameters(query_engine, query_snapshot):
    spec = by_value({"field": "value", "operator": ">=", "value": "min_value", "valueSource": "parameter"})
    low = rows(query_engine, query_snapshot, spec, {"min_value": 0})
    high = rows(query_engine, query_snapshot, spec, {"min_value": 50000})
    assert len(low) > len(high) > 0 and set(high) < set(low)


def test_declared_parameters_give_defaults(query_engine, query_snapshot):
    spec = {
        **by_value({"field": "value", "operator": ">=", "value": "min_value", "valueSource": "parameter"}),
        "parameters": {"min_value": {"type": "money", "label": "Smallest deal", "default": 50000}},
    }
    assert rows(query_engine, query_snapshot, spec) == rows(
        query_engine, query_snapshot, by_value({"field": "value", "operator": ">=", "value": 50000})
    )
    assert rows(query_engine, query_snapshot, spec, {"min_value": 0}) == rows(
        query_engine,
        query_snapshot,
        {"entity": "deals", "select": ["id"], "where": {"rules": [{"field": "value", "operator": ">=", "value": 0}]}},
    )


@pytest.mark.parametrize(
    ("rule", "params", "path", "problem"),
    [
        ({"field": "value", "operator": ">=", "value": "min_value"}, {}, "params.min_value", "has no value"),
        (
            {"field": "value", "operator": ">=", "value": "min_value"},
            {"min_value": "lots"},
            "params.min_value",
            "needs a number",
        ),
        (
            {"field": "value", "operator": ">=", "value": "min_value"},
            {"min_value": 1, "min_valu": 2},
            "params.min_valu",
            "no rule uses parameter 'min_valu'",
        ),
        ({"field": "value", "operator": "between", "value": "low,high"}, {"low": 1}, "params.high", "has no value"),
        (
            {"field": "expected_close_date", "operator": "=", "value": "day"},
            {"day": "31/12/2026"},
            "params.day",
            "needs a date",
        ),
        (
            {"field": "value", "operator": ">=", "value": "not a name"},
            {},
            "where.rules[0].value",
            "is not a parameter name",
        ),
        ({"field": "value", "operator": ">=", "value": 5}, {}, "where.rules[0].value", "the name of a parameter"),
        ({"field": "title", "operator": "=", "value": "t"}, {"t": "a\x00b"}, "params.t", "NUL"),
    ],
)
def test_a_missing_or_mistyped_parameter_is_named(rule, params, path, problem):
    with pytest.raises(QuerySpecError) as caught:
        compile_spec(by_value({**rule, "valueSource": "parameter"}), params=params)
    assert caught.value.path == path and problem in caught.value.problem, caught.value


@settings(max_examples=40, deadline=None)
@given(threshold=st.integers(min_value=-(10**6), max_value=10**7))
def test_numeric_parameters_match_written_values(query_engine, threshold):
    spec = by_value({"field": "value", "operator": "<", "value": "v", "valueSource": "parameter"})
    got = run_postgres(query_engine, spec, now=NOW, params={"v": threshold}).frame["id"].to_list()
    written = (
        run_postgres(query_engine, by_value({"field": "value", "operator": "<", "value": threshold}), now=NOW)
        .frame["id"]
        .to_list()
    )
    assert sorted(map(str, got)) == sorted(map(str, written))
