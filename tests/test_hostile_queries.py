"""Hostile specs, generated: whatever a caller puts anywhere in a spec, ``compile_spec`` and
``crm.query`` (on PostgreSQL and on DuckDB over a snapshot) either answer or raise a CrmError
whose message names the part of the spec at fault. Never a raw TypeError, ValueError,
RecursionError or database error.

The default hypothesis profile runs few, derandomised examples; HYPOTHESIS_PROFILE=thorough
explores more.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_kernel import CRM, QuerySpecError
from crm_kernel.errors import CrmError
from crm_kernel.query import OPERATORS, compile_spec

# -- hostile values ----------------------------------------------------------------------------

_NON_JSON = st.sampled_from(
    [
        uuid.UUID(int=7),
        dt.date(2026, 1, 31),
        dt.datetime(2026, 1, 31, 9, 30),
        dt.datetime(1, 1, 1, tzinfo=dt.UTC),
        {1, 2},
        frozenset(),
        object(),
        Decimal("0.1"),
        Decimal("NaN"),
        b"bytes",
        bytearray(b"x"),
        1j,
        range(3),
        float("nan"),
        float("inf"),
        -float("inf"),
        Ellipsis,
        type,
        print,
    ]
)
_NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**60), max_value=10**60),
    st.sampled_from([2**63 - 1, 2**63, -(2**63) - 1, 3_000_000_000, 10**38, 10**400]),
    st.sampled_from([1, -1]).map(lambda sign: sign * 10**5000),  # no repr: Python refuses to print it
    st.floats(),
    st.sampled_from([1e308, -1e308, 5e-324, 0.1 + 0.2, -0.0]),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.sampled_from(["1e999999999", "-1e-999999999", "9" * 5000, "0x10", " 42 ", "1_000", "+7", "1e5"]),
)
_TEXTS = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "a\x00b",
            "\ud800",
            "\udfff x",
            "%",
            "_",
            "\\",
            "'; DROP TABLE deals; --",
            "2026-02-30",
            "9999-12-31T23:59:59-14:00",
            "0001-01-01T00:00:00+14:00",
            "today",
            "NaN",
            "a,b,,c",
            "custom_fields.tier",
            "company.custom_fields",
            "x" * 10_000,
        ]
    ),
)
_SCALARS = st.one_of(st.none(), st.booleans(), _NUMBERS, _TEXTS, _NON_JSON)


def _hashable(value) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _nested(depth: int):
    value: object = "x"
    for i in range(depth):
        value = [value] if i % 2 else {"rules": value}
    return value


HOSTILE = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(
                _TEXTS,
                st.sampled_from(
                    [
                        "field",
                        "operator",
                        "value",
                        "rules",
                        "amount",
                        "unit",
                        "combinator",
                        "fn",
                        "as",
                        "dir",
                        "related",
                    ]
                ),
            ),
            inner,
            max_size=4,
        ),
        st.dictionaries(
            st.one_of(st.integers(), _NON_JSON.filter(_hashable), st.none()), inner, min_size=1, max_size=2
        ),
    ),
    max_leaves=12,
) | st.integers(min_value=0, max_value=200).map(_nested)


# -- where a hostile value goes ----------------------------------------------------------------

FIELDS = [
    "title",
    "value",
    "probability",
    "expected_close_date",
    "last_activity_at",
    "priority",
    "stage_id",
    "stage.is_closed_won",
    "company.employees",
    "company.custom_fields",
    "company.custom_fields.tier",
    "company.custom_fields.seats",
    "stage.name",
    "nope",
    "company.nope.x",
]
_FIELD = st.one_of(st.sampled_from(FIELDS), HOSTILE)
_OPERATOR = st.one_of(st.sampled_from(sorted(OPERATORS)), HOSTILE)


def where(*rules) -> dict:
    return {"combinator": "and", "rules": list(rules)}


def _deals(**parts) -> dict:
    return {"entity": "deals", **parts}


SLOTS = [  # each takes a hostile value and returns a spec holding it somewhere
    lambda v: {"entity": v},
    lambda v: _deals(select=v),
    lambda v: _deals(select=["title", v]),
    lambda v: _deals(select=[{"field": "title", "as": v}]),
    lambda v: _deals(where=v),
    lambda v: _deals(where={"combinator": v, "rules": []}),
    lambda v: _deals(where={"not": v, "rules": []}),
    lambda v: _deals(where={"rules": v}),
    lambda v: _deals(where=where(v)),
    lambda v: _deals(where=where({"field": "title", "operator": "=", "value": "x", "valueSource": v})),
    lambda v: _deals(where=where({"field": "value", "operator": ">", "value": v, "valueSource": "field"})),
    lambda v: _deals(where=where({"field": "expected_close_date", "operator": "inLast", "value": v})),
    lambda v: _deals(
        where=where({"field": "last_activity_at", "operator": "olderThan", "value": {"amount": v, "unit": "year"}})
    ),
    lambda v: _deals(
        where=where({"field": "last_activity_at", "operator": "inNext", "value": {"amount": 3, "unit": v}})
    ),
    lambda v: {
        "entity": "companies",
        "where": where({"related": "deals", "quantifier": "count", "operator": ">", "value": v}),
    },
    lambda v: {"entity": "companies", "where": where({"related": v})},
    lambda v: {"entity": "companies", "where": where({"related": "deals", "quantifier": v})},
    lambda v: {"entity": "companies", "where": where({"related": "deals", "where": v})},
    lambda v: {"entity": "companies", "where": where({"related": "activities", "via": v})},
    lambda v: _deals(group_by=v),
    lambda v: _deals(group_by=[v]),
    lambda v: _deals(group_by=[{"field": "expected_close_date", "trunc": v}]),
    lambda v: _deals(aggregates=v),
    lambda v: _deals(aggregates=[{"fn": v, "field": "value"}]),
    lambda v: _deals(aggregates=[{"fn": "sum", "field": v, "as": "total"}]),
    lambda v: _deals(
        group_by=["priority"],
        aggregates=[{"fn": "count", "as": "n"}],
        having=where({"field": "n", "operator": ">", "value": v}),
    ),
    lambda v: _deals(group_by=["priority"], having=v),
    lambda v: _deals(order_by=v),
    lambda v: _deals(order_by=[v]),
    lambda v: _deals(order_by=[{"field": "title", "dir": v}]),
    lambda v: _deals(limit=v),
    lambda v: _deals(offset=v),
    lambda v: _deals(name=v, description=v),
    lambda v: {
        "entity": "companies",
        "select": ["custom_fields.seats", "custom_fields.tier"],
        "where": where({"field": "custom_fields.seats", "operator": ">", "value": v}),
    },
]


@st.composite
def hostile_specs(draw) -> dict:
    if draw(st.booleans()):
        return draw(st.sampled_from(SLOTS))(draw(HOSTILE))
    # a rule of any field, any operator, any value
    spec = _deals(where=where({"field": draw(_FIELD), "operator": draw(_OPERATOR), "value": draw(HOSTILE)}))
    if draw(st.booleans()):
        spec[draw(_TEXTS)] = draw(HOSTILE)  # an unknown key
    return spec


# -- the property ------------------------------------------------------------------------------

_FIRST = re.compile(r"^[^.\[]*")


def assert_names_its_path(spec: dict, exc: CrmError) -> None:
    """A refusal says where: a QuerySpecError whose message starts with a path into the spec."""
    assert isinstance(exc, QuerySpecError), f"{type(exc).__name__}: {exc}"
    assert exc.problem and str(exc).startswith(f"{exc.path}: " if exc.path else exc.problem)
    if exc.path not in ("", "backend"):
        if exc.path.startswith('["'):  # a key quoted because it is empty or holds punctuation
            top = json.JSONDecoder().raw_decode(exc.path[1:])[0]
        elif exc.path.startswith("["):  # a key that is not text
            top = next(key for key in spec if not isinstance(key, str))
        else:
            top = _FIRST.match(exc.path).group(0)
        assert top in spec, f"{exc.path!r} is not a part of the spec"


def outcome(call):
    try:
        call()
    except CrmError as exc:
        return exc
    return None


@pytest.fixture(scope="module")
def qcrm(query_engine) -> CRM:
    return CRM(query_engine)


@given(hostile_specs())
def test_compile_spec_answers_or_names_the_path(spec):
    for backend in ("postgres", "duckdb"):
        exc = outcome(lambda: compile_spec(spec, backend).sql)  # noqa: B023
        if exc is not None:
            assert_names_its_path(spec, exc)


@given(hostile_specs())
def test_crm_query_answers_or_names_the_path_on_both_engines(qcrm, query_snapshot, spec):
    errors = []
    for backend in ("postgres", "duckdb"):
        on = {"snapshot": query_snapshot} if backend == "duckdb" else {}
        exc = outcome(lambda: qcrm.query(spec, backend, **on))  # noqa: B023
        if exc is not None:
            assert_names_its_path(spec, exc)
        errors.append(None if exc is None else exc.path)
    assert errors[0] == errors[1], "the engines disagree about the spec"
