"""The query builder driven as a user drives it: set values on its child widgets, click its
buttons, and read back the spec, its validity and where an error is shown."""

from __future__ import annotations

import datetime as dt

import pytest

from crm_kernel import CRM, QuerySpecError
from crm_kernel.query import operators_for
from crm_kernel.widgets import FieldCatalog, QueryBuilder
from crm_kernel.widgets.editors import parse_number


@pytest.fixture(scope="module")
def qcrm(query_engine) -> CRM:
    return CRM(query_engine)


@pytest.fixture(scope="module")
def catalog(qcrm) -> FieldCatalog:
    return FieldCatalog.load(qcrm)


@pytest.fixture
def builder(qcrm, catalog) -> QueryBuilder:
    return QueryBuilder(qcrm, catalog=catalog)


def add_rule(builder, group=None):
    group = group or builder.where
    group.add_rule.click()
    return group.members[-1]


def choose(dropdown, label: str):
    """Pick an option by its visible label, as a person (or the browser test) does."""
    labels = [option[0] for option in dropdown.options]
    assert label in labels, f"{label!r} not among {labels[:8]}..."
    dropdown.value = dropdown.options[labels.index(label)][1]


# -- the field picker and operator lists ------------------------------------------------------


def test_field_picker_groups_fields_by_entity_with_labels(catalog):
    labels = {c.path: c.label for c in catalog.fields("deals")}
    assert labels["value"] == "Deal › Value"
    assert labels["stage.name"] == "Stage › Name"
    assert labels["company.owner.email"] == "Company › Owner › E-mail"
    assert labels["company.custom_fields.tier"] == "Company › Tier"  # a declared custom field
    assert "creator.owner" not in " ".join(labels)  # bookkeeping relations are not followed twice
    paths = list(labels)
    assert (
        paths.index("value")
        < paths.index("company.name")
        < paths.index("company.owner.email")
        < paths.index("stage.name")
    )  # own fields, then each related record's (deeper ones inside)
    assert len(set(labels.values())) == len(labels)  # unique: a browser picks by label


def test_entities_offer_the_catalog_then_reflected_tables(catalog):
    entities = catalog.entities()
    assert entities[:2] == [("Users", "users"), ("Companies", "companies")]
    assert ("Deals", "deals") in entities


def test_operator_list_comes_from_the_operator_table(builder):
    rule = add_rule(builder)
    for path, kind in [
        ("value", "money"),
        ("title", "text"),
        ("expected_close_date", "date"),
        ("priority", "enum"),
        ("stage.is_closed_won", "boolean"),
    ]:
        rule.field.value = path
        assert [name for _, name in rule.operator.options] == [op.name for op in operators_for(kind)]
        assert [label for label, _ in rule.operator.options] == [op.label for op in operators_for(kind)]


# -- building a spec --------------------------------------------------------------------------


def test_two_rules_by_labels_give_the_spec_with_numbers_as_numbers(builder):
    assert builder.entity.value == "deals" and builder.spec == {"entity": "deals"}
    first = add_rule(builder)
    choose(first.field, "Deal › Value")
    choose(first.operator, "at least")
    first.editor.widget.value = "10000"
    second = add_rule(builder)
    choose(second.field, "Stage › Name")
    choose(second.operator, "equals")
    second.editor.widget.value = "Won"
    assert builder.spec == {
        "entity": "deals",
        "where": {
            "combinator": "and",
            "rules": [
                {"field": "value", "operator": ">=", "value": 10000},
                {"field": "stage.name", "operator": "=", "value": "Won"},
            ],
        },
    }
    assert builder.error is None and builder.error_html.value == ""
    first.editor.widget.value = "0.5"
    assert builder.spec["where"]["rules"][0]["value"] == 0.5


