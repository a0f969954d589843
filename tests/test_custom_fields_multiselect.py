"""Multiselect custom fields: declared with options, checked on write, queried as tags are (the
"has" shortcuts and react-querybuilder's match modes), the same rows on PostgreSQL and on DuckDB
as a Python oracle says."""

from __future__ import annotations

import random

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_kernel import CRM, ValidationError
from crm_kernel.db import connect_engine
from crm_kernel.export import export_result
from crm_kernel.query import operators_for
from crm_kernel.widgets import FieldCatalog
from crm_kernel.widgets.editors import ChoiceValue, ManyValues, editor_for

from .test_query_tags import MODES, SHORTCUTS, THRESHOLDS, match_case

OPTIONS = ["web", "phone", "Email", "partner portal", "100%", "a_b", "Ünï", "events"]


def test_a_multiselect_declares_its_options(crm):
    declared = crm.custom_fields.define("deals", "channels", "multiselect", options=["web", "phone"])
    assert declared["type"] == "multiselect" and declared["options"] == ["web", "phone"]
    again = crm.custom_fields.define("deals", "channels", "multiselect", options=["web", "phone", "events"])
    assert again["id"] == declared["id"] and again["options"] == ["web", "phone", "events"]
    assert crm.custom_fields.define("deals", "tier", "text")["options"] is None


@pytest.mark.parametrize(
    ("kind", "options", "problem"),
    [
        ("multiselect", None, "lists its options"),
        ("multiselect", [], "non-empty list"),
        ("multiselect", ["web", "web"], "twice"),
        ("multiselect", ["web", " "], "none empty"),
        ("multiselect", ["web", 3], "is not an option"),
        ("multiselect", "web, phone", "JSON object or list"),
        ("text", ["web"], "only a multiselect has options"),
    ],
)
def test_bad_options_are_refused_naming_them(crm, kind, options, problem):
    with pytest.raises(ValidationError) as caught:
        crm.custom_fields.define("deals", "channels", kind, options=options)
    assert "options" in caught.value.errors and problem in str(caught.value)
    assert crm.custom_fields.list(entity="deals") == []


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (["web", "fax"], "'fax' is not one of the options"),
        (["WEB"], "'WEB' is not one of the options"),
        ("web", "not a list of options"),
        (["web", "web"], "chosen twice"),
        ([["web"]], "is not one of the options"),
    ],
)
def test_a_value_outside_the_options_is_refused_naming_the_field(crm, value, problem):
    crm.custom_fields.define("companies", "channels", "multiselect", options=["web", "phone"])
    with pytest.raises(ValidationError) as caught:
        crm.companies.create(name="Acme", custom_fields={"channels": value})
    assert list(caught.value.errors) == ["custom_fields.channels"] and problem in str(caught.value)
    assert crm.companies.list() == []  # a failed write leaves nothing behind
    kept = crm.companies.create(name="Acme", custom_fields={"channels": ["phone", "web"]})
    assert kept["custom_fields"] == {"channels": ["phone", "web"]}
    with pytest.raises(ValidationError, match="custom_fields.channels"):
        crm.companies.update(kept["id"], {"custom_fields": {"channels": value}})
    assert crm.companies.get(kept["id"])["custom_fields"] == {"channels": ["phone", "web"]}


def test_narrowing_the_options_is_refused_while_records_hold_others(crm):
    crm.custom_fields.define("companies", "channels", "multiselect", options=["web", "phone"])
    held = crm.companies.create(name="Acme", custom_fields={"channels": ["phone"]})
    with pytest.raises(ValidationError) as caught:
        crm.custom_fields.define("companies", "channels", "multiselect", options=["web"])
    assert "'phone' is not one of the options" in str(caught.value) and str(held["id"]) in str(caught.value)
    assert crm.custom_fields.list(entity="companies")[0]["options"] == ["web", "phone"]
    with pytest.raises(ValidationError, match="not text"):  # a list is no text either
        crm.custom_fields.define("companies", "channels", "text")


@pytest.fixture(scope="module")
def chosen(make_database_module, tmp_path_factory):
    """Companies with random choices of a multiselect (some none, some without the key), one
    holding a value written around the checks, a CRM on them and their snapshot."""
    from crm_kernel import snapshot

    engine = connect_engine(make_database_module("crm_query_multiselect"))
    crm = CRM(engine)
    crm.custom_fields.define("companies", "channels", "multiselect", options=OPTIONS, label="Channels")
    chance = random.Random(11)
    stored, selected = {}, {}  # the choices as the oracle reads them; as a query selects them
    for i in range(60):
        picked = chance.sample(OPTIONS, chance.choice([0, 0, 1, 2, 3, 4, 6]))
        custom = {"channels": picked} if i % 7 else {}
        made = str(crm.companies.create(name=f"C{i:02d}", custom_fields=custom)["id"])
        stored[made], selected[made] = (picked, picked) if i % 7 else ([], None)
    odd = crm.companies.create(name="Odd")
    with engine.begin() as conn:  # not an array: read as no choices, never failing the query
        conn.execute(
            sa.text("""UPDATE companies SET custom_fields = '{"channels": "web"}' WHERE id = :id"""), {"id": odd["id"]}
        )
    stored[str(odd["id"])], selected[str(odd["id"])] = [], None
    ghost = crm.companies.create(name="Deleted", custom_fields={"channels": ["web"]})
    crm.companies.delete(ghost["id"])
    folder = snapshot.export(engine, tmp_path_factory.mktemp("multiselect-snapshots"))
    with snapshot.open(folder) as snap:
        yield crm, snap, stored, selected
    engine.dispose()


