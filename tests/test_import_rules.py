"""The importer's bulk rules agree with the services' validation (model/validation.py), value by
value: what one refuses, the other refuses."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_kernel.errors import ValidationError
from crm_kernel.importer.validation import check_fields, field_rule
from crm_kernel.model import catalog
from crm_kernel.model.validation import clean_create

CASES = {
    ("contacts", "email"): ["a@b.co", "a@b", "no at", "x@y.z.", "a b@c.de", "ok+tag@sub.example.org"],
    ("contacts", "lead_score"): ["0", "100", "101", "-1", "7", "x", "2147483648"],
    ("deals", "value"): [
        "0",
        "10.5",
        "10.55",
        "10.555",
        "-1",
        "9999999999.99",
        "10000000000",
        "1e3",
        "abc",
        ".5",
        "-0",
    ],
    ("deals", "probability"): ["0", "1", "0.5", "1.0001", "0.12345", "-0.1"],
    ("deals", "currency"): ["USD", "eur", "XYZ", "US"],
    ("contacts", "lifecycle_stage"): ["lead", "customer", "nope"],
    ("deals", "expected_close_date"): ["2024-02-29", "2023-02-29", "2024-13-01"],
}
BASE = {
    "contacts": {"first_name": "A", "last_name": "B"},
    "deals": {"title": "T", "stage_id": "00000000-0000-0000-0001-000000000001"},
}


def bulk_refuses(entity: str, name: str, value: str) -> bool:
    _, problems = check_fields(pl.DataFrame({"_row": [0], name: [value]}), entity, [name], None, {})
    return not problems.is_empty()


def service_refuses(entity: str, name: str, value: str) -> bool:
    try:
        clean_create(catalog.entity(entity), {**BASE[entity], name: value})
    except ValidationError as exc:
        assert name in exc.errors
        return True
    return False


@pytest.mark.parametrize(("entity", "name", "value"), [(e, n, v) for (e, n), values in CASES.items() for v in values])
def test_bulk_rules_refuse_what_the_services_refuse(entity, name, value):
    assert bulk_refuses(entity, name, value) == service_refuses(entity, name, value)


@given(st.decimals(min_value=-(10**11), max_value=10**11, places=3, allow_nan=False, allow_infinity=False))
def test_money_rules_agree_on_any_decimal(number):
    text = str(number)
    assert bulk_refuses("deals", "value", text) == service_refuses("deals", "value", text)


def test_tags_become_a_postgresql_array_literal():
    field = catalog.Field("tags", "tags", nullable=False, has_default=True)
    clean, _ = field_rule(field, pl.col("v"))
    got = pl.DataFrame({"v": ["vip; partner, vip", ' say "hi" ', None]}).select(clean.alias("v"))["v"].to_list()
    assert got == ['{"vip","partner"}', '{"say \\"hi\\""}', None]
