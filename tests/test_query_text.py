"""Text operators against a Python oracle, with hostile needles: wildcards are literal, case is ignored."""

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from crm_kernel.db import connect_engine
from crm_kernel.query import run_postgres

STORED = [
    "100% sure",
    "100 percent",
    "a_b",
    "axb",
    "back\\slash",
    "back slash",
    "O'Brien",
    "o'brien & co",
    '"quoted"',
    "Ünïcode",
    "ünïcode",
    "ÆØÅ",
    "中文名字",
    "",
    " leading space",
    "trailing space ",
    "%",
    "_",
    "\\",
    "%%__\\\\",
    "DROP TABLE x; --",
    "line\nbreak",
    "tab\there",
    "emoji 🎉 party",
    "MiXeD CaSe",
]
ALPHABET = st.sampled_from(list("abcxyz AB%_\\'\";-éÜüÆæ中🎉\n") + ["100", "sure", "slash", "brien"])
NEEDLES = st.lists(ALPHABET, min_size=1, max_size=4).map("".join)

ORACLE = {
    "contains": lambda t, n: n.lower() in t.lower(),
    "beginsWith": lambda t, n: t.lower().startswith(n.lower()),
    "endsWith": lambda t, n: t.lower().endswith(n.lower()),
    "doesNotContain": lambda t, n: n.lower() not in t.lower(),
    "doesNotBeginWith": lambda t, n: not t.lower().startswith(n.lower()),
    "doesNotEndWith": lambda t, n: not t.lower().endswith(n.lower()),
    "=": lambda t, n: t == n,
    "!=": lambda t, n: t != n,
    "<": lambda t, n: t < n,
    ">=": lambda t, n: t >= n,
}


@pytest.fixture(scope="module")
def probe_engine(make_database_module):
    engine = connect_engine(make_database_module("crm_query_text"))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE probe (id integer PRIMARY KEY, t text)")
        conn.execute(sa.text("INSERT INTO probe VALUES (:i, :t)"), [{"i": i, "t": t} for i, t in enumerate(STORED)])
    yield engine
    engine.dispose()


@pytest.mark.parametrize("operator", list(ORACLE))
@given(needle=NEEDLES)
def test_text_operator_matches_oracle(probe_engine, operator, needle):
    spec = {
        "entity": "probe",
        "select": ["id"],
        "where": {"rules": [{"field": "t", "operator": operator, "value": needle}]},
    }
    got = sorted(run_postgres(probe_engine, spec).frame["id"].to_list())
    expected = [i for i, t in enumerate(STORED) if ORACLE[operator](t, needle)]
    assert got == expected


@pytest.mark.parametrize("stored", [s for s in STORED if s])
def test_every_stored_string_finds_itself(probe_engine, stored):
    for operator in ("=", "contains", "beginsWith", "endsWith", "in"):
        value = [stored] if operator == "in" else stored
        spec = {
            "entity": "probe",
            "select": ["t"],
            "where": {"rules": [{"field": "t", "operator": operator, "value": value}]},
        }
        assert stored in run_postgres(probe_engine, spec).frame["t"].to_list(), operator