def ids(crm, snap, where) -> list[str]:
    spec = {"entity": "companies", "select": ["id"], "where": where}
    pg = sorted(map(str, crm.query(spec)["id"]))
    assert pg == sorted(map(str, crm.query(spec, "duckdb", snapshot=snap)["id"]))
    return pg


def test_selected_values_are_lists_on_both_engines(chosen):
    crm, snap, _, selected = chosen
    spec = {"entity": "companies", "select": ["id", "custom_fields.channels"], "order_by": ["name"]}
    pg, duck = crm.query(spec), crm.query(spec, "duckdb", snapshot=snap)
    assert pg.schema == duck.schema and pg.schema["custom_fields.channels"].is_nested()
    assert pg.rows() == duck.rows()
    assert dict(pg.rows()) == selected
    assert sum(1 for v in selected.values() if v) > 30 and [] in selected.values() and None in selected.values()


@pytest.mark.parametrize(
    ("operator", "value"),
    [
        ("contains", "web"),
        ("contains", "EMAIL"),
        ("contains", "100%"),
        ("doesNotContain", "phone"),
        ("in", ["events", "a_b"]),
        ("notIn", ["web", "Ünï"]),
        ("null", None),
        ("notNull", None),
    ],
)
def test_shortcuts_match_the_oracle(chosen, operator, value):
    crm, snap, stored, _ = chosen
    rule = {"field": "custom_fields.channels", "operator": operator} | ({"value": value} if value is not None else {})
    expected = sorted(i for i, values in stored.items() if SHORTCUTS[operator](values, value))
    assert ids(crm, snap, {"rules": [rule]}) == expected
    assert 0 < len(expected) < len(stored)


CONDITIONS = st.tuples(
    st.sampled_from(["=", "!=", "contains", "beginsWith", "<"]), st.sampled_from([*OPTIONS, "e", "P", "w", "z"])
)


@settings(max_examples=60, deadline=None)
@given(
    mode=MODES,
    threshold=THRESHOLDS,
    conditions=st.lists(CONDITIONS, min_size=0, max_size=2),
    combinator=st.sampled_from(["and", "or"]),
)
def test_match_modes_match_the_oracle(chosen, mode, threshold, conditions, combinator):
    crm, snap, stored, _ = chosen
    rule, expected = match_case("custom_fields.channels", stored, mode, threshold, conditions, combinator)
    assert ids(crm, snap, {"rules": [rule]}) == expected


def test_match_modes_are_not_vacuous(chosen):
    crm, snap, stored, _ = chosen
    web = {"rules": [{"field": "", "operator": "in", "value": ["web", "phone"]}]}
    counts = {
        mode: len(
            ids(
                crm,
                snap,
                {
                    "rules": [
                        {"field": "custom_fields.channels", "operator": "=", "value": web, "match": {"mode": mode}}
                    ]
                },
            )
        )
        for mode in ("all", "none", "some")
    }
    assert counts["some"] > 0 and counts["none"] > 0 and counts["some"] + counts["none"] == len(stored)
    assert 0 < counts["all"] < counts["some"]


def test_exports_join_the_choices(chosen, tmp_path):
    crm, _, stored, _ = chosen
    spec = {"entity": "companies", "select": ["name", "custom_fields.channels"], "order_by": ["name"]}
    exported = export_result(crm, spec, "csv", tmp_path / "channels.csv")
    lines = (tmp_path / "channels.csv").read_text().splitlines()
    assert exported.rows == len(stored) and lines[0] == "name,custom_fields.channels"
    first = crm.query(
        {**spec, "where": {"rules": [{"field": "custom_fields.channels", "operator": "notNull"}]}, "limit": 1}
    )
    name, values = first.row(0)
    assert len(values) >= 1 and any(line.startswith(f"{name},") and ", ".join(values) in line for line in lines)


def test_the_builder_offers_the_options(chosen):
    crm = chosen[0]
    choice = FieldCatalog.load(crm).field("companies", "custom_fields.channels")
    assert choice.type == "tags" and choice.values == tuple(OPTIONS) and choice.label.endswith("Channels")
    operators = {op.name: op for op in operators_for(choice.type)}
    one = editor_for(choice, operators["contains"])
    assert isinstance(one, ChoiceValue) and [v for _, v in one.widget.options] == OPTIONS
    many = editor_for(choice, operators["in"])
    assert isinstance(many, ManyValues) and list(many.widget.options) == OPTIONS
    many.set(["web", "events"])
    assert many.get() == ["web", "events"]