def test_value_editor_follows_type_and_operator(builder):
    rule = add_rule(builder)
    rule.field.value = "expected_close_date"
    rule.editor.widget.value = dt.date(2026, 6, 30)
    assert builder.spec["where"]["rules"][0] == {"field": "expected_close_date", "operator": "=", "value": "2026-06-30"}
    rule.operator.value = "between"
    rule.editor.high.widget.value = dt.date(2026, 7, 31)
    assert builder.spec["where"]["rules"][0]["value"] == ["2026-06-30", "2026-07-31"]
    rule.operator.value = "inLast"
    rule.editor.amount.value = 3
    rule.editor.unit.value = "month"
    assert builder.spec["where"]["rules"][0]["value"] == {"amount": 3, "unit": "month"}
    rule.operator.value = "thisQuarter"
    assert builder.spec["where"]["rules"][0] == {"field": "expected_close_date", "operator": "thisQuarter"}
    rule.field.value = "priority"
    rule.operator.value = "in"
    rule.editor.widget.value = ("high", "urgent")
    assert builder.spec["where"]["rules"][0] == {"field": "priority", "operator": "in", "value": ["high", "urgent"]}
    rule.operator.value = "="
    assert [v for _, v in rule.editor.widget.options] == ["low", "medium", "high", "urgent"]
    rule.field.value = "value"
    rule.operator.value = "in"
    rule.editor.widget.value = ["100", "12000.5"]
    assert builder.spec["where"]["rules"][0]["value"] == [100, 12000.5]
    rule.field.value = "last_activity_at"
    rule.editor.widget.value = dt.datetime(2026, 6, 1, 9, 30)
    assert builder.spec["where"]["rules"][0]["value"] == "2026-06-01T09:30:00"
    rule.field.value = "stage.is_closed_won"
    assert builder.spec["where"]["rules"][0] == {"field": "stage.is_closed_won", "operator": "=", "value": True}
    assert builder.error is None


def test_compare_with_another_field(builder):
    rule = add_rule(builder)
    rule.field.value = "value"
    rule.operator.value = ">"
    rule.compare.value = True
    options = [path for _, path in rule.editor.widget.options]
    assert "company.annual_revenue" in options and "title" not in options  # numbers only
    rule.editor.widget.value = "company.annual_revenue"
    assert builder.spec["where"]["rules"][0] == {
        "field": "value",
        "operator": ">",
        "value": "company.annual_revenue",
        "valueSource": "field",
    }
    assert builder.error is None


def test_text_autocomplete_looks_distinct_values_up_lazily(builder):
    calls = []
    original = builder.source.distinct
    builder.source.distinct = lambda *a, **k: calls.append(a) or original(*a, **k)
    rule = add_rule(builder)
    rule.field.value = "company.industry"
    assert calls == []  # nothing fetched until the user types
    rule.editor.widget.value = "Fin"
    assert calls == [("deals", "company.industry", "")]
    assert set(rule.editor.widget.options) == {"Software", "Fintech", "Retail"}  # live deals' companies
    rule.editor.widget.value = "Fint"
    assert len(calls) == 1  # a complete list is filtered by the browser, not looked up again
    builder.source.distinct = original


def test_nested_groups_not_and_reordering(builder):
    first = add_rule(builder)
    first.field.value = "value"
    first.editor.widget.value = "5"
    builder.where.add_group.click()
    group = builder.where.members[1]
    group.combinator.value = "or"
    group.negate.value = True
    inner = add_rule(builder, group)
    inner.field.value = "title"
    inner.operator.value = "contains"
    inner.editor.widget.value = "renewal"
    add_rule(builder, group).field.value = "priority"
    group.members[1].editor.widget.value = "high"
    assert builder.spec["where"] == {
        "combinator": "and",
        "rules": [
            {"field": "value", "operator": "=", "value": 5},
            {
                "combinator": "or",
                "not": True,
                "rules": [
                    {"field": "title", "operator": "contains", "value": "renewal"},
                    {"field": "priority", "operator": "=", "value": "high"},
                ],
            },
        ],
    }
    group.down_button.click()  # already last: nothing moves
    group.up_button.click()
    assert [r.get("field", "group") for r in builder.spec["where"]["rules"]] == ["group", "value"]
    group.members[0].down_button.click()
    assert [r["field"] for r in builder.spec["where"]["rules"][0]["rules"]] == ["priority", "title"]
    group.members[0].remove_button.click()
    first.remove_button.click()
    assert builder.spec["where"] == {
        "combinator": "and",
        "rules": [
            {"combinator": "or", "not": True, "rules": [{"field": "title", "operator": "contains", "value": "renewal"}]}
        ],
    }


