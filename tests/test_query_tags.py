"""Tags: kept tidy on write, found by "has tag" shortcuts and by react-querybuilder's match modes,
the same rows on PostgreSQL and on DuckDB as a Python oracle says."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_kernel import CRM, ValidationError
from crm_kernel.db import connect_engine
from crm_kernel.errors import QuerySpecError
from crm_kernel.export import export_result
from crm_kernel.query import compile_spec

VOCABULARY = ["vip", "VIP-2", "partner", "churn-risk", "q4", "100%", "a_b", "Ünï", "emea", "apac"]


def test_tags_are_kept_tidy(crm):
    company = crm.companies.create(name="Acme", tags=[" vip ", "Partner", "VIP", "partner"])
    assert company["tags"] == ["vip", "Partner"]
    assert crm.companies.update(company["id"], {"tags": []})["tags"] == []
    assert crm.companies.create(name="Plain")["tags"] == []


@pytest.mark.parametrize(
    ("tags", "problem"),
    [
        ("vip", "valid list"),
        (["ok", ""], "must not be empty"),
        (["a\x00b"], "NUL"),
        (["x" * 101], "longer than 100"),
        ([f"t{i}" for i in range(101)], "more than 100"),
        ([1, 2], "valid string"),
        (None, "tags"),
    ],
)
def test_bad_tags_are_refused_naming_the_field(crm, tags, problem):
    with pytest.raises(ValidationError) as caught:
        crm.deals.create(title="D", company_id=crm.companies.create(name="A")["id"], tags=tags)
    assert "tags" in caught.value.errors and problem in str(caught.value)
    assert crm.query({"entity": "deals"}).height == 0


@pytest.fixture(scope="module")
def tagged(make_database_module, tmp_path_factory):
    """Companies with random tag lists (some empty), a CRM on them and their snapshot."""
    from crm_kernel import snapshot

    engine = connect_engine(make_database_module("crm_query_tags"))
    crm = CRM(engine)
    chance = random.Random(7)
    stored = {}
    for i in range(60):
        tags = chance.sample(VOCABULARY, chance.choice([0, 0, 1, 2, 3, 4, 6]))
        stored[str(crm.companies.create(name=f"C{i:02d}", tags=tags)["id"])] = tags
    ghost = crm.companies.create(name="Deleted", tags=["vip"])
    crm.companies.delete(ghost["id"])
    folder = snapshot.export(engine, tmp_path_factory.mktemp("tag-snapshots"))
    with snapshot.open(folder) as snap:
        yield crm, snap, stored
    engine.dispose()


def ids(crm, snap, where) -> list[str]:
    spec = {"entity": "companies", "select": ["id"], "where": where}
    pg = sorted(map(str, crm.query(spec)["id"]))
    assert pg == sorted(map(str, crm.query(spec, "duckdb", snapshot=snap)["id"]))
    return pg


SHORTCUTS = {
    "contains": lambda tags, v: v.lower() in [t.lower() for t in tags],
    "doesNotContain": lambda tags, v: v.lower() not in [t.lower() for t in tags],
    "in": lambda tags, v: any(t.lower() in [x.lower() for x in v] for t in tags),
    "notIn": lambda tags, v: not any(t.lower() in [x.lower() for x in v] for t in tags),
    "null": lambda tags, v: not tags,
    "notNull": lambda tags, v: bool(tags),
}


@pytest.mark.parametrize(
    ("operator", "value"),
    [
        ("contains", "VIP"),
        ("contains", "100%"),
        ("doesNotContain", "partner"),
        ("in", ["emea", "APAC"]),
        ("notIn", ["q4", "vip"]),
        ("null", None),
        ("notNull", None),
        ("contains", "a%b"),
    ],
)
def test_shortcuts_match_the_oracle(tagged, operator, value):
    crm, snap, stored = tagged
    rule = {"field": "tags", "operator": operator} | ({"value": value} if value is not None else {})
    expected = sorted(i for i, tags in stored.items() if SHORTCUTS[operator](tags, value))
    assert ids(crm, snap, {"rules": [rule]}) == expected
    assert 0 < len(expected) < len(stored) or operator == "contains" and value == "a%b"


def element_holds(operator: str, value: str, tag: str) -> bool:
    return {
        "=": tag == value,
        "!=": tag != value,
        "contains": value.lower() in tag.lower(),
        "beginsWith": tag.lower().startswith(value.lower()),
        "<": tag < value,
    }[operator]


def oracle(tags: list[str], mode: str, threshold, condition) -> bool:
    matched = sum(1 for tag in tags if condition(tag))
    if mode == "all":
        return bool(tags) and matched == len(tags)
    if mode == "none":
        return matched == 0
    if mode == "some":
        return matched >= 1
    if isinstance(threshold, float):  # a share of the array; none of an empty one
        if not tags:
            return False
        amount = matched / len(tags)
    else:
        amount = matched
    return {"atLeast": amount >= threshold, "atMost": amount <= threshold, "exactly": amount == threshold}[mode]


MODES = st.sampled_from(["all", "none", "some", "atLeast", "atMost", "exactly"])
THRESHOLDS = st.one_of(
    st.integers(min_value=1, max_value=6), st.sampled_from([0.0, 0.25, 1 / 3, 0.5, 2 / 3, 0.75, 0.999])
)
CONDITIONS = st.tuples(
    st.sampled_from(["=", "!=", "contains", "beginsWith", "<"]), st.sampled_from([*VOCABULARY, "v", "P", "q", "z"])
)


@settings(max_examples=60, deadline=None)
@given(
    mode=MODES,
    threshold=THRESHOLDS,
    conditions=st.lists(CONDITIONS, min_size=0, max_size=2),
    combinator=st.sampled_from(["and", "or"]),
)
def test_match_modes_match_the_oracle(tagged, mode, threshold, conditions, combinator):
    crm, snap, stored = tagged
    rule, expected = match_case("tags", stored, mode, threshold, conditions, combinator)
    assert ids(crm, snap, {"rules": [rule]}) == expected


def match_case(field: str, stored: dict, mode, threshold, conditions, combinator) -> tuple[dict, list]:
    """A match rule on ``field`` (its elements tested by ``conditions``) and the ids of
    ``stored`` (id -> elements) the oracle says it keeps."""
    match = {"mode": mode} | ({"threshold": threshold} if mode in ("atLeast", "atMost", "exactly") else {})
    group = {"combinator": combinator, "rules": [{"field": "", "operator": op, "value": v} for op, v in conditions]}
    rule = {"field": field, "operator": "=", "value": group, "match": match}

    def condition(element: str) -> bool:
        if not conditions:
            return True  # an empty group filters nothing
        results = [element_holds(op, v, element) for op, v in conditions]
        return all(results) if combinator == "and" else any(results)

    threshold_used = float(threshold) if isinstance(threshold, float) else threshold
    return rule, sorted(i for i, elements in stored.items() if oracle(elements, mode, threshold_used, condition))


def test_match_modes_are_not_vacuous(tagged):
    crm, snap, stored = tagged
    vip = {"rules": [{"field": "", "operator": "beginsWith", "value": "vip"}]}
    counts = {
        mode: len(
            ids(crm, snap, {"rules": [{"field": "tags", "operator": "=", "value": vip, "match": {"mode": mode}}]})
        )
        for mode in ("all", "none", "some")
    }
    assert counts["some"] > 0 and counts["none"] > 0 and counts["some"] + counts["none"] == len(stored)
    assert 0 < counts["all"] < counts["some"]


@pytest.mark.parametrize(
    ("rule", "path", "problem"),
    [
        ({"field": "tags", "operator": "=", "value": "vip"}, "where.rules[0].match", "compares its elements"),
        (
            {"field": "tags", "operator": "=", "value": {"rules": []}, "match": {"mode": "most"}},
            "where.rules[0].match.mode",
            "must be one of",
        ),
        (
            {"field": "tags", "operator": "=", "value": {"rules": []}, "match": {"mode": "atLeast"}},
            "where.rules[0].match.threshold",
            "needs a threshold",
        ),
        (
            {"field": "tags", "operator": "=", "value": {"rules": []}, "match": {"mode": "atLeast", "threshold": 1.5}},
            "where.rules[0].match.threshold",
            "whole count",
        ),
        (
            {"field": "tags", "operator": "=", "value": {"rules": []}, "match": {"mode": "some", "threshold": 2}},
            "where.rules[0].match.threshold",
            "takes no threshold",
        ),
        (
            {
                "field": "tags",
                "operator": "=",
                "value": {"rules": [{"field": "name", "operator": "=", "value": "x"}]},
                "match": {"mode": "some"},
            },
            "where.rules[0].value.rules[0].field",
            'the field is ""',
        ),
        (
            {"field": "name", "operator": "=", "value": {"rules": []}, "match": {"mode": "some"}},
            "where.rules[0].match",
            "match is for multi-valued fields",
        ),
        ({"field": "tags", "operator": ">", "value": "x"}, "where.rules[0].operator", "does not apply"),
        (
            {"field": "tags", "operator": "contains", "value": "name", "valueSource": "field"},
            "where.rules[0].valueSource",
            "compare it with values",
        ),
        (
            {"field": "name", "operator": "=", "value": {"rules": [{"field": "", "operator": "=", "value": "x"}]}},
            "where.rules[0].value",
            "needs text",
        ),
    ],
)
def test_malformed_tag_rules_are_named(rule, path, problem):
    with pytest.raises(QuerySpecError) as caught:
        compile_spec({"entity": "companies", "where": {"rules": [rule]}})
    assert caught.value.path == path and problem in caught.value.problem, caught.value


def test_tags_as_parameters_and_in_exports(tagged, tmp_path):
    crm, snap, stored = tagged
    spec = {
        "entity": "companies",
        "select": ["name", "tags"],
        "order_by": ["name"],
        "where": {"rules": [{"field": "tags", "operator": "contains", "value": "tag", "valueSource": "parameter"}]},
    }
    frame = crm.query(spec, params={"tag": "vip"})
    assert frame.height == sum("vip" in [t.lower() for t in tags] for tags in stored.values()) > 0
    assert all("vip" in [t.lower() for t in tags] for tags in frame["tags"])
    exported = export_result(crm, {k: v for k, v in spec.items() if k != "where"}, "csv", tmp_path / "tags.csv")
    lines = (tmp_path / "tags.csv").read_text().splitlines()
    assert exported.rows == len(stored) and lines[0] == "name,tags"
    first = crm.query({"entity": "companies", "select": ["name", "tags"], "order_by": ["name"], "limit": 1})
    assert (
        lines[1] == f'{first["name"][0]},"{", ".join(first["tags"][0])}"'
        or lines[1] == f"{first['name'][0]},{', '.join(first['tags'][0])}"
    )