def test_related_record_rule(qcrm, catalog):
    builder = QueryBuilder(qcrm, {"entity": "companies"}, catalog=catalog)
    builder.where.add_related.click()
    related = builder.where.members[0]
    related.related.value = ("activities", "company_id")
    related.quantifier.value = "none"
    rule = add_rule(builder, related.inner)
    rule.field.value = "type"
    rule.editor.widget.value = "call"
    assert builder.spec["where"]["rules"][0] == {
        "related": "activities",
        "quantifier": "none",
        "where": {"combinator": "and", "rules": [{"field": "type", "operator": "=", "value": "call"}]},
    }
    related.quantifier.value = "count"
    related.count_value.value = 2
    assert builder.spec["where"]["rules"][0]["operator"] == ">" and builder.spec["where"]["rules"][0]["value"] == 2
    assert builder.error is None


def test_shape_columns_group_by_aggregates_sort_limit(builder):
    builder.columns.add_button.click()
    builder.columns.members[0].field.value = "title"
    builder.columns.add_button.click()
    builder.columns.members[1].field.value = "stage.name"
    builder.columns.members[1].alias.value = "stage"
    builder.sorting.add_button.click()
    builder.sorting.members[0].field.value = "value"
    builder.sorting.members[0].direction.value = "desc"
    builder.limit.value = "5"
    assert builder.spec == {
        "entity": "deals",
        "select": ["title", {"field": "stage.name", "as": "stage"}],
        "order_by": [{"field": "value", "dir": "desc"}],
        "limit": 5,
    }
    assert builder.error is None
    # grouped: the columns go, the sort offers group keys and aggregates
    builder.columns.members[1].remove_button.click()
    builder.columns.members[0].remove_button.click()
    builder.grouping.add_button.click()
    key = builder.grouping.members[0]
    key.field.value = "expected_close_date"
    key.trunc.value = "month"
    builder.aggregates.add_button.click()
    total = builder.aggregates.members[0]
    total.fn.value = "sum"
    total.field.value = "value"
    total.alias.value = "total"
    assert [v for _, v in builder.sorting.members[0].field.options] == [
        "expected_close_date_month",
        "total",
        "value",
    ]  # "value" is kept (and marked) until changed
    assert builder.error is not None and builder.error.path == "order_by[0]"
    assert builder.error_row is builder.sorting.members[0]
    builder.sorting.members[0].field.value = "total"
    assert builder.spec == {
        "entity": "deals",
        "group_by": [{"field": "expected_close_date", "trunc": "month"}],
        "aggregates": [{"fn": "sum", "field": "value", "as": "total"}],
        "order_by": [{"field": "total", "dir": "desc"}],
        "limit": 5,
    }
    assert builder.error is None


# -- validation shown where it belongs --------------------------------------------------------


def test_invalid_edit_shows_the_message_beside_the_offending_rule(builder):
    first = add_rule(builder)
    first.field.value = "title"
    first.editor.widget.value = "x"
    second = add_rule(builder)
    second.field.value = "value"
    second.operator.value = ">="
    second.editor.widget.value = "ten thousand"
    assert builder.error.path == "where.rules[1].value"
    assert "needs a number" in second.error.value and first.error.value == ""
    assert builder.error_html.value.count("where.rules[1].value") == 1
    assert builder.error_row is second
    second.editor.widget.value = "10000"
    assert builder.error is None and second.error.value == "" and builder.error_html.value == ""
    second.up_button.click()  # moving a rule moves its path with it
    second.editor.widget.value = ""
    assert builder.error.path == "where.rules[0].value" and "needs a value" in second.error.value


def test_nested_error_and_limit_error_find_their_row(builder):
    builder.where.add_group.click()
    group = builder.where.members[0]
    rule = add_rule(builder, group)
    rule.field.value = "priority"
    rule.operator.value = "in"
    assert builder.error.path == "where.rules[0].rules[0].value" and rule.error.value
    assert group.error.value == ""
    rule.editor.widget.value = ("low",)
    builder.limit.value = "ten"
    assert builder.error.path == "limit" and "whole number" in builder._limit_spot.error.value


def test_spec_round_trips_and_keeps_unknown_fields_visible(builder):
    spec = {
        "entity": "deals",
        "select": ["title", "value", "stage.name", "company.name"],
        "where": {
            "combinator": "and",
            "rules": [
                {"field": "value", "operator": ">=", "value": 10000},
                {"field": "expected_close_date", "operator": "inLast", "value": {"amount": 30, "unit": "day"}},
                {
                    "combinator": "or",
                    "rules": [
                        {"field": "company.industry", "operator": "in", "value": ["Software", "Fintech"]},
                        {"field": "title", "operator": "contains", "value": "renewal"},
                    ],
                },
                {"field": "value", "operator": ">", "value": "company.annual_revenue", "valueSource": "field"},
                {"related": "activities", "quantifier": "any"},
                {"field": "contact.company.owner.email", "operator": "endsWith", "value": ".com"},
            ],
        },
        "order_by": [{"field": "value", "dir": "desc"}],
        "limit": 100,
        "offset": 10,
    }
    builder.spec = spec
    assert builder.spec == spec and builder.error is None
    grouped = {
        "entity": "deals",
        "group_by": ["stage.name", {"field": "expected_close_date", "trunc": "month"}],
        "aggregates": [{"fn": "count", "as": "deals"}, {"fn": "sum", "field": "value", "as": "total"}],
        "having": {"combinator": "and", "rules": [{"field": "deals", "operator": ">", "value": 1}]},
        "order_by": [{"field": "total", "dir": "desc"}],
    }
    builder.spec = grouped
    assert builder.spec == grouped and builder.error is None
    builder.spec = {
        "entity": "deals",
        "where": {
            "rules": [
                {"field": "titel", "operator": "=", "value": "x"},
                {"field": "value", "operator": ">", "value": "lots"},
            ]
        },
    }
    assert builder.where.members[0].field.value == "titel"
    assert builder.error.path == "where.rules[0].field" and builder.where.members[0].error.value
    with pytest.raises(QuerySpecError, match="operator"):
        builder.spec = {"entity": "deals", "where": {"rules": [{"field": "title", "operator": "like"}]}}


def test_without_columns_the_builder_names_the_default_columns(builder):
    note = builder._every_field
    assert "Company, Contact, Stage, Owner, Title" in note.value and "Company id" not in note.value
    assert note.layout.display == ""
    builder.entity.value = "activities"
    assert "ID, Deal, Contact, Company, Owner, Type, Subject" in note.value
    builder.columns.add_button.click()
    builder.columns.members[0].field.value = "subject"
    assert note.layout.display == "none"


def test_changing_entity_starts_a_new_query(builder):
    add_rule(builder).editor.widget.value = "x"
    builder.entity.value = "companies"
    assert builder.spec == {"entity": "companies"}
    add_rule(builder)
    assert builder.spec["where"]["rules"][0]["field"] == "name"  # the entity's title field


def test_parse_number():
    assert parse_number("10000") == 10000 and isinstance(parse_number("10000"), int)
    assert parse_number(" 1_000.50 ") == 1000.5
    assert parse_number("") is None
    assert parse_number("abc") == "abc" and parse_number("nan") == "nan"


def test_error_always_reflects_the_current_spec(builder):
    """A window past the calendar is refused like any bad value, so the error shown is the
    current one, never the one before it."""
    rule = add_rule(builder)
    rule.field.value = "value"
    rule.operator.value = ">="
    rule.editor.widget.value = "ten thousand"
    assert builder.error.path == "where.rules[0].value"
    rule.field.value = "last_activity_at"
    rule.operator.value = "inLast"
    rule.editor.amount.value = 100_000
    rule.editor.unit.value = "year"
    assert builder.error.path == "where.rules[0].value.amount"
    assert "outside the years 1 to 9999" in rule.error.value
    rule.editor.unit.value = "day"
    assert builder.error is None and rule.error.value == ""
    builder.spec = {
        "entity": "deals",
        "where": {"rules": [{"field": "title", "operator": "=", "value": "x", "id": "r1"}]},
        "name": "plain",
    }
    assert builder.error is None
    with pytest.raises(QuerySpecError) as info:
        builder.spec = {"entity": "deals", "where": {"rules": [{"field": "title", "operator": ["="]}]}}
    assert info.value.path == "where.rules[0].operator"


def test_a_limit_too_long_to_read_is_refused_by_the_check(builder):
    builder.limit.value = "9" * 5000
    assert builder.error.path == "limit" and "whole number" in builder._limit_spot.error.value


def test_parse_number_leaves_what_python_cannot_read_as_text():
    assert parse_number("9" * 5000) == "9" * 5000  # int() refuses 4,300 digits and more
    assert parse_number("1e999") == "1e999"
    assert parse_number("-" + "9" * 40) == -int("9" * 40)
